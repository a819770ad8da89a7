/* The maniac handler: POST .../chat/completions.
 *
 * Step one: read and parse the body, apply the policy, route to a provider.
 * Step two: answer from the builtin echo provider, or encode the request for
 *           the provider's wire format and open the upstream exchange.
 * Step three: translate the answer back (whole, or frame by frame with one
 *           FLUSH per frame) and set the notes for mod_log_config.
 * Before the first byte reaches the client every failure is a JSON error
 * with a status; after it, a terminal error frame and `data: [DONE]`. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <apr_strings.h>
#include <jansson.h>

#include <http_core.h>
#include <http_connection.h>
#include <apr_portable.h>
#include "mod_maniac.h"
#include "mn_echo.h"
#include "mn_limits.h"
#include "mn_metrics_glue.h"
#include "mn_notes.h"
#include "mn_ops.h"
#include "mn_policy.h"
#include "mn_resilience.h"
#include "mn_sse.h"

typedef struct mn_request {
    request_rec *r;
    const mn_provider *prov;     /* the provider the model names, once known */
    int upstream_status;         /* of the attempt whose answer the client gets */
    int tries;                   /* exchanges with upstreams (retries included) */
    mn_usage usage;
    mn_limits_req *lim;          /* reservation and cost (src/httpd/limits.c) */
} mn_request;

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

static void send_bytes(request_rec *r, int status, const char *body, apr_size_t len)
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

static int send_json(request_rec *r, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    send_bytes(r, status, s ? s : "", s ? strlen(s) : 0);
    free(s);
    return OK;
}

static int send_error(mn_request *req, mn_error *e)
{
    request_rec *r = req->r;
    json_t *body;
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
    mn_notes_outcome(r->pool, r->notes, req->upstream_status, &req->usage, e->type, e->code);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: answered %d %s (%s)", e->status,
                  e->type, e->code[0] ? e->code : "-");
    body = mn_error_to_json(e, req->prov ? req->prov->name : NULL);
    send_json(r, e->status, body);
    json_decref(body);
    return OK;
}

static int path_is_chat_completions(const char *uri)
{
    static const char suffix[] = "/chat/completions";
    size_t len = strlen(uri), slen = sizeof(suffix) - 1;
    return len >= slen && !strcmp(uri + len - slen, suffix);
}

/* GET .../models/{id}, as the SDKs' models.retrieve sends it: the provider
 * the id names (the id's '/' may arrive as %2F, with AllowEncodedSlashes
 * NoDecode), or NULL. */
static const mn_provider *models_path_provider(const char *uri)
{
    const char *id = strstr(uri, "/models/");
    size_t len;
    if (!id) {
        return NULL;
    }
    id += 8;
    len = strcspn(id, "/%");
    if (!len || (id[len] != '/' && ap_cstr_casecmpn(id + len, "%2F", 3))) {
        return NULL;
    }
    return mn_providers_get(mn_conf->providers, id, len);
}

/* ManiacCORS: Access-Control-* on every answer to an allowed origin, and
 * the preflight.  Returns DECLINED to go on, or the preflight's answer. */
static int cors(mn_request *req, mn_error *err)
{
    request_rec *r = req->r;
    const mn_dir_config *dc = ap_get_module_config(r->per_dir_config, &maniac_module);
    const char *bad = NULL;

    switch (mn_cors_apply(r->pool, dc ? &dc->cors : NULL, r->method_number == M_OPTIONS,
                          r->headers_in, r->headers_out, &bad)) {
    case MN_CORS_GO_ON:
        return DECLINED;
    case MN_CORS_PREFLIGHT_OK:
        ap_discard_request_body(r);
        r->status = HTTP_NO_CONTENT;
        return OK;
    case MN_CORS_BAD_ORIGIN:
        mn_error_set(err, 403, "permission_error", NULL, "origin_not_allowed",
                     "Origin %s is not allowed to call this endpoint (ManiacCORS)",
                     apr_table_get(r->headers_in, "Origin"));
        break;
    case MN_CORS_BAD_HEADER:
        mn_error_set(err, 403, "permission_error", NULL, "header_not_allowed",
                     "Request header %s is not allowed from a browser (ManiacCORS)", bad);
        break;
    }
    ap_discard_request_body(r);
    return send_error(req, err);
}

static int too_large(request_rec *r, apr_off_t limit, mn_error *err)
{
    /* the rest of the body stays unread: this connection cannot be reused */
    r->connection->keepalive = AP_CONN_CLOSE;
    return mn_error_set(err, 413, "invalid_request_error", NULL, "request_too_large",
                        "The request body is larger than the %" APR_OFF_T_FMT
                        " bytes this server accepts", limit);
}

/* Reads the request body, bounded by LimitRequestBody and our own cap. */
static int read_body(request_rec *r, char **body, apr_size_t *len, mn_error *err)
{
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_bucket_brigade *all = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t total = 0, limit = ap_get_limit_req_body(r), cl = 0;
    const char *cls = apr_table_get(r->headers_in, "Content-Length");
    int seen_eos = 0, saved_proxyreq = r->proxyreq, rc = 0;

    if (limit <= 0 || limit > mn_config_max_body(r)) {
        limit = mn_config_max_body(r);
    }
    if (cls && ap_parse_strict_length(&cl, cls) && cl > limit) {
        return too_large(r, limit, err);
    }
    /* HTTP_IN answers an over-limit body itself, with an HTML page, before we
     * could say a word; it leaves the limit to us on proxy requests, so the
     * read is marked as one and the limit enforced here instead. */
    r->proxyreq = PROXYREQ_REVERSE;
    do {
        apr_bucket *e;
        apr_off_t n = 0;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            r->connection->keepalive = AP_CONN_CLOSE;
            rc = mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                              "The request body could not be read");
            break;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
            }
        }
        apr_brigade_length(bb, 1, &n);
        total += n;
        if (total > limit) {
            rc = too_large(r, limit, err);
            break;
        }
        APR_BRIGADE_CONCAT(all, bb);
    } while (!seen_eos);
    r->proxyreq = saved_proxyreq;
    apr_brigade_cleanup(bb);
    if (rc) {
        apr_brigade_cleanup(all);
        return rc;
    }
    if (apr_brigade_pflatten(all, body, len, r->pool) != APR_SUCCESS) {
        return mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                            "The request body could not be read");
    }
    apr_brigade_cleanup(all);
    return 0;
}

/* The sink the translators write into: the client brigade, a FLUSH bucket
 * after every frame. */
typedef struct {
    request_rec *r;
    apr_bucket_brigade *bb;
    int frames;
    apr_size_t pending;      /* bytes written since the last flush */
} client_sink;

static void client_write(void *baton, const char *data, size_t len)
{
    client_sink *cs = baton;
    cs->pending += len;
    apr_brigade_write(cs->bb, NULL, NULL, data, len);
}

/* Frames are not flushed one by one but when the upstream has nothing more
 * for the moment (see serve_stream): an upstream that sends its events
 * apart (every real model stream) still gets each frame out at once, and
 * frames that are already there leave together in one write instead of one
 * syscall each (measured in bench/: a write per frame cost more than all
 * the rest of the relay). */
static void client_frame_end(void *baton)
{
    client_sink *cs = baton;
    cs->frames++;
}

static apr_status_t client_flush(client_sink *cs)
{
    cs->pending = 0;
    APR_BRIGADE_INSERT_TAIL(cs->bb, apr_bucket_flush_create(cs->bb->bucket_alloc));
    return ap_pass_brigade(cs->r->output_filters, cs->bb);
}

static void start_event_stream(request_rec *r)
{
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

static void set_usage_notes(mn_request *req, const char *error_type, const char *error_code)
{
    mn_notes_outcome(req->r->pool, req->r->notes, req->upstream_status, &req->usage,
                     error_type, error_code);
}

static int serve_echo(mn_request *req, mn_wire_ctx *ctx, json_t *body)
{
    request_rec *r = req->r;
    if (ctx->stream) {
        client_sink cs = { r, apr_brigade_create(r->pool, r->connection->bucket_alloc), 0, 0 };
        mn_sink sink = { client_write, client_frame_end, &cs };
        start_event_stream(r);
        mn_echo_stream(ctx, body, &sink, &req->usage);
        mn_limits_charge(req->lim, ctx->provider_name, ctx->model, &req->usage, 0, 1);
        set_usage_notes(req, NULL, NULL);
        client_flush(&cs);
        return OK;
    }
    else {
        json_t *resp = mn_echo_response(ctx, body, &req->usage);
        mn_limits_charge(req->lim, ctx->provider_name, ctx->model, &req->usage, 0, 1);
        set_usage_notes(req, NULL, NULL);
        send_json(r, HTTP_OK, resp);
        json_decref(resp);
        return OK;
    }
}

/* One try at one target. */
typedef struct mn_attempt {
    const mn_provider *prov;     /* a copy of the provider with this try's key */
    const char *model;
    apr_time_t deadline;         /* total-timeout, 0 = none */
    int probe;                   /* this try is the breaker's probe */
    int upstream_status;
    apr_interval_time_t retry_after;   /* -1 when the upstream gave none */
} mn_attempt;

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
        mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                     "provider '%s' answered with unexpected HTTP status %d",
                     at->prov->name, status);
        return;
    }
    wire->decode_error(ctx, status, body, len, retry_after, err);
    /* before anything logs it, whatever the format's decoder did */
    mn_error_scrub(err, at->prov);
    err->status = status;
}

/* The read timeout that applies now: first-byte until the upstream sent
 * something, then idle; never past the total deadline. */
/* While a stream is quiet we look at the client this often: a client that
 * left is noticed within this time even when the model is thinking, so the
 * upstream (and its token meter) is stopped. */
#define MN_CLIENT_CHECK apr_time_from_sec(1)

typedef enum { WAIT_LIMIT, WAIT_TOTAL, WAIT_SLICE } wait_kind;

/* How long the next upstream read may block: until the first-byte or idle
 * limit counted from the last upstream byte (since), the total deadline, or
 * the next look at the client, whichever comes first. */
static apr_interval_time_t stream_wait(const mn_attempt *at, apr_time_t since, int got_bytes,
                                       int check_client, wait_kind *kind)
{
    apr_time_t now = apr_time_now();
    apr_time_t wake = since + (got_bytes ? at->prov->idle_timeout : at->prov->first_byte_timeout);
    *kind = WAIT_LIMIT;
    if (at->deadline && at->deadline <= wake) {
        wake = at->deadline;
        *kind = WAIT_TOTAL;
    }
    if (check_client && now + MN_CLIENT_CHECK < wake) {
        wake = now + MN_CLIENT_CHECK;
        *kind = WAIT_SLICE;
    }
    return wake > now ? wake - now : 1;
}

/* Has the client closed its connection?  Only a plain HTTP/1 connection can
 * be asked (a peek at its socket); HTTP/2 streams are mod_http2's business. */
static int client_has_left(conn_rec *c)
{
    apr_socket_t *sock;
    apr_os_sock_t fd;
    char b;
    ssize_t n;

    if (c->aborted) {
        return 1;
    }
    if (c->master || !(sock = ap_get_conn_socket(c)) || apr_os_sock_get(&fd, sock) != APR_SUCCESS) {
        return 0;
    }
    n = recv(fd, &b, 1, MSG_PEEK | MSG_DONTWAIT);
    return n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR);
}

/* Non-streaming 2xx: 0 when the answer was sent, -1 with err otherwise. */
static int serve_whole(mn_request *req, mn_attempt *at, const mn_wire *wire, mn_wire_ctx *ctx,
                       mn_upstream *u, mn_error *err)
{
    char *body;
    apr_size_t len;
    json_t *resp = NULL;
    apr_status_t rv;

    rv = mn_upstream_read_all(u, mn_config_max_response(req->r), at->prov->idle_timeout,
                              at->deadline, &body, &len);
    mn_upstream_close(u);
    if (rv != APR_SUCCESS) {
        /* poll() sleeps in whole milliseconds: a wake-up just short of
         * the deadline is still the deadline */
        if (APR_STATUS_IS_TIMEUP(rv) && at->deadline
            && apr_time_now() + apr_time_from_msec(20) >= at->deadline) {
            return mn_error_set(err, 504, NULL, NULL, "upstream_total_timeout",
                                "provider '%s' exceeded its total-timeout", at->prov->name);
        }
        if (APR_STATUS_IS_TIMEUP(rv)) {
            return mn_error_set(err, 504, NULL, NULL, "upstream_timeout",
                                "provider '%s' stopped sending within the timeout",
                                at->prov->name);
        }
        if (rv == APR_ENOSPC) {
            return mn_error_set(err, 502, NULL, NULL, "upstream_too_large",
                                "provider '%s' sent a response larger than %" APR_SIZE_T_FMT
                                " bytes", at->prov->name, mn_config_max_response(req->r));
        }
        return mn_error_set(err, 502, NULL, NULL, "upstream_reset",
                            "provider '%s' broke off the response", at->prov->name);
    }
    if (wire->decode_response_bytes) {
        const char *bytes;
        size_t blen;
        if (wire->decode_response_bytes(ctx, body, len, &bytes, &blen, &req->usage, err)) {
            return -1;
        }
        mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, 0, 1);
        set_usage_notes(req, NULL, NULL);
        send_bytes(req->r, HTTP_OK, bytes, blen);
        return 0;
    }
    if (wire->decode_response(ctx, body, len, &resp, &req->usage, err)) {
        return -1;
    }
    mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, 0, 1);
    set_usage_notes(req, NULL, NULL);
    send_json(req->r, HTTP_OK, resp);
    json_decref(resp);
    return 0;
}

typedef struct {
    const mn_wire *wire;
    mn_stream *st;
    mn_sink *sink;
    mn_stream_status status;
} stream_feed;

static int on_sse(void *baton, mn_sse_kind kind, const char *event, const char *data,
                  size_t len)
{
    stream_feed *f = baton;
    if (f->status == MN_STREAM_MORE) {
        f->status = f->wire->stream_feed(f->st, kind, event, data, len, f->sink);
    }
    /* once the translator is done the rest of the body is irrelevant */
    return f->status != MN_STREAM_MORE;
}

#define MN_DRAIN_WAIT apr_time_from_msec(100)
#define MN_DRAIN_MAX 65536

static void drain_after_done(mn_upstream *u, apr_bucket_brigade *bb)
{
    /* Reading to the end of the body lets the connection go back to the
     * pool.  The client already has [DONE]; an upstream that sends its
     * final chunk a little later is waited for briefly, one that idles or
     * keeps talking just loses the connection. */
    apr_off_t drained = 0;
    apr_read_type_e mode = APR_NONBLOCK_READ;
    for (;;) {
        apr_off_t n = 0;
        apr_status_t rv = mn_upstream_read(u, bb, mode);
        apr_brigade_length(bb, 1, &n);
        apr_brigade_cleanup(bb);
        drained += n;
        if (rv == APR_EOF) {
            return;
        }
        if (rv != APR_SUCCESS || drained > MN_DRAIN_MAX
            || (mode == APR_BLOCK_READ && n == 0)) {
            mn_upstream_abandon(u);
            return;
        }
        if (n == 0) {
            mn_upstream_set_timeout(u, MN_DRAIN_WAIT);
            mode = APR_BLOCK_READ;
        }
    }
}

/* Bytes that may pile up between two flushes while the upstream keeps
 * sending faster than we relay. */
#define MN_COALESCE_MAX 65536

/* Feeds what a read brought into the SSE parser and empties the brigade.
 * Returns the parser's code; *rv becomes an error when a bucket fails. */
static int feed_brigade(apr_bucket_brigade *in, mn_sse_parser *parser, apr_status_t *rv,
                        int *got_bytes, apr_time_t *since)
{
    apr_bucket *e;
    int parse_rc = 0;

    for (e = APR_BRIGADE_FIRST(in); e != APR_BRIGADE_SENTINEL(in) && !parse_rc;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t dlen;
        if (apr_bucket_read(e, &data, &dlen, APR_BLOCK_READ) != APR_SUCCESS) {
            *rv = APR_EGENERAL;
            break;
        }
        if (dlen) {
            *got_bytes = 1;
            *since = apr_time_now();
        }
        parse_rc = mn_sse_feed(parser, data, dlen);
    }
    apr_brigade_cleanup(in);
    return parse_rc;
}

/* Streaming 2xx.  0 when the client got a response (complete, or ended by an
 * error frame after the first byte); -1 with err when the upstream failed
 * before anything was sent, so the caller may still answer or fall back. */
static int serve_stream(mn_request *req, mn_attempt *at, const mn_wire *wire,
                        mn_wire_ctx *ctx, mn_upstream *u, mn_error *err)
{
    request_rec *r = req->r;
    conn_rec *c = r->connection;
    client_sink cs = { r, apr_brigade_create(r->pool, c->bucket_alloc), 0, 0 };
    mn_sink sink = { client_write, client_frame_end, &cs };
    apr_bucket_brigade *in = apr_brigade_create(r->pool, c->bucket_alloc);
    mn_sse_parser parser;
    stream_feed feed;
    mn_error cause;
    const mn_error *final_err;
    int committed = 0, client_gone = 0, got_bytes = 0;
    apr_time_t since = apr_time_now();
    wait_kind wait = WAIT_LIMIT;
    long frames_sent = 0;

    feed.wire = wire;
    feed.st = wire->stream_create(ctx);
    feed.sink = &sink;
    feed.status = MN_STREAM_MORE;
    if (!feed.st) {
        mn_upstream_close(u);
        return mn_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    mn_sse_init(&parser, mn_config_max_event(r), on_sse, &feed);
    mn_error_clear(&cause);

    while (feed.status == MN_STREAM_MORE) {
        apr_status_t rv;
        int parse_rc = 0;

        /* this read blocks until the upstream has something: what arrived
         * is translated and flushed before the next blocking read, so
         * nothing waits */
        mn_upstream_set_timeout(u, stream_wait(at, since, got_bytes, 1, &wait));
        rv = mn_upstream_read(u, in, APR_BLOCK_READ);
        if (APR_STATUS_IS_TIMEUP(rv) && wait == WAIT_SLICE) {
            if (client_has_left(c)) {
                client_gone = 1;
                break;
            }
            continue;
        }
        parse_rc = feed_brigade(in, &parser, &rv, &got_bytes, &since);
        /* what the upstream already sent goes out with it: read on without
         * blocking until it has nothing more, then one FLUSH (as
         * mod_proxy_http does); the first frame still leaves at once */
        while (rv == APR_SUCCESS && !parse_rc && feed.status == MN_STREAM_MORE
               && cs.pending < MN_COALESCE_MAX) {
            rv = mn_upstream_read(u, in, APR_NONBLOCK_READ);
            if (rv != APR_SUCCESS || APR_BRIGADE_EMPTY(in)) {
                break;
            }
            parse_rc = feed_brigade(in, &parser, &rv, &got_bytes, &since);
        }

        if (parse_rc == MN_SSE_ERR_TOO_LONG) {
            mn_error_set(&cause, 502, NULL, NULL, "upstream_event_too_large",
                         "provider '%s' sent a stream event larger than %" APR_SIZE_T_FMT
                         " bytes", at->prov->name, mn_config_max_event(r));
            feed.status = wire->stream_end(feed.st, &cause, &sink);
        }
        else if (feed.status == MN_STREAM_MORE) {
            if (rv == APR_EOF) {
                mn_sse_finish(&parser);
                if (feed.status == MN_STREAM_MORE) {
                    feed.status = wire->stream_end(feed.st, NULL, &sink);
                }
            }
            else if (APR_STATUS_IS_TIMEUP(rv)) {
                if (wait == WAIT_TOTAL) {
                    mn_error_set(&cause, 504, NULL, NULL, "upstream_total_timeout",
                                 "provider '%s' exceeded its total-timeout", at->prov->name);
                }
                else {
                    mn_error_set(&cause, 504, NULL, NULL, "upstream_timeout",
                                 "provider '%s' sent nothing within its %s timeout",
                                 at->prov->name, got_bytes ? "idle" : "first-byte");
                }
                feed.status = wire->stream_end(feed.st, &cause, &sink);
            }
            else if (rv != APR_SUCCESS) {
                mn_error_set(&cause, 502, NULL, NULL, "upstream_reset",
                             "provider '%s' broke off the stream", at->prov->name);
                feed.status = wire->stream_end(feed.st, &cause, &sink);
            }
        }

        if (feed.status == MN_STREAM_FAILED && !committed && cs.frames <= 2) {
            /* the upstream failed before producing anything (the two frames
             * are the error and [DONE]): nothing is lost by answering with a
             * plain JSON error, or by trying the next target */
            apr_brigade_cleanup(cs.bb);
            break;
        }
        if (!APR_BRIGADE_EMPTY(cs.bb)) {
            if (!committed) {
                start_event_stream(r);
                committed = 1;
            }
            frames_sent += cs.frames;
            cs.frames = 0;
            if (client_flush(&cs) != APR_SUCCESS || c->aborted) {
                apr_brigade_cleanup(cs.bb);
                client_gone = 1;
                break;
            }
            apr_brigade_cleanup(cs.bb);
        }
    }
    mn_sse_free(&parser);

    req->usage = *wire->stream_usage(feed.st);
    final_err = wire->stream_error(feed.st);
    /* every attempt is charged, the ones a fallback replaced included */
    mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, frames_sent,
                     feed.status == MN_STREAM_DONE && !client_gone);
    if (client_gone) {
        /* stop reading; the half-read connection must never be reused */
        mn_upstream_abandon(u);
        mn_upstream_close(u);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r,
                      "maniac: client went away after %ld frames", frames_sent);
        set_usage_notes(req, "client_aborted", NULL);
        wire->stream_destroy(feed.st);
        return 0;
    }
    if (feed.status == MN_STREAM_DONE) {
        drain_after_done(u, in);
    }
    else {
        mn_upstream_abandon(u);
    }
    mn_upstream_close(u);
    if (final_err && !committed && feed.status == MN_STREAM_FAILED) {
        *err = *final_err;
        wire->stream_destroy(feed.st);
        return -1;
    }
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: stream from %s ended %s after %ld frames",
                  at->prov->name, final_err ? final_err->type : "cleanly", frames_sent);
    set_usage_notes(req, final_err ? final_err->type : NULL, final_err ? final_err->code : NULL);
    wire->stream_destroy(feed.st);
    return 0;
}

static int is_event_stream(apr_table_t *headers)
{
    const char *ct = apr_table_get(headers, "Content-Type");
    return ct && ap_strcasestr(ct, "event-stream") != NULL;
}

/* Failures before the first byte that another try may cure. */
static int error_is_retryable(const mn_error *err)
{
    static const char *const codes[] = { "upstream_unreachable", "upstream_tls_error",
        "upstream_timeout", "upstream_total_timeout", "upstream_reset", "upstream_busy", NULL };
    int i;
    for (i = 0; codes[i]; i++) {
        if (!strcmp(err->code, codes[i])) {
            return 1;
        }
    }
    return 0;
}

/* "unreachable" for upstream_unreachable etc.: the attempt note's wording. */
static const char *attempt_label(apr_pool_t *p, const mn_error *err)
{
    const char *c = err->code[0] ? err->code : err->type;
    return strncmp(c, "upstream_", 9) ? apr_pstrdup(p, c) : apr_pstrdup(p, c + 9);
}

static void wire_ctx_init(mn_wire_ctx *ctx, request_rec *r, const mn_provider *prov,
                          const char *model, const mn_policy_result *pol)
{
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

/* One try: encode, exchange, answer.  Returns the outcome; *sent says whether
 * the client already got its response (then nothing else may be tried). */
static mn_outcome try_target(mn_request *req, mn_attempt *at, json_t *body,
                             const mn_policy_result *pol, int *sent, mn_error *err)
{
    request_rec *r = req->r;
    const mn_wire *wire = mn_wire_for(at->prov->format);
    mn_wire_ctx ctx;
    mn_upstream_req up;
    mn_upstream *u;
    int rc;

    *sent = 0;
    at->upstream_status = req->upstream_status = 0;
    at->retry_after = -1;
    wire_ctx_init(&ctx, r, at->prov, at->model, pol);

    memset(&up, 0, sizeof(up));
    if (wire->encode_request(&ctx, body, &up, err)) {
        return MN_OUTCOME_CALLER;
    }
    if (!up.headers) {
        up.headers = apr_table_make(r->pool, 4);
    }
    mn_ops_upstream_headers(r, pol, up.headers);
    if (mn_upstream_open(r, at->prov, &up, at->deadline, &u, err)) {
        return error_is_retryable(err) ? MN_OUTCOME_FAILURE : MN_OUTCOME_CALLER;
    }
    mn_ops_upstream_answered(r, mn_upstream_headers(u));
    at->upstream_status = req->upstream_status = mn_upstream_status(u);
    if (at->upstream_status < 200 || at->upstream_status >= 300) {
        read_upstream_error(req, at, wire, &ctx, u, err);
        return mn_outcome_for_status(at->upstream_status);
    }
    if (ctx.stream && is_event_stream(mn_upstream_headers(u))) {
        rc = serve_stream(req, at, wire, &ctx, u, err);
    }
    else if (ctx.stream) {
        mn_upstream_close(u);
        rc = mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                          "provider '%s' answered a streaming request without an event stream",
                          at->prov->name);
    }
    else {
        rc = serve_whole(req, at, wire, &ctx, u, err);
    }
    if (rc == 0) {
        *sent = 1;
        return MN_OUTCOME_SUCCESS;
    }
    /* a 2xx that went wrong before the first byte reached the client */
    return error_is_retryable(err) ? MN_OUTCOME_FAILURE : MN_OUTCOME_CALLER;
}

static void log_breaker(request_rec *r, const mn_provider *prov, mn_breaker_change change)
{
    switch (change) {
    case MN_BREAKER_OPENED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s opened "
                      "after %d consecutive failures (cooldown %" APR_TIME_T_FMT " ms)",
                      prov->name, prov->breaker_failures, apr_time_as_msec(prov->breaker_cooldown));
        break;
    case MN_BREAKER_REOPENED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s stays "
                      "open: the probe failed", prov->name);
        break;
    case MN_BREAKER_CLOSED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s closed",
                      prov->name);
        break;
    default:
        break;
    }
}

static mn_breaker_slot *breaker_of(const mn_provider *prov)
{
    return mn_conf->breakers ? &mn_conf->breakers[prov->index] : NULL;
}

#define MN_BACKOFF_BASE apr_time_from_msec(100)
#define MN_RETRY_AFTER_CAP apr_time_from_sec(10)

/* Tries the targets in order: retries on the same target, then the next one,
 * until one answers or the caller's own error ends it. */
static int serve_targets(mn_request *req, json_t *body, const mn_policy_result *pol,
                         const mn_target *targets, int ntargets, mn_error *err)
{
    request_rec *r = req->r;
    apr_array_header_t *attempts = apr_array_make(r->pool, 4, sizeof(const char *));
    int ti, have_err = 0, last_status = 0;
    mn_error last;

    mn_error_clear(&last);
    for (ti = 0; ti < ntargets; ti++) {
        const mn_provider *prov = targets[ti].provider;
        mn_breaker_slot *slot = breaker_of(prov);
        int try_no = 0, keys_tried = 1;
        apr_uint32_t key_index = 0;
        mn_attempt at;

        req->prov = prov;
        apr_table_setn(r->notes, "maniac-provider", prov->name);
        apr_table_setn(r->notes, "maniac-model", targets[ti].model);
        if (prov->unavailable) {
            /* its key was missing at a graceful restart; the reason names
             * the variable or file, never a value */
            *(const char **)apr_array_push(attempts) =
                apr_pstrcat(r->pool, prov->name, ":unavailable", NULL);
            mn_error_set(&last, 503, "server_error", NULL, "provider_unavailable",
                         "provider '%s' is unavailable: %s", prov->name, prov->unavailable);
            have_err = 1;
            continue;
        }
        if (prov->format == MN_FORMAT_ECHO) {
            mn_wire_ctx ctx;
            wire_ctx_init(&ctx, r, prov, targets[ti].model, pol);
            *(const char **)apr_array_push(attempts) = apr_pstrcat(r->pool, prov->name, ":200", NULL);
            apr_table_setn(r->notes, "maniac-attempts", apr_array_pstrcat(r->pool, attempts, ','));
            apr_table_setn(r->notes, "maniac-fallback", ti ? "1" : "0");
            req->upstream_status = 0;
            return serve_echo(req, &ctx, body);
        }
        if (slot && prov->nkeys > 1) {
            key_index = apr_atomic_inc32(&slot->rr);
        }
        for (;;) {
            mn_provider *keyed = apr_pmemdup(r->pool, prov, sizeof(*prov));
            apr_interval_time_t wait;
            mn_outcome outcome;
            mn_breaker_change change;
            int sent;

            memset(&at, 0, sizeof(at));
            if (!mn_breaker_allow(slot, prov->breaker_failures, prov->breaker_cooldown,
                                  apr_time_now(), &at.probe, &wait)) {
                *(const char **)apr_array_push(attempts) =
                    apr_pstrcat(r->pool, prov->name, ":circuit_open", NULL);
                if (try_no > 0) {
                    /* this request's own failures opened it: report those */
                    break;
                }
                last_status = 0;
                mn_error_set(&last, 503, "server_error", NULL, "circuit_open",
                             "provider '%s' is unavailable after repeated failures; "
                             "retry later", prov->name);
                apr_snprintf(last.retry_after, sizeof(last.retry_after), "%" APR_TIME_T_FMT,
                             apr_time_sec(wait + APR_USEC_PER_SEC - 1));
                have_err = 1;
                break;
            }
            if (prov->nkeys > 1) {
                keyed->key = prov->keys[key_index % (apr_uint32_t)prov->nkeys];
            }
            at.prov = keyed;
            at.model = targets[ti].model;
            at.deadline = prov->total_timeout ? apr_time_now() + prov->total_timeout : 0;
            mn_error_clear(err);
            req->tries++;
            outcome = try_target(req, &at, body, pol, &sent, err);
            change = mn_breaker_record(slot, prov->breaker_failures, prov->breaker_cooldown,
                                       apr_time_now(), outcome, at.probe);
            log_breaker(r, prov, change);
            *(const char **)apr_array_push(attempts) =
                at.upstream_status && (sent || at.upstream_status < 200 || at.upstream_status >= 300)
                    ? apr_psprintf(r->pool, "%s:%d", prov->name, at.upstream_status)
                    : apr_pstrcat(r->pool, prov->name, ":", attempt_label(r->pool, err), NULL);
            if (sent) {
                apr_table_setn(r->notes, "maniac-attempts",
                               apr_array_pstrcat(r->pool, attempts, ','));
                apr_table_setn(r->notes, "maniac-fallback", ti ? "1" : "0");
                return OK;
            }
            last = *err;
            last_status = at.upstream_status;
            have_err = 1;
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: try %d at %s failed: %s (%s)",
                          try_no + 1, prov->name, err->type, err->code[0] ? err->code : "-");
            if ((outcome == MN_OUTCOME_KEY || at.upstream_status == 429)
                && keys_tried < prov->nkeys) {
                /* this key is refused: the same request with the next key */
                keys_tried++;
                key_index++;
                continue;
            }
            if (outcome == MN_OUTCOME_CALLER || outcome == MN_OUTCOME_KEY) {
                /* the caller's (or our key's) fault: no retry, no fallback */
                apr_table_setn(r->notes, "maniac-attempts",
                               apr_array_pstrcat(r->pool, attempts, ','));
                return send_error(req, err);
            }
            if (try_no >= prov->retries) {
                break;
            }
            wait = mn_backoff(try_no, MN_BACKOFF_BASE,
                              at.retry_after, MN_RETRY_AFTER_CAP,
                              (double)(apr_time_now() % 1000) / 1000.0);
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: retrying %s in %" APR_TIME_T_FMT
                          " ms", prov->name, apr_time_as_msec(wait));
            apr_sleep(wait);
            /* waiting for an upstream, not work in the gateway */
            mn_ops_clock_of(r)->upstream += wait;
            try_no++;
        }
    }
    apr_table_setn(r->notes, "maniac-attempts", apr_array_pstrcat(r->pool, attempts, ','));
    req->upstream_status = last_status;
    if (!have_err) {
        mn_error_set(&last, 502, NULL, NULL, "upstream_unreachable", "no provider answered");
    }
    *err = last;
    return send_error(req, err);
}

/* What the request's model names: an alias (its targets), or a known
 * provider and a model.  NULL when neither; req->prov is set whenever a
 * provider is named, so that even the errors before routing say which. */
static const mn_target *route(mn_request *req, const char *model, mn_target *single,
                              int *ntargets, int *is_alias)
{
    const mn_alias *alias = mn_alias_get(mn_conf->providers, model);
    const char *slash;

    *is_alias = alias != NULL;
    if (alias) {
        *ntargets = alias->targets->nelts;
        req->prov = APR_ARRAY_IDX(alias->targets, 0, mn_target).provider;
        return (const mn_target *)alias->targets->elts;
    }
    slash = strchr(model, '/');
    if (slash) {
        req->prov = mn_providers_get(mn_conf->providers, model, (size_t)(slash - model));
    }
    if (!req->prov || !slash[1]) {
        return NULL;
    }
    memset(single, 0, sizeof(*single));
    single->provider = req->prov;
    single->model = apr_pstrdup(req->r->pool, slash + 1);
    *ntargets = 1;
    return single;
}

/* What every target keeps (keep=): a field may only pass when whichever
 * target serves the request can carry it. */
static unsigned targets_keep(const mn_target *targets, int ntargets)
{
    unsigned keep = ~0u;
    int i;
    if (!targets || ntargets < 1) {
        return 0;
    }
    for (i = 0; i < ntargets; i++) {
        keep &= targets[i].provider->keep;
    }
    return keep;
}

/* The client key's models= (AuthType maniac): the name asked for matches, or
 * it is an alias whose every target's provider/model matches. */
static int key_allows(request_rec *r, const char *model, const mn_alias *alias)
{
    const mn_client_key *k = mn_auth_key(r);
    int i;
    if (!k || !k->models || mn_key_model_allowed(k, model)) {
        return 1;
    }
    for (i = 0; alias && i < alias->targets->nelts; i++) {
        const mn_target *t = &APR_ARRAY_IDX(alias->targets, i, mn_target);
        if (!mn_key_model_allowed(k, apr_pstrcat(r->pool, t->provider->name, "/", t->model,
                                                 NULL))) {
            return 0;
        }
    }
    return alias != NULL;
}

static int serve(mn_request *req, json_t *body, mn_error *err)
{
    request_rec *r = req->r;
    mn_policy_result pol;
    const mn_target *targets = NULL;
    const char *model = json_string_value(json_object_get(body, "model"));
    int ntargets = 0, is_alias = 0, rc;
    mn_target single;

    if (model && *model) {
        targets = route(req, model, &single, &ntargets, &is_alias);
    }
    if (req->prov) {
        apr_table_setn(r->notes, "maniac-provider", req->prov->name);
    }
    if (mn_policy_apply(body, targets_keep(targets, ntargets), &pol, err)) {
        return send_error(req, err);
    }
    if (!key_allows(r, pol.model, is_alias ? mn_alias_get(mn_conf->providers, pol.model) : NULL)) {
        mn_notes_request(r->pool, r->notes, &pol, NULL, NULL);
        mn_auth_add_tags(r);
        mn_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist or you do not have access to it.",
                     pol.model);
        mn_policy_result_clear(&pol);
        return send_error(req, err);
    }
    if (!targets) {
        mn_notes_request(r->pool, r->notes, &pol, NULL, NULL);
        mn_auth_add_tags(r);
        mn_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: use \"provider/model\" with a provider "
                     "configured by ManiacProvider, or a ManiacModel alias", pol.model);
        mn_policy_result_clear(&pol);
        return send_error(req, err);
    }
    mn_notes_request(r->pool, r->notes, &pol, targets[0].provider->name, targets[0].model);
    mn_auth_add_tags(r);
    mn_ops_client_trace(r, &pol);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: route %s -> %s%s (%d target%s), stream=%d",
                  pol.model, targets[0].provider->name, is_alias ? " via alias" : "", ntargets,
                  ntargets == 1 ? "" : "s", pol.stream);
    if (mn_limits_admit(r, body, pol.stream, targets, ntargets, &req->lim, err)) {
        req->prov = targets[0].provider;     /* the error names the routed provider */
        mn_policy_result_clear(&pol);
        return send_error(req, err);
    }
    rc = serve_targets(req, body, &pol, targets, ntargets, err);
    mn_limits_finish(req->lim);
    mn_policy_result_clear(&pol);
    return rc;
}

static int handle(request_rec *r)
{
    mn_request req;
    mn_error err;
    char *raw;
    apr_size_t len;
    json_t *body;
    json_error_t jerr;
    int rc;

    memset(&req, 0, sizeof(req));
    req.r = r;
    mn_error_clear(&err);

    if ((rc = cors(&req, &err)) != DECLINED) {
        return rc;
    }
    if (!path_is_chat_completions(r->uri)) {
        if ((rc = mn_ops_endpoints(r)) != DECLINED) {
            return rc;
        }
        req.prov = models_path_provider(r->uri);
        mn_error_set(&err, 404, "invalid_request_error", NULL, NULL,
                     "Invalid URL (%s %s): this endpoint serves POST .../chat/completions "
                     "(a model is named provider/model in the request body)",
                     r->method, r->uri);
        ap_discard_request_body(r);
        return send_error(&req, &err);
    }
    if (r->method_number != M_POST) {
        mn_error_set(&err, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed: use POST", r->method);
        ap_discard_request_body(r);
        return send_error(&req, &err);
    }
    if (read_body(r, &raw, &len, &err)) {
        return send_error(&req, &err);
    }
    body = json_loadb(raw, len, 0, &jerr);
    if (!body) {
        mn_error_set(&err, 400, "invalid_request_error", NULL, "invalid_json",
                     "The request body is not valid JSON: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
        return send_error(&req, &err);
    }
    rc = serve(&req, body, &err);
    json_decref(body);
    return rc;
}

int mn_handler(request_rec *r)
{
    int rc;
    if (!r->handler || strcmp(r->handler, MN_HANDLER_NAME)) {
        return DECLINED;
    }
    rc = handle(r);
    mn_ops_finish(r);
    return rc;
}
