/* test_compress_precision.c: FP16 / BF16 weights and compressed embedding tables
 * (rt_compress_precision.c, rt_compress_embed.c and their kernels): the vectorized half
 * conversions against the scalar ones, Linear / Attention / FusedConv with narrowed
 * weights against F32 references, infd.Embedding against the F32 table within the per-row
 * scale bound, and the passes on whole sessions: what they convert, what they leave (a
 * table also read as a Linear weight), the weight bytes they save and the agreement of the
 * outputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"
#include "rt_compress.h"
#include "rt_session.h"

/* ---- conversions ---- */

static uint32_t f32_bits(float f)
{
    union { float f; uint32_t u; } v = {.f = f};
    return v.u;
}

static void free_all(rt_tensor **t, size_t n)
{
    for (size_t i = 0; i < n; i++)
        rt_tensor_free(t[i]);
}
#define FREE_ALL(...) free_all((rt_tensor *[]){__VA_ARGS__}, \
                               sizeof((rt_tensor *[]){__VA_ARGS__}) / sizeof(rt_tensor *))

/* Every F16 and BF16 bit pattern widened in bulk equals the scalar conversion (F16 NaNs
 * may come back quieted), and narrows back to itself; odd lengths exercise the tails. */
static void test_half_load_all_patterns(void **state)
{
    (void)state;
    uint16_t *h = malloc(sizeof *h * 65536), *back = malloc(sizeof *back * 65536);
    float *f = malloc(sizeof *f * 65536);
    for (uint32_t i = 0; i < 65536; i++)
        h[i] = (uint16_t)i;
    rt_dtype dts[2] = {RT_DTYPE_F16, RT_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        for (int64_t len = 1; len <= 17; len++) {
            rt_half_load(dts[d], h + 1000, 1, f, len);
            for (int64_t i = 0; i < len; i++)
                assert_int_equal(f32_bits(f[i]), f32_bits(d == 0 ? rt_f16_to_f32(h[1000 + i])
                                                                 : rt_bf16_to_f32(h[1000 + i])));
        }
        rt_half_load(dts[d], h, 1, f, 65536);
        rt_half_store(dts[d], f, back, 65536);
        for (uint32_t i = 0; i < 65536; i++) {
            float ref = d == 0 ? rt_f16_to_f32(h[i]) : rt_bf16_to_f32(h[i]);
            if (isnan(ref)) {
                assert_true(isnan(f[i]));
                assert_true(isnan(d == 0 ? rt_f16_to_f32(back[i]) : rt_bf16_to_f32(back[i])));
                continue;
            }
            assert_int_equal(f32_bits(f[i]), f32_bits(ref));
            assert_int_equal(back[i], h[i]);
        }
    }
    free(h);
    free(back);
    free(f);
}

/* Narrowing in bulk rounds exactly as the scalar conversion: pseudo-random bit patterns
 * over the whole float range, ties, overflow, subnormals. */
static void test_half_store_matches_scalar(void **state)
{
    (void)state;
    enum { N = 1 << 16 };
    float *f = malloc(sizeof *f * N);
    uint16_t *h = malloc(sizeof *h * N);
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        memcpy(&f[i], &s, sizeof s);
    }
    const float edge[] = {0.0f, -0.0f, 65504.0f, 65519.0f, 65520.0f, 1e-8f, -6e-8f, 5.9604645e-8f,
                          1.0009765625f + 0.00048828125f, INFINITY, -INFINITY, 3.0e38f};
    memcpy(f, edge, sizeof edge);
    rt_dtype dts[2] = {RT_DTYPE_F16, RT_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        rt_half_store(dts[d], f, h, N - 3);
        for (int i = 0; i < N - 3; i++) {
            uint16_t ref = d == 0 ? rt_f32_to_f16(f[i]) : rt_f32_to_bf16(f[i]);
            if (isnan(f[i]))
                assert_true(isnan(d == 0 ? rt_f16_to_f32(h[i]) : rt_bf16_to_f32(h[i])));
            else if (h[i] != ref)
                fail_msg("%s of %.9g (0x%08x): 0x%04x, scalar 0x%04x", rt_dtype_name(dts[d]),
                         f[i], f32_bits(f[i]), h[i], ref);
        }
    }
    free(f);
    free(h);
}

/* ---- kernels with narrowed weights ---- */

/* A copy of an F32 tensor narrowed to dt, and the narrowed values widened back. */
static rt_tensor *narrowed(const rt_tensor *t, rt_dtype dt)
{
    rt_tensor *n = make_tensor(dt, t->shape.rank, t->shape.dims);
    rt_half_store(dt, t->data, n->data, rt_tensor_numel(t));
    return n;
}

static rt_tensor *widened(const rt_tensor *h)
{
    rt_tensor *w = make_tensor(RT_DTYPE_F32, h->shape.rank, h->shape.dims);
    rt_half_load(h->dtype, h->data, 1, w->data, rt_tensor_numel(h));
    return w;
}

/* The relative rounding error of one narrowing to dt. */
static double unit_roundoff(rt_dtype dt)
{
    return dt == RT_DTYPE_F16 ? ldexp(1, -11) : ldexp(1, -8);
}

/* Linear(X (m x k), W, B?) with a narrowed W, against (a) Linear on the widened W: the same
 * products, so equal up to summation order, and (b) the F32 W: within the rounding of W,
 * |y - y32| <= u sum_k |x w| + 1e-5. Sizes cover the direct way (m <= 4), the panel way
 * and, with k n above the panel size, several panels. */
static void check_linear(rt_dtype dt, int64_t m, int64_t k, int64_t n, bool trans_b, bool bias)
{
    int64_t xd[2] = {m, k}, wd[2] = {trans_b ? n : k, trans_b ? k : n}, bd[1] = {n};
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, xd, 1), *w = make_random(RT_DTYPE_F32, 2, wd, 2);
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, bd, 3), *wh = narrowed(w, dt), *ww = widened(wh);
    rt_attr attrs[2] = {attr_int("trans_b", trans_b), attr_string("activation", "")};
    const rt_tensor *in_h[3] = {x, wh, b}, *in_w[3] = {x, ww, b}, *in_32[3] = {x, w, b};
    int n_in = bias ? 3 : 2;
    op_run rh = run_op(RT_OP_LINEAR, rt_cpu_linear, attrs, 2, in_h, n_in, 1);
    op_run rw = run_op(RT_OP_LINEAR, rt_cpu_linear, attrs, 2, in_w, n_in, 1);
    op_run r32 = run_op(RT_OP_LINEAR, rt_cpu_linear, attrs, 2, in_32, n_in, 1);
    assert_int_equal(rh.status, RT_OK);
    assert_int_equal(rh.out[0]->dtype, RT_DTYPE_F32);
    const float *xv = x->data, *wv = w->data, *yh = rh.out[0]->data, *yw = rw.out[0]->data;
    const float *y32 = r32.out[0]->data;
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double mag = 0;
            for (int64_t p = 0; p < k; p++)
                mag += fabs(xv[i * k + p] * wv[trans_b ? j * k + p : p * n + j]);
            double got = yh[i * n + j];
            if (fabs(got - yw[i * n + j]) > 1e-5 * (1 + mag) ||
                fabs(got - y32[i * n + j]) > unit_roundoff(dt) * mag + 1e-5)
                fail_msg("%s m=%lld k=%lld n=%lld trans_b=%d [%lld,%lld]: %g, widened W %g, "
                         "F32 W %g", rt_dtype_name(dt), (long long)m, (long long)k, (long long)n,
                         trans_b, (long long)i, (long long)j, got, yw[i * n + j],
                         y32[i * n + j]);
        }
    op_run_free(&rh);
    op_run_free(&rw);
    op_run_free(&r32);
    FREE_ALL(x, w, b, wh, ww);
}

static void test_linear_half_weights(void **state)
{
    (void)state;
    rt_dtype dts[2] = {RT_DTYPE_F16, RT_DTYPE_BF16};
    for (int d = 0; d < 2; d++)
        for (int tb = 0; tb < 2; tb++) {
            check_linear(dts[d], 1, 70, 150, tb, true);
            check_linear(dts[d], 3, 300, 700, tb, false);
            check_linear(dts[d], 37, 70, 150, tb, false);
            check_linear(dts[d], 9, 2048, 600, tb, true); /* two panels */
        }
}

/* Attention and FusedConv with a narrowed W give what they give with the widened W. */
static void assert_same(const rt_tensor *a, const rt_tensor *b, double tol)
{
    assert_int_equal(rt_tensor_numel(a), rt_tensor_numel(b));
    const float *x = a->data, *y = b->data;
    for (int64_t i = 0; i < rt_tensor_numel(a); i++)
        if (!(fabs(x[i] - y[i]) <= tol * (1 + fabs(y[i]))))
            fail_msg("element %lld: %.9g vs %.9g", (long long)i, x[i], y[i]);
}

static void test_attention_and_conv_half_weights(void **state)
{
    (void)state;
    rt_dtype dts[2] = {RT_DTYPE_F16, RT_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        int64_t xd[3] = {2, 5, 16}, wd[2] = {16, 48}, bd[1] = {48};
        rt_tensor *x = make_random(RT_DTYPE_F32, 3, xd, 4);
        rt_tensor *w = make_random(RT_DTYPE_F32, 2, wd, 5);
        rt_tensor *b = make_random(RT_DTYPE_F32, 1, bd, 6), *wh = narrowed(w, dts[d]);
        rt_tensor *ww = widened(wh);
        rt_attr attrs[1] = {attr_int("num_heads", 2)};
        const rt_tensor *in_h[3] = {x, wh, b}, *in_w[3] = {x, ww, b};
        op_run rh = run_op(RT_OP_ATTENTION, rt_cpu_attention, attrs, 1, in_h, 3, 1);
        op_run rw = run_op(RT_OP_ATTENTION, rt_cpu_attention, attrs, 1, in_w, 3, 1);
        assert_int_equal(rh.status, RT_OK);
        assert_same(rh.out[0], rw.out[0], 1e-5);
        op_run_free(&rh);
        op_run_free(&rw);
        FREE_ALL(x, w, b, wh, ww);

        int64_t cxd[4] = {2, 3, 7, 6}, cwd[4] = {4, 3, 3, 3}, cbd[1] = {4};
        x = make_random(RT_DTYPE_F32, 4, cxd, 7);
        w = make_random(RT_DTYPE_F32, 4, cwd, 8);
        b = make_random(RT_DTYPE_F32, 1, cbd, 9);
        wh = narrowed(w, dts[d]);
        ww = widened(wh);
        int64_t pads[4] = {1, 1, 1, 1};
        rt_attr cattrs[2] = {attr_ints("pads", pads, 4), attr_string("activation", "Relu")};
        const rt_tensor *cin_h[3] = {x, wh, b}, *cin_w[3] = {x, ww, b};
        rh = run_op(RT_OP_FUSED_CONV, rt_cpu_fused_conv, cattrs, 2, cin_h, 3, 1);
        rw = run_op(RT_OP_FUSED_CONV, rt_cpu_fused_conv, cattrs, 2, cin_w, 3, 1);
        assert_int_equal(rh.status, RT_OK);
        assert_same(rh.out[0], rw.out[0], 1e-5);
        op_run_free(&rh);
        op_run_free(&rw);
        FREE_ALL(x, w, b, wh, ww);
    }
}

/* A narrowed W is refused where it is not a W (Linear's X), and by the ONNX ops. */
static void test_half_weight_only_where_allowed(void **state)
{
    (void)state;
    int64_t xd[2] = {2, 4}, wd[2] = {4, 3};
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, xd, 1), *w = make_random(RT_DTYPE_F32, 2, wd, 2);
    rt_tensor *xh = narrowed(x, RT_DTYPE_F16), *wh = narrowed(w, RT_DTYPE_F16);
    const rt_tensor *bad_x[2] = {xh, w}, *mm[2] = {x, wh};
    op_run r = run_op(RT_OP_LINEAR, rt_cpu_linear, NULL, 0, bad_x, 2, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, mm, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    FREE_ALL(x, w, xh, wh);
}

/* ---- infd.Embedding ---- */

/* Rows picked by ids (negative ones from the end): an F16 table gives its values widened,
 * an I8 one row r's values times its scale; bad ids and missing scales are refused. */
static void test_embedding_kernel(void **state)
{
    (void)state;
    int64_t td[2] = {5, 9}, sd[1] = {5}, idd[2] = {2, 2};
    rt_tensor *t = make_random(RT_DTYPE_F32, 2, td, 3), *th = narrowed(t, RT_DTYPE_F16);
    rt_tensor *q = make_tensor(RT_DTYPE_I8, 2, td), *s = make_tensor(RT_DTYPE_F32, 1, sd);
    for (int64_t i = 0; i < 45; i++)
        ((int8_t *)q->data)[i] = (int8_t)(i * 7 % 255 - 127);
    for (int64_t r = 0; r < 5; r++)
        ((float *)s->data)[r] = 0.01f * (float)(r + 1);
    double ids[4] = {4, 0, -1, 2};
    rt_tensor *idx = make_values(RT_DTYPE_I64, 2, idd, ids);
    const rt_tensor *in_h[2] = {th, idx}, *in_q[3] = {q, idx, s};
    op_run rh = run_op(RT_OP_EMBEDDING, rt_cpu_embedding, NULL, 0, in_h, 2, 1);
    op_run rq = run_op(RT_OP_EMBEDDING, rt_cpu_embedding, NULL, 0, in_q, 3, 1);
    assert_int_equal(rh.status, RT_OK);
    assert_int_equal(rq.status, RT_OK);
    assert_shape(rh.out[0], 3, (int64_t[]){2, 2, 9});
    int64_t rows[4] = {4, 0, 4, 2};
    for (int k = 0; k < 4; k++)
        for (int j = 0; j < 9; j++) {
            int64_t src = rows[k] * 9 + j;
            assert_int_equal(f32_bits(((float *)rh.out[0]->data)[k * 9 + j]),
                             f32_bits(rt_f16_to_f32(((uint16_t *)th->data)[src])));
            assert_float_equal(((float *)rq.out[0]->data)[k * 9 + j],
                               ((int8_t *)q->data)[src] * 0.01f * (float)(rows[k] + 1), 1e-7);
        }
    op_run_free(&rh);
    op_run_free(&rq);
    double bad[4] = {0, 5, 1, 1};
    rt_tensor *bad_idx = make_values(RT_DTYPE_I64, 2, idd, bad);
    const rt_tensor *in_bad[2] = {th, bad_idx}, *no_scales[2] = {q, idx};
    op_run rb = run_op(RT_OP_EMBEDDING, rt_cpu_embedding, NULL, 0, in_bad, 2, 1);
    assert_int_equal(rb.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(rb.err.text, "out of range"));
    op_run_free(&rb);
    rb = run_op(RT_OP_EMBEDDING, rt_cpu_embedding, NULL, 0, no_scales, 2, 1);
    assert_int_equal(rb.status, RT_ERR_INVALID_ARG);
    FREE_ALL(t, th, q, s, idx, bad_idx);
}

/* ---- the passes on sessions ---- */

enum { VOCAB = 300, HID = 64, OUT = 48, SEQ = 5 };

/* ids (batch, SEQ) -> Gather(table) -> Linear(W, B) -> y, and x (batch, VOCAB) -> Linear
 * with the table itself as W -> z when `tied`. */
static rt_graph *embed_graph(bool tied)
{
    rt_graph *g = rt_graph_create("embed");
    g->opset = 13;
    rt_shape ids_s = rt_shape_make(2, (int64_t[]){-1, SEQ});
    int ids = rt_graph_add_value(g, "ids", RT_VALUE_INPUT, RT_DTYPE_I64, &ids_s);
    rt_graph_add_input(g, ids);
    int64_t dims[3][2] = {{VOCAB, HID}, {HID, OUT}, {OUT, 0}};
    const char *names[3] = {"table", "w", "b"};
    int wv[3];
    for (int i = 0; i < 3; i++) {
        rt_tensor *t = make_random(RT_DTYPE_F32, i == 2 ? 1 : 2, dims[i], 20 + (uint32_t)i);
        wv[i] = rt_graph_add_value(g, names[i], RT_VALUE_WEIGHT, RT_DTYPE_F32, &t->shape);
        g->values[wv[i]].data = t;
    }
    int e = rt_graph_add_value(g, "e", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_node(g, "gather", RT_OP_GATHER, (int[]){wv[0], ids}, 2, &e, 1, NULL, 0);
    rt_graph_add_node(g, "proj", RT_OP_MATMUL, (int[]){e, wv[1]}, 2, &y, 1, NULL, 0);
    int yb = rt_graph_add_value(g, "yb", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_node(g, "bias", RT_OP_ADD, (int[]){y, wv[2]}, 2, &yb, 1, NULL, 0);
    rt_graph_add_output(g, yb);
    if (tied) {
        rt_shape xs = rt_shape_make(2, (int64_t[]){-1, VOCAB});
        int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
        rt_graph_add_input(g, x);
        int z = rt_graph_add_value(g, "z", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
        rt_graph_add_node(g, "tied", RT_OP_MATMUL, (int[]){x, wv[0]}, 2, &z, 1, NULL, 0);
        rt_graph_add_output(g, z);
    }
    return g;
}

static rt_session *compressed(rt_graph *g, rt_precision p, rt_quant q)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.threads = 2;
    o.compress.precision = p;
    o.compress.quantize = q;
    rt_error err;
    rt_session *s = rt_session_create_from_graph(g, &o, &err);
    if (!s)
        fail_msg("session: %s", err.text);
    return s;
}

static void run(rt_session *s, const rt_tensor *const *in, int n_in, rt_tensor **out, int n_out)
{
    rt_error err;
    if (rt_session_run(s, in, n_in, out, n_out, &err) != RT_OK)
        fail_msg("run: %s", err.text);
}

static const rt_value *value_named(const rt_session *s, const char *name)
{
    const rt_graph *g = rt_session_graph(s);
    int v = rt_graph_find_value(g, name);
    assert_true(v >= 0);
    return &g->values[v];
}

static int count_op(const rt_session *s, rt_op op)
{
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    return st.nodes_by_op[op];
}

/* FP16 and BF16: the table and W are narrowed (half their bytes, the bias stays F32), the
 * Gather becomes an Embedding, each technique is reported, and the outputs stay within the
 * rounding of the weights. */
static void test_precision_pass(void **state)
{
    (void)state;
    rt_precision ps[2] = {RT_PRECISION_FP16, RT_PRECISION_BF16};
    double ids_v[2 * SEQ] = {0, 7, 299, -1, 150, 3, 3, 42, 8, 100};
    rt_tensor *ids = make_values(RT_DTYPE_I64, 2, (int64_t[]){2, SEQ}, ids_v);
    rt_session *ref = compressed(embed_graph(false), RT_PRECISION_FP32, RT_QUANT_NONE);
    rt_tensor *y32;
    run(ref, (const rt_tensor *[]){ids}, 1, &y32, 1);
    rt_session_stats st32;
    rt_session_get_stats(ref, &st32);
    for (int k = 0; k < 2; k++) {
        rt_dtype dt = ps[k] == RT_PRECISION_FP16 ? RT_DTYPE_F16 : RT_DTYPE_BF16;
        rt_session *s = compressed(embed_graph(false), ps[k], RT_QUANT_NONE);
        assert_int_equal(value_named(s, "table")->data->dtype, dt);
        assert_int_equal(value_named(s, "w")->data->dtype, dt);
        assert_int_equal(value_named(s, "b")->data->dtype, RT_DTYPE_F32);
        assert_int_equal(count_op(s, RT_OP_EMBEDDING), 1);
        assert_int_equal(count_op(s, RT_OP_GATHER), 0);
        rt_session_stats st;
        rt_session_get_stats(s, &st);
        size_t half = (VOCAB * HID + HID * OUT) * 2, bias = OUT * 4;
        assert_int_equal(st.weight_bytes, half + bias);
        assert_int_equal(st32.weight_bytes, 2 * half + bias);
        assert_int_equal(st.compress.weight_bytes_before, st32.weight_bytes);
        assert_int_equal(st.compress.weight_bytes_after, st.weight_bytes);
        assert_int_equal(st.compress.n_entries, 2);
        for (int e = 0; e < 2; e++)
            assert_string_equal(st.compress.entries[e].technique, rt_precision_name(ps[k]));
        rt_tensor *y;
        run(s, (const rt_tensor *[]){ids}, 1, &y, 1);
        /* |table| < 2 and |W| < 2: each product is off by at most 2 u |t w| + u^2 |t w|,
         * and the HID products of an output sum to at most HID * 4 */
        double u = unit_roundoff(dt), bound = (2 * u + u * u) * HID * 4;
        for (int64_t i = 0; i < rt_tensor_numel(y); i++)
            assert_true(fabs(((float *)y->data)[i] - ((float *)y32->data)[i]) <= bound);
        rt_tensor_free(y);
        rt_session_free(s);
    }
    rt_tensor_free(y32);
    rt_tensor_free(ids);
    rt_session_free(ref);
}

/* A table that a Linear also reads as its W is left F32 by both passes (narrowing it
 * would change the other reader), and the outputs are exact. */
static void test_tied_table_stays_f32(void **state)
{
    (void)state;
    double ids_v[SEQ] = {1, 2, 3, 4, 5};
    rt_tensor *ids = make_values(RT_DTYPE_I64, 2, (int64_t[]){1, SEQ}, ids_v);
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){1, VOCAB}, 9);
    rt_session *ref = compressed(embed_graph(true), RT_PRECISION_FP32, RT_QUANT_NONE);
    rt_session *s = compressed(embed_graph(true), RT_PRECISION_FP16, RT_QUANT_NONE);
    rt_compress_report rep = {0};
    rt_graph *g = embed_graph(true);
    rt_error err;
    assert_int_equal(rt_compress_quantize_embeddings(g, &rep, &err), RT_OK);
    assert_int_equal(rep.n_entries, 0);
    rt_graph_free(g);
    assert_int_equal(value_named(s, "table")->data->dtype, RT_DTYPE_F32);
    assert_int_equal(value_named(s, "w")->data->dtype, RT_DTYPE_F16);
    assert_int_equal(count_op(s, RT_OP_GATHER), 1);
    rt_tensor *out_ref[2], *out[2];
    run(ref, (const rt_tensor *[]){ids, x}, 2, out_ref, 2);
    run(s, (const rt_tensor *[]){ids, x}, 2, out, 2);
    assert_same(out[1], out_ref[1], 1e-6);
    for (int i = 0; i < 2; i++) {
        rt_tensor_free(out[i]);
        rt_tensor_free(out_ref[i]);
    }
    FREE_ALL(ids, x);
    rt_session_free(ref);
    rt_session_free(s);
}

/* INT8 embeddings: the table becomes I8 with one F32 scale per row (a quarter of its
 * bytes plus the scales), and every gathered value is within half a step of its row's
 * scale, max |row| / 127 / 2, of the F32 value. */
static void test_int8_embeddings(void **state)
{
    (void)state;
    rt_graph *g = embed_graph(false);
    const rt_tensor *t32 = g->values[rt_graph_find_value(g, "table")].data;
    float *row_max = calloc(VOCAB, sizeof *row_max);
    for (int64_t i = 0; i < VOCAB * HID; i++)
        row_max[i / HID] = fmaxf(row_max[i / HID], fabsf(((const float *)t32->data)[i]));
    rt_tensor *table = rt_tensor_clone(t32, NULL);
    rt_compress_report rep = {0};
    rt_error err;
    assert_int_equal(rt_compress_quantize_embeddings(g, &rep, &err), RT_OK);
    assert_int_equal(rep.n_entries, 1);
    assert_string_equal(rep.entries[0].node, "gather");
    assert_int_equal(rep.entries[0].bytes_before, VOCAB * HID * 4);
    assert_int_equal(rep.entries[0].bytes_after, VOCAB * HID + VOCAB * 4);
    rt_compress_report_free(&rep);
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    rt_session *s = rt_session_create_from_graph(g, &o, &err);
    assert_non_null(s);
    assert_int_equal(value_named(s, "table")->data->dtype, RT_DTYPE_I8);
    assert_int_equal(count_op(s, RT_OP_EMBEDDING), 1);
    const rt_graph *sg = rt_session_graph(s);
    double ids_v[SEQ] = {0, 299, -300, 17, 17};
    rt_tensor *ids = make_values(RT_DTYPE_I64, 2, (int64_t[]){1, SEQ}, ids_v);
    int64_t rows[SEQ] = {0, 299, 0, 17, 17};
    int64_t idd[1] = {SEQ};
    rt_tensor *flat = make_values(RT_DTYPE_I64, 1, idd, ids_v);
    const rt_value *tv = value_named(s, "table");
    const rt_value *sv = NULL;
    for (int v = 0; v < sg->n_values; v++)
        if (sg->values[v].kind == RT_VALUE_WEIGHT && strstr(sg->values[v].name, "table/"))
            sv = &sg->values[v];
    assert_non_null(sv);
    const rt_tensor *in[3] = {tv->data, flat, sv->data};
    op_run r = run_op(RT_OP_EMBEDDING, rt_cpu_embedding, NULL, 0, in, 3, 1);
    assert_int_equal(r.status, RT_OK);
    for (int k = 0; k < SEQ; k++)
        for (int j = 0; j < HID; j++) {
            double got = ((float *)r.out[0]->data)[k * HID + j];
            double want = ((float *)table->data)[rows[k] * HID + j];
            assert_true(fabs(got - want) <= row_max[rows[k]] / 127.0 / 2 * (1 + 1e-5));
        }
    op_run_free(&r);
    rt_tensor *y;
    run(s, (const rt_tensor *[]){ids}, 1, &y, 1);
    assert_int_equal(y->shape.dims[2], OUT);
    FREE_ALL(y, ids, flat, table);
    free(row_max);
    rt_session_free(s);
}

/* A Conv's weight narrowed makes it a FusedConv (Conv itself takes one dtype), within the
 * rounding of the weight of the F32 result. */
static void test_conv_becomes_fused_conv(void **state)
{
    (void)state;
    rt_session *s[2];
    rt_tensor *out[2];
    int64_t xd[4] = {2, 3, 8, 8};
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, xd, 11);
    for (int k = 0; k < 2; k++) {
        rt_graph *g = rt_graph_create("conv");
        g->opset = 13;
        rt_shape xs = rt_shape_make(4, (int64_t[]){-1, 3, 8, 8});
        int xv = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
        rt_graph_add_input(g, xv);
        rt_tensor *w = make_random(RT_DTYPE_F32, 4, (int64_t[]){4, 3, 3, 3}, 12);
        int wv = rt_graph_add_value(g, "w", RT_VALUE_WEIGHT, RT_DTYPE_F32, &w->shape);
        g->values[wv].data = w;
        int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
        rt_graph_add_node(g, "conv", RT_OP_CONV, (int[]){xv, wv}, 2, &y, 1, NULL, 0);
        rt_graph_add_output(g, y);
        s[k] = compressed(g, k ? RT_PRECISION_BF16 : RT_PRECISION_FP32, RT_QUANT_NONE);
        run(s[k], (const rt_tensor *[]){x}, 1, &out[k], 1);
    }
    assert_int_equal(count_op(s[0], RT_OP_CONV), 1);
    assert_int_equal(count_op(s[1], RT_OP_CONV), 0);
    assert_int_equal(count_op(s[1], RT_OP_FUSED_CONV), 1);
    assert_int_equal(value_named(s[1], "w")->data->dtype, RT_DTYPE_BF16);
    /* 27 products of |x| < 2 and |w| < 2 */
    double bound = unit_roundoff(RT_DTYPE_BF16) * 27 * 4;
    for (int64_t i = 0; i < rt_tensor_numel(out[0]); i++)
        assert_true(fabs(((float *)out[1]->data)[i] - ((float *)out[0]->data)[i]) <= bound);
    for (int k = 0; k < 2; k++) {
        rt_tensor_free(out[k]);
        rt_session_free(s[k]);
    }
    rt_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_half_load_all_patterns),
        cmocka_unit_test(test_half_store_matches_scalar),
        cmocka_unit_test(test_linear_half_weights),
        cmocka_unit_test(test_attention_and_conv_half_weights),
        cmocka_unit_test(test_half_weight_only_where_allowed),
        cmocka_unit_test(test_embedding_kernel),
        cmocka_unit_test(test_precision_pass),
        cmocka_unit_test(test_tied_table_stays_f32),
        cmocka_unit_test(test_int8_embeddings),
        cmocka_unit_test(test_conv_becomes_fused_conv),
    };
    return cmocka_run_group_tests_name("compress_precision", tests, NULL, NULL);
}
