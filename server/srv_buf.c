/* srv_buf.c: growable byte buffer with JSON string escaping. */
#include "srv_buf.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool reserve(srv_buf *b, size_t extra)
{
    if (b->failed)
        return false;
    if (b->len + extra + 1 <= b->cap)
        return true;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    char *p = realloc(b->data, cap);
    if (!p) {
        b->failed = true;
        return false;
    }
    b->data = p;
    b->cap = cap;
    return true;
}

void srv_buf_append(srv_buf *b, const void *data, size_t n)
{
    if (!reserve(b, n))
        return;
    if (n)
        memcpy(b->data + b->len, data, n);
    b->len += n;
    b->data[b->len] = '\0';
}

void srv_buf_puts(srv_buf *b, const char *s)
{
    srv_buf_append(b, s, strlen(s));
}

void srv_buf_put_u64(srv_buf *b, unsigned long long v)
{
    char tmp[20];
    size_t n = 0;
    do {
        tmp[sizeof tmp - ++n] = (char)('0' + v % 10);
        v /= 10;
    } while (v);
    srv_buf_append(b, tmp + sizeof tmp - n, n);
}

void srv_buf_put_i64(srv_buf *b, long long v)
{
    if (v < 0) {
        srv_buf_append(b, "-", 1);
        srv_buf_put_u64(b, 0ull - (unsigned long long)v); /* LLONG_MIN too */
        return;
    }
    srv_buf_put_u64(b, (unsigned long long)v);
}

void srv_buf_put_real(srv_buf *b, double x, bool is_double)
{
    /* integral values print as integers, exactly what "%g" prints for them below its
     * exponent threshold (zeros, counts and labels are common in outputs); -0 keeps its
     * sign. The range is checked first: converting a double beyond long long's range is
     * undefined. */
    bool in_range = fabs(x) < (is_double ? 1e17 : 1e9);
    if (in_range && x == (double)(long long)x && !(x == 0 && signbit(x))) {
        srv_buf_put_i64(b, (long long)x);
        return;
    }
    char tmp[40];
    int n = strfromd(tmp, sizeof tmp, is_double ? "%.17g" : "%.9g", x);
    if (n > 0 && (size_t)n < sizeof tmp)
        srv_buf_append(b, tmp, (size_t)n);
}

/* Formats in place when it fits (the usual short number or label), so that most calls
 * format once; otherwise grows and formats again. */
void srv_buf_printf(srv_buf *b, const char *fmt, ...)
{
    if (!reserve(b, 64))
        return;
    va_list ap;
    va_start(ap, fmt);
    int n = vsnprintf(b->data + b->len, b->cap - b->len, fmt, ap);
    va_end(ap);
    if (n >= 0 && (size_t)n >= b->cap - b->len && reserve(b, (size_t)n)) {
        va_start(ap, fmt);
        vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
        va_end(ap);
    }
    if (n < 0 || b->failed) {
        b->data[b->len] = '\0';
        return;
    }
    b->len += (size_t)n;
}

/* Length of the well-formed UTF-8 sequence at s (at most n bytes), 0 if there is none:
 * no overlong forms, no surrogates, nothing above U+10FFFF. */
static size_t utf8_len(const unsigned char *s, size_t n)
{
    size_t len = s[0] >= 0xf0 ? 4 : s[0] >= 0xe0 ? 3 : 2;
    if (s[0] < 0xc2 || s[0] > 0xf4 || len > n)
        return 0;
    for (size_t i = 1; i < len; i++)
        if ((s[i] & 0xc0) != 0x80)
            return 0;
    if ((s[0] == 0xe0 && s[1] < 0xa0) || (s[0] == 0xed && s[1] > 0x9f) ||
        (s[0] == 0xf0 && s[1] < 0x90) || (s[0] == 0xf4 && s[1] > 0x8f))
        return 0;
    return len;
}

void srv_buf_json_string(srv_buf *b, const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    srv_buf_append(b, "\"", 1);
    size_t start = 0;
    for (size_t i = 0; i < n;) {
        unsigned char c = u[i];
        size_t seq = c < 0x80 ? 1 : utf8_len(u + i, n - i);
        if (seq > 1 || (seq == 1 && c >= 0x20 && c != '"' && c != '\\')) {
            i += seq;
            continue;
        }
        srv_buf_append(b, s + start, i - start);
        if (!seq)
            srv_buf_puts(b, "\\ufffd"); /* not UTF-8 (BYTES data, a cut message) */
        else if (c == '"' || c == '\\')
            srv_buf_append(b, (char[2]){'\\', (char)c}, 2);
        else
            srv_buf_printf(b, "\\u%04x", c);
        start = ++i;
    }
    srv_buf_append(b, s + start, n - start);
    srv_buf_append(b, "\"", 1);
}

char *srv_buf_take(srv_buf *b, size_t *len)
{
    if (b->failed) {
        srv_buf_free(b);
        return NULL;
    }
    char *p = b->data ? b->data : calloc(1, 1);
    if (len)
        *len = b->len;
    memset(b, 0, sizeof *b);
    return p;
}

void srv_buf_free(srv_buf *b)
{
    free(b->data);
    memset(b, 0, sizeof *b);
}

void srv_strfmt(char *dst, size_t size, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(dst, size, fmt, ap);
    va_end(ap);
}
