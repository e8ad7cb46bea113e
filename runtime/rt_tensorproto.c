/* rt_tensorproto.c: TensorProto <-> rt_tensor. Decoding reads raw_data, the typed field
 * that the ONNX spec assigns to each dtype, or external data files (confined to the
 * model's directory), checking every size against the dims before allocating; writing
 * produces the .pb files of the ONNX test data sets (raw_data, string_data for BYTES). */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_onnx.h"
#include "rt_path.h"
#include "rt_tensorproto_internal.h"

_Static_assert(__BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__,
               "raw_data is little endian; a big-endian host needs byte swapping here");

/* Upper bound on a tensor's bytes, counting every dim as at least 1 so that no product
 * of dims (in any order) can overflow in later shape arithmetic. */
#define MAX_TENSOR_BYTES ((int64_t)1 << 48)

/* The typed fields of TensorProto (plus raw_data); which one holds a dtype is fixed by
 * the spec (see field_for). */
typedef enum {
    FIELD_FLOAT,
    FIELD_INT32,
    FIELD_INT64,
    FIELD_DOUBLE,
    FIELD_UINT64,
    FIELD_STRING
} typed_field;

static typed_field field_for(rt_dtype dt)
{
    switch (dt) {
    case RT_DTYPE_F32: return FIELD_FLOAT;
    case RT_DTYPE_I64: return FIELD_INT64;
    case RT_DTYPE_F64: return FIELD_DOUBLE;
    case RT_DTYPE_U32:
    case RT_DTYPE_U64: return FIELD_UINT64;
    case RT_DTYPE_BYTES: return FIELD_STRING;
    default: return FIELD_INT32; /* 8/16/32-bit integers, BOOL, and F16/BF16 bit patterns */
    }
}

static size_t field_count(const Onnx__TensorProto *tp, typed_field f)
{
    switch (f) {
    case FIELD_FLOAT: return tp->n_float_data;
    case FIELD_INT32: return tp->n_int32_data;
    case FIELD_INT64: return tp->n_int64_data;
    case FIELD_DOUBLE: return tp->n_double_data;
    case FIELD_UINT64: return tp->n_uint64_data;
    case FIELD_STRING: return tp->n_string_data;
    }
    return 0;
}

static rt_status shape_from_dims(const Onnx__TensorProto *tp, size_t elem, rt_shape *shape,
                                 size_t *numel, rt_error *err)
{
    if (tp->n_dims > RT_MAX_RANK)
        return rt_error_set(err, RT_ERR_UNSUPPORTED, "rank %zu exceeds the maximum of %d",
                            tp->n_dims, RT_MAX_RANK);
    shape->rank = (int)tp->n_dims;
    int64_t bound = MAX_TENSOR_BYTES / (int64_t)elem, nonzero = 1;
    bool empty = false;
    for (size_t i = 0; i < tp->n_dims; i++) {
        int64_t d = tp->dims[i];
        if (d < 0)
            return rt_error_set(err, RT_ERR_PARSE, "dimension %zu is negative (%lld)", i,
                                (long long)d);
        if (d > bound / nonzero)
            return rt_error_set(err, RT_ERR_UNSUPPORTED, "tensor is too large");
        shape->dims[i] = d;
        nonzero *= d ? d : 1;
        empty |= d == 0;
    }
    *numel = empty ? 0 : (size_t)nonzero;
    return RT_OK;
}

/* Copies element i of the typed field f into element i of t. */
static void store_typed(rt_tensor *t, const Onnx__TensorProto *tp, typed_field f, size_t i)
{
    switch (f) {
    case FIELD_FLOAT: ((float *)t->data)[i] = tp->float_data[i]; break;
    case FIELD_INT64: ((int64_t *)t->data)[i] = tp->int64_data[i]; break;
    case FIELD_DOUBLE: ((double *)t->data)[i] = tp->double_data[i]; break;
    case FIELD_UINT64: rt_dtype_store_i64(t->dtype, t->data, i, (int64_t)tp->uint64_data[i]); break;
    case FIELD_INT32:
        if (t->dtype == RT_DTYPE_F16 || t->dtype == RT_DTYPE_BF16)
            ((uint16_t *)t->data)[i] = (uint16_t)tp->int32_data[i];
        else
            rt_dtype_store_i64(t->dtype, t->data, i, tp->int32_data[i]);
        break;
    case FIELD_STRING: break; /* copied as a whole by rt_tensor_set_strings */
    }
}

static rt_status copy_strings(rt_tensor *t, const Onnx__TensorProto *tp, rt_error *err)
{
    rt_str *strs = malloc((tp->n_string_data ? tp->n_string_data : 1) * sizeof *strs);
    if (!strs)
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory for %zu strings",
                            tp->n_string_data);
    for (size_t i = 0; i < tp->n_string_data; i++)
        strs[i] = (rt_str){(const char *)tp->string_data[i].data, tp->string_data[i].len};
    rt_status st = rt_tensor_set_strings(t, strs, tp->n_string_data, err);
    free(strs);
    return st;
}

/* Tensor from the data stored in the proto itself (raw_data or a typed field). */
static rt_tensor *load_inline(const Onnx__TensorProto *tp, rt_dtype dt, const rt_shape *shape,
                              size_t numel, rt_error *err)
{
    size_t nbytes = numel * rt_dtype_size(dt);
    typed_field f = field_for(dt);
    if (tp->has_raw_data) {
        if (dt == RT_DTYPE_BYTES) {
            rt_error_set(err, RT_ERR_PARSE, "STRING tensor stored in raw_data");
            return NULL;
        }
        if (tp->raw_data.len != nbytes) {
            rt_error_set(err, RT_ERR_PARSE, "raw_data has %zu bytes, dims need %zu",
                         tp->raw_data.len, nbytes);
            return NULL;
        }
    } else if (field_count(tp, f) != numel) {
        rt_error_set(err, RT_ERR_PARSE, "%s tensor has %zu values in its typed field, dims need %zu",
                     rt_dtype_name(dt), field_count(tp, f), numel);
        return NULL;
    }
    rt_tensor *t = rt_tensor_create(dt, shape, err);
    if (!t)
        return NULL;
    if (tp->has_raw_data) {
        if (nbytes)
            memcpy(t->data, tp->raw_data.data, nbytes);
        if (dt == RT_DTYPE_BOOL)
            for (size_t i = 0; i < numel; i++)
                ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    } else if (f == FIELD_STRING) {
        if (copy_strings(t, tp, err) != RT_OK) {
            rt_tensor_free(t);
            return NULL;
        }
    } else {
        for (size_t i = 0; i < numel; i++)
            store_typed(t, tp, f, i);
    }
    return t;
}

/* Parses a non-negative decimal integer (the offset/length values of external_data). */
static bool parse_size(const char *s, int64_t *out)
{
    if (!s || *s < '0' || *s > '9')
        return false;
    errno = 0;
    char *end;
    long long v = strtoll(s, &end, 10);
    if (errno || *end)
        return false;
    *out = v;
    return true;
}

/* Opens location under base_dir for reading, refusing paths (symlinks included) that
 * resolve outside base_dir. Returns the fd or -1 with err set. */
static int open_inside(const char *base_dir, const char *loc, rt_error *err)
{
    char *real = rt_path_resolve_inside(base_dir, loc, "external data file", err);
    int fd = -1;
    if (real && (fd = open(real, O_RDONLY | O_CLOEXEC)) < 0)
        rt_error_set(err, RT_ERR_IO, "external data file '%s': %s", loc, strerror(errno));
    free(real);
    return fd;
}

static rt_status read_at(int fd, void *buf, size_t n, int64_t offset, const char *loc,
                         rt_error *err)
{
    for (size_t done = 0; done < n;) {
        ssize_t r = pread(fd, (char *)buf + done, n - done, (off_t)(offset + (int64_t)done));
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return rt_error_set(err, RT_ERR_IO, "reading external data file '%s': %s", loc,
                                r < 0 ? strerror(errno) : "unexpected end of file");
        done += (size_t)r;
    }
    return RT_OK;
}

/* Tensor whose bytes live in a file next to the model (external_data keys location,
 * offset, length; raw little-endian layout like raw_data). */
static rt_tensor *load_external(const Onnx__TensorProto *tp, const char *base_dir,
                                rt_dtype dt, const rt_shape *shape, size_t numel,
                                rt_error *err)
{
    const char *loc = NULL;
    int64_t offset = 0, length = -1;
    for (size_t i = 0; i < tp->n_external_data; i++) {
        const char *k = tp->external_data[i]->key, *v = tp->external_data[i]->value;
        if (!k)
            continue;
        if (strcmp(k, "location") == 0) {
            loc = v;
        } else if ((strcmp(k, "offset") == 0 && !parse_size(v, &offset)) ||
                   (strcmp(k, "length") == 0 && !parse_size(v, &length))) {
            rt_error_set(err, RT_ERR_PARSE, "external data %s '%s' is not a byte count", k,
                         v ? v : "");
            return NULL;
        }
    }
    if (!loc) {
        rt_error_set(err, RT_ERR_PARSE, "external data has no location");
        return NULL;
    }
    if (dt == RT_DTYPE_BYTES) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "STRING tensors cannot use external data");
        return NULL;
    }
    if (!base_dir) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "external data ('%s') needs a model directory",
                     loc);
        return NULL;
    }
    int fd = open_inside(base_dir, loc, err);
    if (fd < 0)
        return NULL;
    rt_tensor *t = NULL;
    size_t nbytes = numel * rt_dtype_size(dt);
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        rt_error_set(err, RT_ERR_IO, "external data file '%s' is not a regular file", loc);
    } else if (offset > st.st_size || (length >= 0 && length > st.st_size - offset)) {
        rt_error_set(err, RT_ERR_PARSE, "external data range (offset %lld, length %lld) "
                     "exceeds file '%s' of %lld bytes", (long long)offset, (long long)length,
                     loc, (long long)st.st_size);
    } else if ((length >= 0 ? length : st.st_size - offset) != (int64_t)nbytes) {
        rt_error_set(err, RT_ERR_PARSE, "external data '%s' has %lld bytes, dims need %zu",
                     loc, (long long)(length >= 0 ? length : st.st_size - offset), nbytes);
    } else if ((t = rt_tensor_create(dt, shape, err)) &&
               read_at(fd, t->data, nbytes, offset, loc, err) != RT_OK) {
        rt_tensor_free(t);
        t = NULL;
    }
    close(fd);
    if (t && dt == RT_DTYPE_BOOL)
        for (size_t i = 0; i < numel; i++)
            ((uint8_t *)t->data)[i] = ((uint8_t *)t->data)[i] != 0;
    return t;
}

rt_tensor *rt_tensorproto_to_tensor(const Onnx__TensorProto *tp, const char *base_dir,
                                    rt_error *err)
{
    if (tp->segment) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "segmented tensors are not supported");
        return NULL;
    }
    if (!rt_dtype_valid(tp->data_type)) {
        rt_error_set(err, RT_ERR_UNSUPPORTED, "data type %d is not supported", tp->data_type);
        return NULL;
    }
    rt_dtype dt = (rt_dtype)tp->data_type;
    rt_shape shape;
    size_t numel = 0;
    if (shape_from_dims(tp, rt_dtype_size(dt), &shape, &numel, err) != RT_OK)
        return NULL;
    if (tp->has_data_location && tp->data_location == ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL)
        return load_external(tp, base_dir, dt, &shape, numel, err);
    return load_inline(tp, dt, &shape, numel, err);
}

rt_tensor *rt_tensorproto_decode(const void *data, size_t size, char **name_out, rt_error *err)
{
    if (name_out)
        *name_out = NULL;
    Onnx__TensorProto *tp = (Onnx__TensorProto *)rt_pb_unpack(
        &onnx__tensor_proto__descriptor, data, size, "TensorProto", err);
    if (!tp)
        return NULL;
    rt_tensor *t = rt_tensorproto_to_tensor(tp, NULL, err);
    if (t && name_out && !(*name_out = strdup(tp->name ? tp->name : ""))) {
        rt_tensor_free(t);
        t = NULL;
        rt_error_set(err, RT_ERR_NOMEM, "out of memory");
    }
    onnx__tensor_proto__free_unpacked(tp, NULL);
    return t;
}

rt_tensor *rt_tensorproto_read_file(const char *path, char **name_out, rt_error *err)
{
    size_t size;
    const void *data = rt_file_map(path, &size, err);
    if (!data) {
        if (name_out)
            *name_out = NULL;
        return NULL;
    }
    rt_tensor *t = rt_tensorproto_decode(data, size, name_out, err);
    if (!t)
        rt_error_prefix(err, "%s: ", path);
    rt_file_unmap(data, size);
    return t;
}

static rt_status write_all(const char *path, const void *buf, size_t n, rt_error *err)
{
    FILE *f = fopen(path, "wb");
    if (!f)
        return rt_error_set(err, RT_ERR_IO, "cannot create '%s': %s", path, strerror(errno));
    bool ok = fwrite(buf, 1, n, f) == n;
    ok &= fclose(f) == 0;
    return ok ? RT_OK : rt_error_set(err, RT_ERR_IO, "writing '%s' failed", path);
}

rt_status rt_tensorproto_write_file(const char *path, const rt_tensor *t, const char *name,
                                    rt_error *err)
{
    if (t->device != RT_DEVICE_HOST || !rt_dtype_valid(t->dtype) || t->shape.rank < 0 ||
        t->shape.rank > RT_MAX_RANK || rt_tensor_numel(t) < 0)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "cannot write a %s %s tensor of rank %d",
                            t->device == RT_DEVICE_HOST ? "host" : "device",
                            rt_dtype_name(t->dtype), t->shape.rank);
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    int64_t dims[RT_MAX_RANK];
    memcpy(dims, t->shape.dims, sizeof dims);
    tp.n_dims = (size_t)t->shape.rank;
    tp.dims = dims;
    tp.has_data_type = 1;
    tp.data_type = (int32_t)t->dtype;
    tp.name = (char *)(name ? name : "");
    size_t numel = (size_t)rt_tensor_numel(t);
    ProtobufCBinaryData *strs = NULL;
    if (t->dtype == RT_DTYPE_BYTES) {
        strs = malloc((numel ? numel : 1) * sizeof *strs);
        if (!strs)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory");
        const rt_str *src = t->data;
        for (size_t i = 0; i < numel; i++)
            strs[i] = (ProtobufCBinaryData){src[i].len, (uint8_t *)src[i].ptr};
        tp.n_string_data = numel;
        tp.string_data = strs;
    } else {
        tp.has_raw_data = 1;
        tp.raw_data = (ProtobufCBinaryData){rt_tensor_nbytes(t), t->data};
    }
    size_t n = onnx__tensor_proto__get_packed_size(&tp);
    uint8_t *buf = malloc(n ? n : 1);
    rt_status st;
    if (!buf) {
        st = rt_error_set(err, RT_ERR_NOMEM, "out of memory for %zu bytes", n);
    } else {
        onnx__tensor_proto__pack(&tp, buf);
        st = write_all(path, buf, n, err);
    }
    free(buf);
    free(strs);
    return st;
}
