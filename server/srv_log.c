/* srv_log.c: level-filtered, single-line log records on stderr (text or JSON). */
#include "srv_log.h"

#include <jansson.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static cfg_log_level log_level = CFG_LOG_INFO;
static cfg_log_format log_format = CFG_LOG_TEXT;

static const char *const level_names[] = {"error", "warn", "info", "verbose"};

void srv_log_setup(cfg_log_level level, cfg_log_format format)
{
    log_level = level;
    log_format = format;
}

bool srv_log_enabled(cfg_log_level level)
{
    return level <= log_level;
}

void srv_log(cfg_log_level level, const char *fmt, ...)
{
    if (!srv_log_enabled(level))
        return;
    char msg[1024], ts[40];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    for (char *p = msg; *p; p++) /* one event, one line */
        if (*p == '\n' || *p == '\r')
            *p = ' ';
    struct timespec now;
    struct tm tm;
    clock_gettime(CLOCK_REALTIME, &now);
    gmtime_r(&now.tv_sec, &tm);
    size_t n = strftime(ts, sizeof ts, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(ts + n, sizeof ts - n, ".%06ldZ", now.tv_nsec / 1000);
    if (log_format == CFG_LOG_JSON) {
        json_t *rec = json_pack("{s:s, s:s, s:s}", "time", ts, "level", level_names[level],
                                "msg", msg);
        char *line = rec ? json_dumps(rec, JSON_COMPACT) : NULL;
        if (line)
            fprintf(stderr, "%s\n", line);
        free(line);
        json_decref(rec);
    } else {
        fprintf(stderr, "%s %s %s\n", ts, level_names[level], msg);
    }
}
