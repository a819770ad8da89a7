/* mn_wire_openai: OpenAI-compatible upstreams (OpenAI, vLLM, Ollama, Groq,
 * Together, Mistral, OpenRouter, llama.cpp).  The body goes up as the client
 * sent it (model renamed, usage always requested so tokens can be logged);
 * answers come back as they are, with "provider" added and, for clients that
 * did not ask for usage, the usage we asked for taken out again. */
#include <string.h>
#include <apr_strings.h>
#include "mn_wire.h"

static int openai_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out,
                         mn_error *err)
{
    char *body;

    json_object_set_new(req, "model", json_string(ctx->model));
    if (ctx->stream) {
        json_t *so = json_object_get(req, "stream_options");
        if (!json_is_object(so)) {
            so = json_object();
            json_object_set_new(req, "stream_options", so);
        }
        json_object_set_new(so, "include_usage", json_true());
    }
    else {
        /* OpenAI rejects stream_options on a non-streaming request */
        json_object_del(req, "stream_options");
    }
    body = json_dumps(req, JSON_COMPACT);
    if (!body) {
        return mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
    }
    out->body_len = strlen(body);
    out->body = apr_pmemdup(ctx->pool, body, out->body_len + 1);
    free(body);
    out->path = "/chat/completions";
    out->headers = apr_table_make(ctx->pool, 4);
    apr_table_setn(out->headers, "Content-Type", "application/json");
    apr_table_setn(out->headers, "Accept",
                   ctx->stream ? "text/event-stream" : "application/json");
    if (ctx->provider->key) {
        apr_table_setn(out->headers, "Authorization",
                       apr_pstrcat(ctx->pool, "Bearer ", ctx->provider->key, NULL));
    }
    return 0;
}

static const char *find(const char *hay, size_t len, const char *needle, size_t nlen)
{
    return memmem(hay, len, needle, nlen);
}

static int openai_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                                  json_t **out, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);

    if (!json_is_object(root) || !json_is_array(json_object_get(root, "choices"))) {
        json_t *e = json_object_get(root, "error");
        if (json_is_object(e) || json_is_string(e)) {
            mn_error_from_openai_body(err, 502, body, len, ctx->provider);
            err->status = 502;
        }
        else {
            mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                         "upstream answered 200 with a body that is not a chat completion");
        }
        json_decref(root);
        return -1;
    }
    mn_usage_from_openai(usage, json_object_get(root, "usage"));
    json_object_set_new(root, "provider", json_string(ctx->provider_name));
    *out = root;
    return 0;
}

/* The upstream's bytes with "provider" inserted after the opening brace:
 * exact, and no serialisation of the whole answer. */
static int openai_decode_response_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                                        const char **out, size_t *out_len, mn_usage *usage,
                                        mn_error *err)
{
    json_t *root = NULL;
    const char *brace;
    char *name, *buf;
    size_t nlen, rest;

    if (openai_decode_response(ctx, body, len, &root, usage, err)) {
        return -1;
    }
    brace = memchr(body, '{', len);
    if (json_object_size(root) < 2 || !brace) {
        /* the answer had only our member: cannot happen for a completion */
        return mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                            "upstream answered 200 with a body that is not a chat completion");
    }
    json_decref(root);
    if (find(body, len, "\"provider\"", 10)) {
        /* an upstream's own "provider" (OpenRouter) must be replaced: take
         * the tree path, which does that */
        json_t *again = NULL;
        char *dumped;
        openai_decode_response(ctx, body, len, &again, usage, err);
        dumped = json_dumps(again, JSON_COMPACT);
        json_decref(again);
        if (!dumped) {
            return mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                                "upstream answer could not be re-encoded");
        }
        *out_len = strlen(dumped);
        *out = apr_pmemdup(ctx->pool, dumped, *out_len);
        free(dumped);
        return 0;
    }
    {
        json_t *n = json_string(ctx->provider_name);
        name = json_dumps(n, JSON_ENCODE_ANY);
        json_decref(n);
    }
    nlen = strlen(name);
    rest = len - (size_t)(brace + 1 - body);
    buf = apr_palloc(ctx->pool, 12 + nlen + 1 + rest);
    memcpy(buf, "{\"provider\":", 12);
    memcpy(buf + 12, name, nlen);
    buf[12 + nlen] = ',';
    memcpy(buf + 13 + nlen, brace + 1, rest);
    free(name);
    *out = buf;
    *out_len = 13 + nlen + rest;
    return 0;
}

static void openai_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                                size_t len, const char *retry_after, mn_error *err)
{
    mn_error_from_openai_body(err, status, body, len, ctx->provider);
    if (retry_after) {
        apr_cpystrn(err->retry_after, retry_after, sizeof(err->retry_after));
    }
}

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    char *provider_json;        /* the provider name as a JSON string */
};

static mn_stream *openai_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    json_t *name;
    if (!st) {
        return NULL;
    }
    st->b.ctx = ctx;
    name = json_string(ctx->provider_name);
    st->provider_json = json_dumps(name, JSON_ENCODE_ANY);
    json_decref(name);
    if (!st->provider_json) {
        free(st);
        return NULL;
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* A valid chunk (already parsed) usually needs only "provider" added and,
 * for a client that did not ask for usage, the top-level `"usage":null` we
 * caused removed.  Doing that on the upstream's bytes is exact and saves the
 * serialisation per frame.  usage_null_drop: remove that member.  Returns 0
 * when the bytes are not simple enough (multi-line data, an upstream
 * "provider", `"usage":null` not found exactly once) and the caller must
 * serialise the tree instead. */
static int write_chunk_bytes(mn_stream *st, const char *data, size_t len, int usage_null_drop,
                             mn_sink *out)
{
    size_t start = 0, end = len, cut = 0, cut_len = 0, i;
    int inner_empty = 1;

    while (start < end && is_space(data[start])) {
        start++;
    }
    while (end > start && is_space(data[end - 1])) {
        end--;
    }
    if (end - start < 2 || data[start] != '{' || memchr(data, '\n', len)
        || find(data, len, "\"provider\"", 10)) {
        return 0;
    }
    if (usage_null_drop) {
        const char *u = find(data, len, "\"usage\":null", 12);
        size_t before, after;
        if (!u || find(u + 12, len - (size_t)(u - data) - 12, "\"usage\"", 7)
            || find(data, (size_t)(u - data), "\"usage\"", 7)) {
            return 0;
        }
        cut = (size_t)(u - data);
        cut_len = 12;
        /* take one neighbouring comma with it, whitespace allowed around */
        before = cut;
        while (before > start && is_space(data[before - 1])) {
            before--;
        }
        after = cut + cut_len;
        while (after < end && is_space(data[after])) {
            after++;
        }
        if (data[before - 1] == ',') {
            cut_len += cut - (before - 1);
            cut = before - 1;
        }
        else if (data[after] == ',') {
            cut_len = after + 1 - cut;
        }
    }
    for (i = start + 1; i < end - 1; i++) {
        if ((cut_len && i >= cut && i < cut + cut_len) || is_space(data[i])) {
            continue;
        }
        inner_empty = 0;
        break;
    }
    out->write(out->baton, "data: {\"provider\":", 18);
    out->write(out->baton, st->provider_json, strlen(st->provider_json));
    if (!inner_empty) {
        out->write(out->baton, ",", 1);
    }
    if (cut_len) {
        out->write(out->baton, data + start + 1, cut - start - 1);
        out->write(out->baton, data + cut + cut_len, end - cut - cut_len);
    }
    else {
        out->write(out->baton, data + start + 1, end - start - 1);
    }
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
    return 1;
}

static mn_stream_status openai_stream_feed(mn_stream *st, mn_sse_kind kind,
                                           const char *event, const char *data,
                                           size_t len, mn_sink *out)
{
    json_t *chunk, *usage, *e;

    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        mn_sse_write_done(out);
        st->b.status = MN_STREAM_DONE;
        return st->b.status;
    }
    chunk = json_loadb(data, len, 0, NULL);
    if (!json_is_object(chunk)) {
        json_decref(chunk);
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream sent a stream frame that is not a JSON object");
        return fail_with(st, out);
    }
    e = json_object_get(chunk, "error");
    if ((e && !json_is_null(e) && !json_is_false(e)) || !strcmp(event, "error")) {
        char *raw = json_dumps(chunk, JSON_COMPACT);
        mn_error_from_openai_body(&st->b.err, 502, raw, raw ? strlen(raw) : 0,
                                  st->b.ctx->provider);
        free(raw);
        json_decref(chunk);
        return fail_with(st, out);
    }
    usage = json_object_get(chunk, "usage");
    if (json_is_object(usage)) {
        mn_usage_from_openai(&st->b.usage, usage);
    }
    if (!st->b.ctx->include_usage && usage) {
        json_t *choices = json_object_get(chunk, "choices");
        if (json_is_object(usage) && json_is_array(choices) && json_array_size(choices) == 0) {
            /* the usage-only chunk we asked for on our own behalf */
            json_decref(chunk);
            return st->b.status;
        }
    }
    if ((!usage || json_is_null(usage) || st->b.ctx->include_usage)
        && write_chunk_bytes(st, data, len, usage && !st->b.ctx->include_usage, out)) {
        json_decref(chunk);
        return st->b.status;
    }
    if (!st->b.ctx->include_usage) {
        json_object_del(chunk, "usage");
    }
    json_object_set_new(chunk, "provider", json_string(st->b.ctx->provider_name));
    mn_sse_write_json(out, chunk);
    json_decref(chunk);
    return st->b.status;
}

static mn_stream_status openai_stream_end(mn_stream *st, const mn_error *cause,
                                       mn_sink *out)
{
    return mn_stream_end_without(&st->b, cause, "[DONE]", out);
}

static void openai_stream_destroy(mn_stream *st)
{
    free(st->provider_json);
    free(st);
}

const mn_wire mn_wire_openai = {
    "openai",
    openai_encode,
    openai_decode_response,
    openai_decode_error,
    openai_stream_create,
    openai_stream_feed,
    openai_stream_end,
    mn_stream_base_usage,
    mn_stream_base_error,
    openai_stream_destroy,
    openai_decode_response_bytes
};
