/* mn_jdump against Jansson: the same bytes as json_dumps / json_dumpb for
 * every fixture (whole files and each SSE data payload), edge values, and
 * generated trees; Jansson's answer wherever Jansson fails. */
#include <dirent.h>
#include <limits.h>
#include <sys/stat.h>
#include "harness.h"
#include "mn_jdump.h"

static int checked;

static void expect_same(const json_t *v, size_t flags, const char *what)
{
    char *want = json_dumps(v, flags), *got;
    size_t glen = 12345, n, wn;
    char small[16], small_want[16];

    got = mn_json_dumps(v, flags, &glen);
    if (!want) {
        if (got) {
            fail_msg("%s: Jansson fails, mn_json_dumps gives %s", what, got);
        }
    }
    else {
        if (!got) {
            fail_msg("%s: mn_json_dumps fails, Jansson gives %s", what, want);
        }
        if (strcmp(want, got) || glen != strlen(want)) {
            fail_msg("%s:\n jansson %s\n mn      %s", what, want, got);
        }
    }
    /* the dumpb form: the length, and the text when it fits (past the end
     * json_dumpb leaves the buffer undefined) */
    memset(small, 'x', sizeof(small));
    memset(small_want, 'x', sizeof(small_want));
    n = mn_json_dumpb(v, small, sizeof(small), flags);
    wn = json_dumpb(v, small_want, sizeof(small_want), flags);
    assert_int_equal(n, wn);
    if (n <= sizeof(small)) {
        assert_memory_equal(small, small_want, n);
    }
    free(want);
    free(got);
    checked++;
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void check_text(const char *buf, size_t len, const char *what)
{
    json_t *v = json_loadb(buf, len, 0, NULL);
    if (v) {
        expect_same(v, JSON_COMPACT, what);
        expect_same(v, JSON_COMPACT | JSON_ENCODE_ANY, what);
        expect_same(v, 0, what);           /* not ours: handed to Jansson */
        json_decref(v);
    }
}

static void sse_payloads(const char *buf, size_t n, const char *path)
{
    const char *p = buf, *end = buf + n;
    while (p < end) {
        const char *nl = memchr(p, '\n', (size_t)(end - p));
        const char *le = nl ? nl : end;
        if (le - p > 6 && !memcmp(p, "data: ", 6)) {
            check_text(p + 6, (size_t)(le - p - 6), path);
        }
        p = le + 1;
    }
}

static void walk(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *de;
    assert_non_null(d);
    while ((de = readdir(d))) {
        char path[1024];
        struct stat sb;
        if (de->d_name[0] == '.') {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, de->d_name);
        if (stat(path, &sb)) {
            continue;
        }
        if (S_ISDIR(sb.st_mode)) {
            walk(path);
        }
        else if (has_suffix(path, ".json") || has_suffix(path, ".sse")) {
            size_t n;
            char *buf = mn_t_fixture(path + strlen(MN_FIXTURES) + 1, &n);
            if (has_suffix(path, ".sse")) {
                sse_payloads(buf, n, path);
            }
            else {
                check_text(buf, n, path);
            }
            free(buf);
        }
    }
    closedir(d);
}

static void test_fixtures(void **state)
{
    (void)state;
    checked = 0;
    walk(MN_FIXTURES);
    assert_true(checked > 300);
}

static void test_edges(void **state)
{
    static const char *const texts[] = {
        "{}", "[]", "[[]]", "{\"\":{}}", "[null,true,false]", "[0,-1,1,9223372036854775807]",
        "[-9223372036854775808]", "[0.5,1e300,-2.5e-300,1.0,100000000000000000000.0,1e-7]",
        "[123456789.125,0.1,3.0e5,-0.0]", "[\"\\u0000\"]", "[\"\\u001f\\u0001\\b\\f\\n\\r\\t\"]",
        "[\"a\\\"b\\\\c/d\"]", "[\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"]",
        "[\"\\ud83d\\ude00 \xc3\xa9\xe2\x82\xac\xf0\x9f\x98\x80\"]", "{\"k\\n\\u0001\":1}", "[\"a\\u0000b\"]",
        "{\"b\":1,\"a\":2,\"b\":3}", "[{\"a\":[{\"b\":[]}]},{}]",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        json_error_t e;
        json_t *v = json_loads(texts[i], JSON_ALLOW_NUL, &e);
        if (!v) {
            fail_msg("%s: %s", texts[i], e.text);
        }
        expect_same(v, JSON_COMPACT, texts[i]);
        json_decref(v);
    }
}

/* Scalars need JSON_ENCODE_ANY, as in Jansson; NULL fails. */
static void test_scalars(void **state)
{
    json_t *vals[] = { json_string("x\"y"), json_integer(-42), json_real(2.5), json_true(),
                       json_null(), json_real(1e22), json_real(-1.5e-10) };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(vals) / sizeof(vals[0]); i++) {
        expect_same(vals[i], JSON_COMPACT, "scalar");
        expect_same(vals[i], JSON_ENCODE_ANY, "scalar any");
        expect_same(vals[i], JSON_COMPACT | JSON_ENCODE_ANY, "scalar compact any");
        json_decref(vals[i]);
    }
    assert_null(mn_json_dumps(NULL, JSON_COMPACT, NULL));
    assert_int_equal(mn_json_dumpb(NULL, NULL, 0, JSON_COMPACT), 0);
}

/* A string made without the UTF-8 check: Jansson refuses to write it, and
 * so do we (its answer, not a guess). */
static void test_invalid_utf8(void **state)
{
    static const char *const bad[] = { "\xff", "a\xc0\x80", "\xed\xa0\x80", "\xe2\x82",
                                       "\xf4\x90\x80\x80", "\xe0\x80\xaf", "ok\x80" };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        json_t *o = json_object();
        json_object_set_new(o, "s", json_string_nocheck(bad[i]));
        expect_same(o, JSON_COMPACT, bad[i]);
        assert_null(mn_json_dumps(o, JSON_COMPACT, NULL));
        json_decref(o);
    }
}

/* Deeper than MN_JDUMP_MAX_DEPTH: Jansson's answer as well. */
static void test_deep(void **state)
{
    json_t *top = json_array(), *cur = top;
    int i;
    (void)state;
    for (i = 0; i < MN_JDUMP_MAX_DEPTH + 10; i++) {
        json_t *next = json_array();
        json_array_append_new(cur, next);
        cur = next;
    }
    expect_same(top, JSON_COMPACT, "deep");
    json_decref(top);
}

/* Generated trees: random bytes in strings and keys (valid UTF-8 or not),
 * numbers at the edges, nesting, and more than the 2048-byte first pass. */
static unsigned long rng = 12345;
static unsigned rnd(unsigned n)
{
    rng = rng * 6364136223846793005UL + 1442695040888963407UL;
    return (unsigned)((rng >> 33) % n);
}

static json_t *gen_string(void)
{
    static const char *const pieces[] = { "a", "\"", "\\", "/", "\n", "\x01", "\x1f", "\x7f",
                                          "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", " ",
                                          "\xc3", "\t", "\r", "\b", "\f", "word" };
    char buf[256];
    size_t len = 0, n = rnd(12), i;
    for (i = 0; i < n; i++) {
        const char *p = pieces[rnd(sizeof(pieces) / sizeof(pieces[0]))];
        size_t pl = strlen(p);
        memcpy(buf + len, p, pl);
        len += pl;
    }
    buf[len] = '\0';
    if (rnd(4) == 0) {
        buf[rnd((unsigned)len + 1)] = '\0';     /* an embedded NUL (length kept) */
        return json_stringn_nocheck(buf, len);
    }
    return json_stringn_nocheck(buf, len);
}

static json_t *gen(int depth)
{
    unsigned k = rnd(depth > 4 ? 6 : 9);
    switch (k) {
    case 0: return json_null();
    case 1: return rnd(2) ? json_true() : json_false();
    case 2: {
        static const json_int_t ints[] = { 0, 1, -1, 42, LLONG_MAX, LLONG_MIN, 1000000007 };
        return json_integer(rnd(2) ? ints[rnd(7)] : (json_int_t)rnd(1000000) - 500000);
    }
    case 3: {
        static const double reals[] = { 0.7, 1.0, -0.0, 1e-300, 123456.789, 2.5e15, 1e17 };
        if (rnd(2)) {
            /* any magnitude, either sign: exponents with and without zeros */
            double v = (double)rnd(1000000) / (1 + rnd(999));
            int e = (int)rnd(80) - 40;
            while (e > 0) {
                v *= 10, e--;
            }
            while (e < 0) {
                v /= 10, e++;
            }
            return json_real(rnd(2) ? v : -v);
        }
        return json_real(reals[rnd(7)]);
    }
    case 4: case 5: return gen_string();
    case 6: case 7: {
        json_t *a = json_array();
        unsigned n = rnd(6), i;
        for (i = 0; i < n; i++) {
            json_array_append_new(a, gen(depth + 1));
        }
        return a;
    }
    default: {
        json_t *o = json_object();
        unsigned n = rnd(6), i;
        for (i = 0; i < n; i++) {
            json_t *key = gen_string();
            json_object_setn_new_nocheck(o, json_string_value(key), json_string_length(key),
                                         gen(depth + 1));
            json_decref(key);
        }
        return o;
    }
    }
}

static void test_generated(void **state)
{
    int i, n = mn_t_quick() ? 300 : 5000;
    (void)state;
    checked = 0;
    for (i = 0; i < n; i++) {
        json_t *top = json_array();
        int j, m = 1 + (int)rnd(i % 10 == 0 ? 60 : 4);
        for (j = 0; j < m; j++) {
            json_array_append_new(top, gen(0));
        }
        expect_same(top, JSON_COMPACT, "generated");
        json_decref(top);
    }
    assert_int_equal(checked, n);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_scalars),
        cmocka_unit_test(test_invalid_utf8),
        cmocka_unit_test(test_deep),
        cmocka_unit_test(test_generated),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
