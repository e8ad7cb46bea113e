/* rt_opt_fuse_elementwise.c: chains of elementwise ops -> one infd.FusedElementwise node
 * that makes one pass over memory (rt_fused.h).
 *
 * A chain starts at an elementwise op (or a Cast to F32, which the fused kernel does as it
 * loads) and follows the chain value while it feeds exactly one node that is again an
 * elementwise F32 op of the same output shape (other operands may broadcast into it, never
 * the other way). Runs last, so that the specific fusions (GELU, LayerNorm, activations)
 * have taken their patterns first. */
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "rt_opt.h"

#define MAX_IN (RT_EW_MAX_STEPS + 1)

typedef struct {
    int nodes[RT_EW_MAX_STEPS + 1];
    int n_nodes;
    int ins[MAX_IN];
    int n_in;
    const char *ops[RT_EW_MAX_STEPS];
    int64_t args[RT_EW_MAX_STEPS], swap[RT_EW_MAX_STEPS];
    float params[2 * RT_EW_MAX_STEPS];
    int n_steps;
} chain;

/* Index (>= 1) of value v among the chain's operands, added if new; -1 when full. Input
 * 0 is never shared with an operand: the kernel overwrites it block by block when the
 * output takes its buffer. */
static int chain_input(chain *c, int v)
{
    for (int k = 1; k < c->n_in; k++)
        if (c->ins[k] == v)
            return k;
    if (c->n_in == MAX_IN)
        return -1;
    c->ins[c->n_in] = v;
    return c->n_in++;
}

/* Appends node i as a step on chain value v; false if it cannot be one. */
static bool add_step(const rt_opt *o, chain *c, int i, int v)
{
    const rt_node *n = &o->g->nodes[i];
    bool binary;
    rt_act act;
    if (c->n_steps == RT_EW_MAX_STEPS || !rt_ew_step_op(n->op, &binary) ||
        !rt_opt_is_f32(o, n->outputs[0]))
        return false;
    int s = c->n_steps;
    c->params[2 * s] = c->params[2 * s + 1] = 0;
    c->args[s] = -1;
    c->swap[s] = 0;
    if (binary) {
        if (n->n_inputs != 2 || (n->inputs[0] == v) == (n->inputs[1] == v))
            return false;
        int other = n->inputs[0] == v ? n->inputs[1] : n->inputs[0];
        int k = rt_opt_is_f32(o, other) ? chain_input(c, other) : -1;
        if (k < 1)
            return false;
        c->args[s] = k;
        c->swap[s] = n->inputs[1] == v;
    } else if (n->op == RT_OP_CLIP || n->op == RT_OP_LEAKY_RELU || n->op == RT_OP_GELU) {
        if (!rt_opt_activation(o, n, &act))
            return false;
        c->params[2 * s] = act.kind == RT_ACT_LEAKY_RELU ? act.alpha
                           : act.kind == RT_ACT_CLIP     ? act.lo
                                                         : act.kind == RT_ACT_GELU_TANH;
        c->params[2 * s + 1] = act.hi;
    }
    c->ops[s] = rt_op_name(n->op);
    c->n_steps++;
    c->nodes[c->n_nodes++] = i;
    return true;
}

/* Starts a chain at node i: a Cast to F32 (the kernel converts input 0 as it loads), or a
 * step whose chain value is the operand of the output's shape (else input 0). */
static bool start(const rt_opt *o, chain *c, int i)
{
    const rt_node *n = &o->g->nodes[i];
    int y = n->outputs[0];
    memset(c, 0, sizeof *c);
    if (n->op == RT_OP_CAST) {
        rt_dtype from = rt_opt_get_info(o, n->inputs[0])->dtype;
        if (rt_node_attr_int(n, "to", 0) != RT_DTYPE_F32 || !rt_opt_is_f32(o, y) ||
            !(rt_dtype_is_float(from) || rt_dtype_is_integer(from) || from == RT_DTYPE_BOOL))
            return false;
        c->ins[c->n_in++] = n->inputs[0];
        c->nodes[c->n_nodes++] = i;
        return true;
    }
    int x = n->n_inputs > 0 ? n->inputs[0] : -1;
    if (n->n_inputs == 2 &&
        rt_shape_equal(&rt_opt_get_info(o, n->inputs[1])->shape, &rt_opt_get_info(o, y)->shape) &&
        !rt_shape_equal(&rt_opt_get_info(o, x)->shape, &rt_opt_get_info(o, y)->shape))
        x = n->inputs[1];
    if (x < 0 || !rt_opt_is_f32(o, x))
        return false;
    c->ins[c->n_in++] = x;
    return add_step(o, c, i, x);
}

static rt_status build(rt_opt *o, const chain *c, rt_error *err)
{
    int last = c->nodes[c->n_nodes - 1], y = o->g->nodes[last].outputs[0];
    rt_attr *attrs = calloc(4, sizeof *attrs);
    if (!attrs || !rt_opt_attr_strings(&attrs[0], "ops", c->ops, c->n_steps) ||
        !rt_opt_attr_ints(&attrs[1], "args", c->args, c->n_steps) ||
        !rt_opt_attr_ints(&attrs[2], "swap", c->swap, c->n_steps) ||
        !rt_opt_attr_floats(&attrs[3], "params", c->params, 2 * c->n_steps)) {
        rt_opt_attrs_free(attrs, 4);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory fusing an elementwise chain");
    }
    for (int k = 0; k < c->n_nodes - 1; k++)
        rt_opt_kill(o, c->nodes[k]);
    o->rep->rewrites[RT_OPT_ELEMENTWISE]++;
    return rt_opt_replace_node(o, last, RT_OP_FUSED_ELEMENTWISE, c->ins, c->n_in, &y, 1, attrs, 4,
                               err);
}

static rt_status try_chain(rt_opt *o, int i, bool *done, rt_error *err)
{
    chain c;
    if (!start(o, &c, i))
        return RT_OK;
    for (;;) {
        int v = o->g->nodes[c.nodes[c.n_nodes - 1]].outputs[0];
        int next = rt_opt_single_consumer(o, v);
        if (next < 0 || !rt_opt_private_to(o, v, next) ||
            !rt_shape_equal(&rt_opt_get_info(o, o->g->nodes[next].outputs[0])->shape,
                            &rt_opt_get_info(o, v)->shape) ||
            !add_step(o, &c, next, v))
            break;
    }
    if (c.n_nodes < 2 || c.n_steps < 1)
        return RT_OK;
    *done = true;
    return build(o, &c, err);
}

rt_status rt_opt_pass_elementwise(rt_opt *o, rt_error *err)
{
    rt_status st = RT_OK;
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++) {
        bool done = false;
        if (rt_opt_node_ok(o, i, 1))
            st = try_chain(o, i, &done, err);
        if (st == RT_OK && done)
            st = rt_opt_index(o, err);
    }
    return st;
}
