/* rt_op_qdq.c: shape inference of QuantizeLinear and DequantizeLinear, and the reading of
 * their scale, zero point and axis that the kernels share (rt_qdq.h). */
#include "rt_op_shape.h"
#include "rt_ops.h"
#include "rt_qdq.h"

rt_status rt_qdq_resolve(const rt_node *node, const rt_tensor *x, const rt_tensor *scale,
                         const rt_tensor *zero_point, rt_qdq *p, rt_error *err)
{
    const char *op = rt_op_name(node->op);
    int64_t n = rt_tensor_numel(scale);
    p->channels = 1;
    p->inner = 1;
    p->q = zero_point ? zero_point->dtype : RT_DTYPE_U8;
    if (scale->dtype != RT_DTYPE_F32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: scale dtype %s is not supported (F32)",
                            op, rt_dtype_name(scale->dtype));
    if (scale->shape.rank > 1 || (scale->shape.rank == 0 && n != 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: the scale must be a scalar or 1-D",
                            op);
    if (zero_point && (rt_tensor_numel(zero_point) != n || zero_point->shape.rank > 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "%s: the zero point must have the scale's shape", op);
    if (scale->shape.rank == 1 && node->opset >= 13) {
        int axis;
        rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 1), x->shape.rank, "axis",
                                       &axis, err);
        if (st != RT_OK)
            return st;
        if (x->shape.dims[axis] != n)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "%s: %lld scales for an axis of %lld elements", op,
                                (long long)n, (long long)x->shape.dims[axis]);
        p->channels = n;
        for (int d = axis + 1; d < x->shape.rank; d++)
            p->inner *= x->shape.dims[d];
    } else if (n != 1) {
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "%s: per-axis scales need opset 13 (this node has opset %d)", op,
                            node->opset);
    }
    return RT_OK;
}

/* QuantizeLinear (quantize) or DequantizeLinear: the inputs checked, the output typed. */
static rt_status infer_qdq(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, bool quantize, rt_error *err)
{
    rt_qdq p;
    rt_status st = rt_inputs_require(in, n_in, 2, err);
    if (st != RT_OK)
        return st;
    if (n_in > 3)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s takes 2 or 3 inputs, got %d",
                            rt_op_name(node->op), n_in);
    const rt_tensor *zp = rt_in_opt(in, n_in, 2);
    if ((st = rt_qdq_resolve(node, in[0], in[1], zp, &p, err)) != RT_OK)
        return st;
    rt_dtype x = in[0]->dtype;
    if (quantize && x != RT_DTYPE_F32 && x != RT_DTYPE_F16 && x != RT_DTYPE_BF16 &&
        x != RT_DTYPE_I32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "QuantizeLinear: input dtype %s",
                            rt_dtype_name(x));
    if (quantize && p.q != RT_DTYPE_U8 && p.q != RT_DTYPE_I8)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "QuantizeLinear: zero point dtype %s (U8 or I8)", rt_dtype_name(p.q));
    if (!quantize && x != RT_DTYPE_U8 && x != RT_DTYPE_I8 && x != RT_DTYPE_I32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "DequantizeLinear: input dtype %s (U8, I8 or I32)", rt_dtype_name(x));
    if (!quantize && zp && p.q != x)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "DequantizeLinear: zero point dtype %s differs from the input's %s",
                            rt_dtype_name(p.q), rt_dtype_name(x));
    out[0].dtype = quantize ? p.q : RT_DTYPE_F32;
    out[0].shape = in[0]->shape;
    return RT_OK;
}

rt_status rt_infer_quantize_linear(const rt_node *node, const rt_tensor *const *in, int n_in,
                                   rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    return infer_qdq(node, in, n_in, out, true, err);
}

rt_status rt_infer_dequantize_linear(const rt_node *node, const rt_tensor *const *in, int n_in,
                                     rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    return infer_qdq(node, in, n_in, out, false, err);
}
