/* Unit tests for src/wire/agent.c: reasoning artefacts across tool turns. */
#include "harness.h"
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_sigid.h"

static apr_pool_t *pool;

static int setup(void **state)
{
    apr_pool_create(&pool, NULL);
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(pool);
    return 0;
}

static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = mn_t_json(want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("got %s\nwant %s", g ? g : "(null)", want_text);
    }
    json_decref(want);
}

static void test_sign_call_and_read_back(void **state)
{
    json_t *tc = mn_t_json("{\"id\":\"call_r_0\",\"type\":\"function\","
                           "\"function\":{\"name\":\"f\",\"arguments\":\"{}\"}}");
    json_t *part = mn_t_json("{\"functionCall\":{\"name\":\"f\"},\"thoughtSignature\":\"Q+/=\"}");
    json_t *plain_part = mn_t_json("{\"functionCall\":{\"name\":\"g\"}}");
    json_t *tc2 = mn_t_json("{\"id\":\"call_r_1\"}");
    const char *id;

    mn_agent_gemini_sign_call(pool, tc, part);
    id = json_string_value(json_object_get(tc, "id"));
    assert_memory_equal(id, "gsig1_", 6);
    assert_string_equal(json_string_value(json_object_get(json_object_get(
                            json_object_get(tc, "extra_content"), "google"), "thought_signature")),
                        "Q+/=");
    /* unsigned part: unchanged */
    mn_agent_gemini_sign_call(pool, tc2, plain_part);
    assert_json(tc2, "{\"id\":\"call_r_1\"}");

    /* back: from extra_content, from the id alone, placeholder for the first only */
    assert_string_equal(mn_agent_gemini_call_signature(pool, tc, 0), "Q+/=");
    json_object_del(tc, "extra_content");
    assert_string_equal(mn_agent_gemini_call_signature(pool, tc, 1), "Q+/=");
    assert_string_equal(mn_agent_gemini_call_signature(pool, tc2, 0), MN_SIGID_PLACEHOLDER);
    assert_null(mn_agent_gemini_call_signature(pool, tc2, 1));
    /* extra_content wins over the id; a broken id is the placeholder */
    json_object_set_new(tc2, "extra_content", mn_t_json("{\"google\":{\"thought_signature\":\"X\"}}"));
    assert_string_equal(mn_agent_gemini_call_signature(pool, tc2, 1), "X");
    json_object_set_new(tc, "id", json_string(apr_pstrndup(pool, id, strlen(id) - 3)));
    assert_string_equal(mn_agent_gemini_call_signature(pool, tc, 0), MN_SIGID_PLACEHOLDER);
    json_decref(tc);
    json_decref(tc2);
    json_decref(part);
    json_decref(plain_part);
}

static void test_plain_messages(void **state)
{
    const char *id = mn_sigid_encode(pool, "call_r_0", 8, "SIG", 3);
    json_t *msgs = json_pack("[{s:s,s:s},{s:s,s:n,s:[{s:s,s:s,s:{s:{s:s,s:s}}},{s:s}]},"
                             "{s:s,s:s,s:s},{s:s,s:s,s:s}]",
                             "role", "user", "content", "hi",
                             "role", "assistant", "content", "tool_calls",
                             "id", id, "type", "function",
                             "extra_content", "google", "thought_signature", "SIG", "other", "kept",
                             "id", "call_r_1",
                             "role", "tool", "tool_call_id", id, "content", "1",
                             "role", "tool", "tool_call_id", "call_r_1", "content", "2");
    json_t *before = json_deep_copy(msgs);
    json_t *out = mn_agent_plain_messages(pool, msgs);
    assert_non_null(out);
    assert_json(out, "[{\"role\":\"user\",\"content\":\"hi\"},"
                     "{\"role\":\"assistant\",\"content\":null,\"tool_calls\":["
                     "{\"id\":\"call_r_0\",\"type\":\"function\",\"extra_content\":{\"google\":{\"other\":\"kept\"}}},"
                     "{\"id\":\"call_r_1\"}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"call_r_0\",\"content\":\"1\"},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"call_r_1\",\"content\":\"2\"}]");
    /* the client's tree is untouched; unchanged messages are shared */
    assert_true(json_equal(msgs, before));
    assert_ptr_equal(json_array_get(out, 0), json_array_get(msgs, 0));
    assert_ptr_equal(json_array_get(out, 3), json_array_get(msgs, 3));
    json_decref(out);
    json_decref(before);
    json_decref(msgs);

    /* nothing of ours: NULL */
    msgs = mn_t_json("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"toolu_1\"}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"toolu_1\"}]");
    assert_null(mn_agent_plain_messages(pool, msgs));
    json_decref(msgs);

    /* a broken id maps to the same short id in the call and in the tool message */
    msgs = mn_t_json("[{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"gsig1_AAAA\","
                     "\"extra_content\":{\"google\":{\"thought_signature\":\"S\"}}}]},"
                     "{\"role\":\"tool\",\"tool_call_id\":\"gsig1_AAAA\"}]");
    out = mn_agent_plain_messages(pool, msgs);
    {
        const char *a = json_string_value(json_object_get(json_array_get(
            json_object_get(json_array_get(out, 0), "tool_calls"), 0), "id"));
        const char *b = json_string_value(json_object_get(json_array_get(out, 1), "tool_call_id"));
        assert_string_equal(a, b);
        assert_int_equal(strlen(a), 29);
        assert_null(json_object_get(json_array_get(json_object_get(json_array_get(out, 0),
                                                                   "tool_calls"), 0),
                                    "extra_content"));
    }
    json_decref(out);
    json_decref(msgs);
}

static void test_thinking_blocks_out(void **state)
{
    json_t *b = mn_t_json("{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"S1\"}");
    json_t *r = mn_t_json("{\"type\":\"redacted_thinking\",\"data\":\"D1\"}");
    json_t *t = mn_t_json("{\"type\":\"text\",\"text\":\"x\"}");
    json_t *u = mn_t_json("{\"type\":\"thinking\",\"thinking\":\"no signature\"}");
    json_t *o = mn_agent_thinking_block(b);
    assert_json(o, "{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"S1\"}");
    json_decref(o);
    o = mn_agent_thinking_block(r);
    assert_json(o, "{\"type\":\"redacted_thinking\",\"data\":\"D1\"}");
    json_decref(o);
    assert_null(mn_agent_thinking_block(t));
    assert_null(mn_agent_thinking_block(u));
    json_decref(b);
    json_decref(r);
    json_decref(t);
    json_decref(u);
}

static void test_thinking_blocks_in(void **state)
{
    json_t *msg = mn_t_json("{\"role\":\"assistant\",\"thinking_blocks\":["
                            "{\"type\":\"thinking\",\"thinking\":\"a\\u00e9\",\"signature\":\"S\",\"index\":0},"
                            "{\"type\":\"redacted_thinking\",\"data\":\"D\"}]}");
    json_t *content = json_array();
    mn_error err;
    memset(&err, 0, sizeof(err));
    assert_int_equal(mn_agent_thinking_to_anthropic(msg, 1, content, &err), 0);
    assert_json(content, "[{\"type\":\"thinking\",\"thinking\":\"a\\u00e9\",\"signature\":\"S\"},"
                         "{\"type\":\"redacted_thinking\",\"data\":\"D\"}]");
    json_decref(msg);
    json_decref(content);

    content = json_array();
    msg = mn_t_json("{\"role\":\"assistant\",\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"a\"}]}");
    assert_int_equal(mn_agent_thinking_to_anthropic(msg, 3, content, &err), -1);
    assert_int_equal(err.status, 400);
    assert_string_equal(err.param, "messages[3].thinking_blocks[0]");
    json_decref(msg);
    msg = mn_t_json("{\"role\":\"assistant\",\"thinking_blocks\":\"x\"}");
    assert_int_equal(mn_agent_thinking_to_anthropic(msg, 2, content, &err), -1);
    assert_string_equal(err.param, "messages[2].thinking_blocks");
    json_decref(msg);
    msg = mn_t_json("{\"role\":\"assistant\",\"thinking_blocks\":null}");
    assert_int_equal(mn_agent_thinking_to_anthropic(msg, 2, content, &err), 0);
    assert_int_equal(json_array_size(content), 0);
    json_decref(msg);
    json_decref(content);
}

static void test_thinking_missing(void **state)
{
    static const struct { const char *msgs; int want; } cases[] = {
        /* a tool turn with its blocks */
        { "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\"}],"
          "\"thinking_blocks\":[{\"type\":\"thinking\",\"thinking\":\"x\",\"signature\":\"s\"}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t\"}]", 0 },
        /* without */
        { "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\"}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t\"}]", 1 },
        /* an empty list is none */
        { "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\"}],"
          "\"thinking_blocks\":[]},{\"role\":\"tool\",\"tool_call_id\":\"t\"}]", 1 },
        /* an earlier loop (before the last user message) does not count */
        { "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"tool_calls\":[{\"id\":\"t\"}]},"
          "{\"role\":\"tool\",\"tool_call_id\":\"t\"},{\"role\":\"assistant\",\"content\":\"a\"},"
          "{\"role\":\"user\",\"content\":\"next\"}]", 0 },
        /* a text-only assistant turn needs none */
        { "[{\"role\":\"user\",\"content\":\"q\"},{\"role\":\"assistant\",\"content\":\"a\"}]", 0 },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *m = mn_t_json(cases[i].msgs);
        if (mn_agent_thinking_missing(m) != cases[i].want) {
            fail_msg("case %zu", i);
        }
        json_decref(m);
    }
}

static void test_gemini_effort(void **state)
{
    static const struct { const char *model, *effort, *want; } cases[] = {
        { "gemini-2.5-flash", "none", "{\"thinkingBudget\":0}" },
        { "gemini-2.5-pro", "minimal", "{\"thinkingBudget\":512}" },
        { "gemini-2.5-flash", "low", "{\"thinkingBudget\":1024}" },
        { "gemini-2.5-flash", "medium", "{\"thinkingBudget\":8192}" },
        { "gemini-2.5-flash", "xhigh", "{\"thinkingBudget\":24576}" },
        { "gemini-1.5-pro", "high", "{\"thinkingBudget\":24576}" },
        { "my-tuned-model", "high", "{\"thinkingBudget\":24576}" },
        { "gemini-3-flash-preview", "none", "{\"thinkingLevel\":\"minimal\"}" },
        { "gemini-3-flash-preview", "minimal", "{\"thinkingLevel\":\"minimal\"}" },
        { "gemini-3-flash-preview", "medium", "{\"thinkingLevel\":\"medium\"}" },
        { "gemini-3-flash-preview", "xhigh", "{\"thinkingLevel\":\"high\"}" },
        { "gemini-3-pro-preview", "none", "{\"thinkingLevel\":\"low\"}" },
        { "gemini-3-pro-preview", "low", "{\"thinkingLevel\":\"low\"}" },
        { "gemini-3-pro-preview", "medium", "{\"thinkingLevel\":\"high\"}" },
        { "models/gemini-3.1-pro", "max", "{\"thinkingLevel\":\"high\"}" },
        { "gemini-10-pro", "low", "{\"thinkingLevel\":\"low\"}" },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        json_t *tc = json_object();
        assert_int_equal(mn_agent_gemini_effort(cases[i].model, cases[i].effort, tc), 0);
        assert_json(tc, cases[i].want);
        json_decref(tc);
    }
    {
        json_t *tc = json_object();
        assert_int_equal(mn_agent_gemini_effort("gemini-3-pro", "extreme", tc), -1);
        assert_int_equal(json_object_size(tc), 0);
        json_decref(tc);
    }
}

static void feed(mn_agent_thinking_acc *a, const char *kind, const char *json)
{
    json_t *j = mn_t_json(json);
    if (!strcmp(kind, "start")) {
        mn_agent_acc_start(a, j);
    }
    else {
        mn_agent_acc_delta(a, j);
    }
    json_decref(j);
}

static void test_thinking_acc(void **state)
{
    mn_agent_thinking_acc a;
    json_t *got;
    mn_agent_acc_init(&a);
    assert_null(mn_agent_acc_take(&a));
    feed(&a, "start", "{\"type\":\"thinking\",\"thinking\":\"\",\"signature\":\"\"}");
    feed(&a, "delta", "{\"type\":\"thinking_delta\",\"thinking\":\"Let me \"}");
    feed(&a, "delta", "{\"type\":\"thinking_delta\",\"thinking\":\"think \\u00e9.\"}");
    feed(&a, "delta", "{\"type\":\"signature_delta\",\"signature\":\"EqQB+/\"}");
    feed(&a, "delta", "{\"type\":\"signature_delta\",\"signature\":\"xyz==\"}");
    mn_agent_acc_stop(&a);
    feed(&a, "start", "{\"type\":\"redacted_thinking\",\"data\":\"RD\"}");
    /* a text block between: ignored */
    feed(&a, "start", "{\"type\":\"text\",\"text\":\"hi\"}");
    mn_agent_acc_stop(&a);
    got = mn_agent_acc_take(&a);
    assert_json(got, "[{\"type\":\"thinking\",\"thinking\":\"Let me think \\u00e9.\","
                     "\"signature\":\"EqQB+/xyz==\"},{\"type\":\"redacted_thinking\",\"data\":\"RD\"}]");
    json_decref(got);
    assert_null(mn_agent_acc_take(&a));
    /* unsigned thinking is not kept; a stream cut mid-block leaks nothing */
    feed(&a, "start", "{\"type\":\"thinking\",\"thinking\":\"x\"}");
    mn_agent_acc_stop(&a);
    assert_null(mn_agent_acc_take(&a));
    feed(&a, "start", "{\"type\":\"thinking\",\"thinking\":\"x\"}");
    feed(&a, "delta", "{\"type\":\"signature_delta\",\"signature\":\"s\"}");
    feed(&a, "start", "{\"type\":\"redacted_thinking\",\"data\":\"R2\"}");
    mn_agent_acc_free(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_sign_call_and_read_back),
        cmocka_unit_test(test_plain_messages),
        cmocka_unit_test(test_thinking_blocks_out),
        cmocka_unit_test(test_thinking_blocks_in),
        cmocka_unit_test(test_thinking_missing),
        cmocka_unit_test(test_gemini_effort),
        cmocka_unit_test(test_thinking_acc),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, setup, teardown);
}
