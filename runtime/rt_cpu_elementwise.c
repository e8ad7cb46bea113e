/* rt_cpu_elementwise.c: CPU kernels of the elementwise ops: broadcasting binary arithmetic
 * and comparisons, Pow, Where, variadic Min/Max, unary math, Identity and Dropout.
 *
 * Each (op, dtype) pair has a row function generated from one expression; a row is a
 * contiguous run of the output in which each input advances by 0 or 1 (rt_cpu_broadcast.h),
 * and the row functions special-case those steps so the compiler vectorizes them. F16
 * and BF16 are computed in float blocks through the F32 row functions. Integer arithmetic
 * wraps like numpy's (it is done in unsigned types) and integer division by zero yields 0
 * instead of trapping. */
#include <stdint.h>
#include <string.h>
#include <tgmath.h>
#include <time.h>

#include "rt_cpu_broadcast.h"
#include "rt_cpu.h"
#include "rt_index_math.h"
#include "rt_nn_params.h"
#include "rt_cpu_vmath.h"

/* Elements converted at a time on the F16/BF16 paths (stack buffers). */
#define HALF_BLOCK 256

/* GCC vectorizes loops at -O2 only when asked; every loop marked so has independent
 * iterations (an output may be an input only at the same index). */
#define SIMD _Pragma("omp simd")

/* One row of a binary op: n outputs from a and b, which advance by sa and sb (0 or 1). */
typedef void (*bin_row_fn)(int64_t n, const void *a, int64_t sa, const void *b, int64_t sb,
                           void *out);

/* The loop of a row with x and y read as XI and YI. */
#define BIN_LOOP(T, OT, EXPR, XI, YI)                                                      \
    {                                                                                      \
        SIMD for (int64_t i = 0; i < n; i++) {                                             \
            const T x = XI, y = YI;                                                        \
            o[i] = (OT)(EXPR);                                                             \
        }                                                                                  \
    }

/* A broadcast operand is read once before the loop: the output may alias the other one. */
#define BIN_ROW(NAME, T, OT, EXPR)                                                         \
    static void NAME(int64_t n, const void *pa, int64_t sa, const void *pb, int64_t sb,    \
                     void *po)                                                             \
    {                                                                                      \
        const T *a = pa, *b = pb;                                                          \
        const T a0 = a[0], b0 = b[0];                                                      \
        OT *o = po;                                                                        \
        if (sa && sb)                                                                      \
            BIN_LOOP(T, OT, EXPR, a[i], b[i])                                              \
        else if (sb)                                                                       \
            BIN_LOOP(T, OT, EXPR, a0, b[i])                                                \
        else if (sa)                                                                       \
            BIN_LOOP(T, OT, EXPR, a[i], b0)                                                \
        else                                                                               \
            BIN_LOOP(T, OT, EXPR, a0, b0)                                                  \
    }

/* Numeric C types: suffix (the rt_dtype name), type, type its arithmetic wraps in,
 * lowest and highest value. */
#define FLOAT_TYPES(X)                                 \
    X(F32, float, float, -INFINITY, INFINITY)          \
    X(F64, double, double, -INFINITY, INFINITY)
#define SINT_TYPES(X)                                  \
    X(I8, int8_t, uint32_t, INT8_MIN, INT8_MAX)        \
    X(I16, int16_t, uint32_t, INT16_MIN, INT16_MAX)    \
    X(I32, int32_t, uint32_t, INT32_MIN, INT32_MAX)    \
    X(I64, int64_t, uint64_t, INT64_MIN, INT64_MAX)
#define UINT_TYPES(X)                                  \
    X(U8, uint8_t, uint32_t, 0, UINT8_MAX)             \
    X(U16, uint16_t, uint32_t, 0, UINT16_MAX)          \
    X(U32, uint32_t, uint32_t, 0, UINT32_MAX)          \
    X(U64, uint64_t, uint64_t, 0, UINT64_MAX)
#define INT_TYPES(X) SINT_TYPES(X) UINT_TYPES(X)

/* The binary ops of each class of type: X(op, suffix, T, output type, expression in x, y). */
#define COMPARE_OPS(X, S, T)              \
    X(EQUAL, S, T, uint8_t, x == y)       \
    X(LESS, S, T, uint8_t, x < y)         \
    X(GREATER, S, T, uint8_t, x > y)
#define ARITH_OPS(X, S, T, W)                   \
    COMPARE_OPS(X, S, T)                        \
    X(ADD, S, T, T, (T)((W)x + (W)y))           \
    X(SUB, S, T, T, (T)((W)x - (W)y))           \
    X(MUL, S, T, T, (T)((W)x * (W)y))
/* Min/Max propagate NaN from either side, like numpy's minimum/maximum. */
#define FLOAT_OPS(X, S, T, W)                           \
    ARITH_OPS(X, S, T, W)                               \
    X(DIV, S, T, T, x / y)                              \
    X(MIN, S, T, T, (x != x || x < y) ? x : y)          \
    X(MAX, S, T, T, (x != x || x > y) ? x : y)          \
    X(POW, S, T, T, pow(x, y))
#define SINT_OPS(X, S, T, W)                                                   \
    ARITH_OPS(X, S, T, W)                                                      \
    X(DIV, S, T, T, y == 0 ? 0 : y == -1 ? (T)(0 - (W)x) : (T)(x / y))         \
    X(MIN, S, T, T, x < y ? x : y)                                             \
    X(MAX, S, T, T, x > y ? x : y)
#define UINT_OPS(X, S, T, W)                      \
    ARITH_OPS(X, S, T, W)                         \
    X(DIV, S, T, T, y == 0 ? 0 : (T)(x / y))      \
    X(MIN, S, T, T, x < y ? x : y)                \
    X(MAX, S, T, T, x > y ? x : y)

#define BIN_DEFINE(OP, S, T, OT, EXPR) BIN_ROW(bin_##OP##_##S, T, OT, EXPR)
#define FLOAT_DEFINE(S, T, W, LO, HI) FLOAT_OPS(BIN_DEFINE, S, T, W)
#define SINT_DEFINE(S, T, W, LO, HI) SINT_OPS(BIN_DEFINE, S, T, W)
#define UINT_DEFINE(S, T, W, LO, HI) UINT_OPS(BIN_DEFINE, S, T, W)
FLOAT_TYPES(FLOAT_DEFINE)
SINT_TYPES(SINT_DEFINE)
UINT_TYPES(UINT_DEFINE)
COMPARE_OPS(BIN_DEFINE, BOOL, uint8_t)

#define BIN_CASE(OP, S, T, OT, EXPR) case RT_OP_##OP: return bin_##OP##_##S;
#define FLOAT_LOOKUP(S, T, W, LO, HI) \
    case RT_DTYPE_##S: switch (op) { FLOAT_OPS(BIN_CASE, S, T, W) default: return NULL; }
#define SINT_LOOKUP(S, T, W, LO, HI) \
    case RT_DTYPE_##S: switch (op) { SINT_OPS(BIN_CASE, S, T, W) default: return NULL; }
#define UINT_LOOKUP(S, T, W, LO, HI) \
    case RT_DTYPE_##S: switch (op) { UINT_OPS(BIN_CASE, S, T, W) default: return NULL; }

/* The row function of op on dtype dt; NULL if there is none. */
static bin_row_fn bin_lookup(rt_op op, rt_dtype dt)
{
    switch (dt) {
    FLOAT_TYPES(FLOAT_LOOKUP)
    SINT_TYPES(SINT_LOOKUP)
    UINT_TYPES(UINT_LOOKUP)
    case RT_DTYPE_BOOL:
        switch (op) { COMPARE_OPS(BIN_CASE, BOOL, uint8_t) default: return NULL; }
    default:
        return NULL;
    }
}

static bool is_half(rt_dtype dt)
{
    return dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16;
}

/* ---- binary ops ---- */

typedef enum {
    BIN_DIRECT,   /* fn on the inputs' own dtype */
    BIN_HALF,     /* F16/BF16 inputs: fn is the F32 row function */
    BIN_POW_MIXED /* Pow on integers or with an exponent of another dtype */
} bin_mode;

typedef struct {
    bin_mode mode;
    bin_row_fn fn;
    const char *a, *b;
    char *o;
    rt_dtype ta, tb, to;
    size_t ea, eb, eo; /* element sizes */
} bin_job;

static void bin_half_rows(const bin_job *j, const uint16_t *a, int64_t sa, const uint16_t *b,
                          int64_t sb, char *o, int64_t n)
{
    float fa[HALF_BLOCK], fb[HALF_BLOCK], fo[HALF_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += HALF_BLOCK) {
        int64_t m = n - i0 < HALF_BLOCK ? n - i0 : HALF_BLOCK;
        rt_half_load(j->ta, a + i0 * sa, sa, fa, sa ? m : 1);
        rt_half_load(j->tb, b + i0 * sb, sb, fb, sb ? m : 1);
        if (j->to == RT_DTYPE_BOOL) {
            j->fn(m, fa, sa, fb, sb, o + i0);
        } else {
            j->fn(m, fa, sa, fb, sb, fo);
            rt_half_store(j->to, fo, (uint16_t *)o + i0, m);
        }
    }
}

static void bin_pow_mixed_rows(const bin_job *j, const char *a, int64_t sa, const char *b,
                               int64_t sb, char *o, int64_t n)
{
    bool ints = rt_dtype_is_integer(j->ta) && rt_dtype_is_integer(j->tb);
    for (int64_t i = 0; i < n; i++) {
        size_t ia = (size_t)(i * sa), ib = (size_t)(i * sb);
        if (ints) {
            int64_t x = rt_dtype_load_i64(j->ta, a, ia), y = rt_dtype_load_i64(j->tb, b, ib);
            rt_dtype_store_i64(j->to, o, (size_t)i, rt_ipow(x, y));
        } else {
            double x = rt_dtype_load_f64(j->ta, a, ia), y = rt_dtype_load_f64(j->tb, b, ib);
            rt_dtype_store_f64(j->to, o, (size_t)i, pow(x, y));
        }
    }
}

static void bin_run(void *arg, const int64_t *off, const int64_t *step, int64_t out_off, int64_t n)
{
    const bin_job *j = arg;
    const char *a = j->a + off[0] * (int64_t)j->ea, *b = j->b + off[1] * (int64_t)j->eb;
    char *o = j->o + out_off * (int64_t)j->eo;
    switch (j->mode) {
    case BIN_DIRECT: j->fn(n, a, step[0], b, step[1], o); break;
    case BIN_HALF:
        bin_half_rows(j, (const uint16_t *)a, step[0], (const uint16_t *)b, step[1], o, n);
        break;
    case BIN_POW_MIXED: bin_pow_mixed_rows(j, a, step[0], b, step[1], o, n); break;
    }
}

/* Pow(x, 2) on F32, which exporters write for LayerNorm's variance: x * x is the same
 * correctly rounded square at a fraction of powf's cost. */
static bool is_square(const rt_tensor *a, const rt_tensor *b)
{
    return a->dtype == RT_DTYPE_F32 && b->dtype == RT_DTYPE_F32 && rt_tensor_numel(b) == 1 &&
           ((const float *)b->data)[0] == 2.0f && b->shape.rank <= a->shape.rank;
}

/* Computes out = op(a, b) with broadcasting; out may be a itself (same shape). */
static rt_status bin_apply(rt_kernel_ctx *ctx, rt_op op, const rt_tensor *a, const rt_tensor *b,
                           rt_tensor *out, rt_error *err)
{
    bin_job j = {.mode = BIN_DIRECT, .a = a->data, .b = b->data, .o = out->data,
                 .ta = a->dtype, .tb = b->dtype, .to = out->dtype,
                 .ea = rt_dtype_size(a->dtype), .eb = rt_dtype_size(b->dtype),
                 .eo = rt_dtype_size(out->dtype)};
    if (op == RT_OP_POW && is_square(a, b)) {
        op = RT_OP_MUL;
        j.b = a->data;
        j.tb = a->dtype;
        j.eb = j.ea;
        b = a;
    }
    if (op == RT_OP_POW && (a->dtype != b->dtype || rt_dtype_is_integer(a->dtype)))
        j.mode = BIN_POW_MIXED;
    else if (is_half(a->dtype) && a->dtype == b->dtype)
        j.mode = BIN_HALF;
    if (j.mode != BIN_POW_MIXED) {
        j.fn = bin_lookup(op, j.mode == BIN_HALF ? RT_DTYPE_F32 : a->dtype);
        if (!j.fn || a->dtype != b->dtype)
            return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: no CPU kernel for %s and %s",
                                rt_op_name(op), rt_dtype_name(a->dtype), rt_dtype_name(b->dtype));
    }
    const rt_shape *shapes[2] = {&a->shape, &b->shape};
    rt_bcast plan;
    rt_bcast_init(&plan, &out->shape, shapes, 2);
    rt_bcast_run(&plan, ctx->threads, bin_run, &j);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_binary)
{
    (void)n_in;
    (void)n_out;
    return bin_apply(ctx, node->op, in[0], in[1], out[0], err);
}

/* Min/Max over n_in inputs: the first pair into out, then each further input into out. */
RT_CPU_KERNEL(rt_cpu_variadic)
{
    (void)n_out;
    if (n_in == 1) {
        memcpy(out[0]->data, in[0]->data, rt_tensor_nbytes(out[0]));
        return RT_OK;
    }
    rt_status st = bin_apply(ctx, node->op, in[0], in[1], out[0], err);
    for (int i = 2; i < n_in && st == RT_OK; i++)
        st = bin_apply(ctx, node->op, out[0], in[i], out[0], err);
    return st;
}

/* ---- Where ---- */

typedef struct {
    const uint8_t *cond;
    const char *x, *y;
    char *o;
    size_t es;
} where_job;

#define WHERE_ROW(T)                                                                       \
    do {                                                                                   \
        const T *x = (const T *)(j->x + off[1] * (int64_t)sizeof(T));                      \
        const T *y = (const T *)(j->y + off[2] * (int64_t)sizeof(T));                      \
        T *o = (T *)j->o + out_off;                                                        \
        for (int64_t i = 0; i < n; i++)                                                    \
            o[i] = c[i * step[0]] ? x[i * step[1]] : y[i * step[2]];                       \
    } while (0)

static void where_run(void *arg, const int64_t *off, const int64_t *step, int64_t out_off,
                      int64_t n)
{
    const where_job *j = arg;
    const uint8_t *c = j->cond + off[0];
    switch (j->es) {
    case 1: WHERE_ROW(uint8_t); break;
    case 2: WHERE_ROW(uint16_t); break;
    case 4: WHERE_ROW(uint32_t); break;
    case 8: WHERE_ROW(uint64_t); break;
    default: WHERE_ROW(rt_str); break;
    }
}

RT_CPU_KERNEL(rt_cpu_where)
{
    (void)node;
    (void)n_in;
    (void)n_out;
    (void)err;
    where_job j = {in[0]->data, in[1]->data, in[2]->data, out[0]->data,
                   rt_dtype_size(out[0]->dtype)};
    const rt_shape *shapes[3] = {&in[0]->shape, &in[1]->shape, &in[2]->shape};
    rt_bcast plan;
    rt_bcast_init(&plan, &out[0]->shape, shapes, 3);
    rt_bcast_run(&plan, ctx->threads, where_run, &j);
    return RT_OK;
}

/* ---- unary ops ---- */

typedef struct {
    rt_op op;
    double alpha;              /* LeakyRelu */
    double lo, hi;             /* Clip bounds for float dtypes */
    const void *ilo, *ihi;     /* Clip bounds for integer dtypes: elements of x's dtype, or NULL */
    rt_dtype dt;
    const char *x;
    char *y;
} unary_job;

/* y[i] = EXPR for all i, where EXPR reads x[i] as v; ends the switch case. */
#define MAP(T, EXPR)                                                                        \
    {                                                                                       \
        SIMD for (int64_t i = 0; i < n; i++) {                                              \
            const T v = x[i];                                                               \
            y[i] = (EXPR);                                                                  \
        }                                                                                   \
    }                                                                                       \
    break

/* max(v, lo) then min(., hi), so lo > hi gives hi (as ONNX says) and NaN passes through. */
#define CLAMP(v, lo, hi) ((v) < (lo) ? ((lo) > (hi) ? (hi) : (lo)) : (v) > (hi) ? (hi) : (v))

/* Float ops through <tgmath.h>, so that T = float calls sqrtf, expf and so on. Relu keeps
 * NaN, like numpy's maximum. */
#define UNARY_FLOAT(S, T, W, LO, HI)                                                        \
    static void unary_##S(const unary_job *p, int64_t n, const T *x, T *y)                  \
    {                                                                                       \
        const T alpha = (T)p->alpha, lo = (T)p->lo, hi = (T)p->hi;                          \
        switch (p->op) {                                                                    \
        case RT_OP_SQRT: MAP(T, sqrt(v));                                                   \
        case RT_OP_EXP: MAP(T, exp(v));                                                     \
        case RT_OP_LOG: MAP(T, log(v));                                                     \
        case RT_OP_NEG: MAP(T, -v);                                                         \
        case RT_OP_ABS: MAP(T, fabs(v));                                                    \
        case RT_OP_RECIPROCAL: MAP(T, (T)1 / v);                                            \
        case RT_OP_RELU: MAP(T, v < 0 ? 0 : v);                                             \
        case RT_OP_LEAKY_RELU: MAP(T, v < 0 ? v * alpha : v);                               \
        case RT_OP_SIGMOID: MAP(T, (T)1 / ((T)1 + exp(-v)));                                \
        case RT_OP_TANH: MAP(T, tanh(v));                                                   \
        case RT_OP_ERF: MAP(T, erf(v));                                                     \
        case RT_OP_CLIP: MAP(T, CLAMP(v, lo, hi));                                          \
        default: break;                                                                     \
        }                                                                                   \
    }

/* Integer ops (the infer function admits only these). `zero` is a variable so that the
 * sign tests, always false for unsigned T, compile without a type-limits warning. */
#define UNARY_INT(S, T, W, LO, HI)                                                          \
    static void unary_##S(const unary_job *p, int64_t n, const T *x, T *y)                  \
    {                                                                                       \
        const T lo = p->ilo ? *(const T *)p->ilo : LO;                                      \
        const T hi = p->ihi ? *(const T *)p->ihi : HI;                                      \
        const T zero = 0;                                                                   \
        switch (p->op) {                                                                    \
        case RT_OP_NEG: MAP(T, (T)(0 - (W)v));                                              \
        case RT_OP_ABS: MAP(T, v < zero ? (T)(0 - (W)v) : v);                               \
        case RT_OP_RELU: MAP(T, v < zero ? zero : v);                                       \
        case RT_OP_CLIP: MAP(T, CLAMP(v, lo, hi));                                          \
        default: break;                                                                     \
        }                                                                                   \
    }

FLOAT_TYPES(UNARY_FLOAT)
INT_TYPES(UNARY_INT)

static void unary_half(const unary_job *p, int64_t n, const uint16_t *x, uint16_t *y)
{
    float buf[HALF_BLOCK];
    for (int64_t i0 = 0; i0 < n; i0 += HALF_BLOCK) {
        int64_t m = n - i0 < HALF_BLOCK ? n - i0 : HALF_BLOCK;
        rt_half_load(p->dt, x + i0, 1, buf, m);
        unary_F32(p, m, buf, buf);
        rt_half_store(p->dt, buf, y + i0, m);
    }
}

#define UNARY_CASE(S, T, W, LO, HI) \
    case RT_DTYPE_##S: unary_##S(p, n, (const T *)p->x + off[0], (T *)p->y + out_off); break;

static void unary_run(void *arg, const int64_t *off, const int64_t *step, int64_t out_off,
                      int64_t n)
{
    (void)step; /* x has the output's shape: always 1 */
    const unary_job *p = arg;
    switch (p->dt) {
    FLOAT_TYPES(UNARY_CASE)
    INT_TYPES(UNARY_CASE)
    case RT_DTYPE_F16: case RT_DTYPE_BF16:
        unary_half(p, n, (const uint16_t *)p->x + off[0], (uint16_t *)p->y + out_off);
        break;
    default: /* BOOL: Not */
        for (int64_t i = 0; i < n; i++)
            p->y[out_off + i] = !p->x[off[0] + i];
        break;
    }
}

/* Clip bounds (rt_clip_bounds); integer dtypes read the bound inputs as elements of
 * x's dtype. */
static void clip_bounds(const rt_node *node, const rt_tensor *const *in, int n_in, unary_job *p)
{
    const rt_tensor *lo, *hi;
    rt_clip_bounds(node, in, n_in, &p->lo, &p->hi, &lo, &hi);
    p->ilo = lo ? lo->data : NULL;
    p->ihi = hi ? hi->data : NULL;
}

RT_CPU_KERNEL(rt_cpu_unary)
{
    (void)n_out;
    rt_dtype dt = in[0]->dtype;
    if (dt == RT_DTYPE_BYTES || (dt == RT_DTYPE_BOOL) != (node->op == RT_OP_NOT))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: no CPU kernel for %s",
                            rt_op_name(node->op), rt_dtype_name(dt));
    unary_job p = {.op = node->op, .alpha = rt_node_attr_float(node, "alpha", 0.01f),
                   .dt = dt, .x = in[0]->data, .y = out[0]->data};
    if (node->op == RT_OP_CLIP)
        clip_bounds(node, in, n_in, &p);
    const rt_shape *shapes[1] = {&in[0]->shape};
    rt_bcast plan;
    rt_bcast_init(&plan, &out[0]->shape, shapes, 1);
    rt_bcast_run(&plan, ctx->threads, unary_run, &p);
    return RT_OK;
}

/* ---- Identity and Dropout ---- */

/* MT19937 with numpy's legacy seeding and uniform doubles, so that a Dropout `seed`
 * draws the same mask as numpy.random.seed(seed) followed by uniform(0, 1, shape). */
typedef struct {
    uint32_t s[624];
    int i;
} mt19937;

static void mt_seed(mt19937 *m, uint32_t seed)
{
    m->s[0] = seed;
    for (uint32_t i = 1; i < 624; i++)
        m->s[i] = 1812433253u * (m->s[i - 1] ^ (m->s[i - 1] >> 30)) + i;
    m->i = 624;
}

static uint32_t mt_next(mt19937 *m)
{
    if (m->i == 624) {
        for (int k = 0; k < 624; k++) {
            uint32_t y = (m->s[k] & 0x80000000u) | (m->s[(k + 1) % 624] & 0x7fffffffu);
            m->s[k] = m->s[(k + 397) % 624] ^ (y >> 1) ^ ((y & 1u) ? 0x9908b0dfu : 0u);
        }
        m->i = 0;
    }
    uint32_t y = m->s[m->i++];
    y ^= y >> 11;
    y ^= (y << 7) & 0x9d2c5680u;
    y ^= (y << 15) & 0xefc60000u;
    return y ^ (y >> 18);
}

static double mt_uniform(mt19937 *m)
{
    uint32_t a = mt_next(m) >> 5, b = mt_next(m) >> 6;
    return (a * 67108864.0 + b) / 9007199254740992.0;
}

/* Training-mode Dropout: keeps each element with probability 1 - ratio, scaled by
 * 1 / (1 - ratio). Without a `seed` attribute the generator is seeded from the clock. */
static rt_status dropout_train(const rt_node *node, const rt_tensor *x, double ratio, rt_tensor *y,
                               rt_tensor *mask, rt_error *err)
{
    if (!rt_dtype_is_float(x->dtype))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "Dropout: training mode needs a float "
                            "input, not %s", rt_dtype_name(x->dtype));
    if (ratio < 0 || ratio >= 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Dropout: ratio %g is outside [0, 1)", ratio);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    mt19937 mt;
    mt_seed(&mt, (uint32_t)rt_node_attr_int(node, "seed", (int64_t)(ts.tv_nsec ^ ts.tv_sec)));
    float scale = (float)(1.0 / (1.0 - ratio));
    int64_t n = rt_tensor_numel(x);
    for (int64_t i = 0; i < n; i++) {
        bool keep = mt_uniform(&mt) >= ratio;
        double v = keep ? rt_dtype_load_f64(x->dtype, x->data, (size_t)i) * scale : 0.0;
        rt_dtype_store_f64(y->dtype, y->data, (size_t)i, v);
        if (mask)
            ((uint8_t *)mask->data)[i] = keep;
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_copy)
{
    (void)ctx;
    rt_tensor *mask = node->op == RT_OP_DROPOUT && n_out > 1 ? out[1] : NULL;
    if (node->op == RT_OP_DROPOUT) {
        double ratio = n_in > 1 && in[1] ? rt_dtype_load_f64(in[1]->dtype, in[1]->data, 0)
                                         : rt_node_attr_float(node, "ratio", 0.5f);
        bool training = n_in > 2 && in[2] && ((const uint8_t *)in[2]->data)[0];
        if (training && ratio != 0)
            return dropout_train(node, in[0], ratio, out[0], mask, err);
    }
    memcpy(out[0]->data, in[0]->data, rt_tensor_nbytes(out[0]));
    if (mask)
        memset(mask->data, 1, rt_tensor_nbytes(mask));
    return RT_OK;
}
