/* mn_jscan: see include/mn_jscan.h for what is accepted and why. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "mn_jscan.h"

typedef const unsigned char *cur;

#define IS_WS(c) ((c) == ' ' || (c) == '\t' || (c) == '\n' || (c) == '\r')
#define IS_DIGIT(c) ((c) >= '0' && (c) <= '9')
#define IS_ALPHA(c) (((c) >= 'a' && (c) <= 'z') || ((c) >= 'A' && (c) <= 'Z'))

static cur skip_ws(cur p, cur e)
{
    while (p < e && IS_WS(*p)) {
        p++;
    }
    return p;
}

static int hexval(unsigned c)
{
    if (IS_DIGIT(c)) {
        return (int)c - '0';
    }
    c |= 0x20;
    return c >= 'a' && c <= 'f' ? (int)c - 'a' + 10 : -1;
}

/* The 4 hex digits at p (p + 4 <= e checked by the caller), or -1. */
static long hex4(cur p)
{
    long v = 0;
    int i;
    for (i = 0; i < 4; i++) {
        int h = hexval(p[i]);
        if (h < 0) {
            return -1;
        }
        v = (v << 4) | h;
    }
    return v;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0. */
static size_t utf8_len(cur p, cur e)
{
    unsigned c = p[0];
    size_t n, i;
    unsigned long v;

    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
        v = c & 0x1F;
    }
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        v = c & 0x0F;
    }
    else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        v = c & 0x07;
    }
    else {
        return 0;
    }
    if ((size_t)(e - p) < n) {
        return 0;
    }
    for (i = 1; i < n; i++) {
        if ((p[i] & 0xC0) != 0x80) {
            return 0;
        }
        v = (v << 6) | (p[i] & 0x3F);
    }
    if (v > 0x10FFFF || (v >= 0xD800 && v <= 0xDFFF) || (n == 3 && v < 0x800)
        || (n == 4 && v < 0x10000)) {
        return 0;
    }
    return n;
}

/* A string starting at the quote p: returns the byte after the closing
 * quote, or NULL.  *escaped: a backslash was seen. */
/* Bytes a string scan must stop at: the quote, the backslash, control
 * bytes and the lead of a multi-byte sequence.  Text runs between them cost
 * a table look-up per byte. */
static const unsigned char stop_byte[256] = {
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0,
    0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
    1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1, 1,
};

static cur scan_string(cur p, cur e, int *escaped)
{
    p++;
    *escaped = 0;
    while (p < e) {
        unsigned c;
        while (e - p >= 4 && !stop_byte[p[0]] && !stop_byte[p[1]] && !stop_byte[p[2]]
               && !stop_byte[p[3]]) {
            p += 4;
        }
        while (p < e && !stop_byte[*p]) {
            p++;
        }
        if (p >= e) {
            break;
        }
        c = *p;
        if (c == '"') {
            return p + 1;
        }
        if (c < 0x20) {
            return NULL;
        }
        if (c == '\\') {
            *escaped = 1;
            if (++p >= e) {
                return NULL;
            }
            c = *p;
            if (c == 'u') {
                long v;
                if (e - p < 5 || (v = hex4(p + 1)) < 0) {
                    return NULL;
                }
                p += 5;
                if (v == 0 || (v >= 0xDC00 && v <= 0xDFFF)) {
                    return NULL;
                }
                if (v >= 0xD800 && v <= 0xDBFF) {
                    long lo;
                    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0
                        || lo < 0xDC00 || lo > 0xDFFF) {
                        return NULL;
                    }
                    p += 6;
                }
                continue;
            }
            if (c != '"' && c != '\\' && c != '/' && c != 'b' && c != 'f' && c != 'n'
                && c != 'r' && c != 't') {
                return NULL;
            }
            p++;
            continue;
        }
        if (c < 0x80) {
            p++;
            continue;
        }
        {
            size_t n = utf8_len(p, e);
            if (!n) {
                return NULL;
            }
            p += n;
        }
    }
    return NULL;
}

/* Does a real with these digits overflow a double?  Only the case where the
 * leading digit sits at 10^308 needs strtod; the digits are handed to it in
 * a canonical, bounded form (a sticky 1 stands for cut-off digits). */
#define MN_SIG_DIGITS 780

static int real_overflows(cur ip, size_t ilen, cur fp, size_t flen, long long ex)
{
    char buf[MN_SIG_DIGITS + 32];
    size_t k, total = ilen + flen, n = 0;
    long long lead;
    int sticky = 0;

    for (k = 0; k < total; k++) {
        unsigned char d = k < ilen ? ip[k] : fp[k - ilen];
        if (d != '0') {
            break;
        }
    }
    if (k == total) {
        return 0;
    }
    lead = (long long)ilen - 1 - (long long)k + ex;
    if (lead < 308) {
        return 0;
    }
    if (lead > 308) {
        return 1;
    }
    for (; k < total; k++) {
        unsigned char d = k < ilen ? ip[k] : fp[k - ilen];
        if (n < MN_SIG_DIGITS) {
            buf[n++] = (char)d;
        }
        else if (d != '0') {
            sticky = 1;
        }
    }
    if (sticky) {
        buf[n++] = '1';
    }
    {
        /* value = D * 10^(308 - (n - 1)) */
        char *end;
        double v;
        size_t w = n;
        long long e10 = 308 - ((long long)n - 1);
        buf[w++] = 'e';
        if (e10 < 0) {
            buf[w++] = '-';
            e10 = -e10;
        }
        {
            char tmp[24];
            int t = 0;
            do {
                tmp[t++] = (char)('0' + e10 % 10);
                e10 /= 10;
            } while (e10);
            while (t) {
                buf[w++] = tmp[--t];
            }
        }
        buf[w] = '\0';
        v = strtod(buf, &end);
        return isinf(v);
    }
}

/* A number at p (a digit or '-'): the byte after it, or NULL when Jansson's
 * lexer would not make a number of it or would refuse its value. */
static cur scan_number(cur p, cur e)
{
    int neg = 0;
    cur ip, fp = NULL;
    size_t ilen, flen = 0;
    long long ex = 0;

    if (*p == '-') {
        neg = 1;
        p++;
    }
    ip = p;
    if (p >= e || !IS_DIGIT(*p)) {
        return NULL;
    }
    if (*p == '0') {
        p++;
        if (p < e && IS_DIGIT(*p)) {
            return NULL;
        }
    }
    else {
        while (p < e && IS_DIGIT(*p)) {
            p++;
        }
    }
    ilen = (size_t)(p - ip);
    if (p >= e || (*p != '.' && *p != 'e' && *p != 'E')) {
        /* int64: at most 19 digits, compared with the limit at 19 */
        static const char max[] = "9223372036854775807";
        static const char min[] = "9223372036854775808";
        if (ilen < 19) {
            return p;
        }
        if (ilen > 19) {
            return NULL;
        }
        return memcmp(ip, neg ? min : max, 19) <= 0 ? p : NULL;
    }
    if (*p == '.') {
        p++;
        fp = p;
        if (p >= e || !IS_DIGIT(*p)) {
            return NULL;
        }
        while (p < e && IS_DIGIT(*p)) {
            p++;
        }
        flen = (size_t)(p - fp);
    }
    if (p < e && (*p == 'e' || *p == 'E')) {
        int eneg = 0;
        p++;
        if (p < e && (*p == '+' || *p == '-')) {
            eneg = *p == '-';
            p++;
        }
        if (p >= e || !IS_DIGIT(*p)) {
            return NULL;
        }
        while (p < e && IS_DIGIT(*p)) {
            /* saturate: beyond this any nonzero mantissa is decided */
            if (ex < 1000000000LL) {
                ex = ex * 10 + (*p - '0');
            }
            p++;
        }
        if (eneg) {
            ex = -ex;
        }
    }
    return real_overflows(ip, ilen, fp, flen, ex) ? NULL : p;
}

int mn_jkey_eq(const char *raw, size_t len, const char *name, size_t nlen)
{
    cur p = (cur)raw, e = p + len;
    size_t j = 0;

    while (p < e) {
        unsigned char out[4];
        size_t n = 1, i;
        if (*p != '\\') {
            out[0] = *p++;
        }
        else if (p[1] != 'u') {
            static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
            const char *f = memchr(from, p[1], sizeof(from) - 1);
            out[0] = f ? (unsigned char)to[f - from] : p[1];
            p += 2;
        }
        else {
            unsigned long v = (unsigned long)hex4(p + 2);
            p += 6;
            if (v >= 0xD800 && v <= 0xDBFF) {
                v = 0x10000 + ((v - 0xD800) << 10) + ((unsigned long)hex4(p + 2) - 0xDC00);
                p += 6;
            }
            if (v < 0x80) {
                out[0] = (unsigned char)v;
            }
            else if (v < 0x800) {
                out[0] = (unsigned char)(0xC0 | (v >> 6));
                out[1] = (unsigned char)(0x80 | (v & 0x3F));
                n = 2;
            }
            else if (v < 0x10000) {
                out[0] = (unsigned char)(0xE0 | (v >> 12));
                out[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                out[2] = (unsigned char)(0x80 | (v & 0x3F));
                n = 3;
            }
            else {
                out[0] = (unsigned char)(0xF0 | (v >> 18));
                out[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
                out[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
                out[3] = (unsigned char)(0x80 | (v & 0x3F));
                n = 4;
            }
        }
        for (i = 0; i < n; i++) {
            if (j >= nlen || (unsigned char)name[j++] != out[i]) {
                return 0;
            }
        }
    }
    return j == nlen;
}

int mn_jpath_compile(mn_jpath *path, const char *text)
{
    const char *p = text;
    path->nseg = 0;
    while (*p) {
        int s = path->nseg;
        if (s >= MN_JPATH_MAX_SEGS) {
            return -1;
        }
        if (*p == '[') {
            char *end;
            path->seg[s].key = NULL;
            path->seg[s].klen = 0;
            if (p[1] == '*' && p[2] == ']') {
                path->seg[s].index = -1;
                p += 3;
            }
            else {
                long v = strtol(p + 1, &end, 10);
                if (end == p + 1 || *end != ']' || v < 0) {
                    return -1;
                }
                path->seg[s].index = v;
                p = end + 1;
            }
        }
        else {
            size_t n = strcspn(p, ".[");
            if (!n) {
                return -1;
            }
            path->seg[s].key = p;
            path->seg[s].klen = n;
            path->seg[s].index = (n == 1 && *p == '*') ? -1 : 0;
            p += n;
        }
        path->nseg++;
        if (*p == '.') {
            p++;
            if (!*p || *p == '.' || *p == '[') {
                return -1;
            }
        }
        if (path->seg[s].index == -1 && *p) {
            return -1;   /* a wildcard only at the end */
        }
    }
    return path->nseg ? 0 : -1;
}

/* Per open container, for the levels paths can reach. */
typedef struct {
    uint32_t live;      /* paths whose segments so far lead here, with more to go */
    uint32_t full;      /* paths that end at this container */
    const char *start;
    const char *key;    /* the member's key, when the container is one */
    long idx;           /* next element's index (arrays) */
} level;

typedef struct {
    const mn_jpath *paths;
    mn_jspan *out;
} scan_ctx;

static void record(scan_ctx *sc, uint32_t mask, const char *key, cur start, cur end,
                   mn_jtype t)
{
    while (mask) {
        unsigned i = (unsigned)__builtin_ctz(mask);
        mn_jspan *s = &sc->out[i];
        mask &= mask - 1;
        s->key = key;
        s->p = (const char *)start;
        s->len = (size_t)(end - start);
        s->type = t;
    }
}

/* Paths of `live` (at container level lvl) that the member key / element
 * index selects; those that end there go to *full.  A key met again starts
 * its paths afresh: the last duplicate is the one Jansson keeps. */
static uint32_t select_child(scan_ctx *sc, uint32_t live, int lvl, cur key, size_t klen,
                             int escaped, long idx, uint32_t *full)
{
    uint32_t child = 0, m = live;
    *full = 0;
    while (m) {
        unsigned i = (unsigned)__builtin_ctz(m);
        const mn_jpath *pa = &sc->paths[i];
        m &= m - 1;
        if (pa->seg[lvl].index == -1) {
            if ((pa->seg[lvl].key != NULL) == (key != NULL)) {
                *full |= 1u << i;
                sc->out[i].count++;
            }
            continue;
        }
        if (key) {
            if (!pa->seg[lvl].key
                || (escaped ? !mn_jkey_eq((const char *)key, klen, pa->seg[lvl].key,
                                          pa->seg[lvl].klen)
                            : (klen != pa->seg[lvl].klen
                               || memcmp(key, pa->seg[lvl].key, klen)))) {
                continue;
            }
        }
        else if (pa->seg[lvl].key || pa->seg[lvl].index != idx) {
            continue;
        }
        if (lvl + 1 == pa->nseg) {
            *full |= 1u << i;
            sc->out[i].count++;
        }
        else {
            child |= 1u << i;
            sc->out[i].type = MN_JT_NONE;
            sc->out[i].count = 0;
        }
    }
    return child;
}

#define MAXL (MN_JPATH_MAX_SEGS + 1)

int mn_jscan(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
             mn_jspan *out)
{
    cur p = (cur)buf, e = p + len, start;
    unsigned char is_obj[MN_JSON_MAX_DEPTH / 8 + 1];
    level lv[MAXL + 1];
    size_t depth = 0;
    uint32_t vlive = 0, vfull = 0;
    const char *vkey = NULL;
    scan_ctx sc = { paths, out };
    unsigned i;

    if (npaths > MN_JSCAN_MAX_PATHS) {
        return -1;
    }
    for (i = 0; i < npaths; i++) {
        out[i].p = NULL;
        out[i].key = NULL;
        out[i].len = 0;
        out[i].type = MN_JT_NONE;
        out[i].count = 0;
        if (paths[i].nseg > 0) {
            vlive |= 1u << i;
        }
    }
    p = skip_ws(p, e);
    if (p >= e || (*p != '{' && *p != '[')) {
        return -1;
    }

value:
    /* p: the first byte of a value at level depth + 1 */
    if (depth >= MN_JSON_MAX_DEPTH) {
        return -1;
    }
    start = p;
    if (*p == '{' || *p == '[') {
        int obj = *p == '{';
        depth++;
        if (obj) {
            is_obj[depth >> 3] |= (unsigned char)(1u << (depth & 7));
        }
        else {
            is_obj[depth >> 3] &= (unsigned char)~(1u << (depth & 7));
        }
        if (depth <= MAXL) {
            lv[depth].live = vlive;
            lv[depth].full = vfull;
            lv[depth].start = (const char *)p;
            lv[depth].key = vkey;
            lv[depth].idx = 0;
        }
        p = skip_ws(p + 1, e);
        if (p >= e) {
            return -1;
        }
        if (*p == (obj ? '}' : ']')) {
            p++;
            goto close;
        }
        goto member;
    }
    {
        mn_jtype t;
        cur q;
        int esc;
        switch (*p) {
        case '"':
            q = scan_string(p, e, &esc);
            t = MN_JT_STRING;
            break;
        case 't':
            q = (e - p >= 4 && !memcmp(p, "true", 4)) ? p + 4 : NULL;
            t = MN_JT_TRUE;
            break;
        case 'f':
            q = (e - p >= 5 && !memcmp(p, "false", 5)) ? p + 5 : NULL;
            t = MN_JT_FALSE;
            break;
        case 'n':
            q = (e - p >= 4 && !memcmp(p, "null", 4)) ? p + 4 : NULL;
            t = MN_JT_NULL;
            break;
        default:
            q = (IS_DIGIT(*p) || *p == '-') ? scan_number(p, e) : NULL;
            t = MN_JT_NUMBER;
            break;
        }
        if (!q) {
            return -1;
        }
        if (t != MN_JT_STRING && t != MN_JT_NUMBER && q < e && IS_ALPHA(*q)) {
            return -1;   /* Jansson reads the whole word: "truex" */
        }
        if (vfull) {
            record(&sc, vfull, vkey, start, q, t);
        }
        p = q;
        if (t != MN_JT_STRING && p < e && *p == '\0') {
            p++;   /* the look-ahead NUL Jansson's lexer loses */
        }
    }

after:
    /* a value ended at p, inside the container at level depth */
    p = skip_ws(p, e);
    if (p >= e) {
        return -1;
    }
    {
        int obj = (is_obj[depth >> 3] >> (depth & 7)) & 1;
        if (*p == ',') {
            p = skip_ws(p + 1, e);
            if (p >= e) {
                return -1;
            }
            if (!obj && depth <= MAXL) {
                lv[depth].idx++;
            }
            goto member;
        }
        if (*p != (obj ? '}' : ']')) {
            return -1;
        }
        p++;
    }

close:
    /* the container at level depth ended just before p */
    if (depth <= MAXL && lv[depth].full) {
        record(&sc, lv[depth].full, lv[depth].key, (cur)lv[depth].start, p,
               ((is_obj[depth >> 3] >> (depth & 7)) & 1) ? MN_JT_OBJECT : MN_JT_ARRAY);
    }
    depth--;
    if (depth == 0) {
        p = skip_ws(p, e);
        return p == e ? 0 : -1;
    }
    goto after;

member:
    /* p: the first byte of a member (object) or element (array) */
    vlive = vfull = 0;
    vkey = NULL;
    if ((is_obj[depth >> 3] >> (depth & 7)) & 1) {
        cur key = p, q;
        vkey = (const char *)p;
        int esc;
        if (*p != '"' || !(q = scan_string(p, e, &esc))) {
            return -1;
        }
        if (depth <= MAXL && lv[depth].live) {
            vlive = select_child(&sc, lv[depth].live, (int)depth - 1, key + 1,
                                 (size_t)(q - key - 2), esc, 0, &vfull);
        }
        p = skip_ws(q, e);
        if (p >= e || *p != ':') {
            return -1;
        }
        p = skip_ws(p + 1, e);
        if (p >= e) {
            return -1;
        }
    }
    else if (depth <= MAXL && lv[depth].live) {
        vlive = select_child(&sc, lv[depth].live, (int)depth - 1, NULL, 0, 0, lv[depth].idx,
                             &vfull);
    }
    goto value;
}
