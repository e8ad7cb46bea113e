/* cuda_k_layout.cu: data-movement kernels of the CUDA backend: the strided box copy
 * (Transpose, Slice, Expand, Tile, Concat, Split, Gemm's C), fills, Range, Gather and
 * Pad. They move elements as opaque words of 1, 2, 4, 8 or 16 bytes, so they serve every
 * dtype (BYTES elements are 16-byte rt_str records). */
#include "cuda_k_util.cuh"

/* Calls the kernel instantiated for the word of elem bytes; unknown sizes are refused. */
#define WORD_DISPATCH(elem, CALL)                                                           \
    switch (elem) {                                                                         \
    case 1: { typedef uint8_t W; CALL; break; }                                             \
    case 2: { typedef uint16_t W; CALL; break; }                                            \
    case 4: { typedef uint32_t W; CALL; break; }                                            \
    case 8: { typedef uint64_t W; CALL; break; }                                            \
    case 16: { typedef uint4 W; CALL; break; }                                              \
    default: return cudaErrorInvalidValue;                                                  \
    }

template <typename W> __global__ void k_copy_box(W *dst, const W *src, cuda_box box, int64_t n)
{
    CUDA_FOR(i, n)
    {
        int64_t rem = i, od = 0, os = 0;
        for (int d = box.rank - 1; d >= 0; d--) {
            int64_t c = rem % box.dims[d];
            rem /= box.dims[d];
            od += c * box.dst[d];
            os += c * box.src[d];
        }
        dst[od] = src[os];
    }
}

extern "C" cudaError_t cuda_k_copy_box(cudaStream_t s, void *dst, const void *src, size_t elem,
                                       const cuda_box *box)
{
    int64_t n = 1;
    for (int d = 0; d < box->rank; d++)
        n *= box->dims[d];
    if (n == 0)
        return cudaSuccess;
    WORD_DISPATCH(elem, (k_copy_box<W><<<cuda_blocks(n), CUDA_THREADS, 0, s>>>(
                             (W *)dst, (const W *)src, *box, n)))
    return cudaGetLastError();
}

/* the value of a fill, passed by value */
typedef struct {
    unsigned char b[16];
} fill_value;

template <typename W> __global__ void k_fill(W *y, int64_t n, fill_value v)
{
    W w;
    memcpy(&w, v.b, sizeof w);
    CUDA_FOR(i, n)
    y[i] = w;
}

extern "C" cudaError_t cuda_k_fill(cudaStream_t s, void *y, int64_t n, size_t elem,
                                   const void *value)
{
    if (n == 0)
        return cudaSuccess;
    fill_value v = {};
    memcpy(v.b, value, elem <= 16 ? elem : 16);
    WORD_DISPATCH(elem, (k_fill<W><<<cuda_blocks(n), CUDA_THREADS, 0, s>>>((W *)y, n, v)))
    return cudaGetLastError();
}

typedef struct {
    int64_t v[CUDA_MAX_RANK];
} i64_list;

__global__ void k_store_i64(int64_t *y, int n, i64_list vals)
{
    if (threadIdx.x < n)
        y[threadIdx.x] = vals.v[threadIdx.x];
}

extern "C" cudaError_t cuda_k_store_i64(cudaStream_t s, int64_t *y, int n, const int64_t *vals)
{
    if (n <= 0)
        return cudaSuccess;
    if (n > CUDA_MAX_RANK)
        return cudaErrorInvalidValue;
    i64_list l = {};
    memcpy(l.v, vals, sizeof(int64_t) * (size_t)n);
    k_store_i64<<<1, 32, 0, s>>>(y, n, l);
    return cudaGetLastError();
}

__global__ void k_range(int dt, void *y, int64_t n, double start, double delta, int64_t istart,
                        int64_t idelta)
{
    bool fl = dt_float(dt);
    CUDA_FOR(i, n)
    {
        if (fl)
            st_f64(dt, y, i, start + (double)i * delta);
        else
            st_i64(dt, y, i, istart + i * idelta);
    }
}

extern "C" cudaError_t cuda_k_range(cudaStream_t s, int dt, void *y, int64_t n, double start,
                                    double delta, int64_t istart, int64_t idelta)
{
    if (n == 0)
        return cudaSuccess;
    k_range<<<cuda_blocks(n), CUDA_THREADS, 0, s>>>(dt, y, n, start, delta, istart, idelta);
    return cudaGetLastError();
}

template <typename W>
__global__ void k_gather(const W *data, const void *idx, int idx_dt, W *out, int64_t outer,
                         int64_t n_idx, int64_t dim, int64_t inner, int *flag)
{
    CUDA_FOR(i, outer * n_idx * inner)
    {
        int64_t e = i % inner, j = i / inner % n_idx, o = i / inner / n_idx;
        int64_t v = idx_dt == RT_DTYPE_I32 ? ((const int32_t *)idx)[j] : ((const int64_t *)idx)[j];
        if (v < -dim || v >= dim) {
            atomicExch(flag, CUDA_FLAG_GATHER_INDEX);
            memset(&out[i], 0, sizeof(W));
            continue;
        }
        if (v < 0)
            v += dim;
        out[i] = data[(o * dim + v) * inner + e];
    }
}

extern "C" cudaError_t cuda_k_gather(cudaStream_t s, size_t elem, const void *data,
                                     const void *idx, int idx_dt, void *out, int64_t outer,
                                     int64_t n_idx, int64_t dim, int64_t inner, int *flag)
{
    int64_t n = outer * n_idx * inner;
    if (n == 0)
        return cudaSuccess;
    WORD_DISPATCH(elem, (k_gather<W><<<cuda_blocks(n), CUDA_THREADS, 0, s>>>(
                             (const W *)data, idx, idx_dt, (W *)out, outer, n_idx, dim, inner,
                             flag)))
    return cudaGetLastError();
}

__global__ void k_embedding(int table_dt, const void *table, const float *scales,
                            const void *idx, int idx_dt, float *out, int64_t n_idx,
                            int64_t rows, int64_t cols, int *flag)
{
    CUDA_FOR(i, n_idx * cols)
    {
        int64_t j = i / cols, c = i % cols;
        int64_t v = idx_dt == RT_DTYPE_I32 ? ((const int32_t *)idx)[j] : ((const int64_t *)idx)[j];
        if (v < -rows || v >= rows) {
            atomicExch(flag, CUDA_FLAG_GATHER_INDEX);
            out[i] = 0.0f;
            continue;
        }
        int64_t e = (v < 0 ? v + rows : v) * cols + c;
        float w = (float)ld_f64(table_dt, table, e);
        out[i] = scales ? w * scales[e / cols] : w;
    }
}

extern "C" cudaError_t cuda_k_embedding(cudaStream_t s, int table_dt, const void *table,
                                        const float *scales, const void *idx, int idx_dt,
                                        float *out, int64_t n_idx, int64_t rows, int64_t cols,
                                        int *flag)
{
    if (n_idx * cols == 0)
        return cudaSuccess;
    k_embedding<<<cuda_blocks(n_idx * cols), CUDA_THREADS, 0, s>>>(table_dt, table, scales, idx,
                                                                   idx_dt, out, n_idx, rows,
                                                                   cols, flag);
    return cudaGetLastError();
}

typedef struct {
    int rank, mode;
    int64_t x_dims[CUDA_MAX_RANK], y_dims[CUDA_MAX_RANK], begin[CUDA_MAX_RANK];
    fill_value value;
} pad_params;

template <typename W> __global__ void k_pad(const W *x, W *y, pad_params p, int64_t n)
{
    W value;
    memcpy(&value, p.value.b, sizeof value);
    CUDA_FOR(i, n)
    {
        int64_t rem = i, off = 0, stride = 1;
        bool constant = false;
        for (int d = p.rank - 1; d >= 0; d--) {
            int64_t src = rt_pad_source(rem % p.y_dims[d], p.begin[d], p.x_dims[d], p.mode);
            rem /= p.y_dims[d];
            constant |= src < 0;
            off += src * stride;
            stride *= p.x_dims[d];
        }
        y[i] = constant ? value : x[off];
    }
}

extern "C" cudaError_t cuda_k_pad(cudaStream_t s, size_t elem, const void *x, void *y, int rank,
                                  const int64_t *x_dims, const int64_t *y_dims,
                                  const int64_t *begin, int mode, const void *value)
{
    pad_params p = {};
    p.rank = rank;
    p.mode = mode;
    int64_t n = 1;
    for (int d = 0; d < rank; d++) {
        p.x_dims[d] = x_dims[d];
        p.y_dims[d] = y_dims[d];
        p.begin[d] = begin[d];
        n *= y_dims[d];
    }
    memcpy(p.value.b, value, elem <= 16 ? elem : 16);
    if (n == 0)
        return cudaSuccess;
    WORD_DISPATCH(elem, (k_pad<W><<<cuda_blocks(n), CUDA_THREADS, 0, s>>>((const W *)x, (W *)y,
                                                                          p, n)))
    return cudaGetLastError();
}
