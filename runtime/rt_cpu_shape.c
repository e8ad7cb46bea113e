/* rt_cpu_shape.c: CPU kernels of the ops that copy, create or pick whole blocks of
 * elements: Reshape (also Flatten, Squeeze, Unsqueeze), Shape, Constant, ConstantOfShape,
 * Range, Gather, Concat and Split. Any element type; BYTES elements are copied as rt_str
 * structs that keep pointing at the source's string bytes. */
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_strided.h"
#include "rt_op_shape.h"

/* Copies all of src's elements to dst (same element count). */
static void copy_all(rt_kernel_ctx *ctx, void *dst, const void *src, int64_t n, size_t esize)
{
    int64_t one = 1;
    rt_strided_copy(dst, &one, src, &one, 1, &n, esize, ctx->threads);
}

static int64_t dims_product(const rt_shape *s, int from, int to)
{
    int64_t p = 1;
    for (int k = from; k < to; k++)
        p *= s->dims[k];
    return p;
}

RT_CPU_KERNEL(rt_cpu_reshape)
{
    (void)node, (void)n_in, (void)n_out, (void)err;
    copy_all(ctx, out[0]->data, in[0]->data, rt_tensor_numel(out[0]), rt_dtype_size(in[0]->dtype));
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_shape)
{
    (void)ctx, (void)n_in, (void)n_out, (void)err;
    int start, end;
    rt_shape_bounds(node, in[0]->shape.rank, &start, &end);
    int64_t *o = out[0]->data;
    for (int k = start; k < end; k++)
        o[k - start] = in[0]->shape.dims[k];
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_constant)
{
    (void)ctx, (void)in, (void)n_in, (void)n_out;
    const rt_attr *a = rt_constant_attr(node);
    rt_tensor *o = out[0];
    if (!a)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "no value attribute");
    rt_str *strs = o->data;
    switch (a->type) {
    case RT_ATTR_TENSOR:
        memcpy(o->data, a->t->data, rt_tensor_nbytes(o));
        break;
    case RT_ATTR_FLOAT:
        *(float *)o->data = a->f;
        break;
    case RT_ATTR_FLOATS:
        memcpy(o->data, a->floats, rt_tensor_nbytes(o));
        break;
    case RT_ATTR_INT:
        *(int64_t *)o->data = a->i;
        break;
    case RT_ATTR_INTS:
        memcpy(o->data, a->ints, rt_tensor_nbytes(o));
        break;
    case RT_ATTR_STRING:
        strs[0] = (rt_str){a->s, a->s_len};
        break;
    case RT_ATTR_STRINGS:
        for (int i = 0; i < a->n; i++)
            strs[i] = (rt_str){a->strings[i], strlen(a->strings[i])};
        break;
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_constant_of_shape)
{
    (void)in, (void)n_in, (void)n_out, (void)err;
    const rt_attr *v = rt_node_attr(node, "value");
    static const float zero = 0.0f;
    rt_strided_fill(out[0]->data, v ? v->t->data : &zero, rt_tensor_numel(out[0]),
                    rt_dtype_size(out[0]->dtype), ctx->threads);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_range)
{
    (void)ctx, (void)node, (void)n_in, (void)n_out, (void)err;
    rt_dtype dt = out[0]->dtype;
    int64_t n = rt_tensor_numel(out[0]);
    if (rt_dtype_is_float(dt)) {
        double start = rt_dtype_load_f64(dt, in[0]->data, 0);
        double delta = rt_dtype_load_f64(dt, in[2]->data, 0);
        for (int64_t i = 0; i < n; i++)
            rt_dtype_store_f64(dt, out[0]->data, (size_t)i, start + (double)i * delta);
    } else {
        int64_t start = rt_dtype_load_i64(dt, in[0]->data, 0);
        int64_t delta = rt_dtype_load_i64(dt, in[2]->data, 0);
        for (int64_t i = 0; i < n; i++)
            rt_dtype_store_i64(dt, out[0]->data, (size_t)i, start + i * delta);
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_gather)
{
    (void)n_in, (void)n_out;
    const rt_tensor *data = in[0], *idx = in[1];
    int axis;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), data->shape.rank, "axis",
                                   &axis, err);
    if (st != RT_OK)
        return st;
    int64_t dim = data->shape.dims[axis], n_idx = rt_tensor_numel(idx);
    for (int64_t k = 0; k < n_idx; k++) {
        int64_t v = rt_dtype_load_i64(idx->dtype, idx->data, (size_t)k);
        if (v < -dim || v >= dim)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "index %lld is out of range for dim %lld",
                                (long long)v, (long long)dim);
    }
    int64_t outer = dims_product(&data->shape, 0, axis);
    size_t block = (size_t)dims_product(&data->shape, axis + 1, data->shape.rank) *
                   rt_dtype_size(data->dtype);
    char *o = out[0]->data;
    const char *s = data->data;
#pragma omp parallel for if((int64_t)rt_tensor_nbytes(out[0]) > RT_PARALLEL_BYTES) \
    num_threads(ctx->threads)
    for (int64_t t = 0; t < outer * n_idx; t++) {
        int64_t v = rt_dtype_load_i64(idx->dtype, idx->data, (size_t)(t % n_idx));
        int64_t row = t / n_idx * dim + (v < 0 ? v + dim : v);
        memcpy(o + (size_t)t * block, s + (size_t)row * block, block);
    }
    return RT_OK;
}

/* Concat and Split: copies between one tensor (whole) and the slab [offset, offset +
 * part) of the joined tensor along axis. to_joined says which way. */
static void copy_slab(rt_kernel_ctx *ctx, const rt_tensor *joined, const rt_tensor *part, int axis,
                      int64_t offset, bool to_joined)
{
    int64_t dims[2], joined_strides[2], part_strides[2], start;
    rt_concat_slab(&joined->shape, axis, part->shape.dims[axis], offset, dims, joined_strides,
                   part_strides, &start);
    size_t es = rt_dtype_size(joined->dtype);
    char *slab = (char *)joined->data + (size_t)start * es;
    if (to_joined)
        rt_strided_copy(slab, joined_strides, part->data, part_strides, 2, dims, es, ctx->threads);
    else
        rt_strided_copy(part->data, part_strides, slab, joined_strides, 2, dims, es, ctx->threads);
}

RT_CPU_KERNEL(rt_cpu_concat)
{
    (void)n_out;
    int axis;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), out[0]->shape.rank, "axis",
                                   &axis, err);
    if (st != RT_OK)
        return st;
    int64_t offset = 0;
    for (int i = 0; i < n_in; i++) {
        copy_slab(ctx, out[0], in[i], axis, offset, true);
        offset += in[i]->shape.dims[axis];
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_split)
{
    int axis;
    rt_int_list split;
    rt_status st = rt_axis_resolve(rt_node_attr_int(node, "axis", 0), in[0]->shape.rank, "axis",
                                   &axis, err);
    if (st == RT_OK)
        st = rt_int_list_get(node, "split", in, n_in, 1, &split, err);
    if (st != RT_OK)
        return st;
    int64_t offset = 0;
    for (int i = 0; i < n_out; i++) {
        if (out[i])
            copy_slab(ctx, in[0], out[i], axis, offset, false);
        offset += split.n < 0 ? in[0]->shape.dims[axis] / n_out : rt_int_list_at(&split, i);
    }
    return RT_OK;
}
