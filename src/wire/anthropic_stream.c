/* Anthropic wire, stream: Messages SSE events -> OpenAI
 * chat.completion.chunk frames, with a fixed number of open-block slots so
 * memory stays constant per stream.  Mapping decisions:
 * docs/wire-anthropic.md. */
#include <stdlib.h>
#include <string.h>
#include "mn_agent.h"
#include "mn_anthropic.h"
#include "mn_chunk.h"
#include "mn_jscan.h"

/* ---------------------------------------------------------------- streaming */

/* Anthropic streams blocks one after another, so at most one is open at a
 * time; a few slots tolerate overlap without letting state grow with the
 * stream. */
#define MAX_OPEN_BLOCKS 8

enum { BLOCK_FREE = 0, BLOCK_TEXT, BLOCK_TOOL, BLOCK_THINKING, BLOCK_OTHER };

typedef struct {
    int kind;
    json_int_t index;        /* Anthropic content-block index */
    int tool;                /* OpenAI tool-call index (BLOCK_TOOL) */
    int args_seen;           /* some argument text was sent for it */
} open_block;

/* What the text-delta hot path looks at (text_delta_fast). */
enum { FA_ALL, FA_TYPE, FA_INDEX, FA_DELTA_ALL, FA_DTYPE, FA_TEXT, FA_N };
static const mn_jpath fast_paths[FA_N] = {
    MN_JPATH(MN_JALL),
    MN_JPATH(MN_JK("type")),
    MN_JPATH(MN_JK("index")),
    MN_JPATH(MN_JK("delta"), MN_JALL),
    MN_JPATH(MN_JK("delta"), MN_JK("type")),
    MN_JPATH(MN_JK("delta"), MN_JK("text"))
};

struct mn_stream {
    mn_stream_base b;          /* first: see mn_stream_base */
    mn_chunk chunk;          /* frames; its head once message_start gave id and model */
    mn_jmemo memo;           /* the text deltas' common head (type, index), walked once */
    int started;             /* message_start seen (role chunk sent) */
    int finished;            /* finish chunk sent */
    int ntools;              /* tool calls announced so far */
    open_block blocks[MAX_OPEN_BLOCKS];
    a_usage au;
    mn_agent_thinking_acc thinking;   /* signed blocks, until they are handed out */
};

mn_stream *mn_an_stream_create(mn_wire_ctx *ctx)
{
    mn_stream *st = calloc(1, sizeof(*st));
    if (st) {
        st->b.ctx = ctx;
        mn_agent_acc_init(&st->thinking);
        if (mn_chunk_init(&st->chunk, ctx->provider_name, ctx->include_usage)) {
            free(st);
            return NULL;
        }
    }
    return st;
}

static mn_stream_status fail_with(mn_stream *st, mn_sink *out)
{
    return mn_stream_fail(&st->b, out);
}

static mn_stream_status fail_bad(mn_stream *st, mn_sink *out, const char *what)
{
    mn_error_set(&st->b.err, 502, NULL, NULL, "upstream_bad_response",
                 "upstream sent an invalid stream: %s", what);
    return fail_with(st, out);
}

/* delta.<member> = text, skipped when empty */
static void emit_text(mn_stream *st, mn_sink *out, const char *member, json_t *text)
{
    if (json_is_string(text) && json_string_length(text)) {
        mn_chunk_text(&st->chunk, member, text, out);
    }
}

static void emit_tool_args(mn_stream *st, mn_sink *out, int tool, json_t *args)
{
    mn_chunk_tool_args(&st->chunk, tool, args, out);
}

static void emit_finish(mn_stream *st, mn_sink *out, const char *reason)
{
    mn_chunk_finish(&st->chunk, reason, out);
    st->finished = 1;
}

/* The thinking blocks finished so far, as one delta: clients that merge
 * deltas by assignment (the openai SDK's accumulator) and those that append
 * lists both end up with every block of a run. */
static void flush_thinking(mn_stream *st, mn_sink *out)
{
    json_t *blocks = mn_agent_acc_take(&st->thinking);
    json_t *delta;
    if (!blocks) {
        return;
    }
    delta = json_object();
    json_object_set_new(delta, "thinking_blocks", blocks);
    mn_chunk_delta(&st->chunk, delta, NULL, out);
    json_decref(delta);
}

static open_block *block_find(mn_stream *st, json_t *index)
{
    int i;
    if (!json_is_integer(index)) {
        return NULL;
    }
    for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind != BLOCK_FREE && st->blocks[i].index == json_integer_value(index)) {
            return &st->blocks[i];
        }
    }
    return NULL;
}

/* OpenAI clients JSON.parse the concatenated arguments: a call whose input
 * never streamed any text must still parse, so it gets "{}". */
static void close_tool(mn_stream *st, mn_sink *out, open_block *b)
{
    if (b->kind == BLOCK_TOOL && !b->args_seen) {
        json_t *empty = json_string("{}");
        emit_tool_args(st, out, b->tool, empty);
        json_decref(empty);
    }
    b->kind = BLOCK_FREE;
}

static mn_stream_status on_message_start(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *msg = json_object_get(ev, "message");
    json_t *id = json_object_get(msg, "id"), *model = json_object_get(msg, "model");

    if (st->started) {
        return st->b.status;     /* a repeated start must not repeat the role chunk */
    }
    if (!json_is_object(msg)) {
        return fail_bad(st, out, "message_start without a message");
    }
    mn_chunk_head(&st->chunk, "", json_is_string(id) ? id : NULL, "",
                  json_is_string(model) ? model : NULL, st->b.ctx->created);
    st->started = 1;
    mn_an_usage_merge(&st->au, json_object_get(msg, "usage"));
    mn_an_usage_to_mn(&st->au, &st->b.usage);
    mn_chunk_role(&st->chunk, out);
    return st->b.status;
}

static mn_stream_status on_block_start(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *index = json_object_get(ev, "index");
    json_t *cb = json_object_get(ev, "content_block");
    const char *type = json_string_value(json_object_get(cb, "type"));
    open_block *b = block_find(st, index);
    int i;

    if (!json_is_integer(index) || !type) {
        return fail_bad(st, out, "content_block_start without index or type");
    }
    for (i = 0; !b && i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind == BLOCK_FREE) {
            b = &st->blocks[i];
        }
    }
    if (!b) {
        return fail_bad(st, out, "too many content blocks open at once");
    }
    b->index = json_integer_value(index);
    b->args_seen = 0;
    if (strcmp(type, "thinking") && strcmp(type, "redacted_thinking")) {
        flush_thinking(st, out);
    }
    mn_agent_acc_start(&st->thinking, cb);
    if (!strcmp(type, "text")) {
        b->kind = BLOCK_TEXT;
        emit_text(st, out, "content", json_object_get(cb, "text"));
    }
    else if (!strcmp(type, "tool_use")) {
        json_t *id = json_object_get(cb, "id"), *name = json_object_get(cb, "name");
        json_t *input = json_object_get(cb, "input");
        json_t *delta;
        if (!json_is_string(id) || !json_is_string(name)) {
            return fail_bad(st, out, "tool_use block without id or name");
        }
        b->kind = BLOCK_TOOL;
        b->tool = st->ntools++;
        delta = json_pack("{s:[{s:i,s:O,s:s,s:{s:O,s:s}}]}", "tool_calls", "index", b->tool,
                          "id", id, "type", "function", "function", "name", name,
                          "arguments", "");
        mn_chunk_delta(&st->chunk, delta, NULL, out);
        json_decref(delta);
        /* some Anthropic-compatible servers put the whole input here */
        if (json_is_object(input) && json_object_size(input)) {
            char *args = json_dumps(input, JSON_COMPACT);
            if (args) {
                json_t *s = json_string(args);
                emit_tool_args(st, out, b->tool, s);
                json_decref(s);
                free(args);
                b->args_seen = 1;
            }
        }
    }
    else if (!strcmp(type, "thinking")) {
        b->kind = BLOCK_THINKING;
        if (st->b.ctx->provider && st->b.ctx->provider->reasoning_content) {
            emit_text(st, out, "reasoning_content", json_object_get(cb, "thinking"));
        }
    }
    else {
        b->kind = BLOCK_OTHER;   /* redacted thinking, server tools: no OpenAI slot */
    }
    return st->b.status;
}

static mn_stream_status on_block_delta(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *delta = json_object_get(ev, "delta");
    const char *type = json_string_value(json_object_get(delta, "type"));
    open_block *b = block_find(st, json_object_get(ev, "index"));

    if (!type) {
        return st->b.status;
    }
    if (!strcmp(type, "text_delta")) {
        emit_text(st, out, "content", json_object_get(delta, "text"));
    }
    else if (!strcmp(type, "input_json_delta")) {
        json_t *pj = json_object_get(delta, "partial_json");
        if (!b) {
            /* no block to attach it to: dropping it would corrupt a call */
            return fail_bad(st, out, "input_json_delta for a block that was never started");
        }
        if (b->kind == BLOCK_TOOL && json_is_string(pj) && json_string_length(pj)) {
            emit_tool_args(st, out, b->tool, pj);
            b->args_seen = 1;
        }
    }
    else if (!strcmp(type, "thinking_delta") || !strcmp(type, "signature_delta")) {
        if (b && b->kind == BLOCK_THINKING) {
            mn_agent_acc_delta(&st->thinking, delta);
        }
        if (!strcmp(type, "thinking_delta") && st->b.ctx->provider
            && st->b.ctx->provider->reasoning_content) {
            emit_text(st, out, "reasoning_content", json_object_get(delta, "thinking"));
        }
    }
    /* citations_delta and future types: nothing to send */
    return st->b.status;
}

static mn_stream_status on_message_delta(mn_stream *st, json_t *ev, mn_sink *out)
{
    int i;
    mn_an_usage_merge(&st->au, json_object_get(ev, "usage"));
    mn_an_usage_to_mn(&st->au, &st->b.usage);
    if (st->finished) {
        return st->b.status;
    }
    /* a tool block left open must still end with parseable arguments, and
     * before the finish chunk */
    flush_thinking(st, out);
    for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
        if (st->blocks[i].kind != BLOCK_FREE) {
            close_tool(st, out, &st->blocks[i]);
        }
    }
    emit_finish(st, out, mn_an_finish_reason(st->b.ctx, json_object_get(json_object_get(ev, "delta"),
                                                           "stop_reason")));
    return st->b.status;
}

static mn_stream_status on_message_stop(mn_stream *st, mn_sink *out)
{
    if (!st->finished) {
        int i;
        flush_thinking(st, out);
        for (i = 0; i < MAX_OPEN_BLOCKS; i++) {
            if (st->blocks[i].kind != BLOCK_FREE) {
                close_tool(st, out, &st->blocks[i]);
            }
        }
        emit_finish(st, out, st->ntools ? "tool_calls" : "stop");
    }
    if (st->b.ctx->include_usage) {
        json_t *u = mn_an_usage_to_openai(&st->au);
        mn_chunk_usage(&st->chunk, u, out);
        json_decref(u);
    }
    mn_sse_write_done(out);
    st->b.status = MN_STREAM_DONE;
    return st->b.status;
}

static mn_stream_status on_error(mn_stream *st, json_t *ev, mn_sink *out)
{
    json_t *e = json_object_get(ev, "error");
    const char *type = json_string_value(json_object_get(e, "type"));
    const char *message = json_string_value(json_object_get(e, "message"));

    mn_error_set(&st->b.err, 502, type && *type ? type : NULL, NULL, NULL, "%s",
                 message && *message ? message : "upstream reported an error mid-stream");
    return fail_with(st, out);
}

/* The common event, a text delta of exactly {type, index, delta: {type,
 * text}}, validated by mn_jscan (as strict as json_loadb) and written by
 * copying the text's JSON string into the content template: no tree, no
 * allocation.  0: anything else, for the tree path. */
static int text_delta_fast(mn_stream *st, const char *data, size_t len, mn_sink *out)
{
    mn_jspan sp[FA_N];

    if (mn_jscan_memo(data, len, fast_paths, FA_N, sp, &st->memo) || sp[FA_ALL].count != 3
        || sp[FA_TYPE].count != 1 || sp[FA_INDEX].count != 1 || sp[FA_DELTA_ALL].count != 2 || sp[FA_DTYPE].count != 1
        || sp[FA_TEXT].count != 1 || sp[FA_TEXT].type != MN_JT_STRING || sp[FA_TEXT].len <= 2
        || sp[FA_TYPE].len != 21 || memcmp(sp[FA_TYPE].p, "\"content_block_delta\"", 21)
        || sp[FA_DTYPE].len != 12 || memcmp(sp[FA_DTYPE].p, "\"text_delta\"", 12)) {
        return 0;
    }
    mn_chunk_text_raw(&st->chunk, "content", sp[FA_TEXT].p, sp[FA_TEXT].len, out);
    return 1;
}

mn_stream_status mn_an_stream_feed(mn_stream *st, mn_sse_kind kind,
                                   const char *event, const char *data,
                                   size_t len, mn_sink *out)
{
    json_t *ev;
    const char *type;

    if (st->b.status != MN_STREAM_MORE || kind != MN_SSE_EVENT) {
        return st->b.status;
    }
    if (len == 6 && !memcmp(data, "[DONE]", 6)) {
        /* not Anthropic's, but some compatible servers end this way */
        if (st->finished) {
            return on_message_stop(st, out);
        }
        return fail_bad(st, out, "[DONE] before message_stop");
    }
    if (st->started && !st->finished && mn_chunk_ready(&st->chunk)
        && (!event || !*event || !strcmp(event, "content_block_delta"))
        && text_delta_fast(st, data, len, out)) {
        return st->b.status;
    }
    ev = json_loadb(data, len, 0, NULL);
    if (!json_is_object(ev)) {
        json_decref(ev);
        return fail_bad(st, out, "an event that is not a JSON object");
    }
    type = json_string_value(json_object_get(ev, "type"));
    if (!type) {
        type = event ? event : "";
    }
    if (!strcmp(type, "error") || (event && !strcmp(event, "error"))) {
        on_error(st, ev, out);
    }
    else if (!strcmp(type, "ping")) {
        /* keep-alive */
    }
    else if (!strcmp(type, "message_start")) {
        on_message_start(st, ev, out);
    }
    else if (!st->started) {
        if (!strncmp(type, "message_", 8) || !strncmp(type, "content_block_", 14)) {
            fail_bad(st, out, "content before message_start");
        }
    }
    else if (st->finished && !strncmp(type, "content_block_", 14)) {
        /* the client already has its finish_reason: content after it would
         * be a second answer tacked onto the first, so it is dropped */
    }
    else if (!strcmp(type, "content_block_start")) {
        on_block_start(st, ev, out);
    }
    else if (!strcmp(type, "content_block_delta")) {
        on_block_delta(st, ev, out);
    }
    else if (!strcmp(type, "content_block_stop")) {
        open_block *b = block_find(st, json_object_get(ev, "index"));
        if (b && b->kind == BLOCK_THINKING) {
            mn_agent_acc_stop(&st->thinking);
        }
        if (b) {
            close_tool(st, out, b);
        }
    }
    else if (!strcmp(type, "message_delta")) {
        on_message_delta(st, ev, out);
    }
    else if (!strcmp(type, "message_stop")) {
        on_message_stop(st, out);
    }
    /* unknown event types: Anthropic may add some, ignore them */
    json_decref(ev);
    return st->b.status;
}

mn_stream_status mn_an_stream_end(mn_stream *st, const mn_error *cause,
                                  mn_sink *out)
{
    return mn_stream_end_without(&st->b, cause, "message_stop", out);
}

void mn_an_stream_destroy(mn_stream *st)
{
    if (!st) {
        return;
    }
    mn_chunk_free(&st->chunk);
    mn_agent_acc_free(&st->thinking);
    free(st);
}
