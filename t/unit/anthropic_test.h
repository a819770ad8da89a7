/* What the Anthropic wire tests share (test_anthropic_request.c,
 * test_anthropic_response.c, test_anthropic_stream.c): a fixture with a pool
 * and a context for the "claude" provider, JSON written with ' for " (jq()
 * swaps them back), a JSON lookup by path and a decode that must succeed. */
#ifndef MN_ANTHROPIC_TEST_H
#define MN_ANTHROPIC_TEST_H

#include <limits.h>
#include "harness.h"

#define PROVIDER "claude"

typedef struct {
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
} fx;

static inline int setup(void **state)
{
    fx *f = calloc(1, sizeof(*f));
    apr_pool_create(&f->pool, NULL);
    mn_t_ctx(&f->ctx, f->pool, &f->prov, PROVIDER, MN_FORMAT_ANTHROPIC, 0, 0);
    *state = f;
    return 0;
}

static inline int teardown(void **state)
{
    fx *f = *state;
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static inline json_t *jq(const char *s)
{
    char *c = strdup(s);
    char *p;
    json_error_t jerr;
    json_t *j;
    for (p = c; *p; p++) {
        if (*p == '\'') {
            *p = '"';
        }
    }
    j = json_loads(c, JSON_DECODE_ANY, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, c);
    }
    free(c);
    return j;
}

static inline void assert_json(json_t *got, const char *want_sq)
{
    json_t *want = jq(want_sq);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY);
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n got: %s\nwant: %s", g ? g : "(null)", w);
    }
    json_decref(want);
}

/* JSON at a path of object keys, e.g. at(body, "tool_choice", "type", NULL) */
static inline json_t *at(json_t *j, ...)
{
    va_list ap;
    const char *k;
    va_start(ap, j);
    while ((k = va_arg(ap, const char *)) != NULL) {
        j = json_object_get(j, k);
    }
    va_end(ap);
    return j;
}


static inline json_t *decode_ok(fx *f, const char *body_sq, mn_usage *usage)
{
    json_t *b = jq(body_sq);
    char *s = json_dumps(b, JSON_COMPACT);
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    int rc = mn_wire_anthropic.decode_response(&f->ctx, s, strlen(s), &out,
                                               usage ? usage : &u, &err);
    if (rc) {
        fail_msg("decode failed: %s", err.message);
    }
    free(s);
    json_decref(b);
    return out;
}


#define BIG "9223372036854775807"   /* INT64_MAX */

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

#endif
