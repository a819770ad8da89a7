/* mn_limits: the httpd side of prices, counters and per-key limits
 * (src/httpd/limits.c).  The arithmetic is in mn_admission, the stores in
 * mn_counters, prices in mn_price; this glue holds the configuration, makes
 * the shared memory, and runs admission and settlement for a request.
 *
 * Request path (src/httpd/handler.c): after routing, mn_limits_admit() reserves the
 * request's estimate on its key's counters or refuses it (429/503); every
 * attempt that used tokens is mn_limits_charge()d; mn_limits_finish()
 * reconciles the reservation to the real use and sets the notes
 * (maniac-cost, maniac-key, maniac-limits). */
#ifndef MN_LIMITS_H
#define MN_LIMITS_H

#include <httpd.h>
#include <http_config.h>
#include <jansson.h>
#include "mn_error.h"
#include "mn_keys.h"
#include "mn_providers.h"
#include "mn_wire.h"

typedef struct mn_limits_req mn_limits_req;

/* 0 with *out set (also when the request has no key: its cost is still
 * computed), or -1 with err (429 over a limit, 503 counters unavailable with
 * fail-closed) and the 429's headers already in r->headers_out. */
int mn_limits_admit(request_rec *r, json_t *body, int stream, const mn_target *targets,
                    int ntargets, mn_limits_req **out, mn_error *err);

/* One attempt's usage at provider/model.  frames: frames sent to the client
 * by a stream; complete: the answer ended normally (an aborted stream is
 * charged at least one completion token per frame, and the estimated prompt
 * when the upstream never said). */
void mn_limits_charge(mn_limits_req *l, const char *provider, const char *model,
                      const mn_usage *u, long frames, int complete);

/* Reconciles, frees the stream slot, sets the notes.  Safe on NULL and twice. */
void mn_limits_finish(mn_limits_req *l);

/* Directives and hooks (mod_maniac.c). */
const char *mn_limits_cmd_counters(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_limits_cmd_price(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_limits_cmd_price_file(cmd_parms *cmd, void *dconf, const char *arg);
const char *mn_limits_cmd_reserve(cmd_parms *cmd, void *dconf, const char *arg);
void mn_limits_register_hooks(apr_pool_t *p);

#define MN_LIMITS_DIRECTIVES                                                              \
    AP_INIT_TAKE_ARGV("ManiacCounters", mn_limits_cmd_counters, NULL, RSRC_CONF,           \
                      "ManiacCounters shm | redis://HOST:PORT | memcache://HOST:PORT "    \
                      "[fail-open|fail-closed]: where per-key counters live"),            \
    AP_INIT_TAKE_ARGV("ManiacPrice", mn_limits_cmd_price, NULL, RSRC_CONF,                 \
                      "ManiacPrice <provider/model glob> input=<USD/1M> output=<USD/1M> " \
                      "[cached-input=<USD/1M>] [cache-write=<USD/1M>]"),                  \
    AP_INIT_TAKE1("ManiacPriceFile", mn_limits_cmd_price_file, NULL, RSRC_CONF,            \
                  "ManiacPriceFile PATH: LiteLLM's model_prices_and_context_window.json"),\
    AP_INIT_TAKE1("ManiacReserveTokens", mn_limits_cmd_reserve, NULL, RSRC_CONF,           \
                  "completion tokens reserved for a request without max_tokens "         \
                  "(default 1024)")

#endif
