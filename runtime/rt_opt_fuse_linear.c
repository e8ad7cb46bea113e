/* rt_opt_fuse_linear.c: fusions around matrix products and convolutions:
 *   - MatMul by a constant 2-D weight, with the Add of a bias that follows, and Gemm with a
 *     constant B and a bias-shaped C -> infd.Linear (infd.QLinear when the weight is a QDQ
 *     model's dequantized INT8 constant, rt_opt_fuse_qdq.c);
 *   - inference BatchNormalization after a Conv or Linear -> folded into its weights;
 *   - Linear (or QLinear) or Conv followed by Relu, LeakyRelu, Sigmoid, Tanh, Clip or Gelu
 *     -> one Linear (QLinear) or infd.FusedConv applying the activation to its output. */
#include <math.h>
#include <float.h>
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "rt_opt.h"

static rt_status nomem(rt_error *err)
{
    return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing nodes");
}

static bool const_f32(const rt_opt *o, int v, int rank)
{
    const rt_tensor *t = rt_opt_const(o, v);
    return t && t->dtype == RT_DTYPE_F32 && (rank < 0 || t->shape.rank == rank);
}

/* Whether constant v is a bias of n elements for an output of rank `rank`: F32 with every
 * dim 1 but the last, n. */
static bool bias_like(const rt_opt *o, int v, int64_t n, int rank)
{
    const rt_tensor *t = rt_opt_const(o, v);
    if (!t || t->dtype != RT_DTYPE_F32 || t->shape.rank < 1 || t->shape.rank > rank ||
        t->shape.dims[t->shape.rank - 1] != n)
        return false;
    return rt_tensor_numel(t) == n;
}

/* ---- MatMul (+ Add) and Gemm -> Linear ---- */

static rt_status try_matmul(rt_opt *o, int i, bool *done, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    int a = n->inputs[0], w = n->inputs[1], y = n->outputs[0];
    const rt_opt_info *yi = rt_opt_get_info(o, y);
    int dq = const_f32(o, w, 2) ? -1 : rt_opt_qdq_weight(o, w, false);
    if (!rt_opt_is_f32(o, a) || (dq < 0 && !const_f32(o, w, 2)) || yi->shape.rank < 1)
        return RT_OK;
    int64_t cols = rt_opt_get_info(o, w)->shape.dims[1];
    int root = i, bias = -1, c = rt_opt_single_consumer(o, y);
    if (c >= 0 && o->g->nodes[c].op == RT_OP_ADD && o->g->nodes[c].n_inputs == 2) {
        const rt_node *add = &o->g->nodes[c];
        int other = add->inputs[0] == y ? add->inputs[1] : add->inputs[0];
        if (bias_like(o, other, cols, yi->shape.rank)) {
            bias = other;
            root = c;
            y = add->outputs[0];
        }
    }
    int in[3] = {a, w, bias};
    if (root != i)
        rt_opt_kill(o, i);
    *done = true;
    if (dq >= 0)
        return rt_opt_replace_qlinear(o, root, dq, false, a, bias, y, err);
    o->rep->rewrites[RT_OPT_LINEAR]++;
    return rt_opt_replace_node(o, root, RT_OP_LINEAR, in, bias >= 0 ? 3 : 2, &y, 1, NULL, 0, err);
}

static rt_status try_gemm(rt_opt *o, int i, bool *done, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    int a = n->inputs[0], w = n->inputs[1], c = rt_node_input(n, 2);
    bool tb = rt_node_attr_int(n, "transB", 0) != 0;
    int dq = const_f32(o, w, 2) ? -1 : rt_opt_qdq_weight(o, w, tb);
    if (rt_node_attr_int(n, "transA", 0) != 0 || rt_node_attr_float(n, "alpha", 1.0f) != 1.0f ||
        !rt_opt_is_f32(o, a) || rt_opt_get_info(o, a)->shape.rank != 2 ||
        (dq < 0 && !const_f32(o, w, 2)))
        return RT_OK;
    float beta = rt_node_attr_float(n, "beta", 1.0f);
    int64_t cols = rt_opt_get_info(o, w)->shape.dims[tb ? 0 : 1];
    if (beta == 0)
        c = -1;
    else if (c >= 0 && (beta != 1.0f || !bias_like(o, c, cols, 2)))
        return RT_OK;
    int y = n->outputs[0];
    if (dq >= 0) {
        *done = true;
        return rt_opt_replace_qlinear(o, i, dq, tb, a, c, y, err);
    }
    rt_attr *attrs = calloc(1, sizeof *attrs);
    if (!attrs || !rt_opt_attr_int(&attrs[0], "trans_b", tb)) {
        rt_opt_attrs_free(attrs, 1);
        return nomem(err);
    }
    int in[3] = {a, w, c};
    o->rep->rewrites[RT_OPT_LINEAR]++;
    *done = true;
    return rt_opt_replace_node(o, i, RT_OP_LINEAR, in, c >= 0 ? 3 : 2, &y, 1, attrs, 1, err);
}

/* ---- BatchNormalization folding ---- */

/* Sets input k of node n to v, growing the input list. */
static rt_status set_input(rt_node *n, int k, int v, rt_error *err)
{
    if (k >= n->n_inputs) {
        int *p = realloc(n->inputs, sizeof *p * (size_t)(k + 1));
        if (!p)
            return nomem(err);
        for (int j = n->n_inputs; j < k; j++)
            p[j] = -1;
        n->inputs = p;
        n->n_inputs = k + 1;
    }
    n->inputs[k] = v;
    return RT_OK;
}

/* The per-channel affine y = x * g + h of an inference BatchNormalization over c channels,
 * or false when n is not one (training mode, statistics outputs used, non-constant or
 * non-F32 parameters). */
static bool bn_affine(const rt_opt *o, const rt_node *n, int64_t c, double *g, double *h)
{
    if (n->n_inputs < 5 || (n->opset >= 14 && rt_node_attr_int(n, "training_mode", 0) != 0) ||
        rt_node_attr_int(n, "spatial", 1) == 0)
        return false;
    for (int k = 1; k < n->n_outputs; k++) {
        int uses;
        rt_opt_uses(o, n->outputs[k], &uses);
        if (n->outputs[k] >= 0 && (uses || o->g->values[n->outputs[k]].is_output))
            return false;
    }
    const float *p[4];
    for (int k = 0; k < 4; k++) {
        const rt_tensor *t = rt_opt_const(o, n->inputs[k + 1]);
        if (!t || t->dtype != RT_DTYPE_F32 || rt_tensor_numel(t) != c)
            return false;
        p[k] = t->data;
    }
    double eps = rt_node_attr_float(n, "epsilon", 1e-5f);
    for (int64_t ch = 0; ch < c; ch++) {
        g[ch] = p[0][ch] / sqrt((double)p[3][ch] + eps);
        h[ch] = p[1][ch] - p[2][ch] * g[ch];
    }
    return true;
}

/* New weight and bias for producer p (Conv or Linear) with the affine folded in: channel
 * ch of the output is scaled by g[ch] and shifted by h[ch]. */
static rt_status fold_affine(rt_opt *o, int p, const double *g, const double *h, int64_t c,
                             rt_error *err)
{
    rt_node *n = &o->g->nodes[p];
    const rt_tensor *w = rt_opt_const(o, n->inputs[1]), *b = rt_opt_const(o, rt_node_input(n, 2));
    rt_tensor *nw = rt_tensor_clone(w, err);
    rt_shape bs = rt_shape_make(1, &c);
    rt_tensor *nb = rt_tensor_create(RT_DTYPE_F32, &bs, err);
    if (!nw || !nb) {
        rt_tensor_free(nw);
        rt_tensor_free(nb);
        return nomem(err);
    }
    float *wd = nw->data, *bd = nb->data;
    int64_t total = rt_tensor_numel(nw);
    /* a Conv weight and a transposed Linear weight have a channel per row, a Linear
     * weight (K, N) one per column */
    bool per_column = n->op == RT_OP_LINEAR && rt_node_attr_int(n, "trans_b", 0) == 0;
    for (int64_t i = 0; i < total; i++) {
        int64_t ch = per_column ? i % c : i / (total / c);
        wd[i] = (float)(wd[i] * g[ch]);
    }
    for (int64_t ch = 0; ch < c; ch++) {
        double old = b ? ((const float *)b->data)[ch] : 0.0;
        bd[ch] = (float)(old * g[ch] + h[ch]);
    }
    int wv = rt_opt_add_weight(o, o->g->values[n->inputs[1]].name, nw, err);
    int bv = wv < 0 ? -1 : rt_opt_add_weight(o, n->name, nb, err);
    if (wv < 0) {
        rt_tensor_free(nb);
        return nomem(err);
    }
    if (bv < 0)
        return nomem(err);
    n = &o->g->nodes[p];
    n->inputs[1] = wv;
    return set_input(n, 2, bv, err);
}

static rt_status try_batchnorm(rt_opt *o, int i, bool *done, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    int x = n->inputs[0];
    int p = rt_opt_producer(o, x, RT_OP_COUNT);
    const rt_opt_info *xi = rt_opt_get_info(o, x);
    if (p < 0 || !rt_opt_private_to(o, x, i) || !rt_opt_is_f32(o, x) || xi->shape.rank < 2)
        return RT_OK;
    const rt_node *pn = &o->g->nodes[p];
    const rt_tensor *w = rt_opt_const(o, rt_node_input(pn, 1));
    int b = rt_node_input(pn, 2);
    rt_act act = {0};
    rt_error scratch;
    bool conv = pn->op == RT_OP_CONV;
    bool linear = pn->op == RT_OP_LINEAR && xi->shape.rank == 2 &&
                  rt_act_get(pn, &act, &scratch) == RT_OK && act.kind == RT_ACT_NONE;
    if ((!conv && !linear) || !w || w->dtype != RT_DTYPE_F32 || (b >= 0 && !const_f32(o, b, 1)))
        return RT_OK;
    int64_t c = xi->shape.dims[1];
    bool tb = rt_node_attr_int(pn, "trans_b", 0) != 0;
    if (c < 1 || c != w->shape.dims[conv || tb ? 0 : 1])
        return RT_OK;
    double *g = malloc(sizeof *g * 2 * (size_t)c);
    if (!g)
        return nomem(err);
    rt_status st = RT_OK;
    if (bn_affine(o, n, c, g, g + c)) {
        st = fold_affine(o, p, g, g + c, c, err);
        if (st == RT_OK) {
            o->g->nodes[p].outputs[0] = o->g->nodes[i].outputs[0];
            rt_opt_kill(o, i);
            o->rep->rewrites[conv ? RT_OPT_BATCHNORM_CONV : RT_OPT_BATCHNORM_LINEAR]++;
            *done = true;
        }
    }
    free(g);
    return st;
}

rt_status rt_opt_pass_linear(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        rt_op op = o->g->nodes[i].op;
        if (op == RT_OP_MATMUL && rt_opt_node_ok(o, i, 2))
            st = try_matmul(o, i, &done, err);
        else if (op == RT_OP_GEMM && rt_opt_node_ok(o, i, 2))
            st = try_gemm(o, i, &done, err);
        else if (op == RT_OP_BATCH_NORMALIZATION && rt_opt_node_ok(o, i, 5))
            st = try_batchnorm(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}

/* ---- activations ---- */

bool rt_opt_activation(const rt_opt *o, const rt_node *n, rt_act *act)
{
    *act = (rt_act){.kind = RT_ACT_NONE, .lo = -INFINITY, .hi = INFINITY};
    double v;
    switch (n->op) {
    case RT_OP_RELU: act->kind = RT_ACT_RELU; return true;
    case RT_OP_SIGMOID: act->kind = RT_ACT_SIGMOID; return true;
    case RT_OP_TANH: act->kind = RT_ACT_TANH; return true;
    case RT_OP_LEAKY_RELU:
        act->kind = RT_ACT_LEAKY_RELU;
        act->alpha = rt_node_attr_float(n, "alpha", 0.01f);
        return true;
    case RT_OP_GELU:
        act->kind = strcmp(rt_node_attr_string(n, "approximate", "none"), "tanh") == 0
                        ? RT_ACT_GELU_TANH : RT_ACT_GELU;
        return true;
    case RT_OP_CLIP:
        act->kind = RT_ACT_CLIP;
        if (n->opset < 11 || rt_node_attr(n, "min") || rt_node_attr(n, "max")) {
            act->lo = rt_node_attr_float(n, "min", -FLT_MAX);
            act->hi = rt_node_attr_float(n, "max", FLT_MAX);
            return true;
        }
        for (int k = 1; k < 3; k++) {
            int b = rt_node_input(n, k);
            if (b < 0)
                continue;
            if (!const_f32(o, b, -1) || !rt_opt_scalar(o, b, &v))
                return false;
            *(k == 1 ? &act->lo : &act->hi) = (float)v;
        }
        return true;
    default:
        return false;
    }
}

/* The producer's attributes plus the activation's, for the rewritten producer. */
static rt_attr *with_activation(const rt_node *p, const rt_act *act, int *n_attrs)
{
    int n = p->n_attrs;
    rt_attr *a = calloc((size_t)n + 4, sizeof *a);
    bool ok = a != NULL;
    for (int k = 0; ok && k < n; k++)
        ok = rt_opt_attr_copy(&a[k], &p->attrs[k]);
    ok = ok && rt_opt_attr_string(&a[n++], "activation", rt_act_name(act->kind));
    if (ok && act->kind == RT_ACT_LEAKY_RELU)
        ok = rt_opt_attr_float(&a[n++], "activation_alpha", act->alpha);
    if (ok && act->kind == RT_ACT_CLIP)
        ok = rt_opt_attr_float(&a[n++], "activation_min", act->lo) &&
             rt_opt_attr_float(&a[n++], "activation_max", act->hi);
    if (!ok) {
        rt_opt_attrs_free(a, p->n_attrs + 4);
        return NULL;
    }
    *n_attrs = n;
    return a;
}

static rt_status try_activation(rt_opt *o, int i, bool *done, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    rt_act act, prev;
    int x = rt_node_input(n, 0), p = rt_opt_producer(o, x, RT_OP_COUNT);
    rt_error scratch;
    if (p < 0 || !rt_opt_private_to(o, x, i) || !rt_opt_is_f32(o, x) ||
        !rt_opt_activation(o, n, &act))
        return RT_OK;
    const rt_node *pn = &o->g->nodes[p];
    bool linear = pn->op == RT_OP_LINEAR || pn->op == RT_OP_QLINEAR;
    if ((!linear && pn->op != RT_OP_CONV) || pn->n_inputs < 2 || pn->n_inputs > 4)
        return RT_OK;
    if (linear && (rt_act_get(pn, &prev, &scratch) != RT_OK || prev.kind != RT_ACT_NONE))
        return RT_OK;
    int n_attrs;
    rt_attr *attrs = with_activation(pn, &act, &n_attrs);
    if (!attrs)
        return nomem(err);
    int y = n->outputs[0], n_in = pn->n_inputs, in[4];
    memcpy(in, pn->inputs, sizeof *in * (size_t)n_in);
    while (n_in > 2 && in[n_in - 1] < 0) /* an omitted trailing bias */
        n_in--;
    rt_opt_kill(o, i);
    o->rep->rewrites[linear ? RT_OPT_LINEAR_ACTIVATION : RT_OPT_CONV_ACTIVATION]++;
    *done = true;
    return rt_opt_replace_node(o, p, linear ? pn->op : RT_OP_FUSED_CONV, in, n_in, &y, 1, attrs,
                               n_attrs, err);
}

rt_status rt_opt_pass_activation(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        if (rt_opt_node_ok(o, i, 1))
            st = try_activation(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}
