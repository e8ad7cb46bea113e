/* rt_tensorproto_internal.h: private helpers shared by the protobuf-based readers
 * (rt_tensorproto.c, rt_onnx.c): decoded TensorProto -> rt_tensor (rt_tensorproto.c),
 * and depth-checked unpacking plus read-only file mapping (rt_pb.c).
 * Not part of the public runtime API. */
#ifndef RT_TENSORPROTO_INTERNAL_H
#define RT_TENSORPROTO_INTERNAL_H

#include <stddef.h>

#include "onnx.pb-c.h"
#include "rt_status.h"
#include "rt_tensor.h"

/* New host tensor holding tp's data (raw_data, the typed field for its dtype, or an
 * external data file resolved under base_dir; NULL base_dir refuses external data).
 * Every size is checked against the declared dims before anything is allocated.
 * NULL and err on failure. */
rt_tensor *rt_tensorproto_to_tensor(const Onnx__TensorProto *tp, const char *base_dir,
                                    rt_error *err);

/* Unpacks size bytes as a message of type desc (what names it in errors). protobuf-c
 * decodes nested messages recursively without a limit, so the wire data is first walked
 * to bound the nesting depth: hostile bytes cannot exhaust the stack. NULL and err
 * (RT_ERR_PARSE) on failure; free with protobuf_c_message_free_unpacked(msg, NULL). */
ProtobufCMessage *rt_pb_unpack(const ProtobufCMessageDescriptor *desc, const void *data,
                               size_t size, const char *what, rt_error *err);

/* Maps a whole regular file read-only. Returns the address (a non-NULL dummy for an
 * empty file) and its size in *size; NULL and err on failure. Release with rt_file_unmap. */
const void *rt_file_map(const char *path, size_t *size, rt_error *err);
void rt_file_unmap(const void *addr, size_t size);

#endif
