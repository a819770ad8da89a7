/* mn_cors: the ManiacCORS policy.
 *
 * Which browser origins may call the gateway (none by default, a list, or
 * any), and which request headers a preflight may announce.  The glue adds
 * the Access-Control-* headers; this unit only decides. */
#ifndef MN_CORS_H
#define MN_CORS_H

#include <apr_pools.h>
#include <apr_tables.h>

typedef enum { MN_CORS_UNSET = 0, MN_CORS_OFF, MN_CORS_LIST, MN_CORS_ANY } mn_cors_mode;

typedef struct mn_cors {
    mn_cors_mode mode;
    apr_array_header_t *origins;   /* const char *, "scheme://host[:port]", lower case */
} mn_cors;

/* What preflights are told (and how long a browser may cache the answer). */
#define MN_CORS_ALLOW_METHODS "POST"
#define MN_CORS_MAX_AGE "600"
/* Response headers the SDKs read that a browser hides unless exposed. */
#define MN_CORS_EXPOSE_HEADERS "Retry-After, x-should-retry, x-request-id"

/* `ManiacCORS off | * | origin [origin ...]` arguments.  NULL, or a
 * message (from p) naming the bad argument. */
const char *mn_cors_parse(apr_pool_t *p, int argc, const char *const *argv, mn_cors *out);

/* The inner setting when it is set, the outer one otherwise. */
const mn_cors *mn_cors_merge(const mn_cors *outer, const mn_cors *inner);

/* 1 when an answer to this Origin header value may carry
 * Access-Control-Allow-Origin; 0 when CORS is off or the origin unknown. */
int mn_cors_origin_allowed(const mn_cors *c, const char *origin);

/* 1 when every header in an Access-Control-Request-Headers value is one an
 * OpenAI or Anthropic client sends; 0 with *bad (from p) naming the first
 * other one. */
int mn_cors_request_headers_ok(apr_pool_t *p, const char *list, const char **bad);

typedef enum {
    MN_CORS_GO_ON = 0,          /* not a preflight: serve it (headers_out may have gained some) */
    MN_CORS_PREFLIGHT_OK,       /* answer 204 with headers_out as set */
    MN_CORS_BAD_ORIGIN,         /* preflight from an origin not allowed: 403 */
    MN_CORS_BAD_HEADER          /* preflight announcing another header (*bad): 403 */
} mn_cors_verdict;

/* Decides a request under c (NULL or off: MN_CORS_GO_ON, nothing set) and
 * sets the Access-Control-* and Vary headers of its answer in out. */
mn_cors_verdict mn_cors_apply(apr_pool_t *p, const mn_cors *c, int is_options,
                              apr_table_t *in, apr_table_t *out, const char **bad);

#endif
