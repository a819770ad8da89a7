/* mn_wire: format registry and helpers shared by the translators. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <apr_cstr.h>
#include <apr_strings.h>
#include "mn_chunk.h"
#include "mn_resilience.h"
#include "mn_wire.h"

const mn_wire *mn_wire_for(mn_format f)
{
    switch (f) {
    case MN_FORMAT_OPENAI:
        return &mn_wire_openai;
    case MN_FORMAT_ANTHROPIC:
        return &mn_wire_anthropic;
    case MN_FORMAT_GEMINI:
        return &mn_wire_gemini;
    default:
        return NULL;
    }
}

long mn_usage_count(json_t *v)
{
    json_int_t n;
    if (!json_is_integer(v) || (n = json_integer_value(v)) <= 0) {
        return 0;
    }
    return n >= (json_int_t)LONG_MAX ? LONG_MAX : (long)n;
}

long mn_usage_add(long a, long b)
{
    return a > LONG_MAX - b ? LONG_MAX : a + b;
}

static long int_member(json_t *obj, const char *name)
{
    return mn_usage_count(json_object_get(obj, name));
}

void mn_usage_from_openai(mn_usage *u, json_t *usage)
{
    if (!json_is_object(usage)) {
        return;
    }
    u->have = 1;
    u->prompt_tokens = int_member(usage, "prompt_tokens");
    u->completion_tokens = int_member(usage, "completion_tokens");
    u->total_tokens = int_member(usage, "total_tokens");
    u->cached_tokens = int_member(json_object_get(usage, "prompt_tokens_details"),
                                  "cached_tokens");
    u->reasoning_tokens = int_member(json_object_get(usage, "completion_tokens_details"),
                                     "reasoning_tokens");
}

void mn_wire_retry_after(const mn_wire_ctx *ctx, const char *raw, mn_error *err)
{
    if (raw) {
        mn_retry_after_normalise(raw, apr_time_from_sec(ctx->created), err->retry_after,
                                 sizeof(err->retry_after));
    }
}

/* mn_wire_dump's buffer: grown in the pool by doubling, one byte always
 * kept free for the NUL. */
typedef struct {
    apr_pool_t *p;
    char *data;
    size_t len, cap;
} pool_dump;

static int pool_dump_cb(const char *bytes, size_t size, void *baton)
{
    pool_dump *d = baton;
    if (d->len + size >= d->cap) {
        size_t cap = d->cap * 2;
        char *grown;
        while (d->len + size >= cap) {
            cap *= 2;
        }
        grown = apr_palloc(d->p, cap);
        memcpy(grown, d->data, d->len);
        d->data = grown;
        d->cap = cap;
    }
    memcpy(d->data + d->len, bytes, size);
    d->len += size;
    return 0;
}

char *mn_wire_dump(apr_pool_t *p, json_t *j, size_t *len)
{
    pool_dump d;
    d.p = p;
    d.cap = 1024;
    d.len = 0;
    d.data = apr_palloc(p, d.cap);
    if (json_dump_callback(j, pool_dump_cb, &d, JSON_COMPACT)) {
        return NULL;
    }
    d.data[d.len] = '\0';   /* the callback keeps one byte free */
    *len = d.len;
    return d.data;
}

int mn_wire_answer_dump(mn_wire_ctx *ctx, json_t *tree, const char **out, size_t *out_len,
                        mn_error *err)
{
    *out = mn_wire_dump(ctx->pool, tree, out_len);
    json_decref(tree);
    if (!*out) {
        return mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                            "upstream answer could not be re-encoded");
    }
    return 0;
}

int mn_wire_pass_body(mn_wire_ctx *ctx, json_t *body, mn_upstream_req *out, mn_error *err)
{
    char *dump;

    json_object_set_new(body, "model", json_string(ctx->model ? ctx->model : ""));
    if (ctx->stream) {
        json_object_set_new(body, "stream", json_true());
    }
    else {
        json_object_del(body, "stream");
    }
    dump = mn_wire_dump(ctx->pool, body, &out->body_len);
    json_decref(body);
    if (!dump) {
        return mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                            "request could not be serialised");
    }
    out->body = dump;
    return 0;
}

json_t *mn_usage_to_openai(const mn_usage *u)
{
    return json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)u->prompt_tokens,
                     "completion_tokens", (json_int_t)u->completion_tokens,
                     "total_tokens", (json_int_t)u->total_tokens);
}

json_t *mn_usage_to_openai_details(const mn_usage *u, int have_reasoning)
{
    json_t *o = mn_usage_to_openai(u);
    json_object_set_new(o, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached_tokens));
    /* OpenAI has no member for cache writes: LiteLLM's name, only when there are some */
    if (u->cache_write_tokens > 0) {
        json_object_set_new(json_object_get(o, "prompt_tokens_details"), "cache_creation_tokens",
                            json_integer((json_int_t)u->cache_write_tokens));
    }
    if (have_reasoning) {
        json_object_set_new(o, "completion_tokens_details",
                            json_pack("{s:I}", "reasoning_tokens",
                                      (json_int_t)u->reasoning_tokens));
    }
    return o;
}

mn_stream_status mn_stream_fail(mn_stream_base *b, mn_sink *out)
{
    /* FAILED before the frames: a sink that asks (the relay) can tell the
     * terminal frames from content */
    b->status = MN_STREAM_FAILED;
    mn_error_scrub(&b->err, b->ctx->provider);
    mn_chunk_error_end(&b->err, b->ctx->provider_name, out);
    return b->status;
}

mn_stream_status mn_stream_end_without(mn_stream_base *b, const mn_error *cause,
                                       const char *what, mn_sink *out)
{
    if (b->status != MN_STREAM_MORE) {
        return b->status;
    }
    if (cause) {
        b->err = *cause;
    }
    else {
        mn_error_set(&b->err, 502, NULL, NULL, "upstream_eof",
                     "upstream closed the stream before %s", what);
    }
    return mn_stream_fail(b, out);
}

const mn_usage *mn_stream_base_usage(mn_stream *st)
{
    return &((mn_stream_base *)st)->usage;
}

const mn_error *mn_stream_base_error(mn_stream *st)
{
    const mn_stream_base *b = (const mn_stream_base *)st;
    return b->status == MN_STREAM_FAILED ? &b->err : NULL;
}

int mn_data_url(const char *url, char *mime, size_t mime_size, const char **payload,
                const char **why)
{
    const char *meta, *comma;
    size_t mlen, i;

    if (apr_cstr_casecmpn(url, "data:", 5)) {
        *why = "not a data: URL";
        return -1;
    }
    meta = url + 5;
    comma = strchr(meta, ',');
    if (!comma) {
        *why = "the data: URL has no ',' before its payload";
        return -1;
    }
    /* the media type ends at the first ';' or ','; base64 must be the last
     * parameter (extra ones such as charset are allowed before it) */
    if ((size_t)(comma - meta) < 7 || apr_cstr_casecmpn(comma - 7, ";base64", 7)) {
        *why = "data: URLs must be base64 encoded (;base64,)";
        return -1;
    }
    mlen = strcspn(meta, ";,");
    if (mlen == 0) {
        *why = "the data: URL has no media type";
        return -1;
    }
    if (!comma[1]) {
        *why = "the data: URL has no data";
        return -1;
    }
    if (mlen >= mime_size) {
        *why = "the data: URL's media type is too long";
        return -1;
    }
    for (i = 0; i < mlen; i++) {
        char c = meta[i];
        mime[i] = (c >= 'A' && c <= 'Z') ? (char)(c - 'A' + 'a') : c;
    }
    mime[mlen] = '\0';
    *payload = comma + 1;
    return 0;
}
