/* Anthropic Messages request -> OpenAI chat request (see mn_face_messages.h).
 *
 * Mapping choices:
 * - system (string or text blocks) becomes one system message, the texts
 *   joined by a blank line: servers that take only string system content
 *   (older vLLM, llama.cpp) still work; cache_control has no chat analogue.
 *   A system turn inside messages (Claude Code sends its reminders so)
 *   becomes a system message in its place.
 * - A user turn's tool_result blocks become `tool` messages, in order and
 *   before the turn's other blocks (chat wants them right after the
 *   assistant's tool_calls); their text is joined, images in them are
 *   dropped, is_error prefixes "Error: " so the model still sees it.
 * - Assistant thinking and redacted_thinking blocks are dropped: a chat
 *   upstream has no place for them, and their signatures only mean
 *   something to Anthropic (which gets the passthrough instead).
 * - thinking {type:enabled, budget_tokens} -> reasoning_effort: up to 1024
 *   low, up to 4096 medium, above high (the inverse of the Anthropic wire's
 *   table); disabled and adaptive send none.
 * - max_tokens -> max_completion_tokens (OpenAI's current name, which its
 *   reasoning models require; the other wire units read it too).
 * - stream_options.include_usage is always set: message_delta carries usage.
 * - metadata.user_id -> user.  top_k, server tools (typed tools other than
 *   custom) and Anthropic-only members (output_config, context_management,
 *   container, mcp_servers, ...) are dropped and listed in info->dropped:
 *   an OpenAI upstream would reject them.  The gateway's own extensions
 *   (tags, trace) pass on to the policy. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_face_messages.h"

static int bad(mn_error *err, const char *param, const char *msg)
{
    return mn_error_set(err, 400, "invalid_request_error", param, NULL, "%s: %s", param, msg);
}

static void note_dropped(mn_fm_info *info, const char *name)
{
    size_t len = strlen(info->dropped);
    if (strstr(info->dropped, name)) {
        return;
    }
    snprintf(info->dropped + len, sizeof(info->dropped) - len, "%s%s", len ? "," : "", name);
}

static void buf_add_sep(mn_buf *b, const char *s, size_t n, const char *sep)
{
    if (b->len && sep) {
        mn_buf_append(b, sep, strlen(sep));
    }
    mn_buf_append(b, s, n);
}

/* Texts of a string or an array of text blocks, joined by sep. */
static int join_text(json_t *content, const char *param, const char *sep, mn_buf *b,
                     mn_error *err)
{
    size_t i;
    json_t *blk;
    char p[128];

    if (json_is_string(content)) {
        buf_add_sep(b, json_string_value(content), json_string_length(content), sep);
        return 0;
    }
    if (!json_is_array(content)) {
        return bad(err, param, "must be a string or an array of text blocks");
    }
    json_array_foreach(content, i, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_t *text = json_object_get(blk, "text");
        if (type && !strcmp(type, "text") && json_is_string(text)) {
            buf_add_sep(b, json_string_value(text), json_string_length(text), sep);
        }
        else if (!type || strcmp(type, "image")) {
            snprintf(p, sizeof(p), "%s[%zu]", param, i);
            return bad(err, p, "must be a text block");
        }
    }
    return 0;
}

/* image or document source -> an OpenAI image_url or file part */
static int media_part(json_t *blk, const char *type, const char *param, json_t **out,
                      mn_error *err)
{
    json_t *src = json_object_get(blk, "source");
    const char *st = json_string_value(json_object_get(src, "type"));
    const char *mt = json_string_value(json_object_get(src, "media_type"));
    const char *data = json_string_value(json_object_get(src, "data"));
    const char *url = json_string_value(json_object_get(src, "url"));
    char *du;
    size_t n;

    if (st && !strcmp(st, "url") && url && !strcmp(type, "image")) {
        *out = json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", url);
        return 0;
    }
    if (!st || strcmp(st, "base64") || !mt || !data) {
        return bad(err, param, "needs a base64 source with media_type and data"
                   " (or, for images, a url source)");
    }
    n = strlen(mt) + strlen(data) + 16;
    du = malloc(n);
    if (!du) {
        return mn_error_set(err, 500, NULL, NULL, NULL, "out of memory");
    }
    snprintf(du, n, "data:%s;base64,%s", mt, data);
    if (!strcmp(type, "image")) {
        *out = json_pack("{s:s,s:{s:s}}", "type", "image_url", "image_url", "url", du);
    }
    else {
        *out = json_pack("{s:s,s:{s:s}}", "type", "file", "file", "file_data", du);
    }
    free(du);
    return 0;
}

static int tool_result(json_t *blk, json_t *msgs, const char *param, mn_error *err)
{
    const char *id = json_string_value(json_object_get(blk, "tool_use_id"));
    json_t *content = json_object_get(blk, "content");
    mn_buf b;
    char p[160];
    int rc = 0;

    if (!id) {
        snprintf(p, sizeof(p), "%s.tool_use_id", param);
        return bad(err, p, "must be a string");
    }
    mn_buf_init(&b);
    if (json_is_true(json_object_get(blk, "is_error"))) {
        mn_buf_append(&b, "Error: ", 7);
    }
    if (content && !json_is_null(content)) {
        mn_buf tmp;
        snprintf(p, sizeof(p), "%s.content", param);
        mn_buf_init(&tmp);
        rc = join_text(content, p, "\n", &tmp, err);
        if (!rc && tmp.len) {
            mn_buf_append(&b, tmp.data, tmp.len);
        }
        mn_buf_free(&tmp);
    }
    if (!rc) {
        json_array_append_new(msgs, json_pack("{s:s,s:s,s:s%}", "role", "tool",
                                              "tool_call_id", id, "content",
                                              b.data ? b.data : "", b.len));
    }
    mn_buf_free(&b);
    return rc;
}

static int user_turn(json_t *content, size_t i, json_t *msgs, mn_fm_info *info,
                     mn_error *err)
{
    json_t *parts = json_array(), *blk;
    size_t j;
    char p[128];

    json_array_foreach(content, j, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        json_t *part = NULL;
        snprintf(p, sizeof(p), "messages[%zu].content[%zu]", i, j);
        if (!type) {
            json_decref(parts);
            return bad(err, p, "content blocks need a type");
        }
        if (!strcmp(type, "text")) {
            json_t *text = json_object_get(blk, "text");
            if (!json_is_string(text)) {
                json_decref(parts);
                return bad(err, p, "text must be a string");
            }
            part = json_pack("{s:s,s:O}", "type", "text", "text", text);
        }
        else if (!strcmp(type, "image") || !strcmp(type, "document")) {
            if (media_part(blk, type, p, &part, err)) {
                json_decref(parts);
                return -1;
            }
        }
        else if (!strcmp(type, "tool_result")) {
            if (tool_result(blk, msgs, p, err)) {
                json_decref(parts);
                return -1;
            }
        }
        else {
            note_dropped(info, type);   /* search results, server tool results ... */
        }
        if (part) {
            json_array_append_new(parts, part);
        }
    }
    if (json_array_size(parts)) {
        json_array_append_new(msgs, json_pack("{s:s,s:o}", "role", "user", "content", parts));
    }
    else {
        json_decref(parts);
    }
    return 0;
}

static int assistant_turn(json_t *content, size_t i, json_t *msgs, mn_error *err)
{
    json_t *calls = json_array(), *blk, *msg;
    mn_buf text;
    size_t j;
    char p[128];

    mn_buf_init(&text);
    json_array_foreach(content, j, blk) {
        const char *type = json_string_value(json_object_get(blk, "type"));
        snprintf(p, sizeof(p), "messages[%zu].content[%zu]", i, j);
        if (type && !strcmp(type, "text") && json_is_string(json_object_get(blk, "text"))) {
            json_t *t = json_object_get(blk, "text");
            mn_buf_append(&text, json_string_value(t), json_string_length(t));
        }
        else if (type && !strcmp(type, "tool_use")) {
            const char *id = json_string_value(json_object_get(blk, "id"));
            const char *name = json_string_value(json_object_get(blk, "name"));
            json_t *input = json_object_get(blk, "input");
            char *args;
            if (!id || !name) {
                mn_buf_free(&text);
                json_decref(calls);
                return bad(err, p, "tool_use needs an id and a name");
            }
            args = json_is_object(input) ? json_dumps(input, JSON_COMPACT) : NULL;
            json_array_append_new(calls, json_pack("{s:s,s:s,s:{s:s,s:s}}", "id", id,
                                                   "type", "function", "function",
                                                   "name", name, "arguments",
                                                   args ? args : "{}"));
            free(args);
        }
        /* thinking, redacted_thinking, server tool blocks: see above */
    }
    msg = json_pack("{s:s}", "role", "assistant");
    json_object_set_new(msg, "content", text.len || !json_array_size(calls)
                        ? json_stringn(text.data ? text.data : "", text.len) : json_null());
    if (json_array_size(calls)) {
        json_object_set_new(msg, "tool_calls", calls);
    }
    else {
        json_decref(calls);
    }
    mn_buf_free(&text);
    json_array_append_new(msgs, msg);
    return 0;
}

/* A system prompt (top-level, or a system turn in messages, as Claude Code
 * sends mid-conversation reminders) -> one system message. */
static int system_message(json_t *content, const char *param, json_t *msgs, mn_error *err)
{
    mn_buf b;
    int rc;

    mn_buf_init(&b);
    rc = join_text(content, param, "\n\n", &b, err);
    if (!rc && b.len) {
        json_array_append_new(msgs, json_pack("{s:s,s:s%}", "role", "system", "content",
                                              b.data, b.len));
    }
    mn_buf_free(&b);
    return rc;
}

static int map_messages(json_t *in, json_t *msgs, mn_fm_info *info, mn_error *err)
{
    json_t *list = json_object_get(in, "messages"), *m;
    size_t i;
    char p[64];

    if (!json_is_array(list) || !json_array_size(list)) {
        return bad(err, "messages", "must be a non-empty array");
    }
    json_array_foreach(list, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        json_t *content = json_object_get(m, "content");
        int user = role && !strcmp(role, "user");
        if (role && !strcmp(role, "system")) {
            snprintf(p, sizeof(p), "messages[%zu].content", i);
            if (system_message(content, p, msgs, err)) {
                return -1;
            }
            continue;
        }
        if (!role || (!user && strcmp(role, "assistant"))) {
            snprintf(p, sizeof(p), "messages[%zu].role", i);
            return bad(err, p, "must be user, assistant or system");
        }
        if (json_is_string(content)) {
            json_array_append_new(msgs, json_pack("{s:s,s:O}", "role", role, "content",
                                                  content));
            continue;
        }
        if (!json_is_array(content)) {
            snprintf(p, sizeof(p), "messages[%zu].content", i);
            return bad(err, p, "must be a string or an array of content blocks");
        }
        if (user ? user_turn(content, i, msgs, info, err)
                 : assistant_turn(content, i, msgs, err)) {
            return -1;
        }
    }
    return 0;
}

static int map_tools(json_t *in, json_t *out, mn_fm_info *info, mn_error *err)
{
    json_t *tools = json_object_get(in, "tools"), *t, *list;
    size_t i;
    char p[64];

    if (!tools || json_is_null(tools)) {
        return 0;
    }
    if (!json_is_array(tools)) {
        return bad(err, "tools", "must be an array");
    }
    list = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        const char *name = json_string_value(json_object_get(t, "name"));
        json_t *schema = json_object_get(t, "input_schema");
        json_t *fn;
        if (type && strcmp(type, "custom")) {
            note_dropped(info, "tools.server_tools");
            continue;
        }
        if (!name) {
            snprintf(p, sizeof(p), "tools[%zu].name", i);
            json_decref(list);
            return bad(err, p, "must be a string");
        }
        fn = json_pack("{s:s}", "name", name);
        if (json_is_string(json_object_get(t, "description"))) {
            json_object_set(fn, "description", json_object_get(t, "description"));
        }
        json_object_set_new(fn, "parameters", json_is_object(schema) ? json_incref(schema)
                            : json_pack("{s:s,s:{}}", "type", "object", "properties"));
        json_array_append_new(list, json_pack("{s:s,s:o}", "type", "function", "function", fn));
    }
    if (json_array_size(list)) {
        json_object_set(out, "tools", list);
    }
    json_decref(list);
    return 0;
}

static int map_tool_choice(json_t *in, json_t *out, mn_error *err)
{
    json_t *tc = json_object_get(in, "tool_choice");
    const char *type = json_string_value(json_object_get(tc, "type"));

    if (!tc || json_is_null(tc)) {
        return 0;
    }
    if (!type) {
        return bad(err, "tool_choice.type", "must be a string");
    }
    if (!strcmp(type, "auto")) {
        json_object_set_new(out, "tool_choice", json_string("auto"));
    }
    else if (!strcmp(type, "any")) {
        json_object_set_new(out, "tool_choice", json_string("required"));
    }
    else if (!strcmp(type, "none")) {
        json_object_set_new(out, "tool_choice", json_string("none"));
    }
    else if (!strcmp(type, "tool")) {
        const char *name = json_string_value(json_object_get(tc, "name"));
        if (!name) {
            return bad(err, "tool_choice.name", "must be a string");
        }
        json_object_set_new(out, "tool_choice", json_pack("{s:s,s:{s:s}}", "type", "function",
                                                          "function", "name", name));
    }
    else {
        return bad(err, "tool_choice.type", "must be auto, any, tool or none");
    }
    if (json_is_true(json_object_get(tc, "disable_parallel_tool_use"))
        && json_object_get(out, "tools")) {
        json_object_set_new(out, "parallel_tool_calls", json_false());
    }
    return 0;
}

static int map_thinking(json_t *in, json_t *out, mn_error *err)
{
    json_t *th = json_object_get(in, "thinking");
    const char *type = json_string_value(json_object_get(th, "type"));
    json_t *budget = json_object_get(th, "budget_tokens");
    json_int_t b;

    if (!th || json_is_null(th)) {
        return 0;
    }
    if (!type) {
        return bad(err, "thinking.type", "must be a string");
    }
    if (strcmp(type, "enabled")) {
        return 0;
    }
    if (!json_is_integer(budget) || json_integer_value(budget) < 1) {
        return bad(err, "thinking.budget_tokens", "must be a positive integer");
    }
    b = json_integer_value(budget);
    json_object_set_new(out, "reasoning_effort",
                        json_string(b <= 1024 ? "low" : b <= 4096 ? "medium" : "high"));
    return 0;
}

static int map_system(json_t *in, json_t *msgs, mn_error *err)
{
    json_t *sys = json_object_get(in, "system");

    if (!sys || json_is_null(sys)) {
        return 0;
    }
    return system_message(sys, "system", msgs, err);
}

/* Members copied as they are, members handled above, and the gateway's own
 * extensions; every other member is dropped (and noted). */
static const char *const copied[] = { "model", "temperature", "top_p", "tags", "trace", NULL };
static const char *const handled[] = {
    "messages", "system", "max_tokens", "tools", "tool_choice", "stop_sequences",
    "thinking", "metadata", "stream", NULL
};

static int listed(const char *k, const char *const *list)
{
    for (; *list; list++) {
        if (!strcmp(k, *list)) {
            return 1;
        }
    }
    return 0;
}

static int map_scalars(json_t *in, json_t *out, mn_fm_info *info, mn_error *err)
{
    const char *k;
    json_t *v;
    json_t *mt = json_object_get(in, "max_tokens");
    json_t *stops = json_object_get(in, "stop_sequences");
    json_t *user = json_object_get(json_object_get(in, "metadata"), "user_id");

    if (!json_is_integer(mt) || json_integer_value(mt) < 1) {
        return bad(err, "max_tokens", "must be a positive integer");
    }
    json_object_set(out, "max_completion_tokens", mt);
    if (stops && !json_is_null(stops)) {
        if (!json_is_array(stops)) {
            return bad(err, "stop_sequences", "must be an array of strings");
        }
        if (json_array_size(stops)) {
            json_object_set(out, "stop", stops);
        }
    }
    if (json_is_string(user) && json_string_length(user)) {
        json_object_set(out, "user", user);
    }
    v = json_object_get(in, "stream");
    info->stream = json_is_true(v);
    if (info->stream) {
        json_object_set_new(out, "stream", json_true());
        json_object_set_new(out, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    json_object_foreach(in, k, v) {
        if (listed(k, copied)) {
            json_object_set(out, k, v);
        }
        else if (!listed(k, handled)) {
            note_dropped(info, k);
        }
    }
    return 0;
}

int mn_fm_request(json_t *in, json_t **out, mn_fm_info *info, mn_error *err)
{
    json_t *o, *msgs;

    *out = NULL;
    memset(info, 0, sizeof(*info));
    if (!json_is_object(in)) {
        return bad(err, "body", "must be a JSON object");
    }
    if (!json_is_string(json_object_get(in, "model"))) {
        return bad(err, "model", "must be a string");
    }
    o = json_object();
    msgs = json_array();
    json_object_set_new(o, "messages", msgs);
    if (map_system(in, msgs, err) || map_messages(in, msgs, info, err)
        || map_scalars(in, o, info, err) || map_tools(in, o, info, err)
        || map_tool_choice(in, o, err) || map_thinking(in, o, err)) {
        json_decref(o);
        return -1;
    }
    *out = o;
    return 0;
}

int mn_fm_count_tokens(json_t *in, long *tokens, mn_error *err)
{
    static const char *const parts[] = { "system", "messages", "tools", NULL };
    size_t bytes = 0;
    int i;

    if (!json_is_object(in) || !json_is_array(json_object_get(in, "messages"))) {
        return bad(err, "messages", "must be an array");
    }
    for (i = 0; parts[i]; i++) {
        json_t *v = json_object_get(in, parts[i]);
        char *s = v ? json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        if (s) {
            bytes += strlen(s);
            free(s);
        }
    }
    *tokens = (long)((bytes + 3) / 4);
    return 0;
}

static int ends_with(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && !strcmp(s + n - m, suffix);
}

int mn_fm_path(const char *uri)
{
    if (!uri) {
        return 0;
    }
    if (ends_with(uri, "/messages")) {
        return MN_FM_PATH_MESSAGES;
    }
    if (ends_with(uri, "/messages/count_tokens")) {
        return MN_FM_PATH_COUNT;
    }
    return 0;
}
