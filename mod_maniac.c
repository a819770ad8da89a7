/* mod_maniac: an LLM gateway inside Apache httpd.
 *
 * This file only wires things together: the hooks and the directive table.
 * Configuration (server and directory configs, directive setters, startup
 * checks) is in src/httpd/config.c; the work happens in src/. */
#include <httpd.h>
#include <http_config.h>
#include <ap_mmn.h>

#define MN_MODULE_MAIN
#include "mod_maniac.h"
#include "mn_limits.h"
#include "mn_ops.h"
#include "mn_metrics_glue.h"

module AP_MODULE_DECLARE_DATA maniac_module;

static void maniac_register_hooks(apr_pool_t *p)
{
    static const char *const after_proxy[] = { "mod_proxy.c", NULL };
    mn_limits_register_hooks(p);
    mn_metrics_register_hooks(p);
    ap_hook_pre_config(mn_config_pre_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_check_config(mn_config_check_config, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_post_config(mn_config_post_config, after_proxy, NULL, APR_HOOK_MIDDLE);
    ap_hook_handler(mn_handler, NULL, NULL, APR_HOOK_MIDDLE);
    ap_hook_translate_name(mn_mount_translate, NULL, NULL, APR_HOOK_FIRST);
    ap_hook_map_to_storage(mn_mount_map_to_storage, NULL, NULL, APR_HOOK_MIDDLE);
    mn_auth_register_hooks(p);
    mn_ops_register_hooks(p);
}

static const command_rec maniac_cmds[] = {
    AP_INIT_TAKE_ARGV("ManiacProvider", mn_config_cmd_provider, NULL, RSRC_CONF,
                      "ManiacProvider <name> <base-url|builtin:echo> [format=openai|anthropic|"
                      "gemini] [key-env=VAR[,VAR...] | key-file=PATH[,PATH...]] [timeout=S] "
                      "[connect-timeout=S] [first-byte-timeout=S] [idle-timeout=S] "
                      "[total-timeout=S] [retries=N] [breaker-failures=K] "
                      "[breaker-cooldown=S] [max-tokens=N] [reasoning=on|off] [key-header=NAME] "
                      "[keep=strict,logprobs,n,input_audio] [models=NAME,NAME...]"),
    AP_INIT_TAKE_ARGV("ManiacModel", mn_config_cmd_model, NULL, RSRC_CONF,
                      "ManiacModel <alias> <provider/model> [<provider/model> ...]: "
                      "the first target that answers serves the alias"),
    AP_INIT_TAKE_ARGV("ManiacCORS", mn_config_cmd_cors, NULL, RSRC_CONF | ACCESS_CONF,
                      "ManiacCORS off | * | <origin> [<origin> ...]: browser origins whose "
                      "requests get Access-Control-* answers (default off)"),
    AP_INIT_TAKE1("ManiacKeyFile", mn_config_cmd_key_file, NULL, RSRC_CONF | ACCESS_CONF,
                  "ManiacKeyFile PATH: client keys for AuthType maniac, one per line "
                  "(NAME SHA256HEX [options]); read at startup and on graceful restart"),
    AP_INIT_TAKE_ARGV("ManiacKeyQuery", mn_config_cmd_key_query, NULL, RSRC_CONF | ACCESS_CONF,
                      "ManiacKeyQuery \"SELECT name, options FROM ... WHERE key_sha256 = %s\" "
                      "[cache=SECONDS]: client keys from SQL through mod_dbd"),
    AP_INIT_TAKE1("ManiacMaxRequestBody", mn_config_cmd_size, NULL, RSRC_CONF | ACCESS_CONF,
                  "largest client request body in bytes (default 32 MiB); a <Location>'s "
                  "value wins over its server's"),
    AP_INIT_TAKE1("ManiacMaxResponseBody", mn_config_cmd_size, NULL, RSRC_CONF,
                  "largest non-streaming upstream response in bytes (default 64 MiB)"),
    AP_INIT_TAKE1("ManiacMaxEventSize", mn_config_cmd_size, NULL, RSRC_CONF,
                  "largest single upstream stream event in bytes (default 4 MiB)"),
    AP_INIT_TAKE1("ManiacMaxSchemaExpansion", mn_config_cmd_expansion, NULL, RSRC_CONF,
                  "how many times its size a JSON Schema may grow when a format inlines "
                  "its $refs (default 8)"),
    MN_LIMITS_DIRECTIVES,
    AP_INIT_FLAG("ManiacOverheadHeader", mn_config_cmd_overhead_header, NULL, RSRC_CONF,
                 "On: answers carry " MN_OVERHEAD_HEADER " (microseconds spent in the gateway, "
                 "upstream waiting excluded); default Off"),
    AP_INIT_FLAG("ManiacMetrics", mn_config_cmd_metrics, NULL, RSRC_CONF,
                 "ManiacMetrics On|Off: live metrics in shared memory (default On)"),
    { NULL }
};

AP_DECLARE_MODULE(maniac) = {
    STANDARD20_MODULE_STUFF,
    mn_config_create_dir,   /* per-directory config */
    mn_config_merge_dir,    /* merge per-directory */
    mn_config_create_server, /* per-server config */
    mn_config_merge_server, /* merge per-server */
    maniac_cmds,
    maniac_register_hooks,
#if defined(AP_MODULE_FLAG_ALWAYS_MERGE)
    AP_MODULE_FLAG_NONE
#endif
};
