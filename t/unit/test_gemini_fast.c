/* Unit tests for the Gemini stream hot path (src/wire/gemini_stream.c,
 * text_event_fast): a common event is answered without a single Jansson
 * allocation, and with exactly the bytes and usage the tree path gives for
 * the same event (forced by one extra top-level member the fast path does
 * not know). */
#include <limits.h>
#include "gemini_test.h"

static long jansson_allocs;

static void *counting_malloc(size_t n)
{
    jansson_allocs++;
    return malloc(n);
}

/* The events of one stream (each a complete JSON text); the first one is
 * the role chunk's, always on the tree path. */
static const char *const first_event =
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"Hi\"}],\"role\": \"model\"}}],"
    "\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 9},"
    "\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"R1\"}";

static const char *const common_events[] = {
    /* plain text, the usage Gemini sends on every event (details ignored) */
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \" there\"}],\"role\": \"model\"},"
    "\"index\": 0}],\"usageMetadata\": {\"promptTokenCount\": 8,\"totalTokenCount\": 12,"
    "\"promptTokensDetails\": [{\"modality\": \"TEXT\",\"tokenCount\": 8}],"
    "\"thoughtsTokenCount\": 3},\"modelVersion\": \"gemini-2.5-flash\",\"responseId\": \"R1\"}",
    /* escapes Jansson writes the same way, raw UTF-8 */
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\\nb\\t\\\"q\\\" \\\\ \\u001F \xc3\xa9\"}]}}],"
    "\"modelVersion\": \"gemini-2.5-flash\"}",
    /* an empty text sends nothing */
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"\"}],\"role\": \"model\"}}],"
    "\"usageMetadata\": {\"promptTokenCount\": 8,\"candidatesTokenCount\": 20,"
    "\"totalTokenCount\": 28}}",
    /* the last usage wins, counts at the edges: INT64_MIN, INT64_MAX, a
     * real, a duplicate; the finish reason is noted */
    "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"x\"}]},"
    "\"finishReason\": \"MAX_TOKENS\"}],"
    "\"usageMetadata\": {\"candidatesTokenCount\": -9223372036854775808,"
    "\"thoughtsTokenCount\": 9223372036854775807,\"totalTokenCount\": 1e3,"
    "\"cachedContentTokenCount\": 7,\"cachedContentTokenCount\": 9}}",
};

typedef struct {
    mn_buf out;
    mn_usage usage;
    long allocs;             /* Jansson allocations while the common events were fed */
} run_result;

/* extra: put `"zz":0,` first in every common event (the tree path's). */
static void run(void **state, int include_usage, int extra, run_result *res)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_sink sink;
    mn_stream *st;
    size_t i;

    ctx_for(&ctx, &prov, state, 1, include_usage);
    mn_buf_init(&res->out);
    sink = mn_buf_sink(&res->out);
    st = mn_wire_gemini.stream_create(&ctx);
    mn_wire_gemini.stream_feed(st, MN_SSE_EVENT, "", first_event, strlen(first_event), &sink);
    jansson_allocs = 0;
    for (i = 0; i < sizeof(common_events) / sizeof(common_events[0]); i++) {
        char ev[1024];
        snprintf(ev, sizeof(ev), "%s%s", extra ? "{\"zz\":0," : "{", common_events[i] + 1);
        assert_int_equal(mn_wire_gemini.stream_feed(st, MN_SSE_EVENT, "", ev, strlen(ev), &sink),
                         MN_STREAM_MORE);
    }
    res->allocs = jansson_allocs;
    assert_int_equal(mn_wire_gemini.stream_end(st, NULL, &sink), MN_STREAM_DONE);
    res->usage = *mn_wire_gemini.stream_usage(st);
    mn_wire_gemini.stream_destroy(st);
}

static void test_fast_equals_tree(void **state)
{
    int include_usage;
    for (include_usage = 0; include_usage <= 1; include_usage++) {
        run_result fast, tree;
        run(state, include_usage, 0, &fast);
        run(state, include_usage, 1, &tree);
        assert_int_equal(fast.allocs, 0);
        assert_true(tree.allocs > 0);
        if (fast.out.len != tree.out.len || memcmp(fast.out.data, tree.out.data, fast.out.len)) {
            fail_msg("fast path bytes differ\nfast:\n%.*s\ntree:\n%.*s", (int)fast.out.len,
                     fast.out.data, (int)tree.out.len, tree.out.data);
        }
        assert_memory_equal(&fast.usage, &tree.usage, sizeof(fast.usage));
        assert_true(fast.usage.completion_tokens == LONG_MAX);
        assert_true(fast.usage.reasoning_tokens == LONG_MAX);
        assert_true(fast.usage.cached_tokens == 9);
        assert_true(fast.usage.total_tokens == LONG_MAX);   /* a real total is not one */
        assert_non_null(strstr(fast.out.data, "\"finish_reason\":\"length\""));
        mn_buf_free(&fast.out);
        mn_buf_free(&tree.out);
    }
}

/* What the fast path must leave to the tree: each event here, fed after
 * the first, allocates (it went through Jansson). */
static void test_uncommon_events_take_the_tree(void **state)
{
    static const char *const uncommon[] = {
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"t\",\"thought\": true}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"t\",\"thoughtSignature\": \"s\"}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\"},{\"text\": \"b\"}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"caf\\u00e9\"}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"a\\/b\"}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"low \\u001f\"}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"x\"}]}}],\"modelVersion\": \"other\"}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"functionCall\": {\"name\": \"f\"}}]}}]}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"x\"}]}}],\"promptFeedback\": {}}",
        "{\"candidates\": [{\"content\": {\"parts\": [{\"text\": \"x\"}]},\"finishReason\": \"S\\u0054OP\"}]}",
    };
    size_t i;
    for (i = 0; i < sizeof(uncommon) / sizeof(uncommon[0]); i++) {
        mn_wire_ctx ctx;
        mn_provider prov;
        mn_buf out;
        mn_sink sink;
        mn_stream *st;

        ctx_for(&ctx, &prov, state, 1, 0);
        mn_buf_init(&out);
        sink = mn_buf_sink(&out);
        st = mn_wire_gemini.stream_create(&ctx);
        mn_wire_gemini.stream_feed(st, MN_SSE_EVENT, "", first_event, strlen(first_event), &sink);
        jansson_allocs = 0;
        mn_wire_gemini.stream_feed(st, MN_SSE_EVENT, "", uncommon[i], strlen(uncommon[i]), &sink);
        if (jansson_allocs == 0) {
            fail_msg("event %zu took the fast path: %s", i, uncommon[i]);
        }
        mn_wire_gemini.stream_destroy(st);
        mn_buf_free(&out);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_fast_equals_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommon_events_take_the_tree, setup, teardown),
    };
    int rc;
    json_set_alloc_funcs(counting_malloc, free);
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
