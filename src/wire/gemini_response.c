/* Gemini wire, answers: a non-streaming generateContent answer -> OpenAI
 * chat.completion, an upstream error body -> mn_error, and the parts of an
 * answer the stream translator builds the same way (usage, finish reason,
 * tool calls, our response id).  Mapping decisions: docs/wire-gemini.md. */
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "mn_chunk.h"
#include "mn_agent.h"
#include "mn_gemini.h"

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static const char *type_for_rpc_status(const char *s, int http)
{
    static const struct { const char *status; const char *type; } map[] = {
        { "INVALID_ARGUMENT", "invalid_request_error" },
        { "FAILED_PRECONDITION", "invalid_request_error" },
        { "OUT_OF_RANGE", "invalid_request_error" },
        { "UNAUTHENTICATED", "authentication_error" },
        { "PERMISSION_DENIED", "permission_error" },
        { "NOT_FOUND", "not_found_error" },
        { "RESOURCE_EXHAUSTED", "rate_limit_error" },
        { "INTERNAL", "server_error" },
        { "UNAVAILABLE", "server_error" },
        { "DEADLINE_EXCEEDED", "server_error" },
        { "UNKNOWN", "server_error" },
    };
    size_t i;
    for (i = 0; s && i < sizeof(map) / sizeof(map[0]); i++) {
        if (!strcmp(s, map[i].status)) {
            return map[i].type;
        }
    }
    return mn_error_type_for_status(http);
}

/* google.protobuf.Duration JSON ("41s", "1.5s") -> whole seconds, rounded
 * up so a client never retries early.  0 when it does not parse. */
static int retry_delay_seconds(const char *d, char *out, size_t size)
{
    unsigned long long secs = 0;
    int frac = 0;
    const char *p = d;

    if (!a_digit(*p)) {
        return 0;
    }
    while (a_digit(*p)) {
        if (secs > 100000000ULL) {
            return 0;
        }
        secs = secs * 10 + (unsigned)(*p++ - '0');
    }
    if (*p == '.') {
        p++;
        if (!a_digit(*p)) {
            return 0;
        }
        while (a_digit(*p)) {
            frac |= *p++ != '0';
        }
    }
    if (strcmp(p, "s")) {
        return 0;
    }
    snprintf(out, size, "%llu", secs + (frac ? 1 : 0));
    return 1;
}

/* Fills e from a Gemini error body ({"error":{code,message,status,details}},
 * also inside a one-element array as the non-SSE stream sends it).
 * http <= 0 takes the status from error.code.  -1 when root is not one. */
int mn_gm_error_from_body(mn_error *e, int http, json_t *root)
{
    json_t *err, *details, *d;
    const char *status, *msg;
    size_t i;

    if (json_is_array(root)) {
        root = json_array_get(root, 0);
    }
    err = json_object_get(root, "error");
    if (!json_is_object(err)) {
        return -1;
    }
    if (http <= 0) {
        json_t *code = json_object_get(err, "code");
        http = json_is_integer(code) && json_integer_value(code) >= 400
               && json_integer_value(code) <= 599 ? (int)json_integer_value(code) : 502;
    }
    status = json_string_value(json_object_get(err, "status"));
    msg = json_string_value(json_object_get(err, "message"));
    if (msg && *msg) {
        mn_error_set(e, http, type_for_rpc_status(status, http), NULL, status, "%s", msg);
    }
    else {
        mn_error_set(e, http, type_for_rpc_status(status, http), NULL, status,
                     "upstream answered HTTP %d without an error message", http);
    }
    details = json_object_get(err, "details");
    json_array_foreach(details, i, d) {
        const char *type = json_string_value(json_object_get(d, "@type"));
        const char *reason = json_string_value(json_object_get(d, "reason"));
        const char *delay = json_string_value(json_object_get(d, "retryDelay"));
        if (!type) {
            continue;
        }
        if (strstr(type, "google.rpc.ErrorInfo") && reason && *reason) {
            apr_cpystrn(e->code, reason, sizeof(e->code));
        }
        else if (strstr(type, "google.rpc.RetryInfo") && delay) {
            retry_delay_seconds(delay, e->retry_after, sizeof(e->retry_after));
        }
    }
    return 0;
}

/* Upstreams echo the key back in auth errors. */
static void scrub_key(mn_wire_ctx *ctx, mn_error *e)
{
    mn_error_scrub(e, ctx->provider);
}

void mn_gm_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                        size_t len, const char *retry_after, mn_error *err)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;

    if (mn_gm_error_from_body(err, status, root)) {
        mn_error_from_openai_body(err, status, body, len, ctx->provider);
    }
    json_decref(root);
    if (retry_after && *retry_after) {
        mn_wire_retry_after(ctx, retry_after, err);
    }
    scrub_key(ctx, err);
}


/* ------------------------------------------------------------------------ */
/* Responses                                                                 */


static long int_member(json_t *o, const char *name, int *present)
{
    json_t *v = json_object_get(o, name);
    json_int_t n = json_is_integer(v) ? json_integer_value(v) : 0;
    if (present) {
        *present = json_is_integer(v);
    }
    return n < 0 ? 0 : n > LONG_MAX ? LONG_MAX : (long)n;
}

/* Replaces u: usageMetadata is cumulative, the last one wins. */
void mn_gm_usage_read(gm_usage *u, json_t *um)
{
    if (!json_is_object(um)) {
        return;
    }
    u->have = 1;
    u->prompt = int_member(um, "promptTokenCount", NULL);
    u->tool_prompt = int_member(um, "toolUsePromptTokenCount", NULL);
    u->candidates = int_member(um, "candidatesTokenCount", NULL);
    u->thoughts = int_member(um, "thoughtsTokenCount", &u->have_thoughts);
    u->total = int_member(um, "totalTokenCount", &u->have_total);
    u->cached = int_member(um, "cachedContentTokenCount", NULL);
}

void mn_gm_usage_counts(const gm_usage *u, mn_usage *m)
{
    m->have = u->have;
    m->prompt_tokens = mn_usage_add(u->prompt, u->tool_prompt);
    m->completion_tokens = mn_usage_add(u->candidates, u->thoughts);
    m->total_tokens = u->have_total ? u->total
                                    : mn_usage_add(m->prompt_tokens, m->completion_tokens);
    m->cached_tokens = u->cached;
    m->cache_write_tokens = 0;
    m->reasoning_tokens = u->thoughts;
}

json_t *mn_gm_usage_json(const gm_usage *u)
{
    mn_usage m;
    mn_gm_usage_counts(u, &m);
    return mn_usage_to_openai_details(&m, u->have_thoughts);
}

const char *mn_gm_map_finish(mn_wire_ctx *ctx, const char *fr, int saw_tool)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "LANGUAGE", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", NULL
    };
    static const char *const stops[] = {
        "OTHER", "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS",
        "MISSING_THOUGHT_SIGNATURE", "MALFORMED_RESPONSE", "NO_IMAGE", "IMAGE_OTHER", NULL
    };
    if (!fr || !strcmp(fr, "STOP") || !strcmp(fr, "FINISH_REASON_UNSPECIFIED")) {
        return saw_tool ? "tool_calls" : "stop";
    }
    if (!strcmp(fr, "MAX_TOKENS")) {
        return "length";
    }
    if (in_list(fr, filtered)) {
        return "content_filter";
    }
    if (ctx && !in_list(fr, stops)) {
        mn_agent_unknown_finish(ctx, fr);   /* a finishReason newer than this code */
    }
    return "stop";
}

int mn_gm_part_is_thought(json_t *part)
{
    return json_is_true(json_object_get(part, "thought"));
}

/* Compact JSON of functionCall.args; a missing args means no arguments. */
json_t *mn_gm_args_string(json_t *args)
{
    char *s;
    json_t *j;
    if (!args || json_is_null(args)) {
        return json_string("{}");
    }
    s = json_dumps(args, JSON_COMPACT | JSON_ENCODE_ANY);
    j = json_string(s ? s : "{}");
    free(s);
    return j;
}

/* Gemini leaves responseId out of some answers (blocked prompts, safety,
 * recitation): ours stands in, so that no id is empty and every chunk of a
 * stream carries the same one.  buf holds at least GM_ID_SIZE bytes. */
void mn_gm_make_response_id(char *buf)
{
    static const char hex[] = "0123456789abcdef";
    static apr_uint32_t counter;
    unsigned char r[12];
    size_t i;

    if (apr_generate_random_bytes(r, sizeof(r)) != APR_SUCCESS) {
        /* unique enough when the system has no entropy to give */
        apr_uint64_t t = (apr_uint64_t)apr_time_now();
        apr_uint32_t c = counter++;
        memcpy(r, &t, sizeof(t));
        memcpy(r + sizeof(t), &c, sizeof(c));
    }
    memcpy(buf, "chatcmpl-", 9);
    for (i = 0; i < sizeof(r); i++) {
        buf[9 + 2 * i] = hex[r[i] >> 4];
        buf[10 + 2 * i] = hex[r[i] & 15];
    }
    buf[9 + 2 * sizeof(r)] = '\0';
}

/* Gemini gives no ids (older models): ours must be unique within the
 * response and stable between a chunk and the final message. */
static json_t *tool_call_id(json_t *fc, const char *response_id, long n)
{
    json_t *id = json_object_get(fc, "id");
    char buf[320];
    if (json_is_string(id) && json_string_length(id)) {
        return json_incref(id);
    }
    snprintf(buf, sizeof(buf), "call_%s_%ld", response_id, n);
    return json_string(buf);
}

/* A call a client can make has a name: a functionCall part without one is
 * a streamed continuation (Vertex partialArgs) or garbage, never a call. */
int mn_gm_has_name(json_t *fc)
{
    json_t *name = json_object_get(fc, "name");
    return json_is_string(name) && json_string_length(name) > 0;
}

/* fc must have a name (mn_gm_has_name).  Steals arguments (a JSON string). */
json_t *mn_gm_tool_call_json(json_t *fc, const char *response_id, long n, int with_index,
                             json_t *arguments)
{
    json_t *tc = json_object();
    if (with_index) {
        json_object_set_new(tc, "index", json_integer(n));
    }
    json_object_set_new(tc, "id", tool_call_id(fc, response_id, n));
    json_object_set_new(tc, "type", json_string("function"));
    json_object_set_new(tc, "function",
                        json_pack("{s:O,s:o}", "name", json_object_get(fc, "name"),
                                  "arguments", arguments));
    return tc;
}

static int is_gemini_response(json_t *root)
{
    return json_is_object(root)
        && (json_is_array(json_object_get(root, "candidates"))
            || json_is_object(json_object_get(root, "promptFeedback")));
}

/* The assistant message from candidates[0]'s parts; *ncalls: its tool calls. */
static json_t *answer_message(mn_wire_ctx *ctx, json_t *parts, const char *rid, long *ncalls)
{
    json_t *part, *message, *calls = json_array();
    mn_buf text, reasoning;
    size_t i;

    mn_buf_init(&text);
    mn_buf_init(&reasoning);
    json_array_foreach(parts, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");
        if (json_is_string(t)) {
            mn_buf *b = mn_gm_part_is_thought(part) ? &reasoning : &text;
            mn_buf_append(b, json_string_value(t), json_string_length(t));
        }
        else if (json_is_object(fc) && mn_gm_has_name(fc)) {
            json_t *args = mn_gm_args_string(json_object_get(fc, "args"));
            json_t *tc = mn_gm_tool_call_json(fc, rid, (*ncalls)++, 0, args);
            mn_agent_gemini_sign_call(ctx->pool, tc, part);
            json_array_append_new(calls, tc);
        }
    }
    message = json_pack("{s:s,s:o,s:n}", "role", "assistant", "content",
                        text.len ? json_stringn(text.data, text.len) : json_null(), "refusal");
    if (reasoning.len && ctx->provider && ctx->provider->reasoning_content) {
        json_object_set_new(message, "reasoning_content",
                            json_stringn(reasoning.data, reasoning.len));
    }
    if (json_array_size(calls)) {
        json_object_set(message, "tool_calls", calls);
    }
    json_decref(calls);
    mn_buf_free(&text);
    mn_buf_free(&reasoning);
    return message;
}

int mn_gm_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                          json_t **out, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *cand, *parts, *message, *res, *choice;
    const char *rid, *model, *fr;
    char made_id[GM_ID_SIZE];
    gm_usage gu;
    long ncalls = 0;

    if (!is_gemini_response(root)) {
        if (mn_gm_error_from_body(err, 0, root) == 0) {
            err->status = 502;
            scrub_key(ctx, err);
        }
        else {
            mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                         "upstream answered 200 with a body that is not a Gemini response");
        }
        json_decref(root);
        return -1;
    }
    rid = json_string_value(json_object_get(root, "responseId"));
    if (!rid || !*rid) {
        mn_gm_make_response_id(made_id);
        rid = made_id;
    }
    model = json_string_value(json_object_get(root, "modelVersion"));
    model = model ? model : ctx->model;
    cand = json_array_get(json_object_get(root, "candidates"), 0);
    parts = json_object_get(json_object_get(cand, "content"), "parts");

    message = answer_message(ctx, parts, rid, &ncalls);

    if (!cand && json_is_string(json_object_get(json_object_get(root, "promptFeedback"),
                                                "blockReason"))) {
        fr = "content_filter";
    }
    else {
        fr = mn_gm_map_finish(ctx, json_string_value(json_object_get(cand, "finishReason")), ncalls > 0);
    }
    choice = json_pack("{s:i,s:o,s:n,s:s}", "index", 0, "message", message, "logprobs",
                       "finish_reason", fr);

    memset(&gu, 0, sizeof(gu));
    mn_gm_usage_read(&gu, json_object_get(root, "usageMetadata"));
    mn_gm_usage_counts(&gu, usage);

    res = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", rid, "object", "chat.completion",
                    "created", (json_int_t)ctx->created, "model", model ? model : "",
                    "choices", choice, "usage", mn_gm_usage_json(&gu));
    json_decref(root);
    mn_chunk_tag(res, ctx->provider_name);
    if (!res) {
        return mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                            "upstream response could not be translated");
    }
    *out = res;
    return 0;
}
