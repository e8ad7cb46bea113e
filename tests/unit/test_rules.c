/* test_rules.c: score -> action rules at and around each threshold (FP32 neighbours),
 * at the ends of [0, 1], for NaN and infinities, with custom labels, and every invalid
 * rule set refused with its reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <string.h>

#include "rt_rules.h"

static rt_rules spam_rules(const char *nan_label)
{
    rt_rules r;
    const double min[] = {0.9, 0.5};
    const char *const label[] = {"spam_folder", "flag_for_review"};
    rt_error err;
    assert_int_equal(rt_rules_init(&r, 2, min, label, "inbox", nan_label, &err), RT_OK);
    return r;
}

static void test_spam_thresholds(void **state)
{
    (void)state;
    rt_rules r = spam_rules(NULL);
    assert_string_equal(rt_rules_apply(&r, 0.0f), "inbox");
    assert_string_equal(rt_rules_apply(&r, nextafterf(0.5f, 0.0f)), "inbox");
    assert_string_equal(rt_rules_apply(&r, 0.5f), "flag_for_review");
    assert_string_equal(rt_rules_apply(&r, nextafterf(0.5f, 1.0f)), "flag_for_review");
    assert_string_equal(rt_rules_apply(&r, nextafterf(0.9f, 0.0f)), "flag_for_review");
    /* 0.9 in FP32 is 0.89999998: it meets the threshold written as 0.9 */
    assert_string_equal(rt_rules_apply(&r, 0.9f), "spam_folder");
    assert_string_equal(rt_rules_apply(&r, nextafterf(0.9f, 1.0f)), "spam_folder");
    assert_string_equal(rt_rules_apply(&r, 1.0f), "spam_folder");
    assert_string_equal(rt_rules_apply(&r, -0.0f), "inbox");
    assert_string_equal(rt_rules_apply(&r, -INFINITY), "inbox");
    assert_string_equal(rt_rules_apply(&r, INFINITY), "spam_folder");
    /* NaN meets no threshold: the default label unless a NaN label is given */
    assert_string_equal(rt_rules_apply(&r, NAN), "inbox");
    rt_rules_free(&r);
    r = spam_rules("flag_for_review");
    assert_string_equal(rt_rules_apply(&r, NAN), "flag_for_review");
    assert_string_equal(rt_rules_apply(&r, 0.2f), "inbox");
    rt_rules_free(&r);
    rt_rules_free(NULL);
}

static void test_custom_rules(void **state)
{
    (void)state;
    rt_rules r;
    const double min[] = {0.99, 0.7, 0.2};
    const char *const label[] = {"drop", "quarantine", "tag"};
    assert_int_equal(rt_rules_init(&r, 3, min, label, "deliver", NULL, NULL), RT_OK);
    assert_string_equal(rt_rules_apply(&r, 0.995f), "drop");
    assert_string_equal(rt_rules_apply(&r, 0.99f), "drop");
    assert_string_equal(rt_rules_apply(&r, 0.98f), "quarantine");
    assert_string_equal(rt_rules_apply(&r, 0.7f), "quarantine");
    assert_string_equal(rt_rules_apply(&r, 0.2f), "tag");
    assert_string_equal(rt_rules_apply(&r, nextafterf(0.2f, 0.0f)), "deliver");
    rt_rules_free(&r);
    /* no rules: everything gets the default */
    assert_int_equal(rt_rules_init(&r, 0, NULL, NULL, "inbox", NULL, NULL), RT_OK);
    assert_string_equal(rt_rules_apply(&r, 1.0f), "inbox");
    rt_rules_free(&r);
}

static void expect_invalid(int n, const double *min, const char *const *label,
                           const char *fallback, const char *nan_label, const char *msg)
{
    rt_rules r;
    rt_error err = {0};
    assert_int_equal(rt_rules_init(&r, n, min, label, fallback, nan_label, &err),
                     RT_ERR_INVALID_ARG);
    if (!strstr(err.text, msg))
        fail_msg("message '%s' does not contain '%s'", err.text, msg);
    assert_int_equal(r.n, 0);
    assert_null(r.fallback);
}

static void test_invalid(void **state)
{
    (void)state;
    const char *const label[] = {"a", "b"}, *const empty[] = {"a", ""};
    expect_invalid(2, (const double[]){0.5, 0.9}, label, "c", NULL, "must be below the previous");
    expect_invalid(2, (const double[]){0.5, 0.5}, label, "c", NULL, "must be below the previous");
    /* equal once rounded to FP32 */
    expect_invalid(2, (const double[]){0.9, 0.9000000001}, label, "c", NULL, "below the previous");
    expect_invalid(2, (const double[]){NAN, 0.5}, label, "c", NULL, "finite");
    expect_invalid(1, (const double[]){1e39}, label, "c", NULL, "finite");
    expect_invalid(2, (const double[]){0.9, 0.5}, empty, "c", NULL, "label must be a non-empty");
    expect_invalid(2, (const double[]){0.9, 0.5}, label, "", NULL, "default label");
    expect_invalid(2, (const double[]){0.9, 0.5}, label, "c", "", "NaN label");
    expect_invalid(RT_RULES_MAX + 1, NULL, NULL, "c", NULL, "rules are allowed");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_spam_thresholds),
        cmocka_unit_test(test_custom_rules),
        cmocka_unit_test(test_invalid),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
