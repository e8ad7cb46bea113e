/* cfg_options.c: the option table and everything derived from it (CLI and config-file
 * parsing, defaults, validation, --help, the effective-config dump). */
#include "cfg_options.h"

#include <errno.h>
#include <jansson.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

typedef enum { CFG_T_STR, CFG_T_INT, CFG_T_ENUM, CFG_T_LIST, CFG_T_FLAG } cfg_type;

typedef struct cfg_option {
    const char *name;
    cfg_type type;
    size_t offset;
    const char *def;       /* default as text; NULL = unset */
    int64_t min, max;      /* CFG_T_INT range */
    const char *choices;   /* CFG_T_ENUM: '|'-separated, index = stored value */
    const char *metavar;
    const char *help;
} cfg_option;

#define OFF(f) offsetof(cfg_server, f)
static const cfg_option options[] = {
    {"model-repository", CFG_T_STR, OFF(model_repository), NULL, 0, 0, NULL, "DIR",
     "model repository: DIR/<model>/config.json and DIR/<model>/<version>/model.onnx (required)"},
    {"http-address", CFG_T_STR, OFF(http_address), "127.0.0.1", 0, 0, NULL, "ADDR",
     "IPv4 address the HTTP server binds"},
    {"http-port", CFG_T_INT, OFF(http_port), "8000", 1, 65535, NULL, "N", "HTTP port"},
    {"metrics-port", CFG_T_INT, OFF(metrics_port), "0", 0, 65535, NULL, "N",
     "also serve /metrics on this port (0: only on the HTTP port)"},
    {"metrics-naming", CFG_T_ENUM, OFF(metrics_naming), "triton", 0, 0, "triton|prometheus",
     "NAMES", "metric names on /metrics: Triton's (what its dashboards read) or "
     "Prometheus-conformant ones (pass promtool's lint)"},
    {"http-thread-count", CFG_T_INT, OFF(http_thread_count), "1", 1, 64, NULL, "N",
     "HTTP event-loop (epoll) threads; inference never runs on them"},
    {"max-connections", CFG_T_INT, OFF(max_connections), "1024", 1, 65536, NULL, "N",
     "concurrent HTTP connections; more get 503 and are closed"},
    {"http-idle-timeout-secs", CFG_T_INT, OFF(http_idle_timeout_secs), "60", 1, 86400, NULL,
     "S", "close a connection idle for this long (not counting requests being served)"},
    {"http-buffer-bytes", CFG_T_INT, OFF(http_buffer_bytes), "8192", 4096, 16777216, NULL, "N",
     "memory per HTTP connection for request headers and body chunks (libmicrohttpd clears it "
     "on every request, so a smaller one is faster); headers that do not fit get 431"},
    {"max-request-bytes", CFG_T_INT, OFF(max_request_bytes), "67108864", 1024, INT64_C(1) << 40,
     NULL, "N", "largest request body; larger gets 413"},
    {"exit-timeout-secs", CFG_T_INT, OFF(exit_timeout_secs), "30", 0, 86400, NULL, "S",
     "on SIGTERM/SIGINT, how long queued and running requests may take to finish"},
    {"repository-poll-secs", CFG_T_INT, OFF(repository_poll_secs), "15", 1, 86400, NULL, "S",
     "interval of repository re-reads in poll mode"},
    {"cpu-threads", CFG_T_INT, OFF(cpu_threads), "0", 0, 1024, NULL, "N",
     "CPU threads per model instance (0: all cores)"},
    {"model-control-mode", CFG_T_ENUM, OFF(control_mode), "none", 0, 0, "none|poll|explicit",
     "MODE", "none: load all at start; poll: also re-read periodically; explicit: load on request"},
    {"load-model", CFG_T_LIST, OFF(load_models), NULL, 0, 0, NULL, "NAME",
     "in explicit mode, load this model at start (repeatable)"},
    {"log-level", CFG_T_ENUM, OFF(log_level), "info", 0, 0, "error|warn|info|verbose", "LEVEL",
     "least severe level logged"},
    {"log-format", CFG_T_ENUM, OFF(log_format), "text", 0, 0, "text|json", "FMT",
     "log line format on stderr"},
    {"backend", CFG_T_ENUM, OFF(backend), "auto", 0, 0, "auto|cpu|cuda", "KIND",
     "runtime backend (auto: cuda when compiled in, a device is visible and it has the "
     "model's ops, else the CPU)"},
    {"config", CFG_T_STR, 0, NULL, 0, 0, NULL, "FILE",
     "JSON file of options (keys are the option names); command-line flags override it"},
    {"help", CFG_T_FLAG, OFF(help), NULL, 0, 0, NULL, NULL, "print this help and exit"},
    {"version", CFG_T_FLAG, OFF(version), NULL, 0, 0, NULL, NULL,
     "print version and build information and exit"},
};
#define N_OPTIONS (sizeof options / sizeof options[0])

static const cfg_option *find_option(const char *name, size_t len)
{
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (strlen(options[i].name) == len && strncmp(options[i].name, name, len) == 0)
            return &options[i];
    return NULL;
}

static bool is_config_option(const cfg_option *o)
{
    return strcmp(o->name, "config") == 0;
}

/* Index of value in a '|'-separated list, or -1. */
static int choice_index(const char *choices, const char *value)
{
    size_t len = strlen(value);
    int idx = 0;
    for (const char *p = choices;; idx++) {
        const char *bar = strchr(p, '|');
        size_t n = bar ? (size_t)(bar - p) : strlen(p);
        if (n == len && strncmp(p, value, n) == 0)
            return idx;
        if (!bar)
            return -1;
        p = bar + 1;
    }
}

static const char *choice_name(const char *choices, int idx, char *buf, size_t size)
{
    const char *p = choices;
    for (int i = 0; i < idx && p; i++) {
        p = strchr(p, '|');
        p = p ? p + 1 : NULL;
    }
    if (!p)
        return "?";
    size_t n = strcspn(p, "|");
    snprintf(buf, size, "%.*s", (int)n, p);
    return buf;
}

static bool set_option(cfg_server *c, const cfg_option *o, const char *value, char *err)
{
    char *base = (char *)c;
    switch (o->type) {
    case CFG_T_STR: {
        char **slot = (char **)(base + o->offset);
        char *copy = strdup(value);
        if (!copy) {
            snprintf(err, CFG_ERR_MAX, "out of memory");
            return false;
        }
        free(*slot);
        *slot = copy;
        return true;
    }
    case CFG_T_INT: {
        char *end;
        errno = 0;
        long long v = strtoll(value, &end, 10);
        if (errno || end == value || *end || v < o->min || v > o->max) {
            snprintf(err, CFG_ERR_MAX, "--%s: '%s' is not an integer in [%lld, %lld]", o->name,
                     value, (long long)o->min, (long long)o->max);
            return false;
        }
        *(int64_t *)(base + o->offset) = v;
        return true;
    }
    case CFG_T_ENUM: {
        int idx = choice_index(o->choices, value);
        if (idx < 0) {
            snprintf(err, CFG_ERR_MAX, "--%s: '%s' is not one of %s", o->name, value, o->choices);
            return false;
        }
        *(int *)(base + o->offset) = idx;
        return true;
    }
    case CFG_T_LIST:
        if (c->n_load_models >= CFG_MAX_LOAD_MODELS) {
            snprintf(err, CFG_ERR_MAX, "--%s: at most %d", o->name, CFG_MAX_LOAD_MODELS);
            return false;
        }
        if (!(c->load_models[c->n_load_models] = strdup(value))) {
            snprintf(err, CFG_ERR_MAX, "out of memory");
            return false;
        }
        c->n_load_models++;
        return true;
    case CFG_T_FLAG:
        if (strcmp(value, "true") && strcmp(value, "false")) {
            snprintf(err, CFG_ERR_MAX, "--%s: '%s' is not true or false", o->name, value);
            return false;
        }
        *(bool *)(base + o->offset) = value[0] == 't';
        return true;
    }
    return false;
}

void cfg_server_init(cfg_server *c)
{
    char err[CFG_ERR_MAX];
    memset(c, 0, sizeof *c);
    for (size_t i = 0; i < N_OPTIONS; i++)
        if (options[i].def)
            set_option(c, &options[i], options[i].def, err);
}

void cfg_server_free(cfg_server *c)
{
    if (!c)
        return;
    free(c->model_repository);
    free(c->http_address);
    for (int i = 0; i < c->n_load_models; i++)
        free(c->load_models[i]);
    memset(c, 0, sizeof *c);
}

bool cfg_server_set(cfg_server *c, const char *name, const char *value, char err[CFG_ERR_MAX])
{
    const cfg_option *o = find_option(name, strlen(name));
    if (!o || is_config_option(o)) {
        snprintf(err, CFG_ERR_MAX, "unknown option '%s'", name);
        return false;
    }
    return set_option(c, o, value, err);
}

/* Applies one JSON value of the config file: scalars as text, arrays element by element. */
static bool apply_json_value(cfg_server *c, const char *key, json_t *v, char *err)
{
    char buf[64];
    if (json_is_array(v) && find_option(key, strlen(key)) &&
        find_option(key, strlen(key))->type == CFG_T_LIST) {
        size_t i;
        json_t *e;
        json_array_foreach(v, i, e) {
            if (!apply_json_value(c, key, e, err))
                return false;
        }
        return true;
    }
    if (json_is_string(v))
        return cfg_server_set(c, key, json_string_value(v), err);
    if (json_is_integer(v)) {
        snprintf(buf, sizeof buf, "%lld", (long long)json_integer_value(v));
        return cfg_server_set(c, key, buf, err);
    }
    if (json_is_boolean(v))
        return cfg_server_set(c, key, json_is_true(v) ? "true" : "false", err);
    snprintf(err, CFG_ERR_MAX, "config file: '%s' has a value of the wrong type", key);
    return false;
}

static bool apply_config_file(cfg_server *c, const char *path, char *err)
{
    json_error_t jerr;
    json_t *root = json_load_file(path, 0, &jerr);
    if (!root) {
        snprintf(err, CFG_ERR_MAX, "config file %s: line %d: %s", path, jerr.line, jerr.text);
        return false;
    }
    bool ok = json_is_object(root);
    if (!ok)
        snprintf(err, CFG_ERR_MAX, "config file %s: not a JSON object", path);
    const char *key;
    json_t *v;
    json_object_foreach(root, key, v) {
        if (!ok)
            break;
        ok = apply_json_value(c, key, v, err);
    }
    json_decref(root);
    return ok;
}

/* Splits "--name=value" / "--name value"; returns the option or NULL (err set). */
static const cfg_option *next_arg(int argc, char **argv, int *i, const char **value, char *err)
{
    const char *arg = argv[*i];
    if (strncmp(arg, "--", 2) != 0) {
        snprintf(err, CFG_ERR_MAX, "unexpected argument '%s'", arg);
        return NULL;
    }
    const char *name = arg + 2, *eq = strchr(name, '=');
    const cfg_option *o = find_option(name, eq ? (size_t)(eq - name) : strlen(name));
    if (!o) {
        snprintf(err, CFG_ERR_MAX, "unknown option '%s' (see --help)", arg);
        return NULL;
    }
    if (o->type == CFG_T_FLAG) {
        *value = eq ? eq + 1 : "true";
    } else if (eq) {
        *value = eq + 1;
    } else if (*i + 1 < argc) {
        *value = argv[++*i];
    } else {
        snprintf(err, CFG_ERR_MAX, "option --%s needs a value", o->name);
        return NULL;
    }
    return o;
}

bool cfg_server_parse_args(cfg_server *c, int argc, char **argv, char err[CFG_ERR_MAX])
{
    /* the config file first, so that flags given on the command line win */
    for (int i = 1; i < argc; i++) {
        const char *value;
        const cfg_option *o = next_arg(argc, argv, &i, &value, err);
        if (!o)
            return false;
        if (is_config_option(o) && !apply_config_file(c, value, err))
            return false;
    }
    for (int i = 1; i < argc; i++) {
        const char *value;
        const cfg_option *o = next_arg(argc, argv, &i, &value, err);
        if (!is_config_option(o) && !set_option(c, o, value, err))
            return false;
    }
    return c->help || c->version || cfg_server_validate(c, err);
}

bool cfg_server_validate(const cfg_server *c, char err[CFG_ERR_MAX])
{
    if (!c->model_repository || !c->model_repository[0]) {
        snprintf(err, CFG_ERR_MAX, "--model-repository is required");
        return false;
    }
    if (c->metrics_port && c->metrics_port == c->http_port) {
        snprintf(err, CFG_ERR_MAX, "--metrics-port must differ from --http-port");
        return false;
    }
    if (c->n_load_models && c->control_mode != CFG_CONTROL_EXPLICIT) {
        snprintf(err, CFG_ERR_MAX, "--load-model needs --model-control-mode explicit");
        return false;
    }
    for (int i = 0; i < c->n_load_models; i++)
        if (!c->load_models[i][0] || strchr(c->load_models[i], '/') ||
            strstr(c->load_models[i], "..")) {
            snprintf(err, CFG_ERR_MAX, "--load-model: invalid model name '%s'",
                     c->load_models[i]);
            return false;
        }
    return true;
}

void cfg_print_help(FILE *f, const char *program)
{
    fprintf(f, "Usage: %s --model-repository DIR [options]\n\n"
               "infd serves ONNX models over the KServe v2 HTTP protocol.\n\nOptions:\n",
            program);
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const cfg_option *o = &options[i];
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", o->name, o->metavar ? " " : "",
                 o->metavar ? o->metavar : "");
        fprintf(f, "  %-32s %s", left, o->help);
        if (o->type == CFG_T_ENUM)
            fprintf(f, " [%s]", o->choices);
        if (o->def)
            fprintf(f, " (default: %s)", o->def);
        fputc('\n', f);
    }
}

void cfg_print_effective(FILE *f, const cfg_server *c)
{
    const char *base = (const char *)c;
    char buf[32];
    for (size_t i = 0; i < N_OPTIONS; i++) {
        const cfg_option *o = &options[i];
        switch (o->type) {
        case CFG_T_STR:
            if (!is_config_option(o)) {
                const char *s = *(char *const *)(base + o->offset);
                fprintf(f, "%s = %s\n", o->name, s ? s : "");
            }
            break;
        case CFG_T_INT:
            fprintf(f, "%s = %lld\n", o->name, (long long)*(const int64_t *)(base + o->offset));
            break;
        case CFG_T_ENUM:
            fprintf(f, "%s = %s\n", o->name,
                    choice_name(o->choices, *(const int *)(base + o->offset), buf, sizeof buf));
            break;
        case CFG_T_LIST:
            for (int k = 0; k < c->n_load_models; k++)
                fprintf(f, "%s = %s\n", o->name, c->load_models[k]);
            break;
        case CFG_T_FLAG:
            break;
        }
    }
}
