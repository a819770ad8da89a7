/* Client body -> JSON parse -> policy -> every encoder (openai, anthropic,
 * gemini) on the same request, as the glue does for fallbacks.
 * Input: byte 0 flags (bit 1 reasoning_content), then the client body. */
#include "fuzz.h"
#include "mn_policy.h"

/* Encoders may not blow a request up beyond any proportion to its size. */
#define FZ_MAX_GROWTH(n) (64 * (n) + 256 * 1024)

static void check_err(const mn_error *err)
{
    json_t *j = mn_error_to_json(err, FZ_PROVIDER);
    /* errors may quote the client's own text: a key in it is the client's */
    fz_check_error_json(j, 0);
    if (err->status < 400 || err->status > 599) {
        FZ_FAIL("encoder error with status %d", err->status);
    }
    json_decref(j);
}

/* Encodes req for format f with key; returns whether the body (or the
 * error) holds the key prefix. */
static int encode(json_t *req, const mn_policy_result *pol, mn_format f, const char *key,
                  unsigned flags, size_t in_size)
{
    fz_env e;
    mn_upstream_req up;
    mn_error err;
    int rc;

    fz_env_init(&e, f, key, (flags & 2) | (pol->stream ? 4 : 0) | (pol->include_usage ? 1 : 0));
    memset(&up, 0, sizeof(up));
    mn_error_clear(&err);
    if (mn_wire_for(f)->encode_request(&e.ctx, req, &up, &err)) {
        check_err(&err);
        fz_env_free(&e);
        return strstr(err.message, FZ_KEY_PREFIX) || strstr(err.param, FZ_KEY_PREFIX)
               || strstr(err.code, FZ_KEY_PREFIX) || strstr(err.type, FZ_KEY_PREFIX);
    }
    {
        json_error_t jerr;
        json_t *body;
        if (!up.body || up.body_len != strlen(up.body)) {
            FZ_FAIL("%s: body length does not match (NUL inside?)", mn_format_name(f));
        }
        if (up.body_len > FZ_MAX_GROWTH(in_size)) {
            FZ_FAIL("%s: %zu-byte request became a %zu-byte upstream body",
                    mn_format_name(f), in_size, up.body_len);
        }
        body = json_loadb(up.body, up.body_len, 0, &jerr);
        if (!json_is_object(body)) {
            FZ_FAIL("%s: upstream body is not a JSON object: %s", mn_format_name(f), jerr.text);
        }
        json_decref(body);
        if (!up.path || up.path[0] != '/') {
            FZ_FAIL("%s: bad path", mn_format_name(f));
        }
    }
    rc = fz_has(up.body, up.body_len, FZ_KEY_PREFIX);
    fz_env_free(&e);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const mn_format formats[] = { MN_FORMAT_OPENAI, MN_FORMAT_ANTHROPIC,
                                         MN_FORMAT_GEMINI };
    json_t *req, *orig;
    mn_policy_result pol;
    mn_error err;
    size_t i;

    if (size < 1) {
        return 0;
    }
    fz_init();
    req = json_loadb((const char *)data + 1, size - 1, 0, NULL);
    if (!req) {
        return 0;
    }
    mn_error_clear(&err);
    if (mn_policy_apply(req, 0, &pol, &err)) {
        check_err(&err);
        json_decref(req);
        return 0;
    }
    orig = json_deep_copy(req);
    for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        if (encode(req, &pol, formats[i], FZ_KEY, data[0], size) == 1) {
            /* the client's own text, or the key we hold? */
            json_t *copy = json_deep_copy(orig);
            if (encode(copy, &pol, formats[i], FZ_KEY2, data[0], size) == 0) {
                FZ_FAIL("%s: the provider key went into the upstream body or an error",
                        mn_format_name(formats[i]));
            }
            json_decref(copy);
        }
    }
    json_decref(orig);
    mn_policy_result_clear(&pol);
    json_decref(req);
    return 0;
}
