/* mn_counters: shared 64-bit counters for per-key limits.
 *
 * One operation: a batch of atomic adds (mn_counter_op: name, delta, time to
 * live) answered with the new values.  Three stores implement it:
 *   shm       a table in shared memory made before httpd forks its children
 *             (every child of one httpd sees the same counters), guarded by
 *             one process-shared robust mutex held for a few hundred ns;
 *   redis     hiredis: INCRBY + EXPIRE per counter, the batch in one
 *             MULTI/EXEC (one round trip, atomic), every host of a fleet;
 *   memcache  libmemcached: 64-bit incr/decr, `add` for a counter's first use
 *             (with its expiry), every host of a fleet.
 * A store that cannot answer says so (-1 and why); the caller decides
 * between fail-open and fail-closed, never falls back to counting alone.
 * The redis and memcache clients are per process (a connection list shared
 * by its threads) and back off for a second after a failure, so a dead store
 * costs a request no more than one timeout per second per process.  Pure:
 * APR, hiredis, libmemcached, no httpd. */
#ifndef MN_COUNTERS_H
#define MN_COUNTERS_H

#include <stdint.h>
#include <apr_pools.h>
#include <apr_time.h>
#include "mn_admission.h"

typedef enum { MN_COUNTERS_SHM = 0, MN_COUNTERS_REDIS, MN_COUNTERS_MEMCACHE } mn_counters_kind;

typedef struct mn_counters_spec {
    mn_counters_kind kind;
    const char *host;
    int port;
    int fail_closed;
} mn_counters_spec;

/* `ManiacCounters shm | redis://HOST:PORT | memcache://HOST:PORT
 * [fail-open|fail-closed]`.  NULL, or what is wrong. */
const char *mn_counters_parse(apr_pool_t *p, int argc, const char *const *argv,
                              mn_counters_spec *out);

typedef struct mn_counters mn_counters;

/* Adds ops[0..n) in one batch; values (may be NULL) gets the new values.
 * 0, or -1 with *why when the store did not answer (nothing may be assumed
 * about which adds happened: a store that fails mid-batch loses them). */
int mn_counters_add(mn_counters *c, const mn_counter_op *ops, int n, int64_t *values,
                    apr_time_t now, const char **why);

/* shm: the segment's size for slots counters, its one-time initialisation
 * (0 or an errno), and a store on it (in every process that maps it). */
apr_size_t mn_counters_shm_size(unsigned slots);
int mn_counters_shm_init(void *mem, unsigned slots);
mn_counters *mn_counters_shm(apr_pool_t *p, void *mem);

/* Network stores, one per process (call after fork).  timeout bounds
 * connect and every command. */
mn_counters *mn_counters_redis(apr_pool_t *p, const char *host, int port,
                               apr_interval_time_t timeout);
mn_counters *mn_counters_memcache(apr_pool_t *p, const char *host, int port,
                                  apr_interval_time_t timeout);

/* What a store implementation provides. */
typedef int (*mn_counters_add_fn)(void *self, const mn_counter_op *ops, int n, int64_t *values,
                                  apr_time_t now, const char **why);
mn_counters *mn_counters_make(apr_pool_t *p, mn_counters_add_fn add, void *self);

#endif
