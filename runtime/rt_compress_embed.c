/* rt_compress_embed.c: compressed embedding tables. A Gather along axis 0 of a large
 * constant F32 table (an embedding: rows of features picked by token ids) becomes
 * infd.Embedding (rt_fused.h) reading the table as INT8 with one F32 scale per row, for
 * both INT8 modes (rt_compress_quantize_embeddings), or as F16 / BF16 for the precision
 * pass (rt_compress_precision.c). Its kernel widens only the rows it picks. A table is
 * converted only when such Gathers are all that read it (a table tied to an output
 * projection stays F32). */
#include <stdlib.h>
#include <string.h>

#include "rt_compress.h"
#include "rt_op_shape.h"
#include "rt_opt.h"

/* Smaller tables are not embeddings worth a different kernel. */
#define EMBED_MIN_ELEMS 16384

static rt_status nomem(rt_error *err)
{
    return rt_error_set(err, RT_ERR_NOMEM, "out of memory compressing embedding tables");
}

/* The table of node n when n is a Gather along axis 0 of a constant F32 table of rank >= 2
 * and at least EMBED_MIN_ELEMS elements, else -1. */
static int embedding_table(const rt_graph *g, const rt_node *n)
{
    if (n->op != RT_OP_GATHER || n->n_inputs != 2 || n->n_outputs != 1)
        return -1;
    const rt_tensor *t = rt_compress_f32_weight(g, n->inputs[0]);
    int axis;
    rt_error ignored;
    if (!t || t->shape.rank < 2 || rt_tensor_numel(t) < EMBED_MIN_ELEMS ||
        rt_axis_resolve(rt_node_attr_int(n, "axis", 0), t->shape.rank, "axis", &axis,
                        &ignored) != RT_OK || axis != 0)
        return -1;
    return n->inputs[0];
}

/* The table t narrowed to dt into *out (new): I8 (with *scales, new, one per row) or F16 /
 * BF16. *out stays NULL, with no error, when an INT8 table would not hold the values
 * (infinities, NaN). */
static rt_status narrow_table(const rt_tensor *t, rt_dtype dt, rt_tensor **out,
                              rt_tensor **scales, rt_error *err)
{
    *out = *scales = NULL;
    rt_tensor *n = rt_tensor_create(dt, &t->shape, NULL);
    if (!n)
        return nomem(err);
    int64_t rows = t->shape.dims[0], cols = rows ? rt_tensor_numel(t) / rows : 0;
    if (dt != RT_DTYPE_I8) {
        rt_half_store(dt, t->data, n->data, rt_tensor_numel(t));
        *out = n;
        return RT_OK;
    }
    rt_shape s = {.rank = 1, .dims = {rows}};
    rt_tensor *sc = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    if (!sc || !rt_compress_all_finite(t)) {
        rt_tensor_free(n);
        rt_tensor_free(sc);
        return sc ? RT_OK : nomem(err);
    }
    rt_quantize_i8_rows(t->data, rows, cols, false, n->data, sc->data);
    *out = n;
    *scales = sc;
    return RT_OK;
}

/* Converts table v (read by `gathers` Gathers, the first being node `first`) and rewrites
 * every Gather of it into infd.Embedding. */
static rt_status convert_table(rt_opt *o, int v, rt_dtype dt, int first,
                               rt_compress_report *rep, rt_error *err)
{
    rt_graph *g = o->g;
    rt_tensor *t, *scales;
    rt_status st = narrow_table(g->values[v].data, dt, &t, &scales, err);
    if (st != RT_OK || !t)
        return st;
    size_t before = rt_tensor_nbytes(g->values[v].data);
    size_t after = rt_tensor_nbytes(t) + (scales ? rt_tensor_nbytes(scales) : 0);
    rt_opt_make_const(o, v, t);
    int s = scales ? rt_opt_add_weight(o, g->values[v].name, scales, err) : -1;
    if (scales && s < 0)
        return RT_ERR_NOMEM;
    for (int i = first; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        if (n->op != RT_OP_GATHER || n->n_inputs != 2 || n->inputs[0] != v)
            continue;
        int in[3] = {v, n->inputs[1], s}, out = n->outputs[0];
        st = rt_opt_replace_node(o, i, RT_OP_EMBEDDING, in, s >= 0 ? 3 : 2, &out, 1,
                                           NULL, 0, err);
        if (st != RT_OK)
            return st;
    }
    const char *technique = dt == RT_DTYPE_I8 ? "int8_embedding"
                            : dt == RT_DTYPE_F16 ? "fp16" : "bf16";
    return rt_compress_report_add(rep, g->nodes[first].name, technique, before, after, err);
}

rt_status rt_compress_embeddings(rt_graph *g, rt_dtype dt, rt_compress_report *rep,
                                 rt_error *err)
{
    int *reads = rt_compress_reads(g), *gathers = calloc((size_t)g->n_values + 1, sizeof(int));
    int *first = malloc(sizeof(int) * ((size_t)g->n_values + 1));
    rt_status st = reads && gathers && first ? RT_OK : nomem(err);
    for (int i = 0; st == RT_OK && i < g->n_nodes; i++) {
        int v = embedding_table(g, &g->nodes[i]);
        if (v >= 0 && gathers[v]++ == 0)
            first[v] = i;
    }
    rt_opt o = {.g = g};
    int n_values = g->n_values; /* the scales added meanwhile are not tables */
    for (int v = 0; st == RT_OK && v < n_values; v++)
        if (gathers[v] > 0 && gathers[v] == reads[v])
            st = convert_table(&o, v, dt, first[v], rep, err);
    free(reads);
    free(gathers);
    free(first);
    return st;
}

rt_status rt_compress_quantize_embeddings(rt_graph *g, rt_compress_report *rep, rt_error *err)
{
    return rt_compress_embeddings(g, RT_DTYPE_I8, rep, err);
}
