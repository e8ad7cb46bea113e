/* rt_index_math.h: small integer functions that the CPU kernels and the CUDA kernels
 * (cuda/cuda_k_*.cu, where nvcc compiles them for the device too) must compute alike:
 * integer powers, Pad's source index, and the taps of a sliding window that fall inside
 * the input. */
#ifndef RT_INDEX_MATH_H
#define RT_INDEX_MATH_H

#include <stdint.h>

#ifdef __CUDACC__
#define RT_HOST_DEVICE __host__ __device__
#else
#define RT_HOST_DEVICE
#endif

/* base^exp in integers, wrapping on overflow; negative exponents truncate 1/base^-exp. */
RT_HOST_DEVICE static inline int64_t rt_ipow(int64_t base, int64_t exp)
{
    if (exp < 0)
        return base == 1 ? 1 : base == -1 ? ((exp & 1) ? -1 : 1) : 0;
    uint64_t r = 1, b = (uint64_t)base;
    for (; exp; exp >>= 1, b *= b)
        if (exp & 1)
            r *= b;
    return (int64_t)r;
}

/* Pad's source index along one dim for output index o (begin: the padding before the
 * data, dim: the data's size), or -1 where the constant goes; mode is an rt_pad_mode
 * (rt_op_shape.h: 0 constant, 1 reflect, 2 edge). Reflect repeats with period
 * 2 (dim - 1), so that pads longer than the dim still work. */
RT_HOST_DEVICE static inline int64_t rt_pad_source(int64_t o, int64_t begin, int64_t dim, int mode)
{
    int64_t i = o - begin;
    if (i >= 0 && i < dim)
        return i;
    if (mode == 0)
        return -1;
    if (mode == 2 || dim == 1)
        return i < 0 ? 0 : dim - 1;
    int64_t period = 2 * (dim - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < dim ? i : period - i;
}

/* The indices i in [0, count) with 0 <= off + i * step < size, as [*lo, *hi) (step > 0). */
RT_HOST_DEVICE static inline void rt_window_range(int64_t off, int64_t step, int64_t size,
                                                  int64_t count, int64_t *lo, int64_t *hi)
{
    int64_t l = off >= 0 ? 0 : (-off + step - 1) / step;
    int64_t h = off > size - 1 ? 0 : (size - 1 - off) / step + 1;
    h = h < count ? h : count;
    *lo = l < h ? l : h;
    *hi = h;
}

#endif
