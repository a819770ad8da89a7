/* mn_log: logging for the pure units.
 *
 * Units without httpd headers log through a callback the glue installs (it
 * forwards to ap_log_error under our module, so `LogLevel maniac:debug`
 * works).  Without a callback nothing is logged.  Never pass keys or message
 * content here. */
#ifndef MN_LOG_H
#define MN_LOG_H

typedef enum { MN_LOG_ERR = 3, MN_LOG_WARN = 4, MN_LOG_INFO = 6, MN_LOG_DEBUG = 7 } mn_log_level;

typedef void mn_log_fn(mn_log_level level, const char *msg);

void mn_log_set(mn_log_fn *fn);
void mn_log(mn_log_level level, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

#endif
