/* The Responses face, request side: a stateless Responses request becomes
 * the chat request the rest of the pipeline takes (see
 * include/mn_face_responses.h).
 *
 * - instructions: a leading system message; input: a string is one user
 *   message, an array is replayed item by item: messages keep their role,
 *   consecutive function_call items join the assistant message before them
 *   as tool_calls, function_call_output items become tool messages.
 * - Server-side state cannot be honoured: previous_response_id,
 *   conversation, store: true, prompt and background: true are 400s naming
 *   the field (an absent store is served as false: nothing is kept), unless
 *   every target forwards to an upstream that keeps it (MN_RESP_STATEFUL).
 * - What has no chat analogue is dropped and listed (maniac-dropped):
 *   non-function tools (tools.web_search, tools.namespace...), input
 *   reasoning items, input files, text.verbosity, unknown members.
 * - Members that only steer OpenAI's own storage or caching (include,
 *   prompt_cache_key, client_metadata, service_tier, truncation,
 *   safety_identifier, reasoning.summary) are ignored without a note. */
#include <string.h>
#include <apr_strings.h>
#include "mn_face_responses.h"

typedef struct {
    apr_pool_t *p;
    int flags;               /* MN_RESP_* */
    mn_resp_req *out;
    mn_error *err;
    json_t *messages;
    json_t *thinking;        /* replayed thinking_blocks for the next assistant turn */
} req_map;

static int bad(mn_error *err, const char *param, const char *msg)
{
    return mn_error_set(err, 400, "invalid_request_error", param, NULL, "%s %s", param, msg);
}

static void note(req_map *m, const char *name)
{
    int i;
    for (i = 0; i < m->out->ndropped; i++) {
        if (!strcmp(m->out->dropped[i], name)) {
            return;
        }
    }
    if (m->out->ndropped < MN_RESP_MAX_DROPPED) {
        m->out->dropped[m->out->ndropped++] = name;
    }
}

/* Text of a content that must be plain text (system, assistant, tool):
 * a string, or its text-bearing parts joined; other parts are noted. */
static int content_text(req_map *m, json_t *content, const char *param, json_t **text)
{
    size_t i;
    json_t *part;
    const char *acc = "";

    if (json_is_string(content)) {
        *text = json_incref(content);
        return 0;
    }
    if (!json_is_array(content)) {
        return bad(m->err, param, "must be a string or an array of content parts");
    }
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *t = json_object_get(part, !type || strcmp(type, "refusal") ? "text" : "refusal");
        if (!type) {
            return bad(m->err, param, "has a part without a type");
        }
        if (json_is_string(t)) {
            acc = apr_pstrcat(m->p, acc, json_string_value(t), NULL);
        }
        else {
            note(m, apr_pstrcat(m->p, "input.", type, NULL));
        }
    }
    *text = json_string(acc);
    return 0;
}

/* User content: text and image parts kept as chat parts. */
static int user_content(req_map *m, json_t *content, const char *param, json_t **chat)
{
    size_t i;
    json_t *part;

    if (json_is_string(content)) {
        *chat = json_incref(content);
        return 0;
    }
    if (!json_is_array(content)) {
        return bad(m->err, param, "must be a string or an array of content parts");
    }
    *chat = json_array();
    json_array_foreach(content, i, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        if (!type) {
            json_decref(*chat);
            return bad(m->err, param, "has a part without a type");
        }
        if ((!strcmp(type, "input_text") || !strcmp(type, "output_text"))
            && json_is_string(json_object_get(part, "text"))) {
            json_array_append_new(*chat, json_pack("{s:s,s:O}", "type", "text", "text",
                                                   json_object_get(part, "text")));
        }
        else if (!strcmp(type, "input_image")
                 && json_is_string(json_object_get(part, "image_url"))) {
            json_t *img = json_pack("{s:O}", "url", json_object_get(part, "image_url"));
            json_t *detail = json_object_get(part, "detail");
            if (json_is_string(detail)) {
                json_object_set(img, "detail", detail);
            }
            json_array_append_new(*chat, json_pack("{s:s,s:o}", "type", "image_url",
                                                   "image_url", img));
        }
        else {
            /* files, images by file_id: nothing the chat pipeline can fetch */
            note(m, apr_pstrcat(m->p, "input.", type, NULL));
        }
    }
    return 0;
}

/* A new assistant message, carrying the thinking a reasoning item before it
 * replayed. */
static json_t *new_assistant(req_map *m, json_t *content)
{
    json_t *msg = json_pack("{s:s,s:o}", "role", "assistant", "content", content);
    if (m->thinking) {
        json_object_set_new(msg, "thinking_blocks", m->thinking);
        m->thinking = NULL;
    }
    json_array_append_new(m->messages, msg);
    return msg;
}

static json_t *last_assistant(req_map *m)
{
    json_t *last = json_array_get(m->messages, json_array_size(m->messages) - 1);
    const char *role = json_string_value(json_object_get(last, "role"));
    return role && !strcmp(role, "assistant") ? last : NULL;
}

static int map_message(req_map *m, json_t *item, const char *param)
{
    const char *role = json_string_value(json_object_get(item, "role"));
    json_t *content = json_object_get(item, "content"), *chat = NULL;
    int rc;

    if (!role) {
        return bad(m->err, apr_pstrcat(m->p, param, ".role", NULL), "must be a string");
    }
    if (strcmp(role, "user") && strcmp(role, "assistant") && strcmp(role, "system")
        && strcmp(role, "developer")) {
        return bad(m->err, apr_pstrcat(m->p, param, ".role", NULL),
                   "must be user, assistant, system or developer");
    }
    param = apr_pstrcat(m->p, param, ".content", NULL);
    if (!strcmp(role, "user")) {
        rc = user_content(m, content, param, &chat);
    }
    else {
        rc = content_text(m, content, param, &chat);
    }
    if (rc) {
        return rc;
    }
    if (!strcmp(role, "assistant")) {
        new_assistant(m, chat);
        return 0;
    }
    json_array_append_new(m->messages, json_pack("{s:s,s:o}", "role", role, "content", chat));
    return 0;
}

static int map_call(req_map *m, json_t *item, const char *param)
{
    json_t *call_id = json_object_get(item, "call_id"), *name = json_object_get(item, "name");
    json_t *args = json_object_get(item, "arguments"), *asst = last_assistant(m), *calls;

    if (!json_is_string(call_id) || !json_is_string(name) || !json_is_string(args)) {
        return bad(m->err, param, "needs string call_id, name and arguments");
    }
    if (!asst) {
        asst = new_assistant(m, json_null());
    }
    calls = json_object_get(asst, "tool_calls");
    if (!calls) {
        calls = json_array();
        json_object_set_new(asst, "tool_calls", calls);
    }
    json_array_append_new(calls, json_pack("{s:O,s:s,s:{s:O,s:O}}", "id", call_id,
                                           "type", "function", "function", "name", name,
                                           "arguments", args));
    return 0;
}

static int map_call_output(req_map *m, json_t *item, const char *param)
{
    json_t *call_id = json_object_get(item, "call_id"), *text = NULL;
    int rc;

    if (!json_is_string(call_id)) {
        return bad(m->err, apr_pstrcat(m->p, param, ".call_id", NULL), "must be a string");
    }
    rc = content_text(m, json_object_get(item, "output"),
                      apr_pstrcat(m->p, param, ".output", NULL), &text);
    if (rc) {
        return rc;
    }
    json_array_append_new(m->messages, json_pack("{s:s,s:O,s:o}", "role", "tool",
                                                  "tool_call_id", call_id, "content", text));
    return 0;
}

static int map_item(req_map *m, json_t *item, size_t i)
{
    const char *param = apr_psprintf(m->p, "input[%lu]", (unsigned long)i);
    const char *type = json_string_value(json_object_get(item, "type"));

    if (!json_is_object(item)) {
        return bad(m->err, param, "must be an object");
    }
    if (!type || !strcmp(type, "message")) {
        return map_message(m, item, param);
    }
    if (!strcmp(type, "function_call")) {
        return map_call(m, item, param);
    }
    if (!strcmp(type, "function_call_output")) {
        return map_call_output(m, item, param);
    }
    if (!strcmp(type, "item_reference") && (m->flags & MN_RESP_STATEFUL)) {
        /* the upstream resolves it; the chat mapping has nothing to put there */
        note(m, "input.item_reference");
        return 0;
    }
    if (!strcmp(type, "item_reference")) {
        return bad(m->err, param, "refers to a stored item: this gateway stores nothing "
                                  "(send the whole history in input)");
    }
    if (!strcmp(type, "reasoning")) {
        json_t *blocks = mn_resp_decode_blocks(
            json_string_value(json_object_get(item, "encrypted_content")));
        if (blocks) {
            json_decref(m->thinking);
            m->thinking = blocks;
            return 0;
        }
    }
    /* reasoning without our signed blocks (no upstream can replay it), and
     * calls of tools the chat pipeline does not have */
    note(m, apr_pstrcat(m->p, "input.", type, NULL));
    return 0;
}

static int map_input(req_map *m, json_t *in)
{
    json_t *instructions = json_object_get(in, "instructions"), *input = json_object_get(in, "input");
    size_t i;
    json_t *item;

    if (instructions && !json_is_null(instructions)) {
        if (!json_is_string(instructions)) {
            return bad(m->err, "instructions", "must be a string");
        }
        json_array_append_new(m->messages, json_pack("{s:s,s:O}", "role", "system",
                                                      "content", instructions));
    }
    if (json_is_string(input)) {
        json_array_append_new(m->messages, json_pack("{s:s,s:O}", "role", "user",
                                                      "content", input));
        return 0;
    }
    if (!json_is_array(input) || !json_array_size(input)) {
        return bad(m->err, "input", "must be a non-empty string or array of items");
    }
    json_array_foreach(input, i, item) {
        if (map_item(m, item, i)) {
            return -1;
        }
    }
    return 0;
}

static int map_tools(req_map *m, json_t *in, json_t *chat, json_t *echo)
{
    json_t *tools = json_object_get(in, "tools"), *out, *kept, *t;
    size_t i;

    if (!tools || json_is_null(tools)) {
        json_object_set_new(echo, "tools", json_array());
        return 0;
    }
    if (!json_is_array(tools)) {
        return bad(m->err, "tools", "must be an array");
    }
    out = json_array();
    kept = json_array();
    json_array_foreach(tools, i, t) {
        const char *type = json_string_value(json_object_get(t, "type"));
        json_t *fn, *name = json_object_get(t, "name");
        if (!type || strcmp(type, "function")) {
            note(m, apr_pstrcat(m->p, "tools.", type ? type : "untyped", NULL));
            continue;
        }
        if (!json_is_string(name)) {
            json_decref(out);
            json_decref(kept);
            return bad(m->err, apr_psprintf(m->p, "tools[%lu].name", (unsigned long)i),
                       "must be a string");
        }
        fn = json_pack("{s:O}", "name", name);
        if (json_object_get(t, "description")) {
            json_object_set(fn, "description", json_object_get(t, "description"));
        }
        if (json_object_get(t, "parameters") && !json_is_null(json_object_get(t, "parameters"))) {
            json_object_set(fn, "parameters", json_object_get(t, "parameters"));
        }
        if (json_is_boolean(json_object_get(t, "strict"))) {
            json_object_set(fn, "strict", json_object_get(t, "strict"));
        }
        json_array_append_new(out, json_pack("{s:s,s:o}", "type", "function", "function", fn));
        json_array_append(kept, t);
    }
    if (json_array_size(out)) {
        json_object_set(chat, "tools", out);
    }
    json_decref(out);
    json_object_set_new(echo, "tools", kept);
    return 0;
}

static int map_tool_choice(req_map *m, json_t *in, json_t *chat, json_t *echo)
{
    json_t *tc = json_object_get(in, "tool_choice");
    const char *type;

    if (!tc || json_is_null(tc)) {
        json_object_set_new(echo, "tool_choice", json_string("auto"));
        return 0;
    }
    json_object_set(echo, "tool_choice", tc);
    if (json_is_string(tc)) {
        /* upstreams refuse a tool_choice without tools (all were dropped) */
        if (json_object_get(chat, "tools")) {
            json_object_set(chat, "tool_choice", tc);
        }
        return 0;
    }
    type = json_string_value(json_object_get(tc, "type"));
    if (!type) {
        return bad(m->err, "tool_choice", "must be a string or an object with a type");
    }
    if (!strcmp(type, "function") && json_is_string(json_object_get(tc, "name"))
        && json_object_get(chat, "tools")) {
        json_object_set_new(chat, "tool_choice",
                            json_pack("{s:s,s:{s:O}}", "type", "function", "function", "name",
                                      json_object_get(tc, "name")));
        return 0;
    }
    note(m, apr_pstrcat(m->p, "tool_choice.", type, NULL));
    return 0;
}

static int map_text(req_map *m, json_t *in, json_t *chat, json_t *echo)
{
    json_t *text = json_object_get(in, "text"), *fmt;
    const char *type;

    json_object_set_new(echo, "text", json_pack("{s:{s:s}}", "format", "type", "text"));
    if (!text || json_is_null(text)) {
        return 0;
    }
    if (!json_is_object(text)) {
        return bad(m->err, "text", "must be an object");
    }
    if (json_object_get(text, "verbosity") && !json_is_null(json_object_get(text, "verbosity"))) {
        note(m, "text.verbosity");
    }
    fmt = json_object_get(text, "format");
    if (!fmt || json_is_null(fmt)) {
        return 0;
    }
    type = json_string_value(json_object_get(fmt, "type"));
    if (!type) {
        return bad(m->err, "text.format.type", "must be a string");
    }
    json_object_set_new(echo, "text", json_pack("{s:O}", "format", fmt));
    if (!strcmp(type, "json_object")) {
        json_object_set_new(chat, "response_format", json_pack("{s:s}", "type", "json_object"));
    }
    else if (!strcmp(type, "json_schema")) {
        json_t *js = json_object(), *v;
        static const char *const keys[] = { "name", "description", "schema", "strict", NULL };
        int i;
        if (!json_is_object(json_object_get(fmt, "schema"))) {
            json_decref(js);
            return bad(m->err, "text.format.schema", "must be an object");
        }
        for (i = 0; keys[i]; i++) {
            if ((v = json_object_get(fmt, keys[i]))) {
                json_object_set(js, keys[i], v);
            }
        }
        json_object_set_new(chat, "response_format",
                            json_pack("{s:s,s:o}", "type", "json_schema", "json_schema", js));
    }
    else if (strcmp(type, "text")) {
        return bad(m->err, "text.format.type", "must be text, json_object or json_schema");
    }
    return 0;
}

static int map_reasoning(req_map *m, json_t *in, json_t *chat, json_t *echo)
{
    json_t *r = json_object_get(in, "reasoning"), *effort;

    json_object_set_new(echo, "reasoning", json_pack("{s:n,s:n}", "effort", "summary"));
    if (!r || json_is_null(r)) {
        return 0;
    }
    if (!json_is_object(r)) {
        return bad(m->err, "reasoning", "must be an object");
    }
    effort = json_object_get(r, "effort");
    if (json_is_string(effort)) {
        json_object_set(chat, "reasoning_effort", effort);
        json_object_set(json_object_get(echo, "reasoning"), "effort", effort);
    }
    if (json_is_string(json_object_get(r, "summary"))) {
        json_object_set(json_object_get(echo, "reasoning"), "summary",
                        json_object_get(r, "summary"));
    }
    return 0;
}

/* Members that ask for server-side state: a 400 naming the member, never a
 * silently shorter context. */
static int refuse_state(req_map *m, json_t *in)
{
    static const char *const nonnull[] = { "previous_response_id", "conversation", "prompt", NULL };
    int i;
    for (i = 0; nonnull[i] && !(m->flags & MN_RESP_STATEFUL); i++) {
        json_t *v = json_object_get(in, nonnull[i]);
        if (v && !json_is_null(v)) {
            return mn_error_set(m->err, 400, "invalid_request_error", nonnull[i], NULL,
                                "%s is not supported: this gateway stores no responses, "
                                "conversations or prompts (send store: false and the whole "
                                "history in input; only a model whose every provider has "
                                "responses=on forwards it)", nonnull[i]);
        }
    }
    if (json_is_true(json_object_get(in, "store")) && !(m->flags & MN_RESP_STATEFUL)) {
        return mn_error_set(m->err, 400, "invalid_request_error", "store", NULL,
                            "store: true is not supported: this gateway stores no responses "
                            "(send store: false and the whole history in input; only a model "
                            "whose every provider has responses=on forwards it)");
    }
    if (json_is_true(json_object_get(in, "background"))) {
        return mn_error_set(m->err, 400, "invalid_request_error", "background", NULL,
                            "background: true is not supported: it needs a stored response");
    }
    return 0;
}

/* Plain members: copied (to the chat name), ignored, or noted. */
static int copy_plain(req_map *m, json_t *in, json_t *chat, json_t *echo)
{
    static const char *const handled[] = { "model", "input", "instructions", "tools",
        "tool_choice", "text", "reasoning", "previous_response_id", "conversation", "prompt",
        "store", "background", "stream", "parallel_tool_calls", "max_output_tokens",
        "temperature", "top_p", "metadata", "tags", "trace", "user", NULL };
    static const char *const ignored[] = { "include", "prompt_cache_key", "client_metadata",
        "service_tier", "truncation", "safety_identifier", "stream_options",
        "prompt_cache_retention", NULL };
    static const struct { const char *from, *to; } copy[] = {
        { "parallel_tool_calls", "parallel_tool_calls" },
        { "max_output_tokens", "max_completion_tokens" }, { "temperature", "temperature" },
        { "top_p", "top_p" }, { "metadata", "metadata" }, { "tags", "tags" },
        { "trace", "trace" }, { "user", "user" }, { NULL, NULL } };
    static const char *const echoed[] = { "instructions", "max_output_tokens", "temperature",
        "top_p", "user", NULL };
    const char *key;
    json_t *v;
    int i;

    for (i = 0; copy[i].from; i++) {
        v = json_object_get(in, copy[i].from);
        if (v && !json_is_null(v)) {
            json_object_set(chat, copy[i].to, v);
        }
    }
    json_object_foreach(in, key, v) {
        int known = 0;
        for (i = 0; handled[i] && !known; i++) {
            known = !strcmp(key, handled[i]);
        }
        for (i = 0; ignored[i] && !known; i++) {
            known = !strcmp(key, ignored[i]);
        }
        if (!known) {
            note(m, apr_pstrdup(m->p, key));
        }
    }
    v = json_object_get(in, "parallel_tool_calls");
    json_object_set_new(echo, "parallel_tool_calls", json_boolean(!json_is_false(v)));
    for (i = 0; echoed[i]; i++) {
        v = json_object_get(in, echoed[i]);
        json_object_set_new(echo, echoed[i], v ? json_incref(v) : json_null());
    }
    v = json_object_get(in, "metadata");
    json_object_set_new(echo, "metadata", json_is_object(v) ? json_incref(v) : json_object());
    return 0;
}

int mn_resp_request(apr_pool_t *p, json_t *in, mn_resp_req *out, mn_error *err)
{
    return mn_resp_request_ex(p, in, 0, out, err);
}

int mn_resp_request_ex(apr_pool_t *p, json_t *in, int flags, mn_resp_req *out, mn_error *err)
{
    req_map m;
    json_t *model = json_object_get(in, "model"), *stream = json_object_get(in, "stream");
    int rc;

    memset(out, 0, sizeof(*out));
    m.p = p;
    m.flags = flags;
    m.out = out;
    m.err = err;
    if (!json_is_object(in)) {
        return mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                            "The request body must be a JSON object");
    }
    if (!json_is_string(model) || !json_string_length(model)) {
        return bad(err, "model", "must be a non-empty string");
    }
    if (stream && !json_is_boolean(stream) && !json_is_null(stream)) {
        return bad(err, "stream", "must be a boolean");
    }
    if (refuse_state(&m, in)) {
        return -1;
    }
    out->stream = json_is_true(stream);
    out->chat = json_pack("{s:O,s:[]}", "model", model, "messages");
    out->echo = json_pack("{s:O}", "model", model);
    m.messages = json_object_get(out->chat, "messages");
    m.thinking = NULL;
    rc = map_input(&m, in);
    /* thinking after the last assistant turn has no turn to go with */
    json_decref(m.thinking);
    if (rc || map_tools(&m, in, out->chat, out->echo)
        || map_tool_choice(&m, in, out->chat, out->echo) || map_text(&m, in, out->chat, out->echo)
        || map_reasoning(&m, in, out->chat, out->echo) || copy_plain(&m, in, out->chat, out->echo)) {
        mn_resp_req_clear(out);
        return -1;
    }
    if (out->stream) {
        /* response.completed carries usage: always ask for it */
        json_object_set_new(out->chat, "stream", json_true());
        json_object_set_new(out->chat, "stream_options", json_pack("{s:b}", "include_usage", 1));
    }
    return 0;
}

void mn_resp_req_clear(mn_resp_req *r)
{
    json_decref(r->chat);
    json_decref(r->echo);
    r->chat = r->echo = NULL;
}
