/* mn_chunk: OpenAI chat.completion.chunk frames (see include/mn_chunk.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_chunk.h"
#include "mn_sse.h"
#include "mn_wire.h"

#define LIT(out, s) (out)->write((out)->baton, s, sizeof(s) - 1)
/* what the head bytes go on with for a content delta */
#define CONTENT_OPEN "[{\"index\":0,\"delta\":{\"content\":"

void mn_chunk_tag(json_t *obj, const char *name)
{
    if (name) {
        json_object_set_new(obj, "provider", json_string(name));
    }
}

char *mn_chunk_member(const char *name, size_t *len)
{
    json_t *o = json_object();
    char *s, *m;
    size_t n;

    mn_chunk_tag(o, name);
    s = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    /* {"provider":…} without its braces; {} when there is none */
    n = s ? strlen(s) : 0;
    n = n >= 2 ? n - 2 : 0;
    m = malloc(n + 1);
    if (m) {
        memcpy(m, s ? s + 1 : "", n);
        m[n] = '\0';
    }
    free(s);
    *len = m ? n : 0;
    return m;
}

/* Members made once per provider while the configuration is read, found by
 * the address of the name they were made for (a provider's name is one
 * string for the life of its configuration): a request copies them instead
 * of building and dumping a tree.  Written by one thread before any request,
 * only read after. */
typedef struct kept_member {
    const char *name;
    const char *member;
    size_t len;
    struct kept_member *next;
} kept_member;
static kept_member *kept;

static apr_status_t forget_kept(void *data)
{
    (void)data;
    kept = NULL;
    return APR_SUCCESS;
}

void mn_chunk_member_keep(apr_pool_t *p, const char *name)
{
    size_t len;
    char *m = mn_chunk_member(name, &len);
    kept_member *k;

    if (!m) {
        return;
    }
    k = apr_palloc(p, sizeof(*k));
    k->name = name;
    k->member = apr_pstrmemdup(p, m, len);
    k->len = len;
    free(m);
    /* a restart clears the pool before it reads the configuration again */
    apr_pool_cleanup_register(p, NULL, forget_kept, apr_pool_cleanup_null);
    k->next = kept;
    kept = k;
}

const char *mn_chunk_member_kept(const char *name, size_t *len)
{
    const kept_member *k;
    for (k = kept; k; k = k->next) {
        if (k->name == name) {
            *len = k->len;
            return k->member;
        }
    }
    return NULL;
}

const char *mn_chunk_member_for(const char *name, size_t *len, char **made)
{
    const char *m = mn_chunk_member_kept(name, len);

    *made = NULL;
    if (m) {
        return m;
    }
    *made = mn_chunk_member(name, len);
    return *made;
}

int mn_chunk_init(mn_chunk *c, const char *provider_name, int include_usage)
{
    memset(c, 0, sizeof(*c));
    c->include_usage = include_usage;
    c->provider = mn_chunk_member_for(provider_name, &c->provider_len, &c->provider_made);
    return c->provider ? 0 : -1;
}

static char *dump_string(const char *s, json_t *j)
{
    json_t *own = j ? json_incref(j) : json_string(s);
    char *d = own ? json_dumps(own, JSON_ENCODE_ANY) : NULL;
    json_decref(own);
    return d;
}

int mn_chunk_head(mn_chunk *c, const char *id, json_t *id_json, const char *model,
                  json_t *model_json, long created)
{
    char *i = dump_string(id, id_json), *m = dump_string(model, model_json);
    size_t cap;
    int n = -1, t = -1;

    mn_chunk_free_head(c);
    if (i && m) {
        cap = strlen(i) + strlen(m) + 160;
        c->head = malloc(cap);
        n = c->head ? snprintf(c->head, cap,
                               "data: {\"id\":%s,\"object\":\"chat.completion.chunk\","
                               "\"created\":%" JSON_INTEGER_FORMAT ",\"model\":%s,\"choices\":"
                               "[{\"index\":0,\"delta\":{\"content\":",
                               i, (json_int_t)created, m) : -1;
        cap = c->provider_len + 80;
        c->tail = n >= 0 ? malloc(cap) : NULL;
        t = c->tail ? snprintf(c->tail, cap, "},\"logprobs\":null,\"finish_reason\":null}]%s%s%s}\n\n",
                               c->include_usage ? ",\"usage\":null" : "",
                               c->provider_len ? "," : "", c->provider) : -1;
    }
    free(i);
    free(m);
    if (n < 0 || t < 0) {
        mn_chunk_free_head(c);
        return -1;
    }
    c->content_len = (size_t)n;
    c->head_len = c->content_len - sizeof(CONTENT_OPEN) + 1;
    c->tail_len = (size_t)t;
    return 0;
}

int mn_chunk_ready(const mn_chunk *c)
{
    return c->head != NULL;
}

void mn_chunk_free_head(mn_chunk *c)
{
    free(c->head);
    free(c->tail);
    c->head = c->tail = NULL;
    c->head_len = c->content_len = c->tail_len = 0;
}

void mn_chunk_free(mn_chunk *c)
{
    mn_chunk_free_head(c);
    free(c->provider_made);
    c->provider = c->provider_made = NULL;
}

/* The end of every frame: the provider member, the closing brace, the SSE
 * blank line. */
static void close_frame(const mn_chunk *c, mn_sink *out)
{
    if (c->provider_len) {
        LIT(out, ",");
        out->write(out->baton, c->provider, c->provider_len);
    }
    LIT(out, "}\n\n");
    out->frame_end(out->baton);
}

static void open_choice(const mn_chunk *c, mn_sink *out)
{
    out->write(out->baton, c->head, c->head_len);
    LIT(out, "[{\"index\":0,\"delta\":");
}

static int dump_cb(const char *buffer, size_t size, void *data)
{
    mn_sink *out = data;
    out->write(out->baton, buffer, size);
    return 0;
}

static void write_any(json_t *v, mn_sink *out)
{
    json_dump_callback(v, dump_cb, out, JSON_COMPACT | JSON_ENCODE_ANY);
}

static void close_choice(const mn_chunk *c, const char *finish, mn_sink *out)
{
    LIT(out, ",\"logprobs\":null,\"finish_reason\":");
    if (finish) {
        json_t *f = json_string(finish);
        write_any(f, out);
        json_decref(f);
    }
    else {
        LIT(out, "null");
    }
    LIT(out, "}]");
    if (c->include_usage) {
        LIT(out, ",\"usage\":null");
    }
    close_frame(c, out);
}

void mn_chunk_delta(const mn_chunk *c, json_t *delta, const char *finish, mn_sink *out)
{
    if (!c->head || !delta) {
        return;
    }
    open_choice(c, out);
    mn_json_write(out, delta);
    close_choice(c, finish, out);
}

void mn_chunk_role(const mn_chunk *c, mn_sink *out)
{
    if (!c->head) {
        return;
    }
    open_choice(c, out);
    LIT(out, "{\"role\":\"assistant\",\"content\":\"\"}");
    close_choice(c, NULL, out);
}

static void open_member(const mn_chunk *c, const char *member, mn_sink *out)
{
    open_choice(c, out);
    LIT(out, "{\"");
    out->write(out->baton, member, strlen(member));
    LIT(out, "\":");
}

void mn_chunk_text_raw(const mn_chunk *c, const char *member, const char *json_string,
                       size_t len, mn_sink *out)
{
    if (!c->head) {
        return;
    }
    if (!strcmp(member, "content")) {
        /* the hot path: three copies */
        out->write(out->baton, c->head, c->content_len);
        out->write(out->baton, json_string, len);
        out->write(out->baton, c->tail, c->tail_len);
        out->frame_end(out->baton);
        return;
    }
    open_member(c, member, out);
    out->write(out->baton, json_string, len);
    LIT(out, "}");
    close_choice(c, NULL, out);
}

void mn_chunk_text(const mn_chunk *c, const char *member, json_t *text, mn_sink *out)
{
    if (!c->head || !text) {
        return;
    }
    open_member(c, member, out);
    write_any(text, out);
    LIT(out, "}");
    close_choice(c, NULL, out);
}

void mn_chunk_tool_args(const mn_chunk *c, long index, json_t *args, mn_sink *out)
{
    char num[32];
    int n;

    if (!c->head || !args) {
        return;
    }
    n = snprintf(num, sizeof(num), "%ld", index);
    open_choice(c, out);
    LIT(out, "{\"tool_calls\":[{\"index\":");
    out->write(out->baton, num, (size_t)n);
    LIT(out, ",\"function\":{\"arguments\":");
    write_any(args, out);
    LIT(out, "}}]}");
    close_choice(c, NULL, out);
}

void mn_chunk_finish(const mn_chunk *c, const char *reason, mn_sink *out)
{
    if (!c->head) {
        return;
    }
    open_choice(c, out);
    LIT(out, "{}");
    close_choice(c, reason, out);
}

void mn_chunk_usage(const mn_chunk *c, json_t *usage, mn_sink *out)
{
    if (!c->head || !usage) {
        return;
    }
    out->write(out->baton, c->head, c->head_len);
    LIT(out, "[],\"usage\":");
    mn_json_write(out, usage);
    close_frame(c, out);
}

void mn_chunk_tree(json_t *obj, const char *provider_name, mn_sink *out)
{
    mn_chunk_tag(obj, provider_name);
    mn_sse_write_json(out, obj);
}

/* The frame in one write when it fits a small buffer: each write is a
 * bucket append down the sink chain, a chunk's pieces are six of them. */
static int wrap_one_write(const mn_chunk *c, int comma, const char *a, size_t alen,
                          const char *b, size_t blen, mn_sink *out)
{
    char buf[1024];
    size_t n = 0;

    if (c->provider_len + alen + blen + 10 > sizeof(buf)) {
        return 0;
    }
    memcpy(buf, "data: {", 7);
    n = 7;
    memcpy(buf + n, c->provider, c->provider_len);
    n += c->provider_len;
    if (comma) {
        buf[n++] = ',';
    }
    memcpy(buf + n, a, alen);
    n += alen;
    if (blen) {
        memcpy(buf + n, b, blen);
        n += blen;
    }
    buf[n++] = '\n';
    buf[n++] = '\n';
    out->write(out->baton, buf, n);
    out->frame_end(out->baton);
    return 1;
}

void mn_chunk_wrap(const mn_chunk *c, int comma, const char *a, size_t alen, const char *b,
                   size_t blen, mn_sink *out)
{
    if (wrap_one_write(c, comma, a, alen, b, blen, out)) {
        return;
    }
    LIT(out, "data: {");
    out->write(out->baton, c->provider, c->provider_len);
    if (comma) {
        LIT(out, ",");
    }
    out->write(out->baton, a, alen);
    if (blen) {
        out->write(out->baton, b, blen);
    }
    LIT(out, "\n\n");
    out->frame_end(out->baton);
}

void mn_chunk_error_end(const mn_error *e, const char *provider_name, mn_sink *out)
{
    /* error objects get their "provider" where every error answer does */
    mn_error_write_frame(e, provider_name, out);
    mn_sse_write_done(out);
}

/* ---------------------------------------------------- chat.completion answers */

/* The code point of the `\u` escape at p (valid: the caller's text passed
 * mn_jscan), a surrogate pair joined; *n: the escape's length. */
static unsigned long u_escape(const char *p, size_t *n)
{
    unsigned long v = strtoul((char[5]){ p[2], p[3], p[4], p[5], '\0' }, NULL, 16), lo;
    *n = 6;
    if (v >= 0xD800 && v <= 0xDBFF) {
        lo = strtoul((char[5]){ p[8], p[9], p[10], p[11], '\0' }, NULL, 16);
        v = 0x10000 + ((v - 0xD800) << 10) + (lo - 0xDC00);
        *n = 12;
    }
    return v;
}

/* Code point v as Jansson's dump writes it (no JSON_ENSURE_ASCII, no
 * JSON_ESCAPE_SLASH): the two that must be escaped, the short escapes,
 * \u00XX for the other control bytes, UTF-8 for the rest. */
static void put_code_point(unsigned long v, mn_sink *out)
{
    static const char shorts[] = "\b\f\n\r\t", short_out[] = "bfnrt";
    char b[8];
    const char *s;

    if (v == '"' || v == '\\') {
        b[0] = '\\';
        b[1] = (char)v;
        out->write(out->baton, b, 2);
    }
    else if (v < 0x20 && (s = memchr(shorts, (int)v, sizeof(shorts) - 1)) != NULL) {
        b[0] = '\\';
        b[1] = short_out[s - shorts];
        out->write(out->baton, b, 2);
    }
    else if (v < 0x20) {
        snprintf(b, sizeof(b), "\\u%04X", (unsigned)v);
        out->write(out->baton, b, 6);
    }
    else if (v < 0x80) {
        b[0] = (char)v;
        out->write(out->baton, b, 1);
    }
    else if (v < 0x800) {
        b[0] = (char)(0xC0 | (v >> 6));
        b[1] = (char)(0x80 | (v & 0x3F));
        out->write(out->baton, b, 2);
    }
    else if (v < 0x10000) {
        b[0] = (char)(0xE0 | (v >> 12));
        b[1] = (char)(0x80 | ((v >> 6) & 0x3F));
        b[2] = (char)(0x80 | (v & 0x3F));
        out->write(out->baton, b, 3);
    }
    else {
        b[0] = (char)(0xF0 | (v >> 18));
        b[1] = (char)(0x80 | ((v >> 12) & 0x3F));
        b[2] = (char)(0x80 | ((v >> 6) & 0x3F));
        b[3] = (char)(0x80 | (v & 0x3F));
        out->write(out->baton, b, 4);
    }
}

/* The inside of a valid JSON string as Jansson writes the text it stands
 * for: an upstream's `\/` and `\u` escapes are the only ones Jansson would
 * write otherwise (raw UTF-8 and the characters themselves); the rest, and
 * every byte between escapes, is already what it writes. */
static void write_canonical(const char *p, size_t n, mn_sink *out)
{
    const char *e = p + n, *run = p, *bs;

    while ((bs = memchr(p, '\\', (size_t)(e - p))) != NULL) {
        size_t len = 2;
        if (bs[1] != 'u' && bs[1] != '/') {
            p = bs + 2;
            continue;
        }
        out->write(out->baton, run, (size_t)(bs - run));
        put_code_point(bs[1] == '/' ? '/' : u_escape(bs, &len), out);
        p = run = bs + len;
    }
    out->write(out->baton, run, (size_t)(e - run));
}

void mn_chunk_json_string(const char *const *spans, const size_t *lens, int n, mn_sink *out)
{
    int i;
    LIT(out, "\"");
    for (i = 0; i < n; i++) {
        write_canonical(spans[i] + 1, lens[i] - 2, out);
    }
    LIT(out, "\"");
}

static void write_int(json_int_t v, mn_sink *out)
{
    char b[24], *p = b + sizeof(b);
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--p = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) {
        *--p = '-';
    }
    out->write(out->baton, p, (size_t)(b + sizeof(b) - p));
}

static void write_provider(const char *name, mn_sink *out)
{
    char *made;
    size_t n;
    const char *m;

    if (!name) {
        return;
    }
    m = mn_chunk_member_for(name, &n, &made);
    if (m && n) {
        LIT(out, ",");
        out->write(out->baton, m, n);
    }
    free(made);
}

/* What mn_usage_to_openai_details gives, in its member order. */
static void write_usage(const mn_usage *u, int have_reasoning, mn_sink *out)
{
    LIT(out, "{\"prompt_tokens\":");
    write_int(u->prompt_tokens, out);
    LIT(out, ",\"completion_tokens\":");
    write_int(u->completion_tokens, out);
    LIT(out, ",\"total_tokens\":");
    write_int(u->total_tokens, out);
    LIT(out, ",\"prompt_tokens_details\":{\"cached_tokens\":");
    write_int(u->cached_tokens, out);
    if (u->cache_write_tokens > 0) {
        LIT(out, ",\"cache_creation_tokens\":");
        write_int(u->cache_write_tokens, out);
    }
    LIT(out, "}");
    if (have_reasoning) {
        LIT(out, ",\"completion_tokens_details\":{\"reasoning_tokens\":");
        write_int(u->reasoning_tokens, out);
        LIT(out, "}");
    }
    LIT(out, "}");
}

size_t mn_chunk_completion_bound(const mn_completion *c)
{
    size_t n = 640 + c->id_len + c->model_len;
    int i;
    for (i = 0; i < c->ntexts; i++) {
        n += c->text_lens[i];
    }
    /* a name that is not plain may take six bytes a byte (\u00XX) */
    return n + (c->provider_name ? 6 * strlen(c->provider_name) : 0);
}

void mn_chunk_completion(const mn_completion *c, mn_sink *out)
{
    LIT(out, "{");
    if (c->id) {
        LIT(out, "\"id\":");
        mn_chunk_json_string(&c->id, &c->id_len, 1, out);
        LIT(out, ",");
    }
    LIT(out, "\"object\":\"chat.completion\",\"created\":");
    write_int(c->created, out);
    if (c->model) {
        LIT(out, ",\"model\":");
        mn_chunk_json_string(&c->model, &c->model_len, 1, out);
    }
    LIT(out, ",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":");
    if (c->ntexts < 0) {
        LIT(out, "null");
    }
    else {
        mn_chunk_json_string(c->texts, c->text_lens, c->ntexts, out);
    }
    LIT(out, ",\"refusal\":null},\"logprobs\":null,\"finish_reason\":\"");
    out->write(out->baton, c->finish, strlen(c->finish));
    LIT(out, "\"}],\"usage\":");
    write_usage(c->usage, c->have_reasoning, out);
    write_provider(c->provider_name, out);
    LIT(out, "}");
}
