/* mn_price: prices and the cost of a request (see include/mn_price.h). */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_fnmatch.h>
#include <apr_hash.h>
#include <apr_strings.h>
#include <jansson.h>
#include "mn_price.h"

typedef struct {
    const char *glob;
    mn_price price;
} price_line;

struct mn_price_table {
    apr_pool_t *pool;
    apr_array_header_t *lines;   /* price_line, config order */
    apr_array_header_t *files;   /* apr_hash_t * of name -> mn_price, in order */
};

mn_price_table *mn_price_table_create(apr_pool_t *p)
{
    mn_price_table *t = apr_pcalloc(p, sizeof(*t));
    t->pool = p;
    t->lines = apr_array_make(p, 8, sizeof(price_line));
    t->files = apr_array_make(p, 1, sizeof(apr_hash_t *));
    return t;
}

int mn_price_parse_decimal(const char *s, int decimals, int64_t *out)
{
    int64_t v = 0;
    int frac = -1, digits = 0;
    for (; *s; s++) {
        if (*s == '.' && frac < 0) {
            frac = 0;
            continue;
        }
        if (*s < '0' || *s > '9' || (frac >= 0 && ++frac > decimals)) {
            return -1;
        }
        if (v > (INT64_MAX - 9) / 10) {
            return -1;
        }
        v = v * 10 + (*s - '0');
        digits++;
    }
    if (!digits) {
        return -1;
    }
    for (frac = frac < 0 ? 0 : frac; frac < decimals; frac++) {
        if (v > INT64_MAX / 10) {
            return -1;
        }
        v *= 10;
    }
    *out = v;
    return 0;
}

const char *mn_price_add_line(mn_price_table *t, int argc, const char *const *argv)
{
    price_line *l;
    int i, have_in = 0, have_out = 0, have_cached = 0, have_write = 0;
    mn_price pr = { 0, 0, 0, 0 };

    if (argc < 3) {
        return "expected <provider/model glob> input=<USD/1M> output=<USD/1M> "
               "[cached-input=<USD/1M>] [cache-write=<USD/1M>]";
    }
    for (i = 1; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        size_t nlen = eq ? (size_t)(eq - argv[i]) : 0;
        int64_t *dst;
        int *seen;
        if (!eq) {
            return apr_psprintf(t->pool, "'%s': expected name=<USD per 1M tokens>", argv[i]);
        }
        if (nlen == 5 && !strncmp(argv[i], "input", 5)) {
            dst = &pr.input, seen = &have_in;
        }
        else if (nlen == 6 && !strncmp(argv[i], "output", 6)) {
            dst = &pr.output, seen = &have_out;
        }
        else if (nlen == 12 && !strncmp(argv[i], "cached-input", 12)) {
            dst = &pr.cached_input, seen = &have_cached;
        }
        else if (nlen == 11 && !strncmp(argv[i], "cache-write", 11)) {
            dst = &pr.cache_write, seen = &have_write;
        }
        else {
            return apr_psprintf(t->pool, "unknown option '%.*s' (input, output, cached-input, "
                                "cache-write)", (int)nlen, argv[i]);
        }
        if (*seen) {
            return apr_psprintf(t->pool, "'%.*s' given twice", (int)nlen, argv[i]);
        }
        /* USD per 1M tokens with six decimals is micro-USD per 1M tokens,
         * which is pico-USD per token: held exactly */
        if (mn_price_parse_decimal(eq + 1, 6, dst) || *dst > INT64_C(1000000000000)) {
            return apr_psprintf(t->pool, "'%s': expected USD per 1M tokens, a decimal number "
                                "with at most 6 decimals (e.g. input=2.50)", argv[i]);
        }
        *seen = 1;
    }
    if (!have_in || !have_out) {
        return "input= and output= are required";
    }
    if (!have_cached) {
        pr.cached_input = pr.input;
    }
    if (!have_write) {
        pr.cache_write = pr.input;
    }
    l = apr_array_push(t->lines);
    l->glob = apr_pstrdup(t->pool, argv[0]);
    l->price = pr;
    return NULL;
}

/* USD per token (LiteLLM) -> pico-USD per token; -1 when not a sane price. */
static int64_t per_token(json_t *v)
{
    double d;
    if (!json_is_number(v)) {
        return -1;
    }
    d = json_number_value(v) * 1e12;
    if (!(d >= 0) || d > 1e15) {
        return -1;
    }
    return (int64_t)llround(d);
}

static int litellm_entry(json_t *e, mn_price *pr)
{
    int64_t c;
    pr->input = per_token(json_object_get(e, "input_cost_per_token"));
    pr->output = per_token(json_object_get(e, "output_cost_per_token"));
    if (pr->input < 0 || pr->output < 0) {
        return -1;
    }
    c = per_token(json_object_get(e, "cache_read_input_token_cost"));
    pr->cached_input = c >= 0 ? c : pr->input;
    c = per_token(json_object_get(e, "cache_creation_input_token_cost"));
    pr->cache_write = c >= 0 ? c : pr->input;
    return 0;
}

const char *mn_price_add_litellm(mn_price_table *t, const char *text, size_t len,
                                 const char *what)
{
    json_error_t jerr;
    json_t *root = json_loadb(text, len, 0, &jerr), *e;
    apr_hash_t *h;
    const char *name;

    if (!root) {
        return apr_psprintf(t->pool, "%s: not valid JSON: %s (line %d, column %d)", what,
                            jerr.text, jerr.line, jerr.column);
    }
    if (!json_is_object(root)) {
        json_decref(root);
        return apr_psprintf(t->pool, "%s: expected a JSON object of model name -> prices "
                            "(LiteLLM's model_prices_and_context_window.json)", what);
    }
    h = apr_hash_make(t->pool);
    json_object_foreach(root, name, e) {
        mn_price pr;
        if (json_is_object(e) && !litellm_entry(e, &pr)) {
            apr_hash_set(h, apr_pstrdup(t->pool, name), APR_HASH_KEY_STRING,
                         apr_pmemdup(t->pool, &pr, sizeof(pr)));
        }
    }
    json_decref(root);
    *(apr_hash_t **)apr_array_push(t->files) = h;
    return NULL;
}

const char *mn_price_add_litellm_file(mn_price_table *t, const char *path)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    const char *err;

    if (!f) {
        return apr_psprintf(t->pool, "%s: cannot be read", path);
    }
    if (fseek(f, 0, SEEK_END) || (n = ftell(f)) < 0 || fseek(f, 0, SEEK_SET)) {
        fclose(f);
        return apr_psprintf(t->pool, "%s: cannot be read", path);
    }
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        free(buf);
        fclose(f);
        return apr_psprintf(t->pool, "%s: cannot be read", path);
    }
    fclose(f);
    err = mn_price_add_litellm(t, buf, (size_t)n, path);
    free(buf);
    return err;
}

const mn_price *mn_price_find(const mn_price_table *t, const char *provider, const char *model)
{
    char name[512];
    int i, n = apr_snprintf(name, sizeof(name), "%s/%s", provider, model);

    if (n < 0 || (size_t)n >= sizeof(name) - 1) {
        return NULL;    /* no model name is that long; no price is better than a wrong one */
    }
    for (i = 0; i < t->lines->nelts; i++) {
        const price_line *l = &APR_ARRAY_IDX(t->lines, i, price_line);
        if (apr_fnmatch(l->glob, name, 0) == APR_SUCCESS) {
            return &l->price;
        }
    }
    for (i = 0; i < t->files->nelts; i++) {
        apr_hash_t *h = APR_ARRAY_IDX(t->files, i, apr_hash_t *);
        const mn_price *pr = apr_hash_get(h, name, APR_HASH_KEY_STRING);
        if (pr || (pr = apr_hash_get(h, model, APR_HASH_KEY_STRING)) != NULL) {
            return pr;
        }
    }
    return NULL;
}

static int64_t sat_mul(int64_t a, int64_t b)
{
    if (a <= 0 || b <= 0) {
        return 0;
    }
    return a > INT64_MAX / b ? INT64_MAX : a * b;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    return a > INT64_MAX - b ? INT64_MAX : a + b;
}

/* pico-USD -> micro-USD, rounded up */
static int64_t to_micro(int64_t pico)
{
    return pico / 1000000 + (pico % 1000000 != 0);
}

int64_t mn_price_cost(const mn_price *p, const mn_usage *u)
{
    int64_t cached = u->cached_tokens, written = u->cache_write_tokens;
    int64_t plain = (int64_t)u->prompt_tokens - cached - written;
    int64_t pico;
    if (plain < 0) {
        /* counts that do not add up: charge what is certain, at the dearer rate */
        plain = 0;
    }
    pico = sat_mul(plain, p->input);
    pico = sat_add(pico, sat_mul(cached, p->cached_input));
    pico = sat_add(pico, sat_mul(written, p->cache_write));
    pico = sat_add(pico, sat_mul(u->completion_tokens, p->output));
    return to_micro(pico);
}

int64_t mn_price_estimate(const mn_price *p, int64_t prompt_tokens, int64_t completion_tokens)
{
    return to_micro(sat_add(sat_mul(prompt_tokens, p->input),
                            sat_mul(completion_tokens, p->output)));
}

const char *mn_price_format_usd(apr_pool_t *p, int64_t micro_usd)
{
    if (micro_usd < 0) {
        micro_usd = 0;
    }
    return apr_psprintf(p, "%" APR_INT64_T_FMT ".%06" APR_INT64_T_FMT,
                        micro_usd / 1000000, micro_usd % 1000000);
}
