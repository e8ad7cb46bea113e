/* rt_cpu_qgemm.h: the INT8 GEMM of the CPU kernels of infd.QLinear and infd.QAttention
 * (rt_fused.h): Y = act(X W^T + bias) with W an INT8 (n x k) matrix with one F32 scale per
 * row (the weight is scale[j] W[j][p]).
 *
 *   weight-only: W is widened to F32 a panel of rows at a time (scales applied), one
 *                OpenBLAS SGEMM per panel, then the bias + activation pass.
 *   dynamic:     each row of X is quantized at run time to 7-bit unsigned values with its
 *                own scale and zero point (x ~ a_scale (q - zp), q in [0, 127]: 7 bits keep
 *                the pairwise sums of AVX2's u8 x s8 multiply (vpmaddubsw) below its 16-bit
 *                saturation), the products are accumulated in INT32 and dequantized in the
 *                epilogue: y = a_scale w_scale (acc - zp sum_p W[j][p]) + bias, then act.
 *                The integer kernel is AVX2 where the CPU has it (chosen at run time), else
 *                portable C with the same results. */
#ifndef RT_CPU_QGEMM_H
#define RT_CPU_QGEMM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_backend.h"
#include "rt_fused.h"

/* Bytes of scratch rt_cpu_qgemm needs for these sizes. */
size_t rt_cpu_qgemm_scratch_bytes(rt_qmode mode, int64_t m, int64_t n, int64_t k);

/* Y (m x n, row-major) = act(X (m x k) dequant(W)^T + bias); bias (n) may be NULL.
 * scratch holds rt_cpu_qgemm_scratch_bytes(mode, m, n, k) bytes, 64-byte aligned. */
void rt_cpu_qgemm(rt_kernel_ctx *ctx, rt_qmode mode, int64_t m, int64_t n, int64_t k,
                  const float *x, const int8_t *w, const float *w_scale, const float *bias,
                  const rt_act *act, float *y, void *scratch);

/* Makes the dynamic mode use the portable integer kernel even where AVX2 is available
 * (tests compare the two); returns whether the AVX2 kernel is available at all. */
bool rt_cpu_qgemm_use_portable(bool portable);

#endif
