/* Unit tests for src/wire/anthropic_stream.c: the SSE state machine, against
 * the shared fixtures (fed whole and split) and small inline cases. */
#include "anthropic_test.h"

/* --------------------------------------------------------------- streaming */

typedef struct {
    mn_stream_status status;
    mn_usage usage;
    mn_error err;
    int has_err;
} run_res;

static void run_stream(mn_wire_ctx *ctx, const char *bytes, size_t len, size_t split,
                       mn_buf *out, run_res *res)
{
    res->status = mn_t_replay_stream_ex(&mn_wire_anthropic, ctx, bytes, len, split, out,
                                        &res->usage, &res->err, &res->has_err);
}

static void run_text(mn_wire_ctx *ctx, const char *sse, mn_buf *out, run_res *res)
{
    mn_buf_init(out);
    run_stream(ctx, sse, strlen(sse), 0, out, res);
}

static void stream_fixture(fx *f, const char *name, const char *expected, int reasoning,
                           mn_stream_status want_status, long prompt, long completion)
{
    size_t len, wlen, i, k;
    char *raw = mn_t_fixture(name, &len);
    char *want_full = mn_t_fixture(expected, &wlen);
    int iu;

    f->prov.reasoning_content = reasoning;
    for (iu = 1; iu >= 0; iu--) {
        mn_buf want;
        size_t splits[8];
        size_t nsplits;
        mn_buf_init(&want);
        if (iu) {
            mn_buf_append(&want, want_full, wlen);
        }
        else {
            {
                size_t n;
                char *w = mn_t_without_usage(want_full, wlen, &n);
                mn_buf_append(&want, w, n);
                free(w);
            }
        }
        f->ctx.stream = 1;
        f->ctx.include_usage = iu;
        /* 0 = whole, -1 = byte by byte, then every offset (or a few) */
        splits[0] = 0;
        splits[1] = (size_t)-1;
        nsplits = 2;
        if (mn_t_quick()) {
            splits[2] = 1;
            splits[3] = len / 3;
            splits[4] = len / 2;
            splits[5] = len - 1;
            nsplits = 6;
        }
        for (k = 0; k < nsplits + (mn_t_quick() ? 0 : len - 1); k++) {
            size_t split = k < nsplits ? splits[k] : k - nsplits + 1;
            mn_buf out;
            run_res res;
            mn_buf_init(&out);
            run_stream(&f->ctx, raw, len, split, &out, &res);
            if (res.status != want_status) {
                fail_msg("%s split %zu include_usage %d: status %d\n%.*s", name, split, iu,
                         res.status, (int)out.len, out.data);
            }
            mn_t_assert_frames(out.data, out.len, want.data, want.len, PROVIDER, 0);
            /* without include_usage there is no usage member at all */
            if (!iu) {
                json_t *frames = mn_t_data_frames(out.data, out.len);
                json_t *fr;
                json_array_foreach(frames, i, fr) {
                    json_t *j = json_loads(json_string_value(fr), 0, NULL);
                    if (j) {
                        assert_null(json_object_get(j, "usage"));
                    }
                    json_decref(j);
                }
                json_decref(frames);
            }
            assert_int_equal(res.usage.have, 1);
            assert_int_equal(res.usage.prompt_tokens, prompt);
            assert_int_equal(res.usage.completion_tokens, completion);
            assert_int_equal(res.usage.total_tokens, prompt + completion);
            assert_int_equal(res.has_err, want_status == MN_STREAM_FAILED);
            mn_buf_free(&out);
        }
        mn_buf_free(&want);
    }
    free(raw);
    free(want_full);
}

static void test_stream_fixture_text(void **state)
{
    stream_fixture(*state, "anthropic/stream_text.sse", "anthropic/stream_text.expected_openai.sse",
                   0, MN_STREAM_DONE, 21 + 1830, 24);
}

static void test_stream_fixture_tool_call(void **state)
{
    stream_fixture(*state, "anthropic/stream_tool_call.sse",
                   "anthropic/stream_tool_call.expected_openai.sse", 0, MN_STREAM_DONE, 412, 112);
}

static void test_stream_fixture_tool_call_empty_input(void **state)
{
    stream_fixture(*state, "anthropic/stream_tool_call_empty_input.sse",
                   "anthropic/stream_tool_call_empty_input.expected_openai.sse", 0,
                   MN_STREAM_DONE, 298, 38);
}

static void test_stream_fixture_thinking(void **state)
{
    stream_fixture(*state, "anthropic/stream_thinking.sse",
                   "anthropic/stream_thinking.expected_openai.sse", 0, MN_STREAM_DONE, 44, 61);
}

static void test_stream_fixture_thinking_reasoning_ext(void **state)
{
    stream_fixture(*state, "anthropic/stream_thinking.sse",
                   "anthropic/stream_thinking.expected_openai_reasoning_ext.sse", 1,
                   MN_STREAM_DONE, 44, 61);
}

static void test_stream_fixture_error_overloaded(void **state)
{
    stream_fixture(*state, "anthropic/stream_error_overloaded.sse",
                   "anthropic/stream_error_overloaded.expected_openai.sse", 0,
                   MN_STREAM_FAILED, 21, 1);
}

/* Frames of a whole-fed fixture as parsed JSON ([DONE] stays a string). */
static json_t *fixture_frames(fx *f, const char *name, run_res *res)
{
    size_t len, i;
    char *raw = mn_t_fixture(name, &len);
    mn_buf out;
    json_t *frames, *parsed = json_array(), *fr;

    mn_buf_init(&out);
    run_stream(&f->ctx, raw, len, 0, &out, res);
    frames = mn_t_data_frames(out.data, out.len);
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        json_array_append_new(parsed, j ? j : json_incref(fr));
    }
    json_decref(frames);
    mn_buf_free(&out);
    free(raw);
    return parsed;
}

static json_t *delta_of(json_t *frame)
{
    return at(json_array_get(json_object_get(frame, "choices"), 0), "delta", NULL);
}

/* Reassembles tool calls as a client does: index -> {id, name, args}. */
static json_t *assemble_tool_calls(json_t *frames)
{
    json_t *calls = json_array(), *fr, *tc;
    size_t i, k;
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            size_t idx = (size_t)json_integer_value(json_object_get(tc, "index"));
            json_t *call;
            const char *piece = json_string_value(at(tc, "function", "arguments", NULL));
            while (json_array_size(calls) <= idx) {
                json_array_append_new(calls, json_pack("{s:s}", "args", ""));
            }
            call = json_array_get(calls, idx);
            if (json_object_get(tc, "id")) {
                assert_null(json_object_get(call, "id"));   /* one header per index */
                json_object_set(call, "id", json_object_get(tc, "id"));
                json_object_set(call, "name", at(tc, "function", "name", NULL));
            }
            if (piece) {
                char *joined = malloc(strlen(json_string_value(json_object_get(call, "args")))
                                      + strlen(piece) + 1);
                strcpy(joined, json_string_value(json_object_get(call, "args")));
                strcat(joined, piece);
                json_object_set_new(call, "args", json_string(joined));
                free(joined);
            }
        }
    }
    return calls;
}

static void test_bug_tool_call_chunks_not_lost(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *calls, *a0, *a1;
    size_t i, fragments = 0, k;
    json_t *fr, *tc;

    frames = fixture_frames(f, "anthropic/stream_tool_call.sse", &res);
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            if (!json_object_get(tc, "id")) {
                fragments++;
            }
        }
    }
    assert_int_equal(fragments, 6);
    calls = assemble_tool_calls(frames);
    assert_int_equal(json_array_size(calls), 2);
    a0 = json_loads(json_string_value(at(json_array_get(calls, 0), "args", NULL)), 0, NULL);
    a1 = json_loads(json_string_value(at(json_array_get(calls, 1), "args", NULL)), 0, NULL);
    assert_json(a0, "{'location':'Paris, France','unit':'celsius'}");
    assert_json(a1, "{'location':'Tokyo, Japan','unit':'celsius'}");
    json_decref(a0);
    json_decref(a1);
    json_decref(calls);
    json_decref(frames);
}

static void test_bug_parallel_tool_calls_distinct_indexes(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames = fixture_frames(f, "anthropic/stream_tool_call.sse", &res);
    json_t *calls = assemble_tool_calls(frames);

    assert_int_equal(json_array_size(calls), 2);
    assert_string_equal(json_string_value(at(json_array_get(calls, 0), "id", NULL)),
                        "toolu_01A7cVq9Lm2XkR8pTz4WnB3s");
    assert_string_equal(json_string_value(at(json_array_get(calls, 1), "id", NULL)),
                        "toolu_01D4hNx6Sy8QeJ2wKv5ZbT9m");
    assert_string_equal(json_string_value(at(json_array_get(calls, 1), "name", NULL)),
                        "get_weather");
    json_decref(calls);
    json_decref(frames);

    /* tool indexes count tool calls only, not content blocks */
    {
        mn_buf out;
        const char *sse =
            "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_p\","
            "\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
            "\"content_block\":{\"type\":\"thinking\",\"thinking\":\"\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"a\","
            "\"input\":{}}}\n\n"
            "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
            "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t2\",\"name\":\"b\","
            "\"input\":{}}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":2,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"y\\\":2}\"}}\n\n"
            "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
            "\"delta\":{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"x\\\":1}\"}}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":1}\n\n"
            "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
            "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
            "\"tool_use\"},\"usage\":{\"output_tokens\":5}}\n\n"
            "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
        json_t *fs, *cs;
        size_t i;
        json_t *fr;
        run_text(&f->ctx, sse, &out, &res);
        assert_int_equal(res.status, MN_STREAM_DONE);
        fs = mn_t_data_frames(out.data, out.len);
        frames = json_array();
        json_array_foreach(fs, i, fr) {
            json_t *j = json_loads(json_string_value(fr), 0, NULL);
            json_array_append_new(frames, j ? j : json_incref(fr));
        }
        cs = assemble_tool_calls(frames);
        assert_json(cs, "[{'id':'t1','name':'a','args':'{\\'x\\':1}'},"
                        "{'id':'t2','name':'b','args':'{\\'y\\':2}'}]");
        json_decref(cs);
        json_decref(frames);
        json_decref(fs);
        mn_buf_free(&out);
    }
}

static void test_bug_empty_tool_input_is_braces(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames = fixture_frames(f, "anthropic/stream_tool_call_empty_input.sse", &res);
    json_t *calls = assemble_tool_calls(frames);
    json_t *fr, *tc;
    size_t i, k;

    assert_json(calls, "[{'id':'toolu_01Gk7RmV2xT9pL4sQz8NbW3c','name':'get_current_time',"
                       "'args':'{}'}]");
    /* the only argument text besides the header's "" is "{}" */
    json_array_foreach(frames, i, fr) {
        json_array_foreach(json_object_get(delta_of(fr), "tool_calls"), k, tc) {
            if (!json_object_get(tc, "id")) {
                assert_string_equal(json_string_value(at(tc, "function", "arguments", NULL)), "{}");
            }
        }
    }
    json_decref(calls);
    json_decref(frames);
}

static void test_bug_first_chunk_has_role(void **state)
{
    static const char *const names[] = {
        "anthropic/stream_text.sse", "anthropic/stream_tool_call.sse",
        "anthropic/stream_tool_call_empty_input.sse", "anthropic/stream_thinking.sse",
        "anthropic/stream_error_overloaded.sse"
    };
    fx *f = *state;
    size_t n;

    f->prov.reasoning_content = 1;
    for (n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        run_res res;
        json_t *frames = fixture_frames(f, names[n], &res);
        size_t i;
        json_t *fr;
        assert_json(delta_of(json_array_get(frames, 0)), "{'role':'assistant','content':''}");
        json_array_foreach(frames, i, fr) {
            if (i > 0 && json_is_object(delta_of(fr))) {
                assert_null(json_object_get(delta_of(fr), "role"));
            }
        }
        json_decref(frames);
    }
}

static void test_bug_finish_reason_null_not_missing(void **state)
{
    static const char *const names[] = {
        "anthropic/stream_text.sse", "anthropic/stream_tool_call.sse",
        "anthropic/stream_tool_call_empty_input.sse", "anthropic/stream_thinking.sse"
    };
    fx *f = *state;
    size_t n;

    for (n = 0; n < sizeof(names) / sizeof(names[0]); n++) {
        run_res res;
        json_t *frames = fixture_frames(f, names[n], &res);
        size_t i, finishes = 0, chunks = 0;
        json_t *fr;
        json_array_foreach(frames, i, fr) {
            json_t *choice = json_array_get(json_object_get(fr, "choices"), 0);
            json_t *fin;
            if (!choice) {
                continue;
            }
            chunks++;
            fin = json_object_get(choice, "finish_reason");
            assert_non_null(fin);
            assert_true(json_is_null(json_object_get(choice, "logprobs")));
            if (!json_is_null(fin)) {
                finishes++;
                assert_json(delta_of(fr), "{}");
            }
        }
        assert_true(chunks >= 3);
        assert_int_equal(finishes, 1);
        json_decref(frames);
    }
}

static void test_bug_usage_chunk_with_cache_tokens(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *u;
    size_t n;
    mn_buf out;
    const char *sse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_c\","
        "\"model\":\"m\",\"usage\":{\"input_tokens\":10,\"cache_creation_input_tokens\":20,"
        "\"cache_read_input_tokens\":300,\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"max_tokens\"},\"usage\":{\"input_tokens\":null,\"cache_read_input_tokens\":400,"
        "\"output_tokens\":50,\"output_tokens_details\":{\"thinking_tokens\":7}}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    f->ctx.include_usage = 1;
    frames = fixture_frames(f, "anthropic/stream_text.sse", &res);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "choices"), "[]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "usage"),
                "{'prompt_tokens':1851,'completion_tokens':24,'total_tokens':1875,"
                "'prompt_tokens_details':{'cached_tokens':0,'cache_creation_tokens':1830}}");
    assert_int_equal(res.usage.prompt_tokens, 1851);
    json_decref(frames);

    /* null keeps the message_start value; later values win; finish before usage */
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    u = json_loads(json_string_value(json_array_get(frames, 1)), 0, NULL);
    assert_string_equal(json_string_value(
        at(json_array_get(json_object_get(u, "choices"), 0), "finish_reason", NULL)), "length");
    json_decref(u);
    u = json_loads(json_string_value(json_array_get(frames, 2)), 0, NULL);
    assert_json(json_object_get(u, "usage"),
                "{'prompt_tokens':430,'completion_tokens':50,'total_tokens':480,"
                "'prompt_tokens_details':{'cached_tokens':400,'cache_creation_tokens':20},"
                "'completion_tokens_details':{'reasoning_tokens':7}}");
    assert_string_equal(json_string_value(json_object_get(u, "provider")), PROVIDER);
    assert_string_equal(json_string_value(json_object_get(u, "id")), "msg_c");
    json_decref(u);
    assert_int_equal(res.usage.have, 1);
    assert_int_equal(res.usage.prompt_tokens, 430);
    assert_int_equal(res.usage.completion_tokens, 50);
    assert_int_equal(res.usage.total_tokens, 480);
    json_decref(frames);
    mn_buf_free(&out);
}

static void test_bug_error_event_is_failure(void **state)
{
    fx *f = *state;
    run_res res;
    json_t *frames, *fr;
    size_t n, i;

    f->ctx.include_usage = 1;
    frames = fixture_frames(f, "anthropic/stream_error_overloaded.sse", &res);
    n = json_array_size(frames);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.has_err, 1);
    assert_string_equal(res.err.type, "overloaded_error");
    assert_string_equal(res.err.message, "Overloaded");
    assert_string_equal(res.err.code, "");
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    assert_json(json_object_get(json_array_get(frames, n - 2), "error"),
                "{'message':'Overloaded','type':'overloaded_error','param':null,'code':null}");
    assert_string_equal(json_string_value(at(json_array_get(frames, n - 2), "provider", NULL)),
                        PROVIDER);
    json_array_foreach(frames, i, fr) {
        json_t *choices = json_object_get(fr, "choices");
        if (i < n - 2) {
            assert_int_equal(json_array_size(choices), 1);   /* no usage chunk */
            assert_true(json_is_null(at(json_array_get(choices, 0), "finish_reason", NULL)));
            assert_null(json_object_get(fr, "error"));
        }
    }
    json_decref(frames);
}

static void test_bug_eof_without_message_stop_fails(void **state)
{
    fx *f = *state;
    size_t len;
    char *raw = mn_t_fixture("anthropic/stream_text.sse", &len);
    char *cut = strstr(raw, "event: message_stop");
    mn_buf out;
    run_res res;
    json_t *frames, *last;
    size_t n;

    assert_non_null(cut);
    f->ctx.include_usage = 1;
    mn_buf_init(&out);
    run_stream(&f->ctx, raw, (size_t)(cut - raw), 0, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 502);
    assert_string_equal(res.err.type, "upstream_error");
    assert_string_equal(res.err.code, "upstream_eof");
    assert_non_null(strstr(res.err.message, "message_stop"));
    frames = mn_t_data_frames(out.data, out.len);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    last = json_loads(json_string_value(json_array_get(frames, n - 2)), 0, NULL);
    assert_json(json_object_get(last, "error"),
                "{'message':'upstream closed the stream before message_stop',"
                "'type':'upstream_error','param':null,'code':'upstream_eof'}");
    json_decref(last);
    /* the finish chunk went out, but no usage chunk: the answer is incomplete */
    last = json_loads(json_string_value(json_array_get(frames, n - 3)), 0, NULL);
    assert_string_equal(json_string_value(
        at(json_array_get(json_object_get(last, "choices"), 0), "finish_reason", NULL)), "stop");
    json_decref(last);
    json_decref(frames);
    mn_buf_free(&out);

    /* an empty body fails too */
    mn_buf_init(&out);
    run_stream(&f->ctx, "", 0, 0, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.usage.have, 0);
    assert_non_null(strstr(out.data, "upstream_eof"));
    assert_non_null(strstr(out.data, "data: [DONE]\n\n"));
    mn_buf_free(&out);
    free(raw);
}

static void test_stream_end_with_cause(void **state)
{
    fx *f = *state;
    mn_stream *st = mn_wire_anthropic.stream_create(&f->ctx);
    mn_buf out;
    mn_sink sink;
    mn_error cause;
    const char *start = "{\"type\":\"message_start\",\"message\":{\"id\":\"msg_t\",\"model\":\"m\","
                        "\"usage\":{\"input_tokens\":5,\"output_tokens\":1}}}";
    json_t *frames, *e;

    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->have, 0);
    assert_null(mn_wire_anthropic.stream_error(st));
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_start", start,
                                                   strlen(start), &sink), MN_STREAM_MORE);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->have, 1);
    assert_int_equal(mn_wire_anthropic.stream_usage(st)->prompt_tokens, 5);
    mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout", "upstream went quiet");
    assert_int_equal(mn_wire_anthropic.stream_end(st, &cause, &sink), MN_STREAM_FAILED);
    assert_string_equal(mn_wire_anthropic.stream_error(st)->code, "upstream_timeout");
    assert_int_equal(mn_wire_anthropic.stream_error(st)->status, 504);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 3);
    e = json_loads(json_string_value(json_array_get(frames, 1)), 0, NULL);
    assert_json(e, "{'error':{'message':'upstream went quiet','type':'timeout_error','param':null,"
                   "'code':'upstream_timeout'},'provider':'claude'}");
    json_decref(e);
    assert_string_equal(json_string_value(json_array_get(frames, 2)), "[DONE]");
    json_decref(frames);

    /* finished: nothing more is written, whatever arrives */
    out.len = 0;
    assert_int_equal(mn_wire_anthropic.stream_end(st, NULL, &sink), MN_STREAM_FAILED);
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_start", start,
                                                   strlen(start), &sink), MN_STREAM_FAILED);
    assert_int_equal(out.len, 0);
    mn_wire_anthropic.stream_destroy(st);
    mn_buf_free(&out);
}

static void test_stream_after_done_is_inert(void **state)
{
    fx *f = *state;
    size_t len;
    char *raw = mn_t_fixture("anthropic/stream_tool_call_empty_input.sse", &len);
    mn_stream *st = mn_wire_anthropic.stream_create(&f->ctx);
    mn_buf out;
    mn_sink sink;
    const char *ev = "{\"type\":\"message_stop\"}";
    const char *d = "{\"type\":\"content_block_delta\",\"index\":0,"
                    "\"delta\":{\"type\":\"text_delta\",\"text\":\"late\"}}";
    mn_sse_parser p;
    mn_t_replay r;

    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    r.wire = &mn_wire_anthropic;
    r.st = st;
    r.out = &sink;
    r.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &r);
    mn_sse_feed(&p, raw, len);
    mn_sse_finish(&p);
    mn_sse_free(&p);
    assert_int_equal(r.status, MN_STREAM_DONE);
    assert_null(mn_wire_anthropic.stream_error(st));
    out.len = 0;
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "content_block_delta", d,
                                                   strlen(d), &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_anthropic.stream_feed(st, MN_SSE_EVENT, "message_stop", ev,
                                                   strlen(ev), &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_anthropic.stream_end(st, NULL, &sink), MN_STREAM_DONE);
    assert_int_equal(out.len, 0);
    mn_wire_anthropic.stream_destroy(st);
    mn_buf_free(&out);
    free(raw);
}

static void expect_bad_stream(fx *f, const char *sse, const char *msg_part)
{
    mn_buf out;
    run_res res;
    json_t *frames, *e;
    size_t n;

    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 502);
    assert_string_equal(res.err.type, "upstream_error");
    assert_string_equal(res.err.code, "upstream_bad_response");
    if (msg_part && !strstr(res.err.message, msg_part)) {
        fail_msg("message \"%s\" lacks \"%s\"", res.err.message, msg_part);
    }
    frames = mn_t_data_frames(out.data, out.len);
    n = json_array_size(frames);
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    e = json_loads(json_string_value(json_array_get(frames, n - 2)), 0, NULL);
    assert_string_equal(json_string_value(at(e, "error", "code", NULL)), "upstream_bad_response");
    json_decref(e);
    json_decref(frames);
    mn_buf_free(&out);
}

#define START "event: message_start\ndata: {\"type\":\"message_start\"," \
              "\"message\":{\"id\":\"msg_b\"," \
              "\"model\":\"m\",\"usage\":{\"input_tokens\":1,\"output_tokens\":1}}}\n\n"

static void test_stream_bad_events(void **state)
{
    fx *f = *state;
    expect_bad_stream(f, START "event: content_block_delta\ndata: {not json\n\n", "JSON");
    expect_bad_stream(f, START "event: content_block_delta\ndata: [1,2]\n\n", "JSON");
    expect_bad_stream(f, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                         "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"x\"}}\n\n",
                      "message_start");
    expect_bad_stream(f, START "event: content_block_delta\n"
                         "data: {\"type\":\"content_block_delta\","
                         "\"index\":3,\"delta\":{\"type\":\"input_json_delta\","
                         "\"partial_json\":\"{}\"}}\n\n",
                      "input_json_delta");
    expect_bad_stream(f, START "data: [DONE]\n\n", "[DONE]");
}

static void test_stream_misc_events(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames;
    /* unknown events and delta types are ignored; a [DONE] after the finish
     * counts as message_stop; a text block may start with text */
    const char *sse = START
        "event: ping\ndata: {\"type\": \"ping\"}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"citations_delta\",\"citation\":{}}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"\"}}\n\n"
        "event: something_new\ndata: {\"type\":\"something_new\"}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"refusal\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\","
        "\"content\":\"\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"Hi\"},"
        "\"logprobs\":null,\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"msg_b\",\"object\":\"chat.completion.chunk\",\"created\":1767225600,"
        "\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{},"
        "\"logprobs\":null,\"finish_reason\":\"content_filter\"}]}\n\n"
        "data: [DONE]\n\n";

    f->ctx.include_usage = 0;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    mn_t_assert_frames(out.data, out.len, want, strlen(want), PROVIDER, 0);
    assert_int_equal(res.usage.completion_tokens, 3);
    mn_buf_free(&out);

    /* message_stop without message_delta still sends one finish chunk */
    f->ctx.include_usage = 1;
    run_text(&f->ctx, START "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n",
             &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    assert_non_null(strstr(json_string_value(json_array_get(frames, 1)),
                           "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(json_string_value(json_array_get(frames, 2)), "\"choices\":[]"));
    json_decref(frames);
    mn_buf_free(&out);
}

static void test_stream_tool_input_in_block_start(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames, *parsed, *fr, *calls;
    size_t i;
    const char *sse = START
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t9\",\"name\":\"f\","
        "\"input\":{\"q\":1}}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"tool_use\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    frames = mn_t_data_frames(out.data, out.len);
    parsed = json_array();
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        json_array_append_new(parsed, j ? j : json_incref(fr));
    }
    calls = assemble_tool_calls(parsed);
    assert_json(calls, "[{'id':'t9','name':'f','args':'{\\'q\\':1}'}]");
    json_decref(calls);
    json_decref(parsed);
    json_decref(frames);
    mn_buf_free(&out);
}

/* ------------------------------------------------- hostile input (issue 11) */


static void test_bug_usage_sums_saturate(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames, *u, *resp;
    mn_usage mu;
    const char *sse =
        "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_o\","
        "\"model\":\"m\",\"usage\":{\"input_tokens\":" BIG ",\"cache_creation_input_tokens\":"
        BIG ",\"cache_read_input_tokens\":" BIG ",\"output_tokens\":1}}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":" BIG ",\"output_tokens_details\":"
        "{\"thinking_tokens\":-5}}}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";

    f->ctx.include_usage = 1;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_int_equal(res.usage.prompt_tokens, LONG_MAX);
    assert_int_equal(res.usage.completion_tokens, LONG_MAX);
    assert_int_equal(res.usage.total_tokens, LONG_MAX);
    frames = mn_t_data_frames(out.data, out.len);
    assert_int_equal(json_array_size(frames), 4);
    u = json_loads(json_string_value(json_array_get(frames, 2)), 0, NULL);
    assert_json(json_object_get(u, "usage"),
                "{'prompt_tokens':" BIG ",'completion_tokens':" BIG ",'total_tokens':" BIG ","
                "'prompt_tokens_details':{'cached_tokens':" BIG ",'cache_creation_tokens':" BIG "},"
                "'completion_tokens_details':{'reasoning_tokens':0}}");
    json_decref(u);
    json_decref(frames);
    mn_buf_free(&out);

    /* the same for a whole answer; negative counts count as 0 */
    resp = decode_ok(f, "{'id':'msg_1','type':'message','role':'assistant','model':'m',"
                        "'content':[],'stop_reason':'end_turn','usage':{'input_tokens':" BIG
                        ",'cache_read_input_tokens':1,'cache_creation_input_tokens':-7,"
                        "'output_tokens':2}}", &mu);
    assert_int_equal(mu.prompt_tokens, LONG_MAX);
    assert_int_equal(mu.total_tokens, LONG_MAX);
    assert_json(json_object_get(resp, "usage"),
                "{'prompt_tokens':" BIG ",'completion_tokens':2,'total_tokens':" BIG ","
                "'prompt_tokens_details':{'cached_tokens':1}}");
    json_decref(resp);
    resp = decode_ok(f, "{'id':'msg_1','type':'message','role':'assistant','model':'m',"
                        "'content':[],'stop_reason':'end_turn','usage':{'input_tokens':-3,"
                        "'output_tokens':-2}}", &mu);
    assert_int_equal(mu.prompt_tokens, 0);
    assert_int_equal(mu.completion_tokens, 0);
    assert_int_equal(mu.total_tokens, 0);
    json_decref(resp);
}

static void test_bug_content_after_finish_dropped(void **state)
{
    fx *f = *state;
    mn_buf out;
    run_res res;
    json_t *frames;
    const char *sse = START
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"Hi\"}}\n\n"
        "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":"
        "\"end_turn\"},\"usage\":{\"output_tokens\":3}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":1,"
        "\"content_block\":{\"type\":\"text\",\"text\":\"LATE1\"}}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":1,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"LATE2\"}}\n\n"
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":2,"
        "\"content_block\":{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"LATE3\","
        "\"input\":{}}}\n\n"
        "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":2}\n\n"
        "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"
        "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,"
        "\"delta\":{\"type\":\"text_delta\",\"text\":\"LATE4\"}}\n\n";

    f->ctx.include_usage = 1;
    run_text(&f->ctx, sse, &out, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_null(strstr(out.data, "LATE"));
    frames = mn_t_data_frames(out.data, out.len);
    /* role, "Hi", finish, usage, [DONE] */
    assert_int_equal(json_array_size(frames), 5);
    assert_non_null(strstr(json_string_value(json_array_get(frames, 2)),
                           "\"finish_reason\":\"stop\""));
    assert_non_null(strstr(json_string_value(json_array_get(frames, 3)), "\"choices\":[]"));
    assert_string_equal(json_string_value(json_array_get(frames, 4)), "[DONE]");
    assert_int_equal(res.usage.completion_tokens, 3);
    json_decref(frames);
    mn_buf_free(&out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_stream_fixture_text),
        T(test_stream_fixture_tool_call),
        T(test_stream_fixture_tool_call_empty_input),
        T(test_stream_fixture_thinking),
        T(test_stream_fixture_thinking_reasoning_ext),
        T(test_stream_fixture_error_overloaded),
        T(test_bug_tool_call_chunks_not_lost),
        T(test_bug_parallel_tool_calls_distinct_indexes),
        T(test_bug_empty_tool_input_is_braces),
        T(test_bug_first_chunk_has_role),
        T(test_bug_finish_reason_null_not_missing),
        T(test_bug_usage_chunk_with_cache_tokens),
        T(test_bug_error_event_is_failure),
        T(test_bug_eof_without_message_stop_fails),
        T(test_stream_end_with_cause),
        T(test_stream_after_done_is_inert),
        T(test_stream_bad_events),
        T(test_stream_misc_events),
        T(test_stream_tool_input_in_block_start),
        T(test_bug_usage_sums_saturate),
        T(test_bug_content_after_finish_dropped),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests_name("anthropic_stream", tests, NULL, NULL);
    apr_terminate();
    return rc;
}
