/* The module's configuration (see include/mn_config.h): server and
 * per-directory configs, directive setters, startup checks, getters. */
#include <string.h>
#include <apr_strings.h>
#include <apr_shm.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <http_log.h>

#include "mod_maniac.h"
#include "mn_chunk.h"
#include "mn_log.h"
#include "mn_resilience.h"

mn_config *mn_conf;

/* A ManiacProvider line that needs TLS, remembered for the startup check. */
typedef struct {
    const char *name;
    const char *file;
    int line;
} https_use;

static apr_array_header_t *https_uses;

/* httpd reads the configuration twice at start (generations 0 and 1), then
 * once per restart; the running parent keeps the environment it started
 * with. */
static int config_is_restart(void)
{
    return ap_state_query(AP_SQ_CONFIG_GEN) >= 2;
}

/* Warnings once per read that matters: not again on the second read at start. */
static int config_warns(void)
{
    return ap_state_query(AP_SQ_CONFIG_GEN) != 1;
}

static void log_to_httpd(mn_log_level level, const char *msg)
{
    ap_log_error(APLOG_MARK, (int)level, 0, NULL, "maniac: %s", msg);
}

int mn_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    /* the configuration is read twice at startup and on every restart:
     * start each read from an empty table */
    mn_conf = apr_pcalloc(pconf, sizeof(*mn_conf));
    mn_conf->providers = mn_providers_create(pconf);
    https_uses = apr_array_make(pconf, 4, sizeof(https_use));
    mn_log_set(log_to_httpd);
    /* every LoadModule has run by now, whatever order they came in */
    mn_upstream_resolve_proxy();
    return OK;
}

static const char *where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->temp_pool, "%s:%d",
                        cmd->directive ? cmd->directive->filename : "?",
                        cmd->directive ? cmd->directive->line_num : 0);
}

/* key-file=P1,P2: relative paths are relative to ServerRoot, as every
 * Apache path.  The argv copy is what the pure parser sees. */
static const char *resolve_key_files(cmd_parms *cmd, int argc, char *const argv[],
                                     const char ***out)
{
    const char **v = apr_pmemdup(cmd->temp_pool, argv, sizeof(char *) * (apr_size_t)argc);
    int i;
    for (i = 2; i < argc; i++) {
        apr_array_header_t *paths;
        char *copy, *last = NULL, *path;
        if (strncmp(v[i], "key-file=", 9) || !v[i][9]) {
            continue;
        }
        paths = apr_array_make(cmd->temp_pool, 2, sizeof(const char *));
        copy = apr_pstrdup(cmd->temp_pool, v[i] + 9);
        for (path = apr_strtok(copy, ",", &last); path; path = apr_strtok(NULL, ",", &last)) {
            const char *abs = ap_server_root_relative(cmd->pool, path);
            if (!abs) {
                return apr_pstrcat(cmd->pool, "key-file=", path, ": invalid path", NULL);
            }
            *(const char **)apr_array_push(paths) = abs;
        }
        v[i] = apr_pstrcat(cmd->pool, "key-file=", apr_array_pstrcat(cmd->pool, paths, ','),
                           NULL);
    }
    *out = v;
    return NULL;
}

static void log_provider_warnings(cmd_parms *cmd, const mn_provider *prov)
{
    int i;
    if (prov->unavailable) {
        /* the variable's name only: err never holds a key */
        ap_log_error(APLOG_MARK, APLOG_ERR, 0, cmd->server,
                     "maniac: ManiacProvider %s (%s) is disabled until a full stop and start: "
                     "%s; environment variables are read when httpd starts, not on a graceful "
                     "restart (key-file= is re-read on every restart)",
                     prov->name, where(cmd), prov->unavailable);
    }
    for (i = 0; config_warns() && prov->warnings && i < prov->warnings->nelts; i++) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, cmd->server, "maniac: ManiacProvider %s (%s): %s",
                     prov->name, where(cmd), APR_ARRAY_IDX(prov->warnings, i, const char *));
    }
}

const char *mn_config_cmd_provider(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    mn_provider *prov;
    const char **args = NULL;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err || (err = resolve_key_files(cmd, argc, argv, &args)) != NULL) {
        return err;
    }
    /* a restart must not take the server down for a key: that provider
     * answers 503 until the key is back, the others keep working */
    err = mn_provider_parse_ex(cmd->pool, argc, args,
                               config_is_restart() ? MN_PARSE_KEYS_SOFT : 0, &prov);
    if (err) {
        return apr_pstrcat(cmd->pool, "ManiacProvider: ", err, NULL);
    }
    prov->conf_file = cmd->directive ? cmd->directive->filename : NULL;
    prov->conf_line = cmd->directive ? cmd->directive->line_num : 0;
    log_provider_warnings(cmd, prov);
    if (prov->format != MN_FORMAT_ECHO) {
        if (!mn_upstream_proxy_available()) {
            return apr_psprintf(cmd->pool, "ManiacProvider %s (%s): mod_proxy is not loaded: "
                                "a2enmod proxy (or 'LoadModule proxy_module "
                                ".../mod_proxy.so')", prov->name, where(cmd));
        }
        if ((err = mn_upstream_define_worker(cmd->pool, cmd->server, prov)) != NULL) {
            return apr_pstrcat(cmd->pool, "ManiacProvider ", prov->name, ": ", err, NULL);
        }
        if (prov->is_ssl) {
            https_use *h = apr_array_push(https_uses);
            h->name = prov->name;
            h->file = prov->conf_file;
            h->line = prov->conf_line;
        }
    }
    if ((err = mn_providers_add(mn_conf->providers, prov)) != NULL) {
        return apr_pstrcat(cmd->pool, "ManiacProvider: ", err, NULL);
    }
    mn_chunk_member_keep(cmd->pool, prov->name);
    return NULL;
}

const char *mn_config_cmd_model(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    err = mn_alias_add(mn_conf->providers, argc, (const char *const *)argv,
                       cmd->directive ? cmd->directive->filename : NULL,
                       cmd->directive ? cmd->directive->line_num : 0);
    return err ? apr_pstrcat(cmd->pool, "ManiacModel: ", err, NULL) : NULL;
}

void *mn_config_create_dir(apr_pool_t *p, char *dir)
{
    mn_dir_config *dc = apr_pcalloc(p, sizeof(*dc));
    mn_auth_dir_init(&dc->auth);
    mn_settings_init(&dc->settings);
    return dc;
}

void *mn_config_merge_dir(apr_pool_t *p, void *basev, void *addv)
{
    const mn_dir_config *base = basev, *add = addv;
    mn_dir_config *merged = apr_pcalloc(p, sizeof(*merged));
    merged->cors = *mn_cors_merge(&base->cors, &add->cors);
    mn_auth_dir_merge(&base->auth, &add->auth, &merged->auth);
    mn_settings_merge(&merged->settings, &base->settings, &add->settings);
    return merged;
}

void *mn_config_create_server(apr_pool_t *p, server_rec *s)
{
    mn_settings *ss = apr_palloc(p, sizeof(*ss));
    mn_settings_init(ss);
    return ss;
}

void *mn_config_merge_server(apr_pool_t *p, void *basev, void *addv)
{
    mn_settings *merged = apr_palloc(p, sizeof(*merged));
    mn_settings_merge(merged, basev, addv);
    return merged;
}

static mn_settings *server_settings(server_rec *s)
{
    return ap_get_module_config(s->module_config, &maniac_module);
}

static const mn_settings *dir_settings(request_rec *r)
{
    const mn_dir_config *dc = ap_get_module_config(r->per_dir_config, &maniac_module);
    return dc ? &dc->settings : NULL;
}

apr_off_t mn_config_max_body(request_rec *r)
{
    return (apr_off_t)mn_settings_max_body(dir_settings(r), server_settings(r->server));
}

apr_size_t mn_config_max_response(request_rec *r)
{
    return (apr_size_t)mn_settings_max_response(server_settings(r->server));
}

apr_size_t mn_config_max_event(request_rec *r)
{
    return (apr_size_t)mn_settings_max_event(server_settings(r->server));
}

int mn_config_schema_expansion(request_rec *r)
{
    return mn_settings_schema_expansion(server_settings(r->server));
}

int mn_config_overhead_header(request_rec *r)
{
    return mn_settings_overhead_header(server_settings(r->server));
}

int mn_config_metrics(server_rec *s)
{
    return mn_settings_metrics(server_settings(s));
}

const char *mn_config_cmd_cors(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    const char *err = mn_cors_parse(cmd->pool, argc, (const char *const *)argv,
                                    &((mn_dir_config *)dconf)->cors);
    return err ? apr_pstrcat(cmd->pool, "ManiacCORS: ", err, NULL) : NULL;
}

/* A field is kept for an alias only when every target keeps it (the
 * handler ANDs them): say so when the targets disagree. */
static void warn_alias_keep(apr_pool_t *ptemp, server_rec *s)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(ptemp, mn_conf->providers->aliases); hi; hi = apr_hash_next(hi)) {
        const mn_alias *a = apr_hash_this_val(hi);
        unsigned all = ~0u, any = 0;
        int i;
        for (i = 0; i < a->targets->nelts; i++) {
            const mn_provider *prov = APR_ARRAY_IDX(a->targets, i, mn_target).provider;
            all &= prov->keep;
            any |= prov->keep;
        }
        if (all != any) {
            ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "maniac: ManiacModel %s (%s:%d): its "
                         "targets differ in keep=; the alias keeps only what every target keeps",
                         a->name, a->conf_file ? a->conf_file : "?", a->conf_line);
        }
    }
}

const char *mn_config_cmd_key_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    return mn_auth_cmd_key_file(cmd, &((mn_dir_config *)dconf)->auth, arg);
}

const char *mn_config_cmd_key_query(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    return mn_auth_cmd_key_query(cmd, &((mn_dir_config *)dconf)->auth, argc, argv);
}

/* ManiacMaxRequestBody belongs to a <Location> as well (the directory's
 * value wins); the other sizes to a server or virtual host. */
const char *mn_config_cmd_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    char *end;
    apr_int64_t v;
    const char *name = cmd->cmd->name;
    int per_dir = !strcmp(name, "ManiacMaxRequestBody");
    mn_settings *ss;
    const char *err = per_dir ? NULL : ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err) {
        return err;
    }
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || v <= 0) {
        return apr_pstrcat(cmd->pool, name, ": expected a number of bytes > 0", NULL);
    }
    ss = per_dir && cmd->path ? &((mn_dir_config *)dconf)->settings
                              : server_settings(cmd->server);
    if (per_dir) {
        ss->max_body = v;
    }
    else if (!strcmp(name, "ManiacMaxResponseBody")) {
        ss->max_response = v;
    }
    else {
        ss->max_event = v;
    }
    return NULL;
}

const char *mn_config_cmd_expansion(cmd_parms *cmd, void *dconf, const char *arg)
{
    char *end;
    apr_int64_t v;
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (err) {
        return err;
    }
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || v < 1 || v > 1000) {
        return "ManiacMaxSchemaExpansion: expected a factor from 1 to 1000";
    }
    server_settings(cmd->server)->max_schema_expansion = (int)v;
    return NULL;
}

const char *mn_config_cmd_overhead_header(cmd_parms *cmd, void *dconf, int on)
{
    const char *err = ap_check_cmd_context(cmd, NOT_IN_DIR_LOC_FILE);
    if (!err) {
        server_settings(cmd->server)->overhead_header = on;
    }
    return err;
}

/* One shared table for the whole server: not per virtual host. */
const char *mn_config_cmd_metrics(cmd_parms *cmd, void *dconf, int on)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (!err) {
        server_settings(cmd->server)->metrics = on;
    }
    return err;
}

/* Where the handler is mounted and where `SSLProxyEngine on` is in effect:
 * one scope for the main server (inherited by every virtual host), one per
 * <VirtualHost>.  TLS to an upstream needs the engine in the server that
 * serves the request, not just anywhere. */
typedef struct {
    const ap_directive_t *vhost;    /* NULL: main server */
    const ap_directive_t *mount;    /* first SetHandler maniac */
    int ssl_proxy;
} tls_scope;

static int arg_is(const char *args, const char *word)
{
    size_t n = strlen(word);
    if (!args) {
        return 0;
    }
    if (*args == '"' || *args == '\'') {
        return !ap_cstr_casecmpn(args + 1, word, n) && args[n + 1] == *args && !args[n + 2];
    }
    return !ap_cstr_casecmp(args, word);
}

static void scan_scope(const ap_directive_t *d, tls_scope *sc, apr_array_header_t *vhosts)
{
    for (; d; d = d->next) {
        if (!ap_cstr_casecmp(d->directive, "<VirtualHost")) {
            tls_scope *v = apr_array_push(vhosts);
            memset(v, 0, sizeof(*v));
            v->vhost = d;
            scan_scope(d->first_child, v, vhosts);
            continue;
        }
        if (!ap_cstr_casecmp(d->directive, "SSLProxyEngine") && arg_is(d->args, "on")) {
            sc->ssl_proxy = 1;
        }
        if (!ap_cstr_casecmp(d->directive, "SetHandler") && arg_is(d->args, MN_HANDLER_NAME)
            && !sc->mount) {
            sc->mount = d;
        }
        scan_scope(d->first_child, sc, vhosts);
    }
}

/* NULL when TLS upstreams work wherever the handler is mounted, else why not. */
static const char *tls_scope_problem(apr_pool_t *p)
{
    apr_array_header_t *vhosts = apr_array_make(p, 4, sizeof(tls_scope));
    tls_scope main_sc;
    int i, any_mount, any_ssl;

    memset(&main_sc, 0, sizeof(main_sc));
    scan_scope(ap_conftree, &main_sc, vhosts);
    any_mount = main_sc.mount != NULL;
    any_ssl = main_sc.ssl_proxy;
    for (i = 0; i < vhosts->nelts; i++) {
        const tls_scope *v = &APR_ARRAY_IDX(vhosts, i, tls_scope);
        any_mount |= v->mount != NULL;
        any_ssl |= v->ssl_proxy;
    }
    if (!any_mount) {
        /* mounted from .htaccess or not yet: at least the engine must exist */
        return any_ssl ? NULL : "'SSLProxyEngine on' is not set";
    }
    if (main_sc.mount && !main_sc.ssl_proxy) {
        return apr_psprintf(p, "'SSLProxyEngine on' is not set in the main server config, "
                            "where SetHandler maniac (%s:%d) is mounted for every virtual host",
                            main_sc.mount->filename, main_sc.mount->line_num);
    }
    for (i = 0; i < vhosts->nelts; i++) {
        const tls_scope *v = &APR_ARRAY_IDX(vhosts, i, tls_scope);
        if (v->mount && !v->ssl_proxy && !main_sc.ssl_proxy) {
            const char *args = v->vhost->args ? v->vhost->args : "";
            size_t alen = strlen(args);
            if (alen && args[alen - 1] == '>') {
                alen--;   /* the tree keeps the section's closing '>' */
            }
            return apr_psprintf(p, "'SSLProxyEngine on' is not set for <VirtualHost %.*s> (%s:%d), "
                                "which mounts SetHandler maniac (%s:%d): set it in that "
                                "virtual host or in the main server config",
                                (int)alen, args, v->vhost->filename, v->vhost->line_num,
                                v->mount->filename, v->mount->line_num);
        }
    }
    return NULL;
}

int mn_config_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s)
{
    int i, ok = 1, have_ssl = ap_find_linked_module("mod_ssl.c") != NULL;
    const char *tls_problem = https_uses->nelts ? tls_scope_problem(ptemp) : NULL;
    const char *err = mn_aliases_resolve(mn_conf->providers);

    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "maniac: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    warn_alias_keep(ptemp, s);
    for (i = 0; config_warns() && i < mn_conf->providers->warnings->nelts; i++) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "maniac: %s",
                     APR_ARRAY_IDX(mn_conf->providers->warnings, i, const char *));
    }
    for (i = 0; i < https_uses->nelts; i++) {
        const https_use *h = &APR_ARRAY_IDX(https_uses, i, https_use);
        if (!have_ssl || tls_problem) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "maniac: ManiacProvider %s (%s:%d) has an https URL but %s",
                         h->name, h->file ? h->file : "?", h->line,
                         !have_ssl ? "mod_ssl is not loaded: a2enmod ssl (or 'LoadModule "
                                     "ssl_module .../mod_ssl.so'), and set 'SSLProxyEngine on'"
                                   : tls_problem);
            ok = 0;
        }
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

int mn_config_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s)
{
    int i, n = mn_conf->providers->list->nelts;
    apr_shm_t *shm;
    apr_status_t rv;

    /* Breaker state must be shared by every child: anonymous shared memory
     * made here, before the children fork, is inherited by all of them. */
    if (n > 0 && ap_state_query(AP_SQ_MAIN_STATE) != AP_SQ_MS_CREATE_PRE_CONFIG) {
        rv = apr_shm_create(&shm, sizeof(mn_breaker_slot) * (apr_size_t)n, NULL, pconf);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "maniac: cannot create shared memory for the circuit breakers");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        mn_conf->breakers = apr_shm_baseaddr_get(shm);
        memset(mn_conf->breakers, 0, sizeof(mn_breaker_slot) * (apr_size_t)n);
    }
    for (i = 0; i < mn_conf->providers->list->nelts; i++) {
        const mn_provider *p = APR_ARRAY_IDX(mn_conf->providers->list, i, mn_provider *);
        ap_log_error(APLOG_MARK, APLOG_DEBUG, 0, s,
                     "maniac: provider %s -> %s format=%s key=%s timeout=%" APR_TIME_T_FMT "ms",
                     p->name, p->base_url, mn_format_name(p->format),
                     p->key_source ? p->key_source : "none", apr_time_as_msec(p->timeout));
    }
    return OK;
}

