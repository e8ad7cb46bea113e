/* cuda_lt.h: cuBLASLt loaded at run time. libcublasLt is half a gigabyte: linking it would
 * add a tenth of a second to the start of every infd-run, GPU or not, so the CUDA backend
 * opens it with dlopen when the first one is created and reaches it through this table. */
#ifndef CUDA_LT_H
#define CUDA_LT_H

#include <stdbool.h>
#include <stddef.h>

#include <cublasLt.h>

#include "rt_status.h"

typedef struct cuda_lt {
    __typeof__(&cublasLtCreate) create;
    __typeof__(&cublasLtDestroy) destroy;
    __typeof__(&cublasLtGetVersion) get_version;
    __typeof__(&cublasLtGetStatusString) status_string;
    __typeof__(&cublasLtMatmulDescCreate) desc_create;
    __typeof__(&cublasLtMatmulDescDestroy) desc_destroy;
    __typeof__(&cublasLtMatmulDescSetAttribute) desc_set;
    __typeof__(&cublasLtMatrixLayoutCreate) layout_create;
    __typeof__(&cublasLtMatrixLayoutDestroy) layout_destroy;
    __typeof__(&cublasLtMatrixLayoutSetAttribute) layout_set;
    __typeof__(&cublasLtMatmulPreferenceCreate) pref_create;
    __typeof__(&cublasLtMatmulPreferenceDestroy) pref_destroy;
    __typeof__(&cublasLtMatmulPreferenceSetAttribute) pref_set;
    __typeof__(&cublasLtMatmulAlgoGetHeuristic) heuristic;
    __typeof__(&cublasLtMatmul) matmul;
} cuda_lt;

/* The loaded table (borrowed, for the life of the process), or NULL with the reason in
 * err when the library cannot be opened or lacks a function. Thread-safe. */
const cuda_lt *cuda_lt_get(rt_error *err);

/* "cuBLASLt 13.0.0 (/path)" or why it cannot be loaded, for --version. */
void cuda_lt_describe(char *buf, size_t size);

#endif
