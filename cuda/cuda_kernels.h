/* cuda_kernels.h: the launchers of the CUDA backend's own kernels (cuda_k_*.cu), callable
 * from C. Each launcher issues exactly one kernel on stream s (none when there is nothing
 * to do) and returns the launch status (cudaGetLastError); kernels that meet bad input
 * (a Gather index out of range) set *flag to a CUDA_FLAG_* code instead of failing, and
 * the backend reports it at the next synchronize. Shapes and strides are in elements and
 * row-major; dtypes are rt_dtype values. Parameter structs travel by value. */
#ifndef CUDA_KERNELS_H
#define CUDA_KERNELS_H

#include <stdbool.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#ifdef __cplusplus
extern "C" {
#endif

#define CUDA_MAX_RANK 8
#define CUDA_BOX_RANK 16  /* Tile's box has twice the tensor's rank */
#define CUDA_EW_MAX_IN 16 /* inputs of an infd.FusedElementwise the kernel takes */
#define CUDA_EW_MAX_STEPS 32

/* codes a kernel writes to the backend's flag word */
#define CUDA_FLAG_GATHER_INDEX 1

/* Elementwise operations (binary, unary, and the steps of a fused chain). */
typedef enum {
    CUDA_OP_ADD, CUDA_OP_SUB, CUDA_OP_MUL, CUDA_OP_DIV, CUDA_OP_POW, CUDA_OP_MIN, CUDA_OP_MAX,
    CUDA_OP_EQUAL, CUDA_OP_LESS, CUDA_OP_GREATER,
    CUDA_OP_SQRT, CUDA_OP_EXP, CUDA_OP_LOG, CUDA_OP_NEG, CUDA_OP_ABS, CUDA_OP_RECIPROCAL,
    CUDA_OP_RELU, CUDA_OP_LEAKY_RELU, CUDA_OP_SIGMOID, CUDA_OP_TANH, CUDA_OP_ERF, CUDA_OP_NOT,
    CUDA_OP_CLIP, CUDA_OP_GELU, CUDA_OP_GELU_TANH,
    CUDA_OP_NONE
} cuda_op;

/* A strided box copy: for every index i of the box, dst[sum_d i_d dst_d] =
 * src[sum_d i_d src_d]. */
typedef struct cuda_box {
    int rank;
    int64_t dims[CUDA_BOX_RANK];
    int64_t dst[CUDA_BOX_RANK];
    int64_t src[CUDA_BOX_RANK];
} cuda_box;

/* An output walked in row-major order with up to three inputs that broadcast to it:
 * input k's element for output index (i_0..i_r-1) is sum_d i_d strides[k][d]. */
typedef struct cuda_bcast {
    int rank;
    int64_t dims[CUDA_MAX_RANK];
    int64_t strides[3][CUDA_MAX_RANK];
    int64_t numel;
} cuda_bcast;

/* Unary parameters: LeakyRelu's alpha; Clip's bounds as doubles (float dtypes) and as
 * int64 (integer dtypes; has_lo / has_hi false means no bound). */
typedef struct cuda_unary {
    cuda_op op;
    float alpha;
    double lo, hi;
    int64_t ilo, ihi;
    bool has_ilo, has_ihi;
} cuda_unary;

/* One step of a fused elementwise chain (rt_ew_step): arg is the input of a binary
 * step's other operand (-1 unary), swap puts the chain value second. */
typedef struct cuda_ew_step {
    cuda_op op;
    int arg;
    int swap;
    float p0, p1;
} cuda_ew_step;

typedef struct cuda_ew {
    int n_steps;
    cuda_ew_step steps[CUDA_EW_MAX_STEPS];
    int n_in;
    int in0_dtype;                              /* input 0 is any numeric dtype; others F32 */
    const void *in[CUDA_EW_MAX_IN];
    int rank;
    int64_t dims[CUDA_MAX_RANK];                /* output dims */
    int64_t strides[CUDA_EW_MAX_IN][CUDA_MAX_RANK]; /* per input, 0 where it broadcasts */
    int64_t numel;
} cuda_ew;

/* A reduction: each output (over the kept dims) combines count input elements (over the
 * reduced dims); strides are the input's. */
typedef struct cuda_reduce {
    int kept_rank, red_rank;
    int64_t kept_dims[CUDA_MAX_RANK], kept_strides[CUDA_MAX_RANK];
    int64_t red_dims[CUDA_MAX_RANK], red_strides[CUDA_MAX_RANK];
    int64_t n_out, count;
} cuda_reduce;

typedef enum { CUDA_REDUCE_SUM, CUDA_REDUCE_MEAN, CUDA_REDUCE_MAX } cuda_reduce_op;

/* The window of Conv and pooling over 3 spatial dims (fewer are padded with 1s). */
typedef struct cuda_window {
    int64_t in[3], out[3], kernel[3], stride[3], dilation[3], pad_begin[3], pad_end[3];
} cuda_window;

/* Activation epilogues (rt_act_kind values). */
typedef struct cuda_act {
    int kind;
    float alpha, lo, hi;
} cuda_act;

/* ---- cuda_k_elementwise.cu ---- */
cudaError_t cuda_k_binary(cudaStream_t s, cuda_op op, int ta, int tb, int to, const void *a,
                          const void *b, void *o, const cuda_bcast *bc);
/* o = c ? x : y, elements of elem bytes (1, 2, 4, 8 or 16); c is BOOL */
cudaError_t cuda_k_where(cudaStream_t s, size_t elem, const void *c, const void *x,
                         const void *y, void *o, const cuda_bcast *bc);
cudaError_t cuda_k_unary(cudaStream_t s, int dt, const cuda_unary *u, const void *x, void *y,
                         int64_t n);
/* numeric casts, as rt_cpu_cast.c does them (bf16_truncate: opset < 19) */
cudaError_t cuda_k_cast(cudaStream_t s, int from, int to, const void *x, void *y, int64_t n,
                        bool bf16_truncate);
/* y[r, j] = act(x[r, j] + bias[j]) over rows x cols F32 elements; bias may be NULL, y may
 * be x */
cudaError_t cuda_k_bias_act(cudaStream_t s, float *y, const float *x, int64_t rows,
                            int64_t cols, const float *bias, cuda_act act);
cudaError_t cuda_k_fused_ew(cudaStream_t s, const cuda_ew *ew, float *y);

/* ---- cuda_k_layout.cu ---- */
cudaError_t cuda_k_copy_box(cudaStream_t s, void *dst, const void *src, size_t elem,
                            const cuda_box *box);
/* n elements of elem bytes, each a copy of value (elem <= 16 bytes) */
cudaError_t cuda_k_fill(cudaStream_t s, void *y, int64_t n, size_t elem, const void *value);
/* y[i] = vals[i] for i < n <= CUDA_MAX_RANK */
cudaError_t cuda_k_store_i64(cudaStream_t s, int64_t *y, int n, const int64_t *vals);
/* y[i] = start + i * delta in dtype dt (integers from istart, idelta) */
cudaError_t cuda_k_range(cudaStream_t s, int dt, void *y, int64_t n, double start, double delta,
                         int64_t istart, int64_t idelta);
/* out (outer, n_idx, inner) = data (outer, dim, inner) at the indices (I32 or I64,
 * negative counting from dim); a bad index sets *flag and writes zeros */
cudaError_t cuda_k_gather(cudaStream_t s, size_t elem, const void *data, const void *idx,
                          int idx_dt, void *out, int64_t outer, int64_t n_idx, int64_t dim,
                          int64_t inner, int *flag);
/* infd.Embedding: out (n_idx, cols, F32) = the table's rows (F32, F16, BF16, or I8 times
 * scales[row]) at the indices; a bad index sets *flag and writes zeros */
cudaError_t cuda_k_embedding(cudaStream_t s, int table_dt, const void *table,
                             const float *scales, const void *idx, int idx_dt, float *out,
                             int64_t n_idx, int64_t rows, int64_t cols, int *flag);
/* Pad: mode 0 constant (value: elem bytes), 1 reflect, 2 edge (rt_pad_mode) */
cudaError_t cuda_k_pad(cudaStream_t s, size_t elem, const void *x, void *y, int rank,
                       const int64_t *x_dims, const int64_t *y_dims, const int64_t *begin,
                       int mode, const void *value);

/* ---- cuda_k_norm.cu ---- (dt: F32, F16, BF16 or F64; computed in float, F64 in double) */
/* y = LayerNorm(x (+ skip)) over rows of cols; skip (F32 only, may be NULL) repeats every
 * skip_rows rows; bias may be NULL; mean / inv_std (may be NULL) get one value per row in
 * dtype stat_dt */
cudaError_t cuda_k_layernorm(cudaStream_t s, int dt, const void *x, const float *skip,
                             int64_t skip_rows, const void *scale, const void *bias, void *y,
                             int64_t rows, int64_t cols, float eps, int stat_dt, void *mean,
                             void *inv_std);
/* softmax (or log-softmax) over len elements inner apart, for outer x inner lines */
cudaError_t cuda_k_softmax(cudaStream_t s, int dt, const void *x, void *y, int64_t outer,
                           int64_t len, int64_t inner, bool log);
/* inference BatchNormalization of x (n, c, plane) with per-channel parameters of their
 * own dtypes */
cudaError_t cuda_k_batchnorm(cudaStream_t s, int dt, const void *x, void *y, int64_t n,
                             int64_t c, int64_t plane, const void *scale, int scale_dt,
                             const void *bias, int bias_dt, const void *mean, int mean_dt,
                             const void *var, int var_dt, float eps);

/* ---- cuda_k_reduce.cu ---- (dt: float dtypes, I32, I64) */
cudaError_t cuda_k_reduce(cudaStream_t s, int dt, cuda_reduce_op op, const void *x, void *y,
                          const cuda_reduce *r);
cudaError_t cuda_k_argmax(cudaStream_t s, int dt, const void *x, int64_t *y, int64_t outer,
                          int64_t len, int64_t inner, bool last);

/* ---- cuda_k_attention.cu ---- */
/* qkv rows (batch * seq) of (heads + 2 kv_heads) d F32 columns into q (batch, heads, seq,
 * d), k and v (batch, kv_heads, seq, d), in dtype dt (F32, F16, BF16) */
cudaError_t cuda_k_qkv_split(cudaStream_t s, const float *qkv, int dt, void *q, void *k,
                             void *v, int64_t batch, int64_t seq, int64_t heads,
                             int64_t kv_heads, int64_t d);
/* p[r, :] = softmax(scores[r, :] + mask) over rows of len, written in dtype p_dt; row r is
 * query r % seq of batch r / rows_per_batch; mask (may be NULL) element (b, q, k) is at
 * b * mask_b + q * mask_q + k */
cudaError_t cuda_k_attn_softmax(cudaStream_t s, const float *scores, int p_dt, void *p,
                                int64_t rows, int64_t len, int64_t seq, int64_t rows_per_batch,
                                const float *mask, int64_t mask_b, int64_t mask_q);

/* ---- cuda_k_flash.cu ---- */
/* Whether cuda_k_flash_attn takes compute dtype dt, head size d, batch_heads (batch,
 * head) pairs and seq: F16 or BF16, d a multiple of 16 up to 128 (launches nothing). */
bool cuda_k_flash_fits(int dt, int64_t d, int64_t batch_heads, int64_t seq);
/* y (batch, seq, heads d, F32) = softmax(scale q k^T + mask) v per head, from the q, k, v
 * of cuda_k_qkv_split in dtype dt, query head h reading KV head h / (heads / kv_heads);
 * mask as cuda_k_attn_softmax's. Shapes cuda_k_flash_fits refuses: cudaErrorInvalidValue. */
cudaError_t cuda_k_flash_attn(cudaStream_t s, int dt, const void *q, const void *k,
                              const void *v, float *y, int64_t batch, int64_t seq,
                              int64_t heads, int64_t kv_heads, int64_t d, float scale,
                              const float *mask, int64_t mask_b, int64_t mask_q);

/* ---- cuda_k_conv.cu ---- (dt: F32, F16, BF16, F64; w_dt: dt, or F16/BF16 under F32) */
cudaError_t cuda_k_conv(cudaStream_t s, int dt, const void *x, int w_dt, const void *w,
                        const void *bias, void *y, int64_t n, int64_t c, int64_t m,
                        int64_t group, const cuda_window *win, cuda_act act);
/* y[b, ch, p] = act(x[b, ch, p] + bias[ch]) over n x c x plane elements: the bias and
 * activation after a cuDNN convolution, widening its output on the way when x_dt is F16
 * or BF16 and y_dt F32 (x_dt and y_dt: F32, F16, BF16; bias (may be NULL) in y_dt; y may
 * be x when the dtypes match) */
cudaError_t cuda_k_channel_bias_act(cudaStream_t s, int x_dt, const void *x, int y_dt, void *y,
                                    const void *bias, int64_t n, int64_t c, int64_t plane,
                                    cuda_act act);
/* MaxPool (with indices, may be NULL; col_major: storage_order 1) and AveragePool */
cudaError_t cuda_k_pool(cudaStream_t s, int dt, const void *x, void *y, int64_t *indices,
                        int64_t planes, const cuda_window *win, bool max, bool include_pad,
                        bool col_major);

/* ---- cuda_k_quant.cu (infd.QLinear; never run on a GPU yet) ---- */
/* out (n x k, dtype dt: F32, F16 or BF16) = scale[j] w[j][p], the weight-only mode's W */
cudaError_t cuda_k_dequant_rows(cudaStream_t s, const int8_t *w, const float *scale,
                                int64_t n, int64_t k, int dt, void *out);
/* Each row of x (m x k) quantized as rt_cpu_qgemm.c does into q (m x kp, zeros past k,
 * values in [0, 127]) with its scale and zero point. */
cudaError_t cuda_k_quantize_rows(cudaStream_t s, const float *x, int64_t m, int64_t k,
                                 int64_t kp, int8_t *q, float *scale, int32_t *zp);
/* sum[j] = sum over p of w[j][p] (n x k); padded, when not NULL, receives w with kp
 * columns, zeros past k */
cudaError_t cuda_k_weight_rows(cudaStream_t s, const int8_t *w, int64_t n, int64_t k,
                               int64_t kp, int32_t *sum, int8_t *padded);
/* y[i][j] = a_scale[i] w_scale[j] (acc[i][j] - a_zp[i] w_sum[j]) over m x n (acc's rows
 * ld apart, y's n) */
cudaError_t cuda_k_dequant_acc(cudaStream_t s, const int32_t *acc, int64_t ld, int64_t m,
                               int64_t n,
                               const float *a_scale, const int32_t *a_zp, const float *w_scale,
                               const int32_t *w_sum, float *y);

#ifdef __cplusplus
}
#endif

#endif
