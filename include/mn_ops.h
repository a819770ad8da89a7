/* mn_ops: operations glue: the /v1/models and /v1/openapi.json endpoints,
 * the timing notes (maniac-ttft-us, maniac-duration-us, maniac-overhead-us,
 * ManiacOverheadHeader), and what goes upstream for tracing (traceparent,
 * x-request-id) and comes back (maniac-upstream-request-id).
 * httpd glue: src/httpd/ops.c (timing, tracing), src/httpd/endpoints.c
 * (endpoints); the pure parts are src/core/trace.c and src/core/models.c. */
#ifndef MN_OPS_H
#define MN_OPS_H

#include <httpd.h>
#include <http_config.h>
#include "mn_policy.h"

#define MN_OVERHEAD_HEADER "x-maniac-overhead-us"

/* --- timing (src/httpd/ops.c) --- */

/* Per-request clock, started when the handler takes the request. */
typedef struct mn_ops_clock {
    apr_time_t first_byte;          /* 0 until the answer starts */
    apr_interval_time_t upstream;   /* blocked on upstreams, backoff sleeps */
} mn_ops_clock;

/* The request's clock (created on first use). */
mn_ops_clock *mn_ops_clock_of(request_rec *r);

/* The answer's headers are about to leave: records the time to first byte
 * and sets the overhead header when ManiacOverheadHeader is on.  Only the
 * first call counts. */
void mn_ops_first_byte(request_rec *r);

/* The handler is done: sets maniac-ttft-us, maniac-duration-us and
 * maniac-overhead-us. */
void mn_ops_finish(request_rec *r);

/* --- trace context and request ids (src/httpd/ops.c) --- */

/* Reads the client's trace context (the body's `trace`, else a traceparent
 * header) and request id, once; a header's ids become the maniac-trace-id
 * and maniac-span-id notes. */
void mn_ops_client_trace(request_rec *r, const mn_policy_result *pol);

/* Adds traceparent (and tracestate) and x-request-id to the headers of one
 * upstream try; a new span id per try. */
void mn_ops_upstream_headers(request_rec *r, const mn_policy_result *pol, apr_table_t *headers);

/* The upstream answered: its request id becomes maniac-upstream-request-id. */
void mn_ops_upstream_answered(request_rec *r, apr_table_t *upstream_headers);

/* --- endpoints (src/httpd/endpoints.c) --- */

/* GET .../models, .../models/{id}, .../openapi.json: OK when answered,
 * DECLINED for every other path. */
int mn_ops_endpoints(request_rec *r);

/* The client key's models= allow-list (NULL = every model). */
const apr_array_header_t *mn_ops_key_models(request_rec *r);

void mn_ops_register_hooks(apr_pool_t *p);
void mn_ops_models_register_hooks(apr_pool_t *p);   /* src/httpd/endpoints.c */

#endif
