/* mn_wire_openai: OpenAI-compatible upstreams (OpenAI, vLLM, Ollama, Groq,
 * Together, Mistral, OpenRouter, llama.cpp).  The body goes up as the client
 * sent it (model renamed, usage always requested so tokens can be logged);
 * answers come back as they are, with "provider" added and, for clients that
 * did not ask for usage, the usage we asked for taken out again. */
#include <string.h>
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_chunk.h"
#include "mn_jscan.h"
#include "mn_wire.h"

static int openai_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out,
                         mn_error *err)
{
    char *body;
    json_t *plain;

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
    /* ids the gateway encoded for Gemini are too long for OpenAI (40) and
     * mean nothing to it: a copy of the top level carries the plain ones */
    plain = mn_agent_plain_messages(ctx->pool, json_object_get(req, "messages"));
    if (plain) {
        json_t *copy = json_copy(req);
        json_object_set_new(copy, "messages", plain);
        body = mn_wire_dump(ctx->pool, copy, &out->body_len);
        json_decref(copy);
    }
    else {
        body = mn_wire_dump(ctx->pool, req, &out->body_len);
    }
    if (!body) {
        return mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
    }
    out->body = body;
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

/* The answer as a tree, checked, without our "provider" yet. */
static int parse_completion(mn_wire_ctx *ctx, const char *body, size_t len, json_t **out,
                            mn_usage *usage, mn_error *err)
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
    *out = root;
    return 0;
}

static int openai_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                                  json_t **out, mn_usage *usage, mn_error *err)
{
    if (parse_completion(ctx, body, len, out, usage, err)) {
        return -1;
    }
    mn_chunk_tag(*out, ctx->provider_name);
    return 0;
}

/* Bytes a client may get as they are: Jansson accepts a raw NUL right after
 * a number or a literal, no other JSON parser does. */
static int bytes_clean(const char *data, size_t len)
{
    return !memchr(data, '\0', len);
}

static int is_space(char c)
{
    return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}

/* Skips a JSON string starting at its opening quote d[i]; returns the index
 * of its closing quote and whether it holds an escape. */
static size_t skip_string(const char *d, size_t i, size_t end, int *escaped)
{
    *escaped = 0;
    for (i++; i < end && d[i] != '"'; i++) {
        if (d[i] == '\\') {
            *escaped = 1;
            i++;
        }
    }
    return i;
}

/* Scans the bytes of a chunk Jansson accepted for its top-level keys.
 * Returns -1 when one holds an escape (it could spell "usage" or
 * "provider": the tree knows, the bytes do not) or "usage" comes twice;
 * else 1 with [*at, *at_end) the member `"usage":null` when there is one,
 * or 0.  Bytes matched inside a string or a nested object would cut the
 * wrong thing, hence the scan rather than a search. */
static int scan_top_keys(const char *d, size_t start, size_t end, size_t *at, size_t *at_end)
{
    size_t i;
    int depth = 0, expect_key = 0, usage_seen = 0, found = 0;
    for (i = start; i < end; i++) {
        char c = d[i];
        if (c == '"') {
            int escaped;
            size_t close = skip_string(d, i, end, &escaped);
            if (depth == 1 && expect_key) {
                size_t v = close + 1;
                if (escaped) {
                    return -1;
                }
                while (v < end && (is_space(d[v]) || d[v] == ':')) {
                    v++;
                }
                if (close - i - 1 == 5 && !memcmp(d + i + 1, "usage", 5)) {
                    if (usage_seen++) {
                        return -1;
                    }
                    if (end - v >= 4 && !memcmp(d + v, "null", 4)) {
                        found = 1;
                        *at = i;
                        *at_end = v + 4;
                    }
                }
                expect_key = 0;
            }
            i = close;
        }
        else if (c == '{' || c == '[') {
            depth++;
            expect_key = c == '{' && depth == 1;
        }
        else if (c == '}' || c == ']') {
            depth--;
        }
        else if (c == ',' && depth == 1) {
            expect_key = 1;
        }
    }
    return found;
}

/* The upstream's bytes with "provider" inserted after the opening brace:
 * exact, and no serialisation of the whole answer.  An upstream "provider"
 * of its own (OpenRouter; escaped or not, the tree says) or bytes that are
 * not clean (a NUL, an escaped top-level key) take the tree path, which
 * replaces it and re-encodes. */
/* A usage count from its span, as mn_usage_count reads the tree: Jansson
 * makes an integer of a number without fraction or exponent (mn_jscan has
 * checked it fits int64); anything else, and anything not above 0, is 0. */
static long span_count(const mn_jspan *sp)
{
    long n = 0;
    size_t i;
    if (sp->type != MN_JT_NUMBER || sp->p[0] == '-') {
        return 0;
    }
    for (i = 0; i < sp->len; i++) {
        if (sp->p[i] < '0' || sp->p[i] > '9') {
            return 0;
        }
    }
    for (i = 0; i < sp->len; i++) {
        n = n * 10 + (sp->p[i] - '0');
    }
    return n;
}

/* A plain answer (an object with a choices array, no upstream "provider",
 * usage an object, null or absent, no NUL byte) needs no tree: mn_jscan
 * validates it as json_loadb would and the usage counts are read from their
 * spans as mn_usage_from_openai reads them from the tree.  1 with usage
 * filled, 0 when the tree path must decide. */
enum { AF_CHOICES, AF_USAGE, AF_PROVIDER, AF_PROMPT, AF_COMPLETION, AF_TOTAL, AF_CACHED,
       AF_REASONING, AF_N };
static int answer_fast(const char *body, size_t len, mn_usage *usage)
{
    static const mn_jpath paths[AF_N] = {
        MN_JPATH(MN_JK("choices")),
        MN_JPATH(MN_JK("usage")),
        MN_JPATH(MN_JK("provider")),
        MN_JPATH(MN_JK("usage"), MN_JK("prompt_tokens")),
        MN_JPATH(MN_JK("usage"), MN_JK("completion_tokens")),
        MN_JPATH(MN_JK("usage"), MN_JK("total_tokens")),
        MN_JPATH(MN_JK("usage"), MN_JK("prompt_tokens_details"), MN_JK("cached_tokens")),
        MN_JPATH(MN_JK("usage"), MN_JK("completion_tokens_details"), MN_JK("reasoning_tokens"))
    };
    mn_jspan sp[AF_N];

    if (mn_jscan(body, len, paths, AF_N, sp) || sp[AF_CHOICES].type != MN_JT_ARRAY
        || sp[AF_PROVIDER].type != MN_JT_NONE || sp[AF_USAGE].count > 1
        || (sp[AF_USAGE].type != MN_JT_NONE && sp[AF_USAGE].type != MN_JT_NULL
            && sp[AF_USAGE].type != MN_JT_OBJECT)
        || !bytes_clean(body, len)) {
        return 0;
    }
    if (sp[AF_USAGE].type == MN_JT_OBJECT) {
        usage->have = 1;
        usage->prompt_tokens = span_count(&sp[AF_PROMPT]);
        usage->completion_tokens = span_count(&sp[AF_COMPLETION]);
        usage->total_tokens = span_count(&sp[AF_TOTAL]);
        usage->cached_tokens = span_count(&sp[AF_CACHED]);
        usage->reasoning_tokens = span_count(&sp[AF_REASONING]);
    }
    return 1;
}

static int openai_decode_response_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                                        const char **out, size_t *out_len, mn_usage *usage,
                                        mn_error *err)
{
    json_t *root = NULL;
    const char *brace, *name;
    char *made = NULL, *buf;
    size_t nlen, rest;

    if (answer_fast(body, len, usage)) {
        brace = memchr(body, '{', len);
        goto insert;
    }
    if (parse_completion(ctx, body, len, &root, usage, err)) {
        return -1;
    }
    brace = memchr(body, '{', len);
    if (json_object_get(root, "provider") || !bytes_clean(body, len) || !brace
        || scan_top_keys(body, (size_t)(brace - body), len, &(size_t){0}, &(size_t){0}) < 0) {
        mn_chunk_tag(root, ctx->provider_name);
        return mn_wire_answer_dump(ctx, root, out, out_len, err);
    }
    json_decref(root);
insert:
    name = mn_chunk_member_for(ctx->provider_name, &nlen, &made);
    if (!name) {
        return mn_error_set(err, 500, NULL, NULL, NULL, "out of memory");
    }
    rest = len - (size_t)(brace + 1 - body);
    buf = apr_palloc(ctx->pool, 2 + nlen + rest);
    buf[0] = '{';
    memcpy(buf + 1, name, nlen);
    buf[1 + nlen] = ',';
    memcpy(buf + 2 + nlen, brace + 1, rest);
    free(made);
    *out = buf;
    *out_len = 2 + nlen + rest;
    return 0;
}

static void openai_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                                size_t len, const char *retry_after, mn_error *err)
{
    mn_error_from_openai_body(err, status, body, len, ctx->provider);
    mn_wire_retry_after(ctx, retry_after, err);
}

/* What the hot path looks at in a chunk (indexes into mn_stream.fast). */
enum { FP_ERROR, FP_PROVIDER, FP_USAGE, FP_CHOICE_N, FP_FINISH, FP_N };
static const mn_jpath fast_paths[FP_N] = {
    MN_JPATH(MN_JK("error")),
    MN_JPATH(MN_JK("provider")),
    MN_JPATH(MN_JK("usage")),
    MN_JPATH(MN_JK("choices"), MN_JEACH),
    MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("finish_reason"))
};

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    mn_chunk chunk;             /* puts "provider" into the upstream's chunks */
    mn_jmemo memo;              /* the chunks' common head (id, model, ...), walked once */
    json_t *usage_chunk;        /* usage that came on a chunk with choices, sent
                                 * on its own (choices: []) just before [DONE] */
};

static mn_stream *openai_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    if (!st) {
        return NULL;
    }
    st->b.ctx = ctx;
    if (mn_chunk_init(&st->chunk, ctx->provider_name, ctx->include_usage)
        || !st->chunk.provider_len) {
        mn_chunk_free(&st->chunk);
        free(st);
        return NULL;
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

/* A valid chunk (already parsed) usually needs only "provider" added and,
 * for a client that did not ask for usage, the top-level `"usage":null` we
 * caused removed.  Doing that on the upstream's bytes is exact and saves the
 * serialisation per frame.  usage_null_drop: remove that member.  Returns 0
 * when the bytes are not simple enough (multi-line data, a NUL, an escaped
 * top-level key, `"usage":null` not found plainly and exactly once) and the
 * caller must serialise the tree instead. */
static int write_chunk_bytes(mn_stream *st, const char *data, size_t len, int usage_null_drop,
                             mn_sink *out)
{
    size_t start = 0, end = len, cut = 0, cut_len = 0, at = 0, at_end = 0, i;
    int inner_empty = 1, usage_null;

    while (start < end && is_space(data[start])) {
        start++;
    }
    while (end > start && is_space(data[end - 1])) {
        end--;
    }
    if (end - start < 2 || data[start] != '{' || memchr(data, '\n', len)
        || !bytes_clean(data, len)) {
        return 0;
    }
    usage_null = scan_top_keys(data, start, end, &at, &at_end);
    if (usage_null < 0 || (usage_null_drop && !usage_null)) {
        return 0;
    }
    if (usage_null_drop) {
        size_t before, after;
        cut = at;
        cut_len = at_end - at;
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
    if (cut_len) {
        mn_chunk_wrap(&st->chunk, !inner_empty, data + start + 1, cut - start - 1,
                      data + cut + cut_len, end - cut - cut_len, out);
    }
    else {
        mn_chunk_wrap(&st->chunk, !inner_empty, data + start + 1, end - start - 1, NULL, 0,
                      out);
    }
    return 1;
}

/* Usage that a provider (Groq, DeepSeek) put on a chunk with choices: kept
 * as the separate usage chunk OpenAI sends, written just before [DONE]. */
static void keep_usage_chunk(mn_stream *st, json_t *chunk, json_t *usage)
{
    static const char *const copied[] = { "id", "object", "created", "model",
                                          "system_fingerprint" };
    json_t *u = json_object();
    size_t i;
    for (i = 0; i < sizeof(copied) / sizeof(copied[0]); i++) {
        json_t *v = json_object_get(chunk, copied[i]);
        if (v) {
            json_object_set(u, copied[i], v);
        }
    }
    json_object_set_new(u, "choices", json_array());
    json_object_set(u, "usage", usage);
    mn_chunk_tag(u, st->b.ctx->provider_name);
    json_decref(st->usage_chunk);
    st->usage_chunk = u;
}

/* Qwen's continuation chunks have choices without finish_reason; clients
 * expect the member on every choice, null until the end. */
static int fill_finish_reason(json_t *choices)
{
    size_t i;
    json_t *c;
    int changed = 0;
    json_array_foreach(choices, i, c) {
        if (json_is_object(c) && !json_object_get(c, "finish_reason")) {
            json_object_set_new(c, "finish_reason", json_null());
            changed = 1;
        }
    }
    return changed;
}

/* Brings a chunk to the shape clients expect.  Returns -1 when it is to be
 * dropped, else 1 when the tree was changed (its bytes no longer fit). */
static int normalise_chunk(mn_stream *st, json_t *chunk)
{
    json_t *usage = json_object_get(chunk, "usage");
    json_t *choices = json_object_get(chunk, "choices");
    int include_usage = st->b.ctx->include_usage, changed = 0;

    if (json_array_size(choices) == 0) {
        /* without choices only the usage chunk, and only for a client that
         * asked: Azure's preamble (prompt_filter_results), keep-alives and
         * our own usage request stay here */
        if (!json_is_object(usage) || !include_usage) {
            return -1;
        }
        json_decref(st->usage_chunk);   /* a real usage chunk supersedes a kept one */
        st->usage_chunk = NULL;
        if (!json_is_array(choices)) {
            json_object_set_new(chunk, "choices", json_array());
            changed = 1;
        }
    }
    else if (json_is_object(usage) && include_usage) {
        keep_usage_chunk(st, chunk, usage);
        json_object_set_new(chunk, "usage", json_null());
        changed = 1;
    }
    changed |= fill_finish_reason(choices);
    return changed || json_object_get(chunk, "provider") != NULL;
}

static mn_stream_status write_done(mn_stream *st, mn_sink *out)
{
    if (st->usage_chunk) {
        mn_sse_write_json(out, st->usage_chunk);
        json_decref(st->usage_chunk);
        st->usage_chunk = NULL;
    }
    mn_sse_write_done(out);
    st->b.status = MN_STREAM_DONE;
    return st->b.status;
}

/* The common chunk (one choice with its finish_reason, `usage` null or
 * absent, no error, no upstream "provider", bytes that fit one SSE line)
 * goes out as the upstream's bytes with "provider" put first and, for a
 * client that did not ask for usage, the `usage` member cut: validated and
 * measured by mn_jscan, no tree, no allocation.  Returns 0 when the chunk is
 * not that simple (the tree path takes it), -1 when it is not JSON at all. */
static int write_chunk_fast(mn_stream *st, const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[FP_N];
    const mn_jspan *u = &sp[FP_USAGE];
    const char *open, *close, *cut = NULL, *cut_end = NULL;

    if (mn_jscan_memo(data, len, fast_paths, FP_N, sp, &st->memo)) {
        return -1;
    }
    if (sp[FP_ERROR].type != MN_JT_NONE || sp[FP_PROVIDER].type != MN_JT_NONE
        || (u->type != MN_JT_NONE && (u->type != MN_JT_NULL || u->count != 1))
        || sp[FP_CHOICE_N].count != 1   /* [*] counts array elements only */
        || sp[FP_FINISH].type == MN_JT_NONE || memchr(data, '\n', len)
        || memchr(data, '\r', len) || !bytes_clean(data, len)) {
        return 0;
    }
    open = memchr(data, '{', len);
    close = data + len;
    while (*--close != '}') {
    }
    if (u->type == MN_JT_NULL && !st->b.ctx->include_usage) {
        /* the member and one comma next to it, whitespace around allowed */
        const char *b = u->key, *a = u->p + u->len;
        while (is_space(b[-1])) {
            b--;
        }
        while (is_space(*a)) {
            a++;
        }
        if (b[-1] == ',') {
            cut = b - 1;
            cut_end = u->p + u->len;
        }
        else {
            cut = u->key;
            cut_end = a + 1;   /* not the only member: choices is there */
        }
    }
    if (cut) {
        mn_chunk_wrap(&st->chunk, 1, open + 1, (size_t)(cut - open - 1), cut_end,
                      (size_t)(close + 1 - cut_end), out);
    }
    else {
        mn_chunk_wrap(&st->chunk, 1, open + 1, (size_t)(close - open), NULL, 0, out);
    }
    return 1;
}

static mn_stream_status openai_stream_feed(mn_stream *st, mn_sse_kind kind,
                                           const char *event, const char *data,
                                           size_t len, mn_sink *out)
{
    json_t *chunk, *usage, *e;
    int include_usage = st->b.ctx->include_usage, changed, fast;

    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        return write_done(st, out);
    }
    fast = strcmp(event, "error") ? write_chunk_fast(st, data, len, out) : 0;
    if (fast > 0) {
        return st->b.status;
    }
    chunk = fast < 0 ? NULL : json_loadb(data, len, 0, NULL);
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
    changed = normalise_chunk(st, chunk);
    if (changed < 0) {
        json_decref(chunk);
        return st->b.status;
    }
    usage = json_object_get(chunk, "usage");
    if (!changed && (!usage || json_is_null(usage) || include_usage)
        && write_chunk_bytes(st, data, len, usage && !include_usage, out)) {
        json_decref(chunk);
        return st->b.status;
    }
    if (!include_usage) {
        json_object_del(chunk, "usage");
    }
    mn_chunk_tree(chunk, st->b.ctx->provider_name, out);
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
    json_decref(st->usage_chunk);
    mn_chunk_free(&st->chunk);
    free(st);
}

const mn_wire mn_wire_openai = {
    .name = "openai",
    .encode_request = openai_encode,
    .decode_response = openai_decode_response,
    .decode_error = openai_decode_error,
    .stream_create = openai_stream_create,
    .stream_feed = openai_stream_feed,
    .stream_end = openai_stream_end,
    .stream_usage = mn_stream_base_usage,
    .stream_error = mn_stream_base_error,
    .stream_destroy = openai_stream_destroy,
    .decode_response_bytes = openai_decode_response_bytes,
};
