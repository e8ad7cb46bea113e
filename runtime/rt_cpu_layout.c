/* rt_cpu_layout.c: CPU kernels of the ops that rearrange elements in space: Transpose,
 * Slice, Expand and Tile (each one strided box copy, planned by rt_layout_box_get and run
 * by rt_cpu_strided.h's engine) and Pad. Any element type. */
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_strided.h"
#include "rt_index_math.h"
#include "rt_op_shape.h"

/* Transpose, Slice, Expand and Tile: the one strided box copy rt_layout_box_get plans. */
static rt_status box_copy(rt_kernel_ctx *ctx, const rt_node *node, const rt_tensor *const *in,
                          int n_in, rt_tensor *const *out, rt_error *err)
{
    rt_layout_box b;
    rt_status st = rt_layout_box_get(node, in, n_in, out[0], &b, err);
    if (st != RT_OK || rt_tensor_numel(out[0]) == 0)
        return st;
    size_t es = rt_dtype_size(in[0]->dtype);
    rt_strided_copy(out[0]->data, b.dst, (const char *)in[0]->data + (size_t)b.src_start * es,
                    b.src, b.rank, b.dims, es, ctx->threads);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_transpose)
{
    (void)n_out;
    return box_copy(ctx, node, in, n_in, out, err);
}

RT_CPU_KERNEL(rt_cpu_slice)
{
    (void)n_out;
    return box_copy(ctx, node, in, n_in, out, err);
}

RT_CPU_KERNEL(rt_cpu_expand)
{
    (void)n_out;
    return box_copy(ctx, node, in, n_in, out, err);
}

RT_CPU_KERNEL(rt_cpu_tile)
{
    (void)n_out;
    return box_copy(ctx, node, in, n_in, out, err);
}

/* Output elements [from, to) of one row along the last dim, read from line. */
static void pad_span(char *dst, const char *line, const unsigned char *value, int64_t from,
                     int64_t to, int64_t begin, int64_t dim, rt_pad_mode mode, size_t es)
{
    for (int64_t j = from; j < to; j++) {
        int64_t i = rt_pad_source(j, begin, dim, (int)mode);
        memcpy(dst + (size_t)j * es, i < 0 ? (const void *)value : line + (size_t)i * es, es);
    }
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
    rt_pad_value(node, in, n_in, x->dtype, value);
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
            int64_t i = rt_pad_source(rest % od[k], begin[k], xd[k], (int)mode);
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
