/* srv_server.h: the running daemon's shared state and its HTTP front end.
 *
 * srv_http.c owns the libmicrohttpd daemons (one epoll event loop, connections suspended
 * while their inference runs); srv_api.c routes each complete HTTP request to the KServe
 * v2 handlers. The split keeps MHD's plumbing apart from the protocol. */
#ifndef SRV_SERVER_H
#define SRV_SERVER_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>

#include "cfg_options.h"
#include "srv_repo.h"
#include "srv_request.h"

typedef struct srv_server {
    const cfg_server *cfg;
    srv_repo *repo;
    struct MHD_Daemon *http, *metrics;
    bool ready;                  /* initial models loaded; written once before serving */
    int draining;                /* atomic: SIGTERM received, new inference refused */
    pthread_mutex_t mu;
    pthread_cond_t idle;         /* signalled when in_flight drops */
    int in_flight;               /* accepted calls waiting on async work or their response */
} srv_server;

typedef struct srv_response {
    int status;
    char *body;                  /* malloc'd; NULL for an empty body */
    size_t len;
    const char *content_type;
    size_t header_len;           /* Inference-Header-Content-Length; 0: none */
} srv_response;

/* One HTTP request being served. The HTTP layer fills the request part; the API sets
 * resp, either before srv_api_handle returns or, after calling suspend, from another
 * thread followed by resume. */
typedef struct srv_call {
    srv_server *srv;
    bool metrics_only;           /* arrived on --metrics-port */
    const char *method;
    const char *url;
    const char *body;
    size_t body_len;
    long long header_len;        /* Inference-Header-Content-Length, -1 if absent */
    srv_response resp;
    /* async work */
    void (*suspend)(struct srv_call *c);
    void (*resume)(struct srv_call *c);
    void *conn;                  /* HTTP layer's connection */
    bool suspended, counted;
    srv_model *model;            /* reference held while an inference runs */
    srv_request *req;
    char *job_name;              /* load/unload target */
    bool job_load;
} srv_call;

/* Starts the HTTP (and metrics) listeners. Returns false with a logged reason. */
bool srv_http_start(srv_server *s);
void srv_http_stop(srv_server *s);

/* Routes and serves one complete request (srv_api.c). */
void srv_api_handle(srv_call *c);
/* Releases what a call holds (model reference, request, job); frees resp.body. */
void srv_api_call_cleanup(srv_call *c);

/* In-flight accounting for the drain on shutdown. */
void srv_server_begin(srv_server *s);
void srv_server_end(srv_server *s);
/* Waits until nothing is in flight or timeout_ms passes; returns the count left. */
int srv_server_wait_idle(srv_server *s, long timeout_ms);

#endif
