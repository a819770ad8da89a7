/* mn_admission: limits arithmetic (see include/mn_admission.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_admission.h"

#define TTL_MINUTE 120
#define TTL_DAY (2 * 86400 + 3600)
#define TTL_MONTH (35 * 86400)
#define TTL_STREAMS 86400

/* fmt has %s for the key's name and, unless it is the streams gauge, %ld for
 * the window's stamp. */
static void add_op(mn_admission *a, mn_limit_kind kind, int64_t limit, int64_t delta, int ttl,
                   apr_interval_time_t reset, const char *fmt, const char *name, long stamp)
{
    int i = a->n++;
    if (kind == MN_LIMIT_STREAMS) {
        apr_snprintf(a->ops[i].key, sizeof(a->ops[i].key), fmt, name);
    }
    else {
        apr_snprintf(a->ops[i].key, sizeof(a->ops[i].key), fmt, name, stamp);
    }
    a->ops[i].delta = delta;
    a->ops[i].ttl = ttl;
    a->kind[i] = kind;
    a->limit[i] = limit;
    a->value[i] = 0;
    a->reset[i] = reset;
}

/* The UTC day (YYYYMMDD) or month (YYYYMM) of now, and the time left in it. */
static long calendar_window(apr_time_t now, int month, apr_interval_time_t *left)
{
    apr_time_exp_t tm, next;
    apr_time_t end;
    apr_time_exp_gmt(&tm, now);
    next = tm;
    next.tm_usec = next.tm_sec = next.tm_min = next.tm_hour = 0;
    if (month) {
        next.tm_mday = 1;
        if (++next.tm_mon == 12) {
            next.tm_mon = 0;
            next.tm_year++;
        }
    }
    if (apr_time_exp_gmt_get(&end, &next) != APR_SUCCESS) {
        end = now;
    }
    if (!month) {
        end += apr_time_from_sec(86400);
    }
    *left = end - now;
    return month ? (long)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1
                 : ((long)(tm.tm_year + 1900) * 100 + tm.tm_mon + 1) * 100 + tm.tm_mday;
}

void mn_admission_plan(mn_admission *a, const mn_client_key *k, apr_time_t now, int stream,
                       int64_t est_tokens, int64_t est_cost)
{
    long minute = (long)(apr_time_sec(now) / 60);
    apr_interval_time_t minute_left = apr_time_from_sec((apr_time_t)(minute + 1) * 60) - now;

    memset(a, 0, sizeof(*a));
    if (k->rpm > 0) {
        add_op(a, MN_LIMIT_RPM, k->rpm, 1, TTL_MINUTE, minute_left, "maniac:rpm:%s:%ld",
               k->name, minute);
    }
    if (k->tpm > 0) {
        add_op(a, MN_LIMIT_TPM, k->tpm, est_tokens, TTL_MINUTE, minute_left,
               "maniac:tpm:%s:%ld", k->name, minute);
        a->tokens_reserved = est_tokens;
    }
    if (k->budget_micro_usd > 0 && k->budget_period != MN_BUDGET_NONE) {
        int month = k->budget_period == MN_BUDGET_MONTH;
        apr_interval_time_t left;
        long stamp = calendar_window(now, month, &left);
        add_op(a, MN_LIMIT_BUDGET, k->budget_micro_usd, est_cost, month ? TTL_MONTH : TTL_DAY,
               left, "maniac:spend:%s:%ld", k->name, stamp);
        a->cost_reserved = est_cost;
    }
    if (k->max_streams > 0 && stream) {
        add_op(a, MN_LIMIT_STREAMS, k->max_streams, 1, TTL_STREAMS, 0, "maniac:streams:%s", k->name,
               0L);
        a->stream = 1;
    }
}

int mn_admission_refused(const mn_admission *a)
{
    int i;
    for (i = 0; i < a->n; i++) {
        /* a counter already at its limit refuses even a request that adds
         * nothing to it (a reserved cost of 0 when no price is known) */
        if (a->value[i] > a->limit[i] || (a->ops[i].delta == 0 && a->value[i] >= a->limit[i])) {
            return i;
        }
    }
    return -1;
}

int mn_admission_rollback(const mn_admission *a, mn_counter_op *ops)
{
    int i, n = 0;
    for (i = 0; i < a->n; i++) {
        if (a->ops[i].delta) {
            ops[n] = a->ops[i];
            ops[n].delta = -a->ops[i].delta;
            n++;
        }
    }
    return n;
}

int mn_admission_settle(const mn_admission *a, int64_t tokens, int64_t cost_micro_usd,
                        mn_counter_op *ops)
{
    int i, n = 0;
    for (i = 0; i < a->n; i++) {
        int64_t delta = 0;
        switch (a->kind[i]) {
        case MN_LIMIT_TPM:
            delta = tokens - a->tokens_reserved;
            break;
        case MN_LIMIT_BUDGET:
            delta = cost_micro_usd - a->cost_reserved;
            break;
        case MN_LIMIT_STREAMS:
            delta = -1;
            break;
        default:
            break;
        }
        if (delta) {
            ops[n] = a->ops[i];
            ops[n].delta = delta;
            n++;
        }
    }
    return n;
}

void mn_duration_format(apr_interval_time_t d, char *buf, size_t size)
{
    int64_t ms = d <= 0 ? 0 : (int64_t)((d + 999) / 1000), h, m, s, frac;
    char secs[32];
    int len;

    if (ms < 1000) {
        apr_snprintf(buf, size, "%" APR_INT64_T_FMT "ms", ms);
        return;
    }
    h = ms / 3600000;
    m = ms / 60000 % 60;
    s = ms / 1000 % 60;
    frac = ms % 1000;
    len = apr_snprintf(secs, sizeof(secs), "%" APR_INT64_T_FMT, s);
    if (frac) {
        /* Go trims trailing zeros of the fraction: 1.5s, 1.25s, 1.005s */
        char f[8];
        int fl;
        apr_snprintf(f, sizeof(f), "%03d", (int)frac);
        for (fl = 3; f[fl - 1] == '0'; fl--) {
        }
        apr_snprintf(secs + len, sizeof(secs) - (size_t)len, ".%.*s", fl, f);
    }
    if (h) {
        apr_snprintf(buf, size, "%" APR_INT64_T_FMT "h%" APR_INT64_T_FMT "m%ss", h, m, secs);
    }
    else if (m) {
        apr_snprintf(buf, size, "%" APR_INT64_T_FMT "m%ss", m, secs);
    }
    else {
        apr_snprintf(buf, size, "%ss", secs);
    }
}

static void window_headers(const mn_admission *a, int i, const char *what, apr_pool_t *p,
                           apr_table_t *headers)
{
    char reset[48];
    int64_t left = a->limit[i] - a->value[i];
    mn_duration_format(a->reset[i], reset, sizeof(reset));
    apr_table_setn(headers, apr_pstrcat(p, "x-ratelimit-limit-", what, NULL),
                   apr_psprintf(p, "%" APR_INT64_T_FMT, a->limit[i]));
    apr_table_setn(headers, apr_pstrcat(p, "x-ratelimit-remaining-", what, NULL),
                   apr_psprintf(p, "%" APR_INT64_T_FMT, left > 0 ? left : 0));
    apr_table_setn(headers, apr_pstrcat(p, "x-ratelimit-reset-", what, NULL),
                   apr_pstrdup(p, reset));
}

void mn_admission_headers(const mn_admission *a, apr_pool_t *p, apr_table_t *headers)
{
    int i;
    for (i = 0; i < a->n; i++) {
        if (a->kind[i] == MN_LIMIT_RPM) {
            window_headers(a, i, "requests", p, headers);
        }
        else if (a->kind[i] == MN_LIMIT_TPM) {
            window_headers(a, i, "tokens", p, headers);
        }
    }
}

void mn_admission_error(const mn_admission *a, int i, apr_pool_t *p, mn_error *err,
                        apr_table_t *headers)
{
    int64_t used = a->value[i] - a->ops[i].delta;
    apr_interval_time_t wait = a->reset[i];
    int64_t secs;
    char in[48];

    mn_admission_headers(a, p, headers);
    switch (a->kind[i]) {
    case MN_LIMIT_BUDGET:
        mn_error_set(err, 429, "insufficient_quota", NULL, "insufficient_quota",
                     "You exceeded your current quota: this key's %s budget is spent. "
                     "It renews at the start of the next %s (UTC).",
                     a->ops[i].ttl == TTL_MONTH ? "monthly" : "daily",
                     a->ops[i].ttl == TTL_MONTH ? "month" : "day");
        /* the openai SDKs retry every 429 unless told not to */
        apr_table_setn(headers, "x-should-retry", "false");
        return;
    case MN_LIMIT_STREAMS:
        mn_error_set(err, 429, "requests", NULL, "rate_limit_exceeded",
                     "Too many concurrent streams for this key: limit %" APR_INT64_T_FMT
                     ". Please try again when one of them has ended.", a->limit[i]);
        wait = apr_time_from_sec(1);
        break;
    default:
        mn_duration_format(wait, in, sizeof(in));
        mn_error_set(err, 429, a->kind[i] == MN_LIMIT_RPM ? "requests" : "tokens", NULL,
                     "rate_limit_exceeded",
                     "Rate limit reached for %s per min (%s): Limit %" APR_INT64_T_FMT
                     ", Used %" APR_INT64_T_FMT ", Requested %" APR_INT64_T_FMT
                     ". Please try again in %s.",
                     a->kind[i] == MN_LIMIT_RPM ? "requests" : "tokens",
                     a->kind[i] == MN_LIMIT_RPM ? "RPM" : "TPM", a->limit[i],
                     used > 0 ? used : 0, a->ops[i].delta, in);
        break;
    }
    secs = (int64_t)((wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC);
    apr_snprintf(err->retry_after, sizeof(err->retry_after), "%" APR_INT64_T_FMT,
                 secs > 0 ? secs : 1);
}

static int64_t text_bytes(json_t *content)
{
    size_t i;
    json_t *part;
    int64_t n = 0;
    if (json_is_string(content)) {
        return (int64_t)json_string_length(content);
    }
    json_array_foreach(content, i, part) {
        json_t *t = json_object_get(part, "text");
        if (json_is_string(t)) {
            n += (int64_t)json_string_length(t);
        }
    }
    return n;
}

int64_t mn_estimate_prompt_tokens(json_t *body)
{
    json_t *msgs = json_object_get(body, "messages"), *m, *tools = json_object_get(body, "tools");
    size_t i, j;
    int64_t bytes = 0, n = 0;
    json_array_foreach(msgs, i, m) {
        json_t *tc;
        bytes += text_bytes(json_object_get(m, "content"));
        json_array_foreach(json_object_get(m, "tool_calls"), j, tc) {
            bytes += (int64_t)json_string_length(
                json_object_get(json_object_get(tc, "function"), "arguments"));
        }
        n += 4;
    }
    if (json_is_array(tools)) {
        /* tool schemas are prompt too; their JSON size is a fair measure */
        char *s = json_dumps(tools, JSON_COMPACT);
        size_t len = s ? strlen(s) : 0;
        if (s) {
            bytes += (int64_t)len;
            free(s);
        }
    }
    return n + (bytes + 3) / 4;
}

int64_t mn_estimate_output_tokens(json_t *body, int64_t default_output)
{
    json_t *v = json_object_get(body, "max_completion_tokens");
    if (!json_is_integer(v) || json_integer_value(v) <= 0) {
        v = json_object_get(body, "max_tokens");
    }
    if (json_is_integer(v) && json_integer_value(v) > 0) {
        return (int64_t)json_integer_value(v);
    }
    return default_output;
}
