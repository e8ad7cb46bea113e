/* rt_fused.h: the attributes of the fused ops the optimizer creates (RT_OP_LINEAR and the
 * ops after it in rt_ops.h), read the same way by their shape inference (rt_op_fused.c),
 * their kernels and the passes that write them. All fused ops compute in F32; the W of
 * Linear, FusedConv and Attention may also be F16 or BF16 (narrowed by the precision pass,
 * rt_compress.h), which the kernels widen to F32 as they go.
 *
 *   infd.Linear(X, W, B?)          Y = act(X W + B) over X's last dim; W is (K, N), or
 *                                  (N, K) with trans_b = 1; B has N elements
 *   infd.FusedConv(X, W, B?)       Y = act(Conv(X, W, B)), Conv's attributes
 *   infd.Gelu(X)                   approximate = "none" (erf) or "tanh"
 *   infd.SkipLayerNorm(X, S, G, B?) Y = LayerNorm(X + S) over the last dim; S has X's
 *                                  shape or a suffix of it (repeated over the leading dims),
 *                                  possibly after leading dims of 1
 *   infd.Attention(X, W, B?, M?)   multi-head self-attention of X (batch, seq, hidden_in),
 *                                  grouped-query when num_kv_heads < num_heads: W
 *                                  (hidden_in, (H + 2 KV) d) and B ((H + 2 KV) d) project
 *                                  Q (H heads of d), K and V (KV heads of d each) side by
 *                                  side, H = num_heads, KV = num_kv_heads (default H, which
 *                                  H must be a multiple of); query head h reads KV head
 *                                  h / (H / KV); softmax(scale Q K^T + M) V per head (scale
 *                                  default 1/sqrt(d)), heads concatenated: Y is (batch, seq,
 *                                  H d). M, an additive mask, broadcasts to (batch, 1, seq or
 *                                  1, seq).
 *   infd.FusedElementwise(X, ...)  a chain of elementwise steps on X (see rt_ew_program).
 *   infd.Embedding(T, I, S?)       Gather(axis 0) of a compressed table (rt_compress_embed.c):
 *                                  Y (I's shape + T's dims after the first, F32) holds the
 *                                  rows of T picked by the I32/I64 ids I (negative ids count
 *                                  from the end, others out of range fail), widened: T is
 *                                  F16, BF16 or F32, or I8 with S (F32, one per row) its
 *                                  per-row scales (row r is S[r] T[r])
 *   infd.QLinear(X, W, S, B?)      Linear with an INT8 weight (rt_compress_quant.c): W is
 *                                  I8 (N, K), one row per output channel, S (N) F32 its
 *                                  per-channel scales (the weight is S[j] W[j][k]); B and
 *                                  the activation as Linear's. Attribute "mode" (rt_qmode):
 *                                  "weight_only" computes with the dequantized weight on
 *                                  F32 X; "dynamic" (W8A8) quantizes each row of X to 8
 *                                  bits at run time with its own scale, accumulates in
 *                                  INT32 and dequantizes in the bias + activation epilogue.
 *   infd.QAttention(X, W, S, B?, M?) Attention whose QKV projection is INT8 as QLinear's:
 *                                  W is I8 ((H + 2 KV) d, hidden_in), Attention's W
 *                                  transposed, S its per-row scales; B, M, num_heads,
 *                                  num_kv_heads, scale as Attention's, mode as QLinear's.
 *   infd.SparseLinear(X, V, R, C, B?) Linear with a pruned W held as sparse columns
 *                                  (rt_sparse.h, rt_compress_prune.c)
 *
 * Tensor-parallel ops, inserted by the sharding pass (parallel/tp_shard.h) and run through
 * the session's collectives (rt_kernel_ctx.coll):
 *   infd.AllReduce(X)              Y = the sum of X over the ranks of the group
 *   infd.AllGather(X)              Y = the ranks' X side by side along the last dim, in
 *                                  rank order, cut to `width` columns (default ranks c; a
 *                                  padded last shard is dropped): (..., c) -> (..., width);
 *                                  attributes ranks, width
 *   infd.VocabGather(T, I)         Gather(axis 0) of one rank's rows of an embedding table:
 *                                  T holds rows [vocab_start, vocab_start + rows) of a
 *                                  (vocab_size, H) table; an id (I32/I64, negative ids
 *                                  count from vocab_size, others out of range fail) in that
 *                                  range gets its row, any other id zeros: Y is I's shape
 *                                  + (H), summed over the ranks by an AllReduce after it
 */
#ifndef RT_FUSED_H
#define RT_FUSED_H

#include <stdbool.h>

#include "rt_graph.h"
#include "rt_status.h"

/* The activation of a Linear or FusedConv: attribute "activation" holds the ONNX op_type
 * of the activation that was fused ("Relu", ...; absent or "" for none, "infd.Gelu" and
 * "infd.GeluTanh" for the two GELUs), "activation_alpha" LeakyRelu's alpha and
 * "activation_min" / "activation_max" Clip's bounds. */
typedef enum {
    RT_ACT_NONE,
    RT_ACT_RELU,
    RT_ACT_LEAKY_RELU,
    RT_ACT_SIGMOID,
    RT_ACT_TANH,
    RT_ACT_CLIP,
    RT_ACT_GELU,
    RT_ACT_GELU_TANH,
    RT_ACT_COUNT
} rt_act_kind;

typedef struct rt_act {
    rt_act_kind kind;
    float alpha, lo, hi;
} rt_act;

/* The attribute value that names kind. */
const char *rt_act_name(rt_act_kind kind);
/* Reads a node's activation; RT_ERR_UNSUPPORTED for a name it does not know. */
rt_status rt_act_get(const rt_node *node, rt_act *act, rt_error *err);

/* infd.Linear as one product: Y (m x n) = X (m x k) op(W), op transposing W when trans_b
 * (the attribute); y is the inferred output. */
typedef struct rt_linear_dims {
    int64_t m, n, k;
    bool trans_b;
} rt_linear_dims;

rt_linear_dims rt_linear_dims_get(const rt_node *node, const rt_tensor *x, const rt_tensor *w,
                                  const rt_tensor *y);

/* infd.Attention's heads: num_heads, num_kv_heads and the head size d of a projection
 * with cols output columns; RT_ERR_INVALID_ARG when they do not fit. */
rt_status rt_attention_heads(const rt_node *node, int64_t cols, int64_t *heads,
                             int64_t *kv_heads, int64_t *head_dim, rt_error *err);

/* infd.QLinear and infd.QAttention: attribute "mode". */
typedef enum {
    RT_QMODE_WEIGHT_ONLY, /* "weight_only" */
    RT_QMODE_DYNAMIC      /* "dynamic": W8A8 with per-row activation scales */
} rt_qmode;

/* The attribute value that names mode. */
const char *rt_qmode_name(rt_qmode mode);
/* Reads a node's mode; RT_ERR_UNSUPPORTED for a name it does not know. */
rt_status rt_qmode_get(const rt_node *node, rt_qmode *mode, rt_error *err);

/* infd.FusedElementwise: attribute "ops" (strings) lists the ONNX op_type of each step
 * ("infd.Gelu" for GELU), "args" (ints) the node input that is each binary step's other
 * operand (-1 for a unary step), "swap" (ints) 1 where the chain value is that step's
 * second operand (Sub, Div, Pow and so on), "params" (floats) two per step: LeakyRelu's
 * alpha, Clip's min and max, 1 for Gelu's tanh form. Input 0 starts the chain; it may have
 * any numeric dtype (a leading Cast to F32), every other input is F32, all broadcast to
 * the output. */
#define RT_EW_MAX_STEPS 32

typedef struct rt_ew_step {
    rt_op op;
    int arg;
    bool swap;
    float p0, p1;
} rt_ew_step;

typedef struct rt_ew_program {
    int n;
    rt_ew_step steps[RT_EW_MAX_STEPS];
} rt_ew_program;

/* Whether op can be a step (unary float math, or a binary arithmetic op). */
bool rt_ew_step_op(rt_op op, bool *binary);
/* Reads and validates the program of a node with n_in inputs. */
rt_status rt_ew_program_get(const rt_node *node, int n_in, rt_ew_program *p, rt_error *err);

#endif
