/* test_tp_shard.c: the tensor-parallel sharding pass (parallel/tp_shard.c) and its CPU
 * execution (parallel/tp_session.c) on hand-built graphs: an MLP (MatMul/Add/Relu and
 * Gemm with transB, which the optimizer turns into Linears) and a transformer layer
 * (Attention, Linear, SkipLayerNorm, Linear + GELU, Linear, SkipLayerNorm) give the same
 * outputs at TP 2 and 4 as one unsharded session; each rank holds 1/N of every split
 * weight (byte counts computed here from the shapes); a layer costs 2 all-reduces; splits
 * that cannot be made are refused with a message. */
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

static rt_attr *attr_int(const char *name, int64_t v)
{
    rt_attr *a = calloc(1, sizeof *a);
    a->name = strdup(name);
    a->type = RT_ATTR_INT;
    a->i = v;
    return a;
}

static rt_attr *attr_string(const char *name, const char *s)
{
    rt_attr *a = calloc(1, sizeof *a);
    a->name = strdup(name);
    a->type = RT_ATTR_STRING;
    a->s = strdup(s);
    a->s_len = strlen(s);
    return a;
}

typedef enum { MLP_MATMUL, MLP_GEMM, LAYER } model_kind;

typedef struct {
    model_kind kind;
    int64_t hidden, inner, heads;
} model;

#define SEQ 5

/* Builds the model afresh with the same weights each time (one copy per rank). */
static rt_graph *build(void *arg, rt_error *err)
{
    (void)err;
    const model *m = arg;
    rng = 7;
    rt_graph *g = rt_graph_create("tp");
    int64_t dims[3] = {-1, m->kind == LAYER ? SEQ : m->hidden, m->hidden};
    rt_shape s = rt_shape_make(m->kind == LAYER ? 3 : 2,
                               m->kind == LAYER ? dims : (int64_t[]){-1, m->hidden});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &s);
    g->values[x].dim_params[0] = strdup("batch");
    rt_graph_add_input(g, x);
    int y;
    if (m->kind == MLP_MATMUL) {
        int h = node(g, RT_OP_MATMUL, (int[]){x, mat(g, m->hidden, m->inner)}, 2, NULL, 0);
        h = node(g, RT_OP_ADD, (int[]){h, vec(g, m->inner, 0.5f)}, 2, NULL, 0);
        h = node(g, RT_OP_RELU, &h, 1, NULL, 0);
        h = node(g, RT_OP_MATMUL, (int[]){h, mat(g, m->inner, m->hidden)}, 2, NULL, 0);
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
    rt_shape s = m->kind == LAYER ? rt_shape_make(3, dims)
                                  : rt_shape_make(2, (int64_t[]){3, m->hidden});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    rng = 99;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        ((float *)t->data)[i] = uniform();
    return t;
}

/* The weight bytes rank r must hold: split matrices and biases 1/N each, replicated ones
 * whole, row-parallel biases on rank 0 only. */
static size_t expected_weight_bytes(const model *m, int n, int r)
{
    int64_t h = m->hidden, i = m->inner, split, whole, rank0;
    if (m->kind == LAYER) {
        split = h * 3 * h + 3 * h + h * h + h * i + i + i * h;
        whole = 4 * h;  /* two norms' gamma and beta */
        rank0 = 2 * h;  /* output projection and fc2 biases */
    } else {
        split = h * i + i + i * h;
        whole = 0;
        rank0 = h;
    }
    return sizeof(float) * (size_t)(split / n + whole + (r == 0 ? rank0 : 0));
}

static int count_op(const rt_graph *g, rt_op op)
{
    int c = 0;
    for (int i = 0; i < g->n_nodes; i++)
        c += g->nodes[i].op == op;
    return c;
}

/* TP n against one unsharded session: outputs, weight bytes per rank, all-reduces. */
static void check_model(model m, int n, int all_reduces)
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
        assert_true(rt_shape_equal(&got->shape, &want->shape));
        float max_diff = 0, max_ref = 0;
        for (int64_t k = 0; k < rt_tensor_numel(want); k++) {
            float a = ((float *)got->data)[k], b = ((float *)want->data)[k];
            max_diff = fmaxf(max_diff, fabsf(a - b));
            max_ref = fmaxf(max_ref, fabsf(b));
        }
        assert_true(max_ref > 0.1f);
        if (max_diff > 1e-5f * max_ref)
            fail_msg("TP %d: max difference %g, max value %g", n, max_diff, max_ref);
    }
    assert_int_equal(tp_session_shard_report(tp)->all_reduces, n > 1 ? all_reduces : 0);
    for (int r = 0; r < n; r++) {
        rt_session_stats st;
        rt_session_get_stats(tp_session_rank(tp, r), &st);
        assert_int_equal(st.weight_bytes, expected_weight_bytes(&m, n, r));
        assert_int_equal(count_op(rt_session_graph(tp_session_rank(tp, r)), RT_OP_ALL_REDUCE),
                         n > 1 ? all_reduces : 0);
    }
    rt_tensor_free(in);
    rt_tensor_free(want);
    rt_tensor_free(got);
    tp_session_free(tp);
    rt_session_free(ref);
}

static void test_mlp(void **state)
{
    (void)state;
    model m = {MLP_MATMUL, 8, 16, 0};
    for (int n = 1; n <= 4; n *= 2)
        check_model(m, n, 1);
}

static void test_mlp_transposed_weights(void **state)
{
    (void)state;
    model m = {MLP_GEMM, 8, 16, 0};
    for (int n = 2; n <= 4; n *= 2)
        check_model(m, n, 1);
}

static void test_transformer_layer(void **state)
{
    (void)state;
    model m = {LAYER, 16, 32, 4};
    for (int n = 1; n <= 4; n *= 2)
        check_model(m, n, 2);
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
    expect_refused((model){LAYER, 16, 32, 4}, 3,
                   "cannot split 4 attention heads over 3 ranks: attention splits by heads, "
                   "and 4 is not divisible by 3");
    expect_refused((model){MLP_MATMUL, 8, 10, 0}, 4,
                   "its 10 output columns are not divisible by 4");
    expect_refused((model){MLP_MATMUL, 8, 16, 0}, 0, "tensor-parallel size must be at least 1");
}

/* A sharded graph run alone (no group) fails at its all-reduce instead of hanging. */
static void test_all_reduce_needs_group(void **state)
{
    (void)state;
    model m = {MLP_MATMUL, 8, 16, 0};
    rt_error err = {0};
    rt_graph *g = build(&m, &err);
    rt_session_options opts;
    rt_session_options_init(&opts);
    opts.threads = 1;
    assert_int_equal(rt_graph_check(g, &err), RT_OK);
    assert_int_equal(rt_optimize(g, RT_OPT_PASS_ALL, NULL, &(rt_optimize_report){0}, &err), RT_OK);
    tp_shard_report rep;
    assert_int_equal(tp_shard(g, 1, 2, &rep, &err), RT_OK);
    assert_int_equal(rep.mlp_pairs, 1);
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

/* A run that fails on the ranks returns their error instead of hanging in a collective. */
static void test_failed_run_returns(void **state)
{
    (void)state;
    model m = {LAYER, 16, 32, 4};
    rt_error err = {0};
    tp_session *tp = tp_session_create_with(build, &m, 2, NULL, &err);
    assert_non_null(tp);
    model wrong = {LAYER, 8, 32, 4};
    rt_tensor *in = make_input(&wrong), *out = NULL;
    assert_int_equal(tp_session_run(tp, (const rt_tensor *const *)&in, 1, &out, 1, &err),
                     RT_ERR_INVALID_ARG);
    assert_null(out);
    assert_non_null(strstr(err.text, "tensor-parallel rank 0: input 'x'"));
    rt_tensor_free(in);
    tp_session_free(tp);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_mlp),
        cmocka_unit_test(test_mlp_transposed_weights),
        cmocka_unit_test(test_transformer_layer),
        cmocka_unit_test(test_refused),
        cmocka_unit_test(test_all_reduce_needs_group),
        cmocka_unit_test(test_failed_run_returns),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
