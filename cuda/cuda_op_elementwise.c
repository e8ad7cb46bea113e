/* cuda_op_elementwise.c: the CUDA backend's elementwise ops: broadcasting binary ops
 * (their walk planned by rt_bcast_init, as on the CPU), Min/Max over several inputs,
 * Where, unary math, Cast, the copies that Identity, inference Dropout and the
 * reshaping ops are, infd.Gelu and infd.FusedElementwise. */
#include <string.h>

#include "cuda_ops.h"
#include "rt_cpu_broadcast.h"
#include "rt_fused.h"
#include "rt_nn_params.h"

static cuda_op map_op(rt_op op)
{
    switch (op) {
    case RT_OP_ADD: return CUDA_OP_ADD;
    case RT_OP_SUB: return CUDA_OP_SUB;
    case RT_OP_MUL: return CUDA_OP_MUL;
    case RT_OP_DIV: return CUDA_OP_DIV;
    case RT_OP_POW: return CUDA_OP_POW;
    case RT_OP_MIN: return CUDA_OP_MIN;
    case RT_OP_MAX: return CUDA_OP_MAX;
    case RT_OP_EQUAL: return CUDA_OP_EQUAL;
    case RT_OP_LESS: return CUDA_OP_LESS;
    case RT_OP_GREATER: return CUDA_OP_GREATER;
    case RT_OP_SQRT: return CUDA_OP_SQRT;
    case RT_OP_EXP: return CUDA_OP_EXP;
    case RT_OP_LOG: return CUDA_OP_LOG;
    case RT_OP_NEG: return CUDA_OP_NEG;
    case RT_OP_ABS: return CUDA_OP_ABS;
    case RT_OP_RECIPROCAL: return CUDA_OP_RECIPROCAL;
    case RT_OP_RELU: return CUDA_OP_RELU;
    case RT_OP_LEAKY_RELU: return CUDA_OP_LEAKY_RELU;
    case RT_OP_SIGMOID: return CUDA_OP_SIGMOID;
    case RT_OP_TANH: return CUDA_OP_TANH;
    case RT_OP_ERF: return CUDA_OP_ERF;
    case RT_OP_NOT: return CUDA_OP_NOT;
    case RT_OP_CLIP: return CUDA_OP_CLIP;
    case RT_OP_GELU: return CUDA_OP_GELU;
    default: return CUDA_OP_NONE;
    }
}

/* The walk of out over n inputs, as the CPU plans it. */
static cuda_bcast bcast_plan(const rt_tensor *out, const rt_tensor *const *in, int n)
{
    const rt_shape *shapes[RT_BCAST_MAX_IN];
    for (int k = 0; k < n; k++)
        shapes[k] = &in[k]->shape;
    rt_bcast p;
    rt_bcast_init(&p, &out->shape, shapes, n);
    cuda_bcast bc;
    memset(&bc, 0, sizeof bc);
    bc.rank = p.rank;
    for (int d = 0; d < p.rank; d++) {
        bc.dims[d] = p.dims[d];
        for (int k = 0; k < n; k++)
            bc.strides[k][d] = p.strides[k][d];
    }
    bc.numel = rt_tensor_numel(out);
    return bc;
}

static rt_status no_bytes(const rt_node *node, const rt_tensor *t, rt_error *err)
{
    if (t->dtype == RT_DTYPE_BYTES || !rt_dtype_size(t->dtype))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: %s on %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(t->dtype));
    return RT_OK;
}

/* out = op(a, b) with broadcasting; out may be a (same shape). */
static rt_status binary(cuda_be *be, const rt_node *node, const rt_tensor *a, const rt_tensor *b,
                        rt_tensor *out, rt_error *err)
{
    rt_status st = no_bytes(node, a, err);
    if (st == RT_OK)
        st = no_bytes(node, b, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *args[2] = {a, b};
    cuda_bcast bc = bcast_plan(out, args, 2);
    CUDA_LAUNCH(be, err,
                cuda_k_binary(be->stream, map_op(node->op), a->dtype, b->dtype, out->dtype,
                              a->data, b->data, out->data, &bc),
                rt_op_name(node->op));
    return RT_OK;
}

static rt_status device_copy(cuda_be *be, void *dst, const void *src, size_t bytes,
                             rt_error *err)
{
    if (bytes == 0 || dst == src)
        return RT_OK;
    be->kernels++;
    CUDA_TRY(be, err, cudaMemcpyAsync(dst, src, bytes, cudaMemcpyDeviceToDevice, be->stream),
             "copying on the device");
    return RT_OK;
}

CUDA_OP(cuda_op_binary)
{
    (void)n_in, (void)n_out;
    return binary(be, node, in[0], in[1], out[0], err);
}

CUDA_OP(cuda_op_variadic)
{
    (void)n_out;
    if (n_in == 1)
        return device_copy(be, out[0]->data, in[0]->data, rt_tensor_nbytes(out[0]), err);
    rt_status st = binary(be, node, in[0], in[1], out[0], err);
    for (int i = 2; i < n_in && st == RT_OK; i++)
        st = binary(be, node, out[0], in[i], out[0], err);
    return st;
}

CUDA_OP(cuda_op_where)
{
    (void)node, (void)n_in, (void)n_out;
    cuda_bcast bc = bcast_plan(out[0], in, 3);
    CUDA_LAUNCH(be, err,
                cuda_k_where(be->stream, rt_dtype_size(out[0]->dtype), in[0]->data, in[1]->data,
                             in[2]->data, out[0]->data, &bc),
                "Where");
    return RT_OK;
}

/* Clip's bounds (rt_clip_bounds), integer ones as int64. */
static void clip_bounds(const rt_node *node, const rt_tensor *const *in, int n_in, cuda_unary *u)
{
    const rt_tensor *lo, *hi;
    rt_clip_bounds(node, in, n_in, &u->lo, &u->hi, &lo, &hi);
    if ((u->has_ilo = lo != NULL))
        u->ilo = rt_dtype_load_i64(lo->dtype, lo->data, 0);
    if ((u->has_ihi = hi != NULL))
        u->ihi = rt_dtype_load_i64(hi->dtype, hi->data, 0);
}

CUDA_OP(cuda_op_unary)
{
    (void)n_out;
    rt_dtype dt = in[0]->dtype;
    if (dt == RT_DTYPE_BYTES || (dt == RT_DTYPE_BOOL) != (node->op == RT_OP_NOT))
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: %s on %s is not supported",
                            rt_op_name(node->op), rt_dtype_name(dt));
    cuda_unary u;
    memset(&u, 0, sizeof u);
    u.op = map_op(node->op);
    u.alpha = rt_node_attr_float(node, "alpha", 0.01f);
    if (node->op == RT_OP_CLIP)
        clip_bounds(node, in, n_in, &u);
    CUDA_LAUNCH(be, err,
                cuda_k_unary(be->stream, dt, &u, in[0]->data, out[0]->data,
                             rt_tensor_numel(out[0])),
                rt_op_name(node->op));
    return RT_OK;
}

CUDA_OP(cuda_op_cast)
{
    (void)n_in, (void)n_out;
    rt_status st = no_bytes(node, in[0], err);
    if (st == RT_OK)
        st = no_bytes(node, out[0], err);
    if (st != RT_OK)
        return st;
    if (in[0]->dtype == out[0]->dtype)
        return device_copy(be, out[0]->data, in[0]->data, rt_tensor_nbytes(out[0]), err);
    CUDA_LAUNCH(be, err,
                cuda_k_cast(be->stream, in[0]->dtype, out[0]->dtype, in[0]->data, out[0]->data,
                            rt_tensor_numel(out[0]), node->opset < 19),
                "Cast");
    return RT_OK;
}

CUDA_OP(cuda_op_copy)
{
    rt_tensor *mask = node->op == RT_OP_DROPOUT && n_out > 1 ? out[1] : NULL;
    if (node->op == RT_OP_DROPOUT) {
        double ratio = n_in > 1 && in[1] ? rt_dtype_load_f64(in[1]->dtype, in[1]->data, 0)
                                         : rt_node_attr_float(node, "ratio", 0.5f);
        bool training = n_in > 2 && in[2] && ((const uint8_t *)in[2]->data)[0];
        if (training && ratio != 0)
            return rt_error_set(err, RT_ERR_UNSUPPORTED,
                                "cuda: Dropout in training mode is not supported");
    }
    rt_status st = device_copy(be, out[0]->data, in[0]->data, rt_tensor_nbytes(out[0]), err);
    if (st == RT_OK && mask) {
        uint8_t one = 1;
        CUDA_LAUNCH(be, err, cuda_k_fill(be->stream, mask->data, rt_tensor_numel(mask), 1, &one),
                    "Dropout mask");
    }
    return st;
}

rt_status cuda_act_get(const rt_node *node, cuda_act *act, rt_error *err)
{
    rt_act a;
    rt_status st = rt_act_get(node, &a, err);
    if (st != RT_OK)
        return st;
    *act = (cuda_act){.kind = a.kind, .alpha = a.alpha, .lo = a.lo, .hi = a.hi};
    return RT_OK;
}

CUDA_OP(cuda_op_gelu)
{
    (void)n_in, (void)n_out;
    bool tanh_form = strcmp(rt_node_attr_string(node, "approximate", "none"), "tanh") == 0;
    cuda_act act = {.kind = tanh_form ? RT_ACT_GELU_TANH : RT_ACT_GELU};
    CUDA_LAUNCH(be, err,
                cuda_k_bias_act(be->stream, out[0]->data, in[0]->data, 1, rt_tensor_numel(out[0]),
                                NULL, act),
                "Gelu");
    return RT_OK;
}

CUDA_OP(cuda_op_fused_ew)
{
    (void)n_out;
    rt_ew_program prog;
    rt_status st = rt_ew_program_get(node, n_in, &prog, err);
    if (st != RT_OK)
        return st;
    if (n_in > CUDA_EW_MAX_IN)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: FusedElementwise: more than %d inputs",
                            CUDA_EW_MAX_IN);
    st = no_bytes(node, in[0], err);
    if (st != RT_OK)
        return st;
    cuda_ew ew;
    memset(&ew, 0, sizeof ew);
    ew.n_steps = prog.n;
    for (int k = 0; k < prog.n; k++) {
        const rt_ew_step *s = &prog.steps[k];
        cuda_op op = map_op(s->op);
        if (s->op == RT_OP_GELU && s->p0 != 0)
            op = CUDA_OP_GELU_TANH;
        ew.steps[k] = (cuda_ew_step){op, s->arg, s->swap, s->p0, s->p1};
    }
    const rt_shape *o = &out[0]->shape;
    ew.n_in = n_in;
    ew.in0_dtype = in[0]->dtype;
    ew.rank = o->rank;
    for (int d = 0; d < o->rank; d++)
        ew.dims[d] = o->dims[d];
    for (int k = 0; k < n_in; k++) {
        const rt_shape *s = &in[k]->shape;
        ew.in[k] = in[k]->data;
        int64_t stride = 1;
        for (int d = o->rank - 1; d >= 0; d--) {
            int sd = d - (o->rank - s->rank);
            int64_t dim = sd >= 0 ? s->dims[sd] : 1;
            ew.strides[k][d] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
    }
    ew.numel = rt_tensor_numel(out[0]);
    CUDA_LAUNCH(be, err, cuda_k_fused_ew(be->stream, &ew, out[0]->data), "FusedElementwise");
    return RT_OK;
}
