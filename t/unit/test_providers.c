/* Unit tests for src/core/providers.c: ManiacProvider parsing, the table, routing. */
#include "harness.h"
#include <limits.h>
#include <unistd.h>
#include <apr_strings.h>
#include "mn_providers.h"

#define SECRET "sk-unit-Zq8secretVALUE"

static int setup_pool(void **state)
{
    apr_pool_t *p;
    if (apr_pool_create(&p, NULL) != APR_SUCCESS) {
        return -1;
    }
    *state = p;
    return 0;
}

static int teardown_pool(void **state)
{
    apr_pool_destroy(*state);
    return 0;
}

/* A temp file holding content; the path is allocated from p.  unlink() it. */
static const char *temp_file(apr_pool_t *p, const char *content)
{
    char tmpl[] = "/tmp/mn_test_key_XXXXXX";
    int fd = mkstemp(tmpl);
    size_t n = strlen(content);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, content, n), (ssize_t)n);
    close(fd);
    return apr_pstrdup(p, tmpl);
}

/* Parses argv (NULL-terminated); fails the test on an error. */
static mn_provider *parse_ok(apr_pool_t *p, const char *const *argv)
{
    mn_provider *prov = NULL;
    int argc = 0;
    const char *err;
    while (argv[argc]) {
        argc++;
    }
    err = mn_provider_parse(p, argc, argv, &prov);
    if (err) {
        fail_msg("%s %s: unexpected error: %s", argv[0], argv[1], err);
    }
    assert_non_null(prov);
    return prov;
}

/* Parses argv expecting an error containing every NULL-terminated `needles`
 * fragment, and never the secret. */
static const char *parse_err(apr_pool_t *p, const char *const *argv, ...)
{
    mn_provider *prov = NULL;
    int argc = 0;
    const char *err, *needle;
    va_list ap;
    while (argv[argc]) {
        argc++;
    }
    err = mn_provider_parse(p, argc, argv, &prov);
    if (!err) {
        fail_msg("%s %s%s%s: accepted (format=%s), expected an error", argv[0],
                 argc > 1 ? argv[1] : "", argc > 2 ? " " : "", argc > 2 ? argv[2] : "",
                 mn_format_name(prov->format));
    }
    va_start(ap, argv);
    while ((needle = va_arg(ap, const char *)) != NULL) {
        if (!strstr(err, needle)) {
            fail_msg("error \"%s\" does not mention \"%s\"", err, needle);
        }
    }
    va_end(ap);
    if (strstr(err, SECRET)) {
        fail_msg("error leaks the key: %s", err);
    }
    return err;
}

/* ---- URLs -------------------------------------------------------------------- */

static void test_defaults(void **state)
{
    const char *argv[] = { "openai", "https://api.openai.com/v1", NULL };
    mn_provider *prov = parse_ok(*state, argv);
    assert_string_equal(prov->name, "openai");
    assert_string_equal(prov->base_url, "https://api.openai.com/v1");
    assert_string_equal(prov->scheme, "https");
    assert_string_equal(prov->hostinfo, "api.openai.com");
    assert_string_equal(prov->base_path, "/v1");
    assert_int_equal(prov->is_ssl, 1);
    assert_int_equal(prov->format, MN_FORMAT_OPENAI);
    assert_null(prov->key);
    assert_null(prov->key_source);
    assert_int_equal(prov->timeout, MN_DEFAULT_TIMEOUT);
    assert_int_equal(prov->max_tokens, 0);
    assert_int_equal(prov->reasoning_content, 0);
}

static void check_url(apr_pool_t *p, const char *url, const char *base_url,
                      const char *hostinfo, const char *base_path, int is_ssl)
{
    const char *argv[] = { "x", url, NULL };
    mn_provider *prov = parse_ok(p, argv);
    assert_string_equal(prov->base_url, base_url);
    assert_string_equal(prov->hostinfo, hostinfo);
    assert_string_equal(prov->base_path, base_path);
    assert_int_equal(prov->is_ssl, is_ssl);
    assert_string_equal(prov->scheme, is_ssl ? "https" : "http");
}

static void test_url_normalisation(void **state)
{
    check_url(*state, "http://localhost:8000/v1/", "http://localhost:8000/v1", "localhost:8000",
              "/v1", 0);
    check_url(*state, "https://h.example/", "https://h.example", "h.example", "", 1);
    check_url(*state, "https://h.example", "https://h.example", "h.example", "", 1);
    check_url(*state, "http://h:1/a/b//", "http://h:1/a/b", "h:1", "/a/b", 0);
    check_url(*state, "http://[::1]:8080/v1", "http://[::1]:8080/v1", "[::1]:8080", "/v1", 0);
    check_url(*state, "https://generativelanguage.googleapis.com/v1beta",
              "https://generativelanguage.googleapis.com/v1beta",
              "generativelanguage.googleapis.com", "/v1beta", 1);
}

static void test_bad_urls(void **state)
{
    static const char *const bad[] = {
        "ftp://x", "not a url", "https://", "http:///v1",
        "https://h/v1#frag", "h.example/v1", "",
    };
    const char *creds[] = { "x", "https://user:pw@h/v1", NULL };
    const char *err;
    mn_provider *prov = NULL;
    size_t i;
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = { "x", bad[i], NULL };
        parse_err(*state, argv, "bad base URL", bad[i], NULL);
    }
    /* credentials are refused, and never repeated into a log */
    err = mn_provider_parse(*state, 2, creds, &prov);
    assert_non_null(err);
    assert_non_null(strstr(err, "credentials"));
    assert_null(strstr(err, "pw"));
}

static void test_bad_port(void **state)
{
    const char *argv1[] = { "x", "http://h:abc/v1", NULL };
    const char *argv2[] = { "x", "http://h:0/v1", NULL };
    parse_err(*state, argv1, "http://h:abc/v1", NULL);
    parse_err(*state, argv2, "http://h:0/v1", NULL);
}

static void test_builtin_echo(void **state)
{
    const char *argv[] = { "echo", "builtin:echo", NULL };
    const char *bad1[] = { "echo", "builtin:parrot", NULL };
    mn_provider *prov = parse_ok(*state, argv);
    assert_int_equal(prov->format, MN_FORMAT_ECHO);
    assert_string_equal(prov->scheme, "builtin");
    assert_string_equal(prov->base_url, "builtin:echo");
    assert_null(prov->key);
    parse_err(*state, bad1, "builtin:parrot", NULL);
}

/* builtin:echo answers in-process: a format= would turn it into an HTTP
 * provider without a host, so it must be refused whatever the format. */
static void test_builtin_echo_rejects_format(void **state)
{
    static const char *const formats[] = { "format=openai", "format=anthropic",
                                           "format=gemini" };
    size_t i;
    for (i = 0; i < sizeof(formats) / sizeof(formats[0]); i++) {
        const char *argv[] = { "echo", "builtin:echo", formats[i], NULL };
        parse_err(*state, argv, "format", NULL);
    }
}

/* ---- options ---------------------------------------------------------------- */

static void test_formats(void **state)
{
    static const struct { const char *opt; mn_format f; } cases[] = {
        { "format=openai", MN_FORMAT_OPENAI },
        { "format=anthropic", MN_FORMAT_ANTHROPIC },
        { "format=gemini", MN_FORMAT_GEMINI },
    };
    size_t i;
    const char *bad[] = { "x", "https://h", "format=cohere", NULL };
    const char *empty[] = { "x", "https://h", "format=", NULL };
    for (i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
        const char *argv[] = { "x", "https://h", cases[i].opt, NULL };
        assert_int_equal(parse_ok(*state, argv)->format, cases[i].f);
    }
    parse_err(*state, bad, "unknown format", "cohere", NULL);
    parse_err(*state, empty, "unknown format", NULL);
    assert_string_equal(mn_format_name(MN_FORMAT_OPENAI), "openai");
    assert_string_equal(mn_format_name(MN_FORMAT_ANTHROPIC), "anthropic");
    assert_string_equal(mn_format_name(MN_FORMAT_GEMINI), "gemini");
    assert_string_equal(mn_format_name(MN_FORMAT_ECHO), "echo");
}

static void test_key_env(void **state)
{
    const char *argv[] = { "x", "https://h", "key-env=MN_TEST_KEY_ENV", NULL };
    mn_provider *prov;
    setenv("MN_TEST_KEY_ENV", SECRET, 1);
    prov = parse_ok(*state, argv);
    assert_string_equal(prov->key, SECRET);
    assert_string_equal(prov->key_source, "env:MN_TEST_KEY_ENV");
    /* pasted with a newline: trimmed */
    setenv("MN_TEST_KEY_ENV", "  " SECRET "\n", 1);
    prov = parse_ok(*state, argv);
    assert_string_equal(prov->key, SECRET);
    unsetenv("MN_TEST_KEY_ENV");
}

static void test_key_env_unset(void **state)
{
    const char *argv[] = { "x", "https://h", "key-env=MN_TEST_NOT_SET_VAR", NULL };
    const char *noname[] = { "x", "https://h", "key-env=", NULL };
    unsetenv("MN_TEST_NOT_SET_VAR");
    parse_err(*state, argv, "MN_TEST_NOT_SET_VAR", "not set", NULL);
    /* set but empty is as good as unset */
    setenv("MN_TEST_NOT_SET_VAR", "", 1);
    parse_err(*state, argv, "MN_TEST_NOT_SET_VAR", NULL);
    unsetenv("MN_TEST_NOT_SET_VAR");
    parse_err(*state, noname, "key-env", NULL);
}

/* A variable holding only whitespace trims to an empty key: refused, like
 * an empty key file, rather than sending "Authorization: Bearer ". */
static void test_key_env_blank(void **state)
{
    const char *argv[] = { "x", "https://h", "key-env=MN_TEST_BLANK_KEY", NULL };
    setenv("MN_TEST_BLANK_KEY", "  \n", 1);
    parse_err(*state, argv, "MN_TEST_BLANK_KEY", NULL);
    unsetenv("MN_TEST_BLANK_KEY");
}

static void test_key_file(void **state)
{
    apr_pool_t *p = *state;
    const char *path = temp_file(p, SECRET "\n");
    const char *opt = apr_pstrcat(p, "key-file=", path, NULL);
    const char *argv[] = { "x", "https://h", opt, NULL };
    mn_provider *prov = parse_ok(p, argv);
    assert_string_equal(prov->key, SECRET);
    assert_string_equal(prov->key_source, apr_pstrcat(p, "file:", path, NULL));
    unlink(path);

    path = temp_file(p, "\t" SECRET "\r\n\n");
    argv[2] = apr_pstrcat(p, "key-file=", path, NULL);
    assert_string_equal(parse_ok(p, argv)->key, SECRET);
    unlink(path);
}

static void test_key_file_errors(void **state)
{
    apr_pool_t *p = *state;
    const char *empty = temp_file(p, "");
    const char *blank = temp_file(p, " \n\n");
    const char *missing[] = { "x", "https://h", "key-file=/nonexistent/mn/key", NULL };
    const char *dir[] = { "x", "https://h", "key-file=/tmp", NULL };
    const char *argv[] = { "x", "https://h", NULL, NULL };

    parse_err(p, missing, "/nonexistent/mn/key", "cannot be read", NULL);
    parse_err(p, dir, "/tmp", "directory", NULL);
    argv[2] = apr_pstrcat(p, "key-file=", empty, NULL);
    parse_err(p, argv, empty, "empty", NULL);
    argv[2] = apr_pstrcat(p, "key-file=", blank, NULL);
    parse_err(p, argv, blank, "empty", NULL);
    unlink(empty);
    unlink(blank);
}

static void test_key_env_and_file(void **state)
{
    apr_pool_t *p = *state;
    const char *path = temp_file(p, SECRET "\n");
    const char *fopt = apr_pstrcat(p, "key-file=", path, NULL);
    const char *a1[] = { "x", "https://h", "key-env=MN_TEST_KEY_BOTH", fopt, NULL };
    const char *a2[] = { "x", "https://h", fopt, "key-env=MN_TEST_KEY_BOTH", NULL };
    const char *a3[] = { "x", "https://h", "key-env=MN_TEST_KEY_BOTH",
                         "key-env=MN_TEST_KEY_BOTH", NULL };
    setenv("MN_TEST_KEY_BOTH", SECRET, 1);
    parse_err(p, a1, "key-env", "key-file", NULL);
    parse_err(p, a2, "key-env", "key-file", NULL);
    parse_err(p, a3, "key-env", NULL);
    unsetenv("MN_TEST_KEY_BOTH");
    unlink(path);
}

/* Errors after a key was read must not quote it. */
static void test_key_not_in_errors(void **state)
{
    apr_pool_t *p = *state;
    const char *path = temp_file(p, SECRET "\n");
    const char *fopt = apr_pstrcat(p, "key-file=", path, NULL);
    const char *a1[] = { "x", "https://h", "key-env=MN_TEST_KEY_LEAK", "format=bogus", NULL };
    const char *a2[] = { "x", "https://h", fopt, "timeout=soon", NULL };
    const char *a3[] = { "x", "https://h", fopt, "reasoning=maybe", NULL };
    /* someone writing the key inline: the value is not echoed back */
    const char *a4[] = { "x", "https://h", "key=" SECRET, NULL };
    setenv("MN_TEST_KEY_LEAK", SECRET, 1);
    parse_err(p, a1, "bogus", NULL);
    parse_err(p, a2, "soon", NULL);
    parse_err(p, a3, "maybe", NULL);
    parse_err(p, a4, "unknown option", "'key'", NULL);
    unsetenv("MN_TEST_KEY_LEAK");
    unlink(path);
}

static void test_timeout(void **state)
{
    const char *argv[] = { "x", "https://h", NULL, NULL };
    static const char *const bad[] = { "timeout=0", "timeout=-1", "timeout=abc",
                                       "timeout=2s", "timeout=", "timeout=100000" };
    size_t i;
    argv[2] = "timeout=2.5";
    assert_int_equal(parse_ok(*state, argv)->timeout, 2500000);
    argv[2] = "timeout=30";
    assert_int_equal(parse_ok(*state, argv)->timeout, apr_time_from_sec(30));
    argv[2] = "timeout=0.25";
    assert_int_equal(parse_ok(*state, argv)->timeout, 250000);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        argv[2] = bad[i];
        parse_err(*state, argv, "timeout", NULL);
    }
}

/* A positive value too small to be a whole microsecond would become a zero
 * (non-blocking) timeout: it must be refused like timeout=0. */
static void test_timeout_rounds_to_zero(void **state)
{
    const char *argv[] = { "x", "https://h", "timeout=0.0000001", NULL };
    parse_err(*state, argv, "timeout", NULL);
}

static void test_max_tokens(void **state)
{
    const char *argv[] = { "x", "https://h", "max-tokens=8192", NULL };
    static const char *const bad[] = { "max-tokens=0", "max-tokens=-5", "max-tokens=x",
                                       "max-tokens=1.5", "max-tokens=" };
    size_t i;
    assert_int_equal(parse_ok(*state, argv)->max_tokens, 8192);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        argv[2] = bad[i];
        parse_err(*state, argv, "max-tokens", NULL);
    }
}

static void test_reasoning(void **state)
{
    const char *on[] = { "x", "https://h", "reasoning=on", NULL };
    const char *off[] = { "x", "https://h", "reasoning=on", "reasoning=off", NULL };
    const char *bad[] = { "x", "https://h", "reasoning=yes", NULL };
    assert_int_equal(parse_ok(*state, on)->reasoning_content, 1);
    assert_int_equal(parse_ok(*state, off)->reasoning_content, 0);
    parse_err(*state, bad, "reasoning", "yes", NULL);
}

/* thinking=: the Anthropic thinking form for reasoning_effort (0 = from the
 * model name); other formats get a warning, not an error. */
static void test_thinking_option(void **state)
{
    const char *dflt[] = { "x", "https://h", "format=anthropic", NULL };
    const char *ad[] = { "x", "https://h", "format=anthropic", "thinking=adaptive", NULL };
    const char *bu[] = { "x", "https://h", "format=anthropic", "thinking=budget", NULL };
    const char *au[] = { "x", "https://h", "format=anthropic", "thinking=auto", NULL };
    const char *oa[] = { "x", "https://h", "thinking=budget", NULL };
    const char *bad[] = { "x", "https://h", "format=anthropic", "thinking=on", NULL };
    mn_provider *prov;

    assert_int_equal(parse_ok(*state, dflt)->thinking_form, 0);
    assert_int_equal(parse_ok(*state, ad)->thinking_form, 1);
    assert_int_equal(parse_ok(*state, bu)->thinking_form, 2);
    assert_int_equal(parse_ok(*state, au)->thinking_form, 0);
    prov = parse_ok(*state, oa);
    assert_non_null(prov->warnings);
    assert_non_null(strstr(APR_ARRAY_IDX(prov->warnings, 0, const char *),
                           "thinking= does nothing for format=openai"));
    parse_err(*state, bad, "thinking", "on", NULL);
}

static void test_all_options(void **state)
{
    const char *argv[] = { "claude", "https://api.anthropic.com/v1/", "format=anthropic",
                           "key-env=MN_TEST_KEY_ALL", "timeout=12.5", "max-tokens=1024",
                           "reasoning=on", NULL };
    mn_provider *prov;
    setenv("MN_TEST_KEY_ALL", SECRET, 1);
    prov = parse_ok(*state, argv);
    unsetenv("MN_TEST_KEY_ALL");
    assert_string_equal(prov->name, "claude");
    assert_string_equal(prov->base_url, "https://api.anthropic.com/v1");
    assert_string_equal(prov->base_path, "/v1");
    assert_int_equal(prov->format, MN_FORMAT_ANTHROPIC);
    assert_string_equal(prov->key, SECRET);
    assert_int_equal(prov->timeout, 12500000);
    assert_int_equal(prov->max_tokens, 1024);
    assert_int_equal(prov->reasoning_content, 1);
}

static void test_unknown_option(void **state)
{
    const char *a1[] = { "x", "https://h", "colour=red", NULL };
    const char *a2[] = { "x", "https://h", "noequals", NULL };
    const char *a3[] = { "x", "https://h", "=value", NULL };
    parse_err(*state, a1, "unknown option", "colour", NULL);
    parse_err(*state, a2, "noequals", "key=value", NULL);
    parse_err(*state, a3, "=value", NULL);
}

static void test_bad_name(void **state)
{
    static const char *const bad[] = { "", "a/b", "a b", "caf\xc3\xa9", "x:y" };
    size_t i;
    const char *few[] = { "only-name", NULL };
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *argv[] = { bad[i], "https://h", NULL };
        parse_err(*state, argv, "bad provider name", NULL);
    }
    {
        const char *ok[] = { "Az09-_.x", "https://h", NULL };
        assert_string_equal(parse_ok(*state, ok)->name, "Az09-_.x");
    }
    parse_err(*state, few, "name", NULL);
}

static void test_resilience_defaults(void **state)
{
    const char *argv[] = { "x", "https://h", NULL };
    mn_provider *prov = parse_ok(*state, argv);
    assert_int_equal(prov->connect_timeout, MN_DEFAULT_TIMEOUT);
    assert_int_equal(prov->first_byte_timeout, MN_DEFAULT_TIMEOUT);
    assert_int_equal(prov->idle_timeout, MN_DEFAULT_TIMEOUT);
    assert_int_equal(prov->total_timeout, 0);
    assert_int_equal(prov->retries, MN_DEFAULT_RETRIES);
    assert_int_equal(prov->breaker_failures, MN_DEFAULT_BREAKER_FAILURES);
    assert_int_equal(prov->breaker_cooldown, MN_DEFAULT_BREAKER_COOLDOWN);
    assert_int_equal(prov->nkeys, 0);
    assert_null(prov->keys);
}

/* The split timeouts follow timeout= unless given, whatever the order. */
static void test_split_timeouts(void **state)
{
    const char *a1[] = { "x", "https://h", "timeout=5", NULL };
    const char *a2[] = { "x", "https://h", "idle-timeout=30", "timeout=5",
                         "connect-timeout=1.5", "first-byte-timeout=20",
                         "total-timeout=120", "breaker-cooldown=0.5", NULL };
    mn_provider *prov = parse_ok(*state, a1);
    assert_int_equal(prov->connect_timeout, apr_time_from_sec(5));
    assert_int_equal(prov->first_byte_timeout, apr_time_from_sec(5));
    assert_int_equal(prov->idle_timeout, apr_time_from_sec(5));
    assert_int_equal(prov->total_timeout, 0);
    prov = parse_ok(*state, a2);
    assert_int_equal(prov->timeout, apr_time_from_sec(5));
    assert_int_equal(prov->connect_timeout, 1500000);
    assert_int_equal(prov->first_byte_timeout, apr_time_from_sec(20));
    assert_int_equal(prov->idle_timeout, apr_time_from_sec(30));
    assert_int_equal(prov->total_timeout, apr_time_from_sec(120));
    assert_int_equal(prov->breaker_cooldown, 500000);
}

static void test_split_timeouts_bad(void **state)
{
    static const char *const names[] = { "connect-timeout", "first-byte-timeout",
                                         "idle-timeout", "total-timeout", "breaker-cooldown" };
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        const char *opt = apr_pstrcat(*state, names[i], "=-2", NULL);
        const char *argv[] = { "x", "https://h", opt, NULL };
        parse_err(*state, argv, apr_pstrcat(*state, "bad ", names[i], " '-2'", NULL), NULL);
    }
}

static void test_retries_and_breaker(void **state)
{
    const char *argv[] = { "x", "https://h", "retries=0", "breaker-failures=0", NULL };
    const char *max[] = { "x", "https://h", "retries=100", "breaker-failures=100", NULL };
    static const char *const bad[] = { "retries=101", "retries=-1", "retries=x", "retries=",
                                       "retries=1.5", "breaker-failures=101",
                                       "breaker-failures=two" };
    mn_provider *prov = parse_ok(*state, argv);
    size_t i;
    assert_int_equal(prov->retries, 0);
    assert_int_equal(prov->breaker_failures, 0);
    prov = parse_ok(*state, max);
    assert_int_equal(prov->retries, 100);
    assert_int_equal(prov->breaker_failures, 100);
    for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
        const char *a[] = { "x", "https://h", bad[i], NULL };
        parse_err(*state, a, "expected an integer from 0 to 100", NULL);
    }
}

static void test_key_lists(void **state)
{
    apr_pool_t *p = *state;
    const char *f1 = temp_file(p, "sk-file-one\n");
    const char *f2 = temp_file(p, "sk-file-two\n");
    const char *env[] = { "x", "https://h", "key-env=MN_TEST_KA,MN_TEST_KB", NULL };
    const char *files[] = { "x", "https://h", apr_pstrcat(p, "key-file=", f1, ",", f2, NULL),
                            NULL };
    mn_provider *prov;
    setenv("MN_TEST_KA", "sk-env-a", 1);
    setenv("MN_TEST_KB", "sk-env-b\n", 1);
    prov = parse_ok(p, env);
    assert_int_equal(prov->nkeys, 2);
    assert_string_equal(prov->keys[0], "sk-env-a");
    assert_string_equal(prov->keys[1], "sk-env-b");
    assert_ptr_equal(prov->key, prov->keys[0]);
    assert_string_equal(prov->key_source, "env:MN_TEST_KA,MN_TEST_KB");
    prov = parse_ok(p, files);
    assert_int_equal(prov->nkeys, 2);
    assert_string_equal(prov->keys[0], "sk-file-one");
    assert_string_equal(prov->keys[1], "sk-file-two");
    assert_string_equal(prov->key, "sk-file-one");
    unsetenv("MN_TEST_KA");
    unsetenv("MN_TEST_KB");
    unlink(f1);
    unlink(f2);
}

/* Every key of a list is required; the message names the missing one. */
static void test_key_lists_errors(void **state)
{
    const char *a1[] = { "x", "https://h", "key-env=MN_TEST_KL1,MN_TEST_KL_MISSING", NULL };
    const char *a2[] = { "x", "https://h", "key-env=,", NULL };
    const char *a3[] = { "x", "https://h", "key-file=/nonexistent/a,/nonexistent/b", NULL };
    setenv("MN_TEST_KL1", SECRET, 1);
    unsetenv("MN_TEST_KL_MISSING");
    parse_err(*state, a1, "MN_TEST_KL_MISSING", NULL);
    parse_err(*state, a2, "names no key", NULL);
    parse_err(*state, a3, "/nonexistent/a", NULL);
    unsetenv("MN_TEST_KL1");
}

/* Fails unless parsing argv is refused with a message that holds no piece
 * of word (8 characters or more) and names what is wrong. */
static void err_hides(apr_pool_t *p, const char *const *argv, const char *word,
                      const char *mention)
{
    mn_provider *prov = NULL;
    int argc = 0;
    const char *err;
    size_t i, wlen = strlen(word);
    while (argv[argc]) {
        argc++;
    }
    err = mn_provider_parse(p, argc, argv, &prov);
    assert_non_null(err);
    for (i = 0; i + 8 <= wlen; i++) {
        char piece[9];
        memcpy(piece, word + i, 8);
        piece[8] = '\0';
        if (strstr(err, piece)) {
            fail_msg("error \"%s\" repeats \"%s\"", err, piece);
        }
    }
    if (!strstr(err, mention)) {
        fail_msg("error \"%s\" does not mention \"%s\"", err, mention);
    }
}

/* A key pasted into key-env= (or key-file=, or as a bare word) made only of
 * letters, digits and '_' is not repeated into configtest's message. */
static void test_pasted_key_not_echoed(void **state)
{
    apr_pool_t *p = *state;
    static const char *const words[] = {
        "gsk_8fJ2kLqZr9TxW3yBvN0pQs7HdE4mCa1UoYi6GtRlKe5n",
        "AIzaSyD4e5F6g7H8i9J0kLmNoPqRsTuVwXyZ012",
        "sk_live_51HaBcDeFgHiJkLmNoPq",
        "a8f3k2m9q7x1z5c4v6b0n8m2l4k6j8h0g2f4d6s8",
        "UPPERCASEONLYBUTVERYLONGFORANENVIRONMENTVARIABLENAMEWHICHISODD0123",
    };
    size_t i;
    for (i = 0; i < sizeof(words) / sizeof(words[0]); i++) {
        const char *env[] = { "x", "https://h", NULL, NULL };
        const char *list[] = { "x", "https://h", NULL, NULL };
        const char *file[] = { "x", "https://h", NULL, NULL };
        const char *bare[] = { "x", "https://h", words[i], NULL };
        unsetenv(words[i]);
        env[2] = apr_pstrcat(p, "key-env=", words[i], NULL);
        list[2] = apr_pstrcat(p, "key-env=MN_TEST_UNSET_X,", words[i], NULL);
        file[2] = apr_pstrcat(p, "key-file=", words[i], NULL);
        err_hides(p, env, words[i], "key-env");
        err_hides(p, list, words[i], "key-env");
        err_hides(p, file, words[i], "key-file");
        err_hides(p, bare, words[i], "bad option");
    }
    /* ordinary names are still named */
    {
        const char *argv[] = { "x", "https://h", "key-env=OPENAI_API_KEY_PROD_2", NULL };
        unsetenv("OPENAI_API_KEY_PROD_2");
        parse_err(p, argv, "OPENAI_API_KEY_PROD_2", "not set", NULL);
    }
}

/* A line break inside the key would be written into the upstream request's
 * header as it is: refused at startup (the file's own trailing newline is
 * still trimmed). */
static void test_key_control_bytes_refused(void **state)
{
    apr_pool_t *p = *state;
    static const char *const bodies[] = { "sk-a\r\nX-Evil: 1\n", "sk-a\nsk-b\n", "sk-a\tb",
                                          "sk-\x01" "a", "sk-a\x7f" };
    const char *argv[] = { "x", "https://h", NULL, NULL };
    const char *env[] = { "x", "https://h", "key-env=MN_TEST_CTL_KEY", NULL };
    size_t i;
    for (i = 0; i < sizeof(bodies) / sizeof(bodies[0]); i++) {
        const char *path = temp_file(p, bodies[i]);
        argv[2] = apr_pstrcat(p, "key-file=", path, NULL);
        parse_err(p, argv, path, "control character", NULL);
        unlink(path);
        setenv("MN_TEST_CTL_KEY", bodies[i], 1);
        parse_err(p, env, "MN_TEST_CTL_KEY", "control character", NULL);
    }
    unsetenv("MN_TEST_CTL_KEY");
    {
        const char *path = temp_file(p, "sk-fine\r\n");
        argv[2] = apr_pstrcat(p, "key-file=", path, NULL);
        assert_string_equal(parse_ok(p, argv)->key, "sk-fine");
        unlink(path);
    }
}

/* ---- aliases ------------------------------------------------------------------ */

static mn_provider *make(apr_pool_t *p, const char *name);

static void test_aliases(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    mn_provider *a = make(p, "anthropic");
    mn_provider *o = make(p, "openai");
    const char *argv[] = { "smart", "anthropic/claude-sonnet-4-5", "openai/gpt-4o", NULL };
    const mn_alias *al;
    const mn_target *tg;
    assert_null(mn_providers_add(t, a));
    assert_null(mn_providers_add(t, o));
    assert_int_equal(a->index, 0);
    assert_int_equal(o->index, 1);
    assert_null(mn_alias_add(t, 3, argv, "/etc/m.conf", 7));
    assert_null(mn_aliases_resolve(t));
    al = mn_alias_get(t, "smart");
    assert_non_null(al);
    assert_int_equal(al->targets->nelts, 2);
    tg = &APR_ARRAY_IDX(al->targets, 0, mn_target);
    assert_ptr_equal(tg->provider, a);
    assert_string_equal(tg->provider_name, "anthropic");
    assert_string_equal(tg->model, "claude-sonnet-4-5");
    tg = &APR_ARRAY_IDX(al->targets, 1, mn_target);
    assert_ptr_equal(tg->provider, o);
    assert_string_equal(tg->model, "gpt-4o");
    assert_null(mn_alias_get(t, "dumb"));
}

static void test_alias_errors(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    const char *ok[] = { "fast", "groq/llama-3", NULL };
    const char *dup[] = { "fast", "openai/gpt-4o", NULL };
    const char *bad_target[] = { "x1", "noslash", NULL };
    const char *bad_name[] = { "a b", "openai/gpt-4o", NULL };
    const char *only[] = { "lonely", NULL };
    const char *err;
    assert_null(mn_providers_add(t, make(p, "openai")));
    assert_null(mn_alias_add(t, 2, ok, "/etc/m.conf", 12));
    err = mn_alias_add(t, 2, dup, "/etc/m.conf", 13);
    assert_non_null(err);
    assert_non_null(strstr(err, "'fast'"));
    err = mn_alias_add(t, 2, bad_target, "/etc/m.conf", 14);
    assert_non_null(err);
    assert_non_null(strstr(err, "noslash"));
    err = mn_alias_add(t, 2, bad_name, "/etc/m.conf", 15);
    assert_non_null(err);
    assert_non_null(strstr(err, "a b"));
    assert_non_null(mn_alias_add(t, 1, only, "/etc/m.conf", 16));
    /* groq was never defined: named with the alias's file and line */
    err = mn_aliases_resolve(t);
    assert_non_null(err);
    assert_non_null(strstr(err, "fast"));
    assert_non_null(strstr(err, "/etc/m.conf:12"));
    assert_non_null(strstr(err, "'groq'"));
}

/* ---- the table ------------------------------------------------------------- */

static mn_provider *make(apr_pool_t *p, const char *name)
{
    const char *argv[] = { name, "https://h", NULL };
    return parse_ok(p, argv);
}

static void test_table(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    mn_provider *a = make(p, "together");
    mn_provider *b = make(p, "tog");
    mn_provider *dup = make(p, "together");
    const char *err;

    assert_null(mn_providers_add(t, a));
    assert_null(mn_providers_add(t, b));
    err = mn_providers_add(t, dup);
    assert_non_null(err);
    assert_non_null(strstr(err, "duplicate"));
    assert_non_null(strstr(err, "'together'"));
    assert_int_equal(t->list->nelts, 2);
    assert_ptr_equal(APR_ARRAY_IDX(t->list, 0, mn_provider *), a);
    assert_ptr_equal(APR_ARRAY_IDX(t->list, 1, mn_provider *), b);

    /* lookups by a prefix of a longer string, as routing does */
    assert_ptr_equal(mn_providers_get(t, "together/meta-llama/x", 8), a);
    assert_ptr_equal(mn_providers_get(t, "together/meta-llama/x", 3), b);
    assert_null(mn_providers_get(t, "together/meta-llama/x", 5));
    assert_null(mn_providers_get(t, "nope", 4));
    assert_null(mn_providers_get(t, "", 0));
}

static void test_duplicate_names_location(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    mn_provider *a = make(p, "openai");
    mn_provider *dup = make(p, "openai");
    const char *err;
    a->conf_file = "/etc/apache2/conf-enabled/maniac.conf";
    a->conf_line = 12;
    assert_null(mn_providers_add(t, a));
    err = mn_providers_add(t, dup);
    assert_non_null(err);
    assert_non_null(strstr(err, "'openai'"));
    assert_non_null(strstr(err, "/etc/apache2/conf-enabled/maniac.conf:12"));
    assert_ptr_equal(mn_providers_get(t, "openai", 6), a);
}

/* ---- routing ----------------------------------------------------------------- */

static void test_route_split(void **state)
{
    apr_pool_t *p = *state;
    const char *prov = NULL, *model = NULL;
    size_t plen = 0;
    const char *in = "together/meta-llama/Llama-3-70b";

    assert_int_equal(mn_route_split(p, in, &prov, &plen, &model), 0);
    assert_ptr_equal(prov, in);
    assert_int_equal(plen, 8);
    assert_string_equal(model, "meta-llama/Llama-3-70b");
    /* a copy, so it outlives a body that is rewritten */
    assert_true(model < in || model > in + strlen(in));

    assert_int_equal(mn_route_split(p, "echo/x", &prov, &plen, &model), 0);
    assert_int_equal(plen, 4);
    assert_string_equal(model, "x");

    assert_int_equal(mn_route_split(p, "noslash", &prov, &plen, &model), -1);
    assert_int_equal(mn_route_split(p, "/x", &prov, &plen, &model), -1);
    assert_int_equal(mn_route_split(p, "p/", &prov, &plen, &model), -1);
    assert_int_equal(mn_route_split(p, "/", &prov, &plen, &model), -1);
    assert_int_equal(mn_route_split(p, "", &prov, &plen, &model), -1);
}

/* ---- issue 13: what configtest must catch ---------------------------------- */

static void test_port_range(void **state)
{
    const char *big[] = { "x", "http://h:99999/v1", NULL };
    const char *over[] = { "x", "http://h:65536/v1", NULL };
    const char *max[] = { "x", "http://h:65535/v1", NULL };
    /* apr_uri_parse alone wraps 99999 to 34463 */
    parse_err(*state, big, "http://h:99999/v1", "99999", NULL);
    parse_err(*state, over, "65536", NULL);
    assert_string_equal(parse_ok(*state, max)->hostinfo, "h:65535");
}

static void test_base_query(void **state)
{
    const char *argv[] = { "azure",
        "https://r.openai.azure.com/openai/deployments/gpt4o?api-version=2024-10-21", NULL };
    const char *plain[] = { "x", "https://h/v1", NULL };
    mn_provider *prov = parse_ok(*state, argv);
    assert_string_equal(prov->base_query, "api-version=2024-10-21");
    assert_string_equal(prov->base_path, "/openai/deployments/gpt4o");
    assert_string_equal(prov->base_url, "https://r.openai.azure.com/openai/deployments/gpt4o");
    assert_null(parse_ok(*state, plain)->base_query);
}

static void test_key_header(void **state)
{
    const char *ok[] = { "azure", "https://h/d", "key-env=MN_TEST_KH", "key-header=api-key", NULL };
    const char *nokey[] = { "azure", "https://h/d", "key-header=api-key", NULL };
    const char *bad[] = { "azure", "https://h/d", "key-env=MN_TEST_KH", "key-header=a b:", NULL };
    setenv("MN_TEST_KH", SECRET, 1);
    assert_string_equal(parse_ok(*state, ok)->key_header, "api-key");
    assert_null(parse_ok(*state, (const char *const[]){ "x", "https://h", NULL })->key_header);
    parse_err(*state, nokey, "key-header", "key-env", NULL);
    parse_err(*state, bad, "key-header", NULL);
    unsetenv("MN_TEST_KH");
}

static const char *only_warning(const mn_provider *prov)
{
    assert_non_null(prov->warnings);
    assert_int_equal(prov->warnings->nelts, 1);
    return APR_ARRAY_IDX(prov->warnings, 0, const char *);
}

static void check_suffix(apr_pool_t *p, const char *url, const char *format, const char *want)
{
    const char *argv[] = { "x", url, format, NULL };
    const char *w = only_warning(parse_ok(p, argv));
    if (!strstr(w, want)) {
        fail_msg("warning \"%s\" does not say \"%s\"", w, want);
    }
}

static void test_endpoint_suffix_warnings(void **state)
{
    apr_pool_t *p = *state;
    const char *fine[] = { "x", "https://h/v1", NULL };
    check_suffix(p, "https://h/v1/chat/completions", "format=openai", "use https://h/v1");
    check_suffix(p, "https://h/v1/messages/", "format=anthropic", "use https://h/v1");
    check_suffix(p, "https://g/v1beta/models/gemini-2.0-flash:generateContent", "format=gemini",
                 "use https://g/v1beta");
    check_suffix(p, "https://a/d/chat/completions?api-version=1", "format=openai",
                 "use https://a/d?api-version=1");
    assert_null(parse_ok(p, fine)->warnings);
}

static void test_format_option_warnings(void **state)
{
    apr_pool_t *p = *state;
    const char *mt[] = { "x", "https://h/v1", "max-tokens=100", NULL };
    const char *rs[] = { "x", "https://h/v1", "reasoning=on", NULL };
    const char *mtg[] = { "x", "https://h/v1", "format=gemini", "max-tokens=100", NULL };
    const char *an[] = { "x", "https://h/v1", "format=anthropic", "max-tokens=100",
                         "reasoning=on", NULL };
    const char *gr[] = { "x", "https://h/v1", "format=gemini", "reasoning=off", NULL };
    assert_non_null(strstr(only_warning(parse_ok(p, mt)), "max-tokens= does nothing for format=openai"));
    assert_non_null(strstr(only_warning(parse_ok(p, rs)), "reasoning= does nothing for format=openai"));
    assert_non_null(strstr(only_warning(parse_ok(p, mtg)), "max-tokens= does nothing for format=gemini"));
    assert_null(parse_ok(p, an)->warnings);
    assert_null(parse_ok(p, gr)->warnings);
}

/* At a graceful restart a missing variable disables the provider instead of
 * failing the configuration (and so the server). */
static void test_soft_keys(void **state)
{
    const char *argv[] = { "late", "https://h/v1", "key-env=MN_TEST_LATE_KEY", "timeout=5", NULL };
    const char *dir[] = { "late", "https://h/v1", "key-file=/tmp", NULL };
    mn_provider *prov = NULL;
    unsetenv("MN_TEST_LATE_KEY");
    assert_null(mn_provider_parse_ex(*state, 4, argv, MN_PARSE_KEYS_SOFT, &prov));
    assert_non_null(prov->unavailable);
    assert_non_null(strstr(prov->unavailable, "MN_TEST_LATE_KEY"));
    assert_null(prov->key);
    assert_int_equal(prov->nkeys, 0);
    assert_int_equal(prov->timeout, apr_time_from_sec(5));
    assert_string_equal(prov->key_source, "env:MN_TEST_LATE_KEY");
    prov = NULL;
    assert_null(mn_provider_parse_ex(*state, 3, dir, MN_PARSE_KEYS_SOFT, &prov));
    assert_non_null(strstr(prov->unavailable, "/tmp"));
    /* not soft: the same line fails, and a good line is usable */
    parse_err(*state, argv, "MN_TEST_LATE_KEY", NULL);
    setenv("MN_TEST_LATE_KEY", SECRET, 1);
    prov = NULL;
    assert_null(mn_provider_parse_ex(*state, 4, argv, MN_PARSE_KEYS_SOFT, &prov));
    assert_null(prov->unavailable);
    assert_string_equal(prov->key, SECRET);
    unsetenv("MN_TEST_LATE_KEY");
}

static void test_alias_first_defined_and_shadowing(void **state)
{
    apr_pool_t *p = *state;
    mn_provider_table *t = mn_providers_create(p);
    const char *a1[] = { "fast", "openai/gpt-4o-mini", NULL };
    const char *a2[] = { "fast", "openai/gpt-4o", NULL };
    const char *shadow[] = { "openai/gpt-4o", "openai/gpt-4o-mini", NULL };
    const char *other[] = { "team/gpt", "openai/gpt-4o", NULL };
    const char *err, *w;
    assert_null(mn_providers_add(t, make(p, "openai")));
    assert_null(mn_alias_add(t, 2, a1, "/etc/apache2/conf-enabled/m.conf", 12));
    err = mn_alias_add(t, 2, a2, "/etc/apache2/conf-enabled/m.conf", 20);
    assert_non_null(err);
    assert_non_null(strstr(err, "duplicate alias 'fast' (first defined at "
                                "/etc/apache2/conf-enabled/m.conf:12)"));
    assert_null(mn_alias_add(t, 2, shadow, "/etc/m.conf", 30));
    assert_null(mn_alias_add(t, 2, other, "/etc/m.conf", 31));
    assert_null(mn_aliases_resolve(t));
    assert_int_equal(t->warnings->nelts, 1);
    w = APR_ARRAY_IDX(t->warnings, 0, const char *);
    assert_non_null(strstr(w, "ManiacModel openai/gpt-4o (/etc/m.conf:30)"));
    assert_non_null(strstr(w, "provider 'openai'"));
}

/* ---- the option table ------------------------------------------------------ */

static apr_int64_t field_value(const mn_provider *prov, const mn_provider_option *o)
{
    const char *at = (const char *)prov + o->offset;
    if (o->size == sizeof(apr_int64_t)) {
        apr_int64_t v;
        memcpy(&v, at, sizeof(v));
        return v;
    }
    else {
        int v;
        assert_int_equal(o->size, sizeof(int));
        memcpy(&v, at, sizeof(v));
        return v;
    }
}

static const char *opt_word(apr_pool_t *p, const mn_provider_option *o, const char *val)
{
    return apr_pstrcat(p, o->name, "=", val, NULL);
}

/* The "known:" list is the table, in its order, and it is still the list
 * the parser printed before the table existed. */
static void test_options_unknown_lists_table(void **state)
{
    apr_pool_t *p = *state;
    const char *argv[] = { "x", "https://h", "colour=red", NULL };
    const char *known = mn_provider_options_known(p);
    const char *err = parse_err(p, argv, "unknown option 'colour'", NULL);
    const char *at = known;
    int i;

    assert_string_equal(known, "format, key-env, key-file, timeout, connect-timeout, "
                        "first-byte-timeout, idle-timeout, total-timeout, retries, "
                        "breaker-failures, breaker-cooldown, max-tokens, reasoning, key-header, "
                        "keep, models, thinking, responses");
    assert_non_null(strstr(err, apr_pstrcat(p, "(known: ", known, ")", NULL)));
    for (i = 0; i < mn_provider_noptions; i++) {
        const char *hit = strstr(at, mn_provider_options[i].name);
        assert_non_null(hit);
        at = hit + strlen(mn_provider_options[i].name);
    }
}

/* Every bounded number: both ends accepted and stored in the table's field,
 * one past either end refused with the table's range in the message. */
static void test_options_ranges_from_table(void **state)
{
    apr_pool_t *p = *state;
    int i, checked = 0;

    for (i = 0; i < mn_provider_noptions; i++) {
        const mn_provider_option *o = &mn_provider_options[i];
        const char *lo, *hi, *below, *above;
        if (o->kind != MN_OPT_INT || o->max == LONG_MAX) {
            continue;
        }
        lo = apr_ltoa(p, o->min);
        hi = apr_ltoa(p, o->max);
        below = apr_ltoa(p, o->min - 1);
        above = apr_ltoa(p, o->max + 1);
        {
            const char *a_lo[] = { "x", "https://h", opt_word(p, o, lo), NULL };
            const char *a_hi[] = { "x", "https://h", opt_word(p, o, hi), NULL };
            const char *a_below[] = { "x", "https://h", opt_word(p, o, below), NULL };
            const char *a_above[] = { "x", "https://h", opt_word(p, o, above), NULL };
            const char *range = apr_psprintf(p, "expected an integer from %ld to %ld",
                                             o->min, o->max);
            assert_int_equal(field_value(parse_ok(p, a_lo), o), o->min);
            assert_int_equal(field_value(parse_ok(p, a_hi), o), o->max);
            parse_err(p, a_below, apr_psprintf(p, "bad %s '%s'", o->name, below), range, NULL);
            parse_err(p, a_above, apr_psprintf(p, "bad %s '%s'", o->name, above), range, NULL);
        }
        checked++;
    }
    assert_int_equal(checked, 2);   /* retries, breaker-failures */
}

/* Seconds: fractions, the table's maximum, and the maximum in the message. */
static void test_options_seconds_from_table(void **state)
{
    apr_pool_t *p = *state;
    int i, checked = 0;

    for (i = 0; i < mn_provider_noptions; i++) {
        const mn_provider_option *o = &mn_provider_options[i];
        const char *max, *over;
        if (o->kind != MN_OPT_SECONDS) {
            continue;
        }
        max = apr_ltoa(p, o->max);
        over = apr_psprintf(p, "%ld.5", o->max);
        {
            const char *a_half[] = { "x", "https://h", opt_word(p, o, "0.5"), NULL };
            const char *a_max[] = { "x", "https://h", opt_word(p, o, max), NULL };
            const char *a_over[] = { "x", "https://h", opt_word(p, o, over), NULL };
            const char *a_zero[] = { "x", "https://h", opt_word(p, o, "0"), NULL };
            const char *range = apr_psprintf(p, "expected seconds > 0 (at most %ld)", o->max);
            assert_int_equal(field_value(parse_ok(p, a_half), o), 500000);
            assert_int_equal(field_value(parse_ok(p, a_max), o), apr_time_from_sec(o->max));
            parse_err(p, a_over, apr_psprintf(p, "bad %s '%s'", o->name, over), range, NULL);
            parse_err(p, a_zero, apr_psprintf(p, "bad %s '0'", o->name), range, NULL);
        }
        checked++;
    }
    assert_int_equal(checked, 6);
}

/* Enums and switches: each word stores its index; a bad word's message
 * lists the table's words. */
static void test_options_words_from_table(void **state)
{
    apr_pool_t *p = *state;
    const char *fmt[] = { "x", "https://h", "format=cohere", NULL };
    const char *rs[] = { "x", "https://h", "reasoning=yes", NULL };
    const char *big[] = { "x", "https://h", "max-tokens=99999999999999999999999", NULL };
    int i, j;

    for (i = 0; i < mn_provider_noptions; i++) {
        const mn_provider_option *o = &mn_provider_options[i];
        if (o->kind != MN_OPT_ENUM && o->kind != MN_OPT_BOOL) {
            continue;
        }
        for (j = 0; o->words[j]; j++) {
            const char *a[] = { "x", "https://h", opt_word(p, o, o->words[j]), NULL };
            assert_int_equal(field_value(parse_ok(p, a), o), j);
        }
    }
    parse_err(p, fmt, "unknown format 'cohere' (known: openai, anthropic, gemini)", NULL);
    parse_err(p, rs, "bad reasoning 'yes': expected on or off", NULL);
    /* an overflowing number is not clamped into range */
    parse_err(p, big, "bad max-tokens", "expected a positive integer", NULL);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_pool, teardown_pool)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_defaults),
        T(test_options_unknown_lists_table),
        T(test_options_ranges_from_table),
        T(test_options_seconds_from_table),
        T(test_options_words_from_table),
        T(test_url_normalisation),
        T(test_bad_urls),
        T(test_bad_port),
        T(test_builtin_echo),
        T(test_builtin_echo_rejects_format),
        T(test_formats),
        T(test_key_env),
        T(test_key_env_unset),
        T(test_key_env_blank),
        T(test_key_file),
        T(test_key_file_errors),
        T(test_key_env_and_file),
        T(test_key_not_in_errors),
        T(test_timeout),
        T(test_timeout_rounds_to_zero),
        T(test_max_tokens),
        T(test_reasoning),
        T(test_thinking_option),
        T(test_all_options),
        T(test_unknown_option),
        T(test_bad_name),
        T(test_resilience_defaults),
        T(test_split_timeouts),
        T(test_split_timeouts_bad),
        T(test_retries_and_breaker),
        T(test_key_lists),
        T(test_key_lists_errors),
        T(test_pasted_key_not_echoed),
        T(test_key_control_bytes_refused),
        T(test_aliases),
        T(test_alias_errors),
        T(test_table),
        T(test_duplicate_names_location),
        T(test_route_split),
        T(test_port_range),
        T(test_base_query),
        T(test_key_header),
        T(test_endpoint_suffix_warnings),
        T(test_format_option_warnings),
        T(test_soft_keys),
        T(test_alias_first_defined_and_shadowing),
    };
    int rc;
    apr_initialize();
    rc = cmocka_run_group_tests(tests, NULL, NULL);
    apr_terminate();
    return rc;
}
