/* cuda_k_reduce.cu: reduction kernels of the CUDA backend: ReduceSum / ReduceMean /
 * ReduceMax over any set of axes (one warp per output element, its lanes striding over
 * the reduced elements) and ArgMax along one axis (one thread per output). Floats
 * accumulate in float (F64 in double), integers in int64. */
#include "cuda_k_util.cuh"

/* accumulator of an element type */
template <typename T> struct red_acc { typedef float type; };
template <> struct red_acc<double> { typedef double type; };
template <> struct red_acc<int32_t> { typedef int64_t type; };
template <> struct red_acc<int64_t> { typedef int64_t type; };

template <typename T> __device__ __forceinline__ typename red_acc<T>::type red_load(T v)
{
    return (typename red_acc<T>::type)to_f(v);
}
template <> __device__ __forceinline__ int64_t red_load<int32_t>(int32_t v) { return v; }
template <> __device__ __forceinline__ int64_t red_load<int64_t>(int64_t v) { return v; }

template <typename T> __device__ __forceinline__ T red_store(typename red_acc<T>::type v)
{
    return from_d<T>(v);
}
template <> __device__ __forceinline__ int32_t red_store<int32_t>(int64_t v) { return (int32_t)v; }
template <> __device__ __forceinline__ int64_t red_store<int64_t>(int64_t v) { return v; }

template <typename T>
__global__ void k_reduce(const T *x, T *y, cuda_reduce_op op, cuda_reduce r)
{
    typedef typename red_acc<T>::type A;
    int lane = threadIdx.x & 31;
    int64_t warps = (int64_t)gridDim.x * (blockDim.x >> 5);
    for (int64_t o = ((int64_t)blockIdx.x * blockDim.x + threadIdx.x) >> 5; o < r.n_out;
         o += warps) {
        int64_t base = 0, rem = o;
        for (int d = r.kept_rank - 1; d >= 0; d--) {
            base += (rem % r.kept_dims[d]) * r.kept_strides[d];
            rem /= r.kept_dims[d];
        }
        bool max = op == CUDA_REDUCE_MAX;
        A acc = 0;
        bool any = false;
        for (int64_t j = lane; j < r.count; j += 32) {
            int64_t off = base, q = j;
            for (int d = r.red_rank - 1; d >= 0; d--) {
                off += (q % r.red_dims[d]) * r.red_strides[d];
                q /= r.red_dims[d];
            }
            A v = red_load<T>(x[off]);
            /* NaN wins a max, as in the CPU's comparison order */
            acc = !any ? v : max ? (v > acc || v != v ? v : acc) : acc + v;
            any = true;
        }
        for (int s = 16; s > 0; s >>= 1) {
            A w = __shfl_xor_sync(0xffffffffu, acc, s);
            bool wany = __shfl_xor_sync(0xffffffffu, any, s);
            if (max)
                acc = !any ? w : wany && (w > acc || w != w) ? w : acc;
            else
                acc = acc + w;
            any = any || wany;
        }
        if (lane == 0)
            y[o] = red_store<T>(op == CUDA_REDUCE_MEAN ? acc / (A)r.count : acc);
    }
}

extern "C" cudaError_t cuda_k_reduce(cudaStream_t s, int dt, cuda_reduce_op op, const void *x,
                                     void *y, const cuda_reduce *r)
{
    if (r->n_out == 0 || r->count == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(r->n_out * 32);
#define RED(T) k_reduce<T><<<g, CUDA_THREADS, 0, s>>>((const T *)x, (T *)y, op, *r)
    switch (dt) {
    case RT_DTYPE_F32: RED(float); break;
    case RT_DTYPE_F16: RED(__half); break;
    case RT_DTYPE_BF16: RED(__nv_bfloat16); break;
    case RT_DTYPE_F64: RED(double); break;
    case RT_DTYPE_I32: RED(int32_t); break;
    case RT_DTYPE_I64: RED(int64_t); break;
    default: return cudaErrorInvalidValue;
    }
#undef RED
    return cudaGetLastError();
}

__global__ void k_argmax(int dt, const void *x, int64_t *y, int64_t outer, int64_t len,
                         int64_t inner, bool last)
{
    CUDA_FOR(l, outer * inner)
    {
        int64_t base = l / inner * len * inner + l % inner, at = 0;
        double best = ld_f64(dt, x, base);
        for (int64_t r = 1; r < len; r++) {
            double v = ld_f64(dt, x, base + r * inner);
            if (v > best || (last && v == best)) {
                best = v;
                at = r;
            }
        }
        y[l] = at;
    }
}

extern "C" cudaError_t cuda_k_argmax(cudaStream_t s, int dt, const void *x, int64_t *y,
                                     int64_t outer, int64_t len, int64_t inner, bool last)
{
    if (outer * inner == 0)
        return cudaSuccess;
    k_argmax<<<cuda_blocks(outer * inner), CUDA_THREADS, 0, s>>>(dt, x, y, outer, len, inner, last);
    return cudaGetLastError();
}
