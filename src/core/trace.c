/* mn_trace: trace context and request ids (see include/mn_trace.h). */
#include <string.h>
#include <apr_lib.h>
#include "mn_trace.h"

/* Copies n hex digits of s into out (lower-cased), NUL-terminated.  0 when
 * s is not exactly that (upper case allowed only with any_case), or is all
 * zeros (W3C: an invalid id). */
static int copy_hex(const char *s, size_t n, int any_case, char *out, const char **why)
{
    size_t i;
    int nonzero = 0;
    for (i = 0; i < n; i++) {
        char c = s[i];
        if (any_case && c >= 'A' && c <= 'F') {
            c = (char)(c - 'A' + 'a');
        }
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) {
            *why = c ? "not lower-case hex" : "too short";
            return 0;
        }
        nonzero |= c != '0';
        out[i] = c;
    }
    out[n] = '\0';
    if (!nonzero) {
        *why = "all zeros";
        return 0;
    }
    return 1;
}

static int json_hex(json_t *v, size_t n, char *out, const char **why)
{
    if (!json_is_string(v)) {
        *why = "not a string";
        return 0;
    }
    if (json_string_length(v) != n) {
        *why = "wrong length";
        return 0;
    }
    return copy_hex(json_string_value(v), n, 1, out, why);
}

mn_trace_rc mn_trace_from_json(json_t *trace, mn_trace_ctx *out, const char **why)
{
    json_t *span;
    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (!json_is_object(trace)) {
        return MN_TRACE_NONE;
    }
    if (!json_object_get(trace, "id")) {
        *why = "trace.id missing";
        return MN_TRACE_INVALID;
    }
    if (!json_hex(json_object_get(trace, "id"), MN_TRACE_ID_HEX, out->trace_id, why)) {
        return MN_TRACE_INVALID;
    }
    span = json_object_get(trace, "span_id");
    if (span && !json_is_null(span) && !json_hex(span, MN_SPAN_ID_HEX, out->span_id, why)) {
        return MN_TRACE_INVALID;
    }
    memcpy(out->flags, "01", 3);
    return MN_TRACE_OK;
}

mn_trace_rc mn_trace_from_header(const char *h, mn_trace_ctx *out, const char **why)
{
    char version[3];
    size_t len;

    memset(out, 0, sizeof(*out));
    *why = NULL;
    if (!h) {
        return MN_TRACE_NONE;
    }
    while (*h == ' ' || *h == '\t') {
        h++;
    }
    len = strlen(h);
    while (len && (h[len - 1] == ' ' || h[len - 1] == '\t')) {
        len--;
    }
    if (len < MN_TRACEPARENT_LEN) {
        *why = "too short";
        return MN_TRACE_INVALID;
    }
    /* version 00 is exactly this long; a later version may append fields */
    version[0] = h[0];
    version[1] = h[1];
    version[2] = '\0';
    if (!apr_isxdigit(h[0]) || !apr_isxdigit(h[1]) || apr_isupper(h[0]) || apr_isupper(h[1])
        || !strcmp(version, "ff")) {
        *why = "bad version";
        return MN_TRACE_INVALID;
    }
    if (h[2] != '-' || h[35] != '-' || h[52] != '-'
        || (len > MN_TRACEPARENT_LEN && (!strcmp(version, "00") || h[55] != '-'))) {
        *why = "bad layout";
        return MN_TRACE_INVALID;
    }
    if (!copy_hex(h + 3, MN_TRACE_ID_HEX, 0, out->trace_id, why)
        || !copy_hex(h + 36, MN_SPAN_ID_HEX, 0, out->span_id, why)) {
        return MN_TRACE_INVALID;
    }
    if (!apr_isxdigit(h[53]) || !apr_isxdigit(h[54]) || apr_isupper(h[53])
        || apr_isupper(h[54])) {
        *why = "bad flags";
        return MN_TRACE_INVALID;
    }
    out->flags[0] = h[53];
    out->flags[1] = h[54];
    out->flags[2] = '\0';
    return MN_TRACE_OK;
}

void mn_trace_format(const mn_trace_ctx *t, const unsigned char span[8],
                     char out[MN_TRACEPARENT_LEN + 1])
{
    static const char hex[] = "0123456789abcdef";
    char *w = out;
    int i, nonzero = 0;

    memcpy(w, "00-", 3);
    w += 3;
    memcpy(w, t->trace_id, MN_TRACE_ID_HEX);
    w += MN_TRACE_ID_HEX;
    *w++ = '-';
    for (i = 0; i < 8; i++) {
        nonzero |= span[i] != 0;
        *w++ = hex[span[i] >> 4];
        *w++ = hex[span[i] & 0xf];
    }
    if (!nonzero) {
        /* an all-zero parent-id is invalid: one chance in 2^64 */
        w[-1] = '1';
    }
    *w++ = '-';
    *w++ = t->flags[0];
    *w++ = t->flags[1];
    *w = '\0';
}

int mn_request_id_ok(const char *v)
{
    size_t n = 0;
    if (!v) {
        return 0;
    }
    for (; v[n]; n++) {
        if (n >= MN_REQUEST_ID_MAX || v[n] <= ' ' || v[n] > '~') {
            return 0;
        }
    }
    return n > 0;
}

int mn_trace_state_ok(const char *v)
{
    size_t n = 0;
    if (!v) {
        return 0;
    }
    for (; v[n]; n++) {
        if (n >= 512 || ((v[n] < ' ' || v[n] > '~') && v[n] != '\t')) {
            return 0;
        }
    }
    return n > 0;
}
