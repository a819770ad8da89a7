/* mn_trace: W3C trace context and request ids towards the upstream.
 *
 * The client's trace (the request body's `trace` extension, else its
 * `traceparent` header) becomes a `traceparent` for the upstream: version
 * 00, the client's trace id, a new span id of the gateway's own as the
 * parent-id field (the client's span is its parent), and the client's flags
 * (01 when the body gave the trace).  Pure: APR and Jansson only. */
#ifndef MN_TRACE_H
#define MN_TRACE_H

#include <apr_pools.h>
#include <jansson.h>

#define MN_TRACE_ID_HEX 32
#define MN_SPAN_ID_HEX 16
/* "00-" trace "-" span "-" flags */
#define MN_TRACEPARENT_LEN (3 + MN_TRACE_ID_HEX + 1 + MN_SPAN_ID_HEX + 3)
/* longest request id passed on (client's) or noted (upstream's) */
#define MN_REQUEST_ID_MAX 200

typedef struct mn_trace_ctx {
    char trace_id[MN_TRACE_ID_HEX + 1];  /* lower-case hex */
    char span_id[MN_SPAN_ID_HEX + 1];    /* the client's span; "" when not given */
    char flags[3];                       /* two lower-case hex digits */
} mn_trace_ctx;

typedef enum {
    MN_TRACE_NONE = 0,       /* nothing to propagate */
    MN_TRACE_OK,             /* *out is set */
    MN_TRACE_INVALID         /* given but unusable: *why says what */
} mn_trace_rc;

/* The body's `trace` object: `id` (32 hex digits, not all zero) required,
 * `span_id` (16 hex, not all zero) optional; either in upper or lower case. */
mn_trace_rc mn_trace_from_json(json_t *trace, mn_trace_ctx *out, const char **why);

/* A `traceparent` header, as W3C Trace Context level 1 parses it (lower-case
 * hex only, version ff refused, a higher version may carry more fields). */
mn_trace_rc mn_trace_from_header(const char *traceparent, mn_trace_ctx *out, const char **why);

/* The upstream's traceparent for t with the gateway's span id made from 8
 * random bytes (an all-zero draw is made non-zero), NUL-terminated. */
void mn_trace_format(const mn_trace_ctx *t, const unsigned char span[8],
                     char out[MN_TRACEPARENT_LEN + 1]);

/* Is v a request id worth passing on: 1..MN_REQUEST_ID_MAX visible ASCII
 * characters (no spaces, no control bytes)? */
int mn_request_id_ok(const char *v);

/* Is v a tracestate worth passing on with the traceparent it came with:
 * at most 512 characters of visible ASCII, spaces and tabs? */
int mn_trace_state_ok(const char *v);

#endif
