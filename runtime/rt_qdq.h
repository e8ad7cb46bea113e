/* rt_qdq.h: the quantization parameters of QuantizeLinear and DequantizeLinear (ONNX
 * opsets 10 to 17), read the same way by their shape inference (rt_op_qdq.c) and their
 * kernels (rt_cpu_qdq.c). Quantized values q and reals x relate as
 *   x = (q - zero_point) * scale,   q = saturate(round_half_even(x / scale) + zero_point)
 * with one scale and zero point for the whole tensor, or one per index of the `axis`
 * attribute's dim (scale and zero point 1-D of that size). */
#ifndef RT_QDQ_H
#define RT_QDQ_H

#include <stdint.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

typedef struct rt_qdq {
    int64_t channels; /* 1 for per-tensor, else the size of the quantized axis */
    int64_t inner;    /* elements after that axis: element i is in channel i / inner % channels */
    rt_dtype q;       /* the quantized dtype: the zero point's (I8, U8; I32 to dequantize),
                       * U8 when there is none */
} rt_qdq;

/* Checks scale (F32, one element or one per channel of x's axis) and the optional zero
 * point (same element count; its dtype is the quantized one) against x and fills p. */
rt_status rt_qdq_resolve(const rt_node *node, const rt_tensor *x, const rt_tensor *scale,
                         const rt_tensor *zero_point, rt_qdq *p, rt_error *err);

#endif
