/* The maniac handler: POST .../chat/completions, from intake to the answer.
 *
 * The request's life, one file per stage (include/mn_serve.h):
 *   handler.c   CORS, path and method, the body read and parsed (here), then
 *               mn_serve(): route the model, the policy, the limits
 *   failover.c  the targets, keys, retries and breaker (the decision is the
 *               pure mn_attempt_next())
 *   exchange.c  one try: encode, open the upstream, its error or whole answer
 *   relay.c     a streamed answer, relayed by a state machine
 *   answer.c    the writers of answers, errors and stream frames
 * Before the first byte reaches the client every failure is a JSON error
 * with a status; after it, a terminal error frame and `data: [DONE]`.
 *
 * The hook point for other inbound faces (/v1/messages, /v1/responses): an
 * mn_face says how answers, stream frames and errors are written (answer.c
 * has the OpenAI chat face).  A face's handler does its own intake, turns
 * its body into the OpenAI request the policy and the translators take, and
 * calls mn_request_init(&req, r, &its_face) then mn_serve(&req, body, &err);
 * everything after routing writes through req->face only. */
#include <string.h>
#include <apr_strings.h>
#include <jansson.h>

#include <http_core.h>
#include "mn_serve.h"
#include "mn_face_messages.h"
#include "mn_notes.h"
#include "mn_ops.h"
#include "mn_responses_face.h"

static int path_is_chat_completions(const char *uri)
{
    static const char suffix[] = "/chat/completions";
    size_t len = strlen(uri), slen = sizeof(suffix) - 1;
    return len >= slen && !strcmp(uri + len - slen, suffix);
}

/* GET .../models/{id}, as the SDKs' models.retrieve sends it: the provider
 * the id names (the id's '/' may arrive as %2F, with AllowEncodedSlashes
 * NoDecode), or NULL. */
static const mn_provider *models_path_provider(const mn_request *req, const char *uri)
{
    const char *id = strstr(uri, "/models/");
    size_t len;
    if (!id) {
        return NULL;
    }
    id += 8;
    len = strcspn(id, "/%");
    if (!len || (id[len] != '/' && ap_cstr_casecmpn(id + len, "%2F", 3))) {
        return NULL;
    }
    return mn_providers_get(req->conf->providers, id, len);
}

/* ManiacCORS: Access-Control-* on every answer to an allowed origin, and
 * the preflight.  Returns DECLINED to go on, or the preflight's answer. */
static int cors(mn_request *req, mn_error *err)
{
    request_rec *r = req->r;
    const mn_dir_config *dc = ap_get_module_config(r->per_dir_config, &maniac_module);
    const char *bad = NULL;

    switch (mn_cors_apply(r->pool, dc ? &dc->cors : NULL, r->method_number == M_OPTIONS,
                          r->headers_in, r->headers_out, &bad)) {
    case MN_CORS_GO_ON:
        return DECLINED;
    case MN_CORS_PREFLIGHT_OK:
        ap_discard_request_body(r);
        r->status = HTTP_NO_CONTENT;
        return OK;
    case MN_CORS_BAD_ORIGIN:
        mn_error_set(err, 403, "permission_error", NULL, "origin_not_allowed",
                     "Origin %s is not allowed to call this endpoint (ManiacCORS)",
                     apr_table_get(r->headers_in, "Origin"));
        break;
    case MN_CORS_BAD_HEADER:
        mn_error_set(err, 403, "permission_error", NULL, "header_not_allowed",
                     "Request header %s is not allowed from a browser (ManiacCORS)", bad);
        break;
    }
    ap_discard_request_body(r);
    return mn_answer_error(req, err);
}

static int too_large(request_rec *r, apr_off_t limit, mn_error *err)
{
    /* the rest of the body stays unread: this connection cannot be reused */
    r->connection->keepalive = AP_CONN_CLOSE;
    return mn_error_set(err, 413, "invalid_request_error", NULL, "request_too_large",
                        "The request body is larger than the %" APR_OFF_T_FMT
                        " bytes this server accepts", limit);
}

/* Reads the request body, bounded by LimitRequestBody and our own cap. */
static int read_body(mn_request *req, char **body, apr_size_t *len, mn_error *err)
{
    request_rec *r = req->r;
    apr_bucket_brigade *bb = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_bucket_brigade *all = apr_brigade_create(r->pool, r->connection->bucket_alloc);
    apr_off_t total = 0, limit = ap_get_limit_req_body(r), cl = 0;
    const char *cls = apr_table_get(r->headers_in, "Content-Length");
    int seen_eos = 0, saved_proxyreq = r->proxyreq, rc = 0;

    if (limit <= 0 || limit > mn_config_max_body(r)) {
        limit = mn_config_max_body(r);
    }
    if (cls && ap_parse_strict_length(&cl, cls) && cl > limit) {
        return too_large(r, limit, err);
    }
    /* HTTP_IN answers an over-limit body itself, with an HTML page, before we
     * could say a word; it leaves the limit to us on proxy requests, so the
     * read is marked as one and the limit enforced here instead. */
    r->proxyreq = PROXYREQ_REVERSE;
    do {
        apr_bucket *e;
        apr_off_t n = 0;
        apr_status_t rv = ap_get_brigade(r->input_filters, bb, AP_MODE_READBYTES,
                                         APR_BLOCK_READ, HUGE_STRING_LEN);
        if (rv != APR_SUCCESS) {
            r->connection->keepalive = AP_CONN_CLOSE;
            rc = mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                              "The request body could not be read");
            break;
        }
        for (e = APR_BRIGADE_FIRST(bb); e != APR_BRIGADE_SENTINEL(bb);
             e = APR_BUCKET_NEXT(e)) {
            if (APR_BUCKET_IS_EOS(e)) {
                seen_eos = 1;
            }
        }
        apr_brigade_length(bb, 1, &n);
        total += n;
        if (total > limit) {
            rc = too_large(r, limit, err);
            break;
        }
        APR_BRIGADE_CONCAT(all, bb);
    } while (!seen_eos);
    r->proxyreq = saved_proxyreq;
    apr_brigade_cleanup(bb);
    if (rc) {
        apr_brigade_cleanup(all);
        return rc;
    }
    if (apr_brigade_pflatten(all, body, len, r->pool) != APR_SUCCESS) {
        return mn_error_set(err, 400, "invalid_request_error", NULL, NULL,
                            "The request body could not be read");
    }
    apr_brigade_cleanup(all);
    return 0;
}

/* What the request's model names: an alias (its targets), or a known
 * provider and a model.  NULL when neither; req->prov is set whenever a
 * provider is named, so that even the errors before routing say which. */
static const mn_target *route(mn_request *req, const char *model, mn_target *single,
                              int *ntargets, int *is_alias)
{
    const mn_alias *alias = mn_alias_get(req->conf->providers, model);
    const char *slash;

    *is_alias = alias != NULL;
    if (alias) {
        *ntargets = alias->targets->nelts;
        req->prov = APR_ARRAY_IDX(alias->targets, 0, mn_target).provider;
        return (const mn_target *)alias->targets->elts;
    }
    slash = strchr(model, '/');
    if (slash) {
        req->prov = mn_providers_get(req->conf->providers, model, (size_t)(slash - model));
    }
    if (!req->prov || !slash[1]) {
        return NULL;
    }
    memset(single, 0, sizeof(*single));
    single->provider = req->prov;
    single->model = apr_pstrdup(req->r->pool, slash + 1);
    *ntargets = 1;
    return single;
}

/* What every target keeps (keep=): a field may only pass when whichever
 * target serves the request can carry it. */
static unsigned targets_keep(const mn_target *targets, int ntargets)
{
    unsigned keep = ~0u;
    int i;
    if (!targets || ntargets < 1) {
        return 0;
    }
    for (i = 0; i < ntargets; i++) {
        keep &= targets[i].provider->keep;
    }
    return keep;
}

/* The client key's models= (AuthType maniac): the name asked for matches, or
 * it is an alias whose every target's provider/model matches. */
static int key_allows(request_rec *r, const char *model, const mn_alias *alias)
{
    const mn_client_key *k = mn_auth_key(r);
    int i;
    if (!k || !k->models || mn_key_model_allowed(k, model)) {
        return 1;
    }
    for (i = 0; alias && i < alias->targets->nelts; i++) {
        const mn_target *t = &APR_ARRAY_IDX(alias->targets, i, mn_target);
        if (!mn_key_model_allowed(k, apr_pstrcat(r->pool, t->provider->name, "/", t->model,
                                                 NULL))) {
            return 0;
        }
    }
    return alias != NULL;
}

int mn_serve(mn_request *req, json_t *body, mn_error *err)
{
    request_rec *r = req->r;
    mn_policy_result pol;
    const mn_target *targets = NULL;
    const char *model = json_string_value(json_object_get(body, "model"));
    int ntargets = 0, is_alias = 0, rc;
    mn_target single;

    if (model && *model) {
        targets = route(req, model, &single, &ntargets, &is_alias);
    }
    if (req->prov) {
        apr_table_setn(r->notes, "maniac-provider", req->prov->name);
    }
    if (mn_policy_apply(body, targets_keep(targets, ntargets), &pol, err)) {
        return mn_answer_error(req, err);
    }
    if (!key_allows(r, pol.model, is_alias ? mn_alias_get(req->conf->providers, pol.model) : NULL)) {
        mn_notes_request(r->pool, r->notes, &pol, NULL, NULL);
        mn_auth_add_tags(r);
        mn_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist or you do not have access to it.",
                     pol.model);
        mn_policy_result_clear(&pol);
        return mn_answer_error(req, err);
    }
    if (!targets) {
        mn_notes_request(r->pool, r->notes, &pol, NULL, NULL);
        mn_auth_add_tags(r);
        mn_error_set(err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: use \"provider/model\" with a provider "
                     "configured by ManiacProvider, or a ManiacModel alias", pol.model);
        mn_policy_result_clear(&pol);
        return mn_answer_error(req, err);
    }
    mn_notes_request(r->pool, r->notes, &pol, targets[0].provider->name, targets[0].model);
    mn_auth_add_tags(r);
    mn_ops_client_trace(r, &pol);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: route %s -> %s%s (%d target%s), stream=%d",
                  pol.model, targets[0].provider->name, is_alias ? " via alias" : "", ntargets,
                  ntargets == 1 ? "" : "s", pol.stream);
    if (mn_limits_admit(r, body, pol.stream, targets, ntargets, &req->lim, err)) {
        req->prov = targets[0].provider;     /* the error names the routed provider */
        mn_policy_result_clear(&pol);
        return mn_answer_error(req, err);
    }
    rc = mn_failover(req, body, &pol, targets, ntargets, err);
    mn_limits_finish(req->lim);
    mn_policy_result_clear(&pol);
    return rc;
}

void mn_request_init(mn_request *req, request_rec *r, const mn_face *face)
{
    memset(req, 0, sizeof(*req));
    req->r = r;
    req->face = face;
    req->conf = mn_conf;
}

static int handle(request_rec *r)
{
    mn_request req;
    mn_error err;
    char *raw;
    apr_size_t len;
    json_t *body;
    json_error_t jerr;
    int rc;

    mn_request_init(&req, r, mn_fm_path(r->uri) ? &mn_face_messages
                             : mn_path_is_responses(r->uri) ? &mn_face_responses
                             : &mn_face_chat);
    mn_error_clear(&err);

    if ((rc = cors(&req, &err)) != DECLINED) {
        return rc;
    }
    if (req.face == &mn_face_chat && !path_is_chat_completions(r->uri)) {
        if ((rc = mn_ops_endpoints(r)) != DECLINED) {
            return rc;
        }
        req.prov = models_path_provider(&req, r->uri);
        mn_error_set(&err, 404, "invalid_request_error", NULL, NULL,
                     "Invalid URL (%s %s): this endpoint serves POST .../chat/completions "
                     "and POST .../responses (a model is named provider/model in the request body)",
                     r->method, r->uri);
        ap_discard_request_body(r);
        return mn_answer_error(&req, &err);
    }
    if (r->method_number != M_POST) {
        mn_error_set(&err, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed: use POST", r->method);
        ap_discard_request_body(r);
        return mn_answer_error(&req, &err);
    }
    if (read_body(&req, &raw, &len, &err)) {
        return mn_answer_error(&req, &err);
    }
    body = json_loadb(raw, len, 0, &jerr);
    if (!body) {
        mn_error_set(&err, 400, "invalid_request_error", NULL, "invalid_json",
                     "The request body is not valid JSON: %s (line %d, column %d)",
                     jerr.text, jerr.line, jerr.column);
        return mn_answer_error(&req, &err);
    }
    if (req.face->intake && (rc = req.face->intake(&req, &body, &err)) != 0) {
        json_decref(body);
        return rc < 0 ? mn_answer_error(&req, &err) : OK;
    }
    rc = mn_serve(&req, body, &err);
    json_decref(body);
    return rc;
}

int mn_handler(request_rec *r)
{
    int rc;
    if (!r->handler || strcmp(r->handler, MN_HANDLER_NAME)) {
        return DECLINED;
    }
    rc = handle(r);
    mn_ops_finish(r);
    return rc;
}
