/* What the Gemini wire tests share (test_gemini_request.c,
 * test_gemini_response.c, test_gemini_stream.c): the per-test pool, a
 * context for the gemini-test provider, JSON written with ' for ", a
 * non-streaming decode that must succeed, and text appended to a buffer. */
#ifndef MN_GEMINI_TEST_H
#define MN_GEMINI_TEST_H

#include "harness.h"

#define PROVIDER "gemini-test"
#define MODEL "gemini-2.5-flash"

static inline int setup(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static inline int teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static inline void ctx_for(mn_wire_ctx *ctx, mn_provider *prov, void **state, int stream,
                    int include_usage)
{
    mn_t_ctx(ctx, *state, prov, PROVIDER, MN_FORMAT_GEMINI, stream, include_usage);
    ctx->model = MODEL;
}

/* Inline JSON is written with ' for " to keep the C strings readable. */
static inline json_t *jq(const char *text)
{
    char *s = strdup(text);
    char *c;
    json_error_t jerr;
    json_t *j;
    for (c = s; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    j = json_loads(s, 0, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, s);
    }
    free(s);
    return j;
}

static inline void assert_json_eq(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = got ? json_dumps(got, JSON_COMPACT | JSON_ENCODE_ANY) : NULL;
        char *w = json_dumps(want, JSON_COMPACT | JSON_ENCODE_ANY);
        fail_msg("JSON differs\n got: %s\nwant: %s", g ? g : "(null)", w);
    }
}

/* got is borrowed, want_q is jq() text. */
static inline void assert_jq(json_t *got, const char *want_q)
{
    json_t *want = jq(want_q);
    assert_json_eq(got, want);
    json_decref(want);
}


static inline json_t *decode_ok(void **state, const char *body, size_t len, mn_usage *usage)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    json_t *out = NULL;
    json_t *pv;

    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(&err);
    memset(usage, 0, sizeof(*usage));
    if (mn_wire_gemini.decode_response(&ctx, body, len, &out, usage, &err) != 0) {
        fail_msg("decode failed: %d %s: %s", err.status, err.code, err.message);
    }
    pv = json_object_get(out, "provider");
    assert_true(json_is_string(pv));
    assert_string_equal(json_string_value(pv), PROVIDER);
    json_object_del(out, "provider");
    return out;
}

static inline json_t *decode_q(void **state, const char *body_q, mn_usage *usage)
{
    json_t *j = jq(body_q);
    char *s = json_dumps(j, 0);
    json_t *out = decode_ok(state, s, strlen(s), usage);
    free(s);
    json_decref(j);
    return out;
}

static inline void buf_puts(mn_buf *b, const char *s)
{
    mn_buf_append(b, s, strlen(s));
}

#endif
