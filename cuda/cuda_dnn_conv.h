/* cuda_dnn_conv.h: Conv and infd.FusedConv of the CUDA backend on cuDNN (cuda_dnn.h),
 * used when cuDNN loads and takes the convolution: 1 or 2 spatial dims with the same pad
 * on both sides of each, groups, strides, dilations; F32 tensors (exact FP32 math, or TF32
 * tensor cores under --precision tf32), and F16 / BF16 compute when the backend's
 * precision (or the tensors' dtype) is half. Descriptors and the algorithm are cached per
 * shape in the backend. Everything else, and every convolution when cuDNN is missing,
 * runs the direct kernel (cuda_k_conv). */
#ifndef CUDA_DNN_CONV_H
#define CUDA_DNN_CONV_H

#include "cuda_be.h"
#include "rt_nn_params.h"

/* y = act(conv(x, w) + b) with b (may be NULL) per output channel, window win (resolved,
 * not padded to 3 dims), `group` groups, launched on be's stream. *done tells whether it
 * ran; false (with RT_OK) leaves the convolution to the direct kernel: cuDNN is missing
 * or unusable on this backend (decided once, on its first convolution), or it does not
 * take this shape (decided once per shape). A cuDNN call that fails otherwise is an
 * RT_ERR_BACKEND naming the call. */
rt_status cuda_dnn_conv(cuda_be *be, const rt_tensor *x, const rt_tensor *w, const rt_tensor *b,
                        rt_tensor *y, const rt_window *win, int64_t group, cuda_act act,
                        bool *done, rt_error *err);

/* Whether be's convolutions can run on cuDNN (false before its first convolution), and
 * how many have so far. */
void cuda_dnn_conv_stats(const cuda_be *be, bool *active, uint64_t *convs);

/* The cuDNN handle and the per-shape cache of be (NULL-safe). */
void cuda_dnn_conv_free(cuda_be *be);

#endif
