/* Stream decoder of one wire format (FZ_FORMAT), fed through the SSE framer
 * in chunks cut at fuzzer-chosen points, as the glue does.
 * Input: byte 0 flags (bit 0 include_usage, bit 1 reasoning_content, bit 3
 * end with a timeout cause), byte 1 split seed, then the upstream body. */
#include "fuzz.h"

typedef struct {
    const mn_wire *wire;
    mn_stream *st;
    mn_sink *out;
    mn_stream_status status;
} feed;

static int on_event(void *baton, mn_sse_kind kind, const char *event, const char *data,
                    size_t len)
{
    feed *f = baton;
    if (f->status == MN_STREAM_MORE) {
        f->status = f->wire->stream_feed(f->st, kind, event, data, len, f->out);
    }
    return f->status != MN_STREAM_MORE;
}

/* One run with the given key; returns the client bytes (free them). */
static char *run(const uint8_t *data, size_t size, const char *key, size_t *out_len)
{
    fz_env e;
    mn_buf out;
    mn_sink sink;
    mn_sse_parser p;
    feed f;
    const char *body = (const char *)data + 2;
    size_t left = size - 2;
    unsigned flags = data[0];

    fz_env_init(&e, FZ_FORMAT, key, (flags & 3) | 4);
    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    f.wire = mn_wire_for(FZ_FORMAT);
    f.st = f.wire->stream_create(&e.ctx);
    f.out = &sink;
    f.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 16, on_event, &f);
    fz_sse_split(&p, data, body, left, &f.status);
    f.status = fz_stream_end(f.wire, f.st, f.status, flags & 8, &sink);
    if (f.status == MN_STREAM_MORE) {
        FZ_FAIL("stream_end left the stream open");
    }
    /* a finished translator writes nothing more, whatever arrives */
    {
        size_t before = out.len;
        f.wire->stream_feed(f.st, MN_SSE_EVENT, "", "{}", 2, &sink);
        f.wire->stream_end(f.st, NULL, &sink);
        if (out.len != before) {
            FZ_FAIL("output after the stream ended");
        }
    }
    fz_check_usage(f.wire->stream_usage(f.st));
    f.wire->stream_destroy(f.st);
    mn_sse_free(&p);
    fz_env_free(&e);
    *out_len = out.len;
    if (!out.data) {
        out.data = calloc(1, 1);
    }
    return out.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    char *out;
    if (size < 2) {
        return 0;
    }
    out = run(data, size, FZ_KEY, &len);
    fz_check_sse(out, len, 1, FZ_FORMAT == MN_FORMAT_ANTHROPIC);
    fz_check_key_traced(data, size, out, len, run);
    return 0;
}
