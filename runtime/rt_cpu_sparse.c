/* rt_cpu_sparse.c: the CPU kernel of infd.SparseLinear (rt_sparse.h): X times a weight held
 * as compressed sparse columns.
 *
 * X is cut into blocks of 16 rows (4 for the last few, a single last row alone). A block
 * is copied transposed, so that the 16 values of one X column lie side by side; then each
 * output column j is the sum, over the nonzeros w of W's column j, of w times the X column
 * of w's row: two 8-wide fused multiply-adds per nonzero, four nonzeros in flight (the
 * single row reads its X directly). Tasks are (row block, column range) pairs over the
 * context's threads, each with its own transposed block in the scratch. The loops are
 * compiled for baseline x86-64 and for AVX2 with FMA, picked at run time. */
#include <omp.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_sparse.h"

/* the products accumulate by fused multiply-adds where the CPU has them (ISO C mode
 * forbids contracting a * b + c otherwise) */
#pragma GCC optimize("fp-contract=fast")

enum { WIDE = 16, NARROW = 4 };

#define INLINE static inline __attribute__((always_inline))

/* Columns [n0, n1) of Y for a block of `rows` rows (at most width) whose X lies transposed
 * in xt (k x width): y[i n + j] = bias[j] + the sum over column j's nonzeros. Four
 * nonzeros in flight, each a width-wide multiply-add that the compiler vectorizes. */
INLINE void cols(const float *xt, int width, int rows, const rt_sparse_cols *w, int64_t n0,
                 int64_t n1, const float *bias, float *y)
{
    const float *val = w->val;
    const uint16_t *row = w->row;
    for (int64_t j = n0; j < n1; j++) {
        float acc[4][WIDE] = {{0}};
        int32_t p = w->start[j], e = w->start[j + 1];
        for (; p + 4 <= e; p += 4)
            _Pragma("GCC unroll 4") for (int u = 0; u < 4; u++) {
                const float v = val[p + u], *x = xt + (size_t)row[p + u] * (size_t)width;
                _Pragma("GCC unroll 16") for (int i = 0; i < width; i++)
                    acc[u][i] += v * x[i];
            }
        for (; p < e; p++) {
            const float v = val[p], *x = xt + (size_t)row[p] * (size_t)width;
            _Pragma("GCC unroll 16") for (int i = 0; i < width; i++)
                acc[0][i] += v * x[i];
        }
        float b = bias ? bias[j] : 0;
        for (int i = 0; i < rows; i++)
            y[i * w->n + j] = (acc[0][i] + acc[1][i]) + (acc[2][i] + acc[3][i]) + b;
    }
}

/* One task: `rows` rows of X from x in a block `width` (16, 4 or 1) wide, columns
 * [n0, n1), with xt (k x 16 floats) to work in. The width is a constant in each call, so
 * each gets its own unrolled loops. */
INLINE void task(const rt_sparse_cols *w, const float *x, int rows, int width, int64_t n0,
                 int64_t n1, const float *bias, float *xt, float *y)
{
    if (width == 1) { /* a single row is its own transpose */
        cols(x, 1, 1, w, n0, n1, bias, y);
        return;
    }
    for (int64_t p = 0; p < w->k; p++)
        for (int i = 0; i < width; i++)
            xt[p * width + i] = i < rows ? x[i * w->k + p] : 0;
    if (width == WIDE)
        cols(xt, WIDE, rows, w, n0, n1, bias, y);
    else
        cols(xt, NARROW, rows, w, n0, n1, bias, y);
}

typedef void (*task_fn)(const rt_sparse_cols *w, const float *x, int rows, int width,
                        int64_t n0, int64_t n1, const float *bias, float *xt, float *y);

static void task_base(const rt_sparse_cols *w, const float *x, int rows, int width, int64_t n0,
                      int64_t n1, const float *bias, float *xt, float *y)
{
    task(w, x, rows, width, n0, n1, bias, xt, y);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void task_fma(const rt_sparse_cols *w,
                                                         const float *x, int rows, int width,
                                                         int64_t n0, int64_t n1,
                                                         const float *bias, float *xt,
                                                         float *y)
{
    task(w, x, rows, width, n0, n1, bias, xt, y);
}

static task_fn pick_task(void)
{
    return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") ? task_fma
                                                                           : task_base;
}
#else
static task_fn pick_task(void)
{
    return task_base;
}
#endif

/* How m rows are cut into blocks: 16 rows while at least 8 are left (the last one may be
 * short), then 4 while at least 2 are, then the last row alone. */
typedef struct {
    int64_t wide, narrow, single;
} row_blocks;

static row_blocks plan_rows(int64_t m)
{
    row_blocks r = {.wide = m / WIDE + (m % WIDE >= 8)};
    int64_t left = m - r.wide * WIDE;
    if (left > 0) {
        r.narrow = left / NARROW + (left % NARROW >= 2);
        r.single = left - r.narrow * NARROW > 0;
    }
    return r;
}

/* Block b: its first row *m0 and its width (16, 4 or 1). */
static void block_at(const row_blocks *r, int64_t m, int64_t b, int64_t *m0, int *width)
{
    if (b < r->wide) {
        *m0 = b * WIDE;
        *width = WIDE;
    } else if (b < r->wide + r->narrow) {
        *m0 = r->wide * WIDE + (b - r->wide) * NARROW;
        *width = NARROW;
    } else {
        *m0 = m - 1;
        *width = 1;
    }
}

/* Below this many multiply-adds the kernel stays on one thread. */
#define PAR_MIN 32768

rt_status rt_cpu_sparse_matmul(rt_kernel_ctx *ctx, int64_t m, const float *x,
                               const rt_sparse_cols *w, const float *bias, float *y, rt_error *err)
{
    task_fn run_task = pick_task();
    if (m == 0 || w->n == 0)
        return RT_OK;
    int threads = ctx->threads > 0 ? ctx->threads : 1;
    row_blocks r = plan_rows(m);
    int64_t blocks = r.wide + r.narrow + r.single;
    /* enough tasks to keep every thread busy, each at least 16 columns wide */
    int64_t chunks = (4 * threads + blocks - 1) / blocks, max_chunks = (w->n + 15) / 16;
    chunks = chunks < 1 ? 1 : chunks > max_chunks ? max_chunks : chunks;
    int64_t cols = (w->n + chunks - 1) / chunks, nnz = w->start[w->n];
    size_t per_thread = (size_t)(w->k > 0 ? w->k : 1) * WIDE; /* a transposed block */
    float *scratch = rt_kernel_scratch(ctx, sizeof(float) * per_thread * (size_t)threads);
    if (!scratch)
        return rt_error_set(err, RT_ERR_NOMEM, "SparseLinear: out of memory for %lld rows",
                            (long long)m);
    #pragma omp parallel for schedule(dynamic) num_threads(threads) if(m * nnz > PAR_MIN)
    for (int64_t t = 0; t < blocks * chunks; t++) {
        int64_t b = t / chunks, n0 = t % chunks * cols, n1 = n0 + cols < w->n ? n0 + cols : w->n;
        int64_t m0;
        int width;
        block_at(&r, m, b, &m0, &width);
        int rows = (int)(m - m0 < width ? m - m0 : width);
        float *xt = scratch + per_thread * (size_t)omp_get_thread_num();
        run_task(w, x + m0 * w->k, rows, width, n0, n1, bias, xt, y + m0 * w->n);
    }
    return RT_OK;
}

RT_CPU_KERNEL(rt_cpu_sparse_linear)
{
    (void)n_out;
    rt_act act;
    rt_status st = rt_act_get(node, &act, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *b = n_in > 4 ? in[4] : NULL;
    rt_sparse_cols w = {.k = rt_node_attr_int(node, "k", 0), .n = rt_tensor_numel(in[3]) - 1,
                        .val = in[1]->data, .row = in[2]->data, .start = in[3]->data};
    int64_t m = w.n > 0 ? rt_tensor_numel(out[0]) / w.n : 0;
    st = rt_cpu_sparse_matmul(ctx, m, in[0]->data, &w, b ? b->data : NULL, out[0]->data, err);
    if (st == RT_OK)
        rt_cpu_bias_act(ctx, out[0]->data, m, w.n, NULL, &act);
    return st;
}
