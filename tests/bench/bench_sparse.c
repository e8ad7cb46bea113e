/* bench_sparse.c: the measurement behind RT_SPARSE_MIN_SPARSITY (rt_sparse.h): infd's
 * sparse-columns kernel (rt_cpu_sparse_matmul, what infd.SparseLinear runs) against the
 * dense path of infd.Linear (rt_cpu_gemm_bias_act: OpenBLAS SGEMM and the bias), in the
 * same process, on the same X, bias and pruned weight, for Linear shapes of BERT-base, the
 * benchmark encoder and the spam model, several row counts, and 50/70/80/90% zeros in a random
 * pattern (as magnitude pruning of a trained weight leaves). Rounds alternate the kernels;
 * each time is the median of the rounds. Prints one JSON object per case on stdout, for
 * scripts/bench_sparse.py.
 *
 * usage: bench_sparse [--threads N] [--rounds N] [--seconds S] [--cpu-time] */
#include <cblas.h>
#include <jansson.h>
#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "rt_cpu_act.h"
#include "rt_sparse.h"

/* --cpu-time: the process's CPU time, which on a shared machine leaves out the time spent
 * waiting for a core (with one thread; more threads would add up their spinning) */
static clockid_t clock_id = CLOCK_MONOTONIC;

static double now(void)
{
    struct timespec t;
    clock_gettime(clock_id, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

/* uniform in [-1, 1) from a 32-bit LCG */
static float next(uint32_t *s)
{
    *s = *s * 1664525u + 1013904223u;
    return (float)((double)(*s >> 8) / (1 << 23) - 1.0);
}

typedef struct {
    int threads, rounds;
    double seconds;
} options;

/* Median seconds per call of the dense and the sparse kernel on one case; the outputs'
 * largest difference relative to the largest output in *diff. */
static int measure(const options *opt, int64_t m, int64_t k, int64_t n, double sparsity,
                   double *dense_s, double *sparse_s, double *diff)
{
    uint32_t seed = 12345;
    float *x = malloc(sizeof(float) * (size_t)(m * k)), *w = malloc(sizeof(float) * (size_t)(k * n));
    float *bias = malloc(sizeof(float) * (size_t)n);
    float *y0 = malloc(sizeof(float) * (size_t)(m * n)), *y1 = malloc(sizeof(float) * (size_t)(m * n));
    if (!x || !w || !bias || !y0 || !y1)
        return -1;
    for (int64_t i = 0; i < m * k; i++)
        x[i] = next(&seed);
    for (int64_t i = 0; i < k * n; i++) {
        float v = next(&seed);
        w[i] = 0.5 * (next(&seed) + 1) < sparsity ? 0 : v;
    }
    for (int64_t j = 0; j < n; j++)
        bias[j] = next(&seed);
    rt_tensor *val, *row, *start;
    rt_error err;
    if (rt_sparse_from_dense(w, k, n, false, &val, &row, &start, &err) != RT_OK)
        return -1;
    rt_sparse_cols cols = {k, n, val->data, row->data, start->data};
    rt_kernel_ctx ctx = {.threads = opt->threads};
    rt_act none = {.kind = RT_ACT_NONE};
    /* calls per round: about opt->seconds / rounds of dense time each */
    double t0 = now();
    rt_cpu_gemm_bias_act(&ctx, m, n, k, x, w, RT_DTYPE_F32, false, bias, &none, y0, NULL);
    double once = now() - t0;
    int calls = (int)(opt->seconds / opt->rounds / (once > 1e-6 ? once : 1e-6));
    calls = calls < 1 ? 1 : calls > 10000 ? 10000 : calls;
    double *td = malloc(sizeof(double) * (size_t)opt->rounds);
    double *ts = malloc(sizeof(double) * (size_t)opt->rounds);
    for (int r = 0; r < opt->rounds; r++) {
        t0 = now();
        for (int c = 0; c < calls; c++)
            rt_cpu_gemm_bias_act(&ctx, m, n, k, x, w, RT_DTYPE_F32, false, bias, &none, y0, NULL);
        td[r] = (now() - t0) / calls;
        t0 = now();
        for (int c = 0; c < calls; c++)
            rt_cpu_sparse_matmul(&ctx, m, x, &cols, bias, y1, &err);
        ts[r] = (now() - t0) / calls;
    }
    *dense_s = median(td, opt->rounds);
    *sparse_s = median(ts, opt->rounds);
    double worst = 0, range = 0;
    for (int64_t i = 0; i < m * n; i++) {
        worst = fmax(worst, fabs((double)y0[i] - y1[i]));
        range = fmax(range, fabs((double)y0[i]));
    }
    *diff = range > 0 ? worst / range : worst;
    rt_kernel_ctx_release(&ctx);
    rt_tensor_free(val);
    rt_tensor_free(row);
    rt_tensor_free(start);
    free(td);
    free(ts);
    free(x);
    free(w);
    free(bias);
    free(y0);
    free(y1);
    return 0;
}

int main(int argc, char **argv)
{
    options opt = {.threads = 2, .rounds = 7, .seconds = 1.5};
    bool bad = false;
    for (int i = 1; i < argc && !bad; i++) {
        bool value = i + 1 < argc;
        if (strcmp(argv[i], "--cpu-time") == 0)
            clock_id = CLOCK_PROCESS_CPUTIME_ID;
        else if (value && strcmp(argv[i], "--threads") == 0)
            opt.threads = atoi(argv[++i]);
        else if (value && strcmp(argv[i], "--rounds") == 0)
            opt.rounds = atoi(argv[++i]);
        else if (value && strcmp(argv[i], "--seconds") == 0)
            opt.seconds = atof(argv[++i]);
        else
            bad = true;
    }
    if (bad) {
        fprintf(stderr,
                "usage: bench_sparse [--threads N] [--rounds N] [--seconds S] [--cpu-time]\n");
        return 2;
    }
    if (opt.threads < 1 || opt.rounds < 1 || !(opt.seconds > 0)) {
        fprintf(stderr, "bench_sparse: --threads, --rounds and --seconds must be positive\n");
        return 2;
    }
    openblas_set_num_threads(opt.threads); /* as the CPU backend does */
    /* (K, N): BERT-base FFN up and down, the benchmark encoder's FFN up and attention
     * output, the spam model's first layer */
    const int64_t shapes[][2] = {{768, 3072}, {3072, 768}, {256, 1024}, {256, 256}, {57, 64}};
    const int64_t rows[] = {1, 4, 16, 128, 1024};
    const double sparsities[] = {0.5, 0.7, 0.8, 0.9};
    for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++)
        for (size_t r = 0; r < sizeof rows / sizeof *rows; r++)
            for (size_t p = 0; p < sizeof sparsities / sizeof *sparsities; p++) {
                double dense, sparse, diff;
                if (measure(&opt, rows[r], shapes[s][0], shapes[s][1], sparsities[p], &dense,
                            &sparse, &diff) != 0) {
                    fprintf(stderr, "bench_sparse: out of memory\n");
                    return 1;
                }
                json_t *o = json_pack("{sIsIsIsfsfsfsfsi}", "k", (json_int_t)shapes[s][0], "n",
                                      (json_int_t)shapes[s][1], "rows", (json_int_t)rows[r],
                                      "sparsity", sparsities[p], "dense_ms", 1e3 * dense,
                                      "sparse_ms", 1e3 * sparse, "rel_diff", diff, "threads",
                                      opt.threads);
                char *line = json_dumps(o, JSON_COMPACT);
                printf("%s\n", line);
                fflush(stdout);
                free(line);
                json_decref(o);
            }
    return 0;
}
