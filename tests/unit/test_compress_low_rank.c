/* test_compress_low_rank.c: low-rank factorization (rt_compress_low_rank.c): an exactly
 * rank-r weight is found to be rank r and rebuilt by the two factors, the rank follows the
 * energy on a weight with known singular values, a weight is left alone where the factors
 * would not be smaller (energy 1, or a full-rank random weight), and on a session the
 * outputs and weight bytes move as reported. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <cmocka.h>

#include "op_test.h"
#include "rt_compress.h"
#include "rt_session.h"

/* A graph x (3, k) -> Linear "proj" (w, trans_b, bias, Relu) -> y taking w over; w is
 * (k, n), or (n, k) with trans_b. */
static rt_graph *proj_graph(rt_tensor *w, bool trans_b)
{
    int64_t k = w->shape.dims[trans_b ? 1 : 0], n = w->shape.dims[trans_b ? 0 : 1];
    rt_graph *g = rt_graph_create("proj");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){3, k});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int wv = rt_graph_add_value(g, "w", RT_VALUE_WEIGHT, RT_DTYPE_F32, &w->shape);
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){n}, 99);
    int bv = rt_graph_add_value(g, "b", RT_VALUE_WEIGHT, RT_DTYPE_F32, &b->shape);
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, NULL);
    assert_true(x >= 0 && wv >= 0 && bv >= 0 && y >= 0);
    g->values[wv].data = w;
    g->values[bv].data = b;
    rt_attr *attrs = calloc(2, sizeof *attrs);
    assert_non_null(attrs);
    attrs[0] = (rt_attr){.name = strdup("trans_b"), .type = RT_ATTR_INT, .i = trans_b};
    attrs[1] = (rt_attr){.name = strdup("activation"), .type = RT_ATTR_STRING, .s = strdup("Relu"),
                         .s_len = 4};
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "proj", RT_OP_LINEAR, (int[]){x, wv, bv}, 3, &y, 1, attrs, 2);
    rt_graph_add_output(g, y);
    return g;
}

/* W (k x n, row-major) as a tensor in the layout trans_b asks for. */
static rt_tensor *weight_tensor(const float *w, int64_t k, int64_t n, bool trans_b)
{
    rt_tensor *t = make_tensor(RT_DTYPE_F32, 2, trans_b ? (int64_t[]){n, k} : (int64_t[]){k, n});
    float *d = t->data;
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++)
            d[trans_b ? j * k + p : p * n + j] = w[p * n + j];
    return t;
}

/* After a split: the product of the two factors (k x n) and the rank between them. The
 * first node is Linear(x, A) without bias or activation, the second Linear(h, B, bias)
 * with the original name, activation and no trans_b. */
static float *product(const rt_graph *g, int64_t k, int64_t n, int64_t *rank)
{
    assert_int_equal(g->n_nodes, 2);
    const rt_node *a = &g->nodes[0], *b = &g->nodes[1];
    assert_int_equal(a->op, RT_OP_LINEAR);
    assert_int_equal(b->op, RT_OP_LINEAR);
    assert_int_equal(a->n_inputs, 2);
    assert_int_equal(b->inputs[0], a->outputs[0]);
    assert_string_equal(b->name, "proj");
    assert_string_equal(rt_node_attr_string(b, "activation", ""), "Relu");
    assert_int_equal(rt_node_attr_int(b, "trans_b", 0), 0);
    assert_int_equal(rt_graph_find_value(g, "b"), b->inputs[2]);
    const rt_tensor *ta = g->values[a->inputs[1]].data, *tb = g->values[b->inputs[1]].data;
    int64_t r = ta->shape.dims[1];
    assert_int_equal(ta->shape.dims[0], k);
    assert_int_equal(tb->shape.dims[0], r);
    assert_int_equal(tb->shape.dims[1], n);
    const float *ad = ta->data, *bd = tb->data;
    float *w = calloc((size_t)(k * n), sizeof *w);
    assert_non_null(w);
    for (int64_t p = 0; p < k; p++)
        for (int64_t j = 0; j < n; j++)
            for (int64_t q = 0; q < r; q++)
                w[p * n + j] += ad[p * r + q] * bd[q * n + j];
    *rank = r;
    return w;
}

/* W = P Q with P (48 x 5) and Q (5 x 40) random is rank 5: at energy 0.9999 the pass picks
 * rank 5 (the fifth singular value holds far more than 1e-4 of the energy, the rest is
 * rounding), the factors rebuild W to 1e-5 of its largest element, and the bytes are
 * reported (5 (48 + 40) floats for 48 x 40); both layouts of W. */
static void test_exact_rank(void **state)
{
    (void)state;
    enum { K = 48, N = 40, R = 5 };
    rt_tensor *p = make_random(RT_DTYPE_F32, 2, (int64_t[]){K, R}, 1);
    rt_tensor *q = make_random(RT_DTYPE_F32, 2, (int64_t[]){R, N}, 2);
    float w[K * N], wmax = 0;
    for (int i = 0; i < K; i++)
        for (int j = 0; j < N; j++) {
            double s = 0;
            for (int r = 0; r < R; r++)
                s += (double)((float *)p->data)[i * R + r] * ((float *)q->data)[r * N + j];
            w[i * N + j] = (float)s;
            wmax = fmaxf(wmax, fabsf(w[i * N + j]));
        }
    for (int tb = 0; tb < 2; tb++) {
        rt_graph *g = proj_graph(weight_tensor(w, K, N, tb), tb);
        rt_compress_report rep = {0};
        rt_error err;
        assert_int_equal(rt_compress_low_rank(g, 0.9999f, &rep, &err), RT_OK);
        int64_t rank;
        float *back = product(g, K, N, &rank);
        assert_int_equal(rank, R);
        for (int i = 0; i < K * N; i++)
            assert_true(fabsf(back[i] - w[i]) <= 1e-5f * wmax);
        assert_int_equal(rep.n_entries, 1);
        assert_string_equal(rep.entries[0].node, "proj");
        assert_string_equal(rep.entries[0].technique, "low_rank_r5");
        assert_int_equal(rep.entries[0].bytes_before, sizeof(float) * K * N);
        assert_int_equal(rep.entries[0].bytes_after, sizeof(float) * R * (K + N));
        assert_int_equal(rt_graph_check(g, &err), RT_OK);
        free(back);
        rt_compress_report_free(&rep);
        rt_graph_free(g);
    }
    rt_tensor_free(p);
    rt_tensor_free(q);
}

/* A 20 x 20 weight with singular values 8, 4, 2, 1, 0.5, ... (one nonzero per row and
 * column, scattered): energies 64, 16, 4, 1, ... of 85.33 in all. Energy 0.7 keeps 1
 * (0.75), 0.9 keeps 2 (0.9375), 0.95 keeps 3 (0.984), 0.99 keeps 4 (0.996), and the
 * factors equal W with the other singular values dropped. */
static void test_rank_follows_energy(void **state)
{
    (void)state;
    enum { D = 20 };
    const struct {
        float energy;
        int64_t rank;
    } cases[] = {{0.7f, 1}, {0.9f, 2}, {0.95f, 3}, {0.99f, 4}};
    for (size_t c = 0; c < sizeof cases / sizeof *cases; c++) {
        float w[D * D] = {0};
        for (int i = 0; i < D; i++)
            w[i * D + (i * 7 + 3) % D] = (i % 2 ? -8.0f : 8.0f) / (float)(1u << i);
        rt_graph *g = proj_graph(weight_tensor(w, D, D, false), false);
        rt_compress_report rep = {0};
        rt_error err;
        assert_int_equal(rt_compress_low_rank(g, cases[c].energy, &rep, &err), RT_OK);
        int64_t rank;
        float *back = product(g, D, D, &rank);
        assert_int_equal(rank, cases[c].rank);
        for (int i = 0; i < D; i++)
            for (int j = 0; j < D; j++) {
                float want = i < rank ? w[i * D + j] : 0;
                assert_true(fabsf(back[i * D + j] - want) <= 1e-5f);
            }
        free(back);
        rt_compress_report_free(&rep);
        rt_graph_free(g);
    }
}

/* Energy 1 keeps every singular value, so nothing is smaller: the weight stays as it was.
 * A random square weight needs more than half its rank for 0.95 of its energy (about 20
 * of 32), where the factors would hold more than W: left alone too, with no report
 * entry. */
static void test_no_gain(void **state)
{
    (void)state;
    const float energies[] = {1.0f, 0.95f};
    for (size_t e = 0; e < 2; e++) {
        rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){32, 32}, 5);
        float before[32 * 32];
        memcpy(before, w->data, sizeof before);
        rt_graph *g = proj_graph(w, false);
        rt_compress_report rep = {0};
        rt_error err;
        assert_int_equal(rt_compress_low_rank(g, energies[e], &rep, &err), RT_OK);
        assert_int_equal(g->n_nodes, 1);
        assert_int_equal(rep.n_entries, 0);
        assert_memory_equal(g->values[g->nodes[0].inputs[1]].data->data, before, sizeof before);
        rt_graph_free(g);
    }
}

/* On a session (through the optimizer and rt_compress): a 64 x 96 weight of rank 6 plus
 * noise of 1% at 0.95 becomes two Linears of rank 6; the outputs stay within 2% of the
 * uncompressed model's range (measured 0.95%) and move (the noise is gone); weight_bytes
 * drops by what the report gives. */
static void test_session(void **state)
{
    (void)state;
    enum { K = 64, N = 96, R = 6 };
    rt_tensor *p = make_random(RT_DTYPE_F32, 2, (int64_t[]){K, R}, 7);
    rt_tensor *q = make_random(RT_DTYPE_F32, 2, (int64_t[]){R, N}, 8);
    rt_tensor *noise = make_random(RT_DTYPE_F32, 2, (int64_t[]){K, N}, 9);
    float w[K * N];
    for (int i = 0; i < K; i++)
        for (int j = 0; j < N; j++) {
            float s = 0.03f * ((float *)noise->data)[i * N + j];
            for (int r = 0; r < R; r++)
                s += ((float *)p->data)[i * R + r] * ((float *)q->data)[r * N + j];
            w[i * N + j] = s;
        }
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){3, K}, 10);
    rt_tensor *y[2];
    rt_session_stats st[2];
    for (int c = 0; c < 2; c++) {
        rt_session_options o;
        rt_session_options_init(&o);
        o.backend = RT_BACKEND_CPU;
        o.threads = 2;
        o.compress.low_rank_energy = c ? 0.95f : 0;
        rt_error err;
        rt_session *s = rt_session_create_from_graph(proj_graph(weight_tensor(w, K, N, false), false),
                                                     &o, &err);
        if (!s)
            fail_msg("session: %s", err.text);
        if (rt_session_run(s, (const rt_tensor *[]){x}, 1, &y[c], 1, &err) != RT_OK)
            fail_msg("run: %s", err.text);
        rt_session_get_stats(s, &st[c]);
        if (c) {
            assert_int_equal(st[c].nodes_by_op[RT_OP_LINEAR], 2);
            assert_int_equal(st[c].compress.n_entries, 1);
            assert_string_equal(st[c].compress.entries[0].technique, "low_rank_r6");
            const rt_compress_entry *e = &st[c].compress.entries[0];
            assert_true(st[c].weight_bytes == st[0].weight_bytes - e->bytes_before + e->bytes_after);
            assert_true(st[c].compress.weight_bytes_after == st[c].weight_bytes);
        }
        rt_session_free(s);
    }
    double diff = max_rel_diff(y[1], y[0]);
    assert_true(diff > 0);
    assert_true(diff < 0.02);
    rt_tensor *all[] = {p, q, noise, x, y[0], y[1]};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rt_tensor_free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_exact_rank),
        cmocka_unit_test(test_rank_follows_energy),
        cmocka_unit_test(test_no_gain),
        cmocka_unit_test(test_session),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
