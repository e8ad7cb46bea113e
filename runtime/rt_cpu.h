/* rt_cpu.h: kernels of the CPU backend, one function per op family, dispatched from the
 * switch in rt_cpu_backend.c.
 *
 * Contract for every kernel: the executor has already run the op's infer function, so
 * out[i] has dtype, shape and a data buffer of exactly rt_tensor_nbytes(out[i]) bytes that
 * is NOT zeroed and may alias nothing else; the kernel writes every element. Inputs are
 * read-only. in[i] is NULL for an omitted optional input, out[i] NULL for an omitted
 * optional output. Kernels do not allocate (use rt_kernel_scratch) and report bad input
 * through err rather than asserting. Parallel loops use OpenMP with ctx->threads. */
#ifndef RT_CPU_H
#define RT_CPU_H

#include "rt_backend.h"

#define RT_CPU_KERNEL(fn)                                                                   \
    rt_status fn(rt_kernel_ctx *ctx, const rt_node *node, const rt_tensor *const *in, int n_in, \
                 rt_tensor *const *out, int n_out, rt_error *err)

/* rt_cpu_elementwise.c */
RT_CPU_KERNEL(rt_cpu_binary);   /* Add Sub Mul Div Pow Equal Less Greater */
RT_CPU_KERNEL(rt_cpu_where);
RT_CPU_KERNEL(rt_cpu_variadic); /* Min Max */
RT_CPU_KERNEL(rt_cpu_unary);    /* Sqrt Exp Log Neg Abs Reciprocal Relu LeakyRelu Sigmoid Tanh Erf Not Clip */
RT_CPU_KERNEL(rt_cpu_copy);     /* Identity, Dropout */

/* rt_cpu_cast.c */
RT_CPU_KERNEL(rt_cpu_cast);

/* rt_cpu_nn.c, rt_cpu_conv.c, rt_cpu_pool.c */
RT_CPU_KERNEL(rt_cpu_matmul);
RT_CPU_KERNEL(rt_cpu_gemm);
RT_CPU_KERNEL(rt_cpu_conv);
RT_CPU_KERNEL(rt_cpu_pool);     /* MaxPool AveragePool GlobalAveragePool */
RT_CPU_KERNEL(rt_cpu_batchnorm);
RT_CPU_KERNEL(rt_cpu_layernorm);
RT_CPU_KERNEL(rt_cpu_softmax);  /* Softmax LogSoftmax */

/* rt_cpu_qdq.c */
RT_CPU_KERNEL(rt_cpu_quantize_linear);
RT_CPU_KERNEL(rt_cpu_dequantize_linear);

/* rt_cpu_reduce.c */
RT_CPU_KERNEL(rt_cpu_reduce);   /* ReduceMean ReduceSum ReduceMax */
RT_CPU_KERNEL(rt_cpu_argmax);

/* rt_cpu_shape.c */
RT_CPU_KERNEL(rt_cpu_reshape);  /* Reshape Flatten Squeeze Unsqueeze: a copy of the bytes */
RT_CPU_KERNEL(rt_cpu_transpose);
RT_CPU_KERNEL(rt_cpu_concat);
RT_CPU_KERNEL(rt_cpu_split);
RT_CPU_KERNEL(rt_cpu_slice);
RT_CPU_KERNEL(rt_cpu_gather);
RT_CPU_KERNEL(rt_cpu_shape);
RT_CPU_KERNEL(rt_cpu_constant);
RT_CPU_KERNEL(rt_cpu_constant_of_shape);
RT_CPU_KERNEL(rt_cpu_expand);
RT_CPU_KERNEL(rt_cpu_range);
RT_CPU_KERNEL(rt_cpu_pad);
RT_CPU_KERNEL(rt_cpu_tile);

/* the optimizer's fused ops (rt_fused.h): rt_cpu_fused.c, rt_cpu_attention.c,
 * rt_cpu_fused_elementwise.c */
RT_CPU_KERNEL(rt_cpu_linear);
RT_CPU_KERNEL(rt_cpu_fused_conv);
RT_CPU_KERNEL(rt_cpu_gelu);
RT_CPU_KERNEL(rt_cpu_skip_layernorm);
RT_CPU_KERNEL(rt_cpu_attention); /* Attention QAttention */
RT_CPU_KERNEL(rt_cpu_qlinear);   /* rt_cpu_qgemm.c */
RT_CPU_KERNEL(rt_cpu_sparse_linear); /* rt_cpu_sparse.c */
RT_CPU_KERNEL(rt_cpu_fused_elementwise);
RT_CPU_KERNEL(rt_cpu_embedding); /* rt_cpu_embedding.c */
/* the tensor-parallel ops: rt_cpu_parallel.c */
RT_CPU_KERNEL(rt_cpu_all_reduce);
RT_CPU_KERNEL(rt_cpu_all_gather);
RT_CPU_KERNEL(rt_cpu_vocab_gather);

#endif
