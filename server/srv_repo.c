/* srv_repo.c: repository scanning, model loading/unloading, version selection, states. */
#include "srv_repo.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "srv_buf.h"
#include "rt_optimize.h"
#include "srv_log.h"
#include "srv_tp.h"
#include "tp_session.h"

typedef enum { ENTRY_READY, ENTRY_UNAVAILABLE } entry_state;

typedef struct repo_entry {
    char *name;
    entry_state state;
    char reason[SRV_ERR_MAX];
    int n_models;
    srv_model **models;          /* loaded versions, ascending */
    char signature[512];         /* mtimes of what was loaded, to notice changes */
} repo_entry;

struct srv_repo {
    char *dir;
    rt_backend_kind backend;
    int cpu_threads;
    pthread_mutex_t mu;          /* guards entries */
    pthread_mutex_t load_mu;     /* serializes loads, unloads and polls */
    int n_entries;
    repo_entry *entries;
    /* The last reference to a model is often dropped on an HTTP thread (a request finishing
     * after an unload); freeing there would join the model's workers and stall the event
     * loop, so the reaper thread frees models instead. */
    pthread_t reaper;
    bool reaper_started, reaper_stop;
    pthread_mutex_t reap_mu;
    pthread_cond_t reap_cv;
    srv_model *dead;             /* models waiting to be freed */
};

bool srv_repo_valid_name(const char *name)
{
    return name && name[0] && name[0] != '.' && !strchr(name, '/') && !strstr(name, "..") &&
           strlen(name) < 200;
}

static void model_free(srv_model *m);

static void *reaper_main(void *arg)
{
    srv_repo *r = arg;
    pthread_mutex_lock(&r->reap_mu);
    for (;;) {
        srv_model *m = r->dead;
        if (m) {
            r->dead = m->next_dead;
            pthread_mutex_unlock(&r->reap_mu);
            model_free(m);
            pthread_mutex_lock(&r->reap_mu);
        } else if (r->reaper_stop) {
            break;
        } else {
            pthread_cond_wait(&r->reap_cv, &r->reap_mu);
        }
    }
    pthread_mutex_unlock(&r->reap_mu);
    return NULL;
}

srv_repo *srv_repo_create(const srv_repo_options *o)
{
    srv_repo *r = calloc(1, sizeof *r);
    if (!r || !(r->dir = strdup(o->dir))) {
        free(r);
        return NULL;
    }
    r->backend = o->backend;
    r->cpu_threads = o->cpu_threads;
    pthread_mutex_init(&r->mu, NULL);
    pthread_mutex_init(&r->load_mu, NULL);
    pthread_mutex_init(&r->reap_mu, NULL);
    pthread_cond_init(&r->reap_cv, NULL);
    /* without the thread, models are freed where their last reference drops */
    r->reaper_started = pthread_create(&r->reaper, NULL, reaper_main, r) == 0;
    if (!r->reaper_started)
        SRV_WARN("cannot start the model reaper thread: unloaded models are freed inline");
    return r;
}

/* ---- one loaded version ---- */

static void *session_create(void *arg, int instance, rt_error *err)
{
    srv_model *m = arg;
    if (instance == 0 && m->first) {
        rt_session *s = m->first;
        m->first = NULL;
        return s;
    }
    rt_session_options opts = m->opts;
    opts.backend = m->placement[instance].backend;
    opts.device = m->placement[instance].device;
    return rt_session_create(m->path, &opts, err);
}

/* Places the instances (srv_instances.h); instance 0's placement goes into m->opts, for the
 * session made while loading. */
static rt_status place_instances(srv_model *m, const srv_repo *r, rt_error *err)
{
    int n = 0;
    rt_status st = srv_instances_place(&m->cfg, r->backend, rt_cuda_device_count(), m->placement,
                                       &n, err);
    if (st != RT_OK)
        return st;
    m->cfg.instance_count = n;
    m->opts.backend = m->placement[0].backend;
    m->opts.device = m->placement[0].device;
    return RT_OK;
}

static rt_status session_run(void *ctx, const rt_tensor *const *in, int n_in, rt_tensor **out,
                             int n_out, rt_error *err)
{
    return rt_session_run(ctx, in, n_in, out, n_out, err);
}

static void session_destroy(void *ctx)
{
    rt_session_free(ctx);
}

static void model_free(srv_model *m)
{
    srv_batcher_free(m->batcher);
    rt_session_free(m->first);
    tp_session_free(m->first_tp);
    srv_stats_destroy(&m->stats);
    srv_model_config_free(&m->cfg);
    free(m->name);
    free(m->path);
    free(m);
}

void srv_model_release(srv_model *m)
{
    if (!m || __atomic_sub_fetch(&m->refs, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    srv_repo *r = m->repo;
    if (!r || !r->reaper_started) {
        model_free(m);
        return;
    }
    pthread_mutex_lock(&r->reap_mu);
    m->next_dead = r->dead;
    r->dead = m;
    pthread_cond_signal(&r->reap_cv);
    pthread_mutex_unlock(&r->reap_mu);
}

static srv_model *model_ref(srv_model *m)
{
    __atomic_add_fetch(&m->refs, 1, __ATOMIC_RELAXED);
    return m;
}

static rt_status read_config(const char *model_dir, const char *name, srv_model_config *cfg,
                             rt_error *err)
{
    char path[PATH_MAX];
    srv_strfmt(path, sizeof path, "%s/config.json", model_dir);
    if (access(path, F_OK) != 0)
        return srv_model_config_default(cfg, name, err);
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        srv_model_config_default(cfg, name, NULL);
        return rt_error_set(err, RT_ERR_PARSE, "config.json line %d: %s", jerr.line, jerr.text);
    }
    rt_status st = srv_model_config_parse(cfg, root, name, err);
    json_decref(root);
    return st;
}


/* Plans memory with zero inputs (dynamic dims = 1) so the first request does not, and logs
 * what the optimizer and compression did and the activation memory, once per model version
 * at load. */
static void warm_up_and_log(const char *name, int64_t version, rt_session *s,
                            const rt_compress_options *compress)
{
    rt_error err = {0};
    if (rt_session_plan_default(s, &err) != RT_OK)
        SRV_WARN("model '%s' version %lld: warm-up with zero inputs failed (%s); memory is "
                 "planned at the first request", name, (long long)version, err.text);
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    char fusions[512] = "";
    size_t used = 0;
    for (int k = 0; k < RT_OPT_COUNT && used < sizeof fusions; k++)
        if (st.optimizer.rewrites[k])
            used += (size_t)snprintf(fusions + used, sizeof fusions - used, "%s%s %d",
                                     used ? ", " : "", rt_opt_rewrite_name((rt_opt_rewrite)k),
                                     st.optimizer.rewrites[k]);
    SRV_INFO("model '%s' version %lld: %d nodes loaded, %d executed (%s); weights %zu bytes; "
             "activations %zu bytes planned, %zu without reuse", name, (long long)version,
             st.optimizer.nodes_before ? st.optimizer.nodes_before : st.n_nodes, st.n_nodes,
             used ? fusions : "optimizer off or nothing to rewrite", st.weight_bytes,
             st.peak_activation_bytes, st.naive_activation_bytes);
    if (rt_compress_options_active(compress))
        SRV_INFO("model '%s' version %lld: compression changed %d node(s): weights %zu -> %zu "
                 "bytes", name, (long long)version, st.compress.n_entries,
                 st.compress.weight_bytes_before, st.compress.weight_bytes_after);
    for (int i = 0; i < st.compress.n_entries; i++)
        SRV_VERBOSE("model '%s' version %lld: node '%s': %s, %zu -> %zu bytes", name,
                    (long long)version, st.compress.entries[i].node,
                    st.compress.entries[i].technique, st.compress.entries[i].bytes_before,
                    st.compress.entries[i].bytes_after);
}

static srv_model *model_load(srv_repo *r, const char *name, const char *model_dir, int64_t version,
                             rt_error *err)
{
    srv_model *m = calloc(1, sizeof *m);
    if (!m) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    m->refs = 1;
    m->repo = r;
    m->version = version;
    srv_strfmt(m->version_str, sizeof m->version_str, "%lld", (long long)version);
    char path[PATH_MAX];
    rt_status st = read_config(model_dir, name, &m->cfg, err);
    if (st == RT_OK) {
        srv_strfmt(path, sizeof path, "%s/%lld/%s", model_dir, (long long)version,
                 m->cfg.default_model_filename);
        m->name = strdup(name);
        m->path = strdup(path);
        if (!m->name || !m->path)
            st = rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    if (st == RT_OK) {
        rt_session_options_init(&m->opts);
        m->opts.backend = r->backend;
        m->opts.threads = m->cfg.cpu_threads >= 0 ? m->cfg.cpu_threads : r->cpu_threads;
        m->opts.no_optimize = !m->cfg.optimize;
        m->opts.compress = m->cfg.compress;
        if (m->cfg.tensor_parallel > 1)
            st = srv_tp_load(m, err);
        else if (place_instances(m, r, err) != RT_OK)
            st = err ? err->status : RT_ERR_UNSUPPORTED;
        else if (!(m->first = rt_session_create(m->path, &m->opts, err)))
            st = err ? err->status : RT_ERR_IO;
        else
            warm_up_and_log(name, version, m->first, &m->opts.compress);
    }
    if (st == RT_OK) {
        char what[300];
        srv_strfmt(what, sizeof what, "model '%s' version %lld", name, (long long)version);
        st = srv_guard_check(&m->cfg.guard, model_dir, m->path, &m->opts, m->first,
                             m->cfg.max_batch_size, what, err);
    }
    if (st == RT_OK)
        st = srv_model_config_complete(&m->cfg, m->first ? rt_session_graph(m->first)
                                                         : srv_tp_graph(m), err);
    if (st == RT_OK && srv_stats_init(&m->stats, (int)(m->cfg.max_batch_size ? m->cfg.max_batch_size : 1)))
        st = rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    if (st == RT_OK) {
        srv_batcher_options bo;
        srv_batcher_options_from_config(&bo, &m->cfg);
        srv_runner runner = m->cfg.tensor_parallel > 1
                                ? srv_tp_runner(m)
                                : (srv_runner){session_create, session_run, session_destroy, m};
        m->batcher = srv_batcher_create(&bo, &runner, m->cfg.n_inputs, m->cfg.n_graph_outputs,
                                        &m->stats, err);
        if (!m->batcher)
            st = err ? err->status : RT_ERR_INTERNAL;
    }
    if (st != RT_OK) {
        rt_error_prefix(err, "version %lld: ", (long long)version);
        model_free(m);
        return NULL;
    }
    return m;
}

/* ---- scanning ---- */

static int cmp_desc(const void *a, const void *b)
{
    int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
    return x < y ? 1 : x > y ? -1 : 0;
}

static int cmp_asc_model(const void *a, const void *b)
{
    int64_t x = (*(srv_model *const *)a)->version, y = (*(srv_model *const *)b)->version;
    return x < y ? -1 : x > y ? 1 : 0;
}

/* Numeric version folders of a model, highest first; -1 if the folder is unreadable. */
static int list_versions(const char *model_dir, int64_t *out, int max)
{
    DIR *d = opendir(model_dir);
    if (!d)
        return -1;
    int n = 0;
    struct dirent *e;
    while ((e = readdir(d)) && n < max) {
        char *end;
        long long v = strtoll(e->d_name, &end, 10);
        if (*end || end == e->d_name || v < 1 || e->d_name[0] == '+')
            continue;
        char path[PATH_MAX];
        struct stat st;
        srv_strfmt(path, sizeof path, "%s/%s", model_dir, e->d_name);
        if (stat(path, &st) == 0 && S_ISDIR(st.st_mode))
            out[n++] = v;
    }
    closedir(d);
    qsort(out, (size_t)n, sizeof *out, cmp_desc);
    return n;
}

/* Concatenated mtimes of the model folder's contents that matter; "" when it is gone. */
static void model_signature(const char *model_dir, char *sig, size_t size)
{
    int64_t versions[SRV_MAX_VERSIONS];
    struct stat st;
    char path[PATH_MAX];
    size_t len = 0;
    sig[0] = '\0';
    srv_strfmt(path, sizeof path, "%s/config.json", model_dir);
    if (stat(path, &st) == 0)
        len += (size_t)snprintf(sig + len, size - len, "c%lld.%ld", (long long)st.st_mtim.tv_sec,
                                st.st_mtim.tv_nsec);
    int n = list_versions(model_dir, versions, SRV_MAX_VERSIONS);
    for (int i = 0; i < n && len < size; i++) {
        srv_strfmt(path, sizeof path, "%s/%lld", model_dir, (long long)versions[i]);
        DIR *d = opendir(path);
        struct dirent *e;
        while (d && (e = readdir(d)) && len < size) {
            char file[PATH_MAX + 256];
            srv_strfmt(file, sizeof file, "%s/%s", path, e->d_name);
            if (e->d_name[0] != '.' && stat(file, &st) == 0)
                len += (size_t)snprintf(sig + len, size - len, "/%lld:%lld.%ld",
                                        (long long)versions[i], (long long)st.st_mtim.tv_sec,
                                        st.st_mtim.tv_nsec);
        }
        if (d)
            closedir(d);
    }
}

/* Loads the versions the policy selects. Returns the count (>0) or -1 with err. */
static int load_versions(srv_repo *r, const char *name, srv_model ***out, rt_error *err)
{
    char model_dir[PATH_MAX];
    srv_strfmt(model_dir, sizeof model_dir, "%s/%s", r->dir, name);
    struct stat st;
    if (stat(model_dir, &st) != 0 || !S_ISDIR(st.st_mode)) {
        rt_error_set(err, RT_ERR_IO, "model folder %s not found", model_dir);
        return -1;
    }
    srv_model_config cfg;
    rt_status s = read_config(model_dir, name, &cfg, err);
    if (s != RT_OK) {
        srv_model_config_free(&cfg);
        return -1;
    }
    int64_t versions[SRV_MAX_VERSIONS], chosen[SRV_MAX_VERSIONS];
    int n = list_versions(model_dir, versions, SRV_MAX_VERSIONS), n_chosen = 0;
    for (int i = 0; i < n; i++) {
        bool take = cfg.version_policy == SRV_VERSIONS_ALL ||
                    (cfg.version_policy == SRV_VERSIONS_LATEST && i < cfg.num_versions);
        for (int k = 0; cfg.version_policy == SRV_VERSIONS_SPECIFIC && k < cfg.n_versions; k++)
            take = take || cfg.versions[k] == versions[i];
        if (take)
            chosen[n_chosen++] = versions[i];
    }
    srv_model_config_free(&cfg);
    if (n_chosen == 0) {
        rt_error_set(err, RT_ERR_IO, "no version folder of %s matches the version policy",
                     model_dir);
        return -1;
    }
    srv_model **models = calloc((size_t)n_chosen, sizeof *models);
    if (!models) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        return -1;
    }
    for (int i = 0; i < n_chosen; i++) {
        if (!(models[i] = model_load(r, name, model_dir, chosen[i], err))) {
            for (int k = 0; k < i; k++)
                srv_model_release(models[k]);
            free(models);
            return -1;
        }
    }
    qsort(models, (size_t)n_chosen, sizeof *models, cmp_asc_model);
    *out = models;
    return n_chosen;
}

static repo_entry *find_entry(srv_repo *r, const char *name)
{
    for (int i = 0; i < r->n_entries; i++)
        if (strcmp(r->entries[i].name, name) == 0)
            return &r->entries[i];
    return NULL;
}

static repo_entry *get_entry(srv_repo *r, const char *name)
{
    repo_entry *e = find_entry(r, name);
    if (e)
        return e;
    repo_entry *grown = realloc(r->entries, sizeof *grown * (size_t)(r->n_entries + 1));
    if (!grown)
        return NULL;
    r->entries = grown;
    e = &r->entries[r->n_entries];
    memset(e, 0, sizeof *e);
    if (!(e->name = strdup(name)))
        return NULL;
    r->n_entries++;
    return e;
}

/* Replaces an entry's models (under r->mu); returns the old ones for release outside it. */
static srv_model **swap_models(repo_entry *e, srv_model **models, int n, int *n_old)
{
    srv_model **old = e->models;
    *n_old = e->n_models;
    e->models = models;
    e->n_models = n;
    return old;
}

static void release_all(srv_model **models, int n)
{
    for (int i = 0; i < n; i++)
        srv_model_release(models[i]);
    free(models);
}

static rt_status load_locked(srv_repo *r, const char *name, rt_error *err)
{
    if (!srv_repo_valid_name(name))
        return rt_error_set(err, RT_ERR_INVALID_ARG, "invalid model name '%s'", name);
    char model_dir[PATH_MAX], sig[512];
    srv_strfmt(model_dir, sizeof model_dir, "%s/%s", r->dir, name);
    model_signature(model_dir, sig, sizeof sig);
    srv_model **models = NULL;
    rt_error local;
    rt_error *e_out = err ? err : &local;
    int n = load_versions(r, name, &models, e_out);
    pthread_mutex_lock(&r->mu);
    repo_entry *e = get_entry(r, name);
    int n_old = 0;
    srv_model **old = NULL;
    if (e) {
        srv_strfmt(e->signature, sizeof e->signature, "%s", sig);
        if (n > 0) {
            old = swap_models(e, models, n, &n_old);
            e->state = ENTRY_READY;
            e->reason[0] = '\0';
        } else {
            old = swap_models(e, NULL, 0, &n_old);
            e->state = ENTRY_UNAVAILABLE;
            srv_strfmt(e->reason, sizeof e->reason, "%s", e_out->text);
        }
    }
    pthread_mutex_unlock(&r->mu);
    release_all(old, n_old);
    if (!e) {
        release_all(models, n > 0 ? n : 0);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    if (n < 0) {
        SRV_ERROR("model '%s' is UNAVAILABLE: %s", name, e_out->text);
        return e_out->status ? e_out->status : RT_ERR_IO;
    }
    for (int i = 0; i < n; i++)
        SRV_INFO("model '%s' version %lld is READY (%d instance(s), max_batch_size %lld%s)", name,
                 (long long)models[i]->version, models[i]->cfg.instance_count,
                 (long long)models[i]->cfg.max_batch_size,
                 models[i]->cfg.dynamic_batching ? ", dynamic batching" : "");
    return RT_OK;
}

rt_status srv_repo_load(srv_repo *r, const char *name, rt_error *err)
{
    pthread_mutex_lock(&r->load_mu);
    rt_status st = load_locked(r, name, err);
    pthread_mutex_unlock(&r->load_mu);
    return st;
}

static rt_status unload_locked(srv_repo *r, const char *name, rt_error *err)
{
    pthread_mutex_lock(&r->mu);
    repo_entry *e = find_entry(r, name);
    int n_old = 0;
    srv_model **old = NULL;
    if (e) {
        old = swap_models(e, NULL, 0, &n_old);
        e->state = ENTRY_UNAVAILABLE;
        srv_strfmt(e->reason, sizeof e->reason, "unloaded");
        e->signature[0] = '\0';
    }
    pthread_mutex_unlock(&r->mu);
    if (!e)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "unknown model '%s'", name);
    release_all(old, n_old);
    SRV_INFO("model '%s' unloaded", name);
    return RT_OK;
}

rt_status srv_repo_unload(srv_repo *r, const char *name, rt_error *err)
{
    pthread_mutex_lock(&r->load_mu);
    rt_status st = unload_locked(r, name, err);
    pthread_mutex_unlock(&r->load_mu);
    return st;
}

void srv_repo_poll(srv_repo *r, bool load_new)
{
    pthread_mutex_lock(&r->load_mu);
    DIR *d = opendir(r->dir);
    if (!d)
        SRV_ERROR("cannot read the model repository %s: %s", r->dir, strerror(errno));
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char model_dir[PATH_MAX], sig[512];
        struct stat st;
        srv_strfmt(model_dir, sizeof model_dir, "%s/%s", r->dir, de->d_name);
        if (de->d_name[0] == '.' || stat(model_dir, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        model_signature(model_dir, sig, sizeof sig);
        pthread_mutex_lock(&r->mu);
        repo_entry *e = find_entry(r, de->d_name);
        bool known = e && e->signature[0], changed = e && strcmp(e->signature, sig) != 0;
        pthread_mutex_unlock(&r->mu);
        if ((!e && load_new) || (known && changed))
            load_locked(r, de->d_name, NULL);
    }
    if (d)
        closedir(d);
    /* models whose folder disappeared */
    for (int i = 0;; i++) {
        char name[256] = "", model_dir[PATH_MAX];
        struct stat st;
        pthread_mutex_lock(&r->mu);
        if (i < r->n_entries && r->entries[i].n_models)
            srv_strfmt(name, sizeof name, "%s", r->entries[i].name);
        int n = r->n_entries;
        pthread_mutex_unlock(&r->mu);
        if (i >= n)
            break;
        srv_strfmt(model_dir, sizeof model_dir, "%s/%s", r->dir, name);
        if (name[0] && stat(model_dir, &st) != 0)
            unload_locked(r, name, NULL);
    }
    pthread_mutex_unlock(&r->load_mu);
}

srv_model *srv_repo_acquire(srv_repo *r, const char *name, const char *version, int *status,
                            char *msg)
{
    srv_model *m = NULL;
    pthread_mutex_lock(&r->mu);
    repo_entry *e = find_entry(r, name);
    if (!e) {
        *status = 404;
        srv_strfmt(msg, SRV_ERR_MAX, "unknown model '%s'", name);
    } else if (e->n_models == 0) {
        *status = 503;
        srv_strfmt(msg, SRV_ERR_MAX, "model '%s' is not ready: %s", name, e->reason);
    } else if (!version || !version[0]) {
        m = model_ref(e->models[e->n_models - 1]);
    } else {
        for (int i = 0; i < e->n_models; i++)
            if (strcmp(e->models[i]->version_str, version) == 0)
                m = model_ref(e->models[i]);
        if (!m) {
            *status = 404;
            srv_strfmt(msg, SRV_ERR_MAX, "unknown version '%s' of model '%s'", version, name);
        }
    }
    pthread_mutex_unlock(&r->mu);
    return m;
}

int srv_repo_snapshot(srv_repo *r, srv_model ***out)
{
    pthread_mutex_lock(&r->mu);
    int n = 0;
    for (int i = 0; i < r->n_entries; i++)
        n += r->entries[i].n_models;
    srv_model **models = calloc((size_t)n + 1, sizeof *models);
    n = 0;
    for (int i = 0; models && i < r->n_entries; i++)
        for (int k = 0; k < r->entries[i].n_models; k++)
            models[n++] = model_ref(r->entries[i].models[k]);
    pthread_mutex_unlock(&r->mu);
    *out = models;
    return models ? n : 0;
}

static int cmp_names(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

json_t *srv_repo_index(srv_repo *r, bool ready_only)
{
    json_t *arr = json_array();
    /* every model folder on disk, loaded or not, sorted by name (entries that cannot be
     * stored for lack of memory are left out) */
    char **names = NULL;
    int n_names = 0, cap = 0;
    DIR *d = opendir(r->dir);
    struct dirent *de;
    while (d && (de = readdir(d))) {
        char path[PATH_MAX];
        struct stat st;
        srv_strfmt(path, sizeof path, "%s/%s", r->dir, de->d_name);
        if (!srv_repo_valid_name(de->d_name) || stat(path, &st) != 0 || !S_ISDIR(st.st_mode))
            continue;
        if (n_names == cap) {
            char **grown = realloc(names, sizeof *names * (size_t)(cap = cap ? cap * 2 : 64));
            if (!grown)
                break;
            names = grown;
        }
        if ((names[n_names] = strdup(de->d_name)))
            n_names++;
    }
    if (d)
        closedir(d);
    if (n_names)
        qsort(names, (size_t)n_names, sizeof *names, cmp_names);
    pthread_mutex_lock(&r->mu);
    for (int i = 0; i < n_names; i++) {
        repo_entry *e = find_entry(r, names[i]);
        if (e && e->n_models) {
            for (int k = 0; k < e->n_models; k++)
                json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name", e->name,
                                                     "version", e->models[k]->version_str, "state",
                                                     "READY", "reason", ""));
        } else if (!ready_only && e) {
            json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", e->name, "state",
                                                 "UNAVAILABLE", "reason", e->reason));
        } else if (!ready_only) {
            json_array_append_new(arr, json_pack("{s:s}", "name", names[i]));
        }
        free(names[i]);
    }
    pthread_mutex_unlock(&r->mu);
    free(names);
    return arr;
}

void srv_repo_cancel_queued(srv_repo *r, const char *reason)
{
    srv_model **models;
    int n = srv_repo_snapshot(r, &models);
    for (int i = 0; i < n; i++) {
        srv_batcher_cancel_queued(models[i]->batcher, reason);
        srv_model_release(models[i]);
    }
    free(models);
}

void srv_repo_free(srv_repo *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_entries; i++) {
        release_all(r->entries[i].models, r->entries[i].n_models);
        free(r->entries[i].name);
    }
    free(r->entries);
    if (r->reaper_started) {
        pthread_mutex_lock(&r->reap_mu);
        r->reaper_stop = true;
        pthread_cond_signal(&r->reap_cv);
        pthread_mutex_unlock(&r->reap_mu);
        pthread_join(r->reaper, NULL); /* it frees what is queued before it stops */
    }
    pthread_cond_destroy(&r->reap_cv);
    pthread_mutex_destroy(&r->reap_mu);
    pthread_mutex_destroy(&r->mu);
    pthread_mutex_destroy(&r->load_mu);
    free(r->dir);
    free(r);
}
