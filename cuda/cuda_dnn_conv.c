/* cuda_dnn_conv.c: convolutions on cuDNN's legacy API (cuda_dnn_conv.h).
 *
 * A convolution cuDNN may take (cuda_dnn_conv.h) is described as NCHW tensors with 1-D
 * convolutions as H = 1; cudnnGetConvolutionForwardAlgorithm_v7 ranks the algorithms once
 * per shape and the first that succeeds within WORKSPACE_MAX is kept with the descriptors.
 * F32 bias + ReLU runs fused in cudnnConvolutionBiasActivationForward; any other bias or
 * activation, and the widening of a half output back to F32, runs in one kernel after the
 * convolution (cuda_k_channel_bias_act). cuDNN answering "not supported" sends the shape
 * to the direct kernel for good; any other failing status is an error of the run. */
#include "cuda_dnn_conv.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_dnn.h"
#include "cuda_ops.h"
#include "rt_fused.h"

#if CUDA_HAVE_CUDNN

#define CACHE_SIZE 64
#define WORKSPACE_MAX ((size_t)64 << 20) /* algorithms that need more are passed over */
#define MAX_ALGOS 32

/* Everything the descriptors and the algorithm depend on (zeroed before filling: it is
 * compared with memcmp). */
typedef struct dnn_key {
    int cd;    /* the dtype cuDNN reads and writes (rt_dtype) */
    int math;  /* cudnnMathType_t asked for (the heuristic's own replaces it, but for
                * exact F32, which stays FMA) */
    int fused; /* bias + ReLU in cudnnConvolutionBiasActivationForward */
    int n, c, h, w, m, kh, kw, oh, ow, group;
    int pad[2], stride[2], dilation[2];
} dnn_key;

typedef struct dnn_entry {
    dnn_key key;
    bool direct;  /* cuDNN does not take this shape: the direct kernel runs it */
    bool unfused; /* the fused call refused it: the bias and ReLU run in the kernel */
    cudnnTensorDescriptor_t xd, yd, bd;
    cudnnFilterDescriptor_t wd;
    cudnnConvolutionDescriptor_t convd;
    cudnnActivationDescriptor_t ad;
    cudnnConvolutionFwdAlgo_t algo;
    size_t workspace;
} dnn_entry;

struct cuda_dnn_state {
    const cuda_dnn *lib;
    cudnnHandle_t handle;
    bool unusable; /* no library or no handle: every convolution runs the direct kernel */
    dnn_entry cache[CACHE_SIZE];
    int n_cache;
    uint64_t convs;
};

static bool not_supported(cudnnStatus_t s)
{
    return CUDNN_STATUS_CATEGORY(s) == CUDNN_STATUS_NOT_SUPPORTED;
}

static rt_status dnn_fail(rt_error *err, const cuda_dnn *lib, cudnnStatus_t s, const char *call)
{
    return rt_error_set(err, RT_ERR_BACKEND, "cuda: cuDNN %s: %s", call, lib->error_string(s));
}

/* One step of describing a shape: "not supported" makes the shape direct, any other
 * failure is an error. */
#define DESCRIBE(call, name)                                                                \
    do {                                                                                    \
        cudnnStatus_t dnn_s_ = (call);                                                      \
        if (dnn_s_ != CUDNN_STATUS_SUCCESS) {                                               \
            if (!not_supported(dnn_s_))                                                     \
                return dnn_fail(err, lib, dnn_s_, name);                                    \
            e->direct = true;                                                               \
            return RT_OK;                                                                   \
        }                                                                                   \
    } while (0)

static cudnnDataType_t data_type(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F16: return CUDNN_DATA_HALF;
    case RT_DTYPE_BF16: return CUDNN_DATA_BFLOAT16;
    default: return CUDNN_DATA_FLOAT;
    }
}

/* ---- which convolutions ---- */

static bool dnn_dtype(rt_dtype dt)
{
    return dt == RT_DTYPE_F32 || dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16;
}

static bool fits_int(int64_t v)
{
    return v > 0 && v <= INT_MAX;
}

/* Spatial dim i of win as cuDNN's dim d of key: the same pad on both sides, and the
 * output size cuDNN computes (floor) equal to ours. */
static bool spatial(const rt_window *win, int i, dnn_key *k, int d)
{
    int64_t in = win->in[i], kern = win->kernel[i], s = win->stride[i], dil = win->dilation[i];
    int64_t pad = win->pad_begin[i], out = win->out[i];
    if (pad != win->pad_end[i] || pad < 0 || !fits_int(in) || !fits_int(kern) || !fits_int(s) ||
        !fits_int(dil) || !fits_int(out) || pad > INT_MAX)
        return false;
    if ((in + 2 * pad - (kern - 1) * dil - 1) / s + 1 != out)
        return false;
    *(d ? &k->w : &k->h) = (int)in;
    *(d ? &k->kw : &k->kh) = (int)kern;
    *(d ? &k->ow : &k->oh) = (int)out;
    k->pad[d] = (int)pad;
    k->stride[d] = (int)s;
    k->dilation[d] = (int)dil;
    return true;
}

/* The key of a convolution cuDNN may take, or false for the direct kernel. */
static bool key_of(const cuda_be *be, const rt_tensor *x, const rt_tensor *w, const rt_tensor *b,
                   const rt_tensor *y, const rt_window *win, int64_t group, cuda_act act,
                   dnn_key *k)
{
    memset(k, 0, sizeof *k);
    if (win->rank < 1 || win->rank > 2 || !dnn_dtype(x->dtype) || !dnn_dtype(w->dtype) ||
        y->dtype != x->dtype || (b && b->dtype != y->dtype))
        return false;
    int64_t n = x->shape.dims[0], c = x->shape.dims[1], m = w->shape.dims[0];
    if (!fits_int(n) || !fits_int(c) || !fits_int(m) || !fits_int(group) || c % group ||
        m % group || w->shape.dims[1] != c / group)
        return false;
    /* cuDNN's legacy descriptors count elements in int */
    if (rt_tensor_numel(x) > INT_MAX || rt_tensor_numel(y) > INT_MAX ||
        rt_tensor_numel(w) > INT_MAX)
        return false;
    /* a 1-D convolution is a 2-D one of height 1 */
    k->h = k->kh = k->oh = 1;
    k->stride[0] = k->dilation[0] = 1;
    bool dims_ok = win->rank == 1 ? spatial(win, 0, k, 1)
                                  : spatial(win, 0, k, 0) && spatial(win, 1, k, 1);
    if (!dims_ok)
        return false;
    rt_dtype cd = cuda_compute_dtype(be, x->dtype);
    k->cd = cd;
    /* half types on the tensor cores; F32 exactly (FMA: cuDNN's default math allows TF32
     * on Ampere and later), or with TF32 allowed (the default math) under tf32 */
    k->math = cd != RT_DTYPE_F32                     ? CUDNN_TENSOR_OP_MATH
              : be->precision == RT_PRECISION_TF32 ? CUDNN_DEFAULT_MATH
                                                   : CUDNN_FMA_MATH;
    k->fused = cd == RT_DTYPE_F32 && b && act.kind == RT_ACT_RELU;
    k->n = (int)n;
    k->c = (int)c;
    k->m = (int)m;
    k->group = (int)group;
    return true;
}

/* ---- descriptors and algorithm per shape ---- */

static void descriptors_destroy(const cuda_dnn *lib, dnn_entry *e)
{
    if (e->xd)
        lib->tensor_destroy(e->xd);
    if (e->yd)
        lib->tensor_destroy(e->yd);
    if (e->bd)
        lib->tensor_destroy(e->bd);
    if (e->wd)
        lib->filter_destroy(e->wd);
    if (e->convd)
        lib->conv_destroy(e->convd);
    if (e->ad)
        lib->act_destroy(e->ad);
    e->xd = e->yd = e->bd = NULL;
    e->wd = NULL;
    e->convd = NULL;
    e->ad = NULL;
}

/* Whether an algorithm the heuristic ranks in math type mt computes as key asks: exact
 * F32 takes FMA only (forced below), F32 never converts down to F16. */
static bool math_ok(const dnn_key *k, cudnnMathType_t mt)
{
    if (k->math == CUDNN_FMA_MATH)
        return true;
    return !(k->cd == RT_DTYPE_F32 && mt == CUDNN_TENSOR_OP_MATH_ALLOW_CONVERSION);
}

/* The first algorithm the heuristic ranks that cuDNN runs within WORKSPACE_MAX, in the
 * math type it was ranked in (exact F32: FMA); none makes the shape direct. */
static rt_status choose_algo(cuda_dnn_state *s, dnn_entry *e, rt_error *err)
{
    const cuda_dnn *lib = s->lib;
    int max = 0, found = 0;
    DESCRIBE(lib->algo_max(s->handle, &max), "cudnnGetConvolutionForwardAlgorithmMaxCount");
    cudnnConvolutionFwdAlgoPerf_t perf[MAX_ALGOS];
    DESCRIBE(lib->algo_get(s->handle, e->xd, e->wd, e->convd, e->yd,
                           max < MAX_ALGOS ? max : MAX_ALGOS, &found, perf),
             "cudnnGetConvolutionForwardAlgorithm_v7");
    for (int i = 0; i < found; i++) {
        if (perf[i].status != CUDNN_STATUS_SUCCESS || !math_ok(&e->key, perf[i].mathType))
            continue;
        cudnnMathType_t mt = e->key.math == CUDNN_FMA_MATH ? CUDNN_FMA_MATH : perf[i].mathType;
        size_t ws = 0;
        if (lib->conv_set_math(e->convd, mt) != CUDNN_STATUS_SUCCESS ||
            lib->workspace_size(s->handle, e->xd, e->wd, e->convd, e->yd, perf[i].algo, &ws) !=
                CUDNN_STATUS_SUCCESS ||
            ws > WORKSPACE_MAX)
            continue;
        e->algo = perf[i].algo;
        e->workspace = ws;
        return RT_OK;
    }
    e->direct = true;
    return RT_OK;
}

/* Describes key into e (e->direct when cuDNN does not take it). */
static rt_status entry_build(cuda_dnn_state *s, const dnn_key *k, dnn_entry *e, rt_error *err)
{
    const cuda_dnn *lib = s->lib;
    memset(e, 0, sizeof *e);
    e->key = *k;
    cudnnDataType_t t = data_type((rt_dtype)k->cd);
    DESCRIBE(lib->tensor_create(&e->xd), "cudnnCreateTensorDescriptor");
    DESCRIBE(lib->tensor_set(e->xd, CUDNN_TENSOR_NCHW, t, k->n, k->c, k->h, k->w),
             "cudnnSetTensor4dDescriptor (x)");
    DESCRIBE(lib->filter_create(&e->wd), "cudnnCreateFilterDescriptor");
    DESCRIBE(lib->filter_set(e->wd, t, CUDNN_TENSOR_NCHW, k->m, k->c / k->group, k->kh, k->kw),
             "cudnnSetFilter4dDescriptor");
    DESCRIBE(lib->conv_create(&e->convd), "cudnnCreateConvolutionDescriptor");
    /* ONNX's Conv is a cross-correlation; the half types accumulate in F32 */
    DESCRIBE(lib->conv_set(e->convd, k->pad[0], k->pad[1], k->stride[0], k->stride[1],
                           k->dilation[0], k->dilation[1], CUDNN_CROSS_CORRELATION,
                           CUDNN_DATA_FLOAT),
             "cudnnSetConvolution2dDescriptor");
    DESCRIBE(lib->conv_set_groups(e->convd, k->group), "cudnnSetConvolutionGroupCount");
    DESCRIBE(lib->conv_set_math(e->convd, (cudnnMathType_t)k->math),
             "cudnnSetConvolutionMathType");
    DESCRIBE(lib->tensor_create(&e->yd), "cudnnCreateTensorDescriptor");
    DESCRIBE(lib->tensor_set(e->yd, CUDNN_TENSOR_NCHW, t, k->n, k->m, k->oh, k->ow),
             "cudnnSetTensor4dDescriptor (y)");
    if (k->fused) {
        DESCRIBE(lib->tensor_create(&e->bd), "cudnnCreateTensorDescriptor");
        DESCRIBE(lib->tensor_set(e->bd, CUDNN_TENSOR_NCHW, CUDNN_DATA_FLOAT, 1, k->m, 1, 1),
                 "cudnnSetTensor4dDescriptor (bias)");
        DESCRIBE(lib->act_create(&e->ad), "cudnnCreateActivationDescriptor");
        /* NaN passes through ReLU, as on the CPU */
        DESCRIBE(lib->act_set(e->ad, CUDNN_ACTIVATION_RELU, CUDNN_PROPAGATE_NAN, 0.0),
                 "cudnnSetActivationDescriptor");
    }
    return choose_algo(s, e, err);
}

/* The cache entry for key in *out, built on a miss (a full cache starts over); NULL in
 * *out on a miss while a graph is recorded (building allocates): the direct kernel runs
 * that call. */
static rt_status entry_get(cuda_be *be, cuda_dnn_state *s, const dnn_key *key, dnn_entry **out,
                           rt_error *err)
{
    *out = NULL;
    for (int i = 0; i < s->n_cache; i++)
        if (memcmp(&s->cache[i].key, key, sizeof *key) == 0) {
            *out = &s->cache[i];
            return RT_OK;
        }
    if (be->capturing)
        return RT_OK;
    if (s->n_cache == CACHE_SIZE) {
        for (int i = 0; i < s->n_cache; i++)
            descriptors_destroy(s->lib, &s->cache[i]);
        s->n_cache = 0;
    }
    dnn_entry *e = &s->cache[s->n_cache];
    rt_status st = entry_build(s, key, e, err);
    if (st != RT_OK || e->direct)
        descriptors_destroy(s->lib, e);
    if (st != RT_OK)
        return st;
    s->n_cache++;
    *out = e;
    return RT_OK;
}

/* Whether the sub-libraries libcudnn forwards to load: a convolution descriptor comes
 * from libcudnn_cnn. A partial install fails here, once, rather than in every run. */
static bool sublibraries_load(const cuda_dnn *lib)
{
    cudnnConvolutionDescriptor_t d = NULL;
    if (lib->conv_create(&d) != CUDNN_STATUS_SUCCESS)
        return false;
    lib->conv_destroy(d);
    return true;
}

/* be's state, made on its first convolution; NULL when cuDNN cannot be used (remembered)
 * or while a graph is recorded before it exists. */
static cuda_dnn_state *state_get(cuda_be *be)
{
    if (be->dnn)
        return be->dnn->unusable ? NULL : be->dnn;
    if (be->capturing)
        return NULL;
    cuda_dnn_state *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    be->dnn = s;
    s->lib = cuda_dnn_get(NULL);
    if (s->lib && s->lib->create(&s->handle) != CUDNN_STATUS_SUCCESS)
        s->handle = NULL;
    if (!s->handle || s->lib->set_stream(s->handle, be->stream) != CUDNN_STATUS_SUCCESS ||
        !sublibraries_load(s->lib)) {
        /* cuDNN's own CUDA calls may have left an error behind */
        cudaGetLastError();
        s->unusable = true;
        return NULL;
    }
    return s;
}

/* ---- running ---- */

/* The convolution of entry e into py (dtype key.cd), fused with bias + ReLU when the key
 * asks and cuDNN takes it (*fused). RT_OK with *ran false when cuDNN refuses the shape. */
static rt_status forward(cuda_be *be, cuda_dnn_state *s, dnn_entry *e, const void *px,
                         const void *pw, const rt_tensor *b, void *py, void *ws, bool *fused,
                         bool *ran, rt_error *err)
{
    const cuda_dnn *lib = s->lib;
    const float one = 1.0f, zero = 0.0f;
    cudnnStatus_t st = CUDNN_STATUS_SUCCESS;
    const char *call = NULL;
    *ran = false;
    *fused = e->key.fused && !e->unfused;
    if (*fused) {
        /* z is y itself with alpha2 = 0: the sum has no side input */
        call = "cudnnConvolutionBiasActivationForward";
        st = lib->forward_bias_act(s->handle, &one, e->xd, px, e->wd, pw, e->convd, e->algo, ws,
                                   e->workspace, &zero, e->yd, py, e->bd, b->data, e->ad, e->yd,
                                   py);
        if (not_supported(st))
            e->unfused = true;
        *fused = !e->unfused;
    }
    if (!*fused) {
        call = "cudnnConvolutionForward";
        st = lib->forward(s->handle, &one, e->xd, px, e->wd, pw, e->convd, e->algo, ws,
                          e->workspace, &zero, e->yd, py);
        if (not_supported(st)) {
            e->direct = true;
            return RT_OK;
        }
    }
    if (st != CUDNN_STATUS_SUCCESS)
        return dnn_fail(err, lib, st, call);
    be->kernels++;
    *ran = true;
    return RT_OK;
}

rt_status cuda_dnn_conv(cuda_be *be, const rt_tensor *x, const rt_tensor *w, const rt_tensor *b,
                        rt_tensor *y, const rt_window *win, int64_t group, cuda_act act,
                        bool *done, rt_error *err)
{
    *done = false;
    dnn_key key;
    if (!key_of(be, x, w, b, y, win, group, act, &key))
        return RT_OK;
    cuda_dnn_state *s = state_get(be);
    dnn_entry *e = NULL;
    rt_status st = s ? entry_get(be, s, &key, &e, err) : RT_OK;
    if (st != RT_OK || !e || e->direct)
        return st;
    /* scratch: the operands converted to key.cd, a key.cd output to widen, the workspace */
    rt_dtype cd = (rt_dtype)key.cd;
    size_t ops = cuda_operand_bytes(be, x, cd) + cuda_operand_bytes(be, w, cd);
    size_t ybytes = y->dtype != cd ? cuda_piece((size_t)rt_tensor_numel(y) * rt_dtype_size(cd)) : 0;
    size_t total = ops + ybytes + e->workspace;
    char *scratch = total ? cuda_scratch(be, total, err) : NULL;
    if (total && !scratch)
        return err ? err->status : RT_ERR_NOMEM;
    char *cursor = scratch;
    const void *px = cuda_operand(be, x, cd, &cursor, err);
    const void *pw = px ? cuda_operand(be, w, cd, &cursor, err) : NULL;
    if (!px || !pw)
        return err ? err->status : RT_ERR_BACKEND;
    void *py = ybytes ? (void *)(scratch + ops) : y->data;
    void *ws = e->workspace ? scratch + ops + ybytes : NULL;
    bool fused, ran;
    if ((st = forward(be, s, e, px, pw, b, py, ws, &fused, &ran, err)) != RT_OK || !ran)
        return st;
    s->convs++;
    *done = true;
    if (!fused && (ybytes || b || act.kind != RT_ACT_NONE))
        CUDA_LAUNCH(be, err,
                    cuda_k_channel_bias_act(be->stream, cd, py, y->dtype, y->data,
                                            b ? b->data : NULL, key.n, key.m,
                                            (int64_t)key.oh * key.ow, act),
                    "Conv bias and activation");
    return RT_OK;
}

void cuda_dnn_conv_stats(const cuda_be *be, bool *active, uint64_t *convs)
{
    *active = be->dnn && !be->dnn->unusable;
    *convs = be->dnn ? be->dnn->convs : 0;
}

void cuda_dnn_conv_free(cuda_be *be)
{
    cuda_dnn_state *s = be->dnn;
    if (!s)
        return;
    for (int i = 0; i < s->n_cache; i++)
        descriptors_destroy(s->lib, &s->cache[i]);
    if (s->handle)
        s->lib->destroy(s->handle);
    free(s);
    be->dnn = NULL;
}

#else /* no cudnn.h at build time: every convolution runs the direct kernel */

rt_status cuda_dnn_conv(cuda_be *be, const rt_tensor *x, const rt_tensor *w, const rt_tensor *b,
                        rt_tensor *y, const rt_window *win, int64_t group, cuda_act act,
                        bool *done, rt_error *err)
{
    (void)be, (void)x, (void)w, (void)b, (void)y, (void)win, (void)group, (void)act, (void)err;
    *done = false;
    return RT_OK;
}

void cuda_dnn_conv_stats(const cuda_be *be, bool *active, uint64_t *convs)
{
    (void)be;
    *active = false;
    *convs = 0;
}

void cuda_dnn_conv_free(cuda_be *be)
{
    (void)be;
}

#endif
