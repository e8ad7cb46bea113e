/* srv_guard.h: the accuracy guard. A model whose config compresses it
 * ("infd": {"compression": {...}}) may also name a validation set, a metric and the largest
 * drop it accepts ("infd": {"accuracy_guard": {...}}, docs/config.md). At load the server
 * runs the validation set through the compressed model and through the same model
 * uncompressed, and refuses to serve the compressed one (the model is UNAVAILABLE with
 * both measured values as the reason) when the metric drops by more than allowed.
 *
 * A validation set is a folder inside the model's directory:
 *   input_<i>.pb  one TensorProto per graph input (i = 0, 1, ...), rows along dim 0; the
 *                 proto's name, when set, names the graph input it feeds, else position i
 *   labels.pb     metric "accuracy" only: one integer class per output row
 * The metrics read one FP32 output [..., K] as rows of K values (a rank-1 output: K = 1):
 *   accuracy   fraction of rows whose decision equals the label, for each model; the drop
 *              is uncompressed minus compressed. A row's decision is value >= threshold
 *              for K = 1, else the index of its largest value.
 *   agreement  fraction of rows where both models decide alike; the drop is 1 - that.
 *   cosine     mean cosine similarity of the two models' rows (an encoder's hidden
 *              states); the drop is 1 - that. */
#ifndef SRV_GUARD_H
#define SRV_GUARD_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rt_session.h"
#include "rt_status.h"

typedef enum {
    SRV_GUARD_ACCURACY = 0,
    SRV_GUARD_AGREEMENT,
    SRV_GUARD_COSINE
} srv_guard_metric;

typedef struct srv_guard_config {
    bool enabled;          /* an accuracy_guard object was given */
    char *validation_set;  /* folder relative to the model directory (owned) */
    srv_guard_metric metric;
    char *output;          /* graph output the metric reads (owned); NULL: the first */
    double max_drop;       /* max_accuracy_drop, in [0, 1] */
    float threshold;       /* decision threshold of one-value rows (default 0.5) */
} srv_guard_config;

/* Parses the "accuracy_guard" member of the "infd" object (absent: not enabled). g must
 * be zeroed; on failure it may hold strings for srv_guard_config_free. */
rt_status srv_guard_config_parse(srv_guard_config *g, json_t *infd, rt_error *err);
/* Adds "accuracy_guard" (when enabled) to the infd object. */
void srv_guard_config_to_json(const srv_guard_config *g, json_t *infd);
void srv_guard_config_free(srv_guard_config *g); /* frees the contents */

typedef struct srv_guard_result {
    int64_t rows;         /* output rows compared */
    double uncompressed;  /* the metric of each model: accuracy against the labels, or */
    double compressed;    /* for agreement and cosine 1 and the measured value */
    double drop;          /* uncompressed - compressed */
} srv_guard_result;

/* The metric over two models' outputs, rows x width floats each; labels (rows values)
 * for SRV_GUARD_ACCURACY, else unused. A row holding NaN or infinity scores as a wrong
 * decision and a cosine of 0. Fails only on a label outside the output's classes. */
rt_status srv_guard_measure(srv_guard_metric metric, float threshold, const float *uncompressed,
                            const float *compressed, const int64_t *labels, int64_t rows,
                            int64_t width, srv_guard_result *res, rt_error *err);

/* Runs the guard for one loaded model version when it is enabled and opts selects
 * compression: builds the uncompressed session from model_path (opts without
 * compression), runs the validation set (model_dir/validation_set) through it and through
 * compressed in batches of at most max_batch rows (0: the set in one run, for a model
 * without a batch dimension), and compares. Returns RT_OK when the drop is within bounds
 * (logging one line with the measured values, prefixed with `what`) or when there is
 * nothing to check; else err holds the reason: the measured values when the drop is too
 * large, or what is wrong with the validation set. compressed NULL (a tensor-parallel
 * model, which has no single session) is refused when the guard would run. */
rt_status srv_guard_check(const srv_guard_config *g, const char *model_dir,
                          const char *model_path, const rt_session_options *opts,
                          rt_session *compressed, int64_t max_batch, const char *what,
                          rt_error *err);

#endif
