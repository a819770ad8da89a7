/* mn_keys: the key file syntax and the lookup by hash (see include/mn_keys.h). */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <apr_hash.h>
#include <apr_lib.h>
#include <apr_strings.h>
#include "mn_keys.h"

#define MN_KEY_NAME_MAX 128
#define MN_KEY_INDEX_LEN 16     /* hex digits of the hash used to find the bucket */

struct mn_key_table {
    apr_hash_t *by_prefix;      /* first MN_KEY_INDEX_LEN hex digits -> apr_array of keys */
    int count;
};

int mn_ct_equal(const void *a, const void *b, size_t n)
{
    const volatile unsigned char *x = a, *y = b;
    unsigned char d = 0;
    size_t i;
    for (i = 0; i < n; i++) {
        d |= (unsigned char)(x[i] ^ y[i]);
    }
    return d == 0;
}

void mn_hex32(const unsigned char *bytes, char *out)
{
    static const char hex[] = "0123456789abcdef";
    int i;
    for (i = 0; i < 32; i++) {
        out[2 * i] = hex[bytes[i] >> 4];
        out[2 * i + 1] = hex[bytes[i] & 15];
    }
    out[64] = '\0';
}

int mn_glob_match(const char *pattern, const char *s)
{
    const char *star = NULL, *resume = NULL;
    while (*s) {
        if (*pattern == '*') {
            star = pattern++;
            resume = s;
        }
        else if (*pattern == '?' || *pattern == *s) {
            pattern++;
            s++;
        }
        else if (star) {
            /* let the last star swallow one more character */
            pattern = star + 1;
            s = ++resume;
        }
        else {
            return 0;
        }
    }
    while (*pattern == '*') {
        pattern++;
    }
    return *pattern == '\0';
}

int mn_key_model_allowed(const mn_client_key *k, const char *model)
{
    int i;
    if (!k || !k->models) {
        return 1;
    }
    for (i = 0; i < k->models->nelts; i++) {
        if (mn_glob_match(APR_ARRAY_IDX(k->models, i, const char *), model)) {
            return 1;
        }
    }
    return 0;
}

int mn_key_expired(const mn_client_key *k, apr_time_t now)
{
    return k->expires && now >= k->expires;
}

static int valid_name(const char *s)
{
    size_t n = 0;
    for (; *s; s++, n++) {
        if (!apr_isalnum(*s) && !strchr("._@+-", *s)) {
            return 0;
        }
    }
    return n > 0 && n <= MN_KEY_NAME_MAX;
}

static const char *parse_hash(const char *s, char *out)
{
    int i;
    for (i = 0; i < 64; i++) {
        if (!apr_isxdigit(s[i])) {
            break;
        }
        out[i] = (char)apr_tolower(s[i]);
    }
    if (i != 64 || s[64]) {
        return "the second field must be the key's SHA-256 as 64 hex digits";
    }
    out[64] = '\0';
    return NULL;
}

/* A positive integer that fits an int64. */
static int parse_count(const char *v, int64_t *out)
{
    char *end;
    apr_int64_t n;
    if (!apr_isdigit(*v)) {
        return -1;
    }
    errno = 0;
    n = apr_strtoi64(v, &end, 10);
    if (*end || errno || n <= 0) {
        return -1;
    }
    *out = n;
    return 0;
}

/* USD with at most 6 decimals -> micro-USD (> 0). */
static int parse_usd(const char *v, const char *stop, int64_t *out)
{
    int64_t whole = 0, frac = 0;
    int digits = 0, fdigits = 0;
    /* whole <= INT64_MAX / 10^6 - 1 leaves room for any 6 decimals */
    for (; v < stop && apr_isdigit(*v); v++, digits++) {
        whole = whole * 10 + (*v - '0');
        if (whole > INT64_MAX / 1000000 - 1) {
            return -1;
        }
    }
    if (v < stop && *v == '.') {
        for (v++; v < stop && apr_isdigit(*v); v++, fdigits++) {
            if (fdigits == 6) {
                return -1;
            }
            frac = frac * 10 + (*v - '0');
        }
        if (!fdigits) {
            return -1;
        }
    }
    if (v != stop || !digits) {
        return -1;
    }
    for (; fdigits < 6; fdigits++) {
        frac *= 10;
    }
    *out = whole * 1000000 + frac;
    return *out > 0 ? 0 : -1;
}

static const char *parse_budget(const char *v, mn_client_key *k)
{
    const char *slash = strchr(v, '/');
    if (!slash || parse_usd(v, slash, &k->budget_micro_usd)) {
        return "budget: expected USD/day or USD/month, e.g. budget=25/day or budget=300.50/month";
    }
    if (!strcmp(slash + 1, "day")) {
        k->budget_period = MN_BUDGET_DAY;
    }
    else if (!strcmp(slash + 1, "month")) {
        k->budget_period = MN_BUDGET_MONTH;
    }
    else {
        return "budget: the period must be day or month";
    }
    return NULL;
}

/* YYYY-MM-DD: the key stops working at 00:00 UTC on that day. */
static const char *parse_expires(const char *v, mn_client_key *k)
{
    apr_time_exp_t tm;
    apr_time_t t;
    int y, m, d;
    char tail;
    if (strlen(v) != 10 || v[4] != '-' || v[7] != '-'
        || sscanf(v, "%4d-%2d-%2d%c", &y, &m, &d, &tail) != 3) {
        return "expires: expected a date YYYY-MM-DD";
    }
    memset(&tm, 0, sizeof(tm));
    tm.tm_year = y - 1900;
    tm.tm_mon = m - 1;
    tm.tm_mday = d;
    if (y < 1970 || m < 1 || m > 12 || d < 1 || d > 31
        || apr_time_exp_gmt_get(&t, &tm) != APR_SUCCESS) {
        return "expires: not a valid date";
    }
    /* 2026-02-31 would silently become March 3rd: refuse it */
    if (apr_time_exp_gmt(&tm, t) != APR_SUCCESS || tm.tm_mday != d || tm.tm_mon != m - 1) {
        return "expires: not a valid date";
    }
    k->expires = t;
    return NULL;
}

/* a,b,c -> array of non-empty items without spaces or commas. */
static const char *parse_list(apr_pool_t *p, const char *what, const char *v,
                              apr_array_header_t **out)
{
    char *copy = apr_pstrdup(p, v), *last, *item;
    apr_array_header_t *a = apr_array_make(p, 4, sizeof(const char *));
    if (!*v || v[strlen(v) - 1] == ',' || strstr(v, ",,") || *v == ',') {
        return apr_psprintf(p, "%s: expected a comma-separated list without empty items", what);
    }
    for (item = apr_strtok(copy, ",", &last); item; item = apr_strtok(NULL, ",", &last)) {
        *(const char **)apr_array_push(a) = item;
    }
    *out = a;
    return NULL;
}

static const char *parse_option(apr_pool_t *p, const char *opt, mn_client_key *k,
                                unsigned *seen)
{
    static const char *const names[] = { "models", "rpm", "tpm", "budget", "max-streams",
                                         "expires", "tags", NULL };
    const char *eq = strchr(opt, '='), *v;
    size_t nlen;
    int i;
    if (!eq || eq == opt) {
        return apr_psprintf(p, "'%s': options are name=value", opt);
    }
    nlen = (size_t)(eq - opt);
    v = eq + 1;
    for (i = 0; names[i]; i++) {
        if (strlen(names[i]) == nlen && !strncmp(opt, names[i], nlen)) {
            break;
        }
    }
    if (!names[i]) {
        return apr_psprintf(p, "unknown option '%.*s' (known: models, rpm, tpm, budget, "
                            "max-streams, expires, tags)", (int)nlen, opt);
    }
    if (*seen & (1u << i)) {
        return apr_psprintf(p, "option %s given twice", names[i]);
    }
    *seen |= 1u << i;
    switch (i) {
    case 0:
        return parse_list(p, "models", v, &k->models);
    case 1:
        return parse_count(v, &k->rpm) ? "rpm: expected a whole number > 0" : NULL;
    case 2:
        return parse_count(v, &k->tpm) ? "tpm: expected a whole number > 0" : NULL;
    case 3:
        return parse_budget(v, k);
    case 4:
        return parse_count(v, &k->max_streams) ? "max-streams: expected a whole number > 0"
                                               : NULL;
    case 5:
        return parse_expires(v, k);
    default:
        return parse_list(p, "tags", v, &k->tags);
    }
}

#define MN_KEY_SPACE " \t\r\n"

const char *mn_key_parse_options(apr_pool_t *p, const char *opts, mn_client_key *k)
{
    char *copy, *last, *tok;
    unsigned seen = 0;
    if (!opts) {
        return NULL;
    }
    copy = apr_pstrdup(p, opts);
    for (tok = apr_strtok(copy, MN_KEY_SPACE, &last); tok;
         tok = apr_strtok(NULL, MN_KEY_SPACE, &last)) {
        const char *err = parse_option(p, tok, k, &seen);
        if (err) {
            return err;
        }
    }
    return NULL;
}

const char *mn_key_parse_line(apr_pool_t *p, const char *line, mn_client_key **out)
{
    const char *s = line, *err;
    const char *name_end, *hash, *hash_end;
    mn_client_key *k;

    *out = NULL;
    s += strspn(s, MN_KEY_SPACE);
    if (!*s || *s == '#') {
        return NULL;
    }
    name_end = s + strcspn(s, MN_KEY_SPACE);
    hash = name_end + strspn(name_end, MN_KEY_SPACE);
    hash_end = hash + strcspn(hash, MN_KEY_SPACE);
    k = apr_pcalloc(p, sizeof(*k));
    k->name = apr_pstrmemdup(p, s, (apr_size_t)(name_end - s));
    if (!valid_name(k->name)) {
        return apr_psprintf(p, "key name '%s': use 1 to %d of A-Z a-z 0-9 . _ @ + -",
                            k->name, MN_KEY_NAME_MAX);
    }
    if (hash == hash_end) {
        return apr_psprintf(p, "key %s: no SHA-256 after the name", k->name);
    }
    if ((err = parse_hash(apr_pstrmemdup(p, hash, (apr_size_t)(hash_end - hash)),
                          k->sha256_hex)) != NULL
        || (err = mn_key_parse_options(p, hash_end, k)) != NULL) {
        return apr_psprintf(p, "key %s: %s", k->name, err);
    }
    *out = k;
    return NULL;
}

static const char *table_add(mn_key_table *t, apr_pool_t *p, mn_client_key *k)
{
    apr_array_header_t *bucket = apr_hash_get(t->by_prefix, k->sha256_hex, MN_KEY_INDEX_LEN);
    int i;
    if (!bucket) {
        bucket = apr_array_make(p, 1, sizeof(mn_client_key *));
        apr_hash_set(t->by_prefix, k->sha256_hex, MN_KEY_INDEX_LEN, bucket);
    }
    for (i = 0; i < bucket->nelts; i++) {
        const mn_client_key *o = APR_ARRAY_IDX(bucket, i, mn_client_key *);
        if (!strcmp(o->sha256_hex, k->sha256_hex)) {
            return apr_psprintf(p, "key %s: the same hash as key %s", k->name, o->name);
        }
    }
    *(mn_client_key **)apr_array_push(bucket) = k;
    t->count++;
    return NULL;
}

const char *mn_key_table_load(apr_pool_t *p, const char *fname, const char *text,
                              mn_key_table **out)
{
    mn_key_table *t = apr_pcalloc(p, sizeof(*t));
    const char *line = text;
    int lineno = 0;

    t->by_prefix = apr_hash_make(p);
    while (line && *line) {
        const char *nl = strchr(line, '\n');
        size_t len = nl ? (size_t)(nl - line) : strlen(line);
        mn_client_key *k;
        const char *err;

        lineno++;
        if (memchr(line, '\0', len)) {
            return apr_psprintf(p, "%s:%d: NUL byte in line", fname, lineno);
        }
        err = mn_key_parse_line(p, apr_pstrmemdup(p, line, len), &k);
        if (!err && k) {
            err = table_add(t, p, k);
        }
        if (err) {
            return apr_psprintf(p, "%s:%d: %s", fname, lineno, err);
        }
        line = nl ? nl + 1 : NULL;
    }
    *out = t;
    return NULL;
}

const mn_client_key *mn_key_table_find(const mn_key_table *t, const char *sha256_hex)
{
    const apr_array_header_t *bucket;
    const mn_client_key *found = NULL;
    int i;
    if (!t || strlen(sha256_hex) != 64) {
        return NULL;
    }
    bucket = apr_hash_get(t->by_prefix, sha256_hex, MN_KEY_INDEX_LEN);
    for (i = 0; bucket && i < bucket->nelts; i++) {
        const mn_client_key *k = APR_ARRAY_IDX(bucket, i, const mn_client_key *);
        if (mn_ct_equal(k->sha256_hex, sha256_hex, 64)) {
            found = k;
        }
    }
    return found;
}

int mn_key_table_count(const mn_key_table *t)
{
    return t ? t->count : 0;
}

static apr_array_header_t *copy_strings(apr_pool_t *p, const apr_array_header_t *a)
{
    apr_array_header_t *c;
    int i;
    if (!a) {
        return NULL;
    }
    c = apr_array_make(p, a->nelts, sizeof(const char *));
    for (i = 0; i < a->nelts; i++) {
        *(const char **)apr_array_push(c) = apr_pstrdup(p, APR_ARRAY_IDX(a, i, const char *));
    }
    return c;
}

mn_client_key *mn_key_copy(apr_pool_t *p, const mn_client_key *k)
{
    mn_client_key *c = apr_pmemdup(p, k, sizeof(*k));
    c->name = apr_pstrdup(p, k->name);
    c->models = copy_strings(p, k->models);
    c->tags = copy_strings(p, k->tags);
    return c;
}
