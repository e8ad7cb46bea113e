/* rt_cpu_matmul.c: CPU kernels of MatMul (numpy semantics: 1-D operands, broadcast batch
 * dims) and Gemm. F32/F64 go to OpenBLAS, F16/BF16 through float copies, integers through
 * a plain loop with int64 accumulation. */
#include <cblas.h>

#include "rt_cpu.h"
#include "rt_cpu_nn_util.h"
#include "rt_cpu_strided.h"

typedef struct {
    bool ta, tb;
    int64_t m, n, k;
    double alpha, beta;
} gemm_shape;

/* Y = alpha * A B + beta * Y for integer dtypes (Y is not read when beta is 0). */
static void gemm_int(rt_dtype dt, const gemm_shape *g, const void *a, const void *b, void *y)
{
    bool exact = g->alpha == 1 && (g->beta == 0 || g->beta == 1);
    for (int64_t i = 0; i < g->m; i++)
        for (int64_t j = 0; j < g->n; j++) {
            int64_t acc = 0;
            for (int64_t p = 0; p < g->k; p++) {
                size_t ia = (size_t)(g->ta ? p * g->m + i : i * g->k + p);
                size_t ib = (size_t)(g->tb ? j * g->k + p : p * g->n + j);
                acc += rt_dtype_load_i64(dt, a, ia) * rt_dtype_load_i64(dt, b, ib);
            }
            size_t iy = (size_t)(i * g->n + j);
            int64_t prev = g->beta != 0 ? rt_dtype_load_i64(dt, y, iy) : 0;
            if (exact)
                rt_dtype_store_i64(dt, y, iy, acc + prev);
            else
                rt_dtype_store_f64(dt, y, iy, g->alpha * (double)acc + g->beta * (double)prev);
        }
}

/* Y (m x n, row-major) = alpha * op(A) op(B) + beta * Y; Y is not read when beta is 0. */
static void gemm_one(rt_dtype dt, const gemm_shape *g, const void *a, const void *b, void *y)
{
    if (g->m == 0 || g->n == 0)
        return;
    if (g->k == 0) {
        for (size_t i = 0; i < (size_t)(g->m * g->n); i++)
            rt_dtype_store_f64(dt, y, i, g->beta != 0 ? g->beta * rt_dtype_load_f64(dt, y, i) : 0);
        return;
    }
    enum CBLAS_TRANSPOSE ta = g->ta ? CblasTrans : CblasNoTrans;
    enum CBLAS_TRANSPOSE tb = g->tb ? CblasTrans : CblasNoTrans;
    blasint m = (blasint)g->m, n = (blasint)g->n, k = (blasint)g->k;
    blasint lda = g->ta ? m : k, ldb = g->tb ? k : n;
    if (dt == RT_DTYPE_F32)
        cblas_sgemm(CblasRowMajor, ta, tb, m, n, k, (float)g->alpha, a, lda, b, ldb,
                    (float)g->beta, y, n);
    else if (dt == RT_DTYPE_F64)
        cblas_dgemm(CblasRowMajor, ta, tb, m, n, k, g->alpha, a, lda, b, ldb, g->beta, y, n);
    else
        gemm_int(dt, g, a, b, y);
}

/* Runs body directly for F32/F64/integers and through float copies for F16/BF16. */
static rt_status run_typed(rt_kernel_ctx *ctx, rt_nn_body body, const void *params,
                           const rt_tensor *const *in, int n_in, rt_tensor *const *out, int n_out,
                           rt_error *err)
{
    rt_dtype dt = in[0]->dtype;
    if (rt_dtype_is_integer(dt))
        return body(ctx, params, in, out, NULL, err);
    return rt_nn_run(ctx, dt, body, params, in, n_in, out, n_out, 0, err);
}

/* ---- MatMul ---- */

typedef struct {
    gemm_shape g;
    int batch_rank;                 /* output batch dims */
    int64_t batch[RT_MAX_RANK];
    int64_t a_stride[RT_MAX_RANK];  /* matrices to step per batch index; 0 = broadcast */
    int64_t b_stride[RT_MAX_RANK];
    int64_t n_batch, b_batches;
} matmul_params;

/* Strides (in matrices) of an operand's batch dims aligned right to the output's. */
static int64_t batch_strides(const rt_shape *s, int own_rank, const matmul_params *p,
                             int64_t *stride)
{
    int64_t count = 1;
    for (int i = p->batch_rank - 1; i >= 0; i--) {
        int d = i - (p->batch_rank - own_rank);
        int64_t dim = d >= 0 ? s->dims[d] : 1;
        stride[i] = dim == 1 ? 0 : count;
        count *= dim;
    }
    return count;
}

static rt_status matmul_body(rt_kernel_ctx *ctx, const void *params, const rt_tensor *const *in,
                             rt_tensor *const *out, void *scratch, rt_error *err)
{
    (void)ctx, (void)scratch, (void)err;
    const matmul_params *p = params;
    rt_dtype dt = in[0]->dtype;
    size_t es = rt_dtype_size(dt);
    const char *a = in[0]->data, *b = in[1]->data;
    char *y = out[0]->data;
    size_t a_mat = (size_t)(p->g.m * p->g.k) * es, b_mat = (size_t)(p->g.k * p->g.n) * es;
    size_t y_mat = (size_t)(p->g.m * p->g.n) * es;
    if (p->b_batches == 1) {
        /* one B for every batch (so A has them all): stack A's batches into one tall matrix */
        gemm_shape tall = p->g;
        tall.m *= p->n_batch;
        gemm_one(dt, &tall, a, b, y);
        return RT_OK;
    }
    for (int64_t bi = 0; bi < p->n_batch; bi++) {
        int64_t rem = bi, ia = 0, ib = 0;
        for (int i = p->batch_rank - 1; i >= 0; i--) {
            int64_t idx = rem % p->batch[i];
            rem /= p->batch[i];
            ia += idx * p->a_stride[i];
            ib += idx * p->b_stride[i];
        }
        gemm_one(dt, &p->g, a + (size_t)ia * a_mat, b + (size_t)ib * b_mat,
                 y + (size_t)bi * y_mat);
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_matmul)
{
    (void)node;
    const rt_shape *a = &in[0]->shape, *b = &in[1]->shape, *y = &out[0]->shape;
    matmul_params p = {.g = {.alpha = 1, .beta = 0}};
    p.g.m = a->rank >= 2 ? a->dims[a->rank - 2] : 1;
    p.g.k = a->dims[a->rank - 1];
    p.g.n = b->rank >= 2 ? b->dims[b->rank - 1] : 1;
    p.batch_rank = y->rank - (a->rank >= 2) - (b->rank >= 2);
    p.n_batch = 1;
    for (int i = 0; i < p.batch_rank; i++) {
        p.batch[i] = y->dims[i];
        p.n_batch *= y->dims[i];
    }
    if (p.n_batch == 0)
        return RT_OK;
    batch_strides(a, a->rank > 2 ? a->rank - 2 : 0, &p, p.a_stride);
    p.b_batches = batch_strides(b, b->rank > 2 ? b->rank - 2 : 0, &p, p.b_stride);
    return run_typed(ctx, matmul_body, &p, in, n_in, out, n_out, err);
}

/* ---- Gemm ---- */

static rt_status gemm_body(rt_kernel_ctx *ctx, const void *params, const rt_tensor *const *in,
                           rt_tensor *const *out, void *scratch, rt_error *err)
{
    (void)scratch, (void)err;
    gemm_shape g = *(const gemm_shape *)params;
    const rt_tensor *c = in[2];
    if (c && g.beta != 0) {
        /* Y starts as C broadcast to (m, n): a stride of 0 repeats a dim of size 1 */
        const rt_shape *cs = &c->shape;
        int64_t cm = cs->rank == 2 ? cs->dims[0] : 1;
        int64_t cn = cs->rank >= 1 ? cs->dims[cs->rank - 1] : 1;
        int64_t src[2] = {cm == 1 ? 0 : cn, cn == 1 ? 0 : 1}, dst[2] = {g.n, 1};
        int64_t dims[2] = {g.m, g.n};
        rt_strided_copy(out[0]->data, dst, c->data, src, 2, dims, rt_dtype_size(c->dtype),
                        ctx->threads);
    } else {
        g.beta = 0;
    }
    gemm_one(out[0]->dtype, &g, in[0]->data, in[1]->data, out[0]->data);
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_gemm)
{
    gemm_shape g = {
        .ta = rt_node_attr_int(node, "transA", 0) != 0,
        .tb = rt_node_attr_int(node, "transB", 0) != 0,
        .m = out[0]->shape.dims[0],
        .n = out[0]->shape.dims[1],
        .alpha = rt_node_attr_float(node, "alpha", 1.0f),
        .beta = rt_node_attr_float(node, "beta", 1.0f),
    };
    g.k = in[0]->shape.dims[g.ta ? 0 : 1];
    const rt_tensor *args[3] = {in[0], in[1], n_in > 2 ? in[2] : NULL};
    return run_typed(ctx, gemm_body, &g, args, 3, out, n_out, err);
}
