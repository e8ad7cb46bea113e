/* rt_status.c: formatting of rt_error records. */
#include "rt_status.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

rt_status rt_error_set(rt_error *err, rt_status status, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->text, sizeof err->text, fmt, ap);
        va_end(ap);
        err->status = status;
    }
    return status;
}

rt_status rt_error_prefix(rt_error *err, const char *fmt, ...)
{
    if (!err)
        return RT_ERR_INTERNAL;
    char prefix[RT_ERROR_TEXT_MAX];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    char old[RT_ERROR_TEXT_MAX];
    memcpy(old, err->text, sizeof old);
    size_t n = strnlen(prefix, sizeof prefix - 1);
    memcpy(err->text, prefix, n);
    /* truncation of long messages is intended: the text is a one-line summary */
    size_t rest = strnlen(old, sizeof old - 1);
    if (rest > sizeof err->text - 1 - n)
        rest = sizeof err->text - 1 - n;
    memcpy(err->text + n, old, rest);
    err->text[n + rest] = '\0';
    return err->status;
}

const char *rt_status_name(rt_status status)
{
    switch (status) {
    case RT_OK: return "ok";
    case RT_ERR_INVALID_ARG: return "invalid argument";
    case RT_ERR_UNSUPPORTED: return "unsupported";
    case RT_ERR_IO: return "i/o error";
    case RT_ERR_PARSE: return "parse error";
    case RT_ERR_MODEL: return "invalid model";
    case RT_ERR_NOMEM: return "out of memory";
    case RT_ERR_BACKEND: return "backend error";
    case RT_ERR_INTERNAL: return "internal error";
    }
    return "unknown";
}
