/* cuda_k_norm.cu: normalization kernels of the CUDA backend: LayerNormalization and
 * infd.SkipLayerNorm (one block per row, two passes over the row as the CPU computes it:
 * the mean, then the mean squared deviation), Softmax / LogSoftmax (one block per row
 * when the axis is innermost, else one thread per line) and inference BatchNormalization.
 * Float dtypes compute in float, F64 in double. */
#include "cuda_k_util.cuh"

template <typename T>
__global__ void k_layernorm(const T *x, const float *skip, int64_t skip_rows, const T *scale,
                            const T *bias, T *y, int64_t cols, float eps, int stat_dt,
                            void *mean_out, void *inv_out)
{
    typedef typename acc_of<T>::type A;
    __shared__ A red[32];
    int64_t r = blockIdx.x;
    const T *xr = x + r * cols;
    const float *sr = skip ? skip + (r % skip_rows) * cols : NULL;
    T *yr = y + r * cols;
    A sum = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x)
        sum += (A)to_f(xr[j]) + (sr ? (A)sr[j] : (A)0);
    A mean = block_sum<A>(sum, red) / (A)cols;
    A sq = 0;
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        A d = (A)to_f(xr[j]) + (sr ? (A)sr[j] : (A)0) - mean;
        sq += d * d;
    }
    A inv = (A)1 / sqrt(block_sum<A>(sq, red) / (A)cols + (A)eps);
    for (int64_t j = threadIdx.x; j < cols; j += blockDim.x) {
        A v = ((A)to_f(xr[j]) + (sr ? (A)sr[j] : (A)0) - mean) * inv * (A)to_f(scale[j]);
        yr[j] = from_d<T>(bias ? v + (A)to_f(bias[j]) : v);
    }
    if (threadIdx.x == 0 && mean_out)
        st_f64(stat_dt, mean_out, r, (double)mean);
    if (threadIdx.x == 0 && inv_out)
        st_f64(stat_dt, inv_out, r, (double)inv);
}

extern "C" cudaError_t cuda_k_layernorm(cudaStream_t s, int dt, const void *x, const float *skip,
                                        int64_t skip_rows, const void *scale, const void *bias,
                                        void *y, int64_t rows, int64_t cols, float eps,
                                        int stat_dt, void *mean, void *inv_std)
{
    if (rows == 0 || cols == 0)
        return cudaSuccess;
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    int t = cuda_row_threads(cols);
    unsigned g = (unsigned)rows;
    CUDA_FLOAT_DISPATCH(dt, k_layernorm<T><<<g, t, 0, s>>>((const T *)x, skip, skip_rows,
                                                           (const T *)scale, (const T *)bias,
                                                           (T *)y, cols, eps, stat_dt, mean,
                                                           inv_std))
    return cudaGetLastError();
}

/* one block per row of len contiguous elements */
template <typename T> __global__ void k_softmax_rows(const T *x, T *y, int64_t len, bool log_)
{
    typedef typename acc_of<T>::type A;
    __shared__ A red[32];
    const T *xr = x + blockIdx.x * len;
    T *yr = y + blockIdx.x * len;
    A mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        A v = (A)to_f(xr[j]);
        mx = v > mx ? v : mx;
    }
    mx = block_max<A>(mx, red);
    A sum = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        sum += exp((A)to_f(xr[j]) - mx);
    sum = block_sum<A>(sum, red);
    A shift = mx + log(sum), r = (A)1 / sum;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        A v = (A)to_f(xr[j]);
        yr[j] = from_d<T>(log_ ? v - shift : exp(v - mx) * r);
    }
}

/* one thread per line of len elements inner apart */
template <typename T>
__global__ void k_softmax_lines(const T *x, T *y, int64_t outer, int64_t len, int64_t inner,
                                bool log_)
{
    typedef typename acc_of<T>::type A;
    CUDA_FOR(l, outer * inner)
    {
        int64_t base = l / inner * len * inner + l % inner;
        A mx = -INFINITY, sum = 0;
        for (int64_t j = 0; j < len; j++) {
            A v = (A)to_f(x[base + j * inner]);
            mx = v > mx ? v : mx;
        }
        for (int64_t j = 0; j < len; j++)
            sum += exp((A)to_f(x[base + j * inner]) - mx);
        A shift = mx + log(sum), r = (A)1 / sum;
        for (int64_t j = 0; j < len; j++) {
            A v = (A)to_f(x[base + j * inner]);
            y[base + j * inner] = from_d<T>(log_ ? v - shift : exp(v - mx) * r);
        }
    }
}

extern "C" cudaError_t cuda_k_softmax(cudaStream_t s, int dt, const void *x, void *y,
                                      int64_t outer, int64_t len, int64_t inner, bool log_)
{
    if (outer * len * inner == 0)
        return cudaSuccess;
    bool rows = inner == 1 && outer <= 0x7fffffff;
    int t = cuda_row_threads(len);
    CUDA_FLOAT_DISPATCH(dt, if (rows) {
        k_softmax_rows<T><<<(unsigned)outer, t, 0, s>>>((const T *)x, (T *)y, len, log_);
    } else {
        k_softmax_lines<T><<<cuda_blocks(outer * inner), CUDA_THREADS, 0, s>>>(
            (const T *)x, (T *)y, outer, len, inner, log_);
    })
    return cudaGetLastError();
}

template <typename T>
__global__ void k_batchnorm(const T *x, T *y, int64_t n, int64_t c, int64_t plane,
                            const void *scale, int scale_dt, const void *bias, int bias_dt,
                            const void *mean, int mean_dt, const void *var, int var_dt, float eps)
{
    typedef typename acc_of<T>::type A;
    CUDA_FOR(i, n * c * plane)
    {
        int64_t ch = i / plane % c;
        A g = (A)(ld_f64(scale_dt, scale, ch) / sqrt(ld_f64(var_dt, var, ch) + (double)eps));
        A b = (A)(ld_f64(bias_dt, bias, ch) - ld_f64(mean_dt, mean, ch) * (double)g);
        y[i] = from_d<T>((A)to_f(x[i]) * g + b);
    }
}

extern "C" cudaError_t cuda_k_batchnorm(cudaStream_t s, int dt, const void *x, void *y,
                                        int64_t n, int64_t c, int64_t plane, const void *scale,
                                        int scale_dt, const void *bias, int bias_dt,
                                        const void *mean, int mean_dt, const void *var,
                                        int var_dt, float eps)
{
    int64_t total = n * c * plane;
    if (total == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(total);
    CUDA_FLOAT_DISPATCH(dt, k_batchnorm<T><<<g, CUDA_THREADS, 0, s>>>((const T *)x, (T *)y, n,
                                                                      c, plane, scale, scale_dt,
                                                                      bias, bias_dt, mean,
                                                                      mean_dt, var, var_dt, eps))
    return cudaGetLastError();
}
