/* mn_attempts: what the gateway does after one try at an upstream.
 *
 * The attempt loop (src/httpd/failover.c) is glue: it opens the breaker,
 * makes the try, records it, and then asks this pure unit what next:
 * another key, the same target again after a wait, the next ManiacModel
 * target, or the answer (success, or the error the client gets).  Like
 * nginx's ngx_http_upstream_next(), the whole policy is here, in one place
 * with a test for every branch (t/unit/test_attempts.c). */
#ifndef MN_ATTEMPTS_H
#define MN_ATTEMPTS_H

#include <apr_time.h>
#include "mn_error.h"
#include "mn_resilience.h"

/* How one try ended, as the decision needs it. */
typedef struct mn_try {
    mn_fail kind;                    /* the failure's kind (MN_FAIL_NONE: none) */
    int upstream_status;             /* 0 when no answer came */
    int sent;                        /* the client got its response */
    apr_interval_time_t retry_after; /* the upstream's Retry-After, -1: none */
    int try_no;                      /* retries of this target before this try */
    int retries;                     /* the provider's retries= */
    int keys_tried;                  /* keys of this target used so far (>= 1) */
    int nkeys;                       /* keys the provider has */
    int targets_left;                /* targets after this one */
} mn_try;

typedef enum {
    MN_NEXT_DONE = 0,     /* the client has its answer */
    MN_NEXT_KEY,          /* the same request at once, with the next key */
    MN_NEXT_RETRY,        /* the same target again after `wait` */
    MN_NEXT_TARGET,       /* the next target */
    MN_NEXT_ANSWER        /* no more tries: answer with the error */
} mn_next_action;

typedef struct mn_next {
    mn_next_action action;
    apr_interval_time_t wait;        /* MN_NEXT_RETRY: how long first */
    int report;                      /* this try's error is the one to answer
                                      * with if nothing better comes */
} mn_next;

#define MN_BACKOFF_BASE apr_time_from_msec(100)
#define MN_RETRY_AFTER_CAP apr_time_from_sec(10)

/* The try's outcome for the breaker and the decision: success when sent, the
 * status's class for a non-2xx answer, else by the failure kind (a failure
 * another try may cure, or the caller's own). */
mn_outcome mn_try_outcome(const mn_try *t);

/* What next after try t; rnd in [0,1) is the backoff's jitter. */
mn_next mn_attempt_next(const mn_try *t, double rnd);

#endif
