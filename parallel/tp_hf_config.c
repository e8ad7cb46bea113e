/* tp_hf_config.c: reads the architecture of a decoder language model from a Hugging Face
 * config.json (jansson) into tp_model_config, for the memory planner. What config.json
 * leaves implicit (gated MLP, norm kind, biases, tied embeddings by default) comes from a
 * table of the model families we know; anything else is refused rather than guessed. */
#include <jansson.h>
#include <stdio.h>
#include <string.h>

#include "tp_plan.h"

#define MAX_DIM (1ll << 30) /* bound on every size, so that the planner's sums cannot overflow */

typedef struct {
    const char *type;
    bool gated_mlp, layer_norm, qkv_bias, o_bias, mlp_bias, tied;
} family;

static const family families[] = {
    /* model_type  gated  LayerNorm qkv_bias o_bias mlp_bias tied (default) */
    {"llama",      true,  false,    false,   false, false,   false},
    {"mistral",    true,  false,    false,   false, false,   false},
    {"qwen2",      true,  false,    true,    false, false,   false},
    {"gemma",      true,  false,    false,   false, false,   true},
    {"gpt_neox",   false, true,     true,    true,  true,    false},
};

static const family *find_family(const char *type)
{
    for (size_t i = 0; i < sizeof families / sizeof families[0]; i++)
        if (strcmp(families[i].type, type) == 0)
            return &families[i];
    return NULL;
}

/* Reads key as an integer in [1, MAX_DIM]; a missing (or null) key gives def, and def < 0
 * means the key is required. */
static rt_status get_dim(const json_t *root, const char *key, int64_t def, int64_t *out,
                         rt_error *err)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v)) {
        if (def < 0)
            return rt_error_set(err, RT_ERR_MODEL, "config.json has no '%s'", key);
        *out = def;
        return RT_OK;
    }
    if (!json_is_integer(v) || json_integer_value(v) < 1 || json_integer_value(v) > MAX_DIM)
        return rt_error_set(err, RT_ERR_MODEL, "config.json: '%s' must be an integer from 1 "
                            "to %lld", key, MAX_DIM);
    *out = json_integer_value(v);
    return RT_OK;
}

static rt_status get_bool(const json_t *root, const char *key, bool *inout, rt_error *err)
{
    const json_t *v = json_object_get(root, key);
    if (!v || json_is_null(v))
        return RT_OK;
    if (!json_is_boolean(v))
        return rt_error_set(err, RT_ERR_MODEL, "config.json: '%s' must be true or false", key);
    *inout = json_is_true(v);
    return RT_OK;
}

static rt_status from_json(const json_t *root, tp_model_config *cfg, rt_error *err)
{
    memset(cfg, 0, sizeof *cfg);
    if (!json_is_object(root))
        return rt_error_set(err, RT_ERR_MODEL, "config.json is not a JSON object");
    const char *type = json_string_value(json_object_get(root, "model_type"));
    if (!type)
        return rt_error_set(err, RT_ERR_MODEL, "config.json has no 'model_type' string");
    const family *f = find_family(type);
    if (!f)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "model_type '%s' is not one the planner "
                            "knows (llama, mistral, qwen2, gemma, gpt_neox)", type);
    snprintf(cfg->model_type, sizeof cfg->model_type, "%s", type);
    cfg->gated_mlp = f->gated_mlp;
    cfg->layer_norm = f->layer_norm;
    cfg->qkv_bias = f->qkv_bias;
    cfg->o_bias = f->o_bias;
    cfg->mlp_bias = f->mlp_bias;
    cfg->tied_embeddings = f->tied;
    const struct {
        const char *key;
        int64_t def, *out; /* def: -1 required, 0 absent (filled in below) */
    } dims[] = {{"hidden_size", -1, &cfg->hidden},
                {"intermediate_size", -1, &cfg->intermediate},
                {"num_hidden_layers", -1, &cfg->layers},
                {"num_attention_heads", -1, &cfg->heads},
                {"vocab_size", -1, &cfg->vocab},
                {"num_key_value_heads", 0, &cfg->kv_heads},
                {"head_dim", 0, &cfg->head_dim},
                {"max_position_embeddings", 0, &cfg->max_positions}};
    const struct {
        const char *key;
        bool *out;
    } flags[] = {{"tie_word_embeddings", &cfg->tied_embeddings},
                 {"attention_bias", &cfg->o_bias},
                 {"mlp_bias", &cfg->mlp_bias}};
    rt_status st = RT_OK;
    for (size_t i = 0; st == RT_OK && i < sizeof dims / sizeof dims[0]; i++)
        st = get_dim(root, dims[i].key, dims[i].def, dims[i].out, err);
    for (size_t i = 0; st == RT_OK && i < sizeof flags / sizeof flags[0]; i++)
        st = get_bool(root, flags[i].key, flags[i].out, err);
    if (st != RT_OK)
        return st;
    if (json_is_boolean(json_object_get(root, "attention_bias"))) /* llama: q, k, v and o */
        cfg->qkv_bias = cfg->o_bias;
    if (!cfg->kv_heads)
        cfg->kv_heads = cfg->heads;
    if (!cfg->head_dim && cfg->hidden % cfg->heads != 0)
        return rt_error_set(err, RT_ERR_MODEL, "config.json: hidden_size %lld is not a "
                            "multiple of num_attention_heads %lld and there is no head_dim",
                            (long long)cfg->hidden, (long long)cfg->heads);
    if (!cfg->head_dim)
        cfg->head_dim = cfg->hidden / cfg->heads;
    if (cfg->heads % cfg->kv_heads != 0)
        return rt_error_set(err, RT_ERR_MODEL, "config.json: num_attention_heads %lld is not "
                            "a multiple of num_key_value_heads %lld", (long long)cfg->heads,
                            (long long)cfg->kv_heads);
    return RT_OK;
}

rt_status tp_model_config_parse(const char *json_text, tp_model_config *cfg, rt_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(json_text, 0, &jerr);
    if (!root)
        return rt_error_set(err, RT_ERR_PARSE, "config.json: line %d: %s", jerr.line,
                            jerr.text);
    rt_status st = from_json(root, cfg, err);
    json_decref(root);
    return st;
}

rt_status tp_model_config_load(const char *path, tp_model_config *cfg, rt_error *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root && jerr.line < 0) /* jansson's text names the file */
        return rt_error_set(err, RT_ERR_IO, "%s", jerr.text);
    if (!root)
        return rt_error_set(err, RT_ERR_PARSE, "%s: line %d: %s", path, jerr.line, jerr.text);
    rt_status st = from_json(root, cfg, err);
    json_decref(root);
    if (st != RT_OK)
        rt_error_prefix(err, "%s: ", path);
    return st;
}
