/* cuda_k_conv.cu: Conv (and infd.FusedConv with its activation) and MaxPool / AveragePool
 * of the CUDA backend as direct kernels: one thread per output element walks its window
 * (1 to 3 spatial dims padded to 3). Simple and exact rather than fast: convolutions that
 * cuDNN takes run there (cuda_dnn_conv.h), with the per-channel bias and activation
 * kernel below after them; this kernel runs the rest and every one when cuDNN is
 * missing. */
#include "cuda_k_util.cuh"

template <typename T, typename TW>
__global__ void k_conv(const T *x, const TW *w, const T *bias, T *y, int64_t n, int64_t c,
                       int64_t m, int64_t group, cuda_window win, cuda_act act)
{
    typedef typename acc_of<T>::type A;
    int64_t o0 = win.out[0], o1 = win.out[1], o2 = win.out[2];
    int64_t plane = o0 * o1 * o2, in_plane = win.in[0] * win.in[1] * win.in[2];
    int64_t kvol = win.kernel[0] * win.kernel[1] * win.kernel[2];
    int64_t cg = c / group, mg = m / group;
    CUDA_FOR(i, n * m * plane)
    {
        int64_t pos = i % plane, oc = i / plane % m, b = i / plane / m;
        int64_t ow = pos % o2, oh = pos / o2 % o1, od = pos / o2 / o1;
        int64_t g = oc / mg;
        A acc = bias ? (A)to_f(bias[oc]) : (A)0;
        for (int64_t ci = 0; ci < cg; ci++) {
            const T *xc = x + (b * c + g * cg + ci) * in_plane;
            const TW *wc = w + (oc * cg + ci) * kvol;
            for (int64_t kd = 0; kd < win.kernel[0]; kd++) {
                int64_t id = od * win.stride[0] - win.pad_begin[0] + kd * win.dilation[0];
                if (id < 0 || id >= win.in[0])
                    continue;
                for (int64_t kh = 0; kh < win.kernel[1]; kh++) {
                    int64_t ih = oh * win.stride[1] - win.pad_begin[1] + kh * win.dilation[1];
                    if (ih < 0 || ih >= win.in[1])
                        continue;
                    for (int64_t kw = 0; kw < win.kernel[2]; kw++) {
                        int64_t iw = ow * win.stride[2] - win.pad_begin[2] + kw * win.dilation[2];
                        if (iw < 0 || iw >= win.in[2])
                            continue;
                        acc += (A)to_f(xc[(id * win.in[1] + ih) * win.in[2] + iw]) *
                               (A)to_f(wc[(kd * win.kernel[1] + kh) * win.kernel[2] + kw]);
                    }
                }
            }
        }
        if (act.kind != RT_ACT_NONE)
            acc = (A)act_apply(act.kind, (float)acc, act.alpha, act.lo, act.hi);
        y[i] = from_d<T>(acc);
    }
}

extern "C" cudaError_t cuda_k_conv(cudaStream_t s, int dt, const void *x, int w_dt, const void *w,
                                   const void *bias, void *y, int64_t n, int64_t c, int64_t m,
                                   int64_t group, const cuda_window *win, cuda_act act)
{
    int64_t total = n * m * win->out[0] * win->out[1] * win->out[2];
    if (total == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(total);
#define CONV(T, TW)                                                                         \
    k_conv<T, TW><<<g, CUDA_THREADS, 0, s>>>((const T *)x, (const TW *)w, (const T *)bias,  \
                                             (T *)y, n, c, m, group, *win, act)
    if (dt == RT_DTYPE_F32 && w_dt == RT_DTYPE_F32)
        CONV(float, float);
    else if (dt == RT_DTYPE_F32 && w_dt == RT_DTYPE_F16)
        CONV(float, __half);
    else if (dt == RT_DTYPE_F32 && w_dt == RT_DTYPE_BF16)
        CONV(float, __nv_bfloat16);
    else if (dt == RT_DTYPE_F16 && w_dt == RT_DTYPE_F16)
        CONV(__half, __half);
    else if (dt == RT_DTYPE_BF16 && w_dt == RT_DTYPE_BF16)
        CONV(__nv_bfloat16, __nv_bfloat16);
    else if (dt == RT_DTYPE_F64 && w_dt == RT_DTYPE_F64)
        CONV(double, double);
    else
        return cudaErrorInvalidValue;
#undef CONV
    return cudaGetLastError();
}

template <typename TX, typename TY>
__global__ void k_channel_bias_act(const TX *x, TY *y, const TY *bias, int64_t c, int64_t plane,
                                   int64_t total, cuda_act act)
{
    CUDA_FOR(i, total)
    {
        float v = (float)to_f(x[i]);
        if (bias)
            v += (float)to_f(bias[i / plane % c]);
        if (act.kind != RT_ACT_NONE)
            v = act_apply(act.kind, v, act.alpha, act.lo, act.hi);
        y[i] = from_d<TY>(v);
    }
}

extern "C" cudaError_t cuda_k_channel_bias_act(cudaStream_t s, int x_dt, const void *x, int y_dt,
                                               void *y, const void *bias, int64_t n, int64_t c,
                                               int64_t plane, cuda_act act)
{
    int64_t total = n * c * plane;
    if (total == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(total);
    CUDA_FLOAT_DISPATCH(y_dt, typedef T TY; CUDA_FLOAT_DISPATCH(
        x_dt, k_channel_bias_act<<<g, CUDA_THREADS, 0, s>>>((const T *)x, (TY *)y,
                                                            (const TY *)bias, c, plane, total,
                                                            act)))
    return cudaGetLastError();
}

/* Taps of dim i of a window starting at start: those inside X as [*lo, *hi), and returned,
 * how many an average divides by: with include_pad those in the explicit padding count too,
 * the ceil_mode overhang beyond it does not (as rt_cpu_pool.c's pool_taps). */
__device__ __forceinline__ int64_t pool_taps(const cuda_window &w, int i, int64_t start,
                                             bool include_pad, int64_t *lo, int64_t *hi)
{
    rt_window_range(start, w.dilation[i], w.in[i], w.kernel[i], lo, hi);
    if (!include_pad)
        return *hi - *lo;
    int64_t plo, phi;
    rt_window_range(start + w.pad_begin[i], w.dilation[i], w.in[i] + w.pad_begin[i] + w.pad_end[i],
                    w.kernel[i], &plo, &phi);
    return phi - plo;
}

template <typename T>
__global__ void k_pool(const T *x, T *y, int64_t *indices, int64_t planes, cuda_window w,
                       bool max, bool include_pad, bool col_major)
{
    typedef typename acc_of<T>::type A;
    int64_t plane = w.out[0] * w.out[1] * w.out[2], in_plane = w.in[0] * w.in[1] * w.in[2];
    CUDA_FOR(i, planes * plane)
    {
        int64_t pos = i % plane, q = i / plane;
        int64_t ow = pos % w.out[2], oh = pos / w.out[2] % w.out[1], od = pos / w.out[2] / w.out[1];
        int64_t start[3] = {od * w.stride[0] - w.pad_begin[0], oh * w.stride[1] - w.pad_begin[1],
                            ow * w.stride[2] - w.pad_begin[2]};
        int64_t lo[3], hi[3], count = 1;
        for (int d = 0; d < 3; d++)
            count *= pool_taps(w, d, start[d], include_pad, &lo[d], &hi[d]);
        const T *xp = x + q * in_plane;
        A best = -INFINITY, sum = 0;
        int64_t bd = start[0] + lo[0] * w.dilation[0], bh = start[1] + lo[1] * w.dilation[1];
        int64_t bw = start[2] + lo[2] * w.dilation[2];
        for (int64_t kd = lo[0]; kd < hi[0]; kd++) {
            int64_t id = start[0] + kd * w.dilation[0];
            for (int64_t kh = lo[1]; kh < hi[1]; kh++) {
                int64_t ih = start[1] + kh * w.dilation[1];
                for (int64_t kw = lo[2]; kw < hi[2]; kw++) {
                    int64_t iw = start[2] + kw * w.dilation[2];
                    A v = (A)to_f(xp[(id * w.in[1] + ih) * w.in[2] + iw]);
                    sum += v;
                    if (v > best) {
                        best = v;
                        bd = id, bh = ih, bw = iw;
                    }
                }
            }
        }
        y[i] = from_d<T>(max ? best : sum / (A)count);
        if (indices)
            indices[i] = q * in_plane + (col_major ? bd + w.in[0] * (bh + w.in[1] * bw)
                                                   : (bd * w.in[1] + bh) * w.in[2] + bw);
    }
}

extern "C" cudaError_t cuda_k_pool(cudaStream_t s, int dt, const void *x, void *y,
                                   int64_t *indices, int64_t planes, const cuda_window *win,
                                   bool max, bool include_pad, bool col_major)
{
    int64_t total = planes * win->out[0] * win->out[1] * win->out[2];
    if (total == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(total);
    CUDA_FLOAT_DISPATCH(dt, k_pool<T><<<g, CUDA_THREADS, 0, s>>>((const T *)x, (T *)y, indices,
                                                                 planes, *win, max, include_pad,
                                                                 col_major))
    return cudaGetLastError();
}
