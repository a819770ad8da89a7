/* Anthropic wire, request: a policy-checked OpenAI chat request -> the
 * Messages API body (rebuilt, not edited: every member is mapped, dropped or
 * passed through) and headers; and the mn_wire_anthropic vtable joining the
 * three Anthropic units (see mn_anthropic.h).  Mapping decisions:
 * docs/wire-anthropic.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_anthropic.h"

#define ANTHROPIC_VERSION "2023-06-01"
#define FALLBACK_MAX_TOKENS 4096

/* ------------------------------------------------------------------ helpers */

/* prefix must be lower case; s is compared ASCII-case-insensitively */
static int prefix_ci(const char *s, const char *prefix)
{
    for (; *prefix; s++, prefix++) {
        char c = *s;
        if (c >= 'A' && c <= 'Z') {
            c = (char)(c - 'A' + 'a');
        }
        if (c != *prefix) {
            return 0;
        }
    }
    return 1;
}

static int is_one_of(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (!strcmp(s, *list)) {
            return 1;
        }
    }
    return 0;
}

static json_t *text_block(const char *text, size_t len)
{
    json_t *b = json_object();
    json_object_set_new(b, "type", json_string("text"));
    json_object_set_new(b, "text", json_stringn(text, len));
    return b;
}

static int bad_request(mn_error *err, const char *param, const char *msg)
{
    return mn_error_bad_param(err, param, "%s: %s", param, msg);
}

/* ------------------------------------------------------------------ request */

/* The Anthropic conversation being built.  Turns are created lazily, when a
 * block arrives for a role other than the last turn's, which is what merges
 * consecutive same-role turns (and user + tool messages) and never leaves an
 * empty turn behind. */
typedef struct {
    json_t *messages;
    json_t *system;
    json_t *turn;          /* content array of the last message, borrowed */
    int turn_user;
} conv;

static void conv_add(conv *c, int user, json_t *block)
{
    if (!c->turn || c->turn_user != user) {
        json_t *msg = json_object();
        c->turn = json_array();
        json_object_set_new(msg, "role", json_string(user ? "user" : "assistant"));
        json_object_set_new(msg, "content", c->turn);
        json_array_append_new(c->messages, msg);
        c->turn_user = user;
    }
    json_array_append_new(c->turn, block);
}

/* Text-only content (system, developer, tool, assistant) -> text blocks
 * appended to `into`.  Empty texts are dropped because Anthropic rejects
 * empty text blocks. */
static int text_content(json_t *content, const char *param, int assistant,
                        json_t *into, mn_error *err)
{
    char p[128];
    size_t j;
    json_t *part;

    if (!content || json_is_null(content)) {
        return 0;
    }
    if (json_is_string(content)) {
        if (json_string_length(content)) {
            json_array_append_new(into, text_block(json_string_value(content),
                                                   json_string_length(content)));
        }
        return 0;
    }
    snprintf(p, sizeof(p), "%s.content", param);
    if (!json_is_array(content)) {
        return bad_request(err, p, "must be a string or an array of text parts");
    }
    json_array_foreach(content, j, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = NULL;
        snprintf(p, sizeof(p), "%s.content[%zu]", param, j);
        if (type && !strcmp(type, "text")) {
            text = json_object_get(part, "text");
        }
        else if (type && assistant && !strcmp(type, "refusal")) {
            text = json_object_get(part, "refusal");
        }
        else {
            return bad_request(err, p, assistant
                               ? "only text and refusal parts are supported here"
                               : "only text parts are supported here");
        }
        if (!json_is_string(text)) {
            return bad_request(err, p, "text must be a string");
        }
        if (json_string_length(text)) {
            json_array_append_new(into, text_block(json_string_value(text),
                                                   json_string_length(text)));
        }
    }
    return 0;
}

/* A data: URL (RFC 2397: media type up to the first ';' or ',', ";base64"
 * right before the first ',', payload after it) or an http(s) URL -> an
 * image block, or a document block for PDFs. */
static int media_block(const char *url, const char *param, json_t **out, mn_error *err)
{
    static const char *const images[] = {
        "image/jpeg", "image/png", "image/gif", "image/webp", NULL
    };
    const char *data, *why;
    char mtype[64];
    json_t *source, *block;

    if (prefix_ci(url, "http://") || prefix_ci(url, "https://")) {
        *out = json_pack("{s:s,s:{s:s,s:s}}", "type", "image", "source",
                         "type", "url", "url", url);
        return 0;
    }
    if (!prefix_ci(url, "data:")) {
        return bad_request(err, param, "only data: and http(s) URLs are supported");
    }
    if (mn_data_url(url, mtype, sizeof(mtype), &data, &why)) {
        return bad_request(err, param, why);
    }
    if (!strcmp(mtype, "application/pdf")) {
        block = json_string("document");
    }
    else if (is_one_of(mtype, images)) {
        block = json_string("image");
    }
    else {
        return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                            "%s: media type \"%s\" is not supported (image/jpeg, image/png, "
                            "image/gif, image/webp or application/pdf)", param, mtype);
    }
    source = json_pack("{s:s,s:s,s:s}", "type", "base64", "media_type", mtype,
                       "data", data);
    *out = json_object();
    json_object_set_new(*out, "type", block);
    json_object_set_new(*out, "source", source);
    return 0;
}

/* messages[i].<member>: 0 when it is an array to walk, 1 when there is
 * nothing to map (absent or null), -1 with err when it is anything else. */
static int walkable(json_t *v, size_t i, const char *member, const char *expected,
                    mn_error *err)
{
    char p[128];

    if (!v || json_is_null(v)) {
        return 1;
    }
    if (json_is_array(v)) {
        return 0;
    }
    snprintf(p, sizeof(p), "messages[%zu].%s", i, member);
    return bad_request(err, p, expected);
}

static int user_content(conv *c, json_t *content, size_t i, mn_error *err)
{
    char p[128];
    size_t j;
    json_t *part;
    int rc;

    if (json_is_string(content)) {
        if (json_string_length(content)) {
            conv_add(c, 1, text_block(json_string_value(content), json_string_length(content)));
        }
        return 0;
    }
    rc = walkable(content, i, "content", "must be a string or an array of content parts", err);
    if (rc) {
        return rc > 0 ? 0 : -1;
    }
    json_array_foreach(content, j, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *block = NULL;
        snprintf(p, sizeof(p), "messages[%zu].content[%zu]", i, j);
        if (!type) {
            return bad_request(err, p, "content parts need a type");
        }
        if (!strcmp(type, "text")) {
            json_t *text = json_object_get(part, "text");
            if (!json_is_string(text)) {
                return bad_request(err, p, "text must be a string");
            }
            if (json_string_length(text)) {
                block = text_block(json_string_value(text), json_string_length(text));
            }
        }
        else if (!strcmp(type, "image_url")) {
            json_t *iu = json_object_get(part, "image_url");
            const char *url = json_is_string(iu) ? json_string_value(iu)
                            : json_string_value(json_object_get(iu, "url"));
            snprintf(p, sizeof(p), "messages[%zu].content[%zu].image_url", i, j);
            if (!url) {
                return bad_request(err, p, "image_url.url must be a string");
            }
            if (media_block(url, p, &block, err)) {
                return -1;
            }
        }
        else if (!strcmp(type, "file")) {
            const char *data = json_string_value(json_object_get(json_object_get(part, "file"),
                                                                 "file_data"));
            snprintf(p, sizeof(p), "messages[%zu].content[%zu].file", i, j);
            if (!data) {
                return bad_request(err, p, "file parts need file_data (a data: URL); "
                                   "file_id cannot be sent to this provider");
            }
            if (!prefix_ci(data, "data:")) {
                return bad_request(err, p, "file_data must be a data: URL");
            }
            if (media_block(data, p, &block, err)) {
                return -1;
            }
        }
        else if (!strcmp(type, "input_audio")) {
            continue;   /* policy drops these; a leftover has no Anthropic slot */
        }
        else {
            return mn_error_set(err, 400, "invalid_request_error", p, NULL,
                                "%s: content part type \"%s\" is not supported by this provider",
                                p, type);
        }
        if (block) {
            conv_add(c, 1, block);
        }
    }
    return 0;
}

static int tool_calls(conv *c, json_t *calls, size_t i, mn_error *err)
{
    char p[128];
    size_t k;
    json_t *tc;
    int rc = walkable(calls, i, "tool_calls", "must be an array", err);

    if (rc) {
        return rc > 0 ? 0 : -1;
    }
    json_array_foreach(calls, k, tc) {
        json_t *fn = json_object_get(tc, "function");
        const char *id = json_string_value(json_object_get(tc, "id"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        const char *type = json_string_value(json_object_get(tc, "type"));
        json_t *args = json_object_get(fn, "arguments");
        json_t *input;

        snprintf(p, sizeof(p), "messages[%zu].tool_calls[%zu]", i, k);
        if (type && strcmp(type, "function")) {
            return bad_request(err, p, "only function tool calls are supported");
        }
        if (!id) {
            snprintf(p, sizeof(p), "messages[%zu].tool_calls[%zu].id", i, k);
            return bad_request(err, p, "must be a string");
        }
        if (!name) {
            snprintf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.name", i, k);
            return bad_request(err, p, "must be a string");
        }
        snprintf(p, sizeof(p), "messages[%zu].tool_calls[%zu].function.arguments", i, k);
        if (!args || json_is_null(args) || (json_is_string(args) && !json_string_length(args))) {
            input = json_object();
        }
        else if (json_is_object(args)) {
            input = json_deep_copy(args);   /* lenient clients send the object itself */
        }
        else if (json_is_string(args)) {
            json_error_t jerr;
            input = json_loadb(json_string_value(args), json_string_length(args),
                               JSON_DECODE_ANY, &jerr);
            if (!input) {
                return mn_error_set(err, 400, "invalid_request_error", p, NULL,
                                    "messages[%zu] (%s): tool call %zu has arguments that are "
                                    "not valid JSON: %s", i, p, k, jerr.text);
            }
            if (!json_is_object(input)) {
                json_decref(input);
                return mn_error_set(err, 400, "invalid_request_error", p, NULL,
                                    "messages[%zu] (%s): tool call %zu has arguments that are "
                                    "not a JSON object", i, p, k);
            }
        }
        else {
            return bad_request(err, p, "must be a string of JSON");
        }
        conv_add(c, 0, json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id,
                                 "name", name, "input", input));
    }
    return 0;
}

/* Anthropic rejects a final assistant turn (a prefill) ending in whitespace. */
static void strip_prefill(json_t *messages)
{
    json_t *last = json_array_get(messages, json_array_size(messages) - 1);
    json_t *content = json_object_get(last, "content");
    const char *role = json_string_value(json_object_get(last, "role"));

    if (!role || strcmp(role, "assistant")) {
        return;
    }
    while (json_array_size(content)) {
        size_t n = json_array_size(content) - 1;
        json_t *block = json_array_get(content, n);
        json_t *text = json_object_get(block, "text");
        const char *type = json_string_value(json_object_get(block, "type"));
        const char *s;
        size_t len;

        if (!type || strcmp(type, "text") || !json_is_string(text)) {
            return;
        }
        s = json_string_value(text);
        len = json_string_length(text);
        while (len && (s[len - 1] == ' ' || s[len - 1] == '\t' || s[len - 1] == '\n'
                       || s[len - 1] == '\r' || s[len - 1] == '\f' || s[len - 1] == '\v')) {
            len--;
        }
        if (len) {
            json_object_set_new(block, "text", json_stringn(s, len));
            return;
        }
        json_array_remove(content, n);
    }
    json_array_remove(messages, json_array_size(messages) - 1);
}

static int convert_messages(json_t *msgs, conv *c, mn_error *err)
{
    size_t i;
    json_t *m;
    char p[128];

    if (!json_is_array(msgs)) {
        return bad_request(err, "messages", "must be an array");
    }
    json_array_foreach(msgs, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");

        snprintf(p, sizeof(p), "messages[%zu]", i);
        if (!role) {
            snprintf(p, sizeof(p), "messages[%zu].role", i);
            return bad_request(err, p, "must be a string");
        }
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            if (text_content(content, p, 0, c->system, err)) {
                return -1;
            }
        }
        else if (!strcmp(role, "user")) {
            if (user_content(c, content, i, err)) {
                return -1;
            }
        }
        else if (!strcmp(role, "assistant")) {
            json_t *blocks = json_array();
            size_t j;
            json_t *b;
            /* signed thinking first, as Anthropic gave it: it checks the bytes */
            if (mn_agent_thinking_to_anthropic(m, i, blocks, err)
                || text_content(content, p, 1, blocks, err)) {
                json_decref(blocks);
                return -1;
            }
            json_array_foreach(blocks, j, b) {
                conv_add(c, 0, json_incref(b));
            }
            json_decref(blocks);
            if (tool_calls(c, json_object_get(m, "tool_calls"), i, err)) {
                return -1;
            }
        }
        else if (!strcmp(role, "tool")) {
            const char *id = json_string_value(json_object_get(m, "tool_call_id"));
            json_t *result;
            if (!id) {
                snprintf(p, sizeof(p), "messages[%zu].tool_call_id", i);
                return bad_request(err, p, "must be a string");
            }
            result = json_pack("{s:s,s:s}", "type", "tool_result", "tool_use_id", id);
            if (json_is_string(content)) {
                json_object_set(result, "content", content);
            }
            else {
                json_t *blocks = json_array();
                if (text_content(content, p, 0, blocks, err)) {
                    json_decref(blocks);
                    json_decref(result);
                    return -1;
                }
                if (json_array_size(blocks)) {
                    json_object_set_new(result, "content", blocks);
                }
                else {
                    json_decref(blocks);
                }
            }
            conv_add(c, 1, result);
        }
        else {
            snprintf(p, sizeof(p), "messages[%zu].role", i);
            return mn_error_set(err, 400, "invalid_request_error", p, NULL,
                                "%s: role \"%s\" is not supported by this provider", p, role);
        }
    }
    strip_prefill(c->messages);
    if (!json_array_size(c->messages)) {
        return bad_request(err, "messages", "at least one user or assistant message with "
                           "content is required");
    }
    return 0;
}

static int convert_tools(json_t *tools, json_t *only, json_t **out, mn_error *err)
{
    size_t i;
    json_t *t;
    char p[64];

    *out = NULL;
    if (!tools || json_is_null(tools)) {
        return 0;
    }
    if (!json_is_array(tools)) {
        return bad_request(err, "tools", "must be an array");
    }
    *out = json_array();
    json_array_foreach(tools, i, t) {
        json_t *fn = json_object_get(t, "function");
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(fn, "name"));
        json_t *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters");
        json_t *tool;

        snprintf(p, sizeof(p), "tools[%zu]", i);
        if (!type || strcmp(type, "function") || !json_is_object(fn)) {
            json_decref(*out);
            *out = NULL;
            return bad_request(err, p, "only function tools are supported by this provider");
        }
        if (!name) {
            json_decref(*out);
            *out = NULL;
            snprintf(p, sizeof(p), "tools[%zu].function.name", i);
            return bad_request(err, p, "must be a string");
        }
        if (only && !json_object_get(only, name)) {
            continue;
        }
        tool = json_pack("{s:s}", "name", name);
        if (json_is_string(desc)) {
            json_object_set(tool, "description", desc);
        }
        if (json_is_object(params)) {
            json_object_set(tool, "input_schema", params);
        }
        else {
            json_object_set_new(tool, "input_schema",
                                json_pack("{s:s,s:{}}", "type", "object", "properties"));
        }
        json_array_append_new(*out, tool);
    }
    return 0;
}

/* tool_choice -> Anthropic; *only receives the names of allowed_tools (new
 * reference) so the caller can send just those tools. */
static int convert_tool_choice(json_t *tc, json_t **out, json_t **only, mn_error *err)
{
    const char *s = json_string_value(tc);
    const char *type;

    *out = NULL;
    *only = NULL;
    if (!tc || json_is_null(tc)) {
        return 0;
    }
    if (s) {
        if (!strcmp(s, "auto")) {
            *out = json_pack("{s:s}", "type", "auto");
        }
        else if (!strcmp(s, "required")) {
            *out = json_pack("{s:s}", "type", "any");
        }
        else if (!strcmp(s, "none")) {
            *out = json_pack("{s:s}", "type", "none");
        }
        else {
            return bad_request(err, "tool_choice", "must be none, auto, required or a named tool");
        }
        return 0;
    }
    type = json_string_value(json_object_get(tc, "type"));
    if (type && !strcmp(type, "function")) {
        const char *name = json_string_value(json_object_get(json_object_get(tc, "function"),
                                                             "name"));
        if (!name) {
            return bad_request(err, "tool_choice.function.name", "must be a string");
        }
        *out = json_pack("{s:s,s:s}", "type", "tool", "name", name);
        return 0;
    }
    if (type && !strcmp(type, "allowed_tools")) {
        json_t *at = json_object_get(tc, "allowed_tools");
        const char *mode = json_string_value(json_object_get(at, "mode"));
        json_t *list = json_object_get(at, "tools");
        size_t i;
        json_t *t;
        if (!mode || (strcmp(mode, "auto") && strcmp(mode, "required")) || !json_is_array(list)) {
            return bad_request(err, "tool_choice.allowed_tools",
                               "needs mode auto or required and a tools array");
        }
        *only = json_object();
        json_array_foreach(list, i, t) {
            const char *name = json_string_value(json_object_get(json_object_get(t, "function"),
                                                                 "name"));
            if (name) {
                json_object_set_new(*only, name, json_true());
            }
        }
        *out = json_pack("{s:s}", "type", strcmp(mode, "auto") ? "any" : "auto");
        return 0;
    }
    return bad_request(err, "tool_choice", "this tool_choice is not supported by this provider");
}

static int convert_stop(json_t *stop, json_t **out, mn_error *err)
{
    size_t i;
    json_t *s;

    *out = NULL;
    if (!stop || json_is_null(stop)) {
        return 0;
    }
    if (!json_is_string(stop) && !json_is_array(stop)) {
        return bad_request(err, "stop", "must be a string or an array of strings");
    }
    *out = json_array();
    if (json_is_string(stop)) {
        json_array_append(*out, stop);
    }
    else {
        json_array_foreach(stop, i, s) {
            if (!json_is_string(s)) {
                char p[32];
                json_decref(*out);
                *out = NULL;
                snprintf(p, sizeof(p), "stop[%zu]", i);
                return bad_request(err, p, "must be a string");
            }
            json_array_append(*out, s);
        }
    }
    /* Anthropic rejects whitespace-only stop sequences */
    for (i = json_array_size(*out); i-- > 0;) {
        const char *t = json_string_value(json_array_get(*out, i));
        if (!t[strspn(t, " \t\r\n\f\v")]) {
            json_array_remove(*out, i);
        }
    }
    if (!json_array_size(*out)) {
        json_decref(*out);
        *out = NULL;
    }
    return 0;
}

/* Members handled below (mapped or consumed), and OpenAI members with no
 * Anthropic analogue.  Anything else passes through. */
static const char *const handled_keys[] = {
    "model", "messages", "max_tokens", "max_completion_tokens", "stop", "temperature",
    "top_p", "user", "tools", "tool_choice", "parallel_tool_calls", "response_format",
    "reasoning_effort", "stream", "stream_options", "service_tier", NULL
};
static const char *const dropped_keys[] = {
    "n", "seed", "frequency_penalty", "presence_penalty", "logit_bias", "logprobs",
    "top_logprobs", "store", "prediction", "prompt_cache_key", "prompt_cache_retention",
    "safety_identifier", "verbosity", "web_search_options", "modalities", "audio",
    "functions", "function_call", "metadata", NULL
};

/* max_completion_tokens is OpenAI's current name, max_tokens the old one. */
static int max_tokens_for(mn_wire_ctx *ctx, json_t *req, long *max_tokens, mn_error *err)
{
    const char *key = "max_completion_tokens";
    json_t *v = json_object_get(req, key);

    if (!v || json_is_null(v)) {
        key = "max_tokens";
        v = json_object_get(req, key);
    }
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            return bad_request(err, key, "must be a positive integer");
        }
        *max_tokens = (long)json_integer_value(v);
    }
    else {
        /* Anthropic requires max_tokens; OpenAI clients rarely send it */
        *max_tokens = ctx->provider && ctx->provider->max_tokens > 0
                    ? ctx->provider->max_tokens : FALLBACK_MAX_TOKENS;
    }
    return 0;
}

/* Joins name to what this target had to leave out (maniac-dropped). */
static void note_dropped(mn_wire_ctx *ctx, const char *name)
{
    ctx->dropped = ctx->dropped ? apr_pstrcat(ctx->pool, ctx->dropped, ",", name, NULL) : name;
}

static int has_value(json_t *req, const char *key)
{
    json_t *v = json_object_get(req, key);
    return v && !json_is_null(v);
}

/* OpenAI SDKs and frameworks send temperature and top_p by habit; the
 * newest Claude models answer either with a 400 (4.7 and later take no
 * sampling parameters at all, 4.1 to 4.6 only one of the two), so what the
 * model refuses is left out and noted instead of failing the turn. */
static void set_sampling(mn_wire_ctx *ctx, json_t *req, json_t *body, const mn_an_caps *caps)
{
    json_t *v = json_object_get(req, "temperature");
    int no_top_p = caps->no_sampling || (caps->one_sampler && has_value(req, "temperature"));

    if (caps->no_sampling && has_value(req, "temperature")) {
        note_dropped(ctx, "temperature");
    }
    else if (json_is_number(v) && json_number_value(v) > 1.0) {
        json_object_set_new(body, "temperature", json_real(1.0));
    }
    else if (v && !json_is_null(v)) {
        json_object_set(body, "temperature", v);
    }
    if (!has_value(req, "top_p")) {
        return;
    }
    if (no_top_p) {
        note_dropped(ctx, "top_p");
    }
    else {
        json_object_set(body, "top_p", json_object_get(req, "top_p"));
    }
}

/* tools and tool_choice into body; tool_choice may be created (parallel
 * tool calls off) and is released by the caller. */
static void set_tools(json_t *req, json_t *body, json_t *tools, json_t **tool_choice)
{
    if (tools && json_array_size(tools)) {
        json_object_set(body, "tools", tools);
    }
    if (json_is_false(json_object_get(req, "parallel_tool_calls"))) {
        if (!*tool_choice && json_array_size(tools)) {
            *tool_choice = json_pack("{s:s}", "type", "auto");
        }
        if (*tool_choice && strcmp(json_string_value(json_object_get(*tool_choice, "type")),
                                   "none")) {
            json_object_set_new(*tool_choice, "disable_parallel_tool_use", json_true());
        }
    }
    if (*tool_choice) {
        json_object_set(body, "tool_choice", *tool_choice);
    }
}

/* Members Anthropic has and OpenAI lacks pass through, unless we built
 * them already. */
static void pass_through(json_t *req, json_t *body)
{
    const char *key;
    json_t *v;

    json_object_foreach(req, key, v) {
        if (is_one_of(key, handled_keys) || is_one_of(key, dropped_keys)
            || json_object_get(body, key)) {
            continue;
        }
        json_object_set(body, key, v);
    }
}

/* Anthropic refuses a tool-use turn without its signed thinking while
 * thinking is on: a client that did not keep the blocks gets an answer
 * without thinking (noted in maniac-dropped) rather than that 400. */
static void drop_thinking_without_blocks(mn_wire_ctx *ctx, json_t *body, json_t *msgs)
{
    const char *tt = json_string_value(json_object_get(json_object_get(body, "thinking"), "type"));
    if (tt && strcmp(tt, "disabled") && mn_agent_thinking_missing(msgs)) {
        json_object_del(body, "thinking");
        note_dropped(ctx, "thinking");
    }
}

/* A client-supplied thinking wins over reasoning_effort, its effort level
 * included: the client chose the form itself. */
static void set_reasoning(json_t *req, json_t *body, const mn_an_reasoning_out *r, json_t **oc)
{
    if ((!r->adaptive && !r->budget && !r->effort) || json_object_get(req, "thinking")) {
        return;
    }
    if (r->adaptive) {
        json_object_set_new(body, "thinking", json_pack("{s:s}", "type", "adaptive"));
    }
    else if (r->budget) {
        json_object_set_new(body, "thinking", json_pack("{s:s,s:I}", "type", "enabled",
                                                        "budget_tokens",
                                                        (json_int_t)r->budget));
    }
    if (r->effort) {
        mn_an_oc_set(oc, "effort", json_string(r->effort));
    }
}

/* What we mapped into output_config, under the members of a client-supplied
 * output_config (Anthropic's own field: the client's word wins); without
 * mapped members the client's passes through unchanged. */
static void set_output_config(json_t *req, json_t *body, json_t *oc)
{
    json_t *client;

    if (!oc) {
        return;
    }
    client = json_object_get(req, "output_config");
    if (json_is_object(client)) {
        json_object_update(oc, client);
    }
    json_object_set(body, "output_config", oc);
}

/* Also for a client-supplied thinking: the API rejects budget >= max_tokens. */
static int fit_thinking(json_t *body, long max_tokens, mn_error *err)
{
    json_t *v = json_object_get(body, "thinking");

    if (json_is_object(v) && json_is_integer(json_object_get(v, "budget_tokens"))) {
        const char *tt = json_string_value(json_object_get(v, "type"));
        json_int_t b = json_integer_value(json_object_get(v, "budget_tokens"));
        if (tt && !strcmp(tt, "enabled") && max_tokens <= b) {
            /* budget + max_tokens must not wrap into a negative max_tokens */
            if (b > LONG_MAX - max_tokens) {
                return bad_request(err, "thinking.budget_tokens", "is too large");
            }
            json_object_set_new(body, "max_tokens", json_integer((json_int_t)(b + max_tokens)));
        }
    }
    return 0;
}

static int build_body(mn_wire_ctx *ctx, json_t *req, json_t *body, mn_error *err)
{
    conv c;
    json_t *v, *tools = NULL, *tool_choice = NULL, *only = NULL, *stop = NULL;
    /* ids the gateway encoded for Gemini go back to the plain call id */
    json_t *plain = mn_agent_plain_messages(ctx->pool, json_object_get(req, "messages"));
    json_t *msgs = plain ? plain : json_object_get(req, "messages");
    json_t *oc = NULL;
    json_t *effort = json_object_get(req, "reasoning_effort");
    json_t *rf = json_object_get(req, "response_format");
    long max_tokens = 0;
    mn_an_caps caps;
    mn_an_reasoning_out r;
    int rc = -1;

    /* the model table is read only for the fields that depend on it */
    memset(&caps, 0, sizeof(caps));
    if (effort || rf || has_value(req, "temperature") || has_value(req, "top_p")
        || has_value(req, "top_k")) {
        mn_an_model_caps(ctx->model, ctx->provider ? ctx->provider->thinking_form : 0, &caps);
    }

    c.messages = json_array();
    c.system = json_array();
    c.turn = NULL;
    c.turn_user = 0;

    json_object_set_new(body, "model", json_string(ctx->model ? ctx->model : ""));
    if (max_tokens_for(ctx, req, &max_tokens, err)
        || convert_messages(msgs, &c, err)
        || mn_an_response_format(&caps, rf, c.system, &oc, err)
        || mn_an_reasoning(&caps, effort, &r, err)
        || convert_tool_choice(json_object_get(req, "tool_choice"), &tool_choice, &only, err)
        || convert_tools(json_object_get(req, "tools"), only, &tools, err)
        || convert_stop(json_object_get(req, "stop"), &stop, err)) {
        goto done;
    }

    json_object_set_new(body, "max_tokens", json_integer(max_tokens));
    if (json_array_size(c.system)) {
        json_object_set(body, "system", c.system);
    }
    json_object_set(body, "messages", c.messages);
    set_sampling(ctx, req, body, &caps);
    if (stop) {
        json_object_set_new(body, "stop_sequences", stop);
        stop = NULL;
    }
    v = json_object_get(req, "user");
    if (json_is_string(v) && json_string_length(v)) {
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v));
    }
    set_tools(req, body, tools, &tool_choice);
    v = json_object_get(req, "service_tier");
    if (json_is_string(v) && (!strcmp(json_string_value(v), "auto")
                              || !strcmp(json_string_value(v), "standard_only"))) {
        json_object_set(body, "service_tier", v);
    }
    set_reasoning(req, body, &r, &oc);
    set_output_config(req, body, oc);
    if (ctx->stream) {
        json_object_set_new(body, "stream", json_true());
    }
    pass_through(req, body);
    if (caps.no_sampling && json_object_get(body, "top_k")) {
        json_object_del(body, "top_k");
        note_dropped(ctx, "top_k");
    }
    drop_thinking_without_blocks(ctx, body, msgs);
    rc = fit_thinking(body, max_tokens, err);

done:
    json_decref(plain);
    json_decref(oc);
    json_decref(c.messages);
    json_decref(c.system);
    json_decref(tools);
    json_decref(tool_choice);
    json_decref(only);
    json_decref(stop);
    return rc;
}

static int anthropic_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out,
                            mn_error *err)
{
    json_t *body = json_object();
    const char *beta;
    char *dump;

    if (!json_is_object(req)) {
        json_decref(body);
        return bad_request(err, "messages", "the request body must be a JSON object");
    }
    if (build_body(ctx, req, body, err)) {
        json_decref(body);
        return -1;
    }
    dump = mn_wire_dump(ctx->pool, body, &out->body_len);
    json_decref(body);
    if (!dump) {
        return mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
    }
    out->body = dump;
    out->path = "/messages";
    out->headers = apr_table_make(ctx->pool, 6);
    apr_table_setn(out->headers, "Content-Type", "application/json");
    apr_table_setn(out->headers, "Accept",
                   ctx->stream ? "text/event-stream" : "application/json");
    apr_table_setn(out->headers, "anthropic-version", ANTHROPIC_VERSION);
    if (ctx->provider && ctx->provider->key) {
        apr_table_setn(out->headers, "x-api-key", ctx->provider->key);
    }
    beta = ctx->client_headers ? apr_table_get(ctx->client_headers, "anthropic-beta") : NULL;
    if (beta && *beta) {
        apr_table_set(out->headers, "anthropic-beta", beta);
    }
    return 0;
}

const mn_wire mn_wire_anthropic = {
    .name = "anthropic",
    .encode_request = anthropic_encode,
    .decode_response = mn_an_decode_response,
    .decode_error = mn_an_decode_error,
    .stream_create = mn_an_stream_create,
    .stream_feed = mn_an_stream_feed,
    .stream_end = mn_an_stream_end,
    .stream_usage = mn_stream_base_usage,
    .stream_error = mn_stream_base_error,
    .stream_destroy = mn_an_stream_destroy,
    .decode_response_bytes = mn_an_decode_response_bytes,
};

