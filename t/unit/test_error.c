/* Unit tests for src/core/error.c: OpenAI-shaped errors, normalising and writing. */
#include "harness.h"
#include "mn_error.h"
#include "mn_providers.h"

/* JSON written with ' for " (test bodies contain no apostrophes).  New reference. */
static json_t *load(const char *squoted)
{
    char *s = strdup(squoted);
    char *c;
    json_t *j;
    for (c = s; *c; c++) {
        if (*c == '\'') {
            *c = '"';
        }
    }
    j = json_loads(s, 0, NULL);
    if (!j) {
        fail_msg("bad test JSON: %s", s);
    }
    free(s);
    return j;
}

static void assert_json_is(json_t *got, const char *squoted)
{
    json_t *want = load(squoted);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        fail_msg("JSON differs\n got: %s\nwant: %s", g, w);
    }
    json_decref(want);
}

static void assert_fields(const mn_error *e, int status, const char *type, const char *param,
                          const char *code, const char *message)
{
    assert_int_equal(e->status, status);
    assert_string_equal(e->type, type);
    assert_string_equal(e->param, param);
    assert_string_equal(e->code, code);
    assert_string_equal(e->message, message);
}

/* ---- building ------------------------------------------------------------------ */

static void test_set_and_clear(void **state)
{
    mn_error e;
    mn_error_clear(&e);
    assert_false(mn_error_is_set(&e));
    strcpy(e.retry_after, "5");
    assert_int_equal(mn_error_set(&e, 400, "invalid_request_error", "n", NULL, "bad %s %d",
                                  "n", 2), -1);
    assert_true(mn_error_is_set(&e));
    assert_fields(&e, 400, "invalid_request_error", "n", "", "bad n 2");
    /* a new error does not inherit the old Retry-After */
    assert_string_equal(e.retry_after, "");
    /* type NULL: derived from the status */
    mn_error_set(&e, 429, NULL, "", "", "slow");
    assert_fields(&e, 429, "rate_limit_error", "", "", "slow");
    mn_error_clear(&e);
    assert_false(mn_error_is_set(&e));
}

/* the one "bad param" 400: param named in the field, message as formatted,
 * nothing of an earlier error (code, Retry-After) left over */
static void test_bad_param(void **state)
{
    mn_error e;
    mn_error_clear(&e);
    mn_error_set(&e, 429, NULL, "x", "rate_limited", "slow");
    strcpy(e.retry_after, "7");
    assert_int_equal(mn_error_bad_param(&e, "tools[2].type", "%s: must be %d", "tools[2].type",
                                        7), -1);
    assert_fields(&e, 400, "invalid_request_error", "tools[2].type", "", "tools[2].type: must be 7");
    assert_string_equal(e.retry_after, "");
    mn_error_bad_param(&e, NULL, "no param");
    assert_fields(&e, 400, "invalid_request_error", "", "", "no param");
}

static void test_set_truncates(void **state)
{
    mn_error e;
    char big[3000];
    memset(big, 'm', sizeof(big) - 1);
    big[sizeof(big) - 1] = '\0';
    memset(&e, 0, sizeof(e));
    mn_error_set(&e, 500, big, big, big, "%s", big);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    assert_int_equal(strlen(e.type), sizeof(e.type) - 1);
    assert_int_equal(strlen(e.param), sizeof(e.param) - 1);
    assert_int_equal(strlen(e.code), sizeof(e.code) - 1);
}

static void test_type_for_status(void **state)
{
    static const struct { int status; const char *type; } table[] = {
        { 400, "invalid_request_error" }, { 404, "invalid_request_error" },
        { 405, "invalid_request_error" }, { 409, "invalid_request_error" },
        { 413, "invalid_request_error" }, { 415, "invalid_request_error" },
        { 422, "invalid_request_error" }, { 418, "invalid_request_error" },
        { 401, "authentication_error" }, { 403, "permission_error" },
        { 408, "timeout_error" }, { 429, "rate_limit_error" },
        { 500, "server_error" }, { 501, "server_error" }, { 502, "upstream_error" },
        { 503, "server_error" }, { 504, "timeout_error" }, { 529, "server_error" },
        { 599, "server_error" },
    };
    size_t i;
    for (i = 0; i < sizeof(table) / sizeof(table[0]); i++) {
        const char *got = mn_error_type_for_status(table[i].status);
        if (strcmp(got, table[i].type)) {
            fail_msg("status %d: %s, want %s", table[i].status, got, table[i].type);
        }
    }
}

/* ---- to JSON --------------------------------------------------------------------- */

static void test_to_json_nulls(void **state)
{
    mn_error e;
    json_t *j;
    mn_error_set(&e, 400, "invalid_request_error", NULL, "", "Bad thing");
    j = mn_error_to_json(&e, NULL);
    assert_json_is(j, "{'error':{'message':'Bad thing','type':'invalid_request_error',"
                      "'param':null,'code':null}}");
    json_decref(j);
}

static void test_to_json_full(void **state)
{
    mn_error e;
    json_t *j;
    mn_error_set(&e, 429, "tokens", "messages", "rate_limit_exceeded", "Slow down");
    j = mn_error_to_json(&e, "openai");
    assert_json_is(j, "{'error':{'message':'Slow down','type':'tokens','param':'messages',"
                      "'code':'rate_limit_exceeded'},'provider':'openai'}");
    json_decref(j);
}

/* An error that was never given a type still has one on the wire. */
static void test_to_json_default_type(void **state)
{
    mn_error e;
    json_t *j;
    mn_error_clear(&e);
    strcpy(e.message, "m");
    j = mn_error_to_json(&e, NULL);
    assert_json_is(j, "{'error':{'message':'m','type':'server_error','param':null,'code':null}}");
    json_decref(j);
}

static void test_to_json_utf8(void **state)
{
    mn_error e;
    json_t *j;
    char *s;
    /* valid UTF-8 passes untouched */
    mn_error_set(&e, 500, NULL, NULL, NULL, "caf\xc3\xa9 \xe2\x80\x94 ok");
    j = mn_error_to_json(&e, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
                                                          "message")),
                        "caf\xc3\xa9 \xe2\x80\x94 ok");
    json_decref(j);

    /* invalid UTF-8: ASCII kept, every other byte masked, JSON still valid */
    mn_error_set(&e, 502, NULL, NULL, NULL, "bad \xff\xfe byte \xc3\xa9 end");
    j = mn_error_to_json(&e, "p");
    assert_non_null(j);
    assert_json_is(j, "{'error':{'message':'bad ?? byte ?? end','type':'upstream_error',"
                      "'param':null,'code':null},'provider':'p'}");
    s = json_dumps(j, JSON_COMPACT);
    assert_non_null(s);
    free(s);
    json_decref(j);

    /* a message cut inside a multi-byte sequence */
    mn_error_set(&e, 500, NULL, NULL, NULL, "x\xe2\x80");
    j = mn_error_to_json(&e, NULL);
    assert_string_equal(json_string_value(json_object_get(json_object_get(j, "error"),
                                                          "message")), "x??");
    json_decref(j);
}

/* ---- frames ------------------------------------------------------------------------ */

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
    frame_sink *f = baton;
    f->frame_ends++;
    mn_buf_append(&f->bytes, "|", 1);
}

static void test_write_frame(void **state)
{
    frame_sink f;
    mn_sink s = { fs_write, fs_frame_end, &f };
    mn_error e;
    mn_buf_init(&f.bytes);
    f.frame_ends = 0;
    mn_error_set(&e, 502, "server_error", NULL, "upstream_eof", "upstream \"closed\"");
    mn_error_write_frame(&e, "groq", &s);
    assert_string_equal(f.bytes.data,
                        "data: {\"error\":{\"message\":\"upstream \\\"closed\\\"\","
                        "\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_eof\"},"
                        "\"provider\":\"groq\"}\n\n|");
    assert_int_equal(f.frame_ends, 1);
    mn_buf_reset(&f.bytes);
    mn_error_write_frame(&e, NULL, &s);
    assert_string_equal(f.bytes.data,
                        "data: {\"error\":{\"message\":\"upstream \\\"closed\\\"\","
                        "\"type\":\"server_error\",\"param\":null,\"code\":\"upstream_eof\"}}"
                        "\n\n|");
    mn_buf_free(&f.bytes);
}

/* ---- scrub ------------------------------------------------------------------------- */

/* A provider with the given keys (first one current), for the scrubber. */
static mn_provider *keyed(mn_provider *prov, const char *const *keys, int n)
{
    memset(prov, 0, sizeof(*prov));
    prov->name = "p";
    prov->keys = keys;
    prov->nkeys = n;
    prov->key = n ? keys[0] : NULL;
    return prov;
}

static void test_scrub(void **state)
{
    static const char *const k1[] = { "sk-abc123" };
    static const char *const none[] = { "" };
    static const char *const zzz[] = { "sk-zzz" };
    static const char *const kk[] = { "KEY" };
    mn_provider prov;
    mn_error e;
    mn_error_set(&e, 401, NULL, NULL, NULL,
                 "Incorrect API key provided: sk-abc123. Key sk-abc123 is invalid; "
                 "sk-abc123sk-abc123 twice");
    mn_error_scrub(&e, keyed(&prov, k1, 1));
    assert_string_equal(e.message, "Incorrect API key provided: ***. Key *** is invalid; "
                                   "****** twice");
    /* nothing to do */
    mn_error_scrub(&e, NULL);
    mn_error_scrub(&e, keyed(&prov, none, 1));
    mn_error_scrub(&e, keyed(&prov, zzz, 1));
    mn_error_scrub(&e, keyed(&prov, NULL, 0));
    assert_string_equal(e.message, "Incorrect API key provided: ***. Key *** is invalid; "
                                   "****** twice");
    /* at the very start and end */
    mn_error_set(&e, 401, NULL, NULL, NULL, "KEYxKEY");
    mn_error_scrub(&e, keyed(&prov, kk, 1));
    assert_string_equal(e.message, "***x***");
}

/* Keys shorter than the mask are unusual but the contract is the same:
 * each occurrence becomes "***" and the rest of the message is kept. */
static void test_scrub_short_secret(void **state)
{
    static const char *const k[] = { "k1" };
    mn_provider prov;
    mn_error e;
    mn_error_set(&e, 401, NULL, NULL, NULL, "use k1 now");
    mn_error_scrub(&e, keyed(&prov, k, 1));
    assert_string_equal(e.message, "use *** now");
}

/* Every client-visible string, and every key of the provider (round-robin:
 * the one sent may be any); a key that is a prefix of another must not
 * leave the other's tail. */
static void test_scrub_every_field_every_key(void **state)
{
    static const char *const keys[] = { "gsk_first0001", "gsk_second0002", "gsk_second0002XYZ" };
    mn_provider prov;
    mn_error e;
    mn_error_set(&e, 401, "bad gsk_second0002XYZ type", "key=gsk_second0002",
                 "gsk_first0001", "m gsk_second0002XYZ m");
    mn_error_scrub(&e, keyed(&prov, keys, 3));
    assert_fields(&e, 401, "bad *** type", "key=***", "***", "m *** m");
    /* the current key may be a copy outside the list */
    prov.key = "sk-only-current";
    mn_error_set(&e, 401, NULL, "sk-only-current", NULL, "sk-only-current");
    mn_error_scrub(&e, &prov);
    assert_fields(&e, 401, "authentication_error", "***", "", "***");
}

#define KEY40 "sk-proj-AbCdEfGhIjKlMnOpQrStUvWxYz0123456"

/* No 4-character (or longer) piece of a key, anywhere in the error. */
static void assert_no_key_piece(const mn_error *e, const char *key)
{
    const char *fields[] = { e->message, e->type, e->param, e->code };
    size_t f, i, klen = strlen(key);
    for (f = 0; f < 4; f++) {
        for (i = 0; i + 4 <= klen; i++) {
            char piece[5];
            memcpy(piece, key + i, 4);
            piece[4] = '\0';
            if (i >= 8 && strstr(fields[f], piece)) {
                /* "sk-proj-" is public; a later piece is the secret */
                fail_msg("field %zu holds key piece '%s': %s", f, piece, fields[f]);
            }
        }
        if (strstr(fields[f], "sk-proj-A")) {
            fail_msg("field %zu holds a key prefix: %s", f, fields[f]);
        }
    }
}

/* An upstream that echoes the key in code and param, and in a message long
 * enough that the key crosses the cut to the field's size: the client can
 * move the cut by sending text the upstream echoes, so every cut position
 * is tried. */
static void test_from_body_scrubs_before_cut(void **state)
{
    static const char *const keys[] = { KEY40 };
    mn_provider prov;
    mn_error e;
    size_t pad;
    keyed(&prov, keys, 1);
    for (pad = sizeof(e.message) - 45; pad < sizeof(e.message) + 2; pad++) {
        char body[2048];
        int n = snprintf(body, sizeof(body), "{\"error\":{\"message\":\"%*s" KEY40 " end\","
                         "\"code\":\"" KEY40 "\",\"param\":\"x" KEY40 "\","
                         "\"type\":\"t" KEY40 "\"}}", (int)pad, "");
        mn_error_from_openai_body(&e, 401, body, (size_t)n, &prov);
        assert_no_key_piece(&e, KEY40);
        assert_string_equal(e.code, "***");
        assert_string_equal(e.param, "x***");
        assert_string_equal(e.type, "t***");
    }
    /* the unwrapped (vLLM) and bare-string shapes too */
    mn_error_from_openai_body(&e, 401, "{\"message\":\"" KEY40 "\",\"code\":\"" KEY40 "\"}",
                              strlen("{\"message\":\"" KEY40 "\",\"code\":\"" KEY40 "\"}"),
                              &prov);
    assert_fields(&e, 401, "authentication_error", "", "***", "***");
    mn_error_from_openai_body(&e, 401, "{\"error\":\"" KEY40 "\"}",
                              strlen("{\"error\":\"" KEY40 "\"}"), &prov);
    assert_string_equal(e.message, "***");
}

/* A string some decoder already cut (a format's own message, printf-cut):
 * the key prefix at its end is masked; an uncut string is left alone. */
static void test_scrub_cut_tail(void **state)
{
    static const char *const keys[] = { KEY40 };
    mn_provider prov;
    mn_error e;
    size_t pad;
    keyed(&prov, keys, 1);
    for (pad = sizeof(e.message) - 45; pad < sizeof(e.message) + 2; pad++) {
        mn_error_set(&e, 401, NULL, NULL, NULL, "%*s%s tail", (int)pad, "", KEY40);
        mn_error_set(&e, 401, NULL, NULL, "abc" KEY40, "%*s%s tail", (int)pad, "", KEY40);
        mn_error_scrub(&e, &prov);
        assert_no_key_piece(&e, KEY40);
    }
    mn_error_set(&e, 401, NULL, NULL, NULL, "ends in sk-proj-AbCd");
    mn_error_scrub(&e, &prov);
    assert_string_equal(e.message, "ends in sk-proj-AbCd");
}

/* A cut inside a multi-byte character, in any field, still gives each
 * member as a string. */
static void test_to_json_cut_utf8_every_field(void **state)
{
    mn_error e;
    json_t *j, *in;
    char code[80];
    memset(code, 'c', sizeof(code));
    memcpy(code + 62, "\xc3\xa9", 2);
    code[64] = '\0';
    mn_error_set(&e, 400, "bad\xff", "p\xc3", code, "m");
    j = mn_error_to_json(&e, NULL);
    in = json_object_get(j, "error");
    assert_int_equal(json_object_size(in), 4);
    assert_string_equal(json_string_value(json_object_get(in, "type")), "bad?");
    assert_string_equal(json_string_value(json_object_get(in, "param")), "p?");
    assert_true(json_is_string(json_object_get(in, "code")));
    json_decref(j);
}

/* ---- upstream bodies -------------------------------------------------------------------- */

static void check_openai_fixture(const char *rel, int status)
{
    size_t len;
    char *body = mn_t_fixture(rel, &len);
    json_t *want = mn_t_fixture_json(rel);
    json_t *werr = json_object_get(want, "error");
    json_t *got;
    mn_error e;

    memset(&e, 0x5a, sizeof(e));
    mn_error_from_openai_body(&e, status, body, len, NULL);
    assert_int_equal(e.status, status);
    assert_string_equal(e.message, json_string_value(json_object_get(werr, "message")));
    assert_string_equal(e.type, json_string_value(json_object_get(werr, "type")));
    assert_string_equal(e.param, json_is_string(json_object_get(werr, "param"))
                                 ? json_string_value(json_object_get(werr, "param")) : "");
    assert_string_equal(e.code, json_is_string(json_object_get(werr, "code"))
                                ? json_string_value(json_object_get(werr, "code")) : "");
    assert_string_equal(e.retry_after, "");
    /* the body goes back to the client exactly as the upstream wrote it */
    got = mn_error_to_json(&e, NULL);
    if (!json_equal(got, want)) {
        fail_msg("%s does not round-trip", rel);
    }
    json_decref(got);
    json_decref(want);
    free(body);
}

static void test_openai_fixtures(void **state)
{
    check_openai_fixture("openai/error_400_context_length.json", 400);
    check_openai_fixture("openai/error_401_invalid_api_key.json", 401);
    check_openai_fixture("openai/error_404_model_not_found.json", 404);
    check_openai_fixture("openai/error_429_rate_limit.json", 429);
    check_openai_fixture("openai/error_500_server_error.json", 500);
}

static void from_body(mn_error *e, int status, const char *body)
{
    memset(e, 0x5a, sizeof(*e));
    mn_error_from_openai_body(e, status, body, body ? strlen(body) : 0, NULL);
}

static void test_vllm_unwrapped(void **state)
{
    mn_error e;
    from_body(&e, 400, "{\"object\":\"error\",\"message\":\"max_tokens is too large\","
                       "\"type\":\"BadRequestError\",\"param\":null,\"code\":400}");
    assert_fields(&e, 400, "BadRequestError", "", "400", "max_tokens is too large");
}

static void test_string_error(void **state)
{
    mn_error e;
    from_body(&e, 429, "{\"error\":\"Too many requests\"}");
    assert_fields(&e, 429, "rate_limit_error", "", "", "Too many requests");
}

static void test_detail(void **state)
{
    mn_error e;
    from_body(&e, 404, "{\"detail\":\"Not Found\"}");
    assert_fields(&e, 404, "invalid_request_error", "", "", "Not Found");
}

/* An error object without a type takes the status's type. */
static void test_partial_error_object(void **state)
{
    mn_error e;
    from_body(&e, 503, "{\"error\":{\"message\":\"busy\",\"code\":\"overloaded\"}}");
    assert_fields(&e, 503, "server_error", "", "overloaded", "busy");
    from_body(&e, 500, "{\"error\":{}}");
    assert_fields(&e, 500, "server_error", "", "",
                  "upstream answered HTTP 500 without an error message");
}

static void test_non_json_bodies(void **state)
{
    mn_error e;
    from_body(&e, 502, "<html><body>Bad Gateway</body></html>");
    assert_fields(&e, 502, "upstream_error", "", "",
                  "upstream answered HTTP 502 without an error message");
    from_body(&e, 503, "");
    assert_fields(&e, 503, "server_error", "", "",
                  "upstream answered HTTP 503 without an error message");
    from_body(&e, 401, NULL);
    assert_fields(&e, 401, "authentication_error", "", "",
                  "upstream answered HTTP 401 without an error message");
    from_body(&e, 400, "{\"unexpected\":true}");
    assert_fields(&e, 400, "invalid_request_error", "", "",
                  "upstream answered HTTP 400 without an error message");
    from_body(&e, 500, "[\"error\"]");
    assert_fields(&e, 500, "server_error", "", "",
                  "upstream answered HTTP 500 without an error message");
}

/* An upstream message longer than the buffer is cut, not overflowed. */
static void test_long_upstream_message(void **state)
{
    mn_error e;
    size_t n = 5000;
    char *body = malloc(n + 64);
    size_t off = (size_t)sprintf(body, "{\"error\":{\"message\":\"");
    memset(body + off, 'a', n);
    strcpy(body + off + n, "\",\"type\":\"server_error\"}}");
    from_body(&e, 500, body);
    assert_int_equal(strlen(e.message), sizeof(e.message) - 1);
    assert_string_equal(e.type, "server_error");
    free(body);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_set_and_clear),
        cmocka_unit_test(test_set_truncates),
        cmocka_unit_test(test_bad_param),
        cmocka_unit_test(test_type_for_status),
        cmocka_unit_test(test_to_json_nulls),
        cmocka_unit_test(test_to_json_full),
        cmocka_unit_test(test_to_json_default_type),
        cmocka_unit_test(test_to_json_utf8),
        cmocka_unit_test(test_write_frame),
        cmocka_unit_test(test_scrub),
        cmocka_unit_test(test_scrub_short_secret),
        cmocka_unit_test(test_scrub_every_field_every_key),
        cmocka_unit_test(test_from_body_scrubs_before_cut),
        cmocka_unit_test(test_scrub_cut_tail),
        cmocka_unit_test(test_to_json_cut_utf8_every_field),
        cmocka_unit_test(test_openai_fixtures),
        cmocka_unit_test(test_vllm_unwrapped),
        cmocka_unit_test(test_string_error),
        cmocka_unit_test(test_detail),
        cmocka_unit_test(test_partial_error_object),
        cmocka_unit_test(test_non_json_bodies),
        cmocka_unit_test(test_long_upstream_message),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
