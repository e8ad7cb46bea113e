/* test_optimize.c: the graph optimizer (rt_optimize.c and the rt_opt_*.c passes) on
 * hand-built graphs: each pattern is fused where it should be and left alone in near
 * misses (another axis, an intermediate read elsewhere, an unusual mask), and every graph
 * gives the same outputs optimized and unoptimized, on a first run and on a planned run
 * (where outputs may be written over their inputs). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"
#include "rt_session.h"

#define TOL 1e-5

/* ---- building graphs ---- */

static unsigned rng = 1;

static double uniform(void)
{
    rng = rng * 1103515245u + 12345u;
    return (double)((rng >> 8) & 0xffff) / 65535.0 * 2.0 - 1.0;
}

static int input(rt_graph *g, const char *name, rt_dtype dt, int rank, const int64_t *dims)
{
    rt_shape s = rt_shape_make(rank, dims);
    int v = rt_graph_add_value(g, name, RT_VALUE_INPUT, dt, &s);
    for (int d = 0; d < rank; d++)
        if (dims[d] < 0)
            g->values[v].dim_params[d] = strdup(d == 0 ? "batch" : "seq");
    rt_graph_add_input(g, v);
    return v;
}

/* A weight of dtype dt with the given values, or random ones in [-scale, scale]. */
static int weight(rt_graph *g, rt_dtype dt, int rank, const int64_t *dims, const double *vals,
                  double scale)
{
    char name[32];
    snprintf(name, sizeof name, "w%d", g->n_values);
    rt_shape s = rt_shape_make(rank, dims);
    int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, dt, &s);
    rt_tensor *t = rt_tensor_create(dt, &s, NULL);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        rt_dtype_store_f64(dt, t->data, (size_t)i, vals ? vals[i] : scale * uniform());
    g->values[v].data = t;
    return v;
}

static int scalar(rt_graph *g, double v)
{
    return weight(g, RT_DTYPE_F32, 0, NULL, &v, 0);
}

static int ints(rt_graph *g, int n, const double *vals)
{
    return weight(g, RT_DTYPE_I64, 1, (int64_t[]){n}, vals, 0);
}

/* Attributes for node(): a NULL-terminated list built with the rt_opt_attr_* helpers. */
typedef struct {
    rt_attr a[4];
    int n;
} attrs;

static attrs no_attrs(void)
{
    return (attrs){.n = 0};
}

static attrs attr_i(attrs l, const char *name, int64_t v)
{
    rt_opt_attr_int(&l.a[l.n++], name, v);
    return l;
}

static attrs attr_f(attrs l, const char *name, float v)
{
    rt_opt_attr_float(&l.a[l.n++], name, v);
    return l;
}

static attrs attr_is(attrs l, const char *name, int n, const int64_t *v)
{
    rt_opt_attr_ints(&l.a[l.n++], name, v, n);
    return l;
}

/* Adds a node of op with the given inputs and one new output, which it returns. */
static int node(rt_graph *g, rt_op op, int n_in, const int *in, attrs at)
{
    char name[32];
    snprintf(name, sizeof name, "v%d", g->n_values);
    int out = rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_attr *a = NULL;
    if (at.n) {
        a = calloc((size_t)at.n, sizeof *a);
        memcpy(a, at.a, sizeof *a * (size_t)at.n);
    }
    snprintf(name, sizeof name, "n%d", g->n_nodes);
    assert_true(rt_graph_add_node(g, name, op, in, n_in, &out, 1, a, at.n) >= 0);
    return out;
}

#define N1(g, op, a) node(g, RT_OP_##op, 1, (int[]){a}, no_attrs())
#define N2(g, op, a, b) node(g, RT_OP_##op, 2, (int[]){a, b}, no_attrs())

static rt_graph *new_graph(int opset)
{
    rt_graph *g = rt_graph_create("test");
    g->opset = opset;
    rng = 7;
    return g;
}

/* ---- running ---- */

typedef rt_graph *(*builder)(int variant);

static rt_tensor *random_input(rt_dtype dt, int rank, const int64_t *dims, double lo, double hi)
{
    rt_shape s = rt_shape_make(rank, dims);
    rt_tensor *t = rt_tensor_create(dt, &s, NULL);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        rt_dtype_store_f64(dt, t->data, (size_t)i, lo + (hi - lo) * (uniform() + 1) / 2);
    if (dt == RT_DTYPE_I64)
        for (int64_t i = 0; i < rt_tensor_numel(t); i++)
            ((int64_t *)t->data)[i] = llround(lo + (hi - lo) * (uniform() + 1) / 2);
    return t;
}

static rt_session *session(rt_graph *g, bool optimize)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.threads = 1;
    o.no_optimize = !optimize;
    rt_error err;
    rt_session *s = rt_session_create_from_graph(g, &o, &err);
    if (!s)
        fail_msg("session: %s", err.text);
    return s;
}

/* Runs s twice on the inputs (the second run in its planned arena) and returns the
 * outputs of the second run, after checking that both runs agree exactly. */
static void run_twice(rt_session *s, rt_tensor **in, int n_in, rt_tensor **out)
{
    int n_out = rt_session_output_count(s);
    rt_tensor *first[4];
    rt_error err;
    assert_true(n_out <= 4);
    if (rt_session_run(s, (const rt_tensor *const *)in, n_in, first, n_out, &err) != RT_OK ||
        rt_session_run(s, (const rt_tensor *const *)in, n_in, out, n_out, &err) != RT_OK)
        fail_msg("run: %s", err.text);
    for (int k = 0; k < n_out; k++) {
        assert_int_equal(rt_tensor_nbytes(first[k]), rt_tensor_nbytes(out[k]));
        assert_memory_equal(first[k]->data, out[k]->data, rt_tensor_nbytes(out[k]));
        rt_tensor_free(first[k]);
    }
}

/* Builds the graph twice, runs it optimized and as built, and checks that the outputs
 * agree: |a - b| <= TOL * max(1, |b|). Returns the optimized session (caller frees). */
static rt_session *agree(builder build, int variant, rt_tensor **in, int n_in)
{
    rt_session *opt = session(build(variant), true), *ref = session(build(variant), false);
    rt_tensor *a[4], *b[4];
    run_twice(opt, in, n_in, a);
    run_twice(ref, in, n_in, b);
    for (int k = 0; k < rt_session_output_count(opt); k++) {
        assert_true(rt_shape_equal(&a[k]->shape, &b[k]->shape));
        assert_int_equal(a[k]->dtype, b[k]->dtype);
        for (int64_t i = 0; i < rt_tensor_numel(b[k]); i++) {
            double x = rt_dtype_load_f64(a[k]->dtype, a[k]->data, (size_t)i);
            double y = rt_dtype_load_f64(b[k]->dtype, b[k]->data, (size_t)i);
            if (!(fabs(x - y) <= TOL * fmax(1.0, fabs(y))))
                fail_msg("output %d element %lld: optimized %.9g, unoptimized %.9g", k,
                         (long long)i, x, y);
        }
        rt_tensor_free(a[k]);
        rt_tensor_free(b[k]);
    }
    rt_session_free(ref);
    return opt;
}

static int count_op(const rt_session *s, rt_op op)
{
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    return st.nodes_by_op[op];
}

static int node_count(const rt_session *s)
{
    return rt_session_graph(s)->n_nodes;
}

static int rewrites(const rt_session *s, rt_opt_rewrite r)
{
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    return st.optimizer.rewrites[r];
}

static void free_all(rt_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        rt_tensor_free(t[i]);
}

/* ---- folding ---- */

/* x [batch, 6]: Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0)), [2, 3])) (variant 0) or
 * Reshape(x, Concat(Unsqueeze(Gather(Shape(x), 0) * 3), [2])) (variant 1, a target entry
 * that is not the input's dim), then Relu, an Identity, the Add of two Constants, and a
 * dead branch. */
static rt_graph *shape_chain(int variant)
{
    rt_graph *g = new_graph(14);
    int x = input(g, "x", RT_DTYPE_F32, 2, (int64_t[]){-1, 6});
    int s = N1(g, SHAPE, x);
    int b = node(g, RT_OP_GATHER, 2, (int[]){s, weight(g, RT_DTYPE_I64, 0, NULL, (double[]){0}, 0)},
                 attr_i(no_attrs(), "axis", 0));
    if (variant == 1)
        b = N2(g, MUL, b, weight(g, RT_DTYPE_I64, 0, NULL, (double[]){3}, 0));
    int u = N2(g, UNSQUEEZE, b, ints(g, 1, (double[]){0}));
    int rest = variant == 1 ? ints(g, 1, (double[]){2}) : ints(g, 2, (double[]){2, 3});
    int target = node(g, RT_OP_CONCAT, 2, (int[]){u, rest}, attr_i(no_attrs(), "axis", 0));
    int r = N1(g, RELU, N2(g, RESHAPE, x, target));
    int c = N2(g, ADD, scalar(g, 1.5), scalar(g, 2.0));
    N1(g, NEG, x); /* dead */
    rt_graph_add_output(g, N1(g, IDENTITY, N2(g, MUL, r, c)));
    return g;
}

static void test_fold_shape_chain(void **state)
{
    (void)state;
    for (int variant = 0; variant < 2; variant++)
        for (int64_t batch = 2; batch <= 5; batch += 3) {
            rt_tensor *x = random_input(RT_DTYPE_F32, 2, (int64_t[]){batch, 6}, -1, 1);
            rt_session *s = agree(shape_chain, variant, &x, 1);
            /* left: Reshape (constant target), Relu, Mul by the folded constant; the Mul
             * chain: Relu and Mul fuse into one elementwise node */
            assert_int_equal(count_op(s, RT_OP_SHAPE) + count_op(s, RT_OP_GATHER) +
                                 count_op(s, RT_OP_CONCAT) + count_op(s, RT_OP_IDENTITY) +
                                 count_op(s, RT_OP_NEG) + count_op(s, RT_OP_ADD),
                             0);
            assert_int_equal(count_op(s, RT_OP_RESHAPE), 1);
            assert_int_equal(rewrites(s, RT_OPT_RESHAPE_TARGET), 1);
            assert_int_equal(rewrites(s, RT_OPT_IDENTITY), 1);
            assert_true(rewrites(s, RT_OPT_DEAD_NODE) >= 1);
            const rt_graph *g = rt_session_graph(s);
            for (int i = 0; i < g->n_nodes; i++)
                if (g->nodes[i].op == RT_OP_RESHAPE) {
                    const rt_tensor *t = g->values[g->nodes[i].inputs[1]].data;
                    const int64_t *want = variant == 0 ? (int64_t[]){0, 2, 3} : (int64_t[]){-1, 2};
                    assert_non_null(t);
                    assert_memory_equal(t->data, want, rt_tensor_nbytes(t));
                }
            rt_session_free(s);
            rt_tensor_free(x);
        }
}

/* Dropout in inference (no training_mode) is removed; with training_mode = true it stays. */
static rt_graph *dropout_graph(int variant)
{
    rt_graph *g = new_graph(13);
    int x = input(g, "x", RT_DTYPE_F32, 2, (int64_t[]){2, 3});
    int in[3] = {x, scalar(g, 0.5), -1};
    if (variant == 1) {
        double t = 1;
        in[2] = weight(g, RT_DTYPE_BOOL, 0, NULL, &t, 0);
    }
    int d = node(g, RT_OP_DROPOUT, variant == 1 ? 3 : 2, in, attr_i(no_attrs(), "seed", 3));
    rt_graph_add_output(g, N1(g, SQRT, N1(g, ABS, d)));
    return g;
}

static void test_dropout(void **state)
{
    (void)state;
    rt_tensor *x = random_input(RT_DTYPE_F32, 2, (int64_t[]){2, 3}, -1, 1);
    rt_session *s = agree(dropout_graph, 0, &x, 1);
    assert_int_equal(count_op(s, RT_OP_DROPOUT), 0);
    assert_int_equal(rewrites(s, RT_OPT_DROPOUT), 1);
    rt_session_free(s);
    s = session(dropout_graph(1), true);
    assert_int_equal(count_op(s, RT_OP_DROPOUT), 1);
    rt_session_free(s);
    rt_tensor_free(x);
}

/* Transposes (1, 2, 0) then (2, 0, 1), which cancel out (variant 0), or then (0, 2, 1)
 * (variant 1, one Transpose (1, 0, 2) is left), then Relu. */
static rt_graph *transposes_graph(int variant)
{
    rt_graph *g = new_graph(13);
    int x = input(g, "x", RT_DTYPE_F32, 3, (int64_t[]){-1, 3, 4});
    int t = node(g, RT_OP_TRANSPOSE, 1, &x, attr_is(no_attrs(), "perm", 3, (int64_t[]){1, 2, 0}));
    const int64_t second[2][3] = {{2, 0, 1}, {0, 2, 1}};
    t = node(g, RT_OP_TRANSPOSE, 1, &t, attr_is(no_attrs(), "perm", 3, second[variant]));
    rt_graph_add_output(g, N1(g, RELU, t));
    return g;
}

static void test_transposes(void **state)
{
    (void)state;
    rt_tensor *x = random_input(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, -1, 1);
    for (int variant = 0; variant < 2; variant++) {
        rt_session *s = agree(transposes_graph, variant, &x, 1);
        assert_int_equal(rewrites(s, RT_OPT_TRANSPOSE_PAIR), 1);
        assert_int_equal(count_op(s, RT_OP_TRANSPOSE), variant);
        assert_int_equal(node_count(s), 1 + variant);
        rt_session_free(s);
    }
    rt_tensor_free(x);
}

/* ---- LayerNorm and GELU ---- */

/* The opset-14 LayerNorm decomposition over x [batch, 3, 8]: variant 0 over the last axis,
 * 1 over axis 1 (near miss), 2 with x - mean also a graph output (near miss), 3 with
 * Mul(d, d) for the square and no beta. */
static rt_graph *layernorm_graph(int variant)
{
    rt_graph *g = new_graph(14);
    int x = input(g, "x", RT_DTYPE_F32, 3, (int64_t[]){-1, 3, 8});
    int64_t axis = variant == 1 ? 1 : -1, n = variant == 1 ? 3 : 8;
    attrs ax = attr_is(no_attrs(), "axes", 1, &axis);
    int mean = node(g, RT_OP_REDUCE_MEAN, 1, &x, ax);
    int d = N2(g, SUB, x, mean);
    int sq = variant == 3 ? N2(g, MUL, d, d) : N2(g, POW, d, scalar(g, 2));
    int var = node(g, RT_OP_REDUCE_MEAN, 1, &sq, attr_is(no_attrs(), "axes", 1, &axis));
    int norm = N2(g, DIV, d, N1(g, SQRT, N2(g, ADD, var, scalar(g, 1e-5))));
    int64_t gs[2] = {n, 1}; /* over axis 1: (3, 1) against (batch, 3, 8) */
    int grank = variant == 1 ? 2 : 1;
    int y = N2(g, MUL, norm, weight(g, RT_DTYPE_F32, grank, variant == 1 ? gs : &n, NULL, 1));
    if (variant != 3)
        y = N2(g, ADD, weight(g, RT_DTYPE_F32, grank, variant == 1 ? gs : &n, NULL, 1), y);
    rt_graph_add_output(g, y);
    if (variant == 2)
        rt_graph_add_output(g, d);
    return g;
}

static void test_layernorm(void **state)
{
    (void)state;
    rt_tensor *x = random_input(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 8}, -2, 3);
    for (int variant = 0; variant < 4; variant++) {
        rt_session *s = agree(layernorm_graph, variant, &x, 1);
        bool fused = variant == 0 || variant == 3;
        assert_int_equal(count_op(s, RT_OP_LAYER_NORMALIZATION), fused);
        assert_int_equal(rewrites(s, RT_OPT_LAYER_NORM), fused);
        if (fused)
            assert_int_equal(node_count(s), 1);
        rt_session_free(s);
    }
    rt_tensor_free(x);
}

/* GELU: variant 0 erf form x * (erf(x / sqrt 2) + 1) * 0.5; 1 tanh form
 * (0.5 x)(1 + tanh(0.79788 (x + 0.044715 x^3))); 2 the erf form with 0.6 (near miss). */
static rt_graph *gelu_graph(int variant)
{
    rt_graph *g = new_graph(14);
    int x = input(g, "x", RT_DTYPE_F32, 2, (int64_t[]){-1, 16});
    int y;
    if (variant == 1) {
        int cube = N2(g, POW, x, scalar(g, 3));
        int cubic = N2(g, ADD, x, N2(g, MUL, cube, scalar(g, 0.044715)));
        int inner = N2(g, MUL, scalar(g, 0.7978845608), cubic);
        y = N2(g, MUL, N2(g, MUL, x, scalar(g, 0.5)), N2(g, ADD, N1(g, TANH, inner), scalar(g, 1)));
    } else {
        int e = N2(g, ADD, N1(g, ERF, N2(g, DIV, x, scalar(g, 1.4142135381698608))), scalar(g, 1));
        y = N2(g, MUL, N2(g, MUL, x, e), scalar(g, variant == 2 ? 0.6 : 0.5));
    }
    rt_graph_add_output(g, y);
    return g;
}

static void test_gelu(void **state)
{
    (void)state;
    rt_tensor *x = random_input(RT_DTYPE_F32, 2, (int64_t[]){3, 16}, -4, 4);
    for (int variant = 0; variant < 3; variant++) {
        rt_session *s = agree(gelu_graph, variant, &x, 1);
        assert_int_equal(count_op(s, RT_OP_GELU), variant != 2);
        assert_int_equal(rewrites(s, RT_OPT_GELU_ERF), variant == 0);
        assert_int_equal(rewrites(s, RT_OPT_GELU_TANH), variant == 1);
        if (variant == 2) /* left to the elementwise chain fusion */
            assert_int_equal(count_op(s, RT_OP_FUSED_ELEMENTWISE), 1);
        rt_session_free(s);
    }
    rt_tensor_free(x);
}

/* ---- Linear, BatchNormalization, activations ---- */

/* x [batch, 5]: variant 0 Relu(MatMul(x, W) + b); 1 Sigmoid(Gemm(x, W^T, b, transB));
 * 2 MatMul(x, W) + x2 (a non-constant addend: no bias; near miss); 3 the MatMul's output
 * also a graph output (near miss: no bias fusion, no activation). */
static rt_graph *linear_graph(int variant)
{
    rt_graph *g = new_graph(13);
    int x = input(g, "x", RT_DTYPE_F32, 2, (int64_t[]){-1, 5});
    int y;
    if (variant == 1) {
        int w = weight(g, RT_DTYPE_F32, 2, (int64_t[]){4, 5}, NULL, 1);
        int b = weight(g, RT_DTYPE_F32, 1, (int64_t[]){4}, NULL, 1);
        attrs tb = attr_i(no_attrs(), "transB", 1);
        y = N1(g, SIGMOID, node(g, RT_OP_GEMM, 3, (int[]){x, w, b}, tb));
    } else {
        int m = N2(g, MATMUL, x, weight(g, RT_DTYPE_F32, 2, (int64_t[]){5, 4}, NULL, 1));
        int other = variant == 2 ? input(g, "x2", RT_DTYPE_F32, 2, (int64_t[]){-1, 4})
                                 : weight(g, RT_DTYPE_F32, 1, (int64_t[]){4}, NULL, 1);
        y = N1(g, RELU, N2(g, ADD, other, m));
        if (variant == 3)
            rt_graph_add_output(g, m);
    }
    rt_graph_add_output(g, y);
    return g;
}

static void test_linear(void **state)
{
    (void)state;
    rt_tensor *in[2] = {random_input(RT_DTYPE_F32, 2, (int64_t[]){3, 5}, -1, 1),
                        random_input(RT_DTYPE_F32, 2, (int64_t[]){3, 4}, -1, 1)};
    for (int variant = 0; variant < 4; variant++) {
        rt_session *s = agree(linear_graph, variant, in, variant == 2 ? 2 : 1);
        assert_int_equal(count_op(s, RT_OP_LINEAR), 1);
        assert_int_equal(node_count(s), variant < 2 ? 1 : 2);
        assert_int_equal(rewrites(s, RT_OPT_LINEAR_ACTIVATION), variant < 2);
        assert_int_equal(count_op(s, RT_OP_MATMUL) + count_op(s, RT_OP_GEMM), 0);
        rt_session_free(s);
    }
    free_all(in, 2);
}

/* x [batch, 3, 6, 6]: Relu(BatchNormalization(Conv(x))); variant 1 in training mode (near
 * miss: it uses the batch's statistics). */
static rt_graph *conv_graph(int variant)
{
    rt_graph *g = new_graph(15);
    int x = input(g, "x", RT_DTYPE_F32, 4, (int64_t[]){-1, 3, 6, 6});
    int w = weight(g, RT_DTYPE_F32, 4, (int64_t[]){4, 3, 3, 3}, NULL, 0.5);
    int conv = node(g, RT_OP_CONV, 2, (int[]){x, w},
                    attr_is(no_attrs(), "pads", 4, (int64_t[]){1, 1, 1, 1}));
    int64_t c = 4;
    double var[4] = {0.5, 1.5, 2.0, 0.8};
    int scale = weight(g, RT_DTYPE_F32, 1, &c, NULL, 1);
    int bias = weight(g, RT_DTYPE_F32, 1, &c, NULL, 1);
    int mean = weight(g, RT_DTYPE_F32, 1, &c, NULL, 1);
    int bn_in[5] = {conv, scale, bias, mean, weight(g, RT_DTYPE_F32, 1, &c, var, 0)};
    attrs at = attr_f(no_attrs(), "epsilon", 1e-3f);
    if (variant == 1)
        at = attr_i(at, "training_mode", 1);
    rt_graph_add_output(g, N1(g, RELU, node(g, RT_OP_BATCH_NORMALIZATION, 5, bn_in, at)));
    return g;
}

static void test_conv_batchnorm_relu(void **state)
{
    (void)state;
    rt_tensor *x = random_input(RT_DTYPE_F32, 4, (int64_t[]){2, 3, 6, 6}, -1, 1);
    rt_session *s = agree(conv_graph, 0, &x, 1);
    assert_int_equal(node_count(s), 1);
    assert_int_equal(count_op(s, RT_OP_FUSED_CONV), 1);
    assert_int_equal(rewrites(s, RT_OPT_BATCHNORM_CONV), 1);
    rt_session_free(s);
    s = agree(conv_graph, 1, &x, 1);
    assert_int_equal(count_op(s, RT_OP_BATCH_NORMALIZATION), 1);
    assert_int_equal(rewrites(s, RT_OPT_BATCHNORM_CONV), 0);
    rt_session_free(s);
    rt_tensor_free(x);
}

/* LayerNormalization(x + y) over the last axis; variant 1 with a constant skip [4, 8]
 * repeated over the batch; variant 2 over axis 1 (near miss). */
static rt_graph *skip_graph(int variant)
{
    rt_graph *g = new_graph(17);
    int x = input(g, "x", RT_DTYPE_F32, 3, (int64_t[]){-1, 4, 8});
    int y = variant == 1 ? weight(g, RT_DTYPE_F32, 2, (int64_t[]){4, 8}, NULL, 1)
                         : input(g, "y", RT_DTYPE_F32, 3, (int64_t[]){-1, 4, 8});
    int64_t n = variant == 2 ? 32 : 8;
    int64_t gs[2] = {4, 8};
    int gamma = weight(g, RT_DTYPE_F32, variant == 2 ? 2 : 1, variant == 2 ? gs : &n, NULL, 1);
    int beta = weight(g, RT_DTYPE_F32, variant == 2 ? 2 : 1, variant == 2 ? gs : &n, NULL, 1);
    attrs at = attr_f(attr_i(no_attrs(), "axis", variant == 2 ? 1 : -1), "epsilon", 1e-6f);
    rt_graph_add_output(g, node(g, RT_OP_LAYER_NORMALIZATION, 3,
                                (int[]){N2(g, ADD, x, y), gamma, beta}, at));
    return g;
}

static void test_skip_layernorm(void **state)
{
    (void)state;
    rt_tensor *in[2] = {random_input(RT_DTYPE_F32, 3, (int64_t[]){2, 4, 8}, -1, 2),
                        random_input(RT_DTYPE_F32, 3, (int64_t[]){2, 4, 8}, -1, 1)};
    for (int variant = 0; variant < 3; variant++) {
        rt_session *s = agree(skip_graph, variant, in, variant == 1 ? 1 : 2);
        assert_int_equal(count_op(s, RT_OP_SKIP_LAYER_NORM), variant != 2);
        assert_int_equal(node_count(s), variant != 2 ? 1 : 2);
        rt_session_free(s);
    }
    free_all(in, 2);
}

/* ---- attention ---- */

enum { HEADS = 2, DH = 4, HID = HEADS * DH, SEQ = 5 };

/* Heads of a projection: Transpose(Reshape(x W + b, [0, SEQ, HEADS, DH]), perm). */
static int heads(rt_graph *g, int x, const int64_t *perm)
{
    int p = N2(g, ADD, weight(g, RT_DTYPE_F32, 1, (int64_t[]){HID}, NULL, 0.5),
               N2(g, MATMUL, x, weight(g, RT_DTYPE_F32, 2, (int64_t[]){HID, HID}, NULL, 0.5)));
    int r = N2(g, RESHAPE, p, ints(g, 4, (double[]){0, SEQ, HEADS, DH}));
    return node(g, RT_OP_TRANSPOSE, 1, &r, attr_is(no_attrs(), "perm", 4, perm));
}

/* The PyTorch multi-head attention over x [batch, SEQ, HID] with an additive mask
 * [batch, 1, 1, SEQ]; variant 1 with a mask per head [1, HEADS, SEQ, SEQ] (near miss);
 * variant 2 with the scores also a graph output (near miss); variant 3 without a mask;
 * variant 4 with a mask per query [batch, 1, SEQ, SEQ]; variant 5 with one [SEQ, SEQ];
 * variant 6 with the keys transposed by two Transposes, as in k.transpose(1, 2) followed
 * by k.transpose(-1, -2). */
static rt_graph *attention_graph(int variant)
{
    static const int64_t hp[4] = {0, 2, 1, 3}, kp[4] = {0, 2, 3, 1};
    rt_graph *g = new_graph(14);
    int x = input(g, "x", RT_DTYPE_F32, 3, (int64_t[]){-1, SEQ, HID});
    int mask = -1;
    if (variant == 1)
        mask = input(g, "mask", RT_DTYPE_F32, 4, (int64_t[]){1, HEADS, SEQ, SEQ});
    else if (variant == 4)
        mask = input(g, "mask", RT_DTYPE_F32, 4, (int64_t[]){-1, 1, SEQ, SEQ});
    else if (variant == 5)
        mask = input(g, "mask", RT_DTYPE_F32, 2, (int64_t[]){SEQ, SEQ});
    else if (variant != 3)
        mask = input(g, "mask", RT_DTYPE_F32, 4, (int64_t[]){-1, 1, 1, SEQ});
    int q = heads(g, x, hp), k = heads(g, x, variant == 6 ? hp : kp), v = heads(g, x, hp);
    if (variant == 6)
        k = node(g, RT_OP_TRANSPOSE, 1, &k,
                 attr_is(no_attrs(), "perm", 4, (int64_t[]){0, 1, 3, 2}));
    int scores = N2(g, MATMUL, q, k);
    int scaled = N2(g, DIV, scores, scalar(g, 2.0));
    if (mask >= 0)
        scaled = N2(g, ADD, scaled, mask);
    int p = node(g, RT_OP_SOFTMAX, 1, &scaled, attr_i(no_attrs(), "axis", -1));
    int c = node(g, RT_OP_TRANSPOSE, 1, (int[]){N2(g, MATMUL, p, v)},
                 attr_is(no_attrs(), "perm", 4, hp));
    rt_graph_add_output(g, N2(g, RESHAPE, c, ints(g, 3, (double[]){0, SEQ, HID})));
    if (variant == 2)
        rt_graph_add_output(g, scores);
    return g;
}

static void test_attention(void **state)
{
    (void)state;
    const int64_t masks[7][4] = {{3, 1, 1, SEQ}, {1, HEADS, SEQ, SEQ}, {3, 1, 1, SEQ},
                                 {3, 1, 1, SEQ}, {3, 1, SEQ, SEQ}, {SEQ, SEQ}, {3, 1, 1, SEQ}};
    for (int variant = 0; variant < 7; variant++) {
        int64_t batch = 3;
        rt_tensor *in[2] = {random_input(RT_DTYPE_F32, 3, (int64_t[]){batch, SEQ, HID}, -1, 1),
                            random_input(RT_DTYPE_F32, variant == 5 ? 2 : 4, masks[variant],
                                         -3, 0)};
        if (variant == 0) /* padding: the last key of batch 1 masked out */
            ((float *)in[1]->data)[SEQ + SEQ - 1] = -10000.0f;
        rt_session *s = agree(attention_graph, variant, in, variant == 3 ? 1 : 2);
        bool fused = variant != 1 && variant != 2;
        assert_int_equal(count_op(s, RT_OP_ATTENTION), fused);
        if (fused)
            assert_int_equal(node_count(s), 1);
        else
            assert_int_equal(count_op(s, RT_OP_SOFTMAX), 1);
        rt_session_free(s);
        free_all(in, 2);
    }
}

/* ---- elementwise chains ---- */

/* Sigmoid((Tanh((1 - Cast(m)) * -0.25) + bias) / column): one node, with operands
 * broadcast along either dim; variant 1 also outputs the Mul's result, which ends the
 * first chain there (near miss for one chain). */
static rt_graph *chain_graph(int variant)
{
    rt_graph *g = new_graph(13);
    int m = input(g, "m", RT_DTYPE_I64, 2, (int64_t[]){-1, 6});
    int c = node(g, RT_OP_CAST, 1, &m, attr_i(no_attrs(), "to", RT_DTYPE_F32));
    int y = N2(g, MUL, N2(g, SUB, scalar(g, 1.0), c), scalar(g, -0.25));
    int z = N2(g, ADD, N1(g, TANH, y), input(g, "bias", RT_DTYPE_F32, 1, (int64_t[]){6}));
    z = N2(g, DIV, z, input(g, "column", RT_DTYPE_F32, 2, (int64_t[]){-1, 1}));
    rt_graph_add_output(g, N1(g, SIGMOID, z));
    if (variant == 1)
        rt_graph_add_output(g, y);
    return g;
}

static void test_elementwise_chain(void **state)
{
    (void)state;
    rt_tensor *in[3] = {random_input(RT_DTYPE_I64, 2, (int64_t[]){4, 6}, -3, 3),
                        random_input(RT_DTYPE_F32, 1, (int64_t[]){6}, -1, 1),
                        random_input(RT_DTYPE_F32, 2, (int64_t[]){4, 1}, 0.5, 2)};
    rt_session *s = agree(chain_graph, 0, in, 3);
    assert_int_equal(node_count(s), 1);
    assert_int_equal(count_op(s, RT_OP_FUSED_ELEMENTWISE), 1);
    rt_session_free(s);
    s = agree(chain_graph, 1, in, 3);
    assert_int_equal(node_count(s), 2);
    assert_int_equal(count_op(s, RT_OP_FUSED_ELEMENTWISE), 2);
    rt_session_free(s);
    free_all(in, 3);
}

/* ---- switches ---- */

static void test_fused_ops_are_internal(void **state)
{
    (void)state;
    assert_int_equal(rt_op_from_name("infd.Linear"), RT_OP_COUNT);
    assert_int_equal(rt_op_from_name("infd.Attention"), RT_OP_COUNT);
    assert_int_equal(rt_op_from_name("LayerNormalization"), RT_OP_LAYER_NORMALIZATION);
}

static void test_no_optimize_keeps_graph(void **state)
{
    (void)state;
    rt_session *s = session(attention_graph(0), false);
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    assert_int_equal(st.optimizer.nodes_before, st.optimizer.nodes_after);
    assert_int_equal(st.n_nodes, st.optimizer.nodes_before);
    for (int r = 0; r < RT_OPT_COUNT; r++)
        assert_int_equal(st.optimizer.rewrites[r], 0);
    rt_session_free(s);
    s = session(attention_graph(0), true);
    rt_session_get_stats(s, &st);
    assert_int_equal(st.optimizer.nodes_before, 19);
    assert_int_equal(st.optimizer.nodes_after, 1);
    rt_session_free(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fold_shape_chain),
        cmocka_unit_test(test_dropout),
        cmocka_unit_test(test_transposes),
        cmocka_unit_test(test_layernorm),
        cmocka_unit_test(test_gelu),
        cmocka_unit_test(test_linear),
        cmocka_unit_test(test_conv_batchnorm_relu),
        cmocka_unit_test(test_skip_layernorm),
        cmocka_unit_test(test_attention),
        cmocka_unit_test(test_elementwise_chain),
        cmocka_unit_test(test_fused_ops_are_internal),
        cmocka_unit_test(test_no_optimize_keeps_graph),
    };
    return cmocka_run_group_tests_name("optimize", tests, NULL, NULL);
}
