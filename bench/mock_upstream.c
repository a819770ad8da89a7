/* mock_upstream: an OpenAI / Anthropic shaped LLM upstream for benchmarks.
 *
 * Single-threaded epoll server, HTTP/1.1 keep-alive (and pipelining),
 * request bodies with Content-Length or chunked, responses with
 * Content-Length (non-streaming) or chunked (streaming, one HTTP chunk per
 * SSE event).  Writes are non-blocking and a stream only produces its next
 * events once the previous ones left the socket buffer, so a slow reader
 * pushes back all the way to here and the mock holds at most ~64 KiB per
 * connection.
 *
 *   POST .../chat/completions   OpenAI Chat Completions
 *   POST .../messages           Anthropic Messages
 *   GET  /health                "ok"
 *
 * Per request parameters come from the request's "model" string, so they
 * survive a gateway that forwards the body (maniac strips "provider/"):
 *   -n<N>   number of content chunks in a stream (default 20)
 *   -d<MS>  delay before each content chunk in milliseconds (default 0)
 * e.g. "up/stream-n200-d5".  "stream": true in the body selects SSE;
 * "include_usage": true adds OpenAI's usage-only chunk (and "usage":null on
 * every chunk, as OpenAI does).
 *
 * Every content chunk carries "#<microseconds of CLOCK_MONOTONIC>" in its
 * text so a client on the same machine can measure per-chunk relay latency.
 *
 *   mock_upstream [-p PORT] [-a ADDR]     prints "listening ADDR:PORT"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <time.h>
#include <unistd.h>

#define MAX_REQ        (4u << 20)   /* largest request head + body */
#define OUT_HIGH       (64u << 10)  /* produce stream events only below this */
#define WRITE_BATCH    (16u << 10) /* undelayed streams: write this much at once */
#define PUMP_QUANTUM   (256u << 10) /* bytes one connection may produce per turn */
#define DEFAULT_N      20

enum { EV_NONE, EV_LISTEN, EV_SOCK, EV_TIMER };
enum { FMT_OPENAI, FMT_ANTHROPIC };
/* stream phases */
enum { PH_NONE, PH_CONTENT, PH_TAIL, PH_END };

struct conn;
struct evtag {
    int kind;
    struct conn *c;
};

struct conn {
    int fd;
    struct evtag ev_sock;
    long long deadline;     /* of the next timed event, while timer_armed */
    long heap_idx;          /* in the timer heap, or -1 */
    char *in;
    size_t in_len, in_cap;
    char *out;
    size_t out_len, out_off, out_cap;
    int want_out;           /* EPOLLOUT registered */
    int close_after;        /* Connection: close, or HTTP/1.0 */
    int sent_continue;
    /* the stream being produced */
    int streaming, fmt, include_usage, timer_armed;
    long n_total, n_sent;
    int delay_ms;
    int phase;
};

static int ep;
/* One timerfd for all paced streams (a min-heap of deadlines): a timerfd per
 * connection would double the descriptors, and 10,000 held streams would
 * not fit in one process's ulimit -n. */
static int timer_fd = -1;
static struct conn **heap;
static long heap_len, heap_cap;
static volatile sig_atomic_t stop;
static unsigned long long served;

static const char MODEL_ANT[] = "claude-sonnet-4-5-20250929";

static void die(const char *what)
{
    perror(what);
    exit(1);
}

static long long now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

static void out_reserve(struct conn *c, size_t more)
{
    if (c->out_off && c->out_off == c->out_len) {
        c->out_off = c->out_len = 0;
    }
    if (c->out_len + more <= c->out_cap) {
        return;
    }
    if (c->out_off) {   /* compact first */
        memmove(c->out, c->out + c->out_off, c->out_len - c->out_off);
        c->out_len -= c->out_off;
        c->out_off = 0;
        if (c->out_len + more <= c->out_cap) {
            return;
        }
    }
    size_t cap = c->out_cap ? c->out_cap : 4096;
    while (cap < c->out_len + more) {
        cap *= 2;
    }
    c->out = realloc(c->out, cap);
    if (!c->out) {
        die("realloc");
    }
    c->out_cap = cap;
}

static void out_put(struct conn *c, const char *s, size_t n)
{
    out_reserve(c, n);
    memcpy(c->out + c->out_len, s, n);
    c->out_len += n;
}

static void out_printf(struct conn *c, const char *fmt, ...)
{
    va_list ap;
    int n;
    out_reserve(c, 512);
    for (;;) {
        size_t room = c->out_cap - c->out_len;
        va_start(ap, fmt);
        n = vsnprintf(c->out + c->out_len, room, fmt, ap);
        va_end(ap);
        if (n < 0) {
            die("vsnprintf");
        }
        if ((size_t)n < room) {
            c->out_len += (size_t)n;
            return;
        }
        out_reserve(c, (size_t)n + 1);
    }
}

/* One SSE event as one HTTP chunk. */
static void out_chunk(struct conn *c, const char *fmt, ...)
{
    char buf[2048];
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(buf, sizeof(buf), fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof(buf)) {
        fprintf(stderr, "mock: event too long\n");
        exit(1);
    }
    out_printf(c, "%x\r\n", (unsigned)n);
    out_put(c, buf, (size_t)n);
    out_put(c, "\r\n", 2);
}

static size_t out_pending(const struct conn *c)
{
    return c->out_len - c->out_off;
}

static void set_events(struct conn *c, int want_out)
{
    struct epoll_event ev;
    if (want_out == c->want_out) {
        return;
    }
    ev.events = EPOLLIN | (want_out ? EPOLLOUT : 0);
    ev.data.ptr = &c->ev_sock;
    if (epoll_ctl(ep, EPOLL_CTL_MOD, c->fd, &ev) < 0) {
        die("epoll_ctl mod");
    }
    c->want_out = want_out;
}

/* ---- the timer heap ------------------------------------------------------ */

static void heap_swap(long i, long j)
{
    struct conn *t = heap[i];
    heap[i] = heap[j];
    heap[j] = t;
    heap[i]->heap_idx = i;
    heap[j]->heap_idx = j;
}

static void heap_up(long i)
{
    while (i > 0 && heap[(i - 1) / 2]->deadline > heap[i]->deadline) {
        heap_swap(i, (i - 1) / 2);
        i = (i - 1) / 2;
    }
}

static void heap_down(long i)
{
    for (;;) {
        long l = 2 * i + 1, r = l + 1, m = i;
        if (l < heap_len && heap[l]->deadline < heap[m]->deadline) {
            m = l;
        }
        if (r < heap_len && heap[r]->deadline < heap[m]->deadline) {
            m = r;
        }
        if (m == i) {
            return;
        }
        heap_swap(i, m);
        i = m;
    }
}

/* Arms the one timerfd for the earliest deadline (or disarms it). */
static void timer_rearm(void)
{
    struct itimerspec its;
    memset(&its, 0, sizeof(its));
    if (heap_len) {
        long long d = heap[0]->deadline;
        its.it_value.tv_sec = d / 1000000;
        its.it_value.tv_nsec = (long)(d % 1000000) * 1000L;
        if (!its.it_value.tv_sec && !its.it_value.tv_nsec) {
            its.it_value.tv_nsec = 1;
        }
    }
    if (timerfd_settime(timer_fd, TFD_TIMER_ABSTIME, &its, NULL) < 0) {
        die("timerfd_settime");
    }
}

static void heap_push(struct conn *c)
{
    if (heap_len == heap_cap) {
        heap_cap = heap_cap ? heap_cap * 2 : 1024;
        heap = realloc(heap, (size_t)heap_cap * sizeof(*heap));
        if (!heap) {
            die("realloc");
        }
    }
    heap[heap_len] = c;
    c->heap_idx = heap_len++;
    heap_up(c->heap_idx);
    if (heap[0] == c) {
        timer_rearm();
    }
}

static void heap_remove_(struct conn *c, int rearm)
{
    long i = c->heap_idx;
    if (i < 0) {
        return;
    }
    c->heap_idx = -1;
    if (i != --heap_len) {
        heap[i] = heap[heap_len];
        heap[i]->heap_idx = i;
        heap_up(i);
        heap_down(heap[i]->heap_idx);
    }
    if (i == 0 && rearm) {
        timer_rearm();
    }
}

static void heap_remove(struct conn *c)
{
    heap_remove_(c, 1);
}

static void conn_close(struct conn *c)
{
    epoll_ctl(ep, EPOLL_CTL_DEL, c->fd, NULL);
    close(c->fd);
    heap_remove(c);
    free(c->in);
    free(c->out);
    free(c);
}

/* Writes what is pending.  -1: the connection is gone. */
static int flush_out(struct conn *c)
{
    while (out_pending(c)) {
        ssize_t w = send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR) {
                continue;
            }
            if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            }
            return -1;
        }
        c->out_off += (size_t)w;
    }
    if (!out_pending(c)) {
        c->out_off = c->out_len = 0;
    }
    return 0;
}

/* ---- request parsing ---------------------------------------------------- */

static const char *find_key(const char *body, size_t len, const char *key)
{
    /* "key" followed by optional spaces and a colon; returns after the colon */
    size_t klen = strlen(key);
    const char *p = body, *end = body + len;
    while ((p = memmem(p, (size_t)(end - p), key, klen)) != NULL) {
        const char *q = p + klen;
        while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
            q++;
        }
        if (q < end && *q == ':') {
            q++;
            while (q < end && (*q == ' ' || *q == '\t' || *q == '\n' || *q == '\r')) {
                q++;
            }
            return q;
        }
        p += klen;
    }
    return NULL;
}

static int key_is_true(const char *body, size_t len, const char *key)
{
    const char *v = find_key(body, len, key);
    return v && (size_t)(body + len - v) >= 4 && !memcmp(v, "true", 4);
}

static long model_param(const char *model, char letter, long dflt)
{
    const char *p;
    for (p = model; *p; p++) {
        if (p[0] == '-' && p[1] == letter && p[2] >= '0' && p[2] <= '9') {
            return strtol(p + 2, NULL, 10);
        }
    }
    return dflt;
}

static const char *header_value(const char *head, size_t hlen, const char *name,
                                size_t *vlen)
{
    /* head: request line + headers, each ending in \r\n */
    size_t nlen = strlen(name);
    const char *p = memchr(head, '\n', hlen), *end = head + hlen;
    while (p && ++p < end) {
        const char *eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) {
            break;
        }
        if ((size_t)(eol - p) > nlen && p[nlen] == ':' && !strncasecmp(p, name, nlen)) {
            const char *v = p + nlen + 1;
            const char *ve = eol;
            while (v < ve && (*v == ' ' || *v == '\t')) {
                v++;
            }
            while (ve > v && (ve[-1] == '\r' || ve[-1] == ' ' || ve[-1] == '\t')) {
                ve--;
            }
            *vlen = (size_t)(ve - v);
            return v;
        }
        p = eol;
    }
    return NULL;
}

static int has_token(const char *v, size_t vlen, const char *tok)
{
    size_t tlen = strlen(tok), i;
    for (i = 0; v && i + tlen <= vlen; i++) {
        if (!strncasecmp(v + i, tok, tlen)) {
            return 1;
        }
    }
    return 0;
}

/* Decodes a chunked body in place.  Returns bytes consumed from src (0 when
 * incomplete, -1 on error); *blen gets the decoded length. */
static long dechunk(char *src, size_t len, size_t *blen)
{
    size_t i = 0, w = 0;
    for (;;) {
        char *eol = memmem(src + i, len - i, "\r\n", 2);
        unsigned long sz;
        char *endp;
        if (!eol) {
            return 0;
        }
        sz = strtoul(src + i, &endp, 16);
        if (endp == src + i) {
            return -1;
        }
        i = (size_t)(eol - src) + 2;
        if (sz == 0) {
            /* trailers until an empty line */
            for (;;) {
                char *e2 = memmem(src + i, len - i, "\r\n", 2);
                if (!e2) {
                    return 0;
                }
                if (e2 == src + i) {
                    *blen = w;
                    return (long)(i + 2);
                }
                i = (size_t)(e2 - src) + 2;
            }
        }
        if (len - i < sz + 2) {
            return 0;
        }
        memmove(src + w, src + i, sz);   /* w <= i always */
        w += sz;
        i += sz + 2;
    }
}

/* ---- responses ------------------------------------------------------------ */

static void send_simple(struct conn *c, int status, const char *reason, const char *ctype,
                        const char *body)
{
    out_printf(c, "HTTP/1.1 %d %s\r\nContent-Type: %s\r\nContent-Length: %zu\r\n%s\r\n%s",
               status, reason, ctype, strlen(body),
               c->close_after ? "Connection: close\r\n" : "", body);
}

static void send_openai_whole(struct conn *c)
{
    static const char body[] =
        "{\"id\":\"chatcmpl-BxK2mQ7vR9tLp4WnZ8sH3cJ6dF1gY\",\"object\":\"chat.completion\","
        "\"created\":1767225591,\"model\":\"gpt-4o-mini-2024-07-18\",\"choices\":[{\"index\":0,"
        "\"message\":{\"role\":\"assistant\",\"content\":\"Waves fold into foam,\\nsalt wind "
        "carries gull voices\xe2\x80\x94\\nthe tide keeps its time.\",\"refusal\":null,"
        "\"annotations\":[]},\"logprobs\":null,\"finish_reason\":\"stop\"}],\"usage\":{"
        "\"prompt_tokens\":24,\"completion_tokens\":19,\"total_tokens\":43,"
        "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
        "\"completion_tokens_details\":{\"reasoning_tokens\":0,\"audio_tokens\":0,"
        "\"accepted_prediction_tokens\":0,\"rejected_prediction_tokens\":0}},"
        "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_7fcd609668\"}";
    out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "x-request-id: req_7c1f0e9a4b2d4e6f8a0b1c2d3e4f5a6b\r\n"
                  "openai-processing-ms: 412\r\n%s\r\n",
               sizeof(body) - 1, c->close_after ? "Connection: close\r\n" : "");
    out_put(c, body, sizeof(body) - 1);
}

static void send_anthropic_whole(struct conn *c)
{
    static const char body[] =
        "{\"model\":\"claude-sonnet-4-5-20250929\",\"id\":\"msg_01Hq3L7pX2vRk9NwT4sZcB6m\","
        "\"type\":\"message\",\"role\":\"assistant\",\"content\":[{\"type\":\"text\",\"text\":"
        "\"Waves fold into foam,\\nsalt wind carries gull voices\xe2\x80\x94\\nthe tide keeps its "
        "time.\"}],\"stop_reason\":\"end_turn\",\"stop_sequence\":null,\"usage\":{"
        "\"input_tokens\":21,\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":1830,"
        "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,\"ephemeral_1h_input_tokens\":0},"
        "\"output_tokens\":24,\"service_tier\":\"standard\"}}";
    out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n"
                  "request-id: req_011CWq1Ab3Cd5Ef7Gh9Jk2Lm\r\n%s\r\n",
               sizeof(body) - 1, c->close_after ? "Connection: close\r\n" : "");
    out_put(c, body, sizeof(body) - 1);
}

#define OAI_HEAD "{\"id\":\"chatcmpl-BxK2nT5wP8rMq3XvA7yE4bG9hU2kC\",\"object\":" \
    "\"chat.completion.chunk\",\"created\":1767225592,\"model\":\"gpt-4o-mini-2024-07-18\"," \
    "\"service_tier\":\"default\",\"system_fingerprint\":\"fp_7fcd609668\","

static const char *usage_null(const struct conn *c)
{
    return c->include_usage ? ",\"usage\":null" : "";
}

/* Emits the next event(s) of the stream.  Returns 1 when an event was added. */
static int stream_step(struct conn *c)
{
    if (c->fmt == FMT_OPENAI) {
        if (c->phase == PH_CONTENT && c->n_sent < c->n_total) {
            out_chunk(c, "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"content\":"
                         "\" tok#%lld\"},\"logprobs\":null,\"finish_reason\":null}]%s,"
                         "\"obfuscation\":\"k9Lm2\"}\n\n", now_us(), usage_null(c));
            c->n_sent++;
            return 1;
        }
        if (c->phase == PH_CONTENT || c->phase == PH_TAIL) {
            out_chunk(c, "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{},"
                         "\"logprobs\":null,\"finish_reason\":\"stop\"}]%s,"
                         "\"obfuscation\":\"Qx\"}\n\n", usage_null(c));
            if (c->include_usage) {
                out_chunk(c, "data: " OAI_HEAD "\"choices\":[],\"usage\":{\"prompt_tokens\":24,"
                             "\"completion_tokens\":%ld,\"total_tokens\":%ld,"
                             "\"prompt_tokens_details\":{\"cached_tokens\":0,\"audio_tokens\":0},"
                             "\"completion_tokens_details\":{\"reasoning_tokens\":0,"
                             "\"audio_tokens\":0,\"accepted_prediction_tokens\":0,"
                             "\"rejected_prediction_tokens\":0}},\"obfuscation\":\"z7\"}\n\n",
                          c->n_total, c->n_total + 24);
            }
            out_chunk(c, "data: [DONE]\n\n");
            out_put(c, "0\r\n\r\n", 5);
            c->phase = PH_END;
            return 1;
        }
        return 0;
    }
    if (c->phase == PH_CONTENT && c->n_sent < c->n_total) {
        out_chunk(c, "event: content_block_delta\ndata: {\"type\":\"content_block_delta\","
                     "\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\" tok#%lld\"}}\n\n",
                  now_us());
        c->n_sent++;
        return 1;
    }
    if (c->phase == PH_CONTENT || c->phase == PH_TAIL) {
        out_chunk(c, "event: content_block_stop\ndata: {\"type\":\"content_block_stop\","
                     "\"index\":0}\n\n");
        out_chunk(c, "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{"
                     "\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{"
                     "\"input_tokens\":21,\"cache_creation_input_tokens\":0,"
                     "\"cache_read_input_tokens\":0,\"output_tokens\":%ld}}\n\n", c->n_total);
        out_chunk(c, "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n");
        out_put(c, "0\r\n\r\n", 5);
        c->phase = PH_END;
        return 1;
    }
    return 0;
}

static void start_stream(struct conn *c, int fmt, long n, int delay_ms, int include_usage)
{
    c->streaming = 1;
    c->fmt = fmt;
    c->n_total = n;
    c->n_sent = 0;
    c->delay_ms = delay_ms;
    c->include_usage = include_usage;
    c->phase = PH_CONTENT;
    out_printf(c, "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream; charset=utf-8\r\n"
                  "Transfer-Encoding: chunked\r\nCache-Control: no-cache\r\n%s%s\r\n",
               fmt == FMT_OPENAI ? "x-request-id: req_7c1f0e9a4b2d4e6f8a0b1c2d3e4f5a6b\r\n"
                                 : "request-id: req_011CWq1Bc5De7Fg9Hj2Kl4Mn\r\n",
               c->close_after ? "Connection: close\r\n" : "");
    if (fmt == FMT_OPENAI) {
        out_chunk(c, "data: " OAI_HEAD "\"choices\":[{\"index\":0,\"delta\":{\"role\":"
                     "\"assistant\",\"content\":\"\",\"refusal\":null},\"logprobs\":null,"
                     "\"finish_reason\":null}]%s,\"obfuscation\":\"Qx7\"}\n\n", usage_null(c));
    }
    else {
        out_chunk(c, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{"
                     "\"model\":\"%s\",\"id\":\"msg_01Bn6FsK9dW2xYq4TcVh8RzE\",\"type\":"
                     "\"message\",\"role\":\"assistant\",\"content\":[],\"stop_reason\":null,"
                     "\"stop_sequence\":null,\"usage\":{\"input_tokens\":21,"
                     "\"cache_creation_input_tokens\":0,\"cache_read_input_tokens\":0,"
                     "\"cache_creation\":{\"ephemeral_5m_input_tokens\":0,"
                     "\"ephemeral_1h_input_tokens\":0},\"output_tokens\":1,"
                     "\"service_tier\":\"standard\"}}}\n\n", MODEL_ANT);
        out_chunk(c, "event: content_block_start\ndata: {\"type\":\"content_block_start\","
                     "\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n");
        out_chunk(c, "event: ping\ndata: {\"type\": \"ping\"}\n\n");
    }
}

static void arm_timer(struct conn *c)
{
    c->deadline = now_us() + (long long)c->delay_ms * 1000;
    c->timer_armed = 1;
    heap_push(c);
}

static int process_requests(struct conn *c);

/* Produces stream events while the socket takes them.  -1: close. */
static int pump(struct conn *c, int timer_fired)
{
    size_t produced = 0;
    if (flush_out(c) < 0) {
        return -1;
    }
    while (c->streaming && c->phase != PH_END) {
        if (out_pending(c) >= OUT_HIGH || produced >= PUMP_QUANTUM) {
            break;          /* wait for EPOLLOUT (backpressure) or the next turn */
        }
        if (c->delay_ms > 0 && c->phase == PH_CONTENT && c->n_sent < c->n_total) {
            if (!timer_fired) {
                if (!c->timer_armed) {
                    arm_timer(c);
                }
                break;
            }
            timer_fired = 0;
        }
        size_t before = out_pending(c);
        if (!stream_step(c)) {
            break;
        }
        produced += out_pending(c) - before;
        /* timed events go out one by one; an undelayed stream is written in
         * 16 KiB batches (still one HTTP chunk per event) */
        if ((c->delay_ms > 0 || out_pending(c) >= WRITE_BATCH) && flush_out(c) < 0) {
            return -1;
        }
    }
    if (flush_out(c) < 0) {
        return -1;
    }
    if (c->streaming && c->phase == PH_END && !out_pending(c)) {
        c->streaming = 0;
        served++;
        if (c->close_after) {
            return -1;
        }
        return process_requests(c);
    }
    /* more to write, or more to produce without a timer: ask for EPOLLOUT */
    set_events(c, out_pending(c) > 0
                  || (c->streaming && c->phase != PH_END && !c->timer_armed));
    return 0;
}

static int handle_request(struct conn *c, const char *head, size_t hlen, char *body,
                          size_t blen)
{
    char model[256] = "";
    const char *sp1 = memchr(head, ' ', hlen);
    const char *sp2 = sp1 ? memchr(sp1 + 1, ' ', hlen - (size_t)(sp1 + 1 - head)) : NULL;
    const char *mv;
    size_t plen;
    const char *path;
    int is_post;

    if (!sp1 || !sp2) {
        c->close_after = 1;
        send_simple(c, 400, "Bad Request", "text/plain", "bad request line\n");
        return 0;
    }
    path = sp1 + 1;
    plen = (size_t)(sp2 - path);
    {   /* ignore a query string */
        const char *q = memchr(path, '?', plen);
        if (q) {
            plen = (size_t)(q - path);
        }
    }
    is_post = (sp1 - head == 4 && !memcmp(head, "POST", 4));
    if (plen == 7 && !memcmp(path, "/health", 7)) {
        send_simple(c, 200, "OK", "text/plain", "ok\n");
        served++;
        return 0;
    }
    mv = find_key(body, blen, "\"model\"");
    if (mv && *mv == '"') {
        const char *e = memchr(mv + 1, '"', (size_t)(body + blen - mv - 1));
        size_t n = e ? (size_t)(e - mv - 1) : 0;
        if (n >= sizeof(model)) {
            n = sizeof(model) - 1;
        }
        memcpy(model, mv + 1, n);
        model[n] = '\0';
    }
    if (is_post && plen >= 17 && !memcmp(path + plen - 17, "/chat/completions", 17)) {
        if (key_is_true(body, blen, "\"stream\"")) {
            start_stream(c, FMT_OPENAI, model_param(model, 'n', DEFAULT_N),
                         (int)model_param(model, 'd', 0),
                         key_is_true(body, blen, "\"include_usage\""));
            return 0;
        }
        send_openai_whole(c);
        served++;
        return 0;
    }
    if (is_post && plen >= 9 && !memcmp(path + plen - 9, "/messages", 9)) {
        if (key_is_true(body, blen, "\"stream\"")) {
            start_stream(c, FMT_ANTHROPIC, model_param(model, 'n', DEFAULT_N),
                         (int)model_param(model, 'd', 0), 0);
            return 0;
        }
        send_anthropic_whole(c);
        served++;
        return 0;
    }
    send_simple(c, 404, "Not Found", "application/json",
                "{\"error\":{\"message\":\"mock: unknown path\",\"type\":\"invalid_request_error\","
                "\"param\":null,\"code\":null}}");
    return 0;
}

/* Handles every complete request in the input buffer (one stream at a time).
 * -1: close the connection. */
static int process_requests(struct conn *c)
{
    while (!c->streaming && c->in_len) {
        char *hend = memmem(c->in, c->in_len, "\r\n\r\n", 4);
        size_t hlen, consumed, blen = 0;
        const char *v;
        size_t vlen;
        char *body;

        if (!hend) {
            if (c->in_len > 65536) {
                return -1;
            }
            break;
        }
        hlen = (size_t)(hend - c->in) + 2;      /* keeps the last header's CRLF */
        body = hend + 4;
        c->close_after = 0;
        {
            const char *eol = memchr(c->in, '\r', hlen);
            if (eol && eol - c->in >= 8 && !memcmp(eol - 8, "HTTP/1.0", 8)) {
                c->close_after = 1;
            }
        }
        if ((v = header_value(c->in, hlen, "Connection", &vlen)) != NULL) {
            if (has_token(v, vlen, "close")) {
                c->close_after = 1;
            }
            else if (has_token(v, vlen, "keep-alive")) {
                c->close_after = 0;
            }
        }
        if ((v = header_value(c->in, hlen, "Transfer-Encoding", &vlen)) != NULL
            && has_token(v, vlen, "chunked")) {
            long used = dechunk(body, c->in_len - (size_t)(body - c->in), &blen);
            if (used < 0) {
                return -1;
            }
            if (used == 0) {
                break;
            }
            consumed = (size_t)(body - c->in) + (size_t)used;
        }
        else {
            v = header_value(c->in, hlen, "Content-Length", &vlen);
            blen = v ? strtoul(v, NULL, 10) : 0;
            if (blen > MAX_REQ) {
                return -1;
            }
            if ((size_t)(body - c->in) + blen > c->in_len) {
                if (!c->sent_continue
                    && header_value(c->in, hlen, "Expect", &vlen) != NULL) {
                    out_printf(c, "HTTP/1.1 100 Continue\r\n\r\n");
                    c->sent_continue = 1;
                    if (flush_out(c) < 0) {
                        return -1;
                    }
                }
                break;
            }
            consumed = (size_t)(body - c->in) + blen;
        }
        c->sent_continue = 0;
        handle_request(c, c->in, hlen, body, blen);
        memmove(c->in, c->in + consumed, c->in_len - consumed);
        c->in_len -= consumed;
        if (c->streaming) {
            return pump(c, 0);
        }
        if (flush_out(c) < 0) {
            return -1;
        }
        if (c->close_after) {
            if (out_pending(c)) {
                set_events(c, 1);       /* close once written */
                return 0;
            }
            return -1;
        }
    }
    set_events(c, out_pending(c) > 0);
    return 0;
}

static int on_readable(struct conn *c)
{
    for (;;) {
        ssize_t r;
        if (c->in_cap - c->in_len < 16384) {
            size_t cap = c->in_cap ? c->in_cap * 2 : 32768;
            if (cap > MAX_REQ + 65536) {
                return -1;
            }
            c->in = realloc(c->in, cap);
            if (!c->in) {
                die("realloc");
            }
            c->in_cap = cap;
        }
        r = recv(c->fd, c->in + c->in_len, c->in_cap - c->in_len, 0);
        if (r > 0) {
            c->in_len += (size_t)r;
            continue;
        }
        if (r == 0) {
            return -1;
        }
        if (errno == EINTR) {
            continue;
        }
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            break;
        }
        return -1;
    }
    if (c->streaming) {
        return 0;       /* pipelined requests wait for the stream */
    }
    return process_requests(c);
}

static int on_writable(struct conn *c)
{
    if (c->streaming) {
        return pump(c, 0);
    }
    if (flush_out(c) < 0) {
        return -1;
    }
    if (!out_pending(c)) {
        if (c->close_after) {
            return -1;
        }
        return process_requests(c);
    }
    return 0;
}

/* A timed stream's deadline passed (it is already out of the heap). */
static int on_timer(struct conn *c)
{
    c->timer_armed = 0;
    if (!c->streaming) {
        return 0;
    }
    return pump(c, 1);
}

static void on_accept(int lfd)
{
    for (;;) {
        int one = 1;
        struct conn *c;
        struct epoll_event ev;
        int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED) {
                continue;
            }
            if (errno != EAGAIN && errno != EWOULDBLOCK) {
                perror("mock: accept");
            }
            return;
        }
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
        c = calloc(1, sizeof(*c));
        if (!c) {
            die("calloc");
        }
        c->fd = fd;
        c->heap_idx = -1;
        c->ev_sock.kind = EV_SOCK;
        c->ev_sock.c = c;
        ev.events = EPOLLIN;
        ev.data.ptr = &c->ev_sock;
        if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) < 0) {
            die("epoll_ctl add");
        }
    }
}

/* Closes c; a later event of this epoll batch that names it is neutralised
 * first. */
static void forget(struct conn *c, struct epoll_event *evs, int from, int n)
{
    static struct evtag none_tag = { EV_NONE, NULL };
    int j;
    for (j = from; j < n; j++) {
        struct evtag *u = evs[j].data.ptr;
        if (u->kind == EV_SOCK && u->c == c) {
            evs[j].data.ptr = &none_tag;
        }
    }
    conn_close(c);
}

/* Every stream whose deadline passed produces its next event. */
static void on_timers(struct epoll_event *evs, int from, int n)
{
    uint64_t exp;
    long long now = now_us();
    if (read(timer_fd, &exp, sizeof(exp)) < 0 && errno != EAGAIN) {
        die("read timerfd");
    }
    while (heap_len && heap[0]->deadline <= now) {
        struct conn *c = heap[0];
        heap_remove_(c, 0);
        if (on_timer(c) < 0) {
            forget(c, evs, from, n);
        }
    }
    timer_rearm();
}

static void on_signal(int sig)
{
    (void)sig;
    stop = 1;
}

int main(int argc, char **argv)
{
    const char *addr = "127.0.0.1";
    int port = 0, opt, lfd, one = 1;
    struct sockaddr_in sa;
    socklen_t salen = sizeof(sa);
    struct evtag listen_tag = { EV_LISTEN, NULL };
    static struct evtag timer_tag = { EV_TIMER, NULL };
    struct epoll_event ev, evs[256];
    struct sigaction sact;

    while ((opt = getopt(argc, argv, "p:a:")) != -1) {
        switch (opt) {
        case 'p': port = atoi(optarg); break;
        case 'a': addr = optarg; break;
        default:
            fprintf(stderr, "usage: %s [-p port] [-a addr]\n", argv[0]);
            return 2;
        }
    }
    memset(&sact, 0, sizeof(sact));
    sact.sa_handler = on_signal;
    sigaction(SIGTERM, &sact, NULL);
    sigaction(SIGINT, &sact, NULL);
    signal(SIGPIPE, SIG_IGN);

    lfd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (lfd < 0) {
        die("socket");
    }
    setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&sa, 0, sizeof(sa));
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    if (inet_pton(AF_INET, addr, &sa.sin_addr) != 1) {
        fprintf(stderr, "mock: bad address %s\n", addr);
        return 2;
    }
    if (bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        die("bind");
    }
    if (listen(lfd, 4096) < 0) {
        die("listen");
    }
    getsockname(lfd, (struct sockaddr *)&sa, &salen);
    printf("listening %s:%d\n", addr, ntohs(sa.sin_port));
    fflush(stdout);

    ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) {
        die("epoll_create1");
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &listen_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, lfd, &ev) < 0) {
        die("epoll_ctl listen");
    }
    timer_fd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC);
    if (timer_fd < 0) {
        die("timerfd_create");
    }
    ev.events = EPOLLIN;
    ev.data.ptr = &timer_tag;
    if (epoll_ctl(ep, EPOLL_CTL_ADD, timer_fd, &ev) < 0) {
        die("epoll_ctl timer");
    }

    while (!stop) {
        int n = epoll_wait(ep, evs, (int)(sizeof(evs) / sizeof(evs[0])), 1000), i;
        if (n < 0) {
            if (errno == EINTR) {
                continue;
            }
            die("epoll_wait");
        }
        for (i = 0; i < n; i++) {
            struct evtag *t = evs[i].data.ptr;
            struct conn *c = t->c;
            int rc = 0;
            if (t->kind == EV_NONE) {
                continue;
            }
            if (t->kind == EV_LISTEN) {
                on_accept(lfd);
                continue;
            }
            if (t->kind == EV_TIMER) {
                on_timers(evs, i + 1, n);
                continue;
            }
            if (evs[i].events & (EPOLLERR | EPOLLHUP)) {
                rc = -1;
            }
            if (!rc && (evs[i].events & EPOLLIN)) {
                rc = on_readable(c);
            }
            if (!rc && (evs[i].events & EPOLLOUT)) {
                rc = on_writable(c);
            }
            if (rc < 0) {
                forget(c, evs, i + 1, n);
            }
        }
    }
    fprintf(stderr, "mock: served %llu responses\n", served);
    close(lfd);
    return 0;
}
