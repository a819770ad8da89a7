/* mn_sigid: the gsig1_ tool-call id encoding (format in mn_sigid.h). */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_sigid.h"

#define VARINT_MAX 4
#define CHECK_LEN 4
/* 4 varint bytes hold 28 bits: call ids are far shorter */
#define CALL_ID_MAX ((size_t)1 << 28)

static const char b64url[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

static uint32_t fnv1a32(const unsigned char *s, size_t n)
{
    uint32_t h = 2166136261u;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 16777619u;
    }
    return h;
}

static uint64_t fnv1a64(const unsigned char *s, size_t n)
{
    uint64_t h = 14695981039346656037ull;
    size_t i;
    for (i = 0; i < n; i++) {
        h ^= s[i];
        h *= 1099511628211ull;
    }
    return h;
}

static int b64_value(unsigned char c)
{
    if (c >= 'A' && c <= 'Z') {
        return c - 'A';
    }
    if (c >= 'a' && c <= 'z') {
        return c - 'a' + 26;
    }
    if (c >= '0' && c <= '9') {
        return c - '0' + 52;
    }
    if (c == '-') {
        return 62;
    }
    return c == '_' ? 63 : -1;
}

static size_t b64url_encode(const unsigned char *in, size_t n, char *out)
{
    size_t i, o = 0;
    for (i = 0; i + 2 < n; i += 3) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8) | in[i + 2];
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
        out[o++] = b64url[v & 63];
    }
    if (n - i == 1) {
        uint32_t v = (uint32_t)in[i] << 16;
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
    } else if (n - i == 2) {
        uint32_t v = ((uint32_t)in[i] << 16) | ((uint32_t)in[i + 1] << 8);
        out[o++] = b64url[(v >> 18) & 63];
        out[o++] = b64url[(v >> 12) & 63];
        out[o++] = b64url[(v >> 6) & 63];
    }
    out[o] = '\0';
    return o;
}

/* Strict: no padding, no stray characters, zero unused bits (so one payload
 * has exactly one spelling).  Returns the byte count, or -1. */
static long b64url_decode(const char *in, size_t n, unsigned char *out)
{
    size_t i, o = 0;
    uint32_t acc = 0;
    int bits = 0;
    if (n % 4 == 1) {
        return -1;
    }
    for (i = 0; i < n; i++) {
        int v = b64_value((unsigned char)in[i]);
        if (v < 0) {
            return -1;
        }
        acc = (acc << 6) | (uint32_t)v;
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out[o++] = (unsigned char)(acc >> bits);
            acc &= (1u << bits) - 1;
        }
    }
    return acc != 0 ? -1 : (long)o;
}

char *mn_sigid_encode(apr_pool_t *p, const char *call_id, size_t call_len,
                      const char *sig, size_t sig_len)
{
    unsigned char *raw;
    size_t n = 0, total;
    size_t v = call_len;
    uint32_t h;
    char *out;
    if (sig_len == 0 || call_len >= CALL_ID_MAX) {
        return apr_pstrmemdup(p, call_id, call_len);
    }
    total = VARINT_MAX + call_len + sig_len + CHECK_LEN;
    raw = apr_palloc(p, total);
    do {
        unsigned char b = (unsigned char)(v & 0x7f);
        v >>= 7;
        raw[n++] = v ? (unsigned char)(b | 0x80) : b;
    } while (v);
    memcpy(raw + n, call_id, call_len);
    n += call_len;
    memcpy(raw + n, sig, sig_len);
    n += sig_len;
    h = fnv1a32(raw, n);
    raw[n++] = (unsigned char)(h >> 24);
    raw[n++] = (unsigned char)(h >> 16);
    raw[n++] = (unsigned char)(h >> 8);
    raw[n++] = (unsigned char)h;
    out = apr_palloc(p, MN_SIGID_PREFIX_LEN + (n + 2) / 3 * 4 + 1);
    memcpy(out, MN_SIGID_PREFIX, MN_SIGID_PREFIX_LEN);
    b64url_encode(raw, n, out + MN_SIGID_PREFIX_LEN);
    return out;
}

/* The varint at raw[0..n): its value and length, or 0 when malformed. */
static size_t read_varint(const unsigned char *raw, size_t n, size_t *value)
{
    size_t i, v = 0;
    for (i = 0; i < n && i < VARINT_MAX; i++) {
        v |= (size_t)(raw[i] & 0x7f) << (7 * i);
        if (!(raw[i] & 0x80)) {
            *value = v;
            return i + 1;
        }
    }
    return 0;
}

static int split_payload(apr_pool_t *p, const unsigned char *raw, size_t n,
                         const char **call_id, size_t *call_len,
                         const char **sig, size_t *sig_len)
{
    size_t clen, vlen;
    uint32_t h;
    if (n < CHECK_LEN + 1) {
        return -1;
    }
    n -= CHECK_LEN;
    h = ((uint32_t)raw[n] << 24) | ((uint32_t)raw[n + 1] << 16)
        | ((uint32_t)raw[n + 2] << 8) | raw[n + 3];
    if (h != fnv1a32(raw, n)) {
        return -1;
    }
    vlen = read_varint(raw, n, &clen);
    if (vlen == 0 || clen > n - vlen || n - vlen - clen == 0) {
        return -1;
    }
    *call_id = apr_pstrmemdup(p, (const char *)raw + vlen, clen);
    *call_len = clen;
    *sig = apr_pstrmemdup(p, (const char *)raw + vlen + clen, n - vlen - clen);
    *sig_len = n - vlen - clen;
    return 0;
}

mn_sigid_rc mn_sigid_decode(apr_pool_t *p, const char *id, size_t id_len,
                            const char **call_id, size_t *call_len,
                            const char **sig, size_t *sig_len)
{
    unsigned char *raw;
    long n;
    *call_id = id;
    *call_len = id_len;
    *sig = NULL;
    *sig_len = 0;
    if (id_len < MN_SIGID_PREFIX_LEN || memcmp(id, MN_SIGID_PREFIX, MN_SIGID_PREFIX_LEN) != 0) {
        return MN_SIGID_PLAIN;
    }
    raw = apr_palloc(p, (id_len - MN_SIGID_PREFIX_LEN) / 4 * 3 + 3);
    n = b64url_decode(id + MN_SIGID_PREFIX_LEN, id_len - MN_SIGID_PREFIX_LEN, raw);
    if (n < 0 || split_payload(p, raw, (size_t)n, call_id, call_len, sig, sig_len) != 0) {
        *call_id = id;
        *call_len = id_len;
        *sig = NULL;
        *sig_len = 0;
        return MN_SIGID_BROKEN;
    }
    return MN_SIGID_OK;
}

const char *mn_sigid_plain(apr_pool_t *p, const char *id, size_t id_len, size_t *out_len)
{
    const char *call, *sig;
    size_t clen, slen;
    mn_sigid_rc rc = mn_sigid_decode(p, id, id_len, &call, &clen, &sig, &slen);
    if (rc == MN_SIGID_BROKEN) {
        uint64_t h = fnv1a64((const unsigned char *)id, id_len);
        uint32_t h2 = fnv1a32((const unsigned char *)id, id_len);
        char buf[32];
        /* the C formatter: APR's has no %llx */
        snprintf(buf, sizeof(buf), "call_%016llx%08x", (unsigned long long)h, (unsigned)h2);
        call = apr_pstrdup(p, buf);
        clen = strlen(call);
    }
    if (out_len) {
        *out_len = clen;
    }
    return call;
}
