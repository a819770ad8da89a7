/* Upstream error normalisers (each format's decode_error) and the key
 * scrubber, as the glue uses them: decode, scrub, serialise.
 * Input: byte 0 format and mode, byte 1 status selector, byte 2 length of
 * the Retry-After value (255: none), that value, then the upstream body.
 * Mode 3: the body is a message put into an mn_error and scrubbed directly. */
#include "fuzz.h"

static int status_for(uint8_t b)
{
    static const int common[] = { 400, 401, 403, 404, 408, 409, 413, 422, 429, 500, 502,
                                  503, 504, 529 };
    return b < 200 ? common[b % 14] : 100 + (b - 200) * 9;
}

/* The client bytes (error body + Retry-After) for one run. */
static char *run(const uint8_t *data, size_t size, const char *key, const char *body,
                 size_t blen, size_t *out_len)
{
    static const mn_format formats[] = { MN_FORMAT_OPENAI, MN_FORMAT_ANTHROPIC,
                                         MN_FORMAT_GEMINI };
    fz_env e;
    mn_error err;
    json_t *j;
    char *s, ra[64], *ra_p = NULL;
    size_t ralen = data[2], i;
    int mode = data[0] & 3;

    fz_env_init(&e, formats[mode % 3], key, 0);
    mn_error_clear(&err);
    if (ralen != 255) {
        memcpy(ra, data + 3, ralen);
        ra[ralen] = '\0';
        ra_p = ra;
    }
    if (mode == 3) {
        /* long texts cut by mn_error's buffers must not cut a key in two */
        mn_error_set(&err, status_for(data[1]), NULL, NULL, NULL, "upstream said: %.*s",
                     (int)blen, body);
    }
    else {
        mn_wire_for(e.prov.format)->decode_error(&e.ctx, status_for(data[1]), body, blen,
                                                 ra_p, &err);
    }
    fz_scrub_like_glue(&err, &e.prov);
    if (err.status < 100 || err.status > 599) {
        FZ_FAIL("status %d", err.status);
    }
    for (i = 0; err.retry_after[i]; i++) {
        if (err.retry_after[i] < '0' || err.retry_after[i] > '9') {
            FZ_FAIL_KNOWN("retry-after", "Retry-After sent to the client is not delta-seconds: '%s'",
                    err.retry_after);
        }
    }
    j = mn_error_to_json(&err, FZ_PROVIDER);
    fz_check_error_json(j, 1);
    s = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    {
        size_t n = strlen(s), r = strlen(err.retry_after);
        s = realloc(s, n + r + 2);
        s[n] = '|';
        memcpy(s + n + 1, err.retry_after, r + 1);
        *out_len = n + 1 + r;
    }
    fz_env_free(&e);
    return s;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t head, len;
    const char *body;
    char *out;

    if (size < 3) {
        return 0;
    }
    head = 3 + (data[2] == 255 ? 0 : (data[2] & 31));
    if (data[2] != 255 && data[2] > 31) {
        return 0;
    }
    if (size < head) {
        return 0;
    }
    body = (const char *)data + head;
    len = size - head;
    out = run(data, size, FZ_KEY, body, len, &len);
    if (fz_has(out, len, FZ_KEY_PREFIX)) {
        /* A prefix of our key: the upstream's own text, or what is left of
         * the key after a cut?  Replace the key in the input by another of
         * the same length: if the prefix is gone, it came from the key. */
        size_t blen = size - head, len2, i;
        char *b2 = malloc(blen + 1), *out2;
        memcpy(b2, body, blen);
        for (i = 0; i + sizeof(FZ_KEY) - 1 <= blen; i++) {
            if (!memcmp(b2 + i, FZ_KEY, sizeof(FZ_KEY) - 1)) {
                memcpy(b2 + i, FZ_KEY2, sizeof(FZ_KEY2) - 1);
            }
        }
        out2 = run(data, size, FZ_KEY2, b2, blen, &len2);
        if (!fz_has(out2, len2, FZ_KEY_PREFIX)) {
            FZ_FAIL("a prefix of the provider key reached the client: %s", out);
        }
        free(out2);
        free(b2);
    }
    free(out);
    return 0;
}
