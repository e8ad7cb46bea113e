/* cuda_k_util.cuh: device helpers shared by the kernel files (cuda_k_*.cu): element loads
 * and stores by rt_dtype, float conversions of the half types, the activation functions,
 * block reductions and the launch geometry. CUDA C++, included by .cu files only. */
#ifndef CUDA_K_UTIL_CUH
#define CUDA_K_UTIL_CUH

#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <stdint.h>

#include "cuda_kernels.h"

#include "rt_index_math.h"

extern "C" {
#include "rt_dtype.h"
#include "rt_fused.h"
}

#define CUDA_THREADS 256

/* Blocks for a grid-stride loop over n elements (at least 1, capped so that the count
 * fits the grid limit; the loops cover the rest). */
static inline unsigned cuda_blocks(int64_t n)
{
    int64_t b = (n + CUDA_THREADS - 1) / CUDA_THREADS;
    if (b < 1)
        b = 1;
    return (unsigned)(b > 65535 * 32 ? 65535 * 32 : b);
}

#define CUDA_FOR(i, n)                                                                      \
    for (int64_t i = (int64_t)blockIdx.x * blockDim.x + threadIdx.x; i < (n);                \
         i += (int64_t)gridDim.x * blockDim.x)

/* The statement(s) after dt with T the element type of float dtype dt (F32, F16, BF16,
 * F64); other dtypes return cudaErrorInvalidValue from the enclosing function. */
#define CUDA_FLOAT_DISPATCH(dt, ...)                                                        \
    switch (dt) {                                                                           \
    case RT_DTYPE_F32: { typedef float T; __VA_ARGS__; break; }                             \
    case RT_DTYPE_F16: { typedef __half T; __VA_ARGS__; break; }                            \
    case RT_DTYPE_BF16: { typedef __nv_bfloat16 T; __VA_ARGS__; break; }                    \
    case RT_DTYPE_F64: { typedef double T; __VA_ARGS__; break; }                            \
    default: return cudaErrorInvalidValue;                                                  \
    }

/* float views of the element types kernels template on */
__device__ __forceinline__ float to_f(float v) { return v; }
__device__ __forceinline__ float to_f(__half v) { return __half2float(v); }
__device__ __forceinline__ float to_f(__nv_bfloat16 v) { return __bfloat162float(v); }
__device__ __forceinline__ double to_f(double v) { return v; }
template <typename T> __device__ __forceinline__ T from_f(float v);
template <> __device__ __forceinline__ float from_f<float>(float v) { return v; }
template <> __device__ __forceinline__ __half from_f<__half>(float v) { return __float2half_rn(v); }
template <> __device__ __forceinline__ __nv_bfloat16 from_f<__nv_bfloat16>(float v)
{
    return __float2bfloat16_rn(v);
}
template <typename T> __device__ __forceinline__ T from_d(double v) { return from_f<T>((float)v); }
template <> __device__ __forceinline__ double from_d<double>(double v) { return v; }

/* the type a float dtype computes in: float, or double for F64 */
template <typename T> struct acc_of { typedef float type; };
template <> struct acc_of<double> { typedef double type; };

__device__ __forceinline__ bool dt_unsigned(int dt)
{
    return dt == RT_DTYPE_U8 || dt == RT_DTYPE_U16 || dt == RT_DTYPE_U32 || dt == RT_DTYPE_U64 ||
           dt == RT_DTYPE_BOOL;
}

__device__ __forceinline__ bool dt_float(int dt)
{
    return dt == RT_DTYPE_F32 || dt == RT_DTYPE_F64 || dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16;
}

/* Element i of a numeric buffer widened to double (as rt_dtype_load_f64). */
__device__ __forceinline__ double ld_f64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case RT_DTYPE_F32: return ((const float *)p)[i];
    case RT_DTYPE_F64: return ((const double *)p)[i];
    case RT_DTYPE_F16: return __half2float(((const __half *)p)[i]);
    case RT_DTYPE_BF16: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case RT_DTYPE_I8: return ((const int8_t *)p)[i];
    case RT_DTYPE_U8: return ((const uint8_t *)p)[i];
    case RT_DTYPE_I16: return ((const int16_t *)p)[i];
    case RT_DTYPE_U16: return ((const uint16_t *)p)[i];
    case RT_DTYPE_I32: return ((const int32_t *)p)[i];
    case RT_DTYPE_U32: return ((const uint32_t *)p)[i];
    case RT_DTYPE_I64: return (double)((const int64_t *)p)[i];
    case RT_DTYPE_U64: return (double)((const uint64_t *)p)[i];
    case RT_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return 0;
    }
}

/* Element i as 64 integer bits: floats truncated toward zero, unsigned values as their
 * bits (compare and divide them through uint64_t). */
__device__ __forceinline__ int64_t ld_i64(int dt, const void *p, int64_t i)
{
    switch (dt) {
    case RT_DTYPE_I8: return ((const int8_t *)p)[i];
    case RT_DTYPE_U8: return ((const uint8_t *)p)[i];
    case RT_DTYPE_I16: return ((const int16_t *)p)[i];
    case RT_DTYPE_U16: return ((const uint16_t *)p)[i];
    case RT_DTYPE_I32: return ((const int32_t *)p)[i];
    case RT_DTYPE_U32: return ((const uint32_t *)p)[i];
    case RT_DTYPE_I64: return ((const int64_t *)p)[i];
    case RT_DTYPE_U64: return (int64_t)((const uint64_t *)p)[i];
    case RT_DTYPE_BOOL: return ((const uint8_t *)p)[i] != 0;
    default: return (int64_t)ld_f64(dt, p, i);
    }
}

/* Stores v into element i converting like a C cast (F16/BF16 rounded from double). */
__device__ __forceinline__ void st_f64(int dt, void *p, int64_t i, double v)
{
    switch (dt) {
    case RT_DTYPE_F32: ((float *)p)[i] = (float)v; break;
    case RT_DTYPE_F64: ((double *)p)[i] = v; break;
    case RT_DTYPE_F16: ((__half *)p)[i] = __double2half(v); break;
    case RT_DTYPE_BF16: ((__nv_bfloat16 *)p)[i] = __double2bfloat16(v); break;
    case RT_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case RT_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case RT_DTYPE_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case RT_DTYPE_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case RT_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case RT_DTYPE_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case RT_DTYPE_I64: ((int64_t *)p)[i] = (int64_t)v; break;
    case RT_DTYPE_U64: ((uint64_t *)p)[i] = (uint64_t)v; break;
    case RT_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: break;
    }
}

__device__ __forceinline__ void st_i64(int dt, void *p, int64_t i, int64_t v)
{
    switch (dt) {
    case RT_DTYPE_I8: ((int8_t *)p)[i] = (int8_t)v; break;
    case RT_DTYPE_U8: ((uint8_t *)p)[i] = (uint8_t)v; break;
    case RT_DTYPE_I16: ((int16_t *)p)[i] = (int16_t)v; break;
    case RT_DTYPE_U16: ((uint16_t *)p)[i] = (uint16_t)v; break;
    case RT_DTYPE_I32: ((int32_t *)p)[i] = (int32_t)v; break;
    case RT_DTYPE_U32: ((uint32_t *)p)[i] = (uint32_t)v; break;
    case RT_DTYPE_I64: case RT_DTYPE_U64: ((int64_t *)p)[i] = v; break;
    case RT_DTYPE_BOOL: ((uint8_t *)p)[i] = v != 0; break;
    default: st_f64(dt, p, i, (double)v); break;
    }
}

/* The activations of rt_cpu_act_row, in float. */
__device__ __forceinline__ float act_apply(int kind, float v, float alpha, float lo, float hi)
{
    switch (kind) {
    case RT_ACT_RELU: return v < 0.0f ? 0.0f : v;
    case RT_ACT_LEAKY_RELU: return v < 0.0f ? v * alpha : v;
    case RT_ACT_SIGMOID: return 1.0f / (1.0f + expf(-v));
    case RT_ACT_TANH: return tanhf(v);
    case RT_ACT_CLIP: return v < lo ? (lo > hi ? hi : lo) : v > hi ? hi : v;
    case RT_ACT_GELU: return 0.5f * v * (1.0f + erff(v * 0.70710678118654752f));
    case RT_ACT_GELU_TANH:
        return 0.5f * v * (1.0f + tanhf(0.79788456080286536f * (v + 0.044715f * v * v * v)));
    default: return v;
    }
}

/* Sum (or max) of v over the block; every thread gets the result. blockDim.x is a
 * multiple of 32, at most 1024; red has 32 slots of shared memory. */
template <typename A> __device__ __forceinline__ A warp_sum(A v)
{
    for (int o = 16; o > 0; o >>= 1)
        v += __shfl_xor_sync(0xffffffffu, v, o);
    return v;
}

template <typename A> __device__ __forceinline__ A warp_max(A v)
{
    for (int o = 16; o > 0; o >>= 1) {
        A w = __shfl_xor_sync(0xffffffffu, v, o);
        v = w > v ? w : v;
    }
    return v;
}

template <typename A> __device__ A block_sum(A v, A *red)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_sum(v);
    __syncthreads(); /* red may still be read from a previous call */
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    v = lane < warps ? red[lane] : (A)0;
    return warp_sum(v);
}

template <typename A> __device__ A block_max(A v, A *red)
{
    int lane = threadIdx.x & 31, warp = threadIdx.x >> 5, warps = blockDim.x >> 5;
    v = warp_max(v);
    __syncthreads();
    if (lane == 0)
        red[warp] = v;
    __syncthreads();
    v = lane < warps ? red[lane] : red[0];
    return warp_max(v);
}

/* Threads per block for a row of n elements: a multiple of 32 up to 1024. */
static inline int cuda_row_threads(int64_t n)
{
    int t = 32;
    while (t < 1024 && t < n)
        t *= 2;
    return t;
}

#endif
