/* test_compress_prune.c: pruning (rt_compress_prune.c) and infd.SparseLinear
 * (rt_op_sparse.c, rt_cpu_sparse.c): the sparsity each weight reaches and which weights
 * are zeroed, the 2:4 pattern in every group along the reduction dim, the sparse columns
 * built from a dense weight, the sparse kernel against a double-precision product for
 * every row blocking, the op against Linear, and the pass on sessions: which kernel each
 * node gets, the weight bytes reported, and how far the outputs move. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "op_test.h"
#include "rt_compress.h"
#include "rt_session.h"
#include "rt_sparse.h"

static rt_attr *heap_attrs(int n)
{
    rt_attr *a = calloc((size_t)n, sizeof *a);
    assert_non_null(a);
    return a;
}

static rt_attr heap_int(const char *name, int64_t v)
{
    rt_attr a = {.name = strdup(name), .type = RT_ATTR_INT, .i = v};
    assert_non_null(a.name);
    return a;
}

static int weight_value(rt_graph *g, const char *name, rt_tensor *t)
{
    int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &t->shape);
    assert_true(v >= 0);
    g->values[v].data = t;
    return v;
}

/* x (4, k) -> Linear "lin" (W (k, n), or (n, k) with trans_b, and a bias) -> y. */
static rt_graph *linear_graph(int64_t k, int64_t n, bool trans_b, uint32_t seed)
{
    rt_graph *g = rt_graph_create("linear");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){4, k});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    rt_graph_add_input(g, x);
    int64_t dims[2] = {trans_b ? n : k, trans_b ? k : n};
    int w = weight_value(g, "w", make_random(RT_DTYPE_F32, 2, dims, seed));
    int b = weight_value(g, "b", make_random(RT_DTYPE_F32, 1, (int64_t[]){n}, seed + 1));
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, NULL);
    rt_attr *attrs = heap_attrs(1);
    attrs[0] = heap_int("trans_b", trans_b);
    rt_graph_add_node(g, "lin", RT_OP_LINEAR, (int[]){x, w, b}, 3, &y, 1, attrs, 1);
    rt_graph_add_output(g, y);
    return g;
}

static const rt_tensor *value_data(const rt_graph *g, int v)
{
    return g->values[v].data;
}

/* W as a dense (k x n) array from the node's weight: Linear's W (either layout) or
 * SparseLinear's columns. */
static float *dense_of(const rt_graph *g, const rt_node *node, int64_t k, int64_t n)
{
    float *d = calloc((size_t)(k * n), sizeof *d);
    assert_non_null(d);
    if (node->op == RT_OP_SPARSE_LINEAR) {
        const float *val = value_data(g, node->inputs[1])->data;
        const uint16_t *row = value_data(g, node->inputs[2])->data;
        const int32_t *start = value_data(g, node->inputs[3])->data;
        assert_int_equal(rt_node_attr_int(node, "k", -1), k);
        assert_int_equal(rt_tensor_numel(value_data(g, node->inputs[3])), n + 1);
        for (int64_t j = 0; j < n; j++)
            for (int32_t p = start[j]; p < start[j + 1]; p++) {
                assert_true(p == start[j] || row[p] > row[p - 1]); /* increasing rows */
                assert_true(val[p] != 0);
                d[row[p] * n + j] = val[p];
            }
        return d;
    }
    assert_int_equal(node->op, RT_OP_LINEAR);
    const float *w = value_data(g, node->inputs[1])->data;
    bool tb = rt_node_attr_int(node, "trans_b", 0) != 0;
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++)
            d[p * n + j] = tb ? w[j * k + p] : w[p * n + j];
    return d;
}

/* ---- magnitude pruning ---- */

/* Each weight gets exactly round(s size) zeros, and they are its smallest: every zeroed
 * |w| is at most every kept one, the kept ones unchanged. From 80% zeros a Linear of at
 * least 65536 weights becomes SparseLinear with the same values (its bytes reported),
 * below it stays Linear, and so does a smaller one at 90%; both layouts of W. */
static void test_magnitude(void **state)
{
    (void)state;
    const float targets[] = {0.3f, 0.5f, 0.7f, 0.8f, 0.9f};
    const bool sparse_from[] = {false, false, false, true, true}; /* RT_SPARSE_MIN_SPARSITY 0.8 */
    for (int tb = 0; tb < 2; tb++)
        for (size_t t = 0; t < sizeof targets / sizeof *targets; t++) {
            enum { K = 259, N = 254 }; /* 65786 weights */
            rt_graph *g = linear_graph(K, N, tb, 3 + (uint32_t)t);
            float *orig = dense_of(g, &g->nodes[0], K, N);
            rt_compress_report rep = {0};
            rt_error err;
            assert_int_equal(rt_compress_prune(g, RT_PRUNE_MAGNITUDE, targets[t], &rep, &err),
                             RT_OK);
            const rt_node *node = &g->nodes[0];
            bool sparse = sparse_from[t];
            assert_int_equal(node->op, sparse ? RT_OP_SPARSE_LINEAR : RT_OP_LINEAR);
            float *w = dense_of(g, node, K, N);
            int64_t zeros = 0;
            float max_zeroed = 0, min_kept = INFINITY;
            for (int i = 0; i < K * N; i++) {
                if (w[i] == 0) {
                    zeros++;
                    max_zeroed = fmaxf(max_zeroed, fabsf(orig[i]));
                } else {
                    assert_true(w[i] == orig[i]);
                    min_kept = fminf(min_kept, fabsf(orig[i]));
                }
            }
            assert_int_equal(zeros, llround(targets[t] * K * N));
            assert_true(max_zeroed <= min_kept);
            assert_int_equal(rep.n_entries, 1);
            assert_string_equal(rep.entries[0].node, "lin");
            char want[64];
            snprintf(want, sizeof want, "prune_%.2f (%s kernel)", (double)targets[t],
                     sparse ? "sparse" : "dense");
            assert_string_equal(rep.entries[0].technique, want);
            assert_int_equal(rep.entries[0].bytes_before, sizeof(float) * K * N);
            size_t nnz = (size_t)(K * N - zeros);
            assert_int_equal(rep.entries[0].bytes_after,
                             sparse ? nnz * 6 + sizeof(int32_t) * (N + 1) : sizeof(float) * K * N);
            free(orig);
            free(w);
            rt_compress_report_free(&rep);
            rt_graph_free(g);
        }
    rt_graph *g = linear_graph(255, 256, false, 4); /* 65280 weights */
    rt_compress_report rep = {0};
    rt_error err;
    assert_int_equal(rt_compress_prune(g, RT_PRUNE_MAGNITUDE, 0.9f, &rep, &err), RT_OK);
    assert_int_equal(g->nodes[0].op, RT_OP_LINEAR);
    assert_string_equal(rep.entries[0].technique, "prune_0.90 (dense kernel)");
    rt_compress_report_free(&rep);
    rt_graph_free(g);
}

/* ---- 2:4 ---- */

/* In every group of 4 consecutive weights along K, the two of largest |w| are kept as
 * they were and the other two are zero: for Linear in both layouts and for Attention (K
 * its rows); a Linear whose K is no multiple of 4 is left alone; 2:4 runs dense. */
static void test_2_4(void **state)
{
    (void)state;
    for (int tb = 0; tb < 2; tb++) {
        enum { K = 24, N = 10 };
        rt_graph *g = linear_graph(K, N, tb, 11);
        float *orig = dense_of(g, &g->nodes[0], K, N);
        rt_compress_report rep = {0};
        rt_error err;
        assert_int_equal(rt_compress_prune(g, RT_PRUNE_2_4, 0.5f, &rep, &err), RT_OK);
        assert_int_equal(g->nodes[0].op, RT_OP_LINEAR);
        float *w = dense_of(g, &g->nodes[0], K, N);
        for (int j = 0; j < N; j++)
            for (int p = 0; p < K; p += 4) {
                int kept = 0;
                for (int q = 0; q < 4; q++) {
                    float o = fabsf(orig[(p + q) * N + j]);
                    int larger = 0;
                    for (int r = 0; r < 4; r++)
                        larger += fabsf(orig[(p + r) * N + j]) > o;
                    float now = w[(p + q) * N + j];
                    if (now != 0) {
                        kept++;
                        assert_true(now == orig[(p + q) * N + j]);
                        assert_true(larger < 2);
                    } else {
                        assert_true(larger >= 2);
                    }
                }
                assert_int_equal(kept, 2);
            }
        assert_int_equal(rep.n_entries, 1);
        assert_string_equal(rep.entries[0].technique,
                            "2:4 (dense kernel: no 2:4 sparse kernel on the CPU)");
        free(orig);
        free(w);
        rt_compress_report_free(&rep);
        rt_graph_free(g);
    }
    rt_graph *g = linear_graph(30, 8, false, 12);
    float *before = dense_of(g, &g->nodes[0], 30, 8);
    rt_compress_report rep = {0};
    rt_error err;
    assert_int_equal(rt_compress_prune(g, RT_PRUNE_2_4, 0.5f, &rep, &err), RT_OK);
    float *after = dense_of(g, &g->nodes[0], 30, 8);
    assert_memory_equal(before, after, sizeof(float) * 30 * 8);
    assert_int_equal(rep.n_entries, 0);
    free(before);
    free(after);
    rt_graph_free(g);

    /* Attention: groups run down the rows of W (hidden_in, 3 hidden) */
    g = rt_graph_create("attn");
    g->opset = 13;
    rt_shape xs = rt_shape_make(3, (int64_t[]){1, 3, 8});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    rt_graph_add_input(g, x);
    int wv = weight_value(g, "wa", make_random(RT_DTYPE_F32, 2, (int64_t[]){8, 24}, 13));
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, NULL);
    rt_attr *attrs = heap_attrs(1);
    attrs[0] = heap_int("num_heads", 2);
    rt_graph_add_node(g, "attn", RT_OP_ATTENTION, (int[]){x, wv}, 2, &y, 1, attrs, 1);
    rt_graph_add_output(g, y);
    assert_int_equal(rt_compress_prune(g, RT_PRUNE_2_4, 0.5f, &rep, &err), RT_OK);
    const float *wa = value_data(g, g->nodes[0].inputs[1])->data;
    for (int j = 0; j < 24; j++)
        for (int p = 0; p < 8; p += 4) {
            int zeros = 0;
            for (int q = 0; q < 4; q++)
                zeros += wa[(p + q) * 24 + j] == 0;
            assert_int_equal(zeros, 2);
        }
    assert_int_equal(rep.n_entries, 1);
    rt_compress_report_free(&rep);
    rt_graph_free(g);
}

/* A weight two Linears read is pruned for each on its own copy: both pruned, the graph
 * still checks. */
static void test_shared_weight(void **state)
{
    (void)state;
    rt_graph *g = linear_graph(16, 12, false, 21);
    int x = g->inputs[0], w = g->nodes[0].inputs[1];
    int y2 = rt_graph_add_value(g, "y2", RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, NULL);
    rt_graph_add_node(g, "lin2", RT_OP_LINEAR, (int[]){x, w}, 2, &y2, 1, NULL, 0);
    rt_graph_add_output(g, y2);
    rt_compress_report rep = {0};
    rt_error err;
    assert_int_equal(rt_compress_prune(g, RT_PRUNE_MAGNITUDE, 0.5f, &rep, &err), RT_OK);
    assert_int_equal(rep.n_entries, 2);
    assert_int_not_equal(g->nodes[0].inputs[1], g->nodes[1].inputs[1]);
    for (int i = 0; i < 2; i++) {
        const rt_tensor *t = value_data(g, g->nodes[i].inputs[1]);
        int zeros = 0;
        for (int e = 0; e < 16 * 12; e++)
            zeros += ((const float *)t->data)[e] == 0;
        assert_int_equal(zeros, 96);
    }
    assert_int_equal(rt_graph_check(g, &err), RT_OK);
    rt_compress_report_free(&rep);
    rt_graph_free(g);
}

/* ---- the sparse kernel ---- */

/* A (k x n) weight with about `density` of its elements nonzero. */
static float *sparse_weight(int64_t k, int64_t n, double density, uint32_t seed)
{
    rt_tensor *t = make_random(RT_DTYPE_F32, 2, (int64_t[]){k, n}, seed);
    float *w = malloc(sizeof *w * (size_t)(k * n));
    assert_non_null(w);
    uint32_t s = seed;
    for (int64_t i = 0; i < k * n; i++) {
        s = s * 1664525u + 1013904223u;
        w[i] = (double)(s >> 8) / (1 << 24) < density ? ((float *)t->data)[i] : 0;
    }
    rt_tensor_free(t);
    return w;
}

/* Every row count that exercises the blocking (16-row blocks, a short last one, 4-row
 * blocks, the single row) against double-precision X W + bias, on a weight with an empty
 * column and at several densities; the columns built from W transposed are the same. */
static void test_sparse_kernel(void **state)
{
    (void)state;
    const int64_t rows[] = {1, 2, 3, 5, 7, 8, 13, 16, 17, 24, 35, 64};
    const double density[] = {0.5, 0.1, 0.02};
    enum { K = 70, N = 45 };
    for (size_t d = 0; d < sizeof density / sizeof *density; d++) {
        float *w = sparse_weight(K, N, density[d], 7 + (uint32_t)d);
        for (int p = 0; p < K; p++)
            w[p * N + 3] = 0; /* column 3 empty */
        float wt[K * N];
        for (int p = 0; p < K; p++)
            for (int j = 0; j < N; j++)
                wt[j * K + p] = w[p * N + j];
        rt_tensor *v, *r, *c, *vt, *rt, *ct;
        rt_error err;
        assert_int_equal(rt_sparse_from_dense(w, K, N, false, &v, &r, &c, &err), RT_OK);
        assert_int_equal(rt_sparse_from_dense(wt, K, N, true, &vt, &rt, &ct, &err), RT_OK);
        assert_int_equal(rt_tensor_numel(v), rt_tensor_numel(vt));
        assert_memory_equal(v->data, vt->data, rt_tensor_nbytes(v));
        assert_memory_equal(r->data, rt->data, rt_tensor_nbytes(r));
        assert_memory_equal(c->data, ct->data, rt_tensor_nbytes(c));
        rt_sparse_cols cols = {K, N, v->data, r->data, c->data};
        rt_tensor *bias = make_random(RT_DTYPE_F32, 1, (int64_t[]){N}, 5);
        const float *bd = bias->data;
        for (size_t m = 0; m < sizeof rows / sizeof *rows; m++) {
            int64_t M = rows[m];
            rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){M, K}, 9 + (uint32_t)m);
            const float *xd = x->data;
            float *y = malloc(sizeof *y * (size_t)(M * N));
            memset(y, 0xff, sizeof *y * (size_t)(M * N));
            rt_kernel_ctx ctx = {.threads = 2};
            assert_int_equal(rt_cpu_sparse_matmul(&ctx, M, xd, &cols, bd, y, &err), RT_OK);
            rt_kernel_ctx_release(&ctx);
            for (int64_t i = 0; i < M; i++)
                for (int64_t j = 0; j < N; j++) {
                    double ref = bd[j], mag = fabs(bd[j]);
                    for (int64_t p = 0; p < K; p++) {
                        ref += (double)xd[i * K + p] * w[p * N + j];
                        mag += fabs((double)xd[i * K + p] * w[p * N + j]);
                    }
                    if (!(fabs(y[i * N + j] - ref) <= 1e-6 * (1 + mag)))
                        fail_msg("density %g rows %lld (%lld, %lld): %g vs %g", density[d],
                                 (long long)M, (long long)i, (long long)j, (double)y[i * N + j],
                                 ref);
                }
            free(y);
            rt_tensor_free(x);
        }
        rt_tensor *all[] = {v, r, c, vt, rt, ct, bias};
        for (size_t i = 0; i < sizeof all / sizeof *all; i++)
            rt_tensor_free(all[i]);
        free(w);
    }
}

/* The op through inference and kernel equals Linear on the dense weight (bias, Relu, X of
 * rank 3); inputs that are not the columns form are refused with a reason. */
static void test_sparse_linear_op(void **state)
{
    (void)state;
    enum { K = 33, N = 20 };
    float *wd = sparse_weight(K, N, 0.2, 3);
    rt_tensor *w = make_tensor(RT_DTYPE_F32, 2, (int64_t[]){K, N});
    memcpy(w->data, wd, sizeof(float) * K * N);
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 9, K}, 4);
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){N}, 5);
    rt_tensor *v, *r, *c;
    rt_error err;
    assert_int_equal(rt_sparse_from_dense(wd, K, N, false, &v, &r, &c, &err), RT_OK);
    rt_attr relu = attr_string("activation", "Relu");
    op_run ref = run_op(RT_OP_LINEAR, rt_cpu_linear, &relu, 1, (const rt_tensor *[]){x, w, b}, 3, 1);
    assert_int_equal(ref.status, RT_OK);
    rt_attr attrs[2] = {attr_string("activation", "Relu"), attr_int("k", K)};
    op_run got = run_op(RT_OP_SPARSE_LINEAR, rt_cpu_sparse_linear, attrs, 2,
                        (const rt_tensor *[]){x, v, r, c, b}, 5, 1);
    assert_int_equal(got.status, RT_OK);
    assert_shape(got.out[0], 3, (int64_t[]){2, 9, N});
    for (int64_t i = 0; i < 2 * 9 * N; i++)
        assert_true(fabs(elem(got.out[0], i) - elem(ref.out[0], i)) <= 1e-5 * (1 + fabs(elem(ref.out[0], i))));
    op_run_free(&got);
    op_run_free(&ref);

    /* R as I32, k not X's last dim */
    rt_tensor *r32 = make_tensor(RT_DTYPE_I32, 1, (int64_t[]){rt_tensor_numel(r)});
    got = run_op(RT_OP_SPARSE_LINEAR, rt_cpu_sparse_linear, attrs, 2,
                 (const rt_tensor *[]){x, v, r32, c, b}, 5, 1);
    assert_int_equal(got.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(got.err.text, "U16"));
    attrs[1] = attr_int("k", K + 1);
    got = run_op(RT_OP_SPARSE_LINEAR, rt_cpu_sparse_linear, attrs, 2,
                 (const rt_tensor *[]){x, v, r, c, b}, 5, 1);
    assert_int_equal(got.status, RT_ERR_INVALID_ARG);
    rt_tensor *all[] = {w, x, b, v, r, c, r32};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rt_tensor_free(all[i]);
    free(wd);
}

/* ---- the pass on sessions ---- */

enum { HID = 256, FFN = 256, ROWS = 16 };

/* x (ROWS, HID) -> MatMul(HID x FFN) + B -> Relu -> MatMul(FFN x HID) -> y: two Linears
 * after the optimizer. Weights scaled by 1 / sqrt(fan-in) as trained layers are. */
static rt_graph *mlp_graph(void)
{
    rt_graph *g = rt_graph_create("mlp");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){ROWS, HID});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    rt_graph_add_input(g, x);
    const int64_t dims[3][2] = {{HID, FFN}, {1, FFN}, {FFN, HID}};
    int w[3];
    for (int i = 0; i < 3; i++) {
        rt_tensor *t = make_random(RT_DTYPE_F32, i == 1 ? 1 : 2, i == 1 ? dims[i] + 1 : dims[i],
                                   30 + (uint32_t)i);
        for (int64_t e = 0; e < rt_tensor_numel(t); e++)
            ((float *)t->data)[e] /= sqrtf((float)dims[i][0]);
        w[i] = weight_value(g, (const char *[]){"w0", "b0", "w1"}[i], t);
    }
    int h = rt_graph_add_value(g, "h", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int hb = rt_graph_add_value(g, "hb", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int r = rt_graph_add_value(g, "r", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_node(g, "up", RT_OP_MATMUL, (int[]){x, w[0]}, 2, &h, 1, NULL, 0);
    rt_graph_add_node(g, "up_bias", RT_OP_ADD, (int[]){h, w[1]}, 2, &hb, 1, NULL, 0);
    rt_graph_add_node(g, "relu", RT_OP_RELU, &hb, 1, &r, 1, NULL, 0);
    rt_graph_add_node(g, "down", RT_OP_MATMUL, (int[]){r, w[2]}, 2, &y, 1, NULL, 0);
    rt_graph_add_output(g, y);
    return g;
}

static rt_tensor *run_pruned(rt_prune mode, float sparsity, const rt_tensor *x,
                             rt_session_stats *st, rt_session **keep)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.threads = 2;
    o.compress.prune = mode;
    o.compress.prune_sparsity = sparsity;
    rt_error err;
    rt_session *s = rt_session_create_from_graph(mlp_graph(), &o, &err);
    if (!s)
        fail_msg("session: %s", err.text);
    rt_tensor *y;
    if (rt_session_run(s, (const rt_tensor *[]){x}, 1, &y, 1, &err) != RT_OK)
        fail_msg("run: %s", err.text);
    rt_session_get_stats(s, st);
    *keep = s;
    return y;
}

/* 50% and 2:4 keep both Linears dense (same weight bytes), 90% makes them SparseLinear
 * and weight_bytes shrinks by what the report says per node; the outputs move, by at most
 * 1.5 times what was measured for each (largest change relative to the output's range:
 * 0.5: 45%, 2:4: 64%, 0.9: 89%). */
static void test_pass_on_session(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){ROWS, HID}, 50);
    rt_session_stats st_ref, st;
    rt_session *ref_s, *s;
    rt_tensor *ref = run_pruned(RT_PRUNE_NONE, 0, x, &st_ref, &ref_s);
    assert_int_equal(st_ref.nodes_by_op[RT_OP_LINEAR], 2);
    const struct {
        rt_prune mode;
        float sparsity;
        bool sparse;
        double bound;
    } cases[] = {{RT_PRUNE_MAGNITUDE, 0.5f, false, 0.68},
                 {RT_PRUNE_2_4, 0.5f, false, 0.97},
                 {RT_PRUNE_MAGNITUDE, 0.9f, true, 1.34}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        rt_tensor *y = run_pruned(cases[c].mode, cases[c].sparsity, x, &st, &s);
        assert_int_equal(st.nodes_by_op[RT_OP_SPARSE_LINEAR], cases[c].sparse ? 2 : 0);
        assert_int_equal(st.nodes_by_op[RT_OP_LINEAR], cases[c].sparse ? 0 : 2);
        assert_int_equal(st.compress.n_entries, 2);
        size_t saved = 0;
        for (int e = 0; e < 2; e++)
            saved += st.compress.entries[e].bytes_before - st.compress.entries[e].bytes_after;
        assert_true(st.compress.weight_bytes_before == st_ref.weight_bytes);
        assert_true(st.weight_bytes == st_ref.weight_bytes - saved);
        assert_true(cases[c].sparse ? saved > 0 : saved == 0);
        double e = max_rel_diff(y, ref);
        assert_true(e > 0.01);
        assert_true(e < cases[c].bound);
        rt_tensor_free(y);
        rt_session_free(s);
    }
    rt_tensor_free(ref);
    rt_session_free(ref_s);
    rt_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_magnitude),
        cmocka_unit_test(test_2_4),
        cmocka_unit_test(test_shared_weight),
        cmocka_unit_test(test_sparse_kernel),
        cmocka_unit_test(test_sparse_linear_op),
        cmocka_unit_test(test_pass_on_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
