/* srv_tp.h: model instances split over tensor-parallel ranks, for a model whose config
 * sets "parallel": {"tensor_parallel_size": N} (N > 1): each instance is a tp_session
 * (parallel/tp_session.h) of N CPU ranks in this process, loaded, warmed up and driven by
 * the batcher in place of an rt_session. */
#ifndef SRV_TP_H
#define SRV_TP_H

#include "srv_batcher.h"
#include "srv_repo.h"

/* Creates the first instance into m->first_tp (from m->path with m->opts and
 * m->cfg.tensor_parallel ranks), plans it with zero inputs and logs how it was split. */
rt_status srv_tp_load(srv_model *m, rt_error *err);
/* The graph of the first instance's rank 0 (borrowed; valid while m->first_tp is set):
 * its inputs and outputs are the model's. */
const rt_graph *srv_tp_graph(const srv_model *m);
/* The batcher's runner over tp_sessions; instance 0 takes m->first_tp. */
srv_runner srv_tp_runner(srv_model *m);

#endif
