/* mn_providers: ManiacProvider parsing, the provider table and routing. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <apr_file_io.h>
#include <apr_env.h>
#include "mn_providers.h"

mn_provider_table *mn_providers_create(apr_pool_t *p)
{
    mn_provider_table *t = apr_pcalloc(p, sizeof(*t));
    t->pool = p;
    t->by_name = apr_hash_make(p);
    t->list = apr_array_make(p, 8, sizeof(mn_provider *));
    return t;
}

const char *mn_format_name(mn_format f)
{
    switch (f) {
    case MN_FORMAT_OPENAI: return "openai";
    case MN_FORMAT_ANTHROPIC: return "anthropic";
    case MN_FORMAT_GEMINI: return "gemini";
    case MN_FORMAT_ECHO: return "echo";
    }
    return "?";
}

static int valid_name(const char *n)
{
    if (!*n) {
        return 0;
    }
    for (; *n; n++) {
        if (!(apr_isalnum(*n) || *n == '-' || *n == '_' || *n == '.')) {
            return 0;
        }
    }
    return 1;
}

/* Seconds, fractions allowed ("2.5"); -1 when not a positive number. */
static apr_interval_time_t parse_seconds(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || v <= 0 || v > 86400.0) {
        return -1;
    }
    return (apr_interval_time_t)(v * APR_USEC_PER_SEC);
}

static const char *trim_key(apr_pool_t *p, const char *raw, apr_size_t len)
{
    while (len && apr_isspace(raw[len - 1])) {
        len--;
    }
    while (len && apr_isspace(*raw)) {
        raw++;
        len--;
    }
    return apr_pstrmemdup(p, raw, len);
}

static const char *read_key_file(apr_pool_t *p, const char *path, const char **key)
{
    apr_file_t *f;
    char buf[8192];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char ebuf[128];
        return apr_psprintf(p, "key-file=%s cannot be read: %s", path,
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    rv = apr_file_read(f, buf, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        return apr_psprintf(p, "key-file=%s cannot be read", path);
    }
    *key = trim_key(p, buf, n);
    if (!**key) {
        return apr_psprintf(p, "key-file=%s is empty", path);
    }
    return NULL;
}

static const char *parse_url(apr_pool_t *p, mn_provider *prov, const char *url)
{
    apr_uri_t uri;
    size_t len;

    if (!strncmp(url, "builtin:", 8)) {
        if (strcmp(url + 8, "echo")) {
            return apr_psprintf(p, "unknown builtin provider '%s' (known: builtin:echo)", url);
        }
        prov->scheme = "builtin";
        prov->format = MN_FORMAT_ECHO;
        prov->base_url = url;
        return NULL;
    }
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || !*uri.hostname || (strcmp(uri.scheme, "http") && strcmp(uri.scheme, "https"))
        || uri.query || uri.fragment || uri.user) {
        return apr_psprintf(p, "bad base URL '%s': expected http(s)://host[:port][/path] "
                            "or builtin:echo", url);
    }
    if (uri.port_str && (!uri.port || !*uri.port_str)) {
        return apr_psprintf(p, "bad base URL '%s': invalid port", url);
    }
    prov->scheme = apr_pstrdup(p, uri.scheme);
    prov->is_ssl = !strcmp(uri.scheme, "https");
    prov->hostinfo = apr_pstrdup(p, uri.hostinfo);
    len = uri.path ? strlen(uri.path) : 0;
    while (len && uri.path[len - 1] == '/') {
        len--;
    }
    prov->base_path = len ? apr_pstrmemdup(p, uri.path, len) : "";
    prov->base_url = apr_pstrcat(p, uri.scheme, "://", uri.hostinfo, prov->base_path, NULL);
    return NULL;
}

const char *mn_provider_parse(apr_pool_t *p, int argc, const char *const *argv,
                              mn_provider **out)
{
    mn_provider *prov;
    const char *err;
    int i, have_format = 0;

    if (argc < 2) {
        return "ManiacProvider needs a name and a base URL";
    }
    prov = apr_pcalloc(p, sizeof(*prov));
    prov->name = apr_pstrdup(p, argv[0]);
    prov->timeout = MN_DEFAULT_TIMEOUT;
    if (!valid_name(prov->name)) {
        return apr_psprintf(p, "bad provider name '%s': use letters, digits, '-', '_' or '.'",
                            argv[0]);
    }
    if ((err = parse_url(p, prov, argv[1])) != NULL) {
        return err;
    }
    for (i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *val;
        size_t klen;
        if (!eq || eq == argv[i]) {
            return apr_psprintf(p, "bad option '%s': expected key=value", argv[i]);
        }
        klen = (size_t)(eq - argv[i]);
        val = eq + 1;
#define KEY_IS(k) (klen == sizeof(k) - 1 && !strncmp(argv[i], k, klen))
        if (KEY_IS("format")) {
            if (!strcmp(val, "openai")) prov->format = MN_FORMAT_OPENAI;
            else if (!strcmp(val, "anthropic")) prov->format = MN_FORMAT_ANTHROPIC;
            else if (!strcmp(val, "gemini")) prov->format = MN_FORMAT_GEMINI;
            else {
                return apr_psprintf(p, "unknown format '%s' (known: openai, anthropic, gemini)",
                                    val);
            }
            have_format = 1;
        }
        else if (KEY_IS("key-env")) {
            char *v = NULL;
            if (prov->key_source) {
                return "give one of key-env= or key-file=, not both";
            }
            if (!*val) {
                return "key-env= needs a variable name";
            }
            if (apr_env_get(&v, val, p) != APR_SUCCESS || !v || !*v) {
                return apr_psprintf(p, "key-env=%s: environment variable %s is not set "
                                    "(export it in the environment httpd starts with, "
                                    "e.g. /etc/apache2/envvars)", val, val);
            }
            prov->key = trim_key(p, v, strlen(v));
            prov->key_source = apr_pstrcat(p, "env:", val, NULL);
        }
        else if (KEY_IS("key-file")) {
            if (prov->key_source) {
                return "give one of key-env= or key-file=, not both";
            }
            if ((err = read_key_file(p, val, &prov->key)) != NULL) {
                return err;
            }
            prov->key_source = apr_pstrcat(p, "file:", val, NULL);
        }
        else if (KEY_IS("timeout")) {
            prov->timeout = parse_seconds(val);
            if (prov->timeout < 0) {
                return apr_psprintf(p, "bad timeout '%s': expected seconds > 0", val);
            }
        }
        else if (KEY_IS("max-tokens")) {
            char *end;
            long v = strtol(val, &end, 10);
            if (end == val || *end || v <= 0) {
                return apr_psprintf(p, "bad max-tokens '%s': expected a positive integer", val);
            }
            prov->max_tokens = v;
        }
        else if (KEY_IS("reasoning")) {
            if (!strcmp(val, "on")) prov->reasoning_content = 1;
            else if (!strcmp(val, "off")) prov->reasoning_content = 0;
            else return apr_psprintf(p, "bad reasoning '%s': expected on or off", val);
        }
        else {
            return apr_psprintf(p, "unknown option '%.*s' (known: format, key-env, key-file, "
                                "timeout, max-tokens, reasoning)", (int)klen, argv[i]);
        }
#undef KEY_IS
    }
    if (prov->format == MN_FORMAT_ECHO && have_format) {
        return "builtin:echo takes no format= option";
    }
    *out = prov;
    return NULL;
}

const char *mn_providers_add(mn_provider_table *t, mn_provider *prov)
{
    mn_provider *old = apr_hash_get(t->by_name, prov->name, APR_HASH_KEY_STRING);
    if (old) {
        if (old->conf_file) {
            return apr_psprintf(t->pool, "duplicate provider name '%s' (first defined at %s:%d)",
                                prov->name, old->conf_file, old->conf_line);
        }
        return apr_psprintf(t->pool, "duplicate provider name '%s'", prov->name);
    }
    apr_hash_set(t->by_name, prov->name, APR_HASH_KEY_STRING, prov);
    *(mn_provider **)apr_array_push(t->list) = prov;
    return NULL;
}

const mn_provider *mn_providers_get(const mn_provider_table *t, const char *name,
                                    size_t name_len)
{
    return apr_hash_get(t->by_name, name, (apr_ssize_t)name_len);
}

int mn_route_split(apr_pool_t *p, const char *model, const char **provider_out,
                   size_t *provider_len, const char **model_out)
{
    const char *slash = strchr(model, '/');
    if (!slash || slash == model || !slash[1]) {
        return -1;
    }
    *provider_out = model;
    *provider_len = (size_t)(slash - model);
    *model_out = apr_pstrdup(p, slash + 1);
    return 0;
}
