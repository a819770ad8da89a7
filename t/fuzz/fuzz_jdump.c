/* libFuzzer: any JSON text Jansson reads (NULs and scalars allowed) is
 * written by mn_json_dumps / mn_json_dumpb exactly as json_dumps /
 * json_dumpb write it; any difference aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <jansson.h>
#include "mn_jdump.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void same(const json_t *v, size_t flags)
{
    char *want = json_dumps(v, flags);
    size_t len = 0, n, wn;
    char *got = mn_json_dumps(v, flags, &len);
    char small[64], small_want[64];
    if ((!want) != (!got) || (want && (strcmp(want, got) || len != strlen(want)))) {
        fprintf(stderr, "jdump and Jansson differ (flags %zx):\n jansson %s\n mn      %s\n", flags,
                want ? want : "(null)", got ? got : "(null)");
        abort();
    }
    n = mn_json_dumpb(v, small, sizeof(small), flags);
    wn = json_dumpb(v, small_want, sizeof(small_want), flags);
    if (n != wn || (n <= sizeof(small) && memcmp(small, small_want, n))) {
        fprintf(stderr, "jdump and Jansson differ in dumpb (%zu vs %zu)\n", n, wn);
        abort();
    }
    free(want);
    free(got);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *v = json_loadb((const char *)data, size, JSON_ALLOW_NUL | JSON_DECODE_ANY, NULL);
    if (v) {
        same(v, JSON_COMPACT);
        same(v, JSON_COMPACT | JSON_ENCODE_ANY);
        json_decref(v);
    }
    return 0;
}
