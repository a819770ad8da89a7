/* mn_settings: scalar settings with "unset" sentinels (see include/mn_settings.h). */
#include "mn_settings.h"

/* The nearer scope's value when it set one (mod_http2's H2_CONFIG_GET). */
#define PICK(add, base, f) ((add)->f != MN_UNSET ? (add)->f : (base)->f)
#define OR_DEFAULT(v, d) ((v) != MN_UNSET ? (v) : (d))

void mn_settings_init(mn_settings *s)
{
    s->max_body = MN_UNSET;
    s->max_response = MN_UNSET;
    s->max_event = MN_UNSET;
    s->max_schema_expansion = MN_UNSET;
    s->overhead_header = MN_UNSET;
    s->metrics = MN_UNSET;
}

void mn_settings_merge(mn_settings *out, const mn_settings *base, const mn_settings *add)
{
    /* built apart first: out may alias base or add */
    mn_settings m;
    m.max_body = PICK(add, base, max_body);
    m.max_response = PICK(add, base, max_response);
    m.max_event = PICK(add, base, max_event);
    m.max_schema_expansion = PICK(add, base, max_schema_expansion);
    m.overhead_header = PICK(add, base, overhead_header);
    m.metrics = PICK(add, base, metrics);
    *out = m;
}

apr_int64_t mn_settings_max_body(const mn_settings *near, const mn_settings *far)
{
    if (near && near->max_body != MN_UNSET) {
        return near->max_body;
    }
    return OR_DEFAULT(far ? far->max_body : MN_UNSET, MN_DEFAULT_MAX_BODY);
}

apr_int64_t mn_settings_max_response(const mn_settings *s)
{
    return OR_DEFAULT(s->max_response, MN_DEFAULT_MAX_RESPONSE);
}

apr_int64_t mn_settings_max_event(const mn_settings *s)
{
    return OR_DEFAULT(s->max_event, MN_DEFAULT_MAX_EVENT);
}

int mn_settings_schema_expansion(const mn_settings *s)
{
    return OR_DEFAULT(s->max_schema_expansion, MN_DEFAULT_SCHEMA_EXPANSION);
}

int mn_settings_overhead_header(const mn_settings *s)
{
    return OR_DEFAULT(s->overhead_header, 0);
}

int mn_settings_metrics(const mn_settings *s)
{
    return OR_DEFAULT(s->metrics, 1);
}
