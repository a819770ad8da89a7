/* Live metrics, httpd side: the shared table, what a finished request adds to
 * it (read from the request's notes in log_transaction, so the counts are
 * exactly what the access log says), SetHandler maniac-metrics and the
 * mod_status section.
 *
 * The table lives in anonymous shared memory owned by the process pool, not
 * by the configuration pool: a graceful restart hands it to the next
 * generation, whose slots are found by name, so counters go on.  A full stop
 * and start begins at zero (maniac_metrics_start_time_seconds says when). */
#include <errno.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>
#include <apr_shm.h>
#include <apr_strings.h>
#include <http_core.h>
#include "mod_maniac.h"
#include <apr_optional_hooks.h>
#include "mod_status.h"
#include "mn_metrics.h"
#include "mn_metrics_glue.h"
#include "mn_resilience.h"

#define SHM_KEY "maniac-metrics-shm"
#define REQ_KEY "maniac-metrics-req"

typedef struct {
    apr_shm_t *shm;
    mn_metrics_table *t;
} shm_holder;

/* This generation's view: slot numbers by provider index, in pconf. */
typedef struct {
    int prov_slot, other_slot, dyn_first;
    apr_hash_t *models;             /* model -> int slot + 1 */
} prov_slots;

static struct {
    mn_metrics_table *t;
    prov_slots *provs;
    int nprovs;
    int unrouted;
    int row;                        /* this process's live-streams row, -2: not yet */
} mx;

/* Per request: which slot a stream counts in, when its first byte left. */
typedef struct {
    mn_metrics_table *t;
    int row, slot;
    apr_time_t first_byte;
} req_state;

static int pid_alive(int32_t pid)
{
    return kill((pid_t)pid, 0) == 0 || errno == EPERM;
}

static void metrics_child_init(apr_pool_t *p, server_rec *s)
{
    mx.row = -2;
}

static int metrics_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp)
{
    mx.t = NULL;
    mx.provs = NULL;
    mx.nprovs = 0;
    mx.unrouted = -1;
    mx.row = -2;
    return OK;
}

/* Slots this configuration needs at most (dynamic runs included). */
static uint32_t slots_needed(void)
{
    uint32_t n = 1 + (uint32_t)mn_conf->providers->list->nelts * (2 + MN_METRICS_DYNAMIC);
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(NULL, mn_conf->providers->aliases); hi; hi = apr_hash_next(hi)) {
        n += (uint32_t)((const mn_alias *)apr_hash_this_val(hi))->targets->nelts;
    }
    return n;
}

/* The table: the previous generation's when it still fits this build and
 * has room, else a new one with the old counts copied (slots keep their
 * numbers).  Old children draining during a restart that grew the table
 * count into the old copy, which is kept, not destroyed, until the end. */
static mn_metrics_table *table_for(server_rec *s, uint32_t needed)
{
    apr_pool_t *pp = s->process->pool;
    shm_holder *h = NULL;
    mn_metrics_table *old;
    uint32_t cap = needed * 2 < 64 ? 64 : needed * 2;
    apr_status_t rv;

    apr_pool_userdata_get((void **)&h, SHM_KEY, pp);
    old = h ? h->t : NULL;
    if (old && mn_metrics_reusable(old, 0) && old->capacity - old->used >= needed) {
        old->generations++;
        return old;
    }
    if (!h) {
        h = apr_pcalloc(pp, sizeof(*h));
        apr_pool_userdata_set(h, SHM_KEY, apr_pool_cleanup_null, pp);
    }
    if (old && mn_metrics_reusable(old, 0) && cap < old->used + needed) {
        cap = old->used + needed * 2;
    }
    rv = apr_shm_create(&h->shm, mn_metrics_size(cap), NULL, pp);
    if (rv != APR_SUCCESS) {
        ap_log_error(APLOG_MARK, APLOG_ERR, rv, s,
                     "maniac: cannot create shared memory for the metrics (%u slots): "
                     "metrics are off", (unsigned)cap);
        h->t = NULL;
        return NULL;
    }
    h->t = apr_shm_baseaddr_get(h->shm);
    mn_metrics_init(h->t, cap, (int64_t)apr_time_now());
    if (old && mn_metrics_reusable(old, 0)) {
        memcpy(h->t->slots, old->slots, sizeof(mn_metrics_slot) * old->used);
        h->t->used = old->used;
        h->t->created_us = old->created_us;
        h->t->generations = old->generations + 1;
    }
    return h->t;
}

static int slot_or_die(server_rec *s, int slot, const char *what)
{
    if (slot < 0) {
        ap_log_error(APLOG_MARK, APLOG_WARNING, 0, s, "maniac: no metrics slot for %s "
                     "(name too long?): counted as other", what);
    }
    return slot;
}

static void index_providers(apr_pool_t *pconf, server_rec *s, mn_metrics_table *t)
{
    apr_array_header_t *list = mn_conf->providers->list;
    apr_hash_index_t *hi;
    int i;

    mx.nprovs = list->nelts;
    mx.provs = apr_pcalloc(pconf, sizeof(prov_slots) * (apr_size_t)(list->nelts + 1));
    for (i = 0; i < list->nelts; i++) {
        const mn_provider *prov = APR_ARRAY_IDX(list, i, mn_provider *);
        prov_slots *ps = &mx.provs[prov->index];
        ps->prov_slot = slot_or_die(s, mn_metrics_slot_add(t, prov->name, "", MN_SK_PROVIDER),
                                    prov->name);
        ps->other_slot = mn_metrics_slot_add(t, prov->name, "other", MN_SK_OTHER);
        ps->dyn_first = mn_metrics_slot_add(t, prov->name, "", MN_SK_DYNAMIC);
        ps->models = apr_hash_make(pconf);
    }
    /* the configured provider/model pairs: every alias target (a models=
     * list on ManiacProvider, once there is one, belongs here too) */
    for (hi = apr_hash_first(pconf, mn_conf->providers->aliases); hi; hi = apr_hash_next(hi)) {
        const mn_alias *a = apr_hash_this_val(hi);
        for (i = 0; i < a->targets->nelts; i++) {
            const mn_target *tg = &APR_ARRAY_IDX(a->targets, i, mn_target);
            prov_slots *ps;
            int slot;
            if (!tg->provider || tg->provider->index < 0 || tg->provider->index >= mx.nprovs) {
                continue;
            }
            ps = &mx.provs[tg->provider->index];
            slot = mn_metrics_slot_add(t, tg->provider->name, tg->model, MN_SK_MODEL);
            if (slot >= 0) {
                int *v = apr_palloc(pconf, sizeof(int));
                *v = slot;
                apr_hash_set(ps->models, tg->model, APR_HASH_KEY_STRING, v);
            }
        }
    }
    mx.unrouted = mn_metrics_slot_add(t, "", "", MN_SK_UNROUTED);
}

static int metrics_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                               server_rec *s)
{
    mn_metrics_table *t;
    if (!mn_config_metrics(s) || ap_state_query(AP_SQ_MAIN_STATE) == AP_SQ_MS_CREATE_PRE_CONFIG) {
        return OK;
    }
    t = table_for(s, slots_needed());
    if (t) {
        index_providers(pconf, s, t);
        mx.t = t;
    }
    return OK;
}

/* ---- the request path ---- */

static const mn_provider *provider_named(const char *name, size_t len)
{
    const mn_provider *prov = name ? mn_providers_get(mn_conf->providers, name, len) : NULL;
    return prov && prov->index >= 0 && prov->index < mx.nprovs ? prov : NULL;
}

static int model_slot(const char *provider, const char *model)
{
    const mn_provider *prov;
    const prov_slots *ps;
    const int *v;
    int slot;

    if (!provider || !(prov = provider_named(provider, strlen(provider)))) {
        return mx.unrouted;
    }
    ps = &mx.provs[prov->index];
    if (!model || !*model) {
        return ps->other_slot;
    }
    if ((v = apr_hash_get(ps->models, model, APR_HASH_KEY_STRING)) != NULL) {
        return *v;
    }
    slot = mn_metrics_slot_claim(mx.t, ps->dyn_first, MN_METRICS_DYNAMIC, model);
    return slot >= 0 ? slot : ps->other_slot;
}

static apr_status_t stream_end(void *data)
{
    req_state *rs = data;
    mn_metrics_stream_delta(rs->t, rs->row, rs->slot, -1);
    return APR_SUCCESS;
}

void mn_metrics_stream_begin(request_rec *r)
{
    req_state *rs;
    if (!mx.t) {
        return;
    }
    rs = apr_pcalloc(r->pool, sizeof(*rs));
    rs->t = mx.t;
    rs->first_byte = apr_time_now();
    rs->slot = model_slot(apr_table_get(r->notes, "maniac-provider"),
                          apr_table_get(r->notes, "maniac-model"));
    if (mx.row == -2) {
        /* once per process; -1 (no row free) counts in the slot itself */
        mx.row = mn_metrics_proc_row(mx.t, (int32_t)getpid(), pid_alive);
    }
    rs->row = mx.row;
    mn_metrics_stream_delta(rs->t, rs->row, rs->slot, 1);
    apr_pool_cleanup_register(r->pool, rs, stream_end, apr_pool_cleanup_null);
    apr_pool_userdata_setn(rs, REQ_KEY, NULL, r->pool);
}

/* The notes a finished request left, read in one pass over r->notes: a
 * lookup per note cost more than all the counting (callgrind). */
typedef struct {
    const char *provider, *model, *error, *attempts, *stream;
    const char *prompt, *completion, *cached, *reasoning, *cost;
    const char *duration, *overhead, *ttft;
} notes_view;

static void read_notes(request_rec *r, notes_view *v)
{
    const apr_array_header_t *arr = apr_table_elts(r->notes);
    const apr_table_entry_t *e = (const apr_table_entry_t *)arr->elts;
    int i;
    memset(v, 0, sizeof(*v));
    for (i = 0; i < arr->nelts; i++) {
        const char *k = e[i].key, *val = e[i].val;
        if (!k || strncmp(k, "maniac-", 7)) {
            continue;
        }
        k += 7;
        switch (*k) {
        case 'p':
            if (!strcmp(k, "provider")) v->provider = val;
            else if (!strcmp(k, "prompt-tokens")) v->prompt = val;
            break;
        case 'm':
            if (!strcmp(k, "model")) v->model = val;
            break;
        case 'e':
            if (!strcmp(k, "error")) v->error = val;
            break;
        case 'a':
            if (!strcmp(k, "attempts")) v->attempts = val;
            break;
        case 's':
            if (!strcmp(k, "stream")) v->stream = val;
            break;
        case 'c':
            if (!strcmp(k, "completion-tokens")) v->completion = val;
            else if (!strcmp(k, "cached-tokens")) v->cached = val;
            else if (!strcmp(k, "cost")) v->cost = val;
            break;
        case 'r':
            if (!strcmp(k, "reasoning-tokens")) v->reasoning = val;
            break;
        case 'd':
            if (!strcmp(k, "duration-us")) v->duration = val;
            break;
        case 'o':
            if (!strcmp(k, "overhead-us")) v->overhead = val;
            break;
        case 't':
            if (!strcmp(k, "ttft-us")) v->ttft = val;
            break;
        default:
            break;
        }
    }
}

static long as_long(const char *v, long dflt)
{
    char *end;
    long n;
    if (!v || !*v) {
        return dflt;
    }
    n = strtol(v, &end, 10);
    return *end ? dflt : n;
}

/* Cached and reasoning tokens and cost come from the notes the usage and
 * price code sets (maniac-cached-tokens, maniac-reasoning-tokens, maniac-cost
 * in USD); until those are set they stay 0 here. */
static void usage_details_hook(const notes_view *v, mn_metrics_obs *o)
{
    o->cached_tokens = as_long(v->cached, 0);
    o->reasoning_tokens = as_long(v->reasoning, 0);
    if (v->cost && *v->cost) {
        o->cost_micro_usd = (int64_t)(strtod(v->cost, NULL) * 1e6 + 0.5);
    }
}

static void observe(request_rec *r, const notes_view *v, mn_metrics_obs *o)
{
    const char *err = v->error;
    req_state *rs = NULL;

    memset(o, 0, sizeof(*o));
    if (!err && r->status >= 400) {
        err = mn_error_type_for_status(r->status);
    }
    o->outcome = mn_metrics_error_of(err);
    o->have_usage = v->prompt != NULL;
    o->prompt_tokens = as_long(v->prompt, 0);
    o->completion_tokens = as_long(v->completion, 0);
    usage_details_hook(v, o);
    o->stream = v->stream && v->stream[0] == '1';
    o->duration_us = as_long(v->duration, -1);
    if (o->duration_us < 0) {
        o->duration_us = (int64_t)(apr_time_now() - r->request_time);
    }
    o->overhead_us = as_long(v->overhead, -1);
    o->ttft_us = as_long(v->ttft, -1);
    if (o->ttft_us < 0 && o->stream) {
        apr_pool_userdata_get((void **)&rs, REQ_KEY, r->pool);
        if (rs) {
            o->ttft_us = (int64_t)(rs->first_byte - r->request_time);
        }
    }
}

static int provider_slot_cb(void *baton, const char *name, size_t len)
{
    const mn_provider *prov = provider_named(name, len);
    return prov ? mx.provs[prov->index].prov_slot : -1;
}

static int metrics_log(request_rec *r)
{
    mn_metrics_obs o;
    notes_view v;
    if (!mx.t || r->main || !r->handler || strcmp(r->handler, MN_HANDLER_NAME)) {
        return DECLINED;
    }
    read_notes(r, &v);
    observe(r, &v, &o);
    mn_metrics_record(mx.t, model_slot(v.provider, v.model), &o);
    if (v.attempts) {
        mn_metrics_record_attempts(mx.t, v.attempts, provider_slot_cb, NULL);
    }
    return DECLINED;
}

/* ---- what is shown ---- */

static mn_metrics_breaker *breakers(apr_pool_t *p, int *n)
{
    apr_array_header_t *list = mn_conf->providers->list;
    mn_metrics_breaker *b = apr_pcalloc(p, sizeof(*b) * (apr_size_t)(list->nelts + 1));
    apr_time_t now = apr_time_now();
    int i;
    for (i = 0; i < list->nelts; i++) {
        const mn_provider *prov = APR_ARRAY_IDX(list, i, mn_provider *);
        apr_uint64_t until = mn_conf->breakers
            ? apr_atomic_read64(&mn_conf->breakers[prov->index].open_until) : 0;
        b[i].provider = prov->name;
        b[i].state = !until ? 0 : (apr_time_t)until > now ? 1 : 2;
    }
    *n = list->nelts;
    return b;
}

static int metrics_handler(request_rec *r)
{
    mn_metrics_breaker *b;
    char *text;
    int n;
    if (!r->handler || strcmp(r->handler, "maniac-metrics")) {
        return DECLINED;
    }
    if (r->method_number != M_GET) {
        apr_table_setn(r->headers_out, "Allow", "GET");
        return HTTP_METHOD_NOT_ALLOWED;
    }
    if (!mx.t) {
        ap_set_content_type(r, "text/plain; charset=utf-8");
        ap_rputs("# metrics are off (ManiacMetrics Off, or no shared memory)\n", r);
        return OK;
    }
    b = breakers(r->pool, &n);
    text = mn_metrics_prometheus(r->pool, mx.t, mn_metrics_rows_alive(mx.t, pid_alive), b, n);
    if (!text) {
        return HTTP_INTERNAL_SERVER_ERROR;
    }
    ap_set_content_type(r, "text/plain; version=0.0.4; charset=utf-8");
    apr_table_setn(r->headers_out, "Cache-Control", "no-store");
    ap_set_content_length(r, (apr_off_t)strlen(text));
    if (!r->header_only) {
        ap_rputs(text, r);
    }
    return OK;
}

static const char *usd(apr_pool_t *p, uint64_t micro)
{
    return apr_psprintf(p, "%" APR_UINT64_T_FMT ".%06" APR_UINT64_T_FMT,
                        (apr_uint64_t)(micro / 1000000), (apr_uint64_t)(micro % 1000000));
}

static void status_models(request_rec *r, int short_form, uint64_t rows)
{
    uint32_t i, used = __atomic_load_n(&mx.t->used, __ATOMIC_ACQUIRE);
    if (!short_form) {
        ap_rputs("<table border=\"1\"><tr><th>provider</th><th>model</th><th>requests</th>"
                 "<th>errors</th><th>streams</th><th>tokens in</th><th>tokens out</th>"
                 "<th>cost USD</th></tr>\n", r);
    }
    for (i = 0; i < used && i < mx.t->capacity; i++) {
        const mn_metrics_slot *s = &mx.t->slots[i];
        uint64_t req = 0, err = 0;
        int k;
        if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE) != MN_SLOT_READY
            || (s->kind != MN_SK_MODEL && s->kind != MN_SK_DYNAMIC && s->kind != MN_SK_OTHER)) {
            continue;
        }
        for (k = 0; k < MN_ME_COUNT; k++) {
            uint64_t v = __atomic_load_n(&s->requests[k], __ATOMIC_RELAXED);
            req += v;
            err += k ? v : 0;
        }
        if (short_form) {
            ap_rprintf(r, "ManiacModel %s/%s: requests=%" APR_UINT64_T_FMT " errors=%"
                       APR_UINT64_T_FMT " streams=%" APR_INT64_T_FMT " tokens_in=%"
                       APR_UINT64_T_FMT " tokens_out=%" APR_UINT64_T_FMT " cost_usd=%s\n",
                       s->provider, s->model, (apr_uint64_t)req, (apr_uint64_t)err,
                       (apr_int64_t)mn_metrics_live(mx.t, (int)i, rows), (apr_uint64_t)s->tokens[0],
                       (apr_uint64_t)s->tokens[1], usd(r->pool, s->cost_micro_usd));
        }
        else {
            ap_rprintf(r, "<tr><td>%s</td><td>%s</td><td>%" APR_UINT64_T_FMT "</td><td>%"
                       APR_UINT64_T_FMT "</td><td>%" APR_INT64_T_FMT "</td><td>%"
                       APR_UINT64_T_FMT "</td><td>%" APR_UINT64_T_FMT "</td><td>%s</td></tr>\n",
                       ap_escape_html(r->pool, s->provider), ap_escape_html(r->pool, s->model),
                       (apr_uint64_t)req, (apr_uint64_t)err,
                       (apr_int64_t)mn_metrics_live(mx.t, (int)i, rows),
                       (apr_uint64_t)s->tokens[0], (apr_uint64_t)s->tokens[1],
                       usd(r->pool, s->cost_micro_usd));
        }
    }
    if (!short_form) {
        ap_rputs("</table>\n", r);
    }
}

static int metrics_status_hook(request_rec *r, int flags)
{
    mn_metrics_totals tot;
    int short_form = (flags & AP_STATUS_SHORT) != 0;
    uint64_t rows;
    if (!mx.t) {
        return OK;
    }
    rows = mn_metrics_rows_alive(mx.t, pid_alive);
    mn_metrics_sum(mx.t, rows, &tot);
    if (short_form) {
        ap_rprintf(r, "ManiacRequests: %" APR_UINT64_T_FMT "\nManiacErrors: %" APR_UINT64_T_FMT
                   "\nManiacStreamsActive: %" APR_INT64_T_FMT "\nManiacUpstreamAttempts: %"
                   APR_UINT64_T_FMT "\nManiacRetries: %" APR_UINT64_T_FMT "\nManiacFallbacks: %"
                   APR_UINT64_T_FMT "\nManiacTokensIn: %" APR_UINT64_T_FMT "\nManiacTokensOut: %"
                   APR_UINT64_T_FMT "\nManiacCostUSD: %s\n",
                   (apr_uint64_t)tot.requests, (apr_uint64_t)tot.errors,
                   (apr_int64_t)tot.live_streams, (apr_uint64_t)tot.attempts,
                   (apr_uint64_t)tot.retries, (apr_uint64_t)tot.fallbacks,
                   (apr_uint64_t)tot.tokens_in, (apr_uint64_t)tot.tokens_out,
                   usd(r->pool, tot.cost_micro_usd));
    }
    else {
        ap_rprintf(r, "<hr>\n<h2>mod_maniac</h2>\n<dl><dt>%" APR_UINT64_T_FMT " requests, %"
                   APR_UINT64_T_FMT " errors, %" APR_INT64_T_FMT " streams active</dt>\n<dt>%"
                   APR_UINT64_T_FMT " upstream attempts, %" APR_UINT64_T_FMT " retries, %"
                   APR_UINT64_T_FMT " fallbacks</dt>\n<dt>%" APR_UINT64_T_FMT " tokens in, %"
                   APR_UINT64_T_FMT " tokens out, %s USD</dt></dl>\n",
                   (apr_uint64_t)tot.requests, (apr_uint64_t)tot.errors,
                   (apr_int64_t)tot.live_streams, (apr_uint64_t)tot.attempts,
                   (apr_uint64_t)tot.retries, (apr_uint64_t)tot.fallbacks,
                   (apr_uint64_t)tot.tokens_in, (apr_uint64_t)tot.tokens_out,
                   usd(r->pool, tot.cost_micro_usd));
    }
    if (flags & AP_STATUS_EXTENDED) {
        status_models(r, short_form, rows);
    }
    return OK;
}

void mn_metrics_register_hooks(apr_pool_t *p)
{
    ap_hook_pre_config(metrics_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(metrics_post_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_child_init(metrics_child_init, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_log_transaction(metrics_log, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(metrics_handler, NULL, NULL, APR_HOOK_MIDDLE);
    APR_OPTIONAL_HOOK(ap, status_hook, metrics_status_hook, NULL, NULL, APR_HOOK_MIDDLE);
}
