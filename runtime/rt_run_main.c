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
    "                [--no-optimize] [--tensor-parallel N] [--version] [--help]\n"
    "\n"
    "Runs an ONNX model once (or N times after a warm-up with --repeat) on TensorProto inputs.\n"
    "  --model PATH        the .onnx file (external data files are read from its folder)\n"
    "  --input FILE.pb     a serialized TensorProto, one per graph input, in graph order\n"
    "  --output-dir DIR    write DIR/output_<i>.pb for each graph output (created if needed;\n"
    "                      with --repeat, the outputs of the last timed run)\n"
    "  --backend B         cpu, cuda or auto (default auto: the CPU; the CUDA backend is\n"
    "                      compiled but its kernels are not implemented yet, so cuda\n"
    "                      is refused)\n"
    "  --threads N         CPU worker threads (default: all cores)\n"
    "  --repeat N          after one warm-up run, run N times and print\n"
    "                      'latency_ms min=.. median=.. max=..'\n"
    "  --report            print a JSON report as the last line of stdout: nodes by op,\n"
    "                      nodes_before / nodes_after the optimizer, fusions (rewrites by\n"
    "                      pattern), activation bytes with and without memory planning;\n"
    "                      without inputs the model is planned with zero inputs (dynamic\n"
    "                      dims = 1) instead of run\n"
    "  --no-optimize       run the graph as loaded, without the graph optimizer\n"
    "  --tensor-parallel N split the model over N CPU ranks (threads of this process;\n"
    "                      --threads is then per rank); --report adds\n"
    "                      tensor_parallel_size, weight_bytes per rank and\n"
    "                      allreduce_per_forward\n"
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
        {0, 0, 0, 0}};
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
    if (tp) {
        json_t *per_rank = json_array();
        for (int k = 0; k < tp_session_size(tp); k++) {
            rt_session_stats rs;
            rt_session_get_stats(tp_session_rank(tp, k), &rs);
            json_array_append_new(per_rank, json_integer((json_int_t)rs.weight_bytes));
        }
        json_object_set_new(r, "tensor_parallel_size", json_integer(tp_session_size(tp)));
        json_object_set_new(r, "weight_bytes_per_rank", per_rank);
        json_object_set_new(r, "allreduce_per_forward",
                            json_integer(tp_session_shard_report(tp)->all_reduces));
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
