/* rt_exec.h: the graph executor. Internal to the runtime; rt_session.c is its user.
 *
 * Runs nodes in order on one backend. Before each node it infers the output shapes from
 * the actual inputs (so data-dependent shapes work). The first run of a set of input shapes
 * allocates each intermediate separately, records every shape, and then plans one arena for
 * those shapes (rt_memplan.c); later runs with the same shapes run inside that arena without
 * allocating. If a run finds a shape that differs from its plan (a shape that depends on
 * input values), the plan is rebuilt. On a device backend (rt_backend.h) weights are
 * loaded onto the device at create, inputs are uploaded into the arena and outputs
 * downloaded, and a plan is recorded as a graph on its second run and replayed after. */
#ifndef RT_EXEC_H
#define RT_EXEC_H

#include "rt_backend.h"
#include "rt_graph.h"

typedef struct rt_exec rt_exec;

/* The graph and backend are borrowed and must outlive the executor. */
rt_exec *rt_exec_create(const rt_graph *g, rt_backend *be, rt_error *err);
void rt_exec_free(rt_exec *x); /* NULL-safe */

/* Sets the collectives infd.AllReduce and infd.AllGather call (rt_kernel_ctx.coll). */
void rt_exec_set_collectives(rt_exec *x, const rt_collectives *coll);

/* inputs[i] feeds graph input i (already validated by the caller); outputs receive new
 * host tensors (caller frees). */
rt_status rt_exec_run(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                      rt_error *err);

/* Arena bytes of the largest plan (on a device, the graph inputs included), the bytes its
 * intermediates would take without reuse, and the number of cached plans. */
void rt_exec_memory(const rt_exec *x, size_t *arena_bytes, size_t *naive_bytes, int *n_plans);

/* Kernel launches of the last run that went node by node, launches (kernels and graphs) of
 * the last run, and whether that run replayed a recorded graph; zeros for backends that do
 * not count launches. */
void rt_exec_launches(const rt_exec *x, uint64_t *eager, uint64_t *last, bool *replayed);

#endif
