/* mn_settings: the scalar settings of a server or a <Location> (sizes,
 * factors, switches), each MN_UNSET until a directive says otherwise, so a
 * merge can tell "not said here" from a value (mod_http2's DEF_VAL and
 * H2_CONFIG_GET): the nearer scope wins when it set a value, and a getter
 * applies the default last.  Pure: src/httpd/config.c keeps one per server
 * and one per directory and reads them through these functions. */
#ifndef MN_SETTINGS_H
#define MN_SETTINGS_H

#include <apr.h>

#define MN_UNSET (-1)

#define MN_DEFAULT_MAX_BODY (32 * 1024 * 1024)      /* request bodies */
#define MN_DEFAULT_MAX_RESPONSE (64 * 1024 * 1024)  /* non-streaming upstream bodies */
#define MN_DEFAULT_MAX_EVENT (4 * 1024 * 1024)      /* one upstream SSE line/event */
#define MN_DEFAULT_SCHEMA_EXPANSION 8

typedef struct mn_settings {
    apr_int64_t max_body;        /* ManiacMaxRequestBody (also per <Location>) */
    apr_int64_t max_response;    /* ManiacMaxResponseBody */
    apr_int64_t max_event;       /* ManiacMaxEventSize */
    int max_schema_expansion;    /* ManiacMaxSchemaExpansion */
    int overhead_header;         /* ManiacOverheadHeader */
    int metrics;                 /* ManiacMetrics (main server only) */
} mn_settings;

/* Every setting MN_UNSET. */
void mn_settings_init(mn_settings *s);

/* out = add where add set a value, else base (out may be base or add). */
void mn_settings_merge(mn_settings *out, const mn_settings *base, const mn_settings *add);

/* The value in effect: near's when it set one, else far's (NULL: none),
 * else the default. */
apr_int64_t mn_settings_max_body(const mn_settings *near, const mn_settings *far);
apr_int64_t mn_settings_max_response(const mn_settings *s);
apr_int64_t mn_settings_max_event(const mn_settings *s);
int mn_settings_schema_expansion(const mn_settings *s);
int mn_settings_overhead_header(const mn_settings *s);   /* default off */
int mn_settings_metrics(const mn_settings *s);           /* default on */

#endif
