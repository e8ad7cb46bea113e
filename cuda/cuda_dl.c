/* cuda_dl.c: dlopen of an optional CUDA library and its function table (cuda_dl.h). */
#include "cuda_dl.h"

#include <dlfcn.h>
#include <stdio.h>

bool cuda_dl_load(const char *what, const char *const *candidates, size_t n,
                  const cuda_dl_sym *syms, size_t n_syms, const char **path, char *why,
                  size_t why_size)
{
    void *h = NULL;
    for (size_t i = 0; !h && i < n; i++) {
        h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        *path = candidates[i];
    }
    if (!h) {
        snprintf(why, why_size, "%s not found: %s", what, dlerror());
        return false;
    }
    for (size_t i = 0; i < n_syms; i++)
        if (!(*syms[i].slot = dlsym(h, syms[i].name))) {
            snprintf(why, why_size, "%s has no %s", *path, syms[i].name);
            return false;
        }
    /* the file the loader picked: the toolkit's, or one on LD_LIBRARY_PATH */
    Dl_info info;
    if (n_syms && dladdr(*syms[0].slot, &info) && info.dli_fname)
        *path = info.dli_fname;
    return true;
}
