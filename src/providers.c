/* mn_providers: ManiacProvider parsing, the provider table and routing. */
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_lib.h>
#include <apr_uri.h>
#include <apr_file_io.h>
#include <apr_env.h>
#include "mn_providers.h"
#include "mn_policy.h"

mn_provider_table *mn_providers_create(apr_pool_t *p)
{
    mn_provider_table *t = apr_pcalloc(p, sizeof(*t));
    t->pool = p;
    t->by_name = apr_hash_make(p);
    t->list = apr_array_make(p, 8, sizeof(mn_provider *));
    t->aliases = apr_hash_make(p);
    t->warnings = apr_array_make(p, 2, sizeof(const char *));
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
    apr_interval_time_t t;
    /* !(v > 0) also refuses NaN */
    if (end == s || *end || !(v > 0) || v > 86400.0) {
        return -1;
    }
    t = (apr_interval_time_t)(v * APR_USEC_PER_SEC);
    return t > 0 ? t : -1;
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

/* A key goes into a request header as it is: a line break (or any control
 * byte) in it would end that header and start another. */
static int has_control(const char *key)
{
    for (; *key; key++) {
        unsigned char c = (unsigned char)*key;
        if (c < 0x20 || c == 0x7f) {
            return 1;
        }
    }
    return 0;
}

/* Whether a word that should name a variable or a file looks like a key
 * pasted there instead: a known key prefix, or long and random-looking
 * (variable names are short and rarely mix lowercase and digits).  Such a
 * word is never repeated into a message, which configtest and the error
 * log show. */
static int looks_like_key(const char *w)
{
    static const char *const prefixes[] = {
        "sk-", "sk_", "gsk_", "xai-", "AIza", "hf_", "r8_", "ghp_", "gho_", "ghs_",
        "github_pat_", "pplx-", "csk-", "nvapi-", "fw_", "tgp_", "pk_", "rk_", "AKIA",
        "glpat-", "xox"
    };
    size_t i, len = strlen(w);
    int lower = 0, digit = 0;
    for (i = 0; i < sizeof(prefixes) / sizeof(prefixes[0]); i++) {
        if (!strncmp(w, prefixes[i], strlen(prefixes[i]))) {
            return 1;
        }
    }
    if (strchr(w, '/')) {
        return 0;                /* a path */
    }
    for (i = 0; i < len; i++) {
        lower |= apr_islower(w[i]) != 0;
        digit |= apr_isdigit(w[i]) != 0;
    }
    return len > 64 || (len >= 20 && lower && digit);
}

/* w for a message, or a placeholder when it looks like a key. */
static const char *shown(const char *w)
{
    return looks_like_key(w) ? "(not shown: it looks like a key)" : w;
}

static const char *read_key_file(apr_pool_t *p, const char *path, const char **key)
{
    apr_file_t *f;
    char buf[8192];
    apr_size_t n = sizeof(buf) - 1;
    apr_status_t rv = apr_file_open(&f, path, APR_FOPEN_READ, APR_OS_DEFAULT, p);
    if (rv != APR_SUCCESS) {
        char ebuf[128];
        return apr_psprintf(p, "key-file=%s cannot be read: %s", shown(path),
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    rv = apr_file_read(f, buf, &n);
    apr_file_close(f);
    if (rv != APR_SUCCESS && !APR_STATUS_IS_EOF(rv)) {
        char ebuf[128];
        /* e.g. "Is a directory": open() succeeds on one, read() does not */
        return apr_psprintf(p, "key-file=%s cannot be read: %s", shown(path),
                            apr_strerror(rv, ebuf, sizeof(ebuf)));
    }
    *key = trim_key(p, buf, n);
    if (!**key) {
        return apr_psprintf(p, "key-file=%s is empty", shown(path));
    }
    if (has_control(*key)) {
        return apr_psprintf(p, "key-file=%s: the key holds a line break or another control "
                            "character (one key per file)", shown(path));
    }
    return NULL;
}

/* key-env=A,B,C or key-file=P1,P2: one key per name, all required.  The
 * list itself is never echoed: one of its words may be a pasted key. */
static const char *read_keys(apr_pool_t *p, mn_provider *prov, const char *list, int from_env)
{
    apr_array_header_t *keys = apr_array_make(p, 2, sizeof(const char *));
    char *copy = apr_pstrdup(p, list), *last = NULL, *name;

    for (name = apr_strtok(copy, ",", &last); name; name = apr_strtok(NULL, ",", &last)) {
        const char *key = NULL;
        if (from_env) {
            char *v = NULL;
            const char *c;
            for (c = name; *c; c++) {
                if (!(apr_isalnum(*c) || *c == '_')) {
                    /* a key pasted here by mistake must not reach a log */
                    return "key-env= takes environment variable names (letters, digits, '_'), "
                           "not a key";
                }
            }
            if (looks_like_key(name)) {
                return "key-env= takes environment variable names, not a key (the value "
                       "looks like one and is not shown)";
            }
            if (apr_env_get(&v, name, p) != APR_SUCCESS || !v || !*v) {
                return apr_psprintf(p, "key-env: environment variable %s is not set "
                                    "(export it in the environment httpd starts with, "
                                    "e.g. /etc/apache2/envvars)", name);
            }
            key = trim_key(p, v, strlen(v));
            if (!*key) {
                return apr_psprintf(p, "key-env: environment variable %s is empty", name);
            }
            if (has_control(key)) {
                return apr_psprintf(p, "key-env: environment variable %s holds a line break or "
                                    "another control character inside the key", name);
            }
        }
        else {
            const char *err = read_key_file(p, name, &key);
            if (err) {
                return err;
            }
        }
        *(const char **)apr_array_push(keys) = key;
    }
    if (!keys->nelts) {
        return from_env ? "key-env= names no key" : "key-file= names no key";
    }
    prov->keys = (const char *const *)keys->elts;
    prov->nkeys = keys->nelts;
    prov->key = prov->keys[0];
    prov->key_source = apr_pstrcat(p, from_env ? "env:" : "file:", list, NULL);
    return NULL;
}

static int valid_port(const char *s)
{
    long v = 0;
    if (!*s) {
        return 0;
    }
    for (; *s; s++) {
        if (!apr_isdigit(*s) || (v = v * 10 + (*s - '0')) > 65535) {
            return 0;
        }
    }
    return v > 0;
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
    if (strchr(url, '@')) {
        /* never repeat what may be credentials back into a log */
        return "bad base URL: credentials in the URL are not allowed (use key-env= or key-file=)";
    }
    if (apr_uri_parse(p, url, &uri) != APR_SUCCESS || !uri.scheme || !uri.hostname
        || !*uri.hostname || (strcmp(uri.scheme, "http") && strcmp(uri.scheme, "https"))
        || uri.fragment || uri.user) {
        return apr_psprintf(p, "bad base URL '%s': expected http(s)://host[:port][/path][?query] "
                            "or builtin:echo", url);
    }
    if (uri.port_str && !valid_port(uri.port_str)) {
        /* apr_uri_parse wraps 99999 to 34463: check the digits ourselves */
        return apr_psprintf(p, "bad base URL '%s': invalid port '%s' (1-65535)", url,
                            uri.port_str);
    }
    /* Azure OpenAI and others want e.g. ?api-version=...: kept on every request */
    prov->base_query = uri.query && *uri.query ? apr_pstrdup(p, uri.query) : NULL;
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

static void warn(apr_pool_t *p, mn_provider *prov, const char *msg)
{
    if (!prov->warnings) {
        prov->warnings = apr_array_make(p, 2, sizeof(const char *));
    }
    *(const char **)apr_array_push(prov->warnings) = msg;
}

/* A base URL that already names the endpoint would get it twice. */
static void check_endpoint_suffix(apr_pool_t *p, mn_provider *prov)
{
    static const char *const suffixes[] = { "/chat/completions", "/messages", NULL };
    const char *path = prov->base_path, *cut = NULL, *colon;
    size_t len = strlen(path);
    int i;

    for (i = 0; suffixes[i]; i++) {
        size_t sl = strlen(suffixes[i]);
        if (len >= sl && !strcmp(path + len - sl, suffixes[i])) {
            cut = path + len - sl;
        }
    }
    colon = strrchr(path, ':');
    if (colon && (!strcmp(colon, ":generateContent") || !strcmp(colon, ":streamGenerateContent"))) {
        const char *models = strstr(path, "/models/");
        cut = models && models < colon ? models : colon;
    }
    if (cut) {
        warn(p, prov, apr_psprintf(p, "base URL %s already ends in '%s', which the gateway "
                                   "appends itself: use %s://%s%.*s%s%s", prov->base_url, cut,
                                   prov->scheme, prov->hostinfo, (int)(cut - path), path,
                                   prov->base_query ? "?" : "",
                                   prov->base_query ? prov->base_query : ""));
    }
}

/* Options accepted for every format but read by some only. */
static void check_format_options(apr_pool_t *p, mn_provider *prov, int have_reasoning)
{
    const char *f = mn_format_name(prov->format);
    if (prov->max_tokens && prov->format != MN_FORMAT_ANTHROPIC) {
        warn(p, prov, apr_psprintf(p, "max-tokens= does nothing for format=%s (it is the "
                                   "default max_tokens of format=anthropic only)", f));
    }
    if (have_reasoning && prov->format != MN_FORMAT_ANTHROPIC
        && prov->format != MN_FORMAT_GEMINI) {
        warn(p, prov, apr_psprintf(p, "reasoning= does nothing for format=%s (anthropic and "
                                   "gemini only)", f));
    }
}

static int valid_header_name(const char *n)
{
    if (!*n) {
        return 0;
    }
    for (; *n; n++) {
        if (!(apr_isalnum(*n) || *n == '-' || *n == '_')) {
            return 0;
        }
    }
    return 1;
}

const char *mn_provider_parse(apr_pool_t *p, int argc, const char *const *argv,
                              mn_provider **out)
{
    return mn_provider_parse_ex(p, argc, argv, 0, out);
}

const char *mn_provider_parse_ex(apr_pool_t *p, int argc, const char *const *argv,
                                 int flags, mn_provider **out)
{
    mn_provider *prov;
    const char *err;
    int i, have_format = 0, have_reasoning = 0, is_echo;

    if (argc < 2) {
        return "ManiacProvider needs a name and a base URL";
    }
    prov = apr_pcalloc(p, sizeof(*prov));
    prov->name = apr_pstrdup(p, argv[0]);
    prov->timeout = MN_DEFAULT_TIMEOUT;
    prov->retries = MN_DEFAULT_RETRIES;
    prov->breaker_failures = MN_DEFAULT_BREAKER_FAILURES;
    prov->breaker_cooldown = MN_DEFAULT_BREAKER_COOLDOWN;
    if (!valid_name(prov->name)) {
        return apr_psprintf(p, "bad provider name '%s': use letters, digits, '-', '_' or '.'",
                            argv[0]);
    }
    if ((err = parse_url(p, prov, argv[1])) != NULL) {
        return err;
    }
    is_echo = prov->format == MN_FORMAT_ECHO;
    for (i = 2; i < argc; i++) {
        const char *eq = strchr(argv[i], '=');
        const char *val;
        size_t klen;
        if (!eq || eq == argv[i]) {
            return apr_psprintf(p, "bad option '%s': expected key=value", shown(argv[i]));
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
        else if (KEY_IS("key-env") || KEY_IS("key-file")) {
            int from_env = KEY_IS("key-env");
            if (prov->key_source) {
                return "give one of key-env= or key-file=, not both";
            }
            if (!*val) {
                return from_env ? "key-env= needs a variable name" : "key-file= needs a path";
            }
            if ((err = read_keys(p, prov, val, from_env)) != NULL) {
                if (!(flags & MN_PARSE_KEYS_SOFT)) {
                    return err;
                }
                prov->unavailable = err;
                prov->key_source = apr_pstrcat(p, from_env ? "env:" : "file:", val, NULL);
            }
        }
        else if (KEY_IS("timeout") || KEY_IS("connect-timeout") || KEY_IS("first-byte-timeout")
                 || KEY_IS("idle-timeout") || KEY_IS("total-timeout")
                 || KEY_IS("breaker-cooldown")) {
            apr_interval_time_t t = parse_seconds(val);
            if (t < 0) {
                return apr_psprintf(p, "bad %.*s '%s': expected seconds > 0", (int)klen,
                                    argv[i], val);
            }
            if (KEY_IS("timeout")) prov->timeout = t;
            else if (KEY_IS("connect-timeout")) prov->connect_timeout = t;
            else if (KEY_IS("first-byte-timeout")) prov->first_byte_timeout = t;
            else if (KEY_IS("idle-timeout")) prov->idle_timeout = t;
            else if (KEY_IS("total-timeout")) prov->total_timeout = t;
            else prov->breaker_cooldown = t;
        }
        else if (KEY_IS("retries") || KEY_IS("breaker-failures")) {
            char *end;
            long v = strtol(val, &end, 10);
            if (end == val || *end || v < 0 || v > 100) {
                return apr_psprintf(p, "bad %.*s '%s': expected an integer from 0 to 100",
                                    (int)klen, argv[i], val);
            }
            if (KEY_IS("retries")) prov->retries = (int)v;
            else prov->breaker_failures = (int)v;
        }
        else if (KEY_IS("max-tokens")) {
            char *end;
            long v = strtol(val, &end, 10);
            if (end == val || *end || v <= 0) {
                return apr_psprintf(p, "bad max-tokens '%s': expected a positive integer", val);
            }
            prov->max_tokens = v;
        }
        else if (KEY_IS("key-header")) {
            if (!valid_header_name(val)) {
                return apr_psprintf(p, "bad key-header '%s': expected a header name, e.g. "
                                    "key-header=api-key", val);
            }
            prov->key_header = apr_pstrdup(p, val);
        }
        else if (KEY_IS("reasoning")) {
            have_reasoning = 1;
            if (!strcmp(val, "on")) prov->reasoning_content = 1;
            else if (!strcmp(val, "off")) prov->reasoning_content = 0;
            else return apr_psprintf(p, "bad reasoning '%s': expected on or off", val);
        }
        else if (KEY_IS("keep")) {
            if ((err = mn_policy_parse_keep(p, val, &prov->keep)) != NULL) {
                return err;
            }
        }
        else {
            return apr_psprintf(p, "unknown option '%.*s' (known: format, key-env, key-file, "
                                "timeout, connect-timeout, first-byte-timeout, idle-timeout, "
                                "total-timeout, retries, breaker-failures, breaker-cooldown, "
                                "max-tokens, reasoning, key-header, keep)", (int)klen, argv[i]);
        }
#undef KEY_IS
    }
    if (is_echo && have_format) {
        return "builtin:echo takes no format= option";
    }
    if (prov->keep && prov->format != MN_FORMAT_OPENAI) {
        /* only an OpenAI-format upstream has a place for these fields */
        return apr_psprintf(p, "keep= needs format=openai: format %s cannot carry n > 1, "
                            "logprobs, input_audio or json_schema.strict",
                            mn_format_name(prov->format));
    }
    if (prov->key_header && !prov->key_source) {
        return "key-header= needs a key (key-env= or key-file=)";
    }
    if (!is_echo) {
        check_endpoint_suffix(p, prov);
        check_format_options(p, prov, have_reasoning);
    }
    /* the split timeouts default to the general one */
    if (!prov->connect_timeout) prov->connect_timeout = prov->timeout;
    if (!prov->first_byte_timeout) prov->first_byte_timeout = prov->timeout;
    if (!prov->idle_timeout) prov->idle_timeout = prov->timeout;
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
    prov->index = t->list->nelts;
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

const char *mn_alias_add(mn_provider_table *t, int argc, const char *const *argv,
                         const char *file, int line)
{
    mn_alias *a;
    int i;
    if (argc < 2) {
        return "ManiacModel needs an alias and at least one provider/model target";
    }
    if (!valid_name(argv[0]) && !strchr(argv[0], '/')) {
        return apr_psprintf(t->pool, "bad alias name '%s'", argv[0]);
    }
    if ((a = apr_hash_get(t->aliases, argv[0], APR_HASH_KEY_STRING)) != NULL) {
        return apr_psprintf(t->pool, "duplicate alias '%s' (first defined at %s:%d)", argv[0],
                            a->conf_file ? a->conf_file : "?", a->conf_line);
    }
    a = apr_pcalloc(t->pool, sizeof(*a));
    a->name = apr_pstrdup(t->pool, argv[0]);
    a->conf_file = file;
    a->conf_line = line;
    a->targets = apr_array_make(t->pool, argc - 1, sizeof(mn_target));
    for (i = 1; i < argc; i++) {
        mn_target *tg = apr_array_push(a->targets);
        const char *pname;
        size_t plen;
        if (mn_route_split(t->pool, argv[i], &pname, &plen, &tg->model)) {
            return apr_psprintf(t->pool, "bad target '%s': expected provider/model", argv[i]);
        }
        tg->provider_name = apr_pstrmemdup(t->pool, pname, plen);
        tg->provider = NULL;
    }
    apr_hash_set(t->aliases, a->name, APR_HASH_KEY_STRING, a);
    return NULL;
}

const char *mn_aliases_resolve(mn_provider_table *t)
{
    apr_hash_index_t *hi;
    for (hi = apr_hash_first(t->pool, t->aliases); hi; hi = apr_hash_next(hi)) {
        mn_alias *a = apr_hash_this_val(hi);
        const char *slash = strchr(a->name, '/');
        int i;
        if (slash && apr_hash_get(t->by_name, a->name, (apr_ssize_t)(slash - a->name))) {
            *(const char **)apr_array_push(t->warnings) =
                apr_psprintf(t->pool, "ManiacModel %s (%s:%d) has the name of a model of "
                             "provider '%.*s': the alias wins, that model can no longer be "
                             "asked for directly", a->name, a->conf_file ? a->conf_file : "?",
                             a->conf_line, (int)(slash - a->name), a->name);
        }
        for (i = 0; i < a->targets->nelts; i++) {
            mn_target *tg = &APR_ARRAY_IDX(a->targets, i, mn_target);
            tg->provider = apr_hash_get(t->by_name, tg->provider_name, APR_HASH_KEY_STRING);
            if (!tg->provider) {
                return apr_psprintf(t->pool, "ManiacModel %s (%s:%d): unknown provider '%s'",
                                    a->name, a->conf_file ? a->conf_file : "?", a->conf_line,
                                    tg->provider_name);
            }
        }
    }
    return NULL;
}

const mn_alias *mn_alias_get(const mn_provider_table *t, const char *name)
{
    return apr_hash_get(t->aliases, name, APR_HASH_KEY_STRING);
}
