/* cuda_lt.c: opens cuBLASLt with dlopen and fills the function table (cuda_lt.h). */
#include "cuda_lt.h"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define STR_(x) #x
#define STR(x) STR_(x)

/* the library of the toolkit we were built with first (CUDA_LIBDIR, set by the Makefile),
 * then whatever the loader finds */
static const char *const candidates[] = {
#ifdef CUDA_LIBDIR
    CUDA_LIBDIR "/libcublasLt.so." STR(CUBLAS_VER_MAJOR),
#endif
    "libcublasLt.so." STR(CUBLAS_VER_MAJOR),
    "libcublasLt.so",
};

static pthread_once_t once = PTHREAD_ONCE_INIT;
static cuda_lt table;
static bool loaded;
static char why[256];
static const char *path;

#define SYM(field, name)                                                                    \
    do {                                                                                    \
        *(void **)&table.field = dlsym(h, name);                                            \
        if (!table.field) {                                                                 \
            snprintf(why, sizeof why, "%s has no %s", path, name);                          \
            return;                                                                         \
        }                                                                                   \
    } while (0)

static void load(void)
{
    void *h = NULL;
    for (size_t i = 0; !h && i < sizeof candidates / sizeof *candidates; i++) {
        h = dlopen(candidates[i], RTLD_NOW | RTLD_LOCAL);
        path = candidates[i];
    }
    if (!h) {
        snprintf(why, sizeof why, "cannot load cuBLASLt (libcublasLt.so.%d): %s",
                 CUBLAS_VER_MAJOR, dlerror());
        return;
    }
    SYM(create, "cublasLtCreate");
    SYM(destroy, "cublasLtDestroy");
    SYM(get_version, "cublasLtGetVersion");
    SYM(status_string, "cublasLtGetStatusString");
    SYM(desc_create, "cublasLtMatmulDescCreate");
    SYM(desc_destroy, "cublasLtMatmulDescDestroy");
    SYM(desc_set, "cublasLtMatmulDescSetAttribute");
    SYM(layout_create, "cublasLtMatrixLayoutCreate");
    SYM(layout_destroy, "cublasLtMatrixLayoutDestroy");
    SYM(layout_set, "cublasLtMatrixLayoutSetAttribute");
    SYM(pref_create, "cublasLtMatmulPreferenceCreate");
    SYM(pref_destroy, "cublasLtMatmulPreferenceDestroy");
    SYM(pref_set, "cublasLtMatmulPreferenceSetAttribute");
    SYM(heuristic, "cublasLtMatmulAlgoGetHeuristic");
    SYM(matmul, "cublasLtMatmul");
    loaded = true;
}

const cuda_lt *cuda_lt_get(rt_error *err)
{
    pthread_once(&once, load);
    if (!loaded) {
        rt_error_set(err, RT_ERR_BACKEND, "cuda: %s", why);
        return NULL;
    }
    return &table;
}

void cuda_lt_describe(char *buf, size_t size)
{
    const cuda_lt *lt = cuda_lt_get(NULL);
    if (!lt) {
        snprintf(buf, size, "%s", why);
        return;
    }
    size_t v = lt->get_version();
    snprintf(buf, size, "cuBLASLt %zu.%zu.%zu (%s)", v / 10000, v / 100 % 100, v % 100, path);
}
