/* rt_cpu_attention.c: CPU kernel of infd.Attention and infd.QAttention (rt_fused.h; the
 * latter projects through the INT8 GEMM of rt_cpu_qgemm.h): one SGEMM projects X to
 * Q, K and V side by side (rows of (heads + 2 kv_heads) x d; an F16/BF16 W widened a
 * panel at a time, see rt_cpu_gemm_bias_act), then each (batch, head) pair, spread over
 * the threads, computes its scores with one SGEMM against the K of its KV head (shared by
 * heads / kv_heads query heads under grouped-query attention), the masked softmax of each
 * row in place, and its slice of the output with a second SGEMM. Heads are read and
 * written with strides, so nothing is transposed or copied. */
#include <cblas.h>
#include <math.h>
#include <omp.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_cpu_nn_util.h"
#include "rt_cpu_qgemm.h"
#include "rt_cpu_vmath.h"

/* p = softmax(p + mask) over n elements; mask may be NULL. */
RT_CPU_CLONES
static void masked_softmax_row(float *p, const float *mask, int64_t n)
{
    if (mask) {
        _Pragma("omp simd")
        for (int64_t j = 0; j < n; j++)
            p[j] += mask[j];
    }
    float mx = p[0], sum = 0;
    _Pragma("omp simd reduction(max:mx)")
    for (int64_t j = 1; j < n; j++)
        mx = mx > p[j] ? mx : p[j];
    _Pragma("omp simd reduction(+:sum)")
    for (int64_t j = 0; j < n; j++) {
        p[j] = rt_exp_f32(p[j] - mx);
        sum += p[j];
    }
    float r = 1.0f / sum;
    _Pragma("omp simd")
    for (int64_t j = 0; j < n; j++)
        p[j] *= r;
}

/* Attention and QAttention (rt_fused.h): the same but for the projection, INT8 in
 * QAttention, whose W (h3, hidden_in) and scales precede B and M. */
RT_CPU_KERNEL(rt_cpu_attention)
{
    (void)n_out;
    bool quant = node->op == RT_OP_QATTENTION;
    int bi_in = quant ? 3 : 2;
    const rt_tensor *x = in[0], *w = in[1];
    const rt_tensor *b = n_in > bi_in ? in[bi_in] : NULL;
    const rt_tensor *m = n_in > bi_in + 1 ? in[bi_in + 1] : NULL;
    int64_t batch = x->shape.dims[0], seq = x->shape.dims[1], hin = x->shape.dims[2];
    int64_t h3 = w->shape.dims[quant ? 0 : 1], heads, kv_heads, d;
    rt_qmode qmode = RT_QMODE_WEIGHT_ONLY;
    rt_status st = quant ? rt_qmode_get(node, &qmode, err) : RT_OK;
    if (st == RT_OK)
        st = rt_attention_heads(node, h3, &heads, &kv_heads, &d, err);
    if (st != RT_OK)
        return st;
    int64_t hidden = heads * d, group = heads / kv_heads;
    float scale = rt_node_attr_float(node, "scale", 1.0f / sqrtf((float)d));
    if (batch * seq * hidden == 0)
        return RT_OK;
    /* the mask right-aligned to (m0, 1, m2, seq) */
    int64_t m0 = 1, m2 = 1;
    if (m) {
        const rt_shape *ms = &m->shape;
        m0 = ms->rank >= 4 ? ms->dims[ms->rank - 4] : 1;
        m2 = ms->rank >= 2 ? ms->dims[ms->rank - 2] : 1;
    }
    int threads = ctx->threads;
    size_t qkv_bytes = rt_scratch_piece((size_t)(batch * seq * h3), sizeof(float));
    size_t probs_bytes = (size_t)threads * rt_scratch_piece((size_t)(seq * seq), sizeof(float));
    char *scratch;
    size_t proj_bytes = quant ? rt_cpu_qgemm_scratch_bytes(qmode, batch * seq, h3, hin)
                              : rt_cpu_gemm_panel_bytes(w->dtype, h3, hin);
    st = rt_nn_scratch(ctx, qkv_bytes + probs_bytes + proj_bytes, (void **)&scratch, err);
    if (st != RT_OK)
        return st;
    float *qkv = (float *)scratch;
    float *probs = (float *)(scratch + qkv_bytes);
    size_t probs_stride = rt_scratch_piece((size_t)(seq * seq), sizeof(float)) / sizeof(float);
    rt_act none = {.kind = RT_ACT_NONE};
    void *proj_scratch = scratch + qkv_bytes + probs_bytes;
    if (quant)
        rt_cpu_qgemm(ctx, qmode, batch * seq, h3, hin, x->data, w->data, in[2]->data,
                     b ? b->data : NULL, &none, qkv, proj_scratch);
    else
        rt_cpu_gemm_bias_act(ctx, batch * seq, h3, hin, x->data, w->data, w->dtype, false,
                             b ? b->data : NULL, &none, qkv, proj_scratch);
    const float *mask = m ? m->data : NULL;
    float *y = out[0]->data;
    #pragma omp parallel for if(batch * heads > 1) num_threads(threads) schedule(static)
    for (int64_t bh = 0; bh < batch * heads; bh++) {
        int64_t bi = bh / heads, hi = bh % heads;
        float *p = probs + (size_t)omp_get_thread_num() * probs_stride;
        const float *row = qkv + bi * seq * h3, *q = row + hi * d;
        const float *k = row + hidden + hi / group * d, *v = k + kv_heads * d;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)seq, (blasint)seq,
                    (blasint)d, scale, q, (blasint)h3, k, (blasint)h3, 0.0f, p, (blasint)seq);
        const float *mb = mask ? mask + (m0 > 1 ? bi : 0) * m2 * seq : NULL;
        for (int64_t i = 0; i < seq; i++)
            masked_softmax_row(p + i * seq, mb ? mb + (m2 > 1 ? i : 0) * seq : NULL, seq);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (blasint)seq, (blasint)d,
                    (blasint)seq, 1.0f, p, (blasint)seq, v, (blasint)h3, 0.0f,
                    y + bi * seq * hidden + hi * d, (blasint)hidden);
    }
    return RT_OK;
}
