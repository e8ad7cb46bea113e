/* rt_optimize.c: the optimizer's pass manager: runs the selected passes in their fixed
 * order over one rt_opt context, re-deriving static shapes before each fusion pass, then
 * compacts and re-checks the graph and fills the report. */
#include "rt_optimize.h"

#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"

static const char *const rewrite_names[RT_OPT_COUNT] = {
#define RT_OPT_NAME(e, name) [RT_OPT_##e] = name,
    RT_OPT_REWRITES(RT_OPT_NAME)
#undef RT_OPT_NAME
};

const char *rt_opt_rewrite_name(rt_opt_rewrite r)
{
    return (unsigned)r < RT_OPT_COUNT ? rewrite_names[r] : "?";
}

/* Order matters: folding exposes static shapes; LayerNorm and GELU are found before
 * their Adds and Muls could join other fusions; Linear and BatchNormalization folding
 * precede attention (which looks for Linear projections) and the activations (Conv +
 * BatchNormalization + Relu becomes one FusedConv); SkipLayerNorm needs the LayerNorms;
 * elementwise chains take what is left. */
static const struct {
    unsigned pass;
    bool needs_shapes;
    rt_status (*run)(rt_opt *o, rt_error *err);
} passes_in_order[] = {
    {RT_OPT_PASS_FOLD, false, rt_opt_pass_fold},
    {RT_OPT_PASS_NORM, true, rt_opt_pass_norm},
    {RT_OPT_PASS_LINEAR, true, rt_opt_pass_linear},
    {RT_OPT_PASS_ATTENTION, true, rt_opt_pass_attention},
    {RT_OPT_PASS_ACTIVATION, true, rt_opt_pass_activation},
    {RT_OPT_PASS_SKIP_NORM, true, rt_opt_pass_skip_norm},
    {RT_OPT_PASS_ELEMENTWISE, true, rt_opt_pass_elementwise},
    {RT_OPT_PASS_FOLD, false, rt_opt_pass_dead},
};

rt_status rt_optimize(rt_graph *g, unsigned passes, rt_backend *cpu, rt_optimize_report *rep,
                      rt_error *err)
{
    rt_optimize_report local;
    if (!rep)
        rep = &local;
    memset(rep, 0, sizeof *rep);
    rep->nodes_before = rep->nodes_after = g->n_nodes;
    rt_opt o = {.g = g, .rep = rep, .kctx = {.threads = 1}};
    rt_backend *own = NULL;
    if (!cpu && !(cpu = own = rt_cpu_backend_create(1, err)))
        return err ? err->status : RT_ERR_NOMEM;
    o.cpu = cpu;
    o.dead = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *o.dead);
    rt_status st = o.dead ? rt_opt_index(&o, err)
                          : rt_error_set(err, RT_ERR_NOMEM, "out of memory optimizing the graph");
    for (size_t i = 0; st == RT_OK && i < sizeof passes_in_order / sizeof *passes_in_order; i++) {
        if (!(passes & passes_in_order[i].pass))
            continue;
        if (passes_in_order[i].needs_shapes)
            st = rt_opt_infer_all(&o, err);
        if (st == RT_OK)
            st = passes_in_order[i].run(&o, err);
    }
    if (st == RT_OK)
        st = rt_opt_compact(&o, err);
    if (st == RT_OK && (st = rt_graph_check(g, err)) != RT_OK)
        rt_error_prefix(err, "optimizer: ");
    rep->nodes_after = g->n_nodes;
    free(o.dead);
    free(o.producer);
    free(o.use_start);
    free(o.uses);
    free(o.info);
    free(o.probe);
    rt_kernel_ctx_release(&o.kctx);
    rt_backend_free(own);
    return st;
}
