/* test_qdq.c: QuantizeLinear and DequantizeLinear (rt_op_qdq.c, rt_cpu_qdq.c): rounding
 * half to even, saturation to UINT8 / INT8, per-axis scales and zero points along any
 * axis (negative included), INT32 input, round trips, and the errors for parameters that
 * do not fit. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"

static op_run quantize(const rt_tensor *x, const rt_tensor *s, const rt_tensor *z, int64_t axis)
{
    rt_attr a = attr_int("axis", axis);
    const rt_tensor *in[3] = {x, s, z};
    return run_op(RT_OP_QUANTIZE_LINEAR, rt_cpu_quantize_linear, &a, 1, in, z ? 3 : 2, 1);
}

static op_run dequantize(const rt_tensor *x, const rt_tensor *s, const rt_tensor *z,
                         int64_t axis)
{
    rt_attr a = attr_int("axis", axis);
    const rt_tensor *in[3] = {x, s, z};
    return run_op(RT_OP_DEQUANTIZE_LINEAR, rt_cpu_dequantize_linear, &a, 1, in, z ? 3 : 2, 1);
}

/* Per tensor: x / 2 = 0.5, 1.5, 2.5, -0.5, -1.5 round to even; far values saturate; no
 * zero point means UINT8 about 0. */
static void test_rounding_and_saturation(void **state)
{
    (void)state;
    int64_t d6[1] = {8};
    double xv[8] = {1, 3, 5, -1, -3, 1000, -1000, 254};
    rt_tensor *x = make_values(RT_DTYPE_F32, 1, d6, xv);
    rt_tensor *s = make_values(RT_DTYPE_F32, 0, NULL, (double[]){2});
    rt_tensor *zi = make_values(RT_DTYPE_I8, 0, NULL, (double[]){-1});
    op_run r = quantize(x, s, zi, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_I8);
    double want_i8[8] = {-1, 1, 1, -1, -3, 127, -128, 126};
    assert_close(r.out[0], want_i8, 0);
    op_run_free(&r);
    r = quantize(x, s, NULL, 1);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_U8);
    double want_u8[8] = {0, 2, 2, 0, 0, 255, 0, 127};
    assert_close(r.out[0], want_u8, 0);
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(s);
    rt_tensor_free(zi);
}

/* Per axis: channel c of the axis (given as -2 of a rank-3 tensor) has its own scale and
 * zero point; dequantizing gives back every value within half its channel's step (the
 * scales and zero points cover the values, [-2, 2), without saturating). */
static void test_per_axis_round_trip(void **state)
{
    (void)state;
    int64_t xd[3] = {2, 3, 5}, cd[1] = {3};
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, xd, 5);
    rt_tensor *s = make_values(RT_DTYPE_F32, 1, cd, (double[]){0.02, 0.03, 0.05});
    rt_tensor *z = make_values(RT_DTYPE_U8, 1, cd, (double[]){128, 100, 140});
    op_run q = quantize(x, s, z, -2);
    assert_int_equal(q.status, RT_OK);
    op_run d = dequantize(q.out[0], s, z, -2);
    assert_int_equal(d.status, RT_OK);
    assert_int_equal(d.out[0]->dtype, RT_DTYPE_F32);
    for (int64_t i = 0; i < 30; i++) {
        int64_t c = i / 5 % 3;
        double step = elem(s, c), xi = elem(x, i), qi = elem(q.out[0], i);
        assert_float_equal(elem(d.out[0], i), (qi - elem(z, c)) * step, 1e-7);
        assert_true(fabs(elem(d.out[0], i) - xi) <= step / 2 + 1e-6);
    }
    op_run_free(&q);
    op_run_free(&d);
    rt_tensor_free(x);
    rt_tensor_free(s);
    rt_tensor_free(z);
}

/* DequantizeLinear of INT32 (a bias in QDQ models) with its zero point. */
static void test_dequantize_int32(void **state)
{
    (void)state;
    int64_t d[1] = {3};
    rt_tensor *x = make_values(RT_DTYPE_I32, 1, d, (double[]){-100000, 0, 7});
    rt_tensor *s = make_values(RT_DTYPE_F32, 0, NULL, (double[]){0.5});
    op_run r = dequantize(x, s, NULL, 1);
    assert_int_equal(r.status, RT_OK);
    assert_close(r.out[0], (double[]){-50000, 0, 3.5}, 0);
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(s);
}

/* Scales that fit no axis, a zero point of another shape or dtype, per-axis scales
 * before opset 13: refused with the reason. */
static void test_bad_parameters(void **state)
{
    (void)state;
    int64_t xd[2] = {2, 3}, two[1] = {2}, three[1] = {3};
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, xd, 1);
    rt_tensor *q = make_random(RT_DTYPE_I8, 2, xd, 2);
    rt_tensor *s2 = make_values(RT_DTYPE_F32, 1, two, (double[]){1, 2});
    rt_tensor *s3 = make_values(RT_DTYPE_F32, 1, three, (double[]){1, 2, 3});
    rt_tensor *z2 = make_values(RT_DTYPE_I8, 1, two, (double[]){0, 0});
    rt_tensor *zu = make_values(RT_DTYPE_U8, 1, three, (double[]){0, 0, 0});
    op_run r = quantize(x, s2, NULL, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "scales for an axis"));
    r = quantize(x, s3, z2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    r = dequantize(q, s3, zu, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "differs"));
    const rt_tensor *in[2] = {x, s3};
    rt_attr a = attr_int("axis", 1);
    r = run_op_opset(RT_OP_QUANTIZE_LINEAR, 10, rt_cpu_quantize_linear, &a, 1, in, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "opset 13"));
    rt_tensor *all[] = {x, q, s2, s3, z2, zu};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        rt_tensor_free(all[i]);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_rounding_and_saturation),
        cmocka_unit_test(test_per_axis_round_trip),
        cmocka_unit_test(test_dequantize_int32),
        cmocka_unit_test(test_bad_parameters),
    };
    return cmocka_run_group_tests_name("qdq", tests, NULL, NULL);
}
