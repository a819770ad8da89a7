/* Trace context from clients (src/core/trace.c): the traceparent header and
 * the body's `trace` member, and the request-id / tracestate checks that
 * decide what goes on upstream.
 * Byte 0: 0 header, 1 JSON body (its `trace` member, else the whole value),
 * 2 request id and tracestate checks; byte 1 seeds the gateway's span; the
 * rest is the input (a C string for 0 and 2, as headers are).
 * What passes may only carry lower-case hex where the upstream's
 * traceparent holds it: the formatted header is 55 bytes of the W3C layout,
 * never all-zero ids, and it parses back to the same trace id and flags. */
#include "fuzz.h"
#include "mn_trace.h"

static int lower_hex(const char *s, size_t n)
{
    size_t i;
    int nonzero = 0;
    for (i = 0; i < n; i++) {
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f'))) {
            return 0;
        }
        nonzero |= s[i] != '0';
    }
    return nonzero;
}

static void check_ctx(const mn_trace_ctx *t, unsigned seed)
{
    unsigned char span[8];
    char out[MN_TRACEPARENT_LEN + 1];
    mn_trace_ctx back;
    const char *why;
    int i;

    if (strlen(t->trace_id) != MN_TRACE_ID_HEX || !lower_hex(t->trace_id, MN_TRACE_ID_HEX)) {
        FZ_FAIL("trace id not 32 lower-case hex digits: %s", t->trace_id);
    }
    if (t->span_id[0] && (strlen(t->span_id) != MN_SPAN_ID_HEX
                          || !lower_hex(t->span_id, MN_SPAN_ID_HEX))) {
        FZ_FAIL("span id not 16 lower-case hex digits: %s", t->span_id);
    }
    if (strlen(t->flags) != 2 || (!lower_hex(t->flags, 2) && strcmp(t->flags, "00"))) {
        FZ_FAIL("flags not 2 lower-case hex digits: %s", t->flags);
    }
    for (i = 0; i < 8; i++) {
        span[i] = (unsigned char)((seed & 1) ? 0 : seed * (unsigned)(i + 1));
    }
    memset(out, 'X', sizeof(out));
    mn_trace_format(t, span, out);
    if (strlen(out) != MN_TRACEPARENT_LEN || strncmp(out, "00-", 3) || out[35] != '-'
        || out[52] != '-' || !lower_hex(out + 36, MN_SPAN_ID_HEX)) {
        FZ_FAIL("formatted traceparent: %s", out);
    }
    if (mn_trace_from_header(out, &back, &why) != MN_TRACE_OK
        || strcmp(back.trace_id, t->trace_id) || strcmp(back.flags, t->flags)) {
        FZ_FAIL("formatted traceparent does not parse back: %s (%s)", out, why ? why : "");
    }
}

static void check_visible(const char *v, size_t max, int tabs, int ok)
{
    size_t n = strlen(v), i;
    int want = n > 0 && n <= max;
    for (i = 0; i < n && want; i++) {
        unsigned char c = (unsigned char)v[i];
        want = (c > ' ' && c <= '~') || (tabs && (c == ' ' || c == '\t'));
    }
    if (ok != want) {
        FZ_FAIL("check said %d for a %zu-byte value that should be %d", ok, n, want);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    mn_trace_ctx t;
    const char *why = NULL;
    char *s;
    mn_trace_rc rc;

    if (size < 2) {
        return 0;
    }
    s = malloc(size - 1);
    memcpy(s, data + 2, size - 2);
    s[size - 2] = '\0';
    switch (data[0] % 3) {
    case 0:
        rc = mn_trace_from_header(s, &t, &why);
        break;
    case 1: {
        json_t *j = json_loadb((const char *)data + 2, size - 2, JSON_DECODE_ANY, NULL);
        json_t *tr = json_object_get(j, "trace");
        rc = mn_trace_from_json(tr ? tr : j, &t, &why);
        json_decref(j);
        break;
    }
    default:
        check_visible(s, MN_REQUEST_ID_MAX, 0, mn_request_id_ok(s));
        check_visible(s, 512, 1, mn_trace_state_ok(s));
        free(s);
        return 0;
    }
    if (rc == MN_TRACE_OK) {
        check_ctx(&t, data[1]);
    }
    else if (rc == MN_TRACE_INVALID && (!why || !*why)) {
        FZ_FAIL("invalid without a reason");
    }
    free(s);
    return 0;
}
