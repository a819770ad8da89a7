/* mn_gemini: what the Gemini wire units share, and nothing else includes.
 *
 * The Gemini translation is one unit per direction (mapping decisions in
 * docs/wire-gemini.md):
 *   gemini_request.c   OpenAI request -> generateContent body and path; the
 *                      mn_wire_gemini vtable
 *   gemini_schema.c    JSON Schema -> Gemini Schema ($ref inlining under a
 *                      budget, allOf merge, keyword filtering)
 *   gemini_response.c  non-streaming answers and upstream errors, and the
 *                      pieces of an answer the stream also builds (usage,
 *                      finish reason, tool calls, ids)
 *   gemini_stream.c    the stream translator
 * Pure (APR + Jansson); no httpd header. */
#ifndef MN_GEMINI_H
#define MN_GEMINI_H

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include "mn_wire.h"

/* ---------------------------------------------------------------- helpers */

/* the one "bad param" 400 (src/core/error.c) */
#define bad_param mn_error_bad_param

/* ASCII-only classes: <ctype.h> answers per locale, the wire is ASCII. */
static inline int a_digit(int c)
{
    return c >= '0' && c <= '9';
}

static inline int a_alnum(int c)
{
    return a_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
}

static inline int a_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* ASCII case-insensitive compare of n bytes (strncasecmp is POSIX, not C11). */
static inline int ci_neq(const char *a, const char *b, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++) {
        if (a_lower((unsigned char)a[i]) != a_lower((unsigned char)b[i])) {
            return 1;
        }
        if (!a[i]) {
            return 0;
        }
    }
    return 0;
}

static inline int has_prefix_ci(const char *s, const char *prefix)
{
    return ci_neq(s, prefix, strlen(prefix)) == 0;
}

static inline int in_list(const char *s, const char *const *list)
{
    for (; *list; list++) {
        if (!strcmp(s, *list)) {
            return 1;
        }
    }
    return 0;
}

/* ----------------------------------------------------------------- schema */

/* What the schemas of one request have cost so far (see gemini_schema.c). */
typedef struct schema_budget {
    size_t used;            /* charged by the schemas of this request so far */
    size_t in_total;        /* their own sizes */
    int factor;             /* mn_wire_ctx.max_schema_expansion; 0: the default */
} schema_budget;

/* A whole schema (tool parameters, response schema) under the request's
 * budget.  NULL with err set (a 400 naming param) when it cannot be
 * expressed or is too big. */
json_t *mn_gm_schema_clean(json_t *schema, const char *param, schema_budget *b,
                           mn_error *err);

/* Compact-JSON size estimate of v, stopping once it passes limit. */
size_t mn_gm_est_size(json_t *v, size_t limit);

/* -------------------------------------------------- answers and streams */

/* Counts are longs in [0, LONG_MAX]: a negative count from the upstream
 * reads as 0, a larger one and every sum saturate at LONG_MAX, so no total
 * wraps negative on the way to the client or the accounting. */
typedef struct gm_usage {
    int have;
    int have_thoughts;
    long prompt, tool_prompt, candidates, thoughts, total, cached;
    int have_total;
} gm_usage;

/* Fills e from a Gemini error body ({"error":{code,message,status,details}},
 * also inside a one-element array).  http <= 0 takes the status from
 * error.code.  -1 when root is not one. */
int mn_gm_error_from_body(mn_error *e, int http, json_t *root);

/* usageMetadata -> u (replacing it: the last one wins); u -> mn_usage; u ->
 * the OpenAI usage object (new reference). */
void mn_gm_usage_read(gm_usage *u, json_t *um);
void mn_gm_usage_counts(const gm_usage *u, mn_usage *m);
json_t *mn_gm_usage_json(const gm_usage *u);

/* Gemini's finishReason (or NULL) -> OpenAI finish_reason. */
const char *mn_gm_map_finish(mn_wire_ctx *ctx, const char *fr, int saw_tool);
int mn_gm_part_is_thought(json_t *part);
/* Compact JSON of functionCall.args as a JSON string (new reference). */
json_t *mn_gm_args_string(json_t *args);

/* Our id when Gemini gives no responseId; buf holds GM_ID_SIZE bytes. */
#define GM_ID_SIZE 40
void mn_gm_make_response_id(char *buf);

/* A functionCall part with a name is a call; one without never is. */
int mn_gm_has_name(json_t *fc);
/* The OpenAI tool call for fc (which has a name); steals arguments. */
json_t *mn_gm_tool_call_json(json_t *fc, const char *response_id, long n, int with_index,
                             json_t *arguments);

/* ------------------------------------------- the vtable's entries (mn_wire) */

int mn_gm_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                          json_t **out, mn_usage *usage, mn_error *err);
void mn_gm_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                        size_t len, const char *retry_after, mn_error *err);
mn_stream *mn_gm_stream_create(mn_wire_ctx *ctx);
mn_stream_status mn_gm_stream_feed(mn_stream *st, mn_sse_kind kind, const char *event,
                                   const char *data, size_t len, mn_sink *out);
mn_stream_status mn_gm_stream_end(mn_stream *st, const mn_error *cause, mn_sink *out);
void mn_gm_stream_destroy(mn_stream *st);

#endif
