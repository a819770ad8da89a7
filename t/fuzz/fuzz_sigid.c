/* Thought-signature ids (src/wire/sigid.c): clients echo them back, so the
 * decoder reads outside bytes.
 * Byte 0 even: byte 1 cuts the rest into a call id and a signature; the id
 * made of them decodes to exactly them, uses only [A-Za-z0-9_-] after the
 * prefix, and mn_sigid_plain gives the call id back.
 * Byte 0 odd: the rest is an id a client sent.  When it decodes, encoding
 * what it gave spells the very same id (one payload, one spelling: garbage
 * never yields a signature that was not encoded); when not, the id is the
 * call id, no signature, and mn_sigid_plain is the id itself (PLAIN) or a
 * stable call_ + 24 hex digits (BROKEN). */
#include "fuzz.h"
#include "mn_sigid.h"

static int ours(const char *s, size_t n)
{
    return n >= MN_SIGID_PREFIX_LEN && !memcmp(s, MN_SIGID_PREFIX, MN_SIGID_PREFIX_LEN);
}

static void round_trip(apr_pool_t *p, const char *in, size_t n, unsigned cut)
{
    size_t call_len = n ? cut % (n + 1) : 0, sig_len = n - call_len, got_call_len, got_sig_len,
           plain_len, i, id_len;
    const char *call = in, *sig = in + call_len, *got_call, *got_sig, *plain;
    char *id = mn_sigid_encode(p, call, call_len, sig, sig_len);
    mn_sigid_rc rc;

    id_len = strlen(id);
    rc = mn_sigid_decode(p, id, id_len, &got_call, &got_call_len, &got_sig, &got_sig_len);
    if (!sig_len) {
        if (id_len != call_len || memcmp(id, call, call_len)) {
            if (!memchr(call, 0, call_len)) {
                FZ_FAIL("an id without signature is not the call id");
            }
        }
        return;
    }
    if (rc != MN_SIGID_OK || got_call_len != call_len || got_sig_len != sig_len
        || memcmp(got_call, call, call_len) || memcmp(got_sig, sig, sig_len)
        || got_call[call_len] || got_sig[sig_len]) {
        FZ_FAIL("decode(encode(call %zu, sig %zu)) differs (rc %d)", call_len, sig_len, rc);
    }
    for (i = MN_SIGID_PREFIX_LEN; i < id_len; i++) {
        char c = id[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_' || c == '-')) {
            FZ_FAIL("byte 0x%02x in an id", (unsigned char)c);
        }
    }
    plain = mn_sigid_plain(p, id, id_len, &plain_len);
    if (plain_len != call_len || memcmp(plain, call, call_len)) {
        FZ_FAIL("mn_sigid_plain is not the call id");
    }
}

static void decode_garbage(apr_pool_t *p, const char *id, size_t n)
{
    const char *call, *sig, *plain, *plain2;
    size_t call_len, sig_len, plain_len, plain_len2, i;
    mn_sigid_rc rc = mn_sigid_decode(p, id, n, &call, &call_len, &sig, &sig_len);

    if (rc == MN_SIGID_OK) {
        char *again = mn_sigid_encode(p, call, call_len, sig, sig_len);
        if (!sig_len || strlen(again) != n || memcmp(again, id, n)) {
            FZ_FAIL("an id decoded to a call and signature that encode differently");
        }
        return;
    }
    if (rc != (ours(id, n) ? MN_SIGID_BROKEN : MN_SIGID_PLAIN)) {
        FZ_FAIL("rc %d for an id %s our prefix", rc, ours(id, n) ? "with" : "without");
    }
    if (call != id || call_len != n || sig || sig_len) {
        FZ_FAIL("a failed decode gave parts");
    }
    plain = mn_sigid_plain(p, id, n, &plain_len);
    if (rc == MN_SIGID_PLAIN) {
        if (plain_len != n || memcmp(plain, id, n)) {
            FZ_FAIL("plain id changed");
        }
        return;
    }
    plain2 = mn_sigid_plain(p, id, n, &plain_len2);
    if (plain_len != 29 || strncmp(plain, "call_", 5) || plain_len != strlen(plain)
        || plain_len2 != plain_len || memcmp(plain, plain2, plain_len)) {
        FZ_FAIL("a broken id's stand-in is not call_ + 24 stable hex digits");
    }
    for (i = 5; i < plain_len; i++) {
        if (!((plain[i] >= '0' && plain[i] <= '9') || (plain[i] >= 'a' && plain[i] <= 'f'))) {
            FZ_FAIL("non-hex stand-in");
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    if (size < 2) {
        return 0;
    }
    fz_init();
    apr_pool_create(&p, fz_root);
    if (data[0] & 1) {
        decode_garbage(p, (const char *)data + 1, size - 1);
    }
    else {
        round_trip(p, (const char *)data + 2, size - 2, data[1]);
    }
    apr_pool_destroy(p);
    return 0;
}
