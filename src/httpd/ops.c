/* Operations glue: timing notes and the overhead header, trace context and
 * request ids towards the upstream (see include/mn_ops.h). */
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>

#include "mod_maniac.h"
#include "mn_ops.h"
#include "mn_trace.h"

#define OPS_KEY "maniac-ops"

typedef struct ops_req {
    mn_ops_clock clock;          /* first: mn_ops_clock_of hands it out */
    int trace_parsed;            /* the client's trace context was looked at */
    int have_trace;
    mn_trace_ctx trace;
    const char *tracestate;      /* forwarded with a header traceparent */
    const char *request_id;      /* goes upstream as x-request-id */
} ops_req;

static ops_req *ops_of(request_rec *r)
{
    void *o = NULL;
    apr_pool_userdata_get(&o, OPS_KEY, r->pool);
    if (!o) {
        o = apr_pcalloc(r->pool, sizeof(ops_req));
        apr_pool_userdata_setn(o, OPS_KEY, NULL, r->pool);
    }
    return o;
}

mn_ops_clock *mn_ops_clock_of(request_rec *r)
{
    return &ops_of(r)->clock;
}

static apr_interval_time_t overhead_at(request_rec *r, const mn_ops_clock *c, apr_time_t now)
{
    apr_interval_time_t o = now - r->request_time - c->upstream;
    return o > 0 ? o : 0;
}

void mn_ops_first_byte(request_rec *r)
{
    mn_ops_clock *c = mn_ops_clock_of(r);
    if (c->first_byte) {
        return;
    }
    c->first_byte = apr_time_now();
    if (mn_config_overhead_header(r)) {
        /* on a stream the headers leave first: the overhead until then */
        apr_table_setn(r->headers_out, MN_OVERHEAD_HEADER,
                       apr_off_t_toa(r->pool, overhead_at(r, c, c->first_byte)));
    }
}

void mn_ops_finish(request_rec *r)
{
    mn_ops_clock *c = mn_ops_clock_of(r);
    apr_time_t now = apr_time_now();
    apr_time_t first = c->first_byte ? c->first_byte : now;

    /* once per request, so add, not set (set scans the ~20 notes for a
     * duplicate: 700 instructions a note); apr_off_t_toa, not psprintf */
    apr_table_addn(r->notes, "maniac-ttft-us", apr_off_t_toa(r->pool, first - r->request_time));
    apr_table_addn(r->notes, "maniac-duration-us", apr_off_t_toa(r->pool, now - r->request_time));
    apr_table_addn(r->notes, "maniac-overhead-us", apr_off_t_toa(r->pool, overhead_at(r, c, now)));
}

/* The client's trace context, once per request: the body's `trace` when it
 * has one (even an unusable one), else the traceparent header. */
static void parse_trace(request_rec *r, ops_req *o, const mn_policy_result *pol)
{
    const char *why = NULL, *from = pol->trace ? "trace in the body" : "traceparent header";
    const char *rid = apr_table_get(r->headers_in, "x-request-id");
    mn_trace_rc rc;

    o->trace_parsed = 1;
    if (pol->trace) {
        rc = mn_trace_from_json(pol->trace, &o->trace, &why);
    }
    else {
        rc = mn_trace_from_header(apr_table_get(r->headers_in, "traceparent"), &o->trace, &why);
        if (rc == MN_TRACE_OK) {
            const char *state = apr_table_get(r->headers_in, "tracestate");
            o->tracestate = mn_trace_state_ok(state) ? state : NULL;
            /* the access log correlates by these, whichever way they came */
            apr_table_setn(r->notes, "maniac-trace-id", apr_pstrdup(r->pool, o->trace.trace_id));
            apr_table_setn(r->notes, "maniac-span-id", apr_pstrdup(r->pool, o->trace.span_id));
        }
    }
    o->have_trace = rc == MN_TRACE_OK;
    if (rc == MN_TRACE_INVALID) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "maniac: %s not forwarded upstream: %s", from, why);
    }
    if (!rid) {
        /* mod_unique_id's id, when it is loaded */
        rid = apr_table_get(r->subprocess_env, "UNIQUE_ID");
    }
    if (rid && mn_request_id_ok(rid)) {
        o->request_id = rid;
    }
    else if (rid) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "maniac: x-request-id not forwarded upstream: not 1-%d visible characters",
                      MN_REQUEST_ID_MAX);
    }
}

void mn_ops_client_trace(request_rec *r, const mn_policy_result *pol)
{
    ops_req *o = ops_of(r);
    if (!o->trace_parsed) {
        parse_trace(r, o, pol);
    }
}

void mn_ops_upstream_headers(request_rec *r, const mn_policy_result *pol, apr_table_t *headers)
{
    ops_req *o = ops_of(r);

    if (!o->trace_parsed) {
        parse_trace(r, o, pol);
    }
    if (o->have_trace) {
        unsigned char span[8];
        char *tp = apr_palloc(r->pool, MN_TRACEPARENT_LEN + 1);
        /* a span of our own per try: the client's span is its parent */
        ap_random_insecure_bytes(span, sizeof(span));
        mn_trace_format(&o->trace, span, tp);
        apr_table_setn(headers, "traceparent", tp);
        apr_table_setn(r->notes, "maniac-traceparent", tp);
        if (o->tracestate) {
            apr_table_setn(headers, "tracestate", o->tracestate);
        }
    }
    if (o->request_id) {
        apr_table_setn(headers, "x-request-id", o->request_id);
    }
}

void mn_ops_upstream_answered(request_rec *r, apr_table_t *upstream_headers)
{
    const char *id = apr_table_get(upstream_headers, "x-request-id");
    if (!id) {
        id = apr_table_get(upstream_headers, "request-id");
    }
    if (id && mn_request_id_ok(id)) {
        /* the headers live with the upstream connection: copy */
        apr_table_setn(r->notes, "maniac-upstream-request-id", apr_pstrdup(r->pool, id));
    }
    else {
        apr_table_unset(r->notes, "maniac-upstream-request-id");
    }
}

void mn_ops_register_hooks(apr_pool_t *p)
{
    mn_ops_models_register_hooks(p);
}
