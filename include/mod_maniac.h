/* mod_maniac private header: what the httpd glue units share.
 *
 * mod_maniac.c registers hooks and directives; src/httpd/handler.c serves
 * /v1/chat/completions; src/httpd/upstream.c talks to providers through
 * mod_proxy's worker pool.  Nothing here is visible to the pure units. */
#ifndef MOD_MANIAC_H
#define MOD_MANIAC_H

#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>
#include <http_request.h>
#include <apr_buckets.h>

#include "mn_config.h"
#include "mn_cors.h"
#include "mn_auth.h"
#include "mn_error.h"
#include "mn_providers.h"
#include "mn_wire.h"

/* mod_maniac.c gets this from AP_DECLARE_MODULE itself */
#ifndef MN_MODULE_MAIN
APLOG_USE_MODULE(maniac);
#endif

#define MN_HANDLER_NAME "maniac"
#define MN_VERSION "0.1.0"

/* What is global by nature: providers are one table for the whole server
 * (the scalar settings are per server and per directory: mn_config.h). */
typedef struct mn_config {
    mn_provider_table *providers;
    struct mn_breaker_slot *breakers;   /* one per provider, in shared memory */
} mn_config;

extern mn_config *mn_conf;

/* Per-directory (and per-server default) configuration. */
typedef struct mn_dir_config {
    mn_cors cors;                       /* ManiacCORS */
    mn_auth_dir auth;                   /* ManiacKeyFile, ManiacKeyQuery */
    mn_settings settings;               /* ManiacMaxRequestBody */
} mn_dir_config;

/* src/httpd/handler.c */
int mn_handler(request_rec *r);

/* src/httpd/upstream.c: one exchange with a provider through mod_proxy. */
typedef struct mn_upstream mn_upstream;

/* Connects (reusing a pooled connection when one is alive), sends the
 * request and reads the status line and headers.  On failure returns -1 with
 * err set (502 unreachable/TLS/garbage, 504 timeout) and nothing left open. */
int mn_upstream_open(request_rec *r, const mn_provider *prov,
                     const mn_upstream_req *req, apr_time_t deadline,
                     mn_upstream **out, mn_error *err);

/* Read timeout for what follows (idle gap, or what is left of a deadline). */
void mn_upstream_set_timeout(mn_upstream *u, apr_interval_time_t t);

int mn_upstream_status(const mn_upstream *u);
apr_table_t *mn_upstream_headers(const mn_upstream *u);

/* Reads the next piece of the response body into bb (data buckets only,
 * copied or not; the caller consumes and cleans bb).  block: APR_BLOCK_READ
 * or APR_NONBLOCK_READ.  Returns APR_SUCCESS (bb may be empty on a
 * non-blocking read), APR_EOF at the end of the body, APR_TIMEUP when the
 * upstream was silent for the provider's timeout, or another error. */
apr_status_t mn_upstream_read(mn_upstream *u, apr_bucket_brigade *bb,
                              apr_read_type_e block);

/* Reads the whole body (bounded by max bytes, idle between reads and the
 * deadline, 0 = none) into a pool string.  APR_TIMEUP when a limit hit. */
apr_status_t mn_upstream_read_all(mn_upstream *u, apr_size_t max, apr_interval_time_t idle,
                                  apr_time_t deadline, char **body, apr_size_t *len);

/* Returns the connection to the pool; it is closed instead unless the body
 * was read to its end.  Safe to call twice. */
void mn_upstream_close(mn_upstream *u);

/* Marks the connection as not reusable (client gone, stream abandoned). */
void mn_upstream_abandon(mn_upstream *u);

/* Config-time: makes sure a mod_proxy worker exists for prov (NULL or an
 * error message), and whether mod_proxy is usable at all. */
const char *mn_upstream_define_worker(apr_pool_t *p, server_rec *s, mn_provider *prov);
int mn_upstream_proxy_available(void);
/* Looks mod_proxy's functions up by name (pre_config, after every LoadModule);
 * 0 when mod_proxy is not loaded. */
int mn_upstream_resolve_proxy(void);

#endif
