/* mn_wire_openai_responses: the Responses face in front of an OpenAI-format
 * upstream that speaks the Responses API itself (ManiacProvider
 * responses=on; see include/mn_face_responses.h).
 *
 * Mapping Responses -> chat -> Responses would lose what chat cannot carry
 * (built-in tools such as web_search, reasoning items with the upstream's
 * encrypted_content, stored state), so the client's body goes to
 * {base}/responses as it came, with `model` replaced and the gateway's
 * fields taken out.  Answers keep the upstream's bytes: only "provider" is
 * spliced in (floats, escapes and member order stay the upstream's).  The
 * stream's hot path (delta events) is one validating scan per event for
 * its type and sequence_number, and a copy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_face_responses.h"
#include "mn_jscan.h"

/* ---- request ------------------------------------------------------------- */

static int pass_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out, mn_error *err)
{
    json_t *body;

    (void)req;
    if (!json_is_object(ctx->face_body)) {
        return mn_error_set(err, 500, "server_error", NULL, NULL,
                            "the passthrough needs the client's Responses body");
    }
    body = json_copy(ctx->face_body);
    /* the gateway's own fields, as the chat route's policy takes them */
    json_object_del(body, "tags");
    json_object_del(body, "metadata");
    json_object_del(body, "trace");
    if (!json_object_get(body, "store") || json_is_null(json_object_get(body, "store"))) {
        /* the face's contract: nothing is kept upstream unless the client asks */
        json_object_set_new(body, "store", json_false());
    }
    if (mn_wire_pass_body(ctx, body, out, err)) {
        return -1;
    }
    out->path = "/responses";
    out->headers = apr_table_make(ctx->pool, 4);
    apr_table_setn(out->headers, "Content-Type", "application/json");
    apr_table_setn(out->headers, "Accept", ctx->stream ? "text/event-stream" : "application/json");
    if (ctx->provider && ctx->provider->key) {
        apr_table_setn(out->headers, "Authorization",
                       apr_pstrcat(ctx->pool, "Bearer ", ctx->provider->key, NULL));
    }
    return 0;
}

/* ---- shared helpers ------------------------------------------------------ */

static long count_of(json_t *o, const char *key)
{
    return mn_usage_count(json_object_get(o, key));
}

void mn_resp_usage_read(mn_usage *u, json_t *usage)
{
    if (!json_is_object(usage)) {
        return;
    }
    u->have = 1;
    u->prompt_tokens = count_of(usage, "input_tokens");
    u->completion_tokens = count_of(usage, "output_tokens");
    u->cached_tokens = count_of(json_object_get(usage, "input_tokens_details"), "cached_tokens");
    u->reasoning_tokens = count_of(json_object_get(usage, "output_tokens_details"),
                                   "reasoning_tokens");
    u->total_tokens = json_is_integer(json_object_get(usage, "total_tokens"))
                      ? count_of(usage, "total_tokens")
                      : mn_usage_add(u->prompt_tokens, u->completion_tokens);
}

/* The JSON string of the provider's name (quotes included), malloc'd. */
static char *quoted_name(const char *name)
{
    json_t *n = json_string(name ? name : "");
    char *q = json_dumps(n, JSON_ENCODE_ANY);
    json_decref(n);
    return q;
}

/* obj[0..len) is a JSON object: written with "provider" as its first member. */
static void write_with_provider(mn_sink *out, const char *quoted, const char *obj, size_t len)
{
    size_t i = 1;

    out->write(out->baton, "{\"provider\":", 12);
    out->write(out->baton, quoted ? quoted : "\"\"", quoted ? strlen(quoted) : 2);
    while (i < len && (obj[i] == ' ' || obj[i] == '\t' || obj[i] == '\r' || obj[i] == '\n')) {
        i++;
    }
    if (i < len && obj[i] != '}') {
        out->write(out->baton, ",", 1);
    }
    out->write(out->baton, obj + i, len - i);
}

/* Does data hold one of the provider's keys verbatim? */
static const char *key_in(const mn_provider *prov, const char *data, size_t len)
{
    int i, n = prov ? (prov->nkeys ? prov->nkeys : (prov->key ? 1 : 0)) : 0;
    for (i = 0; i < n; i++) {
        const char *k = prov->nkeys ? prov->keys[i] : prov->key;
        size_t klen = k ? strlen(k) : 0;
        size_t j;
        for (j = 0; klen && j + klen <= len; j++) {
            if (data[j] == k[0] && !memcmp(data + j, k, klen)) {
                return k;
            }
        }
    }
    return NULL;
}

/* A copy of data (into b) with every key of prov replaced by "***"; keys
 * are printable and never escaped in JSON, so the text stays valid. */
static void scrub_copy(const mn_provider *prov, const char *data, size_t len, mn_buf *b)
{
    const char *k;
    mn_buf_append(b, data, len);
    while (b->data && (k = key_in(prov, b->data, b->len)) != NULL) {
        size_t klen = strlen(k), j = 0;
        mn_buf next;
        mn_buf_init(&next);
        while (j < b->len) {
            if (j + klen <= b->len && !memcmp(b->data + j, k, klen)) {
                mn_buf_append(&next, "***", 3);
                j += klen;
            }
            else {
                mn_buf_append(&next, b->data + j, 1);
                j++;
            }
        }
        mn_buf_free(b);
        *b = next;
    }
}

/* ---- whole answer -------------------------------------------------------- */

static int bad_answer(mn_wire_ctx *ctx, json_t *root, const char *body, size_t len, mn_error *err)
{
    json_t *e = json_object_get(root, "error");
    if (json_is_object(root) && (json_is_object(e) || json_is_string(e))) {
        mn_error_from_openai_body(err, 502, body, len, ctx->provider);
        err->status = 502;
    }
    else {
        mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream answered 200 with a body that is not a Response object");
    }
    json_decref(root);
    return -1;
}

static int pass_decode_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                             const char **out, size_t *out_len, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *object = json_string_value(json_object_get(root, "object"));
    const char *brace = memchr(body, '{', len);
    char *quoted;
    mn_buf b;
    mn_sink sink;

    if (!json_is_object(root) || !object || strcmp(object, "response") || !brace) {
        return bad_answer(ctx, root, body, len, err);
    }
    mn_resp_usage_read(usage, json_object_get(root, "usage"));
    if (json_object_get(root, "provider") || memchr(body, '\0', len)) {
        /* odd bytes (a raw NUL only Jansson takes, an upstream "provider"):
         * the tree, re-encoded, is what the client gets */
        json_object_set_new(root, "provider", json_string(ctx->provider_name));
        return mn_wire_answer_dump(ctx, root, out, out_len, err);
    }
    json_decref(root);
    mn_buf_init(&b);
    sink = mn_buf_sink(&b);
    quoted = quoted_name(ctx->provider_name);
    write_with_provider(&sink, quoted, brace, len - (size_t)(brace - body));
    free(quoted);
    *out_len = b.len;
    *out = apr_pmemdup(ctx->pool, b.data ? b.data : "", b.len + 1);
    mn_buf_free(&b);
    return 0;
}

static int pass_decode_response(mn_wire_ctx *ctx, const char *body, size_t len, json_t **out,
                                mn_usage *usage, mn_error *err)
{
    const char *bytes;
    size_t n;
    if (pass_decode_bytes(ctx, body, len, &bytes, &n, usage, err)) {
        return -1;
    }
    *out = json_loadb(bytes, n, 0, NULL);
    return *out ? 0 : mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                                   "upstream answer could not be read");
}

static void pass_decode_error(mn_wire_ctx *ctx, int status, const char *body, size_t len,
                              const char *retry_after, mn_error *err)
{
    /* the Responses API's errors are the chat API's shape */
    mn_wire_openai.decode_error(ctx, status, body, len, retry_after, err);
}

/* ---- stream -------------------------------------------------------------- */

enum { P_TYPE, P_SEQ, P_RESP, P_ID, P_MODEL, P_CREATED, P_RPROV, P_N };
static const mn_jpath pass_paths[P_N] = {
    MN_JPATH(MN_JK("type")),
    MN_JPATH(MN_JK("sequence_number")),
    MN_JPATH(MN_JK("response")),
    MN_JPATH(MN_JK("response"), MN_JK("id")),
    MN_JPATH(MN_JK("response"), MN_JK("model")),
    MN_JPATH(MN_JK("response"), MN_JK("created_at")),
    MN_JPATH(MN_JK("response"), MN_JK("provider"))
};

struct mn_stream {
    mn_stream_base b;
    char *quoted;            /* the provider's name as a JSON string */
    long seq;                /* the last sequence_number seen, -1 before any */
    long events;             /* events relayed */
    json_t *id, *model, *created_at;   /* of the upstream's Response, for our response.failed */
    mn_buf scratch;
    mn_buf flat;             /* an event whose data came on several lines */
    char *rewritten;         /* an event re-encoded with our "provider" (rare) */
};

static mn_stream *pass_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));

    if (!st) {
        return NULL;
    }
    st->b.ctx = ctx;
    st->seq = -1;
    st->quoted = quoted_name(ctx->provider_name);
    mn_buf_init(&st->scratch);
    mn_buf_init(&st->flat);
    return st;
}

static void emit(mn_stream *st, mn_sink *out, const char *type, json_t *ev)
{
    json_t *o = json_pack("{s:s,s:I}", "type", type, "sequence_number", (json_int_t)++st->seq);
    char *data;

    json_object_update(o, ev);
    json_decref(ev);
    data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!data) {
        return;
    }
    /* our error events repeat the upstream's id and model: never a key */
    mn_buf_reset(&st->scratch);
    scrub_copy(st->b.ctx->provider, data, strlen(data), &st->scratch);
    free(data);
    out->write(out->baton, "event: ", 7);
    out->write(out->baton, type, strlen(type));
    out->write(out->baton, "\ndata: ", 7);
    out->write(out->baton, st->scratch.data ? st->scratch.data : "{}",
               st->scratch.data ? st->scratch.len : 2);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
}

/* Ends the stream with b.err (scrubbed): response.failed and `error`, as the
 * translated face does; nothing when no event reached the client (the glue
 * then answers a JSON error or tries the next target). */
static mn_stream_status pass_fail(mn_stream *st, mn_sink *out)
{
    const mn_error *e = &st->b.err;
    const char *code = e->code[0] ? e->code : e->type;
    json_t *resp;

    mn_error_scrub(&st->b.err, st->b.ctx->provider);
    st->b.status = MN_STREAM_FAILED;
    if (!st->events) {
        return st->b.status;
    }
    resp = json_pack("{s:O,s:s,s:O,s:s,s:O,s:[],s:{s:s,s:s},s:s}",
                     "id", st->id ? st->id : json_null(), "object", "response",
                     "created_at", st->created_at ? st->created_at : json_null(),
                     "status", "failed", "model", st->model ? st->model : json_null(),
                     "output", "error", "code", code, "message", e->message,
                     "provider", st->b.ctx->provider_name ? st->b.ctx->provider_name : "");
    emit(st, out, "response.failed", json_pack("{s:o}", "response", resp));
    emit(st, out, "error", json_pack("{s:s,s:s,s:n}", "code", code, "message", e->message,
                                     "param"));
    return st->b.status;
}

static json_t *span_value(const mn_jspan *s)
{
    return s->type == MN_JT_NONE ? NULL : json_loadb(s->p, s->len, JSON_DECODE_ANY, NULL);
}

/* The event's type, decoded (escapes included) into buf; -1 when it is no
 * string, too long, or holds a byte that would break the `event:` line. */
static int event_type(const mn_jspan *s, char *buf, size_t size)
{
    json_t *v;
    size_t i, n;

    if (s->type != MN_JT_STRING) {
        return -1;
    }
    if (s->len > 2 && s->len - 2 < size && !memchr(s->p, '\\', s->len)) {
        /* the common case: no escapes, and a valid JSON string has no raw
         * control byte */
        memcpy(buf, s->p + 1, s->len - 2);
        buf[s->len - 2] = '\0';
        return memchr(buf, 0x7f, s->len - 2) ? -1 : 0;
    }
    v = span_value(s);
    n = json_string_length(v);
    if (!json_is_string(v) || !n || n >= size) {
        json_decref(v);
        return -1;
    }
    memcpy(buf, json_string_value(v), n + 1);
    json_decref(v);
    for (i = 0; i < n; i++) {
        if ((unsigned char)buf[i] < 0x20 || buf[i] == 0x7f) {
            return -1;
        }
    }
    return 0;
}

/* What an upstream error or response.failed event says, into b.err. */
static void upstream_failure(mn_stream *st, json_t *ev, const char *type)
{
    json_t *e = !strcmp(type, "error") ? ev : json_object_get(json_object_get(ev, "response"),
                                                              "error");
    json_t *body = json_pack("{s:{s:O?,s:O?,s:O?}}", "error", "message",
                             json_object_get(e, "message"), "code", json_object_get(e, "code"),
                             "param", json_object_get(e, "param"));
    char *raw = json_dumps(body, JSON_COMPACT);

    mn_error_from_openai_body(&st->b.err, 502, raw, raw ? strlen(raw) : 0, st->b.ctx->provider);
    st->b.err.status = 502;
    if (!json_is_string(json_object_get(e, "message"))) {
        snprintf(st->b.err.message, sizeof(st->b.err.message),
                 "upstream reported %s mid-stream", type);
    }
    free(raw);
    json_decref(body);
}

/* What later steps need of an event about the Response: its id (for our
 * response.failed), and at the end its usage and outcome (the type decides,
 * even when the upstream left the Response out). */
static void read_response(mn_stream *st, const mn_jspan *sp, const char *type,
                          const char *data, size_t len)
{
    json_t *ev;
    int terminal = !strcmp(type, "response.completed") || !strcmp(type, "response.incomplete")
                   || !strcmp(type, "response.failed");

    if (!st->id && sp[P_RESP].type == MN_JT_OBJECT && sp[P_ID].type == MN_JT_STRING) {
        st->id = span_value(&sp[P_ID]);
        st->model = span_value(&sp[P_MODEL]);
        st->created_at = span_value(&sp[P_CREATED]);
    }
    if (!terminal) {
        return;
    }
    ev = json_loadb(data, len, 0, NULL);
    mn_resp_usage_read(&st->b.usage, json_object_get(json_object_get(ev, "response"), "usage"));
    if (!strcmp(type, "response.failed")) {
        upstream_failure(st, ev, type);
        st->b.status = MN_STREAM_FAILED;
    }
    else {
        st->b.status = MN_STREAM_DONE;
    }
    json_decref(ev);
}

/* `event: type`, then data with "provider" spliced into its Response. */
static void relay_event(mn_stream *st, mn_sink *out, const char *type, const mn_jspan *resp,
                        const char *data, size_t len)
{
    out->write(out->baton, "event: ", 7);
    out->write(out->baton, type, strlen(type));
    out->write(out->baton, "\ndata: ", 7);
    if (resp->type == MN_JT_OBJECT) {
        size_t at = (size_t)(resp->p - data);
        out->write(out->baton, data, at);
        write_with_provider(out, st->quoted, resp->p, len - at);
    }
    else {
        out->write(out->baton, data, len);
    }
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
    st->events++;
}

/* An upstream's error quoting our key leaves without it: verbatim quotes
 * are cut from its bytes; a key written with escapes (rare, and never by
 * accident) costs a re-encoding of the event.  1 when *data changed. */
static int scrub_event(mn_stream *st, const char **data, size_t *len)
{
    const mn_provider *prov = st->b.ctx->provider;
    json_t *ev;
    char *dump;
    int changed = 0;

    if (key_in(prov, *data, *len)) {
        mn_buf_reset(&st->scratch);
        scrub_copy(prov, *data, *len, &st->scratch);
        *data = st->scratch.data;
        *len = st->scratch.len;
        changed = 1;
    }
    if (!memchr(*data, '\\', *len)) {
        return changed;
    }
    ev = json_loadb(*data, *len, 0, NULL);
    dump = ev ? json_dumps(ev, JSON_COMPACT) : NULL;
    json_decref(ev);
    if (dump && key_in(prov, dump, strlen(dump))) {
        mn_buf b;
        mn_buf_init(&b);
        scrub_copy(prov, dump, strlen(dump), &b);
        mn_buf_free(&st->scratch);
        st->scratch = b;
        *data = st->scratch.data;
        *len = st->scratch.len;
        changed = 1;
    }
    free(dump);
    return changed;
}

/* The upstream's Response has a "provider" of its own: ours must be the one
 * every client sees, whichever duplicate its parser keeps, so the event is
 * re-encoded with ours in its place.  1 when it cannot be. */
static int own_provider(mn_stream *st, const char **data, size_t *len, mn_jspan *sp)
{
    json_t *ev = json_loadb(*data, *len, 0, NULL);
    json_t *resp = json_object_get(ev, "response");

    free(st->rewritten);
    st->rewritten = NULL;
    if (json_is_object(resp)) {
        json_object_set_new(resp, "provider", json_string(st->b.ctx->provider_name));
        st->rewritten = json_dumps(ev, JSON_COMPACT);
    }
    json_decref(ev);
    if (!st->rewritten) {
        return 1;
    }
    *data = st->rewritten;
    *len = strlen(st->rewritten);
    if (mn_jscan(*data, *len, pass_paths, P_N, sp)) {
        return 1;
    }
    /* nothing left to splice */
    sp[P_RESP].type = MN_JT_NONE;
    return 0;
}

static mn_stream_status bad_event(mn_stream *st, mn_sink *out, const char *why)
{
    mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                 "upstream sent an invalid Responses stream: %s", why);
    return pass_fail(st, out);
}

static mn_stream_status pass_feed(mn_stream *st, mn_sse_kind kind, const char *event,
                                  const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[P_N];
    char type[96];

    (void)event;
    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        return bad_event(st, out, "[DONE] before response.completed");
    }
    if (memchr(data, '\n', len) || memchr(data, '\r', len)) {
        /* several data: lines, joined by line breaks: outside a string (a
         * JSON string holds none) they are whitespace, and one data: line
         * must not become several for the client */
        size_t i;
        mn_buf_reset(&st->flat);
        if (mn_buf_append(&st->flat, data, len)) {
            return bad_event(st, out, "an event too large to hold");
        }
        for (i = 0; i < len; i++) {
            if (st->flat.data[i] == '\n' || st->flat.data[i] == '\r') {
                st->flat.data[i] = ' ';
            }
        }
        data = st->flat.data;
    }
    if (mn_jscan(data, len, pass_paths, P_N, sp) || memchr(data, '\0', len)
        || event_type(&sp[P_TYPE], type, sizeof(type))) {
        return bad_event(st, out, "an event that is not a JSON object with a type");
    }
    if (sp[P_SEQ].type == MN_JT_NUMBER) {
        /* ours count on from it: bounded, so they never overflow */
        long v = strtol(sp[P_SEQ].p, NULL, 10);
        st->seq = v < 0 ? -1 : v > (1L << 40) ? (1L << 40) : v;
    }
    read_response(st, sp, type, data, len);
    if (!strcmp(type, "error")) {
        json_t *ev = json_loadb(data, len, 0, NULL);
        upstream_failure(st, ev, type);
        json_decref(ev);
        st->b.status = MN_STREAM_FAILED;
    }
    if (st->b.status == MN_STREAM_FAILED && scrub_event(st, &data, &len)) {
        if (mn_jscan(data, len, pass_paths, P_N, sp)) {
            return st->b.status;
        }
    }
    if (sp[P_RESP].type == MN_JT_OBJECT && sp[P_RPROV].type != MN_JT_NONE
        && own_provider(st, &data, &len, sp)) {
        return st->b.status;
    }
    if (st->b.status == MN_STREAM_FAILED && !st->events) {
        /* nothing reached the client yet: the glue answers with b.err */
        return st->b.status;
    }
    relay_event(st, out, type, &sp[P_RESP], data, len);
    return st->b.status;
}

static mn_stream_status pass_end(mn_stream *st, const mn_error *cause, mn_sink *out)
{
    if (st->b.status != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (cause) {
        st->b.err = *cause;
    }
    else {
        mn_error_fail(&st->b.err, MN_FAIL_EOF,
                      "upstream stream ended before response.completed");
    }
    return pass_fail(st, out);
}

static void pass_destroy(mn_stream *st)
{
    if (!st) {
        return;
    }
    json_decref(st->id);
    json_decref(st->model);
    json_decref(st->created_at);
    free(st->quoted);
    free(st->rewritten);
    mn_buf_free(&st->scratch);
    mn_buf_free(&st->flat);
    free(st);
}

const mn_wire mn_wire_openai_responses = {
    .name = "openai-responses",
    .encode_request = pass_encode,
    .decode_response = pass_decode_response,
    .decode_error = pass_decode_error,
    .stream_create = pass_stream_create,
    .stream_feed = pass_feed,
    .stream_end = pass_end,
    .stream_usage = mn_stream_base_usage,
    .stream_error = mn_stream_base_error,
    .stream_destroy = pass_destroy,
    .decode_response_bytes = pass_decode_bytes,
};
