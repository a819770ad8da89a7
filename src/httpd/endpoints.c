/* GET .../models, .../models/{id} and .../openapi.json (see include/mn_ops.h).
 * The catalogue is built once per configuration, before the children fork. */
#include <string.h>
#include <stdlib.h>
#include <apr_strings.h>
#include <httpd.h>
#include <http_config.h>
#include <http_log.h>
#include <http_protocol.h>

#include "mn_serve.h"
#include "mn_auth.h"
#include "mn_models.h"
#include "mn_notes.h"
#include "mn_ops.h"

/* build/gen/openapi_doc.c, made from docs/openapi.json by the Makefile */
extern const unsigned char mn_openapi_json[];
extern const unsigned long mn_openapi_json_len;

static mn_models *catalogue;

const apr_array_header_t *mn_ops_key_models(request_rec *r)
{
    /* a client key's models= globs (AuthType maniac); NULL: every model */
    const mn_client_key *k = mn_auth_key(r);
    return k ? k->models : NULL;
}

static void send_body(request_rec *r, int status, const char *body, apr_size_t len)
{
    mn_write_json_bytes(r, status, body, len);
}

static int send_json(request_rec *r, int status, json_t *body)
{
    char *s = json_dumps(body, JSON_COMPACT);
    size_t len = s ? strlen(s) : 0;
    send_body(r, status, s ? s : "", len);
    free(s);
    json_decref(body);
    return OK;
}

static int send_error(request_rec *r, mn_error *e, const mn_provider *prov)
{
    mn_notes_outcome(r->pool, r->notes, 0, NULL, e->type, e->code);
    ap_log_rerror(APLOG_MARK, APLOG_DEBUG, 0, r, "maniac: answered %d %s (%s)", e->status,
                  e->type, e->code[0] ? e->code : "-");
    return send_json(r, e->status, mn_error_to_json(e, prov ? prov->name : NULL));
}

static int ends_with(const char *s, const char *suffix)
{
    size_t len = strlen(s), slen = strlen(suffix);
    return len >= slen && !strcmp(s + len - slen, suffix);
}

static int retrieve(request_rec *r, const char *seg)
{
    const char *id = mn_models_path_id(r->pool, seg);
    const mn_provider *named = NULL;
    const mn_model_entry *e;
    mn_error err;

    if (!id) {
        return DECLINED;
    }
    e = mn_models_find(r->pool, catalogue, mn_conf->providers, mn_ops_key_models(r), id,
                       &named);
    if (named) {
        apr_table_setn(r->notes, "maniac-provider", named->name);
    }
    if (e) {
        return send_json(r, HTTP_OK, mn_model_json(e, catalogue->created));
    }
    mn_error_clear(&err);
    if (named) {
        mn_error_set(&err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: provider '%s' lists no such model "
                     "(models= on its ManiacProvider line)", id, named->name);
    }
    else {
        mn_error_set(&err, 404, "invalid_request_error", "model", "model_not_found",
                     "The model '%s' does not exist: GET .../models lists the models "
                     "this gateway serves", id);
    }
    return send_error(r, &err, named);
}

int mn_ops_endpoints(request_rec *r)
{
    const char *uri = r->uri, *seg = strstr(uri, "/models/");
    int is_list = ends_with(uri, "/models"), is_doc = ends_with(uri, "/openapi.json");
    mn_error err;

    if (seg && seg[8] && !is_list) {
        seg += 8;
    }
    else if (!is_list && !is_doc) {
        return DECLINED;
    }
    else {
        seg = NULL;
    }
    ap_discard_request_body(r);
    if (r->method_number != M_GET) {
        mn_error_clear(&err);
        apr_table_setn(r->headers_out, "Allow", "GET, HEAD");
        mn_error_set(&err, 405, "invalid_request_error", NULL, "method_not_allowed",
                     "Method %s is not allowed: use GET", r->method);
        return send_error(r, &err, NULL);
    }
    if (is_doc && !seg) {
        send_body(r, HTTP_OK, (const char *)mn_openapi_json, (apr_size_t)mn_openapi_json_len);
        return OK;
    }
    if (!catalogue) {
        return DECLINED;
    }
    if (seg) {
        return retrieve(r, seg);
    }
    return send_json(r, HTTP_OK, mn_models_list_json(catalogue, mn_ops_key_models(r)));
}

static int models_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                              server_rec *s)
{
    /* `created` of every listed model: when this configuration was loaded
     * (the table is what the gateway serves since then) */
    catalogue = mn_conf ? mn_models_build(pconf, mn_conf->providers,
                                          (long)apr_time_sec(apr_time_now()))
                        : NULL;
    return OK;
}

void mn_ops_models_register_hooks(apr_pool_t *p)
{
    ap_hook_post_config(models_post_config, NULL, NULL, APR_HOOK_MIDDLE);
}
