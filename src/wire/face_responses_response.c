/* The Responses face, answer side: a chat.completion becomes a Response
 * object (see include/mn_face_responses.h).  Output items come in the order
 * the chat message holds them: reasoning (from reasoning_content), the
 * message (content, refusal), one function_call per tool call. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_face_responses.h"

void mn_resp_item_id(const mn_resp_ctx *c, const char *prefix, int n, char *buf, size_t size)
{
    apr_snprintf(buf, size, "%s_%s_%d", prefix, c->id, n);
}

json_t *mn_resp_text_part(const char *text, size_t len)
{
    return json_pack("{s:s,s:[],s:[],s:s%}", "type", "output_text", "annotations", "logprobs",
                     "text", text, len);
}

json_t *mn_resp_message_item(const char *id, const char *status, json_t *parts)
{
    return json_pack("{s:s,s:s,s:s,s:O,s:s}", "id", id, "type", "message", "status", status,
                     "content", parts, "role", "assistant");
}

json_t *mn_resp_call_item(const char *id, const char *status, const char *args, size_t len,
                          json_t *call_id, json_t *name)
{
    return json_pack("{s:s,s:s,s:s,s:s%,s:O,s:O}", "id", id, "type", "function_call",
                     "status", status, "arguments", args, len, "call_id", call_id, "name", name);
}

json_t *mn_resp_encode_blocks(json_t *blocks)
{
    char *s = json_dumps(blocks, JSON_COMPACT);
    json_t *enc = NULL;
    if (s) {
        size_t n = strlen(MN_RESP_ENC_PREFIX) + strlen(s) + 1;
        char *buf = malloc(n);
        if (buf) {
            apr_snprintf(buf, n, "%s%s", MN_RESP_ENC_PREFIX, s);
            enc = json_string(buf);
            free(buf);
        }
        free(s);
    }
    return enc;
}

json_t *mn_resp_decode_blocks(const char *enc)
{
    size_t plen = strlen(MN_RESP_ENC_PREFIX);
    json_t *blocks;
    if (!enc || strncmp(enc, MN_RESP_ENC_PREFIX, plen)) {
        return NULL;
    }
    blocks = json_loads(enc + plen, 0, NULL);
    if (!json_is_array(blocks) || !json_array_size(blocks)) {
        json_decref(blocks);
        return NULL;
    }
    return blocks;
}

json_t *mn_resp_reasoning_item(const char *id, const char *summary, size_t len, json_t *blocks)
{
    json_t *item = json_pack("{s:s,s:s,s:[]}", "id", id, "type", "reasoning", "summary");
    json_t *enc;
    if (len) {
        json_array_append_new(json_object_get(item, "summary"),
                              json_pack("{s:s,s:s%}", "type", "summary_text", "text", summary, len));
    }
    if (json_is_array(blocks) && json_array_size(blocks) && (enc = mn_resp_encode_blocks(blocks))) {
        json_object_set_new(item, "encrypted_content", enc);
    }
    return item;
}

json_t *mn_resp_usage(const mn_usage *u)
{
    return json_pack("{s:I,s:{s:I},s:I,s:{s:I},s:I}",
                     "input_tokens", (json_int_t)u->prompt_tokens,
                     "input_tokens_details", "cached_tokens", (json_int_t)u->cached_tokens,
                     "output_tokens", (json_int_t)u->completion_tokens,
                     "output_tokens_details", "reasoning_tokens", (json_int_t)u->reasoning_tokens,
                     "total_tokens", (json_int_t)u->total_tokens);
}

static json_t *echoed(const mn_resp_ctx *c, const char *key, json_t *dflt)
{
    json_t *v = json_object_get(c->echo, key);
    if (v) {
        json_decref(dflt);
        return json_incref(v);
    }
    return dflt;
}

json_t *mn_resp_object(const mn_resp_ctx *c, const char *status)
{
    char id[160];
    json_t *o;

    apr_snprintf(id, sizeof(id), "resp_%s", c->id);
    o = json_pack("{s:s,s:s,s:I,s:s,s:b,s:n,s:n}", "id", id, "object", "response",
                  "created_at", (json_int_t)c->created_at, "status", status, "background", 0,
                  "error", "incomplete_details");
    json_object_set_new(o, "instructions", echoed(c, "instructions", json_null()));
    json_object_set_new(o, "max_output_tokens", echoed(c, "max_output_tokens", json_null()));
    json_object_set_new(o, "model", echoed(c, "model", json_string("")));
    json_object_set_new(o, "output", json_array());
    json_object_set_new(o, "parallel_tool_calls", echoed(c, "parallel_tool_calls", json_true()));
    json_object_set_new(o, "previous_response_id", json_null());
    json_object_set_new(o, "reasoning", echoed(c, "reasoning", json_null()));
    json_object_set_new(o, "store", json_false());
    json_object_set_new(o, "temperature", echoed(c, "temperature", json_null()));
    json_object_set_new(o, "text", echoed(c, "text", json_null()));
    json_object_set_new(o, "tool_choice", echoed(c, "tool_choice", json_string("auto")));
    json_object_set_new(o, "tools", echoed(c, "tools", json_array()));
    json_object_set_new(o, "top_p", echoed(c, "top_p", json_null()));
    json_object_set_new(o, "truncation", json_string("disabled"));
    json_object_set_new(o, "usage", json_null());
    json_object_set_new(o, "user", echoed(c, "user", json_null()));
    json_object_set_new(o, "metadata", echoed(c, "metadata", json_object()));
    if (c->provider) {
        json_object_set_new(o, "provider", json_string(c->provider));
    }
    return o;
}

/* The Response status for a chat finish_reason; *reason is the
 * incomplete_details reason, or NULL. */
static const char *status_for(const char *finish, const char **reason)
{
    *reason = NULL;
    if (finish && !strcmp(finish, "length")) {
        *reason = "max_output_tokens";
    }
    else if (finish && !strcmp(finish, "content_filter")) {
        *reason = "content_filter";
    }
    return *reason ? "incomplete" : "completed";
}

static void add_message(const mn_resp_ctx *c, json_t *output, json_t *msg)
{
    json_t *content = json_object_get(msg, "content"), *refusal = json_object_get(msg, "refusal");
    json_t *parts = json_array();
    char id[160];

    if (json_is_string(content) && json_string_length(content)) {
        json_array_append_new(parts, mn_resp_text_part(json_string_value(content),
                                                       json_string_length(content)));
    }
    if (json_is_string(refusal) && json_string_length(refusal)) {
        json_array_append_new(parts, json_pack("{s:s,s:O}", "type", "refusal",
                                               "refusal", refusal));
    }
    if (json_array_size(parts)) {
        mn_resp_item_id(c, "msg", (int)json_array_size(output), id, sizeof(id));
        json_array_append_new(output, mn_resp_message_item(id, "completed", parts));
    }
    json_decref(parts);
}

static void add_calls(const mn_resp_ctx *c, json_t *output, json_t *calls)
{
    size_t i;
    json_t *tc;
    char id[160];

    json_array_foreach(calls, i, tc) {
        json_t *fn = json_object_get(tc, "function");
        json_t *args = json_object_get(fn, "arguments"), *name = json_object_get(fn, "name");
        json_t *call_id = json_object_get(tc, "id");
        if (!json_is_string(name)) {
            continue;
        }
        mn_resp_item_id(c, "fc", (int)json_array_size(output), id, sizeof(id));
        json_array_append_new(output, mn_resp_call_item(id, "completed",
                                                        json_is_string(args) ? json_string_value(args) : "",
                                                        json_is_string(args) ? json_string_length(args) : 0,
                                                        json_is_string(call_id) ? call_id : name, name));
    }
}

json_t *mn_resp_from_chat(const mn_resp_ctx *c, json_t *completion, mn_error *err)
{
    json_t *choice = json_array_get(json_object_get(completion, "choices"), 0);
    json_t *msg = json_object_get(choice, "message"), *rc, *resp, *output, *blocks;
    const char *reason, *status;
    mn_usage u;
    char id[160];

    if (!json_is_object(msg)) {
        mn_error_set(err, 502, "upstream_error", NULL, "upstream_bad_response",
                     "the upstream answer has no message");
        return NULL;
    }
    status = status_for(json_string_value(json_object_get(choice, "finish_reason")), &reason);
    resp = mn_resp_object(c, status);
    output = json_object_get(resp, "output");
    rc = json_object_get(msg, "reasoning_content");
    if (!json_is_string(rc)) {
        rc = NULL;
    }
    blocks = json_object_get(msg, "thinking_blocks");
    if ((rc && json_string_length(rc)) || (json_is_array(blocks) && json_array_size(blocks))) {
        mn_resp_item_id(c, "rs", 0, id, sizeof(id));
        json_array_append_new(output, mn_resp_reasoning_item(id, rc ? json_string_value(rc) : "",
                                                             rc ? json_string_length(rc) : 0,
                                                             blocks));
    }
    add_message(c, output, msg);
    add_calls(c, output, json_object_get(msg, "tool_calls"));
    if (reason) {
        json_object_set_new(resp, "incomplete_details", json_pack("{s:s}", "reason", reason));
    }
    memset(&u, 0, sizeof(u));
    mn_usage_from_openai(&u, json_object_get(completion, "usage"));
    json_object_set_new(resp, "usage", mn_resp_usage(&u));
    return resp;
}
