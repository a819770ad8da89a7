/* Upstream exchange: one request to a provider over mod_proxy's connection
 * pool (keep-alive reuse, TLS by mod_ssl), response read through the core
 * HTTP_IN filter on a "fake" request so chunked and Content-Length bodies are
 * decoded for us.  The call sequence follows mod_proxy_http.c. */
#include <string.h>
#include <dlfcn.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <mod_proxy.h>
#include <http_connection.h>

#include "mod_maniac.h"
#include "mn_ops.h"

/* mod_proxy is a separate DSO.  Its functions are looked up by name once
 * every LoadModule has run (pre_config), not bound when mod_maniac is loaded:
 * so mod_maniac may be loaded before mod_proxy (Debian's mods-enabled sorts
 * "maniac" before "proxy"), and a missing mod_proxy is a clear configuration
 * error instead of "undefined symbol". */
static struct {
    int ok;
    module *proxy_module;
    __typeof__(&ap_proxy_acquire_connection) acquire_connection;
    __typeof__(&ap_proxy_release_connection) release_connection;
    __typeof__(&ap_proxy_determine_connection) determine_connection;
    __typeof__(&ap_proxy_check_connection) check_connection;
    __typeof__(&ap_proxy_connect_backend) connect_backend;
    __typeof__(&ap_proxy_connection_create_ex) connection_create_ex;
    __typeof__(&ap_proxy_pass_brigade) pass_brigade;
    __typeof__(&ap_proxy_pre_http_request) pre_http_request;
    __typeof__(&ap_proxy_get_worker_ex) get_worker_ex;
    __typeof__(&ap_proxy_define_worker_ex) define_worker_ex;
} px;

#define PX_SYM(field, name) \
    ((px.field = (__typeof__(px.field))dlsym(RTLD_DEFAULT, name)) != NULL)

int mn_upstream_resolve_proxy(void)
{
    memset(&px, 0, sizeof(px));
    px.proxy_module = dlsym(RTLD_DEFAULT, "proxy_module");
    px.ok = px.proxy_module != NULL
            && PX_SYM(acquire_connection, "ap_proxy_acquire_connection")
            && PX_SYM(release_connection, "ap_proxy_release_connection")
            && PX_SYM(determine_connection, "ap_proxy_determine_connection")
            && PX_SYM(check_connection, "ap_proxy_check_connection")
            && PX_SYM(connect_backend, "ap_proxy_connect_backend")
            && PX_SYM(connection_create_ex, "ap_proxy_connection_create_ex")
            && PX_SYM(pass_brigade, "ap_proxy_pass_brigade")
            && PX_SYM(pre_http_request, "ap_proxy_pre_http_request")
            && PX_SYM(get_worker_ex, "ap_proxy_get_worker_ex")
            && PX_SYM(define_worker_ex, "ap_proxy_define_worker_ex");
    return px.ok;
}


struct mn_upstream {
    request_rec *r;
    const mn_provider *prov;
    proxy_worker *worker;
    proxy_conn_rec *backend;
    request_rec *rp;            /* fake request the response is read on */
    int status;
    int body_done;              /* read to EOS: the connection may be reused */
    int read_until_close;       /* no Content-Length, no chunked */
    int released;
    apr_bucket_brigade *tmp;
    apr_interval_time_t timeout;   /* last set on the socket */
    /* mod_proxy names its caller in its log lines ("AH00957: MANIAC:openai:
     * attempt to connect ... failed"): the provider in it tells an admin
     * which upstream failed */
    const char *proxy_fn;          /* "MANIAC:<provider>" */
    mn_ops_clock *clock;           /* time blocked on the upstream adds up here */
};

int mn_upstream_proxy_available(void)
{
    return px.ok;
}

const char *mn_upstream_define_worker(apr_pool_t *p, server_rec *s, mn_provider *prov)
{
    proxy_server_conf *psf = ap_get_module_config(s->module_config, px.proxy_module);
    proxy_worker *worker;
    const char *url = prov->base_url;

    worker = px.get_worker_ex(p, NULL, psf, url, AP_PROXY_WORKER_IS_PREFIX);
    if (!worker || strcmp(worker->s->name_ex, url)) {
        char *err = px.define_worker_ex(p, &worker, NULL, psf, url,
                                              AP_PROXY_WORKER_IS_PREFIX);
        if (err) {
            return apr_psprintf(p, "cannot define an upstream worker for %s: %s", url, err);
        }
    }
    /* Two providers may share a base URL (and so a worker): keep the
     * shortest connect timeout; read timeouts are set per request. */
    if (!worker->s->conn_timeout_set || prov->connect_timeout < worker->s->conn_timeout) {
        worker->s->conn_timeout = prov->connect_timeout;
        worker->s->conn_timeout_set = 1;
    }
    if (!worker->s->timeout_set || prov->idle_timeout < worker->s->timeout) {
        worker->s->timeout = prov->idle_timeout;
        worker->s->timeout_set = 1;
    }
    /* Health is our circuit breaker's call: mod_proxy must never put this
     * worker in its error state (which would hide a dead upstream from the
     * breaker, or refuse the breaker's probe). */
    worker->s->status |= PROXY_WORKER_IGNORE_ERRORS;
    worker->s->retry = 0;
    worker->s->retry_set = 1;
    return NULL;
}

int mn_upstream_status(const mn_upstream *u)
{
    return u->status;
}

apr_table_t *mn_upstream_headers(const mn_upstream *u)
{
    return u->rp->headers_in;
}

static apr_status_t upstream_cleanup(void *data)
{
    mn_upstream_close(data);
    return APR_SUCCESS;
}

void mn_upstream_abandon(mn_upstream *u)
{
    if (u->backend) {
        u->backend->close = 1;
    }
}

void mn_upstream_close(mn_upstream *u)
{
    if (u->released) {
        return;
    }
    u->released = 1;
    if (!u->body_done && u->backend) {
        u->backend->close = 1;
    }
    if (u->backend) {
        px.release_connection(u->proxy_fn, u->backend, u->r->server);
        u->backend = NULL;
    }
    apr_pool_cleanup_kill(u->r->pool, u, upstream_cleanup);
}

/* A request_rec to read the response with, as mod_proxy_http's own. */
static request_rec *make_response_req(conn_rec *origin, request_rec *r)
{
    apr_pool_t *pool;
    request_rec *rp;

    apr_pool_create(&pool, origin->pool);
    apr_pool_tag(pool, "maniac_upstream_rp");
    rp = apr_pcalloc(pool, sizeof(*rp));
    rp->pool = pool;
    rp->status = HTTP_OK;
    rp->headers_in = apr_table_make(pool, 24);
    rp->trailers_in = apr_table_make(pool, 2);
    rp->subprocess_env = apr_table_make(pool, 4);
    rp->headers_out = apr_table_make(pool, 4);
    rp->trailers_out = apr_table_make(pool, 2);
    rp->err_headers_out = apr_table_make(pool, 2);
    rp->notes = apr_table_make(pool, 4);
    rp->server = r->server;
    rp->log = r->log;
    rp->per_dir_config = r->per_dir_config;
    rp->request_time = r->request_time;
    rp->connection = origin;
    rp->output_filters = origin->output_filters;
    rp->input_filters = origin->input_filters;
    rp->proto_output_filters = origin->output_filters;
    rp->proto_input_filters = origin->input_filters;
    rp->useragent_ip = origin->client_ip;
    rp->useragent_addr = origin->client_addr;
    rp->request_config = ap_create_request_config(pool);
    rp->proxyreq = PROXYREQ_RESPONSE;
    return rp;
}

static int is_hop_by_hop(const char *name)
{
    static const char *const hop[] = { "Connection", "Keep-Alive", "Proxy-Authenticate",
        "Proxy-Authorization", "TE", "Trailer", "Transfer-Encoding", "Upgrade",
        "Host", "Content-Length", NULL };
    int i;
    for (i = 0; hop[i]; i++) {
        if (!ap_cstr_casecmp(name, hop[i])) {
            return 1;
        }
    }
    return 0;
}

typedef struct {
    apr_pool_t *p;
    apr_array_header_t *lines;
    int own_key_header;         /* key-header=: the format's auth headers are replaced */
} header_acc;

static int is_auth_header(const char *name)
{
    return !ap_cstr_casecmp(name, "Authorization") || !ap_cstr_casecmp(name, "x-api-key")
           || !ap_cstr_casecmp(name, "x-goog-api-key");
}

static int add_header_line(void *data, const char *key, const char *val)
{
    header_acc *acc = data;
    if (!is_hop_by_hop(key) && !(acc->own_key_header && is_auth_header(key))) {
        *(const char **)apr_array_push(acc->lines) =
            apr_pstrcat(acc->p, key, ": ", val, CRLF, NULL);
    }
    return 1;
}

/* base path + endpoint, with the base URL's own query (Azure's api-version)
 * joined to the endpoint's (gemini's alt=sse). */
static const char *request_target(apr_pool_t *p, const mn_provider *prov, const char *path)
{
    if (!prov->base_query) {
        return apr_pstrcat(p, prov->base_path, path, NULL);
    }
    return apr_pstrcat(p, prov->base_path, path, strchr(path, '?') ? "&" : "?",
                       prov->base_query, NULL);
}

static const char *request_head(request_rec *r, const mn_provider *prov,
                                const mn_upstream_req *req)
{
    header_acc acc;
    acc.p = r->pool;
    acc.lines = apr_array_make(r->pool, 10, sizeof(const char *));
    acc.own_key_header = prov->key_header && prov->key;
    *(const char **)apr_array_push(acc.lines) =
        apr_pstrcat(r->pool, "POST ", request_target(r->pool, prov, req->path), " HTTP/1.1" CRLF,
                    "Host: ", prov->hostinfo, CRLF,
                    "Content-Length: ", apr_off_t_toa(r->pool, (apr_off_t)req->body_len), CRLF,
                    "User-Agent: mod_maniac/" MN_VERSION CRLF, NULL);
    if (req->headers) {
        apr_table_do(add_header_line, &acc, req->headers, NULL);
    }
    if (acc.own_key_header) {
        *(const char **)apr_array_push(acc.lines) =
            apr_pstrcat(r->pool, prov->key_header, ": ", prov->key, CRLF, NULL);
    }
    *(const char **)apr_array_push(acc.lines) = CRLF;
    return apr_array_pstrcat(r->pool, acc.lines, 0);
}

static int fail(mn_upstream *u, mn_error *err, mn_fail kind, const char *what)
{
    /* mod_proxy helpers may have set an HTML "Proxy Error" status line */
    u->r->status_line = NULL;
    mn_error_fail(err, kind, "provider '%s' %s", u->prov->name, what);
    mn_upstream_close(u);
    return -1;
}

static int ssl_handshake_failed(proxy_conn_rec *backend)
{
    const char *note;
    if (!backend->is_ssl || !backend->connection) {
        return 0;
    }
    note = apr_table_get(backend->connection->notes, "SSL_connect_rv");
    return note && !strcmp(note, "err");
}

/* Sends the request; 0 on success. */
static apr_status_t send_request(mn_upstream *u, const mn_upstream_req *req)
{
    request_rec *r = u->r;
    conn_rec *c = r->connection;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, c->bucket_alloc);
    const char *head = request_head(r, u->prov, req);

    APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(head, strlen(head), c->bucket_alloc));
    if (req->body_len) {
        APR_BRIGADE_INSERT_TAIL(bb, apr_bucket_immortal_create(req->body, req->body_len,
                                                               c->bucket_alloc));
    }
    return px.pass_brigade(c->bucket_alloc, r, u->backend, u->backend->connection, bb, 1)
           == OK ? APR_SUCCESS : APR_EGENERAL;
}

/* Reads status line and headers.  APR_SUCCESS, or the read error. */
static apr_status_t read_head(mn_upstream *u)
{
    char line[HUGE_STRING_LEN];
    apr_size_t len = 0;
    apr_status_t rv;
    const char *te;
    int interim = 0;

    do {
        char *buf = line;
        apr_brigade_cleanup(u->tmp);
        rv = ap_rgetline(&buf, sizeof(line), &len, u->rp, 0, u->tmp);
        if (rv == APR_SUCCESS && len == 0) {
            /* one stray CRLF is tolerated, as mod_proxy_http does */
            rv = ap_rgetline(&buf, sizeof(line), &len, u->rp, 0, u->tmp);
        }
        apr_brigade_cleanup(u->tmp);
        if (rv != APR_SUCCESS) {
            return rv;
        }
        if (len < 12 || strncmp(line, "HTTP/1.", 7) || !apr_isdigit(line[9])
            || !apr_isdigit(line[10]) || !apr_isdigit(line[11])) {
            return APR_EGENERAL;
        }
        u->status = (line[9] - '0') * 100 + (line[10] - '0') * 10 + (line[11] - '0');
        if (line[7] == '0') {
            /* HTTP/1.0: no reuse unless the upstream asks for keep-alive */
            u->backend->close = 1;
        }
        apr_table_clear(u->rp->headers_in);
        ap_get_mime_headers_core(u->rp, u->tmp);
        apr_brigade_cleanup(u->tmp);
        if (u->rp->status != HTTP_OK) {
            return APR_EGENERAL;
        }
        interim = u->status >= 100 && u->status < 200;
    } while (interim && ++interim < 10);

    if (interim) {
        return APR_EGENERAL;
    }
    if (ap_find_token(u->rp->pool, apr_table_get(u->rp->headers_in, "Connection"), "close")) {
        u->backend->close = 1;
    }
    te = apr_table_get(u->rp->headers_in, "Transfer-Encoding");
    u->read_until_close = !te && !apr_table_get(u->rp->headers_in, "Content-Length");
    if (u->read_until_close) {
        u->backend->close = 1;
    }
    if (u->status == HTTP_NO_CONTENT || u->status == HTTP_NOT_MODIFIED) {
        u->body_done = 1;
    }
    else {
        px.pre_http_request(u->backend->connection, u->rp);
    }
    return APR_SUCCESS;
}

static apr_interval_time_t first_byte_timeout(const mn_provider *prov, apr_time_t deadline)
{
    apr_interval_time_t t = prov->first_byte_timeout;
    if (deadline) {
        apr_interval_time_t left = deadline - apr_time_now();
        if (left < t) {
            t = left > 0 ? left : 1;
        }
    }
    return t;
}

void mn_upstream_set_timeout(mn_upstream *u, apr_interval_time_t t)
{
    if (t <= 0) {
        t = 1;
    }
    /* per read on a stream: skip the call when nothing changes */
    if (u->backend && u->backend->sock && t != u->timeout) {
        apr_socket_timeout_set(u->backend->sock, t);
        u->timeout = t;
    }
}

static int upstream_open(request_rec *r, const mn_provider *prov, const mn_upstream_req *req,
                         apr_time_t deadline, mn_upstream **out, mn_error *err)
{
    proxy_server_conf *psf = ap_get_module_config(r->server->module_config, px.proxy_module);
    const char *url = apr_pstrcat(r->pool, prov->base_url, req->path, NULL);
    int attempt;

    for (attempt = 0; attempt < 2; attempt++) {
        mn_upstream *u = apr_pcalloc(r->pool, sizeof(*u));
        char portstr[32];
        apr_uri_t *uri = apr_palloc(r->pool, sizeof(*uri));
        char *locurl = (char *)url;
        int reused = 0;
        apr_time_t t0 = apr_time_now();
        apr_status_t rv;

        u->r = r;
        u->prov = prov;
        u->proxy_fn = apr_pstrcat(r->pool, "MANIAC:", prov->name, NULL);
        u->worker = px.get_worker_ex(r->pool, NULL, psf, url, AP_PROXY_WORKER_IS_PREFIX);
        if (!u->worker) {
            u->released = 1;
            mn_error_fail(err, MN_FAIL_UNCONFIGURED,
                          "provider '%s' has no upstream worker in this virtual host",
                          prov->name);
            return -1;
        }
        if (px.acquire_connection(u->proxy_fn, &u->backend, u->worker, r->server) != OK) {
            u->backend = NULL;
            u->released = 1;
            r->status_line = NULL;
            mn_error_fail(err, MN_FAIL_BUSY, "no connection to provider '%s' is available",
                          prov->name);
            return -1;
        }
        apr_pool_cleanup_register(r->pool, u, upstream_cleanup, apr_pool_cleanup_null);
        u->backend->is_ssl = prov->is_ssl;
        if (px.determine_connection(r->pool, r, psf, u->worker, u->backend, uri, &locurl,
                                          NULL, 0, portstr, sizeof(portstr)) != OK) {
            return fail(u, err, MN_FAIL_UNREACHABLE, "cannot be resolved");
        }
        if (px.check_connection(u->proxy_fn, u->backend, r->server, 0,
                                      PROXY_CHECK_CONN_EMPTY) == APR_SUCCESS) {
            reused = 1;
        }
        else if (px.connect_backend(u->proxy_fn, u->backend, u->worker, r->server) != OK) {
            if (apr_time_now() - t0 >= prov->connect_timeout) {
                return fail(u, err, MN_FAIL_TIMEOUT, "did not accept a connection in time");
            }
            return fail(u, err, MN_FAIL_UNREACHABLE, "is unreachable");
        }
        if (px.connection_create_ex(u->proxy_fn, u->backend, r) != OK) {
            return fail(u, err, MN_FAIL_TLS,
                        "connection could not be set up (TLS not enabled? check SSLProxyEngine)");
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: %s connection to %s (%s)",
                      reused ? "reusing" : "new", prov->name, prov->base_url);
        u->timeout = first_byte_timeout(prov, deadline);
        apr_socket_timeout_set(u->backend->sock, u->timeout);
        u->tmp = apr_brigade_create(r->pool, u->backend->connection->bucket_alloc);
        u->rp = make_response_req(u->backend->connection, r);
        u->backend->r = u->rp;

        rv = send_request(u, req);
        if (rv == APR_SUCCESS) {
            rv = read_head(u);
        }
        if (rv == APR_SUCCESS) {
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: %s answered HTTP %d",
                          prov->name, u->status);
            *out = u;
            return 0;
        }
        if (ssl_handshake_failed(u->backend)) {
            return fail(u, err, MN_FAIL_TLS, "failed the TLS handshake");
        }
        if (APR_STATUS_IS_TIMEUP(rv)) {
            return fail(u, err, MN_FAIL_TIMEOUT,
                        "sent no response within the timeout");
        }
        if (reused && u->status == 0) {
            /* the pooled connection was closed by the upstream while idle:
             * the request never reached it, so one fresh try is safe */
            ap_log_rerror(APLOG_MARK, APLOG_DEBUG, rv, r,
                          "maniac: pooled connection to %s was stale, retrying", prov->name);
            mn_upstream_close(u);
            continue;
        }
        if (u->status) {
            return fail(u, err, MN_FAIL_BAD_RESPONSE, "sent malformed response headers");
        }
        return fail(u, err, MN_FAIL_RESET,
                    "closed the connection without a valid response");
    }
    return mn_error_fail(err, MN_FAIL_UNREACHABLE, "provider '%s' closed the connection twice",
                         prov->name);
}

/* Connect, send and wait for the head: all of it is upstream time, not the
 * gateway's overhead (maniac-overhead-us). */
int mn_upstream_open(request_rec *r, const mn_provider *prov, const mn_upstream_req *req,
                     apr_time_t deadline, mn_upstream **out, mn_error *err)
{
    mn_ops_clock *clock = mn_ops_clock_of(r);
    apr_time_t t0 = apr_time_now();
    int rc = upstream_open(r, prov, req, deadline, out, err);

    clock->upstream += apr_time_now() - t0;
    if (rc == 0) {
        (*out)->clock = clock;
    }
    return rc;
}

apr_status_t mn_upstream_read(mn_upstream *u, apr_bucket_brigade *bb, apr_read_type_e block)
{
    apr_status_t rv;
    apr_bucket *e, *next;
    apr_time_t t0;

    if (u->body_done) {
        return APR_EOF;
    }
    t0 = apr_time_now();
    rv = ap_get_brigade(u->rp->input_filters, bb, AP_MODE_READBYTES, block, 16384);
    if (u->clock) {
        u->clock->upstream += apr_time_now() - t0;
    }
    if (block == APR_NONBLOCK_READ && APR_STATUS_IS_EAGAIN(rv)) {
        return APR_SUCCESS;
    }
    if (rv == APR_EOF && u->read_until_close) {
        u->body_done = 1;
        return APR_EOF;
    }
    if (rv != APR_SUCCESS) {
        return rv == APR_EOF ? APR_ECONNRESET : rv;
    }
    for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb); e = next) {
        next = APR_BUCKET_NEXT(e);
        if (APR_BUCKET_IS_EOS(e)) {
            u->body_done = 1;
            apr_bucket_delete(e);
        }
        else if (APR_BUCKET_IS_METADATA(e)) {
            apr_bucket_delete(e);
        }
    }
    if (u->body_done && APR_BRIGADE_EMPTY(bb)) {
        return APR_EOF;
    }
    return APR_SUCCESS;
}

apr_status_t mn_upstream_read_all(mn_upstream *u, apr_size_t max, apr_interval_time_t idle,
                                  apr_time_t deadline, char **body, apr_size_t *len)
{
    apr_bucket_brigade *all = apr_brigade_create(u->r->pool, u->r->connection->bucket_alloc);
    apr_bucket_brigade *bb = apr_brigade_create(u->r->pool, u->backend->connection->bucket_alloc);
    apr_off_t total = 0;
    apr_status_t rv;

    for (;;) {
        apr_interval_time_t t = idle;
        if (deadline) {
            apr_interval_time_t left = deadline - apr_time_now();
            if (left <= 0) {
                apr_brigade_cleanup(all);
                return APR_TIMEUP;
            }
            t = left < t ? left : t;
        }
        mn_upstream_set_timeout(u, t);
        rv = mn_upstream_read(u, bb, APR_BLOCK_READ);
        if (rv != APR_SUCCESS && rv != APR_EOF) {
            apr_brigade_cleanup(bb);
            apr_brigade_cleanup(all);
            return rv;
        }
        if (!APR_BRIGADE_EMPTY(bb)) {
            apr_off_t n = 0;
            apr_brigade_length(bb, 1, &n);
            total += n;
            if ((apr_size_t)total > max) {
                apr_brigade_cleanup(bb);
                apr_brigade_cleanup(all);
                return APR_ENOSPC;
            }
            /* the data lives in the backend connection's allocator: copy */
            {
                char *copy;
                apr_size_t clen;
                apr_brigade_pflatten(bb, &copy, &clen, u->r->pool);
                APR_BRIGADE_INSERT_TAIL(all, apr_bucket_pool_create(copy, clen, u->r->pool,
                                                                    u->r->connection->bucket_alloc));
            }
            apr_brigade_cleanup(bb);
        }
        if (rv == APR_EOF) {
            break;
        }
    }
    rv = apr_brigade_pflatten(all, body, len, u->r->pool);
    apr_brigade_cleanup(all);
    return rv;
}
