/* rt_op_layout.c: shape inference for the ops that rearrange elements in space
 * (Transpose, Slice, Pad, Tile) and the resolution of their parameters, which the CPU
 * kernels reuse through rt_op_shape.h. */
#include "rt_op_shape.h"

#include <string.h>

#include "rt_ops.h"

rt_status rt_transpose_perm(const rt_node *node, int rank, int *perm, rt_error *err)
{
    int n;
    const int64_t *p = rt_node_attr_ints(node, "perm", &n);
    if (!p) {
        for (int i = 0; i < rank; i++)
            perm[i] = rank - 1 - i;
        return RT_OK;
    }
    bool seen[RT_MAX_RANK] = {false};
    if (n != rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "perm has %d entries for rank %d", n, rank);
    for (int i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= rank || seen[p[i]])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "perm is not a permutation of 0..%d",
                                rank - 1);
        seen[p[i]] = true;
        perm[i] = (int)p[i];
    }
    return RT_OK;
}

static int64_t clamp64(int64_t v, int64_t lo, int64_t hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

/* One axis of Slice per the ONNX rules: negative starts/ends count from the end, then
 * clamp to [0, dim] going forward or [-1, dim - 1] going backward. */
static void slice_axis(int64_t dim, int64_t s, int64_t e, int64_t step, int64_t *start,
                       int64_t *count)
{
    if (s < 0)
        s += dim;
    if (e < 0)
        e += dim;
    int64_t dist, mag = step > 0 ? step : step == INT64_MIN ? INT64_MAX : -step;
    if (step > 0) {
        s = clamp64(s, 0, dim);
        dist = clamp64(e, 0, dim) - s;
    } else {
        s = clamp64(s, 0, dim - 1);
        dist = s - clamp64(e, -1, dim - 1);
    }
    *start = dim > 0 ? s : 0;
    *count = dim > 0 && dist > 0 ? (dist - 1) / mag + 1 : 0;
}

rt_status rt_slice_resolve(const rt_node *node, const rt_tensor *const *in, int n_in,
                           int64_t *start, int64_t *step, int64_t *count, rt_error *err)
{
    rt_int_list starts, ends, axes, steps;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    /* opsets < 10 give starts, ends and axes as attributes */
    if (st == RT_OK)
        st = rt_int_list_get(node, "starts", in, n_in, 1, &starts, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, "ends", in, n_in, 2, &ends, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, "axes", in, n_in, 3, &axes, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, NULL, in, n_in, 4, &steps, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    int n = starts.n;
    if (n < 0 || ends.n != n || (axes.n >= 0 && axes.n != n) || (steps.n >= 0 && steps.n != n))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "starts, ends, axes and steps must be given with equal lengths");
    for (int k = 0; k < s->rank; k++) {
        start[k] = 0;
        step[k] = 1;
        count[k] = s->dims[k];
    }
    bool seen[RT_MAX_RANK] = {false};
    for (int i = 0; i < n; i++) {
        int a;
        st = rt_axis_resolve(axes.n >= 0 ? rt_int_list_at(&axes, i) : i, s->rank, "axis", &a, err);
        if (st != RT_OK)
            return st;
        if (seen[a])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "axis %d is repeated", a);
        seen[a] = true;
        step[a] = steps.n >= 0 ? rt_int_list_at(&steps, i) : 1;
        if (step[a] == 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "step for axis %d is 0", a);
        slice_axis(s->dims[a], rt_int_list_at(&starts, i), rt_int_list_at(&ends, i), step[a],
                   &start[a], &count[a]);
    }
    return RT_OK;
}

rt_status rt_pad_resolve(const rt_node *node, const rt_tensor *const *in, int n_in,
                         int64_t *begin, int64_t *end, rt_pad_mode *mode, rt_error *err)
{
    rt_int_list pads, axes;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    /* opsets < 11 give pads as an attribute; opset 18 adds the axes input */
    if (st == RT_OK)
        st = rt_int_list_get(node, "pads", in, n_in, 1, &pads, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, NULL, in, n_in, 3, &axes, err);
    if (st != RT_OK)
        return st;
    const char *m = rt_node_attr_string(node, "mode", "constant");
    if (strcmp(m, "constant") == 0)
        *mode = RT_PAD_CONSTANT;
    else if (strcmp(m, "reflect") == 0)
        *mode = RT_PAD_REFLECT;
    else if (strcmp(m, "edge") == 0)
        *mode = RT_PAD_EDGE;
    else
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "pad mode '%s'", m);
    int rank = in[0]->shape.rank, n = axes.n >= 0 ? axes.n : rank;
    if (pads.n < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "pads are missing");
    if (pads.n != 2 * n)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "pads has %d entries, expected %d", pads.n,
                            2 * n);
    for (int k = 0; k < rank; k++)
        begin[k] = end[k] = 0;
    for (int i = 0; i < n; i++) {
        int a = i;
        if (axes.n >= 0 &&
            (st = rt_axis_resolve(rt_int_list_at(&axes, i), rank, "axis", &a, err)) != RT_OK)
            return st;
        begin[a] = rt_int_list_at(&pads, i);
        end[a] = rt_int_list_at(&pads, n + i);
    }
    return RT_OK;
}

rt_status rt_layout_box_get(const rt_node *node, const rt_tensor *const *in, int n_in,
                            const rt_tensor *y, rt_layout_box *b, rt_error *err)
{
    const rt_shape *xs = &in[0]->shape, *ys = &y->shape;
    int64_t xst[RT_MAX_RANK], yst[RT_MAX_RANK], start[RT_MAX_RANK], step[RT_MAX_RANK];
    int perm[RT_MAX_RANK];
    rt_strides_contiguous(xs, xst);
    rt_strides_contiguous(ys, yst);
    memset(b, 0, sizeof *b);
    rt_status st = RT_OK;
    int lead = ys->rank - xs->rank; /* Expand: numpy aligns shapes at the last dim */
    switch (node->op) {
    case RT_OP_TRANSPOSE:
        st = rt_transpose_perm(node, xs->rank, perm, err);
        b->rank = xs->rank;
        for (int k = 0; st == RT_OK && k < b->rank; k++) {
            b->dims[k] = ys->dims[k];
            b->dst[k] = yst[k];
            b->src[k] = xst[perm[k]];
        }
        return st;
    case RT_OP_SLICE:
        st = rt_slice_resolve(node, in, n_in, start, step, b->dims, err);
        b->rank = xs->rank;
        for (int k = 0; st == RT_OK && k < b->rank; k++) {
            b->src_start += start[k] * xst[k];
            b->src[k] = step[k] * xst[k];
            b->dst[k] = yst[k];
        }
        return st;
    case RT_OP_EXPAND:
        b->rank = ys->rank;
        for (int k = 0; k < b->rank; k++) {
            b->dims[k] = ys->dims[k];
            b->dst[k] = yst[k];
            b->src[k] = k < lead || xs->dims[k - lead] == 1 ? 0 : xst[k - lead];
        }
        return RT_OK;
    case RT_OP_TILE:
        b->rank = 2 * xs->rank;
        for (int k = 0; k < xs->rank; k++) {
            b->dims[2 * k] = xs->dims[k] ? ys->dims[k] / xs->dims[k] : 0;
            b->dims[2 * k + 1] = xs->dims[k];
            b->dst[2 * k] = yst[k] * xs->dims[k];
            b->dst[2 * k + 1] = yst[k];
            b->src[2 * k + 1] = xst[k];
        }
        return RT_OK;
    default:
        return rt_error_set(err, RT_ERR_INTERNAL, "%s is no box copy", rt_op_name(node->op));
    }
}

void rt_pad_value(const rt_node *node, const rt_tensor *const *in, int n_in, rt_dtype dt,
                  unsigned char *value)
{
    const rt_tensor *cv = rt_in_opt(in, n_in, 2);
    memset(value, 0, sizeof(rt_str));
    if (cv)
        memcpy(value, cv->data, rt_dtype_size(dt));
    else if (dt == RT_DTYPE_BYTES)
        memcpy(value, &(rt_str){"", 0}, sizeof(rt_str));
    else
        rt_dtype_store_f64(dt, value, 0, rt_node_attr_float(node, "value", 0.0f));
}

rt_status rt_infer_transpose(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int perm[RT_MAX_RANK];
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st == RT_OK)
        st = rt_transpose_perm(node, in[0]->shape.rank, perm, err);
    if (st != RT_OK)
        return st;
    out->dtype = in[0]->dtype;
    out->shape.rank = in[0]->shape.rank;
    for (int k = 0; k < out->shape.rank; k++)
        out->shape.dims[k] = in[0]->shape.dims[perm[k]];
    return RT_OK;
}

rt_status rt_infer_slice(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int64_t start[RT_MAX_RANK], step[RT_MAX_RANK];
    rt_status st = rt_slice_resolve(node, in, n_in, start, step, out->shape.dims, err);
    if (st != RT_OK)
        return st;
    out->dtype = in[0]->dtype;
    out->shape.rank = in[0]->shape.rank;
    return RT_OK;
}

rt_status rt_infer_pad(const rt_node *node, const rt_tensor *const *in, int n_in,
                       rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int64_t begin[RT_MAX_RANK], end[RT_MAX_RANK];
    rt_pad_mode mode;
    rt_status st = rt_pad_resolve(node, in, n_in, begin, end, &mode, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *cv = rt_in_opt(in, n_in, 2);
    if (cv && (cv->dtype != in[0]->dtype || rt_tensor_numel(cv) != 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "constant_value must be one %s",
                            rt_dtype_name(in[0]->dtype));
    const rt_shape *s = &in[0]->shape;
    out->dtype = in[0]->dtype;
    out->shape.rank = s->rank;
    for (int k = 0; k < s->rank; k++) {
        int64_t d = s->dims[k] + begin[k] + end[k];
        bool from_nothing = mode != RT_PAD_CONSTANT && s->dims[k] == 0 && d > 0;
        if (d < 0 || from_nothing)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "cannot pad dim %d of size %lld by %lld, %lld", k,
                                (long long)s->dims[k], (long long)begin[k], (long long)end[k]);
        out->shape.dims[k] = d;
    }
    return RT_OK;
}

rt_status rt_infer_tile(const rt_node *node, const rt_tensor *const *in, int n_in,
                        rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_int_list reps;
    rt_status st = rt_inputs_require(in, n_in, 2, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, NULL, in, n_in, 1, &reps, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    if (reps.n != s->rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "repeats has %d entries for rank %d", reps.n,
                            s->rank);
    out->dtype = in[0]->dtype;
    out->shape = *s;
    for (int k = 0; k < s->rank; k++) {
        int64_t r = rt_int_list_at(&reps, k);
        if (r < 0 || (r && s->dims[k] > INT64_MAX / r))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "repeat %lld for dim %d", (long long)r, k);
        out->shape.dims[k] *= r;
    }
    return RT_OK;
}
