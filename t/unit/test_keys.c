/* Unit tests for src/core/keys.c: key file lines, options, globs, lookup. */
#include "harness.h"
#include "mn_keys.h"

#define H1 "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08"
#define H2 "60303ae22b998861bce3b28f33eec1be758a213c86c93c076dbe9f558c11c752"

static int setup_pool(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown_pool(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

static mn_client_key *parse_ok(apr_pool_t *p, const char *line)
{
    mn_client_key *k = NULL;
    const char *err = mn_key_parse_line(p, line, &k);
    if (err) {
        fail_msg("'%s': unexpected error: %s", line, err);
    }
    assert_non_null(k);
    return k;
}

static void parse_err(apr_pool_t *p, const char *line, const char *want)
{
    mn_client_key *k = NULL;
    const char *err = mn_key_parse_line(p, line, &k);
    if (!err) {
        fail_msg("'%s': accepted, want error containing '%s'", line, want);
    }
    if (!strstr(err, want)) {
        fail_msg("'%s': error '%s' does not contain '%s'", line, err, want);
    }
    assert_null(k);
}

static void test_line_minimal(void **state)
{
    mn_client_key *k = parse_ok(*state, "team-a " H1);
    assert_string_equal(k->name, "team-a");
    assert_string_equal(k->sha256_hex, H1);
    assert_null(k->models);
    assert_null(k->tags);
    assert_int_equal(k->rpm, 0);
    assert_int_equal(k->tpm, 0);
    assert_int_equal(k->budget_micro_usd, 0);
    assert_int_equal(k->budget_period, MN_BUDGET_NONE);
    assert_int_equal(k->max_streams, 0);
    assert_int_equal(k->expires, 0);
}

static void test_line_all_options(void **state)
{
    mn_client_key *k = parse_ok(*state,
        "  bot_1@ci.example\t9F86D081884C7D659A2FEAA0C55AD015A3BF4F1B2B0B822CD15D6C15B0F00A08 "
        "models=openai/gpt-4o*,fast rpm=60 tpm=100000 budget=25.5/day max-streams=4 "
        "expires=2027-01-31 tags=ci,nightly\r");
    apr_time_exp_t tm;
    assert_string_equal(k->name, "bot_1@ci.example");
    assert_string_equal(k->sha256_hex, H1);   /* lower-cased */
    assert_int_equal(k->models->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(k->models, 0, const char *), "openai/gpt-4o*");
    assert_string_equal(APR_ARRAY_IDX(k->models, 1, const char *), "fast");
    assert_int_equal(k->rpm, 60);
    assert_int_equal(k->tpm, 100000);
    assert_int_equal(k->budget_micro_usd, 25500000);
    assert_int_equal(k->budget_period, MN_BUDGET_DAY);
    assert_int_equal(k->max_streams, 4);
    assert_int_equal(apr_time_exp_gmt(&tm, k->expires), APR_SUCCESS);
    assert_int_equal(tm.tm_year, 127);
    assert_int_equal(tm.tm_mon, 0);
    assert_int_equal(tm.tm_mday, 31);
    assert_int_equal(tm.tm_hour, 0);
    assert_int_equal(tm.tm_min, 0);
    assert_int_equal(k->tags->nelts, 2);
    assert_string_equal(APR_ARRAY_IDX(k->tags, 0, const char *), "ci");
    assert_string_equal(APR_ARRAY_IDX(k->tags, 1, const char *), "nightly");
}

static void test_line_budget_forms(void **state)
{
    assert_int_equal(parse_ok(*state, "a " H1 " budget=300/month")->budget_micro_usd, 300000000);
    assert_int_equal(parse_ok(*state, "a " H1 " budget=300/month")->budget_period,
                     MN_BUDGET_MONTH);
    assert_int_equal(parse_ok(*state, "a " H1 " budget=0.000001/day")->budget_micro_usd, 1);
    assert_int_equal(parse_ok(*state, "a " H1 " budget=9223372036853.999999/day")->budget_micro_usd,
                     INT64_C(9223372036853999999));
    parse_err(*state, "a " H1 " budget=0/day", "budget");
    parse_err(*state, "a " H1 " budget=1.0000001/day", "budget");
    parse_err(*state, "a " H1 " budget=9223372036854/day", "budget");
    parse_err(*state, "a " H1 " budget=5/week", "period must be day or month");
    parse_err(*state, "a " H1 " budget=5", "budget");
    parse_err(*state, "a " H1 " budget=-5/day", "budget");
    parse_err(*state, "a " H1 " budget=5./day", "budget");
    parse_err(*state, "a " H1 " budget=.5/day", "budget");
    parse_err(*state, "a " H1 " budget=$5/day", "budget");
}

static void test_line_blank_and_comment(void **state)
{
    mn_client_key *k = (mn_client_key *)1;
    assert_null(mn_key_parse_line(*state, "", &k));
    assert_null(k);
    k = (mn_client_key *)1;
    assert_null(mn_key_parse_line(*state, "   \t\r", &k));
    assert_null(k);
    k = (mn_client_key *)1;
    assert_null(mn_key_parse_line(*state, "  # team-a " H1, &k));
    assert_null(k);
}

static void test_line_errors(void **state)
{
    parse_err(*state, "team-a", "no SHA-256 after the name");
    parse_err(*state, "team-a abc", "64 hex digits");
    parse_err(*state, "team-a " H1 "0", "64 hex digits");
    parse_err(*state, "team-a 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a0g",
              "64 hex digits");
    parse_err(*state, "team/a " H1, "key name 'team/a'");
    parse_err(*state, "team-a " H1 " rpm=0", "rpm: expected a whole number > 0");
    parse_err(*state, "team-a " H1 " rpm=5x", "rpm");
    parse_err(*state, "team-a " H1 " rpm=-1", "rpm");
    parse_err(*state, "team-a " H1 " rpm=99999999999999999999", "rpm");
    parse_err(*state, "team-a " H1 " tpm=", "tpm");
    parse_err(*state, "team-a " H1 " max-streams=two", "max-streams");
    parse_err(*state, "team-a " H1 " rpm=1 rpm=2", "option rpm given twice");
    parse_err(*state, "team-a " H1 " colour=blue", "unknown option 'colour'");
    parse_err(*state, "team-a " H1 " rpm", "options are name=value");
    parse_err(*state, "team-a " H1 " =5", "options are name=value");
    parse_err(*state, "team-a " H1 " models=", "models: expected a comma-separated list");
    parse_err(*state, "team-a " H1 " models=a,,b", "models");
    parse_err(*state, "team-a " H1 " tags=a,", "tags");
    parse_err(*state, "team-a " H1 " tags=,a", "tags");
    parse_err(*state, "team-a " H1 " expires=2026-02-31", "expires: not a valid date");
    parse_err(*state, "team-a " H1 " expires=2026-13-01", "expires: not a valid date");
    parse_err(*state, "team-a " H1 " expires=26-01-01", "expires: expected a date");
    parse_err(*state, "team-a " H1 " expires=2026-01-01x", "expires: expected a date");
    parse_err(*state, "team-a " H1 " expires=2026/01/01", "expires: expected a date");
}

static void test_options_alone(void **state)
{
    /* an SQL row's options column: NULL, empty, blanks, or key-file options */
    mn_client_key k;
    memset(&k, 0, sizeof(k));
    assert_null(mn_key_parse_options(*state, NULL, &k));
    assert_null(mn_key_parse_options(*state, "", &k));
    assert_null(mn_key_parse_options(*state, "  \t ", &k));
    assert_null(k.models);
    assert_null(mn_key_parse_options(*state, "models=a/* tpm=9", &k));
    assert_int_equal(k.tpm, 9);
    assert_string_equal(APR_ARRAY_IDX(k.models, 0, const char *), "a/*");
    assert_non_null(mn_key_parse_options(*state, "tpm=9 tpm=10", &k));
}

static void test_expiry(void **state)
{
    mn_client_key *k = parse_ok(*state, "a " H1 " expires=2026-03-01");
    apr_time_t day;
    apr_time_exp_t tm;
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = 126;
    tm.tm_mon = 2;
    tm.tm_mday = 1;
    assert_int_equal(apr_time_exp_gmt_get(&day, &tm), APR_SUCCESS);
    assert_false(mn_key_expired(k, day - 1));
    assert_true(mn_key_expired(k, day));
    assert_false(mn_key_expired(parse_ok(*state, "a " H1), day));
}

static void test_glob(void **state)
{
    assert_true(mn_glob_match("*", ""));
    assert_true(mn_glob_match("*", "openai/gpt-4o"));
    assert_true(mn_glob_match("openai/*", "openai/gpt-4o"));
    assert_true(mn_glob_match("openai/*", "openai/"));
    assert_false(mn_glob_match("openai/*", "openai"));
    assert_false(mn_glob_match("openai/*", "anthropic/claude"));
    assert_true(mn_glob_match("together/meta-llama/*", "together/meta-llama/Llama-3-70b"));
    assert_true(mn_glob_match("*/gpt-4o-mini", "up/gpt-4o-mini"));
    assert_false(mn_glob_match("*/gpt-4o-mini", "up/gpt-4o"));
    assert_true(mn_glob_match("gpt-?o", "gpt-4o"));
    assert_false(mn_glob_match("gpt-?o", "gpt-4.1o"));
    assert_true(mn_glob_match("a*b*c", "aXXbYYbZc"));
    assert_false(mn_glob_match("a*b*c", "aXXbYYbZ"));
    assert_true(mn_glob_match("fast", "fast"));
    assert_false(mn_glob_match("fast", "faster"));
    assert_false(mn_glob_match("Fast", "fast"));
    assert_true(mn_glob_match("**x", "x"));
}

static void test_model_allowed(void **state)
{
    mn_client_key *k = parse_ok(*state, "a " H1 " models=up/gpt-4o*,fast");
    assert_true(mn_key_model_allowed(k, "up/gpt-4o"));
    assert_true(mn_key_model_allowed(k, "up/gpt-4o-mini"));
    assert_true(mn_key_model_allowed(k, "fast"));
    assert_false(mn_key_model_allowed(k, "up/o1"));
    assert_false(mn_key_model_allowed(k, "echo/demo"));
    assert_true(mn_key_model_allowed(parse_ok(*state, "a " H1), "anything/at-all"));
    assert_true(mn_key_model_allowed(NULL, "anything/at-all"));
}

static void test_table(void **state)
{
    mn_key_table *t = NULL;
    const mn_client_key *k;
    const char *err = mn_key_table_load(*state, "keys.txt",
        "# the team keys\n"
        "\n"
        "team-a " H1 " tags=a\n"
        "team-b " H2 " rpm=5", &t);
    assert_null(err);
    assert_int_equal(mn_key_table_count(t), 2);
    k = mn_key_table_find(t, H1);
    assert_non_null(k);
    assert_string_equal(k->name, "team-a");
    k = mn_key_table_find(t, H2);
    assert_non_null(k);
    assert_string_equal(k->name, "team-b");
    assert_int_equal(k->rpm, 5);
    /* same 16-digit prefix, different hash: not found */
    assert_null(mn_key_table_find(t, "9f86d081884c7d65" "0000000000000000000000000000000000000000000000000"));
    assert_null(mn_key_table_find(t, "short"));
    assert_null(mn_key_table_find(NULL, H1));
}

static void test_table_same_name_rotation(void **state)
{
    mn_key_table *t = NULL;
    assert_null(mn_key_table_load(*state, "k", "team-a " H1 "\nteam-a " H2 "\n", &t));
    assert_string_equal(mn_key_table_find(t, H1)->name, "team-a");
    assert_string_equal(mn_key_table_find(t, H2)->name, "team-a");
}

static void test_table_errors_name_file_and_line(void **state)
{
    mn_key_table *t = NULL;
    const char *err = mn_key_table_load(*state, "/etc/maniac.keys",
        "# comment\nteam-a " H1 "\n\nteam-b " H2 " rpm=fast\n", &t);
    assert_non_null(err);
    assert_string_equal(err, "/etc/maniac.keys:4: key team-b: rpm: expected a whole number > 0");
    err = mn_key_table_load(*state, "k", "team-a " H1 "\nteam-b " H1 "\n", &t);
    assert_string_equal(err, "k:2: key team-b: the same hash as key team-a");
    err = mn_key_table_load(*state, "k", "team-a\n", &t);
    assert_string_equal(err, "k:1: key team-a: no SHA-256 after the name");
}

static void test_ct_equal_and_hex(void **state)
{
    unsigned char b[32];
    char hex[65];
    int i;
    for (i = 0; i < 32; i++) {
        b[i] = (unsigned char)(i * 8 + 1);
    }
    mn_hex32(b, hex);
    assert_string_equal(hex, "0109111921293139414951596169717981899199a1a9b1b9c1c9d1d9e1e9f1f9");
    assert_true(mn_ct_equal("abc", "abc", 3));
    assert_false(mn_ct_equal("abc", "abd", 3));
    assert_false(mn_ct_equal("xbc", "abc", 3));
    assert_true(mn_ct_equal("", "", 0));
}

static void test_copy(void **state)
{
    apr_pool_t *sub;
    mn_client_key *c;
    apr_pool_create(&sub, *state);
    {
        mn_client_key *k = parse_ok(sub, "a " H1 " models=x/*,y tags=t1,t2 rpm=3");
        c = mn_key_copy(*state, k);
    }
    apr_pool_destroy(sub);     /* the copy must not point into it (ASan) */
    assert_string_equal(c->name, "a");
    assert_string_equal(c->sha256_hex, H1);
    assert_int_equal(c->rpm, 3);
    assert_string_equal(APR_ARRAY_IDX(c->models, 1, const char *), "y");
    assert_string_equal(APR_ARRAY_IDX(c->tags, 0, const char *), "t1");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_line_minimal, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_line_all_options, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_line_budget_forms, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_line_blank_and_comment, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_line_errors, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_options_alone, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_expiry, setup_pool, teardown_pool),
        cmocka_unit_test(test_glob),
        cmocka_unit_test_setup_teardown(test_model_allowed, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_table, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_table_same_name_rotation, setup_pool, teardown_pool),
        cmocka_unit_test_setup_teardown(test_table_errors_name_file_and_line, setup_pool,
                                        teardown_pool),
        cmocka_unit_test(test_ct_equal_and_hex),
        cmocka_unit_test_setup_teardown(test_copy, setup_pool, teardown_pool),
    };
    apr_initialize();
    atexit(apr_terminate);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
