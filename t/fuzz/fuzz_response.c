/* Non-streaming answer decoder of one wire format (FZ_FORMAT), and its byte
 * fast path when it has one.  Input: byte 0 flags (bit 1
 * reasoning_content), then the upstream's 2xx body. */
#include "fuzz.h"

static void check_error(mn_error *err, const mn_provider *prov)
{
    json_t *j;
    fz_scrub_like_glue(err, prov);
    j = mn_error_to_json(err, FZ_PROVIDER);
    fz_check_error_json(j, 1);
    json_decref(j);
}

static void check_answer(const char *s, size_t len, const mn_usage *u)
{
    json_error_t jerr;
    json_t *j;
    if (memchr(s, '\0', len)) {
        FZ_FAIL_KNOWN("nul", "NUL byte in the answer");
    }
    j = json_loadb(s, len, 0, &jerr);
    if (!json_is_object(j)) {
        if (fz_skip("answer-json")) {
            return;
        }
        FZ_FAIL("answer is not a JSON object (%s): %.*s", jerr.text, (int)len, s);
    }
    fz_check_provider(j);
    fz_check_usage_json(json_object_get(j, "usage"));
    fz_check_usage(u);
    json_decref(j);
}

/* One run with the given key: the client bytes of both decoders, joined. */
static char *run(const uint8_t *data, size_t size, const char *key, size_t *out_len)
{
    fz_env e;
    const mn_wire *w = mn_wire_for(FZ_FORMAT);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    mn_buf all;
    json_t *out = NULL;
    mn_usage u;
    mn_error err;

    fz_env_init(&e, FZ_FORMAT, key, data[0] & 2);
    mn_buf_init(&all);
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    if (w->decode_response(&e.ctx, body, len, &out, &u, &err) == 0) {
        char *s = json_dumps(out, JSON_COMPACT);
        if (!s) {
            FZ_FAIL("decoded answer cannot be serialised");
        }
        check_answer(s, strlen(s), &u);
        mn_buf_append(&all, s, strlen(s));
        free(s);
        json_decref(out);
    }
    else {
        check_error(&err, &e.prov);
        mn_buf_append(&all, err.message, strlen(err.message));
    }
    if (w->decode_response_bytes) {
        const char *bytes;
        size_t blen;
        memset(&u, 0, sizeof(u));
        mn_error_clear(&err);
        if (w->decode_response_bytes(&e.ctx, body, len, &bytes, &blen, &u, &err) == 0) {
            check_answer(bytes, blen, &u);
            mn_buf_append(&all, bytes, blen);
        }
        else {
            check_error(&err, &e.prov);
            mn_buf_append(&all, err.message, strlen(err.message));
        }
    }
    fz_env_free(&e);
    *out_len = all.len;
    if (!all.data) {
        all.data = calloc(1, 1);
    }
    return all.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    char *out;
    if (size < 1) {
        return 0;
    }
    out = run(data, size, FZ_KEY, &len);
    fz_check_key_traced(data, size, out, len, run);
    return 0;
}
