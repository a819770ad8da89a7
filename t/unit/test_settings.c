/* Unit tests for src/core/settings.c: "unset" sentinels, the merge and the
 * getters' defaults (the server and per-directory configs are built on it). */
#include "harness.h"
#include "mn_settings.h"

static void test_init_all_unset_defaults_apply(void **state)
{
    mn_settings s;
    memset(&s, 0x5a, sizeof(s));
    mn_settings_init(&s);
    assert_int_equal(s.max_body, MN_UNSET);
    assert_int_equal(s.max_response, MN_UNSET);
    assert_int_equal(s.max_event, MN_UNSET);
    assert_int_equal(s.max_schema_expansion, MN_UNSET);
    assert_int_equal(s.overhead_header, MN_UNSET);
    assert_int_equal(s.metrics, MN_UNSET);
    assert_int_equal(mn_settings_max_body(NULL, &s), 32 * 1024 * 1024);
    assert_int_equal(mn_settings_max_body(&s, &s), 32 * 1024 * 1024);
    assert_int_equal(mn_settings_max_body(NULL, NULL), 32 * 1024 * 1024);
    assert_int_equal(mn_settings_max_response(&s), 64 * 1024 * 1024);
    assert_int_equal(mn_settings_max_event(&s), 4 * 1024 * 1024);
    assert_int_equal(mn_settings_schema_expansion(&s), 8);
    assert_int_equal(mn_settings_overhead_header(&s), 0);
    assert_int_equal(mn_settings_metrics(&s), 1);
}

/* add wins where it set a value, base shows through where it did not, and
 * an explicit Off (0) in add is a value, not "unset". */
static void test_merge_add_wins_where_set(void **state)
{
    mn_settings base, add, out;
    mn_settings_init(&base);
    mn_settings_init(&add);
    base.max_body = 100;
    base.max_response = 200;
    base.overhead_header = 1;
    base.metrics = 1;
    add.max_response = 300;
    add.max_event = 400;
    add.overhead_header = 0;
    add.max_schema_expansion = 1000;
    mn_settings_merge(&out, &base, &add);
    assert_int_equal(out.max_body, 100);
    assert_int_equal(out.max_response, 300);
    assert_int_equal(out.max_event, 400);
    assert_int_equal(out.max_schema_expansion, 1000);
    assert_int_equal(out.overhead_header, 0);
    assert_int_equal(out.metrics, 1);
    assert_int_equal(mn_settings_overhead_header(&out), 0);
}

/* Two unset scopes merge to unset: the default is the getter's, never
 * copied in by a merge (else a vhost could not inherit a later main value). */
static void test_merge_unset_stays_unset(void **state)
{
    mn_settings base, add, out;
    mn_settings_init(&base);
    mn_settings_init(&add);
    mn_settings_merge(&out, &base, &add);
    assert_int_equal(out.max_body, MN_UNSET);
    assert_int_equal(out.max_response, MN_UNSET);
    assert_int_equal(out.metrics, MN_UNSET);
    assert_int_equal(mn_settings_max_event(&out), 4 * 1024 * 1024);
}

/* The merge may write over one of its inputs. */
static void test_merge_in_place(void **state)
{
    mn_settings base, add;
    mn_settings_init(&base);
    mn_settings_init(&add);
    base.max_body = 1;
    base.max_event = 2;
    add.max_event = 3;
    mn_settings_merge(&add, &base, &add);
    assert_int_equal(add.max_body, 1);
    assert_int_equal(add.max_event, 3);
    mn_settings_merge(&base, &base, &add);
    assert_int_equal(base.max_event, 3);
}

/* ManiacMaxRequestBody: the <Location>'s value wins over the server's, the
 * server's over the default. */
static void test_max_body_dir_wins(void **state)
{
    mn_settings dir, srv;
    mn_settings_init(&dir);
    mn_settings_init(&srv);
    srv.max_body = 5000;
    assert_int_equal(mn_settings_max_body(&dir, &srv), 5000);
    dir.max_body = 10;
    assert_int_equal(mn_settings_max_body(&dir, &srv), 10);
    dir.max_body = 9000;   /* larger than the server's: still the Location's */
    assert_int_equal(mn_settings_max_body(&dir, &srv), 9000);
    assert_int_equal(mn_settings_max_body(&dir, NULL), 9000);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_init_all_unset_defaults_apply),
        cmocka_unit_test(test_merge_add_wins_where_set),
        cmocka_unit_test(test_merge_unset_stays_unset),
        cmocka_unit_test(test_merge_in_place),
        cmocka_unit_test(test_max_body_dir_wins),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
