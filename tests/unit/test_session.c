/* test_session.c: the session and executor on hand-built graphs: results, plan reuse per
 * input shape, replanning when a shape depends on input values, memory reuse, and the
 * errors callers get for bad inputs. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <stdlib.h>
#include <string.h>

#include "rt_session.h"

static rt_session_options cpu_options(void)
{
    rt_session_options o;
    rt_session_options_init(&o);
    o.backend = RT_BACKEND_CPU;
    o.threads = 1;
    return o;
}

/* x[-1,4] -> Add(w) -> Relu -> Mul(itself) -> Add(w) -> out */
static rt_session *chain_session(void)
{
    rt_graph *g = rt_graph_create("chain");
    g->opset = 13;
    rt_shape xs = rt_shape_make(2, (int64_t[]){-1, 4});
    rt_shape ws = rt_shape_make(1, (int64_t[]){4});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int w = rt_graph_add_value(g, "w", RT_VALUE_WEIGHT, RT_DTYPE_F32, &ws);
    g->values[w].data = rt_tensor_create(RT_DTYPE_F32, &ws, NULL);
    float *wd = g->values[w].data->data;
    for (int i = 0; i < 4; i++)
        wd[i] = (float)i - 1.5f;
    int a = rt_graph_add_value(g, "a", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int r = rt_graph_add_value(g, "r", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int m = rt_graph_add_value(g, "m", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int o = rt_graph_add_value(g, "out", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "add1", RT_OP_ADD, (int[]){x, w}, 2, (int[]){a}, 1, NULL, 0);
    rt_graph_add_node(g, "relu", RT_OP_RELU, (int[]){a}, 1, (int[]){r}, 1, NULL, 0);
    rt_graph_add_node(g, "sq", RT_OP_MUL, (int[]){r, r}, 2, (int[]){m}, 1, NULL, 0);
    rt_graph_add_node(g, "add2", RT_OP_ADD, (int[]){m, w}, 2, (int[]){o}, 1, NULL, 0);
    rt_graph_add_output(g, o);
    rt_session_options opts = cpu_options();
    opts.no_optimize = true; /* the executor's planning of this very chain (unfused) */
    rt_error err;
    rt_session *s = rt_session_create_from_graph(g, &opts, &err);
    assert_non_null(s);
    return s;
}

static rt_tensor *batch_input(int64_t batch)
{
    rt_shape s = rt_shape_make(2, (int64_t[]){batch, 4});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, NULL);
    float *d = t->data;
    for (int64_t i = 0; i < batch * 4; i++)
        d[i] = (float)(i % 7) - 3.0f;
    return t;
}

static void check_chain(const rt_tensor *x, const rt_tensor *out)
{
    assert_true(rt_shape_equal(&x->shape, &out->shape));
    const float *xd = x->data, *od = out->data;
    for (int64_t i = 0; i < rt_tensor_numel(x); i++) {
        float w = (float)(i % 4) - 1.5f, a = xd[i] + w, r = a > 0 ? a : 0;
        assert_float_equal(od[i], r * r + w, 1e-6);
    }
}

static void test_plans_per_shape(void **state)
{
    (void)state;
    rt_session *s = chain_session();
    rt_error err;
    rt_session_stats st;
    int64_t batches[] = {2, 2, 5, 2, 5};
    int expected_plans[] = {1, 1, 2, 2, 2};
    for (int k = 0; k < 5; k++) {
        rt_tensor *x = batch_input(batches[k]), *out = NULL;
        assert_int_equal(rt_session_run(s, (const rt_tensor *const *)&x, 1, &out, 1, &err), RT_OK);
        check_chain(x, out);
        rt_session_get_stats(s, &st);
        assert_int_equal(st.n_plans, expected_plans[k]);
        rt_tensor_free(x);
        rt_tensor_free(out);
    }
    /* four intermediates of batch*4 floats, at most two live at once */
    assert_true(st.peak_activation_bytes < st.naive_activation_bytes);
    assert_int_equal(st.naive_activation_bytes, 4 * 5 * 4 * sizeof(float));
    assert_int_equal(st.weight_bytes, 16);
    assert_int_equal(st.nodes_by_op[RT_OP_ADD], 2);
    rt_session_free(s);
}

static void test_bad_inputs(void **state)
{
    (void)state;
    rt_session *s = chain_session();
    rt_error err;
    rt_tensor *out = NULL;
    rt_shape bad = rt_shape_make(2, (int64_t[]){2, 5});
    rt_tensor *x = rt_tensor_create(RT_DTYPE_F32, &bad, NULL);
    assert_int_equal(rt_session_run(s, (const rt_tensor *const *)&x, 1, &out, 1, &err),
                     RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "input 'x' has shape [2,5], the model expects [-1,4]"));
    rt_tensor_free(x);

    rt_shape good = rt_shape_make(2, (int64_t[]){2, 4});
    x = rt_tensor_create(RT_DTYPE_I64, &good, NULL);
    assert_int_equal(rt_session_run(s, (const rt_tensor *const *)&x, 1, &out, 1, &err),
                     RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "dtype I64, the model expects F32"));
    assert_int_equal(rt_session_run(s, NULL, 0, &out, 1, &err), RT_ERR_INVALID_ARG);
    assert_non_null(strstr(err.text, "takes 1 inputs, got 0"));
    assert_null(out);
    rt_tensor_free(x);
    rt_session_free(s);
}

/* out = Reshape(x[6], shape): the output shape depends on the values of `shape` */
static rt_session *reshape_session(void)
{
    rt_graph *g = rt_graph_create("reshape");
    g->opset = 13;
    rt_shape xs = rt_shape_make(1, (int64_t[]){6}), ss = rt_shape_make(1, (int64_t[]){2});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int sh = rt_graph_add_value(g, "shape", RT_VALUE_INPUT, RT_DTYPE_I64, &ss);
    int r = rt_graph_add_value(g, "r", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int o = rt_graph_add_value(g, "out", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_input(g, x);
    rt_graph_add_input(g, sh);
    rt_graph_add_node(g, "reshape", RT_OP_RESHAPE, (int[]){x, sh}, 2, (int[]){r}, 1, NULL, 0);
    rt_graph_add_node(g, "neg", RT_OP_NEG, (int[]){r}, 1, (int[]){o}, 1, NULL, 0);
    rt_graph_add_output(g, o);
    rt_session_options opts = cpu_options();
    rt_session *s = rt_session_create_from_graph(g, &opts, NULL);
    assert_non_null(s);
    return s;
}

static void test_value_dependent_shapes(void **state)
{
    (void)state;
    rt_session *s = reshape_session();
    rt_shape xs = rt_shape_make(1, (int64_t[]){6}), ss = rt_shape_make(1, (int64_t[]){2});
    rt_tensor *in[2] = {rt_tensor_create(RT_DTYPE_F32, &xs, NULL),
                        rt_tensor_create(RT_DTYPE_I64, &ss, NULL)};
    for (int i = 0; i < 6; i++)
        ((float *)in[0]->data)[i] = (float)i;
    int64_t shapes[][2] = {{2, 3}, {2, 3}, {3, 2}, {6, 1}, {4, 4}};
    rt_error err;
    for (int k = 0; k < 5; k++) {
        memcpy(in[1]->data, shapes[k], sizeof shapes[k]);
        rt_tensor *out = NULL;
        rt_status st = rt_session_run(s, (const rt_tensor *const *)in, 2, &out, 1, &err);
        if (k == 4) {
            assert_int_not_equal(st, RT_OK);
            assert_non_null(strstr(err.text, "node 'reshape' (Reshape)"));
            assert_null(out);
            continue;
        }
        assert_int_equal(st, RT_OK);
        assert_int_equal(out->shape.dims[0], shapes[k][0]);
        assert_int_equal(out->shape.dims[1], shapes[k][1]);
        for (int i = 0; i < 6; i++)
            assert_float_equal(((float *)out->data)[i], -(float)i, 0);
        rt_tensor_free(out);
    }
    rt_tensor_free(in[0]);
    rt_tensor_free(in[1]);
    rt_session_free(s);
}

static void test_cuda_refused_clearly(void **state)
{
    (void)state;
    rt_session_options o = cpu_options();
    o.backend = RT_BACKEND_CUDA;
    rt_error err;
    assert_null(rt_session_create_from_graph(rt_graph_create("empty"), &o, &err));
    assert_non_null(strstr(err.text, "cuda"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_plans_per_shape),
        cmocka_unit_test(test_bad_inputs),
        cmocka_unit_test(test_value_dependent_shapes),
        cmocka_unit_test(test_cuda_refused_clearly),
    };
    return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
