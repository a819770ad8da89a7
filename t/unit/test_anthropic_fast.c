/* The Anthropic answer byte path (src/wire/anthropic_answer_fast.c) against
 * the tree path it shortcuts: mn_an_decode_response_bytes must give the
 * client the very bytes chat_json gives of mn_an_decode_response's tree
 * (json_dumps, JSON_COMPACT), the same usage, the same unknown stop reason
 * and the same error.  Inputs: every Anthropic fixture, hand-written answers
 * at each edge the byte path decides on (escapes, unicode, several blocks,
 * duplicates, int64 edges, stop reasons), single-byte mutations of a real
 * answer and generated answers.  Also: the common answers do take the byte
 * path, with no Jansson allocation at all. */
#include <dirent.h>
#include "anthropic_test.h"
#include "mn_anthropic.h"
#include "mn_chunk.h"
#include "mn_jscan.h"

static long jallocs;

static void *counting_malloc(size_t n)
{
    jallocs++;
    return malloc(n);
}

/* Provider names: plain, none, one Jansson escapes, one it refuses. */
static const char *const names[] = { PROVIDER, NULL, "pr\"o\\v\x01 \xc3\xa9", "bad\xff" };
#define NNAMES (sizeof(names) / sizeof(names[0]))

typedef struct {
    int rc, fast;
    char *bytes;
    size_t len;
    mn_usage usage;
    mn_error err;
    const char *unknown;
} outcome;

static void ctx_with(fx *f, mn_wire_ctx *ctx, mn_provider *prov, const char *name, int rc)
{
    mn_t_ctx(ctx, f->pool, prov, name ? name : "x", MN_FORMAT_ANTHROPIC, 0, 0);
    ctx->provider_name = name;
    prov->reasoning_content = rc;
}

static void by_tree(fx *f, const char *body, size_t len, const char *name, int rc, outcome *o)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    json_t *tree = NULL;

    memset(o, 0, sizeof(*o));
    ctx_with(f, &ctx, &prov, name, rc);
    mn_error_clear(&o->err);
    o->rc = mn_an_decode_response(&ctx, body, len, &tree, &o->usage, &o->err);
    if (!o->rc) {
        o->bytes = json_dumps(tree, JSON_COMPACT);
        assert_non_null(o->bytes);
        o->len = strlen(o->bytes);
        json_decref(tree);
    }
    o->unknown = ctx.unknown_finish;
}

static void by_bytes(fx *f, const char *body, size_t len, const char *name, int rc, outcome *o)
{
    mn_wire_ctx ctx;
    mn_provider prov;
    const char *b = NULL;
    size_t blen = 0;
    mn_usage u;

    memset(o, 0, sizeof(*o));
    ctx_with(f, &ctx, &prov, name, rc);
    o->fast = mn_an_answer_fast(&ctx, body, len, &b, &blen, &u);
    ctx.unknown_finish = NULL;
    mn_error_clear(&o->err);
    o->rc = mn_an_decode_response_bytes(&ctx, body, len, &b, &blen, &o->usage, &o->err);
    if (!o->rc) {
        o->bytes = malloc(blen + 1);
        memcpy(o->bytes, b, blen);
        o->bytes[blen] = '\0';
        o->len = blen;
    }
    o->unknown = ctx.unknown_finish;
}

static void assert_same(const outcome *t, const outcome *b, const char *body, size_t len)
{
    if (t->rc != b->rc) {
        fail_msg("rc %d (tree) vs %d (bytes) for %.*s", t->rc, b->rc, (int)len, body);
    }
    if (!t->rc && (t->len != b->len || memcmp(t->bytes, b->bytes, t->len))) {
        fail_msg("bytes differ for %.*s\ntree:  %s\nbytes: %s", (int)len, body, t->bytes,
                 b->bytes);
    }
    if (t->usage.have != b->usage.have || t->usage.prompt_tokens != b->usage.prompt_tokens
        || t->usage.completion_tokens != b->usage.completion_tokens
        || t->usage.total_tokens != b->usage.total_tokens
        || t->usage.cached_tokens != b->usage.cached_tokens
        || t->usage.cache_write_tokens != b->usage.cache_write_tokens
        || t->usage.reasoning_tokens != b->usage.reasoning_tokens) {
        fail_msg("usage differs for %.*s", (int)len, body);
    }
    if (t->err.status != b->err.status || strcmp(t->err.message, b->err.message)
        || strcmp(t->err.type, b->err.type) || strcmp(t->err.code, b->err.code)) {
        fail_msg("error differs for %.*s: %s / %s", (int)len, body, t->err.message,
                 b->err.message);
    }
    if ((t->unknown == NULL) != (b->unknown == NULL)
        || (t->unknown && strcmp(t->unknown, b->unknown))) {
        fail_msg("unknown finish differs for %.*s", (int)len, body);
    }
}

/* Both paths, every provider name, reasoning_content off and on; the byte
 * path taken (1), not taken (0) or either (-1).  Returns whether it was. */
static int diff_n(fx *f, const char *body, size_t len, int want_fast)
{
    int fast = 0;
    size_t i;
    int rc;

    for (i = 0; i < NNAMES; i++) {
        for (rc = 0; rc <= 1; rc++) {
            outcome t, b;
            by_tree(f, body, len, names[i], rc, &t);
            by_bytes(f, body, len, names[i], rc, &b);
            assert_same(&t, &b, body, len);
            if (want_fast >= 0 && b.fast != want_fast) {
                fail_msg("byte path %s for %.*s", b.fast ? "taken" : "not taken", (int)len, body);
            }
            fast = b.fast;
            free(t.bytes);
            free(b.bytes);
        }
    }
    return fast;
}

static int diff(fx *f, const char *body, int want_fast)
{
    return diff_n(f, body, strlen(body), want_fast);
}

/* ------------------------------------------------------------------ tests */

static void test_paths_compile_to_the_same(void **state)
{
    static const char *const fixed[] = {
        "type", "id", "model", "content", "stop_reason", "usage", "usage.input_tokens",
        "usage.cache_creation_input_tokens", "usage.cache_read_input_tokens",
        "usage.output_tokens", "usage.output_tokens_details.thinking_tokens", "content[*]"
    };
    unsigned n, i;
    const mn_jpath *p = mn_an_answer_paths(&n);
    (void)state;
    assert_true(n <= MN_JSCAN_MAX_PATHS);
    for (i = 0; i < n; i++) {
        char text[64];
        mn_jpath want;
        int s;
        const size_t nfixed = sizeof(fixed) / sizeof(fixed[0]);
        if (i < nfixed) {
            snprintf(text, sizeof(text), "%s", fixed[i]);
        }
        else {
            snprintf(text, sizeof(text), "content[%u].%s", (unsigned)(i - nfixed) / 2,
                     (i - nfixed) % 2 ? "text" : "type");
        }
        assert_int_equal(mn_jpath_compile(&want, text), 0);
        assert_int_equal(p[i].nseg, want.nseg);
        for (s = 0; s < want.nseg; s++) {
            assert_int_equal(p[i].seg[s].index, want.seg[s].index);
            assert_int_equal(p[i].seg[s].klen, want.seg[s].klen);
            assert_true((p[i].seg[s].key == NULL) == (want.seg[s].key == NULL));
            if (want.seg[s].key) {
                assert_memory_equal(p[i].seg[s].key, want.seg[s].key, want.seg[s].klen);
            }
        }
    }
}

static int is_fixture(const char *name)
{
    size_t n = strlen(name);
    return (n > 5 && !strcmp(name + n - 5, ".json")) || (n > 4 && !strcmp(name + n - 4, ".sse"));
}

static void fixtures_in(fx *f, const char *dir, int *seen)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d) {
        return;
    }
    while ((e = readdir(d)) != NULL) {
        char path[1024];
        FILE *fp;
        char *buf;
        long n;
        if (!is_fixture(e->d_name)) {
            continue;
        }
        snprintf(path, sizeof(path), "%s/%s", dir, e->d_name);
        fp = fopen(path, "rb");
        assert_non_null(fp);
        fseek(fp, 0, SEEK_END);
        n = ftell(fp);
        fseek(fp, 0, SEEK_SET);
        buf = malloc((size_t)n + 1);
        assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
        fclose(fp);
        /* the plain text answer is the byte path's; the tool call is not */
        diff_n(f, buf, (size_t)n, !strcmp(e->d_name, "response_text.json") ? 1
                                  : !strncmp(e->d_name, "response_tool", 13) ? 0 : -1);
        (*seen)++;
        free(buf);
    }
    closedir(d);
}

static void test_fixtures(void **state)
{
    int seen = 0;
    fixtures_in(*state, MN_FIXTURES "/anthropic", &seen);
    fixtures_in(*state, "/work/shared/reference/fixtures/anthropic", &seen);
    assert_true(seen >= 20);
}

#define HEAD "{\"id\":\"msg_1\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-x\","

/* Answers the byte path takes, each at an edge it decides on. */
static const char *const common[] = {
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"hi\"}],\"stop_reason\":\"end_turn\","
         "\"usage\":{\"input_tokens\":3,\"output_tokens\":4}}",
    /* escapes: those Jansson writes as they are, those it writes otherwise */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"a\\nb\\t\\\"q\\\" \\\\ \\b\\f\\r \\/ "
         "caf\\u00e9 \\u00E9 \\u001f \\u001F \\u0008 \\u000A \\u0022 \\u005c \\u002f "
         "\\u007f \\u2028 \\ud83d\\ude00 \\uD83D\\uDE00 \\uffff \xc3\xa9 \xe2\x80\xa8 \x7f "
         "\xf0\x9f\x98\x80\"}],\"stop_reason\":\"max_tokens\"}",
    /* several blocks join; blocks the tree passes over */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"a\\u00e9\"},{\"text\":\"no type\"},"
         "{\"type\":\"text\",\"text\":\"\"},{\"type\":\"text\",\"text\":\"/b\"}],"
         "\"stop_reason\":\"tool_use\"}",
    HEAD "\"content\":[1,null,{\"type\":5},{\"type\":\"text\",\"text\":\"z\"}]}",
    HEAD "\"content\":[\"s\",[],{\"type\":\"text\",\"text\":7},{\"type\":\"text\"}]}",
    /* empty content: null; no text block: null */
    HEAD "\"content\":[],\"stop_reason\":null}",
    HEAD "\"content\":[{\"type\":\"text\",\"text\":null}],\"stop_reason\":5}",
    /* an empty text is a text */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"\"}]}",
    /* no id, no model, no usage, no stop_reason */
    "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"x\"}]}",
    /* usage at the edges: int64, negatives, reals, nulls, -0, strings */
    HEAD "\"content\":[],\"usage\":{\"input_tokens\":9223372036854775807,"
         "\"cache_creation_input_tokens\":9223372036854775807,"
         "\"cache_read_input_tokens\":1,\"output_tokens\":-9223372036854775808}}",
    HEAD "\"content\":[],\"usage\":{\"input_tokens\":1.0,\"cache_creation_input_tokens\":-0,"
         "\"cache_read_input_tokens\":null,\"output_tokens\":\"5\","
         "\"output_tokens_details\":{\"thinking_tokens\":-3}}}",
    HEAD "\"content\":[],\"usage\":{\"output_tokens\":1e2,\"cache_creation_input_tokens\":7,"
         "\"output_tokens_details\":{\"thinking_tokens\":12}}}",
    HEAD "\"content\":[],\"usage\":{\"output_tokens_details\":{\"thinking_tokens\":1E1}}}",
    HEAD "\"content\":[],\"usage\":{\"output_tokens_details\":[1]}}",
    HEAD "\"content\":[],\"usage\":{}}",
    HEAD "\"content\":[],\"usage\":null}",
    HEAD "\"content\":[],\"usage\":[{\"input_tokens\":3}]}",
    HEAD "\"content\":[],\"usage\":\"lots\"}",
    /* duplicates: the last one wins, at every level */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"first\"},{\"type\":\"text\",\"text\":\"x\"}],"
         "\"content\":[{\"type\":\"tool_use\",\"type\":\"text\",\"text\":\"a\",\"text\":\"b\"}],"
         "\"usage\":{\"input_tokens\":5,\"output_tokens\":6},\"usage\":{\"output_tokens\":7},"
         "\"stop_reason\":\"max_tokens\",\"stop_reason\":\"end_turn\",\"id\":\"second\","
         "\"model\":\"m2\",\"usage\":{\"output_tokens\":8,\"output_tokens\":9}}",
    "{\"type\":\"other\",\"type\":\"message\",\"content\":\"x\",\"content\":[]}",
    /* every stop reason, one unknown, one long unknown, odd bytes in one */
    HEAD "\"content\":[],\"stop_reason\":\"stop_sequence\"}",
    HEAD "\"content\":[],\"stop_reason\":\"pause_turn\"}",
    HEAD "\"content\":[],\"stop_reason\":\"refusal\"}",
    HEAD "\"content\":[],\"stop_reason\":\"model_context_window_exceeded\"}",
    HEAD "\"content\":[],\"stop_reason\":\"brand_new\"}",
    HEAD "\"content\":[],\"stop_reason\":\"\"}",
    HEAD "\"content\":[],\"stop_reason\":\"a b\xc3\xa9\"}",
    HEAD "\"content\":[],\"stop_reason\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
         "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
    HEAD "\"content\":[],\"stop_reason\":\"xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx\"}",
    HEAD "\"content\":[],\"stop_reason\":true}",
    /* escaped keys are keys */
    "{\"\\u0074ype\":\"message\",\"con\\u0074ent\":[{\"typ\\u0065\":\"text\",\"\\u0074ext\":\"k\"}],"
    "\"i\\u0064\":\"i\",\"us\\u0061ge\":{\"input_\\u0074okens\":4}}",
    /* odd ids and models: unicode, escapes */
    "{\"id\":\"\\u00e9\\/\\t\",\"model\":\"\xe2\x82\xac\\ud83d\\ude00\",\"type\":\"message\","
    "\"content\":[]}",
    /* the NUL Jansson's lexer loses after a number */
    HEAD "\"content\":[],\"usage\":{\"output_tokens\":5\0}}",
    /* blocks up to the most the path reads */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"1\"},{\"type\":\"text\",\"text\":\"2\"},"
         "{\"type\":\"text\",\"text\":\"3\"},{\"type\":\"text\",\"text\":\"4\"}]}",
    /* members the tree does not read, at the top and in a text block */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"c\",\"citations\":[{\"x\":1}]}],"
         "\"stop_sequence\":null,\"container\":{},\"provider\":\"up\",\"extra\":[1,2,{}]}",
    /* whitespace everywhere */
    " \t\r\n{ \"type\" : \"message\" , \"content\" : [ { \"type\" : \"text\" , \"text\" : \"w\" } ]"
    " , \"usage\" : { \"input_tokens\" : 2 } } \n",
};

/* Answers the tree must read: the byte path leaves them. */
static const char *const uncommon[] = {
    HEAD "\"content\":[{\"type\":\"tool_use\",\"id\":\"t1\",\"name\":\"f\",\"input\":{\"a\":1}}]}",
    HEAD "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\",\"signature\":\"sig\"},"
         "{\"type\":\"text\",\"text\":\"x\"}]}",
    HEAD "\"content\":[{\"type\":\"thinking\",\"thinking\":\"hm\"}]}",
    HEAD "\"content\":[{\"type\":\"redacted_thinking\",\"data\":\"d\"}]}",
    HEAD "\"content\":[{\"type\":\"server_tool_use\",\"id\":\"s\",\"name\":\"web_search\"}]}",
    HEAD "\"content\":[{\"type\":\"web_search_tool_result\",\"content\":[]}]}",
    HEAD "\"content\":[{\"type\":\"future_block\"}]}",
    HEAD "\"content\":[{\"type\":\"t\\u0065xt\",\"text\":\"escaped type\"}]}",
    HEAD "\"content\":[],\"stop_reason\":\"end\\u005fturn\"}",
    HEAD "\"content\":[],\"stop_reason\":\"new\\u005freason\"}",
    "{\"id\":7,\"type\":\"message\",\"content\":[]}",
    "{\"id\":null,\"type\":\"message\",\"content\":[]}",
    "{\"model\":{\"m\":1},\"type\":\"message\",\"content\":[]}",
    "{\"type\":\"mess\\u0061ge\",\"content\":[]}",
    "{\"type\":\"message\",\"content\":{}}",
    "{\"type\":\"message\"}",
    "{\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"busy\"}}",
    "{\"error\":{\"message\":\"key sk-test-key leaked\"}}",
    "[{\"type\":\"message\",\"content\":[]}]",
    "{\"type\":\"message\",\"content\":[]",
    "{\"type\":\"message\",\"content\":[]}x",
    "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\\u0000\"}]}",
    "{\"type\":\"message\",\"content\":[],\"usage\":{\"input_tokens\":9223372036854775808}}",
    "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\\ud800\"}]}",
    "{\"type\":\"message\",\"content\":[{\"type\":\"text\",\"text\":\"\xc0\xaf\"}]}",
    "",
    "null",
    /* one block more than the path reads */
    HEAD "\"content\":[{\"type\":\"text\",\"text\":\"1\"},{\"type\":\"text\",\"text\":\"2\"},"
         "{\"type\":\"text\",\"text\":\"3\"},{\"type\":\"text\",\"text\":\"4\"},1]}",
};

static void test_common_answers(void **state)
{
    size_t i;
    for (i = 0; i < sizeof(common) / sizeof(common[0]); i++) {
        /* the one with a NUL is measured by hand */
        const char *nul = strstr(common[i], "\"output_tokens\":5");
        size_t len = nul && !nul[17] ? (size_t)(nul - common[i]) + 17 + 3 : strlen(common[i]);
        diff_n(*state, common[i], len, 1);
    }
}

/* The same with the names' members kept, as the configuration keeps them:
 * the byte path then copies the kept member instead of making one. */
static void test_common_answers_kept_names(void **state)
{
    fx *f = *state;
    apr_pool_t *conf;
    size_t i;

    apr_pool_create(&conf, f->pool);
    for (i = 0; i < NNAMES; i++) {
        if (names[i]) {
            mn_chunk_member_keep(conf, names[i]);
        }
    }
    assert_non_null(mn_chunk_member_kept(names[0], &(size_t){0}));
    test_common_answers(state);
    apr_pool_destroy(conf);
    assert_null(mn_chunk_member_kept(names[0], &(size_t){0}));
}

static void test_uncommon_answers_take_the_tree(void **state)
{
    size_t i;
    for (i = 0; i < sizeof(uncommon) / sizeof(uncommon[0]); i++) {
        diff(*state, uncommon[i], 0);
    }
}

/* What the byte path writes, spelled out once (the differential tests
 * above only say it is what the tree gives). */
static void test_exact_bytes(void **state)
{
    fx *f = *state;
    const char *body = HEAD "\"content\":[{\"type\":\"text\",\"text\":\"caf\\u00e9 \\/\"},"
                            "{\"type\":\"text\",\"text\":\"!\"}],\"stop_reason\":\"max_tokens\","
                            "\"usage\":{\"input_tokens\":3,\"cache_read_input_tokens\":10,"
                            "\"cache_creation_input_tokens\":2,\"output_tokens\":4}}";
    const char *want = "{\"id\":\"msg_1\",\"object\":\"chat.completion\",\"created\":1767225600,"
                       "\"model\":\"claude-x\",\"choices\":[{\"index\":0,\"message\":{\"role\":"
                       "\"assistant\",\"content\":\"caf\xc3\xa9 /!\",\"refusal\":null},"
                       "\"logprobs\":null,\"finish_reason\":\"length\"}],\"usage\":"
                       "{\"prompt_tokens\":15,\"completion_tokens\":4,\"total_tokens\":19,"
                       "\"prompt_tokens_details\":{\"cached_tokens\":10,"
                       "\"cache_creation_tokens\":2}},\"provider\":\"claude\"}";
    const char *b;
    size_t blen;
    mn_usage u;
    apr_pool_t *conf;

    /* the configuration keeps every provider's member: none is made here */
    apr_pool_create(&conf, f->pool);
    mn_chunk_member_keep(conf, f->ctx.provider_name);
    jallocs = 0;
    assert_int_equal(mn_an_answer_fast(&f->ctx, body, strlen(body), &b, &blen, &u), 1);
    assert_int_equal(jallocs, 0);
    assert_int_equal(blen, strlen(want));
    assert_memory_equal(b, want, blen);
    assert_int_equal(u.have, 1);
    assert_int_equal(u.prompt_tokens, 15);
    assert_int_equal(u.cached_tokens, 10);
    assert_int_equal(u.cache_write_tokens, 2);
    assert_int_equal(u.total_tokens, 19);
    assert_null(f->ctx.unknown_finish);
    body = HEAD "\"content\":[],\"stop_reason\":\"brand_new\"}";
    assert_int_equal(mn_an_answer_fast(&f->ctx, body, strlen(body), &b, &blen, &u), 1);
    assert_string_equal(f->ctx.unknown_finish, "brand_new");
    apr_pool_destroy(conf);
}

/* Every byte of a real answer replaced by each of a few telling bytes, and
 * deleted: whatever the bytes become, both paths agree. */
static void test_mutations(void **state)
{
    static const char repl[] = { '\\', '"', '}', ']', ',', ':', '0', '9', '-', 'e', '.', 'x',
                                 '\0', ' ', '{', '[', 'u', 't', (char)0xC3, (char)0x80 };
    size_t n, i, j;
    char *body = mn_t_fixture("anthropic/response_text.json", &n);
    char *m = malloc(n + 1);

    for (i = 0; i < n; i++) {
        for (j = 0; j < sizeof(repl); j++) {
            memcpy(m, body, n);
            m[i] = repl[j];
            diff_n(*state, m, n, -1);
        }
        memcpy(m, body, i);
        memcpy(m + i, body + i + 1, n - i - 1);
        diff_n(*state, m, n - 1, -1);
    }
    free(m);
    free(body);
}

/* ---------------------------------------------------- generated answers */

static uint64_t rng = 0x9E3779B97F4A7C15ull;

static unsigned pick(unsigned n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (unsigned)(rng % n);
}

#define ONE_OF(a) (a)[pick(sizeof(a) / sizeof((a)[0]))]

static const char *const strings[] = {
    "\"\"", "\"plain\"", "\"caf\\u00e9\"", "\"\\/\\/\"", "\"\\ud83d\\ude00x\"", "\"\\u001f\\u001F\"",
    "\"\\n\\t\\\"\\\\\"", "\"\xc3\xa9\xe2\x80\xa8\"", "\"\\u0022\\u005C\\u002F\\u007F\"",
    "\"\\b\\f\\r\\u000b\"", "\"\\uDBFF\\uDFFF\"", "\"\\u0800\\u07ff\\u0080\\u007f\""
};
static const char *const numbers[] = {
    "0", "-0", "1", "42", "-7", "9223372036854775807", "-9223372036854775808", "1.5", "1e3",
    "-1E-2", "0.0", "null", "\"3\"", "true", "[]", "{}"
};
static const char *const stops[] = {
    "\"end_turn\"", "\"max_tokens\"", "\"tool_use\"", "\"refusal\"", "\"pause_turn\"",
    "\"stop_sequence\"", "\"model_context_window_exceeded\"", "\"novel\"", "null", "\"\"", "3",
    "\"end\\u005fturn\"", "\"we\xc3\xafrd\""
};

static void gen_block(mn_buf *b)
{
    char t[256];
    switch (pick(10)) {
    case 0:
        snprintf(t, sizeof(t), "%s", "{\"type\":\"tool_use\",\"id\":\"t\",\"name\":\"f\",\"input\":{}}");
        break;
    case 1:
        snprintf(t, sizeof(t), "%s", "{\"type\":\"thinking\",\"thinking\":\"h\",\"signature\":\"s\"}");
        break;
    case 2:
        snprintf(t, sizeof(t), "%s", "{\"text\":\"untyped\"}");
        break;
    case 3:
        snprintf(t, sizeof(t), "%s", pick(2) ? "7" : "{\"type\":null,\"text\":\"x\"}");
        break;
    default:
        snprintf(t, sizeof(t), "{%s\"type\":\"text\",\"text\":%s%s}",
                 pick(4) ? "" : "\"citations\":null,", ONE_OF(strings),
                 pick(6) ? "" : ",\"text\":\"dup\"");
    }
    mn_buf_append(b, t, strlen(t));
}

static void gen_member(mn_buf *b, unsigned which)
{
    char t[512];
    unsigned i, n;
    switch (which) {
    case 0:
        snprintf(t, sizeof(t), "%s", pick(20) ? "\"type\":\"message\"" : "\"type\":\"msg\"");
        break;
    case 1:
        snprintf(t, sizeof(t), "\"id\":%s", pick(10) ? ONE_OF(strings) : ONE_OF(numbers));
        break;
    case 2:
        snprintf(t, sizeof(t), "\"model\":%s", pick(10) ? ONE_OF(strings) : ONE_OF(numbers));
        break;
    case 3:
        mn_buf_append(b, "\"content\":[", 11);
        for (i = 0, n = pick(5); i < n; i++) {
            if (i) {
                mn_buf_append(b, ",", 1);
            }
            gen_block(b);
        }
        mn_buf_append(b, "]", 1);
        return;
    case 4:
        snprintf(t, sizeof(t), "\"stop_reason\":%s", ONE_OF(stops));
        break;
    case 5:
        snprintf(t, sizeof(t), "\"usage\":{\"input_tokens\":%s,\"output_tokens\":%s,"
                 "\"cache_read_input_tokens\":%s,\"cache_creation_input_tokens\":%s%s%s%s}",
                 ONE_OF(numbers), ONE_OF(numbers), ONE_OF(numbers), ONE_OF(numbers),
                 pick(3) ? "" : ",\"output_tokens_details\":{\"thinking_tokens\":",
                 "", "");
        if (strstr(t, "output_tokens_details")) {
            size_t l = strlen(t) - 1;
            snprintf(t + l, sizeof(t) - l, "%s}}", ONE_OF(numbers));
        }
        break;
    default:
        snprintf(t, sizeof(t), "\"other%u\":%s", which, ONE_OF(strings));
    }
    mn_buf_append(b, t, strlen(t));
}

static void test_generated(void **state)
{
    int k, fast = 0, runs = mn_t_quick() ? 300 : 3000;
    for (k = 0; k < runs; k++) {
        mn_buf b;
        unsigned i, n = 4 + pick(6);
        mn_buf_init(&b);
        mn_buf_append(&b, "{", 1);
        for (i = 0; i < n; i++) {
            if (i) {
                mn_buf_append(&b, ",", 1);
            }
            /* the first four usually the type and content, then anything:
             * duplicates come from picking a member twice */
            gen_member(&b, i == 0 ? 0 : i == 1 ? 3 : pick(8));
        }
        mn_buf_append(&b, "}", 1);
        fast += diff_n(*state, b.data, b.len, -1);
        mn_buf_free(&b);
    }
    /* the generator must reach the byte path often, or it tests little */
    assert_true(fast > runs / 5);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_paths_compile_to_the_same),
        cmocka_unit_test_setup_teardown(test_fixtures, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_answers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_common_answers_kept_names, setup, teardown),
        cmocka_unit_test_setup_teardown(test_uncommon_answers_take_the_tree, setup, teardown),
        cmocka_unit_test_setup_teardown(test_exact_bytes, setup, teardown),
        cmocka_unit_test_setup_teardown(test_mutations, setup, teardown),
        cmocka_unit_test_setup_teardown(test_generated, setup, teardown),
    };
    int rc;
    json_set_alloc_funcs(counting_malloc, free);
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
