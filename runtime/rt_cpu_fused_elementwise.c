/* rt_cpu_fused_elementwise.c: CPU kernel of infd.FusedElementwise (rt_fused.h): a chain of
 * elementwise steps in one pass over memory. The output is cut into blocks of a few
 * hundred elements; each block is loaded from input 0 into the output, and every step
 * updates it in place while it stays in L1, reading its other operand as a scalar, as a
 * contiguous slice or, where it broadcasts, gathered into a small buffer. */
#include <math.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_cpu_vmath.h"

#define BLOCK 512
#define PAR_MIN 32768
#define MAX_IN (RT_EW_MAX_STEPS + 1)

#define SIMD _Pragma("omp simd")

typedef enum { IN_FULL, IN_SCALAR, IN_BROADCAST } in_mode;

typedef struct {
    const rt_ew_program *prog;
    const rt_tensor *const *in;
    int n_in;
    float *y;
    const rt_shape *out;
    in_mode mode[MAX_IN];
    float scalar[MAX_IN];
    int64_t strides[MAX_IN][RT_MAX_RANK]; /* per output dim; 0 where the input broadcasts */
} ew_job;

/* Input k's elements under output elements [off, off + len) as floats: its own data when
 * it is contiguous F32 there, else converted or gathered into buf. */
static const float *operand(const ew_job *j, int k, int64_t off, int64_t len, float *buf)
{
    const rt_tensor *t = j->in[k];
    if (j->mode[k] == IN_FULL && t->dtype == RT_DTYPE_F32)
        return (const float *)t->data + off;
    if (j->mode[k] == IN_FULL) {
        if (t->dtype == RT_DTYPE_I64)
            for (int64_t i = 0; i < len; i++)
                buf[i] = (float)((const int64_t *)t->data)[off + i];
        else
            for (int64_t i = 0; i < len; i++)
                buf[i] = (float)rt_dtype_load_f64(t->dtype, t->data, (size_t)(off + i));
        return buf;
    }
    /* an odometer over the output coordinates of the block */
    const rt_shape *s = j->out;
    int64_t coord[RT_MAX_RANK], idx = 0, rem = off;
    for (int d = s->rank - 1; d >= 0; d--) {
        coord[d] = rem % s->dims[d];
        rem /= s->dims[d];
        idx += coord[d] * j->strides[k][d];
    }
    bool f32 = t->dtype == RT_DTYPE_F32;
    for (int64_t i = 0; i < len; i++) {
        buf[i] = f32 ? ((const float *)t->data)[idx]
                     : (float)rt_dtype_load_f64(t->dtype, t->data, (size_t)idx);
        for (int d = s->rank - 1; d >= 0; d--) {
            idx += j->strides[k][d];
            if (++coord[d] < s->dims[d])
                break;
            idx -= coord[d] * j->strides[k][d];
            coord[d] = 0;
        }
    }
    return buf;
}

/* y[i] = EXPR with a = y[i] and b = the operand (array o or scalar c), in either order. */
#define BIN_LOOPS(EXPR)                                                                     \
    if (o && swap) {                                                                        \
        SIMD for (int64_t i = 0; i < n; i++) { const float x = o[i], z = y[i]; y[i] = (EXPR); } \
    } else if (o) {                                                                         \
        SIMD for (int64_t i = 0; i < n; i++) { const float x = y[i], z = o[i]; y[i] = (EXPR); } \
    } else if (swap) {                                                                      \
        SIMD for (int64_t i = 0; i < n; i++) { const float x = c, z = y[i]; y[i] = (EXPR); } \
    } else {                                                                                \
        SIMD for (int64_t i = 0; i < n; i++) { const float x = y[i], z = c; y[i] = (EXPR); } \
    }                                                                                       \
    break

#define UN_LOOP(EXPR)                                                                       \
    {                                                                                       \
        SIMD for (int64_t i = 0; i < n; i++) { const float x = y[i]; y[i] = (EXPR); }       \
    }                                                                                       \
    break

/* Applies one step to the n values in y; o (or the scalar c when o is NULL) is the other
 * operand of a binary step. Min and Max propagate NaN like the unfused kernels. */
RT_CPU_CLONES
static void apply_step(const rt_ew_step *s, float *y, int64_t n, const float *o, float c)
{
    bool swap = s->swap;
    rt_act act = {.kind = RT_ACT_NONE, .alpha = s->p0, .lo = s->p0, .hi = s->p1};
    switch (s->op) {
    case RT_OP_ADD: BIN_LOOPS(x + z);
    case RT_OP_SUB: BIN_LOOPS(x - z);
    case RT_OP_MUL: BIN_LOOPS(x * z);
    case RT_OP_DIV: BIN_LOOPS(x / z);
    case RT_OP_POW: BIN_LOOPS(z == 2.0f ? x * x : powf(x, z));
    case RT_OP_MIN: BIN_LOOPS((x != x || x < z) ? x : z);
    case RT_OP_MAX: BIN_LOOPS((x != x || x > z) ? x : z);
    case RT_OP_SQRT: UN_LOOP(sqrtf(x));
    case RT_OP_EXP: UN_LOOP(expf(x));
    case RT_OP_LOG: UN_LOOP(logf(x));
    case RT_OP_NEG: UN_LOOP(-x);
    case RT_OP_ABS: UN_LOOP(fabsf(x));
    case RT_OP_RECIPROCAL: UN_LOOP(1.0f / x);
    case RT_OP_ERF: UN_LOOP(erff(x));
    case RT_OP_RELU: act.kind = RT_ACT_RELU; break;
    case RT_OP_LEAKY_RELU: act.kind = RT_ACT_LEAKY_RELU; break;
    case RT_OP_SIGMOID: act.kind = RT_ACT_SIGMOID; break;
    case RT_OP_TANH: act.kind = RT_ACT_TANH; break;
    case RT_OP_CLIP: act.kind = RT_ACT_CLIP; break;
    case RT_OP_GELU: act.kind = s->p0 != 0 ? RT_ACT_GELU_TANH : RT_ACT_GELU; break;
    default: break;
    }
    if (act.kind != RT_ACT_NONE)
        rt_cpu_act_row(y, y, n, NULL, &act);
}

static void run_block(const ew_job *j, int64_t off, int64_t len)
{
    float buf[BLOCK];
    float *y = j->y + off;
    const float *x = operand(j, 0, off, len, buf);
    if (x != y)
        memcpy(y, x, sizeof(float) * (size_t)len);
    for (int k = 0; k < j->prog->n; k++) {
        const rt_ew_step *s = &j->prog->steps[k];
        const float *o = NULL;
        float c = 0;
        if (s->arg > 0 && j->mode[s->arg] == IN_SCALAR)
            c = j->scalar[s->arg];
        else if (s->arg > 0)
            o = operand(j, s->arg, off, len, buf);
        apply_step(s, y, len, o, c);
    }
}

RT_CPU_KERNEL(rt_cpu_fused_elementwise)
{
    (void)n_out;
    rt_ew_program prog;
    rt_status st = rt_ew_program_get(node, n_in, &prog, err);
    if (st != RT_OK)
        return st;
    if (n_in > MAX_IN)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "FusedElementwise: more than %d inputs",
                            MAX_IN);
    ew_job j = {.prog = &prog, .in = in, .n_in = n_in, .y = out[0]->data, .out = &out[0]->shape};
    int64_t n = rt_tensor_numel(out[0]);
    for (int k = 0; k < n_in; k++) {
        const rt_shape *s = &in[k]->shape;
        int64_t numel = rt_tensor_numel(in[k]);
        j.mode[k] = numel == n ? IN_FULL : numel == 1 && k > 0 ? IN_SCALAR : IN_BROADCAST;
        if (j.mode[k] == IN_SCALAR)
            j.scalar[k] = ((const float *)in[k]->data)[0];
        /* element strides of the input right-aligned to the output, 0 where it broadcasts */
        int64_t stride = 1;
        for (int d = j.out->rank - 1; d >= 0; d--) {
            int sd = d - (j.out->rank - s->rank);
            int64_t dim = sd >= 0 ? s->dims[sd] : 1;
            j.strides[k][d] = dim == 1 ? 0 : stride;
            stride *= dim;
        }
    }
    int64_t blocks = (n + BLOCK - 1) / BLOCK;
    #pragma omp parallel for if(n > PAR_MIN) num_threads(ctx->threads)
    for (int64_t b = 0; b < blocks; b++)
        run_block(&j, b * BLOCK, n - b * BLOCK < BLOCK ? n - b * BLOCK : BLOCK);
    return RT_OK;
}
