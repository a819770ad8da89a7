/* OpenAI chunk frames -> Anthropic Messages events (see mn_face_messages.h).
 *
 * The translator sits between the pipeline and the client as a sink: the
 * outbound wire units and the glue keep writing the OpenAI frames they
 * always write, and this unit turns each complete frame into events:
 *
 *   first chunk      message_start (usage zero: chat reports usage at the
 *                    end), then ping, as Anthropic does
 *   reasoning        a thinking block (thinking_delta; no signature exists)
 *   content          a text block (text_delta)
 *   tool_calls       a tool_use block per call (input_json_delta)
 *   finish_reason    closes the open block, remembers the stop_reason
 *   usage chunk      remembered
 *   [DONE]           message_delta (stop_reason and the usage) and
 *                    message_stop
 *   error frame      event: error (and nothing after it)
 *
 * Frames that already are Anthropic events (`event: ...`, as the
 * passthrough wire writes them) leave as they are, so the glue may put the
 * translator in front of any try.
 *
 * One block is open at a time, as Anthropic streams them; a block is
 * closed when another kind starts.  Argument deltas for a call whose block
 * was closed meanwhile (interleaved parallel calls, rare) still go to that
 * call's own block index.  State is a few integers and one frame buffer
 * bounded by max_frame. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "mn_face_messages.h"

#define MAX_TOOLS 64

enum { OPEN_NONE = 0, OPEN_TEXT, OPEN_THINKING, OPEN_TOOL };

struct mn_fm_stream {
    mn_sink *down;
    mn_sink self;
    mn_buf frame;
    size_t max_frame;
    int overflow;
    int started;
    int ended;
    int open;                 /* OPEN_* of the block open now */
    int open_index;           /* its Anthropic index */
    int next_index;
    int tool_block[MAX_TOOLS];  /* OpenAI tool index -> block index, -1 none */
    const char *stop_reason;
    mn_usage usage;
    char provider[128];
};

static void emit(mn_fm_stream *s, const char *type, json_t *data)
{
    mn_sink *out = s->down;
    if (s->provider[0]) {
        json_object_set_new(data, "provider", json_string(s->provider));
    }
    out->write(out->baton, "event: ", 7);
    out->write(out->baton, type, strlen(type));
    out->write(out->baton, "\ndata: ", 7);
    mn_json_write(out, data);
    out->write(out->baton, "\n\n", 2);
    out->frame_end(out->baton);
    json_decref(data);
}

static void start(mn_fm_stream *s, json_t *chunk)
{
    json_t *id = json_object_get(chunk, "id"), *model = json_object_get(chunk, "model");
    mn_usage zero;

    memset(&zero, 0, sizeof(zero));
    s->started = 1;
    emit(s, "message_start", json_pack(
        "{s:s,s:{s:s,s:s,s:s,s:s,s:[],s:n,s:n,s:o}}", "type", "message_start", "message",
        "id", json_is_string(id) ? json_string_value(id) : "",
        "type", "message", "role", "assistant",
        "model", json_is_string(model) ? json_string_value(model) : "",
        "content", "stop_reason", "stop_sequence", "usage", mn_fm_usage_json(&zero)));
    emit(s, "ping", json_pack("{s:s}", "type", "ping"));
}

static void close_block(mn_fm_stream *s)
{
    if (s->open == OPEN_NONE) {
        return;
    }
    emit(s, "content_block_stop", json_pack("{s:s,s:i}", "type", "content_block_stop",
                                            "index", s->open_index));
    s->open = OPEN_NONE;
}

static void open_block(mn_fm_stream *s, int kind, json_t *block)
{
    close_block(s);
    s->open = kind;
    s->open_index = s->next_index++;
    emit(s, "content_block_start", json_pack("{s:s,s:i,s:o}", "type", "content_block_start",
                                             "index", s->open_index, "content_block", block));
}

static void block_delta(mn_fm_stream *s, int index, json_t *delta)
{
    emit(s, "content_block_delta", json_pack("{s:s,s:i,s:o}", "type", "content_block_delta",
                                             "index", index, "delta", delta));
}

static void on_text(mn_fm_stream *s, int kind, json_t *text)
{
    if (!json_is_string(text) || !json_string_length(text)) {
        return;
    }
    if (s->open != kind) {
        open_block(s, kind, kind == OPEN_TEXT
                   ? json_pack("{s:s,s:s}", "type", "text", "text", "")
                   : json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "",
                               "signature", ""));
    }
    block_delta(s, s->open_index, kind == OPEN_TEXT
                ? json_pack("{s:s,s:O}", "type", "text_delta", "text", text)
                : json_pack("{s:s,s:O}", "type", "thinking_delta", "thinking", text));
}

static void on_tool_call(mn_fm_stream *s, json_t *tc, size_t k)
{
    json_t *idx = json_object_get(tc, "index");
    json_t *fn = json_object_get(tc, "function");
    json_t *args = json_object_get(fn, "arguments");
    json_int_t i = json_is_integer(idx) ? json_integer_value(idx) : (json_int_t)k;
    const char *id = json_string_value(json_object_get(tc, "id"));
    const char *name = json_string_value(json_object_get(fn, "name"));

    if (i < 0 || i >= MAX_TOOLS) {
        return;
    }
    if (s->tool_block[i] < 0) {
        open_block(s, OPEN_TOOL, json_pack("{s:s,s:s,s:s,s:{}}", "type", "tool_use",
                                           "id", id ? id : "", "name", name ? name : "",
                                           "input"));
        s->tool_block[i] = s->open_index;
    }
    if (json_is_string(args) && json_string_length(args)) {
        block_delta(s, s->tool_block[i], json_pack("{s:s,s:O}", "type", "input_json_delta",
                                                   "partial_json", args));
    }
}

static void on_chunk(mn_fm_stream *s, json_t *chunk)
{
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta");
    json_t *usage = json_object_get(chunk, "usage");
    json_t *v, *tc;
    const char *fr = json_string_value(json_object_get(choice, "finish_reason"));
    size_t k;

    if (!s->started) {
        start(s, chunk);
    }
    v = json_object_get(delta, "reasoning_content");
    on_text(s, OPEN_THINKING, json_is_string(v) ? v : json_object_get(delta, "reasoning"));
    on_text(s, OPEN_TEXT, json_object_get(delta, "content"));
    json_array_foreach(json_object_get(delta, "tool_calls"), k, tc) {
        on_tool_call(s, tc, k);
    }
    if (fr) {
        close_block(s);
        s->stop_reason = mn_fm_stop_reason(fr);
    }
    if (json_is_object(usage)) {
        memset(&s->usage, 0, sizeof(s->usage));
        mn_usage_from_openai(&s->usage, usage);
    }
}

static void on_done(mn_fm_stream *s)
{
    json_t *md;

    if (!s->started) {
        start(s, NULL);
    }
    close_block(s);
    md = json_pack("{s:s,s:{s:s,s:n},s:o}", "type", "message_delta", "delta", "stop_reason",
                   s->stop_reason ? s->stop_reason : "end_turn", "stop_sequence",
                   "usage", mn_fm_usage_json(&s->usage));
    emit(s, "message_delta", md);
    emit(s, "message_stop", json_pack("{s:s}", "type", "message_stop"));
    s->ended = 1;
}

static void fail(mn_fm_stream *s, const mn_error *e)
{
    mn_fm_error_event(s->down, e, s->provider[0] ? s->provider : NULL);
    s->ended = 1;
}

static void on_error_frame(mn_fm_stream *s, json_t *e)
{
    mn_error err;
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *msg = json_string_value(json_object_get(e, "message"));

    mn_error_set(&err, 0, type, NULL, code, "%s", msg ? msg : "upstream failed mid-stream");
    fail(s, &err);
}

static void take_provider(mn_fm_stream *s, json_t *frame)
{
    const char *p = json_string_value(json_object_get(frame, "provider"));
    if (p) {
        snprintf(s->provider, sizeof(s->provider), "%s", p);
    }
}

static void on_frame(mn_fm_stream *s, const char *f, size_t len)
{
    json_t *j;

    if (len >= 7 && !memcmp(f, "event: ", 7)) {
        /* already an Anthropic event (the passthrough wire's): as it is */
        s->down->write(s->down->baton, f, len);
        s->down->frame_end(s->down->baton);
        return;
    }
    if (len < 6 || memcmp(f, "data: ", 6)) {
        return;     /* comments and empty frames carry nothing to translate */
    }
    f += 6;
    len -= 6;
    while (len && (f[len - 1] == '\n' || f[len - 1] == '\r')) {
        len--;
    }
    if (len == 6 && !memcmp(f, "[DONE]", 6)) {
        on_done(s);
        return;
    }
    j = json_loadb(f, len, 0, NULL);
    if (!json_is_object(j)) {
        mn_error err;
        mn_error_set(&err, 502, "api_error", NULL, "upstream_bad_response",
                     "the gateway produced a stream frame that is not JSON");
        json_decref(j);
        fail(s, &err);
        return;
    }
    take_provider(s, j);
    if (json_is_object(json_object_get(j, "error")) && !json_object_get(j, "choices")) {
        on_error_frame(s, json_object_get(j, "error"));
    }
    else {
        on_chunk(s, j);
    }
    json_decref(j);
}

static void sink_write(void *baton, const char *data, size_t len)
{
    mn_fm_stream *s = baton;
    if (s->ended || s->overflow) {
        return;
    }
    if (s->frame.len + len > s->max_frame || mn_buf_append(&s->frame, data, len)) {
        s->overflow = 1;
    }
}

static void sink_frame_end(void *baton)
{
    mn_fm_stream *s = baton;
    if (s->ended) {
        return;
    }
    if (s->overflow) {
        mn_error err;
        mn_error_set(&err, 502, "api_error", NULL, "upstream_bad_response",
                     "a stream chunk was larger than the gateway allows");
        fail(s, &err);
    }
    else {
        on_frame(s, s->frame.data ? s->frame.data : "", s->frame.len);
    }
    mn_buf_reset(&s->frame);
}

mn_fm_stream *mn_fm_stream_create(mn_sink *down, size_t max_frame)
{
    mn_fm_stream *s = calloc(1, sizeof(*s));
    int i;
    if (!s) {
        return NULL;
    }
    s->down = down;
    s->max_frame = max_frame;
    mn_buf_init(&s->frame);
    for (i = 0; i < MAX_TOOLS; i++) {
        s->tool_block[i] = -1;
    }
    s->self.write = sink_write;
    s->self.frame_end = sink_frame_end;
    s->self.baton = s;
    return s;
}

mn_sink mn_fm_stream_sink(mn_fm_stream *s)
{
    return s->self;
}

void mn_fm_stream_provider(mn_fm_stream *s, const char *provider)
{
    snprintf(s->provider, sizeof(s->provider), "%s", provider ? provider : "");
}

void mn_fm_stream_finish(mn_fm_stream *s, const mn_error *cause, const char *provider)
{
    mn_error err;
    if (s->ended) {
        return;
    }
    if (provider && !s->provider[0]) {
        snprintf(s->provider, sizeof(s->provider), "%s", provider);
    }
    if (!cause) {
        mn_error_set(&err, 502, "api_error", NULL, "upstream_eof",
                     "the stream ended before it was complete");
        cause = &err;
    }
    fail(s, cause);
}

int mn_fm_stream_ended(const mn_fm_stream *s)
{
    return s->ended;
}

void mn_fm_stream_destroy(mn_fm_stream *s)
{
    if (s) {
        mn_buf_free(&s->frame);
        free(s);
    }
}
