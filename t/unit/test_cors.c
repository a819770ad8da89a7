/* Unit tests for src/cors.c: the ManiacCORS directive and its decisions. */
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
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
