/* srv_instances.h: where a model's instances run: instance_group (srv_model_config.h)
 * expanded with Triton's semantics over the CUDA devices this host has, one backend and
 * device per instance, for the session options of each instance (srv_repo.c). */
#ifndef SRV_INSTANCES_H
#define SRV_INSTANCES_H

#include "rt_session.h"
#include "srv_model_config.h"

typedef struct srv_placement {
    rt_backend_kind backend;
    int device;                  /* CUDA device index (for cuda; 0 otherwise) */
} srv_placement;

/* Fills out[0..*n) (out holds SRV_MAX_INSTANCES), group by group in order: KIND_GPU puts
 * `count` instances on cuda with each device of gpus in turn (none listed: each of the
 * `visible` devices), KIND_CPU `count` on the CPU, KIND_AUTO `count` on server_backend
 * (--backend) with device 0; no groups: one KIND_AUTO instance. Fails with the reason
 * (the model is then UNAVAILABLE) when a KIND_GPU group finds no visible device, names a
 * device index that is not visible, meets --backend cpu, or the total exceeds
 * SRV_MAX_INSTANCES. */
rt_status srv_instances_place(const srv_model_config *cfg, rt_backend_kind server_backend,
                              int visible, srv_placement *out, int *n, rt_error *err);

#endif
