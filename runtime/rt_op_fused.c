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

rt_linear_dims rt_linear_dims_get(const rt_node *node, const rt_tensor *x, const rt_tensor *w,
                                  const rt_tensor *y)
{
    rt_linear_dims d = {.trans_b = rt_node_attr_int(node, "trans_b", 0) != 0};
    d.k = x->shape.dims[x->shape.rank - 1];
    d.n = w->shape.dims[d.trans_b ? 0 : 1];
    d.m = d.n ? rt_tensor_numel(y) / d.n : 0;
    return d;
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

rt_status rt_attention_heads(const rt_node *node, int64_t cols, int64_t *heads,
                             int64_t *kv_heads, int64_t *head_dim, rt_error *err)
{
    *heads = rt_node_attr_int(node, "num_heads", 0);
    *kv_heads = rt_node_attr_int(node, "num_kv_heads", *heads);
    if (*heads < 1 || *kv_heads < 1 || *heads % *kv_heads != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Attention: %lld heads cannot share %lld "
                            "KV heads (the heads must be a multiple of the KV heads)",
                            (long long)*heads, (long long)*kv_heads);
    int64_t slots = *heads + 2 * *kv_heads;
    if (cols < slots || cols % slots != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Attention: W's %lld columns do not split "
                            "into Q, K, V of %lld + 2 x %lld heads", (long long)cols,
                            (long long)*heads, (long long)*kv_heads);
    *head_dim = cols / slots;
    return RT_OK;
}

/* Whether input i of node may have dtype dt: F32, or for W (input 1) of Linear, Attention
 * and FusedConv also F16 or BF16, a weight the precision pass narrowed (rt_compress.h)
 * that the kernels widen to F32. */
static bool dtype_fits(const rt_node *node, int i, rt_dtype dt)
{
    bool half_w = i == 1 && (node->op == RT_OP_LINEAR || node->op == RT_OP_ATTENTION ||
                             node->op == RT_OP_FUSED_CONV);
    return dt == RT_DTYPE_F32 || (half_w && (dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16));
}

/* Every present input among in[0..n) has a dtype that fits (optional ones may be NULL). */
static rt_status need_f32(const rt_node *node, const rt_tensor *const *in, int n, rt_error *err)
{
    for (int i = 0; i < n; i++)
        if (in[i] && !dtype_fits(node, i, in[i]->dtype))
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

/* out: F32, X's shape with the last dim set to last. */
static rt_status f32_last_dim(rt_tensor *out, const rt_shape *x, int64_t last)
{
    out->dtype = RT_DTYPE_F32;
    out->shape = *x;
    out->shape.dims[x->rank - 1] = last;
    return RT_OK;
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
    return f32_last_dim(&out[0], x, n);
}

rt_status rt_infer_fused_conv(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, int n_out, rt_error *err)
{
    rt_act act;
    rt_status st = need_inputs(node, in, n_in, 2, 3, err);
    if (st == RT_OK)
        st = rt_act_get(node, &act, err);
    if (st != RT_OK)
        return st;
    /* Conv's inference wants one dtype; a narrowed W computes as F32 */
    rt_tensor w = *in[1];
    w.dtype = RT_DTYPE_F32;
    const rt_tensor *args[3] = {in[0], &w, n_in > 2 ? in[2] : NULL};
    return rt_infer_conv(node, args, n_in, out, n_out, err);
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

rt_status rt_infer_all_gather(const rt_node *node, const rt_tensor *const *in, int n_in,
                              rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    rt_status st = need_inputs(node, in, n_in, 1, 1, err);
    if (st != RT_OK)
        return st;
    const rt_shape *x = &in[0]->shape;
    int64_t ranks = rt_node_attr_int(node, "ranks", 0);
    int64_t c = x->rank > 0 ? x->dims[x->rank - 1] : 0;
    int64_t width = rt_node_attr_int(node, "width", ranks * c);
    if (ranks < 1 || c < 1 || width > ranks * c || width <= (ranks - 1) * c)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "AllGather: %lld ranks of %lld columns "
                            "cannot make %lld (the last rank's part must not be empty)",
                            (long long)ranks, (long long)c, (long long)width);
    return f32_last_dim(&out[0], x, width);
}

rt_status rt_infer_vocab_gather(const rt_node *node, const rt_tensor *const *in, int n_in,
                                rt_tensor *out, int n_out, rt_error *err)
{
    (void)n_out;
    if (n_in != 2 || !in[0] || !in[1])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "VocabGather takes a table and ids");
    rt_status st = need_f32(node, in, 1, err);
    if (st != RT_OK)
        return st;
    const rt_shape *t = &in[0]->shape, *ids = &in[1]->shape;
    int64_t vocab = rt_node_attr_int(node, "vocab_size", 0);
    int64_t start = rt_node_attr_int(node, "vocab_start", -1);
    if (t->rank != 2 || start < 0 || start + t->dims[0] > vocab)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "VocabGather: the table must be rows "
                            "[vocab_start, vocab_start + rows) of vocab_size rows");
    if (in[1]->dtype != RT_DTYPE_I32 && in[1]->dtype != RT_DTYPE_I64)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "VocabGather: ids have dtype %s, not "
                            "I32 or I64", rt_dtype_name(in[1]->dtype));
    if (ids->rank >= RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "VocabGather: ids of rank %d", ids->rank);
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = *ids;
    out[0].shape.dims[ids->rank] = t->dims[1];
    out[0].shape.rank = ids->rank + 1;
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
    int64_t heads, kv_heads, d;
    if (x->rank != 3 || w->rank != 2 || w->dims[0] != x->dims[2])
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Attention: X must be (batch, seq, hidden) and W (hidden, 3 x)");
    if ((st = rt_attention_heads(node, w->dims[1], &heads, &kv_heads, &d, err)) != RT_OK)
        return st;
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
    out[0].shape.dims[2] = heads * d;
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

rt_status rt_infer_embedding(const rt_node *node, const rt_tensor *const *in, int n_in,
                             rt_tensor *out, int n_out, rt_error *err)
{
    (void)node, (void)n_out;
    const rt_tensor *t = n_in > 0 ? in[0] : NULL, *idx = n_in > 1 ? in[1] : NULL;
    const rt_tensor *scales = n_in > 2 ? in[2] : NULL;
    if (n_in < 2 || n_in > 3 || !t || !idx)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Embedding takes a table, indices and optional scales");
    rt_dtype dt = t->dtype;
    if (dt != RT_DTYPE_F32 && dt != RT_DTYPE_F16 && dt != RT_DTYPE_BF16 && dt != RT_DTYPE_I8)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "Embedding: table dtype %s",
                            rt_dtype_name(dt));
    if (idx->dtype != RT_DTYPE_I32 && idx->dtype != RT_DTYPE_I64)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Embedding: indices must be I32 or I64");
    if (t->shape.rank < 1 || idx->shape.rank + t->shape.rank - 1 > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "Embedding: table rank %d, indices rank %d",
                            t->shape.rank, idx->shape.rank);
    if ((dt == RT_DTYPE_I8) != (scales != NULL) ||
        (scales && (scales->dtype != RT_DTYPE_F32 ||
                    rt_tensor_numel(scales) != t->shape.dims[0])))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "Embedding: an I8 table needs F32 scales, one per row (and only "
                            "an I8 table has them)");
    out[0].dtype = RT_DTYPE_F32;
    out[0].shape = idx->shape;
    for (int d = 1; d < t->shape.rank; d++)
        out[0].shape.dims[out[0].shape.rank++] = t->shape.dims[d];
    return RT_OK;
}
