/* rt_op_fused.c: shape inference of the optimizer's fused ops (rt_fused.h) and the reading
 * of their attributes, shared with the kernels. */
#include <math.h>
#include <string.h>

#include "rt_broadcast.h"
#include "rt_fused.h"
#include "rt_ops.h"

static const char *const act_names[RT_ACT_COUNT] = {
    [RT_ACT_NONE] = "",           [RT_ACT_RELU] = "Relu",      [RT_ACT_LEAKY_RELU] = "LeakyRelu",
    [RT_ACT_SIGMOID] = "Sigmoid", [RT_ACT_TANH] = "Tanh",      [RT_ACT_CLIP] = "Clip",
    [RT_ACT_GELU] = "infd.Gelu",  [RT_ACT_GELU_TANH] = "infd.GeluTanh",
};

const char *rt_act_name(rt_act_kind kind)
{
    return (unsigned)kind < RT_ACT_COUNT ? act_names[kind] : "?";
}

rt_status rt_act_get(const rt_node *node, rt_act *act, rt_error *err)
{
    const char *name = rt_node_attr_string(node, "activation", "");
    act->alpha = rt_node_attr_float(node, "activation_alpha", 0.01f);
    act->lo = rt_node_attr_float(node, "activation_min", -INFINITY);
    act->hi = rt_node_attr_float(node, "activation_max", INFINITY);
    for (int k = 0; k < RT_ACT_COUNT; k++)
        if (strcmp(name, act_names[k]) == 0) {
            act->kind = (rt_act_kind)k;
            return RT_OK;
        }
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: unknown activation '%s'",
                        rt_op_name(node->op), name);
}

bool rt_ew_step_op(rt_op op, bool *binary)
{
    switch (op) {
    case RT_OP_ADD: case RT_OP_SUB: case RT_OP_MUL: case RT_OP_DIV: case RT_OP_POW:
    case RT_OP_MIN: case RT_OP_MAX:
        *binary = true;
        return true;
    case RT_OP_SQRT: case RT_OP_EXP: case RT_OP_LOG: case RT_OP_NEG: case RT_OP_ABS:
    case RT_OP_RECIPROCAL: case RT_OP_RELU: case RT_OP_LEAKY_RELU: case RT_OP_SIGMOID:
    case RT_OP_TANH: case RT_OP_ERF: case RT_OP_CLIP: case RT_OP_GELU:
        *binary = false;
        return true;
    default:
        return false;
    }
}

/* The step op named name (an ONNX op_type, or "infd.Gelu"); RT_OP_COUNT if none. */
static rt_op step_op_from_name(const char *name)
{
    bool binary;
    for (int op = 0; op < RT_OP_COUNT; op++)
        if (rt_ew_step_op((rt_op)op, &binary) && strcmp(rt_op_name((rt_op)op), name) == 0)
            return (rt_op)op;
    return RT_OP_COUNT;
}

rt_status rt_ew_program_get(const rt_node *node, int n_in, rt_ew_program *p, rt_error *err)
{
    const rt_attr *ops = rt_node_attr(node, "ops");
    int n_args, n_swap, n_params;
    const int64_t *args = rt_node_attr_ints(node, "args", &n_args);
    const int64_t *swap = rt_node_attr_ints(node, "swap", &n_swap);
    const float *params = rt_node_attr_floats(node, "params", &n_params);
    if (!ops || ops->type != RT_ATTR_STRINGS || ops->n < 1 || ops->n > RT_EW_MAX_STEPS ||
        n_args != ops->n || n_swap != ops->n || n_params != 2 * ops->n)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "FusedElementwise: ops, args, swap and params do not describe 1 to "
                            "%d steps", RT_EW_MAX_STEPS);
    p->n = ops->n;
    for (int i = 0; i < p->n; i++) {
        rt_ew_step *s = &p->steps[i];
        bool binary = false;
        s->op = step_op_from_name(ops->strings[i]);
        if (s->op == RT_OP_COUNT || !rt_ew_step_op(s->op, &binary))
            return rt_error_set(err, RT_ERR_UNSUPPORTED, "FusedElementwise: step %d: op '%s'", i,
                                ops->strings[i]);
        if (binary ? args[i] < 1 || args[i] >= n_in : args[i] != -1)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "FusedElementwise: step %d: bad operand",
                                i);
        s->arg = (int)args[i];
        s->swap = swap[i] != 0;
        s->p0 = params[2 * i];
        s->p1 = params[2 * i + 1];
    }
    return RT_OK;
}

/* Every present input among in[0..n) has dtype F32 (optional ones may be NULL). */
static rt_status need_f32(const rt_node *node, const rt_tensor *const *in, int n, rt_error *err)
{
    for (int i = 0; i < n; i++)
        if (in[i] && in[i]->dtype != RT_DTYPE_F32)
            return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s: input %d has dtype %s, not F32",
                                rt_op_name(node->op), i, rt_dtype_name(in[i]->dtype));
    return RT_OK;
}

static rt_status need_inputs(const rt_node *node, const rt_tensor *const *in, int n_in, int min,
                             int max, rt_error *err)
{
    if (n_in < min || n_in > max)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s takes %d to %d inputs, got %d",
                            rt_op_name(node->op), min, max, n_in);
    for (int i = 0; i < min; i++)
        if (!in[i])
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input %d is required",
                                rt_op_name(node->op), i);
    return need_f32(node, in, n_in, err);
}

static rt_status need_numel(const rt_node *node, const rt_tensor *t, int64_t n, const char *what,
                            rt_error *err)
{
    if (t && rt_tensor_numel(t) != n)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: %s must have %lld elements",
                            rt_op_name(node->op), what, (long long)n);
    return RT_OK;
}

rt_status rt_infer_linear(const rt_node *node, const rt_tensor *const *in, int n_in,
                          rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_act act;
    const rt_tensor *bias = n_in > 2 ? in[2] : NULL;
    rt_status st = need_inputs(node, in, n_in, 2, 3, err);
    if (st == RT_OK)
        st = rt_act_get(node, &act, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape, *w = &in[1]->shape;
    bool tb = rt_node_attr_int(node, "trans_b", 0) != 0;
    if (x->rank < 1 || w->rank != 2 || x->dims[x->rank - 1] != w->dims[tb ? 1 : 0])
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Linear: X's last dim does not match W (rank %d, %d)", x->rank,
                            w->rank);
    int64_t n = w->dims[tb ? 0 : 1];
    if ((st = need_numel(node, bias, n, "B", err)) != RT_OK)
        return st;
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = *x;
    out[0].shape.dims[x->rank - 1] = n;
    return RT_OK;
}

rt_status rt_infer_fused_conv(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, int n_out, rt_error *err)
{
    rt_act act;
    rt_status st = need_inputs(node, in, n_in, 2, 3, err);
    if (st == RT_OK)
        st = rt_act_get(node, &act, err);
    if (st == RT_OK)
        st = rt_infer_conv(node, in, n_in, out, n_out, err);
    return st;
}

rt_status rt_infer_gelu(const rt_node *node, const rt_tensor *const *in, int n_in,
                        rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 1, 1, err);
    if (st != RT_OK)
        return st;
    const char *approx = rt_node_attr_string(node, "approximate", "none");
    if (strcmp(approx, "none") != 0 && strcmp(approx, "tanh") != 0)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "Gelu: approximate '%s'", approx);
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = in[0]->shape;
    return RT_OK;
}

rt_status rt_infer_all_reduce(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 1, 1, err);
    if (st != RT_OK)
        return st;
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = in[0]->shape;
    return RT_OK;
}

rt_status rt_infer_skip_layernorm(const rt_node *node, const rt_tensor *const *in, int n_in,
                                  rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    const rt_tensor *beta = n_in > 3 ? in[3] : NULL;
    rt_status st = need_inputs(node, in, n_in, 3, 4, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape, *s = &in[1]->shape;
    int lead = 0; /* leading dims of 1 in the skip input do not count */
    while (lead < s->rank - 1 && s->dims[lead] == 1)
        lead++;
    bool suffix = x->rank >= 1 && s->rank >= 1 && s->rank - lead <= x->rank;
    for (int i = 1; suffix && i <= s->rank - lead; i++)
        suffix = s->dims[s->rank - i] == x->dims[x->rank - i];
    if (!suffix)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "SkipLayerNorm: the skip input's shape must end X's shape");
    int64_t cols = x->dims[x->rank - 1];
    if ((st = need_numel(node, in[2], cols, "gamma", err)) != RT_OK ||
        (st = need_numel(node, beta, cols, "beta", err)) != RT_OK)
        return st;
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = *x;
    return RT_OK;
}

rt_status rt_infer_attention(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    const rt_tensor *bias = n_in > 2 ? in[2] : NULL, *mask = n_in > 3 ? in[3] : NULL;
    rt_status st = need_inputs(node, in, n_in, 2, 4, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape, *w = &in[1]->shape;
    int64_t heads = rt_node_attr_int(node, "num_heads", 0);
    if (x->rank != 3 || w->rank != 2 || w->dims[0] != x->dims[2])
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Attention: X must be (batch, seq, hidden) and W (hidden, 3 x)");
    if (heads < 1 || w->dims[1] % (3 * heads) != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Attention: W's %lld columns do not split into Q, K, V of %lld heads",
                            (long long)w->dims[1], (long long)heads);
    if ((st = need_numel(node, bias, w->dims[1], "B", err)) != RT_OK)
        return st;
    int64_t b = x->dims[0], s = x->dims[1];
    if (mask) {
        /* right-aligned to (batch or 1, 1, seq or 1, seq) */
        const rt_shape *m = &mask->shape;
        int64_t d[4] = {1, 1, 1, 1};
        bool fits = m->rank <= 4;
        for (int i = 0; fits && i < m->rank; i++)
            d[4 - m->rank + i] = m->dims[i];
        fits = fits && (d[0] == 1 || d[0] == b) && d[1] == 1 && (d[2] == 1 || d[2] == s) &&
               d[3] == s;
        if (!fits)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "Attention: the mask does not broadcast to (batch, 1, seq, seq)");
    }
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = *x;
    out[0].shape.dims[2] = w->dims[1] / 3;
    return RT_OK;
}

rt_status rt_infer_fused_elementwise(const rt_node *node, const rt_tensor *const *in, int n_in,
                                     rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_ew_program p;
    if (n_in < 1 || !in[0])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "FusedElementwise: input 0 is required");
    rt_status st = rt_ew_program_get(node, n_in, &p, err);
    if (st != RT_OK)
        return st;
    for (int i = 1; i < n_in; i++)
        if (!in[i] || in[i]->dtype != RT_DTYPE_F32)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "FusedElementwise: input %d must be present and F32", i);
    rt_dtype dt = in[0]->dtype;
    if (!rt_dtype_is_float(dt) && !rt_dtype_is_integer(dt) && dt != RT_DTYPE_BOOL)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "FusedElementwise: input dtype %s",
                            rt_dtype_name(dt));
    rt_shape s = in[0]->shape;
    for (int i = 1; i < n_in && st == RT_OK; i++)
        st = rt_broadcast_shapes(&s, &in[i]->shape, &s, err);
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = s;
    return st;
}
