/* mn_attempts: the retry, key rotation and fallback decision. */
#include "mn_attempts.h"

mn_outcome mn_try_outcome(const mn_try *t)
{
    if (t->sent) {
        return MN_OUTCOME_SUCCESS;
    }
    if (t->upstream_status && (t->upstream_status < 200 || t->upstream_status >= 300)) {
        return mn_outcome_for_status(t->upstream_status);
    }
    /* no answer, or a 2xx that went wrong before the first byte */
    return mn_fail_retryable(t->kind) ? MN_OUTCOME_FAILURE : MN_OUTCOME_CALLER;
}

static mn_next next_of(mn_next_action action, apr_interval_time_t wait, int report)
{
    mn_next n;
    n.action = action;
    n.wait = wait;
    n.report = report;
    return n;
}

mn_next mn_attempt_next(const mn_try *t, double rnd)
{
    mn_outcome outcome;

    if (t->sent) {
        return next_of(MN_NEXT_DONE, 0, 0);
    }
    if (t->kind == MN_FAIL_UNAVAILABLE) {
        return next_of(t->targets_left ? MN_NEXT_TARGET : MN_NEXT_ANSWER, 0, 1);
    }
    if (t->kind == MN_FAIL_CIRCUIT_OPEN) {
        /* when this request's own failures opened it, those are reported */
        return next_of(t->targets_left ? MN_NEXT_TARGET : MN_NEXT_ANSWER, 0, t->try_no == 0);
    }
    outcome = mn_try_outcome(t);
    if ((outcome == MN_OUTCOME_KEY || t->upstream_status == 429) && t->keys_tried < t->nkeys) {
        /* this key is refused: the same request with the next key */
        return next_of(MN_NEXT_KEY, 0, 1);
    }
    if (outcome == MN_OUTCOME_CALLER || outcome == MN_OUTCOME_KEY) {
        /* the caller's (or our key's) fault: no retry, no fallback */
        return next_of(MN_NEXT_ANSWER, 0, 1);
    }
    if (t->try_no >= t->retries) {
        return next_of(t->targets_left ? MN_NEXT_TARGET : MN_NEXT_ANSWER, 0, 1);
    }
    return next_of(MN_NEXT_RETRY,
                   mn_backoff(t->try_no, MN_BACKOFF_BASE, t->retry_after, MN_RETRY_AFTER_CAP,
                              rnd), 1);
}
