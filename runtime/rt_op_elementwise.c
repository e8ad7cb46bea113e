/* rt_op_elementwise.c: shape and dtype inference of the elementwise ops: broadcasting
 * binary ops, comparisons, Where, variadic Min/Max, unary math, Cast and Dropout. It also
 * rejects the dtypes the CPU kernels do not implement, so that errors surface before any
 * kernel runs. */
#include <float.h>
#include <math.h>

#include "rt_broadcast.h"
#include "rt_graph.h"
#include "rt_nn_params.h"
#include "rt_ops.h"

rt_status rt_broadcast_shapes(const rt_shape *a, const rt_shape *b, rt_shape *out, rt_error *err)
{
    int rank = a->rank > b->rank ? a->rank : b->rank;
    rt_shape r = {.rank = rank};
    for (int i = 0; i < rank; i++) {
        int ia = i - (rank - a->rank), ib = i - (rank - b->rank);
        int64_t da = ia >= 0 ? a->dims[ia] : 1, db = ib >= 0 ? b->dims[ib] : 1;
        if (da != db && da != 1 && db != 1) {
            char sa[96], sb[96];
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "shapes %s and %s do not broadcast (dim %d: %lld vs %lld)",
                                rt_shape_str(a, sa, sizeof sa), rt_shape_str(b, sb, sizeof sb),
                                i, (long long)da, (long long)db);
        }
        r.dims[i] = da == 1 ? db : da;
    }
    *out = r;
    return RT_OK;
}

static bool is_numeric(rt_dtype dt)
{
    return rt_dtype_is_float(dt) || rt_dtype_is_integer(dt);
}

static rt_status check_inputs(const rt_node *node, const rt_tensor *const *in, int n_in,
                              int min, int max, rt_error *err)
{
    if (n_in < min || n_in > max)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s takes %d to %d inputs, got %d",
                            rt_op_name(node->op), min, max, n_in);
    for (int i = 0; i < min; i++)
        if (!in[i])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input %d is required",
                                rt_op_name(node->op), i);
    return RT_OK;
}

static rt_status check_same_dtype(const rt_node *node, const rt_tensor *a, const rt_tensor *b,
                                  rt_error *err)
{
    if (a->dtype != b->dtype)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: inputs have different dtypes %s and %s",
                            rt_op_name(node->op), rt_dtype_name(a->dtype), rt_dtype_name(b->dtype));
    return RT_OK;
}

static rt_status unsupported_dtype(const rt_node *node, rt_dtype dt, rt_error *err)
{
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s does not support dtype %s",
                        rt_op_name(node->op), rt_dtype_name(dt));
}

/* Add/Sub/Mul/Div (output of the inputs' dtype) and the comparisons (BOOL output, BOOL
 * inputs allowed): two inputs of one dtype, broadcast. */
static rt_status infer_binary(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, bool compare, rt_error *err)
{
    rt_status st = check_inputs(node, in, n_in, 2, 2, err);
    if (st == RT_OK)
        st = check_same_dtype(node, in[0], in[1], err);
    if (st == RT_OK)
        st = rt_broadcast_shapes(&in[0]->shape, &in[1]->shape, &out->shape, err);
    if (st != RT_OK)
        return st;
    rt_dtype dt = in[0]->dtype;
    if (!is_numeric(dt) && !(compare && dt == RT_DTYPE_BOOL))
        return unsupported_dtype(node, dt, err);
    out->dtype = compare ? RT_DTYPE_BOOL : dt;
    return RT_OK;
}

rt_status rt_infer_broadcast(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    return infer_binary(node, in, n_in, out, false, err);
}

rt_status rt_infer_pow(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                       int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = check_inputs(node, in, n_in, 2, 2, err);
    if (st != RT_OK)
        return st;
    for (int i = 0; i < 2; i++)
        if (!is_numeric(in[i]->dtype))
            return unsupported_dtype(node, in[i]->dtype, err);
    out->dtype = in[0]->dtype; /* the exponent may have any numeric dtype */
    return rt_broadcast_shapes(&in[0]->shape, &in[1]->shape, &out->shape, err);
}

rt_status rt_infer_compare(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    return infer_binary(node, in, n_in, out, true, err);
}

rt_status rt_infer_where(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = check_inputs(node, in, n_in, 3, 3, err);
    if (st == RT_OK)
        st = check_same_dtype(node, in[1], in[2], err);
    if (st != RT_OK)
        return st;
    if (in[0]->dtype != RT_DTYPE_BOOL)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Where: condition must be BOOL, not %s",
                            rt_dtype_name(in[0]->dtype));
    rt_shape s;
    st = rt_broadcast_shapes(&in[0]->shape, &in[1]->shape, &s, err);
    if (st == RT_OK)
        st = rt_broadcast_shapes(&s, &in[2]->shape, &out->shape, err);
    out->dtype = in[1]->dtype;
    return st;
}

rt_status rt_infer_variadic(const rt_node *node, const rt_tensor *const *in, int n_in,
                            rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    /* every input counts, so all n_in are required */
    rt_status st = check_inputs(node, in, n_in, n_in < 1 ? 1 : n_in, n_in < 1 ? 1 : n_in, err);
    if (st != RT_OK)
        return st;
    if (!is_numeric(in[0]->dtype))
        return unsupported_dtype(node, in[0]->dtype, err);
    rt_shape s = in[0]->shape;
    for (int i = 1; i < n_in && st == RT_OK; i++) {
        st = check_same_dtype(node, in[0], in[i], err);
        if (st == RT_OK)
            st = rt_broadcast_shapes(&s, &in[i]->shape, &s, err);
    }
    out->dtype = in[0]->dtype;
    out->shape = s;
    return st;
}

/* Whether the CPU kernels implement op on dt (ops outside this family: always). */
static bool unary_supports(rt_op op, rt_dtype dt)
{
    switch (op) {
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_RECIPROCAL:
    case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID: case RT_OP_TANH: case RT_OP_ERF:
        return rt_dtype_is_float(dt);
    case RT_OP_NEG: case RT_OP_RELU:
        return rt_dtype_is_signed(dt);
    case RT_OP_ABS: case RT_OP_CLIP:
        return is_numeric(dt);
    case RT_OP_NOT:
        return dt == RT_DTYPE_BOOL;
    default:
        return true;
    }
}

/* Clip's optional min/max inputs (opset >= 11): scalars of x's dtype. */
static rt_status check_clip_bounds(const rt_node *node, const rt_tensor *const *in, int n_in,
                                   rt_error *err)
{
    for (int i = 1; i < n_in && i < 3; i++) {
        if (!in[i])
            continue;
        rt_status st = check_same_dtype(node, in[0], in[i], err);
        if (st != RT_OK)
            return st;
        if (rt_tensor_numel(in[i]) != 1)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "Clip: %s must be a scalar",
                                i == 1 ? "min" : "max");
    }
    return RT_OK;
}

/* Also used by Identity, Softmax and LogSoftmax: output = input's dtype and shape. */
rt_status rt_infer_unary(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = check_inputs(node, in, n_in, 1, node->op == RT_OP_CLIP ? 3 : 1, err);
    if (st != RT_OK)
        return st;
    if (!unary_supports(node->op, in[0]->dtype))
        return unsupported_dtype(node, in[0]->dtype, err);
    if (node->op == RT_OP_CLIP && (st = check_clip_bounds(node, in, n_in, err)) != RT_OK)
        return st;
    out->dtype = in[0]->dtype;
    out->shape = in[0]->shape;
    return RT_OK;
}

rt_status rt_infer_cast(const rt_node *node, const rt_tensor *const *in, int n_in,
                        rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = check_inputs(node, in, n_in, 1, 1, err);
    if (st != RT_OK)
        return st;
    int64_t to = rt_node_attr_int(node, "to", RT_DTYPE_UNDEFINED);
    if (to < 0 || to > 0xffff || !rt_dtype_valid((int)to))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "Cast: unsupported target type %lld",
                            (long long)to);
    out->dtype = (rt_dtype)to;
    out->shape = in[0]->shape;
    return RT_OK;
}

/* Dropout: data (any float dtype), optional ratio and training_mode (opset >= 12), outputs
 * data and an optional BOOL mask. */
rt_status rt_infer_dropout(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    rt_status st = check_inputs(node, in, n_in, 1, 3, err);
    if (st != RT_OK)
        return st;
    if (n_in > 1 && in[1] && (!rt_dtype_is_float(in[1]->dtype) || rt_tensor_numel(in[1]) != 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Dropout: ratio must be a float scalar");
    if (n_in > 2 && in[2] && (in[2]->dtype != RT_DTYPE_BOOL || rt_tensor_numel(in[2]) != 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Dropout: training_mode must be a BOOL scalar");
    out[0].dtype = in[0]->dtype;
    out[0].shape = in[0]->shape;
    if (n_out > 1) {
        out[1].dtype = RT_DTYPE_BOOL;
        out[1].shape = in[0]->shape;
    }
    return RT_OK;
}

void rt_clip_bounds(const rt_node *node, const rt_tensor *const *in, int n_in, double *lo,
                    double *hi, const rt_tensor **lo_t, const rt_tensor **hi_t)
{
    *lo = -INFINITY;
    *hi = INFINITY;
    *lo_t = *hi_t = NULL;
    if (node->opset < 11 || rt_node_attr(node, "min") || rt_node_attr(node, "max")) {
        *lo = rt_node_attr_float(node, "min", -FLT_MAX);
        *hi = rt_node_attr_float(node, "max", FLT_MAX);
        return;
    }
    if (n_in > 1 && in[1]) {
        *lo_t = in[1];
        *lo = rt_dtype_load_f64(in[1]->dtype, in[1]->data, 0);
    }
    if (n_in > 2 && in[2]) {
        *hi_t = in[2];
        *hi = rt_dtype_load_f64(in[2]->dtype, in[2]->data, 0);
    }
}
