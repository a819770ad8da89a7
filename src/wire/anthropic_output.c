/* Anthropic wire, the 2026 request fields: which thinking form, effort levels
 * and structured outputs a model takes (from its name, overridable per
 * provider with thinking=), reasoning_effort mapped onto them, and
 * response_format: output_config.format with the JSON Schema rewritten into
 * the subset the API accepts, or the system-prompt form.  The model
 * facts and their sources: docs/wire-anthropic.md ("Models"). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_anthropic.h"

/* ------------------------------------------------------------------ models */

/* The first two short numbers after "claude-" (an 8-digit date or a "v1" is
 * not a version): claude-opus-4-6 and claude-3-7-sonnet-2025... alike; ids
 * with a platform prefix (us.anthropic.claude-...) or suffix (@date, :0)
 * too.  *opus: the family is Opus (4.5 takes effort, its siblings not). */
static int claude_version(const char *model, int *major, int *minor, int *opus)
{
    const char *s = model ? strstr(model, "claude-") : NULL;
    int n = 0;

    *major = *minor = *opus = 0;
    if (!s) {
        return 0;
    }
    s += 7;
    while (*s && *s != '@' && *s != ':') {
        size_t len = strcspn(s, "-.@:");
        size_t digits = strspn(s, "0123456789");
        if (digits == len && len > 0 && len <= 2 && n < 2) {
            int v = atoi(s);
            *(n++ ? minor : major) = v;
        }
        else if (n == 1) {
            n = 2;   /* claude-opus-4-20250514: no minor */
        }
        *opus |= len == 4 && !strncmp(s, "opus", 4);
        s += len;
        if (*s == '-' || *s == '.') {
            s++;
        }
    }
    return *major > 0;
}

void mn_an_model_caps(const char *model, int thinking, mn_an_caps *c)
{
    int major, minor, opus, v;

    memset(c, 0, sizeof(*c));
    c->budget = 1;
    if (claude_version(model, &major, &minor, &opus)) {
        v = major * 10 + (minor > 9 ? 9 : minor);
        c->format = v >= 45;
        c->effort = v >= 46 || (v == 45 && opus);
        c->adaptive = v >= 46;
        c->budget = v < 47;
        c->effort_max = v >= 46;
        c->effort_xhigh = v >= 47;
        c->no_sampling = v >= 47;
        c->one_sampler = v >= 41 && v < 47;
    }
    else if (model && strstr(model, "claude-mythos-preview")) {
        /* Mythos Preview: both thinking forms, effort up to max (not xhigh) */
        c->format = c->effort = c->adaptive = c->effort_max = 1;
    }
    if (thinking == MN_AN_THINKING_ADAPTIVE) {
        c->adaptive = c->effort = c->effort_max = c->effort_xhigh = 1;
        c->budget = 0;
    }
    else if (thinking == MN_AN_THINKING_BUDGET) {
        c->adaptive = c->effort = c->effort_max = c->effort_xhigh = 0;
        c->budget = 1;
    }
}

/* --------------------------------------------------------------- reasoning */

static const struct {
    const char *name;
    long budget;            /* thinking.budget_tokens on budget-only models */
    const char *effort;     /* output_config.effort */
} efforts[] = {
    { "none", 0, NULL },
    { "minimal", 1024, "low" },   /* Anthropic's lowest level and budget */
    { "low", 1024, "low" },
    { "medium", 2048, "medium" },
    { "high", 4096, "high" },
    { "xhigh", 8192, "xhigh" },
    { "max", 16384, "max" },
};

int mn_an_reasoning(const mn_an_caps *c, json_t *effort, mn_an_reasoning_out *out,
                    mn_error *err)
{
    const char *e = json_string_value(effort);
    size_t i;

    memset(out, 0, sizeof(*out));
    if (!effort || json_is_null(effort)) {
        return 0;
    }
    for (i = 0; e && i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (!strcmp(e, efforts[i].name)) {
            break;
        }
    }
    if (!e || i == sizeof(efforts) / sizeof(efforts[0])) {
        return mn_error_bad_param(err, "reasoning_effort", "reasoning_effort: %s",
                                  !e ? "must be a string"
                                  : "must be none, minimal, low, medium, high, xhigh or max");
    }
    if (!efforts[i].effort) {
        return 0;   /* none: no thinking requested, the model's default applies */
    }
    out->adaptive = c->adaptive;
    out->budget = c->adaptive ? 0 : efforts[i].budget;
    if (c->effort) {
        out->effort = efforts[i].effort;
        /* a level the model lacks is a 400 upstream: take the nearest below */
        if ((!strcmp(out->effort, "xhigh") && !c->effort_xhigh)
            || (!strcmp(out->effort, "max") && !c->effort_max)) {
            out->effort = "high";
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ schema */

#define SCHEMA_DEPTH 32

static const char *const string_formats[] = {
    "date-time", "time", "date", "duration", "email", "hostname", "uri", "ipv4", "ipv6",
    "uuid", NULL
};

static json_t *strict_schema(json_t *s, int depth);

/* Moves s[key], a map of schemas (as NULL) or a list of them (renamed to
 * `as`), into out with every schema rewritten.  An absent map is fine; a
 * list is only moved when present. */
static int move_children(json_t *s, const char *key, const char *as, json_t *out, int depth)
{
    json_t *m = json_object_get(s, key), *dst, *v, *t = out;
    const char *k;
    size_t i;

    if (!m && !as) {
        return 0;
    }
    if (as ? !json_is_array(m) : !json_is_object(m)) {
        return -1;
    }
    dst = as ? json_array() : json_object();
    json_object_foreach(as ? NULL : m, k, v) {
        if (!(t = strict_schema(v, depth + 1))) {
            break;
        }
        json_object_set_new(dst, k, t);
    }
    json_array_foreach(as ? m : NULL, i, v) {
        if (!(t = strict_schema(v, depth + 1))) {
            break;
        }
        json_array_append_new(dst, t);
    }
    if (!t) {
        json_decref(dst);
        return -1;
    }
    json_object_set_new(out, as ? as : key, dst);
    json_object_del(s, key);
    return 0;
}

static void move(json_t *s, const char *key, json_t *out)
{
    json_t *v = json_object_get(s, key);
    if (v) {
        json_object_set(out, key, v);
        json_object_del(s, key);
    }
}

/* What the subset cannot say is kept for the model to read, as Anthropic's
 * SDKs do: appended to the description as {key: json, ...}. */
static void leftovers_to_description(json_t *s, json_t *out)
{
    const char *d = json_string_value(json_object_get(out, "description"));
    mn_buf b;
    const char *k;
    json_t *v;
    int first = 1;

    if (!json_object_size(s)) {
        return;
    }
    mn_buf_init(&b);
    if (d && *d) {
        mn_buf_append(&b, d, strlen(d));
        mn_buf_append(&b, "\n\n", 2);
    }
    mn_buf_append(&b, "{", 1);
    json_object_foreach(s, k, v) {
        char *dump = json_dumps(v, JSON_COMPACT | JSON_ENCODE_ANY);
        if (!first) {
            mn_buf_append(&b, ", ", 2);
        }
        first = 0;
        mn_buf_append(&b, k, strlen(k));
        mn_buf_append(&b, ": ", 2);
        if (dump) {
            mn_buf_append(&b, dump, strlen(dump));
        }
        free(dump);
    }
    mn_buf_append(&b, "}", 1);
    json_object_set_new(out, "description", json_stringn(b.data, b.len));
    mn_buf_free(&b);
}

static int primitive(json_t *v)
{
    return !json_is_object(v) && !json_is_array(v);
}

static int all_primitive(json_t *a)
{
    size_t i;
    json_t *v;
    json_array_foreach(a, i, v) {
        if (!primitive(v)) {
            return 0;
        }
    }
    return json_array_size(a) > 0;
}

/* Type-specific members: objects get additionalProperties false (required
 * by the API), strings keep the supported formats, arrays minItems 0 or 1. */
static int typed_members(json_t *s, const char *type, json_t *out, int depth)
{
    json_t *v;

    if (!strcmp(type, "object")) {
        if (!json_object_get(s, "properties")) {
            json_object_set_new(out, "properties", json_object());
        }
        else if (move_children(s, "properties", NULL, out, depth)) {
            return -1;
        }
        json_object_del(s, "additionalProperties");
        json_object_set_new(out, "additionalProperties", json_false());
        move(s, "required", out);
    }
    else if (!strcmp(type, "string")) {
        v = json_object_get(s, "format");
        if (json_is_string(v)) {
            const char *const *f;
            for (f = string_formats; *f && strcmp(*f, json_string_value(v)); f++) {
            }
            if (*f) {
                move(s, "format", out);
            }
        }
    }
    else if (!strcmp(type, "array")) {
        v = json_object_get(s, "items");
        if (v) {
            json_t *t = strict_schema(v, depth + 1);
            if (!t) {
                return -1;
            }
            json_object_set_new(out, "items", t);
            json_object_del(s, "items");
        }
        v = json_object_get(s, "minItems");
        if (json_is_integer(v) && json_integer_value(v) >= 0 && json_integer_value(v) <= 1) {
            move(s, "minItems", out);
        }
    }
    return 0;
}

/* s is a private copy, consumed member by member. */
static json_t *strict_schema_of(json_t *s, int depth)
{
    json_t *out = json_object(), *v;
    const char *type = NULL;
    int literal = 0;

    if (move_children(s, "$defs", NULL, out, depth)
        || move_children(s, "definitions", NULL, out, depth)) {
        goto fail;
    }
    if (json_object_get(s, "$ref")) {
        move(s, "$ref", out);
        return out;
    }
    if (all_primitive(json_object_get(s, "enum"))) {
        move(s, "enum", out);
        literal = 1;
    }
    if (json_object_get(s, "const") && primitive(json_object_get(s, "const"))) {
        move(s, "const", out);
        literal = 1;
    }
    v = json_object_get(s, "type");
    if (!literal && json_is_string(v)) {
        type = json_string_value(v);
        json_object_set(out, "type", v);
    }
    else if (!literal && v) {
        goto fail;   /* a type list has no place in the subset */
    }
    json_object_del(s, "$schema");
    if (json_object_get(s, "anyOf") || json_object_get(s, "oneOf")) {
        if (move_children(s, json_object_get(s, "anyOf") ? "anyOf" : "oneOf", "anyOf", out,
                          depth)) {
            goto fail;
        }
        json_object_del(out, "type");
        type = NULL;
    }
    else if (json_object_get(s, "allOf")) {
        if (move_children(s, "allOf", "allOf", out, depth)) {
            goto fail;
        }
        json_object_del(out, "type");
        type = NULL;
    }
    else if (!literal && !type) {
        goto fail;   /* the API needs a type here */
    }
    json_object_del(s, "type");
    move(s, "description", out);
    move(s, "title", out);
    if (type && typed_members(s, type, out, depth)) {
        goto fail;
    }
    leftovers_to_description(s, out);
    return out;
fail:
    json_decref(out);
    return NULL;
}

static json_t *strict_schema(json_t *s, int depth)
{
    json_t *copy, *out;

    if (!json_is_object(s) || depth > SCHEMA_DEPTH) {
        return NULL;
    }
    copy = json_copy(s);
    out = strict_schema_of(copy, depth);
    json_decref(copy);
    return out;
}

json_t *mn_an_strict_schema(json_t *schema)
{
    return strict_schema(schema, 0);
}

/* --------------------------------------------------------- response_format */

static json_t *text_block(const char *text)
{
    return json_pack("{s:s,s:s}", "type", "text", "text", text);
}

static int bad(mn_error *err, const char *param, const char *msg)
{
    return mn_error_bad_param(err, param, "%s: %s", param, msg);
}

/* output_config is built only when something goes into it. */
void mn_an_oc_set(json_t **oc, const char *key, json_t *value)
{
    if (!*oc) {
        *oc = json_object();
    }
    json_object_set_new(*oc, key, value);
}

/* The prompt form of response_format: one more system text block. */
static int response_format_text(json_t *rf, const char *type, json_t *system, mn_error *err)
{
    static const char only_json[] =
        "Respond with a single valid JSON object and nothing else: no prose before or after "
        "it and no Markdown code fences.";
    json_t *schema = json_object_get(json_object_get(rf, "json_schema"), "schema");
    char *dump, *text;
    size_t len;

    if (!strcmp(type, "json_object") || !json_is_object(schema)) {
        json_array_append_new(system, text_block(only_json));
        return 0;
    }
    dump = json_dumps(schema, JSON_COMPACT);
    if (!dump) {
        return bad(err, "response_format.json_schema.schema", "cannot be serialised");
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
    json_array_append_new(system, text_block(text));
    free(text);
    free(dump);
    return 0;
}

/* json_schema becomes output_config.format (into oc) on the models with
 * structured outputs, when the schema fits the subset they take; anything
 * else is asked for in the system prompt. */
int mn_an_response_format(const mn_an_caps *caps, json_t *rf, json_t *system, json_t **oc,
                          mn_error *err)
{
    const char *type;
    json_t *strict;

    if (!rf || json_is_null(rf)) {
        return 0;
    }
    type = json_string_value(json_object_get(rf, "type"));
    if (!type) {
        return bad(err, "response_format.type", "must be a string");
    }
    if (!strcmp(type, "text")) {
        return 0;
    }
    if (strcmp(type, "json_object") && strcmp(type, "json_schema")) {
        return bad(err, "response_format.type", "must be text, json_object or json_schema");
    }
    strict = caps->format && !strcmp(type, "json_schema")
           ? mn_an_strict_schema(json_object_get(json_object_get(rf, "json_schema"), "schema"))
           : NULL;
    if (!strict) {
        return response_format_text(rf, type, system, err);
    }
    mn_an_oc_set(oc, "format", json_pack("{s:s,s:o}", "type", "json_schema", "schema", strict));
    return 0;
}
