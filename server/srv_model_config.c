/* srv_model_config.c: Triton ModelConfig JSON <-> srv_model_config, and completion of the
 * config from the ONNX graph. Integer fields accept numbers or decimal strings (protobuf's
 * JSON mapping writes 64-bit integers as strings); output follows the same mapping. */
#include "srv_model_config.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "srv_types.h"

/* Reads obj[key] as an integer in [lo, hi]; absent -> *out unchanged. */
static rt_status get_int(json_t *obj, const char *key, int64_t lo, int64_t hi, int64_t *out,
                         rt_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return RT_OK;
    int64_t x;
    if (json_is_integer(v)) {
        x = json_integer_value(v);
    } else if (json_is_string(v)) {
        char *end;
        errno = 0;
        x = strtoll(json_string_value(v), &end, 10);
        if (errno || end == json_string_value(v) || *end)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' is not an integer", key);
    } else {
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' must be an integer", key);
    }
    if (x < lo || x > hi)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' = %lld is out of range [%lld, %lld]",
                            key, (long long)x, (long long)lo, (long long)hi);
    *out = x;
    return RT_OK;
}

static rt_status get_bool(json_t *obj, const char *key, bool *out, rt_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return RT_OK;
    if (!json_is_boolean(v))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' must be true or false", key);
    *out = json_is_true(v);
    return RT_OK;
}

/* Reads an array of integers (numbers or strings) into out[0..max). */
static rt_status get_int_array(json_t *obj, const char *key, int64_t lo, int max, int64_t *out,
                               int *n, rt_error *err)
{
    json_t *arr = json_object_get(obj, key);
    if (!arr)
        return RT_OK;
    if (!json_is_array(arr) || (int)json_array_size(arr) > max)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' must be an array of at most %d integers",
                            key, max);
    *n = (int)json_array_size(arr);
    for (int i = 0; i < *n; i++) {
        json_t *wrap = json_pack("{s:O}", key, json_array_get(arr, i));
        rt_status st = wrap ? get_int(wrap, key, lo, INT64_MAX, &out[i], err)
                            : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        json_decref(wrap);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

static rt_status dup_string(json_t *obj, const char *key, char **out, rt_error *err)
{
    json_t *v = json_object_get(obj, key);
    if (!v)
        return RT_OK;
    if (!json_is_string(v))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' must be a string", key);
    free(*out);
    *out = strdup(json_string_value(v));
    return *out ? RT_OK : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
}

rt_status srv_json_only_keys(json_t *obj, const char *const *allowed, const char *what,
                             rt_error *err)
{
    const char *key;
    json_t *v;
    json_object_foreach(obj, key, v) {
        bool ok = false;
        for (int i = 0; allowed[i] && !ok; i++)
            ok = strcmp(key, allowed[i]) == 0;
        if (!ok)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: unknown field '%s'", what, key);
    }
    return RT_OK;
}

static rt_status parse_ios(json_t *root, const char *key, srv_io **ios, int *n, rt_error *err)
{
    json_t *arr = json_object_get(root, key);
    if (!arr)
        return RT_OK;
    if (!json_is_array(arr))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'%s' must be an array", key);
    *n = (int)json_array_size(arr);
    *ios = calloc((size_t)*n + 1, sizeof **ios);
    if (!*ios)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    for (int i = 0; i < *n; i++) {
        json_t *e = json_array_get(arr, i);
        srv_io *io = &(*ios)[i];
        if (!json_is_object(e) || dup_string(e, "name", &io->name, err) != RT_OK || !io->name)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s[%d] needs a string 'name'", key, i);
        const char *tn = json_string_value(json_object_get(e, "data_type"));
        io->dtype = srv_dtype_from_triton(tn);
        if (io->dtype == RT_DTYPE_UNDEFINED)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s '%s': unknown data_type '%s'", key,
                                io->name, tn ? tn : "(missing)");
        io->rank = -1;
        if (json_object_get(e, "dims")) {
            if (get_int_array(e, "dims", -1, RT_MAX_RANK, io->dims, &io->rank, err) != RT_OK)
                return rt_error_prefix(err, "%s '%s': ", key, io->name);
        }
        if (io->rank < 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s '%s' needs 'dims'", key, io->name);
        io->graph_index = -1;
    }
    return RT_OK;
}

static rt_status parse_version_policy(srv_model_config *cfg, json_t *root, rt_error *err)
{
    json_t *vp = json_object_get(root, "version_policy"), *v;
    if (!vp)
        return RT_OK;
    if (!json_is_object(vp))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'version_policy' must be an object");
    if ((v = json_object_get(vp, "latest"))) {
        int64_t n = 1;
        cfg->version_policy = SRV_VERSIONS_LATEST;
        if (get_int(v, "num_versions", 1, SRV_MAX_VERSIONS, &n, err) != RT_OK)
            return rt_error_prefix(err, "version_policy.latest: ");
        cfg->num_versions = (int)n;
    } else if (json_object_get(vp, "all")) {
        cfg->version_policy = SRV_VERSIONS_ALL;
    } else if ((v = json_object_get(vp, "specific"))) {
        cfg->version_policy = SRV_VERSIONS_SPECIFIC;
        if (get_int_array(v, "versions", 1, SRV_MAX_VERSIONS, cfg->versions, &cfg->n_versions,
                          err) != RT_OK)
            return rt_error_prefix(err, "version_policy.specific: ");
    } else {
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "'version_policy' needs one of 'latest', 'all', 'specific'");
    }
    return RT_OK;
}

static rt_status parse_batching(srv_model_config *cfg, json_t *root, rt_error *err)
{
    json_t *db = json_object_get(root, "dynamic_batching");
    if (!db)
        return RT_OK;
    if (!json_is_object(db))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'dynamic_batching' must be an object");
    cfg->dynamic_batching = true;
    if (get_int_array(db, "preferred_batch_size", 1, SRV_MAX_PREFERRED, cfg->preferred_batch_size,
                      &cfg->n_preferred, err) != RT_OK ||
        get_int(db, "max_queue_delay_microseconds", 0, INT64_C(3600000000),
                &cfg->max_queue_delay_us, err) != RT_OK)
        return rt_error_prefix(err, "dynamic_batching: ");
    for (int i = 0; i < cfg->n_preferred; i++)
        if (cfg->preferred_batch_size[i] > cfg->max_batch_size)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "dynamic_batching: preferred_batch_size %lld exceeds max_batch_size",
                                (long long)cfg->preferred_batch_size[i]);
    json_t *qp = json_object_get(db, "default_queue_policy");
    if (!qp)
        return RT_OK;
    const char *action = json_string_value(json_object_get(qp, "timeout_action"));
    if (!json_is_object(qp) ||
        get_int(qp, "max_queue_size", 0, INT32_MAX, &cfg->max_queue_size, err) != RT_OK ||
        get_int(qp, "default_timeout_microseconds", 0, SRV_MAX_TIMEOUT_US, &cfg->default_timeout_us,
                err) != RT_OK ||
        get_bool(qp, "allow_timeout_override", &cfg->allow_timeout_override, err) != RT_OK)
        return rt_error_prefix(err, "dynamic_batching.default_queue_policy: ");
    if (action && strcmp(action, "REJECT") && strcmp(action, "DELAY"))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "timeout_action must be REJECT or DELAY");
    cfg->timeout_delay = action && strcmp(action, "DELAY") == 0;
    return RT_OK;
}

/* instance_group kinds by srv_instance_kind, as config.json names them */
static const char *const kinds[] = {"KIND_AUTO", "KIND_CPU", "KIND_GPU"};

/* instance_group: [{count, kind, gpus}], each kept as written; gpus only with KIND_GPU. */
static rt_status parse_instances(srv_model_config *cfg, json_t *root, rt_error *err)
{
    json_t *ig = json_object_get(root, "instance_group");
    if (!ig)
        return RT_OK;
    if (!json_is_array(ig))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'instance_group' must be an array");
    if (json_array_size(ig) > SRV_MAX_GROUPS)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "instance_group: more than %d groups",
                            SRV_MAX_GROUPS);
    cfg->instance_count = 0;
    size_t i;
    json_t *g;
    json_array_foreach(ig, i, g) {
        srv_instance_group *grp = &cfg->groups[cfg->n_groups++];
        int64_t count = 1, gpus[SRV_MAX_GPUS];
        if (!json_is_object(g) || get_int(g, "count", 1, SRV_MAX_INSTANCES, &count, err) != RT_OK ||
            get_int_array(g, "gpus", 0, SRV_MAX_GPUS, gpus, &grp->n_gpus, err) != RT_OK)
            return rt_error_prefix(err, "instance_group[%zu]: ", i);
        const char *kind = json_string_value(json_object_get(g, "kind"));
        int k = 0;
        while (kind && k < 3 && strcmp(kind, kinds[k]))
            k++;
        if (k == 3)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "instance_group[%zu]: kind must be KIND_CPU, KIND_GPU or KIND_AUTO", i);
        grp->kind = (srv_instance_kind)k;
        if (grp->n_gpus && grp->kind != SRV_KIND_GPU)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "instance_group[%zu]: gpus needs kind KIND_GPU", i);
        grp->count = (int)count;
        cfg->instance_gpu = cfg->instance_gpu || grp->kind == SRV_KIND_GPU;
        cfg->instance_count += (int)count;
        for (int d = 0; d < grp->n_gpus; d++) {
            if (gpus[d] > INT16_MAX)
                return rt_error_set(err, RT_ERR_INVALID_ARG,
                                    "instance_group[%zu]: gpu %lld is not a device index", i,
                                    (long long)gpus[d]);
            grp->gpus[d] = (int)gpus[d];
            if (cfg->n_gpus < SRV_MAX_GPUS)
                cfg->gpus[cfg->n_gpus++] = (int)gpus[d];
        }
    }
    if (cfg->instance_count > SRV_MAX_INSTANCES)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "instance_group: more than %d instances",
                            SRV_MAX_INSTANCES);
    return RT_OK;
}

/* infd.compression: {"precision", "quantize", "prune", "low_rank"} with the values
 * rt_compress.h parses; prune and low_rank may also be JSON numbers. */
static rt_status parse_compression(rt_compress_options *o, json_t *infd, rt_error *err)
{
    static const char *const keys[] = {"precision", "quantize", "prune", "low_rank", NULL};
    json_t *c = json_object_get(infd, "compression");
    if (!c)
        return RT_OK;
    if (!json_is_object(c))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "infd.compression must be an object");
    rt_status st = srv_json_only_keys(c, keys, "infd.compression", err);
    for (int k = 0; keys[k] && st == RT_OK; k++) {
        json_t *v = json_object_get(c, keys[k]);
        char num[32];
        const char *text = json_string_value(v);
        if (!v)
            continue;
        if (!text && k >= 2 && json_is_number(v)) {
            snprintf(num, sizeof num, "%.9g", json_number_value(v));
            text = num;
        }
        if (!text)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "infd.compression.%s must be a %s",
                                keys[k], k >= 2 ? "number or a string" : "string");
        bool ok = k == 0   ? rt_precision_parse(text, &o->precision, err)
                  : k == 1 ? rt_quant_parse(text, &o->quantize, err)
                  : k == 2 ? rt_prune_parse(text, &o->prune, &o->prune_sparsity, err)
                           : rt_low_rank_parse(text, &o->low_rank_energy, err);
        if (!ok)
            st = rt_error_prefix(err, "infd.compression: ");
    }
    return st;
}

/* The compression options as config.json writes them (only what differs from off). */
static void compression_to_json(const rt_compress_options *o, json_t *infd)
{
    if (!rt_compress_options_active(o))
        return;
    json_t *c = json_object();
    char num[32];
    if (o->precision != RT_PRECISION_FP32)
        json_object_set_new(c, "precision", json_string(rt_precision_name(o->precision)));
    if (o->quantize != RT_QUANT_NONE)
        json_object_set_new(c, "quantize", json_string(rt_quant_name(o->quantize)));
    snprintf(num, sizeof num, "%g", (double)o->prune_sparsity);
    if (o->prune != RT_PRUNE_NONE)
        json_object_set_new(c, "prune", json_string(o->prune == RT_PRUNE_2_4 ? "2:4" : num));
    snprintf(num, sizeof num, "%g", (double)o->low_rank_energy);
    if (o->low_rank_energy > 0)
        json_object_set_new(c, "low_rank", json_real(strtod(num, NULL)));
    json_object_set_new(infd, "compression", c);
}

/* "parallel": {"tensor_parallel_size": N}: every instance is one model split over N ranks.
 * With instance_group gpus, they name one device per rank. */
static rt_status parse_parallel(srv_model_config *cfg, json_t *root, rt_error *err)
{
    static const char *const keys[] = {"tensor_parallel_size", NULL};
    json_t *p = json_object_get(root, "parallel");
    if (!p)
        return RT_OK;
    int64_t n = 1;
    if (!json_is_object(p))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "'parallel' must be an object");
    if (srv_json_only_keys(p, keys, "parallel", err) != RT_OK ||
        get_int(p, "tensor_parallel_size", 1, SRV_MAX_GPUS, &n, err) != RT_OK)
        return rt_error_prefix(err, "parallel: ");
    cfg->tensor_parallel = (int)n;
    if (cfg->n_gpus && cfg->n_gpus != cfg->tensor_parallel)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "parallel.tensor_parallel_size is %d but "
                            "instance_group names %d gpus: name one device per rank",
                            cfg->tensor_parallel, cfg->n_gpus);
    for (int i = 0; i < cfg->n_gpus; i++)
        for (int k = 0; k < i; k++)
            if (cfg->gpus[k] == cfg->gpus[i])
                return rt_error_set(err, RT_ERR_INVALID_ARG, "parallel: instance_group names "
                                    "gpu %d twice (one device cannot host two ranks)",
                                    cfg->gpus[i]);
    return RT_OK;
}

static void config_init(srv_model_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->instance_count = 1;
    cfg->tensor_parallel = 1;
    cfg->num_versions = 1;
    cfg->cpu_threads = -1;
    cfg->optimize = true;
    rt_compress_options_init(&cfg->compress);
}

rt_status srv_model_config_default(srv_model_config *cfg, const char *dir_name, rt_error *err)
{
    config_init(cfg);
    cfg->name = strdup(dir_name);
    cfg->backend = strdup("onnx");
    cfg->default_model_filename = strdup("model.onnx");
    cfg->parameters = json_object();
    if (!cfg->name || !cfg->backend || !cfg->default_model_filename || !cfg->parameters)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    return RT_OK;
}

rt_status srv_model_config_parse(srv_model_config *cfg, json_t *root, const char *dir_name,
                                 rt_error *err)
{
    rt_status st = srv_model_config_default(cfg, dir_name, err);
    if (st != RT_OK)
        return st;
    if (!json_is_object(root))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "config.json is not a JSON object");
    json_t *name = json_object_get(root, "name");
    if (name && (!json_is_string(name) || strcmp(json_string_value(name), dir_name) != 0))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "config name must equal the model's directory name '%s'", dir_name);
    const char *backend = json_string_value(json_object_get(root, "backend"));
    const char *platform = json_string_value(json_object_get(root, "platform"));
    if ((backend && strcmp(backend, "onnx") && strcmp(backend, "onnxruntime")) ||
        (platform && strcmp(platform, "onnxruntime_onnx")))
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "unsupported backend '%s': infd serves ONNX models (backend \"onnx\")",
                            backend ? backend : platform);
    int64_t v = 1;
    if ((st = dup_string(root, "default_model_filename", &cfg->default_model_filename, err)) ||
        (st = get_int(root, "max_batch_size", 0, SRV_MAX_BATCH_SIZE, &cfg->max_batch_size, err)) ||
        (st = parse_ios(root, "input", &cfg->inputs, &cfg->n_inputs, err)) ||
        (st = parse_ios(root, "output", &cfg->outputs, &cfg->n_outputs, err)) ||
        (st = parse_batching(cfg, root, err)) || (st = parse_instances(cfg, root, err)) ||
        (st = parse_parallel(cfg, root, err)) ||
        (st = parse_version_policy(cfg, root, err)))
        return st;
    if (strchr(cfg->default_model_filename, '/') || strstr(cfg->default_model_filename, ".."))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "default_model_filename must be a plain file name");
    json_t *params = json_object_get(root, "parameters");
    if (params) {
        if (!json_is_object(params))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "'parameters' must be an object");
        json_decref(cfg->parameters);
        cfg->parameters = json_incref(params);
    }
    json_t *ext = json_object_get(root, "infd");
    if (ext) {
        if (!json_is_object(ext))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "'infd' must be an object");
        if (get_int(ext, "cpu_threads", 0, 1024, &v, err) != RT_OK)
            return rt_error_prefix(err, "infd: ");
        if (json_object_get(ext, "cpu_threads"))
            cfg->cpu_threads = (int)v;
        json_t *opt = json_object_get(ext, "optimize");
        if (opt && !json_is_boolean(opt))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "infd: 'optimize' must be true or false");
        if (opt)
            cfg->optimize = json_is_true(opt);
        if ((st = parse_compression(&cfg->compress, ext, err)) ||
            (st = srv_guard_config_parse(&cfg->guard, ext, err)))
            return st;
        if (!cfg->optimize && rt_compress_options_active(&cfg->compress))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "infd.compression rewrites the "
                                "optimized graph: it cannot be combined with infd.optimize false");
        return srv_pipeline_parse(&cfg->pipeline, ext, err);
    }
    return RT_OK;
}

/* Graph shape -> config dims (without the batch dim when batched); false if impossible. */
static bool graph_dims(const srv_model_config *cfg, const rt_value *v, srv_io *io)
{
    int skip = cfg->max_batch_size > 0 ? 1 : 0;
    if (v->shape.rank < skip)
        return false;
    io->rank = v->shape.rank - skip;
    for (int d = 0; d < io->rank; d++)
        io->dims[d] = v->shape.dims[d + skip] < 0 ? -1 : v->shape.dims[d + skip];
    return true;
}

static rt_status complete_ios(const srv_model_config *cfg, const rt_graph *g, const char *what,
                              const int *idx, int n_graph, srv_io **ios, int *n, rt_error *err)
{
    if (*n == 0) {
        *ios = calloc((size_t)n_graph + 1, sizeof **ios);
        if (!*ios)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        *n = n_graph;
        for (int i = 0; i < n_graph; i++) {
            const rt_value *v = &g->values[idx[i]];
            srv_io *io = &(*ios)[i];
            io->name = strdup(v->name);
            io->dtype = v->dtype;
            io->graph_index = i;
            if (!io->name)
                return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
            if (!srv_dtype_kserve_name(v->dtype) || !graph_dims(cfg, v, io))
                return rt_error_set(err, RT_ERR_UNSUPPORTED,
                                    "%s '%s' has a type or shape the server cannot serve%s", what,
                                    v->name, cfg->max_batch_size > 0 ? " with batching" : "");
        }
        return RT_OK;
    }
    if (*n != n_graph)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "config lists %d %ss, the model has %d", *n,
                            what, n_graph);
    for (int i = 0; i < *n; i++) {
        srv_io *io = &(*ios)[i], from_graph;
        io->graph_index = -1;
        for (int k = 0; k < n_graph; k++)
            if (strcmp(g->values[idx[k]].name, io->name) == 0)
                io->graph_index = k;
        if (io->graph_index < 0)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "config %s '%s' is not in the model", what,
                                io->name);
        const rt_value *v = &g->values[idx[io->graph_index]];
        if (v->dtype != RT_DTYPE_UNDEFINED && v->dtype != io->dtype)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "%s '%s': config data_type %s, the model has %s", what, io->name,
                                srv_dtype_triton_name(io->dtype), rt_dtype_name(v->dtype));
        if (v->shape.rank >= 0) {
            if (!graph_dims(cfg, v, &from_graph) || from_graph.rank != io->rank)
                return rt_error_set(err, RT_ERR_INVALID_ARG,
                                    "%s '%s': config dims have rank %d, the model's %s rank %d",
                                    what, io->name, io->rank,
                                    cfg->max_batch_size > 0 ? "without batch has" : "has",
                                    v->shape.rank - (cfg->max_batch_size > 0));
            for (int d = 0; d < io->rank; d++)
                if (from_graph.dims[d] >= 0 && io->dims[d] >= 0 && from_graph.dims[d] != io->dims[d])
                    return rt_error_set(err, RT_ERR_INVALID_ARG,
                                        "%s '%s': config dim %d is %lld, the model has %lld", what,
                                        io->name, d, (long long)io->dims[d],
                                        (long long)from_graph.dims[d]);
        }
    }
    return RT_OK;
}

rt_status srv_model_config_complete(srv_model_config *cfg, const rt_graph *g, rt_error *err)
{
    rt_status st = srv_pipeline_to_model_ios(cfg, err);
    if (st == RT_OK)
        st = complete_ios(cfg, g, "input", g->inputs, g->n_inputs, &cfg->inputs, &cfg->n_inputs,
                          err);
    if (st == RT_OK)
        st = complete_ios(cfg, g, "output", g->outputs, g->n_outputs, &cfg->outputs,
                          &cfg->n_outputs, err);
    if (st == RT_OK)
        st = srv_pipeline_to_client_ios(cfg, err);
    return st;
}

static json_t *int64_string(int64_t v)
{
    char buf[32];
    snprintf(buf, sizeof buf, "%lld", (long long)v);
    return json_string(buf);
}

static json_t *ios_to_json(const srv_io *ios, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *dims = json_array();
        for (int d = 0; d < ios[i].rank; d++)
            json_array_append_new(dims, int64_string(ios[i].dims[d]));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:o}", "name", ios[i].name,
                                             "data_type", srv_dtype_triton_name(ios[i].dtype),
                                             "format", "FORMAT_NONE", "dims", dims));
    }
    return arr;
}

/* instance_group as written (Triton's counts per device), or the one KIND_AUTO instance
 * of a config without it. */
static json_t *groups_to_json(const srv_model_config *cfg)
{
    srv_instance_group auto_one = {.kind = SRV_KIND_AUTO, .count = 1};
    int n = cfg->n_groups ? cfg->n_groups : 1;
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        const srv_instance_group *g = cfg->n_groups ? &cfg->groups[i] : &auto_one;
        json_t *gpus = json_array();
        for (int d = 0; d < g->n_gpus; d++)
            json_array_append_new(gpus, json_integer(g->gpus[d]));
        json_array_append_new(arr, json_pack("{s:s, s:i, s:s, s:o}", "name", cfg->name, "count",
                                             g->count, "kind", kinds[g->kind], "gpus", gpus));
    }
    return arr;
}

json_t *srv_model_config_to_json(const srv_model_config *cfg)
{
    json_t *vp, *versions = json_array();
    for (int i = 0; i < cfg->n_versions; i++)
        json_array_append_new(versions, int64_string(cfg->versions[i]));
    if (cfg->version_policy == SRV_VERSIONS_ALL)
        vp = json_pack("{s:{}}", "all");
    else if (cfg->version_policy == SRV_VERSIONS_SPECIFIC)
        vp = json_pack("{s:{s:O}}", "specific", "versions", versions);
    else
        vp = json_pack("{s:{s:i}}", "latest", "num_versions", cfg->num_versions);
    json_decref(versions);
    json_t *root = json_pack(
        "{s:s, s:s, s:s, s:o, s:I, s:o, s:o, s:o, s:s, s:O}", "name", cfg->name,
        "platform", "onnxruntime_onnx", "backend", cfg->backend, "version_policy", vp,
        "max_batch_size", (json_int_t)cfg->max_batch_size, "input",
        ios_to_json(cfg->inputs, cfg->n_inputs), "output", ios_to_json(cfg->outputs, cfg->n_outputs),
        "instance_group", groups_to_json(cfg), "default_model_filename",
        cfg->default_model_filename, "parameters", cfg->parameters);
    if (root && cfg->dynamic_batching) {
        json_t *pref = json_array();
        for (int i = 0; i < cfg->n_preferred; i++)
            json_array_append_new(pref, json_integer(cfg->preferred_batch_size[i]));
        json_object_set_new(
            root, "dynamic_batching",
            json_pack("{s:o, s:o, s:{s:s, s:o, s:b, s:i}}", "preferred_batch_size", pref,
                      "max_queue_delay_microseconds", int64_string(cfg->max_queue_delay_us),
                      "default_queue_policy", "timeout_action",
                      cfg->timeout_delay ? "DELAY" : "REJECT", "default_timeout_microseconds",
                      int64_string(cfg->default_timeout_us), "allow_timeout_override",
                      cfg->allow_timeout_override, "max_queue_size", (int)cfg->max_queue_size));
    }
    if (root && cfg->tensor_parallel > 1)
        json_object_set_new(root, "parallel", json_pack("{s:i}", "tensor_parallel_size",
                                                        cfg->tensor_parallel));
    json_t *infd = json_object();
    if (cfg->cpu_threads >= 0)
        json_object_set_new(infd, "cpu_threads", json_integer(cfg->cpu_threads));
    if (!cfg->optimize)
        json_object_set_new(infd, "optimize", json_false());
    srv_pipeline_to_json(&cfg->pipeline, infd);
    compression_to_json(&cfg->compress, infd);
    srv_guard_config_to_json(&cfg->guard, infd);
    if (root && json_object_size(infd))
        json_object_set(root, "infd", infd);
    json_decref(infd);
    return root;
}

static void free_ios(srv_io *ios, int n)
{
    for (int i = 0; ios && i < n; i++)
        free(ios[i].name);
    free(ios);
}

void srv_model_config_free(srv_model_config *cfg)
{
    if (!cfg)
        return;
    free(cfg->name);
    free(cfg->backend);
    free(cfg->default_model_filename);
    free_ios(cfg->inputs, cfg->n_inputs);
    free_ios(cfg->outputs, cfg->n_outputs);
    json_decref(cfg->parameters);
    srv_pipeline_free(&cfg->pipeline);
    srv_guard_config_free(&cfg->guard);
    memset(cfg, 0, sizeof *cfg);
}
