/* rt_pb.c: protobuf plumbing for the ONNX readers: unpacking with a bound on message
 * nesting (protobuf-c itself recurses without one) and read-only file mapping. */
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdint.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_tensorproto_internal.h"

/* Far deeper than any ONNX model needs (subgraphs nest a handful of levels), far shallower
 * than what exhausts a thread stack in protobuf-c's recursive decoder. */
#define PB_MAX_DEPTH 64

typedef enum { WALK_OK, WALK_MALFORMED, WALK_TOO_DEEP } walk_result;

static bool read_varint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    *v = 0;
    for (int shift = 0; shift < 64 && *p < end; shift += 7) {
        uint8_t b = *(*p)++;
        *v |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80))
            return true;
    }
    return false;
}

/* Walks the fields of one message, descending into the length-delimited fields that the
 * descriptor declares as messages. Each byte is scanned once, at its innermost level. */
static walk_result walk(const ProtobufCMessageDescriptor *desc, const uint8_t *p,
                        const uint8_t *end, int depth)
{
    if (depth > PB_MAX_DEPTH)
        return WALK_TOO_DEEP;
    while (p < end) {
        uint64_t key, v;
        if (!read_varint(&p, end, &key))
            return WALK_MALFORMED;
        switch (key & 7) {
        case PROTOBUF_C_WIRE_TYPE_VARINT:
            if (!read_varint(&p, end, &v))
                return WALK_MALFORMED;
            break;
        case PROTOBUF_C_WIRE_TYPE_64BIT:
            if (end - p < 8)
                return WALK_MALFORMED;
            p += 8;
            break;
        case PROTOBUF_C_WIRE_TYPE_32BIT:
            if (end - p < 4)
                return WALK_MALFORMED;
            p += 4;
            break;
        case PROTOBUF_C_WIRE_TYPE_LENGTH_PREFIXED: {
            if (!read_varint(&p, end, &v) || v > (uint64_t)(end - p))
                return WALK_MALFORMED;
            const ProtobufCFieldDescriptor *f =
                key >> 3 <= UINT32_MAX
                    ? protobuf_c_message_descriptor_get_field(desc, (unsigned)(key >> 3))
                    : NULL;
            if (f && f->type == PROTOBUF_C_TYPE_MESSAGE) {
                walk_result r = walk(f->descriptor, p, p + v, depth + 1);
                if (r != WALK_OK)
                    return r;
            }
            p += v;
            break;
        }
        default:
            return WALK_MALFORMED; /* groups (deprecated) and invalid wire types */
        }
    }
    return WALK_OK;
}

ProtobufCMessage *rt_pb_unpack(const ProtobufCMessageDescriptor *desc, const void *data,
                               size_t size, const char *what, rt_error *err)
{
    static const uint8_t empty;
    const uint8_t *bytes = size ? data : &empty;
    walk_result r = walk(desc, bytes, bytes + size, 0);
    if (r == WALK_TOO_DEEP) {
        rt_error_set(err, RT_ERR_PARSE, "%s nests messages deeper than %d levels", what,
                     PB_MAX_DEPTH);
        return NULL;
    }
    ProtobufCMessage *msg = r == WALK_OK ? protobuf_c_message_unpack(desc, NULL, size, bytes)
                                         : NULL;
    if (!msg)
        rt_error_set(err, RT_ERR_PARSE, "not a valid %s (protobuf decoding failed)", what);
    return msg;
}

const void *rt_file_map(const char *path, size_t *size, rt_error *err)
{
    static const char empty_file;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        rt_error_set(err, RT_ERR_IO, "cannot open '%s': %s", path, strerror(errno));
        return NULL;
    }
    struct stat st;
    const void *addr = NULL;
    if (fstat(fd, &st) != 0) {
        rt_error_set(err, RT_ERR_IO, "cannot stat '%s': %s", path, strerror(errno));
    } else if (!S_ISREG(st.st_mode)) {
        rt_error_set(err, RT_ERR_IO, "'%s' is not a regular file", path);
    } else if (st.st_size == 0) {
        addr = &empty_file;
    } else {
        void *m = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
        if (m == MAP_FAILED)
            rt_error_set(err, RT_ERR_IO, "cannot map '%s': %s", path, strerror(errno));
        else
            addr = m;
    }
    close(fd);
    if (addr)
        *size = (size_t)st.st_size;
    return addr;
}

void rt_file_unmap(const void *addr, size_t size)
{
    if (addr && size)
        munmap((void *)addr, size);
}
