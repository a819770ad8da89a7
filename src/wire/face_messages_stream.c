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
#include "mn_chunk.h"
#include "mn_face_messages.h"
#include "mn_jscan.h"

#define MAX_TOOLS 64

int mn_fm_fast_paths = 1;

/* What the chunk hot path (chunk_fast) looks at: in the chunk, in its
 * choices[0].delta, in that delta's tool_calls.  Three short scans cost
 * less than one with every path live at the top level. */
enum { FT_PROVIDER, FT_ERROR, FT_USAGE, FT_FINISH, FT_DELTA, FT_N };
enum { FD_RC, FD_R, FD_CONTENT, FD_TC, FD_N };
enum { FC_N, FC_INDEX, FC_ARGS, FC_ALL };
static const mn_jpath fast_paths[FT_N + FD_N + FC_ALL] = {
    MN_JPATH(MN_JK("provider")),
    MN_JPATH(MN_JK("error")),
    MN_JPATH(MN_JK("usage")),
    MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("finish_reason")),
    MN_JPATH(MN_JK("choices"), MN_JI(0), MN_JK("delta")),
    MN_JPATH(MN_JK("reasoning_content")),
    MN_JPATH(MN_JK("reasoning")),
    MN_JPATH(MN_JK("content")),
    MN_JPATH(MN_JK("tool_calls")),
    MN_JPATH(MN_JEACH),
    MN_JPATH(MN_JI(0), MN_JK("index")),
    MN_JPATH(MN_JI(0), MN_JK("function"), MN_JK("arguments"))
};

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
    /* provider as the "provider" member's JSON value, as emit() writes it
     * (empty: no member); -1 in provider_json_len: not computed yet */
    char provider_json[800];
    long provider_json_len;
};

static void set_provider(mn_fm_stream *s, const char *p)
{
    snprintf(s->provider, sizeof(s->provider), "%s", p);
    s->provider_json_len = -1;
}

static void emit(mn_fm_stream *s, const char *type, json_t *data)
{
    mn_sink *out = s->down;
    mn_chunk_tag(data, s->provider[0] ? s->provider : NULL);
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
        set_provider(s, p);
    }
}

/* ---------------------------------------------------------------- hot path */

/* Is this JSON string (quotes included, already validated by mn_jscan)
 * written exactly as Jansson's dump writes its value?  Then copying it is
 * the same as decoding and encoding it again.  Jansson escapes only `"`,
 * `\` and the bytes below 0x20: \b \f \n \r \t, the others as \u00XX in
 * capitals; `/` and non-ASCII stay as they are. */
static int canonical_string(const char *p, size_t len)
{
    const char *e = p + len - 1, *q = p + 1;
    int v;

    while ((q = memchr(q, '\\', (size_t)(e - q))) != NULL) {
        switch (q[1]) {
        case '"': case '\\': case 'b': case 'f': case 'n': case 'r': case 't':
            q += 2;
            break;
        case 'u':
            if (q[2] != '0' || q[3] != '0' || (q[4] != '0' && q[4] != '1')) {
                return 0;
            }
            if (q[5] >= '0' && q[5] <= '9') {
                v = q[5] - '0';
            }
            else if (q[5] >= 'A' && q[5] <= 'F') {
                v = q[5] - 'A' + 10;
            }
            else {
                return 0;
            }
            v += (q[4] - '0') * 16;
            if (v == '\b' || v == '\t' || v == '\n' || v == '\f' || v == '\r') {
                return 0;
            }
            q += 6;
            break;
        default:
            return 0;
        }
    }
    return 1;
}

/* a span on_text/on_tool_call would write (a non-empty string) */
static int has_text(const mn_jspan *sp)
{
    return sp->type == MN_JT_STRING && sp->len > 2;
}

/* nothing to write, or something the hot path can copy */
static int copyable(const mn_jspan *sp)
{
    return !has_text(sp) || canonical_string(sp->p, sp->len);
}

/* The chunk's "provider" leaves s->provider as it is (take_provider). */
static int provider_same(const mn_fm_stream *s, const mn_jspan *sp)
{
    size_t n;
    if (sp->type != MN_JT_STRING) {
        return 1;
    }
    n = sp->len - 2;
    return n < sizeof(s->provider) && !memchr(sp->p + 1, '\\', n) && strlen(s->provider) == n
           && !memcmp(s->provider, sp->p + 1, n);
}

/* The "provider" member's value as emit() writes it; length 0: none. */
static const char *provider_json(mn_fm_stream *s, size_t *len)
{
    if (s->provider_json_len < 0) {
        json_t *p = s->provider[0] ? json_string(s->provider) : NULL;
        size_t n = p ? json_dumpb(p, s->provider_json, sizeof(s->provider_json),
                                  JSON_ENCODE_ANY) : 0;
        json_decref(p);
        s->provider_json_len = n <= sizeof(s->provider_json) ? (long)n : 0;
    }
    *len = (size_t)s->provider_json_len;
    return s->provider_json;
}

/* Bytes gathered for one write downstream (each write into the client's
 * brigade costs more than a copy); what does not fit goes out as it is. */
typedef struct {
    mn_sink *out;
    size_t n;
    char b[1024];
} gather;

static void put(gather *g, const char *p, size_t len)
{
    if (g->n + len > sizeof(g->b)) {
        if (g->n) {
            g->out->write(g->out->baton, g->b, g->n);
            g->n = 0;
        }
        if (len > sizeof(g->b)) {
            g->out->write(g->out->baton, p, len);
            return;
        }
    }
    memcpy(g->b + g->n, p, len);
    g->n += len;
}

/* What block_delta writes, with the string copied as it is. */
static void delta_raw(mn_fm_stream *s, int index, int kind, const mn_jspan *str)
{
    static const char head[] =
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":";
    static const char *const mid[] = {
        "", ",\"delta\":{\"type\":\"text_delta\",\"text\":",
        ",\"delta\":{\"type\":\"thinking_delta\",\"thinking\":",
        ",\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":"
    };
    gather g;
    char num[16];
    size_t n = sizeof(num), plen;
    unsigned v = (unsigned)index;   /* block indexes are never negative */
    const char *prov = provider_json(s, &plen);

    g.out = s->down;
    g.n = 0;
    put(&g, head, sizeof(head) - 1);
    do {
        num[--n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    put(&g, num + n, sizeof(num) - n);
    put(&g, mid[kind], strlen(mid[kind]));
    put(&g, str->p, str->len);
    if (plen) {
        put(&g, "},\"provider\":", 13);
        put(&g, prov, plen);
        put(&g, "}\n\n", 3);
    }
    else {
        put(&g, "}}\n\n", 4);
    }
    if (g.n) {
        s->down->write(s->down->baton, g.b, g.n);
    }
    s->down->frame_end(s->down->baton);
}

/* on_text with the text as a span */
static void text_raw(mn_fm_stream *s, int kind, const mn_jspan *text)
{
    if (!has_text(text)) {
        return;
    }
    if (s->open != kind) {
        open_block(s, kind, kind == OPEN_TEXT
                   ? json_pack("{s:s,s:s}", "type", "text", "text", "")
                   : json_pack("{s:s,s:s,s:s}", "type", "thinking", "thinking", "",
                               "signature", ""));
    }
    delta_raw(s, s->open_index, kind, text);
}

/* on_tool_call's i for a call's "index" span (absent or not an integer:
 * the call's position, 0 here); -1: out of range, the call is ignored */
static int tool_index(const mn_jspan *sp)
{
    const char *p = sp->p, *e;
    int neg = 0, v = 0;

    /* an absent index has no span at all (p NULL): test the type first */
    if (sp->type != MN_JT_NUMBER || memchr(p, '.', sp->len) || memchr(p, 'e', sp->len)
        || memchr(p, 'E', sp->len)) {
        return 0;
    }
    e = p + sp->len;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    if (e - p > 2) {
        return -1;
    }
    for (; p < e; p++) {
        v = v * 10 + (*p - '0');
    }
    return neg && v ? -1 : (v < MAX_TOOLS ? v : -1);
}

/* The common chunk after the first: a text, reasoning or one call's
 * argument delta, and no finish_reason, usage, error or new provider.
 * mn_jscan validates it (as strictly as json_loadb) and finds the members
 * on_chunk would read; the events are exactly the ones on_chunk writes,
 * each delta string copied as it is.  0: not such a chunk, nothing
 * written; the tree path takes it. */
static int chunk_fast(mn_fm_stream *s, const char *f, size_t len)
{
    mn_jspan top[FT_N], d[FD_N], tc[FC_ALL];
    const mn_jspan *think;
    size_t i = 0;
    int tool = -1, k;

    while (i < len && (f[i] == ' ' || f[i] == '\t' || f[i] == '\r' || f[i] == '\n')) {
        i++;
    }
    if (i == len || f[i] != '{' || mn_jscan(f, len, fast_paths, FT_N, top)
        || top[FT_ERROR].type == MN_JT_OBJECT || top[FT_USAGE].type == MN_JT_OBJECT
        || top[FT_FINISH].type == MN_JT_STRING || !provider_same(s, &top[FT_PROVIDER])) {
        return 0;
    }
    /* a member of a valid text is a valid text when it is a container */
    for (k = 0; k < FD_N; k++) {
        d[k].type = MN_JT_NONE;
    }
    if (top[FT_DELTA].type == MN_JT_OBJECT
        && mn_jscan(top[FT_DELTA].p, top[FT_DELTA].len, fast_paths + FT_N, FD_N, d)) {
        return 0;
    }
    think = d[FD_RC].type == MN_JT_STRING ? &d[FD_RC] : &d[FD_R];
    if (!copyable(think) || !copyable(&d[FD_CONTENT])) {
        return 0;
    }
    if (d[FD_TC].type == MN_JT_ARRAY) {
        if (mn_jscan(d[FD_TC].p, d[FD_TC].len, fast_paths + FT_N + FD_N, FC_ALL, tc)
            || tc[FC_N].count > 1) {
            return 0;
        }
        if (tc[FC_N].count) {
            tool = tool_index(&tc[FC_INDEX]);
        }
        if (tool >= 0 && (s->tool_block[tool] < 0 || !copyable(&tc[FC_ARGS]))) {
            return 0;   /* a new call's block opens on the tree path */
        }
    }
    text_raw(s, OPEN_THINKING, think);
    text_raw(s, OPEN_TEXT, &d[FD_CONTENT]);
    if (tool >= 0 && has_text(&tc[FC_ARGS])) {
        delta_raw(s, s->tool_block[tool], OPEN_TOOL, &tc[FC_ARGS]);
    }
    return 1;
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
    if (s->started && mn_fm_fast_paths && chunk_fast(s, f, len)) {
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
    s->provider_json_len = -1;
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
        set_provider(s, provider);
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
