/* mn_log: the log callback the httpd glue installs for the pure units. */
#include <stdarg.h>
#include <stdio.h>
#include "mn_log.h"

static mn_log_fn *log_fn;

void mn_log_set(mn_log_fn *fn)
{
    log_fn = fn;
}

void mn_log(mn_log_level level, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    if (!log_fn) {
        return;
    }
    va_start(ap, fmt);
    vsnprintf(msg, sizeof(msg), fmt, ap);
    va_end(ap);
    log_fn(level, msg);
}
