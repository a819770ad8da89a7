/* Unit tests for the usage every format fills: cached, cache-write and
 * reasoning tokens, non-streaming and streaming, and saturation of absurd
 * counts (what cost and budgets are computed from). */
#include <limits.h>
#include "harness.h"

static int setup(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static void assert_usage(const mn_usage *u, long prompt, long completion, long total,
                         long cached, long cache_write, long reasoning)
{
    assert_int_equal(u->have, 1);
    assert_int_equal(u->prompt_tokens, prompt);
    assert_int_equal(u->completion_tokens, completion);
    assert_int_equal(u->total_tokens, total);
    assert_int_equal(u->cached_tokens, cached);
    assert_int_equal(u->cache_write_tokens, cache_write);
    assert_int_equal(u->reasoning_tokens, reasoning);
}

static void decode(void **state, mn_format f, const char *body, mn_usage *u)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_error err;
    json_t *out = NULL;
    mn_t_ctx(&ctx, *state, &prov, "p", f, 0, 0);
    memset(u, 0, sizeof(*u));
    mn_error_clear(&err);
    if (mn_wire_for(f)->decode_response(&ctx, body, strlen(body), &out, u, &err)) {
        fail_msg("decode failed: %s", err.message);
    }
    json_decref(out);
}

static void stream(void **state, mn_format f, const char *sse, mn_usage *u)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_buf out;
    mn_t_ctx(&ctx, *state, &prov, "p", f, 1, 1);
    mn_buf_init(&out);
    memset(u, 0, sizeof(*u));
    mn_t_replay_stream_ex(mn_wire_for(f), &ctx, sse, strlen(sse), 0, &out, u, NULL, NULL);
    mn_buf_free(&out);
}

static void test_openai_details(void **state)
{
    mn_usage u;
    decode(state, MN_FORMAT_OPENAI,
           "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[],"
           "\"usage\":{\"prompt_tokens\":100,\"completion_tokens\":50,\"total_tokens\":150,"
           "\"prompt_tokens_details\":{\"cached_tokens\":40},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":30}}}", &u);
    assert_usage(&u, 100, 50, 150, 40, 0, 30);
}

static void test_openai_stream_details(void **state)
{
    mn_usage u;
    stream(state, MN_FORMAT_OPENAI,
           "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\","
           "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n"
           "data: {\"id\":\"x\",\"object\":\"chat.completion.chunk\",\"model\":\"m\",\"choices\":[],"
           "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":8,\"total_tokens\":17,"
           "\"prompt_tokens_details\":{\"cached_tokens\":3},"
           "\"completion_tokens_details\":{\"reasoning_tokens\":5}}}\n\n"
           "data: [DONE]\n\n", &u);
    assert_usage(&u, 9, 8, 17, 3, 0, 5);
}

static void test_anthropic_cache(void **state)
{
    mn_usage u;
    decode(state, MN_FORMAT_ANTHROPIC,
           "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
           "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
           "\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":200,"
           "\"cache_read_input_tokens\":3000,\"output_tokens\":7}}", &u);
    assert_usage(&u, 3210, 7, 3217, 3000, 200, 0);
}

static void test_anthropic_stream_cache(void **state)
{
    mn_usage u;
    stream(state, MN_FORMAT_ANTHROPIC,
           "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\","
           "\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\",\"content\":[],"
           "\"usage\":{\"input_tokens\":5,\"cache_creation_input_tokens\":6,"
           "\"cache_read_input_tokens\":7,\"output_tokens\":1}}}\n\n"
           "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
           "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
           "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
           "\"delta\":{\"type\":\"text_delta\",\"text\":\"hi\"}}\n\n"
           "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
           "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":"
           "{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":12}}\n\n"
           "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n", &u);
    assert_usage(&u, 18, 12, 30, 7, 6, 0);
}

static void test_gemini_cached_thoughts(void **state)
{
    mn_usage u;
    decode(state, MN_FORMAT_GEMINI,
           "{\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"}]},"
           "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":120,"
           "\"cachedContentTokenCount\":100,\"candidatesTokenCount\":4,\"thoughtsTokenCount\":25,"
           "\"totalTokenCount\":149},\"modelVersion\":\"g\",\"responseId\":\"r\"}", &u);
    assert_usage(&u, 120, 29, 149, 100, 0, 25);
}

static void test_gemini_stream_cached_thoughts(void **state)
{
    mn_usage u;
    stream(state, MN_FORMAT_GEMINI,
           "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"hi\"}]},"
           "\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12,\"candidatesTokenCount\":1},"
           "\"responseId\":\"r\"}\r\n\r\n"
           "data: {\"candidates\":[{\"content\":{\"role\":\"model\",\"parts\":[{\"text\":\"!\"}]},"
           "\"finishReason\":\"STOP\",\"index\":0}],\"usageMetadata\":{\"promptTokenCount\":12,"
           "\"cachedContentTokenCount\":8,\"candidatesTokenCount\":2,\"thoughtsTokenCount\":3,"
           "\"totalTokenCount\":17},\"responseId\":\"r\"}\r\n\r\n", &u);
    assert_usage(&u, 12, 5, 17, 8, 0, 3);
}

/* An upstream's absurd counts clamp instead of wrapping into negatives that
 * would refund a budget. */
static void test_saturation(void **state)
{
    mn_usage u;
    decode(state, MN_FORMAT_ANTHROPIC,
           "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"c\","
           "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
           "\"usage\":{\"input_tokens\":9223372036854775807,\"cache_creation_input_tokens\":5,"
           "\"cache_read_input_tokens\":-4,\"output_tokens\":9223372036854775807}}", &u);
    assert_usage(&u, LONG_MAX, LONG_MAX, LONG_MAX, 0, 5, 0);
    decode(state, MN_FORMAT_OPENAI,
           "{\"id\":\"x\",\"object\":\"chat.completion\",\"model\":\"m\",\"choices\":[],"
           "\"usage\":{\"prompt_tokens\":-1,\"completion_tokens\":\"7\",\"total_tokens\":3,"
           "\"prompt_tokens_details\":null}}", &u);
    assert_usage(&u, 0, 0, 3, 0, 0, 0);
    assert_int_equal(mn_usage_add(LONG_MAX - 1, 2), LONG_MAX);
    assert_int_equal(mn_usage_add(40, 2), 42);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_openai_details, setup, teardown),
        cmocka_unit_test_setup_teardown(test_openai_stream_details, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anthropic_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_anthropic_stream_cache, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gemini_cached_thoughts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_gemini_stream_cached_thoughts, setup, teardown),
        cmocka_unit_test_setup_teardown(test_saturation, setup, teardown),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
