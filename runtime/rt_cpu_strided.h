/* rt_cpu_strided.h: the strided copy engine behind the CPU data-movement kernels
 * (Transpose, Slice, Expand, Tile, Concat, Split, Pad and fills). Element size is a
 * parameter, so every dtype (BYTES as 16-byte rt_str structs) takes the same path. */
#ifndef RT_CPU_STRIDED_H
#define RT_CPU_STRIDED_H

#include <stddef.h>
#include <stdint.h>

#include "rt_tensor.h"

/* Copies smaller than this many bytes stay on one thread. */
#define RT_PARALLEL_BYTES ((int64_t)1 << 18)

/* Tile splits every dim in two, so boxes may have twice the tensor rank. */
#define RT_STRIDED_MAX_RANK (2 * RT_MAX_RANK)

/* Copies a box of dims[0..rank) elements of esize bytes each: the element at index
 * (i_0, ..., i_rank-1) goes from src + sum(i_k * src_strides[k]) elements to
 * dst + sum(i_k * dst_strides[k]) elements. Source strides may be 0 (broadcast) or
 * negative; destination elements must be distinct. Runs on up to threads OpenMP threads
 * when the box is large. */
void rt_strided_copy(void *dst, const int64_t *dst_strides, const void *src,
                     const int64_t *src_strides, int rank, const int64_t *dims, size_t esize,
                     int threads);

/* Fills n elements of dst with copies of the esize bytes at value. */
void rt_strided_fill(void *dst, const void *value, int64_t n, size_t esize, int threads);

/* Copies n elements from src to dst, stepping sstep and dstep elements. */
void rt_copy_run(void *dst, int64_t dstep, const void *src, int64_t sstep, int64_t n,
                 size_t esize);

#endif
