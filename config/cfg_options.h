/* cfg_options.h: the daemon's settings. One table (cfg_options.c) drives command-line
 * parsing, the optional JSON config file, defaults, validation, --help and the dump of the
 * effective configuration, so a new setting is one row there plus one field here. */
#ifndef CFG_OPTIONS_H
#define CFG_OPTIONS_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

typedef enum { CFG_CONTROL_NONE = 0, CFG_CONTROL_POLL, CFG_CONTROL_EXPLICIT } cfg_control_mode;
typedef enum { CFG_LOG_ERROR = 0, CFG_LOG_WARN, CFG_LOG_INFO, CFG_LOG_VERBOSE } cfg_log_level;
typedef enum { CFG_LOG_TEXT = 0, CFG_LOG_JSON } cfg_log_format;
/* Same order as srv_metrics_naming so the server can cast. */
typedef enum { CFG_METRICS_TRITON = 0, CFG_METRICS_PROMETHEUS } cfg_metrics_naming;
/* Same order as rt_backend_kind so the server can cast. */
typedef enum { CFG_BACKEND_AUTO = 0, CFG_BACKEND_CPU, CFG_BACKEND_CUDA } cfg_backend;

#define CFG_MAX_LOAD_MODELS 64
#define CFG_ERR_MAX 256

typedef struct cfg_server {
    char *model_repository;        /* owned */
    char *http_address;            /* owned */
    int64_t http_port;
    int64_t metrics_port;          /* 0: /metrics only on the HTTP port */
    int64_t http_thread_count;     /* libmicrohttpd epoll threads */
    int64_t max_connections;
    int64_t http_idle_timeout_secs;
    int64_t http_buffer_bytes;     /* libmicrohttpd's memory pool per connection */
    int64_t max_request_bytes;
    int64_t exit_timeout_secs;
    int64_t repository_poll_secs;
    int64_t cpu_threads;           /* runtime threads per model instance; 0 = all cores */
    int control_mode;              /* cfg_control_mode */
    int log_level;                 /* cfg_log_level */
    int log_format;                /* cfg_log_format */
    int backend;                   /* cfg_backend */
    int metrics_naming;            /* cfg_metrics_naming */
    int n_load_models;
    char *load_models[CFG_MAX_LOAD_MODELS]; /* owned */
    bool help, version;
} cfg_server;

/* Fills every field with its default (strings are new copies). */
void cfg_server_init(cfg_server *c);
/* Frees the owned strings; NULL-safe. */
void cfg_server_free(cfg_server *c);

/* Applies a JSON config file (keys are option names without "--") and then argv (CLI wins),
 * then validates. Returns false and writes a one-line reason into err on any problem. */
bool cfg_server_parse_args(cfg_server *c, int argc, char **argv, char err[CFG_ERR_MAX]);
/* Sets one option from text, by name without "--". */
bool cfg_server_set(cfg_server *c, const char *name, const char *value, char err[CFG_ERR_MAX]);
/* Checks cross-field rules (required repository, ports, ...). */
bool cfg_server_validate(const cfg_server *c, char err[CFG_ERR_MAX]);

void cfg_print_help(FILE *f, const char *program);
/* One "name = value" line per option. */
void cfg_print_effective(FILE *f, const cfg_server *c);

#endif
