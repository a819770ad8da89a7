/* The attempt loop: the targets in order (a ManiacModel alias's, or the one
 * provider/model), each through the breaker, with key rotation and retries,
 * until one answers.  What comes after a try is decided by the pure
 * mn_attempt_next() (src/core/attempts.c); this is only the glue that acts
 * on it and keeps the `maniac-attempts` note. */
#include <string.h>
#include <apr_strings.h>

#include "mn_serve.h"
#include "mn_attempts.h"
#include "mn_notes.h"
#include "mn_ops.h"

typedef struct failover {
    mn_request *req;
    json_t *body;
    const mn_policy_result *pol;
    apr_array_header_t *attempts;    /* "provider:label" per try */
    mn_error last;                   /* the error to answer with, when all fail */
    int last_status;
    int have_err;
} failover;

static void log_breaker(request_rec *r, const mn_provider *prov, mn_breaker_change change)
{
    switch (change) {
    case MN_BREAKER_OPENED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s opened "
                      "after %d consecutive failures (cooldown %" APR_TIME_T_FMT " ms)",
                      prov->name, prov->breaker_failures, apr_time_as_msec(prov->breaker_cooldown));
        break;
    case MN_BREAKER_REOPENED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s stays "
                      "open: the probe failed", prov->name);
        break;
    case MN_BREAKER_CLOSED:
        ap_log_rerror(APLOG_MARK, APLOG_INFO, 0, r, "maniac: circuit for provider %s closed",
                      prov->name);
        break;
    default:
        break;
    }
}

static mn_breaker_slot *breaker_of(const failover *fo, const mn_provider *prov)
{
    const mn_config *conf = fo->req->conf;
    return conf->breakers ? &conf->breakers[prov->index] : NULL;
}

static void note_try(failover *fo, const mn_provider *prov, const char *label)
{
    *(const char **)apr_array_push(fo->attempts) =
        apr_pstrcat(fo->req->r->pool, prov->name, ":", label, NULL);
}

static void note_attempts(failover *fo)
{
    request_rec *r = fo->req->r;
    apr_table_setn(r->notes, "maniac-attempts", apr_array_pstrcat(r->pool, fo->attempts, ','));
}

static void note_served(failover *fo, int ti)
{
    request_rec *r = fo->req->r;
    mn_note put[2] = {
        { "maniac-attempts", apr_array_pstrcat(r->pool, fo->attempts, ',') },
        { "maniac-fallback", ti ? "1" : "0" },
    };
    mn_notes_put(r->notes, put, 2);
}

static double jitter(void)
{
    return (double)(apr_time_now() % 1000) / 1000.0;
}

/* The breaker keeps prov out: the decision says where to go on. */
static mn_next_action circuit_open(failover *fo, const mn_provider *prov, mn_try *tr,
                                   apr_interval_time_t wait)
{
    mn_next next;
    note_try(fo, prov, mn_fail_label(MN_FAIL_CIRCUIT_OPEN));
    tr->kind = MN_FAIL_CIRCUIT_OPEN;
    next = mn_attempt_next(tr, jitter());
    if (next.report) {
        fo->last_status = 0;
        mn_error_fail(&fo->last, MN_FAIL_CIRCUIT_OPEN,
                      "provider '%s' is unavailable after repeated failures; retry later",
                      prov->name);
        apr_snprintf(fo->last.retry_after, sizeof(fo->last.retry_after), "%" APR_TIME_T_FMT,
                     apr_time_sec(wait + APR_USEC_PER_SEC - 1));
        fo->have_err = 1;
    }
    return next.action;
}

/* One try at target t with the key at key_index; fills tr with its end. */
static void try_once(failover *fo, const mn_target *t, apr_uint32_t key_index, int probe,
                     mn_try *tr, mn_error *err)
{
    mn_request *req = fo->req;
    const mn_provider *prov = t->provider;
    mn_provider *keyed = apr_pmemdup(req->r->pool, prov, sizeof(*prov));
    mn_attempt at;
    mn_breaker_change change;

    memset(&at, 0, sizeof(at));
    at.probe = probe;
    if (prov->nkeys > 1) {
        keyed->key = prov->keys[key_index % (apr_uint32_t)prov->nkeys];
    }
    at.prov = keyed;
    at.model = t->model;
    at.deadline = prov->total_timeout ? apr_time_now() + prov->total_timeout : 0;
    mn_error_clear(err);
    req->tries++;
    tr->sent = mn_exchange(req, &at, fo->body, fo->pol, err);
    tr->kind = err->kind;
    tr->upstream_status = at.upstream_status;
    tr->retry_after = at.retry_after;
    change = mn_breaker_record(breaker_of(fo, prov), prov->breaker_failures, prov->breaker_cooldown,
                               apr_time_now(), mn_try_outcome(tr), at.probe);
    log_breaker(req->r, prov, change);
    if (at.upstream_status
        && (tr->sent || at.upstream_status < 200 || at.upstream_status >= 300)) {
        note_try(fo, prov, apr_itoa(req->r->pool, at.upstream_status));
    }
    else {
        note_try(fo, prov, mn_error_label(err));
    }
}

/* Every try at one target, until the decision leaves it. */
static mn_next_action serve_target(failover *fo, const mn_target *t, int ti, int targets_left,
                                   mn_error *err)
{
    request_rec *r = fo->req->r;
    const mn_provider *prov = t->provider;
    mn_breaker_slot *slot = breaker_of(fo, prov);
    apr_uint32_t key_index = 0;
    mn_try tr;

    memset(&tr, 0, sizeof(tr));
    tr.retries = prov->retries;
    tr.keys_tried = 1;
    tr.nkeys = prov->nkeys;
    tr.targets_left = targets_left;
    if (slot && prov->nkeys > 1) {
        key_index = apr_atomic_inc32(&slot->rr);
    }
    for (;;) {
        apr_interval_time_t wait;
        mn_next next;
        int probe;

        if (!mn_breaker_allow(slot, prov->breaker_failures, prov->breaker_cooldown,
                              apr_time_now(), &probe, &wait)) {
            return circuit_open(fo, prov, &tr, wait);
        }
        try_once(fo, t, key_index, probe, &tr, err);
        next = mn_attempt_next(&tr, jitter());
        if (next.action == MN_NEXT_DONE) {
            note_served(fo, ti);
            return MN_NEXT_DONE;
        }
        fo->last = *err;
        fo->last_status = tr.upstream_status;
        fo->have_err = 1;
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: try %d at %s failed: %s (%s)",
                      tr.try_no + 1, prov->name, err->type, err->code[0] ? err->code : "-");
        if (next.action == MN_NEXT_KEY) {
            tr.keys_tried++;
            key_index++;
            continue;
        }
        if (next.action != MN_NEXT_RETRY) {
            return next.action;
        }
        ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: retrying %s in %" APR_TIME_T_FMT
                      " ms", prov->name, apr_time_as_msec(next.wait));
        apr_sleep(next.wait);
        /* waiting for an upstream, not work in the gateway */
        mn_ops_clock_of(r)->upstream += next.wait;
        tr.try_no++;
    }
}

/* A target that is not tried at all: its key was missing at a graceful
 * restart (the reason names the variable or file, never a value). */
static mn_next_action unavailable(failover *fo, const mn_provider *prov, int targets_left)
{
    mn_try tr;
    memset(&tr, 0, sizeof(tr));
    tr.kind = MN_FAIL_UNAVAILABLE;
    tr.targets_left = targets_left;
    mn_error_fail(&fo->last, MN_FAIL_UNAVAILABLE, "provider '%s' is unavailable: %s",
                  prov->name, prov->unavailable);
    note_try(fo, prov, mn_error_label(&fo->last));
    fo->have_err = 1;
    return mn_attempt_next(&tr, 0.0).action;
}

/* The builtin echo provider answers at once. */
static int serve_echo(failover *fo, const mn_target *t, int ti)
{
    mn_wire_ctx ctx;
    mn_wire_ctx_init(&ctx, fo->req, t->provider, t->model, fo->pol);
    note_try(fo, t->provider, "200");
    note_served(fo, ti);
    fo->req->upstream_status = 0;
    return mn_answer_echo(fo->req, &ctx, fo->body);
}

int mn_failover(mn_request *req, json_t *body, const mn_policy_result *pol,
                const mn_target *targets, int ntargets, mn_error *err)
{
    request_rec *r = req->r;
    failover fo;
    int ti;

    memset(&fo, 0, sizeof(fo));
    fo.req = req;
    fo.body = body;
    fo.pol = pol;
    fo.attempts = apr_array_make(r->pool, 4, sizeof(const char *));
    for (ti = 0; ti < ntargets; ti++) {
        const mn_provider *prov = targets[ti].provider;
        mn_next_action action;

        req->prov = prov;
        {
            mn_note put[2] = { { "maniac-provider", prov->name },
                               { "maniac-model", targets[ti].model } };
            mn_notes_put(r->notes, put, 2);
        }
        if (prov->format == MN_FORMAT_ECHO && !prov->unavailable) {
            return serve_echo(&fo, &targets[ti], ti);
        }
        action = prov->unavailable ? unavailable(&fo, prov, ntargets - ti - 1)
                                   : serve_target(&fo, &targets[ti], ti, ntargets - ti - 1, err);
        if (action == MN_NEXT_DONE) {
            return OK;
        }
        if (action == MN_NEXT_ANSWER) {
            break;
        }
    }
    note_attempts(&fo);
    req->upstream_status = fo.last_status;
    if (!fo.have_err) {
        mn_error_fail(&fo.last, MN_FAIL_UNREACHABLE, "no provider answered");
    }
    *err = fo.last;
    return mn_answer_error(req, err);
}
