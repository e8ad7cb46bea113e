/* srv_batcher.c: queue, batch formation, execution, and output splitting. */
#include "srv_batcher.h"

#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct srv_instance {
    struct srv_batcher *b;
    void *ctx;
    srv_request **reqs; /* room for the largest batch (+1), allocated at create */
    /* execute's per-batch arrays, allocated at create: model inputs, the inputs it
     * concatenated (owned during a batch), the outputs (owned until handed over) */
    const rt_tensor **in;
    rt_tensor **owned, **outs;
    pthread_t thread;
    pthread_cond_t cv;  /* where this instance waits for work (under the batcher's mu) */
    bool cv_ready;
    bool sleeping;      /* waiting on cv and not signalled yet (under mu) */
    bool started;
} srv_instance;

struct srv_batcher {
    srv_batcher_options o;
    srv_runner runner;
    int n_inputs, n_outputs;
    srv_stats *stats;
    pthread_mutex_t mu;
    srv_request *head, *tail;
    int64_t queued;
    bool stopping;
    int n_instances;
    srv_instance *instances;
};

void srv_batcher_options_from_config(srv_batcher_options *o, const srv_model_config *cfg)
{
    memset(o, 0, sizeof *o);
    o->max_batch_size = cfg->max_batch_size;
    o->dynamic = cfg->dynamic_batching && cfg->max_batch_size > 0;
    o->n_preferred = cfg->n_preferred;
    memcpy(o->preferred, cfg->preferred_batch_size, sizeof o->preferred);
    o->max_queue_delay_us = cfg->max_queue_delay_us;
    o->max_queue_size = cfg->max_queue_size;
    o->timeout_delay = cfg->timeout_delay;
    o->instances = cfg->instance_count;
    o->model_name = cfg->name;
}

/* Requests batch together when every input has the same dtype and non-batch dims. */
static bool compatible(const srv_request *a, const srv_request *b, int n_inputs)
{
    for (int i = 0; i < n_inputs; i++) {
        const rt_tensor *x = a->inputs[i], *y = b->inputs[i];
        if (x->dtype != y->dtype || x->shape.rank != y->shape.rank)
            return false;
        for (int d = 1; d < x->shape.rank; d++)
            if (x->shape.dims[d] != y->shape.dims[d])
                return false;
    }
    return true;
}

static void unlink_request(srv_batcher *b, srv_request *prev, srv_request *r)
{
    if (prev)
        prev->next = r->next;
    else
        b->head = r->next;
    if (b->tail == r)
        b->tail = prev;
    r->next = NULL;
    b->queued--;
}

/* Concatenates the requests' input i along dim 0. BYTES elements keep pointing into the
 * requests' own string pools, which outlive the batch. */
static rt_tensor *concat_rows(srv_request **reqs, int n, int i, int64_t rows, rt_error *err)
{
    rt_shape shape = reqs[0]->inputs[i]->shape;
    shape.dims[0] = rows;
    rt_tensor *t = rt_tensor_create(reqs[0]->inputs[i]->dtype, &shape, err);
    if (!t)
        return NULL;
    size_t off = 0;
    for (int k = 0; k < n; k++) {
        size_t nb = rt_tensor_nbytes(reqs[k]->inputs[i]);
        memcpy((char *)t->data + off, reqs[k]->inputs[i]->data, nb);
        off += nb;
    }
    return t;
}

/* Rows [row0, row0 + rows) of t as a new tensor. */
static rt_tensor *slice_rows(const rt_tensor *t, int64_t row0, int64_t rows, rt_error *err)
{
    rt_shape shape = t->shape;
    shape.dims[0] = rows;
    rt_tensor *s = rt_tensor_create(t->dtype, &shape, err);
    if (!s)
        return NULL;
    size_t row_bytes = t->shape.dims[0] ? rt_tensor_nbytes(t) / (size_t)t->shape.dims[0] : 0;
    const char *src = (const char *)t->data + (size_t)row0 * row_bytes;
    if (t->dtype == RT_DTYPE_BYTES) {
        if (rt_tensor_set_strings(s, (const rt_str *)src, (size_t)rt_tensor_numel(s), err) != RT_OK) {
            rt_tensor_free(s);
            return NULL;
        }
    } else if (row_bytes) {
        memcpy(s->data, src, (size_t)rows * row_bytes);
    }
    return s;
}

/* Splits the batch's outputs into the requests; false (with err) on a shape mismatch. */
static bool split_outputs(srv_batcher *b, srv_request **reqs, int n, int64_t rows, rt_tensor **outs,
                          rt_error *err)
{
    for (int j = 0; j < b->n_outputs; j++)
        if (outs[j]->shape.rank < 1 || outs[j]->shape.dims[0] != rows) {
            rt_error_set(err, RT_ERR_MODEL,
                         "output %d has no leading batch dimension of %lld rows", j, (long long)rows);
            return false;
        }
    for (int j = 0; j < b->n_outputs; j++) {
        int64_t row0 = 0;
        for (int k = 0; k < n; k++) {
            if (!(reqs[k]->outputs[j] = slice_rows(outs[j], row0, reqs[k]->batch, err)))
                return false;
            row0 += reqs[k]->batch;
        }
    }
    return true;
}

static void execute(srv_instance *inst, srv_request **reqs, int n, int64_t rows)
{
    srv_batcher *b = inst->b;
    uint64_t t0 = srv_now_ns();
    rt_error err = {0};
    const rt_tensor **in = inst->in;
    rt_tensor **owned = inst->owned, **outs = inst->outs;
    memset(owned, 0, ((size_t)b->n_inputs + 1) * sizeof *owned);
    memset(outs, 0, ((size_t)b->n_outputs + 1) * sizeof *outs);
    bool ok = true;
    for (int i = 0; ok && i < b->n_inputs; i++) {
        if (n == 1)
            in[i] = reqs[0]->inputs[i];
        else
            ok = (in[i] = owned[i] = concat_rows(reqs, n, i, rows, &err)) != NULL;
    }
    uint64_t t1 = srv_now_ns();
    if (ok)
        ok = b->runner.run(inst->ctx, in, b->n_inputs, outs, b->n_outputs, &err) == RT_OK;
    uint64_t t2 = srv_now_ns();
    bool ran = ok;
    if (ok && n == 1) {
        for (int j = 0; j < b->n_outputs; j++) {
            reqs[0]->outputs[j] = outs[j];
            outs[j] = NULL;
        }
    } else if (ok) {
        ok = split_outputs(b, reqs, n, rows, outs, &err);
    }
    /* a request that ran alone and whose input the model refused (an index out of range)
     * is the client's error */
    bool refused = !ran && n == 1 && err.status == RT_ERR_INVALID_ARG;
    for (int k = 0; !ok && k < n; k++)
        srv_request_fail(reqs[k], refused ? 400 : 500, refused ? SRV_FAIL_OTHER : SRV_FAIL_BACKEND,
                         "inference failed: %s", err.text);
    for (int i = 0; i < b->n_inputs; i++)
        rt_tensor_free(owned[i]);
    for (int j = 0; j < b->n_outputs; j++)
        rt_tensor_free(outs[j]);
    uint64_t t3 = srv_now_ns();
    for (int k = 0; k < n; k++) {
        reqs[k]->input_ns = t1 - t0;
        reqs[k]->infer_ns = t2 - t1;
        reqs[k]->output_ns = t3 - t2;
        reqs[k]->exec_batch = rows;
    }
    for (int k = 0; k < n; k++)
        reqs[k]->on_done(reqs[k], reqs[k]->done_arg);
    if (ran)
        srv_stats_batch_done(b->stats, rows, t1 - t0, t2 - t1, srv_now_ns() - t2);
}

static bool is_preferred(const srv_batcher *b, int64_t rows)
{
    for (int i = 0; i < b->o.n_preferred; i++)
        if (b->o.preferred[i] == rows)
            return true;
    return false;
}

static uint64_t deadline_of(const srv_request *r)
{
    uint64_t ns;
    if (__builtin_mul_overflow((uint64_t)r->timeout_us, 1000u, &ns) ||
        __builtin_add_overflow(r->t_enqueued, ns, &ns))
        return UINT64_MAX;
    return ns;
}

/* Moves requests whose queue timeout passed into *expired (REJECT policy only). Returns the
 * earliest future deadline, or UINT64_MAX. */
static uint64_t take_expired(srv_batcher *b, uint64_t now, srv_request **expired)
{
    uint64_t next = UINT64_MAX;
    if (b->o.timeout_delay)
        return next;
    srv_request *prev = NULL, *r = b->head;
    while (r) {
        srv_request *nx = r->next;
        if (r->timeout_us > 0 && deadline_of(r) <= now) {
            unlink_request(b, prev, r);
            r->next = *expired;
            *expired = r;
        } else {
            if (r->timeout_us > 0 && deadline_of(r) < next)
                next = deadline_of(r);
            prev = r;
        }
        r = nx;
    }
    return next;
}

/* Chooses the batch to run now into reqs (removing it from the queue) and returns its
 * size, or returns 0 and sets *wake to when to look again. */
static int form_batch(srv_batcher *b, uint64_t now, srv_request **reqs, int64_t *rows_out,
                      uint64_t *wake)
{
    srv_request *head = b->head;
    if (!b->o.dynamic) {
        unlink_request(b, NULL, head);
        reqs[0] = head;
        *rows_out = head->batch;
        return 1;
    }
    int n = 0, n_pref = 0;
    int64_t rows = 0, rows_pref = 0;
    for (srv_request *r = head; r && rows < b->o.max_batch_size; r = r->next) {
        if (!compatible(head, r, b->n_inputs) || rows + r->batch > b->o.max_batch_size)
            continue;
        reqs[n++] = r;
        rows += r->batch;
        if (is_preferred(b, rows)) {
            n_pref = n;
            rows_pref = rows;
        }
    }
    uint64_t due = head->t_enqueued + (uint64_t)b->o.max_queue_delay_us * 1000u;
    if (rows < b->o.max_batch_size && !is_preferred(b, rows) && now < due && !b->stopping) {
        if (n_pref == 0) {
            *wake = due;
            return 0;
        }
        n = n_pref;
        rows = rows_pref;
    }
    for (int k = 0; k < n; k++) {
        srv_request *prev = NULL;
        for (srv_request *r = b->head; r != reqs[k]; r = r->next)
            prev = r;
        unlink_request(b, prev, reqs[k]);
    }
    *rows_out = rows;
    return n;
}

static void complete_expired(srv_batcher *b, srv_request *expired)
{
    while (expired) {
        srv_request *nx = expired->next;
        expired->next = NULL;
        srv_request_fail(expired, 503, SRV_FAIL_REJECTED,
                         "request for model '%s' timed out in the queue after %lld us",
                         b->o.model_name, (long long)expired->timeout_us);
        srv_stats_pending_add(b->stats, -1);
        expired->on_done(expired, expired->done_arg);
        expired = nx;
    }
}

/* Waits (mu held) until woken or until wake_ns (CLOCK_MONOTONIC, the queue's clock and
 * the condition variable's; UINT64_MAX: no deadline). */
static void idle_wait(srv_instance *inst, uint64_t wake_ns)
{
    srv_batcher *b = inst->b;
    inst->sleeping = true;
    if (wake_ns == UINT64_MAX) {
        pthread_cond_wait(&inst->cv, &b->mu);
    } else {
        struct timespec ts = {.tv_sec = (time_t)(wake_ns / 1000000000u),
                              .tv_nsec = (long)(wake_ns % 1000000000u)};
        pthread_cond_timedwait(&inst->cv, &b->mu, &ts);
    }
    inst->sleeping = false; /* woken by its deadline or spuriously, not by take_sleeper */
}

/* A sleeping instance, no longer counted as sleeping, for the caller to signal after it
 * unlocks mu (so that the woken thread does not block on mu at once; it re-checks the
 * queue under mu, so nothing is lost in between). NULL when every instance is busy or
 * already signalled: one wake-up per idle instance, not one per request. */
static srv_instance *take_sleeper(srv_batcher *b)
{
    for (int i = 0; i < b->n_instances; i++)
        if (b->instances[i].sleeping) {
            b->instances[i].sleeping = false;
            return &b->instances[i];
        }
    return NULL;
}

static void wake_instance(srv_instance *inst)
{
    if (inst)
        pthread_cond_signal(&inst->cv);
}

/* Instance threads run under SCHED_BATCH when the daemon runs under the default policy: a
 * woken instance then does not preempt the HTTP thread that queued its request, which
 * goes on reading the other ready connections first, so one wake-up carries many
 * requests instead of two context switches each (at 64 connections on one core: 1.6
 * switches per request -> 0.03). The HTTP thread keeps the default policy, so that it
 * still preempts a computing instance to accept and answer requests. A policy the
 * operator chose (real-time, idle, batch) is left alone, as is a refusal. */
static void demote_to_batch(void)
{
    if (sched_getscheduler(0) == SCHED_OTHER)
        (void)sched_setscheduler(0, SCHED_BATCH, &(struct sched_param){.sched_priority = 0});
}

static void *worker_main(void *arg)
{
    srv_instance *inst = arg;
    demote_to_batch();
    srv_batcher *b = inst->b;
    srv_request **reqs = inst->reqs;
    pthread_mutex_lock(&b->mu);
    for (;;) {
        uint64_t now = srv_now_ns();
        srv_request *expired = NULL;
        uint64_t wake = take_expired(b, now, &expired);
        if (expired) {
            pthread_mutex_unlock(&b->mu);
            complete_expired(b, expired);
            pthread_mutex_lock(&b->mu);
            continue;
        }
        if (!b->head) {
            if (b->stopping)
                break;
            idle_wait(inst, wake);
            continue;
        }
        int64_t rows = 0;
        uint64_t due = UINT64_MAX;
        int n = form_batch(b, now, reqs, &rows, &due);
        if (n == 0) {
            idle_wait(inst, due < wake ? due : wake);
            continue;
        }
        srv_instance *other = b->head ? take_sleeper(b) : NULL; /* for what is left */
        pthread_mutex_unlock(&b->mu);
        wake_instance(other);
        for (int k = 0; k < n; k++) {
            reqs[k]->t_dispatched = now;
            reqs[k]->queue_ns = now - reqs[k]->t_enqueued;
        }
        srv_stats_pending_add(b->stats, -n);
        execute(inst, reqs, n, rows);
        pthread_mutex_lock(&b->mu);
    }
    pthread_mutex_unlock(&b->mu);
    return NULL;
}

srv_batcher *srv_batcher_create(const srv_batcher_options *o, const srv_runner *runner,
                                int n_inputs, int n_outputs, srv_stats *stats, rt_error *err)
{
    srv_batcher *b = calloc(1, sizeof *b);
    if (!b) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        return NULL;
    }
    b->o = *o;
    b->o.dynamic = o->dynamic && o->max_batch_size > 0;
    b->runner = *runner;
    b->n_inputs = n_inputs;
    b->n_outputs = n_outputs;
    b->stats = stats;
    pthread_mutex_init(&b->mu, NULL);
    b->n_instances = o->instances < 1 ? 1 : o->instances;
    b->instances = calloc((size_t)b->n_instances, sizeof *b->instances);
    if (!b->instances) {
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        srv_batcher_free(b);
        return NULL;
    }
    size_t cap = b->o.dynamic ? (size_t)b->o.max_batch_size : 1;
    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    for (int i = 0; i < b->n_instances; i++)
        b->instances[i].cv_ready = pthread_cond_init(&b->instances[i].cv, &ca) == 0;
    pthread_condattr_destroy(&ca);
    for (int i = 0; i < b->n_instances; i++) {
        b->instances[i].b = b;
        if (!b->instances[i].cv_ready) {
            rt_error_set(err, RT_ERR_INTERNAL, "cannot create an instance's condition variable");
            srv_batcher_free(b);
            return NULL;
        }
        srv_instance *inst = &b->instances[i];
        inst->reqs = calloc(cap + 1, sizeof *inst->reqs);
        inst->in = calloc((size_t)n_inputs + 1, sizeof *inst->in);
        inst->owned = calloc((size_t)n_inputs + 1, sizeof *inst->owned);
        inst->outs = calloc((size_t)n_outputs + 1, sizeof *inst->outs);
        if (!inst->reqs || !inst->in || !inst->owned || !inst->outs) {
            rt_error_set(err, RT_ERR_NOMEM, "out of memory for batches of %zu requests", cap);
            srv_batcher_free(b);
            return NULL;
        }
        if (!(b->instances[i].ctx = runner->create(runner->arg, i, err))) {
            srv_batcher_free(b);
            return NULL;
        }
    }
    for (int i = 0; i < b->n_instances; i++) {
        int rc = pthread_create(&b->instances[i].thread, NULL, worker_main, &b->instances[i]);
        if (rc) {
            rt_error_set(err, RT_ERR_INTERNAL, "cannot start an instance thread: %s", strerror(rc));
            srv_batcher_free(b);
            return NULL;
        }
        b->instances[i].started = true;
    }
    return b;
}

bool srv_batcher_submit(srv_batcher *b, srv_request *r)
{
    pthread_mutex_lock(&b->mu);
    if (b->stopping) {
        pthread_mutex_unlock(&b->mu);
        return srv_request_fail(r, 503, SRV_FAIL_REJECTED, "model '%s' is being unloaded",
                                b->o.model_name);
    }
    if (b->o.max_queue_size > 0 && b->queued >= b->o.max_queue_size) {
        pthread_mutex_unlock(&b->mu);
        return srv_request_fail(r, 503, SRV_FAIL_REJECTED,
                                "queue of model '%s' is full (max_queue_size %lld)",
                                b->o.model_name, (long long)b->o.max_queue_size);
    }
    r->t_enqueued = srv_now_ns();
    r->next = NULL;
    if (b->tail)
        b->tail->next = r;
    else
        b->head = r;
    b->tail = r;
    b->queued++;
    srv_stats_pending_add(b->stats, 1);
    srv_instance *sleeper = take_sleeper(b);
    pthread_mutex_unlock(&b->mu);
    wake_instance(sleeper);
    return true;
}

void srv_batcher_cancel_queued(srv_batcher *b, const char *reason)
{
    pthread_mutex_lock(&b->mu);
    srv_request *r = b->head;
    int n = (int)b->queued;
    b->head = b->tail = NULL;
    b->queued = 0;
    pthread_mutex_unlock(&b->mu);
    srv_stats_pending_add(b->stats, -n);
    while (r) {
        srv_request *nx = r->next;
        r->next = NULL;
        srv_request_fail(r, 503, SRV_FAIL_REJECTED, "%s", reason);
        r->on_done(r, r->done_arg);
        r = nx;
    }
}

void srv_batcher_free(srv_batcher *b)
{
    if (!b)
        return;
    pthread_mutex_lock(&b->mu);
    b->stopping = true;
    for (int i = 0; b->instances && i < b->n_instances; i++)
        if (b->instances[i].cv_ready)
            pthread_cond_signal(&b->instances[i].cv);
    pthread_mutex_unlock(&b->mu);
    for (int i = 0; b->instances && i < b->n_instances; i++)
        if (b->instances[i].started)
            pthread_join(b->instances[i].thread, NULL);
    for (int i = 0; b->instances && i < b->n_instances; i++) {
        if (b->instances[i].ctx)
            b->runner.destroy(b->instances[i].ctx);
        free(b->instances[i].reqs);
        free(b->instances[i].in);
        free(b->instances[i].owned);
        free(b->instances[i].outs);
        if (b->instances[i].cv_ready)
            pthread_cond_destroy(&b->instances[i].cv);
    }
    free(b->instances);
    pthread_mutex_destroy(&b->mu);
    free(b);
}
