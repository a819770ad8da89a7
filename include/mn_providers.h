/* mn_providers: the provider table.
 *
 * Parses `ManiacProvider <name> <base-url> [key=value ...]` arguments into a
 * provider entry (reading keys from the environment or a file each time the
 * configuration is read), keeps entries by name, and routes a client `model` of the form
 * `provider/model` to an entry and the upstream model name.  No httpd
 * dependency: the directive handler only passes the words through. */
#ifndef MN_PROVIDERS_H
#define MN_PROVIDERS_H

#include <apr_pools.h>
#include <apr_hash.h>
#include <apr_tables.h>
#include <apr_time.h>

typedef enum {
    MN_FORMAT_OPENAI = 0,
    MN_FORMAT_ANTHROPIC,
    MN_FORMAT_GEMINI,
    MN_FORMAT_ECHO           /* builtin:echo, answered in-process */
} mn_format;

typedef struct mn_provider {
    const char *name;
    const char *base_url;        /* as configured, no trailing slash */
    const char *scheme;          /* "http", "https" or "builtin" */
    const char *hostinfo;        /* host[:port] for the Host header */
    const char *base_path;       /* path part of base_url, no trailing slash */
    const char *base_query;      /* query of the base URL (no '?'), kept on every request; or NULL */
    int is_ssl;
    mn_format format;
    const char *key;             /* secret (the first key); NULL when none; never logged */
    const char *const *keys;     /* all keys, round-robin (key-env=A,B,C) */
    int nkeys;
    const char *key_source;      /* "env:VAR" / "file:PATH" for messages */
    const char *key_header;      /* key-header=NAME: raw key in NAME instead of the format's header */
    const char *unavailable;     /* why it is disabled (no key after a restart); NULL when usable */
    apr_array_header_t *warnings;/* const char *: options that do nothing, suspicious URLs */
    apr_interval_time_t timeout; /* default for the three timeouts below */
    apr_interval_time_t connect_timeout;
    apr_interval_time_t first_byte_timeout; /* until the first upstream event */
    apr_interval_time_t idle_timeout;       /* gap between upstream bytes */
    apr_interval_time_t total_timeout;      /* one whole exchange; 0 = none */
    int retries;                 /* extra tries on retryable failures */
    int breaker_failures;        /* consecutive failures that open it; 0 = off */
    apr_interval_time_t breaker_cooldown;
    int index;                   /* position in the table (breaker slot) */
    long max_tokens;             /* default max_tokens (anthropic), 0 = unset */
    int reasoning_content;       /* emit thinking as delta.reasoning_content */
    int thinking_form;           /* thinking=: anthropic's form for reasoning_effort,
                                  * MN_AN_THINKING_* (0 = auto, from the model name) */
    unsigned keep;               /* keep=: MN_KEEP_* fields passed as is (openai only) */
    int responses_api;           /* responses=: /v1/responses is forwarded to {base}/responses
                                  * (openai only; on by default for api.openai.com) */
    apr_array_header_t *models;  /* models=: upstream names /v1/models lists; NULL = none */
    const char *conf_file;       /* where it was configured, for messages */
    int conf_line;
} mn_provider;

/* One target of a ManiacModel alias. */
typedef struct mn_target {
    const mn_provider *provider;   /* resolved after the configuration is read */
    const char *provider_name;
    const char *model;
} mn_target;

typedef struct mn_alias {
    const char *name;
    apr_array_header_t *targets;   /* mn_target */
    const char *conf_file;
    int conf_line;
} mn_alias;

typedef struct mn_provider_table {
    apr_pool_t *pool;
    apr_hash_t *by_name;
    apr_array_header_t *list;    /* mn_provider *, in configuration order */
    apr_hash_t *aliases;         /* name -> mn_alias * */
    apr_array_header_t *warnings;/* const char *, from mn_aliases_resolve (shadowing) */
} mn_provider_table;

#define MN_DEFAULT_TIMEOUT apr_time_from_sec(60)
#define MN_DEFAULT_RETRIES 1
#define MN_DEFAULT_BREAKER_FAILURES 5
#define MN_DEFAULT_BREAKER_COOLDOWN apr_time_from_sec(30)

mn_provider_table *mn_providers_create(apr_pool_t *p);

const char *mn_format_name(mn_format f);

/* Parses one ManiacProvider line (argv[0] = name, argv[1] = url, rest =
 * options) into *out.  Returns NULL or an error message (allocated from p)
 * naming what is wrong.  Keys are read here. */
const char *mn_provider_parse(apr_pool_t *p, int argc, const char *const *argv,
                              mn_provider **out);

/* MN_PARSE_KEYS_SOFT: a key that cannot be read does not fail the line; the
 * provider is returned with `unavailable` saying why (a graceful restart must
 * not take the server down because the running parent lacks a variable). */
#define MN_PARSE_KEYS_SOFT 1
const char *mn_provider_parse_ex(apr_pool_t *p, int argc, const char *const *argv,
                                 int flags, mn_provider **out);

/* The ManiacProvider options, one table: the parser, the "known: ..." list
 * and the range in each message all read it. */
typedef enum {
    MN_OPT_SECONDS,      /* "2.5": > 0 and at most max seconds, into an apr_interval_time_t */
    MN_OPT_INT,          /* min..max (max LONG_MAX: unbounded), into an int or a long */
    MN_OPT_BOOL,         /* words[0] = 0, words[1] = 1 */
    MN_OPT_ENUM,         /* index into words */
    MN_OPT_LIST,         /* comma-separated; parse reads it */
    MN_OPT_STRING        /* parse checks and keeps it */
} mn_opt_kind;

typedef struct mn_provider_option {
    const char *name;
    mn_opt_kind kind;
    size_t offset;                  /* of the field in mn_provider (not for parse) */
    size_t size;                    /* of that field */
    long min, max;
    const char *const *words;       /* ENUM and BOOL, NULL-terminated */
    /* LIST and STRING: NULL or an error message */
    const char *(*parse)(apr_pool_t *p, mn_provider *prov,
                         const struct mn_provider_option *o, const char *val, int flags);
} mn_provider_option;

extern const mn_provider_option mn_provider_options[];
extern const int mn_provider_noptions;

/* "format, key-env, ...": every option's name, in table order. */
const char *mn_provider_options_known(apr_pool_t *p);

/* Adds a parsed provider; error message on a duplicate name. */
const char *mn_providers_add(mn_provider_table *t, mn_provider *prov);

const mn_provider *mn_providers_get(const mn_provider_table *t,
                                    const char *name, size_t name_len);

/* ManiacModel <alias> <provider/model>...: parsed now, providers resolved by
 * mn_aliases_resolve once every ManiacProvider line has been read. */
const char *mn_alias_add(mn_provider_table *t, int argc, const char *const *argv,
                         const char *file, int line);
/* NULL or an error naming the alias line with an unknown provider; aliases
 * that shadow a provider/model add a warning to t->warnings. */
const char *mn_aliases_resolve(mn_provider_table *t);
const mn_alias *mn_alias_get(const mn_provider_table *t, const char *name);

/* Splits `provider/model` at the first '/'.  Returns 0 and sets the outputs
 * (model_out allocated from p), or -1 when there is no '/' or a side is empty. */
int mn_route_split(apr_pool_t *p, const char *model, const char **provider_out,
                   size_t *provider_len, const char **model_out);

#endif
