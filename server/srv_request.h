/* srv_request.h: one inference request as it travels from the HTTP layer through the
 * queue and the batcher back to the connection: decoded inputs, the output selection,
 * results, timings, and the completion callback.
 *
 * The HTTP layer creates it (srv_request_create), the codec fills it, the batcher runs it
 * and calls on_done exactly once: from a worker thread when it ran or timed out, from
 * srv_batcher_submit's caller (an HTTP thread) when it is refused, or from the thread that
 * drains the queue at shutdown (srv_batcher_cancel_queued). Then the HTTP layer owns it
 * again and frees it. */
#ifndef SRV_REQUEST_H
#define SRV_REQUEST_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_tensor.h"

#define SRV_ERR_MAX 320

typedef struct srv_request srv_request;
typedef void (*srv_request_done_fn)(srv_request *r, void *arg);

typedef struct srv_output_sel {
    int index;    /* into the model config's outputs */
    bool binary;  /* binary tensor data extension */
} srv_output_sel;

/* Failure classes, Triton's `reason` label of nv_inference_request_failure. */
typedef enum {
    SRV_FAIL_NONE = 0,
    SRV_FAIL_REJECTED, /* queue full, queue timeout, draining */
    SRV_FAIL_CANCELED,
    SRV_FAIL_BACKEND,  /* the runtime failed */
    SRV_FAIL_OTHER     /* bad input */
} srv_fail_reason;

struct srv_request {
    char *id;                 /* owned; NULL when the client sent none */
    int n_inputs;
    rt_tensor **inputs;       /* tensors owned, indexed by graph input (array inside r) */
    int64_t batch;            /* leading dim of every input for batched models, else 1 */
    int n_sel;
    srv_output_sel *sel;      /* outputs to return, in response order (inside r) */
    int64_t timeout_us;       /* queue timeout; 0: none */
    int n_outputs;
    rt_tensor **outputs;      /* owned results, indexed by graph output (NULL if not run;
                               * array inside r) */

    int status;               /* HTTP status: 200, or the error's */
    srv_fail_reason fail;
    char error[SRV_ERR_MAX];

    uint64_t t_received, t_enqueued, t_dispatched; /* ns, CLOCK_MONOTONIC */
    uint64_t queue_ns, input_ns, infer_ns, output_ns;
    int64_t exec_batch;       /* size of the batch it ran in */

    srv_request_done_fn on_done;
    void *done_arg;
    srv_request *next;        /* queue link (batcher) */
};

uint64_t srv_now_ns(void);

/* New zeroed request for a model with these input/output counts; NULL on OOM. */
srv_request *srv_request_create(int n_inputs, int n_outputs);
void srv_request_free(srv_request *r); /* NULL-safe */
/* Records a failure (first one wins). Returns false for chaining in decoders. */
bool srv_request_fail(srv_request *r, int status, srv_fail_reason why, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
