/* rt_opt_match.c: the optimizer's pattern matcher (rt_pat in rt_opt.h): structural
 * matching of small expression trees against the graph, with bound slots for repeated
 * values, both operand orders for Add and Mul, and the check that a match is
 * self-contained (no intermediate escapes to another node or a graph output). */
#include <math.h>

#include "rt_opt.h"

/* Relative tolerance of scalar constants: exporters print them with a few digits less
 * than float has. */
#define SCALAR_TOL 1e-4

static bool commutative(rt_op op)
{
    return op == RT_OP_ADD || op == RT_OP_MUL;
}

static bool scalar_matches(const rt_opt *o, const rt_pat *p, int v)
{
    double f;
    const rt_tensor *t = rt_opt_const(o, v);
    if (!t || !rt_dtype_is_float(t->dtype) || !rt_opt_scalar(o, v, &f))
        return false;
    return isnan(p->value) || fabs(f - p->value) <= SCALAR_TOL * fabs(p->value);
}

static bool match_value(const rt_opt *o, const rt_pat *p, int v, rt_match *m);

/* Matches the operands of an op pattern against node n's inputs i and j. */
static bool match_operands(const rt_opt *o, const rt_pat *p, const rt_node *n, int i, int j,
                           rt_match *m)
{
    if (!match_value(o, p->a, rt_node_input(n, i), m))
        return false;
    return !p->b || match_value(o, p->b, rt_node_input(n, j), m);
}

static bool match_value(const rt_opt *o, const rt_pat *p, int v, rt_match *m)
{
    if (v < 0)
        return false;
    if (p->slot >= 0 && m->slots[p->slot] >= 0)
        return m->slots[p->slot] == v;
    switch (p->kind) {
    case RT_PAT_VAR:
        break;
    case RT_PAT_SCALAR:
        if (!scalar_matches(o, p, v))
            return false;
        break;
    case RT_PAT_WEIGHT:
        if (!rt_opt_const(o, v))
            return false;
        break;
    case RT_PAT_OP: {
        int node = rt_opt_producer(o, v, p->op);
        if (node < 0 || o->g->nodes[node].outputs[0] != v || m->n_nodes == RT_PAT_MAX_NODES)
            return false;
        const rt_node *n = &o->g->nodes[node];
        rt_match saved = *m;
        m->nodes[m->n_nodes++] = node;
        if (match_operands(o, p, n, 0, 1, m))
            break;
        *m = saved;
        if (!p->b || !commutative(p->op))
            return false;
        m->nodes[m->n_nodes++] = node;
        if (match_operands(o, p, n, 1, 0, m))
            break;
        *m = saved;
        return false;
    }
    }
    if (p->slot >= 0)
        m->slots[p->slot] = v;
    return true;
}

static bool matched(const rt_match *m, int node)
{
    for (int i = 0; i < m->n_nodes; i++)
        if (m->nodes[i] == node)
            return true;
    return false;
}

/* Whether output k of matched node n may disappear into the fused node: it is read only
 * by matched nodes and is no graph output (the root's output 0 is the fused result). */
static bool contained(const rt_opt *o, const rt_match *m, const rt_node *n, int k)
{
    int w = n->outputs[k], count;
    if (w < 0)
        return true;
    if (o->g->values[w].is_output)
        return false;
    const int *uses = rt_opt_uses(o, w, &count);
    for (int u = 0; u < count; u++)
        if (!matched(m, uses[u]))
            return false;
    return true;
}

bool rt_opt_match(const rt_opt *o, const rt_pat *pat, int v, rt_match *m)
{
    for (int s = 0; s < RT_PAT_SLOTS; s++)
        m->slots[s] = -1;
    m->n_nodes = 0;
    if (pat->kind != RT_PAT_OP || !match_value(o, pat, v, m))
        return false;
    for (int i = 0; i < m->n_nodes; i++) {
        const rt_node *n = &o->g->nodes[m->nodes[i]];
        for (int k = i == 0 ? 1 : 0; k < n->n_outputs; k++)
            if (!contained(o, m, n, k))
                return false;
    }
    return true;
}

void rt_opt_match_kill(rt_opt *o, const rt_match *m)
{
    for (int i = 1; i < m->n_nodes; i++)
        if (m->nodes[i] != m->nodes[0])
            rt_opt_kill(o, m->nodes[i]);
}
