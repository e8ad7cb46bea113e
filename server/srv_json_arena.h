/* srv_json_arena.h: a bump arena for the JSON documents of inference requests. jansson
 * allocates each value, key and buffer of a document on its own; while a thread has an
 * arena open, those allocations come from the arena (a caller-owned block, usually on its
 * stack) and frees of them cost nothing; past the block's end, and on every thread without
 * an open arena, jansson uses malloc and free as usual. */
#ifndef SRV_JSON_ARENA_H
#define SRV_JSON_ARENA_H

#include <stdbool.h>
#include <stddef.h>

typedef struct srv_json_arena {
    char *base;       /* caller-owned block */
    size_t cap, used;
    bool overflowed;  /* an allocation did not fit and went to malloc */
} srv_json_arena;

/* Installs the allocator in jansson (once; later calls do nothing). jansson asks for this
 * before any other of its calls, so the daemon makes it first thing; outside an open arena
 * the allocator is malloc and free, so values made before it stay compatible anyway. */
void srv_json_arena_install(void);
/* Opens a on the calling thread (one at a time per thread) over size bytes at block,
 * installing the allocator if that has not been done. */
void srv_json_arena_open(srv_json_arena *a, void *block, size_t size);
/* Closes the calling thread's arena. Every jansson value made while it was open must be
 * dead by now: released with json_decref, or, when a->overflowed is false, simply
 * abandoned (all of it lies in the block). */
void srv_json_arena_close(srv_json_arena *a);

#endif
