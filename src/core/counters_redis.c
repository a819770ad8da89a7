/* mn_counters on Redis through hiredis (see include/mn_counters.h).
 *
 * A batch is one MULTI, INCRBY + EXPIRE per counter, EXEC, pipelined: one
 * round trip, and Redis runs it as one atomic step, so hosts adding to the
 * same window never lose an increment. */
#include <string.h>
#include <sys/time.h>
#include <apr_reslist.h>
#include <apr_strings.h>
#include <hiredis/hiredis.h>
#include "mn_counters.h"

typedef struct {
    const char *host;
    int port;
    struct timeval tv;
    apr_reslist_t *conns;
} redis_store;

static apr_status_t conn_open(void **res, void *params, apr_pool_t *pool)
{
    redis_store *rs = params;
    redisContext *c = redisConnectWithTimeout(rs->host, rs->port, rs->tv);
    if (!c || c->err || redisSetTimeout(c, rs->tv) != REDIS_OK) {
        if (c) {
            redisFree(c);
        }
        return APR_ECONNREFUSED;
    }
    *res = c;
    return APR_SUCCESS;
}

static apr_status_t conn_close(void *res, void *params, apr_pool_t *pool)
{
    redisFree(res);
    return APR_SUCCESS;
}

/* Sends the batch and reads MULTI's OK, one QUEUED per command and EXEC's
 * array; values[i] from the i-th INCRBY.  0, or -1 (the connection is then
 * in an unknown state and is dropped). */
static int run_batch(redisContext *c, const mn_counter_op *ops, int n, int64_t *values,
                     const char **why)
{
    redisReply *reply = NULL;
    int i, ok = 1;

    redisAppendCommand(c, "MULTI");
    for (i = 0; i < n; i++) {
        redisAppendCommand(c, "INCRBY %s %lld", ops[i].key, (long long)ops[i].delta);
        redisAppendCommand(c, "EXPIRE %s %d", ops[i].key, ops[i].ttl);
    }
    redisAppendCommand(c, "EXEC");
    for (i = 0; i < 2 * n + 1; i++) {
        if (redisGetReply(c, (void **)&reply) != REDIS_OK || !reply) {
            *why = c->errstr[0] ? "redis: connection failed" : "redis: no reply";
            return -1;
        }
        ok = ok && reply->type != REDIS_REPLY_ERROR;
        freeReplyObject(reply);
    }
    if (redisGetReply(c, (void **)&reply) != REDIS_OK || !reply) {
        *why = "redis: connection failed";
        return -1;
    }
    if (!ok || reply->type != REDIS_REPLY_ARRAY || reply->elements != (size_t)(2 * n)) {
        *why = "redis: the transaction was refused";
        freeReplyObject(reply);
        return -1;
    }
    for (i = 0; i < n; i++) {
        const redisReply *v = reply->element[2 * i];
        if (v->type != REDIS_REPLY_INTEGER) {
            *why = "redis: INCRBY did not answer a number";
            freeReplyObject(reply);
            return -1;
        }
        if (values) {
            values[i] = (int64_t)v->integer;
        }
    }
    freeReplyObject(reply);
    return 0;
}

static int redis_add(void *self, const mn_counter_op *ops, int n, int64_t *values,
                     apr_time_t now, const char **why)
{
    redis_store *rs = self;
    void *res;
    if (apr_reslist_acquire(rs->conns, &res) != APR_SUCCESS) {
        *why = "redis: cannot connect";
        return -1;
    }
    if (run_batch(res, ops, n, values, why)) {
        apr_reslist_invalidate(rs->conns, res);
        return -1;
    }
    apr_reslist_release(rs->conns, res);
    return 0;
}

mn_counters *mn_counters_redis(apr_pool_t *p, const char *host, int port,
                               apr_interval_time_t timeout)
{
    redis_store *rs = apr_pcalloc(p, sizeof(*rs));
    rs->host = apr_pstrdup(p, host);
    rs->port = port;
    rs->tv.tv_sec = (time_t)apr_time_sec(timeout);
    rs->tv.tv_usec = (suseconds_t)apr_time_usec(timeout);
    /* no connection is made here: the first request makes one, and a dead
     * server at startup is a fail-open/fail-closed matter like any other */
    if (apr_reslist_create(&rs->conns, 0, 16, 1024, apr_time_from_sec(60), conn_open,
                           conn_close, rs, p) != APR_SUCCESS) {
        return NULL;
    }
    apr_reslist_timeout_set(rs->conns, timeout);
    return mn_counters_make(p, redis_add, rs);
}
