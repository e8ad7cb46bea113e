/* rt_backend.c: defaults for the optional backend slots, and the kernel context's reusable
 * scratch buffer and per-run string pool. */
#include "rt_backend.h"

#include <stdlib.h>
#include <string.h>

/* A string pool outgrown during a run: kept alive (earlier elements point into it) until
 * the run ends. */
struct rt_string_block {
    struct rt_string_block *next;
    char *bytes;
};

void *rt_kernel_scratch(rt_kernel_ctx *ctx, size_t bytes)
{
    if (bytes <= ctx->scratch_size && ctx->scratch)
        return ctx->scratch;
    void *p = rt_aligned_alloc(bytes);
    if (!p)
        return NULL;
    rt_aligned_free(ctx->scratch);
    ctx->scratch = p;
    ctx->scratch_size = bytes;
    return p;
}

char *rt_kernel_string_alloc(rt_kernel_ctx *ctx, size_t len)
{
    if (ctx->strings_used + len > ctx->strings_size || !ctx->strings) {
        size_t size = ctx->strings_size ? ctx->strings_size * 2 : 4096;
        while (size < len)
            size *= 2;
        char *pool = malloc(size);
        if (!pool)
            return NULL;
        if (ctx->strings) {
            struct rt_string_block *old = malloc(sizeof *old);
            if (!old) {
                free(pool);
                return NULL;
            }
            old->bytes = ctx->strings;
            old->next = ctx->old_strings;
            ctx->old_strings = old;
        }
        ctx->strings = pool;
        ctx->strings_size = size;
        ctx->strings_used = 0;
    }
    char *p = ctx->strings + ctx->strings_used;
    ctx->strings_used += len;
    return p;
}

static void free_old_strings(rt_kernel_ctx *ctx)
{
    while (ctx->old_strings) {
        struct rt_string_block *b = ctx->old_strings;
        ctx->old_strings = b->next;
        free(b->bytes);
        free(b);
    }
}

void rt_kernel_ctx_reset(rt_kernel_ctx *ctx)
{
    free_old_strings(ctx);
    ctx->strings_used = 0;
}

void rt_kernel_ctx_release(rt_kernel_ctx *ctx)
{
    free_old_strings(ctx);
    free(ctx->strings);
    rt_aligned_free(ctx->scratch);
    ctx->strings = NULL;
    ctx->scratch = NULL;
    ctx->strings_size = ctx->strings_used = ctx->scratch_size = 0;
}

void *rt_backend_buffer_alloc(rt_backend *be, size_t bytes)
{
    return be->vt->buffer_alloc ? be->vt->buffer_alloc(be, bytes) : rt_aligned_alloc(bytes);
}

void rt_backend_buffer_free(rt_backend *be, void *ptr)
{
    if (be->vt->buffer_free)
        be->vt->buffer_free(be, ptr);
    else
        rt_aligned_free(ptr);
}

rt_status rt_backend_synchronize(rt_backend *be, rt_error *err)
{
    return be->vt->synchronize ? be->vt->synchronize(be, err) : RT_OK;
}

bool rt_backend_is_host(const rt_backend *be)
{
    return be->vt->upload == NULL;
}

void rt_backend_free(rt_backend *be)
{
    if (!be)
        return;
    if (be->vt->free)
        be->vt->free(be);
    else
        free(be);
}
