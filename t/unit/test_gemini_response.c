/* Unit tests for src/wire/gemini_response.c: every gemini/ answer and error
 * fixture against its expected partner, plus one small case per mapping
 * rule. */
#include <limits.h>
#include "gemini_test.h"

/* ------------------------------------------------------------------------ */
/* Non-streaming responses                                                   */


static void check_response_fixture(void **state, const char *name, long prompt,
                                   long completion, long total)
{
    char rel[256];
    size_t len;
    char *body;
    json_t *got, *want;
    mn_usage usage;

    snprintf(rel, sizeof(rel), "gemini/%s.json", name);
    body = mn_t_fixture(rel, &len);
    got = decode_ok(state, body, len, &usage);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.json", name);
    want = mn_t_fixture_json(rel);
    assert_json_eq(got, want);
    assert_int_equal(usage.have, 1);
    assert_int_equal(usage.prompt_tokens, prompt);
    assert_int_equal(usage.completion_tokens, completion);
    assert_int_equal(usage.total_tokens, total);
    json_decref(got);
    json_decref(want);
    free(body);
}

static void test_response_fixtures(void **state)
{
    check_response_fixture(state, "response_text", 8, 504, 512);
    check_response_fixture(state, "response_tool_call", 96, 205, 301);
    check_response_fixture(state, "response_prompt_blocked", 14, 0, 14);
}

static void test_response_finish_reasons(void **state)
{
    static const struct { const char *gemini; const char *openai; } cases[] = {
        { "STOP", "stop" }, { "MAX_TOKENS", "length" }, { "SAFETY", "content_filter" },
        { "RECITATION", "content_filter" }, { "BLOCKLIST", "content_filter" },
        { "PROHIBITED_CONTENT", "content_filter" }, { "SPII", "content_filter" },
        { "IMAGE_SAFETY", "content_filter" }, { "LANGUAGE", "content_filter" },
        { "OTHER", "stop" }, { "MALFORMED_FUNCTION_CALL", "stop" },
        { "FINISH_REASON_UNSPECIFIED", "stop" }, { "TOO_MANY_TOOL_CALLS", "stop" },
    };
    size_t i;
    char body[512];
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_usage usage;
        json_t *got, *fr;
        snprintf(body, sizeof(body), "{'candidates':[{'content':{'role':'model','parts':"
                 "[{'text':'t'}]},'finishReason':'%s'}],'responseId':'r','modelVersion':'m'}",
                 cases[i].gemini);
        got = decode_q(state, body, &usage);
        fr = json_object_get(json_array_get(json_object_get(got, "choices"), 0), "finish_reason");
        assert_string_equal(json_string_value(fr), cases[i].openai);
        json_decref(got);
    }
}

static void test_response_parts_ids_usage(void **state)
{
    mn_usage usage;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'role':'model','parts':["
        "  {'text':'thinking...','thought':true},"
        "  {'text':'Hello '},{'text':'world'},"
        "  {'functionCall':{'id':'fc-own','name':'f','args':{'b':1,'a':'\\u2014'}}},"
        "  {'functionCall':{'name':'g'}}]},'finishReason':'STOP'}],"
        "'usageMetadata':{'promptTokenCount':10,'toolUsePromptTokenCount':5,"
        "  'cachedContentTokenCount':4,'candidatesTokenCount':7,'totalTokenCount':22},"
        "'modelVersion':'gemini-x','responseId':'RID'}", &usage);
    assert_jq(got,
        "{'id':'RID','object':'chat.completion','created':1767225600,'model':'gemini-x',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':'Hello world','refusal':null,"
        "  'tool_calls':[{'id':'fc-own','type':'function','function':{'name':'f',"
        "     'arguments':'{\\'b\\':1,\\'a\\':\\'\\u2014\\'}'}},"
        "   {'id':'call_RID_1','type':'function','function':{'name':'g','arguments':'{}'}}]},"
        "  'logprobs':null,'finish_reason':'tool_calls'}],"
        "'usage':{'prompt_tokens':15,'completion_tokens':7,'total_tokens':22,"
        "  'prompt_tokens_details':{'cached_tokens':4}}}");
    assert_int_equal(usage.prompt_tokens, 15);
    assert_int_equal(usage.completion_tokens, 7);
    assert_int_equal(usage.total_tokens, 22);
    json_decref(got);

    /* MAX_TOKENS with a call stays length; no usageMetadata counts zero */
    got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'name':'g','args':{}}}]},"
        "'finishReason':'MAX_TOKENS'}],'responseId':'R2','modelVersion':'m'}", &usage);
    assert_string_equal(json_string_value(json_object_get(json_array_get(
        json_object_get(got, "choices"), 0), "finish_reason")), "length");
    assert_jq(json_object_get(got, "usage"),
              "{'prompt_tokens':0,'completion_tokens':0,'total_tokens':0,"
              "'prompt_tokens_details':{'cached_tokens':0}}");
    assert_int_equal(usage.have, 0);
    json_decref(got);
}

static void test_response_blocked_prompt(void **state)
{
    mn_usage usage;
    json_t *got = decode_q(state,
        "{'promptFeedback':{'blockReason':'SAFETY'},'responseId':'B','modelVersion':'m',"
        "'usageMetadata':{'promptTokenCount':3,'totalTokenCount':3}}", &usage);
    assert_jq(got,
        "{'id':'B','object':'chat.completion','created':1767225600,'model':'m',"
        "'choices':[{'index':0,'message':{'role':'assistant','content':null,'refusal':null},"
        "'logprobs':null,'finish_reason':'content_filter'}],"
        "'usage':{'prompt_tokens':3,'completion_tokens':0,'total_tokens':3,"
        "'prompt_tokens_details':{'cached_tokens':0}}}");
    json_decref(got);
}

static void test_response_not_gemini(void **state)
{
    static const char *bodies[] = {
        "<html>oops</html>", "{\"choices\":[]}", "[1,2]", "",
    };
    size_t i;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        mn_wire_ctx ctx;
        mn_provider prov;
        mn_error err;
        mn_usage usage;
        json_t *out = NULL;
        ctx_for(&ctx, &prov, state, 0, 0);
        mn_error_clear(&err);
        memset(&usage, 0, sizeof(usage));
        assert_int_equal(mn_wire_gemini.decode_response(&ctx, bodies[i], strlen(bodies[i]),
                                                        &out, &usage, &err), -1);
        assert_null(out);
        assert_int_equal(err.status, 502);
        assert_string_equal(err.code, "upstream_bad_response");
    }
}

/* ------------------------------------------------------------------------ */
/* Errors                                                                    */

static void check_error_fixture(void **state, const char *name, int status,
                                const char *retry_after)
{
    char rel[256];
    size_t len;
    char *body;
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    json_t *got, *want;

    ctx_for(&ctx, &prov, state, 0, 0);
    snprintf(rel, sizeof(rel), "gemini/%s.json", name);
    body = mn_t_fixture(rel, &len);
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, status, body, len, NULL, &err);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.json", name);
    want = mn_t_fixture_json(rel);
    got = mn_error_to_json(&err, NULL);
    assert_json_eq(got, want);
    assert_int_equal(err.status, status);
    assert_string_equal(err.retry_after, retry_after);
    json_decref(got);
    json_decref(want);

    /* a Retry-After header from upstream wins over RetryInfo */
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, status, body, len, "7", &err);
    assert_string_equal(err.retry_after, "7");
    free(body);
}

static void test_error_fixtures(void **state)
{
    check_error_fixture(state, "error_400_api_key_invalid", 400, "");
    check_error_fixture(state, "error_404_model_not_found", 404, "");
    check_error_fixture(state, "error_429_resource_exhausted", 429, "41");
    check_error_fixture(state, "error_500_internal", 500, "");
    check_error_fixture(state, "error_503_unavailable", 503, "");
}

static void decode_error_q(void **state, int status, const char *body_q, mn_error *err)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    json_t *j = jq(body_q);
    char *s = json_dumps(j, 0);
    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(err);
    mn_wire_gemini.decode_error(&ctx, status, s, strlen(s), NULL, err);
    free(s);
    json_decref(j);
}

static void test_error_mapping(void **state)
{
    static const struct { int http; const char *status; const char *type; } cases[] = {
        { 400, "INVALID_ARGUMENT", "invalid_request_error" },
        { 400, "FAILED_PRECONDITION", "invalid_request_error" },
        { 400, "OUT_OF_RANGE", "invalid_request_error" },
        { 401, "UNAUTHENTICATED", "authentication_error" },
        { 403, "PERMISSION_DENIED", "permission_error" },
        { 404, "NOT_FOUND", "not_found_error" },
        { 429, "RESOURCE_EXHAUSTED", "rate_limit_error" },
        { 500, "INTERNAL", "server_error" },
        { 503, "UNAVAILABLE", "server_error" },
        { 504, "DEADLINE_EXCEEDED", "server_error" },
        { 500, "UNKNOWN", "server_error" },
    };
    size_t i;
    char body[256];
    mn_error err;

    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{'error':{'code':%d,'message':'m%zu','status':'%s'}}",
                 cases[i].http, i, cases[i].status);
        decode_error_q(state, cases[i].http, body, &err);
        assert_int_equal(err.status, cases[i].http);
        assert_string_equal(err.type, cases[i].type);
        assert_string_equal(err.code, cases[i].status);
        assert_string_equal(err.param, "");
    }
}

static void test_error_retry_delay(void **state)
{
    static const struct { const char *delay; const char *want; } cases[] = {
        { "41s", "41" }, { "1.5s", "2" }, { "0.2s", "1" }, { "3.000s", "3" }, { "0s", "0" },
        { "12", "" }, { "abc", "" }, { "1.s", "" },
    };
    size_t i;
    char body[512];
    mn_error err;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        snprintf(body, sizeof(body), "{'error':{'code':429,'message':'slow','status':"
                 "'RESOURCE_EXHAUSTED','details':[{'@type':"
                 "'type.googleapis.com/google.rpc.RetryInfo','retryDelay':'%s'}]}}",
                 cases[i].delay);
        decode_error_q(state, 429, body, &err);
        assert_string_equal(err.retry_after, cases[i].want);
    }
}

static void test_error_not_gemini(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    const char *html = "<html><body>502 Bad Gateway</body></html>";

    ctx_for(&ctx, &prov, state, 0, 0);
    mn_error_clear(&err);
    mn_wire_gemini.decode_error(&ctx, 502, html, strlen(html), NULL, &err);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.type, "upstream_error");
    assert_true(strstr(err.message, "502") != NULL);

    /* the key is never echoed to a client */
    decode_error_q(state, 400, "{'error':{'code':400,'message':'bad key sk-test-key here',"
                               "'status':'INVALID_ARGUMENT'}}", &err);
    assert_string_equal(err.message, "bad key *** here");

    /* any of the round-robin keys */
    {
        static const char *const keys[] = { "sk-test-key", "sk-second-key" };
        json_t *j = jq("{'error':{'code':400,'message':'bad key sk-second-key',"
                       "'status':'INVALID_ARGUMENT'}}");
        char *s = json_dumps(j, 0);
        ctx_for(&ctx, &prov, state, 0, 0);
        prov.keys = keys;
        prov.nkeys = 2;
        mn_error_clear(&err);
        mn_wire_gemini.decode_error(&ctx, 400, s, strlen(s), NULL, &err);
        assert_string_equal(err.message, "bad key ***");
        free(s);
        json_decref(j);
    }
}


/* Answers without responseId (blocked prompts, safety): an id of ours, also
 * in the tool-call ids built from it, different for every answer. */
static void test_response_without_response_id(void **state)
{
    mn_usage usage;
    json_t *a = decode_q(state,
        "{'promptFeedback':{'blockReason':'SAFETY'},'modelVersion':'m'}", &usage);
    json_t *b = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'name':'f'}}]},"
        "'finishReason':'STOP'}],'responseId':''}", &usage);
    const char *ia = json_string_value(json_object_get(a, "id"));
    const char *ib = json_string_value(json_object_get(b, "id"));
    char want[96];

    assert_non_null(ia);
    assert_int_equal(strlen(ia), 33);
    assert_memory_equal(ia, "chatcmpl-", 9);
    assert_int_equal(strspn(ia + 9, "0123456789abcdef"), 24);
    assert_non_null(ib);
    assert_string_not_equal(ia, ib);
    snprintf(want, sizeof(want), "call_%s_0", ib);
    assert_string_equal(json_string_value(json_object_get(json_array_get(json_object_get(
        json_object_get(json_array_get(json_object_get(b, "choices"), 0), "message"),
        "tool_calls"), 0), "id")), want);
    json_decref(a);
    json_decref(b);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_response_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_finish_reasons, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_parts_ids_usage, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_blocked_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_not_gemini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_retry_delay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_error_not_gemini, setup, teardown),
        cmocka_unit_test_setup_teardown(test_response_without_response_id, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
