/* tp_comm_local.c: the in-process communicator: the ranks of a group are threads of one
 * process that share a group object. Each rank publishes its buffers in its slot, waits at
 * a barrier, works directly on its peers' buffers, and waits at a second barrier before
 * returning (so that no rank reuses or frees a buffer a peer still reads).
 *
 * all_reduce_sum splits the elements into one range per rank; a rank sums its range over
 * all ranks in rank order and writes the result into every rank's recv. The order of the
 * additions is fixed, so every rank gets the same bits, equal to a serial loop over ranks. */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "tp_comm.h"

#define REDUCE_BLOCK 1024 /* elements summed at a time in a stack buffer */

typedef enum { COLL_ALL_REDUCE, COLL_ALL_GATHER, COLL_BROADCAST } coll_kind;
static const char *const coll_names[] = {"all_reduce_sum", "all_gather", "broadcast"};

/* What one rank asked for in the current collective. */
typedef struct {
    coll_kind kind;
    rt_dtype dtype;
    size_t count;
    int root;
    const void *send;
    void *recv;
} coll_slot;

typedef struct {
    int size;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int arrived;              /* ranks waiting at the current barrier */
    unsigned long generation; /* barriers completed */
    bool aborted;
    int members;              /* communicators not yet freed */
    coll_slot *slots;         /* one per rank */
} local_group;

/* Waits until every rank has arrived. An abortable barrier returns false when the group is
 * (or becomes) aborted before it completes. The barrier that ends a collective is not
 * abortable: every rank passed the one that began it, so every rank will arrive. */
static bool barrier(local_group *g, bool abortable)
{
    pthread_mutex_lock(&g->mu);
    unsigned long gen = g->generation;
    bool ok = true;
    if (abortable && g->aborted) {
        ok = false;
    } else if (++g->arrived == g->size) {
        g->arrived = 0;
        g->generation++;
        pthread_cond_broadcast(&g->cv);
    } else {
        while (gen == g->generation && !(abortable && g->aborted))
            pthread_cond_wait(&g->cv, &g->mu);
        ok = gen != g->generation;
    }
    pthread_mutex_unlock(&g->mu);
    return ok;
}

static void set_aborted(local_group *g)
{
    pthread_mutex_lock(&g->mu);
    g->aborted = true;
    pthread_cond_broadcast(&g->cv);
    pthread_mutex_unlock(&g->mu);
}

/* Publishes this rank's request and waits for the others; checks that all ranks asked for
 * the same collective. On a mismatch every rank sees the same slots, so all fail alike. */
static rt_status enter(tp_comm *c, const coll_slot *mine, rt_error *err)
{
    local_group *g = c->impl;
    const char *what = coll_names[mine->kind];
    g->slots[c->rank] = *mine;
    if (!barrier(g, true))
        return rt_error_set(err, RT_ERR_BACKEND, "%s on rank %d: the communicator group was "
                            "aborted (another rank failed)", what, c->rank);
    const coll_slot *s0 = &g->slots[0];
    for (int r = 1; r < g->size; r++) {
        const coll_slot *s = &g->slots[r];
        if (s->kind == s0->kind && s->dtype == s0->dtype && s->count == s0->count &&
            (s->kind != COLL_BROADCAST || s->root == s0->root))
            continue;
        rt_error_set(err, RT_ERR_INVALID_ARG, "collectives do not match: rank 0 called "
                     "%s(%zu x %s, root %d), rank %d called %s(%zu x %s, root %d)",
                     coll_names[s0->kind], s0->count, rt_dtype_name(s0->dtype), s0->root, r,
                     coll_names[s->kind], s->count, rt_dtype_name(s->dtype), s->root);
        set_aborted(g);
        barrier(g, false);
        return RT_ERR_INVALID_ARG;
    }
    return RT_OK;
}

/* acc[0..n) (+)= elements [first, first + n) of a buffer of dtype dt. */
static void accumulate(rt_dtype dt, const void *buf, size_t first, size_t n, float *acc,
                       bool add)
{
    if (dt == RT_DTYPE_F32) {
        const float *x = (const float *)buf + first;
        for (size_t i = 0; i < n; i++)
            acc[i] = add ? acc[i] + x[i] : x[i];
        return;
    }
    const uint16_t *x = (const uint16_t *)buf + first;
    for (size_t i = 0; i < n; i++) {
        float v = dt == RT_DTYPE_F16 ? rt_f16_to_f32(x[i]) : rt_bf16_to_f32(x[i]);
        acc[i] = add ? acc[i] + v : v;
    }
}

/* Sums elements [lo, hi) over all ranks and writes them to every rank's recv. */
static void reduce_range(const local_group *g, rt_dtype dt, size_t lo, size_t hi)
{
    float acc[REDUCE_BLOCK];
    uint16_t half[REDUCE_BLOCK];
    size_t esz = rt_dtype_size(dt);
    for (size_t b = lo; b < hi; b += REDUCE_BLOCK) {
        size_t n = hi - b < REDUCE_BLOCK ? hi - b : REDUCE_BLOCK;
        for (int r = 0; r < g->size; r++)
            accumulate(dt, g->slots[r].send, b, n, acc, r > 0);
        const void *out = acc;
        if (dt != RT_DTYPE_F32) {
            for (size_t i = 0; i < n; i++)
                half[i] = dt == RT_DTYPE_F16 ? rt_f32_to_f16(acc[i]) : rt_f32_to_bf16(acc[i]);
            out = half;
        }
        for (int r = 0; r < g->size; r++)
            memcpy((char *)g->slots[r].recv + b * esz, out, n * esz);
    }
}

static rt_status local_all_reduce_sum(tp_comm *c, const void *send, void *recv, size_t count,
                                      rt_dtype dtype, void *stream, rt_error *err)
{
    (void)stream;
    if (dtype != RT_DTYPE_F32 && dtype != RT_DTYPE_F16 && dtype != RT_DTYPE_BF16) {
        tp_comm_abort(c);
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "all_reduce_sum: the local communicator "
                            "sums F32, F16 and BF16, not %s", rt_dtype_name(dtype));
    }
    coll_slot mine = {COLL_ALL_REDUCE, dtype, count, 0, send, recv};
    rt_status st = enter(c, &mine, err);
    if (st != RT_OK)
        return st;
    local_group *g = c->impl;
    size_t chunk = (count + (size_t)g->size - 1) / (size_t)g->size;
    size_t lo = chunk * (size_t)c->rank, hi = lo + chunk;
    if (lo < count)
        reduce_range(g, dtype, lo, hi < count ? hi : count);
    barrier(g, false);
    return RT_OK;
}

static rt_status local_all_gather(tp_comm *c, const void *send, void *recv, size_t count,
                                  rt_dtype dtype, void *stream, rt_error *err)
{
    (void)stream;
    coll_slot mine = {COLL_ALL_GATHER, dtype, count, 0, send, recv};
    rt_status st = enter(c, &mine, err);
    if (st != RT_OK)
        return st;
    local_group *g = c->impl;
    size_t bytes = count * rt_dtype_size(dtype);
    for (int r = 0; r < g->size; r++) {
        char *dst = (char *)recv + (size_t)r * bytes;
        if (bytes && g->slots[r].send != dst) /* in place: our part is already there */
            memcpy(dst, g->slots[r].send, bytes);
    }
    barrier(g, false);
    return RT_OK;
}

static rt_status local_broadcast(tp_comm *c, void *buf, size_t count, rt_dtype dtype, int root,
                                 void *stream, rt_error *err)
{
    (void)stream;
    coll_slot mine = {COLL_BROADCAST, dtype, count, root, buf, buf};
    rt_status st = enter(c, &mine, err);
    if (st != RT_OK)
        return st;
    local_group *g = c->impl;
    if (c->rank != root && count)
        memcpy(buf, g->slots[root].send, count * rt_dtype_size(dtype));
    barrier(g, false);
    return RT_OK;
}

static void local_abort(tp_comm *c)
{
    set_aborted(c->impl);
}

static void group_free(local_group *g)
{
    pthread_cond_destroy(&g->cv);
    pthread_mutex_destroy(&g->mu);
    free(g->slots);
    free(g);
}

static void local_free(tp_comm *c)
{
    local_group *g = c->impl;
    pthread_mutex_lock(&g->mu);
    bool last = --g->members == 0;
    pthread_mutex_unlock(&g->mu);
    if (last)
        group_free(g);
    free(c);
}

static const tp_comm_vtable local_vtable = {
    .name = "local",
    .all_reduce_sum = local_all_reduce_sum,
    .all_gather = local_all_gather,
    .broadcast = local_broadcast,
    .abort = local_abort,
    .free = local_free,
};

rt_status tp_comm_local_create(int size, tp_comm **comms, rt_error *err)
{
    if (size < 1 || size > 4096)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "a communicator group needs 1 to 4096 "
                            "ranks, not %d", size);
    local_group *g = calloc(1, sizeof *g);
    if (g)
        g->slots = calloc((size_t)size, sizeof *g->slots);
    if (!g || !g->slots) {
        free(g);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    g->size = size;
    pthread_mutex_init(&g->mu, NULL);
    pthread_cond_init(&g->cv, NULL);
    for (int r = 0; r < size; r++) {
        comms[r] = calloc(1, sizeof *comms[r]);
        if (!comms[r]) {
            for (int k = 0; k < r; k++) {
                free(comms[k]);
                comms[k] = NULL;
            }
            group_free(g);
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        }
        *comms[r] = (tp_comm){&local_vtable, r, size, g};
    }
    g->members = size;
    return RT_OK;
}
