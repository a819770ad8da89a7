/* mn_counters: the store interface, its parser and the shared-memory store
 * (see include/mn_counters.h). */
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_counters.h"

/* After a failure a network store is left alone this long. */
#define MN_COUNTERS_BACKOFF apr_time_from_sec(1)

struct mn_counters {
    mn_counters_add_fn add;
    void *self;
    volatile apr_time_t down_until;   /* per process; a torn read only shortens a pause */
};

mn_counters *mn_counters_make(apr_pool_t *p, mn_counters_add_fn add, void *self)
{
    mn_counters *c = apr_pcalloc(p, sizeof(*c));
    c->add = add;
    c->self = self;
    return c;
}

int mn_counters_add(mn_counters *c, const mn_counter_op *ops, int n, int64_t *values,
                    apr_time_t now, const char **why)
{
    if (n <= 0) {
        return 0;
    }
    if (c->down_until && now < c->down_until) {
        *why = "the counter store failed less than a second ago";
        return -1;
    }
    if (c->add(c->self, ops, n, values, now, why)) {
        c->down_until = now + MN_COUNTERS_BACKOFF;
        return -1;
    }
    c->down_until = 0;
    return 0;
}

const char *mn_counters_parse(apr_pool_t *p, int argc, const char *const *argv,
                              mn_counters_spec *out)
{
    const char *url, *hp;
    char *host, *colon, *end;
    long port;

    memset(out, 0, sizeof(*out));
    if (argc < 1 || argc > 2) {
        return "expected shm | redis://HOST:PORT | memcache://HOST:PORT [fail-open|fail-closed]";
    }
    if (argc == 2) {
        if (!strcmp(argv[1], "fail-closed")) {
            out->fail_closed = 1;
        }
        else if (strcmp(argv[1], "fail-open")) {
            return apr_psprintf(p, "'%s': expected fail-open or fail-closed", argv[1]);
        }
    }
    url = argv[0];
    if (!strcmp(url, "shm")) {
        out->kind = MN_COUNTERS_SHM;
        return NULL;
    }
    if (!strncmp(url, "redis://", 8)) {
        out->kind = MN_COUNTERS_REDIS;
        hp = url + 8;
    }
    else if (!strncmp(url, "memcache://", 11)) {
        out->kind = MN_COUNTERS_MEMCACHE;
        hp = url + 11;
    }
    else {
        return apr_psprintf(p, "'%s': expected shm, redis://HOST:PORT or memcache://HOST:PORT",
                            url);
    }
    host = apr_pstrdup(p, hp);
    colon = strrchr(host, ':');
    if (!colon || colon == host) {
        return apr_psprintf(p, "'%s': expected HOST:PORT", url);
    }
    *colon = '\0';
    port = strtol(colon + 1, &end, 10);
    if (*end || end == colon + 1 || port < 1 || port > 65535) {
        return apr_psprintf(p, "'%s': the port must be 1-65535", url);
    }
    out->host = host;
    out->port = (int)port;
    return NULL;
}

/* ---- shared memory ------------------------------------------------------ */

/* Open addressing over 64-bit hashes of the counter names (two names with
 * one hash are not a practical concern at 2^-64); a slot whose time ran out
 * is reused.  Probing stops at a never-used slot or after MAX_PROBE slots,
 * so a full table answers "unavailable" quickly rather than scanning. */
#define MAX_PROBE 64

typedef struct {
    uint64_t hash;           /* 0: never used */
    int64_t value;
    int64_t expires;         /* unix seconds */
} shm_slot;

typedef struct {
    pthread_mutex_t lock;
    uint32_t nslots;
    shm_slot slots[];
} shm_table;

apr_size_t mn_counters_shm_size(unsigned slots)
{
    return sizeof(shm_table) + (apr_size_t)slots * sizeof(shm_slot);
}

int mn_counters_shm_init(void *mem, unsigned slots)
{
    shm_table *t = mem;
    pthread_mutexattr_t attr;
    int rc;

    memset(t, 0, mn_counters_shm_size(slots));
    t->nslots = slots;
    if ((rc = pthread_mutexattr_init(&attr)) != 0) {
        return rc;
    }
    /* shared by the children; robust: a child killed while holding it
     * (a few instructions) does not stop the others */
    rc = pthread_mutexattr_setpshared(&attr, PTHREAD_PROCESS_SHARED);
    if (!rc) {
        rc = pthread_mutexattr_setrobust(&attr, PTHREAD_MUTEX_ROBUST);
    }
    if (!rc) {
        rc = pthread_mutex_init(&t->lock, &attr);
    }
    pthread_mutexattr_destroy(&attr);
    return rc;
}

static uint64_t name_hash(const char *s)
{
    uint64_t h = UINT64_C(14695981039346656037);
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= UINT64_C(1099511628211);
    }
    return h ? h : 1;
}

static int64_t sat_add(int64_t a, int64_t b)
{
    if (b > 0 && a > INT64_MAX - b) {
        return INT64_MAX;
    }
    if (b < 0 && a < INT64_MIN - b) {
        return INT64_MIN;
    }
    return a + b;
}

/* The live slot of h, or a free one claimed for it; NULL when none is near. */
static shm_slot *shm_find(shm_table *t, uint64_t h, int64_t now, int claim)
{
    uint32_t i, start = (uint32_t)(h % t->nslots);
    shm_slot *free_slot = NULL;
    for (i = 0; i < MAX_PROBE && i < t->nslots; i++) {
        shm_slot *s = &t->slots[(start + i) % t->nslots];
        int live = s->expires > now;
        if (s->hash == h && live) {
            return s;
        }
        if (!free_slot && (!s->hash || !live)) {
            free_slot = s;
        }
        if (!s->hash) {
            break;
        }
    }
    if (free_slot && claim) {
        free_slot->hash = h;
        free_slot->value = 0;
    }
    return claim ? free_slot : NULL;
}

static int shm_add(void *self, const mn_counter_op *ops, int n, int64_t *values, apr_time_t now,
                   const char **why)
{
    shm_table *t = self;
    int64_t sec = (int64_t)apr_time_sec(now);
    int i, rc = 0;
    int lr = pthread_mutex_lock(&t->lock);

    if (lr == EOWNERDEAD) {
        pthread_mutex_consistent(&t->lock);
    }
    else if (lr) {
        *why = "cannot take the shared-memory counters' lock";
        return -1;
    }
    for (i = 0; i < n; i++) {
        /* taking back from a counter whose window is gone changes nothing */
        shm_slot *s = shm_find(t, name_hash(ops[i].key), sec, ops[i].delta >= 0);
        if (!s) {
            if (ops[i].delta >= 0) {
                *why = "the shared-memory counter table is full";
                rc = -1;
                break;
            }
            if (values) {
                values[i] = 0;
            }
            continue;
        }
        s->value = sat_add(s->value, ops[i].delta);
        s->expires = sec + ops[i].ttl;
        if (values) {
            values[i] = s->value;
        }
    }
    pthread_mutex_unlock(&t->lock);
    return rc;
}

mn_counters *mn_counters_shm(apr_pool_t *p, void *mem)
{
    return mn_counters_make(p, shm_add, mem);
}
