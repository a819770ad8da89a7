/* mn_jscan against Jansson: every fixture (whole files and each SSE data
 * payload), the edge cases its header lists, and mutated fixtures must get
 * the same accept/reject and the same values at every path. */
#define _POSIX_C_SOURCE 200809L
#include <dirent.h>
#include <sys/stat.h>
#include "harness.h"
#include "mn_jscan.h"
#include "jscan_diff.h"

static long checked;

static void expect_same(const char *buf, size_t len, const char *label)
{
    char why[256];
    if (mn_jscan_diff(buf, len, why, sizeof(why))) {
        fail_msg("%s: %s (input %zu bytes: '%.*s')", label, why, len,
                 (int)(len > 80 ? 80 : len), buf);
    }
    checked++;
}

/* Every data: payload of an SSE file (multi-line data joined with \n). */
static void sse_payloads(const char *buf, size_t len, const char *label)
{
    mn_buf data;
    const char *p = buf, *e = buf + len;
    mn_buf_init(&data);
    while (p < e) {
        const char *nl = memchr(p, '\n', (size_t)(e - p));
        const char *le = nl ? nl : e;
        size_t ll = (size_t)(le - p);
        if (ll && p[ll - 1] == '\r') {
            ll--;
        }
        if (ll == 0 && data.len) {
            expect_same(data.data, data.len, label);
            data.len = 0;
        }
        else if (ll >= 5 && !memcmp(p, "data:", 5)) {
            size_t off = (ll > 5 && p[5] == ' ') ? 6 : 5;
            if (data.len) {
                mn_buf_append(&data, "\n", 1);
            }
            mn_buf_append(&data, p + off, ll - off);
            /* each line alone too */
            expect_same(p + off, ll - off, label);
        }
        p = nl ? nl + 1 : e;
    }
    if (data.len) {
        expect_same(data.data, data.len, label);
    }
    mn_buf_free(&data);
}

static unsigned long rng = 88172645463325252UL;
static unsigned long next_rand(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return rng;
}

static const char special[] = { '\0', '"', '\\', '{', '}', '[', ']', ',', ':', '0', '-', 'e',
                                '.', ' ', 'u', (char)0xC3, (char)0xA9, (char)0xED, 'n', 't' };

/* Mutants of one JSON text: flipped, inserted and deleted bytes, cuts. */
static void mutate(const char *buf, size_t len, const char *label, int rounds)
{
    char *m = malloc(len + 8);
    int r;
    for (r = 0; r < rounds && len; r++) {
        size_t at = next_rand() % len, mlen = len;
        memcpy(m, buf, len);
        switch (next_rand() % 4) {
        case 0:
            m[at] = special[next_rand() % sizeof(special)];
            break;
        case 1:
            memmove(m + at + 1, m + at, len - at);
            m[at] = special[next_rand() % sizeof(special)];
            mlen++;
            break;
        case 2:
            memmove(m + at, m + at + 1, len - at - 1);
            mlen--;
            break;
        default:
            mlen = at;
            break;
        }
        expect_same(m, mlen, label);
    }
    free(m);
}

static int has_suffix(const char *s, const char *suf)
{
    size_t a = strlen(s), b = strlen(suf);
    return a >= b && !strcmp(s + a - b, suf);
}

static void walk(const char *dir, int rounds)
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
            walk(path, rounds);
        }
        else if (has_suffix(path, ".json") || has_suffix(path, ".sse")) {
            FILE *f = fopen(path, "rb");
            char *buf = malloc((size_t)sb.st_size + 1);
            size_t n = fread(buf, 1, (size_t)sb.st_size, f);
            fclose(f);
            expect_same(buf, n, path);
            if (has_suffix(path, ".sse")) {
                sse_payloads(buf, n, path);
            }
            else {
                mutate(buf, n, path, rounds);
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
    walk(MN_FIXTURES, mn_t_quick() ? 20 : 400);
    assert_true(checked > 200);
}

#define SAME(lit) expect_same(lit, sizeof(lit) - 1, lit)

static void test_edges(void **state)
{
    (void)state;
    /* top level, trailing bytes */
    SAME(""); SAME(" "); SAME("{}"); SAME("[]"); SAME(" {} \r\n\t"); SAME("1"); SAME("\"a\"");
    SAME("true"); SAME("null"); SAME("{}x"); SAME("{}{}"); SAME("[],"); SAME("{}\0");
    SAME("\0{}"); SAME("{\"a\":1,}"); SAME("[1,]"); SAME("[,1]"); SAME("{,}"); SAME("{\"a\"}");
    SAME("{\"a\" 1}"); SAME("{1:2}"); SAME("[1 2]"); SAME("{\"a\":1 \"b\":2}");
    /* the lexer's lost look-ahead NUL */
    SAME("[1\0]"); SAME("[1\0\0]"); SAME("[1 \0]"); SAME("[\0 1]"); SAME("[true\0]");
    SAME("[false\0,null\0]"); SAME("{\"a\":1\0}"); SAME("{\"a\":\"b\"\0}"); SAME("[1.5\0]");
    SAME("[1e5\0 ]"); SAME("[-\0]"); SAME("[0\0]"); SAME("[\"a\0\"]"); SAME("[1]\0");
    SAME("[[]\0]"); SAME("[{}\0]"); SAME("{\"a\"\0:1}"); SAME("{\"a\":\0 1}");
    /* literals */
    SAME("[truex]"); SAME("[tru]"); SAME("[True]"); SAME("[nulll]"); SAME("[true1]");
    SAME("[fals]"); SAME("[true,false,null]");
    /* integers */
    SAME("[9223372036854775807]"); SAME("[9223372036854775808]");
    SAME("[-9223372036854775808]"); SAME("[-9223372036854775809]");
    SAME("[10000000000000000000]"); SAME("[99999999999999999999999]"); SAME("[00]");
    SAME("[-0]"); SAME("[-]"); SAME("[+1]"); SAME("[01]"); SAME("[-01]"); SAME("[0x1]");
    /* reals */
    SAME("[1.]"); SAME("[.5]"); SAME("[1e]"); SAME("[1e+]"); SAME("[1E-2]"); SAME("[1.5e+3]");
    SAME("[1e400]"); SAME("[-1e400]"); SAME("[1e308]"); SAME("[1e309]"); SAME("[1e-400]");
    SAME("[1.7976931348623157e308]"); SAME("[1.7976931348623158e308]");
    SAME("[1.7976931348623159e308]"); SAME("[1.797693134862315807937e308]");
    SAME("[1.797693134862315807936e308]"); SAME("[0.1797693134862315807937e309]");
    SAME("[179769313486231580793.7e288]"); SAME("[0e99999999999999999999]");
    SAME("[0.000e400]"); SAME("[1e-99999999999999999999]"); SAME("[10e307]"); SAME("[100e306]");
    SAME("[0.00001e313]"); SAME("[0.0000000000000000000000000000000000000001e348]");
    /* strings */
    SAME("[\"\\u0000\"]"); SAME("{\"\\u0000\":1}"); SAME("[\"\\u0001\"]"); SAME("[\"\x01\"]");
    SAME("[\"\x1f\"]"); SAME("[\"\x7f\"]"); SAME("[\"\t\"]"); SAME("[\"\\ud800\"]");
    SAME("[\"\\udc00\"]"); SAME("[\"\\ud800\\u0041\"]"); SAME("[\"\\ud83d\\ude00\"]");
    SAME("[\"\\uD83D\\uDE00\"]"); SAME("[\"\\ud83d\\ud83d\"]"); SAME("[\"\\ud800x\"]");
    SAME("[\"\\u12\"]"); SAME("[\"\\u12g4\"]"); SAME("[\"\\x\"]"); SAME("[\"\\'\"]");
    SAME("[\"\\/\\b\\f\\n\\r\\t\\\"\\\\\"]"); SAME("[\"abc]"); SAME("[\"\\\"]");
    SAME("{\"\\u0070rovider\":1,\"provider\":2}");
    /* empty keys, where paths are looked for (fuzz: the key signature read
     * before the key) */
    SAME("{\"\":1}"); SAME("{\"a\":{\"\":2},\"\":[]}"); SAME("{\"choices\":[{\"\":{}}]}");
    /* UTF-8 */
    SAME("[\"\xc3\xa9\"]"); SAME("[\"\xc0\x80\"]"); SAME("[\"\xc1\xbf\"]"); SAME("[\"\xed\xa0\x80\"]");
    SAME("[\"\xf4\x90\x80\x80\"]"); SAME("[\"\xf4\x8f\xbf\xbf\"]"); SAME("[\"\xc3\"]");
    SAME("[\"\xe2\x82\"]"); SAME("[\"\xf0\x9f\x98\x80\"]"); SAME("[\"\xe0\x9f\xbf\"]");
    SAME("[\"\xf0\x8f\xbf\xbf\"]"); SAME("[\"\xff\"]"); SAME("[\"\x80\"]"); SAME("[\xc3\xa9]");
    SAME("[1\xc3\xa9]"); SAME("{\"\xc3\xa9\":[1]}"); SAME("[1\xff]");
    /* duplicates: the last one wins */
    SAME("{\"a\":{\"b\":1},\"a\":{\"c\":2}}"); SAME("{\"a\":{\"b\":1},\"a\":5}");
    SAME("{\"a\":1,\"a\":2}"); SAME("{\"x\":{\"p\":1,\"q\":2},\"x\":{\"r\":3}}");
    SAME("{\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"choices\":[{\"delta\":{}}]}");
    SAME("{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}");
    SAME("{\"x\":{\"p\":1,\"p\":2}}");
    SAME("[[[[[[[[[1]]]]]]]]]"); SAME("{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":{\"a\":7}}}}}}}}");
}

static void nest(char *buf, int n, const char *inner)
{
    int i;
    size_t k = 0, il = strlen(inner);
    for (i = 0; i < n; i++) {
        buf[k++] = '[';
    }
    memcpy(buf + k, inner, il);
    k += il;
    for (i = 0; i < n; i++) {
        buf[k++] = ']';
    }
    buf[k] = '\0';
}

static void test_depth(void **state)
{
    static char buf[3 * MN_JSON_MAX_DEPTH + 64];
    int n;
    (void)state;
    for (n = MN_JSON_MAX_DEPTH - 2; n <= MN_JSON_MAX_DEPTH + 1; n++) {
        nest(buf, n, "");
        expect_same(buf, strlen(buf), "depth []");
        nest(buf, n, "1");
        expect_same(buf, strlen(buf), "depth [1]");
        nest(buf, n, "{\"a\":1}");
        expect_same(buf, strlen(buf), "depth [{a:1}]");
    }
    /* the limit really is where Jansson puts it */
    nest(buf, MN_JSON_MAX_DEPTH, "");
    assert_int_equal(mn_jscan(buf, strlen(buf), NULL, 0, NULL), 0);
    nest(buf, MN_JSON_MAX_DEPTH, "1");
    assert_int_equal(mn_jscan(buf, strlen(buf), NULL, 0, NULL), -1);
}

/* Long mantissas around the largest double. */
static void test_real_boundary(void **state)
{
    static const char *heads[] = { "1797693134862315708", "1797693134862315807937",
                                   "1797693134862315807936", "17976931348623158079372897140530341507993413271003782693617377898044496829276475094664143",
                                   "9999999999999999999999", "1000000000000000000000" };
    char buf[1200];
    size_t h;
    int tail, ex;
    (void)state;
    for (h = 0; h < sizeof(heads) / sizeof(heads[0]); h++) {
        for (tail = 0; tail < 3; tail++) {
            for (ex = 285; ex <= 290; ex++) {
                size_t n = strlen(heads[h]), k = 0;
                buf[k++] = '[';
                memcpy(buf + k, heads[h], n);
                k += n;
                if (tail == 1) {
                    memset(buf + k, '0', 800);
                    k += 800;
                    buf[k++] = '1';
                }
                else if (tail == 2) {
                    buf[k++] = '.';
                    memset(buf + k, '9', 50);
                    k += 50;
                }
                k += (size_t)sprintf(buf + k, "e%d]", ex - (tail == 1 ? 801 : 0));
                expect_same(buf, k, "real boundary");
            }
        }
    }
}

static void test_spans(void **state)
{
    static const char chunk[] =
        "{\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi \\\"x\\\"\"},"
        "\"finish_reason\":null}],\"usage\":null,\"\\u0070rovider\":\"up\"}";
    mn_jpath p[4];
    mn_jspan s[4];
    (void)state;
    assert_int_equal(mn_jpath_compile(&p[0], "choices[0].delta.content"), 0);
    assert_int_equal(mn_jpath_compile(&p[1], "usage"), 0);
    assert_int_equal(mn_jpath_compile(&p[2], "provider"), 0);
    assert_int_equal(mn_jpath_compile(&p[3], "*"), 0);
    assert_int_equal(mn_jscan(chunk, sizeof(chunk) - 1, p, 4, s), 0);
    assert_int_equal(s[0].type, MN_JT_STRING);
    assert_int_equal(s[0].len, 10);
    assert_memory_equal(s[0].p, "\"Hi \\\"x\\\"\"", 10);
    assert_int_equal(s[1].type, MN_JT_NULL);
    assert_memory_equal(s[1].p, "null", 4);
    assert_memory_equal(s[1].key, "\"usage\":null", 12);
    assert_memory_equal(s[0].key, "\"content\":", 10);
    assert_int_equal(s[2].type, MN_JT_STRING);
    assert_memory_equal(s[2].p, "\"up\"", 4);
    assert_int_equal(s[3].count, 4);
    assert_int_equal(mn_jpath_compile(&p[0], "a.*.b"), -1);
    assert_int_equal(mn_jpath_compile(&p[0], "a..b"), -1);
    assert_int_equal(mn_jpath_compile(&p[0], "a[x]"), -1);
    assert_int_equal(mn_jpath_compile(&p[0], ""), -1);
}

/* The constant initialisers make what mn_jpath_compile makes of the text. */
static void expect_path(const mn_jpath *c, const char *text)
{
    mn_jpath p;
    int i;
    assert_int_equal(mn_jpath_compile(&p, text), 0);
    assert_int_equal(c->nseg, p.nseg);
    for (i = 0; i < p.nseg; i++) {
        assert_int_equal(c->seg[i].index, p.seg[i].index);
        assert_int_equal(c->seg[i].klen, p.seg[i].klen);
        assert_int_equal(c->seg[i].key == NULL, p.seg[i].key == NULL);
        if (p.seg[i].key) {
            assert_memory_equal(c->seg[i].key, p.seg[i].key, p.seg[i].klen);
        }
    }
}

static void test_const_paths(void **state)
{
    static const mn_jpath c[] = {
        MN_JPATH(MN_JK("usage")),
        MN_JPATH(MN_JALL),
        MN_JPATH(MN_JEACH),
        MN_JPATH(MN_JI(0), MN_JK("index")),
        MN_JPATH(MN_JK("choices"), MN_JEACH),
        MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("delta"), MN_JK("content")),
        MN_JPATH(MN_JK("delta"), MN_JALL),
        MN_JPATH(MN_JK("c"), MN_JI(12), MN_JK("p"), MN_JI(0), MN_JALL),
        MN_JPATH(MN_JK("a"), MN_JK("b"), MN_JK("c"), MN_JK("d"), MN_JK("e"), MN_JK("f"),
                 MN_JK("g"), MN_JEACH),
    };
    static const char *const text[] = {
        "usage", "*", "[*]", "[0].index", "choices[*]", "choices[0].delta.content",
        "delta.*", "c[12].p[0].*", "a.b.c.d.e.f.g[*]"
    };
    static const char chunk[] = "{\"choices\":[{\"delta\":{\"content\":\"x\"}}]}";
    mn_jspan s[2];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(text) / sizeof(text[0]); i++) {
        expect_path(&c[i], text[i]);
    }
    assert_int_equal(mn_jscan(chunk, sizeof(chunk) - 1, &c[4], 2, s), 0);
    assert_int_equal(s[0].count, 1);
    assert_int_equal(s[1].type, MN_JT_STRING);
    assert_memory_equal(s[1].p, "\"x\"", 3);
}

/* A stream's chunks: the head is walked once, then found again; spans in
 * it and after it are those of mn_jscan, also for a chunk that repeats a
 * head key later, has a bad tail or another head. */
static void test_memo(void **state)
{
    static const mn_jpath p[] = {
        MN_JPATH(MN_JK("usage")), MN_JPATH(MN_JK("id")), MN_JPATH(MN_JALL),
        MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("delta"), MN_JK("content")),
    };
    static const char *const chunks[] = {
        "{\"id\":\"c1\",\"n\":1,\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}",
        "{\"id\":\"c1\",\"n\":1,\"choices\":[{\"delta\":{\"content\":\"bc\"}}]}",
        "{\"id\":\"c1\",\"n\":1,\"choices\":[],\"id\":\"c2\"}",
        "{\"id\":\"c1\",\"n\":1,\"choices\":[}",
        "{\"id\":\"c1\",\"n\":1,\"choices\":[],\"usage\":{\"x\":1}}",
        "{\"id\":\"c3\",\"n\":1,\"choices\":[]}",
        "{\"id\":\"c3\",\"n\":1,\"choices\":[{\"delta\":{\"content\":\"d\"}}]}",
    };
    static mn_jmemo memo;
    char why[256];
    size_t i;
    (void)state;
    for (i = 0; i < sizeof(chunks) / sizeof(chunks[0]); i++) {
        unsigned long hits = memo.hits;
        mn_jspan a[4], b[4];
        int ra = mn_jscan(chunks[i], strlen(chunks[i]), p, 4, a);
        int rb = mn_jscan_memo(chunks[i], strlen(chunks[i]), p, 4, b, &memo);
        assert_int_equal(ra, rb);
        assert_int_equal(memo.hits, hits + (i != 0 && i != 5));
        assert_int_equal(memo.len, strlen("{\"id\":\"c1\",\"n\":1,"));
        if (!ra) {
            assert_memory_equal(a, b, sizeof(a));
        }
        assert_int_equal(mn_jd_memo_same(chunks[i], strlen(chunks[i]), p, 4, &memo, why,
                                         sizeof(why)), 0);
    }
    assert_int_equal(memo.misses, 2);
    assert_memory_equal(memo.head, "{\"id\":\"c3\",", 11);
}

/* Random texts from a small alphabet of JSON pieces. */
static void test_generated(void **state)
{
    static const char *pieces[] = { "{", "}", "[", "]", ",", ":", "\"a\"", "\"choices\"",
                                    "\"delta\"", "\"content\"", "\"usage\"", "1", "-0", "1e400",
                                    "0.5", "true", "null", " ", "\0", "\"\\u0000\"",
                                    "\"\\ud800\"", "\"\xc3\xa9\"", "9223372036854775808", "\"*\"" };
    static const size_t plen[] = { 1, 1, 1, 1, 1, 1, 3, 9, 7, 9, 7, 1, 2, 5, 3, 4, 4, 1, 1, 8,
                                   8, 4, 19, 3 };
    char buf[512];
    int r, n = mn_t_quick() ? 2000 : 60000;
    (void)state;
    for (r = 0; r < n; r++) {
        size_t k = 0;
        int parts = 1 + (int)(next_rand() % 24), i;
        for (i = 0; i < parts; i++) {
            size_t w = next_rand() % (sizeof(plen) / sizeof(plen[0]));
            memcpy(buf + k, pieces[w], plen[w]);
            k += plen[w];
        }
        expect_same(buf, k, "generated");
    }
}

/* The word-at-a-time string scan: one special byte (or sequence) at every
 * offset 0..16 of a string, so at each byte of an 8-byte word and across
 * word boundaries, with 0..16 plain bytes after it, in a value and in a
 * key; and each text cut short near its end, where the scan goes byte by
 * byte and a UTF-8 sequence or an escape may be truncated. */
static const char *const word_specials[] = {
    "\"", "\\\"", "\\\\", "\\n", "\\/", "\\u00e9", "\\u0000", "\\ud83d\\ude00",
    "\\ud83d", "\\ude00", "\\x", "\\", "\\u12", "\x01", "\x1f", "\t", "\n", "\x7f",
    " ", "!", "#", "[", "]", "\xc3\xa9", "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\xc3",
    "\xe2\x82", "\xf0\x9f\x98", "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xe0\x9f\xbf",
    "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xf5\x80\x80\x80", "\xff", "\xfe",
    "\xc3\xa9\xc3\xa9\xc3\xa9", "\"\"", "a\\\"b\\\\", "\xc3\xa9\\n\x01",
};

static void word_case(const char *head, const char *sp, size_t splen, int pre, int post,
                      const char *tail)
{
    char buf[128];
    size_t k = 0, hl = strlen(head), tl = strlen(tail), cut;

    memcpy(buf, head, hl);
    k = hl;
    memset(buf + k, 'a', (size_t)pre);
    k += (size_t)pre;
    memcpy(buf + k, sp, splen);
    k += splen;
    memset(buf + k, 'b', (size_t)post);
    k += (size_t)post;
    memcpy(buf + k, tail, tl);
    k += tl;
    expect_same(buf, k, "word offsets");
    for (cut = k > 12 ? k - 12 : 0; cut < k; cut++) {
        expect_same(buf, cut, "word offsets, cut");
    }
}

static void test_word_offsets(void **state)
{
    static const char nul[] = "\0";
    size_t w;
    int pre, post;
    (void)state;
    checked = 0;
    for (w = 0; w <= sizeof(word_specials) / sizeof(word_specials[0]); w++) {
        const char *sp = w < sizeof(word_specials) / sizeof(word_specials[0]) ? word_specials[w]
                                                                              : nul;
        size_t splen = w < sizeof(word_specials) / sizeof(word_specials[0]) ? strlen(sp) : 1;
        for (pre = 0; pre <= 16; pre++) {
            for (post = 0; post <= 16; post += mn_t_quick() && post > 1 && post < 15 ? 6 : 1) {
                word_case("[\"", sp, splen, pre, post, "\"]");
                word_case("{\"", sp, splen, pre, post, "\":{\"a\":[1]}}");
                word_case("{\"choices\":[{\"delta\":{\"content\":\"", sp, splen, pre, post,
                          "\"}}]}");
            }
        }
    }
    /* every byte value at every offset of a word, alone and before a quote */
    for (w = 0; w < 256; w++) {
        char c = (char)w;
        for (pre = 0; pre <= 16; pre++) {
            word_case("[\"", &c, 1, pre, 16, "\"]");
            word_case("[\"", &c, 1, pre, 0, "\"]");
        }
    }
    assert_true(checked > 100000);
}

/* Whitespace, a NUL and stray bytes at every position of small texts: the
 * steps look for the byte they expect before they skip whitespace. */
static void test_every_gap(void **state)
{
    static const char *const docs[] = {
        "{\"a\":[1,true,{\"b\":null}],\"choices\":[{\"delta\":{\"content\":\"x\"}}]}",
        "[{},[],\"s\",-1.5e3,false,{\"a\":{}}]",
        "{\"usage\":null,\"error\":{\"a\":1},\"provider\":\"p\"}",
    };
    static const char ins[] = { ' ', '\t', '\n', '\r', '\0', 'x', ',', ':', '"', '\\', '}', ']' };
    char buf[256];
    size_t d, at, i;
    (void)state;
    for (d = 0; d < sizeof(docs) / sizeof(docs[0]); d++) {
        size_t n = strlen(docs[d]);
        for (at = 0; at <= n; at++) {
            for (i = 0; i < sizeof(ins); i++) {
                memcpy(buf, docs[d], at);
                buf[at] = ins[i];
                memcpy(buf + at + 1, docs[d] + at, n - at);
                expect_same(buf, n + 1, "every gap");
                buf[at + 1] = ins[i];
                memcpy(buf + at + 2, docs[d] + at, n - at);
                expect_same(buf, n + 2, "every gap, twice");
            }
            expect_same(docs[d], at, "every cut");
        }
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_edges),
        cmocka_unit_test(test_depth),
        cmocka_unit_test(test_real_boundary),
        cmocka_unit_test(test_spans),
        cmocka_unit_test(test_const_paths),
        cmocka_unit_test(test_memo),
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_generated),
        cmocka_unit_test(test_word_offsets),
        cmocka_unit_test(test_every_gap),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
