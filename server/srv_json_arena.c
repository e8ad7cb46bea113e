/* srv_json_arena.c: jansson's allocator with a per-thread bump arena (srv_json_arena.h). */
#include "srv_json_arena.h"

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>

/* Under AddressSanitizer the block is poisoned but for the allocations handed out, so that
 * an access past the end of one (into the block's unused part) is reported; close
 * unpoisons it, as the block is usually a stack frame that other calls reuse next. */
#if defined(__SANITIZE_ADDRESS__)
#define ARENA_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define ARENA_ASAN 1
#endif
#endif
#ifdef ARENA_ASAN
#include <sanitizer/asan_interface.h>
#define POISON(p, n) ASAN_POISON_MEMORY_REGION(p, n)
#define UNPOISON(p, n) ASAN_UNPOISON_MEMORY_REGION(p, n)
#else
#define POISON(p, n) ((void)(p), (void)(n))
#define UNPOISON(p, n) ((void)(p), (void)(n))
#endif

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
            UNPOISON(p, n);
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

static void install(void)
{
    json_set_alloc_funcs(arena_malloc, arena_free);
}

void srv_json_arena_install(void)
{
    pthread_once(&installed, install);
}

void srv_json_arena_open(srv_json_arena *a, void *block, size_t size)
{
    srv_json_arena_install();
    uintptr_t base = ((uintptr_t)block + 15u) & ~(uintptr_t)15u;
    size_t skip = (size_t)(base - (uintptr_t)block);
    *a = (srv_json_arena){.base = (char *)base, .cap = size > skip ? size - skip : 0};
    POISON(a->base, a->cap);
    open_arena = a;
}

void srv_json_arena_close(srv_json_arena *a)
{
    if (open_arena == a)
        open_arena = NULL;
    UNPOISON(a->base, a->cap);
}
