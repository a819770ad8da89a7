/* mn_agent: reasoning artefacts across tool turns (see mn_agent.h). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <apr_strings.h>
#include "mn_agent.h"
#include "mn_sigid.h"

void mn_agent_gemini_sign_call(apr_pool_t *p, json_t *tc, json_t *part)
{
    json_t *sig = json_object_get(part, "thoughtSignature");
    json_t *id = json_object_get(tc, "id");
    const char *enc;
    if (!json_is_string(sig) || json_string_length(sig) == 0 || !json_is_string(id)) {
        return;
    }
    enc = mn_sigid_encode(p, json_string_value(id), json_string_length(id),
                          json_string_value(sig), json_string_length(sig));
    json_object_set_new(tc, "id", json_string(enc));
    json_object_set_new(tc, "extra_content",
                        json_pack("{s:{s:O}}", "google", "thought_signature", sig));
}

static json_t *extra_signature(json_t *tc)
{
    json_t *g = json_object_get(json_object_get(tc, "extra_content"), "google");
    json_t *s = json_object_get(g, "thought_signature");
    return json_is_string(s) && json_string_length(s) > 0 ? s : NULL;
}

const char *mn_agent_gemini_call_signature(apr_pool_t *p, json_t *tc, size_t j)
{
    json_t *s = extra_signature(tc);
    json_t *id = json_object_get(tc, "id");
    if (s) {
        return apr_pstrmemdup(p, json_string_value(s), json_string_length(s));
    }
    if (json_is_string(id)) {
        const char *call, *sig;
        size_t clen, slen;
        if (mn_sigid_decode(p, json_string_value(id), json_string_length(id), &call, &clen,
                            &sig, &slen) == MN_SIGID_OK) {
            return sig;
        }
    }
    return j == 0 ? MN_SIGID_PLACEHOLDER : NULL;
}

static int is_ours(json_t *id)
{
    return json_is_string(id) && json_string_length(id) >= MN_SIGID_PREFIX_LEN
           && !memcmp(json_string_value(id), MN_SIGID_PREFIX, MN_SIGID_PREFIX_LEN);
}

static json_t *plain_id(apr_pool_t *p, json_t *id)
{
    size_t n;
    const char *s = mn_sigid_plain(p, json_string_value(id), json_string_length(id), &n);
    return json_stringn(s, n);
}

/* A copy of a tool call with the plain id and without our signature. */
static json_t *plain_call(apr_pool_t *p, json_t *tc)
{
    json_t *c = json_copy(tc);
    json_t *extra = json_object_get(tc, "extra_content");
    json_object_set_new(c, "id", plain_id(p, json_object_get(tc, "id")));
    if (json_is_object(extra)) {
        json_t *e = json_deep_copy(extra);
        json_object_del(json_object_get(e, "google"), "thought_signature");
        if (json_object_size(json_object_get(e, "google")) == 0) {
            json_object_del(e, "google");
        }
        if (json_object_size(e) == 0) {
            json_object_del(c, "extra_content");
            json_decref(e);
        }
        else {
            json_object_set_new(c, "extra_content", e);
        }
    }
    return c;
}

/* The message made plain (new reference), or NULL when it has nothing of ours. */
static json_t *plain_message(apr_pool_t *p, json_t *m)
{
    json_t *calls = json_object_get(m, "tool_calls");
    json_t *tcid = json_object_get(m, "tool_call_id");
    json_t *copy = NULL;
    size_t j;
    json_t *tc;
    if (is_ours(tcid)) {
        copy = json_copy(m);
        json_object_set_new(copy, "tool_call_id", plain_id(p, tcid));
    }
    json_array_foreach(calls, j, tc) {
        if (is_ours(json_object_get(tc, "id"))) {
            json_t *nc = json_array();
            size_t k;
            json_t *t;
            json_array_foreach(calls, k, t) {
                json_array_append_new(nc, is_ours(json_object_get(t, "id")) ? plain_call(p, t)
                                                                          : json_incref(t));
            }
            if (!copy) {
                copy = json_copy(m);
            }
            json_object_set_new(copy, "tool_calls", nc);
            break;
        }
    }
    return copy;
}

json_t *mn_agent_plain_messages(apr_pool_t *p, json_t *messages)
{
    json_t *out = NULL;
    size_t i;
    json_t *m;
    json_array_foreach(messages, i, m) {
        json_t *pm = plain_message(p, m);
        if (pm && !out) {
            size_t k;
            out = json_array();
            for (k = 0; k < i; k++) {
                json_array_append(out, json_array_get(messages, k));
            }
        }
        if (out) {
            json_array_append_new(out, pm ? pm : json_incref(m));
        }
    }
    return out;
}

json_t *mn_agent_thinking_block(json_t *block)
{
    const char *t = json_string_value(json_object_get(block, "type"));
    if (!t) {
        return NULL;
    }
    if (!strcmp(t, "thinking") && json_is_string(json_object_get(block, "signature"))) {
        json_t *text = json_object_get(block, "thinking");
        return json_pack("{s:s,s:o,s:O}", "type", "thinking",
                         "thinking", json_is_string(text) ? json_incref(text) : json_string(""),
                         "signature", json_object_get(block, "signature"));
    }
    if (!strcmp(t, "redacted_thinking") && json_is_string(json_object_get(block, "data"))) {
        return json_pack("{s:s,s:O}", "type", "redacted_thinking",
                         "data", json_object_get(block, "data"));
    }
    return NULL;
}

static int bad_blocks(mn_error *err, size_t mi, long j, const char *why)
{
    char param[96];
    if (j < 0) {
        snprintf(param, sizeof(param), "messages[%zu].thinking_blocks", mi);
    }
    else {
        snprintf(param, sizeof(param), "messages[%zu].thinking_blocks[%ld]", mi, j);
    }
    return mn_error_set(err, 400, "invalid_request_error", param, NULL, "%s", why);
}

int mn_agent_thinking_to_anthropic(json_t *msg, size_t mi, json_t *content, mn_error *err)
{
    json_t *blocks = json_object_get(msg, "thinking_blocks");
    size_t j;
    json_t *b;
    if (!blocks || json_is_null(blocks)) {
        return 0;
    }
    if (!json_is_array(blocks)) {
        return bad_blocks(err, mi, -1, "must be an array");
    }
    json_array_foreach(blocks, j, b) {
        json_t *nb = mn_agent_thinking_block(b);
        if (!nb) {
            return bad_blocks(err, mi, (long)j, "must be {type:\"thinking\", thinking, signature} "
                                                "or {type:\"redacted_thinking\", data}");
        }
        json_array_append_new(content, nb);
    }
    return 0;
}

static int has_thinking_blocks(json_t *m)
{
    json_t *b = json_object_get(m, "thinking_blocks");
    size_t j;
    json_t *x;
    json_array_foreach(b, j, x) {
        json_t *nb = mn_agent_thinking_block(x);
        if (nb) {
            json_decref(nb);
            return 1;
        }
    }
    return 0;
}

int mn_agent_thinking_missing(json_t *messages)
{
    size_t i, start = 0;
    json_t *m;
    json_array_foreach(messages, i, m) {
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && !strcmp(role, "user")) {
            start = i + 1;
        }
    }
    for (i = start; i < json_array_size(messages); i++) {
        m = json_array_get(messages, i);
        const char *role = json_string_value(json_object_get(m, "role"));
        if (role && !strcmp(role, "assistant") && json_array_size(json_object_get(m, "tool_calls"))
            && !has_thinking_blocks(m)) {
            return 1;
        }
    }
    return 0;
}

int mn_agent_gemini_levels(const char *model)
{
    long major;
    if (!model) {
        return 0;
    }
    if (!strncmp(model, "models/", 7)) {
        model += 7;
    }
    if (strncmp(model, "gemini-", 7) || model[7] < '0' || model[7] > '9') {
        return 0;
    }
    major = strtol(model + 7, NULL, 10);
    return major >= 3;
}

static const char *const efforts[] = { "none", "minimal", "low", "medium", "high", "xhigh", "max" };

int mn_agent_gemini_effort(const char *model, const char *effort, json_t *thinking_config)
{
    static const int budgets[] = { 0, 512, 1024, 8192, 24576, 24576, 24576 };
    static const char *const flash[] = { "minimal", "minimal", "low", "medium", "high", "high",
                                         "high" };
    static const char *const other[] = { "low", "low", "low", "high", "high", "high", "high" };
    size_t i;
    for (i = 0; i < sizeof(efforts) / sizeof(efforts[0]); i++) {
        if (!strcmp(effort, efforts[i])) {
            break;
        }
    }
    if (i == sizeof(efforts) / sizeof(efforts[0])) {
        return -1;
    }
    if (mn_agent_gemini_levels(model)) {
        json_object_set_new(thinking_config, "thinkingLevel",
                            json_string(strstr(model, "flash") ? flash[i] : other[i]));
    }
    else {
        json_object_set_new(thinking_config, "thinkingBudget", json_integer(budgets[i]));
    }
    return 0;
}

void mn_agent_acc_init(mn_agent_thinking_acc *a)
{
    mn_buf_init(&a->text);
    mn_buf_init(&a->sig);
    a->open = 0;
    a->pending = NULL;
}

static void acc_push(mn_agent_thinking_acc *a, json_t *block)
{
    if (!a->pending) {
        a->pending = json_array();
    }
    json_array_append_new(a->pending, block);
}

static void append_string(mn_buf *b, json_t *s)
{
    if (json_is_string(s)) {
        mn_buf_append(b, json_string_value(s), json_string_length(s));
    }
}

void mn_agent_acc_start(mn_agent_thinking_acc *a, json_t *cb)
{
    const char *t = json_string_value(json_object_get(cb, "type"));
    json_t *nb;
    if (!t) {
        return;
    }
    if (!strcmp(t, "thinking")) {
        mn_buf_reset(&a->text);
        mn_buf_reset(&a->sig);
        append_string(&a->text, json_object_get(cb, "thinking"));
        append_string(&a->sig, json_object_get(cb, "signature"));
        a->open = 1;
    }
    else if (!strcmp(t, "redacted_thinking") && (nb = mn_agent_thinking_block(cb)) != NULL) {
        acc_push(a, nb);
    }
}

void mn_agent_acc_delta(mn_agent_thinking_acc *a, json_t *delta)
{
    const char *t = json_string_value(json_object_get(delta, "type"));
    if (!a->open || !t) {
        return;
    }
    if (!strcmp(t, "thinking_delta")) {
        append_string(&a->text, json_object_get(delta, "thinking"));
    }
    else if (!strcmp(t, "signature_delta")) {
        append_string(&a->sig, json_object_get(delta, "signature"));
    }
}

void mn_agent_acc_stop(mn_agent_thinking_acc *a)
{
    if (!a->open) {
        return;
    }
    a->open = 0;
    /* unsigned thinking cannot be sent back: nothing to keep */
    if (a->sig.len) {
        acc_push(a, json_pack("{s:s,s:s%,s:s%}", "type", "thinking",
                              "thinking", a->text.data ? a->text.data : "", a->text.len,
                              "signature", a->sig.data, a->sig.len));
    }
    mn_buf_reset(&a->text);
    mn_buf_reset(&a->sig);
}

json_t *mn_agent_acc_take(mn_agent_thinking_acc *a)
{
    json_t *p = a->pending;
    a->pending = NULL;
    return p;
}

void mn_agent_acc_free(mn_agent_thinking_acc *a)
{
    mn_buf_free(&a->text);
    mn_buf_free(&a->sig);
    json_decref(a->pending);
    a->pending = NULL;
}

void mn_agent_unknown_finish(mn_wire_ctx *ctx, const char *raw)
{
    char buf[65];
    size_t i;
    if (!raw) {
        return;
    }
    for (i = 0; i < sizeof(buf) - 1 && raw[i]; i++) {
        char c = raw[i];
        if (!((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9')
              || c == '_' || c == '.' || c == '-')) {
            break;
        }
        buf[i] = c;
    }
    ctx->unknown_finish = raw[i] || i == 0 ? "?" : apr_pstrmemdup(ctx->pool, buf, i);
}
