/* test_tp_shard.c: the tensor-parallel sharding pass (parallel/tp_shard.c) and its CPU
 * execution (parallel/tp_session.c) on hand-built graphs: an MLP (MatMul/Add/Relu and
 * Gemm with transB, which the optimizer turns into Linears), a transformer layer
 * (Attention, Linear, SkipLayerNorm, Linear + GELU, Linear, SkipLayerNorm) and a
 * grouped-query decoder (token embedding, RMSNorm from ONNX ops, GQA attention with a
 * causal mask, SwiGLU MLP from MatMul/Sigmoid/Mul, output layer over the vocabulary) give
 * the same outputs at TP 2 and 4 as one unsharded session; each rank holds 1/N of every
 * split weight (byte counts computed here from the shapes); a layer costs 2 all-reduces;
 * splits that cannot be made are refused with a message; a failed run does not break the
 * session. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_fused.h"
#include "rt_session.h"
#include "tp_session.h"

static unsigned rng;

static float uniform(void)
{
    rng = rng * 1103515245u + 12345u;
    return (float)((rng >> 8) & 0xffff) / 65535.0f * 2.0f - 1.0f;
}

static int weight(rt_graph *g, int rank, const int64_t *dims, float scale)
{
    char name[32];
    snprintf(name, sizeof name, "w%d", g->n_values);
    rt_shape s = rt_shape_make(rank, dims);
    int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &s);
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        d[i] = scale * uniform();
    g->values[v].data = t;
    return v;
}

static int vec(rt_graph *g, int64_t n, float scale) { return weight(g, 1, &n, scale); }

static int mat(rt_graph *g, int64_t rows, int64_t cols)
{
    int64_t dims[2] = {rows, cols};
    return weight(g, 2, dims, 1.0f / sqrtf((float)rows));
}

/* A scalar weight holding v. */
static int scalar(rt_graph *g, float v)
{
    int w = weight(g, 0, NULL, 0.0f);
    *(float *)g->values[w].data->data = v;
    return w;
}

/* Appends a node with the given attributes (taken over) and returns its new output. */
static int node(rt_graph *g, rt_op op, const int *in, int n_in, rt_attr *attrs, int n_attrs)
{
    char name[32];
    snprintf(name, sizeof name, "v%d", g->n_values);
    int out = rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    snprintf(name, sizeof name, "n%d", g->n_nodes);
    assert_true(rt_graph_add_node(g, name, op, in, n_in, &out, 1, attrs, n_attrs) >= 0);
    return out;
}

/* n INT attributes in one array, as nodes take them. */
static rt_attr *attr_ints(int n, const char *const *names, const int64_t *values)
{
    rt_attr *a = calloc((size_t)n, sizeof *a);
    for (int k = 0; k < n; k++)
        a[k] = (rt_attr){.name = strdup(names[k]), .type = RT_ATTR_INT, .i = values[k]};
    return a;
}

static rt_attr *attr_int(const char *name, int64_t v) { return attr_ints(1, &name, &v); }

static rt_attr *attr_string(const char *name, const char *s)
{
    rt_attr *a = calloc(1, sizeof *a);
    a->name = strdup(name);
    a->type = RT_ATTR_STRING;
    a->s = strdup(s);
    a->s_len = strlen(s);
    return a;
}

typedef enum { MLP_MATMUL, MLP_GEMM, LAYER, DECODER } model_kind;

typedef struct {
    model_kind kind;
    int64_t hidden, inner, heads;
    int64_t kv_heads, vocab, layers; /* DECODER */
} model;

#define SEQ 5

static int matmul(rt_graph *g, int x, int64_t rows, int64_t cols)
{
    return node(g, RT_OP_MATMUL, (int[]){x, mat(g, rows, cols)}, 2, NULL, 0);
}

/* x / sqrt(mean(x^2) + eps) * gamma over the last dim, as exporters write RMSNorm. */
static int rms_norm(rt_graph *g, int x, int64_t h)
{
    int sq = node(g, RT_OP_MUL, (int[]){x, x}, 2, NULL, 0);
    static const int64_t last[] = {-1};
    rt_attr *axes = calloc(1, sizeof *axes);
    *axes = (rt_attr){.name = strdup("axes"), .type = RT_ATTR_INTS, .n = 1,
                      .ints = malloc(sizeof last)};
    memcpy(axes->ints, last, sizeof last);
    int mean = node(g, RT_OP_REDUCE_MEAN, &sq, 1, axes, 1);
    int var = node(g, RT_OP_ADD, (int[]){mean, scalar(g, 1e-5f)}, 2, NULL, 0);
    int root = node(g, RT_OP_SQRT, &var, 1, NULL, 0);
    int y = node(g, RT_OP_DIV, (int[]){x, root}, 2, NULL, 0);
    return node(g, RT_OP_MUL, (int[]){y, vec(g, h, 1.0f)}, 2, NULL, 0);
}

/* One decoder layer on the residual stream x: GQA attention (QKV bias, causal mask) and a
 * SwiGLU MLP, each after an RMSNorm and added back. */
static int decoder_layer(rt_graph *g, const model *m, int x, int mask)
{
    int64_t h = m->hidden, d = h / m->heads, qkv = (m->heads + 2 * m->kv_heads) * d;
    static const char *const names[] = {"num_heads", "num_kv_heads"};
    int a = node(g, RT_OP_ATTENTION, (int[]){rms_norm(g, x, h), mat(g, h, qkv), vec(g, qkv, 0.5f),
                                              mask}, 4,
                 attr_ints(2, names, (int64_t[]){m->heads, m->kv_heads}), 2);
    x = node(g, RT_OP_ADD, (int[]){x, matmul(g, a, h, h)}, 2, NULL, 0);
    int n = rms_norm(g, x, h);
    int gate = matmul(g, n, h, m->inner), up = matmul(g, n, h, m->inner);
    int silu = node(g, RT_OP_MUL, (int[]){gate, node(g, RT_OP_SIGMOID, &gate, 1, NULL, 0)}, 2,
                    NULL, 0);
    int prod = node(g, RT_OP_MUL, (int[]){silu, up}, 2, NULL, 0);
    return node(g, RT_OP_ADD, (int[]){x, matmul(g, prod, m->inner, h)}, 2, NULL, 0);
}

/* ids (batch, SEQ) -> logits (batch, SEQ, vocab). */
static int build_decoder(rt_graph *g, const model *m, int ids)
{
    int64_t table[2] = {m->vocab, m->hidden}, mask_dims[4] = {1, 1, SEQ, SEQ};
    int x = node(g, RT_OP_GATHER, (int[]){weight(g, 2, table, 1.0f), ids}, 2, NULL, 0);
    int mask = weight(g, 4, mask_dims, 0.0f);
    for (int i = 0; i < SEQ; i++)
        for (int j = i + 1; j < SEQ; j++)
            ((float *)g->values[mask].data->data)[i * SEQ + j] = -1e9f;
    for (int l = 0; l < m->layers; l++)
        x = decoder_layer(g, m, x, mask);
    return matmul(g, rms_norm(g, x, m->hidden), m->hidden, m->vocab);
}

/* Builds the model afresh with the same weights each time (one copy per rank). */
static rt_graph *build(void *arg, rt_error *err)
{
    (void)err;
    const model *m = arg;
    rng = 7;
    rt_graph *g = rt_graph_create("tp");
    g->opset = 13;
    int64_t dims[3] = {-1, m->kind == LAYER ? SEQ : m->hidden, m->hidden};
    rt_shape s = m->kind == DECODER ? rt_shape_make(2, (int64_t[]){-1, SEQ})
                 : rt_shape_make(m->kind == LAYER ? 3 : 2,
                                 m->kind == LAYER ? dims : (int64_t[]){-1, m->hidden});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT,
                               m->kind == DECODER ? RT_DTYPE_I64 : RT_DTYPE_F32, &s);
    g->values[x].dim_params[0] = strdup("batch");
    rt_graph_add_input(g, x);
    int y;
    if (m->kind == DECODER) {
        y = build_decoder(g, m, x);
    } else if (m->kind == MLP_MATMUL) {
        int h = matmul(g, x, m->hidden, m->inner);
        h = node(g, RT_OP_ADD, (int[]){h, vec(g, m->inner, 0.5f)}, 2, NULL, 0);
        h = node(g, RT_OP_RELU, &h, 1, NULL, 0);
        h = matmul(g, h, m->inner, m->hidden);
        y = node(g, RT_OP_ADD, (int[]){h, vec(g, m->hidden, 0.5f)}, 2, NULL, 0);
    } else if (m->kind == MLP_GEMM) {
        int w1 = mat(g, m->inner, m->hidden), b1 = vec(g, m->inner, 0.5f);
        int h = node(g, RT_OP_GEMM, (int[]){x, w1, b1}, 3, attr_int("transB", 1), 1);
        h = node(g, RT_OP_RELU, &h, 1, NULL, 0);
        int w2 = mat(g, m->hidden, m->inner), b2 = vec(g, m->hidden, 0.5f);
        y = node(g, RT_OP_GEMM, (int[]){h, w2, b2}, 3, attr_int("transB", 1), 1);
    } else {
        int a = node(g, RT_OP_ATTENTION,
                     (int[]){x, mat(g, m->hidden, 3 * m->hidden), vec(g, 3 * m->hidden, 0.5f)}, 3,
                     attr_int("num_heads", m->heads), 1);
        int o = node(g, RT_OP_LINEAR, (int[]){a, mat(g, m->hidden, m->hidden),
                                              vec(g, m->hidden, 0.5f)}, 3, NULL, 0);
        int n1 = node(g, RT_OP_SKIP_LAYER_NORM,
                      (int[]){o, x, vec(g, m->hidden, 1.0f), vec(g, m->hidden, 0.5f)}, 4, NULL, 0);
        int f = node(g, RT_OP_LINEAR, (int[]){n1, mat(g, m->hidden, m->inner),
                                              vec(g, m->inner, 0.5f)}, 3,
                     attr_string("activation", rt_act_name(RT_ACT_GELU)), 1);
        f = node(g, RT_OP_LINEAR, (int[]){f, mat(g, m->inner, m->hidden), vec(g, m->hidden, 0.5f)},
                 3, NULL, 0);
        y = node(g, RT_OP_SKIP_LAYER_NORM,
                 (int[]){f, n1, vec(g, m->hidden, 1.0f), vec(g, m->hidden, 0.5f)}, 4, NULL, 0);
    }
    g->values[y].is_output = true;
    rt_graph_add_output(g, y);
    return g;
}

static rt_tensor *make_input(const model *m)
{
    int64_t dims[3] = {3, SEQ, m->hidden};
    rt_shape s = m->kind == LAYER     ? rt_shape_make(3, dims)
                 : m->kind == DECODER ? rt_shape_make(2, dims)
                                      : rt_shape_make(2, (int64_t[]){3, m->hidden});
    rt_tensor *t = rt_tensor_create(m->kind == DECODER ? RT_DTYPE_I64 : RT_DTYPE_F32, &s, NULL);
    rng = 99;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++) {
        if (m->kind == DECODER) /* every id, negative ones (from the end) included */
            ((int64_t *)t->data)[i] = (int64_t)((uniform() + 1.0f) / 2.0f * (float)(m->vocab - 1)) -
                                      (i % 7 == 0 ? m->vocab : 0);
        else
            ((float *)t->data)[i] = uniform();
    }
    return t;
}

/* Elements rank r of n holds of the split weights, and of the same weights unsplit;
 * row-parallel biases count as split (rank 0 holds them whole). */
typedef struct {
    int64_t mine, whole;
} split_count;

static split_count split_elements(const model *m, int n, int r)
{
    int64_t h = m->hidden, i = m->inner;
    split_count c;
    if (m->kind == DECODER) {
        int64_t d = h / m->heads, qkv = (m->heads + 2 * m->kv_heads) * d;
        int64_t kv_rank = m->kv_heads >= n ? m->kv_heads / n : 1; /* replicated below n */
        int64_t qkv_rank = (m->heads / n + 2 * kv_rank) * d;
        /* ceil(vocab / n) per rank: fewer embedding rows on the last ranks, output columns
         * padded; a vocabulary smaller than n stays whole */
        int64_t per = (m->vocab + n - 1) / n, rows = m->vocab - r * per;
        rows = rows < 0 ? 0 : rows > per ? per : rows;
        c.whole = m->layers * (h * qkv + qkv + h * h + 3 * h * i) + 2 * m->vocab * h;
        c.mine = m->layers * (h * qkv_rank + qkv_rank + (h * h + 3 * h * i) / n) +
                 (m->vocab < n ? 2 * m->vocab : rows + per) * h;
    } else if (m->kind == LAYER) {
        c.whole = h * 3 * h + 3 * h + h * h + h * i + i + i * h + 2 * h;
        c.mine = (c.whole - 2 * h) / n + (r == 0 ? 2 * h : 0);
    } else {
        c.whole = h * i + i + i * h + h;
        c.mine = (c.whole - h) / n + (r == 0 ? h : 0);
    }
    return c;
}

static int count_op(const rt_graph *g, rt_op op)
{
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++)
        c += g->nodes[i].op == op;
    return c;
}

static void expect_close(const rt_tensor *got, const rt_tensor *want, int n)
{
    assert_true(rt_shape_equal(&got->shape, &want->shape));
    float max_diff = 0, max_ref = 0;
    for (int64_t k = 0; k < rt_tensor_numel(want); k++) {
        float a = ((float *)got->data)[k], b = ((float *)want->data)[k];
        max_diff = fmaxf(max_diff, fabsf(a - b));
        max_ref = fmaxf(max_ref, fabsf(b));
    }
    assert_true(max_ref > 0.1f);
    if (!(max_diff <= 1e-5f * max_ref))
        fail_msg("TP %d: max difference %g, max value %g", n, max_diff, max_ref);
}

/* TP n against one unsharded session: outputs, weight bytes per rank, collectives. */
static void check_model(model m, int n, int all_reduces, int all_gathers)
{
    rt_error err = {0};
    rt_session_options opts;
    rt_session_options_init(&opts);
    opts.threads = 1;
    rt_session *ref = rt_session_create_from_graph(build(&m, &err), &opts, &err);
    assert_non_null(ref);
    tp_session *tp = tp_session_create_with(build, &m, n, &opts, &err);
    if (!tp)
        fail_msg("%s", err.text);
    assert_int_equal(tp_session_size(tp), n);
    rt_tensor *in = make_input(&m), *want = NULL, *got = NULL;
    assert_int_equal(rt_session_run(ref, (const rt_tensor *const *)&in, 1, &want, 1, &err), RT_OK);
    for (int rep = 0; rep < 2; rep++) { /* a first run, then a planned one */
        rt_tensor_free(got);
        got = NULL;
        if (tp_session_run(tp, (const rt_tensor *const *)&in, 1, &got, 1, &err) != RT_OK)
            fail_msg("%s", err.text);
        expect_close(got, want, n);
    }
    const tp_shard_report *rep = tp_session_shard_report(tp);
    assert_int_equal(rep->all_reduces, n > 1 ? all_reduces : 0);
    assert_int_equal(rep->all_gathers, n > 1 ? all_gathers : 0);
    rt_session_stats ref_stats;
    rt_session_get_stats(ref, &ref_stats);
    for (int r = 0; r < n; r++) {
        rt_session_stats st;
        rt_session_get_stats(tp_session_rank(tp, r), &st);
        split_count c = split_elements(&m, n, r);
        size_t want_bytes = ref_stats.weight_bytes - sizeof(float) * (size_t)(c.whole - c.mine);
        if (st.weight_bytes != want_bytes)
            fail_msg("TP %d rank %d: %zu weight bytes, expected %zu", n, r, st.weight_bytes,
                     want_bytes);
        const rt_graph *g = rt_session_graph(tp_session_rank(tp, r));
        assert_int_equal(count_op(g, RT_OP_ALL_REDUCE), n > 1 ? all_reduces : 0);
        assert_int_equal(count_op(g, RT_OP_ALL_GATHER), n > 1 ? all_gathers : 0);
    }
    rt_tensor_free(in);
    rt_tensor_free(want);
    rt_tensor_free(got);
    tp_session_free(tp);
    rt_session_free(ref);
}

/* TP 1, 2 and 4. */
static void check_sizes(model m, int all_reduces, int all_gathers)
{
    for (int n = 1; n <= 4; n *= 2)
        check_model(m, n, all_reduces, all_gathers);
}

static void test_mlp(void **state)
{
    (void)state;
    check_sizes((model){MLP_MATMUL, 8, 16, 0, 0, 0, 0}, 1, 0);
    check_sizes((model){MLP_GEMM, 8, 16, 0, 0, 0, 0}, 1, 0); /* transposed weights */
}

static void test_transformer_layer(void **state)
{
    (void)state;
    check_sizes((model){LAYER, 16, 32, 4, 0, 0, 0}, 2, 0);
}

/* 2 layers: 1 all-reduce for the embedding, 2 per layer; 1 all-gather for the logits. At
 * TP 4 the 2 KV heads are replicated (each serves 2 ranks). */
static void test_gqa_decoder(void **state)
{
    (void)state;
    model m = {DECODER, 16, 24, 4, 2, 64, 2};
    check_sizes(m, 5, 1);
    tp_session *tp = tp_session_create_with(build, &m, 4, NULL, &(rt_error){0});
    const tp_shard_report *rep = tp_session_shard_report(tp);
    assert_int_equal(rep->attentions, 2);
    assert_int_equal(rep->mlps, 2);
    assert_int_equal(rep->embeddings, 1);
    assert_int_equal(rep->lm_heads, 1);
    assert_int_equal(rep->vocab_replicated, 0);
    tp_session_free(tp);
}

/* Multi-query attention (1 KV head, on every rank) and a vocabulary of 66 over 4 ranks:
 * 17 entries each, the last rank's embedding rows 15 and its output columns padded; a
 * vocabulary of 3 over 4 ranks stays whole on every rank. */
static void test_decoder_uneven_vocab(void **state)
{
    (void)state;
    model m = {DECODER, 16, 24, 4, 1, 66, 1};
    check_model(m, 2, 3, 1);
    check_model(m, 4, 3, 1);
    m.vocab = 3;
    check_model(m, 4, 2, 0);
    tp_session *tp = tp_session_create_with(build, &m, 4, NULL, &(rt_error){0});
    assert_int_equal(tp_session_shard_report(tp)->vocab_replicated, 2);
    assert_int_equal(tp_session_shard_report(tp)->embeddings, 0);
    tp_session_free(tp);
}

static void expect_refused(model m, int n, const char *msg)
{
    rt_error err = {0};
    tp_session *tp = tp_session_create_with(build, &m, n, NULL, &err);
    assert_null(tp);
    if (!strstr(err.text, msg))
        fail_msg("message '%s' lacks '%s'", err.text, msg);
}

static void test_refused(void **state)
{
    (void)state;
    expect_refused((model){LAYER, 16, 32, 4, 0, 0, 0}, 3,
                   "cannot split 4 attention heads over 3 ranks: attention splits by heads, "
                   "and 4 is not divisible by 3");
    expect_refused((model){MLP_MATMUL, 8, 10, 0, 0, 0, 0}, 4,
                   "its 10 output columns are not divisible by 4");
    expect_refused((model){MLP_MATMUL, 8, 16, 0, 0, 0, 0}, 0,
                   "tensor-parallel size must be at least 1");
    expect_refused((model){DECODER, 24, 24, 6, 3, 64, 1}, 2,
                   "(infd.Attention): cannot split 3 KV heads over 2 ranks: the KV heads must "
                   "be divisible by 2, or 2 a multiple of them");
    expect_refused((model){DECODER, 16, 24, 4, 2, 64, 1}, 8,
                   "cannot split 4 attention heads over 8 ranks");
}

/* A sharded graph run alone (no group) fails at its all-reduce instead of hanging. */
static void test_all_reduce_needs_group(void **state)
{
    (void)state;
    model m = {MLP_MATMUL, 8, 16, 0, 0, 0, 0};
    rt_error err = {0};
    rt_graph *g = build(&m, &err);
    rt_session_options opts;
    rt_session_options_init(&opts);
    opts.threads = 1;
    assert_int_equal(rt_graph_check(g, &err), RT_OK);
    assert_int_equal(rt_optimize(g, RT_OPT_PASS_ALL, NULL, &(rt_optimize_report){0}, &err), RT_OK);
    tp_shard_report rep;
    assert_int_equal(tp_shard(g, 1, 2, &rep, &err), RT_OK);
    assert_int_equal(rep.mlps, 1);
    assert_int_equal(rep.all_reduces, 1);
    opts.no_optimize = true;
    rt_session *s = rt_session_create_from_graph(g, &opts, &err);
    assert_non_null(s);
    rt_tensor *in = make_input(&m), *out = NULL;
    assert_int_equal(rt_session_run(s, (const rt_tensor *const *)&in, 1, &out, 1, &err),
                     RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.text, "runs only in a tensor-parallel session"));
    rt_tensor_free(in);
    rt_session_free(s);
    g = build(&m, &err);
    assert_int_equal(tp_shard(g, 2, 2, NULL, &err), RT_ERR_INVALID_ARG);
    rt_graph_free(g);
}

/* Inputs the model refuses are refused before the ranks start; a run that fails on the
 * ranks (an id out of range) returns their error instead of hanging, and the session
 * replaces its aborted group, so the next run gives the right answer. */
static void test_failed_run_recovers(void **state)
{
    (void)state;
    model m = {DECODER, 16, 24, 4, 2, 64, 1};
    rt_error err = {0};
    tp_session *tp = tp_session_create_with(build, &m, 2, NULL, &err);
    assert_non_null(tp);
    rt_session *ref = rt_session_create_from_graph(build(&m, &err), NULL, &err);
    model floats = {LAYER, 16, 32, 4, 0, 0, 0};
    rt_tensor *bad = make_input(&floats), *good = make_input(&m), *out = NULL, *want = NULL;
    assert_int_equal(tp_session_run(tp, (const rt_tensor *const *)&bad, 1, &out, 1, &err),
                     RT_ERR_INVALID_ARG);
    assert_null(out);
    assert_string_equal(err.text, "input 'x' has dtype F32, the model expects I64");
    ((int64_t *)good->data)[4] = m.vocab;
    assert_int_equal(tp_session_run(tp, (const rt_tensor *const *)&good, 1, &out, 1, &err),
                     RT_ERR_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(err.text, "index 64 is out of range for dim 64"));
    ((int64_t *)good->data)[4] = 3;
    for (int rep = 0; rep < 2; rep++) {
        assert_int_equal(tp_session_run(tp, (const rt_tensor *const *)&good, 1, &out, 1, &err),
                         RT_OK);
        assert_int_equal(rt_session_run(ref, (const rt_tensor *const *)&good, 1, &want, 1, &err),
                         RT_OK);
        expect_close(out, want, 2);
        rt_tensor_free(out);
        rt_tensor_free(want);
    }
    rt_tensor_free(bad);
    rt_tensor_free(good);
    rt_session_free(ref);
    tp_session_free(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_transformer_layer),
        cmocka_unit_test(test_gqa_decoder),
        cmocka_unit_test(test_decoder_uneven_vocab),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_all_reduce_needs_group),
        cmocka_unit_test(test_failed_run_recovers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
