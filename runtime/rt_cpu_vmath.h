/* rt_cpu_vmath.h: float math for the CPU kernels' `omp simd` loops. glibc's libmvec
 * (linked through -lm) has vector versions of expf, tanhf, erff... within a few ulps of the
 * scalar ones; declaring them lets the loops call 4 lanes at a time (8 in functions
 * compiled for AVX2, see RT_CPU_CLONES) without -ffast-math. rt_exp_f32 is an exp that
 * vectorizes without libm and stays fast where libmvec's takes its slow path (the large
 * negative arguments of masked softmax scores). Include after <math.h>. */
#ifndef RT_CPU_VMATH_H
#define RT_CPU_VMATH_H

#include <stdint.h>
#include <string.h>

#if defined(__GLIBC__)
#if defined(__x86_64__) && __GLIBC_PREREQ(2, 35)
#pragma omp declare simd notinbranch
float expf(float);
#pragma omp declare simd notinbranch
float logf(float);
#pragma omp declare simd notinbranch
float tanhf(float);
#pragma omp declare simd notinbranch
float erff(float);
#pragma omp declare simd notinbranch
float powf(float, float);
#endif
#endif

/* exp for float without libm, so that loops over it vectorize: exp(x) = 2^n e^r with
 * n = round(x / ln 2) and e^r from Cephes' degree-6 polynomial on |r| <= ln(2) / 2
 * (about 1.4 ulp). x is first clamped to [-87.3, 88.3]; below, ~1e-38 stands in for 0,
 * which no softmax can tell apart. NaN passes through. */
static inline float rt_exp_f32(float x)
{
    /* the clamp works on the bits with masks: a float select would be constant-folded
     * into a branch that keeps the loop from vectorizing. Negative floats grow in
     * magnitude with their bits read as unsigned; NaNs lie above the infinities. */
    uint32_t u;
    memcpy(&u, &x, sizeof u);
    uint32_t lo = 0u - (uint32_t)((u > 0xC2AE999Au) & (u <= 0xFF800000u)); /* < -87.3 */
    uint32_t hi = 0u - (uint32_t)((u > 0x42B0999Au) & (u <= 0x7F800000u)); /* > 88.3 */
    u = (u & ~(lo | hi)) | (0xC2AE999Au & lo) | (0x42B0999Au & hi);
    memcpy(&x, &u, sizeof x);
    /* adding 1.5 * 2^23 rounds to an integer held in the low mantissa bits */
    float t = x * 1.44269504f + 12582912.0f;
    float n = t - 12582912.0f;
    float r = x - n * 0.693359375f + n * 2.12194440e-4f;
    float e = 1.9875691500e-4f;
    e = e * r + 1.3981999507e-3f;
    e = e * r + 8.3334519073e-3f;
    e = e * r + 4.1665795894e-2f;
    e = e * r + 1.6666665459e-1f;
    e = e * r + 5.0000001201e-1f;
    e = e * r * r + r + 1.0f;
    int32_t bits;
    memcpy(&bits, &t, sizeof bits);
    bits = (bits - 0x4B400000 + 127) * (1 << 23); /* 2^n */
    float scale;
    memcpy(&scale, &bits, sizeof scale);
    return e * scale;
}

/* Hot loops compiled twice, for baseline x86-64 and for AVX2, the variant picked at load
 * time by the features of the CPU it runs on (an "arch=" clone would be picked by CPU
 * model, never on AMD); the build itself targets baseline x86-64. */
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define RT_CPU_CLONES __attribute__((target_clones("avx2", "default")))
#else
#define RT_CPU_CLONES
#endif

#endif
