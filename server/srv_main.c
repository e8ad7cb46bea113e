/* srv_main.c: the infd daemon's entry point and process lifecycle: options, model loading,
 * the HTTP listeners, signals (SIGTERM/SIGINT drain, SIGHUP repository re-read), the poll
 * timer, and systemd notification (READY, STOPPING, WATCHDOG) when NOTIFY_SOCKET is set. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <systemd/sd-daemon.h>
#include <time.h>

#include "cfg_options.h"
#include "rt_build_info.h"
#include "srv_json_arena.h"
#include "srv_log.h"
#include "srv_server.h"

static void notify(const char *state)
{
    if (getenv("NOTIFY_SOCKET"))
        sd_notify(0, state);
}

static void load_initial(srv_server *s, const cfg_server *cfg)
{
    if (cfg->control_mode != CFG_CONTROL_EXPLICIT) {
        srv_repo_poll(s->repo, true);
        return;
    }
    for (int i = 0; i < cfg->n_load_models; i++)
        srv_repo_load(s->repo, cfg->load_models[i], NULL);
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Waits for signals, re-reads the repository on SIGHUP and in poll mode, pings the
 * watchdog; returns on SIGTERM or SIGINT. */
static void serve(srv_server *s, const cfg_server *cfg, const sigset_t *set)
{
    uint64_t watchdog_usec = 0;
    uint64_t watchdog_ms = sd_watchdog_enabled(0, &watchdog_usec) > 0 ? watchdog_usec / 2000u : 0;
    uint64_t poll_ms = cfg->control_mode == CFG_CONTROL_POLL ? (uint64_t)cfg->repository_poll_secs * 1000u : 0;
    uint64_t next_poll = now_ms() + poll_ms, next_ping = now_ms();
    for (;;) {
        uint64_t now = now_ms(), wake = now + 60000u;
        if (watchdog_ms && now >= next_ping) {
            notify("WATCHDOG=1");
            next_ping = now + watchdog_ms;
        }
        if (poll_ms && now >= next_poll) {
            srv_repo_poll(s->repo, true);
            next_poll = now_ms() + poll_ms;
        }
        if (watchdog_ms && next_ping < wake)
            wake = next_ping;
        if (poll_ms && next_poll < wake)
            wake = next_poll;
        uint64_t wait = wake > now ? wake - now : 0;
        struct timespec ts = {.tv_sec = (time_t)(wait / 1000u), .tv_nsec = (long)(wait % 1000u) * 1000000L};
        int sig = sigtimedwait(set, NULL, &ts);
        if (sig == SIGTERM || sig == SIGINT) {
            SRV_INFO("received %s: draining", sig == SIGTERM ? "SIGTERM" : "SIGINT");
            return;
        }
        if (sig == SIGHUP) {
            SRV_INFO("received SIGHUP: re-reading the model repository");
            srv_repo_poll(s->repo, cfg->control_mode != CFG_CONTROL_EXPLICIT);
        }
    }
}

/* Readiness off, refuse new inference, let accepted requests finish for up to
 * --exit-timeout-secs, then fail what is still queued. Returns requests left running. */
static int drain(srv_server *s, const cfg_server *cfg)
{
    __atomic_store_n(&s->draining, 1, __ATOMIC_RELAXED);
    notify("STOPPING=1");
    int left = srv_server_wait_idle(s, (long)cfg->exit_timeout_secs * 1000);
    if (left == 0)
        return 0;
    SRV_WARN("exit timeout: %d request(s) still in flight; failing the queued ones", left);
    srv_repo_cancel_queued(s->repo, "server is shutting down (exit timeout reached)");
    return srv_server_wait_idle(s, 2000);
}

int main(int argc, char **argv)
{
    srv_json_arena_install(); /* before any other jansson call, as jansson asks */
    cfg_server cfg;
    char err[CFG_ERR_MAX];
    cfg_server_init(&cfg);
    if (!cfg_server_parse_args(&cfg, argc, argv, err)) {
        fprintf(stderr, "infd: %s\n", err);
        cfg_server_free(&cfg);
        return 2;
    }
    if (cfg.help || cfg.version) {
        if (cfg.help)
            cfg_print_help(stdout, "infd");
        else
            rt_build_info_print(stdout, "infd");
        cfg_server_free(&cfg);
        return 0;
    }
    srv_log_setup((cfg_log_level)cfg.log_level, (cfg_log_format)cfg.log_format);
    /* signals are taken synchronously by this thread; every thread started later inherits
     * the mask */
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGTERM);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGHUP);
    pthread_sigmask(SIG_BLOCK, &set, NULL);
    signal(SIGPIPE, SIG_IGN);

    SRV_INFO("infd %s starting: repository %s, control mode %s", INFD_VERSION,
             cfg.model_repository,
             cfg.control_mode == CFG_CONTROL_EXPLICIT ? "explicit"
             : cfg.control_mode == CFG_CONTROL_POLL   ? "poll"
                                                      : "none");
    srv_server s = {.cfg = &cfg};
    pthread_mutex_init(&s.mu, NULL);
    pthread_cond_init(&s.idle, NULL);
    srv_repo_options ro = {.dir = cfg.model_repository, .backend = (rt_backend_kind)cfg.backend,
                           .cpu_threads = (int)cfg.cpu_threads};
    if (!(s.repo = srv_repo_create(&ro))) {
        SRV_ERROR("out of memory");
        return 1;
    }
    if (!srv_http_start(&s)) {
        srv_repo_free(s.repo);
        cfg_server_free(&cfg);
        return 1;
    }
    load_initial(&s, &cfg);
    __atomic_store_n(&s.ready, true, __ATOMIC_RELEASE);
    SRV_INFO("ready");
    notify("READY=1");
    serve(&s, &cfg, &set);
    int left = drain(&s, &cfg);
    if (left > 0) {
        /* a batch still runs past the deadline: exit without tearing down under it */
        SRV_WARN("exiting with %d request(s) unfinished", left);
        return 0;
    }
    srv_http_stop(&s);
    srv_repo_free(s.repo);
    SRV_INFO("stopped");
    cfg_server_free(&cfg);
    return 0;
}
