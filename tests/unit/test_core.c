/* test_core.c: unit tests for dtypes, tensors, the graph IR and the memory planner. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_graph.h"
#include "rt_memplan.h"
#include "rt_tensor.h"

static void test_f16_round_trip(void **state)
{
    (void)state;
    /* every finite half converts to float and back unchanged */
    for (uint32_t h = 0; h < 0x10000; h++) {
        if ((h & 0x7c00) == 0x7c00)
            continue;
        assert_int_equal(rt_f32_to_f16(rt_f16_to_f32((uint16_t)h)), h);
    }
    assert_true(rt_f16_to_f32(0x3c00) == 1.0f);
    assert_true(rt_f16_to_f32(0xc000) == -2.0f);
    assert_int_equal(rt_f32_to_f16(65520.0f), 0x7c00);       /* overflow -> inf */
    assert_int_equal(rt_f32_to_f16(1.0f + 1.0f / 2048), 0x3c00); /* tie -> even */
    assert_true(isnan(rt_f16_to_f32(rt_f32_to_f16(NAN))));
    assert_true(rt_f16_to_f32(0x0001) == ldexpf(1.0f, -24)); /* smallest subnormal */
}

static void test_bf16(void **state)
{
    (void)state;
    assert_int_equal(rt_f32_to_bf16(1.0f), 0x3f80);
    assert_true(rt_bf16_to_f32(0x4049) == 3.140625f);
    assert_int_equal(rt_f32_to_bf16(3.14159265f), 0x4049);
    assert_true(isnan(rt_bf16_to_f32(rt_f32_to_bf16(NAN))));
}

static void test_dtype_load_store(void **state)
{
    (void)state;
    int8_t i8[2];
    rt_dtype_store_f64(RT_DTYPE_I8, i8, 0, -3.7);
    assert_int_equal(i8[0], -3);
    uint8_t b[1];
    rt_dtype_store_i64(RT_DTYPE_BOOL, b, 0, 42);
    assert_int_equal(b[0], 1);
    assert_int_equal(rt_dtype_load_i64(RT_DTYPE_F32, (float[]){-2.9f}, 0), -2);
    assert_int_equal(rt_dtype_size(RT_DTYPE_BYTES), sizeof(rt_str));
    assert_false(rt_dtype_valid(14));
    assert_true(rt_dtype_valid(RT_DTYPE_BF16));
}

static void test_tensor_create_and_clone(void **state)
{
    (void)state;
    rt_error err;
    rt_shape s = rt_shape_make(2, (int64_t[]){2, 3});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_F32, &s, &err);
    assert_non_null(t);
    assert_int_equal(rt_tensor_nbytes(t), 24);
    assert_int_equal((uintptr_t)t->data % 64, 0);
    ((float *)t->data)[5] = 7.0f;
    rt_tensor *c = rt_tensor_clone(t, &err);
    assert_true(((float *)c->data)[5] == 7.0f);
    assert_ptr_not_equal(c->data, t->data);
    rt_tensor_free(t);
    rt_tensor_free(c);

    rt_shape huge = rt_shape_make(3, (int64_t[]){1 << 30, 1 << 30, 1 << 30});
    assert_null(rt_tensor_create(RT_DTYPE_F32, &huge, &err));
    assert_non_null(strstr(err.text, "cannot create"));
    rt_shape neg = rt_shape_make(1, (int64_t[]){-1});
    assert_null(rt_tensor_create(RT_DTYPE_F32, &neg, &err));
}

static void test_tensor_strings(void **state)
{
    (void)state;
    rt_error err;
    rt_shape s = rt_shape_make(1, (int64_t[]){3});
    rt_tensor *t = rt_tensor_create(RT_DTYPE_BYTES, &s, &err);
    rt_str in[3] = {{"spam", 4}, {"", 0}, {"a\0b", 3}};
    assert_int_equal(rt_tensor_set_strings(t, in, 3, &err), RT_OK);
    rt_tensor *c = rt_tensor_clone(t, &err);
    rt_tensor_free(t); /* the clone must not point into the freed pool */
    const rt_str *e = c->data;
    assert_int_equal(e[0].len, 4);
    assert_memory_equal(e[0].ptr, "spam", 4);
    assert_int_equal(e[1].len, 0);
    assert_memory_equal(e[2].ptr, "a\0b", 3);
    rt_tensor_free(c);
}

static void test_shape_str(void **state)
{
    (void)state;
    char buf[32];
    rt_shape s = rt_shape_make(3, (int64_t[]){-1, 57, 0});
    assert_string_equal(rt_shape_str(&s, buf, sizeof buf), "[-1,57,0]");
    assert_int_equal(rt_shape_numel(&s), -1);
    rt_shape scalar = {0};
    assert_string_equal(rt_shape_str(&scalar, buf, sizeof buf), "[]");
    assert_int_equal(rt_shape_numel(&scalar), 1);
}

static void test_graph_check(void **state)
{
    (void)state;
    rt_error err;
    rt_graph *g = rt_graph_create("g");
    rt_shape s = rt_shape_make(1, (int64_t[]){4});
    int x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &s);
    int y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    int z = rt_graph_add_value(g, "z", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_input(g, x);
    /* z is read before it is produced */
    rt_graph_add_node(g, "n0", RT_OP_ADD, (int[]){x, z}, 2, (int[]){y}, 1, NULL, 0);
    rt_graph_add_node(g, "n1", RT_OP_RELU, (int[]){x}, 1, (int[]){z}, 1, NULL, 0);
    rt_graph_add_output(g, y);
    assert_int_equal(rt_graph_check(g, &err), RT_ERR_MODEL);
    assert_non_null(strstr(err.text, "reads 'z' before"));
    rt_graph_free(g);

    g = rt_graph_create("g");
    x = rt_graph_add_value(g, "x", RT_VALUE_INPUT, RT_DTYPE_F32, &s);
    y = rt_graph_add_value(g, "y", RT_VALUE_INTERMEDIATE, RT_DTYPE_UNDEFINED, NULL);
    rt_graph_add_input(g, x);
    rt_graph_add_node(g, "n0", RT_OP_RELU, (int[]){x}, 1, (int[]){y}, 1, NULL, 0);
    rt_graph_add_node(g, "n1", RT_OP_RELU, (int[]){x}, 1, (int[]){y}, 1, NULL, 0);
    rt_graph_add_output(g, y);
    assert_int_equal(rt_graph_check(g, &err), RT_ERR_MODEL);
    assert_non_null(strstr(err.text, "produced twice"));
    rt_graph_free(g);
}

static void test_node_attrs(void **state)
{
    (void)state;
    rt_graph *g = rt_graph_create("g");
    rt_attr *attrs = calloc(2, sizeof *attrs);
    attrs[0] = (rt_attr){.name = strdup("axis"), .type = RT_ATTR_INT, .i = -2};
    attrs[1] = (rt_attr){.name = strdup("perm"), .type = RT_ATTR_INTS, .n = 2,
                         .ints = malloc(2 * sizeof(int64_t))};
    attrs[1].ints[0] = 1;
    attrs[1].ints[1] = 0;
    int n = rt_graph_add_node(g, "t", RT_OP_TRANSPOSE, NULL, 0, NULL, 0, attrs, 2);
    const rt_node *node = &g->nodes[n];
    assert_int_equal(rt_node_attr_int(node, "axis", 7), -2);
    assert_int_equal(rt_node_attr_int(node, "missing", 7), 7);
    int len;
    const int64_t *perm = rt_node_attr_ints(node, "perm", &len);
    assert_int_equal(len, 2);
    assert_int_equal(perm[0], 1);
    assert_null(rt_node_attr_ints(node, "axis", &len)); /* wrong type */
    assert_int_equal(len, 0);
    rt_graph_free(g);
}

/* Checks that no two buffers with overlapping lifetimes overlap in the arena. */
static void assert_no_conflicts(const rt_memplan_buffer *b, const size_t *off, int n)
{
    for (int i = 0; i < n; i++)
        for (int j = i + 1; j < n; j++) {
            if (b[i].first < 0 || b[j].first < 0)
                continue;
            bool live_together = b[i].first <= b[j].last && b[j].first <= b[i].last;
            bool bytes_overlap = off[i] < off[j] + b[j].size && off[j] < off[i] + b[i].size;
            assert_false(live_together && bytes_overlap);
        }
}

static void test_memplan_chain_reuses(void **state)
{
    (void)state;
    /* a chain a -> b -> c -> d: each buffer dies when the next is written */
    rt_memplan_buffer b[4] = {
        {1000, 0, 1, -1}, {1000, 1, 2, -1}, {1000, 2, 3, -1}, {1000, 3, 4, -1}};
    size_t off[4], arena;
    assert_int_equal(rt_memplan_assign(b, 4, off, &arena, NULL), RT_OK);
    assert_no_conflicts(b, off, 4);
    assert_int_equal(arena, 2 * 1024); /* two live at a time, 64-byte rounded */
    for (int i = 0; i < 4; i++)
        assert_int_equal(off[i] % RT_MEMPLAN_ALIGN, 0);
}

static void test_memplan_random_no_overlap(void **state)
{
    (void)state;
    enum { N = 200 };
    rt_memplan_buffer b[N];
    size_t off[N], arena, naive = 0;
    unsigned seed = 12345;
    for (int i = 0; i < N; i++) {
        seed = seed * 1103515245u + 12345u;
        b[i].size = 1 + (seed >> 8) % 5000;
        b[i].first = i / 2;
        b[i].last = b[i].first + (int)((seed >> 20) % 10);
        b[i].reuse = -1;
        naive += (b[i].size + 63) / 64 * 64;
    }
    b[7].first = -1; /* not placed */
    off[7] = 99;
    assert_int_equal(rt_memplan_assign(b, N, off, &arena, NULL), RT_OK);
    assert_int_equal(off[7], 99);
    assert_no_conflicts(b, off, N);
    assert_true(arena < naive);
}

static void test_memplan_inplace(void **state)
{
    (void)state;
    /* a -> b -> c, each written over the one before, which dies there; d, written at step
     * 1 beside b, lives to the end */
    rt_memplan_buffer b[4] = {{1000, 0, 1, -1}, {1000, 1, 2, 0}, {1000, 2, 3, 1}, {500, 1, 3, -1}};
    size_t off[4], arena;
    assert_int_equal(rt_memplan_assign(b, 4, off, &arena, NULL), RT_OK);
    assert_int_equal(off[1], off[0]);
    assert_int_equal(off[2], off[0]);
    assert_true(off[3] >= off[0] + 1024 || off[3] + 512 <= off[0]);
    assert_int_equal(arena, 1024 + 512);
    /* refused: a is still read at step 2, after b is written; and a larger buffer */
    rt_memplan_buffer r[3] = {{1000, 0, 2, -1}, {1000, 1, 3, 0}, {2000, 2, 3, 0}};
    assert_int_equal(rt_memplan_assign(r, 3, off, &arena, NULL), RT_OK);
    assert_no_conflicts(r, off, 3);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_f16_round_trip),   cmocka_unit_test(test_bf16),
        cmocka_unit_test(test_dtype_load_store), cmocka_unit_test(test_tensor_create_and_clone),
        cmocka_unit_test(test_tensor_strings),   cmocka_unit_test(test_shape_str),
        cmocka_unit_test(test_graph_check),      cmocka_unit_test(test_node_attrs),
        cmocka_unit_test(test_memplan_chain_reuses),
        cmocka_unit_test(test_memplan_random_no_overlap),
        cmocka_unit_test(test_memplan_inplace),
    };
    return cmocka_run_group_tests_name("core", tests, NULL, NULL);
}
