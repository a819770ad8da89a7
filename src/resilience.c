/* mn_resilience: retry policy and the shared circuit breaker. */
#include <stdlib.h>
#include <apr_lib.h>
#include <apr_date.h>
#include <apr_strings.h>
#include "mn_resilience.h"

mn_outcome mn_outcome_for_status(int status)
{
    if (status >= 200 && status < 300) {
        return MN_OUTCOME_SUCCESS;
    }
    switch (status) {
    case 401: case 403:
        return MN_OUTCOME_KEY;
    case 408: case 409: case 429:
        return MN_OUTCOME_RETRY;
    case 500: case 502: case 503: case 504: case 529:
        return MN_OUTCOME_FAILURE;
    default:
        return status >= 500 ? MN_OUTCOME_FAILURE : MN_OUTCOME_CALLER;
    }
}

apr_interval_time_t mn_backoff(int attempt, apr_interval_time_t base,
                               apr_interval_time_t retry_after, apr_interval_time_t cap,
                               double rnd)
{
    apr_interval_time_t wait;
    if (retry_after >= 0) {
        wait = retry_after;
    }
    else {
        /* full exponential, then +/-50% jitter so retries of many clients
         * do not arrive in step */
        wait = base << (attempt > 10 ? 10 : attempt);
        wait = (apr_interval_time_t)((double)wait * (0.5 + rnd));
    }
    return wait > cap ? cap : wait;
}

apr_interval_time_t mn_parse_retry_after(const char *value, apr_time_t now)
{
    const char *p = value;
    apr_time_t when;
    if (!value || !*value) {
        return -1;
    }
    while (apr_isspace(*p)) {
        p++;
    }
    if (apr_isdigit(*p)) {
        char *end;
        double secs = strtod(p, &end);
        while (apr_isspace(*end)) {
            end++;
        }
        if (*end || !(secs >= 0)) {
            return -1;
        }
        /* clamped before the cast: 1e300 (or inf) does not fit any integer */
        if (secs > (double)MN_RETRY_AFTER_MAX_SEC) {
            secs = (double)MN_RETRY_AFTER_MAX_SEC;
        }
        return (apr_interval_time_t)(secs * APR_USEC_PER_SEC);
    }
    when = apr_date_parse_http(value);
    if (when == APR_DATE_BAD) {
        return -1;
    }
    if (when <= now) {
        return 0;
    }
    return when - now > apr_time_from_sec(MN_RETRY_AFTER_MAX_SEC)
               ? apr_time_from_sec(MN_RETRY_AFTER_MAX_SEC) : when - now;
}

int mn_retry_after_normalise(const char *value, apr_time_t now, char *out, size_t size)
{
    apr_interval_time_t wait = mn_parse_retry_after(value, now);
    if (wait < 0) {
        if (size) {
            out[0] = '\0';
        }
        return -1;
    }
    /* whole seconds, rounded up: a client must not come back too early */
    apr_snprintf(out, size, "%" APR_TIME_T_FMT,
                 (apr_time_t)((wait + APR_USEC_PER_SEC - 1) / APR_USEC_PER_SEC));
    return 0;
}

int mn_breaker_allow(mn_breaker_slot *s, int threshold, apr_interval_time_t cooldown,
                     apr_time_t now, int *probe, apr_interval_time_t *wait)
{
    apr_uint64_t until;
    *probe = 0;
    *wait = 0;
    if (threshold <= 0 || !s) {
        return 1;
    }
    until = apr_atomic_read64(&s->open_until);
    if (until == 0) {
        return 1;
    }
    if ((apr_uint64_t)now < until) {
        *wait = (apr_interval_time_t)(until - (apr_uint64_t)now);
        return 0;
    }
    /* cooldown over: whoever moves open_until forward is the one probe; a
     * prober that dies simply lets the next cooldown elect another */
    if (apr_atomic_cas64(&s->open_until, (apr_uint64_t)(now + cooldown), until) == until) {
        *probe = 1;
        return 1;
    }
    *wait = cooldown;
    return 0;
}

mn_breaker_change mn_breaker_record(mn_breaker_slot *s, int threshold,
                                    apr_interval_time_t cooldown, apr_time_t now,
                                    mn_outcome outcome, int probe)
{
    if (threshold <= 0 || !s) {
        return MN_BREAKER_NO_CHANGE;
    }
    if (outcome == MN_OUTCOME_FAILURE) {
        apr_uint32_t n;
        if (probe) {
            /* open_until was moved forward when the probe was elected */
            return MN_BREAKER_REOPENED;
        }
        n = apr_atomic_inc32(&s->failures) + 1;
        if (n >= (apr_uint32_t)threshold
            && apr_atomic_cas64(&s->open_until, (apr_uint64_t)(now + cooldown), 0) == 0) {
            return MN_BREAKER_OPENED;
        }
        return MN_BREAKER_NO_CHANGE;
    }
    /* the provider answered: a success resets the count; a caller error or
     * a refused key says nothing about health, except that a probe got an
     * answer */
    if (outcome == MN_OUTCOME_SUCCESS || probe) {
        apr_uint64_t until;
        apr_atomic_set32(&s->failures, 0);
        until = apr_atomic_read64(&s->open_until);
        if (until && apr_atomic_cas64(&s->open_until, 0, until) == until) {
            return MN_BREAKER_CLOSED;
        }
    }
    return MN_BREAKER_NO_CHANGE;
}
