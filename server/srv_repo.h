/* srv_repo.h: the model repository: Triton's layout DIR/<model>/config.json and
 * DIR/<model>/<version>/model.onnx, the models loaded from it, and their states.
 *
 * A loaded version (srv_model) is reference counted: the repository holds one reference,
 * each request in flight holds one. Unloading drops the repository's reference; the last
 * holder frees the model after its queue has drained. A model that fails to load is
 * UNAVAILABLE with the reason and does not affect the others. */
#ifndef SRV_REPO_H
#define SRV_REPO_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "rt_session.h"
#include "srv_batcher.h"
#include "srv_instances.h"
#include "srv_model_config.h"
#include "srv_stats.h"

typedef struct srv_model {
    char *name;
    int64_t version;
    char version_str[24];
    srv_model_config cfg;
    srv_stats stats;
    srv_batcher *batcher;
    char *path;                  /* the ONNX file */
    rt_session_options opts;     /* instance 0's; instance i runs on placement[i] */
    srv_placement placement[SRV_MAX_INSTANCES]; /* where instances run (srv_instances.h);
                                                 * not for tensor-parallel models */
    rt_session *first;           /* session made while loading, handed to instance 0 */
    struct tp_session *first_tp; /* the same for a tensor-parallel model (srv_tp.h) */
    int refs;
    struct srv_repo *repo;       /* whose reaper frees it once the last reference is gone */
    struct srv_model *next_dead; /* in the reaper's queue */
} srv_model;

typedef struct srv_repo srv_repo;

typedef struct srv_repo_options {
    const char *dir;
    rt_backend_kind backend;
    int cpu_threads;             /* default for models without infd.cpu_threads */
} srv_repo_options;

srv_repo *srv_repo_create(const srv_repo_options *o); /* NULL on OOM */
/* Unloads everything (waiting for queued work to finish) and frees. NULL-safe. */
void srv_repo_free(srv_repo *r);

/* True for a usable model name: no '/', no "..", not empty, not hidden. */
bool srv_repo_valid_name(const char *name);

/* Loads (or reloads) one model from disk. On failure the model is UNAVAILABLE with the
 * reason, which is also returned in err. Serialized with other loads. */
rt_status srv_repo_load(srv_repo *r, const char *name, rt_error *err);
rt_status srv_repo_unload(srv_repo *r, const char *name, rt_error *err);
/* Re-reads the repository: loads models that are new (when load_new) or changed on disk,
 * unloads models whose folder is gone. */
void srv_repo_poll(srv_repo *r, bool load_new);

/* A new reference to the requested version ("" or NULL: the highest loaded version).
 * On failure returns NULL with *status (404 unknown model/version, 503 not ready) and a
 * message in msg[SRV_ERR_MAX]. */
srv_model *srv_repo_acquire(srv_repo *r, const char *name, const char *version, int *status,
                            char *msg);
void srv_model_release(srv_model *m); /* NULL-safe */

/* Every loaded version, each with a new reference (release each, free the array). */
int srv_repo_snapshot(srv_repo *r, srv_model ***out);
/* The repository index: [{"name", "version", "state", "reason"}]. New reference. */
json_t *srv_repo_index(srv_repo *r, bool ready_only);
/* Fails every queued request of every model with 503 (shutdown). */
void srv_repo_cancel_queued(srv_repo *r, const char *reason);

#endif
