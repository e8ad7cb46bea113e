/* srv_guard_metric.c: the accuracy guard's metrics (accuracy against labels, agreement
 * of decisions, cosine similarity) over two models' outputs (srv_guard.h). */
#include <math.h>

#include "srv_guard.h"

/* A row's decision: value >= threshold for one value, else the index of the largest;
 * -1 when the row holds NaN or infinity (never right, never agreeing). */
static int64_t decide(const float *row, int64_t width, float threshold)
{
    int64_t best = 0;
    for (int64_t k = 0; k < width; k++) {
        if (!isfinite(row[k]))
            return -1;
        if (row[k] > row[best])
            best = k;
    }
    return width == 1 ? row[0] >= threshold : best;
}

/* Cosine similarity of two rows; 1 for two zero rows, 0 for one zero or a non-finite row. */
static double cosine(const float *a, const float *b, int64_t width)
{
    double dot = 0, na = 0, nb = 0;
    for (int64_t k = 0; k < width; k++) {
        dot += (double)a[k] * b[k];
        na += (double)a[k] * a[k];
        nb += (double)b[k] * b[k];
    }
    if (!isfinite(dot) || !isfinite(na) || !isfinite(nb))
        return 0;
    if (na == 0 || nb == 0)
        return na == nb;
    double c = dot / (sqrt(na) * sqrt(nb));
    return c > 1 ? 1 : c < -1 ? -1 : c;
}

rt_status srv_guard_measure(srv_guard_metric metric, float threshold, const float *uncompressed,
                            const float *compressed, const int64_t *labels, int64_t rows,
                            int64_t width, srv_guard_result *res, rt_error *err)
{
    if (rows <= 0 || width <= 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "the output has no values to compare");
    int64_t classes = width == 1 ? 2 : width;
    double sum_u = 0, sum_c = 0;
    for (int64_t r = 0; r < rows; r++) {
        const float *u = uncompressed + r * width, *c = compressed + r * width;
        if (metric == SRV_GUARD_COSINE) {
            sum_c += cosine(u, c, width);
            continue;
        }
        int64_t du = decide(u, width, threshold), dc = decide(c, width, threshold);
        if (metric == SRV_GUARD_AGREEMENT) {
            sum_c += dc >= 0 && dc == du;
            continue;
        }
        if (labels[r] < 0 || labels[r] >= classes)
            return rt_error_set(err, RT_ERR_INVALID_ARG,
                                "label %lld of row %lld is not a class of the output (0..%lld)",
                                (long long)labels[r], (long long)r, (long long)classes - 1);
        sum_u += du == labels[r];
        sum_c += dc == labels[r];
    }
    res->rows = rows;
    res->uncompressed = metric == SRV_GUARD_ACCURACY ? sum_u / (double)rows : 1.0;
    res->compressed = sum_c / (double)rows;
    res->drop = res->uncompressed - res->compressed;
    return RT_OK;
}
