/* tp_shard.h: the tensor-parallel sharding pass (Megatron style). It rewrites an optimized
 * graph (rt_optimize: infd.Linear, infd.Attention, infd.FusedElementwise) into the graph
 * rank `rank` of `size` runs, holding only its shard of the split weights:
 *
 *   - MLP block: a Linear without activation (the row-parallel one) whose X is computed,
 *     through elementwise ops only (Mul, Sigmoid, FusedElementwise, ...; other operands
 *     scalar constants), from one or more Linears (any activation) that nothing else
 *     reads. Those Linears are column-parallel (their weights' output columns and biases
 *     sliced), the elementwise ops run on the slices, the last Linear is row-parallel
 *     (its weight's input rows sliced; its bias kept on rank 0 only) and is followed by one
 *     infd.AllReduce (sum). This covers Linear -> activation -> Linear and the gated MLP
 *     down(silu(gate(x)) * up(x)) (SwiGLU), in whatever form the optimizer left it.
 *   - Attention block: the same with an infd.Attention in place of the column-parallel
 *     Linears, split by heads: each rank keeps heads/size query heads and the KV heads
 *     they read (grouped-query attention: kv_heads/size of them, or, when there are fewer
 *     KV heads than ranks, the one its query heads share, replicated size/kv_heads times).
 *   - Vocabulary: the Gather (axis 0) of the vocabulary table (the graph's largest Gather
 *     table) becomes infd.VocabGather over this rank's ceil(vocab/size) rows (fewer on the
 *     last ranks), followed by an infd.AllReduce; an output layer (a Linear with
 *     vocabulary-sized output) becomes column-parallel over ceil(vocab/size) columns (the
 *     last rank's padded with zeros), followed by an infd.AllGather of the logits that
 *     drops the padding. A table that something else also reads (tied to the output layer)
 *     and a vocabulary smaller than size stay whole (counted in vocab_replicated).
 *   - everything else (norms, other Gathers, lone Linears, small ops) is replicated.
 *
 * A block that cannot be split (heads, KV heads or a Linear's output columns not
 * divisible by size) is refused with a message that says why, and so is a graph with
 * INT8 weights (infd.QLinear, infd.QAttention: rt_compress.h), which is not split.
 * docs/parallel.md has the rules. */
#ifndef TP_SHARD_H
#define TP_SHARD_H

#include "rt_graph.h"
#include "rt_status.h"

typedef struct tp_shard_report {
    int mlps;             /* MLP blocks split (plain or gated) */
    int attentions;       /* Attention blocks split by heads */
    int embeddings;       /* vocabulary tables split by rows */
    int lm_heads;         /* vocabulary-sized output layers split by columns */
    int vocab_replicated; /* embeddings and output layers left whole (tied, or tiny) */
    int all_reduces;      /* infd.AllReduce nodes inserted: all-reduces per forward */
    int all_gathers;      /* infd.AllGather nodes inserted: all-gathers per forward */
} tp_shard_report;

/* Shards g in place for rank `rank` of `size` (size 1 leaves it unchanged). rep may be
 * NULL. On failure g may be half rewritten and must be discarded. */
rt_status tp_shard(rt_graph *g, int rank, int size, tp_shard_report *rep, rt_error *err);

#endif
