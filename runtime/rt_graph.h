/* rt_graph.h: the graph IR: values (inputs, weights, intermediates, outputs) and nodes in
 * topological order, with ONNX-style attributes.
 *
 * The graph owns everything it points to: names, attribute payloads and weight tensors.
 * Values are referred to by index into graph->values; an omitted optional node input is -1.
 * Loaders build graphs with the rt_graph_add_* functions, which copy their string
 * arguments; rt_graph_check verifies the result (every input defined before use, names
 * unique). */
#ifndef RT_GRAPH_H
#define RT_GRAPH_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_ops.h"
#include "rt_status.h"
#include "rt_tensor.h"

typedef enum {
    RT_VALUE_INTERMEDIATE = 0,
    RT_VALUE_INPUT,     /* fed by the caller at run time */
    RT_VALUE_WEIGHT     /* constant known at load (initializer); data is set */
} rt_value_kind;

typedef struct rt_value {
    char *name;
    rt_value_kind kind;
    rt_dtype dtype;      /* RT_DTYPE_UNDEFINED until known */
    rt_shape shape;      /* declared shape; dims of -1 are dynamic; rank -1 if unknown */
    char *dim_params[RT_MAX_RANK]; /* symbolic names of dynamic dims ("batch"), or NULL */
    rt_tensor *data;     /* RT_VALUE_WEIGHT: the constant (owned by the graph) */
    bool is_output;      /* listed among the graph outputs */
} rt_value;

typedef enum {
    RT_ATTR_FLOAT,
    RT_ATTR_INT,
    RT_ATTR_STRING,
    RT_ATTR_TENSOR,
    RT_ATTR_FLOATS,
    RT_ATTR_INTS,
    RT_ATTR_STRINGS
} rt_attr_type;

typedef struct rt_attr {
    char *name;
    rt_attr_type type;
    float f;
    int64_t i;
    char *s;            /* RT_ATTR_STRING, NUL-terminated copy (s_len bytes before the NUL) */
    size_t s_len;
    rt_tensor *t;       /* RT_ATTR_TENSOR */
    int n;              /* element count of floats / ints / strings */
    float *floats;
    int64_t *ints;
    char **strings;
} rt_attr;

typedef struct rt_node {
    char *name;         /* never NULL; loaders synthesize "<op_type>_<index>" if absent */
    rt_op op;
    int opset;          /* default-domain opset of the model (copied from the graph) */
    int n_inputs;
    int *inputs;        /* value indices; -1 = omitted optional input */
    int n_outputs;
    int *outputs;       /* value indices; -1 = omitted optional output */
    int n_attrs;
    rt_attr *attrs;
} rt_node;

typedef struct rt_graph {
    char *name;
    int64_t opset;      /* default-domain opset the model was exported with */
    int n_values, cap_values;
    rt_value *values;
    int n_nodes, cap_nodes;
    rt_node *nodes;
    int n_inputs;
    int *inputs;        /* graph inputs (RT_VALUE_INPUT), in declaration order */
    int n_outputs;
    int *outputs;       /* graph outputs, in declaration order */
} rt_graph;

rt_graph *rt_graph_create(const char *name);
/* NULL-safe; frees values, weights, nodes and attributes. */
void rt_graph_free(rt_graph *g);

/* Adds a value and returns its index, or -1 on allocation failure. The name is copied. */
int rt_graph_add_value(rt_graph *g, const char *name, rt_value_kind kind, rt_dtype dtype,
                       const rt_shape *shape);
/* Index of the value with this name, or -1. */
int rt_graph_find_value(const rt_graph *g, const char *name);
/* Appends a node (its opset is the graph's opset); inputs/outputs are copied; attrs are taken over (the array and its
 * contents are owned by the graph afterwards, even on failure). Returns the node index
 * or -1 on allocation failure. */
int rt_graph_add_node(rt_graph *g, const char *name, rt_op op, const int *inputs, int n_inputs,
                      const int *outputs, int n_outputs, rt_attr *attrs, int n_attrs);
int rt_graph_add_input(rt_graph *g, int value);
int rt_graph_add_output(rt_graph *g, int value);

/* Checks that every node input is a graph input, a weight or an earlier node's output,
 * that every value is produced at most once and every graph output is produced. */
rt_status rt_graph_check(const rt_graph *g, rt_error *err);

/* Frees one attribute's payload (not the struct itself). NULL-safe. */
void rt_attr_clear(rt_attr *a);

/* Attribute lookup on a node; NULL if absent. */
const rt_attr *rt_node_attr(const rt_node *n, const char *name);
int64_t rt_node_attr_int(const rt_node *n, const char *name, int64_t fallback);
float rt_node_attr_float(const rt_node *n, const char *name, float fallback);
/* Borrowed string; fallback if absent. */
const char *rt_node_attr_string(const rt_node *n, const char *name, const char *fallback);
/* Borrowed INTS array and its length in *n_out; NULL (and *n_out = 0) if absent. */
const int64_t *rt_node_attr_ints(const rt_node *n, const char *name, int *n_out);
const float *rt_node_attr_floats(const rt_node *n, const char *name, int *n_out);

/* Input i of the node, or NULL when omitted or out of range (for kernels and inference). */
static inline int rt_node_input(const rt_node *n, int i)
{
    return i < n->n_inputs ? n->inputs[i] : -1;
}

#endif
