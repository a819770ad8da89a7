/* The Anthropic Messages face on outside bytes.
 * Byte 0, low 3 bits (mod 5), picks the mode; bit 3 ends streams with a
 * timeout cause, bit 4 picks a variant (see each mode).  Byte 1 seeds the
 * split points (modes 1, 2, 4) or picks an error status (mode 3).
 *   0  a client's /v1/messages body (from byte 1): mn_fm_request, then the
 *      policy and every encoder, and the passthrough encoder on the body
 *      itself; count_tokens on it too.
 *   1  chat frames (split at blank lines, written in random pieces) into the
 *      stream translator; bit 4: a 256-byte frame limit.
 *   2  an upstream Anthropic stream through the SSE framer, the passthrough
 *      wire and the translator in front of it, as the glue chains them.
 *   3  an upstream answer: as a chat.completion (OpenAI wire decode, then
 *      mn_fm_response), as an Anthropic message (passthrough bytes) and as
 *      an error body (passthrough decode_error, the glue's scrub, the
 *      face's error shape).
 *   4  an upstream OpenAI (bit 4: Gemini) stream through its wire
 *      translator and the Messages translator.
 * Client streams must be `event: <type>\ndata: <object of that type>\n\n`
 * events in a valid order: message_start first, content blocks opened,
 * delta'd and closed one at a time with indexes 0, 1, 2..., message_delta,
 * message_stop last; an error event ends the stream; nothing after the end.
 * Usage counts the gateway writes are never negative, and the provider key
 * reaches no client output (differential runs, as fuzz.h does). */
#include "fuzz.h"
#include "mn_face_messages.h"
#include "mn_policy.h"

#define FZ_MAX_GROWTH(n) (64 * (n) + 256 * 1024)

enum { EV_STRICT = 1, EV_PROVIDER = 2, EV_WANT_END = 4, EV_PASS = 8 };

static const char *const fz_anthropic_errors[] = {
    "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "request_too_large", "rate_limit_error", "api_error", "overloaded_error", "timeout_error",
    "billing_error", NULL
};

static void check_anthropic_usage(json_t *u, const char *where)
{
    static const char *const names[] = { "input_tokens", "output_tokens",
                                         "cache_creation_input_tokens",
                                         "cache_read_input_tokens", NULL };
    int i;
    for (i = 0; names[i]; i++) {
        json_t *v = json_object_get(u, names[i]);
        if (json_is_integer(v) && json_integer_value(v) < 0) {
            FZ_FAIL("negative %s in %s", names[i], where);
        }
    }
}

static void check_error_body(json_t *j, int upstream)
{
    json_t *e = json_object_get(j, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    int i;
    char *s;

    if (!type || !json_is_string(json_object_get(e, "message"))) {
        FZ_FAIL("Anthropic error without type or message");
    }
    for (i = 0; fz_anthropic_errors[i] && strcmp(type, fz_anthropic_errors[i]); i++) {
    }
    if (!fz_anthropic_errors[i]) {
        FZ_FAIL("error type %s is not one of Anthropic's", type);
    }
    s = json_dumps(j, JSON_COMPACT);
    if (upstream && s && fz_held_key && strstr(s, fz_held_key)) {
        FZ_FAIL("upstream key in an error sent to the client: %s", s);
    }
    free(s);
}

#define FZ_MAX_BLOCKS 4096

typedef struct {
    int started, ended, message_delta, open, open_kind, nblocks;
    unsigned opts;
    unsigned char tool[FZ_MAX_BLOCKS];    /* block i was a tool_use */
} ev_state;

/* An order the translator must never write.  Through the passthrough the
 * order is the upstream's, forwarded as it came (as the chat route forwards
 * an OpenAI upstream's chunks): checked only with FZ_STRICT=pass-seq. */
static int fz_strict(const char *tag)
{
    const char *s = getenv("FZ_STRICT");
    return s && strstr(s, tag);
}
#define SEQ_FAIL(st, ...) do { if (!((st)->opts & EV_PASS) || fz_strict("pass-seq")) { \
                                   FZ_FAIL(__VA_ARGS__); } } while (0)

enum { K_TEXT = 1, K_THINKING, K_TOOL, K_OTHER };

static int kind_of(const char *t)
{
    if (!t) {
        return 0;
    }
    return !strcmp(t, "text") ? K_TEXT
           : !strcmp(t, "thinking") ? K_THINKING
           : !strcmp(t, "tool_use") ? K_TOOL : K_OTHER;
}

static json_int_t index_of(json_t *ev)
{
    json_t *v = json_object_get(ev, "index");
    return json_is_integer(v) ? json_integer_value(v) : -2;
}

static void check_delta(ev_state *st, json_t *ev, int kind, unsigned opts)
{
    const char *t = json_string_value(json_object_get(json_object_get(ev, "delta"), "type"));
    int ok;
    if (!t) {
        SEQ_FAIL(st, "content_block_delta without delta.type");
        return;
    }
    ok = (kind == K_TEXT && !strcmp(t, "text_delta"))
         || (kind == K_TOOL && !strcmp(t, "input_json_delta"))
         || (kind == K_THINKING && (!strcmp(t, "thinking_delta") || !strcmp(t, "signature_delta")));
    if (!ok && ((opts & EV_STRICT) || kind != K_OTHER)) {
        SEQ_FAIL(st, "a %s in a block of kind %d", t, kind);
    }
}

/* One event (type t, data ev) against the sequence so far. */
static void check_one(ev_state *st, const char *t, json_t *ev, unsigned opts)
{
    json_int_t idx = index_of(ev);

    if (st->ended) {
        FZ_FAIL("an event after the end: %s", t);
    }
    if (!strcmp(t, "error")) {
        check_error_body(ev, 1);
        st->ended = 1;
        return;
    }
    if (!st->started) {
        if (strcmp(t, "message_start")) {
            SEQ_FAIL(st, "the first event is %s", t);
            /* (passthrough) take it as it comes */
            st->started = 1;
            st->open = -1;
            check_one(st, t, ev, opts);
            return;
        }
        if (!json_is_object(json_object_get(ev, "message"))) {
            SEQ_FAIL(st, "message_start without a message");
        }
        if (opts & EV_STRICT) {
            check_anthropic_usage(json_object_get(json_object_get(ev, "message"), "usage"),
                                  "message_start");
        }
        st->started = 1;
        st->open = -1;
        return;
    }
    if (!strcmp(t, "ping")) {
        return;
    }
    if (!strcmp(t, "content_block_start")) {
        if (st->open >= 0 || st->message_delta || idx != st->nblocks) {
            SEQ_FAIL(st, "content_block_start %lld (open %d, blocks %d)",
                          (long long)idx, st->open, st->nblocks);
        }
        st->open_kind = kind_of(json_string_value(
            json_object_get(json_object_get(ev, "content_block"), "type")));
        if (!st->open_kind) {
            SEQ_FAIL(st, "content_block_start without content_block.type");
        }
        if (st->nblocks < FZ_MAX_BLOCKS) {
            st->tool[st->nblocks] = st->open_kind == K_TOOL;
        }
        st->open = (int)st->nblocks++;
        return;
    }
    if (!strcmp(t, "content_block_delta")) {
        if (!(st->opts & EV_PASS) && idx >= 0 && idx < st->nblocks && idx != st->open
            && idx < FZ_MAX_BLOCKS && st->tool[idx] && !st->message_delta) {
            /* by design (face_messages_stream.c): arguments of a call whose
             * block another kind closed go to that call's own index, as the
             * SDKs accumulate by index; Anthropic itself never interleaves */
            check_delta(st, ev, K_TOOL, opts);
            return;
        }
        if (st->open < 0 || idx != st->open) {
            SEQ_FAIL(st, "content_block_delta for %lld, open %d", (long long)idx,
                          st->open);
        }
        check_delta(st, ev, st->open_kind, opts);
        return;
    }
    if (!strcmp(t, "content_block_stop")) {
        if (st->open < 0 || idx != st->open) {
            SEQ_FAIL(st, "content_block_stop for %lld, open %d", (long long)idx,
                          st->open);
        }
        st->open = -1;
        return;
    }
    if (!strcmp(t, "message_delta")) {
        if (st->open >= 0 || st->message_delta) {
            SEQ_FAIL(st, "message_delta with block %d open (or twice)", st->open);
        }
        if (opts & EV_STRICT) {
            check_anthropic_usage(json_object_get(ev, "usage"), "message_delta");
        }
        st->message_delta = 1;
        return;
    }
    if (!strcmp(t, "message_stop")) {
        if (!st->message_delta) {
            SEQ_FAIL(st, "message_stop without message_delta");
        }
        st->ended = 1;
        return;
    }
    if (opts & EV_STRICT) {
        FZ_FAIL("unknown event type %s", t);
    }
}

/* A client's Anthropic event stream, whole. */
static void check_events(const char *s, size_t len, unsigned opts)
{
    ev_state st;
    size_t off = 0;

    memset(&st, 0, sizeof(st));
    st.open = -1;
    st.opts = opts;
    while (off < len) {
        const char *end = memmem(s + off, len - off, "\n\n", 2);
        const char *nl, *type, *data, *jt;
        size_t tlen, i;
        json_t *ev;
        json_error_t jerr;
        char tbuf[64];

        if (!end) {
            FZ_FAIL("an event without its blank line at %zu", off);
        }
        if (len - off < 7 || memcmp(s + off, "event: ", 7)
            || !(nl = memchr(s + off, '\n', (size_t)(end - s) - off))
            || (size_t)(end - nl) < 7 || memcmp(nl + 1, "data: ", 6)) {
            FZ_FAIL("not an `event:` + `data:` frame at %zu", off);
        }
        type = s + off + 7;
        tlen = (size_t)(nl - type);
        data = nl + 7;
        if (!tlen || tlen >= sizeof(tbuf)) {
            FZ_FAIL("event type of %zu bytes", tlen);
        }
        for (i = 0; i < tlen; i++) {
            if (!((type[i] >= 'a' && type[i] <= 'z') || type[i] == '_')) {
                FZ_FAIL("event type with byte 0x%02x", (unsigned char)type[i]);
            }
        }
        memcpy(tbuf, type, tlen);
        tbuf[tlen] = 0;
        if (memchr(data, '\r', (size_t)(end - data)) || memchr(data, '\n', (size_t)(end - data))) {
            FZ_FAIL("a line break inside an event's data");
        }
        if (memchr(data, '\0', (size_t)(end - data))) {
            FZ_FAIL_KNOWN("nul", "NUL byte in an event");
        }
        ev = json_loadb(data, (size_t)(end - data), 0, &jerr);
        if (!json_is_object(ev)) {
            FZ_FAIL("event data is not a JSON object (%s): %.*s", jerr.text,
                    (int)(end - data), data);
        }
        jt = json_string_value(json_object_get(ev, "type"));
        if (!jt || strcmp(jt, tbuf) || json_string_length(json_object_get(ev, "type")) != tlen) {
            FZ_FAIL("event %s with data of type %s", tbuf, jt ? jt : "(none)");
        }
        if (opts & EV_PROVIDER) {
            fz_check_provider(ev);
        }
        else if (json_object_get(ev, "provider") && !json_is_string(json_object_get(ev, "provider"))) {
            FZ_FAIL("provider is not a string");
        }
        check_one(&st, tbuf, ev, opts);
        json_decref(ev);
        off = (size_t)(end - s) + 2;
    }
    if ((opts & EV_WANT_END) && !st.ended) {
        FZ_FAIL("the stream did not end (no message_stop or error)");
    }
}

/* ------------------------------------------------------------ 0: requests */

/* Encodes chat (a copy) for f with key; 1 when the key prefix is in the
 * upstream body. */
static int encode_one(const mn_wire *w, mn_format f, json_t *face_body, json_t *chat,
                      const mn_policy_result *pol, const char *key, size_t in_size)
{
    fz_env e;
    mn_upstream_req up;
    mn_error err;
    json_t *copy = chat ? json_deep_copy(chat) : NULL, *body;
    json_error_t jerr;
    int rc = 0;

    fz_env_init(&e, f, key, (pol && pol->stream ? 5 : 0));
    e.ctx.face_body = face_body;
    memset(&up, 0, sizeof(up));
    mn_error_clear(&err);
    if (w->encode_request(&e.ctx, copy, &up, &err)) {
        if (err.status < 400 || err.status > 599) {
            FZ_FAIL("%s: encoder error with status %d", w->name, err.status);
        }
        goto out;
    }
    if (!up.body || up.body_len != strlen(up.body)) {
        FZ_FAIL("%s: body length does not match (NUL inside?)", w->name);
    }
    if (up.body_len > FZ_MAX_GROWTH(in_size)) {
        FZ_FAIL("%s: %zu-byte request became a %zu-byte upstream body", w->name, in_size,
                up.body_len);
    }
    body = json_loadb(up.body, up.body_len, 0, &jerr);
    if (!json_is_object(body)) {
        FZ_FAIL("%s: upstream body is not a JSON object: %s", w->name, jerr.text);
    }
    if (face_body) {
        const char *m = json_string_value(json_object_get(body, "model"));
        if (!m || strcmp(m, "fuzz-model") || json_object_get(body, "tags")
            || json_object_get(body, "trace")) {
            FZ_FAIL("passthrough body: model not replaced or extensions left in");
        }
    }
    json_decref(body);
    rc = fz_has(up.body, up.body_len, FZ_KEY_PREFIX);
out:
    json_decref(copy);
    fz_env_free(&e);
    return rc;
}

static void encode_checked(const mn_wire *w, mn_format f, json_t *face_body, json_t *chat,
                           const mn_policy_result *pol, size_t in_size)
{
    if (encode_one(w, f, face_body, chat, pol, FZ_KEY, in_size)
        && !encode_one(w, f, face_body, chat, pol, FZ_KEY2, in_size)) {
        FZ_FAIL("%s: the provider key went into the upstream body", w->name);
    }
}

static void check_request(const uint8_t *data, size_t size)
{
    static const mn_format formats[] = { MN_FORMAT_OPENAI, MN_FORMAT_ANTHROPIC,
                                         MN_FORMAT_GEMINI };
    json_t *in = json_loadb((const char *)data, size, 0, NULL), *chat = NULL;
    mn_fm_info info;
    mn_error err;
    long tokens = -1;
    size_t i;

    if (!in) {
        return;
    }
    memset(&info, 0, sizeof(info));
    mn_error_clear(&err);
    if (mn_fm_count_tokens(in, &tokens, &err) == 0 && tokens < 0) {
        FZ_FAIL("count_tokens gave %ld", tokens);
    }
    mn_error_clear(&err);
    if (mn_fm_request(in, &chat, &info, &err)) {
        if (err.status != 400 || !err.param[0]) {
            FZ_FAIL("mapping error with status %d, param '%s'", err.status, err.param);
        }
        json_decref(in);
        return;
    }
    if (!json_is_array(json_object_get(chat, "messages"))) {
        FZ_FAIL("chat request without messages");
    }
    if (strlen(info.dropped) >= sizeof(info.dropped)) {
        FZ_FAIL("dropped list not terminated");
    }
    {
        mn_policy_result pol;
        mn_error_clear(&err);
        if (!mn_policy_apply(chat, 0, &pol, &err)) {
            for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
                encode_checked(mn_wire_for(formats[i]), formats[i], NULL, chat, &pol, size);
            }
            if (json_is_object(in)) {
                encode_checked(&mn_wire_anthropic_passthrough, MN_FORMAT_ANTHROPIC, in, chat,
                               &pol, size);
            }
            mn_policy_result_clear(&pol);
        }
        else if (err.status != 400) {
            FZ_FAIL("policy error with status %d", err.status);
        }
    }
    json_decref(chat);
    json_decref(in);
}

/* ------------------------------------------------------ 1: chat frames */

static void check_frames(const uint8_t *data, size_t size, unsigned flags)
{
    mn_buf got;
    mn_sink out, in;
    mn_fm_stream *s;
    fz_rng rng;
    size_t off = 0, before;

    mn_buf_init(&got);
    out = mn_buf_sink(&got);
    s = mn_fm_stream_create(&out, (flags & 16) ? 256 : 1 << 16);
    in = mn_fm_stream_sink(s);
    fz_rng_init(&rng, data, size < 16 ? size : 16);
    while (off < size) {
        const char *end = memmem(data + off, size - off, "\n\n", 2);
        size_t flen = end ? (size_t)(end - (const char *)data) - off + 2 : size - off;
        size_t done = 0;
        /* event: frames come only from the passthrough wire (mode 2) */
        if (!(flen >= 6 && !memcmp(data + off, "event:", 6))) {
            while (done < flen) {
                size_t n = fz_chunk(&rng, flen - done);
                in.write(in.baton, (const char *)data + off + done, n);
                done += n;
            }
            in.frame_end(in.baton);
        }
        off += flen;
    }
    if (!mn_fm_stream_ended(s)) {
        mn_error cause;
        mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout", "quiet");
        mn_fm_stream_finish(s, (flags & 8) ? &cause : NULL, FZ_PROVIDER);
    }
    if (!mn_fm_stream_ended(s)) {
        FZ_FAIL("finish left the stream open");
    }
    before = got.len;
    in.write(in.baton, "data: {\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\n\n", 48);
    in.frame_end(in.baton);
    in.write(in.baton, "data: [DONE]\n\n", 14);
    in.frame_end(in.baton);
    mn_fm_stream_finish(s, NULL, FZ_PROVIDER);
    if (got.len != before) {
        FZ_FAIL("output after the stream ended");
    }
    check_events(got.data ? got.data : "", got.len, EV_STRICT | EV_WANT_END);
    mn_fm_stream_destroy(s);
    mn_buf_free(&got);
}

/* -------------------------------------------- 2 and 4: upstream streams */

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

/* Upstream body (from byte 2) -> framer -> wire -> Messages translator ->
 * client bytes (free them). */
static char *run_stream(const uint8_t *data, size_t size, const char *key, size_t *out_len)
{
    unsigned flags = data[0];
    int pass = (flags & 7) % 5 == 2;
    mn_format fmt = pass ? MN_FORMAT_ANTHROPIC
                    : (flags & 16) ? MN_FORMAT_GEMINI : MN_FORMAT_OPENAI;
    json_t *face_body = json_pack("{s:s}", "model", "m");
    fz_env e;
    mn_buf got;
    mn_sink client, in;
    mn_fm_stream *fm;
    mn_sse_parser p;
    feed f;
    const char *body = (const char *)data + 2;
    size_t left = size - 2, before;

    fz_env_init(&e, fmt, key, 5 | ((flags & 32) ? 2 : 0));
    e.ctx.face_body = face_body;
    mn_buf_init(&got);
    client = mn_buf_sink(&got);
    fm = mn_fm_stream_create(&client, 2 * 65536 + 4096);
    mn_fm_stream_provider(fm, FZ_PROVIDER);      /* as the glue does */
    in = mn_fm_stream_sink(fm);
    f.wire = pass ? &mn_wire_anthropic_passthrough : mn_wire_for(fmt);
    f.st = f.wire->stream_create(&e.ctx);
    f.out = &in;
    f.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 16, on_event, &f);
    fz_sse_split(&p, data, body, left, &f.status);
    f.status = fz_stream_end(f.wire, f.st, f.status, flags & 8, &in);
    if (f.status == MN_STREAM_MORE) {
        FZ_FAIL("stream_end left the stream open");
    }
    before = got.len;
    f.wire->stream_feed(f.st, MN_SSE_EVENT, "message_stop", "{\"type\":\"message_stop\"}", 23,
                        &in);
    f.wire->stream_end(f.st, NULL, &in);
    if (got.len != before) {
        FZ_FAIL("output after the stream ended");
    }
    fz_check_usage(f.wire->stream_usage(f.st));
    f.wire->stream_destroy(f.st);
    mn_fm_stream_destroy(fm);
    mn_sse_free(&p);
    fz_env_free(&e);
    json_decref(face_body);
    *out_len = got.len;
    if (!got.data) {
        got.data = calloc(1, 1);
    }
    return got.data;
}

static void check_upstream_stream(const uint8_t *data, size_t size, int pass)
{
    size_t len;
    char *out;
    if (size < 2) {
        return;
    }
    out = run_stream(data, size, FZ_KEY, &len);
    if (getenv("FZ_DUMP")) {
        fwrite(out, 1, len, stderr);
    }
    check_events(out, len, EV_PROVIDER | EV_WANT_END | (pass ? EV_PASS : EV_STRICT));
    fz_check_key_traced(data, size, out, len, run_stream);
}

/* ---------------------------------------------------------- 3: answers */

static void check_message(json_t *m, int strict)
{
    json_t *content = json_object_get(m, "content"), *b;
    const char *sr = json_string_value(json_object_get(m, "stop_reason"));
    size_t i;

    if (!json_is_object(m) || strcmp(json_string_value(json_object_get(m, "type")) ?
                                     json_string_value(json_object_get(m, "type")) : "",
                                     "message")
        || (strict && !json_is_array(content))) {
        FZ_FAIL("answer is not an Anthropic message");
    }
    fz_check_provider(m);
    if (!strict) {
        return;
    }
    if (!sr || (strcmp(sr, "end_turn") && strcmp(sr, "max_tokens") && strcmp(sr, "tool_use")
                && strcmp(sr, "refusal"))) {
        FZ_FAIL("stop_reason %s", sr ? sr : "(none)");
    }
    json_array_foreach(content, i, b) {
        int k = kind_of(json_string_value(json_object_get(b, "type")));
        if (k == K_TOOL && !json_is_object(json_object_get(b, "input"))) {
            FZ_FAIL("tool_use without an input object");
        }
        if (k == K_OTHER || !k) {
            FZ_FAIL("content block of an unknown type");
        }
    }
    check_anthropic_usage(json_object_get(m, "usage"), "the message");
}

static char *run_answer(const uint8_t *data, size_t size, const char *key, size_t *out_len)
{
    static const int statuses[] = { 400, 401, 403, 404, 408, 413, 422, 429, 500, 502, 503,
                                    504, 529, 200 };
    const char *body = (const char *)data + 2;
    size_t len = size - 2;
    mn_buf all;
    fz_env e;
    mn_usage u;
    mn_error err;
    json_t *chat = NULL, *m;
    const char *bytes;
    size_t n;

    mn_buf_init(&all);
    /* a chat answer from an OpenAI-format upstream */
    fz_env_init(&e, MN_FORMAT_OPENAI, key, 0);
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    if (!mn_wire_openai.decode_response(&e.ctx, body, len, &chat, &u, &err)) {
        fz_check_usage(&u);
        m = mn_fm_response(chat, &u);
        check_message(m, 1);
        json_decref(m);
        m = mn_fm_response(chat, NULL);
        check_message(m, 1);
        {
            char *s = json_dumps(m, JSON_COMPACT);
            mn_buf_append(&all, s, strlen(s));
            free(s);
        }
        json_decref(m);
        json_decref(chat);
    }
    fz_env_free(&e);
    /* the same bytes as an Anthropic answer, passed through */
    fz_env_init(&e, MN_FORMAT_ANTHROPIC, key, 0);
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    if (!mn_wire_anthropic_passthrough.decode_response_bytes(&e.ctx, body, len, &bytes, &n, &u,
                                                             &err)) {
        json_error_t jerr;
        json_t *j = json_loadb(bytes, n, 0, &jerr);
        if (!j) {
            FZ_FAIL("passthrough answer does not parse (%s): %.*s", jerr.text, (int)n, bytes);
        }
        if (memchr(bytes, '\0', n)) {
            FZ_FAIL_KNOWN("nul", "NUL in the passthrough answer");
        }
        check_message(j, 0);
        json_decref(j);
        fz_check_usage(&u);
        mn_buf_append(&all, bytes, n);
    }
    /* and as an error body */
    mn_error_clear(&err);
    mn_wire_anthropic_passthrough.decode_error(&e.ctx, statuses[data[1] % 14], body, len,
                                               NULL, &err);
    fz_scrub_like_glue(&err, &e.prov);
    m = mn_fm_error_json(&err, FZ_PROVIDER);
    check_error_body(m, 1);
    {
        char *s = json_dumps(m, JSON_COMPACT);
        mn_buf_append(&all, s, strlen(s));
        free(s);
    }
    json_decref(m);
    fz_env_free(&e);
    *out_len = all.len;
    if (!all.data) {
        all.data = calloc(1, 1);
    }
    return all.data;
}

static void check_answer(const uint8_t *data, size_t size)
{
    size_t len;
    char *out;
    if (size < 2) {
        return;
    }
    out = run_answer(data, size, FZ_KEY, &len);
    fz_check_key_traced(data, size, out, len, run_answer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1) {
        return 0;
    }
    fz_init();
    switch ((data[0] & 7) % 5) {
    case 0:
        check_request(data + 1, size - 1);
        break;
    case 1:
        check_frames(data + 1, size - 1, data[0]);
        break;
    case 2:
        check_upstream_stream(data, size, 1);
        break;
    case 3:
        check_answer(data, size);
        break;
    default:
        check_upstream_stream(data, size, 0);
        break;
    }
    return 0;
}
