/* rt_onnx.h: the ONNX loader (ModelProto -> rt_graph) and TensorProto files, both decoded
 * with protobuf-c from code generated at build time from /usr/include/onnx/onnx.proto.
 *
 * Supports opsets 1 to 17 of the default domain (the ops' semantics per opset, as the
 * ONNX node tests use them), initializers in raw_data or the typed
 * fields, external data files next to the model (resolved inside the model's directory
 * only), Constant nodes with any value_* attribute, and dynamic input dimensions. An op
 * outside RT_OP_LIST fails the load with an error naming the op and the node. */
#ifndef RT_ONNX_H
#define RT_ONNX_H

#include <stddef.h>

#include "rt_graph.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* New graph from a model file; NULL and err on failure. Caller frees with rt_graph_free. */
rt_graph *rt_onnx_load_file(const char *path, rt_error *err);
/* New graph from bytes in memory. base_dir is where external data files are looked up;
 * NULL refuses models with external data. */
rt_graph *rt_onnx_load_bytes(const void *data, size_t size, const char *base_dir, rt_error *err);

/* Decodes a serialized TensorProto into a new host tensor (caller frees). If name_out is
 * non-NULL it receives a malloc'd copy of the proto's name ("" if none). */
rt_tensor *rt_tensorproto_decode(const void *data, size_t size, char **name_out, rt_error *err);
rt_tensor *rt_tensorproto_read_file(const char *path, char **name_out, rt_error *err);
/* Serializes t (host) as a TensorProto with the given name to path. */
rt_status rt_tensorproto_write_file(const char *path, const rt_tensor *t, const char *name,
                                    rt_error *err);

#endif
