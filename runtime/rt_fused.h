/* rt_fused.h: the attributes of the fused ops the optimizer creates (RT_OP_LINEAR and the
 * ops after it in rt_ops.h), read the same way by their shape inference (rt_op_fused.c),
 * their kernels and the passes that write them. All fused ops compute in F32.
 *
 *   infd.Linear(X, W, B?)          Y = act(X W + B) over X's last dim; W is (K, N), or
 *                                  (N, K) with trans_b = 1; B has N elements
 *   infd.FusedConv(X, W, B?)       Y = act(Conv(X, W, B)), Conv's attributes
 *   infd.Gelu(X)                   approximate = "none" (erf) or "tanh"
 *   infd.SkipLayerNorm(X, S, G, B?) Y = LayerNorm(X + S) over the last dim; S has X's
 *                                  shape or a suffix of it (repeated over the leading dims),
 *                                  possibly after leading dims of 1
 *   infd.Attention(X, W, B?, M?)   multi-head self-attention of X (batch, seq, hidden_in):
 *                                  W (hidden_in, 3 hidden) and B (3 hidden) project Q, K, V
 *                                  side by side; softmax(scale Q K^T + M) V per head, heads
 *                                  concatenated: Y is (batch, seq, hidden). M, an additive
 *                                  mask, broadcasts to (batch, 1, seq or 1, seq).
 *   infd.FusedElementwise(X, ...)  a chain of elementwise steps on X (see rt_ew_program).
 *   infd.AllReduce(X)              Y = the sum of X over the ranks of a tensor-parallel
 *                                  group (rt_kernel_ctx.all_reduce), inserted by the
 *                                  sharding pass (parallel/tp_shard.h)
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
