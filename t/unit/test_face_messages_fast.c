#include "harness.h"
#include "mn_face_messages.h"

/* The Messages face's two stream hot paths (mn_fm_fast_paths) against the
 * Jansson path they shortcut: the same input through both must give the
 * same bytes, byte for byte, and the same status, usage and error.  Inputs:
 * every stream fixture through its wire (and the Anthropic ones through the
 * passthrough), hand-written frames at each edge the hot paths decide on
 * (escapes, duplicates, types, indexes, invalid JSON), and single-byte
 * mutations of common frames.  Also: a common frame costs no Jansson
 * allocation at all once the stream is under way. */

/* ---------------------------------------------------------------- helpers */

static size_t jallocs;

static void *counting_malloc(size_t n)
{
    jallocs++;
    return malloc(n);
}

static void assert_same(const mn_buf *fast, const mn_buf *slow, const char *what)
{
    if (fast->len != slow->len || (fast->len && memcmp(fast->data, slow->data, fast->len))) {
        fail_msg("hot path differs (%s)\nfast: %.*s\nslow: %.*s", what, (int)fast->len,
                 fast->data ? fast->data : "", (int)slow->len, slow->data ? slow->data : "");
    }
}

/* A frame list: NUL-separated payloads would lose embedded NULs, so each
 * frame is (bytes, len). */
typedef struct {
    const char *p;
    size_t len;
} bytes;

#define B(s) { s, sizeof(s) - 1 }

/* frames (payloads of `data: ` frames; "[DONE]" included as such) through
 * the translator, finished as the glue finishes it */
static void face_run(const bytes *frames, size_t n, int fast, mn_buf *out)
{
    mn_sink down = mn_buf_sink(out);
    mn_fm_stream *s;
    mn_sink in;
    size_t i;

    mn_fm_fast_paths = fast;
    s = mn_fm_stream_create(&down, 1 << 16);
    in = mn_fm_stream_sink(s);
    for (i = 0; i < n; i++) {
        in.write(in.baton, "data: ", 6);
        in.write(in.baton, frames[i].p, frames[i].len);
        in.write(in.baton, "\n\n", 2);
        in.frame_end(in.baton);
    }
    mn_fm_stream_finish(s, NULL, "fin");
    mn_fm_stream_destroy(s);
    mn_fm_fast_paths = 1;
}

static void face_diff(const bytes *frames, size_t n, const char *what)
{
    mn_buf fast, slow;
    mn_buf_init(&fast);
    mn_buf_init(&slow);
    face_run(frames, n, 1, &fast);
    face_run(frames, n, 0, &slow);
    assert_same(&fast, &slow, what);
    mn_buf_free(&fast);
    mn_buf_free(&slow);
}

#define FIRST "{\"provider\":\"oai\",\"id\":\"c1\",\"object\":\"chat.completion.chunk\"," \
              "\"created\":1,\"model\":\"gpt-4o\",\"choices\":[{\"index\":0,\"delta\":" \
              "{\"role\":\"assistant\",\"content\":\"\"},\"finish_reason\":null}]}"
#define TOOL0 "{\"provider\":\"oai\",\"choices\":[{\"index\":0,\"delta\":{\"tool_calls\":" \
              "[{\"index\":0,\"id\":\"call_1\",\"type\":\"function\",\"function\":" \
              "{\"name\":\"f\",\"arguments\":\"\"}}]},\"finish_reason\":null}]}"
#define TEXT "{\"provider\":\"oai\",\"id\":\"c1\",\"choices\":[{\"index\":0,\"delta\":" \
             "{\"content\":\"Hi\"},\"finish_reason\":null}]}"
#define FINISH "{\"provider\":\"oai\",\"choices\":[{\"index\":0,\"delta\":{}," \
               "\"finish_reason\":\"stop\"}]}"
#define USAGE "{\"provider\":\"oai\",\"choices\":[],\"usage\":{\"prompt_tokens\":3," \
              "\"completion_tokens\":2,\"total_tokens\":5}}"

/* x in the places a chunk can come: after the first chunk, after a tool
 * call's block opened, twice in a row, before the finish */
static void face_diff_chunk(const char *x, size_t xlen)
{
    const bytes a[] = { B(FIRST), { x, xlen }, { x, xlen }, B(TEXT), B(FINISH), B(USAGE),
                        B("[DONE]") };
    const bytes b[] = { B(FIRST), B(TOOL0), { x, xlen }, B(TEXT), { x, xlen }, B("[DONE]") };
    const bytes c[] = { { x, xlen }, { x, xlen }, B("[DONE]") };
    face_diff(a, sizeof(a) / sizeof(a[0]), x);
    face_diff(b, sizeof(b) / sizeof(b[0]), x);
    face_diff(c, sizeof(c) / sizeof(c[0]), x);
}

/* an upstream stream through its wire, then through the translator */
static void chain_run(const mn_wire *w, mn_format fmt, const char *up, size_t len, int fast,
                      mn_buf *face_out)
{
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_sink down = mn_buf_sink(face_out), in;
    mn_fm_stream *s;
    mn_sse_parser p;
    mn_t_replay r;

    mn_fm_fast_paths = fast;
    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "up", fmt, 1, 1);
    s = mn_fm_stream_create(&down, 1 << 16);
    in = mn_fm_stream_sink(s);
    r.wire = w;
    r.out = &in;
    r.st = w->stream_create(&ctx);
    r.status = MN_STREAM_MORE;
    mn_sse_init(&p, 1 << 20, mn_t_replay_cb, &r);
    mn_sse_feed(&p, up, len);
    mn_sse_finish(&p);
    if (r.status == MN_STREAM_MORE) {
        w->stream_end(r.st, NULL, &in);
    }
    mn_fm_stream_finish(s, NULL, "up");
    mn_sse_free(&p);
    w->stream_destroy(r.st);
    mn_fm_stream_destroy(s);
    apr_pool_destroy(pool);
    mn_fm_fast_paths = 1;
}

static void chain_diff(const mn_wire *w, mn_format fmt, const char *rel)
{
    size_t len;
    char *up = mn_t_fixture(rel, &len);
    mn_buf fast, slow;

    mn_buf_init(&fast);
    mn_buf_init(&slow);
    chain_run(w, fmt, up, len, 1, &fast);
    chain_run(w, fmt, up, len, 0, &slow);
    assert_same(&fast, &slow, rel);
    assert_true(fast.len > 0);
    mn_buf_free(&fast);
    mn_buf_free(&slow);
    free(up);
}

/* an Anthropic upstream stream through the passthrough wire */
typedef struct {
    mn_buf out;
    mn_usage usage;
    mn_error err;
    int has_err;
    mn_stream_status status;
} pass_res;

static void pass_run(const char *up, size_t len, int fast, pass_res *res)
{
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;

    mn_fm_fast_paths = fast;
    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "claude", MN_FORMAT_ANTHROPIC, 1, 0);
    memset(res, 0, sizeof(*res));
    mn_buf_init(&res->out);
    res->status = mn_t_replay_stream_ex(&mn_wire_anthropic_passthrough, &ctx, up, len, 0,
                                        &res->out, &res->usage, &res->err, &res->has_err);
    apr_pool_destroy(pool);
    mn_fm_fast_paths = 1;
}

static void pass_diff(const char *up, size_t len, const char *what)
{
    pass_res f, s;
    pass_run(up, len, 1, &f);
    pass_run(up, len, 0, &s);
    assert_same(&f.out, &s.out, what);
    assert_int_equal(f.status, s.status);
    assert_int_equal(f.has_err, s.has_err);
    if (f.has_err) {
        assert_string_equal(f.err.type, s.err.type);
        assert_string_equal(f.err.message, s.err.message);
    }
    assert_memory_equal(&f.usage, &s.usage, sizeof(f.usage));
    mn_buf_free(&f.out);
    mn_buf_free(&s.out);
}

#define MSTART "event: message_start\ndata: {\"type\":\"message_start\",\"message\":" \
               "{\"id\":\"m\",\"usage\":{\"input_tokens\":7,\"output_tokens\":1}}}\n\n"
#define MSTOP "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"

/* one event (name, data bytes) between message_start and message_stop */
static void pass_diff_event(const char *name, const char *data, size_t dlen)
{
    mn_buf b;
    mn_buf_init(&b);
    mn_buf_append(&b, MSTART, sizeof(MSTART) - 1);
    if (name) {
        mn_buf_append(&b, "event: ", 7);
        mn_buf_append(&b, name, strlen(name));
        mn_buf_append(&b, "\n", 1);
    }
    mn_buf_append(&b, "data: ", 6);
    mn_buf_append(&b, data, dlen);
    mn_buf_append(&b, "\n\n", 2);
    mn_buf_append(&b, MSTOP, sizeof(MSTOP) - 1);
    pass_diff(b.data, b.len, data);
    mn_buf_free(&b);
}

/* ------------------------------------------------------------- fixtures */

static void test_fixtures(void **state)
{
    static const char *const names[] = { "stream_text.sse", "stream_tool_call.sse",
                                         "stream_error_midstream.sse" };
    static const char *const an[] = { "stream_text.sse", "stream_thinking.sse",
                                      "stream_tool_call.sse", "stream_tool_call_empty_input.sse",
                                      "stream_error_overloaded.sse" };
    char rel[256];
    size_t i, len;
    (void)state;

    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(rel, sizeof(rel), "openai/%s", names[i]);
        chain_diff(&mn_wire_openai, MN_FORMAT_OPENAI, rel);
        snprintf(rel, sizeof(rel), "gemini/%s", names[i]);
        chain_diff(&mn_wire_gemini, MN_FORMAT_GEMINI, rel);
    }
    for (i = 0; i < sizeof(an) / sizeof(an[0]); i++) {
        char *up;
        snprintf(rel, sizeof(rel), "anthropic/%s", an[i]);
        chain_diff(&mn_wire_anthropic, MN_FORMAT_ANTHROPIC, rel);
        up = mn_t_fixture(rel, &len);
        pass_diff(up, len, rel);
        free(up);
    }
}

/* ---------------------------------------------------------- translator */

#define CHUNK(delta) "{\"provider\":\"oai\",\"choices\":[{\"index\":0,\"delta\":" delta \
                     ",\"finish_reason\":null}]}"

static void test_translator_edges(void **state)
{
    static const bytes xs[] = {
        B(TEXT),
        /* string encodings: only Jansson's own may be copied */
        B(CHUNK("{\"content\":\"a\\nb\\tc\\\"q\\\" \\\\ \\b\\f\\r\"}")),
        B(CHUNK("{\"content\":\"slash \\/ and /\"}")),
        B(CHUNK("{\"content\":\"\\u00e9 \\u00E9 é\"}")),
        B(CHUNK("{\"content\":\"\\u001f\"}")),
        B(CHUNK("{\"content\":\"\\u001F\\u0001\\u0010\"}")),
        B(CHUNK("{\"content\":\"\\u000a\\u0009\\u0008\\u000C\\u000d\"}")),
        B(CHUNK("{\"content\":\"\\u0020\\u0041\"}")),
        B(CHUNK("{\"content\":\"\\ud83d\\ude00 \xf0\x9f\x98\x80\"}")),
        B(CHUNK("{\"content\":\"\xe2\x80\xa8 \x7f\"}")),
        B(CHUNK("{\"content\":\"\\\"\"}")),
        B(CHUNK("{\"content\":\"\\\\\"}")),
        /* reasoning */
        B(CHUNK("{\"reasoning_content\":\"think\"}")),
        B(CHUNK("{\"reasoning\":\"think\"}")),
        B(CHUNK("{\"reasoning_content\":\"a\",\"reasoning\":\"b\"}")),
        B(CHUNK("{\"reasoning_content\":\"\",\"reasoning\":\"b\"}")),
        B(CHUNK("{\"reasoning_content\":null,\"reasoning\":\"b\"}")),
        B(CHUNK("{\"reasoning_content\":5,\"reasoning\":\"b\"}")),
        B(CHUNK("{\"reasoning_content\":\"th\",\"content\":\"tx\"}")),
        B(CHUNK("{\"content\":\"tx\",\"reasoning_content\":\"th\"}")),
        B(CHUNK("{\"reasoning\":\"\\u00e9\"}")),
        /* content that writes nothing */
        B(CHUNK("{\"content\":\"\"}")),
        B(CHUNK("{\"content\":null}")),
        B(CHUNK("{\"content\":5}")),
        B(CHUNK("{\"content\":[\"a\"]}")),
        B(CHUNK("{\"content\":{\"a\":\"b\"}}")),
        B(CHUNK("{}")),
        B(CHUNK("\"x\"")),
        B(CHUNK("[{\"content\":\"x\"}]")),
        B(CHUNK("null")),
        /* choices in other shapes */
        B("{\"provider\":\"oai\",\"choices\":{\"0\":{\"delta\":{\"content\":\"x\"}}}}"),
        B("{\"provider\":\"oai\",\"choices\":[]}"),
        B("{\"provider\":\"oai\",\"choices\":[1,{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}},"
          "{\"delta\":{\"content\":\"y\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[[{\"delta\":{\"content\":\"x\"}}]]}"),
        B("{\"provider\":\"oai\"}"),
        B("{}"),
        B("{\"choices\":[{\"delta\":{\"content\":\"no provider\"}}]}"),
        /* duplicates: the last one counts, as in Jansson's tree */
        B(CHUNK("{\"content\":\"a\",\"content\":\"b\"}")),
        B(CHUNK("{\"content\":\"a\",\"content\":5}")),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"},"
          "\"delta\":{\"content\":\"b\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],"
          "\"choices\":[{\"delta\":{\"reasoning\":\"b\"}}]}"),
        B("{\"provider\":\"oai\",\"provider\":\"other\",\"choices\":[{\"delta\":"
          "{\"content\":\"a\"}}]}"),
        B(CHUNK("{\"c\\u006fntent\":\"escaped key\"}")),
        B("{\"pr\\u006fvider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        /* provider */
        B("{\"provider\":\"other\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"\\u006fai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"o\\\"ai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"pr\xc3\xb6v\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":5,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"0123456789012345678901234567890123456789012345678901234567890123"
          "4567890123456789012345678901234567890123456789012345678901234567890123456789\","
          "\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        /* error, usage, finish */
        B("{\"provider\":\"oai\",\"error\":{\"message\":\"m\",\"type\":\"t\"}}"),
        B("{\"provider\":\"oai\",\"error\":{\"message\":\"m\"},\"choices\":[{\"delta\":"
          "{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"oai\",\"error\":null,\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"oai\",\"error\":\"e\",\"choices\":[{\"delta\":{\"content\":\"a\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":null}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"}}],\"usage\":"
          "{\"prompt_tokens\":1,\"completion_tokens\":1}}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"},"
          "\"finish_reason\":\"length\"}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\"},"
          "\"finish_reason\":5}]}"),
        /* tool calls */
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\\u00e9\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":5}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":\"x\"}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0}]}")),
        B(CHUNK("{\"tool_calls\":[{\"function\":{\"arguments\":\"no index\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":1,\"id\":\"c2\",\"function\":{\"name\":\"g\","
                "\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":\"0\",\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0.0,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0e0,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":-0,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":-1,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":63,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":64,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":100,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":9223372036854775807,\"function\":"
                "{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"index\":1,\"function\":{\"arguments\":\"x\"}}]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"a\"}},"
                "{\"index\":0,\"function\":{\"arguments\":\"b\"}}]}")),
        B(CHUNK("{\"tool_calls\":[]}")),
        B(CHUNK("{\"tool_calls\":{}}")),
        B(CHUNK("{\"tool_calls\":{\"0\":{\"function\":{\"arguments\":\"x\"}}}}")),
        B(CHUNK("{\"tool_calls\":[5]}")),
        B(CHUNK("{\"tool_calls\":[null]}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"x\"}}],"
                "\"content\":\"both\",\"reasoning\":\"all\"}")),
        B(CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"a\"}}],"
                "\"tool_calls\":[{\"index\":1,\"function\":{\"arguments\":\"b\"}}]}")),
        /* whitespace and layout */
        B("  {  \"provider\" : \"oai\" , \"choices\" : [ { \"delta\" : { \"content\" : \"ws\" "
          "} } ] }  "),
        B("{\"provider\":\"oai\",\r\n\"choices\":[{\"delta\":{\"content\":\"crlf\"}}]}"),
        B("\t{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"tab\"}}]}\t"),
        /* not JSON, or not Jansson's JSON */
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}x"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}}],}"),
        B("[{\"provider\":\"oai\"}]"),
        B("\"str\""),
        B("5"),
        B(""),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"\\u0000\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"\\ud800\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"\\x\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"a\x01\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"\xc3\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"\xed\xa0\x80\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":99999999999999999999,\"choices\":[{\"delta\":"
          "{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":1e999,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":1e-999,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":1\0,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":1\0\0,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"n\":true\0,\"choices\":[{\"delta\":{\"content\":\"x\"}}]}"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]}\0"),
        B("{\"provider\":\"oai\",\"choices\":[{\"delta\":{\"content\":\"x\"}}]} \0"),
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(xs) / sizeof(xs[0]); i++) {
        face_diff_chunk(xs[i].p, xs[i].len);
    }
}

/* Every frame text and byte value that decides something, in each place:
 * single-byte replacements, deletions and insertions of common chunks. */
static void test_translator_mutations(void **state)
{
    static const char *const seeds[] = {
        TEXT,
        CHUNK("{\"reasoning_content\":\"a\\n\\u001F\"}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"k\\\":1}\"}}]}"),
    };
    static const char subst[] = "\"\\{}[],:0-1.eu \x01\xc3\x80nt";
    size_t k, i, j, step = mn_t_quick() ? 17 : 1;
    char buf[512];
    (void)state;

    for (k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        size_t n = strlen(seeds[k]);
        for (i = 0; i < n; i += step) {
            for (j = 0; j < sizeof(subst) - 1; j++) {
                memcpy(buf, seeds[k], n);
                buf[i] = subst[j];
                face_diff_chunk(buf, n);
                memcpy(buf, seeds[k], i);
                buf[i] = subst[j];
                memcpy(buf + i + 1, seeds[k] + i, n - i);
                face_diff_chunk(buf, n + 1);
            }
            memcpy(buf, seeds[k], i);
            memcpy(buf + i, seeds[k] + i + 1, n - i - 1);
            face_diff_chunk(buf, n - 1);
        }
    }
}

/* ---------------------------------------------------------- passthrough */

static void test_passthrough_edges(void **state)
{
    static const struct {
        const char *name;
        bytes data;
    } evs[] = {
        { "ping", B("{\"type\":\"ping\"}") },
        { "ping", B("{\"type\": \"ping\"}") },
        { "ping", B("  {\"type\":\"ping\"}  ") },
        { "ping", B("{ }") },
        { "ping", B("{\"x\":1}") },
        { NULL, B("{\"type\":\"ping\"}") },
        { "ping", B("{\"type\":\"p\\u0069ng\"}") },
        { "ping", B("{\"type\":\"ping\",\"type\":\"content_block_stop\"}") },
        { "ping", B("{\"type\":\"message_stop\",\"type\":\"ping\"}") },
        { "ping", B("{\"type\":\"ping\",\"type\":\"message_stop\"}") },
        { "x", B("{\"type\":\"message_st\\u006fp\"}") },
        { "x", B("{\"type\":\"err\\u006fr\",\"error\":{\"type\":\"api_error\",\"message\":\"m\"}}") },
        { "x", B("{\"type\":\"message_delta\",\"usage\":{\"output_tokens\":3}}") },
        { "x", B("{\"type\":\"message_delt\\u0061\",\"usage\":{\"output_tokens\":3}}") },
        { "x", B("{\"type\":\"message_start\",\"message\":{\"usage\":{\"input_tokens\":9}}}") },
        { "x", B("{\"type\":5}") },
        { "x", B("{\"type\":null}") },
        { "x", B("{\"type\":\"\"}") },
        { "x", B("{\"type\":\"a/b\"}") },
        { "x", B("{\"type\":\"0123456789012345678901234567890123456789012345678901234567890\"}") },
        { "x", B("{\"type\":\"01234567890123456789012345678901234567890123456789012345678901\"}") },
        { "x", B("{\"type\":\"012345678901234567890123456789012345678901234567890123456789012\"}") },
        { "x", B("{\"type\":\"0123456789012345678901234567890123456789012345678901234567890123\"}") },
        { "x", B("{\"type\":\"\xc3\xa9t\xc3\xa9\"}") },
        { "content_block_delta", B("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"text_delta\",\"text\":\"\\u00e9\\/\\n\"}}") },
        { "content_block_delta", B("{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                                   "{\"type\":\"input_json_delta\",\"partial_json\":\"{\\\"\"}}") },
        { "content_block_delta", B("{\"provider\":\"up\",\"type\":\"content_block_delta\"}") },
        { "content_block_start", B("{\"type\":\"content_block_start\",\"index\":1,"
                                   "\"content_block\":{\"type\":\"redacted_thinking\",\"data\":\"x\"}}") },
        { "x", B("[{\"type\":\"ping\"}]") },
        { "x", B("{\"type\":\"ping\"") },
        { "x", B("{\"type\":\"ping\",}") },
        { "x", B("{\"type\":\"ping\"}x") },
        { "x", B("{\"type\":\"ping\",\"n\":99999999999999999999}") },
        { "x", B("{\"type\":\"ping\",\"s\":\"\\u0000\"}") },
        { "x", B("{\"type\":\"ping\",\"s\":\"\xff\"}") },
        { "x", B("{\"type\":\"ping\",\"n\":1\0}") },
        { "x", B("{\"type\":\"ping\",\"n\":1\0\0}") },
        { "x", B("{\"type\":\"ping\"}\0") },
        { "x", B("") },
    };
    size_t i;
    (void)state;

    for (i = 0; i < sizeof(evs) / sizeof(evs[0]); i++) {
        pass_diff_event(evs[i].name, evs[i].data.p, evs[i].data.len);
    }
}

static void test_passthrough_mutations(void **state)
{
    static const char *const seeds[] = {
        "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\","
        "\"text\":\"a\\nb\"}}",
        "{\"type\":\"message_stop\"}",
        "{\"type\":\"ping\"}",
    };
    static const char subst[] = "\"\\{}[],:0-1.eu \x01\xc3";
    size_t k, i, j, step = mn_t_quick() ? 11 : 1;
    char buf[512];
    (void)state;

    for (k = 0; k < sizeof(seeds) / sizeof(seeds[0]); k++) {
        size_t n = strlen(seeds[k]);
        for (i = 0; i < n; i += step) {
            for (j = 0; j < sizeof(subst) - 1; j++) {
                memcpy(buf, seeds[k], n);
                buf[i] = subst[j];
                pass_diff_event("e", buf, n);
            }
            memcpy(buf, seeds[k], i);
            memcpy(buf + i, seeds[k] + i + 1, n - i - 1);
            pass_diff_event("e", buf, n - 1);
        }
    }
}

/* ----------------------------------------------------------- allocation */

static void feed(mn_sink *in, const char *payload)
{
    in->write(in->baton, "data: ", 6);
    in->write(in->baton, payload, strlen(payload));
    in->write(in->baton, "\n\n", 2);
    in->frame_end(in->baton);
}

/* After the first chunk of each kind (which opens its block), text,
 * reasoning and argument chunks cost no Jansson allocation. */
static void test_translator_no_tree(void **state)
{
    static const char *const common[] = {
        TEXT,
        CHUNK("{\"reasoning_content\":\"hm\\n\"}"),
        CHUNK("{\"tool_calls\":[{\"index\":0,\"function\":{\"arguments\":\"{\\\"a\\\":1}\"}}]}"),
    };
    mn_buf out;
    mn_sink down = mn_buf_sink(&out), in;
    mn_fm_stream *s;
    size_t k, i, before;
    (void)state;

    json_set_alloc_funcs(counting_malloc, free);
    for (k = 0; k < sizeof(common) / sizeof(common[0]); k++) {
        mn_buf_init(&out);
        s = mn_fm_stream_create(&down, 1 << 16);
        in = mn_fm_stream_sink(s);
        feed(&in, FIRST);
        feed(&in, TOOL0);
        feed(&in, common[k]);
        before = out.len;
        jallocs = 0;
        for (i = 0; i < 50; i++) {
            feed(&in, common[k]);
        }
        assert_int_equal(jallocs, 0);
        assert_true(out.len > before + 50 * 80);
        mn_fm_stream_destroy(s);
        mn_buf_free(&out);
    }
    json_set_alloc_funcs(malloc, free);
}

static void test_passthrough_no_tree(void **state)
{
    static const char ev[] = "{\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                             "{\"type\":\"text_delta\",\"text\":\"tok\"}}";
    static const char want[] = "event: content_block_delta\ndata: {\"provider\":\"claude\","
                               "\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
                               "{\"type\":\"text_delta\",\"text\":\"tok\"}}\n\n";
    apr_pool_t *pool;
    mn_provider prov;
    mn_wire_ctx ctx;
    mn_stream *st;
    mn_buf out;
    mn_sink sink;
    size_t i;
    (void)state;

    apr_pool_create(&pool, NULL);
    mn_t_ctx(&ctx, pool, &prov, "claude", MN_FORMAT_ANTHROPIC, 1, 0);
    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    json_set_alloc_funcs(counting_malloc, free);
    st = mn_wire_anthropic_passthrough.stream_create(&ctx);
    mn_wire_anthropic_passthrough.stream_feed(st, MN_SSE_EVENT, "content_block_delta", ev,
                                              sizeof(ev) - 1, &sink);
    mn_buf_reset(&out);
    jallocs = 0;
    for (i = 0; i < 50; i++) {
        assert_int_equal(mn_wire_anthropic_passthrough.stream_feed(
            st, MN_SSE_EVENT, "content_block_delta", ev, sizeof(ev) - 1, &sink), MN_STREAM_MORE);
    }
    assert_int_equal(jallocs, 0);
    assert_int_equal(out.len, 50 * (sizeof(want) - 1));
    assert_memory_equal(out.data + 49 * (sizeof(want) - 1), want, sizeof(want) - 1);
    json_set_alloc_funcs(malloc, free);
    mn_wire_anthropic_passthrough.stream_destroy(st);
    mn_buf_free(&out);
    apr_pool_destroy(pool);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fixtures),
        cmocka_unit_test(test_translator_edges),
        cmocka_unit_test(test_translator_mutations),
        cmocka_unit_test(test_passthrough_edges),
        cmocka_unit_test(test_passthrough_mutations),
        cmocka_unit_test(test_translator_no_tree),
        cmocka_unit_test(test_passthrough_no_tree),
    };
    apr_initialize();
    return cmocka_run_group_tests(tests, NULL, NULL);
}
