/* srv_codec.c: KServe v2 request decoding and response encoding (JSON and binary). */
#include "srv_codec.h"

#include <jansson.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "srv_json_arena.h"
#include "srv_types.h"

/* Stack room for a request's JSON document; larger documents spill to malloc. */
#define SRV_JSON_ARENA_BYTES 16384

#define MARK_NAN "\x01NaN"
#define MARK_INF "\x01Inf"
#define MARK_NINF "\x01-Inf"

/* Whether word occurs in text: memchr to each candidate first byte, then a compare. */
static bool contains(const char *text, size_t len, const char *word)
{
    size_t n = strlen(word);
    for (const char *p = text, *end = text + len; (size_t)(end - p) >= n; p++) {
        if (!(p = memchr(p, word[0], (size_t)(end - p) - n + 1)))
            return false;
        if (memcmp(p, word, n) == 0)
            return true;
    }
    return false;
}

char *srv_json_rewrite_nonfinite(const char *text, size_t len, size_t *out_len)
{
    static const struct {
        const char *token, *mark;
    } subs[] = {{"-Infinity", "\"\\u0001-Inf\""}, {"Infinity", "\"\\u0001Inf\""},
                {"NaN", "\"\\u0001NaN\""}};
    /* the usual body has neither token anywhere: a search for each instead of the scan */
    if (!contains(text, len, "NaN") && !contains(text, len, "Infinity"))
        return NULL;
    srv_buf out = {0};
    bool in_string = false, found = false;
    size_t start = 0;
    for (size_t i = 0; i < len; i++) {
        char c = text[i];
        if (in_string) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_string = false;
            continue;
        }
        if (c == '"') {
            in_string = true;
            continue;
        }
        if (c != '-' && c != 'I' && c != 'N') /* no token starts otherwise */
            continue;
        for (size_t k = 0; k < sizeof subs / sizeof subs[0]; k++) {
            size_t n = strlen(subs[k].token);
            if (n <= len - i && memcmp(text + i, subs[k].token, n) == 0) {
                srv_buf_append(&out, text + start, i - start);
                srv_buf_puts(&out, subs[k].mark);
                start = i + n;
                i = start - 1;
                found = true;
                break;
            }
        }
    }
    if (!found) {
        srv_buf_free(&out);
        return NULL;
    }
    srv_buf_append(&out, text + start, len - start);
    return srv_buf_take(&out, out_len);
}

json_t *srv_json_load_lenient(const char *text, size_t len, json_error_t *err)
{
    size_t rewritten_len = 0;
    char *rewritten = srv_json_rewrite_nonfinite(text, len, &rewritten_len);
    json_t *root = rewritten ? json_loadb(rewritten, rewritten_len, JSON_ALLOW_NUL, err)
                             : json_loadb(text, len, JSON_ALLOW_NUL, err);
    free(rewritten);
    return root;
}

char *srv_error_json(const char *msg)
{
    srv_buf b = {0};
    srv_buf_puts(&b, "{\"error\":");
    srv_buf_json_string(&b, msg, strlen(msg));
    srv_buf_puts(&b, "}");
    return srv_buf_take(&b, NULL);
}

/* ---- decoding ---- */

static bool int_range(rt_dtype dt, json_int_t v)
{
    switch (dt) {
    case RT_DTYPE_U8: return v >= 0 && v <= UINT8_MAX;
    case RT_DTYPE_U16: return v >= 0 && v <= UINT16_MAX;
    case RT_DTYPE_U32: return v >= 0 && v <= UINT32_MAX;
    case RT_DTYPE_U64: return v >= 0;
    case RT_DTYPE_I8: return v >= INT8_MIN && v <= INT8_MAX;
    case RT_DTYPE_I16: return v >= INT16_MIN && v <= INT16_MAX;
    case RT_DTYPE_I32: return v >= INT32_MIN && v <= INT32_MAX;
    default: return true;
    }
}

typedef struct flat_ctx {
    const char *name;
    rt_dtype dtype;
    rt_tensor *t;        /* NULL while only counting */
    rt_str *strs;        /* BYTES: element views into the JSON document */
    size_t count;
    srv_request *r;
} flat_ctx;

static bool store_element(flat_ctx *f, json_t *v)
{
    size_t i = f->count;
    const char *what = NULL;
    if (f->dtype == RT_DTYPE_BYTES) {
        if (!json_is_string(v))
            what = "a string";
        else {
            f->strs[i].ptr = json_string_value(v);
            f->strs[i].len = json_string_length(v);
        }
    } else if (f->dtype == RT_DTYPE_BOOL) {
        if (!json_is_boolean(v))
            what = "a boolean";
        else
            ((uint8_t *)f->t->data)[i] = json_is_true(v);
    } else if (rt_dtype_is_integer(f->dtype)) {
        if (!json_is_integer(v))
            what = "an integer";
        else if (!int_range(f->dtype, json_integer_value(v)))
            return srv_request_fail(f->r, 400, SRV_FAIL_OTHER,
                                    "input '%s': element %zu (%lld) is out of range for %s",
                                    f->name, i, (long long)json_integer_value(v),
                                    srv_dtype_kserve_name(f->dtype));
        else
            rt_dtype_store_i64(f->dtype, f->t->data, i, json_integer_value(v));
    } else {
        double x;
        const char *s = json_string_value(v);
        if (json_is_number(v))
            x = json_number_value(v);
        else if (s && strcmp(s, MARK_NAN) == 0)
            x = NAN;
        else if (s && strcmp(s, MARK_INF) == 0)
            x = INFINITY;
        else if (s && strcmp(s, MARK_NINF) == 0)
            x = -INFINITY;
        else
            what = "a number";
        if (!what)
            rt_dtype_store_f64(f->dtype, f->t->data, i, x);
    }
    if (what)
        return srv_request_fail(f->r, 400, SRV_FAIL_OTHER, "input '%s': element %zu is not %s",
                                f->name, i, what);
    return true;
}

/* Walks (possibly nested) data arrays; counts elements, and stores them when f->t is set. */
static bool flatten(flat_ctx *f, json_t *v, int depth)
{
    if (depth > RT_MAX_RANK + 1)
        return srv_request_fail(f->r, 400, SRV_FAIL_OTHER, "input '%s': data nested too deeply",
                                f->name);
    if (json_is_array(v)) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!flatten(f, e, depth + 1))
                return false;
        }
        return true;
    }
    if ((f->t || f->strs) && !store_element(f, v))
        return false;
    f->count++;
    return true;
}

static bool shape_str(const rt_shape *s, char *buf, size_t n)
{
    rt_shape_str(s, buf, n);
    return true;
}

static bool decode_shape(const srv_model_config *cfg, const srv_io *io, json_t *jshape,
                         rt_shape *shape, srv_request *r)
{
    int batched = cfg->max_batch_size > 0;
    if (!json_is_array(jshape) || json_array_size(jshape) > RT_MAX_RANK)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': 'shape' must be an array of at most %d integers",
                                io->name, RT_MAX_RANK);
    shape->rank = (int)json_array_size(jshape);
    for (int d = 0; d < shape->rank; d++) {
        json_t *v = json_array_get(jshape, (size_t)d);
        if (!json_is_integer(v))
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': shape element %d is not an integer", io->name, d);
        if (json_integer_value(v) < 0)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': shape has a negative dimension (%lld)", io->name,
                                    (long long)json_integer_value(v));
        shape->dims[d] = json_integer_value(v);
    }
    bool ok = shape->rank == io->rank + batched;
    for (int d = 0; ok && d < io->rank; d++)
        ok = io->dims[d] < 0 || io->dims[d] == shape->dims[d + batched];
    if (!ok) {
        char got[96], want[96];
        rt_shape expect = {.rank = io->rank + batched};
        if (batched)
            expect.dims[0] = -1;
        memcpy(expect.dims + batched, io->dims, sizeof(int64_t) * (size_t)io->rank);
        shape_str(shape, got, sizeof got);
        shape_str(&expect, want, sizeof want);
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': shape %s does not match the model's %s", io->name,
                                got, want);
    }
    if (batched) {
        if (shape->dims[0] < 1 || shape->dims[0] > cfg->max_batch_size)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': batch size %lld is outside [1, max_batch_size %lld]",
                                    io->name, (long long)shape->dims[0],
                                    (long long)cfg->max_batch_size);
    }
    return true;
}

/* numel with an overflow guard: element counts beyond 2^40 cannot come from a valid body. */
static bool checked_numel(const rt_shape *s, const char *name, int64_t *out, srv_request *r)
{
    int64_t n = 1;
    for (int d = 0; d < s->rank; d++) {
        if (s->dims[d] && n > (INT64_C(1) << 40) / s->dims[d])
            return srv_request_fail(r, 400, SRV_FAIL_OTHER, "input '%s': shape is too large", name);
        n *= s->dims[d];
    }
    *out = n;
    return true;
}

/* BYTES binary: numel elements of 4-byte little-endian length + bytes, exactly filling n.
 * Called with strs NULL to check the data before the tensor is allocated (numel comes from
 * the request and could ask for far more elements than the body holds), then to fill it. */
static bool walk_binary_bytes(const char *name, const unsigned char *p, size_t n, int64_t numel,
                              rt_str *strs, srv_request *r)
{
    size_t off = 0;
    int64_t i = 0;
    for (; off < n && i < numel; i++) {
        if (n - off < 4)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': BYTES element %lld has a truncated length prefix",
                                    name, (long long)i);
        uint32_t l = (uint32_t)p[off] | (uint32_t)p[off + 1] << 8 | (uint32_t)p[off + 2] << 16 |
                     (uint32_t)p[off + 3] << 24;
        off += 4;
        if (l > n - off)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': BYTES element %lld of %u bytes goes past its data",
                                    name, (long long)i, l);
        if (strs)
            strs[i] = (rt_str){(const char *)p + off, l};
        off += l;
    }
    if (i != numel || off != n)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': binary data holds %s BYTES elements than the shape's %lld",
                                name, i < numel ? "fewer" : "more", (long long)numel);
    return true;
}

static bool decode_input(const srv_model_config *cfg, json_t *jin, size_t idx, const char *bin,
                         size_t bin_len, size_t *bin_off, srv_request *r)
{
    if (!json_is_object(jin))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "inputs[%zu] is not an object", idx);
    const char *name = json_string_value(json_object_get(jin, "name"));
    if (!name)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "inputs[%zu] has no string 'name'", idx);
    const srv_io *io = NULL;
    for (int i = 0; i < cfg->n_inputs; i++)
        if (strcmp(cfg->inputs[i].name, name) == 0)
            io = &cfg->inputs[i];
    if (!io)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "unknown input '%s' for model '%s'", name,
                                cfg->name);
    if (r->inputs[io->graph_index])
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "input '%s' given twice", name);
    const char *dtn = json_string_value(json_object_get(jin, "datatype"));
    rt_dtype dt = srv_dtype_from_kserve(dtn);
    if (dt == RT_DTYPE_UNDEFINED)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "input '%s': unknown datatype '%s'", name,
                                dtn ? dtn : "(missing)");
    if (dt != io->dtype)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': datatype %s does not match the model's %s", name, dtn,
                                srv_dtype_kserve_name(io->dtype));
    rt_shape shape;
    int64_t numel = 0;
    json_t *jshape = json_object_get(jin, "shape");
    if (!jshape)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "input '%s' has no 'shape'", name);
    if (!decode_shape(cfg, io, jshape, &shape, r) || !checked_numel(&shape, name, &numel, r))
        return false;
    if (cfg->max_batch_size > 0) {
        if (idx > 0 && shape.dims[0] != r->batch)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': batch size %lld differs from the other inputs' %lld",
                                    name, (long long)shape.dims[0], (long long)r->batch);
        r->batch = shape.dims[0];
    }
    json_t *params = json_object_get(jin, "parameters");
    json_t *jsize = json_object_get(params, "binary_data_size");
    json_t *data = json_object_get(jin, "data");
    size_t esize = rt_dtype_size(dt);
    rt_error err;
    rt_tensor *t = NULL;
    if (jsize) {
        if (!json_is_integer(jsize) || json_integer_value(jsize) < 0)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': binary_data_size must be a non-negative integer",
                                    name);
        if (data)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s' has both 'data' and binary_data_size", name);
        unsigned long long size = (unsigned long long)json_integer_value(jsize);
        if (!bin || size > bin_len - *bin_off)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': binary_data_size %llu goes past the end of the body",
                                    name, size);
        if (dt != RT_DTYPE_BYTES && size != (unsigned long long)numel * esize)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "input '%s': binary_data_size %llu does not match shape %s of %s (%llu bytes)",
                                    name, size, rt_shape_str(&shape, (char[96]){0}, 96), dtn,
                                    (unsigned long long)numel * esize);
        const unsigned char *p = (const unsigned char *)bin + *bin_off;
        if (dt == RT_DTYPE_BYTES && !walk_binary_bytes(name, p, size, numel, NULL, r))
            return false;
        if (!(t = rt_tensor_create(dt, &shape, &err)))
            return srv_request_fail(r, 500, SRV_FAIL_OTHER, "input '%s': %s", name, err.text);
        r->inputs[io->graph_index] = t;
        *bin_off += size;
        if (dt == RT_DTYPE_BYTES) {
            walk_binary_bytes(name, p, size, numel, t->data, r);
            if (rt_tensor_set_strings(t, t->data, (size_t)numel, &err) != RT_OK)
                return srv_request_fail(r, 500, SRV_FAIL_OTHER, "%s", err.text);
            return true;
        }
        memcpy(t->data, p, size);
        return true;
    }
    if (!data)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s' has neither 'data' nor binary_data_size", name);
    if (dt == RT_DTYPE_F16 || dt == RT_DTYPE_BF16)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': datatype %s is only supported as binary data", name, dtn);
    flat_ctx f = {.name = name, .dtype = dt, .r = r};
    if (!flatten(&f, data, 0))
        return false;
    if ((int64_t)f.count != numel)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "input '%s': shape %s has %lld elements but data has %zu", name,
                                rt_shape_str(&shape, (char[96]){0}, 96), (long long)numel, f.count);
    if (!(t = rt_tensor_create(dt, &shape, &err)))
        return srv_request_fail(r, 500, SRV_FAIL_OTHER, "input '%s': %s", name, err.text);
    r->inputs[io->graph_index] = t;
    f.count = 0;
    f.t = t;
    if (dt == RT_DTYPE_BYTES && !(f.strs = calloc((size_t)numel + 1, sizeof *f.strs)))
        return srv_request_fail(r, 500, SRV_FAIL_OTHER, "out of memory");
    bool ok = flatten(&f, data, 0);
    if (ok && dt == RT_DTYPE_BYTES && rt_tensor_set_strings(t, f.strs, (size_t)numel, &err) != RT_OK)
        ok = srv_request_fail(r, 500, SRV_FAIL_OTHER, "%s", err.text);
    free(f.strs);
    return ok;
}

static bool decode_outputs(const srv_model_config *cfg, json_t *root, bool binary_default,
                           srv_request *r)
{
    json_t *outs = json_object_get(root, "outputs");
    if (!outs) {
        r->n_sel = cfg->n_outputs;
        for (int i = 0; i < cfg->n_outputs; i++)
            r->sel[i] = (srv_output_sel){.index = i, .binary = binary_default};
    } else {
        if (!json_is_array(outs))
            return srv_request_fail(r, 400, SRV_FAIL_OTHER, "'outputs' must be an array");
        size_t k;
        json_t *o;
        json_array_foreach(outs, k, o) {
            const char *name = json_string_value(json_object_get(o, "name"));
            if (!name)
                return srv_request_fail(r, 400, SRV_FAIL_OTHER, "outputs[%zu] has no string 'name'", k);
            int idx = -1;
            for (int i = 0; i < cfg->n_outputs; i++)
                if (strcmp(cfg->outputs[i].name, name) == 0)
                    idx = i;
            if (idx < 0)
                return srv_request_fail(r, 400, SRV_FAIL_OTHER, "unknown output '%s' for model '%s'",
                                        name, cfg->name);
            for (int i = 0; i < r->n_sel; i++)
                if (r->sel[i].index == idx)
                    return srv_request_fail(r, 400, SRV_FAIL_OTHER, "output '%s' requested twice",
                                            name);
            json_t *bin = json_object_get(json_object_get(o, "parameters"), "binary_data");
            if (bin && !json_is_boolean(bin))
                return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                        "output '%s': binary_data must be true or false", name);
            r->sel[r->n_sel++] = (srv_output_sel){.index = idx,
                                                  .binary = bin ? json_is_true(bin) : binary_default};
        }
    }
    for (int i = 0; i < r->n_sel; i++) {
        const srv_io *io = &cfg->outputs[r->sel[i].index];
        if (!r->sel[i].binary && (io->dtype == RT_DTYPE_F16 || io->dtype == RT_DTYPE_BF16))
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "output '%s': datatype %s is only supported as binary data",
                                    io->name, srv_dtype_kserve_name(io->dtype));
    }
    return true;
}

static bool decode_root(const srv_model_config *cfg, json_t *root, const char *bin, size_t bin_len,
                        srv_request *r)
{
    if (!json_is_object(root))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "request body must be a JSON object");
    json_t *id = json_object_get(root, "id");
    if (id && !json_is_string(id))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "'id' must be a string");
    if (id && !(r->id = strdup(json_string_value(id))))
        return srv_request_fail(r, 500, SRV_FAIL_OTHER, "out of memory");
    json_t *params = json_object_get(root, "parameters");
    if (params && !json_is_object(params))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "'parameters' must be an object");
    json_t *bdo = json_object_get(params, "binary_data_output");
    if (bdo && !json_is_boolean(bdo))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "binary_data_output must be true or false");
    json_t *timeout = json_object_get(params, "timeout");
    if (timeout && (!json_is_integer(timeout) || json_integer_value(timeout) < 0))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "parameters.timeout must be a non-negative integer (microseconds)");
    /* as in Triton: a request may shorten the queue timeout, never lengthen it, and only
     * where the model allows it (otherwise the parameter is ignored) */
    r->timeout_us = cfg->default_timeout_us;
    if (timeout && cfg->allow_timeout_override && json_integer_value(timeout) > 0 &&
        (!r->timeout_us || json_integer_value(timeout) < r->timeout_us))
        r->timeout_us = json_integer_value(timeout) < SRV_MAX_TIMEOUT_US
                            ? json_integer_value(timeout)
                            : SRV_MAX_TIMEOUT_US;
    json_t *inputs = json_object_get(root, "inputs");
    if (!inputs)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "request has no 'inputs'");
    if (!json_is_array(inputs))
        return srv_request_fail(r, 400, SRV_FAIL_OTHER, "'inputs' must be an array");
    size_t bin_off = 0, i;
    json_t *jin;
    json_array_foreach(inputs, i, jin) {
        if (!decode_input(cfg, jin, i, bin, bin_len, &bin_off, r))
            return false;
    }
    for (int k = 0; k < cfg->n_inputs; k++)
        if (!r->inputs[cfg->inputs[k].graph_index])
            return srv_request_fail(r, 400, SRV_FAIL_OTHER, "missing input '%s' for model '%s'",
                                    cfg->inputs[k].name, cfg->name);
    if (bin && bin_off != bin_len)
        return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                "body has %zu bytes of binary data no input claims", bin_len - bin_off);
    return decode_outputs(cfg, root, bdo && json_is_true(bdo), r);
}

bool srv_request_decode(const srv_model_config *cfg, const char *body, size_t len,
                        long long header_len, srv_request *r)
{
    size_t json_len = len;
    if (header_len >= 0) {
        if ((unsigned long long)header_len > len)
            return srv_request_fail(r, 400, SRV_FAIL_OTHER,
                                    "Inference-Header-Content-Length %lld exceeds the body size %zu",
                                    header_len, len);
        json_len = (size_t)header_len;
    }
    /* the document lives only in this call: small ones are built in an arena on this stack
     * (about a quarter of the decoding's instructions were jansson's mallocs and frees) */
    char block[SRV_JSON_ARENA_BYTES];
    srv_json_arena arena;
    srv_json_arena_open(&arena, block, sizeof block);
    json_error_t jerr;
    json_t *root = srv_json_load_lenient(body, json_len, &jerr);
    bool ok = root != NULL;
    if (!ok)
        srv_request_fail(r, 400, SRV_FAIL_OTHER, "malformed JSON in request body: %s", jerr.text);
    else
        ok = decode_root(cfg, root, header_len >= 0 ? body + json_len : NULL,
                         header_len >= 0 ? len - json_len : 0, r);
    if (arena.overflowed)
        json_decref(root); /* frees what went to malloc; arena blocks free as no-ops */
    srv_json_arena_close(&arena);
    return ok;
}

/* ---- encoding ---- */

static void put_number(srv_buf *b, rt_dtype dt, const void *data, size_t i)
{
    if (dt == RT_DTYPE_BOOL) {
        srv_buf_puts(b, ((const uint8_t *)data)[i] ? "true" : "false");
    } else if (rt_dtype_is_integer(dt)) {
        if (dt == RT_DTYPE_U64)
            srv_buf_put_u64(b, (unsigned long long)((const uint64_t *)data)[i]);
        else
            srv_buf_put_i64(b, (long long)rt_dtype_load_i64(dt, data, i));
    } else {
        double x = rt_dtype_load_f64(dt, data, i);
        if (isnan(x))
            srv_buf_puts(b, "NaN");
        else if (isinf(x))
            srv_buf_puts(b, x > 0 ? "Infinity" : "-Infinity");
        else
            srv_buf_put_real(b, x, dt == RT_DTYPE_F64);
    }
}

static void put_binary(srv_buf *b, const rt_tensor *t)
{
    if (t->dtype != RT_DTYPE_BYTES) {
        srv_buf_append(b, t->data, rt_tensor_nbytes(t));
        return;
    }
    const rt_str *s = t->data;
    for (int64_t i = 0; i < rt_tensor_numel(t); i++) {
        uint32_t l = (uint32_t)s[i].len;
        unsigned char le[4] = {l & 0xff, (l >> 8) & 0xff, (l >> 16) & 0xff, l >> 24};
        srv_buf_append(b, le, 4);
        srv_buf_append(b, s[i].ptr, s[i].len);
    }
}

char *srv_response_encode(const srv_model_config *cfg, const char *version, const srv_request *r,
                          size_t *len, size_t *header_len)
{
    srv_buf js = {0}, bin = {0};
    srv_buf_puts(&js, "{\"model_name\":");
    srv_buf_json_string(&js, cfg->name, strlen(cfg->name));
    srv_buf_puts(&js, ",\"model_version\":");
    srv_buf_json_string(&js, version, strlen(version));
    if (r->id) {
        srv_buf_puts(&js, ",\"id\":");
        srv_buf_json_string(&js, r->id, strlen(r->id));
    }
    srv_buf_puts(&js, ",\"outputs\":[");
    bool any_binary = false;
    for (int k = 0; k < r->n_sel; k++) {
        const srv_io *io = &cfg->outputs[r->sel[k].index];
        const rt_tensor *t = r->outputs[io->graph_index];
        srv_buf_puts(&js, k ? ",{\"name\":" : "{\"name\":");
        srv_buf_json_string(&js, io->name, strlen(io->name));
        srv_buf_puts(&js, ",\"datatype\":\"");
        srv_buf_puts(&js, srv_dtype_kserve_name(t->dtype));
        srv_buf_puts(&js, "\",\"shape\":[");
        for (int d = 0; d < t->shape.rank; d++) {
            if (d)
                srv_buf_append(&js, ",", 1);
            srv_buf_put_i64(&js, (long long)t->shape.dims[d]);
        }
        srv_buf_puts(&js, "]");
        if (r->sel[k].binary) {
            size_t before = bin.len;
            put_binary(&bin, t);
            srv_buf_printf(&js, ",\"parameters\":{\"binary_data_size\":%zu}}", bin.len - before);
            any_binary = true;
            continue;
        }
        srv_buf_puts(&js, ",\"data\":[");
        int64_t n = rt_tensor_numel(t);
        for (int64_t i = 0; i < n; i++) {
            if (i)
                srv_buf_append(&js, ",", 1);
            if (t->dtype == RT_DTYPE_BYTES) {
                const rt_str *s = &((const rt_str *)t->data)[i];
                srv_buf_json_string(&js, s->ptr, s->len);
            } else {
                put_number(&js, t->dtype, t->data, (size_t)i);
            }
        }
        srv_buf_puts(&js, "]}");
    }
    srv_buf_puts(&js, "]}");
    *header_len = any_binary ? js.len : 0;
    if (any_binary)
        srv_buf_append(&js, bin.data, bin.len);
    srv_buf_free(&bin);
    return srv_buf_take(&js, len);
}
