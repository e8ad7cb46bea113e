/* tp_shard.c: the tensor-parallel sharding pass (tp_shard.h): finds Linear -> Linear and
 * Attention -> Linear blocks in an optimized graph, slices their weights to one rank's
 * shard (column-parallel, then row-parallel) and inserts an infd.AllReduce after each
 * block. */
#include "tp_shard.h"

#include <stdio.h>
#include <string.h>

#include "rt_fused.h"
#include "tp_plan.h"

/* How many node inputs read value v (a graph output counts as a reader too); *only is the
 * node of the last reader seen. */
static int readers(const rt_graph *g, int v, int *only)
{
    int n = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] == v) {
                n++;
                *only = i;
            }
    return n;
}

/* The F32 weight of rank `rank` (1 or 2) at input slot of node i, or NULL. */
static const rt_tensor *weight(const rt_graph *g, int i, int slot, int rank)
{
    int v = rt_node_input(&g->nodes[i], slot);
    if (v < 0 || g->values[v].kind != RT_VALUE_WEIGHT)
        return NULL;
    const rt_tensor *t = g->values[v].data;
    return t && t->dtype == RT_DTYPE_F32 && t->shape.rank == rank ? t : NULL;
}

/* Blocks [starts[b], starts[b] + len) of t's last dim, side by side: t as (rows, cols)
 * becomes (rows, nb * len), same rank. */
static rt_tensor *take_cols(const rt_tensor *t, int nb, const int64_t *starts, int64_t len,
                            rt_error *err)
{
    rt_shape s = t->shape;
    int64_t cols = s.dims[s.rank - 1], rows = cols ? rt_tensor_numel(t) / cols : 0;
    s.dims[s.rank - 1] = nb * len;
    rt_tensor *out = rt_tensor_create(RT_DTYPE_F32, &s, err);
    if (!out)
        return NULL;
    const float *src = t->data;
    float *dst = out->data;
    for (int64_t r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++)
            memcpy(dst + r * nb * len + b * len, src + r * cols + starts[b],
                   sizeof(float) * (size_t)len);
    return out;
}

/* Rows [start, start + len) of the 2-D t. */
static rt_tensor *take_rows(const rt_tensor *t, int64_t start, int64_t len, rt_error *err)
{
    rt_shape s = t->shape;
    s.dims[0] = len;
    rt_tensor *out = rt_tensor_create(RT_DTYPE_F32, &s, err);
    if (out)
        memcpy(out->data, (const float *)t->data + start * t->shape.dims[1],
               sizeof(float) * (size_t)(len * t->shape.dims[1]));
    return out;
}

/* Makes shard (NULL: failed) the weight at input slot of node i: in place when nothing
 * else reads the old weight (which is freed), else as a new weight value. */
static rt_status set_weight(rt_graph *g, int i, int slot, int rank, rt_tensor *shard,
                            rt_error *err)
{
    if (!shard)
        return err->status;
    int v = g->nodes[i].inputs[slot], only = -1;
    if (readers(g, v, &only) == 1) {
        rt_tensor_free(g->values[v].data);
        g->values[v].data = shard;
        g->values[v].shape = shard->shape;
        return RT_OK;
    }
    char name[512];
    snprintf(name, sizeof name, "%s/tp_rank%d", g->values[v].name, rank);
    int nv = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &shard->shape);
    if (nv < 0) {
        rt_tensor_free(shard);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory sharding weights");
    }
    g->values[nv].data = shard;
    g->nodes[i].inputs[slot] = nv;
    return RT_OK;
}

static bool plain_linear(const rt_node *n)
{
    return n->op == RT_OP_LINEAR && strcmp(rt_node_attr_string(n, "activation", ""), "") == 0;
}

/* Column-parallel Linear i: output columns [rank * len, (rank + 1) * len) of W and B. */
static rt_status column_parallel(rt_graph *g, int i, int rank, int size, rt_error *err)
{
    const rt_node *n = &g->nodes[i];
    const rt_tensor *w = weight(g, i, 1, 2), *b = weight(g, i, 2, 1);
    bool tb = rt_node_attr_int(n, "trans_b", 0) != 0;
    int64_t cols = w->shape.dims[tb ? 0 : 1];
    if (cols % size != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "cannot split node '%s' (infd.Linear) over %d ranks: its %lld "
                            "output columns are not divisible by %d",
                            n->name, size, (long long)cols, size);
    int64_t len = cols / size, start = rank * len;
    rt_status st = set_weight(g, i, 1, rank,
                              tb ? take_rows(w, start, len, err) : take_cols(w, 1, &start, len, err),
                              err);
    if (st == RT_OK && b)
        st = set_weight(g, i, 2, rank, take_cols(b, 1, &start, len, err), err);
    return st;
}

/* Attention i split by heads: each of the Q, K and V blocks of W (hidden_in, 3 hidden) and
 * B keeps this rank's heads. */
static rt_status split_heads(rt_graph *g, int i, int rank, int size, rt_error *err)
{
    rt_node *n = &g->nodes[i];
    const rt_tensor *w = weight(g, i, 1, 2), *b = weight(g, i, 2, 1);
    int64_t heads = rt_node_attr_int(n, "num_heads", 1), per_rank, kv_per_rank;
    rt_status st = tp_split_heads(heads, heads, size, &per_rank, &kv_per_rank, err);
    if (st != RT_OK)
        return rt_error_prefix(err, "node '%s' (infd.Attention): ", n->name);
    int64_t hidden = w->shape.dims[1] / 3, len = hidden / size;
    int64_t starts[3] = {rank * len, hidden + rank * len, 2 * hidden + rank * len};
    for (int a = 0; a < n->n_attrs; a++)
        if (strcmp(n->attrs[a].name, "num_heads") == 0)
            n->attrs[a].i = per_rank;
    st = set_weight(g, i, 1, rank, take_cols(w, 3, starts, len, err), err);
    if (st == RT_OK && b)
        st = set_weight(g, i, 2, rank, take_cols(b, 3, starts, len, err), err);
    return st;
}

/* Row-parallel Linear j (its input rows [rank * len, ...) of W, its bias on rank 0 only),
 * then an infd.AllReduce of its output inserted right after it. */
static rt_status row_parallel(rt_graph *g, int j, int rank, int size, rt_error *err)
{
    const rt_tensor *w = weight(g, j, 1, 2);
    bool tb = rt_node_attr_int(&g->nodes[j], "trans_b", 0) != 0;
    int64_t len = w->shape.dims[tb ? 1 : 0] / size, start = rank * len;
    rt_status st = set_weight(g, j, 1, rank,
                              tb ? take_cols(w, 1, &start, len, err) : take_rows(w, start, len, err),
                              err);
    if (st != RT_OK)
        return st;
    if (rank != 0 && g->nodes[j].n_inputs > 2)
        g->nodes[j].n_inputs = 2;
    int y = g->nodes[j].outputs[0];
    char name[512];
    snprintf(name, sizeof name, "%s/tp_partial", g->values[y].name);
    rt_shape shape = g->values[y].shape;
    int part = rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, &shape);
    snprintf(name, sizeof name, "%s/all_reduce", g->nodes[j].name);
    if (part < 0 || rt_graph_add_node(g, name, RT_OP_ALL_REDUCE, &part, 1, &y, 1, NULL, 0) < 0)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory inserting an all-reduce");
    g->nodes[j].outputs[0] = part;
    /* move the new last node to j + 1 */
    rt_node ar = g->nodes[g->n_nodes - 1];
    memmove(&g->nodes[j + 2], &g->nodes[j + 1], sizeof(rt_node) * (size_t)(g->n_nodes - j - 2));
    g->nodes[j + 1] = ar;
    return RT_OK;
}

/* Index of the Linear without activation that alone reads node i's output as its X, with
 * a constant 2-D weight; -1 if none. */
static int row_partner(const rt_graph *g, int i)
{
    int v = g->nodes[i].outputs[0], j = -1;
    if (readers(g, v, &j) != 1 || !plain_linear(&g->nodes[j]) || g->nodes[j].inputs[0] != v ||
        !weight(g, j, 1, 2))
        return -1;
    int b = rt_node_input(&g->nodes[j], 2);
    return b < 0 || weight(g, j, 2, 1) ? j : -1;
}

/* The sharded intermediate between a block's two nodes: its last dim is per rank now. */
static void shrink_last_dim(rt_graph *g, int v, int size)
{
    rt_shape *s = &g->values[v].shape;
    if (s->rank > 0 && s->dims[s->rank - 1] > 0)
        s->dims[s->rank - 1] /= size;
}

rt_status tp_shard(rt_graph *g, int rank, int size, tp_shard_report *rep, rt_error *err)
{
    tp_shard_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    if (size < 1 || rank < 0 || rank >= size)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "rank %d of %d ranks is not a rank", rank,
                            size);
    if (size == 1)
        return RT_OK;
    for (int i = 0; i < g->n_nodes; i++) {
        rt_node *n = &g->nodes[i];
        bool attn = n->op == RT_OP_ATTENTION;
        if ((!attn && n->op != RT_OP_LINEAR) || !weight(g, i, 1, 2) ||
            (rt_node_input(n, 2) >= 0 && !weight(g, i, 2, 1)))
            continue;
        int j = row_partner(g, i);
        if (j < 0)
            continue;
        int mid = n->outputs[0];
        rt_status st = attn ? split_heads(g, i, rank, size, err)
                            : column_parallel(g, i, rank, size, err);
        if (st == RT_OK)
            st = row_parallel(g, j, rank, size, err);
        if (st != RT_OK)
            return st;
        shrink_last_dim(g, mid, size);
        if (attn)
            rep->attentions++;
        else
            rep->mlp_pairs++;
        rep->all_reduces++;
    }
    return rt_graph_check(g, err);
}
