/* CORS from a browser's headers (src/core/cors.c): Origin and
 * Access-Control-Request-Headers are the client's bytes.
 * Byte 0: bit 0 an OPTIONS request, bit 1 ManiacCORS * (else a list of two
 * origins), bit 2 with Access-Control-Request-Method; the rest is Origin,
 * then (after the first newline) Access-Control-Request-Headers.
 * Invariants: an origin is allowed exactly when it equals a configured one
 * (case aside) or the policy is *; what goes back into response headers is
 * a configured origin (or *) and, for a preflight, a header list made of
 * allowed names, commas and blanks only; the verdict matches. */
#include "fuzz.h"
#include <strings.h>
#include <apr_strings.h>
#include "mn_cors.h"

static const char *const conf[] = { "https://App.example.com/", "http://localhost:8080" };

static int listed(const char *o)
{
    return !strcasecmp(o, "https://app.example.com") || !strcasecmp(o, "http://localhost:8080");
}

static void check_value(const char *v, int list_chars)
{
    for (; *v; v++) {
        unsigned char c = (unsigned char)*v;
        if (c < 0x20 || c == 0x7f) {
            if (!(list_chars && c == '\t')) {
                FZ_FAIL("control byte 0x%02x in a response header", c);
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *p;
    mn_cors c;
    apr_table_t *in, *out;
    const char *err, *bad = NULL, *acao, *acah;
    char *origin, *acrh;
    mn_cors_verdict v;
    int any, options, acrm, allowed;

    if (size < 1) {
        return 0;
    }
    fz_init();
    apr_pool_create(&p, fz_root);
    options = data[0] & 1;
    any = (data[0] & 2) != 0;
    acrm = (data[0] & 4) != 0;
    origin = apr_pstrmemdup(p, (const char *)data + 1, size - 1);
    acrh = strchr(origin, '\n');
    if (acrh) {
        *acrh++ = '\0';
    }
    if (any) {
        const char *star[] = { "*" };
        err = mn_cors_parse(p, 1, star, &c);
    }
    else {
        err = mn_cors_parse(p, 2, conf, &c);
    }
    if (err) {
        FZ_FAIL("configuration refused: %s", err);
    }
    in = apr_table_make(p, 4);
    out = apr_table_make(p, 8);
    apr_table_setn(in, "Origin", origin);
    if (acrh) {
        apr_table_setn(in, "Access-Control-Request-Headers", acrh);
    }
    if (acrm) {
        apr_table_setn(in, "Access-Control-Request-Method", "POST");
    }
    v = mn_cors_apply(p, &c, options, in, out, &bad);
    allowed = *origin && (any || listed(origin));
    if (mn_cors_origin_allowed(&c, origin) != allowed) {
        FZ_FAIL("origin '%s' allowed: %d", origin, !allowed);
    }
    acao = apr_table_get(out, "Access-Control-Allow-Origin");
    if (!allowed != !acao || (acao && strcmp(acao, any ? "*" : origin))) {
        FZ_FAIL("Access-Control-Allow-Origin %s for '%s'", acao ? acao : "(none)", origin);
    }
    if (acao) {
        check_value(acao, 0);
    }
    acah = apr_table_get(out, "Access-Control-Allow-Headers");
    if (acah) {
        check_value(acah, 1);
    }
    if (options && acrm) {
        if (!allowed ? v != MN_CORS_BAD_ORIGIN
                     : (v != MN_CORS_PREFLIGHT_OK && v != MN_CORS_BAD_HEADER)) {
            FZ_FAIL("preflight verdict %d", v);
        }
        if (v == MN_CORS_BAD_HEADER && (!bad || !*bad)) {
            FZ_FAIL("bad header without a name");
        }
    }
    else if (v != MN_CORS_GO_ON) {
        FZ_FAIL("verdict %d for a request that is no preflight", v);
    }
    apr_pool_destroy(p);
    return 0;
}
