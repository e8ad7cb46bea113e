/* tp_shard.h: the tensor-parallel sharding pass (Megatron style). It rewrites an optimized
 * graph (rt_optimize: infd.Linear and infd.Attention) into the graph rank `rank` of `size`
 * runs, holding only its shard of the split weights:
 *
 *   - Linear (any activation) whose output only a second Linear (no activation) reads:
 *     the first is column-parallel (its weight's output columns and its bias sliced), the
 *     second row-parallel (its weight's input rows sliced; its bias kept on rank 0 only),
 *     followed by one infd.AllReduce (sum).
 *   - Attention whose output only a Linear (no activation) reads: split by heads (each
 *     rank keeps heads/size heads of Q, K and V: their blocks of the projection weight and
 *     bias), the Linear row-parallel as above, then one infd.AllReduce.
 *   - everything else (norms, embeddings, other Linears, small ops) is replicated.
 *
 * A split that cannot be made (heads or a Linear's output columns not divisible by size)
 * is refused with a message that says why. docs/parallel.md has the rules. */
#ifndef TP_SHARD_H
#define TP_SHARD_H

#include "rt_graph.h"
#include "rt_status.h"

typedef struct tp_shard_report {
    int mlp_pairs;       /* Linear -> Linear chains split */
    int attentions;      /* Attention -> Linear blocks split by heads */
    int all_reduces;     /* infd.AllReduce nodes inserted: collectives per forward */
} tp_shard_report;

/* Shards g in place for rank `rank` of `size` (size 1 leaves it unchanged). rep may be
 * NULL. On failure g may be half rewritten and must be discarded. */
rt_status tp_shard(rt_graph *g, int rank, int size, tp_shard_report *rep, rt_error *err);

#endif
