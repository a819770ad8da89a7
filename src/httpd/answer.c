/* The answer writers: whole answers, errors before the first byte, the
 * client side of a stream, the echo provider's answers, and the OpenAI chat
 * face that writes them all as /v1/chat/completions does. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>

#include "mn_serve.h"
#include "mn_echo.h"
#include "mn_metrics_glue.h"
#include "mn_notes.h"
#include "mn_ops.h"
#include "mn_resilience.h"

/* httpd knows no reason phrase for some statuses upstreams use (Anthropic's
 * 529) and would turn them into 500: give those a status line of their own. */
static const char *status_line(request_rec *r, int status)
{
    const char *known = ap_get_status_line(status);
    if (known && atoi(known) == status) {
        return NULL;
    }
    return apr_psprintf(r->pool, "%d %s", status, status == 529 ? "Overloaded" : "Unknown");
}

void mn_write_json_bytes(request_rec *r, int status, const char *body, apr_size_t len)
{
    r->status = status;
    r->status_line = status_line(r, status);
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, (apr_off_t)len);
    mn_ops_first_byte(r);
    if (!r->header_only && len) {
        ap_rwrite(body, (int)len, r);
    }
}

static void chat_bytes(mn_request *req, int status, const char *body, apr_size_t len)
{
    mn_write_json_bytes(req->r, status, body, len);
}

static void chat_json(mn_request *req, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    size_t len = s ? strlen(s) : 0;
    chat_bytes(req, status, s ? s : "", len);
    free(s);
}

static void chat_error(mn_request *req, const mn_error *e)
{
    json_t *body = mn_error_to_json(e, req->prov ? req->prov->name : NULL);
    chat_json(req, e->status, body);
    json_decref(body);
}

static void chat_stream_begin(mn_request *req)
{
    request_rec *r = req->r;
    r->status = HTTP_OK;
    r->status_line = NULL;
    ap_set_content_type(r, "text/event-stream; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-cache");
    apr_table_setn(r->headers_out, "X-Accel-Buffering", "no");
    /* compression filters would hold frames back */
    apr_table_setn(r->subprocess_env, "no-gzip", "1");
    mn_ops_first_byte(r);
    mn_metrics_stream_begin(r);
}

static mn_sink *chat_stream_sink(mn_request *req, mn_sink *client)
{
    (void)req;
    return client;
}

const mn_face mn_face_chat = {
    .name = "chat.completions",
    .answer_json = chat_json,
    .answer_bytes = chat_bytes,
    .answer_error = chat_error,
    .stream_begin = chat_stream_begin,
    .stream_sink = chat_stream_sink,
};

int mn_answer_json(mn_request *req, int status, json_t *body)
{
    req->face->answer_json(req, status, body);
    return OK;
}

void mn_answer_bytes(mn_request *req, int status, const char *body, apr_size_t len)
{
    req->face->answer_bytes(req, status, body, len);
}

void mn_answer_notes(mn_request *req, const char *error_type, const char *error_code)
{
    mn_notes_outcome(req->r->pool, req->r->notes, req->upstream_status, &req->usage,
                     error_type, error_code);
}

int mn_answer_error(mn_request *req, mn_error *e)
{
    request_rec *r = req->r;
    mn_error_scrub(e, req->prov);
    if (e->retry_after[0]) {
        /* an upstream's value, normalised: never 1e300 or a date verbatim */
        char secs[32];
        if (!mn_retry_after_normalise(e->retry_after, apr_time_now(), secs, sizeof(secs))) {
            apr_table_setn(r->headers_out, "Retry-After", apr_pstrdup(r->pool, secs));
        }
    }
    if (e->status == HTTP_METHOD_NOT_ALLOWED) {
        apr_table_setn(r->headers_out, "Allow", "POST");
    }
    if (req->tries > 1) {
        /* the gateway has retried already: an SDK retrying on top would
         * multiply the load on a failing upstream (the openai SDKs obey) */
        apr_table_setn(r->headers_out, "x-should-retry", "false");
    }
    mn_answer_notes(req, e->type, e->code);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: answered %d %s (%s)", e->status,
                  e->type, e->code[0] ? e->code : "-");
    req->face->answer_error(req, e);
    return OK;
}

/* Frames are copied into 8,000-byte heap buckets, filled one after the
 * other.  Not apr_brigade_write(): once its first buffer is full it gives
 * every later write (without a flush callback) a heap bucket of its own,
 * sized to the write; a frame piece over ~100 bytes then takes an 8 KiB
 * allocator node, so a burst of 200 frames held ~2 MB per connection, which
 * the connection's allocator kept afterwards (up to MaxMemFree): idle httpd
 * at 104 MB after a streaming burst against ProxyPass's 46 MB. */
static void client_write(void *baton, const char *data, size_t len)
{
    mn_client_sink *cs = baton;
    apr_bucket_alloc_t *ba = cs->bb->bucket_alloc;
    cs->pending += len;
    while (len) {
        apr_bucket *e = APR_BRIGADE_LAST(cs->bb);
        apr_bucket_heap *h = NULL;
        apr_size_t room = 0, n;
        if (!APR_BRIGADE_EMPTY(cs->bb) && APR_BUCKET_IS_HEAP(e)) {
            h = e->data;
            room = h->refcount.refcount == 1 ? h->alloc_len - ((apr_size_t)e->start + e->length)
                                             : 0;
        }
        if (!room) {
            char *buf = apr_bucket_alloc(APR_BUCKET_BUFF_SIZE, ba);
            e = apr_bucket_heap_create(buf, APR_BUCKET_BUFF_SIZE, apr_bucket_free, ba);
            e->length = 0;
            APR_BRIGADE_INSERT_TAIL(cs->bb, e);
            h = e->data;
            room = APR_BUCKET_BUFF_SIZE;
        }
        n = len < room ? len : room;
        memcpy(h->base + e->start + e->length, data, n);
        e->length += n;
        data += n;
        len -= n;
    }
}

/* Frames are not flushed one by one but when the upstream has nothing more
 * for the moment (see relay.c): an upstream that sends its events apart
 * (every real model stream) still gets each frame out at once, and frames
 * that are already there leave together in one write instead of one
 * syscall each (measured in bench/: a write per frame cost more than all
 * the rest of the relay). */
static void client_frame_end(void *baton)
{
    mn_client_sink *cs = baton;
    cs->frames++;
}

void mn_client_sink_init(mn_client_sink *cs, mn_request *req)
{
    request_rec *r = req->r;
    memset(cs, 0, sizeof(*cs));
    cs->req = req;
    cs->bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    cs->raw.write = client_write;
    cs->raw.frame_end = client_frame_end;
    cs->raw.baton = cs;
    cs->out = req->face->stream_sink(req, &cs->raw);
}

void mn_client_start(mn_client_sink *cs)
{
    if (!cs->started) {
        cs->started = 1;
        cs->req->face->stream_begin(cs->req);
    }
}

apr_status_t mn_client_flush(mn_client_sink *cs)
{
    mn_client_start(cs);
    cs->pending = 0;
    APR_BRIGADE_INSERT_TAIL(cs->bb, apr_bucket_flush_create(cs->bb->bucket_alloc));
    return ap_pass_brigade(cs->req->r->output_filters, cs->bb);
}

int mn_answer_echo(mn_request *req, mn_wire_ctx *ctx, json_t *body)
{
    if (ctx->stream) {
        mn_client_sink cs;
        mn_client_sink_init(&cs, req);
        mn_client_start(&cs);
        mn_echo_stream(ctx, body, cs.out, &req->usage);
        mn_limits_charge(req->lim, ctx->provider_name, ctx->model, &req->usage, 0, 1);
        mn_answer_notes(req, NULL, NULL);
        mn_client_flush(&cs);
    }
    else {
        json_t *resp = mn_echo_response(ctx, body, &req->usage);
        mn_limits_charge(req->lim, ctx->provider_name, ctx->model, &req->usage, 0, 1);
        mn_answer_notes(req, NULL, NULL);
        mn_answer_json(req, HTTP_OK, resp);
        json_decref(resp);
    }
    return OK;
}
