/* test_cfg_options.c: the daemon's option table: defaults, CLI forms, config file, validation. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cfg_options.h"

static bool parse(cfg_server *c, char *err, int argc, char **argv)
{
    cfg_server_init(c);
    return cfg_server_parse_args(c, argc, argv, err);
}

static void test_defaults(void **state)
{
    (void)state;
    cfg_server c;
    char err[CFG_ERR_MAX];
    char *argv[] = {"infd", "--model-repository", "/m"};
    assert_true(parse(&c, err, 3, argv));
    assert_string_equal(c.http_address, "127.0.0.1");
    assert_int_equal(c.http_port, 8000);
    assert_int_equal(c.max_request_bytes, 64 * 1024 * 1024);
    assert_int_equal(c.exit_timeout_secs, 30);
    assert_int_equal(c.control_mode, CFG_CONTROL_NONE);
    assert_int_equal(c.log_level, CFG_LOG_INFO);
    assert_int_equal(c.metrics_naming, CFG_METRICS_TRITON);
    cfg_server_free(&c);
}

static void test_forms_and_lists(void **state)
{
    (void)state;
    cfg_server c;
    char err[CFG_ERR_MAX];
    char *argv[] = {"infd", "--model-repository=/m", "--http-port", "9001",
                    "--model-control-mode", "explicit", "--load-model", "a", "--load-model=b",
                    "--log-level", "verbose", "--backend", "cpu", "--metrics-naming=prometheus"};
    assert_true(parse(&c, err, 14, argv));
    assert_string_equal(c.model_repository, "/m");
    assert_int_equal(c.http_port, 9001);
    assert_int_equal(c.control_mode, CFG_CONTROL_EXPLICIT);
    assert_int_equal(c.n_load_models, 2);
    assert_string_equal(c.load_models[1], "b");
    assert_int_equal(c.log_level, CFG_LOG_VERBOSE);
    assert_int_equal(c.backend, CFG_BACKEND_CPU);
    assert_int_equal(c.metrics_naming, CFG_METRICS_PROMETHEUS);
    cfg_server_free(&c);
}

static void expect_error(int argc, char **argv, const char *needle)
{
    cfg_server c;
    char err[CFG_ERR_MAX] = "";
    assert_false(parse(&c, err, argc, argv));
    if (!strstr(err, needle))
        fail_msg("error '%s' does not mention '%s'", err, needle);
    cfg_server_free(&c);
}

static void test_errors(void **state)
{
    (void)state;
    char *a1[] = {"infd"};
    expect_error(1, a1, "--model-repository is required");
    char *a2[] = {"infd", "--model-repository", "/m", "--http-port", "70000"};
    expect_error(5, a2, "--http-port");
    char *a3[] = {"infd", "--model-repository", "/m", "--log-level", "loud"};
    expect_error(5, a3, "not one of error|warn|info|verbose");
    char *a4[] = {"infd", "--model-repository", "/m", "--bogus"};
    expect_error(4, a4, "unknown option '--bogus'");
    char *a5[] = {"infd", "--model-repository"};
    expect_error(2, a5, "needs a value");
    char *a6[] = {"infd", "--model-repository", "/m", "--load-model", "x"};
    expect_error(5, a6, "needs --model-control-mode explicit");
    char *a7[] = {"infd", "--model-repository", "/m", "--model-control-mode", "explicit",
                  "--load-model", "../x"};
    expect_error(7, a7, "invalid model name");
    char *a8[] = {"infd", "--model-repository", "/m", "--metrics-port", "8000"};
    expect_error(5, a8, "must differ");
    char *a9[] = {"infd", "--model-repository", "/m", "--metrics-naming", "openmetrics"};
    expect_error(5, a9, "not one of triton|prometheus");
}

static void test_config_file_and_override(void **state)
{
    (void)state;
    char path[] = "/tmp/cfg_test_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    FILE *f = fdopen(fd, "w");
    fputs("{\"model-repository\": \"/file\", \"http-port\": 9100, \"log-format\": \"json\","
          " \"model-control-mode\": \"explicit\", \"load-model\": [\"a\", \"b\"]}", f);
    fclose(f);
    cfg_server c;
    char err[CFG_ERR_MAX];
    char *argv[] = {"infd", "--http-port", "9200", "--config", path};
    assert_true(parse(&c, err, 5, argv));
    assert_string_equal(c.model_repository, "/file");
    assert_int_equal(c.http_port, 9200); /* the command line wins */
    assert_int_equal(c.log_format, CFG_LOG_JSON);
    assert_int_equal(c.n_load_models, 2);
    cfg_server_free(&c);
    f = fopen(path, "w");
    fputs("{\"http-port\": \"x\"", f);
    fclose(f);
    char *bad[] = {"infd", "--config", path};
    expect_error(3, bad, "config file");
    remove(path);
}

static void test_help_lists_every_option(void **state)
{
    (void)state;
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    cfg_print_help(f, "infd");
    fclose(f);
    const char *flags[] = {"--model-repository", "--http-address", "--http-port", "--metrics-port",
                           "--config", "--model-control-mode", "--load-model",
                           "--exit-timeout-secs", "--max-request-bytes", "--log-level",
                           "--log-format", "--backend", "--help", "--version"};
    for (size_t i = 0; i < sizeof flags / sizeof flags[0]; i++)
        if (!strstr(buf, flags[i]))
            fail_msg("--help lacks %s", flags[i]);
    assert_non_null(strstr(buf, "(default: 8000)"));
    free(buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_defaults),
        cmocka_unit_test(test_forms_and_lists),
        cmocka_unit_test(test_errors),
        cmocka_unit_test(test_config_file_and_override),
        cmocka_unit_test(test_help_lists_every_option),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
