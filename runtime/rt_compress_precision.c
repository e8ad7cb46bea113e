/* rt_compress_precision.c: FP16 / BF16 weights. The weight W (input 1) of every Linear,
 * Attention and FusedConv (a plain Conv becomes a FusedConv with no activation, so its
 * weight counts too) is stored narrowed, converted once here at load; the kernels widen it
 * back to F32 a panel at a time as they compute (rt_cpu_gemm_bias_act, rt_nn_run), so
 * products accumulate in F32 and activations stay F32. Embedding tables become
 * infd.Embedding with a narrowed table (rt_compress_embed.c). Biases, norm parameters and
 * the other small weights stay F32, as do the weights of MatMul and Gemm nodes the
 * optimizer did not turn into Linear (their ONNX kernels take one dtype). A weight is
 * narrowed only when every node that reads it reads it as such a W. */
#include <stdlib.h>

#include "rt_compress.h"

/* Whether input k of node n is a W this pass may narrow. */
static bool narrowable_slot(const rt_node *n, int k)
{
    return k == 1 && (n->op == RT_OP_LINEAR || n->op == RT_OP_ATTENTION ||
                      n->op == RT_OP_FUSED_CONV || n->op == RT_OP_CONV);
}

/* Narrows weight v to dt in place. */
static rt_status narrow(rt_graph *g, int v, rt_dtype dt, rt_error *err)
{
    rt_value *val = &g->values[v];
    rt_tensor *t = rt_tensor_create(dt, &val->data->shape, NULL);
    if (!t)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory narrowing '%s' to %s", val->name,
                            rt_dtype_name(dt));
    rt_half_store(dt, val->data->data, t->data, rt_tensor_numel(t));
    rt_tensor_free(val->data);
    val->data = t;
    val->dtype = dt;
    return RT_OK;
}

rt_status rt_compress_precision(rt_graph *g, rt_precision p, rt_compress_report *rep,
                                rt_error *err)
{
    if (p != RT_PRECISION_FP16 && p != RT_PRECISION_BF16)
        return RT_OK;
    rt_dtype dt = p == RT_PRECISION_FP16 ? RT_DTYPE_F16 : RT_DTYPE_BF16;
    int *reads = rt_compress_reads(g), *slots = calloc((size_t)g->n_values + 1, sizeof(int));
    bool *narrowed = calloc((size_t)g->n_values + 1, sizeof(bool));
    rt_status st = reads && slots && narrowed ? RT_OK
                                              : rt_error_set(err, RT_ERR_NOMEM,
                                                             "out of memory narrowing weights");
    for (int i = 0; st == RT_OK && i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (narrowable_slot(&g->nodes[i], k) && g->nodes[i].inputs[k] >= 0)
                slots[g->nodes[i].inputs[k]]++;
    for (int i = 0; st == RT_OK && i < g->n_nodes; i++) {
        rt_node *n = &g->nodes[i];
        int w = rt_node_input(n, 1);
        if (!narrowable_slot(n, 1) || w < 0)
            continue;
        const rt_tensor *t = rt_compress_f32_weight(g, w);
        if (t && slots[w] == reads[w]) {
            size_t before = rt_tensor_nbytes(t);
            if ((st = narrow(g, w, dt, err)) != RT_OK)
                break;
            narrowed[w] = true;
            st = rt_compress_report_add(rep, n->name, rt_precision_name(p), before,
                                        rt_tensor_nbytes(g->values[w].data), err);
        }
        if (narrowed[w] && n->op == RT_OP_CONV) /* Conv takes one dtype, FusedConv a half W */
            n->op = RT_OP_FUSED_CONV;
    }
    free(reads);
    free(slots);
    free(narrowed);
    return st == RT_OK ? rt_compress_embeddings(g, dt, rep, err) : st;
}
