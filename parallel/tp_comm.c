/* tp_comm.c: the communicator wrappers: argument checks shared by every implementation
 * (a rank that fails them aborts the group, so that its peers do not wait for it), and the
 * NCCL entry points of a build without NCCL. */
#include "tp_comm.h"

int tp_comm_rank(const tp_comm *c)
{
    return c->rank;
}

int tp_comm_size(const tp_comm *c)
{
    return c->size;
}

const char *tp_comm_name(const tp_comm *c)
{
    return c->vt->name;
}

static rt_status check_buffers(tp_comm *c, const char *what, const void *a, const void *b,
                               size_t count, rt_dtype dtype, rt_error *err)
{
    if (rt_dtype_size(dtype) == 0 || dtype == RT_DTYPE_BYTES) {
        tp_comm_abort(c);
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s: dtype %s cannot be communicated",
                            what, rt_dtype_name(dtype));
    }
    if (count > 0 && (!a || !b)) {
        tp_comm_abort(c);
        return rt_error_set(err, RT_ERR_INVALID_ARG, "%s on rank %d: NULL buffer", what,
                            c->rank);
    }
    return RT_OK;
}

rt_status tp_comm_all_reduce_sum(tp_comm *c, const void *send, void *recv, size_t count,
                                 rt_dtype dtype, void *stream, rt_error *err)
{
    rt_status st = check_buffers(c, "all_reduce_sum", send, recv, count, dtype, err);
    return st != RT_OK ? st : c->vt->all_reduce_sum(c, send, recv, count, dtype, stream, err);
}

rt_status tp_comm_all_gather(tp_comm *c, const void *send, void *recv, size_t count,
                             rt_dtype dtype, void *stream, rt_error *err)
{
    rt_status st = check_buffers(c, "all_gather", send, recv, count, dtype, err);
    return st != RT_OK ? st : c->vt->all_gather(c, send, recv, count, dtype, stream, err);
}

rt_status tp_comm_broadcast(tp_comm *c, void *buf, size_t count, rt_dtype dtype, int root,
                            void *stream, rt_error *err)
{
    rt_status st = check_buffers(c, "broadcast", buf, buf, count, dtype, err);
    if (st != RT_OK)
        return st;
    if (root < 0 || root >= c->size) {
        tp_comm_abort(c);
        return rt_error_set(err, RT_ERR_INVALID_ARG, "broadcast: root %d is not a rank of a "
                            "group of %d", root, c->size);
    }
    return c->vt->broadcast(c, buf, count, dtype, root, stream, err);
}

void tp_comm_abort(tp_comm *c)
{
    c->vt->abort(c);
}

void tp_comm_free(tp_comm *c)
{
    if (c)
        c->vt->free(c);
}

#ifndef INFD_HAVE_NCCL
bool tp_comm_nccl_available(void)
{
    return false;
}

rt_status tp_comm_nccl_create(int n_devices, const int *devices, tp_comm **comms,
                              rt_error *err)
{
    (void)devices;
    (void)comms;
    return rt_error_set(err, RT_ERR_UNSUPPORTED, "cannot create %d NCCL communicator%s: this "
                        "build has no NCCL (nccl.h and libnccl.so were not found at build "
                        "time)", n_devices, n_devices == 1 ? "" : "s");
}
#endif
