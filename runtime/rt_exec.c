/* rt_exec.c: node-by-node execution with per-shape memory plans (see rt_exec.h).
 *
 * On a device backend (rt_backend_is_host false) the arena is device memory: weights are
 * loaded onto the device once at create, graph inputs are uploaded into the plan's arena
 * and outputs downloaded, the values a node reads on the host (the backend's host_inputs:
 * Reshape's shape, Clip's bounds, ...) are passed as host views, and a plan that reads
 * nothing but weights on the host is recorded once as a graph after a warm-up run and
 * replayed from then on. */
#include "rt_exec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "rt_memplan.h"

#define RT_EXEC_MAX_PLANS 8
#define RT_EXEC_MAX_IO 64 /* node inputs/outputs beyond this are refused at create */
#define RT_EXEC_HOST_BITS 32 /* inputs a node may read on the host: bits of host_inputs */

typedef struct rt_plan {
    rt_shape *input_shapes; /* key: one per graph input */
    rt_dtype *dtypes;       /* per value, as inferred */
    rt_shape *shapes;       /* per value, as inferred */
    size_t *offsets;        /* per value: arena offset of placed values (see placed()) */
    void *arena;
    size_t arena_bytes, naive_bytes;
    uint64_t last_used;     /* for LRU eviction */
    int runs;               /* runs inside this plan so far */
    void *graph;            /* device backends: the run recorded for replay, or NULL */
    bool no_graph;          /* recording failed or is off: run node by node */
} rt_plan;

struct rt_exec {
    const rt_graph *g;
    rt_backend *be;
    rt_kernel_ctx ctx;
    rt_tensor *vt;          /* one tensor header per value, reused across runs; its data is
                             * backend memory (device memory on a device backend) */
    rt_memplan_buffer *bufs;/* lifetimes per value (sizes filled per plan) */
    rt_plan *plans[RT_EXEC_MAX_PLANS];
    int n_plans;
    uint64_t clock;
    /* device backends only (NULL and false on the host) */
    bool device;
    unsigned *host_mask;    /* per node: the inputs it reads on the host */
    rt_tensor *host;        /* per value: its host view (graph inputs, values read on the host) */
    bool *mirrored;         /* per value: an intermediate read on the host, downloaded into
                             * host[v] (owned) after its producer runs */
    size_t *mirror_cap;     /* bytes allocated for host[v].data of a mirrored value */
    bool graphs;            /* only weights are read on the host: plans may be recorded */
    /* kernel launches of the last node-by-node run and of the last run (backends that
     * count them), and whether the last run replayed a recording */
    uint64_t launches_eager, launches_last;
    bool replayed_last;
};

/* Status used internally when a planned run meets a shape its plan did not foresee. */
#define REPLAN ((rt_status)-1)

static bool is_intermediate(const rt_exec *x, int v)
{
    return x->g->values[v].kind == RT_VALUE_INTERMEDIATE;
}

/* Values the plans place in the arena: intermediates, and on a device the graph inputs
 * (uploaded there before each run). */
static bool placed(const rt_exec *x, int v)
{
    return is_intermediate(x, v) || (x->device && x->g->values[v].kind == RT_VALUE_INPUT);
}

static void plan_free(rt_exec *x, rt_plan *p)
{
    if (!p)
        return;
    if (p->graph)
        x->be->vt->graph_free(x->be, p->graph);
    rt_backend_buffer_free(x->be, p->arena);
    free(p->input_shapes);
    free(p->dtypes);
    free(p->shapes);
    free(p->offsets);
    free(p);
}

/* Weight v as the kernels read it: the graph's own tensor on the host, the backend's
 * resident copy on a device. */
static rt_status bind_weight(rt_exec *x, int v, rt_error *err)
{
    if (!x->device) {
        x->vt[v] = *x->g->values[v].data;
        x->vt[v].owns_data = false;
        x->vt[v].string_pool = NULL;
        return RT_OK;
    }
    rt_status st = x->be->vt->weight_load(x->be, x->g, v, &x->vt[v], err);
    if (st != RT_OK)
        rt_error_prefix(err, "weight '%s': ", x->g->values[v].name);
    return st;
}

/* Which inputs each node reads on the host, and the host views of the weights among them;
 * other values read on the host are graph inputs (bound per run) or intermediates
 * (mirrored), and either keeps the plans from being recorded. */
static rt_status device_setup(rt_exec *x, rt_error *err)
{
    const rt_graph *g = x->g;
    size_t nn = (size_t)(g->n_nodes ? g->n_nodes : 1), nv = (size_t)(g->n_values ? g->n_values : 1);
    x->host_mask = calloc(nn, sizeof *x->host_mask);
    x->host = calloc(nv, sizeof *x->host);
    x->mirrored = calloc(nv, sizeof *x->mirrored);
    x->mirror_cap = calloc(nv, sizeof *x->mirror_cap);
    if (!x->host_mask || !x->host || !x->mirrored || !x->mirror_cap)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory creating the executor");
    x->graphs = x->be->vt->capture_begin != NULL;
    for (int i = 0; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        x->host_mask[i] = x->be->vt->host_inputs(x->be, n);
        for (int k = 0; k < n->n_inputs && k < RT_EXEC_HOST_BITS; k++) {
            int v = n->inputs[k];
            if (v < 0 || !(x->host_mask[i] >> k & 1u))
                continue;
            const rt_value *val = &g->values[v];
            if (val->kind == RT_VALUE_WEIGHT && val->data) {
                x->host[v] = *val->data;
                x->host[v].owns_data = false;
                x->host[v].string_pool = NULL;
            } else {
                x->graphs = false;
                x->mirrored[v] = val->kind == RT_VALUE_INTERMEDIATE;
            }
        }
    }
    return RT_OK;
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
    x->device = !rt_backend_is_host(be);
    /* lifetimes: written by its producer (a graph input on a device: before the first
     * node), read until its last consumer; graph outputs stay live to the end so they can
     * be copied out */
    for (int v = 0; v < g->n_values; v++) {
        int first = placed(x, v) && !is_intermediate(x, v) ? 0 : -1;
        x->bufs[v] = (rt_memplan_buffer){0, first, first, -1};
    }
    for (int i = 0; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_outputs; k++)
            if (n->outputs[k] >= 0)
                x->bufs[n->outputs[k]].first = x->bufs[n->outputs[k]].last = i;
        for (int k = 0; k < n->n_inputs; k++)
            if (n->inputs[k] >= 0 && placed(x, n->inputs[k]))
                x->bufs[n->inputs[k]].last = i;
    }
    for (int k = 0; k < g->n_outputs; k++)
        if (placed(x, g->outputs[k]))
            x->bufs[g->outputs[k]].last = g->n_nodes;
    rt_status st = x->device ? device_setup(x, err) : RT_OK;
    for (int v = 0; v < g->n_values && st == RT_OK; v++) {
        x->vt[v].dtype = g->values[v].dtype;
        if (g->values[v].kind == RT_VALUE_WEIGHT && g->values[v].data)
            st = bind_weight(x, v, err);
    }
    if (st != RT_OK) {
        rt_exec_free(x);
        return NULL;
    }
    return x;
}

void rt_exec_set_collectives(rt_exec *x, const rt_collectives *coll)
{
    x->ctx.coll = *coll;
}

void rt_exec_free(rt_exec *x)
{
    if (!x)
        return;
    for (int i = 0; i < x->n_plans; i++)
        plan_free(x, x->plans[i]);
    for (int v = 0; x->mirrored && v < x->g->n_values; v++)
        if (x->mirrored[v])
            rt_aligned_free(x->host[v].data);
    rt_kernel_ctx_release(&x->ctx);
    free(x->vt);
    free(x->bufs);
    free(x->host_mask);
    free(x->host);
    free(x->mirrored);
    free(x->mirror_cap);
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

/* Gathers the input tensors of node i: host views where it reads them on the host. */
static void node_inputs(rt_exec *x, int i, const rt_tensor **in)
{
    const rt_node *n = &x->g->nodes[i];
    for (int k = 0; k < n->n_inputs; k++) {
        int v = n->inputs[k];
        bool on_host = x->device && k < RT_EXEC_HOST_BITS && (x->host_mask[i] >> k & 1u);
        in[k] = v < 0 ? NULL : on_host ? &x->host[v] : &x->vt[v];
    }
}

static rt_status infer_node(rt_exec *x, int i, const rt_tensor **in, rt_tensor *out,
                            rt_error *err)
{
    const rt_node *n = &x->g->nodes[i];
    memset(out, 0, sizeof *out * (size_t)n->n_outputs);
    node_inputs(x, i, in);
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

/* The caller's inputs: the values themselves on the host; on a device their host views,
 * uploaded into the values' buffers by upload_inputs. */
static void bind_inputs(rt_exec *x, const rt_tensor *const *inputs)
{
    for (int k = 0; k < x->g->n_inputs; k++) {
        int v = x->g->inputs[k];
        rt_tensor *t = x->device ? &x->host[v] : &x->vt[v];
        *t = *inputs[k];
        t->owns_data = false;
        t->string_pool = NULL;
    }
}

static rt_status upload_inputs(rt_exec *x, rt_error *err)
{
    for (int k = 0; x->device && k < x->g->n_inputs; k++) {
        int v = x->g->inputs[k];
        rt_status st = x->be->vt->upload(x->be, x->vt[v].data, x->host[v].data,
                                         rt_tensor_nbytes(&x->host[v]), err);
        if (st != RT_OK) {
            rt_error_prefix(err, "input '%s': ", x->g->values[v].name);
            return st;
        }
    }
    return RT_OK;
}

/* A new host tensor holding value tensor t (downloaded from a device). BYTES elements
 * keep pointing at host bytes, which are copied into the new tensor's pool. */
static rt_tensor *fetch(rt_exec *x, const rt_tensor *t, rt_error *err)
{
    if (!x->device)
        return rt_tensor_clone(t, err);
    /* not zeroed first: the download writes every byte */
    size_t bytes = rt_tensor_nbytes(t);
    void *data = rt_aligned_alloc(bytes);
    rt_tensor *h = data ? rt_tensor_wrap(t->dtype, &t->shape, data) : NULL;
    if (!h) {
        rt_aligned_free(data);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory copying an output");
        return NULL;
    }
    h->owns_data = true;
    rt_status st;
    if (t->dtype != RT_DTYPE_BYTES) {
        st = x->be->vt->download(x->be, h->data, t->data, bytes, err);
    } else {
        rt_str *s = malloc(bytes ? bytes : 1);
        st = s ? x->be->vt->download(x->be, s, t->data, bytes, err)
               : rt_error_set(err, RT_ERR_NOMEM, "out of memory copying an output");
        if (st == RT_OK)
            st = rt_tensor_set_strings(h, s, (size_t)rt_tensor_numel(t), err);
        free(s);
    }
    if (st != RT_OK) {
        rt_tensor_free(h);
        return NULL;
    }
    return h;
}

static rt_status copy_outputs(rt_exec *x, rt_tensor **outputs, rt_error *err)
{
    for (int k = 0; k < x->g->n_outputs; k++) {
        outputs[k] = fetch(x, &x->vt[x->g->outputs[k]], err);
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

/* On a device: downloads the outputs of node i that later nodes read on the host into
 * their host views. */
static rt_status fetch_host_views(rt_exec *x, int i, rt_error *err)
{
    const rt_node *n = &x->g->nodes[i];
    for (int k = 0; x->device && k < n->n_outputs; k++) {
        int v = n->outputs[k];
        if (v < 0 || !x->mirrored[v])
            continue;
        const rt_tensor *t = &x->vt[v];
        size_t bytes = rt_tensor_nbytes(t);
        if (bytes > x->mirror_cap[v]) {
            void *p = rt_aligned_alloc(bytes);
            if (!p)
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory for a host copy of '%s'",
                                    x->g->values[v].name);
            rt_aligned_free(x->host[v].data);
            x->host[v].data = p;
            x->mirror_cap[v] = bytes;
        }
        x->host[v].dtype = t->dtype;
        x->host[v].shape = t->shape;
        rt_status st = x->be->vt->download(x->be, x->host[v].data, t->data, bytes, err);
        if (st != RT_OK) {
            rt_error_prefix(err, "value '%s': ", x->g->values[v].name);
            return st;
        }
    }
    return RT_OK;
}

/* Points the values plan p places at their arena bytes, with its dtypes and shapes. */
static void bind_plan(rt_exec *x, const rt_plan *p)
{
    for (int v = 0; v < x->g->n_values; v++) {
        if (x->bufs[v].first < 0)
            continue;
        rt_tensor *t = &x->vt[v];
        t->dtype = p->dtypes[v];
        t->shape = p->shapes[v];
        t->data = (char *)p->arena + p->offsets[v];
    }
}

/* The nodes in order inside plan p (bound). Returns REPLAN if an inferred shape differs
 * from the plan. */
static rt_status run_nodes(rt_exec *x, rt_plan *p, rt_error *err)
{
    const rt_tensor *in[RT_EXEC_MAX_IO];
    rt_tensor out[RT_EXEC_MAX_IO];
    for (int i = 0; i < x->g->n_nodes; i++) {
        const rt_node *n = &x->g->nodes[i];
        rt_status st = infer_node(x, i, in, out, err);
        if (st != RT_OK)
            return st;
        for (int k = 0; k < n->n_outputs; k++) {
            int v = n->outputs[k];
            if (v >= 0 &&
                (out[k].dtype != p->dtypes[v] || !rt_shape_equal(&out[k].shape, &p->shapes[v])))
                return REPLAN;
        }
        st = run_kernel(x, n, in, err);
        if (st == RT_OK)
            st = fetch_host_views(x, i, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

/* Records the nodes of plan p as a graph. Any failure leaves p to run node by node from
 * then on; the recording runs nothing, so the caller runs p either way. */
static rt_status record(rt_exec *x, rt_plan *p)
{
    rt_error ignored = {0};
    if (x->be->vt->capture_begin(x->be, &ignored) != RT_OK) {
        p->no_graph = true;
        return RT_OK;
    }
    rt_status st = run_nodes(x, p, &ignored);
    if (x->be->vt->capture_end(x->be, &p->graph, &ignored) != RT_OK)
        p->graph = NULL;
    if (st != RT_OK && p->graph) {
        x->be->vt->graph_free(x->be, p->graph);
        p->graph = NULL;
    }
    p->no_graph = !p->graph;
    return st == REPLAN ? REPLAN : RT_OK;
}

/* A run inside plan p: node by node, or by replaying its recording, which is made on the
 * run after the first (the warm-up). Returns REPLAN if an inferred shape differs from the
 * plan. */
static rt_status run_planned(rt_exec *x, rt_plan *p, rt_error *err)
{
    bind_plan(x, p);
    rt_status st = upload_inputs(x, err);
    if (st == RT_OK && x->graphs && !p->graph && !p->no_graph && p->runs > 0)
        st = record(x, p);
    if (st != RT_OK)
        return st;
    st = p->graph ? x->be->vt->graph_launch(x->be, p->graph, err) : run_nodes(x, p, err);
    if (st == RT_OK)
        p->runs++;
    return st;
}

/* Gives value v (dtype and shape from meta) its own buffer for a discovery run, recording
 * both in p. n and k name the producing node and output in errors (n NULL: a graph input). */
static rt_status discover_value(rt_exec *x, rt_plan *p, void **bufs, int v, const rt_tensor *meta,
                                const rt_node *n, int k, rt_error *err)
{
    int64_t numel = rt_shape_numel(&meta->shape);
    size_t elem = rt_dtype_size(meta->dtype);
    if (numel < 0 || !elem || (uint64_t)numel > (SIZE_MAX / 4) / elem)
        return n ? rt_error_set(err, RT_ERR_INVALID_ARG,
                                "node '%s' (%s): output %d has an invalid dtype or shape",
                                n->name, rt_op_name(n->op), k)
                 : rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' has an invalid dtype or shape",
                                x->g->values[v].name);
    bufs[v] = rt_backend_buffer_alloc(x->be, (size_t)numel * elem);
    if (!bufs[v])
        return rt_error_set(err, RT_ERR_NOMEM, "out of %s memory for %s '%s' (%zu bytes)",
                            x->be->vt->name, n ? "output of node" : "input", n ? n->name
                            : x->g->values[v].name, (size_t)numel * elem);
    p->dtypes[v] = meta->dtype;
    p->shapes[v] = meta->shape;
    rt_tensor *t = &x->vt[v];
    t->dtype = meta->dtype;
    t->shape = meta->shape;
    t->data = bufs[v];
    return RT_OK;
}

/* A run that allocates every placed value separately and records dtypes and shapes in p. */
static rt_status run_discovering(rt_exec *x, rt_plan *p, void **bufs, rt_error *err)
{
    const rt_tensor *in[RT_EXEC_MAX_IO];
    rt_tensor out[RT_EXEC_MAX_IO];
    rt_status st = RT_OK;
    for (int k = 0; x->device && k < x->g->n_inputs && st == RT_OK; k++) {
        int v = x->g->inputs[k];
        st = discover_value(x, p, bufs, v, &x->host[v], NULL, 0, err);
    }
    if (st == RT_OK)
        st = upload_inputs(x, err);
    for (int i = 0; i < x->g->n_nodes && st == RT_OK; i++) {
        const rt_node *n = &x->g->nodes[i];
        st = infer_node(x, i, in, out, err);
        for (int k = 0; k < n->n_outputs && st == RT_OK; k++)
            if (n->outputs[k] >= 0)
                st = discover_value(x, p, bufs, n->outputs[k], &out[k], n, k, err);
        if (st == RT_OK)
            st = run_kernel(x, n, in, err);
        if (st == RT_OK)
            st = fetch_host_views(x, i, err);
    }
    return st;
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
            p->naive_bytes += is_intermediate(x, v) ? x->bufs[v].size : 0;
        }
    }
    plan_inplace(x);
    rt_status st = rt_memplan_assign(x->bufs, x->g->n_values, p->offsets, &p->arena_bytes, err);
    if (st != RT_OK)
        return st;
    p->arena = rt_backend_buffer_alloc(x->be, p->arena_bytes ? p->arena_bytes : 64);
    if (!p->arena)
        return rt_error_set(err, RT_ERR_NOMEM, "out of %s memory for a %zu-byte activation arena",
                            x->be->vt->name, p->arena_bytes);
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
        st = rt_backend_synchronize(x->be, err);
    if (st == RT_OK)
        st = copy_outputs(x, outputs, err);
    for (int v = 0; bufs && v < x->g->n_values; v++)
        if (bufs[v])
            rt_backend_buffer_free(x->be, bufs[v]);
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

/* One run: inside its plan, or discovering and planning its shapes. */
static rt_status run_any(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                         rt_error *err)
{
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

static void launches(rt_exec *x, uint64_t *kernels, uint64_t *graphs)
{
    *kernels = *graphs = 0;
    if (x->be->vt->launches)
        x->be->vt->launches(x->be, kernels, graphs);
}

rt_status rt_exec_run(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                      rt_error *err)
{
    rt_kernel_ctx_reset(&x->ctx);
    bind_inputs(x, inputs);
    uint64_t k0, g0, k1, g1;
    launches(x, &k0, &g0);
    rt_status st = run_any(x, inputs, outputs, err);
    launches(x, &k1, &g1);
    x->launches_last = (k1 - k0) + (g1 - g0);
    x->replayed_last = g1 > g0;
    if (g1 == g0)
        x->launches_eager = k1 - k0;
    return st;
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

void rt_exec_launches(const rt_exec *x, uint64_t *eager, uint64_t *last, bool *replayed)
{
    *eager = x->launches_eager;
    *last = x->launches_last;
    *replayed = x->replayed_last;
}
