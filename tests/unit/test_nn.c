/* test_nn.c: unit tests for the neural-network ops: their shape inference (rt_op_nn.c) and
 * CPU kernels (rt_cpu_matmul.c, rt_cpu_conv.c, rt_cpu_pool.c, rt_cpu_norm.c), each compared
 * with a direct computation written here from the ONNX definitions (direct convolution
 * loops, window scans, normalization formulas). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"

#define TOL 1e-5

/* ---- MatMul / Gemm ---- */

/* y[b, i, j] = sum_k A[ab(b), i, k] * B[bb(b), k, j] for batch maps given as strides of the
 * flattened batch index (0 = broadcast). */
static void ref_matmul(const rt_tensor *a, const rt_tensor *b, int64_t nb, const int64_t *ab,
                       const int64_t *bbat, int64_t m, int64_t k, int64_t n, double *y)
{
    for (int64_t t = 0; t < nb; t++)
        for (int64_t i = 0; i < m; i++)
            for (int64_t j = 0; j < n; j++) {
                double acc = 0;
                for (int64_t p = 0; p < k; p++)
                    acc += elem(a, ab[t] * m * k + i * k + p) * elem(b, bbat[t] * k * n + p * n + j);
                y[(t * m + i) * n + j] = acc;
            }
}

static void test_matmul_broadcast(void **state)
{
    (void)state;
    rt_tensor *a = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 1, 3, 4}, 1);
    rt_tensor *b = make_random(RT_DTYPE_F32, 3, (int64_t[]){3, 4, 5}, 2);
    const rt_tensor *in[] = {a, b};
    op_run r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, in, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 4, (int64_t[]){2, 3, 3, 5});
    /* output batch (b0, b1): A batch b0, B batch b1 */
    int64_t ab[6] = {0, 0, 0, 1, 1, 1}, bb[6] = {0, 1, 2, 0, 1, 2};
    double ref[90];
    ref_matmul(a, b, 6, ab, bb, 3, 4, 5, ref);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);
    rt_tensor_free(a);
    rt_tensor_free(b);
}

static void test_matmul_stacked_and_vectors(void **state)
{
    (void)state;
    rt_tensor *a3 = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, 3);
    rt_tensor *b2 = make_random(RT_DTYPE_F32, 2, (int64_t[]){4, 5}, 4);
    rt_tensor *v = make_random(RT_DTYPE_F32, 1, (int64_t[]){4}, 5);
    rt_tensor *b3 = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 4, 5}, 6);
    int64_t zero[2] = {0, 0}, seq[2] = {0, 1};
    double ref[30];

    /* (2,3,4) x (4,5): one B for both batches */
    op_run r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){a3, b2}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){2, 3, 5});
    ref_matmul(a3, b2, 2, seq, zero, 3, 4, 5, ref);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);

    /* (4) x (2,4,5) -> (2,5): the vector is a 1x4 matrix whose row dim is dropped */
    r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){v, b3}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){2, 5});
    ref_matmul(v, b3, 2, zero, seq, 1, 4, 5, ref);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);

    /* (2,3,4) x (4) -> (2,3) */
    r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){a3, v}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){2, 3});
    ref_matmul(a3, v, 2, seq, zero, 3, 4, 1, ref);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);

    /* (4) x (4) -> scalar */
    r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){v, v}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->shape.rank, 0);
    ref_matmul(v, v, 1, zero, zero, 1, 4, 1, ref);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);

    rt_tensor_free(a3);
    rt_tensor_free(b2);
    rt_tensor_free(v);
    rt_tensor_free(b3);
}

static void test_matmul_dtypes(void **state)
{
    (void)state;
    const rt_dtype dts[] = {RT_DTYPE_F64, RT_DTYPE_I32, RT_DTYPE_I64, RT_DTYPE_F16};
    const double tols[] = {1e-12, 0, 0, 1e-2};
    for (size_t d = 0; d < sizeof dts / sizeof *dts; d++) {
        rt_tensor *a = make_random(dts[d], 3, (int64_t[]){2, 3, 4}, 7);
        rt_tensor *b = make_random(dts[d], 3, (int64_t[]){1, 4, 2}, 8);
        op_run r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){a, b}, 2, 1);
        assert_int_equal(r.status, RT_OK);
        assert_int_equal(r.out[0]->dtype, dts[d]);
        double ref[12];
        ref_matmul(a, b, 2, (int64_t[]){0, 1}, (int64_t[]){0, 0}, 3, 4, 2, ref);
        assert_close(r.out[0], ref, tols[d]);
        op_run_free(&r);
        rt_tensor_free(a);
        rt_tensor_free(b);
    }
}

static void test_matmul_errors(void **state)
{
    (void)state;
    rt_tensor *a = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, 1);
    rt_tensor *b = make_random(RT_DTYPE_F32, 2, (int64_t[]){5, 2}, 2);
    rt_tensor *c = make_random(RT_DTYPE_F32, 3, (int64_t[]){3, 4, 2}, 3);
    op_run r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){a, b}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "inner dims"));
    r = run_op(RT_OP_MATMUL, rt_cpu_matmul, NULL, 0, (const rt_tensor *[]){a, c}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "broadcast"));
    rt_tensor_free(a);
    rt_tensor_free(b);
    rt_tensor_free(c);
}

/* Gemm against alpha * op(A) op(B) + beta * C with C of shape (m, 1), (n) or absent. */
static void check_gemm(rt_dtype dt, bool ta, bool tb, float alpha, float beta, int c_kind)
{
    const int64_t m = 3, k = 5, n = 4;
    rt_tensor *a = make_random(dt, 2, ta ? (int64_t[]){k, m} : (int64_t[]){m, k}, 11);
    rt_tensor *b = make_random(dt, 2, tb ? (int64_t[]){n, k} : (int64_t[]){k, n}, 12);
    rt_tensor *c = c_kind == 1 ? make_random(dt, 2, (int64_t[]){m, 1}, 13)
                 : c_kind == 2 ? make_random(dt, 1, (int64_t[]){n}, 14)
                               : NULL;
    rt_attr attrs[] = {attr_int("transA", ta), attr_int("transB", tb),
                       attr_float("alpha", alpha), attr_float("beta", beta)};
    op_run r = run_op(RT_OP_GEMM, rt_cpu_gemm, attrs, 4, (const rt_tensor *[]){a, b, c},
                      c ? 3 : 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){m, n});
    double ref[12];
    for (int64_t i = 0; i < m; i++)
        for (int64_t j = 0; j < n; j++) {
            double acc = 0;
            for (int64_t p = 0; p < k; p++)
                acc += elem(a, ta ? p * m + i : i * k + p) * elem(b, tb ? j * k + p : p * n + j);
            double cv = c_kind == 1 ? elem(c, i) : c_kind == 2 ? elem(c, j) : 0;
            ref[i * n + j] = alpha * acc + beta * cv;
            if (rt_dtype_is_integer(dt))
                ref[i * n + j] = trunc(ref[i * n + j]);
        }
    bool half = dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16;
    assert_close(r.out[0], ref, rt_dtype_is_integer(dt) ? 0 : half ? 2e-2 : TOL);
    op_run_free(&r);
    rt_tensor_free(a);
    rt_tensor_free(b);
    rt_tensor_free(c);
}

static void test_gemm(void **state)
{
    (void)state;
    check_gemm(RT_DTYPE_F32, true, true, 0.5f, 2.0f, 1);
    check_gemm(RT_DTYPE_F32, false, true, 1.0f, 1.0f, 2);
    check_gemm(RT_DTYPE_F32, true, false, 1.5f, 1.0f, 0); /* Y must not be read */
    check_gemm(RT_DTYPE_F64, false, false, 1.0f, 0.25f, 1);
    check_gemm(RT_DTYPE_I32, true, false, 1.0f, 1.0f, 2);
    check_gemm(RT_DTYPE_BF16, false, false, 1.0f, 1.0f, 2);
}

static void test_gemm_errors(void **state)
{
    (void)state;
    rt_tensor *a = make_random(RT_DTYPE_F32, 2, (int64_t[]){3, 5}, 1);
    rt_tensor *b = make_random(RT_DTYPE_F32, 2, (int64_t[]){5, 4}, 2);
    rt_tensor *c = make_random(RT_DTYPE_F32, 1, (int64_t[]){3}, 3);
    op_run r = run_op(RT_OP_GEMM, rt_cpu_gemm, NULL, 0, (const rt_tensor *[]){a, b, c}, 3, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "broadcast"));
    rt_attr tb = attr_int("transB", 1);
    r = run_op(RT_OP_GEMM, rt_cpu_gemm, &tb, 1, (const rt_tensor *[]){a, b}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(a);
    rt_tensor_free(b);
    rt_tensor_free(c);
}

/* ---- Conv ---- */

typedef struct {
    int64_t group;
    int64_t stride[3], dilation[3], pad_begin[3];
} conv_ref_args;

/* Direct convolution: every output element sums its taps straight from X. */
static double *ref_conv(const rt_tensor *x, const rt_tensor *w, const rt_tensor *bias,
                        const conv_ref_args *c, const rt_shape *ys)
{
    int n = x->shape.rank - 2;
    int64_t cg = w->shape.dims[1], mg = w->shape.dims[0] / c->group;
    rt_shape ks = rt_shape_make(n, w->shape.dims + 2);
    int64_t kvol = rt_shape_numel(&ks);
    double *y = calloc((size_t)rt_shape_numel(ys), sizeof *y);
    assert_non_null(y);
    for (int64_t yi = 0; yi < rt_shape_numel(ys); yi++) {
        int64_t o[RT_MAX_RANK], kc[RT_MAX_RANK];
        unravel(ys, yi, o);
        int64_t m = o[1], g = m / mg;
        double acc = bias ? elem(bias, m) : 0;
        for (int64_t ci = 0; ci < cg; ci++)
            for (int64_t k = 0; k < kvol; k++) {
                unravel(&ks, k, kc);
                int64_t xi = o[0] * x->shape.dims[1] + g * cg + ci;
                bool inside = true;
                for (int d = 0; d < n; d++) {
                    int64_t pos = o[2 + d] * c->stride[d] - c->pad_begin[d] + kc[d] * c->dilation[d];
                    inside = inside && pos >= 0 && pos < x->shape.dims[2 + d];
                    xi = xi * x->shape.dims[2 + d] + pos;
                }
                if (inside)
                    acc += elem(x, xi) * elem(w, (m * cg + ci) * kvol + k);
            }
        y[yi] = acc;
    }
    return y;
}

/* Runs Conv with explicit attributes and checks shape and values against ref_conv. */
static void check_conv(rt_dtype dt, int rank, const int64_t *xd, const int64_t *wd, bool bias,
                       const conv_ref_args *c, const int64_t *pads, const int64_t *yd, double tol)
{
    int n = rank - 2;
    rt_tensor *x = make_random(dt, rank, xd, 21);
    rt_tensor *w = make_random(dt, rank, wd, 22);
    rt_tensor *b = bias ? make_random(dt, 1, wd, 23) : NULL;
    rt_attr attrs[] = {attr_int("group", c->group), attr_ints("strides", c->stride, n),
                       attr_ints("dilations", c->dilation, n), attr_ints("pads", pads, 2 * n)};
    op_run r = run_op(RT_OP_CONV, rt_cpu_conv, attrs, 4, (const rt_tensor *[]){x, w, b},
                      bias ? 3 : 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], rank, yd);
    double *ref = ref_conv(x, w, b, c, &r.out[0]->shape);
    assert_close(r.out[0], ref, tol);
    free(ref);
    op_run_free(&r);
    rt_tensor_free(x);
    rt_tensor_free(w);
    rt_tensor_free(b);
}

static void test_conv_2d_groups_dilation_padding(void **state)
{
    (void)state;
    conv_ref_args c = {.group = 2, .stride = {2, 1}, .dilation = {1, 2}, .pad_begin = {1, 0}};
    /* H: (7 + 1 + 2 - 3) / 2 + 1 = 4; W: (6 + 0 + 1 - 3) / 1 + 1 = 5 */
    check_conv(RT_DTYPE_F32, 4, (int64_t[]){2, 4, 7, 6}, (int64_t[]){6, 2, 3, 2}, true, &c,
               (int64_t[]){1, 0, 2, 1}, (int64_t[]){2, 6, 4, 5}, TOL);
    check_conv(RT_DTYPE_F64, 4, (int64_t[]){2, 4, 7, 6}, (int64_t[]){6, 2, 3, 2}, true, &c,
               (int64_t[]){1, 0, 2, 1}, (int64_t[]){2, 6, 4, 5}, 1e-12);
    check_conv(RT_DTYPE_F16, 4, (int64_t[]){2, 4, 7, 6}, (int64_t[]){6, 2, 3, 2}, true, &c,
               (int64_t[]){1, 0, 2, 1}, (int64_t[]){2, 6, 4, 5}, 1e-2);
}

static void test_conv_1d_3d_and_pointwise(void **state)
{
    (void)state;
    conv_ref_args c1 = {.group = 1, .stride = {3}, .dilation = {1}, .pad_begin = {2}};
    check_conv(RT_DTYPE_F32, 3, (int64_t[]){1, 3, 10}, (int64_t[]){2, 3, 3}, false, &c1,
               (int64_t[]){2, 1}, (int64_t[]){1, 2, 4}, TOL);
    conv_ref_args c3 = {.group = 1, .stride = {1, 1, 1}, .dilation = {1, 1, 1}};
    check_conv(RT_DTYPE_F32, 5, (int64_t[]){1, 2, 4, 5, 3}, (int64_t[]){3, 2, 2, 3, 2}, true,
               &c3, (int64_t[]){0, 0, 0, 0, 0, 0}, (int64_t[]){1, 3, 3, 3, 2}, TOL);
    /* 1x1, stride 1, unpadded: the input is used as the column matrix */
    conv_ref_args c11 = {.group = 1, .stride = {1, 1}, .dilation = {1, 1}};
    check_conv(RT_DTYPE_F32, 4, (int64_t[]){2, 3, 4, 4}, (int64_t[]){5, 3, 1, 1}, true, &c11,
               (int64_t[]){0, 0, 0, 0}, (int64_t[]){2, 5, 4, 4}, TOL);
    /* depthwise (direct loops), also with 3 output channels per input channel, strides
     * and dilations */
    conv_ref_args cd = {.group = 3, .stride = {1, 1}, .dilation = {1, 1}, .pad_begin = {1, 1}};
    check_conv(RT_DTYPE_F32, 4, (int64_t[]){1, 3, 5, 5}, (int64_t[]){3, 1, 3, 3}, true, &cd,
               (int64_t[]){1, 1, 1, 1}, (int64_t[]){1, 3, 5, 5}, TOL);
    conv_ref_args cm = {.group = 2, .stride = {1, 2}, .dilation = {2, 1}, .pad_begin = {1, 2}};
    /* H: (6 + 1 + 0 - 5) / 1 + 1 = 3; W: (7 + 2 + 1 - 3) / 2 + 1 = 4 */
    check_conv(RT_DTYPE_F32, 4, (int64_t[]){2, 2, 6, 7}, (int64_t[]){6, 1, 3, 3}, true, &cm,
               (int64_t[]){1, 2, 0, 1}, (int64_t[]){2, 6, 3, 4}, TOL);
    check_conv(RT_DTYPE_F64, 4, (int64_t[]){2, 2, 6, 7}, (int64_t[]){6, 1, 3, 3}, false, &cm,
               (int64_t[]){1, 2, 0, 1}, (int64_t[]){2, 6, 3, 4}, 1e-12);
    conv_ref_args c3s = {.group = 1, .stride = {3}, .dilation = {2}, .pad_begin = {4}};
    check_conv(RT_DTYPE_F32, 3, (int64_t[]){1, 1, 20}, (int64_t[]){2, 1, 4}, true, &c3s,
               (int64_t[]){4, 3}, (int64_t[]){1, 2, 7}, TOL);
}

static void test_conv_auto_pad(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 1, 6, 6}, 31);
    rt_tensor *w = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 1, 3, 3}, 32);
    /* out = ceil(6 / 2) = 3; total padding (3 - 1) * 2 + 3 - 6 = 1 goes after the input
     * for SAME_UPPER and before it for SAME_LOWER; VALID has none: (6 - 3) / 2 + 1 = 2 */
    const char *modes[] = {"SAME_UPPER", "SAME_LOWER", "VALID"};
    const int64_t begin[] = {0, 1, 0}, out[] = {3, 3, 2};
    for (int i = 0; i < 3; i++) {
        rt_attr attrs[] = {attr_string("auto_pad", modes[i]),
                           attr_ints("strides", (int64_t[]){2, 2}, 2)};
        op_run r = run_op(RT_OP_CONV, rt_cpu_conv, attrs, 2, (const rt_tensor *[]){x, w}, 2, 1);
        assert_int_equal(r.status, RT_OK);
        assert_shape(r.out[0], 4, (int64_t[]){1, 1, out[i], out[i]});
        conv_ref_args c = {.group = 1, .stride = {2, 2}, .dilation = {1, 1},
                           .pad_begin = {begin[i], begin[i]}};
        double *ref = ref_conv(x, w, NULL, &c, &r.out[0]->shape);
        assert_close(r.out[0], ref, TOL);
        free(ref);
        op_run_free(&r);
    }
    rt_tensor_free(x);
    rt_tensor_free(w);
}

static void test_conv_errors(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 3, 5, 5}, 1);
    rt_tensor *w = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 2, 3, 3}, 2);
    rt_tensor *w_big = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 3, 7, 3}, 3);
    rt_tensor *b = make_random(RT_DTYPE_F32, 1, (int64_t[]){3}, 4);
    rt_tensor *w_ok = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 3, 3, 3}, 5);
    op_run r = run_op(RT_OP_CONV, rt_cpu_conv, NULL, 0, (const rt_tensor *[]){x, w}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "channels"));
    r = run_op(RT_OP_CONV, rt_cpu_conv, NULL, 0, (const rt_tensor *[]){x, w_big}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "does not fit"));
    r = run_op(RT_OP_CONV, rt_cpu_conv, NULL, 0, (const rt_tensor *[]){x, w_ok, b}, 3, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_attr pads = attr_ints("pads", (int64_t[]){1, 1}, 2);
    r = run_op(RT_OP_CONV, rt_cpu_conv, &pads, 1, (const rt_tensor *[]){x, w_ok}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "pads"));
    rt_tensor_free(x);
    rt_tensor_free(w);
    rt_tensor_free(w_big);
    rt_tensor_free(b);
    rt_tensor_free(w_ok);
}

/* ---- pooling ---- */

typedef struct {
    int64_t kernel[2], stride[2], dilation[2], pad_begin[2], pad_end[2];
    bool include_pad, col_major;
} pool_ref_args;

/* 2-D pooling by scanning each window tap by tap; indices as ONNX defines them. */
static void ref_pool2d(const rt_tensor *x, const pool_ref_args *p, bool max, const rt_shape *ys,
                       double *y, int64_t *idx)
{
    int64_t h = x->shape.dims[2], w = x->shape.dims[3];
    for (int64_t yi = 0; yi < rt_shape_numel(ys); yi++) {
        int64_t o[4];
        unravel(ys, yi, o);
        int64_t plane = o[0] * x->shape.dims[1] + o[1];
        double best = -INFINITY, sum = 0;
        int64_t count = 0, at = -1;
        for (int64_t kh = 0; kh < p->kernel[0]; kh++)
            for (int64_t kw = 0; kw < p->kernel[1]; kw++) {
                int64_t ih = o[2] * p->stride[0] - p->pad_begin[0] + kh * p->dilation[0];
                int64_t iw = o[3] * p->stride[1] - p->pad_begin[1] + kw * p->dilation[1];
                bool in_pad = ih >= -p->pad_begin[0] && ih < h + p->pad_end[0] &&
                              iw >= -p->pad_begin[1] && iw < w + p->pad_end[1];
                if (ih < 0 || ih >= h || iw < 0 || iw >= w) {
                    count += p->include_pad && in_pad;
                    continue;
                }
                double v = elem(x, (plane * h + ih) * w + iw);
                count++;
                sum += v;
                if (v > best) {
                    best = v;
                    at = plane * h * w + (p->col_major ? iw * h + ih : ih * w + iw);
                }
            }
        y[yi] = max ? best : sum / (double)count;
        if (idx)
            idx[yi] = at;
    }
}

static rt_attr *pool_attrs(const pool_ref_args *p, bool ceil, rt_attr *a, int64_t *pads)
{
    pads[0] = p->pad_begin[0], pads[1] = p->pad_begin[1];
    pads[2] = p->pad_end[0], pads[3] = p->pad_end[1];
    a[0] = attr_ints("kernel_shape", p->kernel, 2);
    a[1] = attr_ints("strides", p->stride, 2);
    a[2] = attr_ints("dilations", p->dilation, 2);
    a[3] = attr_ints("pads", pads, 4);
    a[4] = attr_int("ceil_mode", ceil);
    a[5] = attr_int("count_include_pad", p->include_pad);
    a[6] = attr_int("storage_order", p->col_major);
    return a;
}

static void test_maxpool_ceil_dilation_indices(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 2, 6, 7}, 41);
    for (int order = 0; order < 2; order++) {
        pool_ref_args p = {.kernel = {3, 2}, .stride = {2, 2}, .dilation = {1, 2},
                           .pad_begin = {1, 0}, .pad_end = {1, 1}, .col_major = order};
        rt_attr a[7];
        int64_t pads[4];
        op_run r = run_op(RT_OP_MAX_POOL, rt_cpu_pool, pool_attrs(&p, true, a, pads), 7,
                          (const rt_tensor *[]){x}, 1, 2);
        assert_int_equal(r.status, RT_OK);
        /* H: ceil((6 + 2 - 3) / 2) + 1 = 4; W: ceil((7 + 1 - 3) / 2) + 1 = 4 */
        assert_shape(r.out[0], 4, (int64_t[]){2, 2, 4, 4});
        assert_int_equal(r.out[1]->dtype, RT_DTYPE_I64);
        double ref[64];
        int64_t idx[64];
        ref_pool2d(x, &p, true, &r.out[0]->shape, ref, idx);
        assert_close(r.out[0], ref, 0);
        assert_memory_equal(r.out[1]->data, idx, sizeof idx);
        op_run_free(&r);
    }
    rt_tensor_free(x);
}

static void test_maxpool_row_interior(void **state)
{
    (void)state;
    /* without Indices, windows inside X run across whole rows; strides 1, 2 and 3 and a
     * dilation cover each way that loop is specialized */
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 3, 9, 23}, 47);
    for (int64_t s = 1; s <= 3; s++) {
        pool_ref_args p = {.kernel = {3, 3}, .stride = {1, s}, .dilation = {1, s == 2 ? 2 : 1},
                           .pad_begin = {1, 2}, .pad_end = {1, 1}};
        rt_attr a[7];
        int64_t pads[4];
        op_run r = run_op(RT_OP_MAX_POOL, rt_cpu_pool, pool_attrs(&p, false, a, pads), 4,
                          (const rt_tensor *[]){x}, 1, 1);
        assert_int_equal(r.status, RT_OK);
        double *ref = calloc((size_t)rt_tensor_numel(r.out[0]), sizeof *ref);
        assert_non_null(ref);
        ref_pool2d(x, &p, true, &r.out[0]->shape, ref, NULL);
        assert_close(r.out[0], ref, 0);
        free(ref);
        op_run_free(&r);
    }
    rt_tensor_free(x);
}

static void test_pool_ceil_last_window_inside(void **state)
{
    (void)state;
    /* ceil((5 + 2 - 2) / 2) + 1 = 4, but the 4th window would start at 6 = 5 + pad: the
     * last window must start inside the input or its leading padding, so 3 */
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 1, 5, 5}, 42);
    pool_ref_args p = {.kernel = {2, 2}, .stride = {2, 2}, .dilation = {1, 1},
                       .pad_begin = {1, 1}, .pad_end = {1, 1}};
    rt_attr a[7];
    int64_t pads[4];
    op_run r = run_op(RT_OP_AVERAGE_POOL, rt_cpu_pool, pool_attrs(&p, true, a, pads), 6,
                      (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 4, (int64_t[]){1, 1, 3, 3});
    double ref[9];
    ref_pool2d(x, &p, false, &r.out[0]->shape, ref, NULL);
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);
    rt_tensor_free(x);
}

static void test_avgpool_count_include_pad(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 2, 7, 6}, 43);
    for (int include = 0; include < 2; include++) {
        pool_ref_args p = {.kernel = {3, 3}, .stride = {2, 2}, .dilation = {1, 1},
                           .pad_begin = {1, 1}, .pad_end = {1, 1}, .include_pad = include};
        rt_attr a[7];
        int64_t pads[4];
        op_run r = run_op(RT_OP_AVERAGE_POOL, rt_cpu_pool, pool_attrs(&p, true, a, pads), 6,
                          (const rt_tensor *[]){x}, 1, 1);
        assert_int_equal(r.status, RT_OK);
        /* H: ceil((7 + 2 - 3) / 2) + 1 = 4, W: ceil((6 + 2 - 3) / 2) + 1 = 4; the last
         * column's window overhangs the padding and that part never counts */
        assert_shape(r.out[0], 4, (int64_t[]){1, 2, 4, 4});
        double ref[32];
        ref_pool2d(x, &p, false, &r.out[0]->shape, ref, NULL);
        assert_close(r.out[0], ref, TOL);
        op_run_free(&r);
    }
    rt_tensor_free(x);
}

static void test_pool_1d_3d_uint8_global(void **state)
{
    (void)state;
    /* 1-D MaxPool on U8: window max over [i, i+2] with stride 2 */
    double v[7] = {3, 250, 7, 9, 1, 0, 255};
    rt_tensor *x1 = make_values(RT_DTYPE_U8, 3, (int64_t[]){1, 1, 7}, v);
    rt_attr a1[] = {attr_ints("kernel_shape", (int64_t[]){3}, 1),
                    attr_ints("strides", (int64_t[]){2}, 1)};
    op_run r = run_op(RT_OP_MAX_POOL, rt_cpu_pool, a1, 2, (const rt_tensor *[]){x1}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){1, 1, 3});
    assert_close(r.out[0], (double[]){250, 9, 255}, 0);
    op_run_free(&r);
    rt_tensor_free(x1);

    /* 3-D AveragePool, SAME_UPPER, kernel 2: windows at the far end are cut short */
    rt_tensor *x3 = make_random(RT_DTYPE_F32, 5, (int64_t[]){1, 1, 3, 2, 3}, 44);
    rt_attr a3[] = {attr_ints("kernel_shape", (int64_t[]){2, 2, 2}, 3),
                    attr_string("auto_pad", "SAME_UPPER")};
    r = run_op(RT_OP_AVERAGE_POOL, rt_cpu_pool, a3, 2, (const rt_tensor *[]){x3}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 5, (int64_t[]){1, 1, 3, 2, 3});
    double ref[18];
    for (int64_t d = 0; d < 3; d++)
        for (int64_t h = 0; h < 2; h++)
            for (int64_t w = 0; w < 3; w++) {
                double sum = 0;
                int count = 0;
                for (int64_t i = d; i < d + 2 && i < 3; i++)
                    for (int64_t j = h; j < h + 2 && j < 2; j++)
                        for (int64_t k = w; k < w + 2 && k < 3; k++, count++)
                            sum += elem(x3, (i * 2 + j) * 3 + k);
                ref[(d * 2 + h) * 3 + w] = sum / count;
            }
    assert_close(r.out[0], ref, TOL);
    op_run_free(&r);

    r = run_op(RT_OP_GLOBAL_AVERAGE_POOL, rt_cpu_pool, NULL, 0, (const rt_tensor *[]){x3}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 5, (int64_t[]){1, 1, 1, 1, 1});
    double mean = 0;
    for (int64_t i = 0; i < 18; i++)
        mean += elem(x3, i) / 18;
    assert_close(r.out[0], &mean, TOL);
    op_run_free(&r);
    rt_tensor_free(x3);
}

static void test_pool_errors(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){1, 1, 4, 4}, 45);
    op_run r = run_op(RT_OP_MAX_POOL, rt_cpu_pool, NULL, 0, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "kernel_shape"));
    rt_attr a[] = {attr_ints("kernel_shape", (int64_t[]){2, 2}, 2),
                   attr_string("auto_pad", "SAME")};
    r = run_op(RT_OP_MAX_POOL, rt_cpu_pool, a, 2, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor *xi = make_random(RT_DTYPE_I32, 4, (int64_t[]){1, 1, 4, 4}, 46);
    r = run_op(RT_OP_AVERAGE_POOL, rt_cpu_pool, a, 1, (const rt_tensor *[]){xi}, 1, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    rt_tensor_free(x);
    rt_tensor_free(xi);
}

/* ---- normalization ---- */

static void test_layernorm_broadcast_and_stats(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, 51);
    rt_tensor *scale = make_random(RT_DTYPE_F32, 2, (int64_t[]){1, 4}, 52);
    rt_tensor *bias = make_random(RT_DTYPE_F32, 2, (int64_t[]){3, 4}, 53);
    rt_attr a[] = {attr_int("axis", 1), attr_float("epsilon", 1e-3f)};
    op_run r = run_op(RT_OP_LAYER_NORMALIZATION, rt_cpu_layernorm, a, 2,
                      (const rt_tensor *[]){x, scale, bias}, 3, 3);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[1], 3, (int64_t[]){2, 1, 1});
    double y[24], mean[2], inv[2];
    for (int b = 0; b < 2; b++) {
        double s = 0, sq = 0;
        for (int i = 0; i < 12; i++)
            s += elem(x, b * 12 + i);
        mean[b] = s / 12;
        for (int i = 0; i < 12; i++)
            sq += pow(elem(x, b * 12 + i) - mean[b], 2);
        inv[b] = 1 / sqrt(sq / 12 + 1e-3);
        for (int i = 0; i < 12; i++)
            y[b * 12 + i] = (elem(x, b * 12 + i) - mean[b]) * inv[b] * elem(scale, i % 4) +
                            elem(bias, i);
    }
    assert_close(r.out[0], y, TOL);
    assert_close(r.out[1], mean, TOL);
    assert_close(r.out[2], inv, TOL);
    op_run_free(&r);

    /* without bias, only Y requested, on F64 */
    rt_tensor *xd = make_random(RT_DTYPE_F64, 2, (int64_t[]){3, 5}, 54);
    rt_tensor *sd = make_random(RT_DTYPE_F64, 1, (int64_t[]){5}, 55);
    r = run_op(RT_OP_LAYER_NORMALIZATION, rt_cpu_layernorm, NULL, 0,
               (const rt_tensor *[]){xd, sd}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    double yd[15];
    for (int row = 0; row < 3; row++) {
        double s = 0, sq = 0;
        for (int i = 0; i < 5; i++)
            s += elem(xd, row * 5 + i) / 5;
        for (int i = 0; i < 5; i++)
            sq += pow(elem(xd, row * 5 + i) - s, 2) / 5;
        for (int i = 0; i < 5; i++)
            yd[row * 5 + i] = (elem(xd, row * 5 + i) - s) / sqrt(sq + 1e-5) * elem(sd, i);
    }
    assert_close(r.out[0], yd, 1e-7);
    op_run_free(&r);

    rt_tensor *bad = make_random(RT_DTYPE_F32, 1, (int64_t[]){3}, 56);
    r = run_op(RT_OP_LAYER_NORMALIZATION, rt_cpu_layernorm, NULL, 0,
               (const rt_tensor *[]){x, bad}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(x);
    rt_tensor_free(scale);
    rt_tensor_free(bias);
    rt_tensor_free(xd);
    rt_tensor_free(sd);
    rt_tensor_free(bad);
}

static void test_batchnorm(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 4, (int64_t[]){2, 3, 2, 2}, 61);
    rt_tensor *p[4];
    for (int i = 0; i < 4; i++)
        p[i] = make_random(RT_DTYPE_F32, 1, (int64_t[]){3}, 62 + (uint32_t)i);
    for (int i = 0; i < 3; i++) /* variances must be positive */
        ((float *)p[3]->data)[i] = fabsf(((float *)p[3]->data)[i]) + 0.1f;
    const rt_tensor *in[] = {x, p[0], p[1], p[2], p[3]};
    double y[24];

    rt_attr eps = attr_float("epsilon", 1e-2f);
    op_run r = run_op(RT_OP_BATCH_NORMALIZATION, rt_cpu_batchnorm, &eps, 1, in, 5, 1);
    assert_int_equal(r.status, RT_OK);
    for (int i = 0; i < 24; i++) {
        int c = i / 4 % 3;
        y[i] = elem(p[0], c) * (elem(x, i) - elem(p[2], c)) / sqrt(elem(p[3], c) + 1e-2) +
               elem(p[1], c);
    }
    assert_close(r.out[0], y, TOL);
    op_run_free(&r);

    /* training: batch statistics normalize, running statistics move by momentum */
    rt_attr train[] = {attr_int("training_mode", 1), attr_float("momentum", 0.8f)};
    r = run_op(RT_OP_BATCH_NORMALIZATION, rt_cpu_batchnorm, train, 2, in, 5, 3);
    assert_int_equal(r.status, RT_OK);
    double run_mean[3], run_var[3];
    for (int c = 0; c < 3; c++) {
        double m = 0, v = 0;
        for (int i = 0; i < 24; i++)
            m += i / 4 % 3 == c ? elem(x, i) / 8 : 0;
        for (int i = 0; i < 24; i++)
            v += i / 4 % 3 == c ? pow(elem(x, i) - m, 2) / 8 : 0;
        for (int i = 0; i < 24; i++)
            if (i / 4 % 3 == c)
                y[i] = elem(p[0], c) * (elem(x, i) - m) / sqrt(v + 1e-5) + elem(p[1], c);
        run_mean[c] = elem(p[2], c) * 0.8 + m * 0.2;
        run_var[c] = elem(p[3], c) * 0.8 + v * 0.2;
    }
    assert_close(r.out[0], y, TOL);
    assert_close(r.out[1], run_mean, TOL);
    assert_close(r.out[2], run_var, TOL);
    op_run_free(&r);

    /* statistics outputs without training_mode are refused */
    r = run_op(RT_OP_BATCH_NORMALIZATION, rt_cpu_batchnorm, NULL, 0, in, 5, 3);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    rt_tensor_free(x);
    for (int i = 0; i < 4; i++)
        rt_tensor_free(p[i]);
}

/* Softmax (or log-softmax) of n values `stride` apart. */
static void ref_softmax(const rt_tensor *x, int64_t base, int64_t n, int64_t stride, bool log_,
                        double *y)
{
    double mx = -INFINITY, sum = 0;
    for (int64_t i = 0; i < n; i++)
        mx = fmax(mx, elem(x, base + i * stride));
    for (int64_t i = 0; i < n; i++)
        sum += exp(elem(x, base + i * stride) - mx);
    for (int64_t i = 0; i < n; i++) {
        double v = elem(x, base + i * stride);
        y[base + i * stride] = log_ ? v - mx - log(sum) : exp(v - mx) / sum;
    }
}

static void test_softmax_opsets(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4}, 71);
    rt_attr axis = attr_int("axis", 1);
    double ref[24];
    for (int log_ = 0; log_ < 2; log_++) {
        rt_op op = log_ ? RT_OP_LOG_SOFTMAX : RT_OP_SOFTMAX;
        /* opset 11: flattened to (2, 12) at axis 1 */
        op_run r = run_op_opset(op, 11, rt_cpu_softmax, &axis, 1, (const rt_tensor *[]){x}, 1, 1);
        assert_int_equal(r.status, RT_OK);
        for (int b = 0; b < 2; b++)
            ref_softmax(x, b * 12, 12, 1, log_, ref);
        assert_close(r.out[0], ref, TOL);
        op_run_free(&r);
        /* opset 13: along axis 1 only */
        r = run_op_opset(op, 13, rt_cpu_softmax, &axis, 1, (const rt_tensor *[]){x}, 1, 1);
        assert_int_equal(r.status, RT_OK);
        for (int b = 0; b < 2; b++)
            for (int i = 0; i < 4; i++)
                ref_softmax(x, b * 12 + i, 3, 4, log_, ref);
        assert_close(r.out[0], ref, TOL);
        op_run_free(&r);
        /* opset 13 default: the last axis */
        r = run_op_opset(op, 13, rt_cpu_softmax, NULL, 0, (const rt_tensor *[]){x}, 1, 1);
        assert_int_equal(r.status, RT_OK);
        for (int row = 0; row < 6; row++)
            ref_softmax(x, row * 4, 4, 1, log_, ref);
        assert_close(r.out[0], ref, TOL);
        op_run_free(&r);
    }
    rt_tensor_free(x);
}

static void test_softmax_f16_and_large(void **state)
{
    (void)state;
    rt_tensor *x = make_random(RT_DTYPE_F16, 2, (int64_t[]){3, 5}, 72);
    op_run r = run_op_opset(RT_OP_SOFTMAX, 13, rt_cpu_softmax, NULL, 0, (const rt_tensor *[]){x},
                            1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_F16);
    double ref[15];
    for (int row = 0; row < 3; row++)
        ref_softmax(x, row * 5, 5, 1, false, ref);
    assert_close(r.out[0], ref, 2e-3);
    op_run_free(&r);
    rt_tensor_free(x);

    /* no overflow: exp is taken of x - max */
    rt_tensor *big = make_values(RT_DTYPE_F32, 1, (int64_t[]){3}, (double[]){1e4, 1e4 + 1, 1e4 + 2});
    r = run_op_opset(RT_OP_SOFTMAX, 13, rt_cpu_softmax, NULL, 0, (const rt_tensor *[]){big}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    double e = exp(1), s = 1 + e + e * e;
    assert_close(r.out[0], (double[]){1 / s, e / s, e * e / s}, TOL);
    op_run_free(&r);
    rt_tensor_free(big);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_matmul_broadcast),
        cmocka_unit_test(test_matmul_stacked_and_vectors),
        cmocka_unit_test(test_matmul_dtypes),
        cmocka_unit_test(test_matmul_errors),
        cmocka_unit_test(test_gemm),
        cmocka_unit_test(test_gemm_errors),
        cmocka_unit_test(test_conv_2d_groups_dilation_padding),
        cmocka_unit_test(test_conv_1d_3d_and_pointwise),
        cmocka_unit_test(test_conv_auto_pad),
        cmocka_unit_test(test_conv_errors),
        cmocka_unit_test(test_maxpool_ceil_dilation_indices),
        cmocka_unit_test(test_maxpool_row_interior),
        cmocka_unit_test(test_pool_ceil_last_window_inside),
        cmocka_unit_test(test_avgpool_count_include_pad),
        cmocka_unit_test(test_pool_1d_3d_uint8_global),
        cmocka_unit_test(test_pool_errors),
        cmocka_unit_test(test_layernorm_broadcast_and_stats),
        cmocka_unit_test(test_batchnorm),
        cmocka_unit_test(test_softmax_opsets),
        cmocka_unit_test(test_softmax_f16_and_large),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
