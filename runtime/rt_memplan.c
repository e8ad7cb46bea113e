/* rt_memplan.c: first-fit arena placement of buffers with known lifetimes. */
#include "rt_memplan.h"

#include <stdlib.h>

typedef struct {
    size_t off, end;
    int last;
    int id;      /* the buffer occupying the block */
} live_block;

static size_t round_up(size_t n)
{
    return (n + RT_MEMPLAN_ALIGN - 1) / RT_MEMPLAN_ALIGN * RT_MEMPLAN_ALIGN;
}

static int by_first(const void *a, const void *b, const rt_memplan_buffer *bufs)
{
    int ia = *(const int *)a, ib = *(const int *)b;
    if (bufs[ia].first != bufs[ib].first)
        return bufs[ia].first < bufs[ib].first ? -1 : 1;
    return ia < ib ? -1 : ia > ib;
}

/* qsort has no context argument in C11; the order array is small, so insertion sort it. */
static void sort_by_first(int *order, int n, const rt_memplan_buffer *bufs)
{
    for (int i = 1; i < n; i++) {
        int v = order[i], j = i - 1;
        while (j >= 0 && by_first(&order[j], &v, bufs) > 0) {
            order[j + 1] = order[j];
            j--;
        }
        order[j + 1] = v;
    }
}

rt_status rt_memplan_assign(const rt_memplan_buffer *bufs, int n, size_t *offsets,
                            size_t *arena_bytes, rt_error *err)
{
    int *order = malloc(sizeof *order * (size_t)(n ? n : 1));
    live_block *live = malloc(sizeof *live * (size_t)(n ? n : 1));
    if (!order || !live) {
        free(order);
        free(live);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory planning activations");
    }
    int n_order = 0;
    for (int i = 0; i < n; i++)
        if (bufs[i].first >= 0)
            order[n_order++] = i;
    sort_by_first(order, n_order, bufs);

    size_t arena = 0;
    int n_live = 0; /* kept sorted by offset */
    for (int k = 0; k < n_order; k++) {
        const rt_memplan_buffer *b = &bufs[order[k]];
        /* retire blocks whose last reader ran before this buffer is written */
        int w = 0;
        for (int j = 0; j < n_live; j++)
            if (live[j].last >= b->first)
                live[w++] = live[j];
        n_live = w;
        size_t size = round_up(b->size), off = 0;
        /* in place: the dying buffer's block passes to this one */
        int take = -1;
        for (int j = 0; b->reuse >= 0 && j < n_live && take < 0; j++)
            if (live[j].id == b->reuse && live[j].last == b->first &&
                live[j].end - live[j].off >= size)
                take = j;
        if (take >= 0) {
            live[take].id = order[k];
            live[take].last = b->last;
            offsets[order[k]] = live[take].off;
            continue;
        }
        int pos = 0;
        for (; pos < n_live; pos++) {
            if (live[pos].off >= off + size)
                break;
            if (live[pos].end > off)
                off = live[pos].end;
        }
        for (int j = n_live; j > pos; j--)
            live[j] = live[j - 1];
        live[pos] = (live_block){off, off + size, b->last, order[k]};
        n_live++;
        offsets[order[k]] = off;
        if (off + size > arena)
            arena = off + size;
    }
    *arena_bytes = arena;
    free(order);
    free(live);
    return RT_OK;
}
