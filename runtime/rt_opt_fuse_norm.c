/* rt_opt_fuse_norm.c: fusions of normalization and GELU subgraphs:
 *   - the LayerNorm decomposition exporters emit below opset 17, ReduceMean, Sub, Pow (or
 *     Mul), ReduceMean, Add, Sqrt, Div, then optionally Mul(gamma) and Add(beta), over
 *     trailing axes -> LayerNormalization;
 *   - the erf and tanh forms of GELU -> infd.Gelu;
 *   - Add + LayerNormalization over the last axis -> infd.SkipLayerNorm. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_nn_params.h"
#include "rt_opt.h"

/* ---- LayerNorm ---- */

enum { LN_X, LN_MEAN, LN_D, LN_VAR, LN_EPS, LN_SLOTS };

#define LN_DIFF                                                                   \
    RT_PAT_OP2(SUB, RT_PAT_VAR(LN_X), RT_PAT_OP1(REDUCE_MEAN, RT_PAT_VAR(LN_X), LN_MEAN), LN_D)
#define LN_CORE(SQUARE)                                                           \
    RT_PAT_OP2(DIV, LN_DIFF,                                                      \
               RT_PAT_OP1(SQRT,                                                   \
                          RT_PAT_OP2(ADD, RT_PAT_OP1(REDUCE_MEAN, SQUARE, LN_VAR), \
                                     RT_PAT_SCALAR(NAN, LN_EPS), -1),             \
                          -1),                                                    \
               -1)

/* The core up to the Div: (x - mean) / sqrt(mean((x - mean)^2) + eps). */
static const rt_pat *const ln_cores[] = {
    LN_CORE(RT_PAT_OP2(POW, LN_DIFF, RT_PAT_SCALAR(2.0f, -1), -1)),
    LN_CORE(RT_PAT_OP2(MUL, LN_DIFF, LN_DIFF, -1)),
};

/* The first axis of the trailing axes ReduceMean node m reduces over x of rank `rank`
 * (keeping dims), or -1 if it reduces other axes. */
static int reduced_from(const rt_opt *o, int m, int rank)
{
    const rt_node *n = &o->g->nodes[m];
    int axes_v = rt_node_input(n, 1);
    const rt_tensor *axes = rt_opt_const(o, axes_v);
    if ((axes_v >= 0 && !axes) || rt_node_attr_int(n, "keepdims", 1) == 0)
        return -1;
    rt_tensor x = {.shape = {.rank = rank}};
    const rt_tensor *in[2] = {&x, axes};
    bool reduced[RT_MAX_RANK];
    rt_error scratch;
    if (rt_reduce_axes(n, in, axes ? 2 : 1, rank, reduced, &scratch) != RT_OK)
        return -1;
    int first = rank;
    while (first > 0 && reduced[first - 1])
        first--;
    for (int d = 0; d < first; d++)
        if (reduced[d])
            return -1;
    return first < rank ? first : -1;
}

/* Whether constant v is an affine parameter for normalized dims x[axis..]: F32, shape
 * the normalized dims (or a suffix, with 1s where it broadcasts), so that it never
 * widens the result. */
static bool affine_param(const rt_opt *o, int v, const rt_shape *x, int axis)
{
    const rt_tensor *t = rt_opt_const(o, v);
    if (!t || t->dtype != RT_DTYPE_F32 || t->shape.rank > x->rank - axis)
        return false;
    for (int i = 1; i <= t->shape.rank; i++) {
        int64_t d = t->shape.dims[t->shape.rank - i];
        if (d != 1 && d != x->dims[x->rank - i])
            return false;
    }
    return true;
}

/* The other operand of binary node n when one operand is v, or -1. */
static int other_operand(const rt_node *n, int v)
{
    if (n->n_inputs != 2)
        return -1;
    return n->inputs[0] == v ? n->inputs[1] : n->inputs[1] == v ? n->inputs[0] : -1;
}

/* Ones of the (static) normalized dims x[axis..], for a LayerNorm without gamma; -1 when
 * out of memory. */
static int ones_gamma(rt_opt *o, const rt_shape *x, int axis, const char *base, rt_error *err)
{
    rt_shape s = rt_shape_make(x->rank - axis, x->dims + axis);
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, err);
    if (!t)
        return -1;
    float *p = t->data;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        p[i] = 1.0f;
    return rt_opt_add_weight(o, base, t, err);
}

static rt_status try_layernorm(rt_opt *o, int div, bool *done, rt_error *err)
{
    rt_match m;
    int v = o->g->nodes[div].outputs[0];
    bool found = false;
    for (size_t p = 0; p < sizeof ln_cores / sizeof *ln_cores && !found; p++)
        found = rt_opt_match(o, ln_cores[p], v, &m);
    double eps;
    if (!found || !rt_opt_is_f32(o, m.slots[LN_X]) || !rt_opt_scalar(o, m.slots[LN_EPS], &eps) ||
        eps < 0)
        return RT_OK;
    const rt_opt_info *xi = rt_opt_get_info(o, m.slots[LN_X]);
    int rank = xi->shape.rank;
    int axis = reduced_from(o, rt_match_node(o, &m, LN_MEAN), rank);
    if (axis < 0 || reduced_from(o, rt_match_node(o, &m, LN_VAR), rank) != axis)
        return RT_OK;
    /* extend over Mul(gamma) and Add(beta) when the Div and Mul feed only them */
    int root = div, gamma = -1, beta = -1, c = rt_opt_single_consumer(o, v);
    if (c >= 0 && o->g->nodes[c].op == RT_OP_MUL &&
        affine_param(o, other_operand(&o->g->nodes[c], v), &xi->shape, axis)) {
        gamma = other_operand(&o->g->nodes[c], v);
        root = c;
        int w = o->g->nodes[c].outputs[0], a = rt_opt_single_consumer(o, w);
        if (a >= 0 && o->g->nodes[a].op == RT_OP_ADD &&
            affine_param(o, other_operand(&o->g->nodes[a], w), &xi->shape, axis)) {
            beta = other_operand(&o->g->nodes[a], w);
            root = a;
        }
    }
    /* an eps of higher rank than x would have widened the result */
    if (!rt_shape_equal(&rt_opt_get_info(o, o->g->nodes[root].outputs[0])->shape, &xi->shape))
        return RT_OK;
    for (int d = axis; gamma < 0 && d < rank; d++)
        if (xi->shape.dims[d] < 0)
            return RT_OK; /* ones of unknown size */
    if (gamma < 0 && (gamma = ones_gamma(o, &xi->shape, axis, o->g->nodes[div].name, err)) < 0)
        return RT_ERR_NOMEM;
    rt_attr *attrs = calloc(2, sizeof *attrs);
    if (!attrs || !rt_opt_attr_int(&attrs[0], "axis", axis) ||
        !rt_opt_attr_float(&attrs[1], "epsilon", (float)eps)) {
        rt_opt_attrs_free(attrs, 2);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing a LayerNorm");
    }
    int in[3] = {m.slots[LN_X], gamma, beta}, out = o->g->nodes[root].outputs[0];
    rt_opt_match_kill(o, &m);
    if (root != div)
        rt_opt_kill(o, div);
    if (beta >= 0)
        rt_opt_kill(o, c);
    rt_status st = rt_opt_replace_node(o, root, RT_OP_LAYER_NORMALIZATION, in, beta >= 0 ? 3 : 2,
                                       &out, 1, attrs, 2, err);
    o->rep->rewrites[RT_OPT_LAYER_NORM]++;
    *done = true;
    return st;
}

/* ---- GELU ---- */

enum { GELU_X };

#define G_X RT_PAT_VAR(GELU_X)
#define G_HALF RT_PAT_SCALAR(0.5f, -1)
#define G_ONE RT_PAT_SCALAR(1.0f, -1)
/* 0.5 x (1 + f(x)) written the three ways exporters do */
#define GELU_FORMS(E)                                                             \
    RT_PAT_OP2(MUL, RT_PAT_OP2(MUL, G_X, E, -1), G_HALF, -1),                     \
        RT_PAT_OP2(MUL, RT_PAT_OP2(MUL, G_X, G_HALF, -1), E, -1),                 \
        RT_PAT_OP2(MUL, G_X, RT_PAT_OP2(MUL, E, G_HALF, -1), -1)
#define ERF_TERM(SCALED) RT_PAT_OP2(ADD, RT_PAT_OP1(ERF, SCALED, -1), G_ONE, -1)
#define TANH_TERM(CUBE)                                                           \
    RT_PAT_OP2(ADD,                                                               \
               RT_PAT_OP1(TANH,                                                   \
                          RT_PAT_OP2(MUL,                                         \
                                     RT_PAT_OP2(ADD, G_X,                         \
                                                RT_PAT_OP2(MUL, CUBE,             \
                                                           RT_PAT_SCALAR(0.044715f, -1), -1), \
                                                -1),                              \
                                     RT_PAT_SCALAR(0.7978845608f, -1), -1),       \
                          -1),                                                    \
               G_ONE, -1)

static const rt_pat *const gelu_erf[] = {
    GELU_FORMS(ERF_TERM(RT_PAT_OP2(DIV, G_X, RT_PAT_SCALAR(1.4142135624f, -1), -1))),
    GELU_FORMS(ERF_TERM(RT_PAT_OP2(MUL, G_X, RT_PAT_SCALAR(0.7071067812f, -1), -1))),
};
static const rt_pat *const gelu_tanh[] = {
    GELU_FORMS(TANH_TERM(RT_PAT_OP2(POW, G_X, RT_PAT_SCALAR(3.0f, -1), -1))),
    GELU_FORMS(TANH_TERM(RT_PAT_OP2(MUL, G_X, RT_PAT_OP2(MUL, G_X, G_X, -1), -1))),
};

static rt_status try_gelu(rt_opt *o, int mul, bool *done, rt_error *err)
{
    static const struct {
        const rt_pat *const *pats;
        size_t n;
        const char *approx;
        rt_opt_rewrite counter;
    } forms[] = {
        {gelu_erf, sizeof gelu_erf / sizeof *gelu_erf, "none", RT_OPT_GELU_ERF},
        {gelu_tanh, sizeof gelu_tanh / sizeof *gelu_tanh, "tanh", RT_OPT_GELU_TANH},
    };
    int v = o->g->nodes[mul].outputs[0];
    rt_match m;
    for (size_t f = 0; f < sizeof forms / sizeof *forms; f++)
        for (size_t p = 0; p < forms[f].n; p++) {
            /* a constant of higher rank would have widened the result */
            if (!rt_opt_match(o, forms[f].pats[p], v, &m) || !rt_opt_is_f32(o, m.slots[GELU_X]) ||
                !rt_shape_equal(&rt_opt_get_info(o, v)->shape,
                                &rt_opt_get_info(o, m.slots[GELU_X])->shape))
                continue;
            rt_attr *attrs = calloc(1, sizeof *attrs);
            if (!attrs || !rt_opt_attr_string(&attrs[0], "approximate", forms[f].approx)) {
                rt_opt_attrs_free(attrs, 1);
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing a GELU");
            }
            rt_opt_match_kill(o, &m);
            o->rep->rewrites[forms[f].counter]++;
            *done = true;
            return rt_opt_replace_node(o, mul, RT_OP_GELU, &m.slots[GELU_X], 1, &v, 1, attrs, 1,
                                       err);
        }
    return RT_OK;
}

rt_status rt_opt_pass_norm(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        if (rt_opt_node_ok(o, i, 2) && o->g->nodes[i].op == RT_OP_DIV)
            st = try_layernorm(o, i, &done, err);
        else if (rt_opt_node_ok(o, i, 2) && o->g->nodes[i].op == RT_OP_MUL)
            st = try_gelu(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}

/* ---- Add + LayerNormalization ---- */

/* Whether shape s (after leading 1s) ends shape x. */
static bool shape_suffix(const rt_shape *s, const rt_shape *x)
{
    int lead = 0;
    while (lead < s->rank - 1 && s->dims[lead] == 1)
        lead++;
    if (s->rank < 1 || x->rank < 1 || s->rank - lead > x->rank)
        return false;
    for (int i = 1; i <= s->rank - lead; i++)
        if (s->dims[s->rank - i] != x->dims[x->rank - i])
            return false;
    return true;
}

/* A constant with as many F32 elements as the normalized last dim cols, or absent. */
static bool row_param(const rt_opt *o, int v, int64_t cols, bool optional)
{
    const rt_tensor *t = rt_opt_const(o, v);
    if (v < 0)
        return optional;
    return t && t->dtype == RT_DTYPE_F32 && rt_tensor_numel(t) == cols;
}

static rt_status try_skip_layernorm(rt_opt *o, int ln, bool *done, rt_error *err)
{
    const rt_node *n = &o->g->nodes[ln];
    int x = rt_node_input(n, 0), add = rt_opt_producer(o, x, RT_OP_ADD);
    const rt_opt_info *xi = rt_opt_get_info(o, x);
    if (add < 0 || !rt_opt_private_to(o, x, ln) || !rt_opt_is_f32(o, x) || xi->shape.rank < 1)
        return RT_OK;
    int rank = xi->shape.rank, axis = 0;
    int64_t cols = xi->shape.dims[rank - 1];
    rt_error scratch;
    if (rt_axis_normalize(n, rt_node_attr_int(n, "axis", -1), rank, false, &axis, &scratch) !=
            RT_OK ||
        axis != rank - 1 || cols < 0 || !row_param(o, rt_node_input(n, 1), cols, false) ||
        !row_param(o, rt_node_input(n, 2), cols, true))
        return RT_OK;
    for (int k = 1; k < n->n_outputs; k++) {
        int uses;
        rt_opt_uses(o, n->outputs[k], &uses);
        if (n->outputs[k] >= 0 && (uses || o->g->values[n->outputs[k]].is_output))
            return RT_OK;
    }
    const rt_node *a = &o->g->nodes[add];
    if (a->n_inputs != 2)
        return RT_OK;
    int u = a->inputs[0], s = a->inputs[1];
    if (!rt_shape_equal(&rt_opt_get_info(o, u)->shape, &xi->shape)) {
        u = a->inputs[1];
        s = a->inputs[0];
    }
    const rt_opt_info *ui = rt_opt_get_info(o, u), *si = rt_opt_get_info(o, s);
    if (!rt_shape_equal(&ui->shape, &xi->shape) || !rt_opt_is_f32(o, s) ||
        !shape_suffix(&si->shape, &xi->shape))
        return RT_OK;
    rt_attr *attrs = calloc(1, sizeof *attrs);
    float eps = rt_node_attr_float(n, "epsilon", 1e-5f);
    if (!attrs || !rt_opt_attr_float(&attrs[0], "epsilon", eps)) {
        rt_opt_attrs_free(attrs, 1);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing a SkipLayerNorm");
    }
    int in[4] = {u, s, n->inputs[1], rt_node_input(n, 2)}, out = n->outputs[0];
    rt_opt_kill(o, add);
    o->rep->rewrites[RT_OPT_SKIP_LAYER_NORM]++;
    *done = true;
    return rt_opt_replace_node(o, ln, RT_OP_SKIP_LAYER_NORM, in, in[3] >= 0 ? 4 : 3, &out, 1,
                               attrs, 1, err);
}

rt_status rt_opt_pass_skip_norm(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        if (rt_opt_node_ok(o, i, 2) && o->g->nodes[i].op == RT_OP_LAYER_NORMALIZATION)
            st = try_skip_layernorm(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}
