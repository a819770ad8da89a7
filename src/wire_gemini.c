/* mn_wire_gemini: placeholder until the gemini translator lands. */
#include "mn_wire.h"

static int enc(mn_wire_ctx *ctx, json_t *req, mn_upstream_req *out, mn_error *err)
{
    return mn_error_set(err, 400, NULL, "model", NULL, "format=gemini is not available yet");
}

const mn_wire mn_wire_gemini = { "gemini", enc, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL };
