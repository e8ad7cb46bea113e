/* test_elementwise.c: unit tests for the elementwise ops: broadcasting (rt_broadcast.h and
 * the CPU walk), shape inference (rt_op_elementwise.c) and the CPU kernels
 * (rt_cpu_elementwise.c, rt_cpu_cast.c). Each op runs as the executor runs it (infer,
 * allocate, kernel) and is compared with values computed here with libm and plain C. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <float.h>
#include <math.h>

#include "op_test.h"
#include "rt_broadcast.h"
#include "rt_cpu_broadcast.h"

#define DIMS(...) ((int64_t[]){__VA_ARGS__})
#define IN(a) ((const rt_tensor *const *)(a))

/* A tensor of the given shape holding a copy of data (NULL: zeros). */
static rt_tensor *tensor(rt_dtype dt, int rank, const int64_t *dims, const void *data)
{
    rt_tensor *t = make_tensor(dt, rank, dims);
    if (data)
        memcpy(t->data, data, rt_tensor_nbytes(t));
    return t;
}

static rt_tensor *scalar_f32(float v)
{
    return tensor(RT_DTYPE_F32, 0, NULL, &v);
}

static void free_all(rt_tensor **t, int n)
{
    for (int i = 0; i < n; i++)
        rt_tensor_free(t[i]);
}

/* Expects r to have succeeded with output 0 of this dtype and shape. */
static void assert_out(const op_run *r, rt_dtype dt, int rank, const int64_t *dims)
{
    if (r->status != RT_OK)
        fail_msg("op failed: %s", r->err.text);
    assert_int_equal(r->out[0]->dtype, dt);
    assert_shape(r->out[0], rank, dims);
}

/* Float equality that also holds for two NaNs. */
static void assert_same_float(double got, double want)
{
    if (isnan(want))
        assert_true(isnan(got));
    else if (got != want)
        fail_msg("got %.9g, want %.9g", got, want);
}

/* Within rel of want (relative), for results of vectorized libm variants. */
static void assert_close_float(double got, double want, double rel)
{
    if (isnan(want) || isinf(want) || want == 0)
        assert_same_float(got, want);
    else if (fabs(got - want) > rel * fabs(want))
        fail_msg("got %.9g, want %.9g", got, want);
}

/* ---- broadcasting ---- */

static void test_broadcast_shapes(void **state)
{
    (void)state;
    struct {
        int ra, rb;
        int64_t a[4], b[4];
        int rr;
        int64_t r[4];
    } ok[] = {
        {3, 2, {2, 3, 4}, {3, 1}, 3, {2, 3, 4}},
        {0, 1, {0}, {5}, 1, {5}},
        {2, 2, {2, 1}, {1, 3}, 2, {2, 3}},
        {2, 2, {0, 3}, {1, 3}, 2, {0, 3}},
        {1, 4, {1}, {2, 1, 3, 1}, 4, {2, 1, 3, 1}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        rt_shape a = rt_shape_make(ok[i].ra, ok[i].a), b = rt_shape_make(ok[i].rb, ok[i].b), r;
        rt_shape want = rt_shape_make(ok[i].rr, ok[i].r);
        assert_int_equal(rt_broadcast_shapes(&a, &b, &r, NULL), RT_OK);
        assert_true(rt_shape_equal(&r, &want));
        assert_int_equal(rt_broadcast_shapes(&b, &a, &r, NULL), RT_OK);
        assert_true(rt_shape_equal(&r, &want));
    }
    rt_shape a = rt_shape_make(2, DIMS(2, 3)), b = rt_shape_make(1, DIMS(4)), r;
    rt_error err = {0};
    assert_int_equal(rt_broadcast_shapes(&a, &b, &r, &err), RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "[2,3]"));
    assert_non_null(strstr(err.text, "[4]"));
}

static void test_bcast_plan_merges_dims(void **state)
{
    (void)state;
    rt_shape out = rt_shape_make(3, DIMS(2, 3, 4));
    rt_shape same = out, row = rt_shape_make(1, DIMS(4)), col = rt_shape_make(2, DIMS(3, 1));
    rt_bcast b;
    rt_bcast_init(&b, &out, (const rt_shape *[]){&same, &same}, 2);
    assert_int_equal(b.rank, 1);
    assert_int_equal(b.inner, 24);
    rt_bcast_init(&b, &out, (const rt_shape *[]){&same, &row}, 2);
    assert_int_equal(b.rank, 2);
    assert_int_equal(b.rows, 6);
    assert_int_equal(b.strides[1][0], 0);
    assert_int_equal(b.strides[1][1], 1);
    rt_bcast_init(&b, &out, (const rt_shape *[]){&same, &col}, 2);
    assert_int_equal(b.rank, 3);
    assert_int_equal(b.inner, 4);
    assert_int_equal(b.strides[1][2], 0);
}

/* Large broadcast adds that take the parallel path and cut runs into chunks, against
 * index arithmetic. */
static void test_broadcast_add_large(void **state)
{
    (void)state;
    struct {
        int ra, rb, ro;
        int64_t a[3], b[3], out[3];
    } cases[] = {
        {2, 1, 2, {3, 40000}, {40000}, {3, 40000}},
        {2, 2, 2, {70000, 1}, {1, 3}, {70000, 3}},
        {3, 3, 3, {2, 1, 50000}, {1, 3, 1}, {2, 3, 50000}},
    };
    for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
        rt_tensor *in[2] = {tensor(RT_DTYPE_F32, cases[c].ra, cases[c].a, NULL),
                            tensor(RT_DTYPE_F32, cases[c].rb, cases[c].b, NULL)};
        for (int k = 0; k < 2; k++)
            for (int64_t i = 0; i < rt_tensor_numel(in[k]); i++)
                ((float *)in[k]->data)[i] = (float)(k ? i * 1000 : i);
        op_run r = run_op_opset(RT_OP_ADD, 14, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
        assert_out(&r, RT_DTYPE_F32, cases[c].ro, cases[c].out);
        const rt_shape *o = &r.out[0]->shape;
        int64_t n = rt_tensor_numel(r.out[0]);
        for (int64_t i = 0; i < n; i++) {
            /* the flat index into each input, from the output's multi-index */
            int64_t rem = i, ia = 0, ib = 0, sa = 1, sb = 1;
            for (int d = o->rank - 1; d >= 0; d--) {
                int64_t idx = rem % o->dims[d];
                rem /= o->dims[d];
                int da = d - (o->rank - in[0]->shape.rank), db = d - (o->rank - in[1]->shape.rank);
                if (da >= 0) {
                    ia += (in[0]->shape.dims[da] == 1 ? 0 : idx) * sa;
                    sa *= in[0]->shape.dims[da];
                }
                if (db >= 0) {
                    ib += (in[1]->shape.dims[db] == 1 ? 0 : idx) * sb;
                    sb *= in[1]->shape.dims[db];
                }
            }
            if (((float *)r.out[0]->data)[i] != (float)ia + (float)(ib * 1000))
                fail_msg("case %zu element %lld", c, (long long)i);
        }
        op_run_free(&r);
        free_all(in, 2);
    }
}

/* ---- binary ops ---- */

static void test_binary_f32_broadcast(void **state)
{
    (void)state;
    float a[24], b[3] = {0.5f, -2.0f, 3.0f};
    for (int i = 0; i < 24; i++)
        a[i] = (float)(i - 11) * 0.75f;
    rt_tensor *in[2] = {tensor(RT_DTYPE_F32, 3, DIMS(2, 3, 4), a),
                        tensor(RT_DTYPE_F32, 2, DIMS(3, 1), b)};
    rt_op ops[] = {RT_OP_ADD, RT_OP_SUB, RT_OP_MUL, RT_OP_DIV, RT_OP_POW};
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        op_run r = run_op_opset(ops[k], 14, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
        assert_out(&r, RT_DTYPE_F32, 3, DIMS(2, 3, 4));
        for (int i = 0; i < 24; i++) {
            float x = a[i], y = b[(i / 4) % 3], want;
            switch (ops[k]) {
            case RT_OP_ADD: want = x + y; break;
            case RT_OP_SUB: want = x - y; break;
            case RT_OP_MUL: want = x * y; break;
            case RT_OP_DIV: want = x / y; break;
            default: want = powf(x, y); break;
            }
            assert_close_float(((float *)r.out[0]->data)[i], want, 1e-6);
        }
        op_run_free(&r);
    }
    free_all(in, 2);
}

static void test_binary_integers(void **state)
{
    (void)state;
    /* I32 division truncates toward zero; x/0 is 0 and INT32_MIN/-1 wraps */
    int32_t x[] = {-7, 7, -7, 5, INT32_MIN, 9};
    int32_t y[] = {2, -2, -2, 0, -1, 3};
    int32_t want_div[] = {-3, -3, 3, 0, INT32_MIN, 3};
    rt_tensor *in[2] = {tensor(RT_DTYPE_I32, 1, DIMS(6), x),
                        tensor(RT_DTYPE_I32, 1, DIMS(6), y)};
    op_run r = run_op_opset(RT_OP_DIV, 14, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
    assert_out(&r, RT_DTYPE_I32, 1, DIMS(6));
    assert_memory_equal(r.out[0]->data, want_div, sizeof want_div);
    op_run_free(&r);
    free_all(in, 2);

    /* U8 wraps modulo 256, with a scalar operand */
    uint8_t u[] = {3, 200, 255, 0}, five = 5;
    rt_tensor *u8[2] = {tensor(RT_DTYPE_U8, 1, DIMS(4), u), tensor(RT_DTYPE_U8, 0, NULL, &five)};
    rt_op ops[] = {RT_OP_SUB, RT_OP_MUL, RT_OP_ADD, RT_OP_DIV};
    for (size_t k = 0; k < 4; k++) {
        r = run_op_opset(ops[k], 14, rt_cpu_binary, NULL, 0, IN(u8), 2, 1);
        assert_out(&r, RT_DTYPE_U8, 1, DIMS(4));
        for (int i = 0; i < 4; i++) {
            unsigned v = ops[k] == RT_OP_SUB ? u[i] - 5u : ops[k] == RT_OP_MUL ? u[i] * 5u
                       : ops[k] == RT_OP_ADD ? u[i] + 5u : u[i] / 5u;
            assert_int_equal(((uint8_t *)r.out[0]->data)[i], (uint8_t)v);
        }
        op_run_free(&r);
    }
    free_all(u8, 2);

    /* I64 multiplication wraps instead of being undefined */
    int64_t big[] = {INT64_MAX, -3}, two[] = {2, INT64_MIN};
    rt_tensor *i64[2] = {tensor(RT_DTYPE_I64, 1, DIMS(2), big),
                         tensor(RT_DTYPE_I64, 1, DIMS(2), two)};
    r = run_op_opset(RT_OP_MUL, 14, rt_cpu_binary, NULL, 0, IN(i64), 2, 1);
    assert_out(&r, RT_DTYPE_I64, 1, DIMS(2));
    assert_int_equal(((int64_t *)r.out[0]->data)[0], -2);
    assert_int_equal(((int64_t *)r.out[0]->data)[1], INT64_MIN);
    op_run_free(&r);
    free_all(i64, 2);
}

static void test_compare(void **state)
{
    (void)state;
    float a[] = {1.0f, NAN, 2.0f, -0.0f}, b[] = {1.0f, NAN, 3.0f, 0.0f};
    rt_tensor *in[2] = {tensor(RT_DTYPE_F32, 1, DIMS(4), a),
                        tensor(RT_DTYPE_F32, 1, DIMS(4), b)};
    struct {
        rt_op op;
        uint8_t want[4];
    } cases[] = {
        {RT_OP_EQUAL, {1, 0, 0, 1}}, {RT_OP_LESS, {0, 0, 1, 0}}, {RT_OP_GREATER, {0, 0, 0, 0}},
    };
    for (size_t k = 0; k < 3; k++) {
        op_run r = run_op_opset(cases[k].op, 13, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
        assert_out(&r, RT_DTYPE_BOOL, 1, DIMS(4));
        assert_memory_equal(r.out[0]->data, cases[k].want, 4);
        op_run_free(&r);
    }
    free_all(in, 2);

    /* BOOL Equal broadcasts [2,1] against [3] */
    uint8_t p[] = {1, 0}, q[] = {1, 0, 1}, want[] = {1, 0, 1, 0, 1, 0};
    rt_tensor *bl[2] = {tensor(RT_DTYPE_BOOL, 2, DIMS(2, 1), p),
                        tensor(RT_DTYPE_BOOL, 1, DIMS(3), q)};
    op_run r = run_op_opset(RT_OP_EQUAL, 13, rt_cpu_binary, NULL, 0, IN(bl), 2, 1);
    assert_out(&r, RT_DTYPE_BOOL, 2, DIMS(2, 3));
    assert_memory_equal(r.out[0]->data, want, 6);
    op_run_free(&r);
    free_all(bl, 2);
}

static void test_pow_mixed_dtypes(void **state)
{
    (void)state;
    float base[] = {1.5f, 2.0f, -3.0f};
    int64_t iexp[] = {2, 10, 3};
    rt_tensor *in[2] = {tensor(RT_DTYPE_F32, 1, DIMS(3), base),
                        tensor(RT_DTYPE_I64, 1, DIMS(3), iexp)};
    op_run r = run_op_opset(RT_OP_POW, 15, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(3));
    for (int i = 0; i < 3; i++)
        assert_same_float(((float *)r.out[0]->data)[i], powf(base[i], (float)iexp[i]));
    op_run_free(&r);
    free_all(in, 2);

    /* integer base, float exponent: the result truncates to the base's dtype */
    int32_t ib[] = {2, 3, 10};
    float fe[] = {5.0f, 0.5f, -1.0f};
    rt_tensor *in2[2] = {tensor(RT_DTYPE_I32, 1, DIMS(3), ib),
                         tensor(RT_DTYPE_F32, 1, DIMS(3), fe)};
    r = run_op_opset(RT_OP_POW, 15, rt_cpu_binary, NULL, 0, IN(in2), 2, 1);
    assert_out(&r, RT_DTYPE_I32, 1, DIMS(3));
    for (int i = 0; i < 3; i++)
        assert_int_equal(((int32_t *)r.out[0]->data)[i], (int32_t)pow(ib[i], fe[i]));
    op_run_free(&r);
    free_all(in2, 2);

    /* I64 ^ I64 is exact beyond double's 53 bits */
    int64_t three = 3, e39 = 39, want = 1;
    for (int i = 0; i < 39; i++)
        want *= 3;
    rt_tensor *in3[2] = {tensor(RT_DTYPE_I64, 0, NULL, &three),
                         tensor(RT_DTYPE_I64, 0, NULL, &e39)};
    r = run_op_opset(RT_OP_POW, 15, rt_cpu_binary, NULL, 0, IN(in3), 2, 1);
    assert_out(&r, RT_DTYPE_I64, 0, NULL);
    assert_int_equal(*(int64_t *)r.out[0]->data, want);
    op_run_free(&r);
    free_all(in3, 2);
}

static void test_half_binary(void **state)
{
    (void)state;
    float fa[] = {1.5f, -2.25f, 1000.0f, 0.1f}, fb[] = {0.5f, 4.0f, -3.0f, 0.2f};
    rt_dtype dts[] = {RT_DTYPE_F16, RT_DTYPE_BF16};
    for (int d = 0; d < 2; d++) {
        bool f16 = dts[d] == RT_DTYPE_F16;
        uint16_t ha[4], hb[4];
        for (int i = 0; i < 4; i++) {
            ha[i] = f16 ? rt_f32_to_f16(fa[i]) : rt_f32_to_bf16(fa[i]);
            hb[i] = f16 ? rt_f32_to_f16(fb[i]) : rt_f32_to_bf16(fb[i]);
        }
        rt_tensor *in[2] = {tensor(dts[d], 1, DIMS(4), ha), tensor(dts[d], 1, DIMS(4), hb)};
        op_run r = run_op_opset(RT_OP_MUL, 14, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
        assert_out(&r, dts[d], 1, DIMS(4));
        for (int i = 0; i < 4; i++) {
            float x = f16 ? rt_f16_to_f32(ha[i]) : rt_bf16_to_f32(ha[i]);
            float y = f16 ? rt_f16_to_f32(hb[i]) : rt_bf16_to_f32(hb[i]);
            uint16_t want = f16 ? rt_f32_to_f16(x * y) : rt_f32_to_bf16(x * y);
            assert_int_equal(((uint16_t *)r.out[0]->data)[i], want);
        }
        op_run_free(&r);
        r = run_op_opset(RT_OP_LESS, 13, rt_cpu_binary, NULL, 0, IN(in), 2, 1);
        assert_out(&r, RT_DTYPE_BOOL, 1, DIMS(4));
        for (int i = 0; i < 4; i++)
            assert_int_equal(((uint8_t *)r.out[0]->data)[i], fa[i] < fb[i]);
        op_run_free(&r);
        free_all(in, 2);
    }
}

/* ---- Where, Min, Max ---- */

static void test_where(void **state)
{
    (void)state;
    uint8_t c[] = {1, 0};
    int64_t x[] = {10, 20, 30}, y = -1;
    rt_tensor *in[3] = {tensor(RT_DTYPE_BOOL, 2, DIMS(2, 1), c),
                        tensor(RT_DTYPE_I64, 2, DIMS(1, 3), x), tensor(RT_DTYPE_I64, 0, NULL, &y)};
    op_run r = run_op_opset(RT_OP_WHERE, 16, rt_cpu_where, NULL, 0, IN(in), 3, 1);
    assert_out(&r, RT_DTYPE_I64, 2, DIMS(2, 3));
    int64_t want[] = {10, 20, 30, -1, -1, -1};
    assert_memory_equal(r.out[0]->data, want, sizeof want);
    op_run_free(&r);
    free_all(in, 3);

    /* strings are selected as whole elements */
    rt_str sx[] = {{"a", 1}, {"bb", 2}}, sy[] = {{"ccc", 3}, {"", 0}};
    uint8_t c2[] = {0, 1};
    rt_tensor *s[3] = {tensor(RT_DTYPE_BOOL, 1, DIMS(2), c2),
                       tensor(RT_DTYPE_BYTES, 1, DIMS(2), sx),
                       tensor(RT_DTYPE_BYTES, 1, DIMS(2), sy)};
    r = run_op_opset(RT_OP_WHERE, 16, rt_cpu_where, NULL, 0, IN(s), 3, 1);
    assert_out(&r, RT_DTYPE_BYTES, 1, DIMS(2));
    const rt_str *o = r.out[0]->data;
    assert_true(o[0].len == 3 && memcmp(o[0].ptr, "ccc", 3) == 0);
    assert_true(o[1].len == 2 && memcmp(o[1].ptr, "bb", 2) == 0);
    op_run_free(&r);
    free_all(s, 3);

    float f = 1.0f;
    rt_tensor *bad[3] = {scalar_f32(f), scalar_f32(f), scalar_f32(f)};
    r = run_op_opset(RT_OP_WHERE, 16, rt_cpu_where, NULL, 0, IN(bad), 3, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    op_run_free(&r);
    free_all(bad, 3);
}

static void test_min_max(void **state)
{
    (void)state;
    /* three inputs broadcast to [2,3]; NaN from any input wins */
    float a[] = {1, 5, NAN, -1, 0, 7}, b[] = {2, NAN, 0}, c = 3;
    rt_tensor *in[3] = {tensor(RT_DTYPE_F32, 2, DIMS(2, 3), a),
                        tensor(RT_DTYPE_F32, 1, DIMS(3), b), scalar_f32(c)};
    rt_op ops[] = {RT_OP_MIN, RT_OP_MAX};
    for (int k = 0; k < 2; k++) {
        op_run r = run_op_opset(ops[k], 13, rt_cpu_variadic, NULL, 0, IN(in), 3, 1);
        assert_out(&r, RT_DTYPE_F32, 2, DIMS(2, 3));
        for (int i = 0; i < 6; i++) {
            float x = a[i], y = b[i % 3];
            float want = isnan(x) || isnan(y) ? NAN : ops[k] == RT_OP_MIN ? fminf(fminf(x, y), c)
                                                                          : fmaxf(fmaxf(x, y), c);
            assert_same_float(((float *)r.out[0]->data)[i], want);
        }
        op_run_free(&r);
    }
    /* one input: a copy */
    op_run r = run_op_opset(RT_OP_MAX, 13, rt_cpu_variadic, NULL, 0, IN(in), 1, 1);
    assert_out(&r, RT_DTYPE_F32, 2, DIMS(2, 3));
    assert_memory_equal(r.out[0]->data, a, sizeof a);
    op_run_free(&r);
    free_all(in, 3);

    /* U64 compares as unsigned */
    uint64_t u[] = {UINT64_MAX, 1}, v[] = {2, 3};
    rt_tensor *uin[2] = {tensor(RT_DTYPE_U64, 1, DIMS(2), u), tensor(RT_DTYPE_U64, 1, DIMS(2), v)};
    r = run_op_opset(RT_OP_MAX, 13, rt_cpu_variadic, NULL, 0, IN(uin), 2, 1);
    assert_out(&r, RT_DTYPE_U64, 1, DIMS(2));
    const uint64_t *um = r.out[0]->data;
    assert_true(um[0] == UINT64_MAX && um[1] == 3);
    op_run_free(&r);
    free_all(uin, 2);
}

/* ---- unary ops ---- */

static void test_unary_f32(void **state)
{
    (void)state;
    float x[] = {-3.5f, -1.0f, -0.25f, 0.0f, 0.3f, 1.0f, 2.5f, 40.0f, NAN};
    const int n = 9;
    rt_tensor *in[1] = {tensor(RT_DTYPE_F32, 1, DIMS(n), x)};
    rt_op ops[] = {RT_OP_SQRT, RT_OP_EXP, RT_OP_LOG, RT_OP_NEG, RT_OP_ABS, RT_OP_RECIPROCAL,
                   RT_OP_RELU, RT_OP_LEAKY_RELU, RT_OP_SIGMOID, RT_OP_TANH, RT_OP_ERF};
    rt_attr alpha = attr_float("alpha", 0.2f);
    for (size_t k = 0; k < sizeof ops / sizeof ops[0]; k++) {
        bool leaky = ops[k] == RT_OP_LEAKY_RELU;
        op_run r = run_op_opset(ops[k], 13, rt_cpu_unary, leaky ? &alpha : NULL, leaky,
                          IN(in), 1, 1);
        assert_out(&r, RT_DTYPE_F32, 1, DIMS(n));
        for (int i = 0; i < n; i++) {
            float v = x[i], want;
            switch (ops[k]) {
            case RT_OP_SQRT: want = sqrtf(v); break;
            case RT_OP_EXP: want = expf(v); break;
            case RT_OP_LOG: want = logf(v); break;
            case RT_OP_NEG: want = -v; break;
            case RT_OP_ABS: want = fabsf(v); break;
            case RT_OP_RECIPROCAL: want = 1.0f / v; break;
            case RT_OP_RELU: want = isnan(v) ? v : fmaxf(v, 0.0f); break;
            case RT_OP_LEAKY_RELU: want = v < 0 ? 0.2f * v : v; break;
            case RT_OP_SIGMOID: want = 1.0f / (1.0f + expf(-v)); break;
            case RT_OP_TANH: want = tanhf(v); break;
            default: want = erff(v); break;
            }
            assert_close_float(((float *)r.out[0]->data)[i], want, 1e-6);
        }
        op_run_free(&r);
    }
    free_all(in, 1);
}

static void test_clip(void **state)
{
    (void)state;
    float x[] = {-3.0f, -1.0f, 0.5f, 2.0f, 5.0f, NAN, INFINITY};
    rt_tensor *in[3] = {tensor(RT_DTYPE_F32, 1, DIMS(7), x), scalar_f32(-1.5f), scalar_f32(1.0f)};
    /* opset 11+: bounds as inputs; NaN passes through */
    op_run r = run_op_opset(RT_OP_CLIP, 13, rt_cpu_unary, NULL, 0, IN(in), 3, 1);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(7));
    float want[] = {-1.5f, -1.0f, 0.5f, 1.0f, 1.0f, NAN, 1.0f};
    for (int i = 0; i < 7; i++)
        assert_same_float(((float *)r.out[0]->data)[i], want[i]);
    op_run_free(&r);

    /* only max given (min omitted) */
    const rt_tensor *only_max[3] = {in[0], NULL, in[2]};
    r = run_op_opset(RT_OP_CLIP, 13, rt_cpu_unary, NULL, 0, only_max, 3, 1);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(7));
    for (int i = 0; i < 7; i++)
        assert_same_float(((float *)r.out[0]->data)[i], isnan(x[i]) ? x[i] : fminf(x[i], 1.0f));
    op_run_free(&r);

    /* min > max: everything becomes max */
    const rt_tensor *swapped[3] = {in[0], in[2], in[1]};
    r = run_op_opset(RT_OP_CLIP, 13, rt_cpu_unary, NULL, 0, swapped, 3, 1);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(7));
    for (int i = 0; i < 5; i++)
        assert_same_float(((float *)r.out[0]->data)[i], -1.5f);
    op_run_free(&r);

    /* opset 6: bounds as attributes, an absent one defaults to +-FLT_MAX */
    rt_attr lo = attr_float("min", -2.0f);
    r = run_op_opset(RT_OP_CLIP, 6, rt_cpu_unary, &lo, 1, IN(in), 1, 1);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(7));
    float want6[] = {-2.0f, -1.0f, 0.5f, 2.0f, 5.0f, NAN, FLT_MAX};
    for (int i = 0; i < 7; i++)
        assert_same_float(((float *)r.out[0]->data)[i], want6[i]);
    op_run_free(&r);
    free_all(in, 3);

    /* integers: I8 with only a max */
    int8_t xi[] = {-128, 0, 5, 127}, hi = 4;
    rt_tensor *ii[3] = {tensor(RT_DTYPE_I8, 1, DIMS(4), xi), NULL,
                        tensor(RT_DTYPE_I8, 0, NULL, &hi)};
    r = run_op_opset(RT_OP_CLIP, 13, rt_cpu_unary, NULL, 0, IN(ii), 3, 1);
    assert_out(&r, RT_DTYPE_I8, 1, DIMS(4));
    int8_t wi[] = {-128, 0, 4, 4};
    assert_memory_equal(r.out[0]->data, wi, 4);
    op_run_free(&r);
    rt_tensor_free(ii[0]);
    rt_tensor_free(ii[2]);
}

static void test_unary_integers_and_bool(void **state)
{
    (void)state;
    int8_t x[] = {-128, -5, 0, 7, 127};
    rt_tensor *in[1] = {tensor(RT_DTYPE_I8, 1, DIMS(5), x)};
    rt_op ops[] = {RT_OP_NEG, RT_OP_ABS, RT_OP_RELU};
    for (int k = 0; k < 3; k++) {
        op_run r = run_op_opset(ops[k], 14, rt_cpu_unary, NULL, 0, IN(in), 1, 1);
        assert_out(&r, RT_DTYPE_I8, 1, DIMS(5));
        for (int i = 0; i < 5; i++) {
            int v = x[i];
            int want = ops[k] == RT_OP_NEG ? -v : ops[k] == RT_OP_ABS ? abs(v) : (v < 0 ? 0 : v);
            assert_int_equal(((int8_t *)r.out[0]->data)[i], (int8_t)want); /* -(-128) wraps */
        }
        op_run_free(&r);
    }
    free_all(in, 1);

    uint8_t b[] = {1, 0, 0, 1};
    rt_tensor *bin[1] = {tensor(RT_DTYPE_BOOL, 2, DIMS(2, 2), b)};
    op_run r = run_op_opset(RT_OP_NOT, 1, rt_cpu_unary, NULL, 0, IN(bin), 1, 1);
    assert_out(&r, RT_DTYPE_BOOL, 2, DIMS(2, 2));
    uint8_t want[] = {0, 1, 1, 0};
    assert_memory_equal(r.out[0]->data, want, 4);
    op_run_free(&r);
    free_all(bin, 1);
}

static void test_unary_half(void **state)
{
    (void)state;
    float v[] = {0.0f, 0.5f, 2.0f, 3.0f, 100.0f, 1e-3f};
    uint16_t h[6];
    for (int i = 0; i < 6; i++)
        h[i] = rt_f32_to_f16(v[i]);
    rt_tensor *in[1] = {tensor(RT_DTYPE_F16, 1, DIMS(6), h)};
    op_run r = run_op_opset(RT_OP_SQRT, 13, rt_cpu_unary, NULL, 0, IN(in), 1, 1);
    assert_out(&r, RT_DTYPE_F16, 1, DIMS(6));
    for (int i = 0; i < 6; i++)
        assert_int_equal(((uint16_t *)r.out[0]->data)[i],
                         rt_f32_to_f16(sqrtf(rt_f16_to_f32(h[i]))));
    op_run_free(&r);
    free_all(in, 1);
}

static void test_infer_rejects(void **state)
{
    (void)state;
    int32_t i = 4;
    float f = 1.0f;
    rt_tensor *ti = tensor(RT_DTYPE_I32, 0, NULL, &i), *tf = scalar_f32(f);
    const rt_tensor *mixed[2] = {tf, ti};
    op_run r = run_op_opset(RT_OP_SQRT, 13, rt_cpu_unary, NULL, 0, IN(&ti), 1, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(r.err.text, "Sqrt"));
    r = run_op_opset(RT_OP_NOT, 1, rt_cpu_unary, NULL, 0, IN(&tf), 1, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    r = run_op_opset(RT_OP_ADD, 14, rt_cpu_binary, NULL, 0, mixed, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "I32"));
    r = run_op_opset(RT_OP_ADD, 14, rt_cpu_binary, NULL, 0, mixed, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(ti);
    rt_tensor_free(tf);
}

/* ---- Cast ---- */

static op_run run_cast(int opset, rt_dtype to, const rt_tensor *x)
{
    rt_attr a = attr_int("to", to);
    return run_op_opset(RT_OP_CAST, opset, rt_cpu_cast, &a, 1, &x, 1, 1);
}

static void test_cast_numeric(void **state)
{
    (void)state;
    float f[] = {2.7f, -2.7f, 0.0f, -0.5f, NAN, 65504.0f, 1e6f};
    rt_tensor *x = tensor(RT_DTYPE_F32, 1, DIMS(7), f);
    op_run r = run_cast(13, RT_DTYPE_I32, x);
    assert_out(&r, RT_DTYPE_I32, 1, DIMS(7));
    for (int i = 0; i < 4; i++)
        assert_int_equal(((int32_t *)r.out[0]->data)[i], (int32_t)f[i]);
    op_run_free(&r);
    r = run_cast(13, RT_DTYPE_BOOL, x);
    uint8_t wb[] = {1, 1, 0, 1, 1, 1, 1};
    assert_memory_equal(r.out[0]->data, wb, 7);
    op_run_free(&r);
    r = run_cast(13, RT_DTYPE_F16, x);
    for (int i = 0; i < 7; i++)
        assert_int_equal(((uint16_t *)r.out[0]->data)[i], rt_f32_to_f16(f[i]));
    op_run_free(&r);
    rt_tensor_free(x);

    /* I64 to U8 keeps the low byte */
    int64_t big[] = {300, -1};
    x = tensor(RT_DTYPE_I64, 1, DIMS(2), big);
    r = run_cast(13, RT_DTYPE_U8, x);
    assert_int_equal(((uint8_t *)r.out[0]->data)[0], 44);
    assert_int_equal(((uint8_t *)r.out[0]->data)[1], 255);
    op_run_free(&r);
    rt_tensor_free(x);

    /* F64 to F16 rounds once: 1 + 2^-11 + 2^-40 is above the midpoint between the halves
     * 1 and 1 + 2^-10, although its nearest float is the midpoint itself */
    double d = 1.0 + ldexp(1.0, -11) + ldexp(1.0, -40);
    x = tensor(RT_DTYPE_F64, 0, NULL, &d);
    r = run_cast(13, RT_DTYPE_F16, x);
    assert_int_equal(*(uint16_t *)r.out[0]->data, 0x3c01);
    op_run_free(&r);
    rt_tensor_free(x);

    /* F32 to BF16: truncation in ONNX's tests before opset 19, nearest even from 19 on */
    uint32_t bits = 0x3f808001u;
    float fb;
    memcpy(&fb, &bits, sizeof fb);
    x = tensor(RT_DTYPE_F32, 0, NULL, &fb);
    r = run_cast(13, RT_DTYPE_BF16, x);
    assert_int_equal(*(uint16_t *)r.out[0]->data, 0x3f80);
    op_run_free(&r);
    r = run_cast(19, RT_DTYPE_BF16, x);
    assert_int_equal(*(uint16_t *)r.out[0]->data, 0x3f81);
    op_run_free(&r);
    rt_tensor_free(x);
}

static void assert_str(const rt_str *s, const char *want)
{
    if (s->len != strlen(want) || memcmp(s->ptr, want, s->len) != 0)
        fail_msg("got '%.*s', want '%s'", (int)s->len, s->ptr, want);
}

/* Cast to BYTES run directly with the caller's context, which owns the strings the
 * kernel makes (run_op releases its context before returning). */
static rt_tensor *cast_to_strings(rt_kernel_ctx *ctx, const rt_tensor *x)
{
    rt_attr to = attr_int("to", RT_DTYPE_BYTES);
    int io[1] = {0};
    rt_node node = {.name = "n", .op = RT_OP_CAST, .opset = 13, .n_inputs = 1, .inputs = io,
                    .n_outputs = 1, .outputs = io, .n_attrs = 1, .attrs = &to};
    rt_tensor *y = make_tensor(RT_DTYPE_BYTES, x->shape.rank, x->shape.dims);
    rt_error err;
    if (rt_cpu_cast(ctx, &node, &x, 1, &y, 1, &err) != RT_OK)
        fail_msg("Cast failed: %s", err.text);
    return y;
}

static void test_cast_to_string(void **state)
{
    (void)state;
    rt_kernel_ctx ctx = {.threads = 1};
    /* numpy's str() of these float32 values: shortest round-trip digits, positional for
     * 1e-4 <= |v| < 1e16 */
    float f[] = {0.9767611f, 1.0f, 100000.0f, 1e-5f, 1.5e20f, -0.0f, NAN, -INFINITY,
                 0.0001f, 123456789.0f, 0.039187793f, 0.5f};
    const char *want[] = {"0.9767611", "1.0", "100000.0", "1e-05", "1.5e+20", "-0.0", "nan",
                          "-inf", "1e-04", "123456790.0", "0.039187793", "0.5"};
    rt_tensor *x = tensor(RT_DTYPE_F32, 1, DIMS(12), f), *y = cast_to_strings(&ctx, x);
    for (int i = 0; i < 12; i++)
        assert_str(&((rt_str *)y->data)[i], want[i]);
    free_all((rt_tensor *[]){x, y}, 2);

    double d[] = {0.1, 1.0 / 3.0};
    x = tensor(RT_DTYPE_F64, 1, DIMS(2), d);
    y = cast_to_strings(&ctx, x);
    assert_str(&((rt_str *)y->data)[0], "0.1");
    assert_str(&((rt_str *)y->data)[1], "0.3333333333333333");
    free_all((rt_tensor *[]){x, y}, 2);

    int64_t i[] = {-42, INT64_MAX};
    x = tensor(RT_DTYPE_I64, 1, DIMS(2), i);
    y = cast_to_strings(&ctx, x);
    assert_str(&((rt_str *)y->data)[0], "-42");
    assert_str(&((rt_str *)y->data)[1], "9223372036854775807");
    free_all((rt_tensor *[]){x, y}, 2);
    rt_kernel_ctx_release(&ctx);
}

static void test_cast_from_string(void **state)
{
    (void)state;
    /* only len bytes count: the last element is "1e3" */
    rt_str s[] = {{"0.5", 3}, {" 2.25", 5}, {"NaN", 3}, {"-INF", 4}, {"+INF", 4}, {"1e3xyz", 3}};
    rt_tensor *x = tensor(RT_DTYPE_BYTES, 1, DIMS(6), s);
    op_run r = run_cast(13, RT_DTYPE_F32, x);
    assert_out(&r, RT_DTYPE_F32, 1, DIMS(6));
    float want[] = {0.5f, 2.25f, NAN, -INFINITY, INFINITY, 1000.0f};
    for (int i = 0; i < 6; i++)
        assert_same_float(((float *)r.out[0]->data)[i], want[i]);
    op_run_free(&r);
    rt_tensor_free(x);

    rt_str si[] = {{"42", 2}, {"-7", 2}, {"3.9", 3}};
    x = tensor(RT_DTYPE_BYTES, 1, DIMS(3), si);
    r = run_cast(13, RT_DTYPE_I32, x);
    int32_t wi[] = {42, -7, 3};
    assert_memory_equal(r.out[0]->data, wi, sizeof wi);
    op_run_free(&r);
    rt_tensor_free(x);

    rt_str bad[] = {{"abc", 3}};
    x = tensor(RT_DTYPE_BYTES, 1, DIMS(1), bad);
    r = run_cast(13, RT_DTYPE_F32, x);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "abc"));
    op_run_free(&r);
    rt_tensor_free(x);
}

/* ---- Identity and Dropout ---- */

static void test_dropout(void **state)
{
    (void)state;
    float x[6] = {1, -2, 3, -4, 5, -6};
    float half = 0.5f, zero = 0.0f;
    uint8_t yes = 1;
    rt_tensor *in[3] = {tensor(RT_DTYPE_F32, 2, DIMS(2, 3), x), scalar_f32(half),
                        tensor(RT_DTYPE_BOOL, 0, NULL, &yes)};
    /* inference: a copy and a mask of ones */
    op_run r = run_op_opset(RT_OP_DROPOUT, 13, rt_cpu_copy, NULL, 0, IN(in), 2, 2);
    assert_out(&r, RT_DTYPE_F32, 2, DIMS(2, 3));
    assert_memory_equal(r.out[0]->data, x, sizeof x);
    assert_int_equal(r.out[1]->dtype, RT_DTYPE_BOOL);
    assert_memory_equal(r.out[1]->data, ((uint8_t[]){1, 1, 1, 1, 1, 1}), 6);
    op_run_free(&r);

    /* training with ratio 0.5 and seed 0: numpy.random.seed(0); uniform(size=6) gives
     * 0.549 0.715 0.603 0.545 0.424 0.646, so element 4 is dropped, the rest doubled */
    rt_attr seed = attr_int("seed", 0);
    r = run_op_opset(RT_OP_DROPOUT, 13, rt_cpu_copy, &seed, 1, IN(in), 3, 2);
    assert_out(&r, RT_DTYPE_F32, 2, DIMS(2, 3));
    uint8_t mask[] = {1, 1, 1, 1, 0, 1};
    assert_memory_equal(r.out[1]->data, mask, 6);
    for (int i = 0; i < 6; i++)
        assert_same_float(((float *)r.out[0]->data)[i], mask[i] ? 2 * x[i] : 0.0f);
    op_run_free(&r);

    /* training with ratio 0 is the identity */
    memcpy(in[1]->data, &zero, sizeof zero);
    r = run_op_opset(RT_OP_DROPOUT, 13, rt_cpu_copy, NULL, 0, IN(in), 3, 1);
    assert_out(&r, RT_DTYPE_F32, 2, DIMS(2, 3));
    assert_memory_equal(r.out[0]->data, x, sizeof x);
    op_run_free(&r);

    float one = 1.0f;
    memcpy(in[1]->data, &one, sizeof one);
    r = run_op_opset(RT_OP_DROPOUT, 13, rt_cpu_copy, NULL, 0, IN(in), 3, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    op_run_free(&r);
    free_all(in, 3);

    rt_str s[] = {{"x", 1}, {"yz", 2}};
    rt_tensor *str = tensor(RT_DTYPE_BYTES, 1, DIMS(2), s);
    r = run_op_opset(RT_OP_IDENTITY, 16, rt_cpu_copy, NULL, 0, IN(&str), 1, 1);
    assert_out(&r, RT_DTYPE_BYTES, 1, DIMS(2));
    assert_str(&((rt_str *)r.out[0]->data)[1], "yz");
    op_run_free(&r);
    rt_tensor_free(str);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_broadcast_shapes),
        cmocka_unit_test(test_bcast_plan_merges_dims),
        cmocka_unit_test(test_broadcast_add_large),
        cmocka_unit_test(test_binary_f32_broadcast),
        cmocka_unit_test(test_binary_integers),
        cmocka_unit_test(test_compare),
        cmocka_unit_test(test_pow_mixed_dtypes),
        cmocka_unit_test(test_half_binary),
        cmocka_unit_test(test_where),
        cmocka_unit_test(test_min_max),
        cmocka_unit_test(test_unary_f32),
        cmocka_unit_test(test_clip),
        cmocka_unit_test(test_unary_integers_and_bool),
        cmocka_unit_test(test_unary_half),
        cmocka_unit_test(test_infer_rejects),
        cmocka_unit_test(test_cast_numeric),
        cmocka_unit_test(test_cast_to_string),
        cmocka_unit_test(test_cast_from_string),
        cmocka_unit_test(test_dropout),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
