/* rt_op_shape.h: parameter resolution shared by the infer functions of the shape and
 * data-movement ops (rt_op_shape.c, rt_op_layout.c) and their kernels, so that both sides
 * read attributes and shape-carrying inputs the same way and agree on the result. */
#ifndef RT_OP_SHAPE_H
#define RT_OP_SHAPE_H

#include <stdbool.h>
#include <stdint.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* in[i], or NULL when omitted or beyond n_in. */
static inline const rt_tensor *rt_in_opt(const rt_tensor *const *in, int n_in, int i)
{
    return i < n_in ? in[i] : NULL;
}

/* Maps axis from [-rank, rank) to [0, rank); RT_ERR_INVALID_ARG naming attr otherwise. */
rt_status rt_axis_resolve(int64_t axis, int rank, const char *what, int *out, rt_error *err);

/* Fails with RT_ERR_INVALID_ARG unless in[0..count) are all present. */
rt_status rt_inputs_require(const rt_tensor *const *in, int n_in, int count, rt_error *err);

/* An integer list that older opsets give as an attribute and newer ones as an input (an
 * integer tensor of rank <= 1). n is -1 when neither is given. */
typedef struct rt_int_list {
    int n;
    const int64_t *ints;  /* from the attribute, or NULL */
    const rt_tensor *t;   /* from the input, or NULL */
} rt_int_list;

/* Fills list from attribute attr (wins when present; attr may be NULL) or else input
 * number input. Fails for an input that is not an integer tensor of rank <= 1. */
rt_status rt_int_list_get(const rt_node *node, const char *attr, const rt_tensor *const *in,
                          int n_in, int input, rt_int_list *list, rt_error *err);
int64_t rt_int_list_at(const rt_int_list *list, int i);

/* Transpose: the permutation (default: reversed dims), validated. */
rt_status rt_transpose_perm(const rt_node *node, int rank, int *perm, rt_error *err);

/* Slice, opsets 1-17: for every dim of data, the first element, step and count taken
 * (dims not sliced: 0, 1, dim). */
rt_status rt_slice_resolve(const rt_node *node, const rt_tensor *const *in, int n_in,
                           int64_t *start, int64_t *step, int64_t *count, rt_error *err);

typedef enum {
    RT_PAD_CONSTANT,
    RT_PAD_REFLECT,
    RT_PAD_EDGE
} rt_pad_mode;

/* Pad, opsets 2-17 (and 18's axes input): begin[k] and end[k] for every dim of data
 * (negative crops), and the mode. */
rt_status rt_pad_resolve(const rt_node *node, const rt_tensor *const *in, int n_in,
                         int64_t *begin, int64_t *end, rt_pad_mode *mode, rt_error *err);
/* Pad's padding element in dtype dt into value (room for an rt_str): the constant_value
 * input (opset >= 11), the value attribute (older), or 0 (the empty string for BYTES). */
void rt_pad_value(const rt_node *node, const rt_tensor *const *in, int n_in, rt_dtype dt,
                  unsigned char *value);

/* Transpose, Slice, Expand and Tile as one strided box copy, planned once for every
 * backend: output element (i_0 .. i_rank-1) of the box is
 * y[sum i_d dst[d]] = x[src_start + sum i_d src[d]] (Tile's box has twice x's rank:
 * each dim split into the repeat and the position within the copy; Slice's source
 * strides may be negative). y is the inferred output. */
typedef struct rt_layout_box {
    int rank;
    int64_t dims[2 * RT_MAX_RANK], dst[2 * RT_MAX_RANK], src[2 * RT_MAX_RANK];
    int64_t src_start;
} rt_layout_box;

rt_status rt_layout_box_get(const rt_node *node, const rt_tensor *const *in, int n_in,
                            const rt_tensor *y, rt_layout_box *box, rt_error *err);

/* Concat and Split: the slab that a part of part_dim along axis fills in the joined tensor
 * from position offset on, as a 2-D box (outer rows of the part's contiguous elements):
 * its dims, the joined tensor's and the part's strides, and the joined element it
 * starts at. */
void rt_concat_slab(const rt_shape *joined, int axis, int64_t part_dim, int64_t offset,
                    int64_t dims[2], int64_t joined_strides[2], int64_t part_strides[2],
                    int64_t *start);

/* Shape, opset 15: the [*start, *end) range of dims to output (clamped, end >= start). */
void rt_shape_bounds(const rt_node *node, int rank, int *start, int *end);

/* Constant: the value_* attribute that holds the value, or NULL if none does. */
const rt_attr *rt_constant_attr(const rt_node *node);

#endif
