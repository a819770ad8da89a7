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

typedef struct mn_error {
    int status;              /* HTTP status to answer with (0: none set) */
    char type[64];           /* OpenAI error type, e.g. invalid_request_error */
    char code[64];           /* "" means JSON null */
    char param[128];         /* "" means JSON null */
    char message[1024];
    char retry_after[32];    /* seconds, "" when absent */
} mn_error;

void mn_error_clear(mn_error *e);
int mn_error_is_set(const mn_error *e);

/* Sets status/type/param/code (NULL or "" = null) and a printf-style message.
 * Returns -1 so callers can `return mn_error_set(...)`. */
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
