/* The SSE framer: the same bytes fed whole and in pieces cut at
 * fuzzer-chosen points must give the same events, and never an event or
 * line longer than the limit.  Input: byte 0 limit selector, byte 1 split
 * seed, then the bytes. */
#include "fuzz.h"

typedef struct {
    mn_buf log;
    size_t max;
    int stop_after;          /* the callback stops the parser after n events */
    int n;
} rec;

static int on_event(void *baton, mn_sse_kind kind, const char *event, const char *data,
                    size_t len)
{
    rec *r = baton;
    char head[96];
    int hl;
    if (len > r->max) {
        FZ_FAIL("event of %zu bytes over the %zu limit", len, r->max);
    }
    if (strlen(event) >= 64) {
        FZ_FAIL("event name over its buffer");
    }
    if (kind != MN_SSE_EVENT && kind != MN_SSE_RAW_LINE) {
        FZ_FAIL("unknown kind");
    }
    hl = snprintf(head, sizeof(head), "%d|%s|%zu|", (int)kind, event, len);
    mn_buf_append(&r->log, head, (size_t)hl);
    mn_buf_append(&r->log, data, len);
    r->n++;
    return r->stop_after && r->n >= r->stop_after ? 7 : 0;
}

static int parse(const uint8_t *data, size_t size, int pieces, rec *r)
{
    static const size_t limits[] = { 8, 64, 1024, 1 << 16 };
    mn_sse_parser p;
    fz_rng rng;
    const char *b = (const char *)data + 2;
    size_t left = size - 2, off = 0;
    int rc = 0;

    mn_buf_init(&r->log);
    r->max = limits[data[0] & 3];
    r->stop_after = (data[0] >> 2) & 7;
    r->n = 0;
    fz_rng_init(&rng, data, 2);
    mn_sse_init(&p, r->max, on_event, r);
    while (left && !rc) {
        size_t n = pieces ? fz_chunk(&rng, left) : left;
        rc = mn_sse_feed(&p, b + off, n);
        off += n;
        left -= n;
    }
    if (!rc) {
        rc = mn_sse_finish(&p);
    }
    mn_sse_free(&p);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    rec whole, split;
    int rc1, rc2;
    if (size < 2) {
        return 0;
    }
    rc1 = parse(data, size, 0, &whole);
    rc2 = parse(data, size, 1, &split);
    if (rc1 != rc2) {
        FZ_FAIL("result %d whole, %d in pieces", rc1, rc2);
    }
    if (whole.log.len != split.log.len
        || (whole.log.len && memcmp(whole.log.data, split.log.data, whole.log.len))) {
        FZ_FAIL("events differ when the input is split");
    }
    mn_buf_free(&whole.log);
    mn_buf_free(&split.log);
    return 0;
}
