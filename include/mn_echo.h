/* mn_echo: the offline builtin:echo provider.
 *
 * Answers with the text of the last user message, as a chat.completion or,
 * streamed, word by word, with usage counted in whitespace-separated words.
 * It needs no network and no key, so a fresh install answers at once. */
#ifndef MN_ECHO_H
#define MN_ECHO_H

#include <jansson.h>
#include "mn_buf.h"
#include "mn_wire.h"

/* Non-streaming answer (new reference) and its usage. */
json_t *mn_echo_response(mn_wire_ctx *ctx, json_t *req, mn_usage *usage);

/* Writes the whole stream (role chunk, one chunk per word, finish chunk,
 * usage chunk when asked, [DONE]) into the sink, one frame at a time. */
void mn_echo_stream(mn_wire_ctx *ctx, json_t *req, mn_sink *out, mn_usage *usage);

#endif
