/* rt_compress.h: model compression at load time. Graph passes that make a model smaller
 * (and, where a kernel for the smaller form is faster, cheaper to run): low-rank
 * factorization of Linear weights, magnitude or 2:4 pruning, INT8 quantization (weight-only
 * or dynamic W8A8) and FP16/BF16 weights. They run after the optimizer (rt_optimize.h), on
 * its canonical ops (infd.Linear, infd.Attention, Gather of an embedding table, ...), in
 * this order: low-rank, prune, quantize / precision. docs/compression.md describes each
 * technique, where it applies and what it measured.
 *
 * Options come from infd-run flags (--quantize, --precision, --prune, --low-rank) and from
 * a model's config.json ("infd": {"compression": {...}}, docs/config.md). */
#ifndef RT_COMPRESS_H
#define RT_COMPRESS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "rt_graph.h"
#include "rt_status.h"

typedef enum {
    RT_PRECISION_FP32 = 0,
    RT_PRECISION_FP16, /* weights stored as FP16, computed in FP32 */
    RT_PRECISION_BF16,
    RT_PRECISION_TF32  /* a CUDA math mode (TF32 tensor cores, FP32 weights): changes no
                        * weight, and the CPU computes it as fp32 */
} rt_precision;

typedef enum {
    RT_QUANT_NONE = 0,
    RT_QUANT_INT8_WEIGHT_ONLY, /* INT8 weights, per-output-channel scales; FP32 activations */
    RT_QUANT_INT8              /* dynamic W8A8: per-row activation scales, INT32 accumulation */
} rt_quant;

typedef enum {
    RT_PRUNE_NONE = 0,
    RT_PRUNE_MAGNITUDE, /* unstructured: the smallest |w| of each weight set to zero */
    RT_PRUNE_2_4        /* two zeros in every group of four along the reduction dim */
} rt_prune;

typedef struct rt_compress_options {
    rt_precision precision;
    rt_quant quantize;
    rt_prune prune;
    float prune_sparsity;  /* RT_PRUNE_MAGNITUDE: fraction of each weight zeroed, in (0, 1) */
    float low_rank_energy; /* 0: off; else the singular-value energy kept, in (0, 1] */
} rt_compress_options;

/* All off (fp32, nothing applied). */
void rt_compress_options_init(rt_compress_options *o);
/* Whether any technique is selected. */
bool rt_compress_options_active(const rt_compress_options *o);

/* Parsers for flag and config values; false (with a reason in err) for anything else.
 *   precision: "fp32" | "tf32" | "fp16" | "bf16"
 *   quantize:  "none" | "int8" | "int8-weight-only"
 *   prune:     "none" | "2:4" | a sparsity such as "0.5"
 *   low-rank:  an energy such as "0.95" */
bool rt_precision_parse(const char *s, rt_precision *p, rt_error *err);
bool rt_quant_parse(const char *s, rt_quant *q, rt_error *err);
bool rt_prune_parse(const char *s, rt_prune *p, float *sparsity, rt_error *err);
bool rt_low_rank_parse(const char *s, float *energy, rt_error *err);
const char *rt_precision_name(rt_precision p);
const char *rt_quant_name(rt_quant q);

/* One technique applied to one node. */
typedef struct rt_compress_entry {
    char *node;          /* node name (owned) */
    char *technique;     /* "int8_weight_only", "int8_w8a8", "fp16", "prune_0.50", "2:4",
                          * "low_rank_r64", ... (owned) */
    size_t bytes_before; /* the node's weight bytes before and after this technique */
    size_t bytes_after;
} rt_compress_entry;

/* What the passes did. Owned by its holder; rt_compress_report_free releases the entries. */
typedef struct rt_compress_report {
    size_t weight_bytes_before, weight_bytes_after; /* all weights of the graph */
    int n_entries, cap_entries;
    rt_compress_entry *entries;
} rt_compress_report;

/* Runs the selected techniques on an optimized graph, then drops the weights they
 * replaced. Nodes a technique cannot apply to (wrong op, too small to gain) are left as
 * they are; an option that applies to nothing is not an error. rep (zeroed, or a report
 * used before: its entries are freed first) receives what was done. On failure g may be
 * half rewritten and must be discarded. */
rt_status rt_compress(rt_graph *g, const rt_compress_options *o, rt_compress_report *rep,
                      rt_error *err);
void rt_compress_report_free(rt_compress_report *rep); /* NULL-safe; leaves it empty */

/* Bytes of all weights of g as held (what infd-run --report calls weight_bytes). */
size_t rt_compress_weight_bytes(const rt_graph *g);

/* For the passes (rt_compress_*.c): records one entry (strings copied). */
rt_status rt_compress_report_add(rt_compress_report *rep, const char *node,
                                 const char *technique, size_t bytes_before,
                                 size_t bytes_after, rt_error *err);

/* The passes, each in its own file, called by rt_compress in the order above. */
rt_status rt_compress_low_rank(rt_graph *g, float energy, rt_compress_report *rep,
                               rt_error *err);                      /* rt_compress_low_rank.c */
rt_status rt_compress_prune(rt_graph *g, rt_prune mode, float sparsity,
                            rt_compress_report *rep, rt_error *err); /* rt_compress_prune.c */
/* Linear and Attention weights to INT8 (rt_compress_quant.c) */
rt_status rt_compress_quantize(rt_graph *g, rt_quant mode, rt_compress_report *rep,
                               rt_error *err);
/* Symmetric INT8 with one scale per output channel, shared by the INT8 passes:
 * q (rows x cols) and scale (rows) with src ~ scale[r] q[r][c], |q| <= 127 (the row's
 * largest |value| maps to 127; an all-zero row gets scale 1). Row r of the result is row
 * r of src (rows x cols), or column r of src (cols x rows) when transposed. */
void rt_quantize_i8_rows(const float *src, int64_t rows, int64_t cols, bool transposed,
                         int8_t *q, float *scale);
/* Gather of an embedding table to INT8 with per-row scales, for either INT8 mode
 * (rt_compress_embed.c) */
rt_status rt_compress_quantize_embeddings(rt_graph *g, rt_compress_report *rep, rt_error *err);
/* remaining F32 weights of the compute ops to FP16 / BF16 (rt_compress_precision.c) */
rt_status rt_compress_precision(rt_graph *g, rt_precision p, rt_compress_report *rep,
                                rt_error *err);

/* For the passes (rt_compress_embed.c): Gathers of embedding tables to infd.Embedding with
 * the table as dt: I8 with per-row scales, F16 or BF16. */
rt_status rt_compress_embeddings(rt_graph *g, rt_dtype dt, rt_compress_report *rep,
                                 rt_error *err);
/* How many node inputs read each value of g: a new array of g->n_values counts (the caller
 * frees it), NULL when out of memory. */
int *rt_compress_reads(const rt_graph *g);
/* The data of value v when it is an F32 weight that is no graph output (one a pass may
 * replace), else NULL (also for v < 0). */
const rt_tensor *rt_compress_f32_weight(const rt_graph *g, int v);
/* Whether every element of the F32 tensor t is finite (the passes leave a weight holding
 * an infinity or NaN as it is). */
bool rt_compress_all_finite(const rt_tensor *t);

#endif
