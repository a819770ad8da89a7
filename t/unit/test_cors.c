/* Unit tests for src/core/cors.c: the ManiacCORS directive and its decisions. */
#include "harness.h"
#include "mn_cors.h"

static int setup_pool(void **state)
{
    apr_pool_t *p;
    apr_pool_create(&p, NULL);
    *state = p;
    return 0;
}

static int teardown_pool(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static const char *parse(apr_pool_t *p, mn_cors *c, int argc, ...)
{
    const char *argv[8];
    va_list ap;
    int i;
    va_start(ap, argc);
    for (i = 0; i < argc; i++) {
        argv[i] = va_arg(ap, const char *);
    }
    va_end(ap);
    return mn_cors_parse(p, argc, argv, c);
}

static void test_parse_modes(void **state)
{
    apr_pool_t *p = *state;
    mn_cors c;
    assert_null(parse(p, &c, 1, "off"));
    assert_int_equal(c.mode, MN_CORS_OFF);
    assert_null(parse(p, &c, 1, "*"));
    assert_int_equal(c.mode, MN_CORS_ANY);
    assert_null(parse(p, &c, 3, "https://app.example.com", "HTTP://LocalHost:5173/",
                      "https://[::1]:8443"));
    assert_int_equal(c.mode, MN_CORS_LIST);
    assert_int_equal(c.origins->nelts, 3);
    assert_string_equal(APR_ARRAY_IDX(c.origins, 1, const char *), "http://localhost:5173");
}

static void test_parse_refuses(void **state)
{
    apr_pool_t *p = *state;
    mn_cors c;
    const char *err;
    assert_non_null(parse(p, &c, 0));
    assert_non_null(err = parse(p, &c, 2, "https://a.example", "*"));
    assert_non_null(strstr(err, "'*'"));
    assert_non_null(parse(p, &c, 2, "off", "https://a.example"));
    assert_non_null(err = parse(p, &c, 1, "https://a.example/app"));
    assert_non_null(strstr(err, "https://a.example/app"));
    assert_non_null(parse(p, &c, 1, "a.example"));
    assert_non_null(parse(p, &c, 1, "null"));
    assert_non_null(parse(p, &c, 1, "https://"));
}

static void test_origin_allowed(void **state)
{
    apr_pool_t *p = *state;
    mn_cors list, any, off, unset;
    memset(&unset, 0, sizeof(unset));
    assert_null(parse(p, &list, 2, "https://app.example.com", "http://localhost:5173"));
    assert_null(parse(p, &any, 1, "*"));
    assert_null(parse(p, &off, 1, "off"));

    assert_true(mn_cors_origin_allowed(&list, "https://app.example.com"));
    assert_true(mn_cors_origin_allowed(&list, "HTTPS://APP.example.com"));
    assert_true(mn_cors_origin_allowed(&list, "http://localhost:5173"));
    assert_false(mn_cors_origin_allowed(&list, "http://localhost:5174"));
    assert_false(mn_cors_origin_allowed(&list, "https://app.example.com.evil.test"));
    assert_false(mn_cors_origin_allowed(&list, "https://evil.test"));
    assert_false(mn_cors_origin_allowed(&list, "null"));
    assert_false(mn_cors_origin_allowed(&list, ""));
    assert_false(mn_cors_origin_allowed(&list, NULL));
    assert_true(mn_cors_origin_allowed(&any, "https://evil.test"));
    assert_false(mn_cors_origin_allowed(&any, NULL));
    assert_false(mn_cors_origin_allowed(&off, "https://app.example.com"));
    assert_false(mn_cors_origin_allowed(&unset, "https://app.example.com"));
    assert_false(mn_cors_origin_allowed(NULL, "https://app.example.com"));
}

static void test_merge(void **state)
{
    apr_pool_t *p = *state;
    mn_cors outer, inner, unset;
    memset(&unset, 0, sizeof(unset));
    assert_null(parse(p, &outer, 1, "*"));
    assert_null(parse(p, &inner, 1, "off"));
    assert_ptr_equal(mn_cors_merge(&outer, &inner), &inner);
    assert_ptr_equal(mn_cors_merge(&outer, &unset), &outer);
    assert_ptr_equal(mn_cors_merge(&outer, NULL), &outer);
}

static void test_request_headers(void **state)
{
    apr_pool_t *p = *state;
    const char *bad = NULL;
    /* what the openai SDK announces from a browser */
    assert_true(mn_cors_request_headers_ok(p, "authorization,content-type,x-stainless-arch,"
        "x-stainless-lang,x-stainless-os,x-stainless-package-version,x-stainless-retry-count,"
        "x-stainless-runtime,x-stainless-runtime-version,x-stainless-timeout", &bad));
    assert_true(mn_cors_request_headers_ok(p, "X-Api-Key, Anthropic-Version , ", &bad));
    assert_true(mn_cors_request_headers_ok(p, "", &bad));
    assert_true(mn_cors_request_headers_ok(p, NULL, &bad));
    assert_false(mn_cors_request_headers_ok(p, "authorization, X-Secret-Thing", &bad));
    assert_string_equal(bad, "x-secret-thing");
    assert_false(mn_cors_request_headers_ok(p, "x-stainless-", &bad));
    assert_false(mn_cors_request_headers_ok(p, "cookie", &bad));
    /* found by fuzz_cors: the list is echoed into Access-Control-Allow-Headers,
     * so nothing but header names and HTTP blanks may pass */
    assert_false(mn_cors_request_headers_ok(p, "x-stainless-os\x05h://x", &bad));
    assert_false(mn_cors_request_headers_ok(p, "x-stainless-a:b", &bad));
    assert_false(mn_cors_request_headers_ok(p, "content-type\v,x-api-key", &bad));
    assert_false(mn_cors_request_headers_ok(p, "content-type,\r\nx-api-key", &bad));
    assert_true(mn_cors_request_headers_ok(p, "\tcontent-type ,\tx-api-key\t", &bad));
}

/* out must hold exactly the name/value pairs given (NULL-terminated). */
static void assert_headers(apr_table_t *out, ...)
{
    va_list ap;
    const char *k;
    int n = 0;
    va_start(ap, out);
    while ((k = va_arg(ap, const char *)) != NULL) {
        const char *v = va_arg(ap, const char *);
        const char *got = apr_table_get(out, k);
        if (!got || strcmp(got, v)) {
            fail_msg("header %s: got \"%s\", want \"%s\"", k, got ? got : "(none)", v);
        }
        n++;
    }
    va_end(ap);
    assert_int_equal(apr_table_elts(out)->nelts, n);
}

static apr_table_t *req_headers(apr_pool_t *p, const char *origin, const char *acrm,
                                const char *acrh)
{
    apr_table_t *in = apr_table_make(p, 4);
    if (origin) apr_table_setn(in, "Origin", origin);
    if (acrm) apr_table_setn(in, "Access-Control-Request-Method", acrm);
    if (acrh) apr_table_setn(in, "Access-Control-Request-Headers", acrh);
    return in;
}

static void test_apply_preflight(void **state)
{
    apr_pool_t *p = *state;
    mn_cors c, any;
    apr_table_t *out = apr_table_make(p, 4);
    const char *bad = NULL;
    assert_null(parse(p, &c, 1, "https://app.example.com"));
    assert_null(parse(p, &any, 1, "*"));

    assert_int_equal(mn_cors_apply(p, &c, 1, req_headers(p, "https://app.example.com", "POST",
                     "authorization,content-type"), out, &bad), MN_CORS_PREFLIGHT_OK);
    assert_headers(out, "Vary", "Origin, Access-Control-Request-Headers",
                   "Access-Control-Allow-Origin", "https://app.example.com",
                   "Access-Control-Allow-Methods", "POST",
                   "Access-Control-Allow-Headers", "authorization,content-type",
                   "Access-Control-Max-Age", "600", NULL);

    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &any, 1, req_headers(p, "https://x.example", "GET", NULL),
                                   out, &bad), MN_CORS_PREFLIGHT_OK);
    assert_headers(out, "Vary", "Origin, Access-Control-Request-Headers",
                   "Access-Control-Allow-Origin", "*", "Access-Control-Allow-Methods", "POST",
                   "Access-Control-Max-Age", "600", NULL);

    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &c, 1, req_headers(p, "https://evil.example", "POST",
                                   "authorization"), out, &bad), MN_CORS_BAD_ORIGIN);
    assert_headers(out, "Vary", "Origin", NULL);

    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &c, 1, req_headers(p, "https://app.example.com", "POST",
                                   "authorization, x-evil"), out, &bad), MN_CORS_BAD_HEADER);
    assert_string_equal(bad, "x-evil");
    assert_null(apr_table_get(out, "Access-Control-Allow-Methods"));
    assert_null(apr_table_get(out, "Access-Control-Allow-Headers"));
}

static void test_apply_simple(void **state)
{
    apr_pool_t *p = *state;
    mn_cors c, off;
    apr_table_t *out = apr_table_make(p, 4);
    const char *bad = NULL;
    assert_null(parse(p, &c, 1, "https://app.example.com"));
    assert_null(parse(p, &off, 1, "off"));

    /* an answer to an allowed origin (POST, or an OPTIONS that is no preflight) */
    assert_int_equal(mn_cors_apply(p, &c, 0, req_headers(p, "https://app.example.com", NULL,
                                   NULL), out, &bad), MN_CORS_GO_ON);
    assert_headers(out, "Vary", "Origin", "Access-Control-Allow-Origin", "https://app.example.com",
                   "Access-Control-Expose-Headers", "Retry-After, x-should-retry, x-request-id",
                   NULL);
    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &c, 1, req_headers(p, "https://app.example.com", NULL,
                                   NULL), out, &bad), MN_CORS_GO_ON);
    assert_non_null(apr_table_get(out, "Access-Control-Allow-Origin"));
    /* another origin, or none: only Vary */
    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &c, 0, req_headers(p, "https://evil.example", NULL, NULL),
                                   out, &bad), MN_CORS_GO_ON);
    assert_headers(out, "Vary", "Origin", NULL);
    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &c, 0, req_headers(p, NULL, NULL, NULL), out, &bad),
                     MN_CORS_GO_ON);
    assert_headers(out, "Vary", "Origin", NULL);
    /* off, or never configured: nothing at all, preflight or not */
    out = apr_table_make(p, 4);
    assert_int_equal(mn_cors_apply(p, &off, 1, req_headers(p, "https://app.example.com", "POST",
                                   NULL), out, &bad), MN_CORS_GO_ON);
    assert_int_equal(mn_cors_apply(p, NULL, 1, req_headers(p, "https://app.example.com", "POST",
                                   NULL), out, &bad), MN_CORS_GO_ON);
    assert_headers(out, NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_parse_modes),
        T(test_parse_refuses),
        T(test_origin_allowed),
        T(test_merge),
        T(test_request_headers),
        T(test_apply_preflight),
        T(test_apply_simple),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
