/* rt_cpu_reduce.c: CPU kernels of ReduceSum, ReduceMean, ReduceMax and ArgMax.
 *
 * A reduction first drops dims of size 1 and merges neighbouring dims that are both
 * reduced or both kept; each remaining reduced block is then one (outer, R, inner) pass,
 * last block first, through scratch. Floats compute in their own type (F16/BF16 in float),
 * integers in int64. */
#include <math.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"
#include "rt_nn_params.h"

#define PAR_MIN 32768
/* columns of the inner dim handled by one OpenMP iteration */
#define COL_BLOCK 256

#define PRAGMA(x) _Pragma(#x)
#define COMBINE_SUM(a, b) ((a) + (b))
#define COMBINE_MAX(a, b) ((b) > (a) ? (b) : (a))

typedef struct {
    int n;                        /* merged blocks */
    int passes;                   /* reduced blocks among them */
    int64_t dims[RT_MAX_RANK];
    bool reduced[RT_MAX_RANK];
    int64_t count;                /* elements reduced into each output */
    int64_t in_numel;
    rt_op op;
} reduce_params;

/* y[o, i] = combine over r of x[o, r, i]. */
#define DEFINE_REDUCE_PASS(T, SUF, NAME, RID, COMBINE)                                        \
    static void reduce_##NAME##_##SUF(rt_kernel_ctx *ctx, const T *x, T *y, int64_t outer,    \
                                      int64_t len, int64_t inner)                             \
    {                                                                                         \
        int64_t blocks = (inner + COL_BLOCK - 1) / COL_BLOCK, tasks = outer * blocks;         \
        PRAGMA(omp parallel for if(outer * len * inner > PAR_MIN) num_threads(ctx->threads))  \
        for (int64_t t = 0; t < tasks; t++) {                                                 \
            const T *xo = x + t / blocks * len * inner;                                       \
            T *yo = y + t / blocks * inner;                                                   \
            if (inner == 1) {                                                                 \
                T acc = xo[0];                                                                \
                PRAGMA(omp simd reduction(RID:acc))                                           \
                for (int64_t r = 1; r < len; r++)                                             \
                    acc = COMBINE(acc, xo[r]);                                                \
                yo[0] = acc;                                                                  \
                continue;                                                                     \
            }                                                                                 \
            int64_t i0 = t % blocks * COL_BLOCK;                                              \
            int64_t i1 = i0 + COL_BLOCK < inner ? i0 + COL_BLOCK : inner;                     \
            memcpy(yo + i0, xo + i0, sizeof(T) * (size_t)(i1 - i0));                          \
            for (int64_t r = 1; r < len; r++) {                                               \
                const T *xr = xo + r * inner;                                                 \
                PRAGMA(omp simd)                                                              \
                for (int64_t i = i0; i < i1; i++)                                             \
                    yo[i] = COMBINE(yo[i], xr[i]);                                            \
            }                                                                                 \
        }                                                                                     \
    }

/* All passes from x into y (scratch holds in_numel elements for the intermediates). */
#define DEFINE_REDUCE(T, SUF)                                                                 \
    DEFINE_REDUCE_PASS(T, SUF, sum, +, COMBINE_SUM)                                           \
    DEFINE_REDUCE_PASS(T, SUF, max, max, COMBINE_MAX)                                         \
    static void reduce_run_##SUF(rt_kernel_ctx *ctx, const reduce_params *p, const T *x,     \
                                 T *y, T *scratch)                                            \
    {                                                                                         \
        reduce_params q = *p;                                                                 \
        int passes = p->passes;                                                               \
        if (passes == 0)                                                                      \
            memcpy(y, x, sizeof(T) * (size_t)p->in_numel);                                    \
        const T *src = x;                                                                     \
        for (int pass = 0; pass < passes; pass++) {                                           \
            int k = q.n - 1;                                                                  \
            while (!q.reduced[k])                                                             \
                k--;                                                                          \
            int64_t outer = 1, inner = 1;                                                     \
            for (int i = 0; i < k; i++)                                                       \
                outer *= q.dims[i];                                                           \
            for (int i = k + 1; i < q.n; i++)                                                 \
                inner *= q.dims[i];                                                           \
            /* each pass at least halves the data, so two halves of scratch suffice */        \
            T *dst = pass == passes - 1 ? y                                                   \
                     : pass % 2 == 0    ? scratch                                             \
                                        : scratch + (p->in_numel + 1) / 2;                    \
            if (p->op == RT_OP_REDUCE_MAX)                                                    \
                reduce_max_##SUF(ctx, src, dst, outer, q.dims[k], inner);                     \
            else                                                                              \
                reduce_sum_##SUF(ctx, src, dst, outer, q.dims[k], inner);                     \
            memmove(q.dims + k, q.dims + k + 1, sizeof(int64_t) * (size_t)(q.n - k - 1));     \
            memmove(q.reduced + k, q.reduced + k + 1, sizeof(bool) * (size_t)(q.n - k - 1));  \
            q.n--;                                                                            \
            src = dst;                                                                        \
        }                                                                                     \
        if (p->op == RT_OP_REDUCE_MEAN && p->count > 1) {                                     \
            int64_t n = p->in_numel / p->count;                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] /= (T)p->count;                                                          \
        }                                                                                     \
    }

DEFINE_REDUCE(float, f32)
DEFINE_REDUCE(double, f64)
DEFINE_REDUCE(int64_t, i64)

static rt_status reduce_body(rt_kernel_ctx *ctx, const void *params, const rt_tensor *const *in,
                             rt_tensor *const *out, void *scratch, rt_error *err)
{
    (void)err;
    if (in[0]->dtype == RT_DTYPE_F64)
        reduce_run_f64(ctx, params, in[0]->data, out[0]->data, scratch);
    else
        reduce_run_f32(ctx, params, in[0]->data, out[0]->data, scratch);
    return RT_OK;
}

/* Integers: int64 copies of the input and output around reduce_run_i64. */
static rt_status reduce_int(rt_kernel_ctx *ctx, const reduce_params *p, const rt_tensor *x,
                            rt_tensor *y, rt_error *err)
{
    size_t nx = (size_t)p->in_numel, ny = (size_t)rt_tensor_numel(y);
    size_t px = rt_scratch_piece(nx, sizeof(int64_t)), py = rt_scratch_piece(ny, sizeof(int64_t));
    char *s;
    rt_status st = rt_nn_scratch(ctx, 2 * px + py, (void **)&s, err);
    if (st != RT_OK)
        return st;
    int64_t *xs = (int64_t *)s, *ys = (int64_t *)(s + px);
    for (size_t i = 0; i < nx; i++)
        xs[i] = rt_dtype_load_i64(x->dtype, x->data, i);
    reduce_run_i64(ctx, p, xs, ys, (int64_t *)(s + px + py));
    for (size_t i = 0; i < ny; i++)
        rt_dtype_store_i64(y->dtype, y->data, i, ys[i]);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_reduce)
{
    (void)n_out;
    const rt_shape *s = &in[0]->shape;
    bool reduced[RT_MAX_RANK];
    rt_status st = rt_reduce_axes(node, in, n_in, s->rank, reduced, err);
    if (st != RT_OK)
        return st;
    reduce_params p = {.count = 1, .in_numel = rt_tensor_numel(in[0]), .op = node->op};
    for (int i = 0; i < s->rank; i++) {
        if (reduced[i])
            p.count *= s->dims[i];
        if (s->dims[i] == 1)
            continue;
        if (p.n > 0 && p.reduced[p.n - 1] == reduced[i]) {
            p.dims[p.n - 1] *= s->dims[i];
        } else {
            p.dims[p.n] = s->dims[i];
            p.reduced[p.n++] = reduced[i];
        }
    }
    int64_t n_y = rt_tensor_numel(out[0]);
    if (n_y == 0)
        return RT_OK;
    if (p.count == 0) {
        if (node->op != RT_OP_REDUCE_SUM)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s over an empty axis",
                                rt_op_name(node->op));
        memset(out[0]->data, 0, rt_tensor_nbytes(out[0]));
        return RT_OK;
    }
    for (int i = 0; i < p.n; i++)
        p.passes += p.reduced[i];
    rt_dtype dt = in[0]->dtype;
    if (rt_dtype_is_integer(dt))
        return reduce_int(ctx, &p, in[0], out[0], err);
    return rt_nn_run(ctx, dt, reduce_body, &p, in, 1, out, 1,
                     p.passes > 1 ? (size_t)p.in_numel : 0, err);
}

/* ---- ArgMax ---- */

typedef struct {
    int64_t outer, len, inner;
    bool last;                    /* select_last_index: ties go to the last index */
} argmax_params;

#define DEFINE_ARGMAX(SUF, LOAD)                                                              \
    static void argmax_##SUF(rt_kernel_ctx *ctx, const argmax_params *p, rt_dtype dt,        \
                             const void *x, int64_t *y)                                       \
    {                                                                                         \
        (void)dt;                                                                             \
        int64_t lines = p->outer * p->inner, len = p->len, inner = p->inner;                  \
        PRAGMA(omp parallel for if(lines * len > PAR_MIN) num_threads(ctx->threads))          \
        for (int64_t l = 0; l < lines; l++) {                                                 \
            size_t base = (size_t)(l / inner * len * inner + l % inner);                      \
            double best = LOAD(base);                                                         \
            int64_t at = 0;                                                                   \
            for (int64_t r = 1; r < len; r++) {                                               \
                double v = LOAD(base + (size_t)(r * inner));                                  \
                if (v > best || (p->last && v == best)) {                                     \
                    best = v;                                                                 \
                    at = r;                                                                   \
                }                                                                             \
            }                                                                                 \
            y[l] = at;                                                                        \
        }                                                                                     \
    }

#define LOAD_F32(i) ((const float *)x)[i]
#define LOAD_ANY(i) rt_dtype_load_f64(dt, x, i)
DEFINE_ARGMAX(f32, LOAD_F32)
DEFINE_ARGMAX(any, LOAD_ANY)

RT_CPU_KERNEL(rt_cpu_argmax)
{
    (void)n_in, (void)n_out;
    const rt_shape *s = &in[0]->shape;
    int axis = 0;
    rt_status st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", 0), s->rank, false,
                                     &axis, err);
    if (st != RT_OK)
        return st;
    argmax_params p = {.outer = 1, .inner = 1, .len = s->dims[axis],
                       .last = rt_node_attr_int(node, "select_last_index", 0) != 0};
    for (int i = 0; i < axis; i++)
        p.outer *= s->dims[i];
    for (int i = axis + 1; i < s->rank; i++)
        p.inner *= s->dims[i];
    if (in[0]->dtype == RT_DTYPE_F32)
        argmax_f32(ctx, &p, in[0]->dtype, in[0]->data, out[0]->data);
    else
        argmax_any(ctx, &p, in[0]->dtype, in[0]->data, out[0]->data);
    return RT_OK;
}
