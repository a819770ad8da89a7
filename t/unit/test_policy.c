/* Unit tests for src/core/policy.c: validation and the map-or-reject policy. */
#include "harness.h"
#include "mn_policy.h"

/* JSON written with ' for " keeps the bodies below readable.  New reference. */
static json_t *load(const char *squoted)
{
    char *s = strdup(squoted);
    char *c;
    json_error_t jerr;
    json_t *j;
    for (c = s; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    j = json_loads(s, JSON_DECODE_ANY, &jerr);
    if (!j) {
        fail_msg("bad test JSON %s: %s", s, jerr.text);
    }
    free(s);
    return j;
}

#define MSGS "'messages':[{'role':'user','content':'hi'}]"

static void assert_json_is(json_t *got, const char *squoted)
{
    json_t *want = load(squoted);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("JSON differs\n got: %s\nwant: %s", g, w);
    }
    json_decref(want);
}

/* Applies the policy to body; on success the rewritten body is compared with
 * want_body (NULL: not compared). Returns the body (caller decrefs). */
static json_t *accept_keep(const char *body, unsigned keep, const char *want_body,
                           mn_policy_result *res)
{
    json_t *req = load(body);
    mn_error err;
    mn_error_clear(&err);
    if (mn_policy_apply(req, keep, res, &err) != 0) {
        fail_msg("rejected (%s): %s", err.param, err.message);
    }
    assert_false(mn_error_is_set(&err));
    if (want_body) {
        assert_json_is(req, want_body);
    }
    return req;
}

static json_t *accept_body(const char *body, const char *want_body, mn_policy_result *res)
{
    return accept_keep(body, 0, want_body, res);
}

/* The body must be refused with 400 invalid_request_error naming param
 * ("" for JSON null), and nothing may be left held in res. */
static void expect_reject(const char *body, const char *param)
{
    json_t *req = load(body);
    mn_policy_result res;
    mn_error err;
    mn_error_clear(&err);
    assert_int_equal(mn_policy_apply(req, 0, &res, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    if (strcmp(err.param, param)) {
        fail_msg("body %s: param \"%s\", want \"%s\" (%s)", body, err.param, param,
                 err.message);
    }
    assert_true(strlen(err.message) > 0);
    if (*param) {
        assert_non_null(strstr(err.message, param));
    }
    assert_null(res.tags);
    assert_null(res.metadata);
    assert_null(res.trace);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void assert_dropped(const mn_policy_result *res, const char *const *want, int n)
{
    int i;
    assert_int_equal(res->ndropped, n);
    for (i = 0; i < n; i++) {
        assert_string_equal(res->dropped[i], want[i]);
    }
}

/* ---- a plain request --------------------------------------------------- */

static void test_minimal_ok(void **state)
{
    mn_policy_result res;
    json_t *req = accept_body("{'model':'p/m'," MSGS "}", "{'model':'p/m'," MSGS "}", &res);
    assert_string_equal(res.model, "p/m");
    /* borrowed from the body, not copied */
    assert_ptr_equal(res.model, json_string_value(json_object_get(req, "model")));
    assert_int_equal(res.stream, 0);
    assert_int_equal(res.include_usage, 0);
    assert_int_equal(res.ndropped, 0);
    assert_null(res.tags);
    assert_null(res.metadata);
    assert_null(res.trace);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_fixture_request_ok(void **state)
{
    mn_policy_result res;
    json_t *want = mn_t_fixture_json("requests/openai_text.json");
    json_t *req = json_deep_copy(want);
    mn_error err;
    assert_int_equal(mn_policy_apply(req, 0, &res, &err), 0);
    assert_true(json_equal(req, want));
    assert_int_equal(res.stream, 1);
    assert_int_equal(res.include_usage, 1);
    assert_string_equal(res.model, "MODEL_ALIAS");
    mn_policy_result_clear(&res);
    json_decref(req);
    json_decref(want);
}

static void test_unknown_params_stay(void **state)
{
    mn_policy_result res;
    const char *body = "{'model':'p/m'," MSGS ",'top_k':40,'foo':{'bar':[1,2]},"
                       "'safe_prompt':true,'temperature':null}";
    json_t *req = accept_body(body, body, &res);
    assert_int_equal(res.ndropped, 0);
    mn_policy_result_clear(&res);
    json_decref(req);
}

/* ---- n ------------------------------------------------------------------ */

static void test_n(void **state)
{
    mn_policy_result res;
    json_t *req;
    expect_reject("{'model':'p/m'," MSGS ",'n':2}", "n");
    expect_reject("{'model':'p/m'," MSGS ",'n':0}", "n");
    expect_reject("{'model':'p/m'," MSGS ",'n':'1'}", "n");
    req = accept_body("{'model':'p/m'," MSGS ",'n':1}", "{'model':'p/m'," MSGS ",'n':1}", &res);
    mn_policy_result_clear(&res);
    json_decref(req);
}

/* ---- dropped fields ------------------------------------------------------ */

static void test_logprobs_dropped(void **state)
{
    mn_policy_result res;
    static const char *const want[] = { "logprobs", "top_logprobs" };
    json_t *req = accept_body("{'model':'p/m'," MSGS ",'top_logprobs':3,'logprobs':true}",
                              "{'model':'p/m'," MSGS "}", &res);
    assert_dropped(&res, want, 2);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_input_audio_dropped(void **state)
{
    mn_policy_result res;
    static const char *const want[] = { "input_audio" };
    /* two adjacent audio parts and one in a later message: removal must not
     * skip the part that slides into the removed slot */
    json_t *req = accept_body(
        "{'model':'p/m','messages':["
        "{'role':'user','content':[{'type':'text','text':'a'},"
        "{'type':'input_audio','input_audio':{'data':'AAA','format':'wav'}},"
        "{'type':'input_audio','input_audio':{'data':'BBB','format':'mp3'}},"
        "{'type':'text','text':'b'}]},"
        "{'role':'assistant','content':'ok'},"
        "{'role':'user','content':[{'type':'input_audio','input_audio':{'data':'C','format':'wav'}}]}]}",
        "{'model':'p/m','messages':["
        "{'role':'user','content':[{'type':'text','text':'a'},{'type':'text','text':'b'}]},"
        "{'role':'assistant','content':'ok'},"
        "{'role':'user','content':[]}]}",
        &res);
    assert_dropped(&res, want, 1);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_strict_dropped(void **state)
{
    mn_policy_result res;
    static const char *const want[] = { "response_format.json_schema.strict" };
    json_t *req = accept_body(
        "{'model':'p/m'," MSGS ",'response_format':{'type':'json_schema','json_schema':"
        "{'name':'x','strict':true,'schema':{'type':'object'}}}}",
        "{'model':'p/m'," MSGS ",'response_format':{'type':'json_schema','json_schema':"
        "{'name':'x','schema':{'type':'object'}}}}",
        &res);
    assert_dropped(&res, want, 1);
    mn_policy_result_clear(&res);
    json_decref(req);
}

/* The note order is documented and logged: it must not depend on the order
 * in which the policy happens to find the fields. */
static void test_dropped_order(void **state)
{
    mn_policy_result res;
    json_t *req;
    static const char *const all[] = { "logprobs", "top_logprobs", "input_audio",
                                       "response_format.json_schema.strict" };
    static const char *const two[] = { "top_logprobs", "input_audio" };
    static const char *const audio_strict[] = { "input_audio",
                                                "response_format.json_schema.strict" };
    const char *audio_msgs =
        "'messages':[{'role':'user','content':[{'type':'input_audio','input_audio':{}},"
        "{'type':'text','text':'t'}]}]";
    char body[1024];

    snprintf(body, sizeof(body),
             "{'response_format':{'type':'json_schema','json_schema':{'strict':false}},"
             "'top_logprobs':1,'model':'p/m',%s,'logprobs':false}", audio_msgs);
    req = accept_body(body, NULL, &res);
    assert_dropped(&res, all, 4);
    mn_policy_result_clear(&res);
    json_decref(req);

    snprintf(body, sizeof(body), "{'model':'p/m',%s,'top_logprobs':2}", audio_msgs);
    req = accept_body(body, NULL, &res);
    assert_dropped(&res, two, 2);
    mn_policy_result_clear(&res);
    json_decref(req);

    snprintf(body, sizeof(body),
             "{'model':'p/m',%s,'response_format':{'type':'json_schema','json_schema':"
             "{'strict':true}}}", audio_msgs);
    req = accept_body(body, NULL, &res);
    assert_dropped(&res, audio_strict, 2);
    mn_policy_result_clear(&res);
    json_decref(req);
}

/* ---- extensions ---------------------------------------------------------- */

static void test_extensions_taken_out(void **state)
{
    mn_policy_result res;
    json_t *req = accept_body(
        "{'model':'p/m'," MSGS ",'tags':['a','b c'],'metadata':{'user':'u1','n':3},"
        "'trace':{'id':'t1','span_id':'s1'},'user':'end-user'}",
        "{'model':'p/m'," MSGS ",'user':'end-user'}", &res);
    assert_json_is(res.tags, "['a','b c']");
    assert_json_is(res.metadata, "{'user':'u1','n':3}");
    assert_json_is(res.trace, "{'id':'t1','span_id':'s1'}");
    /* the body let go of them: the result holds the only reference */
    assert_int_equal(res.tags->refcount, 1);
    assert_int_equal(res.metadata->refcount, 1);
    assert_int_equal(res.trace->refcount, 1);
    mn_policy_result_clear(&res);
    assert_null(res.tags);
    assert_null(res.metadata);
    assert_null(res.trace);
    /* clearing twice is harmless */
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_extensions_null(void **state)
{
    mn_policy_result res;
    json_t *req = accept_body("{'model':'p/m'," MSGS ",'tags':null,'metadata':null,'trace':null}",
                              "{'model':'p/m'," MSGS "}", &res);
    assert_null(res.tags);
    assert_null(res.metadata);
    assert_null(res.trace);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_extensions_wrong_type(void **state)
{
    expect_reject("{'model':'p/m'," MSGS ",'tags':'a'}", "tags");
    expect_reject("{'model':'p/m'," MSGS ",'tags':['a',1]}", "tags");
    expect_reject("{'model':'p/m'," MSGS ",'tags':{}}", "tags");
    expect_reject("{'model':'p/m'," MSGS ",'metadata':['x']}", "metadata");
    expect_reject("{'model':'p/m'," MSGS ",'metadata':'x'}", "metadata");
    expect_reject("{'model':'p/m'," MSGS ",'trace':'abc'}", "trace");
    expect_reject("{'model':'p/m'," MSGS ",'trace':7}", "trace");
    /* a valid extension taken before a bad one must be released */
    expect_reject("{'model':'p/m'," MSGS ",'tags':['a'],'metadata':{'k':1},'trace':[1]}",
                  "trace");
}

/* ---- model and messages -------------------------------------------------- */

static void test_model_required(void **state)
{
    expect_reject("{" MSGS "}", "model");
    expect_reject("{'model':''," MSGS "}", "model");
    expect_reject("{'model':null," MSGS "}", "model");
    expect_reject("{'model':5," MSGS "}", "model");
}

static void test_messages_required(void **state)
{
    expect_reject("{'model':'p/m'}", "messages");
    expect_reject("{'model':'p/m','messages':[]}", "messages");
    expect_reject("{'model':'p/m','messages':'hi'}", "messages");
    expect_reject("{'model':'p/m','messages':{'role':'user'}}", "messages");
}

static void test_message_fields(void **state)
{
    expect_reject("{'model':'p/m','messages':[{'content':'hi'}]}", "messages[0].role");
    expect_reject("{'model':'p/m','messages':[{'role':'','content':'hi'}]}", "messages[0].role");
    expect_reject("{'model':'p/m','messages':[{'role':'user','content':'a'},{'role':3}]}",
                  "messages[1].role");
    expect_reject("{'model':'p/m','messages':['hi']}", "messages[0]");
    expect_reject("{'model':'p/m','messages':[{'role':'user','content':5}]}",
                  "messages[0].content");
    expect_reject("{'model':'p/m','messages':[{'role':'user','content':[{'text':'x'}]}]}",
                  "messages[0].content[0]");
}

static void test_roles(void **state)
{
    static const char *const ok[] = { "system", "developer", "user", "assistant", "tool",
                                      "function" };
    size_t i;
    char body[256];
    for (i = 0; i < sizeof(ok) / sizeof(ok[0]); i++) {
        mn_policy_result res;
        json_t *req;
        snprintf(body, sizeof(body), "{'model':'p/m','messages':[{'role':'%s','content':'x'}]}",
                 ok[i]);
        req = accept_body(body, body, &res);
        mn_policy_result_clear(&res);
        json_decref(req);
    }
    expect_reject("{'model':'p/m','messages':[{'role':'robot','content':'hi'}]}",
                  "messages[0].role");
    expect_reject("{'model':'p/m','messages':[{'role':'user','content':'a'},"
                  "{'role':'User','content':'b'}]}", "messages[1].role");
    expect_reject("{'model':'p/m','messages':[{'role':'user ','content':'hi'}]}",
                  "messages[0].role");
    assert_true(mn_policy_role_valid("tool"));
    assert_false(mn_policy_role_valid(""));
    assert_false(mn_policy_role_valid("model"));
}

/* ---- keep= ---------------------------------------------------------------- */

#define ALL_DROPPABLE                                                                   \
    "{'model':'p/m','n':3,'logprobs':true,'top_logprobs':2,"                            \
    "'response_format':{'type':'json_schema','json_schema':{'name':'x','strict':true}}," \
    "'messages':[{'role':'user','content':[{'type':'text','text':'a'},"                 \
    "{'type':'input_audio','input_audio':{'data':'AA','format':'wav'}}]}]}"

static void test_keep_all(void **state)
{
    mn_policy_result res;
    json_t *req = accept_keep(ALL_DROPPABLE, MN_KEEP_STRICT | MN_KEEP_LOGPROBS | MN_KEEP_N
                              | MN_KEEP_INPUT_AUDIO, ALL_DROPPABLE, &res);
    assert_int_equal(res.ndropped, 0);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_keep_each(void **state)
{
    mn_policy_result res;
    json_t *req;
    static const char *const no_logprobs[] = { "input_audio",
                                               "response_format.json_schema.strict" };
    static const char *const no_strict[] = { "logprobs", "top_logprobs", "input_audio" };
    static const char *const only_strict[] = { "response_format.json_schema.strict" };

    /* n is refused without its bit, whatever else is kept */
    expect_reject(ALL_DROPPABLE, "n");
    req = load(ALL_DROPPABLE);
    {
        mn_error err;
        mn_error_clear(&err);
        assert_int_equal(mn_policy_apply(req, MN_KEEP_STRICT | MN_KEEP_LOGPROBS
                                         | MN_KEEP_INPUT_AUDIO, &res, &err), -1);
        assert_string_equal(err.param, "n");
    }
    json_decref(req);

    req = accept_keep(ALL_DROPPABLE, MN_KEEP_N | MN_KEEP_LOGPROBS, NULL, &res);
    assert_dropped(&res, no_logprobs, 2);
    assert_true(json_is_true(json_object_get(req, "logprobs")));
    assert_int_equal(json_integer_value(json_object_get(req, "top_logprobs")), 2);
    mn_policy_result_clear(&res);
    json_decref(req);

    req = accept_keep(ALL_DROPPABLE, MN_KEEP_N | MN_KEEP_STRICT, NULL, &res);
    assert_dropped(&res, no_strict, 3);
    mn_policy_result_clear(&res);
    json_decref(req);

    req = accept_keep(ALL_DROPPABLE, MN_KEEP_N | MN_KEEP_LOGPROBS | MN_KEEP_INPUT_AUDIO, NULL,
                      &res);
    assert_dropped(&res, only_strict, 1);
    assert_int_equal(json_array_size(json_object_get(
        json_array_get(json_object_get(req, "messages"), 0), "content")), 2);
    mn_policy_result_clear(&res);
    json_decref(req);

    /* n < 1 stays an error even when n is kept */
    req = load("{'model':'p/m'," MSGS ",'n':0}");
    {
        mn_error err;
        mn_error_clear(&err);
        assert_int_equal(mn_policy_apply(req, MN_KEEP_N, &res, &err), -1);
        assert_string_equal(err.param, "n");
    }
    json_decref(req);
}

static void test_parse_keep(void **state)
{
    apr_pool_t *p;
    unsigned keep = 99;
    const char *err;
    apr_pool_create(&p, NULL);
    assert_null(mn_policy_parse_keep(p, "strict,logprobs,n", &keep));
    assert_int_equal(keep, MN_KEEP_STRICT | MN_KEEP_LOGPROBS | MN_KEEP_N);
    assert_null(mn_policy_parse_keep(p, "input_audio", &keep));
    assert_int_equal(keep, MN_KEEP_INPUT_AUDIO);
    assert_null(mn_policy_parse_keep(p, "n,n,,", &keep));
    assert_int_equal(keep, MN_KEEP_N);
    err = mn_policy_parse_keep(p, "strict,top_logprobs", &keep);
    assert_non_null(err);
    assert_non_null(strstr(err, "'top_logprobs'"));
    assert_non_null(mn_policy_parse_keep(p, "", &keep));
    assert_non_null(mn_policy_parse_keep(p, ",", &keep));
    assert_non_null(mn_policy_parse_keep(p, "Strict", &keep));
    apr_pool_destroy(p);
}

/* ---- types ----------------------------------------------------------------- */

static void test_wrong_types(void **state)
{
    expect_reject("{'model':'p/m'," MSGS ",'temperature':'hot'}", "temperature");
    expect_reject("{'model':'p/m'," MSGS ",'stream':'yes'}", "stream");
    expect_reject("{'model':'p/m'," MSGS ",'max_tokens':1.5}", "max_tokens");
    expect_reject("{'model':'p/m'," MSGS ",'tools':{}}", "tools");
    expect_reject("{'model':'p/m'," MSGS ",'stop':5}", "stop");
    expect_reject("{'model':'p/m'," MSGS ",'top_p':true}", "top_p");
    expect_reject("{'model':'p/m'," MSGS ",'stream_options':true}", "stream_options");
    expect_reject("{'model':'p/m'," MSGS ",'tool_choice':1}", "tool_choice");
    /* two wrong: the error names the first in the policy's order, not the body's */
    expect_reject("{'model':'p/m'," MSGS ",'user':5,'stream':'yes','temperature':'hot'}",
                  "temperature");
    expect_reject("{'model':'p/m'," MSGS ",'reasoning_effort':1,'n':'2'}", "n");
}

static void test_right_types(void **state)
{
    mn_policy_result res;
    const char *body = "{'model':'p/m'," MSGS ",'temperature':1,'top_p':0.5,'max_tokens':10,"
                       "'stop':['a'],'tools':[],'tool_choice':'auto','seed':null,'user':'u'}";
    json_t *req = accept_body(body, body, &res);
    mn_policy_result_clear(&res);
    json_decref(req);
    req = accept_body("{'model':'p/m'," MSGS ",'stop':'x','tool_choice':{'type':'none'}}", NULL,
                      &res);
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_non_object_body(void **state)
{
    expect_reject("[1,2]", "");
    expect_reject("'text'", "");
    expect_reject("null", "");
}

/* ---- stream flags ---------------------------------------------------------- */

static void flags_of(const char *body, int want_stream, int want_usage)
{
    mn_policy_result res;
    json_t *req = accept_body(body, NULL, &res);
    if (res.stream != want_stream || res.include_usage != want_usage) {
        fail_msg("%s: stream=%d include_usage=%d, want %d %d", body, res.stream,
                 res.include_usage, want_stream, want_usage);
    }
    mn_policy_result_clear(&res);
    json_decref(req);
}

static void test_stream_flags(void **state)
{
    flags_of("{'model':'p/m'," MSGS ",'stream':true}", 1, 0);
    flags_of("{'model':'p/m'," MSGS ",'stream':true,'stream_options':{'include_usage':true}}", 1, 1);
    flags_of("{'model':'p/m'," MSGS ",'stream':true,'stream_options':{'include_usage':false}}", 1, 0);
    /* include_usage means nothing without a stream */
    flags_of("{'model':'p/m'," MSGS ",'stream':false,'stream_options':{'include_usage':true}}", 0, 0);
    flags_of("{'model':'p/m'," MSGS ",'stream_options':{'include_usage':true}}", 0, 0);
    flags_of("{'model':'p/m'," MSGS ",'stream':null}", 0, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_minimal_ok),
        cmocka_unit_test(test_fixture_request_ok),
        cmocka_unit_test(test_unknown_params_stay),
        cmocka_unit_test(test_n),
        cmocka_unit_test(test_logprobs_dropped),
        cmocka_unit_test(test_input_audio_dropped),
        cmocka_unit_test(test_strict_dropped),
        cmocka_unit_test(test_dropped_order),
        cmocka_unit_test(test_extensions_taken_out),
        cmocka_unit_test(test_extensions_null),
        cmocka_unit_test(test_extensions_wrong_type),
        cmocka_unit_test(test_model_required),
        cmocka_unit_test(test_messages_required),
        cmocka_unit_test(test_message_fields),
        cmocka_unit_test(test_roles),
        cmocka_unit_test(test_keep_all),
        cmocka_unit_test(test_keep_each),
        cmocka_unit_test(test_parse_keep),
        cmocka_unit_test(test_wrong_types),
        cmocka_unit_test(test_right_types),
        cmocka_unit_test(test_non_object_body),
        cmocka_unit_test(test_stream_flags),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
