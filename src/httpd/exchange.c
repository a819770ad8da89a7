/* One try at one target: encode the request for the provider's wire format,
 * open the upstream exchange, and read what came back: an error answer, a
 * whole answer, or a stream (handed to the relay). */
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>

#include "mn_serve.h"
#include "mn_ops.h"
#include "mn_resilience.h"

void mn_wire_ctx_init(mn_wire_ctx *ctx, const mn_request *req, const mn_provider *prov,
                      const char *model, const mn_policy_result *pol)
{
    request_rec *r = req->r;
    memset(ctx, 0, sizeof(*ctx));
    ctx->pool = r->pool;
    ctx->provider = prov;
    ctx->provider_name = prov->name;
    ctx->model = model;
    ctx->stream = pol->stream;
    ctx->include_usage = pol->include_usage;
    ctx->created = (long)apr_time_sec(r->request_time);
    ctx->client_headers = r->headers_in;
    ctx->max_schema_expansion = mn_config_schema_expansion(r);
}

/* Reads a non-2xx answer into err (same status, OpenAI shape). */
static void read_upstream_error(mn_request *req, mn_attempt *at, const mn_wire *wire,
                                mn_wire_ctx *ctx, mn_upstream *u, mn_error *err)
{
    char *body = NULL;
    apr_size_t len = 0;
    int status = mn_upstream_status(u);
    /* the headers live with the upstream connection, closed below */
    const char *retry_after = apr_pstrdup(req->r->pool,
                                          apr_table_get(mn_upstream_headers(u), "Retry-After"));

    at->retry_after = mn_parse_retry_after(retry_after, apr_time_now());
    if (mn_upstream_read_all(u, 1024 * 1024, at->prov->idle_timeout, at->deadline,
                             &body, &len) != APR_SUCCESS) {
        body = NULL;
        len = 0;
    }
    mn_upstream_close(u);
    if (status < 400) {
        mn_error_fail(err, MN_FAIL_BAD_RESPONSE,
                      "provider '%s' answered with unexpected HTTP status %d",
                      at->prov->name, status);
        return;
    }
    wire->decode_error(ctx, status, body, len, retry_after, err);
    /* before anything logs it, whatever the format's decoder did */
    mn_error_scrub(err, at->prov);
    err->status = status;
}

/* Why a whole-body read failed. */
static int read_failure(const mn_request *req, const mn_attempt *at, apr_status_t rv,
                        mn_error *err)
{
    /* poll() sleeps in whole milliseconds: a wake-up just short of the
     * deadline is still the deadline */
    if (APR_STATUS_IS_TIMEUP(rv) && at->deadline
        && apr_time_now() + apr_time_from_msec(20) >= at->deadline) {
        return mn_error_fail(err, MN_FAIL_TOTAL_TIMEOUT,
                             "provider '%s' exceeded its total-timeout", at->prov->name);
    }
    if (APR_STATUS_IS_TIMEUP(rv)) {
        return mn_error_fail(err, MN_FAIL_TIMEOUT,
                             "provider '%s' stopped sending within the timeout", at->prov->name);
    }
    if (rv == APR_ENOSPC) {
        return mn_error_fail(err, MN_FAIL_TOO_LARGE,
                             "provider '%s' sent a response larger than %" APR_SIZE_T_FMT
                             " bytes", at->prov->name, mn_config_max_response(req->r));
    }
    return mn_error_fail(err, MN_FAIL_RESET, "provider '%s' broke off the response",
                         at->prov->name);
}

/* Non-streaming 2xx: 0 when the answer was sent, -1 with err otherwise. */
static int serve_whole(mn_request *req, mn_attempt *at, const mn_wire *wire, mn_wire_ctx *ctx,
                       mn_upstream *u, mn_error *err)
{
    char *body;
    apr_size_t len;
    json_t *resp = NULL;
    apr_status_t rv;

    rv = mn_upstream_read_all(u, mn_config_max_response(req->r), at->prov->idle_timeout, at->deadline,
                              &body, &len);
    mn_upstream_close(u);
    if (rv != APR_SUCCESS) {
        return read_failure(req, at, rv, err);
    }
    if (wire->decode_response_bytes) {
        const char *bytes;
        size_t blen;
        if (wire->decode_response_bytes(ctx, body, len, &bytes, &blen, &req->usage, err)) {
            return -1;
        }
        mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, 0, 1);
        mn_answer_notes(req, NULL, NULL);
        mn_answer_bytes(req, HTTP_OK, bytes, blen);
        return 0;
    }
    if (wire->decode_response(ctx, body, len, &resp, &req->usage, err)) {
        return -1;
    }
    mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, 0, 1);
    mn_answer_notes(req, NULL, NULL);
    mn_answer_json(req, HTTP_OK, resp);
    json_decref(resp);
    return 0;
}

static int is_event_stream(apr_table_t *headers)
{
    const char *ct = apr_table_get(headers, "Content-Type");
    return ct && ap_strcasestr(ct, "event-stream") != NULL;
}

/* The upstream connection is released when the try ends, whichever way:
 * the paths below release it early, this is the net under them. */
static apr_status_t release_upstream(void *u)
{
    mn_upstream_close(u);
    return APR_SUCCESS;
}

/* After a 2xx: the answer, whole or streamed.  0 when the client got it. */
static int serve_2xx(mn_request *req, mn_attempt *at, const mn_wire *wire, mn_wire_ctx *ctx,
                     mn_upstream *u, mn_error *err)
{
    if (ctx->stream && is_event_stream(mn_upstream_headers(u))) {
        return mn_relay(req, at, wire, ctx, u, err);
    }
    if (ctx->stream) {
        mn_upstream_close(u);
        return mn_error_fail(err, MN_FAIL_BAD_RESPONSE,
                             "provider '%s' answered a streaming request without an event "
                             "stream", at->prov->name);
    }
    return serve_whole(req, at, wire, ctx, u, err);
}

/* What an encoder left out for this target joins maniac-dropped, once,
 * however many tries encode the request again. */
static void note_dropped(request_rec *r, const char *dropped)
{
    const char *d;
    if (!dropped) {
        return;
    }
    d = apr_table_get(r->notes, "maniac-dropped");
    if (!d) {
        apr_table_setn(r->notes, "maniac-dropped", dropped);
    }
    else if (!ap_strstr_c(apr_pstrcat(r->pool, ",", d, ",", NULL),
                          apr_pstrcat(r->pool, ",", dropped, ",", NULL))) {
        apr_table_setn(r->notes, "maniac-dropped", apr_pstrcat(r->pool, d, ",", dropped, NULL));
    }
}

int mn_exchange(mn_request *req, mn_attempt *at, json_t *body, const mn_policy_result *pol,
                mn_error *err)
{
    request_rec *r = req->r;
    const mn_wire *wire;
    mn_wire_ctx ctx;
    mn_upstream_req up;
    mn_upstream *u;
    int sent = 0;

    at->upstream_status = req->upstream_status = 0;
    at->retry_after = -1;
    mn_wire_ctx_init(&ctx, req, at->prov, at->model, pol);
    wire = req->face->wire_for ? req->face->wire_for(req, at->prov, &ctx)
                               : mn_wire_for(at->prov->format);

    memset(&up, 0, sizeof(up));
    if (wire->encode_request(&ctx, body, &up, err)) {
        return 0;
    }
    note_dropped(r, ctx.dropped);
    if (!up.headers) {
        up.headers = apr_table_make(r->pool, 4);
    }
    mn_ops_upstream_headers(r, pol, up.headers);
    if (mn_upstream_open(r, at->prov, &up, at->deadline, &u, err)) {
        return 0;
    }
    apr_pool_create(&at->pool, r->pool);
    apr_pool_cleanup_register(at->pool, u, release_upstream, apr_pool_cleanup_null);
    mn_ops_upstream_answered(r, mn_upstream_headers(u));
    at->upstream_status = req->upstream_status = mn_upstream_status(u);
    if (at->upstream_status < 200 || at->upstream_status >= 300) {
        read_upstream_error(req, at, wire, &ctx, u, err);
    }
    else {
        sent = serve_2xx(req, at, wire, &ctx, u, err) == 0;
    }
    if (ctx.unknown_finish) {
        apr_table_setn(r->notes, "maniac-upstream-finish", ctx.unknown_finish);
    }
    apr_pool_destroy(at->pool);
    at->pool = NULL;
    return sent;
}
