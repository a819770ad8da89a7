/* Unit tests for src/wire/gemini_stream.c: every gemini/ stream fixture
 * replayed split at every byte offset, with and without include_usage, plus
 * one small case per mapping rule. */
#include <limits.h>
#include "gemini_test.h"

/* ------------------------------------------------------------------------ */
/* Streaming                                                                 */

static void replay_all_splits(void **state, const char *in, size_t in_len, const char *want,
                              size_t want_len, int include_usage, mn_stream_status want_status)
{
    size_t quick[6];
    size_t nsplits, k;
    int quickmode = mn_t_quick();

    quick[0] = 0;
    quick[1] = 1;
    quick[2] = in_len / 3;
    quick[3] = in_len / 2;
    quick[4] = in_len - 1;
    quick[5] = (size_t)-1;
    nsplits = quickmode ? 6 : in_len + 1;
    for (k = 0; k < nsplits; k++) {
        size_t split = quickmode ? quick[k] : (k == in_len ? (size_t)-1 : k);
        mn_wire_ctx ctx;
        mn_provider prov;
        mn_buf out;
        mn_stream_status st;

        ctx_for(&ctx, &prov, state, 1, include_usage);
        mn_buf_init(&out);
        st = mn_t_replay_stream(&mn_wire_gemini, &ctx, in, in_len, split, &out);
        if (st != want_status) {
            fail_msg("split %zu: status %d, want %d\n%.*s", split, st, want_status,
                     (int)out.len, out.data);
        }
        mn_t_assert_frames(out.data, out.len, want, want_len, PROVIDER, 0);
        mn_buf_free(&out);
    }
}

static void check_stream_fixture(void **state, const char *name, mn_stream_status want_status)
{
    char rel[256];
    size_t in_len, want_len, bare_len;
    char *in, *want, *bare;

    snprintf(rel, sizeof(rel), "gemini/%s.sse", name);
    in = mn_t_fixture(rel, &in_len);
    snprintf(rel, sizeof(rel), "gemini/%s.expected_openai.sse", name);
    want = mn_t_fixture(rel, &want_len);
    bare = mn_t_without_usage(want, want_len, &bare_len);

    replay_all_splits(state, in, in_len, want, want_len, 1, want_status);
    replay_all_splits(state, in, in_len, bare, bare_len, 0, want_status);
    free(bare);
    free(want);
    free(in);
}

static void test_stream_text_fixture(void **state)
{
    check_stream_fixture(state, "stream_text", MN_STREAM_DONE);
}

static void test_stream_tool_call_fixture(void **state)
{
    check_stream_fixture(state, "stream_tool_call", MN_STREAM_DONE);
}

static void test_stream_error_midstream_fixture(void **state)
{
    check_stream_fixture(state, "stream_error_midstream", MN_STREAM_FAILED);
}

typedef struct run_result {
    mn_buf out;
    mn_stream_status status;
    mn_usage usage;
    mn_error err;
    int have_err;
} run_result;

static int run_cb(void *baton, mn_sse_kind kind, const char *event, const char *data,
                  size_t len)
{
    void **r = baton;
    mn_stream *st = r[0];
    run_result *res = r[1];
    mn_sink *sink = r[2];
    if (res->status == MN_STREAM_MORE) {
        res->status = mn_wire_gemini.stream_feed(st, kind, event, data, len, sink);
    }
    return 0;
}

/* Replays text (' stands for ") whole and ends the stream with cause. */
static void run_stream(void **state, const char *text_q, int include_usage,
                       const mn_error *cause, run_result *res)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_sse_parser p;
    mn_sink sink;
    mn_stream *st;
    void *baton[3];
    char *text = strdup(text_q);
    char *c;
    const mn_error *e;

    for (c = text; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    ctx_for(&ctx, &prov, state, 1, include_usage);
    memset(res, 0, sizeof(*res));
    mn_buf_init(&res->out);
    sink = mn_buf_sink(&res->out);
    st = mn_wire_gemini.stream_create(&ctx);
    assert_non_null(st);
    baton[0] = st;
    baton[1] = res;
    baton[2] = &sink;
    res->status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, run_cb, baton);
    mn_sse_feed(&p, text, strlen(text));
    mn_sse_finish(&p);
    mn_sse_free(&p);
    if (res->status == MN_STREAM_MORE) {
        res->status = mn_wire_gemini.stream_end(st, cause, &sink);
    }
    /* a finished stream writes nothing more */
    {
        size_t before = res->out.len;
        assert_int_equal(mn_wire_gemini.stream_end(st, NULL, &sink), res->status);
        assert_int_equal(res->out.len, before);
    }
    res->usage = *mn_wire_gemini.stream_usage(st);
    e = mn_wire_gemini.stream_error(st);
    if (e) {
        res->err = *e;
        res->have_err = 1;
    }
    mn_wire_gemini.stream_destroy(st);
    free(text);
}

static void assert_stream(run_result *res, const char *want_q)
{
    char *want = strdup(want_q);
    char *c;
    for (c = want; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    mn_t_assert_frames(res->out.data, res->out.len, want, strlen(want), PROVIDER, 0);
    free(want);
    mn_buf_free(&res->out);
}

#define HEAD "'id':'R','object':'chat.completion.chunk','created':1767225600,'model':'m'"
#define ROLE "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''}," \
             "'logprobs':null,'finish_reason':null}]}\n\n"
#define DELTA(d) "data: {" HEAD ",'choices':[{'index':0,'delta':" d ",'logprobs':null," \
                 "'finish_reason':null}]}\n\n"
#define FINISH(f) "data: {" HEAD ",'choices':[{'index':0,'delta':{},'logprobs':null," \
                  "'finish_reason':'" f "'}]}\n\n"
#define DONE "data: [DONE]\n\n"
#define EV(j) "data: " j "\r\n\r\n"

static void test_stream_tool_index_and_ids(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'candidates':[{'content':{'role':'model','parts':["
           "{'functionCall':{'name':'a','args':{'x':1}}},"
           "{'functionCall':{'id':'own-id','name':'b'}}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'role':'model','parts':[{'text':''},"
           "{'functionCall':{'name':'c','args':{}}}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_false(res.have_err);
    assert_stream(&res,
        ROLE
        DELTA("{'tool_calls':[{'index':0,'id':'call_R_0','type':'function',"
              "'function':{'name':'a','arguments':'{\\'x\\':1}'}}]}")
        DELTA("{'tool_calls':[{'index':1,'id':'own-id','type':'function',"
              "'function':{'name':'b','arguments':'{}'}}]}")
        DELTA("{'tool_calls':[{'index':2,'id':'call_R_2','type':'function',"
              "'function':{'name':'c','arguments':'{}'}}]}")
        FINISH("tool_calls")
        DONE);
}

static void test_stream_thoughts_and_finish_map(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'hmm','thought':true},{'text':'A'}]}}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]},'finishReason':'MAX_TOKENS'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'late'}]}}],'responseId':'R',"
           "'modelVersion':'m','usageMetadata':{'promptTokenCount':2,'candidatesTokenCount':3,"
           "'thoughtsTokenCount':4,'cachedContentTokenCount':1,'totalTokenCount':9}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    /* with include_usage every chunk carries usage:null */
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'B'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'late'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{},"
        "'logprobs':null,'finish_reason':'length'}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[],'usage':{'prompt_tokens':2,'completion_tokens':7,"
        "'total_tokens':9,'prompt_tokens_details':{'cached_tokens':1},"
        "'completion_tokens_details':{'reasoning_tokens':4}}}\n\n"
        DONE);
    /* the last usageMetadata wins, even after the finish */
    assert_int_equal(res.usage.have, 1);
    assert_int_equal(res.usage.prompt_tokens, 2);
    assert_int_equal(res.usage.completion_tokens, 7);
    assert_int_equal(res.usage.total_tokens, 9);

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'SAFETY'}],"
           "'responseId':'R','modelVersion':'m'}"), 0, NULL, &res);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") FINISH("content_filter") DONE);
}

static void test_stream_reasoning_content_provider(void **state)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    mn_buf out;
    const char *in = "data: {\"candidates\":[{\"content\":{\"parts\":[{\"text\":\"hmm\","
                     "\"thought\":true},{\"text\":\"A\"}]},\"finishReason\":\"STOP\"}],"
                     "\"responseId\":\"R\",\"modelVersion\":\"m\"}\r\n\r\n";
    char *want = strdup(ROLE DELTA("{'reasoning_content':'hmm'}") DELTA("{'content':'A'}")
                        FINISH("stop") DONE);
    char *c;
    for (c = want; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    ctx_for(&ctx, &prov, state, 1, 0);
    prov.reasoning_content = 1;
    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_gemini, &ctx, in, strlen(in), 0, &out),
                     MN_STREAM_DONE);
    mn_t_assert_frames(out.data, out.len, want, strlen(want), PROVIDER, 0);
    mn_buf_free(&out);
    free(want);
}

static void test_stream_blocked_prompt(void **state)
{
    run_result res;
    run_stream(state,
        EV("{'promptFeedback':{'blockReason':'PROHIBITED_CONTENT'},'usageMetadata':"
           "{'promptTokenCount':14,'totalTokenCount':14},'responseId':'R','modelVersion':'m'}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{},"
        "'logprobs':null,'finish_reason':'content_filter'}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[],'usage':{'prompt_tokens':14,'completion_tokens':0,"
        "'total_tokens':14,'prompt_tokens_details':{'cached_tokens':0}}}\n\n"
        DONE);
}

static void test_stream_error_frames(void **state)
{
    run_result res;
    mn_error cause;

    /* an error object in a data: frame, type from status */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'error':{'code':429,'message':'quota','status':'RESOURCE_EXHAUSTED'}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_true(res.have_err);
    assert_int_equal(res.err.status, 429);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {'error':{'message':'quota','type':'rate_limit_error','param':null,"
        "'code':'RESOURCE_EXHAUSTED'}}\n\n"
        DONE);

    /* EOF without a finish reason */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_eof");
    assert_int_equal(res.err.status, 502);
    assert_stream(&res, ROLE DELTA("{'content':'A'}")
        "data: {'error':{'message':'upstream closed the stream before a finish reason',"
        "'type':'upstream_error','param':null,'code':'upstream_eof'}}\n\n" DONE);

    /* a cause given to stream_end wins, even after a finishReason (the
     * finish chunk is only sent at a clean end) */
    mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout", "upstream went quiet");
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}"),
        1, &cause, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 504);
    assert_stream(&res,
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'role':'assistant','content':''},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {" HEAD ",'choices':[{'index':0,'delta':{'content':'A'},"
        "'logprobs':null,'finish_reason':null}],'usage':null}\n\n"
        "data: {'error':{'message':'upstream went quiet','type':'timeout_error','param':null,"
        "'code':'upstream_timeout'}}\n\n" DONE);

    /* a frame that is not JSON */
    run_stream(state, "data: {oops\r\n\r\n", 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_stream(&res,
        "data: {'error':{'message':'upstream sent a stream event that is not a JSON object',"
        "'type':'upstream_error','param':null,'code':'upstream_bad_response'}}\n\n" DONE);
}

static void test_stream_raw_lines(void **state)
{
    run_result res;

    /* stray raw text and a non-error raw object are ignored; braces inside
     * strings do not end the object early; a compact raw error is found */
    run_stream(state,
        "garbage line\r\n"
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        "{\n  'note': 'not an error }'\n}\n"
        "[{'error': {'code': 500, 'message': 'x { y', 'status': 'INTERNAL'}}]\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 500);
    assert_stream(&res, ROLE DELTA("{'content':'A'}")
        "data: {'error':{'message':'x { y','type':'server_error','param':null,"
        "'code':'INTERNAL'}}\n\n" DONE);

    /* an unterminated raw object is still tried at EOF */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]}}],'responseId':'R','modelVersion':'m'}")
        "{\n  'error': {'code': 503, 'message': 'busy', 'status': 'UNAVAILABLE'}\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_eof");
    mn_buf_free(&res.out);
}

static void test_stream_raw_overflow(void **state)
{
    run_result res;
    mn_buf in;
    size_t i;
    const char *line = "  'k': 'xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx',\n";

    mn_buf_init(&in);
    mn_buf_append(&in, "{\n", 2);
    for (i = 0; i < 2000; i++) {
        mn_buf_append(&in, line, strlen(line));
    }
    run_stream(state, in.data, 0, NULL, &res);
    mn_buf_free(&in);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_int_equal(res.err.status, 502);
    mn_buf_free(&res.out);
}

/* Every JSON frame of out carries the same made-up id (chatcmpl- and 24 hex
 * digits); it is replaced by "" in out, for comparing the rest.  Returns
 * the id (static). */
static const char *take_made_id(mn_buf *out)
{
    static char id[64];
    json_t *frames = mn_t_data_frames(out->data, out->len);
    json_t *fr;
    size_t i, n = 0;
    mn_buf copy;
    char *at;

    id[0] = '\0';
    json_array_foreach(frames, i, fr) {
        json_t *j = json_loads(json_string_value(fr), 0, NULL);
        const char *v = json_string_value(json_object_get(j, "id"));
        if (v) {
            if (!id[0]) {
                assert_int_equal(strlen(v), 33);
                assert_memory_equal(v, "chatcmpl-", 9);
                assert_int_equal(strspn(v + 9, "0123456789abcdef"), 24);
                snprintf(id, sizeof(id), "%s", v);
            }
            assert_string_equal(v, id);
            n++;
        }
        json_decref(j);
    }
    json_decref(frames);
    assert_true(n > 0);
    mn_buf_init(&copy);
    mn_buf_append(&copy, out->data, out->len);
    mn_buf_append(&copy, "", 1);
    mn_buf_reset(out);
    for (at = copy.data; *at;) {
        char *hit = strstr(at, id);
        size_t len = hit ? (size_t)(hit - at) : strlen(at);
        mn_buf_append(out, at, len);
        at += len + (hit ? strlen(id) : 0);
    }
    mn_buf_free(&copy);
    return id;
}

static void test_stream_role_chunk_without_ids(void **state)
{
    run_result res;
    char first[64];
    /* an event without responseId/modelVersion: the request's model stands
     * in, and an id of ours, the same on every chunk */
    run_stream(state, EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}]}"),
               0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    snprintf(first, sizeof(first), "%s", take_made_id(&res.out));
    assert_stream(&res,
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'role':'assistant','content':''},'logprobs':null,"
        "'finish_reason':null}]}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'content':'A'},'logprobs':null,"
        "'finish_reason':null}]}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'stop'}]}\n\n"
        DONE);

    /* a blocked prompt (no responseId, no candidates), with the usage
     * chunk; a later responseId does not change the id mid-stream; every
     * stream gets its own */
    run_stream(state,
        EV("{'promptFeedback':{'blockReason':'SAFETY'},'usageMetadata':{'promptTokenCount':3}}")
        EV("{'usageMetadata':{'promptTokenCount':3},'responseId':'LATE'}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_string_not_equal(take_made_id(&res.out), first);
    assert_stream(&res,
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{'role':'assistant','content':''},'logprobs':null,"
        "'finish_reason':null}],'usage':null}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[{'index':0,'delta':{},'logprobs':null,'finish_reason':'content_filter'}],"
        "'usage':null}\n\n"
        "data: {'id':'','object':'chat.completion.chunk','created':1767225600,'model':'" MODEL "',"
        "'choices':[],'usage':{'prompt_tokens':3,'completion_tokens':0,'total_tokens':3,"
        "'prompt_tokens_details':{'cached_tokens':0}}}\n\n"
        DONE);
}

/* Replayed from what Gemini and Vertex have been recorded sending: text
 * after the finishReason, then an error.  Every text reaches the client. */
static void test_stream_text_after_finish(void **state)
{
    run_result res;

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'error':{'code':500,'message':'boom','status':'INTERNAL'}}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_int_equal(res.err.status, 500);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        "data: {'error':{'message':'boom','type':'server_error','param':null,"
        "'code':'INTERNAL'}}\n\n" DONE);

    /* the same with the error as raw JSON after the events (Vertex) */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        "[{\n  'error': {'code': 503, 'message': 'busy', 'status': 'UNAVAILABLE'}\n}]\n",
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        "data: {'error':{'message':'busy','type':'server_error','param':null,"
        "'code':'UNAVAILABLE'}}\n\n" DONE);

    /* more text after STOP and a clean end: the text, one finish (the last
     * finishReason's) */
    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'B'}]}}],'responseId':'R','modelVersion':'m'}")
        EV("{'candidates':[{'content':{'parts':[{'text':'C'}]},'finishReason':'MAX_TOKENS'}],"
           "'responseId':'R','modelVersion':'m'}"),
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE DELTA("{'content':'A'}") DELTA("{'content':'B'}")
        DELTA("{'content':'C'}") FINISH("length") DONE);
}

#define FC_EV(fc) EV("{'candidates':[{'content':{'role':'model','parts':[{'functionCall':" fc \
                     "}]}}],'responseId':'R','modelVersion':'m'}")
#define FC_START(i, name) DELTA("{'tool_calls':[{'index':" #i ",'id':'call_R_" #i "'," \
                                "'type':'function','function':{'name':'" name "','arguments':''}}]}")
#define FC_ARGS(i, a) DELTA("{'tool_calls':[{'index':" #i ",'function':{'arguments':'" a "'}}]}")
#define STOP_EV EV("{'candidates':[{'content':{'parts':[]},'finishReason':'STOP'}],'responseId':'R'," \
                   "'modelVersion':'m'}")

/* Vertex streamFunctionCallArguments: a named part opens the call, nameless
 * parts carry partialArgs (jsonPath + value; a string continues while
 * willContinue), the part without willContinue ends it. */
static void test_stream_partial_args(void **state)
{
    run_result res;

    run_stream(state,
        FC_EV("{'name':'get_weather','willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.location','stringValue':'Bos','willContinue':true}],"
              "'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.location','stringValue':'ton'}],'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.days','numberValue':3},"
              "{'jsonPath':'$.opts.units[0]','stringValue':'C'},"
              "{'jsonPath':'$.opts.units[1]','stringValue':'F'},"
              "{'jsonPath':'$[\\u0027opts\\u0027][\\u0027metric\\u0027]','boolValue':true},"
              "{'jsonPath':'$.note','nullValue':'NULL_VALUE'}],'willContinue':true}")
        FC_EV("{}")
        /* a nameless part with no call open is no call */
        FC_EV("{'partialArgs':[{'jsonPath':'$.x','stringValue':'y'}]}")
        FC_EV("{'args':{'k':1}}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FC_START(0, "get_weather")
        FC_ARGS(0, "{\\'location\\':\\'Boston\\',\\'days\\':3,\\'opts\\':{\\'units\\':"
                   "[\\'C\\',\\'F\\'],\\'metric\\':true},\\'note\\':null}")
        FINISH("tool_calls") DONE);

    /* a second named call closes the first; a call may start with args;
     * the finish closes the last one */
    run_stream(state,
        FC_EV("{'name':'a','args':{'p':1},'willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.q','stringValue':'x'}],'willContinue':true}")
        FC_EV("{'name':'b','partialArgs':[{'jsonPath':'$.r','boolValue':false}],'willContinue':true}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FC_START(0, "a")
        FC_ARGS(0, "{\\'p\\':1,\\'q\\':\\'x\\'}")
        FC_START(1, "b")
        FC_ARGS(1, "{\\'r\\':false}")
        FINISH("tool_calls") DONE);

    /* a path that does not fit what is there fails the stream */
    run_stream(state,
        FC_EV("{'name':'a','willContinue':true}")
        FC_EV("{'partialArgs':[{'jsonPath':'$.v','numberValue':1},"
              "{'jsonPath':'$.v.w','numberValue':2}],'willContinue':true}")
        STOP_EV,
        0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_int_equal(res.err.status, 502);
    assert_stream(&res, ROLE FC_START(0, "a")
        "data: {'error':{'message':'upstream streamed function-call arguments with a JSON path "
        "that does not fit the arguments','type':'upstream_error','param':null,"
        "'code':'upstream_bad_response'}}\n\n" DONE);
}

static void test_stream_partial_args_bounded(void **state)
{
    run_result res;
    mn_buf in;
    size_t i;
    char *chunk = malloc(70000);

    /* 100 fragments of 64 KB, appended to one string: over the 4 MiB bound */
    memset(chunk, 'x', 65536);
    chunk[65536] = '\0';
    mn_buf_init(&in);
    buf_puts(&in, FC_EV("{'name':'a','willContinue':true}"));
    for (i = 0; i < 100; i++) {
        buf_puts(&in, "data: {'candidates':[{'content':{'parts':[{'functionCall':{'partialArgs':"
                      "[{'jsonPath':'$.s','willContinue':true,'stringValue':'");
        buf_puts(&in, chunk);
        buf_puts(&in, "'}],'willContinue':true}}]}}]}\r\n\r\n");
    }
    mn_buf_append(&in, "", 1);
    run_stream(state, in.data, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.code, "upstream_bad_response");
    assert_string_equal(res.err.message,
                        "upstream streamed function-call arguments over the size limit");
    mn_buf_free(&res.out);

    /* the same through whole args objects, each under a new key */
    mn_buf_reset(&in);
    buf_puts(&in, FC_EV("{'name':'a','willContinue':true}"));
    for (i = 0; i < 100; i++) {
        char key[32];
        snprintf(key, sizeof(key), "k%zu", i);
        buf_puts(&in, "data: {'candidates':[{'content':{'parts':[{'functionCall':{'args':{'");
        buf_puts(&in, key);
        buf_puts(&in, "':'");
        buf_puts(&in, chunk);
        buf_puts(&in, "'},'willContinue':true}}]}}]}\r\n\r\n");
    }
    mn_buf_append(&in, "", 1);
    run_stream(state, in.data, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_FAILED);
    assert_string_equal(res.err.message,
                        "upstream streamed function-call arguments over the size limit");
    mn_buf_free(&res.out);
    mn_buf_free(&in);
    free(chunk);
}

/* Found by fuzzing: a nameless functionCall leaked (and became a call named
 * ""); it is no call at all, in answers and in streams. */
static void test_nameless_function_call(void **state)
{
    mn_usage usage;
    run_result res;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'functionCall':{'args':{'a':1}}},"
        "{'functionCall':{'name':''}},{'functionCall':{'name':7}},"
        "{'functionCall':{'name':'g'}}]},'finishReason':'STOP'}],'responseId':'R'}", &usage);
    assert_jq(json_object_get(json_array_get(json_object_get(got, "choices"), 0), "message"),
        "{'role':'assistant','content':null,'refusal':null,"
        " 'tool_calls':[{'id':'call_R_0','type':'function','function':{'name':'g',"
        "   'arguments':'{}'}}]}");
    json_decref(got);

    got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'text':'t'},{'functionCall':{}}]},"
        "'finishReason':'STOP'}],'responseId':'R'}", &usage);
    assert_jq(json_array_get(json_object_get(got, "choices"), 0),
        "{'index':0,'message':{'role':'assistant','content':'t','refusal':null},"
        "'logprobs':null,'finish_reason':'stop'}");
    json_decref(got);

    run_stream(state,
        FC_EV("{'args':{'a':1}}") FC_EV("{'name':''}") STOP_EV, 0, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_stream(&res, ROLE FINISH("stop") DONE);
}

/* Found by fuzzing: token counts near the top of the range wrapped the
 * sums negative.  Negative counts read as 0, sums saturate. */
static void test_usage_saturates(void **state)
{
    mn_usage usage;
    run_result res;
    json_t *got = decode_q(state,
        "{'candidates':[{'content':{'parts':[{'text':'t'}]},'finishReason':'STOP'}],"
        "'responseId':'R','usageMetadata':{'promptTokenCount':9223372036854775807,"
        "'toolUsePromptTokenCount':9223372036854775807,'candidatesTokenCount':-5,"
        "'thoughtsTokenCount':9223372036854775000,'cachedContentTokenCount':-1}}", &usage);
    assert_jq(json_object_get(got, "usage"),
        "{'prompt_tokens':9223372036854775807,'completion_tokens':9223372036854775000,"
        "'total_tokens':9223372036854775807,'prompt_tokens_details':{'cached_tokens':0},"
        "'completion_tokens_details':{'reasoning_tokens':9223372036854775000}}");
    assert_true(usage.prompt_tokens == LONG_MAX);
    assert_true(usage.completion_tokens == 9223372036854775000L);
    assert_true(usage.total_tokens == LONG_MAX);
    json_decref(got);

    run_stream(state,
        EV("{'candidates':[{'content':{'parts':[{'text':'A'}]},'finishReason':'STOP'}],"
           "'responseId':'R','modelVersion':'m','usageMetadata':{'promptTokenCount':-7,"
           "'candidatesTokenCount':9223372036854775807,'thoughtsTokenCount':1,"
           "'totalTokenCount':-3}}"),
        1, NULL, &res);
    assert_int_equal(res.status, MN_STREAM_DONE);
    assert_true(res.usage.prompt_tokens == 0);
    assert_true(res.usage.completion_tokens == LONG_MAX);
    assert_true(res.usage.total_tokens == 0);
    mn_buf_free(&res.out);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_stream_text_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_call_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_midstream_fixture, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_tool_index_and_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_thoughts_and_finish_map, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_reasoning_content_provider, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_blocked_prompt, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_error_frames, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw_lines, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_raw_overflow, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_role_chunk_without_ids, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_text_after_finish, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_partial_args, setup, teardown),
        cmocka_unit_test_setup_teardown(test_stream_partial_args_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_nameless_function_call, setup, teardown),
        cmocka_unit_test_setup_teardown(test_usage_saturates, setup, teardown),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
