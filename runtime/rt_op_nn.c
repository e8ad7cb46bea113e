/* rt_op_nn.c: shape inference of the linear-algebra and neural-network ops (MatMul, Gemm,
 * Conv, pooling, BatchNormalization, LayerNormalization) and the sliding-window geometry
 * that Conv and pooling share with their kernels. */
#include <string.h>

#include "rt_broadcast.h"
#include "rt_graph.h"
#include "rt_nn_params.h"
#include "rt_ops.h"

/* True when output i of the node exists in the graph (not an omitted optional output). */
static bool output_present(const rt_node *node, int i)
{
    return i < node->n_outputs && node->outputs[i] >= 0;
}

static rt_status need_inputs(const rt_node *node, const rt_tensor *const *in, int n_in, int n,
                             rt_error *err)
{
    for (int i = 0; i < n; i++)
        if (i >= n_in || !in[i])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input %d is required",
                                rt_op_name(node->op), i);
    return RT_OK;
}

static rt_status need_float(const rt_node *node, rt_dtype dt, rt_error *err)
{
    if (!rt_dtype_is_float(dt))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    return RT_OK;
}

/* Numeric types accepted by MatMul and Gemm: floats and integers. */
static rt_status need_numeric(const rt_node *node, rt_dtype dt, rt_error *err)
{
    if (!rt_dtype_is_float(dt) && !rt_dtype_is_integer(dt))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    return RT_OK;
}

/* Unidirectional broadcasting of s to the shape dims[0..rank). */
static bool broadcastable_to(const rt_shape *s, const int64_t *dims, int rank)
{
    if (s->rank > rank)
        return false;
    for (int i = 1; i <= s->rank; i++) {
        int64_t d = s->dims[s->rank - i];
        if (d != 1 && d != dims[rank - i])
            return false;
    }
    return true;
}

rt_status rt_axis_normalize(const rt_node *node, int64_t axis, int rank, bool allow_end, int *out,
                            rt_error *err)
{
    int64_t hi = allow_end ? rank : rank - 1;
    int64_t a = axis < 0 ? axis + rank : axis;
    if (a < 0 || a > hi)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: axis %lld is out of range for rank %d",
                            rt_op_name(node->op), (long long)axis, rank);
    *out = (int)a;
    return RT_OK;
}

/* An INTS attribute that is either absent (every entry = fallback) or has exactly n
 * entries, each >= min. */
static rt_status window_ints(const rt_node *node, const char *name, int n, int64_t fallback,
                             int64_t min, int64_t *vals, rt_error *err)
{
    int count;
    const int64_t *v = rt_node_attr_ints(node, name, &count);
    if (!v) {
        for (int i = 0; i < n; i++)
            vals[i] = fallback;
        return RT_OK;
    }
    if (count != n)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: %s has %d values, expected %d",
                            rt_op_name(node->op), name, count, n);
    for (int i = 0; i < n; i++) {
        if (v[i] < min)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: %s[%d] = %lld is below %lld",
                                rt_op_name(node->op), name, i, (long long)v[i], (long long)min);
        vals[i] = v[i];
    }
    return RT_OK;
}

rt_status rt_window_resolve(const rt_node *node, const rt_shape *x, const int64_t *kernel,
                            rt_window *w, rt_error *err)
{
    const char *op = rt_op_name(node->op);
    memset(w, 0, sizeof *w);
    w->rank = x->rank - 2;
    int n = w->rank;
    if (n < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input rank %d has no spatial dims",
                            op, x->rank);
    memcpy(w->in, x->dims + 2, sizeof(int64_t) * (size_t)n);
    if (kernel) {
        int count;
        const int64_t *ks = rt_node_attr_ints(node, "kernel_shape", &count);
        if (ks && (count != n || memcmp(ks, kernel, sizeof(int64_t) * (size_t)n) != 0))
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "%s: kernel_shape does not match the weight's spatial dims", op);
        memcpy(w->kernel, kernel, sizeof(int64_t) * (size_t)n);
    } else {
        if (!rt_node_attr(node, "kernel_shape"))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: kernel_shape is required", op);
        rt_status st = window_ints(node, "kernel_shape", n, 1, 1, w->kernel, err);
        if (st != RT_OK)
            return st;
    }
    int64_t pads[2 * RT_MAX_RANK];
    rt_status st = window_ints(node, "strides", n, 1, 1, w->stride, err);
    if (st == RT_OK)
        st = window_ints(node, "dilations", n, 1, 1, w->dilation, err);
    if (st == RT_OK)
        st = window_ints(node, "pads", 2 * n, 0, 0, pads, err);
    if (st != RT_OK)
        return st;
    const char *auto_pad = rt_node_attr_string(node, "auto_pad", "NOTSET");
    bool same_upper = strcmp(auto_pad, "SAME_UPPER") == 0;
    bool same_lower = strcmp(auto_pad, "SAME_LOWER") == 0;
    bool valid = strcmp(auto_pad, "VALID") == 0;
    if (!same_upper && !same_lower && !valid && strcmp(auto_pad, "NOTSET") != 0 && *auto_pad)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: unknown auto_pad '%s'", op, auto_pad);
    bool ceil_mode = rt_node_attr_int(node, "ceil_mode", 0) != 0;
    for (int i = 0; i < n; i++) {
        int64_t in = w->in[i], s = w->stride[i];
        int64_t extent = (w->kernel[i] - 1) * w->dilation[i] + 1;
        if (same_upper || same_lower) {
            w->out[i] = (in + s - 1) / s;
            int64_t total = (w->out[i] - 1) * s + extent - in;
            if (total < 0)
                total = 0;
            w->pad_begin[i] = same_upper ? total / 2 : total - total / 2;
            w->pad_end[i] = total - w->pad_begin[i];
            continue;
        }
        w->pad_begin[i] = valid ? 0 : pads[i];
        w->pad_end[i] = valid ? 0 : pads[n + i];
        int64_t span = in + w->pad_begin[i] + w->pad_end[i] - extent;
        if (span < 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "%s: window of %lld does not fit spatial dim %d of size %lld "
                                "with its padding", op, (long long)extent, i, (long long)in);
        w->out[i] = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
        /* as in PyTorch and ONNX Runtime, the last window must start inside the input or
         * its leading padding */
        if (ceil_mode && (w->out[i] - 1) * s >= in + w->pad_begin[i])
            w->out[i]--;
    }
    return RT_OK;
}

rt_status rt_infer_matmul(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                          int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 2, err);
    if (st != RT_OK)
        return st;
    const rt_shape *a = &in[0]->shape, *b = &in[1]->shape;
    if (in[0]->dtype != in[1]->dtype)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "MatMul: dtypes %s and %s differ",
                            rt_dtype_name(in[0]->dtype), rt_dtype_name(in[1]->dtype));
    if ((st = need_numeric(node, in[0]->dtype, err)) != RT_OK)
        return st;
    if (a->rank < 1 || b->rank < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "MatMul: operands must have rank >= 1");
    int64_t ka = a->dims[a->rank - 1];
    int64_t kb = b->rank == 1 ? b->dims[0] : b->dims[b->rank - 2];
    if (ka != kb)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "MatMul: inner dims differ (%lld vs %lld)", (long long)ka,
                            (long long)kb);
    /* batch dims: all but the last two of each operand, numpy-broadcast */
    rt_shape ba = rt_shape_make(a->rank > 2 ? a->rank - 2 : 0, a->dims);
    rt_shape bb = rt_shape_make(b->rank > 2 ? b->rank - 2 : 0, b->dims);
    rt_shape *o = &out[0].shape;
    if ((st = rt_broadcast_shapes(&ba, &bb, o, err)) != RT_OK)
        return rt_error_prefix(err, "MatMul batch dims: ");
    if (a->rank >= 2)
        o->dims[o->rank++] = a->dims[a->rank - 2];
    if (b->rank >= 2)
        o->dims[o->rank++] = b->dims[b->rank - 1];
    out[0].dtype = in[0]->dtype;
    return RT_OK;
}

rt_status rt_infer_gemm(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                        int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 2, err);
    if (st != RT_OK)
        return st;
    const rt_shape *a = &in[0]->shape, *b = &in[1]->shape;
    const rt_tensor *c = n_in > 2 ? in[2] : NULL;
    if (a->rank != 2 || b->rank != 2)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Gemm: A and B must be 2-D (got %d-D, %d-D)",
                            a->rank, b->rank);
    if (in[0]->dtype != in[1]->dtype || (c && c->dtype != in[0]->dtype))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Gemm: input dtypes differ");
    if ((st = need_numeric(node, in[0]->dtype, err)) != RT_OK)
        return st;
    bool ta = rt_node_attr_int(node, "transA", 0) != 0;
    bool tb = rt_node_attr_int(node, "transB", 0) != 0;
    int64_t m = a->dims[ta ? 1 : 0], k = a->dims[ta ? 0 : 1];
    int64_t kb = b->dims[tb ? 1 : 0], n = b->dims[tb ? 0 : 1];
    if (k != kb)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Gemm: inner dims differ (%lld vs %lld)",
                            (long long)k, (long long)kb);
    int64_t mn[2] = {m, n};
    if (c && !broadcastable_to(&c->shape, mn, 2))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Gemm: C does not broadcast to (%lld, %lld)",
                            (long long)m, (long long)n);
    out[0].dtype = in[0]->dtype;
    out[0].shape = rt_shape_make(2, mn);
    return RT_OK;
}

/* Output shape (N, channels, window outputs...). */
static rt_shape window_output_shape(const rt_shape *x, int64_t channels, const rt_window *w)
{
    rt_shape s = *x;
    s.dims[1] = channels;
    memcpy(s.dims + 2, w->out, sizeof(int64_t) * (size_t)w->rank);
    return s;
}

rt_status rt_infer_conv(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                        int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 2, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape, *wt = &in[1]->shape;
    const rt_tensor *bias = n_in > 2 ? in[2] : NULL;
    if ((st = need_float(node, in[0]->dtype, err)) != RT_OK)
        return st;
    if (in[1]->dtype != in[0]->dtype || (bias && bias->dtype != in[0]->dtype))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Conv: input dtypes differ");
    if (x->rank < 3 || wt->rank != x->rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Conv: X must be (N, C, D...) and W of the same rank (got %d-D, %d-D)",
                            x->rank, wt->rank);
    int64_t group = rt_node_attr_int(node, "group", 1);
    int64_t m = wt->dims[0];
    if (group < 1 || m % group != 0 || wt->dims[1] < 1 || x->dims[1] != wt->dims[1] * group)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Conv: %lld input channels do not fit W (%lld, %lld, ...) with "
                            "group %lld", (long long)x->dims[1], (long long)m,
                            (long long)wt->dims[1], (long long)group);
    if (bias && (bias->shape.rank != 1 || bias->shape.dims[0] != m))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Conv: B must have shape (%lld)",
                            (long long)m);
    rt_window w;
    if ((st = rt_window_resolve(node, x, wt->dims + 2, &w, err)) != RT_OK)
        return st;
    out[0].dtype = in[0]->dtype;
    out[0].shape = window_output_shape(x, m, &w);
    return RT_OK;
}

rt_status rt_infer_pool(const rt_node *node, const rt_tensor *const *in, int n_in, rt_tensor *out,
                        int n_out, rt_error *err)
{
    rt_status st = need_inputs(node, in, n_in, 1, err);
    if (st != RT_OK)
        return st;
    rt_dtype dt = in[0]->dtype;
    bool max = node->op == RT_OP_MAX_POOL;
    if (!(rt_dtype_is_float(dt) || (max && (dt == RT_DTYPE_I8 || dt == RT_DTYPE_U8))))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: dtype %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    int64_t order = rt_node_attr_int(node, "storage_order", 0);
    if (order != 0 && order != 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "MaxPool: storage_order must be 0 or 1");
    rt_window w;
    if ((st = rt_window_resolve(node, &in[0]->shape, NULL, &w, err)) != RT_OK)
        return st;
    out[0].dtype = dt;
    out[0].shape = window_output_shape(&in[0]->shape, in[0]->shape.dims[1], &w);
    if (max && n_out > 1) {
        out[1].dtype = RT_DTYPE_I64;
        out[1].shape = out[0].shape;
    }
    return RT_OK;
}

rt_status rt_infer_global_pool(const rt_node *node, const rt_tensor *const *in, int n_in,
                               rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 1, err);
    if (st != RT_OK)
        return st;
    if ((st = need_float(node, in[0]->dtype, err)) != RT_OK)
        return st;
    if (in[0]->shape.rank < 3)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "GlobalAveragePool: input must be (N, C, D...), got rank %d",
                            in[0]->shape.rank);
    out[0].dtype = in[0]->dtype;
    out[0].shape = in[0]->shape;
    for (int i = 2; i < out[0].shape.rank; i++)
        out[0].shape.dims[i] = 1;
    return RT_OK;
}

rt_status rt_infer_batchnorm(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    rt_status st = need_inputs(node, in, n_in, 5, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape;
    if ((st = need_float(node, in[0]->dtype, err)) != RT_OK)
        return st;
    if (x->rank < 2)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "BatchNormalization: X must be (N, C, ...), got rank %d", x->rank);
    if (rt_node_attr_int(node, "spatial", 1) == 0)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "BatchNormalization: spatial=0 (per-activation statistics) is not "
                            "supported");
    int64_t c = x->dims[1];
    for (int i = 1; i < 5; i++) {
        if (in[i]->shape.rank != 1 || in[i]->shape.dims[0] != c)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "BatchNormalization: input %d must have shape (%lld)", i,
                                (long long)c);
        if ((st = need_float(node, in[i]->dtype, err)) != RT_OK)
            return st;
    }
    bool extra = output_present(node, 1) || output_present(node, 2);
    for (int i = 3; i < node->n_outputs; i++)
        extra = extra || output_present(node, i);
    bool training = node->opset >= 14 && rt_node_attr_int(node, "training_mode", 0) != 0;
    if (extra && !training)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "BatchNormalization: statistics outputs are only supported with "
                            "training_mode=1 (opset >= 14)");
    out[0].dtype = in[0]->dtype;
    out[0].shape = *x;
    for (int i = 1; i < n_out && i < 3; i++) {
        out[i].dtype = in[3]->dtype;
        out[i].shape = in[3]->shape;
    }
    return RT_OK;
}

rt_status rt_infer_layernorm(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    rt_status st = need_inputs(node, in, n_in, 2, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape;
    if ((st = need_float(node, in[0]->dtype, err)) != RT_OK)
        return st;
    int axis = 0;
    if (x->rank < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "LayerNormalization: X must have rank >= 1");
    if ((st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", -1), x->rank, false, &axis,
                                err)) != RT_OK)
        return st;
    for (int i = 1; i < 3 && i < n_in; i++) {
        if (!in[i])
            continue;
        if (in[i]->dtype != in[0]->dtype)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "LayerNormalization: input dtypes differ");
        if (!broadcastable_to(&in[i]->shape, x->dims + axis, x->rank - axis))
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "LayerNormalization: input %d does not broadcast to the "
                                "normalized dims", i);
    }
    rt_dtype stash = (rt_dtype)rt_node_attr_int(node, "stash_type", RT_DTYPE_F32);
    if (!rt_dtype_valid(stash) || !rt_dtype_is_float(stash))
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "LayerNormalization: stash_type %d is not supported", (int)stash);
    out[0].dtype = in[0]->dtype;
    out[0].shape = *x;
    for (int i = 1; i < n_out && i < 3; i++) {
        out[i].dtype = stash;
        out[i].shape = *x;
        for (int d = axis; d < x->rank; d++)
            out[i].shape.dims[d] = 1;
    }
    return RT_OK;
}
