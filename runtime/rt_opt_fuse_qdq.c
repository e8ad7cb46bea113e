/* rt_opt_fuse_qdq.c: the weights of QDQ models. A DequantizeLinear of a constant INT8
 * weight (per-tensor or per-output-channel scales, zero point 0; UINT8 with zero point 128
 * is the same values shifted) that a MatMul or Gemm multiplies by is kept out of constant
 * folding, and the Linear rewrite (rt_opt_fuse_linear.c) turns the product into an
 * infd.QLinear in weight-only mode (rt_fused.h) holding the weight as INT8, one byte per
 * element, instead of an F32 constant four times its size. */
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "rt_op_shape.h"
#include "rt_opt.h"
#include "rt_qdq.h"

int rt_opt_qdq_weight(const rt_opt *o, int v, bool trans_b)
{
    int d = rt_opt_producer(o, v, RT_OP_DEQUANTIZE_LINEAR);
    if (d < 0 || !rt_opt_node_ok(o, d, 2) || o->g->values[v].is_output)
        return -1;
    const rt_node *n = &o->g->nodes[d];
    int zv = rt_node_input(n, 2);
    const rt_tensor *q = rt_opt_const(o, n->inputs[0]), *s = rt_opt_const(o, n->inputs[1]);
    const rt_tensor *z = zv >= 0 ? rt_opt_const(o, zv) : NULL;
    if (!q || !s || (zv >= 0 && !z) || q->shape.rank != 2 ||
        (q->dtype != RT_DTYPE_I8 && q->dtype != RT_DTYPE_U8))
        return -1;
    rt_qdq p;
    rt_error ignored;
    int axis;
    if (rt_qdq_resolve(n, q, s, z, &p, &ignored) != RT_OK ||
        rt_axis_resolve(rt_node_attr_int(n, "axis", 1), 2, "axis", &axis, &ignored) != RT_OK)
        return -1;
    if (p.channels > 1 && axis != (trans_b ? 0 : 1)) /* scales along the reduction dim */
        return -1;
    int64_t offset = q->dtype == RT_DTYPE_U8 ? 128 : 0;
    bool zp_ok = z ? true : offset == 0;
    for (int64_t c = 0; z && c < rt_tensor_numel(z); c++)
        zp_ok = zp_ok && rt_dtype_load_i64(z->dtype, z->data, (size_t)c) == offset;
    return zp_ok ? d : -1;
}

bool rt_opt_qdq_kept(const rt_opt *o, const rt_node *n)
{
    if (n->op != RT_OP_DEQUANTIZE_LINEAR || n->n_outputs < 1 || n->outputs[0] < 0)
        return false;
    int v = n->outputs[0], c = rt_opt_single_consumer(o, v);
    if (c < 0)
        return false;
    const rt_node *cn = &o->g->nodes[c];
    if ((cn->op != RT_OP_MATMUL && cn->op != RT_OP_GEMM) || rt_node_input(cn, 1) != v)
        return false;
    if (cn->op == RT_OP_GEMM && (rt_node_attr_int(cn, "transA", 0) != 0 ||
                                 rt_node_attr_float(cn, "alpha", 1.0f) != 1.0f))
        return false; /* no Linear form: folded to F32 as any constant */
    bool trans_b = cn->op == RT_OP_GEMM && rt_node_attr_int(cn, "transB", 0) != 0;
    return rt_opt_qdq_weight(o, v, trans_b) >= 0;
}

/* QLinear's weight (N, K), I8, and scales (N), F32, from DequantizeLinear node d of a
 * weight (K, N), or (N, K) when trans_b: new weights in *w and *s. */
static rt_status qlinear_weights(rt_opt *o, int d, bool trans_b, int *w, int *s, rt_error *err)
{
    const rt_node *n = &o->g->nodes[d];
    const rt_tensor *q = rt_opt_const(o, n->inputs[0]), *sc = rt_opt_const(o, n->inputs[1]);
    int64_t rows = q->shape.dims[0], cols = q->shape.dims[1];
    int64_t out = trans_b ? rows : cols, k = trans_b ? cols : rows;
    rt_shape ws = rt_shape_make(2, (int64_t[]){out, k}), ss = rt_shape_make(1, &out);
    rt_tensor *wt = rt_tensor_create(RT_DTYPE_I8, &ws, NULL);
    rt_tensor *st = rt_tensor_create(RT_DTYPE_F32, &ss, NULL);
    if (!wt || !st) {
        rt_tensor_free(wt);
        rt_tensor_free(st);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory converting a QDQ weight");
    }
    int offset = q->dtype == RT_DTYPE_U8 ? 128 : 0;
    int8_t *dst = wt->data;
    for (int64_t j = 0; j < out; j++)
        for (int64_t p = 0; p < k; p++) {
            size_t src = (size_t)(trans_b ? j * k + p : p * out + j);
            int v = q->dtype == RT_DTYPE_U8 ? ((const uint8_t *)q->data)[src]
                                            : ((const int8_t *)q->data)[src];
            dst[j * k + p] = (int8_t)(v - offset);
        }
    int64_t n_scales = rt_tensor_numel(sc);
    for (int64_t j = 0; j < out; j++)
        ((float *)st->data)[j] = ((const float *)sc->data)[n_scales > 1 ? j : 0];
    const char *base = o->g->values[n->inputs[0]].name;
    if ((*w = rt_opt_add_weight(o, base, wt, err)) < 0) {
        rt_tensor_free(st);
        return RT_ERR_NOMEM;
    }
    return (*s = rt_opt_add_weight(o, base, st, err)) < 0 ? RT_ERR_NOMEM : RT_OK;
}

rt_status rt_opt_replace_qlinear(rt_opt *o, int at, int dq, bool trans_b, int x, int bias,
                                 int y, rt_error *err)
{
    int w = -1, s = -1;
    rt_status st = qlinear_weights(o, dq, trans_b, &w, &s, err);
    if (st != RT_OK)
        return st;
    rt_attr *attrs = calloc(1, sizeof *attrs);
    if (!attrs || !rt_opt_attr_string(&attrs[0], "mode", rt_qmode_name(RT_QMODE_WEIGHT_ONLY))) {
        rt_opt_attrs_free(attrs, 1);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory converting a QDQ weight");
    }
    int in[4] = {x, w, s, bias};
    o->rep->rewrites[RT_OPT_QDQ_LINEAR]++;
    return rt_opt_replace_node(o, at, RT_OP_QLINEAR, in, bias >= 0 ? 4 : 3, &y, 1, attrs, 1,
                               err);
}
