/* test_tp_comm.c: the communicators. The in-process one with 2 and 4 rank threads:
 * all_reduce_sum equal to a serial sum in rank order and bit-identical on every rank (F32,
 * F16, BF16, in place too), all_gather order, broadcast from a non-zero root, many
 * collectives in a row (barrier reuse), sizes 1 .. 1M, mismatched calls and abort. The
 * NCCL one where this build has it and a GPU is present (skipped with a reason if not). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tp_comm.h"

#ifdef INFD_HAVE_NCCL
#include <cuda_runtime.h>

#include "cuda_device.h"
#endif

#define MAX_RANKS 8

static const size_t sizes[] = {1, 3, 1000, 4099, 1u << 20};

/* A float with a varied mantissa and magnitude, so that the order of additions shows. */
static float value(int rank, size_t i)
{
    uint32_t x = (uint32_t)(i * 2654435761u) ^ (uint32_t)(rank * 40503u + 17u);
    x ^= x >> 13;
    x *= 0x5bd1e995u;
    x ^= x >> 15;
    return ((float)(x % 2000001u) - 1000000.0f) / (float)(1u << (x % 12));
}

typedef struct {
    tp_comm *comm;
    int rank, size, root;
    int device; /* NCCL only */
    size_t count;
    rt_dtype dtype;
    bool in_place;
    void *send, *recv;
    rt_status st;
    rt_error err;
    int bad_iterations; /* for the repeated test */
} rank_job;

static void run_ranks(rank_job *jobs, int n, void *(*fn)(void *))
{
    pthread_t th[MAX_RANKS];
    for (int r = 0; r < n; r++)
        assert_int_equal(pthread_create(&th[r], NULL, fn, &jobs[r]), 0);
    for (int r = 0; r < n; r++)
        pthread_join(th[r], NULL);
}

static void make_group(tp_comm **comms, int n)
{
    rt_error err;
    assert_int_equal(tp_comm_local_create(n, comms, &err), RT_OK);
    for (int r = 0; r < n; r++) {
        assert_int_equal(tp_comm_rank(comms[r]), r);
        assert_int_equal(tp_comm_size(comms[r]), n);
        assert_string_equal(tp_comm_name(comms[r]), "local");
    }
}

static void free_group(tp_comm **comms, int n)
{
    for (int r = 0; r < n; r++)
        tp_comm_free(comms[r]);
}

static void *all_reduce_job(void *arg)
{
    rank_job *j = arg;
    j->st = tp_comm_all_reduce_sum(j->comm, j->send, j->in_place ? j->send : j->recv, j->count,
                                   j->dtype, NULL, &j->err);
    return NULL;
}

static void *all_gather_job(void *arg)
{
    rank_job *j = arg;
    size_t esz = rt_dtype_size(j->dtype);
    const void *send = j->in_place ? (char *)j->recv + (size_t)j->rank * j->count * esz : j->send;
    j->st = tp_comm_all_gather(j->comm, send, j->recv, j->count, j->dtype, NULL, &j->err);
    return NULL;
}

static void *broadcast_job(void *arg)
{
    rank_job *j = arg;
    j->st = tp_comm_broadcast(j->comm, j->send, j->count, j->dtype, j->root, NULL, &j->err);
    return NULL;
}

static void store(rt_dtype dt, void *buf, size_t i, float v)
{
    if (dt == RT_DTYPE_F32)
        ((float *)buf)[i] = v;
    else
        ((uint16_t *)buf)[i] = dt == RT_DTYPE_F16 ? rt_f32_to_f16(v) : rt_f32_to_bf16(v);
}

static float load(rt_dtype dt, const void *buf, size_t i)
{
    if (dt == RT_DTYPE_F32)
        return ((const float *)buf)[i];
    uint16_t h = ((const uint16_t *)buf)[i];
    return dt == RT_DTYPE_F16 ? rt_f16_to_f32(h) : rt_bf16_to_f32(h);
}

/* Runs one all-reduce over n ranks and checks every rank against a serial sum in rank
 * order (16-bit inputs widened to float, summed, rounded once). */
static void check_all_reduce(int n, size_t count, rt_dtype dt, bool in_place)
{
    tp_comm *comms[MAX_RANKS];
    make_group(comms, n);
    size_t esz = rt_dtype_size(dt);
    rank_job jobs[MAX_RANKS];
    void *expected = malloc(count * esz);
    for (int r = 0; r < n; r++) {
        jobs[r] = (rank_job){.comm = comms[r], .rank = r, .size = n, .count = count,
                             .dtype = dt, .in_place = in_place};
        jobs[r].send = malloc(count * esz);
        jobs[r].recv = malloc(count * esz);
        for (size_t i = 0; i < count; i++)
            store(dt, jobs[r].send, i, dt == RT_DTYPE_F32 ? value(r, i) : value(r, i) / 4096.0f);
    }
    for (size_t i = 0; i < count; i++) {
        float acc = load(dt, jobs[0].send, i);
        for (int r = 1; r < n; r++)
            acc += load(dt, jobs[r].send, i);
        store(dt, expected, i, acc);
    }
    run_ranks(jobs, n, all_reduce_job);
    for (int r = 0; r < n; r++) {
        assert_int_equal(jobs[r].st, RT_OK);
        assert_memory_equal(in_place ? jobs[r].send : jobs[r].recv, expected, count * esz);
        free(jobs[r].send);
        free(jobs[r].recv);
    }
    free(expected);
    free_group(comms, n);
}

static void test_all_reduce_f32(void **state)
{
    (void)state;
    for (int n = 2; n <= 4; n += 2)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            check_all_reduce(n, sizes[k], RT_DTYPE_F32, false);
            check_all_reduce(n, sizes[k], RT_DTYPE_F32, true);
        }
}

static void test_all_reduce_16bit(void **state)
{
    (void)state;
    for (int n = 2; n <= 4; n += 2) {
        check_all_reduce(n, 4099, RT_DTYPE_F16, false);
        check_all_reduce(n, 4099, RT_DTYPE_BF16, true);
    }
}

/* The serial sum differs from another order for these values: the test can fail. */
static void test_values_are_order_sensitive(void **state)
{
    (void)state;
    int differ = 0;
    for (size_t i = 0; i < 1000; i++) {
        float fwd = ((value(0, i) + value(1, i)) + value(2, i)) + value(3, i);
        float rev = ((value(3, i) + value(2, i)) + value(1, i)) + value(0, i);
        differ += fwd != rev;
    }
    assert_true(differ > 10);
}

static void check_all_gather(int n, size_t count, bool in_place)
{
    tp_comm *comms[MAX_RANKS];
    make_group(comms, n);
    rank_job jobs[MAX_RANKS];
    for (int r = 0; r < n; r++) {
        jobs[r] = (rank_job){.comm = comms[r], .rank = r, .size = n, .count = count,
                             .dtype = RT_DTYPE_I32, .in_place = in_place};
        jobs[r].send = malloc(count * sizeof(int32_t));
        jobs[r].recv = calloc((size_t)n * count, sizeof(int32_t));
        int32_t *own = in_place ? (int32_t *)jobs[r].recv + (size_t)r * count : jobs[r].send;
        for (size_t i = 0; i < count; i++)
            own[i] = (int32_t)(r * 1000003 + (int)i);
    }
    run_ranks(jobs, n, all_gather_job);
    for (int r = 0; r < n; r++) {
        assert_int_equal(jobs[r].st, RT_OK);
        const int32_t *got = jobs[r].recv;
        for (int src = 0; src < n; src++)
            for (size_t i = 0; i < count; i++)
                if (got[(size_t)src * count + i] != (int32_t)(src * 1000003 + (int)i))
                    fail_msg("rank %d: element %zu of rank %d's part is wrong", r, i, src);
        free(jobs[r].send);
        free(jobs[r].recv);
    }
    free_group(comms, n);
}

static void test_all_gather_order(void **state)
{
    (void)state;
    for (int n = 2; n <= 4; n += 2)
        for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
            check_all_gather(n, sizes[k], false);
            check_all_gather(n, sizes[k], true);
        }
}

static void check_broadcast(int n, size_t count, int root)
{
    tp_comm *comms[MAX_RANKS];
    make_group(comms, n);
    rank_job jobs[MAX_RANKS];
    for (int r = 0; r < n; r++) {
        jobs[r] = (rank_job){.comm = comms[r], .rank = r, .size = n, .count = count,
                             .dtype = RT_DTYPE_F32, .root = root};
        jobs[r].send = malloc(count * sizeof(float));
        for (size_t i = 0; i < count; i++)
            ((float *)jobs[r].send)[i] = value(r, i);
    }
    run_ranks(jobs, n, broadcast_job);
    for (int r = 0; r < n; r++) {
        assert_int_equal(jobs[r].st, RT_OK);
        for (size_t i = 0; i < count; i++)
            if (((float *)jobs[r].send)[i] != value(root, i))
                fail_msg("rank %d: element %zu differs from root %d's", r, i, root);
        free(jobs[r].send);
    }
    free_group(comms, n);
}

static void test_broadcast_from_nonzero_root(void **state)
{
    (void)state;
    for (size_t k = 0; k < sizeof sizes / sizeof sizes[0]; k++) {
        check_broadcast(2, sizes[k], 1);
        check_broadcast(4, sizes[k], 2);
        check_broadcast(4, sizes[k], 3);
    }
}

/* Many small collectives of each kind in a row on one group; each rank checks its own
 * results and counts the iterations that went wrong. */
static void *repeated_job(void *arg)
{
    rank_job *j = arg;
    enum { COUNT = 5 };
    float buf[COUNT], out[COUNT], gathered[MAX_RANKS * COUNT];
    for (int it = 0; it < 300 && j->st == RT_OK; it++) {
        for (int i = 0; i < COUNT; i++)
            buf[i] = (float)(j->rank * 100 + it + i);
        int root = it % j->size;
        if ((j->st = tp_comm_all_reduce_sum(j->comm, buf, out, COUNT, RT_DTYPE_F32, NULL,
                                            &j->err)) != RT_OK ||
            (j->st = tp_comm_all_gather(j->comm, buf, gathered, COUNT, RT_DTYPE_F32, NULL,
                                        &j->err)) != RT_OK ||
            (j->st = tp_comm_broadcast(j->comm, buf, COUNT, RT_DTYPE_F32, root, NULL,
                                       &j->err)) != RT_OK)
            break;
        bool ok = buf[0] == (float)(root * 100 + it);
        for (int i = 0; i < COUNT; i++) /* sum over r of r*100 + it + i */
            ok &= out[i] == (float)(100 * j->size * (j->size - 1) / 2 + j->size * (it + i));
        for (int r = 0; r < j->size; r++)
            ok &= gathered[r * COUNT + 1] == (float)(r * 100 + it + 1);
        j->bad_iterations += !ok;
    }
    return NULL;
}

static void test_repeated_collectives(void **state)
{
    (void)state;
    for (int n = 2; n <= 4; n += 2) {
        tp_comm *comms[MAX_RANKS];
        make_group(comms, n);
        rank_job jobs[MAX_RANKS];
        for (int r = 0; r < n; r++)
            jobs[r] = (rank_job){.comm = comms[r], .rank = r, .size = n};
        run_ranks(jobs, n, repeated_job);
        for (int r = 0; r < n; r++) {
            assert_int_equal(jobs[r].st, RT_OK);
            assert_int_equal(jobs[r].bad_iterations, 0);
        }
        free_group(comms, n);
    }
}

/* Rank 0 sums 4 elements, rank 1 asks for 5: both get the same error, and the group is
 * unusable afterwards. */
static void test_mismatched_calls_fail_on_every_rank(void **state)
{
    (void)state;
    tp_comm *comms[2];
    make_group(comms, 2);
    float a[5] = {0}, b[5] = {0};
    rank_job jobs[2] = {
        {.comm = comms[0], .rank = 0, .size = 2, .count = 4, .dtype = RT_DTYPE_F32, .send = a,
         .recv = a, .in_place = true},
        {.comm = comms[1], .rank = 1, .size = 2, .count = 5, .dtype = RT_DTYPE_F32, .send = b,
         .recv = b, .in_place = true}};
    run_ranks(jobs, 2, all_reduce_job);
    for (int r = 0; r < 2; r++) {
        assert_int_equal(jobs[r].st, RT_ERR_INVALID_ARG);
        assert_non_null(strstr(jobs[r].err.text, "do not match"));
        assert_string_equal(jobs[r].err.text, jobs[0].err.text);
    }
    rt_error err;
    assert_int_equal(tp_comm_broadcast(comms[0], a, 1, RT_DTYPE_F32, 0, NULL, &err),
                     RT_ERR_BACKEND);
    assert_non_null(strstr(err.text, "aborted"));
    free_group(comms, 2);
}

/* Rank 1 waits in a collective that rank 0 never joins; rank 0 aborts and rank 1 returns. */
static void test_abort_releases_waiting_ranks(void **state)
{
    (void)state;
    tp_comm *comms[2];
    make_group(comms, 2);
    float x[3] = {1, 2, 3};
    rank_job job = {.comm = comms[1], .rank = 1, .size = 2, .count = 3,
                    .dtype = RT_DTYPE_F32, .send = x, .recv = x, .in_place = true};
    pthread_t th;
    assert_int_equal(pthread_create(&th, NULL, all_reduce_job, &job), 0);
    nanosleep(&(struct timespec){0, 20 * 1000 * 1000}, NULL);
    tp_comm_abort(comms[0]);
    pthread_join(th, NULL);
    assert_int_equal(job.st, RT_ERR_BACKEND);
    assert_non_null(strstr(job.err.text, "aborted"));
    free_group(comms, 2);
}

static void test_bad_arguments(void **state)
{
    (void)state;
    rt_error err;
    tp_comm *comms[4];
    assert_int_equal(tp_comm_local_create(0, comms, &err), RT_ERR_INVALID_ARG);
    /* one rank: collectives complete without peers */
    make_group(comms, 1);
    float x[2] = {1.5f, -2.0f}, y[2] = {0};
    assert_int_equal(tp_comm_all_reduce_sum(comms[0], x, y, 2, RT_DTYPE_F32, NULL, &err), RT_OK);
    assert_memory_equal(x, y, sizeof x);
    assert_int_equal(tp_comm_broadcast(comms[0], x, 2, RT_DTYPE_F32, 1, NULL, &err),
                     RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "root 1"));
    free_group(comms, 1);
    make_group(comms, 1);
    int8_t q[2] = {1, 2};
    assert_int_equal(tp_comm_all_reduce_sum(comms[0], q, q, 2, RT_DTYPE_I8, NULL, &err),
                     RT_ERR_UNSUPPORTED);
    assert_non_null(strstr(err.text, "I8"));
    free_group(comms, 1);
    make_group(comms, 1);
    assert_int_equal(tp_comm_all_gather(comms[0], NULL, NULL, 0, RT_DTYPE_F32, NULL, &err),
                     RT_OK);
    assert_int_equal(tp_comm_broadcast(comms[0], NULL, 0, RT_DTYPE_F32, 0, NULL, &err), RT_OK);
    assert_int_equal(tp_comm_all_gather(comms[0], NULL, y, 2, RT_DTYPE_F32, NULL, &err),
                     RT_ERR_INVALID_ARG);
    free_group(comms, 1);
}

#ifdef INFD_HAVE_NCCL
/* Each rank's thread sums ranks' [r+1, 2(r+1), ...] on its GPU (small integers sum exactly
 * in any order), then gathers in place the 4 values r+1 of every rank r. */
static void *nccl_job(void *arg)
{
    rank_job *j = arg;
    float host[1000], *dev = NULL;
    j->st = RT_ERR_BACKEND;
    if (cudaSetDevice(j->device) != cudaSuccess || cudaMalloc((void **)&dev, sizeof host))
        return NULL;
    for (int i = 0; i < 1000; i++)
        host[i] = (float)((j->rank + 1) * (i % 17));
    cudaMemcpy(dev, host, sizeof host, cudaMemcpyHostToDevice);
    j->st = tp_comm_all_reduce_sum(j->comm, dev, dev, 1000, RT_DTYPE_F32, NULL, &j->err);
    if (j->st == RT_OK && cudaDeviceSynchronize() == cudaSuccess)
        cudaMemcpy(host, dev, sizeof host, cudaMemcpyDeviceToHost);
    float ranks_sum = (float)(j->size * (j->size + 1) / 2);
    for (int i = 0; i < 1000; i++)
        j->bad_iterations += host[i] != ranks_sum * (float)(i % 17);
    for (int i = 0; i < 4; i++)
        host[i] = (float)(j->rank + 1);
    cudaMemcpy(dev + 4 * j->rank, host, 4 * sizeof(float), cudaMemcpyHostToDevice);
    if (j->st == RT_OK)
        j->st = tp_comm_all_gather(j->comm, dev + 4 * j->rank, dev, 4, RT_DTYPE_F32, NULL,
                                   &j->err);
    if (j->st == RT_OK && cudaDeviceSynchronize() == cudaSuccess)
        cudaMemcpy(host, dev, 4 * sizeof(float) * (size_t)j->size, cudaMemcpyDeviceToHost);
    for (int i = 0; i < 4 * j->size; i++)
        j->bad_iterations += host[i] != (float)(i / 4 + 1);
    cudaFree(dev);
    return NULL;
}
#endif

static void test_nccl(void **state)
{
    (void)state;
    rt_error err;
    tp_comm *comms[MAX_RANKS];
    int devices[MAX_RANKS] = {0, 1, 2, 3, 4, 5, 6, 7};
#ifndef INFD_HAVE_NCCL
    assert_false(tp_comm_nccl_available());
    assert_int_equal(tp_comm_nccl_create(1, devices, comms, &err), RT_ERR_UNSUPPORTED);
    printf("test_nccl: skipped: %s\n", err.text);
    skip();
#else
    int n = cuda_device_count();
    if (n == 0) {
        assert_int_equal(tp_comm_nccl_create(1, devices, comms, &err), RT_ERR_BACKEND);
        assert_non_null(strstr(err.text, "CUDA"));
        printf("test_nccl: skipped: no CUDA device (creating a communicator said: %s)\n",
               err.text);
        skip();
    }
    if (n > MAX_RANKS)
        n = MAX_RANKS;
    int twice[2] = {0, 0};
    assert_int_equal(tp_comm_nccl_create(2, twice, comms, &err), RT_ERR_INVALID_ARG);
    assert_int_equal(tp_comm_nccl_create(n, devices, comms, &err), RT_OK);
    rank_job jobs[MAX_RANKS];
    for (int r = 0; r < n; r++)
        jobs[r] = (rank_job){.comm = comms[r], .rank = r, .size = n, .device = devices[r]};
    run_ranks(jobs, n, nccl_job);
    for (int r = 0; r < n; r++) {
        assert_int_equal(jobs[r].st, RT_OK);
        assert_int_equal(jobs[r].bad_iterations, 0);
    }
    free_group(comms, n);
#endif
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_values_are_order_sensitive),
        cmocka_unit_test(test_all_reduce_f32),
        cmocka_unit_test(test_all_reduce_16bit),
        cmocka_unit_test(test_all_gather_order),
        cmocka_unit_test(test_broadcast_from_nonzero_root),
        cmocka_unit_test(test_repeated_collectives),
        cmocka_unit_test(test_mismatched_calls_fail_on_every_rank),
        cmocka_unit_test(test_abort_releases_waiting_ranks),
        cmocka_unit_test(test_bad_arguments),
        cmocka_unit_test(test_nccl),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
