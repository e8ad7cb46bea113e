/* test_srv_codec.c: KServe request decoding (JSON and binary) with every bad input and its
 * status and message, response encoding, and the NaN/Infinity rewrite. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_codec.h"

static srv_model_config cfg;

/* add model: INPUT0/INPUT1 FP32 [-1,4] (max_batch_size 8), OUTPUT0 FP32; bytes model; u8 model */
static void make_config(const char *json, const char *name)
{
    json_error_t jerr;
    json_t *root = json_loads(json, 0, &jerr);
    assert_non_null(root);
    rt_error err;
    assert_int_equal(srv_model_config_parse(&cfg, root, name, &err), RT_OK);
    json_decref(root);
    for (int i = 0; i < cfg.n_inputs; i++)
        cfg.inputs[i].graph_index = i;
    for (int i = 0; i < cfg.n_outputs; i++)
        cfg.outputs[i].graph_index = i;
}

static int setup_add(void **state)
{
    (void)state;
    make_config("{\"max_batch_size\": 8, \"input\": ["
                "{\"name\": \"INPUT0\", \"data_type\": \"TYPE_FP32\", \"dims\": [4]},"
                "{\"name\": \"INPUT1\", \"data_type\": \"TYPE_FP32\", \"dims\": [\"4\"]}],"
                "\"output\": [{\"name\": \"OUTPUT0\", \"data_type\": \"TYPE_FP32\", \"dims\": [4]},"
                "{\"name\": \"HALF\", \"data_type\": \"TYPE_FP16\", \"dims\": [4]}]}",
                "add");
    return 0;
}

static int setup_bytes(void **state)
{
    (void)state;
    make_config("{\"max_batch_size\": 0, \"input\": ["
                "{\"name\": \"S\", \"data_type\": \"TYPE_STRING\", \"dims\": [-1]},"
                "{\"name\": \"U\", \"data_type\": \"TYPE_UINT8\", \"dims\": [2]}],"
                "\"output\": [{\"name\": \"S\", \"data_type\": \"TYPE_STRING\", \"dims\": [-1]}]}",
                "bytes");
    return 0;
}

static int teardown(void **state)
{
    (void)state;
    srv_model_config_free(&cfg);
    return 0;
}

static srv_request *decode(const char *body, size_t len, long long header_len)
{
    srv_request *r = srv_request_create(cfg.n_inputs, cfg.n_outputs);
    assert_non_null(r);
    srv_request_decode(&cfg, body, len, header_len, r);
    return r;
}

static void expect_bad(const char *body, int status, const char *needle)
{
    srv_request *r = decode(body, strlen(body), -1);
    if (r->status != status || !strstr(r->error, needle))
        fail_msg("body %s: got %d '%s', want %d '%s'", body, r->status, r->error, status, needle);
    srv_request_free(r);
}

#define IN0(shape, data) "{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":" shape ",\"data\":" data "}"
#define IN1 "{\"name\":\"INPUT1\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,1,1,1]}"

static void test_json_ok(void **state)
{
    (void)state;
    const char *body = "{\"id\":\"x\",\"inputs\":[" IN0("[2,4]", "[[1,2,3,4],[5,6,7,NaN]]") ","
                       "{\"name\":\"INPUT1\",\"datatype\":\"FP32\",\"shape\":[2,4],\"data\":[0,0,0,0,0,0,0,-Infinity]}],"
                       "\"outputs\":[{\"name\":\"OUTPUT0\"}]}";
    srv_request *r = decode(body, strlen(body), -1);
    assert_string_equal(r->error, "");
    assert_int_equal(r->status, 200);
    assert_string_equal(r->id, "x");
    assert_int_equal(r->batch, 2);
    const float *a = r->inputs[0]->data, *b = r->inputs[1]->data;
    assert_true(a[0] == 1.0f && a[6] == 7.0f && isnan(a[7]));
    assert_true(isinf(b[7]) && b[7] < 0);
    assert_int_equal(r->n_sel, 1); /* JSON unless asked */
    assert_false(r->sel[0].binary);
    srv_request_free(r);
}

static void test_json_errors(void **state)
{
    (void)state;
    expect_bad("{bad", 400, "malformed JSON");
    expect_bad("[]", 400, "must be a JSON object");
    expect_bad("{}", 400, "no 'inputs'");
    expect_bad("{\"inputs\":{}}", 400, "'inputs' must be an array");
    expect_bad("{\"inputs\":[{\"name\":\"NOPE\",\"datatype\":\"FP32\",\"shape\":[1,4],\"data\":[1,2,3,4]}]}",
               400, "unknown input 'NOPE'");
    expect_bad("{\"inputs\":[" IN1 "]}", 400, "missing input 'INPUT0'");
    expect_bad("{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"INT8\",\"shape\":[1,4],\"data\":[1,2,3,4]}," IN1 "]}",
               400, "datatype INT8 does not match the model's FP32");
    expect_bad("{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FLOAT\",\"shape\":[1,4],\"data\":[1,2,3,4]}," IN1 "]}",
               400, "unknown datatype 'FLOAT'");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3]") "," IN1 "]}", 400, "has 4 elements but data has 3");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3,4,5]") "," IN1 "]}", 400, "has 4 elements but data has 5");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,\"a\",3,4]") "," IN1 "]}", 400, "element 1 is not a number");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,true,3,4]") "," IN1 "]}", 400, "element 1 is not a number");
    expect_bad("{\"inputs\":[" IN0("[-1,4]", "[1,2,3,4]") "," IN1 "]}", 400, "negative dimension");
    expect_bad("{\"inputs\":[" IN0("[1,5]", "[1,2,3,4,5]") "," IN1 "]}", 400, "does not match the model's [-1,4]");
    expect_bad("{\"inputs\":[" IN0("[4]", "[1,2,3,4]") "," IN1 "]}", 400, "does not match the model's [-1,4]");
    expect_bad("{\"inputs\":[" IN0("[9,4]", "[0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0,0]") "," IN1 "]}",
               400, "max_batch_size 8");
    expect_bad("{\"inputs\":[" IN0("[2,4]", "[1,2,3,4,5,6,7,8]") "," IN1 "]}", 400, "differs from the other inputs");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3,4]") "," IN0("[1,4]", "[1,2,3,4]") "]}", 400, "given twice");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3,4]") "," IN1 "],\"outputs\":[{\"name\":\"X\"}]}", 400,
               "unknown output 'X'");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3,4]") "," IN1 "],\"outputs\":[{\"name\":\"HALF\"}]}", 400,
               "FP16 is only supported as binary data");
    expect_bad("{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,4]}," IN1 "]}", 400,
               "neither 'data' nor binary_data_size");
    expect_bad("{\"inputs\":[" IN0("[1,4]", "[1,2,3,4]") "," IN1 "],\"parameters\":{\"timeout\":-5}}", 400,
               "parameters.timeout");
}

static void test_binary(void **state)
{
    (void)state;
    const char *hdr = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,4],"
                      "\"parameters\":{\"binary_data_size\":16}},{\"name\":\"INPUT1\",\"datatype\":"
                      "\"FP32\",\"shape\":[1,4],\"parameters\":{\"binary_data_size\":16}}],"
                      "\"parameters\":{\"binary_data_output\":true}}";
    size_t hl = strlen(hdr);
    char body[512];
    float vals[8] = {1, 2, 3, 4, INFINITY, 6, 7, 8};
    memcpy(body, hdr, hl);
    memcpy(body + hl, vals, sizeof vals);
    srv_request *r = decode(body, hl + sizeof vals, (long long)hl);
    assert_int_equal(r->status, 200);
    assert_memory_equal(r->inputs[1]->data, vals + 4, 16);
    assert_true(r->sel[0].binary);
    srv_request_free(r);
    /* 8 bytes short */
    r = decode(body, hl + sizeof vals - 8, (long long)hl);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->error, "binary_data_size 16 goes past the end of the body"));
    srv_request_free(r);
    /* extra bytes nobody claims */
    r = decode(body, hl + sizeof vals, (long long)hl - 0);
    srv_request_free(r);
    memcpy(body + hl + sizeof vals, "zz", 2);
    r = decode(body, hl + sizeof vals + 2, (long long)hl);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->error, "no input claims"));
    srv_request_free(r);
    /* header length beyond the body */
    r = decode(body, 10, 100);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->error, "exceeds the body size"));
    srv_request_free(r);
}

static void test_binary_size_mismatch(void **state)
{
    (void)state;
    const char *hdr = "{\"inputs\":[{\"name\":\"INPUT0\",\"datatype\":\"FP32\",\"shape\":[1,4],"
                      "\"parameters\":{\"binary_data_size\":12}}," IN1 "]}";
    char body[512];
    size_t hl = strlen(hdr);
    memcpy(body, hdr, hl);
    memset(body + hl, 0, 12);
    srv_request *r = decode(body, hl + 12, (long long)hl);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->error, "does not match shape"));
    srv_request_free(r);
}

/* A JSON document too large for the decoder's arena (it spills to malloc) decodes the same. */
static void test_large_json_document(void **state)
{
    (void)state;
    size_t n = 3000;
    char *body = malloc(n * 16 + 256), *w = body;
    w += sprintf(w, "{\"inputs\":[{\"name\":\"S\",\"datatype\":\"BYTES\",\"shape\":[%zu],"
                    "\"data\":[", n);
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s\"e%zu\"", i ? "," : "", i);
    w += sprintf(w, "]},{\"name\":\"U\",\"datatype\":\"UINT8\",\"shape\":[2],\"data\":[4,5]}]}");
    srv_request *r = decode(body, (size_t)(w - body), -1);
    assert_int_equal(r->status, 200);
    const rt_str *s = r->inputs[0]->data;
    assert_int_equal(rt_tensor_numel(r->inputs[0]), n);
    assert_int_equal(s[n - 1].len, 5);
    assert_memory_equal(s[n - 1].ptr, "e2999", 5);
    assert_int_equal(((const uint8_t *)r->inputs[1]->data)[1], 5);
    srv_request_free(r);
    free(body);
}

static void test_bytes_json_binary_and_encode(void **state)
{
    (void)state;
    /* JSON strings for S, binary for U (uint8 range checked in JSON) */
    expect_bad("{\"inputs\":[{\"name\":\"S\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[\"a\"]},"
               "{\"name\":\"U\",\"datatype\":\"UINT8\",\"shape\":[2],\"data\":[1,300]}]}",
               400, "out of range for UINT8");
    expect_bad("{\"inputs\":[{\"name\":\"S\",\"datatype\":\"BYTES\",\"shape\":[1],\"data\":[5]},"
               "{\"name\":\"U\",\"datatype\":\"UINT8\",\"shape\":[2],\"data\":[1,3]}]}",
               400, "element 0 is not a string");
    const char *hdr = "{\"inputs\":[{\"name\":\"S\",\"datatype\":\"BYTES\",\"shape\":[2],"
                      "\"parameters\":{\"binary_data_size\":11}},{\"name\":\"U\",\"datatype\":"
                      "\"UINT8\",\"shape\":[2],\"data\":[1,255]}],"
                      "\"outputs\":[{\"name\":\"S\",\"parameters\":{\"binary_data\":false}}]}";
    size_t hl = strlen(hdr);
    char body[512];
    memcpy(body, hdr, hl);
    memcpy(body + hl, "\x03\0\0\0a\"c\0\0\0\0", 11);
    srv_request *r = decode(body, hl + 11, (long long)hl);
    assert_int_equal(r->status, 200);
    const rt_str *s = r->inputs[0]->data;
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "a\"c", 3);
    assert_int_equal(s[1].len, 0);
    /* echo S back as JSON */
    r->outputs[0] = rt_tensor_clone(r->inputs[0], NULL);
    size_t len, header_len;
    char *out = srv_response_encode(&cfg, "1", r, &len, &header_len);
    assert_int_equal(header_len, 0);
    assert_string_equal(out, "{\"model_name\":\"bytes\",\"model_version\":\"1\",\"outputs\":[{\"name\":"
                             "\"S\",\"datatype\":\"BYTES\",\"shape\":[2],\"data\":[\"a\\\"c\",\"\"]}]}");
    free(out);
    /* and as binary */
    r->sel[0].binary = true;
    out = srv_response_encode(&cfg, "1", r, &len, &header_len);
    assert_true(header_len > 0 && len == header_len + 11);
    assert_memory_equal(out + header_len, "\x03\0\0\0a\"c\0\0\0\0", 11);
    assert_non_null(strstr(out, "\"binary_data_size\":11"));
    free(out);
    srv_request_free(r);
    /* truncated element */
    memcpy(body + hl, "\x09\0\0\0abcdefg", 11);
    r = decode(body, hl + 11, (long long)hl);
    assert_int_equal(r->status, 400);
    assert_non_null(strstr(r->error, "goes past its data"));
    srv_request_free(r);
}

static void test_nonfinite_rewrite(void **state)
{
    (void)state;
    const char *in = "[NaN, \"NaN in a string\", -Infinity, Infinity]";
    size_t out_len = 0;
    char *out = srv_json_rewrite_nonfinite(in, strlen(in), &out_len);
    assert_int_equal(out_len, strlen(out));
    assert_string_equal(out, "[\"\\u0001NaN\", \"NaN in a string\", \"\\u0001-Inf\", \"\\u0001Inf\"]");
    free(out);
    assert_null(srv_json_rewrite_nonfinite("[1, \"Infinity\"]", 15, NULL));
    char *e = srv_error_json("bad \"x\"\n");
    assert_string_equal(e, "{\"error\":\"bad \\\"x\\\"\\u000a\"}");
    free(e);
}

/* parameters.timeout shortens the queue timeout only where allow_timeout_override is set */
static void test_timeout_override(void **state)
{
    (void)state;
    const char *cfgs[2] = {
        "{\"max_batch_size\": 8, \"dynamic_batching\": {\"default_queue_policy\":"
        " {\"default_timeout_microseconds\": 5000}}, \"input\": [{\"name\": \"INPUT0\","
        " \"data_type\": \"TYPE_FP32\", \"dims\": [4]}], \"output\": [{\"name\": \"O\","
        " \"data_type\": \"TYPE_FP32\", \"dims\": [4]}]}",
        "{\"max_batch_size\": 8, \"dynamic_batching\": {\"default_queue_policy\":"
        " {\"default_timeout_microseconds\": 5000, \"allow_timeout_override\": true}},"
        " \"input\": [{\"name\": \"INPUT0\", \"data_type\": \"TYPE_FP32\", \"dims\": [4]}],"
        " \"output\": [{\"name\": \"O\", \"data_type\": \"TYPE_FP32\", \"dims\": [4]}]}"};
    /* requested timeout -> expected (not allowed, allowed) */
    const struct { long long asked, no, yes; } cases[] = {
        {100, 5000, 100}, {9000, 5000, 5000}, {0, 5000, 5000}};
    for (int c = 0; c < 2; c++) {
        make_config(cfgs[c], "t");
        for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
            char body[256];
            snprintf(body, sizeof body, "{\"parameters\":{\"timeout\":%lld},\"inputs\":["
                     IN0("[1,4]", "[1,2,3,4]") "]}", cases[k].asked);
            srv_request *r = decode(body, strlen(body), -1);
            assert_int_equal(r->status, 200);
            assert_int_equal(r->timeout_us, c ? cases[k].yes : cases[k].no);
            srv_request_free(r);
        }
        srv_model_config_free(&cfg);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_json_ok, setup_add, teardown),
        cmocka_unit_test_setup_teardown(test_json_errors, setup_add, teardown),
        cmocka_unit_test_setup_teardown(test_binary, setup_add, teardown),
        cmocka_unit_test_setup_teardown(test_binary_size_mismatch, setup_add, teardown),
        cmocka_unit_test_setup_teardown(test_bytes_json_binary_and_encode, setup_bytes, teardown),
        cmocka_unit_test_setup_teardown(test_large_json_document, setup_bytes, teardown),
        cmocka_unit_test(test_nonfinite_rewrite),
        cmocka_unit_test(test_timeout_override),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
