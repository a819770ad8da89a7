/* mn_providers: ManiacProvider parsing, the provider table and routing. */
#include <errno.h>
#include <limits.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include <apr_cstr.h>
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

/* Seconds, fractions allowed ("2.5"); -1 when not a positive number up to max. */
static apr_interval_time_t parse_seconds(const char *s, double max)
{
    char *end;
    double v = strtod(s, &end);
    apr_interval_time_t t;
    /* !(v > 0) also refuses NaN */
    if (end == s || *end || !(v > 0) || v > max) {
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
    static const char *const suffixes[] = { "/chat/completions", "/messages", "/responses",
                                             NULL };
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
    if (prov->thinking_form && prov->format != MN_FORMAT_ANTHROPIC) {
        warn(p, prov, apr_psprintf(p, "thinking= does nothing for format=%s (anthropic "
                                   "only)", f));
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

/* models=a,b,c: the upstream model names /v1/models advertises (as
 * provider/a ...); an empty item is a typo, not a model. */
static const char *parse_models(apr_pool_t *p, const char *list, apr_array_header_t **out)
{
    apr_array_header_t *models = apr_array_make(p, 4, sizeof(const char *));
    const char *s = list;

    for (;;) {
        size_t len = strcspn(s, ",");
        int i;
        if (!len) {
            return apr_psprintf(p, "bad models= '%s': expected model names separated by ','",
                                list);
        }
        for (i = 0; i < models->nelts; i++) {
            const char *m = APR_ARRAY_IDX(models, i, const char *);
            if (strlen(m) == len && !strncmp(m, s, len)) {
                return apr_psprintf(p, "models= names '%s' twice", m);
            }
        }
        *(const char **)apr_array_push(models) = apr_pstrmemdup(p, s, len);
        if (!s[len]) {
            break;
        }
        s += len + 1;
    }
    *out = models;
    return NULL;
}

/* ---- the option table ---------------------------------------------------- */

static const char *const format_names[] = { "openai", "anthropic", "gemini", NULL };
static const char *const onoff_names[] = { "off", "on", NULL };
static const char *const thinking_names[] = { "auto", "adaptive", "budget", NULL };

static const char *opt_keys(apr_pool_t *p, mn_provider *prov, const mn_provider_option *o,
                            const char *val, int flags)
{
    int from_env = !strcmp(o->name, "key-env");
    const char *err;
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
    return NULL;
}

static const char *opt_key_header(apr_pool_t *p, mn_provider *prov, const mn_provider_option *o,
                                  const char *val, int flags)
{
    if (!valid_header_name(val)) {
        return apr_psprintf(p, "bad key-header '%s': expected a header name, e.g. "
                            "key-header=api-key", val);
    }
    prov->key_header = apr_pstrdup(p, val);
    return NULL;
}

static const char *opt_keep(apr_pool_t *p, mn_provider *prov, const mn_provider_option *o,
                            const char *val, int flags)
{
    return mn_policy_parse_keep(p, val, &prov->keep);
}

static const char *opt_models(apr_pool_t *p, mn_provider *prov, const mn_provider_option *o,
                              const char *val, int flags)
{
    return parse_models(p, val, &prov->models);
}

#define FIELD(f) offsetof(mn_provider, f), sizeof(((mn_provider *)0)->f)
#define SECS(name, f) { name, MN_OPT_SECONDS, FIELD(f), 0, 86400, NULL, NULL }

/* Every ManiacProvider option, in the order the "known:" list names them. */
const mn_provider_option mn_provider_options[] = {
    { "format", MN_OPT_ENUM, FIELD(format), 0, 0, format_names, NULL },
    { "key-env", MN_OPT_LIST, 0, 0, 0, 0, NULL, opt_keys },
    { "key-file", MN_OPT_LIST, 0, 0, 0, 0, NULL, opt_keys },
    SECS("timeout", timeout),
    SECS("connect-timeout", connect_timeout),
    SECS("first-byte-timeout", first_byte_timeout),
    SECS("idle-timeout", idle_timeout),
    SECS("total-timeout", total_timeout),
    { "retries", MN_OPT_INT, FIELD(retries), 0, 100, NULL, NULL },
    { "breaker-failures", MN_OPT_INT, FIELD(breaker_failures), 0, 100, NULL, NULL },
    SECS("breaker-cooldown", breaker_cooldown),
    { "max-tokens", MN_OPT_INT, FIELD(max_tokens), 1, LONG_MAX, NULL, NULL },
    { "reasoning", MN_OPT_BOOL, FIELD(reasoning_content), 0, 1, onoff_names, NULL },
    { "key-header", MN_OPT_STRING, 0, 0, 0, 0, NULL, opt_key_header },
    { "keep", MN_OPT_LIST, 0, 0, 0, 0, NULL, opt_keep },
    { "models", MN_OPT_LIST, 0, 0, 0, 0, NULL, opt_models },
    { "thinking", MN_OPT_ENUM, FIELD(thinking_form), 0, 0, thinking_names, NULL },
    { "responses", MN_OPT_BOOL, FIELD(responses_api), 0, 1, onoff_names, NULL },
};
const int mn_provider_noptions = (int)(sizeof(mn_provider_options)
                                       / sizeof(mn_provider_options[0]));
#undef SECS
#undef FIELD

/* "a, b, c" from a NULL-terminated list of words. */
static const char *word_list(apr_pool_t *p, const char *const *words)
{
    const char *s = words[0];
    int i;
    for (i = 1; words[i]; i++) {
        s = apr_pstrcat(p, s, ", ", words[i], NULL);
    }
    return s;
}

const char *mn_provider_options_known(apr_pool_t *p)
{
    const char *s = mn_provider_options[0].name;
    int i;
    for (i = 1; i < mn_provider_noptions; i++) {
        s = apr_pstrcat(p, s, ", ", mn_provider_options[i].name, NULL);
    }
    return s;
}

static void store_number(mn_provider *prov, const mn_provider_option *o, apr_int64_t v)
{
    char *at = (char *)prov + o->offset;
    if (o->size == sizeof(apr_int64_t)) {
        apr_int64_t x = v;
        memcpy(at, &x, sizeof(x));
    }
    else if (o->size == sizeof(long)) {
        long x = (long)v;
        memcpy(at, &x, sizeof(x));
    }
    else {
        int x = (int)v;
        memcpy(at, &x, sizeof(x));
    }
}

static const char *int_range(apr_pool_t *p, const mn_provider_option *o)
{
    if (o->max == LONG_MAX) {
        return o->min == 1 ? "a positive integer" : apr_psprintf(p, "an integer >= %ld", o->min);
    }
    return apr_psprintf(p, "an integer from %ld to %ld", o->min, o->max);
}

/* val for the word list of an enum or a bool; -1 when it is none of them. */
static int word_index(const char *const *words, const char *val)
{
    int i;
    for (i = 0; words[i]; i++) {
        if (!strcmp(words[i], val)) {
            return i;
        }
    }
    return -1;
}

/* Parses val by the option's kind into its field; the accepted range in
 * each message is the table's. */
static const char *parse_value(apr_pool_t *p, mn_provider *prov, const mn_provider_option *o,
                               const char *val, int flags)
{
    apr_interval_time_t t;
    char *end;
    long v;

    if (o->parse) {
        return o->parse(p, prov, o, val, flags);
    }
    switch (o->kind) {
    case MN_OPT_SECONDS:
        if ((t = parse_seconds(val, (double)o->max)) < 0) {
            return apr_psprintf(p, "bad %s '%s': expected seconds > 0 (at most %ld)", o->name,
                                val, o->max);
        }
        store_number(prov, o, t);
        return NULL;
    case MN_OPT_INT:
        errno = 0;
        v = strtol(val, &end, 10);
        if (end == val || *end || errno || v < o->min || v > o->max) {
            return apr_psprintf(p, "bad %s '%s': expected %s", o->name, val, int_range(p, o));
        }
        store_number(prov, o, v);
        return NULL;
    case MN_OPT_ENUM:
        if ((v = word_index(o->words, val)) < 0) {
            return apr_psprintf(p, "unknown %s '%s' (known: %s)", o->name, val,
                                word_list(p, o->words));
        }
        store_number(prov, o, v);
        return NULL;
    case MN_OPT_BOOL:
        if ((v = word_index(o->words, val)) < 0) {
            return apr_psprintf(p, "bad %s '%s': expected %s or %s", o->name, val, o->words[1],
                                o->words[0]);
        }
        store_number(prov, o, v);
        return NULL;
    default:
        return apr_psprintf(p, "option %s has no parser", o->name);   /* a table bug */
    }
}

/* One key=value word; *seen gets the option's bit. */
static const char *parse_option(apr_pool_t *p, mn_provider *prov, const char *word, int flags,
                                unsigned *seen)
{
    const char *eq = strchr(word, '=');
    size_t klen;
    int i;

    if (!eq || eq == word) {
        return apr_psprintf(p, "bad option '%s': expected key=value", shown(word));
    }
    klen = (size_t)(eq - word);
    for (i = 0; i < mn_provider_noptions; i++) {
        const mn_provider_option *o = &mn_provider_options[i];
        if (strlen(o->name) == klen && !strncmp(word, o->name, klen)) {
            *seen |= 1u << i;
            return parse_value(p, prov, o, eq + 1, flags);
        }
    }
    return apr_psprintf(p, "unknown option '%.*s' (known: %s)", (int)klen, word,
                        mn_provider_options_known(p));
}

static int seen_option(unsigned seen, const char *name)
{
    int i;
    for (i = 0; i < mn_provider_noptions; i++) {
        if (!strcmp(mn_provider_options[i].name, name)) {
            return (seen >> i) & 1u;
        }
    }
    return 0;
}

/* What holds across options, once the line is read. */
static const char *check_options(apr_pool_t *p, mn_provider *prov, unsigned seen, int is_echo)
{
    if (is_echo && seen_option(seen, "format")) {
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
    if (prov->responses_api && prov->format != MN_FORMAT_OPENAI) {
        return apr_psprintf(p, "responses= needs format=openai: format %s has no Responses API "
                            "(its /v1/responses requests are translated)",
                            mn_format_name(prov->format));
    }
    /* OpenAI's own API speaks Responses natively: forwarding keeps what the
     * chat mapping cannot carry (built-in tools, reasoning items, stored state) */
    if (!seen_option(seen, "responses") && prov->format == MN_FORMAT_OPENAI && !is_echo
        && (!apr_cstr_casecmp(prov->hostinfo, "api.openai.com")
            || !apr_cstr_casecmp(prov->hostinfo, "api.openai.com:443"))) {
        prov->responses_api = 1;
    }
    if (!is_echo) {
        check_endpoint_suffix(p, prov);
        check_format_options(p, prov, seen_option(seen, "reasoning"));
    }
    /* the split timeouts default to the general one */
    if (!prov->connect_timeout) prov->connect_timeout = prov->timeout;
    if (!prov->first_byte_timeout) prov->first_byte_timeout = prov->timeout;
    if (!prov->idle_timeout) prov->idle_timeout = prov->timeout;
    return NULL;
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
    unsigned seen = 0;
    int i, is_echo;

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
        if ((err = parse_option(p, prov, argv[i], flags, &seen)) != NULL) {
            return err;
        }
    }
    if ((err = check_options(p, prov, seen, is_echo)) != NULL) {
        return err;
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
