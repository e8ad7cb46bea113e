/* rt_cpu_pool.c: CPU kernels of MaxPool (with the optional Indices output), AveragePool
 * and GlobalAveragePool, one (N, C) plane per OpenMP iteration. Windows of 1 to 3 spatial
 * dims run through one 3-D loop nest; F16/BF16/I8/U8 go through float copies. */
#include <math.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"

#define PAR_MIN 32768

typedef struct {
    rt_window w;              /* padded to 3 spatial dims */
    int64_t planes, in_plane, out_plane;
    int64_t inner_lo, inner_hi; /* outputs along the last dim whose window lies inside X */
    bool max, include_pad, col_major;
} pool_params;

/* Taps along dim i of a window starting at `start`: the ones inside X as [*lo, *hi), and
 * returned, how many of them an average divides by. */
static int64_t pool_taps(const pool_params *p, int i, int64_t start, int64_t *lo, int64_t *hi)
{
    const rt_window *w = &p->w;
    rt_window_range(start, w->dilation[i], w->in[i], w->kernel[i], lo, hi);
    if (!p->include_pad)
        return *hi - *lo;
    /* taps in the explicit padding count, the ceil_mode overhang beyond it does not */
    int64_t plo, phi;
    rt_window_range(start + w->pad_begin[i], w->dilation[i],
                    w->in[i] + w->pad_begin[i] + w->pad_end[i], w->kernel[i], &plo, &phi);
    return phi - plo;
}

/* The window along dims 0 and 1 shared by one row of outputs. */
typedef struct {
    int64_t start[2], lo[2], hi[2];
    int64_t count;            /* divisor contribution of dims 0 and 1 */
} pool_row;

static pool_row pool_row_at(const pool_params *p, int64_t od, int64_t oh)
{
    pool_row r;
    r.start[0] = od * p->w.stride[0] - p->w.pad_begin[0];
    r.start[1] = oh * p->w.stride[1] - p->w.pad_begin[1];
    r.count = pool_taps(p, 0, r.start[0], &r.lo[0], &r.hi[0]) *
              pool_taps(p, 1, r.start[1], &r.lo[1], &r.hi[1]);
    return r;
}

/* Flattened input index of (plane q; id, ih, iw) for MaxPool's Indices output, in row- or
 * column-major order of the spatial dims. */
static int64_t pool_index(const pool_params *p, int64_t q, int64_t id, int64_t ih, int64_t iw)
{
    const int64_t *in = p->w.in;
    int64_t s = p->col_major ? id + in[0] * (ih + in[1] * iw) : (id * in[1] + ih) * in[2] + iw;
    return q * p->in_plane + s;
}

/* pool_point: one output by visiting its taps (borders, and every output when Indices are
 * wanted). pool_interior: the outputs of a row whose windows lie inside X, one tap at a
 * time across the row so that the loops vectorize. */
#define DEFINE_POOL(T, SUF)                                                                   \
    static T pool_point_##SUF(const pool_params *p, int64_t q, const T *x, const pool_row *r, \
                              int64_t ow, int64_t *at)                                        \
    {                                                                                         \
        const rt_window *w = &p->w;                                                           \
        int64_t sw = ow * w->stride[2] - w->pad_begin[2], lo, hi;                             \
        int64_t count = r->count * pool_taps(p, 2, sw, &lo, &hi);                             \
        T best = -INFINITY, sum = 0;                                                          \
        /* the first tap until a larger value shows up */                                    \
        int64_t bd = r->start[0] + r->lo[0] * w->dilation[0];                                 \
        int64_t bh = r->start[1] + r->lo[1] * w->dilation[1];                                 \
        int64_t bw = sw + lo * w->dilation[2];                                                \
        for (int64_t kd = r->lo[0]; kd < r->hi[0]; kd++) {                                    \
            int64_t id = r->start[0] + kd * w->dilation[0];                                   \
            for (int64_t kh = r->lo[1]; kh < r->hi[1]; kh++) {                                \
                int64_t ih = r->start[1] + kh * w->dilation[1];                               \
                const T *row = x + (id * w->in[1] + ih) * w->in[2];                           \
                for (int64_t kw = lo; kw < hi; kw++) {                                        \
                    int64_t iw = sw + kw * w->dilation[2];                                    \
                    T v = row[iw];                                                            \
                    sum += v;                                                                 \
                    if (v > best) {                                                           \
                        best = v;                                                             \
                        bd = id, bh = ih, bw = iw;                                            \
                    }                                                                         \
                }                                                                             \
            }                                                                                 \
        }                                                                                     \
        *at = pool_index(p, q, bd, bh, bw);                                                   \
        return p->max ? best : sum / (T)count;                                                \
    }                                                                                         \
    static inline void pool_tap_##SUF(T *y, const T *x, int64_t n, int64_t s, bool max)       \
    {                                                                                         \
        if (max) {                                                                            \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] = x[i * s] > y[i] ? x[i * s] : y[i];                                     \
        } else {                                                                              \
            _Pragma("omp simd")                                                               \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] += x[i * s];                                                             \
        }                                                                                     \
    }                                                                                         \
    static void pool_interior_##SUF(const pool_params *p, const T *x, const pool_row *r,      \
                                    T *y, int64_t n)                                          \
    {                                                                                         \
        const rt_window *w = &p->w;                                                           \
        int64_t s = w->stride[2];                                                             \
        for (int64_t i = 0; i < n; i++)                                                       \
            y[i] = p->max ? -INFINITY : 0;                                                    \
        for (int64_t kd = r->lo[0]; kd < r->hi[0]; kd++)                                      \
            for (int64_t kh = r->lo[1]; kh < r->hi[1]; kh++) {                                \
                int64_t id = r->start[0] + kd * w->dilation[0];                               \
                int64_t ih = r->start[1] + kh * w->dilation[1];                               \
                const T *row = x + (id * w->in[1] + ih) * w->in[2]                            \
                               + p->inner_lo * s - w->pad_begin[2];                           \
                for (int64_t kw = 0; kw < w->kernel[2]; kw++) {                               \
                    const T *tap = row + kw * w->dilation[2];                                 \
                    /* constant strides let the common cases vectorize */                     \
                    if (s == 1)                                                               \
                        pool_tap_##SUF(y, tap, n, 1, p->max);                                 \
                    else if (s == 2)                                                          \
                        pool_tap_##SUF(y, tap, n, 2, p->max);                                 \
                    else                                                                      \
                        pool_tap_##SUF(y, tap, n, s, p->max);                                 \
                }                                                                             \
            }                                                                                 \
        if (!p->max) {                                                                        \
            T count = (T)(r->count * w->kernel[2]);                                           \
            for (int64_t i = 0; i < n; i++)                                                   \
                y[i] /= count;                                                                \
        }                                                                                     \
    }                                                                                         \
    static void pool_plane_##SUF(const pool_params *p, int64_t q, const T *x, T *y,           \
                                 int64_t *indices)                                            \
    {                                                                                         \
        const rt_window *w = &p->w;                                                           \
        int64_t o2 = w->out[2];                                                               \
        int64_t lo = indices ? o2 : p->inner_lo, hi = indices ? o2 : p->inner_hi;             \
        for (int64_t od = 0; od < w->out[0]; od++)                                            \
            for (int64_t oh = 0; oh < w->out[1]; oh++) {                                      \
                pool_row r = pool_row_at(p, od, oh);                                          \
                int64_t off = (od * w->out[1] + oh) * o2, at;                                 \
                for (int64_t ow = 0; ow < o2; ow++) {                                         \
                    if (ow >= lo && ow < hi)                                                  \
                        continue;                                                             \
                    y[off + ow] = pool_point_##SUF(p, q, x, &r, ow, &at);                     \
                    if (indices)                                                              \
                        indices[off + ow] = at;                                               \
                }                                                                             \
                if (lo < hi)                                                                  \
                    pool_interior_##SUF(p, x, &r, y + off + lo, hi - lo);                     \
            }                                                                                 \
    }                                                                                         \
    static rt_status pool_body_##SUF(rt_kernel_ctx *ctx, const void *params,                 \
                                     const rt_tensor *const *in, rt_tensor *const *out,       \
                                     void *scratch, rt_error *err)                            \
    {                                                                                         \
        (void)scratch, (void)err;                                                             \
        const pool_params *p = params;                                                        \
        const T *x = in[0]->data;                                                             \
        T *y = out[0]->data;                                                                  \
        int64_t *indices = out[1] ? out[1]->data : NULL;                                      \
        int64_t planes = p->planes, work = planes * p->out_plane;                             \
        _Pragma("omp parallel for if(work > PAR_MIN / 8) num_threads(ctx->threads)")          \
        for (int64_t q = 0; q < planes; q++)                                                  \
            pool_plane_##SUF(p, q, x + q * p->in_plane, y + q * p->out_plane,                 \
                             indices ? indices + q * p->out_plane : NULL);                    \
        return RT_OK;                                                                         \
    }                                                                                         \
    static rt_status global_avg_body_##SUF(rt_kernel_ctx *ctx, const void *params,           \
                                           const rt_tensor *const *in, rt_tensor *const *out, \
                                           void *scratch, rt_error *err)                      \
    {                                                                                         \
        (void)scratch, (void)err;                                                             \
        const pool_params *p = params;                                                        \
        const T *x = in[0]->data;                                                             \
        T *y = out[0]->data;                                                                  \
        int64_t planes = p->planes, n = p->in_plane;                                          \
        _Pragma("omp parallel for if(planes * n > PAR_MIN) num_threads(ctx->threads)")        \
        for (int64_t q = 0; q < planes; q++) {                                                \
            T sum = 0;                                                                        \
            _Pragma("omp simd reduction(+:sum)")                                              \
            for (int64_t i = 0; i < n; i++)                                                   \
                sum += x[q * n + i];                                                          \
            y[q] = sum / (T)n;                                                                \
        }                                                                                     \
        return RT_OK;                                                                         \
    }

DEFINE_POOL(float, f32)
DEFINE_POOL(double, f64)

RT_CPU_KERNEL(rt_cpu_pool)
{
    (void)n_in;
    const rt_shape *x = &in[0]->shape;
    pool_params p = {
        .planes = x->dims[0] * x->dims[1],
        .in_plane = 1,
        .max = node->op == RT_OP_MAX_POOL,
        .include_pad = rt_node_attr_int(node, "count_include_pad", 0) != 0,
        .col_major = rt_node_attr_int(node, "storage_order", 0) == 1,
    };
    for (int i = 2; i < x->rank; i++)
        p.in_plane *= x->dims[i];
    rt_tensor *res[2] = {out[0], n_out > 1 ? out[1] : NULL};
    rt_dtype dt = in[0]->dtype;
    bool f64 = dt == RT_DTYPE_F64;
    if (node->op == RT_OP_GLOBAL_AVERAGE_POOL) {
        if (p.in_plane == 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "GlobalAveragePool: the spatial dims are empty");
        return rt_nn_run(ctx, dt, f64 ? global_avg_body_f64 : global_avg_body_f32, &p, in, 1,
                         res, 1, 0, err);
    }
    rt_status st = rt_window_resolve(node, x, NULL, &p.w, err);
    if (st == RT_OK)
        st = rt_window_pad3(&p.w, err);
    if (st != RT_OK)
        return st;
    p.out_plane = p.w.out[0] * p.w.out[1] * p.w.out[2];
    /* the whole window is inside X when its start is in [0, in - extent] */
    int64_t extent = (p.w.kernel[2] - 1) * p.w.dilation[2] + 1;
    rt_window_range(-p.w.pad_begin[2], p.w.stride[2], p.w.in[2] - extent + 1, p.w.out[2],
                    &p.inner_lo, &p.inner_hi);
    return rt_nn_run(ctx, dt, f64 ? pool_body_f64 : pool_body_f32, &p, in, 1, res, 2, 0, err);
}
