/* rt_cpu_qgemm.c: the INT8 GEMM behind infd.QLinear and infd.QAttention on the CPU
 * (rt_cpu_qgemm.h). Weight-only widens W a panel at a time for OpenBLAS. Dynamic W8A8
 * quantizes X per row, packs W into panels of 16 output channels with 4 consecutive k
 * side by side (the layout of a VNNI-style dot product), then each 4 x 16 tile of Y keeps
 * 8 vector accumulators in registers: per 4 k, one broadcast of 4 bytes of a row of X
 * times two 32-byte vectors of the panel (vpmaddubsw u8 x s8 -> pairs summed to s16,
 * vpmaddwd with ones -> 4 products per INT32 lane), and is dequantized as whole vectors
 * at the end, the bias added in the same pass (the activation, if any, follows on the
 * block while it is in cache). Tasks are blocks of rows of X times blocks of channels, over the context's
 * threads. */
#include "rt_cpu_qgemm.h"

#include <cblas.h>
#include <math.h>
#include <string.h>

#include "rt_cpu.h"
#include "rt_cpu_act.h"
#include "rt_cpu_nn_util.h"
#include "rt_cpu_vmath.h"

#if defined(__x86_64__) && defined(__GNUC__)
#include <immintrin.h>
#define HAVE_AVX2_KERNEL 1
#endif

#define QMAX 127   /* activations are 7-bit: q in [0, QMAX] */
#define KG 4       /* k per group: the bytes one INT32 lane sums */
#define MR 4       /* tile: rows of X */
#define NR 16      /* tile: output channels, one panel */
#define MB 64      /* task: rows of X (a multiple of MR) */
#define NB 64      /* task: output channels (a multiple of NR) */
/* weight-only: rows of W widened per panel, about PANEL_BYTES of F32 (at least NB rows):
 * weights of up to 1M elements widened whole, for one SGEMM */
#define PANEL_BYTES (4u << 20)

/* The dynamic kernel's operands, in scratch but for x, w, w_scale and y. */
typedef struct {
    int64_t m, n, k;
    int64_t kp;               /* k rounded up to KG: the row stride of a */
    int64_t mp, np;           /* m and n rounded up to MR and NR */
    uint8_t *a;               /* mp x kp quantized X, zero past k and past m */
    float *a_scale;           /* mp */
    int32_t *a_zp;            /* mp */
    const int8_t *w;          /* n x k */
    int8_t *panels;           /* np / NR panels of (kp / KG) x NR x KG bytes, zero padded */
    float *w_scale;           /* np: W's scales, zero padded */
    float *bias;              /* np: the bias, zero padded (all zero without one) */
    int32_t *w_sum;           /* np: sum over p of W[j][p] */
    float *y;                 /* m x n */
} qgemm_args;

static int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

static int64_t panel_rows(int64_t n, int64_t k)
{
    int64_t rows = k ? (int64_t)(PANEL_BYTES / sizeof(float)) / k : n;
    rows = rows < NB ? NB : rows;
    return rows < n ? rows : n;
}

/* Lays out the dynamic mode's scratch for these sizes (g->... NULL-based offsets when
 * base is NULL); returns its size. */
static size_t dynamic_layout(qgemm_args *g, char *base, int64_t m, int64_t n, int64_t k)
{
    g->m = m, g->n = n, g->k = k;
    g->kp = round_up(k, KG), g->mp = round_up(m, MR), g->np = round_up(n, NR);
    size_t off = 0;
#define PIECE(field, count, type)                                     \
    g->field = (type *)(base ? base + off : NULL);                    \
    off += rt_scratch_piece((size_t)(count), sizeof(type))
    PIECE(a, g->mp * g->kp, uint8_t);
    PIECE(a_scale, g->mp, float);
    PIECE(a_zp, g->mp, int32_t);
    PIECE(panels, g->np * g->kp, int8_t);
    PIECE(w_scale, g->np, float);
    PIECE(bias, g->np, float);
    PIECE(w_sum, g->np, int32_t);
#undef PIECE
    return off;
}

size_t rt_cpu_qgemm_scratch_bytes(rt_qmode mode, int64_t m, int64_t n, int64_t k)
{
    if (mode == RT_QMODE_WEIGHT_ONLY)
        return rt_scratch_piece((size_t)(panel_rows(n, k) * k), sizeof(float));
    qgemm_args g;
    return dynamic_layout(&g, NULL, m, n, k);
}

/* ---- weight-only ---- */

RT_CPU_CLONES
static void widen_row(const int8_t *src, float s, int64_t k, float *dst)
{
    _Pragma("omp simd")
    for (int64_t p = 0; p < k; p++)
        dst[p] = s * (float)src[p];
}

static void qgemm_weight_only(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k,
                              const float *x, const int8_t *w, const float *w_scale,
                              const float *bias, const rt_act *act, float *y, float *panel)
{
    int64_t step = panel_rows(n, k);
    for (int64_t j0 = 0; j0 < n; j0 += step) {
        int64_t rows = step < n - j0 ? step : n - j0;
        #pragma omp parallel for if(rows * k > 65536) num_threads(ctx->threads)
        for (int64_t r = 0; r < rows; r++)
            widen_row(w + (j0 + r) * k, w_scale[j0 + r], k, panel + r * k);
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (blasint)m, (blasint)rows,
                    (blasint)k, 1.0f, x, (blasint)k, panel, (blasint)k, 0.0f, y + j0,
                    (blasint)n);
    }
    rt_cpu_bias_act(ctx, y, m, n, bias, act);
}

/* ---- dynamic: quantizing X, packing W ---- */

/* A row's scale and zero point from its range [lo, hi] (lo <= 0 <= hi): x ~ scale (q - zp)
 * with q in [0, QMAX], 0 exact. */
static void row_params(float lo, float hi, float *scale, float *inv, float *zp)
{
    float s = (hi - lo) / QMAX;
    s = s > 0 && isfinite(s) ? s : 1.0f;
    *scale = s;
    *inv = 1.0f / s;
    *zp = fminf(nearbyintf(-lo * *inv), QMAX); /* an infinite lo: QMAX */
}

/* q = clamp(round(x inv) + z, 0, QMAX); a NaN counts as 0 (q = z) */
static inline uint8_t quantize_one(float x, float inv, float z)
{
    float v = x == x ? nearbyintf(x * inv) + z : z;
    return (uint8_t)(v > 0 ? (v < QMAX ? v : QMAX) : 0);
}

/* Row x (k) to q (kp, zero past k), its scale and zero point (NaNs ignored). */
static void quantize_row(const float *x, int64_t k, int64_t kp, uint8_t *q, float *scale,
                         int32_t *zp)
{
    float lo = 0, hi = 0, inv, z;
    for (int64_t p = 0; p < k; p++) {
        lo = x[p] < lo ? x[p] : lo;
        hi = x[p] > hi ? x[p] : hi;
    }
    row_params(lo, hi, scale, &inv, &z);
    for (int64_t p = 0; p < k; p++)
        q[p] = quantize_one(x[p], inv, z);
    memset(q + k, 0, (size_t)(kp - k));
    *zp = (int32_t)z;
}

/* Panel `pn` of W: channels [pn NR, pn NR + NR) as (kp / KG) groups of NR x KG bytes, and
 * their sums, scales and biases (bias may be NULL: zeros); zeros past n and k. */
static void pack_panel(qgemm_args *g, const float *w_scale, const float *bias, int64_t pn)
{
    int8_t *dst = g->panels + pn * NR * g->kp;
    int64_t full = g->k / KG * KG;
    for (int c = 0; c < NR; c++) {
        int64_t j = pn * NR + c;
        int8_t *d = dst + c * KG;
        if (j >= g->n) {
            for (int64_t p = 0; p < g->kp; p += KG)
                memset(d + p * NR, 0, KG);
            g->w_sum[j] = 0;
            g->w_scale[j] = 0;
            g->bias[j] = 0;
            continue;
        }
        const int8_t *src = g->w + j * g->k;
        for (int64_t p = 0; p < full; p += KG)
            memcpy(d + p * NR, src + p, KG);
        if (full < g->kp) {
            memset(d + full * NR, 0, KG);
            memcpy(d + full * NR, src + full, (size_t)(g->k - full));
        }
        int32_t sum = 0;
        _Pragma("omp simd reduction(+:sum)")
        for (int64_t p = 0; p < g->k; p++)
            sum += src[p];
        g->w_sum[j] = sum;
        g->w_scale[j] = w_scale[j];
        g->bias[j] = bias ? bias[j] : 0.0f;
    }
}

/* ---- dynamic: the portable kernel ---- */

static void block_portable(const qgemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    for (int64_t i = i0; i < i1; i++)
        for (int64_t j = j0; j < j1; j++) {
            const uint8_t *a = g->a + i * g->kp;
            const int8_t *w = g->w + j * g->k;
            int32_t acc = 0;
            for (int64_t p = 0; p < g->k; p++)
                acc += a[p] * w[p];
            g->y[i * g->n + j] =
                g->a_scale[i] * g->w_scale[j] * (float)(acc - g->a_zp[i] * g->w_sum[j]) +
                g->bias[j];
        }
}

/* ---- dynamic: the AVX2 kernel ---- */

#ifdef HAVE_AVX2_KERNEL
#define AVX2 __attribute__((target("avx2,fma")))

/* acc += the u8 x s8 products of a and w, summed in fours into 8 INT32 lanes. */
#define MAC(acc, a, w) \
    acc = _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(a, w), ones))

/* 4 bytes of X at p, broadcast to every lane. */
AVX2 static inline __m256i bcast4(const uint8_t *p)
{
    int32_t v;
    memcpy(&v, p, sizeof v);
    return _mm256_set1_epi32(v);
}

/* quantize_row with AVX2, the same results: the conversion rounds to nearest even as
 * nearbyintf does, a NaN's lane is zeroed before the zero point is added and the
 * saturating packs clamp to [0, 255]. */
AVX2 static void quantize_row_avx2(const float *x, int64_t k, int64_t kp, uint8_t *q,
                                   float *scale, int32_t *zp)
{
    __m256 lo8 = _mm256_setzero_ps(), hi8 = lo8;
    int64_t p = 0, k8 = k / 8 * 8, k32 = k / 32 * 32;
    for (; p < k8; p += 8) {
        __m256 v = _mm256_loadu_ps(x + p);
        lo8 = _mm256_min_ps(v, lo8); /* the second operand where v is NaN */
        hi8 = _mm256_max_ps(v, hi8);
    }
    float l[8], h[8], lo = 0, hi = 0, inv, z;
    _mm256_storeu_ps(l, lo8);
    _mm256_storeu_ps(h, hi8);
    for (int i = 0; i < 8; i++) {
        lo = l[i] < lo ? l[i] : lo;
        hi = h[i] > hi ? h[i] : hi;
    }
    for (; p < k; p++) {
        lo = x[p] < lo ? x[p] : lo;
        hi = x[p] > hi ? x[p] : hi;
    }
    row_params(lo, hi, scale, &inv, &z);
    const __m256 inv8 = _mm256_set1_ps(inv);
    const __m256i z8 = _mm256_set1_epi32((int32_t)z), top = _mm256_set1_epi8(QMAX);
    const __m256i order = _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7);
    for (p = 0; p < k32; p += 32) {
        __m256i v[4];
        for (int i = 0; i < 4; i++) {
            __m256 xv = _mm256_loadu_ps(x + p + 8 * i);
            __m256i r = _mm256_cvtps_epi32(_mm256_mul_ps(xv, inv8));
            r = _mm256_and_si256(r, _mm256_castps_si256(_mm256_cmp_ps(xv, xv, _CMP_ORD_Q)));
            v[i] = _mm256_add_epi32(r, z8);
        }
        __m256i b = _mm256_packus_epi16(_mm256_packs_epi32(v[0], v[1]),
                                        _mm256_packs_epi32(v[2], v[3]));
        b = _mm256_permutevar8x32_epi32(_mm256_min_epu8(b, top), order);
        _mm256_storeu_si256((__m256i *)(q + p), b);
    }
    for (; p < k; p++)
        q[p] = quantize_one(x[p], inv, z);
    memset(q + k, 0, (size_t)(kp - k));
    *zp = (int32_t)z;
}

/* Row i of the tile, 8 channels from j: dequantized, plus the bias, into y (only the
 * first `cols` of them, the rest being padding); the same operations as block_portable. */
AVX2 static inline void store8(const qgemm_args *g, int64_t i, int64_t j, __m256i acc,
                               int64_t cols)
{
    __m256i corr = _mm256_mullo_epi32(_mm256_set1_epi32(g->a_zp[i]),
                                      _mm256_loadu_si256((const __m256i *)(g->w_sum + j)));
    __m256 v = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_sub_epi32(acc, corr)),
                             _mm256_mul_ps(_mm256_set1_ps(g->a_scale[i]),
                                           _mm256_loadu_ps(g->w_scale + j)));
    v = _mm256_add_ps(v, _mm256_loadu_ps(g->bias + j));
    float *y = g->y + i * g->n + j;
    if (cols >= 8) {
        _mm256_storeu_ps(y, v);
    } else {
        float tmp[8];
        _mm256_storeu_ps(tmp, v);
        memcpy(y, tmp, sizeof(float) * (size_t)cols);
    }
}

/* The MR x NR tile of Y at (i, j): rows i .. i + 3 of X by panel j / NR, the eight
 * accumulators in registers. Rows past m and channels past n are computed on padding and
 * not stored. */
AVX2 static void tile_4x16(const qgemm_args *g, int64_t i, int64_t j)
{
    const __m256i ones = _mm256_set1_epi16(1);
    __m256i c00 = _mm256_setzero_si256(), c01 = c00, c10 = c00, c11 = c00;
    __m256i c20 = c00, c21 = c00, c30 = c00, c31 = c00;
    const uint8_t *a = g->a + i * g->kp;
    const int8_t *b = g->panels + j * g->kp;
    int64_t kp = g->kp;
    for (int64_t p = 0; p < kp; p += KG, b += NR * KG) {
        __m256i b0 = _mm256_load_si256((const __m256i *)b);
        __m256i b1 = _mm256_load_si256((const __m256i *)(b + 32));
        __m256i x = bcast4(a + p);
        MAC(c00, x, b0);
        MAC(c01, x, b1);
        x = bcast4(a + kp + p);
        MAC(c10, x, b0);
        MAC(c11, x, b1);
        x = bcast4(a + 2 * kp + p);
        MAC(c20, x, b0);
        MAC(c21, x, b1);
        x = bcast4(a + 3 * kp + p);
        MAC(c30, x, b0);
        MAC(c31, x, b1);
    }
    int64_t rows = g->m - i < MR ? g->m - i : MR, cols = g->n - j < NR ? g->n - j : NR;
    __m256i acc[MR][2] = {{c00, c01}, {c10, c11}, {c20, c21}, {c30, c31}};
    for (int64_t r = 0; r < rows; r++) {
        store8(g, i + r, j, acc[r][0], cols);
        if (cols > 8)
            store8(g, i + r, j + 8, acc[r][1], cols - 8);
    }
}

AVX2 static void block_avx2(const qgemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1)
{
    for (int64_t j = j0; j < j1; j += NR)
        for (int64_t i = i0; i < i1; i += MR)
            tile_4x16(g, i, j);
}
#endif

static bool force_portable;

bool rt_cpu_qgemm_use_portable(bool portable)
{
    force_portable = portable;
#ifdef HAVE_AVX2_KERNEL
    return __builtin_cpu_supports("avx2");
#else
    return false;
#endif
}

/* The kernel's two parts: quantizing a row of X, multiplying a block. */
typedef struct {
    void (*quantize)(const float *x, int64_t k, int64_t kp, uint8_t *q, float *scale,
                     int32_t *zp);
    void (*block)(const qgemm_args *g, int64_t i0, int64_t i1, int64_t j0, int64_t j1);
} kernel;

static kernel pick_kernel(void)
{
#ifdef HAVE_AVX2_KERNEL
    if (!force_portable && __builtin_cpu_supports("avx2"))
        return (kernel){quantize_row_avx2, block_avx2};
#endif
    return (kernel){quantize_row, block_portable};
}

static void qgemm_dynamic(rt_kernel_ctx *ctx, int64_t m, int64_t n, int64_t k, const float *x,
                          const int8_t *w, const float *w_scale, const float *bias,
                          const rt_act *act, float *y, char *scratch)
{
    qgemm_args g;
    dynamic_layout(&g, scratch, m, n, k);
    g.w = w;
    g.y = y;
    kernel kern = pick_kernel();
    int64_t mt = (m + MB - 1) / MB, nt = (n + NB - 1) / NB;
    #pragma omp parallel num_threads(ctx->threads) if(m * n * k > 262144)
    {
        #pragma omp for schedule(static) nowait
        for (int64_t i = 0; i < g.mp; i++)
            if (i < m)
                kern.quantize(x + i * k, k, g.kp, g.a + i * g.kp, g.a_scale + i, g.a_zp + i);
            else
                memset(g.a + i * g.kp, 0, (size_t)g.kp);
        #pragma omp for schedule(static)
        for (int64_t pn = 0; pn < g.np / NR; pn++)
            pack_panel(&g, w_scale, bias, pn);
        #pragma omp for schedule(dynamic)
        for (int64_t t = 0; t < mt * nt; t++) {
            int64_t i0 = t / nt * MB, j0 = t % nt * NB;
            int64_t i1 = i0 + MB < m ? i0 + MB : m, j1 = j0 + NB < n ? j0 + NB : n;
            kern.block(&g, i0, i1, j0, j1);
            for (int64_t i = i0; i < i1 && act->kind != RT_ACT_NONE; i++)
                rt_cpu_act_row(y + i * n + j0, y + i * n + j0, j1 - j0, NULL, act);
        }
    }
}

void rt_cpu_qgemm(rt_kernel_ctx *ctx, rt_qmode mode, int64_t m, int64_t n, int64_t k,
                  const float *x, const int8_t *w, const float *w_scale, const float *bias,
                  const rt_act *act, float *y, void *scratch)
{
    if (m == 0 || n == 0)
        return;
    if (mode == RT_QMODE_WEIGHT_ONLY)
        qgemm_weight_only(ctx, m, n, k, x, w, w_scale, bias, act, y, scratch);
    else
        qgemm_dynamic(ctx, m, n, k, x, w, w_scale, bias, act, y, scratch);
}

RT_CPU_KERNEL(rt_cpu_qlinear)
{
    (void)n_out;
    rt_act act;
    rt_qmode mode;
    rt_status st = rt_act_get(node, &act, err);
    if (st == RT_OK)
        st = rt_qmode_get(node, &mode, err);
    if (st != RT_OK)
        return st;
    const rt_tensor *x = in[0], *w = in[1], *b = n_in > 3 ? in[3] : NULL;
    int64_t k = x->shape.dims[x->shape.rank - 1], n = w->shape.dims[0];
    int64_t m = n ? rt_tensor_numel(out[0]) / n : 0;
    void *scratch;
    st = rt_nn_scratch(ctx, rt_cpu_qgemm_scratch_bytes(mode, m, n, k), &scratch, err);
    if (st != RT_OK)
        return st;
    rt_cpu_qgemm(ctx, mode, m, n, k, x->data, w->data, in[2]->data, b ? b->data : NULL, &act,
                 out[0]->data, scratch);
    return RT_OK;
}
