/* tp_session.c: tensor-parallel execution on the CPU (tp_session.h): per rank a graph
 * loaded, optimized, sharded and wrapped in an rt_session whose infd.AllReduce and
 * infd.AllGather kernels go through that rank's in-process communicator. A run drives rank
 * 0 on the caller's thread and the others on worker threads that live as long as the
 * session (so that each keeps its OpenMP team from run to run). A failed run leaves the
 * group aborted; the session then replaces it with a fresh group. */
#include "tp_session.h"

#include <omp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "rt_onnx.h"
#include "tp_comm.h"

typedef struct rank_job rank_job;

typedef struct {
    struct tp_session *t;
    int r;
} worker_arg;

struct tp_session {
    int size;
    tp_comm **comms;   /* the current group; rank r's kernels reach comms[r] through &comms[r] */
    bool broken;       /* a failed run's group could not be replaced */
    rt_session **ranks;
    tp_shard_report shard;
    rt_optimize_report optimizer;
    /* workers for ranks 1..size-1: a run publishes jobs and bumps gen; pending counts the
     * workers still busy with it */
    pthread_mutex_t mu;
    pthread_cond_t go, done;
    bool sync_ready, stop;
    unsigned gen;
    int pending, n_workers;
    rank_job *jobs;
    pthread_t *threads;
    worker_arg *worker_args;
};

/* One rank's share of a run (plan: rt_session_plan_default instead). */
struct rank_job {
    tp_session *t;
    int r;
    bool plan;
    const rt_tensor *const *in;
    int n_in, n_out;
    rt_tensor **out;
    rt_status st;
    rt_error err;
};

static void rank_main(rank_job *j)
{
    rt_session *s = j->t->ranks[j->r];
    j->st = j->plan ? rt_session_plan_default(s, &j->err)
                    : rt_session_run(s, j->in, j->n_in, j->out, j->n_out, &j->err);
    if (j->st != RT_OK)
        tp_comm_abort(j->t->comms[j->r]); /* so that the peers do not wait for this rank */
}

static void *worker_main(void *p)
{
    worker_arg *a = p;
    tp_session *t = a->t;
    unsigned seen = 0; /* the generation at creation: a run may bump it before we get here */
    pthread_mutex_lock(&t->mu);
    for (;;) {
        while (t->gen == seen && !t->stop)
            pthread_cond_wait(&t->go, &t->mu);
        if (t->stop)
            break;
        seen = t->gen;
        rank_job *job = &t->jobs[a->r];
        pthread_mutex_unlock(&t->mu);
        rank_main(job);
        pthread_mutex_lock(&t->mu);
        if (--t->pending == 0)
            pthread_cond_signal(&t->done);
    }
    pthread_mutex_unlock(&t->mu);
    return NULL;
}

static rt_status start_workers(tp_session *t, rt_error *err)
{
    if (pthread_mutex_init(&t->mu, NULL) != 0)
        return rt_error_set(err, RT_ERR_INTERNAL, "cannot create a mutex");
    if (pthread_cond_init(&t->go, NULL) != 0) {
        pthread_mutex_destroy(&t->mu);
        return rt_error_set(err, RT_ERR_INTERNAL, "cannot create a condition variable");
    }
    if (pthread_cond_init(&t->done, NULL) != 0) {
        pthread_cond_destroy(&t->go);
        pthread_mutex_destroy(&t->mu);
        return rt_error_set(err, RT_ERR_INTERNAL, "cannot create a condition variable");
    }
    t->sync_ready = true;
    for (int r = 1; r < t->size; r++) {
        t->worker_args[r] = (worker_arg){t, r};
        if (pthread_create(&t->threads[r], NULL, worker_main, &t->worker_args[r]) != 0)
            return rt_error_set(err, RT_ERR_INTERNAL, "cannot start the thread of rank %d", r);
        t->n_workers = r;
    }
    return RT_OK;
}

/* arg: &t->comms[r], so that a replaced group reaches the kernels */
static rt_status all_reduce(void *arg, float *buf, size_t n, rt_error *err)
{
    return tp_comm_all_reduce_sum(*(tp_comm **)arg, buf, buf, n, RT_DTYPE_F32, NULL, err);
}

static rt_status all_gather(void *arg, const float *send, float *recv, size_t n, rt_error *err)
{
    return tp_comm_all_gather(*(tp_comm **)arg, send, recv, n, RT_DTYPE_F32, NULL, err);
}

static rt_graph *load_file(void *arg, rt_error *err) { return rt_onnx_load_file(arg, err); }

/* Rank r's session: its copy of the graph, optimized and sharded. */
static rt_session *rank_create(tp_session *t, int r, tp_graph_loader load, void *arg,
                               const rt_session_options *opts, rt_error *err)
{
    rt_graph *g = load(arg, err);
    if (!g)
        return NULL;
    rt_optimize_report opt, tidy;
    tp_shard_report shard;
    /* the folding pass after sharding drops the row-parallel biases ranks > 0 no longer
     * read, so that they hold no weight they do not use */
    if (rt_graph_check(g, err) != RT_OK ||
        rt_optimize(g, RT_OPT_PASS_ALL, NULL, &opt, err) != RT_OK ||
        tp_shard(g, r, t->size, &shard, err) != RT_OK ||
        rt_optimize(g, RT_OPT_PASS_FOLD, NULL, &tidy, err) != RT_OK) {
        rt_graph_free(g);
        return NULL;
    }
    if (r == 0) {
        t->optimizer = opt;
        t->shard = shard;
    }
    rt_session_options o = *opts;
    o.backend = RT_BACKEND_CPU;
    o.no_optimize = true;
    o.collectives = (rt_collectives){all_reduce, all_gather, &t->comms[r]};
    return rt_session_create_from_graph(g, &o, err);
}

tp_session *tp_session_create_with(tp_graph_loader load, void *arg, int size,
                                   const rt_session_options *opts, rt_error *err)
{
    rt_session_options defaults;
    if (!opts) {
        rt_session_options_init(&defaults);
        opts = &defaults;
    }
    if (opts->backend == RT_BACKEND_CUDA) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "tensor parallelism runs on the cpu backend only "
                     "(execution over NCCL is not implemented yet)");
        return NULL;
    }
    if (size < 1) {
        rt_error_set(err, RT_ERR_INVALID_ARG, "tensor-parallel size must be at least 1, not %d",
                     size);
        return NULL;
    }
    if (rt_compress_options_active(&opts->compress)) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "tensor parallelism shards the uncompressed "
                     "graph: compression (quantize, precision, prune, low-rank) cannot be "
                     "combined with it");
        return NULL;
    }
    tp_session *t = calloc(1, sizeof *t);
    if (t) {
        t->size = size;
        t->comms = calloc((size_t)size, sizeof *t->comms);
        t->ranks = calloc((size_t)size, sizeof *t->ranks);
        t->threads = calloc((size_t)size, sizeof *t->threads);
        t->worker_args = calloc((size_t)size, sizeof *t->worker_args);
    }
    if (!t || !t->comms || !t->ranks || !t->threads || !t->worker_args) {
        tp_session_free(t);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory creating a tensor-parallel session");
        return NULL;
    }
    if (tp_comm_local_create(size, t->comms, err) != RT_OK) {
        tp_session_free(t);
        return NULL;
    }
    rt_session_options o = *opts;
    if (o.threads <= 0) {
        o.threads = omp_get_num_procs() / size;
        o.threads = o.threads > 0 ? o.threads : 1;
    }
    for (int r = 0; r < size; r++)
        if (!(t->ranks[r] = rank_create(t, r, load, arg, &o, err))) {
            rt_error_prefix(err, "tensor-parallel rank %d of %d: ", r, size);
            tp_session_free(t);
            return NULL;
        }
    if (start_workers(t, err) != RT_OK) {
        tp_session_free(t);
        return NULL;
    }
    return t;
}

tp_session *tp_session_create(const char *model_path, int size, const rt_session_options *opts,
                              rt_error *err)
{
    return tp_session_create_with(load_file, (void *)model_path, size, opts, err);
}

void tp_session_free(tp_session *t)
{
    if (!t)
        return;
    if (t->sync_ready) {
        pthread_mutex_lock(&t->mu);
        t->stop = true;
        pthread_cond_broadcast(&t->go);
        pthread_mutex_unlock(&t->mu);
        for (int r = 1; r <= t->n_workers; r++)
            pthread_join(t->threads[r], NULL);
        pthread_cond_destroy(&t->done);
        pthread_cond_destroy(&t->go);
        pthread_mutex_destroy(&t->mu);
    }
    for (int r = 0; r < t->size; r++) {
        if (t->ranks)
            rt_session_free(t->ranks[r]);
        if (t->comms)
            tp_comm_free(t->comms[r]);
    }
    free(t->ranks);
    free(t->comms);
    free(t->threads);
    free(t->worker_args);
    free(t);
}

int tp_session_size(const tp_session *t) { return t->size; }
rt_session *tp_session_rank(tp_session *t, int r) { return t->ranks[r]; }
const tp_shard_report *tp_session_shard_report(const tp_session *t) { return &t->shard; }
const rt_optimize_report *tp_session_optimize_report(const tp_session *t) { return &t->optimizer; }

/* Runs every rank's job, rank 0 on this thread, the others on the workers; reports the
 * error of a rank that failed by itself (not merely because a peer aborted the group) when
 * there is one. */
static rt_status run_ranks(tp_session *t, rank_job *jobs, rt_error *err)
{
    pthread_mutex_lock(&t->mu);
    t->jobs = jobs;
    t->pending = t->size - 1;
    t->gen++;
    pthread_cond_broadcast(&t->go);
    pthread_mutex_unlock(&t->mu);
    rank_main(&jobs[0]);
    pthread_mutex_lock(&t->mu);
    while (t->pending > 0)
        pthread_cond_wait(&t->done, &t->mu);
    pthread_mutex_unlock(&t->mu);
    int bad = -1;
    for (int r = t->size - 1; r >= 0; r--)
        if (jobs[r].st != RT_OK && (bad < 0 || jobs[r].st != RT_ERR_BACKEND))
            bad = r;
    if (bad < 0)
        return RT_OK;
    *err = jobs[bad].err;
    return rt_error_prefix(err, "tensor-parallel rank %d: ", bad);
}

static rt_status run_all(tp_session *t, bool plan, const rt_tensor *const *inputs, int n_in,
                         rt_tensor **outputs, int n_out, rt_error *err)
{
    rank_job *jobs = calloc((size_t)t->size, sizeof *jobs);
    rt_tensor **spare = calloc((size_t)t->size * (size_t)(n_out > 0 ? n_out : 1), sizeof *spare);
    if (!jobs || !spare) {
        free(jobs);
        free(spare);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory running tensor-parallel ranks");
    }
    for (int r = 0; r < t->size; r++)
        jobs[r] = (rank_job){.t = t, .r = r, .plan = plan, .in = inputs, .n_in = n_in,
                             .n_out = n_out, .out = r == 0 ? outputs : spare + r * n_out};
    rt_status st = run_ranks(t, jobs, err);
    for (int k = 0; k < t->size * n_out; k++)
        rt_tensor_free(spare[k]);
    free(spare);
    free(jobs);
    return st;
}

/* After a failed run every rank has returned and the group is aborted: a new group
 * takes its place (the ranks' kernels find it through &comms[r]). */
static void replace_group(tp_session *t)
{
    tp_comm **fresh = calloc((size_t)t->size, sizeof *fresh);
    rt_error err = {0};
    if (!fresh || tp_comm_local_create(t->size, fresh, &err) != RT_OK) {
        free(fresh);
        t->broken = true;
        return;
    }
    for (int r = 0; r < t->size; r++) {
        tp_comm_free(t->comms[r]);
        t->comms[r] = fresh[r];
    }
    free(fresh);
}

static rt_status run_checked(tp_session *t, bool plan, const rt_tensor *const *inputs,
                             int n_in, rt_tensor **outputs, int n_out, rt_error *err)
{
    if (t->broken)
        return rt_error_set(err, RT_ERR_BACKEND, "tensor-parallel session: a failed run's "
                            "communicator group could not be replaced (out of memory)");
    rt_status st = run_all(t, plan, inputs, n_in, outputs, n_out, err);
    if (st != RT_OK)
        replace_group(t);
    return st;
}

rt_status tp_session_run(tp_session *t, const rt_tensor *const *inputs, int n_inputs,
                         rt_tensor **outputs, int n_outputs, rt_error *err)
{
    for (int k = 0; k < n_outputs; k++)
        outputs[k] = NULL;
    /* inputs the ranks would refuse are refused here, before any rank starts */
    rt_status st = rt_session_check_inputs(t->ranks[0], inputs, n_inputs, err);
    return st != RT_OK ? st : run_checked(t, false, inputs, n_inputs, outputs, n_outputs, err);
}

rt_status tp_session_plan_default(tp_session *t, rt_error *err)
{
    return run_checked(t, true, NULL, 0, NULL, 0, err);
}
