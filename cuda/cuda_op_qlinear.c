/* cuda_op_qlinear.c: infd.QLinear (rt_fused.h) on the CUDA backend.
 *
 * weight_only: W (I8, n x k) widened with its per-channel scales into scratch in the
 * GEMM's dtype (F32, or F16 / BF16 under --precision), then the F32 Linear path: cuBLASLt
 * with the bias / activation epilogue. The weight is widened on every run (caching the
 * widened copy at load would trade its memory for the launch; not done yet).
 *
 * dynamic (W8A8): each row of X quantized as the CPU does (cuda_k_quant.cu), the INT8
 * product on cuBLASLt (CUDA_R_8I operands, CUBLAS_COMPUTE_32I, INT32 D, the TN layout
 * its integer kernels need: k, the operands' leading dims and D's padded to multiples of
 * 4), then a kernel that dequantizes with the row and channel scales (the zero points
 * corrected through W's row sums) and cuda_k_bias_act for bias and activation, as
 * cuBLASLt has no epilogue for per-row x per-channel scales.
 *
 * NEVER RUN: written and compiled without a GPU; tests/gpu/test_backend_ops.c compares it
 * with the CPU on a device (`make test-gpu`). */
#include "cuda_ops.h"
#include "rt_fused.h"

static int64_t round4(int64_t v) { return (v + 3) / 4 * 4; }

static rt_status weight_only(cuda_be *be, const rt_tensor *x, const rt_tensor *w,
                             const float *scale, const float *bias, cuda_act act, int64_t m,
                             int64_t n, int64_t k, float *y, rt_error *err)
{
    rt_dtype cd = cuda_compute_dtype(be, RT_DTYPE_F32);
    size_t wbytes = cuda_piece((size_t)(n * k) * rt_dtype_size(cd));
    char *cursor = cuda_scratch(be, wbytes + cuda_operand_bytes(be, x, cd), err);
    if (!cursor)
        return err ? err->status : RT_ERR_NOMEM;
    void *pw = cursor;
    cursor += wbytes;
    CUDA_LAUNCH(be, err, cuda_k_dequant_rows(be->stream, w->data, scale, n, k, cd, pw),
                "QLinear weight");
    const void *px = cuda_operand(be, x, cd, &cursor, err);
    if (!px)
        return err ? err->status : RT_ERR_BACKEND;
    cuda_gemm g = cuda_gemm_plain(cd, RT_DTYPE_F32, false, true, m, n, k, px, pw, y);
    g.tf32 = be->precision == RT_PRECISION_TF32;
    return cuda_gemm_bias_act(be, &g, bias, act, err);
}

static rt_status dynamic(cuda_be *be, const float *x, const int8_t *w, const float *w_scale,
                         const float *bias, cuda_act act, int64_t m, int64_t n, int64_t k,
                         float *y, rt_error *err)
{
    int64_t kp = round4(k), ldd = round4(n);
    bool pad = kp != k;
    size_t q_bytes = cuda_piece((size_t)(m * kp)), acc_bytes = cuda_piece((size_t)(m * ldd) * 4);
    size_t row_bytes = cuda_piece((size_t)m * 4), ch_bytes = cuda_piece((size_t)n * 4);
    size_t wp_bytes = pad ? cuda_piece((size_t)(n * kp)) : 0;
    char *p = cuda_scratch(be, q_bytes + acc_bytes + 2 * row_bytes + ch_bytes + wp_bytes, err);
    if (!p)
        return err ? err->status : RT_ERR_NOMEM;
    int8_t *q = (int8_t *)p;
    int32_t *acc = (int32_t *)(p += q_bytes);
    float *a_scale = (float *)(p += acc_bytes);
    int32_t *a_zp = (int32_t *)(p += row_bytes);
    int32_t *w_sum = (int32_t *)(p += row_bytes);
    int8_t *wp = pad ? (int8_t *)(p + ch_bytes) : NULL;
    CUDA_LAUNCH(be, err, cuda_k_quantize_rows(be->stream, x, m, k, kp, q, a_scale, a_zp),
                "QLinear activation quantization");
    CUDA_LAUNCH(be, err, cuda_k_weight_rows(be->stream, w, n, k, kp, w_sum, wp),
                "QLinear weight sums");
    cuda_gemm g = cuda_gemm_plain(RT_DTYPE_I8, RT_DTYPE_I32, false, true, m, n, kp, q,
                                  pad ? wp : w, acc);
    g.ldd = ldd;
    rt_status st = cuda_gemm_run(be, &g, err);
    if (st != RT_OK)
        return st;
    CUDA_LAUNCH(be, err,
                cuda_k_dequant_acc(be->stream, acc, ldd, m, n, a_scale, a_zp, w_scale, w_sum, y),
                "QLinear dequantization");
    if (bias || act.kind != RT_ACT_NONE)
        CUDA_LAUNCH(be, err, cuda_k_bias_act(be->stream, y, y, m, n, bias, act),
                    "QLinear bias and activation");
    return RT_OK;
}

CUDA_OP(cuda_op_qlinear)
{
    (void)n_out;
    cuda_act act;
    rt_qmode mode;
    rt_status st = cuda_act_get(node, &act, err);
    if (st == RT_OK)
        st = rt_qmode_get(node, &mode, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *x = in[0], *w = in[1], *b = n_in > 3 ? in[3] : NULL;
    if (x->dtype != RT_DTYPE_F32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: infd.QLinear on %s is not supported",
                            rt_dtype_name(x->dtype));
    int64_t k = x->shape.dims[x->shape.rank - 1], n = w->shape.dims[0];
    int64_t m = n ? rt_tensor_numel(out[0]) / n : 0;
    if (m * n == 0)
        return RT_OK;
    const float *bias = b ? b->data : NULL, *scale = in[2]->data;
    return mode == RT_QMODE_WEIGHT_ONLY
               ? weight_only(be, x, w, scale, bias, act, m, n, k, out[0]->data, err)
               : dynamic(be, x->data, w->data, scale, bias, act, m, n, k, out[0]->data, err);
}
