/* rt_memplan.h: liveness-based placement of intermediate tensors in one arena.
 *
 * Each buffer lives from the step that writes it to the last step that reads it; two
 * buffers may share bytes only if their lifetimes do not overlap. Placement is first-fit
 * by offset in order of definition, which keeps the arena close to the peak of live bytes
 * for the chain-like graphs inference models are. A buffer may instead take over the
 * bytes of a buffer that dies at the step that writes it (in-place operation). */
#ifndef RT_MEMPLAN_H
#define RT_MEMPLAN_H

#include <stddef.h>

#include "rt_status.h"

#define RT_MEMPLAN_ALIGN 64

typedef struct rt_memplan_buffer {
    size_t size;   /* bytes (rounded up to RT_MEMPLAN_ALIGN inside) */
    int first;     /* step that writes it; -1: not placed (offset left untouched) */
    int last;      /* last step that reads it (>= first) */
    int reuse;     /* a buffer whose bytes this one takes over if that one's last read is
                    * this one's first step and it is at least as large (an elementwise op
                    * writing over its input); -1: none */
} rt_memplan_buffer;

/* Computes offsets[i] for every placed buffer and the arena size in *arena_bytes.
 * Returns RT_ERR_NOMEM if scratch memory cannot be allocated. */
rt_status rt_memplan_assign(const rt_memplan_buffer *bufs, int n, size_t *offsets,
                            size_t *arena_bytes, rt_error *err);

#endif
