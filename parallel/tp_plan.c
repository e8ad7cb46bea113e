/* tp_plan.c: the memory planner's formulas (documented in docs/parallel.md) and the
 * tensor-parallel split rules they assume: attention by heads, the MLP by its intermediate
 * dimension, embeddings and lm_head by vocabulary, norms replicated. */
#include "tp_plan.h"

#include <string.h>

/* Products such as batch x heads x seq^2 can pass 2^64 for absurd options: sums are kept
 * in 128 bits and checked once at the end. */
typedef unsigned __int128 u128;

#define ACT_BYTES 2   /* activations and the KV cache are fp16/bf16 (int8 is weight-only) */
#define LOGIT_BYTES 4 /* logits are produced in fp32 */
#define SCALE_BYTES 2 /* one fp16 scale per output channel of an int8 matrix */

void tp_plan_options_init(tp_plan_options *opts)
{
    memset(opts, 0, sizeof *opts);
    opts->tensor_parallel = 1;
    opts->dtype = TP_WEIGHTS_FP16;
    opts->max_batch = 1;
    opts->reserve_bytes = TP_RESERVE_BYTES;
}

rt_status tp_split_heads(int64_t heads, int64_t kv_heads, int tp, int64_t *heads_per_rank,
                         int64_t *kv_heads_per_rank, rt_error *err)
{
    if (tp < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "tensor-parallel size must be at least 1, "
                            "not %d", tp);
    if (heads % tp != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot split %lld attention heads over "
                            "%d ranks: attention splits by heads, and %lld is not divisible "
                            "by %d", (long long)heads, tp, (long long)heads, tp);
    if (kv_heads >= tp ? kv_heads % tp != 0 : tp % kv_heads != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot split %lld KV heads over %d "
                            "ranks: the KV heads must be divisible by %d, or %d a multiple of "
                            "them (each rank then holds one replicated KV head)",
                            (long long)kv_heads, tp, tp, tp);
    *heads_per_rank = heads / tp;
    *kv_heads_per_rank = kv_heads >= tp ? kv_heads / tp : 1;
    return RT_OK;
}

/* Elements one rank holds, by how they are stored. */
typedef struct {
    u128 linear;   /* attention and MLP matrices: stored in the weight dtype */
    u128 channels; /* their output channels: one scale each when int8 */
    u128 other;    /* embedding, lm_head, norms, biases: always 16-bit */
} weight_counts;

static weight_counts count_weights(const tp_model_config *c, int tp, int64_t hq, int64_t hkv)
{
    u128 h = (u128)c->hidden, q = (u128)(hq * c->head_dim), kv = (u128)(hkv * c->head_dim);
    u128 inter = (u128)(c->intermediate / tp), vocab = (u128)((c->vocab + tp - 1) / tp);
    u128 mats = c->gated_mlp ? 3 : 2, layers = (u128)c->layers;
    u128 norm = c->layer_norm ? 2 * h : h;
    /* q, k, v column-parallel; o row-parallel; gate/up (fc1) column-, down (fc2) row-parallel */
    u128 linear = h * (q + 2 * kv) + q * h + mats * h * inter;
    u128 channels = q + 2 * kv + h + (mats - 1) * inter + h;
    u128 other = 2 * norm + (c->qkv_bias ? q + 2 * kv : 0) + (c->o_bias ? h : 0) +
                 (c->mlp_bias ? (mats - 1) * inter + h : 0);
    weight_counts w = {layers * linear, layers * channels, layers * other + norm};
    w.other += vocab * h * (c->tied_embeddings ? 1 : 2);
    return w;
}

int64_t tp_model_parameters(const tp_model_config *cfg)
{
    weight_counts w = count_weights(cfg, 1, cfg->heads, cfg->kv_heads);
    return (int64_t)(w.linear + w.other);
}

/* The peak of one layer's intermediates for T = batch x seq tokens: the largest of the
 * attention block (x, normed x, q|k|v, scores and probabilities unless flash, context,
 * output), the MLP block (x, normed x, the intermediate tensors, output) and the final
 * logits (x, normed x, fp32 logits over this rank's vocabulary shard). */
static u128 activation_bytes(const tp_model_config *c, const tp_plan_options *o, int64_t seq,
                             int64_t hq, int64_t hkv)
{
    int tp = o->tensor_parallel;
    u128 t = (u128)o->max_batch * (u128)seq, h = (u128)c->hidden;
    u128 q = (u128)(hq * c->head_dim), kv = (u128)(hkv * c->head_dim);
    u128 inter = (u128)(c->intermediate / tp), vocab = (u128)((c->vocab + tp - 1) / tp);
    u128 scores = o->flash_attention ? 0 : 2 * (u128)o->max_batch * (u128)hq * (u128)seq *
                                               (u128)seq;
    u128 attn = (t * (3 * h + 2 * q + 2 * kv) + scores) * ACT_BYTES;
    u128 mlp = t * (3 * h + (c->gated_mlp ? 3 : 2) * inter) * ACT_BYTES;
    u128 logits = t * 2 * h * ACT_BYTES + t * vocab * LOGIT_BYTES;
    u128 peak = attn > mlp ? attn : mlp;
    return peak > logits ? peak : logits;
}

rt_status tp_plan_compute(const tp_model_config *cfg, const tp_plan_options *opts,
                          tp_plan *plan, rt_error *err)
{
    memset(plan, 0, sizeof *plan);
    int tp = opts->tensor_parallel;
    rt_status st = tp_split_heads(cfg->heads, cfg->kv_heads, tp, &plan->heads_per_rank,
                                  &plan->kv_heads_per_rank, err);
    if (st != RT_OK)
        return st;
    if (cfg->intermediate % tp != 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot split intermediate_size %lld over "
                            "%d ranks: the MLP splits by its intermediate dimension",
                            (long long)cfg->intermediate, tp);
    if (opts->max_batch < 1 || opts->max_seq < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "max batch must be at least 1 and max "
                            "seq not negative");
    plan->max_seq = opts->max_seq ? opts->max_seq : cfg->max_positions;
    if (plan->max_seq == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the config has no "
                            "max_position_embeddings: give a max sequence length");

    weight_counts w = count_weights(cfg, tp, plan->heads_per_rank, plan->kv_heads_per_rank);
    bool int8 = opts->dtype == TP_WEIGHTS_INT8;
    u128 weights = w.linear * (int8 ? 1 : 2) + (int8 ? w.channels * SCALE_BYTES : 0) +
                   w.other * 2;
    u128 act = activation_bytes(cfg, opts, plan->max_seq, plan->heads_per_rank,
                                plan->kv_heads_per_rank);
    u128 per_token = 2 * (u128)cfg->layers * (u128)(plan->kv_heads_per_rank * cfg->head_dim) *
                     ACT_BYTES;
    u128 fixed = weights + act + opts->reserve_bytes;
    u128 required = fixed + (u128)opts->max_batch * (u128)plan->max_seq * per_token;
    if (required > (u128)INT64_MAX)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the plan's sizes pass 2^63 bytes: check "
                            "the max batch and max sequence length");
    u128 left = opts->device_memory > fixed ? opts->device_memory - fixed : 0;

    plan->parameters = tp_model_parameters(cfg);
    plan->weight_bytes_per_rank = (uint64_t)weights;
    plan->activation_bytes_per_rank = (uint64_t)act;
    plan->reserve_bytes = opts->reserve_bytes;
    plan->kv_bytes_per_token = (uint64_t)per_token;
    plan->max_tokens_in_kv_cache = (uint64_t)(left / per_token);
    plan->kv_cache_bytes_per_rank = (uint64_t)(left / per_token * per_token);
    plan->required_bytes_per_rank = (uint64_t)required;
    plan->fits = required <= opts->device_memory;
    return RT_OK;
}
