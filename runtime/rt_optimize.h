/* rt_optimize.h: the graph optimizer. Passes rewrite an rt_graph at load time, before an
 * executor is built for it, for every backend: static shape inference and constant
 * folding (the Shape -> Gather -> Concat -> Reshape chains exporters emit included),
 * removal of Identity, inference Dropout and dead nodes, then fusion of node patterns into
 * the high-level ops of rt_fused.h (Linear, Gelu, LayerNormalization, SkipLayerNorm,
 * Attention, FusedConv, FusedElementwise) and folding of BatchNormalization into the Conv
 * or Linear before it. docs/optimizer.md describes each pass and its preconditions.
 *
 * Every rewrite keeps the graph's outputs: same values up to float rounding (the fused
 * kernels may round differently, within 1e-5 relative on normal-range values). */
#ifndef RT_OPTIMIZE_H
#define RT_OPTIMIZE_H

#include "rt_backend.h"
#include "rt_graph.h"
#include "rt_status.h"

/* The rewrites, each counted in the report under its name. */
#define RT_OPT_REWRITES(X)                                                            \
    X(CONSTANT_FOLD, "constant_folding")       /* a node computed at load */          \
    X(RESHAPE_TARGET, "reshape_target")        /* a computed Reshape target made constant */ \
    X(IDENTITY, "identity_removed")                                                   \
    X(DROPOUT, "dropout_removed")                                                     \
    X(DEAD_NODE, "dead_node_removed")                                                 \
    X(TRANSPOSE_PAIR, "transposes_merged")     /* Transpose of a Transpose -> one */  \
    X(LAYER_NORM, "layer_norm")                /* the 9-node decomposition */         \
    X(GELU_ERF, "gelu_erf")                                                           \
    X(GELU_TANH, "gelu_tanh")                                                         \
    X(LINEAR, "linear")                        /* MatMul (+ Add) or Gemm -> Linear */ \
    X(QDQ_LINEAR, "qdq_linear")                /* ... by a QDQ INT8 weight -> QLinear */ \
    X(BATCHNORM_CONV, "batchnorm_into_conv")                                          \
    X(BATCHNORM_LINEAR, "batchnorm_into_linear")                                      \
    X(ATTENTION, "attention")                                                         \
    X(LINEAR_ACTIVATION, "linear_activation")                                         \
    X(CONV_ACTIVATION, "conv_activation")                                             \
    X(SKIP_LAYER_NORM, "skip_layer_norm")                                             \
    X(ELEMENTWISE, "elementwise_chain")

typedef enum {
#define RT_OPT_ENUM(e, name) RT_OPT_##e,
    RT_OPT_REWRITES(RT_OPT_ENUM)
#undef RT_OPT_ENUM
    RT_OPT_COUNT
} rt_opt_rewrite;

/* Name of a rewrite in reports ("layer_norm"). */
const char *rt_opt_rewrite_name(rt_opt_rewrite r);

/* Pass groups, for rt_optimize's `passes` (tests run them one at a time). */
enum {
    RT_OPT_PASS_FOLD = 1u << 0,        /* shapes, constants, Identity, Dropout, dead nodes */
    RT_OPT_PASS_NORM = 1u << 1,        /* LayerNorm and GELU decompositions */
    RT_OPT_PASS_LINEAR = 1u << 2,      /* Linear, BatchNormalization folding */
    RT_OPT_PASS_ATTENTION = 1u << 3,
    RT_OPT_PASS_ACTIVATION = 1u << 4,  /* Linear / Conv + activation */
    RT_OPT_PASS_SKIP_NORM = 1u << 5,   /* Add + LayerNormalization */
    RT_OPT_PASS_ELEMENTWISE = 1u << 6, /* chains of elementwise ops */
    RT_OPT_PASS_ALL = (1u << 7) - 1
};

typedef struct rt_optimize_report {
    int nodes_before, nodes_after;
    int rewrites[RT_OPT_COUNT]; /* times each rewrite was applied */
} rt_optimize_report;

/* Runs the selected passes on g (checked with rt_graph_check beforehand). Constant
 * folding runs kernels on host: cpu must be a CPU backend, or NULL to have a temporary one
 * created. On failure g may be half rewritten and must be discarded. */
rt_status rt_optimize(rt_graph *g, unsigned passes, rt_backend *cpu, rt_optimize_report *rep,
                      rt_error *err);

#endif
