/* cuda_backend.c: the CUDA backend (cuda_backend.h): creation on a device, the slots the
 * executor calls (device buffers, copies, resident weights, the inputs read on the host,
 * synchronization, CUDA Graph recording, launch counts), which ops it supports, and the
 * one switch that maps each op to its implementation in cuda_op_<family>.c. */
#include "cuda_backend.h"

#include <stdlib.h>
#include <string.h>

#include "cuda_be.h"
#include "cuda_dnn.h"
#include "cuda_dnn_conv.h"
#include "cuda_gemm.h"
#include "cuda_lt.h"
#include "cuda_ops.h"
#include "rt_op_shape.h"

static cuda_be *be_of(rt_backend *b)
{
    return (cuda_be *)b;
}

/* ---- ops ---- */

static bool cuda_supports_op(rt_backend *b, const rt_node *node)
{
    (void)b;
    switch (node->op) {
    case RT_OP_ADD: case RT_OP_SUB: case RT_OP_MUL: case RT_OP_DIV: case RT_OP_POW:
    case RT_OP_EQUAL: case RT_OP_LESS: case RT_OP_GREATER: case RT_OP_WHERE:
    case RT_OP_MIN: case RT_OP_MAX:
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_NEG: case RT_OP_ABS:
    case RT_OP_RECIPROCAL: case RT_OP_RELU: case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID:
    case RT_OP_TANH: case RT_OP_ERF: case RT_OP_NOT: case RT_OP_CLIP:
    case RT_OP_IDENTITY: case RT_OP_DROPOUT:
    case RT_OP_MATMUL: case RT_OP_GEMM: case RT_OP_CONV:
    case RT_OP_MAX_POOL: case RT_OP_AVERAGE_POOL: case RT_OP_GLOBAL_AVERAGE_POOL:
    case RT_OP_LAYER_NORMALIZATION: case RT_OP_SOFTMAX: case RT_OP_LOG_SOFTMAX:
    case RT_OP_REDUCE_MEAN: case RT_OP_REDUCE_SUM: case RT_OP_REDUCE_MAX: case RT_OP_ARG_MAX:
    case RT_OP_FLATTEN: case RT_OP_RESHAPE: case RT_OP_TRANSPOSE: case RT_OP_CONCAT:
    case RT_OP_SPLIT: case RT_OP_SLICE: case RT_OP_GATHER: case RT_OP_SQUEEZE:
    case RT_OP_UNSQUEEZE: case RT_OP_SHAPE: case RT_OP_CONSTANT_OF_SHAPE: case RT_OP_EXPAND:
    case RT_OP_RANGE: case RT_OP_PAD: case RT_OP_TILE:
    case RT_OP_LINEAR: case RT_OP_FUSED_CONV: case RT_OP_GELU: case RT_OP_SKIP_LAYER_NORM:
    case RT_OP_ATTENTION: case RT_OP_EMBEDDING: case RT_OP_QLINEAR:
        return true;
    case RT_OP_CAST: return rt_node_attr_int(node, "to", RT_DTYPE_F32) != RT_DTYPE_BYTES;
    case RT_OP_BATCH_NORMALIZATION:
        return !(node->opset >= 14 && rt_node_attr_int(node, "training_mode", 0) != 0);
    case RT_OP_CONSTANT: {
        const rt_attr *a = rt_constant_attr(node);
        return a && a->type != RT_ATTR_STRING && a->type != RT_ATTR_STRINGS &&
               !(a->type == RT_ATTR_TENSOR && a->t->dtype == RT_DTYPE_BYTES);
    }
    case RT_OP_FUSED_ELEMENTWISE: return node->n_inputs <= CUDA_EW_MAX_IN;
    default: return false; /* QAttention, QDQ ops, SparseLinear, tensor-parallel collectives,
                            * ops added later */
    }
}

/* Inputs read on the host: every one the op's shape inference reads (rt_op_shape.c,
 * rt_op_layout.c, rt_op_reduce.c) and the scalar parameters the ops below read. */
static unsigned cuda_host_inputs(rt_backend *b, const rt_node *node)
{
    (void)b;
    switch (node->op) {
    case RT_OP_CONSTANT_OF_SHAPE: return 1u;          /* shape */
    case RT_OP_RANGE: return 7u;                      /* start, limit, delta */
    case RT_OP_RESHAPE: case RT_OP_EXPAND: case RT_OP_TILE: case RT_OP_SPLIT:
    case RT_OP_SQUEEZE: case RT_OP_UNSQUEEZE:
    case RT_OP_REDUCE_MEAN: case RT_OP_REDUCE_SUM: case RT_OP_REDUCE_MAX:
        return 2u;                                    /* shape, repeats, split, axes */
    case RT_OP_CLIP: case RT_OP_DROPOUT: return 6u;   /* min, max; ratio, training_mode */
    case RT_OP_PAD: return 14u;                       /* pads, constant_value, axes */
    case RT_OP_SLICE: return 30u;                     /* starts, ends, axes, steps */
    default: return 0;
    }
}

static rt_status cuda_node_run(rt_backend *b, rt_kernel_ctx *ctx, const rt_node *node,
                               const rt_tensor *const *in, int n_in, rt_tensor *const *out,
                               int n_out, rt_error *err)
{
    (void)ctx;
    cuda_be *be = be_of(b);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    switch (node->op) {
    case RT_OP_ADD: case RT_OP_SUB: case RT_OP_MUL: case RT_OP_DIV: case RT_OP_POW:
    case RT_OP_EQUAL: case RT_OP_LESS: case RT_OP_GREATER:
        return cuda_op_binary(be, node, in, n_in, out, n_out, err);
    case RT_OP_WHERE: return cuda_op_where(be, node, in, n_in, out, n_out, err);
    case RT_OP_MIN: case RT_OP_MAX: return cuda_op_variadic(be, node, in, n_in, out, n_out, err);
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_NEG: case RT_OP_ABS:
    case RT_OP_RECIPROCAL: case RT_OP_RELU: case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID:
    case RT_OP_TANH: case RT_OP_ERF: case RT_OP_NOT: case RT_OP_CLIP:
        return cuda_op_unary(be, node, in, n_in, out, n_out, err);
    case RT_OP_CAST: return cuda_op_cast(be, node, in, n_in, out, n_out, err);
    case RT_OP_IDENTITY: case RT_OP_DROPOUT: case RT_OP_FLATTEN: case RT_OP_RESHAPE:
    case RT_OP_SQUEEZE: case RT_OP_UNSQUEEZE:
        return cuda_op_copy(be, node, in, n_in, out, n_out, err);
    case RT_OP_MATMUL: return cuda_op_matmul(be, node, in, n_in, out, n_out, err);
    case RT_OP_GEMM: return cuda_op_gemm(be, node, in, n_in, out, n_out, err);
    case RT_OP_CONV: case RT_OP_FUSED_CONV:
        return cuda_op_conv(be, node, in, n_in, out, n_out, err);
    case RT_OP_MAX_POOL: case RT_OP_AVERAGE_POOL: case RT_OP_GLOBAL_AVERAGE_POOL:
        return cuda_op_pool(be, node, in, n_in, out, n_out, err);
    case RT_OP_BATCH_NORMALIZATION: return cuda_op_batchnorm(be, node, in, n_in, out, n_out, err);
    case RT_OP_LAYER_NORMALIZATION: return cuda_op_layernorm(be, node, in, n_in, out, n_out, err);
    case RT_OP_SOFTMAX: case RT_OP_LOG_SOFTMAX:
        return cuda_op_softmax(be, node, in, n_in, out, n_out, err);
    case RT_OP_REDUCE_MEAN: case RT_OP_REDUCE_SUM: case RT_OP_REDUCE_MAX:
        return cuda_op_reduce(be, node, in, n_in, out, n_out, err);
    case RT_OP_ARG_MAX: return cuda_op_argmax(be, node, in, n_in, out, n_out, err);
    case RT_OP_TRANSPOSE: case RT_OP_SLICE: case RT_OP_EXPAND: case RT_OP_TILE:
        return cuda_op_box(be, node, in, n_in, out, n_out, err);
    case RT_OP_CONCAT: return cuda_op_concat(be, node, in, n_in, out, n_out, err);
    case RT_OP_SPLIT: return cuda_op_split(be, node, in, n_in, out, n_out, err);
    case RT_OP_GATHER: return cuda_op_gather(be, node, in, n_in, out, n_out, err);
    case RT_OP_EMBEDDING: return cuda_op_embedding(be, node, in, n_in, out, n_out, err);
    case RT_OP_SHAPE: return cuda_op_shape(be, node, in, n_in, out, n_out, err);
    case RT_OP_CONSTANT: return cuda_op_constant(be, node, in, n_in, out, n_out, err);
    case RT_OP_CONSTANT_OF_SHAPE:
        return cuda_op_constant_of_shape(be, node, in, n_in, out, n_out, err);
    case RT_OP_RANGE: return cuda_op_range(be, node, in, n_in, out, n_out, err);
    case RT_OP_PAD: return cuda_op_pad(be, node, in, n_in, out, n_out, err);
    case RT_OP_LINEAR: return cuda_op_linear(be, node, in, n_in, out, n_out, err);
    case RT_OP_QLINEAR: return cuda_op_qlinear(be, node, in, n_in, out, n_out, err);
    case RT_OP_GELU: return cuda_op_gelu(be, node, in, n_in, out, n_out, err);
    case RT_OP_SKIP_LAYER_NORM: return cuda_op_skip_layernorm(be, node, in, n_in, out, n_out, err);
    case RT_OP_ATTENTION: return cuda_op_attention(be, node, in, n_in, out, n_out, err);
    case RT_OP_FUSED_ELEMENTWISE: return cuda_op_fused_ew(be, node, in, n_in, out, n_out, err);
    default: break;
    }
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda backend: no kernel for op %s",
                        rt_op_name(node->op));
}

/* ---- memory and copies ---- */

static void *cuda_buffer_alloc(rt_backend *b, size_t bytes)
{
    cuda_be *be = be_of(b);
    if (cudaSetDevice(be->device) != cudaSuccess) {
        cudaGetLastError();
        return NULL;
    }
    return cuda_mem_alloc(be, bytes, NULL);
}

static void cuda_buffer_free(rt_backend *b, void *p)
{
    cuda_mem_free(be_of(b), p);
}

static rt_status cuda_upload_slot(rt_backend *b, void *dst, const void *src, size_t bytes,
                                  rt_error *err)
{
    cuda_be *be = be_of(b);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    return cuda_upload(be, dst, src, bytes, err);
}

static rt_status cuda_download_slot(rt_backend *b, void *dst, const void *src, size_t bytes,
                                    rt_error *err)
{
    cuda_be *be = be_of(b);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    return cuda_download(be, dst, src, bytes, err);
}

static rt_status cuda_synchronize(rt_backend *b, rt_error *err)
{
    cuda_be *be = be_of(b);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    return cuda_sync(be, err);
}

/* ---- weights ---- */

static rt_status grow(void **items, int *cap, int n, size_t size, rt_error *err)
{
    if (n < *cap)
        return RT_OK;
    int c = *cap ? 2 * *cap : 32;
    void *p = realloc(*items, size * (size_t)c);
    if (!p)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory loading weights");
    *items = p;
    *cap = c;
    return RT_OK;
}

const void *cuda_weight_copy(const cuda_be *be, const void *data, rt_dtype dt)
{
    for (int i = 0; i < be->n_wcopies; i++)
        if (be->wcopies[i].key == data && be->wcopies[i].dtype == dt)
            return be->wcopies[i].data;
    return NULL;
}

/* The dtype a GEMM reading weight v as its weight operand computes in, or UNDEFINED when
 * no GEMM does (Linear's and Attention's W, MatMul's B, Gemm's A and B). */
static rt_dtype gemm_dtype(const cuda_be *be, const rt_graph *g, int v)
{
    for (int i = 0; i < g->n_nodes; i++) {
        const rt_node *n = &g->nodes[i];
        for (int k = 0; k < n->n_inputs; k++) {
            if (n->inputs[k] != v)
                continue;
            if ((n->op == RT_OP_LINEAR || n->op == RT_OP_ATTENTION) && k == 1)
                return cuda_compute_dtype(be, RT_DTYPE_F32);
            if ((n->op == RT_OP_MATMUL && k == 1) || (n->op == RT_OP_GEMM && k < 2))
                return cuda_compute_dtype(be, g->values[v].data->dtype);
        }
    }
    return RT_DTYPE_UNDEFINED;
}

/* The weight's copy in its GEMMs' compute dtype, made now so that runs need not. */
static rt_status weight_copy(cuda_be *be, const rt_tensor *w, void *data, rt_dtype dt,
                             rt_error *err)
{
    rt_status st = grow((void **)&be->wcopies, &be->cap_wcopies, be->n_wcopies,
                        sizeof *be->wcopies, err);
    if (st != RT_OK)
        return st;
    int64_t n = rt_tensor_numel(w);
    void *copy = cuda_mem_alloc(be, (size_t)n * rt_dtype_size(dt), err);
    if (!copy)
        return err ? err->status : RT_ERR_NOMEM;
    be->wcopies[be->n_wcopies++] = (cuda_wcopy){data, copy, dt};
    CUDA_LAUNCH(be, err, cuda_k_cast(be->stream, w->dtype, dt, data, copy, n, false),
                "converting a weight");
    return RT_OK;
}

static rt_status cuda_weight_load(rt_backend *b, const rt_graph *g, int v, rt_tensor *t,
                                  rt_error *err)
{
    cuda_be *be = be_of(b);
    const rt_tensor *w = g->values[v].data;
    size_t bytes = rt_tensor_nbytes(w);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    rt_status st = grow((void **)&be->weights, &be->cap_weights, be->n_weights,
                        sizeof *be->weights, err);
    if (st != RT_OK)
        return st;
    void *data = cuda_mem_alloc(be, bytes, err);
    if (!data)
        return err ? err->status : RT_ERR_NOMEM;
    be->weights[be->n_weights++] = data;
    if (bytes)
        CUDA_TRY(be, err, cudaMemcpyAsync(data, w->data, bytes, cudaMemcpyHostToDevice, be->stream),
                 "copying a weight to the device");
    rt_dtype dt = gemm_dtype(be, g, v);
    if (dt != RT_DTYPE_UNDEFINED && dt != w->dtype && rt_dtype_is_float(w->dtype) &&
        (st = weight_copy(be, w, data, dt, err)) != RT_OK)
        return st;
    /* the host bytes must stay put until the copy has read them */
    CUDA_TRY(be, err, cudaStreamSynchronize(be->stream), "copying a weight to the device");
    *t = *w;
    t->data = data;
    t->owns_data = false;
    t->string_pool = NULL;
    t->device = RT_DEVICE_CUDA;
    t->device_index = be->device;
    return RT_OK;
}

/* ---- CUDA Graphs ---- */

bool cuda_capture_refuses(cuda_be *be)
{
    if (be->capturing)
        be->capture_refused = true;
    return be->capturing;
}

static rt_status cuda_capture_begin(rt_backend *b, rt_error *err)
{
    cuda_be *be = be_of(b);
    if (!be->graphs)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: CUDA Graphs are off");
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    CUDA_TRY(be, err, cudaStreamBeginCapture(be->stream, cudaStreamCaptureModeThreadLocal),
             "starting a graph capture");
    be->capturing = true;
    be->capture_refused = false;
    be->kernels_at_capture = be->kernels;
    return RT_OK;
}

static rt_status cuda_capture_end(rt_backend *b, void **graph, rt_error *err)
{
    cuda_be *be = be_of(b);
    cudaGraph_t g = NULL;
    cudaError_t e = cudaStreamEndCapture(be->stream, &g);
    be->capturing = false;
    be->kernels = be->kernels_at_capture; /* recorded, not launched */
    *graph = NULL;
    if (e != cudaSuccess || be->capture_refused || !g) {
        if (g)
            cudaGraphDestroy(g);
        if (e != cudaSuccess)
            return cuda_fail(be, err, e, "recording a graph");
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: the plan uploads data while it runs");
    }
    cudaGraphExec_t x = NULL;
    e = cudaGraphInstantiate(&x, g, 0);
    cudaGraphDestroy(g);
    if (e != cudaSuccess)
        return cuda_fail(be, err, e, "instantiating a graph");
    *graph = x;
    return RT_OK;
}

static rt_status cuda_graph_launch(rt_backend *b, void *graph, rt_error *err)
{
    cuda_be *be = be_of(b);
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    be->graph_launches++;
    CUDA_TRY(be, err, cudaGraphLaunch((cudaGraphExec_t)graph, be->stream), "launching a graph");
    return RT_OK;
}

static void cuda_graph_free(rt_backend *b, void *graph)
{
    (void)b;
    cudaGraphExecDestroy((cudaGraphExec_t)graph);
}

static void cuda_launches(rt_backend *b, uint64_t *kernels, uint64_t *graphs)
{
    *kernels = be_of(b)->kernels;
    *graphs = be_of(b)->graph_launches;
}

/* ---- life cycle ---- */

static void cuda_free(rt_backend *b)
{
    cuda_be *be = be_of(b);
    cudaSetDevice(be->device);
    if (be->stream)
        cudaStreamSynchronize(be->stream);
    for (int i = 0; i < be->n_weights; i++)
        cuda_mem_free(be, be->weights[i]);
    for (int i = 0; i < be->n_wcopies; i++)
        cuda_mem_free(be, be->wcopies[i].data);
    for (int i = 0; i < be->n_consts; i++)
        cuda_mem_free(be, be->consts[i].data);
    free(be->weights);
    free(be->wcopies);
    free(be->consts);
    cuda_gemm_state_free(be);
    cuda_dnn_conv_free(be);
    cuda_mem_release(be);
    if (be->stream)
        cudaStreamDestroy(be->stream);
    cudaGetLastError();
    free(be);
}

static const rt_backend_vtable cuda_vtable = {
    .name = "cuda",
    .supports_op = cuda_supports_op,
    .node_run = cuda_node_run,
    .buffer_alloc = cuda_buffer_alloc,
    .buffer_free = cuda_buffer_free,
    .synchronize = cuda_synchronize,
    .free = cuda_free,
    .upload = cuda_upload_slot,
    .download = cuda_download_slot,
    .host_inputs = cuda_host_inputs,
    .weight_load = cuda_weight_load,
    .capture_begin = cuda_capture_begin,
    .capture_end = cuda_capture_end,
    .graph_launch = cuda_graph_launch,
    .graph_free = cuda_graph_free,
    .launches = cuda_launches,
};

static rt_status init(cuda_be *be, rt_error *err)
{
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess || be->device < 0 || be->device >= n) {
        cudaGetLastError();
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "cuda: device cuda:%d is not available (%d device%s visible)",
                            be->device, e == cudaSuccess ? n : 0, n == 1 ? "" : "s");
    }
    CUDA_TRY(be, err, cudaSetDevice(be->device), "selecting the device");
    CUDA_TRY(be, err, cudaStreamCreateWithFlags(&be->stream, cudaStreamNonBlocking),
             "creating a stream");
    rt_status st = cuda_mem_init(be, err);
    return st == RT_OK ? cuda_gemm_state_create(be, err) : st;
}

rt_backend *cuda_backend_create(int device, rt_precision precision, bool graphs, rt_error *err)
{
    cuda_be *be = calloc(1, sizeof *be);
    if (!be) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory creating the cuda backend");
        return NULL;
    }
    be->base.vt = &cuda_vtable;
    be->base.impl = be;
    be->base.threads = 1;
    be->device = device;
    be->precision = precision;
    be->graphs = graphs;
    if (init(be, err) != RT_OK) {
        cuda_free(&be->base);
        return NULL;
    }
    return &be->base;
}

void cuda_backend_describe_blas(char *buf, size_t size)
{
    cuda_lt_describe(buf, size);
}

void cuda_backend_describe_dnn(char *buf, size_t size)
{
    cuda_dnn_describe(buf, size);
}

void cuda_backend_dnn_stats(rt_backend *b, bool *active, uint64_t *convs)
{
    cuda_dnn_conv_stats(be_of(b), active, convs);
}
