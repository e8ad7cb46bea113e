/* rt_compress.c: the compression driver (rt_compress.h): option parsing and names, the
 * report, and rt_compress, which runs the selected passes in their fixed order and then
 * drops the weights they replaced, so that the graph holds (and weight_bytes counts) only
 * what is executed. The passes live in rt_compress_<technique>.c. */
#include "rt_compress.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "rt_opt.h"

void rt_compress_options_init(rt_compress_options *o)
{
    memset(o, 0, sizeof *o);
    o->precision = RT_PRECISION_FP32;
    o->quantize = RT_QUANT_NONE;
    o->prune = RT_PRUNE_NONE;
}

bool rt_compress_options_active(const rt_compress_options *o)
{
    bool narrow = o->precision == RT_PRECISION_FP16 || o->precision == RT_PRECISION_BF16;
    return narrow || o->quantize != RT_QUANT_NONE ||
           o->prune != RT_PRUNE_NONE || o->low_rank_energy > 0;
}

static const char *const precision_names[] = {
    [RT_PRECISION_FP32] = "fp32", [RT_PRECISION_FP16] = "fp16", [RT_PRECISION_BF16] = "bf16",
    [RT_PRECISION_TF32] = "tf32"};
static const char *const quant_names[] = {
    [RT_QUANT_NONE] = "none", [RT_QUANT_INT8_WEIGHT_ONLY] = "int8-weight-only",
    [RT_QUANT_INT8] = "int8"};

const char *rt_precision_name(rt_precision p)
{
    return (unsigned)p < sizeof precision_names / sizeof *precision_names ? precision_names[p]
                                                                          : "?";
}

const char *rt_quant_name(rt_quant q)
{
    return (unsigned)q < sizeof quant_names / sizeof *quant_names ? quant_names[q] : "?";
}

/* The index of s among names[0..n), or -1. */
static int name_index(const char *s, const char *const *names, int n)
{
    for (int i = 0; s && i < n; i++)
        if (strcmp(s, names[i]) == 0)
            return i;
    return -1;
}

bool rt_precision_parse(const char *s, rt_precision *p, rt_error *err)
{
    int i = name_index(s, precision_names, (int)(sizeof precision_names / sizeof *precision_names));
    if (i < 0) {
        rt_error_set(err, RT_ERR_INVALID_ARG, "precision takes fp32, tf32, fp16 or bf16, not '%s'",
                     s ? s : "");
        return false;
    }
    *p = (rt_precision)i;
    return true;
}

bool rt_quant_parse(const char *s, rt_quant *q, rt_error *err)
{
    int i = name_index(s, quant_names, (int)(sizeof quant_names / sizeof *quant_names));
    if (i < 0) {
        rt_error_set(err, RT_ERR_INVALID_ARG,
                     "quantize takes none, int8 or int8-weight-only, not '%s'", s ? s : "");
        return false;
    }
    *q = (rt_quant)i;
    return true;
}

/* A number of the whole string s in [lo, hi], hi included when hi_closed; false else. */
static bool parse_fraction(const char *s, float lo, float hi, bool hi_closed, float *v)
{
    if (!s || !*s)
        return false;
    char *end;
    errno = 0;
    double d = strtod(s, &end);
    if (errno || *end || !isfinite(d) || d <= lo || d > hi || (!hi_closed && d == hi))
        return false;
    *v = (float)d;
    return true;
}

bool rt_prune_parse(const char *s, rt_prune *p, float *sparsity, rt_error *err)
{
    if (s && strcmp(s, "none") == 0) {
        *p = RT_PRUNE_NONE;
        *sparsity = 0;
        return true;
    }
    if (s && strcmp(s, "2:4") == 0) {
        *p = RT_PRUNE_2_4;
        *sparsity = 0.5f;
        return true;
    }
    if (parse_fraction(s, 0, 1, false, sparsity)) {
        *p = RT_PRUNE_MAGNITUDE;
        return true;
    }
    rt_error_set(err, RT_ERR_INVALID_ARG,
                 "prune takes none, 2:4 or a sparsity between 0 and 1 such as 0.5, not '%s'",
                 s ? s : "");
    return false;
}

bool rt_low_rank_parse(const char *s, float *energy, rt_error *err)
{
    if (parse_fraction(s, 0, 1, true, energy))
        return true;
    rt_error_set(err, RT_ERR_INVALID_ARG,
                 "low-rank takes the energy to keep, above 0 and at most 1 such as 0.95, not "
                 "'%s'", s ? s : "");
    return false;
}

/* ---- the report ---- */

rt_status rt_compress_report_add(rt_compress_report *rep, const char *node,
                                 const char *technique, size_t bytes_before,
                                 size_t bytes_after, rt_error *err)
{
    if (rep->n_entries == rep->cap_entries) {
        int cap = rep->cap_entries ? 2 * rep->cap_entries : 16;
        rt_compress_entry *e = realloc(rep->entries, sizeof *e * (size_t)cap);
        if (!e)
            return rt_error_set(err, RT_ERR_NOMEM, "out of memory recording compression");
        rep->entries = e;
        rep->cap_entries = cap;
    }
    rt_compress_entry *e = &rep->entries[rep->n_entries];
    e->node = strdup(node);
    e->technique = strdup(technique);
    if (!e->node || !e->technique) {
        free(e->node);
        free(e->technique);
        return rt_error_set(err, RT_ERR_NOMEM, "out of memory recording compression");
    }
    e->bytes_before = bytes_before;
    e->bytes_after = bytes_after;
    rep->n_entries++;
    return RT_OK;
}

void rt_compress_report_free(rt_compress_report *rep)
{
    if (!rep)
        return;
    for (int i = 0; i < rep->n_entries; i++) {
        free(rep->entries[i].node);
        free(rep->entries[i].technique);
    }
    free(rep->entries);
    memset(rep, 0, sizeof *rep);
}

/* ---- helpers the passes share (declared in rt_compress.h) ---- */

int *rt_compress_reads(const rt_graph *g)
{
    int *reads = calloc((size_t)(g->n_values ? g->n_values : 1), sizeof *reads);
    for (int i = 0; reads && i < g->n_nodes; i++)
        for (int k = 0; k < g->nodes[i].n_inputs; k++)
            if (g->nodes[i].inputs[k] >= 0)
                reads[g->nodes[i].inputs[k]]++;
    return reads;
}

const rt_tensor *rt_compress_f32_weight(const rt_graph *g, int v)
{
    const rt_value *val = v >= 0 ? &g->values[v] : NULL;
    return val && val->kind == RT_VALUE_WEIGHT && val->data && !val->is_output &&
                   val->data->dtype == RT_DTYPE_F32
               ? val->data
               : NULL;
}

bool rt_compress_all_finite(const rt_tensor *t)
{
    const float *d = t->data;
    for (int64_t i = 0, n = rt_tensor_numel(t); i < n; i++)
        if (!isfinite(d[i]))
            return false;
    return true;
}

size_t rt_compress_weight_bytes(const rt_graph *g)
{
    size_t bytes = 0;
    for (int v = 0; v < g->n_values; v++)
        if (g->values[v].kind == RT_VALUE_WEIGHT && g->values[v].data)
            bytes += rt_tensor_nbytes(g->values[v].data);
    return bytes;
}

/* ---- the driver ---- */

/* Drops the values no node, input or output refers to any more: the weights the passes
 * replaced (the optimizer's compaction, with no node dead). */
static rt_status drop_unused(rt_graph *g, rt_error *err)
{
    rt_opt o = {.g = g};
    o.dead = calloc((size_t)(g->n_nodes ? g->n_nodes : 1), sizeof *o.dead);
    rt_status st = o.dead ? rt_opt_compact(&o, err)
                          : rt_error_set(err, RT_ERR_NOMEM, "out of memory compacting the graph");
    free(o.dead);
    free(o.producer);
    free(o.use_start);
    free(o.uses);
    return st;
}

static rt_status check_options(const rt_compress_options *o, rt_error *err)
{
    if ((unsigned)o->precision > RT_PRECISION_TF32 || (unsigned)o->quantize > RT_QUANT_INT8 ||
        (unsigned)o->prune > RT_PRUNE_2_4)
        return rt_error_set(err, RT_ERR_INVALID_ARG, "compression: unknown technique");
    if (o->prune == RT_PRUNE_MAGNITUDE && !(o->prune_sparsity > 0 && o->prune_sparsity < 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "compression: prune sparsity %g is not between 0 and 1",
                            (double)o->prune_sparsity);
    if (!(o->low_rank_energy >= 0 && o->low_rank_energy <= 1))
        return rt_error_set(err, RT_ERR_INVALID_ARG,
                            "compression: low-rank energy %g is not between 0 and 1",
                            (double)o->low_rank_energy);
    return RT_OK;
}

rt_status rt_compress(rt_graph *g, const rt_compress_options *o, rt_compress_report *rep,
                      rt_error *err)
{
    rt_compress_report_free(rep);
    rep->weight_bytes_before = rep->weight_bytes_after = rt_compress_weight_bytes(g);
    rt_status st = check_options(o, err);
    if (st != RT_OK || !rt_compress_options_active(o))
        return st;
    if (o->low_rank_energy > 0)
        st = rt_compress_low_rank(g, o->low_rank_energy, rep, err);
    if (st == RT_OK && o->prune != RT_PRUNE_NONE)
        st = rt_compress_prune(g, o->prune, o->prune_sparsity, rep, err);
    if (st == RT_OK && o->quantize != RT_QUANT_NONE) {
        st = rt_compress_quantize(g, o->quantize, rep, err);
        if (st == RT_OK)
            st = rt_compress_quantize_embeddings(g, rep, err);
    }
    if (st == RT_OK && (o->precision == RT_PRECISION_FP16 || o->precision == RT_PRECISION_BF16))
        st = rt_compress_precision(g, o->precision, rep, err);
    if (st == RT_OK)
        st = drop_unused(g, err);
    if (st == RT_OK && (st = rt_graph_check(g, err)) != RT_OK)
        rt_error_prefix(err, "compression: ");
    rep->weight_bytes_after = rt_compress_weight_bytes(g);
    return st;
}
