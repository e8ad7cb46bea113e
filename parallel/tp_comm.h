/* tp_comm.h: the communicator interface for tensor parallelism: rank, size and the three
 * collectives the sharded graph needs (all-reduce sum, all-gather, broadcast), with two
 * implementations: in-process threads for CPU ranks (tp_comm_local.c) and NCCL for GPUs
 * (tp_comm_nccl.c, built only when NCCL is found: INFD_HAVE_NCCL).
 *
 * A group of `size` communicators is created at once (eagerly, at model load, so that a
 * missing device or a broken NCCL surfaces at start-up); communicator r belongs to rank r.
 * Like NCCL, every rank of a group must call the same collectives in the same order with
 * the same count, dtype and root; each rank is driven by its own thread.
 *
 * Buffers: host memory for local communicators, device memory of the rank's GPU for NCCL.
 * In place is allowed: all_reduce_sum with send == recv, all_gather with
 * send == recv + rank * count elements. Buffers of different ranks must not overlap.
 *
 * stream: NULL for local communicators, whose calls return when the collective is done.
 * For NCCL it is the rank's cudaStream_t (NULL = the default stream) and the call only
 * enqueues the collective on it; synchronize the stream before reading recv on the host.
 *
 * Errors: rt_status + rt_error. A failed collective leaves the group unusable (NCCL
 * communicators are aborted); later calls fail fast instead of hanging. */
#ifndef TP_COMM_H
#define TP_COMM_H

#include <stdbool.h>
#include <stddef.h>

#include "rt_dtype.h"
#include "rt_status.h"

typedef struct tp_comm tp_comm;

typedef struct tp_comm_vtable {
    const char *name; /* "local" or "nccl" */
    rt_status (*all_reduce_sum)(tp_comm *c, const void *send, void *recv, size_t count,
                                rt_dtype dtype, void *stream, rt_error *err);
    rt_status (*all_gather)(tp_comm *c, const void *send, void *recv, size_t count,
                            rt_dtype dtype, void *stream, rt_error *err);
    rt_status (*broadcast)(tp_comm *c, void *buf, size_t count, rt_dtype dtype, int root,
                           void *stream, rt_error *err);
    void (*abort)(tp_comm *c);
    void (*free)(tp_comm *c);
} tp_comm_vtable;

struct tp_comm {
    const tp_comm_vtable *vt;
    int rank, size;
    void *impl;
};

int tp_comm_rank(const tp_comm *c);
int tp_comm_size(const tp_comm *c);
const char *tp_comm_name(const tp_comm *c);

/* recv[i] = sum over ranks r (in rank order) of send_r[i], on every rank, for count
 * elements. Local communicators support F32, F16 and BF16 (16-bit types are summed in
 * float and rounded once) and give every rank bit-identical results; NCCL supports F32,
 * F16, BF16, F64, I32, I64. */
rt_status tp_comm_all_reduce_sum(tp_comm *c, const void *send, void *recv, size_t count,
                                 rt_dtype dtype, void *stream, rt_error *err);
/* recv (size * count elements) = send_0 | send_1 | ... | send_{size-1}, on every rank. Any
 * fixed-size dtype (not BYTES). */
rt_status tp_comm_all_gather(tp_comm *c, const void *send, void *recv, size_t count,
                             rt_dtype dtype, void *stream, rt_error *err);
/* buf on every rank = buf on rank root. Any fixed-size dtype (not BYTES). */
rt_status tp_comm_broadcast(tp_comm *c, void *buf, size_t count, rt_dtype dtype, int root,
                            void *stream, rt_error *err);

/* Marks the whole group failed: peers blocked in a collective (and all later calls) return
 * RT_ERR_BACKEND. For a rank whose own work failed, so that the others do not wait for it
 * forever. Safe from any thread. */
void tp_comm_abort(tp_comm *c);
/* Frees one rank's communicator (NULL-safe), from any thread, once its collectives are
 * done; the group (for NCCL: the whole clique of NCCL communicators) goes with its last
 * member. */
void tp_comm_free(tp_comm *c);

/* Creates the `size` communicators of one in-process group into comms[0..size). */
rt_status tp_comm_local_create(int size, tp_comm **comms, rt_error *err);

/* Creates one NCCL communicator per device (ncclCommInitAll) into comms[0..n_devices);
 * rank r runs on CUDA device devices[r]. Fails with a message saying why (built without
 * NCCL, too few devices, NCCL's own error). */
rt_status tp_comm_nccl_create(int n_devices, const int *devices, tp_comm **comms,
                              rt_error *err);
/* Whether this build has the NCCL implementation. */
bool tp_comm_nccl_available(void);

#endif
