/* rt_nn_params.h: attribute resolution shared by the shape inference and the kernels (of
 * every backend) of the neural-network and reduction ops, so that all derive the same
 * geometry from a node and its input shapes (sliding windows of Conv/pooling, reduced
 * axes, a normalized axis), and Clip's bounds. */
#ifndef RT_NN_PARAMS_H
#define RT_NN_PARAMS_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* Geometry of a sliding window over the spatial dims of an (N, C, D1..Dn) tensor. */
typedef struct rt_window {
    int rank;                         /* n, the number of spatial dims */
    int64_t in[RT_MAX_RANK];          /* D1..Dn */
    int64_t out[RT_MAX_RANK];         /* output spatial dims */
    int64_t kernel[RT_MAX_RANK];
    int64_t stride[RT_MAX_RANK];
    int64_t dilation[RT_MAX_RANK];
    int64_t pad_begin[RT_MAX_RANK];   /* resolved from pads or auto_pad */
    int64_t pad_end[RT_MAX_RANK];
} rt_window;

/* Resolves kernel_shape (or `kernel`, the spatial dims of Conv's weight, when non-NULL),
 * strides, dilations, pads, auto_pad and (for pooling) ceil_mode of node against input
 * shape x. Fails with a message for malformed attributes or a window larger than the
 * padded input. */
rt_status rt_window_resolve(const rt_node *node, const rt_shape *x, const int64_t *kernel,
                            rt_window *w, rt_error *err);

/* The axes a ReduceMean/ReduceSum/ReduceMax node reduces over an input of rank `rank`:
 * from the `axes` attribute, else from the optional `axes` input (ReduceSum >= 13); empty
 * or absent axes mean all axes, or none when noop_with_empty_axes is set. */
rt_status rt_reduce_axes(const rt_node *node, const rt_tensor *const *in, int n_in, int rank,
                         bool reduced[RT_MAX_RANK], rt_error *err);

/* Clip's bounds: the min and max attributes before opset 11 (defaulting to +-FLT_MAX),
 * else the optional scalar inputs 1 and 2 (defaulting to no bound), as *lo and *hi, and
 * those inputs themselves in *lo_t and *hi_t (NULL when not given) for integer dtypes
 * (rt_op_elementwise.c). */
void rt_clip_bounds(const rt_node *node, const rt_tensor *const *in, int n_in, double *lo,
                    double *hi, const rt_tensor **lo_t, const rt_tensor **hi_t);

/* Normalizes an axis attribute value in [-rank, rank) (or [-rank, rank] when
 * allow_end) to a non-negative index; fails with a message naming the op otherwise. */
rt_status rt_axis_normalize(const rt_node *node, int64_t axis, int rank, bool allow_end,
                            int *out, rt_error *err);

#endif
