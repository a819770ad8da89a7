/* mn_jpath: the two helpers of mn_jscan that do not walk a text (see
 * include/mn_jscan.h): a member key compared with its escapes decoded, and
 * a path's text compiled into segments.  Both run off the per-frame path
 * (keys with escapes are rare; constant path sets are built by the
 * compiler). */
#include <stdlib.h>
#include <string.h>
#include "mn_jscan.h"

typedef const unsigned char *cur;

/* The four hex digits at p (mn_jscan validated them). */
static unsigned long hex4(cur p)
{
    char h[5];
    memcpy(h, p, 4);
    h[4] = '\0';
    return strtoul(h, NULL, 16);
}

/* ---- keys ----------------------------------------------------------------- */

/* The UTF-8 bytes of code point v into out: their count. */
static size_t utf8_put(unsigned long v, unsigned char *out)
{
    if (v < 0x80) {
        out[0] = (unsigned char)v;
        return 1;
    }
    if (v < 0x800) {
        out[0] = (unsigned char)(0xC0 | (v >> 6));
        out[1] = (unsigned char)(0x80 | (v & 0x3F));
        return 2;
    }
    if (v < 0x10000) {
        out[0] = (unsigned char)(0xE0 | (v >> 12));
        out[1] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
        out[2] = (unsigned char)(0x80 | (v & 0x3F));
        return 3;
    }
    out[0] = (unsigned char)(0xF0 | (v >> 18));
    out[1] = (unsigned char)(0x80 | ((v >> 12) & 0x3F));
    out[2] = (unsigned char)(0x80 | ((v >> 6) & 0x3F));
    out[3] = (unsigned char)(0x80 | (v & 0x3F));
    return 4;
}

/* The bytes the (valid) escape at the backslash *pp stands for, into out:
 * their count; *pp moves past the escape. */
static size_t unescape(cur *pp, unsigned char *out)
{
    static const char from[] = "\"\\/bfnrt", to[] = "\"\\/\b\f\n\r\t";
    cur p = *pp;
    unsigned long v;

    if (p[1] != 'u') {
        const char *f = memchr(from, p[1], sizeof(from) - 1);
        out[0] = f ? (unsigned char)to[f - from] : p[1];
        *pp = p + 2;
        return 1;
    }
    v = hex4(p + 2);
    p += 6;
    if (v >= 0xD800 && v <= 0xDBFF) {
        v = 0x10000 + ((v - 0xD800) << 10) + (hex4(p + 2) - 0xDC00);
        p += 6;
    }
    *pp = p;
    return utf8_put(v, out);
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
        else {
            n = unescape(&p, out);
        }
        for (i = 0; i < n; i++) {
            if (j >= nlen || (unsigned char)name[j++] != out[i]) {
                return 0;
            }
        }
    }
    return j == nlen;
}

/* ---- paths ---------------------------------------------------------------- */

/* One `[N]` or `[*]` segment at p into seg s: the byte after it, or NULL. */
static const char *index_seg(mn_jpath *path, int s, const char *p)
{
    char *end;
    long v;

    path->seg[s].key = NULL;
    path->seg[s].klen = 0;
    if (p[1] == '*' && p[2] == ']') {
        path->seg[s].index = -1;
        return p + 3;
    }
    v = strtol(p + 1, &end, 10);
    if (end == p + 1 || *end != ']' || v < 0) {
        return NULL;
    }
    path->seg[s].index = v;
    return end + 1;
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
            if (!(p = index_seg(path, s, p))) {
                return -1;
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
        if (*p == '.' && (!*++p || *p == '.' || *p == '[')) {
            return -1;
        }
        if (path->seg[s].index == -1 && *p) {
            return -1;   /* a wildcard only at the end */
        }
    }
    return path->nseg ? 0 : -1;
}
