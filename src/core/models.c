/* mn_models: the /v1/models catalogue (see include/mn_models.h). */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_keys.h"
#include "mn_models.h"

static mn_model_entry *find_id(const apr_array_header_t *entries, const char *id)
{
    int i;
    for (i = 0; i < entries->nelts; i++) {
        if (!strcmp(APR_ARRAY_IDX(entries, i, mn_model_entry).id, id)) {
            return &APR_ARRAY_IDX(entries, i, mn_model_entry);
        }
    }
    return NULL;
}

static void add(apr_array_header_t *entries, const char *id, const char *owned_by)
{
    mn_model_entry *e = find_id(entries, id);
    if (e) {
        /* an alias spelt like a provider's model wins routing (aliases are
         * looked up first): listed once, as the alias */
        if (!strcmp(owned_by, MN_MODELS_ALIAS_OWNER)) {
            e->owned_by = owned_by;
        }
        return;
    }
    e = apr_array_push(entries);
    e->id = id;
    e->owned_by = owned_by;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static void add_aliases(apr_pool_t *p, apr_array_header_t *entries, const mn_provider_table *t)
{
    apr_array_header_t *names = apr_array_make(p, 8, sizeof(const char *));
    apr_hash_index_t *hi;
    int i;

    /* hash order changes from one configuration read to the next */
    for (hi = apr_hash_first(p, t->aliases); hi; hi = apr_hash_next(hi)) {
        *(const char **)apr_array_push(names) = ((const mn_alias *)apr_hash_this_val(hi))->name;
    }
    if (names->nelts > 1) {
        qsort(names->elts, (size_t)names->nelts, sizeof(const char *), by_name);
    }
    for (i = 0; i < names->nelts; i++) {
        add(entries, APR_ARRAY_IDX(names, i, const char *), MN_MODELS_ALIAS_OWNER);
    }
}

mn_models *mn_models_build(apr_pool_t *p, const mn_provider_table *t, long created)
{
    mn_models *m = apr_pcalloc(p, sizeof(*m));
    int i, j;

    m->created = created;
    m->entries = apr_array_make(p, 16, sizeof(mn_model_entry));
    for (i = 0; i < t->list->nelts; i++) {
        const mn_provider *prov = APR_ARRAY_IDX(t->list, i, const mn_provider *);
        if (prov->models) {
            for (j = 0; j < prov->models->nelts; j++) {
                add(m->entries, apr_pstrcat(p, prov->name, "/",
                                            APR_ARRAY_IDX(prov->models, j, const char *), NULL),
                    prov->name);
            }
        }
        else if (prov->format == MN_FORMAT_ECHO) {
            add(m->entries, apr_pstrcat(p, prov->name, "/" MN_MODELS_ECHO_DEFAULT, NULL),
                prov->name);
        }
    }
    add_aliases(p, m->entries, t);
    return m;
}

/* the same globs as the client keys' models= (src/core/keys.c) */
int mn_models_glob_match(const char *pattern, const char *s)
{
    return mn_glob_match(pattern, s);
}

int mn_models_allowed(const apr_array_header_t *globs, const char *id)
{
    int i;
    if (!globs) {
        return 1;
    }
    for (i = 0; i < globs->nelts; i++) {
        if (mn_models_glob_match(APR_ARRAY_IDX(globs, i, const char *), id)) {
            return 1;
        }
    }
    return 0;
}

json_t *mn_model_json(const mn_model_entry *e, long created)
{
    return json_pack("{s:s, s:s, s:I, s:s}", "id", e->id, "object", "model",
                     "created", (json_int_t)created, "owned_by", e->owned_by);
}

json_t *mn_models_list_json(const mn_models *m, const apr_array_header_t *globs)
{
    json_t *data = json_array();
    int i;
    for (i = 0; i < m->entries->nelts; i++) {
        const mn_model_entry *e = &APR_ARRAY_IDX(m->entries, i, mn_model_entry);
        if (mn_models_allowed(globs, e->id)) {
            json_array_append_new(data, mn_model_json(e, m->created));
        }
    }
    return json_pack("{s:s, s:o}", "object", "list", "data", data);
}

const mn_model_entry *mn_models_find(apr_pool_t *p, const mn_models *m,
                                     const mn_provider_table *t,
                                     const apr_array_header_t *globs, const char *id,
                                     const mn_provider **named)
{
    const char *slash = strchr(id, '/');
    const mn_provider *prov = slash ? mn_providers_get(t, id, (size_t)(slash - id)) : NULL;
    const mn_model_entry *e;

    *named = prov;
    if (!mn_models_allowed(globs, id)) {
        return NULL;
    }
    if ((e = find_id(m->entries, id)) != NULL) {
        return e;
    }
    if (prov && prov->format == MN_FORMAT_ECHO && slash[1]) {
        mn_model_entry *echo = apr_palloc(p, sizeof(*echo));
        echo->id = apr_pstrdup(p, id);
        echo->owned_by = prov->name;
        return echo;
    }
    return NULL;
}

char *mn_models_path_id(apr_pool_t *p, const char *seg)
{
    char *id = apr_pstrdup(p, seg), *w = id;
    const char *r = seg;

    while (*r) {
        if (r[0] == '%' && r[1] == '2' && (r[2] == 'F' || r[2] == 'f')) {
            *w++ = '/';
            r += 3;
        }
        else {
            *w++ = *r++;
        }
    }
    *w = '\0';
    return *id ? id : NULL;
}
