/* test_srv_batcher.c: the dynamic batcher with a fake runner (adds 1, logs batch sizes):
 * full and preferred batches, the queue delay, shape compatibility, output splitting, queue
 * limit, queue timeout, runner failure (500, or 400 for a lone request whose input the model
 * refused) and cancellation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_batcher.h"

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cv = PTHREAD_COND_INITIALIZER;
static int n_done, n_runs, run_rows[64];
static rt_status fail_runs; /* RT_OK: runs succeed */
static srv_stats stats;

static void *fake_create(void *arg, int instance, rt_error *err)
{
    (void)arg;
    (void)err;
    return (void *)(intptr_t)(instance + 1);
}

static void fake_destroy(void *ctx)
{
    (void)ctx;
}

static rt_status fake_run(void *ctx, const rt_tensor *const *in, int n_in, rt_tensor **out,
                          int n_out, rt_error *err)
{
    (void)ctx;
    assert_int_equal(n_in, 1);
    assert_int_equal(n_out, 1);
    pthread_mutex_lock(&mu);
    if (n_runs < 64)
        run_rows[n_runs] = (int)in[0]->shape.dims[0];
    n_runs++;
    pthread_mutex_unlock(&mu);
    if (fail_runs == RT_ERR_BACKEND)
        return rt_error_set(err, fail_runs, "device on fire");
    if (fail_runs != RT_OK)
        return rt_error_set(err, fail_runs, "index 9 is out of range");
    out[0] = rt_tensor_create(RT_DTYPE_F32, &in[0]->shape, err);
    for (int64_t i = 0; i < rt_tensor_numel(in[0]); i++)
        ((float *)out[0]->data)[i] = ((const float *)in[0]->data)[i] + 1;
    return RT_OK;
}

static void on_done(srv_request *r, void *arg)
{
    (void)r;
    (void)arg;
    pthread_mutex_lock(&mu);
    n_done++;
    pthread_cond_broadcast(&cv);
    pthread_mutex_unlock(&mu);
}

static bool wait_done(int n, int timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    int rc = 0;
    while (n_done < n && rc == 0)
        rc = pthread_cond_timedwait(&cv, &mu, &until);
    bool ok = n_done >= n;
    pthread_mutex_unlock(&mu);
    return ok;
}

static srv_request *make_req(int64_t rows, int64_t width, float base)
{
    srv_request *r = srv_request_create(1, 1);
    rt_shape s = {.rank = 2, .dims = {rows, width}};
    r->inputs[0] = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    for (int64_t i = 0; i < rows * width; i++)
        ((float *)r->inputs[0]->data)[i] = base + (float)i;
    r->batch = rows;
    r->on_done = on_done;
    return r;
}

static srv_batcher *make_batcher(int64_t max_batch, int64_t delay_us, int64_t queue, int n_pref,
                                 const int64_t *pref)
{
    n_done = n_runs = 0;
    fail_runs = RT_OK;
    srv_stats_init(&stats, (int)max_batch);
    srv_batcher_options o = {.max_batch_size = max_batch, .dynamic = true,
                             .max_queue_delay_us = delay_us, .max_queue_size = queue,
                             .instances = 1, .model_name = "m", .n_preferred = n_pref};
    for (int i = 0; i < n_pref; i++)
        o.preferred[i] = pref[i];
    srv_runner runner = {fake_create, fake_run, fake_destroy, NULL};
    rt_error err;
    srv_batcher *b = srv_batcher_create(&o, &runner, 1, 1, &stats, &err);
    assert_non_null(b);
    return b;
}

static void finish(srv_batcher *b, srv_request **reqs, int n)
{
    srv_batcher_free(b);
    for (int i = 0; i < n; i++)
        srv_request_free(reqs[i]);
    srv_stats_destroy(&stats);
}

static void test_full_batch_splits_outputs(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(4, 10000000, 0, 0, NULL); /* 10 s delay: only a full batch runs */
    srv_request *reqs[3] = {make_req(1, 2, 0), make_req(2, 2, 100), make_req(1, 2, 200)};
    for (int i = 0; i < 3; i++)
        assert_true(srv_batcher_submit(b, reqs[i]));
    assert_true(wait_done(3, 5000));
    assert_int_equal(n_runs, 1);
    assert_int_equal(run_rows[0], 4);
    const float *o1 = reqs[1]->outputs[0]->data;
    assert_int_equal(reqs[1]->outputs[0]->shape.dims[0], 2);
    for (int i = 0; i < 4; i++)
        assert_true(o1[i] == 101.0f + (float)i);
    assert_true(((float *)reqs[2]->outputs[0]->data)[1] == 202.0f);
    assert_int_equal(reqs[0]->exec_batch, 4);
    finish(b, reqs, 3);
}

static void test_preferred_batch_runs_at_once(void **state)
{
    (void)state;
    int64_t pref[] = {2};
    srv_batcher *b = make_batcher(8, 10000000, 0, 1, pref);
    srv_request *reqs[2] = {make_req(1, 2, 0), make_req(1, 2, 0)};
    for (int i = 0; i < 2; i++)
        assert_true(srv_batcher_submit(b, reqs[i]));
    assert_true(wait_done(2, 5000));
    assert_int_equal(run_rows[0], 2);
    finish(b, reqs, 2);
}

static void test_delay_then_partial_batch(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(8, 30000, 0, 0, NULL);
    srv_request *reqs[1] = {make_req(1, 2, 0)};
    assert_true(srv_batcher_submit(b, reqs[0]));
    assert_true(wait_done(1, 5000));
    assert_int_equal(run_rows[0], 1);
    assert_true(reqs[0]->queue_ns >= 30000000u); /* waited the delay for company */
    assert_int_equal(reqs[0]->status, 200);
    finish(b, reqs, 1);
}

static void test_unequal_shapes_do_not_batch(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(4, 20000, 0, 0, NULL);
    srv_request *reqs[3] = {make_req(1, 2, 0), make_req(1, 3, 0), make_req(1, 2, 0)};
    for (int i = 0; i < 3; i++)
        assert_true(srv_batcher_submit(b, reqs[i]));
    assert_true(wait_done(3, 5000));
    assert_int_equal(n_runs, 2);
    assert_int_equal(run_rows[0], 2); /* the two width-2 requests together */
    assert_int_equal(reqs[1]->outputs[0]->shape.dims[1], 3);
    finish(b, reqs, 3);
}

static void test_queue_full_refuses(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(8, 10000000, 1, 0, NULL);
    srv_request *reqs[2] = {make_req(1, 2, 0), make_req(1, 2, 0)};
    assert_true(srv_batcher_submit(b, reqs[0]));
    assert_false(srv_batcher_submit(b, reqs[1]));
    assert_int_equal(reqs[1]->status, 503);
    assert_non_null(strstr(reqs[1]->error, "queue of model 'm' is full"));
    srv_batcher_cancel_queued(b, "shutting down");
    assert_true(wait_done(1, 5000));
    assert_int_equal(reqs[0]->status, 503);
    assert_string_equal(reqs[0]->error, "shutting down");
    assert_int_equal(n_runs, 0);
    finish(b, reqs, 2);
}

static void test_queue_timeout(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(8, 10000000, 0, 0, NULL);
    srv_request *reqs[1] = {make_req(1, 2, 0)};
    reqs[0]->timeout_us = 20000;
    assert_true(srv_batcher_submit(b, reqs[0]));
    assert_true(wait_done(1, 5000));
    assert_int_equal(reqs[0]->status, 503);
    assert_non_null(strstr(reqs[0]->error, "timed out in the queue"));
    assert_int_equal(n_runs, 0);
    finish(b, reqs, 1);
}

/* One request whose run fails with `fail` gets `status` and `error`. */
static void expect_lone_failure(rt_status fail, int status, const char *error)
{
    srv_batcher *b = make_batcher(2, 0, 0, 0, NULL);
    fail_runs = fail;
    srv_request *reqs[1] = {make_req(1, 2, 0)};
    assert_true(srv_batcher_submit(b, reqs[0]));
    assert_true(wait_done(1, 5000));
    assert_int_equal(reqs[0]->status, status);
    assert_string_equal(reqs[0]->error, error);
    finish(b, reqs, 1);
}

static void test_runner_failure(void **state)
{
    (void)state;
    expect_lone_failure(RT_ERR_BACKEND, 500, "inference failed: device on fire");
}

/* A run the model refuses (RT_ERR_INVALID_ARG) is the client's error when the request ran
 * alone (400); in a batch of several it cannot be pinned on one of them (500). */
static void test_refused_input(void **state)
{
    (void)state;
    expect_lone_failure(RT_ERR_INVALID_ARG, 400, "inference failed: index 9 is out of range");
    srv_batcher *b = make_batcher(2, 10000000, 0, 0, NULL); /* 10 s delay: one batch of 2 */
    fail_runs = RT_ERR_INVALID_ARG;
    srv_request *pair[2] = {make_req(1, 2, 0), make_req(1, 2, 10)};
    for (int i = 0; i < 2; i++)
        assert_true(srv_batcher_submit(b, pair[i]));
    assert_true(wait_done(2, 5000));
    assert_int_equal(n_runs, 1);
    for (int i = 0; i < 2; i++)
        assert_int_equal(pair[i]->status, 500);
    finish(b, pair, 2);
}

static void test_free_drains_queue(void **state)
{
    (void)state;
    srv_batcher *b = make_batcher(8, 10000000, 0, 0, NULL);
    srv_request *reqs[2] = {make_req(1, 2, 0), make_req(1, 2, 0)};
    for (int i = 0; i < 2; i++)
        assert_true(srv_batcher_submit(b, reqs[i]));
    srv_batcher_free(b); /* stopping: the waiting batch runs at once */
    assert_int_equal(n_done, 2);
    assert_int_equal(reqs[1]->status, 200);
    for (int i = 0; i < 2; i++)
        srv_request_free(reqs[i]);
    srv_stats_destroy(&stats);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_full_batch_splits_outputs),
        cmocka_unit_test(test_preferred_batch_runs_at_once),
        cmocka_unit_test(test_delay_then_partial_batch),
        cmocka_unit_test(test_unequal_shapes_do_not_batch),
        cmocka_unit_test(test_queue_full_refuses),
        cmocka_unit_test(test_queue_timeout),
        cmocka_unit_test(test_runner_failure),
        cmocka_unit_test(test_refused_input),
        cmocka_unit_test(test_free_drains_queue),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
