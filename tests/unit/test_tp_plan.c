/* test_tp_plan.c: the tensor-parallel memory planner on Llama-2 7B, 13B and 70B (their
 * public config.json values, written here): parameter counts against the published ones
 * and a formula written out here, weight, activation and KV bytes per rank computed
 * independently, 70B in fp16 not fitting one 80 GiB device but fitting two, grouped-query
 * KV heads replicated when there are fewer than ranks, refusals of impossible splits, the
 * config.json reader and the size parser. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <string.h>

#include "tp_plan.h"

#define GIB (1ull << 30)

typedef struct {
    const char *name;
    int64_t hidden, inter, layers, heads, kv_heads, published_params;
} llama2;

static const llama2 models[] = {
    {"7B", 4096, 11008, 32, 32, 32, 6738415616ll},
    {"13B", 5120, 13824, 40, 40, 40, 13015864320ll},
    {"70B", 8192, 28672, 80, 64, 8, 68976648192ll},
};
enum { L7B, L13B, L70B };
static const int64_t VOCAB = 32000, HEAD_DIM = 128, SEQ = 4096;

static tp_model_config load(const llama2 *m)
{
    char json[1024];
    snprintf(json, sizeof json,
             "{\"architectures\": [\"LlamaForCausalLM\"], \"hidden_act\": \"silu\", "
             "\"hidden_size\": %lld, \"intermediate_size\": %lld, "
             "\"max_position_embeddings\": 4096, \"model_type\": \"llama\", "
             "\"num_attention_heads\": %lld, \"num_hidden_layers\": %lld, "
             "\"num_key_value_heads\": %lld, \"rms_norm_eps\": 1e-05, "
             "\"tie_word_embeddings\": false, \"torch_dtype\": \"float16\", "
             "\"vocab_size\": 32000}",
             (long long)m->hidden, (long long)m->inter, (long long)m->heads,
             (long long)m->layers, (long long)m->kv_heads);
    tp_model_config cfg;
    rt_error err;
    assert_int_equal(tp_model_config_parse(json, &cfg, &err), RT_OK);
    return cfg;
}

static tp_plan plan_for(const tp_model_config *cfg, int tp, tp_weight_dtype dt, bool flash)
{
    tp_plan_options o;
    tp_plan_options_init(&o);
    o.tensor_parallel = tp;
    o.dtype = dt;
    o.device_memory = 80 * GIB;
    o.flash_attention = flash;
    tp_plan p;
    rt_error err;
    assert_int_equal(tp_plan_compute(cfg, &o, &p, &err), RT_OK);
    return p;
}

/* Llama weights per rank in elements: embedding and lm_head rows split by vocabulary,
 * q/k/v/o split by heads (at least one KV head), gate/up/down by intermediate, the two
 * norms of each layer and the final norm whole. */
static int64_t llama_rank_elements(const llama2 *m, int tp)
{
    int64_t kv_rank = m->kv_heads >= tp ? m->kv_heads / tp : 1;
    int64_t attn = 2 * m->hidden * m->hidden / tp + 2 * m->hidden * kv_rank * HEAD_DIM;
    int64_t mlp = 3 * m->hidden * (m->inter / tp);
    int64_t vocab_rows = (VOCAB + tp - 1) / tp;
    return 2 * vocab_rows * m->hidden + m->layers * (attn + mlp + 2 * m->hidden) + m->hidden;
}

static void test_parameters_match_published_counts(void **state)
{
    (void)state;
    for (int i = 0; i < 3; i++) {
        tp_model_config cfg = load(&models[i]);
        assert_int_equal(tp_model_parameters(&cfg), models[i].published_params);
        assert_int_equal(llama_rank_elements(&models[i], 1), models[i].published_params);
        assert_int_equal(cfg.head_dim, HEAD_DIM);
        assert_true(cfg.gated_mlp);
    }
}

static void test_fp16_weight_bytes_per_rank(void **state)
{
    (void)state;
    tp_model_config c7 = load(&models[L7B]);
    tp_plan p = plan_for(&c7, 1, TP_WEIGHTS_FP16, false);
    /* 6.74e9 parameters -> ~13.5 GB */
    assert_true(p.weight_bytes_per_rank > 13400000000ull &&
                p.weight_bytes_per_rank < 13550000000ull);
    for (int i = 0; i < 3; i++) {
        tp_model_config cfg = load(&models[i]);
        for (int tp = 1; tp <= 8; tp *= 2) {
            tp_plan q = plan_for(&cfg, tp, TP_WEIGHTS_FP16, false);
            assert_int_equal(q.weight_bytes_per_rank, 2 * llama_rank_elements(&models[i], tp));
            tp_plan b = plan_for(&cfg, tp, TP_WEIGHTS_BF16, false);
            assert_int_equal(b.weight_bytes_per_rank, q.weight_bytes_per_rank);
        }
    }
}

/* int8: matrices at 1 byte plus an fp16 scale per output channel; embeddings, lm_head and
 * norms stay fp16. */
static void test_int8_weight_bytes(void **state)
{
    (void)state;
    const llama2 *m = &models[L7B];
    tp_model_config cfg = load(m);
    int64_t h = m->hidden, inter = m->inter, layers = m->layers;
    int64_t matrices = layers * (4 * h * h + 3 * h * inter);
    int64_t channels = layers * (4 * h + 2 * inter + h);
    int64_t other = 2 * VOCAB * h + layers * 2 * h + h;
    tp_plan p = plan_for(&cfg, 1, TP_WEIGHTS_INT8, false);
    assert_int_equal(p.weight_bytes_per_rank, matrices + 2 * channels + 2 * other);
    assert_true(p.weight_bytes_per_rank < 7300000000ull);
}

/* Activations for batch 1 x 4096 tokens at TP 1, written out for 7B: the attention block
 * (x, normed x, q, k, v, context, output, and two 32 x 4096 x 4096 score tensors) is the
 * peak; with flash attention the fp32 logits over 32000 tokens are. */
static void test_activation_bytes(void **state)
{
    (void)state;
    tp_model_config cfg = load(&models[L7B]);
    int64_t t = SEQ, h = 4096;
    int64_t attn = t * (3 * h + 2 * h + 2 * h) * 2 + 2 * 32 * SEQ * SEQ * 2;
    int64_t mlp = t * (3 * h + 3 * 11008) * 2;
    int64_t logits = t * 2 * h * 2 + t * VOCAB * 4;
    assert_true(attn > mlp && attn > logits && logits > mlp);
    assert_int_equal(plan_for(&cfg, 1, TP_WEIGHTS_FP16, false).activation_bytes_per_rank, attn);
    assert_int_equal(plan_for(&cfg, 1, TP_WEIGHTS_FP16, true).activation_bytes_per_rank, logits);
}

static void test_kv_cache_and_fit(void **state)
{
    (void)state;
    tp_model_config cfg = load(&models[L7B]);
    tp_plan p = plan_for(&cfg, 1, TP_WEIGHTS_FP16, false);
    uint64_t per_token = 2 * 32 * 32 * HEAD_DIM * 2; /* K and V, 32 layers, 32 heads */
    assert_int_equal(p.kv_bytes_per_token, per_token);
    uint64_t left = 80 * GIB - p.weight_bytes_per_rank - p.activation_bytes_per_rank - GIB;
    assert_int_equal(p.max_tokens_in_kv_cache, left / per_token);
    assert_int_equal(p.kv_cache_bytes_per_rank, left / per_token * per_token);
    assert_int_equal(p.reserve_bytes, GIB);
    assert_int_equal(p.max_seq, SEQ);
    assert_true(p.fits);
    assert_int_equal(p.required_bytes_per_rank, 80 * GIB - left + SEQ * per_token);
}

/* 70B in fp16: 138 GB of weights cannot fit one 80 GiB device whatever the batch; split
 * over two, each rank holds half and keeps room for tens of thousands of KV tokens. */
static void test_70b_needs_two_80gib_devices(void **state)
{
    (void)state;
    tp_model_config cfg = load(&models[L70B]);
    tp_plan one = plan_for(&cfg, 1, TP_WEIGHTS_FP16, false);
    assert_false(one.fits);
    assert_true(one.weight_bytes_per_rank > 80 * GIB);
    assert_int_equal(one.max_tokens_in_kv_cache, 0);
    assert_int_equal(one.kv_cache_bytes_per_rank, 0);
    tp_plan two = plan_for(&cfg, 2, TP_WEIGHTS_FP16, false);
    assert_true(two.fits);
    assert_true(two.required_bytes_per_rank <= 80 * GIB);
    assert_true(two.weight_bytes_per_rank < 65 * GIB);
    assert_true(two.max_tokens_in_kv_cache >= (uint64_t)SEQ);
    assert_int_equal(two.kv_heads_per_rank, 4);
    /* int8 weights fit on one device */
    assert_true(plan_for(&cfg, 1, TP_WEIGHTS_INT8, false).fits);
}

/* 8 KV heads over 16 ranks: each rank keeps one KV head (each replicated twice). */
static void test_gqa_kv_heads_replicated_beyond_their_count(void **state)
{
    (void)state;
    tp_model_config cfg = load(&models[L70B]);
    tp_plan p8 = plan_for(&cfg, 8, TP_WEIGHTS_FP16, false);
    tp_plan p16 = plan_for(&cfg, 16, TP_WEIGHTS_FP16, false);
    assert_int_equal(p8.kv_heads_per_rank, 1);
    assert_int_equal(p16.kv_heads_per_rank, 1);
    assert_int_equal(p16.heads_per_rank, 4);
    assert_int_equal(p16.kv_bytes_per_token, p8.kv_bytes_per_token);
    assert_int_equal(p16.kv_bytes_per_token, 2 * 80 * 1 * HEAD_DIM * 2);
}

static void expect_refusal(const tp_model_config *cfg, int tp, const char *needle)
{
    tp_plan_options o;
    tp_plan_options_init(&o);
    o.tensor_parallel = tp;
    o.device_memory = 80 * GIB;
    tp_plan p;
    rt_error err = {0};
    assert_int_equal(tp_plan_compute(cfg, &o, &p, &err), RT_ERR_INVALID_ARG);
    if (!strstr(err.text, needle))
        fail_msg("'%s' does not say '%s'", err.text, needle);
}

static void test_refuses_splits_that_do_not_divide(void **state)
{
    (void)state;
    tp_model_config c13 = load(&models[L13B]);
    expect_refusal(&c13, 3, "40 attention heads over 3 ranks");
    expect_refusal(&c13, 16, "40 attention heads over 16 ranks");
    tp_model_config gqa = load(&(llama2){"x", 6144, 11008, 32, 48, 12, 0});
    expect_refusal(&gqa, 8, "12 KV heads over 8 ranks");
    tp_model_config odd = load(&(llama2){"x", 4096, 1000, 32, 16, 16, 0});
    expect_refusal(&odd, 16, "intermediate_size 1000 over 16 ranks");
}

static void test_config_reader(void **state)
{
    (void)state;
    tp_model_config cfg;
    rt_error err;
    /* no num_key_value_heads: as many as heads; explicit head_dim; tied by default */
    assert_int_equal(tp_model_config_parse("{\"model_type\": \"gemma\", \"hidden_size\": 3072, "
                                           "\"intermediate_size\": 24576, \"num_hidden_layers\": "
                                           "28, \"num_attention_heads\": 16, \"head_dim\": 256, "
                                           "\"vocab_size\": 256000}", &cfg, &err), RT_OK);
    assert_int_equal(cfg.kv_heads, 16);
    assert_int_equal(cfg.head_dim, 256);
    assert_true(cfg.tied_embeddings);
    assert_int_equal(cfg.max_positions, 0);
    /* gemma-7b: 8.54e9 parameters with its 256000-row embedding counted once */
    assert_int_equal(tp_model_parameters(&cfg),
                     256000ll * 3072 + 28ll * (2 * 3072 * 4096 + 2 * 3072 * 4096 +
                                               3ll * 3072 * 24576 + 2 * 3072) + 3072);
    tp_plan_options o;
    tp_plan_options_init(&o);
    o.device_memory = 80 * GIB;
    tp_plan p;
    assert_int_equal(tp_plan_compute(&cfg, &o, &p, &err), RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "max_position_embeddings"));
    o.max_seq = 1024;
    assert_int_equal(tp_plan_compute(&cfg, &o, &p, &err), RT_OK);
    assert_int_equal(p.max_seq, 1024);

    /* Pythia-160m (gpt_neox): fc1/fc2 with biases, LayerNorms, untied: 162,322,944 */
    assert_int_equal(tp_model_config_parse("{\"model_type\": \"gpt_neox\", \"hidden_size\": "
                                           "768, \"intermediate_size\": 3072, "
                                           "\"num_hidden_layers\": 12, \"num_attention_heads\""
                                           ": 12, \"vocab_size\": 50304, "
                                           "\"max_position_embeddings\": 2048}", &cfg, &err),
                     RT_OK);
    assert_false(cfg.gated_mlp);
    assert_int_equal(tp_model_parameters(&cfg), 162322944);
    /* llama's attention_bias puts biases on q, k, v and o */
    assert_int_equal(tp_model_config_parse("{\"model_type\": \"llama\", \"hidden_size\": 64, "
                                           "\"intermediate_size\": 128, \"num_hidden_layers\": "
                                           "1, \"num_attention_heads\": 4, \"vocab_size\": 10, "
                                           "\"attention_bias\": true}", &cfg, &err), RT_OK);
    assert_true(cfg.qkv_bias && cfg.o_bias && !cfg.mlp_bias);
    assert_int_equal(tp_model_parameters(&cfg),
                     2 * 10 * 64 + 4 * 64 * 64 + 4 * 64 + 3 * 64 * 128 + 2 * 64 + 64);

    assert_int_equal(tp_model_config_parse("{\"model_type\": \"llama\", \"intermediate_size\": "
                                           "8, \"num_hidden_layers\": 1, \"num_attention_heads\""
                                           ": 1, \"vocab_size\": 8}", &cfg, &err), RT_ERR_MODEL);
    assert_non_null(strstr(err.text, "hidden_size"));
    assert_int_equal(tp_model_config_parse("{\"model_type\": \"mixtral\"}", &cfg, &err),
                     RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.text, "mixtral"));
    assert_int_equal(tp_model_config_parse("{\"model_type\": ", &cfg, &err), RT_ERR_PARSE);
    assert_int_equal(tp_model_config_parse("{\"model_type\": \"llama\", \"hidden_size\": -4}",
                                           &cfg, &err), RT_ERR_MODEL);
    assert_int_equal(tp_model_config_load("/nonexistent/config.json", &cfg, &err), RT_ERR_IO);
    assert_non_null(strstr(err.text, "/nonexistent/config.json"));
}

static void test_parse_bytes(void **state)
{
    (void)state;
    const struct {
        const char *text;
        uint64_t bytes;
    } good[] = {{"80GiB", 80 * GIB},         {"80GB", 80000000000ull},
                {"1.5TiB", 3ull << 39},      {"512mib", 512ull << 20},
                {"1000", 1000},              {"4096B", 4096},
                {"0.5KiB", 512},             {"2tb", 2000000000000ull}};
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint64_t b = 0;
        assert_true(tp_parse_bytes(good[i].text, &b));
        assert_int_equal(b, good[i].bytes);
    }
    const char *bad[] = {"", "GiB", "80G", "80 GiB", "-1GiB", "1.2.3GB", "1e3", "0x10",
                         "80GiBs", ".", "99999999999TiB"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint64_t b;
        if (tp_parse_bytes(bad[i], &b))
            fail_msg("'%s' was accepted", bad[i]);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parameters_match_published_counts),
        cmocka_unit_test(test_fp16_weight_bytes_per_rank),
        cmocka_unit_test(test_int8_weight_bytes),
        cmocka_unit_test(test_activation_bytes),
        cmocka_unit_test(test_kv_cache_and_fit),
        cmocka_unit_test(test_70b_needs_two_80gib_devices),
        cmocka_unit_test(test_gqa_kv_heads_replicated_beyond_their_count),
        cmocka_unit_test(test_refuses_splits_that_do_not_divide),
        cmocka_unit_test(test_config_reader),
        cmocka_unit_test(test_parse_bytes),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
