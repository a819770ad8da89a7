/* mn_error: OpenAI-shaped errors.
 *
 * Every error the gateway emits, before the first byte (JSON body with an HTTP
 * status) or mid-stream (a terminal `data: {"error":...}` frame), is built
 * from one mn_error.  Upstream error bodies of each wire format are normalised
 * into it by that format's unit; this unit owns the final JSON shape
 * {"error":{"message","type","param","code"},"provider"?}. */
#ifndef MN_ERROR_H
#define MN_ERROR_H

#include <jansson.h>
#include "mn_buf.h"

/* What kind of failure an error is, as far as the gateway acts on it: the
 * one table in error.c maps each kind to its `code` string, default status
 * and type, the label in the `maniac-attempts` note, and whether another
 * try may cure it.  The attempt loop reads the kind, never the strings. */
typedef enum mn_fail {
    MN_FAIL_NONE = 0,          /* no error, or one not of the kinds below */
    MN_FAIL_UNREACHABLE,       /* upstream_unreachable: connect or DNS failed */
    MN_FAIL_TLS,               /* upstream_tls_error */
    MN_FAIL_TIMEOUT,           /* upstream_timeout: connect, first byte or idle */
    MN_FAIL_TOTAL_TIMEOUT,     /* upstream_total_timeout: the provider's total-timeout */
    MN_FAIL_RESET,             /* upstream_reset: broke off mid-answer */
    MN_FAIL_BUSY,              /* upstream_busy: no pooled connection to be had */
    MN_FAIL_BAD_RESPONSE,      /* upstream_bad_response: not the promised format */
    MN_FAIL_TOO_LARGE,         /* upstream_too_large: a whole answer over the cap */
    MN_FAIL_EVENT_TOO_LARGE,   /* upstream_event_too_large: one stream event over the cap */
    MN_FAIL_EOF,               /* upstream_eof: a stream ended without its end marker */
    MN_FAIL_UPSTREAM_ERROR,    /* upstream_error: an error event inside a 2xx stream */
    MN_FAIL_UNCONFIGURED,      /* upstream_unconfigured: no mod_proxy worker */
    MN_FAIL_CIRCUIT_OPEN,      /* circuit_open: the breaker keeps the provider out */
    MN_FAIL_UNAVAILABLE,       /* provider_unavailable: its key was missing at start */
    MN_FAIL_UPSTREAM_HTTP,     /* an upstream's own error answer, decoded (its own code) */
    MN_FAIL_CLIENT,            /* the request's fault, answered by the gateway (4xx) */
    MN_FAIL_INTERNAL,          /* the gateway's own trouble (out of memory...) */
    MN_FAIL_COUNT
} mn_fail;

typedef struct mn_error {
    int status;              /* HTTP status to answer with (0: none set) */
    mn_fail kind;
    char type[64];           /* OpenAI error type, e.g. invalid_request_error */
    char code[64];           /* "" means JSON null */
    char param[128];         /* "" means JSON null */
    char message[1024];
    char retry_after[32];    /* seconds, "" when absent */
} mn_error;

void mn_error_clear(mn_error *e);
int mn_error_is_set(const mn_error *e);

/* Sets status/type/param/code (NULL or "" = null) and a printf-style message;
 * the kind is the table's for a code of the table, else MN_FAIL_CLIENT for a
 * status under 500 and MN_FAIL_INTERNAL otherwise.  Returns -1 so callers can `return mn_error_set(...)`. */
int mn_error_set(mn_error *e, int status, const char *type, const char *param,
                 const char *code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 6, 7)))
#endif
    ;

/* The client's request has a bad value in param: 400 invalid_request_error
 * naming it, with a printf-style message.  The one "bad param" constructor
 * the validators and translators share.  Returns -1. */
int mn_error_bad_param(mn_error *e, const char *param, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* Sets the error of a kind from the table: its status, type and code, and
 * a printf-style message.  Returns -1 like mn_error_set. */
int mn_error_fail(mn_error *e, mn_fail kind, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/* The kind's `code` string ("" for kinds without one of their own). */
const char *mn_fail_code(mn_fail kind);

/* May another try (same target, or the next) cure a failure of this kind
 * before the first byte? */
int mn_fail_retryable(mn_fail kind);

/* The kind's word in the `maniac-attempts` note (NULL: it has none). */
const char *mn_fail_label(mn_fail kind);

/* The error's word in the `maniac-attempts` note: the kind's label
 * ("unreachable", "tls_error", "circuit_open"...), else its code or type
 * without an "upstream_" prefix.  Points into the table or into e. */
const char *mn_error_label(const mn_error *e);

/* The default OpenAI `type` for an HTTP status (400 -> invalid_request_error,
 * 401 -> authentication_error, 429 -> rate_limit_error, 5xx -> server_error...). */
const char *mn_error_type_for_status(int status);

/* {"error":{...}} plus "provider" when provider is non-NULL.  New reference. */
json_t *mn_error_to_json(const mn_error *e, const char *provider);

/* Writes the error as one SSE frame `data: {...}\n\n` into the sink. */
void mn_error_write_frame(const mn_error *e, const char *provider, mn_sink *out);

struct mn_provider;

/* Replaces every key of prov (its key and each key of its list) by "***" in
 * every string of e a client or a log sees: message, type, param, code
 * (upstreams echo keys back in auth errors; ours must never leave).  A
 * string cut to its field's size also loses a trailing key prefix (4 or
 * more characters) the cut left.  The one scrubber: every path calls it.
 * prov NULL: nothing to do. */
void mn_error_scrub(mn_error *e, const struct mn_provider *prov);

/* Normalises an OpenAI-compatible upstream error body: {"error":{...}},
 * vLLM's unwrapped {"object":"error","message":...}, a bare string error, or
 * anything else (non-JSON, HTML) for the given HTTP status.  The keys of
 * prov (may be NULL) are scrubbed from the whole upstream strings, before
 * they are cut to the fields' sizes. */
void mn_error_from_openai_body(mn_error *e, int status, const char *body, size_t len,
                               const struct mn_provider *prov);

#endif
