/* srv_api.c: the KServe v2 routes as Triton serves them (health, metadata, config,
 * statistics, inference, repository extension) and /metrics. Inference and repository
 * loads run asynchronously: the connection is suspended and resumed when done. */
#include <jansson.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "rt_build_info.h"
#include "srv_buf.h"
#include "srv_codec.h"
#include "srv_log.h"
#include "srv_pipeline.h"
#include "srv_server.h"
#include "srv_types.h"

#define MAX_SEGMENTS 8

static void set_body(srv_call *c, int status, char *body, const char *type)
{
    free(c->resp.body);
    c->resp = (srv_response){.status = status, .body = body, .len = body ? strlen(body) : 0,
                             .content_type = type};
}

static void set_json(srv_call *c, int status, json_t *j)
{
    char *s = j ? json_dumps(j, JSON_COMPACT) : NULL;
    json_decref(j);
    if (!s)
        set_body(c, 500, srv_error_json("out of memory"), "application/json");
    else
        set_body(c, status, s, "application/json");
}

static void set_error(srv_call *c, int status, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(srv_call *c, int status, const char *fmt, ...)
{
    char msg[SRV_ERR_MAX + 64];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    set_body(c, status, srv_error_json(msg), "application/json");
}

/* Percent-decodes s in place; false on a bad escape or an encoded NUL. */
static bool url_decode(char *s)
{
    char *w = s;
    for (char *p = s; *p; p++) {
        if (*p != '%') {
            *w++ = *p;
            continue;
        }
        char hex[3] = {p[1], p[1] ? p[2] : 0, 0};
        char *end;
        long v = strtol(hex, &end, 16);
        if (!hex[0] || !hex[1] || *end || v == 0)
            return false;
        *w++ = (char)v;
        p += 2;
    }
    *w = '\0';
    return true;
}

/* Splits the path into decoded segments (into buf). Returns the count, or -1 if invalid. */
static int split_path(const char *url, char *buf, size_t size, char **seg)
{
    size_t len = strnlen(url, size - 1);
    memcpy(buf, url, len);
    buf[len] = '\0';
    int n = 0;
    for (char *p = strtok(buf, "/"); p; p = strtok(NULL, "/")) {
        if (n == MAX_SEGMENTS || !url_decode(p))
            return -1;
        seg[n++] = p;
    }
    return n;
}

static bool is_get(const srv_call *c)
{
    return strcmp(c->method, "GET") == 0 || strcmp(c->method, "HEAD") == 0;
}

static bool need_method(srv_call *c, bool post)
{
    if (post ? strcmp(c->method, "POST") == 0 : is_get(c))
        return true;
    set_error(c, 405, "method %s is not allowed on %s; use %s", c->method, c->url,
              post ? "POST" : "GET");
    return false;
}

static bool server_ready(const srv_server *s)
{
    return __atomic_load_n(&s->ready, __ATOMIC_ACQUIRE) && !__atomic_load_n(&s->draining, __ATOMIC_RELAXED);
}

/* ---- metadata ---- */

static json_t *io_metadata(const srv_model_config *cfg, const srv_io *ios, int n)
{
    json_t *arr = json_array();
    for (int i = 0; i < n; i++) {
        json_t *shape = json_array();
        if (cfg->max_batch_size > 0)
            json_array_append_new(shape, json_integer(-1));
        for (int d = 0; d < ios[i].rank; d++)
            json_array_append_new(shape, json_integer(ios[i].dims[d]));
        json_array_append_new(arr, json_pack("{s:s, s:s, s:o}", "name", ios[i].name, "datatype",
                                             srv_dtype_kserve_name(ios[i].dtype), "shape", shape));
    }
    return arr;
}

static void model_metadata(srv_call *c, srv_model *m, bool all_versions)
{
    json_t *versions = json_array();
    if (all_versions) {
        srv_model **models;
        int n = srv_repo_snapshot(c->srv->repo, &models);
        for (int i = 0; i < n; i++) {
            if (strcmp(models[i]->name, m->name) == 0)
                json_array_append_new(versions, json_string(models[i]->version_str));
            srv_model_release(models[i]);
        }
        free(models);
    } else {
        json_array_append_new(versions, json_string(m->version_str));
    }
    set_json(c, 200, json_pack("{s:s, s:o, s:s, s:o, s:o}", "name", m->name, "versions", versions,
                               "platform", "onnxruntime_onnx", "inputs",
                               io_metadata(&m->cfg, m->cfg.inputs, m->cfg.n_inputs), "outputs",
                               io_metadata(&m->cfg, m->cfg.outputs, m->cfg.n_outputs)));
}

static void statistics(srv_call *c, const char *name, const char *version)
{
    json_t *arr = json_array();
    srv_model **models;
    int n = srv_repo_snapshot(c->srv->repo, &models);
    for (int i = 0; i < n; i++) {
        if ((!name || strcmp(models[i]->name, name) == 0) &&
            (!version || strcmp(models[i]->version_str, version) == 0))
            json_array_append_new(arr, srv_stats_to_json(&models[i]->stats, models[i]->name,
                                                         models[i]->version_str));
        srv_model_release(models[i]);
    }
    free(models);
    set_json(c, 200, json_pack("{s:o}", "model_stats", arr));
}

static void metrics(srv_call *c)
{
    srv_model **models;
    int n = srv_repo_snapshot(c->srv->repo, &models);
    srv_stats_ref *refs = calloc((size_t)n + 1, sizeof *refs);
    srv_buf b = {0};
    for (int i = 0; refs && i < n; i++)
        refs[i] = (srv_stats_ref){models[i]->name, models[i]->version_str, &models[i]->stats};
    if (refs)
        srv_stats_render_prometheus(&b, refs, n,
                                    (srv_metrics_naming)c->srv->cfg->metrics_naming);
    for (int i = 0; i < n; i++)
        srv_model_release(models[i]);
    free(models);
    free(refs);
    set_body(c, 200, srv_buf_take(&b, NULL), "text/plain; version=0.0.4; charset=utf-8");
}

/* ---- inference ---- */

static void infer_done(srv_request *r, void *arg)
{
    srv_call *c = arg;
    srv_model *m = c->model;
    if (r->status == 200) {
        uint64_t t0 = srv_now_ns();
        size_t len, header_len;
        /* post-processing counts as output time; a failure there is recorded first */
        char *body = srv_pipeline_post(&m->cfg, r)
                         ? srv_response_encode(&m->cfg, m->version_str, r, &len, &header_len)
                         : NULL;
        r->output_ns += srv_now_ns() - t0;
        if (body) {
            set_body(c, 200, body, header_len ? "application/octet-stream" : "application/json");
            c->resp.len = len;
            c->resp.header_len = header_len;
        } else {
            srv_request_fail(r, 500, SRV_FAIL_OTHER, "out of memory encoding the response");
        }
    }
    if (r->status != 200)
        set_error(c, r->status, "%s", r->error);
    srv_stats_request_done(&m->stats, r);
    c->resume(c);
}

static void infer(srv_call *c, const char *name, const char *version)
{
    if (__atomic_load_n(&c->srv->draining, __ATOMIC_RELAXED)) {
        set_error(c, 503, "server is shutting down; inference request for '%s' refused", name);
        return;
    }
    int status = 500;
    char msg[SRV_ERR_MAX];
    if (!(c->model = srv_repo_acquire(c->srv->repo, name, version, &status, msg))) {
        set_error(c, status, "%s", msg);
        return;
    }
    srv_model *m = c->model;
    if (!(c->req = srv_request_create(m->cfg.n_inputs, m->cfg.n_outputs))) {
        set_error(c, 500, "out of memory");
        return;
    }
    srv_request *r = c->req;
    if (!srv_request_decode(&m->cfg, c->body, c->body_len, c->header_len, r) ||
        !srv_pipeline_pre(&m->cfg, r)) {
        srv_stats_request_done(&m->stats, r);
        set_error(c, r->status, "%s", r->error);
        return;
    }
    r->on_done = infer_done;
    r->done_arg = c;
    srv_server_begin(c->srv);
    c->counted = true;
    c->suspend(c);
    if (!srv_batcher_submit(m->batcher, r))
        infer_done(r, c);
}

/* ---- repository extension ---- */

static void *repo_job(void *arg)
{
    srv_call *c = arg;
    rt_error err = {0};
    rt_status st = c->job_load ? srv_repo_load(c->srv->repo, c->job_name, &err)
                               : srv_repo_unload(c->srv->repo, c->job_name, &err);
    if (st == RT_OK)
        set_body(c, 200, NULL, NULL);
    else if (!c->job_load)
        set_error(c, 404, "%s", err.text);
    else
        set_error(c, 400, "failed to load '%s': %s", c->job_name, err.text);
    c->resume(c);
    return NULL;
}

static void repository_change(srv_call *c, const char *name, bool load)
{
    if (c->srv->cfg->control_mode != CFG_CONTROL_EXPLICIT) {
        set_error(c, 400, "explicit model load / unload is not allowed unless --model-control-mode is explicit");
        return;
    }
    if (__atomic_load_n(&c->srv->draining, __ATOMIC_RELAXED)) {
        set_error(c, 503, "server is shutting down");
        return;
    }
    if (c->body_len) {
        json_error_t jerr;
        json_t *root = json_loadb(c->body, c->body_len, 0, &jerr);
        bool override = json_object_get(json_object_get(root, "parameters"), "config") != NULL;
        bool bad = !root || !json_is_object(root);
        json_decref(root);
        if (bad) {
            set_error(c, 400, "request body must be a JSON object");
            return;
        }
        if (override) {
            set_error(c, 400, "loading with a config override is not supported; edit config.json");
            return;
        }
    }
    if (!(c->job_name = strdup(name))) {
        set_error(c, 500, "out of memory");
        return;
    }
    c->job_load = load;
    pthread_t t;
    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    srv_server_begin(c->srv);
    c->counted = true;
    c->suspend(c);
    if (pthread_create(&t, &attr, repo_job, c) != 0) {
        set_error(c, 500, "cannot start the %s", load ? "load" : "unload");
        c->resume(c);
    }
    pthread_attr_destroy(&attr);
}

static void repository_index(srv_call *c)
{
    bool ready_only = false;
    if (c->body_len) {
        json_error_t jerr;
        json_t *root = json_loadb(c->body, c->body_len, 0, &jerr);
        if (!json_is_object(root)) {
            json_decref(root);
            set_error(c, 400, "request body must be a JSON object");
            return;
        }
        ready_only = json_is_true(json_object_get(root, "ready"));
        json_decref(root);
    }
    set_json(c, 200, srv_repo_index(c->srv->repo, ready_only));
}

/* ---- routing ---- */

/* /v2/models/{m}[/versions/{v}][/{action}] */
static void model_route(srv_call *c, char **seg, int n)
{
    if (n == 3 && strcmp(seg[2], "stats") == 0) {
        if (need_method(c, false))
            statistics(c, NULL, NULL);
        return;
    }
    const char *name = seg[2], *version = NULL, *action = NULL;
    int rest = 3;
    if (n >= 5 && strcmp(seg[3], "versions") == 0) {
        version = seg[4];
        rest = 5;
    }
    if (n == rest + 1)
        action = seg[rest];
    else if (n != rest) {
        set_error(c, 404, "no route %s", c->url);
        return;
    }
    static const char *const actions[] = {"ready", "config", "stats", "infer"};
    bool known = !action;
    for (size_t i = 0; !known && i < sizeof actions / sizeof actions[0]; i++)
        known = strcmp(action, actions[i]) == 0;
    if (!known) {
        set_error(c, 404, "no route %s", c->url);
        return;
    }
    if (!need_method(c, action && strcmp(action, "infer") == 0))
        return;
    if (!srv_repo_valid_name(name)) {
        set_error(c, 400, "invalid model name '%s'", name);
        return;
    }
    if (action && strcmp(action, "infer") == 0) {
        infer(c, name, version);
        return;
    }
    if (action && strcmp(action, "stats") == 0) {
        statistics(c, name, version);
        return;
    }
    int status = 500;
    char msg[SRV_ERR_MAX];
    srv_model *m = srv_repo_acquire(c->srv->repo, name, version, &status, msg);
    if (!m) {
        /* Triton answers readiness probes with 400 when not ready */
        set_error(c, action && strcmp(action, "ready") == 0 ? 400 : status, "%s", msg);
        return;
    }
    if (!action)
        model_metadata(c, m, version == NULL);
    else if (strcmp(action, "ready") == 0)
        set_body(c, 200, NULL, NULL);
    else
        set_json(c, 200, srv_model_config_to_json(&m->cfg));
    srv_model_release(m);
}

static void route(srv_call *c, char **seg, int n)
{
    if (n == 1 && strcmp(seg[0], "metrics") == 0) {
        if (need_method(c, false))
            metrics(c);
        return;
    }
    if (c->metrics_only || n < 1 || strcmp(seg[0], "v2") != 0) {
        set_error(c, 404, "no route %s", c->url);
        return;
    }
    if (n == 1) {
        if (need_method(c, false))
            set_json(c, 200, json_pack("{s:s, s:s, s:[s, s, s, s]}", "name", "infd", "version",
                                       INFD_VERSION, "extensions", "binary_tensor_data",
                                       "model_repository", "statistics", "schedule_policy"));
        return;
    }
    if (n == 3 && strcmp(seg[1], "health") == 0 &&
        (strcmp(seg[2], "live") == 0 || strcmp(seg[2], "ready") == 0)) {
        if (need_method(c, false)) {
            bool ok = seg[2][0] == 'l' || server_ready(c->srv);
            set_body(c, ok ? 200 : 400, NULL, NULL);
        }
        return;
    }
    if (n >= 3 && strcmp(seg[1], "models") == 0) {
        model_route(c, seg, n);
        return;
    }
    if (n == 3 && strcmp(seg[1], "repository") == 0 && strcmp(seg[2], "index") == 0) {
        if (need_method(c, true))
            repository_index(c);
        return;
    }
    if (n == 5 && strcmp(seg[1], "repository") == 0 && strcmp(seg[2], "models") == 0 &&
        (strcmp(seg[4], "load") == 0 || strcmp(seg[4], "unload") == 0)) {
        if (!need_method(c, true))
            return;
        if (!srv_repo_valid_name(seg[3])) {
            set_error(c, 400, "invalid model name '%s'", seg[3]);
            return;
        }
        repository_change(c, seg[3], strcmp(seg[4], "load") == 0);
        return;
    }
    set_error(c, 404, "no route %s", c->url);
}

void srv_api_handle(srv_call *c)
{
    char buf[2048], *seg[MAX_SEGMENTS];
    int n = strlen(c->url) < sizeof buf ? split_path(c->url, buf, sizeof buf, seg) : -1;
    if (n < 0) {
        set_error(c, 400, "malformed request path");
        return;
    }
    route(c, seg, n);
    if (!c->suspended)
        SRV_VERBOSE("%s %s -> %d", c->method, c->url, c->resp.status);
}

void srv_api_call_cleanup(srv_call *c)
{
    if (c->counted)
        srv_server_end(c->srv);
    srv_request_free(c->req);
    srv_model_release(c->model);
    free(c->job_name);
    free(c->resp.body);
    memset(c, 0, sizeof *c);
}
