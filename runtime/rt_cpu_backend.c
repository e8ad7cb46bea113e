/* rt_cpu_backend.c: the CPU backend: its vtable and the one switch that maps each op to
 * its kernel (kernels live in rt_cpu_<family>.c). */
#include <cblas.h>
#include <omp.h>
#include <stdlib.h>

#include "rt_cpu.h"

static rt_status cpu_node_run(rt_backend *be, rt_kernel_ctx *ctx, const rt_node *node,
                              const rt_tensor *const *in, int n_in, rt_tensor *const *out,
                              int n_out, rt_error *err)
{
    (void)be;
    switch (node->op) {
    case RT_OP_ADD: case RT_OP_SUB: case RT_OP_MUL: case RT_OP_DIV: case RT_OP_POW:
    case RT_OP_EQUAL: case RT_OP_LESS: case RT_OP_GREATER:
        return rt_cpu_binary(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_WHERE: return rt_cpu_where(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_MIN: case RT_OP_MAX:
        return rt_cpu_variadic(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_NEG: case RT_OP_ABS:
    case RT_OP_RECIPROCAL: case RT_OP_RELU: case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID:
    case RT_OP_TANH: case RT_OP_ERF: case RT_OP_NOT: case RT_OP_CLIP:
        return rt_cpu_unary(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_CAST: return rt_cpu_cast(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_IDENTITY: case RT_OP_DROPOUT:
        return rt_cpu_copy(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_MATMUL: return rt_cpu_matmul(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_GEMM: return rt_cpu_gemm(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_CONV: return rt_cpu_conv(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_MAX_POOL: case RT_OP_AVERAGE_POOL: case RT_OP_GLOBAL_AVERAGE_POOL:
        return rt_cpu_pool(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_BATCH_NORMALIZATION: return rt_cpu_batchnorm(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_LAYER_NORMALIZATION: return rt_cpu_layernorm(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SOFTMAX: case RT_OP_LOG_SOFTMAX:
        return rt_cpu_softmax(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_REDUCE_MEAN: case RT_OP_REDUCE_SUM: case RT_OP_REDUCE_MAX:
        return rt_cpu_reduce(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_ARG_MAX: return rt_cpu_argmax(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_FLATTEN: case RT_OP_RESHAPE: case RT_OP_SQUEEZE: case RT_OP_UNSQUEEZE:
        return rt_cpu_reshape(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_TRANSPOSE: return rt_cpu_transpose(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_CONCAT: return rt_cpu_concat(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SPLIT: return rt_cpu_split(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SLICE: return rt_cpu_slice(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_GATHER: return rt_cpu_gather(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SHAPE: return rt_cpu_shape(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_CONSTANT: return rt_cpu_constant(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_CONSTANT_OF_SHAPE:
        return rt_cpu_constant_of_shape(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_EXPAND: return rt_cpu_expand(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_RANGE: return rt_cpu_range(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_PAD: return rt_cpu_pad(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_TILE: return rt_cpu_tile(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_QUANTIZE_LINEAR:
        return rt_cpu_quantize_linear(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_DEQUANTIZE_LINEAR:
        return rt_cpu_dequantize_linear(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_LINEAR: return rt_cpu_linear(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_FUSED_CONV: return rt_cpu_fused_conv(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_GELU: return rt_cpu_gelu(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SKIP_LAYER_NORM:
        return rt_cpu_skip_layernorm(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_ATTENTION: case RT_OP_QATTENTION:
        return rt_cpu_attention(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_QLINEAR: return rt_cpu_qlinear(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_SPARSE_LINEAR: return rt_cpu_sparse_linear(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_FUSED_ELEMENTWISE:
        return rt_cpu_fused_elementwise(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_EMBEDDING: return rt_cpu_embedding(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_ALL_REDUCE: return rt_cpu_all_reduce(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_ALL_GATHER: return rt_cpu_all_gather(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_VOCAB_GATHER: return rt_cpu_vocab_gather(ctx, node, in, n_in, out, n_out, err);
    case RT_OP_COUNT: break;
    }
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "cpu backend: no kernel for op %s",
                        rt_op_name(node->op));
}

static bool cpu_supports_op(rt_backend *be, const rt_node *node)
{
    (void)be;
    return (unsigned)node->op < RT_OP_COUNT;
}

static const rt_backend_vtable cpu_vtable = {
    .name = "cpu",
    .supports_op = cpu_supports_op,
    .node_run = cpu_node_run,
};

rt_backend *rt_cpu_backend_create(int threads, rt_error *err)
{
    rt_backend *be = calloc(1, sizeof *be);
    if (!be) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory creating the cpu backend");
        return NULL;
    }
    be->vt = &cpu_vtable;
    be->threads = threads > 0 ? threads : omp_get_num_procs();
    openblas_set_num_threads(be->threads);
    return be;
}
