/* rt_cpu_fused.c: CPU kernels of the optimizer's fused ops Linear, FusedConv, Gelu and
 * SkipLayerNorm (rt_fused.h), and the activation epilogue they share (rt_cpu_act.h).
 * Linear is one OpenBLAS SGEMM followed by one pass that adds the bias and applies the
 * activation (F16/BF16 weights: rt_cpu_gemm_half.c); SkipLayerNorm makes one pass per row
 * over the sum it writes into Y. The hot loops are compiled for baseline x86-64 and for
 * AVX2 (RT_CPU_CLONES). */
#include <cblas.h>
#include <math.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_cpu_nn_util.h"
#include "rt_cpu_vmath.h"

/* Below this many elements a loop stays on one thread. */
#define PAR_MIN 32768
/* Elements per task of an activation over a flat buffer. */
#define ACT_CHUNK 16384

#define SIMD _Pragma("omp simd")

/* y[i] = EXPR over v = y[i], for i < n. */
#define ACT_LOOP(EXPR)                                                                      \
    {                                                                                       \
        SIMD for (int64_t i = 0; i < n; i++) {                                              \
            const float v = y[i];                                                           \
            y[i] = (EXPR);                                                                  \
        }                                                                                   \
    }                                                                                       \
    break

RT_CPU_CLONES
void rt_cpu_act_row(float *y, const float *x, int64_t n, const float *bias, const rt_act *act)
{
    if (bias) {
        SIMD for (int64_t i = 0; i < n; i++)
            y[i] = x[i] + bias[i];
    } else if (y != x) {
        memcpy(y, x, sizeof(float) * (size_t)n);
    }
    const float alpha = act->alpha, lo = act->lo, hi = act->hi;
    switch (act->kind) {
    case RT_ACT_NONE: break;
    case RT_ACT_RELU: ACT_LOOP(v < 0 ? 0 : v);
    case RT_ACT_LEAKY_RELU: ACT_LOOP(v < 0 ? v * alpha : v);
    case RT_ACT_SIGMOID: ACT_LOOP(1.0f / (1.0f + expf(-v)));
    case RT_ACT_TANH: ACT_LOOP(tanhf(v));
    /* as Clip: max(v, lo) then min(., hi), NaN passes through */
    case RT_ACT_CLIP: ACT_LOOP(v < lo ? (lo > hi ? hi : lo) : v > hi ? hi : v);
    case RT_ACT_GELU: ACT_LOOP(0.5f * v * (1.0f + erff(v * 0.70710678118654752f)));
    case RT_ACT_GELU_TANH:
        ACT_LOOP(0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v))));
    case RT_ACT_COUNT: break;
    }
}

void rt_cpu_bias_act(rt_kernel_ctx *ctx, float *y, int64_t rows, int64_t cols, const float *bias,
                     const rt_act *act)
{
    if (!bias && act->kind == RT_ACT_NONE)
        return;
    if (bias) {
        #pragma omp parallel for if(rows * cols > PAR_MIN) num_threads(ctx->threads)
        for (int64_t r = 0; r < rows; r++)
            rt_cpu_act_row(y + r * cols, y + r * cols, cols, bias, act);
        return;
    }
    /* no bias: the rows are one flat buffer, cut into chunks of a useful size */
    int64_t n = rows * cols, chunks = (n + ACT_CHUNK - 1) / ACT_CHUNK;
    #pragma omp parallel for if(n > PAR_MIN) num_threads(ctx->threads)
    for (int64_t c = 0; c < chunks; c++) {
        int64_t off = c * ACT_CHUNK, len = n - off < ACT_CHUNK ? n - off : ACT_CHUNK;
        rt_cpu_act_row(y + off, y + off, len, NULL, act);
    }
}

void rt_cpu_gemm_bias_act(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *x,
                          const void *w, rt_dtype wdt, bool trans_b, const float *bias,
                          const rt_act *act, float *y, float *panel)
{
    if (m == 0 || n == 0)
        return;
    #pragma omp parallel for if(m * n > PAR_MIN) num_threads(ctx->threads)
    for (int64_t r = 0; r < m; r++) {
        if (bias)
            memcpy(y + r * n, bias, sizeof(float) * (size_t)n);
        else if (k == 0)
            memset(y + r * n, 0, sizeof(float) * (size_t)n);
    }
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    float beta = bias ? 1.0f : 0.0f;
    if (k > 0 && wdt == RT_DTYPE_F32) {
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint)m, (blasint)n, (blasint)k, 1.0f, x,
                    (blasint)k, w, (blasint)(trans_b ? k : n), beta, y, (blasint)n);
    } else if (k > 0) {
        rt_cpu_gemm_half(ctx, m, n, k, x, w, wdt, trans_b, beta, y, panel);
    }
    rt_cpu_bias_act(ctx, y, m, n, NULL, act);
}

RT_CPU_KERNEL(rt_cpu_linear)
{
    (void)n_out;
    rt_act act;
    rt_status st = rt_act_get(node, &act, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    rt_linear_dims d = rt_linear_dims_get(node, x, w, out[0]);
    int64_t k = d.k, n = d.n, m = d.m;
    bool tb = d.trans_b;
    float *panel;
    st = rt_nn_scratch(ctx, rt_cpu_gemm_panel_bytes(w->dtype, n, k), (void **)&panel, err);
    if (st != RT_OK)
        return st;
    rt_cpu_gemm_bias_act(ctx, m, n, k, x->data, w->data, w->dtype, tb, b ? b->data : NULL, &act,
                         out[0]->data, panel);
    return RT_OK;
}

/* Conv one image at a time, each followed by the activation while its output is still in
 * cache. */
RT_CPU_KERNEL(rt_cpu_fused_conv)
{
    (void)n_out;
    rt_act act;
    rt_status st = rt_act_get(node, &act, err);
    rt_tensor x = *in[0], y = *out[0];
    int64_t n = x.shape.dims[0];
    size_t x_step = n ? rt_tensor_nbytes(in[0]) / (size_t)n : 0;
    size_t y_step = n ? rt_tensor_nbytes(out[0]) / (size_t)n : 0;
    x.shape.dims[0] = y.shape.dims[0] = 1;
    const rt_tensor *args[3] = {&x, in[1], n_in > 2 ? in[2] : NULL};
    rt_tensor *res[1] = {&y};
    for (int64_t b = 0; b < n && st == RT_OK; b++) {
        x.data = (char *)in[0]->data + (size_t)b * x_step;
        y.data = (char *)out[0]->data + (size_t)b * y_step;
        st = rt_cpu_conv(ctx, node, args, 3, res, 1, err);
        if (st == RT_OK)
            rt_cpu_bias_act(ctx, y.data, 1, (int64_t)(y_step / sizeof(float)), NULL, &act);
    }
    return st;
}

RT_CPU_KERNEL(rt_cpu_gelu)
{
    (void)n_in, (void)n_out, (void)err;
    bool tanh_form = strcmp(rt_node_attr_string(node, "approximate", "none"), "tanh") == 0;
    rt_act act = {.kind = tanh_form ? RT_ACT_GELU_TANH : RT_ACT_GELU};
    int64_t n = rt_tensor_numel(out[0]);
    if (out[0]->data != in[0]->data)
        memcpy(out[0]->data, in[0]->data, sizeof(float) * (size_t)n);
    rt_cpu_bias_act(ctx, out[0]->data, 1, n, NULL, &act);
    return RT_OK;
}

/* One row: y = (x + s - mean) / sqrt(var + eps) * g + b, the sum kept in y meanwhile. */
RT_CPU_CLONES
static void skip_layernorm_row(float *y, const float *x, const float *s, const float *g,
                               const float *b, int64_t n, float eps)
{
    float sum = 0, sq = 0;
    _Pragma("omp simd reduction(+:sum)")
    for (int64_t j = 0; j < n; j++) {
        float v = x[j] + s[j];
        y[j] = v;
        sum += v;
    }
    float mean = sum / (float)n;
    _Pragma("omp simd reduction(+:sq)")
    for (int64_t j = 0; j < n; j++)
        sq += (y[j] - mean) * (y[j] - mean);
    float inv = 1.0f / sqrtf(sq / (float)n + eps);
    if (b) {
        SIMD for (int64_t j = 0; j < n; j++)
            y[j] = (y[j] - mean) * inv * g[j] + b[j];
    } else {
        SIMD for (int64_t j = 0; j < n; j++)
            y[j] = (y[j] - mean) * inv * g[j];
    }
}

RT_CPU_KERNEL(rt_cpu_skip_layernorm)
{
    (void)n_out, (void)err;
    const rt_tensor *x = in[0], *s = in[1], *b = n_in > 3 ? in[3] : NULL;
    int64_t cols = x->shape.dims[x->shape.rank - 1];
    if (cols == 0)
        return RT_OK;
    int64_t rows = rt_tensor_numel(x) / cols, skip_rows = rt_tensor_numel(s) / cols;
    const float *xd = x->data, *sd = s->data, *g = in[2]->data, *bd = b ? b->data : NULL;
    float *y = out[0]->data, eps = rt_node_attr_float(node, "epsilon", 1e-5f);
    #pragma omp parallel for if(rows * cols > PAR_MIN) num_threads(ctx->threads)
    for (int64_t r = 0; r < rows; r++)
        skip_layernorm_row(y + r * cols, xd + r * cols, sd + r % skip_rows * cols, g, bd, cols,
                           eps);
    return RT_OK;
}
