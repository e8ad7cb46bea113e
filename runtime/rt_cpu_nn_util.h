/* rt_cpu_nn_util.h: helpers shared by the CPU kernels of the NN and reduction ops: running
 * a kernel body written for F32/F64 on F16/BF16 (or I8/U8) tensors through float copies,
 * scratch in aligned pieces, and the window arithmetic of Conv and pooling. */
#ifndef RT_CPU_NN_UTIL_H
#define RT_CPU_NN_UTIL_H

#include <stddef.h>

#include "rt_backend.h"
#include "rt_index_math.h" /* rt_window_range */
#include "rt_nn_params.h"

/* Size of a piece of n elements of elem bytes, rounded to 64 bytes so that the next piece
 * of the same scratch buffer stays aligned. */
static inline size_t rt_scratch_piece(size_t n, size_t elem)
{
    return (n * elem + 63) & ~(size_t)63;
}

/* A kernel body: computes in F32 or F64 (the dtype of its main tensors) with a scratch
 * piece of the size it asked rt_nn_run for. */
typedef rt_status (*rt_nn_body)(rt_kernel_ctx *ctx, const void *params,
                                const rt_tensor *const *in, rt_tensor *const *out,
                                void *scratch, rt_error *err);

/* Runs body with scratch_elems elements of scratch of the compute type: directly when dt
 * (the dtype of the op's main tensors) is F32 or F64, else on F32 views of the tensors of
 * dtype dt, converting the outputs back afterwards. With dt F32, F16/BF16 inputs (the
 * weights of infd.FusedConv) are widened into F32 views too. */
rt_status rt_nn_run(rt_kernel_ctx *ctx, rt_dtype dt, rt_nn_body body, const void *params,
                    const rt_tensor *const *in, int n_in, rt_tensor *const *out, int n_out,
                    size_t scratch_elems, rt_error *err);

/* Pads a window of 1 to 3 spatial dims to exactly 3 by prepending dims of size 1, so that
 * the Conv and pooling kernels have one 3-D loop nest; fails for more than 3 dims. */
rt_status rt_window_pad3(rt_window *w, rt_error *err);


/* Scratch of at least `bytes` from ctx (NULL without error when bytes is 0). */
rt_status rt_nn_scratch(rt_kernel_ctx *ctx, size_t bytes, void **p, rt_error *err);

#endif
