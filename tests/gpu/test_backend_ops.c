/* test_backend_ops.c: conformance of the CUDA backend against the CPU backend, in the
 * style of ggml's test-backend-ops (run by make test-gpu, scripts/test_gpu.sh).
 *
 * Part 1, ops: every op the CUDA backend supports, on a few shapes and dtypes, is run
 * through both backends' node_run exactly as the executor calls it (outputs inferred,
 * host-read inputs as host tensors) and compared element by element with a tolerance per
 * dtype. Outputs start as NaN (0xff bytes) so an element a kernel forgets shows, and every
 * device buffer sits between guard bytes that must come back unchanged (out-of-bounds
 * writes). GEMM ops and convolutions (cuDNN computes them in the backend's precision)
 * are repeated in the tf32, fp16 and bf16 precisions against the FP32 CPU with a
 * relative-error bound; conv cases also check which path ran (cuDNN or the direct
 * kernel) through the backend's cuDNN count.
 *
 * Part 2, sessions: a small transformer block, two convolutions, a graph whose Reshape
 * reads a graph input, one that reads an intermediate on the host, and one whose run needs
 * more memory than the device has, through rt_session on cuda against the CPU: repeated
 * runs (discovery, the warm-up, the CUDA Graph recording and its replays), a second batch
 * size, launch counts, and the run-time out-of-memory error after which the session keeps
 * working.
 *
 *   test_backend_ops            run everything; exit 0 when all pass (or no device)
 *   test_backend_ops --probe    exit 0 if a CUDA device is visible, else print why, exit 1
 *   test_backend_ops FILTER     only op cases whose name contains FILTER */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_backend.h"
#include "cuda_device.h"
#include "rt_session.h"

#include "../test_graphs.h"

#define GUARD 256
#define MAX_IN 8
#define MAX_OUT 3
#define MAX_ATTR 8

static int failures, passes;

static void fail(const char *name, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void fail(const char *name, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    failures++;
    printf("FAIL %s: ", name);
    vprintf(fmt, ap);
    printf("\n");
    va_end(ap);
}

/* ---- deterministic inputs ---- */

static uint64_t rng = 0x9e3779b97f4a7c15ull;

static double uniform(void)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (double)(rng >> 11) / 9007199254740992.0;
}

typedef enum {
    GEN_RAND,   /* floats in [-2, 2], integers in [-5, 5] without 0 */
    GEN_POS,    /* floats in [0.1, 2], integers in [1, 5] */
    GEN_INDEX,  /* integers in [-lim, lim) (Gather), lim = the case's index_limit */
    GEN_BOOL,
    GEN_SMALL,  /* floats in [-0.25, 0.25] */
    GEN_MASK,   /* floats: -10000 (an additive attention mask's "masked") for about 30%, else 0 */
    GEN_DATA    /* the given host data */
} gen_kind;

typedef struct tin {
    rt_dtype dt;
    int rank;
    int64_t dims[RT_MAX_RANK];
    gen_kind gen;
    const void *data;  /* GEN_DATA */
    bool absent;       /* an omitted optional input */
} tin;

typedef struct tcase {
    const char *name;
    rt_op op;
    int opset;
    rt_attr attrs[MAX_ATTR];
    int n_attrs;
    tin in[MAX_IN];
    int n_in, n_out;
    int64_t index_limit;
} tcase;

static rt_tensor *make_input(const tin *t, int64_t index_limit)
{
    rt_shape s = rt_shape_make(t->rank, t->dims);
    rt_tensor *x = rt_tensor_create(t->dt, &s, NULL);
    int64_t n = rt_tensor_numel(x);
    if (t->gen == GEN_DATA) {
        memcpy(x->data, t->data, rt_tensor_nbytes(x));
        return x;
    }
    for (int64_t i = 0; i < n; i++) {
        double u = uniform();
        double v;
        if (t->gen == GEN_BOOL)
            v = u < 0.5;
        else if (t->gen == GEN_INDEX)
            v = floor(u * 2 * (double)index_limit) - (double)index_limit;
        else if (t->gen == GEN_MASK)
            v = u < 0.3 ? -10000 : 0;
        else if (rt_dtype_is_float(t->dt))
            v = t->gen == GEN_POS ? 0.1 + 1.9 * u : t->gen == GEN_SMALL ? 0.5 * u - 0.25 : 4 * u - 2;
        else if (t->gen == GEN_POS)
            v = 1 + floor(u * 5);
        else
            v = (u < 0.5 ? -1 : 1) * (1 + floor(u * 10) / 2);
        rt_dtype_store_f64(t->dt, x->data, (size_t)i, v);
    }
    return x;
}

/* ---- device buffers between guards ---- */

typedef struct dbuf {
    char *base;   /* GUARD bytes, the body, GUARD bytes */
    size_t bytes;
} dbuf;

static unsigned char guard_pattern[GUARD];

static bool dbuf_create(rt_backend *be, dbuf *d, const void *body, size_t bytes, int fill)
{
    rt_error err;
    d->bytes = bytes;
    d->base = rt_backend_buffer_alloc(be, bytes + 2 * GUARD);
    if (!d->base)
        return false;
    unsigned char *host = malloc(bytes + 2 * GUARD);
    memcpy(host, guard_pattern, GUARD);
    if (body)
        memcpy(host + GUARD, body, bytes);
    else
        memset(host + GUARD, fill, bytes);
    memcpy(host + GUARD + bytes, guard_pattern, GUARD);
    bool ok = be->vt->upload(be, d->base, host, bytes + 2 * GUARD, &err) == RT_OK &&
              rt_backend_synchronize(be, &err) == RT_OK;
    free(host);
    return ok;
}

/* Downloads the body into dst; false if a guard byte changed. */
static bool dbuf_fetch(rt_backend *be, const dbuf *d, void *dst)
{
    rt_error err;
    unsigned char *host = malloc(d->bytes + 2 * GUARD);
    bool ok = be->vt->download(be, host, d->base, d->bytes + 2 * GUARD, &err) == RT_OK;
    ok = ok && memcmp(host, guard_pattern, GUARD) == 0 &&
         memcmp(host + GUARD + d->bytes, guard_pattern, GUARD) == 0;
    memcpy(dst, host + GUARD, d->bytes);
    free(host);
    return ok;
}

/* ---- comparison ---- */

typedef struct tol {
    double atol, rtol;  /* elementwise; 0 and 0: exact */
    double rel_norm;    /* > 0: bound on ||a - b|| / ||b|| instead (reduced precisions) */
} tol;

static tol tol_for(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F32: return (tol){1e-5, 1e-4, 0};
    case RT_DTYPE_F64: return (tol){1e-10, 1e-9, 0};
    case RT_DTYPE_F16: return (tol){1e-3, 1e-2, 0};
    case RT_DTYPE_BF16: return (tol){1e-2, 2e-2, 0};
    default: return (tol){0, 0, 0};
    }
}

/* Compares got with want (the CPU's); NaN must sit where the CPU has NaN. */
static bool compare(const char *name, const rt_tensor *want, const rt_tensor *got, tol t)
{
    int64_t n = rt_tensor_numel(want);
    bool flt = rt_dtype_is_float(want->dtype);
    double num = 0, den = 0;
    for (int64_t i = 0; i < n; i++) {
        if (!flt) {
            int64_t a = rt_dtype_load_i64(want->dtype, want->data, (size_t)i);
            int64_t b = rt_dtype_load_i64(got->dtype, got->data, (size_t)i);
            if (a != b) {
                fail(name, "element %lld is %lld, the CPU has %lld", (long long)i, (long long)b, (long long)a);
                return false;
            }
            continue;
        }
        double a = rt_dtype_load_f64(want->dtype, want->data, (size_t)i);
        double b = rt_dtype_load_f64(got->dtype, got->data, (size_t)i);
        if (isnan(a) || isnan(b) || isinf(a) || isinf(b)) {
            if ((isnan(a) && isnan(b)) || a == b)
                continue;
            fail(name, "NaN/Inf sentinel: element %lld is %g, the CPU has %g", (long long)i, b, a);
            return false;
        }
        if (t.rel_norm > 0) {
            num += (a - b) * (a - b);
            den += a * a;
        } else if (fabs(a - b) > t.atol + t.rtol * fabs(a)) {
            fail(name, "element %lld is %g, the CPU has %g", (long long)i, b, a);
            return false;
        }
    }
    if (t.rel_norm > 0 && den > 0 && sqrt(num / den) > t.rel_norm) {
        fail(name, "relative error %g > %g", sqrt(num / den), t.rel_norm);
        return false;
    }
    return true;
}

/* ---- part 1: single ops ---- */

/* Conv and FusedConv cases run on cuDNN whenever the backend has it, but those named
 * "falls back", which must run the direct kernel. */
static bool conv_takes_dnn(const tcase *c)
{
    return (c->op == RT_OP_CONV || c->op == RT_OP_FUSED_CONV) && !strstr(c->name, "falls back");
}

/* Whether conv case c took its path, given the backend's cuDNN count before it ran. */
static bool conv_path(const tcase *c, rt_backend *gpu, const char *name, uint64_t before)
{
    bool active;
    uint64_t after;
    cuda_backend_dnn_stats(gpu, &active, &after);
    bool conv = c->op == RT_OP_CONV || c->op == RT_OP_FUSED_CONV;
    if (conv && !conv_takes_dnn(c) && after != before) {
        fail(name, "ran on cuDNN, but must fall back to the direct kernel");
        return false;
    }
    if (conv_takes_dnn(c) && active && after == before) {
        fail(name, "ran the direct kernel, though the backend has cuDNN");
        return false;
    }
    return true;
}

/* Runs c on both backends; prec is the CUDA backend's (checked by relative norm unless
 * fp32). */
static void run_case(const tcase *c, rt_backend *cpu, rt_backend *gpu, rt_precision prec)
{
    char name[160];
    snprintf(name, sizeof name, "%s [%s]", c->name, rt_precision_name(prec));
    int inputs[MAX_IN], outputs[MAX_OUT];
    for (int i = 0; i < c->n_in; i++)
        inputs[i] = c->in[i].absent ? -1 : i;
    for (int i = 0; i < c->n_out; i++)
        outputs[i] = MAX_IN + i;
    rt_node node = {.name = (char *)c->name, .op = c->op, .opset = c->opset ? c->opset : 17,
                    .n_inputs = c->n_in, .inputs = inputs, .n_outputs = c->n_out,
                    .outputs = outputs, .n_attrs = c->n_attrs, .attrs = (rt_attr *)c->attrs};
    if (!gpu->vt->supports_op(gpu, &node)) {
        fail(name, "cuda does not support the op");
        return;
    }
    rt_tensor *host[MAX_IN] = {0}, dev[MAX_IN];
    const rt_tensor *hin[MAX_IN], *din[MAX_IN];
    dbuf dbufs[MAX_IN + MAX_OUT];
    int n_dbufs = 0;
    unsigned mask = gpu->vt->host_inputs(gpu, &node);
    bool ok = true;
    for (int i = 0; i < c->n_in; i++) {
        hin[i] = din[i] = NULL;
        if (c->in[i].absent)
            continue;
        host[i] = make_input(&c->in[i], c->index_limit);
        hin[i] = host[i];
        if (mask >> i & 1u) {
            din[i] = host[i];
            continue;
        }
        dev[i] = *host[i];
        dev[i].owns_data = false;
        dev[i].string_pool = NULL;
        ok = ok && dbuf_create(gpu, &dbufs[n_dbufs], host[i]->data, rt_tensor_nbytes(host[i]), 0);
        dev[i].data = dbufs[n_dbufs++].base + GUARD;
        din[i] = &dev[i];
    }
    rt_tensor meta[MAX_OUT];
    memset(meta, 0, sizeof meta);
    rt_error err = {0};
    if (ok && rt_op_infer(&node, hin, c->n_in, meta, c->n_out, &err) != RT_OK) {
        fail(name, "inference failed: %s", err.text);
        ok = false;
    }
    rt_tensor *want[MAX_OUT] = {0}, *got[MAX_OUT] = {0}, dout[MAX_OUT];
    rt_tensor *wp[MAX_OUT], *dp[MAX_OUT];
    int out_buf0 = n_dbufs;
    for (int k = 0; ok && k < c->n_out; k++) {
        want[k] = rt_tensor_create(meta[k].dtype, &meta[k].shape, NULL);
        got[k] = rt_tensor_create(meta[k].dtype, &meta[k].shape, NULL);
        memset(want[k]->data, 0xff, rt_tensor_nbytes(want[k]));
        dout[k] = *got[k];
        dout[k].owns_data = false;
        ok = dbuf_create(gpu, &dbufs[n_dbufs], NULL, rt_tensor_nbytes(got[k]), 0xff);
        dout[k].data = dbufs[n_dbufs++].base + GUARD;
        wp[k] = want[k];
        dp[k] = &dout[k];
    }
    rt_kernel_ctx ctx = {.threads = 1};
    bool dnn_active;
    uint64_t dnn_convs;
    cuda_backend_dnn_stats(gpu, &dnn_active, &dnn_convs);
    if (ok && cpu->vt->node_run(cpu, &ctx, &node, hin, c->n_in, wp, c->n_out, &err) != RT_OK) {
        printf("skip %s: the CPU rejects it (%s)\n", name, err.text);
        ok = false;
    } else if (ok &&
               (gpu->vt->node_run(gpu, &ctx, &node, din, c->n_in, dp, c->n_out, &err) != RT_OK ||
                rt_backend_synchronize(gpu, &err) != RT_OK)) {
        fail(name, "cuda failed: %s", err.text);
        ok = false;
    }
    ok = ok && conv_path(c, gpu, name, dnn_convs);
    for (int k = 0; ok && k < c->n_out; k++) {
        if (!dbuf_fetch(gpu, &dbufs[out_buf0 + k], got[k]->data)) {
            fail(name, "a guard byte around output %d changed", k);
            ok = false;
        }
    }
    for (int b = 0; ok && b < out_buf0; b++) {
        unsigned char *tmp = malloc(dbufs[b].bytes ? dbufs[b].bytes : 1);
        if (!dbuf_fetch(gpu, &dbufs[b], tmp)) {
            fail(name, "a guard byte around an input changed");
            ok = false;
        }
        free(tmp);
    }
    for (int k = 0; ok && k < c->n_out; k++) {
        tol t = tol_for(meta[k].dtype);
        /* cuDNN sums in another order, or by Winograd or FFT: a relative bound in fp32 too */
        if (conv_takes_dnn(c))
            t = (tol){0, 0, meta[k].dtype == RT_DTYPE_F32 ? 1e-4 : 1e-2};
        if (prec == RT_PRECISION_TF32)
            t = (tol){0, 0, 5e-3};
        else if (prec == RT_PRECISION_FP16)
            t = (tol){0, 0, 1e-2};
        else if (prec == RT_PRECISION_BF16)
            t = (tol){0, 0, 3e-2};
        ok = compare(name, want[k], got[k], t);
    }
    if (ok)
        passes++;
    rt_kernel_ctx_release(&ctx);
    for (int b = 0; b < n_dbufs; b++)
        rt_backend_buffer_free(gpu, dbufs[b].base);
    for (int i = 0; i < c->n_in; i++)
        rt_tensor_free(host[i]);
    for (int k = 0; k < c->n_out; k++) {
        rt_tensor_free(want[k]);
        rt_tensor_free(got[k]);
    }
}

/* attribute shorthands; arrays live in static storage */
#define AI(nm, v) {.name = (char *)(nm), .type = RT_ATTR_INT, .i = (v)}
#define AF(nm, v) {.name = (char *)(nm), .type = RT_ATTR_FLOAT, .f = (v)}
#define AS(nm, v) {.name = (char *)(nm), .type = RT_ATTR_STRING, .s = (char *)(v), .s_len = sizeof(v) - 1}
#define AIS(nm, ...) {.name = (char *)(nm), .type = RT_ATTR_INTS, .ints = (int64_t[]){__VA_ARGS__}, \
                     .n = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)}
#define AFS(nm, ...) {.name = (char *)(nm), .type = RT_ATTR_FLOATS, .floats = (float[]){__VA_ARGS__}, \
                     .n = sizeof((float[]){__VA_ARGS__}) / sizeof(float)}
#define ASS(nm, ...) {.name = (char *)(nm), .type = RT_ATTR_STRINGS, .strings = (char *[]){__VA_ARGS__}, \
                     .n = sizeof((char *[]){__VA_ARGS__}) / sizeof(char *)}
#define T(dt_, ...) {.dt = RT_DTYPE_##dt_, .rank = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), \
                     .dims = {__VA_ARGS__}}
#define TG(dt_, g, ...) {.dt = RT_DTYPE_##dt_, .gen = g, \
                         .rank = sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t), .dims = {__VA_ARGS__}}
#define SCALAR(dt_) {.dt = RT_DTYPE_##dt_, .rank = 0}
#define I64S(...) {.dt = RT_DTYPE_I64, .gen = GEN_DATA, .rank = 1, \
                   .dims = {sizeof((int64_t[]){__VA_ARGS__}) / sizeof(int64_t)}, \
                   .data = (int64_t[]){__VA_ARGS__}}
#define F32V(v) {.dt = RT_DTYPE_F32, .gen = GEN_DATA, .rank = 0, .data = (float[]){v}}
#define ABSENT {.absent = true}

static tcase cases[] = {
    /* elementwise binary, broadcasting, dtypes */
    {"Add f32 same", RT_OP_ADD, 13, {{0}}, 0, {T(F32, 4, 5), T(F32, 4, 5)}, 2, 1, 0},
    {"Add f32 row bcast", RT_OP_ADD, 13, {{0}}, 0, {T(F32, 2, 3, 40), T(F32, 40)}, 2, 1, 0},
    {"Add f32 both bcast", RT_OP_ADD, 13, {{0}}, 0, {T(F32, 2, 1, 4), T(F32, 3, 1)}, 2, 1, 0},
    {"Add f16", RT_OP_ADD, 13, {{0}}, 0, {T(F16, 3, 7), T(F16, 7)}, 2, 1, 0},
    {"Add bf16", RT_OP_ADD, 13, {{0}}, 0, {T(BF16, 3, 7), T(BF16, 3, 7)}, 2, 1, 0},
    {"Add i64", RT_OP_ADD, 13, {{0}}, 0, {T(I64, 3, 4), T(I64, 1, 4)}, 2, 1, 0},
    {"Sub i32", RT_OP_SUB, 13, {{0}}, 0, {T(I32, 6), SCALAR(I32)}, 2, 1, 0},
    {"Mul f64", RT_OP_MUL, 13, {{0}}, 0, {T(F64, 2, 5), T(F64, 2, 5)}, 2, 1, 0},
    {"Div f32", RT_OP_DIV, 13, {{0}}, 0, {T(F32, 3, 5), TG(F32, GEN_POS, 5)}, 2, 1, 0},
    {"Div i32", RT_OP_DIV, 13, {{0}}, 0, {T(I32, 4, 4), T(I32, 4, 4)}, 2, 1, 0},
    {"Pow f32", RT_OP_POW, 13, {{0}}, 0, {TG(F32, GEN_POS, 3, 4), T(F32, 4)}, 2, 1, 0},
    {"Pow f32 square", RT_OP_POW, 13, {{0}}, 0, {T(F32, 3, 4), F32V(2.0f)}, 2, 1, 0},
    {"Pow i64 by i32", RT_OP_POW, 15, {{0}}, 0, {T(I64, 5), TG(I32, GEN_POS, 5)}, 2, 1, 0},
    {"Equal i64", RT_OP_EQUAL, 13, {{0}}, 0, {T(I64, 4, 3), T(I64, 3)}, 2, 1, 0},
    {"Less f32", RT_OP_LESS, 13, {{0}}, 0, {T(F32, 4, 3), T(F32, 4, 1)}, 2, 1, 0},
    {"Greater f16", RT_OP_GREATER, 13, {{0}}, 0, {T(F16, 4, 3), T(F16, 3)}, 2, 1, 0},
    {"Max f32 3 inputs", RT_OP_MAX, 13, {{0}}, 0, {T(F32, 2, 3), T(F32, 3), T(F32, 2, 1)}, 3, 1, 0},
    {"Min i32", RT_OP_MIN, 13, {{0}}, 0, {T(I32, 5), T(I32, 5)}, 2, 1, 0},
    {"Where f32", RT_OP_WHERE, 16, {{0}}, 0, {TG(BOOL, GEN_BOOL, 3, 4), T(F32, 4), T(F32, 3, 1)}, 3, 1, 0},
    {"Where i64", RT_OP_WHERE, 16, {{0}}, 0, {TG(BOOL, GEN_BOOL, 6), T(I64, 6), T(I64, 6)}, 3, 1, 0},
    /* unary */
    {"Sqrt", RT_OP_SQRT, 13, {{0}}, 0, {TG(F32, GEN_POS, 7, 9)}, 1, 1, 0},
    {"Exp", RT_OP_EXP, 13, {{0}}, 0, {T(F32, 7, 9)}, 1, 1, 0},
    {"Log f16", RT_OP_LOG, 13, {{0}}, 0, {TG(F16, GEN_POS, 33)}, 1, 1, 0},
    {"Neg i32", RT_OP_NEG, 13, {{0}}, 0, {T(I32, 10)}, 1, 1, 0},
    {"Abs f32", RT_OP_ABS, 13, {{0}}, 0, {T(F32, 10)}, 1, 1, 0},
    {"Reciprocal", RT_OP_RECIPROCAL, 13, {{0}}, 0, {TG(F32, GEN_POS, 10)}, 1, 1, 0},
    {"Relu i64", RT_OP_RELU, 14, {{0}}, 0, {T(I64, 10)}, 1, 1, 0},
    {"LeakyRelu", RT_OP_LEAKY_RELU, 16, {AF("alpha", 0.2f)}, 1, {T(F32, 3, 11)}, 1, 1, 0},
    {"Sigmoid bf16", RT_OP_SIGMOID, 13, {{0}}, 0, {T(BF16, 64)}, 1, 1, 0},
    {"Tanh", RT_OP_TANH, 13, {{0}}, 0, {T(F32, 3, 11)}, 1, 1, 0},
    {"Erf", RT_OP_ERF, 13, {{0}}, 0, {T(F32, 3, 11)}, 1, 1, 0},
    {"Not", RT_OP_NOT, 1, {{0}}, 0, {TG(BOOL, GEN_BOOL, 17)}, 1, 1, 0},
    {"Clip inputs", RT_OP_CLIP, 13, {{0}}, 0, {T(F32, 4, 6), F32V(-0.5f), F32V(0.75f)}, 3, 1, 0},
    {"Clip attrs", RT_OP_CLIP, 6, {AF("min", -1.0f), AF("max", 0.5f)}, 2, {T(F32, 4, 6)}, 1, 1, 0},
    {"Clip i32 min only", RT_OP_CLIP, 13, {{0}}, 0,
     {T(I32, 9), {.dt = RT_DTYPE_I32, .gen = GEN_DATA, .rank = 0, .data = (int32_t[]){-2}}}, 2, 1, 0},
    {"Gelu", RT_OP_GELU, 17, {{0}}, 0, {T(F32, 5, 8)}, 1, 1, 0},
    {"Gelu tanh", RT_OP_GELU, 17, {AS("approximate", "tanh")}, 1, {T(F32, 5, 8)}, 1, 1, 0},
    /* Cast */
    {"Cast f32 f16", RT_OP_CAST, 13, {AI("to", RT_DTYPE_F16)}, 1, {T(F32, 30)}, 1, 1, 0},
    {"Cast f16 f32", RT_OP_CAST, 13, {AI("to", RT_DTYPE_F32)}, 1, {T(F16, 30)}, 1, 1, 0},
    {"Cast f32 i32", RT_OP_CAST, 13, {AI("to", RT_DTYPE_I32)}, 1, {T(F32, 30)}, 1, 1, 0},
    {"Cast i64 f32", RT_OP_CAST, 13, {AI("to", RT_DTYPE_F32)}, 1, {T(I64, 30)}, 1, 1, 0},
    {"Cast f32 bf16 truncate", RT_OP_CAST, 13, {AI("to", RT_DTYPE_BF16)}, 1, {T(F32, 30)}, 1, 1, 0},
    {"Cast f32 bf16 round", RT_OP_CAST, 19, {AI("to", RT_DTYPE_BF16)}, 1, {T(F32, 30)}, 1, 1, 0},
    {"Cast bool f32", RT_OP_CAST, 13, {AI("to", RT_DTYPE_F32)}, 1, {TG(BOOL, GEN_BOOL, 9)}, 1, 1, 0},
    /* copies and reshaping */
    {"Identity i64", RT_OP_IDENTITY, 13, {{0}}, 0, {T(I64, 3, 3)}, 1, 1, 0},
    {"Dropout with mask", RT_OP_DROPOUT, 13, {{0}}, 0, {T(F32, 4, 4)}, 1, 2, 0},
    {"Reshape", RT_OP_RESHAPE, 14, {{0}}, 0, {T(F32, 2, 3, 4), I64S(4, -1)}, 2, 1, 0},
    {"Flatten", RT_OP_FLATTEN, 13, {AI("axis", 2)}, 1, {T(F32, 2, 3, 4)}, 1, 1, 0},
    {"Squeeze", RT_OP_SQUEEZE, 13, {{0}}, 0, {T(F32, 2, 1, 4), I64S(1)}, 2, 1, 0},
    {"Unsqueeze", RT_OP_UNSQUEEZE, 13, {{0}}, 0, {T(F32, 2, 4), I64S(0, 3)}, 2, 1, 0},
    /* matrix products */
    {"MatMul 2d", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 7, 12), T(F32, 12, 9)}, 2, 1, 0},
    {"MatMul batched", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 3, 5, 8), T(F32, 3, 8, 6)}, 2, 1, 0},
    {"MatMul shared B", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 2, 3, 5, 8), T(F32, 8, 6)}, 2, 1, 0},
    {"MatMul shared A", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 5, 8), T(F32, 4, 8, 6)}, 2, 1, 0},
    {"MatMul mixed bcast", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 2, 1, 3, 4), T(F32, 1, 3, 4, 5)}, 2, 1, 0},
    {"MatMul 1d", RT_OP_MATMUL, 13, {{0}}, 0, {T(F32, 8), T(F32, 8, 3)}, 2, 1, 0},
    {"MatMul f16", RT_OP_MATMUL, 13, {{0}}, 0, {T(F16, 16, 32), T(F16, 32, 8)}, 2, 1, 0},
    {"Gemm transA transB bias row", RT_OP_GEMM, 13,
     {AI("transA", 1), AI("transB", 1), AF("alpha", 0.5f), AF("beta", 2.0f)}, 4,
     {T(F32, 6, 4), T(F32, 5, 6), T(F32, 5)}, 3, 1, 0},
    {"Gemm bias column", RT_OP_GEMM, 13, {{0}}, 0, {T(F32, 4, 6), T(F32, 6, 5), T(F32, 4, 1)}, 3, 1, 0},
    {"Gemm no C", RT_OP_GEMM, 13, {{0}}, 0, {T(F32, 4, 6), T(F32, 6, 5)}, 2, 1, 0},
    {"Linear bias", RT_OP_LINEAR, 17, {{0}}, 0, {T(F32, 2, 5, 24), T(F32, 24, 40), T(F32, 40)}, 3, 1, 0},
    {"Linear relu trans_b", RT_OP_LINEAR, 17, {AS("activation", "Relu"), AI("trans_b", 1)}, 2,
     {T(F32, 6, 24), T(F32, 40, 24), T(F32, 40)}, 3, 1, 0},
    {"Linear gelu", RT_OP_LINEAR, 17, {AS("activation", "infd.Gelu")}, 1,
     {T(F32, 6, 24), T(F32, 24, 40), T(F32, 40)}, 3, 1, 0},
    {"Linear gelu tanh no bias", RT_OP_LINEAR, 17, {AS("activation", "infd.GeluTanh")}, 1,
     {T(F32, 6, 24), T(F32, 24, 40)}, 2, 1, 0},
    {"Linear sigmoid", RT_OP_LINEAR, 17, {AS("activation", "Sigmoid")}, 1,
     {T(F32, 6, 24), T(F32, 24, 40), T(F32, 40)}, 3, 1, 0},
    {"Linear f16 weight", RT_OP_LINEAR, 17, {{0}}, 0, {T(F32, 6, 24), T(F16, 24, 40), T(F32, 40)}, 3, 1, 0},
    /* infd.QLinear (X, W I8 (n, k), per-channel scales, bias): never run on a GPU yet */
    {"QLinear weight_only bias", RT_OP_QLINEAR, 17, {AS("mode", "weight_only")}, 1,
     {T(F32, 2, 5, 24), T(I8, 40, 24), TG(F32, GEN_POS, 40), T(F32, 40)}, 4, 1, 0},
    {"QLinear weight_only gelu no bias", RT_OP_QLINEAR, 17,
     {AS("mode", "weight_only"), AS("activation", "infd.Gelu")}, 2,
     {T(F32, 6, 24), T(I8, 40, 24), TG(F32, GEN_POS, 40)}, 3, 1, 0},
    {"QLinear dynamic relu", RT_OP_QLINEAR, 17, {AS("mode", "dynamic"), AS("activation", "Relu")}, 2,
     {T(F32, 3, 4, 32), T(I8, 40, 32), TG(F32, GEN_POS, 40), T(F32, 40)}, 4, 1, 0},
    {"QLinear dynamic odd k and n sigmoid", RT_OP_QLINEAR, 17,
     {AS("mode", "dynamic"), AS("activation", "Sigmoid")}, 2,
     {T(F32, 5, 21), T(I8, 7, 21), TG(F32, GEN_POS, 7), T(F32, 7)}, 4, 1, 0},
    {"Attention", RT_OP_ATTENTION, 17, {AI("num_heads", 4)}, 1,
     {T(F32, 2, 7, 16), T(F32, 16, 48), T(F32, 48)}, 3, 1, 0},
    {"Attention mask per key", RT_OP_ATTENTION, 17, {AI("num_heads", 2), AF("scale", 0.3f)}, 2,
     {T(F32, 2, 5, 8), T(F32, 8, 24), T(F32, 24), T(F32, 2, 1, 1, 5)}, 4, 1, 0},
    {"Attention mask per query", RT_OP_ATTENTION, 17, {AI("num_heads", 2)}, 1,
     {T(F32, 2, 5, 8), T(F32, 8, 24), ABSENT, T(F32, 1, 1, 5, 5)}, 4, 1, 0},
    {"Attention grouped query", RT_OP_ATTENTION, 17, {AI("num_heads", 4), AI("num_kv_heads", 2)}, 2,
     {T(F32, 2, 6, 16), T(F32, 16, 32), T(F32, 32)}, 3, 1, 0},
    /* head sizes that are multiples of 16 take the flash kernel in fp16 and bf16 (64 query
     * rows per block; 64 keys per tile up to d = 64, 32 above): seq 1, seq inside a tile,
     * on a tile edge and across two. W and B in [-0.25, 0.25] keep the logits of order 1 as
     * in trained models: with [-2, 2] weights d = 64 gives logits of order 50, a one-hot
     * softmax whose near-tied maxima half-precision rounding swaps (3e-2 relative error in
     * bf16 measured in a NumPy model of the chain, against 4e-3 with these weights). */
    {"Attention flash d64 seq 64", RT_OP_ATTENTION, 17, {AI("num_heads", 2)}, 1,
     {T(F32, 2, 64, 32), TG(F32, GEN_SMALL, 32, 384), TG(F32, GEN_SMALL, 384)}, 3, 1, 0},
    {"Attention flash d64 seq 1", RT_OP_ATTENTION, 17, {AI("num_heads", 4)}, 1,
     {T(F32, 2, 1, 32), TG(F32, GEN_SMALL, 32, 768), TG(F32, GEN_SMALL, 768)}, 3, 1, 0},
    {"Attention flash d32 seq 17", RT_OP_ATTENTION, 17, {AI("num_heads", 3)}, 1,
     {T(F32, 2, 17, 32), TG(F32, GEN_SMALL, 32, 288), TG(F32, GEN_SMALL, 288)}, 3, 1, 0},
    {"Attention flash d32 seq 130 mask per query", RT_OP_ATTENTION, 17, {AI("num_heads", 2)}, 1,
     {T(F32, 2, 130, 32), TG(F32, GEN_SMALL, 32, 192), ABSENT, TG(F32, GEN_MASK, 1, 1, 130, 130)},
     4, 1, 0},
    {"Attention flash d64 seq 17 mask per key", RT_OP_ATTENTION, 17,
     {AI("num_heads", 2), AF("scale", 0.1f)}, 2,
     {T(F32, 2, 17, 32), TG(F32, GEN_SMALL, 32, 384), TG(F32, GEN_SMALL, 384),
      TG(F32, GEN_MASK, 2, 1, 1, 17)}, 4, 1, 0},
    {"Attention flash d64 seq 130 grouped query", RT_OP_ATTENTION, 17,
     {AI("num_heads", 4), AI("num_kv_heads", 2)}, 2,
     {T(F32, 2, 130, 32), TG(F32, GEN_SMALL, 32, 512), TG(F32, GEN_SMALL, 512)}, 3, 1, 0},
    {"Attention flash d128 seq 70 grouped query mask per key", RT_OP_ATTENTION, 17,
     {AI("num_heads", 2), AI("num_kv_heads", 1)}, 2,
     {T(F32, 2, 70, 32), TG(F32, GEN_SMALL, 32, 512), TG(F32, GEN_SMALL, 512),
      TG(F32, GEN_MASK, 2, 1, 1, 70)}, 4, 1, 0},
    /* d = 24 is no multiple of 16: the GEMM path in every precision */
    {"Attention d24 falls back", RT_OP_ATTENTION, 17, {AI("num_heads", 2)}, 1,
     {T(F32, 2, 17, 32), TG(F32, GEN_SMALL, 32, 144), TG(F32, GEN_SMALL, 144),
      TG(F32, GEN_MASK, 1, 1, 17, 17)}, 4, 1, 0},
    /* convolution (on cuDNN when the backend has it, but "falls back" cases: conv_path)
     * and pooling */
    {"Conv 2d pads", RT_OP_CONV, 11, {AIS("pads", 1, 1, 1, 1)}, 1,
     {T(F32, 2, 3, 8, 8), T(F32, 4, 3, 3, 3), T(F32, 4)}, 3, 1, 0},
    {"Conv strides dilations", RT_OP_CONV, 11, {AIS("strides", 2, 2), AIS("dilations", 2, 1)}, 2,
     {T(F32, 1, 2, 9, 9), T(F32, 3, 2, 3, 3)}, 2, 1, 0},
    {"Conv depthwise", RT_OP_CONV, 11, {AI("group", 4), AS("auto_pad", "SAME_UPPER")}, 2,
     {T(F32, 1, 4, 6, 6), T(F32, 4, 1, 3, 3)}, 2, 1, 0},
    {"Conv 1d", RT_OP_CONV, 11, {{0}}, 0, {T(F32, 2, 3, 10), T(F32, 5, 3, 3), T(F32, 5)}, 3, 1, 0},
    {"FusedConv relu", RT_OP_FUSED_CONV, 11, {AS("activation", "Relu")}, 1,
     {T(F32, 1, 3, 6, 6), T(F32, 2, 3, 3, 3), T(F32, 2)}, 3, 1, 0},
    {"Conv groups 2", RT_OP_CONV, 11, {AI("group", 2), AIS("pads", 1, 1, 1, 1)}, 2,
     {T(F32, 2, 8, 7, 7), T(F32, 6, 4, 3, 3), T(F32, 6)}, 3, 1, 0},
    {"Conv 1x1", RT_OP_CONV, 11, {{0}}, 0,
     {T(F32, 2, 16, 5, 5), T(F32, 8, 16, 1, 1), T(F32, 8)}, 3, 1, 0},
    {"Conv stride 2 pads odd", RT_OP_CONV, 11, {AIS("strides", 2, 2), AIS("pads", 1, 1, 1, 1)}, 2,
     {T(F32, 1, 4, 11, 11), T(F32, 6, 4, 3, 3), T(F32, 6)}, 3, 1, 0},
    {"Conv dilation 2 pads 2", RT_OP_CONV, 11, {AIS("dilations", 2, 2), AIS("pads", 2, 2, 2, 2)}, 2,
     {T(F32, 1, 3, 12, 12), T(F32, 4, 3, 3, 3), T(F32, 4)}, 3, 1, 0},
    {"Conv 1d stride pads", RT_OP_CONV, 11, {AIS("strides", 2), AIS("pads", 2, 2)}, 2,
     {T(F32, 2, 4, 20), T(F32, 6, 4, 5), T(F32, 6)}, 3, 1, 0},
    {"Conv 32 to 64 channels", RT_OP_CONV, 11, {AIS("pads", 1, 1, 1, 1)}, 1,
     {T(F32, 2, 32, 16, 16), T(F32, 64, 32, 3, 3), T(F32, 64)}, 3, 1, 0},
    {"FusedConv relu 32 to 64 channels", RT_OP_FUSED_CONV, 11,
     {AS("activation", "Relu"), AIS("pads", 1, 1, 1, 1)}, 2,
     {T(F32, 1, 32, 16, 16), T(F32, 64, 32, 3, 3), T(F32, 64)}, 3, 1, 0},
    {"FusedConv relu no bias", RT_OP_FUSED_CONV, 11, {AS("activation", "Relu")}, 1,
     {T(F32, 1, 3, 6, 6), T(F32, 2, 3, 3, 3)}, 2, 1, 0},
    {"FusedConv sigmoid", RT_OP_FUSED_CONV, 11,
     {AS("activation", "Sigmoid"), AIS("pads", 1, 1, 1, 1)}, 2,
     {T(F32, 2, 4, 6, 6), T(F32, 8, 4, 3, 3), T(F32, 8)}, 3, 1, 0},
    {"FusedConv clip 0 6", RT_OP_FUSED_CONV, 11,
     {AS("activation", "Clip"), AF("activation_min", 0.0f), AF("activation_max", 6.0f)}, 3,
     {T(F32, 1, 8, 5, 5), T(F32, 8, 8, 3, 3), T(F32, 8)}, 3, 1, 0},
    {"FusedConv leaky relu f16 weight", RT_OP_FUSED_CONV, 11,
     {AS("activation", "LeakyRelu"), AF("activation_alpha", 0.2f)}, 2,
     {T(F32, 1, 8, 6, 6), T(F16, 8, 8, 3, 3), T(F32, 8)}, 3, 1, 0},
    {"Conv f16", RT_OP_CONV, 11, {AIS("pads", 1, 1, 1, 1)}, 1,
     {T(F16, 1, 8, 6, 6), T(F16, 8, 8, 3, 3), T(F16, 8)}, 3, 1, 0},
    /* cuDNN takes the same pad on both sides and at most 2 spatial dims */
    {"Conv asymmetric pads falls back", RT_OP_CONV, 11, {AIS("pads", 0, 1, 1, 0)}, 1,
     {T(F32, 1, 3, 6, 6), T(F32, 4, 3, 3, 3), T(F32, 4)}, 3, 1, 0},
    {"Conv same upper even kernel falls back", RT_OP_CONV, 11, {AS("auto_pad", "SAME_UPPER")}, 1,
     {T(F32, 1, 3, 6, 6), T(F32, 4, 3, 2, 2)}, 2, 1, 0},
    {"Conv 3d falls back", RT_OP_CONV, 11, {AIS("pads", 1, 1, 1, 1, 1, 1)}, 1,
     {T(F32, 1, 2, 4, 5, 5), T(F32, 3, 2, 3, 3, 3), T(F32, 3)}, 3, 1, 0},
    {"MaxPool indices", RT_OP_MAX_POOL, 12, {AIS("kernel_shape", 3, 3), AIS("strides", 2, 2),
                                             AIS("pads", 1, 1, 1, 1)}, 3,
     {T(F32, 2, 3, 9, 9)}, 1, 2, 0},
    {"AveragePool include pad", RT_OP_AVERAGE_POOL, 11,
     {AIS("kernel_shape", 3, 3), AIS("pads", 1, 1, 1, 1), AI("count_include_pad", 1)}, 3,
     {T(F32, 1, 2, 5, 5)}, 1, 1, 0},
    {"AveragePool ceil", RT_OP_AVERAGE_POOL, 11,
     {AIS("kernel_shape", 2, 2), AIS("strides", 2, 2), AI("ceil_mode", 1)}, 3,
     {T(F32, 1, 2, 5, 5)}, 1, 1, 0},
    {"GlobalAveragePool", RT_OP_GLOBAL_AVERAGE_POOL, 1, {{0}}, 0, {T(F32, 2, 3, 5, 7)}, 1, 1, 0},
    /* normalizations */
    {"BatchNormalization", RT_OP_BATCH_NORMALIZATION, 15, {AF("epsilon", 1e-3f)}, 1,
     {T(F32, 2, 3, 4, 4), T(F32, 3), T(F32, 3), T(F32, 3), TG(F32, GEN_POS, 3)}, 5, 1, 0},
    {"LayerNormalization", RT_OP_LAYER_NORMALIZATION, 17, {{0}}, 0,
     {T(F32, 4, 5, 96), T(F32, 96), T(F32, 96)}, 3, 1, 0},
    {"LayerNormalization axis 1 stats", RT_OP_LAYER_NORMALIZATION, 17, {AI("axis", 1)}, 1,
     {T(F32, 3, 4, 5), T(F32, 4, 5), T(F32, 5)}, 3, 3, 0},
    {"LayerNormalization f16", RT_OP_LAYER_NORMALIZATION, 17, {{0}}, 0,
     {T(F16, 6, 64), T(F16, 64), T(F16, 64)}, 3, 1, 0},
    {"SkipLayerNorm", RT_OP_SKIP_LAYER_NORM, 17, {AF("epsilon", 1e-6f)}, 1,
     {T(F32, 2, 3, 48), T(F32, 2, 3, 48), T(F32, 48), T(F32, 48)}, 4, 1, 0},
    {"SkipLayerNorm repeated skip", RT_OP_SKIP_LAYER_NORM, 17, {{0}}, 0,
     {T(F32, 2, 3, 48), T(F32, 1, 3, 48), T(F32, 48)}, 3, 1, 0},
    {"Softmax last axis", RT_OP_SOFTMAX, 13, {{0}}, 0, {T(F32, 3, 4, 50)}, 1, 1, 0},
    {"Softmax inner axis", RT_OP_SOFTMAX, 13, {AI("axis", 1)}, 1, {T(F32, 3, 4, 5)}, 1, 1, 0},
    {"Softmax flatten opset 11", RT_OP_SOFTMAX, 11, {AI("axis", 1)}, 1, {T(F32, 3, 4, 5)}, 1, 1, 0},
    {"LogSoftmax f16", RT_OP_LOG_SOFTMAX, 13, {{0}}, 0, {T(F16, 5, 33)}, 1, 1, 0},
    /* reductions */
    {"ReduceMean axes attr", RT_OP_REDUCE_MEAN, 13, {AIS("axes", 1)}, 1, {T(F32, 3, 40, 5)}, 1, 1, 0},
    {"ReduceSum axes input", RT_OP_REDUCE_SUM, 13, {AI("keepdims", 0)}, 1,
     {T(F32, 3, 4, 5), I64S(0, 2)}, 2, 1, 0},
    {"ReduceSum i64 all", RT_OP_REDUCE_SUM, 13, {{0}}, 0, {T(I64, 6, 7)}, 1, 1, 0},
    {"ReduceMax", RT_OP_REDUCE_MAX, 18, {{0}}, 0, {T(F32, 6, 7), I64S(-1)}, 2, 1, 0},
    {"ArgMax", RT_OP_ARG_MAX, 13, {AI("axis", 1), AI("keepdims", 0)}, 2, {T(F32, 3, 9, 4)}, 1, 1, 0},
    {"ArgMax last index i32", RT_OP_ARG_MAX, 13, {AI("select_last_index", 1)}, 1,
     {T(I32, 8, 3)}, 1, 1, 0},
    /* data movement */
    {"Transpose", RT_OP_TRANSPOSE, 13, {AIS("perm", 2, 0, 1)}, 1, {T(F32, 3, 4, 5)}, 1, 1, 0},
    {"Transpose f16 default", RT_OP_TRANSPOSE, 13, {{0}}, 0, {T(F16, 3, 4, 5)}, 1, 1, 0},
    {"Concat", RT_OP_CONCAT, 13, {AI("axis", 1)}, 1, {T(F32, 2, 3, 4), T(F32, 2, 1, 4), T(F32, 2, 2, 4)}, 3, 1, 0},
    {"Split input", RT_OP_SPLIT, 13, {AI("axis", 1)}, 1, {T(F32, 2, 6, 3), I64S(1, 3, 2)}, 2, 3, 0},
    {"Slice steps", RT_OP_SLICE, 13, {{0}}, 0,
     {T(F32, 6, 7), I64S(1, -1), I64S(5, 0), I64S(0, 1), I64S(2, -2)}, 5, 1, 0},
    {"Gather axis 0", RT_OP_GATHER, 13, {{0}}, 0, {T(F32, 10, 6), TG(I64, GEN_INDEX, 3, 2)}, 2, 1, 10},
    {"Gather axis 1 i32", RT_OP_GATHER, 13, {AI("axis", 1)}, 1, {T(F16, 4, 5, 3), TG(I32, GEN_INDEX, 7)}, 2, 1, 5},
    {"Embedding f16 table", RT_OP_EMBEDDING, 17, {{0}}, 0,
     {T(F16, 12, 8), TG(I64, GEN_INDEX, 2, 5)}, 2, 1, 12},
    {"Embedding i8 table", RT_OP_EMBEDDING, 17, {{0}}, 0,
     {T(I8, 12, 8), TG(I32, GEN_INDEX, 7), TG(F32, GEN_POS, 12)}, 3, 1, 12},
    {"Shape", RT_OP_SHAPE, 15, {AI("start", 1)}, 1, {T(F32, 2, 3, 4)}, 1, 1, 0},
    {"ConstantOfShape", RT_OP_CONSTANT_OF_SHAPE, 9, {{0}}, 0, {I64S(3, 4)}, 1, 1, 0},
    {"Expand", RT_OP_EXPAND, 13, {{0}}, 0, {T(F32, 3, 1), I64S(2, 3, 4)}, 2, 1, 0},
    {"Range f32", RT_OP_RANGE, 11, {{0}}, 0, {F32V(1.0f), F32V(4.0f), F32V(0.25f)}, 3, 1, 0},
    {"Range i64", RT_OP_RANGE, 11, {{0}}, 0,
     {{.dt = RT_DTYPE_I64, .gen = GEN_DATA, .rank = 0, .data = (int64_t[]){10}},
      {.dt = RT_DTYPE_I64, .gen = GEN_DATA, .rank = 0, .data = (int64_t[]){-3}},
      {.dt = RT_DTYPE_I64, .gen = GEN_DATA, .rank = 0, .data = (int64_t[]){-2}}}, 3, 1, 0},
    {"Pad constant", RT_OP_PAD, 13, {{0}}, 0, {T(F32, 3, 4), I64S(1, 2, 0, 1), F32V(7.0f)}, 3, 1, 0},
    {"Pad reflect", RT_OP_PAD, 13, {AS("mode", "reflect")}, 1, {T(F32, 3, 4), I64S(2, 1, 2, 3)}, 2, 1, 0},
    {"Pad edge crop", RT_OP_PAD, 13, {AS("mode", "edge")}, 1, {T(F32, 3, 4), I64S(-1, 2, 1, 0)}, 2, 1, 0},
    {"Tile", RT_OP_TILE, 13, {{0}}, 0, {T(F32, 2, 3), I64S(2, 3)}, 2, 1, 0},
    {"FusedElementwise chain", RT_OP_FUSED_ELEMENTWISE, 17,
     {ASS("ops", "Mul", "Add", "Sigmoid", "Sub", "infd.Gelu"), AIS("args", 1, 2, -1, 1, -1),
      AIS("swap", 0, 0, 0, 1, 0), AFS("params", 0, 0, 0, 0, 0, 0, 0, 0, 1, 0)}, 4,
     {T(F32, 3, 5, 8), T(F32, 8), T(F32, 3, 1, 1)}, 3, 1, 0},
    {"FusedElementwise cast in", RT_OP_FUSED_ELEMENTWISE, 17,
     {ASS("ops", "Div", "Clip"), AIS("args", 1, -1), AIS("swap", 0, 0), AFS("params", 0, 0, -1, 2)}, 4,
     {T(I64, 4, 6), TG(F32, GEN_POS, 1)}, 2, 1, 0},
};

/* ops whose GEMMs (or cuDNN convolutions) take the backend's precision: repeated in tf32,
 * fp16 and bf16 */
static bool uses_gemm(rt_op op)
{
    return op == RT_OP_MATMUL || op == RT_OP_GEMM || op == RT_OP_LINEAR || op == RT_OP_ATTENTION ||
           op == RT_OP_QLINEAR || op == RT_OP_CONV || op == RT_OP_FUSED_CONV;
}

/* ---- part 2: sessions ---- */

static int add_weight(rt_graph *g, const char *name, int rank, const int64_t *dims)
{
    rt_shape s = rt_shape_make(rank, dims);
    int v = rt_graph_add_value(g, name, RT_VALUE_WEIGHT, RT_DTYPE_F32, &s);
    g->values[v].data = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    float *d = g->values[v].data->data;
    for (int64_t i = 0; i < rt_shape_numel(&s); i++)
        d[i] = (float)(uniform() - 0.5);
    return v;
}

/* x (batch, 6, 16) -> Attention -> SkipLayerNorm(+x) -> Linear+GELU -> Linear -> Add ->
 * Softmax: one transformer block of fused ops. */
static rt_graph *block_graph(uint64_t seed)
{
    rng = seed;
    rt_graph *g = rt_graph_create("block");
    g->opset = 17;
    rt_shape xs = rt_shape_make(3, (int64_t[]){-1, 6, 16});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int wqkv = add_weight(g, "wqkv", 2, (int64_t[]){16, 48});
    int bqkv = add_weight(g, "bqkv", 1, (int64_t[]){48});
    int gam = add_weight(g, "gamma", 1, (int64_t[]){16});
    int bet = add_weight(g, "beta", 1, (int64_t[]){16});
    int w1 = add_weight(g, "w1", 2, (int64_t[]){16, 32});
    int b1 = add_weight(g, "b1", 1, (int64_t[]){32});
    int w2 = add_weight(g, "w2", 2, (int64_t[]){32, 16});
    int a = test_mid(g, "a"), s = test_mid(g, "s"), h = test_mid(g, "h");
    int o = test_mid(g, "o"), y = test_mid(g, "y"), z = test_mid(g, "z");
    rt_graph_add_input(g, x);
    rt_attr *heads = calloc(1, sizeof *heads);
    heads[0] = (rt_attr){.name = strdup("num_heads"), .type = RT_ATTR_INT, .i = 2};
    rt_graph_add_node(g, "attn", RT_OP_ATTENTION, (int[]){x, wqkv, bqkv}, 3, (int[]){a}, 1, heads, 1);
    rt_graph_add_node(g, "sln", RT_OP_SKIP_LAYER_NORM, (int[]){a, x, gam, bet}, 4, (int[]){s}, 1,
                      NULL, 0);
    rt_attr *act = calloc(1, sizeof *act);
    act[0] = (rt_attr){.name = strdup("activation"), .type = RT_ATTR_STRING,
                       .s = strdup("infd.Gelu"), .s_len = 9};
    rt_graph_add_node(g, "fc1", RT_OP_LINEAR, (int[]){s, w1, b1}, 3, (int[]){h}, 1, act, 1);
    rt_graph_add_node(g, "fc2", RT_OP_LINEAR, (int[]){h, w2}, 2, (int[]){o}, 1, NULL, 0);
    rt_graph_add_node(g, "res", RT_OP_ADD, (int[]){o, s}, 2, (int[]){y}, 1, NULL, 0);
    rt_graph_add_node(g, "sm", RT_OP_SOFTMAX, (int[]){y}, 1, (int[]){z}, 1, NULL, 0);
    rt_graph_add_output(g, z);
    return g;
}

/* optimize: the precision pass narrows weights only on an optimized graph */
static rt_session *session_on(rt_graph *g, rt_backend_kind kind, rt_precision prec, bool graphs,
                              bool optimize, rt_error *err)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = kind;
    o.threads = 1;
    o.no_optimize = !optimize;
    o.compress.precision = prec;
    o.no_graphs = !graphs;
    return rt_session_create_from_graph(g, &o, err);
}

static rt_tensor *tensor_f32(int rank, const int64_t *dims)
{
    rt_shape s = rt_shape_make(rank, dims);
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        ((float *)t->data)[i] = (float)(2 * uniform() - 1);
    return t;
}

static rt_tensor *tensor_i64(int n, const int64_t *v)
{
    rt_shape s = rt_shape_make(1, (int64_t[]){n});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_I64, &s, NULL);
    memcpy(t->data, v, sizeof(int64_t) * (size_t)n);
    return t;
}

static void check(bool cond, const char *name, const char *what)
{
    if (cond)
        passes++;
    else
        fail(name, "%s", what);
}

/* Runs inputs through both sessions `runs` times, comparing every run; returns the
 * cuda session's stats after the last. */
static void run_both(const char *name, rt_session *cpu, rt_session *gpu, rt_tensor **in, int n_in,
                     int runs, tol t, rt_session_stats *st)
{
    rt_tensor *want = NULL, *got = NULL;
    rt_error err;
    if (rt_session_run(cpu, (const rt_tensor *const *)in, n_in, &want, 1, &err) != RT_OK) {
        check(false, name, err.text);
        return;
    }
    for (int r = 0; r < runs; r++) {
        char what[200];
        snprintf(what, sizeof what, "%s, run %d", name, r + 1);
        if (rt_session_run(gpu, (const rt_tensor *const *)in, n_in, &got, 1, &err) != RT_OK) {
            printf("  %s\n", err.text);
            check(false, what, "cuda run failed");
            break;
        }
        if (compare(what, want, got, t))
            passes++;
        rt_tensor_free(got);
        got = NULL;
    }
    rt_tensor_free(want);
    rt_session_get_stats(gpu, st);
}

static void session_block(rt_precision prec, bool graphs)
{
    char name[96];
    snprintf(name, sizeof name, "session block [%s, graphs %s]", rt_precision_name(prec),
             graphs ? "on" : "off");
    rt_error err;
    rt_session *cpu = session_on(block_graph(7), RT_BACKEND_CPU, RT_PRECISION_FP32, false, true, &err);
    rt_session *gpu = session_on(block_graph(7), RT_BACKEND_CUDA, prec, graphs, true, &err);
    if (!cpu || !gpu) {
        check(false, name, err.text);
        rt_session_free(cpu);
        rt_session_free(gpu);
        return;
    }
    tol t = prec == RT_PRECISION_FP32 ? (tol){1e-5, 1e-3, 0}
            : prec == RT_PRECISION_TF32 ? (tol){0, 0, 5e-3}
            : (tol){0, 0, prec == RT_PRECISION_FP16 ? 1e-2 : 3e-2};
    rt_session_stats st;
    for (int64_t batch = 2; batch <= 3; batch++) {
        rt_tensor *x = tensor_f32(3, (int64_t[]){batch, 6, 16});
        run_both(name, cpu, gpu, &x, 1, 4, t, &st);
        rt_tensor_free(x);
        check(st.counts_launches && st.launches_eager >= 7, name, "launches are counted");
        if (graphs)
            check(st.replayed_last && st.launches_last == 1, name,
                  "the fourth run replays one CUDA Graph");
        else
            check(!st.replayed_last && st.launches_last == st.launches_eager, name,
                  "without graphs every run launches its kernels");
    }
    check(st.n_plans == 2, name, "one plan per batch size");
    rt_session_free(cpu);
    rt_session_free(gpu);
}

/* A Conv node's attributes: pads 1 on every side, and the stride. */
static rt_attr *conv_attrs(int64_t stride)
{
    rt_attr *a = calloc(2, sizeof *a);
    a[0] = (rt_attr){.name = strdup("pads"), .type = RT_ATTR_INTS, .n = 4,
                     .ints = malloc(4 * sizeof(int64_t))};
    a[1] = (rt_attr){.name = strdup("strides"), .type = RT_ATTR_INTS, .n = 2,
                     .ints = malloc(2 * sizeof(int64_t))};
    for (int i = 0; i < 4; i++)
        a[0].ints[i] = 1;
    a[1].ints[0] = a[1].ints[1] = stride;
    return a;
}

/* x (batch, 4, 10, 10) -> Conv 3x3 -> Relu -> Conv 3x3 stride 2: the optimizer fuses the
 * first pair into an infd.FusedConv; on cuDNN when the backend has it. */
static rt_graph *conv_graph(uint64_t seed)
{
    rng = seed;
    rt_graph *g = rt_graph_create("convs");
    g->opset = 17;
    rt_shape xs = rt_shape_make(4, (int64_t[]){-1, 4, 10, 10});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int w1 = add_weight(g, "w1", 4, (int64_t[]){8, 4, 3, 3});
    int b1 = add_weight(g, "b1", 1, (int64_t[]){8});
    int w2 = add_weight(g, "w2", 4, (int64_t[]){6, 8, 3, 3});
    int b2 = add_weight(g, "b2", 1, (int64_t[]){6});
    int c = test_mid(g, "c"), r = test_mid(g, "r"), y = test_mid(g, "y");
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "conv1", RT_OP_CONV, (int[]){x, w1, b1}, 3, (int[]){c}, 1,
                      conv_attrs(1), 2);
    rt_graph_add_node(g, "relu", RT_OP_RELU, (int[]){c}, 1, (int[]){r}, 1, NULL, 0);
    rt_graph_add_node(g, "conv2", RT_OP_CONV, (int[]){r, w2, b2}, 3, (int[]){y}, 1,
                      conv_attrs(2), 2);
    rt_graph_add_output(g, y);
    return g;
}

/* conv_graph through sessions with CUDA Graphs: cuDNN's calls recorded and replayed. */
static void session_conv(rt_precision prec)
{
    char name[96];
    snprintf(name, sizeof name, "session convs [%s]", rt_precision_name(prec));
    rt_error err;
    rt_session *cpu = session_on(conv_graph(11), RT_BACKEND_CPU, RT_PRECISION_FP32, false, true, &err);
    rt_session *gpu = session_on(conv_graph(11), RT_BACKEND_CUDA, prec, true, true, &err);
    if (cpu && gpu) {
        tol t = {0, 0, prec == RT_PRECISION_FP32 ? 1e-4 : prec == RT_PRECISION_TF32 ? 5e-3
                       : prec == RT_PRECISION_FP16 ? 1e-2 : 3e-2};
        rt_session_stats st;
        rt_tensor *x = tensor_f32(4, (int64_t[]){2, 4, 10, 10});
        run_both(name, cpu, gpu, &x, 1, 4, t, &st);
        rt_tensor_free(x);
        check(st.replayed_last && st.launches_last == 1, name,
              "the fourth run replays one CUDA Graph");
    } else {
        check(false, name, err.text);
    }
    rt_session_free(cpu);
    rt_session_free(gpu);
}

static void session_host_reads(void)
{
    const char *name = "session host-read inputs";
    rt_error err;
    rt_session *cpu = session_on(test_reshape_graph(), RT_BACKEND_CPU, RT_PRECISION_FP32, true,
                                 false, &err);
    rt_session *gpu = session_on(test_reshape_graph(), RT_BACKEND_CUDA, RT_PRECISION_FP32, true,
                                 false, &err);
    if (!cpu || !gpu) {
        check(false, name, err.text);
    } else {
        rt_session_stats st;
        const int64_t shapes[3][2] = {{3, 8}, {8, 3}, {2, 12}};
        rt_tensor *x = tensor_f32(2, (int64_t[]){4, 6});
        for (int k = 0; k < 3; k++) {
            rt_tensor *in[2] = {x, tensor_i64(2, shapes[k])};
            run_both(name, cpu, gpu, in, 2, 3, tol_for(RT_DTYPE_F32), &st);
            rt_tensor_free(in[1]);
            check(!st.replayed_last, name, "a plan that reads a graph input on the host is "
                  "not recorded");
        }
        rt_tensor_free(x);
    }
    rt_session_free(cpu);
    rt_session_free(gpu);
    name = "session host-read intermediate";
    cpu = session_on(test_mirror_graph(), RT_BACKEND_CPU, RT_PRECISION_FP32, true, false, &err);
    gpu = session_on(test_mirror_graph(), RT_BACKEND_CUDA, RT_PRECISION_FP32, true, false, &err);
    if (!cpu || !gpu) {
        check(false, name, err.text);
    } else {
        rt_session_stats st;
        rt_tensor *x = tensor_f32(2, (int64_t[]){5, 4});
        run_both(name, cpu, gpu, &x, 1, 3, tol_for(RT_DTYPE_F32), &st);
        rt_tensor_free(x);
    }
    rt_session_free(cpu);
    rt_session_free(gpu);
}

/* x (1, 1) and shape (2): ReduceSum(Expand(x, shape)) over all: a shape of 2^18 x 2^18
 * needs 256 GiB on the device, more than any has: that run fails with out-of-memory and
 * the next, smaller one works. */
static void session_out_of_memory(void)
{
    const char *name = "session run-time out of memory";
    rt_graph *g = rt_graph_create("oom");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){1, 1}), ss = rt_shape_make(1, (int64_t[]){2});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int sh = rt_graph_add_value(g, "shape", RT_VALUE_INPUT, RT_DTYPE_I64, &ss);
    int e = test_mid(g, "e"), y = test_mid(g, "y");
    rt_graph_add_input(g, x);
    rt_graph_add_input(g, sh);
    rt_graph_add_node(g, "expand", RT_OP_EXPAND, (int[]){x, sh}, 2, (int[]){e}, 1, NULL, 0);
    rt_attr *keep = calloc(1, sizeof *keep);
    keep[0] = (rt_attr){.name = strdup("keepdims"), .type = RT_ATTR_INT, .i = 0};
    rt_graph_add_node(g, "sum", RT_OP_REDUCE_SUM, (int[]){e}, 1, (int[]){y}, 1, keep, 1);
    rt_graph_add_output(g, y);
    rt_error err;
    rt_session *s = session_on(g, RT_BACKEND_CUDA, RT_PRECISION_FP32, true, false, &err);
    if (!s) {
        check(false, name, err.text);
        return;
    }
    rt_tensor *in[2] = {tensor_f32(2, (int64_t[]){1, 1}), tensor_i64(2, (int64_t[]){1 << 18, 1 << 18})};
    rt_tensor *out = NULL;
    rt_status st = rt_session_run(s, (const rt_tensor *const *)in, 2, &out, 1, &err);
    check(st == RT_ERR_NOMEM && strstr(err.text, "memory"), name,
          "a 256 GiB intermediate fails the run with out-of-memory");
    if (st != RT_OK)
        printf("  (the error was: %s)\n", err.text);
    rt_tensor_free(out);
    rt_tensor_free(in[1]);
    in[1] = tensor_i64(2, (int64_t[]){4, 5});
    out = NULL;
    st = rt_session_run(s, (const rt_tensor *const *)in, 2, &out, 1, &err);
    check(st == RT_OK && out && fabsf(((float *)out->data)[0] - 20 * ((float *)in[0]->data)[0]) < 1e-4f,
          name, "the session runs again after the failed run");
    rt_tensor_free(out);
    rt_tensor_free(in[0]);
    rt_tensor_free(in[1]);
    rt_session_free(s);
}

int main(int argc, char **argv)
{
    int n_dev = cuda_device_count();
    if (argc > 1 && strcmp(argv[1], "--probe") == 0) {
        if (n_dev > 0)
            return 0;
        printf("no CUDA device is visible (cuda_device_count() = 0)\n");
        return 1;
    }
    if (n_dev == 0) {
        printf("test_backend_ops: skipped: no CUDA device is visible\n");
        return 0;
    }
    char desc[160] = "?";
    cuda_device_describe(0, desc, sizeof desc);
    printf("test_backend_ops on cuda:0 %s\n", desc);
    char dnn[400];
    cuda_backend_describe_dnn(dnn, sizeof dnn);
    printf("convolutions: %s\n", dnn);
    const char *filter = argc > 1 ? argv[1] : "";
    memset(guard_pattern, 0xa5, sizeof guard_pattern);
    rt_error err;
    rt_backend *cpu = rt_cpu_backend_create(1, &err);
    const rt_precision precs[] = {RT_PRECISION_FP32, RT_PRECISION_TF32, RT_PRECISION_FP16,
                                  RT_PRECISION_BF16};
    for (size_t p = 0; p < sizeof precs / sizeof *precs; p++) {
        rt_backend *gpu = cuda_backend_create(0, precs[p], false, &err);
        if (!gpu) {
            printf("FAIL creating the cuda backend: %s\n", err.text);
            return 1;
        }
        for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
            if (!strstr(cases[i].name, filter) || (p > 0 && !uses_gemm(cases[i].op)))
                continue;
            run_case(&cases[i], cpu, gpu, precs[p]);
        }
        bool dnn_active;
        uint64_t dnn_convs;
        cuda_backend_dnn_stats(gpu, &dnn_active, &dnn_convs);
        printf("convolutions on cuDNN [%s]: %llu\n", rt_precision_name(precs[p]),
               (unsigned long long)dnn_convs);
        rt_backend_free(gpu);
    }
    rt_backend_free(cpu);
    if (!*filter) {
        for (size_t p = 0; p < sizeof precs / sizeof *precs; p++)
            session_block(precs[p], true);
        session_block(RT_PRECISION_FP32, false);
        for (size_t p = 0; p < sizeof precs / sizeof *precs; p++)
            session_conv(precs[p]);
        session_host_reads();
        session_out_of_memory();
    }
    printf("test_backend_ops: %d passed, %d failed\n", passes, failures);
    return failures ? 1 : 0;
}
