/* cuda_op_nn.c: the CUDA backend's linear-algebra and neural-network ops: MatMul (numpy
 * batch broadcasting), Gemm and infd.Linear on cuBLASLt (cuda_gemm.h) in the backend's
 * precision, Conv / infd.FusedConv on cuDNN (cuda_dnn_conv.h) or a direct kernel, pooling
 * as direct kernels, BatchNormalization, LayerNormalization, infd.SkipLayerNorm,
 * Softmax / LogSoftmax, the reductions and ArgMax, and the GEMM operand conversions they
 * share with Attention and the cuDNN convolutions. */
#include <string.h>

#include "cuda_dnn_conv.h"
#include "cuda_gemm.h"
#include "cuda_ops.h"
#include "rt_cpu_nn_util.h"
#include "rt_fused.h"
#include "rt_nn_params.h"

rt_dtype cuda_compute_dtype(const cuda_be *be, rt_dtype dt)
{
    if (dt != RT_DTYPE_F32)
        return dt;
    switch (be->precision) {
    case RT_PRECISION_FP16: return RT_DTYPE_F16;
    case RT_PRECISION_BF16: return RT_DTYPE_BF16;
    default: return RT_DTYPE_F32;
    }
}

size_t cuda_operand_bytes(const cuda_be *be, const rt_tensor *t, rt_dtype dt)
{
    if (t->dtype == dt || cuda_weight_copy(be, t->data, dt))
        return 0;
    return cuda_piece((size_t)rt_tensor_numel(t) * rt_dtype_size(dt));
}

const void *cuda_operand(cuda_be *be, const rt_tensor *t, rt_dtype dt, char **cursor,
                         rt_error *err)
{
    if (t->dtype == dt)
        return t->data;
    const void *w = cuda_weight_copy(be, t->data, dt);
    if (w)
        return w;
    void *dst = *cursor;
    int64_t n = rt_tensor_numel(t);
    be->kernels++;
    cudaError_t e = cuda_k_cast(be->stream, t->dtype, dt, t->data, dst, n, false);
    if (e != cudaSuccess) {
        cuda_fail(be, err, e, "converting a GEMM operand");
        return NULL;
    }
    *cursor += cuda_piece((size_t)n * rt_dtype_size(dt));
    return dst;
}

static bool is_float(rt_dtype dt)
{
    return dt == RT_DTYPE_F32 || dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16 || dt == RT_DTYPE_F64;
}

static rt_status need_float(const rt_node *node, rt_dtype dt, rt_error *err)
{
    if (!is_float(dt))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: %s on %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    return RT_OK;
}

/* Converted operands a and b in dtype cd, from scratch as needed. */
static rt_status operands(cuda_be *be, const rt_tensor *a, const rt_tensor *b, rt_dtype cd,
                          const void **pa, const void **pb, rt_error *err)
{
    size_t bytes = cuda_operand_bytes(be, a, cd) + cuda_operand_bytes(be, b, cd);
    char *cursor = bytes ? cuda_scratch(be, bytes, err) : NULL;
    if (bytes && !cursor)
        return err ? err->status : RT_ERR_NOMEM;
    *pa = cuda_operand(be, a, cd, &cursor, err);
    *pb = *pa ? cuda_operand(be, b, cd, &cursor, err) : NULL;
    return *pa && *pb ? RT_OK : err ? err->status : RT_ERR_BACKEND;
}

/* ---- MatMul ---- */

/* Strides (in matrices) of an operand's batch dims aligned right to the output's; returns
 * how many matrices it has. */
static int64_t batch_strides(const rt_shape *s, int own_rank, int batch_rank, int64_t *stride)
{
    int64_t count = 1;
    for (int i = batch_rank - 1; i >= 0; i--) {
        int d = i - (batch_rank - own_rank);
        int64_t dim = d >= 0 ? s->dims[d] : 1;
        stride[i] = dim == 1 ? 0 : count;
        count *= dim;
    }
    return count;
}

CUDA_OP(cuda_op_matmul)
{
    (void)n_in, (void)n_out;
    const rt_tensor *ta = in[0], *tb = in[1];
    rt_tensor *y = out[0];
    rt_status st = need_float(node, ta->dtype, err);
    if (st != RT_OK)
        return st;
    const rt_shape *a = &ta->shape, *b = &tb->shape, *ys = &y->shape;
    int64_t m = a->rank >= 2 ? a->dims[a->rank - 2] : 1, k = a->dims[a->rank - 1];
    int64_t n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    int batch_rank = ys->rank - (a->rank >= 2) - (b->rank >= 2);
    int64_t batch[RT_MAX_RANK], n_batch = 1, sa[RT_MAX_RANK], sb[RT_MAX_RANK];
    for (int i = 0; i < batch_rank; i++) {
        batch[i] = ys->dims[i];
        n_batch *= ys->dims[i];
    }
    if (n_batch == 0 || m * n == 0)
        return RT_OK;
    int64_t a_count = batch_strides(a, a->rank > 2 ? a->rank - 2 : 0, batch_rank, sa);
    int64_t b_count = batch_strides(b, b->rank > 2 ? b->rank - 2 : 0, batch_rank, sb);
    rt_dtype cd = cuda_compute_dtype(be, ta->dtype);
    const void *pa, *pb;
    if ((st = operands(be, ta, tb, cd, &pa, &pb, err)) != RT_OK)
        return st;
    cuda_gemm g = cuda_gemm_plain(cd, y->dtype, false, false, m, n, k, pa, pb, y->data);
    g.tf32 = be->precision == RT_PRECISION_TF32;
    if (b_count == 1 && a_count == n_batch) {
        /* one B for every batch: A's batches stacked into one tall matrix */
        g.m = m * n_batch;
        return cuda_gemm_run(be, &g, err);
    }
    if ((a_count == n_batch || a_count == 1) && (b_count == n_batch || b_count == 1)) {
        g.batch = n_batch;
        g.stride_a = a_count == 1 ? 0 : m * k;
        g.stride_b = b_count == 1 ? 0 : k * n;
        g.stride_d = m * n;
        return cuda_gemm_run(be, &g, err);
    }
    /* batch dims broadcast unevenly: one product per output matrix */
    size_t ea = rt_dtype_size(cd), ed = rt_dtype_size(y->dtype);
    for (int64_t bi = 0; bi < n_batch && st == RT_OK; bi++) {
        int64_t rem = bi, ia = 0, ib = 0;
        for (int i = batch_rank - 1; i >= 0; i--) {
            int64_t idx = rem % batch[i];
            rem /= batch[i];
            ia += idx * sa[i];
            ib += idx * sb[i];
        }
        cuda_gemm one = g;
        one.a = (const char *)pa + (size_t)(ia * m * k) * ea;
        one.b = (const char *)pb + (size_t)(ib * k * n) * ea;
        one.out = (char *)y->data + (size_t)(bi * m * n) * ed;
        st = cuda_gemm_run(be, &one, err);
    }
    return st;
}

/* ---- Gemm ---- */

CUDA_OP(cuda_op_gemm)
{
    (void)n_out;
    const rt_tensor *a = in[0], *b = in[1], *c = n_in > 2 ? in[2] : NULL;
    rt_tensor *y = out[0];
    rt_status st = need_float(node, a->dtype, err);
    if (st != RT_OK)
        return st;
    bool ta = rt_node_attr_int(node, "transA", 0) != 0;
    bool tb = rt_node_attr_int(node, "transB", 0) != 0;
    int64_t m = y->shape.dims[0], n = y->shape.dims[1], k = a->shape.dims[ta ? 0 : 1];
    float alpha = rt_node_attr_float(node, "alpha", 1.0f);
    float beta = rt_node_attr_float(node, "beta", 1.0f);
    if (m * n == 0)
        return RT_OK;
    if (c && beta != 0) {
        /* Y starts as C broadcast to (m, n): a stride of 0 repeats a dim of size 1 */
        const rt_shape *cs = &c->shape;
        int64_t cm = cs->rank == 2 ? cs->dims[0] : 1;
        int64_t cn = cs->rank >= 1 ? cs->dims[cs->rank - 1] : 1;
        cuda_box box;
        memset(&box, 0, sizeof box);
        box.rank = 2;
        box.dims[0] = m;
        box.dims[1] = n;
        box.dst[0] = n;
        box.dst[1] = 1;
        box.src[0] = cm == 1 ? 0 : cn;
        box.src[1] = cn == 1 ? 0 : 1;
        CUDA_LAUNCH(be, err,
                    cuda_k_copy_box(be->stream, y->data, c->data, rt_dtype_size(c->dtype), &box),
                    "Gemm C");
    } else {
        beta = 0;
    }
    rt_dtype cd = cuda_compute_dtype(be, a->dtype);
    const void *pa, *pb;
    if ((st = operands(be, a, b, cd, &pa, &pb, err)) != RT_OK)
        return st;
    cuda_gemm g = cuda_gemm_plain(cd, y->dtype, ta, tb, m, n, k, pa, pb, y->data);
    g.tf32 = be->precision == RT_PRECISION_TF32;
    g.alpha = alpha;
    g.beta = beta;
    return cuda_gemm_run(be, &g, err);
}

/* ---- infd.Linear ---- */

/* The epilogue that applies bias (when present) and act, or the bias alone when act has
 * no epilogue (*rest then tells the caller to apply it). */
static cuda_epilogue linear_epilogue(bool bias, const cuda_act *act, bool *rest)
{
    *rest = false;
    switch (act->kind) {
    case RT_ACT_NONE: return bias ? CUDA_EPI_BIAS : CUDA_EPI_NONE;
    case RT_ACT_RELU: return bias ? CUDA_EPI_RELU_BIAS : CUDA_EPI_RELU;
    case RT_ACT_GELU_TANH: return bias ? CUDA_EPI_GELU_TANH_BIAS : CUDA_EPI_GELU_TANH;
    default:
        *rest = true;
        return bias ? CUDA_EPI_BIAS : CUDA_EPI_NONE;
    }
}

rt_status cuda_gemm_bias_act(cuda_be *be, cuda_gemm *g, const float *bias, cuda_act act,
                             rt_error *err)
{
    bool rest;
    g->epi = linear_epilogue(bias != NULL, &act, &rest);
    g->bias = bias;
    rt_status st = cuda_gemm_run(be, g, err);
    if (st == RT_OK && rest)
        CUDA_LAUNCH(be, err, cuda_k_bias_act(be->stream, g->out, g->out, g->m, g->n, NULL, act),
                    "Linear activation");
    return st;
}

CUDA_OP(cuda_op_linear)
{
    (void)n_out;
    cuda_act act;
    rt_status st = cuda_act_get(node, &act, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    rt_linear_dims d = rt_linear_dims_get(node, x, w, out[0]);
    if (d.m * d.n == 0)
        return RT_OK;
    rt_dtype cd = cuda_compute_dtype(be, RT_DTYPE_F32);
    const void *px, *pw;
    if ((st = operands(be, x, w, cd, &px, &pw, err)) != RT_OK)
        return st;
    cuda_gemm g = cuda_gemm_plain(cd, RT_DTYPE_F32, false, d.trans_b, d.m, d.n, d.k, px, pw,
                                  out[0]->data);
    g.tf32 = be->precision == RT_PRECISION_TF32;
    return cuda_gemm_bias_act(be, &g, b ? b->data : NULL, act, err);
}

/* ---- Conv, infd.FusedConv, pooling ---- */

static cuda_window window_of(const rt_window *w)
{
    cuda_window c;
    for (int i = 0; i < 3; i++) {
        c.in[i] = w->in[i];
        c.out[i] = w->out[i];
        c.kernel[i] = w->kernel[i];
        c.stride[i] = w->stride[i];
        c.dilation[i] = w->dilation[i];
        c.pad_begin[i] = w->pad_begin[i];
        c.pad_end[i] = w->pad_end[i];
    }
    return c;
}

CUDA_OP(cuda_op_conv)
{
    (void)n_out;
    const rt_tensor *x = in[0], *w = in[1], *b = n_in > 2 ? in[2] : NULL;
    cuda_act act = {.kind = RT_ACT_NONE};
    rt_status st = node->op == RT_OP_FUSED_CONV ? cuda_act_get(node, &act, err) : RT_OK;
    if (st == RT_OK)
        st = need_float(node, x->dtype, err);
    rt_window win;
    if (st == RT_OK)
        st = rt_window_resolve(node, &x->shape, w->shape.dims + 2, &win, err);
    int64_t group = rt_node_attr_int(node, "group", 1);
    bool done = false;
    if (st == RT_OK)
        st = cuda_dnn_conv(be, x, w, b, out[0], &win, group, act, &done, err);
    if (st != RT_OK || done)
        return st;
    if ((st = rt_window_pad3(&win, err)) != RT_OK)
        return st;
    cuda_window cw = window_of(&win);
    CUDA_LAUNCH(be, err,
                cuda_k_conv(be->stream, x->dtype, x->data, w->dtype, w->data, b ? b->data : NULL,
                            out[0]->data, x->shape.dims[0], x->shape.dims[1], w->shape.dims[0],
                            group, &cw, act),
                rt_op_name(node->op));
    return RT_OK;
}

/* GlobalAveragePool: the mean over the spatial dims of each (n, c) plane. */
static rt_status global_avg(cuda_be *be, const rt_tensor *x, rt_tensor *y, rt_error *err)
{
    cuda_reduce r;
    memset(&r, 0, sizeof r);
    r.kept_rank = 1;
    r.red_rank = 1;
    r.red_dims[0] = 1;
    for (int i = 2; i < x->shape.rank; i++)
        r.red_dims[0] *= x->shape.dims[i];
    if (r.red_dims[0] == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "GlobalAveragePool: the spatial dims are empty");
    r.kept_dims[0] = x->shape.dims[0] * x->shape.dims[1];
    r.kept_strides[0] = r.red_dims[0];
    r.red_strides[0] = 1;
    r.n_out = r.kept_dims[0];
    r.count = r.red_dims[0];
    CUDA_LAUNCH(be, err,
                cuda_k_reduce(be->stream, x->dtype, CUDA_REDUCE_MEAN, x->data, y->data, &r),
                "GlobalAveragePool");
    return RT_OK;
}

CUDA_OP(cuda_op_pool)
{
    (void)n_in;
    const rt_tensor *x = in[0];
    rt_status st = need_float(node, x->dtype, err);
    if (st != RT_OK)
        return st;
    if (node->op == RT_OP_GLOBAL_AVERAGE_POOL)
        return global_avg(be, x, out[0], err);
    rt_window win;
    st = rt_window_resolve(node, &x->shape, NULL, &win, err);
    if (st == RT_OK)
        st = rt_window_pad3(&win, err);
    if (st != RT_OK)
        return st;
    cuda_window cw = window_of(&win);
    rt_tensor *indices = n_out > 1 ? out[1] : NULL;
    CUDA_LAUNCH(be, err,
                cuda_k_pool(be->stream, x->dtype, x->data, out[0]->data,
                            indices ? indices->data : NULL, x->shape.dims[0] * x->shape.dims[1],
                            &cw, node->op == RT_OP_MAX_POOL,
                            rt_node_attr_int(node, "count_include_pad", 0) != 0,
                            rt_node_attr_int(node, "storage_order", 0) == 1),
                rt_op_name(node->op));
    return RT_OK;
}

/* ---- normalizations ---- */

CUDA_OP(cuda_op_batchnorm)
{
    (void)n_in, (void)n_out;
    const rt_tensor *x = in[0];
    rt_status st = need_float(node, x->dtype, err);
    if (st != RT_OK)
        return st;
    if (node->opset >= 14 && rt_node_attr_int(node, "training_mode", 0) != 0)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "cuda: BatchNormalization in training mode is not supported");
    int64_t plane = 1;
    for (int i = 2; i < x->shape.rank; i++)
        plane *= x->shape.dims[i];
    CUDA_LAUNCH(be, err,
                cuda_k_batchnorm(be->stream, x->dtype, x->data, out[0]->data, x->shape.dims[0],
                                 x->shape.dims[1], plane, in[1]->data, in[1]->dtype, in[2]->data,
                                 in[2]->dtype, in[3]->data, in[3]->dtype, in[4]->data,
                                 in[4]->dtype, rt_node_attr_float(node, "epsilon", 1e-5f)),
                "BatchNormalization");
    return RT_OK;
}

/* Scale or bias as a full row of cols elements: t itself when it has that many, else its
 * broadcast over the normalized dims copied to dst (as rt_cpu_norm.c's norm_row). */
static const void *norm_row(cuda_be *be, const rt_node *node, const rt_tensor *t, int norm_rank,
                            const int64_t *norm_dims, int64_t cols, void *dst, rt_error *err)
{
    if (!t || rt_tensor_numel(t) == cols)
        return t ? t->data : NULL;
    int64_t t_strides[RT_MAX_RANK];
    cuda_box box;
    memset(&box, 0, sizeof box);
    rt_strides_contiguous(&t->shape, t_strides);
    rt_shape norm = rt_shape_make(norm_rank, norm_dims);
    rt_strides_contiguous(&norm, box.dst);
    int off = norm_rank - t->shape.rank;
    box.rank = norm_rank;
    for (int d = 0; d < norm_rank; d++) {
        box.dims[d] = norm_dims[d];
        box.src[d] = d < off || t->shape.dims[d - off] == 1 ? 0 : t_strides[d - off];
    }
    be->kernels++;
    cudaError_t e = cuda_k_copy_box(be->stream, dst, t->data, rt_dtype_size(t->dtype), &box);
    if (e != cudaSuccess) {
        cuda_fail(be, err, e, rt_op_name(node->op));
        return NULL;
    }
    return dst;
}

CUDA_OP(cuda_op_layernorm)
{
    const rt_tensor *x = in[0];
    const rt_shape *s = &x->shape;
    int axis = 0;
    rt_status st = need_float(node, x->dtype, err);
    if (st == RT_OK)
        st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", -1), s->rank, false, &axis,
                               err);
    if (st != RT_OK)
        return st;
    int64_t rows = 1, cols = 1;
    for (int i = 0; i < s->rank; i++)
        *(i < axis ? &rows : &cols) *= s->dims[i];
    if (rows * cols == 0)
        return RT_OK;
    const rt_tensor *scale = in[1], *bias = n_in > 2 ? in[2] : NULL;
    size_t row = cuda_piece((size_t)cols * rt_dtype_size(x->dtype));
    bool bcast = rt_tensor_numel(scale) != cols || (bias && rt_tensor_numel(bias) != cols);
    char *scratch = bcast ? cuda_scratch(be, 2 * row, err) : NULL;
    if (bcast && !scratch)
        return err ? err->status : RT_ERR_NOMEM;
    const void *g = norm_row(be, node, scale, s->rank - axis, s->dims + axis, cols, scratch, err);
    const void *b = g ? norm_row(be, node, bias, s->rank - axis, s->dims + axis, cols,
                                 scratch + row, err) : NULL;
    if (!g || (bias && !b))
        return err ? err->status : RT_ERR_BACKEND;
    rt_tensor *mean = n_out > 1 ? out[1] : NULL, *inv = n_out > 2 ? out[2] : NULL;
    rt_dtype stat_dt = mean ? mean->dtype : inv ? inv->dtype : RT_DTYPE_F32;
    CUDA_LAUNCH(be, err,
                cuda_k_layernorm(be->stream, x->dtype, x->data, NULL, 1, g, b, out[0]->data, rows,
                                 cols, rt_node_attr_float(node, "epsilon", 1e-5f), stat_dt,
                                 mean ? mean->data : NULL, inv ? inv->data : NULL),
                "LayerNormalization");
    return RT_OK;
}

CUDA_OP(cuda_op_skip_layernorm)
{
    (void)n_out;
    const rt_tensor *x = in[0], *s = in[1], *b = n_in > 3 ? in[3] : NULL;
    int64_t cols = x->shape.dims[x->shape.rank - 1];
    if (cols == 0)
        return RT_OK;
    int64_t rows = rt_tensor_numel(x) / cols, skip_rows = rt_tensor_numel(s) / cols;
    CUDA_LAUNCH(be, err,
                cuda_k_layernorm(be->stream, RT_DTYPE_F32, x->data, s->data, skip_rows,
                                 in[2]->data, b ? b->data : NULL, out[0]->data, rows, cols,
                                 rt_node_attr_float(node, "epsilon", 1e-5f), RT_DTYPE_F32, NULL,
                                 NULL),
                "SkipLayerNorm");
    return RT_OK;
}

CUDA_OP(cuda_op_softmax)
{
    (void)n_in, (void)n_out;
    const rt_shape *s = &in[0]->shape;
    rt_status st = need_float(node, in[0]->dtype, err);
    if (st != RT_OK || rt_tensor_numel(in[0]) == 0)
        return st;
    /* before opset 13 the input is flattened to 2-D at axis (default 1); from 13 on the
     * softmax runs along the single axis (default -1) */
    bool flatten = node->opset < 13;
    int axis = 0;
    st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", flatten ? 1 : -1), s->rank,
                           flatten, &axis, err);
    if (st != RT_OK)
        return st;
    int64_t outer = 1, len = 1, inner = 1;
    for (int i = 0; i < s->rank; i++)
        *(i < axis ? &outer : i == axis || flatten ? &len : &inner) *= s->dims[i];
    CUDA_LAUNCH(be, err,
                cuda_k_softmax(be->stream, in[0]->dtype, in[0]->data, out[0]->data, outer, len,
                               inner, node->op == RT_OP_LOG_SOFTMAX),
                rt_op_name(node->op));
    return RT_OK;
}

/* ---- reductions ---- */

CUDA_OP(cuda_op_reduce)
{
    (void)n_out;
    const rt_tensor *x = in[0];
    const rt_shape *s = &x->shape;
    rt_dtype dt = x->dtype;
    if (!is_float(dt) && dt != RT_DTYPE_I32 && dt != RT_DTYPE_I64)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: %s on %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    bool reduced[RT_MAX_RANK];
    rt_status st = rt_reduce_axes(node, in, n_in, s->rank, reduced, err);
    if (st != RT_OK)
        return st;
    int64_t strides[RT_MAX_RANK];
    rt_strides_contiguous(s, strides);
    cuda_reduce r;
    memset(&r, 0, sizeof r);
    r.count = 1;
    for (int i = 0; i < s->rank; i++) {
        if (reduced[i]) {
            r.red_dims[r.red_rank] = s->dims[i];
            r.red_strides[r.red_rank++] = strides[i];
            r.count *= s->dims[i];
        } else {
            r.kept_dims[r.kept_rank] = s->dims[i];
            r.kept_strides[r.kept_rank++] = strides[i];
        }
    }
    r.n_out = rt_tensor_numel(out[0]);
    if (r.n_out == 0)
        return RT_OK;
    if (r.count == 0) {
        if (node->op != RT_OP_REDUCE_SUM)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s over an empty axis",
                                rt_op_name(node->op));
        be->kernels++;
        CUDA_TRY(be, err, cudaMemsetAsync(out[0]->data, 0, rt_tensor_nbytes(out[0]), be->stream),
                 "ReduceSum");
        return RT_OK;
    }
    cuda_reduce_op op = node->op == RT_OP_REDUCE_MAX    ? CUDA_REDUCE_MAX
                        : node->op == RT_OP_REDUCE_MEAN ? CUDA_REDUCE_MEAN
                                                        : CUDA_REDUCE_SUM;
    CUDA_LAUNCH(be, err, cuda_k_reduce(be->stream, dt, op, x->data, out[0]->data, &r),
                rt_op_name(node->op));
    return RT_OK;
}

CUDA_OP(cuda_op_argmax)
{
    (void)n_in, (void)n_out;
    const rt_shape *s = &in[0]->shape;
    int axis = 0;
    rt_status st = rt_axis_normalize(node, rt_node_attr_int(node, "axis", 0), s->rank, false,
                                     &axis, err);
    if (st == RT_OK && (in[0]->dtype == RT_DTYPE_BYTES || in[0]->dtype == RT_DTYPE_BOOL))
        st = rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: ArgMax on %s is not supported",
                          rt_dtype_name(in[0]->dtype));
    if (st != RT_OK)
        return st;
    int64_t outer = 1, inner = 1;
    for (int i = 0; i < axis; i++)
        outer *= s->dims[i];
    for (int i = axis + 1; i < s->rank; i++)
        inner *= s->dims[i];
    CUDA_LAUNCH(be, err,
                cuda_k_argmax(be->stream, in[0]->dtype, in[0]->data, out[0]->data, outer,
                              s->dims[axis], inner,
                              rt_node_attr_int(node, "select_last_index", 0) != 0),
                "ArgMax");
    return RT_OK;
}
