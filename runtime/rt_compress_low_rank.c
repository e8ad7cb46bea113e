/* rt_compress_low_rank.c: low-rank factorization of Linear weights (rt_compress.h). The
 * weight W (K x N) of each Linear is decomposed by SVD (LAPACK's sgesdd from the OpenBLAS
 * we link), W = U S V^T, and truncated to the smallest rank r whose singular values keep
 * the requested share of the energy (sum of the r largest s^2 over the sum of all s^2;
 * energy 1 keeps them all). Where that saves work and bytes, r (K + N) < K N, the Linear
 * becomes two: X -> Linear(U sqrt(S)) -> (..., r) -> Linear(sqrt(S) V^T, B, activation) ->
 * Y, the second keeping the node's name and attributes. A W other nodes also read stays
 * for them. */
#include <cblas.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rt_compress.h"
#include "rt_opt.h"

/* LAPACK (Fortran; the trailing argument is jobz's hidden length). */
extern void sgesdd_(const char *jobz, const blasint *m, const blasint *n, float *a,
                    const blasint *lda, float *s, float *u, const blasint *ldu, float *vt,
                    const blasint *ldvt, float *work, const blasint *lwork, blasint *iwork,
                    blasint *info, size_t jobz_len);

typedef enum { SVD_OK, SVD_FAILED, SVD_NOMEM } svd_result;

/* The thin SVD of W (k x n; stored (n x k) when trans): u (k x p, column-major), s (p),
 * vt (p x n, column-major), p = min(k, n), in one buffer *mem the caller frees (also on
 * SVD_FAILED, LAPACK's refusal or failure to converge). */
static svd_result svd(const float *w, int64_t k, int64_t n, bool trans, float **mem, float **u,
                      float **s, float **vt)
{
    blasint m = (blasint)k, cols = (blasint)n, p = (blasint)(k < n ? k : n), lwork = -1, info;
    float query;
    *mem = NULL;
    blasint *iwork = malloc(sizeof *iwork * 8 * (size_t)p);
    if (!iwork)
        return SVD_NOMEM;
    sgesdd_("S", &m, &cols, NULL, &m, NULL, NULL, &m, NULL, &p, &query, &lwork, iwork, &info, 1);
    lwork = (blasint)query;
    if (info != 0 || lwork < 1) {
        free(iwork);
        return SVD_FAILED;
    }
    size_t a_len = (size_t)(k * n), u_len = (size_t)(k * p), vt_len = (size_t)(p * n);
    *mem = malloc(sizeof(float) * (a_len + u_len + (size_t)p + vt_len + (size_t)lwork));
    if (!*mem) {
        free(iwork);
        return SVD_NOMEM;
    }
    float *a = *mem;
    *u = a + a_len;
    *s = *u + u_len;
    *vt = *s + p;
    float *work = *vt + vt_len;
    /* a is W column-major: element (r, c) at a[r + c k] */
    if (trans)
        memcpy(a, w, sizeof(float) * a_len);
    else
        for (int64_t r = 0; r < k; r++)
            for (int64_t c = 0; c < n; c++)
                a[r + c * k] = w[r * n + c];
    sgesdd_("S", &m, &cols, a, &m, *s, *u, &m, *vt, &p, work, &lwork, iwork, &info, 1);
    free(iwork);
    return info == 0 ? SVD_OK : SVD_FAILED;
}

/* The smallest rank whose singular values s[0..p) (descending) keep `energy` of the sum
 * of their squares; p for energy 1. */
static int64_t rank_for(const float *s, int64_t p, float energy)
{
    double total = 0, kept = 0;
    for (int64_t i = 0; i < p; i++)
        total += (double)s[i] * s[i];
    if (energy >= 1)
        return p;
    for (int64_t r = 0; r < p; r++) {
        kept += (double)s[r] * s[r];
        if (kept >= (double)energy * total)
            return r + 1;
    }
    return p;
}

/* Adds a new F32 weight (rows x cols) named after base, filled by the caller; -1 when out
 * of memory. */
static int new_weight(rt_opt *o, const char *base, int64_t rows, int64_t cols, float **data,
                      rt_error *err)
{
    rt_shape shape = rt_shape_make(2, (int64_t[]){rows, cols});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &shape, err);
    if (!t)
        return -1;
    *data = t->data;
    return rt_opt_add_weight(o, base, t, err);
}

/* A new intermediate value named after `name`, unique in g; -1 when out of memory. */
static int new_value(rt_graph *g, const char *name)
{
    char buf[300];
    int tag = 0;
    do
        snprintf(buf, sizeof buf, "%.256s/low_rank%d", name, tag++);
    while (rt_graph_find_value(g, buf) >= 0);
    return rt_graph_add_value(g, buf, RT_VALUE_INTERMEDIATE, RT_DTYPE_F32, NULL);
}

/* Rewrites Linear i as Linear(X, A) -> h -> Linear(h, B, bias): A (k x r) then B (r x n)
 * replace W. The first node is inserted before i, so the second is i + 1 afterwards. */
static rt_status split_linear(rt_opt *o, int i, int a, int b, rt_error *err)
{
    rt_graph *g = o->g;
    char name[300];
    snprintf(name, sizeof name, "%.256s/low_rank_u", g->nodes[i].name);
    int h = new_value(g, g->values[g->nodes[i].outputs[0]].name);
    if (h < 0 || rt_graph_add_node(g, name, RT_OP_LINEAR, (int[]){g->nodes[i].inputs[0], a}, 2,
                                   &h, 1, NULL, 0) < 0)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory factoring node '%s'",
                            g->nodes[i].name);
    rt_node first = g->nodes[g->n_nodes - 1];
    memmove(&g->nodes[i + 1], &g->nodes[i], sizeof(rt_node) * (size_t)(g->n_nodes - 1 - i));
    g->nodes[i] = first;
    const rt_node *n = &g->nodes[i + 1];
    int n_attrs;
    rt_attr *attrs = rt_opt_attrs_copy_except(n, "trans_b", 0, &n_attrs);
    if (!attrs)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory factoring node '%s'", n->name);
    int in[3] = {h, b, rt_node_input(n, 2)}, out = n->outputs[0];
    return rt_opt_replace_node(o, i + 1, RT_OP_LINEAR, in, in[2] >= 0 ? 3 : 2, &out, 1, attrs,
                               n_attrs, err);
}

/* Factors Linear i if that gains; *factored says whether it did. */
static rt_status factor(rt_opt *o, int i, float energy, rt_compress_report *rep, bool *factored,
                        rt_error *err)
{
    *factored = false;
    const rt_node *node = &o->g->nodes[i];
    const rt_tensor *w = rt_compress_f32_weight(o->g, rt_node_input(node, 1));
    if (node->op != RT_OP_LINEAR || node->n_outputs != 1 || !w || w->shape.rank != 2 ||
        !rt_compress_all_finite(w))
        return RT_OK;
    bool trans = rt_node_attr_int(node, "trans_b", 0) != 0;
    int64_t k = w->shape.dims[trans ? 1 : 0], n = w->shape.dims[trans ? 0 : 1];
    int64_t p = k < n ? k : n;
    if (p == 0 || k > INT32_MAX / (n > 0 ? n : 1))
        return RT_OK;
    float *mem, *u, *s, *vt;
    svd_result res = svd(w->data, k, n, trans, &mem, &u, &s, &vt);
    if (res != SVD_OK) {
        free(mem);
        return res == SVD_FAILED ? RT_OK /* left as it is */
                                 : rt_error_set(err, RT_ERR_NOMEM,
                                                "out of memory factoring node '%s'", node->name);
    }
    int64_t r = rank_for(s, p, energy);
    if (s[0] == 0 || r * (k + n) >= k * n) {
        free(mem);
        return RT_OK;
    }
    char *base = strdup(o->g->values[node->inputs[1]].name);
    float *ad = NULL, *bd = NULL;
    int a = base ? new_weight(o, base, k, r, &ad, err) : -1;
    int b = a >= 0 ? new_weight(o, base, r, n, &bd, err) : -1;
    free(base);
    if (b < 0) {
        free(mem);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory factoring node '%s'",
                            o->g->nodes[i].name);
    }
    for (int64_t q = 0; q < r; q++) {
        float root = sqrtf(s[q]);
        for (int64_t row = 0; row < k; row++)
            ad[row * r + q] = u[row + q * k] * root;
        for (int64_t c = 0; c < n; c++)
            bd[q * n + c] = vt[q + c * p] * root;
    }
    free(mem);
    size_t before = rt_tensor_nbytes(w);
    size_t after = sizeof(float) * (size_t)(r * (k + n));
    rt_status st = split_linear(o, i, a, b, err);
    char technique[32];
    snprintf(technique, sizeof technique, "low_rank_r%lld", (long long)r);
    if (st == RT_OK)
        st = rt_compress_report_add(rep, o->g->nodes[i + 1].name, technique, before, after, err);
    *factored = st == RT_OK;
    return st;
}

rt_status rt_compress_low_rank(rt_graph *g, float energy, rt_compress_report *rep, rt_error *err)
{
    if (!(energy > 0))
        return RT_OK;
    rt_opt o = {.g = g};
    rt_status st = RT_OK;
    for (int i = 0; i < g->n_nodes && st == RT_OK; i++) {
        bool factored;
        st = factor(&o, i, energy, rep, &factored, err);
        if (factored)
            i++; /* the second half of the pair */
    }
    return st;
}
