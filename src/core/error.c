/* mn_error: building, normalising and writing OpenAI-shaped errors. */
#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "mn_error.h"
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

int mn_error_set(mn_error *e, int status, const char *type, const char *param,
                 const char *code, const char *fmt, ...)
{
    va_list ap;
    e->status = status;
    copy_str(e->type, sizeof(e->type), type ? type : mn_error_type_for_status(status));
    copy_str(e->param, sizeof(e->param), param);
    copy_str(e->code, sizeof(e->code), code);
    va_start(ap, fmt);
    vsnprintf(e->message, sizeof(e->message), fmt, ap);
    va_end(ap);
    e->retry_after[0] = '\0';
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

static json_t *str_or_null(const char *s)
{
    return (s && *s) ? json_string(s) : json_null();
}

json_t *mn_error_to_json(const mn_error *e, const char *provider)
{
    json_t *inner = json_object();
    json_t *outer = json_object();
    /* json_string rejects invalid UTF-8; an upstream message may carry it */
    json_t *msg = json_string(e->message);
    if (!msg) {
        /* invalid UTF-8 (an upstream's, or quoted from a client's body):
         * keep the ASCII, mask the rest */
        char clean[sizeof(e->message)];
        size_t i;
        for (i = 0; e->message[i] && i + 1 < sizeof(clean); i++) {
            unsigned char ch = (unsigned char)e->message[i];
            clean[i] = ch < 0x80 ? (char)ch : '?';
        }
        clean[i] = '\0';
        msg = json_string(clean);
    }
    json_object_set_new(inner, "message", msg);
    json_object_set_new(inner, "type", json_string(e->type[0] ? e->type : "server_error"));
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

void mn_error_scrub(mn_error *e, const char *secret)
{
    char out[sizeof(e->message)];
    size_t slen, i = 0, o = 0;
    if (!secret || !*secret || !strstr(e->message, secret)) {
        return;
    }
    slen = strlen(secret);
    while (e->message[i] && o + 1 < sizeof(out)) {
        if (!strncmp(e->message + i, secret, slen)) {
            size_t k;
            for (k = 0; k < 3 && o + 1 < sizeof(out); k++) {
                out[o++] = '*';
            }
            i += slen;
        }
        else {
            out[o++] = e->message[i++];
        }
    }
    out[o] = '\0';
    memcpy(e->message, out, o + 1);
}

/* Takes the string member `name` of obj, or the integer as text. */
static void member_text(json_t *obj, const char *name, char *dst, size_t size)
{
    json_t *v = json_object_get(obj, name);
    if (json_is_string(v)) {
        copy_str(dst, size, json_string_value(v));
    }
    else if (json_is_integer(v)) {
        snprintf(dst, size, "%lld", (long long)json_integer_value(v));
    }
    else {
        dst[0] = '\0';
    }
}

void mn_error_from_openai_body(mn_error *e, int status, const char *body, size_t len)
{
    json_t *root = body && len ? json_loadb(body, len, 0, NULL) : NULL;
    json_t *err = json_object_get(root, "error");

    mn_error_clear(e);
    e->status = status;
    if (json_is_object(err)) {
        member_text(err, "message", e->message, sizeof(e->message));
        member_text(err, "type", e->type, sizeof(e->type));
        member_text(err, "param", e->param, sizeof(e->param));
        member_text(err, "code", e->code, sizeof(e->code));
    }
    else if (json_is_string(err)) {
        copy_str(e->message, sizeof(e->message), json_string_value(err));
    }
    else if (json_is_object(root) && json_is_string(json_object_get(root, "message"))) {
        /* vLLM and a few others answer without the {"error":...} wrapper */
        member_text(root, "message", e->message, sizeof(e->message));
        member_text(root, "type", e->type, sizeof(e->type));
        member_text(root, "param", e->param, sizeof(e->param));
        member_text(root, "code", e->code, sizeof(e->code));
    }
    else if (json_is_object(root) && json_is_string(json_object_get(root, "detail"))) {
        member_text(root, "detail", e->message, sizeof(e->message));
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
