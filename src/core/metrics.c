/* mn_metrics: the live metrics table and its Prometheus text (see include/mn_metrics.h). */
#include <sched.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_buf.h"
#include "mn_metrics.h"

#define MN_METRICS_MAGIC 0x4d4e4d31u   /* "MNM1" */

#define ADD(field, v) __atomic_fetch_add(&(field), (v), __ATOMIC_RELAXED)
#define LOAD(field) __atomic_load_n(&(field), __ATOMIC_RELAXED)

/* Bucket upper bounds: microseconds for times, tokens for token usage.  The
 * OpenTelemetry GenAI conventions' advised boundaries where they give some;
 * the gateway overhead is finer, as it is meant to be small. */
static const uint64_t b_duration[] = { 10000, 20000, 40000, 80000, 160000, 320000, 640000,
    1280000, 2560000, 5120000, 10240000, 20480000, 40960000, 81920000 };
static const uint64_t b_ttft[] = { 1000, 5000, 10000, 20000, 40000, 60000, 80000, 100000,
    250000, 500000, 750000, 1000000, 2500000, 5000000, 7500000, 10000000 };
static const uint64_t b_tpot[] = { 10000, 25000, 50000, 75000, 100000, 150000, 200000, 300000,
    400000, 500000, 750000, 1000000, 2500000 };
static const uint64_t b_overhead[] = { 100, 250, 500, 1000, 2500, 5000, 10000, 25000, 50000,
    100000, 250000, 500000, 1000000 };
static const uint64_t b_tokens[] = { 1, 4, 16, 64, 256, 1024, 4096, 16384, 65536, 262144,
    1048576, 4194304, 16777216, 67108864 };

typedef struct {
    const uint64_t *bounds;
    int n;
    int seconds;            /* values are microseconds, shown as seconds */
} hist_def;

#define DEF(a, s) { a, (int)(sizeof(a) / sizeof(a[0])), s }
static const hist_def hist_defs[MN_MH_COUNT] = {
    DEF(b_duration, 1), DEF(b_ttft, 1), DEF(b_tpot, 1), DEF(b_overhead, 1),
    DEF(b_tokens, 0), DEF(b_tokens, 0)
};

static const char *const error_names[MN_ME_COUNT] = {
    "", "invalid_request_error", "authentication_error", "permission_error", "not_found_error",
    "rate_limit_error", "timeout_error", "upstream_error", "server_error", "client_aborted",
    "other"
};

static const char *const attempt_names[MN_MA_COUNT] = {
    "2xx", "400", "401", "403", "404", "408", "409", "413", "429", "4xx", "500", "502", "503",
    "504", "529", "5xx", "unreachable", "tls_error", "timeout", "reset", "eof", "bad_response",
    "circuit_open", "unavailable", "other"
};

const char *mn_metrics_error_name(mn_metrics_error e)
{
    return (unsigned)e < MN_ME_COUNT ? error_names[e] : "other";
}

const char *mn_metrics_attempt_name(mn_metrics_attempt a)
{
    return (unsigned)a < MN_MA_COUNT ? attempt_names[a] : "other";
}

mn_metrics_error mn_metrics_error_of(const char *type)
{
    int i;
    if (!type || !*type) {
        return MN_ME_SUCCESS;
    }
    for (i = 1; i < MN_ME_OTHER; i++) {
        if (!strcmp(type, error_names[i])) {
            return (mn_metrics_error)i;
        }
    }
    return MN_ME_OTHER;
}

mn_metrics_attempt mn_metrics_attempt_of(const char *label, size_t len)
{
    int i, status = 0;
    size_t k;
    for (k = 0; k < len && label[k] >= '0' && label[k] <= '9' && k < 4; k++) {
        status = status * 10 + (label[k] - '0');
    }
    if (k == len && k == 3) {
        static const int exact[] = { 400, 401, 403, 404, 408, 409, 413, 429 };
        static const int exact5[] = { 500, 502, 503, 504, 529 };
        if (status >= 200 && status < 300) {
            return MN_MA_2XX;
        }
        for (i = 0; i < 8; i++) {
            if (status == exact[i]) {
                return (mn_metrics_attempt)(MN_MA_400 + i);
            }
        }
        for (i = 0; i < 5; i++) {
            if (status == exact5[i]) {
                return (mn_metrics_attempt)(MN_MA_500 + i);
            }
        }
        return status >= 400 && status < 500 ? MN_MA_4XX
             : status >= 500 && status < 600 ? MN_MA_5XX : MN_MA_OTHER;
    }
    for (i = MN_MA_UNREACHABLE; i < MN_MA_OTHER; i++) {
        if (strlen(attempt_names[i]) == len && !memcmp(label, attempt_names[i], len)) {
            return (mn_metrics_attempt)i;
        }
    }
    /* total_timeout counts as a timeout */
    if (len == 13 && !memcmp(label, "total_timeout", 13)) {
        return MN_MA_TIMEOUT;
    }
    return MN_MA_OTHER;
}

int mn_metrics_bucket(mn_metrics_hist_kind kind, uint64_t value)
{
    const hist_def *d = &hist_defs[kind];
    int lo = 0, hi = d->n;
    /* the first bound >= value (Prometheus' le) */
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (d->bounds[mid] < value) {
            lo = mid + 1;
        }
        else {
            hi = mid;
        }
    }
    return lo;
}

void mn_metrics_observe(mn_metrics_hist *h, mn_metrics_hist_kind kind, uint64_t value)
{
    ADD(h->bucket[mn_metrics_bucket(kind, value)], 1);
    ADD(h->sum, value);
    ADD(h->count, 1);
}

size_t mn_metrics_size(uint32_t capacity)
{
    return sizeof(mn_metrics_table) + (size_t)capacity * sizeof(mn_metrics_slot)
           + (size_t)MN_METRICS_PROCS * capacity * sizeof(int64_t);
}

static int64_t *live_row(const mn_metrics_table *t, int row)
{
    return (int64_t *)(void *)&((mn_metrics_table *)t)->slots[t->capacity]
           + (size_t)row * t->capacity;
}

void mn_metrics_init(mn_metrics_table *t, uint32_t capacity, int64_t now_us)
{
    memset(t, 0, mn_metrics_size(capacity));
    t->magic = MN_METRICS_MAGIC;
    t->layout = (uint32_t)sizeof(mn_metrics_slot);
    t->capacity = capacity;
    t->created_us = now_us;
}

int mn_metrics_reusable(const mn_metrics_table *t, uint32_t capacity)
{
    return t && t->magic == MN_METRICS_MAGIC && t->layout == sizeof(mn_metrics_slot)
           && t->capacity >= capacity;
}

static int fits(const char *s, size_t max)
{
    return s && strlen(s) < max;
}

static int slot_is(const mn_metrics_slot *s, const char *provider, const char *model)
{
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == MN_SLOT_READY
           && !strcmp(s->provider, provider) && !strcmp(s->model, model);
}

static int new_slots(mn_metrics_table *t, const char *provider, const char *model,
                     mn_metrics_slot_kind kind, int n)
{
    int first = (int)t->used, i;
    if (t->used + (uint32_t)n > t->capacity) {
        return -1;
    }
    for (i = first; i < first + n; i++) {
        mn_metrics_slot *s = &t->slots[i];
        memset(s, 0, sizeof(*s));
        s->kind = kind;
        strcpy(s->provider, provider);
        strcpy(s->model, model);
        /* a dynamic slot is free until a request claims it for a name */
        __atomic_store_n(&s->state, kind == MN_SK_DYNAMIC ? MN_SLOT_FREE : MN_SLOT_READY,
                         __ATOMIC_RELEASE);
    }
    __atomic_store_n(&t->used, t->used + (uint32_t)n, __ATOMIC_RELEASE);
    return first;
}

int mn_metrics_slot_add(mn_metrics_table *t, const char *provider, const char *model,
                        mn_metrics_slot_kind kind)
{
    uint32_t i;
    if (!fits(provider, MN_METRICS_PROVIDER_MAX) || !fits(model, MN_METRICS_MODEL_MAX)) {
        return -1;
    }
    for (i = 0; i < t->used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (kind == MN_SK_DYNAMIC) {
            /* a provider's dynamic slots are one run, found by its first */
            if (s->kind == MN_SK_DYNAMIC && !strcmp(s->provider, provider)) {
                return (int)i;
            }
        }
        else if ((kind == MN_SK_PROVIDER || kind == MN_SK_UNROUTED) ? s->kind == kind
                     && !strcmp(s->provider, provider)
                 : s->kind != MN_SK_PROVIDER && s->kind != MN_SK_UNROUTED
                     && slot_is(s, provider, model)) {
            return (int)i;
        }
    }
    return new_slots(t, provider, model, kind, kind == MN_SK_DYNAMIC ? MN_METRICS_DYNAMIC : 1);
}

/* Every claimer takes the first free slot and waits out a claim in flight,
 * so one name never gets two slots (two series with the same labels). */
int mn_metrics_slot_claim(mn_metrics_table *t, int first, int n, const char *model)
{
    int i;
    if (first < 0 || !fits(model, MN_METRICS_MODEL_MAX) || !*model || !strcmp(model, "other")) {
        return -1;
    }
    for (i = first; i < first + n && (uint32_t)i < t->capacity; i++) {
        mn_metrics_slot *s = &t->slots[i];
        uint32_t state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        int spins = 0;
        while (state == MN_SLOT_CLAIMING && spins++ < 1000) {
            sched_yield();
            state = __atomic_load_n(&s->state, __ATOMIC_ACQUIRE);
        }
        if (state == MN_SLOT_READY) {
            if (!strcmp(s->model, model)) {
                return i;
            }
            continue;
        }
        if (state == MN_SLOT_FREE) {
            uint32_t expect = MN_SLOT_FREE;
            if (__atomic_compare_exchange_n(&s->state, &expect, MN_SLOT_CLAIMING, 0,
                                            __ATOMIC_ACQ_REL, __ATOMIC_ACQUIRE)) {
                strcpy(s->model, model);
                __atomic_store_n(&s->state, MN_SLOT_READY, __ATOMIC_RELEASE);
                return i;
            }
            i--;    /* lost the race for this slot: look at it again */
        }
    }
    return -1;
}

void mn_metrics_record(mn_metrics_table *t, int slot, const mn_metrics_obs *o)
{
    mn_metrics_slot *s;
    if (slot < 0 || (uint32_t)slot >= t->capacity) {
        return;
    }
    s = &t->slots[slot];
    ADD(s->requests[(unsigned)o->outcome < MN_ME_COUNT ? o->outcome : MN_ME_OTHER], 1);
    if (o->have_usage) {
        ADD(s->tokens[0], (uint64_t)(o->prompt_tokens > 0 ? o->prompt_tokens : 0));
        ADD(s->tokens[1], (uint64_t)(o->completion_tokens > 0 ? o->completion_tokens : 0));
        ADD(s->tokens[2], (uint64_t)(o->cached_tokens > 0 ? o->cached_tokens : 0));
        ADD(s->tokens[3], (uint64_t)(o->reasoning_tokens > 0 ? o->reasoning_tokens : 0));
        mn_metrics_observe(&s->hist[MN_MH_TOKENS_IN], MN_MH_TOKENS_IN,
                           (uint64_t)(o->prompt_tokens > 0 ? o->prompt_tokens : 0));
        mn_metrics_observe(&s->hist[MN_MH_TOKENS_OUT], MN_MH_TOKENS_OUT,
                           (uint64_t)(o->completion_tokens > 0 ? o->completion_tokens : 0));
    }
    if (o->cost_micro_usd > 0) {
        ADD(s->cost_micro_usd, (uint64_t)o->cost_micro_usd);
    }
    if (o->duration_us >= 0) {
        mn_metrics_observe(&s->hist[MN_MH_DURATION], MN_MH_DURATION, (uint64_t)o->duration_us);
    }
    if (o->overhead_us >= 0) {
        mn_metrics_observe(&s->hist[MN_MH_OVERHEAD], MN_MH_OVERHEAD, (uint64_t)o->overhead_us);
    }
    /* first token and per-token times describe successful streams only */
    if (o->outcome != MN_ME_SUCCESS || !o->stream || o->ttft_us < 0) {
        return;
    }
    mn_metrics_observe(&s->hist[MN_MH_TTFT], MN_MH_TTFT, (uint64_t)o->ttft_us);
    if (o->have_usage && o->completion_tokens > 1 && o->duration_us >= o->ttft_us) {
        mn_metrics_observe(&s->hist[MN_MH_TPOT], MN_MH_TPOT,
                           (uint64_t)((o->duration_us - o->ttft_us) / (o->completion_tokens - 1)));
    }
}

void mn_metrics_record_attempts(mn_metrics_table *t, const char *attempts,
                                int (*provider_slot)(void *baton, const char *name, size_t len),
                                void *baton)
{
    const char *p = attempts, *prev = NULL;
    size_t prev_len = 0;
    while (p && *p) {
        const char *end = strchr(p, ','), *colon;
        size_t len = end ? (size_t)(end - p) : strlen(p);
        colon = memchr(p, ':', len);
        if (colon) {
            size_t nlen = (size_t)(colon - p);
            mn_metrics_attempt a = mn_metrics_attempt_of(colon + 1, len - nlen - 1);
            int slot = provider_slot(baton, p, nlen);
            int same = prev && prev_len == nlen && !memcmp(prev, p, nlen);
            if (slot >= 0 && (uint32_t)slot < t->capacity) {
                mn_metrics_slot *s = &t->slots[slot];
                ADD(s->attempts[a], 1);
                if (same && a != MN_MA_CIRCUIT_OPEN && a != MN_MA_UNAVAILABLE) {
                    ADD(s->retries, 1);
                }
            }
            if (prev && !same) {
                /* the request moved on from the previous provider */
                int pslot = provider_slot(baton, prev, prev_len);
                if (pslot >= 0 && (uint32_t)pslot < t->capacity) {
                    ADD(t->slots[pslot].fallbacks, 1);
                }
            }
            prev = p;
            prev_len = nlen;
        }
        p = end ? end + 1 : NULL;
    }
}

int mn_metrics_proc_row(mn_metrics_table *t, int32_t pid, int (*alive)(int32_t pid))
{
    int i;
    for (i = 0; i < MN_METRICS_PROCS; i++) {
        if (__atomic_load_n(&t->pids[i], __ATOMIC_ACQUIRE) == pid) {
            return i;
        }
    }
    for (i = 0; i < MN_METRICS_PROCS; i++) {
        int32_t old = __atomic_load_n(&t->pids[i], __ATOMIC_ACQUIRE);
        if ((old == 0 || !alive(old))
            && __atomic_compare_exchange_n(&t->pids[i], &old, pid, 0, __ATOMIC_ACQ_REL,
                                           __ATOMIC_ACQUIRE)) {
            /* what a dead process left open is not open any more */
            memset(live_row(t, i), 0, sizeof(int64_t) * t->capacity);
            return i;
        }
    }
    return -1;
}

uint64_t mn_metrics_rows_alive(const mn_metrics_table *t, int (*alive)(int32_t pid))
{
    uint64_t mask = 0;
    int i;
    for (i = 0; i < MN_METRICS_PROCS; i++) {
        int32_t pid = __atomic_load_n(&t->pids[i], __ATOMIC_ACQUIRE);
        if (pid > 0 && alive(pid)) {
            mask |= (uint64_t)1 << i;
        }
    }
    return mask;
}

void mn_metrics_stream_delta(mn_metrics_table *t, int row, int slot, int delta)
{
    if (slot < 0 || (uint32_t)slot >= t->capacity) {
        return;
    }
    if (row >= 0 && row < MN_METRICS_PROCS) {
        ADD(live_row(t, row)[slot], (int64_t)delta);
    }
    else {
        ADD(t->slots[slot].live_streams, (int64_t)delta);
    }
}

int64_t mn_metrics_live(const mn_metrics_table *t, int slot, uint64_t rows_alive)
{
    int64_t n;
    int i;
    if (slot < 0 || (uint32_t)slot >= t->capacity) {
        return 0;
    }
    n = LOAD(t->slots[slot].live_streams);
    for (i = 0; i < MN_METRICS_PROCS; i++) {
        if (rows_alive & ((uint64_t)1 << i)) {
            n += LOAD(live_row(t, i)[slot]);
        }
    }
    return n;
}

void mn_metrics_sum(const mn_metrics_table *t, uint64_t rows_alive, mn_metrics_totals *out)
{
    uint32_t i, used = __atomic_load_n(&t->used, __ATOMIC_ACQUIRE);
    int k;
    memset(out, 0, sizeof(*out));
    for (i = 0; i < used && i < t->capacity; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MN_SLOT_READY) {
            continue;
        }
        for (k = 0; k < MN_ME_COUNT; k++) {
            uint64_t v = LOAD(s->requests[k]);
            out->requests += v;
            out->errors += k ? v : 0;
        }
        for (k = 0; k < MN_MA_COUNT; k++) {
            out->attempts += k == MN_MA_CIRCUIT_OPEN || k == MN_MA_UNAVAILABLE
                             ? 0 : LOAD(s->attempts[k]);
        }
        out->retries += LOAD(s->retries);
        out->fallbacks += LOAD(s->fallbacks);
        out->tokens_in += LOAD(s->tokens[0]);
        out->tokens_out += LOAD(s->tokens[1]);
        out->cost_micro_usd += LOAD(s->cost_micro_usd);
        out->live_streams += mn_metrics_live(t, (int)i, rows_alive);
    }
}

/* ---- Prometheus text format 0.0.4 ---- */

typedef struct {
    mn_buf b;
    int failed;
} out_t;

#if defined(__GNUC__)
__attribute__((format(printf, 2, 3)))
#endif
static void outf(out_t *o, const char *fmt, ...)
{
    char tmp[512];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(tmp, sizeof(tmp), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(tmp) || mn_buf_append(&o->b, tmp, (size_t)n)) {
        o->failed = 1;
    }
}

/* Label values may hold anything a client named: \, " and newline escaped. */
static const char *esc(char *dst, size_t size, const char *src)
{
    size_t j = 0;
    for (; *src && j + 2 < size; src++) {
        if (*src == '\\' || *src == '"') {
            dst[j++] = '\\';
            dst[j++] = *src;
        }
        else if (*src == '\n') {
            dst[j++] = '\\';
            dst[j++] = 'n';
        }
        else {
            dst[j++] = *src;
        }
    }
    dst[j] = '\0';
    return dst;
}

/* The slot's labels: gen_ai_provider_name and, for model slots, gen_ai_request_model. */
static const char *labels(char *dst, size_t size, const mn_metrics_slot *s)
{
    char pv[2 * MN_METRICS_PROVIDER_MAX], mv[2 * MN_METRICS_MODEL_MAX];
    if (s->kind == MN_SK_UNROUTED) {
        dst[0] = '\0';
    }
    else if (s->kind == MN_SK_PROVIDER) {
        snprintf(dst, size, "gen_ai_provider_name=\"%s\"", esc(pv, sizeof(pv), s->provider));
    }
    else {
        snprintf(dst, size, "gen_ai_provider_name=\"%s\",gen_ai_request_model=\"%s\"",
                 esc(pv, sizeof(pv), s->provider), esc(mv, sizeof(mv), s->model));
    }
    return dst;
}

static int is_model_slot(const mn_metrics_slot *s)
{
    return s->kind == MN_SK_MODEL || s->kind == MN_SK_DYNAMIC || s->kind == MN_SK_OTHER;
}

static int visible(const mn_metrics_slot *s)
{
    return __atomic_load_n(&s->state, __ATOMIC_ACQUIRE) == MN_SLOT_READY;
}

static void head(out_t *o, const char *name, const char *type, const char *help)
{
    outf(o, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void fmt_value(char *dst, size_t size, uint64_t v, int seconds)
{
    if (seconds) {
        snprintf(dst, size, "%llu.%06llu", (unsigned long long)(v / 1000000),
                 (unsigned long long)(v % 1000000));
    }
    else {
        snprintf(dst, size, "%llu", (unsigned long long)v);
    }
}

static void hist_series(out_t *o, const char *name, const char *lab, const mn_metrics_hist *h,
                        mn_metrics_hist_kind kind)
{
    const hist_def *d = &hist_defs[kind];
    uint64_t cum = 0;
    char le[32], sum[32];
    const char *sep = *lab ? "," : "";
    int i;
    for (i = 0; i <= d->n; i++) {
        cum += LOAD(h->bucket[i]);
        if (i < d->n) {
            fmt_value(le, sizeof(le), d->bounds[i], d->seconds);
            /* trailing zeros off: 0.010000 -> 0.01 */
            if (d->seconds) {
                size_t k = strlen(le);
                while (k > 1 && le[k - 1] == '0') {
                    le[--k] = '\0';
                }
                if (le[k - 1] == '.') {
                    le[--k] = '\0';
                }
            }
        }
        else {
            strcpy(le, "+Inf");
        }
        outf(o, "%s_bucket{%s%sle=\"%s\"} %llu\n", name, lab, sep, le, (unsigned long long)cum);
    }
    fmt_value(sum, sizeof(sum), LOAD(h->sum), d->seconds);
    outf(o, "%s_sum{%s} %s\n", name, lab, sum);
    outf(o, "%s_count{%s} %llu\n", name, lab, (unsigned long long)LOAD(h->count));
}

static void fam_requests(out_t *o, const mn_metrics_table *t, uint32_t used)
{
    char lab[512];
    uint32_t i;
    int k;
    head(o, "maniac_requests_total", "counter",
         "Requests by how they ended: outcome success or error, with the error's type");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        const char *sep;
        if (!visible(s) || !(is_model_slot(s) || s->kind == MN_SK_UNROUTED)) {
            continue;
        }
        labels(lab, sizeof(lab), s);
        sep = *lab ? "," : "";
        if (s->kind != MN_SK_UNROUTED) {
            outf(o, "maniac_requests_total{%s%soutcome=\"success\"} %llu\n", lab, sep,
                 (unsigned long long)LOAD(s->requests[0]));
        }
        for (k = 1; k < MN_ME_COUNT; k++) {
            uint64_t v = LOAD(s->requests[k]);
            if (v) {
                outf(o, "maniac_requests_total{%s%soutcome=\"error\",error_type=\"%s\"} %llu\n",
                     lab, sep, error_names[k], (unsigned long long)v);
            }
        }
    }
}

static void fam_hist(out_t *o, const mn_metrics_table *t, uint32_t used, const char *name,
                     const char *help, mn_metrics_hist_kind kind)
{
    char lab[512];
    uint32_t i;
    head(o, name, "histogram", help);
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && is_model_slot(s)) {
            hist_series(o, name, labels(lab, sizeof(lab), s), &s->hist[kind], kind);
        }
    }
}

static void fam_token_usage(out_t *o, const mn_metrics_table *t, uint32_t used)
{
    char lab[512], lab2[600];
    uint32_t i;
    head(o, "gen_ai_client_token_usage", "histogram",
         "Tokens used per request, by gen_ai_token_type (input, output)");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (!visible(s) || !is_model_slot(s)) {
            continue;
        }
        labels(lab, sizeof(lab), s);
        snprintf(lab2, sizeof(lab2), "%s,gen_ai_token_type=\"input\"", lab);
        hist_series(o, "gen_ai_client_token_usage", lab2, &s->hist[MN_MH_TOKENS_IN],
                    MN_MH_TOKENS_IN);
        snprintf(lab2, sizeof(lab2), "%s,gen_ai_token_type=\"output\"", lab);
        hist_series(o, "gen_ai_client_token_usage", lab2, &s->hist[MN_MH_TOKENS_OUT],
                    MN_MH_TOKENS_OUT);
    }
}

static void fam_model_scalars(out_t *o, const mn_metrics_table *t, uint32_t used,
                              uint64_t rows_alive)
{
    static const char *const types[4] = { "input", "output", "cached_input", "reasoning" };
    char lab[512], cost[32];
    uint32_t i;
    int k;
    head(o, "maniac_tokens_total", "counter",
         "Tokens by gen_ai_token_type: input, output, cached_input (part of input), "
         "reasoning (part of output)");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && is_model_slot(s)) {
            labels(lab, sizeof(lab), s);
            for (k = 0; k < 4; k++) {
                outf(o, "maniac_tokens_total{%s,gen_ai_token_type=\"%s\"} %llu\n", lab, types[k],
                     (unsigned long long)LOAD(s->tokens[k]));
            }
        }
    }
    head(o, "maniac_cost_usd_total", "counter", "What the requests cost, in USD, at the configured prices");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && is_model_slot(s)) {
            fmt_value(cost, sizeof(cost), LOAD(s->cost_micro_usd), 1);
            outf(o, "maniac_cost_usd_total{%s} %s\n", labels(lab, sizeof(lab), s), cost);
        }
    }
    head(o, "maniac_streams_active", "gauge", "Streams being relayed to clients now");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && is_model_slot(s)) {
            outf(o, "maniac_streams_active{%s} %lld\n", labels(lab, sizeof(lab), s),
                 (long long)mn_metrics_live(t, (int)i, rows_alive));
        }
    }
}

static void fam_providers(out_t *o, const mn_metrics_table *t, uint32_t used,
                          const mn_metrics_breaker *breakers, int nbreakers)
{
    char lab[512];
    uint32_t i;
    int k;
    head(o, "maniac_upstream_attempts_total", "counter",
         "Exchanges tried with a provider, by result (status or failure)");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (!visible(s) || s->kind != MN_SK_PROVIDER) {
            continue;
        }
        labels(lab, sizeof(lab), s);
        for (k = 0; k < MN_MA_COUNT; k++) {
            uint64_t v = LOAD(s->attempts[k]);
            if (v) {
                outf(o, "maniac_upstream_attempts_total{%s,result=\"%s\"} %llu\n", lab,
                     attempt_names[k], (unsigned long long)v);
            }
        }
    }
    head(o, "maniac_upstream_retries_total", "counter",
         "Tries at a provider after the first one for the same request");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && s->kind == MN_SK_PROVIDER) {
            outf(o, "maniac_upstream_retries_total{%s} %llu\n", labels(lab, sizeof(lab), s),
                 (unsigned long long)LOAD(s->retries));
        }
    }
    head(o, "maniac_upstream_fallbacks_total", "counter",
         "Requests that moved on from this provider to the next target of an alias");
    for (i = 0; i < used; i++) {
        const mn_metrics_slot *s = &t->slots[i];
        if (visible(s) && s->kind == MN_SK_PROVIDER) {
            outf(o, "maniac_upstream_fallbacks_total{%s} %llu\n", labels(lab, sizeof(lab), s),
                 (unsigned long long)LOAD(s->fallbacks));
        }
    }
    head(o, "maniac_circuit_breaker_state", "gauge",
         "A provider's circuit breaker: 0 closed, 1 open, 2 half-open (the next request probes)");
    for (k = 0; k < nbreakers; k++) {
        char pv[2 * MN_METRICS_PROVIDER_MAX];
        outf(o, "maniac_circuit_breaker_state{gen_ai_provider_name=\"%s\"} %d\n",
             esc(pv, sizeof(pv), breakers[k].provider ? breakers[k].provider : ""),
             breakers[k].state);
    }
}

char *mn_metrics_prometheus(apr_pool_t *p, const mn_metrics_table *t, uint64_t rows_alive,
                            const mn_metrics_breaker *breakers, int nbreakers)
{
    out_t o;
    uint32_t used = __atomic_load_n(&t->used, __ATOMIC_ACQUIRE);
    char *res;
    char ts[32];

    if (used > t->capacity) {
        used = t->capacity;
    }
    memset(&o, 0, sizeof(o));
    mn_buf_init(&o.b);
    fam_requests(&o, t, used);
    fam_hist(&o, t, used, "gen_ai_client_operation_duration_seconds",
             "Whole request, as the client saw it from the gateway", MN_MH_DURATION);
    fam_token_usage(&o, t, used);
    fam_hist(&o, t, used, "gen_ai_server_time_to_first_token_seconds",
             "Time to the first streamed chunk, successful streams", MN_MH_TTFT);
    fam_hist(&o, t, used, "gen_ai_server_time_per_output_token_seconds",
             "Time per output token after the first, successful streams", MN_MH_TPOT);
    fam_hist(&o, t, used, "maniac_gateway_overhead_seconds",
             "Time spent in the gateway, upstream waiting excluded", MN_MH_OVERHEAD);
    fam_model_scalars(&o, t, used, rows_alive);
    fam_providers(&o, t, used, breakers, nbreakers);
    head(&o, "maniac_metrics_start_time_seconds", "gauge",
         "When these counters started (unix time): a reset shows as a change");
    fmt_value(ts, sizeof(ts), (uint64_t)(t->created_us > 0 ? t->created_us : 0), 1);
    outf(&o, "maniac_metrics_start_time_seconds %s\n", ts);
    head(&o, "maniac_metrics_slots", "gauge", "Label slots used and available");
    outf(&o, "maniac_metrics_slots{state=\"used\"} %u\n", (unsigned)used);
    outf(&o, "maniac_metrics_slots{state=\"capacity\"} %u\n", (unsigned)t->capacity);
    res = o.failed ? NULL : apr_pstrmemdup(p, o.b.data ? o.b.data : "", o.b.len);
    mn_buf_free(&o.b);
    return res;
}
