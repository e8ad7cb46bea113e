/* rt_backend.h: the backend interface (a vtable in the style of ggml-backend) and the
 * per-run kernel context every kernel receives.
 *
 * Required slots: name, supports_op, node_run. Optional slots may be NULL; the
 * rt_backend_* wrappers then supply host-memory defaults. The executor (rt_plan.c) owns
 * shapes and memory planning; a backend only says which nodes it can run and runs them. */
#ifndef RT_BACKEND_H
#define RT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* Sums buf (n F32 elements) in place over the ranks of a tensor-parallel group; arg is
 * the rank's communicator (parallel/tp_session.c supplies both). */
typedef rt_status (*rt_all_reduce_fn)(void *arg, float *buf, size_t n, rt_error *err);

/* State a kernel may use during one run. Owned by the session; reused across runs so that
 * a steady state allocates nothing. */
typedef struct rt_kernel_ctx {
    int threads;          /* worker threads kernels may use (>= 1) */
    void *scratch;        /* see rt_kernel_scratch */
    size_t scratch_size;
    char *strings;        /* bytes of BYTES elements created by kernels in this run */
    size_t strings_used, strings_size;
    struct rt_string_block *old_strings; /* pools outgrown during this run, freed at reset */
    rt_all_reduce_fn all_reduce; /* infd.AllReduce; NULL outside a tensor-parallel session */
    void *all_reduce_arg;
} rt_kernel_ctx;

/* A temporary buffer of at least bytes (64-byte aligned), valid until the next call; grows
 * only when a larger one is asked for. NULL on allocation failure. */
void *rt_kernel_scratch(rt_kernel_ctx *ctx, size_t bytes);
/* Room for len bytes of a BYTES element produced by a kernel, valid until the run ends.
 * NULL on allocation failure. */
char *rt_kernel_string_alloc(rt_kernel_ctx *ctx, size_t len);
/* Called by the executor at the start of each run and at session end. */
void rt_kernel_ctx_reset(rt_kernel_ctx *ctx);
void rt_kernel_ctx_release(rt_kernel_ctx *ctx);

typedef struct rt_backend rt_backend;

typedef struct rt_backend_vtable {
    const char *name;
    /* required */
    bool (*supports_op)(rt_backend *be, const rt_node *node);
    rt_status (*node_run)(rt_backend *be, rt_kernel_ctx *ctx, const rt_node *node,
                          const rt_tensor *const *in, int n_in, rt_tensor *const *out, int n_out,
                          rt_error *err);
    /* optional */
    void *(*buffer_alloc)(rt_backend *be, size_t bytes);
    void (*buffer_free)(rt_backend *be, void *ptr);
    rt_status (*synchronize)(rt_backend *be, rt_error *err);
    void (*free)(rt_backend *be);
} rt_backend_vtable;

struct rt_backend {
    const rt_backend_vtable *vt;
    void *impl;       /* backend-private state */
    int threads;
};

/* Wrappers that supply defaults for NULL slots. */
void *rt_backend_buffer_alloc(rt_backend *be, size_t bytes);
void rt_backend_buffer_free(rt_backend *be, void *ptr);
rt_status rt_backend_synchronize(rt_backend *be, rt_error *err);
void rt_backend_free(rt_backend *be); /* NULL-safe */

/* The CPU backend: OpenBLAS and OpenMP with `threads` workers (0 = all cores). */
rt_backend *rt_cpu_backend_create(int threads, rt_error *err);

#endif
