/* rt_cpu_parallel.c: CPU kernels of the tensor-parallel ops the sharding pass inserts
 * (rt_fused.h, parallel/tp_shard.h): infd.AllReduce and infd.AllGather through the
 * session's collectives (rt_kernel_ctx.coll), and infd.VocabGather, the lookup of one
 * rank's rows of an embedding table split by vocabulary. */
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"
#include "rt_dtype.h"

static rt_status need_group(const rt_node *node, bool have, rt_error *err)
{
    return have ? RT_OK
                : rt_error_set(err, RT_ERR_UNSUPPORTED,
                               "node '%s' (%s) runs only in a tensor-parallel session",
                               node->name, rt_op_name(node->op));
}

/* The input copied into the output (unless they share a buffer), then summed there in
 * place over the ranks. */
RT_CPU_KERNEL(rt_cpu_all_reduce)
{
    (void)n_in, (void)n_out;
    rt_status st = need_group(node, ctx->coll.all_reduce != NULL, err);
    if (st != RT_OK)
        return st;
    size_t n = (size_t)rt_tensor_numel(out[0]);
    if (out[0]->data != in[0]->data && n)
        memcpy(out[0]->data, in[0]->data, n * sizeof(float));
    return ctx->coll.all_reduce(ctx->coll.arg, out[0]->data, n, err);
}

/* X (rows, c) of every rank gathered rank after rank into scratch (ranks, rows, c), then
 * interleaved into Y (rows, width): the ranks' column blocks side by side, the columns
 * past width (the padding of the last rank's block) dropped. */
RT_CPU_KERNEL(rt_cpu_all_gather)
{
    (void)n_in, (void)n_out;
    rt_status st = need_group(node, ctx->coll.all_gather != NULL, err);
    if (st != RT_OK)
        return st;
    const rt_shape *s = &in[0]->shape;
    int64_t ranks = rt_node_attr_int(node, "ranks", 1), c = s->dims[s->rank - 1];
    size_t n = (size_t)rt_tensor_numel(in[0]);
    float *all;
    if ((st = rt_nn_scratch(ctx, n * (size_t)ranks * sizeof(float), (void **)&all, err)) != RT_OK)
        return st;
    if ((st = ctx->coll.all_gather(ctx->coll.arg, in[0]->data, all, n, err)) != RT_OK || !n)
        return st;
    int64_t rows = (int64_t)n / c, width = out[0]->shape.dims[s->rank - 1];
    float *y = out[0]->data;
#pragma omp parallel for if(n * (size_t)ranks > 65536) num_threads(ctx->threads)
    for (int64_t r = 0; r < rows; r++)
        for (int64_t k = 0; k < ranks; k++) {
            int64_t cols = width - k * c < c ? width - k * c : c;
            memcpy(y + r * width + k * c, all + ((size_t)k * n + (size_t)(r * c)),
                   sizeof(float) * (size_t)cols);
        }
    return RT_OK;
}

/* Rows [vocab_start, vocab_start + rows) of a (vocab_size, H) table: an id in this range
 * gets its row, any other id zeros (another rank holds its row). Ids are checked against
 * the whole vocabulary, with Gather's negative indices, so every rank fails alike. */
RT_CPU_KERNEL(rt_cpu_vocab_gather)
{
    (void)n_in, (void)n_out;
    const rt_tensor *table = in[0], *ids = in[1];
    int64_t vocab = rt_node_attr_int(node, "vocab_size", 0);
    int64_t start = rt_node_attr_int(node, "vocab_start", 0);
    int64_t rows = table->shape.dims[0], h = table->shape.dims[1];
    int64_t n_ids = rt_tensor_numel(ids);
    for (int64_t k = 0; k < n_ids; k++) {
        int64_t v = rt_dtype_load_i64(ids->dtype, ids->data, (size_t)k);
        if (v < -vocab || v >= vocab)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "index %lld is out of range for dim %lld",
                                (long long)v, (long long)vocab);
    }
    const float *t = table->data;
    float *y = out[0]->data;
#pragma omp parallel for if(n_ids * h > 65536) num_threads(ctx->threads)
    for (int64_t k = 0; k < n_ids; k++) {
        int64_t v = rt_dtype_load_i64(ids->dtype, ids->data, (size_t)k);
        int64_t local = (v < 0 ? v + vocab : v) - start;
        if (local >= 0 && local < rows)
            memcpy(y + k * h, t + local * h, sizeof(float) * (size_t)h);
        else
            memset(y + k * h, 0, sizeof(float) * (size_t)h);
    }
    return RT_OK;
}
