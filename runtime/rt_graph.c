/* rt_graph.c: construction, validation and attribute lookup of the graph IR. */
#include "rt_graph.h"

#include <stdlib.h>
#include <string.h>

rt_graph *rt_graph_create(const char *name)
{
    rt_graph *g = calloc(1, sizeof *g);
    if (!g)
        return NULL;
    g->name = strdup(name ? name : "");
    if (!g->name) {
        free(g);
        return NULL;
    }
    return g;
}

void rt_attr_clear(rt_attr *a)
{
    if (!a)
        return;
    free(a->name);
    free(a->s);
    rt_tensor_free(a->t);
    free(a->floats);
    free(a->ints);
    for (int i = 0; a->strings && i < a->n; i++)
        free(a->strings[i]);
    free(a->strings);
    memset(a, 0, sizeof *a);
}

static void node_clear(rt_node *n)
{
    free(n->name);
    free(n->inputs);
    free(n->outputs);
    for (int i = 0; i < n->n_attrs; i++)
        rt_attr_clear(&n->attrs[i]);
    free(n->attrs);
}

void rt_graph_free(rt_graph *g)
{
    if (!g)
        return;
    for (int i = 0; i < g->n_values; i++) {
        rt_value *v = &g->values[i];
        free(v->name);
        for (int d = 0; d < RT_MAX_RANK; d++)
            free(v->dim_params[d]);
        rt_tensor_free(v->data);
    }
    free(g->values);
    for (int i = 0; i < g->n_nodes; i++)
        node_clear(&g->nodes[i]);
    free(g->nodes);
    free(g->inputs);
    free(g->outputs);
    free(g->name);
    free(g);
}

/* Grows *array (of elem-sized items, *cap of them) to hold at least need items. */
static bool grow(void **array, int *cap, int need, size_t elem)
{
    if (need <= *cap)
        return true;
    int ncap = *cap ? *cap * 2 : 16;
    while (ncap < need)
        ncap *= 2;
    void *p = realloc(*array, (size_t)ncap * elem);
    if (!p)
        return false;
    memset((char *)p + (size_t)*cap * elem, 0, (size_t)(ncap - *cap) * elem);
    *array = p;
    *cap = ncap;
    return true;
}

int rt_graph_add_value(rt_graph *g, const char *name, rt_value_kind kind, rt_dtype dtype,
                       const rt_shape *shape)
{
    if (!grow((void **)&g->values, &g->cap_values, g->n_values + 1, sizeof *g->values))
        return -1;
    rt_value *v = &g->values[g->n_values];
    memset(v, 0, sizeof *v);
    v->name = strdup(name ? name : "");
    if (!v->name)
        return -1;
    v->kind = kind;
    v->dtype = dtype;
    if (shape)
        v->shape = *shape;
    else
        v->shape.rank = -1;
    return g->n_values++;
}

int rt_graph_find_value(const rt_graph *g, const char *name)
{
    for (int i = 0; i < g->n_values; i++)
        if (strcmp(g->values[i].name, name) == 0)
            return i;
    return -1;
}

static int *copy_ints(const int *src, int n)
{
    int *dst = malloc((size_t)(n ? n : 1) * sizeof *dst);
    if (dst && n)
        memcpy(dst, src, (size_t)n * sizeof *dst);
    return dst;
}

int rt_graph_add_node(rt_graph *g, const char *name, rt_op op, const int *inputs, int n_inputs,
                      const int *outputs, int n_outputs, rt_attr *attrs, int n_attrs)
{
    rt_node n = {.op = op, .opset = (int)g->opset, .n_inputs = n_inputs,
                 .n_outputs = n_outputs, .n_attrs = n_attrs, .attrs = attrs};
    n.name = strdup(name ? name : "");
    n.inputs = copy_ints(inputs, n_inputs);
    n.outputs = copy_ints(outputs, n_outputs);
    if (!n.name || !n.inputs || !n.outputs ||
        !grow((void **)&g->nodes, &g->cap_nodes, g->n_nodes + 1, sizeof *g->nodes)) {
        node_clear(&n);
        return -1;
    }
    g->nodes[g->n_nodes] = n;
    return g->n_nodes++;
}

static int append_index(int **array, int *count, int value)
{
    int *p = realloc(*array, (size_t)(*count + 1) * sizeof **array);
    if (!p)
        return -1;
    p[*count] = value;
    *array = p;
    return (*count)++;
}

int rt_graph_add_input(rt_graph *g, int value)
{
    return append_index(&g->inputs, &g->n_inputs, value);
}

int rt_graph_add_output(rt_graph *g, int value)
{
    if (value >= 0 && value < g->n_values)
        g->values[value].is_output = true;
    return append_index(&g->outputs, &g->n_outputs, value);
}

rt_status rt_graph_check(const rt_graph *g, rt_error *err)
{
    rt_status st = RT_OK;
    /* defined[i]: value i has a producer seen so far (input, weight or earlier node) */
    char *defined = calloc((size_t)(g->n_values ? g->n_values : 1), 1);
    if (!defined)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory checking the graph");
    for (int i = 0; i < g->n_values; i++)
        defined[i] = g->values[i].kind != RT_VALUE_INTERMEDIATE;
    for (int i = 0; i < g->n_inputs && st == RT_OK; i++)
        if (g->inputs[i] < 0 || g->inputs[i] >= g->n_values ||
            g->values[g->inputs[i]].kind != RT_VALUE_INPUT)
            st = rt_error_set(err, RT_ERR_MODEL, "graph input %d is not an input value", i);
    for (int ni = 0; ni < g->n_nodes && st == RT_OK; ni++) {
        const rt_node *n = &g->nodes[ni];
        if ((unsigned)n->op >= RT_OP_COUNT) {
            st = rt_error_set(err, RT_ERR_MODEL, "node '%s' has no valid op", n->name);
            break;
        }
        for (int k = 0; k < n->n_inputs && st == RT_OK; k++) {
            int v = n->inputs[k];
            if (v < -1 || v >= g->n_values)
                st = rt_error_set(err, RT_ERR_MODEL, "node '%s' (%s) input %d is out of range",
                                  n->name, rt_op_name(n->op), k);
            else if (v >= 0 && !defined[v])
                st = rt_error_set(err, RT_ERR_MODEL,
                                  "node '%s' (%s) reads '%s' before anything produces it",
                                  n->name, rt_op_name(n->op), g->values[v].name);
        }
        for (int k = 0; k < n->n_outputs && st == RT_OK; k++) {
            int v = n->outputs[k];
            if (v < -1 || v >= g->n_values)
                st = rt_error_set(err, RT_ERR_MODEL, "node '%s' (%s) output %d is out of range",
                                  n->name, rt_op_name(n->op), k);
            else if (v >= 0 && defined[v])
                st = rt_error_set(err, RT_ERR_MODEL, "value '%s' is produced twice (node '%s')",
                                  g->values[v].name, n->name);
            else if (v >= 0)
                defined[v] = 1;
        }
    }
    for (int i = 0; i < g->n_outputs && st == RT_OK; i++) {
        int v = g->outputs[i];
        if (v < 0 || v >= g->n_values || !defined[v])
            st = rt_error_set(err, RT_ERR_MODEL, "graph output '%s' is never produced",
                              v >= 0 && v < g->n_values ? g->values[v].name : "?");
    }
    free(defined);
    return st;
}

const rt_attr *rt_node_attr(const rt_node *n, const char *name)
{
    for (int i = 0; i < n->n_attrs; i++)
        if (strcmp(n->attrs[i].name, name) == 0)
            return &n->attrs[i];
    return NULL;
}

int64_t rt_node_attr_int(const rt_node *n, const char *name, int64_t fallback)
{
    const rt_attr *a = rt_node_attr(n, name);
    return a && a->type == RT_ATTR_INT ? a->i : fallback;
}

float rt_node_attr_float(const rt_node *n, const char *name, float fallback)
{
    const rt_attr *a = rt_node_attr(n, name);
    if (!a)
        return fallback;
    if (a->type == RT_ATTR_FLOAT)
        return a->f;
    return a->type == RT_ATTR_INT ? (float)a->i : fallback;
}

const char *rt_node_attr_string(const rt_node *n, const char *name, const char *fallback)
{
    const rt_attr *a = rt_node_attr(n, name);
    return a && a->type == RT_ATTR_STRING ? a->s : fallback;
}

const int64_t *rt_node_attr_ints(const rt_node *n, const char *name, int *n_out)
{
    const rt_attr *a = rt_node_attr(n, name);
    if (!a || a->type != RT_ATTR_INTS) {
        *n_out = 0;
        return NULL;
    }
    *n_out = a->n;
    return a->ints;
}

const float *rt_node_attr_floats(const rt_node *n, const char *name, int *n_out)
{
    const rt_attr *a = rt_node_attr(n, name);
    if (!a || a->type != RT_ATTR_FLOATS) {
        *n_out = 0;
        return NULL;
    }
    *n_out = a->n;
    return a->floats;
}
