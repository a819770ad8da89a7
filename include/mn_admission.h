/* mn_admission: the arithmetic of per-key limits, pure (APR only).
 *
 * A request of a key with limits is admitted by adding to shared counters
 * first and looking second: requests this minute (+1), tokens this minute
 * (+ the reservation), spend this day or month (+ the reserved cost), live
 * streams (+1 for a stream).  Every add is atomic in the counter store, so
 * concurrent requests on every child and host see each other's reservations;
 * when one counter is over its limit the request is refused and all its adds
 * are taken back.  When the request ends its reservation is reconciled to
 * what it really used, in the same windows it was admitted in.
 *
 * Windows are fixed and UTC: the minute (unix time / 60), the day and the
 * month.  Counter names: maniac:rpm:<key>:<minute>, maniac:tpm:<key>:<minute>,
 * maniac:spend:<key>:<YYYYMMDD|YYYYMM>, maniac:streams:<key>. */
#ifndef MN_ADMISSION_H
#define MN_ADMISSION_H

#include <stdint.h>
#include <apr_pools.h>
#include <apr_tables.h>
#include <apr_time.h>
#include <jansson.h>
#include "mn_error.h"
#include "mn_keys.h"

#define MN_COUNTER_KEY_MAX 192

/* One atomic add in the counter store; the store answers the new value. */
typedef struct mn_counter_op {
    char key[MN_COUNTER_KEY_MAX];
    int64_t delta;
    int ttl;                 /* seconds the counter lives after its last add */
} mn_counter_op;

typedef enum { MN_LIMIT_RPM, MN_LIMIT_TPM, MN_LIMIT_BUDGET, MN_LIMIT_STREAMS } mn_limit_kind;

#define MN_ADMISSION_MAX_OPS 4

typedef struct mn_admission {
    int n;                                /* counters this key uses */
    mn_counter_op ops[MN_ADMISSION_MAX_OPS];
    mn_limit_kind kind[MN_ADMISSION_MAX_OPS];
    int64_t limit[MN_ADMISSION_MAX_OPS];
    int64_t value[MN_ADMISSION_MAX_OPS];  /* after the add, from the store */
    apr_interval_time_t reset[MN_ADMISSION_MAX_OPS];   /* until the window ends */
    int64_t tokens_reserved;
    int64_t cost_reserved;                /* micro-USD */
    int stream;                           /* holds a live-stream slot */
} mn_admission;

/* Counters for key k at time now for a request reserving est_tokens tokens
 * and est_cost micro-USD (stream: it is a stream).  a->n is 0 when the key
 * has no limit at all. */
void mn_admission_plan(mn_admission *a, const mn_client_key *k, apr_time_t now, int stream,
                       int64_t est_tokens, int64_t est_cost);

/* With a->value filled: the index of the first counter over its limit, or -1. */
int mn_admission_refused(const mn_admission *a);

/* The adds that take the admission back (after a refusal). Returns count. */
int mn_admission_rollback(const mn_admission *a, mn_counter_op *ops);

/* The adds that reconcile the reservation to tokens and cost really used,
 * and free the stream slot.  Returns count (zero deltas are left out). */
int mn_admission_settle(const mn_admission *a, int64_t tokens, int64_t cost_micro_usd,
                        mn_counter_op *ops);

/* OpenAI's x-ratelimit-* headers for the requests and tokens windows (only
 * those the key limits), from the values the store answered. */
void mn_admission_headers(const mn_admission *a, apr_pool_t *p, apr_table_t *headers);

/* The 429 for refused counter i: err (type, code, message, Retry-After) and
 * the extra headers (x-ratelimit-*, x-should-retry: false for a budget). */
void mn_admission_error(const mn_admission *a, int i, apr_pool_t *p, mn_error *err,
                        apr_table_t *headers);

/* A duration the way OpenAI writes x-ratelimit-reset-*: Go's
 * time.Duration format at millisecond precision ("20ms", "1s", "1.5s",
 * "6m0s", "1h2m3s"). */
void mn_duration_format(apr_interval_time_t d, char *buf, size_t size);

/* Tokens to reserve for a chat request: the prompt's text at ~4 bytes per
 * token plus 4 per message, plus max_completion_tokens / max_tokens, or
 * default_output when the client set neither. */
int64_t mn_estimate_prompt_tokens(json_t *body);
int64_t mn_estimate_output_tokens(json_t *body, int64_t default_output);

#endif
