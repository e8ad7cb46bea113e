/* rt_op_shape.c: shape inference for the ops that compute shapes or reinterpret them
 * (Reshape, Flatten, Squeeze, Unsqueeze, Shape, Constant, ConstantOfShape, Expand, Range)
 * and that join or pick along one axis (Concat, Split, Gather), plus the parameter
 * helpers of rt_op_shape.h that do not belong to one op. */
#include "rt_op_shape.h"

#include <math.h>
#include <string.h>

#include "rt_broadcast.h"
#include "rt_ops.h"

rt_status rt_axis_resolve(int64_t axis, int rank, const char *what, int *out, rt_error *err)
{
    *out = 0;
    if (axis < -rank || axis >= rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s %lld is out of range for rank %d", what,
                            (long long)axis, rank);
    *out = (int)(axis < 0 ? axis + rank : axis);
    return RT_OK;
}

void rt_concat_slab(const rt_shape *joined, int axis, int64_t part_dim, int64_t offset,
                    int64_t dims[2], int64_t joined_strides[2], int64_t part_strides[2],
                    int64_t *start)
{
    int64_t outer = 1, inner = 1;
    for (int k = 0; k < axis; k++)
        outer *= joined->dims[k];
    for (int k = axis + 1; k < joined->rank; k++)
        inner *= joined->dims[k];
    dims[0] = outer;
    dims[1] = part_dim * inner;
    joined_strides[0] = joined->dims[axis] * inner;
    joined_strides[1] = 1;
    part_strides[0] = dims[1];
    part_strides[1] = 1;
    *start = offset * inner;
}

rt_status rt_inputs_require(const rt_tensor *const *in, int n_in, int count, rt_error *err)
{
    for (int i = 0; i < count; i++)
        if (!rt_in_opt(in, n_in, i))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "input %d is missing", i);
    return RT_OK;
}

rt_status rt_int_list_get(const rt_node *node, const char *attr, const rt_tensor *const *in,
                          int n_in, int input, rt_int_list *list, rt_error *err)
{
    *list = (rt_int_list){.n = -1};
    const rt_attr *a = attr ? rt_node_attr(node, attr) : NULL;
    if (a) {
        if (a->type != RT_ATTR_INTS)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "attribute '%s' must be ints", attr);
        list->n = a->n;
        list->ints = a->ints;
        return RT_OK;
    }
    const rt_tensor *t = rt_in_opt(in, n_in, input);
    if (!t)
        return RT_OK;
    if (!rt_dtype_is_integer(t->dtype) || t->shape.rank > 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "input %d must be an integer tensor of rank <= 1, got %s rank %d",
                            input, rt_dtype_name(t->dtype), t->shape.rank);
    list->n = (int)rt_tensor_numel(t);
    list->t = t;
    return RT_OK;
}

int64_t rt_int_list_at(const rt_int_list *list, int i)
{
    return list->ints ? list->ints[i] : rt_dtype_load_i64(list->t->dtype, list->t->data, (size_t)i);
}

/* Reads a list that must be present into a shape-sized array. */
static rt_status dims_list_get(const rt_node *node, const char *attr, const rt_tensor *const *in,
                               int n_in, int input, const char *what, int64_t *vals, int *n,
                               rt_error *err)
{
    rt_int_list l;
    rt_status st = rt_int_list_get(node, attr, in, n_in, input, &l, err);
    if (st != RT_OK)
        return st;
    if (l.n < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s is missing", what);
    if (l.n > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s has %d entries, more than rank %d",
                            what, l.n, RT_MAX_RANK);
    for (int i = 0; i < l.n; i++)
        vals[i] = rt_int_list_at(&l, i);
    *n = l.n;
    return RT_OK;
}

void rt_shape_bounds(const rt_node *node, int rank, int *start, int *end)
{
    int64_t s = rt_node_attr_int(node, "start", 0);
    int64_t e = rt_node_attr_int(node, "end", rank);
    if (s < 0)
        s += rank;
    if (e < 0)
        e += rank;
    s = s < 0 ? 0 : s > rank ? rank : s;
    e = e < s ? s : e > rank ? rank : e;
    *start = (int)s;
    *end = (int)e;
}

const rt_attr *rt_constant_attr(const rt_node *node)
{
    static const char *const names[] = {"value", "value_float", "value_floats", "value_int",
                                        "value_ints", "value_string", "value_strings"};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        const rt_attr *a = rt_node_attr(node, names[i]);
        if (a)
            return a;
    }
    return NULL;
}

/* Output 0 gets dtype and shape. */
static rt_status set_out(rt_tensor *out, rt_dtype dtype, const rt_shape *shape)
{
    out->dtype = dtype;
    out->shape = *shape;
    return RT_OK;
}

rt_status rt_infer_reshape(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int64_t spec[RT_MAX_RANK];
    int n;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st == RT_OK) /* opsets < 5 give the shape as an attribute */
        st = dims_list_get(node, "shape", in, n_in, 1, "shape", spec, &n, err);
    if (st != RT_OK)
        return st;
    bool allowzero = rt_node_attr_int(node, "allowzero", 0) != 0;
    const rt_shape *s = &in[0]->shape;
    rt_shape o = rt_shape_make(n, spec);
    int unknown = -1;
    int64_t known = 1;
    for (int i = 0; i < n; i++) {
        if (spec[i] == 0 && !allowzero) {
            if (i >= s->rank)
                return rt_error_set(err, RT_ERR_INVALID_ARG,
                                    "shape entry %d is 0 but the input has rank %d", i, s->rank);
            o.dims[i] = s->dims[i];
        } else if (spec[i] == -1) {
            if (unknown >= 0)
                return rt_error_set(err, RT_ERR_INVALID_ARG, "shape has more than one -1");
            unknown = i;
            continue;
        } else if (spec[i] < 0) {
            return rt_error_set(err, RT_ERR_INVALID_ARG, "shape entry %d is %lld", i,
                                (long long)spec[i]);
        }
        if (o.dims[i] && known > INT64_MAX / o.dims[i])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "shape overflows");
        known *= o.dims[i];
    }
    int64_t numel = rt_shape_numel(s);
    if (unknown >= 0)
        o.dims[unknown] = known && numel % known == 0 ? numel / known : -1;
    if ((unknown >= 0 && o.dims[unknown] < 0) || rt_shape_numel(&o) != numel) {
        char a[96], b[96];
        rt_shape req = rt_shape_make(n, spec);
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot reshape %s (%lld elements) into %s",
                            rt_shape_str(s, a, sizeof a), (long long)numel,
                            rt_shape_str(&req, b, sizeof b));
    }
    return set_out(out, in[0]->dtype, &o);
}

rt_status rt_infer_flatten(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    /* axis is in [-rank, rank]; rank puts everything into the first dim */
    int64_t axis = rt_node_attr_int(node, "axis", 1);
    if (axis < -s->rank || axis > s->rank)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "axis %lld is out of range for rank %d",
                            (long long)axis, s->rank);
    if (axis < 0)
        axis += s->rank;
    rt_shape o = {.rank = 2, .dims = {1, 1}};
    for (int i = 0; i < s->rank; i++)
        o.dims[i >= axis] *= s->dims[i];
    return set_out(out, in[0]->dtype, &o);
}

/* Squeeze and Unsqueeze: reads the axes (an attribute before opset 13, input 1 after),
 * and marks them among the output's dims (Unsqueeze) or the input's (Squeeze), rejecting
 * repeats. *n is -1 when no axes are given. */
static rt_status axes_mark(const rt_node *node, const rt_tensor *const *in, int n_in,
                           bool unsqueeze, int *rank, bool *marked, int *n, rt_error *err)
{
    rt_int_list axes;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, "axes", in, n_in, 1, &axes, err);
    if (st != RT_OK)
        return st;
    *n = axes.n;
    *rank = in[0]->shape.rank + (unsqueeze && axes.n > 0 ? axes.n : 0);
    if (*rank > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "output rank %d exceeds %d", *rank,
                            RT_MAX_RANK);
    memset(marked, 0, RT_MAX_RANK * sizeof *marked);
    for (int i = 0; i < axes.n; i++) {
        int a;
        st = rt_axis_resolve(rt_int_list_at(&axes, i), *rank, "axis", &a, err);
        if (st != RT_OK)
            return st;
        if (marked[a])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "axis %d is repeated", a);
        marked[a] = true;
    }
    return RT_OK;
}

rt_status rt_infer_squeeze(const rt_node *node, const rt_tensor *const *in, int n_in,
                           rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    bool drop[RT_MAX_RANK];
    int rank, n;
    rt_status st = axes_mark(node, in, n_in, false, &rank, drop, &n, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    rt_shape o = {.rank = 0};
    for (int i = 0; i < rank; i++) {
        if (n <= 0) /* no axes: every dim of size 1 goes */
            drop[i] = s->dims[i] == 1;
        else if (drop[i] && s->dims[i] != 1)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot squeeze axis %d of size %lld",
                                i, (long long)s->dims[i]);
        if (!drop[i])
            o.dims[o.rank++] = s->dims[i];
    }
    return set_out(out, in[0]->dtype, &o);
}

rt_status rt_infer_unsqueeze(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    bool added[RT_MAX_RANK];
    int rank, n;
    rt_status st = axes_mark(node, in, n_in, true, &rank, added, &n, err);
    if (st != RT_OK)
        return st;
    if (n < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "axes are missing");
    rt_shape o = {.rank = rank};
    for (int i = 0, k = 0; i < rank; i++)
        o.dims[i] = added[i] ? 1 : in[0]->shape.dims[k++];
    return set_out(out, in[0]->dtype, &o);
}

rt_status rt_infer_shape(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st != RT_OK)
        return st;
    int start, end;
    rt_shape_bounds(node, in[0]->shape.rank, &start, &end);
    rt_shape o = {.rank = 1, .dims = {end - start}};
    return set_out(out, RT_DTYPE_I64, &o);
}

rt_status rt_infer_constant(const rt_node *node, const rt_tensor *const *in, int n_in,
                            rt_tensor *out, int n_out, rt_error *err)
{
    (void)in, (void)n_in, (void)n_out;
    const rt_attr *a = rt_constant_attr(node);
    rt_shape scalar = {.rank = 0}, list = {.rank = 1, .dims = {a ? a->n : 0}};
    if (!a)
        return rt_error_set(err, rt_node_attr(node, "sparse_value") ? RT_ERR_UNSUPPORTED
                                                                      : RT_ERR_INVALID_ARG,
                            "no supported value attribute");
    switch (a->type) {
    case RT_ATTR_TENSOR: return set_out(out, a->t->dtype, &a->t->shape);
    case RT_ATTR_FLOAT: return set_out(out, RT_DTYPE_F32, &scalar);
    case RT_ATTR_FLOATS: return set_out(out, RT_DTYPE_F32, &list);
    case RT_ATTR_INT: return set_out(out, RT_DTYPE_I64, &scalar);
    case RT_ATTR_INTS: return set_out(out, RT_DTYPE_I64, &list);
    case RT_ATTR_STRING: return set_out(out, RT_DTYPE_BYTES, &scalar);
    case RT_ATTR_STRINGS: return set_out(out, RT_DTYPE_BYTES, &list);
    }
    return rt_error_set(err, RT_ERR_INVALID_ARG, "bad value attribute type");
}

/* ConstantOfShape and Expand: the shape given as input number `input`. */
static rt_status shape_input_get(const rt_node *node, const rt_tensor *const *in, int n_in,
                                 int input, rt_shape *shape, rt_error *err)
{
    int64_t dims[RT_MAX_RANK];
    int n;
    rt_status st = rt_inputs_require(in, n_in, input + 1, err);
    if (st == RT_OK)
        st = dims_list_get(node, NULL, in, n_in, input, "shape", dims, &n, err);
    if (st != RT_OK)
        return st;
    for (int i = 0; i < n; i++)
        if (dims[i] < 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "shape entry %d is %lld", i,
                                (long long)dims[i]);
    *shape = rt_shape_make(n, dims);
    return RT_OK;
}

rt_status rt_infer_constant_of_shape(const rt_node *node, const rt_tensor *const *in, int n_in,
                                     rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_shape o;
    rt_status st = shape_input_get(node, in, n_in, 0, &o, err);
    if (st != RT_OK)
        return st;
    const rt_attr *v = rt_node_attr(node, "value");
    if (v && (v->type != RT_ATTR_TENSOR || rt_tensor_numel(v->t) != 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "value must be a one-element tensor");
    return set_out(out, v ? v->t->dtype : RT_DTYPE_F32, &o);
}

rt_status rt_infer_expand(const rt_node *node, const rt_tensor *const *in, int n_in,
                          rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_shape target;
    rt_status st = shape_input_get(node, in, n_in, 1, &target, err);
    if (st != RT_OK)
        return st;
    out->dtype = in[0]->dtype;
    return rt_broadcast_shapes(&in[0]->shape, &target, &out->shape, err);
}

/* Element count of Range: max(ceil((limit - start) / delta), 0), exact for integers. */
static rt_status range_count(const rt_tensor *const *in, int64_t *count, rt_error *err)
{
    rt_dtype dt = in[0]->dtype;
    if (rt_dtype_is_float(dt)) {
        double s = rt_dtype_load_f64(dt, in[0]->data, 0), l = rt_dtype_load_f64(dt, in[1]->data, 0),
               d = rt_dtype_load_f64(dt, in[2]->data, 0);
        double c = ceil((l - s) / d);
        if (d == 0 || !(c < 9.2e18))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot count range(%g, %g, %g)", s, l, d);
        *count = c > 0 ? (int64_t)c : 0;
        return RT_OK;
    }
    int64_t s = rt_dtype_load_i64(dt, in[0]->data, 0), l = rt_dtype_load_i64(dt, in[1]->data, 0),
            d = rt_dtype_load_i64(dt, in[2]->data, 0);
    if (d == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "range delta is 0");
    /* operands of the small integer types cannot overflow in 64 bits; int64 may */
    int64_t span;
    if (__builtin_sub_overflow(l, s, &span))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "range(%lld, %lld) overflows", (long long)s,
                            (long long)l);
    if ((span > 0) != (d > 0) || span == 0)
        *count = 0;
    else if (d > 0)
        *count = (span - 1) / d + 1;
    else
        *count = (span + 1) / d + 1;
    return RT_OK;
}

rt_status rt_infer_range(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    (void)node, (void)n_out;
    rt_status st = rt_inputs_require(in, n_in, 3, err);
    if (st != RT_OK)
        return st;
    rt_dtype dt = in[0]->dtype;
    for (int i = 0; i < 3; i++)
        if (in[i]->dtype != dt || rt_tensor_numel(in[i]) != 1 ||
            !(rt_dtype_is_float(dt) || rt_dtype_is_integer(dt)))
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "start, limit and delta must be numeric scalars of one type");
    rt_shape o = {.rank = 1};
    st = range_count(in, &o.dims[0], err);
    return st != RT_OK ? st : set_out(out, dt, &o);
}

rt_status rt_infer_concat(const rt_node *node, const rt_tensor *const *in, int n_in,
                          rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int axis;
    rt_status st = rt_inputs_require(in, n_in, n_in > 0 ? n_in : 1, err);
    if (st != RT_OK)
        return st;
    const rt_attr *a = rt_node_attr(node, "axis");
    if (!a || a->type != RT_ATTR_INT)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "attribute 'axis' is missing");
    rt_shape o = in[0]->shape;
    st = rt_axis_resolve(a->i, o.rank, "axis", &axis, err);
    if (st != RT_OK)
        return st;
    for (int i = 1; i < n_in; i++) {
        const rt_shape *s = &in[i]->shape;
        bool fits = in[i]->dtype == in[0]->dtype && s->rank == o.rank;
        for (int k = 0; fits && k < o.rank; k++)
            fits = k == axis || s->dims[k] == o.dims[k];
        if (!fits) {
            char b0[96], b1[96];
            return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot concat %s %s and %s %s on axis %d",
                                rt_dtype_name(in[0]->dtype),
                                rt_shape_str(&in[0]->shape, b0, sizeof b0),
                                rt_dtype_name(in[i]->dtype), rt_shape_str(s, b1, sizeof b1), axis);
        }
        o.dims[axis] += s->dims[axis];
    }
    return set_out(out, in[0]->dtype, &o);
}

rt_status rt_infer_split(const rt_node *node, const rt_tensor *const *in, int n_in,
                         rt_tensor *out, int n_out, rt_error *err)
{
    int axis;
    rt_int_list split;
    rt_status st = rt_inputs_require(in, n_in, 1, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), s->rank, "axis", &axis, err);
    if (st == RT_OK) /* opsets < 13 give split as an attribute */
        st = rt_int_list_get(node, "split", in, n_in, 1, &split, err);
    if (st != RT_OK)
        return st;
    int64_t dim = s->dims[axis], total = 0;
    if (split.n < 0 && (n_out < 1 || dim % n_out))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot split %lld into %d equal parts",
                            (long long)dim, n_out);
    if (split.n >= 0 && split.n != n_out)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "split has %d entries for %d outputs", split.n,
                            n_out);
    for (int i = 0; i < n_out; i++) {
        int64_t part = split.n < 0 ? dim / n_out : rt_int_list_at(&split, i);
        if (part < 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "split entry %d is %lld", i,
                                (long long)part);
        total += part;
        set_out(&out[i], in[0]->dtype, s);
        out[i].shape.dims[axis] = part;
    }
    if (total != dim)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "split sums to %lld, dim %d has %lld",
                            (long long)total, axis, (long long)dim);
    return RT_OK;
}

rt_status rt_infer_gather(const rt_node *node, const rt_tensor *const *in, int n_in,
                          rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    int axis;
    rt_status st = rt_inputs_require(in, n_in, 2, err);
    if (st == RT_OK)
        st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), in[0]->shape.rank, "axis", &axis,
                             err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape, *ix = &in[1]->shape;
    if (in[1]->dtype != RT_DTYPE_I32 && in[1]->dtype != RT_DTYPE_I64)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "indices must be I32 or I64, got %s",
                            rt_dtype_name(in[1]->dtype));
    if (s->rank - 1 + ix->rank > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "output rank %d exceeds %d",
                            s->rank - 1 + ix->rank, RT_MAX_RANK);
    rt_shape o = {.rank = 0};
    for (int i = 0; i < s->rank; i++) {
        if (i != axis) {
            o.dims[o.rank++] = s->dims[i];
            continue;
        }
        for (int k = 0; k < ix->rank; k++)
            o.dims[o.rank++] = ix->dims[k];
    }
    return set_out(out, in[0]->dtype, &o);
}
