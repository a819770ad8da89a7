/* mn_wire: the contract every wire format implements.
 *
 * A wire format turns a policy-checked OpenAI request into the provider's
 * request (path, headers, body), the provider's non-streaming answer or error
 * into OpenAI JSON, and the provider's SSE events into OpenAI
 * chat.completion.chunk frames.  src/wire/ holds one unit per format and
 * direction (openai.c, anthropic_{request,response,stream}.c,
 * gemini_{request,schema,response,stream}.c); none includes httpd headers.
 *
 * Streaming translators are state machines fed one parsed SSE event (or raw
 * line) at a time; they write complete frames into a sink and end every
 * response with `data: [DONE]`, after an error frame when the upstream fails. */
#ifndef MN_WIRE_H
#define MN_WIRE_H

#include <apr_pools.h>
#include <apr_tables.h>
#include <jansson.h>
#include "mn_buf.h"
#include "mn_error.h"
#include "mn_providers.h"
#include "mn_sse.h"

/* Token counts as the upstream reported them.  prompt_tokens includes the
 * cached and cache-write tokens (OpenAI's convention); completion_tokens
 * includes the reasoning tokens.  Counts are clamped to [0, LONG_MAX]: an
 * upstream's absurd number saturates rather than wraps. */
typedef struct mn_usage {
    int have;                /* usage was seen */
    long prompt_tokens;
    long completion_tokens;
    long total_tokens;
    long cached_tokens;      /* prompt tokens read from a cache */
    long cache_write_tokens; /* prompt tokens written to a cache (Anthropic) */
    long reasoning_tokens;   /* completion tokens spent thinking */
} mn_usage;

/* A JSON token count as a usage count: non-integers and negatives are 0,
 * values past LONG_MAX are LONG_MAX. */
long mn_usage_count(json_t *v);
/* a + b for counts, saturating at LONG_MAX. */
long mn_usage_add(long a, long b);

/* What a translation needs to know about the request being served. */
typedef struct mn_wire_ctx {
    apr_pool_t *pool;            /* request pool */
    const mn_provider *provider;
    const char *provider_name;   /* value of the "provider" field we add */
    const char *model;           /* upstream model (client model after prefix) */
    int stream;                  /* client asked for a stream */
    int include_usage;           /* client asked for the usage chunk */
    long created;                /* gateway clock for `created` (unix s) */
    apr_table_t *client_headers; /* client request headers (read-only) */
    int max_schema_expansion;    /* ManiacMaxSchemaExpansion; 0: the default (8) */
    json_t *face_body;           /* Messages face: the client's own body (borrowed), else NULL */
    const char *dropped;         /* set by encode_request: what it had to leave out for
                                  * this target (comma list for maniac-dropped), or NULL */
    const char *unknown_finish;  /* set by the decoders: an upstream stop reason they do
                                  * not know (answered as stop), for maniac-upstream-finish */
} mn_wire_ctx;

/* The request to send upstream. */
typedef struct mn_upstream_req {
    const char *path;        /* appended to the provider's base path, starts with '/' */
    apr_table_t *headers;    /* headers to send (auth, version...) */
    char *body;              /* allocated from ctx->pool */
    size_t body_len;
} mn_upstream_req;

typedef enum {
    MN_STREAM_MORE = 0,      /* keep feeding */
    MN_STREAM_DONE = 1,      /* finished cleanly; [DONE] written */
    MN_STREAM_FAILED = 2     /* error frame and [DONE] written */
} mn_stream_status;

typedef struct mn_stream mn_stream;   /* per-format state, opaque */

typedef struct mn_wire {
    const char *name;

    /* req: the client body after policy (extensions removed, model intact).
     * The same req is encoded again for each retry and fallback target, so an
     * encoder may only overwrite members it alone reads and that every
     * encoder takes from ctx instead (model, stream_options).
     * Returns 0, or -1 with err (400 naming the param for untranslatable input). */
    int (*encode_request)(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out,
                          mn_error *err);

    /* A 2xx non-streaming body -> OpenAI chat.completion with "provider".
     * Returns 0 with *out (new reference) and usage filled, or -1 with err
     * (502 when the body is not what the format promises). */
    int (*decode_response)(mn_wire_ctx *ctx, const char *body, size_t len,
                           json_t **out, mn_usage *usage, mn_error *err);

    /* A non-2xx upstream answer -> err (status kept, OpenAI shape).
     * retry_after: the upstream's Retry-After header or NULL. */
    void (*decode_error)(mn_wire_ctx *ctx, int status, const char *body,
                         size_t len, const char *retry_after, mn_error *err);

    /* Streaming. */
    mn_stream *(*stream_create)(mn_wire_ctx *ctx);
    mn_stream_status (*stream_feed)(mn_stream *st, mn_sse_kind kind,
                                    const char *event, const char *data,
                                    size_t len, mn_sink *out);
    /* Upstream EOF (or failure): finishes the response.  cause, when not NULL,
     * says why the stream is ending early (reset, timeout) and becomes the
     * error frame; a stream that is already DONE/FAILED writes nothing. */
    mn_stream_status (*stream_end)(mn_stream *st, const mn_error *cause,
                                   mn_sink *out);
    /* Usage seen so far, and the error that ended the stream (or NULL). */
    const mn_usage *(*stream_usage)(mn_stream *st);
    const mn_error *(*stream_error)(mn_stream *st);
    void (*stream_destroy)(mn_stream *st);

    /* Optional: decode_response for formats whose answer already is OpenAI
     * JSON, giving the bytes for the client (from ctx->pool) instead of a
     * tree to serialise.  NULL: the glue uses decode_response. */
    int (*decode_response_bytes)(mn_wire_ctx *ctx, const char *body, size_t len,
                                 const char **out, size_t *out_len, mn_usage *usage,
                                 mn_error *err);
} mn_wire;

/* What every stream translator keeps; it is the first member of each
 * format's struct mn_stream, so the shared helpers below work on any. */
typedef struct mn_stream_base {
    mn_wire_ctx *ctx;
    mn_stream_status status;
    mn_usage usage;
    mn_error err;            /* why the stream failed, once FAILED */
} mn_stream_base;

/* Ends the stream with base->err (keys scrubbed) as the terminal error frame
 * and [DONE]; the status is FAILED before those frames are written, so
 * stream_error() already answers while they go through the sink. */
mn_stream_status mn_stream_fail(mn_stream_base *b, mn_sink *out);

/* stream_end for formats that mark their clean end with an event (`what`,
 * e.g. "[DONE]"): reaching the end without it is an error. */
mn_stream_status mn_stream_end_without(mn_stream_base *b, const mn_error *cause,
                                       const char *what, mn_sink *out);

/* stream_usage / stream_error for any translator built on mn_stream_base. */
const mn_usage *mn_stream_base_usage(mn_stream *st);
const mn_error *mn_stream_base_error(mn_stream *st);

/* RFC 2397 data: URL with a base64 payload, data:<type>[;param]*;base64,<data>:
 * the media type (lower-cased, into mime) and the payload.  Returns 0, or -1
 * with *why saying what is wrong. */
int mn_data_url(const char *url, char *mime, size_t mime_size, const char **payload,
                const char **why);

const mn_wire *mn_wire_for(mn_format f);

extern const mn_wire mn_wire_openai;
extern const mn_wire mn_wire_anthropic;
extern const mn_wire mn_wire_gemini;

/* Shared helpers for the translators. */
/* Usage from an OpenAI `usage` object (missing members count as 0). */
void mn_usage_from_openai(mn_usage *u, json_t *usage);
/* OpenAI `usage` object from counts. New reference. */
json_t *mn_usage_to_openai(const mn_usage *u);

/* The upstream's Retry-After (seconds, fractions, an HTTP-date, or junk)
 * into err as whole delta-seconds for the client, capped; junk is dropped. */
void mn_wire_retry_after(const mn_wire_ctx *ctx, const char *raw, mn_error *err);

/* An upstream request body: Jansson's compact dump of j written straight
 * into the pool (json_dumps grows a malloc'd buffer by doubling and the
 * caller copied it once more).  NUL-terminated, its length in *len; NULL
 * when Jansson refuses the tree. */
char *mn_wire_dump(apr_pool_t *p, json_t *j, size_t *len);

/* An answer's tree (consumed) as the bytes the client gets, compact, in the
 * pool: for decode_response_bytes when the byte path cannot take it.  0, or
 * -1 with a 502 upstream_bad_response when Jansson refuses the tree. */
int mn_wire_answer_dump(mn_wire_ctx *ctx, json_t *tree, const char **out, size_t *out_len,
                        mn_error *err);

/* A passthrough's upstream body: body (the caller's copy of the client's,
 * consumed) with the routed model and the stream flag as served, written
 * to out->body / body_len.  0, or -1 with err. */
int mn_wire_pass_body(mn_wire_ctx *ctx, json_t *body, mn_upstream_req *out, mn_error *err);
/* The same with prompt_tokens_details.cached_tokens, and
 * completion_tokens_details.reasoning_tokens when the upstream counted them. */
json_t *mn_usage_to_openai_details(const mn_usage *u, int have_reasoning);

#endif
