/* test_srv_json_arena.c: jansson documents built in a bump arena: small ones inside the
 * caller's block, large ones spilling to malloc (and freed by json_decref), values made
 * outside the arena freed while it is open, and plain malloc again once it is closed. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_json_arena.h"

static bool inside(const void *p, const char *block, size_t size)
{
    return (uintptr_t)p >= (uintptr_t)block && (uintptr_t)p < (uintptr_t)block + size;
}

static void test_small_document_stays_in_block(void **state)
{
    (void)state;
    char block[4096];
    json_t *before = json_string("made before the arena");
    srv_json_arena a;
    srv_json_arena_open(&a, block, sizeof block);
    json_error_t err;
    json_t *root = json_loads("{\"inputs\":[{\"name\":\"x\",\"data\":[1.5,2,3]}]}", 0, &err);
    assert_non_null(root);
    assert_true(inside(root, block, sizeof block));
    json_t *data = json_object_get(json_array_get(json_object_get(root, "inputs"), 0), "data");
    assert_true(inside(data, block, sizeof block));
    assert_true(json_real_value(json_array_get(data, 0)) == 1.5);
    assert_int_equal(json_integer_value(json_array_get(data, 2)), 3);
    json_decref(before); /* a malloc'd value freed while the arena is open */
    json_decref(root);   /* frees into the arena are no-ops */
    assert_false(a.overflowed);
    assert_true(a.used > 0 && a.used <= a.cap);
    srv_json_arena_close(&a);
    json_t *after = json_string("made after");
    assert_false(inside(after, block, sizeof block));
    json_decref(after);
}

static void test_large_document_spills_to_malloc(void **state)
{
    (void)state;
    size_t n = 5000, cap = n * 16 + 16;
    char *text = malloc(cap), *w = text;
    w += sprintf(w, "[");
    for (size_t i = 0; i < n; i++)
        w += sprintf(w, "%s\"s%zu\"", i ? "," : "", i);
    sprintf(w, "]");
    char block[1024];
    srv_json_arena a;
    srv_json_arena_open(&a, block, sizeof block);
    json_error_t err;
    json_t *root = json_loads(text, 0, &err);
    assert_non_null(root);
    assert_true(a.overflowed);
    assert_int_equal(json_array_size(root), n);
    assert_string_equal(json_string_value(json_array_get(root, n - 1)), "s4999");
    json_decref(root); /* what went to malloc is freed (the ASan build checks) */
    srv_json_arena_close(&a);
    free(text);
}

static void test_misaligned_block(void **state)
{
    (void)state;
    char block[512];
    srv_json_arena a;
    srv_json_arena_open(&a, block + 3, sizeof block - 3);
    json_t *v = json_integer(7);
    assert_int_equal((uintptr_t)v % 16, 0);
    assert_true(inside(v, block, sizeof block));
    srv_json_arena_close(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_small_document_stays_in_block),
        cmocka_unit_test(test_large_document_spills_to_malloc),
        cmocka_unit_test(test_misaligned_block),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
