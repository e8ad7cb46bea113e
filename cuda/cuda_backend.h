/* cuda_backend.h: the CUDA backend as an rt_backend (rt_backend.h), callable from C
 * without CUDA headers; built only when nvcc is found (INFD_HAVE_CUDA). The runtime
 * reaches it through rt_session.c's backend selection. */
#ifndef CUDA_BACKEND_H
#define CUDA_BACKEND_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_backend.h"
#include "rt_compress.h"

/* A backend on device `device` with its own stream, memory pool and cuBLASLt state
 * (cuBLASLt is loaded on the first call). GEMMs on F32 operands run in `precision`
 * (fp32, tf32, fp16 or bf16, FP32 accumulation); weights feeding them are converted once
 * here at load. graphs: record each input-shape plan as a CUDA Graph after its warm-up
 * run and replay it. NULL with the reason in err when the device, its memory or cuBLASLt
 * is not usable. Free with rt_backend_free. */
rt_backend *cuda_backend_create(int device, rt_precision precision, bool graphs,
                                rt_error *err);

/* One line on the GEMM library (version and path, or why it cannot be loaded). */
void cuda_backend_describe_blas(char *buf, size_t size);

/* One line on the convolution library: cuDNN's version and path, or why convolutions run
 * the direct kernel (cuDNN is optional and opened on the first convolution; this opens it
 * too). */
void cuda_backend_describe_dnn(char *buf, size_t size);

/* For tests: whether cuda backend b's convolutions can run on cuDNN (false before its
 * first convolution, or when cuDNN is missing) and how many have so far; the others ran
 * the direct kernel. */
void cuda_backend_dnn_stats(rt_backend *b, bool *active, uint64_t *convs);

#endif
