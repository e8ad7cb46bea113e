/* rt_status.h: status codes and the caller-owned error record used across the runtime.
 *
 * Every fallible runtime function returns an rt_status and, on failure, fills the
 * caller's rt_error (if non-NULL) with a one-line, human-readable reason. Anything a
 * client can trigger (bad model, bad input) is reported this way; only broken internal
 * invariants assert. */
#ifndef RT_STATUS_H
#define RT_STATUS_H

typedef enum {
    RT_OK = 0,
    RT_ERR_INVALID_ARG,   /* caller passed something malformed (bad shape, dtype, count) */
    RT_ERR_UNSUPPORTED,   /* valid ONNX we do not implement (op, attribute value, dtype) */
    RT_ERR_IO,            /* a file could not be opened, read or written */
    RT_ERR_PARSE,         /* bytes that do not decode (protobuf, external data) */
    RT_ERR_MODEL,         /* a model that decodes but is inconsistent (dangling value, cycle) */
    RT_ERR_NOMEM,         /* an allocation failed */
    RT_ERR_BACKEND,       /* the backend failed (device error) */
    RT_ERR_INTERNAL       /* a bug: should never reach a user */
} rt_status;

#define RT_ERROR_TEXT_MAX 320

typedef struct rt_error {
    rt_status status;
    char text[RT_ERROR_TEXT_MAX];
} rt_error;

/* Records status and a printf-style message in err (if non-NULL); returns status so that
 * callers can write `return rt_error_set(err, RT_ERR_..., "...")`. */
rt_status rt_error_set(rt_error *err, rt_status status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Prefixes an existing message with more context ("node 'x' (Conv): " + text). */
rt_status rt_error_prefix(rt_error *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* Short constant name of a status ("invalid argument", ...). */
const char *rt_status_name(rt_status status);

#endif
