/* rt_compress_quant.c: INT8 quantization of Linear and Attention weights (rt_compress.h):
 * each weight big enough to gain becomes INT8 with one F32 scale per output channel
 * (symmetric: the channel's largest |w| maps to 127), and its node becomes infd.QLinear or
 * infd.QAttention (rt_fused.h) with mode "weight_only" or "dynamic" (W8A8). A weight read
 * by several nodes is quantized once. The weight-only QLinears of a QDQ model (INT8
 * already) become dynamic under W8A8. The F32 weights left unread are dropped afterwards
 * by rt_compress. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_compress.h"
#include "rt_fused.h"
#include "rt_opt.h"

/* Below these a weight stays F32: tiny weights save nothing worth the quantized kernel's
 * per-call work (quantizing rows of X, summing W), and a short reduction dim makes that
 * work as large as the multiply. */
#define MIN_ELEMS 1024
#define MIN_K 16

void rt_quantize_i8_rows(const float *src, int64_t rows, int64_t cols, bool transposed,
                         int8_t *q, float *scale)
{
    for (int64_t r = 0; r < rows; r++) {
        /* element c of output row r */
        int64_t at = transposed ? r : r * cols, step = transposed ? rows : 1;
        float amax = 0;
        for (int64_t c = 0; c < cols; c++) {
            float v = fabsf(src[at + c * step]);
            amax = v > amax ? v : amax;
        }
        float s = amax > 0 ? amax / 127.0f : 1.0f, inv = 1.0f / s;
        for (int64_t c = 0; c < cols; c++) {
            float v = nearbyintf(src[at + c * step] * inv);
            q[r * cols + c] = (int8_t)(v > 127 ? 127 : v < -127 ? -127 : v);
        }
        scale[r] = s;
    }
}

/* The quantized pair of one F32 weight: values wq (I8, channels x k) and ws (F32 scales). */
typedef struct {
    int wq, ws;
    bool transposed; /* how the F32 weight was read */
} qweight;

/* Quantizes weight v, read with its output channels as rows (transposed: as columns), into
 * new weights; cache[v] keeps them for the next reader. */
static rt_status quantize_weight(rt_opt *o, int v, bool transposed, qweight *cache,
                                 qweight *out, rt_error *err)
{
    if (cache[v].wq >= 0 && cache[v].transposed == transposed) {
        *out = cache[v];
        return RT_OK;
    }
    const rt_value *val = &o->g->values[v];
    const rt_tensor *w = val->data;
    int64_t rows = w->shape.dims[transposed ? 1 : 0], cols = w->shape.dims[transposed ? 0 : 1];
    rt_shape qs = {.rank = 2, .dims = {rows, cols}}, ss = {.rank = 1, .dims = {rows}};
    rt_tensor *q = rt_tensor_create(RT_DTYPE_I8, &qs, err);
    rt_tensor *s = q ? rt_tensor_create(RT_DTYPE_F32, &ss, err) : NULL;
    if (!s) {
        rt_tensor_free(q);
        return err ? err->status : RT_ERR_NOMEM;
    }
    rt_quantize_i8_rows(w->data, rows, cols, transposed, q->data, s->data);
    char *base = strdup(val->name); /* val moves when values grow */
    if (!base) {
        rt_tensor_free(q);
        rt_tensor_free(s);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory quantizing a weight");
    }
    out->transposed = transposed;
    out->wq = rt_opt_add_weight(o, base, q, err);
    out->ws = out->wq < 0 ? -1 : rt_opt_add_weight(o, base, s, err);
    free(base);
    if (out->ws < 0)
        return err ? err->status : RT_ERR_NOMEM;
    cache[v] = *out;
    return RT_OK;
}

/* The F32 2-D weight at input 1 of node n that is worth quantizing, or NULL. k is the
 * reduction dim: W's rows, or its columns with trans_b. */
static const rt_tensor *eligible(const rt_graph *g, const rt_node *n, bool trans_b)
{
    int v = rt_node_input(n, 1);
    if (v < 0 || g->values[v].kind != RT_VALUE_WEIGHT || !g->values[v].data)
        return NULL;
    const rt_tensor *w = g->values[v].data;
    if (w->dtype != RT_DTYPE_F32 || w->shape.rank != 2)
        return NULL;
    int64_t k = w->shape.dims[trans_b ? 1 : 0];
    return rt_tensor_numel(w) >= MIN_ELEMS && k >= MIN_K && rt_compress_all_finite(w) ? w : NULL;
}

/* Bytes of the weights node n reads. */
static size_t node_weight_bytes(const rt_graph *g, const rt_node *n)
{
    size_t bytes = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        if (v >= 0 && g->values[v].kind == RT_VALUE_WEIGHT && g->values[v].data)
            bytes += rt_tensor_nbytes(g->values[v].data);
    }
    return bytes;
}

/* Rewrites node i (Linear or Attention) into its INT8 op: W replaced by (Wq, S), the
 * attributes kept but trans_b (the INT8 weight has one fixed layout), mode added. */
static rt_status rewrite(rt_opt *o, int i, const qweight *qw, rt_qmode mode, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    bool attn = n->op == RT_OP_ATTENTION;
    int in[6], n_in = 0;
    in[n_in++] = n->inputs[0];
    in[n_in++] = qw->wq;
    in[n_in++] = qw->ws;
    for (int k = 2; k < n->n_inputs && k < 4; k++)
        in[n_in++] = n->inputs[k];
    int n_attrs;
    rt_attr *attrs = rt_opt_attrs_copy_except(n, "trans_b", 1, &n_attrs);
    if (!attrs || !rt_opt_attr_string(&attrs[n_attrs++], "mode", rt_qmode_name(mode))) {
        rt_opt_attrs_free(attrs, n_attrs);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory quantizing node '%s'", n->name);
    }
    int out = n->outputs[0];
    return rt_opt_replace_node(o, i, attn ? RT_OP_QATTENTION : RT_OP_QLINEAR, in, n_in, &out, 1,
                               attrs, n_attrs, err);
}

/* A weight-only QLinear (a QDQ model's, rt_opt_fuse_qdq.c) switched to dynamic W8A8. */
static rt_status to_dynamic(rt_node *n, rt_error *err)
{
    for (int a = 0; a < n->n_attrs; a++)
        if (strcmp(n->attrs[a].name, "mode") == 0 && n->attrs[a].type == RT_ATTR_STRING) {
            rt_attr mode;
            if (!rt_opt_attr_string(&mode, "mode", rt_qmode_name(RT_QMODE_DYNAMIC))) {
                rt_attr_clear(&mode);
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory quantizing '%s'", n->name);
            }
            rt_attr_clear(&n->attrs[a]);
            n->attrs[a] = mode;
        }
    return RT_OK;
}

rt_status rt_compress_quantize(rt_graph *g, rt_quant mode, rt_compress_report *rep,
                               rt_error *err)
{
    if (mode == RT_QUANT_NONE)
        return RT_OK;
    rt_qmode qmode = mode == RT_QUANT_INT8 ? RT_QMODE_DYNAMIC : RT_QMODE_WEIGHT_ONLY;
    const char *technique = mode == RT_QUANT_INT8 ? "int8_w8a8" : "int8_weight_only";
    rt_opt o = {.g = g};
    int n_values = g->n_values; /* the weights added here are never quantized again */
    qweight *cache = malloc(sizeof *cache * (size_t)(n_values ? n_values : 1));
    if (!cache)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory quantizing the graph");
    for (int v = 0; v < n_values; v++)
        cache[v] = (qweight){-1, -1, false};
    rt_status st = RT_OK;
    for (int i = 0; i < g->n_nodes && st == RT_OK; i++) {
        rt_node *n = &g->nodes[i];
        rt_qmode was;
        if (n->op == RT_OP_QLINEAR && qmode == RT_QMODE_DYNAMIC &&
            rt_qmode_get(n, &was, NULL) == RT_OK && was == RT_QMODE_WEIGHT_ONLY) {
            size_t bytes = node_weight_bytes(g, n);
            st = to_dynamic(n, err);
            if (st == RT_OK)
                st = rt_compress_report_add(rep, n->name, technique, bytes, bytes, err);
            continue;
        }
        bool linear = n->op == RT_OP_LINEAR, attn = n->op == RT_OP_ATTENTION;
        if ((!linear && !attn) || n->n_outputs != 1 || n->n_inputs < 2)
            continue;
        /* Linear's W is (K, N), or (N, K) with trans_b; Attention's (hidden_in, h3) */
        bool trans_b = linear && rt_node_attr_int(n, "trans_b", 0) != 0;
        if (!eligible(g, n, trans_b))
            continue;
        size_t before = node_weight_bytes(g, n);
        qweight qw;
        st = quantize_weight(&o, n->inputs[1], !trans_b, cache, &qw, err);
        if (st == RT_OK)
            st = rewrite(&o, i, &qw, qmode, err);
        if (st == RT_OK)
            st = rt_compress_report_add(rep, g->nodes[i].name, technique, before,
                                        node_weight_bytes(g, &g->nodes[i]), err);
    }
    free(cache);
    return st;
}
