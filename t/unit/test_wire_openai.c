/* Unit tests for src/wire/openai.c: OpenAI-compatible upstreams. */
#include "harness.h"

#define PROVIDER "openai-test"

typedef struct {
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
} fixture;

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof(*f));
    if (!f || apr_pool_create(&f->pool, NULL) != APR_SUCCESS) {
        return -1;
    }
    mn_t_ctx(&f->ctx, f->pool, &f->prov, PROVIDER, MN_FORMAT_OPENAI, 1, 1);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture *f = *state;
    apr_pool_destroy(f->pool);
    free(f);
    return 0;
}

static void assert_json_equal(json_t *got, json_t *want)
{
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("JSON differs\n got: %s\nwant: %s", g, w);
    }
}

/* ---- encode ---------------------------------------------------------------------- */

/* Encodes req_text with the fixture's ctx; returns the upstream body parsed. */
static json_t *encode(fixture *f, const char *req_text, mn_upstream_req *out)
{
    json_t *req = mn_t_json(req_text);
    json_t *body;
    mn_error err;
    mn_error_clear(&err);
    memset(out, 0, sizeof(*out));
    assert_int_equal(mn_wire_openai.encode_request(&f->ctx, req, out, &err), 0);
    assert_false(mn_error_is_set(&err));
    assert_non_null(out->body);
    assert_int_equal(out->body_len, strlen(out->body));
    body = json_loadb(out->body, out->body_len, 0, NULL);
    assert_non_null(body);
    json_decref(req);
    return body;
}

static void test_encode_stream(void **state)
{
    fixture *f = *state;
    mn_upstream_req out;
    json_t *body = encode(f, "{\"model\":\"openai/gpt-4o-mini\",\"messages\":[{\"role\":\"user\","
                             "\"content\":\"hi\"}],\"stream\":true,\"temperature\":0.5,"
                             "\"stream_options\":{\"include_usage\":false,\"continuous\":1},"
                             "\"top_k\":3}", &out);
    json_t *want = mn_t_json("{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\","
                        "\"content\":\"hi\"}],\"stream\":true,\"temperature\":0.5,"
                        "\"stream_options\":{\"include_usage\":true,\"continuous\":1},"
                        "\"top_k\":3}");
    assert_json_equal(body, want);
    assert_string_equal(out.path, "/chat/completions");
    assert_string_equal(apr_table_get(out.headers, "Authorization"), "Bearer sk-test-key");
    assert_string_equal(apr_table_get(out.headers, "Content-Type"), "application/json");
    assert_string_equal(apr_table_get(out.headers, "Accept"), "text/event-stream");
    json_decref(body);
    json_decref(want);
}

/* Usage is always asked for upstream, so tokens can be logged even when the
 * client did not ask. */
static void test_encode_stream_adds_options(void **state)
{
    fixture *f = *state;
    mn_upstream_req out;
    json_t *body;
    f->ctx.include_usage = 0;
    body = encode(f, "{\"model\":\"p/m\",\"messages\":[],\"stream\":true}", &out);
    assert_true(json_is_true(json_object_get(json_object_get(body, "stream_options"),
                                             "include_usage")));
    assert_int_equal(json_object_size(json_object_get(body, "stream_options")), 1);
    json_decref(body);
    body = encode(f, "{\"model\":\"p/m\",\"messages\":[],\"stream\":true,"
                     "\"stream_options\":null}", &out);
    assert_true(json_is_true(json_object_get(json_object_get(body, "stream_options"),
                                             "include_usage")));
    json_decref(body);
}

/* The body is byte for byte Jansson's compact dump of the edited request,
 * NUL-terminated, at every size around the pool buffer's first size and its
 * doublings (escapes and multi-byte text included). */
static void test_encode_bytes_exact(void **state)
{
    static const size_t sizes[] = { 0, 900, 950, 960, 970, 980, 990, 1000, 1010, 2000, 2047,
                                    5000, 70000 };
    fixture *f = *state;
    size_t i;

    for (i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
        char *text = malloc(sizes[i] + 1);
        json_t *req;
        mn_upstream_req out;
        mn_error err;
        char *want;
        size_t k;

        for (k = 0; k < sizes[i]; k++) {
            text[k] = "ab\"\n\\c"[k % 7];
        }
        text[sizes[i]] = '\0';
        req = json_pack("{s:s,s:[{s:s,s:s},{s:s,s:s}],s:f,s:i,s:{s:b}}", "model", "p/m",
                        "messages", "role", "system", "content", "\xc3\xa9t\xc3\xa9", "role",
                        "user", "content", text, "temperature", 0.7, "max_tokens", 256,
                        "stream_options", "include_usage", 1);
        mn_error_clear(&err);
        memset(&out, 0, sizeof(out));
        f->ctx.stream = i % 2;
        assert_int_equal(mn_wire_openai.encode_request(&f->ctx, req, &out, &err), 0);
        want = json_dumps(req, JSON_COMPACT);
        assert_int_equal(out.body_len, strlen(want));
        assert_memory_equal(out.body, want, out.body_len + 1);
        free(want);
        free(text);
        json_decref(req);
    }
}

static void test_encode_fixture_request(void **state)
{
    fixture *f = *state;
    mn_upstream_req out;
    size_t len;
    char *text = mn_t_fixture("requests/openai_text.json", &len);
    json_t *body = encode(f, text, &out);
    json_t *want = mn_t_fixture_json("requests/openai_text.json");
    json_object_set_new(want, "model", json_string("test-model"));
    assert_json_equal(body, want);
    json_decref(body);
    json_decref(want);
    free(text);
}

static void test_encode_non_stream(void **state)
{
    fixture *f = *state;
    mn_upstream_req out;
    json_t *body, *want;
    f->ctx.stream = 0;
    f->ctx.include_usage = 0;
    body = encode(f, "{\"model\":\"p/m\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                     "\"stream_options\":{\"include_usage\":true},\"n\":1}", &out);
    want = mn_t_json("{\"model\":\"test-model\",\"messages\":[{\"role\":\"user\",\"content\":\"x\"}],"
                "\"n\":1}");
    assert_json_equal(body, want);
    assert_string_equal(apr_table_get(out.headers, "Accept"), "application/json");
    assert_string_equal(out.path, "/chat/completions");
    json_decref(body);
    json_decref(want);
}

/* Keyless upstreams (local vLLM, Ollama) get no Authorization at all. */
static void test_encode_no_key(void **state)
{
    fixture *f = *state;
    mn_upstream_req out;
    json_t *body;
    f->prov.key = NULL;
    body = encode(f, "{\"model\":\"p/m\",\"messages\":[]}", &out);
    assert_null(apr_table_get(out.headers, "Authorization"));
    json_decref(body);
}

/* ---- non-streaming answers ------------------------------------------------------- */

static void check_response_fixture(fixture *f, const char *rel, long prompt, long completion,
                                   long total)
{
    size_t len;
    char *text = mn_t_fixture(rel, &len);
    json_t *want = mn_t_fixture_json(rel);
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    f->ctx.stream = 0;
    assert_int_equal(mn_wire_openai.decode_response(&f->ctx, text, len, &out, &u, &err), 0);
    json_object_set_new(want, "provider", json_string(PROVIDER));
    assert_json_equal(out, want);
    assert_int_equal(u.have, 1);
    assert_int_equal(u.prompt_tokens, prompt);
    assert_int_equal(u.completion_tokens, completion);
    assert_int_equal(u.total_tokens, total);
    json_decref(out);
    json_decref(want);
    free(text);
}

static void test_decode_response_text(void **state)
{
    check_response_fixture(*state, "openai/response_text.json", 24, 19, 43);
}

static void test_decode_response_tool_call(void **state)
{
    json_t *j = mn_t_fixture_json("openai/response_tool_call.json");
    json_t *usage = json_object_get(j, "usage");
    check_response_fixture(*state, "openai/response_tool_call.json",
                           (long)json_integer_value(json_object_get(usage, "prompt_tokens")),
                           (long)json_integer_value(json_object_get(usage, "completion_tokens")),
                           (long)json_integer_value(json_object_get(usage, "total_tokens")));
    json_decref(j);
}

static void test_decode_response_without_usage(void **state)
{
    fixture *f = *state;
    const char *body = "{\"id\":\"x\",\"object\":\"chat.completion\",\"choices\":[]}";
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_openai.decode_response(&f->ctx, body, strlen(body), &out, &u,
                                                    &err), 0);
    assert_int_equal(u.have, 0);
    assert_string_equal(json_string_value(json_object_get(out, "provider")), PROVIDER);
    json_decref(out);
}

/* A 2xx body that is not a completion: 502, and *out left alone. */
static void expect_bad_response(fixture *f, const char *body, const char *code,
                                const char *message)
{
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    memset(&u, 0, sizeof(u));
    mn_error_clear(&err);
    assert_int_equal(mn_wire_openai.decode_response(&f->ctx, body, strlen(body), &out, &u,
                                                    &err), -1);
    assert_null(out);
    assert_int_equal(err.status, 502);
    assert_string_equal(err.code, code);
    if (message) {
        assert_string_equal(err.message, message);
    }
    else {
        assert_true(strlen(err.message) > 0);
    }
}

static void test_decode_response_failures(void **state)
{
    fixture *f = *state;
    expect_bad_response(f, "<html>502</html>", "upstream_bad_response", NULL);
    expect_bad_response(f, "", "upstream_bad_response", NULL);
    expect_bad_response(f, "{\"id\":\"chatcmpl-1\",\"object\":\"chat.completion\"}",
                        "upstream_bad_response", NULL);
    expect_bad_response(f, "{\"choices\":{}}", "upstream_bad_response", NULL);
    expect_bad_response(f, "[1]", "upstream_bad_response", NULL);
    expect_bad_response(f, "{\"error\":{\"message\":\"quota gone\",\"type\":\"insufficient_quota\","
                           "\"param\":null,\"code\":\"insufficient_quota\"}}",
                        "insufficient_quota", "quota gone");
    expect_bad_response(f, "{\"error\":\"model is loading\"}", "", "model is loading");
}

/* ---- errors before the stream ------------------------------------------------------ */

static void test_decode_error(void **state)
{
    fixture *f = *state;
    size_t len;
    char *body = mn_t_fixture("openai/error_429_rate_limit.json", &len);
    mn_error err;
    memset(&err, 0x5a, sizeof(err));
    mn_wire_openai.decode_error(&f->ctx, 429, body, len, "17", &err);
    assert_int_equal(err.status, 429);
    assert_string_equal(err.type, "tokens");
    assert_string_equal(err.code, "rate_limit_exceeded");
    assert_string_equal(err.param, "");
    assert_string_equal(err.retry_after, "17");
    assert_non_null(strstr(err.message, "Rate limit reached"));

    memset(&err, 0x5a, sizeof(err));
    mn_wire_openai.decode_error(&f->ctx, 401, body, len, NULL, &err);
    assert_int_equal(err.status, 401);
    assert_string_equal(err.retry_after, "");

    /* an over-long value is capped (a day), not overflowed or cut */
    mn_wire_openai.decode_error(&f->ctx, 503, "oops", 4,
                                "123456789012345678901234567890123456789", &err);
    assert_int_equal(err.status, 503);
    assert_string_equal(err.type, "server_error");
    assert_string_equal(err.retry_after, "86400");
    /* junk is not forwarded */
    mn_wire_openai.decode_error(&f->ctx, 503, "oops", 4, "soon!", &err);
    assert_string_equal(err.retry_after, "");
    free(body);
}

/* An upstream that echoes a key (any of the round-robin list) in code,
 * param or type: none of it reaches the client or the log. */
static void test_decode_error_keys_scrubbed(void **state)
{
    static const char *const keys[] = { "sk-test-key", "sk-other-key-2" };
    fixture *f = *state;
    const char *body = "{\"error\":{\"message\":\"bad sk-other-key-2\",\"type\":\"sk-test-key\","
                       "\"param\":\"k=sk-other-key-2\",\"code\":\"sk-test-key\"}}";
    mn_error err;
    f->prov.keys = keys;
    f->prov.nkeys = 2;
    mn_wire_openai.decode_error(&f->ctx, 401, body, strlen(body), NULL, &err);
    assert_string_equal(err.message, "bad ***");
    assert_string_equal(err.type, "***");
    assert_string_equal(err.param, "k=***");
    assert_string_equal(err.code, "***");
    /* a 200 that is an error, and a mid-stream error frame */
    assert_int_equal(mn_wire_openai.decode_response(&f->ctx, body, strlen(body), &(json_t *){NULL},
                                                    &(mn_usage){0}, &err), -1);
    assert_string_equal(err.code, "***");
    assert_string_equal(err.param, "k=***");
}

/* ---- streaming ---------------------------------------------------------------------- */

/* Replays bytes whole and one byte at a time, checking the frames against
 * want; then at every split offset (every 23rd under valgrind), where the
 * output must be byte-identical to the whole feed's. */
static void replay_all_splits(fixture *f, const char *bytes, size_t len, const char *want,
                              size_t want_len, mn_stream_status want_status)
{
    size_t split, step = mn_t_quick() ? 23 : 1;
    mn_buf whole, out;
    mn_buf_init(&whole);
    assert_int_equal(mn_t_replay_stream(&mn_wire_openai, &f->ctx, bytes, len, 0, &whole),
                     want_status);
    mn_t_assert_frames(whole.data, whole.len, want, want_len, PROVIDER, 0);

    mn_buf_init(&out);
    assert_int_equal(mn_t_replay_stream(&mn_wire_openai, &f->ctx, bytes, len, (size_t)-1, &out),
                     want_status);
    mn_t_assert_frames(out.data, out.len, want, want_len, PROVIDER, 0);
    mn_buf_free(&out);

    for (split = 1; split < len; split += step) {
        mn_stream_status st;
        mn_buf_init(&out);
        st = mn_t_replay_stream(&mn_wire_openai, &f->ctx, bytes, len, split, &out);
        if (st != want_status) {
            fail_msg("split %zu: status %d, want %d", split, st, want_status);
        }
        if (out.len != whole.len || memcmp(out.data, whole.data, whole.len)) {
            /* show the difference as frames */
            mn_t_assert_frames(out.data, out.len, want, want_len, PROVIDER, 0);
            fail_msg("split %zu: output differs from the whole feed", split);
        }
        mn_buf_free(&out);
    }
    mn_buf_free(&whole);
}

static void check_stream_fixture(fixture *f, const char *rel, int include_usage)
{
    size_t len, want_len;
    char *text = mn_t_fixture(rel, &len);
    char *want;
    f->ctx.include_usage = include_usage;
    if (include_usage) {
        want = text;
        want_len = len;
    }
    else {
        want = mn_t_without_usage(text, len, &want_len);
    }
    replay_all_splits(f, text, len, want, want_len, MN_STREAM_DONE);
    if (want != text) {
        free(want);
    }
    free(text);
}

static void test_stream_text_usage(void **state)
{
    check_stream_fixture(*state, "openai/stream_text.sse", 1);
}

static void test_stream_text_no_usage(void **state)
{
    check_stream_fixture(*state, "openai/stream_text.sse", 0);
}

static void test_stream_tool_call_usage(void **state)
{
    check_stream_fixture(*state, "openai/stream_tool_call.sse", 1);
}

static void test_stream_tool_call_no_usage(void **state)
{
    check_stream_fixture(*state, "openai/stream_tool_call.sse", 0);
}

/* The without-usage rewrite itself: it must really change something, or
 * the no-usage tests above would prove nothing. */
static void test_without_usage_sanity(void **state)
{
    size_t len, wlen;
    char *text = mn_t_fixture("openai/stream_text.sse", &len);
    char *w = mn_t_without_usage(text, len, &wlen);
    json_t *a = mn_t_data_frames(text, len);
    json_t *b = mn_t_data_frames(w, wlen);
    assert_int_equal(json_array_size(b), json_array_size(a) - 1);
    assert_null(strstr(w, "\"usage\""));
    assert_non_null(strstr(text, "\"usage\""));
    json_decref(a);
    json_decref(b);
    free(w);
    free(text);
}

/* A stream run whole that keeps the translator so its state can be read. */
typedef struct {
    mn_buf out;
    mn_stream_status status;
    mn_usage usage;
    mn_error err;
    int have_err;
} run_result;

static void run_stream(fixture *f, const char *bytes, size_t len, const mn_error *cause,
                       run_result *r)
{
    mn_sse_parser p;
    mn_sink sink;
    mn_t_replay rp;
    const mn_error *e;
    mn_buf_init(&r->out);
    sink = mn_buf_sink(&r->out);
    rp.wire = &mn_wire_openai;
    rp.out = &sink;
    rp.st = mn_wire_openai.stream_create(&f->ctx);
    rp.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &rp);
    mn_sse_feed(&p, bytes, len);
    mn_sse_finish(&p);
    mn_sse_free(&p);
    if (rp.status == MN_STREAM_MORE) {
        rp.status = mn_wire_openai.stream_end(rp.st, cause, &sink);
    }
    r->status = rp.status;
    r->usage = *mn_wire_openai.stream_usage(rp.st);
    e = mn_wire_openai.stream_error(rp.st);
    r->have_err = e != NULL;
    if (e) {
        r->err = *e;
    }
    mn_wire_openai.stream_destroy(rp.st);
}

static void run_text(fixture *f, const char *text, const mn_error *cause, run_result *r)
{
    run_stream(f, text, strlen(text), cause, r);
}

static void test_stream_usage_recorded(void **state)
{
    fixture *f = *state;
    size_t len;
    char *text = mn_t_fixture("openai/stream_text.sse", &len);
    run_result r;
    int iu;
    for (iu = 0; iu <= 1; iu++) {
        f->ctx.include_usage = iu;
        run_stream(f, text, len, NULL, &r);
        assert_int_equal(r.status, MN_STREAM_DONE);
        assert_false(r.have_err);
        assert_int_equal(r.usage.have, 1);
        assert_int_equal(r.usage.prompt_tokens, 24);
        assert_int_equal(r.usage.completion_tokens, 19);
        assert_int_equal(r.usage.total_tokens, 43);
        mn_buf_free(&r.out);
    }
    free(text);
    text = mn_t_fixture("openai/stream_tool_call.sse", &len);
    f->ctx.include_usage = 0;
    run_stream(f, text, len, NULL, &r);
    assert_int_equal(r.usage.prompt_tokens, 88);
    assert_int_equal(r.usage.completion_tokens, 52);
    assert_int_equal(r.usage.total_tokens, 140);
    mn_buf_free(&r.out);
    free(text);
}

/* Some servers put usage on the finish chunk instead of a separate one:
 * it is recorded, and removed for a client that did not ask. */
static void test_stream_usage_on_content_chunk(void **state)
{
    fixture *f = *state;
    run_result r;
    const char *text =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    f->ctx.include_usage = 0;
    run_text(f, text, NULL, &r);
    assert_int_equal(r.status, MN_STREAM_DONE);
    mn_t_assert_frames(r.out.data, r.out.len, want, strlen(want), PROVIDER, 0);
    assert_int_equal(r.usage.have, 1);
    assert_int_equal(r.usage.total_tokens, 7);
    mn_buf_free(&r.out);
}

/* Parses frame i of an emitted stream. New reference. */
static json_t *frame_at(const mn_buf *out, size_t i)
{
    json_t *frames = mn_t_data_frames(out->data, out->len);
    json_t *j = json_loads(json_string_value(json_array_get(frames, i)), 0, NULL);
    json_decref(frames);
    assert_non_null(j);
    return j;
}

static size_t frame_count(const mn_buf *out)
{
    json_t *frames = mn_t_data_frames(out->data, out->len);
    size_t n = json_array_size(frames);
    json_decref(frames);
    return n;
}

/* The error frame: {"error":{message,type,param,code},"provider"} exactly. */
static void assert_error_frame(json_t *frame, const char *message, const char *type,
                               const char *code)
{
    json_t *e = json_object_get(frame, "error");
    assert_int_equal(json_object_size(frame), 2);
    assert_string_equal(json_string_value(json_object_get(frame, "provider")), PROVIDER);
    assert_int_equal(json_object_size(e), 4);
    if (message) {
        assert_string_equal(json_string_value(json_object_get(e, "message")), message);
    }
    else {
        assert_true(json_string_length(json_object_get(e, "message")) > 0);
    }
    if (type) {
        assert_string_equal(json_string_value(json_object_get(e, "type")), type);
    }
    else {
        assert_true(json_is_string(json_object_get(e, "type")));
    }
    assert_true(json_is_null(json_object_get(e, "param")));
    if (code) {
        assert_string_equal(json_string_value(json_object_get(e, "code")), code);
    }
    else {
        assert_true(json_is_null(json_object_get(e, "code")));
    }
}

/* Upstream error frame, then EOF: content, one error frame, [DONE]. */
static void test_stream_error_midstream(void **state)
{
    fixture *f = *state;
    size_t len;
    char *text = mn_t_fixture("openai/stream_error_midstream.sse", &len);
    /* the upstream's own frames, then [DONE] the upstream never sent */
    mn_buf want;
    run_result r;
    json_t *ef;
    mn_buf_init(&want);
    mn_buf_append(&want, text, len);
    mn_buf_append(&want, "data: [DONE]\n\n", 14);

    f->ctx.include_usage = 1;
    replay_all_splits(f, text, len, want.data, want.len, MN_STREAM_FAILED);

    run_stream(f, text, len, NULL, &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    assert_int_equal(frame_count(&r.out), 9);
    ef = frame_at(&r.out, 7);
    assert_error_frame(ef, "The server had an error while processing your request. Sorry about that!",
                       "server_error", NULL);
    json_decref(ef);
    assert_true(r.have_err);
    assert_string_equal(r.err.message,
                        "The server had an error while processing your request. Sorry about that!");
    assert_string_equal(r.err.type, "server_error");
    assert_string_equal(r.err.code, "");
    mn_buf_free(&r.out);
    mn_buf_free(&want);
    free(text);
}

static void test_stream_error_midstream_no_usage(void **state)
{
    fixture *f = *state;
    size_t len, wlen;
    char *text = mn_t_fixture("openai/stream_error_midstream.sse", &len);
    char *w = mn_t_without_usage(text, len, &wlen);
    mn_buf want;
    mn_buf_init(&want);
    mn_buf_append(&want, w, wlen);
    mn_buf_append(&want, "data: [DONE]\n\n", 14);
    f->ctx.include_usage = 0;
    replay_all_splits(f, text, len, want.data, want.len, MN_STREAM_FAILED);
    mn_buf_free(&want);
    free(w);
    free(text);
}

/* The upstream dies before [DONE]: its frames, then our own error frame. */
static void test_stream_cut_before_done(void **state)
{
    fixture *f = *state;
    size_t len;
    char *text = mn_t_fixture("openai/stream_text.sse", &len);
    const char *done = "data: [DONE]\n\n";
    size_t cut = len - strlen(done);
    run_result r;
    json_t *ef;
    size_t n;
    assert_memory_equal(text + cut, done, strlen(done));

    f->ctx.include_usage = 1;
    run_stream(f, text, cut, NULL, &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    n = frame_count(&r.out);
    assert_int_equal(n, 22);
    /* everything before the error frame is the upstream's */
    {
        const char *err_frame = strstr(r.out.data, "data: {\"error\"");
        assert_non_null(err_frame);
        mn_t_assert_frames(r.out.data, (size_t)(err_frame - r.out.data), text, cut, PROVIDER, 0);
    }
    ef = frame_at(&r.out, n - 2);
    assert_error_frame(ef, NULL, "upstream_error", "upstream_eof");
    json_decref(ef);
    assert_true(r.out.len >= 14);
    assert_memory_equal(r.out.data + r.out.len - 14, "data: [DONE]\n\n", 14);
    assert_true(r.have_err);
    assert_string_equal(r.err.code, "upstream_eof");
    assert_int_equal(r.err.status, 502);
    /* usage was in the frames that did arrive */
    assert_int_equal(r.usage.total_tokens, 43);

    /* and at every split offset */
    {
        mn_buf want;
        json_t *e = json_pack("{s:{s:s,s:s,s:n,s:s}}", "error", "message", r.err.message,
                              "type", "upstream_error", "param", "code", "upstream_eof");
        char *es = json_dumps(e, JSON_COMPACT);
        mn_buf_init(&want);
        mn_buf_append(&want, text, cut);
        mn_buf_append(&want, "data: ", 6);
        mn_buf_append(&want, es, strlen(es));
        mn_buf_append(&want, "\n\ndata: [DONE]\n\n", 16);
        replay_all_splits(f, text, cut, want.data, want.len, MN_STREAM_FAILED);
        mn_buf_free(&want);
        free(es);
        json_decref(e);
    }
    mn_buf_free(&r.out);
    free(text);
}

/* Cut mid-frame (no blank line, half a JSON object): still one error frame. */
static void test_stream_cut_mid_frame(void **state)
{
    fixture *f = *state;
    run_result r;
    json_t *ef;
    const char *text =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"id\":\"c\",\"choi";
    f->ctx.include_usage = 0;
    run_text(f, text, NULL, &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    assert_int_equal(frame_count(&r.out), 3);
    ef = frame_at(&r.out, 1);
    assert_true(json_is_object(json_object_get(ef, "error")));
    json_decref(ef);
    assert_memory_equal(r.out.data + r.out.len - 14, "data: [DONE]\n\n", 14);
    mn_buf_free(&r.out);
}

static void test_stream_end_with_cause(void **state)
{
    fixture *f = *state;
    run_result r;
    mn_error cause;
    json_t *ef;
    const char *text =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n";
    mn_error_set(&cause, 504, "timeout_error", NULL, "upstream_timeout",
                 "upstream sent nothing for 60 s");
    run_text(f, text, &cause, &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    assert_int_equal(frame_count(&r.out), 3);
    ef = frame_at(&r.out, 1);
    assert_error_frame(ef, "upstream sent nothing for 60 s", "timeout_error", "upstream_timeout");
    json_decref(ef);
    assert_true(r.have_err);
    assert_int_equal(r.err.status, 504);
    assert_string_equal(r.err.code, "upstream_timeout");
    mn_buf_free(&r.out);
}

/* Once finished, ending again (or feeding more) writes nothing. */
static void test_stream_end_after_finish(void **state)
{
    fixture *f = *state;
    mn_buf out;
    mn_sink sink;
    mn_error cause;
    mn_stream *st = mn_wire_openai.stream_create(&f->ctx);
    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    assert_int_equal(mn_wire_openai.stream_feed(st, MN_SSE_EVENT, "", "[DONE]", 6, &sink),
                     MN_STREAM_DONE);
    assert_int_equal(out.len, 14);
    mn_error_set(&cause, 504, NULL, NULL, NULL, "late");
    assert_int_equal(mn_wire_openai.stream_end(st, &cause, &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_openai.stream_end(st, NULL, &sink), MN_STREAM_DONE);
    assert_int_equal(mn_wire_openai.stream_feed(st, MN_SSE_EVENT, "", "{\"id\":\"x\"}", 10,
                                                &sink), MN_STREAM_DONE);
    assert_int_equal(out.len, 14);
    assert_null(mn_wire_openai.stream_error(st));
    mn_wire_openai.stream_destroy(st);

    /* after a failure too */
    st = mn_wire_openai.stream_create(&f->ctx);
    mn_buf_reset(&out);
    assert_int_equal(mn_wire_openai.stream_end(st, NULL, &sink), MN_STREAM_FAILED);
    {
        size_t n = out.len;
        assert_int_equal(mn_wire_openai.stream_end(st, &cause, &sink), MN_STREAM_FAILED);
        assert_int_equal(mn_wire_openai.stream_feed(st, MN_SSE_EVENT, "", "[DONE]", 6, &sink),
                         MN_STREAM_FAILED);
        assert_int_equal(out.len, n);
    }
    assert_string_equal(mn_wire_openai.stream_error(st)->code, "upstream_eof");
    mn_wire_openai.stream_destroy(st);
    mn_buf_free(&out);
}

static void expect_bad_frame(fixture *f, const char *bad_frame)
{
    run_result r;
    json_t *ef;
    char text[512];
    snprintf(text, sizeof(text),
             "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
             "data: %s\n\n"
             "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}}]}\n\n"
             "data: [DONE]\n\n", bad_frame);
    run_text(f, text, NULL, &r);
    /* nothing after the failure is forwarded */
    if (r.status != MN_STREAM_FAILED || frame_count(&r.out) != 3) {
        print_error("frame %s: status %d, want FAILED; output:\n%s", bad_frame, r.status,
                    r.out.data);
        mn_buf_free(&r.out);
        fail();
    }
    ef = frame_at(&r.out, 1);
    assert_error_frame(ef, NULL, "upstream_error", "upstream_bad_response");
    json_decref(ef);
    assert_memory_equal(r.out.data + r.out.len - 14, "data: [DONE]\n\n", 14);
    assert_string_equal(r.err.code, "upstream_bad_response");
    mn_buf_free(&r.out);
}

static void test_stream_bad_frames(void **state)
{
    expect_bad_frame(*state, "not json");
    expect_bad_frame(*state, "[1,2]");
    expect_bad_frame(*state, "\"a string\"");
    expect_bad_frame(*state, "{\"id\":\"c\",");
}

/* An `event: error` frame fails the stream even without an error member. */
static void test_stream_named_error_event(void **state)
{
    fixture *f = *state;
    run_result r;
    json_t *ef;
    run_text(f, "event: error\ndata: {\"message\":\"overloaded\",\"code\":\"busy\"}\n\n", NULL,
             &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    assert_int_equal(frame_count(&r.out), 2);
    ef = frame_at(&r.out, 0);
    assert_error_frame(ef, "overloaded", NULL, "busy");
    json_decref(ef);
    mn_buf_free(&r.out);
}

/* "error": null/false is not an error; raw lines and comments are ignored. */
static void test_stream_benign_frames(void **state)
{
    fixture *f = *state;
    run_result r;
    const char *text =
        ": keep-alive\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"finish_reason\":null}],\"error\":null}\n\n"
        "stray line\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"finish_reason\":null}],\"error\":false}\n\n"
        "data: [DONE]\n\n"
        "data: {\"id\":\"after\"}\n\n";
    const char *want =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"finish_reason\":null}],\"error\":null}\n\n"
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"finish_reason\":null}],\"error\":false}\n\n"
        "data: [DONE]\n\n";
    run_text(f, text, NULL, &r);
    assert_int_equal(r.status, MN_STREAM_DONE);
    assert_false(r.have_err);
    mn_t_assert_frames(r.out.data, r.out.len, want, strlen(want), PROVIDER, 0);
    mn_buf_free(&r.out);
}

/* The [DONE] we pass on is the exact terminator clients look for. */
static void test_stream_done_bytes(void **state)
{
    fixture *f = *state;
    run_result r;
    run_text(f, "data: [DONE]\n\n", NULL, &r);
    assert_int_equal(r.status, MN_STREAM_DONE);
    assert_int_equal(r.out.len, 14);
    assert_memory_equal(r.out.data, "data: [DONE]\n\n", 14);
    assert_int_equal(r.usage.have, 0);
    mn_buf_free(&r.out);
}

/* ---- chunk shapes ------------------------------------------------------------ */

/* Every emitted frame must parse as a JSON object without duplicate keys
 * (clients keep the last of two "provider" members, so a duplicate is a
 * wrong value, not a harmless repeat).  Returns NULL or a description
 * (malloc'd) so callers can free their state before failing. */
static char *frames_strict_problem(const mn_buf *out)
{
    json_t *frames = mn_t_data_frames(out->data, out->len);
    char *problem = NULL;
    size_t i;
    for (i = 0; i < json_array_size(frames) && !problem; i++) {
        const char *payload = json_string_value(json_array_get(frames, i));
        json_error_t jerr;
        json_t *j;
        if (!strcmp(payload, "[DONE]")) {
            continue;
        }
        j = json_loads(payload, JSON_REJECT_DUPLICATES, &jerr);
        if (!json_is_object(j)) {
            size_t n = strlen(payload) + 256;
            problem = malloc(n);
            snprintf(problem, n, "frame %zu is not a JSON object without duplicates (%s): %s",
                     i, jerr.text, payload);
        }
        json_decref(j);
    }
    json_decref(frames);
    return problem;
}

/* What a client gets for one upstream chunk (NULL: nothing): the chunk with
 * "provider" set to ours, every choice with a finish_reason, and, for a
 * client that did not ask for usage, its top-level "usage" removed.  A
 * chunk without choices is only passed on as the usage chunk. */
static json_t *want_for(const char *chunk, int include_usage)
{
    json_t *want = mn_t_json(chunk);
    json_t *choices = json_object_get(want, "choices"), *c;
    size_t i;
    if (json_array_size(choices) == 0
        && (!include_usage || !json_is_object(json_object_get(want, "usage")))) {
        json_decref(want);
        return NULL;
    }
    if (!include_usage) {
        json_object_del(want, "usage");
    }
    json_array_foreach(choices, i, c) {
        if (!json_object_get(c, "finish_reason")) {
            json_object_set_new(c, "finish_reason", json_null());
        }
    }
    json_object_set_new(want, "provider", json_string(PROVIDER));
    return want;
}

/* One upstream chunk (len bytes, may hold a NUL) through the translator:
 * every frame must parse (strictly), and equal want_for's. */
static void check_chunk_bytes(fixture *f, const char *chunk, size_t len, const char *as_json,
                              int include_usage)
{
    run_result r;
    char text[1024], *problem = NULL;
    json_t *want, *got = NULL;
    size_t o = 0, i;
    assert_true(len + 32 < sizeof(text));
    o += (size_t)snprintf(text, sizeof(text), "data: ");
    for (i = 0; i < len; i++) {
        if (chunk[i] == '\n') {
            memcpy(text + o, "\ndata: ", 7);
            o += 7;
        }
        else {
            text[o++] = chunk[i];
        }
    }
    memcpy(text + o, "\n\ndata: [DONE]\n\n", 16);
    o += 16;
    f->ctx.include_usage = include_usage;
    run_stream(f, text, o, NULL, &r);
    want = want_for(as_json, include_usage);
    if (r.status != MN_STREAM_DONE || frame_count(&r.out) != (want ? 2u : 1u)) {
        problem = strdup(want ? "not one frame and [DONE]" : "not [DONE] alone");
    }
    else if (memchr(r.out.data, '\0', r.out.len)) {
        problem = strdup("a NUL byte reached the client");
    }
    else if ((problem = frames_strict_problem(&r.out)) == NULL && want) {
        got = frame_at(&r.out, 0);
        if (!json_equal(got, want)) {
            problem = strdup("frame differs");
        }
    }
    json_decref(got);
    json_decref(want);
    if (problem) {
        print_error("chunk %s (include_usage %d): %s; output:\n%s", as_json, include_usage,
                    problem, r.out.data);
        free(problem);
        mn_buf_free(&r.out);
        fail();
    }
    mn_buf_free(&r.out);
}

static void check_chunk(fixture *f, const char *chunk, int include_usage)
{
    check_chunk_bytes(f, chunk, strlen(chunk), chunk, include_usage);
}

/* Shapes seen from OpenAI-compatible servers: compact, member order varies,
 * usage first/last/only, spaced JSON from Python's json.dumps. */
static void test_chunk_shapes(void **state)
{
    static const char *const shapes[] = {
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}],\"usage\":null}",
        "{\"usage\":null,\"id\":\"c\",\"choices\":[]}",
        "{\"id\":\"c\",\"usage\":null,\"choices\":[{\"index\":0,\"delta\":{}}]}",
        "{\"usage\":null}",
        "{}",
        "{\"id\":\"c\"}",
        "{\"id\": \"c\", \"choices\": [], \"usage\": null}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"say \\\"usage\\\":null\"}}]}",
        "{\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"an error\"}}],\"usage\":null}",
        "{\"usage\":null,\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}], \"usage\" : null }",
        "{\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":null}],\"usage\":null,\"x\":1}",
        "{\"id\":\"c\",\"choices\":[],\"usage\":{\"prompt_tokens\":1,\"completion_tokens\":2,"
        "\"total_tokens\":3}}",
    };
    size_t i;
    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        check_chunk(*state, shapes[i], 1);
        check_chunk(*state, shapes[i], 0);
    }
}

/* SSE lets one event's data span several data: lines (joined with "\n");
 * what goes out must still be one well-formed frame. */
static void test_chunk_multiline_data(void **state)
{
    check_chunk(*state, "{\n\"id\":\"c\",\n\"usage\":null\n}", 1);
    check_chunk(*state, "{\"id\":\"c\",\n\"choices\":[]}", 0);
    check_chunk(*state, "{\"id\":\"c\",\n\"choices\":[{\"index\":0,\"delta\":{}}],\n"
                        "\"usage\":null}", 0);
}

/* OpenRouter names the provider it routed to in a top-level "provider" of
 * every chunk; the client must see ours, once. */
static void test_chunk_upstream_provider_replaced(void **state)
{
    const char *chunk = "{\"id\":\"gen-1\",\"provider\":\"OpenAI\",\"model\":\"openai/gpt-4o\","
                        "\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,"
                        "\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}";
    check_chunk(*state, chunk, 1);
    check_chunk(*state, chunk, 0);
}

/* Non-streaming answers from the same upstream get ours as well. */
static void test_response_upstream_provider_replaced(void **state)
{
    fixture *f = *state;
    const char *body = "{\"id\":\"gen-1\",\"provider\":\"OpenAI\",\"object\":\"chat.completion\","
                       "\"choices\":[]}";
    json_t *out = NULL;
    mn_usage u;
    mn_error err;
    memset(&u, 0, sizeof(u));
    assert_int_equal(mn_wire_openai.decode_response(&f->ctx, body, strlen(body), &out, &u,
                                                    &err), 0);
    assert_string_equal(json_string_value(json_object_get(out, "provider")), PROVIDER);
    json_decref(out);
}

/* A frame that merely looks like an object is still not JSON. */
static void test_stream_bad_frames_braced(void **state)
{
    expect_bad_frame(*state, "{oops}");
    expect_bad_frame(*state, "{\"id\":\"c\",}");
}

/* Python's separators=(", ", ":"): valid JSON in, valid JSON out. */
static void test_chunk_comma_space_usage_last(void **state)
{
    check_chunk(*state, "{\"id\":\"c\", \"choices\":[{\"index\":0}], \"usage\":null}", 0);
    check_chunk(*state, "{\"choices\":[{\"index\":0}] , \"usage\":null}", 0);
}

/* Only the top-level usage is ours to remove. */
static void test_chunk_nested_usage_kept(void **state)
{
    check_chunk(*state, "{\"id\":\"c\",\"choices\":[{\"index\":0}],\"x_meta\":{\"usage\":null}}",
                0);
    check_chunk(*state, "{\"x_meta\":{\"usage\":null},\"choices\":[{\"index\":0}],\"usage\":null}",
                0);
}

/* Jansson accepts a raw NUL right after a number or a literal; no client
 * parser does, so such bytes are re-encoded, never passed on. */
static void test_chunk_nul_between_tokens(void **state)
{
    static const char chunk[] = "{\"id\":\"c\",\"n\":1\0,\"choices\":[{\"index\":0\0,\"delta\":{},"
                                "\"finish_reason\":null\0}],\"usage\":null\0}";
    const char *as_json = "{\"id\":\"c\",\"n\":1,\"choices\":[{\"index\":0,\"delta\":{},"
                          "\"finish_reason\":null}],\"usage\":null}";
    check_chunk_bytes(*state, chunk, sizeof(chunk) - 1, as_json, 1);
    check_chunk_bytes(*state, chunk, sizeof(chunk) - 1, as_json, 0);
}

/* The bytes `"usage":null` inside an escaped key, and the real member
 * spelled with an escape: the cut must take the top-level usage member or
 * nothing, and leave JSON. */
static void test_chunk_escaped_usage_key(void **state)
{
    static const char *const shapes[] = {
        "{\"\\u0075sage\":null,\"\\\"usage\":null,\"choices\":[{\"index\":0,\"finish_reason\":null}]}",
        "{\"choices\":[{\"index\":0,\"finish_reason\":null}],\"\\u0075sage\":null,\"a\\\"usage\":null}",
        "{\"choices\":[{\"index\":0,\"finish_reason\":null}],\"k\\\\\":\"\\\"usage\\\":null\",\"usage\":null}",
        "{\"choices\":[{\"index\":0,\"finish_reason\":null}],\"usage\":null,\"\\u0075sage\":null}",
        "{\"x\\\"usage\":null, \"usage\":null,\"choices\":[{\"index\":0,\"finish_reason\":null}]}",
        "{\"usage\":{\"usage\":null},\"choices\":[{\"index\":0,\"finish_reason\":null}],\"usage\":null}",
    };
    size_t i;
    for (i = 0; i < sizeof(shapes) / sizeof(shapes[0]); i++) {
        check_chunk(*state, shapes[i], 0);
        check_chunk(*state, shapes[i], 1);
    }
}

/* An upstream "provider" spelled with an escape is still a "provider": ours
 * wins, in chunks and in plain answers, and the client gets it once. */
static void test_escaped_provider_replaced(void **state)
{
    fixture *f = *state;
    const char *chunk = "{\"id\":\"c\",\"\\u0070rovider\":\"evil\",\"choices\":[{\"index\":0,"
                        "\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}],\"usage\":null}";
    static const char *const bodies[] = {
        "{\"id\":\"r\",\"\\u0070rovider\":\"evil\",\"object\":\"chat.completion\",\"choices\":[]}",
        "{\"id\":\"r\",\"object\":\"chat.completion\",\"choices\":[],\"provid\\u0065r\":\"evil\"}",
        "{\"id\":\"r\",\"n\":1\0,\"choices\":[]}",
    };
    static const size_t lens[] = { 0, 0, 30 };
    size_t i;
    check_chunk(f, chunk, 1);
    check_chunk(f, chunk, 0);
    for (i = 0; i < 3; i++) {
        const char *out = NULL;
        size_t out_len = 0, len = lens[i] ? lens[i] : strlen(bodies[i]);
        mn_usage u;
        mn_error err;
        json_t *j;
        memset(&u, 0, sizeof(u));
        assert_int_equal(mn_wire_openai.decode_response_bytes(&f->ctx, bodies[i], len, &out,
                                                              &out_len, &u, &err), 0);
        assert_null(memchr(out, '\0', out_len));
        j = json_loadb(out, out_len, JSON_REJECT_DUPLICATES, NULL);
        assert_non_null(j);
        assert_string_equal(json_string_value(json_object_get(j, "provider")), PROVIDER);
        assert_string_equal(json_string_value(json_object_get(j, "id")), "r");
        json_decref(j);
    }
}

/* Azure's first chunk carries prompt_filter_results, "choices":[] and an
 * empty "object": a client must never see a choice-less chunk other than
 * the usage chunk. */
static void test_stream_azure_preamble_dropped(void **state)
{
    fixture *f = *state;
    run_result r;
    int iu;
    const char *text =
        "data: {\"choices\":[],\"created\":0,\"id\":\"\",\"model\":\"\",\"object\":\"\","
        "\"prompt_filter_results\":[{\"prompt_index\":0,\"content_filter_results\":{\"hate\":"
        "{\"filtered\":false,\"severity\":\"safe\"}}}]}\n\n"
        "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{\"content\":\"Hi\","
        "\"role\":\"assistant\"},\"finish_reason\":null,\"index\":0}],\"created\":1,"
        "\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\",\"object\":\"chat.completion.chunk\"}\n\n"
        "data: {\"choices\":[{\"content_filter_results\":{},\"delta\":{},\"finish_reason\":"
        "\"stop\",\"index\":0}],\"created\":1,\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\","
        "\"object\":\"chat.completion.chunk\"}\n\n"
        "data: {\"choices\":[],\"created\":1,\"id\":\"chatcmpl-1\",\"model\":\"gpt-4o\","
        "\"object\":\"chat.completion.chunk\",\"usage\":{\"prompt_tokens\":5,"
        "\"completion_tokens\":1,\"total_tokens\":6}}\n\n"
        "data: [DONE]\n\n";
    for (iu = 0; iu <= 1; iu++) {
        size_t i, n;
        f->ctx.include_usage = iu;
        run_text(f, text, NULL, &r);
        assert_int_equal(r.status, MN_STREAM_DONE);
        n = frame_count(&r.out);
        assert_int_equal(n, iu ? 4 : 3);
        for (i = 0; i + 1 < n; i++) {
            json_t *fr = frame_at(&r.out, i);
            json_t *choices = json_object_get(fr, "choices");
            assert_true(json_is_array(choices));
            assert_true(json_array_size(choices) > 0 || json_is_object(json_object_get(fr, "usage")));
            assert_null(json_object_get(fr, "prompt_filter_results"));
            json_decref(fr);
        }
        assert_int_equal(r.usage.total_tokens, 6);
        mn_buf_free(&r.out);
    }
}

/* Groq and DeepSeek put usage on the finish chunk: a client that asked for
 * usage still gets the separate usage chunk (choices: []) before [DONE],
 * and the finish chunk carries "usage": null. */
static void test_stream_usage_on_finish_chunk_split(void **state)
{
    fixture *f = *state;
    run_result r;
    const char *text =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7},"
        "\"x_groq\":{\"id\":\"req_1\"}}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"},\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":null,\"x_groq\":{\"id\":\"req_1\"}}\n\n"
        "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":5,\"model\":\"m\","
        "\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n"
        "data: [DONE]\n\n";
    f->ctx.include_usage = 1;
    replay_all_splits(f, text, strlen(text), want, strlen(want), MN_STREAM_DONE);
    run_text(f, text, NULL, &r);
    assert_int_equal(r.usage.total_tokens, 7);
    mn_buf_free(&r.out);
}

/* Usage on the finish chunk and then a usage chunk as well: one usage
 * chunk, the last word. */
static void test_stream_usage_twice_one_usage_chunk(void **state)
{
    fixture *f = *state;
    const char *text =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":4,\"total_tokens\":7}}\n\n"
        "data: {\"id\":\"c\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{},\"finish_reason\":\"stop\"}],"
        "\"usage\":null}\n\n"
        "data: {\"id\":\"c\",\"choices\":[],"
        "\"usage\":{\"prompt_tokens\":3,\"completion_tokens\":5,\"total_tokens\":8}}\n\n"
        "data: [DONE]\n\n";
    f->ctx.include_usage = 1;
    replay_all_splits(f, text, strlen(text), want, strlen(want), MN_STREAM_DONE);
}

/* Qwen's continuation chunks have no finish_reason: every choice gets one,
 * null until the end. */
static void test_stream_finish_reason_always_present(void **state)
{
    fixture *f = *state;
    const char *text =
        "data: {\"id\":\"q\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"}}]}\n\n"
        "data: {\"id\":\"q\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"}},"
        "{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    const char *want =
        "data: {\"id\":\"q\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"a\"},"
        "\"finish_reason\":null}]}\n\n"
        "data: {\"id\":\"q\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"b\"},"
        "\"finish_reason\":null},{\"index\":1,\"delta\":{},\"finish_reason\":\"stop\"}]}\n\n"
        "data: [DONE]\n\n";
    f->ctx.include_usage = 0;
    replay_all_splits(f, text, strlen(text), want, strlen(want), MN_STREAM_DONE);
}

/* A key in a mid-stream error frame's code or param never reaches the
 * client. */
static void test_stream_error_frame_keys_scrubbed(void **state)
{
    fixture *f = *state;
    run_result r;
    json_t *ef, *e;
    run_text(f, "data: {\"error\":{\"message\":\"m sk-test-key\",\"type\":\"t\","
                "\"code\":\"sk-test-key\",\"param\":\"sk-test-key\"}}\n\n", NULL, &r);
    assert_int_equal(r.status, MN_STREAM_FAILED);
    assert_null(strstr(r.out.data, "sk-test"));
    ef = frame_at(&r.out, 0);
    e = json_object_get(ef, "error");
    assert_string_equal(json_string_value(json_object_get(e, "code")), "***");
    assert_string_equal(json_string_value(json_object_get(e, "param")), "***");
    assert_string_equal(json_string_value(json_object_get(e, "message")), "m ***");
    json_decref(ef);
    mn_buf_free(&r.out);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_encode_stream),
        T(test_encode_stream_adds_options),
        T(test_encode_fixture_request),
        T(test_encode_bytes_exact),
        T(test_encode_non_stream),
        T(test_encode_no_key),
        T(test_decode_response_text),
        T(test_decode_response_tool_call),
        T(test_decode_response_without_usage),
        T(test_decode_response_failures),
        T(test_decode_error),
        T(test_decode_error_keys_scrubbed),
        T(test_stream_text_usage),
        T(test_stream_text_no_usage),
        T(test_stream_tool_call_usage),
        T(test_stream_tool_call_no_usage),
        T(test_without_usage_sanity),
        T(test_stream_usage_recorded),
        T(test_stream_usage_on_content_chunk),
        T(test_stream_error_midstream),
        T(test_stream_error_midstream_no_usage),
        T(test_stream_cut_before_done),
        T(test_stream_cut_mid_frame),
        T(test_stream_end_with_cause),
        T(test_stream_end_after_finish),
        T(test_stream_bad_frames),
        T(test_stream_named_error_event),
        T(test_stream_benign_frames),
        T(test_stream_done_bytes),
        T(test_chunk_shapes),
        T(test_chunk_multiline_data),
        T(test_chunk_upstream_provider_replaced),
        T(test_response_upstream_provider_replaced),
        T(test_stream_bad_frames_braced),
        T(test_chunk_comma_space_usage_last),
        T(test_chunk_nested_usage_kept),
        T(test_chunk_nul_between_tokens),
        T(test_chunk_escaped_usage_key),
        T(test_escaped_provider_replaced),
        T(test_stream_azure_preamble_dropped),
        T(test_stream_usage_on_finish_chunk_split),
        T(test_stream_usage_twice_one_usage_chunk),
        T(test_stream_finish_reason_always_present),
        T(test_stream_error_frame_keys_scrubbed),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
