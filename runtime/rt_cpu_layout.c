/* rt_cpu_layout.c: CPU kernels of the ops that rearrange elements in space: Transpose,
 * Slice, Expand and Tile (each one strided box copy, see rt_cpu_strided.h) and Pad. Any
 * element type. */
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_strided.h"
#include "rt_op_shape.h"

RT_CPU_KERNEL(rt_cpu_transpose)
{
    (void)n_in, (void)n_out;
    const rt_tensor *x = in[0];
    int perm[RT_MAX_RANK];
    int64_t xs[RT_MAX_RANK], os[RT_MAX_RANK], ss[RT_MAX_RANK];
    rt_status st = rt_transpose_perm(node, x->shape.rank, perm, err);
    if (st != RT_OK)
        return st;
    rt_strides_contiguous(&x->shape, xs);
    rt_strides_contiguous(&out[0]->shape, os);
    for (int k = 0; k < x->shape.rank; k++)
        ss[k] = xs[perm[k]];
    rt_strided_copy(out[0]->data, os, x->data, ss, x->shape.rank, out[0]->shape.dims,
                    rt_dtype_size(x->dtype), ctx->threads);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_slice)
{
    (void)n_out;
    const rt_tensor *x = in[0];
    int64_t start[RT_MAX_RANK], step[RT_MAX_RANK], count[RT_MAX_RANK];
    int64_t xs[RT_MAX_RANK], os[RT_MAX_RANK], ss[RT_MAX_RANK], base = 0;
    rt_status st = rt_slice_resolve(node, in, n_in, start, step, count, err);
    if (st != RT_OK || rt_tensor_numel(out[0]) == 0)
        return st;
    rt_strides_contiguous(&x->shape, xs);
    rt_strides_contiguous(&out[0]->shape, os);
    for (int k = 0; k < x->shape.rank; k++) {
        base += start[k] * xs[k];
        ss[k] = step[k] * xs[k];
    }
    size_t es = rt_dtype_size(x->dtype);
    rt_strided_copy(out[0]->data, os, (const char *)x->data + (size_t)base * es, ss,
                    x->shape.rank, count, es, ctx->threads);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_expand)
{
    (void)node, (void)n_in, (void)n_out, (void)err;
    const rt_shape *xs = &in[0]->shape, *o = &out[0]->shape;
    int64_t xst[RT_MAX_RANK], os[RT_MAX_RANK], ss[RT_MAX_RANK];
    rt_strides_contiguous(xs, xst);
    rt_strides_contiguous(o, os);
    int lead = o->rank - xs->rank; /* numpy aligns shapes at the last dim */
    for (int k = 0; k < o->rank; k++)
        ss[k] = k < lead || xs->dims[k - lead] == 1 ? 0 : xst[k - lead];
    rt_strided_copy(out[0]->data, os, in[0]->data, ss, o->rank, o->dims,
                    rt_dtype_size(in[0]->dtype), ctx->threads);
    return RT_OK;
}

/* Tile as a box of twice the rank: dim k becomes (repeat, position within the copy),
 * and the repeat dims read the source with stride 0. */
RT_CPU_KERNEL(rt_cpu_tile)
{
    (void)node, (void)n_in, (void)n_out, (void)err;
    const rt_shape *xs = &in[0]->shape, *o = &out[0]->shape;
    if (rt_tensor_numel(out[0]) == 0)
        return RT_OK;
    int64_t xst[RT_MAX_RANK], os[RT_MAX_RANK];
    int64_t dims[RT_STRIDED_MAX_RANK], ds[RT_STRIDED_MAX_RANK], ss[RT_STRIDED_MAX_RANK];
    rt_strides_contiguous(xs, xst);
    rt_strides_contiguous(o, os);
    for (int k = 0; k < xs->rank; k++) {
        dims[2 * k] = o->dims[k] / xs->dims[k];
        dims[2 * k + 1] = xs->dims[k];
        ds[2 * k] = os[k] * xs->dims[k];
        ds[2 * k + 1] = os[k];
        ss[2 * k] = 0;
        ss[2 * k + 1] = xst[k];
    }
    rt_strided_copy(out[0]->data, ds, in[0]->data, ss, 2 * xs->rank, dims,
                    rt_dtype_size(in[0]->dtype), ctx->threads);
    return RT_OK;
}

/* Source index along one dim for output index o, or -1 where the constant goes. Reflect
 * repeats with period 2 * (dim - 1) so that pads longer than the dim still work. */
static int64_t pad_source(int64_t o, int64_t begin, int64_t dim, rt_pad_mode mode)
{
    int64_t i = o - begin;
    if (i >= 0 && i < dim)
        return i;
    if (mode == RT_PAD_CONSTANT)
        return -1;
    if (mode == RT_PAD_EDGE || dim == 1)
        return i < 0 ? 0 : dim - 1;
    int64_t period = 2 * (dim - 1);
    i %= period;
    if (i < 0)
        i += period;
    return i < dim ? i : period - i;
}

/* Output elements [from, to) of one row along the last dim, read from line. */
static void pad_span(char *dst, const char *line, const unsigned char *value, int64_t from,
                     int64_t to, int64_t begin, int64_t dim, rt_pad_mode mode, size_t es)
{
    for (int64_t j = from; j < to; j++) {
        int64_t i = pad_source(j, begin, dim, mode);
        memcpy(dst + (size_t)j * es, i < 0 ? (const void *)value : line + (size_t)i * es, es);
    }
}

/* The padding element: constant_value input (opset >= 11), value attribute (older), or 0
 * (the empty string for BYTES). */
static void pad_value(const rt_node *node, const rt_tensor *const *in, int n_in, rt_dtype dt,
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

/* Pad row by row along the last dim: the middle of a row is one memcpy, the edges are
 * mapped element by element. */
RT_CPU_KERNEL(rt_cpu_pad)
{
    (void)n_out;
    const rt_tensor *x = in[0];
    int64_t begin[RT_MAX_RANK], end[RT_MAX_RANK], xst[RT_MAX_RANK];
    rt_pad_mode mode;
    rt_status st = rt_pad_resolve(node, in, n_in, begin, end, &mode, err);
    int64_t total = rt_tensor_numel(out[0]);
    if (st != RT_OK || total == 0)
        return st;
    size_t es = rt_dtype_size(x->dtype);
    unsigned char value[sizeof(rt_str)];
    pad_value(node, in, n_in, x->dtype, value);
    int r = x->shape.rank, last = r - 1;
    if (r == 0) {
        memcpy(out[0]->data, x->data, es);
        return RT_OK;
    }
    rt_strides_contiguous(&x->shape, xst);
    const int64_t *od = out[0]->shape.dims, *xd = x->shape.dims;
    int64_t n = od[last], rows = total / n, b = begin[last];
    int64_t lo = b < 0 ? 0 : b > n ? n : b;
    int64_t hi = b + xd[last] < lo ? lo : b + xd[last] > n ? n : b + xd[last];
    const char *src = x->data;
#pragma omp parallel for if(total * (int64_t)es > RT_PARALLEL_BYTES) num_threads(ctx->threads)
    for (int64_t row = 0; row < rows; row++) {
        char *dst = (char *)out[0]->data + (size_t)(row * n) * es;
        int64_t off = 0, rest = row;
        bool constant = false;
        for (int k = last - 1; k >= 0; k--) {
            int64_t i = pad_source(rest % od[k], begin[k], xd[k], mode);
            rest /= od[k];
            constant |= i < 0;
            off += i * xst[k];
        }
        if (constant) {
            rt_copy_run(dst, 1, value, 0, n, es);
            continue;
        }
        const char *line = src + (size_t)off * es;
        pad_span(dst, line, value, 0, lo, b, xd[last], mode, es);
        if (hi > lo)
            memcpy(dst + (size_t)lo * es, line + (size_t)(lo - b) * es, (size_t)(hi - lo) * es);
        pad_span(dst, line, value, hi, n, b, xd[last], mode, es);
    }
    return RT_OK;
}
