/* srv_json_arena.c: jansson's allocator with a per-thread bump arena (srv_json_arena.h). */
#include "srv_json_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

static _Thread_local srv_json_arena *open_arena;
static pthread_once_t installed = PTHREAD_ONCE_INIT;

static void *arena_malloc(size_t n)
{
    srv_json_arena *a = open_arena;
    if (a) {
        size_t rounded = (n + 15u) & ~(size_t)15u; /* malloc's alignment */
        if (rounded >= n && rounded <= a->cap - a->used) {
            void *p = a->base + a->used;
            a->used += rounded;
            return p;
        }
        a->overflowed = true;
    }
    return malloc(n);
}

static void arena_free(void *p)
{
    srv_json_arena *a = open_arena;
    if (a && (uintptr_t)p >= (uintptr_t)a->base && (uintptr_t)p < (uintptr_t)a->base + a->cap)
        return;
    free(p);
}

/* Installed once, before the first arena opens; outside arenas the two functions are
 * malloc and free, so values made before or after, on any thread, stay compatible. */
static void install(void)
{
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void srv_json_arena_open(srv_json_arena *a, void *block, size_t size)
{
    pthread_once(&installed, install);
    uintptr_t base = ((uintptr_t)block + 15u) & ~(uintptr_t)15u;
    size_t skip = (size_t)(base - (uintptr_t)block);
    *a = (srv_json_arena){.base = (char *)base, .cap = size > skip ? size - skip : 0};
    open_arena = a;
}

void srv_json_arena_close(srv_json_arena *a)
{
    if (open_arena == a)
        open_arena = NULL;
}
