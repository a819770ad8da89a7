/* The Responses face on outside bytes.
 * Byte 0 even: the rest is a client body: mapped (mn_resp_request), then the
 * chat request must pass through the policy and every encoder as the glue
 * sends it; errors are 400s naming a param.
 * Byte 0 odd: the rest is chat frames (split at blank lines, written in
 * random pieces) as a translator would write them: every event written is
 * `event: <type>\ndata: <object with that type and the next
 * sequence_number>\n\n`, and nothing follows a final event. */
#include "fuzz.h"
#include "mn_face_responses.h"
#include "mn_policy.h"

static void check_request(const uint8_t *data, size_t size)
{
    static const mn_format formats[] = { MN_FORMAT_OPENAI, MN_FORMAT_ANTHROPIC,
                                         MN_FORMAT_GEMINI };
    json_t *in = json_loadb((const char *)data, size, 0, NULL);
    apr_pool_t *p;
    mn_resp_req r;
    mn_error err;
    size_t i;

    if (!in) {
        return;
    }
    apr_pool_create(&p, NULL);
    mn_error_clear(&err);
    if (mn_resp_request(p, in, &r, &err)) {
        if (err.status != 400 || r.chat) {
            FZ_FAIL("mapping error with status %d", err.status);
        }
    }
    else {
        mn_policy_result pol;
        if (!json_is_array(json_object_get(r.chat, "messages"))) {
            FZ_FAIL("chat request without messages");
        }
        mn_error_clear(&err);
        if (!mn_policy_apply(r.chat, 0, &pol, &err)) {
            for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                fz_env e;
                mn_upstream_req up;
                json_t *copy = json_deep_copy(r.chat);
                fz_env_init(&e, formats[i], FZ_KEY, pol.stream ? 5 : 0);
                memset(&up, 0, sizeof(up));
                mn_error_clear(&err);
                if (mn_wire_for(formats[i])->encode_request(&e.ctx, copy, &up, &err)
                    && (err.status < 400 || err.status > 599)) {
                    FZ_FAIL("encoder error with status %d", err.status);
                }
                json_decref(copy);
                fz_env_free(&e);
            }
            mn_policy_result_clear(&pol);
        }
        mn_resp_req_clear(&r);
    }
    apr_pool_destroy(p);
    json_decref(in);
}

/* Every event in out is well formed, numbered 0, 1, 2..., and nothing
 * follows response.completed / response.incomplete / error. */
static void check_events(const char *s, size_t len)
{
    json_int_t want = 0;
    int ended = 0;
    size_t off = 0;

    while (off < len) {
        const char *end = memmem(s + off, len - off, "\n\n", 2);
        const char *nl, *type, *data;
        json_t *ev;
        if (!end) {
            FZ_FAIL("an event without its blank line");
        }
        if (ended) {
            FZ_FAIL("an event after the final one");
        }
        if (strncmp(s + off, "event: ", 7) || !(nl = memchr(s + off, '\n', (size_t)(end - s - off)))
            || strncmp(nl + 1, "data: ", 6)) {
            FZ_FAIL("not an `event:` + `data:` frame");
        }
        type = s + off + 7;
        data = nl + 7;
        ev = json_loadb(data, (size_t)(end - data), 0, NULL);
        if (!json_is_object(ev) || json_integer_value(json_object_get(ev, "sequence_number")) != want
            || !json_is_string(json_object_get(ev, "type"))
            || strncmp(json_string_value(json_object_get(ev, "type")), type, (size_t)(nl - type))
            || json_string_length(json_object_get(ev, "type")) != (size_t)(nl - type)) {
            FZ_FAIL("event %lld: bad data", (long long)want);
        }
        ended = !strcmp(json_string_value(json_object_get(ev, "type")), "response.completed")
                || !strcmp(json_string_value(json_object_get(ev, "type")), "response.incomplete")
                || !strcmp(json_string_value(json_object_get(ev, "type")), "error");
        json_decref(ev);
        want++;
        off = (size_t)(end - s) + 2;
    }
}

static void check_stream(const uint8_t *data, size_t size)
{
    json_t *echo = json_pack("{s:s}", "model", "fuzz/model");
    mn_resp_ctx c = { "fz", 1767225600, FZ_PROVIDER, echo, 4096 };
    mn_buf got;
    mn_sink out, in;
    mn_resp_stream *s;
    fz_rng rng;
    size_t off = 0;

    mn_buf_init(&got);
    out = mn_buf_sink(&got);
    s = mn_resp_stream_create(&c, &out);
    in = mn_resp_stream_sink(s);
    fz_rng_init(&rng, data, size < 16 ? size : 16);
    while (off < size) {
        const char *end = memmem(data + off, size - off, "\n\n", 2);
        size_t flen = end ? (size_t)(end - (const char *)data) - off + 2 : size - off;
        size_t done = 0;
        while (done < flen) {
            size_t n = fz_chunk(&rng, flen - done);
            in.write(in.baton, (const char *)data + off + done, n);
            done += n;
        }
        in.frame_end(in.baton);
        off += flen;
    }
    if (mn_resp_stream_status(s) == MN_RESP_FAILED && !mn_resp_stream_error(s)) {
        FZ_FAIL("failed without an error");
    }
    check_events(got.data ? got.data : "", got.len);
    mn_resp_stream_destroy(s);
    mn_buf_free(&got);
    json_decref(echo);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    fz_init();
    if (data[0] & 1) {
        check_stream(data + 1, size - 1);
    }
    else {
        check_request(data + 1, size - 1);
    }
    return 0;
}
