/* cuda_gemm.c: cuBLASLt matrix products (cuda_gemm.h).
 *
 * cuBLASLt is column-major and our tensors are row-major, so a row-major D = op(A) op(B)
 * is computed as the column-major D^T = op(B)^T op(A)^T: B is passed as cuBLASLt's A and
 * A as its B, with m and n swapped; the bias epilogue's vector then runs along D's rows,
 * which are our columns, as Linear wants. */
#include "cuda_gemm.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_lt.h"
#include "rt_fused.h"

#define WORKSPACE_BYTES (32u << 20) /* what cuBLAS recommends on Hopper */
#define CACHE_SIZE 256

/* Everything the descriptors and the heuristic depend on (zeroed before filling: it is
 * compared with memcmp). */
typedef struct gemm_key {
    int ab, d, epi, tf32, ta, tb;
    int64_t m, n, k, lda, ldb, ldd, batch, sa, sb, sd;
    uint32_t align_a, align_b, align_d;
} gemm_key;

typedef struct gemm_entry {
    gemm_key key;
    cublasLtMatmulDesc_t desc;
    cublasLtMatrixLayout_t la, lb, ld; /* cuBLASLt's A (our B), B (our A), C = D */
    cublasLtMatmulAlgo_t algo;
} gemm_entry;

struct cuda_gemm_state {
    const cuda_lt *lt;
    cublasLtHandle_t handle;
    void *workspace;
    gemm_entry cache[CACHE_SIZE];
    int n_cache;
};

static rt_status lt_fail(rt_error *err, const cuda_lt *lt, cublasStatus_t s, const char *what)
{
    return rt_error_set(err, RT_ERR_BACKEND, "cuda: cuBLASLt %s: %s", what,
                        lt->status_string(s));
}

#define LT_TRY(lt, err, call, what)                                                         \
    do {                                                                                    \
        cublasStatus_t lt_s_ = (call);                                                      \
        if (lt_s_ != CUBLAS_STATUS_SUCCESS)                                                 \
            return lt_fail((err), (lt), lt_s_, (what));                                     \
    } while (0)

rt_status cuda_gemm_state_create(cuda_be *be, rt_error *err)
{
    const cuda_lt *lt = cuda_lt_get(err);
    if (!lt)
        return err ? err->status : RT_ERR_BACKEND;
    cuda_gemm_state *s = calloc(1, sizeof *s);
    if (!s)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory creating the cuda backend");
    be->gemm = s;
    s->lt = lt;
    LT_TRY(lt, err, lt->create(&s->handle), "creating a handle");
    s->workspace = cuda_mem_alloc(be, WORKSPACE_BYTES, err);
    return s->workspace ? RT_OK : err ? err->status : RT_ERR_NOMEM;
}

static void entry_clear(const cuda_lt *lt, gemm_entry *e)
{
    if (e->desc)
        lt->desc_destroy(e->desc);
    if (e->la)
        lt->layout_destroy(e->la);
    if (e->lb)
        lt->layout_destroy(e->lb);
    if (e->ld)
        lt->layout_destroy(e->ld);
    memset(e, 0, sizeof *e);
}

void cuda_gemm_state_free(cuda_be *be)
{
    cuda_gemm_state *s = be->gemm;
    if (!s)
        return;
    for (int i = 0; i < s->n_cache; i++)
        entry_clear(s->lt, &s->cache[i]);
    cuda_mem_free(be, s->workspace);
    if (s->handle)
        s->lt->destroy(s->handle);
    free(s);
    be->gemm = NULL;
}

cuda_gemm cuda_gemm_plain(rt_dtype ab, rt_dtype d, bool trans_a, bool trans_b, int64_t m,
                          int64_t n, int64_t k, const void *a, const void *b, void *out)
{
    cuda_gemm g = {.ab = ab, .d = d, .trans_a = trans_a, .trans_b = trans_b, .m = m, .n = n,
                   .k = k, .a = a, .b = b, .out = out, .lda = trans_a ? m : k,
                   .ldb = trans_b ? k : n, .ldd = n, .batch = 1, .alpha = 1.0f};
    return g;
}

static cudaDataType_t data_type(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F16: return CUDA_R_16F;
    case RT_DTYPE_BF16: return CUDA_R_16BF;
    case RT_DTYPE_F64: return CUDA_R_64F;
    case RT_DTYPE_I8: return CUDA_R_8I;
    case RT_DTYPE_I32: return CUDA_R_32I;
    default: return CUDA_R_32F;
    }
}

static cublasLtEpilogue_t epilogue(cuda_epilogue e)
{
    switch (e) {
    case CUDA_EPI_BIAS: return CUBLASLT_EPILOGUE_BIAS;
    case CUDA_EPI_RELU_BIAS: return CUBLASLT_EPILOGUE_RELU_BIAS;
    case CUDA_EPI_GELU_TANH_BIAS: return CUBLASLT_EPILOGUE_GELU_BIAS;
    case CUDA_EPI_RELU: return CUBLASLT_EPILOGUE_RELU;
    case CUDA_EPI_GELU_TANH: return CUBLASLT_EPILOGUE_GELU;
    default: return CUBLASLT_EPILOGUE_DEFAULT;
    }
}

/* The largest power of two (up to 256) that every batch's pointer is a multiple of. */
static uint32_t alignment(const void *p, int64_t stride, size_t elem)
{
    uint64_t bits = (uint64_t)(uintptr_t)p | (uint64_t)stride * elem | 256u;
    return (uint32_t)(bits & (~bits + 1));
}

static rt_status layout(const cuda_lt *lt, cublasLtMatrixLayout_t *l, cudaDataType_t t,
                        int64_t rows, int64_t cols, int64_t ld, int64_t batch, int64_t stride,
                        rt_error *err)
{
    LT_TRY(lt, err, lt->layout_create(l, t, (uint64_t)rows, (uint64_t)cols, ld),
           "creating a matrix layout");
    if (batch > 1) {
        int32_t count = (int32_t)batch;
        LT_TRY(lt, err,
               lt->layout_set(*l, CUBLASLT_MATRIX_LAYOUT_BATCH_COUNT, &count, sizeof count),
               "setting a batch count");
        LT_TRY(lt, err, lt->layout_set(*l, CUBLASLT_MATRIX_LAYOUT_STRIDED_BATCH_OFFSET, &stride,
                                       sizeof stride),
               "setting a batch stride");
    }
    return RT_OK;
}

/* Descriptors and the heuristic's algorithm for key. */
static rt_status entry_build(cuda_gemm_state *s, const gemm_key *key, gemm_entry *e,
                             rt_error *err)
{
    const cuda_lt *lt = s->lt;
    memset(e, 0, sizeof *e);
    e->key = *key;
    rt_dtype ab = (rt_dtype)key->ab;
    bool f64 = ab == RT_DTYPE_F64, i8 = ab == RT_DTYPE_I8;
    cublasComputeType_t compute = f64  ? CUBLAS_COMPUTE_64F
                                  : i8 ? CUBLAS_COMPUTE_32I
                                  : key->tf32 ? CUBLAS_COMPUTE_32F_FAST_TF32 : CUBLAS_COMPUTE_32F;
    LT_TRY(lt, err,
           lt->desc_create(&e->desc, compute, f64 ? CUDA_R_64F : i8 ? CUDA_R_32I : CUDA_R_32F),
           "creating a matmul descriptor");
    /* cuBLASLt's A is our B and its B our A */
    cublasOperation_t op_a = key->tb ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasOperation_t op_b = key->ta ? CUBLAS_OP_T : CUBLAS_OP_N;
    cublasLtEpilogue_t epi = epilogue((cuda_epilogue)key->epi);
    LT_TRY(lt, err, lt->desc_set(e->desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_a, sizeof op_a),
           "setting transa");
    LT_TRY(lt, err, lt->desc_set(e->desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_b, sizeof op_b),
           "setting transb");
    LT_TRY(lt, err, lt->desc_set(e->desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epi, sizeof epi),
           "setting the epilogue");
    cudaDataType_t t = data_type(ab), td = data_type((rt_dtype)key->d);
    rt_status st = layout(lt, &e->la, t, key->tb ? key->k : key->n, key->tb ? key->n : key->k,
                          key->ldb, key->batch, key->sb, err);
    if (st == RT_OK)
        st = layout(lt, &e->lb, t, key->ta ? key->m : key->k, key->ta ? key->k : key->m,
                    key->lda, key->batch, key->sa, err);
    if (st == RT_OK)
        st = layout(lt, &e->ld, td, key->n, key->m, key->ldd, key->batch, key->sd, err);
    if (st != RT_OK)
        return st;
    cublasLtMatmulPreference_t pref;
    LT_TRY(lt, err, lt->pref_create(&pref), "creating a preference");
    uint64_t ws = WORKSPACE_BYTES;
    cublasStatus_t ps =
        lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof ws);
    if (ps == CUBLAS_STATUS_SUCCESS)
        ps = lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &key->align_b,
                          sizeof key->align_b);
    if (ps == CUBLAS_STATUS_SUCCESS)
        ps = lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &key->align_a,
                          sizeof key->align_a);
    if (ps == CUBLAS_STATUS_SUCCESS)
        ps = lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &key->align_d,
                          sizeof key->align_d);
    if (ps == CUBLAS_STATUS_SUCCESS)
        ps = lt->pref_set(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &key->align_d,
                          sizeof key->align_d);
    cublasLtMatmulHeuristicResult_t res;
    int found = 0;
    if (ps == CUBLAS_STATUS_SUCCESS)
        ps = lt->heuristic(s->handle, e->desc, e->la, e->lb, e->ld, e->ld, pref, 1, &res, &found);
    lt->pref_destroy(pref);
    if (ps != CUBLAS_STATUS_SUCCESS)
        return lt_fail(err, lt, ps, "choosing an algorithm");
    if (found < 1)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "cuda: cuBLASLt has no algorithm for a %s %lldx%lldx%lld product "
                            "(batch %lld)", rt_dtype_name(ab), (long long)key->m,
                            (long long)key->n, (long long)key->k, (long long)key->batch);
    e->algo = res.algo;
    return RT_OK;
}

/* The cache entry for key, built on a miss (a full cache starts over). */
static gemm_entry *entry_get(cuda_gemm_state *s, const gemm_key *key, rt_error *err)
{
    for (int i = 0; i < s->n_cache; i++)
        if (memcmp(&s->cache[i].key, key, sizeof *key) == 0)
            return &s->cache[i];
    if (s->n_cache == CACHE_SIZE) {
        for (int i = 0; i < s->n_cache; i++)
            entry_clear(s->lt, &s->cache[i]);
        s->n_cache = 0;
    }
    gemm_entry *e = &s->cache[s->n_cache];
    if (entry_build(s, key, e, err) != RT_OK) {
        entry_clear(s->lt, e);
        return NULL;
    }
    s->n_cache++;
    return e;
}

/* k = 0: D = bias and activation of nothing, over a contiguous D. */
static rt_status empty_product(cuda_be *be, const cuda_gemm *g, rt_error *err)
{
    size_t elem = rt_dtype_size(g->d);
    bool contiguous = g->ldd == g->n && (g->batch == 1 || g->stride_d == g->m * g->n);
    if (g->beta == 1.0f)
        return g->epi == CUDA_EPI_NONE ? RT_OK
                                       : rt_error_set(err, RT_ERR_UNSUPPORTED,
                                                      "cuda: an empty product with an epilogue");
    if (!contiguous || g->beta != 0.0f)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: an empty product into a strided or "
                            "scaled output");
    size_t bytes = (size_t)(g->batch * g->m * g->n) * elem;
    CUDA_TRY(be, err, cudaMemsetAsync(g->out, 0, bytes, be->stream), "clearing an output");
    if (g->epi == CUDA_EPI_NONE)
        return RT_OK;
    if (g->d != RT_DTYPE_F32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "cuda: an epilogue on a %s output",
                            rt_dtype_name(g->d));
    bool relu = g->epi == CUDA_EPI_RELU || g->epi == CUDA_EPI_RELU_BIAS;
    bool gelu = g->epi == CUDA_EPI_GELU_TANH || g->epi == CUDA_EPI_GELU_TANH_BIAS;
    cuda_act act = {.kind = relu ? RT_ACT_RELU : gelu ? RT_ACT_GELU_TANH : RT_ACT_NONE};
    bool bias = g->epi == CUDA_EPI_BIAS || g->epi == CUDA_EPI_RELU_BIAS ||
                g->epi == CUDA_EPI_GELU_TANH_BIAS;
    CUDA_LAUNCH(be, err,
                cuda_k_bias_act(be->stream, g->out, g->out, g->batch * g->m, g->n,
                                bias ? g->bias : NULL, act),
                "GEMM epilogue");
    return RT_OK;
}

rt_status cuda_gemm_run(cuda_be *be, const cuda_gemm *g, rt_error *err)
{
    cuda_gemm_state *s = be->gemm;
    if (g->m == 0 || g->n == 0 || g->batch == 0)
        return RT_OK;
    if (g->k == 0)
        return empty_product(be, g, err);
    size_t ea = rt_dtype_size(g->ab), ed = rt_dtype_size(g->d);
    gemm_key key;
    memset(&key, 0, sizeof key);
    key.ab = g->ab;
    key.d = g->d;
    key.epi = g->epi;
    key.tf32 = g->tf32 && g->ab == RT_DTYPE_F32;
    key.ta = g->trans_a;
    key.tb = g->trans_b;
    key.m = g->m;
    key.n = g->n;
    key.k = g->k;
    key.lda = g->lda;
    key.ldb = g->ldb;
    key.ldd = g->ldd;
    key.batch = g->batch;
    key.sa = g->batch > 1 ? g->stride_a : 0;
    key.sb = g->batch > 1 ? g->stride_b : 0;
    key.sd = g->batch > 1 ? g->stride_d : 0;
    key.align_a = alignment(g->a, key.sa, ea);
    key.align_b = alignment(g->b, key.sb, ea);
    key.align_d = alignment(g->out, key.sd, ed);
    gemm_entry *e = entry_get(s, &key, err);
    if (!e)
        return err ? err->status : RT_ERR_BACKEND;
    const cuda_lt *lt = s->lt;
    if (g->epi == CUDA_EPI_BIAS || g->epi == CUDA_EPI_RELU_BIAS ||
        g->epi == CUDA_EPI_GELU_TANH_BIAS)
        LT_TRY(lt, err, lt->desc_set(e->desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &g->bias,
                                     sizeof g->bias),
               "setting the bias");
    double alpha64 = g->alpha, beta64 = g->beta;
    float alpha32 = g->alpha, beta32 = g->beta;
    int32_t alpha_i = (int32_t)g->alpha, beta_i = (int32_t)g->beta;
    const void *alpha = g->ab == RT_DTYPE_F64  ? (const void *)&alpha64
                        : g->ab == RT_DTYPE_I8 ? (const void *)&alpha_i
                                               : (const void *)&alpha32;
    const void *beta = g->ab == RT_DTYPE_F64  ? (const void *)&beta64
                       : g->ab == RT_DTYPE_I8 ? (const void *)&beta_i
                                              : (const void *)&beta32;
    be->kernels++;
    LT_TRY(lt, err,
           lt->matmul(s->handle, e->desc, alpha, g->b, e->la, g->a, e->lb, beta,
                      g->out, e->ld, g->out, e->ld, &e->algo, s->workspace, WORKSPACE_BYTES,
                      be->stream),
           "matmul");
    return RT_OK;
}
