/* cuda_dl.h: opening an optional CUDA library with dlopen (cuBLASLt, cuDNN), so that the
 * binaries link none of them: the first candidate path that loads, then every symbol of a
 * function table resolved by name. The handle stays open for the process's life. */
#ifndef CUDA_DL_H
#define CUDA_DL_H

#include <stdbool.h>
#include <stddef.h>

/* One function-table entry: where the pointer goes and the symbol's name. */
typedef struct cuda_dl_sym {
    void **slot;
    const char *name;
} cuda_dl_sym;

/* Opens the first of n candidate names or paths that loads and resolves every symbol.
 * On success returns true and sets *path to the file the loader actually used (for
 * --version); otherwise writes the reason into why ("<what> not found: <dlerror>" or
 * "<path> has no <symbol>") and returns false. */
bool cuda_dl_load(const char *what, const char *const *candidates, size_t n,
                  const cuda_dl_sym *syms, size_t n_syms, const char **path, char *why,
                  size_t why_size);

#endif
