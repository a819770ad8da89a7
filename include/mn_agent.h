/* mn_agent: the reasoning artefacts a tool loop must carry from one turn to
 * the next, in and out of OpenAI messages.
 *
 *  - Gemini thought signatures ride in the tool-call id (mn_sigid.h) and in
 *    Google's own OpenAI-compat member
 *    tool_calls[].extra_content.google.thought_signature.  Back in a request
 *    either is accepted (extra_content first); the first call of an assistant
 *    turn without one gets Google's placeholder.  Other formats get the plain
 *    call id and no signature.
 *  - Claude's signed thinking comes out as message.thinking_blocks
 *    ([{type:"thinking",thinking,signature} | {type:"redacted_thinking",data}],
 *    LiteLLM's member) and goes back, unmodified and first, into the
 *    assistant turn's Anthropic content.
 *
 * Pure: APR and Jansson. */
#ifndef MN_AGENT_H
#define MN_AGENT_H

#include <apr_pools.h>
#include <jansson.h>
#include "mn_buf.h"
#include "mn_error.h"
#include "mn_wire.h"

/* Gemini answer: tc is an OpenAI tool call with its plain id; part the
 * functionCall part it came from.  A part with a thoughtSignature gets the
 * gsig1_ id and extra_content.google.thought_signature. */
void mn_agent_gemini_sign_call(apr_pool_t *p, json_t *tc, json_t *part);

/* Gemini request: the thoughtSignature for call j of an assistant turn: its
 * own (extra_content, else the id), else the placeholder for j == 0, else
 * NULL.  From p. */
const char *mn_agent_gemini_call_signature(apr_pool_t *p, json_t *tc, size_t j);

/* Any other format: messages with every gsig1_ id (tool_calls[].id and
 * tool_call_id) made plain and the Gemini signature taken out of
 * extra_content; NULL when there is nothing to change (new reference
 * otherwise: changed messages are copies, the client's tree is untouched). */
json_t *mn_agent_plain_messages(apr_pool_t *p, json_t *messages);

/* Anthropic answer: the thinking_blocks entry for a content block (new
 * reference), or NULL when the block is not signed thinking. */
json_t *mn_agent_thinking_block(json_t *block);

/* Anthropic request: appends msg.thinking_blocks (message mi) to content, as
 * they came.  0, or -1 with a 400 naming messages[mi].thinking_blocks[j]. */
int mn_agent_thinking_to_anthropic(json_t *msg, size_t mi, json_t *content, mn_error *err);

/* Anthropic request: 1 when an assistant turn of the current tool loop
 * (after the last user message) calls tools without its thinking blocks:
 * with thinking on, Anthropic would refuse it. */
int mn_agent_thinking_missing(json_t *messages);

/* Anthropic stream: the thinking blocks of a message, collected from
 * content_block_start / _delta / _stop and handed out as one list.  A
 * thinking block's text and signature are held until its stop (the client
 * needs the whole block to send it back): memory grows with the thinking of
 * one answer, which max_tokens bounds. */
typedef struct mn_agent_thinking_acc {
    mn_buf text, sig;
    int open;                /* a thinking block is being collected */
    json_t *pending;         /* finished blocks not yet handed out, or NULL */
} mn_agent_thinking_acc;

void mn_agent_acc_init(mn_agent_thinking_acc *a);
/* content_block_start with block cb: thinking opens, redacted_thinking is
 * finished at once; other types are ignored. */
void mn_agent_acc_start(mn_agent_thinking_acc *a, json_t *cb);
/* content_block_delta of the open block: thinking_delta, signature_delta. */
void mn_agent_acc_delta(mn_agent_thinking_acc *a, json_t *delta);
/* content_block_stop of the open thinking block. */
void mn_agent_acc_stop(mn_agent_thinking_acc *a);
/* The finished blocks in order (new reference) and none pending; NULL when
 * there are none. */
json_t *mn_agent_acc_take(mn_agent_thinking_acc *a);
void mn_agent_acc_free(mn_agent_thinking_acc *a);

/* A stop reason the format's mapping does not know: answered as "stop",
 * and kept in ctx->unknown_finish (ASCII letters, digits, _ . - only, at
 * most 64 characters; anything else becomes "?") for the access log. */
void mn_agent_unknown_finish(mn_wire_ctx *ctx, const char *raw);

/* Gemini: reasoning_effort (none, minimal, low, medium, high, xhigh, max)
 * into thinkingConfig.  gemini-3 and later take thinkingLevel (flash models:
 * minimal/low/medium/high; others low/high, the levels every model of the
 * family accepts), older ones thinkingBudget (none 0, minimal 512, low
 * 1024, medium 8192, high and above 24576).  0, or -1 for an unknown effort. */
int mn_agent_gemini_effort(const char *model, const char *effort, json_t *thinking_config);

/* 1 when the Gemini model takes thinkingLevel (gemini-N with N >= 3). */
int mn_agent_gemini_levels(const char *model);

#endif
