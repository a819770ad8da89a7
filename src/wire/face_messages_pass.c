/* mn_wire_anthropic_passthrough: the Messages face in front of an Anthropic
 * upstream (see mn_face_messages.h).
 *
 * Translating Anthropic -> chat -> Anthropic would lose what chat cannot
 * carry (thinking signatures, cache_control, redacted thinking, citations,
 * beta features), so the client's body goes upstream as it came, with
 * `model` replaced by the routed upstream model, `stream` set as the
 * gateway serves it and the gateway's extensions (tags, trace) taken out;
 * anthropic-version and anthropic-beta are the client's.  The answer and
 * every event keep the upstream's bytes; "provider" is inserted as the first
 * member of each object.  Usage is read for the notes; errors reuse the
 * Anthropic wire's decoder (its error types are Anthropic's, which the face
 * writes back verbatim).  An upstream stream that ends without
 * message_stop gets an `event: error`, as Anthropic would send. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_chunk.h"
#include "mn_face_messages.h"
#include "mn_jscan.h"

#define DEFAULT_VERSION "2023-06-01"

static int pass_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out, mn_error *err)
{
    json_t *body;
    const char *v;

    (void)req;
    if (!json_is_object(ctx->face_body)) {
        return mn_error_set(err, 500, "api_error", NULL, NULL,
                            "the passthrough needs the client's Messages body");
    }
    body = json_copy(ctx->face_body);
    json_object_del(body, "tags");
    json_object_del(body, "trace");
    if (mn_wire_pass_body(ctx, body, out, err)) {
        return -1;
    }
    out->path = "/messages";
    out->headers = apr_table_make(ctx->pool, 6);
    apr_table_setn(out->headers, "Content-Type", "application/json");
    apr_table_setn(out->headers, "Accept", ctx->stream ? "text/event-stream" : "application/json");
    v = ctx->client_headers ? apr_table_get(ctx->client_headers, "anthropic-version") : NULL;
    apr_table_set(out->headers, "anthropic-version", v && *v ? v : DEFAULT_VERSION);
    v = ctx->client_headers ? apr_table_get(ctx->client_headers, "anthropic-beta") : NULL;
    if (v && *v) {
        apr_table_set(out->headers, "anthropic-beta", v);
    }
    if (ctx->provider && ctx->provider->key) {
        apr_table_setn(out->headers, "x-api-key", ctx->provider->key);
    }
    return 0;
}

/* Anthropic usage (input without cache counts) -> mn_usage (prompt with). */
static void usage_merge(mn_usage *u, json_t *usage, long *in, long *cw, long *cr)
{
    json_t *v;
    if (!json_is_object(usage)) {
        return;
    }
    u->have = 1;
    if (json_is_integer(v = json_object_get(usage, "input_tokens"))) {
        *in = mn_usage_count(v);
    }
    if (json_is_integer(v = json_object_get(usage, "cache_creation_input_tokens"))) {
        *cw = mn_usage_count(v);
    }
    if (json_is_integer(v = json_object_get(usage, "cache_read_input_tokens"))) {
        *cr = mn_usage_count(v);
    }
    if (json_is_integer(v = json_object_get(usage, "output_tokens"))) {
        u->completion_tokens = mn_usage_count(v);
    }
    u->prompt_tokens = mn_usage_add(mn_usage_add(*in, *cw), *cr);
    u->cached_tokens = *cr;
    u->cache_write_tokens = *cw;
    u->total_tokens = mn_usage_add(u->prompt_tokens, u->completion_tokens);
}

/* data with the provider member (mn_chunk_member's bytes) first; data
 * starts with '{' */
static void write_with_member(mn_sink *out, const char *member, size_t mlen, const char *data,
                              size_t len)
{
    size_t i = 1;

    out->write(out->baton, "{", 1);
    if (member && mlen) {
        out->write(out->baton, member, mlen);
    }
    else {
        out->write(out->baton, "\"provider\":\"\"", 13);
    }
    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) {
        i++;
    }
    if (i < len && data[i] != '}') {
        out->write(out->baton, ",", 1);
    }
    out->write(out->baton, data + i, len - i);
}

static void write_with_provider(mn_sink *out, const char *name, const char *data, size_t len)
{
    size_t mlen;
    char *made;
    const char *member = mn_chunk_member_for(name ? name : "", &mlen, &made);
    write_with_member(out, member, mlen, data, len);
    free(made);
}

static int pass_decode_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                             const char **out, size_t *out_len, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    const char *type = json_string_value(json_object_get(root, "type"));
    long in = 0, cw = 0, cr = 0;
    mn_buf b;
    mn_sink sink;
    size_t start = 0;

    if (!json_is_object(root) || !type || strcmp(type, "message")) {
        json_decref(root);
        return mn_error_set(err, 502, "api_error", NULL, "upstream_bad_response",
                            "upstream answered 200 with a body that is not an Anthropic message");
    }
    usage_merge(usage, json_object_get(root, "usage"), &in, &cw, &cr);
    if (json_object_get(root, "provider") || memchr(body, '\0', len)) {
        /* its own "provider" would override the gateway's (the last of two
         * members wins in JSON readers), and a NUL Jansson let pass would
         * break the client's parser: rewrite it instead */
        char *dump;
        json_object_set_new(root, "provider", json_string(ctx->provider_name
                                                          ? ctx->provider_name : ""));
        dump = json_dumps(root, JSON_COMPACT);
        json_decref(root);
        if (!dump) {
            return mn_error_set(err, 502, "api_error", NULL, "upstream_bad_response",
                                "upstream answer could not be read");
        }
        *out_len = strlen(dump);
        *out = apr_pmemdup(ctx->pool, dump, *out_len + 1);
        free(dump);
        return 0;
    }
    json_decref(root);
    while (start < len && body[start] != '{') {
        start++;
    }
    mn_buf_init(&b);
    sink = mn_buf_sink(&b);
    write_with_provider(&sink, ctx->provider_name, body + start, len - start);
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
    return *out ? 0 : mn_error_set(err, 502, "api_error", NULL, "upstream_bad_response",
                                   "upstream answer could not be read");
}

static void pass_decode_error(mn_wire_ctx *ctx, int status, const char *body, size_t len,
                              const char *retry_after, mn_error *err)
{
    mn_wire_anthropic.decode_error(ctx, status, body, len, retry_after, err);
}

static const mn_jpath pass_paths[2] = { MN_JPATH(MN_JK("type")), MN_JPATH(MN_JK("provider")) };

struct mn_stream {
    mn_stream_base b;
    long in, cw, cr;
    const char *quoted_for;    /* the provider name quoted is for */
    const char *quoted;        /* its provider member (mn_chunk_member_for), once per stream */
    char *quoted_made;         /* quoted when it was not kept */
    size_t quoted_len;
    int quoted_ok;
};

static mn_stream *pass_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    if (st) {
        st->b.ctx = ctx;
    }
    return st;
}

/* Is the type (bytes between the quotes) one pass_feed reads? */
static int type_read(const char *t, size_t n)
{
    return (n == 13 && (!memcmp(t, "message_start", 13) || !memcmp(t, "message_delta", 13)))
           || (n == 12 && !memcmp(t, "message_stop", 12)) || (n == 5 && !memcmp(t, "error", 5));
}

/* The events pass_feed only forwards (deltas, block starts and stops,
 * pings: every type but the four it reads), validated by mn_jscan (as
 * strictly as json_loadb) and written as the Jansson path writes them: the
 * upstream's bytes with "provider" put first, no tree.  0: the tree path
 * takes it (nothing written). */
static int pass_fast(mn_stream *st, const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[2];
    size_t i = 0, n, k;

    while (i < len && (data[i] == ' ' || data[i] == '\t' || data[i] == '\r' || data[i] == '\n')) {
        i++;
    }
    /* what pass_bytes_ok and pass_name_ok refuse goes to the tree path too:
     * line breaks, a NUL, an upstream provider, a type that is not a name */
    if (i == len || data[i] != '{' || memchr(data, '\n', len) || memchr(data, '\r', len)
        || memchr(data, '\0', len) || mn_jscan(data, len, pass_paths, 2, sp)
        || sp[0].type != MN_JT_STRING || sp[1].type != MN_JT_NONE) {
        return 0;
    }
    n = sp[0].len - 2;
    for (k = 0; k < n; k++) {
        if (!((sp[0].p[1 + k] >= 'a' && sp[0].p[1 + k] <= 'z') || sp[0].p[1 + k] == '_')) {
            return 0;   /* escaped names too: the tree path decodes them */
        }
    }
    if (n == 0 || n >= 64 || type_read(sp[0].p + 1, n)) {
        return 0;
    }
    if (!st->quoted_ok || st->quoted_for != st->b.ctx->provider_name) {
        free(st->quoted_made);
        st->quoted = mn_chunk_member_for(st->b.ctx->provider_name ? st->b.ctx->provider_name : "",
                                         &st->quoted_len, &st->quoted_made);
        st->quoted_for = st->b.ctx->provider_name;
        st->quoted_ok = 1;
    }
    out->write(out->baton, "event: ", 7);
    out->write(out->baton, sp[0].p + 1, n);
    out->write(out->baton, "\ndata: ", 7);
    write_with_member(out, st->quoted, st->quoted_len,
                      data + i, len - i);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
    return 1;
}

/* FAILED before the frame, as mn_stream_fail: the relay tells the terminal
 * frame from content by it */
static mn_stream_status pass_fail(mn_stream *st, mn_sink *out)
{
    st->b.status = MN_STREAM_FAILED;
    mn_error_scrub(&st->b.err, st->b.ctx->provider);
    mn_fm_error_event(out, &st->b.err, st->b.ctx->provider_name);
    return st->b.status;
}

/* An event type goes into the client's `event:` line as it is: only the
 * characters Anthropic's names are made of, so an upstream cannot add lines
 * (or other events) to the client's stream. */
static int pass_name_ok(const char *t)
{
    size_t i, n = strlen(t);
    for (i = 0; i < n; i++) {
        if (!((t[i] >= 'a' && t[i] <= 'z') || t[i] == '_')) {
            return 0;
        }
    }
    return n > 0 && n < 64;
}

/* The upstream's bytes can go out as they are (one line, its own type, no
 * "provider" of its own that would override the gateway's: JSON readers
 * keep the last of two members; no NUL, which clients' parsers refuse). */
static int pass_bytes_ok(json_t *ev, const char *data, size_t len)
{
    json_t *t = json_object_get(ev, "type");
    return json_is_string(t) && json_string_length(t) == strlen(json_string_value(t))
           && !json_object_get(ev, "provider")
           && !memchr(data, '\n', len) && !memchr(data, '\r', len)
           && !memchr(data, '\0', len);   /* Jansson lets one pass after a scalar */
}

static mn_stream_status pass_feed(mn_stream *st, mn_sse_kind kind, const char *event,
                                  const char *data, size_t len, mn_sink *out)
{
    json_t *ev, *e;
    const char *type;
    char name[64];

    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (mn_fm_fast_paths && pass_fast(st, data, len, out)) {
        return st->b.status;
    }
    ev = json_loadb(data, len, 0, NULL);
    type = json_string_value(json_object_get(ev, "type"));
    if (!json_is_object(ev) || !(type || (event && *event))) {
        json_decref(ev);
        mn_error_set(&st->b.err, 502, "api_error", NULL, "upstream_bad_response",
                     "upstream sent an invalid stream: an event that is not a JSON object");
        return pass_fail(st, out);
    }
    if (!type) {
        type = event;
    }
    if (!pass_name_ok(type)) {
        json_decref(ev);
        mn_error_set(&st->b.err, 502, "api_error", NULL, "upstream_bad_response",
                     "upstream sent an invalid stream: an event type that is not a name");
        return pass_fail(st, out);
    }
    if (!strcmp(type, "message_start")) {
        usage_merge(&st->b.usage, json_object_get(json_object_get(ev, "message"), "usage"),
                    &st->in, &st->cw, &st->cr);
    }
    else if (!strcmp(type, "message_delta")) {
        usage_merge(&st->b.usage, json_object_get(ev, "usage"), &st->in, &st->cw, &st->cr);
    }
    else if (!strcmp(type, "message_stop")) {
        st->b.status = MN_STREAM_DONE;
    }
    else if (!strcmp(type, "error")) {
        e = json_object_get(ev, "error");
        type = json_string_value(json_object_get(e, "type"));
        mn_error_set(&st->b.err, 502, type && *type ? type : "api_error", NULL, NULL, "%s",
                     json_string_value(json_object_get(e, "message"))
                     ? json_string_value(json_object_get(e, "message"))
                     : "upstream reported an error mid-stream");
        mn_error_scrub(&st->b.err, st->b.ctx->provider);
        st->b.status = MN_STREAM_FAILED;
        /* the upstream's own message may quote a key: write the scrubbed one */
        json_decref(ev);
        mn_fm_error_event(out, &st->b.err, st->b.ctx->provider_name);
        return st->b.status;
    }
    snprintf(name, sizeof(name), "%s", type);
    out->write(out->baton, "event: ", 7);
    out->write(out->baton, name, strlen(name));
    out->write(out->baton, "\ndata: ", 7);
    if (pass_bytes_ok(ev, data, len)) {
        while (len && *data != '{') {
            data++;
            len--;
        }
        write_with_provider(out, st->b.ctx->provider_name, data, len);
    }
    else {
        /* rewritten by Jansson: one line, the gateway's provider, the type */
        json_object_set_new(ev, "type", json_string(name));
        json_object_set_new(ev, "provider", json_string(st->b.ctx->provider_name
                                                        ? st->b.ctx->provider_name : ""));
        mn_json_write(out, ev);
    }
    json_decref(ev);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
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
        mn_error_set(&st->b.err, 502, "api_error", NULL, "upstream_eof",
                     "upstream stream ended before message_stop");
    }
    return pass_fail(st, out);
}

static void pass_destroy(mn_stream *st)
{
    if (st) {
        free(st->quoted_made);
        free(st);
    }
}

const mn_wire mn_wire_anthropic_passthrough = {
    "anthropic-passthrough",
    pass_encode,
    pass_decode_response,
    pass_decode_error,
    pass_stream_create,
    pass_feed,
    pass_end,
    mn_stream_base_usage,
    mn_stream_base_error,
    pass_destroy,
    pass_decode_bytes
};
