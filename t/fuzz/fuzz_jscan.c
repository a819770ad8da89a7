/* libFuzzer: the same bytes to json_loadb (the gateway's flags) and to
 * mn_jscan; any disagreement in accept/reject or in a span's value aborts. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include "../unit/jscan_diff.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char why[256];
    if (mn_jscan_diff((const char *)data, size, why, sizeof(why))) {
        fprintf(stderr, "jscan and Jansson disagree: %s\n", why);
        abort();
    }
    return 0;
}
