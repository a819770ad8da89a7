/* The Anthropic Messages face: POST .../messages (and .../messages/count_tokens)
 * through the one pipeline (include/mn_serve.h).
 *
 * Intake maps the client's Anthropic body into the OpenAI chat request the
 * policy, routing, failover and the wire units take (src/wire/
 * face_messages_*.c); the writers below map what comes back.  For an
 * Anthropic target the try uses the passthrough wire instead, which sends
 * the client's own body: its answers are already Anthropic's and leave as
 * they are.  The per-request state lives in the request pool's userdata, so
 * mn_request needs no member for it. */
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>

#include "mn_serve.h"
#include "mn_config.h"
#include "mn_face_messages.h"

#define STATE_KEY "maniac-face-messages"

typedef struct {
    json_t *client_body;     /* the Anthropic request as the client sent it */
    int passthrough;         /* the last try went to an Anthropic upstream (its
                              * whole answers are Anthropic's already) */
    mn_fm_stream *fm;        /* the current try's stream translator */
    mn_sink sink;            /* its input side */
} fm_state;

static apr_status_t state_cleanup(void *data)
{
    fm_state *st = data;
    json_decref(st->client_body);
    st->client_body = NULL;
    mn_fm_stream_destroy(st->fm);
    st->fm = NULL;
    return APR_SUCCESS;
}

static fm_state *state_of(mn_request *req)
{
    void *st = NULL;
    apr_pool_userdata_get(&st, STATE_KEY, req->r->pool);
    if (!st) {
        st = apr_pcalloc(req->r->pool, sizeof(fm_state));
        apr_pool_userdata_setn(st, STATE_KEY, state_cleanup, req->r->pool);
    }
    return st;
}

static void fm_answer_json(mn_request *req, int status, json_t *body)
{
    json_t *msg = mn_fm_response(body, &req->usage);
    mn_face_chat.answer_json(req, status, msg);
    json_decref(msg);
}

static void fm_answer_error(mn_request *req, const mn_error *e)
{
    json_t *body = mn_fm_error_json(e, req->prov ? req->prov->name : NULL);
    mn_face_chat.answer_json(req, e->status, body);
    json_decref(body);
}

static void fm_answer_bytes(mn_request *req, int status, const char *body, apr_size_t len)
{
    json_t *chat;

    if (state_of(req)->passthrough) {
        mn_face_chat.answer_bytes(req, status, body, len);
        return;
    }
    /* the OpenAI wire's fast path hands over the upstream's bytes */
    chat = json_loadb(body, len, 0, NULL);
    if (!chat) {
        mn_error e;
        mn_error_set(&e, 502, "api_error", NULL, "upstream_bad_response",
                     "the upstream's answer could not be read");
        fm_answer_error(req, &e);
        return;
    }
    fm_answer_json(req, status, chat);
    json_decref(chat);
}

static void fm_stream_begin(mn_request *req)
{
    mn_face_chat.stream_begin(req);
}

/* Every try gets the translator, the passthrough's too: its frames are
 * Anthropic events already and cross unchanged, and an echo fallback after
 * an Anthropic try (which calls no wire_for) still gets translated. */
static mn_sink *fm_stream_sink(mn_request *req, mn_sink *client)
{
    fm_state *st = state_of(req);

    /* a new try starts a new stream: the previous one's output was dropped */
    mn_fm_stream_destroy(st->fm);
    st->fm = mn_fm_stream_create(client, 2 * mn_config_max_event(req->r) + 4096);
    if (!st->fm) {
        return client;
    }
    mn_fm_stream_provider(st->fm, req->prov ? req->prov->name : NULL);
    st->sink = mn_fm_stream_sink(st->fm);
    return &st->sink;
}

static const mn_wire *fm_wire_for(mn_request *req, const mn_provider *prov, mn_wire_ctx *ctx)
{
    fm_state *st = state_of(req);

    st->passthrough = prov->format == MN_FORMAT_ANTHROPIC;
    if (st->passthrough) {
        ctx->face_body = st->client_body;
        return &mn_wire_anthropic_passthrough;
    }
    return mn_wire_for(prov->format);
}

static int count_tokens(mn_request *req, json_t *body, mn_error *err)
{
    long n;
    json_t *ans;

    if (mn_fm_count_tokens(body, &n, err)) {
        return -1;
    }
    ans = json_pack("{s:I}", "input_tokens", (json_int_t)n);
    mn_face_chat.answer_json(req, HTTP_OK, ans);
    json_decref(ans);
    return 1;
}

/* The body becomes the chat request; the client's own stays in the state. */
static int fm_intake(mn_request *req, json_t **body, mn_error *err)
{
    fm_state *st = state_of(req);
    mn_fm_info info;
    json_t *chat;

    apr_table_setn(req->r->notes, "maniac-face", "messages");
    if (mn_fm_path(req->r->uri) == MN_FM_PATH_COUNT) {
        return count_tokens(req, *body, err);
    }
    if (mn_fm_request(*body, &chat, &info, err)) {
        return -1;
    }
    if (info.dropped[0]) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, req->r,
                      "maniac: messages: not sent to chat upstreams: %s", info.dropped);
        apr_table_setn(req->r->notes, "maniac-face-dropped",
                       apr_pstrdup(req->r->pool, info.dropped));
    }
    st->client_body = *body;
    *body = chat;
    return 0;
}

const mn_face mn_face_messages = {
    .name = "messages",
    .answer_json = fm_answer_json,
    .answer_bytes = fm_answer_bytes,
    .answer_error = fm_answer_error,
    .stream_begin = fm_stream_begin,
    .stream_sink = fm_stream_sink,
    .wire_for = fm_wire_for,
    .intake = fm_intake,
};
