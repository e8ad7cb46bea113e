/* rt_broadcast.h: numpy-style broadcasting of shapes, shared by the shape inference of
 * every op that broadcasts (elementwise ops, Expand). Implemented in rt_op_elementwise.c. */
#ifndef RT_BROADCAST_H
#define RT_BROADCAST_H

#include "rt_status.h"
#include "rt_tensor.h"

/* Broadcasts a against b (dims align from the right; a dim of 1 stretches). Fails with
 * RT_ERR_INVALID_ARG naming both shapes when they are incompatible. out may be a or b. */
rt_status rt_broadcast_shapes(const rt_shape *a, const rt_shape *b, rt_shape *out, rt_error *err);

#endif
