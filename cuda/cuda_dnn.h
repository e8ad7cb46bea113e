/* cuda_dnn.h: cuDNN loaded at run time, for the CUDA backend's convolutions
 * (cuda_dnn_conv.h). cuDNN is optional: nothing links it, it is opened with dlopen on the
 * first convolution, and where it is missing (no library, a missing symbol, or no cudnn.h
 * at build time) convolutions run on the direct kernel. cudnn.h is included for its types
 * and enums only; every call goes through this table. */
#ifndef CUDA_DNN_H
#define CUDA_DNN_H

#include <stdbool.h>
#include <stddef.h>

#include "rt_status.h"

/* CUDA_HAVE_CUDNN: 1 when cudnn.h was found at build time, else the cuDNN path is compiled
 * out and cuda_dnn_get always answers "not available in this build". */
#if defined(__has_include)
#if __has_include(<cudnn.h>)
#include <cudnn.h>
#define CUDA_HAVE_CUDNN 1
#endif
#endif
#ifndef CUDA_HAVE_CUDNN
#define CUDA_HAVE_CUDNN 0
#endif

#if CUDA_HAVE_CUDNN
/* The legacy convolution API of cuDNN 9 (libcudnn forwards it to libcudnn_cnn / _ops). */
typedef struct cuda_dnn {
    __typeof__(&cudnnGetVersion) get_version;
    __typeof__(&cudnnGetErrorString) error_string;
    __typeof__(&cudnnCreate) create;
    __typeof__(&cudnnDestroy) destroy;
    __typeof__(&cudnnSetStream) set_stream;
    __typeof__(&cudnnCreateTensorDescriptor) tensor_create;
    __typeof__(&cudnnSetTensor4dDescriptor) tensor_set;
    __typeof__(&cudnnDestroyTensorDescriptor) tensor_destroy;
    __typeof__(&cudnnCreateFilterDescriptor) filter_create;
    __typeof__(&cudnnSetFilter4dDescriptor) filter_set;
    __typeof__(&cudnnDestroyFilterDescriptor) filter_destroy;
    __typeof__(&cudnnCreateConvolutionDescriptor) conv_create;
    __typeof__(&cudnnSetConvolution2dDescriptor) conv_set;
    __typeof__(&cudnnSetConvolutionGroupCount) conv_set_groups;
    __typeof__(&cudnnSetConvolutionMathType) conv_set_math;
    __typeof__(&cudnnDestroyConvolutionDescriptor) conv_destroy;
    __typeof__(&cudnnCreateActivationDescriptor) act_create;
    __typeof__(&cudnnSetActivationDescriptor) act_set;
    __typeof__(&cudnnDestroyActivationDescriptor) act_destroy;
    __typeof__(&cudnnGetConvolutionForwardAlgorithmMaxCount) algo_max;
    __typeof__(&cudnnGetConvolutionForwardAlgorithm_v7) algo_get;
    __typeof__(&cudnnGetConvolutionForwardWorkspaceSize) workspace_size;
    __typeof__(&cudnnConvolutionForward) forward;
    __typeof__(&cudnnConvolutionBiasActivationForward) forward_bias_act;
} cuda_dnn;

/* The loaded table (borrowed, for the life of the process), or NULL with the reason in
 * err when the library cannot be opened or lacks a function. Thread-safe; the first call
 * opens the library. */
const cuda_dnn *cuda_dnn_get(rt_error *err);
#endif

/* "cuDNN 9.19.0 (path)" or why convolutions cannot use it, for --version. Opens the
 * library when it is not yet open. */
void cuda_dnn_describe(char *buf, size_t size);

#endif
