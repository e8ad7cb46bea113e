/* rt_cpu_cast.c: the Cast kernel: between all numeric dtypes, and between numbers and
 * strings the way ONNX's reference implementation (numpy) does it.
 *
 * Numeric casts go block by block through an int64 buffer (integer and BOOL to integer
 * and BOOL, exact) or a double buffer (everything else; double holds every F32, F16 and
 * BF16 value and every integer up to 2^53 exactly). */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "rt_cpu.h"

#define CAST_BLOCK 512
#define CAST_PARALLEL_MIN 65536

/* dtypes that are plain C types: suffix and type */
#define PLAIN_TYPES(X)                                                    \
    X(F32, float) X(F64, double) X(I8, int8_t) X(U8, uint8_t)            \
    X(I16, int16_t) X(U16, uint16_t) X(I32, int32_t) X(U32, uint32_t)    \
    X(I64, int64_t) X(U64, uint64_t)

#define LOAD_CASE(S, T)                                \
    case RT_DTYPE_##S:                                 \
        for (int64_t i = 0; i < n; i++)                \
            buf[i] = (BUF_T)((const T *)src)[i];       \
        break;
#define STORE_CASE(S, T)                               \
    case RT_DTYPE_##S:                                 \
        for (int64_t i = 0; i < n; i++)                \
            ((T *)dst)[i] = (T)buf[i];                 \
        break;

#define BUF_T int64_t
static void load_i64(rt_dtype dt, const void *src, int64_t *buf, int64_t n)
{
    switch (dt) {
    PLAIN_TYPES(LOAD_CASE)
    default: /* BOOL */
        for (int64_t i = 0; i < n; i++)
            buf[i] = ((const uint8_t *)src)[i] != 0;
        break;
    }
}
#undef BUF_T

static void store_i64(rt_dtype dt, const int64_t *buf, void *dst, int64_t n)
{
    switch (dt) {
    PLAIN_TYPES(STORE_CASE)
    default: /* BOOL */
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = buf[i] != 0;
        break;
    }
}

#define BUF_T double
static void load_f64(rt_dtype dt, const void *src, double *buf, int64_t n)
{
    switch (dt) {
    PLAIN_TYPES(LOAD_CASE)
    case RT_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            buf[i] = rt_f16_to_f32(((const uint16_t *)src)[i]);
        break;
    case RT_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            buf[i] = rt_bf16_to_f32(((const uint16_t *)src)[i]);
        break;
    default: /* BOOL */
        for (int64_t i = 0; i < n; i++)
            buf[i] = ((const uint8_t *)src)[i] != 0;
        break;
    }
}
#undef BUF_T

/* d rounded to float with round-to-odd: the result then rounds to any format with at
 * most 22 significant bits (F16, BF16) exactly as d itself would (no double rounding). */
static float f64_to_f32_odd(double d)
{
    float f = (float)d;
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if ((double)f != d && isfinite(f) && !(u & 1u))
        f = nextafterf(f, d > f ? INFINITY : -INFINITY);
    return f;
}

/* BF16 by dropping the low 16 bits, NaN kept quiet. */
static uint16_t f32_to_bf16_truncate(float f)
{
    uint32_t u;
    memcpy(&u, &f, sizeof u);
    if (isnan(f))
        return (uint16_t)((u >> 16) | 0x40);
    return (uint16_t)(u >> 16);
}

static void store_f64(rt_dtype dt, const double *buf, void *dst, int64_t n, bool bf16_truncate)
{
    switch (dt) {
    PLAIN_TYPES(STORE_CASE)
    case RT_DTYPE_F16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = rt_f32_to_f16(f64_to_f32_odd(buf[i]));
        break;
    case RT_DTYPE_BF16:
        for (int64_t i = 0; i < n; i++)
            ((uint16_t *)dst)[i] = bf16_truncate ? f32_to_bf16_truncate((float)buf[i])
                                                 : rt_f32_to_bf16(f64_to_f32_odd(buf[i]));
        break;
    default: /* BOOL */
        for (int64_t i = 0; i < n; i++)
            ((uint8_t *)dst)[i] = buf[i] != 0;
        break;
    }
}

static bool is_intlike(rt_dtype dt)
{
    return rt_dtype_is_integer(dt) || dt == RT_DTYPE_BOOL;
}

static void cast_numeric(rt_kernel_ctx *ctx, const rt_tensor *x, rt_tensor *y, bool bf16_truncate)
{
    int64_t n = rt_tensor_numel(x), blocks = (n + CAST_BLOCK - 1) / CAST_BLOCK;
    size_t es = rt_dtype_size(x->dtype), ed = rt_dtype_size(y->dtype);
    bool ints = is_intlike(x->dtype) && is_intlike(y->dtype);
#pragma omp parallel for if (n > CAST_PARALLEL_MIN) num_threads(ctx->threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t i0 = b * CAST_BLOCK, m = n - i0 < CAST_BLOCK ? n - i0 : CAST_BLOCK;
        const char *src = (const char *)x->data + (size_t)i0 * es;
        char *dst = (char *)y->data + (size_t)i0 * ed;
        if (ints) {
            int64_t buf[CAST_BLOCK];
            load_i64(x->dtype, src, buf, m);
            store_i64(y->dtype, buf, dst, m);
        } else {
            double buf[CAST_BLOCK];
            load_f64(x->dtype, src, buf, m);
            store_f64(y->dtype, buf, dst, m, bf16_truncate);
        }
    }
}

/* ---- numbers to strings ---- */

/* Whether text parses back to v's value in dtype dt. */
static bool round_trips(const char *text, double v, rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F64: return strtod(text, NULL) == v;
    case RT_DTYPE_F16: return rt_f32_to_f16(strtof(text, NULL)) == rt_f32_to_f16((float)v);
    case RT_DTYPE_BF16: return rt_f32_to_bf16(strtof(text, NULL)) == rt_f32_to_bf16((float)v);
    default: return strtof(text, NULL) == (float)v;
    }
}

/* The shortest decimal that round-trips v in dtype dt, laid out like numpy's repr:
 * positional ("0.5", "100.0") for 1e-4 <= |v| < 1e16, else scientific ("1e-05").
 * out has room for FORMAT_MAX bytes; returns the length. */
#define FORMAT_MAX 64
static int format_float(double v, rt_dtype dt, char *out)
{
    if (isnan(v))
        return snprintf(out, FORMAT_MAX, "nan");
    if (isinf(v) || v == 0)
        return snprintf(out, FORMAT_MAX, "%s%s", signbit(v) ? "-" : "", v == 0 ? "0.0" : "inf");
    int max_digits = dt == RT_DTYPE_F64 ? 17 : dt == RT_DTYPE_F16 ? 5 : dt == RT_DTYPE_BF16 ? 4 : 9;
    char sci[40];
    for (int p = 1; p <= max_digits; p++) {
        snprintf(sci, sizeof sci, "%.*e", p - 1, v);
        if (round_trips(sci, v, dt))
            break;
    }
    /* sci is "[-]d[.ddd]e[+-]xx": take the digits without trailing zeros and the exponent */
    char digits[24];
    int nd = 0;
    const char *s = sci + (sci[0] == '-');
    for (; *s != 'e'; s++)
        if (*s != '.')
            digits[nd++] = *s;
    while (nd > 1 && digits[nd - 1] == '0')
        nd--;
    int e = atoi(s + 1);
    double a = fabs(v);
    char *p = out;
    if (v < 0)
        *p++ = '-';
    if (a < 1e-4 || a >= 1e16) {
        *p++ = digits[0];
        if (nd > 1) {
            *p++ = '.';
            memcpy(p, digits + 1, (size_t)nd - 1);
            p += nd - 1;
        }
        p += snprintf(p, 8, "e%c%02d", e < 0 ? '-' : '+', abs(e));
    } else if (e < 0) {
        *p++ = '0';
        *p++ = '.';
        for (int k = 0; k < -e - 1; k++)
            *p++ = '0';
        memcpy(p, digits, (size_t)nd);
        p += nd;
    } else {
        for (int k = 0; k <= e; k++)
            *p++ = k < nd ? digits[k] : '0';
        *p++ = '.';
        for (int k = e + 1; k < nd || k == e + 1; k++)
            *p++ = k < nd ? digits[k] : '0';
    }
    *p = '\0';
    return (int)(p - out);
}

/* Element i of x as text in out (FORMAT_MAX bytes); returns the length. */
static int format_element(const rt_tensor *x, size_t i, char *out)
{
    rt_dtype dt = x->dtype;
    if (dt == RT_DTYPE_BOOL)
        return snprintf(out, FORMAT_MAX, "%s", ((const uint8_t *)x->data)[i] ? "True" : "False");
    if (dt == RT_DTYPE_U64)
        return snprintf(out, FORMAT_MAX, "%llu",
                        (unsigned long long)((const uint64_t *)x->data)[i]);
    if (rt_dtype_is_integer(dt))
        return snprintf(out, FORMAT_MAX, "%lld", (long long)rt_dtype_load_i64(dt, x->data, i));
    return format_float(rt_dtype_load_f64(dt, x->data, i), dt, out);
}

static rt_status cast_to_strings(rt_kernel_ctx *ctx, const rt_tensor *x, rt_tensor *y,
                                 rt_error *err)
{
    int64_t n = rt_tensor_numel(x);
    rt_str *dst = y->data;
    for (int64_t i = 0; i < n; i++) {
        char text[FORMAT_MAX];
        int len = format_element(x, (size_t)i, text);
        char *p = rt_kernel_string_alloc(ctx, (size_t)len);
        if (!p)
            return rt_error_set(err, RT_ERR_NOMEM, "Cast: out of memory for strings");
        memcpy(p, text, (size_t)len);
        dst[i].ptr = p;
        dst[i].len = (size_t)len;
    }
    return RT_OK;
}

/* ---- strings to numbers ---- */

/* Parses the whole of text (leading and trailing blanks allowed) as a number for dtype dt
 * into *f (float dtypes and BOOL) or *i (integers). */
static bool parse_number(const char *text, rt_dtype dt, double *f, int64_t *i)
{
    char *end;
    errno = 0;
    if (rt_dtype_is_integer(dt)) {
        *i = dt == RT_DTYPE_U64 ? (int64_t)strtoull(text, &end, 10) : strtoll(text, &end, 10);
        if (end == text || strspn(end, " \t\n") != strlen(end) || errno) {
            /* "2.0" or "1e3" for an integer: truncate like a float cast */
            if (!parse_number(text, RT_DTYPE_F64, f, i) || !(fabs(*f) < 9.2e18))
                return false;
            *i = (int64_t)*f;
        }
        return true;
    }
    if (dt == RT_DTYPE_BOOL && (strcasecmp(text, "true") == 0 || strcasecmp(text, "false") == 0)) {
        *f = strcasecmp(text, "true") == 0;
        return true;
    }
    *f = dt == RT_DTYPE_F32 ? strtof(text, &end) : strtod(text, &end);
    return end != text && strspn(end, " \t\n") == strlen(end);
}

static rt_status cast_from_strings(const rt_tensor *x, rt_tensor *y, bool bf16_truncate,
                                   rt_error *err)
{
    int64_t n = rt_tensor_numel(x);
    const rt_str *src = x->data;
    for (int64_t k = 0; k < n; k++) {
        char text[128];
        double f = 0;
        int64_t i = 0;
        bool ok = src[k].len < sizeof text;
        if (ok) {
            memcpy(text, src[k].ptr, src[k].len);
            text[src[k].len] = '\0';
            ok = parse_number(text, y->dtype, &f, &i);
        }
        if (!ok)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "Cast: cannot parse '%.*s' as %s",
                                (int)(src[k].len < 40 ? src[k].len : 40), src[k].ptr,
                                rt_dtype_name(y->dtype));
        char *dst = (char *)y->data + (size_t)k * rt_dtype_size(y->dtype);
        if (rt_dtype_is_integer(y->dtype))
            store_i64(y->dtype, &i, dst, 1);
        else
            store_f64(y->dtype, &f, dst, 1, bf16_truncate);
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_cast)
{
    (void)n_in;
    (void)n_out;
    const rt_tensor *x = in[0];
    rt_tensor *y = out[0];
    /* ONNX's Cast tests before opset 19 (ONNX <= 1.13) truncate F32 to BF16; later ones
     * and ONNX's current reference round to nearest even. */
    bool bf16_truncate = node->opset < 19;
    if (x->dtype == y->dtype) {
        memcpy(y->data, x->data, rt_tensor_nbytes(y));
        return RT_OK;
    }
    if (y->dtype == RT_DTYPE_BYTES)
        return cast_to_strings(ctx, x, y, err);
    if (x->dtype == RT_DTYPE_BYTES)
        return cast_from_strings(x, y, bf16_truncate, err);
    cast_numeric(ctx, x, y, bf16_truncate);
    return RT_OK;
}
