/* Unit tests for src/core/models.c (the /v1/models catalogue, the key
 * allow-list filter, ids in paths) and the models= provider option. */
#include "harness.h"
#include <apr_strings.h>
#include "mn_models.h"

static int setup_pool(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown_pool(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

/* Adds a provider from a NULL-terminated argv; fails the test on an error. */
static void add_provider(mn_provider_table *t, const char *const *argv)
{
    mn_provider *prov;
    int argc = 0;
    const char *err;
    while (argv[argc]) {
        argc++;
    }
    err = mn_provider_parse(t->pool, argc, argv, &prov);
    if (err) {
        fail_msg("%s: %s", argv[0], err);
    }
    assert_null(mn_providers_add(t, prov));
}

static void add_alias(mn_provider_table *t, const char *const *argv)
{
    int argc = 0;
    while (argv[argc]) {
        argc++;
    }
    assert_null(mn_alias_add(t, argc, argv, "test.conf", 1));
}

/* openai (models=), anthropic (none), echo (none), local echo (models=),
 * aliases zeta and alpha. */
static mn_provider_table *sample(apr_pool_t *p)
{
    mn_provider_table *t = mn_providers_create(p);
    add_provider(t, (const char *const[]){ "openai", "https://api.openai.com/v1",
                                           "models=gpt-4o,gpt-4o-mini", NULL });
    add_provider(t, (const char *const[]){ "anthropic", "https://api.anthropic.com/v1",
                                           "format=anthropic", NULL });
    add_provider(t, (const char *const[]){ "echo", "builtin:echo", NULL });
    add_provider(t, (const char *const[]){ "together", "https://api.together.xyz/v1",
                                           "models=meta-llama/Llama-3-70b", NULL });
    add_alias(t, (const char *const[]){ "zeta", "openai/gpt-4o", NULL });
    add_alias(t, (const char *const[]){ "alpha", "anthropic/claude", "openai/gpt-4o", NULL });
    assert_null(mn_aliases_resolve(t));
    return t;
}

static void assert_json(json_t *got, const char *expected_text)
{
    json_t *expected = mn_t_json(expected_text);
    if (!json_equal(got, expected)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *e = json_dumps(expected, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got      %s\nexpected %s", g, e);
    }
    json_decref(expected);
    json_decref(got);
}

static void test_list_all(void **state)
{
    apr_pool_t *p = *state;
    mn_models *m = mn_models_build(p, sample(p), 1700000000);
    assert_json(mn_models_list_json(m, NULL),
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"openai/gpt-4o\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"openai\"},"
        "{\"id\":\"openai/gpt-4o-mini\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"openai\"},"
        "{\"id\":\"echo/demo\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"echo\"},"
        "{\"id\":\"together/meta-llama/Llama-3-70b\",\"object\":\"model\",\"created\":1700000000,"
        "\"owned_by\":\"together\"},"
        "{\"id\":\"alpha\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"maniac\"},"
        "{\"id\":\"zeta\",\"object\":\"model\",\"created\":1700000000,\"owned_by\":\"maniac\"}]}");
}

static void test_list_empty_table(void **state)
{
    apr_pool_t *p = *state;
    mn_models *m = mn_models_build(p, mn_providers_create(p), 0);
    assert_json(mn_models_list_json(m, NULL), "{\"object\":\"list\",\"data\":[]}");
}

static void test_echo_with_models_lists_those(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    mn_models *m;
    add_provider(t, (const char *const[]){ "local", "builtin:echo", "models=a,b", NULL });
    m = mn_models_build(p, t, 5);
    assert_json(mn_models_list_json(m, NULL),
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"local/a\",\"object\":\"model\",\"created\":5,\"owned_by\":\"local\"},"
        "{\"id\":\"local/b\",\"object\":\"model\",\"created\":5,\"owned_by\":\"local\"}]}");
}

static void test_alias_spelt_like_a_model_listed_once_as_alias(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    mn_models *m;
    add_provider(t, (const char *const[]){ "openai", "https://api.openai.com/v1",
                                           "models=gpt-4o", NULL });
    add_alias(t, (const char *const[]){ "openai/gpt-4o", "openai/gpt-4o-2024-08-06", NULL });
    m = mn_models_build(p, t, 1);
    assert_json(mn_models_list_json(m, NULL),
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"openai/gpt-4o\",\"object\":\"model\",\"created\":1,\"owned_by\":\"maniac\"}]}");
}

static apr_array_header_t *globs(apr_pool_t *p, const char *const *list)
{
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    for (; *list; list++) {
        *(const char **)apr_array_push(a) = *list;
    }
    return a;
}

static void test_list_filtered(void **state)
{
    apr_pool_t *p = *state;
    mn_models *m = mn_models_build(p, sample(p), 7);
    assert_json(mn_models_list_json(m, globs(p, (const char *const[]){ "openai/*-mini", "zeta",
                                                                       NULL })),
        "{\"object\":\"list\",\"data\":["
        "{\"id\":\"openai/gpt-4o-mini\",\"object\":\"model\",\"created\":7,\"owned_by\":\"openai\"},"
        "{\"id\":\"zeta\",\"object\":\"model\",\"created\":7,\"owned_by\":\"maniac\"}]}");
    /* an empty allow-list allows nothing (NULL allows everything) */
    assert_json(mn_models_list_json(m, globs(p, (const char *const[]){ NULL })),
                "{\"object\":\"list\",\"data\":[]}");
}

static void test_glob(void **state)
{
    assert_true(mn_models_glob_match("*", ""));
    assert_true(mn_models_glob_match("*", "openai/gpt-4o"));
    assert_true(mn_models_glob_match("openai/*", "openai/gpt-4o"));
    assert_true(mn_models_glob_match("*/gpt-4o", "openai/gpt-4o"));
    assert_true(mn_models_glob_match("together/*", "together/meta-llama/Llama-3"));
    assert_true(mn_models_glob_match("gpt-4?", "gpt-4o"));
    assert_true(mn_models_glob_match("a*b*c", "aXXbYYbZc"));
    assert_true(mn_models_glob_match("a**", "a"));
    assert_false(mn_models_glob_match("openai/*", "openai"));
    assert_false(mn_models_glob_match("openai/*", "anthropic/claude"));
    assert_false(mn_models_glob_match("gpt-4?", "gpt-4"));
    assert_false(mn_models_glob_match("gpt-4o", "gpt-4o-mini"));
    assert_false(mn_models_glob_match("a*b*c", "aXXbYYbZ"));
    assert_false(mn_models_glob_match("", "x"));
    assert_true(mn_models_glob_match("", ""));
    /* a hostile pattern stays fast: one backtrack point */
    assert_false(mn_models_glob_match("*a*a*a*a*a*a*a*a*a*a*a*b",
                                      "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
}

static void test_allowed(void **state)
{
    apr_pool_t *p = *state;
    assert_true(mn_models_allowed(NULL, "anything"));
    assert_false(mn_models_allowed(globs(p, (const char *const[]){ NULL }), "anything"));
    assert_true(mn_models_allowed(globs(p, (const char *const[]){ "x", "echo/*", NULL }),
                                  "echo/demo"));
    assert_false(mn_models_allowed(globs(p, (const char *const[]){ "x", "echo/*", NULL }),
                                   "openai/gpt-4o"));
}

static void test_find(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = sample(p);
    mn_models *m = mn_models_build(p, t, 9);
    const mn_provider *named = NULL;
    const mn_model_entry *e;

    e = mn_models_find(p, m, t, NULL, "openai/gpt-4o-mini", &named);
    assert_non_null(e);
    assert_string_equal(named->name, "openai");
    assert_json(mn_model_json(e, m->created),
                "{\"id\":\"openai/gpt-4o-mini\",\"object\":\"model\",\"created\":9,"
                "\"owned_by\":\"openai\"}");
    e = mn_models_find(p, m, t, NULL, "alpha", &named);
    assert_non_null(e);
    assert_null(named);
    assert_string_equal(e->owned_by, "maniac");
    /* echo serves every model */
    e = mn_models_find(p, m, t, NULL, "echo/anything/at all", &named);
    assert_non_null(e);
    assert_string_equal(e->id, "echo/anything/at all");
    assert_string_equal(e->owned_by, "echo");
    /* a provider's unlisted model, a provider without models=, no provider */
    assert_null(mn_models_find(p, m, t, NULL, "openai/gpt-5", &named));
    assert_string_equal(named->name, "openai");
    assert_null(mn_models_find(p, m, t, NULL, "anthropic/claude", &named));
    assert_string_equal(named->name, "anthropic");
    assert_null(mn_models_find(p, m, t, NULL, "nope/gpt-4o", &named));
    assert_null(named);
    assert_null(mn_models_find(p, m, t, NULL, "gpt-4o", &named));
    assert_null(named);
    assert_null(mn_models_find(p, m, t, NULL, "echo/", &named));
    assert_string_equal(named->name, "echo");
    /* not on the key's allow-list: as unknown */
    assert_null(mn_models_find(p, m, t, globs(p, (const char *const[]){ "alpha", NULL }),
                               "openai/gpt-4o", &named));
    assert_string_equal(named->name, "openai");
    assert_non_null(mn_models_find(p, m, t, globs(p, (const char *const[]){ "alpha", NULL }),
                                   "alpha", &named));
    assert_null(mn_models_find(p, m, t, globs(p, (const char *const[]){ "alpha", NULL }),
                               "echo/x", &named));
}

static void test_path_id(void **state)
{
    apr_pool_t *p = *state;
    assert_string_equal(mn_models_path_id(p, "openai%2Fgpt-4o"), "openai/gpt-4o");
    assert_string_equal(mn_models_path_id(p, "openai%2fgpt-4o"), "openai/gpt-4o");
    assert_string_equal(mn_models_path_id(p, "openai/gpt-4o"), "openai/gpt-4o");
    assert_string_equal(mn_models_path_id(p, "together%2Fmeta-llama%2FLlama-3"),
                        "together/meta-llama/Llama-3");
    assert_string_equal(mn_models_path_id(p, "a%2"), "a%2");
    assert_string_equal(mn_models_path_id(p, "a%20b"), "a%20b");
    assert_string_equal(mn_models_path_id(p, "%2F"), "/");
    assert_null(mn_models_path_id(p, ""));
}

static void test_provider_models_option(void **state)
{
    apr_pool_t *p = *state;
    mn_provider *prov;
    const char *err;

    err = mn_provider_parse(p, 3, (const char *const[]){ "o", "http://h/v1", "models=a" }, &prov);
    assert_null(err);
    assert_int_equal(prov->models->nelts, 1);
    assert_string_equal(APR_ARRAY_IDX(prov->models, 0, const char *), "a");
    err = mn_provider_parse(p, 2, (const char *const[]){ "o", "http://h/v1" }, &prov);
    assert_null(err);
    assert_null(prov->models);
    err = mn_provider_parse(p, 3, (const char *const[]){ "o", "http://h/v1", "models=" }, &prov);
    assert_string_equal(err, "bad models= '': expected model names separated by ','");
    err = mn_provider_parse(p, 3, (const char *const[]){ "o", "http://h/v1", "models=a,,b" },
                            &prov);
    assert_string_equal(err, "bad models= 'a,,b': expected model names separated by ','");
    err = mn_provider_parse(p, 3, (const char *const[]){ "o", "http://h/v1", "models=a," },
                            &prov);
    assert_string_equal(err, "bad models= 'a,': expected model names separated by ','");
    err = mn_provider_parse(p, 3, (const char *const[]){ "o", "http://h/v1", "models=a,b,a" },
                            &prov);
    assert_string_equal(err, "models= names 'a' twice");
}

/* The document GET .../openapi.json serves is docs/openapi.json: it must at
 * least be JSON, OpenAPI 3.1, and describe every path the handler serves. */
static void test_openapi_document(void **state)
{
    json_t *doc = mn_t_fixture_json("../../docs/openapi.json");
    json_t *paths = json_object_get(doc, "paths");
    assert_string_equal(json_string_value(json_object_get(doc, "openapi")), "3.1.0");
    assert_non_null(json_object_get(json_object_get(paths, "/chat/completions"), "post"));
    assert_non_null(json_object_get(json_object_get(paths, "/models"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/models/{model}"), "get"));
    assert_non_null(json_object_get(json_object_get(paths, "/openapi.json"), "get"));
    json_decref(doc);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_list_all),
        T(test_list_empty_table),
        T(test_echo_with_models_lists_those),
        T(test_alias_spelt_like_a_model_listed_once_as_alias),
        T(test_list_filtered),
        T(test_glob),
        T(test_allowed),
        T(test_find),
        T(test_path_id),
        T(test_provider_models_option),
        T(test_openapi_document),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
