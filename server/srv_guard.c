/* srv_guard.c: the accuracy guard's config, its validation set, and the check that runs
 * at load: the validation set through the compressed and the uncompressed model, one
 * metric compared (srv_guard.h; the metrics are in srv_guard_metric.c). */
#include "srv_guard.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "rt_compress.h"
#include "rt_onnx.h"
#include "rt_path.h"
#include "srv_log.h"
#include "srv_model_config.h"

/* Rows per run: bounds the memory the plans of the validation runs keep. */
#define GUARD_BATCH 64

static const char *const metric_names[] = {"accuracy", "agreement", "cosine"};

/* ---- config ---- */

rt_status srv_guard_config_parse(srv_guard_config *g, json_t *infd, rt_error *err)
{
    static const char *const keys[] = {"validation_set", "metric", "output",
                                       "max_accuracy_drop", "threshold", NULL};
    const char *what = "infd.accuracy_guard";
    json_t *o = json_object_get(infd, "accuracy_guard");
    if (!o)
        return RT_OK;
    if (!json_is_object(o))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s must be an object", what);
    rt_status st = srv_json_only_keys(o, keys, what, err);
    if (st != RT_OK)
        return st;
    g->enabled = true;
    const char *set = json_string_value(json_object_get(o, "validation_set"));
    if (!set || !set[0])
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.validation_set must be a non-empty "
                            "string", what);
    if (!rt_path_is_confined(set))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.validation_set '%s' must be a "
                            "relative path inside the model directory", what, set);
    json_t *metric = json_object_get(o, "metric");
    g->metric = SRV_GUARD_ACCURACY;
    if (metric) {
        const char *m = json_string_value(metric);
        int k = 0;
        while (m && k < 3 && strcmp(m, metric_names[k]) != 0)
            k++;
        if (!m || k == 3)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.metric must be \"accuracy\", "
                                "\"agreement\" or \"cosine\"", what);
        g->metric = (srv_guard_metric)k;
    }
    json_t *output = json_object_get(o, "output");
    if (output && (!json_is_string(output) || !json_string_value(output)[0]))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.output must be a non-empty string",
                            what);
    json_t *drop = json_object_get(o, "max_accuracy_drop");
    g->max_drop = json_number_value(drop);
    if (!json_is_number(drop) || !(g->max_drop >= 0 && g->max_drop <= 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.max_accuracy_drop must be a number in "
                            "[0, 1] (0.005: half a point of accuracy)", what);
    json_t *threshold = json_object_get(o, "threshold");
    g->threshold = threshold ? (float)json_number_value(threshold) : 0.5f;
    if (threshold && (!json_is_number(threshold) || !isfinite(g->threshold)))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s.threshold must be a number", what);
    g->validation_set = strdup(set);
    g->output = output ? strdup(json_string_value(output)) : NULL;
    if (!g->validation_set || (output && !g->output))
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    return RT_OK;
}

void srv_guard_config_to_json(const srv_guard_config *g, json_t *infd)
{
    if (!g->enabled)
        return;
    json_t *o = json_pack("{s:s, s:s, s:f, s:f}", "validation_set", g->validation_set, "metric",
                          metric_names[g->metric], "max_accuracy_drop", g->max_drop,
                          "threshold", (double)g->threshold);
    if (o && g->output)
        json_object_set_new(o, "output", json_string(g->output));
    if (o)
        json_object_set_new(infd, "accuracy_guard", o);
}

void srv_guard_config_free(srv_guard_config *g)
{
    free(g->validation_set);
    free(g->output);
    memset(g, 0, sizeof *g);
}

/* ---- the validation set ---- */

typedef struct guard_set {
    int n_inputs;
    rt_tensor **inputs;  /* in graph input order */
    int64_t rows;        /* dim 0 of every input (batched models) */
    int64_t n_labels;
    int64_t *labels;     /* accuracy only */
} guard_set;

static void set_free(guard_set *v)
{
    for (int i = 0; v->inputs && i < v->n_inputs; i++)
        rt_tensor_free(v->inputs[i]);
    free(v->inputs);
    free(v->labels);
}

static bool file_exists(const char *dir, const char *name)
{
    char path[4096];
    struct stat st;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    return stat(path, &st) == 0;
}

static rt_tensor *read_pb(const char *dir, const char *name, char **proto_name, rt_error *err)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    rt_tensor *t = rt_tensorproto_read_file(path, proto_name, err);
    if (!t)
        rt_error_prefix(err, "%s: ", name);
    return t;
}

/* labels.pb as integers (floats must hold whole numbers). */
static rt_status read_labels(guard_set *v, const char *dir, rt_error *err)
{
    if (!file_exists(dir, "labels.pb"))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "metric accuracy needs labels.pb in the "
                            "validation set");
    rt_tensor *t = read_pb(dir, "labels.pb", NULL, err);
    if (!t)
        return err ? err->status : RT_ERR_IO;
    rt_status st = RT_OK;
    v->n_labels = rt_tensor_numel(t);
    if (!rt_dtype_is_float(t->dtype) && !rt_dtype_is_integer(t->dtype) &&
        t->dtype != RT_DTYPE_BOOL)
        st = rt_error_set(err, RT_ERR_INVALID_ARG, "labels.pb holds %s, not numbers",
                          rt_dtype_name(t->dtype));
    else if (!(v->labels = malloc(sizeof *v->labels * (size_t)(v->n_labels ? v->n_labels : 1))))
        st = rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    for (int64_t i = 0; st == RT_OK && i < v->n_labels; i++) {
        v->labels[i] = rt_dtype_load_i64(t->dtype, t->data, (size_t)i);
        if (rt_dtype_load_f64(t->dtype, t->data, (size_t)i) != (double)v->labels[i])
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "labels.pb: label %lld is not a whole "
                              "number", (long long)i);
    }
    rt_tensor_free(t);
    return st;
}

/* input_<i>.pb for each graph input of s, placed by the protos' names (or positions). */
static rt_status read_inputs(guard_set *v, const char *dir, const rt_session *s,
                             int64_t max_batch, rt_error *err)
{
    v->n_inputs = rt_session_input_count(s);
    v->inputs = calloc((size_t)v->n_inputs + 1, sizeof *v->inputs);
    if (!v->inputs)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    char name[32];
    for (int i = 0; i < v->n_inputs; i++) {
        snprintf(name, sizeof name, "input_%d.pb", i);
        if (!file_exists(dir, name))
            return rt_error_set(err, RT_ERR_INVALID_ARG, "the validation set has no %s (the "
                                "model has %d input%s)", name, v->n_inputs,
                                v->n_inputs == 1 ? "" : "s");
        char *proto_name = NULL;
        rt_tensor *t = read_pb(dir, name, &proto_name, err);
        if (!t)
            return err ? err->status : RT_ERR_IO;
        int k = proto_name && proto_name[0] ? -1 : i;
        for (int j = 0; k < 0 && j < v->n_inputs; j++)
            if (strcmp(rt_session_input(s, j)->name, proto_name) == 0)
                k = j;
        rt_status st = RT_OK;
        if (k < 0)
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "%s holds '%s', not an input of the "
                              "model", name, proto_name);
        else if (v->inputs[k])
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "%s: input '%s' is given twice", name,
                              rt_session_input(s, k)->name);
        else if (max_batch > 0 && (t->shape.rank < 1 || t->shape.dims[0] < 1 ||
                                   (v->rows && t->shape.dims[0] != v->rows)))
            st = rt_error_set(err, RT_ERR_INVALID_ARG, "%s: every input needs the same number "
                              "(at least 1) of rows along dim 0", name);
        free(proto_name);
        if (st != RT_OK) {
            rt_tensor_free(t);
            return st;
        }
        v->inputs[k] = t;
        if (max_batch > 0)
            v->rows = t->shape.dims[0];
    }
    snprintf(name, sizeof name, "input_%d.pb", v->n_inputs);
    if (file_exists(dir, name))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the validation set has %s, the model has "
                            "%d input%s", name, v->n_inputs, v->n_inputs == 1 ? "" : "s");
    return RT_OK;
}

/* ---- running both models ---- */

/* Rows [off, off + n) of t as a borrowed view. */
static rt_tensor *rows_view(const rt_tensor *t, int64_t off, int64_t n)
{
    rt_shape shape = t->shape;
    size_t row_bytes = shape.dims[0] ? rt_tensor_nbytes(t) / (size_t)shape.dims[0] : 0;
    shape.dims[0] = n;
    return rt_tensor_wrap(t->dtype, &shape, (char *)t->data + (size_t)off * row_bytes);
}

/* Growing FP32 copy of one output over the runs. */
typedef struct guard_out {
    float *data;
    int64_t len, cap, width;
} guard_out;

static rt_status append_output(guard_out *o, const rt_tensor *t, const char *name, rt_error *err)
{
    if (t->dtype != RT_DTYPE_F32)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "output '%s' is %s; the metrics read F32",
                            name, rt_dtype_name(t->dtype));
    int64_t n = rt_tensor_numel(t), width = t->shape.rank >= 2 ? t->shape.dims[t->shape.rank - 1] : 1;
    if (o->width && width != o->width)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "output '%s' changed its last dim from "
                            "%lld to %lld between runs", name, (long long)o->width,
                            (long long)width);
    o->width = width;
    if (o->len + n > o->cap) {
        int64_t cap = o->cap * 2 > o->len + n ? o->cap * 2 : o->len + n;
        float *grown = realloc(o->data, sizeof *grown * (size_t)cap);
        if (!grown)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        o->data = grown;
        o->cap = cap;
    }
    memcpy(o->data + o->len, t->data, sizeof(float) * (size_t)n);
    o->len += n;
    return RT_OK;
}

/* Runs rows [off, off + n) (every row with n < 0) through s and appends output `index`. */
static rt_status run_rows(rt_session *s, const guard_set *v, int64_t off, int64_t n, int index,
                          guard_out *o, rt_error *err)
{
    int n_out = rt_session_output_count(s);
    rt_tensor **in = calloc((size_t)v->n_inputs + 1, sizeof *in);
    rt_tensor **out = calloc((size_t)n_out + 1, sizeof *out);
    rt_status st = in && out ? RT_OK : rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    for (int i = 0; st == RT_OK && i < v->n_inputs; i++)
        if (!(in[i] = n < 0 ? rt_tensor_wrap(v->inputs[i]->dtype, &v->inputs[i]->shape,
                                             v->inputs[i]->data)
                            : rows_view(v->inputs[i], off, n)))
            st = rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    if (st == RT_OK)
        st = rt_session_run(s, (const rt_tensor *const *)in, v->n_inputs, out, n_out, err);
    if (st == RT_OK)
        st = append_output(o, out[index], rt_session_output(s, index)->name, err);
    for (int i = 0; in && i < v->n_inputs; i++)
        rt_tensor_free(in[i]);
    for (int i = 0; out && i < n_out; i++)
        rt_tensor_free(out[i]);
    free(in);
    free(out);
    return st;
}

static int output_index(const rt_session *s, const char *name)
{
    for (int i = 0; name && i < rt_session_output_count(s); i++)
        if (strcmp(rt_session_output(s, i)->name, name) == 0)
            return i;
    return name ? -1 : 0;
}

/* Both models over the whole set, then the metric. */
static rt_status measure(const srv_guard_config *g, const guard_set *v, rt_session *unc,
                         rt_session *comp, int index, int64_t max_batch, srv_guard_result *res,
                         rt_error *err)
{
    guard_out ou = {0}, oc = {0};
    int64_t step = max_batch < GUARD_BATCH ? max_batch : GUARD_BATCH;
    rt_status st = RT_OK;
    if (max_batch <= 0) {
        if ((st = run_rows(unc, v, 0, -1, index, &ou, err)) == RT_OK)
            st = run_rows(comp, v, 0, -1, index, &oc, err);
    }
    for (int64_t off = 0; max_batch > 0 && off < v->rows && st == RT_OK; off += step) {
        int64_t n = v->rows - off < step ? v->rows - off : step;
        if ((st = run_rows(unc, v, off, n, index, &ou, err)) == RT_OK)
            st = run_rows(comp, v, off, n, index, &oc, err);
    }
    const char *name = rt_session_output(comp, index)->name;
    if (st == RT_OK && (ou.len != oc.len || ou.width != oc.width))
        st = rt_error_set(err, RT_ERR_INTERNAL, "output '%s' has %lld values compressed, %lld "
                          "uncompressed", name, (long long)oc.len, (long long)ou.len);
    int64_t rows = st == RT_OK && ou.width ? ou.len / ou.width : 0;
    if (st == RT_OK && g->metric == SRV_GUARD_ACCURACY && v->n_labels != rows)
        st = rt_error_set(err, RT_ERR_INVALID_ARG, "labels.pb has %lld labels, output '%s' has "
                          "%lld rows", (long long)v->n_labels, name, (long long)rows);
    if (st == RT_OK)
        st = srv_guard_measure(g->metric, g->threshold, ou.data, oc.data, v->labels, rows,
                               ou.width, res, err);
    free(ou.data);
    free(oc.data);
    return st;
}

/* "accuracy 0.9457 compressed vs 0.9468 uncompressed on 921 rows of 'validation' (drop
 * 0.0011" -- the caller closes it with the comparison. */
static void describe(char *buf, size_t size, const srv_guard_config *g, const char *output,
                     const srv_guard_result *r)
{
    if (g->metric == SRV_GUARD_ACCURACY)
        snprintf(buf, size, "accuracy %.4f compressed vs %.4f uncompressed on %lld rows of '%s' "
                 "(drop %.4f", r->compressed, r->uncompressed, (long long)r->rows,
                 g->validation_set, r->drop);
    else
        snprintf(buf, size, "%s %.4f of output '%s' compressed vs uncompressed on %lld rows of "
                 "'%s' (drop %.4f", g->metric == SRV_GUARD_COSINE ? "cosine similarity"
                 : "agreement", r->compressed, output, (long long)r->rows, g->validation_set,
                 r->drop);
}

rt_status srv_guard_check(const srv_guard_config *g, const char *model_dir,
                          const char *model_path, const rt_session_options *opts,
                          rt_session *compressed, int64_t max_batch, const char *what,
                          rt_error *err)
{
    if (!g->enabled)
        return RT_OK;
    if (!rt_compress_options_active(&opts->compress)) {
        SRV_INFO("%s: accuracy guard not run: no compression is configured", what);
        return RT_OK;
    }
    if (!compressed)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "accuracy guard: it runs on models served "
                            "by one session per instance, not on tensor-parallel ones");
    guard_set v = {0};
    rt_session *unc = NULL;
    srv_guard_result res;
    rt_session_options unc_opts = *opts;
    rt_compress_options_init(&unc_opts.compress);
    int index = output_index(compressed, g->output);
    rt_status st = RT_OK;
    char *dir = rt_path_resolve_inside(model_dir, g->validation_set, "validation set", err);
    if (!dir)
        st = err ? err->status : RT_ERR_IO;
    else if (index < 0)
        st = rt_error_set(err, RT_ERR_INVALID_ARG, "output '%s' is not an output of the model",
                          g->output);
    if (st == RT_OK)
        st = read_inputs(&v, dir, compressed, max_batch, err);
    if (st == RT_OK && g->metric == SRV_GUARD_ACCURACY)
        st = read_labels(&v, dir, err);
    if (st == RT_OK && !(unc = rt_session_create(model_path, &unc_opts, err)))
        st = err ? err->status : RT_ERR_IO;
    if (st == RT_OK)
        st = measure(g, &v, unc, compressed, index, max_batch, &res, err);
    if (st == RT_OK) {
        char text[256];
        const char *output = rt_session_output(compressed, index)->name;
        describe(text, sizeof text, g, output, &res);
        if (res.drop > g->max_drop)
            st = rt_error_set(err, RT_ERR_MODEL, "%s > max_accuracy_drop %g)", text, g->max_drop);
        else
            SRV_INFO("%s: accuracy guard passed: %s <= max_accuracy_drop %g)", what, text,
                     g->max_drop);
    }
    rt_session_free(unc);
    set_free(&v);
    free(dir);
    if (st != RT_OK)
        rt_error_prefix(err, "accuracy guard: ");
    return st;
}
