/* rt_cpu_embedding.c: CPU kernel of infd.Embedding (rt_fused.h): the rows of a compressed
 * embedding table picked by the indices, widened to F32 as they are copied (F16/BF16
 * through rt_half_load, I8 times the row's scale), so the table itself is never expanded. */
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_strided.h"

RT_CPU_KERNEL(rt_cpu_embedding)
{
    (void)node, (void)n_out;
    const rt_tensor *t = in[0], *idx = in[1];
    const float *scales = n_in > 2 && in[2] ? in[2]->data : NULL;
    int64_t rows = t->shape.dims[0], n_idx = rt_tensor_numel(idx);
    int64_t cols = rows ? rt_tensor_numel(t) / rows : 0;
    for (int64_t k = 0; k < n_idx; k++) {
        int64_t v = rt_dtype_load_i64(idx->dtype, idx->data, (size_t)k);
        if (v < -rows || v >= rows)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "Embedding: index %lld is out of range for %lld rows",
                                (long long)v, (long long)rows);
    }
    rt_dtype dt = t->dtype;
    float *y = out[0]->data;
#pragma omp parallel for if(n_idx * cols * (int64_t)sizeof(float) > RT_PARALLEL_BYTES) \
    num_threads(ctx->threads)
    for (int64_t k = 0; k < n_idx; k++) {
        int64_t v = rt_dtype_load_i64(idx->dtype, idx->data, (size_t)k);
        int64_t row = v < 0 ? v + rows : v;
        float *dst = y + k * cols;
        if (dt == RT_DTYPE_I8) {
            const int8_t *q = (const int8_t *)t->data + row * cols;
            float s = scales[row];
            _Pragma("omp simd")
            for (int64_t j = 0; j < cols; j++)
                dst[j] = (float)q[j] * s;
        } else if (dt == RT_DTYPE_F32) {
            memcpy(dst, (const float *)t->data + row * cols, sizeof(float) * (size_t)cols);
        } else {
            rt_half_load(dt, (const uint16_t *)t->data + row * cols, 1, dst, cols);
        }
    }
    return RT_OK;
}
