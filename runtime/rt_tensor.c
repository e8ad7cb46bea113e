/* rt_tensor.c: shapes, tensor creation and ownership, string pools, aligned memory. */
#include "rt_tensor.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define RT_ALIGN 64

void *rt_aligned_alloc(size_t bytes)
{
    size_t rounded = (bytes + RT_ALIGN - 1) / RT_ALIGN * RT_ALIGN;
    return aligned_alloc(RT_ALIGN, rounded ? rounded : RT_ALIGN);
}

void rt_aligned_free(void *p)
{
    free(p);
}

int64_t rt_shape_numel(const rt_shape *s)
{
    int64_t n = 1;
    for (int i = 0; i < s->rank; i++)
        if (s->dims[i] < 0 || __builtin_mul_overflow(n, s->dims[i], &n))
            return -1;
    return n;
}

bool rt_shape_equal(const rt_shape *a, const rt_shape *b)
{
    if (a->rank != b->rank)
        return false;
    for (int i = 0; i < a->rank; i++)
        if (a->dims[i] != b->dims[i])
            return false;
    return true;
}

const char *rt_shape_str(const rt_shape *s, char *buf, size_t size)
{
    size_t used = 0;
    if (size == 0)
        return buf;
    buf[0] = '\0';
    used += (size_t)snprintf(buf, size, "[");
    for (int i = 0; i < s->rank && used < size; i++)
        used += (size_t)snprintf(buf + used, size - used, "%s%lld", i ? "," : "",
                                 (long long)s->dims[i]);
    if (used < size)
        snprintf(buf + used, size - used, "]");
    return buf;
}

rt_shape rt_shape_make(int rank, const int64_t *dims)
{
    rt_shape s = {.rank = rank};
    for (int i = 0; i < rank && i < RT_MAX_RANK; i++)
        s.dims[i] = dims[i];
    return s;
}

void rt_strides_contiguous(const rt_shape *shape, int64_t *strides)
{
    int64_t s = 1;
    for (int k = shape->rank - 1; k >= 0; k--) {
        strides[k] = s;
        s *= shape->dims[k];
    }
}

int64_t rt_tensor_numel(const rt_tensor *t)
{
    return rt_shape_numel(&t->shape);
}

size_t rt_tensor_nbytes(const rt_tensor *t)
{
    int64_t n = rt_tensor_numel(t);
    return n < 0 ? 0 : (size_t)n * rt_dtype_size(t->dtype);
}

/* Element count with overflow and range checks; -1 if invalid. */
static int64_t checked_numel(const rt_shape *s, size_t elem)
{
    if (s->rank < 0 || s->rank > RT_MAX_RANK)
        return -1;
    int64_t n = rt_shape_numel(s);
    if (n < 0)
        return -1;
    if (elem && (uint64_t)n > (uint64_t)(SIZE_MAX / 2) / elem)
        return -1;
    return n;
}

/* A new owned host tensor; its bytes are zeroed only if zero is set. */
static rt_tensor *tensor_alloc(rt_dtype dtype, const rt_shape *shape, bool zero, rt_error *err)
{
    size_t elem = rt_dtype_size(dtype);
    int64_t n = checked_numel(shape, elem);
    if (!elem || n < 0) {
        char buf[96];
        rt_error_set(err, RT_ERR_INVALID_ARG, "cannot create %s tensor of shape %s",
                     rt_dtype_name(dtype), rt_shape_str(shape, buf, sizeof buf));
        return NULL;
    }
    rt_tensor *t = calloc(1, sizeof *t);
    void *data = rt_aligned_alloc((size_t)n * elem);
    if (!t || !data) {
        free(t);
        rt_aligned_free(data);
        rt_error_set(err, RT_ERR_NOMEM, "out of memory allocating %lld bytes",
                     (long long)((size_t)n * elem));
        return NULL;
    }
    if (zero)
        memset(data, 0, (size_t)n * elem);
    t->dtype = dtype;
    t->shape = *shape;
    t->data = data;
    t->owns_data = true;
    return t;
}

rt_tensor *rt_tensor_create(rt_dtype dtype, const rt_shape *shape, rt_error *err)
{
    return tensor_alloc(dtype, shape, true, err);
}

rt_tensor *rt_tensor_wrap(rt_dtype dtype, const rt_shape *shape, void *data)
{
    rt_tensor *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->dtype = dtype;
    t->shape = *shape;
    t->data = data;
    return t;
}

rt_status rt_tensor_set_strings(rt_tensor *t, const rt_str *strings, size_t n, rt_error *err)
{
    if (t->dtype != RT_DTYPE_BYTES || (int64_t)n != rt_tensor_numel(t) || !t->owns_data)
        return rt_error_set(err, RT_ERR_INTERNAL, "rt_tensor_set_strings: not an owned BYTES "
                                                  "tensor of %zu elements", n);
    size_t total = 0;
    for (size_t i = 0; i < n; i++)
        total += strings[i].len;
    char *pool = malloc(total ? total : 1);
    if (!pool)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory for %zu string bytes", total);
    rt_str *dst = t->data;
    size_t off = 0;
    for (size_t i = 0; i < n; i++) {
        if (strings[i].len)
            memcpy(pool + off, strings[i].ptr, strings[i].len);
        dst[i].ptr = pool + off;
        dst[i].len = strings[i].len;
        off += strings[i].len;
    }
    free(t->string_pool);
    t->string_pool = pool;
    return RT_OK;
}

rt_tensor *rt_tensor_clone(const rt_tensor *t, rt_error *err)
{
    rt_tensor *c = tensor_alloc(t->dtype, &t->shape, false, err);
    if (!c)
        return NULL;
    if (t->dtype == RT_DTYPE_BYTES) {
        if (rt_tensor_set_strings(c, t->data, (size_t)rt_tensor_numel(t), err) != RT_OK) {
            rt_tensor_free(c);
            return NULL;
        }
    } else if (rt_tensor_nbytes(t)) {
        memcpy(c->data, t->data, rt_tensor_nbytes(t));
    }
    return c;
}

void rt_tensor_free(rt_tensor *t)
{
    if (!t)
        return;
    if (t->owns_data)
        rt_aligned_free(t->data);
    free(t->string_pool);
    free(t);
}
