/* rt_cpu_strided.c: the strided copy engine (see rt_cpu_strided.h).
 *
 * A copy is described as a box: dims plus destination and source strides. The box is
 * first simplified (dims of size 1 dropped, dims that are contiguous in both layouts
 * merged) so that most copies reduce to a few long memcpy runs. What remains is run in
 * one of two ways: rows along the last dim (memcpy, broadcast or strided gather), or,
 * when the source is contiguous along some other dim (a transpose), in square tiles so
 * that both reads and writes stay in cache. */
#include "rt_cpu_strided.h"

#include <string.h>
#ifdef __SSE2__
#include <xmmintrin.h>
#endif

/* Work per OpenMP task. */
#define TASK_BYTES ((int64_t)1 << 16)
/* Tile edge of the transposing path, in elements. */
#define TILE 16

typedef struct box {
    int rank;
    int64_t dims[RT_STRIDED_MAX_RANK];
    int64_t ds[RT_STRIDED_MAX_RANK]; /* destination strides */
    int64_t ss[RT_STRIDED_MAX_RANK]; /* source strides */
} box;

/* memcpy with a constant size compiles to plain loads and stores. */
#define COPY_LOOP(size)                                                                    \
    for (int64_t i = 0; i < n; i++)                                                        \
        memcpy(d + i * dstep * (int64_t)(size), s + i * sstep * (int64_t)(size), (size))

void rt_copy_run(void *dst, int64_t dstep, const void *src, int64_t sstep, int64_t n,
                 size_t esize)
{
    char *d = dst;
    const char *s = src;
    if (dstep == 1 && sstep == 1) {
        memcpy(d, s, (size_t)n * esize);
        return;
    }
    switch (esize) {
    case 1: COPY_LOOP(1); break;
    case 2: COPY_LOOP(2); break;
    case 4: COPY_LOOP(4); break;
    case 8: COPY_LOOP(8); break;
    case 16: COPY_LOOP(16); break;
    default: COPY_LOOP(esize); break;
    }
}

/* Drops dims of size 1 and merges neighbours that are contiguous in both layouts. */
static void box_simplify(box *b)
{
    int r = 0;
    for (int k = 0; k < b->rank; k++) {
        if (b->dims[k] == 1)
            continue;
        if (r > 0 && b->ds[r - 1] == b->ds[k] * b->dims[k] &&
            b->ss[r - 1] == b->ss[k] * b->dims[k]) {
            b->dims[r - 1] *= b->dims[k];
            b->ds[r - 1] = b->ds[k];
            b->ss[r - 1] = b->ss[k];
            continue;
        }
        b->dims[r] = b->dims[k];
        b->ds[r] = b->ds[k];
        b->ss[r] = b->ss[k];
        r++;
    }
    b->rank = r;
}

/* Coordinates and offsets of the idx-th point (row-major) of the first n dims. */
static void box_seek(const box *b, int n, int64_t idx, int64_t *coord, int64_t *doff,
                     int64_t *soff)
{
    *doff = *soff = 0;
    for (int k = n - 1; k >= 0; k--) {
        coord[k] = idx % b->dims[k];
        idx /= b->dims[k];
        *doff += coord[k] * b->ds[k];
        *soff += coord[k] * b->ss[k];
    }
}

/* Moves to the next point of the first n dims (an odometer). */
static void box_next(const box *b, int n, int64_t *coord, int64_t *doff, int64_t *soff)
{
    for (int k = n - 1; k >= 0; k--) {
        *doff += b->ds[k];
        *soff += b->ss[k];
        if (++coord[k] < b->dims[k])
            return;
        *doff -= b->dims[k] * b->ds[k];
        *soff -= b->dims[k] * b->ss[k];
        coord[k] = 0;
    }
}

/* Rows along the last dim. Short rows are grouped into tasks; long rows are split. */
static void copy_rows(char *d, const char *s, const box *b, size_t es, int64_t total, int threads)
{
    int last = b->rank - 1;
    int64_t n = b->dims[last], rows = total / n;
    int64_t per_task = TASK_BYTES / (int64_t)es > 1 ? TASK_BYTES / (int64_t)es : 1;
    if (n >= per_task) {
        int64_t pieces = (n + per_task - 1) / per_task;
#pragma omp parallel for if(total * (int64_t)es > RT_PARALLEL_BYTES) num_threads(threads)
        for (int64_t t = 0; t < rows * pieces; t++) {
            int64_t coord[RT_STRIDED_MAX_RANK], doff, soff, p = t % pieces * per_task;
            box_seek(b, last, t / pieces, coord, &doff, &soff);
            int64_t len = n - p < per_task ? n - p : per_task;
            rt_copy_run(d + (doff + p * b->ds[last]) * (int64_t)es, b->ds[last],
                        s + (soff + p * b->ss[last]) * (int64_t)es, b->ss[last], len, es);
        }
        return;
    }
    int64_t rows_per_task = per_task / n, tasks = (rows + rows_per_task - 1) / rows_per_task;
#pragma omp parallel for if(total * (int64_t)es > RT_PARALLEL_BYTES) num_threads(threads)
    for (int64_t t = 0; t < tasks; t++) {
        int64_t coord[RT_STRIDED_MAX_RANK], doff, soff;
        int64_t r0 = t * rows_per_task, r1 = r0 + rows_per_task < rows ? r0 + rows_per_task : rows;
        box_seek(b, last, r0, coord, &doff, &soff);
        for (int64_t r = r0; r < r1; r++) {
            rt_copy_run(d + doff * (int64_t)es, b->ds[last], s + soff * (int64_t)es, b->ss[last], n,
                        es);
            box_next(b, last, coord, &doff, &soff);
        }
    }
}

/* One tile of a transposing copy: d[i * drow + j] = s[i + j * scol] (in elements). */
#define TILE_LOOP(size)                                                                    \
    for (int64_t i = 0; i < rows; i++)                                                     \
        for (int64_t j = 0; j < cols; j++)                                                 \
            memcpy(d + (i * drow + j) * (int64_t)(size),                                   \
                   s + (i + j * scol) * (int64_t)(size), (size))

#ifdef __SSE2__
/* 4-byte elements (F32 and friends) in 4x4 blocks through SSE registers; shuffles move
 * bits unchanged, so integers and NaN payloads survive. Edges fall back to scalars. */
static void copy_tile4(char *dc, int64_t drow, const char *sc, int64_t scol, int64_t rows,
                       int64_t cols)
{
    float *d = (float *)dc;
    const float *s = (const float *)sc;
    int64_t i = 0, j = 0;
    for (; i + 4 <= rows; i += 4) {
        for (j = 0; j + 4 <= cols; j += 4) {
            const float *c = s + i + j * scol;
            __m128 r0 = _mm_loadu_ps(c), r1 = _mm_loadu_ps(c + scol);
            __m128 r2 = _mm_loadu_ps(c + 2 * scol), r3 = _mm_loadu_ps(c + 3 * scol);
            _MM_TRANSPOSE4_PS(r0, r1, r2, r3);
            _mm_storeu_ps(d + i * drow + j, r0);
            _mm_storeu_ps(d + (i + 1) * drow + j, r1);
            _mm_storeu_ps(d + (i + 2) * drow + j, r2);
            _mm_storeu_ps(d + (i + 3) * drow + j, r3);
        }
        for (int64_t ii = i; ii < i + 4; ii++)
            for (int64_t jj = j; jj < cols; jj++)
                memcpy(d + ii * drow + jj, s + ii + jj * scol, 4);
    }
    for (; i < rows; i++)
        for (j = 0; j < cols; j++)
            memcpy(d + i * drow + j, s + i + j * scol, 4);
}
#endif

static void copy_tile(char *d, int64_t drow, const char *s, int64_t scol, int64_t rows,
                      int64_t cols, size_t esize)
{
#ifdef __SSE2__
    if (esize == 4) {
        copy_tile4(d, drow, s, scol, rows, cols);
        return;
    }
#endif
    switch (esize) {
    case 1: TILE_LOOP(1); break;
    case 2: TILE_LOOP(2); break;
    case 4: TILE_LOOP(4); break;
    case 8: TILE_LOOP(8); break;
    case 16: TILE_LOOP(16); break;
    default: TILE_LOOP(esize); break;
    }
}

/* Transposing copy: dim rank-2 is contiguous in the source, dim rank-1 in the
 * destination. Each task does one strip of TILE rows, tile by tile. */
static void copy_tiles(char *d, const char *s, const box *b, size_t es, int64_t total, int threads)
{
    int rd = b->rank - 2, cd = b->rank - 1;
    int64_t rows = b->dims[rd], cols = b->dims[cd];
    int64_t strips = (rows + TILE - 1) / TILE, outer = total / (rows * cols);
#pragma omp parallel for if(total * (int64_t)es > RT_PARALLEL_BYTES) num_threads(threads)
    for (int64_t t = 0; t < outer * strips; t++) {
        int64_t coord[RT_STRIDED_MAX_RANK], doff, soff;
        box_seek(b, rd, t / strips, coord, &doff, &soff);
        int64_t i0 = t % strips * TILE, i1 = i0 + TILE < rows ? i0 + TILE : rows;
        for (int64_t j0 = 0; j0 < cols; j0 += TILE)
            copy_tile(d + (doff + i0 * b->ds[rd] + j0) * (int64_t)es, b->ds[rd],
                      s + (soff + i0 + j0 * b->ss[cd]) * (int64_t)es, b->ss[cd], i1 - i0,
                      cols - j0 < TILE ? cols - j0 : TILE, es);
    }
}

/* Index of a dim (not the last) that is contiguous in the source and long enough to make
 * tiling pay, or -1. Only worth it when the last dim is contiguous in the destination
 * and strided (not broadcast) in the source; even a short last dim (NCHW -> NHWC with
 * three channels) gains from writing whole tiles. */
static int tile_dim(const box *b)
{
    int last = b->rank - 1;
    if (b->rank < 2 || b->ds[last] != 1 || b->ss[last] == 1 || b->ss[last] == 0)
        return -1;
    for (int k = 0; k < last; k++)
        if (b->ss[k] == 1 && b->dims[k] >= TILE / 4)
            return k;
    return -1;
}

void rt_strided_copy(void *dst, const int64_t *dst_strides, const void *src,
                     const int64_t *src_strides, int rank, const int64_t *dims, size_t esize,
                     int threads)
{
    box b = {.rank = rank};
    int64_t total = 1;
    for (int k = 0; k < rank; k++) {
        b.dims[k] = dims[k];
        b.ds[k] = dst_strides[k];
        b.ss[k] = src_strides[k];
        total *= dims[k];
    }
    if (total == 0)
        return;
    box_simplify(&b);
    if (b.rank == 0) {
        memcpy(dst, src, esize);
        return;
    }
    int k = tile_dim(&b);
    if (k < 0) {
        copy_rows(dst, src, &b, esize, total, threads);
        return;
    }
    /* move the source-contiguous dim next to the last; the loop order does not matter */
    int64_t kd = b.dims[k], kds = b.ds[k], kss = b.ss[k];
    for (int i = k; i < b.rank - 2; i++) {
        b.dims[i] = b.dims[i + 1];
        b.ds[i] = b.ds[i + 1];
        b.ss[i] = b.ss[i + 1];
    }
    b.dims[b.rank - 2] = kd;
    b.ds[b.rank - 2] = kds;
    b.ss[b.rank - 2] = kss;
    copy_tiles(dst, src, &b, esize, total, threads);
}

void rt_strided_fill(void *dst, const void *value, int64_t n, size_t esize, int threads)
{
    int64_t one = 1, zero = 0;
    rt_strided_copy(dst, &one, value, &zero, 1, &n, esize, threads);
}
