/* rt_cpu_conv.c: CPU kernel of Conv (1-D to 3-D, groups, strides, dilations, pads,
 * auto_pad, optional bias): per image and group, im2col into scratch and one OpenBLAS GEMM
 * of the group's weights with the columns; groups of one input channel (depthwise) run
 * direct loops instead. F16/BF16 run through float copies. */
#include <cblas.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"

#define PAR_MIN 32768

typedef struct {
    rt_window w;                /* padded to 3 spatial dims */
    int64_t n, c, m, group;     /* X is (n, c, ...), W is (m, c / group, ...) */
    int64_t in_plane, out_plane, kvol;
    bool direct;                /* 1x1, stride 1, no padding: X is its own column matrix */
    bool depthwise;             /* one input channel per group */
} conv_params;

/* im2col: row (ch, kd, kh, kw) of col holds, for every output position, the input element
 * under that kernel tap (0 in the padding). */
#define DEFINE_CONV(T, SUF, GEMM)                                                             \
    static void im2col_##SUF(rt_kernel_ctx *ctx, const conv_params *p, const T *x, T *col,    \
                             int64_t channels)                                                \
    {                                                                                         \
        const rt_window *w = &p->w;                                                           \
        int64_t rows = channels * p->kvol, o1 = w->out[1], o2 = w->out[2], P = p->out_plane;  \
        _Pragma("omp parallel for if(rows * P > PAR_MIN) num_threads(ctx->threads)")         \
        for (int64_t r = 0; r < rows; r++) {                                                  \
            int64_t k = r % p->kvol;                                                          \
            int64_t kw = k % w->kernel[2], kh = k / w->kernel[2] % w->kernel[1];              \
            int64_t kd = k / (w->kernel[2] * w->kernel[1]);                                   \
            const T *xc = x + r / p->kvol * p->in_plane;                                      \
            T *dst = col + r * P;                                                             \
            int64_t lo, hi, off = kw * w->dilation[2] - w->pad_begin[2];                      \
            rt_window_range(off, w->stride[2], w->in[2], o2, &lo, &hi);                       \
            for (int64_t od = 0; od < w->out[0]; od++)                                        \
                for (int64_t oh = 0; oh < o1; oh++) {                                         \
                    T *drow = dst + (od * o1 + oh) * o2;                                      \
                    int64_t id = od * w->stride[0] - w->pad_begin[0] + kd * w->dilation[0];   \
                    int64_t ih = oh * w->stride[1] - w->pad_begin[1] + kh * w->dilation[1];   \
                    if (id < 0 || id >= w->in[0] || ih < 0 || ih >= w->in[1]) {               \
                        memset(drow, 0, sizeof(T) * (size_t)o2);                              \
                        continue;                                                             \
                    }                                                                         \
                    const T *xrow = xc + (id * w->in[1] + ih) * w->in[2];                     \
                    memset(drow, 0, sizeof(T) * (size_t)lo);                                  \
                    if (w->stride[2] == 1)                                                    \
                        memcpy(drow + lo, xrow + lo + off, sizeof(T) * (size_t)(hi - lo));    \
                    else                                                                      \
                        for (int64_t ow = lo; ow < hi; ow++)                                  \
                            drow[ow] = xrow[ow * w->stride[2] + off];                         \
                    memset(drow + hi, 0, sizeof(T) * (size_t)(o2 - hi));                      \
                }                                                                             \
        }                                                                                     \
    }                                                                                         \
    static inline void conv_tap_##SUF(T *y, const T *x, T wv, int64_t n, int64_t s)          \
    {                                                                                         \
        _Pragma("omp simd")                                                                   \
        for (int64_t i = 0; i < n; i++)                                                       \
            y[i] += wv * x[i * s];                                                            \
    }                                                                                         \
    /* One output plane from one input plane: each tap adds its weighted inputs to the    \
     * outputs it reaches, a row at a time (im2col + a 1-row GEMM would move kvol times the \
     * data). */                                                                             \
    static void depthwise_plane_##SUF(const conv_params *p, const T *x, const T *wk, T bias,  \
                                      T *y)                                                   \
    {                                                                                         \
        const rt_window *w = &p->w;                                                           \
        int64_t o2 = w->out[2], s = w->stride[2];                                             \
        for (int64_t i = 0; i < p->out_plane; i++)                                            \
            y[i] = bias;                                                                      \
        for (int64_t od = 0; od < w->out[0]; od++)                                            \
            for (int64_t oh = 0; oh < w->out[1]; oh++) {                                      \
                T *yr = y + (od * w->out[1] + oh) * o2;                                       \
                int64_t sd = od * w->stride[0] - w->pad_begin[0];                             \
                int64_t sh = oh * w->stride[1] - w->pad_begin[1], dlo, dhi, hlo, hhi;         \
                rt_window_range(sd, w->dilation[0], w->in[0], w->kernel[0], &dlo, &dhi);      \
                rt_window_range(sh, w->dilation[1], w->in[1], w->kernel[1], &hlo, &hhi);      \
                for (int64_t kd = dlo; kd < dhi; kd++)                                        \
                    for (int64_t kh = hlo; kh < hhi; kh++) {                                  \
                        int64_t id = sd + kd * w->dilation[0], ih = sh + kh * w->dilation[1]; \
                        const T *xrow = x + (id * w->in[1] + ih) * w->in[2];                  \
                        const T *wrow = wk + (kd * w->kernel[1] + kh) * w->kernel[2];         \
                        for (int64_t kw = 0; kw < w->kernel[2]; kw++) {                       \
                            int64_t off = kw * w->dilation[2] - w->pad_begin[2], lo, hi;      \
                            rt_window_range(off, s, w->in[2], o2, &lo, &hi);                  \
                            if (lo >= hi)                                                     \
                                continue;                                                     \
                            const T *xt = xrow + lo * s + off;                                \
                            /* constant strides let the common cases vectorize */             \
                            if (s == 1)                                                       \
                                conv_tap_##SUF(yr + lo, xt, wrow[kw], hi - lo, 1);            \
                            else if (s == 2)                                                  \
                                conv_tap_##SUF(yr + lo, xt, wrow[kw], hi - lo, 2);            \
                            else                                                              \
                                conv_tap_##SUF(yr + lo, xt, wrow[kw], hi - lo, s);            \
                        }                                                                     \
                    }                                                                         \
            }                                                                                 \
    }                                                                                         \
    static rt_status conv_body_##SUF(rt_kernel_ctx *ctx, const void *params,                 \
                                     const rt_tensor *const *in, rt_tensor *const *out,       \
                                     void *scratch, rt_error *err)                            \
    {                                                                                         \
        (void)err;                                                                            \
        const conv_params *p = params;                                                        \
        const T *x = in[0]->data, *wt = in[1]->data, *bias = in[2] ? in[2]->data : NULL;      \
        T *y = out[0]->data;                                                                  \
        int64_t cg = p->c / p->group, mg = p->m / p->group, kk = cg * p->kvol;                \
        int64_t P = p->out_plane, planes = p->n * p->m;                                       \
        if (p->depthwise) {                                                                   \
            _Pragma("omp parallel for if(planes * P * p->kvol > PAR_MIN) num_threads(ctx->threads)") \
            for (int64_t q = 0; q < planes; q++) {                                            \
                int64_t b = q / p->m, oc = q % p->m;                                          \
                depthwise_plane_##SUF(p, x + (b * p->c + oc / mg) * p->in_plane,              \
                                      wt + oc * p->kvol, bias ? bias[oc] : 0, y + q * P);     \
            }                                                                                 \
            return RT_OK;                                                                     \
        }                                                                                     \
        for (int64_t b = 0; b < p->n; b++)                                                    \
            for (int64_t g = 0; g < p->group; g++) {                                          \
                const T *xg = x + (b * p->c + g * cg) * p->in_plane;                          \
                T *yg = y + (b * p->m + g * mg) * P;                                          \
                const T *col = xg;                                                            \
                if (!p->direct) {                                                             \
                    im2col_##SUF(ctx, p, xg, scratch, cg);                                    \
                    col = scratch;                                                            \
                }                                                                             \
                for (int64_t r = 0; bias && r < mg; r++) {                                    \
                    T v = bias[g * mg + r];                                                   \
                    _Pragma("omp simd")                                                       \
                    for (int64_t i = 0; i < P; i++)                                           \
                        yg[r * P + i] = v;                                                    \
                }                                                                             \
                GEMM(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)mg, (blasint)P,      \
                     (blasint)kk, 1, wt + g * mg * kk, (blasint)kk, col, (blasint)P,          \
                     bias ? 1 : 0, yg, (blasint)P);                                           \
            }                                                                                 \
        return RT_OK;                                                                         \
    }

DEFINE_CONV(float, f32, cblas_sgemm)
DEFINE_CONV(double, f64, cblas_dgemm)

RT_CPU_KERNEL(rt_cpu_conv)
{
    const rt_shape *x = &in[0]->shape, *wt = &in[1]->shape;
    conv_params p = {
        .n = x->dims[0],
        .c = x->dims[1],
        .m = wt->dims[0],
        .group = rt_node_attr_int(node, "group", 1),
    };
    rt_status st = rt_window_resolve(node, x, wt->dims + 2, &p.w, err);
    if (st == RT_OK)
        st = rt_window_pad3(&p.w, err);
    if (st != RT_OK)
        return st;
    p.in_plane = p.w.in[0] * p.w.in[1] * p.w.in[2];
    p.out_plane = p.w.out[0] * p.w.out[1] * p.w.out[2];
    p.kvol = p.w.kernel[0] * p.w.kernel[1] * p.w.kernel[2];
    if (rt_tensor_numel(out[0]) == 0)
        return RT_OK;
    p.depthwise = p.c == p.group;
    p.direct = p.kvol == 1;
    for (int i = 0; i < 3; i++)
        p.direct = p.direct && p.w.stride[i] == 1 && p.w.pad_begin[i] == 0 && p.w.pad_end[i] == 0;
    size_t col = p.direct || p.depthwise ? 0 : (size_t)(p.c / p.group * p.kvol * p.out_plane);
    const rt_tensor *args[3] = {in[0], in[1], n_in > 2 ? in[2] : NULL};
    rt_dtype dt = in[0]->dtype;
    return rt_nn_run(ctx, dt, dt == RT_DTYPE_F64 ? conv_body_f64 : conv_body_f32, &p, args, 3,
                     out, n_out, col, err);
}
