/* fuzz_request.c: libFuzzer harness for the KServe v2 request decoder (JSON and the binary
 * tensor data extension) against fixed model descriptions, and for the response encoder on
 * whatever decodes. Every input must decode or fail with a 4xx/5xx and a message, never
 * crash or leak; the error body must be valid JSON; an encoded response must parse again
 * with our own reader and its binary part must add up to the binary_data_size values it
 * declares.
 *
 * Input layout: byte 0 picks the model (mod N_MODELS); bytes 1-2 (little-endian) are the
 * Inference-Header-Content-Length, 0xffff meaning the header is absent; the rest is the
 * body. Seeds: tests/fuzz/corpus_request/. */
#include <jansson.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "srv_codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define IO(n, t, r, ...) {.name = n, .dtype = t, .rank = r, .dims = {__VA_ARGS__}}

/* batched: the dims leave out the batch dimension */
static srv_io batched_in[] = {
    IO("F", RT_DTYPE_F32, 1, 2), IO("S", RT_DTYPE_BYTES, 1, -1),
    IO("I", RT_DTYPE_I64, 2, -1, 2), IO("H", RT_DTYPE_F16, 1, 2),
};
static srv_io batched_out[] = {
    IO("OF", RT_DTYPE_F32, 1, 2), IO("OS", RT_DTYPE_BYTES, 1, -1),
    IO("OI", RT_DTYPE_I64, 2, -1, 2), IO("OH", RT_DTYPE_F16, 1, 2),
};
/* every other KServe datatype, no batch dimension */
static srv_io plain_in[] = {
    IO("B", RT_DTYPE_BOOL, 2, 2, -1), IO("U8", RT_DTYPE_U8, 1, -1),
    IO("I8", RT_DTYPE_I8, 1, 3), IO("U16", RT_DTYPE_U16, 1, -1),
    IO("I16", RT_DTYPE_I16, 0, 0), IO("U32", RT_DTYPE_U32, 1, -1),
    IO("I32", RT_DTYPE_I32, 1, -1), IO("U64", RT_DTYPE_U64, 1, -1),
    IO("D", RT_DTYPE_F64, 1, -1), IO("BF", RT_DTYPE_BF16, 1, -1),
};
static srv_io plain_out[] = {
    IO("OB", RT_DTYPE_BOOL, 2, 2, -1), IO("OU8", RT_DTYPE_U8, 1, -1),
    IO("OI8", RT_DTYPE_I8, 1, 3), IO("OU16", RT_DTYPE_U16, 1, -1),
    IO("OI16", RT_DTYPE_I16, 0, 0), IO("OU32", RT_DTYPE_U32, 1, -1),
    IO("OI32", RT_DTYPE_I32, 1, -1), IO("OU64", RT_DTYPE_U64, 1, -1),
    IO("OD", RT_DTYPE_F64, 1, -1), IO("OBF", RT_DTYPE_BF16, 1, -1),
};
/* the trivial model of the benchmarks */
static srv_io single_in[] = {IO("x", RT_DTYPE_F32, 1, -1)};
static srv_io single_out[] = {IO("y", RT_DTYPE_F32, 1, -1)};

#define N_OF(a) ((int)(sizeof a / sizeof a[0]))
static srv_model_config models[] = {
    {.name = "batched", .max_batch_size = 4, .default_timeout_us = 1000,
     .n_inputs = N_OF(batched_in), .inputs = batched_in,
     .n_outputs = N_OF(batched_out), .outputs = batched_out},
    {.name = "plain", .n_inputs = N_OF(plain_in), .inputs = plain_in,
     .n_outputs = N_OF(plain_out), .outputs = plain_out},
    {.name = "single", .max_batch_size = 8, .n_inputs = N_OF(single_in), .inputs = single_in,
     .n_outputs = N_OF(single_out), .outputs = single_out},
};
#define N_MODELS N_OF(models)

/* Graph order is the reverse of the config's, so that a mix-up of the two indexes shows. */
static void set_graph_indexes(void)
{
    for (int m = 0; m < N_MODELS; m++) {
        for (int i = 0; i < models[m].n_inputs; i++)
            models[m].inputs[i].graph_index = models[m].n_inputs - 1 - i;
        for (int i = 0; i < models[m].n_outputs; i++)
            models[m].outputs[i].graph_index = models[m].n_outputs - 1 - i;
    }
}

/* Encodes the decoded request with each output a copy of the input in its position (same
 * dtype by construction), then reads the response back. */
static void check_encode(const srv_model_config *cfg, srv_request *r)
{
    rt_error err;
    for (int i = 0; i < cfg->n_outputs; i++) {
        const rt_tensor *in = r->inputs[cfg->inputs[i].graph_index];
        if (!(r->outputs[cfg->outputs[i].graph_index] = rt_tensor_clone(in, &err)))
            abort();
    }
    size_t len, header_len;
    char *body = srv_response_encode(cfg, "1", r, &len, &header_len);
    if (!body)
        abort();
    size_t json_len = header_len ? header_len : len;
    json_error_t jerr;
    json_t *root = srv_json_load_lenient(body, json_len, &jerr);
    if (!root)
        abort(); /* the response is not JSON our own reader accepts */
    size_t binary = 0, k;
    json_t *o;
    json_array_foreach(json_object_get(root, "outputs"), k, o) {
        json_t *bs = json_object_get(json_object_get(o, "parameters"), "binary_data_size");
        binary += bs ? (size_t)json_integer_value(bs) : 0;
    }
    if (json_len + binary != len || json_array_size(json_object_get(root, "outputs")) != (size_t)r->n_sel)
        abort();
    json_decref(root);
    free(body);
}

/* The error body must be JSON even when the message quotes (or was cut inside) text
 * from the request. */
static void check_error(const char *msg)
{
    char *body = srv_error_json(msg);
    json_error_t jerr;
    json_t *root = body ? json_loads(body, 0, &jerr) : NULL;
    if (!json_is_string(json_object_get(root, "error")))
        abort();
    json_decref(root);
    free(body);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static int once;
    if (!once++)
        set_graph_indexes();
    if (size < 3)
        return 0;
    const srv_model_config *cfg = &models[data[0] % N_MODELS];
    unsigned hl = data[1] | (unsigned)data[2] << 8;
    srv_request *r = srv_request_create(cfg->n_inputs, cfg->n_outputs);
    if (!r)
        return 0;
    bool ok = srv_request_decode(cfg, (const char *)data + 3, size - 3,
                                 hl == 0xffff ? -1 : (long long)hl, r);
    if (!ok && (r->status < 400 || r->status > 599 || !r->error[0]))
        abort(); /* a failure must carry an HTTP error status and a message */
    if (!ok)
        check_error(r->error);
    if (ok)
        check_encode(cfg, r);
    srv_request_free(r);
    return 0;
}
