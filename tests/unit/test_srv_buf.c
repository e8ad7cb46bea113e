/* test_srv_buf.c: srv_buf's formatted, integer and real appends, and its JSON string escaping: escapes,
 * UTF-8 kept as is, bytes that are not UTF-8 replaced by U+FFFD (responses stay JSON). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "srv_buf.h"

static void expect_json(const char *in, size_t n, const char *want)
{
    srv_buf b = {0};
    srv_buf_json_string(&b, in, n);
    char *got = srv_buf_take(&b, NULL);
    assert_string_equal(got, want);
    json_error_t err;
    json_t *j = json_loads(got, JSON_DECODE_ANY | JSON_ALLOW_NUL, &err);
    if (!j)
        fail_msg("%s is not JSON: %s", got, err.text);
    json_decref(j);
    free(got);
}

/* srv_buf_put_real prints exactly what "%.9g" / "%.17g" print, fast paths included. */
static void test_reals_match_printf(void **state)
{
    (void)state;
    const double values[] = {0.0, -0.0, 3.0, -3.0, 1.5, 0.1f, 1e-7, 123456789.0, 999999999.0,
                             1e9, -1e9, 16777217.0, 4294967296.0, 1e16, 99999999999999984.0,
                             1e17, 12345678901234567.0, 3.4028234663852886e38, 5e-324, -2.5e-3};
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        for (int is_double = 0; is_double < 2; is_double++) {
            char want[64];
            snprintf(want, sizeof want, is_double ? "%.17g" : "%.9g", values[i]);
            srv_buf b = {0};
            srv_buf_put_real(&b, values[i], is_double);
            assert_non_null(b.data);
            if (strcmp(b.data, want) != 0)
                fail_msg("%.17g (%s): got %s, printf gives %s", values[i],
                         is_double ? "double" : "float", b.data, want);
            srv_buf_free(&b);
        }
    }
}

static void test_escapes(void **state)
{
    (void)state;
    expect_json("a\"b\\c", 5, "\"a\\\"b\\\\c\"");
    expect_json("\n\x01", 2, "\"\\u000a\\u0001\"");
    expect_json("x\0y", 3, "\"x\\u0000y\"");
    expect_json("", 0, "\"\"");
}

static void test_utf8_kept(void **state)
{
    (void)state;
    /* é (2 bytes), € (3), U+10348 (4), U+10FFFF (the last code point) */
    const char *s = "\xc3\xa9\xe2\x82\xac\xf0\x90\x8d\x88\xf4\x8f\xbf\xbf";
    srv_buf b = {0};
    srv_buf_json_string(&b, s, strlen(s));
    assert_int_equal(b.len, strlen(s) + 2);
    assert_memory_equal(b.data + 1, s, strlen(s));
    srv_buf_free(&b);
}

static void test_invalid_utf8_replaced(void **state)
{
    (void)state;
    expect_json("a\xff" "b", 3, "\"a\\ufffdb\"");
    expect_json("\xc0\xaf", 2, "\"\\ufffd\\ufffd\"");         /* overlong '/' */
    expect_json("\xed\xa0\x80", 3, "\"\\ufffd\\ufffd\\ufffd\""); /* a surrogate */
    expect_json("\xf4\x90\x80\x80", 4, "\"\\ufffd\\ufffd\\ufffd\\ufffd\""); /* > U+10FFFF */
    expect_json("ok\xe2\x82", 4, "\"ok\\ufffd\\ufffd\"");     /* cut at the end */
    expect_json("\xe2(\xa1", 3, "\"\\ufffd(\\ufffd\"");
}

/* Short pieces format in place, long ones grow the buffer; the text is the same. */
static void test_printf(void **state)
{
    (void)state;
    char big[3000];
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    srv_buf b = {0};
    srv_buf_printf(&b, "%d,%.9g", 42, 0.1f);
    srv_buf_printf(&b, "[%s]", big);
    srv_buf_printf(&b, "%s", "");
    srv_buf_printf(&b, "%c", 'z');
    assert_int_equal(b.len, strlen("42,0.100000001") + 2 + strlen(big) + 1);
    assert_int_equal(strlen(b.data), b.len);
    assert_memory_equal(b.data, "42,0.100000001[x", 16);
    assert_string_equal(b.data + b.len - 3, "x]z");
    srv_buf_free(&b);
}

/* the integer writers agree with printf at the edges of their ranges */
static void test_integers(void **state)
{
    (void)state;
    const long long ints[] = {0, 7, -1, 10, -10, 1234567890123LL, INT64_MAX, INT64_MIN};
    srv_buf b = {0}, want = {0};
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++) {
        srv_buf_put_i64(&b, ints[i]);
        srv_buf_append(&b, ",", 1);
        srv_buf_printf(&want, "%lld,", ints[i]);
    }
    srv_buf_put_u64(&b, UINT64_MAX);
    srv_buf_printf(&want, "%llu", (unsigned long long)UINT64_MAX);
    assert_string_equal(b.data, want.data);
    srv_buf_free(&b);
    srv_buf_free(&want);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_printf),
        cmocka_unit_test(test_integers),
        cmocka_unit_test(test_reals_match_printf),
        cmocka_unit_test(test_escapes),
        cmocka_unit_test(test_utf8_kept),
        cmocka_unit_test(test_invalid_utf8_replaced),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
