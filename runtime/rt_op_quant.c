/* rt_op_quant.c: shape inference of the INT8 ops infd.QLinear and infd.QAttention
 * (rt_fused.h) and the reading of their "mode". Each checks its INT8 weight and scales,
 * then infers as the F32 op it replaces, on a weight header of that op's layout. */
#include <string.h>

#include "rt_fused.h"
#include "rt_ops.h"

static const char *const qmode_names[] = {[RT_QMODE_WEIGHT_ONLY] = "weight_only",
                                          [RT_QMODE_DYNAMIC] = "dynamic"};

const char *rt_qmode_name(rt_qmode mode)
{
    return (unsigned)mode < sizeof qmode_names / sizeof *qmode_names ? qmode_names[mode] : "?";
}

rt_status rt_qmode_get(const rt_node *node, rt_qmode *mode, rt_error *err)
{
    const char *name = rt_node_attr_string(node, "mode", "");
    for (unsigned k = 0; k < sizeof qmode_names / sizeof *qmode_names; k++)
        if (strcmp(name, qmode_names[k]) == 0) {
            *mode = (rt_qmode)k;
            return RT_OK;
        }
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: unknown mode '%s'", rt_op_name(node->op),
                        name);
}

/* Checks W (I8, 2-D) and S (F32, one scale per row of W) among in[0..n_in) (min to max
 * inputs) and the mode, and sets *w_f32 to an F32 header of W transposed: the layout of
 * the F32 op's weight. */
static rt_status check_weight(const rt_node *node, const rt_tensor *const *in, int n_in, int min,
                              int max, rt_tensor *w_f32, rt_error *err)
{
    const char *op = rt_op_name(node->op);
    if (n_in < min || n_in > max || !in[0] || !in[1] || !in[2])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s takes X, W, S and up to %d more inputs",
                            op, max - min);
    const rt_tensor *w = in[1], *s = in[2];
    if (w->dtype != RT_DTYPE_I8 || w->shape.rank != 2)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: W must be a 2-D I8 tensor", op);
    if (s->dtype != RT_DTYPE_F32 || rt_tensor_numel(s) != w->shape.dims[0])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: S must hold one F32 scale per row of W",
                            op);
    rt_status st = rt_qmode_get(node, &(rt_qmode){0}, err);
    if (st != RT_OK)
        return st;
    memset(w_f32, 0, sizeof *w_f32);
    w_f32->dtype = RT_DTYPE_F32;
    w_f32->shape = w->shape;
    w_f32->shape.dims[0] = w->shape.dims[1];
    w_f32->shape.dims[1] = w->shape.dims[0];
    return RT_OK;
}

rt_status rt_infer_qlinear(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    rt_tensor w;
    /* as Linear with trans_b = 0 (the node has no trans_b) on a (K, N) header */
    rt_status st = check_weight(node, in, n_in, 3, 4, &w, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *args[3] = {in[0], &w, n_in > 3 ? in[3] : NULL};
    return rt_infer_linear(node, args, args[2] ? 3 : 2, out, n_out, err);
}

rt_status rt_infer_qattention(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, int n_out, rt_error *err)
{
    rt_tensor w;
    rt_status st = check_weight(node, in, n_in, 3, 5, &w, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *args[4] = {in[0], &w, n_in > 3 ? in[3] : NULL, n_in > 4 ? in[4] : NULL};
    return rt_infer_attention(node, args, n_in - 1, out, n_out, err);
}
