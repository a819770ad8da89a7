/* mn_face_messages: the Anthropic Messages face (POST /v1/messages).
 *
 * An inbound face, not a second gateway: the client's Anthropic request is
 * mapped into the OpenAI chat request every other unit already takes
 * (policy, routing, failover, the outbound wire units), and what the
 * pipeline answers -- an OpenAI chat.completion, chat.completion.chunk
 * frames, an mn_error -- is mapped back into Anthropic's message, its SSE
 * event sequence and its error shape.  Every object the client gets carries
 * the "provider" member, as on the chat route.
 *
 * To an Anthropic upstream the face is a near-passthrough instead
 * (mn_wire_anthropic_passthrough): the client's own body goes upstream with
 * only `model` replaced, and the upstream's answer and events come back
 * byte for byte except for the added "provider", so thinking blocks,
 * signatures, cache_control and anthropic-beta features survive.
 *
 * Pure: no httpd header. */
#ifndef MN_FACE_MESSAGES_H
#define MN_FACE_MESSAGES_H

#include <jansson.h>
#include "mn_buf.h"
#include "mn_error.h"
#include "mn_wire.h"

/* Which Messages path a request URI (no query string) is: 0 none,
 * MN_FM_PATH_MESSAGES for .../messages, MN_FM_PATH_COUNT for
 * .../messages/count_tokens. */
#define MN_FM_PATH_MESSAGES 1
#define MN_FM_PATH_COUNT 2
int mn_fm_path(const char *uri);

/* What the request mapping learned on the way. */
typedef struct mn_fm_info {
    int stream;              /* client asked for a stream */
    char dropped[256];       /* Anthropic members with no chat analogue, comma list */
} mn_fm_info;

/* Anthropic Messages request -> OpenAI chat request (new reference in *out).
 * Returns 0, or -1 with err (400, param naming the Anthropic field). */
int mn_fm_request(json_t *in, json_t **out, mn_fm_info *info, mn_error *err);

/* OpenAI chat.completion -> Anthropic message (new reference).  u: the
 * usage the wire unit decoded (it knows cache writes, which the OpenAI JSON
 * does not carry); NULL takes the answer's own usage. */
json_t *mn_fm_response(json_t *chat, const mn_usage *u);

/* Anthropic's error type for an error the pipeline produced, and the body
 * {"type":"error","error":{"type","message"},"provider"?} (new reference). */
const char *mn_fm_error_type(const mn_error *e);
json_t *mn_fm_error_json(const mn_error *e, const char *provider);
/* The same as one `event: error` frame. */
void mn_fm_error_event(mn_sink *out, const mn_error *e, const char *provider);

/* Stream translator: a sink that takes the OpenAI frames the pipeline
 * writes (`data: {chunk}`, an error frame, `data: [DONE]`, one per frame
 * end) and writes Anthropic events into down.  A frame longer than
 * max_frame ends the stream with an error event; memory stays bounded. */
typedef struct mn_fm_stream mn_fm_stream;

mn_fm_stream *mn_fm_stream_create(mn_sink *down, size_t max_frame);
mn_sink mn_fm_stream_sink(mn_fm_stream *s);
/* The provider the events name until a frame names one: a try whose
 * upstream sent no chunk at all still says whose it was. */
void mn_fm_stream_provider(mn_fm_stream *s, const char *provider);
/* The OpenAI side ended without [DONE] or an error frame (the glue gave up):
 * ends the Anthropic stream with an error event unless it already ended. */
void mn_fm_stream_finish(mn_fm_stream *s, const mn_error *cause, const char *provider);
/* 1 once message_stop or an error event was written. */
int mn_fm_stream_ended(const mn_fm_stream *s);
void mn_fm_stream_destroy(mn_fm_stream *s);

/* 1 (the default): the common stream frames of both Messages stream paths
 * (the translator above and the passthrough wire below) take a hot path
 * that reads them with mn_jscan and writes the same bytes the Jansson path
 * would; 0 sends every frame through Jansson (the differential tests
 * compare the two). */
extern int mn_fm_fast_paths;

/* Shared by the face's files: finish_reason -> stop_reason, and counts ->
 * Anthropic's usage object (new reference). */
const char *mn_fm_stop_reason(const char *finish_reason);
json_t *mn_fm_usage_json(const mn_usage *u);

/* POST /v1/messages/count_tokens: a documented estimate, {"input_tokens":N}:
 * one token per 4 bytes of the compact JSON of system, messages and tools,
 * rounded up.  Returns -1 with err when the body is not a Messages request. */
int mn_fm_count_tokens(json_t *in, long *tokens, mn_error *err);

/* The Anthropic upstream format, forwarding the client's Messages body
 * (ctx->face_body) with only `model` replaced; answers and events keep the
 * upstream's bytes, with "provider" added. */
extern const mn_wire mn_wire_anthropic_passthrough;

#endif
