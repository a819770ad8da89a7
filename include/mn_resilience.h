/* mn_resilience: what to do when an upstream attempt fails.
 *
 * The retry policy (which outcomes are worth another try, how long to wait,
 * what counts against a provider's health) and the circuit breaker, whose
 * state lives in slots shared by all child processes (apr_shm, created by the
 * glue before the children fork) and is changed with atomics only. */
#ifndef MN_RESILIENCE_H
#define MN_RESILIENCE_H

#include <stddef.h>
#include <apr_time.h>
#include <apr_atomic.h>

/* How one attempt ended, as far as retries and the breaker care. */
typedef enum {
    MN_OUTCOME_SUCCESS = 0,   /* 2xx served */
    MN_OUTCOME_CALLER,        /* the caller's fault (4xx but 408/409/429): final, provider healthy */
    MN_OUTCOME_KEY,           /* 401/403/429: this key is refused, another key may work */
    MN_OUTCOME_RETRY,         /* 408/409/429: try again, provider healthy */
    MN_OUTCOME_FAILURE        /* connect/TLS/timeout/reset/5xx/529: try again, provider unhealthy */
} mn_outcome;

/* Classifies an upstream HTTP status (2xx..5xx). */
mn_outcome mn_outcome_for_status(int status);

/* Wait before retry number `attempt` (0 = first retry): jittered exponential
 * backoff from base, or the upstream's Retry-After (seconds) when given, both
 * capped.  rnd is a uniform value in [0,1) supplied by the caller. */
apr_interval_time_t mn_backoff(int attempt, apr_interval_time_t base,
                               apr_interval_time_t retry_after, apr_interval_time_t cap,
                               double rnd);

/* Longest Retry-After taken from an upstream (and passed on): one day. */
#define MN_RETRY_AFTER_MAX_SEC 86400

/* Parses a Retry-After header (delta seconds, or an HTTP date relative to now),
 * clamped to 0..MN_RETRY_AFTER_MAX_SEC.  Returns -1 when absent or unparsable. */
apr_interval_time_t mn_parse_retry_after(const char *value, apr_time_t now);

/* The Retry-After to send a client for an upstream's value: whole seconds
 * (rounded up, clamped as above) into out.  Returns 0, or -1 with out ""
 * when the value is absent or unparsable (then no header is sent). */
int mn_retry_after_normalise(const char *value, apr_time_t now, char *out, size_t size);

/* One provider's breaker state, shared between processes. */
typedef struct mn_breaker_slot {
    volatile apr_uint32_t failures;     /* consecutive failures */
    volatile apr_uint32_t rr;         /* round-robin key counter */
    volatile apr_uint64_t open_until;   /* 0: closed; else apr_time_t it stays open until */
} mn_breaker_slot;

typedef enum {
    MN_BREAKER_NO_CHANGE = 0,
    MN_BREAKER_OPENED,        /* failures reached the threshold */
    MN_BREAKER_REOPENED,      /* the probe failed */
    MN_BREAKER_CLOSED         /* a probe (or any success) closed it */
} mn_breaker_change;

/* May a request go to this provider now?  Returns 1 (and *probe = 1 when this
 * request is the one probe after the cooldown), or 0 with *wait set to the
 * time until the next probe. threshold 0 = breaker off. */
int mn_breaker_allow(mn_breaker_slot *s, int threshold, apr_interval_time_t cooldown,
                     apr_time_t now, int *probe, apr_interval_time_t *wait);

mn_breaker_change mn_breaker_record(mn_breaker_slot *s, int threshold,
                                    apr_interval_time_t cooldown, apr_time_t now,
                                    mn_outcome outcome, int probe);

#endif
