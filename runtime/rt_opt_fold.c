/* rt_opt_fold.c: the folding pass and dead-node removal.
 *
 * Folding walks the nodes in order: Identity and inference-mode Dropout are bypassed; a
 * node whose inputs are all constants is computed once by its CPU kernel and its outputs
 * become weights; a node whose outputs static shape inference knows completely (Shape of a
 * tensor with static dims, and the Gather / Unsqueeze / Concat built on it) becomes those
 * constants; and a Reshape whose target is computed from a dynamic shape gets a constant
 * target with 0 (copy the input's dim) or -1 (infer it) in place of the unknown entries.
 * Two Transposes in a row become one (none if they cancel out), as some exporters write the
 * transposed keys of attention. */
#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"

/* Folding does not make weights larger than this unless the inputs already were. */
#define FOLD_MAX_BYTES (1u << 20)

/* ---- Identity and Dropout ---- */

/* Dropout is the identity unless training_mode may be true or its mask is used. */
static bool dropout_is_identity(const rt_opt *o, const rt_node *n)
{
    int training = rt_node_input(n, 2);
    double t;
    if (training >= 0 && !(rt_opt_scalar(o, training, &t) && t == 0))
        return false;
    if (n->n_outputs > 1 && n->outputs[1] >= 0) {
        int uses;
        rt_opt_uses(o, n->outputs[1], &uses);
        if (uses || o->g->values[n->outputs[1]].is_output)
            return false;
    }
    return true;
}

/* Removes node i, which copies x to y, by making y's readers read x; when y is a graph
 * output, x's producer writes y instead (unless x is also needed under its own name). */
static rt_status bypass(rt_opt *o, int i, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    int x = rt_node_input(n, 0), y = n->outputs[0];
    if (x < 0)
        return RT_OK;
    if (!o->g->values[y].is_output) {
        rt_opt_kill(o, i);
        rt_opt_replace_uses(o, y, x);
    } else {
        int p = rt_opt_producer(o, x, RT_OP_COUNT);
        if (p < 0 || o->g->values[x].is_output)
            return RT_OK;
        rt_node *pn = &o->g->nodes[p];
        for (int k = 0; k < pn->n_outputs; k++)
            if (pn->outputs[k] == x)
                pn->outputs[k] = y;
        rt_opt_kill(o, i);
        rt_opt_replace_uses(o, x, y);
    }
    o->rep->rewrites[n->op == RT_OP_IDENTITY ? RT_OPT_IDENTITY : RT_OPT_DROPOUT]++;
    return rt_opt_index(o, err);
}

static rt_status remove_copies(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        const rt_node *n = &o->g->nodes[i];
        if (rt_opt_node_ok(o, i, 1) &&
            (n->op == RT_OP_IDENTITY || (n->op == RT_OP_DROPOUT && dropout_is_identity(o, n))))
            st = bypass(o, i, err);
    }
    return st;
}

/* ---- constants ---- */

/* Makes the outputs of node i the given tensors (taken over) and removes the node. */
static void make_consts(rt_opt *o, int i, rt_tensor **outs)
{
    const rt_node *n = &o->g->nodes[i];
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0) {
            rt_opt_make_const(o, n->outputs[k], outs[k]);
            rt_opt_info_set_const(o, n->outputs[k]);
        }
    rt_opt_kill(o, i);
    o->rep->rewrites[RT_OPT_CONSTANT_FOLD]++;
}

/* Whether node i can be computed at load: all inputs constant, a deterministic op, and
 * outputs (already inferred) that do not blow up the model; not the dequantization of a
 * weight that the Linear rewrite keeps as INT8 (rt_opt_fuse_qdq.c). */
static bool foldable(const rt_opt *o, const rt_node *n)
{
    if (n->op == RT_OP_DROPOUT || rt_opt_qdq_kept(o, n))
        return false;
    size_t in_bytes = 0, out_bytes = 0;
    for (int k = 0; k < n->n_inputs; k++) {
        if (n->inputs[k] < 0)
            continue;
        const rt_tensor *t = rt_opt_const(o, n->inputs[k]);
        if (!t)
            return false;
        in_bytes += rt_tensor_nbytes(t);
    }
    for (int k = 0; k < n->n_outputs; k++) {
        const rt_opt_info *info = rt_opt_get_info(o, n->outputs[k]);
        int64_t cnt = rt_shape_numel(&info->shape);
        if (n->outputs[k] < 0)
            continue;
        if (info->shape.rank < 0 || cnt < 0 || !rt_dtype_valid(info->dtype))
            return false;
        out_bytes += (size_t)cnt * rt_dtype_size(info->dtype);
    }
    return out_bytes <= (in_bytes > FOLD_MAX_BYTES ? in_bytes : FOLD_MAX_BYTES);
}

static rt_status fold_by_kernel(rt_opt *o, int i, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    const rt_tensor *in[64];
    rt_tensor *outs[64];
    if (n->n_inputs > 64 || n->n_outputs > 64)
        return RT_OK;
    for (int k = 0; k < n->n_inputs; k++)
        in[k] = n->inputs[k] >= 0 ? rt_opt_const(o, n->inputs[k]) : NULL;
    rt_error scratch;
    rt_status st = rt_opt_run_node(o, n, in, outs, &scratch);
    if (st == RT_ERR_NOMEM)
        return rt_error_set(err, st, "%s", scratch.text);
    if (st == RT_OK) /* otherwise the error surfaces when the model runs */
        make_consts(o, i, outs);
    return RT_OK;
}

/* Node i's outputs are small integer tensors whose elements shape inference knows. */
static rt_status fold_known(rt_opt *o, int i, rt_error *err)
{
    const rt_node *n = &o->g->nodes[i];
    rt_tensor *outs[RT_OPT_DATA_MAX] = {0};
    if (n->n_outputs > RT_OPT_DATA_MAX)
        return RT_OK;
    for (int k = 0; k < n->n_outputs; k++) {
        const rt_opt_info *info = rt_opt_get_info(o, n->outputs[k]);
        if (n->outputs[k] < 0)
            continue;
        bool known = info->n_data >= 0;
        for (int e = 0; known && e < info->n_data; e++)
            known = info->data_sym[e] == 0;
        if (!known)
            return RT_OK;
    }
    rt_status st = RT_OK;
    for (int k = 0; st == RT_OK && k < n->n_outputs; k++) {
        const rt_opt_info *info = rt_opt_get_info(o, n->outputs[k]);
        if (n->outputs[k] < 0)
            continue;
        outs[k] = rt_tensor_create(info->dtype, &info->shape, err);
        if (!outs[k])
            st = err ? err->status : RT_ERR_NOMEM;
        for (int e = 0; st == RT_OK && e < info->n_data; e++)
            rt_dtype_store_i64(info->dtype, outs[k]->data, (size_t)e, info->data[e]);
    }
    if (st == RT_OK) {
        make_consts(o, i, outs);
        return RT_OK;
    }
    for (int k = 0; k < n->n_outputs; k++)
        rt_tensor_free(outs[k]);
    return st;
}

/* A Reshape target computed from dynamic shapes: each unknown entry that is the input's
 * dim at the same position becomes 0 (copy it), one other unknown entry -1 (infer it).
 * The new target must give the inferred output shape in both probe runs. */
static rt_status reshape_target(rt_opt *o, int i, rt_error *err)
{
    rt_node *n = &o->g->nodes[i];
    int x = rt_node_input(n, 0), tv = rt_node_input(n, 1);
    const rt_opt_info *xi = rt_opt_get_info(o, x), *ti = rt_opt_get_info(o, tv);
    const rt_opt_info *yi = rt_opt_get_info(o, n->outputs[0]);
    if (tv < 0 || rt_opt_const(o, tv) || ti->n_data < 0 || ti->shape.rank != 1 ||
        xi->shape.rank < 0 || yi->shape.rank < 0)
        return RT_OK;
    bool allowzero = rt_node_attr_int(n, "allowzero", 0) != 0, minus_one = false;
    int unknown = -1, n_unknown = 0;
    int64_t spec[RT_OPT_DATA_MAX];
    for (int e = 0; e < ti->n_data; e++) {
        spec[e] = ti->data[e];
        if (!ti->data_sym[e]) {
            minus_one = minus_one || spec[e] == -1;
        } else if (!allowzero && e < xi->shape.rank && xi->shape.dims[e] == -ti->data_sym[e]) {
            spec[e] = 0;
        } else {
            unknown = e;
            n_unknown++;
        }
    }
    if (n_unknown > 1 || (n_unknown == 1 && minus_one))
        return RT_OK;
    if (n_unknown == 1)
        spec[unknown] = -1;
    rt_shape ts = rt_shape_make(1, (int64_t[]){ti->n_data});
    for (int run = 0; run < 2; run++) {
        rt_tensor xt = {.dtype = xi->dtype, .shape = rt_opt_probe_shape(o, &xi->shape, run)};
        rt_tensor tt = {.dtype = RT_DTYPE_I64, .shape = ts, .data = spec}, res = {0};
        rt_shape want = rt_opt_probe_shape(o, &yi->shape, run);
        const rt_tensor *in[2] = {&xt, &tt};
        rt_error scratch;
        if (rt_op_infer(n, in, 2, &res, 1, &scratch) != RT_OK || !rt_shape_equal(&res.shape, &want))
            return RT_OK;
    }
    rt_tensor *t = rt_tensor_create(RT_DTYPE_I64, &ts, err);
    if (!t)
        return err ? err->status : RT_ERR_NOMEM;
    memcpy(t->data, spec, sizeof(int64_t) * (size_t)ti->n_data);
    int v = rt_opt_add_weight(o, o->g->values[tv].name, t, err);
    if (v < 0)
        return err ? err->status : RT_ERR_NOMEM;
    o->g->nodes[i].inputs[1] = v;
    o->rep->rewrites[RT_OPT_RESHAPE_TARGET]++;
    return RT_OK;
}

/* Transpose(Transpose(x, p), q) -> Transpose(x, p[q[i]]), or x itself when that is the
 * identity, if the inner Transpose's output is read by nothing else. Explicit perms only. */
static rt_status merge_transposes(rt_opt *o, int i, rt_error *err)
{
    rt_node *n = &o->g->nodes[i];
    int inner = rt_opt_producer(o, n->inputs[0], RT_OP_TRANSPOSE), np, nq;
    if (inner < 0 || !rt_opt_private_to(o, n->inputs[0], i) || o->g->nodes[inner].n_inputs < 1)
        return RT_OK;
    const int64_t *p = rt_node_attr_ints(&o->g->nodes[inner], "perm", &np);
    const int64_t *q = rt_node_attr_ints(n, "perm", &nq);
    if (!p || !q || np != nq || np > RT_MAX_RANK)
        return RT_OK;
    int64_t perm[RT_MAX_RANK];
    bool identity = true;
    for (int k = 0; k < nq; k++) {
        if (q[k] < 0 || q[k] >= np)
            return RT_OK;
        perm[k] = p[q[k]];
        identity = identity && perm[k] == k;
    }
    int x = o->g->nodes[inner].inputs[0], y = n->outputs[0];
    rt_attr *attrs = NULL;
    if (!identity && (!(attrs = calloc(1, sizeof *attrs)) ||
                      !rt_opt_attr_ints(&attrs[0], "perm", perm, nq))) {
        rt_opt_attrs_free(attrs, 1);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory merging Transposes");
    }
    rt_opt_kill(o, inner);
    o->rep->rewrites[RT_OPT_TRANSPOSE_PAIR]++;
    rt_status st = rt_opt_replace_node(o, i, identity ? RT_OP_IDENTITY : RT_OP_TRANSPOSE, &x, 1,
                                       &y, 1, attrs, identity ? 0 : 1, err);
    return st == RT_OK ? rt_opt_index(o, err) : st;
}

rt_status rt_opt_pass_fold(rt_opt *o, rt_error *err)
{
    rt_status st = rt_opt_index(o, err);
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++)
        if (rt_opt_node_ok(o, i, 1) && o->g->nodes[i].op == RT_OP_TRANSPOSE)
            st = merge_transposes(o, i, err);
    if (st == RT_OK)
        st = remove_copies(o, err);
    if (st == RT_OK)
        st = rt_opt_info_reset(o, err);
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        if (o->dead[i])
            continue;
        st = rt_opt_infer_node(o, i, err);
        if (st == RT_OK && foldable(o, &o->g->nodes[i]))
            st = fold_by_kernel(o, i, err);
        if (st == RT_OK && !o->dead[i])
            st = fold_known(o, i, err);
        if (st == RT_OK && rt_opt_node_ok(o, i, 2) && o->g->nodes[i].op == RT_OP_RESHAPE)
            st = reshape_target(o, i, err);
    }
    if (st == RT_OK)
        st = rt_opt_pass_dead(o, err);
    return st;
}

rt_status rt_opt_pass_dead(rt_opt *o, rt_error *err)
{
    rt_graph *g = o->g;
    bool *needed = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *needed);
    if (!needed)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory removing dead nodes");
    for (int i = 0; i < g->n_outputs; i++)
        needed[g->outputs[i]] = true;
    for (int i = g->n_nodes - 1; i >= 0; i--) {
        const rt_node *n = &g->nodes[i];
        bool live = false;
        for (int k = 0; !o->dead[i] && k < n->n_outputs; k++)
            live = live || (n->outputs[k] >= 0 && needed[n->outputs[k]]);
        if (!live && !o->dead[i]) {
            rt_opt_kill(o, i);
            o->rep->rewrites[RT_OPT_DEAD_NODE]++;
        }
        for (int k = 0; live && k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                needed[n->inputs[k]] = true;
    }
    free(needed);
    return rt_opt_index(o, err);
}
