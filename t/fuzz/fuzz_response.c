/* Non-streaming answer decoder of one wire format (FZ_FORMAT), and its byte
 * fast path when it has one.  Input: byte 0 flags (bit 1
 * reasoning_content), then the upstream's 2xx body. */
#include "fuzz.h"
#include "mn_anthropic.h"

static void check_error(mn_error *err, const mn_provider *prov)
{
    json_t *j;
    fz_scrub_like_glue(err, prov);
    j = mn_error_to_json(err, FZ_PROVIDER);
    fz_check_error_json(j, 1);
    json_decref(j);
}

static void check_answer(const char *s, size_t len, const mn_usage *u)
{
    json_error_t jerr;
    json_t *j;
    if (memchr(s, '\0', len)) {
        FZ_FAIL_KNOWN("nul", "NUL byte in the answer");
    }
    j = json_loadb(s, len, 0, &jerr);
    if (!json_is_object(j)) {
        if (fz_skip("answer-json")) {
            return;
        }
        FZ_FAIL("answer is not a JSON object (%s): %.*s", jerr.text, (int)len, s);
    }
    fz_check_provider(j);
    fz_check_usage_json(json_object_get(j, "usage"));
    fz_check_usage(u);
    json_decref(j);
}

/* What one decoder gave the client. */
typedef struct {
    int rc;
    mn_usage u;
    mn_error err;
    const char *unknown;     /* ctx->unknown_finish */
    size_t at, len;          /* its bytes (answer or error message) in the joined output */
} fz_outcome;

static int same_usage(const mn_usage *a, const mn_usage *b)
{
    return a->have == b->have && a->prompt_tokens == b->prompt_tokens
           && a->completion_tokens == b->completion_tokens && a->total_tokens == b->total_tokens
           && a->cached_tokens == b->cached_tokens && a->cache_write_tokens == b->cache_write_tokens
           && a->reasoning_tokens == b->reasoning_tokens;
}

/* The Anthropic byte path (mn_an_decode_response_bytes, mn_an_answer_fast)
 * must give the client what chat_json gives of the tree: the same bytes,
 * usage, unknown stop reason and error, byte for byte. */
static void check_same(const fz_outcome *t, const fz_outcome *b, const mn_buf *all,
                       const char *what)
{
    if (t->rc != b->rc || t->len != b->len
        || memcmp(all->data + t->at, all->data + b->at, t->len)) {
        FZ_FAIL("%s differs from the tree path: rc %d/%d\ntree:  %.*s\nbytes: %.*s", what,
                t->rc, b->rc, (int)t->len, all->data + t->at, (int)b->len, all->data + b->at);
    }
    if (!same_usage(&t->u, &b->u)) {
        FZ_FAIL("%s: usage differs from the tree path", what);
    }
    if (t->err.status != b->err.status || strcmp(t->err.type, b->err.type)
        || strcmp(t->err.code, b->err.code) || strcmp(t->err.param, b->err.param)) {
        FZ_FAIL("%s: error differs from the tree path", what);
    }
    if ((t->unknown == NULL) != (b->unknown == NULL)
        || (t->unknown && strcmp(t->unknown, b->unknown))) {
        FZ_FAIL("%s: unknown stop reason differs from the tree path", what);
    }
}

/* One run with the given key: the client bytes of both decoders, joined. */
static char *run(const uint8_t *data, size_t size, const char *key, size_t *out_len)
{
    fz_env e;
    const mn_wire *w = mn_wire_for(FZ_FORMAT);
    const char *body = (const char *)data + 1;
    size_t len = size - 1;
    mn_buf all;
    json_t *out = NULL;
    fz_outcome tree, byt;

    fz_env_init(&e, FZ_FORMAT, key, data[0] & 2);
    mn_buf_init(&all);
    mn_buf_append(&all, "", 0);
    memset(&tree, 0, sizeof(tree));
    mn_error_clear(&tree.err);
    tree.rc = w->decode_response(&e.ctx, body, len, &out, &tree.u, &tree.err);
    tree.unknown = e.ctx.unknown_finish;
    if (tree.rc == 0) {
        char *s = json_dumps(out, JSON_COMPACT);
        if (!s) {
            FZ_FAIL("decoded answer cannot be serialised");
        }
        check_answer(s, strlen(s), &tree.u);
        tree.len = strlen(s);
        mn_buf_append(&all, s, tree.len);
        free(s);
        json_decref(out);
    }
    else {
        check_error(&tree.err, &e.prov);
        tree.len = strlen(tree.err.message);
        mn_buf_append(&all, tree.err.message, tree.len);
    }
    if (w->decode_response_bytes) {
        const char *bytes;
        size_t blen;
        memset(&byt, 0, sizeof(byt));
        mn_error_clear(&byt.err);
        e.ctx.unknown_finish = NULL;
        byt.at = all.len;
        byt.rc = w->decode_response_bytes(&e.ctx, body, len, &bytes, &blen, &byt.u, &byt.err);
        byt.unknown = e.ctx.unknown_finish;
        if (byt.rc == 0) {
            check_answer(bytes, blen, &byt.u);
            byt.len = blen;
            mn_buf_append(&all, bytes, blen);
        }
        else {
            check_error(&byt.err, &e.prov);
            byt.len = strlen(byt.err.message);
            mn_buf_append(&all, byt.err.message, byt.len);
        }
        if (FZ_FORMAT == MN_FORMAT_ANTHROPIC) {
            check_same(&tree, &byt, &all, "decode_response_bytes");
        }
    }
    if (FZ_FORMAT == MN_FORMAT_ANTHROPIC) {
        const char *bytes;
        size_t blen;
        size_t keep = all.len;
        memset(&byt, 0, sizeof(byt));
        mn_error_clear(&byt.err);
        e.ctx.unknown_finish = NULL;
        if (mn_an_answer_fast(&e.ctx, body, len, &bytes, &blen, &byt.u)) {
            byt.unknown = e.ctx.unknown_finish;
            byt.at = all.len;
            byt.len = blen;
            mn_buf_append(&all, bytes, blen);
            check_same(&tree, &byt, &all, "mn_an_answer_fast");
            all.len = keep;   /* the same bytes once more: no news for the key check */
        }
    }
    fz_env_free(&e);
    *out_len = all.len;
    if (!all.data) {
        all.data = calloc(1, 1);
    }
    return all.data;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    size_t len;
    char *out;
    if (size < 1) {
        return 0;
    }
    out = run(data, size, FZ_KEY, &len);
    fz_check_key_traced(data, size, out, len, run);
    return 0;
}
