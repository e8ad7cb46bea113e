/* op_test.h: helpers for unit tests that run one op the way the executor does (infer its
 * outputs, allocate them, run the CPU kernel) on hand-built nodes and tensors, and compare
 * the results with references computed in the test. Include after <cmocka.h>. */
#ifndef OP_TEST_H
#define OP_TEST_H

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_ops.h"

typedef rt_status (*op_kernel_fn)(rt_kernel_ctx *ctx, const rt_node *node,
                                  const rt_tensor *const *in, int n_in, rt_tensor *const *out,
                                  int n_out, rt_error *err);

#define OP_MAX_OUT 4

typedef struct op_run {
    rt_status status;
    rt_error err;
    int n_out;
    rt_tensor *out[OP_MAX_OUT];
} op_run;

static inline rt_attr attr_int(const char *name, int64_t v)
{
    return (rt_attr){.name = (char *)name, .type = RT_ATTR_INT, .i = v};
}

static inline rt_attr attr_float(const char *name, float v)
{
    return (rt_attr){.name = (char *)name, .type = RT_ATTR_FLOAT, .f = v};
}

static inline rt_attr attr_ints(const char *name, const int64_t *v, int n)
{
    return (rt_attr){.name = (char *)name, .type = RT_ATTR_INTS, .ints = (int64_t *)v, .n = n};
}

static inline rt_attr attr_string(const char *name, const char *s)
{
    return (rt_attr){.name = (char *)name, .type = RT_ATTR_STRING, .s = (char *)s,
                     .s_len = strlen(s)};
}

/* Infers, allocates outputs filled with a NaN-like byte pattern (so unwritten elements
 * show) and runs the kernel. An input slot that is NULL is an omitted optional input; the
 * node's opset is `opset`; coll (may be NULL) gives the kernel tensor-parallel collectives. */
static inline op_run run_op_with(rt_op op, int opset, op_kernel_fn kernel, rt_attr *attrs,
                                 int n_attrs, const rt_tensor *const *in, int n_in, int n_out,
                                 const rt_collectives *coll)
{
    int inputs[8], outputs[OP_MAX_OUT];
    for (int i = 0; i < n_in; i++)
        inputs[i] = in[i] ? i : -1;
    for (int i = 0; i < n_out; i++)
        outputs[i] = i;
    rt_node node = {.name = "n", .op = op, .opset = opset, .n_inputs = n_in, .inputs = inputs,
                    .n_outputs = n_out, .outputs = outputs, .n_attrs = n_attrs, .attrs = attrs};
    rt_tensor meta[OP_MAX_OUT];
    op_run r = {.n_out = n_out};
    memset(meta, 0, sizeof meta);
    r.status = rt_op_infer(&node, in, n_in, meta, n_out, &r.err);
    if (r.status != RT_OK)
        return r;
    for (int i = 0; i < n_out; i++) {
        r.out[i] = rt_tensor_create(meta[i].dtype, &meta[i].shape, &r.err);
        assert_non_null(r.out[i]);
        memset(r.out[i]->data, 0xff, rt_tensor_nbytes(r.out[i]));
    }
    rt_kernel_ctx ctx = {.threads = 2};
    if (coll)
        ctx.coll = *coll;
    r.status = kernel(&ctx, &node, in, n_in, r.out, n_out, &r.err);
    rt_kernel_ctx_release(&ctx);
    return r;
}

static inline op_run run_op_opset(rt_op op, int opset, op_kernel_fn kernel, rt_attr *attrs,
                                  int n_attrs, const rt_tensor *const *in, int n_in, int n_out)
{
    return run_op_with(op, opset, kernel, attrs, n_attrs, in, n_in, n_out, NULL);
}

static inline op_run run_op(rt_op op, op_kernel_fn kernel, rt_attr *attrs, int n_attrs,
                            const rt_tensor *const *in, int n_in, int n_out)
{
    return run_op_opset(op, 17, kernel, attrs, n_attrs, in, n_in, n_out);
}

static inline void op_run_free(op_run *r)
{
    for (int i = 0; i < r->n_out; i++)
        rt_tensor_free(r->out[i]);
}

static inline rt_tensor *make_tensor(rt_dtype dt, int rank, const int64_t *dims)
{
    rt_shape s = rt_shape_make(rank, dims);
    rt_tensor *t = rt_tensor_create(dt, &s, NULL);
    assert_non_null(t);
    return t;
}

/* A tensor of uniform pseudo-random values in [-2, 2) ([0, 4) for unsigned dtypes) from a
 * fixed seed; integer dtypes get the values scaled by 10 and truncated. */
static inline rt_tensor *make_random(rt_dtype dt, int rank, const int64_t *dims, uint32_t seed)
{
    rt_tensor *t = make_tensor(dt, rank, dims);
    uint32_t s = seed * 2654435761u + 1;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++) {
        s = s * 1664525u + 1013904223u;
        double v = (double)(s >> 8) / (double)(1u << 24) * 4.0 - (rt_dtype_is_signed(dt) ? 2.0 : 0.0);
        rt_dtype_store_f64(dt, t->data, (size_t)i, rt_dtype_is_integer(dt) ? v * 10 : v);
    }
    return t;
}

static inline rt_tensor *make_values(rt_dtype dt, int rank, const int64_t *dims,
                                     const double *v)
{
    rt_tensor *t = make_tensor(dt, rank, dims);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        rt_dtype_store_f64(dt, t->data, (size_t)i, v[i]);
    return t;
}

static inline double elem(const rt_tensor *t, int64_t i)
{
    return rt_dtype_load_f64(t->dtype, t->data, (size_t)i);
}

static inline void assert_shape(const rt_tensor *t, int rank, const int64_t *dims)
{
    assert_int_equal(t->shape.rank, rank);
    for (int k = 0; k < rank; k++)
        assert_int_equal(t->shape.dims[k], dims[k]);
}

/* Every element of t within tol (absolute + relative) of the reference. */
static inline void assert_close(const rt_tensor *t, const double *ref, double tol)
{
    for (int64_t i = 0; i < rt_tensor_numel(t); i++) {
        double got = elem(t, i);
        if (!(fabs(got - ref[i]) <= tol * (1 + fabs(ref[i]))))
            fail_msg("element %lld: got %.9g, expected %.9g", (long long)i, got, ref[i]);
    }
}

/* max |a - b| over max |b|: how far a is from the reference b relative to b's range. */
static inline double max_rel_diff(const rt_tensor *a, const rt_tensor *b)
{
    double worst = 0, range = 0;
    for (int64_t i = 0; i < rt_tensor_numel(b); i++) {
        worst = fmax(worst, fabs(elem(a, i) - elem(b, i)));
        range = fmax(range, fabs(elem(b, i)));
    }
    return worst / range;
}

/* Flat index -> coordinates of a row-major shape. */
static inline void unravel(const rt_shape *s, int64_t i, int64_t *c)
{
    for (int k = s->rank - 1; k >= 0; k--) {
        c[k] = i % s->dims[k];
        i /= s->dims[k];
    }
}

#endif
