/* mn_policy: validation and the map-or-reject policy (see include/mn_policy.h). */
#include <string.h>
#include <apr_strings.h>
#include "mn_policy.h"

static int bad(mn_error *err, const char *param, const char *what)
{
    return mn_error_bad_param(err, param, "Invalid value for '%s': %s", param, what);
}

static void note_dropped(mn_policy_result *res, const char *name)
{
    int i;
    for (i = 0; i < res->ndropped; i++) {
        if (!strcmp(res->dropped[i], name)) {
            return;
        }
    }
    if (res->ndropped < MN_POLICY_MAX_DROPPED) {
        res->dropped[res->ndropped++] = name;
    }
}

typedef enum { T_NUMBER, T_INTEGER, T_BOOL, T_STRING, T_ARRAY, T_OBJECT,
               T_STRING_OR_ARRAY, T_STRING_OR_OBJECT } type_rule;

/* Standard OpenAI fields whose type we check; null is always accepted. */
static const struct { const char *name; type_rule type; } typed_fields[] = {
    { "temperature", T_NUMBER }, { "top_p", T_NUMBER },
    { "presence_penalty", T_NUMBER }, { "frequency_penalty", T_NUMBER },
    { "max_tokens", T_INTEGER }, { "max_completion_tokens", T_INTEGER },
    { "seed", T_INTEGER }, { "n", T_INTEGER },
    { "stream", T_BOOL }, { "parallel_tool_calls", T_BOOL },
    { "stream_options", T_OBJECT }, { "response_format", T_OBJECT },
    { "logit_bias", T_OBJECT },
    { "tools", T_ARRAY }, { "stop", T_STRING_OR_ARRAY },
    { "tool_choice", T_STRING_OR_OBJECT }, { "user", T_STRING },
    { "reasoning_effort", T_STRING },
};

static int type_ok(json_t *v, type_rule t)
{
    switch (t) {
    case T_NUMBER: return json_is_number(v);
    case T_INTEGER: return json_is_integer(v);
    case T_BOOL: return json_is_boolean(v);
    case T_STRING: return json_is_string(v);
    case T_ARRAY: return json_is_array(v);
    case T_OBJECT: return json_is_object(v);
    case T_STRING_OR_ARRAY: return json_is_string(v) || json_is_array(v);
    case T_STRING_OR_OBJECT: return json_is_string(v) || json_is_object(v);
    }
    return 0;
}

#define NTYPED (sizeof(typed_fields) / sizeof(typed_fields[0]))

/* The index in typed_fields of the first field (in the table's order, so
 * that the error names the same field as a lookup of each would) present
 * with a wrong type, or NTYPED.  One pass over the request's few members
 * instead of a hashed lookup per table entry. */
static size_t first_mistyped(json_t *req)
{
    size_t first = NTYPED, i;
    const char *key;
    json_t *v;
    json_object_foreach(req, key, v) {
        size_t klen = json_object_iter_key_len(json_object_key_to_iter(key));
        for (i = 0; i < first; i++) {
            const char *name = typed_fields[i].name;
            if (strlen(name) == klen && !memcmp(key, name, klen)) {
                if (!json_is_null(v) && !type_ok(v, typed_fields[i].type)) {
                    first = i;
                }
                break;
            }
        }
    }
    return first;
}

static const char *type_name(type_rule t)
{
    switch (t) {
    case T_NUMBER: return "expected a number";
    case T_INTEGER: return "expected an integer";
    case T_BOOL: return "expected a boolean";
    case T_STRING: return "expected a string";
    case T_ARRAY: return "expected an array";
    case T_OBJECT: return "expected an object";
    case T_STRING_OR_ARRAY: return "expected a string or an array";
    case T_STRING_OR_OBJECT: return "expected a string or an object";
    }
    return "wrong type";
}

int mn_policy_role_valid(const char *role)
{
    static const char *const roles[] = { "system", "developer", "user", "assistant", "tool",
                                         "function", NULL };
    int i;
    for (i = 0; roles[i]; i++) {
        if (!strcmp(role, roles[i])) {
            return 1;
        }
    }
    return 0;
}

static int check_messages(json_t *messages, unsigned keep, mn_policy_result *res,
                          mn_error *err)
{
    size_t i;
    json_t *msg;
    char param[96];

    if (!json_is_array(messages) || json_array_size(messages) == 0) {
        return bad(err, "messages", "expected a non-empty array of messages");
    }
    json_array_foreach(messages, i, msg) {
        json_t *role = json_object_get(msg, "role");
        json_t *content = json_object_get(msg, "content");
        if (!json_is_object(msg)) {
            snprintf(param, sizeof(param), "messages[%zu]", i);
            return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                                "Invalid value for '%s': expected an object", param);
        }
        if (!json_is_string(role) || !json_string_length(role)) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                                "Invalid value for '%s': expected a role string", param);
        }
        /* refused here, for every format alike: an OpenAI upstream would
         * refuse it with its own wording, a translator might guess */
        if (!mn_policy_role_valid(json_string_value(role))) {
            snprintf(param, sizeof(param), "messages[%zu].role", i);
            return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                                "Invalid value for '%s': expected one of system, developer, "
                                "user, assistant, tool, function", param);
        }
        if (content && !json_is_null(content) && !json_is_string(content)
            && !json_is_array(content)) {
            snprintf(param, sizeof(param), "messages[%zu].content", i);
            return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                                "Invalid value for '%s': expected a string or an array of parts",
                                param);
        }
        if (json_is_array(content)) {
            size_t j = 0;
            while (j < json_array_size(content)) {
                json_t *part = json_array_get(content, j);
                json_t *ptype = json_object_get(part, "type");
                if (!json_is_object(part) || !json_is_string(ptype)) {
                    snprintf(param, sizeof(param), "messages[%zu].content[%zu]", i, j);
                    return mn_error_set(err, 400, "invalid_request_error", param, NULL,
                                        "Invalid value for '%s': expected a part object with a type",
                                        param);
                }
                if (!(keep & MN_KEEP_INPUT_AUDIO)
                    && !strcmp(json_string_value(ptype), "input_audio")) {
                    json_array_remove(content, j);
                    note_dropped(res, "input_audio");
                    continue;
                }
                j++;
            }
        }
    }
    return 0;
}

static int take_extensions(json_t *req, mn_policy_result *res, mn_error *err)
{
    json_t *tags = json_object_get(req, "tags");
    json_t *metadata = json_object_get(req, "metadata");
    json_t *trace = json_object_get(req, "trace");

    if (tags && !json_is_null(tags)) {
        size_t i;
        json_t *t;
        if (!json_is_array(tags)) {
            return bad(err, "tags", "expected an array of strings");
        }
        json_array_foreach(tags, i, t) {
            if (!json_is_string(t)) {
                return bad(err, "tags", "expected an array of strings");
            }
        }
        res->tags = json_incref(tags);
    }
    if (metadata && !json_is_null(metadata)) {
        if (!json_is_object(metadata)) {
            return bad(err, "metadata", "expected an object");
        }
        res->metadata = json_incref(metadata);
    }
    if (trace && !json_is_null(trace)) {
        if (!json_is_object(trace)) {
            return bad(err, "trace", "expected an object");
        }
        res->trace = json_incref(trace);
    }
    json_object_del(req, "tags");
    json_object_del(req, "metadata");
    json_object_del(req, "trace");
    return 0;
}

int mn_policy_apply(json_t *req, unsigned keep, mn_policy_result *res, mn_error *err)
{
    json_t *model, *v, *so, *rf;
    size_t i;

    memset(res, 0, sizeof(*res));
    if (!json_is_object(req)) {
        return mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                            "The request body must be a JSON object");
    }
    model = json_object_get(req, "model");
    if (!json_is_string(model) || json_string_length(model) == 0) {
        return bad(err, "model", "expected a non-empty string such as \"provider/model\"");
    }
    if (check_messages(json_object_get(req, "messages"), keep, res, err)) {
        return -1;
    }
    if ((i = first_mistyped(req)) < NTYPED) {
        return bad(err, typed_fields[i].name, type_name(typed_fields[i].type));
    }
    v = json_object_get(req, "n");
    if (json_is_integer(v) && json_integer_value(v) > 1 && !(keep & MN_KEEP_N)) {
        return mn_error_set(err, 400, "invalid_request_error", "n", NULL,
                            "n > 1 is not supported: request one choice per call");
    }
    if (json_is_integer(v) && json_integer_value(v) < 1) {
        return bad(err, "n", "expected an integer >= 1");
    }
    if (take_extensions(req, res, err)) {
        mn_policy_result_clear(res);
        return -1;
    }
    if (!(keep & MN_KEEP_LOGPROBS) && json_object_get(req, "logprobs")) {
        json_object_del(req, "logprobs");
        note_dropped(res, "logprobs");
    }
    if (!(keep & MN_KEEP_LOGPROBS) && json_object_get(req, "top_logprobs")) {
        json_object_del(req, "top_logprobs");
        note_dropped(res, "top_logprobs");
    }
    /* input_audio parts were noted while walking messages; keep the
     * documented order of the note stable: move it after the two above */
    for (i = 0; i < (size_t)res->ndropped; i++) {
        if (!strcmp(res->dropped[i], "input_audio") && i + 1 < (size_t)res->ndropped) {
            size_t k;
            for (k = i; k + 1 < (size_t)res->ndropped; k++) {
                res->dropped[k] = res->dropped[k + 1];
            }
            res->dropped[res->ndropped - 1] = "input_audio";
            break;
        }
    }
    rf = json_object_get(req, "response_format");
    if (json_is_object(rf) && !(keep & MN_KEEP_STRICT)) {
        json_t *js = json_object_get(rf, "json_schema");
        if (json_is_object(js) && json_object_get(js, "strict")) {
            json_object_del(js, "strict");
            note_dropped(res, "response_format.json_schema.strict");
        }
    }
    res->model = json_string_value(model);
    res->stream = json_is_true(json_object_get(req, "stream"));
    so = json_object_get(req, "stream_options");
    res->include_usage = res->stream && json_is_true(json_object_get(so, "include_usage"));
    return 0;
}

void mn_policy_result_clear(mn_policy_result *res)
{
    json_decref(res->tags);
    json_decref(res->metadata);
    json_decref(res->trace);
    res->tags = res->metadata = res->trace = NULL;
}

const char *mn_policy_parse_keep(apr_pool_t *p, const char *list, unsigned *keep)
{
    static const struct { const char *name; unsigned bit; } names[] = {
        { "strict", MN_KEEP_STRICT }, { "logprobs", MN_KEEP_LOGPROBS },
        { "n", MN_KEEP_N }, { "input_audio", MN_KEEP_INPUT_AUDIO },
    };
    char *copy = apr_pstrdup(p, list), *last = NULL, *word;

    *keep = 0;
    for (word = apr_strtok(copy, ",", &last); word; word = apr_strtok(NULL, ",", &last)) {
        size_t i;
        for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
            if (!strcmp(word, names[i].name)) {
                *keep |= names[i].bit;
                break;
            }
        }
        if (i == sizeof(names) / sizeof(names[0])) {
            return apr_psprintf(p, "bad keep value '%s' (known: strict, logprobs, n, "
                                "input_audio)", word);
        }
    }
    if (!*keep) {
        return "keep= needs at least one of strict, logprobs, n, input_audio";
    }
    return NULL;
}
