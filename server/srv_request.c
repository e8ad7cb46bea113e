/* srv_request.c: lifetime and error recording of inference requests. */
#include "srv_request.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

uint64_t srv_now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* One allocation holds the request and its three arrays (the request crosses from the HTTP
 * thread to a worker and back, where every malloc/free pair costs). */
srv_request *srv_request_create(int n_inputs, int n_outputs)
{
    size_t n_in = (size_t)n_inputs + 1, n_out = (size_t)n_outputs + 1;
    size_t size = sizeof(srv_request) + n_in * sizeof(rt_tensor *) + n_out * sizeof(rt_tensor *) +
                  n_out * sizeof(srv_output_sel);
    srv_request *r = calloc(1, size);
    if (!r)
        return NULL;
    r->inputs = (rt_tensor **)(r + 1);
    r->outputs = r->inputs + n_in;
    r->sel = (srv_output_sel *)(r->outputs + n_out);
    r->n_inputs = n_inputs;
    r->n_outputs = n_outputs;
    r->batch = 1;
    r->status = 200;
    r->t_received = srv_now_ns();
    return r;
}

void srv_request_free(srv_request *r)
{
    if (!r)
        return;
    for (int i = 0; i < r->n_inputs; i++)
        rt_tensor_free(r->inputs[i]);
    for (int i = 0; i < r->n_outputs; i++)
        rt_tensor_free(r->outputs[i]);
    free(r->id);
    free(r);
}

bool srv_request_fail(srv_request *r, int status, srv_fail_reason why, const char *fmt, ...)
{
    if (r->status != 200)
        return false;
    r->status = status;
    r->fail = why;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(r->error, sizeof r->error, fmt, ap);
    va_end(ap);
    return false;
}
