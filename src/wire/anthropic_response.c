/* Anthropic wire, answers: a non-streaming Messages answer -> OpenAI
 * chat.completion, an upstream error -> mn_error (Retry-After as whole
 * seconds), and the usage and stop-reason mapping the stream shares.
 * Mapping decisions: docs/wire-anthropic.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_date.h>
#include <apr_strings.h>
#include "mn_chunk.h"
#include "mn_agent.h"
#include "mn_anthropic.h"

/* ------------------------------------------------------------------- usage */

/* Counts come from the upstream: a negative one is nonsense and would make
 * totals (and the accounting built on them) go backwards, so it counts as 0. */
static void set_long(long *dst, json_t *v)
{
    if (json_is_integer(v)) {
        *dst = mn_usage_count(v);
    }
}

/* Overwrites only what the object carries: message_delta repeats the input
 * counters (newer API) or not at all (older), and null means "unchanged". */
void mn_an_usage_merge(a_usage *u, json_t *usage)
{
    json_t *details;
    if (!json_is_object(usage)) {
        return;
    }
    u->have = 1;
    set_long(&u->in, json_object_get(usage, "input_tokens"));
    set_long(&u->cache_creation, json_object_get(usage, "cache_creation_input_tokens"));
    set_long(&u->cache_read, json_object_get(usage, "cache_read_input_tokens"));
    set_long(&u->out, json_object_get(usage, "output_tokens"));
    details = json_object_get(json_object_get(usage, "output_tokens_details"), "thinking_tokens");
    if (json_is_integer(details)) {
        u->thinking = mn_usage_count(details);
        u->have_thinking = 1;
    }
}

void mn_an_usage_to_mn(const a_usage *u, mn_usage *m)
{
    m->have = u->have;
    m->prompt_tokens = mn_usage_add(mn_usage_add(u->in, u->cache_creation), u->cache_read);
    m->completion_tokens = u->out;
    m->total_tokens = mn_usage_add(m->prompt_tokens, m->completion_tokens);
    m->cached_tokens = u->cache_read;
    m->cache_write_tokens = u->cache_creation;
    m->reasoning_tokens = u->thinking;
}

json_t *mn_an_usage_to_openai(const a_usage *u)
{
    mn_usage m;
    mn_an_usage_to_mn(u, &m);
    return mn_usage_to_openai_details(&m, u->have_thinking);
}

const char *mn_an_finish_reason(mn_wire_ctx *ctx, json_t *stop_reason)
{
    return mn_an_finish_reason_str(ctx, json_string_value(stop_reason));
}

const char *mn_an_finish_reason_str(mn_wire_ctx *ctx, const char *s)
{
    static const char *const stops[] = { "end_turn", "stop_sequence", "pause_turn", NULL };
    size_t i;
    if (!s) {
        return "stop";
    }
    if (!strcmp(s, "max_tokens") || !strcmp(s, "model_context_window_exceeded")) {
        return "length";
    }
    if (!strcmp(s, "tool_use")) {
        return "tool_calls";
    }
    if (!strcmp(s, "refusal")) {
        return "content_filter";
    }
    for (i = 0; stops[i] && strcmp(s, stops[i]); i++) {
    }
    if (!stops[i] && ctx) {
        mn_agent_unknown_finish(ctx, s);   /* a stop reason newer than this code */
    }
    return "stop";
}

/* ----------------------------------------------------------------- response */

/* The answer's content blocks, read into one assistant message. */
typedef struct {
    mn_buf text, thinking;
    int have_text, have_thinking;
    json_t *calls;           /* tool_calls, or NULL */
    json_t *blocks;          /* thinking_blocks, or NULL */
} answer_parts;

static json_t *tool_call_from_block(json_t *block)
{
    json_t *input = json_object_get(block, "input");
    char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
    json_t *call = json_pack("{s:O*,s:s,s:{s:O*,s:s}}",
                             "id", json_object_get(block, "id"),
                             "type", "function",
                             "function", "name", json_object_get(block, "name"),
                             "arguments", args ? args : "{}");
    free(args);
    return call;
}

static void read_blocks(json_t *content, answer_parts *a)
{
    json_t *block;
    size_t i;

    json_array_foreach(content, i, block) {
        const char *bt = json_string_value(json_object_get(block, "type"));
        json_t *s, *tb = mn_agent_thinking_block(block);
        if (tb) {
            if (!a->blocks) {
                a->blocks = json_array();
            }
            json_array_append_new(a->blocks, tb);
        }
        if (!bt) {
            continue;
        }
        if (!strcmp(bt, "text") && json_is_string(s = json_object_get(block, "text"))) {
            mn_buf_append(&a->text, json_string_value(s), json_string_length(s));
            a->have_text = 1;
        }
        else if (!strcmp(bt, "thinking")
                 && json_is_string(s = json_object_get(block, "thinking"))) {
            mn_buf_append(&a->thinking, json_string_value(s), json_string_length(s));
            a->have_thinking = 1;
        }
        else if (!strcmp(bt, "tool_use")) {
            if (!a->calls) {
                a->calls = json_array();
            }
            json_array_append_new(a->calls, tool_call_from_block(block));
        }
        /* server-tool blocks, citations: no OpenAI slot */
    }
}

/* The assistant message; takes a->calls and a->blocks. */
static json_t *answer_message(mn_wire_ctx *ctx, answer_parts *a)
{
    json_t *msg = json_object();

    json_object_set_new(msg, "role", json_string("assistant"));
    json_object_set_new(msg, "content", a->have_text ? json_stringn(a->text.data, a->text.len)
                                                     : json_null());
    json_object_set_new(msg, "refusal", json_null());
    if (a->have_thinking && ctx->provider && ctx->provider->reasoning_content) {
        json_object_set_new(msg, "reasoning_content",
                            json_stringn(a->thinking.data, a->thinking.len));
    }
    /* whatever reasoning= says: an agent must send them back to go on */
    if (a->blocks) {
        json_object_set_new(msg, "thinking_blocks", a->blocks);
        a->blocks = NULL;
    }
    if (a->calls) {
        json_object_set_new(msg, "tool_calls", a->calls);
        a->calls = NULL;
    }
    return msg;
}

/* A 200 whose body is not a message: an error object or garbage. */
static int not_a_message(mn_wire_ctx *ctx, json_t *root, mn_error *err)
{
    const char *upstream = json_string_value(
        json_object_get(json_object_get(root, "error"), "message"));
    if (upstream) {
        mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream answered 200 with an error instead of a message: %s", upstream);
        mn_error_scrub(err, ctx->provider);
    }
    else {
        mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream answered 200 with a body that is not an Anthropic message");
    }
    json_decref(root);
    return -1;
}

int mn_an_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                          json_t **out, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *content = json_object_get(root, "content");
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *msg, *choice, *res;
    answer_parts a;
    a_usage u;

    if (!json_is_object(root) || !type || strcmp(type, "message") || !json_is_array(content)) {
        return not_a_message(ctx, root, err);
    }

    memset(&a, 0, sizeof(a));
    mn_buf_init(&a.text);
    mn_buf_init(&a.thinking);
    read_blocks(content, &a);
    msg = answer_message(ctx, &a);
    mn_buf_free(&a.text);
    mn_buf_free(&a.thinking);

    choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason",
                        json_string(mn_an_finish_reason(ctx, json_object_get(root, "stop_reason"))));

    memset(&u, 0, sizeof(u));
    mn_an_usage_merge(&u, json_object_get(root, "usage"));
    mn_an_usage_to_mn(&u, usage);

    res = json_object();
    json_object_set(res, "id", json_object_get(root, "id"));
    json_object_set_new(res, "object", json_string("chat.completion"));
    json_object_set_new(res, "created", json_integer(ctx->created));
    json_object_set(res, "model", json_object_get(root, "model"));
    json_object_set_new(res, "choices", json_pack("[o]", choice));
    json_object_set_new(res, "usage", mn_an_usage_to_openai(&u));
    mn_chunk_tag(res, ctx->provider_name);
    json_decref(root);
    *out = res;
    return 0;
}

static void anthropic_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                                   size_t len, const char *retry_after, mn_error *err)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *e = json_object_get(root, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *message = json_string_value(json_object_get(e, "message"));

    if (message && *message) {
        mn_error_set(err, status, type && *type ? type : NULL, NULL, NULL, "%s", message);
    }
    else {
        mn_error_set(err, status, type && *type ? type : NULL, NULL, NULL,
                     "upstream answered HTTP %d without an error message", status);
    }
    json_decref(root);
    mn_error_scrub(err, ctx->provider);
    mn_wire_retry_after(ctx, retry_after, err);
}

void mn_an_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                        size_t len, const char *retry_after, mn_error *err)
{
    anthropic_decode_error(ctx, status, body, len, retry_after, err);
}
