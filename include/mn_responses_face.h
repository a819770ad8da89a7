/* mn_responses_face: the glue of POST .../responses (src/httpd/face_responses.c).
 * The handler's intake (CORS, method, body, JSON) is shared with the chat
 * route; with the face chosen by the path, mn_responses_intake() maps the
 * body into the chat request mn_serve() takes, and the face writes the
 * answers as a Response, its events, or errors (the chat route's shape). */
#ifndef MN_RESPONSES_FACE_H
#define MN_RESPONSES_FACE_H

#include "mn_serve.h"

extern const mn_face mn_face_responses;

/* The path ends in /responses. */
int mn_path_is_responses(const char *uri);

/* *body (the Responses request, released) becomes the chat request.  0 go
 * on, -1 answer err (400 naming the field). */
int mn_responses_intake(mn_request *req, json_t **body, mn_error *err);

#endif
