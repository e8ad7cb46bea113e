/* rt_op_sparse.c: infd.SparseLinear (rt_sparse.h): its shape inference, which checks the
 * sparse columns and then infers as Linear on a (K, N) weight header, and the building of
 * the columns from a dense weight. */
#include <string.h>

#include "rt_fused.h"
#include "rt_ops.h"
#include "rt_sparse.h"

rt_status rt_infer_sparse_linear(const rt_node *node, const rt_tensor *const *in, int n_in,
                                 rt_tensor *out, int n_out, rt_error *err)
{
    if (n_in < 4 || n_in > 5 || !in[0] || !in[1] || !in[2] || !in[3])
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "SparseLinear takes X, V, R, C and an optional B");
    const rt_tensor *v = in[1], *r = in[2], *c = in[3];
    int64_t k = rt_node_attr_int(node, "k", -1), nnz = rt_tensor_numel(v);
    if (v->dtype != RT_DTYPE_F32 || v->shape.rank != 1 || r->dtype != RT_DTYPE_U16 ||
        r->shape.rank != 1 || rt_tensor_numel(r) != nnz || c->dtype != RT_DTYPE_I32 ||
        c->shape.rank != 1 || rt_tensor_numel(c) < 1)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "SparseLinear: V (F32), R (U16) and C (I32) must be 1-D, V and R "
                            "of one length");
    if (k < 0 || k > RT_SPARSE_MAX_K)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "SparseLinear: attribute k is %lld",
                            (long long)k);
    rt_tensor w;
    memset(&w, 0, sizeof w);
    w.dtype = RT_DTYPE_F32;
    w.shape = rt_shape_make(2, (int64_t[]){k, rt_tensor_numel(c) - 1});
    const rt_tensor *args[3] = {in[0], &w, n_in > 4 ? in[4] : NULL};
    return rt_infer_linear(node, args, args[2] ? 3 : 2, out, n_out, err);
}

rt_status rt_sparse_from_dense(const float *w, int64_t k, int64_t n, bool trans_b,
                               rt_tensor **val, rt_tensor **row, rt_tensor **start,
                               rt_error *err)
{
    *val = *row = *start = NULL;
    if (k > RT_SPARSE_MAX_K)
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "a sparse weight has at most %d rows, not %lld", RT_SPARSE_MAX_K,
                            (long long)k);
    /* element (p, j) of W */
    int64_t step_p = trans_b ? 1 : n, step_j = trans_b ? k : 1, nnz = 0;
    for (int64_t i = 0; i < k * n; i++)
        nnz += w[i] != 0;
    if (nnz > INT32_MAX)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "a sparse weight has more than %d nonzeros",
                            INT32_MAX);
    rt_shape vs = rt_shape_make(1, (int64_t[]){nnz}), cs = rt_shape_make(1, (int64_t[]){n + 1});
    *val = rt_tensor_create(RT_DTYPE_F32, &vs, err);
    *row = *val ? rt_tensor_create(RT_DTYPE_U16, &vs, err) : NULL;
    *start = *row ? rt_tensor_create(RT_DTYPE_I32, &cs, err) : NULL;
    if (!*start) {
        rt_tensor_free(*val);
        rt_tensor_free(*row);
        *val = *row = NULL;
        return err ? err->status : RT_ERR_NOMEM;
    }
    float *vd = (*val)->data;
    uint16_t *rd = (*row)->data;
    int32_t *cd = (*start)->data, at = 0;
    for (int64_t j = 0; j < n; j++) {
        cd[j] = at;
        for (int64_t p = 0; p < k; p++) {
            float x = w[p * step_p + j * step_j];
            if (x != 0) {
                vd[at] = x;
                rd[at++] = (uint16_t)p;
            }
        }
    }
    cd[n] = at;
    return RT_OK;
}
