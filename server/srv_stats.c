/* srv_stats.c: statistics recording and their two renderings (KServe statistics JSON,
 * Prometheus text under Triton's metric names or Prometheus-conformant ones). */
#include "srv_stats.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

const double srv_latency_bounds[SRV_LATENCY_BUCKETS] = {
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 5};
const double srv_batch_bounds[SRV_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64, 128, 256, 1024};

int srv_stats_init(srv_stats *s, int max_batch)
{
    memset(s, 0, sizeof *s);
    s->max_batch = max_batch < 1 ? 1 : max_batch;
    s->batch_stats = calloc((size_t)s->max_batch + 1, sizeof *s->batch_stats);
    if (!s->batch_stats)
        return -1;
    pthread_mutex_init(&s->mu, NULL);
    return 0;
}

void srv_stats_destroy(srv_stats *s)
{
    if (!s || !s->batch_stats)
        return;
    pthread_mutex_destroy(&s->mu);
    free(s->batch_stats);
    s->batch_stats = NULL;
}

static void add(srv_duration *d, uint64_t ns)
{
    d->count++;
    d->ns += ns;
}

void srv_stats_pending_add(srv_stats *s, int delta)
{
    pthread_mutex_lock(&s->mu);
    s->pending += delta;
    pthread_mutex_unlock(&s->mu);
}

void srv_stats_request_done(srv_stats *s, const srv_request *r)
{
    uint64_t total = srv_now_ns() - r->t_received;
    struct timespec wall;
    clock_gettime(CLOCK_REALTIME, &wall);
    pthread_mutex_lock(&s->mu);
    if (r->status == 200) {
        add(&s->success, total);
        s->inference_count += (uint64_t)r->batch;
        if (r->t_dispatched)
            add(&s->queue, r->queue_ns);
        add(&s->compute_input, r->input_ns);
        add(&s->compute_infer, r->infer_ns);
        add(&s->compute_output, r->output_ns);
        s->last_inference_ms = (uint64_t)wall.tv_sec * 1000 + (uint64_t)wall.tv_nsec / 1000000;
    } else {
        add(&s->fail, total);
        s->fail_by_reason[r->fail < SRV_FAIL_REASONS ? r->fail : SRV_FAIL_OTHER]++;
    }
    double sec = (double)total / 1e9;
    int b = 0;
    while (b < SRV_LATENCY_BUCKETS && sec > srv_latency_bounds[b])
        b++;
    s->latency_hist[b]++;
    s->latency_sum_s += sec;
    pthread_mutex_unlock(&s->mu);
}

void srv_stats_batch_done(srv_stats *s, int64_t batch_size, uint64_t input_ns, uint64_t infer_ns,
                          uint64_t output_ns)
{
    pthread_mutex_lock(&s->mu);
    s->execution_count++;
    if (batch_size >= 1 && batch_size <= s->max_batch) {
        srv_batch_stat *bs = &s->batch_stats[batch_size];
        add(&bs->input, input_ns);
        add(&bs->infer, infer_ns);
        add(&bs->output, output_ns);
    }
    int b = 0;
    while (b < SRV_BATCH_BUCKETS && (double)batch_size > srv_batch_bounds[b])
        b++;
    s->batch_hist[b]++;
    s->batch_sum += (uint64_t)batch_size;
    pthread_mutex_unlock(&s->mu);
}

static json_t *dur_json(const srv_duration *d)
{
    return json_pack("{s:I, s:I}", "count", (json_int_t)d->count, "ns", (json_int_t)d->ns);
}

json_t *srv_stats_to_json(srv_stats *s, const char *name, const char *version)
{
    static const srv_duration zero;
    pthread_mutex_lock(&s->mu);
    json_t *batch = json_array();
    for (int i = 1; i <= s->max_batch; i++) {
        srv_batch_stat *bs = &s->batch_stats[i];
        if (bs->infer.count)
            json_array_append_new(batch, json_pack("{s:i, s:o, s:o, s:o}", "batch_size", i,
                                                   "compute_input", dur_json(&bs->input),
                                                   "compute_infer", dur_json(&bs->infer),
                                                   "compute_output", dur_json(&bs->output)));
    }
    json_t *o = json_pack(
        "{s:s, s:s, s:I, s:I, s:I, s:{s:o, s:o, s:o, s:o, s:o, s:o, s:o, s:o}, s:o}", "name", name,
        "version", version, "last_inference", (json_int_t)s->last_inference_ms, "inference_count",
        (json_int_t)s->inference_count, "execution_count", (json_int_t)s->execution_count,
        "inference_stats", "success", dur_json(&s->success), "fail", dur_json(&s->fail), "queue",
        dur_json(&s->queue), "compute_input", dur_json(&s->compute_input), "compute_infer",
        dur_json(&s->compute_infer), "compute_output", dur_json(&s->compute_output), "cache_hit",
        dur_json(&zero), "cache_miss", dur_json(&zero), "batch_stats", batch);
    pthread_mutex_unlock(&s->mu);
    return o;
}

/* ---- Prometheus ---- */

typedef enum {
    M_SUCCESS, M_FAILURE, M_COUNT, M_EXEC, M_REQ_DUR, M_QUEUE_DUR, M_IN_DUR, M_INFER_DUR,
    M_OUT_DUR, M_PENDING
} metric_id;

/* Each series under Triton's name (integer microseconds for durations, what Triton's
 * dashboards read) and under a Prometheus-conformant one (_total counters, base unit
 * seconds, no _count suffix outside histograms). */
static const struct {
    const char *triton, *prometheus, *type, *help;
    bool duration;
} metrics[] = {
    {"nv_inference_request_success", "infd_inference_requests_success_total", "counter",
     "Number of successful inference requests, all batch sizes", false},
    {"nv_inference_request_failure", "infd_inference_requests_failure_total", "counter",
     "Number of failed inference requests, all batch sizes", false},
    {"nv_inference_count", "infd_inferences_total", "counter",
     "Number of inferences performed (a batch of n counts n)", false},
    {"nv_inference_exec_count", "infd_inference_executions_total", "counter",
     "Number of model executions performed", false},
    {"nv_inference_request_duration_us", "infd_inference_request_duration_seconds_total",
     "counter", "Cumulative inference request duration", true},
    {"nv_inference_queue_duration_us", "infd_inference_queue_duration_seconds_total", "counter",
     "Cumulative inference queuing duration", true},
    {"nv_inference_compute_input_duration_us",
     "infd_inference_compute_input_duration_seconds_total", "counter",
     "Cumulative compute input duration", true},
    {"nv_inference_compute_infer_duration_us",
     "infd_inference_compute_infer_duration_seconds_total", "counter",
     "Cumulative compute inference duration", true},
    {"nv_inference_compute_output_duration_us",
     "infd_inference_compute_output_duration_seconds_total", "counter",
     "Cumulative inference compute output duration", true},
    {"nv_inference_pending_request_count", "infd_inference_pending_requests", "gauge",
     "Instantaneous number of pending requests awaiting execution", false},
};

static const char *const reason_names[SRV_FAIL_REASONS] = {"OTHER", "REJECTED", "CANCELED",
                                                           "BACKEND", "OTHER"};

/* A label value in the text format's escaping (backslash, quote, newline). */
static void label_value(srv_buf *b, const char *s)
{
    srv_buf_puts(b, "\"");
    for (; *s; s++) {
        if (*s == '\\' || *s == '"')
            srv_buf_printf(b, "\\%c", *s);
        else if (*s == '\n')
            srv_buf_puts(b, "\\n");
        else
            srv_buf_append(b, s, 1);
    }
    srv_buf_puts(b, "\"");
}

static void labels(srv_buf *b, const srv_stats_ref *r)
{
    srv_buf_puts(b, "{model=");
    label_value(b, r->name);
    srv_buf_puts(b, ",version=");
    label_value(b, r->version);
}

/* Durations in ns; everything else a plain count. */
static uint64_t metric_value(const srv_stats *s, metric_id id)
{
    switch (id) {
    case M_SUCCESS: return s->success.count;
    case M_COUNT: return s->inference_count;
    case M_EXEC: return s->execution_count;
    case M_REQ_DUR: return s->success.ns + s->fail.ns;
    case M_QUEUE_DUR: return s->queue.ns;
    case M_IN_DUR: return s->compute_input.ns;
    case M_INFER_DUR: return s->compute_infer.ns;
    case M_OUT_DUR: return s->compute_output.ns;
    case M_PENDING: return s->pending > 0 ? (uint64_t)s->pending : 0;
    case M_FAILURE: break;
    }
    return 0;
}

/* Triton: whole microseconds; Prometheus: seconds, exact to the nanosecond. */
static void put_duration(srv_buf *b, uint64_t ns, srv_metrics_naming naming)
{
    if (naming == SRV_METRICS_TRITON)
        srv_buf_printf(b, "} %llu\n", (unsigned long long)(ns / 1000));
    else
        srv_buf_printf(b, "} %llu.%09llu\n", (unsigned long long)(ns / 1000000000u),
                       (unsigned long long)(ns % 1000000000u));
}

static void render_histogram(srv_buf *b, const char *name, const char *help, const srv_stats_ref *refs,
                             int n, bool latency)
{
    srv_buf_printf(b, "# HELP %s %s\n# TYPE %s histogram\n", name, help, name);
    int nb = latency ? SRV_LATENCY_BUCKETS : SRV_BATCH_BUCKETS;
    for (int i = 0; i < n; i++) {
        srv_stats *s = refs[i].stats;
        const uint64_t *h = latency ? s->latency_hist : s->batch_hist;
        uint64_t cum = 0;
        for (int k = 0; k <= nb; k++) {
            cum += h[k];
            srv_buf_printf(b, "%s_bucket", name);
            labels(b, &refs[i]);
            if (k < nb)
                srv_buf_printf(b, ",le=\"%g\"} %llu\n",
                               latency ? srv_latency_bounds[k] : srv_batch_bounds[k],
                               (unsigned long long)cum);
            else
                srv_buf_printf(b, ",le=\"+Inf\"} %llu\n", (unsigned long long)cum);
        }
        srv_buf_printf(b, "%s_sum", name);
        labels(b, &refs[i]);
        if (latency)
            srv_buf_printf(b, "} %.9g\n", s->latency_sum_s);
        else
            srv_buf_printf(b, "} %llu\n", (unsigned long long)s->batch_sum);
        srv_buf_printf(b, "%s_count", name);
        labels(b, &refs[i]);
        srv_buf_printf(b, "} %llu\n", (unsigned long long)cum);
    }
}

void srv_stats_render_prometheus(srv_buf *b, const srv_stats_ref *refs, int n,
                                 srv_metrics_naming naming)
{
    for (int i = 0; i < n; i++)
        pthread_mutex_lock(&refs[i].stats->mu);
    for (size_t m = 0; m < sizeof metrics / sizeof metrics[0]; m++) {
        const char *name = naming == SRV_METRICS_TRITON ? metrics[m].triton : metrics[m].prometheus;
        const char *unit = !metrics[m].duration             ? ""
                           : naming == SRV_METRICS_TRITON ? " in microseconds"
                                                          : " in seconds";
        srv_buf_printf(b, "# HELP %s %s%s\n# TYPE %s %s\n", name, metrics[m].help, unit, name,
                       metrics[m].type);
        for (int i = 0; i < n; i++) {
            if (m == M_FAILURE) {
                for (int k = SRV_FAIL_REJECTED; k < SRV_FAIL_REASONS; k++) {
                    srv_buf_puts(b, name);
                    labels(b, &refs[i]);
                    srv_buf_printf(b, ",reason=\"%s\"} %llu\n", reason_names[k],
                                   (unsigned long long)refs[i].stats->fail_by_reason[k]);
                }
                continue;
            }
            srv_buf_puts(b, name);
            labels(b, &refs[i]);
            uint64_t v = metric_value(refs[i].stats, (metric_id)m);
            if (metrics[m].duration)
                put_duration(b, v, naming);
            else
                srv_buf_printf(b, "} %llu\n", (unsigned long long)v);
        }
    }
    render_histogram(b, "infd_request_duration_seconds",
                     "Inference request latency from arrival to response, in seconds", refs, n, true);
    render_histogram(b, "infd_batch_size", "Rows per model execution", refs, n, false);
    for (int i = 0; i < n; i++)
        pthread_mutex_unlock(&refs[i].stats->mu);
}
