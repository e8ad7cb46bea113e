/* cuda_k_quant.cu: the kernels around infd.QLinear's INT8 GEMM (cuda_op_qlinear.c):
 * widening an INT8 weight with its per-channel scales for the weight-only mode, and for
 * the dynamic (W8A8) mode per-row activation quantization before the cuBLASLt INT8 product,
 * the weight's row sums, and the dequantization after it (cuBLASLt has no epilogue for
 * per-row times per-channel scales). The quantization is the CPU's (rt_cpu_qgemm.c): a
 * row's range [lo, hi] (lo <= 0 <= hi, NaNs ignored) gives scale (hi - lo) / 127 and zero
 * point round(-lo / scale), q = clamp(round(x / scale) + zp, 0, 127), a NaN counting as 0.
 *
 * NEVER RUN: written and compiled without a GPU (docs/cuda.md); `make test-gpu` checks it
 * against the CPU on a device. */
#include "cuda_k_util.cuh"

#define QMAX 127

template <typename T>
__global__ void k_dequant_rows(const int8_t *w, const float *scale, int64_t n, int64_t k, T *out)
{
    CUDA_FOR(i, n * k)
        out[i] = from_f<T>(scale[i / k] * (float)w[i]);
}

extern "C" cudaError_t cuda_k_dequant_rows(cudaStream_t s, const int8_t *w, const float *scale,
                                           int64_t n, int64_t k, int dt, void *out)
{
    if (n * k == 0)
        return cudaSuccess;
    unsigned b = cuda_blocks(n * k);
    if (dt == RT_DTYPE_F16)
        k_dequant_rows<<<b, CUDA_THREADS, 0, s>>>(w, scale, n, k, (__half *)out);
    else if (dt == RT_DTYPE_BF16)
        k_dequant_rows<<<b, CUDA_THREADS, 0, s>>>(w, scale, n, k, (__nv_bfloat16 *)out);
    else
        k_dequant_rows<<<b, CUDA_THREADS, 0, s>>>(w, scale, n, k, (float *)out);
    return cudaGetLastError();
}

/* one block per row of x */
__global__ void k_quantize_rows(const float *x, int64_t k, int64_t kp, int8_t *q, float *scale,
                                int32_t *zp)
{
    __shared__ float red[32];
    const float *row = x + blockIdx.x * k;
    float lo = 0.0f, hi = 0.0f;
    for (int64_t p = threadIdx.x; p < k; p += blockDim.x) {
        float v = row[p];
        lo = v < lo ? v : lo; /* NaN compares false: ignored */
        hi = v > hi ? v : hi;
    }
    lo = -block_max(-lo, red);
    hi = block_max(hi, red);
    float s = (hi - lo) / QMAX;
    s = s > 0.0f && isfinite(s) ? s : 1.0f;
    float inv = 1.0f / s, z = fminf(rintf(-lo * inv), (float)QMAX);
    int8_t *out = q + blockIdx.x * kp;
    for (int64_t p = threadIdx.x; p < kp; p += blockDim.x) {
        float v = p < k ? row[p] : 0.0f;
        float r = p >= k ? 0.0f : v == v ? rintf(v * inv) + z : z;
        out[p] = (int8_t)(r > 0.0f ? (r < QMAX ? r : QMAX) : 0.0f);
    }
    if (threadIdx.x == 0) {
        scale[blockIdx.x] = s;
        zp[blockIdx.x] = (int32_t)z;
    }
}

extern "C" cudaError_t cuda_k_quantize_rows(cudaStream_t s, const float *x, int64_t m, int64_t k,
                                            int64_t kp, int8_t *q, float *scale, int32_t *zp)
{
    if (m == 0)
        return cudaSuccess;
    k_quantize_rows<<<(unsigned)m, cuda_row_threads(k), 0, s>>>(x, k, kp, q, scale, zp);
    return cudaGetLastError();
}

/* one block per row of w; the padded copy (kp columns, zeros past k) when wp is not NULL */
__global__ void k_weight_rows(const int8_t *w, int64_t k, int64_t kp, int32_t *sum, int8_t *wp)
{
    __shared__ int32_t red[32];
    const int8_t *row = w + blockIdx.x * k;
    int32_t acc = 0;
    for (int64_t p = threadIdx.x; p < kp; p += blockDim.x) {
        int8_t v = p < k ? row[p] : 0;
        acc += v;
        if (wp)
            wp[blockIdx.x * kp + p] = v;
    }
    acc = block_sum(acc, red);
    if (threadIdx.x == 0)
        sum[blockIdx.x] = acc;
}

extern "C" cudaError_t cuda_k_weight_rows(cudaStream_t s, const int8_t *w, int64_t n, int64_t k,
                                          int64_t kp, int32_t *sum, int8_t *padded)
{
    if (n == 0)
        return cudaSuccess;
    k_weight_rows<<<(unsigned)n, cuda_row_threads(kp), 0, s>>>(w, k, kp, sum, padded);
    return cudaGetLastError();
}

__global__ void k_dequant_acc(const int32_t *acc, int64_t ld, int64_t m, int64_t n,
                              const float *a_scale,
                              const int32_t *a_zp, const float *w_scale, const int32_t *w_sum,
                              float *y)
{
    CUDA_FOR(i, m * n) {
        int64_t r = i / n, j = i % n;
        y[i] = a_scale[r] * w_scale[j] * (float)(acc[r * ld + j] - a_zp[r] * w_sum[j]);
    }
}

extern "C" cudaError_t cuda_k_dequant_acc(cudaStream_t s, const int32_t *acc, int64_t ld,
                                          int64_t m, int64_t n, const float *a_scale, const int32_t *a_zp,
                                          const float *w_scale, const int32_t *w_sum, float *y)
{
    if (m * n == 0)
        return cudaSuccess;
    k_dequant_acc<<<cuda_blocks(m * n), CUDA_THREADS, 0, s>>>(acc, ld, m, n, a_scale, a_zp,
                                                              w_scale, w_sum, y);
    return cudaGetLastError();
}
