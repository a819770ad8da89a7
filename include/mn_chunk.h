/* mn_chunk: the one writer of OpenAI chat.completion.chunk frames (and the
 * place the gateway's "provider" member is made), shared by every stream
 * translator and by the echo provider.
 *
 * A stream's frames differ only in their choice (delta, finish_reason) or
 * their usage: the bytes around them ({"id":…,"object":…,"created":…,
 * "model":…,"choices": and ,"usage":null,"provider":…}) are serialised once
 * per stream, and a frame is a few copies into the sink.  A text delta whose
 * string is already JSON (a span mn_jscan found in an upstream event) is
 * copied as it is; one held as a Jansson string is encoded by Jansson.  The
 * bytes are exactly those Jansson's compact dump of the same chunk tree
 * gives (id, object, created, model, choices, usage, provider).
 *
 * "provider" is added to completions and chunks in one function,
 * mn_chunk_tag(): trees get it from there, and the byte writers copy the
 * member it produces.  (Error objects, frames and answers alike, get theirs
 * in mn_error_to_json.) */
#ifndef MN_CHUNK_H
#define MN_CHUNK_H

#include <apr_pools.h>
#include <jansson.h>
#include "mn_buf.h"
#include "mn_error.h"

typedef struct mn_chunk {
    char *head;              /* `data: {"id":…,…,"model":…,"choices":`, and on to
                              * `[{"index":0,"delta":{"content":` */
    size_t head_len;         /* up to "choices": */
    size_t content_len;      /* up to "content": */
    char *tail;              /* what follows a content string to the frame's end */
    size_t tail_len;
    const char *provider;    /* `"provider":"name"`, "" when there is no name */
    size_t provider_len;
    char *provider_made;     /* provider when it was not kept (freed with c) */
    int include_usage;       /* frames with choices carry "usage":null */
} mn_chunk;

/* Adds the gateway's "provider" member to obj (replacing an upstream's in
 * place); nothing when name is NULL. */
void mn_chunk_tag(json_t *obj, const char *name);

/* The member mn_chunk_tag adds, as bytes (`"provider":"name"`), malloc'd;
 * *len 0 (and "") when name is NULL or not a valid string. */
char *mn_chunk_member(const char *name, size_t *len);

/* Makes the member for a provider's name once, at configuration time (one
 * thread), in p; mn_chunk_member_kept finds it by the name's address (the
 * same pointer, not an equal string) until p is cleared.  mn_chunk_init
 * copies it from there. */
void mn_chunk_member_keep(apr_pool_t *p, const char *name);
const char *mn_chunk_member_kept(const char *name, size_t *len);
/* The member for name: the kept one, or one made now (then *made is that
 * malloc'd copy, for the caller to free; NULL when kept).  NULL when out of
 * memory.  Every writer of the member goes through here. */
const char *mn_chunk_member_for(const char *name, size_t *len, char **made);

/* Sets the writer up for a stream (provider and include_usage; the head
 * waits for mn_chunk_head).  0, or -1 when out of memory. */
int mn_chunk_init(mn_chunk *c, const char *provider_name, int include_usage);
/* (Re)builds the bytes every frame starts with, from the id and model as C
 * strings or Jansson strings (the json_t wins when not NULL).  0, or -1. */
int mn_chunk_head(mn_chunk *c, const char *id, json_t *id_json, const char *model,
                  json_t *model_json, long created);
int mn_chunk_ready(const mn_chunk *c);
/* Forgets the head (the id or model changed): mn_chunk_ready is 0 again. */
void mn_chunk_free_head(mn_chunk *c);
void mn_chunk_free(mn_chunk *c);

/* A frame whose choice has this delta (compact JSON of it) and finish_reason
 * (NULL: null).  Nothing when delta is NULL. */
void mn_chunk_delta(const mn_chunk *c, json_t *delta, const char *finish, mn_sink *out);
/* {"role":"assistant","content":""} */
void mn_chunk_role(const mn_chunk *c, mn_sink *out);
/* {"<member>":<text>} with text already a JSON string (quotes included):
 * copied as it is. */
void mn_chunk_text_raw(const mn_chunk *c, const char *member, const char *json_string,
                       size_t len, mn_sink *out);
/* The same with text a Jansson string. */
void mn_chunk_text(const mn_chunk *c, const char *member, json_t *text, mn_sink *out);
/* {"tool_calls":[{"index":i,"function":{"arguments":<args>}}]}, args a
 * Jansson string. */
void mn_chunk_tool_args(const mn_chunk *c, long index, json_t *args, mn_sink *out);
/* {} with finish_reason. */
void mn_chunk_finish(const mn_chunk *c, const char *reason, mn_sink *out);
/* The usage-only chunk: "choices":[] and "usage":usage (borrowed). */
void mn_chunk_usage(const mn_chunk *c, json_t *usage, mn_sink *out);

/* data: <compact obj with "provider" added>\n\n, for a chunk the upstream's
 * tree became (the pass-through's slow path). */
void mn_chunk_tree(json_t *obj, const char *provider_name, mn_sink *out);
/* data: {"provider":…[,]<a><b>\n\n: an upstream chunk's bytes with the
 * provider put first; a and b are its members up to and including the
 * closing brace, around a cut the caller made (b may be empty). */
void mn_chunk_wrap(const mn_chunk *c, int comma, const char *a, size_t alen, const char *b,
                   size_t blen, mn_sink *out);

/* The terminal error frame (with "provider") and data: [DONE]. */
void mn_chunk_error_end(const mn_error *e, const char *provider_name, mn_sink *out);

/* A chat.completion answer from an upstream's byte spans (the non-streaming
 * byte path): exactly the bytes Jansson's compact dump gives of the tree
 * {id, object, created, model, choices:[{index, message:{role, content,
 * refusal}, logprobs, finish_reason}], usage, provider}. */
struct mn_usage;
typedef struct mn_completion {
    const char *id, *model;  /* JSON strings (quotes included), NULL: no member */
    size_t id_len, model_len;
    long created;
    const char *const *texts;  /* the content: these JSON strings' texts joined */
    const size_t *text_lens;
    int ntexts;              /* -1: content null */
    const char *finish;      /* finish_reason (plain ASCII) */
    const struct mn_usage *usage;
    int have_reasoning;      /* completion_tokens_details */
    const char *provider_name;
} mn_completion;

/* The spans must be JSON strings a validating read accepted (mn_jscan):
 * their escapes are not checked again.  Written as Jansson writes the text
 * they stand for (their `\u` and `\/` escapes undone). */
void mn_chunk_completion(const mn_completion *c, mn_sink *out);
/* A bound on the bytes mn_chunk_completion writes. */
size_t mn_chunk_completion_bound(const mn_completion *c);
/* One JSON string of the n strings' texts joined, as Jansson would write it. */
void mn_chunk_json_string(const char *const *spans, const size_t *lens, int n, mn_sink *out);

#endif
