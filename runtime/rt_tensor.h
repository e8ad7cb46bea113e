/* rt_tensor.h: shapes and tensors.
 *
 * A tensor is dtype + shape + contiguous row-major data. It either owns its buffer
 * (freed by rt_tensor_free) or borrows it (a view into an arena, a weight in a mapped
 * file, a caller's array). BYTES tensors hold rt_str elements whose bytes live elsewhere:
 * in the tensor's own string pool when it owns them, else in whatever the borrowed
 * elements point at. */
#ifndef RT_TENSOR_H
#define RT_TENSOR_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_dtype.h"
#include "rt_status.h"

#define RT_MAX_RANK 8

typedef struct rt_shape {
    int rank;
    int64_t dims[RT_MAX_RANK]; /* in graph metadata, -1 marks an unknown (symbolic) dim */
} rt_shape;

/* One BYTES element: len bytes at ptr, not NUL-terminated. */
typedef struct rt_str {
    const char *ptr;
    size_t len;
} rt_str;

typedef enum {
    RT_DEVICE_HOST = 0,
    RT_DEVICE_CUDA = 1
} rt_device_kind;

typedef struct rt_tensor {
    rt_dtype dtype;
    rt_shape shape;
    void *data;             /* numel * rt_dtype_size(dtype) bytes, 64-byte aligned if owned */
    rt_device_kind device;
    int device_index;
    bool owns_data;         /* data is freed with the tensor */
    char *string_pool;      /* owned bytes that rt_str elements point into (BYTES only) */
} rt_tensor;

/* Number of elements (1 for rank 0); -1 if any dim is negative or the product overflows. */
int64_t rt_shape_numel(const rt_shape *s);
bool rt_shape_equal(const rt_shape *a, const rt_shape *b);
/* Writes "[2,3,-1]" into buf (always NUL-terminated); returns buf. */
const char *rt_shape_str(const rt_shape *s, char *buf, size_t size);
rt_shape rt_shape_make(int rank, const int64_t *dims);
/* Row-major strides (in elements) of a contiguous tensor of this shape. */
void rt_strides_contiguous(const rt_shape *shape, int64_t *strides);

/* New tensor owning zeroed host memory for the shape (no element may be negative).
 * Returns NULL and sets err on overflow or allocation failure. Caller frees. */
rt_tensor *rt_tensor_create(rt_dtype dtype, const rt_shape *shape, rt_error *err);
/* New tensor header borrowing data (not freed with the tensor). Caller frees. */
rt_tensor *rt_tensor_wrap(rt_dtype dtype, const rt_shape *shape, void *data);
/* Deep copy on the host, BYTES strings included. Caller frees. */
rt_tensor *rt_tensor_clone(const rt_tensor *t, rt_error *err);
/* NULL-safe. */
void rt_tensor_free(rt_tensor *t);

size_t rt_tensor_nbytes(const rt_tensor *t);
int64_t rt_tensor_numel(const rt_tensor *t);

/* For an owned BYTES tensor: copies the n strings into one pool owned by t and points
 * t's elements at it (replacing any previous pool). */
rt_status rt_tensor_set_strings(rt_tensor *t, const rt_str *strings, size_t n, rt_error *err);

/* 64-byte aligned host allocation / free for tensor data and arenas. */
void *rt_aligned_alloc(size_t bytes);
void rt_aligned_free(void *p);

#endif
