/* rt_cpu_broadcast.c: the parallel run-by-run walk of a broadcast output (see
 * rt_cpu_broadcast.h). */
#include "rt_cpu_broadcast.h"

#include <stdbool.h>

/* Longest piece of a run handed to one call, so a single long run still splits across
 * threads and the callback's stack buffers stay small. */
#define BCAST_CHUNK 16384
/* Below this many output elements threads cost more than they save. */
#define BCAST_PARALLEL_MIN 65536

void rt_bcast_init(rt_bcast *b, const rt_shape *out, const rt_shape *const *in, int n_in)
{
    b->n_in = n_in;
    b->rank = 0;
    int64_t numel = 1;
    /* Visit output dims from the innermost out, keeping those of size > 1 and folding
     * each into the previous kept one when every input is contiguous across the pair. */
    int64_t contig[RT_BCAST_MAX_IN]; /* elements spanned by input k's dims seen so far */
    int64_t dims[RT_MAX_RANK], strides[RT_BCAST_MAX_IN][RT_MAX_RANK];
    int kept = 0;
    for (int k = 0; k < n_in; k++)
        contig[k] = 1;
    for (int d = out->rank - 1; d >= 0; d--) {
        int64_t n = out->dims[d];
        numel *= n;
        if (n == 1)
            continue;
        int64_t st[RT_BCAST_MAX_IN];
        for (int k = 0; k < n_in; k++) {
            int id = d - (out->rank - in[k]->rank);
            bool stretched = id < 0 || in[k]->dims[id] == 1;
            st[k] = stretched ? 0 : contig[k];
            if (!stretched)
                contig[k] *= n;
        }
        bool merge = kept > 0;
        for (int k = 0; k < n_in && merge; k++)
            merge = st[k] == strides[k][kept - 1] * dims[kept - 1];
        if (merge) {
            dims[kept - 1] *= n;
            continue;
        }
        dims[kept] = n;
        for (int k = 0; k < n_in; k++)
            strides[k][kept] = st[k];
        kept++;
    }
    if (kept == 0) { /* a single element, or an empty output */
        dims[0] = numel;
        for (int k = 0; k < n_in; k++)
            strides[k][0] = numel == 1 ? 0 : 1;
        kept = 1;
    }
    /* kept dims are innermost-first; store them outermost-first */
    b->rank = kept;
    for (int i = 0; i < kept; i++) {
        b->dims[i] = dims[kept - 1 - i];
        for (int k = 0; k < n_in; k++)
            b->strides[k][i] = strides[k][kept - 1 - i];
    }
    b->inner = b->dims[kept - 1];
    b->rows = b->inner ? numel / b->inner : 0;
}

/* Position of the first element of run `row`: per-dim index and input offsets. */
typedef struct {
    int64_t idx[RT_MAX_RANK];
    int64_t off[RT_BCAST_MAX_IN];
} bcast_pos;

static void bcast_seek(const rt_bcast *b, bcast_pos *p, int64_t row)
{
    for (int k = 0; k < b->n_in; k++)
        p->off[k] = 0;
    for (int d = b->rank - 2; d >= 0; d--) {
        p->idx[d] = row % b->dims[d];
        row /= b->dims[d];
        for (int k = 0; k < b->n_in; k++)
            p->off[k] += p->idx[d] * b->strides[k][d];
    }
}

static void bcast_next_row(const rt_bcast *b, bcast_pos *p)
{
    for (int d = b->rank - 2; d >= 0; d--) {
        for (int k = 0; k < b->n_in; k++)
            p->off[k] += b->strides[k][d];
        if (++p->idx[d] < b->dims[d])
            return;
        for (int k = 0; k < b->n_in; k++)
            p->off[k] -= b->dims[d] * b->strides[k][d];
        p->idx[d] = 0;
    }
}

/* Runs pieces [u0, u1) of the walk, where piece u is chunk u % per_row of run u / per_row. */
static void bcast_run_range(const rt_bcast *b, int64_t per_row, int64_t u0, int64_t u1,
                            rt_bcast_fn fn, void *arg)
{
    int64_t step[RT_BCAST_MAX_IN], off[RT_BCAST_MAX_IN];
    for (int k = 0; k < b->n_in; k++)
        step[k] = b->strides[k][b->rank - 1];
    int64_t row = u0 / per_row, chunk = u0 % per_row;
    bcast_pos p;
    bcast_seek(b, &p, row);
    for (int64_t u = u0; u < u1; u++) {
        int64_t c0 = chunk * BCAST_CHUNK;
        int64_t n = b->inner - c0 < BCAST_CHUNK ? b->inner - c0 : BCAST_CHUNK;
        for (int k = 0; k < b->n_in; k++)
            off[k] = p.off[k] + c0 * step[k];
        fn(arg, off, step, row * b->inner + c0, n);
        if (++chunk == per_row) {
            chunk = 0;
            row++;
            bcast_next_row(b, &p);
        }
    }
}

void rt_bcast_run(const rt_bcast *b, int threads, rt_bcast_fn fn, void *arg)
{
    if (b->rows == 0 || b->inner == 0)
        return;
    int64_t per_row = (b->inner + BCAST_CHUNK - 1) / BCAST_CHUNK;
    int64_t units = b->rows * per_row;
    int64_t nt = b->rows * b->inner >= BCAST_PARALLEL_MIN && threads > 1 ? threads : 1;
    if (nt > units)
        nt = units;
    /* one contiguous share of the pieces per thread, so each seeks only once */
#pragma omp parallel for if (nt > 1) num_threads((int)nt) schedule(static, 1)
    for (int64_t t = 0; t < nt; t++)
        bcast_run_range(b, per_row, units * t / nt, units * (t + 1) / nt, fn, arg);
}
