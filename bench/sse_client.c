/* sse_client: the measuring client of bench/run.sh (loopback only).
 *
 *   sse_client ttft   PORT PATH BODYFILE COUNT
 *       COUNT streams one after another on one keep-alive connection: time to
 *       the first "data:" byte, time to the end of the response, and the
 *       per-chunk relay latency (now - the "#<us>" stamp the mock puts in
 *       each content chunk; CLOCK_MONOTONIC is shared by the processes).
 *   sse_client slow   PORT PATH BODYFILE RCVBUF READSZ SLEEP_US
 *       one stream read slowly (small receive buffer, READSZ bytes then a
 *       pause), so the server side has to apply backpressure.
 *   sse_client hold   PORT PATH BODYFILE K FIRST_S HOLD_S PROBE_PATH PROBE_BODYFILE
 *       opens K streams at once, waits up to FIRST_S seconds for their first
 *       data, then sends probe requests (one at a time, 100 ms apart) while
 *       holding them for HOLD_S seconds; reports how many streams started,
 *       the first probe's latency and all probes' (or that none was
 *       answered: it queued behind the held streams).
 *   sse_client paced  PORT PATH BODYFILE C LIMIT_S
 *       C streams at once (a paced upstream, e.g. -d20), each read to its end
 *       (or LIMIT_S): content chunks delivered, their inter-arrival gap at the
 *       client against the spacing the mock stamped into them (its pacing),
 *       relay latency and time to first data.
 *   sse_client repeat PORT PATH BODYFILE N
 *       N requests one after another on a keep-alive connection (load for
 *       callgrind).
 * Every mode prints one JSON object on stdout. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void die(const char *what)
{
    perror(what);
    exit(1);
}

/* ---- growable sample array ---------------------------------------------- */

typedef struct {
    long long *v;
    size_t n, cap;
} samples;

static void push(samples *s, long long x)
{
    if (s->n == s->cap) {
        s->cap = s->cap ? s->cap * 2 : 1024;
        s->v = realloc(s->v, s->cap * sizeof(*s->v));
        if (!s->v) {
            die("realloc");
        }
    }
    s->v[s->n++] = x;
}

static int cmp_ll(const void *a, const void *b)
{
    long long x = *(const long long *)a, y = *(const long long *)b;
    return x < y ? -1 : x > y;
}

static long long pct(samples *s, double p)
{
    size_t i;
    if (!s->n) {
        return -1;
    }
    qsort(s->v, s->n, sizeof(*s->v), cmp_ll);
    i = (size_t)(p / 100.0 * (double)(s->n - 1) + 0.5);
    return s->v[i];
}

static void print_stats(const char *name, samples *s)
{
    if (!s->n) {
        printf("\"%s\":null", name);
        return;
    }
    printf("\"%s\":{\"n\":%zu,\"min\":%lld,\"p50\":%lld,\"p90\":%lld,\"p99\":%lld,\"max\":%lld}",
           name, s->n, pct(s, 0), pct(s, 50), pct(s, 90), pct(s, 99), pct(s, 100));
}

/* ---- request ------------------------------------------------------------ */

static char *read_file(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    char *buf;
    long n;
    if (!f) {
        die(path);
    }
    fseek(f, 0, SEEK_END);
    n = ftell(f);
    fseek(f, 0, SEEK_SET);
    buf = malloc((size_t)n + 1);
    if (!buf || fread(buf, 1, (size_t)n, f) != (size_t)n) {
        die("read body");
    }
    fclose(f);
    buf[n] = '\0';
    *len = (size_t)n;
    return buf;
}

static char *build_request(const char *path, const char *bodyfile, size_t *len)
{
    size_t blen;
    char *body = read_file(bodyfile, &blen);
    char *req = malloc(blen + 512);
    int n;
    if (!req) {
        die("malloc");
    }
    n = snprintf(req, 512, "POST %s HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                           "Content-Type: application/json\r\nAccept: */*\r\n"
                           "Content-Length: %zu\r\n\r\n", path, blen);
    memcpy(req + n, body, blen);
    free(body);
    *len = (size_t)n + blen;
    return req;
}

static int connect_to(int port, int rcvbuf, int nonblock)
{
    struct sockaddr_in sa;
    int one = 1;
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | (nonblock ? SOCK_NONBLOCK : 0), 0);
    if (fd < 0) {
        die("socket");
    }
    if (rcvbuf > 0) {
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 && errno != EINPROGRESS) {
        close(fd);
        return -1;
    }
    return fd;
}

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = send(fd, p, n, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

/* ---- response parser ------------------------------------------------------ */

enum { R_HEAD, R_CL, R_CHUNK_SIZE, R_CHUNK_DATA, R_CHUNK_CRLF, R_TRAILER, R_EOF, R_DONE,
       R_ERROR };

typedef struct {
    int state;
    char head[16384];
    size_t head_len;
    int status;
    int keepalive;
    unsigned long long remaining;   /* CL bytes left, or chunk bytes left */
    char line[64];
    size_t line_len;
    /* body scanning */
    int line_start;                 /* at the start of a body line */
    size_t data_match;              /* bytes of "data:" matched at line start */
    size_t done_match;              /* bytes of "[DONE]" matched */
    int in_stamp;                   /* after '#' */
    long long stamp;
    int stamp_digits;
    long frames;
    int saw_done;
    long long t_first_data;
    long long t_end;
    samples *chunk_lat;             /* may be NULL */
    samples *gaps;                  /* content chunk inter-arrival at the client (may be NULL) */
    samples *paces;                 /* the mock's own spacing of those chunks (may be NULL) */
    long long last_t, last_stamp;   /* of the previous content chunk */
    long stamps;                    /* content chunks seen */
    unsigned long long body_bytes;
} resp;

static void resp_init(resp *r, samples *chunk_lat)
{
    memset(r, 0, sizeof(*r));
    r->state = R_HEAD;
    r->line_start = 1;
    r->chunk_lat = chunk_lat;
}

static void scan_body(resp *r, const char *p, size_t n, long long t)
{
    static const char DATA[] = "data:", DONE[] = "[DONE]";
    size_t i;
    r->body_bytes += n;
    for (i = 0; i < n; i++) {
        char ch = p[i];
        if (r->in_stamp) {
            if (ch >= '0' && ch <= '9' && r->stamp_digits < 18) {
                r->stamp = r->stamp * 10 + (ch - '0');
                r->stamp_digits++;
                continue;
            }
            if (r->stamp_digits) {
                if (r->chunk_lat) {
                    push(r->chunk_lat, t - r->stamp);
                }
                /* two chunks read by one recv arrive together: gap 0 */
                if (r->stamps && r->gaps) {
                    push(r->gaps, t - r->last_t);
                    push(r->paces, r->stamp - r->last_stamp);
                }
                r->stamps++;
                r->last_t = t;
                r->last_stamp = r->stamp;
            }
            r->in_stamp = 0;
        }
        if (ch == '#') {
            r->in_stamp = 1;
            r->stamp = 0;
            r->stamp_digits = 0;
        }
        if (r->line_start || r->data_match) {
            if (ch == DATA[r->data_match]) {
                if (++r->data_match == 5) {
                    r->frames++;
                    if (!r->t_first_data) {
                        r->t_first_data = t;
                    }
                    r->data_match = 0;
                }
            }
            else {
                r->data_match = 0;
            }
        }
        if (ch == DONE[r->done_match]) {
            if (++r->done_match == 6) {
                r->saw_done = 1;
                r->done_match = 0;
            }
        }
        else {
            r->done_match = ch == '[';
        }
        r->line_start = ch == '\n';
    }
}

static const char *head_value(const resp *r, const char *name, size_t *vlen)
{
    size_t nlen = strlen(name);
    const char *p = memchr(r->head, '\n', r->head_len), *end = r->head + r->head_len;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) {
            break;
        }
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
            const char *v = p + nlen + 1;
            while (v < eol && (*v == ' ' || *v == '\t')) {
                v++;
            }
            *vlen = (size_t)(eol - v);
            while (*vlen && (v[*vlen - 1] == '\r' || v[*vlen - 1] == ' ')) {
                (*vlen)--;
            }
            return v;
        }
        p = eol;
    }
    return NULL;
}

/* Feeds received bytes; returns bytes consumed (all, unless the response
 * ended inside the buffer). */
static size_t resp_feed(resp *r, const char *p, size_t n, long long t)
{
    size_t i = 0;
    while (i < n && r->state != R_DONE && r->state != R_ERROR) {
        switch (r->state) {
        case R_HEAD: {
            char *hend;
            size_t take = n - i;
            if (take > sizeof(r->head) - 1 - r->head_len) {
                take = sizeof(r->head) - 1 - r->head_len;
            }
            if (!take) {
                r->state = R_ERROR;
                break;
            }
            memcpy(r->head + r->head_len, p + i, take);
            r->head[r->head_len + take] = '\0';
            hend = strstr(r->head, "\r\n\r\n");
            if (!hend) {
                r->head_len += take;
                i += take;
                break;
            }
            {
                size_t hl = (size_t)(hend - r->head) + 4;
                const char *v;
                size_t vlen;
                i += hl - r->head_len;
                r->head_len = hl;
                r->head[hl] = '\0';
                r->status = atoi(r->head + 9);
                if (r->status == 100) {         /* interim: start over */
                    r->head_len = 0;
                    break;
                }
                r->keepalive = !strncmp(r->head, "HTTP/1.1", 8);
                v = head_value(r, "Connection", &vlen);
                if (v && vlen >= 5 && !strncasecmp(v, "close", 5)) {
                    r->keepalive = 0;
                }
                if ((v = head_value(r, "Transfer-Encoding", &vlen)) && vlen >= 7
                    && !strncasecmp(v, "chunked", 7)) {
                    r->state = R_CHUNK_SIZE;
                    r->line_len = 0;
                }
                else if ((v = head_value(r, "Content-Length", &vlen))) {
                    r->remaining = strtoull(v, NULL, 10);
                    r->state = r->remaining ? R_CL : R_DONE;
                }
                else {
                    r->state = R_EOF;
                    r->keepalive = 0;
                }
            }
            break;
        }
        case R_CL: {
            size_t take = n - i;
            if (take > r->remaining) {
                take = (size_t)r->remaining;
            }
            scan_body(r, p + i, take, t);
            i += take;
            r->remaining -= take;
            if (!r->remaining) {
                r->state = R_DONE;
            }
            break;
        }
        case R_EOF:
            scan_body(r, p + i, n - i, t);
            i = n;
            break;
        case R_CHUNK_SIZE:
        case R_CHUNK_CRLF:
        case R_TRAILER: {
            char ch = p[i++];
            if (ch != '\n') {
                if (r->line_len < sizeof(r->line) - 1) {
                    r->line[r->line_len++] = ch;
                }
                break;
            }
            r->line[r->line_len] = '\0';
            if (r->line_len && r->line[r->line_len - 1] == '\r') {
                r->line[--r->line_len] = '\0';
            }
            if (r->state == R_CHUNK_CRLF) {
                r->state = R_CHUNK_SIZE;
            }
            else if (r->state == R_TRAILER) {
                if (!r->line_len) {
                    r->state = R_DONE;
                }
            }
            else {
                r->remaining = strtoull(r->line, NULL, 16);
                r->state = r->remaining ? R_CHUNK_DATA : R_TRAILER;
            }
            r->line_len = 0;
            break;
        }
        case R_CHUNK_DATA: {
            size_t take = n - i;
            if (take > r->remaining) {
                take = (size_t)r->remaining;
            }
            scan_body(r, p + i, take, t);
            i += take;
            r->remaining -= take;
            if (!r->remaining) {
                r->state = R_CHUNK_CRLF;
            }
            break;
        }
        default:
            break;
        }
    }
    if (r->state == R_DONE && !r->t_end) {
        r->t_end = t;
    }
    return i;
}

/* Reads one whole response from a blocking socket.  0 when complete. */
static int read_response(int fd, resp *r, int read_sz, int sleep_us, char *leftover,
                         size_t *left_len)
{
    static char buf[1 << 16];
    if (read_sz <= 0 || read_sz > (int)sizeof(buf)) {
        read_sz = (int)sizeof(buf);
    }
    for (;;) {
        ssize_t got = recv(fd, buf, (size_t)read_sz, 0);
        long long t = now_us();
        size_t used;
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got <= 0) {
            if (r->state == R_EOF) {
                r->state = R_DONE;
                r->t_end = t;
                return 0;
            }
            return -1;
        }
        used = resp_feed(r, buf, (size_t)got, t);
        if (r->state == R_ERROR) {
            return -1;
        }
        if (r->state == R_DONE) {
            if (leftover && left_len) {
                *left_len = (size_t)got - used;
                memcpy(leftover, buf + used, *left_len);
            }
            return 0;
        }
        if (sleep_us > 0) {
            usleep((useconds_t)sleep_us);
        }
    }
}

/* ---- modes ------------------------------------------------------------------ */

static int mode_ttft(int port, const char *path, const char *bodyfile, int count)
{
    size_t rlen;
    char *req = build_request(path, bodyfile, &rlen);
    samples ttft = { 0 }, total = { 0 }, lat = { 0 }, frames = { 0 };
    int fd = -1, i, ok = 0, errors = 0, non200 = 0, no_done = 0;

    for (i = 0; i < count; i++) {
        resp r;
        long long t0;
        if (fd < 0 && (fd = connect_to(port, 0, 0)) < 0) {
            errors++;
            continue;
        }
        resp_init(&r, &lat);
        t0 = now_us();
        if (write_all(fd, req, rlen) < 0 || read_response(fd, &r, 0, 0, NULL, NULL) < 0) {
            errors++;
            close(fd);
            fd = -1;
            continue;
        }
        if (r.status != 200) {
            non200++;
        }
        else if (!r.saw_done) {
            no_done++;
        }
        else {
            ok++;
            push(&ttft, r.t_first_data - t0);
            push(&total, r.t_end - t0);
            push(&frames, r.frames);
        }
        if (!r.keepalive) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    printf("{\"mode\":\"ttft\",\"count\":%d,\"ok\":%d,\"errors\":%d,\"non200\":%d,"
           "\"no_done\":%d,", count, ok, errors, non200, no_done);
    print_stats("ttft_us", &ttft);
    printf(",");
    print_stats("total_us", &total);
    printf(",");
    print_stats("chunk_lat_us", &lat);
    printf(",");
    print_stats("frames", &frames);
    printf("}\n");
    return ok == count ? 0 : 1;
}

static int mode_slow(int port, const char *path, const char *bodyfile, int rcvbuf,
                     int readsz, int sleep_us)
{
    size_t rlen;
    char *req = build_request(path, bodyfile, &rlen);
    resp r;
    int fd = connect_to(port, rcvbuf, 0), rc;
    long long t0 = now_us();

    if (fd < 0) {
        die("connect");
    }
    resp_init(&r, NULL);
    rc = write_all(fd, req, rlen) < 0 ? -1 : read_response(fd, &r, readsz, sleep_us, NULL, NULL);
    printf("{\"mode\":\"slow\",\"complete\":%s,\"status\":%d,\"frames\":%ld,\"done\":%s,"
           "\"body_bytes\":%llu,\"seconds\":%.3f}\n", rc == 0 ? "true" : "false", r.status,
           r.frames, r.saw_done ? "true" : "false", r.body_bytes,
           (double)(now_us() - t0) / 1e6);
    close(fd);
    return rc == 0 && r.saw_done ? 0 : 1;
}

static int mode_repeat(int port, const char *path, const char *bodyfile, int count)
{
    size_t rlen;
    char *req = build_request(path, bodyfile, &rlen);
    int fd = -1, i, ok = 0, errors = 0, non200 = 0;
    long long t0 = now_us();
    long frames = 0;

    for (i = 0; i < count; i++) {
        resp r;
        if (fd < 0 && (fd = connect_to(port, 0, 0)) < 0) {
            errors++;
            continue;
        }
        resp_init(&r, NULL);
        if (write_all(fd, req, rlen) < 0 || read_response(fd, &r, 0, 0, NULL, NULL) < 0) {
            errors++;
            close(fd);
            fd = -1;
            continue;
        }
        frames += r.frames;
        if (r.status == 200) {
            ok++;
        }
        else {
            non200++;
        }
        if (!r.keepalive) {
            close(fd);
            fd = -1;
        }
    }
    if (fd >= 0) {
        close(fd);
    }
    printf("{\"mode\":\"repeat\",\"count\":%d,\"ok\":%d,\"errors\":%d,\"non200\":%d,"
           "\"frames\":%ld,\"seconds\":%.3f}\n", count, ok, errors, non200, frames,
           (double)(now_us() - t0) / 1e6);
    return ok == count ? 0 : 1;
}

/* hold: K streams and the probes in one epoll loop */
typedef struct {
    int fd;
    int is_probe;
    size_t sent;
    int connected;
    int closed;
    long long t_open;
    long long t_sent;       /* the request's last byte written */
    resp r;
} hconn;

static int mode_hold(int port, const char *path, const char *bodyfile, int k, double first_s,
                     double hold_s, const char *probe_path, const char *probe_bodyfile)
{
    size_t rlen, plen;
    char *req = build_request(path, bodyfile, &rlen);
    char *preq = build_request(probe_path, probe_bodyfile, &plen);
    hconn *cs = calloc((size_t)k + 1, sizeof(*cs));
    int ep = epoll_create1(EPOLL_CLOEXEC), i, started = 0, started_late = 0, failed = 0;
    int probe_sent = 0, phase_started_at_first = -1, first_probe_status = 0;
    long long t0 = now_us(), t_first_end = t0 + (long long)(first_s * 1e6),
              t_hold_end = 0, probe_us = -1, t_probe = 0, next_probe = 0;
    samples first = { 0 }, probes = { 0 };
    static char buf[1 << 16];
    struct epoll_event evs[512];

    if (!cs || ep < 0) {
        die("hold setup");
    }
    for (i = 0; i < k; i++) {
        struct epoll_event ev;
        cs[i].fd = connect_to(port, 0, 1);
        cs[i].t_open = now_us();
        resp_init(&cs[i].r, NULL);
        if (cs[i].fd < 0) {
            cs[i].closed = 1;
            failed++;
            continue;
        }
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
    }
    for (;;) {
        long long t = now_us();
        int n, j;
        if (!t_hold_end && (started + failed >= k || t >= t_first_end)) {
            phase_started_at_first = started;
            t_hold_end = t + (long long)(hold_s * 1e6);
            next_probe = t;
        }
        if (next_probe && t >= next_probe && t < t_hold_end) {
            /* a probe: a fresh connection while the streams are held; the
             * next one 100 ms after it is answered, so one slow answer on a
             * busy machine is not the only figure */
            next_probe = 0;
            cs[k].fd = connect_to(port, 0, 1);
            cs[k].sent = 0;
            cs[k].closed = 0;
            cs[k].is_probe = 1;
            cs[k].t_open = t_probe = now_us();
            resp_init(&cs[k].r, NULL);
            if (cs[k].fd >= 0) {
                struct epoll_event ev;
                ev.events = EPOLLOUT | EPOLLIN;
                ev.data.u32 = (uint32_t)k;
                epoll_ctl(ep, EPOLL_CTL_ADD, cs[k].fd, &ev);
                probe_sent++;
            }
        }
        if (t_hold_end && t >= t_hold_end) {
            break;
        }
        n = epoll_wait(ep, evs, 512, 50);
        for (j = 0; j < n; j++) {
            hconn *c = &cs[evs[j].data.u32];
            const char *r = c->is_probe ? preq : req;
            size_t len = c->is_probe ? plen : rlen;
            if (c->closed) {
                continue;
            }
            if ((evs[j].events & EPOLLOUT) && c->sent < len) {
                ssize_t w = send(c->fd, r + c->sent, len - c->sent, MSG_NOSIGNAL);
                if (w > 0) {
                    c->sent += (size_t)w;
                }
                else if (w < 0 && errno != EAGAIN && errno != EINPROGRESS) {
                    c->closed = 1;
                    close(c->fd);
                    if (!c->is_probe) {
                        failed++;
                    }
                    continue;
                }
                if (c->sent == len) {
                    struct epoll_event ev;
                    c->t_sent = now_us();
                    ev.events = EPOLLIN;
                    ev.data.u32 = evs[j].data.u32;
                    epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev);
                }
            }
            if (evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR)) {
                for (;;) {
                    ssize_t got = recv(c->fd, buf, sizeof(buf), MSG_DONTWAIT);
                    long long tr = now_us();
                    int had_first = c->r.t_first_data != 0;
                    if (got > 0) {
                        resp_feed(&c->r, buf, (size_t)got, tr);
                        if (!c->is_probe && !had_first && c->r.t_first_data) {
                            /* from the request written: the client's own
                             * connect loop and SYN retries are not the
                             * gateway's */
                            push(&first, c->r.t_first_data - c->t_sent);
                            if (t_hold_end) {
                                started_late++;
                            }
                            else {
                                started++;
                            }
                        }
                        if (c->is_probe && c->r.state == R_DONE) {
                            if (probe_us < 0) {
                                probe_us = tr - t_probe;
                                first_probe_status = c->r.status;
                            }
                            push(&probes, tr - t_probe);
                            next_probe = tr + 100000;
                            c->closed = 1;
                            epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                            close(c->fd);
                            break;
                        }
                        continue;
                    }
                    if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
                        break;
                    }
                    /* closed by the server */
                    if (!c->is_probe && !had_first) {
                        failed++;
                    }
                    c->closed = 1;
                    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
                    close(c->fd);
                    break;
                }
            }
        }
    }
    for (i = 0; i <= k; i++) {
        if (!cs[i].closed && cs[i].fd >= 0) {
            close(cs[i].fd);
        }
    }
    printf("{\"mode\":\"hold\",\"k\":%d,\"started\":%d,\"started_late\":%d,\"failed\":%d,"
           "\"queued\":%d,\"probe_sent\":%s,\"probes_sent\":%d,\"probe_ms\":", k,
           phase_started_at_first, started_late, failed, k - phase_started_at_first - failed,
           probe_sent ? "true" : "false", probe_sent);
    if (probe_us >= 0) {
        printf("%.2f", (double)probe_us / 1000.0);
    }
    else {
        printf("null");
    }
    printf(",\"probe_status\":%d,", probe_us >= 0 ? first_probe_status : cs[k].r.status);
    print_stats("probe_us", &probes);
    printf(",");
    print_stats("first_us", &first);
    printf("}\n");
    return 0;
}

/* paced: C streams at once, each read to its end; inter-arrival of content
 * chunks at the client against the spacing the mock stamped into them */
static int mode_paced(int port, const char *path, const char *bodyfile, int c, double limit_s)
{
    size_t rlen;
    char *req = build_request(path, bodyfile, &rlen);
    hconn *cs = calloc((size_t)c, sizeof(*cs));
    samples gaps = { 0 }, paces = { 0 }, lat = { 0 }, first = { 0 };
    int ep = epoll_create1(EPOLL_CLOEXEC), i, open = 0, ok = 0, failed = 0, non200 = 0;
    long long t0 = now_us(), t_end = t0 + (long long)(limit_s * 1e6), t_last = t0;
    long chunks = 0;
    static char buf[1 << 16];
    struct epoll_event evs[512];

    if (!cs || ep < 0) {
        die("paced setup");
    }
    for (i = 0; i < c; i++) {
        struct epoll_event ev;
        cs[i].fd = connect_to(port, 0, 1);
        cs[i].t_open = now_us();
        resp_init(&cs[i].r, &lat);
        cs[i].r.gaps = &gaps;
        cs[i].r.paces = &paces;
        if (cs[i].fd < 0) {
            cs[i].closed = 1;
            failed++;
            continue;
        }
        ev.events = EPOLLOUT | EPOLLIN;
        ev.data.u32 = (uint32_t)i;
        epoll_ctl(ep, EPOLL_CTL_ADD, cs[i].fd, &ev);
        open++;
    }
    while (open > 0 && now_us() < t_end) {
        int n = epoll_wait(ep, evs, 512, 100), j;
        for (j = 0; j < n; j++) {
            hconn *h = &cs[evs[j].data.u32];
            int had_first;
            if (h->closed) {
                continue;
            }
            if ((evs[j].events & EPOLLOUT) && h->sent < rlen) {
                ssize_t w = send(h->fd, req + h->sent, rlen - h->sent, MSG_NOSIGNAL);
                if (w > 0) {
                    h->sent += (size_t)w;
                }
                if (h->sent == rlen) {
                    struct epoll_event ev;
                    h->t_sent = now_us();
                    ev.events = EPOLLIN;
                    ev.data.u32 = evs[j].data.u32;
                    epoll_ctl(ep, EPOLL_CTL_MOD, h->fd, &ev);
                }
            }
            if (!(evs[j].events & (EPOLLIN | EPOLLHUP | EPOLLERR))) {
                continue;
            }
            had_first = h->r.t_first_data != 0;
            for (;;) {
                ssize_t got = recv(h->fd, buf, sizeof(buf), MSG_DONTWAIT);
                long long tr = now_us();
                if (got > 0) {
                    resp_feed(&h->r, buf, (size_t)got, tr);
                    if (h->r.state != R_DONE && h->r.state != R_ERROR) {
                        continue;
                    }
                }
                else if (got < 0 && (errno == EAGAIN || errno == EINTR)) {
                    break;
                }
                /* the end of the response, an error or the server closed */
                if (h->r.state == R_DONE && h->r.status == 200) {
                    ok++;
                }
                else if (h->r.state == R_DONE) {
                    non200++;
                }
                else {
                    failed++;
                }
                h->closed = 1;
                open--;
                t_last = tr;
                epoll_ctl(ep, EPOLL_CTL_DEL, h->fd, NULL);
                close(h->fd);
                break;
            }
            if (!had_first && h->r.t_first_data) {
                push(&first, h->r.t_first_data - h->t_sent);
            }
        }
    }
    for (i = 0; i < c; i++) {
        chunks += cs[i].r.stamps;
        if (!cs[i].closed) {
            close(cs[i].fd);
        }
    }
    printf("{\"mode\":\"paced\",\"streams\":%d,\"ok\":%d,\"failed\":%d,\"non200\":%d,"
           "\"unfinished\":%d,\"chunks\":%ld,\"seconds\":%.3f,", c, ok, failed, non200, open,
           chunks, (double)(t_last - t0) / 1e6);
    print_stats("gap_us", &gaps);
    printf(",");
    print_stats("pace_us", &paces);
    printf(",");
    print_stats("relay_us", &lat);
    printf(",");
    print_stats("ttft_us", &first);
    printf("}\n");
    return ok == c ? 0 : 1;
}

int main(int argc, char **argv)
{
    signal(SIGPIPE, SIG_IGN);
    if (argc >= 6 && !strcmp(argv[1], "ttft")) {
        return mode_ttft(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]));
    }
    if (argc >= 8 && !strcmp(argv[1], "slow")) {
        return mode_slow(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]), atoi(argv[6]),
                         atoi(argv[7]));
    }
    if (argc >= 6 && !strcmp(argv[1], "repeat")) {
        return mode_repeat(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]));
    }
    if (argc >= 7 && !strcmp(argv[1], "paced")) {
        return mode_paced(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]), atof(argv[6]));
    }
    if (argc >= 10 && !strcmp(argv[1], "hold")) {
        return mode_hold(atoi(argv[2]), argv[3], argv[4], atoi(argv[5]), atof(argv[6]),
                         atof(argv[7]), argv[8], argv[9]);
    }
    fprintf(stderr,
            "usage: sse_client ttft PORT PATH BODYFILE COUNT\n"
            "       sse_client slow PORT PATH BODYFILE RCVBUF READSZ SLEEP_US\n"
            "       sse_client repeat PORT PATH BODYFILE N\n"
            "       sse_client hold PORT PATH BODYFILE K FIRST_S HOLD_S PROBE_PATH PROBE_BODY\n"
            "       sse_client paced PORT PATH BODYFILE C LIMIT_S\n");
    return 2;
}
