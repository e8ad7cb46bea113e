/* cuda_k_flash.cu: the core of infd.Attention for FP16/BF16 compute in one kernel,
 * FlashAttention-style (cuda_op_attention.c picks it): softmax(scale Q K^T + M) V is built
 * up one tile of keys at a time with an online softmax, so the scores never reach device
 * memory, and each head's rows are written straight into Y (batch, seq, heads d).
 *
 * A block takes 64 query rows of one (batch, head): 4 warps of 16 rows, each warp owning
 * its rows from the scores to the output, so only the K/V tile loads need the whole block.
 * Per tile of BC keys: S = Q K^T on the tensor cores (WMMA 16x16x16, FP32 accumulators),
 * then per row, in FP32, scale, mask, the running max m and sum l, P = exp(S - m) in the
 * compute dtype, the FP32 output O rescaled by exp(m_old - m_new), and O += P V on the
 * tensor cores; at the end Y = O / l. O lives in shared memory because a WMMA
 * accumulator's element-to-row mapping is unspecified and rows need their own factors.
 * Rows whose every key is masked with -inf end with l = 0 and O = 0, so Y = NaN there as
 * on the CPU (exp(-inf - -inf)); the running max stands in as 0 while it is -inf so that
 * a row whose first tiles are all -inf still recovers in later ones. */
#include <mma.h>

#include "cuda_k_util.cuh"

#define FLASH_BR 64                        /* query rows per block */
#define FLASH_THREADS (FLASH_BR / 16 * 32) /* a warp per 16 rows */
#define FLASH_MAX_D 128

/* Keys per tile: 64, or 32 past d = 64 so that d = 128 needs 81 KiB of shared memory,
 * under the 99 KiB a block may opt into on sm_86 and sm_89 (which run the sm_80 code). */
template <int D> struct flash_geom {
    static constexpr int BC = D <= 64 ? 64 : 32;
    /* row strides of the shared tiles in elements, padded against bank conflicts; WMMA
     * wants multiples of 16 bytes and every fragment's first element 32-byte aligned,
     * which 16-row steps of these strides keep */
    static constexpr int LDH = D + 8;  /* Q, K, V (compute dtype) */
    static constexpr int LDS = BC + 4; /* S (float) */
    static constexpr int LDP = BC + 8; /* P (compute dtype) */
    static constexpr int LDO = D + 4;  /* O (float) */
    static constexpr size_t Q_BYTES = (size_t)FLASH_BR * LDH * 2;
    static constexpr size_t KV_BYTES = (size_t)BC * LDH * 2;
    static constexpr size_t S_BYTES = (size_t)FLASH_BR * LDS * 4;
    static constexpr size_t P_BYTES = (size_t)FLASH_BR * LDP * 2;
    static constexpr size_t O_BYTES = (size_t)FLASH_BR * LDO * 4;
    static constexpr size_t SMEM =
        Q_BYTES + 2 * KV_BYTES + S_BYTES + P_BYTES + O_BYTES + FLASH_BR * sizeof(float);
};

/* rows (of D elements, contiguous at src) into a tile of `tile_rows` rows LDH apart, zeros
 * past `rows`, 16 bytes at a time (D is a multiple of 16, so rows stay 32-byte aligned) */
template <typename T, int D>
__device__ __forceinline__ void flash_load(T *dst, const T *src, int rows, int tile_rows)
{
    constexpr int CHUNKS = D / 8;
    for (int i = threadIdx.x; i < tile_rows * CHUNKS; i += FLASH_THREADS) {
        int r = i / CHUNKS, c = i % CHUNKS;
        uint4 val = make_uint4(0, 0, 0, 0);
        if (r < rows)
            val = *(const uint4 *)(src + (int64_t)r * D + c * 8);
        *(uint4 *)(dst + r * flash_geom<D>::LDH + c * 8) = val;
    }
}

/* Grid (batch heads, query tiles). q (batch, heads, seq, D), k and v (batch, heads / group,
 * seq, D); mask as cuda_k_attn_softmax's. */
template <typename T, int D>
__global__ void __launch_bounds__(FLASH_THREADS)
    k_flash_attn(const T *q, const T *k, const T *v, float *y, int64_t seq, int heads,
                 int group, float scale, const float *mask, int64_t mask_b, int64_t mask_q)
{
    using namespace nvcuda;
    static_assert(sizeof(T) == 2, "the tiles' sizes assume 2-byte elements");
    typedef flash_geom<D> G;
    constexpr int BC = G::BC, LDH = G::LDH, LDS = G::LDS, LDP = G::LDP, LDO = G::LDO;
    extern __shared__ __align__(128) unsigned char smem[];
    T *qs = (T *)smem;
    T *ks = (T *)(smem + G::Q_BYTES);
    T *vs = (T *)(smem + G::Q_BYTES + G::KV_BYTES);
    float *ss = (float *)(smem + G::Q_BYTES + 2 * G::KV_BYTES);
    T *ps = (T *)(smem + G::Q_BYTES + 2 * G::KV_BYTES + G::S_BYTES);
    float *os = (float *)(smem + G::Q_BYTES + 2 * G::KV_BYTES + G::S_BYTES + G::P_BYTES);
    float *ls = (float *)((char *)os + G::O_BYTES);

    int64_t bh = blockIdx.x, b = bh / heads, q0 = (int64_t)blockIdx.y * FLASH_BR;
    int h = (int)(bh % heads), kv_heads = heads / group;
    int64_t kv_off = (b * kv_heads + h / group) * seq * D;
    const T *kg = k + kv_off, *vg = v + kv_off;
    int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
    /* in the softmax two lanes share a row, one taking its even columns, one the odd */
    int odd = lane & 1, row = warp * 16 + (lane >> 1);
    int64_t qi = q0 + row;
    const float *mrow =
        mask ? mask + b * mask_b + (qi < seq ? qi : seq - 1) * mask_q : NULL;

    flash_load<T, D>(qs, q + (bh * seq + q0) * D, (int)min((int64_t)FLASH_BR, seq - q0),
                     FLASH_BR);
    for (int i = threadIdx.x; i < FLASH_BR * LDO; i += FLASH_THREADS)
        os[i] = 0.0f;
    float m_run = -INFINITY, l_run = 0.0f;
    const T *qw = qs + warp * 16 * LDH;
    float *sw = ss + warp * 16 * LDS, *ow = os + warp * 16 * LDO;
    T *pw = ps + warp * 16 * LDP;

    for (int64_t k0 = 0; k0 < seq; k0 += BC) {
        int kn = (int)min((int64_t)BC, seq - k0);
        __syncthreads(); /* every warp is done with the previous K and V */
        flash_load<T, D>(ks, kg + k0 * D, kn, BC);
        flash_load<T, D>(vs, vg + k0 * D, kn, BC);
        __syncthreads();

        /* this warp's S (16 x BC) = Q K^T: K's rows are the columns of K^T */
        wmma::fragment<wmma::matrix_a, 16, 16, 16, T, wmma::row_major> fa;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::col_major> fk;
        wmma::fragment<wmma::matrix_b, 16, 16, 16, T, wmma::row_major> fv;
        wmma::fragment<wmma::accumulator, 16, 16, 16, float> acc;
        for (int n = 0; n < BC / 16; n++) {
            wmma::fill_fragment(acc, 0.0f);
            for (int kk = 0; kk < D / 16; kk++) {
                wmma::load_matrix_sync(fa, qw + kk * 16, LDH);
                wmma::load_matrix_sync(fk, ks + n * 16 * LDH + kk * 16, LDH);
                wmma::mma_sync(acc, fa, fk, acc);
            }
            wmma::store_matrix_sync(sw + n * 16, acc, LDS, wmma::mem_row_major);
        }
        __syncwarp();

        /* online softmax of row `row` over this tile; keys past seq are -inf */
        float *srow = ss + row * LDS;
        T *prow = ps + row * LDP;
        float mx = -INFINITY;
        for (int j = odd; j < BC; j += 2) {
            float s = j < kn ? srow[j] * scale + (mrow ? mrow[k0 + j] : 0.0f) : -INFINITY;
            srow[j] = s;
            mx = fmaxf(mx, s);
        }
        mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, 1));
        float m_new = fmaxf(m_run, mx);
        float base = m_new == -INFINITY ? 0.0f : m_new;
        float alpha = expf(m_run - base); /* 0 while m_run is -inf */
        float sum = 0.0f;
        for (int j = odd; j < BC; j += 2) {
            float p = expf(srow[j] - base);
            sum += p;
            prow[j] = from_f<T>(p);
        }
        sum += __shfl_xor_sync(0xffffffffu, sum, 1);
        l_run = l_run * alpha + sum;
        m_run = m_new;
        float *orow = os + row * LDO;
        for (int e = odd; e < D; e += 2)
            orow[e] *= alpha;
        __syncwarp();

        /* this warp's O (16 x D) += P V */
        for (int n = 0; n < D / 16; n++) {
            wmma::load_matrix_sync(acc, ow + n * 16, LDO, wmma::mem_row_major);
            for (int kk = 0; kk < BC / 16; kk++) {
                wmma::load_matrix_sync(fa, pw + kk * 16, LDP);
                wmma::load_matrix_sync(fv, vs + kk * 16 * LDH + n * 16, LDH);
                wmma::mma_sync(acc, fa, fv, acc);
            }
            wmma::store_matrix_sync(ow + n * 16, acc, LDO, wmma::mem_row_major);
        }
        __syncwarp();
    }

    /* Y = O / l, the warp's rows one at a time across its lanes; padded rows are skipped */
    if (!odd)
        ls[row] = l_run;
    __syncwarp();
    for (int r = warp * 16; r < warp * 16 + 16 && q0 + r < seq; r++) {
        float inv = 1.0f / ls[r];
        float *yr = y + ((b * seq + q0 + r) * heads + h) * D;
        for (int e = lane; e < D; e += 32)
            yr[e] = os[r * LDO + e] * inv;
    }
}

extern "C" bool cuda_k_flash_fits(int dt, int64_t d, int64_t batch_heads, int64_t seq)
{
    return (dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16) && d > 0 && d % 16 == 0 &&
           d <= FLASH_MAX_D && batch_heads <= 0x7fffffff &&
           (seq + FLASH_BR - 1) / FLASH_BR <= 65535;
}

template <typename T, int D>
static cudaError_t flash_launch(cudaStream_t s, const void *q, const void *k, const void *v,
                                float *y, int64_t batch, int64_t seq, int64_t heads,
                                int64_t group, float scale, const float *mask, int64_t mask_b,
                                int64_t mask_q)
{
    /* past 48 KiB of dynamic shared memory a kernel must opt in, once per device: on the
     * first launch there, which is a warm-up run (a plan is captured into a CUDA Graph on
     * its third run), so no capture sees the call */
    static unsigned char opted_in[64]; /* per device, for this instantiation */
    int dev = 0;
    cudaError_t e = cudaGetDevice(&dev);
    if (e != cudaSuccess)
        return e;
    bool known = dev >= 0 && dev < 64;
    if (!known || !__atomic_load_n(&opted_in[dev], __ATOMIC_ACQUIRE)) {
        e = cudaFuncSetAttribute(k_flash_attn<T, D>, cudaFuncAttributeMaxDynamicSharedMemorySize,
                                 (int)flash_geom<D>::SMEM);
        if (e != cudaSuccess)
            return e;
        if (known)
            __atomic_store_n(&opted_in[dev], 1, __ATOMIC_RELEASE);
    }
    dim3 grid((unsigned)(batch * heads), (unsigned)((seq + FLASH_BR - 1) / FLASH_BR));
    k_flash_attn<T, D><<<grid, FLASH_THREADS, flash_geom<D>::SMEM, s>>>(
        (const T *)q, (const T *)k, (const T *)v, y, seq, (int)heads, (int)group, scale, mask,
        mask_b, mask_q);
    return cudaGetLastError();
}

template <typename T>
static cudaError_t flash_by_d(cudaStream_t s, const void *q, const void *k, const void *v,
                              float *y, int64_t batch, int64_t seq, int64_t heads,
                              int64_t group, int64_t d, float scale, const float *mask,
                              int64_t mask_b, int64_t mask_q)
{
#define FLASH_D(D_)                                                                         \
    case D_:                                                                                \
        return flash_launch<T, D_>(s, q, k, v, y, batch, seq, heads, group, scale, mask,    \
                                   mask_b, mask_q)
    switch (d) {
    FLASH_D(16); FLASH_D(32); FLASH_D(48); FLASH_D(64);
    FLASH_D(80); FLASH_D(96); FLASH_D(112); FLASH_D(128);
    default: return cudaErrorInvalidValue;
    }
#undef FLASH_D
}

extern "C" cudaError_t cuda_k_flash_attn(cudaStream_t s, int dt, const void *q, const void *k,
                                         const void *v, float *y, int64_t batch, int64_t seq,
                                         int64_t heads, int64_t kv_heads, int64_t d,
                                         float scale, const float *mask, int64_t mask_b,
                                         int64_t mask_q)
{
    if (batch * seq * heads * d == 0)
        return cudaSuccess;
    if (!cuda_k_flash_fits(dt, d, batch * heads, seq) || kv_heads <= 0 || heads % kv_heads)
        return cudaErrorInvalidValue;
    int64_t group = heads / kv_heads;
    if (dt == RT_DTYPE_F16)
        return flash_by_d<__half>(s, q, k, v, y, batch, seq, heads, group, d, scale, mask,
                                  mask_b, mask_q);
    return flash_by_d<__nv_bfloat16>(s, q, k, v, y, batch, seq, heads, group, d, scale, mask,
                                     mask_b, mask_q);
}
