/* The Responses passthrough (mn_wire_openai_responses) on outside bytes.
 * Byte 0 mod 3: 0 the rest is an upstream event stream, fed through the SSE
 * framer in chunks cut at points seeded by byte 1 (bit 3 of byte 0: end with
 * a timeout cause); 1 a whole answer; 2 a client body to encode.
 * Stream: only `event: T\ndata: D\n\n` blocks, D a JSON object whose type is
 * T, every `response` object with our provider, nothing after a final event
 * but our `error`, no key in an error or response.failed event.
 * Answer: a JSON object with our provider, or a 502.
 * Body: the upstream body has the routed model and none of the gateway's
 * fields. */
#include "fuzz.h"
#include "mn_face_responses.h"

typedef struct {
    mn_stream *st;
    mn_sink *out;
    mn_stream_status status;
} feed;

static int on_event(void *baton, mn_sse_kind kind, const char *event, const char *data,
                    size_t len)
{
    feed *f = baton;
    if (f->status == MN_STREAM_MORE) {
        f->status = mn_wire_openai_responses.stream_feed(f->st, kind, event, data, len, f->out);
    }
    return f->status != MN_STREAM_MORE;
}

static void check_provider(json_t *resp)
{
    const char *p = json_string_value(json_object_get(resp, "provider"));
    if (!p || strcmp(p, FZ_PROVIDER)) {
        FZ_FAIL("a Response without our provider");
    }
}

static void check_events(const char *s, size_t len)
{
    size_t off = 0;
    int final = 0;

    while (off < len) {
        const char *end = memmem(s + off, len - off, "\n\n", 2);
        const char *nl;
        const char *type;
        json_t *ev;
        size_t tlen;

        if (!end || strncmp(s + off, "event: ", 7)
            || !(nl = memchr(s + off, '\n', (size_t)(end - s - off)))
            || strncmp(nl, "\ndata: ", 7)) {
            FZ_FAIL("a block that is not event + data");
        }
        ev = json_loadb(nl + 7, (size_t)(end - nl - 7), 0, NULL);
        type = json_string_value(json_object_get(ev, "type"));
        tlen = (size_t)(nl - s - off - 7);
        if (!json_is_object(ev) || !type || strlen(type) != tlen || memcmp(type, s + off + 7, tlen)) {
            FZ_FAIL("an event whose data is not an object of its type");
        }
        if (final && (final == 2 || strcmp(type, "error"))) {
            FZ_FAIL("an event after the final one");
        }
        if (json_is_object(json_object_get(ev, "response"))) {
            check_provider(json_object_get(ev, "response"));
        }
        if (!strcmp(type, "error") || !strcmp(type, "response.failed")) {
            char *dump = json_dumps(ev, JSON_COMPACT);
            if (fz_has(dump, dump ? strlen(dump) : 0, FZ_KEY)) {
                FZ_FAIL("a key in an error event");
            }
            free(dump);
        }
        final = !strcmp(type, "error") || !strcmp(type, "response.completed")
                || !strcmp(type, "response.incomplete") ? 2
                : !strcmp(type, "response.failed") ? 1 : final;
        json_decref(ev);
        off = (size_t)(end - s) + 2;
    }
}

static void run_stream(const uint8_t *data, size_t size)
{
    fz_env e;
    mn_buf out;
    mn_sink sink;
    mn_sse_parser p;
    feed f;
    const char *body = (const char *)data + 2;
    size_t left = size - 2;
    const mn_error *err;

    fz_env_init(&e, MN_FORMAT_OPENAI, FZ_KEY, 4);
    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    f.st = mn_wire_openai_responses.stream_create(&e.ctx);
    f.out = &sink;
    f.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 16, on_event, &f);
    fz_sse_split(&p, data, body, left, &f.status);
    f.status = fz_stream_end(&mn_wire_openai_responses, f.st, f.status, data[0] & 8, &sink);
    err = mn_wire_openai_responses.stream_error(f.st);
    if (f.status == MN_STREAM_MORE || (f.status == MN_STREAM_FAILED && !err)
        || (err && (err->status < 400 || err->status > 599))) {
        FZ_FAIL("a stream that ended without its status or error");
    }
    if (err && (fz_has(err->message, strlen(err->message), FZ_KEY))) {
        FZ_FAIL("a key in the stream's error");
    }
    fz_check_usage(mn_wire_openai_responses.stream_usage(f.st));
    mn_wire_openai_responses.stream_destroy(f.st);
    mn_sse_free(&p);
    check_events(out.data ? out.data : "", out.len);
    mn_buf_free(&out);
    fz_env_free(&e);
}

static void run_answer(const uint8_t *data, size_t size)
{
    fz_env e;
    const char *out;
    size_t n;
    mn_usage u;
    mn_error err;

    fz_env_init(&e, MN_FORMAT_OPENAI, FZ_KEY, 0);
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    if (mn_wire_openai_responses.decode_response_bytes(&e.ctx, (const char *)data + 1, size - 1,
                                                       &out, &n, &u, &err)) {
        if (err.status != 502) {
            FZ_FAIL("a bad answer that is not a 502");
        }
    }
    else {
        json_t *o = json_loadb(out, n, 0, NULL);
        if (!json_is_object(o)) {
            FZ_FAIL("an answer the client cannot read");
        }
        check_provider(o);
        json_decref(o);
        fz_check_usage(&u);
    }
    fz_env_free(&e);
}

static void run_encode(const uint8_t *data, size_t size)
{
    static const char *const gone[] = { "tags", "metadata", "trace", NULL };
    json_t *in = json_loadb((const char *)data + 1, size - 1, 0, NULL), *up;
    fz_env e;
    mn_upstream_req req;
    mn_error err;
    int i;

    if (!json_is_object(in)) {
        json_decref(in);
        return;
    }
    fz_env_init(&e, MN_FORMAT_OPENAI, FZ_KEY, (data[0] & 4) ? 4 : 0);
    e.ctx.face_body = in;
    memset(&req, 0, sizeof(req));
    if (mn_wire_openai_responses.encode_request(&e.ctx, NULL, &req, &err)) {
        FZ_FAIL("an object body not encoded");
    }
    up = json_loadb(req.body, req.body_len, 0, NULL);
    if (strcmp(json_string_value(json_object_get(up, "model")) ? json_string_value(json_object_get(up, "model")) : "", "fuzz-model")
        || !json_object_get(up, "store") || json_is_null(json_object_get(up, "store"))) {
        FZ_FAIL("the upstream body lacks the routed model or store");
    }
    for (i = 0; gone[i]; i++) {
        if (json_object_get(up, gone[i])) {
            FZ_FAIL("a gateway field went upstream");
        }
    }
    json_decref(up);
    json_decref(in);
    fz_env_free(&e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 2) {
        return 0;
    }
    switch (data[0] % 3) {
    case 0:
        run_stream(data, size);
        break;
    case 1:
        run_answer(data, size);
        break;
    default:
        run_encode(data, size);
        break;
    }
    return 0;
}
