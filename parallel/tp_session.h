/* tp_session.h: tensor-parallel execution on the CPU: one model split over `size` ranks in
 * one process. Each rank has its own rt_session over its shard of the optimized graph
 * (tp_shard.h) and its own in-process communicator (tp_comm_local); a run drives all
 * ranks concurrently, one thread each, and returns rank 0's outputs (every rank computes
 * the same replicated outputs).
 *
 *   tp_session *t = tp_session_create("model.onnx", 2, &opts, &err);
 *   tp_session_run(t, inputs, n, outputs, m, &err);
 *   tp_session_free(t);
 *
 * A tp_session is used by one thread at a time. Inputs are checked against the model's
 * declarations (count, dtype, rank, fixed dims) before any rank starts. A run that still
 * fails on a rank (an id out of range, say) aborts the communicator group, so that the
 * peers return instead of waiting; the session then replaces the group with a new one,
 * and the next run works as if nothing had happened. */
#ifndef TP_SESSION_H
#define TP_SESSION_H

#include "rt_session.h"
#include "tp_shard.h"

typedef struct tp_session tp_session;

/* Loads one copy of the graph for one rank (called once per rank). */
typedef rt_graph *(*tp_graph_loader)(void *arg, rt_error *err);

/* opts->threads is per rank (0 = the cores divided among the ranks); opts->no_optimize
 * is ignored (sharding needs the optimizer's Linear and Attention ops, so the graph is
 * always optimized). Only the CPU backend is supported, and no compression. */
tp_session *tp_session_create(const char *model_path, int size, const rt_session_options *opts,
                              rt_error *err);
tp_session *tp_session_create_with(tp_graph_loader load, void *arg, int size,
                                   const rt_session_options *opts, rt_error *err);
void tp_session_free(tp_session *t); /* NULL-safe */

int tp_session_size(const tp_session *t);
/* Rank r's session (borrowed): its graph, stats and declarations. Run it only through
 * tp_session_run: alone, its first all-reduce would wait for the other ranks forever. */
rt_session *tp_session_rank(tp_session *t, int r);
/* What the sharding pass did (the same on every rank). */
const tp_shard_report *tp_session_shard_report(const tp_session *t);
/* The optimizer's report of rank 0, before sharding. */
const rt_optimize_report *tp_session_optimize_report(const tp_session *t);

/* rt_session_run on every rank at once; outputs receive rank 0's. */
rt_status tp_session_run(tp_session *t, const rt_tensor *const *inputs, int n_inputs,
                         rt_tensor **outputs, int n_outputs, rt_error *err);
/* rt_session_plan_default on every rank at once. */
rt_status tp_session_plan_default(tp_session *t, rt_error *err);

#endif
