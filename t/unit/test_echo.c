/* Unit tests for src/wire/echo.c: the offline builtin:echo provider. */
#include "harness.h"
#include "mn_echo.h"

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
    mn_t_ctx(&f->ctx, f->pool, &f->prov, "echo", MN_FORMAT_ECHO, 0, 0);
    f->prov.key = NULL;
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

/* A request whose last user message has the given content (JSON text). */
static json_t *request_with(const char *content_json)
{
    char buf[2048];
    snprintf(buf, sizeof(buf),
             "{\"model\":\"echo/x\",\"messages\":["
             "{\"role\":\"system\",\"content\":\"be brief\"},"
             "{\"role\":\"user\",\"content\":\"first question\"},"
             "{\"role\":\"assistant\",\"content\":\"an answer\"},"
             "{\"role\":\"user\",\"content\":%s}]}", content_json);
    return mn_t_json(buf);
}

static void assert_usage(const mn_usage *u, long prompt, long completion)
{
    assert_int_equal(u->have, 1);
    assert_int_equal(u->prompt_tokens, prompt);
    assert_int_equal(u->completion_tokens, completion);
    assert_int_equal(u->total_tokens, prompt + completion);
}

/* ---- non-streaming ---------------------------------------------------------------- */

static void test_response_shape(void **state)
{
    fixture *f = *state;
    json_t *req = request_with("\"hello  echo world\"");
    mn_usage u = { 0, 0, 0, 0, 0, 0, 0 };
    json_t *resp = mn_echo_response(&f->ctx, req, &u);
    json_t *want = mn_t_json("{\"object\":\"chat.completion\",\"created\":1767225600,"
                        "\"model\":\"test-model\",\"choices\":[{\"index\":0,\"message\":"
                        "{\"role\":\"assistant\",\"content\":\"hello  echo world\","
                        "\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"stop\"}],"
                        "\"usage\":{\"prompt_tokens\":9,\"completion_tokens\":3,"
                        "\"total_tokens\":12},\"provider\":\"echo\"}");
    const char *id = json_string_value(json_object_get(resp, "id"));
    assert_non_null(id);
    assert_true(!strncmp(id, "chatcmpl-echo-", 14));
    json_object_del(resp, "id");
    if (!json_equal(resp, want)) {
        char *s = json_dumps(resp, JSON_COMPACT);
        fail_msg("echo response: %s", s);
    }
    /* system 2 + user 2 + assistant 2 + user 3 words */
    assert_usage(&u, 9, 3);
    json_decref(resp);
    json_decref(want);
    json_decref(req);
}

static const char *answer_of(json_t *resp)
{
    json_t *msg = json_object_get(json_array_get(json_object_get(resp, "choices"), 0),
                                  "message");
    return json_string_value(json_object_get(msg, "content"));
}

/* Parts arrays: the text parts, joined by newlines; other parts ignored. */
static void test_response_text_parts(void **state)
{
    fixture *f = *state;
    json_t *req = request_with("[{\"type\":\"text\",\"text\":\"look at\"},"
                               "{\"type\":\"image_url\",\"image_url\":{\"url\":\"data:x\"}},"
                               "{\"type\":\"text\",\"text\":\"this  one\"}]");
    mn_usage u;
    json_t *resp = mn_echo_response(&f->ctx, req, &u);
    assert_string_equal(answer_of(resp), "look at\nthis  one");
    assert_usage(&u, 6 + 4, 4);
    json_decref(resp);
    json_decref(req);
}

static void test_response_names_from_ctx(void **state)
{
    fixture *f = *state;
    json_t *req = request_with("\"hi\"");
    mn_usage u;
    json_t *resp;
    f->ctx.model = "parrot-7b";
    f->ctx.provider_name = "local-echo";
    f->ctx.created = 42;
    resp = mn_echo_response(&f->ctx, req, &u);
    assert_string_equal(json_string_value(json_object_get(resp, "model")), "parrot-7b");
    assert_string_equal(json_string_value(json_object_get(resp, "provider")), "local-echo");
    assert_int_equal(json_integer_value(json_object_get(resp, "created")), 42);
    json_decref(resp);
    json_decref(req);
}

/* The last *user* message, even when an assistant turn comes after it. */
static void test_response_last_user(void **state)
{
    fixture *f = *state;
    json_t *req = mn_t_json("{\"model\":\"e/x\",\"messages\":["
                       "{\"role\":\"user\",\"content\":\"one\"},"
                       "{\"role\":\"user\",\"content\":\"two words\"},"
                       "{\"role\":\"assistant\",\"content\":\"not me\"}]}");
    json_t *none = mn_t_json("{\"model\":\"e/x\",\"messages\":["
                        "{\"role\":\"system\",\"content\":\"only system\"}]}");
    mn_usage u;
    json_t *resp = mn_echo_response(&f->ctx, req, &u);
    assert_string_equal(answer_of(resp), "two words");
    assert_usage(&u, 5, 2);
    json_decref(resp);
    resp = mn_echo_response(&f->ctx, none, &u);
    assert_string_equal(answer_of(resp), "");
    assert_usage(&u, 2, 0);
    json_decref(resp);
    json_decref(req);
    json_decref(none);
}

static void test_response_ids_unique(void **state)
{
    fixture *f = *state;
    json_t *req = request_with("\"x\"");
    mn_usage u;
    json_t *a = mn_echo_response(&f->ctx, req, &u);
    json_t *b = mn_echo_response(&f->ctx, req, &u);
    assert_string_not_equal(json_string_value(json_object_get(a, "id")),
                            json_string_value(json_object_get(b, "id")));
    json_decref(a);
    json_decref(b);
    json_decref(req);
}

/* ---- streaming --------------------------------------------------------------------- */

typedef struct {
    mn_buf bytes;
    int frame_ends;
} frame_sink;

static void fs_write(void *baton, const char *data, size_t len)
{
    mn_buf_append(&((frame_sink *)baton)->bytes, data, len);
}

static void fs_frame_end(void *baton)
{
    ((frame_sink *)baton)->frame_ends++;
}

/* Streams the echo of `text` (a JSON string literal) and returns its frames
 * (data payloads), checking framing on the way. */
static json_t *stream_frames(fixture *f, const char *content_json, int include_usage,
                             mn_usage *u)
{
    frame_sink fs;
    mn_sink s = { fs_write, fs_frame_end, &fs };
    json_t *req = request_with(content_json);
    json_t *frames;
    size_t i;
    mn_buf_init(&fs.bytes);
    fs.frame_ends = 0;
    f->ctx.stream = 1;
    f->ctx.include_usage = include_usage;
    mn_echo_stream(&f->ctx, req, &s, u);
    frames = mn_t_data_frames(fs.bytes.data, fs.bytes.len);
    /* one frame end per frame, every frame `data: ...\n\n` */
    assert_int_equal(fs.frame_ends, (int)json_array_size(frames));
    {
        size_t off = 0;
        for (i = 0; i < json_array_size(frames); i++) {
            const char *payload = json_string_value(json_array_get(frames, i));
            size_t n = strlen(payload);
            assert_true(off + 6 + n + 2 <= fs.bytes.len);
            assert_memory_equal(fs.bytes.data + off, "data: ", 6);
            assert_memory_equal(fs.bytes.data + off + 6, payload, n);
            assert_memory_equal(fs.bytes.data + off + 6 + n, "\n\n", 2);
            off += 6 + n + 2;
        }
        assert_int_equal(off, fs.bytes.len);
    }
    mn_buf_free(&fs.bytes);
    json_decref(req);
    return frames;
}

static json_t *frame_json(json_t *frames, size_t i)
{
    json_t *j = json_loads(json_string_value(json_array_get(frames, i)), 0, NULL);
    if (!j) {
        fail_msg("frame %zu not JSON: %s", i, json_string_value(json_array_get(frames, i)));
    }
    return j;
}

static json_t *choice0(json_t *chunk)
{
    return json_array_get(json_object_get(chunk, "choices"), 0);
}

/* Checks the whole stream: role chunk, word chunks adding up to want_text,
 * finish chunk, usage chunk iff include_usage, [DONE]. */
static void check_stream(fixture *f, const char *content_json, const char *want_text,
                         int include_usage, long want_prompt, long want_completion)
{
    mn_usage u;
    json_t *frames = stream_frames(f, content_json, include_usage, &u);
    size_t n = json_array_size(frames), i, last_chunk;
    json_t *first = NULL;
    mn_buf text;
    mn_buf_init(&text);
    mn_buf_append(&text, "", 0);

    assert_true(n >= 3 + (include_usage ? 1 : 0));
    assert_string_equal(json_string_value(json_array_get(frames, n - 1)), "[DONE]");
    last_chunk = n - 2 - (include_usage ? 1 : 0);   /* index of the finish chunk */

    for (i = 0; i + 1 < n; i++) {
        json_t *c = frame_json(frames, i);
        json_t *ch = choice0(c);
        json_t *delta = json_object_get(ch, "delta");
        const char *id = json_string_value(json_object_get(c, "id"));
        assert_string_equal(json_string_value(json_object_get(c, "object")),
                            "chat.completion.chunk");
        assert_string_equal(json_string_value(json_object_get(c, "model")), "test-model");
        assert_string_equal(json_string_value(json_object_get(c, "provider")), "echo");
        assert_int_equal(json_integer_value(json_object_get(c, "created")), 1767225600);
        if (!first) {
            first = json_incref(c);
        }
        /* one completion: one id */
        assert_string_equal(id, json_string_value(json_object_get(first, "id")));

        if (include_usage && i == n - 2) {
            json_t *want = json_pack("{s:I,s:I,s:I}", "prompt_tokens", (json_int_t)want_prompt,
                                     "completion_tokens", (json_int_t)want_completion,
                                     "total_tokens", (json_int_t)(want_prompt + want_completion));
            assert_true(json_is_array(json_object_get(c, "choices")));
            assert_int_equal(json_array_size(json_object_get(c, "choices")), 0);
            assert_true(json_equal(json_object_get(c, "usage"), want));
            json_decref(want);
            json_decref(c);
            continue;
        }
        /* "usage": null on every other chunk, only when the client asked */
        if (include_usage) {
            assert_true(json_is_null(json_object_get(c, "usage")));
        }
        else {
            assert_null(json_object_get(c, "usage"));
        }
        assert_int_equal(json_array_size(json_object_get(c, "choices")), 1);
        assert_int_equal(json_integer_value(json_object_get(ch, "index")), 0);
        assert_true(json_is_null(json_object_get(ch, "logprobs")));
        if (i == 0) {
            json_t *want = json_pack("{s:s,s:s}", "role", "assistant", "content", "");
            assert_true(json_equal(delta, want));
            assert_true(json_is_null(json_object_get(ch, "finish_reason")));
            json_decref(want);
        }
        else if (i == last_chunk) {
            assert_true(json_is_object(delta));
            assert_int_equal(json_object_size(delta), 0);
            assert_string_equal(json_string_value(json_object_get(ch, "finish_reason")), "stop");
        }
        else {
            const char *piece = json_string_value(json_object_get(delta, "content"));
            size_t k, words = 0;
            int in_word = 0;
            assert_non_null(piece);
            assert_int_equal(json_object_size(delta), 1);
            assert_true(json_is_null(json_object_get(ch, "finish_reason")));
            /* word by word: at most one word per chunk, never an empty chunk */
            assert_true(strlen(piece) > 0);
            for (k = 0; piece[k]; k++) {
                int sp = piece[k] == ' ' || piece[k] == '\n' || piece[k] == '\t';
                if (!sp && !in_word) {
                    words++;
                }
                in_word = !sp;
            }
            assert_true(words <= 1);
            mn_buf_append(&text, piece, strlen(piece));
        }
        json_decref(c);
    }
    assert_string_equal(text.data, want_text);
    assert_usage(&u, want_prompt, want_completion);
    json_decref(first);
    json_decref(frames);
    mn_buf_free(&text);
}

static void test_stream_with_usage(void **state)
{
    check_stream(*state, "\"Waves  fold into\\nfoam \\u2014 again\"",
                 "Waves  fold into\nfoam \xe2\x80\x94 again", 1, 6 + 6, 6);
}

static void test_stream_without_usage(void **state)
{
    check_stream(*state, "\"Waves  fold into\\nfoam \\u2014 again\"",
                 "Waves  fold into\nfoam \xe2\x80\x94 again", 0, 6 + 6, 6);
}

/* Leading and trailing whitespace survive the split into chunks. */
static void test_stream_whitespace_exact(void **state)
{
    check_stream(*state, "\"   spaced   out\\t\\twords  \"", "   spaced   out\t\twords  ", 1,
                 6 + 3, 3);
    check_stream(*state, "\"one\"", "one", 0, 6 + 1, 1);
}

static void test_stream_word_count(void **state)
{
    mn_usage u;
    json_t *frames = stream_frames(*state, "\"a b c d\"", 0, &u);
    /* role + 4 words + finish + [DONE] */
    assert_int_equal(json_array_size(frames), 7);
    json_decref(frames);
    frames = stream_frames(*state, "\"a b c d\"", 1, &u);
    assert_int_equal(json_array_size(frames), 8);
    json_decref(frames);
}

static void test_stream_empty_message(void **state)
{
    mn_usage u;
    json_t *frames = stream_frames(*state, "\"\"", 0, &u);
    assert_int_equal(json_array_size(frames), 3);
    json_decref(frames);
    check_stream(*state, "\"\"", "", 1, 6, 0);
}

#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_response_shape),
        T(test_response_text_parts),
        T(test_response_names_from_ctx),
        T(test_response_last_user),
        T(test_response_ids_unique),
        T(test_stream_with_usage),
        T(test_stream_without_usage),
        T(test_stream_whitespace_exact),
        T(test_stream_word_count),
        T(test_stream_empty_message),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
