/* The ManiacProvider option parser: words separated by NUL or newline become
 * argv.  Keys come from variables FZ_A/FZ_B (set here) and from files in a
 * scratch directory: key-file names are taken relative to it (inputs with a
 * '/' in one are skipped, so nothing outside it is read).  Invariants: an error never quotes a key we read
 * (unless the config text itself holds it), a parsed provider is sane, and
 * a key that would go into an HTTP header holds no control byte. */
#include <apr_strings.h>
#include "fuzz.h"

static char dir[] = "/tmp/mn-fuzz-provider-XXXXXX";

static void put(const char *name, const char *text)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f) {
        abort();
    }
    fputs(text, f);
    fclose(f);
}

static void cleanup(void)
{
    static const char *const names[] = { "k1", "k2", "empty", "crlf" };
    char path[256];
    size_t i;
    for (i = 0; i < sizeof(names) / sizeof(names[0]); i++) {
        snprintf(path, sizeof(path), "%s/%s", dir, names[i]);
        remove(path);
    }
    remove(dir);
}

static void setup(void)
{
    static int done;
    if (done) {
        return;
    }
    done = 1;
    fz_init();
    /* not chdir: libFuzzer keeps reading and writing its corpus by relative path */
    if (!mkdtemp(dir)) {
        abort();
    }
    atexit(cleanup);
    put("k1", "  " FZ_KEY "\n");
    put("k2", "sk-FUZZKEY-second-key-9876543210");
    put("empty", "");
    put("crlf", "sk-FUZZKEY-line\r\nX-Injected: 1");
    setenv("FZ_A", FZ_KEY, 1);
    setenv("FZ_B", "  sk-FUZZKEY-from-env-b  ", 1);
    setenv("FZ_EMPTY", "", 1);
    setenv("FZ_SPACE", "   ", 1);
}

static void check_provider(const mn_provider *p)
{
    int i;
    if (!p->name || !p->base_url || !p->scheme) {
        FZ_FAIL("provider without name, URL or scheme");
    }
    if (p->timeout <= 0 || p->connect_timeout <= 0 || p->first_byte_timeout <= 0
        || p->idle_timeout <= 0 || p->total_timeout < 0 || p->breaker_cooldown <= 0) {
        FZ_FAIL("non-positive timeout");
    }
    if (p->retries < 0 || p->retries > 100 || p->breaker_failures < 0
        || p->breaker_failures > 100 || p->max_tokens < 0) {
        FZ_FAIL("counter out of range");
    }
    if ((p->key != NULL) != (p->nkeys > 0)) {
        FZ_FAIL("key and key list disagree");
    }
    for (i = 0; i < p->nkeys; i++) {
        const unsigned char *k = (const unsigned char *)p->keys[i];
        if (!*k) {
            FZ_FAIL("empty key");
        }
        for (; *k; k++) {
            if (*k < 0x20 || *k == 0x7f) {
                FZ_FAIL("key with a control byte (goes raw into a request header)");
            }
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    apr_pool_t *pool;
    const char *argv[16];
    char *copy;
    int argc = 0;
    size_t i, start = 0;
    mn_provider *prov = NULL;
    const char *err;

    if (size > 4096) {
        return 0;
    }
    setup();
    copy = malloc(size + 1);
    memcpy(copy, data, size);
    copy[size] = '\0';
    for (i = 0; i <= size && argc < 16; i++) {
        if (i == size || copy[i] == '\n' || copy[i] == '\0') {
            copy[i] = '\0';
            argv[argc++] = copy + start;
            start = i + 1;
        }
    }
    apr_pool_create(&pool, fz_root);
    for (i = 0; i < (size_t)argc; i++) {
        if (!strncmp(argv[i], "key-file=", 9)) {
            char *names, *last = NULL, *n;
            const char *arg = "key-file=";
            if (strchr(argv[i] + 9, '/')) {
                apr_pool_destroy(pool);
                free(copy);
                return 0;
            }
            names = apr_pstrdup(pool, argv[i] + 9);
            for (n = apr_strtok(names, ",", &last); n; n = apr_strtok(NULL, ",", &last)) {
                arg = apr_pstrcat(pool, arg, arg[9] ? "," : "", dir, "/", n, NULL);
            }
            argv[i] = arg;
        }
    }
    err = mn_provider_parse(pool, argc, argv, &prov);
    if (err) {
        if (strstr(err, FZ_KEY_PREFIX) && !fz_has((const char *)data, size, FZ_KEY_PREFIX)) {
            FZ_FAIL("configuration error quotes a key: %s", err);
        }
    }
    else {
        check_provider(prov);
    }
    apr_pool_destroy(pool);
    free(copy);
    return 0;
}
