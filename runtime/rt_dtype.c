/* rt_dtype.c: dtype sizes and names, FP16/BF16 conversions, and generic element access
 * used by kernels that handle many dtypes through one code path. */
#include "rt_dtype.h"

#include <math.h>
#include <string.h>

#include "rt_tensor.h"

size_t rt_dtype_size(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F32: case RT_DTYPE_I32: case RT_DTYPE_U32: return 4;
    case RT_DTYPE_U8: case RT_DTYPE_I8: case RT_DTYPE_BOOL: return 1;
    case RT_DTYPE_U16: case RT_DTYPE_I16: case RT_DTYPE_F16: case RT_DTYPE_BF16: return 2;
    case RT_DTYPE_I64: case RT_DTYPE_U64: case RT_DTYPE_F64: return 8;
    case RT_DTYPE_BYTES: return sizeof(rt_str);
    case RT_DTYPE_UNDEFINED: return 0;
    }
    return 0;
}

const char *rt_dtype_name(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F32: return "F32";
    case RT_DTYPE_U8: return "U8";
    case RT_DTYPE_I8: return "I8";
    case RT_DTYPE_U16: return "U16";
    case RT_DTYPE_I16: return "I16";
    case RT_DTYPE_I32: return "I32";
    case RT_DTYPE_I64: return "I64";
    case RT_DTYPE_BYTES: return "BYTES";
    case RT_DTYPE_BOOL: return "BOOL";
    case RT_DTYPE_F16: return "F16";
    case RT_DTYPE_F64: return "F64";
    case RT_DTYPE_U32: return "U32";
    case RT_DTYPE_U64: return "U64";
    case RT_DTYPE_BF16: return "BF16";
    case RT_DTYPE_UNDEFINED: break;
    }
    return "UNDEFINED";
}

bool rt_dtype_valid(int value)
{
    return value != RT_DTYPE_UNDEFINED && rt_dtype_size((rt_dtype)value) != 0;
}

bool rt_dtype_is_float(rt_dtype dt)
{
    return dt == RT_DTYPE_F32 || dt == RT_DTYPE_F64 || dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16;
}

bool rt_dtype_is_integer(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_U8: case RT_DTYPE_I8: case RT_DTYPE_U16: case RT_DTYPE_I16:
    case RT_DTYPE_I32: case RT_DTYPE_U32: case RT_DTYPE_I64: case RT_DTYPE_U64:
        return true;
    default:
        return false;
    }
}

bool rt_dtype_is_signed(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_I8: case RT_DTYPE_I16: case RT_DTYPE_I32: case RT_DTYPE_I64:
        return true;
    default:
        return rt_dtype_is_float(dt);
    }
}

static uint32_t f32_bits(float f)
{
    uint32_t u;
    memcpy(&u, &f, 4);
    return u;
}

static float bits_f32(uint32_t u)
{
    float f;
    memcpy(&f, &u, 4);
    return f;
}

float rt_f16_to_f32(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000) << 16;
    uint32_t exp = (h >> 10) & 0x1f;
    uint32_t man = h & 0x3ff;
    if (exp == 0x1f)
        return bits_f32(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        /* zero or subnormal: man * 2^-24 */
        float v = (float)man * 5.9604644775390625e-8f;
        return sign ? -v : v;
    }
    return bits_f32(sign | ((exp + 112) << 23) | (man << 13));
}

uint16_t rt_f32_to_f16(float f)
{
    uint32_t u = f32_bits(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000);
    uint32_t abs = u & 0x7fffffffu;
    if (abs > 0x7f800000u) /* NaN: keep a quiet payload bit */
        return sign | 0x7e00 | (uint16_t)((abs >> 13) & 0x3ff);
    if (abs >= 0x477ff000u) /* rounds to >= 65520: infinity */
        return sign | 0x7c00;
    if (abs < 0x38800000u) { /* below the smallest normal half: subnormal or zero */
        float a = bits_f32(abs);
        /* scale so the half subnormal unit is 1.0 and round to nearest even */
        return sign | (uint16_t)nearbyintf(a * 16777216.0f);
    }
    uint32_t mant_round = abs + 0xfffu + ((abs >> 13) & 1u); /* round to nearest even */
    return sign | (uint16_t)((mant_round - 0x38000000u) >> 13);
}

float rt_bf16_to_f32(uint16_t b)
{
    return bits_f32((uint32_t)b << 16);
}

uint16_t rt_f32_to_bf16(float f)
{
    uint32_t u = f32_bits(f);
    if ((u & 0x7fffffffu) > 0x7f800000u)
        return (uint16_t)((u >> 16) | 0x40);
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

/* Vectorized contiguous conversions on x86-64, 8 elements per step, with the same results
 * as the scalar conversions (round to nearest even, subnormals kept), which finish the
 * tails: F16 <-> F32 with the F16C instructions where the CPU has them (checked at run
 * time), BF16 -> F32 with SSE2. Kernels that widen narrowed weights for every run spend
 * their conversion time here. */
#if defined(__x86_64__) && defined(__GNUC__)
#include <cpuid.h>
#include <immintrin.h>
#define HAVE_X86_PATH 1

/* "avx" comes from the compiler runtime's CPUID answers (which include the OS's support of
 * the AVX state); F16C from CPUID leaf 1 itself, as clang's __builtin_cpu_supports does not
 * know it */
static bool have_f16c(void)
{
    unsigned a, b, c, d;
    return __builtin_cpu_supports("avx") && __get_cpuid(1, &a, &b, &c, &d) && (c & bit_F16C);
}

__attribute__((target("avx,f16c"))) static int64_t f16_load_f16c(const uint16_t *src,
                                                                 float *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128((const __m128i *)(src + i))));
    return i;
}

/* BF16 -> F32 is a 16-bit shift: interleaving zeros below each element does it, 8 at a
 * time with SSE2 (baseline x86-64). */
static int64_t bf16_load_sse2(const uint16_t *src, float *dst, int64_t n)
{
    const __m128i zero = _mm_setzero_si128();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m128i v = _mm_loadu_si128((const __m128i *)(src + i));
        _mm_storeu_si128((__m128i *)(dst + i), _mm_unpacklo_epi16(zero, v));
        _mm_storeu_si128((__m128i *)(dst + i + 4), _mm_unpackhi_epi16(zero, v));
    }
    return i;
}

__attribute__((target("avx,f16c"))) static int64_t f16_store_f16c(const float *src,
                                                                  uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm_storeu_si128((__m128i *)(dst + i),
                         _mm256_cvtps_ph(_mm256_loadu_ps(src + i), _MM_FROUND_TO_NEAREST_INT));
    return i;
}
#endif

void rt_half_load(rt_dtype dt, const uint16_t *src, int64_t step, float *dst, int64_t n)
{
    int64_t i = 0;
    if (dt == RT_DTYPE_F16) {
#ifdef HAVE_X86_PATH
        if (step == 1 && have_f16c())
            i = f16_load_f16c(src, dst, n);
#endif
        for (; i < n; i++)
            dst[i] = rt_f16_to_f32(src[i * step]);
    } else {
#ifdef HAVE_X86_PATH
        if (step == 1)
            i = bf16_load_sse2(src, dst, n);
#endif
        for (; i < n; i++)
            dst[i] = rt_bf16_to_f32(src[i * step]);
    }
}

void rt_half_store(rt_dtype dt, const float *src, uint16_t *dst, int64_t n)
{
    int64_t i = 0;
    if (dt == RT_DTYPE_F16) {
#ifdef HAVE_X86_PATH
        if (have_f16c())
            i = f16_store_f16c(src, dst, n);
#endif
        for (; i < n; i++)
            dst[i] = rt_f32_to_f16(src[i]);
    } else {
        for (; i < n; i++)
            dst[i] = rt_f32_to_bf16(src[i]);
    }
}

double rt_dtype_load_f64(rt_dtype dt, const void *data, size_t i)
{
    switch (dt) {
    case RT_DTYPE_F32: return ((const float *)data)[i];
    case RT_DTYPE_F64: return ((const double *)data)[i];
    case RT_DTYPE_F16: return rt_f16_to_f32(((const uint16_t *)data)[i]);
    case RT_DTYPE_BF16: return rt_bf16_to_f32(((const uint16_t *)data)[i]);
    case RT_DTYPE_U8: return ((const uint8_t *)data)[i];
    case RT_DTYPE_I8: return ((const int8_t *)data)[i];
    case RT_DTYPE_U16: return ((const uint16_t *)data)[i];
    case RT_DTYPE_I16: return ((const int16_t *)data)[i];
    case RT_DTYPE_I32: return ((const int32_t *)data)[i];
    case RT_DTYPE_U32: return ((const uint32_t *)data)[i];
    case RT_DTYPE_I64: return (double)((const int64_t *)data)[i];
    case RT_DTYPE_U64: return (double)((const uint64_t *)data)[i];
    case RT_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: return 0.0;
    }
}

int64_t rt_dtype_load_i64(rt_dtype dt, const void *data, size_t i)
{
    switch (dt) {
    case RT_DTYPE_I64: return ((const int64_t *)data)[i];
    case RT_DTYPE_U64: return (int64_t)((const uint64_t *)data)[i];
    case RT_DTYPE_I32: return ((const int32_t *)data)[i];
    case RT_DTYPE_U32: return ((const uint32_t *)data)[i];
    case RT_DTYPE_I16: return ((const int16_t *)data)[i];
    case RT_DTYPE_U16: return ((const uint16_t *)data)[i];
    case RT_DTYPE_I8: return ((const int8_t *)data)[i];
    case RT_DTYPE_U8: return ((const uint8_t *)data)[i];
    case RT_DTYPE_BOOL: return ((const uint8_t *)data)[i] != 0;
    default: {
        double v = rt_dtype_load_f64(dt, data, i);
        if (isnan(v))
            return 0;
        if (v >= 9.2233720368547758e18)
            return INT64_MAX;
        if (v <= -9.2233720368547758e18)
            return INT64_MIN;
        return (int64_t)v;
    }
    }
}

void rt_dtype_store_f64(rt_dtype dt, void *data, size_t i, double v)
{
    switch (dt) {
    case RT_DTYPE_F32: ((float *)data)[i] = (float)v; break;
    case RT_DTYPE_F64: ((double *)data)[i] = v; break;
    case RT_DTYPE_F16: ((uint16_t *)data)[i] = rt_f32_to_f16((float)v); break;
    case RT_DTYPE_BF16: ((uint16_t *)data)[i] = rt_f32_to_bf16((float)v); break;
    case RT_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0.0; break;
    default:
        rt_dtype_store_i64(dt, data, i, rt_dtype_is_integer(dt) && !isnan(v) ? (int64_t)v : 0);
        break;
    }
}

void rt_dtype_store_i64(rt_dtype dt, void *data, size_t i, int64_t v)
{
    switch (dt) {
    case RT_DTYPE_I64: ((int64_t *)data)[i] = v; break;
    case RT_DTYPE_U64: ((uint64_t *)data)[i] = (uint64_t)v; break;
    case RT_DTYPE_I32: ((int32_t *)data)[i] = (int32_t)v; break;
    case RT_DTYPE_U32: ((uint32_t *)data)[i] = (uint32_t)v; break;
    case RT_DTYPE_I16: ((int16_t *)data)[i] = (int16_t)v; break;
    case RT_DTYPE_U16: ((uint16_t *)data)[i] = (uint16_t)v; break;
    case RT_DTYPE_I8: ((int8_t *)data)[i] = (int8_t)v; break;
    case RT_DTYPE_U8: ((uint8_t *)data)[i] = (uint8_t)v; break;
    case RT_DTYPE_BOOL: ((uint8_t *)data)[i] = v != 0; break;
    default: rt_dtype_store_f64(dt, data, i, (double)v); break;
    }
}
