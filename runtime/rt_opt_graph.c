/* rt_opt_graph.c: the optimizer's view of the graph: the def-use index over live nodes,
 * the edits rewrites make (kill, rewrite, new weights), compaction at the end, attribute
 * builders, and running one node's CPU kernel on host tensors (constant folding). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"

rt_status rt_opt_index(rt_opt *o, rt_error *err)
{
    const rt_graph *g = o->g;
    size_t nv = (size_t)g->n_values + 1;
    int total = 0;
    for (int i = 0; i < g->n_nodes; i++)
        if (!o->dead[i])
            total += g->nodes[i].n_inputs;
    int *producer = realloc(o->producer, nv * sizeof *producer);
    if (producer)
        o->producer = producer;
    int *start = realloc(o->use_start, (nv + 1) * sizeof *start);
    if (start)
        o->use_start = start;
    int *uses = realloc(o->uses, (size_t)(total ? total : 1) * sizeof *uses);
    if (uses)
        o->uses = uses;
    if (!producer || !start || !uses)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory indexing the graph");
    memset(start, 0, (nv + 1) * sizeof *start);
    for (int v = 0; v < g->n_values; v++)
        producer[v] = -1;
    for (int i = 0; i < g->n_nodes; i++) {
        if (o->dead[i])
            continue;
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                producer[n->outputs[k]] = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                start[n->inputs[k] + 1]++;
    }
    for (int v = 0; v < g->n_values; v++)
        start[v + 1] += start[v];
    /* fill, using start[v] as a cursor, then shift the cursors back */
    for (int i = 0; i < g->n_nodes; i++) {
        if (o->dead[i])
            continue;
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                uses[start[n->inputs[k]]++] = i;
    }
    for (int v = g->n_values; v > 0; v--)
        start[v] = start[v - 1];
    start[0] = 0;
    o->n_indexed = g->n_values;
    return RT_OK;
}

const int *rt_opt_uses(const rt_opt *o, int v, int *n)
{
    if (v < 0 || v >= o->n_indexed) {
        *n = 0;
        return NULL;
    }
    *n = o->use_start[v + 1] - o->use_start[v];
    return o->uses + o->use_start[v];
}

int rt_opt_single_consumer(const rt_opt *o, int v)
{
    int n;
    const int *u = rt_opt_uses(o, v, &n);
    if (n == 0 || o->g->values[v].is_output)
        return -1;
    for (int i = 1; i < n; i++)
        if (u[i] != u[0])
            return -1;
    return u[0];
}

bool rt_opt_private_to(const rt_opt *o, int v, int node)
{
    return v >= 0 && o->g->values[v].kind == RT_VALUE_INTERMEDIATE &&
           rt_opt_single_consumer(o, v) == node;
}

int rt_opt_producer(const rt_opt *o, int v, rt_op op)
{
    if (v < 0 || v >= o->n_indexed || o->producer[v] < 0)
        return -1;
    int p = o->producer[v];
    return op == RT_OP_COUNT || o->g->nodes[p].op == op ? p : -1;
}

const rt_tensor *rt_opt_const(const rt_opt *o, int v)
{
    if (v < 0 || v >= o->g->n_values)
        return NULL;
    const rt_value *val = &o->g->values[v];
    return val->kind == RT_VALUE_WEIGHT ? val->data : NULL;
}

bool rt_opt_scalar(const rt_opt *o, int v, double *f)
{
    const rt_tensor *t = rt_opt_const(o, v);
    if (!t || rt_tensor_numel(t) != 1 ||
        !(rt_dtype_is_float(t->dtype) || rt_dtype_is_integer(t->dtype)))
        return false;
    *f = rt_dtype_load_f64(t->dtype, t->data, 0);
    return true;
}

bool rt_opt_node_ok(const rt_opt *o, int i, int min_in)
{
    const rt_node *n = &o->g->nodes[i];
    return !o->dead[i] && n->n_outputs >= 1 && n->outputs[0] >= 0 && n->n_inputs >= min_in;
}

void rt_opt_kill(rt_opt *o, int node)
{
    o->dead[node] = true;
}

void rt_opt_replace_uses(rt_opt *o, int from, int to)
{
    for (int i = 0; i < o->g->n_nodes; i++) {
        rt_node *n = &o->g->nodes[i];
        for (int k = 0; !o->dead[i] && k < n->n_inputs; k++)
            if (n->inputs[k] == from)
                n->inputs[k] = to;
    }
}

static void node_free_contents(rt_node *n)
{
    free(n->inputs);
    free(n->outputs);
    rt_opt_attrs_free(n->attrs, n->n_attrs);
    n->inputs = n->outputs = NULL;
    n->attrs = NULL;
    n->n_inputs = n->n_outputs = n->n_attrs = 0;
}

rt_status rt_opt_replace_node(rt_opt *o, int at, rt_op op, const int *in, int n_in,
                              const int *out, int n_out, rt_attr *attrs, int n_attrs,
                              rt_error *err)
{
    int *ins = malloc(sizeof *ins * (size_t)(n_in ? n_in : 1));
    int *outs = malloc(sizeof *outs * (size_t)(n_out ? n_out : 1));
    if (!ins || !outs) {
        free(ins);
        free(outs);
        rt_opt_attrs_free(attrs, n_attrs);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory rewriting the graph");
    }
    memcpy(ins, in, sizeof *ins * (size_t)n_in);
    memcpy(outs, out, sizeof *outs * (size_t)n_out);
    rt_node *n = &o->g->nodes[at];
    node_free_contents(n);
    n->op = op;
    n->inputs = ins;
    n->n_inputs = n_in;
    n->outputs = outs;
    n->n_outputs = n_out;
    n->attrs = attrs;
    n->n_attrs = n_attrs;
    return RT_OK;
}

int rt_opt_add_weight(rt_opt *o, const char *base, rt_tensor *t, rt_error *err)
{
    char name[256];
    do
        snprintf(name, sizeof name, "%.200s/opt_%d", base, o->n_names++);
    while (rt_graph_find_value(o->g, name) >= 0);
    int v = rt_graph_add_value(o->g, name, RT_VALUE_WEIGHT, t->dtype, &t->shape);
    if (v < 0) {
        rt_tensor_free(t);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory adding a weight");
        return -1;
    }
    o->g->values[v].data = t;
    return v;
}

void rt_opt_make_const(rt_opt *o, int v, rt_tensor *t)
{
    rt_value *val = &o->g->values[v];
    rt_tensor_free(val->data);
    val->kind = RT_VALUE_WEIGHT;
    val->data = t;
    val->dtype = t->dtype;
    val->shape = t->shape;
    for (int d = 0; d < RT_MAX_RANK; d++) {
        free(val->dim_params[d]);
        val->dim_params[d] = NULL;
    }
}

static void value_free_contents(rt_value *v)
{
    free(v->name);
    for (int d = 0; d < RT_MAX_RANK; d++)
        free(v->dim_params[d]);
    rt_tensor_free(v->data);
}

rt_status rt_opt_compact(rt_opt *o, rt_error *err)
{
    rt_graph *g = o->g;
    int *remap = malloc(sizeof *remap * (size_t)(g->n_values ? g->n_values : 1));
    if (!remap)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory compacting the graph");
    int w = 0;
    for (int i = 0; i < g->n_nodes; i++) {
        if (o->dead[i]) {
            node_free_contents(&g->nodes[i]);
            free(g->nodes[i].name);
            continue;
        }
        g->nodes[w] = g->nodes[i];
        o->dead[w++] = false;
    }
    g->n_nodes = w;
    /* remap[v] = 1 marks a value still referred to, then becomes its new index */
    memset(remap, 0, sizeof *remap * (size_t)g->n_values);
    for (int i = 0; i < g->n_inputs; i++)
        remap[g->inputs[i]] = 1;
    for (int i = 0; i < g->n_outputs; i++)
        remap[g->outputs[i]] = 1;
    for (int i = 0; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                remap[n->inputs[k]] = 1;
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                remap[n->outputs[k]] = 1;
    }
    w = 0;
    for (int v = 0; v < g->n_values; v++) {
        if (!remap[v]) {
            value_free_contents(&g->values[v]);
            remap[v] = -1;
            continue;
        }
        g->values[w] = g->values[v];
        remap[v] = w++;
    }
    g->n_values = w;
    for (int i = 0; i < g->n_inputs; i++)
        g->inputs[i] = remap[g->inputs[i]];
    for (int i = 0; i < g->n_outputs; i++)
        g->outputs[i] = remap[g->outputs[i]];
    for (int i = 0; i < g->n_nodes; i++) {
        rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0)
                n->inputs[k] = remap[n->inputs[k]];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                n->outputs[k] = remap[n->outputs[k]];
    }
    free(remap);
    return rt_opt_index(o, err);
}

/* ---- attributes ---- */

static bool attr_init(rt_attr *a, const char *name, rt_attr_type type)
{
    memset(a, 0, sizeof *a);
    a->type = type;
    a->name = strdup(name);
    return a->name != NULL;
}

bool rt_opt_attr_int(rt_attr *a, const char *name, int64_t v)
{
    if (!attr_init(a, name, RT_ATTR_INT))
        return false;
    a->i = v;
    return true;
}

bool rt_opt_attr_float(rt_attr *a, const char *name, float v)
{
    if (!attr_init(a, name, RT_ATTR_FLOAT))
        return false;
    a->f = v;
    return true;
}

bool rt_opt_attr_string(rt_attr *a, const char *name, const char *s)
{
    if (!attr_init(a, name, RT_ATTR_STRING))
        return false;
    a->s = strdup(s);
    a->s_len = strlen(s);
    return a->s != NULL;
}

bool rt_opt_attr_ints(rt_attr *a, const char *name, const int64_t *v, int n)
{
    if (!attr_init(a, name, RT_ATTR_INTS))
        return false;
    a->n = n;
    a->ints = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (a->ints && n)
        memcpy(a->ints, v, sizeof *v * (size_t)n);
    return a->ints != NULL;
}

bool rt_opt_attr_floats(rt_attr *a, const char *name, const float *v, int n)
{
    if (!attr_init(a, name, RT_ATTR_FLOATS))
        return false;
    a->n = n;
    a->floats = malloc(sizeof *v * (size_t)(n ? n : 1));
    if (a->floats && n)
        memcpy(a->floats, v, sizeof *v * (size_t)n);
    return a->floats != NULL;
}

bool rt_opt_attr_strings(rt_attr *a, const char *name, const char *const *v, int n)
{
    if (!attr_init(a, name, RT_ATTR_STRINGS))
        return false;
    a->strings = calloc((size_t)(n ? n : 1), sizeof *a->strings);
    if (!a->strings)
        return false;
    a->n = n;
    for (int i = 0; i < n; i++)
        if (!(a->strings[i] = strdup(v[i])))
            return false;
    return true;
}

bool rt_opt_attr_copy(rt_attr *a, const rt_attr *src)
{
    switch (src->type) {
    case RT_ATTR_INT: return rt_opt_attr_int(a, src->name, src->i);
    case RT_ATTR_FLOAT: return rt_opt_attr_float(a, src->name, src->f);
    case RT_ATTR_STRING: return rt_opt_attr_string(a, src->name, src->s);
    case RT_ATTR_INTS: return rt_opt_attr_ints(a, src->name, src->ints, src->n);
    case RT_ATTR_FLOATS: return rt_opt_attr_floats(a, src->name, src->floats, src->n);
    case RT_ATTR_STRINGS:
        return rt_opt_attr_strings(a, src->name, (const char *const *)src->strings, src->n);
    case RT_ATTR_TENSOR:
        if (!attr_init(a, src->name, RT_ATTR_TENSOR))
            return false;
        a->t = rt_tensor_clone(src->t, NULL);
        return a->t != NULL;
    }
    return false;
}

void rt_opt_attrs_free(rt_attr *attrs, int n)
{
    for (int i = 0; attrs && i < n; i++)
        rt_attr_clear(&attrs[i]);
    free(attrs);
}

rt_attr *rt_opt_attrs_copy_except(const rt_node *n, const char *skip, int room, int *n_out)
{
    rt_attr *attrs = calloc((size_t)(n->n_attrs + room) + 1, sizeof *attrs);
    *n_out = 0;
    for (int a = 0; attrs && a < n->n_attrs; a++)
        if ((!skip || strcmp(n->attrs[a].name, skip) != 0) &&
            !rt_opt_attr_copy(&attrs[(*n_out)++], &n->attrs[a])) {
            rt_opt_attrs_free(attrs, *n_out);
            return NULL;
        }
    return attrs;
}

/* ---- running a kernel at load time ---- */

rt_status rt_opt_run_node(rt_opt *o, const rt_node *node, const rt_tensor *const *in,
                          rt_tensor **out, rt_error *err)
{
    rt_tensor *shapes = calloc((size_t)(node->n_outputs ? node->n_outputs : 1), sizeof *shapes);
    rt_tensor **res = calloc((size_t)(node->n_outputs ? node->n_outputs : 1), sizeof *res);
    for (int k = 0; k < node->n_outputs; k++)
        out[k] = NULL;
    rt_status st = shapes && res ? RT_OK
                                 : rt_error_set(err, RT_ERR_NOMEM, "out of memory folding a node");
    if (st == RT_OK)
        st = rt_op_infer(node, in, node->n_inputs, shapes, node->n_outputs, err);
    for (int k = 0; st == RT_OK && k < node->n_outputs; k++) {
        if (node->outputs[k] < 0)
            continue;
        if (rt_shape_numel(&shapes[k].shape) < 0 || !rt_dtype_valid(shapes[k].dtype))
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "bad output shape");
        else
            out[k] = rt_tensor_create(shapes[k].dtype, &shapes[k].shape, err);
        if (st == RT_OK && !out[k])
            st = err ? err->status : RT_ERR_NOMEM;
        res[k] = out[k];
    }
    if (st == RT_OK) {
        rt_kernel_ctx_reset(&o->kctx);
        st = o->cpu->vt->node_run(o->cpu, &o->kctx, node, in, node->n_inputs, res,
                                  node->n_outputs, err);
    }
    /* BYTES outputs point into the kernel's string pool: give them their own copy */
    for (int k = 0; st == RT_OK && k < node->n_outputs; k++)
        if (out[k] && out[k]->dtype == RT_DTYPE_BYTES) {
            rt_tensor *c = rt_tensor_clone(out[k], err);
            rt_tensor_free(out[k]);
            out[k] = c;
            if (!c)
                st = err ? err->status : RT_ERR_NOMEM;
        }
    if (st != RT_OK)
        for (int k = 0; k < node->n_outputs; k++) {
            rt_tensor_free(out[k]);
            out[k] = NULL;
        }
    free(shapes);
    free(res);
    return st;
}
