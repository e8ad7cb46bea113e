/* cuda_k_attention.cu: the kernels around infd.Attention's GEMMs (cuda_op_attention.c):
 * splitting the projected Q, K, V into head-major blocks in the GEMM operand dtype, and
 * the masked softmax of the scores, one block per row, written in the dtype of the
 * probabilities operand. */
#include "cuda_k_util.cuh"

template <typename T>
__global__ void k_qkv_split(const float *qkv, T *q, T *k, T *v, int64_t batch, int64_t seq,
                            int64_t heads, int64_t kv_heads, int64_t d)
{
    int64_t cols = (heads + 2 * kv_heads) * d;
    CUDA_FOR(i, batch * seq * cols)
    {
        int64_t c = i % cols, row = i / cols, s = row % seq, b = row / seq;
        int64_t h = c / d, e = c % d;
        T val = from_f<T>(qkv[i]);
        if (h < heads)
            q[((b * heads + h) * seq + s) * d + e] = val;
        else if (h < heads + kv_heads)
            k[((b * kv_heads + h - heads) * seq + s) * d + e] = val;
        else
            v[((b * kv_heads + h - heads - kv_heads) * seq + s) * d + e] = val;
    }
}

extern "C" cudaError_t cuda_k_qkv_split(cudaStream_t s, const float *qkv, int dt, void *q,
                                        void *k, void *v, int64_t batch, int64_t seq,
                                        int64_t heads, int64_t kv_heads, int64_t d)
{
    int64_t n = batch * seq * (heads + 2 * kv_heads) * d;
    if (n == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(n);
#define SPLIT(T)                                                                            \
    k_qkv_split<T><<<g, CUDA_THREADS, 0, s>>>(qkv, (T *)q, (T *)k, (T *)v, batch, seq, heads, \
                                              kv_heads, d)
    switch (dt) {
    case RT_DTYPE_F32: SPLIT(float); break;
    case RT_DTYPE_F16: SPLIT(__half); break;
    case RT_DTYPE_BF16: SPLIT(__nv_bfloat16); break;
    default: return cudaErrorInvalidValue;
    }
#undef SPLIT
    return cudaGetLastError();
}

template <typename T>
__global__ void k_attn_softmax(const float *scores, T *p, int64_t len, int64_t seq,
                               int64_t rows_per_batch, const float *mask, int64_t mask_b,
                               int64_t mask_q)
{
    __shared__ float red[32];
    int64_t r = blockIdx.x;
    const float *sr = scores + r * len;
    const float *mr = mask ? mask + (r / rows_per_batch) * mask_b + (r % seq) * mask_q : NULL;
    T *pr = p + r * len;
    float mx = -INFINITY;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x) {
        float v = sr[j] + (mr ? mr[j] : 0.0f);
        mx = v > mx ? v : mx;
    }
    mx = block_max<float>(mx, red);
    float sum = 0;
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        sum += expf(sr[j] + (mr ? mr[j] : 0.0f) - mx);
    float inv = 1.0f / block_sum<float>(sum, red);
    for (int64_t j = threadIdx.x; j < len; j += blockDim.x)
        pr[j] = from_f<T>(expf(sr[j] + (mr ? mr[j] : 0.0f) - mx) * inv);
}

extern "C" cudaError_t cuda_k_attn_softmax(cudaStream_t s, const float *scores, int p_dt,
                                           void *p, int64_t rows, int64_t len, int64_t seq,
                                           int64_t rows_per_batch, const float *mask,
                                           int64_t mask_b, int64_t mask_q)
{
    if (rows == 0 || len == 0)
        return cudaSuccess;
    if (rows > 0x7fffffff)
        return cudaErrorInvalidValue;
    int t = cuda_row_threads(len);
#define ASM(T)                                                                              \
    k_attn_softmax<T><<<(unsigned)rows, t, 0, s>>>(scores, (T *)p, len, seq, rows_per_batch, \
                                                   mask, mask_b, mask_q)
    switch (p_dt) {
    case RT_DTYPE_F32: ASM(float); break;
    case RT_DTYPE_F16: ASM(__half); break;
    case RT_DTYPE_BF16: ASM(__nv_bfloat16); break;
    default: return cudaErrorInvalidValue;
    }
#undef ASM
    return cudaGetLastError();
}
