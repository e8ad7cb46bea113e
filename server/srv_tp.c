/* srv_tp.c: tensor-parallel model instances (srv_tp.h): the tp_session of the first
 * instance made at load, the batcher's runner over tp_sessions, and the load log line that
 * says how the model was split. A request that fails on the ranks (a token id out of
 * range, say) does not break the instance: tp_session replaces its aborted communicator
 * group, so the next request runs normally. */
#include "srv_tp.h"

#include <stdio.h>

#include "srv_log.h"
#include "tp_session.h"

static void *instance_create(void *arg, int instance, rt_error *err)
{
    srv_model *m = arg;
    if (instance == 0 && m->first_tp) {
        tp_session *t = m->first_tp;
        m->first_tp = NULL;
        return t;
    }
    return tp_session_create(m->path, m->cfg.tensor_parallel, &m->opts, err);
}

static rt_status instance_run(void *ctx, const rt_tensor *const *in, int n_in, rt_tensor **out,
                              int n_out, rt_error *err)
{
    return tp_session_run(ctx, in, n_in, out, n_out, err);
}

static void instance_destroy(void *ctx)
{
    tp_session_free(ctx);
}

srv_runner srv_tp_runner(srv_model *m)
{
    return (srv_runner){instance_create, instance_run, instance_destroy, m};
}

const rt_graph *srv_tp_graph(const srv_model *m)
{
    return rt_session_graph(tp_session_rank(m->first_tp, 0));
}

/* One line: the ranks, what was split, the collectives per forward, weights per rank. */
static void log_split(const srv_model *m)
{
    tp_session *t = m->first_tp;
    const tp_shard_report *r = tp_session_shard_report(t);
    char weights[256] = "", gpus[128] = "";
    size_t used = 0;
    for (int k = 0; k < tp_session_size(t) && used < sizeof weights; k++) {
        rt_session_stats st;
        rt_session_get_stats(tp_session_rank(t, k), &st);
        used += (size_t)snprintf(weights + used, sizeof weights - used, "%s%zu", k ? ", " : "",
                                 st.weight_bytes);
    }
    used = 0;
    for (int k = 0; k < m->cfg.n_gpus && used < sizeof gpus; k++)
        used += (size_t)snprintf(gpus + used, sizeof gpus - used, "%s%d", k ? ", " : "",
                                 m->cfg.gpus[k]);
    SRV_INFO("model '%s' version %lld: tensor-parallel over %d CPU ranks%s%s%s: %d attention "
             "and %d MLP blocks split, %d embedding(s) and %d output layer(s) split by "
             "vocabulary, %d left whole (tied or too small); %d all-reduce(s) and %d "
             "all-gather(s) per forward; weight bytes per rank: %s", m->name,
             (long long)m->version, tp_session_size(t), used ? " (gpus [" : "", gpus,
             used ? "] recorded: execution over NCCL is not written yet)" : "", r->attentions,
             r->mlps, r->embeddings, r->lm_heads, r->vocab_replicated, r->all_reduces,
             r->all_gathers, weights);
}

rt_status srv_tp_load(srv_model *m, rt_error *err)
{
    m->first_tp = tp_session_create(m->path, m->cfg.tensor_parallel, &m->opts, err);
    if (!m->first_tp)
        return err ? err->status : RT_ERR_BACKEND;
    rt_error warm = {0};
    if (tp_session_plan_default(m->first_tp, &warm) != RT_OK)
        SRV_WARN("model '%s' version %lld: warm-up with zero inputs failed (%s); memory is "
                 "planned at the first request", m->name, (long long)m->version, warm.text);
    log_split(m);
    return RT_OK;
}
