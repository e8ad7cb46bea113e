/* cuda_mem.c: memory of the CUDA backend: its stream-ordered caching pool (a cudaMemPool
 * whose release threshold keeps freed blocks reserved, so steady-state runs allocate no
 * device memory from the driver), the grow-only device scratch, the pinned staging
 * buffer that host copies go through, and the mapped flag word kernels report bad input
 * in. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cuda_be.h"

#define STAGE_MIN (1u << 20)
#define STAGE_MAX (64u << 20) /* larger downloads go through it in pieces */
#define ALIGN 256

rt_status cuda_fail(cuda_be *be, rt_error *err, cudaError_t e, const char *what)
{
    cudaGetLastError();
    if (e == cudaErrorMemoryAllocation) {
        size_t free_b = 0, total = 0;
        cudaMemGetInfo(&free_b, &total);
        cudaGetLastError();
        return rt_error_set(err, RT_ERR_NOMEM,
                            "cuda: %s: out of device memory on cuda:%d (%.1f of %.1f GiB free)",
                            what, be ? be->device : 0, (double)free_b / (1 << 30),
                            (double)total / (1 << 30));
    }
    return rt_error_set(err, RT_ERR_BACKEND, "cuda: %s: %s (%s)", what, cudaGetErrorString(e),
                        cudaGetErrorName(e));
}

rt_status cuda_mem_init(cuda_be *be, rt_error *err)
{
    struct cudaMemPoolProps props;
    memset(&props, 0, sizeof props);
    props.allocType = cudaMemAllocationTypePinned;
    props.location.type = cudaMemLocationTypeDevice;
    props.location.id = be->device;
    CUDA_TRY(be, err, cudaMemPoolCreate(&be->pool, &props), "creating the memory pool");
    uint64_t keep = UINT64_MAX;
    CUDA_TRY(be, err, cudaMemPoolSetAttribute(be->pool, cudaMemPoolAttrReleaseThreshold, &keep),
             "configuring the memory pool");
    CUDA_TRY(be, err, cudaHostAlloc((void **)&be->flag_host, sizeof(int), cudaHostAllocMapped),
             "allocating the flag word");
    *be->flag_host = 0;
    CUDA_TRY(be, err, cudaHostGetDevicePointer((void **)&be->flag, be->flag_host, 0),
             "mapping the flag word");
    return RT_OK;
}

void cuda_mem_release(cuda_be *be)
{
    if (be->stream)
        cudaStreamSynchronize(be->stream);
    for (int i = 0; i < be->n_retired; i++)
        cudaFreeAsync(be->retired[i], be->stream);
    cudaFreeAsync(be->scratch, be->stream);
    free(be->retired);
    if (be->stream)
        cudaStreamSynchronize(be->stream);
    if (be->pool)
        cudaMemPoolDestroy(be->pool);
    cudaFreeHost(be->stage);
    cudaFreeHost(be->flag_host);
    cudaGetLastError();
}

void *cuda_mem_alloc(cuda_be *be, size_t bytes, rt_error *err)
{
    size_t size = (bytes + ALIGN - 1) / ALIGN * ALIGN;
    if (size < ALIGN)
        size = ALIGN;
    void *p = NULL;
    cudaError_t e = cudaMallocFromPoolAsync(&p, size, be->pool, be->stream);
    if (e == cudaErrorMemoryAllocation) {
        /* give back what the pool caches beyond what is in use, and try once more */
        cudaGetLastError();
        cudaStreamSynchronize(be->stream);
        cudaMemPoolTrimTo(be->pool, 0);
        e = cudaMallocFromPoolAsync(&p, size, be->pool, be->stream);
    }
    if (e != cudaSuccess) {
        char what[96];
        snprintf(what, sizeof what, "allocating %.1f MiB", (double)size / (1 << 20));
        cuda_fail(be, err, e, what);
        return NULL;
    }
    return p;
}

void cuda_mem_free(cuda_be *be, void *p)
{
    if (p)
        cudaFreeAsync(p, be->stream);
}

void *cuda_scratch(cuda_be *be, size_t bytes, rt_error *err)
{
    if (bytes <= be->scratch_size && be->scratch)
        return be->scratch;
    if (be->capturing) {
        /* allocating inside a recording would tie the graph to memory it cannot own */
        be->capture_refused = true;
        rt_error_set(err, RT_ERR_BACKEND, "cuda: scratch grew while recording a graph");
        return NULL;
    }
    size_t size = bytes > 2 * be->scratch_size ? bytes : 2 * be->scratch_size;
    void *p = cuda_mem_alloc(be, size, err);
    if (!p)
        return NULL;
    if (be->scratch) {
        if (be->n_retired == be->cap_retired) {
            int cap = be->cap_retired ? 2 * be->cap_retired : 8;
            void **r = realloc(be->retired, sizeof *r * (size_t)cap);
            if (!r) {
                cuda_mem_free(be, p);
                rt_error_set(err, RT_ERR_NOMEM, "out of memory");
                return NULL;
            }
            be->retired = r;
            be->cap_retired = cap;
        }
        be->retired[be->n_retired++] = be->scratch;
    }
    be->scratch = p;
    be->scratch_size = size;
    return p;
}

/* Pinned staging of at least bytes (grown only between runs: a larger buffer replaces
 * the old one once the stream has drained it). */
static rt_status stage_reserve(cuda_be *be, size_t bytes, rt_error *err)
{
    if (be->stage_used + bytes <= be->stage_size)
        return RT_OK;
    /* the copies out of the staging must finish before it is reused */
    CUDA_TRY(be, err, cudaStreamSynchronize(be->stream), "waiting for copies");
    be->stage_used = 0;
    if (bytes <= be->stage_size)
        return RT_OK;
    size_t size = bytes < STAGE_MIN ? STAGE_MIN : bytes;
    cudaFreeHost(be->stage);
    be->stage = NULL;
    be->stage_size = 0;
    CUDA_TRY(be, err, cudaHostAlloc((void **)&be->stage, size, cudaHostAllocDefault),
             "allocating pinned staging memory");
    be->stage_size = size;
    return RT_OK;
}

rt_status cuda_upload(cuda_be *be, void *dst, const void *src, size_t bytes, rt_error *err)
{
    if (bytes == 0)
        return RT_OK;
    if (be->capturing)
        return rt_error_set(err, RT_ERR_INTERNAL, "cuda: upload while recording a graph");
    rt_status st = stage_reserve(be, bytes, err);
    if (st != RT_OK)
        return st;
    char *s = be->stage + be->stage_used;
    memcpy(s, src, bytes);
    be->stage_used += (bytes + ALIGN - 1) / ALIGN * ALIGN;
    CUDA_TRY(be, err, cudaMemcpyAsync(dst, s, bytes, cudaMemcpyHostToDevice, be->stream),
             "copying to the device");
    return RT_OK;
}

rt_status cuda_download(cuda_be *be, void *dst, const void *src, size_t bytes, rt_error *err)
{
    for (size_t done = 0; done < bytes;) {
        size_t n = bytes - done < STAGE_MAX ? bytes - done : STAGE_MAX;
        rt_status st = stage_reserve(be, n, err);
        if (st != RT_OK)
            return st;
        char *s = be->stage + be->stage_used;
        CUDA_TRY(be, err,
                 cudaMemcpyAsync(s, (const char *)src + done, n, cudaMemcpyDeviceToHost,
                                 be->stream),
                 "copying from the device");
        CUDA_TRY(be, err, cudaStreamSynchronize(be->stream), "running the model");
        be->stage_used = 0;
        memcpy((char *)dst + done, s, n);
        done += n;
    }
    return RT_OK;
}

rt_status cuda_sync(cuda_be *be, rt_error *err)
{
    CUDA_TRY(be, err, cudaStreamSynchronize(be->stream), "running the model");
    be->stage_used = 0;
    int flag = *(volatile int *)be->flag_host;
    if (flag) {
        *(volatile int *)be->flag_host = 0;
        if (flag == CUDA_FLAG_GATHER_INDEX)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "Gather or Embedding: an index is out of range");
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cuda: a kernel rejected its input (%d)",
                            flag);
    }
    return RT_OK;
}
