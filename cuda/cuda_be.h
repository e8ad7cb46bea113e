/* cuda_be.h: the CUDA backend's private state and the helpers its C files share (cuda/
 * only; the runtime sees cuda_backend.h). One cuda_be per session: a stream on one device,
 * its own caching memory pool, pinned staging for copies, device scratch for kernels, the
 * resident weights, the cuBLASLt state (cuda_gemm.h) and the cuDNN state
 * (cuda_dnn_conv.h). */
#ifndef CUDA_BE_H
#define CUDA_BE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime_api.h>

#include "cuda_kernels.h"
#include "rt_backend.h"
#include "rt_compress.h"

typedef struct cuda_gemm_state cuda_gemm_state;
typedef struct cuda_dnn_state cuda_dnn_state;

/* A weight's copy in the dtype its GEMMs compute in (cuda_be_weight_copy). */
typedef struct cuda_wcopy {
    const void *key;     /* the weight's resident data */
    void *data;          /* the copy (owned) */
    rt_dtype dtype;
} cuda_wcopy;

/* A Constant node's value made resident on first use (uploads cannot be recorded). */
typedef struct cuda_const {
    const rt_node *node;
    void *data;          /* owned */
} cuda_const;

typedef struct cuda_be {
    rt_backend base;         /* first: the runtime's rt_backend is this struct */
    int device;
    rt_precision precision;  /* of GEMMs on F32 operands (rt_compress.h) */
    bool graphs;             /* CUDA Graph recording allowed */
    cudaStream_t stream;
    cudaMemPool_t pool;      /* stream-ordered caching pool of this backend: freed blocks
                              * stay reserved for reuse (no cudaMalloc / cudaFree per run) */
    /* device scratch for one node's temporaries; outgrown buffers stay alive in retired[]
     * because recorded graphs may still use them */
    void *scratch;
    size_t scratch_size;
    void **retired;
    int n_retired, cap_retired;
    /* pinned host staging for uploads (a run's uploads append; reset at synchronize) and
     * downloads */
    char *stage;
    size_t stage_size, stage_used;
    int *flag_host, *flag;   /* mapped pinned word kernels set on bad input (CUDA_FLAG_*) */
    /* resident weights (owned) and their compute-dtype copies */
    void **weights;
    int n_weights, cap_weights;
    cuda_wcopy *wcopies;
    int n_wcopies, cap_wcopies;
    cuda_const *consts;
    int n_consts, cap_consts;
    cuda_gemm_state *gemm;
    cuda_dnn_state *dnn;     /* cuDNN convolutions (cuda_dnn_conv.h): made on the first */
    bool capturing, capture_refused; /* between capture_begin and capture_end */
    uint64_t kernels, graph_launches; /* launched so far (library calls count as kernels) */
    uint64_t kernels_at_capture;      /* kernels recorded into a graph are not launches */
} cuda_be;

/* A failed CUDA runtime call as an rt_error: "cuda: <what>: <reason>", RT_ERR_NOMEM for
 * out of memory (with the device's free and total memory), else RT_ERR_BACKEND. The
 * error is cleared from the runtime's last-error slot. */
rt_status cuda_fail(cuda_be *be, rt_error *err, cudaError_t e, const char *what);

#define CUDA_TRY(be, err, call, what)                                                       \
    do {                                                                                    \
        cudaError_t cuda_e_ = (call);                                                       \
        if (cuda_e_ != cudaSuccess)                                                         \
            return cuda_fail((be), (err), cuda_e_, (what));                                 \
    } while (0)

/* Checks one kernel launch (a cuda_k_* call) and counts it. */
#define CUDA_LAUNCH(be, err, call, what)                                                    \
    do {                                                                                    \
        (be)->kernels++;                                                                    \
        CUDA_TRY(be, err, call, what);                                                      \
    } while (0)

/* ---- cuda_mem.c ---- */
/* Device memory from the backend's pool (at least 256 bytes, 256-byte aligned); NULL with
 * the reason in err when the device is out of memory after the pool's cache was returned. */
void *cuda_mem_alloc(cuda_be *be, size_t bytes, rt_error *err);
void cuda_mem_free(cuda_be *be, void *p); /* NULL-safe, stream-ordered */
/* A device buffer of at least bytes for the current node, valid until the next call. */
void *cuda_scratch(cuda_be *be, size_t bytes, rt_error *err);
/* Host memory to device (asynchronous through the pinned staging) and back (synchronous). */
rt_status cuda_upload(cuda_be *be, void *dst, const void *src, size_t bytes, rt_error *err);
rt_status cuda_download(cuda_be *be, void *dst, const void *src, size_t bytes, rt_error *err);
/* Waits for the stream, then reports a flag a kernel set. */
rt_status cuda_sync(cuda_be *be, rt_error *err);
rt_status cuda_mem_init(cuda_be *be, rt_error *err);
void cuda_mem_release(cuda_be *be);

/* Ops that must upload data (a Constant on its first run) call this first: while a graph
 * is being recorded it marks the recording refused (it is then dropped and the plan runs
 * node by node) and returns true, and the op does nothing (cuda_backend.c). */
bool cuda_capture_refuses(cuda_be *be);

#endif
