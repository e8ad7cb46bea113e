/* rt_session.c: the runtime's public entry point: load a model, choose a backend, check
 * inputs against the graph's declarations, run through the executor, report statistics. */
#include "rt_session.h"

#include <stdlib.h>
#include <string.h>

#include "rt_exec.h"
#include "rt_onnx.h"

#ifdef INFD_HAVE_CUDA
#include "cuda_backend.h"
#include "cuda_device.h"
#endif

struct rt_session {
    rt_graph *graph;
    rt_backend *backend;
    rt_exec *exec;
    rt_optimize_report optimizer;
    rt_compress_report compress;
};

void rt_session_options_init(rt_session_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->backend = RT_BACKEND_AUTO;
    rt_compress_options_init(&opts->compress);
}

bool rt_backend_kind_parse(const char *s, rt_backend_kind *kind)
{
    static const struct {
        const char *name;
        rt_backend_kind kind;
    } names[] = {{"auto", RT_BACKEND_AUTO}, {"cpu", RT_BACKEND_CPU}, {"cuda", RT_BACKEND_CUDA}};
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++)
        if (strcmp(s, names[i].name) == 0) {
            *kind = names[i].kind;
            return true;
        }
    return false;
}

int rt_cuda_device_count(void)
{
#ifdef INFD_HAVE_CUDA
    return cuda_device_count();
#else
    return 0;
#endif
}

/* cuda when asked for, or for auto when a device is visible (opts->device; GEMMs in the
 * compression precision); else the CPU. backend_check may still move auto to the CPU. */
static rt_backend *backend_create(const rt_session_options *opts, rt_error *err)
{
#ifdef INFD_HAVE_CUDA
    /* a device index that is not visible fails in cuda_backend_create, naming it */
    if (opts->backend != RT_BACKEND_CPU && cuda_device_count() > 0)
        return cuda_backend_create(opts->device, opts->compress.precision, !opts->no_graphs,
                                   err);
    if (opts->backend == RT_BACKEND_CUDA) {
        rt_error_set(err, RT_ERR_UNSUPPORTED,
                     "backend 'cuda' needs a CUDA device and none is visible (use --backend "
                     "cpu or auto)");
        return NULL;
    }
#else
    if (opts->backend == RT_BACKEND_CUDA) {
        rt_error_set(err, RT_ERR_UNSUPPORTED,
                     "backend 'cuda' is not available in this build: CUDA support was not "
                     "compiled in (nvcc was not found at build time; use --backend cpu or auto)");
        return NULL;
    }
#endif
    return rt_cpu_backend_create(opts->threads, err);
}

/* The first node the session's backend cannot run, or -1. */
static int unsupported_node(const rt_session *s)
{
    for (int i = 0; i < s->graph->n_nodes; i++)
        if (!s->backend->vt->supports_op(s->backend, &s->graph->nodes[i]))
            return i;
    return -1;
}

/* Every node must run on the session's backend. With auto, a graph the CUDA backend cannot
 * run all of (a QDQ model, say) runs on the CPU instead; a backend asked for by name fails
 * naming the node. */
static rt_status backend_check(rt_session *s, const rt_session_options *opts, rt_error *err)
{
    int i = unsupported_node(s);
    if (i >= 0 && opts->backend == RT_BACKEND_AUTO && !rt_backend_is_host(s->backend)) {
        rt_backend_free(s->backend);
        if (!(s->backend = rt_cpu_backend_create(opts->threads, err)))
            return err ? err->status : RT_ERR_NOMEM;
        i = unsupported_node(s);
    }
    if (i < 0)
        return RT_OK;
    const rt_node *n = &s->graph->nodes[i];
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "backend %s does not support op %s (node '%s')",
                        s->backend->vt->name, rt_op_name(n->op), n->name);
}

rt_session *rt_session_create_from_graph(rt_graph *graph, const rt_session_options *opts,
                                         rt_error *err)
{
    rt_session_options defaults;
    if (!opts) {
        rt_session_options_init(&defaults);
        opts = &defaults;
    }
    rt_session *s = calloc(1, sizeof *s);
    if (!s) {
        rt_graph_free(graph);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory creating a session");
        return NULL;
    }
    s->graph = graph;
    if (rt_graph_check(graph, err) != RT_OK) {
        rt_session_free(s);
        return NULL;
    }
    s->backend = backend_create(opts, err);
    if (!s->backend) {
        rt_session_free(s);
        return NULL;
    }
    /* constant folding runs CPU kernels: on the session's backend when it is the CPU one */
    bool cpu = strcmp(s->backend->vt->name, "cpu") == 0;
    s->optimizer.nodes_before = s->optimizer.nodes_after = graph->n_nodes;
    if (!opts->no_optimize &&
        rt_optimize(graph, RT_OPT_PASS_ALL, cpu ? s->backend : NULL, &s->optimizer, err) != RT_OK) {
        rt_session_free(s);
        return NULL;
    }
    if (rt_compress_options_active(&opts->compress)) {
        rt_status st = opts->no_optimize
                           ? rt_error_set(err, RT_ERR_INVALID_ARG,
                                          "compression rewrites the optimized graph: it cannot "
                                          "be combined with no_optimize (--no-optimize)")
                           : rt_compress(graph, &opts->compress, &s->compress, err);
        if (st != RT_OK) {
            rt_session_free(s);
            return NULL;
        }
    }
    if (backend_check(s, opts, err) != RT_OK) {
        rt_session_free(s);
        return NULL;
    }
    s->exec = rt_exec_create(graph, s->backend, err);
    if (!s->exec) {
        rt_session_free(s);
        return NULL;
    }
    rt_exec_set_collectives(s->exec, &opts->collectives);
    return s;
}

rt_session *rt_session_create(const char *model_path, const rt_session_options *opts,
                              rt_error *err)
{
    rt_graph *g = rt_onnx_load_file(model_path, err);
    if (!g)
        return NULL;
    return rt_session_create_from_graph(g, opts, err);
}

void rt_session_free(rt_session *s)
{
    if (!s)
        return;
    rt_exec_free(s->exec);
    rt_backend_free(s->backend);
    rt_graph_free(s->graph);
    rt_compress_report_free(&s->compress);
    free(s);
}

const rt_graph *rt_session_graph(const rt_session *s) { return s->graph; }
int rt_session_input_count(const rt_session *s) { return s->graph->n_inputs; }
int rt_session_output_count(const rt_session *s) { return s->graph->n_outputs; }
const char *rt_session_backend_name(const rt_session *s) { return s->backend->vt->name; }

const rt_value *rt_session_input(const rt_session *s, int i)
{
    return &s->graph->values[s->graph->inputs[i]];
}

const rt_value *rt_session_output(const rt_session *s, int i)
{
    return &s->graph->values[s->graph->outputs[i]];
}

/* Checks one caller tensor against the declaration of graph input i. */
static rt_status check_input(const rt_value *v, const rt_tensor *t, rt_error *err)
{
    char want[96], got[96];
    if (!t || (!t->data && rt_tensor_numel(t) != 0))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' is missing", v->name);
    if (t->device != RT_DEVICE_HOST)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' is not in host memory", v->name);
    if (v->dtype != RT_DTYPE_UNDEFINED && t->dtype != v->dtype)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' has dtype %s, the model expects %s",
                            v->name, rt_dtype_name(t->dtype), rt_dtype_name(v->dtype));
    if (!rt_dtype_valid(t->dtype) || t->shape.rank < 0 || t->shape.rank > RT_MAX_RANK ||
        rt_tensor_numel(t) < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' has an invalid dtype or shape",
                            v->name);
    bool fits = v->shape.rank < 0 || v->shape.rank == t->shape.rank;
    for (int d = 0; fits && v->shape.rank >= 0 && d < v->shape.rank; d++)
        fits = v->shape.dims[d] < 0 || v->shape.dims[d] == t->shape.dims[d];
    if (!fits)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' has shape %s, the model expects %s",
                            v->name, rt_shape_str(&t->shape, got, sizeof got),
                            rt_shape_str(&v->shape, want, sizeof want));
    return RT_OK;
}

rt_status rt_session_check_inputs(const rt_session *s, const rt_tensor *const *inputs,
                                  int n_inputs, rt_error *err)
{
    if (n_inputs != s->graph->n_inputs)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the model takes %d inputs, got %d",
                            s->graph->n_inputs, n_inputs);
    for (int i = 0; i < n_inputs; i++) {
        rt_status st = check_input(rt_session_input(s, i), inputs[i], err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

rt_status rt_session_run(rt_session *s, const rt_tensor *const *inputs, int n_inputs,
                         rt_tensor **outputs, int n_outputs, rt_error *err)
{
    for (int k = 0; k < n_outputs; k++)
        outputs[k] = NULL;
    if (n_outputs != s->graph->n_outputs)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the model has %d outputs, %d requested",
                            s->graph->n_outputs, n_outputs);
    rt_status st = rt_session_check_inputs(s, inputs, n_inputs, err);
    return st != RT_OK ? st : rt_exec_run(s->exec, inputs, outputs, err);
}

rt_status rt_session_plan_default(rt_session *s, rt_error *err)
{
    int n = s->graph->n_inputs, m = s->graph->n_outputs;
    rt_tensor **in = calloc((size_t)(n ? n : 1), sizeof *in);
    rt_tensor **out = calloc((size_t)(m ? m : 1), sizeof *out);
    rt_status st = in && out ? RT_OK : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < n && st == RT_OK; i++) {
        const rt_value *v = rt_session_input(s, i);
        rt_shape shape = v->shape;
        if (shape.rank < 0)
            shape.rank = 0;
        for (int d = 0; d < shape.rank; d++)
            if (shape.dims[d] < 0)
                shape.dims[d] = 1;
        in[i] = rt_tensor_create(v->dtype == RT_DTYPE_UNDEFINED ? RT_DTYPE_F32 : v->dtype, &shape,
                                 err);
        if (!in[i])
            st = err ? err->status : RT_ERR_NOMEM;
    }
    if (st == RT_OK)
        st = rt_session_run(s, (const rt_tensor *const *)in, n, out, m, err);
    for (int i = 0; in && i < n; i++)
        rt_tensor_free(in[i]);
    for (int i = 0; out && i < m; i++)
        rt_tensor_free(out[i]);
    free(in);
    free(out);
    return st;
}

void rt_session_get_stats(const rt_session *s, rt_session_stats *st)
{
    memset(st, 0, sizeof *st);
    st->backend = s->backend->vt->name;
    st->n_nodes = s->graph->n_nodes;
    for (int i = 0; i < s->graph->n_nodes; i++)
        st->nodes_by_op[s->graph->nodes[i].op]++;
    st->weight_bytes = rt_compress_weight_bytes(s->graph);
    rt_exec_memory(s->exec, &st->peak_activation_bytes, &st->naive_activation_bytes,
                   &st->n_plans);
    st->optimizer = s->optimizer;
    st->compress = s->compress;
    st->counts_launches = s->backend->vt->launches != NULL;
    rt_exec_launches(s->exec, &st->launches_eager, &st->launches_last, &st->replayed_last);
}
