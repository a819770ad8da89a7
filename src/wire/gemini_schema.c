/* Gemini wire, JSON Schema -> Gemini Schema: tool parameters and
 * response_format schemas reduced to the OpenAPI subset Gemini accepts
 * (local $ref inlined under a per-request budget, allOf merged, unknown
 * keywords dropped).  Why each keyword is kept, rewritten or dropped:
 * docs/wire-gemini.md. */
#include <stdlib.h>
#include <string.h>
#include "mn_gemini.h"

/* Nesting beyond this in a schema is either abuse or a recursive $ref. */
#define GM_SCHEMA_MAX_DEPTH 32

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
size_t mn_gm_est_size(json_t *v, size_t limit)
{
    size_t n = 2;

    if (json_is_object(v)) {
        void *it;
        for (it = json_object_iter(v); it && n <= limit; it = json_object_iter_next(v, it)) {
            n += strlen(json_object_iter_key(it)) + 4;
            n += n > limit ? 0 : mn_gm_est_size(json_object_iter_value(it), limit - n);
        }
    }
    else if (json_is_array(v)) {
        size_t i;
        for (i = 0; i < json_array_size(v) && n <= limit; i++) {
            n += 1 + mn_gm_est_size(json_array_get(v, i), limit - n);
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
    size_t in = mn_gm_est_size(schema, (size_t)-1);
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

    if (charge(sc, mn_gm_est_size(v, remaining(sc)))) {
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
        if (charge(sc, mn_gm_est_size(v, remaining(sc)))) {
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
json_t *mn_gm_schema_clean(json_t *schema, const char *param, schema_budget *b,
                           mn_error *err)
{
    schema_ctx sc = { schema, param, err, b, 0, 0 };

    schema_budget_start(&sc, schema);
    return clean_schema(&sc, schema, 0);
}
