/* test_onnx.c: unit tests for the ONNX loader and TensorProto files: real node-test
 * models, hand-built models (initializers in every storage form, external data and its
 * path checks, unsupported constructs), hostile bytes, and TensorProto round trips. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "onnx.pb-c.h"
#include "rt_onnx.h"

#define NODE_DIR "/usr/share/libonnx-testdata/data/node/"

static rt_graph *load_node_test(const char *test)
{
    char path[256];
    snprintf(path, sizeof path, NODE_DIR "%s/model.onnx", test);
    rt_error err = {0};
    rt_graph *g = rt_onnx_load_file(path, &err);
    if (!g)
        fail_msg("%s: %s", test, err.text);
    return g;
}

static const rt_value *value_named(const rt_graph *g, const char *name)
{
    int v = rt_graph_find_value(g, name);
    assert_true(v >= 0);
    return &g->values[v];
}

static void assert_shape(const rt_shape *s, int rank, const int64_t *dims)
{
    assert_int_equal(s->rank, rank);
    for (int i = 0; i < rank; i++)
        assert_int_equal(s->dims[i], dims[i]);
}

static void assert_ints(const rt_node *n, const char *name, int count, const int64_t *want)
{
    int got_n;
    const int64_t *got = rt_node_attr_ints(n, name, &got_n);
    assert_non_null(got);
    assert_int_equal(got_n, count);
    for (int i = 0; i < count; i++)
        assert_int_equal(got[i], want[i]);
}

static void test_conv_model(void **state)
{
    (void)state;
    rt_graph *g = load_node_test("test_conv_with_strides_padding");
    assert_int_equal(g->opset, 11);
    assert_int_equal(g->n_nodes, 1);
    const rt_node *n = &g->nodes[0];
    assert_int_equal(n->op, RT_OP_CONV);
    assert_int_equal(n->opset, 11);
    assert_string_equal(n->name, "Conv_0"); /* the model leaves it unnamed */
    assert_int_equal(n->n_inputs, 2);
    assert_ints(n, "kernel_shape", 2, (int64_t[]){3, 3});
    assert_ints(n, "pads", 4, (int64_t[]){1, 1, 1, 1});
    assert_ints(n, "strides", 2, (int64_t[]){2, 2});
    assert_int_equal(g->n_inputs, 2);
    const rt_value *x = &g->values[g->inputs[0]];
    assert_string_equal(x->name, "x");
    assert_int_equal(x->kind, RT_VALUE_INPUT);
    assert_int_equal(x->dtype, RT_DTYPE_F32);
    assert_shape(&x->shape, 4, (int64_t[]){1, 1, 7, 5});
    assert_int_equal(n->inputs[1], rt_graph_find_value(g, "W"));
    assert_int_equal(g->n_outputs, 1);
    const rt_value *y = &g->values[g->outputs[0]];
    assert_true(y->is_output);
    assert_int_equal(y->dtype, RT_DTYPE_F32);
    assert_shape(&y->shape, 4, (int64_t[]){1, 1, 4, 3});
    assert_int_equal(n->outputs[0], g->outputs[0]);
    rt_graph_free(g);
}

static void test_scalar_attrs_and_omitted_input(void **state)
{
    (void)state;
    rt_graph *g = load_node_test("test_gemm_all_attributes");
    const rt_node *n = &g->nodes[0];
    assert_true(rt_node_attr_float(n, "alpha", 0) == 0.25f);
    assert_true(rt_node_attr_float(n, "beta", 0) == 0.35f);
    assert_int_equal(rt_node_attr_int(n, "transA", 0), 1);
    assert_int_equal(rt_node_attr_int(n, "transB", 0), 1);
    rt_graph_free(g);

    g = load_node_test("test_edge_pad");
    const rt_attr *mode = rt_node_attr(&g->nodes[0], "mode");
    assert_non_null(mode);
    assert_int_equal(mode->type, RT_ATTR_STRING);
    assert_string_equal(mode->s, "edge");
    assert_int_equal(mode->s_len, 4);
    assert_int_equal(value_named(g, "x")->dtype, RT_DTYPE_I32);
    assert_int_equal(value_named(g, "pads")->dtype, RT_DTYPE_I64);
    rt_graph_free(g);

    g = load_node_test("test_clip_default_max"); /* Clip(x, "", max) */
    n = &g->nodes[0];
    assert_int_equal(n->n_inputs, 3);
    assert_int_equal(n->inputs[1], -1);
    assert_int_equal(n->inputs[2], rt_graph_find_value(g, "max"));
    assert_shape(&value_named(g, "max")->shape, 0, NULL);
    rt_graph_free(g);
}

static void test_constant_node(void **state)
{
    (void)state;
    rt_graph *g = load_node_test("test_constant");
    const rt_node *n = &g->nodes[0];
    assert_int_equal(n->op, RT_OP_CONSTANT);
    const rt_attr *a = rt_node_attr(n, "value");
    assert_non_null(a);
    assert_int_equal(a->type, RT_ATTR_TENSOR);
    assert_int_equal(a->t->dtype, RT_DTYPE_F32);
    assert_shape(&a->t->shape, 2, (int64_t[]){5, 5});
    /* numpy.random.seed(0); randn(5, 5)[0, 0] */
    assert_float_equal(((float *)a->t->data)[0], 1.7640524f, 1e-6);
    /* the test's expected output is that same tensor, stored separately */
    rt_error err = {0};
    char *name;
    rt_tensor *want = rt_tensorproto_read_file(NODE_DIR "test_constant/test_data_set_0/output_0.pb",
                                               &name, &err);
    assert_non_null(want);
    assert_string_equal(name, "values");
    assert_true(rt_shape_equal(&want->shape, &a->t->shape));
    assert_memory_equal(want->data, a->t->data, 25 * sizeof(float));
    free(name);
    rt_tensor_free(want);
    rt_graph_free(g);
}

static void test_read_string_tensor(void **state)
{
    (void)state;
    rt_error err = {0};
    char *name;
    rt_tensor *t = rt_tensorproto_read_file(
        NODE_DIR "test_cast_STRING_to_FLOAT/test_data_set_0/input_0.pb", &name, &err);
    assert_non_null(t);
    assert_string_equal(name, "input");
    assert_int_equal(t->dtype, RT_DTYPE_BYTES);
    assert_shape(&t->shape, 2, (int64_t[]){3, 4});
    const rt_str *s = t->data;
    assert_int_equal(s[0].len, 10);
    assert_memory_equal(s[0].ptr, "0.47892547", 10);
    assert_int_equal(s[8].len, 3);
    assert_memory_equal(s[8].ptr, "NaN", 3);
    free(name);
    rt_tensor_free(t);

    assert_null(rt_tensorproto_read_file("/nonexistent/x.pb", &name, &err));
    assert_int_equal(err.status, RT_ERR_IO);
    assert_null(name);
}

/* A one-node model built with the generated structs: input x (F32) -> op -> output y,
 * plus optional second input w and one initializer slot. Tests adjust the fields. */
typedef struct {
    Onnx__ModelProto model;
    Onnx__OperatorSetIdProto opset, *opsets[1];
    Onnx__GraphProto graph;
    Onnx__NodeProto node, *nodes[1];
    char *node_in[2], *node_out[1];
    Onnx__AttributeProto attr, *attrs[1];
    Onnx__ValueInfoProto in[2], out, *ins[2], *outs[1];
    Onnx__TypeProto type;
    Onnx__TypeProto__Tensor tensor_type;
    Onnx__TensorProto init, *inits[1];
} test_model;

static void model_init(test_model *m, const char *op_type, const char *node_name)
{
    memset(m, 0, sizeof *m);
    onnx__model_proto__init(&m->model);
    onnx__operator_set_id_proto__init(&m->opset);
    onnx__graph_proto__init(&m->graph);
    onnx__node_proto__init(&m->node);
    onnx__attribute_proto__init(&m->attr);
    onnx__value_info_proto__init(&m->in[0]);
    onnx__value_info_proto__init(&m->in[1]);
    onnx__value_info_proto__init(&m->out);
    onnx__type_proto__init(&m->type);
    onnx__type_proto__tensor__init(&m->tensor_type);
    onnx__tensor_proto__init(&m->init);
    m->model.has_ir_version = 1;
    m->model.ir_version = 8;
    m->opset.has_version = 1;
    m->opset.version = 13;
    m->opset.domain = "";
    m->opsets[0] = &m->opset;
    m->model.n_opset_import = 1;
    m->model.opset_import = m->opsets;
    m->model.graph = &m->graph;
    m->graph.name = "g";
    m->node.op_type = (char *)op_type;
    m->node.name = (char *)node_name;
    m->node_in[0] = "x";
    m->node_in[1] = "w";
    m->node_out[0] = "y";
    m->node.n_input = 1;
    m->node.input = m->node_in;
    m->node.n_output = 1;
    m->node.output = m->node_out;
    m->attrs[0] = &m->attr;
    m->nodes[0] = &m->node;
    m->graph.n_node = 1;
    m->graph.node = m->nodes;
    m->tensor_type.has_elem_type = 1;
    m->tensor_type.elem_type = RT_DTYPE_F32;
    m->type.value_case = ONNX__TYPE_PROTO__VALUE_TENSOR_TYPE;
    m->type.tensor_type = &m->tensor_type;
    m->in[0].name = "x";
    m->in[0].type = &m->type;
    m->in[1].name = "w";
    m->ins[0] = &m->in[0];
    m->ins[1] = &m->in[1];
    m->graph.n_input = 1;
    m->graph.input = m->ins;
    m->out.name = "y";
    m->outs[0] = &m->out;
    m->graph.n_output = 1;
    m->graph.output = m->outs;
    m->inits[0] = &m->init;
}

/* Makes w (the node's second input) an initializer named "w" of the given dtype/dims. */
static void model_add_weight(test_model *m, rt_dtype dt, int rank, int64_t *dims)
{
    m->node.n_input = 2;
    m->init.name = "w";
    m->init.has_data_type = 1;
    m->init.data_type = (int32_t)dt;
    m->init.n_dims = (size_t)rank;
    m->init.dims = dims;
    m->graph.n_initializer = 1;
    m->graph.initializer = m->inits;
}

static uint8_t *model_pack(test_model *m, size_t *size)
{
    *size = onnx__model_proto__get_packed_size(&m->model);
    uint8_t *buf = malloc(*size);
    assert_non_null(buf);
    onnx__model_proto__pack(&m->model, buf);
    return buf;
}

static rt_graph *model_load(test_model *m, rt_error *err)
{
    size_t size;
    uint8_t *buf = model_pack(m, &size);
    rt_graph *g = rt_onnx_load_bytes(buf, size, NULL, err);
    free(buf);
    return g;
}

/* Loading must fail with status st and a message containing both needles. */
static void expect_failure(test_model *m, rt_status st, const char *needle1, const char *needle2)
{
    rt_error err = {0};
    rt_graph *g = model_load(m, &err);
    if (g)
        fail_msg("loaded, expected failure mentioning '%s'", needle1);
    assert_int_equal(err.status, st);
    if (!strstr(err.text, needle1) || (needle2 && !strstr(err.text, needle2)))
        fail_msg("message '%s' lacks '%s' / '%s'", err.text, needle1, needle2 ? needle2 : "");
}

static rt_graph *expect_load(test_model *m)
{
    rt_error err = {0};
    rt_graph *g = model_load(m, &err);
    if (!g)
        fail_msg("load failed: %s", err.text);
    return g;
}

static void test_unsupported_constructs(void **state)
{
    (void)state;
    test_model m;
    model_init(&m, "NonMaxSuppression", "nms_1");
    expect_failure(&m, RT_ERR_UNSUPPORTED, "unsupported op 'NonMaxSuppression' (domain '') in "
                   "node 'nms_1'", NULL);

    model_init(&m, "Relu", "r");
    m.node.domain = "com.microsoft";
    expect_failure(&m, RT_ERR_UNSUPPORTED, "'Relu' (domain 'com.microsoft')", "'r'");

    model_init(&m, "Relu", "r");
    m.opset.version = 18;
    expect_failure(&m, RT_ERR_UNSUPPORTED, "opset 18", NULL);

    model_init(&m, "Relu", "r");
    m.opset.domain = "ai.onnx.ml";
    expect_failure(&m, RT_ERR_MODEL, "does not import", "'r'");

    Onnx__GraphProto body = ONNX__GRAPH_PROTO__INIT;
    model_init(&m, "Relu", "r");
    m.attr.name = "body";
    m.attr.has_type = 1;
    m.attr.type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__GRAPH;
    m.attr.g = &body;
    m.node.n_attribute = 1;
    m.node.attribute = m.attrs;
    expect_failure(&m, RT_ERR_UNSUPPORTED, "attribute 'body' of type GRAPH", "node 'r'");

    Onnx__TypeProto__Sequence seq = ONNX__TYPE_PROTO__SEQUENCE__INIT;
    model_init(&m, "Relu", "r");
    m.type.value_case = ONNX__TYPE_PROTO__VALUE_SEQUENCE_TYPE;
    m.type.sequence_type = &seq;
    expect_failure(&m, RT_ERR_UNSUPPORTED, "graph input 'x' is not a tensor", NULL);
}

static void test_inconsistent_models(void **state)
{
    (void)state;
    test_model m;
    model_init(&m, "Relu", "r");
    m.node_in[0] = "ghost";
    expect_failure(&m, RT_ERR_MODEL, "value 'ghost' is never defined", "node 'r'");

    model_init(&m, "Relu", "r");
    m.out.name = "nowhere";
    expect_failure(&m, RT_ERR_MODEL, "'nowhere'", NULL);

    model_init(&m, "Relu", "r");
    m.node_out[0] = "x"; /* redefines the graph input */
    expect_failure(&m, RT_ERR_MODEL, "'x'", NULL);

    model_init(&m, "Add", "a");
    float w[2] = {1, 2};
    model_add_weight(&m, RT_DTYPE_F32, 1, (int64_t[]){3}); /* 3 elements, 2 given */
    m.init.has_raw_data = 1;
    m.init.raw_data = (ProtobufCBinaryData){sizeof w, (uint8_t *)w};
    expect_failure(&m, RT_ERR_PARSE, "initializer 'w'", "raw_data has 8 bytes");
    m.init.has_raw_data = 0;
    m.init.n_float_data = 2;
    m.init.float_data = w;
    expect_failure(&m, RT_ERR_PARSE, "initializer 'w'", "typed field");

    model_add_weight(&m, RT_DTYPE_F32, 2, (int64_t[]){-1, 2});
    expect_failure(&m, RT_ERR_PARSE, "negative", NULL);
    model_add_weight(&m, RT_DTYPE_F32, 3, (int64_t[]){1 << 30, 1 << 30, 1 << 30});
    expect_failure(&m, RT_ERR_UNSUPPORTED, "too large", NULL);
    model_add_weight(&m, RT_DTYPE_F32, 9, (int64_t[]){1, 1, 1, 1, 1, 1, 1, 1, 1});
    expect_failure(&m, RT_ERR_UNSUPPORTED, "rank 9", NULL);
    model_add_weight(&m, 14, 0, NULL); /* COMPLEX64 */
    expect_failure(&m, RT_ERR_UNSUPPORTED, "data type 14", NULL);
}

/* Loads m and checks that weight "w" holds exactly the n bytes at want. */
static void expect_weight(test_model *m, const void *want, size_t n)
{
    rt_graph *g = expect_load(m);
    const rt_tensor *t = value_named(g, "w")->data;
    assert_int_equal(rt_tensor_nbytes(t), n);
    assert_memory_equal(t->data, want, n);
    rt_graph_free(g);
}

static void test_initializer_forms(void **state)
{
    (void)state;
    test_model m;
    int64_t dims[2] = {2, 2};

    /* raw_data, and listed among the graph inputs as older exporters do */
    model_init(&m, "Add", "a");
    float raw[4] = {1.5f, -2, 0, 3};
    model_add_weight(&m, RT_DTYPE_F32, 2, dims);
    m.init.has_raw_data = 1;
    m.init.raw_data = (ProtobufCBinaryData){sizeof raw, (uint8_t *)raw};
    m.graph.n_input = 2;
    rt_graph *g = expect_load(&m);
    assert_int_equal(g->n_inputs, 1);
    const rt_value *w = value_named(g, "w");
    assert_int_equal(w->kind, RT_VALUE_WEIGHT);
    assert_shape(&w->data->shape, 2, dims);
    assert_memory_equal(w->data->data, raw, sizeof raw);
    assert_int_equal(g->nodes[0].inputs[1], rt_graph_find_value(g, "w"));
    rt_graph_free(g);

    /* BOOL raw bytes: any nonzero is true */
    model_add_weight(&m, RT_DTYPE_BOOL, 2, dims);
    m.init.raw_data = (ProtobufCBinaryData){4, (uint8_t *)"\0\x07\x01\xff"};
    expect_weight(&m, (uint8_t[]){0, 1, 1, 1}, 4);
    m.init.has_raw_data = 0;

    /* the typed fields, per dtype as the spec assigns them */
    int32_t halves[4] = {0x3c00, 0xc000, 0x0000, 0x7c00}; /* F16 bits: 1, -2, 0, inf */
    model_add_weight(&m, RT_DTYPE_F16, 2, dims);
    m.init.n_int32_data = 4;
    m.init.int32_data = halves;
    expect_weight(&m, (uint16_t[]){0x3c00, 0xc000, 0x0000, 0x7c00}, 8);

    int32_t i32[4] = {0, 5, 1, -1};
    m.init.int32_data = i32;
    model_add_weight(&m, RT_DTYPE_BOOL, 2, dims);
    expect_weight(&m, (uint8_t[]){0, 1, 1, 1}, 4);
    model_add_weight(&m, RT_DTYPE_I8, 2, dims);
    expect_weight(&m, (int8_t[]){0, 5, 1, -1}, 4);
    model_add_weight(&m, RT_DTYPE_U16, 2, dims);
    expect_weight(&m, (uint16_t[]){0, 5, 1, 0xffff}, 8);
    m.init.n_int32_data = 0;

    int64_t i64[4] = {INT64_MIN, -1, 0, INT64_MAX};
    model_add_weight(&m, RT_DTYPE_I64, 2, dims);
    m.init.n_int64_data = 4;
    m.init.int64_data = i64;
    expect_weight(&m, i64, sizeof i64);
    m.init.n_int64_data = 0;

    uint64_t u64[4] = {0, 1, 0xffffffffu, UINT64_MAX};
    model_add_weight(&m, RT_DTYPE_U64, 2, dims);
    m.init.n_uint64_data = 4;
    m.init.uint64_data = u64;
    expect_weight(&m, u64, sizeof u64);
    model_add_weight(&m, RT_DTYPE_U32, 2, dims);
    expect_weight(&m, (uint32_t[]){0, 1, 0xffffffffu, 0xffffffffu}, 16);
    m.init.n_uint64_data = 0;

    double f64[4] = {0.1, -1e300, 0, 2};
    model_add_weight(&m, RT_DTYPE_F64, 2, dims);
    m.init.n_double_data = 4;
    m.init.double_data = f64;
    expect_weight(&m, f64, sizeof f64);
    m.init.n_double_data = 0;

    ProtobufCBinaryData strs[2] = {{3, (uint8_t *)"abc"}, {0, NULL}};
    model_add_weight(&m, RT_DTYPE_BYTES, 1, (int64_t[]){2});
    m.init.n_string_data = 2;
    m.init.string_data = strs;
    g = expect_load(&m);
    const rt_str *s = value_named(g, "w")->data->data;
    assert_int_equal(s[0].len, 3);
    assert_memory_equal(s[0].ptr, "abc", 3);
    assert_int_equal(s[1].len, 0);
    rt_graph_free(g);
    m.init.n_string_data = 0;

    /* empty tensor: a zero dim needs no data even next to a huge dim */
    model_add_weight(&m, RT_DTYPE_F32, 2, (int64_t[]){0, (int64_t)1 << 40});
    g = expect_load(&m);
    assert_int_equal(rt_tensor_numel(value_named(g, "w")->data), 0);
    rt_graph_free(g);
}

static void test_attribute_kinds(void **state)
{
    (void)state;
    test_model m;
    model_init(&m, "Constant", "");
    m.node.n_input = 0;
    m.graph.n_input = 0;
    Onnx__AttributeProto a[3] = {ONNX__ATTRIBUTE_PROTO__INIT, ONNX__ATTRIBUTE_PROTO__INIT,
                                 ONNX__ATTRIBUTE_PROTO__INIT};
    Onnx__AttributeProto *ap[3] = {&a[0], &a[1], &a[2]};
    float floats[3] = {0.5f, -1, 2};
    ProtobufCBinaryData strs[2] = {{2, (uint8_t *)"hi"}, {5, (uint8_t *)"there"}};
    a[0].name = "value_floats";
    a[0].has_type = 1;
    a[0].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__FLOATS;
    a[0].n_floats = 3;
    a[0].floats = floats;
    a[1].name = "value_strings";
    a[1].has_type = 1;
    a[1].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__STRINGS;
    a[1].n_strings = 2;
    a[1].strings = strs;
    a[2].name = "empty_ints"; /* present but empty */
    a[2].has_type = 1;
    a[2].type = ONNX__ATTRIBUTE_PROTO__ATTRIBUTE_TYPE__INTS;
    m.node.n_attribute = 3;
    m.node.attribute = ap;
    rt_graph *g = expect_load(&m);
    const rt_node *n = &g->nodes[0];
    assert_string_equal(n->name, "Constant_0");
    assert_int_equal(n->n_inputs, 0);
    int cnt;
    const float *f = rt_node_attr_floats(n, "value_floats", &cnt);
    assert_int_equal(cnt, 3);
    assert_memory_equal(f, floats, sizeof floats);
    const rt_attr *sa = rt_node_attr(n, "value_strings");
    assert_int_equal(sa->type, RT_ATTR_STRINGS);
    assert_int_equal(sa->n, 2);
    assert_string_equal(sa->strings[1], "there");
    assert_non_null(rt_node_attr_ints(n, "empty_ints", &cnt));
    assert_int_equal(cnt, 0);
    rt_graph_free(g);

    a[2].name = "value_floats";
    expect_failure(&m, RT_ERR_MODEL, "'value_floats' appears twice", NULL);
}

static void test_dynamic_input_dims(void **state)
{
    (void)state;
    test_model m;
    model_init(&m, "Relu", "r");
    Onnx__TensorShapeProto shape = ONNX__TENSOR_SHAPE_PROTO__INIT;
    Onnx__TensorShapeProto__Dimension d[3] = {ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
                                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT,
                                              ONNX__TENSOR_SHAPE_PROTO__DIMENSION__INIT};
    Onnx__TensorShapeProto__Dimension *dp[3] = {&d[0], &d[1], &d[2]};
    d[0].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_PARAM;
    d[0].dim_param = "batch";
    d[1].value_case = ONNX__TENSOR_SHAPE_PROTO__DIMENSION__VALUE_DIM_VALUE;
    d[1].dim_value = 16;
    shape.n_dim = 3;
    shape.dim = dp;
    m.tensor_type.shape = &shape;
    rt_graph *g = expect_load(&m);
    const rt_value *x = value_named(g, "x");
    assert_shape(&x->shape, 3, (int64_t[]){-1, 16, -1});
    assert_string_equal(x->dim_params[0], "batch");
    assert_null(x->dim_params[1]);
    assert_null(x->dim_params[2]);
    /* the output declares no type: unknown */
    assert_int_equal(value_named(g, "y")->dtype, RT_DTYPE_UNDEFINED);
    assert_int_equal(value_named(g, "y")->shape.rank, -1);
    rt_graph_free(g);

    m.tensor_type.shape = NULL;
    g = expect_load(&m);
    assert_int_equal(value_named(g, "x")->shape.rank, -1);
    rt_graph_free(g);
}

static uint8_t *read_file(const char *path, size_t *size)
{
    FILE *f = fopen(path, "rb");
    assert_non_null(f);
    fseek(f, 0, SEEK_END);
    *size = (size_t)ftell(f);
    rewind(f);
    uint8_t *buf = malloc(*size);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, *size, f), *size);
    fclose(f);
    return buf;
}

static void test_hostile_bytes(void **state)
{
    (void)state;
    rt_error err = {0};
    static const uint8_t garbage[] = {0xff, 0xff, 0xff, 0xff, 0x0f, 0x12, 0x80};
    assert_null(rt_onnx_load_bytes(garbage, sizeof garbage, NULL, &err));
    assert_int_equal(err.status, RT_ERR_PARSE);
    assert_null(rt_onnx_load_bytes("", 0, NULL, &err));
    assert_int_equal(err.status, RT_ERR_MODEL); /* decodes, but has no graph */

    /* every truncation of a real model either loads or fails cleanly */
    size_t size;
    uint8_t *model = read_file(NODE_DIR "test_gemm_all_attributes/model.onnx", &size);
    int failures = 0;
    for (size_t n = 0; n < size; n++) {
        uint8_t *copy = malloc(n + 1); /* exact-size copy so ASan sees overreads */
        memcpy(copy, model, n);
        err = (rt_error){0};
        rt_graph *g = rt_onnx_load_bytes(copy, n, NULL, &err);
        if (!g) {
            assert_int_not_equal(err.status, RT_OK);
            assert_true(err.text[0] != '\0');
            failures++;
        }
        rt_graph_free(g);
        free(copy);
    }
    assert_true(failures > 0);
    free(model);

    /* graph -> node -> attribute -> graph ... nested 150000 deep: refused, no stack
     * overflow. Built back to front: each level prefixes a tag and a length. */
    static const uint8_t tags[3] = {0x32 /* AttributeProto.g */, 0x2a /* Node.attribute */,
                                    0x0a /* GraphProto.node */};
    size_t cap = 4000000, pos = cap;
    uint8_t *buf = malloc(cap);
    assert_non_null(buf);
    for (size_t i = 0; i <= 150000; i++) {
        size_t len = cap - pos;
        uint8_t varint[10];
        size_t nv = 0;
        do {
            varint[nv] = (uint8_t)(len & 0x7f);
            len >>= 7;
            varint[nv] |= len ? 0x80 : 0;
            nv++;
        } while (len);
        assert_true(pos >= nv + 1);
        pos -= nv;
        memcpy(buf + pos, varint, nv);
        buf[--pos] = i == 150000 ? 0x3a /* ModelProto.graph */ : tags[i % 3];
    }
    assert_null(rt_onnx_load_bytes(buf + pos, cap - pos, NULL, &err));
    assert_int_equal(err.status, RT_ERR_PARSE);
    assert_non_null(strstr(err.text, "deeper"));
    free(buf);
}

typedef struct {
    char dir[64];
    char model[96];
} temp_model_dir;

static void write_bytes(const char *path, const void *data, size_t n)
{
    FILE *f = fopen(path, "wb");
    assert_non_null(f);
    assert_int_equal(fwrite(data, 1, n, f), n);
    assert_int_equal(fclose(f), 0);
}

/* Writes m as model.onnx into dir. */
static void model_write(test_model *m, temp_model_dir *t)
{
    size_t size;
    uint8_t *buf = model_pack(m, &size);
    write_bytes(t->model, buf, size);
    free(buf);
}

static void test_external_data(void **state)
{
    (void)state;
    temp_model_dir t;
    strcpy(t.dir, "/tmp/test_onnx_XXXXXX");
    assert_non_null(mkdtemp(t.dir));
    snprintf(t.model, sizeof t.model, "%s/model.onnx", t.dir);
    char path[128], outside[128];
    /* 8 bytes of something else, then the 4 floats the initializer points at */
    float data[6] = {99, 99, 1.25f, -2, 3, 4.5f};
    snprintf(path, sizeof path, "%s/weights.bin", t.dir);
    write_bytes(path, data, sizeof data);
    snprintf(outside, sizeof outside, "%s.outside", t.dir);
    write_bytes(outside, data, sizeof data);

    test_model m;
    model_init(&m, "Add", "a");
    int64_t dims[2] = {2, 2};
    model_add_weight(&m, RT_DTYPE_F32, 2, dims);
    m.init.has_data_location = 1;
    m.init.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    Onnx__StringStringEntryProto kv[3] = {ONNX__STRING_STRING_ENTRY_PROTO__INIT,
                                          ONNX__STRING_STRING_ENTRY_PROTO__INIT,
                                          ONNX__STRING_STRING_ENTRY_PROTO__INIT};
    Onnx__StringStringEntryProto *kvp[3] = {&kv[0], &kv[1], &kv[2]};
    kv[0].key = "location";
    kv[0].value = "weights.bin";
    kv[1].key = "offset";
    kv[1].value = "8";
    kv[2].key = "length";
    kv[2].value = "16";
    m.init.n_external_data = 3;
    m.init.external_data = kvp;

    rt_error err = {0};
    model_write(&m, &t);
    rt_graph *g = rt_onnx_load_file(t.model, &err);
    if (!g)
        fail_msg("%s", err.text);
    assert_memory_equal(value_named(g, "w")->data->data, ((float[]){1.25f, -2, 3, 4.5f}), 16);
    rt_graph_free(g);

    /* without a model directory, external data is refused */
    expect_failure(&m, RT_ERR_UNSUPPORTED, "needs a model directory", NULL);

    static const struct {
        const char *location, *offset, *length;
        rt_status status;
        const char *needle;
    } bad[] = {
        {"../weights.bin", "8", "16", RT_ERR_MODEL, "relative path"},
        {"sub/../../x", "8", "16", RT_ERR_MODEL, "relative path"},
        {"/etc/passwd", "0", "16", RT_ERR_MODEL, "relative path"},
        {"link", "8", "16", RT_ERR_MODEL, "outside"},
        {"missing.bin", "8", "16", RT_ERR_IO, "missing.bin"},
        {"weights.bin", "16", "16", RT_ERR_PARSE, "exceeds"},
        {"weights.bin", "25", "0", RT_ERR_PARSE, "exceeds"},
        {"weights.bin", "8", "12", RT_ERR_PARSE, "dims need 16"},
        {"weights.bin", "-8", "16", RT_ERR_PARSE, "not a byte count"},
        {"weights.bin", "8", "1e3", RT_ERR_PARSE, "not a byte count"},
    };
    char link[128];
    snprintf(link, sizeof link, "%s/link", t.dir);
    assert_int_equal(symlink(outside, link), 0);
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        kv[0].value = (char *)bad[i].location;
        kv[1].value = (char *)bad[i].offset;
        kv[2].value = (char *)bad[i].length;
        model_write(&m, &t);
        err = (rt_error){0};
        g = rt_onnx_load_file(t.model, &err);
        if (g)
            fail_msg("case %zu (%s) loaded", i, bad[i].location);
        assert_int_equal(err.status, bad[i].status);
        if (!strstr(err.text, bad[i].needle))
            fail_msg("case %zu: '%s' lacks '%s'", i, err.text, bad[i].needle);
    }
    /* no length: the rest of the file from offset */
    kv[0].value = "weights.bin";
    kv[1].value = "8";
    m.init.n_external_data = 2;
    model_write(&m, &t);
    g = rt_onnx_load_file(t.model, &err);
    assert_non_null(g);
    rt_graph_free(g);

    unlink(link);
    unlink(path);
    unlink(t.model);
    unlink(outside);
    assert_int_equal(rmdir(t.dir), 0);
}

static void round_trip(rt_dtype dt, const void *values, int rank, const int64_t *dims)
{
    rt_error err = {0};
    rt_shape shape = rt_shape_make(rank, dims);
    rt_tensor *t = rt_tensor_create(dt, &shape, &err);
    assert_non_null(t);
    size_t n = (size_t)rt_tensor_numel(t);
    if (dt == RT_DTYPE_BYTES)
        assert_int_equal(rt_tensor_set_strings(t, values, n, &err), RT_OK);
    else if (n)
        memcpy(t->data, values, rt_tensor_nbytes(t));
    char path[] = "/tmp/test_onnx_tensor_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    assert_int_equal(rt_tensorproto_write_file(path, t, "the_name", &err), RT_OK);
    char *name;
    rt_tensor *back = rt_tensorproto_read_file(path, &name, &err);
    if (!back)
        fail_msg("%s", err.text);
    assert_string_equal(name, "the_name");
    assert_int_equal(back->dtype, dt);
    assert_true(rt_shape_equal(&back->shape, &shape));
    if (dt == RT_DTYPE_BYTES) {
        const rt_str *a = values, *b = back->data;
        for (size_t i = 0; i < n; i++) {
            assert_int_equal(a[i].len, b[i].len);
            assert_memory_equal(a[i].ptr, b[i].ptr, a[i].len);
        }
    } else if (n) {
        assert_memory_equal(back->data, values, rt_tensor_nbytes(t));
    }
    free(name);
    rt_tensor_free(back);
    rt_tensor_free(t);
    unlink(path);
}

static void test_tensorproto_round_trip(void **state)
{
    (void)state;
    round_trip(RT_DTYPE_F32, (float[]){1.5f, -0.0f, 3e38f, 1e-45f, 7, 8}, 2, (int64_t[]){2, 3});
    round_trip(RT_DTYPE_I64, (int64_t[]){INT64_MIN, INT64_MAX, 0}, 1, (int64_t[]){3});
    round_trip(RT_DTYPE_BOOL, (uint8_t[]){1, 0, 0, 1}, 3, (int64_t[]){1, 2, 2});
    round_trip(RT_DTYPE_F16, (uint16_t[]){0x3c00, 0x7c00, 0x8001}, 1, (int64_t[]){3});
    round_trip(RT_DTYPE_F32, (float[]){42}, 0, NULL); /* scalar */
    round_trip(RT_DTYPE_F32, NULL, 2, (int64_t[]){0, 4}); /* empty */
    rt_str strs[3] = {{"alpha", 5}, {"", 0}, {"with\0nul", 8}};
    round_trip(RT_DTYPE_BYTES, strs, 1, (int64_t[]){3});
}

static void test_tensorproto_decode_errors(void **state)
{
    (void)state;
    rt_error err = {0};
    char *name = (char *)"unchanged";
    assert_null(rt_tensorproto_decode("\x08", 1, &name, &err)); /* truncated varint */
    assert_int_equal(err.status, RT_ERR_PARSE);
    assert_null(name);
    Onnx__TensorProto tp = ONNX__TENSOR_PROTO__INIT;
    tp.has_data_type = 1;
    tp.data_type = RT_DTYPE_F32;
    tp.n_dims = 1;
    tp.dims = (int64_t[]){2};
    tp.n_float_data = 1;
    tp.float_data = (float[]){1};
    uint8_t buf[64];
    size_t n = onnx__tensor_proto__pack(&tp, buf);
    assert_null(rt_tensorproto_decode(buf, n, NULL, &err));
    assert_int_equal(err.status, RT_ERR_PARSE);
    tp.has_data_location = 1;
    tp.data_location = ONNX__TENSOR_PROTO__DATA_LOCATION__EXTERNAL;
    n = onnx__tensor_proto__pack(&tp, buf);
    assert_null(rt_tensorproto_decode(buf, n, NULL, &err));
    assert_int_equal(err.status, RT_ERR_PARSE); /* no location */
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_conv_model),
        cmocka_unit_test(test_scalar_attrs_and_omitted_input),
        cmocka_unit_test(test_constant_node),
        cmocka_unit_test(test_read_string_tensor),
        cmocka_unit_test(test_unsupported_constructs),
        cmocka_unit_test(test_inconsistent_models),
        cmocka_unit_test(test_initializer_forms),
        cmocka_unit_test(test_attribute_kinds),
        cmocka_unit_test(test_dynamic_input_dims),
        cmocka_unit_test(test_hostile_bytes),
        cmocka_unit_test(test_external_data),
        cmocka_unit_test(test_tensorproto_round_trip),
        cmocka_unit_test(test_tensorproto_decode_errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
