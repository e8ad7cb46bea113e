/* rt_session.h: the public entry point of the runtime: load a model, run it, free it.
 *
 *   rt_session *s = rt_session_create("model.onnx", &opts, &err);   (new, caller frees)
 *   rt_session_run(s, inputs, n, outputs, m, &err);                   (outputs: new tensors)
 *   rt_session_free(s);
 *
 * A session is used by one thread at a time. The graph is optimized at creation (unless
 * options say otherwise). Memory for intermediates is planned at the first run of each set
 * of input shapes and reused by later runs of the same shapes. */
#ifndef RT_SESSION_H
#define RT_SESSION_H

#include <stddef.h>

#include "rt_backend.h"
#include "rt_compress.h"
#include "rt_graph.h"
#include "rt_optimize.h"
#include "rt_status.h"
#include "rt_tensor.h"

typedef enum {
    RT_BACKEND_AUTO = 0, /* CUDA when compiled in and a device exists, else CPU */
    RT_BACKEND_CPU,
    RT_BACKEND_CUDA
} rt_backend_kind;

typedef struct rt_session_options {
    rt_backend_kind backend;
    int threads;      /* CPU worker threads; 0 = all cores */
    bool no_optimize; /* run the graph as loaded, without the optimizer (rt_optimize.h) */
    /* the collectives of infd.AllReduce and infd.AllGather, for one rank of a
     * tensor-parallel group (parallel/tp_session.h); all NULL otherwise */
    rt_collectives collectives;
    /* compression applied after the optimizer (rt_compress.h); all off by default, and
     * refused with no_optimize. Its precision is also the CUDA backend's GEMM precision. */
    rt_compress_options compress;
    bool no_graphs;   /* CUDA backend: run node by node, never record CUDA Graphs */
    int device;       /* CUDA backend: the device index (0 by default); one that is not
                       * visible fails the session with the reason */
} rt_session_options;

void rt_session_options_init(rt_session_options *opts);
/* "auto" | "cpu" | "cuda" -> kind; returns false for anything else. */
bool rt_backend_kind_parse(const char *s, rt_backend_kind *kind);
/* Visible CUDA devices; 0 without a driver or device, or when CUDA support is not
 * compiled in. */
int rt_cuda_device_count(void);

typedef struct rt_session rt_session;

/* Loads an ONNX model file. Returns NULL and sets err on failure. */
rt_session *rt_session_create(const char *model_path, const rt_session_options *opts,
                              rt_error *err);
/* Builds a session over a graph it takes over (freed with the session, or here on failure). */
rt_session *rt_session_create_from_graph(rt_graph *graph, const rt_session_options *opts,
                                         rt_error *err);
void rt_session_free(rt_session *s); /* NULL-safe */

/* Borrowed; valid for the session's lifetime. */
const rt_graph *rt_session_graph(const rt_session *s);
int rt_session_input_count(const rt_session *s);
int rt_session_output_count(const rt_session *s);
const rt_value *rt_session_input(const rt_session *s, int i);
const rt_value *rt_session_output(const rt_session *s, int i);
const char *rt_session_backend_name(const rt_session *s);

/* Checks inputs against the graph's declarations as rt_session_run does (count, dtype,
 * rank, fixed dims) without running anything. */
rt_status rt_session_check_inputs(const rt_session *s, const rt_tensor *const *inputs,
                                  int n_inputs, rt_error *err);

/* Runs the model. inputs[i] feeds graph input i (host tensors; dtype and rank must match,
 * fixed dims must match). On success outputs[0..n_outputs) receive new host tensors the
 * caller frees; on failure they are left NULL. */
rt_status rt_session_run(rt_session *s, const rt_tensor *const *inputs, int n_inputs,
                         rt_tensor **outputs, int n_outputs, rt_error *err);

/* Builds zero-filled inputs (dynamic dims set to 1, BYTES as empty strings) and plans the
 * model with them; used to report memory without real inputs. */
rt_status rt_session_plan_default(rt_session *s, rt_error *err);

typedef struct rt_session_stats {
    const char *backend;
    int nodes_by_op[RT_OP_COUNT];
    int n_nodes;
    size_t weight_bytes;            /* bytes of all weights as held in memory */
    size_t peak_activation_bytes;   /* arena size of the largest plan so far */
    size_t naive_activation_bytes;  /* sum of all intermediate sizes of that plan (no reuse) */
    int n_plans;                    /* input-shape plans cached */
    rt_optimize_report optimizer;   /* nodes before and after, rewrites (none if not run) */
    rt_compress_report compress;    /* what compression did (borrowed from the session: its
                                     * entries live as long as the session) */
    /* backends that count launches (cuda): kernel launches of one inference run node by
     * node, launches of the last run (1 when it replayed a CUDA Graph), and whether it did */
    bool counts_launches;
    uint64_t launches_eager, launches_last;
    bool replayed_last;
} rt_session_stats;

void rt_session_get_stats(const rt_session *s, rt_session_stats *stats);

#endif
