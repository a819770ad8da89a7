/* Gemini wire, stream: streamGenerateContent SSE events (and a raw JSON
 * error appended to the stream) -> OpenAI chat.completion.chunk frames,
 * with Vertex's streamed function-call arguments assembled per call.
 * Mapping decisions: docs/wire-gemini.md. */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_chunk.h"
#include "mn_gemini.h"
#include "mn_jscan.h"

/* A raw JSON error object appended after the events is small; anything
 * larger is not what we are looking for and must not grow memory. */
#define GM_RAW_MAX (64 * 1024)

/* ------------------------------------------------------------------------ */
/* Streaming                                                                 */

/* Vertex may stream a call's arguments (partialArgs, one JSON path and
 * value per fragment): they are assembled here and reach the client as one
 * arguments delta for the call's index when the call is complete.  Bounded,
 * so a stream keeps its memory constant whatever the upstream sends. */
#define GM_CALL_ARGS_MAX (4 * 1024 * 1024)

/* What the hot path (text_event_fast) looks at in an event. */
enum {
    GF_ALL, GF_CANDS, GF_CAND_N, GF_USAGE, GF_MODEL, GF_RID,
    GF_CONTENT, GF_FINISH, GF_CONTENT_ALL, GF_ROLE, GF_PARTS, GF_PART_N, GF_PART_ALL, GF_TEXT,
    GF_U_PROMPT, GF_U_TOOL, GF_U_CANDS, GF_U_THOUGHTS, GF_U_TOTAL, GF_U_CACHED, GF_N
};
static const mn_jpath fast_paths[GF_N] = {
    MN_JPATH(MN_JALL),
    MN_JPATH(MN_JK("candidates")),
    MN_JPATH(MN_JK("candidates"), MN_JEACH),
    MN_JPATH(MN_JK("usageMetadata")),
    MN_JPATH(MN_JK("modelVersion")),
    MN_JPATH(MN_JK("responseId")),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content")),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("finishReason")),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JALL),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JK("role")),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JK("parts")),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JK("parts"), MN_JEACH),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JK("parts"), MN_JI(0), MN_JALL),
    MN_JPATH(MN_JK("candidates"), MN_JI(0), MN_JK("content"), MN_JK("parts"), MN_JI(0),
             MN_JK("text")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("promptTokenCount")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("toolUsePromptTokenCount")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("candidatesTokenCount")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("thoughtsTokenCount")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("totalTokenCount")),
    MN_JPATH(MN_JK("usageMetadata"), MN_JK("cachedContentTokenCount"))
};

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    int started;            /* role chunk sent */
    int finish_seen;        /* a finishReason came; sent at the clean end */
    char finish_raw[40];    /* the last one (Gemini's word) */
    long tool_index;        /* tool calls so far in this response */
    char id[256];           /* responseId of the first event, or ours */
    char model[256];
    mn_chunk chunk;         /* frames; its head follows id and model */
    gm_usage gu;
    /* a call whose arguments are still streaming */
    int call_open;
    long call_index;
    json_t *call_args;
    size_t call_bytes;
    mn_buf str_path;        /* string value being appended to, and its path */
    mn_buf str_val;
    int str_pending;
    int str_continue;       /* its last fragment said willContinue */
    /* raw (non-SSE) lines: a JSON error object appended to the stream */
    mn_buf raw;
    int raw_depth;
    int raw_in_str;
    int raw_esc;
};

/* Copies without cutting a UTF-8 sequence, so the value stays a valid
 * JSON string even when truncated. */
static void copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80) {
            n--;
        }
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

mn_stream *mn_gm_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    if (st) {
        st->b.ctx = ctx;
        apr_cpystrn(st->model, ctx->model ? ctx->model : "", sizeof(st->model));
        if (mn_chunk_init(&st->chunk, ctx->provider_name, ctx->include_usage)) {
            free(st);
            return NULL;
        }
        mn_buf_init(&st->raw);
        mn_buf_init(&st->str_path);
        mn_buf_init(&st->str_val);
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

/* Steals delta. */
static void emit_delta(mn_stream *st, json_t *delta, const char *finish, mn_sink *out)
{
    mn_chunk_delta(&st->chunk, delta, finish, out);
    json_decref(delta);
}

/* One step of a JSON path (RFC 9535 subset Vertex uses): .name, ['name'],
 * ["name"] or [N].  Returns the rest of the path, or NULL when malformed. */
static const char *path_step(const char *p, char *name, size_t size, long *index)
{
    size_t n = 0;
    *index = -1;
    if (*p == '.') {
        for (p++; *p && *p != '.' && *p != '['; p++) {
            if (n + 1 >= size) {
                return NULL;
            }
            name[n++] = *p;
        }
    }
    else if (p[0] == '[' && (p[1] == '\'' || p[1] == '"')) {
        char q = p[1];
        for (p += 2; *p && *p != q; p++) {
            if (n + 1 >= size) {
                return NULL;
            }
            name[n++] = *p;
        }
        if (p[0] != q || p[1] != ']') {
            return NULL;
        }
        p += 2;
    }
    else if (p[0] == '[' && a_digit((unsigned char)p[1])) {
        long i = 0;
        for (p++; a_digit((unsigned char)*p); p++) {
            if (i > 100000000L) {
                return NULL;
            }
            i = i * 10 + (*p - '0');
        }
        if (*p != ']') {
            return NULL;
        }
        *index = i;
        return p + 1;
    }
    else {
        return NULL;
    }
    name[n] = '\0';
    return n ? p : NULL;
}

/* The member or element a step names in cur, created as an object or an
 * array (as the next step wants) when missing; NULL on a shape conflict.
 * An index may only name an element that exists or the next one. */
static json_t *path_child(json_t *cur, const char *name, long index, int want_array)
{
    json_t *child;
    if (index < 0) {
        if (!json_is_object(cur)) {
            return NULL;
        }
        child = json_object_get(cur, name);
        if (!child) {
            child = want_array ? json_array() : json_object();
            json_object_set_new(cur, name, child);
        }
        return child;
    }
    if (!json_is_array(cur) || (size_t)index > json_array_size(cur)) {
        return NULL;
    }
    if ((size_t)index == json_array_size(cur)) {
        json_array_append_new(cur, want_array ? json_array() : json_object());
    }
    return json_array_get(cur, (size_t)index);
}

/* Sets path ($ then steps) in root to value (stolen).  0, or -1. */
static int set_path(json_t *root, const char *path, json_t *value)
{
    char name[256], next_name[256];
    long index, next_index;
    const char *p, *next;
    json_t *cur = root;

    if (path[0] != '$' || !path[1]) {
        json_decref(value);
        return -1;
    }
    p = path_step(path + 1, name, sizeof(name), &index);
    while (p && *p) {
        next = path_step(p, next_name, sizeof(next_name), &next_index);
        cur = next ? path_child(cur, name, index, next_index >= 0) : NULL;
        if (!cur) {
            json_decref(value);
            return -1;
        }
        memcpy(name, next_name, sizeof(name));
        index = next_index;
        p = next;
    }
    if (!p || (index < 0 && !json_is_object(cur))
        || (index >= 0 && (!json_is_array(cur) || (size_t)index > json_array_size(cur)))) {
        json_decref(value);
        return -1;
    }
    if (index < 0) {
        return json_object_set_new(cur, name, value);
    }
    if ((size_t)index == json_array_size(cur)) {
        return json_array_append_new(cur, value);
    }
    return json_array_set_new(cur, (size_t)index, value);
}

static int call_fail(mn_stream *st, const char *what)
{
    return mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                        "upstream streamed function-call arguments %s", what);
}

/* The string being appended to goes into the arguments. */
static int flush_string(mn_stream *st)
{
    int rc = 0;
    if (st->str_pending) {
        mn_buf_append(&st->str_path, "", 1);
        rc = set_path(st->call_args, st->str_path.data,
                      json_stringn(st->str_val.data ? st->str_val.data : "", st->str_val.len));
        mn_buf_reset(&st->str_path);
        mn_buf_reset(&st->str_val);
        st->str_pending = 0;
    }
    return rc ? call_fail(st, "with a JSON path that does not fit the arguments") : 0;
}

static json_t *partial_value(json_t *pa)
{
    json_t *v;
    if (json_is_string(v = json_object_get(pa, "stringValue"))
        || json_is_number(v = json_object_get(pa, "numberValue"))
        || json_is_boolean(v = json_object_get(pa, "boolValue"))) {
        return json_incref(v);
    }
    return json_object_get(pa, "nullValue") ? json_null() : NULL;
}

/* One partialArgs fragment: a string continues the one before it when that
 * one named the same path and said willContinue. */
static int apply_fragment(mn_stream *st, json_t *pa)
{
    const char *path = json_string_value(json_object_get(pa, "jsonPath"));
    json_t *v = partial_value(pa);
    int same, rc = 0;

    if (!path || !v) {
        json_decref(v);
        return 0;       /* nothing we could place */
    }
    st->call_bytes += strlen(path) + (json_is_string(v) ? json_string_length(v) : 8);
    if (st->call_bytes > GM_CALL_ARGS_MAX) {
        json_decref(v);
        return call_fail(st, "over the size limit");
    }
    same = st->str_pending && st->str_continue && st->str_path.len == strlen(path)
        && !memcmp(st->str_path.data, path, st->str_path.len);
    if (!(same && json_is_string(v)) && flush_string(st)) {
        json_decref(v);
        return -1;
    }
    if (json_is_string(v)) {
        if (!same) {
            mn_buf_append(&st->str_path, path, strlen(path));
        }
        mn_buf_append(&st->str_val, json_string_value(v), json_string_length(v));
        st->str_pending = 1;
        st->str_continue = json_is_true(json_object_get(pa, "willContinue"));
        json_decref(v);
    }
    else if (set_path(st->call_args, path, v)) {
        rc = call_fail(st, "with a JSON path that does not fit the arguments");
    }
    return rc;
}

static int apply_partials(mn_stream *st, json_t *fc)
{
    json_t *args = json_object_get(fc, "args");
    json_t *pa;
    size_t i;

    if (json_is_object(args)) {
        if (flush_string(st)) {
            return -1;
        }
        st->call_bytes += mn_gm_est_size(args, GM_CALL_ARGS_MAX);
        if (st->call_bytes > GM_CALL_ARGS_MAX) {
            return call_fail(st, "over the size limit");
        }
        json_object_update(st->call_args, args);
    }
    json_array_foreach(json_object_get(fc, "partialArgs"), i, pa) {
        if (apply_fragment(st, pa)) {
            return -1;
        }
    }
    return 0;
}

/* The open call's assembled arguments go out as its arguments delta. */
static int close_call(mn_stream *st, mn_sink *out)
{
    json_t *tc;
    char *s;

    if (!st->call_open) {
        return 0;
    }
    st->call_open = 0;
    if (flush_string(st)) {
        return -1;
    }
    s = json_dumps(st->call_args, JSON_COMPACT);
    json_decref(st->call_args);
    st->call_args = NULL;
    tc = json_string(s ? s : "{}");
    free(s);
    mn_chunk_tool_args(&st->chunk, st->call_index, tc, out);
    json_decref(tc);
    return 0;
}

static void open_call(mn_stream *st, json_t *part, json_t *fc, mn_sink *out)
{
    json_t *tc;
    st->call_open = 1;
    st->call_index = st->tool_index++;
    st->call_args = json_object();
    st->call_bytes = 0;
    tc = mn_gm_tool_call_json(fc, st->id, st->call_index, 1, json_string(""));
    mn_agent_gemini_sign_call(st->b.ctx->pool, tc, part);
    emit_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL, out);
}

/* A functionCall part.  A named one is a call (complete, or opening one
 * whose arguments stream); a nameless one continues the open call, if any,
 * and is dropped otherwise.  -1 with b.err set when the stream must fail. */
static int handle_call_part(mn_stream *st, json_t *part, json_t *fc, mn_sink *out)
{
    int more = json_is_true(json_object_get(fc, "willContinue"));

    if (mn_gm_has_name(fc)) {
        if (close_call(st, out)) {
            return -1;
        }
        if (!more && !json_array_size(json_object_get(fc, "partialArgs"))) {
            json_t *tc = mn_gm_tool_call_json(fc, st->id, st->tool_index++, 1,
                                        mn_gm_args_string(json_object_get(fc, "args")));
            mn_agent_gemini_sign_call(st->b.ctx->pool, tc, part);
            emit_delta(st, json_pack("{s:[o]}", "tool_calls", tc), NULL, out);
            return 0;
        }
        open_call(st, part, fc, out);
    }
    else if (!st->call_open) {
        return 0;
    }
    if (apply_partials(st, fc)) {
        return -1;
    }
    return more ? 0 : close_call(st, out);
}

static void handle_parts(mn_stream *st, json_t *parts, mn_sink *out)
{
    json_t *part;
    size_t i;

    json_array_foreach(parts, i, part) {
        json_t *t = json_object_get(part, "text");
        json_t *fc = json_object_get(part, "functionCall");
        if (json_is_string(t) && json_string_length(t)) {
            if (!mn_gm_part_is_thought(part)) {
                mn_chunk_text(&st->chunk, "content", t, out);
            }
            else if (st->b.ctx->provider && st->b.ctx->provider->reasoning_content) {
                mn_chunk_text(&st->chunk, "reasoning_content", t, out);
            }
        }
        else if (json_is_object(fc) && handle_call_part(st, part, fc, out)) {
            st->b.status = fail_with(st, out);
            return;
        }
    }
}

static void note_finish(mn_stream *st, const char *fr)
{
    st->finish_seen = 1;
    copy_utf8(st->finish_raw, sizeof(st->finish_raw), fr);
}

/* Whatever the upstream sends after its finishReason (more text, usage) is
 * still passed on: the finish chunk is sent once, at the clean end. */
static mn_stream_status handle_event(mn_stream *st, json_t *root, mn_sink *out)
{
    json_t *e = json_object_get(root, "error");
    json_t *cand, *v;
    const char *fr;

    if (e && !json_is_null(e) && !json_is_false(e)) {
        if (mn_gm_error_from_body(&st->b.err, 0, root)) {
            mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_error",
                         "upstream sent an error in the stream");
        }
        return fail_with(st, out);
    }
    v = json_object_get(root, "responseId");
    if (!st->id[0] && json_is_string(v)) {
        copy_utf8(st->id, sizeof(st->id), json_string_value(v));
    }
    if (!st->id[0]) {
        mn_gm_make_response_id(st->id);
    }
    v = json_object_get(root, "modelVersion");
    if (json_is_string(v)) {
        char model[sizeof(st->model)];
        copy_utf8(model, sizeof(model), json_string_value(v));
        if (strcmp(model, st->model)) {
            memcpy(st->model, model, sizeof(model));
            mn_chunk_free_head(&st->chunk);
        }
    }
    if (!mn_chunk_ready(&st->chunk)) {
        mn_chunk_head(&st->chunk, st->id, NULL, st->model, NULL, st->b.ctx->created);
    }
    if (json_is_object(json_object_get(root, "usageMetadata"))) {
        mn_gm_usage_read(&st->gu, json_object_get(root, "usageMetadata"));
        mn_gm_usage_counts(&st->gu, &st->b.usage);
    }
    if (!st->started) {
        st->started = 1;
        mn_chunk_role(&st->chunk, out);
    }
    cand = json_array_get(json_object_get(root, "candidates"), 0);
    if (!cand) {
        if (json_is_string(json_object_get(json_object_get(root, "promptFeedback"),
                                           "blockReason"))) {
            note_finish(st, "SAFETY");      /* -> content_filter */
        }
        return st->b.status;
    }
    handle_parts(st, json_object_get(json_object_get(cand, "content"), "parts"), out);
    fr = json_string_value(json_object_get(cand, "finishReason"));
    if (fr && st->b.status == MN_STREAM_MORE) {
        note_finish(st, fr);
    }
    return st->b.status;
}

static void raw_reset(mn_stream *st)
{
    mn_buf_reset(&st->raw);
    st->raw_depth = 0;
    st->raw_in_str = 0;
    st->raw_esc = 0;
}

/* The accumulated raw text is complete: an error object ends the stream,
 * anything else is ignored. */
static mn_stream_status raw_try(mn_stream *st, mn_sink *out)
{
    json_t *root = json_loadb(st->raw.data, st->raw.len, 0, NULL);
    raw_reset(st);
    if (root && mn_gm_error_from_body(&st->b.err, 0, root) == 0) {
        json_decref(root);
        return fail_with(st, out);
    }
    json_decref(root);
    return st->b.status;
}

static mn_stream_status raw_line(mn_stream *st, const char *line, size_t len, mn_sink *out)
{
    size_t i;

    if (st->raw.len == 0) {
        size_t skip = 0;
        while (skip < len && (line[skip] == ' ' || line[skip] == '\t')) {
            skip++;
        }
        if (skip == len || (line[skip] != '{' && line[skip] != '[')) {
            return st->b.status;  /* stray text, not the start of a JSON value */
        }
    }
    if (st->raw.len + len + 1 > GM_RAW_MAX
        || mn_buf_append(&st->raw, line, len) || mn_buf_append(&st->raw, "\n", 1)) {
        raw_reset(st);
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream appended more than %d bytes of non-SSE data to the stream",
                     GM_RAW_MAX);
        return fail_with(st, out);
    }
    /* Balance brackets outside strings, so the object can be parsed as soon
     * as it is complete without re-parsing it on every line. */
    for (i = 0; i < len; i++) {
        char c = line[i];
        if (st->raw_in_str) {
            if (st->raw_esc) {
                st->raw_esc = 0;
            }
            else if (c == '\\') {
                st->raw_esc = 1;
            }
            else if (c == '"') {
                st->raw_in_str = 0;
            }
        }
        else if (c == '"') {
            st->raw_in_str = 1;
        }
        else if (c == '{' || c == '[') {
            st->raw_depth++;
        }
        else if (c == '}' || c == ']') {
            if (--st->raw_depth <= 0) {
                return raw_try(st, out);
            }
        }
    }
    return st->b.status;
}

/* ------------------------------------------------------------ hot path */

/* A JSON string span (quotes included) as Jansson would write its value:
 * no escape but those Jansson's dump uses (\" \\ \b \f \n \r \t, \u00XX in
 * upper case for the other control bytes).  Such a span is copied into the
 * client's frame as it is and the bytes are the ones the tree path gives;
 * another spelling (\/, \u00e9) takes the tree path. */
static int span_canonical(const char *p, size_t len)
{
    const char *end = p + len - 1, *bs;
    for (p++; p < end && (bs = memchr(p, '\\', (size_t)(end - p))); p = bs + 2) {
        char e = bs[1];
        if (e == 'u') {
            unsigned v;
            if (bs[2] != '0' || bs[3] != '0' || (bs[4] != '0' && bs[4] != '1')
                || !((bs[5] >= '0' && bs[5] <= '9') || (bs[5] >= 'A' && bs[5] <= 'F'))) {
                return 0;
            }
            v = (unsigned)(bs[4] - '0') * 16 + (unsigned)(bs[5] <= '9' ? bs[5] - '0' : bs[5] - 'A' + 10);
            if (v == '\b' || v == '\f' || v == '\n' || v == '\r' || v == '\t') {
                return 0;
            }
            bs += 4;
        }
        else if (!strchr("\"\\bfnrt", e)) {
            return 0;
        }
    }
    return 1;
}

/* A string span without escapes equals s? */
static int span_is(const mn_jspan *sp, const char *s)
{
    size_t n = strlen(s);
    return sp->len == n + 2 && !memcmp(sp->p + 1, s, n);
}

/* A count as mn_gm_usage_read reads it: an integer, clamped at 0 and
 * LONG_MAX; a real or anything else is 0 and not present.  The scanner
 * already checked the integer fits int64. */
static long span_count(const mn_jspan *sp, int *present)
{
    const char *p = sp->p, *end;
    unsigned long long n = 0;   /* int64's magnitudes, INT64_MIN's included */
    int neg = 0;

    *present = 0;
    if (sp->type != MN_JT_NUMBER || memchr(p, '.', sp->len) || memchr(p, 'e', sp->len)
        || memchr(p, 'E', sp->len)) {
        return 0;               /* p is NULL when the member is absent */
    }
    end = p + sp->len;
    *present = 1;
    if (*p == '-') {
        neg = 1;
        p++;
    }
    for (; p < end; p++) {
        n = n * 10 + (unsigned)(*p - '0');
    }
    return neg ? 0 : n > (unsigned long long)LONG_MAX ? LONG_MAX : (long)n;
}

static void usage_from_spans(mn_stream *st, const mn_jspan *sp)
{
    gm_usage *u = &st->gu;
    int ignored;
    u->have = 1;
    u->prompt = span_count(&sp[GF_U_PROMPT], &ignored);
    u->tool_prompt = span_count(&sp[GF_U_TOOL], &ignored);
    u->candidates = span_count(&sp[GF_U_CANDS], &ignored);
    u->thoughts = span_count(&sp[GF_U_THOUGHTS], &u->have_thoughts);
    u->total = span_count(&sp[GF_U_TOTAL], &u->have_total);
    u->cached = span_count(&sp[GF_U_CACHED], &ignored);
    mn_gm_usage_counts(u, &st->b.usage);
}

/* Is the event the common one: candidates (one, whose content holds only a
 * role and one part that is only a text), usageMetadata, modelVersion (the
 * one the head already has), responseId, nothing else at the top? */
static int common_shape(const mn_stream *st, const mn_jspan *sp)
{
    unsigned known = 0;
    int i;
    static const int top[] = { GF_CANDS, GF_USAGE, GF_MODEL, GF_RID };

    for (i = 0; i < 4; i++) {
        if (sp[top[i]].count > 1) {
            return 0;
        }
        known += sp[top[i]].count;
    }
    if (sp[GF_ALL].count != known || sp[GF_CANDS].type != MN_JT_ARRAY
        || sp[GF_CAND_N].count != 1 || sp[GF_CONTENT].type != MN_JT_OBJECT
        || sp[GF_CONTENT].count != 1 || sp[GF_PARTS].type != MN_JT_ARRAY
        || sp[GF_PARTS].count != 1 || sp[GF_ROLE].count > 1
        || sp[GF_CONTENT_ALL].count != 1 + sp[GF_ROLE].count
        || sp[GF_PART_N].count != 1 || sp[GF_PART_ALL].count != 1
        || sp[GF_TEXT].type != MN_JT_STRING || sp[GF_FINISH].count > 1) {
        return 0;
    }
    if (sp[GF_MODEL].type == MN_JT_STRING && !span_is(&sp[GF_MODEL], st->model)) {
        return 0;   /* a new model (or an escaped one) rebuilds the head there */
    }
    if (sp[GF_FINISH].type == MN_JT_STRING
        && (memchr(sp[GF_FINISH].p, '\\', sp[GF_FINISH].len)
            || sp[GF_FINISH].len - 2 >= sizeof(st->finish_raw))) {
        return 0;
    }
    return span_canonical(sp[GF_TEXT].p, sp[GF_TEXT].len);
}

/* The common event after the first, validated by mn_jscan (as strict as
 * json_loadb) and answered as handle_event would: usage read from the
 * spans, the text copied into the frame, the finish reason noted.  No tree,
 * no allocation.  0: anything else, for the tree path. */
static int text_event_fast(mn_stream *st, const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[GF_N];
    const mn_jspan *fr = &sp[GF_FINISH];

    if (!st->started || !st->id[0] || st->call_open || !mn_chunk_ready(&st->chunk)
        || mn_jscan(data, len, fast_paths, GF_N, sp) || !common_shape(st, sp)) {
        return 0;
    }
    if (sp[GF_USAGE].type == MN_JT_OBJECT) {
        usage_from_spans(st, sp);
    }
    if (sp[GF_TEXT].len > 2) {
        mn_chunk_text_raw(&st->chunk, "content", sp[GF_TEXT].p, sp[GF_TEXT].len, out);
    }
    if (fr->type == MN_JT_STRING) {
        st->finish_seen = 1;
        memcpy(st->finish_raw, fr->p + 1, fr->len - 2);
        st->finish_raw[fr->len - 2] = '\0';
    }
    return 1;
}

mn_stream_status mn_gm_stream_feed(mn_stream *st, mn_sse_kind kind,
                                   const char *event, const char *data,
                                   size_t len, mn_sink *out)
{
    json_t *root;
    mn_stream_status rc;

    if (st->b.status != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (kind == MN_SSE_RAW_LINE) {
        return raw_line(st, data, len, out);
    }
    if (kind != MN_SSE_EVENT || (len == 6 && !memcmp(data, "[DONE]", 6))) {
        return st->b.status;      /* Gemini has no [DONE]; EOF ends the stream */
    }
    if (text_event_fast(st, data, len, out)) {
        return st->b.status;
    }
    root = json_loadb(data, len, 0, NULL);
    if (json_is_array(root) && json_array_size(root) == 1) {
        json_t *only = json_incref(json_array_get(root, 0));
        json_decref(root);
        root = only;
    }
    if (!json_is_object(root)) {
        json_decref(root);
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                     "upstream sent a stream event that is not a JSON object");
        return fail_with(st, out);
    }
    rc = handle_event(st, root, out);
    json_decref(root);
    return rc;
}

mn_stream_status mn_gm_stream_end(mn_stream *st, const mn_error *cause, mn_sink *out)
{
    if (st->b.status != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (cause) {
        st->b.err = *cause;
        return fail_with(st, out);
    }
    if (st->raw.len && raw_try(st, out) != MN_STREAM_MORE) {
        return st->b.status;
    }
    if (!st->finish_seen) {
        mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_eof",
                     "upstream closed the stream before a finish reason");
        return fail_with(st, out);
    }
    if (close_call(st, out)) {
        return fail_with(st, out);
    }
    mn_chunk_finish(&st->chunk, mn_gm_map_finish(st->b.ctx, st->finish_raw, st->tool_index > 0),
                    out);
    if (st->b.ctx->include_usage) {
        json_t *u = mn_gm_usage_json(&st->gu);
        mn_chunk_usage(&st->chunk, u, out);
        json_decref(u);
    }
    mn_sse_write_done(out);
    st->b.status = MN_STREAM_DONE;
    return st->b.status;
}

void mn_gm_stream_destroy(mn_stream *st)
{
    if (st) {
        json_decref(st->call_args);
        mn_chunk_free(&st->chunk);
        mn_buf_free(&st->str_path);
        mn_buf_free(&st->str_val);
        mn_buf_free(&st->raw);
        free(st);
    }
}
