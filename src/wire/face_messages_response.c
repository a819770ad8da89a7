/* OpenAI chat answers and errors -> Anthropic's message and error shapes
 * (see mn_face_messages.h).
 *
 * - stop_reason: stop -> end_turn (chat does not say which stop sequence
 *   matched, so stop_sequence stays null), length -> max_tokens,
 *   tool_calls and function_call -> tool_use, content_filter -> refusal,
 *   anything else -> end_turn.
 * - usage: input_tokens is what Anthropic calls it, the prompt without the
 *   cached and cache-written tokens, which get their own members.
 * - reasoning_content (or reasoning) becomes a thinking block with an empty
 *   signature: there is none to give, and the request mapping drops
 *   thinking blocks, so the client's replay of it is harmless.
 * - Tool arguments that are not a JSON object become {} rather than
 *   failing an answer the client has otherwise in full.
 * - Errors: the statuses Anthropic gives one type each (401, 403, 404, 413,
 *   429, 504, 529) decide the type; otherwise Anthropic's own types pass as
 *   they are (a mid-stream overloaded_error stays one), and the gateway's
 *   and OpenAI's (upstream_error, server_error, ...) map by status: 5xx
 *   api_error, other 4xx invalid_request_error. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_chunk.h"
#include "mn_face_messages.h"

static const char *stop_reason_for(const char *fr)
{
    if (!fr) {
        return "end_turn";
    }
    if (!strcmp(fr, "length")) {
        return "max_tokens";
    }
    if (!strcmp(fr, "tool_calls") || !strcmp(fr, "function_call")) {
        return "tool_use";
    }
    if (!strcmp(fr, "content_filter")) {
        return "refusal";
    }
    return "end_turn";
}

const char *mn_fm_stop_reason(const char *finish_reason)
{
    return stop_reason_for(finish_reason);
}

json_t *mn_fm_usage_json(const mn_usage *u)
{
    long in = u->prompt_tokens - u->cached_tokens - u->cache_write_tokens;
    return json_pack("{s:I,s:I,s:I,s:I}",
                     "input_tokens", (json_int_t)(in > 0 ? in : 0),
                     "cache_creation_input_tokens", (json_int_t)u->cache_write_tokens,
                     "cache_read_input_tokens", (json_int_t)u->cached_tokens,
                     "output_tokens", (json_int_t)u->completion_tokens);
}

static json_t *tool_use_block(json_t *call)
{
    json_t *fn = json_object_get(call, "function");
    json_t *args = json_object_get(fn, "arguments");
    json_t *input = NULL;
    const char *id = json_string_value(json_object_get(call, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));

    if (json_is_string(args)) {
        input = json_loadb(json_string_value(args), json_string_length(args), 0, NULL);
    }
    if (!json_is_object(input)) {
        json_decref(input);
        input = json_object();
    }
    return json_pack("{s:s,s:s,s:s,s:o}", "type", "tool_use", "id", id ? id : "",
                     "name", name ? name : "", "input", input);
}

json_t *mn_fm_response(json_t *chat, const mn_usage *u)
{
    json_t *choice = json_array_get(json_object_get(chat, "choices"), 0);
    json_t *msg = json_object_get(choice, "message");
    json_t *content = json_array(), *res, *v, *calls;
    json_t *reasoning = json_object_get(msg, "reasoning_content");
    mn_usage own;
    size_t i;

    if (!json_is_string(reasoning)) {
        reasoning = json_object_get(msg, "reasoning");
    }
    if (json_is_string(reasoning) && json_string_length(reasoning)) {
        json_array_append_new(content, json_pack("{s:s,s:O,s:s}", "type", "thinking",
                                                 "thinking", reasoning, "signature", ""));
    }
    v = json_object_get(msg, "content");
    if (!json_is_string(v) || !json_string_length(v)) {
        v = json_object_get(msg, "refusal");
    }
    if (json_is_string(v) && json_string_length(v)) {
        json_array_append_new(content, json_pack("{s:s,s:O}", "type", "text", "text", v));
    }
    calls = json_object_get(msg, "tool_calls");
    json_array_foreach(calls, i, v) {
        json_array_append_new(content, tool_use_block(v));
    }
    if (!u) {
        memset(&own, 0, sizeof(own));
        mn_usage_from_openai(&own, json_object_get(chat, "usage"));
        u = &own;
    }
    res = json_object();
    v = json_object_get(chat, "id");
    json_object_set_new(res, "id", json_is_string(v) ? json_incref(v) : json_string(""));
    json_object_set_new(res, "type", json_string("message"));
    json_object_set_new(res, "role", json_string("assistant"));
    v = json_object_get(chat, "model");
    json_object_set_new(res, "model", json_is_string(v) ? json_incref(v) : json_string(""));
    json_object_set_new(res, "content", content);
    json_object_set_new(res, "stop_reason", json_string(stop_reason_for(
        json_string_value(json_object_get(choice, "finish_reason")))));
    json_object_set_new(res, "stop_sequence", json_null());
    json_object_set_new(res, "usage", mn_fm_usage_json(u));
    v = json_object_get(chat, "provider");
    mn_chunk_tag(res, json_string_value(v));
    return res;
}

/* ------------------------------------------------------------------ errors */

static const char *const anthropic_types[] = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error",
    "billing_error", NULL
};

static const char *type_for_status(int status)
{
    switch (status) {
    case 401: return "authentication_error";
    case 402: return "billing_error";
    case 403: return "permission_error";
    case 404: return "not_found_error";
    case 413: return "request_too_large";
    case 429: return "rate_limit_error";
    case 504: return "timeout_error";
    case 529: return "overloaded_error";
    default: return status >= 500 || status < 400 ? "api_error" : "invalid_request_error";
    }
}

const char *mn_fm_error_type(const mn_error *e)
{
    int i;

    /* Anthropic gives each of these statuses exactly one type: the status
     * says more than an OpenAI type (a 401 is invalid_request_error there) */
    switch (e->status) {
    case 401: case 403: case 404: case 413: case 429: case 504: case 529:
        return type_for_status(e->status);
    default:
        break;
    }
    if (!strcmp(e->code, "model_not_found")) {
        return "not_found_error";
    }
    if (!strcmp(e->code, "request_too_large")) {
        return "request_too_large";
    }
    for (i = 0; anthropic_types[i]; i++) {
        if (!strcmp(e->type, anthropic_types[i])) {
            return anthropic_types[i];
        }
    }
    return type_for_status(e->status);
}

json_t *mn_fm_error_json(const mn_error *e, const char *provider)
{
    json_t *o = json_pack("{s:s,s:{s:s,s:s}}", "type", "error", "error",
                          "type", mn_fm_error_type(e), "message", e->message);
    mn_chunk_tag(o, provider);
    return o;
}

void mn_fm_error_event(mn_sink *out, const mn_error *e, const char *provider)
{
    json_t *o = mn_fm_error_json(e, provider);
    out->write(out->baton, "event: error\ndata: ", 19);
    mn_json_write(out, o);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
    json_decref(o);
}
