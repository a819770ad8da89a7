/* Unit tests for src/wire/chunk.c: every frame the writer makes is exactly
 * `data: ` + Jansson's compact dump of the chunk tree the translators used
 * to build (id, object, created, model, choices, usage, provider) + a blank
 * line, for awkward ids, models and provider names, with and without
 * include_usage; the provider member is the one mn_chunk_tag adds. */
#include "harness.h"
#include "mn_chunk.h"

#define CREATED 1767225600

/* The chunk tree (provider last, as mn_chunk_tag appends it). */
static json_t *tree(const char *id, const char *model, json_t *delta, const char *finish,
                    int include_usage, const char *provider)
{
    json_t *c = json_pack("{s:s,s:s,s:I,s:s,s:[{s:i,s:o,s:n,s:o}]}", "id", id, "object",
                          "chat.completion.chunk", "created", (json_int_t)CREATED, "model", model,
                          "choices", "index", 0, "delta", delta, "logprobs", "finish_reason",
                          finish ? json_string(finish) : json_null());
    if (include_usage) {
        json_object_set_new(c, "usage", json_null());
    }
    mn_chunk_tag(c, provider);
    return c;
}

static void expect(mn_buf *got, json_t *want_tree)
{
    char *w = json_dumps(want_tree, JSON_COMPACT);
    size_t n = strlen(w) + 8;
    char *want = malloc(n + 1);
    snprintf(want, n + 1, "data: %s\n\n", w);
    if (got->len != strlen(want) || memcmp(got->data, want, got->len)) {
        fail_msg("frame differs\n got: %.*s\nwant: %s", (int)got->len, got->data, want);
    }
    free(want);
    free(w);
    json_decref(want_tree);
    mn_buf_reset(got);
}

static void test_frames_equal_trees(void **state)
{
    static const char *const ids[] = { "chatcmpl-1", "q\"uo\\te\n\x01/\xc3\xa9", "" };
    static const char *const providers[] = { "gem", "we\"ird/\xe2\x82\xac", NULL };
    size_t i;
    int inc;
    (void)state;

    for (i = 0; i < 3; i++) {
        for (inc = 0; inc <= 1; inc++) {
            mn_chunk c;
            mn_buf out;
            mn_sink sink;
            json_t *text = json_string("h\xc3\xa9llo \"x\"\n");
            json_t *args = json_string("{\"a\":1}");
            json_t *usage = json_pack("{s:i,s:i}", "prompt_tokens", 3, "completion_tokens", 4);
            json_t *delta = json_pack("{s:[{s:i,s:s}]}", "tool_calls", "index", 2, "id", "t");
            json_t *u;
            char *raw;

            mn_buf_init(&out);
            sink = mn_buf_sink(&out);
            assert_int_equal(mn_chunk_init(&c, providers[i], inc), 0);
            assert_false(mn_chunk_ready(&c));
            assert_int_equal(mn_chunk_head(&c, ids[i], NULL, ids[(i + 1) % 3], NULL, CREATED), 0);
            assert_true(mn_chunk_ready(&c));

            mn_chunk_role(&c, &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3],
                              json_pack("{s:s,s:s}", "role", "assistant", "content", ""), NULL,
                              inc, providers[i]));
            mn_chunk_text(&c, "content", text, &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3], json_pack("{s:O}", "content", text), NULL,
                              inc, providers[i]));
            raw = json_dumps(text, JSON_ENCODE_ANY);
            mn_chunk_text_raw(&c, "content", raw, strlen(raw), &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3], json_pack("{s:O}", "content", text), NULL,
                              inc, providers[i]));
            mn_chunk_text_raw(&c, "reasoning_content", raw, strlen(raw), &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3],
                              json_pack("{s:O}", "reasoning_content", text), NULL, inc,
                              providers[i]));
            free(raw);
            mn_chunk_tool_args(&c, 7, args, &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3],
                              json_pack("{s:[{s:i,s:{s:O}}]}", "tool_calls", "index", 7,
                                        "function", "arguments", args), NULL, inc, providers[i]));
            mn_chunk_delta(&c, delta, "tool_calls", &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3], json_incref(delta), "tool_calls", inc,
                              providers[i]));
            mn_chunk_finish(&c, "stop", &sink);
            expect(&out, tree(ids[i], ids[(i + 1) % 3], json_object(), "stop", inc, providers[i]));
            mn_chunk_usage(&c, usage, &sink);
            u = json_pack("{s:s,s:s,s:I,s:s,s:[],s:O}", "id", ids[i], "object",
                          "chat.completion.chunk", "created", (json_int_t)CREATED, "model",
                          ids[(i + 1) % 3], "choices", "usage", usage);
            mn_chunk_tag(u, providers[i]);
            expect(&out, u);

            mn_chunk_free(&c);
            mn_buf_free(&out);
            json_decref(text);
            json_decref(args);
            json_decref(usage);
            json_decref(delta);
        }
    }
}

/* A head that cannot be made (an id that is not UTF-8) writes nothing, as
 * the tree that could not be packed did. */
static void test_no_head_no_frames(void **state)
{
    mn_chunk c;
    mn_buf out;
    mn_sink sink;
    (void)state;

    mn_buf_init(&out);
    sink = mn_buf_sink(&out);
    assert_int_equal(mn_chunk_init(&c, "p", 1), 0);
    assert_int_equal(mn_chunk_head(&c, "bad\xff", NULL, "m", NULL, CREATED), -1);
    mn_chunk_role(&c, &sink);
    mn_chunk_finish(&c, "stop", &sink);
    mn_chunk_text_raw(&c, "content", "\"x\"", 3, &sink);
    assert_int_equal(out.len, 0);
    mn_chunk_free(&c);
    mn_buf_free(&out);
}

/* The member as bytes is what mn_chunk_tag puts in a tree; replacing an
 * upstream's keeps its place. */
static void test_member_and_tag(void **state)
{
    size_t len;
    char *m = mn_chunk_member("a\"b", &len);
    json_t *o = mn_t_json("{\"provider\":\"up\",\"x\":1}");
    char *d;
    (void)state;

    assert_string_equal(m, "\"provider\":\"a\\\"b\"");
    assert_int_equal(len, strlen(m));
    free(m);
    m = mn_chunk_member(NULL, &len);
    assert_string_equal(m, "");
    assert_int_equal(len, 0);
    free(m);
    mn_chunk_tag(o, "gw");
    d = json_dumps(o, JSON_COMPACT);
    assert_string_equal(d, "{\"provider\":\"gw\",\"x\":1}");
    free(d);
    json_decref(o);
}

/* A member kept at configuration time is found by the name's address only,
 * holds exactly mn_chunk_member's bytes, is what mn_chunk_init and
 * mn_chunk_member_for hand out without a copy, and is gone once its pool is
 * cleared (a restart reads the names again); a name not kept gets the same
 * bytes made for it. */
static void test_member_kept(void **state)
{
    static const char *const names[] = { "gem", "we\"ird/\xe2\x82\xac", "" };
    char same[] = "gem";
    apr_pool_t *p;
    size_t i;
    (void)state;

    apr_initialize();
    apr_pool_create(&p, NULL);
    for (i = 0; i < 3; i++) {
        mn_chunk_member_keep(p, names[i]);
    }
    for (i = 0; i < 3; i++) {
        size_t len, klen = 99;
        char *m = mn_chunk_member(names[i], &len);
        const char *k = mn_chunk_member_kept(names[i], &klen);
        char *made = (char *)1;
        size_t flen = 99;
        mn_chunk c;

        assert_non_null(k);
        assert_int_equal(klen, len);
        assert_memory_equal(k, m, len + 1);
        assert_ptr_equal(mn_chunk_member_for(names[i], &flen, &made), k);
        assert_null(made);
        assert_int_equal(flen, len);
        assert_int_equal(mn_chunk_init(&c, names[i], 1), 0);
        assert_int_equal(c.provider_len, len);
        assert_ptr_equal(c.provider, k);
        assert_null(c.provider_made);
        mn_chunk_free(&c);
        free(m);
    }
    {
        size_t flen = 99;
        char *made = NULL;
        const char *f = mn_chunk_member_for(same, &flen, &made);
        mn_chunk c;

        assert_non_null(made);
        assert_ptr_equal(f, made);
        assert_int_equal(flen, 16);
        assert_memory_equal(f, "\"provider\":\"gem\"", 17);
        free(made);
        assert_int_equal(mn_chunk_init(&c, same, 0), 0);
        assert_non_null(c.provider_made);
        assert_ptr_equal(c.provider, c.provider_made);
        assert_string_equal(c.provider, "\"provider\":\"gem\"");
        mn_chunk_free(&c);
    }
    assert_null(mn_chunk_member_kept(same, &(size_t){0}));
    assert_null(mn_chunk_member_kept(NULL, &(size_t){0}));
    apr_pool_clear(p);
    assert_null(mn_chunk_member_kept(names[0], &(size_t){0}));
    apr_pool_destroy(p);
    apr_terminate();
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_frames_equal_trees),
        cmocka_unit_test(test_no_head_no_frames),
        cmocka_unit_test(test_member_and_tag),
        cmocka_unit_test(test_member_kept),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
