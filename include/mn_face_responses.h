/* mn_face_responses: the OpenAI Responses API (POST /v1/responses) as an
 * inbound face of the one pipeline.
 *
 * The face never talks to an upstream.  It maps a stateless Responses request
 * (store: false, the whole history in `input`, as Codex sends it) into the
 * OpenAI chat request the policy, routing, failover and the outbound wire
 * units already take, and maps what those produce (a chat.completion, the
 * chat.completion.chunk frames a stream translator writes into a sink, an
 * mn_error) back into a Response object, the Responses event sequence and
 * Responses errors.  Errors before the first byte keep the chat route's JSON
 * shape, which is also the Responses API's.
 *
 * Reasoning: thinking text (reasoning_content) becomes a `reasoning` item's
 * summary.  Signed thinking the pipeline carries (message.thinking_blocks, as
 * the Anthropic translator gives them) rides opaquely in the item's
 * `encrypted_content` ("mnr1:" + the blocks' JSON, not encrypted by us: the
 * upstream's signature protects it) and goes back, as thinking_blocks of the
 * next assistant message, when the client replays the item.  A reasoning item
 * without such content (the upstream gave no signature, or it came from
 * elsewhere) cannot be replayed to any upstream: it is dropped and noted. */
#ifndef MN_FACE_RESPONSES_H
#define MN_FACE_RESPONSES_H

#include <stddef.h>
#include <apr_pools.h>
#include <jansson.h>
#include "mn_buf.h"
#include "mn_error.h"
#include "mn_wire.h"

#define MN_RESP_MAX_DROPPED 16

/* A Responses request, mapped. */
typedef struct mn_resp_req {
    json_t *chat;          /* the chat request (new reference) */
    json_t *echo;          /* what the Response object repeats of the request (new reference) */
    int stream;            /* stream: true */
    const char *dropped[MN_RESP_MAX_DROPPED];  /* what had no chat analogue, in order */
    int ndropped;
} mn_resp_req;

/* Maps the client body into out.  Returns 0, or -1 with err (400,
 * invalid_request_error, param naming the field: previous_response_id,
 * store: true, conversation, prompt, background: true, item_reference,
 * wrong types).  Names in out->dropped live in p or are static. */
int mn_resp_request(apr_pool_t *p, json_t *in, mn_resp_req *out, mn_error *err);

/* flags for mn_resp_request_ex */
/* Every target forwards the request to an upstream that speaks Responses
 * (mn_wire_openai_responses), which keeps the state: previous_response_id,
 * store: true, conversation, prompt and item_reference items are accepted
 * (item_reference is left out of the chat mapping, which then only serves
 * routing, policy and limits).  background: true stays a 400: its answer
 * is fetched with GET /v1/responses/{id}, which the gateway does not serve. */
#define MN_RESP_STATEFUL 1
int mn_resp_request_ex(apr_pool_t *p, json_t *in, int flags, mn_resp_req *out, mn_error *err);
void mn_resp_req_clear(mn_resp_req *r);

/* What the answer side needs. */
typedef struct mn_resp_ctx {
    const char *id;        /* unique: resp_<id>, msg_<id>_<n>, fc_<id>_<n>, rs_<id>_<n> */
    long created_at;       /* unix seconds */
    const char *provider;  /* the "provider" member, NULL for none */
    json_t *echo;          /* borrowed: mn_resp_req.echo */
    size_t max_held;       /* text a stream may hold for its done events; 0: 16 MiB */
} mn_resp_ctx;

/* A chat.completion -> a Response object (with "provider").  New reference,
 * or NULL with err (502 upstream_bad_response) when it has no choice. */
json_t *mn_resp_from_chat(const mn_resp_ctx *c, json_t *completion, mn_error *err);

/* The Response object without output, for a status ("in_progress",
 * "completed", "failed", "incomplete").  New reference. */
json_t *mn_resp_object(const mn_resp_ctx *c, const char *status);

/* Usage in the Responses shape.  New reference. */
json_t *mn_resp_usage(const mn_usage *u);

/* Output items, shared by the whole and the streamed answer.  New references;
 * json_t arguments are borrowed. */
void mn_resp_item_id(const mn_resp_ctx *c, const char *prefix, int n, char *buf, size_t size);
json_t *mn_resp_text_part(const char *text, size_t len);
json_t *mn_resp_message_item(const char *id, const char *status, json_t *parts);
json_t *mn_resp_call_item(const char *id, const char *status, const char *args, size_t len,
                          json_t *call_id, json_t *name);
/* blocks: thinking_blocks for encrypted_content, or NULL/empty for none. */
json_t *mn_resp_reasoning_item(const char *id, const char *summary, size_t len, json_t *blocks);
/* "mnr1:" + compact JSON of blocks (new reference), and back (NULL when
 * enc is not ours or not an array). */
#define MN_RESP_ENC_PREFIX "mnr1:"
json_t *mn_resp_encode_blocks(json_t *blocks);
json_t *mn_resp_decode_blocks(const char *enc);

/* Streaming: a state machine behind a sink.  The chat translator writes its
 * chunk frames (`data: {...}` + frame end, then `data: [DONE]`) into
 * mn_resp_stream_sink(); each becomes zero or more Responses events
 * (`event: <type>\ndata: {...}\n\n`, one frame end each) in out.
 * response.created and response.in_progress go out with the first chunk.
 * An error frame before that writes nothing (the glue answers a JSON error or
 * tries the next target); after it, response.failed and an `error` event. */
typedef struct mn_resp_stream mn_resp_stream;

typedef enum {
    MN_RESP_MORE = 0,      /* waiting for frames */
    MN_RESP_DONE = 1,      /* response.completed / response.incomplete written */
    MN_RESP_FAILED = 2     /* ended by an error (see mn_resp_stream_error) */
} mn_resp_status;

/* NULL when memory is exhausted.  c and out must outlive the stream. */
mn_resp_stream *mn_resp_stream_create(const mn_resp_ctx *c, mn_sink *out);
mn_sink mn_resp_stream_sink(mn_resp_stream *s);
mn_resp_status mn_resp_stream_status(const mn_resp_stream *s);
/* Whether response.created has been written. */
int mn_resp_stream_started(const mn_resp_stream *s);
/* The error that ended the stream, or NULL. */
const mn_error *mn_resp_stream_error(const mn_resp_stream *s);
/* Events written so far. */
long mn_resp_stream_events(const mn_resp_stream *s);
void mn_resp_stream_destroy(mn_resp_stream *s);

/* The passthrough (src/wire/face_responses_pass.c): an OpenAI-format
 * upstream that speaks the Responses API itself (ManiacProvider
 * responses=on) gets the client's own Responses body (ctx->face_body) at
 * {base}/responses, with `model` replaced by the routed upstream model, the
 * gateway's fields (tags, metadata, trace) taken out, and an absent `store`
 * sent as false (the face's contract: nothing is kept unless asked).  The
 * answer and every event keep the upstream's bytes; "provider" is inserted
 * as the first member of the Response object (the whole answer, and the
 * `response` of response.created / in_progress / completed / failed /
 * incomplete events).  Usage is read from the Response for the notes;
 * errors are OpenAI's shape (the chat decoder's).  A stream that ends
 * without response.completed / incomplete / failed gets response.failed
 * and an `error` event, numbered on from the upstream's sequence_number;
 * keys the upstream quotes in its error and response.failed events are
 * replaced by "***". */
extern const mn_wire mn_wire_openai_responses;

/* Responses `usage` (input_tokens, output_tokens, total_tokens and their
 * details) into u; u->have once an object was seen. */
void mn_resp_usage_read(mn_usage *u, json_t *usage);

#endif
