/* mn_echo: the offline builtin:echo provider (see include/mn_echo.h). */
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_time.h>
#include "mn_chunk.h"
#include "mn_echo.h"
#include "mn_sse.h"

/* Text of a message's content: a string, or its text parts joined by "\n". */
static const char *content_text(apr_pool_t *p, json_t *content)
{
    if (json_is_string(content)) {
        return json_string_value(content);
    }
    if (json_is_array(content)) {
        size_t i;
        json_t *part;
        const char *acc = NULL;
        json_array_foreach(content, i, part) {
            json_t *text = json_object_get(part, "text");
            if (json_is_string(text)) {
                acc = acc ? apr_pstrcat(p, acc, "\n", json_string_value(text), NULL)
                          : json_string_value(text);
            }
        }
        return acc ? acc : "";
    }
    return "";
}

static long count_words(const char *s)
{
    long n = 0;
    int in_word = 0;
    for (; *s; s++) {
        if (apr_isspace(*s)) {
            in_word = 0;
        }
        else if (!in_word) {
            in_word = 1;
            n++;
        }
    }
    return n;
}

static const char *last_user_text(apr_pool_t *p, json_t *req, long *prompt_words)
{
    json_t *messages = json_object_get(req, "messages");
    const char *last = "";
    size_t i;
    json_t *m;
    *prompt_words = 0;
    json_array_foreach(messages, i, m) {
        const char *text = content_text(p, json_object_get(m, "content"));
        *prompt_words += count_words(text);
        if (!strcmp(json_string_value(json_object_get(m, "role")) ? json_string_value(json_object_get(m, "role")) : "", "user")) {
            last = text;
        }
    }
    return last;
}

static const char *make_id(apr_pool_t *p)
{
    static apr_uint32_t counter;
    return apr_psprintf(p, "chatcmpl-echo-%" APR_UINT64_T_HEX_FMT "%04x",
                        (apr_uint64_t)apr_time_now(), (unsigned)(counter++ & 0xffff));
}

json_t *mn_echo_response(mn_wire_ctx *ctx, json_t *req, mn_usage *usage)
{
    long prompt_words;
    const char *text = last_user_text(ctx->pool, req, &prompt_words);
    json_t *resp;

    usage->have = 1;
    usage->prompt_tokens = prompt_words;
    usage->completion_tokens = count_words(text);
    usage->total_tokens = usage->prompt_tokens + usage->completion_tokens;
    resp = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:{s:s,s:s,s:n},s:n,s:s}],s:o}",
                     "id", make_id(ctx->pool), "object", "chat.completion",
                     "created", (json_int_t)ctx->created, "model", ctx->model,
                     "choices", "index", 0, "message", "role", "assistant",
                     "content", text, "refusal", "logprobs", "finish_reason", "stop",
                     "usage", mn_usage_to_openai(usage));
    mn_chunk_tag(resp, ctx->provider_name);
    return resp;
}

void mn_echo_stream(mn_wire_ctx *ctx, json_t *req, mn_sink *out, mn_usage *usage)
{
    long prompt_words;
    const char *text = last_user_text(ctx->pool, req, &prompt_words);
    const char *id = make_id(ctx->pool);
    const char *s = text;
    mn_chunk c;

    /* on failure (memory) the writers write nothing; [DONE] still ends it */
    if (!mn_chunk_init(&c, ctx->provider_name, ctx->include_usage)) {
        mn_chunk_head(&c, id, NULL, ctx->model, NULL, ctx->created);
    }
    usage->have = 1;
    usage->prompt_tokens = prompt_words;
    usage->completion_tokens = count_words(text);
    usage->total_tokens = usage->prompt_tokens + usage->completion_tokens;

    mn_chunk_role(&c, out);
    /* each piece is leading whitespace plus one word, so the pieces
     * concatenate back to the exact message */
    while (*s) {
        const char *start = s;
        json_t *piece;
        while (*s && apr_isspace(*s)) {
            s++;
        }
        while (*s && !apr_isspace(*s)) {
            s++;
        }
        piece = json_stringn(start, (size_t)(s - start));
        mn_chunk_text(&c, "content", piece, out);
        json_decref(piece);
    }
    mn_chunk_finish(&c, "stop", out);
    if (ctx->include_usage) {
        json_t *u = mn_usage_to_openai(usage);
        mn_chunk_usage(&c, u, out);
        json_decref(u);
    }
    mn_chunk_free(&c);
    mn_sse_write_done(out);
}
