/* The retry / key / fallback decision (src/core/attempts.c) and the failure
 * kinds' table (src/core/error.c) it reads. */
#include "harness.h"
#include "mn_attempts.h"

#define MS(x) apr_time_from_msec(x)

/* A try at a target with one key, two retries and no target after it. */
static mn_try a_try(mn_fail kind, int status)
{
    mn_try t;
    memset(&t, 0, sizeof(t));
    t.kind = kind;
    t.upstream_status = status;
    t.retry_after = -1;
    t.retries = 2;
    t.keys_tried = 1;
    t.nkeys = 1;
    return t;
}

static void test_sent_is_done(void **state)
{
    mn_try t = a_try(MN_FAIL_NONE, 200);
    (void)state;
    t.sent = 1;
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_SUCCESS);
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_DONE);
}

static void test_outcome_by_status_then_kind(void **state)
{
    mn_try t = a_try(MN_FAIL_UPSTREAM_HTTP, 503);
    (void)state;
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_FAILURE);
    t.upstream_status = 400;
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_CALLER);
    t.upstream_status = 401;
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_KEY);
    t.upstream_status = 429;
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_RETRY);
    /* a 2xx that failed before the first byte, and no answer at all: the kind */
    t = a_try(MN_FAIL_RESET, 200);
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_FAILURE);
    t = a_try(MN_FAIL_BAD_RESPONSE, 200);
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_CALLER);
    t = a_try(MN_FAIL_UNREACHABLE, 0);
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_FAILURE);
    t = a_try(MN_FAIL_UNCONFIGURED, 0);
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_CALLER);
    t = a_try(MN_FAIL_CLIENT, 0);
    assert_int_equal(mn_try_outcome(&t), MN_OUTCOME_CALLER);
}

static void test_retry_with_backoff(void **state)
{
    mn_try t = a_try(MN_FAIL_TIMEOUT, 0);
    mn_next n;
    (void)state;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_RETRY);
    assert_int_equal(n.wait, MS(100));
    assert_int_equal(n.report, 1);
    t.try_no = 1;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_RETRY);
    assert_int_equal(n.wait, MS(200));
    /* a 5xx retries as well; its Retry-After wins over the backoff, capped */
    t = a_try(MN_FAIL_UPSTREAM_HTTP, 503);
    t.retry_after = apr_time_from_sec(3);
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_RETRY);
    assert_int_equal(n.wait, apr_time_from_sec(3));
    t.retry_after = apr_time_from_sec(3600);
    assert_int_equal(mn_attempt_next(&t, 0.5).wait, MN_RETRY_AFTER_CAP);
    /* 408/409 retry without counting against the provider */
    t = a_try(MN_FAIL_UPSTREAM_HTTP, 408);
    assert_int_equal(mn_attempt_next(&t, 0.0).action, MN_NEXT_RETRY);
    assert_int_equal(mn_attempt_next(&t, 0.0).wait, MS(50));
}

static void test_retries_spent(void **state)
{
    mn_try t = a_try(MN_FAIL_RESET, 200);
    mn_next n;
    (void)state;
    t.try_no = 2;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_ANSWER);
    assert_int_equal(n.report, 1);
    t.targets_left = 1;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_TARGET);
    /* retries=0: the first failure moves on */
    t = a_try(MN_FAIL_UNREACHABLE, 0);
    t.retries = 0;
    t.targets_left = 2;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_TARGET);
}

static void test_caller_fault_answers_at_once(void **state)
{
    mn_try t = a_try(MN_FAIL_UPSTREAM_HTTP, 400);
    (void)state;
    t.targets_left = 3;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
    t = a_try(MN_FAIL_BAD_RESPONSE, 200);
    t.targets_left = 3;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
    t = a_try(MN_FAIL_CLIENT, 0);
    t.targets_left = 3;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
}

static void test_keys_rotate(void **state)
{
    mn_try t = a_try(MN_FAIL_UPSTREAM_HTTP, 401);
    (void)state;
    t.nkeys = 3;
    t.targets_left = 1;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_KEY);
    t.keys_tried = 2;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_KEY);
    /* every key refused: our key's fault, no retry and no fallback */
    t.keys_tried = 3;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
    /* a 429 moves to the next key too; with none left it is retried */
    t = a_try(MN_FAIL_UPSTREAM_HTTP, 429);
    t.nkeys = 2;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_KEY);
    t.keys_tried = 2;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_RETRY);
    /* a single key: 403 answers */
    t = a_try(MN_FAIL_UPSTREAM_HTTP, 403);
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
}

static void test_circuit_open_and_unavailable(void **state)
{
    mn_try t = a_try(MN_FAIL_CIRCUIT_OPEN, 0);
    mn_next n;
    (void)state;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_ANSWER);
    assert_int_equal(n.report, 1);
    t.targets_left = 1;
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_TARGET);
    /* opened by this request's own failures: those are reported */
    t.try_no = 1;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_TARGET);
    assert_int_equal(n.report, 0);
    t = a_try(MN_FAIL_UNAVAILABLE, 0);
    assert_int_equal(mn_attempt_next(&t, 0.5).action, MN_NEXT_ANSWER);
    t.targets_left = 1;
    n = mn_attempt_next(&t, 0.5);
    assert_int_equal(n.action, MN_NEXT_TARGET);
    assert_int_equal(n.report, 1);
}

/* The kinds' table keeps every code, status and type the gateway has
 * always answered with, and the attempt labels. */
static void test_fail_table(void **state)
{
    static const struct {
        mn_fail kind;
        int status;
        const char *type, *code, *label;
        int retryable;
    } want[] = {
        { MN_FAIL_UNREACHABLE, 502, "upstream_error", "upstream_unreachable", "unreachable", 1 },
        { MN_FAIL_TLS, 502, "upstream_error", "upstream_tls_error", "tls_error", 1 },
        { MN_FAIL_TIMEOUT, 504, "timeout_error", "upstream_timeout", "timeout", 1 },
        { MN_FAIL_TOTAL_TIMEOUT, 504, "timeout_error", "upstream_total_timeout",
          "total_timeout", 1 },
        { MN_FAIL_RESET, 502, "upstream_error", "upstream_reset", "reset", 1 },
        { MN_FAIL_BUSY, 503, "server_error", "upstream_busy", "busy", 1 },
        { MN_FAIL_BAD_RESPONSE, 502, "upstream_error", "upstream_bad_response",
          "bad_response", 0 },
        { MN_FAIL_TOO_LARGE, 502, "upstream_error", "upstream_too_large", "too_large", 0 },
        { MN_FAIL_EVENT_TOO_LARGE, 502, "upstream_error", "upstream_event_too_large",
          "event_too_large", 0 },
        { MN_FAIL_EOF, 502, "upstream_error", "upstream_eof", "eof", 0 },
        { MN_FAIL_UPSTREAM_ERROR, 502, "upstream_error", "upstream_error", "error", 0 },
        { MN_FAIL_UNCONFIGURED, 502, "upstream_error", "upstream_unconfigured",
          "unconfigured", 0 },
        { MN_FAIL_CIRCUIT_OPEN, 503, "server_error", "circuit_open", "circuit_open", 0 },
        { MN_FAIL_UNAVAILABLE, 503, "server_error", "provider_unavailable", "unavailable", 0 },
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(want) / sizeof(want[0]); i++) {
        mn_error e, s;
        mn_error_fail(&e, want[i].kind, "provider '%s' x", "p");
        assert_int_equal(e.kind, want[i].kind);
        assert_int_equal(e.status, want[i].status);
        assert_string_equal(e.type, want[i].type);
        assert_string_equal(e.code, want[i].code);
        assert_string_equal(e.message, "provider 'p' x");
        assert_string_equal(mn_error_label(&e), want[i].label);
        assert_int_equal(mn_fail_retryable(want[i].kind), want[i].retryable);
        assert_string_equal(mn_fail_code(want[i].kind), want[i].code);
        /* a unit that sets the code string gets the same kind */
        mn_error_set(&s, want[i].status, NULL, NULL, want[i].code, "x");
        assert_int_equal(s.kind, want[i].kind);
    }
}

static void test_kind_of_other_errors(void **state)
{
    mn_error e;
    (void)state;
    mn_error_set(&e, 400, NULL, "n", NULL, "bad n");
    assert_int_equal(e.kind, MN_FAIL_CLIENT);
    assert_string_equal(mn_error_label(&e), "invalid_request_error");
    mn_error_set(&e, 500, "server_error", NULL, NULL, "out of memory");
    assert_int_equal(e.kind, MN_FAIL_INTERNAL);
    assert_false(mn_fail_retryable(e.kind));
    assert_string_equal(mn_error_label(&e), "server_error");
    /* an upstream's own code decides nothing, even one that looks like ours */
    {
        static const char body[] = "{\"error\":{\"message\":\"m\",\"code\":\"upstream_reset\"}}";
        mn_error_from_openai_body(&e, 502, body, sizeof(body) - 1, NULL);
    }
    assert_int_equal(e.kind, MN_FAIL_UPSTREAM_HTTP);
    assert_false(mn_fail_retryable(e.kind));
    assert_string_equal(mn_error_label(&e), "reset");
    mn_error_set(&e, 502, NULL, NULL, "overloaded", "m");
    assert_string_equal(mn_error_label(&e), "overloaded");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sent_is_done),
        cmocka_unit_test(test_outcome_by_status_then_kind),
        cmocka_unit_test(test_retry_with_backoff),
        cmocka_unit_test(test_retries_spent),
        cmocka_unit_test(test_caller_fault_answers_at_once),
        cmocka_unit_test(test_keys_rotate),
        cmocka_unit_test(test_circuit_open_and_unavailable),
        cmocka_unit_test(test_fail_table),
        cmocka_unit_test(test_kind_of_other_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
