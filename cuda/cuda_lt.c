/* cuda_lt.c: opens cuBLASLt with dlopen and fills the function table (cuda_lt.h). */
#include "cuda_lt.h"

#include <pthread.h>
#include <stdio.h>

#include "cuda_dl.h"

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
static char why[320];
static const char *path;

#define SYM(field, name) {(void **)&table.field, name}
static const cuda_dl_sym syms[] = {
    SYM(get_version, "cublasLtGetVersion"),
    SYM(create, "cublasLtCreate"),
    SYM(destroy, "cublasLtDestroy"),
    SYM(status_string, "cublasLtGetStatusString"),
    SYM(desc_create, "cublasLtMatmulDescCreate"),
    SYM(desc_destroy, "cublasLtMatmulDescDestroy"),
    SYM(desc_set, "cublasLtMatmulDescSetAttribute"),
    SYM(layout_create, "cublasLtMatrixLayoutCreate"),
    SYM(layout_destroy, "cublasLtMatrixLayoutDestroy"),
    SYM(layout_set, "cublasLtMatrixLayoutSetAttribute"),
    SYM(pref_create, "cublasLtMatmulPreferenceCreate"),
    SYM(pref_destroy, "cublasLtMatmulPreferenceDestroy"),
    SYM(pref_set, "cublasLtMatmulPreferenceSetAttribute"),
    SYM(heuristic, "cublasLtMatmulAlgoGetHeuristic"),
    SYM(matmul, "cublasLtMatmul"),
};
#undef SYM

static void load(void)
{
    loaded = cuda_dl_load("cuBLASLt (libcublasLt.so." STR(CUBLAS_VER_MAJOR) ")", candidates,
                          sizeof candidates / sizeof *candidates, syms,
                          sizeof syms / sizeof *syms, &path, why, sizeof why);
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
