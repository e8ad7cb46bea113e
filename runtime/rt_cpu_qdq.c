/* rt_cpu_qdq.c: CPU kernels of QuantizeLinear and DequantizeLinear (rt_qdq.h): one pass over
 * the tensor in blocks that share one scale and zero point (a channel's `inner` elements,
 * or chunks of a per-tensor one), spread over the threads. */
#include <math.h>

#include "rt_cpu.h"
#include "rt_cpu_strided.h"
#include "rt_qdq.h"

/* Elements per block of a per-tensor (de)quantization. */
#define CHUNK 16384

/* Elements [i0, i0 + len) of x (de)quantized into y with one scale and zero point. */
typedef void (*block_fn)(const rt_tensor *x, rt_tensor *y, int64_t i0, int64_t len, float scale,
                         int64_t zero_point);

static void quantize_block(const rt_tensor *x, rt_tensor *y, int64_t i0, int64_t len, float s,
                           int64_t zero_point)
{
    bool signed_q = y->dtype == RT_DTYPE_I8;
    float lo = signed_q ? -128.0f : 0.0f, hi = signed_q ? 127.0f : 255.0f, zp = (float)zero_point;
    const float *xf = x->dtype == RT_DTYPE_F32 ? x->data : NULL;
    for (int64_t i = i0; i < i0 + len; i++) {
        float v = xf ? xf[i] : (float)rt_dtype_load_f64(x->dtype, x->data, (size_t)i);
        float q = nearbyintf(v / s) + zp; /* ties to even, as ONNX rounds */
        q = q != q ? zp : q < lo ? lo : q > hi ? hi : q; /* NaN to the zero point */
        if (signed_q)
            ((int8_t *)y->data)[i] = (int8_t)q;
        else
            ((uint8_t *)y->data)[i] = (uint8_t)q;
    }
}

static void dequantize_block(const rt_tensor *x, rt_tensor *y, int64_t i0, int64_t len, float s,
                             int64_t zp)
{
    float *out = (float *)y->data + i0;
    if (x->dtype == RT_DTYPE_I8) {
        const int8_t *q = (const int8_t *)x->data + i0;
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++)
            out[i] = (float)((int32_t)q[i] - (int32_t)zp) * s;
    } else if (x->dtype == RT_DTYPE_U8) {
        const uint8_t *q = (const uint8_t *)x->data + i0;
        _Pragma("omp simd")
        for (int64_t i = 0; i < len; i++)
            out[i] = (float)((int32_t)q[i] - (int32_t)zp) * s;
    } else {
        const int32_t *q = (const int32_t *)x->data + i0;
        for (int64_t i = 0; i < len; i++)
            out[i] = (float)((int64_t)q[i] - zp) * s;
    }
}

/* Runs fn over the blocks of in[0] (inference has validated the parameters). */
static rt_status run_blocks(rt_kernel_ctx *ctx, const rt_node *node, const rt_tensor *const *in,
                            int n_in, rt_tensor *y, block_fn fn, rt_error *err)
{
    rt_qdq p;
    const rt_tensor *zp = n_in > 2 ? in[2] : NULL;
    rt_status st = rt_qdq_resolve(node, in[0], in[1], zp, &p, err);
    if (st != RT_OK)
        return st;
    const float *scale = in[1]->data;
    int64_t n = rt_tensor_numel(in[0]), block = p.channels == 1 ? CHUNK : p.inner;
    int64_t blocks = block ? (n + block - 1) / block : 0;
    #pragma omp parallel for if(n > RT_PARALLEL_BYTES) num_threads(ctx->threads)
    for (int64_t b = 0; b < blocks; b++) {
        int64_t c = b % p.channels, i0 = b * block;
        int64_t z = zp ? rt_dtype_load_i64(zp->dtype, zp->data, (size_t)c) : 0;
        fn(in[0], y, i0, i0 + block < n ? block : n - i0, scale[c], z);
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_quantize_linear)
{
    (void)n_out;
    return run_blocks(ctx, node, in, n_in, out[0], quantize_block, err);
}

RT_CPU_KERNEL(rt_cpu_dequantize_linear)
{
    (void)n_out;
    return run_blocks(ctx, node, in, n_in, out[0], dequantize_block, err);
}
