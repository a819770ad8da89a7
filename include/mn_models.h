/* mn_models: the model catalogue GET /v1/models serves.
 *
 * Built once per configuration from the provider table: each provider's
 * `models=` names (as provider/model), a builtin:echo provider without
 * `models=` as <name>/demo, then every ManiacModel alias (sorted by name).
 * A client key's `models=` globs filter it.  Pure: APR and Jansson only; the
 * httpd glue is src/httpd/endpoints.c. */
#ifndef MN_MODELS_H
#define MN_MODELS_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>
#include "mn_providers.h"

/* owned_by of an alias: it belongs to the gateway, not to one provider */
#define MN_MODELS_ALIAS_OWNER "maniac"
/* the id a builtin:echo provider without models= is listed as: <name>/demo */
#define MN_MODELS_ECHO_DEFAULT "demo"

typedef struct mn_model_entry {
    const char *id;              /* what a client sends as `model` */
    const char *owned_by;        /* provider name, or MN_MODELS_ALIAS_OWNER */
} mn_model_entry;

typedef struct mn_models {
    apr_array_header_t *entries; /* mn_model_entry, in listing order, ids unique */
    long created;                /* `created` of every entry (unix seconds) */
} mn_models;

mn_models *mn_models_build(apr_pool_t *p, const mn_provider_table *t, long created);

/* Shell-style glob: `*` any run of characters ('/' included), `?` one. */
int mn_models_glob_match(const char *pattern, const char *s);

/* May a key whose allow-list is globs (const char *; NULL = any model) see
 * and use id? */
int mn_models_allowed(const apr_array_header_t *globs, const char *id);

/* {"object":"list","data":[...]} of the entries globs allow (new reference). */
json_t *mn_models_list_json(const mn_models *m, const apr_array_header_t *globs);

/* {"id","object":"model","created","owned_by"} (new reference). */
json_t *mn_model_json(const mn_model_entry *e, long created);

/* The entry for id, NULL when unknown or not allowed.  A builtin:echo
 * provider serves every model, so any <echo>/<model> is known (a fresh entry
 * from p).  *named: the provider the id's prefix names, known or not. */
const mn_model_entry *mn_models_find(apr_pool_t *p, const mn_models *m,
                                     const mn_provider_table *t,
                                     const apr_array_header_t *globs, const char *id,
                                     const mn_provider **named);

/* The id in a path segment: %2F (what the SDKs send for '/' and what
 * AllowEncodedSlashes NoDecode leaves) becomes '/'.  NULL on an empty id. */
char *mn_models_path_id(apr_pool_t *p, const char *seg);

#endif
