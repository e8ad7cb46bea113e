/* rt_sparse.h: infd.SparseLinear, the Linear whose pruned weight (rt_compress_prune.c) is
 * held as compressed sparse columns, and the CPU kernel behind it (rt_cpu_sparse.c).
 *
 *   infd.SparseLinear(X, V, R, C, B?)  Y = act(X W + B) over X's last dim, for W (K, N)
 *       held by columns: the nonzeros of column j are V[C[j] .. C[j + 1]) (F32) in rows
 *       R[C[j] .. C[j + 1]) (U16, increasing); C (I32) has N + 1 entries from 0 to the
 *       number of nonzeros; attribute "k" is K; B and the activation as Linear's
 *       (rt_fused.h). Its shape inference lives in rt_op_sparse.c.
 *
 * The pruning pass uses this form only where its kernel measured faster than OpenBLAS's
 * dense SGEMM on the same weight (below), where it also needs fewer bytes (6 per nonzero
 * against 4 per weight). */
#ifndef RT_SPARSE_H
#define RT_SPARSE_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_backend.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* When a pruned Linear runs sparse: at least RT_SPARSE_MIN_SPARSITY zeros in a W of at
 * least RT_SPARSE_MIN_WEIGHTS elements. Measured by `make bench-sparse` (the table in
 * docs/compression.md: one thread; K x N of 768 x 3072, 3072 x 768, 256 x 1024, 256 x 256
 * and 57 x 64; 1 to 1024 rows): at 50% zeros the sparse kernel was faster only for 1 to 4
 * rows (0.4x to 0.7x at 128 and 1024 rows); at 70% it still lost at 128 or 1024 rows on
 * three of the five shapes (0.83x to 0.98x); from 80% on it was faster in every case of
 * 256 x 256 and larger (1.1x to 4.1x; at 90% 1.3x to 7.8x). On the spam model's 57 x 64 it
 * lost at every sparsity from 4 rows on (0.4x to 0.6x: too little work per column to pay
 * for its overhead). */
#define RT_SPARSE_MIN_SPARSITY 0.8
#define RT_SPARSE_MIN_WEIGHTS 65536
/* R is U16: K of at most this many rows. */
#define RT_SPARSE_MAX_K 65536

/* A borrowed view of W in the columns form above. */
typedef struct rt_sparse_cols {
    int64_t k, n;
    const float *val;     /* nonzeros, column by column */
    const uint16_t *row;  /* the row of each */
    const int32_t *start; /* n + 1 offsets into val and row */
} rt_sparse_cols;

/* The V, R and C tensors (new, the caller frees them) of the nonzeros of W (k x n,
 * row-major), or of W stored transposed (n x k) when trans_b. RT_ERR_INVALID_ARG when k
 * exceeds RT_SPARSE_MAX_K. rt_op_sparse.c */
rt_status rt_sparse_from_dense(const float *w, int64_t k, int64_t n, bool trans_b,
                               rt_tensor **val, rt_tensor **row, rt_tensor **start,
                               rt_error *err);

/* Y (m x n, row-major) = X (m x k) W + bias (n elements; may be NULL), every element of Y
 * written, over ctx's threads with its scratch. RT_ERR_NOMEM when the scratch cannot
 * grow. rt_cpu_sparse.c */
rt_status rt_cpu_sparse_matmul(rt_kernel_ctx *ctx, int64_t m, const float *x,
                               const rt_sparse_cols *w, const float *bias, float *y,
                               rt_error *err);

#endif
