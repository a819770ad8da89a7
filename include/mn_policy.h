/* mn_policy: the map-or-reject policy and request validation.
 *
 * Applied to the parsed client body before routing: rejects what cannot be
 * served (n > 1, wrong types, missing model/messages), drops what has no
 * analogue (logprobs, top_logprobs, input_audio parts, json_schema.strict),
 * and takes our extensions (tags, metadata, trace) out of the body so no
 * upstream ever sees them.  Unknown top-level params stay in the body. */
#ifndef MN_POLICY_H
#define MN_POLICY_H

#include <apr_pools.h>
#include <jansson.h>
#include "mn_error.h"

#define MN_POLICY_MAX_DROPPED 8

/* What a provider's `keep=` lets through instead of the default
 * map-or-reject (only an OpenAI-format upstream can carry these). */
#define MN_KEEP_STRICT      0x1u   /* response_format.json_schema.strict */
#define MN_KEEP_LOGPROBS    0x2u   /* logprobs and top_logprobs */
#define MN_KEEP_N           0x4u   /* n > 1 */
#define MN_KEEP_INPUT_AUDIO 0x8u   /* input_audio content parts */

typedef struct mn_policy_result {
    const char *model;          /* borrowed from the request body */
    int stream;                 /* stream: true */
    int include_usage;          /* stream_options.include_usage: true */
    json_t *tags;               /* extension values taken out of the body */
    json_t *metadata;           /* (new references, or NULL) */
    json_t *trace;
    const char *dropped[MN_POLICY_MAX_DROPPED]; /* static names, in order */
    int ndropped;
} mn_policy_result;

/* Validates and rewrites req in place; keep (MN_KEEP_*) names what the
 * target(s) carry as is.  Returns 0, or -1 with err set (400,
 * invalid_request_error, param naming the offending field). */
int mn_policy_apply(json_t *req, unsigned keep, mn_policy_result *res, mn_error *err);

/* Parses a `keep=` list ("strict,logprobs,n,input_audio") into MN_KEEP_*
 * bits.  NULL, or a message (from p) naming what is wrong. */
const char *mn_policy_parse_keep(apr_pool_t *p, const char *list, unsigned *keep);

/* The message roles a request may use (system, developer, user, assistant,
 * tool, function). */
int mn_policy_role_valid(const char *role);

/* Releases the extension references held by res. */
void mn_policy_result_clear(mn_policy_result *res);

#endif
