/* Unit tests for src/wire/anthropic_response.c: non-streaming answers and
 * upstream errors (Retry-After included), against the shared fixtures and
 * small inline cases. */
#include "anthropic_test.h"

/* ----------------------------------------------------------- response side */

static void response_fixture(fx *f, const char *name, const char *expected,
                             long prompt, long completion)
{
    size_t len;
    char *raw = mn_t_fixture(name, &len);
    json_t *want = mn_t_fixture_json(expected);
    json_t *out = NULL;
    mn_usage usage;
    mn_error err;

    memset(&usage, 0, sizeof(usage));
    assert_int_equal(mn_wire_anthropic.decode_response(&f->ctx, raw, len, &out, &usage, &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "provider")), PROVIDER);
    json_object_del(out, "provider");
    if (!json_equal(out, want)) {
        char *g = json_dumps(out, JSON_COMPACT);
        fail_msg("%s\n got: %s", expected, g);
    }
    assert_int_equal(usage.have, 1);
    assert_int_equal(usage.prompt_tokens, prompt);
    assert_int_equal(usage.completion_tokens, completion);
    assert_int_equal(usage.total_tokens, prompt + completion);
    json_decref(out);
    json_decref(want);
    free(raw);
}

static void test_response_fixture_text(void **state)
{
    response_fixture(*state, "anthropic/response_text.json",
                     "anthropic/response_text.expected_openai.json", 21 + 0 + 1830, 24);
}

static void test_response_fixture_tool_call(void **state)
{
    response_fixture(*state, "anthropic/response_tool_call.json",
                     "anthropic/response_tool_call.expected_openai.json", 412, 112);
}


static void test_response_finish_reasons(void **state)
{
    static const char *const map[][2] = {
        { "'end_turn'", "stop" }, { "'stop_sequence'", "stop" }, { "'pause_turn'", "stop" },
        { "'max_tokens'", "length" }, { "'model_context_window_exceeded'", "length" },
        { "'tool_use'", "tool_calls" }, { "'refusal'", "content_filter" },
        { "'something_new'", "stop" }, { "null", "stop" }
    };
    fx *f = *state;
    size_t i;
    char body[512];

    for (i = 0; i < sizeof(map) / sizeof(map[0]); i++) {
        json_t *out;
        snprintf(body, sizeof(body), "{'id':'msg_1','type':'message','role':'assistant',"
                 "'model':'m','content':[{'type':'text','text':'t'}],'stop_reason':%s,"
                 "'usage':{'input_tokens':1,'output_tokens':2}}", map[i][0]);
        out = decode_ok(f, body, NULL);
        assert_string_equal(json_string_value(
            at(json_array_get(json_object_get(out, "choices"), 0), "finish_reason", NULL)),
            map[i][1]);
        json_decref(out);
    }
}

static void test_response_shapes(void **state)
{
    fx *f = *state;
    mn_usage u;
    json_t *out;

    /* no text: content null; empty input: "{}"; several texts joined */
    out = decode_ok(f, "{'id':'msg_2','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
                       "{'type':'tool_use','id':'toolu_1','name':'now','input':{}}],"
                       "'stop_reason':'tool_use','usage':{'input_tokens':3,"
                       "'cache_creation_input_tokens':4,'cache_read_input_tokens':5,"
                       "'output_tokens':6,"
                       "'output_tokens_details':{'thinking_tokens':2}}}", &u);
    json_object_del(out, "provider");
    assert_json(out, "{'id':'msg_2','object':'chat.completion','created':1767225600,'model':'m',"
                     "'choices':[{'index':0,'message':{'role':'assistant','content':null,"
                     "'refusal':null,"
                     "'thinking_blocks':[{'type':'thinking','thinking':'hmm','signature':'s'}],"
                     "'tool_calls':[{'id':'toolu_1','type':'function','function':{'name':'now',"
                     "'arguments':'{}'}}]},'logprobs':null,'finish_reason':'tool_calls'}],"
                     "'usage':{'prompt_tokens':12,'completion_tokens':6,'total_tokens':18,"
                     "'prompt_tokens_details':{'cached_tokens':5,'cache_creation_tokens':4},"
                     "'completion_tokens_details':{'reasoning_tokens':2}}}");
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.completion_tokens, 6);
    assert_int_equal(u.total_tokens, 18);
    json_decref(out);

    out = decode_ok(f, "{'id':'msg_3','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'text','text':'a'},{'type':'server_tool_use','id':'x',"
                       "'name':'web_search','input':{}},{'type':'text','text':'b'}],"
                       "'stop_reason':'end_turn','usage':{'input_tokens':1,"
                       "'output_tokens':1}}", NULL);
    assert_json(at(json_array_get(json_object_get(out, "choices"), 0), "message", NULL),
                "{'role':'assistant','content':'ab','refusal':null}");
    json_decref(out);

    /* the thinking text surfaces only when the provider opted into
     * reasoning_content; the signed blocks always */
    f->prov.reasoning_content = 1;
    out = decode_ok(f, "{'id':'msg_4','type':'message','role':'assistant','model':'m',"
                       "'content':[{'type':'thinking','thinking':'hmm','signature':'s'},"
                       "{'type':'text','text':'42'}],'stop_reason':'end_turn',"
                       "'usage':{'input_tokens':1,'output_tokens':1}}", NULL);
    assert_json(at(json_array_get(json_object_get(out, "choices"), 0), "message", NULL),
                "{'role':'assistant','content':'42','refusal':null,'reasoning_content':'hmm',"
                "'thinking_blocks':[{'type':'thinking','thinking':'hmm','signature':'s'}]}");
    json_decref(out);
}

static void decode_bad(fx *f, const char *body)
{
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    mn_error_clear(&err);
    assert_int_equal(mn_wire_anthropic.decode_response(&f->ctx, body, strlen(body), &out, &u, &err),
                     -1);
    assert_null(out);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.type, "upstream_error");
    assert_string_equal(err.code, "upstream_bad_response");
}

static void test_response_bad_bodies(void **state)
{
    fx *f = *state;
    decode_bad(f, "<html>502 Bad Gateway</html>");
    decode_bad(f, "");
    decode_bad(f, "[]");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"message\",\"model\":\"m\"}");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"message\",\"content\":\"text\"}");
    decode_bad(f, "{\"id\":\"msg_1\",\"type\":\"completion\",\"content\":[]}");
    decode_bad(f, "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\","
                  "\"message\":\"Overloaded\"}}");
}

/* ------------------------------------------------------------- error side */

static void error_fixture(fx *f, const char *name, int status, const char *retry_after)
{
    char rel[128], exp[160];
    size_t len;
    char *raw;
    json_t *want, *got;
    mn_error err;

    snprintf(rel, sizeof(rel), "anthropic/%s.json", name);
    snprintf(exp, sizeof(exp), "anthropic/%s.expected_openai.json", name);
    raw = mn_t_fixture(rel, &len);
    want = mn_t_fixture_json(exp);
    mn_error_clear(&err);
    mn_wire_anthropic.decode_error(&f->ctx, status, raw, len, retry_after, &err);
    assert_int_equal(err.status, status);
    assert_string_equal(err.retry_after, retry_after ? retry_after : "");
    got = mn_error_to_json(&err, NULL);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT);
        fail_msg("%s\n got: %s", exp, g);
    }
    json_decref(got);
    json_decref(want);
    free(raw);
}

static void test_error_fixtures(void **state)
{
    fx *f = *state;
    error_fixture(f, "error_400_invalid_request", 400, NULL);
    error_fixture(f, "error_401_authentication", 401, NULL);
    error_fixture(f, "error_404_not_found", 404, NULL);
    error_fixture(f, "error_413_request_too_large", 413, NULL);
    error_fixture(f, "error_429_rate_limit", 429, "17");
    error_fixture(f, "error_500_api_error", 500, NULL);
    error_fixture(f, "error_529_overloaded", 529, NULL);
}

static void test_error_unexpected_bodies(void **state)
{
    fx *f = *state;
    mn_error err;
    const char *html = "<html><body>503 Service Unavailable</body></html>";

    mn_wire_anthropic.decode_error(&f->ctx, 503, html, strlen(html), "5", &err);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.type, "server_error");
    assert_string_equal(err.param, "");
    assert_string_equal(err.code, "");
    assert_non_null(strstr(err.message, "503"));
    assert_string_equal(err.retry_after, "5");

    mn_wire_anthropic.decode_error(&f->ctx, 429, "{\"detail\":\"slow\"}", 17, NULL, &err);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "rate_limit_error");
    assert_string_equal(err.retry_after, "");

    mn_wire_anthropic.decode_error(&f->ctx, 401, NULL, 0, NULL, &err);
    assert_string_equal(err.type, "authentication_error");
    assert_non_null(strstr(err.message, "401"));

    /* type missing: derived from the status; message kept */
    mn_wire_anthropic.decode_error(&f->ctx, 400, "{\"error\":{\"message\":\"bad\"}}", 27, NULL,
                                   &err);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.message, "bad");
}

static void test_error_key_scrubbed(void **state)
{
    fx *f = *state;
    mn_error err;
    const char *body = "{\"type\":\"error\",\"error\":{\"type\":\"authentication_error\","
                       "\"message\":\"invalid x-api-key sk-test-key\"}}";
    mn_wire_anthropic.decode_error(&f->ctx, 401, body, strlen(body), NULL, &err);
    assert_string_equal(err.message, "invalid x-api-key ***");
}


static void test_bug_retry_after_normalised(void **state)
{
    static const char *const cases[][2] = {
        { "30", "30" }, { " 7 ", "7" }, { "0.2", "1" }, { "2.5", "3" }, { "1e300", "86400" },
        { "1e999", "86400" }, { "99999999999999999999999", "86400" }, { "-5", "" },
        { "soon", "" }, { "12abc", "" }, { "", "" },
        /* an HTTP-date counts from the gateway clock (1767225600 = 1 Jan 2026) */
        { "Thu, 01 Jan 2026 00:01:40 GMT", "100" }, { "Wed, 31 Dec 2025 23:00:00 GMT", "0" },
    };
    fx *f = *state;
    mn_error err;
    size_t i;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_wire_anthropic.decode_error(&f->ctx, 429, "{}", 2, cases[i][0], &err);
        if (strcmp(err.retry_after, cases[i][1])) {
            fail_msg("Retry-After '%s' became '%s', want '%s'", cases[i][0], err.retry_after,
                     cases[i][1]);
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_response_fixture_text),
        T(test_response_fixture_tool_call),
        T(test_response_finish_reasons),
        T(test_response_shapes),
        T(test_response_bad_bodies),
        T(test_error_fixtures),
        T(test_error_unexpected_bodies),
        T(test_error_key_scrubbed),
        T(test_bug_retry_after_normalised),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests_name("anthropic_response", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
