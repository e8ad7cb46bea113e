/* rt_opt_fuse_attention.c: the multi-head self-attention subgraph PyTorch exports -> one
 * infd.Attention node with one fused QKV projection (weights concatenated at load):
 *
 *   q, k, v = Linear(x) each, Reshape to (b, s, heads, d), Transpose to (b, heads, s, d)
 *             (k to (b, heads, d, s))
 *   p = Softmax(MatMul(q, k) / c  [or * c]  [+ mask])   over the last axis
 *   y = Reshape(Transpose(MatMul(p, v)), (b, s, heads * d))
 *
 * Shapes are checked with the static shapes of the optimizer (symbolic batch and
 * sequence), not the Reshape targets. The mask must broadcast to (b, 1, s or 1, s): a
 * mask per head is left alone. Runs after MatMul + Add -> Linear. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "rt_nn_params.h"
#include "rt_opt.h"

enum {
    A_X, A_QL, A_QR, A_QT, A_KL, A_KR, A_KT, A_VL, A_VR, A_VT,
    A_SCORES, A_SCALE, A_SCALED, A_MASK, A_PROBS, A_CTX, A_CTXT, A_OUT
};

#define HEADS(L, R, T)                                                                    \
    RT_PAT_OP1(TRANSPOSE, RT_PAT_OP1(RESHAPE, RT_PAT_OP1(LINEAR, RT_PAT_VAR(A_X), L), R), T)
#define SCORES RT_PAT_OP2(MATMUL, HEADS(A_QL, A_QR, A_QT), HEADS(A_KL, A_KR, A_KT), A_SCORES)
#define SCALED(OP) RT_PAT_OP2(OP, SCORES, RT_PAT_SCALAR(NAN, A_SCALE), A_SCALED)
#define MASKED(S) RT_PAT_OP2(ADD, S, RT_PAT_VAR(A_MASK), -1)
#define ATTENTION(S)                                                                      \
    RT_PAT_OP1(RESHAPE,                                                                   \
               RT_PAT_OP1(TRANSPOSE,                                                      \
                          RT_PAT_OP2(MATMUL, RT_PAT_OP1(SOFTMAX, S, A_PROBS),             \
                                     HEADS(A_VL, A_VR, A_VT), A_CTX),                     \
                          A_CTXT),                                                        \
               A_OUT)

static const rt_pat *const patterns[] = {
    ATTENTION(MASKED(SCALED(DIV))),
    ATTENTION(MASKED(SCALED(MUL))),
    ATTENTION(SCALED(DIV)),
    ATTENTION(SCALED(MUL)),
};

/* The geometry the checks agree on. */
typedef struct {
    int64_t b, s, hin, hidden, heads, d; /* b and s may be symbols (negative) */
} geometry;

static bool perm_is(const rt_node *n, const int64_t *want)
{
    int count;
    const int64_t *p = rt_node_attr_ints(n, "perm", &count);
    return p && count == 4 && memcmp(p, want, sizeof *p * 4) == 0;
}

static const int64_t *dims_of(const rt_opt *o, const rt_match *m, int slot, int rank)
{
    const rt_opt_info *i = rt_opt_get_info(o, m->slots[slot]);
    return i->shape.rank == rank ? i->shape.dims : NULL;
}

/* One of the Q, K, V branches: a Linear without activation by a constant F32 weight with
 * `hidden` outputs (and optional bias), split into heads of d by the Reshape, transposed
 * by perm. Sets g->hidden, heads and d from the first branch. */
static bool branch_ok(const rt_opt *o, const rt_match *m, int l, int r, int t, const int64_t *perm,
                      geometry *g)
{
    const rt_node *lin = &o->g->nodes[rt_match_node(o, m, l)];
    const rt_tensor *w = rt_opt_const(o, lin->inputs[1]);
    rt_act act;
    rt_error scratch;
    bool tb = rt_node_attr_int(lin, "trans_b", 0) != 0;
    if (!w || w->dtype != RT_DTYPE_F32 || rt_act_get(lin, &act, &scratch) != RT_OK ||
        act.kind != RT_ACT_NONE || w->shape.dims[tb ? 1 : 0] != g->hin)
        return false;
    int bias = rt_node_input(lin, 2);
    const int64_t *in = dims_of(o, m, l, 3), *out = dims_of(o, m, r, 4);
    if ((bias >= 0 && !rt_opt_const(o, bias)) || !in || !out ||
        !perm_is(&o->g->nodes[rt_match_node(o, m, t)], perm))
        return false;
    if (!g->heads) {
        g->hidden = in[2];
        g->heads = out[2];
        g->d = out[3];
    }
    return in[0] == g->b && in[1] == g->s && in[2] == g->hidden && out[0] == g->b &&
           out[1] == g->s && out[2] == g->heads && out[3] == g->d && g->heads > 0 && g->d > 0 &&
           g->heads * g->d == g->hidden;
}

/* The mask broadcasts to (b, 1, s or 1, s). */
static bool mask_ok(const rt_opt *o, int mask, const geometry *g)
{
    const rt_opt_info *i = rt_opt_get_info(o, mask);
    if (!rt_opt_is_f32(o, mask) || i->shape.rank > 4)
        return false;
    int64_t d[4] = {1, 1, 1, 1};
    for (int k = 0; k < i->shape.rank; k++)
        d[4 - i->shape.rank + k] = i->shape.dims[k];
    return (d[0] == 1 || d[0] == g->b) && d[1] == 1 && (d[2] == 1 || d[2] == g->s) && d[3] == g->s;
}

static bool checks(const rt_opt *o, const rt_match *m, geometry *g, float *scale)
{
    static const int64_t heads_perm[4] = {0, 2, 1, 3}, keys_perm[4] = {0, 2, 3, 1};
    const int64_t *x = dims_of(o, m, A_X, 3), *y = dims_of(o, m, A_OUT, 3);
    double c;
    if (!x || !y || !rt_opt_is_f32(o, m->slots[A_X]) || !rt_opt_scalar(o, m->slots[A_SCALE], &c) ||
        c == 0)
        return false;
    *g = (geometry){.b = x[0], .s = x[1], .hin = x[2]};
    if (!branch_ok(o, m, A_QL, A_QR, A_QT, heads_perm, g) ||
        !branch_ok(o, m, A_KL, A_KR, A_KT, keys_perm, g) ||
        !branch_ok(o, m, A_VL, A_VR, A_VT, heads_perm, g))
        return false;
    const rt_node *sm = &o->g->nodes[rt_match_node(o, m, A_PROBS)];
    int axis;
    rt_error scratch;
    if (rt_axis_normalize(sm, rt_node_attr_int(sm, "axis", sm->opset < 13 ? 1 : -1), 4, false,
                          &axis, &scratch) != RT_OK || axis != 3)
        return false;
    if (!perm_is(&o->g->nodes[rt_match_node(o, m, A_CTXT)], heads_perm) || y[0] != g->b ||
        y[1] != g->s || y[2] != g->hidden)
        return false;
    if (m->slots[A_MASK] >= 0 && !mask_ok(o, m->slots[A_MASK], g))
        return false;
    bool div = o->g->nodes[rt_match_node(o, m, A_SCALED)].op == RT_OP_DIV;
    *scale = (float)(div ? 1.0 / c : c);
    return true;
}

/* W (hin, 3 hidden) and B (3 hidden) from the three branches' Linears; *bias is -1 when
 * none of them has one. */
static rt_status qkv_weights(rt_opt *o, const rt_match *m, const geometry *g, int *wv, int *bv,
                             rt_error *err)
{
    const int lins[3] = {A_QL, A_KL, A_VL};
    int64_t h3 = 3 * g->hidden;
    rt_shape ws = rt_shape_make(2, (int64_t[]){g->hin, h3}), bs = rt_shape_make(1, &h3);
    rt_tensor *w = rt_tensor_create(RT_DTYPE_F32, &ws, err);
    rt_tensor *b = rt_tensor_create(RT_DTYPE_F32, &bs, err);
    if (!w || !b) {
        rt_tensor_free(w);
        rt_tensor_free(b);
        return RT_ERR_NOMEM;
    }
    float *wd = w->data, *bd = b->data;
    bool any_bias = false;
    for (int q = 0; q < 3; q++) {
        const rt_node *lin = &o->g->nodes[rt_match_node(o, m, lins[q])];
        const float *src = rt_opt_const(o, lin->inputs[1])->data;
        const rt_tensor *bias = rt_opt_const(o, rt_node_input(lin, 2));
        bool tb = rt_node_attr_int(lin, "trans_b", 0) != 0;
        for (int64_t i = 0; i < g->hin; i++)
            for (int64_t j = 0; j < g->hidden; j++)
                wd[i * h3 + q * g->hidden + j] = tb ? src[j * g->hin + i] : src[i * g->hidden + j];
        for (int64_t j = 0; j < g->hidden; j++)
            bd[q * g->hidden + j] = bias ? ((const float *)bias->data)[j] : 0.0f;
        any_bias = any_bias || bias;
    }
    const char *base = o->g->nodes[rt_match_node(o, m, A_QL)].name;
    *wv = rt_opt_add_weight(o, base, w, err);
    if (*wv < 0) {
        rt_tensor_free(b);
        return RT_ERR_NOMEM;
    }
    if (!any_bias) {
        rt_tensor_free(b);
        *bv = -1;
        return RT_OK;
    }
    *bv = rt_opt_add_weight(o, base, b, err);
    return *bv < 0 ? RT_ERR_NOMEM : RT_OK;
}

static rt_status try_attention(rt_opt *o, int i, bool *done, rt_error *err)
{
    rt_match m;
    geometry g;
    float scale;
    int v = o->g->nodes[i].outputs[0];
    for (size_t p = 0; p < sizeof patterns / sizeof *patterns; p++) {
        if (!rt_opt_match(o, patterns[p], v, &m) || !checks(o, &m, &g, &scale))
            continue;
        int w, b;
        rt_status st = qkv_weights(o, &m, &g, &w, &b, err);
        rt_attr *attrs = st == RT_OK ? calloc(2, sizeof *attrs) : NULL;
        if (!attrs || !rt_opt_attr_int(&attrs[0], "num_heads", g.heads) ||
            !rt_opt_attr_float(&attrs[1], "scale", scale)) {
            rt_opt_attrs_free(attrs, 2);
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing attention");
        }
        int in[4] = {m.slots[A_X], w, b, m.slots[A_MASK]};
        int n_in = in[3] >= 0 ? 4 : b >= 0 ? 3 : 2;
        rt_opt_match_kill(o, &m);
        o->rep->rewrites[RT_OPT_ATTENTION]++;
        *done = true;
        return rt_opt_replace_node(o, i, RT_OP_ATTENTION, in, n_in, &v, 1, attrs, 2, err);
    }
    return RT_OK;
}

rt_status rt_opt_pass_attention(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        if (rt_opt_node_ok(o, i, 1) && o->g->nodes[i].op == RT_OP_RESHAPE)
            st = try_attention(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}
