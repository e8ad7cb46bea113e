/* rt_backend.h: the backend interface (a vtable in the style of ggml-backend) and the
 * per-run kernel context every kernel receives.
 *
 * Required slots: name, supports_op, node_run. Optional slots may be NULL; the
 * rt_backend_* wrappers then supply host-memory defaults. The executor (rt_exec.c) owns
 * shapes and memory planning; a backend only says which nodes it can run and runs them.
 * A device backend (cuda/cuda_backend.h) adds the slots that move tensors between host and
 * device memory and, optionally, record and replay a run (CUDA Graphs). */
#ifndef RT_BACKEND_H
#define RT_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* The collectives of one rank of a tensor-parallel group, which infd.AllReduce and
 * infd.AllGather call (parallel/tp_session.c supplies them; arg is the rank's
 * communicator). All NULL outside such a group. */
typedef struct rt_collectives {
    /* Sums buf (n F32 elements) in place over the ranks. */
    rt_status (*all_reduce)(void *arg, float *buf, size_t n, rt_error *err);
    /* recv (ranks x n F32 elements) = send of rank 0 | send of rank 1 | ... */
    rt_status (*all_gather)(void *arg, const float *send, float *recv, size_t n, rt_error *err);
    void *arg;
} rt_collectives;

/* State a kernel may use during one run. Owned by the session; reused across runs so that
 * a steady state allocates nothing. */
typedef struct rt_kernel_ctx {
    int threads;          /* worker threads kernels may use (>= 1) */
    void *scratch;        /* see rt_kernel_scratch */
    size_t scratch_size;
    char *strings;        /* bytes of BYTES elements created by kernels in this run */
    size_t strings_used, strings_size;
    struct rt_string_block *old_strings; /* pools outgrown during this run, freed at reset */
    rt_collectives coll;  /* infd.AllReduce, infd.AllGather; NULL outside tensor parallelism */
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

    /* For a backend whose buffers the host cannot address (device memory). All NULL means
     * host memory; with upload set, download, host_inputs and weight_load are set too. */
    /* bytes from host memory src into a buffer at dst; src may be reused on return, the
     * copy completes by the next synchronize */
    rt_status (*upload)(rt_backend *be, void *dst, const void *src, size_t bytes,
                        rt_error *err);
    /* bytes from a buffer at src into host memory dst, complete on return */
    rt_status (*download)(rt_backend *be, void *dst, const void *src, size_t bytes,
                          rt_error *err);
    /* the inputs of node (bit k for input k < 32) read on the host, by its shape inference
     * (Reshape's shape, Slice's starts, ...) or by the kernel as parameters (Clip's
     * bounds): the executor passes host tensors for those, device tensors for the rest */
    unsigned (*host_inputs)(rt_backend *be, const rt_node *node);
    /* weight value v of g made resident on the backend: *t receives its copy (the graph's
     * dtype and shape), owned by the backend until rt_backend_free */
    rt_status (*weight_load)(rt_backend *be, const rt_graph *g, int v, rt_tensor *t,
                             rt_error *err);

    /* Optional: the kernels one run launches recorded once and replayed (CUDA Graphs).
     * Between capture_begin and capture_end node_run records instead of running;
     * capture_end returns a new graph (freed with graph_free) or fails, and then nothing
     * was recorded or run. */
    rt_status (*capture_begin)(rt_backend *be, rt_error *err);
    rt_status (*capture_end)(rt_backend *be, void **graph, rt_error *err);
    rt_status (*graph_launch)(rt_backend *be, void *graph, rt_error *err);
    void (*graph_free)(rt_backend *be, void *graph);
    /* Optional: kernel launches (library calls count one each) and graph launches so far. */
    void (*launches)(rt_backend *be, uint64_t *kernels, uint64_t *graphs);
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
/* Whether the backend's buffers are host memory (no upload slot). */
bool rt_backend_is_host(const rt_backend *be);

/* The CPU backend: OpenBLAS and OpenMP with `threads` workers (0 = all cores). */
rt_backend *rt_cpu_backend_create(int threads, rt_error *err);

#endif
