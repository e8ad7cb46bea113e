/* rt_ops.h: the operator set of the graph IR and its backend-independent shape inference.
 *
 * RT_OP_LIST is the single list of operators: enum name, ONNX op_type, and the function
 * that infers output dtypes and shapes. Backends dispatch with a switch over rt_op (see
 * rt_cpu_backend.c). To add an op: add a line here, write its infer function in the
 * rt_op_<group>.c that fits, and a kernel in every backend that claims it. */
#ifndef RT_OPS_H
#define RT_OPS_H

#include "rt_status.h"
#include "rt_tensor.h"

struct rt_node;

#define RT_OP_LIST(X)                                             \
    /* elementwise binary, numpy broadcasting (rt_op_elementwise.c) */ \
    X(ADD, "Add", rt_infer_broadcast)                             \
    X(SUB, "Sub", rt_infer_broadcast)                             \
    X(MUL, "Mul", rt_infer_broadcast)                             \
    X(DIV, "Div", rt_infer_broadcast)                             \
    X(POW, "Pow", rt_infer_pow)                                   \
    X(EQUAL, "Equal", rt_infer_compare)                           \
    X(LESS, "Less", rt_infer_compare)                             \
    X(GREATER, "Greater", rt_infer_compare)                       \
    X(WHERE, "Where", rt_infer_where)                             \
    X(MIN, "Min", rt_infer_variadic)                              \
    X(MAX, "Max", rt_infer_variadic)                              \
    /* elementwise unary (rt_op_elementwise.c) */                 \
    X(SQRT, "Sqrt", rt_infer_unary)                               \
    X(EXP, "Exp", rt_infer_unary)                                 \
    X(LOG, "Log", rt_infer_unary)                                 \
    X(NEG, "Neg", rt_infer_unary)                                 \
    X(ABS, "Abs", rt_infer_unary)                                 \
    X(RECIPROCAL, "Reciprocal", rt_infer_unary)                   \
    X(RELU, "Relu", rt_infer_unary)                               \
    X(LEAKY_RELU, "LeakyRelu", rt_infer_unary)                    \
    X(SIGMOID, "Sigmoid", rt_infer_unary)                         \
    X(TANH, "Tanh", rt_infer_unary)                               \
    X(ERF, "Erf", rt_infer_unary)                                 \
    X(NOT, "Not", rt_infer_unary)                                 \
    X(CLIP, "Clip", rt_infer_unary)                               \
    X(CAST, "Cast", rt_infer_cast)                                \
    X(IDENTITY, "Identity", rt_infer_unary)                       \
    X(DROPOUT, "Dropout", rt_infer_dropout)                       \
    /* linear algebra and neural-network ops (rt_op_nn.c) */      \
    X(MATMUL, "MatMul", rt_infer_matmul)                          \
    X(GEMM, "Gemm", rt_infer_gemm)                                \
    X(CONV, "Conv", rt_infer_conv)                                \
    X(MAX_POOL, "MaxPool", rt_infer_pool)                         \
    X(AVERAGE_POOL, "AveragePool", rt_infer_pool)                 \
    X(GLOBAL_AVERAGE_POOL, "GlobalAveragePool", rt_infer_global_pool) \
    X(BATCH_NORMALIZATION, "BatchNormalization", rt_infer_batchnorm) \
    X(LAYER_NORMALIZATION, "LayerNormalization", rt_infer_layernorm) \
    X(SOFTMAX, "Softmax", rt_infer_unary)                         \
    X(LOG_SOFTMAX, "LogSoftmax", rt_infer_unary)                  \
    /* reductions (rt_op_reduce.c) */                             \
    X(REDUCE_MEAN, "ReduceMean", rt_infer_reduce)                 \
    X(REDUCE_SUM, "ReduceSum", rt_infer_reduce)                   \
    X(REDUCE_MAX, "ReduceMax", rt_infer_reduce)                   \
    X(ARG_MAX, "ArgMax", rt_infer_argmax)                         \
    /* shape and data-movement ops (rt_op_shape.c) */             \
    X(FLATTEN, "Flatten", rt_infer_flatten)                       \
    X(RESHAPE, "Reshape", rt_infer_reshape)                       \
    X(TRANSPOSE, "Transpose", rt_infer_transpose)                 \
    X(CONCAT, "Concat", rt_infer_concat)                          \
    X(SPLIT, "Split", rt_infer_split)                             \
    X(SLICE, "Slice", rt_infer_slice)                             \
    X(GATHER, "Gather", rt_infer_gather)                          \
    X(SQUEEZE, "Squeeze", rt_infer_squeeze)                       \
    X(UNSQUEEZE, "Unsqueeze", rt_infer_unsqueeze)                 \
    X(SHAPE, "Shape", rt_infer_shape)                             \
    X(CONSTANT, "Constant", rt_infer_constant)                    \
    X(CONSTANT_OF_SHAPE, "ConstantOfShape", rt_infer_constant_of_shape) \
    X(EXPAND, "Expand", rt_infer_expand)                          \
    X(RANGE, "Range", rt_infer_range)                             \
    X(PAD, "Pad", rt_infer_pad)                                   \
    X(TILE, "Tile", rt_infer_tile)                                \
    /* quantization (rt_op_qdq.c): QDQ models' per-tensor and per-axis INT8 / UINT8 */ \
    X(QUANTIZE_LINEAR, "QuantizeLinear", rt_infer_quantize_linear) \
    X(DEQUANTIZE_LINEAR, "DequantizeLinear", rt_infer_dequantize_linear) \
    /* fused ops the optimizer creates (rt_op_fused.c, rt_fused.h); their "infd." names \
     * are no ONNX op_type, and rt_op_from_name never returns them */ \
    X(LINEAR, "infd.Linear", rt_infer_linear)                     \
    X(FUSED_CONV, "infd.FusedConv", rt_infer_fused_conv)          \
    X(GELU, "infd.Gelu", rt_infer_gelu)                           \
    X(SKIP_LAYER_NORM, "infd.SkipLayerNorm", rt_infer_skip_layernorm) \
    X(ATTENTION, "infd.Attention", rt_infer_attention)            \
    X(FUSED_ELEMENTWISE, "infd.FusedElementwise", rt_infer_fused_elementwise) \
    X(EMBEDDING, "infd.Embedding", rt_infer_embedding)            \
    /* INT8 forms of Linear and Attention (rt_compress_quant.c creates them; rt_op_quant.c, \
     * rt_fused.h) */                                              \
    X(QLINEAR, "infd.QLinear", rt_infer_qlinear)                  \
    X(QATTENTION, "infd.QAttention", rt_infer_qattention)         \
    /* Linear with a pruned weight held sparse (rt_compress_prune.c; rt_sparse.h) */ \
    X(SPARSE_LINEAR, "infd.SparseLinear", rt_infer_sparse_linear) \
    /* tensor parallelism (parallel/tp_shard.c inserts them; rt_fused.h) */ \
    X(ALL_REDUCE, "infd.AllReduce", rt_infer_all_reduce)          \
    X(ALL_GATHER, "infd.AllGather", rt_infer_all_gather)          \
    X(VOCAB_GATHER, "infd.VocabGather", rt_infer_vocab_gather)

typedef enum {
#define RT_OP_ENUM(e, name, infer) RT_OP_##e,
    RT_OP_LIST(RT_OP_ENUM)
#undef RT_OP_ENUM
    RT_OP_COUNT
} rt_op;

/* Infers the dtype and shape of every output of node from its inputs.
 * in[i] is NULL for an omitted optional input; otherwise in[i] has dtype, shape and host
 * data (the executor runs inference just before the kernel, so shape-carrying inputs such
 * as Reshape's `shape` are readable). out[i] arrives zeroed; the function sets dtype and
 * shape only. Returns RT_ERR_INVALID_ARG with a message for inputs that do not fit the op
 * and RT_ERR_UNSUPPORTED for attribute values we do not implement. */
typedef rt_status (*rt_infer_fn)(const struct rt_node *node, const rt_tensor *const *in, int n_in,
                                 rt_tensor *out, int n_out, rt_error *err);

#define RT_OP_DECLARE(e, name, infer)                                                     \
    rt_status infer(const struct rt_node *node, const rt_tensor *const *in, int n_in, \
                    rt_tensor *out, int n_out, rt_error *err);
RT_OP_LIST(RT_OP_DECLARE)
#undef RT_OP_DECLARE

/* ONNX op_type of an op ("Add"). */
const char *rt_op_name(rt_op op);
/* The op for an ONNX op_type in the default domain; RT_OP_COUNT if unknown. */
rt_op rt_op_from_name(const char *op_type);
/* Dispatches to the op's infer function. */
rt_status rt_op_infer(const struct rt_node *node, const rt_tensor *const *in, int n_in,
                      rt_tensor *out, int n_out, rt_error *err);

#endif
