/* `AuthType maniac`: client keys at check_authn (see include/mn_auth.h).
 *
 * The clear key lives only in this request's headers and a stack buffer:
 * it is hashed at once, the two headers that may carry it are removed from
 * r->headers_in (nothing later, log formats included, can see it), and no
 * message here ever prints it.  Errors are written here, OpenAI-shaped:
 * httpd's own 401 page is HTML. */
#include <string.h>
#include <apr_strings.h>
#include <apr_optional.h>
#include <apr_dbd.h>
#include <apr_file_io.h>
#include <apr_thread_mutex.h>
#include <openssl/evp.h>
#include <http_core.h>
#include <http_request.h>
#include <mod_auth.h>
#include <mod_dbd.h>

#include "mod_maniac.h"
#include "mn_face_messages.h"
#include "mn_auth.h"
#include "mn_notes.h"

#define MN_KEY_MAX 512                      /* longest key accepted, in bytes */
#define MN_KEY_FILE_MAX (16 * 1024 * 1024)
#define MN_KEY_CACHE_SLOTS 1024             /* per process, direct-mapped by hash */
#define MN_KEY_CACHE_TTL apr_time_from_sec(60)
#define MN_USERDATA "maniac-auth-key"

/* ---- configuration ------------------------------------------------------ */

void mn_auth_dir_init(mn_auth_dir *d)
{
    memset(d, 0, sizeof(*d));
    d->cache_ttl = -1;
}

void mn_auth_dir_merge(const mn_auth_dir *base, const mn_auth_dir *add, mn_auth_dir *out)
{
    *out = *base;
    if (add->keys) {
        out->keys = add->keys;
        out->key_file = add->key_file;
    }
    if (add->query) {
        out->query = add->query;
        out->query_label = add->query_label;
    }
    if (add->cache_ttl >= 0) {
        out->cache_ttl = add->cache_ttl;
    }
}

/* One parse per file and configuration read, however many sections use it. */
static const char *load_key_file(cmd_parms *cmd, const char *path, mn_key_table **out)
{
    apr_hash_t *seen = NULL;
    apr_file_t *f;
    apr_finfo_t fi;
    apr_size_t n;
    apr_status_t rv;
    char *text;
    const char *err;

    apr_pool_userdata_get((void **)&seen, "maniac-key-files", cmd->pool);
    if (!seen) {
        seen = apr_hash_make(cmd->pool);
        apr_pool_userdata_setn(seen, "maniac-key-files", NULL, cmd->pool);
    }
    if ((*out = apr_hash_get(seen, path, APR_HASH_KEY_STRING)) != NULL) {
        return NULL;
    }
    if ((rv = apr_file_open(&f, path, APR_FOPEN_READ, 0, cmd->temp_pool)) != APR_SUCCESS
        || (rv = apr_file_info_get(&fi, APR_FINFO_SIZE, f)) != APR_SUCCESS) {
        char buf[120];
        return apr_psprintf(cmd->pool, "cannot read %s: %s", path,
                            apr_strerror(rv, buf, sizeof(buf)));
    }
    if (fi.size > MN_KEY_FILE_MAX) {
        apr_file_close(f);
        return apr_psprintf(cmd->pool, "%s is larger than %d bytes", path, MN_KEY_FILE_MAX);
    }
    text = apr_palloc(cmd->temp_pool, (apr_size_t)fi.size + 1);
    rv = apr_file_read_full(f, text, (apr_size_t)fi.size, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && rv != APR_EOF) {
        return apr_psprintf(cmd->pool, "cannot read %s", path);
    }
    text[n] = '\0';
    if (memchr(text, '\0', n)) {
        return apr_psprintf(cmd->pool, "%s: NUL byte in the file", path);
    }
    if ((err = mn_key_table_load(cmd->pool, path, text, out)) != NULL) {
        return err;
    }
    apr_hash_set(seen, path, APR_HASH_KEY_STRING, *out);
    return NULL;
}

const char *mn_auth_cmd_key_file(cmd_parms *cmd, mn_auth_dir *d, const char *arg)
{
    const char *path = ap_server_root_relative(cmd->pool, arg);
    const char *err;
    if (!path) {
        return apr_pstrcat(cmd->pool, "ManiacKeyFile: invalid path ", arg, NULL);
    }
    if ((err = load_key_file(cmd, path, &d->keys)) != NULL) {
        return apr_pstrcat(cmd->pool, "ManiacKeyFile: ", err, NULL);
    }
    d->key_file = path;
    return NULL;
}

const char *mn_auth_cmd_key_query(cmd_parms *cmd, mn_auth_dir *d, int argc, char *const argv[])
{
    static unsigned serial;
    APR_OPTIONAL_FN_TYPE(ap_dbd_prepare) *prepare = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_prepare);
    const char *q, *first;
    int i;

    if (argc < 1) {
        return "ManiacKeyQuery: expected \"SQL with one %s\" [cache=SECONDS]";
    }
    q = argv[0];
    first = strstr(q, "%s");
    if (!first || strstr(first + 2, "%s")) {
        return "ManiacKeyQuery: the SQL needs exactly one %s (the key's SHA-256 in hex)";
    }
    for (i = 1; i < argc; i++) {
        char *end;
        apr_int64_t s;
        if (strncmp(argv[i], "cache=", 6)) {
            return apr_pstrcat(cmd->pool, "ManiacKeyQuery: unknown option ", argv[i], NULL);
        }
        s = apr_strtoi64(argv[i] + 6, &end, 10);
        if (end == argv[i] + 6 || *end || s < 0 || s > 86400) {
            return "ManiacKeyQuery: cache= takes seconds (0 to 86400)";
        }
        d->cache_ttl = apr_time_from_sec(s);
    }
    if (!prepare) {
        return "ManiacKeyQuery needs mod_dbd: 'LoadModule dbd_module .../mod_dbd.so' before "
               "it, and DBDriver/DBDParams";
    }
    d->query = q;
    d->query_label = apr_psprintf(cmd->pool, "maniac_keys_%u", ++serial);
    prepare(cmd->server, q, d->query_label);
    return NULL;
}

static const mn_auth_dir *dir_of(request_rec *r)
{
    const mn_dir_config *dc = ap_get_module_config(r->per_dir_config, &maniac_module);
    return dc ? &dc->auth : NULL;
}

/* ---- the per-process cache of SQL answers ------------------------------- */

typedef struct {
    char hash[65];
    const char *label;          /* which query answered */
    apr_time_t fetched;
    apr_pool_t *pool;           /* owns key; cleared when the slot is reused */
    mn_client_key *key;         /* NULL: the query found no such key */
} cache_slot;

static cache_slot *cache;
static apr_thread_mutex_t *cache_lock;

static void fetch_sha256(void);

static void child_init(apr_pool_t *p, server_rec *s)
{
    fetch_sha256();
    cache = apr_pcalloc(p, sizeof(cache_slot) * MN_KEY_CACHE_SLOTS);
    if (apr_thread_mutex_create(&cache_lock, APR_THREAD_MUTEX_DEFAULT, p) != APR_SUCCESS) {
        cache_lock = NULL;
    }
}

static int hexval(char c)
{
    return c <= '9' ? c - '0' : c - 'a' + 10;
}

static cache_slot *slot_for(const char *hash)
{
    /* the hash is uniform: its first digits spread the keys evenly */
    unsigned v = ((unsigned)hexval(hash[0]) << 8) | ((unsigned)hexval(hash[1]) << 4)
                 | (unsigned)hexval(hash[2]);
    return &cache[v % MN_KEY_CACHE_SLOTS];
}

/* 1 and *out (a copy in r->pool, or NULL for "no such key") on a fresh hit. */
static int cache_get(request_rec *r, const mn_auth_dir *d, const char *hash,
                     const mn_client_key **out)
{
    cache_slot *sl;
    int hit = 0;
    apr_interval_time_t ttl = d->cache_ttl >= 0 ? d->cache_ttl : MN_KEY_CACHE_TTL;
    if (!cache || !cache_lock || !ttl) {
        return 0;
    }
    sl = slot_for(hash);
    apr_thread_mutex_lock(cache_lock);
    if (sl->label == d->query_label && mn_ct_equal(sl->hash, hash, 64)
        && apr_time_now() - sl->fetched < ttl) {
        *out = sl->key ? mn_key_copy(r->pool, sl->key) : NULL;
        hit = 1;
    }
    apr_thread_mutex_unlock(cache_lock);
    return hit;
}

static void cache_put(const mn_auth_dir *d, const char *hash, const mn_client_key *k)
{
    cache_slot *sl;
    if (!cache || !cache_lock || !d->cache_ttl) {
        return;
    }
    sl = slot_for(hash);
    apr_thread_mutex_lock(cache_lock);
    if (!sl->pool && apr_pool_create(&sl->pool, NULL) != APR_SUCCESS) {
        sl->pool = NULL;
    }
    if (sl->pool) {
        apr_pool_clear(sl->pool);
        memcpy(sl->hash, hash, 65);
        sl->label = d->query_label;
        sl->fetched = apr_time_now();
        sl->key = k ? mn_key_copy(sl->pool, k) : NULL;
    }
    apr_thread_mutex_unlock(cache_lock);
}

/* ---- lookups -------------------------------------------------------------- */

typedef enum { FOUND, NOT_FOUND, STORE_DOWN, STORE_BAD_ROW } lookup_result;

/* Runs ManiacKeyQuery.  Columns: name, then (optional) options in key-file
 * syntax; the first row counts. */
static lookup_result sql_lookup(request_rec *r, const mn_auth_dir *d, const char *hash,
                                const mn_client_key **out)
{
    APR_OPTIONAL_FN_TYPE(ap_dbd_acquire) *acquire = APR_RETRIEVE_OPTIONAL_FN(ap_dbd_acquire);
    ap_dbd_t *db;
    apr_dbd_prepared_t *stmt;
    apr_dbd_results_t *res = NULL;
    apr_dbd_row_t *row = NULL;
    const char *name = NULL, *opts = NULL, *err;
    mn_client_key *k;
    int rv;

    if (cache_get(r, d, hash, out)) {
        return *out ? FOUND : NOT_FOUND;
    }
    if (!acquire || !(db = acquire(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "maniac: ManiacKeyQuery: no database "
                      "connection (mod_dbd: check DBDriver/DBDParams)");
        return STORE_DOWN;
    }
    stmt = apr_hash_get(db->prepared, d->query_label, APR_HASH_KEY_STRING);
    if (!stmt) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "maniac: ManiacKeyQuery is not prepared "
                      "on this connection (is DBDriver set for this virtual host?)");
        return STORE_DOWN;
    }
    /* random access: the pgsql driver reports a dead connection only then
     * (a sequential select "succeeds" and just yields no row) */
    if ((rv = apr_dbd_pvselect(db->driver, r->pool, db->handle, &res, stmt, 1, hash, NULL))) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "maniac: ManiacKeyQuery failed: %s",
                      apr_dbd_error(db->driver, db->handle, rv));
        return STORE_DOWN;
    }
    while (apr_dbd_get_row(db->driver, r->pool, res, &row, -1) == 0) {
        if (!name) {
            name = apr_pstrdup(r->pool, apr_dbd_get_entry(db->driver, row, 0));
            if (apr_dbd_num_cols(db->driver, res) > 1) {
                opts = apr_pstrdup(r->pool, apr_dbd_get_entry(db->driver, row, 1));
            }
        }
    }
    if (!name) {
        cache_put(d, hash, NULL);
        *out = NULL;
        return NOT_FOUND;
    }
    err = mn_key_parse_line(r->pool, apr_pstrcat(r->pool, name, " ", hash, " ",
                                                 opts ? opts : "", NULL), &k);
    if (err || !k) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "maniac: ManiacKeyQuery row: %s",
                      err ? err : "empty name");
        return STORE_BAD_ROW;
    }
    cache_put(d, hash, k);
    *out = k;
    return FOUND;
}

/* ---- the request ------------------------------------------------------------ */

/* The key as sent (Bearer first, then x-api-key); NULL when absent or
 * malformed.  Both headers are removed from the request. */
static const char *take_key(request_rec *r)
{
    const char *auth = apr_table_get(r->headers_in, "Authorization");
    const char *xkey = apr_table_get(r->headers_in, "x-api-key");
    const char *key = NULL;
    size_t len;

    if (auth && !ap_cstr_casecmpn(auth, "Bearer ", 7)) {
        key = auth + 7;
        while (*key == ' ' || *key == '\t') {
            key++;
        }
    }
    else if (xkey) {
        key = xkey;
    }
    if (key) {
        /* trailing blanks are not part of it; inner ones make it malformed */
        len = strlen(key);
        while (len && (key[len - 1] == ' ' || key[len - 1] == '\t')) {
            len--;
        }
        key = apr_pstrmemdup(r->pool, key, len);
        for (; len; len--) {
            unsigned char c = (unsigned char)key[len - 1];
            if (c <= 0x20 || c >= 0x7f) {
                key = NULL;
                break;
            }
        }
        if (key && (!*key || strlen(key) > MN_KEY_MAX)) {
            key = NULL;
        }
    }
    apr_table_unset(r->headers_in, "Authorization");
    apr_table_unset(r->headers_in, "x-api-key");
    return key;
}

/* OpenSSL 3 looks the algorithm up on every EVP_sha256() digest (measured:
 * two thirds of the cost of a request's authentication); fetched once per
 * child instead. */
static const EVP_MD *sha256_md;

static void fetch_sha256(void)
{
#if OPENSSL_VERSION_NUMBER >= 0x30000000L
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
#endif
    if (!sha256_md) {
        sha256_md = EVP_sha256();
    }
}

static int hash_key(const char *key, char *hex)
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (!EVP_Digest(key, strlen(key), md, &n, sha256_md ? sha256_md : EVP_sha256(), NULL)
        || n != 32) {
        return -1;
    }
    mn_hex32(md, hex);
    return 0;
}

/* Writes the JSON error itself and returns DONE: httpd would answer a 401
 * returned from here with its HTML page. */
static int deny(request_rec *r, int status, const char *type, const char *code,
                const char *message)
{
    mn_error e;
    json_t *body;
    char *s;

    mn_error_set(&e, status, type, NULL, code, "%s", message);
    if (status == HTTP_UNAUTHORIZED) {
        apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
    }
    if (ap_discard_request_body(r) != OK) {
        r->connection->keepalive = AP_CONN_CLOSE;
    }
    mn_notes_outcome(r->pool, r->notes, 0, NULL, e.type, e.code);
    body = mn_fm_path(r->uri) ? mn_fm_error_json(&e, NULL) : mn_error_to_json(&e, NULL);
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    r->status = status;
    ap_set_content_type(r, "application/json");
    ap_set_content_length(r, s ? (apr_off_t)strlen(s) : 0);
    if (s && !r->header_only) {
        ap_rwrite(s, (int)strlen(s), r);
    }
    free(s);
    return DONE;
}

static int deny_key(request_rec *r, const char *message)
{
    return deny(r, HTTP_UNAUTHORIZED, "invalid_request_error", "invalid_api_key", message);
}

static int is_maniac_auth(request_rec *r)
{
    const char *t = ap_auth_type(r);
    return t && !ap_cstr_casecmp(t, MN_AUTH_TYPE);
}

static int check_authn(request_rec *r)
{
    const mn_auth_dir *d;
    const mn_client_key *k = NULL;
    const char *key;
    char hex[65];

    if (!is_maniac_auth(r)) {
        return DECLINED;
    }
    d = dir_of(r);
    if (!d || (!d->keys && !d->query)) {
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, r, "maniac: AuthType maniac for %s but no "
                      "ManiacKeyFile or ManiacKeyQuery applies here", r->uri);
        return deny(r, HTTP_INTERNAL_SERVER_ERROR, "server_error", "auth_misconfigured",
                    "The server's key configuration is incomplete");
    }
    if (!(key = take_key(r))) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: no API key in the request");
        return deny_key(r, "You didn't provide an API key. Send it in an Authorization "
                           "header using Bearer auth (Authorization: Bearer YOUR_KEY) or in "
                           "an x-api-key header.");
    }
    if (hash_key(key, hex)) {
        return deny(r, HTTP_INTERNAL_SERVER_ERROR, "server_error", NULL,
                    "The key could not be checked");
    }
    key = NULL;
    if (d->keys) {
        k = mn_key_table_find(d->keys, hex);
    }
    if (!k && d->query) {
        switch (sql_lookup(r, d, hex, &k)) {
        case STORE_DOWN:
            return deny(r, HTTP_SERVICE_UNAVAILABLE, "server_error", "key_store_unavailable",
                        "The key store is unavailable; retry later");
        case STORE_BAD_ROW:
            return deny(r, HTTP_INTERNAL_SERVER_ERROR, "server_error", "key_store_error",
                        "The key store returned an invalid entry for this key");
        default:
            break;
        }
    }
    if (!k) {
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: unknown API key (sha256 %.12s...)",
                      hex);
        return deny_key(r, "Incorrect API key provided.");
    }
    if (mn_key_expired(k, r->request_time)) {
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: key %s has expired", k->name);
        return deny_key(r, "This API key has expired.");
    }
    r->user = apr_pstrdup(r->pool, k->name);
    r->ap_auth_type = (char *)MN_AUTH_TYPE;
    apr_pool_userdata_setn(k, MN_USERDATA, NULL, r->pool);
    apr_table_setn(r->notes, "maniac-key", r->user);
    ap_log_rerror(APLOG_MARK, APLOG_TRACE1, 0, r, "maniac: key %s accepted", k->name);
    return OK;
}

/* A CORS preflight carries no key (browsers never send credentials with
 * it): it goes past authentication to the handler, whose ManiacCORS check
 * answers it (204 for an allowed origin, 403 otherwise).  Only for the
 * maniac handler, only for a real preflight, only without a key. */
static int preflight(request_rec *r)
{
    const core_dir_config *core = ap_get_core_module_config(r->per_dir_config);
    const char *handler = core->handler, *err = NULL;
    if (r->method_number != M_OPTIONS || !is_maniac_auth(r)
        || !apr_table_get(r->headers_in, "Origin")
        || !apr_table_get(r->headers_in, "Access-Control-Request-Method")
        || apr_table_get(r->headers_in, "Authorization")
        || apr_table_get(r->headers_in, "x-api-key")) {
        return DECLINED;
    }
    if (core->expr_handler) {       /* SetHandler */
        handler = ap_expr_str_exec(r, core->expr_handler, &err);
    }
    return handler && !err && !strcmp(handler, MN_HANDLER_NAME) ? OK : DECLINED;
}

/* An authz module (Require user ...) refused an authenticated key: httpd
 * answers 401 itself; make it the same JSON shape as ours. */
static int note_auth_failure(request_rec *r, const char *type)
{
    mn_error e;
    json_t *body;
    char *s;
    if (ap_cstr_casecmp(type, MN_AUTH_TYPE)) {
        return DECLINED;
    }
    apr_table_setn(r->err_headers_out, "WWW-Authenticate", "Bearer");
    mn_error_set(&e, HTTP_UNAUTHORIZED, "invalid_request_error", NULL, "key_not_allowed",
                 "This API key is not allowed to use this endpoint.");
    mn_notes_outcome(r->pool, r->notes, 0, NULL, e.type, e.code);
    body = mn_fm_path(r->uri) ? mn_fm_error_json(&e, NULL) : mn_error_to_json(&e, NULL);
    s = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    if (s) {
        ap_custom_response(r, HTTP_UNAUTHORIZED, apr_pstrdup(r->pool, s));
        apr_table_setn(r->notes, "maniac-json-error", "1");
        free(s);
    }
    return OK;
}

#define MN_JSON_ERROR_FILTER "MANIAC_JSON_ERROR"

/* httpd labels a custom error response text/html: ours is JSON. */
static apr_status_t json_error_filter(ap_filter_t *f, apr_bucket_brigade *bb)
{
    ap_set_content_type(f->r, "application/json");
    ap_remove_output_filter(f);
    return ap_pass_brigade(f->next, bb);
}

static void insert_error_filter(request_rec *r)
{
    if (apr_table_get(r->notes, "maniac-json-error")) {
        ap_add_output_filter(MN_JSON_ERROR_FILTER, NULL, r, r->connection);
    }
}

const mn_client_key *mn_auth_key(request_rec *r)
{
    while (r) {
        void *k = NULL;
        apr_pool_userdata_get(&k, MN_USERDATA, r->pool);
        if (k) {
            return k;
        }
        r = r->main ? r->main : r->prev;
    }
    return NULL;
}

void mn_auth_add_tags(request_rec *r)
{
    const mn_client_key *k = mn_auth_key(r);
    const char *have, *add;
    if (!k || !k->tags || !k->tags->nelts) {
        return;
    }
    add = apr_array_pstrcat(r->pool, k->tags, ',');
    have = apr_table_get(r->notes, "maniac-tags");
    apr_table_setn(r->notes, "maniac-tags", have ? apr_pstrcat(r->pool, have, ",", add, NULL)
                                                 : add);
}

void mn_auth_register_hooks(apr_pool_t *p)
{
    ap_hook_check_authn(check_authn, NULL, NULL, APR_HOOK_MIDDLE, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_check_access_ex(preflight, NULL, NULL, APR_HOOK_FIRST, AP_AUTH_INTERNAL_PER_CONF);
    ap_hook_note_auth_failure(note_auth_failure, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_insert_error_filter(insert_error_filter, NULL, NULL, APR_HOOK_MIDDLE);
    ap_register_output_filter(MN_JSON_ERROR_FILTER, json_error_filter, NULL, AP_FTYPE_RESOURCE);
    ap_hook_child_init(child_init, NULL, NULL, APR_HOOK_MIDDLE);
}
