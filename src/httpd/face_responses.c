/* The /v1/responses face (OpenAI Responses API in), glue: the body is mapped
 * by the pure unit (include/mn_face_responses.h) into the chat request that
 * mn_serve() takes, and this face writes what the pipeline produces as a
 * Response object, the Responses event stream, or an error.  Errors before
 * the first byte have the chat route's JSON shape, which the Responses API
 * shares, and are written by the chat face.
 *
 * A try at a provider with responses=on uses the passthrough wire instead
 * (mn_wire_openai_responses), which sends the client's own body: its answers
 * and events are Responses already and leave through the chat face's
 * writers untouched.  Which way an answer goes is decided by req->prov, the
 * provider of the try being answered (failover sets it for every target, the
 * echo provider's included), so a fallback from a passthrough target to a
 * translated one, or the other way, writes each answer its own way. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>

#include "mn_serve.h"
#include "mn_face_responses.h"
#include "mn_responses_face.h"

#define STATE_KEY "maniac-face-responses"

/* One request's face state: the mapped request and, per streamed try, the
 * event translator (a try that failed before its first byte is replaced). */
typedef struct {
    json_t *client_body;     /* the Responses request as the client sent it */
    mn_resp_req map;
    mn_resp_ctx ctx;
    mn_resp_stream *st;
    mn_sink sink;
    int noted;               /* maniac-dropped has the face's part */
} resp_state;

static resp_state *state_of(mn_request *req)
{
    void *p = NULL;
    apr_pool_userdata_get(&p, STATE_KEY, req->r->pool);
    return p;
}

static apr_status_t state_cleanup(void *data)
{
    resp_state *s = data;
    mn_resp_stream_destroy(s->st);
    s->st = NULL;
    mn_resp_req_clear(&s->map);
    json_decref(s->client_body);
    s->client_body = NULL;
    return APR_SUCCESS;
}

static int speaks_responses(const mn_provider *prov)
{
    return prov && prov->format == MN_FORMAT_OPENAI && prov->responses_api;
}

/* The answer being written comes from a passthrough try. */
static int passthrough(const mn_request *req)
{
    return speaks_responses(req->prov);
}

static void use_provider(mn_request *req, resp_state *s)
{
    s->ctx.provider = req->prov ? req->prov->name : NULL;
}

/* maniac-dropped: what the policy dropped, then what the face dropped; once,
 * when the answer (whole, stream head or error) goes out, after the policy
 * has set its part. */
static void note_dropped(mn_request *req, resp_state *s)
{
    request_rec *r = req->r;
    const char *joined;
    int i;

    if (!s || s->noted) {
        return;
    }
    s->noted = 1;
    if (passthrough(req)) {
        return;              /* the upstream got the client's body whole */
    }
    joined = apr_table_get(r->notes, "maniac-dropped");
    for (i = 0; i < s->map.ndropped; i++) {
        joined = joined ? apr_pstrcat(r->pool, joined, ",", s->map.dropped[i], NULL)
                        : s->map.dropped[i];
    }
    if (joined) {
        apr_table_setn(r->notes, "maniac-dropped", joined);
    }
}

static void resp_json(mn_request *req, int status, json_t *chat)
{
    resp_state *s = state_of(req);
    json_t *resp;
    mn_error err;

    note_dropped(req, s);
    if (passthrough(req)) {
        mn_face_chat.answer_json(req, status, chat);
        return;
    }
    use_provider(req, s);
    mn_error_clear(&err);
    resp = mn_resp_from_chat(&s->ctx, chat, &err);
    if (!resp) {
        mn_answer_notes(req, err.type, err.code);
        mn_face_chat.answer_error(req, &err);
        return;
    }
    mn_face_chat.answer_json(req, status, resp);
    json_decref(resp);
}

static void resp_bytes(mn_request *req, int status, const char *body, apr_size_t len)
{
    json_t *chat;

    if (passthrough(req)) {
        note_dropped(req, state_of(req));
        mn_face_chat.answer_bytes(req, status, body, len);
        return;
    }
    chat = json_loadb(body, len, 0, NULL);
    resp_json(req, status, chat);
    json_decref(chat);
}

static mn_sink *resp_stream_sink(mn_request *req, mn_sink *client)
{
    resp_state *s = state_of(req);

    /* a new try starts a new stream: the previous one's output was dropped */
    mn_resp_stream_destroy(s->st);
    s->st = NULL;
    if (passthrough(req)) {
        return client;
    }
    use_provider(req, s);
    s->st = mn_resp_stream_create(&s->ctx, client);
    if (!s->st) {
        return client;
    }
    s->sink = mn_resp_stream_sink(s->st);
    return &s->sink;
}

/* The Responses API's errors have the chat route's shape. */
static void resp_error(mn_request *req, const mn_error *e)
{
    note_dropped(req, state_of(req));
    mn_face_chat.answer_error(req, e);
}

static void resp_stream_begin(mn_request *req)
{
    note_dropped(req, state_of(req));
    mn_face_chat.stream_begin(req);
}

static const mn_wire *resp_wire_for(mn_request *req, const mn_provider *prov, mn_wire_ctx *ctx)
{
    if (speaks_responses(prov)) {
        ctx->face_body = state_of(req)->client_body;
        return &mn_wire_openai_responses;
    }
    return mn_wire_for(prov->format);
}

const mn_face mn_face_responses = {
    .name = "responses",
    .answer_json = resp_json,
    .answer_bytes = resp_bytes,
    .answer_error = resp_error,
    .stream_begin = resp_stream_begin,
    .stream_sink = resp_stream_sink,
    .wire_for = resp_wire_for,
    .intake = mn_responses_intake,
};

int mn_path_is_responses(const char *uri)
{
    static const char suffix[] = "/responses";
    size_t len = strlen(uri), slen = sizeof(suffix) - 1;
    return len >= slen && !strcmp(uri + len - slen, suffix);
}

/* Does every target the body's model names speak Responses?  Then the
 * upstream keeps whatever state the request asks for (a fallback target
 * that translated would silently lose it). */
static int all_targets_pass(const mn_request *req, json_t *body)
{
    const char *model = json_string_value(json_object_get(body, "model"));
    const mn_alias *alias;
    const char *slash;
    int i;

    if (!model || !req->conf || !req->conf->providers) {
        return 0;
    }
    alias = mn_alias_get(req->conf->providers, model);
    if (alias) {
        for (i = 0; i < alias->targets->nelts; i++) {
            if (!speaks_responses(APR_ARRAY_IDX(alias->targets, i, mn_target).provider)) {
                return 0;
            }
        }
        return alias->targets->nelts > 0;
    }
    slash = strchr(model, '/');
    return slash && slash[1]
           && speaks_responses(mn_providers_get(req->conf->providers, model,
                                                (size_t)(slash - model)));
}

int mn_responses_intake(mn_request *req, json_t **body, mn_error *err)
{
    request_rec *r = req->r;
    resp_state *s = apr_pcalloc(r->pool, sizeof(*s));
    unsigned char rnd[8];

    if (mn_resp_request_ex(r->pool, *body, all_targets_pass(req, *body) ? MN_RESP_STATEFUL : 0,
                           &s->map, err)) {
        return -1;
    }
    apr_pool_userdata_setn(s, STATE_KEY, state_cleanup, r->pool);
    if (apr_generate_random_bytes(rnd, sizeof(rnd)) != APR_SUCCESS) {
        memset(rnd, 0, sizeof(rnd));
    }
    s->ctx.id = apr_psprintf(r->pool, "%" APR_UINT64_T_HEX_FMT "%02x%02x%02x%02x%02x%02x%02x%02x",
                             (apr_uint64_t)apr_time_sec(r->request_time), rnd[0], rnd[1],
                             rnd[2], rnd[3], rnd[4], rnd[5], rnd[6], rnd[7]);
    s->ctx.created_at = (long)apr_time_sec(r->request_time);
    s->ctx.echo = s->map.echo;
    s->ctx.max_held = mn_config_max_response(r);
    /* the chat request goes on in the client body's place; the passthrough
     * sends the client's own */
    s->client_body = *body;
    *body = s->map.chat;
    s->map.chat = NULL;
    return 0;
}
