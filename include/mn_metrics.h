/* mn_metrics: the live metrics table and its Prometheus text.
 *
 * The table is one flat block (shared memory in the module, any buffer in a
 * test) of slots: one per configured provider/model pair, a few per provider
 * for model names nobody configured (claimed by the first request that names
 * one), an "other" slot per provider when those are taken, one slot per
 * provider for its upstream attempts, one for requests no provider took.
 * Slots are found by name, never reassigned, so a table handed to the next
 * configuration generation keeps its counts.  Every counter is changed with
 * a relaxed atomic add: no locks on the request path. */
#ifndef MN_METRICS_H
#define MN_METRICS_H

#include <stddef.h>
#include <stdint.h>
#include <apr_pools.h>

#define MN_METRICS_PROVIDER_MAX 64   /* bytes, NUL included */
#define MN_METRICS_MODEL_MAX 128
#define MN_METRICS_DYNAMIC 8         /* unconfigured model names per provider */
#define MN_METRICS_PROCS 64          /* processes whose live streams are counted apart */

/* How a request ended: success, or its error type (bounded set). */
typedef enum {
    MN_ME_SUCCESS = 0,
    MN_ME_INVALID_REQUEST, MN_ME_AUTHENTICATION, MN_ME_PERMISSION, MN_ME_NOT_FOUND,
    MN_ME_RATE_LIMIT, MN_ME_TIMEOUT, MN_ME_UPSTREAM, MN_ME_SERVER, MN_ME_CLIENT_ABORTED,
    MN_ME_OTHER,
    MN_ME_COUNT
} mn_metrics_error;

/* What one upstream attempt got: a status or a transport failure. */
typedef enum {
    MN_MA_2XX = 0, MN_MA_400, MN_MA_401, MN_MA_403, MN_MA_404, MN_MA_408, MN_MA_409,
    MN_MA_413, MN_MA_429, MN_MA_4XX, MN_MA_500, MN_MA_502, MN_MA_503, MN_MA_504,
    MN_MA_529, MN_MA_5XX, MN_MA_UNREACHABLE, MN_MA_TLS, MN_MA_TIMEOUT, MN_MA_RESET,
    MN_MA_EOF, MN_MA_BAD_RESPONSE, MN_MA_CIRCUIT_OPEN, MN_MA_UNAVAILABLE, MN_MA_OTHER,
    MN_MA_COUNT
} mn_metrics_attempt;

typedef enum {
    MN_MH_DURATION = 0, MN_MH_TTFT, MN_MH_TPOT, MN_MH_OVERHEAD, MN_MH_TOKENS_IN, MN_MH_TOKENS_OUT,
    MN_MH_COUNT
} mn_metrics_hist_kind;

#define MN_METRICS_BUCKETS 17        /* the most bounds any histogram has, + Inf */

typedef struct mn_metrics_hist {
    uint64_t bucket[MN_METRICS_BUCKETS];   /* per bucket, not cumulative */
    uint64_t sum;                          /* microseconds, or tokens */
    uint64_t count;
} mn_metrics_hist;

typedef enum {
    MN_SLOT_FREE = 0, MN_SLOT_CLAIMING, MN_SLOT_READY
} mn_metrics_slot_state;

typedef enum {
    MN_SK_MODEL = 1,      /* a configured provider/model pair */
    MN_SK_DYNAMIC,        /* a model name seen at run time (model empty until claimed) */
    MN_SK_OTHER,          /* the provider's models past its dynamic slots */
    MN_SK_PROVIDER,       /* the provider's attempts, retries, fallbacks */
    MN_SK_UNROUTED        /* requests that reached no provider */
} mn_metrics_slot_kind;

typedef struct mn_metrics_slot {
    uint32_t state;
    uint32_t kind;
    char provider[MN_METRICS_PROVIDER_MAX];
    char model[MN_METRICS_MODEL_MAX];
    uint64_t requests[MN_ME_COUNT];
    uint64_t tokens[4];                    /* input, output, cached input, reasoning */
    uint64_t cost_micro_usd;
    int64_t live_streams;                  /* streams of processes without a row */
    uint64_t attempts[MN_MA_COUNT];        /* MN_SK_PROVIDER only */
    uint64_t retries;
    uint64_t fallbacks;
    mn_metrics_hist hist[MN_MH_COUNT];
} mn_metrics_slot;

typedef struct mn_metrics_table {
    uint32_t magic;
    uint32_t layout;                       /* sizeof(mn_metrics_slot): a new build starts over */
    uint32_t capacity;
    uint32_t used;                         /* slots handed out by the parent */
    int64_t created_us;                    /* when counting began (unix time, microseconds) */
    uint64_t generations;                  /* configurations that used this table */
    /* Live streams are counted per process (a row each, after the slots):
     * a process that dies mid-stream takes its row's streams with it. */
    int32_t pids[MN_METRICS_PROCS];
    mn_metrics_slot slots[];
} mn_metrics_table;

/* One finished request, as the glue read it from the request's notes. */
typedef struct mn_metrics_obs {
    mn_metrics_error outcome;
    long prompt_tokens, completion_tokens, cached_tokens, reasoning_tokens;
    int have_usage;
    int64_t cost_micro_usd;
    int64_t duration_us;                   /* < 0: unknown, for each time */
    int64_t ttft_us;
    int64_t overhead_us;
    int stream;
} mn_metrics_obs;

/* A provider's breaker, for the gauge: 0 closed, 1 open, 2 half-open. */
typedef struct mn_metrics_breaker {
    const char *provider;
    int state;
} mn_metrics_breaker;

size_t mn_metrics_size(uint32_t capacity);
void mn_metrics_init(mn_metrics_table *t, uint32_t capacity, int64_t now_us);
/* A table from an earlier generation this build can go on counting in. */
int mn_metrics_reusable(const mn_metrics_table *t, uint32_t capacity);

/* Parent only (configuration time): the slot for provider/model of that kind,
 * the existing one when a slot by that name exists, else a new one; -1 when
 * the table is full. */
int mn_metrics_slot_add(mn_metrics_table *t, const char *provider, const char *model,
                        mn_metrics_slot_kind kind);
/* Any process: among slots[first..first+n), the dynamic slot that holds
 * model, or one claimed for it; -1 when all are taken by other names or the
 * name does not fit. */
int mn_metrics_slot_claim(mn_metrics_table *t, int first, int n, const char *model);

void mn_metrics_record(mn_metrics_table *t, int slot, const mn_metrics_obs *o);
/* attempts: the maniac-attempts note ("prov:200,prov:unreachable,...");
 * provider_slot(name) gives the provider's MN_SK_PROVIDER slot or -1. */
void mn_metrics_record_attempts(mn_metrics_table *t, const char *attempts,
                                int (*provider_slot)(void *baton, const char *name, size_t len),
                                void *baton);
/* The row of process pid: its own, or a free one, or one whose process is
 * gone (alive(pid) == 0), cleared; -1 when every row is in use. */
int mn_metrics_proc_row(mn_metrics_table *t, int32_t pid, int (*alive)(int32_t pid));
/* Which rows belong to running processes (bit i: row i), for the sums. */
uint64_t mn_metrics_rows_alive(const mn_metrics_table *t, int (*alive)(int32_t pid));
/* A stream starts (+1) or ends (-1) in slot, counted in row (-1: the slot's own). */
void mn_metrics_stream_delta(mn_metrics_table *t, int row, int slot, int delta);
/* Live streams of slot: its own count and the rows in rows_alive. */
int64_t mn_metrics_live(const mn_metrics_table *t, int slot, uint64_t rows_alive);

mn_metrics_error mn_metrics_error_of(const char *type);
mn_metrics_attempt mn_metrics_attempt_of(const char *label, size_t len);
/* Bucket index of value in histogram kind (the last one is +Inf). */
int mn_metrics_bucket(mn_metrics_hist_kind kind, uint64_t value);
void mn_metrics_observe(mn_metrics_hist *h, mn_metrics_hist_kind kind, uint64_t value);

/* Prometheus text exposition format 0.0.4 of the table. */
char *mn_metrics_prometheus(apr_pool_t *p, const mn_metrics_table *t, uint64_t rows_alive,
                            const mn_metrics_breaker *breakers, int nbreakers);

/* Totals of the table for mod_status's short form: requests, errors, live
 * streams, tokens in and out, attempts, retries, fallbacks. */
typedef struct mn_metrics_totals {
    uint64_t requests, errors, attempts, retries, fallbacks, tokens_in, tokens_out;
    uint64_t cost_micro_usd;
    int64_t live_streams;
} mn_metrics_totals;
void mn_metrics_sum(const mn_metrics_table *t, uint64_t rows_alive, mn_metrics_totals *out);

const char *mn_metrics_error_name(mn_metrics_error e);
const char *mn_metrics_attempt_name(mn_metrics_attempt a);

#endif
