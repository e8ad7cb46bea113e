/* test_srv_guard.c: the accuracy guard: its metrics on hand-computed cases (decisions by
 * threshold and argmax, NaN rows, cosine similarity), the infd.compression and
 * infd.accuracy_guard config fields and their errors, and srv_guard_check on the spam
 * model with validation sets written here: a wrong or escaping set is refused with the
 * reason. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "rt_onnx.h"
#include "rt_path.h"
#include "srv_guard.h"
#include "srv_log.h"
#include "srv_model_config.h"

#define SPAM_MODEL "models/spam/1/model.onnx"

/* ---- metrics ---- */

static void test_accuracy_threshold(void **state)
{
    (void)state;
    /* one probability per row; threshold 0.5: decisions u = 1 0 1 0, c = 1 1 0 0 */
    const float u[] = {0.9f, 0.1f, 0.5f, 0.2f}, c[] = {0.8f, 0.6f, 0.49f, 0.0f};
    const int64_t labels[] = {1, 0, 1, 1};
    srv_guard_result r;
    rt_error err = {0};
    assert_int_equal(srv_guard_measure(SRV_GUARD_ACCURACY, 0.5f, u, c, labels, 4, 1, &r, &err),
                     RT_OK);
    assert_int_equal(r.rows, 4);
    assert_true(r.uncompressed == 0.75); /* rows 0, 1, 2 right */
    assert_true(r.compressed == 0.25);   /* row 0 right */
    assert_true(r.drop == 0.5);
    /* a higher threshold: u = 1 0 0 0 (rows 0, 1), c = 1 0 0 0 */
    assert_int_equal(srv_guard_measure(SRV_GUARD_ACCURACY, 0.7f, u, c, labels, 4, 1, &r, &err),
                     RT_OK);
    assert_true(r.uncompressed == 0.5 && r.compressed == 0.5 && r.drop == 0);
}

static void test_accuracy_argmax_and_nan(void **state)
{
    (void)state;
    /* three classes per row; the compressed model's row 1 holds NaN */
    const float u[] = {1, 5, 2, 9, 0, 0, 0, 0, 3}, c[] = {1, 5, 6, 9, NAN, 0, 0, 0, 3};
    const int64_t labels[] = {1, 0, 2};
    srv_guard_result r;
    rt_error err = {0};
    assert_int_equal(srv_guard_measure(SRV_GUARD_ACCURACY, 0.5f, u, c, labels, 3, 3, &r, &err),
                     RT_OK);
    assert_true(r.uncompressed == 1.0);
    assert_true(fabs(r.compressed - 1.0 / 3) < 1e-12); /* row 0 says 2, row 1 NaN */
    const int64_t bad[] = {1, 3, 0};
    assert_int_equal(srv_guard_measure(SRV_GUARD_ACCURACY, 0.5f, u, c, bad, 3, 3, &r, &err),
                     RT_ERR_INVALID_ARG);
    assert_string_equal(err.text, "label 3 of row 1 is not a class of the output (0..2)");
    const int64_t two[] = {0, 2};
    assert_int_equal(srv_guard_measure(SRV_GUARD_ACCURACY, 0.5f, u, c, two, 2, 1, &r, &err),
                     RT_ERR_INVALID_ARG);
    assert_string_equal(err.text, "label 2 of row 1 is not a class of the output (0..1)");
}

static void test_agreement(void **state)
{
    (void)state;
    const float u[] = {0.9f, 0.1f, 0.7f, NAN, 0.3f}, c[] = {0.6f, 0.2f, 0.4f, NAN, INFINITY};
    srv_guard_result r;
    rt_error err = {0};
    assert_int_equal(srv_guard_measure(SRV_GUARD_AGREEMENT, 0.5f, u, c, NULL, 5, 1, &r, &err),
                     RT_OK);
    /* rows 0 and 1 agree; 2 differs; NaN and infinity never agree */
    assert_true(r.uncompressed == 1.0 && r.compressed == 0.4);
    assert_true(fabs(r.drop - 0.6) < 1e-12);
}

static void test_cosine(void **state)
{
    (void)state;
    const float u[] = {1, 0, 3, 4, 0, 0, 1, 1, 2, 0}, c[] = {0, 1, 6, 8, 0, 0, -1, -1, NAN, 0};
    srv_guard_result r;
    rt_error err = {0};
    /* rows: orthogonal 0, parallel 1, both zero 1, opposite -1, NaN 0 */
    assert_int_equal(srv_guard_measure(SRV_GUARD_COSINE, 0.5f, u, c, NULL, 5, 2, &r, &err),
                     RT_OK);
    assert_true(fabs(r.compressed - 1.0 / 5) < 1e-12);
    assert_true(fabs(r.drop - 0.8) < 1e-12);
    assert_int_equal(srv_guard_measure(SRV_GUARD_COSINE, 0.5f, u, c, NULL, 0, 2, &r, &err),
                     RT_ERR_INVALID_ARG);
}

/* ---- config ---- */

/* Parses {"infd": <infd_json>} as the config of model "m"; returns the status. */
static rt_status parse(const char *infd_json, srv_model_config *cfg, rt_error *err)
{
    char text[1024];
    snprintf(text, sizeof text, "{\"infd\": %s}", infd_json);
    json_t *root = json_loads(text, 0, NULL);
    assert_non_null(root);
    rt_status st = srv_model_config_parse(cfg, root, "m", err);
    json_decref(root);
    return st;
}

static void test_config_fields(void **state)
{
    (void)state;
    srv_model_config cfg;
    rt_error err = {0};
    assert_int_equal(parse("{\"compression\": {\"precision\": \"bf16\", \"quantize\": "
                           "\"int8-weight-only\", \"prune\": 0.5, \"low_rank\": 0.95}, "
                           "\"accuracy_guard\": {\"validation_set\": \"val/set\", \"metric\": "
                           "\"cosine\", \"output\": \"y\", \"max_accuracy_drop\": 0.01}}",
                           &cfg, &err),
                     RT_OK);
    assert_int_equal(cfg.compress.precision, RT_PRECISION_BF16);
    assert_int_equal(cfg.compress.quantize, RT_QUANT_INT8_WEIGHT_ONLY);
    assert_int_equal(cfg.compress.prune, RT_PRUNE_MAGNITUDE);
    assert_true(cfg.compress.prune_sparsity == 0.5f && cfg.compress.low_rank_energy == 0.95f);
    assert_true(cfg.guard.enabled && cfg.guard.metric == SRV_GUARD_COSINE);
    assert_string_equal(cfg.guard.validation_set, "val/set");
    assert_string_equal(cfg.guard.output, "y");
    assert_true(cfg.guard.max_drop == 0.01 && cfg.guard.threshold == 0.5f);
    /* the config echo writes back what was parsed */
    json_t *out = srv_model_config_to_json(&cfg);
    char *dumped = json_dumps(json_object_get(json_object_get(out, "infd"), "compression"),
                              JSON_SORT_KEYS | JSON_COMPACT | JSON_REAL_PRECISION(6));
    assert_string_equal(dumped, "{\"low_rank\":0.95,\"precision\":\"bf16\",\"prune\":\"0.5\","
                                "\"quantize\":\"int8-weight-only\"}");
    free(dumped);
    json_t *guard = json_object_get(json_object_get(out, "infd"), "accuracy_guard");
    assert_string_equal(json_string_value(json_object_get(guard, "metric")), "cosine");
    assert_true(json_real_value(json_object_get(guard, "max_accuracy_drop")) == 0.01);
    json_decref(out);
    srv_model_config_free(&cfg);

    assert_int_equal(parse("{\"compression\": {\"prune\": \"2:4\"}}", &cfg, &err), RT_OK);
    assert_int_equal(cfg.compress.prune, RT_PRUNE_2_4);
    assert_false(cfg.guard.enabled);
    srv_model_config_free(&cfg);
    assert_int_equal(parse("{}", &cfg, &err), RT_OK);
    assert_false(rt_compress_options_active(&cfg.compress));
    out = srv_model_config_to_json(&cfg);
    assert_null(json_object_get(out, "infd"));
    json_decref(out);
    srv_model_config_free(&cfg);
}

static void test_config_errors(void **state)
{
    (void)state;
    static const char *const cases[][2] = {
        {"{\"compression\": 1}", "infd.compression must be an object"},
        {"{\"compression\": {\"quantise\": \"int8\"}}",
         "infd.compression: unknown field 'quantise'"},
        {"{\"compression\": {\"quantize\": \"int4\"}}",
         "infd.compression: quantize takes none, int8 or int8-weight-only, not 'int4'"},
        {"{\"compression\": {\"precision\": 16}}", "infd.compression.precision must be a string"},
        {"{\"compression\": {\"prune\": 1.5}}", "infd.compression: prune takes none, 2:4 or a "
                                                "sparsity between 0 and 1 such as 0.5, not '1.5'"},
        {"{\"compression\": {\"low_rank\": true}}",
         "infd.compression.low_rank must be a number or a string"},
        {"{\"accuracy_guard\": {\"max_accuracy_drop\": 0.01}}",
         "infd.accuracy_guard.validation_set must be a non-empty string"},
        {"{\"accuracy_guard\": {\"validation_set\": \"../spam/val\", \"max_accuracy_drop\": 0}}",
         "infd.accuracy_guard.validation_set '../spam/val' must be a relative path inside the "
         "model directory"},
        {"{\"accuracy_guard\": {\"validation_set\": \"/etc\", \"max_accuracy_drop\": 0}}",
         "infd.accuracy_guard.validation_set '/etc' must be a relative path inside the model "
         "directory"},
        {"{\"accuracy_guard\": {\"validation_set\": \"v\", \"max_accuracy_drop\": 2}}",
         "infd.accuracy_guard.max_accuracy_drop must be a number in [0, 1] (0.005: half a point "
         "of accuracy)"},
        {"{\"accuracy_guard\": {\"validation_set\": \"v\"}}",
         "infd.accuracy_guard.max_accuracy_drop must be a number in [0, 1] (0.005: half a point "
         "of accuracy)"},
        {"{\"accuracy_guard\": {\"validation_set\": \"v\", \"max_accuracy_drop\": 0, "
         "\"metric\": \"f1\"}}",
         "infd.accuracy_guard.metric must be \"accuracy\", \"agreement\" or \"cosine\""},
        {"{\"accuracy_guard\": {\"validation_set\": \"v\", \"max_accuracy_drop\": 0, "
         "\"max_drop\": 0}}", "infd.accuracy_guard: unknown field 'max_drop'"},
        {"{\"accuracy_guard\": {\"validation_set\": \"v\", \"max_accuracy_drop\": 0, "
         "\"threshold\": \"high\"}}", "infd.accuracy_guard.threshold must be a number"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        srv_model_config cfg;
        rt_error err = {0};
        assert_int_not_equal(parse(cases[i][0], &cfg, &err), RT_OK);
        if (strcmp(err.text, cases[i][1]) != 0)
            fail_msg("%s\n  got:  %s\n  want: %s", cases[i][0], err.text, cases[i][1]);
        srv_model_config_free(&cfg);
    }
}

/* ---- srv_guard_check on the spam model ---- */

typedef struct fixture {
    char dir[64];              /* the model directory */
    srv_guard_config guard;
    rt_session_options opts;
    rt_session *session;
} fixture;

static void write_tensor(const char *dir, const char *file, rt_dtype dt, int rank,
                         const int64_t *dims, const char *name)
{
    char path[256];
    snprintf(path, sizeof path, "%s/%s", dir, file);
    rt_shape shape = rt_shape_make(rank, dims);
    rt_tensor *t = rt_tensor_create(dt, &shape, NULL);
    assert_non_null(t);
    for (int64_t i = 0; i < rt_tensor_numel(t); i++)
        rt_dtype_store_f64(dt, t->data, (size_t)i, dt == RT_DTYPE_F32 ? (double)(i % 7) / 2 : i % 2);
    assert_int_equal(rt_tensorproto_write_file(path, t, name, NULL), RT_OK);
    rt_tensor_free(t);
}

static int setup(void **state)
{
    fixture *f = calloc(1, sizeof *f);
    snprintf(f->dir, sizeof f->dir, "/tmp/test_srv_guard.XXXXXX");
    if (!f || !mkdtemp(f->dir))
        return -1;
    char path[128];
    snprintf(path, sizeof path, "%s/val", f->dir);
    mkdir(path, 0755);
    write_tensor(path, "input_0.pb", RT_DTYPE_F32, 2, (int64_t[]){100, 57}, "features");
    write_tensor(path, "labels.pb", RT_DTYPE_I64, 1, (int64_t[]){100}, "labels");
    f->guard = (srv_guard_config){.enabled = true, .validation_set = strdup("val"),
                                  .metric = SRV_GUARD_ACCURACY, .max_drop = 1,
                                  .threshold = 0.5f};
    rt_session_options_init(&f->opts);
    f->opts.threads = 1;
    f->opts.compress.precision = RT_PRECISION_FP16;
    f->session = rt_session_create(SPAM_MODEL, &f->opts, NULL);
    *state = f;
    return f->session ? 0 : -1;
}

static int teardown(void **state)
{
    fixture *f = *state;
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf %s", f->dir);
    if (system(cmd) != 0)
        return -1;
    rt_session_free(f->session);
    srv_guard_config_free(&f->guard);
    free(f);
    return 0;
}

static rt_status check(fixture *f, int64_t max_batch, rt_error *err)
{
    return srv_guard_check(&f->guard, f->dir, SPAM_MODEL, &f->opts, f->session, max_batch,
                           "model 'm' version 1", err);
}

static void expect_refused(fixture *f, const char *reason)
{
    rt_error err = {0};
    assert_int_not_equal(check(f, 64, &err), RT_OK);
    if (!strstr(err.text, reason))
        fail_msg("got: %s\nwant: ...%s...", err.text, reason);
}

static void test_check_runs(void **state)
{
    fixture *f = *state;
    rt_error err = {0};
    /* 100 rows in batches of 64 and 36, and in one run */
    assert_int_equal(check(f, 64, &err), RT_OK);
    assert_int_equal(check(f, 1024, &err), RT_OK);
    f->guard.metric = SRV_GUARD_AGREEMENT;
    assert_int_equal(check(f, 0, &err), RT_OK);
    /* a drop larger than allowed: the metric that cannot be met, 1.5 of agreement */
    f->guard.max_drop = -0.5;
    assert_int_equal(check(f, 64, &err), RT_ERR_MODEL);
    assert_non_null(strstr(err.text, "accuracy guard: agreement "));
    assert_non_null(strstr(err.text, " of output 'spam_probability' compressed vs uncompressed "
                                     "on 100 rows of 'val' (drop "));
    assert_non_null(strstr(err.text, " > max_accuracy_drop -0.5)"));
    /* without compression nothing runs, even with a drop that cannot be met */
    rt_compress_options_init(&f->opts.compress);
    assert_int_equal(check(f, 64, &err), RT_OK);
}

static void test_check_refuses_bad_sets(void **state)
{
    fixture *f = *state;
    char val[128], link[256];
    snprintf(val, sizeof val, "%s/val", f->dir);
    write_tensor(val, "input_1.pb", RT_DTYPE_F32, 2, (int64_t[]){100, 57}, "features");
    expect_refused(f, "accuracy guard: the validation set has input_1.pb, the model has 1 input");
    snprintf(link, sizeof link, "%s/input_1.pb", val);
    unlink(link);
    write_tensor(val, "labels.pb", RT_DTYPE_I64, 1, (int64_t[]){99}, "labels");
    expect_refused(f, "accuracy guard: labels.pb has 99 labels, output 'spam_probability' "
                      "has 100 rows");
    unlink(strcat(strcpy(link, val), "/labels.pb"));
    expect_refused(f, "accuracy guard: metric accuracy needs labels.pb in the validation set");
    write_tensor(val, "labels.pb", RT_DTYPE_F32, 1, (int64_t[]){100}, "labels");
    expect_refused(f, "accuracy guard: labels.pb: label 1 is not a whole number");
    write_tensor(val, "labels.pb", RT_DTYPE_I64, 1, (int64_t[]){100}, "labels");
    write_tensor(val, "input_0.pb", RT_DTYPE_F32, 2, (int64_t[]){100, 57}, "feats");
    expect_refused(f, "accuracy guard: input_0.pb holds 'feats', not an input of the model");
    write_tensor(val, "input_0.pb", RT_DTYPE_F32, 2, (int64_t[]){100, 56}, "features");
    expect_refused(f, "accuracy guard: input 'features' has shape [64,56], the model expects "
                      "[-1,57]");
    unlink(strcat(strcpy(link, val), "/input_0.pb"));
    expect_refused(f, "accuracy guard: the validation set has no input_0.pb (the model has 1 "
                      "input)");
    free(f->guard.output);
    f->guard.output = strdup("logits");
    expect_refused(f, "accuracy guard: output 'logits' is not an output of the model");
    /* a link out of the model directory */
    snprintf(link, sizeof link, "%s/outside", f->dir);
    assert_int_equal(symlink("/tmp", link), 0);
    free(f->guard.validation_set);
    f->guard.validation_set = strdup("outside");
    expect_refused(f, "accuracy guard: validation set 'outside' resolves outside the model "
                      "directory");
    free(f->guard.validation_set);
    f->guard.validation_set = strdup("missing");
    expect_refused(f, "accuracy guard: validation set 'missing': No such file or directory");
}

static void test_paths_confined(void **state)
{
    (void)state;
    assert_true(rt_path_is_confined("a/b.pb") && rt_path_is_confined("a..b/c"));
    assert_false(rt_path_is_confined("") || rt_path_is_confined("/a") ||
                 rt_path_is_confined("a/../b") || rt_path_is_confined(".."));
}

int main(void)
{
    srv_log_setup(CFG_LOG_ERROR, CFG_LOG_TEXT);
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_accuracy_threshold),
        cmocka_unit_test(test_accuracy_argmax_and_nan),
        cmocka_unit_test(test_agreement),
        cmocka_unit_test(test_cosine),
        cmocka_unit_test(test_config_fields),
        cmocka_unit_test(test_config_errors),
        cmocka_unit_test_setup_teardown(test_check_runs, setup, teardown),
        cmocka_unit_test_setup_teardown(test_check_refuses_bad_sets, setup, teardown),
        cmocka_unit_test(test_paths_confined),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
