/* srv_pipeline.h: a model's pre- and post-processing steps, declared in config.json's
 * "infd" object (docs/config.md, docs/spam.md):
 *
 *   "preprocess":  {"kind": "spam_features", "input": "text", "output": "features"}
 *   "postprocess": {"kind": "threshold", "input": "spam_probability", "output": "action",
 *                   "rules": [{"min": 0.9, "label": "spam_folder"}, ...], "default": "inbox",
 *                   "nan": "..." (optional; default: the default label)}
 *
 * Clients see the pipeline's inputs and outputs. The preprocess input takes the place of
 * the model input it feeds (same graph index, so requests stay indexed by graph input);
 * the postprocess output comes after the model's own outputs. Pre-processing runs on each
 * request once it is decoded, before it is queued, so batches hold plain model inputs;
 * post-processing runs on each request after its batch's outputs are split. */
#ifndef SRV_PIPELINE_H
#define SRV_PIPELINE_H

#include <jansson.h>
#include <stdbool.h>

#include "rt_rules.h"
#include "rt_status.h"

typedef struct srv_pipeline {
    bool pre;                      /* a preprocess step is declared */
    char *pre_input, *pre_output;  /* client input (BYTES) -> model input (FP32) */
    int pre_io;                    /* index of pre_input in the config's inputs */
    bool post;                     /* a postprocess step is declared */
    char *post_input, *post_output; /* model output (FP32) -> client output (BYTES) */
    int post_in_io, post_out_io;   /* their indices in the config's outputs */
    double rule_min[RT_RULES_MAX]; /* thresholds as written, for the config echo */
    rt_rules rules;
} srv_pipeline;

struct srv_model_config;
struct srv_request;

/* Parses the "preprocess" and "postprocess" members of the "infd" object (either may be
 * absent). p must be zeroed; on failure it may hold strings for srv_pipeline_free. */
rt_status srv_pipeline_parse(srv_pipeline *p, json_t *infd, rt_error *err);
/* Adds "preprocess" / "postprocess" (when declared) to the infd object. */
void srv_pipeline_to_json(const srv_pipeline *p, json_t *infd);
void srv_pipeline_free(srv_pipeline *p); /* frees the contents */

/* Completing a config from the graph happens in the model's terms, between these two:
 * the first turns the inputs/outputs config.json declares (the client's view) into the
 * model's, the second turns the completed ones back into the client's view, checking that
 * the steps fit the model, and sets cfg->n_graph_outputs. */
rt_status srv_pipeline_to_model_ios(struct srv_model_config *cfg, rt_error *err);
rt_status srv_pipeline_to_client_ios(struct srv_model_config *cfg, rt_error *err);

/* Run-time steps on one request; false with r's status and error set on failure. */
bool srv_pipeline_pre(const struct srv_model_config *cfg, struct srv_request *r);
bool srv_pipeline_post(const struct srv_model_config *cfg, struct srv_request *r);

#endif
