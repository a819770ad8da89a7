/* mn_cors: the ManiacCORS policy (see include/mn_cors.h). */
#include <string.h>
#include <strings.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include "mn_cors.h"

/* An origin as browsers serialise it: scheme "://" host [":" port], no path. */
static int origin_valid(const char *o)
{
    const char *host = strstr(o, "://");
    if (!host || host == o) {
        return 0;
    }
    host += 3;
    if (!*host) {
        return 0;
    }
    for (; *host; host++) {
        if (!(apr_isalnum(*host) || *host == '.' || *host == '-' || *host == ':'
              || *host == '[' || *host == ']')) {
            return 0;
        }
    }
    return 1;
}

static char *lower(apr_pool_t *p, const char *s, size_t len)
{
    char *out = apr_pstrmemdup(p, s, len);
    char *c;
    for (c = out; *c; c++) {
        *c = (char)apr_tolower(*c);
    }
    return out;
}

const char *mn_cors_parse(apr_pool_t *p, int argc, const char *const *argv, mn_cors *out)
{
    int i;
    memset(out, 0, sizeof(*out));
    if (argc < 1) {
        return "ManiacCORS needs 'off', '*' or one or more origins (https://app.example.com)";
    }
    if (argc == 1 && !strcmp(argv[0], "off")) {
        out->mode = MN_CORS_OFF;
        return NULL;
    }
    if (argc == 1 && !strcmp(argv[0], "*")) {
        out->mode = MN_CORS_ANY;
        return NULL;
    }
    out->mode = MN_CORS_LIST;
    out->origins = apr_array_make(p, argc, sizeof(const char *));
    for (i = 0; i < argc; i++) {
        size_t len = strlen(argv[i]);
        /* "https://app.example.com/" is what people paste from an address bar */
        if (len && argv[i][len - 1] == '/') {
            len--;
        }
        if (!strcmp(argv[i], "*") || !strcmp(argv[i], "off")) {
            return apr_psprintf(p, "'%s' must be the only argument of ManiacCORS", argv[i]);
        }
        if (!origin_valid(lower(p, argv[i], len))) {
            return apr_psprintf(p, "bad origin '%s': expected scheme://host[:port] "
                                "(no path), '*' or 'off'", argv[i]);
        }
        *(const char **)apr_array_push(out->origins) = lower(p, argv[i], len);
    }
    return NULL;
}

const mn_cors *mn_cors_merge(const mn_cors *outer, const mn_cors *inner)
{
    return inner && inner->mode != MN_CORS_UNSET ? inner : outer;
}

int mn_cors_origin_allowed(const mn_cors *c, const char *origin)
{
    int i;
    if (!c || !origin || !*origin) {
        return 0;
    }
    if (c->mode == MN_CORS_ANY) {
        return 1;
    }
    if (c->mode != MN_CORS_LIST) {
        return 0;
    }
    for (i = 0; i < c->origins->nelts; i++) {
        if (!strcasecmp(origin, APR_ARRAY_IDX(c->origins, i, const char *))) {
            return 1;
        }
    }
    return 0;
}

/* Headers the openai and anthropic SDKs (and plain fetch code) send. */
static int header_allowed(const char *h)
{
    static const char *const names[] = {
        "authorization", "content-type", "x-api-key", "accept", "accept-language",
        "content-language", "openai-organization", "openai-project", "openai-beta",
        "anthropic-version", "anthropic-beta", "anthropic-dangerous-direct-browser-access",
        "idempotency-key", "x-request-id", "traceparent", "tracestate", NULL
    };
    int i;
    if (!strncmp(h, "x-stainless-", 12) && h[12]) {
        /* the list is echoed into Access-Control-Allow-Headers: a name
         * only, no control bytes or other header syntax */
        for (i = 12; h[i]; i++) {
            if (!apr_isalnum(h[i]) && h[i] != '-') {
                return 0;
            }
        }
        return 1;
    }
    for (i = 0; names[i]; i++) {
        if (!strcmp(h, names[i])) {
            return 1;
        }
    }
    return 0;
}

/* HTTP's blanks only: the list goes back to the browser as it came */
#define BLANK(c) ((c) == ' ' || (c) == '\t')

int mn_cors_request_headers_ok(apr_pool_t *p, const char *list, const char **bad)
{
    const char *s = list ? list : "";
    while (*s) {
        const char *end;
        size_t len;
        char *name;
        while (*s == ',' || BLANK(*s)) {
            s++;
        }
        end = s;
        while (*end && *end != ',') {
            end++;
        }
        len = (size_t)(end - s);
        while (len && BLANK(s[len - 1])) {
            len--;
        }
        if (len) {
            name = lower(p, s, len);
            if (!header_allowed(name)) {
                *bad = name;
                return 0;
            }
        }
        s = end;
    }
    return 1;
}

mn_cors_verdict mn_cors_apply(apr_pool_t *p, const mn_cors *c, int is_options,
                              apr_table_t *in, apr_table_t *out, const char **bad)
{
    const char *origin = apr_table_get(in, "Origin");
    const char *acrh = apr_table_get(in, "Access-Control-Request-Headers");
    int preflight = is_options && origin && apr_table_get(in, "Access-Control-Request-Method");

    if (!c || (c->mode != MN_CORS_LIST && c->mode != MN_CORS_ANY)) {
        return MN_CORS_GO_ON;
    }
    /* caches must keep answers to different origins apart */
    apr_table_mergen(out, "Vary", "Origin");
    if (!mn_cors_origin_allowed(c, origin)) {
        return preflight ? MN_CORS_BAD_ORIGIN : MN_CORS_GO_ON;
    }
    apr_table_setn(out, "Access-Control-Allow-Origin",
                   c->mode == MN_CORS_ANY ? "*" : apr_pstrdup(p, origin));
    if (!preflight) {
        apr_table_setn(out, "Access-Control-Expose-Headers", MN_CORS_EXPOSE_HEADERS);
        return MN_CORS_GO_ON;
    }
    apr_table_mergen(out, "Vary", "Access-Control-Request-Headers");
    if (!mn_cors_request_headers_ok(p, acrh, bad)) {
        return MN_CORS_BAD_HEADER;
    }
    apr_table_setn(out, "Access-Control-Allow-Methods", MN_CORS_ALLOW_METHODS);
    if (acrh && *acrh) {
        apr_table_setn(out, "Access-Control-Allow-Headers", apr_pstrdup(p, acrh));
    }
    apr_table_setn(out, "Access-Control-Max-Age", MN_CORS_MAX_AGE);
    return MN_CORS_PREFLIGHT_OK;
}
