/* cuda_k_elementwise.cu: elementwise kernels of the CUDA backend: broadcasting binary
 * arithmetic and comparisons, Where, unary math, Cast, the bias + activation epilogue and
 * the interpreter of infd.FusedElementwise chains (see cuda_kernels.h).
 *
 * Float dtypes take a templated path that computes in float (double for F64); any other
 * combination (integers, BOOL, Pow with mixed dtypes) takes a generic path that loads and
 * stores by dtype through int64 or double, with the CPU backend's integer semantics:
 * wrapping arithmetic, division by zero giving 0. */
#include "cuda_k_util.cuh"

/* Element offset of output index i in input k of a broadcast walk. */
__device__ __forceinline__ int64_t bcast_off(const cuda_bcast &bc, int k, int64_t i)
{
    int64_t off = 0;
    for (int d = bc.rank - 1; d >= 0; d--) {
        int64_t dim = bc.dims[d];
        off += (i % dim) * bc.strides[k][d];
        i /= dim;
    }
    return off;
}

template <typename A> __device__ __forceinline__ A binary_float(cuda_op op, A x, A y)
{
    switch (op) {
    case CUDA_OP_ADD: return x + y;
    case CUDA_OP_SUB: return x - y;
    case CUDA_OP_MUL: return x * y;
    case CUDA_OP_DIV: return x / y;
    case CUDA_OP_POW: return y == (A)2 ? x * x : pow(x, y);
    /* NaN from either side propagates, like numpy's minimum and maximum */
    case CUDA_OP_MIN: return (x != x || x < y) ? x : y;
    case CUDA_OP_MAX: return (x != x || x > y) ? x : y;
    case CUDA_OP_EQUAL: return x == y;
    case CUDA_OP_LESS: return x < y;
    case CUDA_OP_GREATER: return x > y;
    default: return 0;
    }
}

__host__ __device__ __forceinline__ bool is_compare(cuda_op op)
{
    return op == CUDA_OP_EQUAL || op == CUDA_OP_LESS || op == CUDA_OP_GREATER;
}

/* a, b and (unless comparing, when o is BOOL) o of type T */
template <typename T>
__global__ void k_binary_float(cuda_op op, const T *a, const T *b, void *o, cuda_bcast bc)
{
    typedef typename acc_of<T>::type A;
    bool cmp = is_compare(op);
    CUDA_FOR(i, bc.numel)
    {
        A x = to_f(a[bcast_off(bc, 0, i)]), y = to_f(b[bcast_off(bc, 1, i)]);
        A r = binary_float<A>(op, x, y);
        if (cmp)
            ((uint8_t *)o)[i] = r != (A)0;
        else
            ((T *)o)[i] = from_d<T>(r);
    }
}

__device__ __forceinline__ int64_t binary_int(cuda_op op, int64_t x, int64_t y, bool uns)
{
    uint64_t ux = (uint64_t)x, uy = (uint64_t)y;
    switch (op) {
    case CUDA_OP_ADD: return (int64_t)(ux + uy);
    case CUDA_OP_SUB: return (int64_t)(ux - uy);
    case CUDA_OP_MUL: return (int64_t)(ux * uy);
    case CUDA_OP_DIV:
        if (y == 0)
            return 0;
        if (uns)
            return (int64_t)(ux / uy);
        return y == -1 ? (int64_t)(0 - ux) : x / y;
    case CUDA_OP_POW: return rt_ipow(x, y);
    case CUDA_OP_MIN: return (uns ? ux < uy : x < y) ? x : y;
    case CUDA_OP_MAX: return (uns ? ux > uy : x > y) ? x : y;
    case CUDA_OP_EQUAL: return x == y;
    case CUDA_OP_LESS: return uns ? ux < uy : x < y;
    case CUDA_OP_GREATER: return uns ? ux > uy : x > y;
    default: return 0;
    }
}

__global__ void k_binary_any(cuda_op op, int ta, int tb, int to, const void *a, const void *b,
                             void *o, cuda_bcast bc)
{
    bool ints = !dt_float(ta) && !dt_float(tb);
    bool uns = dt_unsigned(ta);
    CUDA_FOR(i, bc.numel)
    {
        int64_t ia = bcast_off(bc, 0, i), ib = bcast_off(bc, 1, i);
        if (ints)
            st_i64(to, o, i, binary_int(op, ld_i64(ta, a, ia), ld_i64(tb, b, ib), uns));
        else
            st_f64(to, o, i, binary_float<double>(op, ld_f64(ta, a, ia), ld_f64(tb, b, ib)));
    }
}

extern "C" cudaError_t cuda_k_binary(cudaStream_t s, cuda_op op, int ta, int tb, int to,
                                     const void *a, const void *b, void *o, const cuda_bcast *bc)
{
    if (bc->numel == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(bc->numel);
    bool same = ta == tb && (to == ta || (is_compare(op) && to == RT_DTYPE_BOOL));
#define BIN(T) k_binary_float<T><<<g, CUDA_THREADS, 0, s>>>(op, (const T *)a, (const T *)b, o, *bc)
    if (same && ta == RT_DTYPE_F32)
        BIN(float);
    else if (same && ta == RT_DTYPE_F16)
        BIN(__half);
    else if (same && ta == RT_DTYPE_BF16)
        BIN(__nv_bfloat16);
    else if (same && ta == RT_DTYPE_F64)
        BIN(double);
    else
        k_binary_any<<<g, CUDA_THREADS, 0, s>>>(op, ta, tb, to, a, b, o, *bc);
#undef BIN
    return cudaGetLastError();
}

/* ---- Where ---- */

template <typename E>
__global__ void k_where(const uint8_t *c, const E *x, const E *y, E *o, cuda_bcast bc)
{
    CUDA_FOR(i, bc.numel)
    o[i] = c[bcast_off(bc, 0, i)] ? x[bcast_off(bc, 1, i)] : y[bcast_off(bc, 2, i)];
}

extern "C" cudaError_t cuda_k_where(cudaStream_t s, size_t elem, const void *c, const void *x,
                                    const void *y, void *o, const cuda_bcast *bc)
{
    if (bc->numel == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(bc->numel);
    const uint8_t *cc = (const uint8_t *)c;
#define WHERE(E) k_where<E><<<g, CUDA_THREADS, 0, s>>>(cc, (const E *)x, (const E *)y, (E *)o, *bc)
    switch (elem) {
    case 1: WHERE(uint8_t); break;
    case 2: WHERE(uint16_t); break;
    case 4: WHERE(uint32_t); break;
    case 8: WHERE(uint64_t); break;
    case 16: WHERE(uint4); break;
    default: return cudaErrorInvalidValue;
    }
#undef WHERE
    return cudaGetLastError();
}

/* ---- unary ---- */

template <typename A> __device__ __forceinline__ A unary_float(const cuda_unary &u, A v)
{
    switch (u.op) {
    case CUDA_OP_SQRT: return sqrt(v);
    case CUDA_OP_EXP: return exp(v);
    case CUDA_OP_LOG: return log(v);
    case CUDA_OP_NEG: return -v;
    case CUDA_OP_ABS: return fabs(v);
    case CUDA_OP_RECIPROCAL: return (A)1 / v;
    case CUDA_OP_RELU: return v < (A)0 ? (A)0 : v; /* keeps NaN */
    case CUDA_OP_LEAKY_RELU: return v < (A)0 ? v * (A)u.alpha : v;
    case CUDA_OP_SIGMOID: return (A)1 / ((A)1 + exp(-v));
    case CUDA_OP_TANH: return tanh(v);
    case CUDA_OP_ERF: return erf(v);
    case CUDA_OP_CLIP: {
        A lo = (A)u.lo, hi = (A)u.hi;
        return v < lo ? (lo > hi ? hi : lo) : v > hi ? hi : v;
    }
    default: return v;
    }
}

template <typename T> __global__ void k_unary_float(cuda_unary u, const T *x, T *y, int64_t n)
{
    typedef typename acc_of<T>::type A;
    CUDA_FOR(i, n)
    y[i] = from_d<T>(unary_float<A>(u, (A)to_f(x[i])));
}

/* integers (Neg Abs Relu Clip) and BOOL (Not) */
__global__ void k_unary_int(cuda_unary u, int dt, const void *x, void *y, int64_t n)
{
    bool uns = dt_unsigned(dt);
    CUDA_FOR(i, n)
    {
        int64_t v = ld_i64(dt, x, i), r = v;
        switch (u.op) {
        case CUDA_OP_NOT: r = v == 0; break;
        case CUDA_OP_NEG: r = (int64_t)(0 - (uint64_t)v); break;
        case CUDA_OP_ABS: r = !uns && v < 0 ? (int64_t)(0 - (uint64_t)v) : v; break;
        case CUDA_OP_RELU: r = !uns && v < 0 ? 0 : v; break;
        case CUDA_OP_CLIP:
            if (u.has_ilo && (uns ? (uint64_t)v < (uint64_t)u.ilo : v < u.ilo))
                r = u.ilo;
            if (u.has_ihi && (uns ? (uint64_t)r > (uint64_t)u.ihi : r > u.ihi))
                r = u.ihi;
            break;
        default: break;
        }
        st_i64(dt, y, i, r);
    }
}

extern "C" cudaError_t cuda_k_unary(cudaStream_t s, int dt, const cuda_unary *u, const void *x,
                                    void *y, int64_t n)
{
    if (n == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(n);
#define UN(T) k_unary_float<T><<<g, CUDA_THREADS, 0, s>>>(*u, (const T *)x, (T *)y, n)
    switch (dt) {
    case RT_DTYPE_F32: UN(float); break;
    case RT_DTYPE_F16: UN(__half); break;
    case RT_DTYPE_BF16: UN(__nv_bfloat16); break;
    case RT_DTYPE_F64: UN(double); break;
    default: k_unary_int<<<g, CUDA_THREADS, 0, s>>>(*u, dt, x, y, n); break;
    }
#undef UN
    return cudaGetLastError();
}

/* ---- Cast ---- */

__device__ __forceinline__ bool dt_intlike(int dt)
{
    return !dt_float(dt);
}

/* F32 to BF16 by dropping the low 16 bits, NaN kept quiet (Cast before opset 19). */
__device__ __forceinline__ uint16_t bf16_truncate(float f)
{
    uint32_t u = __float_as_uint(f);
    return isnan(f) ? (uint16_t)((u >> 16) | 0x40) : (uint16_t)(u >> 16);
}

__global__ void k_cast(int from, int to, const void *x, void *y, int64_t n, bool truncate)
{
    bool ints = dt_intlike(from) && dt_intlike(to);
    CUDA_FOR(i, n)
    {
        if (ints)
            st_i64(to, y, i, ld_i64(from, x, i));
        else if (to == RT_DTYPE_BF16 && truncate)
            ((uint16_t *)y)[i] = bf16_truncate((float)ld_f64(from, x, i));
        else
            st_f64(to, y, i, ld_f64(from, x, i));
    }
}

/* the conversions GEMM operands go through: F32 to and from the half types */
template <typename S, typename D> __global__ void k_convert(const S *x, D *y, int64_t n)
{
    CUDA_FOR(i, n)
    y[i] = from_f<D>(to_f(x[i]));
}

extern "C" cudaError_t cuda_k_cast(cudaStream_t s, int from, int to, const void *x, void *y,
                                   int64_t n, bool bf16_trunc)
{
    if (n == 0)
        return cudaSuccess;
    unsigned g = cuda_blocks(n);
#define CONVERT(S, D) k_convert<S, D><<<g, CUDA_THREADS, 0, s>>>((const S *)x, (D *)y, n)
    if (from == RT_DTYPE_F32 && to == RT_DTYPE_F16)
        CONVERT(float, __half);
    else if (from == RT_DTYPE_F32 && to == RT_DTYPE_BF16 && !bf16_trunc)
        CONVERT(float, __nv_bfloat16);
    else if (from == RT_DTYPE_F16 && to == RT_DTYPE_F32)
        CONVERT(__half, float);
    else if (from == RT_DTYPE_BF16 && to == RT_DTYPE_F32)
        CONVERT(__nv_bfloat16, float);
    else
        k_cast<<<g, CUDA_THREADS, 0, s>>>(from, to, x, y, n, bf16_trunc);
#undef CONVERT
    return cudaGetLastError();
}

/* ---- bias and activation ---- */

__global__ void k_bias_act(float *y, const float *x, int64_t rows, int64_t cols,
                           const float *bias, cuda_act a)
{
    CUDA_FOR(i, rows * cols)
    {
        float v = x[i] + (bias ? bias[i % cols] : 0.0f);
        y[i] = act_apply(a.kind, v, a.alpha, a.lo, a.hi);
    }
}

extern "C" cudaError_t cuda_k_bias_act(cudaStream_t s, float *y, const float *x, int64_t rows,
                                       int64_t cols, const float *bias, cuda_act act)
{
    if (rows * cols == 0)
        return cudaSuccess;
    k_bias_act<<<cuda_blocks(rows * cols), CUDA_THREADS, 0, s>>>(y, x, rows, cols, bias, act);
    return cudaGetLastError();
}

/* ---- infd.FusedElementwise ---- */

/* One step on the chain value v with the other operand o (binary steps). */
__device__ __forceinline__ float ew_step(const cuda_ew_step &st, float v, float o)
{
    cuda_unary u = {st.op, st.p0, st.p0, st.p1, 0, 0, false, false};
    switch (st.op) {
    case CUDA_OP_ADD: case CUDA_OP_SUB: case CUDA_OP_MUL: case CUDA_OP_DIV: case CUDA_OP_POW:
    case CUDA_OP_MIN: case CUDA_OP_MAX:
        return st.swap ? binary_float<float>(st.op, o, v) : binary_float<float>(st.op, v, o);
    case CUDA_OP_GELU: return act_apply(RT_ACT_GELU, v, 0, 0, 0);
    case CUDA_OP_GELU_TANH: return act_apply(RT_ACT_GELU_TANH, v, 0, 0, 0);
    default: return unary_float<float>(u, v);
    }
}

/* the parameter block is large: it is read from the kernel's parameter space by reference */
__global__ void k_fused_ew(const __grid_constant__ cuda_ew ew, float *y)
{
    CUDA_FOR(i, ew.numel)
    {
        int64_t coord[CUDA_MAX_RANK];
        int64_t rem = i;
        for (int d = ew.rank - 1; d >= 0; d--) {
            coord[d] = rem % ew.dims[d];
            rem /= ew.dims[d];
        }
        int64_t off0 = 0;
        for (int d = 0; d < ew.rank; d++)
            off0 += coord[d] * ew.strides[0][d];
        float v = ew.in0_dtype == RT_DTYPE_F32 ? ((const float *)ew.in[0])[off0]
                                               : (float)ld_f64(ew.in0_dtype, ew.in[0], off0);
        for (int k = 0; k < ew.n_steps; k++) {
            const cuda_ew_step &st = ew.steps[k];
            float o = 0.0f;
            if (st.arg > 0) {
                int64_t off = 0;
                for (int d = 0; d < ew.rank; d++)
                    off += coord[d] * ew.strides[st.arg][d];
                o = ((const float *)ew.in[st.arg])[off];
            }
            v = ew_step(st, v, o);
        }
        y[i] = v;
    }
}

extern "C" cudaError_t cuda_k_fused_ew(cudaStream_t s, const cuda_ew *ew, float *y)
{
    if (ew->numel == 0)
        return cudaSuccess;
    k_fused_ew<<<cuda_blocks(ew->numel), CUDA_THREADS, 0, s>>>(*ew, y);
    return cudaGetLastError();
}
