/* tp_plan_cli.c: `infd-run --plan`, the memory planner's command line: reads a Hugging
 * Face config.json, prints a human summary and, with --report, a JSON line last. Also the
 * parsers of its option values (sizes like 80GiB, weight dtypes). */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "tp_plan.h"

static const char usage[] =
    "usage: infd-run --plan --hf-config PATH/config.json --device-memory SIZE\n"
    "                [--tensor-parallel N] [--dtype fp16|bf16|int8] [--max-batch B]\n"
    "                [--max-seq S] [--flash-attention] [--report]\n"
    "\n"
    "Plans the memory of a decoder language model from its config.json alone (no weights):\n"
    "bytes per rank for weights, activations and the KV cache that remains, and whether a\n"
    "batch of B sequences of S tokens fits.\n"
    "  --hf-config PATH       the model's Hugging Face config.json\n"
    "  --device-memory SIZE   memory of one device: 80GiB, 80GB, 1.5TiB, 24576MiB, bytes\n"
    "  --tensor-parallel N    ranks (devices) the model is split over (default 1)\n"
    "  --dtype D              weights: fp16, bf16 or int8 (weight-only, fp16 scales)\n"
    "                         (default fp16); activations and KV cache are 16-bit\n"
    "  --max-batch B          sequences per forward (default 1)\n"
    "  --max-seq S            tokens per sequence (default: max_position_embeddings)\n"
    "  --flash-attention      attention scores are not materialized\n"
    "  --report               print a JSON report as the last line of stdout\n"
    "Exit status: 0 planned (fitting or not), 1 the config or split was rejected, 2 bad usage.\n";

bool tp_weight_dtype_parse(const char *s, tp_weight_dtype *dtype)
{
    static const char *const names[] = {"fp16", "bf16", "int8"};
    for (int i = 0; i < 3; i++)
        if (strcmp(s, names[i]) == 0) {
            *dtype = (tp_weight_dtype)i;
            return true;
        }
    return false;
}

const char *tp_weight_dtype_name(tp_weight_dtype dtype)
{
    return dtype == TP_WEIGHTS_INT8 ? "int8" : dtype == TP_WEIGHTS_BF16 ? "bf16" : "fp16";
}

bool tp_parse_bytes(const char *s, uint64_t *bytes)
{
    static const struct {
        const char *unit;
        double scale;
    } units[] = {{"", 1},           {"b", 1},           {"kb", 1e3},
                 {"mb", 1e6},       {"gb", 1e9},        {"tb", 1e12},
                 {"kib", 0x1p10},   {"mib", 0x1p20},    {"gib", 0x1p30},
                 {"tib", 0x1p40}};
    size_t digits = strspn(s, "0123456789.");
    if (digits == 0 || strchr(s, '.') != strrchr(s, '.') || (digits == 1 && s[0] == '.'))
        return false;
    double v = strtod(s, NULL); /* the span holds only digits and one dot */
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        if (strcasecmp(s + digits, units[i].unit) != 0)
            continue;
        double b = v * units[i].scale;
        if (b >= 0x1p64)
            return false;
        *bytes = (uint64_t)(b + 0.5);
        return true;
    }
    return false;
}

typedef struct {
    const char *config;
    tp_plan_options opts;
    bool report, have_memory;
} plan_args;

static int fail(int code, const char *fmt, const char *arg)
{
    fprintf(stderr, "infd-run: ");
    fprintf(stderr, fmt, arg);
    fputc('\n', stderr);
    return code;
}

/* A positive integer up to max, or -1. */
static int64_t parse_count(const char *s, int64_t max)
{
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    return errno || *end || end == s || v < 1 || v > max ? -1 : v;
}

/* Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, plan_args *a)
{
    static const struct option longopts[] = {
        {"plan", no_argument, 0, 'P'},
        {"hf-config", required_argument, 0, 'c'},
        {"device-memory", required_argument, 0, 'm'},
        {"tensor-parallel", required_argument, 0, 't'},
        {"dtype", required_argument, 0, 'd'},
        {"max-batch", required_argument, 0, 'b'},
        {"max-seq", required_argument, 0, 's'},
        {"flash-attention", no_argument, 0, 'f'},
        {"report", no_argument, 0, 'R'},
        {"help", no_argument, 0, 'h'},
        {0, 0, 0, 0}};
    memset(a, 0, sizeof *a);
    tp_plan_options_init(&a->opts);
    opterr = 0;
    optind = 0; /* GNU: restart the scan */
    int c;
    int64_t v;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 'P': break;
        case 'c': a->config = optarg; break;
        case 'm':
            if (!tp_parse_bytes(optarg, &a->opts.device_memory) || !a->opts.device_memory)
                return fail(2, "--device-memory takes a size such as 80GiB or 80GB, not '%s'",
                            optarg);
            a->have_memory = true;
            break;
        case 't':
            if ((v = parse_count(optarg, 4096)) < 0)
                return fail(2, "--tensor-parallel takes a number from 1 to 4096, not '%s'",
                            optarg);
            a->opts.tensor_parallel = (int)v;
            break;
        case 'd':
            if (!tp_weight_dtype_parse(optarg, &a->opts.dtype))
                return fail(2, "--dtype takes fp16, bf16 or int8, not '%s'", optarg);
            break;
        case 'b':
            if ((a->opts.max_batch = parse_count(optarg, 1 << 30)) < 0)
                return fail(2, "--max-batch takes a positive number, not '%s'", optarg);
            break;
        case 's':
            if ((a->opts.max_seq = parse_count(optarg, 1 << 30)) < 0)
                return fail(2, "--max-seq takes a positive number, not '%s'", optarg);
            break;
        case 'f': a->opts.flash_attention = true; break;
        case 'R': a->report = true; break;
        case 'h': fputs(usage, stdout); return 0;
        default:
            return fail(2, "unknown or incomplete option '%s' (see --plan --help)",
                        argv[optind - 1]);
        }
    }
    if (optind < argc)
        return fail(2, "unexpected argument '%s' (see --plan --help)", argv[optind]);
    if (!a->config)
        return fail(2, "%s", "--plan needs --hf-config PATH/config.json (see --plan --help)");
    if (!a->have_memory)
        return fail(2, "%s", "--plan needs --device-memory, e.g. 80GiB (see --plan --help)");
    return -1;
}

static double gib(uint64_t bytes)
{
    return (double)bytes / 0x1p30;
}

static void print_summary(const tp_model_config *m, const tp_plan_options *o, const tp_plan *p)
{
    printf("model: %s, %.2fB parameters (hidden %lld, %lld layers, %lld heads, %lld KV heads "
           "of %lld, intermediate %lld%s, vocab %lld)\n", m->model_type,
           (double)p->parameters / 1e9, (long long)m->hidden, (long long)m->layers,
           (long long)m->heads, (long long)m->kv_heads, (long long)m->head_dim,
           (long long)m->intermediate, m->gated_mlp ? " gated" : "", (long long)m->vocab);
    printf("plan: tensor parallel %d, %s weights, %.2f GiB per device, batch %lld x %lld "
           "tokens%s\n", o->tensor_parallel, tp_weight_dtype_name(o->dtype),
           gib(o->device_memory), (long long)o->max_batch, (long long)p->max_seq,
           o->flash_attention ? ", flash attention" : "");
    printf("per rank: %lld heads, %lld KV heads; weights %.2f GiB, activations %.2f GiB, "
           "reserve %.2f GiB\n", (long long)p->heads_per_rank, (long long)p->kv_heads_per_rank,
           gib(p->weight_bytes_per_rank), gib(p->activation_bytes_per_rank),
           gib(p->reserve_bytes));
    printf("KV cache per rank: %.1f KiB per token; %.2f GiB left = %llu tokens\n",
           (double)p->kv_bytes_per_token / 1024, gib(p->kv_cache_bytes_per_rank),
           (unsigned long long)p->max_tokens_in_kv_cache);
    printf("fits: %s (needs %.2f GiB per rank with KV for %lld tokens)\n", p->fits ? "yes" : "no",
           gib(p->required_bytes_per_rank), (long long)(o->max_batch * p->max_seq));
}

static void print_report(const tp_model_config *m, const tp_plan_options *o, const tp_plan *p)
{
    json_t *r = json_object();
    json_object_set_new(r, "fits", json_boolean(p->fits));
    json_object_set_new(r, "model_type", json_string(m->model_type));
    json_object_set_new(r, "dtype", json_string(tp_weight_dtype_name(o->dtype)));
    json_object_set_new(r, "flash_attention", json_boolean(o->flash_attention));
    const struct {
        const char *key;
        uint64_t value;
    } ints[] = {
        {"tensor_parallel_size", (uint64_t)o->tensor_parallel},
        {"parameters", (uint64_t)p->parameters},
        {"device_memory_bytes", o->device_memory},
        {"max_batch", (uint64_t)o->max_batch},
        {"max_seq", (uint64_t)p->max_seq},
        {"heads_per_rank", (uint64_t)p->heads_per_rank},
        {"kv_heads_per_rank", (uint64_t)p->kv_heads_per_rank},
        {"weight_bytes_per_rank", p->weight_bytes_per_rank},
        {"activation_bytes_per_rank", p->activation_bytes_per_rank},
        {"reserve_bytes", p->reserve_bytes},
        {"kv_bytes_per_token_per_rank", p->kv_bytes_per_token},
        {"kv_cache_bytes_per_rank", p->kv_cache_bytes_per_rank},
        {"max_tokens_in_kv_cache", p->max_tokens_in_kv_cache},
        {"required_bytes_per_rank", p->required_bytes_per_rank},
    };
    for (size_t i = 0; i < sizeof ints / sizeof ints[0]; i++)
        json_object_set_new(r, ints[i].key, json_integer((json_int_t)ints[i].value));
    char *text = json_dumps(r, JSON_COMPACT | JSON_PRESERVE_ORDER);
    printf("%s\n", text);
    free(text);
    json_decref(r);
}

bool tp_plan_cli_requested(int argc, char **argv)
{
    for (int i = 1; i < argc; i++)
        if (strcmp(argv[i], "--plan") == 0)
            return true;
    return false;
}

int tp_plan_cli_main(int argc, char **argv)
{
    plan_args a;
    int code = parse_args(argc, argv, &a);
    if (code >= 0)
        return code;
    rt_error err = {0};
    tp_model_config cfg;
    tp_plan plan;
    if (tp_model_config_load(a.config, &cfg, &err) != RT_OK ||
        tp_plan_compute(&cfg, &a.opts, &plan, &err) != RT_OK)
        return fail(1, "%s", err.text);
    print_summary(&cfg, &a.opts, &plan);
    if (a.report)
        print_report(&cfg, &a.opts, &plan);
    return 0;
}
