/* test_compress_quant.c: INT8 quantization (rt_compress_quant.c, rt_cpu_qgemm.c,
 * rt_op_quant.c) and the compression driver (rt_compress.c): per-channel quantize /
 * dequantize round trips, the INT8 GEMM (AVX2 and portable, weight-only and W8A8) against
 * a float reference within a bound derived from the scales, infd.QLinear's shape checks,
 * and the pass on whole sessions: which nodes it rewrites and leaves, the weight bytes it
 * saves, the agreement of the outputs; plus the option parsers and the refusals
 * (no_optimize, tensor parallelism). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"
#include "rt_compress.h"
#include "rt_cpu_qgemm.h"
#include "rt_session.h"
#include "tp_shard.h"

/* ---- quantize / dequantize ---- */

/* Every element comes back within half a step of its channel's scale, each channel's
 * largest |w| maps to +-127, an all-zero channel gets scale 1; reading a (cols x rows)
 * source by columns equals quantizing its transpose. */
static void test_round_trip(void **state)
{
    (void)state;
    enum { ROWS = 7, COLS = 33 };
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){ROWS, COLS}, 1);
    float *d = w->data;
    for (int c = 0; c < COLS; c++)
        d[3 * COLS + c] = 0; /* channel 3: all zero */
    d[5 * COLS + 4] = -9.5f; /* channel 5: one outlier */
    int8_t q[ROWS * COLS], qt[ROWS * COLS];
    float s[ROWS], st[ROWS], wt[COLS * ROWS];
    rt_quantize_i8_rows(d, ROWS, COLS, false, q, s);
    for (int r = 0; r < ROWS; r++) {
        int amax = 0;
        for (int c = 0; c < COLS; c++) {
            float back = s[r] * (float)q[r * COLS + c];
            assert_true(fabsf(back - d[r * COLS + c]) <= 0.5f * s[r] * (1 + 1e-5f));
            amax = abs(q[r * COLS + c]) > amax ? abs(q[r * COLS + c]) : amax;
        }
        assert_int_equal(amax, r == 3 ? 0 : 127);
    }
    assert_true(s[3] == 1.0f);
    assert_true(fabsf(s[5] - 9.5f / 127) < 1e-7f);
    assert_int_equal(q[5 * COLS + 4], -127);
    for (int r = 0; r < ROWS; r++)
        for (int c = 0; c < COLS; c++)
            wt[c * ROWS + r] = d[r * COLS + c];
    rt_quantize_i8_rows(wt, ROWS, COLS, true, qt, st);
    assert_memory_equal(q, qt, sizeof q);
    assert_memory_equal(s, st, sizeof s);
    rt_tensor_free(w);
}

/* ---- the INT8 GEMM ---- */

typedef struct {
    int64_t m, n, k;
} gemm_case;

/* Shapes with every remainder: rows past a 4-row tile, channels past a 16-wide panel, k
 * not a multiple of 4, one row, a long k. */
static const gemm_case cases[] = {{1, 1, 16}, {5, 19, 37}, {64, 64, 256}, {67, 130, 301},
                                  {3, 16, 1030}, {130, 48, 64}};

/* Y from the kernel (mode, bias, Relu) with a scratch of the size it asks for. */
static float *qgemm(rt_qmode mode, const gemm_case *c, const float *x, const int8_t *q,
                    const float *s, const float *bias, const rt_act *act)
{
    float *y = malloc(sizeof *y * (size_t)(c->m * c->n));
    size_t bytes = rt_cpu_qgemm_scratch_bytes(mode, c->m, c->n, c->k);
    void *scratch = aligned_alloc(64, (bytes + 64) / 64 * 64);
    assert_non_null(y);
    assert_non_null(scratch);
    rt_kernel_ctx ctx = {.threads = 2};
    rt_cpu_qgemm(&ctx, mode, c->m, c->n, c->k, x, q, s, bias, act, y, scratch);
    free(scratch);
    return y;
}

/* A case's operands: random X (m x k), W (n x k) and bias (n), W quantized into q, s. */
typedef struct {
    rt_tensor *x, *w, *b;
    int8_t *q;
    float *s;
} gemm_data;

static gemm_data gemm_data_make(const gemm_case *c, uint32_t seed)
{
    gemm_data d;
    d.x = make_random(RT_DTYPE_F32, 2, (int64_t[]){c->m, c->k}, seed);
    d.w = make_random(RT_DTYPE_F32, 2, (int64_t[]){c->n, c->k}, seed + 10);
    d.b = make_random(RT_DTYPE_F32, 1, (int64_t[]){c->n}, seed + 20);
    d.q = malloc((size_t)(c->n * c->k));
    d.s = malloc(sizeof *d.s * (size_t)c->n);
    assert_non_null(d.q);
    assert_non_null(d.s);
    rt_quantize_i8_rows(d.w->data, c->n, c->k, false, d.q, d.s);
    return d;
}

static void gemm_data_free(gemm_data *d)
{
    free(d->q);
    free(d->s);
    rt_tensor_free(d->x);
    rt_tensor_free(d->w);
    rt_tensor_free(d->b);
}

/* W8A8 and weight-only against double-precision x . dequant(W) + bias, then Relu. The
 * weight-only kernel multiplies the dequantized weight in F32 (within 1e-5 of the sum of
 * the products' magnitudes); W8A8 also
 * rounds each activation to a step of its row's scale a = (max(x, 0) - min(x, 0)) / 127,
 * at most one step off (the step at the top of the range may be clamped), so its error
 * is bounded by a * s_j * sum_p |q_jp|. The AVX2 and the portable kernel agree exactly. */
static void test_qgemm_against_reference(void **state)
{
    (void)state;
    rt_act relu = {.kind = RT_ACT_RELU};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        const gemm_case *c = &cases[t];
        gemm_data d = gemm_data_make(c, 10 + (uint32_t)t);
        const float *xd = d.x->data, *bd = d.b->data, *s = d.s;
        const int8_t *q = d.q;
        float *yw = qgemm(RT_QMODE_WEIGHT_ONLY, c, xd, q, s, bd, &relu);
        bool simd = rt_cpu_qgemm_use_portable(false);
        float *yd = qgemm(RT_QMODE_DYNAMIC, c, xd, q, s, bd, &relu);
        rt_cpu_qgemm_use_portable(true);
        float *yp = qgemm(RT_QMODE_DYNAMIC, c, xd, q, s, bd, &relu);
        rt_cpu_qgemm_use_portable(false);
        if (simd)
            assert_memory_equal(yd, yp, sizeof *yd * (size_t)(c->m * c->n));
        for (int64_t i = 0; i < c->m; i++) {
            float lo = 0, hi = 0;
            for (int64_t p = 0; p < c->k; p++) {
                lo = fminf(lo, xd[i * c->k + p]);
                hi = fmaxf(hi, xd[i * c->k + p]);
            }
            double a_step = (hi - lo) / 127.0;
            for (int64_t j = 0; j < c->n; j++) {
                double ref = bd[j], qsum = 0, mag = fabs(bd[j]);
                for (int64_t p = 0; p < c->k; p++) {
                    double prod = (double)xd[i * c->k + p] * s[j] * q[j * c->k + p];
                    ref += prod;
                    mag += fabs(prod);
                    qsum += abs(q[j * c->k + p]);
                }
                ref = ref > 0 ? ref : 0;
                /* F32 summation: relative 1e-5 of the sum of magnitudes */
                double rounding = 1e-5 * (1 + mag);
                double bound = a_step * s[j] * qsum + rounding;
                size_t at = (size_t)(i * c->n + j);
                if (!(fabs(yw[at] - ref) <= rounding))
                    fail_msg("weight-only %lldx%lldx%lld (%lld,%lld): %g vs %g", (long long)c->m,
                             (long long)c->n, (long long)c->k, (long long)i, (long long)j,
                             (double)yw[at], ref);
                if (!(fabs(yp[at] - ref) <= bound))
                    fail_msg("w8a8 %lldx%lldx%lld (%lld,%lld): %g vs %g (bound %g)",
                             (long long)c->m, (long long)c->n, (long long)c->k, (long long)i,
                             (long long)j, (double)yp[at], ref, bound);
            }
        }
        free(yw);
        free(yd);
        free(yp);
        gemm_data_free(&d);
    }
}

/* The W8A8 epilogue adds the bias as it dequantizes and runs the activation only when
 * there is one: on every shape, Y with a bias is exactly Y without one plus the bias, Relu
 * is exactly max(that, 0), and the AVX2 and portable kernels agree on each. */
static void test_qgemm_epilogue(void **state)
{
    (void)state;
    rt_act none = {.kind = RT_ACT_NONE}, relu = {.kind = RT_ACT_RELU};
    for (size_t t = 0; t < sizeof cases / sizeof *cases; t++) {
        const gemm_case *c = &cases[t];
        gemm_data d = gemm_data_make(c, 40 + (uint32_t)t);
        const float *xd = d.x->data, *bd = d.b->data, *s = d.s;
        const int8_t *q = d.q;
        size_t count = (size_t)(c->m * c->n);
        float *y[2][3];
        for (int portable = 0; portable < 2; portable++) {
            rt_cpu_qgemm_use_portable(portable);
            y[portable][0] = qgemm(RT_QMODE_DYNAMIC, c, xd, q, s, NULL, &none);
            y[portable][1] = qgemm(RT_QMODE_DYNAMIC, c, xd, q, s, bd, &none);
            y[portable][2] = qgemm(RT_QMODE_DYNAMIC, c, xd, q, s, bd, &relu);
            rt_cpu_qgemm_use_portable(false);
        }
        for (int v = 0; v < 3; v++)
            assert_memory_equal(y[0][v], y[1][v], sizeof(float) * count);
        for (size_t at = 0; at < count; at++) {
            float plain = y[0][0][at] + bd[at % (size_t)c->n], biased = y[0][1][at];
            if (memcmp(&plain, &biased, sizeof plain) != 0)
                fail_msg("bias at %zu: %g vs %g", at, (double)biased, (double)plain);
            assert_true(y[0][2][at] == (biased > 0 ? biased : 0));
        }
        for (int portable = 0; portable < 2; portable++)
            for (int v = 0; v < 3; v++)
                free(y[portable][v]);
        gemm_data_free(&d);
    }
}

/* The W8A8 error on typical data is far inside the worst-case bound: relative to the
 * output's range it stays below 1% (what the session test below relies on). */
static void test_qgemm_typical_error(void **state)
{
    (void)state;
    gemm_case c = {64, 96, 256};
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){c.m, c.k}, 3);
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){c.n, c.k}, 4);
    int8_t *q = malloc((size_t)(c.n * c.k));
    float *s = malloc(sizeof *s * (size_t)c.n);
    rt_quantize_i8_rows(w->data, c.n, c.k, false, q, s);
    rt_act none = {.kind = RT_ACT_NONE};
    float *y = qgemm(RT_QMODE_DYNAMIC, &c, x->data, q, s, NULL, &none);
    const float *xd = x->data, *wd = w->data;
    double worst = 0, range = 0;
    for (int64_t i = 0; i < c.m; i++)
        for (int64_t j = 0; j < c.n; j++) {
            double ref = 0;
            for (int64_t p = 0; p < c.k; p++)
                ref += (double)xd[i * c.k + p] * wd[j * c.k + p];
            worst = fmax(worst, fabs(y[i * c.n + j] - ref));
            range = fmax(range, fabs(ref));
        }
    assert_true(worst < 0.01 * range);
    free(y);
    free(q);
    free(s);
    rt_tensor_free(x);
    rt_tensor_free(w);
}

/* A NaN in X counts as 0 in W8A8 (the row's range ignores it), on both kernels alike. */
static void test_qgemm_nan_input(void **state)
{
    (void)state;
    gemm_case c = {3, 20, 45};
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){c.m, c.k}, 12);
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){c.n, c.k}, 13);
    int8_t *q = malloc((size_t)(c.n * c.k));
    float *s = malloc(sizeof *s * (size_t)c.n), *xd = x->data;
    rt_quantize_i8_rows(w->data, c.n, c.k, false, q, s);
    rt_act none = {.kind = RT_ACT_NONE};
    /* zeros, then NaNs in their place (position 40: the AVX2 kernel's scalar tail; 5: its
     * vector loop) */
    xd[5] = xd[c.k + 40] = 0;
    float *y_ref = qgemm(RT_QMODE_DYNAMIC, &c, xd, q, s, NULL, &none);
    xd[5] = NAN;
    xd[c.k + 40] = NAN;
    bool simd = rt_cpu_qgemm_use_portable(false);
    float *y = qgemm(RT_QMODE_DYNAMIC, &c, xd, q, s, NULL, &none);
    rt_cpu_qgemm_use_portable(true);
    float *yp = qgemm(RT_QMODE_DYNAMIC, &c, xd, q, s, NULL, &none);
    rt_cpu_qgemm_use_portable(false);
    assert_memory_equal(y, y_ref, sizeof *y * (size_t)(c.m * c.n));
    if (simd)
        assert_memory_equal(y, yp, sizeof *y * (size_t)(c.m * c.n));
    free(y_ref);
    free(y);
    free(yp);
    free(q);
    free(s);
    rt_tensor_free(x);
    rt_tensor_free(w);
}

/* ---- infd.QLinear ---- */

/* The op through the executor's path (inference, kernel) equals the GEMM; a W that is not
 * I8, scales of the wrong length and an unknown mode are refused with a reason. */
static void test_qlinear_op(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 40}, 5);
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){24, 40}, 6);
    rt_tensor *wq = make_tensor(RT_DTYPE_I8, 2, (int64_t[]){24, 40});
    rt_tensor *s = make_tensor(RT_DTYPE_F32, 1, (int64_t[]){24});
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){24}, 7);
    rt_quantize_i8_rows(w->data, 24, 40, false, wq->data, s->data);
    rt_attr attrs[2] = {attr_string("mode", "dynamic"), attr_string("activation", "Relu")};
    op_run r = run_op(RT_OP_QLINEAR, rt_cpu_qlinear, attrs, 2,
                      (const rt_tensor *[]){x, wq, s, b}, 4, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){2, 3, 24});
    gemm_case c = {6, 24, 40};
    rt_act relu = {.kind = RT_ACT_RELU};
    float *y = qgemm(RT_QMODE_DYNAMIC, &c, x->data, wq->data, s->data, b->data, &relu);
    assert_memory_equal(r.out[0]->data, y, sizeof *y * 6 * 24);
    free(y);
    op_run_free(&r);

    r = run_op(RT_OP_QLINEAR, rt_cpu_qlinear, attrs, 2, (const rt_tensor *[]){x, w, s, b}, 4, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "I8"));
    rt_tensor *s_short = make_tensor(RT_DTYPE_F32, 1, (int64_t[]){23});
    r = run_op(RT_OP_QLINEAR, rt_cpu_qlinear, attrs, 2,
               (const rt_tensor *[]){x, wq, s_short, b}, 4, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "scale"));
    attrs[0] = attr_string("mode", "int4");
    r = run_op(RT_OP_QLINEAR, rt_cpu_qlinear, attrs, 2, (const rt_tensor *[]){x, wq, s, b}, 4, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(r.err.text, "int4"));
    rt_tensor *all[] = {x, w, wq, s, b, s_short};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rt_tensor_free(all[i]);
}

/* infd.QAttention: weight-only equals Attention on the dequantized weight (up to F32
 * rounding) with its bias and mask read from the right inputs; W8A8 stays close. */
static void test_qattention_op(void **state)
{
    (void)state;
    enum { B = 2, S = 5, H = 32, H3 = 96 };
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){B, S, H}, 8);
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){H, H3}, 9);
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){H3}, 10);
    rt_tensor *mask = make_tensor(RT_DTYPE_F32, 4, (int64_t[]){B, 1, 1, S});
    float *md = mask->data;
    for (int i = 0; i < B * S; i++)
        md[i] = i % S == S - 1 ? -10000.0f : 0.0f; /* the last key masked */
    float *wd = w->data;
    for (int i = 0; i < H * H3; i++)
        wd[i] *= 0.2f;
    rt_tensor *wq = make_tensor(RT_DTYPE_I8, 2, (int64_t[]){H3, H});
    rt_tensor *sc = make_tensor(RT_DTYPE_F32, 1, (int64_t[]){H3});
    rt_quantize_i8_rows(wd, H3, H, true, wq->data, sc->data);
    const int8_t *q = wq->data;
    const float *sd = sc->data;
    for (int p = 0; p < H; p++) /* W as the dequantized weight: exactly representable */
        for (int j = 0; j < H3; j++)
            wd[p * H3 + j] = sd[j] * (float)q[j * H + p];
    rt_attr heads = attr_int("num_heads", 4);
    op_run ref = run_op(RT_OP_ATTENTION, rt_cpu_attention, &heads, 1,
                        (const rt_tensor *[]){x, w, b, mask}, 4, 1);
    assert_int_equal(ref.status, RT_OK);
    const char *modes[2] = {"weight_only", "dynamic"};
    double tol[2] = {1e-5, 0.04}; /* W8A8: 7-bit rows of X through a softmax; measured 1.9% */
    for (int m = 0; m < 2; m++) {
        rt_attr attrs[2] = {attr_int("num_heads", 4), attr_string("mode", modes[m])};
        op_run r = run_op(RT_OP_QATTENTION, rt_cpu_attention, attrs, 2,
                          (const rt_tensor *[]){x, wq, sc, b, mask}, 5, 1);
        assert_int_equal(r.status, RT_OK);
        assert_shape(r.out[0], 3, (int64_t[]){B, S, H});
        double worst = 0, range = 0;
        for (int64_t i = 0; i < B * S * H; i++) {
            worst = fmax(worst, fabs(elem(r.out[0], i) - elem(ref.out[0], i)));
            range = fmax(range, fabs(elem(ref.out[0], i)));
        }
        assert_true(worst <= tol[m] * range);
        op_run_free(&r);
    }
    op_run_free(&ref);
    rt_tensor *all[] = {x, w, b, mask, wq, sc};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rt_tensor_free(all[i]);
}

/* ---- the pass on sessions ---- */

enum { BATCH = 2, SEQ = 8, HID = 64, FFN = 128, HEADS = 4, TINY = 6 };

static rt_attr heap_attr_int(const char *name, int64_t v)
{
    rt_attr a = {.name = strdup(name), .type = RT_ATTR_INT, .i = v};
    assert_non_null(a.name);
    return a;
}

/* A weight of uniform values scaled by 1 / sqrt(dims[0]) as trained layers are (so that
 * the attention scores do not saturate the softmax). */
static int add_weight(rt_graph *g, const char *name, int rank, const int64_t *dims, uint32_t seed)
{
    rt_tensor *t = make_random(RT_DTYPE_F32, rank, dims, seed);
    float *d = t->data;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        d[i] /= sqrtf((float)dims[0]);
    int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &t->shape);
    g->values[v].data = t;
    return v;
}

static int add_mid(rt_graph *g, const char *name)
{
    return rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
}

/* x (BATCH, SEQ, HID) -> Attention (W HID x 3 HID, B, HEADS) -> MatMul (HID x FFN) + B ->
 * Relu -> MatMul (FFN x HID, shared with a second MatMul when `shared`) -> y; and a tiny
 * MatMul (HID x TINY) -> z that is too small to quantize. */
static rt_graph *block_graph(bool shared)
{
    rt_graph *g = rt_graph_create("block");
    g->opset = 13;
    rt_shape xs = rt_shape_make(3, (int64_t[]){BATCH, SEQ, HID});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    rt_graph_add_input(g, x);
    int wa = add_weight(g, "wa", 2, (int64_t[]){HID, 3 * HID}, 1);
    int ba = add_weight(g, "ba", 1, (int64_t[]){3 * HID}, 2);
    int w1 = add_weight(g, "w1", 2, (int64_t[]){HID, FFN}, 3);
    int b1 = add_weight(g, "b1", 1, (int64_t[]){FFN}, 4);
    int w2 = add_weight(g, "w2", 2, (int64_t[]){FFN, HID}, 5);
    int wt = add_weight(g, "wt", 2, (int64_t[]){HID, TINY}, 6);
    int a = add_mid(g, "a"), h = add_mid(g, "h"), hb = add_mid(g, "hb"), r = add_mid(g, "r");
    int y = add_mid(g, "y"), z = add_mid(g, "z");
    rt_attr *heads = malloc(sizeof *heads);
    *heads = heap_attr_int("num_heads", HEADS);
    rt_graph_add_node(g, "attn", RT_OP_ATTENTION, (int[]){x, wa, ba}, 3, &a, 1, heads, 1);
    rt_graph_add_node(g, "up", RT_OP_MATMUL, (int[]){a, w1}, 2, &h, 1, NULL, 0);
    rt_graph_add_node(g, "up_bias", RT_OP_ADD, (int[]){h, b1}, 2, &hb, 1, NULL, 0);
    rt_graph_add_node(g, "relu", RT_OP_RELU, &hb, 1, &r, 1, NULL, 0);
    rt_graph_add_node(g, "down", RT_OP_MATMUL, (int[]){r, w2}, 2, &y, 1, NULL, 0);
    rt_graph_add_node(g, "tiny", RT_OP_MATMUL, (int[]){a, wt}, 2, &z, 1, NULL, 0);
    rt_graph_add_output(g, y);
    rt_graph_add_output(g, z);
    if (shared) {
        int y2 = add_mid(g, "y2");
        rt_graph_add_node(g, "down_again", RT_OP_MATMUL, (int[]){r, w2}, 2, &y2, 1, NULL, 0);
        rt_graph_add_output(g, y2);
    }
    return g;
}

static rt_session *session(rt_graph *g, rt_quant q, rt_error *err)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.threads = 2;
    o.compress.quantize = q;
    return rt_session_create_from_graph(g, &o, err);
}

static void run(rt_session *s, const rt_tensor *x, rt_tensor **out, int n_out)
{
    rt_error err;
    if (rt_session_run(s, (const rt_tensor *[]){x}, 1, out, n_out, &err) != RT_OK)
        fail_msg("run: %s", err.text);
}

/* max |a - b| / max |b| */
static double rel_error(const rt_tensor *a, const rt_tensor *b)
{
    double worst = 0, range = 0;
    for (int64_t i = 0; i < rt_tensor_numel(b); i++) {
        worst = fmax(worst, fabs(elem(a, i) - elem(b, i)));
        range = fmax(range, fabs(elem(b, i)));
    }
    return worst / range;
}

/* Both modes: Attention and the two big Linears become QAttention / QLinear, the tiny one
 * stays F32; each rewrite is reported with its technique; the replaced F32 weights are
 * gone, so weight_bytes (= the report's after) is under 0.3x fp32's; outputs stay within
 * 2% (weight-only) and 5% (W8A8) of fp32 relative to their range. */
static void test_pass_on_session(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){BATCH, SEQ, HID}, 42);
    rt_error err;
    rt_session *ref = session(block_graph(false), RT_QUANT_NONE, &err);
    assert_non_null(ref);
    rt_tensor *y_ref[2];
    run(ref, x, y_ref, 2);
    rt_session_stats st_ref;
    rt_session_get_stats(ref, &st_ref);
    assert_int_equal(st_ref.nodes_by_op[RT_OP_LINEAR], 3);
    assert_int_equal(st_ref.compress.n_entries, 0);
    rt_quant modes[2] = {RT_QUANT_INT8_WEIGHT_ONLY, RT_QUANT_INT8};
    const char *techniques[2] = {"int8_weight_only", "int8_w8a8"};
    double tolerance[2] = {0.02, 0.05}; /* twice what was measured: 0.95% and 2.2% */
    for (int m = 0; m < 2; m++) {
        rt_session *s = session(block_graph(false), modes[m], &err);
        if (!s)
            fail_msg("session: %s", err.text);
        rt_session_stats st;
        rt_session_get_stats(s, &st);
        assert_int_equal(st.nodes_by_op[RT_OP_QATTENTION], 1);
        assert_int_equal(st.nodes_by_op[RT_OP_QLINEAR], 2);
        assert_int_equal(st.nodes_by_op[RT_OP_LINEAR], 1);
        assert_int_equal(st.nodes_by_op[RT_OP_ATTENTION], 0);
        assert_int_equal(st.compress.n_entries, 3);
        for (int e = 0; e < 3; e++) {
            assert_string_equal(st.compress.entries[e].technique, techniques[m]);
            assert_true(st.compress.entries[e].bytes_after < st.compress.entries[e].bytes_before / 3);
        }
        assert_true(st.compress.weight_bytes_before == st_ref.weight_bytes);
        assert_true(st.compress.weight_bytes_after == st.weight_bytes);
        assert_true(st.weight_bytes < st_ref.weight_bytes * 3 / 10);
        rt_tensor *y[2];
        run(s, x, y, 2);
        assert_true(rel_error(y[0], y_ref[0]) < tolerance[m]);
        assert_true(rel_error(y[0], y_ref[0]) > 0); /* it did change the model */
        assert_true(rel_error(y[1], y_ref[1]) < tolerance[m]);
        rt_tensor_free(y[0]);
        rt_tensor_free(y[1]);
        rt_session_free(s);
    }
    rt_tensor_free(y_ref[0]);
    rt_tensor_free(y_ref[1]);
    rt_session_free(ref);
    rt_tensor_free(x);
}

/* A weight two Linears read is quantized once: one I8 weight of its size in the graph. */
static void test_shared_weight_once(void **state)
{
    (void)state;
    rt_error err;
    rt_session *s = session(block_graph(true), RT_QUANT_INT8, &err);
    if (!s)
        fail_msg("session: %s", err.text);
    const rt_graph *g = rt_session_graph(s);
    int i8_down = 0;
    for (int v = 0; v < g->n_values; v++) {
        const rt_tensor *t = g->values[v].data;
        if (g->values[v].kind == RT_VALUE_WEIGHT && t->dtype == RT_DTYPE_I8 &&
            t->shape.dims[0] == HID && t->shape.dims[1] == FFN)
            i8_down++;
    }
    assert_int_equal(i8_down, 1);
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    assert_int_equal(st.nodes_by_op[RT_OP_QLINEAR], 3);
    rt_session_free(s);
}

/* A QDQ model's weight-only QLinear (INT8 already) becomes dynamic under W8A8, reported
 * with its bytes unchanged. */
static void test_weight_only_qlinear_to_dynamic(void **state)
{
    (void)state;
    rt_graph *g = rt_graph_create("qdq");
    rt_shape xs = rt_shape_make(2, (int64_t[]){4, HID});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    rt_graph_add_input(g, x);
    rt_tensor *w = make_random(RT_DTYPE_F32, 2, (int64_t[]){FFN, HID}, 11);
    rt_tensor *wq = make_tensor(RT_DTYPE_I8, 2, (int64_t[]){FFN, HID});
    rt_tensor *sc = make_tensor(RT_DTYPE_F32, 1, (int64_t[]){FFN});
    rt_quantize_i8_rows(w->data, FFN, HID, false, wq->data, sc->data);
    rt_tensor_free(w);
    int wv = rt_graph_add_value(g, "wq", RT_VALUE_WEIGHT, RT_DTYPE_I8, &wq->shape);
    int sv = rt_graph_add_value(g, "s", RT_VALUE_WEIGHT, RT_DTYPE_F32, &sc->shape);
    g->values[wv].data = wq;
    g->values[sv].data = sc;
    int y = add_mid(g, "y");
    rt_attr *mode = malloc(sizeof *mode);
    *mode = (rt_attr){.name = strdup("mode"), .type = RT_ATTR_STRING,
                      .s = strdup("weight_only"), .s_len = 11};
    rt_graph_add_node(g, "q", RT_OP_QLINEAR, (int[]){x, wv, sv}, 3, &y, 1, mode, 1);
    rt_graph_add_output(g, y);
    rt_error err;
    rt_session *s = session(g, RT_QUANT_INT8, &err);
    if (!s)
        fail_msg("session: %s", err.text);
    const rt_graph *sg = rt_session_graph(s);
    assert_int_equal(sg->n_nodes, 1);
    assert_string_equal(rt_node_attr_string(&sg->nodes[0], "mode", ""), "dynamic");
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    assert_int_equal(st.compress.n_entries, 1);
    assert_string_equal(st.compress.entries[0].technique, "int8_w8a8");
    assert_true(st.compress.entries[0].bytes_after == st.compress.entries[0].bytes_before);
    rt_session_free(s);
}

/* Compression needs the optimizer; a quantized graph is not sharded; both say why. */
static void test_refusals(void **state)
{
    (void)state;
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.no_optimize = true;
    o.compress.quantize = RT_QUANT_INT8;
    rt_error err;
    assert_null(rt_session_create_from_graph(block_graph(false), &o, &err));
    assert_non_null(strstr(err.text, "no_optimize"));

    rt_session *s = session(block_graph(false), RT_QUANT_INT8, &err);
    assert_non_null(s);
    rt_graph *g = (rt_graph *)rt_session_graph(s);
    assert_int_equal(tp_shard(g, 0, 2, NULL, &err), RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.text, "INT8"));
    rt_session_free(s);
}

/* ---- options ---- */

static void test_parsers(void **state)
{
    (void)state;
    rt_error err;
    rt_precision p;
    rt_quant q;
    rt_prune pr;
    float f;
    assert_true(rt_precision_parse("bf16", &p, &err) && p == RT_PRECISION_BF16);
    assert_false(rt_precision_parse("fp8", &p, &err));
    assert_non_null(strstr(err.text, "fp8"));
    assert_true(rt_quant_parse("int8-weight-only", &q, &err) && q == RT_QUANT_INT8_WEIGHT_ONLY);
    assert_true(rt_quant_parse("int8", &q, &err) && q == RT_QUANT_INT8);
    assert_false(rt_quant_parse("int4", &q, &err));
    assert_string_equal(rt_quant_name(RT_QUANT_INT8_WEIGHT_ONLY), "int8-weight-only");
    assert_string_equal(rt_precision_name(RT_PRECISION_FP16), "fp16");
    assert_true(rt_prune_parse("2:4", &pr, &f, &err) && pr == RT_PRUNE_2_4);
    assert_true(rt_prune_parse("0.5", &pr, &f, &err) && pr == RT_PRUNE_MAGNITUDE && f == 0.5f);
    const char *bad_prune[] = {"0", "1", "1.5", "-0.1", "0.5x", "", "nan", "3:4"};
    for (size_t i = 0; i < sizeof bad_prune / sizeof *bad_prune; i++)
        assert_false(rt_prune_parse(bad_prune[i], &pr, &f, &err));
    assert_true(rt_low_rank_parse("1", &f, &err) && f == 1.0f);
    assert_true(rt_low_rank_parse("0.95", &f, &err) && fabsf(f - 0.95f) < 1e-7f);
    assert_false(rt_low_rank_parse("0", &f, &err));
    assert_false(rt_low_rank_parse("1.01", &f, &err));
    rt_compress_options o;
    rt_compress_options_init(&o);
    assert_false(rt_compress_options_active(&o));
    o.low_rank_energy = 0.9f;
    assert_true(rt_compress_options_active(&o));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_qgemm_against_reference),
        cmocka_unit_test(test_qgemm_epilogue),
        cmocka_unit_test(test_qgemm_typical_error),
        cmocka_unit_test(test_qgemm_nan_input),
        cmocka_unit_test(test_qlinear_op),
        cmocka_unit_test(test_qattention_op),
        cmocka_unit_test(test_pass_on_session),
        cmocka_unit_test(test_shared_weight_once),
        cmocka_unit_test(test_weight_only_qlinear_to_dynamic),
        cmocka_unit_test(test_refusals),
        cmocka_unit_test(test_parsers),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
