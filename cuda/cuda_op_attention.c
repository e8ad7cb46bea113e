/* cuda_op_attention.c: infd.Attention on the CUDA backend. One GEMM projects X to Q, K and
 * V (bias in its epilogue) and a kernel splits them head-major in the GEMM operand dtype;
 * then one of two paths:
 *
 * - flash (cuda_k_flash.cu): compute dtype FP16 or BF16 (precision fp16 / bf16) and a head
 *   size d that is a multiple of 16 up to 128: one kernel does the scores, the masked
 *   online softmax and the product with V tile by tile and writes Y itself; nothing of
 *   size seq x seq is stored. Three launches.
 * - GEMMs, for everything else (FP32 and TF32, other head sizes): one batched GEMM
 *   computes every head's scores, a kernel applies mask and softmax, one batched GEMM
 *   multiplies by V, and a box copy puts the heads side by side: six launches whatever the
 *   number of heads. Grouped-query attention batches over (batch, KV head): the H / KV
 *   query heads that share a KV head are consecutive in Q, so their rows form one tall
 *   matrix against that K and V. */
#include <math.h>
#include <string.h>

#include "cuda_gemm.h"
#include "cuda_ops.h"
#include "rt_fused.h"

/* g repeated over `batch` operand sets that lie one after another in memory. */
static void contiguous_batch(cuda_gemm *g, int64_t batch)
{
    g->batch = batch;
    g->stride_a = g->m * g->k;
    g->stride_b = g->k * g->n;
    g->stride_d = g->m * g->n;
}

CUDA_OP(cuda_op_attention)
{
    (void)n_out;
    const rt_tensor *x = in[0], *w = in[1];
    const rt_tensor *b = n_in > 2 ? in[2] : NULL, *m = n_in > 3 ? in[3] : NULL;
    int64_t batch = x->shape.dims[0], seq = x->shape.dims[1], hin = x->shape.dims[2];
    int64_t cols = w->shape.dims[1], heads, kv, d;
    rt_status st = rt_attention_heads(node, cols, &heads, &kv, &d, err);
    if (st != RT_OK)
        return st;
    float scale = rt_node_attr_float(node, "scale", 1.0f / sqrtf((float)d));
    if (batch * seq * heads * d == 0)
        return RT_OK;
    int64_t group = heads / kv;
    /* the mask right-aligned to (m0, 1, m2, seq) */
    int64_t m0 = 1, m2 = 1;
    if (m) {
        const rt_shape *ms = &m->shape;
        m0 = ms->rank >= 4 ? ms->dims[ms->rank - 4] : 1;
        m2 = ms->rank >= 2 ? ms->dims[ms->rank - 2] : 1;
    }
    rt_dtype cd = cuda_compute_dtype(be, RT_DTYPE_F32);
    size_t ce = rt_dtype_size(cd);
    size_t q_bytes = cuda_piece((size_t)(batch * heads * seq * d) * ce);
    size_t kv_bytes = cuda_piece((size_t)(batch * kv * seq * d) * ce);
    size_t qkv_bytes = cuda_piece((size_t)(batch * seq * cols) * sizeof(float));
    /* the GEMM path's scores, probabilities (in the compute dtype unless F32) and heads */
    bool flash = cuda_k_flash_fits(cd, d, batch * heads, seq);
    size_t score_bytes =
        flash ? 0 : cuda_piece((size_t)(batch * heads * seq * seq) * sizeof(float));
    size_t p_bytes = flash || cd == RT_DTYPE_F32
                         ? 0
                         : cuda_piece((size_t)(batch * heads * seq * seq) * ce);
    size_t ctx_bytes = flash ? 0 : cuda_piece((size_t)(batch * heads * seq * d) * sizeof(float));
    size_t conv_bytes = cuda_operand_bytes(be, x, cd) + cuda_operand_bytes(be, w, cd);
    char *s = cuda_scratch(be, conv_bytes + qkv_bytes + q_bytes + 2 * kv_bytes + score_bytes +
                                   p_bytes + ctx_bytes, err);
    if (!s)
        return err ? err->status : RT_ERR_NOMEM;
    char *cursor = s;
    const void *px = cuda_operand(be, x, cd, &cursor, err);
    const void *pw = px ? cuda_operand(be, w, cd, &cursor, err) : NULL;
    if (!pw)
        return err ? err->status : RT_ERR_BACKEND;
    char *next = s + conv_bytes;
    float *qkv = (float *)next;
    char *q = next + qkv_bytes, *k = q + q_bytes, *v = k + kv_bytes;
    float *scores = (float *)(v + kv_bytes);
    char *p = p_bytes ? (char *)scores + score_bytes : (char *)scores;
    float *ctx = (float *)((char *)scores + score_bytes + p_bytes);
    bool tf32 = be->precision == RT_PRECISION_TF32;

    cuda_gemm proj = cuda_gemm_plain(cd, RT_DTYPE_F32, false, false, batch * seq, cols, hin, px,
                                     pw, qkv);
    proj.tf32 = tf32;
    proj.epi = b ? CUDA_EPI_BIAS : CUDA_EPI_NONE;
    proj.bias = b ? b->data : NULL;
    if ((st = cuda_gemm_run(be, &proj, err)) != RT_OK)
        return st;
    CUDA_LAUNCH(be, err, cuda_k_qkv_split(be->stream, qkv, cd, q, k, v, batch, seq, heads, kv, d),
                "Attention QKV split");
    int64_t mask_b = m0 > 1 ? m2 * seq : 0, mask_q = m2 > 1 ? seq : 0;
    if (flash) {
        CUDA_LAUNCH(be, err,
                    cuda_k_flash_attn(be->stream, cd, q, k, v, out[0]->data, batch, seq, heads,
                                      kv, d, scale, m ? m->data : NULL, mask_b, mask_q),
                    "Attention flash");
        return RT_OK;
    }

    /* scores of the group of query heads of each (batch, KV head): (group seq) x seq */
    cuda_gemm qk = cuda_gemm_plain(cd, RT_DTYPE_F32, false, true, group * seq, seq, d, q, k,
                                   scores);
    qk.tf32 = tf32;
    qk.alpha = scale;
    contiguous_batch(&qk, batch * kv);
    if ((st = cuda_gemm_run(be, &qk, err)) != RT_OK)
        return st;
    CUDA_LAUNCH(be, err,
                cuda_k_attn_softmax(be->stream, scores, cd, p, batch * heads * seq, seq, seq,
                                    heads * seq, m ? m->data : NULL, mask_b, mask_q),
                "Attention softmax");

    cuda_gemm pv = cuda_gemm_plain(cd, RT_DTYPE_F32, false, false, group * seq, d, seq, p, v, ctx);
    pv.tf32 = tf32;
    contiguous_batch(&pv, batch * kv);
    if ((st = cuda_gemm_run(be, &pv, err)) != RT_OK)
        return st;

    /* ctx (batch, heads, seq, d) -> Y (batch, seq, heads d) */
    cuda_box box;
    memset(&box, 0, sizeof box);
    box.rank = 4;
    int64_t dims[4] = {batch, seq, heads, d};
    int64_t dst[4] = {seq * heads * d, heads * d, d, 1};
    int64_t src[4] = {heads * seq * d, d, seq * d, 1};
    for (int i = 0; i < 4; i++) {
        box.dims[i] = dims[i];
        box.dst[i] = dst[i];
        box.src[i] = src[i];
    }
    CUDA_LAUNCH(be, err, cuda_k_copy_box(be->stream, out[0]->data, ctx, sizeof(float), &box),
                "Attention heads");
    return RT_OK;
}
