/* rt_cpu_act.h: the activation and bias epilogue shared by the CPU kernels of the fused
 * ops (rt_cpu_fused.c, rt_cpu_attention.c, rt_cpu_fused_elementwise.c): one pass over an
 * output that a GEMM or convolution has just written, and the GEMM with bias and
 * activation of Linear and of Attention's projection. */
#ifndef RT_CPU_ACT_H
#define RT_CPU_ACT_H

#include <stdint.h>

#include "rt_backend.h"
#include "rt_fused.h"

/* y[i] = act(x[i] + bias[i]) for i < n, on the calling thread; bias may be NULL and y may
 * be x. */
void rt_cpu_act_row(float *y, const float *x, int64_t n, const float *bias, const rt_act *act);

/* y[r * cols + j] = act(y[r * cols + j] + bias[j]) for rows x cols elements, over the
 * context's threads; bias may be NULL. */
void rt_cpu_bias_act(rt_kernel_ctx *ctx, float *y, int64_t rows, int64_t cols, const float *bias,
                     const rt_act *act);

/* Y (m x n) = act(X (m x k) W + bias) with W (k x n), or (n x k) when trans_b; bias (n
 * elements) may be NULL. The bias is written first and accumulated into by the GEMM, which
 * spares OpenBLAS its pass that zeroes Y; the activation is one more pass. W has dtype wdt:
 * F32, or F16 / BF16, which is widened to F32 a panel of columns at a time into `panel`
 * (rt_cpu_gemm_panel_bytes of scratch; unused for F32) and multiplied by one SGEMM per
 * panel, so the products accumulate in F32. */
void rt_cpu_gemm_bias_act(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *x,
                          const void *w, rt_dtype wdt, bool trans_b, const float *bias,
                          const rt_act *act, float *y, float *panel);
/* Scratch bytes rt_cpu_gemm_bias_act needs for a W of dtype wdt (0 for F32). */
size_t rt_cpu_gemm_panel_bytes(rt_dtype wdt, int64_t n, int64_t k);
/* Y = X W + beta Y (beta 0 or 1) for an F16/BF16 W, as rt_cpu_gemm_bias_act describes
 * (rt_cpu_gemm_half.c). */
void rt_cpu_gemm_half(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *x,
                      const uint16_t *w, rt_dtype wdt, bool trans_b, float beta, float *y,
                      float *panel);

#endif
