/* Retry policy and circuit breaker (src/resilience.c). */
#include "harness.h"
#include "mn_resilience.h"
#include <apr_date.h>

#define SEC(x) apr_time_from_sec(x)

static void test_outcome_table(void **state)
{
    (void)state;
    assert_int_equal(mn_outcome_for_status(200), MN_OUTCOME_SUCCESS);
    assert_int_equal(mn_outcome_for_status(204), MN_OUTCOME_SUCCESS);
    assert_int_equal(mn_outcome_for_status(400), MN_OUTCOME_CALLER);
    assert_int_equal(mn_outcome_for_status(404), MN_OUTCOME_CALLER);
    assert_int_equal(mn_outcome_for_status(422), MN_OUTCOME_CALLER);
    assert_int_equal(mn_outcome_for_status(401), MN_OUTCOME_KEY);
    assert_int_equal(mn_outcome_for_status(403), MN_OUTCOME_KEY);
    assert_int_equal(mn_outcome_for_status(408), MN_OUTCOME_RETRY);
    assert_int_equal(mn_outcome_for_status(409), MN_OUTCOME_RETRY);
    assert_int_equal(mn_outcome_for_status(429), MN_OUTCOME_RETRY);
    assert_int_equal(mn_outcome_for_status(500), MN_OUTCOME_FAILURE);
    assert_int_equal(mn_outcome_for_status(502), MN_OUTCOME_FAILURE);
    assert_int_equal(mn_outcome_for_status(503), MN_OUTCOME_FAILURE);
    assert_int_equal(mn_outcome_for_status(504), MN_OUTCOME_FAILURE);
    assert_int_equal(mn_outcome_for_status(529), MN_OUTCOME_FAILURE);
    assert_int_equal(mn_outcome_for_status(501), MN_OUTCOME_FAILURE);
}

static void test_backoff(void **state)
{
    apr_interval_time_t base = apr_time_from_msec(100), cap = SEC(10);
    (void)state;
    /* jitter spans 50%..150% of base * 2^attempt */
    assert_int_equal(mn_backoff(0, base, -1, cap, 0.0), apr_time_from_msec(50));
    assert_int_equal(mn_backoff(0, base, -1, cap, 0.5), apr_time_from_msec(100));
    assert_int_equal(mn_backoff(2, base, -1, cap, 0.5), apr_time_from_msec(400));
    assert_int_equal(mn_backoff(3, base, -1, cap, 0.999) < apr_time_from_msec(1200), 1);
    /* Retry-After wins over the backoff, up to the cap */
    assert_int_equal(mn_backoff(0, base, SEC(3), cap, 0.5), SEC(3));
    assert_int_equal(mn_backoff(0, base, SEC(60), cap, 0.5), SEC(10));
    assert_int_equal(mn_backoff(40, base, -1, cap, 0.5), SEC(10));
}

static void test_retry_after_parse(void **state)
{
    apr_time_t now = apr_date_parse_http("Wed, 25 Nov 2026 10:00:00 GMT");
    (void)state;
    assert_int_equal(mn_parse_retry_after("17", now), SEC(17));
    assert_int_equal(mn_parse_retry_after(" 2 ", now), SEC(2));
    assert_int_equal(mn_parse_retry_after("0.5", now), apr_time_from_msec(500));
    assert_int_equal(mn_parse_retry_after("Wed, 25 Nov 2026 10:00:41 GMT", now), SEC(41));
    assert_int_equal(mn_parse_retry_after("Wed, 25 Nov 2026 09:00:00 GMT", now), 0);
    assert_int_equal(mn_parse_retry_after(NULL, now), -1);
    assert_int_equal(mn_parse_retry_after("", now), -1);
    assert_int_equal(mn_parse_retry_after("soon", now), -1);
    assert_int_equal(mn_parse_retry_after("5s", now), -1);
}

/* An upstream's absurd value: clamped before any cast (UBSan fails the
 * test on a double-to-integer overflow), never negative. */
static void test_retry_after_huge(void **state)
{
    apr_time_t now = apr_date_parse_http("Wed, 25 Nov 2026 10:00:00 GMT");
    (void)state;
    assert_int_equal(mn_parse_retry_after("1e300", now), SEC(MN_RETRY_AFTER_MAX_SEC));
    assert_int_equal(mn_parse_retry_after("1e999", now), SEC(MN_RETRY_AFTER_MAX_SEC));
    assert_int_equal(mn_parse_retry_after("99999999999999999999999999", now),
                     SEC(MN_RETRY_AFTER_MAX_SEC));
    assert_int_equal(mn_parse_retry_after("86401", now), SEC(86400));
    assert_int_equal(mn_parse_retry_after("Fri, 31 Dec 9999 23:59:59 GMT", now),
                     SEC(MN_RETRY_AFTER_MAX_SEC));
    assert_int_equal(mn_parse_retry_after("1e-300", now), 0);
}

/* What the client gets: whole seconds, whatever form the upstream used. */
static void test_retry_after_normalise(void **state)
{
    apr_time_t now = apr_date_parse_http("Wed, 25 Nov 2026 10:00:00 GMT");
    char out[32];
    (void)state;
    assert_int_equal(mn_retry_after_normalise("17", now, out, sizeof(out)), 0);
    assert_string_equal(out, "17");
    assert_int_equal(mn_retry_after_normalise(" 1.2 ", now, out, sizeof(out)), 0);
    assert_string_equal(out, "2");
    assert_int_equal(mn_retry_after_normalise("1e300", now, out, sizeof(out)), 0);
    assert_string_equal(out, "86400");
    assert_int_equal(mn_retry_after_normalise("Wed, 25 Nov 2026 10:00:41 GMT", now, out,
                                              sizeof(out)), 0);
    assert_string_equal(out, "41");
    assert_int_equal(mn_retry_after_normalise("Wed, 25 Nov 2026 09:00:00 GMT", now, out,
                                              sizeof(out)), 0);
    assert_string_equal(out, "0");
    strcpy(out, "x");
    assert_int_equal(mn_retry_after_normalise("soon", now, out, sizeof(out)), -1);
    assert_string_equal(out, "");
    assert_int_equal(mn_retry_after_normalise(NULL, now, out, sizeof(out)), -1);
    assert_string_equal(out, "");
}

static void test_breaker_opens_after_k_failures(void **state)
{
    mn_breaker_slot s = { 0, 0, 0 };
    apr_time_t now = SEC(1000);
    apr_interval_time_t wait;
    int probe;
    (void)state;

    assert_true(mn_breaker_allow(&s, 3, SEC(30), now, &probe, &wait));
    assert_false(probe);
    assert_int_equal(mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0), MN_BREAKER_NO_CHANGE);
    assert_int_equal(mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0), MN_BREAKER_NO_CHANGE);
    assert_int_equal(mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0), MN_BREAKER_OPENED);
    /* a fourth failure reported late does not re-announce it */
    assert_int_equal(mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0), MN_BREAKER_NO_CHANGE);

    assert_false(mn_breaker_allow(&s, 3, SEC(30), now + SEC(10), &probe, &wait));
    assert_int_equal(wait, SEC(20));
}

static void test_breaker_single_probe_then_close(void **state)
{
    mn_breaker_slot s = { 0, 0, 0 };
    apr_time_t now = SEC(1000);
    apr_interval_time_t wait;
    int probe, i;
    (void)state;

    for (i = 0; i < 2; i++) {
        mn_breaker_record(&s, 2, SEC(30), now, MN_OUTCOME_FAILURE, 0);
    }
    /* after the cooldown exactly one request is let through */
    assert_true(mn_breaker_allow(&s, 2, SEC(30), now + SEC(31), &probe, &wait));
    assert_true(probe);
    assert_false(mn_breaker_allow(&s, 2, SEC(30), now + SEC(31), &probe, &wait));
    assert_int_equal(mn_breaker_record(&s, 2, SEC(30), now + SEC(32), MN_OUTCOME_SUCCESS, 1),
                     MN_BREAKER_CLOSED);
    assert_true(mn_breaker_allow(&s, 2, SEC(30), now + SEC(32), &probe, &wait));
    assert_false(probe);
    assert_int_equal(s.failures, 0);
}

static void test_breaker_failed_probe_reopens(void **state)
{
    mn_breaker_slot s = { 0, 0, 0 };
    apr_time_t now = SEC(1000);
    apr_interval_time_t wait;
    int probe;
    (void)state;

    mn_breaker_record(&s, 1, SEC(5), now, MN_OUTCOME_FAILURE, 0);
    assert_true(mn_breaker_allow(&s, 1, SEC(5), now + SEC(6), &probe, &wait));
    assert_true(probe);
    assert_int_equal(mn_breaker_record(&s, 1, SEC(5), now + SEC(7), MN_OUTCOME_FAILURE, 1),
                     MN_BREAKER_REOPENED);
    /* open for a full cooldown from the probe's start */
    assert_false(mn_breaker_allow(&s, 1, SEC(5), now + SEC(10), &probe, &wait));
    assert_true(mn_breaker_allow(&s, 1, SEC(5), now + SEC(12), &probe, &wait));
    assert_true(probe);
}

static void test_breaker_4xx_neutral(void **state)
{
    mn_breaker_slot s = { 0, 0, 0 };
    apr_time_t now = SEC(1000);
    (void)state;
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0);
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_FAILURE, 0);
    /* 429s and caller errors neither count nor reset the run */
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_RETRY, 0);
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_CALLER, 0);
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_KEY, 0);
    assert_int_equal(s.failures, 2);
    /* a success does reset it */
    mn_breaker_record(&s, 3, SEC(30), now, MN_OUTCOME_SUCCESS, 0);
    assert_int_equal(s.failures, 0);
}

static void test_breaker_off(void **state)
{
    mn_breaker_slot s = { 0, 0, 0 };
    apr_interval_time_t wait;
    int probe, i;
    (void)state;
    for (i = 0; i < 50; i++) {
        assert_int_equal(mn_breaker_record(&s, 0, SEC(30), SEC(1), MN_OUTCOME_FAILURE, 0),
                         MN_BREAKER_NO_CHANGE);
    }
    assert_true(mn_breaker_allow(&s, 0, SEC(30), SEC(2), &probe, &wait));
    assert_true(mn_breaker_allow(NULL, 5, SEC(30), SEC(2), &probe, &wait));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_outcome_table),
        cmocka_unit_test(test_backoff),
        cmocka_unit_test(test_retry_after_parse),
        cmocka_unit_test(test_retry_after_huge),
        cmocka_unit_test(test_retry_after_normalise),
        cmocka_unit_test(test_breaker_opens_after_k_failures),
        cmocka_unit_test(test_breaker_single_probe_then_close),
        cmocka_unit_test(test_breaker_failed_probe_reopens),
        cmocka_unit_test(test_breaker_4xx_neutral),
        cmocka_unit_test(test_breaker_off),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
