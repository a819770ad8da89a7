/* Unit tests for the Responses passthrough (src/wire/face_responses_pass.c),
 * the stateful mapping flag (mn_resp_request_ex) and the responses=
 * provider option: exact bytes up and down. */
#include <apr_strings.h>
#include "harness.h"
#include "mn_face_responses.h"

#define KEY "sk-test-0123456789abcdefSECRET"

typedef struct {
    apr_pool_t *pool;
    mn_provider prov;
    const char *keys[1];
    mn_wire_ctx ctx;
    json_t *body;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || apr_pool_create(&f->pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    f->prov.name = "oai";
    f->prov.format = MN_FORMAT_OPENAI;
    f->prov.responses_api = 1;
    f->prov.key = KEY;
    f->keys[0] = KEY;
    f->prov.keys = f->keys;
    f->prov.nkeys = 1;
    f->ctx.pool = f->pool;
    f->ctx.provider = &f->prov;
    f->ctx.provider_name = "oai";
    f->ctx.model = "gpt-5";
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    json_decref(f->body);
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

/* ---- request ----------------------------------------------------------------- */

static void test_encode(void **state)
{
    fixture *f = *state;
    mn_upstream_req up;
    mn_error err;
    json_t *chat = mn_t_json("{\"model\":\"oai/gpt-5\",\"messages\":[]}");

    f->body = mn_t_json("{\"model\":\"oai/gpt-5\",\"input\":\"hi\",\"tags\":[\"a\"],"
                        "\"metadata\":{\"k\":\"v\"},\"trace\":{\"id\":\"t\"},"
                        "\"tools\":[{\"type\":\"web_search\"}],\"temperature\":0.7,"
                        "\"include\":[\"reasoning.encrypted_content\"],\"stream\":true}");
    f->ctx.face_body = f->body;
    f->ctx.stream = 1;
    memset(&up, 0, sizeof(up));
    mn_error_clear(&err);
    assert_int_equal(mn_wire_openai_responses.encode_request(&f->ctx, chat, &up, &err), 0);
    assert_string_equal(up.path, "/responses");
    /* re-encoded by Jansson, as on the chat route: reals with 17 digits (the same double) */
    assert_string_equal(up.body,
                        "{\"model\":\"gpt-5\",\"input\":\"hi\",\"tools\":[{\"type\":\"web_search\"}],"
                        "\"temperature\":0.69999999999999996,\"include\":[\"reasoning.encrypted_content\"],"
                        "\"stream\":true,\"store\":false}");
    assert_int_equal(up.body_len, strlen(up.body));
    assert_string_equal(apr_table_get(up.headers, "Authorization"), "Bearer " KEY);
    assert_string_equal(apr_table_get(up.headers, "Accept"), "text/event-stream");
    assert_string_equal(apr_table_get(up.headers, "Content-Type"), "application/json");
    /* the client's body is not touched: a fallback target may need it */
    assert_non_null(json_object_get(f->body, "tags"));
    assert_string_equal(json_string_value(json_object_get(f->body, "model")), "oai/gpt-5");
    /* nor is the chat request */
    assert_string_equal(json_string_value(json_object_get(chat, "model")), "oai/gpt-5");
    json_decref(chat);
}

static void test_encode_store_and_no_stream(void **state)
{
    fixture *f = *state;
    mn_upstream_req up;
    mn_error err;

    f->body = mn_t_json("{\"model\":\"x\",\"input\":\"hi\",\"store\":true,"
                        "\"previous_response_id\":\"resp_1\",\"stream\":false}");
    f->ctx.face_body = f->body;
    memset(&up, 0, sizeof(up));
    assert_int_equal(mn_wire_openai_responses.encode_request(&f->ctx, NULL, &up, &err), 0);
    assert_string_equal(up.body, "{\"model\":\"gpt-5\",\"input\":\"hi\",\"store\":true,"
                                 "\"previous_response_id\":\"resp_1\"}");
    assert_string_equal(apr_table_get(up.headers, "Accept"), "application/json");

    f->ctx.face_body = NULL;
    assert_int_equal(mn_wire_openai_responses.encode_request(&f->ctx, NULL, &up, &err), -1);
    assert_int_equal(err.status, 500);
}

/* ---- whole answer ------------------------------------------------------------ */

static const char response_body[] =
    "{\n  \"id\": \"resp_up1\",\n  \"object\": \"response\",\n  \"created_at\": 1767225600,"
    "\"status\":\"completed\",\"model\":\"gpt-5-2025-08-07\",\"temperature\":0.7,"
    "\"output\":[{\"type\":\"message\",\"id\":\"msg_1\",\"status\":\"completed\",\"role\":\"assistant\","
    "\"content\":[{\"type\":\"output_text\",\"annotations\":[],\"text\":\"Hi \\u00e9\"}]}],"
    "\"usage\":{\"input_tokens\":12,\"input_tokens_details\":{\"cached_tokens\":4},"
    "\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":3},\"total_tokens\":19}}";

static void test_decode_bytes(void **state)
{
    fixture *f = *state;
    const char *out;
    size_t n;
    mn_usage u;
    mn_error err;

    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_openai_responses.decode_response_bytes(
                         &f->ctx, response_body, sizeof(response_body) - 1, &out, &n, &u, &err), 0);
    /* the upstream's bytes after the first brace, provider first */
    assert_int_equal(n, strlen(out));
    assert_string_equal(out, apr_pstrcat(f->pool, "{\"provider\":\"oai\",", response_body + 4, NULL));
    assert_int_equal(u.have, 1);
    assert_int_equal(u.prompt_tokens, 12);
    assert_int_equal(u.cached_tokens, 4);
    assert_int_equal(u.completion_tokens, 7);
    assert_int_equal(u.reasoning_tokens, 3);
    assert_int_equal(u.total_tokens, 19);
}

static void test_decode_bad(void **state)
{
    fixture *f = *state;
    const char *out;
    size_t n;
    mn_usage u;
    mn_error err;
    static const char chat[] = "{\"object\":\"chat.completion\",\"choices\":[]}";
    static const char in200[] = "{\"error\":{\"message\":\"bad " KEY "\",\"type\":\"server_error\"}}";

    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_openai_responses.decode_response_bytes(
                         &f->ctx, chat, sizeof(chat) - 1, &out, &n, &u, &err), -1);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "upstream_bad_response");
    assert_int_equal(mn_wire_openai_responses.decode_response_bytes(
                         &f->ctx, in200, sizeof(in200) - 1, &out, &n, &u, &err), -1);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.message, "bad ***");
}

static void test_decode_error(void **state)
{
    fixture *f = *state;
    mn_error err;
    static const char body[] = "{\"error\":{\"message\":\"Previous response with id 'resp_x' "
                               "not found.\",\"type\":\"invalid_request_error\","
                               "\"param\":\"previous_response_id\",\"code\":\"previous_response_not_found\"}}";

    mn_error_clear(&err);
    mn_wire_openai_responses.decode_error(&f->ctx, 404, body, sizeof(body) - 1, "7", &err);
    assert_int_equal(err.status, 404);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, "previous_response_id");
    assert_string_equal(err.code, "previous_response_not_found");
    assert_string_equal(err.message, "Previous response with id 'resp_x' not found.");
    assert_string_equal(err.retry_after, "7");
}

/* ---- stream ------------------------------------------------------------------ */

#define EV(type, json) "event: " type "\ndata: " json "\n\n"
#define RESP_IP "{\"id\":\"resp_up1\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"in_progress\",\"model\":\"gpt-5\",\"temperature\":0.7,\"output\":[]}"
#define RESP_IP_P "{\"provider\":\"oai\",\"id\":\"resp_up1\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"in_progress\",\"model\":\"gpt-5\",\"temperature\":0.7,\"output\":[]}"
#define CREATED(r) "{\"type\":\"response.created\",\"sequence_number\":0,\"response\":" r "}"
#define IN_PROGRESS(r) "{\"type\":\"response.in_progress\",\"sequence_number\":1,\"response\":" r "}"
#define DELTA "{\"type\":\"response.output_text.delta\",\"sequence_number\":2,\"item_id\":\"msg_1\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"logprobs\":[]}"
#define COMPLETED(p) "{\"type\":\"response.completed\",\"sequence_number\":3,\"response\":{" p "\"id\":\"resp_up1\",\"object\":\"response\",\"status\":\"completed\",\"output\":[],\"usage\":{\"input_tokens\":9,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":2,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":11}}}"

static const char stream_in[] =
    EV("response.created", CREATED(RESP_IP))
    EV("response.in_progress", IN_PROGRESS(RESP_IP))
    EV("response.output_text.delta", DELTA)
    EV("response.completed", COMPLETED(""));

static const char stream_out[] =
    EV("response.created", CREATED(RESP_IP_P))
    EV("response.in_progress", IN_PROGRESS(RESP_IP_P))
    EV("response.output_text.delta", DELTA)
    EV("response.completed", COMPLETED("\"provider\":\"oai\","));

static void test_stream(void **state)
{
    fixture *f = *state;
    size_t splits[] = { 0, (size_t)-1, 37, 200 };
    size_t i;

    for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        mn_buf out;
        mn_usage u;
        mn_error err;
        int has_err = 1;
        mn_buf_init(&out);
        assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, stream_in,
                                               sizeof(stream_in) - 1, splits[i], &out, &u, &err,
                                               &has_err), MN_STREAM_DONE);
        assert_int_equal(has_err, 0);
        assert_int_equal(out.len, sizeof(stream_out) - 1);
        assert_memory_equal(out.data, stream_out, out.len);
        assert_int_equal(u.have, 1);
        assert_int_equal(u.prompt_tokens, 9);
        assert_int_equal(u.completion_tokens, 2);
        assert_int_equal(u.total_tokens, 11);
        mn_buf_free(&out);
    }
}

/* An upstream that stops after two events: our response.failed and error,
 * numbered on from its last sequence_number. */
static void test_stream_eof(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("response.created", CREATED(RESP_IP))
                             EV("response.output_text.delta", DELTA);
    static const char want[] = EV("response.created", CREATED(RESP_IP_P))
        EV("response.output_text.delta", DELTA)
        EV("response.failed", "{\"type\":\"response.failed\",\"sequence_number\":3,\"response\":"
           "{\"id\":\"resp_up1\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"failed\","
           "\"model\":\"gpt-5\",\"output\":[],\"error\":{\"code\":\"upstream_eof\",\"message\":"
           "\"upstream stream ended before response.completed\"},\"provider\":\"oai\"}}")
        EV("error", "{\"type\":\"error\",\"sequence_number\":4,\"code\":\"upstream_eof\","
           "\"message\":\"upstream stream ended before response.completed\",\"param\":null}");
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_int_equal(has_err, 1);
    assert_string_equal(err.code, "upstream_eof");
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
    mn_buf_free(&out);
}

/* An error event before anything reached the client: nothing written (the
 * glue answers a JSON error or falls back), the key scrubbed from err. */
static void test_stream_error_first(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("error", "{\"type\":\"error\",\"sequence_number\":0,"
                                "\"code\":\"rate_limit_exceeded\",\"message\":\"slow down " KEY "\","
                                "\"param\":null}");
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_int_equal(out.len, 0);
    assert_int_equal(has_err, 1);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "rate_limit_exceeded");
    assert_string_equal(err.message, "slow down ***");
    mn_buf_free(&out);
}

/* response.failed after the start is relayed (provider in, key out). */
static void test_stream_failed_scrubbed(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("response.created", CREATED(RESP_IP))
        EV("response.failed", "{\"type\":\"response.failed\",\"sequence_number\":1,\"response\":"
           "{\"id\":\"resp_up1\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\","
           "\"message\":\"key " KEY " broke\"}}}");
    static const char want[] = EV("response.created", CREATED(RESP_IP_P))
        EV("response.failed", "{\"type\":\"response.failed\",\"sequence_number\":1,\"response\":"
           "{\"provider\":\"oai\",\"id\":\"resp_up1\",\"status\":\"failed\",\"error\":{\"code\":\"server_error\","
           "\"message\":\"key *** broke\"}}}");
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_string_equal(err.code, "server_error");
    assert_string_equal(err.message, "key *** broke");
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
    mn_buf_free(&out);
}

/* A key written with JSON escapes is found too (the event is re-encoded). */
static void test_stream_error_escaped_key(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("response.created", CREATED(RESP_IP))
        EV("error", "{\"type\":\"error\",\"sequence_number\":1,\"code\":\"x\","
           "\"message\":\"\\u0073k-test-0123456789abcdefSECRET\",\"param\":null}");
    static const char want[] = EV("response.created", CREATED(RESP_IP_P))
        EV("error", "{\"type\":\"error\",\"sequence_number\":1,\"code\":\"x\","
           "\"message\":\"***\",\"param\":null}");
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_string_equal(err.message, "***");
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
    mn_buf_free(&out);
}

/* An upstream "provider" in a Response gives way to ours; a type that
 * would end the event line is refused. */
static void test_stream_odd_events(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("response.created", "{\"type\":\"response.created\",\"sequence_number\":0,"
                                "\"response\":{\"id\":\"r\",\"provider\":\"theirs\"}}")
                             EV("x", "{\"type\":\"a\\nevent: b\",\"sequence_number\":1}");
    static const char want[] = EV("response.created", "{\"type\":\"response.created\",\"sequence_number\":0,"
                                  "\"response\":{\"id\":\"r\",\"provider\":\"oai\"}}");
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_string_equal(err.code, "upstream_bad_response");
    assert_true(out.len > sizeof(want) - 1);
    assert_memory_equal(out.data, want, sizeof(want) - 1);
    assert_null(strstr(out.data, "event: b"));
    mn_buf_free(&out);
}

/* A Response spread over several data: lines leaves as one line. */
static void test_stream_multiline(void **state)
{
    fixture *f = *state;
    static const char in[] = "event: response.completed\ndata: {\"type\":\"response.completed\",\n"
                             "data: \"response\":{\"id\":\"r\"}}\n\n";
    static const char want[] = "event: response.completed\ndata: {\"type\":\"response.completed\", "
                               "\"response\":{\"provider\":\"oai\",\"id\":\"r\"}}\n\n";
    mn_buf out;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1, 0,
                                        &out), MN_STREAM_DONE);
    assert_int_equal(out.len, sizeof(want) - 1);
    assert_memory_equal(out.data, want, out.len);
    mn_buf_free(&out);
}

static void test_stream_bad_event(void **state)
{
    fixture *f = *state;
    static const char in[] = EV("response.created", CREATED(RESP_IP)) "data: {not json\n\n";
    mn_buf out;
    mn_error err;
    int has_err = 0;

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream_ex(&mn_wire_openai_responses, &f->ctx, in, sizeof(in) - 1,
                                           0, &out, NULL, &err, &has_err), MN_STREAM_FAILED);
    assert_string_equal(err.code, "upstream_bad_response");
    /* created, then our response.failed and error */
    assert_non_null(strstr(out.data, "event: response.failed\ndata: {\"type\":\"response.failed\","
                                     "\"sequence_number\":1,"));
    assert_non_null(strstr(out.data, "event: error\ndata: {\"type\":\"error\",\"sequence_number\":2,"
                                     "\"code\":\"upstream_bad_response\""));
    mn_buf_free(&out);
}

/* ---- the stateful flag --------------------------------------------------------- */

static void test_request_stateful(void **state)
{
    fixture *f = *state;
    static const char *const bodies[] = {
        "{\"model\":\"m/x\",\"input\":\"hi\",\"previous_response_id\":\"resp_1\"}",
        "{\"model\":\"m/x\",\"input\":\"hi\",\"store\":true}",
        "{\"model\":\"m/x\",\"input\":\"hi\",\"conversation\":\"conv_1\"}",
        "{\"model\":\"m/x\",\"input\":[{\"type\":\"item_reference\",\"id\":\"msg_1\"},"
        "{\"role\":\"user\",\"content\":\"hi\"}]}",
    };
    static const char *const params[] = { "previous_response_id", "store", "conversation",
                                          "input[0]" };
    size_t i;

    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        json_t *in = mn_t_json(bodies[i]);
        mn_resp_req r;
        mn_error err;
        mn_error_clear(&err);
        assert_int_equal(mn_resp_request(f->pool, in, &r, &err), -1);
        assert_int_equal(err.status, 400);
        assert_string_equal(err.param, params[i]);
        assert_int_equal(mn_resp_request_ex(f->pool, in, MN_RESP_STATEFUL, &r, &err), 0);
        assert_non_null(r.chat);
        mn_resp_req_clear(&r);
        json_decref(in);
    }
    {
        json_t *in = mn_t_json("{\"model\":\"m/x\",\"input\":[{\"type\":\"item_reference\","
                               "\"id\":\"msg_1\"},{\"role\":\"user\",\"content\":\"hi\"}],"
                               "\"background\":true}");
        mn_resp_req r;
        mn_error err;
        assert_int_equal(mn_resp_request_ex(f->pool, in, MN_RESP_STATEFUL, &r, &err), -1);
        assert_string_equal(err.param, "background");
        json_object_del(in, "background");
        assert_int_equal(mn_resp_request_ex(f->pool, in, MN_RESP_STATEFUL, &r, &err), 0);
        assert_int_equal(r.ndropped, 1);
        assert_string_equal(r.dropped[0], "input.item_reference");
        mn_resp_req_clear(&r);
        json_decref(in);
    }
}

/* ---- responses= ------------------------------------------------------------------ */

static const char *parse(apr_pool_t *p, mn_provider **prov, const char *url, const char *o1,
                         const char *o2)
{
    const char *argv[4] = { "p", url, o1, o2 };
    return mn_provider_parse(p, 2 + (o1 != NULL) + (o2 != NULL), argv, prov);
}

static void test_option(void **state)
{
    fixture *f = *state;
    mn_provider *prov = NULL;
    const char *err;

    assert_null(parse(f->pool, &prov, "http://127.0.0.1:8000/v1", NULL, NULL));
    assert_int_equal(prov->responses_api, 0);
    assert_null(parse(f->pool, &prov, "http://127.0.0.1:8000/v1", "responses=on", NULL));
    assert_int_equal(prov->responses_api, 1);
    /* OpenAI itself speaks it: on unless said otherwise */
    assert_null(parse(f->pool, &prov, "https://api.openai.com/v1", NULL, NULL));
    assert_int_equal(prov->responses_api, 1);
    assert_null(parse(f->pool, &prov, "https://API.OpenAI.com:443/v1", NULL, NULL));
    assert_int_equal(prov->responses_api, 1);
    assert_null(parse(f->pool, &prov, "https://api.openai.com/v1", "responses=off", NULL));
    assert_int_equal(prov->responses_api, 0);
    assert_null(parse(f->pool, &prov, "https://api.openai.com.example.net/v1", NULL, NULL));
    assert_int_equal(prov->responses_api, 0);

    err = parse(f->pool, &prov, "https://api.anthropic.com/v1", "format=anthropic", "responses=on");
    assert_non_null(err);
    assert_non_null(strstr(err, "responses= needs format=openai"));
    assert_null(parse(f->pool, &prov, "https://api.anthropic.com/v1", "format=anthropic",
                      "responses=off"));
    assert_non_null(parse(f->pool, &prov, "builtin:echo", "responses=on", NULL));
    err = parse(f->pool, &prov, "http://h/v1", "responses=yes", NULL);
    assert_non_null(err);
    assert_non_null(strstr(err, "bad responses 'yes': expected on or off"));
    assert_non_null(strstr(mn_provider_options_known(f->pool), ", responses"));
    /* a base URL that already names the endpoint would get it twice */
    assert_null(parse(f->pool, &prov, "http://h/v1/responses", "responses=on", NULL));
    assert_non_null(prov->warnings);
    assert_non_null(strstr(APR_ARRAY_IDX(prov->warnings, 0, const char *),
                           "already ends in '/responses'"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_encode, setup, teardown),
        cmocka_unit_test_setup_teardown(test_encode_store_and_no_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_bad, setup, teardown),
        cmocka_unit_test_setup_teardown(test_decode_error, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_eof, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_first, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_failed_scrubbed, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_escaped_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_odd_events, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_multiline, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_bad_event, setup, teardown),
        cmocka_unit_test_setup_teardown(test_request_stateful, setup, teardown),
        cmocka_unit_test_setup_teardown(test_option, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
