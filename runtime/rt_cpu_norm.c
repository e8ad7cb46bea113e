/* rt_cpu_norm.c: CPU kernels of the normalizations: BatchNormalization (inference, and
 * training_mode with running statistics), LayerNormalization, Softmax and LogSoftmax.
 * Each body is written once for float and double (F16/BF16 run through float copies). */
#include <string.h>
#include <tgmath.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"
#include "rt_cpu_strided.h"
#include "rt_cpu_vmath.h"
#include "rt_nn_params.h"

/* Below this many elements a loop stays on one thread. */
#define PAR_MIN 32768

static int64_t dims_product(const rt_shape *s, int from, int to)
{
    int64_t p = 1;
    for (int i = from; i < to; i++)
        p *= s->dims[i];
    return p;
}

/* ---- Softmax / LogSoftmax ---- */

typedef struct {
    int64_t outer, len, inner; /* the softmax runs over `len` elements `inner` apart */
    bool log;
} softmax_params;

#define DEFINE_SOFTMAX(T, SUF, EXP)                                                           \
    static inline void softmax_line_##SUF(const T *x, T *y, int64_t n, int64_t s, bool log_) \
    {                                                                                         \
        T mx = x[0];                                                                          \
        _Pragma("omp simd reduction(max:mx)")                                                 \
        for (int64_t i = 1; i < n; i++)                                                       \
            mx = mx > x[i * s] ? mx : x[i * s]; /* this order keeps mx in a register */     \
        T sum = 0;                                                                            \
        _Pragma("omp simd reduction(+:sum)")                                                  \
        for (int64_t i = 0; i < n; i++) {                                                     \
            T e = EXP(x[i * s] - mx);                                                         \
            y[i * s] = e;                                                                     \
            sum += e;                                                                         \
        }                                                                                     \
        if (log_) {                                                                           \
            T shift = mx + log(sum);                                                          \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i * s] = x[i * s] - shift;                                                  \
        } else {                                                                              \
            T r = 1 / sum;                                                                    \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i * s] *= r;                                                                \
        }                                                                                     \
    }                                                                                         \
    static rt_status softmax_body_##SUF(rt_kernel_ctx *ctx, const void *params,              \
                                        const rt_tensor *const *in, rt_tensor *const *out,    \
                                        void *scratch, rt_error *err)                         \
    {                                                                                         \
        (void)scratch, (void)err;                                                             \
        const softmax_params *p = params;                                                     \
        const T *x = in[0]->data;                                                             \
        T *y = out[0]->data;                                                                  \
        int64_t lines = p->outer * p->inner, len = p->len, inner = p->inner;                  \
        _Pragma("omp parallel for if(lines * len > PAR_MIN) num_threads(ctx->threads)")       \
        for (int64_t l = 0; l < lines; l++) {                                                 \
            int64_t off = l / inner * len * inner + l % inner;                                \
            /* the constant stride lets the compiler vectorize the common last-axis case */   \
            if (inner == 1)                                                                   \
                softmax_line_##SUF(x + off, y + off, len, 1, p->log);                         \
            else                                                                              \
                softmax_line_##SUF(x + off, y + off, len, inner, p->log);                     \
        }                                                                                     \
        return RT_OK;                                                                         \
    }

DEFINE_SOFTMAX(float, f32, rt_exp_f32)
DEFINE_SOFTMAX(double, f64, exp)

RT_CPU_KERNEL(rt_cpu_softmax)
{
    const rt_shape *s = &in[0]->shape;
    rt_dtype dt = in[0]->dtype;
    softmax_params p = {.log = node->op == RT_OP_LOG_SOFTMAX};
    if (!rt_dtype_is_float(dt))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    if (rt_tensor_numel(in[0]) == 0)
        return RT_OK;
    /* before opset 13 the input is flattened to 2-D at axis (default 1); from 13 on the
     * softmax runs along the single axis (default -1) */
    bool flatten = node->opset < 13;
    int axis = 0;
    rt_status st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", flatten ? 1 : -1),
                                     s->rank, flatten, &axis, err);
    if (st != RT_OK)
        return st;
    p.outer = dims_product(s, 0, axis);
    p.len = flatten ? dims_product(s, axis, s->rank) : s->dims[axis];
    p.inner = flatten ? 1 : dims_product(s, axis + 1, s->rank);
    if (p.len == 0)
        return RT_OK;
    return rt_nn_run(ctx, dt, dt == RT_DTYPE_F64 ? softmax_body_f64 : softmax_body_f32, &p, in,
                     n_in, out, n_out, 0, err);
}

/* ---- LayerNormalization ---- */

typedef struct {
    int64_t rows, cols;        /* normalized over rows of cols elements */
    const int64_t *norm_dims;  /* the normalized dims (X's dims from axis on) */
    int norm_rank;
    double epsilon;
} layernorm_params;

/* Scale or bias as a full row of cols elements: the tensor itself when it has that many
 * elements, else its broadcast copy in dst. */
static const void *norm_row(const rt_tensor *t, const layernorm_params *p, void *dst)
{
    if (!t || rt_tensor_numel(t) == p->cols)
        return t ? t->data : NULL;
    int64_t t_strides[RT_MAX_RANK], src[RT_MAX_RANK], dst_strides[RT_MAX_RANK];
    rt_strides_contiguous(&t->shape, t_strides);
    int off = p->norm_rank - t->shape.rank;
    for (int d = 0; d < p->norm_rank; d++)
        src[d] = d < off || t->shape.dims[d - off] == 1 ? 0 : t_strides[d - off];
    rt_shape norm = rt_shape_make(p->norm_rank, p->norm_dims);
    rt_strides_contiguous(&norm, dst_strides);
    rt_strided_copy(dst, dst_strides, t->data, src, p->norm_rank, p->norm_dims,
                    rt_dtype_size(t->dtype), 1);
    return dst;
}

#define DEFINE_LAYERNORM(T, SUF)                                                          \
    static rt_status layernorm_body_##SUF(rt_kernel_ctx *ctx, const void *params,            \
                                          const rt_tensor *const *in, rt_tensor *const *out,  \
                                          void *scratch, rt_error *err)                       \
    {                                                                                         \
        (void)err;                                                                            \
        const layernorm_params *p = params;                                                   \
        const T *x = in[0]->data;                                                             \
        T *y = out[0]->data;                                                                  \
        const T *scale = norm_row(in[1], p, scratch);                                         \
        const T *bias = norm_row(in[2], p, (T *)scratch + p->cols);                           \
        int64_t rows = p->rows, cols = p->cols;                                               \
        T eps = (T)p->epsilon;                                                                \
        _Pragma("omp parallel for if(rows * cols > PAR_MIN) num_threads(ctx->threads)")       \
        for (int64_t r = 0; r < rows; r++) {                                                  \
            const T *xr = x + r * cols;                                                       \
            T *yr = y + r * cols;                                                             \
            T sum = 0, sq = 0;                                                                \
            _Pragma("omp simd reduction(+:sum)")                                              \
            for (int64_t j = 0; j < cols; j++)                                                \
                sum += xr[j];                                                                 \
            T mean = sum / (T)cols;                                                           \
            _Pragma("omp simd reduction(+:sq)")                                               \
            for (int64_t j = 0; j < cols; j++)                                                \
                sq += (xr[j] - mean) * (xr[j] - mean);                                        \
            T inv = 1 / sqrt(sq / (T)cols + eps);                                             \
            if (bias) {                                                                       \
                _Pragma("omp simd")                                                           \
                for (int64_t j = 0; j < cols; j++)                                            \
                    yr[j] = (xr[j] - mean) * inv * scale[j] + bias[j];                        \
            } else {                                                                          \
                _Pragma("omp simd")                                                           \
                for (int64_t j = 0; j < cols; j++)                                            \
                    yr[j] = (xr[j] - mean) * inv * scale[j];                                  \
            }                                                                                 \
            if (out[1])                                                                       \
                rt_dtype_store_f64(out[1]->dtype, out[1]->data, (size_t)r, mean);             \
            if (out[2])                                                                       \
                rt_dtype_store_f64(out[2]->dtype, out[2]->data, (size_t)r, inv);              \
        }                                                                                     \
        return RT_OK;                                                                         \
    }

DEFINE_LAYERNORM(float, f32)
DEFINE_LAYERNORM(double, f64)

RT_CPU_KERNEL(rt_cpu_layernorm)
{
    const rt_shape *s = &in[0]->shape;
    int axis = 0;
    rt_status st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", -1), s->rank, false,
                                     &axis, err);
    if (st != RT_OK)
        return st;
    layernorm_params p = {
        .rows = dims_product(s, 0, axis),
        .cols = dims_product(s, axis, s->rank),
        .norm_dims = s->dims + axis,
        .norm_rank = s->rank - axis,
        .epsilon = rt_node_attr_float(node, "epsilon", 1e-5f),
    };
    if (p.rows == 0)
        return RT_OK;
    const rt_tensor *args[3] = {in[0], in[1], n_in > 2 ? in[2] : NULL};
    rt_tensor *res[3] = {out[0], n_out > 1 ? out[1] : NULL, n_out > 2 ? out[2] : NULL};
    rt_dtype dt = in[0]->dtype;
    return rt_nn_run(ctx, dt, dt == RT_DTYPE_F64 ? layernorm_body_f64 : layernorm_body_f32, &p,
                     args, 3, res, 3, 2 * (size_t)p.cols, err);
}

/* ---- BatchNormalization ---- */

typedef struct {
    int64_t n, c, plane;       /* X is (n, c, plane...) */
    double epsilon, momentum;
    bool training;
} batchnorm_params;

/* Per-channel mean and population variance of X over the batch and spatial dims. */
#define DEFINE_BATCH_STATS(T, SUF)                                                            \
    static void batch_stats_##SUF(rt_kernel_ctx *ctx, const batchnorm_params *p, const T *x, \
                                  double *mean, double *var)                                  \
    {                                                                                         \
        int64_t c = p->c, n = p->n, plane = p->plane;                                         \
        _Pragma("omp parallel for if(n * c * plane > PAR_MIN) num_threads(ctx->threads)")     \
        for (int64_t ch = 0; ch < c; ch++) {                                                  \
            double sum = 0, sq = 0;                                                           \
            for (int64_t b = 0; b < n; b++) {                                                 \
                const T *xp = x + (b * c + ch) * plane;                                       \
                for (int64_t i = 0; i < plane; i++)                                           \
                    sum += xp[i];                                                             \
            }                                                                                 \
            double m = sum / (double)(n * plane);                                             \
            for (int64_t b = 0; b < n; b++) {                                                 \
                const T *xp = x + (b * c + ch) * plane;                                       \
                for (int64_t i = 0; i < plane; i++)                                           \
                    sq += (xp[i] - m) * (xp[i] - m);                                          \
            }                                                                                 \
            mean[ch] = m;                                                                     \
            var[ch] = sq / (double)(n * plane);                                               \
        }                                                                                     \
    }

#define DEFINE_BATCHNORM(T, SUF)                                                              \
    DEFINE_BATCH_STATS(T, SUF)                                                                \
    static rt_status batchnorm_body_##SUF(rt_kernel_ctx *ctx, const void *params,            \
                                          const rt_tensor *const *in, rt_tensor *const *out,  \
                                          void *scratch, rt_error *err)                       \
    {                                                                                         \
        (void)err;                                                                            \
        const batchnorm_params *p = params;                                                   \
        const T *x = in[0]->data;                                                             \
        T *y = out[0]->data;                                                                  \
        double *mean = scratch, *var = mean + p->c;                                           \
        T *a = (T *)(var + p->c), *b = a + p->c;                                              \
        if (p->training)                                                                      \
            batch_stats_##SUF(ctx, p, x, mean, var);                                          \
        for (int64_t ch = 0; ch < p->c; ch++) {                                               \
            if (!p->training) {                                                               \
                mean[ch] = rt_dtype_load_f64(in[3]->dtype, in[3]->data, (size_t)ch);          \
                var[ch] = rt_dtype_load_f64(in[4]->dtype, in[4]->data, (size_t)ch);           \
            }                                                                                 \
            double s = rt_dtype_load_f64(in[1]->dtype, in[1]->data, (size_t)ch);              \
            double bias = rt_dtype_load_f64(in[2]->dtype, in[2]->data, (size_t)ch);           \
            double g = s / sqrt(var[ch] + p->epsilon);                                        \
            a[ch] = (T)g;                                                                     \
            b[ch] = (T)(bias - mean[ch] * g);                                                 \
            for (int k = 1; k < 3 && p->training; k++) {                                      \
                if (!out[k])                                                                  \
                    continue;                                                                 \
                double run = rt_dtype_load_f64(in[2 + k]->dtype, in[2 + k]->data, (size_t)ch); \
                double now = k == 1 ? mean[ch] : var[ch];                                     \
                rt_dtype_store_f64(out[k]->dtype, out[k]->data, (size_t)ch,                   \
                                   run * p->momentum + now * (1 - p->momentum));              \
            }                                                                                 \
        }                                                                                     \
        int64_t planes = p->n * p->c, plane = p->plane, c = p->c;                             \
        _Pragma("omp parallel for if(planes * plane > PAR_MIN) num_threads(ctx->threads)")    \
        for (int64_t q = 0; q < planes; q++) {                                                \
            const T *xp = x + q * plane;                                                      \
            T *yp = y + q * plane, ga = a[q % c], gb = b[q % c];                              \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < plane; i++)                                               \
                yp[i] = xp[i] * ga + gb;                                                      \
        }                                                                                     \
        return RT_OK;                                                                         \
    }

DEFINE_BATCHNORM(float, f32)
DEFINE_BATCHNORM(double, f64)

RT_CPU_KERNEL(rt_cpu_batchnorm)
{
    const rt_shape *s = &in[0]->shape;
    batchnorm_params p = {
        .n = s->dims[0],
        .c = s->dims[1],
        .plane = dims_product(s, 2, s->rank),
        .epsilon = rt_node_attr_float(node, "epsilon", 1e-5f),
        .momentum = rt_node_attr_float(node, "momentum", 0.9f),
        .training = node->opset >= 14 && rt_node_attr_int(node, "training_mode", 0) != 0,
    };
    if (p.training && p.n * p.plane == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "BatchNormalization: training mode needs a non-empty batch");
    rt_tensor *res[3] = {out[0], n_out > 1 ? out[1] : NULL, n_out > 2 ? out[2] : NULL};
    rt_dtype dt = in[0]->dtype;
    /* scratch: mean and variance as double, then the per-channel affine a, b; 6 elements
     * per channel cover this for float and double */
    return rt_nn_run(ctx, dt, dt == RT_DTYPE_F64 ? batchnorm_body_f64 : batchnorm_body_f32, &p,
                     in, n_in, res, 3, 6 * (size_t)p.c, err);
}
