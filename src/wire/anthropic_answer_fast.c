/* Anthropic wire, answers on the byte path: a common non-streaming Messages
 * answer (text blocks, a stop reason, usage) read by mn_jscan in one pass
 * and written as the client's chat.completion by mn_chunk_completion,
 * without a Jansson tree for either.  Every answer the path does not take
 * (tool_use, thinking, any other block type, odd members, invalid JSON,
 * a 200 that is no message) goes to mn_an_decode_response, whose tree is
 * dumped as chat_json would: the client gets the same bytes either way
 * (t/unit/test_anthropic_fast.c, the fuzz_anthropic_response target). */
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_anthropic.h"
#include "mn_chunk.h"
#include "mn_jscan.h"

/* What is read, in one pass: the members the tree path reads at the top,
 * the usage counts mn_an_usage_merge reads, how many blocks there are, and
 * each block's type and text.  An answer with more blocks takes the tree:
 * each block's paths cost the scan some 500 instructions, present or not,
 * and a plain answer has one block (text split into several comes with
 * citations or server tools, which take the tree anyway). */
enum { P_TYPE, P_ID, P_MODEL, P_CONTENT, P_STOP, P_USAGE, P_IN, P_CACHE_W, P_CACHE_R, P_OUT,
       P_THINK, P_BLOCKS, P_FIXED };
#define MAX_BLOCKS 4
#define NPATHS (P_FIXED + 2 * MAX_BLOCKS)

/* Constant: nothing is compiled per answer and no thread writes them. */
#define BLOCK(n) MN_JPATH(MN_JK("content"), MN_JI(n), MN_JK("type")), \
                 MN_JPATH(MN_JK("content"), MN_JI(n), MN_JK("text"))

static const mn_jpath paths[NPATHS] = {
    MN_JPATH(MN_JK("type")),
    MN_JPATH(MN_JK("id")),
    MN_JPATH(MN_JK("model")),
    MN_JPATH(MN_JK("content")),
    MN_JPATH(MN_JK("stop_reason")),
    MN_JPATH(MN_JK("usage")),
    MN_JPATH(MN_JK("usage"), MN_JK("input_tokens")),
    MN_JPATH(MN_JK("usage"), MN_JK("cache_creation_input_tokens")),
    MN_JPATH(MN_JK("usage"), MN_JK("cache_read_input_tokens")),
    MN_JPATH(MN_JK("usage"), MN_JK("output_tokens")),
    MN_JPATH(MN_JK("usage"), MN_JK("output_tokens_details"), MN_JK("thinking_tokens")),
    MN_JPATH(MN_JK("content"), MN_JEACH),
    BLOCK(0), BLOCK(1), BLOCK(2), BLOCK(3),
};

const mn_jpath *mn_an_answer_paths(unsigned *n)
{
    *n = NPATHS;
    return paths;
}

/* Is the span exactly these bytes (a JSON string's with its quotes)? */
static int span_is(const mn_jspan *sp, const char *s, size_t n)
{
    return sp->len == n && !memcmp(sp->p, s, n);
}
#define SPAN_IS(sp, lit) span_is(sp, lit, sizeof(lit) - 1)

/* An integer (what json_is_integer says of the value Jansson made of it). */
static int span_integer(const mn_jspan *sp)
{
    return sp->type == MN_JT_NUMBER && !memchr(sp->p, '.', sp->len)
           && !memchr(sp->p, 'e', sp->len) && !memchr(sp->p, 'E', sp->len);
}

/* mn_usage_count of the value: an integer above 0 (mn_jscan checked that it
 * fits int64), saturated at LONG_MAX; anything else is 0. */
static long span_count(const mn_jspan *sp)
{
    long n = 0;
    size_t i;

    if (!span_integer(sp) || sp->p[0] == '-') {
        return 0;
    }
    for (i = 0; i < sp->len; i++) {
        int d = sp->p[i] - '0';
        if (n > (LONG_MAX - d) / 10) {
            return LONG_MAX;
        }
        n = n * 10 + d;
    }
    return n;
}

/* mn_an_usage_merge of the usage spans into u (zeroed). */
static void read_usage(const mn_jspan *sp, a_usage *u)
{
    if (sp[P_USAGE].type != MN_JT_OBJECT) {
        return;
    }
    u->have = 1;
    u->in = span_count(&sp[P_IN]);
    u->cache_creation = span_count(&sp[P_CACHE_W]);
    u->cache_read = span_count(&sp[P_CACHE_R]);
    u->out = span_count(&sp[P_OUT]);
    if (span_integer(&sp[P_THINK])) {
        u->thinking = span_count(&sp[P_THINK]);
        u->have_thinking = 1;
    }
}

/* The finish reason of the stop_reason span: its text when a string (with
 * no escape: the caller made sure), as mn_an_finish_reason reads it. */
static const char *finish_of(mn_wire_ctx *ctx, const mn_jspan *sp)
{
    char buf[64];
    const char *s = NULL;

    if (sp->type == MN_JT_STRING) {
        size_t n = sp->len - 2;
        s = n < sizeof(buf) ? memcpy(buf, sp->p + 1, n)
                            : apr_pstrmemdup(ctx->pool, sp->p + 1, n);
        if (n < sizeof(buf)) {
            buf[n] = '\0';
        }
    }
    return mn_an_finish_reason_str(ctx, s);
}

/* id and model are copied when they are strings, left out when absent (as
 * json_object_set of NULL does); another type takes the tree. */
static int member_ok(const mn_jspan *sp)
{
    return sp->type == MN_JT_STRING || sp->type == MN_JT_NONE;
}

/* The texts of the blocks into c; 0 when a block is one the tree must read. */
static int read_blocks(const mn_jspan *sp, mn_completion *c, const char **texts, size_t *lens)
{
    unsigned i;

    c->ntexts = -1;
    for (i = 0; i < sp[P_BLOCKS].count; i++) {
        const mn_jspan *type = &sp[P_FIXED + 2 * i], *text = type + 1;
        if (type->type != MN_JT_STRING) {
            continue;   /* no type (or not an object): the tree passes it over too */
        }
        if (!SPAN_IS(type, "\"text\"")) {
            return 0;
        }
        if (text->type == MN_JT_STRING) {
            c->ntexts = c->ntexts < 0 ? 1 : c->ntexts + 1;
            texts[c->ntexts - 1] = text->p;
            lens[c->ntexts - 1] = text->len;
        }
    }
    return 1;
}

/* A sink into one buffer of a known bound. */
typedef struct {
    char *p;
    size_t len, cap;
    int over;
} fixed_buf;

static void fixed_write(void *baton, const char *data, size_t len)
{
    fixed_buf *f = baton;
    if (len > f->cap - f->len) {
        f->over = 1;
        return;
    }
    memcpy(f->p + f->len, data, len);
    f->len += len;
}

static void fixed_frame_end(void *baton)
{
    (void)baton;
}

int mn_an_answer_fast(mn_wire_ctx *ctx, const char *body, size_t len, const char **out,
                      size_t *out_len, mn_usage *usage)
{
    mn_jspan sp[NPATHS];
    const char *texts[MAX_BLOCKS];
    size_t lens[MAX_BLOCKS];
    mn_completion c;
    a_usage u;
    mn_usage m;
    fixed_buf fb;
    mn_sink sink = { fixed_write, fixed_frame_end, &fb };

    if (mn_jscan(body, len, paths, NPATHS, sp) || !SPAN_IS(&sp[P_TYPE], "\"message\"")
        || sp[P_CONTENT].type != MN_JT_ARRAY || sp[P_BLOCKS].count > MAX_BLOCKS
        || !member_ok(&sp[P_ID]) || !member_ok(&sp[P_MODEL])
        || (sp[P_STOP].type == MN_JT_STRING && memchr(sp[P_STOP].p, '\\', sp[P_STOP].len))) {
        return 0;
    }
    memset(&c, 0, sizeof(c));
    if (!read_blocks(sp, &c, texts, lens)) {
        return 0;
    }
    memset(&u, 0, sizeof(u));
    memset(&m, 0, sizeof(m));
    read_usage(sp, &u);
    mn_an_usage_to_mn(&u, &m);
    c.texts = texts;
    c.text_lens = lens;
    c.id = sp[P_ID].type == MN_JT_STRING ? sp[P_ID].p : NULL;
    c.id_len = c.id ? sp[P_ID].len : 0;
    c.model = sp[P_MODEL].type == MN_JT_STRING ? sp[P_MODEL].p : NULL;
    c.model_len = c.model ? sp[P_MODEL].len : 0;
    c.created = ctx->created;
    c.usage = &m;
    c.have_reasoning = u.have_thinking;
    c.provider_name = ctx->provider_name;
    fb.cap = mn_chunk_completion_bound(&c);
    fb.p = apr_palloc(ctx->pool, fb.cap);
    fb.len = 0;
    fb.over = 0;
    c.finish = finish_of(ctx, &sp[P_STOP]);
    mn_chunk_completion(&c, &sink);
    if (fb.over) {
        return 0;   /* the bound is wrong: never, but the tree is always right */
    }
    *usage = m;
    *out = fb.p;
    *out_len = fb.len;
    return 1;
}

int mn_an_decode_response_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                                const char **out, size_t *out_len, mn_usage *usage,
                                mn_error *err)
{
    json_t *tree;

    if (mn_an_answer_fast(ctx, body, len, out, out_len, usage)) {
        return 0;
    }
    if (mn_an_decode_response(ctx, body, len, &tree, usage, err)) {
        return -1;
    }
    /* compact, as chat_json dumps a tree */
    return mn_wire_answer_dump(ctx, tree, out, out_len, err);
}
