/* mn_keys: client keys (who may spend, and how much).
 *
 * A client key is a random secret the gateway never stores: only its SHA-256
 * (hex) is kept, in the key file (`ManiacKeyFile`) or an SQL table
 * (`ManiacKeyQuery` through mod_dbd).  This unit owns the key record, the key
 * file line syntax and the lookup by hash; it is pure (APR only).  The httpd
 * glue (the `AuthType maniac` check_authn hook) lives in src/httpd/auth.c and
 * puts the record of an authenticated request where mn_auth_key() finds it.
 *
 * Key file line:
 *   NAME SHA256HEX [models=GLOB,GLOB] [rpm=N] [tpm=N] [budget=USD/day|USD/month]
 *                  [max-streams=N] [expires=YYYY-MM-DD] [tags=a,b]
 * `#` starts a comment line; blank lines are ignored. */
#ifndef MN_KEYS_H
#define MN_KEYS_H

#include <stdint.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    MN_BUDGET_NONE = 0,
    MN_BUDGET_DAY,
    MN_BUDGET_MONTH
} mn_budget_period;

typedef struct mn_client_key {
    const char *name;                 /* becomes r->user; safe to log */
    char sha256_hex[65];              /* lower-case hex of SHA-256(secret) */
    apr_array_header_t *models;       /* const char * globs; NULL = any model */
    int64_t rpm;                      /* requests per minute; 0 = no limit */
    int64_t tpm;                      /* tokens per minute; 0 = no limit */
    int64_t budget_micro_usd;         /* spend per period; 0 = no budget */
    mn_budget_period budget_period;
    int64_t max_streams;              /* concurrent streams; 0 = no limit */
    apr_time_t expires;               /* first instant it is no longer valid; 0 = never */
    apr_array_header_t *tags;         /* const char *, added to the request's tags */
} mn_client_key;

#endif
