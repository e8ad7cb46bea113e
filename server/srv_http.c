/* srv_http.c: libmicrohttpd plumbing: listeners, body accumulation with the size limit,
 * suspend/resume around asynchronous work, responses, and in-flight accounting. One epoll
 * event-loop thread (or --http-thread-count of them) serves every connection; none of
 * them ever waits on inference. */
#include <arpa/inet.h>
#include <errno.h>
#include <microhttpd.h>
#include <netinet/in.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "srv_buf.h"
#include "srv_codec.h"
#include "srv_log.h"
#include "srv_server.h"

typedef struct listener {
    srv_server *srv;
    bool metrics_only;
    int open;                    /* atomic: connections open now */
    long long last_refusal_log;  /* atomic: monotonic seconds of the last refusal warning; 0: none */
} listener;

/* Connections beyond --max-connections, up to this many more, are answered 503 (so the
 * client learns why) with a 1 s timeout; past that they are closed at accept. MHD's own
 * limit sits above both so that it never stops accepting (it would leave connections
 * waiting unanswered in the kernel's backlog). */
#define OVER_LIMIT_GRACE 32
static char over_limit_mark;     /* socket context of a connection answered 503 */

static listener http_listener, metrics_listener;

typedef enum { CONN_RECEIVING, CONN_WAITING, CONN_DONE } conn_state;

typedef struct conn_ctx {
    srv_call call;
    conn_state state;
    srv_buf body;
    bool too_large;
} conn_ctx;

void srv_server_begin(srv_server *s)
{
    pthread_mutex_lock(&s->mu);
    s->in_flight++;
    pthread_mutex_unlock(&s->mu);
}

void srv_server_end(srv_server *s)
{
    pthread_mutex_lock(&s->mu);
    if (--s->in_flight == 0)
        pthread_cond_broadcast(&s->idle);
    pthread_mutex_unlock(&s->mu);
}

int srv_server_wait_idle(srv_server *s, long timeout_ms)
{
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (timeout_ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&s->mu);
    while (s->in_flight > 0 && pthread_cond_timedwait(&s->idle, &s->mu, &until) != ETIMEDOUT)
        ;
    int left = s->in_flight;
    pthread_mutex_unlock(&s->mu);
    return left;
}

static void call_suspend(srv_call *c)
{
    c->suspended = true;
    MHD_suspend_connection(c->conn);
}

static void call_resume(srv_call *c)
{
    conn_ctx *ctx = (conn_ctx *)c;
    __atomic_store_n(&ctx->state, CONN_DONE, __ATOMIC_RELEASE);
    MHD_resume_connection(c->conn);
}

static enum MHD_Result send_response(struct MHD_Connection *conn, srv_response *r, bool close)
{
    struct MHD_Response *resp = MHD_create_response_from_buffer(
        r->len, r->body ? r->body : (void *)"", r->body ? MHD_RESPMEM_MUST_FREE : MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    r->body = NULL; /* MHD frees it now */
    if (r->content_type)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, r->content_type);
    if (r->header_len) {
        char buf[32];
        snprintf(buf, sizeof buf, "%zu", r->header_len);
        MHD_add_response_header(resp, "Inference-Header-Content-Length", buf);
    }
    if (close)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_CONNECTION, "close");
    enum MHD_Result ret = MHD_queue_response(conn, (unsigned)r->status, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Error responses that end the connection: those sent before the body was read. */
static enum MHD_Result send_error(struct MHD_Connection *conn, int status, const char *msg)
{
    srv_response r = {.status = status, .body = srv_error_json(msg),
                      .content_type = "application/json"};
    r.len = r.body ? strlen(r.body) : 0;
    return send_response(conn, &r, status == 413 || status == 503);
}

/* At most one warning per 10 s: a flood of connections must not flood the log. */
static void log_refusal(listener *l, int open)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    long long now = (long long)ts.tv_sec, last = __atomic_load_n(&l->last_refusal_log, __ATOMIC_RELAXED);
    if ((!last || now - last >= 10) &&
        __atomic_compare_exchange_n(&l->last_refusal_log, &last, now, false, __ATOMIC_RELAXED,
                                    __ATOMIC_RELAXED))
        SRV_WARN("refusing connections: %d open, --max-connections is %lld", open,
                 (long long)l->srv->cfg->max_connections);
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    listener *l = cls;
    if (code != MHD_CONNECTION_NOTIFY_STARTED) {
        __atomic_sub_fetch(&l->open, 1, __ATOMIC_RELAXED);
        return;
    }
    int open = __atomic_add_fetch(&l->open, 1, __ATOMIC_RELAXED);
    if (open > l->srv->cfg->max_connections) {
        *socket_context = &over_limit_mark;
        MHD_set_connection_option(conn, MHD_CONNECTION_OPTION_TIMEOUT, 1u);
        log_refusal(l, open);
    }
}

static enum MHD_Result accept_policy(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    listener *l = cls;
    int open = __atomic_load_n(&l->open, __ATOMIC_RELAXED);
    if (open < l->srv->cfg->max_connections + OVER_LIMIT_GRACE)
        return MHD_YES;
    log_refusal(l, open);
    return MHD_NO;
}

static bool over_limit(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci =
        MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci && ci->socket_context == &over_limit_mark;
}

static enum MHD_Result handler(void *cls, struct MHD_Connection *conn, const char *url,
                               const char *method, const char *version, const char *upload_data,
                               size_t *upload_data_size, void **con_cls)
{
    (void)version;
    listener *l = cls;
    conn_ctx *ctx = *con_cls;
    long long max = l->srv->cfg->max_request_bytes, max_conn = l->srv->cfg->max_connections;
    if (!ctx) {
        if (!(ctx = calloc(1, sizeof *ctx)))
            return MHD_NO;
        *con_cls = ctx;
        ctx->call.srv = l->srv;
        ctx->call.metrics_only = l->metrics_only;
        ctx->call.conn = conn;
        ctx->call.suspend = call_suspend;
        ctx->call.resume = call_resume;
        if (over_limit(conn)) {
            char msg[128];
            snprintf(msg, sizeof msg, "too many connections: the server allows %lld (--max-connections)",
                     max_conn);
            ctx->state = CONN_DONE;
            return send_error(conn, 503, msg);
        }
        const char *cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        long long declared = cl ? strtoll(cl, NULL, 10) : 0;
        if (declared > max) {
            char msg[160];
            snprintf(msg, sizeof msg, "request body of %lld bytes exceeds the limit of %lld bytes (--max-request-bytes)",
                     declared, max);
            ctx->state = CONN_DONE;
            return send_error(conn, 413, msg);
        }
        return MHD_YES;
    }
    if (ctx->state == CONN_RECEIVING && *upload_data_size) {
        if (!ctx->too_large && ctx->body.len + *upload_data_size > (size_t)max)
            ctx->too_large = true; /* keep reading (and dropping) to answer 413 at the end */
        if (!ctx->too_large)
            srv_buf_append(&ctx->body, upload_data, *upload_data_size);
        *upload_data_size = 0;
        return MHD_YES;
    }
    if (ctx->state == CONN_RECEIVING) {
        if (ctx->too_large) {
            char msg[128];
            snprintf(msg, sizeof msg, "request body exceeds the limit of %lld bytes (--max-request-bytes)", max);
            ctx->state = CONN_DONE;
            return send_error(conn, 413, msg);
        }
        if (ctx->body.failed) {
            ctx->state = CONN_DONE;
            return send_error(conn, 500, "out of memory reading the request body");
        }
        const char *hl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND,
                                                     "Inference-Header-Content-Length");
        srv_call *c = &ctx->call;
        c->method = method;
        c->url = url;
        c->body = ctx->body.data ? ctx->body.data : "";
        c->body_len = ctx->body.len;
        c->header_len = -1;
        if (hl) {
            char *end;
            errno = 0;
            c->header_len = strtoll(hl, &end, 10);
            if (errno || end == hl || *end || c->header_len < 0) {
                ctx->state = CONN_DONE;
                return send_error(conn, 400, "Inference-Header-Content-Length is not a non-negative integer");
            }
        }
        ctx->state = CONN_WAITING;
        srv_api_handle(c);
        if (c->suspended)
            return MHD_YES;
        ctx->state = CONN_DONE;
        return send_response(conn, &c->resp, false);
    }
    if (__atomic_load_n(&ctx->state, __ATOMIC_ACQUIRE) == CONN_DONE && ctx->call.suspended) {
        ctx->call.suspended = false;
        return send_response(conn, &ctx->call.resp, false);
    }
    return MHD_YES;
}

static void completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                      enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)toe;
    conn_ctx *ctx = *con_cls;
    if (!ctx)
        return;
    srv_api_call_cleanup(&ctx->call);
    srv_buf_free(&ctx->body);
    free(ctx);
    *con_cls = NULL;
}

/* Path segments are percent-decoded by the router, so that an encoded '/' stays inside
 * its segment (and a model name containing it can be refused). */
static size_t keep_escaped(void *cls, struct MHD_Connection *c, char *s)
{
    (void)cls;
    (void)c;
    return strlen(s);
}

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    (void)cls;
    char msg[512];
    vsnprintf(msg, sizeof msg, fmt, ap);
    SRV_VERBOSE("http: %s", msg);
}

static struct MHD_Daemon *start_daemon(srv_server *s, listener *l, int port)
{
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    if (inet_pton(AF_INET, s->cfg->http_address, &addr.sin_addr) != 1) {
        SRV_ERROR("--http-address %s is not an IPv4 address", s->cfg->http_address);
        return NULL;
    }
    unsigned flags = MHD_USE_EPOLL_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* a thread pool splits MHD's limit between its threads */
    unsigned mhd_limit = (unsigned)((s->cfg->max_connections + OVER_LIMIT_GRACE + 1) *
                                    s->cfg->http_thread_count);
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, (uint16_t)port, accept_policy, l, handler, l,
        MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&addr,
        MHD_OPTION_CONNECTION_LIMIT, mhd_limit,
        MHD_OPTION_CONNECTION_TIMEOUT, (unsigned)s->cfg->http_idle_timeout_secs,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)s->cfg->http_buffer_bytes,
        MHD_OPTION_NOTIFY_COMPLETED, completed, NULL,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, l,
        MHD_OPTION_UNESCAPE_CALLBACK, keep_escaped, NULL,
        MHD_OPTION_EXTERNAL_LOGGER, mhd_log, NULL,
        MHD_OPTION_LISTENING_ADDRESS_REUSE, 1u,
        /* a pool of one is no pool: MHD wants the option absent then */
        s->cfg->http_thread_count > 1 ? MHD_OPTION_THREAD_POOL_SIZE : MHD_OPTION_END,
        (unsigned)s->cfg->http_thread_count, MHD_OPTION_END);
    if (!d)
        SRV_ERROR("cannot listen on %s:%d (%s)", s->cfg->http_address, port, strerror(errno));
    return d;
}

bool srv_http_start(srv_server *s)
{
    http_listener = (listener){.srv = s, .metrics_only = false};
    metrics_listener = (listener){.srv = s, .metrics_only = true};
    if (!(s->http = start_daemon(s, &http_listener, (int)s->cfg->http_port)))
        return false;
    SRV_INFO("listening on http://%s:%lld", s->cfg->http_address, (long long)s->cfg->http_port);
    if (s->cfg->metrics_port) {
        if (!(s->metrics = start_daemon(s, &metrics_listener, (int)s->cfg->metrics_port))) {
            srv_http_stop(s);
            return false;
        }
        SRV_INFO("metrics on http://%s:%lld/metrics", s->cfg->http_address,
                 (long long)s->cfg->metrics_port);
    }
    return true;
}

void srv_http_stop(srv_server *s)
{
    if (s->http)
        MHD_stop_daemon(s->http);
    if (s->metrics)
        MHD_stop_daemon(s->metrics);
    s->http = s->metrics = NULL;
}
