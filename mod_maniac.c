/* mod_maniac: an LLM gateway inside Apache httpd.
 *
 * This file only wires things together: the ManiacProvider directive and
 * friends, the startup checks, the handler hook and the log callback for the
 * pure units.  The work happens in src/. */
#include <string.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <ap_mmn.h>

#define MN_MODULE_MAIN
#include "mod_maniac.h"
#include "mn_log.h"
#include "mn_ops.h"
#include "mn_resilience.h"
#include <apr_shm.h>
#include <http_core.h>

module AP_MODULE_DECLARE_DATA maniac_module;

mn_config *mn_conf;

/* A ManiacProvider line that needs TLS, remembered for the startup check. */
typedef struct {
    const char *name;
    const char *file;
    int line;
} https_use;

static apr_array_header_t *https_uses;

static void log_to_httpd(mn_log_level level, const char *msg)
{
    ap_log_error(APLOG_MARK, (int)level, 0, NULL, "maniac: %s", msg);
}

static int maniac_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    /* the configuration is read twice at startup and on every restart:
     * start each read from an empty table */
    mn_conf = apr_pcalloc(pconf, sizeof(*mn_conf));
    mn_conf->providers = mn_providers_create(pconf);
    mn_conf->max_body = MN_DEFAULT_MAX_BODY;
    mn_conf->max_response = MN_DEFAULT_MAX_RESPONSE;
    mn_conf->max_event = MN_DEFAULT_MAX_EVENT;
    https_uses = apr_array_make(pconf, 4, sizeof(https_use));
    mn_log_set(log_to_httpd);
    return OK;
}

static const char *where(cmd_parms *cmd)
{
    return apr_psprintf(cmd->temp_pool, "%s:%d",
                        cmd->directive ? cmd->directive->filename : "?",
                        cmd->directive ? cmd->directive->line_num : 0);
}

static const char *cmd_provider(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    mn_provider *prov;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);

    if (err) {
        return err;
    }
    err = mn_provider_parse(cmd->pool, argc, (const char *const *)argv, &prov);
    if (err) {
        return apr_pstrcat(cmd->pool, "ManiacProvider: ", err, NULL);
    }
    prov->conf_file = cmd->directive ? cmd->directive->filename : NULL;
    prov->conf_line = cmd->directive ? cmd->directive->line_num : 0;
    if (prov->format != MN_FORMAT_ECHO) {
        if (!mn_upstream_proxy_available()) {
            return apr_psprintf(cmd->pool, "ManiacProvider %s (%s): mod_proxy is not loaded, "
                                "or is loaded after mod_maniac; put "
                                "'LoadModule proxy_module .../mod_proxy.so' before "
                                "'LoadModule maniac_module ...'", prov->name, where(cmd));
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
    return NULL;
}

static const char *cmd_model(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
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

static void *create_dir_config(apr_pool_t *p, char *dir)
{
    return apr_pcalloc(p, sizeof(mn_dir_config));
}

static void *merge_dir_config(apr_pool_t *p, void *basev, void *addv)
{
    mn_dir_config *merged = apr_pcalloc(p, sizeof(*merged));
    merged->cors = *mn_cors_merge(&((mn_dir_config *)basev)->cors,
                                  &((mn_dir_config *)addv)->cors);
    return merged;
}

static const char *cmd_cors(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
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

static const char *cmd_size(cmd_parms *cmd, void *dconf, const char *arg)
{
    char *end;
    apr_int64_t v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || v <= 0) {
        return apr_pstrcat(cmd->pool, cmd->cmd->name, ": expected a number of bytes > 0", NULL);
    }
    if (!strcmp(cmd->cmd->name, "ManiacMaxRequestBody")) {
        mn_conf->max_body = (apr_off_t)v;
    }
    else if (!strcmp(cmd->cmd->name, "ManiacMaxResponseBody")) {
        mn_conf->max_response = (apr_size_t)v;
    }
    else {
        mn_conf->max_event = (apr_size_t)v;
    }
    return NULL;
}

/* Is `SSLProxyEngine on` anywhere in the configuration tree? */
static int tree_has_ssl_proxy(const ap_directive_t *d)
{
    for (; d; d = d->next) {
        if (!ap_cstr_casecmp(d->directive, "SSLProxyEngine") && d->args
            && !ap_cstr_casecmp(d->args, "on")) {
            return 1;
        }
        if (d->first_child && tree_has_ssl_proxy(d->first_child)) {
            return 1;
        }
    }
    return 0;
}

static int maniac_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    int i, ok = 1, have_ssl = ap_find_linked_module("mod_ssl.c") != NULL;
    int ssl_proxy = tree_has_ssl_proxy(ap_conftree);
    const char *err = mn_aliases_resolve(mn_conf->providers);

    if (err) {
        ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s, "maniac: %s", err);
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    warn_alias_keep(ptemp, s);

    for (i = 0; i < https_uses->nelts; i++) {
        const https_use *h = &APR_ARRAY_IDX(https_uses, i, https_use);
        if (!have_ssl || !ssl_proxy) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, 0, s,
                         "maniac: ManiacProvider %s (%s:%d) has an https URL but %s",
                         h->name, h->file ? h->file : "?", h->line,
                         have_ssl ? "'SSLProxyEngine on' is not set"
                                  : "mod_ssl is not loaded (LoadModule ssl_module ...) "
                                    "and 'SSLProxyEngine on' is needed");
            ok = 0;
        }
    }
    return ok ? OK : HTTP_INTERNAL_SERVER_ERROR;
}

static int maniac_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
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

static void maniac_register_hooks(apr_pool_t *p)
{
    static const char *const after_proxy[] = { "mod_proxy.c", NULL };
    ap_hook_pre_config(maniac_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(maniac_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(maniac_post_config, after_proxy, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(mn_handler, NULL, NULL, APR_HOOK_MIDDLE);
    mn_ops_register_hooks(p);
}

static const command_rec maniac_cmds[] = {
    AP_INIT_TAKE_ARGV("ManiacProvider", cmd_provider, NULL, RSRC_CONF,
                      "ManiacProvider <name> <base-url|builtin:echo> [format=openai|anthropic|"
                      "gemini] [key-env=VAR[,VAR...] | key-file=PATH[,PATH...]] [timeout=S] "
                      "[connect-timeout=S] [first-byte-timeout=S] [idle-timeout=S] "
                      "[total-timeout=S] [retries=N] [breaker-failures=K] "
                      "[breaker-cooldown=S] [max-tokens=N] [reasoning=on|off] "
                      "[keep=strict,logprobs,n,input_audio] [models=NAME,NAME...]"),
    AP_INIT_TAKE_ARGV("ManiacModel", cmd_model, NULL, RSRC_CONF,
                      "ManiacModel <alias> <provider/model> [<provider/model> ...]: "
                      "the first target that answers serves the alias"),
    AP_INIT_TAKE_ARGV("ManiacCORS", cmd_cors, NULL, RSRC_CONF | ACCESS_CONF,
                      "ManiacCORS off | * | <origin> [<origin> ...]: browser origins whose "
                      "requests get Access-Control-* answers (default off)"),
    AP_INIT_TAKE1("ManiacMaxRequestBody", cmd_size, NULL, RSRC_CONF,
                  "largest client request body in bytes (default 32 MiB)"),
    AP_INIT_TAKE1("ManiacMaxResponseBody", cmd_size, NULL, RSRC_CONF,
                  "largest non-streaming upstream response in bytes (default 64 MiB)"),
    AP_INIT_TAKE1("ManiacMaxEventSize", cmd_size, NULL, RSRC_CONF,
                  "largest single upstream stream event in bytes (default 4 MiB)"),
    AP_INIT_FLAG("ManiacOverheadHeader", mn_ops_cmd_overhead_header, NULL, RSRC_CONF,
                 "On: answers carry " MN_OVERHEAD_HEADER " (microseconds spent in the gateway, "
                 "upstream waiting excluded); default Off"),
    { NULL }
};

AP_DECLARE_MODULE(maniac) = {
    STANDARD20_MODULE_STUFF,
    create_dir_config,      /* per-directory config */
    merge_dir_config,       /* merge per-directory */
    NULL,                   /* per-server config */
    NULL,                   /* merge per-server */
    maniac_cmds,
    maniac_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
