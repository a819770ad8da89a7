/* mn_error: building, normalising and writing OpenAI-shaped errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "mn_error.h"
#include "mn_providers.h"
#include "mn_sse.h"

static void copy_str(char *dst, size_t size, const char *src)
{
    if (!src) {
        src = "";
    }
    snprintf(dst, size, "%s", src);
}

void mn_error_clear(mn_error *e)
{
    memset(e, 0, sizeof(*e));
}

int mn_error_is_set(const mn_error *e)
{
    return e->status != 0 || e->type[0] != '\0';
}

/* The one table of failure kinds.  type NULL: the status's default type. */
typedef struct {
    const char *code;
    int status;
    const char *type;
    const char *label;      /* maniac-attempts; NULL: the code or type */
    int retryable;
} fail_def;

static const fail_def fail_defs[MN_FAIL_COUNT] = {
    [MN_FAIL_NONE]            = { "",                         0,   NULL, NULL, 0 },
    [MN_FAIL_UNREACHABLE]     = { "upstream_unreachable",     502, NULL, "unreachable", 1 },
    [MN_FAIL_TLS]             = { "upstream_tls_error",       502, NULL, "tls_error", 1 },
    [MN_FAIL_TIMEOUT]         = { "upstream_timeout",         504, NULL, "timeout", 1 },
    [MN_FAIL_TOTAL_TIMEOUT]   = { "upstream_total_timeout",   504, NULL, "total_timeout", 1 },
    [MN_FAIL_RESET]           = { "upstream_reset",           502, NULL, "reset", 1 },
    [MN_FAIL_BUSY]            = { "upstream_busy",            503, "server_error", "busy", 1 },
    [MN_FAIL_BAD_RESPONSE]    = { "upstream_bad_response",    502, NULL, "bad_response", 0 },
    [MN_FAIL_TOO_LARGE]       = { "upstream_too_large",       502, NULL, "too_large", 0 },
    [MN_FAIL_EVENT_TOO_LARGE] = { "upstream_event_too_large", 502, NULL, "event_too_large", 0 },
    [MN_FAIL_EOF]             = { "upstream_eof",             502, NULL, "eof", 0 },
    [MN_FAIL_UPSTREAM_ERROR]  = { "upstream_error",           502, NULL, "error", 0 },
    [MN_FAIL_UNCONFIGURED]    = { "upstream_unconfigured",    502, NULL, "unconfigured", 0 },
    [MN_FAIL_CIRCUIT_OPEN]    = { "circuit_open",             503, "server_error", "circuit_open", 0 },
    [MN_FAIL_UNAVAILABLE]     = { "provider_unavailable",     503, "server_error", "unavailable", 0 },
    [MN_FAIL_UPSTREAM_HTTP]   = { "",                         0,   NULL, NULL, 0 },
    [MN_FAIL_CLIENT]          = { "",                         400, NULL, NULL, 0 },
    [MN_FAIL_INTERNAL]        = { "",                         500, "server_error", NULL, 0 },
};

/* The kind an error set with a code string gets (wire units set theirs by
 * code): the table's, when the code is one of it. */
static mn_fail kind_of(const char *code, int status)
{
    int k;
    for (k = MN_FAIL_NONE + 1; code && *code && k < MN_FAIL_COUNT; k++) {
        if (!strcmp(code, fail_defs[k].code)) {
            return (mn_fail)k;
        }
    }
    return status < 500 ? MN_FAIL_CLIENT : MN_FAIL_INTERNAL;
}

const char *mn_fail_code(mn_fail kind)
{
    return (unsigned)kind < MN_FAIL_COUNT ? fail_defs[kind].code : "";
}

int mn_fail_retryable(mn_fail kind)
{
    return (unsigned)kind < MN_FAIL_COUNT && fail_defs[kind].retryable;
}

const char *mn_fail_label(mn_fail kind)
{
    return (unsigned)kind < MN_FAIL_COUNT ? fail_defs[kind].label : NULL;
}

const char *mn_error_label(const mn_error *e)
{
    const char *c = mn_fail_label(e->kind);
    if (c) {
        return c;
    }
    c = e->code[0] ? e->code : e->type;
    return strncmp(c, "upstream_", 9) ? c : c + 9;
}

static void error_vset(mn_error *e, int status, const char *type, const char *param,
                       const char *code, const char *fmt, va_list ap)
{
    e->status = status;
    copy_str(e->type, sizeof(e->type), type ? type : mn_error_type_for_status(status));
    copy_str(e->param, sizeof(e->param), param);
    copy_str(e->code, sizeof(e->code), code);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    e->retry_after[0] = '\0';
}

int mn_error_fail(mn_error *e, mn_fail kind, const char *fmt, ...)
{
    const fail_def *d = &fail_defs[(unsigned)kind < MN_FAIL_COUNT ? kind : MN_FAIL_INTERNAL];
    va_list ap;
    va_start(ap, fmt);
    error_vset(e, d->status ? d->status : 500, d->type, NULL, d->code, fmt, ap);
    va_end(ap);
    e->kind = kind;
    return -1;
}

int mn_error_set(mn_error *e, int status, const char *type, const char *param,
                 const char *code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    error_vset(e, status, type, param, code, fmt, ap);
    va_end(ap);
    e->kind = kind_of(code, status);
    return -1;
}

int mn_error_bad_param(mn_error *e, const char *param, const char *fmt, ...)
{
    va_list ap;
    mn_error_set(e, 400, "invalid_request_error", param, NULL, "%s", "");
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    return -1;
}

const char *mn_error_type_for_status(int status)
{
    switch (status) {
    case 400: case 404: case 405: case 409: case 413: case 415: case 422:
        return "invalid_request_error";
    case 401:
        return "authentication_error";
    case 403:
        return "permission_error";
    case 408:
        return "timeout_error";
    case 429:
        return "rate_limit_error";
    case 502:
        return "upstream_error";
    case 504:
        return "timeout_error";
    default:
        return status >= 500 ? "server_error" : "invalid_request_error";
    }
}

/* json_string refuses invalid UTF-8, which an upstream's text may carry or a
 * cut to a field's size may create: keep the ASCII, mask the rest. */
static json_t *text_json(const char *s)
{
    char clean[sizeof(((mn_error *)0)->message)];
    json_t *j = json_string(s);
    size_t i;
    if (j) {
        return j;
    }
    for (i = 0; s[i] && i + 1 < sizeof(clean); i++) {
        unsigned char ch = (unsigned char)s[i];
        clean[i] = ch < 0x80 ? (char)ch : '?';
    }
    clean[i] = '\0';
    return json_string(clean);
}

static json_t *str_or_null(const char *s)
{
    return (s && *s) ? text_json(s) : json_null();
}

json_t *mn_error_to_json(const mn_error *e, const char *provider)
{
    json_t *inner = json_object();
    json_t *outer = json_object();
    json_object_set_new(inner, "message", text_json(e->message));
    json_object_set_new(inner, "type", text_json(e->type[0] ? e->type : "server_error"));
    json_object_set_new(inner, "param", str_or_null(e->param));
    json_object_set_new(inner, "code", str_or_null(e->code));
    json_object_set_new(outer, "error", inner);
    if (provider) {
        json_object_set_new(outer, "provider", json_string(provider));
    }
    return outer;
}

void mn_error_write_frame(const mn_error *e, const char *provider, mn_sink *out)
{
    json_t *j = mn_error_to_json(e, provider);
    mn_sse_write_json(out, j);
    json_decref(j);
}

/* The keys of prov, one by one: its current key, then every key of its list
 * (with round-robin keys any of them may be the one that was sent). */
static const char *key_at(const mn_provider *prov, int i)
{
    if (i == 0) {
        return prov->key;
    }
    return prov->keys && i <= prov->nkeys ? prov->keys[i - 1] : NULL;
}

/* Length of the longest key of prov starting at s (0: none).  The longest,
 * so that a key which is a prefix of another cannot leave the other's tail. */
static size_t key_match(const mn_provider *prov, const char *s)
{
    size_t best = 0;
    int i;
    for (i = 0; i <= prov->nkeys; i++) {
        const char *k = key_at(prov, i);
        size_t klen = k ? strlen(k) : 0;
        if (klen > best && !strncmp(s, k, klen)) {
            best = klen;
        }
    }
    return best;
}

/* Copies src into dst (size bytes, always terminated), every key of prov
 * replaced by "***".  Keys are matched in the whole of src, before the cut
 * to size, so a key that crosses the cut is masked, not shortened.  Returns
 * 1 when src did not fit. */
static int scrub_into(char *dst, size_t size, const char *src, const mn_provider *prov)
{
    size_t i = 0, o = 0;
    while (src[i] && o + 1 < size) {
        size_t klen = prov ? key_match(prov, src + i) : 0;
        if (klen) {
            size_t k;
            for (k = 0; k < 3 && o + 1 < size; k++) {
                dst[o++] = '*';
            }
            i += klen;
        }
        else {
            dst[o++] = src[i++];
        }
    }
    dst[o] = '\0';
    return src[i] != '\0';
}

/* A string that was cut to its field may end in the first characters of a
 * key whose rest was cut off (the cut made before this unit saw the whole
 * string): mask such a tail when it is MN_SCRUB_TAIL characters or more. */
#define MN_SCRUB_TAIL 4

static void scrub_cut_tail(char *s, size_t size, const mn_provider *prov)
{
    size_t len = strlen(s), best = 0;
    int i;
    for (i = 0; i <= prov->nkeys; i++) {
        const char *k = key_at(prov, i);
        size_t klen = k ? strlen(k) : 0, n;
        for (n = klen < len ? klen : len; n > best && n >= MN_SCRUB_TAIL; n--) {
            if (!strncmp(s + len - n, k, n)) {
                best = n;
                break;
            }
        }
    }
    if (best) {
        copy_str(s + len - best, size - (len - best), "***");
    }
}

static void scrub_field(char *s, size_t size, const mn_provider *prov)
{
    char copy[sizeof(((mn_error *)0)->message)];
    int was_full = strlen(s) + 1 >= size;
    copy_str(copy, sizeof(copy), s);
    scrub_into(s, size, copy, prov);
    if (was_full) {
        scrub_cut_tail(s, size, prov);
    }
}

void mn_error_scrub(mn_error *e, const mn_provider *prov)
{
    if (!prov) {
        return;
    }
    scrub_field(e->message, sizeof(e->message), prov);
    scrub_field(e->type, sizeof(e->type), prov);
    scrub_field(e->param, sizeof(e->param), prov);
    scrub_field(e->code, sizeof(e->code), prov);
}

/* Takes the string member `name` of obj, or the integer as text. */
static void member_text(json_t *obj, const char *name, char *dst, size_t size,
                        const mn_provider *prov)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_string(v)) {
        scrub_into(dst, size, json_string_value(v), prov);
    }
    else if (json_is_integer(v)) {
        snprintf(dst, size, "%lld", (long long)json_integer_value(v));
    }
    else {
        dst[0] = '\0';
    }
}

void mn_error_from_openai_body(mn_error *e, int status, const char *body, size_t len,
                               const mn_provider *prov)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *err = json_object_get(root, "error");

    mn_error_clear(e);
    e->status = status;
    /* its code is the upstream's word: it decides no retry of ours */
    e->kind = MN_FAIL_UPSTREAM_HTTP;
    if (json_is_object(err)) {
        member_text(err, "message", e->message, sizeof(e->message), prov);
        member_text(err, "type", e->type, sizeof(e->type), prov);
        member_text(err, "param", e->param, sizeof(e->param), prov);
        member_text(err, "code", e->code, sizeof(e->code), prov);
    }
    else if (json_is_string(err)) {
        scrub_into(e->message, sizeof(e->message), json_string_value(err), prov);
    }
    else if (json_is_object(root) && json_is_string(json_object_get(root, "message"))) {
        /* vLLM and a few others answer without the {"error":...} wrapper */
        member_text(root, "message", e->message, sizeof(e->message), prov);
        member_text(root, "type", e->type, sizeof(e->type), prov);
        member_text(root, "param", e->param, sizeof(e->param), prov);
        member_text(root, "code", e->code, sizeof(e->code), prov);
    }
    else if (json_is_object(root) && json_is_string(json_object_get(root, "detail"))) {
        member_text(root, "detail", e->message, sizeof(e->message), prov);
    }
    if (!e->message[0]) {
        snprintf(e->message, sizeof(e->message),
                 "upstream answered HTTP %d without an error message", status);
    }
    if (!e->type[0]) {
        copy_str(e->type, sizeof(e->type), mn_error_type_for_status(status));
    }
    json_decref(root);
}
