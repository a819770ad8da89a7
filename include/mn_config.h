/* mn_config: the module's configuration, httpd side (src/httpd/config.c):
 * the server and per-directory configs (created and merged with "unset"
 * sentinels, see mn_settings.h), every directive setter, the startup checks
 * (pre_config, check_config, post_config), and the getters the request path
 * reads the settings in effect through.  mod_maniac.c only lists them.
 *
 * The provider table stays one for the whole server (mn_conf in
 * mod_maniac.h): a provider is a pooled upstream, not a per-host thing. */
#ifndef MN_CONFIG_H
#define MN_CONFIG_H

#include <httpd.h>
#include <http_config.h>
#include "mn_settings.h"

/* The module struct's config hooks. */
void *mn_config_create_dir(apr_pool_t *p, char *dir);
void *mn_config_merge_dir(apr_pool_t *p, void *basev, void *addv);
void *mn_config_create_server(apr_pool_t *p, server_rec *s);
void *mn_config_merge_server(apr_pool_t *p, void *basev, void *addv);

/* Startup hooks. */
int mn_config_pre_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp);
int mn_config_check_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                           server_rec *s);
int mn_config_post_config(apr_pool_t *pconf, apr_pool_t *plog, apr_pool_t *ptemp,
                          server_rec *s);

/* Directive setters. */
const char *mn_config_cmd_provider(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_config_cmd_model(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_config_cmd_cors(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_config_cmd_key_file(cmd_parms *cmd, void *dconf, const char *arg);
const char *mn_config_cmd_key_query(cmd_parms *cmd, void *dconf, int argc, char *const argv[]);
const char *mn_config_cmd_size(cmd_parms *cmd, void *dconf, const char *arg);
const char *mn_config_cmd_expansion(cmd_parms *cmd, void *dconf, const char *arg);
const char *mn_config_cmd_overhead_header(cmd_parms *cmd, void *dconf, int on);
const char *mn_config_cmd_metrics(cmd_parms *cmd, void *dconf, int on);

/* The settings in effect for a request (its <Location>, else its server,
 * else the default). */
apr_off_t mn_config_max_body(request_rec *r);
apr_size_t mn_config_max_response(request_rec *r);
apr_size_t mn_config_max_event(request_rec *r);
int mn_config_schema_expansion(request_rec *r);
int mn_config_overhead_header(request_rec *r);
/* ManiacMetrics of the main server s. */
int mn_config_metrics(server_rec *s);

/* translate_name and map_to_storage for requests SetHandler maniac serves
 * (src/httpd/mount.c): no directory walk for them. */
int mn_mount_translate(request_rec *r);
int mn_mount_map_to_storage(request_rec *r);

#endif
