/* Unit tests for src/core/counters_redis.c and counters_memcache.c against a
 * real redis-server and memcached started here on a free loopback port (the
 * test is skipped when the binary is missing): 64-bit adds, batches, negative
 * deltas, expiry given at first use, and "unavailable" when the server dies. */
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <unistd.h>
#include <apr_strings.h>
#include "harness.h"
#include "mn_counters.h"

extern char **environ;

static int free_port(void)
{
    struct sockaddr_in a;
    socklen_t len = sizeof(a);
    int fd = socket(AF_INET, SOCK_STREAM, 0), port;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (fd < 0 || bind(fd, (struct sockaddr *)&a, sizeof(a)) || getsockname(fd, (struct sockaddr *)&a, &len)) {
        fail_msg("no free port");
    }
    port = ntohs(a.sin_port);
    close(fd);
    return port;
}

static int port_open(int port)
{
    struct sockaddr_in a;
    int fd = socket(AF_INET, SOCK_STREAM, 0), ok;
    memset(&a, 0, sizeof(a));
    a.sin_family = AF_INET;
    a.sin_port = htons((unsigned short)port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ok = connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0;
    close(fd);
    return ok;
}

typedef struct {
    pid_t pid;
    int port;
} server;

/* 0 when started, -1 when the binary is not installed. */
static int start(server *s, int redis)
{
    char port[16];
    int i, rc;
    posix_spawn_file_actions_t fa;
    s->port = free_port();
    /* the servers' own chatter stays out of the test output */
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
    posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
    snprintf(port, sizeof(port), "%d", s->port);
    if (redis) {
        char *argv[] = { "redis-server", "--port", port, "--bind", "127.0.0.1", "--save", "",
                         "--appendonly", "no", NULL };
        rc = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
    }
    else {
        char *argv[] = { "memcached", "-p", port, "-U", "0", "-l", "127.0.0.1", "-u", "nobody",
                         NULL };
        rc = posix_spawnp(&s->pid, argv[0], &fa, NULL, argv, environ);
    }
    posix_spawn_file_actions_destroy(&fa);
    if (rc) {
        s->pid = 0;
        return -1;
    }
    for (i = 0; i < 200 && !port_open(s->port); i++) {
        int st;
        if (waitpid(s->pid, &st, WNOHANG) == s->pid) {
            return -1;    /* exited: not installed (spawnp forks first) or cannot run */
        }
        usleep(20000);
    }
    return port_open(s->port) ? 0 : -1;
}

static void stop(server *s)
{
    int st;
    if (s->pid > 0) {
        kill(s->pid, SIGKILL);
        waitpid(s->pid, &st, 0);
        s->pid = 0;
    }
}

static void op(mn_counter_op *o, const char *k, int64_t d, int ttl)
{
    apr_snprintf(o->key, sizeof(o->key), "%s", k);
    o->delta = d;
    o->ttl = ttl;
}

static void exercise(apr_pool_t *p, int redis)
{
    server s;
    mn_counters *c;
    mn_counter_op ops[3];
    int64_t v[3];
    const char *why = NULL;
    apr_time_t now = apr_time_now();

    if (start(&s, redis)) {
        stop(&s);
        skip();
    }
    c = redis ? mn_counters_redis(p, "127.0.0.1", s.port, apr_time_from_msec(500))
              : mn_counters_memcache(p, "127.0.0.1", s.port, apr_time_from_msec(500));
    assert_non_null(c);
    op(&ops[0], "maniac:rpm:k:1", 1, 120);
    op(&ops[1], "maniac:spend:k:20261130", 3000000000LL, 3600);
    op(&ops[2], "maniac:streams:k", 1, 86400);
    assert_int_equal(mn_counters_add(c, ops, 3, v, now, &why), 0);
    assert_int_equal(v[0], 1);
    assert_int_equal(v[1], 3000000000LL);
    assert_int_equal(v[2], 1);
    assert_int_equal(mn_counters_add(c, ops, 3, v, now, &why), 0);
    assert_int_equal(v[0], 2);
    assert_int_equal(v[1], 6000000000LL);   /* past 2^32: 64-bit counters */
    op(&ops[0], "maniac:spend:k:20261130", -1000000000LL, 3600);
    op(&ops[1], "maniac:streams:k", -1, 86400);
    assert_int_equal(mn_counters_add(c, ops, 2, v, now, &why), 0);
    assert_int_equal(v[0], 5000000000LL);
    assert_int_equal(v[1], 1);

    stop(&s);
    op(&ops[0], "maniac:rpm:k:1", 1, 120);
    assert_int_equal(mn_counters_add(c, ops, 1, v, now, &why), -1);
    assert_non_null(why);
    /* within the back-off the store is not even asked */
    assert_int_equal(mn_counters_add(c, ops, 1, v, now + apr_time_from_msec(10), &why), -1);
    assert_string_equal(why, "the counter store failed less than a second ago");
}

static void test_redis(void **state)
{
    exercise(*state, 1);
}

static void test_memcached(void **state)
{
    exercise(*state, 0);
}

static int setup(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_redis, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memcached, setup, teardown),
    };
    apr_initialize();
    signal(SIGPIPE, SIG_IGN);
    return cmocka_run_group_tests(tests, NULL, NULL);
}
