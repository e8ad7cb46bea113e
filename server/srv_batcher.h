/* srv_batcher.h: the per-model request queue and dynamic batcher.
 *
 * Requests wait in a bounded FIFO. Each model instance is a worker thread with its own
 * runner context (an rt_session in the daemon, a fake in tests). A worker takes the
 * oldest request and every queued request whose non-batch input shapes equal it, up to
 * max_batch_size rows; it runs them at once when the batch is full or reaches a preferred
 * size, or when the oldest request has waited max_queue_delay_us. Outputs are split back
 * per request and each request's on_done runs on the worker thread. Only condition
 * variables are used for waiting. */
#ifndef SRV_BATCHER_H
#define SRV_BATCHER_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_status.h"
#include "rt_tensor.h"
#include "srv_model_config.h"
#include "srv_request.h"
#include "srv_stats.h"

typedef struct srv_runner {
    /* New per-instance context, or NULL with err set. */
    void *(*create)(void *arg, int instance, rt_error *err);
    rt_status (*run)(void *ctx, const rt_tensor *const *inputs, int n_inputs, rt_tensor **outputs,
                     int n_outputs, rt_error *err);
    void (*destroy)(void *ctx);
    void *arg;
} srv_runner;

typedef struct srv_batcher_options {
    int64_t max_batch_size;      /* 0: inputs carry no batch dimension; one request per run */
    bool dynamic;                /* combine requests (needs max_batch_size > 0) */
    int n_preferred;
    int64_t preferred[SRV_MAX_PREFERRED];
    int64_t max_queue_delay_us;
    int64_t max_queue_size;      /* 0: unbounded */
    bool timeout_delay;          /* expired requests wait on instead of failing */
    int instances;
    const char *model_name;      /* for messages; borrowed for the batcher's lifetime */
} srv_batcher_options;

typedef struct srv_batcher srv_batcher;

/* Options from a model config. */
void srv_batcher_options_from_config(srv_batcher_options *o, const srv_model_config *cfg);

/* Starts the instances (creating every runner context first). NULL with err on failure. */
srv_batcher *srv_batcher_create(const srv_batcher_options *o, const srv_runner *runner,
                                int n_inputs, int n_outputs, srv_stats *stats, rt_error *err);
/* Queues r. Returns false when refused (queue full, stopping) with r->status = 503 and
 * r->error set; then on_done is NOT called and the caller answers. */
bool srv_batcher_submit(srv_batcher *b, srv_request *r);
/* Fails every queued (not yet running) request with 503 and the given reason. */
void srv_batcher_cancel_queued(srv_batcher *b, const char *reason);
/* Refuses new requests, lets the workers finish what is queued and running, joins them
 * and frees everything. NULL-safe. */
void srv_batcher_free(srv_batcher *b);

#endif
