/* mn_serve: the request pipeline inside httpd, split along the request's life.
 *
 *   handler.c   intake (CORS, path, method, body, JSON), routing, policy: mn_serve()
 *   failover.c  the attempt loop: breaker, keys, retries, fallback targets,
 *               acting on the pure decision of mn_attempts.h
 *   exchange.c  one try: encode, open the upstream, read its error or its
 *               whole answer, or hand a stream to the relay
 *   relay.c     the stream relay, a state machine
 *   answer.c    the answer writers and the client sink, behind a face
 *
 * A face is how answers reach the client: the OpenAI chat face is the one
 * today; inbound faces for other wire formats (/v1/messages, /v1/responses)
 * bring their own and call mn_serve() with it.  Only httpd glue includes this. */
#ifndef MN_SERVE_H
#define MN_SERVE_H

#include "mod_maniac.h"
#include "mn_limits.h"
#include "mn_policy.h"

typedef struct mn_request mn_request;

/* How the pipeline's answers are written.  Every translator produces the
 * OpenAI shape (a completion object, chunk frames); a face writes it to its
 * client as it likes.  The shared work (notes, scrubbing, Retry-After,
 * metrics) is done before the face is called. */
typedef struct mn_face {
    const char *name;
    /* A whole 2xx answer (an OpenAI chat.completion object). */
    void (*answer_json)(mn_request *req, int status, json_t *body);
    /* The same already serialised (the OpenAI fast path). */
    void (*answer_bytes)(mn_request *req, int status, const char *body, apr_size_t len);
    /* An error before the first byte: e is scrubbed, its notes are set. */
    void (*answer_error)(mn_request *req, const mn_error *e);
    /* The stream's headers, at its first byte. */
    void (*stream_begin)(mn_request *req);
    /* The sink the translators write chunk frames into, given the one that
     * writes to the client (the chat face returns it as it is). */
    mn_sink *(*stream_sink)(mn_request *req, mn_sink *client);
    /* Optional: the wire unit for a try at prov (may set ctx->face_body);
     * NULL: the provider's format's. */
    const mn_wire *(*wire_for)(mn_request *req, const mn_provider *prov, mn_wire_ctx *ctx);
    /* Optional: the face's body -> the OpenAI request, before routing.
     * 0 go on with *body (replaced; the face owns the old one), -1 answer
     * err, 1 the face answered itself. */
    int (*intake)(mn_request *req, json_t **body, mn_error *err);
} mn_face;

/* The OpenAI /v1/chat/completions face. */
extern const mn_face mn_face_chat;
/* The Anthropic /v1/messages face (face_messages.c). */
extern const mn_face mn_face_messages;

struct mn_request {
    request_rec *r;
    const mn_face *face;
    const mn_config *conf;       /* the one place the stages read configuration from */
    const mn_provider *prov;     /* the provider the model names, once known */
    int upstream_status;         /* of the attempt whose answer the client gets */
    int tries;                   /* exchanges with upstreams (retries included) */
    mn_usage usage;
    mn_limits_req *lim;          /* reservation and cost (src/httpd/limits.c) */
};

void mn_request_init(mn_request *req, request_rec *r, const mn_face *face);

/* The pipeline after intake: route the body's model, apply the policy and
 * the limits, try the targets, answer.  Returns the handler's status. */
int mn_serve(mn_request *req, json_t *body, mn_error *err);

/* One try at one target. */
typedef struct mn_attempt {
    const mn_provider *prov;     /* a copy of the provider with this try's key */
    const char *model;
    apr_time_t deadline;         /* total-timeout, 0 = none */
    int probe;                   /* this try is the breaker's probe */
    int upstream_status;
    apr_interval_time_t retry_after;   /* -1 when the upstream gave none */
    apr_pool_t *pool;            /* the try's own: destroyed when it ends, its
                                  * cleanups release what the try held */
} mn_attempt;

/* failover.c: tries the targets in order until one answers; answers. */
int mn_failover(mn_request *req, json_t *body, const mn_policy_result *pol,
                const mn_target *targets, int ntargets, mn_error *err);

/* exchange.c: one try.  1 when the client got its answer, 0 with err set. */
int mn_exchange(mn_request *req, mn_attempt *at, json_t *body, const mn_policy_result *pol,
                mn_error *err);
void mn_wire_ctx_init(mn_wire_ctx *ctx, const mn_request *req, const mn_provider *prov,
                      const char *model, const mn_policy_result *pol);

/* relay.c: a streaming 2xx.  0 when the client got a response (complete, or
 * ended by an error frame after the first byte); -1 with err when the
 * upstream failed before anything was sent.  Releases u on every path. */
int mn_relay(mn_request *req, mn_attempt *at, const mn_wire *wire, mn_wire_ctx *ctx,
             mn_upstream *u, mn_error *err);

/* answer.c */
/* A JSON body with its status (and a status line httpd lacks, e.g. 529). */
void mn_write_json_bytes(request_rec *r, int status, const char *body, apr_size_t len);
int mn_answer_json(mn_request *req, int status, json_t *body);
void mn_answer_bytes(mn_request *req, int status, const char *body, apr_size_t len);
/* The error answer before the first byte; returns OK. */
int mn_answer_error(mn_request *req, mn_error *e);
void mn_answer_notes(mn_request *req, const char *error_type, const char *error_code);
int mn_answer_echo(mn_request *req, mn_wire_ctx *ctx, json_t *body);

/* The client side of a stream: frames pile up in bb and leave with one
 * FLUSH when the relay says so. */
typedef struct mn_client_sink {
    mn_request *req;
    apr_bucket_brigade *bb;
    int frames;              /* frames since the last flush */
    apr_size_t pending;      /* bytes since the last flush */
    int started;             /* the stream's headers are out */
    mn_sink raw;             /* writes into bb */
    mn_sink *out;            /* what translators write into (the face's) */
} mn_client_sink;

void mn_client_sink_init(mn_client_sink *cs, mn_request *req);
/* The stream's headers (once). */
void mn_client_start(mn_client_sink *cs);
/* Starts the stream when needed and passes what is pending with a FLUSH. */
apr_status_t mn_client_flush(mn_client_sink *cs);

#endif
