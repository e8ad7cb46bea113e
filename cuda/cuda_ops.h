/* cuda_ops.h: the CUDA backend's op implementations, one function per op family,
 * dispatched from the switch in cuda_backend.c, and the helpers they share.
 *
 * Contract (as rt_cpu.h's): the executor has inferred the outputs, whose data are device
 * buffers of exactly their size, not zeroed, aliasing nothing else; inputs listed by the
 * backend's host_inputs (cuda_backend.c) arrive as host tensors, all others as device
 * tensors. An op computes its parameters on the host, launches its kernels on be->stream
 * (CUDA_LAUNCH) and returns without waiting; bad input becomes an rt_error. */
#ifndef CUDA_OPS_H
#define CUDA_OPS_H

#include "cuda_be.h"
#include "cuda_gemm.h"

#define CUDA_OP(fn)                                                                         \
    rt_status fn(cuda_be *be, const rt_node *node, const rt_tensor *const *in, int n_in,    \
                 rt_tensor *const *out, int n_out, rt_error *err)

/* cuda_op_elementwise.c */
CUDA_OP(cuda_op_binary);   /* Add Sub Mul Div Pow Equal Less Greater */
CUDA_OP(cuda_op_variadic); /* Min Max */
CUDA_OP(cuda_op_where);
CUDA_OP(cuda_op_unary);    /* Sqrt ... Clip, Not */
CUDA_OP(cuda_op_cast);
CUDA_OP(cuda_op_copy);     /* Identity, Dropout (inference), Reshape Flatten Squeeze Unsqueeze */
CUDA_OP(cuda_op_gelu);
CUDA_OP(cuda_op_fused_ew);

/* cuda_op_layout.c */
CUDA_OP(cuda_op_box);      /* Transpose Slice Expand Tile */
CUDA_OP(cuda_op_concat);
CUDA_OP(cuda_op_split);
CUDA_OP(cuda_op_gather);
CUDA_OP(cuda_op_embedding); /* infd.Embedding */
CUDA_OP(cuda_op_pad);
CUDA_OP(cuda_op_shape);
CUDA_OP(cuda_op_constant);
CUDA_OP(cuda_op_constant_of_shape);
CUDA_OP(cuda_op_range);

/* cuda_op_nn.c */
CUDA_OP(cuda_op_matmul);
CUDA_OP(cuda_op_gemm);
CUDA_OP(cuda_op_linear);
CUDA_OP(cuda_op_conv);     /* Conv, infd.FusedConv */
CUDA_OP(cuda_op_pool);     /* MaxPool AveragePool GlobalAveragePool */
CUDA_OP(cuda_op_batchnorm);
CUDA_OP(cuda_op_layernorm);
CUDA_OP(cuda_op_skip_layernorm);
CUDA_OP(cuda_op_softmax);  /* Softmax LogSoftmax */
CUDA_OP(cuda_op_reduce);   /* ReduceMean ReduceSum ReduceMax */
CUDA_OP(cuda_op_argmax);

/* cuda_op_attention.c */
CUDA_OP(cuda_op_attention);

/* cuda_op_qlinear.c */
CUDA_OP(cuda_op_qlinear);  /* infd.QLinear, weight-only and dynamic (never run on a GPU yet) */

/* ---- shared helpers ---- */

/* The node's activation as kernel parameters (cuda_op_elementwise.c). */
rt_status cuda_act_get(const rt_node *node, cuda_act *act, rt_error *err);

/* The dtype GEMMs on operands of dtype dt compute in: the backend's precision for F32
 * (F32, with TF32 tensor cores for tf32, F16 or BF16), dt itself for the others. */
rt_dtype cuda_compute_dtype(const cuda_be *be, rt_dtype dt);

/* The copy of the weight whose resident data is `data` in dtype dt made at load, or NULL
 * (cuda_backend.c). */
const void *cuda_weight_copy(const cuda_be *be, const void *data, rt_dtype dt);

/* GEMM operands (cuda_op_nn.c): the scratch bytes operand t needs to be read in dtype dt
 * (0 when it has that dtype or a weight copy does), and the operand itself, converted at
 * *cursor (advanced) when needed. */
size_t cuda_operand_bytes(const cuda_be *be, const rt_tensor *t, rt_dtype dt);
const void *cuda_operand(cuda_be *be, const rt_tensor *t, rt_dtype dt, char **cursor,
                         rt_error *err);

/* Runs g (F32 D, contiguous rows) with bias (F32, n; may be NULL) and act: in cuBLASLt's
 * epilogue where it has one, else the bias there and a kernel after (cuda_op_nn.c). */
rt_status cuda_gemm_bias_act(cuda_be *be, cuda_gemm *g, const float *bias, cuda_act act,
                             rt_error *err);

/* Rounds scratch pieces to keep the next one aligned. */
static inline size_t cuda_piece(size_t bytes)
{
    return (bytes + 255) & ~(size_t)255;
}

#endif
