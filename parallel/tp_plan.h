/* tp_plan.h: the tensor-parallel memory planner: from a Hugging Face config.json alone (no
 * weights) the bytes each rank needs for weights, activations and the KV cache, and
 * whether a model fits a given device memory at a given tensor-parallel size. The
 * formulas are in docs/parallel.md; the sharding rules (tp_split_heads) are the ones the
 * sharding pass applies to graphs. */
#ifndef TP_PLAN_H
#define TP_PLAN_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_status.h"

/* The architecture facts the planner needs, from config.json. */
typedef struct tp_model_config {
    char model_type[32];
    int64_t hidden, intermediate, layers, heads, kv_heads, head_dim, vocab, max_positions;
    bool tied_embeddings;
    bool gated_mlp;   /* gate, up, down (SwiGLU) instead of fc1, fc2 */
    bool layer_norm;  /* LayerNorm (weight and bias) instead of RMSNorm (weight) */
    bool qkv_bias, o_bias, mlp_bias;
} tp_model_config;

/* Parses config.json text / a config.json file. Known model_type values: llama, mistral,
 * qwen2, gemma, gpt_neox; others (and mixtures of experts) are refused with a message. */
rt_status tp_model_config_parse(const char *json_text, tp_model_config *cfg, rt_error *err);
rt_status tp_model_config_load(const char *path, tp_model_config *cfg, rt_error *err);

/* Parameters of the whole model. */
int64_t tp_model_parameters(const tp_model_config *cfg);

/* Attention heads per rank at tensor-parallel size tp. Query heads must divide by tp. KV
 * heads divide by tp, or (grouped-query attention with fewer KV heads than ranks) tp is a
 * multiple of them and each rank holds one KV head, replicated tp / kv_heads times, as
 * vLLM does. Anything else is refused with a message that says why. */
rt_status tp_split_heads(int64_t heads, int64_t kv_heads, int tp, int64_t *heads_per_rank,
                         int64_t *kv_heads_per_rank, rt_error *err);

typedef enum { TP_WEIGHTS_FP16, TP_WEIGHTS_BF16, TP_WEIGHTS_INT8 } tp_weight_dtype;

/* "fp16" | "bf16" | "int8" -> dtype; false for anything else. */
bool tp_weight_dtype_parse(const char *s, tp_weight_dtype *dtype);
const char *tp_weight_dtype_name(tp_weight_dtype dtype);

/* "80GiB", "80GB", "1.5TiB", "512MiB", "1000000" (bytes): decimal units (kB, MB, GB, TB)
 * are powers of 1000, binary ones (KiB, MiB, GiB, TiB) of 1024; case does not matter.
 * False for anything else (no unit letters but these, no negative values, no overflow). */
bool tp_parse_bytes(const char *s, uint64_t *bytes);

#define TP_RESERVE_BYTES (1ull << 30) /* CUDA context, cuBLAS workspace, NCCL buffers */

typedef struct tp_plan_options {
    int tensor_parallel;     /* ranks (>= 1) */
    tp_weight_dtype dtype;
    uint64_t device_memory;  /* bytes per device */
    int64_t max_batch;       /* sequences per forward (>= 1) */
    int64_t max_seq;         /* tokens per sequence; 0 = the model's max_position_embeddings */
    bool flash_attention;    /* attention scores are never materialized */
    uint64_t reserve_bytes;  /* per device, outside the planner's control */
} tp_plan_options;

/* Defaults: TP 1, fp16, batch 1, seq 0 (the model's), no flash, TP_RESERVE_BYTES. */
void tp_plan_options_init(tp_plan_options *opts);

typedef struct tp_plan {
    int64_t parameters;            /* whole model */
    int64_t heads_per_rank, kv_heads_per_rank;
    int64_t max_seq;               /* as used (the option or the model's default) */
    uint64_t weight_bytes_per_rank;
    uint64_t activation_bytes_per_rank;
    uint64_t reserve_bytes;
    uint64_t kv_bytes_per_token;   /* per rank, all layers, K and V */
    uint64_t kv_cache_bytes_per_rank;  /* what is left after the above, in whole tokens */
    uint64_t max_tokens_in_kv_cache;
    uint64_t required_bytes_per_rank;  /* weights + activations + reserve + KV for batch x seq */
    bool fits;                     /* required_bytes_per_rank <= device memory */
} tp_plan;

/* Plans cfg under opts. Refuses (RT_ERR_INVALID_ARG / RT_ERR_UNSUPPORTED) a split the
 * sharding rules cannot make; a model that does not fit is a plan with fits = false. */
rt_status tp_plan_compute(const tp_model_config *cfg, const tp_plan_options *opts,
                          tp_plan *plan, rt_error *err);

/* `infd-run --plan ...`: true when argv asks for the planner. */
bool tp_plan_cli_requested(int argc, char **argv);
/* Runs the planner's command line; returns the exit status (0 ok, 1 rejected, 2 usage). */
int tp_plan_cli_main(int argc, char **argv);

#endif
