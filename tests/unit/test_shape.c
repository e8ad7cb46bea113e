/* test_shape.c: unit tests for the shape and data-movement ops: their shape inference
 * (rt_op_shape.c, rt_op_layout.c) and CPU kernels (rt_cpu_shape.c, rt_cpu_layout.c, the
 * strided copy engine). Each op runs as the executor runs it (infer, allocate, kernel) and
 * is compared with results computed here by plain index arithmetic. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include "op_test.h"

/* A tensor whose element i holds i (any numeric dtype). */
static rt_tensor *iota(rt_dtype dt, int rank, const int64_t *dims)
{
    rt_tensor *t = make_tensor(dt, rank, dims);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        rt_dtype_store_i64(dt, t->data, (size_t)i, i);
    return t;
}

static rt_tensor *i64s(int n, const int64_t *v)
{
    rt_tensor *t = make_tensor(RT_DTYPE_I64, 1, (int64_t[]){n});
    memcpy(t->data, v, (size_t)n * sizeof *v);
    return t;
}

/* Coordinates -> flat index of a row-major shape. */
static int64_t ravel(const rt_shape *s, const int64_t *c)
{
    int64_t i = 0;
    for (int k = 0; k < s->rank; k++)
        i = i * s->dims[k] + c[k];
    return i;
}

static void check_transpose(rt_dtype dt, int rank, const int64_t *dims, int64_t *perm)
{
    rt_tensor *x = iota(dt, rank, dims);
    rt_attr a = attr_ints("perm", perm, rank);
    op_run r = run_op(RT_OP_TRANSPOSE, rt_cpu_transpose, &a, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    int64_t c[RT_MAX_RANK], xc[RT_MAX_RANK];
    for (int64_t i = 0; i < rt_tensor_numel(r.out[0]); i++) {
        unravel(&r.out[0]->shape, i, c);
        for (int k = 0; k < rank; k++)
            xc[perm[k]] = c[k];
        assert_int_equal(rt_dtype_load_i64(dt, r.out[0]->data, (size_t)i),
                         rt_dtype_load_i64(dt, x->data, (size_t)ravel(&x->shape, xc)));
    }
    op_run_free(&r);
    rt_tensor_free(x);
}

static void test_transpose_random_perms(void **state)
{
    (void)state;
    srand(7);
    static const rt_dtype dts[] = {RT_DTYPE_F32, RT_DTYPE_U8, RT_DTYPE_I16, RT_DTYPE_I64};
    for (int trial = 0; trial < 24; trial++) {
        int64_t perm[4] = {0, 1, 2, 3};
        for (int k = 3; k > 0; k--) {
            int j = rand() % (k + 1);
            int64_t t = perm[k];
            perm[k] = perm[j];
            perm[j] = t;
        }
        /* small dims walk rows, large ones the tiled path */
        const int64_t small[4] = {2, 3, 4, 5}, large[4] = {3, 37, 2, 41};
        check_transpose(dts[trial / 2 % 4], 4, trial % 2 ? large : small, perm);
    }
    check_transpose(RT_DTYPE_F32, 2, (int64_t[]){300, 257}, (int64_t[]){1, 0}); /* multi-threaded */
}

static void test_transpose_bytes_default_perm(void **state)
{
    (void)state;
    rt_tensor *x = make_tensor(RT_DTYPE_BYTES, 2, (int64_t[]){2, 3});
    static const char *const words[] = {"a", "bb", "ccc", "dddd", "eeeee", "ffffff"};
    rt_str *s = x->data;
    for (int i = 0; i < 6; i++)
        s[i] = (rt_str){words[i], strlen(words[i])};
    op_run r = run_op(RT_OP_TRANSPOSE, rt_cpu_transpose, NULL, 0, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){3, 2});
    const rt_str *o = r.out[0]->data;
    for (int i = 0; i < 3; i++)
        for (int j = 0; j < 2; j++)
            assert_ptr_equal(o[i * 2 + j].ptr, words[j * 3 + i]);
    op_run_free(&r);
    rt_tensor_free(x);
}

static void test_reshape_rules(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_F32, 3, (int64_t[]){2, 3, 4});
    rt_tensor *spec = i64s(4, (int64_t[]){0, -1, 2, 1});
    op_run r = run_op(RT_OP_RESHAPE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, spec}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 4, (int64_t[]){2, 6, 2, 1});
    assert_memory_equal(r.out[0]->data, x->data, rt_tensor_nbytes(x));
    op_run_free(&r);
    rt_tensor_free(spec);

    /* allowzero keeps a 0 as a zero-sized dim */
    rt_tensor *empty = make_tensor(RT_DTYPE_F32, 3, (int64_t[]){0, 3, 4});
    spec = i64s(3, (int64_t[]){3, 4, 0});
    rt_attr az = attr_int("allowzero", 1);
    r = run_op(RT_OP_RESHAPE, rt_cpu_reshape, &az, 1, (const rt_tensor *[]){empty, spec}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){3, 4, 0});
    op_run_free(&r);
    rt_tensor_free(spec);
    rt_tensor_free(empty);

    spec = i64s(2, (int64_t[]){5, 5});
    r = run_op(RT_OP_RESHAPE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, spec}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "cannot reshape [2,3,4] (24 elements) into [5,5]"));
    rt_tensor_free(spec);

    spec = i64s(2, (int64_t[]){-1, -1});
    r = run_op(RT_OP_RESHAPE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, spec}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(spec);

    spec = i64s(2, (int64_t[]){5, -1}); /* 24 is not a multiple of 5 */
    r = run_op(RT_OP_RESHAPE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, spec}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(spec);
    rt_tensor_free(x);
}

static void test_flatten_squeeze_unsqueeze(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_I32, 4, (int64_t[]){2, 1, 3, 1});
    rt_attr a = attr_int("axis", -3);
    op_run r = run_op(RT_OP_FLATTEN, rt_cpu_reshape, &a, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 2, (int64_t[]){2, 3});
    op_run_free(&r);
    a = attr_int("axis", 4);
    r = run_op(RT_OP_FLATTEN, rt_cpu_reshape, &a, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_shape(r.out[0], 2, (int64_t[]){6, 1});
    op_run_free(&r);

    /* no axes: every dim of size 1 goes */
    r = run_op(RT_OP_SQUEEZE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x}, 1, 1);
    assert_shape(r.out[0], 2, (int64_t[]){2, 3});
    assert_memory_equal(r.out[0]->data, x->data, rt_tensor_nbytes(x));
    op_run_free(&r);
    /* axes as an attribute (opset < 13) and as an input (opset >= 13) */
    a = attr_ints("axes", (int64_t[]){-1}, 1);
    r = run_op(RT_OP_SQUEEZE, rt_cpu_reshape, &a, 1, (const rt_tensor *[]){x}, 1, 1);
    assert_shape(r.out[0], 3, (int64_t[]){2, 1, 3});
    op_run_free(&r);
    rt_tensor *axes = i64s(1, (int64_t[]){2});
    r = run_op(RT_OP_SQUEEZE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, axes}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG); /* dim 2 has size 3 */
    rt_tensor_free(axes);

    axes = i64s(3, (int64_t[]){-1, 0, 3});
    r = run_op(RT_OP_UNSQUEEZE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, axes}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 7, (int64_t[]){1, 2, 1, 1, 3, 1, 1});
    op_run_free(&r);
    rt_tensor_free(axes);
    axes = i64s(2, (int64_t[]){1, -5});
    r = run_op(RT_OP_UNSQUEEZE, rt_cpu_reshape, NULL, 0, (const rt_tensor *[]){x, axes}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG); /* both name axis 1 of rank 6 */
    rt_tensor_free(axes);
    rt_tensor_free(x);
}

/* Reference Slice on one axis, straight from the spec's wording. */
static int64_t ref_slice_index(int64_t dim, int64_t s, int64_t step, int64_t j)
{
    if (s < 0)
        s += dim;
    s = step > 0 ? (s < 0 ? 0 : s > dim ? dim : s) : (s < 0 ? 0 : s > dim - 1 ? dim - 1 : s);
    return s + j * step;
}

static void test_slice_steps_and_clamping(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_F32, 3, (int64_t[]){20, 10, 5});
    rt_tensor *starts = i64s(3, (int64_t[]){INT64_MAX, -2, 1});
    rt_tensor *ends = i64s(3, (int64_t[]){INT64_MIN, 0, 1000});
    rt_tensor *axes = i64s(3, (int64_t[]){0, -2, 2});
    rt_tensor *steps = i64s(3, (int64_t[]){-3, -2, 2});
    op_run r = run_op(RT_OP_SLICE, rt_cpu_slice, NULL, 0,
                      (const rt_tensor *[]){x, starts, ends, axes, steps}, 5, 1);
    assert_int_equal(r.status, RT_OK);
    /* axis 0: 19, 16, ..., 1 (7); axis 1: 8, 6, 4, 2 (4); axis 2: 1, 3 (2) */
    assert_shape(r.out[0], 3, (int64_t[]){7, 4, 2});
    const float *o = r.out[0]->data;
    int64_t c[3];
    for (int64_t i = 0; i < 7 * 4 * 2; i++) {
        unravel(&r.out[0]->shape, i, c);
        int64_t a = ref_slice_index(20, INT64_MAX, -3, c[0]), b = ref_slice_index(10, -2, -2, c[1]);
        int64_t d = ref_slice_index(5, 1, 2, c[2]);
        assert_true(o[i] == (float)((a * 10 + b) * 5 + d));
    }
    op_run_free(&r);
    rt_tensor_free(steps);
    steps = i64s(3, (int64_t[]){1, 0, 1});
    r = run_op(RT_OP_SLICE, rt_cpu_slice, NULL, 0,
               (const rt_tensor *[]){x, starts, ends, axes, steps}, 5, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    rt_tensor_free(steps);
    rt_tensor_free(axes);
    rt_tensor_free(ends);
    rt_tensor_free(starts);

    /* opset < 10: attributes; int32 inputs elsewhere are read the same way */
    rt_attr at[3] = {attr_ints("starts", (int64_t[]){5}, 1), attr_ints("ends", (int64_t[]){100}, 1),
                     attr_ints("axes", (int64_t[]){1}, 1)};
    r = run_op(RT_OP_SLICE, rt_cpu_slice, at, 3, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){20, 5, 5});
    assert_true(((float *)r.out[0]->data)[0] == 25.0f);
    op_run_free(&r);
    rt_tensor *s32 = make_tensor(RT_DTYPE_I32, 1, (int64_t[]){1});
    rt_tensor *e32 = make_tensor(RT_DTYPE_I32, 1, (int64_t[]){1});
    ((int32_t *)s32->data)[0] = 7;
    ((int32_t *)e32->data)[0] = 3;
    r = run_op(RT_OP_SLICE, rt_cpu_slice, NULL, 0, (const rt_tensor *[]){x, s32, e32}, 3, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){0, 10, 5}); /* empty, not an error */
    op_run_free(&r);
    rt_tensor_free(s32);
    rt_tensor_free(e32);
    rt_tensor_free(x);
}

static void test_gather(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_I64, 3, (int64_t[]){3, 4, 2});
    rt_tensor *idx = make_tensor(RT_DTYPE_I32, 2, (int64_t[]){2, 2});
    int32_t iv[4] = {3, -1, 0, -4};
    memcpy(idx->data, iv, sizeof iv);
    rt_attr a = attr_int("axis", -2);
    op_run r = run_op(RT_OP_GATHER, rt_cpu_gather, &a, 1, (const rt_tensor *[]){x, idx}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 4, (int64_t[]){3, 2, 2, 2});
    const int64_t *o = r.out[0]->data;
    for (int64_t i = 0; i < 24; i++) {
        int64_t c[4];
        unravel(&r.out[0]->shape, i, c);
        int64_t k = iv[c[1] * 2 + c[2]];
        assert_int_equal(o[i], (c[0] * 4 + (k < 0 ? k + 4 : k)) * 2 + c[3]);
    }
    op_run_free(&r);

    ((int32_t *)idx->data)[3] = 4;
    r = run_op(RT_OP_GATHER, rt_cpu_gather, &a, 1, (const rt_tensor *[]){x, idx}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);
    assert_non_null(strstr(r.err.text, "index 4 is out of range"));
    op_run_free(&r);
    rt_tensor_free(idx);
    rt_tensor_free(x);
}

static void test_concat_split_round_trip(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_U16, 3, (int64_t[]){2, 7, 3});
    rt_tensor *parts = i64s(3, (int64_t[]){2, 0, 5});
    rt_attr a = attr_int("axis", 1);
    op_run s = run_op(RT_OP_SPLIT, rt_cpu_split, &a, 1, (const rt_tensor *[]){x, parts}, 2, 3);
    assert_int_equal(s.status, RT_OK);
    assert_shape(s.out[0], 3, (int64_t[]){2, 2, 3});
    assert_shape(s.out[1], 3, (int64_t[]){2, 0, 3});
    assert_shape(s.out[2], 3, (int64_t[]){2, 5, 3});
    assert_int_equal(((uint16_t *)s.out[2]->data)[0], 2 * 3); /* element [0,2,0] of x */
    assert_int_equal(((uint16_t *)s.out[2]->data)[15], 7 * 3 + 2 * 3);
    a = attr_int("axis", -2);
    op_run c = run_op(RT_OP_CONCAT, rt_cpu_concat, &a, 1,
                      (const rt_tensor *[]){s.out[0], s.out[1], s.out[2]}, 3, 1);
    assert_int_equal(c.status, RT_OK);
    assert_shape(c.out[0], 3, (int64_t[]){2, 7, 3});
    assert_memory_equal(c.out[0]->data, x->data, rt_tensor_nbytes(x));
    op_run_free(&c);
    op_run_free(&s);
    rt_tensor_free(parts);

    /* equal parts without split; a mismatched split and a shape clash fail */
    a = attr_int("axis", 1);
    s = run_op(RT_OP_SPLIT, rt_cpu_split, &a, 1, (const rt_tensor *[]){x}, 1, 2);
    assert_int_equal(s.status, RT_ERR_INVALID_ARG); /* 7 is odd */
    rt_attr sa[2] = {attr_int("axis", 0), attr_ints("split", (int64_t[]){1, 1}, 2)};
    s = run_op(RT_OP_SPLIT, rt_cpu_split, sa, 2, (const rt_tensor *[]){x}, 1, 2);
    assert_int_equal(s.status, RT_OK);
    assert_int_equal(((uint16_t *)s.out[1]->data)[0], 21);
    c = run_op(RT_OP_CONCAT, rt_cpu_concat, &a, 1, (const rt_tensor *[]){x, s.out[1]}, 2, 1);
    assert_int_equal(c.status, RT_ERR_INVALID_ARG);
    op_run_free(&s);
    rt_tensor_free(x);
}

/* Reference index for reflect and edge padding, by repeated reflection. */
static int64_t ref_pad_index(int64_t i, int64_t dim, bool reflect)
{
    if (!reflect)
        return i < 0 ? 0 : i >= dim ? dim - 1 : i;
    while (i < 0 || i >= dim)
        i = i < 0 ? -i : 2 * (dim - 1) - i;
    return i;
}

static void test_pad_modes(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_F32, 2, (int64_t[]){3, 4});
    rt_tensor *pads = i64s(4, (int64_t[]){2, 5, 4, -1}); /* begin 2, 5; end 4, -1 (crop) */
    for (int m = 0; m < 2; m++) {
        rt_attr a = attr_string("mode", m ? "reflect" : "edge");
        op_run r = run_op(RT_OP_PAD, rt_cpu_pad, &a, 1, (const rt_tensor *[]){x, pads}, 2, 1);
        assert_int_equal(r.status, RT_OK);
        assert_shape(r.out[0], 2, (int64_t[]){9, 8});
        const float *o = r.out[0]->data;
        for (int64_t i = 0; i < 9; i++)
            for (int64_t j = 0; j < 8; j++)
                assert_true(o[i * 8 + j] ==
                            (float)(ref_pad_index(i - 2, 3, m) * 4 + ref_pad_index(j - 5, 4, m)));
        op_run_free(&r);
    }
    rt_tensor *cv = make_tensor(RT_DTYPE_F32, 0, NULL);
    *(float *)cv->data = -1.5f;
    op_run r = run_op(RT_OP_PAD, rt_cpu_pad, NULL, 0, (const rt_tensor *[]){x, pads, cv}, 3, 1);
    assert_int_equal(r.status, RT_OK);
    const float *o = r.out[0]->data;
    for (int64_t i = 0; i < 9; i++)
        for (int64_t j = 0; j < 8; j++) {
            bool inside = i >= 2 && i < 5 && j >= 5;
            assert_true(o[i * 8 + j] == (inside ? (float)((i - 2) * 4 + j - 5) : -1.5f));
        }
    op_run_free(&r);
    /* opset < 11: pads and value as attributes */
    rt_attr at[2] = {attr_ints("pads", (int64_t[]){0, 1, 0, 0}, 4),
                     attr_float("value", 9.0f)};
    r = run_op(RT_OP_PAD, rt_cpu_pad, at, 2, (const rt_tensor *[]){x}, 1, 1);
    assert_shape(r.out[0], 2, (int64_t[]){3, 5});
    assert_true(((float *)r.out[0]->data)[5] == 9.0f && ((float *)r.out[0]->data)[6] == 4.0f);
    op_run_free(&r);
    rt_attr wrap = attr_string("mode", "wrap");
    r = run_op(RT_OP_PAD, rt_cpu_pad, &wrap, 1, (const rt_tensor *[]){x, pads}, 2, 1);
    assert_int_equal(r.status, RT_ERR_UNSUPPORTED);
    rt_tensor_free(cv);
    rt_tensor_free(pads);
    rt_tensor_free(x);
}

static void test_expand_and_tile(void **state)
{
    (void)state;
    rt_tensor *x = iota(RT_DTYPE_I8, 2, (int64_t[]){3, 1});
    rt_tensor *shape = i64s(3, (int64_t[]){2, 1, 6});
    op_run r = run_op(RT_OP_EXPAND, rt_cpu_expand, NULL, 0, (const rt_tensor *[]){x, shape}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){2, 3, 6});
    for (int64_t i = 0; i < 36; i++)
        assert_int_equal(((int8_t *)r.out[0]->data)[i], i / 6 % 3);
    op_run_free(&r);
    rt_tensor_free(shape);
    shape = i64s(2, (int64_t[]){2, 1});
    r = run_op(RT_OP_EXPAND, rt_cpu_expand, NULL, 0, (const rt_tensor *[]){x, shape}, 2, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG); /* 3 against 2 */
    rt_tensor_free(shape);
    rt_tensor_free(x);

    x = iota(RT_DTYPE_F64, 3, (int64_t[]){2, 3, 1});
    rt_tensor *reps = i64s(3, (int64_t[]){3, 2, 5});
    r = run_op(RT_OP_TILE, rt_cpu_tile, NULL, 0, (const rt_tensor *[]){x, reps}, 2, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 3, (int64_t[]){6, 6, 5});
    for (int64_t i = 0; i < 180; i++) {
        int64_t c[3];
        unravel(&r.out[0]->shape, i, c);
        assert_true(((double *)r.out[0]->data)[i] == (double)(c[0] % 2 * 3 + c[1] % 3));
    }
    op_run_free(&r);
    rt_tensor_free(reps);
    rt_tensor_free(x);
}

static void test_range_shape_constants(void **state)
{
    (void)state;
    rt_tensor *s = make_tensor(RT_DTYPE_I32, 0, NULL), *l = make_tensor(RT_DTYPE_I32, 0, NULL),
              *d = make_tensor(RT_DTYPE_I32, 0, NULL);
    *(int32_t *)s->data = 10, *(int32_t *)l->data = -3, *(int32_t *)d->data = -4;
    op_run r = run_op(RT_OP_RANGE, rt_cpu_range, NULL, 0, (const rt_tensor *[]){s, l, d}, 3, 1);
    assert_int_equal(r.status, RT_OK);
    assert_shape(r.out[0], 1, (int64_t[]){4}); /* 10 6 2 -2 */
    assert_int_equal(((int32_t *)r.out[0]->data)[3], -2);
    op_run_free(&r);
    *(int32_t *)d->data = 1; /* counting up from 10 to -3: empty */
    r = run_op(RT_OP_RANGE, rt_cpu_range, NULL, 0, (const rt_tensor *[]){s, l, d}, 3, 1);
    assert_shape(r.out[0], 1, (int64_t[]){0});
    op_run_free(&r);
    *(int32_t *)d->data = 0;
    r = run_op(RT_OP_RANGE, rt_cpu_range, NULL, 0, (const rt_tensor *[]){s, l, d}, 3, 1);
    assert_int_equal(r.status, RT_ERR_INVALID_ARG);

    rt_tensor *x = make_tensor(RT_DTYPE_BOOL, 4, (int64_t[]){2, 3, 5, 7});
    rt_attr se[2] = {attr_int("start", -3), attr_int("end", 100)};
    r = run_op(RT_OP_SHAPE, rt_cpu_shape, se, 2, (const rt_tensor *[]){x}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_I64);
    assert_shape(r.out[0], 1, (int64_t[]){3});
    assert_int_equal(((int64_t *)r.out[0]->data)[0], 3);
    assert_int_equal(((int64_t *)r.out[0]->data)[2], 7);
    op_run_free(&r);

    rt_tensor *dims = i64s(2, (int64_t[]){300, 400});
    rt_tensor *seven = make_tensor(RT_DTYPE_I32, 1, (int64_t[]){1});
    *(int32_t *)seven->data = 7;
    rt_attr v = {.name = "value", .type = RT_ATTR_TENSOR, .t = seven};
    r = run_op(RT_OP_CONSTANT_OF_SHAPE, rt_cpu_constant_of_shape, &v, 1,
               (const rt_tensor *[]){dims}, 1, 1);
    assert_int_equal(r.status, RT_OK);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_I32);
    for (int64_t i = 0; i < 300 * 400; i++)
        assert_int_equal(((int32_t *)r.out[0]->data)[i], 7);
    op_run_free(&r);

    rt_attr ints = attr_ints("value_ints", (int64_t[]){4, -5}, 2);
    r = run_op(RT_OP_CONSTANT, rt_cpu_constant, &ints, 1, NULL, 0, 1);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_I64);
    assert_int_equal(((int64_t *)r.out[0]->data)[1], -5);
    op_run_free(&r);
    rt_attr str = attr_string("value_string", "hello");
    r = run_op(RT_OP_CONSTANT, rt_cpu_constant, &str, 1, NULL, 0, 1);
    assert_int_equal(r.out[0]->dtype, RT_DTYPE_BYTES);
    assert_int_equal(r.out[0]->shape.rank, 0);
    assert_int_equal(((rt_str *)r.out[0]->data)->len, 5);
    op_run_free(&r);

    rt_tensor_free(seven);
    rt_tensor_free(dims);
    rt_tensor_free(x);
    rt_tensor_free(s);
    rt_tensor_free(l);
    rt_tensor_free(d);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_transpose_random_perms),
        cmocka_unit_test(test_transpose_bytes_default_perm),
        cmocka_unit_test(test_reshape_rules),
        cmocka_unit_test(test_flatten_squeeze_unsqueeze),
        cmocka_unit_test(test_slice_steps_and_clamping),
        cmocka_unit_test(test_gather),
        cmocka_unit_test(test_concat_split_round_trip),
        cmocka_unit_test(test_pad_modes),
        cmocka_unit_test(test_expand_and_tile),
        cmocka_unit_test(test_range_shape_constants),
    };
    return cmocka_run_group_tests_name("shape", tests, NULL, NULL);
}
