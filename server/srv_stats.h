/* srv_stats.h: per model-version statistics: the counters and durations behind the KServe
 * statistics extension (GET .../stats) and Triton's Prometheus metrics, plus the latency
 * and batch-size histograms. All functions are thread-safe. */
#ifndef SRV_STATS_H
#define SRV_STATS_H

#include <jansson.h>
#include <pthread.h>
#include <stdint.h>

#include "srv_buf.h"
#include "srv_request.h"

#define SRV_LATENCY_BUCKETS 14
#define SRV_BATCH_BUCKETS 10
#define SRV_FAIL_REASONS 5

typedef struct srv_duration {
    uint64_t count, ns;
} srv_duration;

typedef struct srv_batch_stat {
    srv_duration input, infer, output;
} srv_batch_stat;

typedef struct srv_stats {
    pthread_mutex_t mu;
    srv_duration success, fail, queue, compute_input, compute_infer, compute_output;
    uint64_t fail_by_reason[SRV_FAIL_REASONS];
    uint64_t inference_count, execution_count, last_inference_ms;
    int64_t pending;
    int max_batch;                 /* batch_stats has max_batch + 1 entries */
    srv_batch_stat *batch_stats;
    uint64_t latency_hist[SRV_LATENCY_BUCKETS + 1]; /* last: +Inf */
    double latency_sum_s;
    uint64_t batch_hist[SRV_BATCH_BUCKETS + 1];
    uint64_t batch_sum;
} srv_stats;

/* Upper bounds of the histogram buckets (seconds / batch size). */
extern const double srv_latency_bounds[SRV_LATENCY_BUCKETS];
extern const double srv_batch_bounds[SRV_BATCH_BUCKETS];

int srv_stats_init(srv_stats *s, int max_batch); /* 0 or -1 on OOM */
void srv_stats_destroy(srv_stats *s);

void srv_stats_pending_add(srv_stats *s, int delta);
/* A request finished (r->status says how); counts it and its durations. */
void srv_stats_request_done(srv_stats *s, const srv_request *r);
/* One execution of a batch of batch_size rows, with its input, infer and output times. */
void srv_stats_batch_done(srv_stats *s, int64_t batch_size, uint64_t input_ns, uint64_t infer_ns,
                          uint64_t output_ns);

/* The statistics extension's per-model object. New reference. */
json_t *srv_stats_to_json(srv_stats *s, const char *name, const char *version);

/* Which names /metrics uses (--metrics-naming; same order as cfg_metrics_naming). Triton's
 * are what tritonclient users' dashboards read, but promtool's lint rejects them. */
typedef enum { SRV_METRICS_TRITON = 0, SRV_METRICS_PROMETHEUS } srv_metrics_naming;

/* Prometheus text for several model versions, one metric family at a time. */
typedef struct srv_stats_ref {
    const char *name, *version;
    srv_stats *stats;
} srv_stats_ref;
void srv_stats_render_prometheus(srv_buf *b, const srv_stats_ref *refs, int n,
                                 srv_metrics_naming naming);

#endif
