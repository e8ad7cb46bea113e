/* rt_opt.h: what the optimizer's passes share (internal to rt_opt*.c and rt_optimize.c,
 * and to the compression passes, rt_compress*.c, which edit graphs the same way):
 * the pass context with its def-use index, graph editing, static value information and
 * the pattern matcher.
 *
 * Editing model: passes never insert nodes. A rewrite marks the nodes it replaces dead and
 * overwrites the last of them (the one producing the pattern's result) with the fused
 * node, which keeps the node list in topological order; rt_opt_compact drops the dead
 * nodes and the values nothing uses any more at the end. */
#ifndef RT_OPT_H
#define RT_OPT_H

#include <stdbool.h>

#include "rt_backend.h"
#include "rt_graph.h"
#include "rt_optimize.h"

/* Elements of small integer tensors (shapes and the like) whose values are tracked. */
#define RT_OPT_DATA_MAX 16

/* What is known about a value without running the model. Unknown dims are symbols: a
 * negative dim -k is symbol k; values with the same symbol are equal at run time (graph
 * inputs' dims of one dim_param share a symbol, and so do dims derived the same way from
 * the same symbols). */
typedef struct rt_opt_info {
    rt_dtype dtype;     /* RT_DTYPE_UNDEFINED when unknown */
    rt_shape shape;     /* rank -1 when unknown */
    int n_data;         /* >= 0: the value is a small integer tensor whose elements follow */
    int64_t data[RT_OPT_DATA_MAX];
    int data_sym[RT_OPT_DATA_MAX]; /* 0: data[i] is known; k > 0: element i is symbol k */
} rt_opt_info;

typedef struct rt_opt {
    rt_graph *g;
    rt_backend *cpu;
    rt_kernel_ctx kctx;
    rt_optimize_report *rep;
    bool *dead;         /* per node */
    int *producer;      /* per value: producing live node, or -1 */
    int *use_start;     /* per value + 1: CSR offsets into uses */
    int *uses;          /* consuming live nodes, once per input slot */
    int n_indexed;      /* values covered by the index */
    rt_opt_info *info;  /* per value, from rt_opt_infer_all */
    int n_info;
    int64_t (*probe)[2];/* per symbol - 1: the values it takes in the two probe runs */
    int n_syms, cap_syms;
    int n_names;        /* counter for unique names of new values */
} rt_opt;

/* ---- index and editing (rt_opt_graph.c) ---- */

/* Rebuilds producer and uses for the live nodes. */
rt_status rt_opt_index(rt_opt *o, rt_error *err);
/* The consuming nodes of v (with repeats, one per input slot) and their count. */
const int *rt_opt_uses(const rt_opt *o, int v, int *n);
/* The one node that reads v, or -1 when none, several, or v is a graph output. */
int rt_opt_single_consumer(const rt_opt *o, int v);
/* The live node producing v if its op is op (RT_OP_COUNT: any), else -1. */
int rt_opt_producer(const rt_opt *o, int v, rt_op op);
/* The weight tensor of v, or NULL if v is not a constant. */
const rt_tensor *rt_opt_const(const rt_opt *o, int v);
/* The single element of a constant F32/F64 (or integer) v in *f; false otherwise. */
bool rt_opt_scalar(const rt_opt *o, int v, double *f);
/* Whether v is an intermediate that only node `node` reads and no graph output. */
bool rt_opt_private_to(const rt_opt *o, int v, int node);

/* Whether node i is live, writes an output 0 and has at least min_in inputs: what every
 * rewrite expects of the nodes it looks at (a malformed model may have others). */
bool rt_opt_node_ok(const rt_opt *o, int i, int min_in);
void rt_opt_kill(rt_opt *o, int node);
/* Makes every live reader of value from read value to instead. */
void rt_opt_replace_uses(rt_opt *o, int from, int to);
/* Overwrites node `at` (keeping its name) with a new node; attrs are taken over. */
rt_status rt_opt_replace_node(rt_opt *o, int at, rt_op op, const int *in, int n_in,
                              const int *out, int n_out, rt_attr *attrs, int n_attrs,
                              rt_error *err);
/* A new weight value holding t (taken over, also on failure), named after base; -1 on
 * failure with err set. */
int rt_opt_add_weight(rt_opt *o, const char *base, rt_tensor *t, rt_error *err);
/* Turns intermediate v into a weight holding t (taken over). */
void rt_opt_make_const(rt_opt *o, int v, rt_tensor *t);
/* Drops dead nodes and the values no node, input or output refers to. */
rt_status rt_opt_compact(rt_opt *o, rt_error *err);

/* Attribute builders for rewrites: each fills *a (its name copied); false when out of
 * memory. */
bool rt_opt_attr_int(rt_attr *a, const char *name, int64_t v);
bool rt_opt_attr_float(rt_attr *a, const char *name, float v);
bool rt_opt_attr_string(rt_attr *a, const char *name, const char *s);
bool rt_opt_attr_ints(rt_attr *a, const char *name, const int64_t *v, int n);
bool rt_opt_attr_floats(rt_attr *a, const char *name, const float *v, int n);
bool rt_opt_attr_strings(rt_attr *a, const char *name, const char *const *v, int n);
/* A deep copy of attribute src into *a; false when out of memory. */
bool rt_opt_attr_copy(rt_attr *a, const rt_attr *src);
/* Frees n attributes and the array (for rewrites that fail before handing them over). */
void rt_opt_attrs_free(rt_attr *attrs, int n);
/* Deep copies of node n's attributes but the one named skip (NULL: all), in a new array
 * with room for `room` more after them; *n_out is how many were copied. NULL when out of
 * memory. For a rewrite that keeps a node's attributes (the caller frees or hands over). */
rt_attr *rt_opt_attrs_copy_except(const rt_node *n, const char *skip, int room, int *n_out);

/* Infers node's outputs and runs its CPU kernel on the host tensors in[]; the outputs are
 * new tensors the caller frees. */
rt_status rt_opt_run_node(rt_opt *o, const rt_node *node, const rt_tensor *const *in,
                          rt_tensor **out, rt_error *err);

/* ---- static value information (rt_opt_shapes.c) ---- */

/* Recomputes o->info for every value, in node order. */
rt_status rt_opt_infer_all(rt_opt *o, rt_error *err);
/* (Re)sizes o->info for the graph's values and sets the information of graph inputs and
 * weights; node outputs start unknown. */
rt_status rt_opt_info_reset(rt_opt *o, rt_error *err);
/* Sets the information of v from the weight it has become. */
void rt_opt_info_set_const(rt_opt *o, int v);
/* Infers the outputs of one node from what is known of its inputs. */
rt_status rt_opt_infer_node(rt_opt *o, int node, rt_error *err);
/* Information on v (unknown for values beyond the last inference). */
const rt_opt_info *rt_opt_get_info(const rt_opt *o, int v);
/* Whether v is known to be F32 with a known rank. */
bool rt_opt_is_f32(const rt_opt *o, int v);
/* An element (known, or symbol sym > 0) as probe run `run` (0 or 1) sees it. */
int64_t rt_opt_probe_value(const rt_opt *o, int64_t known, int sym, int run);
/* A shape of rt_opt_info as probe run `run` sees it. */
rt_shape rt_opt_probe_shape(const rt_opt *o, const rt_shape *s, int run);

/* The activation node n applies as an rt_act (rt_fused.h), or false when it is none
 * (a Clip with bounds that are not constant F32 scalars). rt_opt_fuse_linear.c */
struct rt_act;
bool rt_opt_activation(const rt_opt *o, const rt_node *n, struct rt_act *act);

/* ---- QDQ weights (rt_opt_fuse_qdq.c) ---- */

/* The DequantizeLinear node producing v when v is a constant 2-D INT8 weight dequantized
 * (per tensor, or per output channel: axis 1 of a (K, N) weight, 0 of an (N, K) one when
 * trans_b; zero point 0, or 128 for UINT8) that infd.QLinear can hold; else -1. */
int rt_opt_qdq_weight(const rt_opt *o, int v, bool trans_b);
/* Whether DequantizeLinear node n makes such a weight for the one MatMul or Gemm that
 * reads it (constant folding leaves it to the Linear rewrite). */
bool rt_opt_qdq_kept(const rt_opt *o, const rt_node *n);
/* Overwrites node `at` with infd.QLinear(x, W, S, bias?) in weight-only mode computing
 * y, W and S made from DequantizeLinear node dq (rt_opt_qdq_weight). */
rt_status rt_opt_replace_qlinear(rt_opt *o, int at, int dq, bool trans_b, int x, int bias,
                                 int y, rt_error *err);

/* ---- the passes ---- */

rt_status rt_opt_pass_fold(rt_opt *o, rt_error *err);        /* rt_opt_fold.c */
rt_status rt_opt_pass_dead(rt_opt *o, rt_error *err);        /* rt_opt_fold.c */
rt_status rt_opt_pass_norm(rt_opt *o, rt_error *err);        /* rt_opt_fuse_norm.c */
rt_status rt_opt_pass_skip_norm(rt_opt *o, rt_error *err);   /* rt_opt_fuse_norm.c */
rt_status rt_opt_pass_linear(rt_opt *o, rt_error *err);      /* rt_opt_fuse_linear.c */
rt_status rt_opt_pass_activation(rt_opt *o, rt_error *err);  /* rt_opt_fuse_linear.c */
rt_status rt_opt_pass_attention(rt_opt *o, rt_error *err);   /* rt_opt_fuse_attention.c */
rt_status rt_opt_pass_elementwise(rt_opt *o, rt_error *err); /* rt_opt_fuse_elementwise.c */

/* ---- pattern matching (rt_opt_match.c) ----
 * A pattern is a small expression tree over values. An op node matches a value produced
 * by a live node of that op (children matching its inputs 0 and 1; Add and Mul also in
 * the swapped order); a var matches any value; a scalar matches a one-element constant
 * near `value` (any one if value is NaN); a weight any constant. A pattern node with a
 * slot (>= 0) binds the value it matched there, and a slot met again must bind the same
 * value, which is how a pattern says "the same x" or reuses a shared subexpression. */
typedef enum { RT_PAT_OP, RT_PAT_VAR, RT_PAT_SCALAR, RT_PAT_WEIGHT } rt_pat_kind;

typedef struct rt_pat {
    rt_pat_kind kind;
    rt_op op;
    const struct rt_pat *a, *b;
    int slot;
    float value;
} rt_pat;

#define RT_PAT_SLOTS 24
#define RT_PAT_MAX_NODES 32

#define RT_PAT_OP1(OP, A, SLOT) (&(const rt_pat){RT_PAT_OP, RT_OP_##OP, A, NULL, SLOT, 0})
#define RT_PAT_OP2(OP, A, B, SLOT) (&(const rt_pat){RT_PAT_OP, RT_OP_##OP, A, B, SLOT, 0})
#define RT_PAT_VAR(SLOT) (&(const rt_pat){RT_PAT_VAR, RT_OP_COUNT, NULL, NULL, SLOT, 0})
#define RT_PAT_SCALAR(V, SLOT) (&(const rt_pat){RT_PAT_SCALAR, RT_OP_COUNT, NULL, NULL, SLOT, V})
#define RT_PAT_WEIGHT(SLOT) (&(const rt_pat){RT_PAT_WEIGHT, RT_OP_COUNT, NULL, NULL, SLOT, 0})

typedef struct rt_match {
    int slots[RT_PAT_SLOTS];   /* bound values, -1 where unbound */
    int nodes[RT_PAT_MAX_NODES];
    int n_nodes;               /* matched nodes, the root's producer first */
} rt_match;

/* Matches pat against value v. On success every matched node but the root's producer
 * has all its readers among the matched nodes and no output that is a graph output, so
 * the whole match may be replaced by one node writing v. */
bool rt_opt_match(const rt_opt *o, const rt_pat *pat, int v, rt_match *m);
/* The node that produced the value bound to slot s. */
static inline int rt_match_node(const rt_opt *o, const rt_match *m, int s)
{
    return rt_opt_producer(o, m->slots[s], RT_OP_COUNT);
}
/* Marks every matched node dead except the root's producer. */
void rt_opt_match_kill(rt_opt *o, const rt_match *m);

#endif
