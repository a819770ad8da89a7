/* mn_responses_face: the glue of POST .../responses (src/httpd/face_responses.c).
 * The handler's intake (CORS, method, body, JSON) is shared with the chat
 * route; this face maps the body and serves it through mn_serve(). */
#ifndef MN_RESPONSES_FACE_H
#define MN_RESPONSES_FACE_H

#include "mn_serve.h"

/* The path ends in /responses. */
int mn_path_is_responses(const char *uri);

/* Maps the Responses body and serves it; returns the handler's status. */
int mn_responses_serve(mn_request *req, json_t *body, mn_error *err);

#endif
