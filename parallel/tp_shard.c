/* tp_shard.c: the tensor-parallel sharding pass (tp_shard.h): finds MLP and attention
 * blocks (column-parallel producers, elementwise ops, one row-parallel Linear), the
 * vocabulary embedding and the vocabulary-sized output layer in an optimized graph, slices
 * their weights to one rank's shard and inserts the collective after each. */
#include "tp_shard.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "tp_plan.h"

#define MAX_BLOCK 64 /* values between the column- and the row-parallel side of a block */

typedef struct {
    rt_graph *g;
    int rank, size;
    bool *done;     /* per node: sharded or inserted by this pass (moves with the nodes) */
    int64_t vocab;  /* rows of the vocabulary table; 0 when the graph has none */
    tp_shard_report *rep;
    rt_error *err;
} shard;

/* How many node inputs read value v (a graph output counts as a reader too). */
static int readers(const rt_graph *g, int v)
{
    int n = g->values[v].is_output ? 1 : 0;
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            n += g->nodes[i].inputs[k] == v;
    return n;
}

/* The node that computes value v, or -1. */
static int producer(const rt_graph *g, int v)
{
    for (int i = 0; i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_outputs; k++)
            if (g->nodes[i].outputs[k] == v)
                return i;
    return -1;
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

/* A Linear or Attention node's weight is a constant matrix and its bias (if any) a
 * constant vector. */
static bool constant_weights(const rt_graph *g, int i)
{
    return weight(g, i, 1, 2) && (rt_node_input(&g->nodes[i], 2) < 0 || weight(g, i, 2, 1));
}

/* Blocks [starts[b], starts[b] + lens[b]) of t's last dim, side by side: t as (rows,
 * cols) becomes (rows, sum of lens), same rank; columns past t's end are zeros (a padded
 * last shard). */
static rt_tensor *take_cols(const rt_tensor *t, int nb, const int64_t *starts,
                            const int64_t *lens, rt_error *err)
{
    rt_shape s = t->shape;
    int64_t cols = s.dims[s.rank - 1], rows = cols ? rt_tensor_numel(t) / cols : 0, width = 0;
    for (int b = 0; b < nb; b++)
        width += lens[b];
    s.dims[s.rank - 1] = width;
    rt_tensor *out = rt_tensor_create(RT_DTYPE_F32, &s, err);
    if (!out)
        return NULL;
    const float *src = t->data;
    float *dst = out->data;
    for (int64_t r = 0; r < rows; r++)
        for (int b = 0; b < nb; b++) {
            int64_t n = starts[b] + lens[b] <= cols ? lens[b] : cols - starts[b];
            if (n > 0)
                memcpy(dst, src + r * cols + starts[b], sizeof(float) * (size_t)n);
            dst += lens[b];
        }
    return out;
}

/* Rows [start, start + len) of the 2-D t; rows past t's end are zeros. */
static rt_tensor *take_rows(const rt_tensor *t, int64_t start, int64_t len, rt_error *err)
{
    rt_shape s = t->shape;
    s.dims[0] = len;
    rt_tensor *out = rt_tensor_create(RT_DTYPE_F32, &s, err);
    int64_t n = start + len <= t->shape.dims[0] ? len : t->shape.dims[0] - start;
    if (out && n > 0)
        memcpy(out->data, (const float *)t->data + start * t->shape.dims[1],
               sizeof(float) * (size_t)(n * t->shape.dims[1]));
    return out;
}

/* Makes shard (NULL: failed) the weight at input slot of node i: in place when nothing
 * else reads the old weight (which is freed), else as a new weight value. */
static rt_status set_weight(shard *s, int i, int slot, rt_tensor *shard_data)
{
    rt_graph *g = s->g;
    if (!shard_data)
        return s->err->status;
    int v = g->nodes[i].inputs[slot];
    if (readers(g, v) == 1) {
        rt_tensor_free(g->values[v].data);
        g->values[v].data = shard_data;
        g->values[v].shape = shard_data->shape;
        return RT_OK;
    }
    char name[512];
    snprintf(name, sizeof name, "%s/tp_rank%d", g->values[v].name, s->rank);
    int nv = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &shard_data->shape);
    if (nv < 0) {
        rt_tensor_free(shard_data);
        return rt_error_set(s->err, RT_ERR_NOMEM, "out of memory sharding weights");
    }
    g->values[nv].data = shard_data;
    g->nodes[i].inputs[slot] = nv;
    return RT_OK;
}

/* A new array of n INT attributes (the graph takes it over with its node). */
static rt_attr *int_attrs(int n, const char *const *names, const int64_t *values)
{
    rt_attr *a = calloc((size_t)n, sizeof *a);
    for (int k = 0; a && k < n; k++) {
        a[k] = (rt_attr){.name = strdup(names[k]), .type = RT_ATTR_INT, .i = values[k]};
        if (!a[k].name) {
            for (int j = 0; j < k; j++)
                rt_attr_clear(&a[j]);
            free(a);
            return NULL;
        }
    }
    return a;
}

static void set_int_attr(rt_node *n, const char *name, int64_t v)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (strcmp(n->attrs[a].name, name) == 0)
            n->attrs[a].i = v;
}

/* Node j now writes a partial result (part_shape) that op (attrs taken over) combines
 * over the ranks into j's old output; the new node goes right after j. */
static rt_status insert_collective(shard *s, int j, rt_op op, rt_attr *attrs, int n_attrs,
                                   const rt_shape *part_shape)
{
    rt_graph *g = s->g;
    int y = g->nodes[j].outputs[0];
    char name[512];
    snprintf(name, sizeof name, "%s/tp_partial", g->values[y].name);
    int part = rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, part_shape);
    if (part < 0) {
        for (int k = 0; attrs && k < n_attrs; k++)
            rt_attr_clear(&attrs[k]);
        free(attrs);
    }
    snprintf(name, sizeof name, "%s/%s", g->nodes[j].name,
             op == RT_OP_ALL_GATHER ? "all_gather" : "all_reduce");
    if (part < 0 || (n_attrs && !attrs) ||
        rt_graph_add_node(g, name, op, &part, 1, &y, 1, attrs, n_attrs) < 0)
        return rt_error_set(s->err, RT_ERR_NOMEM, "out of memory inserting a collective");
    g->nodes[j].outputs[0] = part;
    rt_node added = g->nodes[g->n_nodes - 1];
    size_t after = (size_t)(g->n_nodes - j - 2);
    memmove(&g->nodes[j + 2], &g->nodes[j + 1], sizeof(rt_node) * after);
    memmove(&s->done[j + 2], &s->done[j + 1], sizeof(bool) * after);
    g->nodes[j + 1] = added;
    s->done[j] = s->done[j + 1] = true;
    if (op == RT_OP_ALL_GATHER)
        s->rep->all_gathers++;
    else
        s->rep->all_reduces++;
    return RT_OK;
}

/* Output columns of Linear i. */
static int64_t linear_cols(const rt_graph *g, int i)
{
    const rt_tensor *w = weight(g, i, 1, 2);
    return w->shape.dims[rt_node_attr_int(&g->nodes[i], "trans_b", 0) ? 0 : 1];
}

/* Column-parallel Linear i: output columns [rank * len, (rank + 1) * len) of W and B
 * (zeros past the last column). */
static rt_status column_parallel(shard *s, int i, int64_t len)
{
    const rt_graph *g = s->g;
    const rt_tensor *w = weight(g, i, 1, 2), *b = weight(g, i, 2, 1);
    bool tb = rt_node_attr_int(&g->nodes[i], "trans_b", 0) != 0;
    int64_t start = s->rank * len;
    rt_status st = set_weight(s, i, 1, tb ? take_rows(w, start, len, s->err)
                                          : take_cols(w, 1, &start, &len, s->err));
    if (st == RT_OK && b)
        st = set_weight(s, i, 2, take_cols(b, 1, &start, &len, s->err));
    return st;
}

/* Attention i split by heads: its query heads and the KV heads they read, from the Q, K
 * and V blocks of W (hidden_in, (heads + 2 kv_heads) d) and B. */
static rt_status split_heads(shard *s, int i)
{
    rt_node *n = &s->g->nodes[i];
    const rt_tensor *w = weight(s->g, i, 1, 2), *b = weight(s->g, i, 2, 1);
    int64_t heads, kv, d, hq, hkv;
    rt_status st = rt_attention_heads(n, w->shape.dims[1], &heads, &kv, &d, s->err);
    if (st == RT_OK)
        st = tp_split_heads(heads, kv, s->size, &hq, &hkv, s->err);
    if (st != RT_OK)
        return st;
    /* with fewer KV heads than ranks, the query heads of a rank share KV head
     * rank * kv / size */
    int64_t first_kv = kv >= s->size ? s->rank * hkv : s->rank * kv / s->size;
    int64_t starts[3] = {s->rank * hq * d, (heads + first_kv) * d, (heads + kv + first_kv) * d};
    int64_t lens[3] = {hq * d, hkv * d, hkv * d};
    set_int_attr(n, "num_heads", hq);
    set_int_attr(n, "num_kv_heads", hkv);
    st = set_weight(s, i, 1, take_cols(w, 3, starts, lens, s->err));
    if (st == RT_OK && b)
        st = set_weight(s, i, 2, take_cols(b, 3, starts, lens, s->err));
    return st;
}

/* Whether node i can start a block (column-parallel side): its width (output columns or
 * heads x head size) in *width. Refuses (RT_ERR_INVALID_ARG) one that cannot be split. */
static rt_status check_leaf(shard *s, int i, int64_t *width)
{
    const rt_node *n = &s->g->nodes[i];
    if (n->op == RT_OP_LINEAR) {
        *width = linear_cols(s->g, i);
        if (*width % s->size != 0)
            return rt_error_set(s->err, RT_ERR_INVALID_ARG,
                                "cannot split node '%s' (infd.Linear) over %d ranks: its %lld "
                                "output columns are not divisible by %d",
                                n->name, s->size, (long long)*width, s->size);
        return RT_OK;
    }
    int64_t heads, kv, d, hq, hkv;
    rt_status st = rt_attention_heads(n, weight(s->g, i, 1, 2)->shape.dims[1], &heads, &kv, &d,
                                      s->err);
    if (st == RT_OK)
        st = tp_split_heads(heads, kv, s->size, &hq, &hkv, s->err);
    if (st != RT_OK)
        return rt_error_prefix(s->err, "node '%s' (infd.Attention): ", n->name);
    *width = heads * d;
    return RT_OK;
}

/* ---- blocks: column-parallel leaves -> elementwise ops -> a row-parallel Linear ---- */

typedef struct {
    int vals[MAX_BLOCK], n_vals;   /* values split by the last dim */
    int nodes[MAX_BLOCK];          /* nodes[k] computes vals[k] */
    bool leaf[MAX_BLOCK];          /* nodes[k] is a column-parallel Linear or Attention */
} block;

static bool in_list(const int *a, int n, int x)
{
    for (int k = 0; k < n; k++)
        if (a[k] == x)
            return true;
    return false;
}

static bool elementwise(const rt_node *n)
{
    bool binary;
    return n->op == RT_OP_FUSED_ELEMENTWISE || rt_ew_step_op(n->op, &binary);
}

static bool scalar_constant(const rt_graph *g, int v)
{
    return v >= 0 && g->values[v].kind == RT_VALUE_WEIGHT && g->values[v].data &&
           rt_tensor_numel(g->values[v].data) == 1;
}

/* Adds value v and the nodes that compute it to the block; false when v is not computed
 * by elementwise ops (other operands scalar constants) from Linears or Attentions with
 * constant weights. */
static bool collect(const shard *s, block *b, int v)
{
    if (in_list(b->vals, b->n_vals, v))
        return true;
    const rt_graph *g = s->g;
    int p = producer(g, v);
    if (p < 0 || s->done[p] || b->n_vals == MAX_BLOCK || g->nodes[p].n_outputs != 1)
        return false;
    const rt_node *n = &g->nodes[p];
    bool leaf = (n->op == RT_OP_LINEAR || n->op == RT_OP_ATTENTION) && constant_weights(g, p);
    b->vals[b->n_vals] = v;
    b->nodes[b->n_vals] = p;
    b->leaf[b->n_vals++] = leaf;
    if (leaf)
        return true;
    if (!elementwise(n))
        return false;
    int split_inputs = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        if (scalar_constant(g, n->inputs[k]))
            continue;
        if (!collect(s, b, n->inputs[k]))
            return false;
        split_inputs++;
    }
    return split_inputs > 0;
}

/* Whether the block's values are read only inside it (its elementwise nodes and the
 * row-parallel Linear j) and are all as wide as j's input rows k (no broadcasting). */
static bool closed(const shard *s, const block *b, int j, int64_t k)
{
    const rt_graph *g = s->g;
    for (int a = 0; a < b->n_vals; a++) {
        const rt_value *v = &g->values[b->vals[a]];
        if (v->is_output || (v->shape.rank > 0 && v->shape.dims[v->shape.rank - 1] > 0 &&
                             v->shape.dims[v->shape.rank - 1] != k))
            return false;
    }
    for (int i = 0; i < g->n_nodes; i++) {
        if (i == j)
            continue;
        int at = -1;
        for (int a = 0; a < b->n_vals; a++)
            if (b->nodes[a] == i)
                at = a;
        if (at >= 0 && !b->leaf[at])
            continue;
        for (int q = 0; q < g->nodes[i].n_inputs; q++)
            if (in_list(b->vals, b->n_vals, g->nodes[i].inputs[q]))
                return false;
    }
    return true;
}

/* Row-parallel Linear j: its input rows [rank * len, ...) of W, its bias on rank 0 only. */
static rt_status row_parallel(shard *s, int j)
{
    rt_graph *g = s->g;
    const rt_tensor *w = weight(g, j, 1, 2);
    bool tb = rt_node_attr_int(&g->nodes[j], "trans_b", 0) != 0;
    int64_t len = w->shape.dims[tb ? 1 : 0] / s->size, start = s->rank * len;
    rt_status st = set_weight(s, j, 1, tb ? take_cols(w, 1, &start, &len, s->err)
                                          : take_rows(w, start, len, s->err));
    if (st != RT_OK)
        return st;
    if (s->rank != 0 && g->nodes[j].n_inputs > 2)
        g->nodes[j].n_inputs = 2;
    return insert_collective(s, j, RT_OP_ALL_REDUCE, NULL, 0,
                             &g->values[g->nodes[j].outputs[0]].shape);
}

/* The block that ends at Linear j, split when there is one. */
static rt_status try_block(shard *s, int j)
{
    rt_graph *g = s->g;
    const rt_node *n = &g->nodes[j];
    if (n->op != RT_OP_LINEAR || s->done[j] || !constant_weights(g, j) ||
        strcmp(rt_node_attr_string(n, "activation", ""), "") != 0)
        return RT_OK;
    const rt_tensor *w = weight(g, j, 1, 2);
    int64_t k = w->shape.dims[rt_node_attr_int(n, "trans_b", 0) ? 1 : 0], width = 0;
    block b = {.n_vals = 0};
    if (!collect(s, &b, n->inputs[0]) || !closed(s, &b, j, k))
        return RT_OK;
    bool attention = false;
    for (int a = 0; a < b.n_vals; a++) {
        if (!b.leaf[a])
            continue;
        rt_status st = check_leaf(s, b.nodes[a], &width);
        if (st != RT_OK)
            return st;
        if (width != k)
            return RT_OK;
        attention = attention || g->nodes[b.nodes[a]].op == RT_OP_ATTENTION;
    }
    for (int a = 0; a < b.n_vals; a++) {
        int i = b.nodes[a];
        if (b.leaf[a]) {
            rt_status st = g->nodes[i].op == RT_OP_ATTENTION
                               ? split_heads(s, i)
                               : column_parallel(s, i, linear_cols(g, i) / s->size);
            if (st != RT_OK)
                return st;
        }
        rt_shape *shape = &g->values[b.vals[a]].shape;
        if (shape->rank > 0 && shape->dims[shape->rank - 1] > 0)
            shape->dims[shape->rank - 1] /= s->size;
        s->done[i] = true;
    }
    if (attention)
        s->rep->attentions++;
    else
        s->rep->mlps++;
    return row_parallel(s, j);
}

/* ---- vocabulary: the embedding table and the output layer ---- */

/* Whether node i is a Gather (axis 0) of a constant F32 (rows, H) table by integer ids
 * computed at run time. */
static bool embedding(const rt_graph *g, int i)
{
    const rt_node *n = &g->nodes[i];
    if (n->op != RT_OP_GATHER || n->n_inputs != 2 || !weight(g, i, 0, 2))
        return false;
    int64_t axis = rt_node_attr_int(n, "axis", 0);
    const rt_value *ids = &g->values[n->inputs[1]];
    return (axis == 0 || axis == -2) && ids->kind != RT_VALUE_WEIGHT &&
           (ids->dtype == RT_DTYPE_I64 || ids->dtype == RT_DTYPE_I32);
}

/* Vocabulary entries per rank: ceil(vocab / size); the last ranks hold fewer. */
static int64_t vocab_per_rank(const shard *s)
{
    return (s->vocab + s->size - 1) / s->size;
}

/* The vocabulary table's Gather i becomes infd.VocabGather over this rank's rows, then an
 * all-reduce. A table something else also reads (tied to the output layer) stays whole. */
static rt_status split_embedding(shard *s, int i)
{
    rt_graph *g = s->g;
    rt_node *n = &g->nodes[i];
    const rt_tensor *t = weight(g, i, 0, 2);
    if (t->shape.dims[0] != s->vocab)
        return RT_OK;
    if (s->vocab < s->size || readers(g, n->inputs[0]) != 1) {
        s->rep->vocab_replicated++;
        return RT_OK;
    }
    int64_t start = s->rank * vocab_per_rank(s);
    int64_t len = s->vocab - start < vocab_per_rank(s) ? s->vocab - start : vocab_per_rank(s);
    rt_status st = set_weight(s, i, 0, take_rows(t, start, len > 0 ? len : 0, s->err));
    if (st != RT_OK)
        return st;
    static const char *const names[] = {"vocab_start", "vocab_size"};
    rt_attr *attrs = int_attrs(2, names, (int64_t[]){start, s->vocab});
    if (!attrs)
        return rt_error_set(s->err, RT_ERR_NOMEM, "out of memory sharding an embedding");
    for (int a = 0; a < n->n_attrs; a++)
        rt_attr_clear(&n->attrs[a]);
    free(n->attrs);
    n->attrs = attrs;
    n->n_attrs = 2;
    n->op = RT_OP_VOCAB_GATHER;
    s->rep->embeddings++;
    return insert_collective(s, i, RT_OP_ALL_REDUCE, NULL, 0,
                             &g->values[n->outputs[0]].shape);
}

/* A Linear i with vocabulary-sized output becomes column-parallel over the vocabulary
 * (the last rank's columns padded with zeros to ceil(vocab / size)), then its logits are
 * all-gathered and the padding dropped. */
static rt_status split_output_layer(shard *s, int i)
{
    rt_graph *g = s->g;
    if (g->nodes[i].op != RT_OP_LINEAR || s->done[i] || !constant_weights(g, i) ||
        linear_cols(g, i) != s->vocab)
        return RT_OK;
    if (s->vocab < s->size) {
        s->rep->vocab_replicated++;
        return RT_OK;
    }
    rt_status st = column_parallel(s, i, vocab_per_rank(s));
    if (st != RT_OK)
        return st;
    rt_shape part = g->values[g->nodes[i].outputs[0]].shape;
    if (part.rank > 0)
        part.dims[part.rank - 1] = vocab_per_rank(s);
    static const char *const names[] = {"ranks", "width"};
    s->rep->lm_heads++;
    return insert_collective(s, i, RT_OP_ALL_GATHER,
                             int_attrs(2, names, (int64_t[]){s->size, s->vocab}), 2, &part);
}

static rt_status shard_all(shard *s)
{
    rt_graph *g = s->g;
    for (int i = 0; i < g->n_nodes; i++)
        if (embedding(g, i) && weight(g, i, 0, 2)->shape.dims[0] > s->vocab)
            s->vocab = weight(g, i, 0, 2)->shape.dims[0];
    for (int j = 0; j < g->n_nodes; j++) {
        rt_status st = try_block(s, j);
        if (st != RT_OK)
            return st;
    }
    for (int i = 0; s->vocab > 0 && i < g->n_nodes; i++) {
        rt_status st = embedding(g, i) ? split_embedding(s, i) : split_output_layer(s, i);
        if (st != RT_OK)
            return st;
    }
    return rt_graph_check(g, s->err);
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
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].op == RT_OP_QLINEAR || g->nodes[i].op == RT_OP_QATTENTION)
            return rt_error_set(err, RT_ERR_UNSUPPORTED,
                                "cannot shard node '%s' (%s): tensor parallelism does not split "
                                "INT8 weights; shard the uncompressed model",
                                g->nodes[i].name, rt_op_name(g->nodes[i].op));
    /* every original node inserts at most one collective */
    shard s = {g, rank, size, calloc((size_t)(2 * g->n_nodes + 1), sizeof(bool)), 0, rep, err};
    if (!s.done)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory sharding the graph");
    rt_status st = shard_all(&s);
    free(s.done);
    return st;
}
