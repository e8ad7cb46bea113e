/* rt_run_main.c: infd-run, the command-line runner (our trtexec): loads an ONNX model,
 * feeds it TensorProto files, writes the outputs as TensorProto files, times repeated runs
 * and prints a JSON report of the model as executed. */
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "rt_build_info.h"
#include "rt_onnx.h"
#include "rt_session.h"
#include "tp_plan.h"
#include "tp_session.h"

#define MAX_INPUTS 256

static const char usage[] =
    "usage: infd-run --model PATH.onnx [--input FILE.pb]... [--output-dir DIR]\n"
    "                [--backend cpu|cuda|auto] [--threads N] [--repeat N] [--report]\n"
    "                [--no-optimize] [--tensor-parallel N] [--quantize Q] [--precision P]\n"
    "                [--prune S] [--low-rank E] [--no-graphs] [--version] [--help]\n"
    "\n"
    "Runs an ONNX model once (or N times after a warm-up with --repeat) on TensorProto inputs.\n"
    "  --model PATH        the .onnx file (external data files are read from its folder)\n"
    "  --input FILE.pb     a serialized TensorProto, one per graph input, in graph order\n"
    "  --output-dir DIR    write DIR/output_<i>.pb for each graph output (created if needed;\n"
    "                      with --repeat, the outputs of the last timed run)\n"
    "  --backend B         cpu, cuda or auto (default auto: cuda when CUDA support is\n"
    "                      compiled in, a device is visible and it has every op of the\n"
    "                      model, else the CPU)\n"
    "  --threads N         CPU worker threads (default: all cores)\n"
    "  --repeat N          after one warm-up run, run N times and print\n"
    "                      'latency_ms min=.. median=.. max=..'\n"
    "  --report            print a JSON report as the last line of stdout: nodes by op,\n"
    "                      nodes_before / nodes_after the optimizer, fusions (rewrites by\n"
    "                      pattern), weight_bytes as executed, compression (below),\n"
    "                      activation bytes with and without memory planning, and on\n"
    "                      cuda \"launches\": kernel launches per inference run node by\n"
    "                      node (eager), those of the last run (1 when it replayed a\n"
    "                      CUDA Graph, which --repeat 2 or more reaches) and graph_replay;\n"
    "                      without inputs the model is planned with zero inputs (dynamic\n"
    "                      dims = 1) instead of run\n"
    "  --no-optimize       run the graph as loaded, without the graph optimizer\n"
    "  --tensor-parallel N split the model over N CPU ranks (threads of this process;\n"
    "                      --threads is then per rank); --report adds\n"
    "                      tensor_parallel_size, weight_bytes_per_rank,\n"
    "                      allreduce_per_forward, allgather_per_forward and sharded\n"
    "                      (blocks split: attention, mlp, embedding, lm_head, and\n"
    "                      vocab_replicated: vocabulary layers left whole)\n"
    "  --quantize Q        int8-weight-only (INT8 weights with per-output-channel scales,\n"
    "                      FP32 activations) or int8 (dynamic W8A8: activations quantized\n"
    "                      per row at run time, INT32 accumulation) for the Linear and\n"
    "                      Attention weights large enough to gain, and embedding tables\n"
    "  --precision P       fp32 (default), fp16 or bf16: the remaining F32 weights stored in\n"
    "                      half precision, computed in FP32; on cuda also the GEMMs'\n"
    "                      precision (FP32 accumulation), where tf32 runs F32 GEMMs on the\n"
    "                      TF32 tensor cores (on the CPU tf32 computes as fp32)\n"
    "  --no-graphs         cuda: run node by node, never record and replay CUDA Graphs\n"
    "  --prune S           a sparsity such as 0.5 (that share of the smallest weights of each\n"
    "                      Linear, Attention, MatMul and Gemm weight set to zero; a Linear of\n"
    "                      65536 weights or more pruned to 0.8 or more runs a sparse kernel)\n"
    "                      or 2:4 (two zeros in every four along the reduction dim; dense\n"
    "                      kernels on the CPU)\n"
    "  --low-rank E        factor Linear weights W ~ U V keeping energy E of the singular\n"
    "                      values (such as 0.95), where that saves FLOPs\n"
    "                      (compression runs after the optimizer, in the order low-rank,\n"
    "                      prune, quantize, precision; --report's \"compression\" gives the\n"
    "                      weight bytes before and after and the technique per node)\n"
    "  --version           print version, backends and visible devices\n"
    "infd-run --plan ...   plans a language model's memory per device from its Hugging\n"
    "                      Face config.json (see infd-run --plan --help)\n"
    "Exit status: 0 success, 1 the model or inputs were rejected, 2 bad usage.\n";

typedef struct {
    const char *model, *output_dir;
    const char *inputs[MAX_INPUTS];
    int n_inputs, repeat, tensor_parallel; /* 0: no tensor parallelism */
    bool report;
    rt_session_options opts;
} run_args;

static int fail(int code, const char *fmt, const char *arg)
{
    fprintf(stderr, "infd-run: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return code;
}

/* Parses a positive int option value; returns -1 if it is not one. */
static int parse_count(const char *s)
{
    char *end;
    errno = 0;
    long v = strtol(s, &end, 10);
    if (errno || *end || end == s || v < 1 || v > 1000000)
        return -1;
    return (int)v;
}

/* Returns -1 to continue, else the exit status. */
static int parse_args(int argc, char **argv, run_args *a)
{
    static const struct option longopts[] = {
        {"model", required_argument, 0, 'm'},   {"input", required_argument, 0, 'i'},
        {"output-dir", required_argument, 0, 'o'}, {"backend", required_argument, 0, 'b'},
        {"threads", required_argument, 0, 't'}, {"repeat", required_argument, 0, 'r'},
        {"report", no_argument, 0, 'R'},        {"version", no_argument, 0, 'V'},
        {"help", no_argument, 0, 'h'},          {"no-optimize", no_argument, 0, 'O'},
        {"tensor-parallel", required_argument, 0, 'T'},
        {"quantize", required_argument, 0, 'Q'}, {"precision", required_argument, 0, 'P'},
        {"prune", required_argument, 0, 'S'},    {"low-rank", required_argument, 0, 'L'},
        {"no-graphs", no_argument, 0, 'G'},
        {0, 0, 0, 0}};
    rt_error perr;
    rt_compress_options *co = &a->opts.compress;
    memset(a, 0, sizeof *a);
    rt_session_options_init(&a->opts);
    opterr = 0;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'm': a->model = optarg; break;
        case 'i':
            if (a->n_inputs == MAX_INPUTS)
                return fail(2, "too many --input files (at most %s)", "256");
            a->inputs[a->n_inputs++] = optarg;
            break;
        case 'o': a->output_dir = optarg; break;
        case 'b':
            if (!rt_backend_kind_parse(optarg, &a->opts.backend))
                return fail(2, "--backend takes cpu, cuda or auto, not '%s'", optarg);
            break;
        case 't':
            if ((a->opts.threads = parse_count(optarg)) < 0)
                return fail(2, "--threads takes a positive number, not '%s'", optarg);
            break;
        case 'r':
            if ((a->repeat = parse_count(optarg)) < 0)
                return fail(2, "--repeat takes a positive number, not '%s'", optarg);
            break;
        case 'R': a->report = true; break;
        case 'T':
            if ((a->tensor_parallel = parse_count(optarg)) < 0)
                return fail(2, "--tensor-parallel takes a positive number, not '%s'", optarg);
            break;
        case 'O': a->opts.no_optimize = true; break;
        case 'G': a->opts.no_graphs = true; break;
        case 'Q':
            if (!rt_quant_parse(optarg, &co->quantize, &perr))
                return fail(2, "--%s", perr.text);
            break;
        case 'P':
            if (!rt_precision_parse(optarg, &co->precision, &perr))
                return fail(2, "--%s", perr.text);
            break;
        case 'S':
            if (!rt_prune_parse(optarg, &co->prune, &co->prune_sparsity, &perr))
                return fail(2, "--%s", perr.text);
            break;
        case 'L':
            if (!rt_low_rank_parse(optarg, &co->low_rank_energy, &perr))
                return fail(2, "--%s", perr.text);
            break;
        case 'V': rt_build_info_print(stdout, "infd-run"); return 0;
        case 'h': fputs(usage, stdout); return 0;
        default:
            return fail(2, "unknown or incomplete option '%s' (see --help)", argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(2, "unexpected argument '%s' (see --help)", argv[optind]);
    if (!a->model)
        return fail(2, "%s", "--model is required (see --help)");
    if (a->tensor_parallel && a->opts.no_optimize)
        return fail(2, "%s", "--tensor-parallel shards the optimized graph: drop --no-optimize");
    if (rt_compress_options_active(co) && a->opts.no_optimize)
        return fail(2, "%s", "compression rewrites the optimized graph: drop --no-optimize");
    return -1;
}

static double now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e3 + (double)ts.tv_nsec / 1e6;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static rt_status write_outputs(const rt_session *s, const char *dir, rt_tensor **out,
                               rt_error *err)
{
    if (mkdir(dir, 0777) != 0 && errno != EEXIST)
        return rt_error_set(err, RT_ERR_IO, "cannot create output directory '%s': %s", dir,
                            strerror(errno));
    for (int i = 0; i < rt_session_output_count(s); i++) {
        char path[4096];
        snprintf(path, sizeof path, "%s/output_%d.pb", dir, i);
        rt_status st = rt_tensorproto_write_file(path, out[i], rt_session_output(s, i)->name, err);
        if (st != RT_OK)
            return st;
    }
    return RT_OK;
}

/* The report's "compression" object: weight bytes before and after, and per node the
 * technique applied. */
static json_t *compression_json(const rt_compress_report *c)
{
    json_t *nodes = json_array();
    for (int i = 0; i < c->n_entries; i++) {
        const rt_compress_entry *e = &c->entries[i];
        json_array_append_new(nodes, json_pack("{s:s, s:s, s:I, s:I}", "node", e->node,
                                               "technique", e->technique, "bytes_before",
                                               (json_int_t)e->bytes_before, "bytes_after",
                                               (json_int_t)e->bytes_after));
    }
    return json_pack("{s:I, s:I, s:o}", "weight_bytes_before",
                     (json_int_t)c->weight_bytes_before, "weight_bytes_after",
                     (json_int_t)c->weight_bytes_after, "nodes", nodes);
}

/* tp (NULL without tensor parallelism): s is its rank 0, and the report adds the ranks */
static void print_report(const rt_session *s, tp_session *tp, const double *lat, int n_lat)
{
    rt_session_stats st;
    rt_session_get_stats(s, &st);
    if (tp)
        st.optimizer = *tp_session_optimize_report(tp);
    json_t *nodes = json_object();
    for (int op = 0; op < RT_OP_COUNT; op++)
        if (st.nodes_by_op[op])
            json_object_set_new(nodes, rt_op_name((rt_op)op), json_integer(st.nodes_by_op[op]));
    json_t *fusions = json_object();
    for (int k = 0; k < RT_OPT_COUNT; k++)
        if (st.optimizer.rewrites[k])
            json_object_set_new(fusions, rt_opt_rewrite_name((rt_opt_rewrite)k),
                                json_integer(st.optimizer.rewrites[k]));
    json_t *r = json_pack("{s:s, s:o, s:i, s:i, s:i, s:o, s:I, s:I, s:I}", "backend", st.backend,
                          "nodes", nodes, "node_count", st.n_nodes, "nodes_before",
                          st.optimizer.nodes_before, "nodes_after", st.optimizer.nodes_after,
                          "fusions", fusions, "weight_bytes", (json_int_t)st.weight_bytes,
                          "peak_activation_bytes", (json_int_t)st.peak_activation_bytes,
                          "unplanned_activation_bytes", (json_int_t)st.naive_activation_bytes);
    json_object_set_new(r, "compression", compression_json(&st.compress));
    if (st.counts_launches)
        json_object_set_new(r, "launches",
                            json_pack("{s:I, s:I, s:b}", "eager", (json_int_t)st.launches_eager,
                                      "last_run", (json_int_t)st.launches_last, "graph_replay",
                                      st.replayed_last));
    if (tp) {
        json_t *per_rank = json_array();
        for (int k = 0; k < tp_session_size(tp); k++) {
            rt_session_stats rs;
            rt_session_get_stats(tp_session_rank(tp, k), &rs);
            json_array_append_new(per_rank, json_integer((json_int_t)rs.weight_bytes));
        }
        json_object_set_new(r, "tensor_parallel_size", json_integer(tp_session_size(tp)));
        json_object_set_new(r, "weight_bytes_per_rank", per_rank);
        const tp_shard_report *sr = tp_session_shard_report(tp);
        json_object_set_new(r, "allreduce_per_forward", json_integer(sr->all_reduces));
        json_object_set_new(r, "allgather_per_forward", json_integer(sr->all_gathers));
        json_object_set_new(r, "sharded",
                            json_pack("{s:i, s:i, s:i, s:i, s:i}", "attention", sr->attentions,
                                      "mlp", sr->mlps, "embedding", sr->embeddings, "lm_head",
                                      sr->lm_heads, "vocab_replicated", sr->vocab_replicated));
    }
    if (n_lat > 0)
        json_object_set_new(r, "latency_ms",
                            json_pack("{s:f, s:f, s:f}", "min", lat[0], "median", lat[n_lat / 2],
                                      "max", lat[n_lat - 1]));
    char *text = json_dumps(r, JSON_COMPACT);
    printf("%s\n", text);
    free(text);
    json_decref(r);
}

/* One run, on all ranks when tp is set (s is then its rank 0). */
static rt_status run_once(rt_session *s, tp_session *tp, const rt_tensor *const *in, int n_in,
                          rt_tensor **out, rt_error *err)
{
    int n_out = rt_session_output_count(s);
    return tp ? tp_session_run(tp, in, n_in, out, n_out, err)
              : rt_session_run(s, in, n_in, out, n_out, err);
}

/* Runs the model repeat times after the warm-up, sorting the latencies into lat; out
 * holds the outputs of the last run (those of the warm-up are freed). */
static rt_status time_runs(rt_session *s, tp_session *tp, const rt_tensor *const *in, int n_in,
                           int repeat, double *lat, rt_tensor **out, rt_error *err)
{
    int n_out = rt_session_output_count(s);
    rt_status st = RT_OK;
    for (int r = 0; r < repeat && st == RT_OK; r++) {
        for (int k = 0; k < n_out; k++) {
            rt_tensor_free(out[k]);
            out[k] = NULL;
        }
        double t0 = now_ms();
        st = run_once(s, tp, in, n_in, out, err);
        lat[r] = now_ms() - t0;
    }
    qsort(lat, (size_t)repeat, sizeof *lat, cmp_double);
    return st;
}

static int run(const run_args *a)
{
    rt_error err = {0};
    tp_session *tp = NULL;
    if (a->tensor_parallel)
        tp = tp_session_create(a->model, a->tensor_parallel, &a->opts, &err);
    rt_session *s = a->tensor_parallel ? (tp ? tp_session_rank(tp, 0) : NULL)
                                       : rt_session_create(a->model, &a->opts, &err);
    if (!s)
        return fail(1, "%s", err.text);
    int n_in = rt_session_input_count(s), n_out = rt_session_output_count(s);
    rt_tensor *in[MAX_INPUTS] = {0};
    rt_tensor **out = calloc((size_t)(n_out ? n_out : 1), sizeof *out);
    double *lat = calloc((size_t)(a->repeat ? a->repeat : 1), sizeof *lat);
    int code = 0;
    rt_status st = out && lat ? RT_OK : rt_error_set(&err, RT_ERR_NOMEM, "out of memory");
    bool plan_only = a->report && a->n_inputs == 0 && n_in > 0 && !a->repeat && !a->output_dir;
    if (st == RT_OK && !plan_only && a->n_inputs != n_in)
        st = rt_error_set(&err, RT_ERR_INVALID_ARG, "the model takes %d input%s, got %d --input",
                          n_in, n_in == 1 ? "" : "s", a->n_inputs);
    for (int i = 0; st == RT_OK && !plan_only && i < n_in; i++) {
        in[i] = rt_tensorproto_read_file(a->inputs[i], NULL, &err);
        if (!in[i]) {
            st = err.status;
            rt_error_prefix(&err, "input %d (%s): ", i, a->inputs[i]);
        }
    }
    if (st == RT_OK && plan_only)
        st = tp ? tp_session_plan_default(tp, &err) : rt_session_plan_default(s, &err);
    else if (st == RT_OK)
        st = run_once(s, tp, (const rt_tensor *const *)in, n_in, out, &err);
    if (st == RT_OK && a->repeat)
        st = time_runs(s, tp, (const rt_tensor *const *)in, n_in, a->repeat, lat, out, &err);
    if (st == RT_OK && a->output_dir)
        st = write_outputs(s, a->output_dir, out, &err);
    if (st == RT_OK && a->repeat)
        printf("latency_ms min=%.4f median=%.4f max=%.4f\n", lat[0], lat[a->repeat / 2],
               lat[a->repeat - 1]);
    if (st == RT_OK && a->report)
        print_report(s, tp, lat, a->repeat);
    if (st != RT_OK)
        code = fail(1, "%s", err.text);
    for (int i = 0; i < n_in && i < MAX_INPUTS; i++)
        rt_tensor_free(in[i]);
    for (int k = 0; out && k < n_out; k++)
        rt_tensor_free(out[k]);
    free(out);
    free(lat);
    if (tp)
        tp_session_free(tp);
    else
        rt_session_free(s);
    return code;
}

int main(int argc, char **argv)
{
    if (tp_plan_cli_requested(argc, argv))
        return tp_plan_cli_main(argc, argv);
    run_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;
    return run(&a);
}
