/* mn_jscan: see include/mn_jscan.h for what is accepted and why.
 *
 * The order below: byte classes and the word-at-a-time string scan, the
 * scalar scanners (string, number, literal), the path matcher, the
 * container walk, then the memo (key comparison and path compilation are
 * in jpath.c).  The walk keeps
 * its own stack (one bit per level: object or array) and moves between four
 * steps (a value, a member, after a value, a container's end), so a deep
 * text costs no C stack and each step stays a short function. */
#include <math.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_jscan.h"

typedef const unsigned char *cur;

/* Byte classes.  C_STOP: a byte that ends a run of plain string text (the
 * quote, the backslash, control bytes, every byte of 0x80 and above);
 * C_ESC: what may follow a backslash, apart from `u`. */
enum { C_WS = 1, C_DIGIT = 2, C_ALPHA = 4, C_STOP = 8, C_ESC = 16 };

static const unsigned char cls[256] = {
    /* 00 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  9,  9,  8,  8,  9,  8,  8,
    /* 10 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* 20 */  1,  0, 24,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0,  0, 16,
    /* 30 */  2,  2,  2,  2,  2,  2,  2,  2,  2,  2,  0,  0,  0,  0,  0,  0,
    /* 40 */  0,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,
    /* 50 */  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  4,  0, 24,  0,  0,  0,
    /* 60 */  0,  4, 20,  4,  4,  4, 20,  4,  4,  4,  4,  4,  4,  4, 20,  4,
    /* 70 */  4,  4, 20,  4, 20,  4,  4,  4,  4,  4,  4,  0,  0,  0,  0,  0,
    /* 80 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* 90 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* a0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* b0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* c0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* d0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* e0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
    /* f0 */  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,  8,
};

#define IS(c, k) (cls[(unsigned char)(c)] & (k))

/* Bit scans: the builtins where the compiler has them, a loop elsewhere
 * (MN_JSCAN_BYTEWISE forces the portable code, for testing it). */
#if defined(__GNUC__) && !defined(MN_JSCAN_BYTEWISE)
#define CTZ32(m) ((unsigned)__builtin_ctz(m))
#else
static unsigned CTZ32(uint32_t m)
{
    unsigned n = 0;
    while (!(m & 1u)) {
        m >>= 1;
        n++;
    }
    return n;
}
#endif

/* The hot scanners are inlined into the walk, where the SWAR constants
 * stay in registers; a call per string costs more than a short key. */
#if defined(__GNUC__)
#define HOT static inline __attribute__((always_inline))
#else
#define HOT static inline
#endif

HOT cur skip_ws(cur p, cur e)
{
    while (p < e && IS(*p, C_WS)) {
        p++;
    }
    return p;
}

static cur skip_digits(cur p, cur e)
{
    while (p < e && IS(*p, C_DIGIT)) {
        p++;
    }
    return p;
}

/* ---- strings ------------------------------------------------------------ */

#define ONES UINT64_C(0x0101010101010101)
#define HIGH UINT64_C(0x8080808080808080)

/* The high bit of each byte of w that is a C_STOP byte.  Per byte c:
 * (c ^ 0x02) - 0x21 has its high bit set for c below 0x20, for '"' (0x22 ^
 * 0x02 = 0x20) and for c from 0xA3 up; (c ^ '\\') - 1 for the backslash
 * and for c from 0x80 up except 0xDC, which the first covers.  A borrow
 * can only mark bytes above a true stop, so the lowest mark is always a
 * true one (t/unit/test_jscan.c puts each byte at each offset). */
HOT uint64_t stop_marks(uint64_t w)
{
    uint64_t q = w ^ (ONES * 0x02), b = w ^ (ONES * '\\');
    return ((q - ONES * 0x21) | (b - ONES)) & HIGH;
}

/* The first stop byte of the 8 at p, whose marks m are not 0.  In memory
 * order the lowest byte of a little-endian word comes first. */
#if defined(__GNUC__) && defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ \
    && !defined(MN_JSCAN_BYTEWISE)
#define FIRST_STOP(p, m) ((p) + ((unsigned)__builtin_ctzll(m) >> 3))
#else
static cur first_stop(cur p)
{
    while (!IS(*p, C_STOP)) {
        p++;
    }
    return p;
}
#define FIRST_STOP(p, m) ((void)(m), first_stop(p))
#endif

/* The first C_STOP byte at or after p, or e: eight bytes per step while
 * eight remain (unaligned loads through memcpy), then byte by byte. */
HOT cur skip_plain(cur p, cur e)
{
    for (; e - p >= 8; p += 8) {
        uint64_t w, m;
        memcpy(&w, p, 8);
        m = stop_marks(w);
        if (m) {
            return FIRST_STOP(p, m);
        }
    }
    while (p < e && !IS(*p, C_STOP)) {
        p++;
    }
    return p;
}

static int hexval(unsigned c)
{
    if (IS(c, C_DIGIT)) {
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

/* The escape at the backslash p: the byte after it, or NULL.  As Jansson:
 * only JSON's escapes, no \u0000, a surrogate only as a high-low pair. */
static cur scan_escape(cur p, cur e)
{
    long v, lo;

    if (e - p < 2) {
        return NULL;
    }
    if (p[1] != 'u') {
        return IS(p[1], C_ESC) ? p + 2 : NULL;
    }
    if (e - p < 6 || (v = hex4(p + 2)) <= 0 || (v >= 0xDC00 && v <= 0xDFFF)) {
        return NULL;
    }
    p += 6;
    if (v < 0xD800 || v > 0xDBFF) {
        return p;
    }
    if (e - p < 6 || p[0] != '\\' || p[1] != 'u' || (lo = hex4(p + 2)) < 0xDC00 || lo > 0xDFFF) {
        return NULL;
    }
    return p + 6;
}

/* Length of the valid UTF-8 sequence at p (lead byte >= 0x80), or 0: no
 * overlong form, no encoded surrogate, nothing above U+10FFFF (Jansson's
 * utf8_check_first / utf8_check_full). */
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

/* A run of multi-byte characters at p: the byte after it, or NULL. */
static cur skip_utf8(cur p, cur e)
{
    while (p < e && *p >= 0x80) {
        size_t n = utf8_len(p, e);
        if (!n) {
            return NULL;
        }
        p += n;
    }
    return p;
}

/* What follows the stop byte p (a backslash, a byte of 0x80 and above or a
 * control byte) inside a string: the byte after it, or NULL. */
static cur scan_special(cur p, cur e, int *escaped)
{
    if (*p == '\\') {
        *escaped = 1;
        return scan_escape(p, e);
    }
    return *p >= 0x80 ? skip_utf8(p, e) : NULL;   /* NULL: a raw control byte */
}

/* A string starting at the quote p: the byte after the closing quote, or
 * NULL.  *escaped: a backslash was seen. */
HOT cur scan_string(cur p, cur e, int *escaped)
{
    *escaped = 0;
    p++;
    for (;;) {
        p = skip_plain(p, e);
        if (p >= e) {
            return NULL;
        }
        if (*p == '"') {
            return p + 1;
        }
        if (!(p = scan_special(p, e, escaped))) {
            return NULL;
        }
    }
}

/* ---- numbers ------------------------------------------------------------ */

/* A real's digits: the integer part and the fraction (flen may be 0). */
typedef struct {
    cur ip, fp;
    size_t ilen, flen;
} digits;

static unsigned char digit_at(const digits *d, size_t k)
{
    return k < d->ilen ? d->ip[k] : d->fp[k - d->ilen];
}

/* Does strtod make infinity of the digits from the first nonzero one (k),
 * the leading one at 10^308?  They are handed to it in a canonical, bounded
 * form (a sticky 1 stands for cut-off digits). */
#define MN_SIG_DIGITS 780

static int strtod_overflows(const digits *d, size_t k)
{
    char buf[MN_SIG_DIGITS + 32];
    size_t n = 0, total = d->ilen + d->flen;
    int sticky = 0;

    for (; k < total; k++) {
        unsigned char c = digit_at(d, k);
        if (n < MN_SIG_DIGITS) {
            buf[n++] = (char)c;
        }
        else if (c != '0') {
            sticky = 1;
        }
    }
    if (sticky) {
        buf[n++] = '1';
    }
    /* value = D * 10^(308 - (n - 1)) */
    snprintf(buf + n, sizeof(buf) - n, "e%lld", 308 - ((long long)n - 1));
    return isinf(strtod(buf, NULL));
}

/* Does a real with these digits and exponent overflow a double?  Only a
 * leading digit at 10^308 needs strtod. */
static int real_overflows(const digits *d, long long ex)
{
    size_t k, total = d->ilen + d->flen;
    long long lead;

    for (k = 0; k < total && digit_at(d, k) == '0'; k++) {
    }
    if (k == total) {
        return 0;
    }
    lead = (long long)d->ilen - 1 - (long long)k + ex;
    return lead == 308 ? strtod_overflows(d, k) : lead > 308;
}

/* The exponent's digits after the `e` at p: the byte after them, or NULL. */
static cur scan_exponent(cur p, cur e, long long *ex)
{
    int neg = 0;

    if (p < e && (*p == '+' || *p == '-')) {
        neg = *p == '-';
        p++;
    }
    if (p >= e || !IS(*p, C_DIGIT)) {
        return NULL;
    }
    for (*ex = 0; p < e && IS(*p, C_DIGIT); p++) {
        /* saturate: beyond this any nonzero mantissa is decided */
        if (*ex < 1000000000LL) {
            *ex = *ex * 10 + (*p - '0');
        }
    }
    if (neg) {
        *ex = -*ex;
    }
    return p;
}

/* The rest of a real whose integer digits are ip..p (p: `.`, `e` or `E`). */
static cur scan_real(cur ip, cur p, cur e)
{
    digits d = { ip, p, (size_t)(p - ip), 0 };
    long long ex = 0;

    if (*p == '.') {
        d.fp = ++p;
        p = skip_digits(p, e);
        d.flen = (size_t)(p - d.fp);
        if (!d.flen) {
            return NULL;
        }
    }
    if (p < e && (*p | 0x20) == 'e' && !(p = scan_exponent(p + 1, e, &ex))) {
        return NULL;
    }
    return real_overflows(&d, ex) ? NULL : p;
}

/* Does the integer ip[0..n) (no sign) fit int64?  Jansson rejects it if
 * not ("too big integer") rather than making a real of it. */
static int int_fits(cur ip, size_t n, int neg)
{
    if (n != 19) {
        return n < 19;
    }
    return memcmp(ip, neg ? "9223372036854775808" : "9223372036854775807", 19) <= 0;
}

/* A number at p (a digit or '-'): the byte after it, or NULL when Jansson's
 * lexer would not make a number of it or would refuse its value. */
static cur scan_number(cur p, cur e)
{
    int neg = *p == '-';
    cur ip = p + neg, q;

    if (ip >= e || !IS(*ip, C_DIGIT)) {
        return NULL;
    }
    q = *ip == '0' ? ip + 1 : skip_digits(ip, e);
    if (q >= e || (*q != '.' && (*q | 0x20) != 'e')) {
        if (q < e && IS(*q, C_DIGIT)) {
            return NULL;   /* a leading zero */
        }
        return int_fits(ip, (size_t)(q - ip), neg) ? q : NULL;
    }
    return scan_real(ip, q, e);
}

/* ---- scalars ------------------------------------------------------------ */

/* true, false or null at p; Jansson's lexer reads the whole word, so
 * "truex" is no literal. */
static cur scan_word(cur p, cur e, const char *w, size_t n)
{
    if ((size_t)(e - p) < n || memcmp(p, w, n)) {
        return NULL;
    }
    p += n;
    return p < e && IS(*p, C_ALPHA) ? NULL : p;
}

/* A number, true, false or null at p: its end (or NULL), its type in *t. */
static cur scan_other(cur p, cur e, mn_jtype *t)
{
    switch (*p) {
    case 't':
        *t = MN_JT_TRUE;
        return scan_word(p, e, "true", 4);
    case 'f':
        *t = MN_JT_FALSE;
        return scan_word(p, e, "false", 5);
    case 'n':
        *t = MN_JT_NULL;
        return scan_word(p, e, "null", 4);
    default:
        *t = MN_JT_NUMBER;
        return IS(*p, C_DIGIT) || *p == '-' ? scan_number(p, e) : NULL;
    }
}

/* ---- the walk ------------------------------------------------------------- */

/* Container levels paths can reach: 1..MAXL. */
#define MAXL (MN_JPATH_MAX_SEGS + 1)

/* Per open container, for the levels paths can reach: what its members or
 * elements may select. */
typedef struct {
    uint32_t live;      /* paths whose segments so far lead here, with more to go */
    uint32_t full;      /* paths that end at this container */
    uint32_t wild;      /* of live: `*` here (an object) or `[*]` (an array) */
    uint32_t named;     /* of live: a key here (an object) or an index (an array) */
    uint64_t sig;       /* the named keys' key_sig bits */
    const char *start;
    const char *key;    /* the member's key, when the container is one */
    long idx;           /* next element's index (arrays) */
} level;

/* The paths asked for and the spans they fill. */
typedef struct {
    const mn_jpath *paths;
    mn_jspan *out;
} targets;

/* The walk's position.  Its scalars stay in registers: only the stacks
 * below are reached through memory. */
typedef struct {
    cur p, e;
    size_t depth;              /* open containers */
    int obj;                   /* the innermost one is an object */
    uint32_t vlive, vfull;     /* the paths the next value continues / ends */
    const char *vkey;          /* its key (an object member's) */
    const targets *t;
    level *cl;                 /* the innermost container's, when paths go on in it */
    level *lv;                 /* [MAXL + 1] */
    unsigned char *is_obj;     /* a bit per level: object or array */
    /* for a memo: where the top level's run of scalar members ends (after
     * the comma before its first container member, NULL: not yet), and the
     * byte after its last comma */
    cur head, comma;
    cur stop;                  /* the walk pauses there (a memo's head), or NULL */
} scanner;

/* One bit of 64 for a key (raw bytes between the quotes): a member key
 * whose bit no path's key at its level has set is passed over without a
 * comparison.  For an empty key the first and last bytes read are its
 * closing and opening quotes (k + n - 1 with n == 0 would wrap: `(k + n)[-1]`
 * does not). */
static uint64_t key_sig(const unsigned char *k, size_t n)
{
    return UINT64_C(1) << ((k[0] * 3u + (k + n)[-1] + n) & 63);
}

static void record(const targets *t, uint32_t mask, const char *key, cur start, cur end,
                   mn_jtype type)
{
    while (mask) {
        mn_jspan *sp = &t->out[CTZ32(mask)];
        mask &= mask - 1;
        sp->key = key;
        sp->p = (const char *)start;
        sp->len = (size_t)(end - start);
        sp->type = type;
    }
}

static void count_up(const targets *t, uint32_t mask)
{
    while (mask) {
        t->out[CTZ32(mask)].count++;
        mask &= mask - 1;
    }
}

/* Path i matched at segment level lvl: it ends there (into *full, counted)
 * or goes on (returned) and starts afresh, since of a key met again the
 * last duplicate is the one Jansson keeps. */
static uint32_t take(const targets *t, unsigned i, size_t lvl, uint32_t *full)
{
    mn_jspan *sp = &t->out[i];

    if (lvl + 1 == (size_t)t->paths[i].nseg) {
        *full |= 1u << i;
        sp->count++;
        return 0;
    }
    sp->type = MN_JT_NONE;
    sp->count = 0;
    return 1u << i;
}

/* The paths of container l (at segment level lvl) an object member's key
 * selects; those that end there go to *full. */
static uint32_t select_key(const targets *t, const level *l, size_t lvl, cur key, size_t klen,
                           int escaped, uint32_t *full)
{
    uint32_t child = 0, m = l->named;

    *full = l->wild;
    count_up(t, *full);
    if (!m || (!escaped && !(l->sig & key_sig(key, klen)))) {
        return 0;
    }
    for (; m; m &= m - 1) {
        unsigned i = CTZ32(m);
        const char *name = t->paths[i].seg[lvl].key;
        size_t nlen = t->paths[i].seg[lvl].klen;
        if (escaped ? mn_jkey_eq((const char *)key, klen, name, nlen)
                    : (klen == nlen && key[0] == (unsigned char)name[0]
                       && !memcmp(key, name, klen))) {
            child |= take(t, i, lvl, full);
        }
    }
    return child;
}

/* The same for an array element at index idx. */
static uint32_t select_index(const targets *t, const level *l, size_t lvl, long idx, uint32_t *full)
{
    uint32_t child = 0, m;

    *full = l->wild;
    count_up(t, *full);
    for (m = l->named; m; m &= m - 1) {
        unsigned i = CTZ32(m);
        if (t->paths[i].seg[lvl].index == idx) {
            child |= take(t, i, lvl, full);
        }
    }
    return child;
}

/* Which live paths a new container at depth d (segment level d - 1) may
 * match members or elements of. */
HOT void sort_live(const targets *t, level *l, size_t lvl, int obj)
{
    uint32_t m;

    l->wild = l->named = 0;
    l->sig = 0;
    for (m = l->live; m; m &= m - 1) {
        unsigned i = CTZ32(m);
        const char *key = t->paths[i].seg[lvl].key;
        if ((key != NULL) != obj) {
            continue;   /* a key in an array, an index in an object */
        }
        if (t->paths[i].seg[lvl].index == -1) {
            l->wild |= 1u << i;
            continue;
        }
        l->named |= 1u << i;
        if (key) {
            l->sig |= key_sig((cur)key, t->paths[i].seg[lvl].klen);
        }
    }
}

/* The paths that start at the top. */
static uint32_t targets_init_live(const mn_jpath *paths, unsigned npaths)
{
    uint32_t live = 0;
    unsigned i;

    for (i = 0; i < npaths; i++) {
        if (paths[i].nseg > 0 && paths[i].nseg <= MN_JPATH_MAX_SEGS) {
            live |= 1u << i;
        }
    }
    return live;
}

/* Clears the spans; returns the paths that start at the top. */
static uint32_t targets_init(const targets *t, unsigned npaths)
{
    static const mn_jspan none = { NULL, 0, NULL, MN_JT_NONE, 0 };
    unsigned i;

    for (i = 0; i < npaths; i++) {
        t->out[i] = none;
    }
    return targets_init_live(t->paths, npaths);
}

enum { S_FAIL = -1, S_DONE, S_VALUE, S_MEMBER, S_AFTER, S_CLOSE };

/* At an opening bracket: one level down. */
HOT int open_container(scanner *s)
{
    size_t d = ++s->depth;
    unsigned char bit = (unsigned char)(1u << (d & 7));

    s->obj = *s->p == '{';
    s->is_obj[d >> 3] = (unsigned char)(s->obj ? s->is_obj[d >> 3] | bit
                                               : s->is_obj[d >> 3] & ~bit);
    if (d <= MAXL) {
        level *l = &s->lv[d];
        l->live = s->vlive;
        l->full = s->vfull;
        l->start = (const char *)s->p;
        l->key = s->vkey;
        l->idx = 0;
        if (l->live) {
            sort_live(s->t, l, d - 1, s->obj);
        }
    }
    s->cl = d <= MAXL && s->lv[d].live ? &s->lv[d] : NULL;
    if (d == 2 && !s->head) {
        s->head = s->comma;
    }
    s->p = skip_ws(s->p + 1, s->e);
    if (s->p >= s->e) {
        return S_FAIL;
    }
    if (*s->p == (s->obj ? '}' : ']')) {
        s->p++;
        return S_CLOSE;
    }
    return S_MEMBER;
}

/* The steps below take p where a token is due: at it, or at whitespace
 * before it, or at the end.  Each looks for the byte it expects first and
 * skips whitespace only when that is not there. */

/* A value at level depth + 1. */
HOT int step_value(scanner *s)
{
    mn_jtype t = MN_JT_STRING;
    cur p = s->p, q;
    int esc;

    if (s->depth >= MN_JSON_MAX_DEPTH || p >= s->e) {
        return S_FAIL;
    }
    if (*p == '"') {
        if (!(q = scan_string(p, s->e, &esc))) {
            return S_FAIL;
        }
        s->p = q;
    }
    else if (*p == '{' || *p == '[') {
        return open_container(s);
    }
    else if (IS(*p, C_WS)) {
        s->p = skip_ws(p, s->e);
        return S_VALUE;
    }
    else if ((q = scan_other(p, s->e, &t))) {
        /* the look-ahead NUL Jansson's lexer loses */
        s->p = q < s->e && *q == '\0' ? q + 1 : q;
    }
    else {
        return S_FAIL;
    }
    if (s->vfull) {
        record(s->t, s->vfull, s->vkey, p, q, t);
    }
    return S_AFTER;
}

/* An object member: its key, the colon; then its value. */
HOT int step_key(scanner *s)
{
    cur key = s->p, q, e = s->e;
    size_t d = s->depth;
    int esc;

    if (key < e && *key != '"') {
        key = skip_ws(key, e);
    }
    if (key >= e || *key != '"' || !(q = scan_string(key, e, &esc))) {
        return S_FAIL;
    }
    s->vkey = (const char *)key;
    if (s->cl) {
        s->vlive = select_key(s->t, s->cl, d - 1, key + 1, (size_t)(q - key - 2), esc,
                              &s->vfull);
    }
    if (q < e && *q != ':') {
        q = skip_ws(q, e);
    }
    if (q >= e || *q != ':') {
        return S_FAIL;
    }
    s->p = q + 1;
    return S_VALUE;
}

/* A member (object) or element (array). */
HOT int step_member(scanner *s)
{
    size_t d = s->depth;

    s->vlive = s->vfull = 0;
    s->vkey = NULL;
    if (s->obj) {
        return step_key(s);
    }
    if (s->cl) {
        s->vlive = select_index(s->t, s->cl, d - 1, s->cl->idx, &s->vfull);
    }
    return S_VALUE;
}

/* A value ended: a comma or the container's end is due. */
HOT int step_after(scanner *s)
{
    cur p = s->p, e = s->e;
    unsigned char close = s->obj ? '}' : ']';

    if (p < e && *p != ',' && *p != close) {
        p = skip_ws(p, e);
    }
    if (p >= e || (*p != ',' && *p != close)) {
        return S_FAIL;
    }
    s->p = p + 1;
    if (*p == close) {
        return S_CLOSE;
    }
    if (!s->obj && s->cl) {
        s->cl->idx++;
    }
    if (s->depth == 1) {
        s->comma = s->p;
    }
    return S_MEMBER;
}

/* The container at level depth ended just before p. */
HOT int step_close(scanner *s)
{
    size_t d = s->depth;

    if (d <= MAXL && s->lv[d].full) {
        record(s->t, s->lv[d].full, s->lv[d].key, (cur)s->lv[d].start, s->p,
               s->obj ? MN_JT_OBJECT : MN_JT_ARRAY);
    }
    s->depth = --d;
    if (d) {
        s->obj = (s->is_obj[d >> 3] >> (d & 7)) & 1;
        s->cl = d <= MAXL && s->lv[d].live ? &s->lv[d] : NULL;
        return S_AFTER;
    }
    s->p = skip_ws(s->p, s->e);
    return s->p == s->e ? S_DONE : S_FAIL;
}

/* The steps from st until the text ends, fails or reaches s.stop (a
 * member due at the top level there): S_DONE, S_FAIL or S_MEMBER; *head:
 * s.head.  One copy of the loop, its scanner a local of its own: the
 * compiler keeps the walk's position in registers. */
static int walk(scanner s, int st, const char **head)
{
    /* in the order the steps usually follow each other */
    while (st > S_DONE) {
        if (st == S_MEMBER) {
            if (s.p == s.stop && s.depth == 1) {
                break;
            }
            st = step_member(&s);
        }
        if (st == S_VALUE) {
            st = step_value(&s);
        }
        if (st == S_AFTER) {
            st = step_after(&s);
        }
        if (st == S_CLOSE) {
            st = step_close(&s);
        }
    }
    *head = (const char *)s.head;
    return st;
}

/* Clears the spans and starts the walk at the top-level value. */
HOT int walk_start(scanner *s, unsigned npaths)
{
    s->vlive = targets_init(s->t, npaths);
    s->p = skip_ws(s->p, s->e);
    if (s->p >= s->e || (*s->p != '{' && *s->p != '[')) {
        return S_FAIL;
    }
    return S_VALUE;
}

#define SCANNER(s, buf, len, t, lv, is_obj) \
    scanner s = { (cur)(buf), (cur)(buf) + (len), 0, 0, 0, 0, NULL, &(t), NULL, (lv), (is_obj), \
                  NULL, NULL, NULL }

/* The whole text walked: S_DONE or S_FAIL, *head as walk leaves it and,
 * when done, *top_obj: the top level is an object. */
HOT int scan_whole(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
                   mn_jspan *out, const char **head, int *top_obj)
{
    targets t = { paths, out };
    level lv[MAXL + 1];
    unsigned char is_obj[MN_JSON_MAX_DEPTH / 8 + 1];
    SCANNER(s, buf, len, t, lv, is_obj);
    int st;

    if (npaths > MN_JSCAN_MAX_PATHS) {
        return S_FAIL;
    }
    st = walk(s, walk_start(&s, npaths), head);
    if (st == S_DONE) {
        *top_obj = (is_obj[0] & 2) != 0;
    }
    return st;
}

int mn_jscan(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
             mn_jspan *out)
{
    const char *head;
    int top_obj;

    return scan_whole(buf, len, paths, npaths, out, &head, &top_obj) == S_DONE ? 0 : -1;
}

/* ---- the memo ------------------------------------------------------------- */

/* Moves the spans' pointers from one copy of the head to another. */
static void rebase(mn_jspan *sp, unsigned n, const char *from, const char *to)
{
    unsigned i;
    for (i = 0; i < n; i++) {
        if (sp[i].p) {
            sp[i].p = to + (sp[i].p - from);
        }
        if (sp[i].key) {
            sp[i].key = to + (sp[i].key - from);
        }
    }
}

/* Keeps buf's head (validated: the full walk accepted buf) and the spans
 * its members gave, found by walking the head again up to its end. */
static void memo_prime(mn_jmemo *m, const char *buf, size_t head, const mn_jpath *paths,
                       unsigned npaths)
{
    targets t = { paths, m->out };
    level lv[MAXL + 1];
    unsigned char is_obj[MN_JSON_MAX_DEPTH / 8 + 1];
    SCANNER(s, buf, head, t, lv, is_obj);
    const char *brace, *h;

    m->len = 0;
    s.stop = (cur)buf + head;
    if (walk(s, walk_start(&s, npaths), &h) != S_MEMBER) {
        return;   /* cannot be: the head is a prefix of a text accepted */
    }
    brace = lv[1].start;
    rebase(m->out, npaths, buf, m->head);
    memcpy(m->head, buf, head);
    m->brace = (size_t)(brace - buf);
    m->paths = paths;
    m->npaths = npaths;
    m->len = head;
}

/* The walk of a text whose head is the memo's, from the head's end: the
 * state there is the one the head always leaves (the top-level object open,
 * a member due) and the spans the head gave. */
static int memo_resume(const mn_jmemo *m, const char *buf, size_t len, mn_jspan *out)
{
    targets t = { m->paths, out };
    level lv[MAXL + 1];
    unsigned char is_obj[MN_JSON_MAX_DEPTH / 8 + 1];
    SCANNER(s, buf, len, t, lv, is_obj);
    level *l = &lv[1];
    const char *h;

    memcpy(out, m->out, m->npaths * sizeof(*out));
    rebase(out, m->npaths, m->head, buf);
    s.depth = 1;
    s.obj = 1;
    is_obj[0] = 2;
    l->live = targets_init_live(m->paths, m->npaths);
    l->full = 0;
    l->start = buf + m->brace;
    l->key = NULL;
    l->idx = 0;
    if (l->live) {
        sort_live(&t, l, 0, 1);
        s.cl = l;
    }
    s.p = (cur)buf + m->len;
    return walk(s, S_MEMBER, &h) == S_DONE ? 0 : -1;
}

int mn_jscan_memo(const char *buf, size_t len, const mn_jpath *paths, unsigned npaths,
                  mn_jspan *out, mn_jmemo *m)
{
    const char *head;
    int top_obj;

    if (npaths > MN_JSCAN_MAX_PATHS) {
        return -1;
    }
    if (m->len && len > m->len && m->paths == paths && m->npaths == npaths
        && !memcmp(buf, m->head, m->len)) {
        m->hits++;
        return memo_resume(m, buf, len, out);
    }
    if (scan_whole(buf, len, paths, npaths, out, &head, &top_obj) != S_DONE) {
        return -1;
    }
    /* a head that changed (or none yet): keep the new one while heads are
     * found again more often than not */
    if (head && top_obj && (size_t)(head - buf) <= sizeof(m->head)
        && m->misses <= m->hits + 8) {
        m->misses++;
        memo_prime(m, buf, (size_t)(head - buf), paths, npaths);
    }
    return 0;
}
