/* SPDX-License-Identifier: MIT */
/*
 * The bitween component: one XEP-0114 connection to the XMPP server, the
 * registry in PostgreSQL (through a pool of database workers) and the
 * publisher of merged items. Agents register their resource's shares with
 * it; it commits them, answers, and publishes each user's merged item into
 * the user's PEP node with XEP-0356 privileged IQs. Everything runs in one
 * thread around one event loop (loop.h); database calls run in the pool and
 * come back to the loop as completions.
 */
#ifndef BITWEEN_COMPONENT_COMPONENT_H
#define BITWEEN_COMPONENT_COMPONENT_H

#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>

#include "hist.h"
#include "log.h"
#include "shares.h"
#include "statecache.h"

/** What the component needs to run; strings are copied by component_new(). */
typedef struct component_settings {
    const char *xmpp_host; /* XMPP server's component listener */
    unsigned xmpp_port;
    const char *jid;            /* the component's JID, e.g. shares.example.org */
    const char *secret;         /* XEP-0114 shared secret */
    const char *const *domains; /* served user domains, NULL-terminated */
    const char *database_url;
    unsigned db_workers; /* database connections / threads */
    unsigned db_connect_timeout_s;
    unsigned db_statement_timeout_ms;
    shares_limits_t limits;    /* quotas (max_resources is per user) */
    unsigned reconnect_min_ms; /* XMPP reconnect backoff */
    unsigned reconnect_max_ms;
    unsigned publish_retry_max_ms;      /* backoff cap for temporary publish errors */
    unsigned iq_timeout_ms;             /* outgoing IQ (publish, ping) reply timeout */
    unsigned privilege_wait_ms;         /* how long to wait for the advertisement */
    unsigned check_rate;                /* registration re-check pings per second */
    unsigned max_pending;               /* queued database jobs before refusing requests */
    unsigned max_pending_per_user;      /* a user's requests in progress before refusing more */
    unsigned liveness_interval_s;       /* pause between two liveness sweeps */
    unsigned max_republishes_in_flight; /* catch-up publishes after a (re)connection at once */
    unsigned state_cache_mb;            /* merged states of active users kept in memory (0: none) */
    const char *name;                   /* disco#info identity name */
} component_settings_t;

/** Fill `s` with defaults (no host, JID, secret, domains or URL). */
void component_settings_default(component_settings_t *s);

/* Number of agent_errcode_t values (agent_proto.h). */
#define COMPONENT_ERR_KINDS 12

/** Counters, readable from any thread (metrics). */
typedef struct component_stats {
    atomic_ullong requests;         /* agent requests received */
    atomic_ullong requests_ok;      /* ... committed and answered */
    atomic_ullong requests_refused; /* ... answered with an error */
    atomic_ullong removals;         /* resources removed (presence, check, evict) */
    atomic_ullong publishes_ok;
    atomic_ullong publishes_failed;  /* permanent errors */
    atomic_ullong publishes_retried; /* temporary errors, retried */
    atomic_ullong publishes_skipped; /* unchanged digest */
    atomic_ullong xmpp_connects;
    atomic_ullong xmpp_disconnects;
    atomic_ullong db_unavailable; /* database calls that found it away */
    /* refused requests by agent_errcode_t (agent_proto.h), index = code */
    atomic_ullong refused_by_kind[COMPONENT_ERR_KINDS];
    atomic_ullong publish_errors_temporary; /* server errors of type wait, timeouts */
    atomic_ullong publish_errors_permanent;
    atomic_ullong pings_sent;  /* registration re-check and liveness sweep */
    atomic_ullong sweeps;      /* liveness sweeps started */
    atomic_ullong probes_sent; /* liveness probes before a request */
    atomic_ullong probes_failed;
    atomic_ullong replies_unknown;      /* IQ results/errors matching no request of ours */
    atomic_ullong replies_forged;       /* ... matching one, but not from where it went */
    atomic_ullong requests_dropped;     /* IQ requests left unanswered: id too long to echo */
    atomic_ullong presences_ignored;    /* unavailable of unknown resources, available over
                                         * the per-user cap */
    atomic_ullong removals_coalesced;   /* removals asked for while one was on its way */
    atomic_ullong requests_held;        /* gauge: requests waiting for a probe */
    atomic_ullong probes_inflight;      /* gauge */
    atomic_ullong removals_pending;     /* gauge: removals queued or waiting to retry */
    atomic_ullong republishes_queued;   /* gauge: catch-up publishes waiting for a slot */
    atomic_ullong republishes_inflight; /* gauge: catch-up publishes sent, not answered */
    hist_t request_time;                /* agent request from arrival to answer, when it reached
                                         * the database */
    hist_t database_time;               /* ... of which in the database job */
    hist_t publish_time;                /* privileged publish from sending to the server's reply */
    atomic_int xmpp_up;                 /* authenticated */
    atomic_int publish_allowed;         /* pubsub iq permission on every domain */
} component_stats_t;

typedef struct component component_t;

/**
 * New component; nothing connects before component_run(). `log` is
 * borrowed and must outlive it. Returns NULL on failure (logged).
 */
component_t *component_new(const component_settings_t *s, log_t *log)
    __attribute__((warn_unused_result));

/** Free; NULL is a no-op. */
void component_free(component_t *c);

/**
 * Apply migrations (blocking; one connection), then run until `*stop`
 * becomes non-zero (set it from a signal handler): connect to the XMPP
 * server with backoff, serve agents, publish, re-check registrations after
 * every (re)connection. On stop, finishes the database work in flight,
 * answers it, and closes the stream; registrations stay stored.
 * Returns 0 after a clean stop, -1 when start-up failed (migrations could
 * not be applied for a reason other than an unreachable database).
 */
int component_run(component_t *c, volatile sig_atomic_t *stop);

/** Called from the loop thread when `*flag` is set (SIGHUP); clears it. */
typedef void (*component_reload_fn)(void *arg);

/** Install the reload hook (flag and function borrowed). */
void component_on_reload(component_t *c, volatile sig_atomic_t *flag, component_reload_fn fn,
                         void *arg);

/* ---- administrative commands (for the admin API's threads) ------------- */

typedef enum {
    COMPONENT_CMD_OK,
    COMPONENT_CMD_NOT_FOUND,   /* no such registered resource */
    COMPONENT_CMD_UNAVAILABLE, /* database away or component stopping: retry */
    COMPONENT_CMD_FAILED       /* anything else; see message */
} component_cmd_status_t;

typedef struct component_cmd_result {
    component_cmd_status_t status;
    int published; /* 1: the new item was sent to the server now; 0: deferred
                      (not connected or no pubsub permission) or unchanged */
    char message[512];
} component_cmd_result_t;

/** Completion of a command; runs in the loop thread, exactly once. */
typedef void (*component_cmd_done_fn)(const component_cmd_result_t *res, void *arg);

/**
 * Thread-safe. Remove resource `resource` of `jid` (an eviction by an
 * operator) and republish the user, in the loop thread. `done` runs once
 * the removal is committed and the publish handed to the server (or
 * deferred). Returns 0, or -1 when out of memory or stopping (`done` is
 * then never called).
 */
int component_evict(component_t *c, const char *jid, const char *resource,
                    component_cmd_done_fn done, void *arg);

/**
 * Thread-safe. Publish `jid`'s current merged item even if unchanged.
 * `done` runs once it was handed to the server (or deferred). Same
 * returns as component_evict().
 */
int component_republish(component_t *c, const char *jid, component_cmd_done_fn done, void *arg);

/** Thread-safe: the loop was told to stop or has stopped. */
int component_stopping(const component_t *c);

/** Counters (borrowed; valid until component_free()). */
component_stats_t *component_stats(component_t *c);

/** Counts of the cache of users' merged states (state_cache_mb): a
 * consistent snapshot; callable from any thread. */
void component_cache_stats(component_t *c, statecache_stats_t *out);

/** Number of database workers (queues). */
unsigned component_db_workers(const component_t *c);

/** Jobs queued for or running in database worker `i`; any thread. */
size_t component_db_queue(const component_t *c, unsigned i);

#endif /* BITWEEN_COMPONENT_COMPONENT_H */
