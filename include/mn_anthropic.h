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
 *   anthropic_output.c    what a model takes (thinking form, effort levels,
 *                         structured outputs), reasoning_effort mapped onto
 *                         it, response_format (output_config.format with
 *                         the schema rewritten, or the prompt form)
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
/* The same for its text (NULL: not a string). */
const char *mn_an_finish_reason_str(mn_wire_ctx *ctx, const char *stop_reason);

/* What a model takes, from its name (docs/wire-anthropic.md, "Models"). */
typedef struct {
    unsigned adaptive : 1;     /* thinking {type:adaptive} */
    unsigned budget : 1;       /* thinking {type:enabled, budget_tokens} */
    unsigned effort : 1;       /* output_config.effort low/medium/high */
    unsigned effort_max : 1;   /* ... and max */
    unsigned effort_xhigh : 1; /* ... and xhigh */
    unsigned format : 1;       /* output_config.format (structured outputs) */
    unsigned no_sampling : 1;  /* temperature, top_p, top_k are a 400 (4.7 and later) */
    unsigned one_sampler : 1;  /* temperature and top_p together are a 400 (4.1, 4.5, 4.6) */
} mn_an_caps;

/* A provider's thinking= option: the model table (auto), or one form for
 * every model (names the table cannot know: proxies, new releases). */
enum { MN_AN_THINKING_AUTO = 0, MN_AN_THINKING_ADAPTIVE, MN_AN_THINKING_BUDGET };

void mn_an_model_caps(const char *model, int thinking, mn_an_caps *caps);

/* reasoning_effort for a model: thinking {type:adaptive} (adaptive set),
 * or {type:enabled, budget_tokens: budget} (budget > 0); effort: the
 * output_config.effort level, or NULL. */
typedef struct {
    int adaptive;
    long budget;
    const char *effort;
} mn_an_reasoning_out;

/* 0, or -1 with err (400 on reasoning_effort) for a value OpenAI lacks. */
int mn_an_reasoning(const mn_an_caps *caps, json_t *effort, mn_an_reasoning_out *out,
                    mn_error *err);

/* A JSON Schema in the subset output_config.format takes (new reference),
 * or NULL when it cannot be expressed (no type, type lists, too deep). */
json_t *mn_an_strict_schema(json_t *schema);

/* Sets output_config.<key> (value stolen), creating *oc on first use:
 * output_config is sent only when something goes into it. */
void mn_an_oc_set(json_t **oc, const char *key, json_t *value);

/* response_format: json_schema as output_config.format (into *oc) on the
 * models with structured outputs when the schema fits the subset; else
 * (json_object, other models and schemas) one more system text block
 * appended to `system`.  0, or -1 with err (400 naming the member). */
int mn_an_response_format(const mn_an_caps *caps, json_t *rf, json_t *system, json_t **oc,
                          mn_error *err);

/* The vtable's entries (mn_wire). */
int mn_an_decode_response(mn_wire_ctx *ctx, const char *body, size_t len,
                          json_t **out, mn_usage *usage, mn_error *err);
/* The same as the client's bytes (from ctx->pool): the common answer (text
 * blocks only) is read by mn_jscan and written by mn_chunk_completion,
 * anything else is mn_an_decode_response's tree dumped compact; the bytes,
 * usage, notes and errors are the same either way. */
int mn_an_decode_response_bytes(mn_wire_ctx *ctx, const char *body, size_t len,
                                const char **out, size_t *out_len, mn_usage *usage,
                                mn_error *err);
/* The byte path alone: 1 with *out, *out_len and usage set, or 0 (nothing
 * set) when the answer is not a common one (the tree path decides). */
int mn_an_answer_fast(mn_wire_ctx *ctx, const char *body, size_t len, const char **out,
                      size_t *out_len, mn_usage *usage);
/* The paths it scans for (for the test that they are what their text
 * compiles to). */
struct mn_jpath;
const struct mn_jpath *mn_an_answer_paths(unsigned *n);
void mn_an_decode_error(mn_wire_ctx *ctx, int status, const char *body,
                        size_t len, const char *retry_after, mn_error *err);
mn_stream *mn_an_stream_create(mn_wire_ctx *ctx);
mn_stream_status mn_an_stream_feed(mn_stream *st, mn_sse_kind kind, const char *event,
                                   const char *data, size_t len, mn_sink *out);
mn_stream_status mn_an_stream_end(mn_stream *st, const mn_error *cause, mn_sink *out);
void mn_an_stream_destroy(mn_stream *st);

#endif
