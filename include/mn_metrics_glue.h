/* The httpd side of the live metrics (src/httpd/metrics_glue.c): what
 * mod_maniac.c and the handler call.  Glue only: pure units never include it. */
#ifndef MN_METRICS_GLUE_H
#define MN_METRICS_GLUE_H

#include <httpd.h>
#include <http_config.h>

void mn_metrics_register_hooks(apr_pool_t *p);

/* A stream's first byte is leaving for the client: it counts as live until
 * the request ends, and its time to first token is now. */
void mn_metrics_stream_begin(request_rec *r);

#endif
