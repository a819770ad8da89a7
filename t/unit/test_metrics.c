/* Unit tests for src/core/metrics.c: bucket math, slots (configured,
 * dynamic, other), what a request and its attempts add, the Prometheus text. */
#include "harness.h"
#include "mn_metrics.h"

static apr_pool_t *g_pool;

static mn_metrics_table *table(uint32_t cap)
{
    mn_metrics_table *t = malloc(mn_metrics_size(cap));
    assert_non_null(t);
    mn_metrics_init(t, cap, 1700000000123456LL);
    return t;
}

static void test_buckets(void **state)
{
    (void)state;
    /* le: a value equal to a bound is in that bound's bucket */
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 0), 0);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 1), 0);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 2), 1);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 4), 1);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 24), 3);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 67108864), 13);
    assert_int_equal(mn_metrics_bucket(MN_MH_TOKENS_IN, 67108865), 14);   /* +Inf */
    assert_int_equal(mn_metrics_bucket(MN_MH_DURATION, 10000), 0);
    assert_int_equal(mn_metrics_bucket(MN_MH_DURATION, 10001), 1);
    assert_int_equal(mn_metrics_bucket(MN_MH_TTFT, UINT64_MAX), 16);
    assert_int_equal(mn_metrics_bucket(MN_MH_OVERHEAD, 99), 0);
    assert_int_equal(mn_metrics_bucket(MN_MH_OVERHEAD, 1000001), 13);
}

static void test_names(void **state)
{
    (void)state;
    assert_int_equal(mn_metrics_error_of(NULL), MN_ME_SUCCESS);
    assert_int_equal(mn_metrics_error_of(""), MN_ME_SUCCESS);
    assert_int_equal(mn_metrics_error_of("rate_limit_error"), MN_ME_RATE_LIMIT);
    assert_int_equal(mn_metrics_error_of("client_aborted"), MN_ME_CLIENT_ABORTED);
    assert_int_equal(mn_metrics_error_of("overloaded_error"), MN_ME_OTHER);
    assert_int_equal(mn_metrics_attempt_of("200", 3), MN_MA_2XX);
    assert_int_equal(mn_metrics_attempt_of("204", 3), MN_MA_2XX);
    assert_int_equal(mn_metrics_attempt_of("429", 3), MN_MA_429);
    assert_int_equal(mn_metrics_attempt_of("418", 3), MN_MA_4XX);
    assert_int_equal(mn_metrics_attempt_of("529", 3), MN_MA_529);
    assert_int_equal(mn_metrics_attempt_of("599", 3), MN_MA_5XX);
    assert_int_equal(mn_metrics_attempt_of("1000", 4), MN_MA_OTHER);
    assert_int_equal(mn_metrics_attempt_of("unreachable", 11), MN_MA_UNREACHABLE);
    assert_int_equal(mn_metrics_attempt_of("total_timeout", 13), MN_MA_TIMEOUT);
    assert_int_equal(mn_metrics_attempt_of("circuit_open", 12), MN_MA_CIRCUIT_OPEN);
    assert_int_equal(mn_metrics_attempt_of("unreachablex", 11), MN_MA_UNREACHABLE);
    assert_int_equal(mn_metrics_attempt_of("bogus", 5), MN_MA_OTHER);
    assert_string_equal(mn_metrics_attempt_name(MN_MA_TLS), "tls_error");
}

static void test_slots_by_name(void **state)
{
    mn_metrics_table *t = table(12);
    int a, b, d;
    (void)state;
    a = mn_metrics_slot_add(t, "openai", "gpt-4o", MN_SK_MODEL);
    b = mn_metrics_slot_add(t, "openai", "", MN_SK_PROVIDER);
    d = mn_metrics_slot_add(t, "openai", "", MN_SK_DYNAMIC);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(d, 2);
    assert_int_equal(t->used, 2 + MN_METRICS_DYNAMIC);
    /* the next generation finds the same slots by name */
    assert_int_equal(mn_metrics_slot_add(t, "openai", "gpt-4o", MN_SK_MODEL), a);
    assert_int_equal(mn_metrics_slot_add(t, "openai", "", MN_SK_PROVIDER), b);
    assert_int_equal(mn_metrics_slot_add(t, "openai", "", MN_SK_DYNAMIC), d);
    assert_int_equal(t->used, 2 + MN_METRICS_DYNAMIC);
    /* a claimed dynamic name later configured keeps its slot: one series */
    assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, "gpt-5"), d);
    assert_int_equal(mn_metrics_slot_add(t, "openai", "gpt-5", MN_SK_MODEL), d);
    /* full */
    assert_int_equal(mn_metrics_slot_add(t, "x", "", MN_SK_DYNAMIC), -1);
    assert_int_equal(mn_metrics_slot_add(t, "openai", "o3", MN_SK_MODEL), 10);
    /* too long for a slot */
    {
        char big[MN_METRICS_MODEL_MAX + 1];
        memset(big, 'm', sizeof(big) - 1);
        big[sizeof(big) - 1] = '\0';
        assert_int_equal(mn_metrics_slot_add(t, "openai", big, MN_SK_MODEL), -1);
        assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, big), -1);
    }
    assert_true(mn_metrics_reusable(t, 12));
    assert_false(mn_metrics_reusable(t, 13));
    t->layout++;
    assert_false(mn_metrics_reusable(t, 1));
    free(t);
}

static void test_dynamic_then_other(void **state)
{
    mn_metrics_table *t = table(64);
    int d = mn_metrics_slot_add(t, "echo", "", MN_SK_DYNAMIC), i;
    char name[16];
    (void)state;
    for (i = 0; i < MN_METRICS_DYNAMIC; i++) {
        snprintf(name, sizeof(name), "m%d", i);
        assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, name), d + i);
    }
    /* the same names again: the same slots */
    assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, "m3"), d + 3);
    /* taken: the caller counts it as other */
    assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, "m8"), -1);
    /* "other" and "" never get a slot of their own */
    assert_int_equal(mn_metrics_slot_claim(t, d + 1, 1, "other"), -1);
    assert_int_equal(mn_metrics_slot_claim(t, d, MN_METRICS_DYNAMIC, ""), -1);
    assert_int_equal(mn_metrics_slot_claim(t, -1, MN_METRICS_DYNAMIC, "x"), -1);
    free(t);
}

static int prov_slot(void *baton, const char *name, size_t len)
{
    const int *slots = baton;
    if (len == 1 && name[0] == 'a') return slots[0];
    if (len == 1 && name[0] == 'b') return slots[1];
    return -1;
}

static void test_attempts(void **state)
{
    mn_metrics_table *t = table(8);
    int slots[2];
    (void)state;
    slots[0] = mn_metrics_slot_add(t, "a", "", MN_SK_PROVIDER);
    slots[1] = mn_metrics_slot_add(t, "b", "", MN_SK_PROVIDER);
    mn_metrics_record_attempts(t, "a:500,a:200", prov_slot, slots);
    assert_int_equal(t->slots[slots[0]].attempts[MN_MA_500], 1);
    assert_int_equal(t->slots[slots[0]].attempts[MN_MA_2XX], 1);
    assert_int_equal(t->slots[slots[0]].retries, 1);
    assert_int_equal(t->slots[slots[0]].fallbacks, 0);
    mn_metrics_record_attempts(t, "a:unreachable,a:circuit_open,b:429,b:200,zz:200,", prov_slot, slots);
    assert_int_equal(t->slots[slots[0]].attempts[MN_MA_UNREACHABLE], 1);
    assert_int_equal(t->slots[slots[0]].attempts[MN_MA_CIRCUIT_OPEN], 1);
    assert_int_equal(t->slots[slots[0]].retries, 1);      /* circuit_open is no retry */
    assert_int_equal(t->slots[slots[0]].fallbacks, 1);
    assert_int_equal(t->slots[slots[1]].attempts[MN_MA_429], 1);
    assert_int_equal(t->slots[slots[1]].retries, 1);
    assert_int_equal(t->slots[slots[1]].fallbacks, 1);    /* moved on to zz */
    mn_metrics_record_attempts(t, "garbage,,:,a", prov_slot, slots);
    assert_int_equal(t->slots[slots[0]].attempts[MN_MA_OTHER], 0);
    free(t);
}

static void test_record(void **state)
{
    mn_metrics_table *t = table(8);
    int s = mn_metrics_slot_add(t, "p", "m", MN_SK_MODEL);
    mn_metrics_obs o;
    (void)state;
    memset(&o, 0, sizeof(o));
    o.outcome = MN_ME_SUCCESS;
    o.have_usage = 1;
    o.prompt_tokens = 24;
    o.completion_tokens = 11;
    o.cached_tokens = 8;
    o.reasoning_tokens = 3;
    o.cost_micro_usd = 1500;
    o.stream = 1;
    o.duration_us = 1200000;
    o.ttft_us = 200000;
    o.overhead_us = 300;
    mn_metrics_record(t, s, &o);
    assert_int_equal(t->slots[s].requests[0], 1);
    assert_int_equal(t->slots[s].tokens[0], 24);
    assert_int_equal(t->slots[s].tokens[2], 8);
    assert_int_equal(t->slots[s].tokens[3], 3);
    assert_int_equal(t->slots[s].cost_micro_usd, 1500);
    assert_int_equal(t->slots[s].hist[MN_MH_TTFT].count, 1);
    /* (1.2 s - 0.2 s) / (11 - 1) tokens = 100 ms */
    assert_int_equal(t->slots[s].hist[MN_MH_TPOT].sum, 100000);
    assert_int_equal(t->slots[s].hist[MN_MH_TPOT].bucket[4], 1);
    assert_int_equal(t->slots[s].hist[MN_MH_OVERHEAD].bucket[2], 1);
    /* an error: counted by type, no first-token time; unknowns stay out */
    o.outcome = MN_ME_TIMEOUT;
    o.overhead_us = -1;
    o.duration_us = -1;
    o.have_usage = 0;
    mn_metrics_record(t, s, &o);
    assert_int_equal(t->slots[s].requests[MN_ME_TIMEOUT], 1);
    assert_int_equal(t->slots[s].hist[MN_MH_TTFT].count, 1);
    assert_int_equal(t->slots[s].hist[MN_MH_DURATION].count, 1);
    assert_int_equal(t->slots[s].hist[MN_MH_OVERHEAD].count, 1);
    assert_int_equal(t->slots[s].hist[MN_MH_TOKENS_IN].count, 1);
    mn_metrics_stream_delta(t, -1, s, 1);
    mn_metrics_stream_delta(t, -1, s, 1);
    mn_metrics_stream_delta(t, -1, s, -1);
    assert_int_equal(t->slots[s].live_streams, 1);
    assert_int_equal(mn_metrics_live(t, s, 0), 1);
    mn_metrics_record(t, 99, &o);     /* out of range: ignored */
    mn_metrics_record(t, -1, &o);
    free(t);
}

static int32_t dead_pid;

static int fake_alive(int32_t pid)
{
    return pid != dead_pid;
}

/* A process that dies mid-stream: its streams leave the gauge, and its row
 * goes, cleared, to the next process that needs one. */
static void test_live_rows(void **state)
{
    mn_metrics_table *t = table(4);
    int s = mn_metrics_slot_add(t, "p", "m", MN_SK_MODEL);
    int a, b, i;
    mn_metrics_totals tot;
    (void)state;
    dead_pid = 0;
    a = mn_metrics_proc_row(t, 100, fake_alive);
    b = mn_metrics_proc_row(t, 200, fake_alive);
    assert_int_equal(a, 0);
    assert_int_equal(b, 1);
    assert_int_equal(mn_metrics_proc_row(t, 100, fake_alive), a);
    mn_metrics_stream_delta(t, a, s, 1);
    mn_metrics_stream_delta(t, a, s, 1);
    mn_metrics_stream_delta(t, b, s, 1);
    assert_int_equal(mn_metrics_live(t, s, mn_metrics_rows_alive(t, fake_alive)), 3);
    dead_pid = 100;
    assert_int_equal(mn_metrics_rows_alive(t, fake_alive), 2);
    assert_int_equal(mn_metrics_live(t, s, mn_metrics_rows_alive(t, fake_alive)), 1);
    mn_metrics_sum(t, mn_metrics_rows_alive(t, fake_alive), &tot);
    assert_int_equal(tot.live_streams, 1);
    /* pid 300 takes the dead row, cleared */
    assert_int_equal(mn_metrics_proc_row(t, 300, fake_alive), a);
    dead_pid = 0;
    assert_int_equal(mn_metrics_live(t, s, mn_metrics_rows_alive(t, fake_alive)), 1);
    /* every row taken by a live process: -1, and the slot counts it */
    for (i = 2; i < MN_METRICS_PROCS; i++) {
        assert_int_equal(mn_metrics_proc_row(t, 1000 + i, fake_alive), i);
    }
    assert_int_equal(mn_metrics_proc_row(t, 5000, fake_alive), -1);
    mn_metrics_stream_delta(t, -1, s, 1);
    assert_int_equal(mn_metrics_live(t, s, mn_metrics_rows_alive(t, fake_alive)), 2);
    mn_metrics_stream_delta(t, 0, 99, 1);    /* no such slot: ignored */
    free(t);
}

static void test_prometheus_text(void **state)
{
    apr_pool_t *p = g_pool;
    mn_metrics_table *t = table(16);
    int s = mn_metrics_slot_add(t, "open\"ai", "gpt\\4o\nx", MN_SK_MODEL);
    int u = mn_metrics_slot_add(t, "", "", MN_SK_UNROUTED);
    mn_metrics_breaker br[1] = { { "open\"ai", 1 } };
    mn_metrics_obs o;
    mn_metrics_totals tot;
    char *text;

    (void)state;
    mn_metrics_slot_add(t, "open\"ai", "", MN_SK_PROVIDER);
    memset(&o, 0, sizeof(o));
    o.have_usage = 1;
    o.prompt_tokens = 24;
    o.completion_tokens = 2;
    o.duration_us = 15000;
    o.ttft_us = o.overhead_us = -1;
    o.cost_micro_usd = 2500001;
    mn_metrics_record(t, s, &o);
    o.outcome = MN_ME_INVALID_REQUEST;
    o.have_usage = 0;
    o.cost_micro_usd = 0;
    mn_metrics_record(t, u, &o);
    text = mn_metrics_prometheus(p, t, 0, br, 1);
    assert_non_null(text);
#define HAS(line) do { if (!strstr(text, line)) fail_msg("missing: %s\n--\n%s", line, text); } while (0)
#define L "gen_ai_provider_name=\"open\\\"ai\",gen_ai_request_model=\"gpt\\\\4o\\nx\""
    HAS("# TYPE maniac_requests_total counter\n");
    HAS("maniac_requests_total{" L ",outcome=\"success\"} 1\n");
    HAS("maniac_requests_total{outcome=\"error\",error_type=\"invalid_request_error\"} 1\n");
    HAS("# TYPE gen_ai_client_operation_duration_seconds histogram\n");
    HAS("gen_ai_client_operation_duration_seconds_bucket{" L ",le=\"0.01\"} 0\n");
    HAS("gen_ai_client_operation_duration_seconds_bucket{" L ",le=\"0.02\"} 1\n");
    HAS("gen_ai_client_operation_duration_seconds_bucket{" L ",le=\"81.92\"} 1\n");
    HAS("gen_ai_client_operation_duration_seconds_bucket{" L ",le=\"+Inf\"} 1\n");
    HAS("gen_ai_client_operation_duration_seconds_sum{" L "} 0.015000\n");
    HAS("gen_ai_client_operation_duration_seconds_count{" L "} 1\n");
    HAS("gen_ai_client_token_usage_bucket{" L ",gen_ai_token_type=\"input\",le=\"64\"} 1\n");
    HAS("gen_ai_client_token_usage_sum{" L ",gen_ai_token_type=\"output\"} 2\n");
    HAS("gen_ai_server_time_to_first_token_seconds_bucket{" L ",le=\"0.001\"} 0\n");
    HAS("gen_ai_server_time_to_first_token_seconds_count{" L "} 0\n");
    HAS("maniac_tokens_total{" L ",gen_ai_token_type=\"cached_input\"} 0\n");
    HAS("maniac_cost_usd_total{" L "} 2.500001\n");
    HAS("maniac_streams_active{" L "} 0\n");
    HAS("maniac_upstream_retries_total{gen_ai_provider_name=\"open\\\"ai\"} 0\n");
    HAS("maniac_circuit_breaker_state{gen_ai_provider_name=\"open\\\"ai\"} 1\n");
    HAS("maniac_metrics_start_time_seconds 1700000000.123456\n");
    HAS("maniac_metrics_slots{state=\"used\"} 3\n");
    /* an unrouted slot has no success line and no histograms */
    assert_null(strstr(text, "maniac_requests_total{outcome=\"success\"}"));
    assert_null(strstr(text, "_sum{}"));
    mn_metrics_sum(t, 0, &tot);
    assert_int_equal(tot.requests, 2);
    assert_int_equal(tot.errors, 1);
    assert_int_equal(tot.tokens_in, 24);
    assert_int_equal(tot.cost_micro_usd, 2500001);
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_buckets),
        cmocka_unit_test(test_names),
        cmocka_unit_test(test_slots_by_name),
        cmocka_unit_test(test_dynamic_then_other),
        cmocka_unit_test(test_attempts),
        cmocka_unit_test(test_record),
        cmocka_unit_test(test_live_rows),
        cmocka_unit_test(test_prometheus_text),
    };
    int rc;
    apr_initialize();
    apr_pool_create(&g_pool, NULL);
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_pool_destroy(g_pool);
    apr_terminate();
    return rc;
}
