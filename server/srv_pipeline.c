/* srv_pipeline.c: parsing, validation against the model, and execution of the pre- and
 * post-processing steps a model config declares (spam_features, threshold). */
#include "srv_pipeline.h"

#include <stdlib.h>
#include <string.h>

#include "rt_featurize_spam.h"
#include "srv_model_config.h"
#include "srv_request.h"
#include "srv_types.h"

/* ---- parsing ---- */

/* obj[key] as a non-empty string (a view into obj), or NULL with err set. */
static const char *need_string(json_t *obj, const char *key, const char *what, rt_error *err)
{
    const char *s = json_string_value(json_object_get(obj, key));
    if (!s || !s[0])
        rt_error_set(err, RT_ERR_INVALID_ARG, "%s.%s must be a non-empty string", what, key);
    return s && s[0] ? s : NULL;
}

/* The step's kind, input and output; names copied into *in / *out. */
static rt_status parse_step(json_t *step, const char *what, const char *kind,
                            const char *const *allowed, char **in, char **out, rt_error *err)
{
    if (!json_is_object(step))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s must be an object", what);
    rt_status st = srv_json_only_keys(step, allowed, what, err);
    if (st != RT_OK)
        return st;
    const char *k = json_string_value(json_object_get(step, "kind"));
    if (!k || strcmp(k, kind) != 0)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "%s.kind must be \"%s\", not %s%s%s", what,
                            kind, k ? "\"" : "", k ? k : "missing", k ? "\"" : "");
    const char *i = need_string(step, "input", what, err), *o;
    if (!i || !(o = need_string(step, "output", what, err)))
        return RT_ERR_INVALID_ARG;
    if (strcmp(i, o) == 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input and output must have different names",
                            what);
    *in = strdup(i);
    *out = strdup(o);
    return *in && *out ? RT_OK : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
}

static rt_status parse_rules(srv_pipeline *p, json_t *post, rt_error *err)
{
    json_t *rules = json_object_get(post, "rules");
    if (!json_is_array(rules) || json_array_size(rules) > RT_RULES_MAX)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess.rules must be an array of at most %d "
                            "{\"min\": number, \"label\": string}", RT_RULES_MAX);
    int n = (int)json_array_size(rules);
    const char *labels[RT_RULES_MAX];
    static const char *const rule_keys[] = {"min", "label", NULL};
    for (int i = 0; i < n; i++) {
        json_t *r = json_array_get(rules, (size_t)i);
        json_t *min = json_object_get(r, "min");
        labels[i] = json_string_value(json_object_get(r, "label"));
        if (!json_is_object(r) || !json_is_number(min) || !labels[i])
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "infd.postprocess.rules[%d] must be {\"min\": number, \"label\": string}", i);
        rt_status st = srv_json_only_keys(r, rule_keys, "infd.postprocess.rules[]", err);
        if (st != RT_OK)
            return st;
        p->rule_min[i] = json_number_value(min);
    }
    json_t *fallback = json_object_get(post, "default"), *nan = json_object_get(post, "nan");
    if (!json_is_string(fallback) || (nan && !json_is_string(nan)))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess needs a string 'default' (and 'nan', if given, is a string)");
    rt_status st = rt_rules_init(&p->rules, n, p->rule_min, labels, json_string_value(fallback),
                                 json_string_value(nan), err);
    return st == RT_OK ? RT_OK : rt_error_prefix(err, "infd.postprocess: ");
}

rt_status srv_pipeline_parse(srv_pipeline *p, json_t *infd, rt_error *err)
{
    static const char *const pre_keys[] = {"kind", "input", "output", NULL};
    static const char *const post_keys[] = {"kind", "input", "output", "rules", "default", "nan",
                                            NULL};
    json_t *pre = json_object_get(infd, "preprocess"), *post = json_object_get(infd, "postprocess");
    rt_status st = RT_OK;
    if (pre) {
        p->pre = true;
        st = parse_step(pre, "infd.preprocess", "spam_features", pre_keys, &p->pre_input,
                        &p->pre_output, err);
    }
    if (st == RT_OK && post) {
        p->post = true;
        st = parse_step(post, "infd.postprocess", "threshold", post_keys, &p->post_input,
                        &p->post_output, err);
        if (st == RT_OK)
            st = parse_rules(p, post, err);
    }
    return st;
}

void srv_pipeline_to_json(const srv_pipeline *p, json_t *infd)
{
    if (p->pre)
        json_object_set_new(infd, "preprocess",
                            json_pack("{s:s, s:s, s:s}", "kind", "spam_features", "input",
                                      p->pre_input, "output", p->pre_output));
    if (!p->post)
        return;
    json_t *rules = json_array();
    for (int i = 0; i < p->rules.n; i++)
        json_array_append_new(rules, json_pack("{s:f, s:s}", "min", p->rule_min[i], "label",
                                               p->rules.label[i]));
    json_object_set_new(infd, "postprocess",
                        json_pack("{s:s, s:s, s:s, s:o, s:s, s:s}", "kind", "threshold", "input",
                                  p->post_input, "output", p->post_output, "rules", rules,
                                  "default", p->rules.fallback, "nan", p->rules.nan_label));
}

void srv_pipeline_free(srv_pipeline *p)
{
    free(p->pre_input);
    free(p->pre_output);
    free(p->post_input);
    free(p->post_output);
    rt_rules_free(&p->rules);
    memset(p, 0, sizeof *p);
}

/* ---- the client's and the model's inputs and outputs ---- */

static int find_io(const srv_io *ios, int n, const char *name)
{
    for (int i = 0; i < n; i++)
        if (strcmp(ios[i].name, name) == 0)
            return i;
    return -1;
}

static rt_status rename_io(srv_io *io, const char *name, rt_error *err)
{
    char *copy = strdup(name);
    if (!copy)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    free(io->name);
    io->name = copy;
    return RT_OK;
}

static bool same_dims(const srv_io *a, const srv_io *b)
{
    return a->rank == b->rank && memcmp(a->dims, b->dims, sizeof(int64_t) * (size_t)a->rank) == 0;
}

/* Declared text input -> the features input it becomes (FP32, one more dim of 57). */
static rt_status pre_to_model(srv_model_config *cfg, const srv_pipeline *p, rt_error *err)
{
    int i = find_io(cfg->inputs, cfg->n_inputs, p->pre_input);
    if (i < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.preprocess.input '%s' is not among the config's inputs", p->pre_input);
    if (find_io(cfg->inputs, cfg->n_inputs, p->pre_output) >= 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "input '%s' is made by infd.preprocess from '%s': declare only '%s'",
                            p->pre_output, p->pre_input, p->pre_input);
    srv_io *io = &cfg->inputs[i];
    if (io->dtype != RT_DTYPE_BYTES)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' of infd.preprocess must be TYPE_STRING",
                            io->name);
    if (io->rank + 1 + (cfg->max_batch_size > 0) > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "input '%s' of infd.preprocess has too many dims",
                            io->name);
    io->dtype = RT_DTYPE_F32;
    io->dims[io->rank++] = RT_SPAM_N_FEATURES;
    return rename_io(io, p->pre_output, err);
}

/* Declared action output: checked against its score output, then set aside. */
static rt_status post_to_model(srv_model_config *cfg, const srv_pipeline *p, rt_error *err)
{
    int o = find_io(cfg->outputs, cfg->n_outputs, p->post_output);
    int in = find_io(cfg->outputs, cfg->n_outputs, p->post_input);
    if (o < 0 || in < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess %s '%s' is not among the config's outputs",
                            o < 0 ? "output" : "input", o < 0 ? p->post_output : p->post_input);
    if (cfg->outputs[o].dtype != RT_DTYPE_BYTES || !same_dims(&cfg->outputs[o], &cfg->outputs[in]))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "output '%s' of infd.postprocess must be TYPE_STRING with the dims of '%s'",
                            p->post_output, p->post_input);
    free(cfg->outputs[o].name);
    memmove(&cfg->outputs[o], &cfg->outputs[o + 1], sizeof *cfg->outputs * (size_t)(cfg->n_outputs - o));
    cfg->n_outputs--;
    return RT_OK;
}

rt_status srv_pipeline_to_model_ios(srv_model_config *cfg, rt_error *err)
{
    const srv_pipeline *p = &cfg->pipeline;
    rt_status st = RT_OK;
    if (p->pre && cfg->n_inputs > 0)
        st = pre_to_model(cfg, p, err);
    if (st == RT_OK && p->post && cfg->n_outputs > 0)
        st = post_to_model(cfg, p, err);
    return st;
}

static rt_status pre_to_client(srv_model_config *cfg, srv_pipeline *p, rt_error *err)
{
    int i = find_io(cfg->inputs, cfg->n_inputs, p->pre_output);
    if (i < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.preprocess.output '%s' is not an input of the model", p->pre_output);
    if (find_io(cfg->inputs, cfg->n_inputs, p->pre_input) >= 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.preprocess.input '%s' is also an input of the model", p->pre_input);
    srv_io *io = &cfg->inputs[i];
    int64_t last = io->rank > 0 ? io->dims[io->rank - 1] : 0;
    if (io->dtype != RT_DTYPE_F32 || (last != -1 && last != RT_SPAM_N_FEATURES))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.preprocess spam_features makes FP32 [..., %d]; model input '%s' "
                            "is %s with %s", RT_SPAM_N_FEATURES, io->name,
                            srv_dtype_kserve_name(io->dtype),
                            io->rank > 0 ? "another last dim" : "no dims");
    io->dtype = RT_DTYPE_BYTES;
    io->rank--;
    p->pre_io = i;
    return rename_io(io, p->pre_input, err);
}

static rt_status post_to_client(srv_model_config *cfg, srv_pipeline *p, rt_error *err)
{
    int in = find_io(cfg->outputs, cfg->n_outputs, p->post_input);
    if (in < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess.input '%s' is not an output of the model", p->post_input);
    if (cfg->outputs[in].dtype != RT_DTYPE_F32)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess threshold needs an FP32 score; model output '%s' is %s",
                            p->post_input, srv_dtype_kserve_name(cfg->outputs[in].dtype));
    if (find_io(cfg->outputs, cfg->n_outputs, p->post_output) >= 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "infd.postprocess.output '%s' is also an output of the model", p->post_output);
    srv_io *grown = realloc(cfg->outputs, sizeof *grown * (size_t)(cfg->n_outputs + 2));
    if (!grown)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    cfg->outputs = grown;
    srv_io *io = &cfg->outputs[cfg->n_outputs];
    *io = cfg->outputs[in];
    io->name = NULL;
    io->dtype = RT_DTYPE_BYTES;
    io->graph_index = cfg->n_graph_outputs; /* the slot after the model's outputs */
    memset(io + 1, 0, sizeof *io);
    p->post_in_io = in;
    p->post_out_io = cfg->n_outputs++;
    return rename_io(io, p->post_output, err);
}

rt_status srv_pipeline_to_client_ios(srv_model_config *cfg, rt_error *err)
{
    srv_pipeline *p = &cfg->pipeline;
    rt_status st = RT_OK;
    cfg->n_graph_outputs = cfg->n_outputs;
    if (p->pre)
        st = pre_to_client(cfg, p, err);
    if (st == RT_OK && p->post)
        st = post_to_client(cfg, p, err);
    return st;
}

/* ---- execution ---- */

bool srv_pipeline_pre(const srv_model_config *cfg, srv_request *r)
{
    const srv_pipeline *p = &cfg->pipeline;
    if (!p->pre)
        return true;
    int gi = cfg->inputs[p->pre_io].graph_index;
    rt_tensor *text = r->inputs[gi];
    rt_shape shape = text->shape;
    shape.dims[shape.rank++] = RT_SPAM_N_FEATURES;
    rt_error err;
    rt_tensor *features = rt_tensor_create(RT_DTYPE_F32, &shape, &err);
    if (!features)
        return srv_request_fail(r, 500, SRV_FAIL_OTHER, "input '%s': %s", p->pre_input, err.text);
    const rt_str *s = text->data;
    float *out = features->data;
    for (int64_t i = 0, n = rt_tensor_numel(text); i < n; i++)
        rt_featurize_spam(s[i].ptr, s[i].len, out + i * RT_SPAM_N_FEATURES);
    rt_tensor_free(text);
    r->inputs[gi] = features;
    return true;
}

bool srv_pipeline_post(const srv_model_config *cfg, srv_request *r)
{
    const srv_pipeline *p = &cfg->pipeline;
    bool wanted = false;
    for (int k = 0; p->post && k < r->n_sel; k++)
        wanted = wanted || r->sel[k].index == p->post_out_io;
    if (!wanted)
        return true;
    const rt_tensor *score = r->outputs[cfg->outputs[p->post_in_io].graph_index];
    if (score->dtype != RT_DTYPE_F32)
        return srv_request_fail(r, 500, SRV_FAIL_BACKEND, "model output '%s' is %s, not FP32",
                                p->post_input, srv_dtype_kserve_name(score->dtype));
    rt_error err;
    rt_tensor *action = rt_tensor_create(RT_DTYPE_BYTES, &score->shape, &err);
    if (!action)
        return srv_request_fail(r, 500, SRV_FAIL_OTHER, "output '%s': %s", p->post_output, err.text);
    /* The labels are borrowed from the config: the request is freed before the model
     * reference that keeps the config alive (srv_api_call_cleanup). */
    rt_str *labels = action->data;
    const float *x = score->data;
    for (int64_t i = 0, n = rt_tensor_numel(score); i < n; i++) {
        labels[i].ptr = rt_rules_apply(&p->rules, x[i]);
        labels[i].len = strlen(labels[i].ptr);
    }
    r->outputs[cfg->outputs[p->post_out_io].graph_index] = action;
    return true;
}
