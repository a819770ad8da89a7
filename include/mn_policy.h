/* mn_policy: the map-or-reject policy and request validation.
 *
 * Applied to the parsed client body before routing: rejects what cannot be
 * served (n > 1, wrong types, missing model/messages), drops what has no
 * analogue (logprobs, top_logprobs, input_audio parts, json_schema.strict),
 * and takes our extensions (tags, metadata, trace) out of the body so no
 * upstream ever sees them.  Unknown top-level params stay in the body. */
#ifndef MN_POLICY_H
#define MN_POLICY_H

#include <jansson.h>
#include "mn_error.h"

#define MN_POLICY_MAX_DROPPED 8

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

/* Validates and rewrites req in place.  Returns 0, or -1 with err set (400,
 * invalid_request_error, param naming the offending field). */
int mn_policy_apply(json_t *req, mn_policy_result *res, mn_error *err);

/* Releases the extension references held by res. */
void mn_policy_result_clear(mn_policy_result *res);

#endif
