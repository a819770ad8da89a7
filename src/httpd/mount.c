/* Where the handler is mounted: requests a <Location> hands to SetHandler
 * maniac skip core's directory walk (see include/mn_config.h). */
#include <string.h>
#include <httpd.h>
#include <http_config.h>
#include <http_core.h>
#include <ap_expr.h>

#include "mod_maniac.h"

/* A request that <Location> hands to us names no file: like
 * proxy_map_location for ProxyPass, skip core's directory walk (a stat of
 * the mapped path, an .htaccess open per directory up to /).  httpd resets
 * the per-dir config to the server's before map_to_storage, so the
 * <Location>'s SetHandler is read in translate_name, where the first
 * location walk has merged it; access control from <Location> still runs
 * after. */
int mn_mount_translate(request_rec *r)
{
    core_dir_config *d = ap_get_core_module_config(r->per_dir_config);
    const char *err = NULL, *h;

    if (d && d->expr_handler) {
        h = ap_expr_str_exec(r, d->expr_handler, &err);
        if (!err && h && !strcasecmp(h, "maniac")) {
            ap_set_module_config(r->request_config, &maniac_module, r);
        }
    }
    return DECLINED;
}

int mn_mount_map_to_storage(request_rec *r)
{
    return ap_get_module_config(r->request_config, &maniac_module) ? OK : DECLINED;
}

