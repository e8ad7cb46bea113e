/* rt_cpu_nn_util.c: float stand-ins for F16/BF16/I8/U8 tensors, scratch access and window
 * padding for the NN and reduction kernels (see rt_cpu_nn_util.h). */
#include "rt_cpu_nn_util.h"

#include <string.h>

#define MAX_IO 8

/* Float stand-ins for the tensors of dtype `from` when that is not F32, and for the F16/BF16
 * inputs of an op computing in F32 (infd.FusedConv's weight): inputs converted to F32,
 * outputs given F32 buffers; other tensors pass through. `extra` is the body's scratch
 * piece (NULL when 0 bytes were asked for). */
typedef struct {
    rt_tensor in_t[MAX_IO], out_t[MAX_IO];
    const rt_tensor *in[MAX_IO];
    rt_tensor *out[MAX_IO];
    void *extra;
} f32_views;

rt_status rt_nn_scratch(rt_kernel_ctx *ctx, size_t bytes, void **p, rt_error *err)
{
    *p = NULL;
    if (bytes == 0)
        return RT_OK;
    *p = rt_kernel_scratch(ctx, bytes);
    if (!*p)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory for %zu bytes of kernel scratch",
                            bytes);
    return RT_OK;
}

static void to_f32(const rt_tensor *t, float *dst)
{
    size_t n = (size_t)rt_tensor_numel(t);
    if (t->dtype == RT_DTYPE_F16 || t->dtype == RT_DTYPE_BF16)
        rt_half_load(t->dtype, t->data, 1, dst, (int64_t)n);
    else
        for (size_t i = 0; i < n; i++)
            dst[i] = (float)rt_dtype_load_f64(t->dtype, t->data, i);
}

static void from_f32(const float *src, rt_tensor *t)
{
    size_t n = (size_t)rt_tensor_numel(t);
    if (t->dtype == RT_DTYPE_F16 || t->dtype == RT_DTYPE_BF16)
        rt_half_store(t->dtype, src, t->data, (int64_t)n);
    else
        for (size_t i = 0; i < n; i++)
            rt_dtype_store_f64(t->dtype, t->data, i, src[i]);
}

/* Whether input t gets an F32 copy when the op's main dtype is `from`. */
static bool widens(const rt_tensor *t, rt_dtype from)
{
    if (!t || from == RT_DTYPE_F64)
        return false;
    if (from == RT_DTYPE_F32)
        return t->dtype == RT_DTYPE_F16 || t->dtype == RT_DTYPE_BF16;
    return t->dtype == from;
}

/* Builds the views and the extra piece in one scratch buffer from ctx. */
static rt_status f32_views_begin(rt_kernel_ctx *ctx, rt_dtype from, const rt_tensor *const *in,
                                 int n_in, rt_tensor *const *out, int n_out, size_t extra,
                                 f32_views *v, rt_error *err)
{
    if (n_in > MAX_IO || n_out > MAX_IO)
        return rt_error_set(err, RT_ERR_INTERNAL, "too many tensors for float views");
    memset(v, 0, sizeof *v);
    size_t bytes = rt_scratch_piece(extra, 1);
    for (int i = 0; i < n_in; i++)
        if (widens(in[i], from))
            bytes += rt_scratch_piece((size_t)rt_tensor_numel(in[i]), sizeof(float));
    for (int i = 0; i < n_out; i++)
        if (out[i] && out[i]->dtype == from && from != RT_DTYPE_F32)
            bytes += rt_scratch_piece((size_t)rt_tensor_numel(out[i]), sizeof(float));
    char *p;
    rt_status st = rt_nn_scratch(ctx, bytes, (void **)&p, err);
    if (st != RT_OK)
        return st;
    v->extra = extra ? p : NULL;
    p += rt_scratch_piece(extra, 1);
    for (int i = 0; i < n_in; i++) {
        v->in[i] = in[i];
        if (!widens(in[i], from))
            continue;
        v->in_t[i] = *in[i];
        v->in_t[i].dtype = RT_DTYPE_F32;
        v->in_t[i].data = p;
        to_f32(in[i], (float *)p);
        p += rt_scratch_piece((size_t)rt_tensor_numel(in[i]), sizeof(float));
        v->in[i] = &v->in_t[i];
    }
    for (int i = 0; i < n_out; i++) {
        v->out[i] = out[i];
        if (!out[i] || out[i]->dtype != from || from == RT_DTYPE_F32)
            continue;
        v->out_t[i] = *out[i];
        v->out_t[i].dtype = RT_DTYPE_F32;
        v->out_t[i].data = p;
        p += rt_scratch_piece((size_t)rt_tensor_numel(out[i]), sizeof(float));
        v->out[i] = &v->out_t[i];
    }
    return RT_OK;
}

/* Converts the float outputs back into the real outputs. */
static void f32_views_end(const f32_views *v, rt_tensor *const *out, int n_out)
{
    for (int i = 0; i < n_out; i++)
        if (out[i] && v->out[i] != out[i])
            from_f32(v->out[i]->data, out[i]);
}

rt_status rt_nn_run(rt_kernel_ctx *ctx, rt_dtype dt, rt_nn_body body, const void *params,
                    const rt_tensor *const *in, int n_in, rt_tensor *const *out, int n_out,
                    size_t scratch_elems, rt_error *err)
{
    void *scratch;
    rt_status st;
    bool direct = dt == RT_DTYPE_F32 || dt == RT_DTYPE_F64;
    for (int i = 0; direct && i < n_in; i++)
        direct = !widens(in[i], dt);
    if (direct) {
        st = rt_nn_scratch(ctx, scratch_elems * rt_dtype_size(dt), &scratch, err);
        return st != RT_OK ? st : body(ctx, params, in, out, scratch, err);
    }
    f32_views v;
    st = f32_views_begin(ctx, dt, in, n_in, out, n_out, scratch_elems * sizeof(float), &v,
                            err);
    if (st == RT_OK)
        st = body(ctx, params, v.in, v.out, v.extra, err);
    if (st == RT_OK)
        f32_views_end(&v, out, n_out);
    return st;
}

rt_status rt_window_pad3(rt_window *w, rt_error *err)
{
    if (w->rank > 3)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%d spatial dims are not supported (at most 3)",
                            w->rank);
    int shift = 3 - w->rank;
    int64_t *fields[] = {w->in, w->out, w->kernel, w->stride, w->dilation, w->pad_begin,
                         w->pad_end};
    for (size_t f = 0; f < sizeof fields / sizeof *fields; f++) {
        int64_t fill = f < 5 ? 1 : 0; /* sizes and steps become 1, pads 0 */
        memmove(fields[f] + shift, fields[f], sizeof(int64_t) * (size_t)w->rank);
        for (int i = 0; i < shift; i++)
            fields[f][i] = fill;
    }
    w->rank = 3;
    return RT_OK;
}
