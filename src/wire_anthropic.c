/* mn_wire_anthropic: placeholder until the anthropic translator lands. */
#include "mn_wire.h"

static int enc(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out, mn_error *err)
{
    return mn_error_set(err, 400, NULL, "model", NULL, "format=anthropic is not available yet");
}

const mn_wire mn_wire_anthropic = { "anthropic", enc, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
