/* test_graphs.h: small graphs built by hand that test a device backend's host reads, shared
 * by the executor's device-path unit test (tests/unit/test_exec_device.c) and the CUDA
 * backend conformance program (tests/gpu/test_backend_ops.c). The graphs are new; the
 * caller frees them (or hands them to a session). */
#ifndef TEST_GRAPHS_H
#define TEST_GRAPHS_H

#include "rt_graph.h"

static inline int test_mid(rt_graph *g, const char *name)
{
    return rt_graph_add_value(g, name, RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
}

/* x[-1,6], shape[2] -> Reshape(Relu(x), shape): Reshape reads a graph input on the host */
static inline rt_graph *test_reshape_graph(void)
{
    rt_graph *g = rt_graph_create("reshape");
    g->opset = 14;
    rt_shape xs = rt_shape_make(2, (int64_t[]){-1, 6}), ss = rt_shape_make(1, (int64_t[]){2});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int sh = rt_graph_add_value(g, "shape", RT_VALUE_INPUT, RT_DTYPE_I64, &ss);
    int r = test_mid(g, "r"), y = test_mid(g, "y");
    rt_graph_add_input(g, x);
    rt_graph_add_input(g, sh);
    rt_graph_add_node(g, "relu", RT_OP_RELU, (int[]){x}, 1, (int[]){r}, 1, NULL, 0);
    rt_graph_add_node(g, "reshape", RT_OP_RESHAPE, (int[]){r, sh}, 2, (int[]){y}, 1, NULL, 0);
    rt_graph_add_output(g, y);
    return g;
}

/* x[-1,4] -> Reshape(Transpose(x), Shape(x)): Shape's output, an intermediate, is read on
 * the host */
static inline rt_graph *test_mirror_graph(void)
{
    rt_graph *g = rt_graph_create("mirror");
    g->opset = 14;
    rt_shape xs = rt_shape_make(2, (int64_t[]){-1, 4});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &xs);
    int t = test_mid(g, "t"), s = test_mid(g, "s"), y = test_mid(g, "y");
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "t", RT_OP_TRANSPOSE, (int[]){x}, 1, (int[]){t}, 1, NULL, 0);
    rt_graph_add_node(g, "shape", RT_OP_SHAPE, (int[]){x}, 1, (int[]){s}, 1, NULL, 0);
    rt_graph_add_node(g, "reshape", RT_OP_RESHAPE, (int[]){t, s}, 2, (int[]){y}, 1, NULL, 0);
    rt_graph_add_output(g, y);
    return g;
}

#endif
