/* The OpenAI stream hot path (write_chunk_fast in src/wire/openai.c): the
 * common chunk leaves as the upstream's bytes, "provider" first, usage:null
 * cut for clients that did not ask for usage: exact bytes asserted. */
#include <apr_strings.h>
#include "harness.h"

static void expect_out(int include_usage, const char *chunk, const char *want)
{
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_buf in, out;
    char *expected;

    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "up", MN_FORMAT_OPENAI, 1, include_usage);
    mn_buf_init(&in);
    mn_buf_init(&out);
    mn_buf_append(&in, "data: ", 6);
    mn_buf_append(&in, chunk, strlen(chunk));
    mn_buf_append(&in, "\n\ndata: [DONE]\n\n", 16);
    assert_int_equal(mn_t_replay_stream(&mn_wire_openai, &ctx, in.data, in.len, 0, &out),
                     MN_STREAM_DONE);
    expected = apr_pstrcat(pool, "data: ", want, "\n\ndata: [DONE]\n\n", NULL);
    if (out.len != strlen(expected) || memcmp(out.data, expected, out.len)) {
        fail_msg("chunk %s (include_usage %d)\n got: %.*s\nwant: %s", chunk, include_usage,
                 (int)out.len, out.data, expected);
    }
    mn_buf_free(&in);
    mn_buf_free(&out);
    apr_pool_destroy(pool);
}

static void test_bytes_kept(void **state)
{
    (void)state;
    /* spacing and escapes as the upstream wrote them: the tree path would
     * have re-encoded them */
    expect_out(0, "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"caf\\u00e9 \\/ x\"},"
                  "\"finish_reason\":null}],  \"usage\" :  null }",
               "{\"provider\":\"up\",\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
               "\"caf\\u00e9 \\/ x\"},\"finish_reason\":null}] }");
    expect_out(1, "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
                  "\"finish_reason\":null}],\"usage\":null}",
               "{\"provider\":\"up\",\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
               "\"a\"},\"finish_reason\":null}],\"usage\":null}");
    /* usage first, spelled with an escape: cut with the comma after it */
    expect_out(0, "{ \"\\u0075sage\":null ,\"choices\":[{\"index\":0,\"delta\":{},"
                  "\"finish_reason\":\"stop\"}]}",
               "{\"provider\":\"up\", \"choices\":[{\"index\":0,\"delta\":{},"
               "\"finish_reason\":\"stop\"}]}");
    /* no usage member at all */
    expect_out(0, "{\"choices\":[{\"index\":0,\"delta\":{\"content\":\"\xc3\xa9\"},"
                  "\"finish_reason\":null}]}",
               "{\"provider\":\"up\",\"choices\":[{\"index\":0,\"delta\":{\"content\":"
               "\"\xc3\xa9\"},\"finish_reason\":null}]}");
}

/* Anthropic text deltas after the first (which builds the template): the
 * text's JSON string is copied as the upstream wrote it (`\u00e9` stays
 * escaped; Jansson would have written the UTF-8 bytes). */
static void test_anthropic_text_span(void **state)
{
    static const char sse[] =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m1\","
        "\"model\":\"c\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"a\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"caf\\u00e9\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"x\",\"signature\":\"s\"}}\n\n";
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_buf out;
    (void)state;
    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "ant", MN_FORMAT_ANTHROPIC, 1, 0);
    mn_buf_init(&out);
    mn_t_replay_stream(&mn_wire_anthropic, &ctx, sse, sizeof(sse) - 1, 0, &out);
    mn_buf_append(&out, "", 1);
    /* the span copy */
    assert_non_null(strstr(out.data, "\"content\":\"caf\\u00e9\""));
    /* an unknown member in the delta takes the tree path, which still
     * sends the text */
    assert_non_null(strstr(out.data, "\"content\":\"x\""));
    mn_buf_free(&out);
    apr_pool_destroy(pool);
}

/* A plain non-streaming answer: bytes kept (escapes, an escaped key, spacing: the
 * tree path would re-encode them), "provider"
 * put first, usage counted from the usage member alone. */
static void test_answer_bytes(void **state)
{
    static const char body[] = "{\"\\u0069d\":\"r\", \"choices\":[{\"message\":{\"content\":"
                               "\"caf\\u00e9\"}}],\"usage\":{\"prompt_tokens\":3,"
                               "\"completion_tokens\":4,\"total_tokens\":7}}";
    static const char want[] = "{\"provider\":\"up\",\"\\u0069d\":\"r\", \"choices\":[{\"message\":"
                               "{\"content\":\"caf\\u00e9\"}}],\"usage\":{\"prompt_tokens\":3,"
                               "\"completion_tokens\":4,\"total_tokens\":7}}";
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_usage usage;
    mn_error err;
    const char *out;
    size_t out_len;
    (void)state;
    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "up", MN_FORMAT_OPENAI, 0, 0);
    memset(&usage, 0, sizeof(usage));
    assert_int_equal(mn_wire_openai.decode_response_bytes(&ctx, body, sizeof(body) - 1, &out,
                                                          &out_len, &usage, &err), 0);
    assert_int_equal(out_len, sizeof(want) - 1);
    assert_memory_equal(out, want, out_len);
    assert_int_equal(usage.prompt_tokens, 3);
    assert_int_equal(usage.completion_tokens, 4);
    assert_int_equal(usage.total_tokens, 7);
    apr_pool_destroy(pool);
}

/* The usage read from spans on the fast path is what mn_usage_from_openai
 * reads from the tree: reals, negatives, -0, huge counts, escaped keys,
 * duplicate keys (the last wins), details that are not objects. */
static void test_answer_usage_like_tree(void **state)
{
    static const char *const usages[] = {
        "{\"prompt_tokens\":24,\"completion_tokens\":19,\"total_tokens\":43,"
        "\"prompt_tokens_details\":{\"cached_tokens\":5},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":7}}",
        "{\"prompt_tokens\":2.0,\"completion_tokens\":-3,\"total_tokens\":-0}",
        "{\"prompt_tokens\":9223372036854775807,\"completion_tokens\":1e2,"
        "\"total_tokens\":\"5\"}",
        "{\"prompt_tokens\":1,\"prompt_tokens\":8,\"completion_tokens\":null,"
        "\"prompt_tokens_details\":[{\"cached_tokens\":4}],"
        "\"completion_tokens_details\":{\"reasoning_tokens\":3,\"reasoning_tokens\":0}}",
        "{\"pro\\u006dpt_tokens\":11,\"total_tokens\":0,\"total_tokens\":12}",
        "{}",
        "{\"prompt_tokens_details\":{\"cached_tokens\":true},\"total_tokens\":[1]}",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(usages) / sizeof(usages[0]); i++) {
        apr_pool_t *pool;
        mn_provider prov;
        mn_wire_ctx ctx;
        mn_usage fast, tree;
        mn_error err;
        const char *out;
        size_t out_len;
        json_t *u = json_loads(usages[i], 0, NULL);
        char *body;
        assert_non_null(u);
        apr_pool_create(&pool, NULL);
        body = apr_pstrcat(pool, "{\"choices\":[],\"usage\":", usages[i], "}", NULL);
        mn_t_ctx(&ctx, pool, &prov, "up", MN_FORMAT_OPENAI, 0, 0);
        memset(&fast, 0, sizeof(fast));
        memset(&tree, 0, sizeof(tree));
        assert_int_equal(mn_wire_openai.decode_response_bytes(&ctx, body, strlen(body), &out,
                                                              &out_len, &fast, &err), 0);
        mn_usage_from_openai(&tree, u);
        if (memcmp(&fast, &tree, sizeof(fast))) {
            fail_msg("usage %s: fast %ld/%ld/%ld/%ld/%ld, tree %ld/%ld/%ld/%ld/%ld", usages[i],
                     fast.prompt_tokens, fast.completion_tokens, fast.total_tokens,
                     fast.cached_tokens, fast.reasoning_tokens, tree.prompt_tokens,
                     tree.completion_tokens, tree.total_tokens, tree.cached_tokens,
                     tree.reasoning_tokens);
        }
        assert_int_equal(fast.have, 1);
        json_decref(u);
        apr_pool_destroy(pool);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_bytes_kept),
        cmocka_unit_test(test_anthropic_text_span),
        cmocka_unit_test(test_answer_bytes),
        cmocka_unit_test(test_answer_usage_like_tree),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
