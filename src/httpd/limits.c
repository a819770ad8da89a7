/* Prices, counters and per-key limits: the httpd glue (see include/mn_limits.h). */
#include <string.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_core.h>
#include "mod_maniac.h"
#include "mn_admission.h"
#include "mn_counters.h"
#include "mn_auth.h"
#include "mn_limits.h"
#include "mn_price.h"

#define MN_SHM_SLOTS 65536
#define MN_STORE_TIMEOUT apr_time_from_msec(500)
#define MN_WARN_INTERVAL apr_time_from_sec(60)
#define MN_DEFAULT_RESERVE 1024

/* Configuration (one set for the server, like the providers) and, per
 * process, the counter store. */
static struct {
    mn_counters_spec spec;
    mn_price_table *prices;
    int64_t reserve;
    void *shm;
    mn_counters *store;
} lc;

static apr_time_t last_warn;   /* per process: "unavailable" is logged once a minute */

struct mn_limits_req {
    request_rec *r;
    const mn_client_key *key;
    mn_admission adm;
    int admitted;            /* counters hold a reservation to settle */
    int unavailable;
    int priced;              /* some attempt had a known price */
    int64_t est_prompt;      /* -1 until needed */
    json_t *body;            /* the request, alive while it is served */
    int64_t tokens;          /* used, every attempt */
    int64_t cost;            /* micro-USD, every attempt */
    int finished;
};

const char *mn_limits_cmd_counters(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    err = mn_counters_parse(cmd->pool, argc, (const char *const *)argv, &lc.spec);
    return err ? apr_pstrcat(cmd->pool, "ManiacCounters: ", err, NULL) : NULL;
}

const char *mn_limits_cmd_price(cmd_parms *cmd, void *dconf, int argc, char *const argv[])
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    err = mn_price_add_line(lc.prices, argc, (const char *const *)argv);
    return err ? apr_pstrcat(cmd->pool, "ManiacPrice: ", err, NULL) : NULL;
}

const char *mn_limits_cmd_price_file(cmd_parms *cmd, void *dconf, const char *arg)
{
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    err = mn_price_add_litellm_file(lc.prices, ap_server_root_relative(cmd->temp_pool, arg));
    return err ? apr_pstrcat(cmd->pool, "ManiacPriceFile: ", err, NULL) : NULL;
}

const char *mn_limits_cmd_reserve(cmd_parms *cmd, void *dconf, const char *arg)
{
    char *end;
    apr_int64_t v;
    const char *err = ap_check_cmd_context(cmd, GLOBAL_ONLY);
    if (err) {
        return err;
    }
    v = apr_strtoi64(arg, &end, 10);
    if (end == arg || *end || v < 0 || v > 100000000) {
        return "ManiacReserveTokens: expected a number of tokens >= 0";
    }
    lc.reserve = v;
    return NULL;
}

static int limits_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    memset(&lc, 0, sizeof(lc));
    lc.prices = mn_price_table_create(pconf);
    lc.reserve = MN_DEFAULT_RESERVE;
    return OK;
}

/* The shm counters live in the process pool and are made once: a graceful
 * restart must not forget what the keys spent today.  Made before the fork,
 * the segment is inherited by every child of every generation. */
static int limits_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    static const char userdata_key[] = "maniac-counters-shm";
    apr_pool_t *pproc = s->process->pool;
    apr_shm_t *shm = NULL;
    apr_status_t rv;
    int rc;

    if (lc.spec.kind != MN_COUNTERS_SHM
        || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    apr_pool_userdata_get((void **)&shm, userdata_key, pproc);
    if (!shm) {
        rv = apr_shm_create(&shm, mn_counters_shm_size(MN_SHM_SLOTS), NULL, pproc);
        if (rv != APR_SUCCESS) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rv, s,
                         "maniac: cannot create shared memory for the counters");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        if ((rc = mn_counters_shm_init(apr_shm_baseaddr_get(shm), MN_SHM_SLOTS)) != 0) {
            ap_log_error(APLOG_MARK, APLOG_EMERG, rc, s,
                         "maniac: cannot initialise the shared-memory counters");
            return HTTP_INTERNAL_SERVER_ERROR;
        }
        /* _set, not _setn: the key is copied into the process pool, which
         * outlives this module's mapping (httpd unloads and reloads modules on
         * every restart, and the old key's address may be gone) */
        apr_pool_userdata_set(shm, userdata_key, apr_pool_cleanup_null, pproc);
    }
    lc.shm = apr_shm_baseaddr_get(shm);
    return OK;
}

static void limits_child_init(apr_pool_t *pchild, server_rec *s)
{
    switch (lc.spec.kind) {
    case MN_COUNTERS_REDIS:
        lc.store = mn_counters_redis(pchild, lc.spec.host, lc.spec.port, MN_STORE_TIMEOUT);
        break;
    case MN_COUNTERS_MEMCACHE:
        lc.store = mn_counters_memcache(pchild, lc.spec.host, lc.spec.port, MN_STORE_TIMEOUT);
        break;
    default:
        lc.store = lc.shm ? mn_counters_shm(pchild, lc.shm) : NULL;
        break;
    }
}

void mn_limits_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(limits_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(limits_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(limits_child_init, NULL, NULL, APR_HOOK_MIDDLE);
}

static const char *store_name(void)
{
    return lc.spec.kind == MN_COUNTERS_REDIS ? "redis"
         : lc.spec.kind == MN_COUNTERS_MEMCACHE ? "memcached" : "shared memory";
}

static int store_add(mn_limits_req *l, const mn_counter_op *ops, int n, int64_t *values)
{
    const char *why = "no counter store in this process";
    apr_time_t now = apr_time_now();
    if (lc.store && !mn_counters_add(lc.store, ops, n, values, now, &why)) {
        return 0;
    }
    l->unavailable = 1;
    apr_table_setn(l->r->notes, "maniac-limits", "unavailable");
    if (now - last_warn > MN_WARN_INTERVAL) {
        last_warn = now;
        ap_log_rerror(APLOG_MARK, APLOG_ERR, 0, l->r, "maniac: counters (%s %s%s%s) "
                      "unavailable: %s; requests are %s (logged once a minute)", store_name(),
                      lc.spec.host ? lc.spec.host : "", lc.spec.host ? ":" : "",
                      lc.spec.host ? apr_itoa(l->r->pool, lc.spec.port) : "", why,
                      lc.spec.fail_closed ? "refused (fail-closed)" : "served (fail-open)");
    }
    return -1;
}

static apr_status_t finish_cleanup(void *data)
{
    mn_limits_finish(data);
    return APR_SUCCESS;
}

/* The dearest target's price for the reservation: a fallback may serve it. */
static int64_t estimate_cost(const mn_target *targets, int ntargets, int64_t prompt,
                             int64_t output)
{
    int64_t best = 0;
    int i;
    for (i = 0; i < ntargets; i++) {
        const mn_price *p = mn_price_find(lc.prices, targets[i].provider->name, targets[i].model);
        int64_t c = p ? mn_price_estimate(p, prompt, output) : 0;
        best = c > best ? c : best;
    }
    return best;
}

int mn_limits_admit(request_rec *r, json_t *body, int stream, const mn_target *targets,
                    int ntargets, mn_limits_req **out, mn_error *err)
{
    mn_limits_req *l = apr_pcalloc(r->pool, sizeof(*l));
    int64_t output;
    int refused;

    l->r = r;
    l->body = body;
    l->est_prompt = -1;
    *out = l;
    l->key = mn_auth_key(r);
    if (!l->key) {
        return 0;
    }
    apr_table_setn(r->notes, "maniac-key", l->key->name);
    if (!l->key->rpm && !l->key->tpm && !l->key->budget_micro_usd && !l->key->max_streams) {
        return 0;
    }
    l->est_prompt = mn_estimate_prompt_tokens(body);
    output = mn_estimate_output_tokens(body, lc.reserve);
    mn_admission_plan(&l->adm, l->key, apr_time_now(), stream, l->est_prompt + output,
                      estimate_cost(targets, ntargets, l->est_prompt, output));
    if (!l->adm.n) {
        return 0;
    }
    if (store_add(l, l->adm.ops, l->adm.n, l->adm.value)) {
        if (!lc.spec.fail_closed) {
            return 0;
        }
        return mn_error_set(err, 503, "server_error", NULL, "limits_unavailable",
                            "The gateway cannot check this key's limits right now; "
                            "retry later");
    }
    refused = mn_admission_refused(&l->adm);
    if (refused >= 0) {
        mn_counter_op back[MN_ADMISSION_MAX_OPS];
        store_add(l, back, mn_admission_rollback(&l->adm, back), NULL);
        mn_admission_error(&l->adm, refused, r->pool, err, r->headers_out);
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: key %s refused: %s",
                      l->key->name, err->code);
        return -1;
    }
    l->admitted = 1;
    mn_admission_headers(&l->adm, r->pool, r->headers_out);
    apr_pool_cleanup_register(r->pool, l, finish_cleanup, apr_pool_cleanup_null);
    return 0;
}

void mn_limits_charge(mn_limits_req *l, const char *provider, const char *model,
                      const mn_usage *u, long frames, int complete)
{
    const mn_price *p;
    mn_usage used = *u;

    if (!l) {
        return;
    }
    if (!complete) {
        if (!used.have && frames <= 0) {
            return;    /* failed before anything was produced */
        }
        if (!used.have) {
            if (l->est_prompt < 0) {
                l->est_prompt = mn_estimate_prompt_tokens(l->body);
            }
            used.prompt_tokens = (long)l->est_prompt;
        }
        if (used.completion_tokens < frames) {
            used.completion_tokens = frames;
        }
        used.total_tokens = mn_usage_add(used.prompt_tokens, used.completion_tokens);
    }
    else if (!used.have) {
        return;
    }
    l->tokens += mn_usage_add(used.prompt_tokens, used.completion_tokens);
    if ((p = mn_price_find(lc.prices, provider, model)) != NULL) {
        int64_t c = mn_price_cost(p, &used);
        l->cost = l->cost > INT64_MAX - c ? INT64_MAX : l->cost + c;
        l->priced = 1;
    }
}

void mn_limits_finish(mn_limits_req *l)
{
    mn_counter_op ops[MN_ADMISSION_MAX_OPS];
    if (!l || l->finished) {
        return;
    }
    l->finished = 1;
    if (l->priced) {
        apr_table_setn(l->r->notes, "maniac-cost", mn_price_format_usd(l->r->pool, l->cost));
    }
    if (l->admitted) {
        store_add(l, ops, mn_admission_settle(&l->adm, l->tokens, l->cost, ops), NULL);
    }
}
