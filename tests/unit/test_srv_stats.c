/* test_srv_stats.c: statistics recording and the Prometheus text under both namings
 * (Triton's microsecond counters, Prometheus-conformant seconds), label escaping, and the
 * histograms' cumulative buckets. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "srv_stats.h"

static void expect_line(const char *text, const char *line)
{
    if (!strstr(text, line))
        fail_msg("missing line '%s' in:\n%s", line, text);
}

static char *render(srv_stats *s, const char *name, srv_metrics_naming naming)
{
    srv_stats_ref ref = {name, "2", s};
    srv_buf b = {0};
    srv_stats_render_prometheus(&b, &ref, 1, naming);
    return srv_buf_take(&b, NULL);
}

/* Two successes (3 rows, then 1), one rejected request, one pending, batches of 3 and 1. */
static void record(srv_stats *s)
{
    assert_int_equal(srv_stats_init(s, 4), 0);
    srv_request *r = srv_request_create(1, 1);
    r->batch = 3;
    r->queue_ns = 1500000007;   /* 1.5 s + 7 ns */
    r->t_dispatched = 1;
    r->input_ns = 2000;
    r->infer_ns = 999;
    r->output_ns = 1000000000;
    srv_stats_request_done(s, r);
    r->batch = 1;
    r->queue_ns = 3;
    srv_stats_request_done(s, r);
    r->status = 503;
    r->fail = SRV_FAIL_REJECTED;
    srv_stats_request_done(s, r);
    srv_request_free(r);
    srv_stats_batch_done(s, 3, 10, 20, 30);
    srv_stats_batch_done(s, 1, 1, 2, 3);
    srv_stats_pending_add(s, 2);
    srv_stats_pending_add(s, -1);
}

static void test_triton_names(void **state)
{
    (void)state;
    srv_stats s;
    record(&s);
    char *t = render(&s, "m", SRV_METRICS_TRITON);
    expect_line(t, "# TYPE nv_inference_request_success counter\n");
    expect_line(t, "\nnv_inference_request_success{model=\"m\",version=\"2\"} 2\n");
    expect_line(t, "\nnv_inference_request_failure{model=\"m\",version=\"2\",reason=\"REJECTED\"} 1\n");
    expect_line(t, "\nnv_inference_request_failure{model=\"m\",version=\"2\",reason=\"OTHER\"} 0\n");
    expect_line(t, "\nnv_inference_count{model=\"m\",version=\"2\"} 4\n");
    expect_line(t, "\nnv_inference_exec_count{model=\"m\",version=\"2\"} 2\n");
    /* (1500000007 + 3) ns in whole microseconds */
    expect_line(t, "\nnv_inference_queue_duration_us{model=\"m\",version=\"2\"} 1500000\n");
    expect_line(t, "\nnv_inference_compute_input_duration_us{model=\"m\",version=\"2\"} 4\n");
    expect_line(t, "\nnv_inference_compute_infer_duration_us{model=\"m\",version=\"2\"} 1\n");
    expect_line(t, "\nnv_inference_pending_request_count{model=\"m\",version=\"2\"} 1\n");
    expect_line(t, "# TYPE nv_inference_pending_request_count gauge\n");
    assert_null(strstr(t, "infd_inference_"));
    free(t);
    srv_stats_destroy(&s);
}

static void test_prometheus_names(void **state)
{
    (void)state;
    srv_stats s;
    record(&s);
    char *t = render(&s, "m", SRV_METRICS_PROMETHEUS);
    expect_line(t, "# TYPE infd_inference_requests_success_total counter\n");
    expect_line(t, "\ninfd_inference_requests_success_total{model=\"m\",version=\"2\"} 2\n");
    expect_line(t, "\ninfd_inference_requests_failure_total{model=\"m\",version=\"2\",reason=\"REJECTED\"} 1\n");
    expect_line(t, "\ninfd_inferences_total{model=\"m\",version=\"2\"} 4\n");
    expect_line(t, "\ninfd_inference_executions_total{model=\"m\",version=\"2\"} 2\n");
    expect_line(t, "\ninfd_inference_queue_duration_seconds_total{model=\"m\",version=\"2\"} 1.500000010\n");
    expect_line(t, "\ninfd_inference_compute_output_duration_seconds_total{model=\"m\",version=\"2\"} 2.000000000\n");
    expect_line(t, "\ninfd_inference_compute_infer_duration_seconds_total{model=\"m\",version=\"2\"} 0.000001998\n");
    expect_line(t, "# HELP infd_inference_queue_duration_seconds_total Cumulative inference queuing duration in seconds\n");
    expect_line(t, "# TYPE infd_inference_pending_requests gauge\n");
    expect_line(t, "\ninfd_inference_pending_requests{model=\"m\",version=\"2\"} 1\n");
    assert_null(strstr(t, "nv_inference_"));
    assert_null(strstr(t, "_us{"));
    free(t);
    srv_stats_destroy(&s);
}

static void test_histograms(void **state)
{
    (void)state;
    srv_stats s;
    record(&s);
    char *t = render(&s, "m", SRV_METRICS_PROMETHEUS);
    /* batches of 3 and 1: one at le=1, both from le=4 on */
    expect_line(t, "\ninfd_batch_size_bucket{model=\"m\",version=\"2\",le=\"1\"} 1\n");
    expect_line(t, "\ninfd_batch_size_bucket{model=\"m\",version=\"2\",le=\"2\"} 1\n");
    expect_line(t, "\ninfd_batch_size_bucket{model=\"m\",version=\"2\",le=\"4\"} 2\n");
    expect_line(t, "\ninfd_batch_size_bucket{model=\"m\",version=\"2\",le=\"+Inf\"} 2\n");
    expect_line(t, "\ninfd_batch_size_sum{model=\"m\",version=\"2\"} 4\n");
    expect_line(t, "\ninfd_batch_size_count{model=\"m\",version=\"2\"} 2\n");
    expect_line(t, "\ninfd_request_duration_seconds_count{model=\"m\",version=\"2\"} 3\n");
    expect_line(t, "# TYPE infd_request_duration_seconds histogram\n");
    free(t);
    srv_stats_destroy(&s);
}

static void test_label_escaping(void **state)
{
    (void)state;
    srv_stats s;
    assert_int_equal(srv_stats_init(&s, 1), 0);
    char *t = render(&s, "a\"b\\c\nd", SRV_METRICS_TRITON);
    expect_line(t, "\nnv_inference_count{model=\"a\\\"b\\\\c\\nd\",version=\"2\"} 0\n");
    free(t);
    srv_stats_destroy(&s);
}

static void test_statistics_json(void **state)
{
    (void)state;
    srv_stats s;
    record(&s);
    json_t *j = srv_stats_to_json(&s, "m", "2");
    json_t *is = json_object_get(j, "inference_stats");
    assert_int_equal(json_integer_value(json_object_get(j, "inference_count")), 4);
    assert_int_equal(json_integer_value(json_object_get(j, "execution_count")), 2);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(is, "queue"), "ns")),
                     1500000010);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(is, "fail"), "count")), 1);
    json_t *bs = json_object_get(j, "batch_stats");
    assert_int_equal(json_array_size(bs), 2);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(bs, 1), "batch_size")), 3);
    json_decref(j);
    srv_stats_destroy(&s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_triton_names),
        cmocka_unit_test(test_prometheus_names),
        cmocka_unit_test(test_histograms),
        cmocka_unit_test(test_label_escaping),
        cmocka_unit_test(test_statistics_json),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
