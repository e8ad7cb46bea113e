/* test_reduce.c: unit tests for the reductions: shape inference (rt_op_reduce.c) and CPU
 * kernels (rt_cpu_reduce.c) of ReduceSum, ReduceMean, ReduceMax and ArgMax, compared with
 * a scan over every input element written here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"

#define TOL 1e-5

/* The reduction of x over the axes in `reduced`, by visiting every input element and
 * accumulating it into its output position (output laid out with the kept dims). */
static void ref_reduce(const rt_tensor *x, const bool *reduced, rt_op op, double *y, int64_t ny)
{
    double *count = calloc((size_t)ny, sizeof *count);
    assert_non_null(count);
    for (int64_t i = 0; i < ny; i++)
        y[i] = op == RT_OP_REDUCE_MAX ? -INFINITY : 0;
    for (int64_t i = 0; i < rt_tensor_numel(x); i++) {
        int64_t c[RT_MAX_RANK], o = 0;
        unravel(&x->shape, i, c);
        for (int k = 0; k < x->shape.rank; k++)
            if (!reduced[k])
                o = o * x->shape.dims[k] + c[k];
        double v = elem(x, i);
        y[o] = op == RT_OP_REDUCE_MAX ? fmax(y[o], v) : y[o] + v;
        count[o]++;
    }
    for (int64_t i = 0; op == RT_OP_REDUCE_MEAN && i < ny; i++)
        y[i] /= count[i];
    free(count);
}

static void check_reduce(rt_op op, rt_dtype dt, int rank, const int64_t *dims, const int64_t *axes,
                         int n_axes, bool keepdims, bool axes_as_input)
{
    rt_tensor *x = make_random(dt, rank, dims, 81 + (uint32_t)n_axes);
    rt_tensor *axes_t = NULL;
    rt_attr attrs[2] = {attr_int("keepdims", keepdims)};
    int n_attrs = 1;
    if (axes_as_input) {
        axes_t = make_tensor(RT_DTYPE_I64, 1, (int64_t[]){n_axes});
        memcpy(axes_t->data, axes, sizeof(int64_t) * (size_t)n_axes);
    } else if (n_axes > 0) {
        attrs[n_attrs++] = attr_ints("axes", axes, n_axes);
    }
    op_run r = run_op(op, rt_cpu_reduce, attrs, n_attrs, (const rt_tensor *[]){x, axes_t},
                      axes_t ? 2 : 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, dt);
    bool reduced[RT_MAX_RANK] = {false};
    for (int k = 0; k < rank; k++)
        reduced[k] = n_axes == 0;
    for (int i = 0; i < n_axes; i++)
        reduced[axes[i] < 0 ? axes[i] + rank : axes[i]] = true;
    int64_t ny = 1;
    int out_rank = 0;
    for (int k = 0; k < rank; k++) {
        ny *= reduced[k] ? 1 : dims[k];
        out_rank += !reduced[k] || keepdims;
    }
    assert_int_equal(r.out[0]->shape.rank, out_rank);
    assert_int_equal(rt_tensor_numel(r.out[0]), ny);
    double *ref = calloc((size_t)ny, sizeof *ref);
    assert_non_null(ref);
    ref_reduce(x, reduced, op, ref, ny);
    if (rt_dtype_is_integer(dt))
        for (int64_t i = 0; i < ny; i++)
            ref[i] = trunc(ref[i]); /* integer mean truncates like numpy's astype */
    assert_close(r.out[0], ref, rt_dtype_is_integer(dt) ? 0 : TOL);
    free(ref);
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(axes_t);
}

static void test_reduce_axes_keepdims(void **state)
{
    (void)state;
    const int64_t dims[4] = {3, 4, 5, 6};
    const rt_op ops[3] = {RT_OP_REDUCE_SUM, RT_OP_REDUCE_MEAN, RT_OP_REDUCE_MAX};
    for (int o = 0; o < 3; o++)
        for (int keep = 0; keep < 2; keep++) {
            check_reduce(ops[o], RT_DTYPE_F32, 4, dims, (int64_t[]){1}, 1, keep, false);
            /* non-adjacent axes take two passes, three blocks take three */
            check_reduce(ops[o], RT_DTYPE_F32, 4, dims, (int64_t[]){0, 2}, 2, keep, false);
            check_reduce(ops[o], RT_DTYPE_F32, 4, dims, (int64_t[]){-1, 0, 2}, 3, keep, false);
            check_reduce(ops[o], RT_DTYPE_F32, 4, dims, (int64_t[]){3}, 1, keep, false);
            check_reduce(ops[o], RT_DTYPE_F32, 4, dims, NULL, 0, keep, false);
        }
}

static void test_reduce_large_rows(void **state)
{
    (void)state;
    /* long rows and wide inner dims take the parallel and blocked paths */
    const int64_t dims[3] = {4, 700, 300};
    check_reduce(RT_OP_REDUCE_SUM, RT_DTYPE_F32, 3, dims, (int64_t[]){2}, 1, true, false);
    check_reduce(RT_OP_REDUCE_MAX, RT_DTYPE_F32, 3, dims, (int64_t[]){1}, 1, false, false);
    check_reduce(RT_OP_REDUCE_MEAN, RT_DTYPE_F64, 3, dims, (int64_t[]){0}, 1, true, false);
}

static void test_reduce_dtypes(void **state)
{
    (void)state;
    const int64_t dims[3] = {2, 3, 4};
    const rt_dtype dts[] = {RT_DTYPE_F64, RT_DTYPE_I32, RT_DTYPE_I64, RT_DTYPE_U8};
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++) {
        if (dts[d] != RT_DTYPE_U8)
            check_reduce(RT_OP_REDUCE_SUM, dts[d], 3, dims, (int64_t[]){0, 2}, 2, true, false);
        check_reduce(RT_OP_REDUCE_MAX, dts[d], 3, dims, (int64_t[]){1}, 1, false, false);
        check_reduce(RT_OP_REDUCE_MEAN, dts[d], 3, dims, (int64_t[]){2}, 1, true, false);
    }
    /* F16 through float, within half precision */
    rt_tensor *x = make_random(RT_DTYPE_F16, 2, (int64_t[]){3, 4}, 90);
    rt_attr axes = attr_ints("axes", (int64_t[]){1}, 1);
    op_run r = run_op(RT_OP_REDUCE_MEAN, rt_cpu_reduce, &axes, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    double ref[3];
    ref_reduce(x, (bool[]){false, true}, RT_OP_REDUCE_MEAN, ref, 3);
    assert_close(r.out[0], ref, 2e-3);
    op_run_free(&r);
    rt_tensor_free(x);
}

static void test_reduce_sum_axes_input(void **state)
{
    (void)state;
    const int64_t dims[3] = {3, 2, 2};
    check_reduce(RT_OP_REDUCE_SUM, RT_DTYPE_F32, 3, dims, (int64_t[]){-2}, 1, true, true);
    check_reduce(RT_OP_REDUCE_SUM, RT_DTYPE_F32, 3, dims, (int64_t[]){0, 2}, 2, false, true);

    /* empty axes: all axes, or none with noop_with_empty_axes */
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, dims, 91);
    rt_tensor *none = make_tensor(RT_DTYPE_I64, 1, (int64_t[]){0});
    double total = 0;
    for (int i = 0; i < 12; i++)
        total += elem(x, i);
    op_run r = run_op(RT_OP_REDUCE_SUM, rt_cpu_reduce, NULL, 0, (const rt_tensor *[]){x, none}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){1, 1, 1});
    assert_close(r.out[0], &total, TOL);
    op_run_free(&r);
    rt_attr noop = attr_int("noop_with_empty_axes", 1);
    r = run_op(RT_OP_REDUCE_SUM, rt_cpu_reduce, &noop, 1, (const rt_tensor *[]){x, none}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, dims);
    assert_memory_equal(r.out[0]->data, x->data, rt_tensor_nbytes(x));
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(none);
}

static void test_reduce_errors(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){3, 4}, 92);
    rt_attr repeated = attr_ints("axes", (int64_t[]){1, -1}, 2);
    op_run r = run_op(RT_OP_REDUCE_MAX, rt_cpu_reduce, &repeated, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "repeated"));
    rt_attr range = attr_ints("axes", (int64_t[]){2}, 1);
    r = run_op(RT_OP_REDUCE_MEAN, rt_cpu_reduce, &range, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "out of range"));
    /* a max over an empty axis has no value */
    rt_tensor *empty = make_tensor(RT_DTYPE_F32, 2, (int64_t[]){3, 0});
    rt_attr last = attr_ints("axes", (int64_t[]){1}, 1);
    r = run_op(RT_OP_REDUCE_MAX, rt_cpu_reduce, &last, 1, (const rt_tensor *[]){empty}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    op_run_free(&r);
    r = run_op(RT_OP_REDUCE_SUM, rt_cpu_reduce, &last, 1, (const rt_tensor *[]){empty}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_close(r.out[0], (double[]){0, 0, 0}, 0);
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(empty);
}

/* ArgMax along `axis` of a (2, 3, 4) tensor with ties, first or last index. */
static void check_argmax(rt_dtype dt, int axis, bool keepdims, bool last)
{
    const int64_t dims[3] = {2, 3, 4};
    double v[24];
    for (int i = 0; i < 24; i++)
        v[i] = (i * 7) % 5; /* values 0..4, many ties */
    rt_tensor *x = make_values(dt, 3, dims, v);
    rt_attr attrs[] = {attr_int("axis", axis), attr_int("keepdims", keepdims),
                       attr_int("select_last_index", last)};
    op_run r = run_op(RT_OP_ARG_MAX, rt_cpu_argmax, attrs, 3, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_I64);
    int a = axis < 0 ? axis + 3 : axis;
    assert_int_equal(r.out[0]->shape.rank, keepdims ? 3 : 2);
    if (keepdims)
        assert_int_equal(r.out[0]->shape.dims[a], 1);
    int64_t stride = a == 2 ? 1 : a == 1 ? 4 : 12;
    double ref[12];
    int n = 0;
    for (int i = 0; i < 24; i++) {
        int64_t c[3];
        unravel(&x->shape, i, c);
        if (c[a] != 0)
            continue;
        int64_t best = 0;
        for (int64_t k = 1; k < dims[a]; k++) {
            double cur = v[i + k * stride], top = v[i + best * stride];
            if (cur > top || (last && cur == top))
                best = k;
        }
        ref[n++] = (double)best;
    }
    assert_close(r.out[0], ref, 0);
    op_run_free(&r);
    rt_tensor_free(x);
}

static void test_argmax(void **state)
{
    (void)state;
    for (int axis = -1; axis < 3; axis++)
        for (int keep = 0; keep < 2; keep++)
            for (int last = 0; last < 2; last++)
                check_argmax(RT_DTYPE_F32, axis, keep, last);
    check_argmax(RT_DTYPE_I32, 1, true, true);
    check_argmax(RT_DTYPE_F64, 0, false, false);

    rt_tensor *x = make_random(RT_DTYPE_F32, 2, (int64_t[]){3, 4}, 93);
    rt_attr bad = attr_int("axis", -3);
    op_run r = run_op(RT_OP_ARG_MAX, rt_cpu_argmax, &bad, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(x);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_reduce_axes_keepdims),
        cmocka_unit_test(test_reduce_large_rows),
        cmocka_unit_test(test_reduce_dtypes),
        cmocka_unit_test(test_reduce_sum_axes_input),
        cmocka_unit_test(test_reduce_errors),
        cmocka_unit_test(test_argmax),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
