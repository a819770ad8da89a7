/* The differential check shared by t/unit/test_jscan.c and
 * t/fuzz/fuzz_jscan.c: the same bytes to json_loadb(…, 0, …) (the gateway's
 * flags) and to mn_jscan, which must agree on accept/reject and, for every
 * path below, on the value found there. */
#ifndef MN_JSCAN_DIFF_H
#define MN_JSCAN_DIFF_H

#include <stdio.h>
#include <string.h>
#include <jansson.h>
#include "mn_jscan.h"

static const char *const mn_jd_paths[] = {
    "choices", "choices[0].delta.content", "choices[0].delta.tool_calls",
    "choices[0].finish_reason", "choices[0].delta.*", "usage", "error", "provider", "*",
    "delta.text", "delta.partial_json", "type", "index",
    "candidates[0].content.parts[0].text", "candidates[0].content.parts[1].text",
    "candidates[0].content.parts[*]", "a", "a.b", "a.b.c", "a[0]", "a[1].b", "[0]", "[1]",
    "[0].a", "[*]", "[0][0][0][0][0][0][0][0]", "a.a.a.a.a.a.a.a", "\xc3\xa9", "x.*",
};
#define MN_JD_NPATHS (sizeof(mn_jd_paths) / sizeof(mn_jd_paths[0]))

/* The value Jansson's tree has at path (NULL: none); for a wildcard path
 * the container it counts. */
static json_t *mn_jd_walk(json_t *root, const mn_jpath *pa, int *wild)
{
    json_t *v = root;
    int i;
    *wild = 0;
    for (i = 0; i < pa->nseg && v; i++) {
        if (pa->seg[i].index == -1) {
            *wild = 1;
            if ((pa->seg[i].key != NULL) != json_is_object(v)
                || (pa->seg[i].key == NULL) != json_is_array(v)) {
                return NULL;
            }
            return v;
        }
        if (pa->seg[i].key) {
            v = json_is_object(v) ? json_object_getn(v, pa->seg[i].key, pa->seg[i].klen) : NULL;
        }
        else {
            v = json_is_array(v) ? json_array_get(v, (size_t)pa->seg[i].index) : NULL;
        }
    }
    return v;
}

static int mn_jd_type_ok(json_t *v, mn_jtype t)
{
    switch (json_typeof(v)) {
    case JSON_OBJECT: return t == MN_JT_OBJECT;
    case JSON_ARRAY: return t == MN_JT_ARRAY;
    case JSON_STRING: return t == MN_JT_STRING;
    case JSON_INTEGER:
    case JSON_REAL: return t == MN_JT_NUMBER;
    case JSON_TRUE: return t == MN_JT_TRUE;
    case JSON_FALSE: return t == MN_JT_FALSE;
    case JSON_NULL: return t == MN_JT_NULL;
    }
    return 0;
}

/* mn_jscan_memo must give what mn_jscan gives, span for span. */
static int mn_jd_memo_same(const char *buf, size_t len, const mn_jpath *paths, unsigned n,
                           mn_jmemo *memo, char *why, size_t wlen)
{
    mn_jspan a[MN_JD_NPATHS], b[MN_JD_NPATHS];
    int ra = mn_jscan(buf, len, paths, n, a), rb = mn_jscan_memo(buf, len, paths, n, b, memo);
    unsigned i;
    if (ra != rb) {
        snprintf(why, wlen, "memo: jscan %d, memo %d (head %zu of %zu)", ra, rb, memo->len, len);
        return -1;
    }
    for (i = 0; !ra && i < n; i++) {
        if (a[i].p != b[i].p || a[i].len != b[i].len || a[i].key != b[i].key
            || a[i].type != b[i].type || a[i].count != b[i].count) {
            snprintf(why, wlen, "memo: path %u differs (head %zu of %zu)", i, memo->len, len);
            return -1;
        }
    }
    return 0;
}

/* The memo on buf: kept from the texts before (a head they share), then
 * buf's own head against buf, its prefixes and buf with a byte changed
 * after the head. */
static int mn_jd_memo(const char *buf, size_t len, const mn_jpath *paths, char *why, size_t wlen)
{
    static mn_jmemo memo;
    static char copy[4096];
    size_t k, head;

    if (mn_jd_memo_same(buf, len, paths, MN_JD_NPATHS, &memo, why, wlen)
        || mn_jd_memo_same(buf, len, paths, MN_JD_NPATHS, &memo, why, wlen)) {
        return -1;
    }
    head = memo.len;
    if (!head || len <= head || len > sizeof(copy) || memcmp(buf, memo.head, head)) {
        return 0;
    }
    for (k = head + 1; k < len; k += 1 + (len - head) / 8) {
        memcpy(copy, buf, len);
        if (mn_jd_memo_same(copy, k, paths, MN_JD_NPATHS, &memo, why, wlen)) {
            return -1;
        }
        copy[k] = (char)(copy[k] ^ (k & 1 ? '"' : 0x20));
        if (mn_jd_memo_same(copy, len, paths, MN_JD_NPATHS, &memo, why, wlen)) {
            return -1;
        }
    }
    return 0;
}

/* 0 when both agree; otherwise -1 with why. */
static int mn_jscan_diff(const char *buf, size_t len, char *why, size_t wlen)
{
    static mn_jpath paths[MN_JD_NPATHS];
    static int compiled;
    mn_jspan spans[MN_JD_NPATHS];
    json_error_t jerr;
    json_t *root;
    int rc, bad = 0;
    size_t i;

    if (!compiled) {
        for (i = 0; i < MN_JD_NPATHS; i++) {
            if (mn_jpath_compile(&paths[i], mn_jd_paths[i])) {
                snprintf(why, wlen, "path %s does not compile", mn_jd_paths[i]);
                return -1;
            }
        }
        compiled = 1;
    }
    root = json_loadb(buf, len, 0, &jerr);
    rc = mn_jscan(buf, len, paths, (unsigned)MN_JD_NPATHS, spans);
    if ((root != NULL) != (rc == 0)) {
        snprintf(why, wlen, "jansson %s (%s), jscan %s", root ? "accepts" : "rejects",
                 root ? "" : jerr.text, rc ? "rejects" : "accepts");
        json_decref(root);
        return -1;
    }
    for (i = 0; root && i < MN_JD_NPATHS && !bad; i++) {
        int wild;
        json_t *v = mn_jd_walk(root, &paths[i], &wild);
        const mn_jspan *s = &spans[i];
        if (wild) {
            size_t n = !v ? 0 : json_is_array(v) ? json_array_size(v) : json_object_size(v);
            /* duplicate keys count each time in the scanner, once in the tree */
            if (json_is_array(v) ? s->count != n : (s->count < n || (!n) != (!s->count))) {
                snprintf(why, wlen, "%s: count %u, tree has %zu", mn_jd_paths[i], s->count, n);
                bad = 1;
            }
            continue;
        }
        if (!v) {
            if (s->type != MN_JT_NONE) {
                snprintf(why, wlen, "%s: span found, tree has none", mn_jd_paths[i]);
                bad = 1;
            }
            continue;
        }
        if (s->type == MN_JT_NONE || !mn_jd_type_ok(v, s->type) || !s->count) {
            snprintf(why, wlen, "%s: type %d count %u, tree has type %d", mn_jd_paths[i],
                     (int)s->type, s->count, (int)json_typeof(v));
            bad = 1;
            continue;
        }
        {
            json_t *sv = json_loadb(s->p, s->len, JSON_DECODE_ANY, NULL);
            if (!sv || !json_equal(sv, v)) {
                snprintf(why, wlen, "%s: span '%.*s' differs from the tree", mn_jd_paths[i],
                         (int)(s->len > 60 ? 60 : s->len), s->p);
                bad = 1;
            }
            json_decref(sv);
        }
    }
    json_decref(root);
    if (!bad && mn_jd_memo(buf, len, paths, why, wlen)) {
        bad = 1;
    }
    return bad ? -1 : 0;
}

#endif
