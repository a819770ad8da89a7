/* Unit tests for src/core/trace.c: trace context in, traceparent out,
 * request ids. */
#include "harness.h"
#include "mn_trace.h"

#define TID "4bf92f3577b34da6a3ce929d0e0e4736"
#define SID "00f067aa0ba902b7"

static const unsigned char SPAN[8] = { 0xde, 0xad, 0xbe, 0xef, 0x01, 0x23, 0x45, 0x67 };

static mn_trace_rc from_json(const char *text, mn_trace_ctx *t, const char **why)
{
    json_t *j = mn_t_json(text);
    mn_trace_rc rc = mn_trace_from_json(j, t, why);
    json_decref(j);
    return rc;
}

static void test_json_full(void **state)
{
    mn_trace_ctx t;
    const char *why = "x";
    char out[MN_TRACEPARENT_LEN + 1];

    assert_int_equal(from_json("{\"id\":\"" TID "\",\"span_id\":\"" SID "\","
                               "\"parent_span_id\":\"whatever\"}", &t, &why), MN_TRACE_OK);
    assert_null(why);
    assert_string_equal(t.trace_id, TID);
    assert_string_equal(t.span_id, SID);
    assert_string_equal(t.flags, "01");
    mn_trace_format(&t, SPAN, out);
    /* the client's span is not in it: a new span of ours is the parent-id */
    assert_string_equal(out, "00-" TID "-deadbeef01234567-01");
    assert_int_equal(strlen(out), MN_TRACEPARENT_LEN);
}

static void test_json_upper_case_lowered_and_span_optional(void **state)
{
    mn_trace_ctx t;
    const char *why;
    assert_int_equal(from_json("{\"id\":\"4BF92F3577B34DA6A3CE929D0E0E4736\"}", &t, &why),
                     MN_TRACE_OK);
    assert_string_equal(t.trace_id, TID);
    assert_string_equal(t.span_id, "");
    assert_int_equal(from_json("{\"id\":\"" TID "\",\"span_id\":null}", &t, &why), MN_TRACE_OK);
}

static void test_json_invalid(void **state)
{
    static const struct { const char *body; const char *why; } cases[] = {
        { "{\"span_id\":\"" SID "\"}", "trace.id missing" },
        { "{\"id\":\"4bf92f3577b34da6a3ce929d0e0e473\"}", "wrong length" },
        { "{\"id\":\"4bf92f3577b34da6a3ce929d0e0e47366\"}", "wrong length" },
        { "{\"id\":\"4bf92f3577b34da6a3ce929d0e0e473g\"}", "not lower-case hex" },
        { "{\"id\":\"00000000000000000000000000000000\"}", "all zeros" },
        { "{\"id\":12345}", "not a string" },
        { "{\"id\":\"" TID "\",\"span_id\":\"0000000000000000\"}", "all zeros" },
        { "{\"id\":\"" TID "\",\"span_id\":\"00f067aa0ba902b\"}", "wrong length" },
        { "{\"id\":\"" TID "\",\"span_id\":\"00f067aa-ba902b7\"}", "not lower-case hex" },
        { "{\"id\":\"" TID "\",\"span_id\":7}", "not a string" },
        { "{\"id\":\"trace-123\"}", "wrong length" },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_trace_ctx t;
        const char *why = NULL;
        assert_int_equal(from_json(cases[i].body, &t, &why), MN_TRACE_INVALID);
        assert_non_null(why);
        if (strcmp(why, cases[i].why)) {
            fail_msg("%s: why '%s', expected '%s'", cases[i].body, why, cases[i].why);
        }
    }
}

static void test_json_none(void **state)
{
    mn_trace_ctx t;
    const char *why;
    json_t *s = json_string(TID);
    assert_int_equal(mn_trace_from_json(NULL, &t, &why), MN_TRACE_NONE);
    assert_int_equal(mn_trace_from_json(s, &t, &why), MN_TRACE_NONE);
    json_decref(s);
}

static void test_header_valid(void **state)
{
    mn_trace_ctx t;
    const char *why;
    char out[MN_TRACEPARENT_LEN + 1];

    assert_int_equal(mn_trace_from_header("00-" TID "-" SID "-01", &t, &why), MN_TRACE_OK);
    assert_string_equal(t.trace_id, TID);
    assert_string_equal(t.span_id, SID);
    assert_string_equal(t.flags, "01");
    /* flags are the client's: not sampled stays not sampled */
    assert_int_equal(mn_trace_from_header(" 00-" TID "-" SID "-00\t", &t, &why), MN_TRACE_OK);
    mn_trace_format(&t, SPAN, out);
    assert_string_equal(out, "00-" TID "-deadbeef01234567-00");
    /* a later version may carry more fields; we answer in version 00 */
    assert_int_equal(mn_trace_from_header("cc-" TID "-" SID "-01-what-the-future", &t, &why),
                     MN_TRACE_OK);
    mn_trace_format(&t, SPAN, out);
    assert_string_equal(out, "00-" TID "-deadbeef01234567-01");
    assert_int_equal(mn_trace_from_header("01-" TID "-" SID "-03", &t, &why), MN_TRACE_OK);
    assert_string_equal(t.flags, "03");
}

static void test_header_invalid(void **state)
{
    static const struct { const char *h; const char *why; } cases[] = {
        { "", "too short" },
        { "00-" TID "-" SID "-0", "too short" },
        { "00-" TID "-" SID "-01-extra", "bad layout" },
        { "00-" TID "-" SID "-01x", "bad layout" },
        { "ff-" TID "-" SID "-01", "bad version" },
        { "0g-" TID "-" SID "-01", "bad version" },
        { "0A-" TID "-" SID "-01", "bad version" },
        { "00_" TID "-" SID "-01", "bad layout" },
        { "00-4BF92F3577B34DA6A3CE929D0E0E4736-" SID "-01", "not lower-case hex" },
        { "00-00000000000000000000000000000000-" SID "-01", "all zeros" },
        { "00-" TID "-0000000000000000-01", "all zeros" },
        { "00-" TID "-00F067AA0BA902B7-01", "not lower-case hex" },
        { "00-" TID "-" SID "-0G", "bad flags" },
        { "00-" TID "-" SID "-0A", "bad flags" },
        { "cc-" TID "-" SID "-01.more", "bad layout" },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_trace_ctx t;
        const char *why = NULL;
        if (mn_trace_from_header(cases[i].h, &t, &why) != MN_TRACE_INVALID) {
            fail_msg("'%s' accepted", cases[i].h);
        }
        if (!why || strcmp(why, cases[i].why)) {
            fail_msg("'%s': why '%s', expected '%s'", cases[i].h, why ? why : "(null)",
                     cases[i].why);
        }
    }
    {
        mn_trace_ctx t;
        const char *why;
        assert_int_equal(mn_trace_from_header(NULL, &t, &why), MN_TRACE_NONE);
    }
}

static void test_format_zero_span(void **state)
{
    mn_trace_ctx t;
    const char *why;
    static const unsigned char zero[8] = { 0 };
    char out[MN_TRACEPARENT_LEN + 1];
    assert_int_equal(mn_trace_from_header("00-" TID "-" SID "-01", &t, &why), MN_TRACE_OK);
    mn_trace_format(&t, zero, out);
    assert_string_equal(out, "00-" TID "-0000000000000001-01");
}

static void test_request_id(void **state)
{
    char longest[MN_REQUEST_ID_MAX + 2];
    assert_true(mn_request_id_ok("req_8f3a-11/x.y:z"));
    assert_true(mn_request_id_ok("a"));
    assert_false(mn_request_id_ok(NULL));
    assert_false(mn_request_id_ok(""));
    assert_false(mn_request_id_ok("two words"));
    assert_false(mn_request_id_ok("tab\tid"));
    assert_false(mn_request_id_ok("nl\nid"));
    assert_false(mn_request_id_ok("caf\xc3\xa9"));
    assert_false(mn_request_id_ok("del\x7f"));
    memset(longest, 'x', MN_REQUEST_ID_MAX);
    longest[MN_REQUEST_ID_MAX] = '\0';
    assert_true(mn_request_id_ok(longest));
    longest[MN_REQUEST_ID_MAX] = 'x';
    longest[MN_REQUEST_ID_MAX + 1] = '\0';
    assert_false(mn_request_id_ok(longest));
}

static void test_trace_state(void **state)
{
    char big[514];
    assert_true(mn_trace_state_ok("congo=t61rcWkgMzE, rojo=00f067aa0ba902b7"));
    assert_true(mn_trace_state_ok("a=b,\tc=d"));
    assert_false(mn_trace_state_ok(NULL));
    assert_false(mn_trace_state_ok(""));
    assert_false(mn_trace_state_ok("a=b\r\nx: y"));
    memset(big, 'a', 512);
    big[512] = '\0';
    assert_true(mn_trace_state_ok(big));
    big[512] = 'a';
    big[513] = '\0';
    assert_false(mn_trace_state_ok(big));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_json_full),
        cmocka_unit_test(test_json_upper_case_lowered_and_span_optional),
        cmocka_unit_test(test_json_invalid),
        cmocka_unit_test(test_json_none),
        cmocka_unit_test(test_header_valid),
        cmocka_unit_test(test_header_invalid),
        cmocka_unit_test(test_format_zero_span),
        cmocka_unit_test(test_request_id),
        cmocka_unit_test(test_trace_state),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
