/* Gemini wire, request: a policy-checked OpenAI chat request -> the
 * generateContent / streamGenerateContent body, path and headers; and the
 * mn_wire_gemini vtable joining the four Gemini units (see mn_gemini.h).
 * Mapping decisions: docs/wire-gemini.md. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_gemini.h"
#include "mn_sigid.h"

/* apr_psprintf has no %zu; message params are built with the C formatter. */
static const char *pfmt(apr_pool_t *p, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

static const char *pfmt(apr_pool_t *p, const char *fmt, ...)
{
    char buf[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    return apr_pstrdup(p, buf);
}

/* ------------------------------------------------------------------------ */
/* Request                                                                   */

typedef struct enc_state {
    mn_wire_ctx *ctx;
    mn_error *err;
    json_t *contents;       /* Gemini turns */
    json_t *sys_parts;      /* systemInstruction parts */
    json_t *call_names;     /* tool_call id -> function name, from assistant turns */
} enc_state;

/* Consecutive messages of one Gemini role become one turn: Gemini wants
 * alternating turns, and tool results must sit together after the call. */
static void append_turn(enc_state *es, const char *role, json_t *parts)
{
    size_t n = json_array_size(es->contents);
    json_t *last = n ? json_array_get(es->contents, n - 1) : NULL;

    if (json_array_size(parts) == 0) {
        json_decref(parts);
        return;
    }
    if (last && !strcmp(json_string_value(json_object_get(last, "role")), role)) {
        json_array_extend(json_object_get(last, "parts"), parts);
        json_decref(parts);
        return;
    }
    json_array_append_new(es->contents, json_pack("{s:s,s:o}", "role", role, "parts", parts));
}

static void add_text_part(json_t *parts, json_t *text)
{
    /* Gemini rejects empty text parts */
    if (json_string_length(text) > 0) {
        json_array_append_new(parts, json_pack("{s:O}", "text", text));
    }
}

/* Text of a content that may only hold text (system, developer, tool):
 * appended to parts one part per text, or joined into *joined. */
static int text_only_content(enc_state *es, json_t *content, size_t mi,
                             json_t *parts, mn_buf *joined)
{
    size_t j;
    json_t *part;

    if (!content || json_is_null(content)) {
        return 0;
    }
    if (json_is_string(content)) {
        if (parts) {
            add_text_part(parts, content);
        }
        else if (joined) {
            mn_buf_append(joined, json_string_value(content), json_string_length(content));
        }
        return 0;
    }
    if (!json_is_array(content)) {
        char param[64];
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        return bad_param(es->err, param, "expected a string or an array of text parts");
    }
    json_array_foreach(content, j, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        json_t *text = json_object_get(part, "text");
        if (!type || strcmp(type, "text") || !json_is_string(text)) {
            char param[80];
            snprintf(param, sizeof(param), "messages[%zu].content[%zu]", mi, j);
            return bad_param(es->err, param, "only text parts are allowed in this message");
        }
        if (parts) {
            add_text_part(parts, text);
        }
        else if (joined) {
            mn_buf_append(joined, json_string_value(text), json_string_length(text));
        }
    }
    return 0;
}

static const char *guess_image_mime(const char *url)
{
    static const struct { const char *ext; const char *mime; } types[] = {
        { "png", "image/png" }, { "jpg", "image/jpeg" }, { "jpeg", "image/jpeg" },
        { "gif", "image/gif" }, { "webp", "image/webp" }, { "heic", "image/heic" },
        { "heif", "image/heif" },
    };
    const char *path = strstr(url, "://");
    size_t end, i, dot = 0, slash = 0;

    path = path ? path + 3 : url;
    end = strcspn(path, "?#");
    for (i = 0; i < end; i++) {
        if (path[i] == '/') {
            slash = i;
        }
        else if (path[i] == '.') {
            dot = i;
        }
    }
    if (dot > slash && slash > 0) {
        size_t elen = end - dot - 1;
        for (i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
            if (strlen(types[i].ext) == elen && !ci_neq(path + dot + 1, types[i].ext, elen)) {
                return types[i].mime;
            }
        }
    }
    return "image/jpeg";
}

/* RFC 2397: data:[<mediatype>][;param]*[;base64],<data>.  The media type
 * stops at the first ';' or ','; Gemini wants base64, so the last parameter
 * must be "base64". */
static json_t *data_url_part(enc_state *es, const char *url, const char *param)
{
    char mime[128];
    const char *data, *why;

    if (mn_data_url(url, mime, sizeof(mime), &data, &why)) {
        bad_param(es->err, param, "%s", why);
        return NULL;
    }
    return json_pack("{s:{s:s,s:s}}", "inlineData", "mimeType", mime, "data", data);
}

static json_t *image_part(enc_state *es, json_t *part, const char *pparam)
{
    json_t *iu = json_object_get(part, "image_url");
    json_t *u = json_is_object(iu) ? json_object_get(iu, "url") : iu;
    const char *url = json_string_value(u);
    const char *param = apr_pstrcat(es->ctx->pool, pparam, ".image_url.url", NULL);

    if (!url || !*url) {
        bad_param(es->err, param, "expected an image URL");
        return NULL;
    }
    if (has_prefix_ci(url, "data:")) {
        return data_url_part(es, url, param);
    }
    if (has_prefix_ci(url, "https://") || has_prefix_ci(url, "http://")
        || has_prefix_ci(url, "gs://")) {
        return json_pack("{s:{s:s,s:s}}", "fileData", "mimeType", guess_image_mime(url),
                         "fileUri", url);
    }
    bad_param(es->err, param, "image URLs must be data:, http(s):// or gs:// URLs");
    return NULL;
}

static json_t *file_part(enc_state *es, json_t *part, const char *pparam)
{
    json_t *f = json_object_get(part, "file");
    const char *fd = json_string_value(json_object_get(f, "file_data"));
    const char *param = apr_pstrcat(es->ctx->pool, pparam, ".file.file_data", NULL);

    if (fd && has_prefix_ci(fd, "data:")) {
        return data_url_part(es, fd, param);
    }
    bad_param(es->err, param, "Gemini takes files only as a data: URL in file_data");
    return NULL;
}

static int user_parts(enc_state *es, json_t *content, size_t mi, json_t *parts)
{
    size_t j;
    json_t *part;

    if (!content || json_is_null(content)) {
        return 0;
    }
    if (json_is_string(content)) {
        add_text_part(parts, content);
        return 0;
    }
    if (!json_is_array(content)) {
        char param[64];
        snprintf(param, sizeof(param), "messages[%zu].content", mi);
        return bad_param(es->err, param, "expected a string or an array of parts");
    }
    json_array_foreach(content, j, part) {
        const char *type = json_string_value(json_object_get(part, "type"));
        const char *pparam = pfmt(es->ctx->pool, "messages[%zu].content[%zu]", mi, j);
        json_t *gp = NULL;

        if (!type) {
            return bad_param(es->err, pparam, "expected a part object with a type");
        }
        if (!strcmp(type, "text")) {
            json_t *text = json_object_get(part, "text");
            if (!json_is_string(text)) {
                return bad_param(es->err, apr_pstrcat(es->ctx->pool, pparam, ".text", NULL),
                                 "expected a string");
            }
            add_text_part(parts, text);
            continue;
        }
        if (!strcmp(type, "input_audio")) {
            continue;   /* product policy: audio input is dropped, not mapped */
        }
        if (!strcmp(type, "image_url")) {
            gp = image_part(es, part, pparam);
        }
        else if (!strcmp(type, "file")) {
            gp = file_part(es, part, pparam);
        }
        else {
            return bad_param(es->err, apr_pstrcat(es->ctx->pool, pparam, ".type", NULL),
                             "content part type '%s' is not supported by Gemini", type);
        }
        if (!gp) {
            return -1;
        }
        json_array_append_new(parts, gp);
    }
    return 0;
}

static int assistant_parts(enc_state *es, json_t *msg, size_t mi, json_t *parts)
{
    json_t *content = json_object_get(msg, "content");
    json_t *calls = json_object_get(msg, "tool_calls");
    json_t *call;
    size_t j;

    if (json_is_string(content)) {
        add_text_part(parts, content);
    }
    else if (json_is_array(content)) {
        json_t *part;
        json_array_foreach(content, j, part) {
            const char *type = json_string_value(json_object_get(part, "type"));
            if (type && !strcmp(type, "text") && json_is_string(json_object_get(part, "text"))) {
                add_text_part(parts, json_object_get(part, "text"));
            }
            else if (!type || strcmp(type, "refusal")) {
                return bad_param(es->err,
                                 pfmt(es->ctx->pool, "messages[%zu].content[%zu]", mi, j),
                                 "assistant content parts must be text or refusal");
            }
        }
    }
    if (!calls || json_is_null(calls)) {
        return 0;
    }
    if (!json_is_array(calls)) {
        return bad_param(es->err, pfmt(es->ctx->pool, "messages[%zu].tool_calls", mi),
                         "expected an array");
    }
    json_array_foreach(calls, j, call) {
        json_t *fn = json_object_get(call, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *id = json_object_get(call, "id");
        json_t *argv = json_object_get(fn, "arguments");
        const char *pfx = pfmt(es->ctx->pool, "messages[%zu].tool_calls[%zu]", mi, j);
        json_t *args, *part;
        const char *sig;

        if (!json_is_string(name) || !json_string_length(name)) {
            return bad_param(es->err, apr_pstrcat(es->ctx->pool, pfx, ".function.name", NULL),
                             "expected a function name");
        }
        if (!argv || json_is_null(argv)
            || (json_is_string(argv) && strspn(json_string_value(argv), " \t\r\n")
                                         == json_string_length(argv))) {
            args = json_object();
        }
        else {
            args = json_is_string(argv)
                ? json_loadb(json_string_value(argv), json_string_length(argv), 0, NULL)
                : NULL;
            if (!json_is_object(args)) {
                json_decref(args);
                return bad_param(es->err,
                                 apr_pstrcat(es->ctx->pool, pfx, ".function.arguments", NULL),
                                 "arguments must be a JSON object encoded as a string");
            }
        }
        part = json_pack("{s:{s:O,s:o}}", "functionCall", "name", name, "args", args);
        sig = mn_agent_gemini_call_signature(es->ctx->pool, call, j);
        if (sig) {
            /* a forged id can decode to bytes that are no JSON string */
            json_t *sv = json_string(sig);
            if (!sv && j == 0) {
                sv = json_string(MN_SIGID_PLACEHOLDER);
            }
            if (sv) {
                json_object_set_new(part, "thoughtSignature", sv);
            }
        }
        json_array_append_new(parts, part);
        if (json_is_string(id)) {
            json_object_set(es->call_names, json_string_value(id), name);
        }
    }
    return 0;
}

static int tool_part(enc_state *es, json_t *msg, size_t mi, json_t *parts)
{
    const char *role = json_string_value(json_object_get(msg, "role"));
    json_t *name;
    mn_buf out;
    json_t *part;

    if (!strcmp(role, "tool")) {
        json_t *id = json_object_get(msg, "tool_call_id");
        name = json_is_string(id) ? json_object_get(es->call_names, json_string_value(id)) : NULL;
        if (!name) {
            return bad_param(es->err,
                             pfmt(es->ctx->pool, "messages[%zu].tool_call_id", mi),
                             "tool_call_id '%s' does not match a tool call of an earlier "
                             "assistant message", json_is_string(id) ? json_string_value(id) : "");
        }
    }
    else {      /* legacy role "function" names the function itself */
        name = json_object_get(msg, "name");
        if (!json_is_string(name) || !json_string_length(name)) {
            return bad_param(es->err, pfmt(es->ctx->pool, "messages[%zu].name", mi),
                             "expected the function name");
        }
    }
    mn_buf_init(&out);
    if (text_only_content(es, json_object_get(msg, "content"), mi, NULL, &out)) {
        mn_buf_free(&out);
        return -1;
    }
    part = json_pack("{s:{s:O,s:{s:s%}}}", "functionResponse", "name", name, "response",
                     "output", out.data ? out.data : "", out.len);
    mn_buf_free(&out);
    if (!part) {
        return bad_param(es->err, pfmt(es->ctx->pool, "messages[%zu].content", mi),
                         "tool output is not valid UTF-8");
    }
    json_array_append_new(parts, part);
    return 0;
}

static int encode_messages(enc_state *es, json_t *messages)
{
    size_t i;
    json_t *msg;

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        return bad_param(es->err, "messages", "expected a non-empty array of messages");
    }
    json_array_foreach(messages, i, msg) {
        const char *role = json_string_value(json_object_get(msg, "role"));
        json_t *parts = json_array();
        const char *grole = "user";
        int rc;

        if (!role) {
            json_decref(parts);
            return bad_param(es->err, pfmt(es->ctx->pool, "messages[%zu].role", i),
                             "expected a role string");
        }
        if (!strcmp(role, "system") || !strcmp(role, "developer")) {
            rc = text_only_content(es, json_object_get(msg, "content"), i, es->sys_parts, NULL);
            json_decref(parts);
            if (rc) {
                return -1;
            }
            continue;
        }
        if (!strcmp(role, "user")) {
            rc = user_parts(es, json_object_get(msg, "content"), i, parts);
        }
        else if (!strcmp(role, "assistant")) {
            grole = "model";
            rc = assistant_parts(es, msg, i, parts);
        }
        else if (!strcmp(role, "tool") || !strcmp(role, "function")) {
            rc = tool_part(es, msg, i, parts);
        }
        else {
            json_decref(parts);
            return bad_param(es->err, pfmt(es->ctx->pool, "messages[%zu].role", i),
                             "role '%s' is not supported", role);
        }
        if (rc) {
            json_decref(parts);
            return -1;
        }
        append_turn(es, grole, parts);
    }
    if (json_array_size(es->contents) == 0) {
        return bad_param(es->err, "messages",
                         "at least one user or assistant message with content is required");
    }
    return 0;
}

static int set_number(json_t *req, const char *from, json_t *gc, const char *to,
                      int integer, mn_error *err)
{
    json_t *v = json_object_get(req, from);
    if (!v || json_is_null(v)) {
        return 0;
    }
    if (integer ? !json_is_integer(v) : !json_is_number(v)) {
        return bad_param(err, from, "expected %s", integer ? "an integer" : "a number");
    }
    json_object_set(gc, to, v);
    return 0;
}

static json_t *thinking_config(json_t *gc)
{
    json_t *tc = json_object_get(gc, "thinkingConfig");
    if (!json_is_object(tc)) {
        tc = json_object();
        json_object_set_new(gc, "thinkingConfig", tc);
    }
    return tc;
}

static int encode_generation_config(mn_wire_ctx *ctx, json_t *req, json_t *gc,
                                    schema_budget *budget, mn_error *err)
{
    json_t *v;

    if (set_number(req, "temperature", gc, "temperature", 0, err)
        || set_number(req, "top_p", gc, "topP", 0, err)
        || set_number(req, "top_k", gc, "topK", 1, err)
        || set_number(req, "seed", gc, "seed", 1, err)
        || set_number(req, "presence_penalty", gc, "presencePenalty", 0, err)
        || set_number(req, "frequency_penalty", gc, "frequencyPenalty", 0, err)) {
        return -1;
    }
    v = json_object_get(req, "max_completion_tokens");
    if (v && !json_is_null(v)) {
        if (set_number(req, "max_completion_tokens", gc, "maxOutputTokens", 1, err)) {
            return -1;
        }
    }
    else if (set_number(req, "max_tokens", gc, "maxOutputTokens", 1, err)) {
        return -1;
    }

    v = json_object_get(req, "stop");
    if (json_is_string(v)) {
        json_object_set_new(gc, "stopSequences", json_pack("[O]", v));
    }
    else if (json_is_array(v)) {
        size_t i;
        json_t *s;
        json_array_foreach(v, i, s) {
            if (!json_is_string(s)) {
                return bad_param(err, "stop", "expected a string or an array of strings");
            }
        }
        if (json_array_size(v)) {
            json_object_set_new(gc, "stopSequences", json_copy(v));
        }
    }
    else if (v && !json_is_null(v)) {
        return bad_param(err, "stop", "expected a string or an array of strings");
    }

    v = json_object_get(req, "response_format");
    if (json_is_object(v)) {
        const char *type = json_string_value(json_object_get(v, "type"));
        if (!type) {
            return bad_param(err, "response_format.type", "expected a string");
        }
        if (!strcmp(type, "json_object")) {
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
        }
        else if (!strcmp(type, "json_schema")) {
            json_t *schema = json_object_get(json_object_get(v, "json_schema"), "schema");
            json_object_set_new(gc, "responseMimeType", json_string("application/json"));
            if (json_is_object(schema) && mn_agent_gemini_levels(ctx->model)) {
                /* Gemini 3 reads JSON Schema itself: nothing to reduce */
                json_object_set(gc, "responseJsonSchema", schema);
            }
            else if (json_is_object(schema)) {
                json_t *c = mn_gm_schema_clean(schema, "response_format.json_schema.schema",
                                              budget, err);
                if (!c) {
                    return -1;
                }
                json_object_set_new(gc, "responseSchema", c);
            }
        }
        else if (strcmp(type, "text")) {
            return bad_param(err, "response_format.type",
                             "response_format type '%s' is not supported by Gemini", type);
        }
    }
    else if (v && !json_is_null(v)) {
        return bad_param(err, "response_format", "expected an object");
    }

    v = json_object_get(req, "reasoning_effort");
    if (json_is_string(v)) {
        if (mn_agent_gemini_effort(ctx->model, json_string_value(v), thinking_config(gc))) {
            return bad_param(err, "reasoning_effort", "unknown reasoning_effort '%s'",
                             json_string_value(v));
        }
    }
    else if (v && !json_is_null(v)) {
        return bad_param(err, "reasoning_effort", "expected a string");
    }
    if (ctx->provider && ctx->provider->reasoning_content) {
        json_object_set_new(thinking_config(gc), "includeThoughts", json_true());
    }
    return 0;
}

/* An object schema without properties: Gemini rejects it as parameters. */
static int empty_object_schema(json_t *s)
{
    json_t *type = json_object_get(s, "type");
    json_t *props = json_object_get(s, "properties");
    return json_is_string(type) && json_string_length(type) == 6
        && !ci_neq(json_string_value(type), "object", 6)
        && json_object_size(props) == 0 && !json_object_get(s, "anyOf");
}

static int name_allowed(json_t *allowed, const char *name)
{
    size_t i;
    json_t *a;
    if (!allowed) {
        return 1;
    }
    json_array_foreach(allowed, i, a) {
        if (!strcmp(json_string_value(a), name)) {
            return 1;
        }
    }
    return 0;
}

/* allowed: when not NULL, only these function names are declared (the
 * `allowed_tools` choice with mode auto, which Gemini cannot say otherwise). */
static int encode_tools(json_t *req, json_t *body, json_t *allowed, schema_budget *budget,
                        mn_error *err)
{
    json_t *tools = json_object_get(req, "tools");
    json_t *decls, *tool;
    size_t i;
    char param[64];

    if (!tools || json_is_null(tools)) {
        return 0;
    }
    if (!json_is_array(tools)) {
        return bad_param(err, "tools", "expected an array");
    }
    decls = json_array();
    json_array_foreach(tools, i, tool) {
        const char *type = json_string_value(json_object_get(tool, "type"));
        json_t *fn = json_object_get(tool, "function");
        json_t *name = json_object_get(fn, "name");
        json_t *desc = json_object_get(fn, "description");
        json_t *params = json_object_get(fn, "parameters");
        json_t *decl;

        if (!type || strcmp(type, "function")) {
            json_decref(decls);
            snprintf(param, sizeof(param), "tools[%zu].type", i);
            return bad_param(err, param, "only function tools can be sent to Gemini");
        }
        if (!json_is_string(name) || !json_string_length(name)) {
            json_decref(decls);
            snprintf(param, sizeof(param), "tools[%zu].function.name", i);
            return bad_param(err, param, "expected a function name");
        }
        if (!name_allowed(allowed, json_string_value(name))) {
            continue;
        }
        decl = json_pack("{s:O}", "name", name);
        if (json_is_string(desc)) {
            json_object_set(decl, "description", desc);
        }
        if (json_is_object(params)) {
            json_t *c;
            snprintf(param, sizeof(param), "tools[%zu].function.parameters", i);
            c = mn_gm_schema_clean(params, param, budget, err);
            if (!c) {
                json_decref(decl);
                json_decref(decls);
                return -1;
            }
            if (empty_object_schema(c)) {
                json_decref(c);
            }
            else {
                json_object_set_new(decl, "parameters", c);
            }
        }
        json_array_append_new(decls, decl);
    }
    if (json_array_size(decls)) {
        json_object_set_new(body, "tools", json_pack("[{s:o}]", "functionDeclarations", decls));
    }
    else {
        json_decref(decls);
    }
    return 0;
}

/* Sets *allowed_out (new reference or NULL) for encode_tools. */
static int encode_tool_choice(json_t *req, json_t *body, json_t **allowed_out, mn_error *err)
{
    json_t *tc = json_object_get(req, "tool_choice");
    json_t *fcc;

    *allowed_out = NULL;
    if (!tc || json_is_null(tc)) {
        return 0;
    }
    if (json_is_string(tc)) {
        const char *s = json_string_value(tc);
        const char *mode = !strcmp(s, "auto") ? "AUTO" : !strcmp(s, "none") ? "NONE"
                         : !strcmp(s, "required") ? "ANY" : NULL;
        if (!mode) {
            return bad_param(err, "tool_choice", "unknown tool_choice '%s'", s);
        }
        fcc = json_pack("{s:s}", "mode", mode);
    }
    else if (json_is_object(tc)) {
        const char *type = json_string_value(json_object_get(tc, "type"));
        if (type && !strcmp(type, "function")) {
            json_t *name = json_object_get(json_object_get(tc, "function"), "name");
            if (!json_is_string(name)) {
                return bad_param(err, "tool_choice.function.name", "expected a function name");
            }
            fcc = json_pack("{s:s,s:[O]}", "mode", "ANY", "allowedFunctionNames", name);
        }
        else if (type && !strcmp(type, "allowed_tools")) {
            json_t *at = json_object_get(tc, "allowed_tools");
            const char *mode = json_string_value(json_object_get(at, "mode"));
            json_t *list = json_object_get(at, "tools");
            json_t *names = json_array();
            json_t *t;
            size_t i;
            json_array_foreach(list, i, t) {
                json_t *name = json_object_get(json_object_get(t, "function"), "name");
                if (!json_is_string(name)) {
                    json_decref(names);
                    return bad_param(err, "tool_choice.allowed_tools.tools",
                                     "expected function tools with names");
                }
                json_array_append(names, name);
            }
            if (mode && !strcmp(mode, "required")) {
                fcc = json_pack("{s:s,s:o}", "mode", "ANY", "allowedFunctionNames", names);
            }
            else if (mode && !strcmp(mode, "auto")) {
                /* allowedFunctionNames is only valid with ANY: declare fewer tools instead */
                fcc = json_pack("{s:s}", "mode", "AUTO");
                *allowed_out = names;
            }
            else {
                json_decref(names);
                return bad_param(err, "tool_choice.allowed_tools.mode",
                                 "expected \"auto\" or \"required\"");
            }
        }
        else {
            return bad_param(err, "tool_choice.type", "tool_choice type '%s' is not supported "
                             "by Gemini", type ? type : "");
        }
    }
    else {
        return bad_param(err, "tool_choice", "expected a string or an object");
    }
    json_object_set_new(body, "toolConfig", json_pack("{s:o}", "functionCallingConfig", fcc));
    return 0;
}

/* Members we translate, and OpenAI members with no Gemini analogue: neither
 * kind is copied into the body as it is. */
static const char *const handled_params[] = {
    "model", "messages", "temperature", "top_p", "top_k", "max_tokens",
    "max_completion_tokens", "stop", "seed", "presence_penalty", "frequency_penalty",
    "response_format", "reasoning_effort", "tools", "tool_choice",
    /* dropped */
    "n", "logit_bias", "logprobs", "top_logprobs", "user", "store", "stream",
    "stream_options", "parallel_tool_calls", "service_tier", "metadata", "prediction",
    "prompt_cache_key", "prompt_cache_retention", "prompt_cache_options", "moderation",
    "safety_identifier", "verbosity", "modalities", "audio", "web_search_options",
    "functions", "function_call", NULL
};

/* The model goes into the path: keep it one path segment. */
static const char *model_segment(apr_pool_t *p, const char *model)
{
    static const char hex[] = "0123456789ABCDEF";
    char *out, *o;
    const char *s;

    if (!strncmp(model, "models/", 7)) {
        model += 7;
    }
    out = o = apr_palloc(p, strlen(model) * 3 + 1);
    for (s = model; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (a_alnum(c) || c == '-' || c == '.' || c == '_' || c == '~') {
            *o++ = (char)c;
        }
        else {
            *o++ = '%';
            *o++ = hex[c >> 4];
            *o++ = hex[c & 15];
        }
    }
    *o = '\0';
    return out;
}

static int gemini_encode(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out, mn_error *err)
{
    enc_state es;
    schema_budget budget = { 0, 0, ctx->max_schema_expansion };
    json_t *body = json_object();
    json_t *gc, *allowed = NULL, *v;
    const char *key;
    char *text;
    int rc = -1;

    if (!json_is_object(req)) {
        json_decref(body);
        return bad_param(err, NULL, "The request body must be a JSON object");
    }
    es.ctx = ctx;
    es.err = err;
    es.contents = json_array();
    es.sys_parts = json_array();
    es.call_names = json_object();

    v = json_object_get(req, "generationConfig");
    gc = json_is_object(v) ? json_deep_copy(v) : json_object();
    json_object_foreach(req, key, v) {
        if (!in_list(key, handled_params)) {
            json_object_set(body, key, v);
        }
    }
    if (encode_messages(&es, json_object_get(req, "messages"))
        || encode_generation_config(ctx, req, gc, &budget, err)
        || encode_tool_choice(req, body, &allowed, err)
        || encode_tools(req, body, allowed, &budget, err)) {
        goto done;
    }
    if (json_array_size(es.sys_parts)) {
        json_object_set_new(body, "systemInstruction", json_pack("{s:O}", "parts", es.sys_parts));
    }
    json_object_set(body, "contents", es.contents);
    if (json_object_size(gc)) {
        json_object_set(body, "generationConfig", gc);
    }
    else {
        json_object_del(body, "generationConfig");
    }

    text = mn_wire_dump(ctx->pool, body, &out->body_len);
    if (!text) {
        mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
        goto done;
    }
    out->body = text;
    out->path = apr_pstrcat(ctx->pool, "/models/", model_segment(ctx->pool, ctx->model),
                            ctx->stream ? ":streamGenerateContent?alt=sse" : ":generateContent",
                            NULL);
    out->headers = apr_table_make(ctx->pool, 4);
    apr_table_setn(out->headers, "Content-Type", "application/json");
    if (ctx->provider && ctx->provider->key && *ctx->provider->key) {
        apr_table_setn(out->headers, "x-goog-api-key", ctx->provider->key);
    }
    rc = 0;
done:
    json_decref(allowed);
    json_decref(gc);
    json_decref(es.contents);
    json_decref(es.sys_parts);
    json_decref(es.call_names);
    json_decref(body);
    return rc;
}

const mn_wire mn_wire_gemini = {
    .name = "gemini",
    .encode_request = gemini_encode,
    .decode_response = mn_gm_decode_response,
    .decode_error = mn_gm_decode_error,
    .stream_create = mn_gm_stream_create,
    .stream_feed = mn_gm_stream_feed,
    .stream_end = mn_gm_stream_end,
    .stream_usage = mn_stream_base_usage,
    .stream_error = mn_stream_base_error,
    .stream_destroy = mn_gm_stream_destroy,
    /* .decode_response_bytes = NULL: the tree is new anyway */
};

