/* Unit tests for the Responses face (src/wire/face_responses_*.c): the
 * request mapping, the Response object and the event stream, exact bytes. */
#include "harness.h"
#include "mn_face_responses.h"

typedef struct {
    apr_pool_t *pool;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || apr_pool_create(&f->pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static void assert_json(json_t *got, const char *want_text)
{
    char *g = json_dumps(got, JSON_COMPACT);
    if (!g || strcmp(g, want_text)) {
        fail_msg("\n got: %s\nwant: %s", g ? g : "(null)", want_text);
    }
    free(g);
}

static void assert_dropped(const mn_resp_req *r, const char *want)
{
    char got[512] = "";
    int i;
    for (i = 0; i < r->ndropped; i++) {
        strcat(got, i ? "," : "");
        strcat(got, r->dropped[i]);
    }
    assert_string_equal(got, want);
}

/* ---- request ---------------------------------------------------------------- */

/* What Codex sends on a second turn: instructions, developer and user
 * messages, an earlier reasoning item, a call and its output, tools of three
 * types, and the members that only steer OpenAI's storage. */
static const char codex_request[] =
    "{\"model\":\"openai/gpt-5\",\"instructions\":\"You are Codex.\","
    "\"input\":["
    "{\"type\":\"message\",\"role\":\"developer\",\"content\":[{\"type\":\"input_text\",\"text\":\"sandbox: read-only\"}]},"
    "{\"type\":\"message\",\"role\":\"user\",\"content\":[{\"type\":\"input_text\",\"text\":\"list files\"}]},"
    "{\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"think\"}],\"encrypted_content\":null},"
    "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"Running ls.\"}]},"
    "{\"type\":\"function_call\",\"name\":\"shell\",\"arguments\":\"{\\\"command\\\":[\\\"ls\\\"]}\",\"call_id\":\"call_1\"},"
    "{\"type\":\"function_call\",\"name\":\"shell\",\"arguments\":\"{}\",\"call_id\":\"call_2\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_1\",\"output\":\"a.txt\\nb.txt\"},"
    "{\"type\":\"function_call_output\",\"call_id\":\"call_2\",\"output\":[{\"type\":\"input_text\",\"text\":\"ok\"}]}],"
    "\"tools\":[{\"type\":\"function\",\"name\":\"shell\",\"description\":\"Runs a command\","
    "\"strict\":false,\"parameters\":{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"array\"}}}},"
    "{\"type\":\"namespace\",\"name\":\"mcp\",\"tools\":[]},{\"type\":\"web_search\"}],"
    "\"tool_choice\":\"auto\",\"parallel_tool_calls\":false,"
    "\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},\"store\":false,\"stream\":true,"
    "\"include\":[\"reasoning.encrypted_content\"],\"prompt_cache_key\":\"k1\","
    "\"client_metadata\":{\"x\":\"y\"},\"text\":{\"verbosity\":\"low\"}}";

static void test_request_codex(void **state)
{
    fixture *f = *state;
    json_t *in = mn_t_json(codex_request);
    mn_resp_req r;
    mn_error err;

    mn_error_clear(&err);
    assert_int_equal(mn_resp_request(f->pool, in, &r, &err), 0);
    assert_int_equal(r.stream, 1);
    assert_json(r.chat,
        "{\"model\":\"openai/gpt-5\",\"messages\":["
        "{\"role\":\"system\",\"content\":\"You are Codex.\"},"
        "{\"role\":\"developer\",\"content\":\"sandbox: read-only\"},"
        "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"list files\"}]},"
        "{\"role\":\"assistant\",\"content\":\"Running ls.\",\"tool_calls\":["
        "{\"id\":\"call_1\",\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":\"{\\\"command\\\":[\\\"ls\\\"]}\"}},"
        "{\"id\":\"call_2\",\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_1\",\"content\":\"a.txt\\nb.txt\"},"
        "{\"role\":\"tool\",\"tool_call_id\":\"call_2\",\"content\":\"ok\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"shell\",\"description\":\"Runs a command\","
        "\"parameters\":{\"type\":\"object\",\"properties\":{\"command\":{\"type\":\"array\"}}},\"strict\":false}}],"
        "\"tool_choice\":\"auto\",\"reasoning_effort\":\"high\",\"parallel_tool_calls\":false,"
        "\"stream\":true,\"stream_options\":{\"include_usage\":true}}");
    assert_dropped(&r, "input.reasoning,tools.namespace,tools.web_search,text.verbosity");
    /* what the Response object repeats: function tools only */
    assert_json(r.echo,
        "{\"model\":\"openai/gpt-5\",\"tools\":[{\"type\":\"function\",\"name\":\"shell\","
        "\"description\":\"Runs a command\",\"strict\":false,\"parameters\":{\"type\":\"object\","
        "\"properties\":{\"command\":{\"type\":\"array\"}}}}],\"tool_choice\":\"auto\","
        "\"text\":{\"format\":{\"type\":\"text\"}},\"reasoning\":{\"effort\":\"high\",\"summary\":\"auto\"},"
        "\"parallel_tool_calls\":false,\"instructions\":\"You are Codex.\",\"max_output_tokens\":null,"
        "\"temperature\":null,\"top_p\":null,\"user\":null,\"metadata\":{}}");
    mn_resp_req_clear(&r);
    json_decref(in);
}

static void test_request_plain(void **state)
{
    fixture *f = *state;
    json_t *in = mn_t_json("{\"model\":\"echo/x\",\"input\":\"hi\",\"max_output_tokens\":50,"
                           "\"temperature\":0.5,\"metadata\":{\"team\":\"a\"},\"tags\":[\"t\"],"
                           "\"text\":{\"format\":{\"type\":\"json_schema\",\"name\":\"out\","
                           "\"schema\":{\"type\":\"object\"},\"strict\":true}},"
                           "\"tool_choice\":{\"type\":\"function\",\"name\":\"f\"},"
                           "\"tools\":[{\"type\":\"function\",\"name\":\"f\",\"parameters\":null}],"
                           "\"frobnicate\":1}");
    mn_resp_req r;
    mn_error err;

    assert_int_equal(mn_resp_request(f->pool, in, &r, &err), 0);
    assert_int_equal(r.stream, 0);
    assert_json(r.chat,
        "{\"model\":\"echo/x\",\"messages\":[{\"role\":\"user\",\"content\":\"hi\"}],"
        "\"tools\":[{\"type\":\"function\",\"function\":{\"name\":\"f\"}}],"
        "\"tool_choice\":{\"type\":\"function\",\"function\":{\"name\":\"f\"}},"
        "\"response_format\":{\"type\":\"json_schema\",\"json_schema\":{\"name\":\"out\","
        "\"schema\":{\"type\":\"object\"},\"strict\":true}},"
        "\"max_completion_tokens\":50,\"temperature\":0.5,\"metadata\":{\"team\":\"a\"},"
        "\"tags\":[\"t\"]}");
    assert_dropped(&r, "frobnicate");
    mn_resp_req_clear(&r);
    json_decref(in);
}

static void check_refused(fixture *f, const char *body, const char *param)
{
    json_t *in = mn_t_json(body);
    mn_resp_req r;
    mn_error err;

    mn_error_clear(&err);
    assert_int_equal(mn_resp_request(f->pool, in, &r, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.type, "invalid_request_error");
    assert_string_equal(err.param, param);
    assert_null(r.chat);
    json_decref(in);
}

static void test_request_refused(void **state)
{
    fixture *f = *state;
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"previous_response_id\":\"resp_1\"}",
                  "previous_response_id");
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"store\":true}", "store");
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"conversation\":\"c\"}", "conversation");
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"background\":true}", "background");
    check_refused(f, "{\"model\":\"a/b\",\"input\":[{\"type\":\"item_reference\",\"id\":\"x\"}]}",
                  "input[0]");
    check_refused(f, "{\"input\":\"x\"}", "model");
    check_refused(f, "{\"model\":\"a/b\"}", "input");
    check_refused(f, "{\"model\":\"a/b\",\"input\":[]}", "input");
    check_refused(f, "{\"model\":\"a/b\",\"input\":[{\"role\":\"tool\",\"content\":\"x\"}]}",
                  "input[0].role");
    check_refused(f, "{\"model\":\"a/b\",\"input\":[{\"type\":\"function_call\",\"name\":\"f\"}]}",
                  "input[0]");
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"text\":{\"format\":{\"type\":\"json_schema\"}}}",
                  "text.format.schema");
    check_refused(f, "{\"model\":\"a/b\",\"input\":\"x\",\"stream\":\"yes\"}", "stream");
    /* tool_choice without any function tool left: not sent (upstreams refuse it) */
    {
        json_t *in = mn_t_json("{\"model\":\"a/b\",\"input\":\"x\",\"tool_choice\":\"none\","
                               "\"tools\":[{\"type\":\"web_search\"}]}");
        mn_resp_req r;
        mn_error err;
        assert_int_equal(mn_resp_request(f->pool, in, &r, &err), 0);
        assert_json(r.chat, "{\"model\":\"a/b\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}]}");
        assert_dropped(&r, "tools.web_search");
        mn_resp_req_clear(&r);
        json_decref(in);
    }
    /* store: false and an absent or null previous_response_id are served */
    {
        json_t *in = mn_t_json("{\"model\":\"a/b\",\"input\":\"x\",\"store\":false,"
                               "\"previous_response_id\":null}");
        mn_resp_req r;
        mn_error err;
        assert_int_equal(mn_resp_request(f->pool, in, &r, &err), 0);
        assert_int_equal(r.ndropped, 0);
        mn_resp_req_clear(&r);
        json_decref(in);
    }
}

/* Signed thinking replayed from encrypted_content goes with the next
 * assistant turn; foreign encrypted content is dropped and noted. */
static void test_request_replays_thinking(void **state)
{
    fixture *f = *state;
    json_t *in = mn_t_json(
        "{\"model\":\"ant/c\",\"input\":["
        "{\"role\":\"user\",\"content\":\"go\"},"
        "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":"
        "\"mnr1:[{\\\"type\\\":\\\"thinking\\\",\\\"thinking\\\":\\\"t\\\",\\\"signature\\\":\\\"S\\\"}]\"},"
        "{\"type\":\"function_call\",\"call_id\":\"c1\",\"name\":\"f\",\"arguments\":\"{}\"},"
        "{\"type\":\"function_call_output\",\"call_id\":\"c1\",\"output\":\"r\"},"
        "{\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":\"gAAAAB-openai-own\"},"
        "{\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"output_text\",\"text\":\"done\"}]}]}");
    mn_resp_req r;
    mn_error err;

    assert_int_equal(mn_resp_request(f->pool, in, &r, &err), 0);
    assert_json(json_object_get(r.chat, "messages"),
        "[{\"role\":\"user\",\"content\":\"go\"},"
        "{\"role\":\"assistant\",\"content\":null,\"thinking_blocks\":[{\"type\":\"thinking\","
        "\"thinking\":\"t\",\"signature\":\"S\"}],\"tool_calls\":[{\"id\":\"c1\",\"type\":\"function\","
        "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}]},"
        "{\"role\":\"tool\",\"tool_call_id\":\"c1\",\"content\":\"r\"},"
        "{\"role\":\"assistant\",\"content\":\"done\"}]");
    assert_dropped(&r, "input.reasoning");
    mn_resp_req_clear(&r);
    json_decref(in);
}

/* ---- whole answers ------------------------------------------------------------ */

static const char echo_minimal[] = "{\"model\":\"openai/gpt-5\"}";

static const char resp_head[] =
    "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"%s\","
    "\"background\":false,\"error\":null,\"incomplete_details\":%s,\"instructions\":null,"
    "\"max_output_tokens\":null,\"model\":\"openai/gpt-5\",\"output\":%s,"
    "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":null,"
    "\"store\":false,\"temperature\":null,\"text\":null,\"tool_choice\":\"auto\",\"tools\":[],"
    "\"top_p\":null,\"truncation\":\"disabled\",\"usage\":%s,\"user\":null,\"metadata\":{},"
    "\"provider\":\"ok\"}";

static void check_whole(const char *completion, const char *status, const char *incomplete,
                        const char *output, const char *usage)
{
    json_t *echo = mn_t_json(echo_minimal), *chat = mn_t_json(completion), *resp;
    mn_resp_ctx c = { "abc", 1767225600, "ok", echo, 0 };
    mn_error err;
    char want[4096];

    mn_error_clear(&err);
    resp = mn_resp_from_chat(&c, chat, &err);
    assert_non_null(resp);
    snprintf(want, sizeof(want), resp_head, status, incomplete, output, usage);
    assert_json(resp, want);
    json_decref(resp);
    json_decref(chat);
    json_decref(echo);
}

static void test_whole_text_calls_reasoning(void **state)
{
    (void)state;
    check_whole("{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\",\"choices\":[{\"index\":0,"
                "\"message\":{\"role\":\"assistant\",\"content\":\"Let me look.\","
                "\"reasoning_content\":\"User wants files.\",\"tool_calls\":["
                "{\"id\":\"call_9\",\"type\":\"function\",\"function\":{\"name\":\"shell\","
                "\"arguments\":\"{\\\"command\\\":[\\\"ls\\\"]}\"}}]},"
                "\"finish_reason\":\"tool_calls\"}],"
                "\"usage\":{\"prompt_tokens\":20,\"completion_tokens\":7,\"total_tokens\":27,"
                "\"prompt_tokens_details\":{\"cached_tokens\":4},"
                "\"completion_tokens_details\":{\"reasoning_tokens\":3}}}",
                "completed", "null",
                "[{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\","
                "\"text\":\"User wants files.\"}]},"
                "{\"id\":\"msg_abc_1\",\"type\":\"message\",\"status\":\"completed\",\"content\":"
                "[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Let me look.\"}],"
                "\"role\":\"assistant\"},"
                "{\"id\":\"fc_abc_2\",\"type\":\"function_call\",\"status\":\"completed\","
                "\"arguments\":\"{\\\"command\\\":[\\\"ls\\\"]}\",\"call_id\":\"call_9\",\"name\":\"shell\"}]",
                "{\"input_tokens\":20,\"input_tokens_details\":{\"cached_tokens\":4},"
                "\"output_tokens\":7,\"output_tokens_details\":{\"reasoning_tokens\":3},"
                "\"total_tokens\":27}");
}

static void test_whole_thinking_blocks(void **state)
{
    (void)state;
    check_whole("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"ok\","
                "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"t\",\"signature\":\"S\"}]},"
                "\"finish_reason\":\"stop\"}]}",
                "completed", "null",
                "[{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[],\"encrypted_content\":"
                "\"mnr1:[{\\\"type\\\":\\\"thinking\\\",\\\"thinking\\\":\\\"t\\\",\\\"signature\\\":\\\"S\\\"}]\"},"
                "{\"id\":\"msg_abc_1\",\"type\":\"message\",\"status\":\"completed\",\"content\":"
                "[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"ok\"}],"
                "\"role\":\"assistant\"}]",
                "{\"input_tokens\":0,\"input_tokens_details\":{\"cached_tokens\":0},"
                "\"output_tokens\":0,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                "\"total_tokens\":0}");
}

static void test_whole_length_is_incomplete(void **state)
{
    (void)state;
    check_whole("{\"choices\":[{\"message\":{\"role\":\"assistant\",\"content\":\"Hel\"},"
                "\"finish_reason\":\"length\"}]}",
                "incomplete", "{\"reason\":\"max_output_tokens\"}",
                "[{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"completed\",\"content\":"
                "[{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"Hel\"}],"
                "\"role\":\"assistant\"}]",
                "{\"input_tokens\":0,\"input_tokens_details\":{\"cached_tokens\":0},"
                "\"output_tokens\":0,\"output_tokens_details\":{\"reasoning_tokens\":0},"
                "\"total_tokens\":0}");
}

static void test_whole_without_choice(void **state)
{
    json_t *echo = mn_t_json(echo_minimal), *chat = mn_t_json("{\"choices\":[]}");
    mn_resp_ctx c = { "abc", 1, NULL, echo, 0 };
    mn_error err;
    (void)state;

    mn_error_clear(&err);
    assert_null(mn_resp_from_chat(&c, chat, &err));
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, "upstream_bad_response");
    json_decref(chat);
    json_decref(echo);
}

/* ---- streams ------------------------------------------------------------------ */

/* Feeds chat frames (each "data: ...", without the blank line) through the
 * face, writing every frame in pieces of `split` bytes; returns what the
 * client would get. */
static char *run_stream(const char *const *frames, size_t split, size_t max_held,
                        mn_resp_status *status, const mn_error **err_out, mn_error *err_copy,
                        int *started)
{
    json_t *echo = mn_t_json(echo_minimal);
    mn_resp_ctx c = { "abc", 1767225600, "ok", echo, max_held };
    mn_buf got;
    mn_sink out, in;
    mn_resp_stream *s;
    char *res;
    int i;

    mn_buf_init(&got);
    out = mn_buf_sink(&got);
    s = mn_resp_stream_create(&c, &out);
    assert_non_null(s);
    in = mn_resp_stream_sink(s);
    for (i = 0; frames[i]; i++) {
        size_t len = strlen(frames[i]), off;
        for (off = 0; off < len; off += split) {
            in.write(in.baton, frames[i] + off, len - off < split ? len - off : split);
        }
        in.write(in.baton, "\n\n", 2);
        in.frame_end(in.baton);
    }
    *status = mn_resp_stream_status(s);
    *started = mn_resp_stream_started(s);
    *err_out = mn_resp_stream_error(s);
    if (*err_out) {
        *err_copy = **err_out;
    }
    mn_resp_stream_destroy(s);
    json_decref(echo);
    mn_buf_append(&got, "", 1);
    res = strdup(got.data);
    mn_buf_free(&got);
    return res;
}

#define EV(type, json) "event: " type "\ndata: {\"type\":\"" type "\"," json "}\n\n"
#define RESP(status, output, usage) \
    "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"" status "\"," \
    "\"background\":false,\"error\":null,\"incomplete_details\":null,\"instructions\":null," \
    "\"max_output_tokens\":null,\"model\":\"openai/gpt-5\",\"output\":" output "," \
    "\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":null," \
    "\"store\":false,\"temperature\":null,\"text\":null,\"tool_choice\":\"auto\",\"tools\":[]," \
    "\"top_p\":null,\"truncation\":\"disabled\",\"usage\":" usage ",\"user\":null,\"metadata\":{}," \
    "\"provider\":\"ok\"}"
#define MSG(status, content) \
    "{\"id\":\"msg_abc_0\",\"type\":\"message\",\"status\":\"" status "\",\"content\":[" content "]," \
    "\"role\":\"assistant\"}"
#define PART(text) "{\"type\":\"output_text\",\"annotations\":[],\"logprobs\":[],\"text\":\"" text "\"}"
#define CALL(status, args) \
    "{\"id\":\"fc_abc_1\",\"type\":\"function_call\",\"status\":\"" status "\",\"arguments\":\"" args "\"," \
    "\"call_id\":\"call_7\",\"name\":\"shell\"}"
#define USAGE "{\"input_tokens\":11,\"input_tokens_details\":{\"cached_tokens\":0}," \
    "\"output_tokens\":5,\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":16}"

static const char *const text_and_call[] = {
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}],\"provider\":\"ok\"}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\" there\"},\"finish_reason\":null}]}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"id\":\"call_7\",\"type\":\"function\",\"function\":{\"name\":\"shell\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]},\"finish_reason\":null}]}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"1}\"}}]},\"finish_reason\":null}]}",
    "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"tool_calls\"}]}",
    "data: {\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":11,\"completion_tokens\":5,\"total_tokens\":16}}",
    "data: [DONE]",
    NULL
};

static const char want_text_and_call[] =
    EV("response.created", "\"sequence_number\":0,\"response\":" RESP("in_progress", "[]", "null"))
    EV("response.in_progress", "\"sequence_number\":1,\"response\":" RESP("in_progress", "[]", "null"))
    EV("response.output_item.added", "\"sequence_number\":2,\"output_index\":0,\"item\":" MSG("in_progress", ""))
    EV("response.content_part.added", "\"sequence_number\":3,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"part\":" PART(""))
    EV("response.output_text.delta", "\"sequence_number\":4,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"logprobs\":[]")
    EV("response.output_text.delta", "\"sequence_number\":5,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"delta\":\" there\",\"logprobs\":[]")
    EV("response.output_text.done", "\"sequence_number\":6,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"text\":\"Hi there\",\"logprobs\":[]")
    EV("response.content_part.done", "\"sequence_number\":7,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"part\":" PART("Hi there"))
    EV("response.output_item.done", "\"sequence_number\":8,\"output_index\":0,\"item\":" MSG("completed", PART("Hi there")))
    EV("response.output_item.added", "\"sequence_number\":9,\"output_index\":1,\"item\":" CALL("in_progress", ""))
    EV("response.function_call_arguments.delta", "\"sequence_number\":10,\"item_id\":\"fc_abc_1\",\"output_index\":1,\"delta\":\"{\\\"a\\\":\"")
    EV("response.function_call_arguments.delta", "\"sequence_number\":11,\"item_id\":\"fc_abc_1\",\"output_index\":1,\"delta\":\"1}\"")
    EV("response.function_call_arguments.done", "\"sequence_number\":12,\"item_id\":\"fc_abc_1\",\"output_index\":1,\"name\":\"shell\",\"arguments\":\"{\\\"a\\\":1}\"")
    EV("response.output_item.done", "\"sequence_number\":13,\"output_index\":1,\"item\":" CALL("completed", "{\\\"a\\\":1}"))
    EV("response.completed", "\"sequence_number\":14,\"response\":"
       RESP("completed", "[" MSG("completed", PART("Hi there")) "," CALL("completed", "{\\\"a\\\":1}") "]", USAGE));

static void test_stream_text_and_call(void **state)
{
    static const size_t splits[] = { 1, 7, 100000 };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(splits) / sizeof(splits[0]); i++) {
        mn_resp_status st;
        const mn_error *e;
        mn_error ec;
        int started;
        char *got = run_stream(text_and_call, splits[i], 0, &st, &e, &ec, &started);
        if (strcmp(got, want_text_and_call)) {
            fail_msg("split %lu\n got: %s\nwant: %s", (unsigned long)splits[i], got,
                     want_text_and_call);
        }
        assert_int_equal(st, MN_RESP_DONE);
        assert_null(e);
        free(got);
    }
}

static void test_stream_reasoning_and_length(void **state)
{
    static const char *const frames[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hmm\"},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":\"length\"}]}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    const char *want_rs =
        EV("response.output_item.added", "\"sequence_number\":2,\"output_index\":0,\"item\":"
           "{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[]}")
        EV("response.reasoning_summary_part.added", "\"sequence_number\":3,\"item_id\":\"rs_abc_0\","
           "\"output_index\":0,\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"\"}")
        EV("response.reasoning_summary_text.delta", "\"sequence_number\":4,\"item_id\":\"rs_abc_0\","
           "\"output_index\":0,\"summary_index\":0,\"delta\":\"hmm\"")
        EV("response.reasoning_summary_text.done", "\"sequence_number\":5,\"item_id\":\"rs_abc_0\","
           "\"output_index\":0,\"summary_index\":0,\"text\":\"hmm\"")
        EV("response.reasoning_summary_part.done", "\"sequence_number\":6,\"item_id\":\"rs_abc_0\","
           "\"output_index\":0,\"summary_index\":0,\"part\":{\"type\":\"summary_text\",\"text\":\"hmm\"}")
        EV("response.output_item.done", "\"sequence_number\":7,\"output_index\":0,\"item\":"
           "{\"id\":\"rs_abc_0\",\"type\":\"reasoning\",\"summary\":[{\"type\":\"summary_text\",\"text\":\"hmm\"}]}")
        EV("response.output_item.added", "\"sequence_number\":8,\"output_index\":1,\"item\":"
           "{\"id\":\"msg_abc_1\",\"type\":\"message\",\"status\":\"in_progress\",\"content\":[],\"role\":\"assistant\"}");
    (void)state;
    if (!strstr(got, want_rs)) {
        fail_msg("reasoning events missing:\n%s", got);
    }
    assert_non_null(strstr(got, "event: response.incomplete\ndata: {\"type\":\"response.incomplete\","
                                "\"sequence_number\":14,\"response\":{\"id\":\"resp_abc\",\"object\":"
                                "\"response\",\"created_at\":1767225600,\"status\":\"incomplete\","
                                "\"background\":false,\"error\":null,\"incomplete_details\":"
                                "{\"reason\":\"max_output_tokens\"}"));
    assert_null(strstr(got, "response.completed"));
    assert_int_equal(st, MN_RESP_DONE);
    free(got);
}

static void test_stream_error_before_start(void **state)
{
    static const char *const frames[] = {
        "data: {\"error\":{\"message\":\"slow down\",\"type\":\"rate_limit_error\",\"param\":null,\"code\":\"rate_limit_exceeded\"},\"provider\":\"ok\"}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    (void)state;
    /* nothing written: the glue answers a JSON error or tries the next target */
    assert_string_equal(got, "");
    assert_int_equal(started, 0);
    assert_int_equal(st, MN_RESP_FAILED);
    assert_non_null(e);
    assert_string_equal(ec.type, "rate_limit_error");
    assert_string_equal(ec.code, "rate_limit_exceeded");
    assert_string_equal(ec.message, "slow down");
    free(got);
}

static void test_stream_error_after_start(void **state)
{
    static const char *const frames[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},\"finish_reason\":null}]}",
        "data: {\"error\":{\"message\":\"provider 'ok' broke off the stream\",\"type\":\"upstream_error\",\"param\":null,\"code\":\"upstream_reset\"},\"provider\":\"ok\"}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    const char *tail =
        EV("response.output_text.delta", "\"sequence_number\":4,\"item_id\":\"msg_abc_0\",\"output_index\":0,\"content_index\":0,\"delta\":\"Hi\",\"logprobs\":[]")
        "event: response.failed\ndata: {\"type\":\"response.failed\",\"sequence_number\":5,\"response\":"
        "{\"id\":\"resp_abc\",\"object\":\"response\",\"created_at\":1767225600,\"status\":\"failed\","
        "\"background\":false,\"error\":{\"code\":\"upstream_reset\",\"message\":\"provider 'ok' broke off the stream\"},"
        "\"incomplete_details\":null,\"instructions\":null,\"max_output_tokens\":null,\"model\":\"openai/gpt-5\","
        "\"output\":[],\"parallel_tool_calls\":true,\"previous_response_id\":null,\"reasoning\":null,"
        "\"store\":false,\"temperature\":null,\"text\":null,\"tool_choice\":\"auto\",\"tools\":[],"
        "\"top_p\":null,\"truncation\":\"disabled\",\"usage\":null,\"user\":null,\"metadata\":{},"
        "\"provider\":\"ok\"}}\n\n"
        EV("error", "\"sequence_number\":6,\"code\":\"upstream_reset\",\"message\":\"provider 'ok' broke off the stream\",\"param\":null");
    size_t gl = strlen(got), tl = strlen(tail);
    (void)state;
    if (gl < tl || strcmp(got + gl - tl, tail)) {
        fail_msg("\n got: %s\nwant tail: %s", got, tail);
    }
    assert_int_equal(started, 1);
    assert_int_equal(st, MN_RESP_FAILED);
    assert_string_equal(ec.code, "upstream_reset");
    free(got);
}

static void test_stream_held_bound(void **state)
{
    static const char *const frames[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"12345\"},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"67890\"},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"more\"},\"finish_reason\":null}]}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 8, &st, &e, &ec, &started);
    (void)state;
    assert_int_equal(st, MN_RESP_FAILED);
    assert_string_equal(ec.code, "upstream_too_large");
    assert_non_null(strstr(got, "\"delta\":\"12345\""));
    assert_null(strstr(got, "67890"));
    assert_non_null(strstr(got, "event: response.failed\n"));
    assert_null(strstr(got, "response.completed"));
    free(got);
}

static void test_stream_stray_arguments(void **state)
{
    static const char *const frames[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":[{\"index\":3,\"function\":{\"arguments\":\"{}\"}}]},\"finish_reason\":null}]}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    (void)state;
    assert_int_equal(st, MN_RESP_FAILED);
    assert_string_equal(ec.code, "upstream_bad_response");
    assert_non_null(strstr(got, "event: response.failed\n"));
    free(got);
}

static void test_stream_thinking_blocks(void **state)
{
    static const char *const frames[] = {
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"reasoning_content\":\"hm\"},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"S\"}]},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"thinking_blocks\":[{\"type\":\"redacted_thinking\",\"data\":\"X\"}]},\"finish_reason\":null}]}",
        "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"A\"},\"finish_reason\":\"stop\"}]}",
        "data: [DONE]",
        NULL
    };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    (void)state;
    /* one reasoning item: the text as its summary, both blocks in encrypted_content */
    assert_non_null(strstr(got,
        "event: response.output_item.done\ndata: {\"type\":\"response.output_item.done\","
        "\"sequence_number\":7,\"output_index\":0,\"item\":{\"id\":\"rs_abc_0\",\"type\":\"reasoning\","
        "\"summary\":[{\"type\":\"summary_text\",\"text\":\"hm\"}],\"encrypted_content\":"
        "\"mnr1:[{\\\"type\\\":\\\"thinking\\\",\\\"thinking\\\":\\\"hm\\\",\\\"signature\\\":\\\"S\\\"},"
        "{\\\"type\\\":\\\"redacted_thinking\\\",\\\"data\\\":\\\"X\\\"}]\"}}\n\n"));
    assert_null(strstr(got, "rs_abc_1"));
    assert_non_null(strstr(got, "\"item\":{\"id\":\"msg_abc_1\""));
    assert_int_equal(st, MN_RESP_DONE);
    free(got);
}

static void test_stream_empty(void **state)
{
    static const char *const frames[] = { "data: [DONE]", NULL };
    mn_resp_status st;
    const mn_error *e;
    mn_error ec;
    int started;
    char *got = run_stream(frames, 1000, 0, &st, &e, &ec, &started);
    const char *want =
        EV("response.created", "\"sequence_number\":0,\"response\":" RESP("in_progress", "[]", "null"))
        EV("response.in_progress", "\"sequence_number\":1,\"response\":" RESP("in_progress", "[]", "null"))
        EV("response.completed", "\"sequence_number\":2,\"response\":" RESP("completed", "[]",
           "{\"input_tokens\":0,\"input_tokens_details\":{\"cached_tokens\":0},\"output_tokens\":0,"
           "\"output_tokens_details\":{\"reasoning_tokens\":0},\"total_tokens\":0}"));
    (void)state;
    assert_string_equal(got, want);
    assert_int_equal(st, MN_RESP_DONE);
    free(got);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_request_codex),
        T(test_request_plain),
        T(test_request_refused),
        T(test_request_replays_thinking),
        T(test_whole_text_calls_reasoning),
        T(test_whole_thinking_blocks),
        T(test_whole_length_is_incomplete),
        T(test_whole_without_choice),
        T(test_stream_text_and_call),
        T(test_stream_reasoning_and_length),
        T(test_stream_error_before_start),
        T(test_stream_error_after_start),
        T(test_stream_held_bound),
        T(test_stream_stray_arguments),
        T(test_stream_thinking_blocks),
        T(test_stream_empty),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
