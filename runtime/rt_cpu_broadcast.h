/* rt_cpu_broadcast.h: the walk of a broadcast output in contiguous runs that tracks where
 * each input is, shared by the CPU elementwise kernels.
 *
 * The walk merges adjacent dims that every input treats alike, so a same-shape op becomes
 * one run of numel elements and a bias add over [N,C] becomes N runs of C. Inside a run
 * every input either advances by one element or stays on one element (step 1 or 0). */
#ifndef RT_CPU_BROADCAST_H
#define RT_CPU_BROADCAST_H

#include <stdint.h>

#include "rt_tensor.h"

/* The most inputs one walk tracks (Where has three). */
#define RT_BCAST_MAX_IN 3

/* A planned walk of an output shape. */
typedef struct rt_bcast {
    int n_in;
    int rank;                                      /* merged rank, >= 1 */
    int64_t dims[RT_MAX_RANK];                     /* merged output dims */
    int64_t strides[RT_BCAST_MAX_IN][RT_MAX_RANK]; /* element strides per input; 0 = broadcast */
    int64_t inner;                                 /* dims[rank-1]: length of one run */
    int64_t rows;                                  /* number of runs (numel / inner) */
} rt_bcast;

/* Plans the walk of out for n_in (<= RT_BCAST_MAX_IN) contiguous inputs, each of which
 * must broadcast to out (checked by the op's shape inference). */
void rt_bcast_init(rt_bcast *b, const rt_shape *out, const rt_shape *const *in, int n_in);

/* Called once per run: n output elements from out_off on; input k starts at element
 * in_off[k] and advances by in_step[k] (0 or 1) per output element. */
typedef void (*rt_bcast_fn)(void *arg, const int64_t *in_off, const int64_t *in_step,
                            int64_t out_off, int64_t n);

/* Calls fn for every run of the output, cutting long runs into chunks and spreading the
 * work over up to `threads` OpenMP threads when the output is large. Runs given to
 * different calls never overlap, so fn may write its output range without locking. */
void rt_bcast_run(const rt_bcast *b, int threads, rt_bcast_fn fn, void *arg);

#endif
