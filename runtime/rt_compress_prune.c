/* rt_compress_prune.c: pruning (rt_compress.h). The weight W of every Linear, Attention,
 * MatMul and Gemm (a constant 2-D F32 W) loses its smallest weights:
 *   - magnitude: the round(sparsity x size) weights of smallest |w| of each W become zero
 *     (ties broken by position), so each W reaches the target on its own;
 *   - 2:4: in every group of four consecutive weights along the reduction dim (K, which
 *     must be a multiple of 4), the two of smallest |w| become zero.
 * A Linear whose W is large enough and ends up with at least RT_SPARSE_MIN_SPARSITY zeros
 * becomes infd.SparseLinear (rt_sparse.h), whose kernel measured faster than the dense one
 * there; every other pruned W stays dense, zeros included, and runs the dense kernels.
 * There is no 2:4 kernel on the CPU, so 2:4 saves neither time nor bytes there (on NVIDIA
 * GPUs cuSPARSELt runs 2:4; PyPI's nvidia-cusparselt-cu13 has it, the CUDA backend does
 * not use it yet). The report's technique says which kernel runs. A W that another node
 * also reads is pruned as a copy. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_compress.h"
#include "rt_opt.h"
#include "rt_sparse.h"

/* The k-th smallest (from 0) of a[0..n), reordering a (quickselect, median-of-three). */
static float kth_smallest(float *a, int64_t n, int64_t k)
{
    int64_t lo = 0, hi = n - 1;
    while (lo < hi) {
        float x = a[lo], y = a[lo + (hi - lo) / 2], z = a[hi];
        float pivot = x < y ? (y < z ? y : x < z ? z : x) : (x < z ? x : y < z ? z : y);
        int64_t i = lo, j = hi;
        while (i <= j) {
            while (a[i] < pivot)
                i++;
            while (a[j] > pivot)
                j--;
            if (i <= j) {
                float t = a[i];
                a[i++] = a[j];
                a[j--] = t;
            }
        }
        if (k <= j)
            hi = j;
        else if (k >= i)
            lo = i;
        else
            return a[k];
    }
    return a[k];
}

/* Zeroes the round(sparsity n) elements of w of smallest magnitude (the first ones among
 * equal magnitudes at the cut). */
static rt_status prune_magnitude(float *w, int64_t n, float sparsity, rt_error *err)
{
    int64_t zeros = (int64_t)llround((double)sparsity * (double)n);
    if (zeros <= 0)
        return RT_OK;
    float *mag = malloc(sizeof *mag * (size_t)n);
    if (!mag)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory pruning a weight");
    for (int64_t i = 0; i < n; i++)
        mag[i] = fabsf(w[i]);
    float cut = kth_smallest(mag, n, zeros - 1);
    free(mag);
    int64_t at_cut = zeros;
    for (int64_t i = 0; i < n; i++)
        at_cut -= fabsf(w[i]) < cut;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(w[i]);
        if (a < cut || (a == cut && at_cut-- > 0))
            w[i] = 0;
    }
    return RT_OK;
}

/* In each group of 4 consecutive elements along K of W (k x n; stored (n x k) when
 * trans), zeroes the two of smallest magnitude (k is a multiple of 4). */
static void prune_2_4(float *w, int64_t k, int64_t n, bool trans)
{
    int64_t step = trans ? 1 : n, col = trans ? k : 1;
    for (int64_t j = 0; j < n; j++)
        for (int64_t p = 0; p < k; p += 4) {
            float *e[4];
            for (int q = 0; q < 4; q++)
                e[q] = w + (p + q) * step + j * col;
            int big = 0, second = -1;
            for (int q = 1; q < 4; q++)
                if (fabsf(*e[q]) > fabsf(*e[big]))
                    big = q;
            for (int q = 0; q < 4; q++)
                if (q != big && (second < 0 || fabsf(*e[q]) > fabsf(*e[second])))
                    second = q;
            for (int q = 0; q < 4; q++)
                if (q != big && q != second)
                    *e[q] = 0;
        }
}

/* The prunable W of node n, with K (the reduction dim) and N, and whether W is stored
 * (N, K); NULL when n has none. */
static const rt_tensor *prunable(const rt_graph *g, const rt_node *n, int64_t *k, int64_t *cols,
                                 bool *trans)
{
    switch (n->op) {
    case RT_OP_LINEAR: *trans = rt_node_attr_int(n, "trans_b", 0) != 0; break;
    case RT_OP_GEMM: *trans = rt_node_attr_int(n, "transB", 0) != 0; break;
    case RT_OP_ATTENTION: case RT_OP_MATMUL: *trans = false; break;
    default: return NULL;
    }
    const rt_tensor *w = n->n_outputs == 1 ? rt_compress_f32_weight(g, rt_node_input(n, 1)) : NULL;
    if (!w || w->shape.rank != 2 || !rt_compress_all_finite(w))
        return NULL;
    *k = w->shape.dims[*trans ? 1 : 0];
    *cols = w->shape.dims[*trans ? 0 : 1];
    return w;
}

static int64_t count_zeros(const rt_tensor *t)
{
    int64_t zeros = 0;
    for (int64_t i = 0, n = rt_tensor_numel(t); i < n; i++)
        zeros += ((const float *)t->data)[i] == 0;
    return zeros;
}

/* Linear i with its pruned W (k x n; (n x k) when trans) replaced by infd.SparseLinear
 * over the nonzeros: inputs X, V, R, C, B?; attributes as Linear's but trans_b, plus k. */
static rt_status to_sparse(rt_opt *o, int i, const rt_tensor *w, int64_t k, int64_t n,
                           bool trans, rt_error *err)
{
    rt_tensor *t[3];
    rt_status st = rt_sparse_from_dense(w->data, k, n, trans, &t[0], &t[1], &t[2], err);
    if (st != RT_OK)
        return st;
    const rt_node *node = &o->g->nodes[i];
    char *base = strdup(o->g->values[node->inputs[1]].name); /* values move as they grow */
    int in[5] = {node->inputs[0], -1, -1, -1, rt_node_input(node, 2)};
    for (int s = 0; s < 3; s++) {
        /* rt_opt_add_weight takes t[s] over, also when it fails */
        in[1 + s] = base ? rt_opt_add_weight(o, base, t[s], err) : -1;
        if (in[1 + s] < 0) {
            for (int r = base ? s + 1 : s; r < 3; r++)
                rt_tensor_free(t[r]);
            free(base);
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory making a sparse weight");
        }
    }
    free(base);
    node = &o->g->nodes[i];
    int n_attrs;
    rt_attr *attrs = rt_opt_attrs_copy_except(node, "trans_b", 1, &n_attrs);
    if (!attrs || !rt_opt_attr_int(&attrs[n_attrs++], "k", k)) {
        rt_opt_attrs_free(attrs, n_attrs);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory making node '%s' sparse",
                            node->name);
    }
    int out = node->outputs[0];
    return rt_opt_replace_node(o, i, RT_OP_SPARSE_LINEAR, in, in[4] >= 0 ? 5 : 4, &out, 1, attrs,
                               n_attrs, err);
}

/* Sets *w to the weight node i prunes: its W when no other node reads it, else a copy
 * that i reads from now on (the other readers keep the original). */
static rt_status own_weight(rt_opt *o, int i, int *reads, rt_tensor **w, rt_error *err)
{
    int v = o->g->nodes[i].inputs[1];
    if (reads[v] == 1) {
        *w = o->g->values[v].data;
        return RT_OK;
    }
    rt_tensor *copy = rt_tensor_clone(o->g->values[v].data, err);
    char *base = strdup(o->g->values[v].name);
    int nv = copy && base ? rt_opt_add_weight(o, base, copy, err) : -1;
    if (nv < 0 && !base)
        rt_tensor_free(copy);
    free(base);
    if (nv < 0)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory copying a weight to prune");
    o->g->nodes[i].inputs[1] = nv;
    reads[v]--;
    *w = o->g->values[nv].data;
    return RT_OK;
}

rt_status rt_compress_prune(rt_graph *g, rt_prune mode, float sparsity, rt_compress_report *rep,
                            rt_error *err)
{
    if (mode == RT_PRUNE_NONE)
        return RT_OK;
    int *reads = rt_compress_reads(g);
    if (!reads)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory choosing weights to prune");
    rt_opt o = {.g = g};
    rt_status st = RT_OK;
    for (int i = 0; i < g->n_nodes && st == RT_OK; i++) {
        int64_t k, n;
        bool trans;
        const rt_tensor *w0 = prunable(g, &g->nodes[i], &k, &n, &trans);
        if (!w0 || (mode == RT_PRUNE_2_4 && k % 4 != 0))
            continue;
        size_t before = rt_tensor_nbytes(w0);
        rt_tensor *w = NULL;
        if ((st = own_weight(&o, i, reads, &w, err)) != RT_OK)
            break;
        if (mode == RT_PRUNE_2_4)
            prune_2_4(w->data, k, n, trans);
        else
            st = prune_magnitude(w->data, rt_tensor_numel(w), sparsity, err);
        size_t after = before;
        /* big enough, with as many zeros as pruning to RT_SPARSE_MIN_SPARSITY leaves */
        int64_t size = rt_tensor_numel(w);
        bool sparse = g->nodes[i].op == RT_OP_LINEAR && k <= RT_SPARSE_MAX_K &&
                      size >= RT_SPARSE_MIN_WEIGHTS &&
                      count_zeros(w) >= llround(RT_SPARSE_MIN_SPARSITY * (double)size);
        if (st == RT_OK && sparse) {
            st = to_sparse(&o, i, w, k, n, trans, err);
            after = 0;
            for (int s = 1; st == RT_OK && s <= 3; s++)
                after += rt_tensor_nbytes(g->values[g->nodes[i].inputs[s]].data);
        }
        char technique[96];
        if (mode == RT_PRUNE_2_4)
            snprintf(technique, sizeof technique, "2:4 (%s)",
                     sparse ? "sparse kernel" : "dense kernel: no 2:4 sparse kernel on the CPU");
        else
            snprintf(technique, sizeof technique, "prune_%.2f (%s kernel)", (double)sparsity,
                     sparse ? "sparse" : "dense");
        if (st == RT_OK)
            st = rt_compress_report_add(rep, g->nodes[i].name, technique, before, after, err);
    }
    free(reads);
    return st;
}
