/* mn_anthropic: what the Anthropic wire units share, and nothing else
 * includes.
 *
 * The Anthropic translation is one unit per direction (mapping decisions in
 * docs/wire-anthropic.md):
 *   anthropic_request.c   OpenAI request -> Messages API body and headers;
 *                         the mn_wire_anthropic vtable
 *   anthropic_response.c  non-streaming answers and upstream errors, and the
 *                         usage and stop-reason mapping the stream also uses
 *   anthropic_stream.c    the stream translator
 * Pure (APR + Jansson); no httpd header. */
#ifndef MN_ANTHROPIC_H
#define MN_ANTHROPIC_H

#include "mn_wire.h"

/* Anthropic usage, kept apart because OpenAI folds the cache counters into
 * prompt_tokens while clients still want cached_tokens on its own. */
typedef struct {
    long in, cache_creation, cache_read, out, thinking;
    int have, have_thinking;
} a_usage;

/* Merges a usage object into u: only what it carries is overwritten
 * (message_delta repeats the input counters, or not at all). */
void mn_an_usage_merge(a_usage *u, json_t *usage);
void mn_an_usage_to_mn(const a_usage *u, mn_usage *m);
/* The OpenAI usage object (new reference). */
json_t *mn_an_usage_to_openai(const a_usage *u);

/* Anthropic stop_reason (a string or NULL) -> OpenAI finish_reason. */
const char *mn_an_finish_reason(mn_wire_ctx *ctx, json_t *stop_reason);

/* The vtable's entries (mn_wire). */
int mn_an_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                          json_t **out, mn_usage *usage, mn_error *err);
void mn_an_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                        size_t len, const char *retry_after, mn_error *err);
mn_stream *mn_an_stream_create(mn_wire_ctx *ctx);
mn_stream_status mn_an_stream_feed(mn_stream *st, mn_sse_kind kind, const char *event,
                                   const char *data, size_t len, mn_sink *out);
mn_stream_status mn_an_stream_end(mn_stream *st, const mn_error *cause, mn_sink *out);
void mn_an_stream_destroy(mn_stream *st);

#endif
