/* rt_opt_shapes.c: static shape inference for the optimizer, by probing.
 *
 * Each unknown dim is a symbol (rt_opt_info). To infer a node's outputs, the op's own
 * infer function runs twice on its inputs' shapes with every symbol replaced by a probe
 * value, a different one in each run: an output dim equal in both runs is static, one that
 * takes the probe values of a symbol is that symbol, and any other is a new symbol
 * identified by its pair of values (so "batch * 128" derived twice is one symbol). Small
 * integer tensors (shapes and their pieces) carry their elements the same way, computed by
 * running the op's CPU kernel in both runs: Shape(x)[i] of a static dim is a known number
 * even when x's batch dim is not. No shape rule is written twice: the ops' infer functions
 * and kernels are the only definition. */
#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"

/* Probe values of base symbol k (1, 2, ...) in the two runs: distinct, above any small
 * dim, and small enough that products of several stay far from overflow. */
#define PROBE_A(k) (3001 + 8 * (int64_t)(k))
#define PROBE_B(k) (5003 + 12 * (int64_t)(k))

static const rt_opt_info unknown_info = {.dtype = RT_DTYPE_UNDEFINED, .shape = {.rank = -1},
                                         .n_data = -1};

/* Whether op's infer function reads the data of input i (not only its shape). */
static bool infer_reads_data(rt_op op, int i)
{
    switch (op) {
    case RT_OP_RESHAPE: case RT_OP_TILE: case RT_OP_SQUEEZE: case RT_OP_UNSQUEEZE:
    case RT_OP_REDUCE_MEAN: case RT_OP_REDUCE_SUM: case RT_OP_REDUCE_MAX: case RT_OP_EXPAND:
    case RT_OP_SPLIT:
        return i == 1;
    case RT_OP_SLICE: return i >= 1;
    case RT_OP_PAD: return i == 1 || i == 3;
    case RT_OP_CONSTANT_OF_SHAPE: return i == 0;
    case RT_OP_RANGE: return true;
    default: return false;
    }
}

const rt_opt_info *rt_opt_get_info(const rt_opt *o, int v)
{
    return v >= 0 && v < o->n_info ? &o->info[v] : &unknown_info;
}

bool rt_opt_is_f32(const rt_opt *o, int v)
{
    const rt_opt_info *i = rt_opt_get_info(o, v);
    return i->dtype == RT_DTYPE_F32 && i->shape.rank >= 0;
}

int64_t rt_opt_probe_value(const rt_opt *o, int64_t known, int sym, int run)
{
    return sym ? o->probe[sym - 1][run] : known;
}

/* The symbol with probe values (a, b), created if new; 0 when out of memory. */
static int symbol_for(rt_opt *o, int64_t a, int64_t b)
{
    for (int k = 0; k < o->n_syms; k++)
        if (o->probe[k][0] == a && o->probe[k][1] == b)
            return k + 1;
    if (o->n_syms == o->cap_syms) {
        int cap = o->cap_syms ? 2 * o->cap_syms : 64;
        void *p = realloc(o->probe, sizeof *o->probe * (size_t)cap);
        if (!p)
            return 0;
        o->probe = p;
        o->cap_syms = cap;
    }
    o->probe[o->n_syms][0] = a;
    o->probe[o->n_syms][1] = b;
    return ++o->n_syms;
}

static int new_base_symbol(rt_opt *o)
{
    return symbol_for(o, PROBE_A(o->n_syms + 1), PROBE_B(o->n_syms + 1));
}

/* A dim or element seen as a in run 0 and b in run 1: known, or a symbol (-1 on OOM). */
static int classify(rt_opt *o, int64_t a, int64_t b, int64_t *known)
{
    *known = a;
    if (a == b)
        return 0;
    int k = symbol_for(o, a, b);
    return k ? k : -1;
}

rt_shape rt_opt_probe_shape(const rt_opt *o, const rt_shape *s, int run)
{
    rt_shape p = *s;
    for (int d = 0; d < s->rank; d++)
        if (s->dims[d] < 0)
            p.dims[d] = o->probe[-s->dims[d] - 1][run];
    return p;
}

static bool small_int(rt_dtype dt)
{
    return dt == RT_DTYPE_I64 || dt == RT_DTYPE_I32;
}

/* Elements of a weight small enough to track. */
static void info_from_weight(rt_opt_info *i, const rt_tensor *t)
{
    *i = unknown_info;
    i->dtype = t->dtype;
    i->shape = t->shape;
    int64_t n = rt_tensor_numel(t);
    if (!small_int(t->dtype) || n > RT_OPT_DATA_MAX)
        return;
    i->n_data = (int)n;
    for (int k = 0; k < i->n_data; k++) {
        i->data[k] = rt_dtype_load_i64(t->dtype, t->data, (size_t)k);
        i->data_sym[k] = 0;
    }
}

void rt_opt_info_set_const(rt_opt *o, int v)
{
    if (v < o->n_info && rt_opt_const(o, v))
        info_from_weight(&o->info[v], rt_opt_const(o, v));
}

rt_status rt_opt_info_reset(rt_opt *o, rt_error *err)
{
    rt_graph *g = o->g;
    rt_opt_info *info = realloc(o->info, sizeof *info * (size_t)(g->n_values ? g->n_values : 1));
    if (!info)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory for shape inference");
    o->info = info;
    o->n_info = g->n_values;
    o->n_syms = 0;
    for (int v = 0; v < g->n_values; v++) {
        const rt_value *val = &g->values[v];
        info[v] = unknown_info;
        if (val->kind == RT_VALUE_WEIGHT && val->data)
            info_from_weight(&info[v], val->data);
    }
    /* graph inputs: dims of one dim_param share a symbol */
    for (int i = 0; i < g->n_inputs; i++) {
        int v = g->inputs[i];
        const rt_value *val = &g->values[v];
        if (val->dtype == RT_DTYPE_UNDEFINED || val->shape.rank < 0)
            continue;
        info[v].dtype = val->dtype;
        info[v].shape = val->shape;
        for (int d = 0; d < val->shape.rank; d++) {
            if (val->shape.dims[d] >= 0)
                continue;
            int sym = 0;
            for (int j = 0; j < i && !sym && val->dim_params[d]; j++) {
                const rt_value *other = &g->values[g->inputs[j]];
                for (int e = 0; e < other->shape.rank && !sym; e++)
                    if (other->dim_params[e] &&
                        strcmp(other->dim_params[e], val->dim_params[d]) == 0)
                        sym = (int)-info[g->inputs[j]].shape.dims[e];
            }
            for (int e = 0; e < d && !sym && val->dim_params[d]; e++)
                if (val->dim_params[e] && strcmp(val->dim_params[e], val->dim_params[d]) == 0)
                    sym = (int)-info[v].shape.dims[e];
            if (!sym && !(sym = new_base_symbol(o)))
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory for shape inference");
            info[v].shape.dims[d] = -sym;
        }
    }
    return RT_OK;
}

/* Probe tensors of a node's inputs for one run; element buffers come from bufs. Returns
 * false when an input the op needs is unknown. */
static bool probe_inputs(const rt_opt *o, const rt_node *n, int run, rt_tensor *t,
                         const rt_tensor **in, int64_t (*bufs)[RT_OPT_DATA_MAX], bool *all_data)
{
    *all_data = true;
    for (int i = 0; i < n->n_inputs; i++) {
        int v = n->inputs[i];
        in[i] = NULL;
        if (v < 0)
            continue;
        const rt_opt_info *info = rt_opt_get_info(o, v);
        const rt_tensor *w = rt_opt_const(o, v);
        if (info->dtype == RT_DTYPE_UNDEFINED || info->shape.rank < 0)
            return false;
        t[i] = (rt_tensor){.dtype = info->dtype, .shape = rt_opt_probe_shape(o, &info->shape, run)};
        if (w) {
            t[i].data = w->data;
        } else if (info->n_data >= 0) {
            for (int k = 0; k < info->n_data; k++) {
                int64_t e = rt_opt_probe_value(o, info->data[k], info->data_sym[k], run);
                if (info->dtype == RT_DTYPE_I64)
                    bufs[i][k] = e;
                else
                    ((int32_t *)bufs[i])[k] = (int32_t)e;
            }
            t[i].data = bufs[i];
        } else {
            *all_data = false;
            if (infer_reads_data(n->op, i))
                return false;
        }
        in[i] = &t[i];
    }
    return true;
}

/* Maps the two runs' output shapes into info; false if they disagree in dtype or rank. */
static bool merge_shapes(rt_opt *o, const rt_tensor *a, const rt_tensor *b, rt_opt_info *info)
{
    *info = unknown_info;
    if (a->dtype != b->dtype || a->shape.rank != b->shape.rank)
        return true;
    info->dtype = a->dtype;
    info->shape = a->shape;
    for (int d = 0; d < a->shape.rank; d++) {
        int64_t known;
        int sym = classify(o, a->shape.dims[d], b->shape.dims[d], &known);
        if (sym < 0)
            return false;
        info->shape.dims[d] = sym ? -sym : known;
    }
    return true;
}

/* Runs the kernel in both runs and records the output elements; outputs stay without
 * data if anything fails (the op may reject probe values). */
static rt_status probe_data(rt_opt *o, const rt_node *n, const rt_tensor *const *ina,
                            const rt_tensor *const *inb, rt_error *err)
{
    rt_tensor *outs[2][RT_OPT_DATA_MAX] = {{0}};
    rt_error scratch;
    if (n->n_outputs > RT_OPT_DATA_MAX)
        return RT_OK;
    rt_status st = rt_opt_run_node(o, n, ina, outs[0], &scratch);
    if (st == RT_OK)
        st = rt_opt_run_node(o, n, inb, outs[1], &scratch);
    rt_status res = st == RT_ERR_NOMEM ? rt_error_set(err, st, "%s", scratch.text) : RT_OK;
    for (int k = 0; st == RT_OK && k < n->n_outputs; k++) {
        if (n->outputs[k] < 0 || n->outputs[k] >= o->n_info || !outs[0][k] || !outs[1][k])
            continue;
        rt_opt_info *info = &o->info[n->outputs[k]];
        int64_t cnt = rt_tensor_numel(outs[0][k]);
        info->n_data = (int)cnt;
        for (int e = 0; e < cnt; e++) {
            int64_t a = rt_dtype_load_i64(info->dtype, outs[0][k]->data, (size_t)e);
            int64_t b = rt_dtype_load_i64(info->dtype, outs[1][k]->data, (size_t)e);
            int sym = classify(o, a, b, &info->data[e]);
            if (sym < 0) {
                res = rt_error_set(err, RT_ERR_NOMEM, "out of memory for shape inference");
                break;
            }
            info->data_sym[e] = sym;
        }
    }
    for (int r = 0; r < 2; r++)
        for (int k = 0; k < n->n_outputs; k++)
            rt_tensor_free(outs[r][k]);
    return res;
}

rt_status rt_opt_infer_node(rt_opt *o, int node, rt_error *err)
{
    const rt_node *n = &o->g->nodes[node];
    for (int k = 0; k < n->n_outputs; k++)
        if (n->outputs[k] >= 0 && n->outputs[k] < o->n_info)
            o->info[n->outputs[k]] = unknown_info;
    /* nodes with more inputs than this stay unknown (the buffers live on the stack) */
    enum { MAX_IN = 32 };
    if (n->n_inputs > MAX_IN || n->n_outputs > RT_OPT_DATA_MAX)
        return RT_OK;
    rt_tensor t[2][MAX_IN], shapes[2][RT_OPT_DATA_MAX];
    const rt_tensor *in[2][MAX_IN];
    int64_t bufs[2][MAX_IN][RT_OPT_DATA_MAX];
    bool all_data = true;
    rt_error scratch;
    for (int r = 0; r < 2; r++) {
        if (!probe_inputs(o, n, r, t[r], in[r], bufs[r], &all_data))
            return RT_OK;
        memset(shapes[r], 0, sizeof shapes[r]);
        if (rt_op_infer(n, in[r], n->n_inputs, shapes[r], n->n_outputs, &scratch) != RT_OK)
            return RT_OK;
    }
    bool small = true;
    for (int k = 0; k < n->n_outputs; k++) {
        int v = n->outputs[k];
        if (v < 0 || v >= o->n_info)
            continue;
        if (!merge_shapes(o, &shapes[0][k], &shapes[1][k], &o->info[v]))
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory for shape inference");
        int64_t cnt = rt_shape_numel(&shapes[0][k].shape);
        small = small && small_int(shapes[0][k].dtype) && cnt >= 0 && cnt <= RT_OPT_DATA_MAX &&
                cnt == rt_shape_numel(&shapes[1][k].shape);
    }
    /* elements of small integer outputs, when every input's elements are known (Shape
     * needs only its input's shape) */
    if (small && (all_data || n->op == RT_OP_SHAPE))
        return probe_data(o, n, in[0], in[1], err);
    return RT_OK;
}

rt_status rt_opt_infer_all(rt_opt *o, rt_error *err)
{
    rt_status st = rt_opt_info_reset(o, err);
    for (int i = 0; st == RT_OK && i < o->g->n_nodes; i++)
        if (!o->dead[i])
            st = rt_opt_infer_node(o, i, err);
    return st;
}
