/* cuda_op_layout.c: the CUDA backend's data-movement ops. Transpose, Slice, Expand, Tile,
 * Concat and Split are strided box copies planned by rt_op_shape.h exactly as the CPU
 * plans them (rt_layout_box_get, rt_concat_slab); Gather, Embedding, Pad, Shape, Constant,
 * ConstantOfShape and Range have kernels of their own. Elements move as opaque words, so
 * every dtype works. */
#include <stdlib.h>
#include <string.h>

#include "cuda_ops.h"
#include "rt_op_shape.h"

static rt_status copy_box(cuda_be *be, const rt_node *node, void *dst, const int64_t *dst_strides,
                          const void *src, const int64_t *src_strides, int rank,
                          const int64_t *dims, size_t elem, rt_error *err)
{
    cuda_box box;
    memset(&box, 0, sizeof box);
    box.rank = rank;
    for (int d = 0; d < rank; d++) {
        box.dims[d] = dims[d];
        box.dst[d] = dst_strides[d];
        box.src[d] = src_strides[d];
    }
    CUDA_LAUNCH(be, err, cuda_k_copy_box(be->stream, dst, src, elem, &box), rt_op_name(node->op));
    return RT_OK;
}

static int64_t dims_product(const rt_shape *s, int from, int to)
{
    int64_t p = 1;
    for (int k = from; k < to; k++)
        p *= s->dims[k];
    return p;
}

CUDA_OP(cuda_op_box)
{
    (void)n_out;
    rt_layout_box b;
    rt_status st = rt_layout_box_get(node, in, n_in, out[0], &b, err);
    if (st != RT_OK || rt_tensor_numel(out[0]) == 0)
        return st;
    size_t es = rt_dtype_size(in[0]->dtype);
    return copy_box(be, node, out[0]->data, b.dst,
                    (const char *)in[0]->data + b.src_start * (int64_t)es, b.src, b.rank, b.dims,
                    es, err);
}

/* Concat and Split: copies between one tensor (whole) and its slab of the joined tensor
 * along axis from offset on; to_joined says which way. */
static rt_status copy_slab(cuda_be *be, const rt_node *node, const rt_tensor *joined,
                           const rt_tensor *part, int axis, int64_t offset, bool to_joined,
                           rt_error *err)
{
    int64_t dims[2], joined_strides[2], part_strides[2], start;
    rt_concat_slab(&joined->shape, axis, part->shape.dims[axis], offset, dims, joined_strides,
                   part_strides, &start);
    size_t es = rt_dtype_size(joined->dtype);
    char *slab = (char *)joined->data + (size_t)start * es;
    if (dims[0] * dims[1] == 0)
        return RT_OK;
    if (to_joined)
        return copy_box(be, node, slab, joined_strides, part->data, part_strides, 2, dims, es, err);
    return copy_box(be, node, part->data, part_strides, slab, joined_strides, 2, dims, es, err);
}

CUDA_OP(cuda_op_concat)
{
    (void)n_out;
    int axis;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), out[0]->shape.rank, "axis",
                                   &axis, err);
    int64_t offset = 0;
    for (int i = 0; i < n_in && st == RT_OK; i++) {
        st = copy_slab(be, node, out[0], in[i], axis, offset, true, err);
        offset += in[i]->shape.dims[axis];
    }
    return st;
}

CUDA_OP(cuda_op_split)
{
    int axis;
    rt_int_list split;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), in[0]->shape.rank, "axis",
                                   &axis, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, "split", in, n_in, 1, &split, err);
    int64_t offset = 0;
    for (int i = 0; i < n_out && st == RT_OK; i++) {
        if (out[i])
            st = copy_slab(be, node, in[0], out[i], axis, offset, false, err);
        offset += split.n < 0 ? in[0]->shape.dims[axis] / n_out : rt_int_list_at(&split, i);
    }
    return st;
}

CUDA_OP(cuda_op_gather)
{
    (void)n_in, (void)n_out;
    const rt_tensor *data = in[0], *idx = in[1];
    int axis;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), data->shape.rank, "axis",
                                   &axis, err);
    if (st != RT_OK)
        return st;
    if (idx->dtype != RT_DTYPE_I32 && idx->dtype != RT_DTYPE_I64)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: Gather indices of dtype %s",
                            rt_dtype_name(idx->dtype));
    int64_t outer = dims_product(&data->shape, 0, axis);
    int64_t inner = dims_product(&data->shape, axis + 1, data->shape.rank);
    CUDA_LAUNCH(be, err,
                cuda_k_gather(be->stream, rt_dtype_size(data->dtype), data->data, idx->data,
                              idx->dtype, out[0]->data, outer, rt_tensor_numel(idx),
                              data->shape.dims[axis], inner, be->flag),
                "Gather");
    return RT_OK;
}

CUDA_OP(cuda_op_pad)
{
    (void)n_out;
    const rt_tensor *x = in[0];
    int64_t begin[RT_MAX_RANK], end[RT_MAX_RANK];
    rt_pad_mode mode;
    rt_status st = rt_pad_resolve(node, in, n_in, begin, end, &mode, err);
    if (st != RT_OK || rt_tensor_numel(out[0]) == 0)
        return st;
    unsigned char value[sizeof(rt_str)];
    rt_pad_value(node, in, n_in, x->dtype, value);
    CUDA_LAUNCH(be, err,
                cuda_k_pad(be->stream, rt_dtype_size(x->dtype), x->data, out[0]->data,
                           x->shape.rank, x->shape.dims, out[0]->shape.dims, begin, (int)mode,
                           value),
                "Pad");
    return RT_OK;
}

CUDA_OP(cuda_op_shape)
{
    (void)n_in, (void)n_out, (void)err;
    int start, end;
    rt_shape_bounds(node, in[0]->shape.rank, &start, &end);
    /* the dims travel as kernel arguments, so the launch can be recorded */
    CUDA_LAUNCH(be, err,
                cuda_k_store_i64(be->stream, out[0]->data, end - start, in[0]->shape.dims + start),
                "Shape");
    return RT_OK;
}

CUDA_OP(cuda_op_embedding)
{
    (void)node, (void)n_out;
    const rt_tensor *t = in[0], *idx = in[1], *scales = n_in > 2 ? in[2] : NULL;
    int64_t rows = t->shape.dims[0], cols = rows ? rt_tensor_numel(t) / rows : 0;
    CUDA_LAUNCH(be, err,
                cuda_k_embedding(be->stream, t->dtype, t->data, scales ? scales->data : NULL,
                                 idx->data, idx->dtype, out[0]->data, rt_tensor_numel(idx), rows,
                                 cols, be->flag),
                "Embedding");
    return RT_OK;
}

/* The device copy of a Constant node's value, uploaded on its first run and kept with
 * the backend (NULL and nothing done while a graph is being recorded). */
static rt_status constant_data(cuda_be *be, const rt_node *node, const void *host, size_t bytes,
                               void **data, rt_error *err)
{
    for (int i = 0; i < be->n_consts; i++)
        if (be->consts[i].node == node) {
            *data = be->consts[i].data;
            return RT_OK;
        }
    *data = NULL;
    if (cuda_capture_refuses(be))
        return RT_OK;
    if (be->n_consts == be->cap_consts) {
        int cap = be->cap_consts ? 2 * be->cap_consts : 16;
        cuda_const *c = realloc(be->consts, sizeof *c * (size_t)cap);
        if (!c)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        be->consts = c;
        be->cap_consts = cap;
    }
    void *d = cuda_mem_alloc(be, bytes, err);
    if (!d)
        return err ? err->status : RT_ERR_NOMEM;
    be->consts[be->n_consts++] = (cuda_const){node, d};
    *data = d;
    return cuda_upload(be, d, host, bytes, err);
}

CUDA_OP(cuda_op_constant)
{
    (void)in, (void)n_in, (void)n_out;
    const rt_attr *a = rt_constant_attr(node);
    if (!a)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "no value attribute");
    const void *host;
    switch (a->type) {
    case RT_ATTR_TENSOR: host = a->t->data; break;
    case RT_ATTR_FLOAT: host = &a->f; break;
    case RT_ATTR_FLOATS: host = a->floats; break;
    case RT_ATTR_INT: host = &a->i; break;
    case RT_ATTR_INTS: host = a->ints; break;
    default:
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: string constants are not supported");
    }
    size_t bytes = rt_tensor_nbytes(out[0]);
    void *data;
    rt_status st = constant_data(be, node, host, bytes, &data, err);
    if (st != RT_OK || !data || bytes == 0)
        return st;
    be->kernels++;
    CUDA_TRY(be, err, cudaMemcpyAsync(out[0]->data, data, bytes, cudaMemcpyDeviceToDevice,
                                      be->stream),
             "Constant");
    return RT_OK;
}

CUDA_OP(cuda_op_constant_of_shape)
{
    (void)in, (void)n_in, (void)n_out;
    const rt_attr *v = rt_node_attr(node, "value");
    static const float zero = 0.0f;
    CUDA_LAUNCH(be, err,
                cuda_k_fill(be->stream, out[0]->data, rt_tensor_numel(out[0]),
                            rt_dtype_size(out[0]->dtype), v ? v->t->data : &zero),
                "ConstantOfShape");
    return RT_OK;
}

CUDA_OP(cuda_op_range)
{
    (void)node, (void)n_in, (void)n_out;
    rt_dtype dt = out[0]->dtype;
    double start = 0, delta = 0;
    int64_t istart = 0, idelta = 0;
    if (rt_dtype_is_float(dt)) {
        start = rt_dtype_load_f64(dt, in[0]->data, 0);
        delta = rt_dtype_load_f64(dt, in[2]->data, 0);
    } else {
        istart = rt_dtype_load_i64(dt, in[0]->data, 0);
        idelta = rt_dtype_load_i64(dt, in[2]->data, 0);
    }
    CUDA_LAUNCH(be, err,
                cuda_k_range(be->stream, dt, out[0]->data, rt_tensor_numel(out[0]), start, delta,
                             istart, idelta),
                "Range");
    return RT_OK;
}
