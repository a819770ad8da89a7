/* The Responses face, streaming: chat.completion.chunk frames in, the
 * Responses event sequence out (see include/mn_face_responses.h).
 *
 * Chat deltas interleave freely; Responses output items are sequential.  An
 * item is opened by the first delta of its kind (reasoning_content, content,
 * a tool call with a name) and closed, with its `…done` events, when a delta
 * of another item or the end arrives.  The done events and
 * response.completed repeat the whole output, so the stream holds the text
 * of the answer (bounded by max_held), nothing more. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_face_responses.h"
#include "mn_sse.h"

typedef enum { ITEM_NONE, ITEM_TEXT, ITEM_REASONING, ITEM_CALL } item_kind;

struct mn_resp_stream {
    const mn_resp_ctx *c;
    mn_sink *out;
    mn_buf frame;            /* the chat frame being written */
    mn_buf text;             /* text (or arguments) of the open item */
    json_t *output;          /* items closed so far */
    long seq;
    int started;
    mn_resp_status status;
    mn_error err;
    mn_usage usage;
    char finish[32];
    item_kind kind;          /* the open item */
    int index;               /* its output_index */
    char item_id[160];
    json_t *call_id, *name;  /* of the open call */
    json_int_t call_index;   /* its tool_calls[].index */
    json_t *blocks;          /* thinking_blocks of the open reasoning item */
    size_t held;
    size_t max_held;
};

/* Writes one event: type and sequence_number first, then ev's members
 * (ev is stolen). */
static void emit(mn_resp_stream *s, const char *type, json_t *ev)
{
    json_t *o = json_pack("{s:s,s:I}", "type", type, "sequence_number", (json_int_t)s->seq++);
    char *data;

    json_object_update(o, ev);
    json_decref(ev);
    data = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!data) {
        return;
    }
    s->out->write(s->out->baton, "event: ", 7);
    s->out->write(s->out->baton, type, strlen(type));
    s->out->write(s->out->baton, "\ndata: ", 7);
    s->out->write(s->out->baton, data, strlen(data));
    s->out->write(s->out->baton, "\n\n", 2);
    s->out->frame_end(s->out->baton);
    free(data);
}

static void start(mn_resp_stream *s)
{
    s->started = 1;
    emit(s, "response.created", json_pack("{s:o}", "response", mn_resp_object(s->c, "in_progress")));
    emit(s, "response.in_progress", json_pack("{s:o}", "response",
                                              mn_resp_object(s->c, "in_progress")));
}

static void fail(mn_resp_stream *s, int status, const char *type, const char *code,
                 const char *message)
{
    json_t *resp;

    mn_error_set(&s->err, status, type, NULL, code, "%s", message);
    s->status = MN_RESP_FAILED;
    if (!s->started) {
        return;
    }
    resp = mn_resp_object(s->c, "failed");
    json_object_set(resp, "output", s->output);
    json_object_set_new(resp, "error", json_pack("{s:s,s:s}", "code", code && *code ? code : type,
                                                 "message", message));
    emit(s, "response.failed", json_pack("{s:o}", "response", resp));
    emit(s, "error", json_pack("{s:s,s:s,s:n}", "code", code && *code ? code : type,
                               "message", message, "param"));
}

/* Appends to the open item's text within the bound. */
static int hold(mn_resp_stream *s, const char *text, size_t len)
{
    if (s->held + len > s->max_held || mn_buf_append(&s->text, text, len)) {
        fail(s, 502, "upstream_error", "upstream_too_large",
             "the answer is larger than this gateway holds for a Responses stream");
        return -1;
    }
    s->held += len;
    return 0;
}

static json_t *item_ids(mn_resp_stream *s)
{
    return json_pack("{s:s,s:i}", "item_id", s->item_id, "output_index", s->index);
}

static void close_item(mn_resp_stream *s)
{
    json_t *item = NULL, *ev;
    const char *t = s->text.data ? s->text.data : "";

    switch (s->kind) {
    case ITEM_NONE:
        return;
    case ITEM_TEXT:
        ev = item_ids(s);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(ev, "text", json_stringn(t, s->text.len));
        json_object_set_new(ev, "logprobs", json_array());
        emit(s, "response.output_text.done", ev);
        ev = item_ids(s);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(ev, "part", mn_resp_text_part(t, s->text.len));
        emit(s, "response.content_part.done", ev);
        ev = json_pack("[o]", mn_resp_text_part(t, s->text.len));
        item = mn_resp_message_item(s->item_id, "completed", ev);
        json_decref(ev);
        break;
    case ITEM_REASONING:
        ev = item_ids(s);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "text", json_stringn(t, s->text.len));
        emit(s, "response.reasoning_summary_text.done", ev);
        ev = item_ids(s);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "part", json_pack("{s:s,s:s%}", "type", "summary_text",
                                                  "text", t, s->text.len));
        emit(s, "response.reasoning_summary_part.done", ev);
        item = mn_resp_reasoning_item(s->item_id, t, s->text.len, s->blocks);
        json_array_clear(s->blocks);
        break;
    case ITEM_CALL:
        ev = item_ids(s);
        json_object_set(ev, "name", s->name);
        json_object_set_new(ev, "arguments", json_stringn(t, s->text.len));
        emit(s, "response.function_call_arguments.done", ev);
        item = mn_resp_call_item(s->item_id, "completed", t, s->text.len, s->call_id, s->name);
        json_decref(s->call_id);
        json_decref(s->name);
        s->call_id = s->name = NULL;
        break;
    }
    emit(s, "response.output_item.done", json_pack("{s:i,s:O}", "output_index", s->index,
                                                   "item", item));
    json_array_append_new(s->output, item);
    s->kind = ITEM_NONE;
    mn_buf_reset(&s->text);
}

static void open_item(mn_resp_stream *s, item_kind kind, json_t *call_id, json_t *name)
{
    static const char *const prefix[] = { "", "msg", "rs", "fc" };
    json_t *item = NULL, *ev, *parts;

    close_item(s);
    s->kind = kind;
    s->index = (int)json_array_size(s->output);
    mn_resp_item_id(s->c, prefix[kind], s->index, s->item_id, sizeof(s->item_id));
    if (kind == ITEM_TEXT) {
        parts = json_array();
        item = mn_resp_message_item(s->item_id, "in_progress", parts);
        json_decref(parts);
    }
    else if (kind == ITEM_REASONING) {
        item = mn_resp_reasoning_item(s->item_id, "", 0, NULL);
    }
    else {
        s->call_id = json_incref(call_id);
        s->name = json_incref(name);
        item = mn_resp_call_item(s->item_id, "in_progress", "", 0, call_id, name);
    }
    emit(s, "response.output_item.added", json_pack("{s:i,s:o}", "output_index", s->index,
                                                    "item", item));
    if (kind == ITEM_TEXT) {
        ev = item_ids(s);
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set_new(ev, "part", mn_resp_text_part("", 0));
        emit(s, "response.content_part.added", ev);
    }
    else if (kind == ITEM_REASONING) {
        ev = item_ids(s);
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set_new(ev, "part", json_pack("{s:s,s:s}", "type", "summary_text", "text", ""));
        emit(s, "response.reasoning_summary_part.added", ev);
    }
}

/* A text delta of kind (ITEM_TEXT or ITEM_REASONING). */
static void text_delta(mn_resp_stream *s, item_kind kind, json_t *text)
{
    json_t *ev;

    if (!json_is_string(text) || !json_string_length(text)) {
        return;
    }
    if (s->kind != kind) {
        open_item(s, kind, NULL, NULL);
    }
    if (hold(s, json_string_value(text), json_string_length(text))) {
        return;
    }
    ev = item_ids(s);
    if (kind == ITEM_TEXT) {
        json_object_set_new(ev, "content_index", json_integer(0));
        json_object_set(ev, "delta", text);
        json_object_set_new(ev, "logprobs", json_array());
        emit(s, "response.output_text.delta", ev);
    }
    else {
        json_object_set_new(ev, "summary_index", json_integer(0));
        json_object_set(ev, "delta", text);
        emit(s, "response.reasoning_summary_text.delta", ev);
    }
}

/* Signed thinking arrives as whole blocks: they join the reasoning item
 * (opened for them when thinking text did not). */
static void thinking_blocks(mn_resp_stream *s, json_t *blocks)
{
    size_t i;
    json_t *b;
    if (!json_is_array(blocks) || !json_array_size(blocks) || s->status != MN_RESP_MORE) {
        return;
    }
    if (s->kind != ITEM_REASONING) {
        open_item(s, ITEM_REASONING, NULL, NULL);
    }
    json_array_foreach(blocks, i, b) {
        char *dump = json_dumps(b, JSON_COMPACT);
        size_t n = dump ? strlen(dump) : 0;
        free(dump);
        if (s->held + n > s->max_held) {
            fail(s, 502, "upstream_error", "upstream_too_large",
                 "the answer is larger than this gateway holds for a Responses stream");
            return;
        }
        s->held += n;
        json_array_append(s->blocks, b);
    }
}

static void call_delta(mn_resp_stream *s, json_t *tc)
{
    json_t *fn = json_object_get(tc, "function"), *name = json_object_get(fn, "name");
    json_t *args = json_object_get(fn, "arguments"), *id = json_object_get(tc, "id"), *ev;
    json_int_t index = json_integer_value(json_object_get(tc, "index"));

    if (json_is_string(name) && (s->kind != ITEM_CALL || index != s->call_index
                                 || (json_is_string(id) && !json_equal(id, s->call_id)))) {
        open_item(s, ITEM_CALL, json_is_string(id) ? id : name, name);
        s->call_index = index;
    }
    else if (s->kind != ITEM_CALL || index != s->call_index) {
        fail(s, 502, "upstream_error", "upstream_bad_response",
             "the upstream sent arguments of a tool call that is not the current one");
        return;
    }
    if (!json_is_string(args) || !json_string_length(args)
        || hold(s, json_string_value(args), json_string_length(args))) {
        return;
    }
    ev = item_ids(s);
    json_object_set(ev, "delta", args);
    emit(s, "response.function_call_arguments.delta", ev);
}

static void on_chunk(mn_resp_stream *s, json_t *chunk)
{
    json_t *choice = json_array_get(json_object_get(chunk, "choices"), 0);
    json_t *delta = json_object_get(choice, "delta"), *calls, *tc;
    json_t *finish = json_object_get(choice, "finish_reason");
    json_t *usage = json_object_get(chunk, "usage");
    size_t i;

    if (!s->started) {
        start(s);
    }
    text_delta(s, ITEM_REASONING, json_object_get(delta, "reasoning_content"));
    thinking_blocks(s, json_object_get(delta, "thinking_blocks"));
    if (s->status == MN_RESP_MORE) {
        text_delta(s, ITEM_TEXT, json_object_get(delta, "content"));
    }
    if (s->status == MN_RESP_MORE) {
        text_delta(s, ITEM_TEXT, json_object_get(delta, "refusal"));
    }
    calls = json_object_get(delta, "tool_calls");
    json_array_foreach(calls, i, tc) {
        if (s->status != MN_RESP_MORE) {
            break;
        }
        call_delta(s, tc);
    }
    if (json_is_string(finish)) {
        apr_cpystrn(s->finish, json_string_value(finish), sizeof(s->finish));
    }
    if (json_is_object(usage)) {
        mn_usage_from_openai(&s->usage, usage);
    }
}

static void on_done(mn_resp_stream *s)
{
    const char *reason = NULL, *status = "completed";
    json_t *resp;

    if (!s->started) {
        start(s);
    }
    close_item(s);
    if (!strcmp(s->finish, "length")) {
        reason = "max_output_tokens";
    }
    else if (!strcmp(s->finish, "content_filter")) {
        reason = "content_filter";
    }
    if (reason) {
        status = "incomplete";
    }
    resp = mn_resp_object(s->c, status);
    json_object_set(resp, "output", s->output);
    if (reason) {
        json_object_set_new(resp, "incomplete_details", json_pack("{s:s}", "reason", reason));
    }
    json_object_set_new(resp, "usage", mn_resp_usage(&s->usage));
    emit(s, reason ? "response.incomplete" : "response.completed",
         json_pack("{s:o}", "response", resp));
    s->status = MN_RESP_DONE;
}

static void on_error(mn_resp_stream *s, json_t *e)
{
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *code = json_string_value(json_object_get(e, "code"));
    const char *message = json_string_value(json_object_get(e, "message"));

    fail(s, 502, type ? type : "upstream_error", code ? code : "",
         message ? message : "the upstream failed");
}

/* One complete chat frame: `data: <json>` or `data: [DONE]`. */
static void on_frame(mn_resp_stream *s, const char *f, size_t len)
{
    json_t *o;

    while (len && (f[len - 1] == '\n' || f[len - 1] == '\r')) {
        len--;
    }
    if (len < 6 || memcmp(f, "data: ", 6)) {
        return;
    }
    f += 6;
    len -= 6;
    if (len == 6 && !memcmp(f, "[DONE]", 6)) {
        on_done(s);
        return;
    }
    o = json_loadb(f, len, 0, NULL);
    if (!json_is_object(o)) {
        fail(s, 502, "upstream_error", "upstream_bad_response",
             "the stream carried a frame that is not JSON");
    }
    else if (json_is_object(json_object_get(o, "error"))) {
        on_error(s, json_object_get(o, "error"));
    }
    else {
        on_chunk(s, o);
    }
    json_decref(o);
}

static void sink_write(void *baton, const char *data, size_t len)
{
    mn_resp_stream *s = baton;
    if (s->status == MN_RESP_MORE) {
        mn_buf_append(&s->frame, data, len);
    }
}

static void sink_frame_end(void *baton)
{
    mn_resp_stream *s = baton;
    if (s->status == MN_RESP_MORE && s->frame.len) {
        on_frame(s, s->frame.data, s->frame.len);
    }
    mn_buf_reset(&s->frame);
}

mn_resp_stream *mn_resp_stream_create(const mn_resp_ctx *c, mn_sink *out)
{
    mn_resp_stream *s = calloc(1, sizeof(*s));
    if (!s) {
        return NULL;
    }
    s->c = c;
    s->out = out;
    mn_buf_init(&s->frame);
    mn_buf_init(&s->text);
    s->output = json_array();
    s->blocks = json_array();
    s->max_held = c->max_held ? c->max_held : (size_t)16 << 20;
    mn_error_clear(&s->err);
    return s;
}

mn_sink mn_resp_stream_sink(mn_resp_stream *s)
{
    mn_sink k = { sink_write, sink_frame_end, s };
    return k;
}

mn_resp_status mn_resp_stream_status(const mn_resp_stream *s)
{
    return s->status;
}

int mn_resp_stream_started(const mn_resp_stream *s)
{
    return s->started;
}

const mn_error *mn_resp_stream_error(const mn_resp_stream *s)
{
    return mn_error_is_set(&s->err) ? &s->err : NULL;
}

long mn_resp_stream_events(const mn_resp_stream *s)
{
    return s->seq;
}

void mn_resp_stream_destroy(mn_resp_stream *s)
{
    if (!s) {
        return;
    }
    mn_buf_free(&s->frame);
    mn_buf_free(&s->text);
    json_decref(s->output);
    json_decref(s->blocks);
    json_decref(s->call_id);
    json_decref(s->name);
    free(s);
}
