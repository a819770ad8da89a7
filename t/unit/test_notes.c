/* Unit tests for src/core/notes.c: the maniac-* request notes for mod_log_config. */
#include "harness.h"
#include "mn_notes.h"

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

/* The table must hold exactly the NULL-terminated key/value pairs given:
 * each once, with that value, and no other key. */
static void assert_notes(apr_table_t *notes, ...)
{
    va_list ap;
    const char *key;
    int want = 0;
    va_start(ap, notes);
    while ((key = va_arg(ap, const char *)) != NULL) {
        const char *value = va_arg(ap, const char *);
        const char *got = apr_table_get(notes, key);
        if (!got) {
            fail_msg("note %s missing (want \"%s\")", key, value);
        }
        if (strcmp(got, value)) {
            fail_msg("note %s = \"%s\", want \"%s\"", key, got, value);
        }
        want++;
    }
    va_end(ap);
    if (apr_table_elts(notes)->nelts != want) {
        const apr_array_header_t *arr = apr_table_elts(notes);
        const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
        int i;
        for (i = 0; i < arr->nelts; i++) {
            print_message("  %s = %s\n", e[i].key, e[i].val);
        }
        fail_msg("%d notes, want %d", arr->nelts, want);
    }
}

static json_t *load(const char *text)
{
    json_t *j = json_loads(text, JSON_DECODE_ANY, NULL);
    assert_non_null(j);
    return j;
}

/* ---- request notes -------------------------------------------------------------- */

static void test_request_all(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    char provider[] = "together";
    memset(&pol, 0, sizeof(pol));
    pol.stream = 1;
    pol.tags = load("[\"team-a\",\"batch\"]");
    pol.metadata = load("{\"user\": \"u1\", \"n\": 3, \"deep\": {\"x\": [1, 2]}}");
    pol.trace = load("{\"id\":\"4bf92f3577b34da6\",\"span_id\":\"00f067aa0ba902b7\","
                     "\"parent_span_id\":\"a3ce929d0e0e4736\"}");
    pol.dropped[0] = "logprobs";
    pol.dropped[1] = "input_audio";
    pol.ndropped = 2;

    mn_notes_request(p, notes, &pol, provider, "meta-llama/Llama-3-70b");
    /* the notes outlive the request body and the caller's buffers */
    mn_policy_result_clear(&pol);
    strcpy(provider, "XXXXXXXX");

    assert_notes(notes,
                 "maniac-provider", "together",
                 "maniac-model", "meta-llama/Llama-3-70b",
                 "maniac-stream", "1",
                 "maniac-tags", "team-a,batch",
                 "maniac-metadata", "{\"user\":\"u1\",\"n\":3,\"deep\":{\"x\":[1,2]}}",
                 "maniac-trace-id", "4bf92f3577b34da6",
                 "maniac-span-id", "00f067aa0ba902b7",
                 "maniac-parent-span-id", "a3ce929d0e0e4736",
                 "maniac-dropped", "logprobs,input_audio",
                 NULL);
}

static void test_request_minimal(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    memset(&pol, 0, sizeof(pol));
    mn_notes_request(p, notes, &pol, "echo", "x");
    assert_notes(notes, "maniac-provider", "echo", "maniac-model", "x", "maniac-stream", "0",
                 NULL);

    notes = apr_table_make(p, 4);
    mn_notes_request(p, notes, &pol, NULL, NULL);
    assert_notes(notes, "maniac-stream", "0", NULL);
}

/* Empty extension values give no note rather than an empty one. */
static void test_request_empty_extensions(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    memset(&pol, 0, sizeof(pol));
    pol.tags = load("[]");
    pol.trace = load("{\"id\":\"\",\"other\":\"x\"}");
    mn_notes_request(p, notes, &pol, "p", "m");
    assert_notes(notes, "maniac-provider", "p", "maniac-model", "m", "maniac-stream", "0",
                 NULL);
    mn_policy_result_clear(&pol);
}

static void test_request_trace_non_string(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    memset(&pol, 0, sizeof(pol));
    pol.trace = load("{\"id\":\"t\",\"span_id\":true,\"parent_span_id\":null}");
    pol.metadata = load("{}");
    mn_notes_request(p, notes, &pol, NULL, NULL);
    assert_notes(notes, "maniac-stream", "0", "maniac-trace-id", "t",
                 "maniac-metadata", "{}", NULL);
    mn_policy_result_clear(&pol);
}

/* notes.c formats integer trace ids on purpose (some tracers send numbers). */
static void test_request_trace_integer_id(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    memset(&pol, 0, sizeof(pol));
    pol.trace = load("{\"id\":12345,\"span_id\":-7}");
    mn_notes_request(p, notes, &pol, NULL, NULL);
    mn_policy_result_clear(&pol);
    assert_notes(notes, "maniac-stream", "0", "maniac-trace-id", "12345",
                 "maniac-span-id", "-7", NULL);
}

static void test_request_dropped_single(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_policy_result pol;
    memset(&pol, 0, sizeof(pol));
    pol.dropped[0] = "response_format.json_schema.strict";
    pol.ndropped = 1;
    mn_notes_request(p, notes, &pol, NULL, NULL);
    assert_notes(notes, "maniac-stream", "0",
                 "maniac-dropped", "response_format.json_schema.strict", NULL);
}

static void test_join_tags(void **state)
{
    apr_pool_t *p = *state;
    json_t *tags = load("[\"a\",1,\"b\",null,\"c d\"]");
    json_t *none = load("[1,2]");
    json_t *empty = load("[]");
    assert_string_equal(mn_notes_join_tags(p, tags), "a,b,c d");
    assert_null(mn_notes_join_tags(p, none));
    assert_null(mn_notes_join_tags(p, empty));
    assert_null(mn_notes_join_tags(p, NULL));
    json_decref(tags);
    json_decref(none);
    json_decref(empty);
}

/* ---- outcome notes ------------------------------------------------------------------ */

static void test_outcome_all(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_usage u = { 1, 24, 19, 43, 7, 3, 11 };
    mn_notes_outcome(p, notes, 429, &u, "rate_limit_error", "rate_limit_exceeded");
    assert_notes(notes,
                 "maniac-upstream-status", "429",
                 "maniac-prompt-tokens", "24",
                 "maniac-completion-tokens", "19",
                 "maniac-total-tokens", "43",
                 "maniac-cached-tokens", "7",
                 "maniac-reasoning-tokens", "11",
                 "maniac-error", "rate_limit_error",
                 "maniac-error-code", "rate_limit_exceeded",
                 NULL);
}

static void test_outcome_absent(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_usage none = { 0, 5, 5, 10, 0, 0, 0 };
    mn_notes_outcome(p, notes, 0, NULL, NULL, NULL);
    assert_notes(notes, NULL);
    mn_notes_outcome(p, notes, 0, &none, "", "");
    assert_notes(notes, NULL);
    /* a code without a type is no error */
    mn_notes_outcome(p, notes, 0, NULL, NULL, "upstream_eof");
    assert_notes(notes, NULL);
}

/* Zero tokens is a real count and must be logged as such. */
static void test_outcome_zero_usage(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_usage u = { 1, 0, 0, 0, 0, 0, 0 };
    mn_notes_outcome(p, notes, 200, &u, NULL, NULL);
    assert_notes(notes, "maniac-upstream-status", "200", "maniac-prompt-tokens", "0",
                 "maniac-completion-tokens", "0", "maniac-total-tokens", "0",
                 "maniac-cached-tokens", "0", "maniac-reasoning-tokens", "0", NULL);
}

/* The glue may record an outcome after a first attempt: values replace,
 * never duplicate. */
static void test_outcome_overwrites(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_usage u1 = { 1, 1, 2, 3, 1, 0, 1 };
    mn_usage u2 = { 1, 10, 20, 30, 0, 0, 5 };
    char err[] = "server_error";
    mn_notes_outcome(p, notes, 503, &u1, err, "x");
    mn_notes_outcome(p, notes, 200, &u2, "upstream_error", "upstream_eof");
    strcpy(err, "XXXXXXXXXXXX");
    assert_notes(notes,
                 "maniac-upstream-status", "200",
                 "maniac-prompt-tokens", "10",
                 "maniac-completion-tokens", "20",
                 "maniac-total-tokens", "30",
                 "maniac-cached-tokens", "0",
                 "maniac-reasoning-tokens", "5",
                 "maniac-error", "upstream_error",
                 "maniac-error-code", "upstream_eof",
                 NULL);
}

/* A fallback that succeeded (by the echo provider: no upstream status)
 * after a failed attempt: the notes describe the serving attempt only. */
static void test_outcome_serving_attempt_wins(void **state)
{
    apr_pool_t *p = *state;
    apr_table_t *notes = apr_table_make(p, 4);
    mn_usage u = { 1, 1, 1, 2, 0, 0, 0 };
    mn_notes_outcome(p, notes, 529, NULL, "overloaded_error", "overloaded");
    mn_notes_outcome(p, notes, 0, &u, NULL, NULL);
    assert_notes(notes, "maniac-prompt-tokens", "1", "maniac-completion-tokens", "1",
                 "maniac-total-tokens", "2", "maniac-cached-tokens", "0",
                 "maniac-reasoning-tokens", "0", NULL);
    /* an error without a code clears an earlier code */
    mn_notes_outcome(p, notes, 502, NULL, "upstream_error", "upstream_eof");
    mn_notes_outcome(p, notes, 400, NULL, "invalid_request_error", NULL);
    assert_null(apr_table_get(notes, "maniac-error-code"));
    assert_string_equal(apr_table_get(notes, "maniac-error"), "invalid_request_error");
    assert_string_equal(apr_table_get(notes, "maniac-upstream-status"), "400");
}

/* Same entries, same order, same values. */
static void assert_tables_equal(const apr_table_t *a, const apr_table_t *b)
{
    const apr_array_header_t *x = apr_table_elts(a), *y = apr_table_elts(b);
    const apr_table_entry_t *ex = (const apr_table_entry_t *)x->elts;
    const apr_table_entry_t *ey = (const apr_table_entry_t *)y->elts;
    int i;
    assert_int_equal(x->nelts, y->nelts);
    for (i = 0; i < x->nelts; i++) {
        assert_string_equal(ex[i].key, ey[i].key);
        assert_string_equal(ex[i].val, ey[i].val);
    }
}

/* mn_notes_put leaves the table exactly as apr_table_setn/apr_table_unset
 * one after another would: present keys (in any case, duplicated, among
 * other modules' notes) set in place or taken out, missing ones appended,
 * an unset of a missing one a no-op; and lookups by key still work. */
static void test_put_as_setn(void **state)
{
    apr_pool_t *p = *state;
    static const char *const before[][2] = {
        { "other", "1" }, { "maniac-error", "old" }, { "mani", "x" },
        { "MANIAC-Model", "m0" }, { "maniac-provider", "p0" }, { "maniac-error", "dup" },
        { "maniac-e", "short" }, { "maniac-tags", "t" },
    };
    static const mn_note put[] = {
        { "maniac-upstream-status", "200" }, { "maniac-model", "m1" },
        { "maniac-error", NULL }, { "maniac-error-code", NULL }, { "maniac-tags", NULL },
        { "maniac-attempts", "up:ok" }, { "maniac-provider", "p1" }, { "maniac-e", "long" },
    };
    int keep, i;

    for (keep = 0; keep <= (int)(sizeof(before) / sizeof(before[0])); keep++) {
        apr_table_t *want = apr_table_make(p, 2), *got = apr_table_make(p, 2);
        for (i = 0; i < keep; i++) {
            apr_table_addn(want, before[i][0], before[i][1]);
            apr_table_addn(got, before[i][0], before[i][1]);
        }
        for (i = 0; i < (int)(sizeof(put) / sizeof(put[0])); i++) {
            if (put[i].val) {
                apr_table_setn(want, put[i].key, put[i].val);
            }
            else {
                apr_table_unset(want, put[i].key);
            }
        }
        mn_notes_put(got, put, (int)(sizeof(put) / sizeof(put[0])));
        assert_tables_equal(got, want);
        for (i = 0; i < (int)(sizeof(put) / sizeof(put[0])); i++) {
            const char *g = apr_table_get(got, put[i].key);
            if (put[i].val) {
                assert_string_equal(g, put[i].val);
            }
            else {
                assert_null(g);
            }
        }
    }
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_all),
        T(test_request_minimal),
        T(test_request_empty_extensions),
        T(test_request_trace_non_string),
        T(test_request_trace_integer_id),
        T(test_request_dropped_single),
        T(test_join_tags),
        T(test_outcome_all),
        T(test_outcome_absent),
        T(test_outcome_zero_usage),
        T(test_outcome_overwrites),
        T(test_outcome_serving_attempt_wins),
        T(test_put_as_setn),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
