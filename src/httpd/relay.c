/* The stream relay: upstream SSE in, the translator's frames out, as a
 * state machine (like h2_stream.c's, one transit() for every change).
 *
 *   WAITING ──bytes/EOF/error──> TRANSLATING ──frames──> FLUSHING ──> WAITING
 *      │ client left                │ failed, nothing      │ client left
 *      v                            v produced             v
 *   ABANDONED                    FAILED_EARLY           ABANDONED
 *   translator done: FLUSHING ──> DRAINING ──> DONE; failed after the first
 *   byte: FLUSHING ──> ABANDONED.
 *
 * Orthogonal to those, the relay is SILENT until the translator hands the
 * client its first content frame (a frame written while the translator has
 * not failed), then SPEAKING.  Only a SILENT relay can fail early: the
 * terminal error frame and [DONE] of a failed translator are not content.
 *
 * Reads coalesce as mod_proxy_http's do: after a blocking read, what the
 * upstream already sent is read without blocking and leaves in one write
 * with one FLUSH.  While the upstream is silent the client is looked at
 * every MN_CLIENT_CHECK, so a client that left stops the upstream (and its
 * token meter) even while the model thinks.  Every state leaves through one
 * exit, relay_exit(), whose subpool cleanups release the SSE parser, the
 * translator and the upstream connection on every path. */
#include <errno.h>
#include <sys/socket.h>
#include <apr_portable.h>

#include "mn_serve.h"
#include <http_core.h>
#include <http_connection.h>
#include "mn_sse.h"

typedef enum {
    RELAY_WAITING,       /* a blocking read: the upstream's next bytes, or a look at the client */
    RELAY_TRANSLATING,   /* what arrived goes through the parser and translator */
    RELAY_FLUSHING,      /* the frames leave with one FLUSH */
    RELAY_DRAINING,      /* the translator is done: the upstream's tail is read */
    RELAY_FAILED_EARLY,  /* failed before the first byte: nothing was sent, the
                          * caller may still answer with an error or fall back */
    RELAY_ABANDONED,     /* ended before the upstream did (client gone, or the
                          * stream failed after its first byte): no reuse */
    RELAY_DONE           /* drained to its end: the connection may be reused */
} relay_state;

static const char *const state_names[RELAY_DONE + 1] = {
    "waiting", "translating", "flushing", "draining", "failed_early", "abandoned", "done"
};

/* While a stream is quiet we look at the client this often: a client that
 * left is noticed within this time even when the model is thinking, so the
 * upstream (and its token meter) is stopped. */
#define MN_CLIENT_CHECK apr_time_from_sec(1)

/* Bytes that may pile up between two flushes while the upstream keeps
 * sending faster than we relay. */
#define MN_COALESCE_MAX 65536

#define MN_DRAIN_WAIT apr_time_from_msec(100)
#define MN_DRAIN_MAX 65536

typedef enum { WAIT_LIMIT, WAIT_TOTAL, WAIT_SLICE } wait_kind;

typedef enum {
    VOICE_SILENT,        /* nothing for the client yet: a failure is answered as an error */
    VOICE_SPEAKING       /* the client has content: a failure ends the stream */
} relay_voice;

typedef struct relay {
    relay_state state;
    mn_request *req;
    mn_attempt *at;
    const mn_wire *wire;
    mn_upstream *u;
    apr_pool_t *pool;            /* this relay's: its cleanups are the one exit */
    mn_client_sink cs;
    mn_sink tap;                 /* what the translator writes into: cs.out, watched */
    relay_voice voice;
    apr_bucket_brigade *in;
    mn_sse_parser parser;
    mn_stream *st;
    mn_stream_status status;     /* the translator's */
    apr_status_t rv;             /* of the last upstream read */
    wait_kind wait;              /* what the last blocking read waited for */
    int got_bytes;               /* the upstream sent something */
    int client_gone;
    apr_time_t since;            /* the last upstream byte (or the start) */
    long frames_sent;
} relay;

static void transit(relay *rl, relay_state to)
{
    if (to != rl->state) {
        /* a level test before any formatting: nothing per frame unless asked */
        ap_log_rerror(APLOG_MARK, APLOG_TRACE3, 0, rl->req->r, "maniac: relay %s -> %s",
                      state_names[rl->state], state_names[to]);
    }
    rl->state = to;
}

/* How long the next upstream read may block: until the first-byte or idle
 * limit counted from the last upstream byte, the total deadline, or the
 * next look at the client, whichever comes first. */
static apr_interval_time_t stream_wait(relay *rl)
{
    const mn_attempt *at = rl->at;
    apr_time_t now = apr_time_now();
    apr_time_t wake = rl->since + (rl->got_bytes ? at->prov->idle_timeout
                                                 : at->prov->first_byte_timeout);
    rl->wait = WAIT_LIMIT;
    if (at->deadline && at->deadline <= wake) {
        wake = at->deadline;
        rl->wait = WAIT_TOTAL;
    }
    if (now + MN_CLIENT_CHECK < wake) {
        wake = now + MN_CLIENT_CHECK;
        rl->wait = WAIT_SLICE;
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

/* The frames written so far leave with one FLUSH (the stream's headers with
 * the first).  -1 when the client is gone. */
static int relay_flush(relay *rl)
{
    apr_status_t rv;

    ap_log_rerror(APLOG_MARK, APLOG_TRACE4, 0, rl->req->r,
                  "maniac: relay flush: %d frames, %" APR_SIZE_T_FMT " bytes", rl->cs.frames,
                  rl->cs.pending);
    rl->frames_sent += rl->cs.frames;
    rl->cs.frames = 0;
    rv = mn_client_flush(&rl->cs);
    apr_brigade_cleanup(rl->cs.bb);
    if (rv != APR_SUCCESS || rl->req->r->connection->aborted) {
        rl->client_gone = 1;
        return -1;
    }
    return 0;
}

static void tap_write(void *baton, const char *data, size_t len)
{
    relay *rl = baton;
    rl->cs.out->write(rl->cs.out->baton, data, len);
}

/* A frame written while the translator has not failed is content (a failed
 * one is FAILED before it writes its terminal frames, see mn_stream_fail).
 * The first content frame leaves at once, with the stream's headers: a read
 * brings the rest of a fast upstream's burst too, and the client must not
 * wait for its translation (time to first token). */
static void tap_frame_end(void *baton)
{
    relay *rl = baton;
    int first = 0;
    if (rl->voice == VOICE_SILENT && !rl->wire->stream_error(rl->st)) {
        rl->voice = VOICE_SPEAKING;
        first = 1;
    }
    rl->cs.out->frame_end(rl->cs.out->baton);
    if (first) {
        relay_flush(rl);
    }
}

static int on_sse(void *baton, mn_sse_kind kind, const char *event, const char *data,
                  size_t len)
{
    relay *rl = baton;
    if (rl->status == MN_STREAM_MORE) {
        rl->status = rl->wire->stream_feed(rl->st, kind, event, data, len, &rl->tap);
    }
    /* once the translator is done (or the client gone) the rest of the body
     * is irrelevant */
    return rl->status != MN_STREAM_MORE || rl->client_gone;
}

/* Feeds what a read brought into the SSE parser and empties the brigade.
 * Returns the parser's code; rl->rv becomes an error when a bucket fails. */
static int feed_brigade(relay *rl)
{
    apr_bucket *e;
    int parse_rc = 0;

    for (e = APR_BRIGADE_FIRST(rl->in); e != APR_BRIGADE_SENTINEL(rl->in) && !parse_rc;
         e = APR_BUCKET_NEXT(e)) {
        const char *data;
        apr_size_t dlen;
        if (apr_bucket_read(e, &data, &dlen, APR_BLOCK_READ) != APR_SUCCESS) {
            rl->rv = APR_EGENERAL;
            break;
        }
        if (dlen) {
            rl->got_bytes = 1;
            rl->since = apr_time_now();
        }
        parse_rc = mn_sse_feed(&rl->parser, data, dlen);
    }
    apr_brigade_cleanup(rl->in);
    return parse_rc;
}

/* WAITING: this read blocks until the upstream has something (what arrives
 * is translated and flushed before the next blocking read, so nothing
 * waits), or until it is time to look at the client. */
static relay_state on_waiting(relay *rl)
{
    mn_upstream_set_timeout(rl->u, stream_wait(rl));
    rl->rv = mn_upstream_read(rl->u, rl->in, APR_BLOCK_READ);
    if (APR_STATUS_IS_TIMEUP(rl->rv) && rl->wait == WAIT_SLICE) {
        if (client_has_left(rl->req->r->connection)) {
            rl->client_gone = 1;
            return RELAY_ABANDONED;
        }
        return RELAY_WAITING;
    }
    return RELAY_TRANSLATING;
}

/* Why the upstream read ended the stream early (NULL: it did not). */
static const mn_error *read_cause(relay *rl, mn_error *cause)
{
    const char *name = rl->at->prov->name;
    if (APR_STATUS_IS_TIMEUP(rl->rv) && rl->wait == WAIT_TOTAL) {
        mn_error_fail(cause, MN_FAIL_TOTAL_TIMEOUT, "provider '%s' exceeded its total-timeout",
                      name);
    }
    else if (APR_STATUS_IS_TIMEUP(rl->rv)) {
        mn_error_fail(cause, MN_FAIL_TIMEOUT, "provider '%s' sent nothing within its %s timeout",
                      name, rl->got_bytes ? "idle" : "first-byte");
    }
    else if (rl->rv != APR_SUCCESS) {
        mn_error_fail(cause, MN_FAIL_RESET, "provider '%s' broke off the stream", name);
    }
    else {
        return NULL;
    }
    return cause;
}

/* Has the translator produced nothing the client should see? */
static int nothing_produced(const relay *rl)
{
    return !rl->cs.started && rl->voice == VOICE_SILENT;
}

/* TRANSLATING: what the upstream already sent goes out with it: read on
 * without blocking until it has nothing more (as mod_proxy_http does), then
 * to FLUSHING; the first frame still leaves at once. */
static relay_state on_translating(relay *rl)
{
    int parse_rc = feed_brigade(rl);
    mn_error cause;

    while (rl->rv == APR_SUCCESS && !parse_rc && rl->status == MN_STREAM_MORE
           && rl->cs.pending < MN_COALESCE_MAX) {
        rl->rv = mn_upstream_read(rl->u, rl->in, APR_NONBLOCK_READ);
        if (rl->rv != APR_SUCCESS || APR_BRIGADE_EMPTY(rl->in)) {
            break;
        }
        parse_rc = feed_brigade(rl);
    }
    if (parse_rc == MN_SSE_ERR_TOO_LONG) {
        mn_error_fail(&cause, MN_FAIL_EVENT_TOO_LARGE,
                      "provider '%s' sent a stream event larger than %" APR_SIZE_T_FMT " bytes",
                      rl->at->prov->name, mn_config_max_event(rl->req->r));
        rl->status = rl->wire->stream_end(rl->st, &cause, &rl->tap);
    }
    else if (rl->status == MN_STREAM_MORE && rl->rv == APR_EOF) {
        mn_sse_finish(&rl->parser);
        if (rl->status == MN_STREAM_MORE) {
            rl->status = rl->wire->stream_end(rl->st, NULL, &rl->tap);
        }
    }
    else if (rl->status == MN_STREAM_MORE && read_cause(rl, &cause)) {
        rl->status = rl->wire->stream_end(rl->st, &cause, &rl->tap);
    }
    if (rl->status == MN_STREAM_FAILED && nothing_produced(rl)) {
        /* nothing is lost by answering with a plain JSON error, or by
         * trying the next target */
        apr_brigade_cleanup(rl->cs.bb);
        return RELAY_FAILED_EARLY;
    }
    return RELAY_FLUSHING;
}

/* Where a stream goes once its frames are out. */
static relay_state after_flush(const relay *rl)
{
    switch (rl->status) {
    case MN_STREAM_MORE:
        return RELAY_WAITING;
    case MN_STREAM_DONE:
        return RELAY_DRAINING;
    default:
        return RELAY_ABANDONED;
    }
}

/* FLUSHING: the frames leave with one FLUSH (the stream's headers with the
 * first). */
static relay_state on_flushing(relay *rl)
{
    if (rl->client_gone || (!APR_BRIGADE_EMPTY(rl->cs.bb) && relay_flush(rl))) {
        return RELAY_ABANDONED;
    }
    return after_flush(rl);
}

/* DRAINING: reading to the end of the body lets the connection go back to
 * the pool.  The client already has [DONE]; an upstream that sends its
 * final chunk a little later is waited for briefly, one that idles or keeps
 * talking just loses the connection. */
static relay_state on_draining(relay *rl)
{
    apr_off_t drained = 0;
    apr_read_type_e mode = APR_NONBLOCK_READ;
    for (;;) {
        apr_off_t n = 0;
        apr_status_t rv = mn_upstream_read(rl->u, rl->in, mode);
        apr_brigade_length(rl->in, 1, &n);
        apr_brigade_cleanup(rl->in);
        drained += n;
        if (rv == APR_EOF) {
            return RELAY_DONE;
        }
        if (rv != APR_SUCCESS || drained > MN_DRAIN_MAX || (mode == APR_BLOCK_READ && n == 0)) {
            return RELAY_ABANDONED;
        }
        if (n == 0) {
            mn_upstream_set_timeout(rl->u, MN_DRAIN_WAIT);
            mode = APR_BLOCK_READ;
        }
    }
}

static apr_status_t release_upstream(void *u)
{
    mn_upstream_close(u);
    return APR_SUCCESS;
}

static apr_status_t release_translator(void *baton)
{
    relay *rl = baton;
    rl->wire->stream_destroy(rl->st);
    return APR_SUCCESS;
}

static apr_status_t release_parser(void *parser)
{
    mn_sse_free(parser);
    return APR_SUCCESS;
}

/* The one exit: accounting, notes, and the subpool whose cleanups release
 * the parser, the translator and the upstream connection. */
static int relay_exit(relay *rl, mn_error *err)
{
    mn_request *req = rl->req;
    const mn_attempt *at = rl->at;
    const mn_error *final_err = rl->wire->stream_error(rl->st);
    int rc = 0;

    req->usage = *rl->wire->stream_usage(rl->st);
    /* every attempt is charged, the ones a fallback replaced included */
    mn_limits_charge(req->lim, at->prov->name, at->model, &req->usage, rl->frames_sent,
                     rl->status == MN_STREAM_DONE && !rl->client_gone);
    if (rl->state != RELAY_DONE) {
        /* stop reading; the half-read connection must never be reused */
        mn_upstream_abandon(rl->u);
    }
    if (rl->client_gone) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, req->r,
                      "maniac: client went away after %ld frames", rl->frames_sent);
        mn_answer_notes(req, "client_aborted", NULL);
    }
    else if (rl->state == RELAY_FAILED_EARLY) {
        *err = *final_err;
        rc = -1;
    }
    else {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, req->r,
                      "maniac: stream from %s ended %s after %ld frames", at->prov->name,
                      final_err ? final_err->type : "cleanly", rl->frames_sent);
        mn_answer_notes(req, final_err ? final_err->type : NULL,
                        final_err ? final_err->code : NULL);
    }
    apr_pool_destroy(rl->pool);
    return rc;
}

/* Sets the relay up; its pool is a child of the try's, so a try that ends
 * any other way releases it too. */
static int relay_init(relay *rl, mn_request *req, mn_attempt *at, const mn_wire *wire,
                      mn_wire_ctx *ctx, mn_upstream *u)
{
    request_rec *r = req->r;
    memset(rl, 0, sizeof(*rl));
    rl->state = RELAY_WAITING;
    rl->req = req;
    rl->at = at;
    rl->wire = wire;
    rl->u = u;
    rl->status = MN_STREAM_MORE;
    rl->since = apr_time_now();
    apr_pool_create(&rl->pool, at->pool ? at->pool : r->pool);
    apr_pool_cleanup_register(rl->pool, u, release_upstream, apr_pool_cleanup_null);
    mn_client_sink_init(&rl->cs, req);
    rl->tap.write = tap_write;
    rl->tap.frame_end = tap_frame_end;
    rl->tap.baton = rl;
    rl->voice = VOICE_SILENT;
    rl->in = apr_brigade_create(rl->pool, r->connection->bucket_alloc);
    rl->st = wire->stream_create(ctx);
    if (!rl->st) {
        return -1;
    }
    apr_pool_cleanup_register(rl->pool, rl, release_translator, apr_pool_cleanup_null);
    mn_sse_init(&rl->parser, mn_config_max_event(req->r), on_sse, rl);
    apr_pool_cleanup_register(rl->pool, &rl->parser, release_parser, apr_pool_cleanup_null);
    return 0;
}

int mn_relay(mn_request *req, mn_attempt *at, const mn_wire *wire, mn_wire_ctx *ctx,
             mn_upstream *u, mn_error *err)
{
    relay rl;

    if (relay_init(&rl, req, at, wire, ctx, u)) {
        apr_pool_destroy(rl.pool);
        return mn_error_set(err, 500, "server_error", NULL, NULL, "out of memory");
    }
    for (;;) {
        switch (rl.state) {
        case RELAY_WAITING:
            transit(&rl, on_waiting(&rl));
            break;
        case RELAY_TRANSLATING:
            transit(&rl, on_translating(&rl));
            break;
        case RELAY_FLUSHING:
            transit(&rl, on_flushing(&rl));
            break;
        case RELAY_DRAINING:
            transit(&rl, on_draining(&rl));
            break;
        default:
            return relay_exit(&rl, err);
        }
    }
}
