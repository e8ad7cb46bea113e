/* tp_comm_nccl.c: the NCCL communicator: one NCCL communicator per GPU in one process,
 * created together with ncclCommInitAll. Each collective is enqueued on the caller's CUDA
 * stream. On any NCCL error the whole clique is aborted (ncclCommAbort), so that peers
 * blocked in a kernel are released and later calls fail at once. Built only when nvcc and
 * NCCL are found (INFD_HAVE_NCCL). */
#include <cuda_runtime.h>
#include <nccl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#include "tp_comm.h"

typedef struct {
    int size;
    ncclComm_t *comms;
    int *devices;
    tp_comm *handles;   /* the group's tp_comm, one per rank */
    pthread_mutex_t mu; /* serializes abort and the last free */
    atomic_bool aborted;
    int members;
} nccl_group;

static void group_abort(nccl_group *g)
{
    pthread_mutex_lock(&g->mu);
    if (!atomic_exchange(&g->aborted, true))
        for (int r = 0; r < g->size; r++)
            ncclCommAbort(g->comms[r]);
    pthread_mutex_unlock(&g->mu);
}

static rt_status nccl_fail(tp_comm *c, const char *what, ncclResult_t res, rt_error *err)
{
    nccl_group *g = c->impl;
    rt_error_set(err, RT_ERR_BACKEND, "%s on rank %d (cuda:%d): NCCL: %s: %s", what, c->rank,
                 g->devices[c->rank], ncclGetErrorString(res),
                 ncclGetLastError(g->comms[c->rank]));
    group_abort(g);
    return RT_ERR_BACKEND;
}

/* Checks that the clique is usable and selects the rank's device for the enqueue. */
static rt_status prepare(tp_comm *c, const char *what, rt_error *err)
{
    nccl_group *g = c->impl;
    if (atomic_load(&g->aborted))
        return rt_error_set(err, RT_ERR_BACKEND, "%s on rank %d: the NCCL communicators were "
                            "aborted after an earlier error", what, c->rank);
    ncclResult_t async = ncclSuccess;
    ncclResult_t res = ncclCommGetAsyncError(g->comms[c->rank], &async);
    if (res == ncclSuccess)
        res = async;
    if (res != ncclSuccess && res != ncclInProgress)
        return nccl_fail(c, what, res, err);
    cudaError_t ce = cudaSetDevice(g->devices[c->rank]);
    if (ce != cudaSuccess) {
        rt_error_set(err, RT_ERR_BACKEND, "%s on rank %d: cannot select cuda:%d: %s", what,
                     c->rank, g->devices[c->rank], cudaGetErrorString(ce));
        group_abort(g);
        return RT_ERR_BACKEND;
    }
    return RT_OK;
}

static bool nccl_sum_type(rt_dtype dt, ncclDataType_t *out)
{
    switch (dt) {
    case RT_DTYPE_F32: *out = ncclFloat32; return true;
    case RT_DTYPE_F16: *out = ncclFloat16; return true;
    case RT_DTYPE_BF16: *out = ncclBfloat16; return true;
    case RT_DTYPE_F64: *out = ncclFloat64; return true;
    case RT_DTYPE_I32: *out = ncclInt32; return true;
    case RT_DTYPE_I64: *out = ncclInt64; return true;
    default: return false;
    }
}

static rt_status nccl_all_reduce_sum(tp_comm *c, const void *send, void *recv, size_t count,
                                     rt_dtype dtype, void *stream, rt_error *err)
{
    ncclDataType_t nt;
    if (!nccl_sum_type(dtype, &nt)) {
        tp_comm_abort(c);
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "all_reduce_sum: NCCL does not sum %s",
                            rt_dtype_name(dtype));
    }
    rt_status st = prepare(c, "all_reduce_sum", err);
    if (st != RT_OK)
        return st;
    nccl_group *g = c->impl;
    ncclResult_t res = ncclAllReduce(send, recv, count, nt, ncclSum, g->comms[c->rank],
                                     (cudaStream_t)stream);
    return res == ncclSuccess ? RT_OK : nccl_fail(c, "all_reduce_sum", res, err);
}

/* Gathers and broadcasts move bytes: any element type goes as ncclUint8. all_gather
 * (ncclAllGather) serves infd.AllGather, the vocabulary-parallel logits; like the rest of
 * this file it is compiled wherever NCCL is found but has never run on the development
 * machines (no GPU): test_tp_comm runs it on the GPUs of a machine that has them. */
static rt_status nccl_all_gather(tp_comm *c, const void *send, void *recv, size_t count,
                                 rt_dtype dtype, void *stream, rt_error *err)
{
    rt_status st = prepare(c, "all_gather", err);
    if (st != RT_OK)
        return st;
    nccl_group *g = c->impl;
    ncclResult_t res = ncclAllGather(send, recv, count * rt_dtype_size(dtype), ncclUint8,
                                     g->comms[c->rank], (cudaStream_t)stream);
    return res == ncclSuccess ? RT_OK : nccl_fail(c, "all_gather", res, err);
}

static rt_status nccl_broadcast(tp_comm *c, void *buf, size_t count, rt_dtype dtype, int root,
                                void *stream, rt_error *err)
{
    rt_status st = prepare(c, "broadcast", err);
    if (st != RT_OK)
        return st;
    nccl_group *g = c->impl;
    ncclResult_t res = ncclBroadcast(buf, buf, count * rt_dtype_size(dtype), ncclUint8, root,
                                     g->comms[c->rank], (cudaStream_t)stream);
    return res == ncclSuccess ? RT_OK : nccl_fail(c, "broadcast", res, err);
}

static void nccl_abort(tp_comm *c)
{
    group_abort(c->impl);
}

static void group_free(nccl_group *g)
{
    pthread_mutex_destroy(&g->mu);
    free(g->comms);
    free(g->devices);
    free(g->handles);
    free(g);
}

/* The last member destroys the clique: finalize all communicators in one group (one
 * thread drives several ranks) and then destroy them. */
static void nccl_free(tp_comm *c)
{
    nccl_group *g = c->impl;
    pthread_mutex_lock(&g->mu);
    bool last = --g->members == 0;
    if (last && !atomic_load(&g->aborted)) {
        ncclGroupStart();
        for (int r = 0; r < g->size; r++)
            ncclCommFinalize(g->comms[r]);
        ncclGroupEnd();
        for (int r = 0; r < g->size; r++)
            ncclCommDestroy(g->comms[r]);
    }
    pthread_mutex_unlock(&g->mu);
    if (last)
        group_free(g);
}

static const tp_comm_vtable nccl_vtable = {
    .name = "nccl",
    .all_reduce_sum = nccl_all_reduce_sum,
    .all_gather = nccl_all_gather,
    .broadcast = nccl_broadcast,
    .abort = nccl_abort,
    .free = nccl_free,
};

bool tp_comm_nccl_available(void)
{
    return true;
}

/* Checks the device list against the visible devices before NCCL sees it, for a message
 * that says what is wrong. */
static rt_status check_devices(int n, const int *devices, rt_error *err)
{
    int visible = 0;
    cudaError_t ce = cudaGetDeviceCount(&visible);
    if (ce != cudaSuccess) {
        cudaGetLastError();
        return rt_error_set(err, RT_ERR_BACKEND, "cannot create %d NCCL communicator%s: no "
                            "CUDA device is usable (%s)", n, n == 1 ? "" : "s",
                            cudaGetErrorString(ce));
    }
    for (int r = 0; r < n; r++) {
        if (devices[r] < 0 || devices[r] >= visible)
            return rt_error_set(err, RT_ERR_INVALID_ARG, "NCCL rank %d asks for cuda:%d but "
                                "%d CUDA device%s visible", r, devices[r], visible,
                                visible == 1 ? " is" : "s are");
        for (int k = 0; k < r; k++)
            if (devices[k] == devices[r])
                return rt_error_set(err, RT_ERR_INVALID_ARG, "NCCL ranks %d and %d both ask "
                                    "for cuda:%d (one GPU cannot host two NCCL ranks)", k, r,
                                    devices[r]);
    }
    return RT_OK;
}

rt_status tp_comm_nccl_create(int n_devices, const int *devices, tp_comm **comms,
                              rt_error *err)
{
    if (n_devices < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "an NCCL group needs at least 1 device, "
                            "not %d", n_devices);
    rt_status st = check_devices(n_devices, devices, err);
    if (st != RT_OK)
        return st;
    nccl_group *g = calloc(1, sizeof *g);
    if (!g)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    pthread_mutex_init(&g->mu, NULL);
    atomic_init(&g->aborted, false);
    g->comms = calloc((size_t)n_devices, sizeof *g->comms);
    g->devices = calloc((size_t)n_devices, sizeof *g->devices);
    g->handles = calloc((size_t)n_devices, sizeof *g->handles);
    if (!g->comms || !g->devices || !g->handles) {
        group_free(g);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    for (int r = 0; r < n_devices; r++)
        g->devices[r] = devices[r];
    ncclResult_t res = ncclCommInitAll(g->comms, n_devices, g->devices);
    if (res != ncclSuccess) {
        int v = 0;
        ncclGetVersion(&v);
        rt_error_set(err, RT_ERR_BACKEND, "NCCL %d.%d.%d could not create %d communicator%s: "
                     "%s: %s", v / 10000, v / 100 % 100, v % 100, n_devices,
                     n_devices == 1 ? "" : "s", ncclGetErrorString(res),
                     ncclGetLastError(NULL));
        group_free(g);
        return RT_ERR_BACKEND;
    }
    g->size = g->members = n_devices;
    for (int r = 0; r < n_devices; r++) {
        g->handles[r] = (tp_comm){&nccl_vtable, r, n_devices, g};
        comms[r] = &g->handles[r];
    }
    return RT_OK;
}
