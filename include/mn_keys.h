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

/* A set of keys by hash (one key file). */
typedef struct mn_key_table mn_key_table;

/* Parses one key-file line.  Returns NULL and *out (NULL for a blank or
 * comment line), or an error message (without file and line). */
const char *mn_key_parse_line(apr_pool_t *p, const char *line, mn_client_key **out);

/* Parses whitespace-separated options (key-file syntax, e.g. an SQL row's
 * options column) into k.  NULL or an error message. */
const char *mn_key_parse_options(apr_pool_t *p, const char *opts, mn_client_key *k);

/* Parses a whole key file.  On error returns "FILE:LINE: message". */
const char *mn_key_table_load(apr_pool_t *p, const char *fname, const char *text,
                              mn_key_table **out);

/* The key whose hash is sha256_hex (64 lower-case hex digits), or NULL.  The
 * final comparison is in constant time. */
const mn_client_key *mn_key_table_find(const mn_key_table *t, const char *sha256_hex);
int mn_key_table_count(const mn_key_table *t);

/* Shell-style glob: `*` any run of characters (`/` included), `?` one. */
int mn_glob_match(const char *pattern, const char *s);

/* May k use model (the name the client asked for)?  No models= means any. */
int mn_key_model_allowed(const mn_client_key *k, const char *model);

/* Has k expired at now? */
int mn_key_expired(const mn_client_key *k, apr_time_t now);

/* Constant-time equality of n bytes. */
int mn_ct_equal(const void *a, const void *b, size_t n);

/* Deep copy into p (the SQL cache hands out copies: its entries are replaced). */
mn_client_key *mn_key_copy(apr_pool_t *p, const mn_client_key *k);

/* Lower-case hex of 32 bytes into out[65]. */
void mn_hex32(const unsigned char *bytes, char *out);

#endif
