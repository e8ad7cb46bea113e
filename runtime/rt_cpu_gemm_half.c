/* rt_cpu_gemm_half.c: the GEMM of Linear and of Attention's projection when the weight is
 * F16 or BF16 (narrowed by the precision pass, rt_compress.h), with products accumulated
 * in F32. Two ways, chosen by the number of rows of X:
 *   - few rows (a single request's tokens at a time): the weight is read once, a block of
 *     columns per thread widened on the fly into a small buffer and multiplied in, so the
 *     pass reads half the bytes an F32 weight would;
 *   - more rows: a panel of W's columns at a time widened into scratch, then one OpenBLAS
 *     SGEMM per panel; the widening is then a small part of the work (k n conversions for
 *     m k n multiply-adds). */
#include <cblas.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_cpu_vmath.h"

/* Up to this many rows of X take the direct way. */
#define SMALL_M 4
/* Elements of W widened at a time by the direct way. */
#define SMALL_CHUNK 256
/* The panel way widens panels of about this many bytes of F32, at least PANEL_MIN_COLS
 * columns wide: for most layers the whole weight at once, which keeps the parallel
 * regions (each a barrier) as few as the F32 path's. */
#define PANEL_BYTES (4u << 20)
#define PANEL_MIN_COLS 64
/* Below this many elements a loop stays on one thread. */
#define PAR_MIN 32768

static int64_t panel_cols(int64_t n, int64_t k)
{
    int64_t cols = k ? (int64_t)(PANEL_BYTES / sizeof(float)) / k : n;
    cols = cols < PANEL_MIN_COLS ? PANEL_MIN_COLS : cols & ~(int64_t)15;
    return cols < n ? cols : n;
}

size_t rt_cpu_gemm_panel_bytes(rt_dtype wdt, int64_t n, int64_t k)
{
    if (wdt == RT_DTYPE_F32)
        return 0;
    return sizeof(float) * (size_t)(panel_cols(n, k) * k);
}

/* Columns [c0, c1) of Y (m rows, m <= SMALL_M) += X W, W (k x n) or (n x k) with trans_b,
 * widening SMALL_CHUNK elements of W at a time; those columns of Y are zeroed first when
 * beta is 0. */
RT_CPU_CLONES
static void small_m_block(int64_t m, int64_t n, int64_t k, const float *x, const uint16_t *w,
                          rt_dtype wdt, bool trans_b, float beta, int64_t c0, int64_t c1,
                          float *y)
{
    float buf[SMALL_CHUNK];
    if (beta == 0)
        for (int64_t i = 0; i < m; i++)
            memset(y + i * n + c0, 0, sizeof(float) * (size_t)(c1 - c0));
    if (!trans_b) {
        /* row by row of W, so that each row's slice is one contiguous read */
        for (int64_t p = 0; p < k; p++)
            for (int64_t c = c0; c < c1; c += SMALL_CHUNK) {
                int64_t cnt = c1 - c < SMALL_CHUNK ? c1 - c : SMALL_CHUNK;
                rt_half_load(wdt, w + p * n + c, 1, buf, cnt);
                for (int64_t i = 0; i < m; i++) {
                    float xv = x[i * k + p], *yr = y + i * n + c;
                    _Pragma("omp simd")
                    for (int64_t j = 0; j < cnt; j++)
                        yr[j] += xv * buf[j];
                }
            }
        return;
    }
    for (int64_t j = c0; j < c1; j++) {
        float acc[SMALL_M] = {0};
        for (int64_t p0 = 0; p0 < k; p0 += SMALL_CHUNK) {
            int64_t cnt = k - p0 < SMALL_CHUNK ? k - p0 : SMALL_CHUNK;
            rt_half_load(wdt, w + j * k + p0, 1, buf, cnt);
            for (int64_t i = 0; i < m; i++) {
                const float *xr = x + i * k + p0;
                float s = 0;
                _Pragma("omp simd reduction(+:s)")
                for (int64_t q = 0; q < cnt; q++)
                    s += xr[q] * buf[q];
                acc[i] += s;
            }
        }
        for (int64_t i = 0; i < m; i++)
            y[i * n + j] += acc[i];
    }
}

/* Columns [j0, j0 + cols) of W (k x n), or rows of W (n x k) when trans_b, widened into
 * panel as a (k x cols), or (cols x k), row-major matrix. */
static void widen_panel(rt_kernel_ctx *ctx, const uint16_t *w, rt_dtype wdt, bool trans_b,
                        int64_t n, int64_t k, int64_t j0, int64_t cols, float *panel)
{
    int64_t rows = trans_b ? cols : k, len = trans_b ? k : cols;
    const uint16_t *src = trans_b ? w + j0 * k : w + j0;
    int64_t stride = trans_b ? k : n;
    #pragma omp parallel for if(rows * len > PAR_MIN) num_threads(ctx->threads)
    for (int64_t r = 0; r < rows; r++)
        rt_half_load(wdt, src + r * stride, 1, panel + r * len, len);
}

void rt_cpu_gemm_half(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *x,
                      const uint16_t *w, rt_dtype wdt, bool trans_b, float beta, float *y,
                      float *panel)
{
    if (m <= SMALL_M) {
        /* one contiguous range of columns per thread, in multiples of 16 */
        int64_t blocks = k * n > PAR_MIN ? ctx->threads : 1;
        int64_t width = ((n + blocks - 1) / blocks + 15) & ~(int64_t)15;
        #pragma omp parallel for if(blocks > 1) num_threads(ctx->threads)
        for (int64_t b = 0; b < blocks; b++) {
            int64_t c0 = b * width, c1 = c0 + width < n ? c0 + width : n;
            if (c0 < c1)
                small_m_block(m, n, k, x, w, wdt, trans_b, beta, c0, c1, y);
        }
        return;
    }
    enum CBLAS_TRANSPOSE tb = trans_b ? CblasTrans : CblasNoTrans;
    int64_t step = panel_cols(n, k);
    for (int64_t j0 = 0; j0 < n; j0 += step) {
        int64_t cols = step < n - j0 ? step : n - j0;
        widen_panel(ctx, w, wdt, trans_b, n, k, j0, cols, panel);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, tb, (blasint)m, (blasint)cols, (blasint)k, 1.0f,
                    x, (blasint)k, panel, (blasint)(trans_b ? k : cols), beta, y + j0,
                    (blasint)n);
    }
}
