/* cuda_gemm.h: matrix products of the CUDA backend on cuBLASLt: FP32, TF32, FP16, BF16
 * (and FP64) with FP32 accumulation for the float types, the bias / bias+ReLU /
 * bias+GELU(tanh) epilogues, an explicit 32 MiB workspace, and the algorithm the
 * heuristic picks cached per shape together with its descriptors. */
#ifndef CUDA_GEMM_H
#define CUDA_GEMM_H

#include "cuda_be.h"

typedef enum {
    CUDA_EPI_NONE,
    CUDA_EPI_BIAS,
    CUDA_EPI_RELU_BIAS,
    CUDA_EPI_GELU_TANH_BIAS, /* cuBLASLt's GELU is the tanh approximation */
    CUDA_EPI_RELU,
    CUDA_EPI_GELU_TANH
} cuda_epilogue;

/* D (m x n, row-major, rows ldd apart) = alpha op(A) op(B) + beta D, for batch products
 * whose operands lie stride_* elements apart (0 repeats one). op(A) is m x k: A is stored
 * m x k, or k x m with trans_a, rows lda apart; op(B) is k x n likewise. ab is the
 * operands' dtype (F32, F16, BF16 or F64; or I8 with d I32, integer alpha and beta, no
 * epilogue, and cuBLASLt's INT8 rules: trans_b without trans_a, k, lda and ldb multiples
 * of 4), d D's (F32, or ab); tf32 computes F32
 * operands on the TF32 tensor cores. bias (F32, n elements, D F32 only) feeds the
 * epilogue. */
typedef struct cuda_gemm {
    rt_dtype ab, d;
    bool trans_a, trans_b, tf32;
    int64_t m, n, k;
    const void *a, *b;
    void *out;
    int64_t lda, ldb, ldd;
    int64_t batch, stride_a, stride_b, stride_d;
    float alpha, beta;
    cuda_epilogue epi;
    const float *bias;
} cuda_gemm;

/* A row-major product of contiguous matrices: lda, ldb, ldd and batch 1 filled in. */
cuda_gemm cuda_gemm_plain(rt_dtype ab, rt_dtype d, bool trans_a, bool trans_b, int64_t m,
                          int64_t n, int64_t k, const void *a, const void *b, void *out);

rt_status cuda_gemm_run(cuda_be *be, const cuda_gemm *g, rt_error *err);

/* The cuBLASLt handle, workspace and cache of a backend. */
rt_status cuda_gemm_state_create(cuda_be *be, rt_error *err);
void cuda_gemm_state_free(cuda_be *be);

#endif
