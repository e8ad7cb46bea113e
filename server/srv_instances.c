/* srv_instances.c: instance_group placed over the visible CUDA devices (srv_instances.h). */
#include "srv_instances.h"

/* Appends count instances on (backend, device). */
static rt_status add(srv_placement *out, int *n, int count, rt_backend_kind backend, int device,
                     rt_error *err)
{
    if (*n + count > SRV_MAX_INSTANCES)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "instance_group: more than %d instances once placed on every "
                            "device", SRV_MAX_INSTANCES);
    for (int k = 0; k < count; k++)
        out[(*n)++] = (srv_placement){backend, device};
    return RT_OK;
}

/* A KIND_GPU group: count instances on each listed (or each visible) device. */
static rt_status place_gpu(const srv_instance_group *g, int index, rt_backend_kind server_backend,
                           int visible, srv_placement *out, int *n, rt_error *err)
{
    if (server_backend == RT_BACKEND_CPU)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "instance_group[%d] is KIND_GPU but the daemon runs with --backend "
                            "cpu (use KIND_CPU or KIND_AUTO)", index);
    if (visible <= 0)
        return rt_error_set(err, RT_ERR_UNSUPPORTED,
                            "instance_group[%d] is KIND_GPU but no CUDA device is visible "
                            "(use KIND_CPU or KIND_AUTO to run on the CPU)", index);
    int n_dev = g->n_gpus ? g->n_gpus : visible;
    for (int d = 0; d < n_dev; d++) {
        int dev = g->n_gpus ? g->gpus[d] : d;
        if (dev >= visible)
            return rt_error_set(err, RT_ERR_UNSUPPORTED,
                                "instance_group[%d] names gpu %d, which does not exist (%d "
                                "CUDA device%s visible)", index, dev, visible,
                                visible == 1 ? "" : "s");
        rt_status st = add(out, n, g->count, RT_BACKEND_CUDA, dev, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

rt_status srv_instances_place(const srv_model_config *cfg, rt_backend_kind server_backend,
                              int visible, srv_placement *out, int *n, rt_error *err)
{
    *n = 0;
    if (cfg->n_groups == 0)
        return add(out, n, 1, server_backend, 0, err);
    for (int i = 0; i < cfg->n_groups; i++) {
        const srv_instance_group *g = &cfg->groups[i];
        rt_status st = g->kind == SRV_KIND_GPU
                           ? place_gpu(g, i, server_backend, visible, out, n, err)
                       : g->kind == SRV_KIND_CPU ? add(out, n, g->count, RT_BACKEND_CPU, 0, err)
                                                 : add(out, n, g->count, server_backend, 0, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}
