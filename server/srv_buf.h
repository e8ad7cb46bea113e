/* srv_buf.h: a growable byte buffer for request bodies and response encoding. */
#ifndef SRV_BUF_H
#define SRV_BUF_H

#include <stdbool.h>
#include <stddef.h>

typedef struct srv_buf {
    char *data;   /* owned; NUL-terminated when non-NULL */
    size_t len, cap;
    bool failed;  /* an allocation failed; later appends are ignored */
} srv_buf;

void srv_buf_append(srv_buf *b, const void *data, size_t n);
void srv_buf_puts(srv_buf *b, const char *s);
void srv_buf_printf(srv_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Decimal integers without printf (the response encoder writes many). */
void srv_buf_put_u64(srv_buf *b, unsigned long long v);
void srv_buf_put_i64(srv_buf *b, long long v);
/* A finite number as "%.17g" (a double) or "%.9g" (a float or narrower) print it, digits
 * that round-trip it; integral values without printf, the rest through strfromd, which
 * skips printf's format parsing. */
void srv_buf_put_real(srv_buf *b, double x, bool is_double);
/* Appends s as a JSON string literal (quoted, escaped). Bytes that are not UTF-8 become
 * U+FFFD, so that the document stays valid JSON. */
void srv_buf_json_string(srv_buf *b, const char *s, size_t n);
/* Gives the data to the caller (who frees it) and resets the buffer. */
char *srv_buf_take(srv_buf *b, size_t *len);
void srv_buf_free(srv_buf *b);

/* snprintf that truncates on purpose (messages and paths of bounded size). */
void srv_strfmt(char *dst, size_t size, const char *fmt, ...) __attribute__((format(printf, 3, 4)));

#endif
