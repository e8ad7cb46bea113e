/* rt_exec.h: the graph executor. Internal to the runtime; rt_session.c is its user.
 *
 * Runs nodes in order on one backend. Before each node it infers the output shapes from
 * the actual inputs (so data-dependent shapes work). The first run of a set of input shapes
 * allocates each intermediate separately, records every shape, and then plans one arena for
 * those shapes (rt_memplan.c); later runs with the same shapes run inside that arena without
 * allocating. If a run finds a shape that differs from its plan (a shape that depends on
 * input values), the plan is rebuilt. */
#ifndef RT_EXEC_H
#define RT_EXEC_H

#include "rt_backend.h"
#include "rt_graph.h"

typedef struct rt_exec rt_exec;

/* The graph and backend are borrowed and must outlive the executor. */
rt_exec *rt_exec_create(const rt_graph *g, rt_backend *be, rt_error *err);
void rt_exec_free(rt_exec *x); /* NULL-safe */

/* Sets the collective infd.AllReduce kernels call (rt_kernel_ctx.all_reduce). */
void rt_exec_set_all_reduce(rt_exec *x, rt_all_reduce_fn fn, void *arg);

/* inputs[i] feeds graph input i (already validated by the caller); outputs receive new
 * host tensors (caller frees). */
rt_status rt_exec_run(rt_exec *x, const rt_tensor *const *inputs, rt_tensor **outputs,
                      rt_error *err);

/* Arena bytes of the largest plan, the bytes its intermediates would take without reuse,
 * and the number of cached plans. */
void rt_exec_memory(const rt_exec *x, size_t *arena_bytes, size_t *naive_bytes, int *n_plans);

#endif
