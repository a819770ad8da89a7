/* mn_wire_anthropic: Anthropic Messages API upstreams (POST {base}/messages,
 * anthropic-version 2023-06-01).
 *
 * Requests are rebuilt, not edited: every OpenAI member is either mapped,
 * dropped because Anthropic has no analogue, or (when we do not know it)
 * passed through unchanged so Anthropic-only extras such as top_k or thinking
 * still reach the upstream.  Answers, errors and SSE events are translated
 * into OpenAI shapes following wire-formats.md §4 (canonical choices).
 *
 * Mapping choices where the reference leaves options open:
 *
 * - response_format: the 2023-06-01 API has no structured-output switch
 *   (output_config.format is too new to rely on), tool forcing changes the
 *   finish_reason and the streamed shape the client sees and collides with
 *   the client's own tools, and dropping it silently loses the client's
 *   intent.  So the request is expressed as one more system text block, after
 *   the hoisted system/developer texts: json_object asks for a single JSON
 *   object and nothing else; json_schema asks for JSON matching the given
 *   schema (embedded as compact JSON; without a schema it degrades to the
 *   json_object wording); type text adds nothing.  Other types are a 400.
 * - reasoning_effort: thinking {type:"enabled", budget_tokens}: minimal and
 *   low 1024 (Anthropic's minimum budget), medium 2048, high 4096, xhigh
 *   8192, max 16384; none sends no thinking.  A client-supplied `thinking`
 *   wins over reasoning_effort.  Anthropic requires budget_tokens <
 *   max_tokens and counts thinking against max_tokens, so when max_tokens
 *   is not above the budget it becomes budget + max_tokens: the client keeps
 *   the answer length it asked for on top of the thinking.
 * - temperature: Anthropic accepts 0..1 where OpenAI accepts 0..2; values
 *   above 1 are clamped to 1 (as Portkey does) rather than sent to a certain
 *   upstream 400 -- the most random setting either API offers.
 * - finish_reason: end_turn, stop_sequence, pause_turn -> stop; max_tokens,
 *   model_context_window_exceeded -> length; tool_use -> tool_calls;
 *   refusal -> content_filter; anything else or null -> stop (an unknown
 *   reason must not break clients that switch on the OpenAI enum).
 * - tool_choice allowed_tools: only the listed tools are sent, with
 *   {type:auto} or {type:any} for mode auto/required.  parallel_tool_calls
 *   false without a tool_choice becomes {type:auto,
 *   disable_parallel_tool_use:true}, but only when tools are sent (a
 *   tool_choice without tools is rejected upstream) and never on {type:none}
 *   (which has no such member).
 * - refusal parts of earlier assistant turns are replayed as text; thinking
 *   in a non-streaming answer becomes message.reasoning_content only when the
 *   provider has reasoning_content set, as in streams.
 * - Mid-stream upstream errors keep Anthropic's error.type verbatim with
 *   status 502: the client already has its 200, the status only tells the
 *   glue that the upstream, not the client, failed. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_jscan.h"
#include "mn_wire.h"

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
    return mn_error_set(err, 400, "invalid_request_error", param, NULL, "%s: %s", param, msg);
}

/* Anthropic usage, kept apart because OpenAI folds the cache counters into
 * prompt_tokens while clients still want cached_tokens on its own. */
typedef struct {
    long in, cache_creation, cache_read, out, thinking;
    int have, have_thinking;
} a_usage;

static void set_long(long *dst, json_t *v)
{
    if (json_is_integer(v)) {
        *dst = (long)json_integer_value(v);
    }
}

/* Overwrites only what the object carries: message_delta repeats the input
 * counters (newer API) or not at all (older), and null means "unchanged". */
static void a_usage_merge(a_usage *u, json_t *usage)
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
        u->thinking = (long)json_integer_value(details);
        u->have_thinking = 1;
    }
}

static void a_usage_to_mn(const a_usage *u, mn_usage *m)
{
    m->have = u->have;
    m->prompt_tokens = u->in + u->cache_creation + u->cache_read;
    m->completion_tokens = u->out;
    m->total_tokens = m->prompt_tokens + m->completion_tokens;
}

static json_t *a_usage_to_openai(const a_usage *u)
{
    mn_usage m;
    json_t *o;
    a_usage_to_mn(u, &m);
    o = mn_usage_to_openai(&m);
    json_object_set_new(o, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)u->cache_read));
    if (u->have_thinking) {
        json_object_set_new(o, "completion_tokens_details",
                            json_pack("{s:I}", "reasoning_tokens", (json_int_t)u->thinking));
    }
    return o;
}

static const char *finish_reason_for(json_t *stop_reason)
{
    const char *s = json_string_value(stop_reason);
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
    return "stop";
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

static int user_content(conv *c, json_t *content, size_t i, mn_error *err)
{
    char p[128];
    size_t j;
    json_t *part;

    if (!content || json_is_null(content)) {
        return 0;
    }
    if (json_is_string(content)) {
        if (json_string_length(content)) {
            conv_add(c, 1, text_block(json_string_value(content), json_string_length(content)));
        }
        return 0;
    }
    if (!json_is_array(content)) {
        snprintf(p, sizeof(p), "messages[%zu].content", i);
        return bad_request(err, p, "must be a string or an array of content parts");
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

    if (!calls || json_is_null(calls)) {
        return 0;
    }
    if (!json_is_array(calls)) {
        snprintf(p, sizeof(p), "messages[%zu].tool_calls", i);
        return bad_request(err, p, "must be an array");
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
            if (text_content(content, p, 1, blocks, err)) {
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

static int response_format_text(json_t *rf, json_t *system, mn_error *err)
{
    static const char only_json[] =
        "Respond with a single valid JSON object and nothing else: no prose before or after "
        "it and no Markdown code fences.";
    const char *type;
    json_t *schema;
    char *dump, *text;
    size_t len;

    if (!rf || json_is_null(rf)) {
        return 0;
    }
    type = json_string_value(json_object_get(rf, "type"));
    if (!type) {
        return bad_request(err, "response_format.type", "must be a string");
    }
    if (!strcmp(type, "text")) {
        return 0;
    }
    if (!strcmp(type, "json_object")) {
        json_array_append_new(system, text_block(only_json, sizeof(only_json) - 1));
        return 0;
    }
    if (strcmp(type, "json_schema")) {
        return bad_request(err, "response_format.type",
                           "must be text, json_object or json_schema");
    }
    schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    if (!json_is_object(schema)) {
        json_array_append_new(system, text_block(only_json, sizeof(only_json) - 1));
        return 0;
    }
    dump = json_dumps(schema, JSON_COMPACT);
    if (!dump) {
        return bad_request(err, "response_format.json_schema.schema", "cannot be serialised");
    }
    len = strlen(dump) + 256;
    text = malloc(len);
    if (!text) {
        free(dump);
        return mn_error_set(err, 500, NULL, NULL, NULL, "out of memory");
    }
    snprintf(text, len, "Respond with a single valid JSON value that conforms to the following "
             "JSON Schema, and nothing else: no prose before or after it and no Markdown code "
             "fences.\nJSON Schema: %s", dump);
    json_array_append_new(system, text_block(text, strlen(text)));
    free(text);
    free(dump);
    return 0;
}

static int thinking_budget(json_t *effort, long *budget, mn_error *err)
{
    const char *e = json_string_value(effort);

    *budget = 0;
    if (!effort || json_is_null(effort)) {
        return 0;
    }
    if (!e) {
        return bad_request(err, "reasoning_effort", "must be a string");
    }
    if (!strcmp(e, "none")) {
        *budget = 0;
    }
    else if (!strcmp(e, "minimal") || !strcmp(e, "low")) {
        *budget = 1024;
    }
    else if (!strcmp(e, "medium")) {
        *budget = 2048;
    }
    else if (!strcmp(e, "high")) {
        *budget = 4096;
    }
    else if (!strcmp(e, "xhigh")) {
        *budget = 8192;
    }
    else if (!strcmp(e, "max")) {
        *budget = 16384;
    }
    else {
        return bad_request(err, "reasoning_effort",
                           "must be none, minimal, low, medium, high, xhigh or max");
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

static int build_body(mn_wire_ctx *ctx, json_t *req, json_t *body, mn_error *err)
{
    conv c;
    json_t *v, *tools = NULL, *tool_choice = NULL, *only = NULL, *stop = NULL;
    long max_tokens, budget;
    const char *key;
    int rc = -1;

    c.messages = json_array();
    c.system = json_array();
    c.turn = NULL;
    c.turn_user = 0;

    json_object_set_new(body, "model", json_string(ctx->model ? ctx->model : ""));

    /* max_completion_tokens is OpenAI's current name, max_tokens the old one */
    key = "max_completion_tokens";
    v = json_object_get(req, key);
    if (!v || json_is_null(v)) {
        key = "max_tokens";
        v = json_object_get(req, key);
    }
    if (v && !json_is_null(v)) {
        if (!json_is_integer(v) || json_integer_value(v) < 1) {
            bad_request(err, key, "must be a positive integer");
            goto done;
        }
        max_tokens = (long)json_integer_value(v);
    }
    else {
        /* Anthropic requires max_tokens; OpenAI clients rarely send it */
        max_tokens = ctx->provider && ctx->provider->max_tokens > 0
                   ? ctx->provider->max_tokens : FALLBACK_MAX_TOKENS;
    }

    if (convert_messages(json_object_get(req, "messages"), &c, err)
        || response_format_text(json_object_get(req, "response_format"), c.system, err)
        || thinking_budget(json_object_get(req, "reasoning_effort"), &budget, err)
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

    v = json_object_get(req, "temperature");
    if (json_is_number(v) && json_number_value(v) > 1.0) {
        json_object_set_new(body, "temperature", json_real(1.0));
    }
    else if (v && !json_is_null(v)) {
        json_object_set(body, "temperature", v);
    }
    v = json_object_get(req, "top_p");
    if (v && !json_is_null(v)) {
        json_object_set(body, "top_p", v);
    }
    if (stop) {
        json_object_set_new(body, "stop_sequences", stop);
        stop = NULL;
    }
    v = json_object_get(req, "user");
    if (json_is_string(v) && json_string_length(v)) {
        json_object_set_new(body, "metadata", json_pack("{s:O}", "user_id", v));
    }
    if (tools && json_array_size(tools)) {
        json_object_set(body, "tools", tools);
    }
    if (json_is_false(json_object_get(req, "parallel_tool_calls"))) {
        if (!tool_choice && json_array_size(tools)) {
            tool_choice = json_pack("{s:s}", "type", "auto");
        }
        if (tool_choice && strcmp(json_string_value(json_object_get(tool_choice, "type")),
                                  "none")) {
            json_object_set_new(tool_choice, "disable_parallel_tool_use", json_true());
        }
    }
    if (tool_choice) {
        json_object_set(body, "tool_choice", tool_choice);
    }
    v = json_object_get(req, "service_tier");
    if (json_is_string(v) && (!strcmp(json_string_value(v), "auto")
                              || !strcmp(json_string_value(v), "standard_only"))) {
        json_object_set(body, "service_tier", v);
    }
    if (budget && !json_object_get(req, "thinking")) {
        json_object_set_new(body, "thinking", json_pack("{s:s,s:I}", "type", "enabled",
                                                        "budget_tokens", (json_int_t)budget));
    }
    if (ctx->stream) {
        json_object_set_new(body, "stream", json_true());
    }

    json_object_foreach(req, key, v) {
        if (is_one_of(key, handled_keys) || is_one_of(key, dropped_keys)
            || json_object_get(body, key)) {
            continue;
        }
        json_object_set(body, key, v);
    }

    /* also for a client-supplied thinking: the API rejects budget >= max_tokens */
    v = json_object_get(body, "thinking");
    if (json_is_object(v) && json_is_integer(json_object_get(v, "budget_tokens"))) {
        const char *tt = json_string_value(json_object_get(v, "type"));
        long b = (long)json_integer_value(json_object_get(v, "budget_tokens"));
        if (tt && !strcmp(tt, "enabled") && max_tokens <= b) {
            json_object_set_new(body, "max_tokens", json_integer(b + max_tokens));
        }
    }
    rc = 0;

done:
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
    dump = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (!dump) {
        return mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
    }
    out->body_len = strlen(dump);
    out->body = apr_pmemdup(ctx->pool, dump, out->body_len + 1);
    free(dump);
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

/* ----------------------------------------------------------------- response */

static int anthropic_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                                     json_t **out, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *content = json_object_get(root, "content");
    const char *type = json_string_value(json_object_get(root, "type"));
    json_t *block, *msg, *calls = NULL, *choice, *res;
    mn_buf text, thinking;
    int have_text = 0, have_thinking = 0;
    a_usage u;
    size_t i;

    if (!json_is_object(root) || !type || strcmp(type, "message") || !json_is_array(content)) {
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

    mn_buf_init(&text);
    mn_buf_init(&thinking);
    json_array_foreach(content, i, block) {
        const char *bt = json_string_value(json_object_get(block, "type"));
        json_t *s;
        if (!bt) {
            continue;
        }
        if (!strcmp(bt, "text") && json_is_string(s = json_object_get(block, "text"))) {
            mn_buf_append(&text, json_string_value(s), json_string_length(s));
            have_text = 1;
        }
        else if (!strcmp(bt, "thinking")
                 && json_is_string(s = json_object_get(block, "thinking"))) {
            mn_buf_append(&thinking, json_string_value(s), json_string_length(s));
            have_thinking = 1;
        }
        else if (!strcmp(bt, "tool_use")) {
            json_t *input = json_object_get(block, "input");
            char *args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
            json_t *call = json_pack("{s:O*,s:s,s:{s:O*,s:s}}",
                                     "id", json_object_get(block, "id"),
                                     "type", "function",
                                     "function", "name", json_object_get(block, "name"),
                                     "arguments", args ? args : "{}");
            free(args);
            if (!calls) {
                calls = json_array();
            }
            json_array_append_new(calls, call);
        }
        /* server-tool blocks, redacted thinking, citations: no OpenAI slot */
    }

    msg = json_object();
    json_object_set_new(msg, "role", json_string("assistant"));
    json_object_set_new(msg, "content", have_text ? json_stringn(text.data, text.len)
                                                  : json_null());
    json_object_set_new(msg, "refusal", json_null());
    if (have_thinking && ctx->provider && ctx->provider->reasoning_content) {
        json_object_set_new(msg, "reasoning_content", json_stringn(thinking.data, thinking.len));
    }
    if (calls) {
        json_object_set_new(msg, "tool_calls", calls);
    }
    mn_buf_free(&text);
    mn_buf_free(&thinking);

    choice = json_object();
    json_object_set_new(choice, "index", json_integer(0));
    json_object_set_new(choice, "message", msg);
    json_object_set_new(choice, "logprobs", json_null());
    json_object_set_new(choice, "finish_reason",
                        json_string(finish_reason_for(json_object_get(root, "stop_reason"))));

    memset(&u, 0, sizeof(u));
    a_usage_merge(&u, json_object_get(root, "usage"));
    a_usage_to_mn(&u, usage);

    res = json_object();
    json_object_set(res, "id", json_object_get(root, "id"));
    json_object_set_new(res, "object", json_string("chat.completion"));
    json_object_set_new(res, "created", json_integer(ctx->created));
    json_object_set(res, "model", json_object_get(root, "model"));
    json_object_set_new(res, "choices", json_pack("[o]", choice));
    json_object_set_new(res, "usage", a_usage_to_openai(&u));
    json_object_set_new(res, "provider", json_string(ctx->provider_name));
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
    if (retry_after) {
        apr_cpystrn(err->retry_after, retry_after, sizeof(err->retry_after));
    }
}

/* ---------------------------------------------------------------- streaming */

/* Anthropic streams blocks one after another, so at most one is open at a
 * time; a few slots tolerate overlap without letting state grow with the
 * stream. */
#define MAX_OPEN_BLOCKS 8

enum { BLOCK_FREE = 0, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING, BLOCK_OTHER };

typedef struct {
    int kind;
    json_int_t index;        /* Anthropic content-block index */
    int tool;                /* OpenAI tool-call index (BLOCK_TOOL) */
    int args_seen;           /* some argument text was sent for it */
} open_block;

/* What the text-delta hot path looks at (text_delta_fast). */
enum { FA_ALL, FA_TYPE, FA_INDEX, FA_DELTA_ALL, FA_DTYPE, FA_TEXT, FA_N };
static const char *const fast_texts[FA_N] = { "*", "type", "index", "delta.*", "delta.type",
                                             "delta.text" };

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    mn_jpath fast[FA_N];        /* compiled once per stream */
    json_t *id;              /* message id and model from message_start */
    json_t *model;
    int started;             /* message_start seen (role chunk sent) */
    int finished;            /* finish chunk sent */
    int ntools;              /* tool calls announced so far */
    open_block blocks[MAX_OPEN_BLOCKS];
    a_usage au;
    mn_delta_template content_tmpl;   /* text deltas, once id/model are known */
    int content_tmpl_state;           /* 0 not yet, 1 ready, -1 unusable */
};

static mn_stream *anthropic_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    int i;
    if (st) {
        st->b.ctx = ctx;
        for (i = 0; i < FA_N; i++) {
            mn_jpath_compile(&st->fast[i], fast_texts[i]);
        }
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

static mn_stream_status fail_bad(mn_stream *st, mn_sink *out, const char *what)
{
    mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                 "upstream sent an invalid stream: %s", what);
    return fail_with(st, out);
}

/* A chunk with an empty delta; *delta and *choice are borrowed. */
static json_t *chunk_new(mn_stream *st, json_t **delta, json_t **choice)
{
    json_t *c = json_object();
    *delta = json_object();
    *choice = json_object();
    json_object_set(c, "id", st->id);
    json_object_set_new(c, "object", json_string("chat.completion.chunk"));
    json_object_set_new(c, "created", json_integer(st->b.ctx->created));
    json_object_set(c, "model", st->model);
    json_object_set_new(*choice, "index", json_integer(0));
    json_object_set_new(*choice, "delta", *delta);
    json_object_set_new(*choice, "logprobs", json_null());
    json_object_set_new(*choice, "finish_reason", json_null());
    json_object_set_new(c, "choices", json_pack("[O]", *choice));
    json_decref(*choice);
    if (st->b.ctx->include_usage) {
        json_object_set_new(c, "usage", json_null());
    }
    json_object_set_new(c, "provider", json_string(st->b.ctx->provider_name));
    return c;
}

static void emit(mn_sink *out, json_t *chunk)
{
    mn_sse_write_json(out, chunk);
    json_decref(chunk);
}

/* delta.<member> = text, skipped when empty */
static void emit_text(mn_stream *st, mn_sink *out, const char *member, json_t *text)
{
    json_t *delta, *choice, *chunk;
    if (!json_is_string(text) || !json_string_length(text)) {
        return;
    }
    if (!strcmp(member, "content") && st->content_tmpl_state == 0 && st->id && st->model) {
        chunk = chunk_new(st, &delta, &choice);
        json_object_set_new(delta, member, json_string(""));
        st->content_tmpl_state = mn_delta_template_init(&st->content_tmpl, chunk, member) ? -1 : 1;
        json_decref(chunk);
    }
    if (!strcmp(member, "content") && st->content_tmpl_state == 1) {
        mn_delta_template_write(&st->content_tmpl, text, out);
        return;
    }
    chunk = chunk_new(st, &delta, &choice);
    json_object_set(delta, member, text);
    emit(out, chunk);
}

static void emit_tool_args(mn_stream *st, mn_sink *out, int tool, json_t *args)
{
    json_t *delta, *choice, *chunk = chunk_new(st, &delta, &choice);
    json_object_set_new(delta, "tool_calls",
                        json_pack("[{s:i,s:{s:O}}]", "index", tool, "function",
                                  "arguments", args));
    emit(out, chunk);
}

static void emit_finish(mn_stream *st, mn_sink *out, const char *reason)
{
    json_t *delta, *choice, *chunk = chunk_new(st, &delta, &choice);
    json_object_set_new(choice, "finish_reason", json_string(reason));
    emit(out, chunk);
    st->finished = 1;
}

static open_block *block_find(mn_stream *st, json_t *index)
{
    int i;
    if (!json_is_integer(index)) {
        return NULL;
    }
    for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind != BLOCK_FREE && st->blocks[i].index == json_integer_value(index)) {
            return &st->blocks[i];
        }
    }
    return NULL;
}

/* OpenAI clients JSON.parse the concatenated arguments: a call whose input
 * never streamed any text must still parse, so it gets "{}". */
static void close_tool(mn_stream *st, mn_sink *out, open_block *b)
{
    if (b->kind == BLOCK_TOOL && !b->args_seen) {
        json_t *empty = json_string("{}");
        emit_tool_args(st, out, b->tool, empty);
        json_decref(empty);
    }
    b->kind = BLOCK_FREE;
}

static mn_stream_status on_message_start(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *msg = json_object_get(ev, "message");
    json_t *id = json_object_get(msg, "id"), *model = json_object_get(msg, "model");
    json_t *delta, *choice, *chunk;

    if (st->started) {
        return st->b.status;     /* a repeated start must not repeat the role chunk */
    }
    if (!json_is_object(msg)) {
        return fail_bad(st, out, "message_start without a message");
    }
    st->id = json_is_string(id) ? json_incref(id) : json_string("");
    st->model = json_is_string(model) ? json_incref(model) : json_string("");
    st->started = 1;
    a_usage_merge(&st->au, json_object_get(msg, "usage"));
    a_usage_to_mn(&st->au, &st->b.usage);
    chunk = chunk_new(st, &delta, &choice);
    json_object_set_new(delta, "role", json_string("assistant"));
    json_object_set_new(delta, "content", json_string(""));
    emit(out, chunk);
    return st->b.status;
}

static mn_stream_status on_block_start(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *index = json_object_get(ev, "index");
    json_t *cb = json_object_get(ev, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    open_block *b = block_find(st, index);
    int i;

    if (!json_is_integer(index) || !type) {
        return fail_bad(st, out, "content_block_start without index or type");
    }
    for (i = 0; !b && i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind == BLOCK_FREE) {
            b = &st->blocks[i];
        }
    }
    if (!b) {
        return fail_bad(st, out, "too many content blocks open at once");
    }
    b->index = json_integer_value(index);
    b->args_seen = 0;
    if (!strcmp(type, "text")) {
        b->kind = BLOCK_TEXT;
        emit_text(st, out, "content", json_object_get(cb, "text"));
    }
    else if (!strcmp(type, "tool_use")) {
        json_t *id = json_object_get(cb, "id"), *name = json_object_get(cb, "name");
        json_t *input = json_object_get(cb, "input");
        json_t *delta, *choice, *chunk;
        if (!json_is_string(id) || !json_is_string(name)) {
            return fail_bad(st, out, "tool_use block without id or name");
        }
        b->kind = BLOCK_TOOL;
        b->tool = st->ntools++;
        chunk = chunk_new(st, &delta, &choice);
        json_object_set_new(delta, "tool_calls",
                            json_pack("[{s:i,s:O,s:s,s:{s:O,s:s}}]", "index", b->tool,
                                      "id", id, "type", "function", "function",
                                      "name", name, "arguments", ""));
        emit(out, chunk);
        /* some Anthropic-compatible servers put the whole input here */
        if (json_is_object(input) && json_object_size(input)) {
            char *args = json_dumps(input, JSON_COMPACT);
            if (args) {
                json_t *s = json_string(args);
                emit_tool_args(st, out, b->tool, s);
                json_decref(s);
                free(args);
                b->args_seen = 1;
            }
        }
    }
    else if (!strcmp(type, "thinking")) {
        b->kind = BLOCK_THINKING;
        if (st->b.ctx->provider && st->b.ctx->provider->reasoning_content) {
            emit_text(st, out, "reasoning_content", json_object_get(cb, "thinking"));
        }
    }
    else {
        b->kind = BLOCK_OTHER;   /* redacted thinking, server tools: no OpenAI slot */
    }
    return st->b.status;
}

static mn_stream_status on_block_delta(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *delta = json_object_get(ev, "delta");
    const char *type = json_string_value(json_object_get(delta, "type"));
    open_block *b = block_find(st, json_object_get(ev, "index"));

    if (!type) {
        return st->b.status;
    }
    if (!strcmp(type, "text_delta")) {
        emit_text(st, out, "content", json_object_get(delta, "text"));
    }
    else if (!strcmp(type, "input_json_delta")) {
        json_t *pj = json_object_get(delta, "partial_json");
        if (!b) {
            /* no block to attach it to: dropping it would corrupt a call */
            return fail_bad(st, out, "input_json_delta for a block that was never started");
        }
        if (b->kind == BLOCK_TOOL && json_is_string(pj) && json_string_length(pj)) {
            emit_tool_args(st, out, b->tool, pj);
            b->args_seen = 1;
        }
    }
    else if (!strcmp(type, "thinking_delta")) {
        if (st->b.ctx->provider && st->b.ctx->provider->reasoning_content) {
            emit_text(st, out, "reasoning_content", json_object_get(delta, "thinking"));
        }
    }
    /* signature_delta, citations_delta and future types: nothing to send */
    return st->b.status;
}

static mn_stream_status on_message_delta(mn_stream *st, json_t *ev, mn_sink *out)
{
    int i;
    a_usage_merge(&st->au, json_object_get(ev, "usage"));
    a_usage_to_mn(&st->au, &st->b.usage);
    if (st->finished) {
        return st->b.status;
    }
    /* a tool block left open must still end with parseable arguments, and
     * before the finish chunk */
    for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind != BLOCK_FREE) {
            close_tool(st, out, &st->blocks[i]);
        }
    }
    emit_finish(st, out, finish_reason_for(json_object_get(json_object_get(ev, "delta"),
                                                           "stop_reason")));
    return st->b.status;
}

static mn_stream_status on_message_stop(mn_stream *st, mn_sink *out)
{
    if (!st->finished) {
        int i;
        for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
            if (st->blocks[i].kind != BLOCK_FREE) {
                close_tool(st, out, &st->blocks[i]);
            }
        }
        emit_finish(st, out, st->ntools ? "tool_calls" : "stop");
    }
    if (st->b.ctx->include_usage) {
        json_t *delta, *choice, *chunk = chunk_new(st, &delta, &choice);
        json_object_set_new(chunk, "choices", json_array());
        json_object_set_new(chunk, "usage", a_usage_to_openai(&st->au));
        emit(out, chunk);
    }
    mn_sse_write_done(out);
    st->b.status = MN_STREAM_DONE;
    return st->b.status;
}

static mn_stream_status on_error(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *e = json_object_get(ev, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *message = json_string_value(json_object_get(e, "message"));

    mn_error_set(&st->b.err, 502, type && *type ? type : NULL, NULL, NULL, "%s",
                 message && *message ? message : "upstream reported an error mid-stream");
    return fail_with(st, out);
}

/* The common event, a text delta of exactly {type, index, delta: {type,
 * text}}, validated by mn_jscan (as strict as json_loadb) and written by
 * copying the text's JSON string into the content template: no tree, no
 * allocation.  0: anything else, for the tree path. */
static int text_delta_fast(mn_stream *st, const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[FA_N];

    if (mn_jscan(data, len, st->fast, FA_N, sp) || sp[FA_ALL].count != 3 || sp[FA_TYPE].count != 1
        || sp[FA_INDEX].count != 1 || sp[FA_DELTA_ALL].count != 2 || sp[FA_DTYPE].count != 1
        || sp[FA_TEXT].count != 1 || sp[FA_TEXT].type != MN_JT_STRING || sp[FA_TEXT].len <= 2
        || sp[FA_TYPE].len != 21 || memcmp(sp[FA_TYPE].p, "\"content_block_delta\"", 21)
        || sp[FA_DTYPE].len != 12 || memcmp(sp[FA_DTYPE].p, "\"text_delta\"", 12)) {
        return 0;
    }
    mn_delta_template_write_raw(&st->content_tmpl, sp[FA_TEXT].p, sp[FA_TEXT].len, out);
    return 1;
}

static mn_stream_status anthropic_stream_feed(mn_stream *st, mn_sse_kind kind,
                                              const char *event, const char *data,
                                              size_t len, mn_sink *out)
{
    json_t *ev;
    const char *type;

    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        /* not Anthropic's, but some compatible servers end this way */
        if (st->finished) {
            return on_message_stop(st, out);
        }
        return fail_bad(st, out, "[DONE] before message_stop");
    }
    if (st->started && !st->finished && st->content_tmpl_state == 1
        && (!event || !*event || !strcmp(event, "content_block_delta"))
        && text_delta_fast(st, data, len, out)) {
        return st->b.status;
    }
    ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return fail_bad(st, out, "an event that is not a JSON object");
    }
    type = json_string_value(json_object_get(ev, "type"));
    if (!type) {
        type = event ? event : "";
    }
    if (!strcmp(type, "error") || (event && !strcmp(event, "error"))) {
        on_error(st, ev, out);
    }
    else if (!strcmp(type, "ping")) {
        /* keep-alive */
    }
    else if (!strcmp(type, "message_start")) {
        on_message_start(st, ev, out);
    }
    else if (!st->started) {
        if (!strncmp(type, "message_", 8) || !strncmp(type, "content_block_", 14)) {
            fail_bad(st, out, "content before message_start");
        }
    }
    else if (!strcmp(type, "content_block_start")) {
        on_block_start(st, ev, out);
    }
    else if (!strcmp(type, "content_block_delta")) {
        on_block_delta(st, ev, out);
    }
    else if (!strcmp(type, "content_block_stop")) {
        open_block *b = block_find(st, json_object_get(ev, "index"));
        if (b) {
            close_tool(st, out, b);
        }
    }
    else if (!strcmp(type, "message_delta")) {
        on_message_delta(st, ev, out);
    }
    else if (!strcmp(type, "message_stop")) {
        on_message_stop(st, out);
    }
    /* unknown event types: Anthropic may add some, ignore them */
    json_decref(ev);
    return st->b.status;
}

static mn_stream_status anthropic_stream_end(mn_stream *st, const mn_error *cause,
                                          mn_sink *out)
{
    return mn_stream_end_without(&st->b, cause, "message_stop", out);
}

static void anthropic_stream_destroy(mn_stream *st)
{
    if (!st) {
        return;
    }
    json_decref(st->id);
    json_decref(st->model);
    mn_delta_template_free(&st->content_tmpl);
    free(st);
}

const mn_wire mn_wire_anthropic = {
    "anthropic",
    anthropic_encode,
    anthropic_decode_response,
    anthropic_decode_error,
    anthropic_stream_create,
    anthropic_stream_feed,
    anthropic_stream_end,
    mn_stream_base_usage,
    mn_stream_base_error,
    anthropic_stream_destroy,
    NULL                        /* decode_response_bytes: the tree is new anyway */
};
