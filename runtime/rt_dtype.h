/* rt_dtype.h: element types of tensors, their sizes and names, and the scalar conversions
 * (FP16/BF16 <-> FP32) every backend needs.
 *
 * The numeric values equal ONNX's TensorProto.DataType so the loader maps them directly. */
#ifndef RT_DTYPE_H
#define RT_DTYPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum {
    RT_DTYPE_UNDEFINED = 0,
    RT_DTYPE_F32 = 1,
    RT_DTYPE_U8 = 2,
    RT_DTYPE_I8 = 3,
    RT_DTYPE_U16 = 4,
    RT_DTYPE_I16 = 5,
    RT_DTYPE_I32 = 6,
    RT_DTYPE_I64 = 7,
    RT_DTYPE_BYTES = 8, /* elements are rt_str (see rt_tensor.h) */
    RT_DTYPE_BOOL = 9,  /* one byte per element, 0 or 1 */
    RT_DTYPE_F16 = 10,
    RT_DTYPE_F64 = 11,
    RT_DTYPE_U32 = 12,
    RT_DTYPE_U64 = 13,
    RT_DTYPE_BF16 = 16
} rt_dtype;

/* Bytes per element; 0 for RT_DTYPE_UNDEFINED or values outside the enum. */
size_t rt_dtype_size(rt_dtype dt);
/* Upper-case short name: "F32", "BYTES", ...; "UNDEFINED" for unknown values. */
const char *rt_dtype_name(rt_dtype dt);
/* True for the enum values above except UNDEFINED. */
bool rt_dtype_valid(int value);
bool rt_dtype_is_float(rt_dtype dt);   /* F16, BF16, F32, F64 */
bool rt_dtype_is_integer(rt_dtype dt); /* signed and unsigned integers (not BOOL) */
bool rt_dtype_is_signed(rt_dtype dt);  /* floats and signed integers */

float rt_f16_to_f32(uint16_t h);
uint16_t rt_f32_to_f16(float f);   /* round to nearest even; overflow -> inf, NaN kept */
float rt_bf16_to_f32(uint16_t b);
uint16_t rt_f32_to_bf16(float f);  /* round to nearest even, NaN kept */

/* n elements of an F16 or BF16 buffer, read every step elements, widened to float; and n
 * floats rounded to F16 or BF16 (dt must be one of the two). */
void rt_half_load(rt_dtype dt, const uint16_t *src, int64_t step, float *dst, int64_t n);
void rt_half_store(rt_dtype dt, const float *src, uint16_t *dst, int64_t n);

/* Element i of a numeric buffer of type dt, widened to double / to int64 (truncating
 * floats toward zero). For BOOL, 0 or 1. Not for BYTES. */
double rt_dtype_load_f64(rt_dtype dt, const void *data, size_t i);
int64_t rt_dtype_load_i64(rt_dtype dt, const void *data, size_t i);
/* Stores v into element i of a numeric buffer, converting like a C cast (for F16/BF16
 * through float; for BOOL, v != 0). Not for BYTES. */
void rt_dtype_store_f64(rt_dtype dt, void *data, size_t i, double v);
void rt_dtype_store_i64(rt_dtype dt, void *data, size_t i, int64_t v);

#endif
