/* Shared helpers for the cmocka unit tests: fixtures, SSE replays split at
 * any byte offset, and frame-sequence comparison as parsed JSON. */
#ifndef MN_TEST_HARNESS_H
#define MN_TEST_HARNESS_H

#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>
#include <apr_general.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>
#include "mn_buf.h"
#include "mn_sse.h"
#include "mn_wire.h"

#ifndef MN_FIXTURES
#define MN_FIXTURES "../shared/reference/fixtures"
#endif

/* MN_QUICK=1 (set under valgrind) replays fewer split offsets. */
static inline int mn_t_quick(void)
{
    const char *q = getenv("MN_QUICK");
    return q && *q == '1';
}

/* Reads MN_FIXTURES/rel; aborts the test when missing.  free() the result. */
static inline char *mn_t_fixture(const char *rel, size_t *len)
{
    char path[1024];
    FILE *f;
    long n;
    char *buf;
    snprintf(path, sizeof(path), "%s/%s", MN_FIXTURES, rel);
    f = fopen(path, "rb");
    if (!f) {
        fail_msg("fixture missing: %s", path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (fread(buf, 1, (size_t)n, f) != (size_t)n) {
        fail_msg("short read: %s", path);
    }
    buf[n] = '\0';
    fclose(f);
    if (len) {
        *len = (size_t)n;
    }
    return buf;
}

static inline json_t *mn_t_fixture_json(const char *rel)
{
    size_t len;
    char *s = mn_t_fixture(rel, &len);
    json_error_t jerr;
    json_t *j = json_loadb(s, len, 0, &jerr);
    if (!j) {
        fail_msg("fixture %s: %s", rel, jerr.text);
    }
    free(s);
    return j;
}

/* Parses JSON written in a test; a typo fails the test, not the unit. */
static inline json_t *mn_t_json(const char *text)
{
    json_error_t jerr;
    json_t *j = json_loads(text, 0, &jerr);
    if (!j) {
        fail_msg("bad test JSON (%s): %s", jerr.text, text);
    }
    return j;
}

typedef struct {
    const mn_wire *wire;
    mn_stream *st;
    mn_sink *out;
    mn_stream_status status;
} mn_t_replay;

static inline int mn_t_replay_cb(void *baton, mn_sse_kind kind, const char *event,
                                 const char *data, size_t len)
{
    mn_t_replay *r = baton;
    if (r->status != MN_STREAM_MORE) {
        return 0;
    }
    r->status = r->wire->stream_feed(r->st, kind, event, data, len, r->out);
    return 0;
}

/* Replays an upstream SSE body through the wire's stream translator, fed in
 * pieces: split == 0 whole, split == (size_t)-1 one byte at a time, otherwise
 * two reads cut at that offset.  Output (all frames) is appended to out;
 * usage and the ending error are copied out when asked for.  Returns the
 * final stream status. */
static inline mn_stream_status mn_t_replay_stream_ex(const mn_wire *wire, mn_wire_ctx *ctx,
                                                     const char *bytes, size_t len,
                                                     size_t split, mn_buf *out,
                                                     mn_usage *usage, mn_error *err,
                                                     int *has_err)
{
    mn_sse_parser p;
    mn_sink sink = mn_buf_sink(out);
    mn_t_replay r;
    r.wire = wire;
    r.out = &sink;
    r.st = wire->stream_create(ctx);
    r.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &r);
    if (split == (size_t)-1) {
        size_t i;
        for (i = 0; i < len; i++) {
            mn_sse_feed(&p, bytes + i, 1);
        }
    }
    else if (split > 0 && split < len) {
        mn_sse_feed(&p, bytes, split);
        mn_sse_feed(&p, bytes + split, len - split);
    }
    else {
        mn_sse_feed(&p, bytes, len);
    }
    mn_sse_finish(&p);
    if (r.status == MN_STREAM_MORE) {
        r.status = wire->stream_end(r.st, NULL, &sink);
    }
    if (usage) {
        *usage = *wire->stream_usage(r.st);
    }
    if (has_err) {
        const mn_error *e = wire->stream_error(r.st);
        *has_err = e != NULL;
        if (e && err) {
            *err = *e;
        }
    }
    mn_sse_free(&p);
    wire->stream_destroy(r.st);
    return r.status;
}

/* The same, when only the output and the final status matter. */
static inline mn_stream_status mn_t_replay_stream(const mn_wire *wire, mn_wire_ctx *ctx,
                                                  const char *bytes, size_t len,
                                                  size_t split, mn_buf *out)
{
    return mn_t_replay_stream_ex(wire, ctx, bytes, len, split, out, NULL, NULL, NULL);
}

/* Splits an SSE text into its data payloads (strings, in order). */
static inline json_t *mn_t_data_frames(const char *text, size_t len)
{
    json_t *arr = json_array();
    size_t i = 0;
    while (i < len) {
        const char *nl = memchr(text + i, '\n', len - i);
        size_t end = nl ? (size_t)(nl - text) : len;
        if (end - i >= 5 && !strncmp(text + i, "data:", 5)) {
            size_t s = i + 5;
            if (s < end && text[s] == ' ') {
                s++;
            }
            json_array_append_new(arr, json_stringn(text + s, end - s));
        }
        i = end + 1;
    }
    return arr;
}

/* Compares an emitted SSE stream with an expected one: same number of data
 * frames, [DONE] exactly where expected, every other payload equal as JSON
 * after removing "provider" (which must equal provider when non-NULL) and,
 * when ignore_created, "created".  Fails the test with the first difference. */
static inline void mn_t_assert_frames(const char *got, size_t got_len,
                                      const char *want, size_t want_len,
                                      const char *provider, int ignore_created)
{
    json_t *g = mn_t_data_frames(got, got_len);
    json_t *w = mn_t_data_frames(want, want_len);
    size_t i;
    if (json_array_size(g) != json_array_size(w)) {
        fail_msg("frame count %zu != expected %zu\n--- got:\n%.*s", json_array_size(g),
                 json_array_size(w), (int)got_len, got);
    }
    for (i = 0; i < json_array_size(w); i++) {
        const char *gs = json_string_value(json_array_get(g, i));
        const char *ws = json_string_value(json_array_get(w, i));
        json_t *gj, *wj;
        if (!strcmp(ws, "[DONE]") || !strcmp(gs, "[DONE]")) {
            if (strcmp(ws, gs)) {
                fail_msg("frame %zu: got %s, want %s", i, gs, ws);
            }
            continue;
        }
        gj = json_loads(gs, 0, NULL);
        wj = json_loads(ws, 0, NULL);
        if (!gj) {
            fail_msg("frame %zu is not JSON: %s", i, gs);
        }
        if (provider) {
            json_t *pv = json_object_get(gj, "provider");
            if (!json_is_string(pv) || strcmp(json_string_value(pv), provider)) {
                fail_msg("frame %zu lacks provider \"%s\": %s", i, provider, gs);
            }
        }
        json_object_del(gj, "provider");
        if (ignore_created) {
            json_object_del(gj, "created");
            json_object_del(wj, "created");
        }
        if (!json_equal(gj, wj)) {
            fail_msg("frame %zu differs\n got: %s\nwant: %s", i, gs, ws);
        }
        json_decref(gj);
        json_decref(wj);
    }
    json_decref(g);
    json_decref(w);
}

/* The stream a client that did not ask for include_usage must see, derived
 * from an expected stream that assumes it did (fixtures README): every
 * "usage" member removed and the usage-only chunk (choices: []) dropped;
 * [DONE] and non-JSON frames kept as they are.  free() the result. */
static inline char *mn_t_without_usage(const char *text, size_t len, size_t *out_len)
{
    json_t *frames = mn_t_data_frames(text, len);
    mn_buf b;
    size_t i;
    json_t *fr;

    mn_buf_init(&b);
    json_array_foreach(frames, i, fr) {
        const char *payload = json_string_value(fr);
        json_t *j = json_loads(payload, 0, NULL);
        json_t *choices = json_object_get(j, "choices");
        char *d;
        if (!json_is_object(j)) {
            json_decref(j);
            mn_buf_append(&b, "data: ", 6);
            mn_buf_append(&b, payload, strlen(payload));
            mn_buf_append(&b, "\n\n", 2);
            continue;
        }
        if (json_is_array(choices) && json_array_size(choices) == 0) {
            json_decref(j);
            continue;
        }
        json_object_del(j, "usage");
        d = json_dumps(j, JSON_COMPACT);
        mn_buf_append(&b, "data: ", 6);
        mn_buf_append(&b, d, strlen(d));
        mn_buf_append(&b, "\n\n", 2);
        free(d);
        json_decref(j);
    }
    json_decref(frames);
    *out_len = b.len;
    return b.data;
}

/* A wire context for tests: provider named `name`, clock 1767225600. */
static inline void mn_t_ctx(mn_wire_ctx *ctx, apr_pool_t *p, mn_provider *prov,
                            const char *name, mn_format format, int stream,
                            int include_usage)
{
    memset(prov, 0, sizeof(*prov));
    prov->name = name;
    prov->format = format;
    prov->key = "sk-test-key";
    prov->max_tokens = 4096;
    memset(ctx, 0, sizeof(*ctx));
    ctx->pool = p;
    ctx->provider = prov;
    ctx->provider_name = name;
    ctx->model = "test-model";
    ctx->stream = stream;
    ctx->include_usage = include_usage;
    ctx->created = 1767225600;
    ctx->client_headers = apr_table_make(p, 4);
}

#endif
