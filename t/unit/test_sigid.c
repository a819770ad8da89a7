/* Unit tests for src/wire/sigid.c: Gemini thought signatures in tool-call ids. */
#include "harness.h"
#include <apr_strings.h>
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

static int url_safe(const char *s)
{
    for (; *s; s++) {
        if (!((*s >= 'A' && *s <= 'Z') || (*s >= 'a' && *s <= 'z') || (*s >= '0' && *s <= '9')
              || *s == '-' || *s == '_')) {
            return 0;
        }
    }
    return 1;
}

static void round_trip(const char *call, size_t clen, const char *sig, size_t slen)
{
    const char *c2, *s2;
    size_t c2len, s2len;
    char *id = mn_sigid_encode(pool, call, clen, sig, slen);
    assert_memory_equal(id, MN_SIGID_PREFIX, MN_SIGID_PREFIX_LEN);
    assert_true(url_safe(id));
    assert_int_equal(mn_sigid_decode(pool, id, strlen(id), &c2, &c2len, &s2, &s2len), MN_SIGID_OK);
    assert_int_equal(c2len, clen);
    assert_int_equal(s2len, slen);
    if (clen) {
        assert_memory_equal(c2, call, clen);
    }
    assert_memory_equal(s2, sig, slen);
    assert_int_equal(s2[slen], '\0');
    assert_int_equal(c2[clen], '\0');
    {
        size_t plen;
        const char *plain = mn_sigid_plain(pool, id, strlen(id), &plen);
        assert_int_equal(plen, clen);
        assert_memory_equal(plain, call, clen);
    }
}

static void test_round_trip_typical(void **state)
{
    const char *sig = "CiQBjz1rX4m2c6N0Wf+/9u8Q7kz0aw==";
    round_trip("call_Tm5JaK_vM9aB1sQPz8yQ8Ag_0", 30, sig, strlen(sig));
    /* base64 padding lengths 0, 1, 2 for the payload */
    round_trip("a", 1, "s", 1);
    round_trip("ab", 2, "s", 1);
    round_trip("abc", 3, "s", 1);
    round_trip("", 0, "sig", 3);
}

/* The same bytes as t/integration/lib/agent-mocks.mjs encodeSigId (written
 * apart, from the format in mn_sigid.h). */
static void test_known_answer(void **state)
{
    const char *sig = "CiQBjz1rX4m2c6N0Wf+/9u8Q7kz0aw==";
    assert_string_equal(mn_sigid_encode(pool, "call_Tm5JaK_vM9aB1sQPz8yQ8Ag_0", 30, sig, strlen(sig)),
                        "gsig1_HmNhbGxfVG01SmFLX3ZNOWFCMXNRUHo4eVE4QWdfMENpUUJqejFyWDRtMmM2TjBX"
                        "ZisvOXU4UTdrejBhdz09RKSxEg");
}

static void test_round_trip_any_bytes(void **state)
{
    char call[256], sig[256];
    int i;
    for (i = 0; i < 256; i++) {
        call[i] = (char)i;
        sig[i] = (char)(255 - i);
    }
    round_trip(call, sizeof(call), sig, sizeof(sig));
    round_trip("id with spaces/and+slashes=\xc3\xa9", 30, "\0\0\1", 3);
}

static void test_round_trip_long_signature(void **state)
{
    size_t n = 64 * 1024, i;
    char *sig = apr_palloc(pool, n);
    char *id;
    for (i = 0; i < n; i++) {
        sig[i] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"[(i * 7) % 64];
    }
    round_trip("call_0", 6, sig, n);
    id = mn_sigid_encode(pool, "call_0", 6, sig, n);
    /* 4/3 of varint + id + signature + check, rounded up */
    assert_int_equal(strlen(id), MN_SIGID_PREFIX_LEN + ((1 + 6 + n + 4) * 4 + 2) / 3);
    /* a call id long enough for a two-byte varint */
    {
        char *call = apr_palloc(pool, 300);
        memset(call, 'c', 300);
        round_trip(call, 300, "x", 1);
    }
}

static void test_no_signature_is_plain(void **state)
{
    const char *c, *s;
    size_t cl, sl;
    char *id = mn_sigid_encode(pool, "call_x_1", 8, NULL, 0);
    assert_string_equal(id, "call_x_1");
    assert_int_equal(mn_sigid_decode(pool, id, 8, &c, &cl, &s, &sl), MN_SIGID_PLAIN);
    assert_ptr_equal(c, id);
    assert_int_equal(cl, 8);
    assert_null(s);
    assert_int_equal(sl, 0);
    assert_string_equal(mn_sigid_plain(pool, "toolu_01A", 9, NULL), "toolu_01A");
    /* shorter than the prefix */
    assert_int_equal(mn_sigid_decode(pool, "gsig", 4, &c, &cl, &s, &sl), MN_SIGID_PLAIN);
}

/* Gemini signs only the first of parallel calls: the others keep plain ids. */
static void test_parallel_only_first_signed(void **state)
{
    const char *ids[3];
    const char *c, *s;
    size_t cl, sl;
    ids[0] = mn_sigid_encode(pool, "call_r_0", 8, "SIG0", 4);
    ids[1] = mn_sigid_encode(pool, "call_r_1", 8, "", 0);
    ids[2] = mn_sigid_encode(pool, "call_r_2", 8, NULL, 0);
    assert_int_equal(mn_sigid_decode(pool, ids[0], strlen(ids[0]), &c, &cl, &s, &sl), MN_SIGID_OK);
    assert_string_equal(c, "call_r_0");
    assert_string_equal(s, "SIG0");
    assert_int_equal(mn_sigid_decode(pool, ids[1], strlen(ids[1]), &c, &cl, &s, &sl), MN_SIGID_PLAIN);
    assert_string_equal(c, "call_r_1");
    assert_int_equal(mn_sigid_decode(pool, ids[2], strlen(ids[2]), &c, &cl, &s, &sl), MN_SIGID_PLAIN);
    assert_string_equal(c, "call_r_2");
}

static void assert_broken(const char *id, size_t len)
{
    const char *c, *s;
    size_t cl, sl, pl;
    const char *plain;
    assert_int_equal(mn_sigid_decode(pool, id, len, &c, &cl, &s, &sl), MN_SIGID_BROKEN);
    assert_ptr_equal(c, id);
    assert_int_equal(cl, len);
    assert_null(s);
    assert_int_equal(sl, 0);
    plain = mn_sigid_plain(pool, id, len, &pl);
    assert_int_equal(pl, 5 + 24);
    assert_memory_equal(plain, "call_", 5);
    assert_true(url_safe(plain));
    /* deterministic: the tool message's copy maps to the same id */
    assert_string_equal(plain, mn_sigid_plain(pool, apr_pstrmemdup(pool, id, len), len, NULL));
}

static void test_truncated_and_edited(void **state)
{
    const char *sig = "CiQBjz1rX4m2c6N0Wf+/9u8Q7kz0aw==";
    char *id = mn_sigid_encode(pool, "call_abc_0", 10, sig, strlen(sig));
    size_t n = strlen(id), cut;
    char *e;
    /* every truncation that keeps the prefix */
    for (cut = MN_SIGID_PREFIX_LEN; cut < n; cut++) {
        assert_broken(id, cut);
    }
    /* every single-character edit after the prefix */
    e = apr_pstrdup(pool, id);
    for (cut = MN_SIGID_PREFIX_LEN; cut < n; cut++) {
        char was = e[cut];
        e[cut] = was == 'A' ? 'B' : 'A';
        assert_broken(e, n);
        e[cut] = was;
    }
    /* characters outside the alphabet, padding, an appended character */
    assert_broken("gsig1_abc=", 10);
    assert_broken("gsig1_ab.c", 10);
    assert_broken(apr_pstrcat(pool, id, "A", NULL), n + 1);
    assert_broken(apr_pstrcat(pool, id, "==", NULL), n + 2);
    assert_broken("gsig1_", 6);
    /* a well-formed payload whose varint claims more than there is */
    {
        char *forged = mn_sigid_encode(pool, "c", 1, "s", 1);
        forged[MN_SIGID_PREFIX_LEN] = 'B';
        assert_broken(forged, strlen(forged));
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip_typical),
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_round_trip_any_bytes),
        cmocka_unit_test(test_round_trip_long_signature),
        cmocka_unit_test(test_no_signature_is_plain),
        cmocka_unit_test(test_parallel_only_first_signed),
        cmocka_unit_test(test_truncated_and_edited),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, setup, teardown);
}
