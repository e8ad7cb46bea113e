/* test_srv_instances.c: instance_group parsing (kinds, per-group counts and gpus, the
 * errors) and srv_instances_place with Triton's semantics over 0, 1 and 3 visible CUDA
 * devices: KIND_GPU puts count instances on each listed (or each visible) device, KIND_CPU
 * forces the CPU, KIND_AUTO follows --backend; a GPU group without its device is refused
 * with the reason. Pure: nothing here touches a device. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <string.h>

#include "srv_instances.h"
#include "srv_model_config.h"

/* Parses config text for model "m"; returns the status, err holds the reason. */
static rt_status parse(srv_model_config *cfg, const char *text, rt_error *err)
{
    json_error_t jerr;
    json_t *root = json_loads(text, 0, &jerr);
    assert_non_null(root);
    rt_status st = srv_model_config_parse(cfg, root, "m", err);
    json_decref(root);
    return st;
}

/* Places text's groups over `visible` devices with --backend `backend`. */
static rt_status place(const char *text, rt_backend_kind backend, int visible,
                       srv_placement *out, int *n, rt_error *err)
{
    srv_model_config cfg;
    rt_status st = parse(&cfg, text, err);
    if (st == RT_OK)
        st = srv_instances_place(&cfg, backend, visible, out, n, err);
    srv_model_config_free(&cfg);
    return st;
}

static void test_parse_groups(void **state)
{
    (void)state;
    srv_model_config cfg;
    rt_error err = {0};
    assert_int_equal(parse(&cfg, "{\"instance_group\": [{\"count\": 2, \"kind\": \"KIND_CPU\"},"
                                 " {\"kind\": \"KIND_GPU\", \"gpus\": [1, 0]}, {\"count\": 3}]}",
                           &err), RT_OK);
    assert_int_equal(cfg.n_groups, 3);
    assert_int_equal(cfg.groups[0].kind, SRV_KIND_CPU);
    assert_int_equal(cfg.groups[0].count, 2);
    assert_int_equal(cfg.groups[1].kind, SRV_KIND_GPU);
    assert_int_equal(cfg.groups[1].count, 1);
    assert_int_equal(cfg.groups[1].n_gpus, 2);
    assert_int_equal(cfg.groups[1].gpus[0], 1);
    assert_int_equal(cfg.groups[2].kind, SRV_KIND_AUTO);
    assert_true(cfg.instance_gpu);
    /* GET .../config writes the groups back as written */
    json_t *j = srv_model_config_to_json(&cfg);
    json_t *ig = json_object_get(j, "instance_group");
    assert_int_equal(json_array_size(ig), 3);
    assert_string_equal(json_string_value(json_object_get(json_array_get(ig, 1), "kind")),
                        "KIND_GPU");
    assert_int_equal(json_array_size(json_object_get(json_array_get(ig, 1), "gpus")), 2);
    json_decref(j);
    srv_model_config_free(&cfg);
}

static void test_parse_errors(void **state)
{
    (void)state;
    static const struct {
        const char *text, *reason;
    } cases[] = {
        {"{\"instance_group\": [{\"kind\": \"KIND_TPU\"}]}", "kind must be KIND_CPU"},
        {"{\"instance_group\": [{\"kind\": \"KIND_CPU\", \"gpus\": [0]}]}",
         "gpus needs kind KIND_GPU"},
        {"{\"instance_group\": [{\"kind\": \"KIND_GPU\", \"gpus\": [-1]}]}", "gpus"},
        {"{\"instance_group\": [{\"kind\": \"KIND_GPU\", \"gpus\": [99999]}]}",
         "gpu 99999 is not a device index"},
        {"{\"instance_group\": [{\"count\": 40}, {\"count\": 40}]}", "more than 64 instances"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        srv_model_config cfg;
        rt_error err = {0};
        assert_int_not_equal(parse(&cfg, cases[i].text, &err), RT_OK);
        if (!strstr(err.text, cases[i].reason))
            fail_msg("%s: got '%s'", cases[i].text, err.text);
        srv_model_config_free(&cfg);
    }
}

static void test_place_gpu_on_each_device(void **state)
{
    (void)state;
    srv_placement p[SRV_MAX_INSTANCES];
    int n = 0;
    rt_error err = {0};
    /* count 2 on each of gpus [2, 0], then one CPU instance */
    assert_int_equal(place("{\"instance_group\": [{\"count\": 2, \"kind\": \"KIND_GPU\", "
                           "\"gpus\": [2, 0]}, {\"kind\": \"KIND_CPU\"}]}",
                           RT_BACKEND_AUTO, 3, p, &n, &err), RT_OK);
    assert_int_equal(n, 5);
    const int dev[] = {2, 2, 0, 0};
    for (int i = 0; i < 4; i++) {
        assert_int_equal(p[i].backend, RT_BACKEND_CUDA);
        assert_int_equal(p[i].device, dev[i]);
    }
    assert_int_equal(p[4].backend, RT_BACKEND_CPU);
    /* no gpus: count on every visible device */
    assert_int_equal(place("{\"instance_group\": [{\"kind\": \"KIND_GPU\"}]}", RT_BACKEND_AUTO, 3,
                           p, &n, &err), RT_OK);
    assert_int_equal(n, 3);
    for (int i = 0; i < 3; i++)
        assert_int_equal(p[i].device, i);
    /* Triton's count is per device: 40 on each of 2 devices is too many */
    assert_int_not_equal(place("{\"instance_group\": [{\"count\": 40, \"kind\": \"KIND_GPU\"}]}",
                               RT_BACKEND_AUTO, 2, p, &n, &err), RT_OK);
    assert_non_null(strstr(err.text, "more than 64 instances"));
}

static void test_place_auto_and_cpu(void **state)
{
    (void)state;
    srv_placement p[SRV_MAX_INSTANCES];
    int n = 0;
    rt_error err = {0};
    /* no instance_group: one instance where --backend says */
    assert_int_equal(place("{}", RT_BACKEND_CUDA, 1, p, &n, &err), RT_OK);
    assert_int_equal(n, 1);
    assert_int_equal(p[0].backend, RT_BACKEND_CUDA);
    assert_int_equal(p[0].device, 0);
    assert_int_equal(place("{\"instance_group\": [{\"count\": 2, \"kind\": \"KIND_AUTO\"}, "
                           "{\"kind\": \"KIND_CPU\"}]}", RT_BACKEND_AUTO, 2, p, &n, &err), RT_OK);
    assert_int_equal(n, 3);
    assert_int_equal(p[0].backend, RT_BACKEND_AUTO);
    assert_int_equal(p[1].backend, RT_BACKEND_AUTO);
    assert_int_equal(p[2].backend, RT_BACKEND_CPU); /* even with --backend auto and GPUs */
}

static void test_place_refusals(void **state)
{
    (void)state;
    srv_placement p[SRV_MAX_INSTANCES];
    int n = 0;
    rt_error err = {0};
    assert_int_not_equal(place("{\"instance_group\": [{\"kind\": \"KIND_GPU\"}]}", RT_BACKEND_AUTO,
                               0, p, &n, &err), RT_OK);
    assert_non_null(strstr(err.text, "instance_group[0] is KIND_GPU but no CUDA device is visible"));
    assert_int_not_equal(place("{\"instance_group\": [{\"kind\": \"KIND_CPU\"}, {\"kind\": "
                               "\"KIND_GPU\", \"gpus\": [0, 2]}]}", RT_BACKEND_AUTO, 2, p, &n,
                               &err), RT_OK);
    assert_non_null(strstr(err.text, "instance_group[1] names gpu 2, which does not exist (2 CUDA "
                                     "devices visible)"));
    assert_int_not_equal(place("{\"instance_group\": [{\"kind\": \"KIND_GPU\"}]}", RT_BACKEND_CPU,
                               1, p, &n, &err), RT_OK);
    assert_non_null(strstr(err.text, "--backend cpu"));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_groups),
        cmocka_unit_test(test_parse_errors),
        cmocka_unit_test(test_place_gpu_on_each_device),
        cmocka_unit_test(test_place_auto_and_cpu),
        cmocka_unit_test(test_place_refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
