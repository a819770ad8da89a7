/* Unit tests for src/core/price.c, src/core/admission.c and the shm store of
 * src/core/counters.c: price lines and globs, the LiteLLM file, exact costs
 * in micro-USD, window names, OpenAI's reset durations, reservation,
 * refusal, rollback and settlement. */
#include <pthread.h>
#include <apr_strings.h>
#include "harness.h"
#include "mn_admission.h"
#include "mn_counters.h"
#include "mn_price.h"

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

static const char *line(mn_price_table *t, const char *a, const char *b, const char *c,
                        const char *d, const char *e)
{
    const char *argv[5] = { a, b, c, d, e };
    int argc = e ? 5 : d ? 4 : c ? 3 : b ? 2 : 1;
    return mn_price_add_line(t, argc, argv);
}

static mn_usage usage(long prompt, long completion, long cached, long written)
{
    mn_usage u;
    memset(&u, 0, sizeof(u));
    u.have = 1;
    u.prompt_tokens = prompt;
    u.completion_tokens = completion;
    u.total_tokens = mn_usage_add(prompt, completion);
    u.cached_tokens = cached;
    u.cache_write_tokens = written;
    return u;
}

static void test_price_lines(void **state)
{
    mn_price_table *t = mn_price_table_create(*state);
    const mn_price *p;
    mn_usage u;

    assert_null(line(t, "openai/gpt-4o-mini", "input=0.15", "output=0.60", NULL, NULL));
    assert_null(line(t, "anthropic/claude-*", "input=3", "output=15", "cached-input=0.30",
                     "cache-write=3.75"));
    assert_null(line(t, "openai/*", "input=2.50", "output=10", NULL, NULL));

    /* first glob wins: gpt-4o-mini is not priced as "openai/(anything)" */
    p = mn_price_find(t, "openai", "gpt-4o-mini");
    assert_non_null(p);
    assert_int_equal(p->input, 150000);
    assert_int_equal(p->output, 600000);
    assert_int_equal(p->cached_input, 150000);
    u = usage(1000, 500, 0, 0);
    /* 1000 x 0.15 + 500 x 0.60 per 1M = 0.00015 + 0.0003 USD = 450 micro-USD */
    assert_int_equal(mn_price_cost(p, &u), 450);

    p = mn_price_find(t, "openai", "gpt-4o");
    assert_int_equal(p->input, 2500000);
    u = usage(7, 3, 0, 0);
    /* (7 x 2.5 + 3 x 10) / 1M USD = 47.5 micro-USD, rounded up */
    assert_int_equal(mn_price_cost(p, &u), 48);

    p = mn_price_find(t, "anthropic", "claude-sonnet-4-5");
    /* 3210 prompt = 10 plain + 200 written + 3000 read; 7 out */
    u = usage(3210, 7, 3000, 200);
    /* 10x3 + 200x3.75 + 3000x0.30 + 7x15 = 30 + 750 + 900 + 105 = 1785 */
    assert_int_equal(mn_price_cost(p, &u), 1785);

    assert_null(mn_price_find(t, "gemini", "gemini-2.5-pro"));
    assert_string_equal(mn_price_format_usd(*state, 1785), "0.001785");
    assert_string_equal(mn_price_format_usd(*state, 12500000), "12.500000");
    assert_string_equal(mn_price_format_usd(*state, 0), "0.000000");
}

static void test_price_line_errors(void **state)
{
    mn_price_table *t = mn_price_table_create(*state);
    assert_non_null(line(t, "x/*", "input=1", NULL, NULL, NULL));
    assert_non_null(line(t, "x/*", "input=1", "cached-input=1", NULL, NULL));
    assert_non_null(line(t, "x/*", "input=1", "output=0.0000001", NULL, NULL));
    assert_non_null(line(t, "x/*", "input=-1", "output=1", NULL, NULL));
    assert_non_null(line(t, "x/*", "input=1", "output=1", "colour=2", NULL));
    assert_non_null(line(t, "x/*", "input=1", "output=1", "input=2", NULL));
    assert_non_null(line(t, "x/*", "input=", "output=1", NULL, NULL));
    assert_non_null(line(t, "x/*", "input=1e3", "output=1", NULL, NULL));
    assert_null(mn_price_find(t, "x", "y"));
}

static void test_decimal(void **state)
{
    int64_t v;
    assert_int_equal(mn_price_parse_decimal("0.15", 6, &v), 0);
    assert_int_equal(v, 150000);
    assert_int_equal(mn_price_parse_decimal("12", 6, &v), 0);
    assert_int_equal(v, 12000000);
    assert_int_equal(mn_price_parse_decimal(".5", 6, &v), 0);
    assert_int_equal(v, 500000);
    assert_int_equal(mn_price_parse_decimal("1.", 2, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(mn_price_parse_decimal("", 6, &v), -1);
    assert_int_equal(mn_price_parse_decimal(".", 6, &v), -1);
    assert_int_equal(mn_price_parse_decimal("1.2.3", 6, &v), -1);
    assert_int_equal(mn_price_parse_decimal("99999999999999999999", 6, &v), -1);
}

static const char litellm[] =
    "{\"sample_spec\":{\"max_tokens\":\"LEGACY\",\"input_cost_per_token\":0,"
    "\"litellm_provider\":\"one of https://docs.litellm.ai/docs/providers\"},"
    "\"gpt-4o\":{\"max_tokens\":16384,\"input_cost_per_token\":2.5e-06,"
    "\"output_cost_per_token\":1e-05,\"cache_read_input_token_cost\":1.25e-06,"
    "\"litellm_provider\":\"openai\",\"mode\":\"chat\"},"
    "\"gemini/gemini-2.0-flash\":{\"input_cost_per_token\":1e-07,"
    "\"output_cost_per_token\":4e-07,\"cache_read_input_token_cost\":2.5e-08,"
    "\"litellm_provider\":\"gemini\"},"
    "\"claude-3-5-haiku-20241022\":{\"input_cost_per_token\":8e-07,"
    "\"output_cost_per_token\":4e-06,\"cache_creation_input_token_cost\":1e-06,"
    "\"cache_read_input_token_cost\":8e-08,\"litellm_provider\":\"anthropic\"},"
    "\"dall-e-3\":{\"output_cost_per_image\":0.04,\"litellm_provider\":\"openai\"}}";

static void test_litellm(void **state)
{
    mn_price_table *t = mn_price_table_create(*state);
    const mn_price *p;
    mn_usage u;

    assert_null(mn_price_add_litellm(t, litellm, strlen(litellm), "prices.json"));
    p = mn_price_find(t, "openai", "gpt-4o");
    assert_non_null(p);
    assert_int_equal(p->input, 2500000);
    assert_int_equal(p->output, 10000000);
    assert_int_equal(p->cached_input, 1250000);
    assert_int_equal(p->cache_write, 2500000);
    /* "provider/model" first: our provider called gemini finds LiteLLM's gemini/ key */
    p = mn_price_find(t, "gemini", "gemini-2.0-flash");
    assert_non_null(p);
    assert_int_equal(p->cached_input, 25000);
    p = mn_price_find(t, "anthropic", "claude-3-5-haiku-20241022");
    u = usage(1300, 100, 1000, 200);
    /* 100x0.8 + 200x1 + 1000x0.08 + 100x4 = 80 + 200 + 80 + 400 = 760 */
    assert_int_equal(mn_price_cost(p, &u), 760);
    assert_null(mn_price_find(t, "openai", "dall-e-3"));
    assert_null(mn_price_find(t, "x", "sample_spec"));

    /* a ManiacPrice line wins over the file, whatever the order */
    assert_null(line(t, "openai/gpt-4o", "input=1", "output=2", NULL, NULL));
    assert_int_equal(mn_price_find(t, "openai", "gpt-4o")->input, 1000000);

    assert_non_null(mn_price_add_litellm(t, "[1]", 3, "a.json"));
    assert_non_null(mn_price_add_litellm(t, "{", 1, "a.json"));
    assert_non_null(mn_price_add_litellm_file(t, "/nonexistent/prices.json"));
}

static void test_cost_saturates(void **state)
{
    mn_price pr = { INT64_C(1000000000000), INT64_C(1000000000000), 0, 0 };
    mn_usage u = usage(LONG_MAX, LONG_MAX, 0, 0);
    assert_int_equal(mn_price_cost(&pr, &u), INT64_MAX / 1000000 + 1);
    /* cached counts larger than the prompt: never a negative charge */
    u = usage(10, 0, 50, 0);
    pr.input = 1000000;
    pr.cached_input = 1000000;
    assert_int_equal(mn_price_cost(&pr, &u), 50);
}

static void test_duration(void **state)
{
    char b[32];
    struct { apr_interval_time_t d; const char *want; } cases[] = {
        { 0, "0ms" }, { 1, "1ms" }, { 20000, "20ms" }, { 999000, "999ms" },
        { 1000000, "1s" }, { 1500000, "1.5s" }, { 1250000, "1.25s" }, { 1005000, "1.005s" },
        { 59999000, "59.999s" }, { 360000000, "6m0s" }, { 61000000, "1m1s" },
        { APR_INT64_C(3723000000), "1h2m3s" }, { APR_INT64_C(86400000000), "24h0m0s" },
    };
    size_t i;
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        mn_duration_format(cases[i].d, b, sizeof(b));
        assert_string_equal(b, cases[i].want);
    }
}

static mn_client_key key(const char *name, int64_t rpm, int64_t tpm, int64_t budget,
                         mn_budget_period period, int64_t streams)
{
    mn_client_key k;
    memset(&k, 0, sizeof(k));
    k.name = name;
    k.rpm = rpm;
    k.tpm = tpm;
    k.budget_micro_usd = budget;
    k.budget_period = period;
    k.max_streams = streams;
    return k;
}

/* 2026-11-30 01:59:30.250 UTC */
#define NOW (apr_time_from_sec(1796003970) + 250000)

static void test_plan_windows(void **state)
{
    mn_admission a;
    mn_client_key k = key("team-a", 5, 1000, 2000000, MN_BUDGET_DAY, 2);
    mn_admission_plan(&a, &k, NOW, 1, 300, 40);
    assert_int_equal(a.n, 4);
    assert_string_equal(a.ops[0].key, "maniac:rpm:team-a:29933399");
    assert_int_equal(a.ops[0].delta, 1);
    assert_int_equal(a.ops[0].ttl, 120);
    assert_int_equal(a.reset[0], 29750000);
    assert_string_equal(a.ops[1].key, "maniac:tpm:team-a:29933399");
    assert_int_equal(a.ops[1].delta, 300);
    assert_string_equal(a.ops[2].key, "maniac:spend:team-a:20261130");
    assert_int_equal(a.ops[2].delta, 40);
    /* until midnight UTC: 22h0m29.75s */
    assert_int_equal(a.reset[2], apr_time_from_sec(22 * 3600 + 29) + 750000);
    assert_string_equal(a.ops[3].key, "maniac:streams:team-a");

    k = key("m", 0, 0, 5, MN_BUDGET_MONTH, 2);
    mn_admission_plan(&a, &k, NOW, 0, 300, 0);
    assert_int_equal(a.n, 1);   /* not a stream: no stream slot */
    assert_string_equal(a.ops[0].key, "maniac:spend:m:202611");
    /* until 2026-12-01 00:00 UTC */
    assert_int_equal(a.reset[0], apr_time_from_sec(1796083200) - NOW);

    k = key("free", 0, 0, 0, MN_BUDGET_NONE, 0);
    mn_admission_plan(&a, &k, NOW, 1, 300, 40);
    assert_int_equal(a.n, 0);
}

static void test_refuse_and_headers(void **state)
{
    apr_pool_t *p = *state;
    mn_admission a;
    mn_client_key k = key("t", 5, 1000, 0, MN_BUDGET_NONE, 0);
    apr_table_t *h = apr_table_make(p, 8);
    mn_counter_op ops[MN_ADMISSION_MAX_OPS];
    mn_error err;
    int n;

    mn_admission_plan(&a, &k, NOW, 0, 300, 0);
    a.value[0] = 5;
    a.value[1] = 900;
    assert_int_equal(mn_admission_refused(&a), -1);
    mn_admission_headers(&a, p, h);
    assert_string_equal(apr_table_get(h, "x-ratelimit-limit-requests"), "5");
    assert_string_equal(apr_table_get(h, "x-ratelimit-remaining-requests"), "0");
    assert_string_equal(apr_table_get(h, "x-ratelimit-reset-requests"), "29.75s");
    assert_string_equal(apr_table_get(h, "x-ratelimit-limit-tokens"), "1000");
    assert_string_equal(apr_table_get(h, "x-ratelimit-remaining-tokens"), "100");

    a.value[0] = 6;
    assert_int_equal(mn_admission_refused(&a), 0);
    mn_error_clear(&err);
    apr_table_clear(h);
    mn_admission_error(&a, 0, p, &err, h);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "requests");
    assert_string_equal(err.code, "rate_limit_exceeded");
    assert_string_equal(err.retry_after, "30");
    assert_string_equal(err.message, "Rate limit reached for requests per min (RPM): Limit 5, "
                        "Used 5, Requested 1. Please try again in 29.75s.");
    assert_string_equal(apr_table_get(h, "x-ratelimit-remaining-requests"), "0");
    assert_null(apr_table_get(h, "x-should-retry"));

    n = mn_admission_rollback(&a, ops);
    assert_int_equal(n, 2);
    assert_int_equal(ops[0].delta, -1);
    assert_int_equal(ops[1].delta, -300);
    assert_string_equal(ops[1].key, a.ops[1].key);

    a.value[0] = 1;
    a.value[1] = 1001;
    assert_int_equal(mn_admission_refused(&a), 1);
    mn_admission_error(&a, 1, p, &err, h);
    assert_string_equal(err.type, "tokens");
}

static void test_budget(void **state)
{
    apr_pool_t *p = *state;
    mn_admission a;
    mn_client_key k = key("b", 0, 0, 1000, MN_BUDGET_DAY, 0);
    apr_table_t *h = apr_table_make(p, 8);
    mn_counter_op ops[MN_ADMISSION_MAX_OPS];
    mn_error err;

    mn_admission_plan(&a, &k, NOW, 0, 10, 400);
    a.value[0] = 1000;      /* spend + reservation exactly at the budget: admitted */
    assert_int_equal(mn_admission_refused(&a), -1);
    a.value[0] = 1001;
    assert_int_equal(mn_admission_refused(&a), 0);
    mn_error_clear(&err);
    mn_admission_error(&a, 0, p, &err, h);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "insufficient_quota");
    assert_string_equal(err.code, "insufficient_quota");
    assert_string_equal(err.retry_after, "");
    assert_string_equal(apr_table_get(h, "x-should-retry"), "false");

    /* no price known: nothing reserved, but a spent budget still refuses */
    mn_admission_plan(&a, &k, NOW, 0, 10, 0);
    a.value[0] = 999;
    assert_int_equal(mn_admission_refused(&a), -1);
    a.value[0] = 1000;
    assert_int_equal(mn_admission_refused(&a), 0);

    /* settle: the real cost replaces the reservation */
    mn_admission_plan(&a, &k, NOW, 0, 10, 400);
    assert_int_equal(mn_admission_settle(&a, 9, 123, ops), 1);
    assert_int_equal(ops[0].delta, 123 - 400);
    assert_int_equal(mn_admission_settle(&a, 9, 400, ops), 0);
}

static void test_settle_streams_tokens(void **state)
{
    mn_admission a;
    mn_client_key k = key("s", 0, 100, 0, MN_BUDGET_NONE, 3);
    mn_counter_op ops[MN_ADMISSION_MAX_OPS];
    mn_admission_plan(&a, &k, NOW, 1, 60, 0);
    assert_int_equal(mn_admission_settle(&a, 75, 0, ops), 2);
    assert_string_equal(ops[0].key, a.ops[0].key);
    assert_int_equal(ops[0].delta, 15);
    assert_string_equal(ops[1].key, "maniac:streams:s");
    assert_int_equal(ops[1].delta, -1);
}

static void test_estimates(void **state)
{
    json_t *b = mn_t_json("{\"model\":\"x\",\"max_tokens\":50,\"messages\":["
                          "{\"role\":\"user\",\"content\":\"12345678\"},"
                          "{\"role\":\"user\",\"content\":[{\"type\":\"text\",\"text\":\"abcd\"},"
                          "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:...\"}}]}]}");
    /* 12 bytes of text = 3 tokens, + 4 per message */
    assert_int_equal(mn_estimate_prompt_tokens(b), 11);
    assert_int_equal(mn_estimate_output_tokens(b, 1024), 50);
    json_object_set_new(b, "max_completion_tokens", json_integer(70));
    assert_int_equal(mn_estimate_output_tokens(b, 1024), 70);
    json_object_del(b, "max_completion_tokens");
    json_object_del(b, "max_tokens");
    assert_int_equal(mn_estimate_output_tokens(b, 1024), 1024);
    json_decref(b);
}

static void test_counters_parse(void **state)
{
    mn_counters_spec s;
    const char *a1[] = { "redis://127.0.0.1:6379", "fail-closed" };
    const char *a2[] = { "memcache://cache.example:11211" };
    const char *a3[] = { "shm" };
    const char *bad1[] = { "redis://host" };
    const char *bad2[] = { "shm", "fail-sometimes" };
    const char *bad3[] = { "mysql://h:1" };
    const char *bad4[] = { "redis://h:70000" };
    assert_null(mn_counters_parse(*state, 2, a1, &s));
    assert_int_equal(s.kind, MN_COUNTERS_REDIS);
    assert_string_equal(s.host, "127.0.0.1");
    assert_int_equal(s.port, 6379);
    assert_int_equal(s.fail_closed, 1);
    assert_null(mn_counters_parse(*state, 1, a2, &s));
    assert_int_equal(s.kind, MN_COUNTERS_MEMCACHE);
    assert_string_equal(s.host, "cache.example");
    assert_int_equal(s.fail_closed, 0);
    assert_null(mn_counters_parse(*state, 1, a3, &s));
    assert_int_equal(s.kind, MN_COUNTERS_SHM);
    assert_non_null(mn_counters_parse(*state, 1, bad1, &s));
    assert_non_null(mn_counters_parse(*state, 2, bad2, &s));
    assert_non_null(mn_counters_parse(*state, 1, bad3, &s));
    assert_non_null(mn_counters_parse(*state, 1, bad4, &s));
}

static void op(mn_counter_op *o, const char *k, int64_t d, int ttl)
{
    apr_snprintf(o->key, sizeof(o->key), "%s", k);
    o->delta = d;
    o->ttl = ttl;
}

static void test_shm_store(void **state)
{
    apr_pool_t *p = *state;
    unsigned slots = 128;
    void *mem = apr_palloc(p, mn_counters_shm_size(slots));
    mn_counters *c;
    mn_counter_op ops[2];
    int64_t v[2];
    const char *why = NULL;
    apr_time_t now = apr_time_from_sec(1000);
    int i;

    assert_int_equal(mn_counters_shm_init(mem, slots), 0);
    c = mn_counters_shm(p, mem);
    op(&ops[0], "a", 1, 60);
    op(&ops[1], "b", 5000000000LL, 60);
    assert_int_equal(mn_counters_add(c, ops, 2, v, now, &why), 0);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 5000000000LL);
    assert_int_equal(mn_counters_add(c, ops, 2, v, now, &why), 0);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 10000000000LL);   /* 64-bit: no wrap at 2^32 */
    /* expired: starts again from 0 */
    assert_int_equal(mn_counters_add(c, ops, 1, v, now + apr_time_from_sec(61), &why), 0);
    assert_int_equal(v[0], 1);
    /* taking back from a counter that is gone creates nothing */
    op(&ops[0], "gone", -3, 60);
    assert_int_equal(mn_counters_add(c, ops, 1, v, now, &why), 0);
    assert_int_equal(v[0], 0);
    /* a full table answers "unavailable", it does not overwrite live counters */
    for (i = 0; i < 200; i++) {
        char k[32];
        apr_snprintf(k, sizeof(k), "fill-%d", i);
        op(&ops[0], k, 1, 600);
        if (mn_counters_add(c, ops, 1, v, now, &why)) {
            break;
        }
    }
    assert_true(i >= 100 && i < 200);
    assert_string_equal(why, "the shared-memory counter table is full");
    /* and backs off: the next call fails at once */
    op(&ops[0], "b", 1, 60);
    assert_int_equal(mn_counters_add(c, ops, 1, v, now, &why), -1);
    assert_int_equal(mn_counters_add(c, ops, 1, v, now + apr_time_from_sec(2), &why), 0);
    assert_int_equal(v[0], 10000000001LL);
}

typedef struct {
    mn_counters *c;
    int n;
} hammer_arg;

static void *hammer(void *arg)
{
    hammer_arg *h = arg;
    mn_counter_op o;
    int64_t v;
    const char *why;
    int i;
    op(&o, "shared", 1, 600);
    for (i = 0; i < h->n; i++) {
        mn_counters_add(h->c, &o, 1, &v, apr_time_from_sec(1000), &why);
    }
    return NULL;
}

/* Concurrent adds lose nothing (the lock is process-shared; threads prove
 * the same exclusion). */
static void test_shm_concurrent(void **state)
{
    apr_pool_t *p = *state;
    void *mem = apr_palloc(p, mn_counters_shm_size(64));
    hammer_arg h;
    pthread_t th[4];
    mn_counter_op o;
    int64_t v;
    const char *why;
    int i;

    assert_int_equal(mn_counters_shm_init(mem, 64), 0);
    h.c = mn_counters_shm(p, mem);
    h.n = mn_t_quick() ? 2000 : 20000;
    for (i = 0; i < 4; i++) {
        pthread_create(&th[i], NULL, hammer, &h);
    }
    for (i = 0; i < 4; i++) {
        pthread_join(th[i], NULL);
    }
    op(&o, "shared", 0, 600);
    assert_int_equal(mn_counters_add(h.c, &o, 1, &v, apr_time_from_sec(1000), &why), 0);
    assert_int_equal(v, 4 * h.n);
}

/* The hot-path cost of one admission + settlement on the shm store. */
static void test_shm_bench(void **state)
{
    apr_pool_t *p = *state;
    void *mem = apr_palloc(p, mn_counters_shm_size(65536));
    mn_counters *c;
    mn_client_key k = key("bench", 1000000000, 1000000000, INT64_C(1) << 60, MN_BUDGET_DAY,
                          1000000);
    int i, n = mn_t_quick() ? 1000 : 200000;
    apr_time_t t0, t1;
    const char *why;

    assert_int_equal(mn_counters_shm_init(mem, 65536), 0);
    c = mn_counters_shm(p, mem);
    t0 = apr_time_now();
    for (i = 0; i < n; i++) {
        mn_admission a;
        mn_counter_op ops[MN_ADMISSION_MAX_OPS];
        mn_admission_plan(&a, &k, t0, 1, 100, 10);
        assert_int_equal(mn_counters_add(c, a.ops, a.n, a.value, t0, &why), 0);
        assert_int_equal(mn_admission_refused(&a), -1);
        mn_counters_add(c, ops, mn_admission_settle(&a, 90, 9, ops), NULL, t0, &why);
    }
    t1 = apr_time_now();
    print_message("shm admission + settle (4 counters): %.3f us per request\n",
                  (double)(t1 - t0) / n);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(test_price_lines), T(test_price_line_errors), T(test_decimal), T(test_litellm),
        T(test_cost_saturates), T(test_duration), T(test_plan_windows),
        T(test_refuse_and_headers), T(test_budget), T(test_settle_streams_tokens),
        T(test_estimates), T(test_counters_parse), T(test_shm_store), T(test_shm_concurrent),
        T(test_shm_bench),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
