/* rt_exec.c: node-by-node execution with per-shape memory plans (see rt_exec.h). */
#include "rt_exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_memplan.h"

#define RT_EXEC_MAX_PLANS 8
#define RT_EXEC_MAX_IO 64 /* node inputs/outputs beyond this are refused at create */

typedef struct rt_plan {
    rt_shape *input_shapes; /* key: one per graph input */
    rt_dtype *dtypes;       /* per value, as inferred */
    rt_shape *shapes;       /* per value, as inferred */
    size_t *offsets;        /* per value: arena offset of intermediates */
    void *arena;
    size_t arena_bytes, naive_bytes;
    uint64_t last_used;     /* for LRU eviction */
} rt_plan;

struct rt_exec {
    const rt_graph *g;
    rt_backend *be;
    rt_kernel_ctx ctx;
    rt_tensor *vt;          /* one tensor header per value, reused across runs */
    rt_memplan_buffer *bufs;/* lifetimes per value (sizes filled per plan) */
    rt_plan *plans[RT_EXEC_MAX_PLANS];
    int n_plans;
    uint64_t clock;
};

/* Status used internally when a planned run meets a shape its plan did not foresee. */
#define REPLAN ((rt_status)-1)

static bool is_intermediate(const rt_exec *x, int v)
{
    return x->g->values[v].kind == RT_VALUE_INTERMEDIATE;
}

static void plan_free(rt_exec *x, rt_plan *p)
{
    if (!p)
        return;
    rt_backend_buffer_free(x->be, p->arena);
    free(p->input_shapes);
    free(p->dtypes);
    free(p->shapes);
    free(p->offsets);
    free(p);
}

rt_exec *rt_exec_create(const rt_graph *g, rt_backend *be, rt_error *err)
{
    for (int i = 0; i < g->n_nodes; i++)
        if (g->nodes[i].n_inputs > RT_EXEC_MAX_IO || g->nodes[i].n_outputs > RT_EXEC_MAX_IO) {
            rt_error_set(err, RT_ERR_UNSUPPORTED, "node '%s' has more than %d inputs or outputs",
                         g->nodes[i].name, RT_EXEC_MAX_IO);
            return NULL;
        }
    rt_exec *x = calloc(1, sizeof *x);
    size_t nv = (size_t)(g->n_values ? g->n_values : 1);
    if (x) {
        x->vt = calloc(nv, sizeof *x->vt);
        x->bufs = calloc(nv, sizeof *x->bufs);
    }
    if (!x || !x->vt || !x->bufs) {
        rt_exec_free(x);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory creating the executor");
        return NULL;
    }
    x->g = g;
    x->be = be;
    x->ctx.threads = be->threads > 0 ? be->threads : 1;
    /* lifetimes: written by its producer, read until its last consumer; graph outputs stay
     * live to the end so they can be copied out */
    for (int v = 0; v < g->n_values; v++)
        x->bufs[v] = (rt_memplan_buffer){0, -1, -1, -1};
    for (int i = 0; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                x->bufs[n->outputs[k]].first = x->bufs[n->outputs[k]].last = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && is_intermediate(x, n->inputs[k]))
                x->bufs[n->inputs[k]].last = i;
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (is_intermediate(x, g->outputs[k]))
            x->bufs[g->outputs[k]].last = g->n_nodes;
    for (int v = 0; v < g->n_values; v++) {
        x->vt[v].dtype = g->values[v].dtype;
        if (g->values[v].kind == RT_VALUE_WEIGHT && g->values[v].data) {
            x->vt[v] = *g->values[v].data;
            x->vt[v].owns_data = false;
            x->vt[v].string_pool = NULL;
        }
    }
    return x;
}

void rt_exec_set_all_reduce(rt_exec *x, rt_all_reduce_fn fn, void *arg)
{
    x->ctx.all_reduce = fn;
    x->ctx.all_reduce_arg = arg;
}

void rt_exec_free(rt_exec *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n_plans; i++)
        plan_free(x, x->plans[i]);
    rt_kernel_ctx_release(&x->ctx);
    free(x->vt);
    free(x->bufs);
    free(x);
}

static rt_plan *find_plan(rt_exec *x, const rt_tensor *const *inputs)
{
    for (int i = 0; i < x->n_plans; i++) {
        rt_plan *p = x->plans[i];
        int k = 0;
        while (k < x->g->n_inputs && rt_shape_equal(&p->input_shapes[k], &inputs[k]->shape))
            k++;
        if (k == x->g->n_inputs)
            return p;
    }
    return NULL;
}

/* Gathers the input tensor pointers of node n from the value table. */
static void node_inputs(rt_exec *x, const rt_node *n, const rt_tensor **in)
{
    for (int k = 0; k < n->n_inputs; k++)
        in[k] = n->inputs[k] >= 0 ? &x->vt[n->inputs[k]] : NULL;
}

static rt_status infer_node(rt_exec *x, const rt_node *n, const rt_tensor **in, rt_tensor *out,
                            rt_error *err)
{
    memset(out, 0, sizeof *out * (size_t)n->n_outputs);
    node_inputs(x, n, in);
    rt_status st = rt_op_infer(n, in, n->n_inputs, out, n->n_outputs, err);
    if (st != RT_OK)
        rt_error_prefix(err, "node '%s' (%s): ", n->name, rt_op_name(n->op));
    return st;
}

static rt_status run_kernel(rt_exec *x, const rt_node *n, const rt_tensor **in, rt_error *err)
{
    rt_tensor *out[RT_EXEC_MAX_IO];
    for (int k = 0; k < n->n_outputs; k++)
        out[k] = n->outputs[k] >= 0 ? &x->vt[n->outputs[k]] : NULL;
    rt_status st = x->be->vt->node_run(x->be, &x->ctx, n, in, n->n_inputs, out, n->n_outputs, err);
    if (st != RT_OK)
        rt_error_prefix(err, "node '%s' (%s): ", n->name, rt_op_name(n->op));
    return st;
}

static void bind_inputs(rt_exec *x, const rt_tensor *const *inputs)
{
    for (int k = 0; k < x->g->n_inputs; k++) {
        rt_tensor *t = &x->vt[x->g->inputs[k]];
        *t = *inputs[k];
        t->owns_data = false;
        t->string_pool = NULL;
    }
}

static rt_status copy_outputs(rt_exec *x, rt_tensor **outputs, rt_error *err)
{
    for (int k = 0; k < x->g->n_outputs; k++) {
        outputs[k] = rt_tensor_clone(&x->vt[x->g->outputs[k]], err);
        if (!outputs[k]) {
            for (int j = 0; j < k; j++) {
                rt_tensor_free(outputs[j]);
                outputs[j] = NULL;
            }
            return err ? err->status : RT_ERR_NOMEM;
        }
    }
    return RT_OK;
}

/* A run inside plan p. Returns REPLAN if an inferred shape differs from the plan. */
static rt_status run_planned(rt_exec *x, rt_plan *p, rt_error *err)
{
    const rt_tensor *in[RT_EXEC_MAX_IO];
    rt_tensor out[RT_EXEC_MAX_IO];
    for (int i = 0; i < x->g->n_nodes; i++) {
        const rt_node *n = &x->g->nodes[i];
        rt_status st = infer_node(x, n, in, out, err);
        if (st != RT_OK)
            return st;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0)
                continue;
            if (out[k].dtype != p->dtypes[v] || !rt_shape_equal(&out[k].shape, &p->shapes[v]))
                return REPLAN;
            rt_tensor *t = &x->vt[v];
            t->dtype = out[k].dtype;
            t->shape = out[k].shape;
            t->data = (char *)p->arena + p->offsets[v];
        }
        st = run_kernel(x, n, in, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

/* A run that allocates every intermediate separately and records dtypes and shapes in p. */
static rt_status run_discovering(rt_exec *x, rt_plan *p, void **bufs, rt_error *err)
{
    const rt_tensor *in[RT_EXEC_MAX_IO];
    rt_tensor out[RT_EXEC_MAX_IO];
    for (int i = 0; i < x->g->n_nodes; i++) {
        const rt_node *n = &x->g->nodes[i];
        rt_status st = infer_node(x, n, in, out, err);
        if (st != RT_OK)
            return st;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v < 0)
                continue;
            int64_t numel = rt_shape_numel(&out[k].shape);
            size_t elem = rt_dtype_size(out[k].dtype);
            if (numel < 0 || !elem || (uint64_t)numel > (SIZE_MAX / 4) / elem)
                return rt_error_set(err, RT_ERR_INVALID_ARG,
                                    "node '%s' (%s): output %d has an invalid dtype or shape",
                                    n->name, rt_op_name(n->op), k);
            bufs[v] = rt_aligned_alloc((size_t)numel * elem);
            if (!bufs[v])
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory for output of node '%s'",
                                    n->name);
            p->dtypes[v] = out[k].dtype;
            p->shapes[v] = out[k].shape;
            rt_tensor *t = &x->vt[v];
            t->dtype = out[k].dtype;
            t->shape = out[k].shape;
            t->data = bufs[v];
        }
        st = run_kernel(x, n, in, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

static rt_plan *plan_alloc(const rt_exec *x)
{
    rt_plan *p = calloc(1, sizeof *p);
    size_t nv = (size_t)(x->g->n_values ? x->g->n_values : 1);
    size_t ni = (size_t)(x->g->n_inputs ? x->g->n_inputs : 1);
    if (!p)
        return NULL;
    p->input_shapes = calloc(ni, sizeof *p->input_shapes);
    p->dtypes = calloc(nv, sizeof *p->dtypes);
    p->shapes = calloc(nv, sizeof *p->shapes);
    p->offsets = calloc(nv, sizeof *p->offsets);
    if (!p->input_shapes || !p->dtypes || !p->shapes || !p->offsets) {
        free(p->input_shapes);
        free(p->dtypes);
        free(p->shapes);
        free(p->offsets);
        free(p);
        return NULL;
    }
    return p;
}

/* The inputs (bit i for input i) whose buffer output 0 of node n may overwrite: the
 * kernel reads each input element before it writes the output element of the same index,
 * and nothing else. A fused elementwise chain loads input 0 block by block into the
 * output and then reads its other operands, so its input 0 qualifies only when it is not
 * also one of them. */
static unsigned inplace_inputs(const rt_node *n)
{
    switch (n->op) {
    case RT_OP_ADD: case RT_OP_SUB: case RT_OP_MUL: case RT_OP_DIV: case RT_OP_POW:
    case RT_OP_SKIP_LAYER_NORM:
        return 3;
    case RT_OP_MIN: case RT_OP_MAX:
        return n->n_inputs == 2 ? 3 : 0;
    case RT_OP_WHERE:
        return 6;
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_NEG: case RT_OP_ABS:
    case RT_OP_RECIPROCAL: case RT_OP_RELU: case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID:
    case RT_OP_TANH: case RT_OP_ERF: case RT_OP_NOT: case RT_OP_CLIP: case RT_OP_GELU:
    case RT_OP_ALL_REDUCE: case RT_OP_SOFTMAX: case RT_OP_LOG_SOFTMAX: case RT_OP_LAYER_NORMALIZATION:
    case RT_OP_BATCH_NORMALIZATION:
        return 1;
    case RT_OP_FUSED_ELEMENTWISE:
        for (int k = 1; k < n->n_inputs; k++)
            if (n->inputs[k] == n->inputs[0])
                return 0;
        return 1;
    default:
        return 0;
    }
}

/* Lets output 0 of each node take over the buffer of an input that dies there, where the
 * op allows it and the sizes are equal. */
static void plan_inplace(rt_exec *x)
{
    for (int v = 0; v < x->g->n_values; v++)
        x->bufs[v].reuse = -1;
    for (int i = 0; i < x->g->n_nodes; i++) {
        const rt_node *n = &x->g->nodes[i];
        unsigned mask = n->n_outputs > 0 && n->outputs[0] >= 0 ? inplace_inputs(n) : 0;
        for (int k = 0; k < n->n_inputs && k < 8; k++) {
            int u = n->inputs[k];
            if (!(mask & (1u << k)) || u < 0 || !is_intermediate(x, u) || x->bufs[u].last != i ||
                x->bufs[u].size != x->bufs[n->outputs[0]].size)
                continue;
            x->bufs[n->outputs[0]].reuse = u;
            break;
        }
    }
}

/* Places the recorded intermediates of p in one arena. */
static rt_status plan_arena(rt_exec *x, rt_plan *p, rt_error *err)
{
    p->naive_bytes = 0;
    for (int v = 0; v < x->g->n_values; v++) {
        x->bufs[v].size = 0;
        if (x->bufs[v].first >= 0) {
            x->bufs[v].size = (size_t)rt_shape_numel(&p->shapes[v]) * rt_dtype_size(p->dtypes[v]);
            p->naive_bytes += x->bufs[v].size;
        }
    }
    plan_inplace(x);
    rt_status st = rt_memplan_assign(x->bufs, x->g->n_values, p->offsets, &p->arena_bytes, err);
    if (st != RT_OK)
        return st;
    p->arena = rt_backend_buffer_alloc(x->be, p->arena_bytes ? p->arena_bytes : 64);
    if (!p->arena)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory for a %zu-byte activation arena",
                            p->arena_bytes);
    return RT_OK;
}

static void plan_insert(rt_exec *x, rt_plan *p)
{
    if (x->n_plans == RT_EXEC_MAX_PLANS) {
        int lru = 0;
        for (int i = 1; i < x->n_plans; i++)
            if (x->plans[i]->last_used < x->plans[lru]->last_used)
                lru = i;
        plan_free(x, x->plans[lru]);
        x->plans[lru] = x->plans[--x->n_plans];
    }
    x->plans[x->n_plans++] = p;
}

static void plan_remove(rt_exec *x, rt_plan *p)
{
    for (int i = 0; i < x->n_plans; i++)
        if (x->plans[i] == p) {
            x->plans[i] = x->plans[--x->n_plans];
            plan_free(x, p);
            return;
        }
}

/* Discovery run: executes with separate buffers, returns outputs, then builds the plan. */
static rt_status run_and_plan(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                              rt_error *err)
{
    rt_plan *p = plan_alloc(x);
    void **bufs = calloc((size_t)(x->g->n_values ? x->g->n_values : 1), sizeof *bufs);
    rt_status st = RT_OK;
    if (!p || !bufs)
        st = rt_error_set(err, RT_ERR_NOMEM, "out of memory planning a run");
    if (st == RT_OK)
        st = run_discovering(x, p, bufs, err);
    if (st == RT_OK)
        st = copy_outputs(x, outputs, err);
    for (int v = 0; v < x->g->n_values; v++)
        rt_aligned_free(bufs ? bufs[v] : NULL);
    free(bufs);
    if (st == RT_OK) {
        for (int k = 0; k < x->g->n_inputs; k++)
            p->input_shapes[k] = inputs[k]->shape;
        st = plan_arena(x, p, err);
        if (st != RT_OK) {
            for (int k = 0; k < x->g->n_outputs; k++) {
                rt_tensor_free(outputs[k]);
                outputs[k] = NULL;
            }
        }
    }
    if (st != RT_OK) {
        plan_free(x, p);
        return st;
    }
    p->last_used = ++x->clock;
    plan_insert(x, p);
    return RT_OK;
}

rt_status rt_exec_run(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                      rt_error *err)
{
    rt_kernel_ctx_reset(&x->ctx);
    bind_inputs(x, inputs);
    rt_plan *p = find_plan(x, inputs);
    if (!p)
        return run_and_plan(x, inputs, outputs, err);
    p->last_used = ++x->clock;
    rt_status st = run_planned(x, p, err);
    if (st == REPLAN) {
        plan_remove(x, p);
        rt_kernel_ctx_reset(&x->ctx);
        return run_and_plan(x, inputs, outputs, err);
    }
    if (st != RT_OK)
        return st;
    st = rt_backend_synchronize(x->be, err);
    return st == RT_OK ? copy_outputs(x, outputs, err) : st;
}

void rt_exec_memory(const rt_exec *x, size_t *arena_bytes, size_t *naive_bytes, int *n_plans)
{
    *arena_bytes = *naive_bytes = 0;
    for (int i = 0; i < x->n_plans; i++)
        if (x->plans[i]->arena_bytes >= *arena_bytes) {
            *arena_bytes = x->plans[i]->arena_bytes;
            *naive_bytes = x->plans[i]->naive_bytes;
        }
    *n_plans = x->n_plans;
}
