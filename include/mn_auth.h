/* mn_auth: `AuthType maniac`, client keys through Apache's auth framework.
 *
 * check_authn reads `Authorization: Bearer <key>` or `x-api-key: <key>`,
 * hashes it (SHA-256), finds the key in the location's ManiacKeyFile or
 * through ManiacKeyQuery (mod_dbd, with a per-process cache) and sets
 * r->user to the key's name, so Require, %u and every authz module work as
 * with any other AuthType.  httpd glue: src/httpd/auth.c. */
#ifndef MN_AUTH_H
#define MN_AUTH_H

#include <httpd.h>
#include <http_config.h>
#include "mn_keys.h"

#define MN_AUTH_TYPE "maniac"

/* Per-directory part of the configuration (inside mn_dir_config). */
typedef struct mn_auth_dir {
    const char *key_file;           /* ManiacKeyFile, as resolved */
    mn_key_table *keys;
    const char *query;              /* ManiacKeyQuery */
    const char *query_label;        /* its mod_dbd prepared statement */
    apr_interval_time_t cache_ttl;  /* cache=S; -1 = unset (60 s) */
} mn_auth_dir;

void mn_auth_dir_init(mn_auth_dir *d);
void mn_auth_dir_merge(const mn_auth_dir *base, const mn_auth_dir *add, mn_auth_dir *out);

const char *mn_auth_cmd_key_file(cmd_parms *cmd, mn_auth_dir *d, const char *path);
const char *mn_auth_cmd_key_query(cmd_parms *cmd, mn_auth_dir *d, int argc,
                                  char *const argv[]);

void mn_auth_register_hooks(apr_pool_t *p);

/* The key that authenticated r (or its main/previous request); NULL when
 * AuthType maniac did not run.  Valid for the life of the request. */
const mn_client_key *mn_auth_key(request_rec *r);

/* Adds the key's tags to the maniac-tags note (after the request's own). */
void mn_auth_add_tags(request_rec *r);

#endif
