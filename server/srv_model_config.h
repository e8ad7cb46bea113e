/* srv_model_config.h: a model's configuration: Triton's ModelConfig written as JSON
 * (config.json, Triton's field names), completed from the ONNX graph where fields are
 * missing, and written back as JSON for GET .../config.
 *
 * Our own settings live in the extension object "infd" (see docs/config.md). */
#ifndef SRV_MODEL_CONFIG_H
#define SRV_MODEL_CONFIG_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rt_compress.h"
#include "rt_graph.h"
#include "rt_status.h"
#include "srv_guard.h"
#include "srv_pipeline.h"

#define SRV_MAX_PREFERRED 16
#define SRV_MAX_VERSIONS 64
#define SRV_MAX_GPUS 16
#define SRV_MAX_BATCH_SIZE (1 << 20) /* rows per batch; buffers are sized by it */
#define SRV_MAX_TIMEOUT_US (INT64_C(1) << 50) /* queue timeouts, about 35 years */

typedef struct srv_io {
    char *name;
    rt_dtype dtype;
    int rank;                    /* dims without the batch dimension */
    int64_t dims[RT_MAX_RANK];   /* -1: any size */
    int graph_index;             /* position among the graph's inputs / outputs */
} srv_io;

typedef enum { SRV_VERSIONS_LATEST = 0, SRV_VERSIONS_ALL, SRV_VERSIONS_SPECIFIC } srv_version_policy;

#define SRV_MAX_INSTANCES 64
#define SRV_MAX_GROUPS 16

typedef enum { SRV_KIND_AUTO = 0, SRV_KIND_CPU, SRV_KIND_GPU } srv_instance_kind;

/* One instance_group entry as written (Triton's semantics, placed by srv_instances.h):
 * KIND_GPU puts `count` instances on each device of gpus (none listed: on each visible
 * device); KIND_CPU puts `count` on the CPU; KIND_AUTO `count` where --backend says. */
typedef struct srv_instance_group {
    srv_instance_kind kind;
    int count;
    int n_gpus;                      /* KIND_GPU only */
    int gpus[SRV_MAX_GPUS];
} srv_instance_group;

typedef struct srv_model_config {
    char *name;
    char *backend;
    char *default_model_filename;
    int64_t max_batch_size;          /* 0: the model takes no batch dimension */
    int n_inputs, n_outputs;
    srv_io *inputs, *outputs;        /* as clients see them (after the pipeline's steps) */
    int n_graph_outputs;             /* outputs[i] with graph_index < this come from the model */
    bool dynamic_batching;
    int n_preferred;
    int64_t preferred_batch_size[SRV_MAX_PREFERRED];
    int64_t max_queue_delay_us;
    int64_t max_queue_size;          /* 0: unbounded (Triton) */
    int64_t default_timeout_us;      /* 0: none */
    bool timeout_delay;              /* timeout_action DELAY (else REJECT) */
    bool allow_timeout_override;
    int instance_count;              /* the counts as written; the repository sets the
                                      * placed total at load (srv_instances_place) */
    int n_groups;                    /* instance_group; 0: one KIND_AUTO instance */
    srv_instance_group groups[SRV_MAX_GROUPS];
    bool instance_gpu;               /* a group is KIND_GPU */
    int n_gpus;                      /* every group's gpus in order (tensor parallelism: */
    int gpus[SRV_MAX_GPUS];          /* one device per rank) */
    int tensor_parallel;             /* parallel.tensor_parallel_size: ranks per instance */
    srv_version_policy version_policy;
    int num_versions;                /* LATEST */
    int n_versions;                  /* SPECIFIC */
    int64_t versions[SRV_MAX_VERSIONS];
    json_t *parameters;              /* owned reference, object (maybe empty) */
    int cpu_threads;                 /* infd.cpu_threads; -1: the server's default */
    bool optimize;                   /* infd.optimize; false runs the graph as loaded */
    srv_pipeline pipeline;           /* infd.preprocess / infd.postprocess */
    rt_compress_options compress;    /* infd.compression, for every instance's session */
    srv_guard_config guard;          /* infd.accuracy_guard */
} srv_model_config;

/* Parses config.json's object into cfg (initialized here). dir_name is the model's folder
 * name: "name", when present, must equal it. */
rt_status srv_model_config_parse(srv_model_config *cfg, json_t *root, const char *dir_name,
                                 rt_error *err);
/* Default config for a model with no config.json. */
rt_status srv_model_config_default(srv_model_config *cfg, const char *dir_name, rt_error *err);
/* Fills missing inputs/outputs from the graph and checks declared ones against it, and
 * the pipeline's steps against the model. */
rt_status srv_model_config_complete(srv_model_config *cfg, const rt_graph *g, rt_error *err);
/* New JSON object (Triton's layout). */
json_t *srv_model_config_to_json(const srv_model_config *cfg);
void srv_model_config_free(srv_model_config *cfg); /* NULL-safe; frees the contents */

/* For the parsers of the "infd" extension: refuses members of obj not in allowed
 * (NULL-terminated), so that a typo does not pass silently; `what` names obj. */
rt_status srv_json_only_keys(json_t *obj, const char *const *allowed, const char *what,
                             rt_error *err);

#endif
