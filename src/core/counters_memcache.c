/* mn_counters on memcached through libmemcached (see include/mn_counters.h).
 *
 * memcached's incr/decr are atomic on 64-bit unsigned values; a counter's
 * first use is an `add` (which fails, and then the incr is retried, when
 * another host created it first), and the expiry is the one given at that
 * add: window counters are named after their window, so they need no other.
 * decr stops at 0 and a missing counter is not recreated by a decrement. */
#include <stdio.h>
#include <string.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <libmemcached/memcached.h>
#include "mn_counters.h"

typedef struct {
    const char *host;
    int port;
    apr_interval_time_t timeout;
    apr_reslist_t *conns;
} mc_store;

static apr_status_t conn_open(void **res, void *params, apr_pool_t *pool)
{
    mc_store *ms = params;
    memcached_st *m = memcached_create(NULL);
    uint64_t ms_timeout = (uint64_t)apr_time_as_msec(ms->timeout);
    if (!m) {
        return APR_ENOMEM;
    }
    if (memcached_server_add(m, ms->host, (in_port_t)ms->port) != MEMCACHED_SUCCESS) {
        memcached_free(m);
        return APR_EINVAL;
    }
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_CONNECT_TIMEOUT, ms_timeout ? ms_timeout : 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_POLL_TIMEOUT, ms_timeout ? ms_timeout : 1);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RCV_TIMEOUT, (uint64_t)ms->timeout);
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_SND_TIMEOUT, (uint64_t)ms->timeout);
    /* our own back-off decides when to try again, not libmemcached's */
    memcached_behavior_set(m, MEMCACHED_BEHAVIOR_RETRY_TIMEOUT, 0);
    *res = m;
    return APR_SUCCESS;
}

static apr_status_t conn_close(void *res, void *params, apr_pool_t *pool)
{
    memcached_free(res);
    return APR_SUCCESS;
}

/* libmemcached's incr/decr take 32-bit steps on 64-bit values */
static memcached_return_t step(memcached_st *m, const char *key, size_t klen, int64_t delta,
                               uint64_t *v)
{
    memcached_return_t rc;
    uint64_t left = delta < 0 ? (uint64_t)-delta : (uint64_t)delta;
    do {
        uint32_t s = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
        rc = delta < 0 ? memcached_decrement(m, key, klen, s, v)
                       : memcached_increment(m, key, klen, s, v);
        left -= s;
    } while (rc == MEMCACHED_SUCCESS && left);
    return rc;
}

static int incr(memcached_st *m, const mn_counter_op *op, int64_t *value)
{
    size_t klen = strlen(op->key);
    uint64_t v = 0;
    memcached_return_t rc;
    int tries;

    if (op->delta < 0) {
        rc = step(m, op->key, klen, op->delta, &v);
        *value = rc == MEMCACHED_SUCCESS ? (int64_t)v : 0;
        return rc == MEMCACHED_SUCCESS || rc == MEMCACHED_NOTFOUND ? 0 : -1;
    }
    for (tries = 0; tries < 3; tries++) {
        char first[32];
        rc = step(m, op->key, klen, op->delta, &v);
        if (rc == MEMCACHED_SUCCESS) {
            *value = (int64_t)v;
            return 0;
        }
        if (rc != MEMCACHED_NOTFOUND) {
            return -1;
        }
        snprintf(first, sizeof(first), "%lld", (long long)op->delta);
        rc = memcached_add(m, op->key, klen, first, strlen(first), (time_t)op->ttl, 0);
        if (rc == MEMCACHED_SUCCESS) {
            *value = op->delta;
            return 0;
        }
        if (rc != MEMCACHED_NOTSTORED && rc != MEMCACHED_DATA_EXISTS) {
            return -1;
        }
        /* another host created it in between: increment that one */
    }
    return -1;
}

static int mc_add(void *self, const mn_counter_op *ops, int n, int64_t *values, apr_time_t now,
                  const char **why)
{
    mc_store *ms = self;
    void *res;
    int i;
    if (apr_reslist_acquire(ms->conns, &res) != APR_SUCCESS) {
        *why = "memcached: cannot connect";
        return -1;
    }
    for (i = 0; i < n; i++) {
        int64_t v;
        if (incr(res, &ops[i], &v)) {
            *why = "memcached: no answer";
            apr_reslist_invalidate(ms->conns, res);
            return -1;
        }
        if (values) {
            values[i] = v;
        }
    }
    apr_reslist_release(ms->conns, res);
    return 0;
}

mn_counters *mn_counters_memcache(apr_pool_t *p, const char *host, int port,
                                  apr_interval_time_t timeout)
{
    mc_store *ms = apr_pcalloc(p, sizeof(*ms));
    ms->host = apr_pstrdup(p, host);
    ms->port = port;
    ms->timeout = timeout;
    if (apr_reslist_create(&ms->conns, 0, 16, 1024, apr_time_from_sec(60), conn_open,
                           conn_close, ms, p) != APR_SUCCESS) {
        return NULL;
    }
    apr_reslist_timeout_set(ms->conns, timeout);
    return mn_counters_make(p, mc_add, ms);
}
