/* mn_wire_gemini: Gemini API upstreams (generativelanguage.googleapis.com,
 * `:generateContent` and `:streamGenerateContent?alt=sse`).
 *
 * Choices made where wire-formats.md (§3, §4) leaves room:
 *
 *  - http(s):// and gs:// image URLs go up as fileData.  Gemini requires a
 *    mimeType there, so it is guessed from the path's extension (png, jpg,
 *    jpeg, gif, webp, heic, heif) and is image/jpeg for anything else: JPEG is
 *    the commonest web image, and a wrong guess is answered by Gemini with a
 *    400, never read silently as something else.
 *  - JSON Schemas (tool parameters, response_format json_schema) are reduced
 *    to Gemini's Schema message (an OpenAPI 3.0 subset) by keeping only the
 *    keywords it knows, because Gemini rejects an unknown field with a 400:
 *    type, format, title, description, nullable, enum, items, properties,
 *    required, anyOf, default, example, pattern, minimum, maximum, minItems,
 *    maxItems, minLength, maxLength, minProperties, maxProperties,
 *    propertyOrdering.  Rewritten: local $ref (#/$defs/X, #/definitions/X) is
 *    inlined (a recursive one is a 400: Gemini's Schema cannot express it),
 *    allOf is merged into its parent, oneOf becomes anyOf, a string const
 *    becomes a one-value enum, type:[T,"null"] becomes type T + nullable.
 *    format survives only as enum, date-time, int32, int64, float or double
 *    (the ones the Gemini API accepts).  Everything else is dropped, notably
 *    additionalProperties, strict, $schema, $id, $defs, definitions,
 *    $comment, examples, not, if/then/else, patternProperties,
 *    exclusiveMinimum/Maximum, multipleOf, uniqueItems.  Tool parameters that
 *    describe an object without properties are left out (Gemini rejects an
 *    OBJECT with empty properties there).  required keeps each name once
 *    (non-string entries are dropped).  Inlining has a budget (see
 *    GM_SCHEMA_GROWTH_CAP): over it, a 400 naming the schema.
 *  - reasoning_effort -> generationConfig.thinkingConfig.thinkingBudget:
 *    none 0, minimal 512, low 1024, medium 8192, high/xhigh/max 24576 (the
 *    largest budget every 2.5 model accepts).  A provider configured with
 *    reasoning_content also gets includeThoughts, and thought parts come back
 *    as (delta.)reasoning_content; otherwise thoughts are dropped.
 *  - finishReason: STOP (or none) -> stop, or tool_calls when the response
 *    held a functionCall; MAX_TOKENS -> length; SAFETY, RECITATION,
 *    BLOCKLIST, PROHIBITED_CONTENT, SPII, IMAGE_SAFETY, LANGUAGE,
 *    IMAGE_PROHIBITED_CONTENT, IMAGE_RECITATION -> content_filter; anything
 *    else -> stop.  A blocked prompt is a completion with content null and
 *    content_filter, not an error.  In a stream, content the upstream sends
 *    after its finishReason is passed on, and the finish chunk (the last
 *    finishReason's) is sent once, at the clean end; a stream that fails
 *    after a finishReason ends with the error frame, without a finish.
 *  - No responseId (blocked prompts, safety, recitation): the id is
 *    chatcmpl-<24 random hex digits>, the same for every chunk of a stream.
 *  - A functionCall part without a name is never a tool call: in a stream
 *    it continues the call a named part opened with willContinue (Vertex
 *    partialArgs, assembled and sent as one arguments delta for that call's
 *    index when the call ends), otherwise it is dropped.
 *  - usageMetadata counts below 0 read as 0; counts and sums saturate at
 *    LONG_MAX.
 *  - Only candidates[0] is read: we never ask for candidateCount (n > 1 is
 *    rejected by policy).
 *  - Unknown top-level params are copied into the body; when one collides
 *    with a member we build, ours wins, except generationConfig, whose
 *    members are merged (ours win per member). */
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_general.h>
#include <apr_strings.h>
#include <apr_time.h>
#include "mn_wire.h"

/* A raw JSON error object appended after the events is small; anything
 * larger is not what we are looking for and must not grow memory. */
#define GM_RAW_MAX (64 * 1024)
/* Nesting beyond this in a schema is either abuse or a recursive $ref. */
#define GM_SCHEMA_MAX_DEPTH 32

#define bad_param mn_error_bad_param

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

/* ASCII-only classes: <ctype.h> answers per locale, the wire is ASCII. */
static int a_digit(int c)
{
    return c >= '0' && c <= '9';
}

static int a_alnum(int c)
{
    return a_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static int a_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive compare of n bytes (strncasecmp is POSIX, not C11). */
static int ci_neq(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (a_lower((unsigned char)a[i]) != a_lower((unsigned char)b[i])) {
            return 1;
        }
        if (!a[i]) {
            return 0;
        }
    }
    return 0;
}

static int has_prefix_ci(const char *s, const char *prefix)
{
    return ci_neq(s, prefix, strlen(prefix)) == 0;
}

/* ------------------------------------------------------------------------ */
/* JSON Schema -> Gemini Schema                                              */

static const char *const schema_verbatim[] = {
    "title", "description", "nullable", "enum", "default", "example", "pattern",
    "minimum", "maximum", "minItems", "maxItems", "minLength", "maxLength",
    "minProperties", "maxProperties", "propertyOrdering", NULL
};

static const char *const schema_formats[] = {
    "enum", "date-time", "int32", "int64", "float", "double", NULL
};

static int in_list(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (!strcmp(s, *list)) {
            return 1;
        }
    }
    return 0;
}

/* Inlining $ref and merging allOf can make a schema far larger than the
 * request that carried it (a fan-out of $refs grows exponentially with the
 * nesting depth).  So the work done per schema, counted in (estimated) JSON
 * bytes visited or copied, is bounded by factor x its own size plus a little
 * slack, and what all schemas of one request add over their own sizes by
 * GM_SCHEMA_GROWTH_CAP.  Time, memory and the body sent upstream stay
 * proportional to the request; a schema that does not grow never hits the
 * request-wide cap, however large. */
#define GM_SCHEMA_SLACK (16 * 1024)
#define GM_SCHEMA_GROWTH_CAP (8 * 1024 * 1024)
#define GM_SCHEMA_FACTOR 8      /* when mn_wire_ctx.max_schema_expansion is 0 */

typedef struct schema_budget {
    size_t used;            /* charged by the schemas of this request so far */
    size_t in_total;        /* their own sizes */
    int factor;
} schema_budget;

typedef struct schema_ctx {
    json_t *root;           /* for local $ref lookups */
    const char *param;      /* named in a 400 */
    mn_error *err;
    schema_budget *budget;
    size_t limit;           /* budget->used may not pass this */
    int limit_is_cap;       /* the request-wide cap set limit, not the factor */
} schema_ctx;

/* One object being built, with the required names it already holds: allOf
 * and $ref merge several schemas into it, and looking a name up must not
 * cost a walk of the list (quadratic for long lists). */
typedef struct schema_out {
    json_t *obj;
    json_t *required_seen;  /* name -> true, created on first use */
} schema_out;

static json_t *clean_schema(schema_ctx *sc, json_t *s, int depth);

/* Compact-JSON size estimate of v, stopping once it passes limit. */
static size_t est_size(json_t *v, size_t limit)
{
    size_t n = 2;

    if (json_is_object(v)) {
        void *it;
        for (it = json_object_iter(v); it && n <= limit; it = json_object_iter_next(v, it)) {
            n += strlen(json_object_iter_key(it)) + 4;
            n += n > limit ? 0 : est_size(json_object_iter_value(it), limit - n);
        }
    }
    else if (json_is_array(v)) {
        size_t i;
        for (i = 0; i < json_array_size(v) && n <= limit; i++) {
            n += 1 + est_size(json_array_get(v, i), limit - n);
        }
    }
    else {
        n = json_is_string(v) ? json_string_length(v) + 2 : 8;
    }
    return n;
}

static size_t schema_factor(const schema_budget *b)
{
    return b->factor > 0 ? (size_t)b->factor : GM_SCHEMA_FACTOR;
}

static void schema_budget_start(schema_ctx *sc, json_t *schema)
{
    schema_budget *b = sc->budget;
    size_t factor = schema_factor(b);
    size_t in = est_size(schema, (size_t)-1);
    size_t own = in > ((size_t)-1 - b->used - GM_SCHEMA_SLACK) / factor
        ? (size_t)-1 - b->used : in * factor + GM_SCHEMA_SLACK;
    size_t cap;

    b->in_total += in;
    cap = b->in_total + GM_SCHEMA_GROWTH_CAP;
    sc->limit_is_cap = b->used + own > cap;
    sc->limit = sc->limit_is_cap ? cap : b->used + own;
}

static size_t remaining(const schema_ctx *sc)
{
    return sc->budget->used < sc->limit ? sc->limit - sc->budget->used : 0;
}

static int charge(schema_ctx *sc, size_t n)
{
    schema_budget *b = sc->budget;

    b->used += n;
    if (b->used <= sc->limit) {
        return 0;
    }
    if (sc->limit_is_cap) {
        return bad_param(sc->err, sc->param,
                         "the schemas of this request grow by more than %d MiB when their "
                         "$refs and allOf are inlined for Gemini",
                         GM_SCHEMA_GROWTH_CAP / (1024 * 1024));
    }
    return bad_param(sc->err, sc->param,
                     "schema grows beyond %zu times its size when its $refs and allOf are "
                     "inlined for Gemini (ManiacMaxSchemaExpansion)", schema_factor(b));
}

static json_t *resolve_ref(json_t *root, const char *ref)
{
    if (!strncmp(ref, "#/$defs/", 8)) {
        return json_object_get(json_object_get(root, "$defs"), ref + 8);
    }
    if (!strncmp(ref, "#/definitions/", 14)) {
        return json_object_get(json_object_get(root, "definitions"), ref + 14);
    }
    return NULL;
}

static void add_anyof(json_t *out, json_t *alt)
{
    json_t *any = json_object_get(out, "anyOf");
    if (!json_is_array(any)) {
        any = json_array();
        json_object_set_new(out, "anyOf", any);
    }
    json_array_append_new(any, alt);
}

static int clean_into(schema_ctx *sc, schema_out *t, json_t *s, int depth);

/* type: [T, "null"] -> T + nullable; several non-null types -> anyOf. */
static int clean_type_list(schema_ctx *sc, json_t *out, json_t *v)
{
    size_t i, nonnull = 0;
    json_t *t, *first = NULL;

    if (charge(sc, est_size(v, remaining(sc)))) {
        return -1;
    }
    json_array_foreach(v, i, t) {
        if (!json_is_string(t)) {
            continue;
        }
        if (!strcmp(json_string_value(t), "null")) {
            json_object_set_new(out, "nullable", json_true());
        }
        else if (nonnull++ == 0) {
            first = t;
        }
    }
    if (nonnull == 1) {
        json_object_set(out, "type", first);
    }
    else if (nonnull > 1) {
        json_array_foreach(v, i, t) {
            if (json_is_string(t) && strcmp(json_string_value(t), "null")) {
                if (charge(sc, 10)) {
                    return -1;
                }
                add_anyof(out, json_pack("{s:O}", "type", t));
            }
        }
    }
    return 0;
}

/* Gemini's required holds names: other entries are dropped, a name is kept
 * once however many merged schemas list it. */
static int merge_required(schema_ctx *sc, schema_out *t, json_t *v)
{
    json_t *have = json_object_get(t->obj, "required");
    json_t *r;
    size_t i;

    json_array_foreach(v, i, r) {
        const char *name = json_string_value(r);
        if (charge(sc, json_string_length(r) + 3)) {
            return -1;
        }
        if (!name || strlen(name) != json_string_length(r)) {
            continue;   /* not a name, or one with a NUL no property can have */
        }
        if (!t->required_seen) {
            t->required_seen = json_object();
        }
        if (json_object_get(t->required_seen, name)) {
            continue;
        }
        json_object_set_new(t->required_seen, name, json_true());
        if (!json_is_array(have)) {
            have = json_array();
            json_object_set_new(t->obj, "required", have);
        }
        json_array_append(have, r);
    }
    return 0;
}

static int clean_properties(schema_ctx *sc, json_t *out, json_t *v, int depth)
{
    const char *pname;
    json_t *pv;
    json_t *props = json_object_get(out, "properties");

    if (!json_is_object(props)) {
        props = json_object();
        json_object_set_new(out, "properties", props);
    }
    json_object_foreach(v, pname, pv) {
        json_t *c;
        if (charge(sc, strlen(pname) + 4)) {
            return -1;
        }
        c = clean_schema(sc, pv, depth + 1);
        if (!c) {
            return -1;
        }
        json_object_set_new(props, pname, c);
    }
    return 0;
}

static int clean_alternatives(schema_ctx *sc, json_t *out, json_t *v, int depth)
{
    size_t i;
    json_t *alt;

    json_array_foreach(v, i, alt) {
        json_t *c = clean_schema(sc, alt, depth + 1);
        if (!c) {
            return -1;
        }
        add_anyof(out, c);
    }
    return 0;
}

static int clean_ref(schema_ctx *sc, schema_out *t, json_t *v, int depth)
{
    json_t *target = json_is_string(v) ? resolve_ref(sc->root, json_string_value(v)) : NULL;
    if (!target) {
        return bad_param(sc->err, sc->param,
                         "schema $ref '%s' is not a local #/$defs or #/definitions "
                         "reference", json_is_string(v) ? json_string_value(v) : "");
    }
    return clean_into(sc, t, target, depth + 1);
}

/* One keyword of a schema into t. */
static int clean_keyword(schema_ctx *sc, schema_out *t, const char *key, json_t *v, int depth)
{
    json_t *out = t->obj;
    size_t i;
    json_t *part;

    if (charge(sc, strlen(key) + 4)) {
        return -1;
    }
    if (in_list(key, schema_verbatim)) {
        /* shared, not copied, but serialised in full for every inlining */
        if (charge(sc, est_size(v, remaining(sc)))) {
            return -1;
        }
        json_object_set(out, key, v);
    }
    else if (!strcmp(key, "type")) {
        if (json_is_string(v)) {
            json_object_set(out, "type", v);
        }
        else if (json_is_array(v)) {
            return clean_type_list(sc, out, v);
        }
    }
    else if (!strcmp(key, "format")) {
        if (json_is_string(v) && in_list(json_string_value(v), schema_formats)) {
            json_object_set(out, "format", v);
        }
    }
    else if (!strcmp(key, "const")) {
        if (json_is_string(v)) {
            if (charge(sc, json_string_length(v) + 2)) {
                return -1;
            }
            json_object_set_new(out, "enum", json_pack("[O]", v));
        }
    }
    else if (!strcmp(key, "required")) {
        return json_is_array(v) ? merge_required(sc, t, v) : 0;
    }
    else if (!strcmp(key, "properties")) {
        return json_is_object(v) ? clean_properties(sc, out, v, depth) : 0;
    }
    else if (!strcmp(key, "items")) {
        if (json_is_object(v)) {
            json_t *c = clean_schema(sc, v, depth + 1);
            if (!c) {
                return -1;
            }
            json_object_set_new(out, "items", c);
        }
    }
    else if (!strcmp(key, "anyOf") || !strcmp(key, "oneOf")) {
        return json_is_array(v) ? clean_alternatives(sc, out, v, depth) : 0;
    }
    else if (!strcmp(key, "allOf")) {
        json_array_foreach(v, i, part) {
            if (clean_into(sc, t, part, depth + 1)) {
                return -1;
            }
        }
    }
    else if (!strcmp(key, "$ref")) {
        return clean_ref(sc, t, v, depth);
    }
    /* anything else is a keyword Gemini's Schema does not know */
    return 0;
}

/* Writes the cleaned keywords of s into t, later keywords overriding
 * earlier ones, so that $ref and allOf can be merged in place. */
static int clean_into(schema_ctx *sc, schema_out *t, json_t *s, int depth)
{
    const char *key;
    json_t *v;

    if (depth > GM_SCHEMA_MAX_DEPTH) {
        return bad_param(sc->err, sc->param,
                         "schema nests deeper than %d levels or uses a recursive $ref, "
                         "which Gemini cannot express", GM_SCHEMA_MAX_DEPTH);
    }
    if (!json_is_object(s)) {
        return charge(sc, 8);   /* `true` / `{}`-like schemas constrain nothing */
    }
    if (charge(sc, 2)) {
        return -1;
    }
    json_object_foreach(s, key, v) {
        if (clean_keyword(sc, t, key, v, depth)) {
            return -1;
        }
    }
    return 0;
}

static json_t *clean_schema(schema_ctx *sc, json_t *s, int depth)
{
    schema_out t = { json_object(), NULL };
    int rc = clean_into(sc, &t, s, depth);

    json_decref(t.required_seen);
    if (rc) {
        json_decref(t.obj);
        return NULL;
    }
    return t.obj;
}

/* A whole schema (tool parameters, response schema) under the request's
 * budget.  NULL with err set when it cannot be expressed or is too big. */
static json_t *clean_root_schema(json_t *schema, const char *param, schema_budget *b,
                                 mn_error *err)
{
    schema_ctx sc = { schema, param, err, b, 0, 0 };

    schema_budget_start(&sc, schema);
    return clean_schema(&sc, schema, 0);
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
        json_t *args;

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
        json_array_append_new(parts, json_pack("{s:{s:O,s:o}}", "functionCall",
                                               "name", name, "args", args));
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

static int thinking_budget(const char *effort)
{
    static const struct { const char *name; int budget; } map[] = {
        { "none", 0 }, { "minimal", 512 }, { "low", 1024 }, { "medium", 8192 },
        { "high", 24576 }, { "xhigh", 24576 }, { "max", 24576 },
    };
    size_t i;
    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        if (!strcmp(effort, map[i].name)) {
            return map[i].budget;
        }
    }
    return -1;
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
            if (json_is_object(schema)) {
                json_t *c = clean_root_schema(schema, "response_format.json_schema.schema",
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
        int budget = thinking_budget(json_string_value(v));
        if (budget < 0) {
            return bad_param(err, "reasoning_effort", "unknown reasoning_effort '%s'",
                             json_string_value(v));
        }
        json_object_set_new(thinking_config(gc), "thinkingBudget", json_integer(budget));
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
            c = clean_root_schema(params, param, budget, err);
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

    text = json_dumps(body, JSON_COMPACT);
    if (!text) {
        mn_error_set(err, 400, NULL, NULL, NULL, "request could not be serialised");
        goto done;
    }
    out->body_len = strlen(text);
    out->body = apr_pmemdup(ctx->pool, text, out->body_len + 1);
    free(text);
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
static int error_from_gemini(mn_error *e, int http, json_t *root)
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

static void gemini_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                                size_t len, const char *retry_after, mn_error *err)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;

    if (error_from_gemini(err, status, root)) {
        mn_error_from_openai_body(err, status, body, len, ctx->provider);
    }
    json_decref(root);
    if (retry_after && *retry_after) {
        apr_cpystrn(err->retry_after, retry_after, sizeof(err->retry_after));
    }
    scrub_key(ctx, err);
}

/* ------------------------------------------------------------------------ */
/* Responses                                                                 */

/* Counts are longs in [0, LONG_MAX]: a negative count from the upstream
 * reads as 0, a larger one and every sum saturate at LONG_MAX, so no total
 * wraps negative on the way to the client or the accounting. */
typedef struct gm_usage {
    int have;
    int have_thoughts;
    long prompt, tool_prompt, candidates, thoughts, total, cached;
    int have_total;
} gm_usage;

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
static void gm_usage_read(gm_usage *u, json_t *um)
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

static void gm_usage_counts(const gm_usage *u, mn_usage *m)
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

static json_t *gm_usage_json(const gm_usage *u)
{
    mn_usage m;
    json_t *o;

    gm_usage_counts(u, &m);
    o = mn_usage_to_openai(&m);
    json_object_set_new(o, "prompt_tokens_details",
                        json_pack("{s:I}", "cached_tokens", (json_int_t)u->cached));
    if (u->have_thoughts) {
        json_object_set_new(o, "completion_tokens_details",
                            json_pack("{s:I}", "reasoning_tokens", (json_int_t)u->thoughts));
    }
    return o;
}

static const char *map_finish(const char *fr, int saw_tool)
{
    static const char *const filtered[] = {
        "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
        "LANGUAGE", "IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION", NULL
    };
    if (!fr || !strcmp(fr, "STOP") || !strcmp(fr, "FINISH_REASON_UNSPECIFIED")) {
        return saw_tool ? "tool_calls" : "stop";
    }
    if (!strcmp(fr, "MAX_TOKENS")) {
        return "length";
    }
    return in_list(fr, filtered) ? "content_filter" : "stop";
}

static int part_is_thought(json_t *part)
{
    return json_is_true(json_object_get(part, "thought"));
}

/* Compact JSON of functionCall.args; a missing args means no arguments. */
static json_t *args_string(json_t *args)
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
#define GM_ID_SIZE 40
static void make_response_id(char *buf)
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
static int has_name(json_t *fc)
{
    json_t *name = json_object_get(fc, "name");
    return json_is_string(name) && json_string_length(name) > 0;
}

/* fc must have a name (has_name).  Steals arguments (a JSON string). */
static json_t *tool_call_json(json_t *fc, const char *response_id, long n, int with_index,
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

static int gemini_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                                  json_t **out, mn_usage *usage, mn_error *err)
{
    json_t *root = json_loadb(body, len, 0, NULL);
    json_t *cand, *parts, *part, *message, *calls, *res, *choice;
    const char *rid, *model, *fr;
    char made_id[GM_ID_SIZE];
    mn_buf text, reasoning;
    gm_usage gu;
    size_t i;
    long ncalls = 0;

    if (!is_gemini_response(root)) {
        if (error_from_gemini(err, 0, root) == 0) {
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
        make_response_id(made_id);
        rid = made_id;
    }
    model = json_string_value(json_object_get(root, "modelVersion"));
    model = model ? model : ctx->model;
    cand = json_array_get(json_object_get(root, "candidates"), 0);
    parts = json_object_get(json_object_get(cand, "content"), "parts");

    mn_buf_init(&text);
    mn_buf_init(&reasoning);
    calls = json_array();
    json_array_foreach(parts, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");
        if (json_is_string(t)) {
            mn_buf *b = part_is_thought(part) ? &reasoning : &text;
            mn_buf_append(b, json_string_value(t), json_string_length(t));
        }
        else if (json_is_object(fc) && has_name(fc)) {
            json_array_append_new(calls, tool_call_json(fc, rid, ncalls++, 0,
                                                        args_string(json_object_get(fc, "args"))));
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

    if (!cand && json_is_string(json_object_get(json_object_get(root, "promptFeedback"),
                                                "blockReason"))) {
        fr = "content_filter";
    }
    else {
        fr = map_finish(json_string_value(json_object_get(cand, "finishReason")), ncalls > 0);
    }
    choice = json_pack("{s:i,s:o,s:n,s:s}", "index", 0, "message", message, "logprobs",
                       "finish_reason", fr);

    memset(&gu, 0, sizeof(gu));
    gm_usage_read(&gu, json_object_get(root, "usageMetadata"));
    gm_usage_counts(&gu, usage);

    res = json_pack("{s:s,s:s,s:I,s:s,s:[o],s:o}", "id", rid, "object", "chat.completion",
                    "created", (json_int_t)ctx->created, "model", model ? model : "",
                    "choices", choice, "usage", gm_usage_json(&gu));
    json_decref(root);
    if (res && ctx->provider_name) {
        json_object_set_new(res, "provider", json_string(ctx->provider_name));
    }
    if (!res) {
        return mn_error_set(err, 502, NULL, NULL, "upstream_bad_response",
                            "upstream response could not be translated");
    }
    *out = res;
    return 0;
}

/* ------------------------------------------------------------------------ */
/* Streaming                                                                 */

/* Vertex may stream a call's arguments (partialArgs, one JSON path and
 * value per fragment): they are assembled here and reach the client as one
 * arguments delta for the call's index when the call is complete.  Bounded,
 * so a stream keeps its memory constant whatever the upstream sends. */
#define GM_CALL_ARGS_MAX (4 * 1024 * 1024)

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    int started;            /* role chunk sent */
    int finish_seen;        /* a finishReason came; sent at the clean end */
    char finish_raw[40];    /* the last one (Gemini's word) */
    long tool_index;        /* tool calls so far in this response */
    char id[256];           /* responseId of the first event, or ours */
    char model[256];
    gm_usage gu;
    /* a call whose arguments are still streaming */
    int call_open;
    long call_index;
    json_t *call_args;
    size_t call_bytes;
    mn_buf str_path;        /* string value being appended to, and its path */
    mn_buf str_val;
    int str_pending;
    int str_continue;       /* its last fragment said willContinue */
    /* raw (non-SSE) lines: a JSON error object appended to the stream */
    mn_buf raw;
    int raw_depth;
    int raw_in_str;
    int raw_esc;
};

/* Copies without cutting a UTF-8 sequence, so the value stays a valid
 * JSON string even when truncated. */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

static mn_stream *gemini_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    if (st) {
        st->b.ctx = ctx;
        apr_cpystrn(st->model, ctx->model ? ctx->model : "", sizeof(st->model));
        mn_buf_init(&st->raw);
        mn_buf_init(&st->str_path);
        mn_buf_init(&st->str_val);
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

static void emit(mn_stream *st, json_t *chunk, mn_sink *out)
{
    if (!chunk) {
        return;
    }
    json_object_set_new(chunk, "provider", json_string(st->b.ctx->provider_name));
    mn_sse_write_json(out, chunk);
    json_decref(chunk);
}

static json_t *chunk_base(mn_stream *st)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s}", "id", st->id, "object", "chat.completion.chunk",
                          "created", (json_int_t)st->b.ctx->created, "model", st->model);
    return c;
}

/* Steals delta. */
static void emit_delta(mn_stream *st, json_t *delta, const char *finish, mn_sink *out)
{
    json_t *c = chunk_base(st);
    json_object_set_new(c, "choices",
                        json_pack("[{s:i,s:o,s:n,s:o}]", "index", 0, "delta", delta, "logprobs",
                                  "finish_reason", finish ? json_string(finish) : json_null()));
    if (st->b.ctx->include_usage) {
        json_object_set_new(c, "usage", json_null());
    }
    emit(st, c, out);
}

/* One step of a JSON path (RFC 9535 subset Vertex uses): .name, ['name'],
 * ["name"] or [N].  Returns the rest of the path, or NULL when malformed. */
static const char *path_step(const char *p, char *name, size_t size, long *index)
{
    size_t n = 0;
    *index = -1;
    if (*p == '.') {
        for (p++; *p && *p != '.' && *p != '['; p++) {
            if (n + 1 >= size) {
                return NULL;
            }
            name[n++] = *p;
        }
    }
    else if (p[0] == '[' && (p[1] == '\'' || p[1] == '"')) {
        char q = p[1];
        for (p += 2; *p && *p != q; p++) {
            if (n + 1 >= size) {
                return NULL;
            }
            name[n++] = *p;
        }
        if (p[0] != q || p[1] != ']') {
            return NULL;
        }
        p += 2;
    }
    else if (p[0] == '[' && a_digit((unsigned char)p[1])) {
        long i = 0;
        for (p++; a_digit((unsigned char)*p); p++) {
            if (i > 100000000L) {
                return NULL;
            }
            i = i * 10 + (*p - '0');
        }
        if (*p != ']') {
            return NULL;
        }
        *index = i;
        return p + 1;
    }
    else {
        return NULL;
    }
    name[n] = '\0';
    return n ? p : NULL;
}

/* The member or element a step names in cur, created as an object or an
 * array (as the next step wants) when missing; NULL on a shape conflict.
 * An index may only name an element that exists or the next one. */
static json_t *path_child(json_t *cur, const char *name, long index, int want_array)
{
    json_t *child;
    if (index < 0) {
        if (!json_is_object(cur)) {
            return NULL;
        }
        child = json_object_get(cur, name);
        if (!child) {
            child = want_array ? json_array() : json_object();
            json_object_set_new(cur, name, child);
        }
        return child;
    }
    if (!json_is_array(cur) || (size_t)index > json_array_size(cur)) {
        return NULL;
    }
    if ((size_t)index == json_array_size(cur)) {
        json_array_append_new(cur, want_array ? json_array() : json_object());
    }
    return json_array_get(cur, (size_t)index);
}

/* Sets path ($ then steps) in root to value (stolen).  0, or -1. */
static int set_path(json_t *root, const char *path, json_t *value)
{
    char name[256], next_name[256];
    long index, next_index;
    const char *p, *next;
    json_t *cur = root;

    if (path[0] != '$' || !path[1]) {
        json_decref(value);
        return -1;
    }
    p = path_step(path + 1, name, sizeof(name), &index);
    while (p && *p) {
        next = path_step(p, next_name, sizeof(next_name), &next_index);
        cur = next ? path_child(cur, name, index, next_index >= 0) : NULL;
        if (!cur) {
            json_decref(value);
            return -1;
        }
        memcpy(name, next_name, sizeof(name));
        index = next_index;
        p = next;
    }
    if (!p || (index < 0 && !json_is_object(cur))
        || (index >= 0 && (!json_is_array(cur) || (size_t)index > json_array_size(cur)))) {
        json_decref(value);
        return -1;
    }
    if (index < 0) {
        return json_object_set_new(cur, name, value);
    }
    if ((size_t)index == json_array_size(cur)) {
        return json_array_append_new(cur, value);
    }
    return json_array_set_new(cur, (size_t)index, value);
}

static int call_fail(mn_stream *st, const char *what)
{
    return mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                        "upstream streamed function-call arguments %s", what);
}

/* The string being appended to goes into the arguments. */
static int flush_string(mn_stream *st)
{
    int rc = 0;
    if (st->str_pending) {
        mn_buf_append(&st->str_path, "", 1);
        rc = set_path(st->call_args, st->str_path.data,
                      json_stringn(st->str_val.data ? st->str_val.data : "", st->str_val.len));
        mn_buf_reset(&st->str_path);
        mn_buf_reset(&st->str_val);
        st->str_pending = 0;
    }
    return rc ? call_fail(st, "with a JSON path that does not fit the arguments") : 0;
}

static json_t *partial_value(json_t *pa)
{
    json_t *v;
    if (json_is_string(v = json_object_get(pa, "stringValue"))
        || json_is_number(v = json_object_get(pa, "numberValue"))
        || json_is_boolean(v = json_object_get(pa, "boolValue"))) {
        return json_incref(v);
    }
    return json_object_get(pa, "nullValue") ? json_null() : NULL;
}

/* One partialArgs fragment: a string continues the one before it when that
 * one named the same path and said willContinue. */
static int apply_fragment(mn_stream *st, json_t *pa)
{
    const char *path = json_string_value(json_object_get(pa, "jsonPath"));
    json_t *v = partial_value(pa);
    int same, rc = 0;

    if (!path || !v) {
        json_decref(v);
        return 0;       /* nothing we could place */
    }
    st->call_bytes += strlen(path) + (json_is_string(v) ? json_string_length(v) : 8);
    if (st->call_bytes > GM_CALL_ARGS_MAX) {
        json_decref(v);
        return call_fail(st, "over the size limit");
    }
    same = st->str_pending && st->str_continue && st->str_path.len == strlen(path)
        && !memcmp(st->str_path.data, path, st->str_path.len);
    if (!(same && json_is_string(v)) && flush_string(st)) {
        json_decref(v);
        return -1;
    }
    if (json_is_string(v)) {
        if (!same) {
            mn_buf_append(&st->str_path, path, strlen(path));
        }
        mn_buf_append(&st->str_val, json_string_value(v), json_string_length(v));
        st->str_pending = 1;
        st->str_continue = json_is_true(json_object_get(pa, "willContinue"));
        json_decref(v);
    }
    else if (set_path(st->call_args, path, v)) {
        rc = call_fail(st, "with a JSON path that does not fit the arguments");
    }
    return rc;
}

static int apply_partials(mn_stream *st, json_t *fc)
{
    json_t *args = json_object_get(fc, "args");
    json_t *pa;
    size_t i;

    if (json_is_object(args)) {
        if (flush_string(st)) {
            return -1;
        }
        st->call_bytes += est_size(args, GM_CALL_ARGS_MAX);
        if (st->call_bytes > GM_CALL_ARGS_MAX) {
            return call_fail(st, "over the size limit");
        }
        json_object_update(st->call_args, args);
    }
    json_array_foreach(json_object_get(fc, "partialArgs"), i, pa) {
        if (apply_fragment(st, pa)) {
            return -1;
        }
    }
    return 0;
}

/* The open call's assembled arguments go out as its arguments delta. */
static int close_call(mn_stream *st, mn_sink *out)
{
    json_t *tc;
    char *s;

    if (!st->call_open) {
        return 0;
    }
    st->call_open = 0;
    if (flush_string(st)) {
        return -1;
    }
    s = json_dumps(st->call_args, JSON_COMPACT);
    json_decref(st->call_args);
    st->call_args = NULL;
    tc = json_pack("{s:I,s:{s:s}}", "index", (json_int_t)st->call_index, "function",
                   "arguments", s ? s : "{}");
    free(s);
    emit_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL, out);
    return 0;
}

static void open_call(mn_stream *st, json_t *fc, mn_sink *out)
{
    json_t *tc;
    st->call_open = 1;
    st->call_index = st->tool_index++;
    st->call_args = json_object();
    st->call_bytes = 0;
    tc = tool_call_json(fc, st->id, st->call_index, 1, json_string(""));
    emit_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL, out);
}

/* A functionCall part.  A named one is a call (complete, or opening one
 * whose arguments stream); a nameless one continues the open call, if any,
 * and is dropped otherwise.  -1 with b.err set when the stream must fail. */
static int handle_call_part(mn_stream *st, json_t *fc, mn_sink *out)
{
    int more = json_is_true(json_object_get(fc, "willContinue"));

    if (has_name(fc)) {
        if (close_call(st, out)) {
            return -1;
        }
        if (!more && !json_array_size(json_object_get(fc, "partialArgs"))) {
            json_t *tc = tool_call_json(fc, st->id, st->tool_index++, 1,
                                        args_string(json_object_get(fc, "args")));
            emit_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL, out);
            return 0;
        }
        open_call(st, fc, out);
    }
    else if (!st->call_open) {
        return 0;
    }
    if (apply_partials(st, fc)) {
        return -1;
    }
    return more ? 0 : close_call(st, out);
}

static void handle_parts(mn_stream *st, json_t *parts, mn_sink *out)
{
    json_t *part;
    size_t i;

    json_array_foreach(parts, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");
        if (json_is_string(t) && json_string_length(t)) {
            if (!part_is_thought(part)) {
                emit_delta(st, json_pack("{s:O}", "content", t), NULL, out);
            }
            else if (st->b.ctx->provider && st->b.ctx->provider->reasoning_content) {
                emit_delta(st, json_pack("{s:O}", "reasoning_content", t), NULL, out);
            }
        }
        else if (json_is_object(fc) && handle_call_part(st, fc, out)) {
            st->b.status = fail_with(st, out);
            return;
        }
    }
}

static void note_finish(mn_stream *st, const char *fr)
{
    st->finish_seen = 1;
    copy_utf8(st->finish_raw, sizeof(st->finish_raw), fr);
}

/* Whatever the upstream sends after its finishReason (more text, usage) is
 * still passed on: the finish chunk is sent once, at the clean end. */
static mn_stream_status handle_event(mn_stream *st, json_t *root, mn_sink *out)
{
    json_t *e = json_object_get(root, "error");
    json_t *cand, *v;
    const char *fr;

    if (e && !json_is_null(e) && !json_is_false(e)) {
        if (error_from_gemini(&st->b.err, 0, root)) {
            mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_error",
                         "upstream sent an error in the stream");
        }
        return fail_with(st, out);
    }
    v = json_object_get(root, "responseId");
    if (!st->id[0] && json_is_string(v)) {
        copy_utf8(st->id, sizeof(st->id), json_string_value(v));
    }
    if (!st->id[0]) {
        make_response_id(st->id);
    }
    v = json_object_get(root, "modelVersion");
    if (json_is_string(v)) {
        copy_utf8(st->model, sizeof(st->model), json_string_value(v));
    }
    if (json_is_object(json_object_get(root, "usageMetadata"))) {
        gm_usage_read(&st->gu, json_object_get(root, "usageMetadata"));
        gm_usage_counts(&st->gu, &st->b.usage);
    }
    if (!st->started) {
        st->started = 1;
        emit_delta(st, json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL, out);
    }
    cand = json_array_get(json_object_get(root, "candidates"), 0);
    if (!cand) {
        if (json_is_string(json_object_get(json_object_get(root, "promptFeedback"),
                                           "blockReason"))) {
            note_finish(st, "SAFETY");      /* -> content_filter */
        }
        return st->b.status;
    }
    handle_parts(st, json_object_get(json_object_get(cand, "content"), "parts"), out);
    fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr && st->b.status == MN_STREAM_MORE) {
        note_finish(st, fr);
    }
    return st->b.status;
}

static void raw_reset(mn_stream *st)
{
    mn_buf_reset(&st->raw);
    st->raw_depth = 0;
    st->raw_in_str = 0;
    st->raw_esc = 0;
}

/* The accumulated raw text is complete: an error object ends the stream,
 * anything else is ignored. */
static mn_stream_status raw_try(mn_stream *st, mn_sink *out)
{
    json_t *root = json_loadb(st->raw.data, st->raw.len, 0, NULL);
    raw_reset(st);
    if (root && error_from_gemini(&st->b.err, 0, root) == 0) {
        json_decref(root);
        return fail_with(st, out);
    }
    json_decref(root);
    return st->b.status;
}

static mn_stream_status raw_line(mn_stream *st, const char *line, size_t len, mn_sink *out)
{
    size_t i;

    if (st->raw.len == 0) {
        size_t skip = 0;
        while (skip < len && (line[skip] == ' ' || line[skip] == '\t')) {
            skip++;
        }
        if (skip == len || (line[skip] != '{' && line[skip] != '[')) {
            return st->b.status;  /* stray text, not the start of a JSON value */
        }
    }
    if (st->raw.len + len + 1 > GM_RAW_MAX
        || mn_buf_append(&st->raw, line, len) || mn_buf_append(&st->raw, "\n", 1)) {
        raw_reset(st);
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream appended more than %d bytes of non-SSE data to the stream",
                     GM_RAW_MAX);
        return fail_with(st, out);
    }
    /* Balance brackets outside strings, so the object can be parsed as soon
     * as it is complete without re-parsing it on every line. */
    for (i = 0; i < len; i++) {
        char c = line[i];
        if (st->raw_in_str) {
            if (st->raw_esc) {
                st->raw_esc = 0;
            }
            else if (c == '\\') {
                st->raw_esc = 1;
            }
            else if (c == '"') {
                st->raw_in_str = 0;
            }
        }
        else if (c == '"') {
            st->raw_in_str = 1;
        }
        else if (c == '{' || c == '[') {
            st->raw_depth++;
        }
        else if (c == '}' || c == ']') {
            if (--st->raw_depth <= 0) {
                return raw_try(st, out);
            }
        }
    }
    return st->b.status;
}

static mn_stream_status gemini_stream_feed(mn_stream *st, mn_sse_kind kind,
                                           const char *event, const char *data,
                                           size_t len, mn_sink *out)
{
    json_t *root;
    mn_stream_status rc;

    if (st->b.status != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (kind == MN_SSE_RAW_LINE) {
        return raw_line(st, data, len, out);
    }
    if (kind != MN_SSE_EVENT || (len == 6 && !memcmp(data, "[DONE]", 6))) {
        return st->b.status;      /* Gemini has no [DONE]; EOF ends the stream */
    }
    root = json_loadb(data, len, 0, NULL);
    if (json_is_array(root) && json_array_size(root) == 1) {
        json_t *only = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = only;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream sent a stream event that is not a JSON object");
        return fail_with(st, out);
    }
    rc = handle_event(st, root, out);
    json_decref(root);
    return rc;
}

static mn_stream_status gemini_stream_end(mn_stream *st, const mn_error *cause, mn_sink *out)
{
    if (st->b.status != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (cause) {
        st->b.err = *cause;
        return fail_with(st, out);
    }
    if (st->raw.len && raw_try(st, out) != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (!st->finish_seen) {
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_eof",
                     "upstream closed the stream before a finish reason");
        return fail_with(st, out);
    }
    if (close_call(st, out)) {
        return fail_with(st, out);
    }
    emit_delta(st, json_object(), map_finish(st->finish_raw, st->tool_index > 0), out);
    if (st->b.ctx->include_usage) {
        json_t *c = chunk_base(st);
        json_object_set_new(c, "choices", json_array());
        json_object_set_new(c, "usage", gm_usage_json(&st->gu));
        emit(st, c, out);
    }
    mn_sse_write_done(out);
    st->b.status = MN_STREAM_DONE;
    return st->b.status;
}

static void gemini_stream_destroy(mn_stream *st)
{
    if (st) {
        json_decref(st->call_args);
        mn_buf_free(&st->str_path);
        mn_buf_free(&st->str_val);
        mn_buf_free(&st->raw);
        free(st);
    }
}

const mn_wire mn_wire_gemini = {
    .name = "gemini",
    .encode_request = gemini_encode,
    .decode_response = gemini_decode_response,
    .decode_error = gemini_decode_error,
    .stream_create = gemini_stream_create,
    .stream_feed = gemini_stream_feed,
    .stream_end = gemini_stream_end,
    .stream_usage = mn_stream_base_usage,
    .stream_error = mn_stream_base_error,
    .stream_destroy = gemini_stream_destroy,
    /* .decode_response_bytes = NULL: the tree is new anyway */
};
