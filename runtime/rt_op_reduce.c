/* rt_op_reduce.c: shape inference of the reductions (ReduceMean, ReduceSum, ReduceMax,
 * ArgMax) and the resolution of their reduced axes, shared with the kernels. */
#include <string.h>

#include "rt_graph.h"
#include "rt_nn_params.h"
#include "rt_ops.h"

rt_status rt_reduce_axes(const rt_node *node, const rt_tensor *const *in, int n_in, int rank,
                         bool reduced[RT_MAX_RANK], rt_error *err)
{
    const char *op = rt_op_name(node->op);
    int n_axes = 0;
    const int64_t *attr = rt_node_attr_ints(node, "axes", &n_axes);
    const rt_tensor *input = n_in > 1 ? in[1] : NULL;
    if (!attr && input) {
        if (!rt_dtype_is_integer(input->dtype) || input->shape.rank > 1)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: axes must be a 1-D integer tensor",
                                op);
        n_axes = (int)rt_tensor_numel(input);
    }
    memset(reduced, 0, sizeof(bool) * RT_MAX_RANK);
    if (n_axes == 0) {
        bool noop = rt_node_attr_int(node, "noop_with_empty_axes", 0) != 0;
        for (int i = 0; i < rank; i++)
            reduced[i] = !noop;
        return RT_OK;
    }
    if (n_axes > rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: %d axes for rank %d", op, n_axes, rank);
    for (int i = 0; i < n_axes; i++) {
        int64_t a = attr ? attr[i] : rt_dtype_load_i64(input->dtype, input->data, (size_t)i);
        int axis;
        rt_status st = rt_axis_normalize(node, a, rank, false, &axis, err);
        if (st != RT_OK)
            return st;
        if (reduced[axis])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: axis %lld is repeated", op,
                                (long long)a);
        reduced[axis] = true;
    }
    return RT_OK;
}

static rt_status need_input(const rt_node *node, const rt_tensor *const *in, int n_in,
                            rt_error *err)
{
    if (n_in < 1 || !in[0])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input 0 is required",
                            rt_op_name(node->op));
    rt_dtype dt = in[0]->dtype;
    if (!rt_dtype_is_float(dt) && !rt_dtype_is_integer(dt))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    return RT_OK;
}

/* The input shape with reduced dims set to 1 (keepdims) or removed. */
static rt_shape reduced_shape(const rt_shape *x, const bool *reduced, bool keepdims)
{
    rt_shape s = {0};
    for (int i = 0; i < x->rank; i++) {
        if (!reduced[i])
            s.dims[s.rank++] = x->dims[i];
        else if (keepdims)
            s.dims[s.rank++] = 1;
    }
    return s;
}

rt_status rt_infer_reduce(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                          int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_input(node, in, n_in, err);
    if (st != RT_OK)
        return st;
    if (in[0]->dtype == RT_DTYPE_U64)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype U64 is not supported",
                            rt_op_name(node->op));
    bool reduced[RT_MAX_RANK];
    if ((st = rt_reduce_axes(node, in, n_in, in[0]->shape.rank, reduced, err)) != RT_OK)
        return st;
    out[0].dtype = in[0]->dtype;
    out[0].shape = reduced_shape(&in[0]->shape, reduced,
                                 rt_node_attr_int(node, "keepdims", 1) != 0);
    return RT_OK;
}

rt_status rt_infer_argmax(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                          int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_input(node, in, n_in, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape;
    int axis = 0;
    if (x->rank < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "ArgMax: input must have rank >= 1");
    if ((st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", 0), x->rank, false, &axis,
                                err)) != RT_OK)
        return st;
    if (x->dims[axis] == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "ArgMax: the reduced axis is empty");
    bool reduced[RT_MAX_RANK] = {false};
    reduced[axis] = true;
    out[0].dtype = RT_DTYPE_I64;
    out[0].shape = reduced_shape(x, reduced, rt_node_attr_int(node, "keepdims", 1) != 0);
    return RT_OK;
}
