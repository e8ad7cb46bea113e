/* srv_log.h: the daemon's log: one line per event on stderr, with its level, as text or
 * JSON (journald keeps stderr lines). Thread-safe. */
#ifndef SRV_LOG_H
#define SRV_LOG_H

#include "cfg_options.h"

void srv_log_setup(cfg_log_level level, cfg_log_format format);
bool srv_log_enabled(cfg_log_level level);
void srv_log(cfg_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

#define SRV_ERROR(...) srv_log(CFG_LOG_ERROR, __VA_ARGS__)
#define SRV_WARN(...) srv_log(CFG_LOG_WARN, __VA_ARGS__)
#define SRV_INFO(...) srv_log(CFG_LOG_INFO, __VA_ARGS__)
#define SRV_VERBOSE(...) srv_log(CFG_LOG_VERBOSE, __VA_ARGS__)

#endif
