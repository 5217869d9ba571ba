/* SPDX-License-Identifier: MIT */
/*
 * The admin REST API of bitween-component, served by libmicrohttpd in its
 * own threads inside the component process: health and readiness probes,
 * Prometheus metrics, and under /api/v1/ (bearer token) the registry's
 * users, resources, shares, search and statistics, plus two commands that
 * the component's XMPP thread executes (evict a resource, republish a
 * user). The API has its own database connections (one per HTTP worker
 * thread and one for the background refresh) and never calls libstrophe:
 * commands go through component_evict() / component_republish().
 * The routes are described in api/openapi.yaml and in docs/admin-api.md.
 */
#ifndef BITWEEN_API_API_H
#define BITWEEN_API_API_H

#include <stddef.h>

#include "component.h"
#include "log.h"

/** What the API needs; strings are copied by api_new(). */
typedef struct api_settings {
    const char *address;              /* IPv4 or IPv6 literal to bind; default "127.0.0.1";
                                         "::" takes IPv6 and IPv4 (one dual-stack socket) */
    unsigned port;                    /* TCP port; 0 picks a free one (see api_port()) */
    const char *token;                /* bearer token; NULL or "": /api/v1 answers 401, and
                                         only a loopback address is accepted */
    unsigned threads;                 /* HTTP worker threads (1..64); default 2 */
    const char *database_url;         /* libpq URL; required */
    unsigned db_connect_timeout_s;    /* default 5 */
    unsigned db_statement_timeout_ms; /* default 10000 */
    unsigned command_timeout_ms;      /* wait for evict/republish before 504; default 10000 */
    size_t max_body_bytes;            /* larger request bodies get 413; default 65536 */
    unsigned stats_ttl_s;             /* registry counts refreshed this often; default 10 */
    unsigned max_connections;         /* open connections in all (>= threads); default 128 */
    unsigned max_per_client;          /* from one IP address; default 16 */
    unsigned idle_timeout_s;          /* a connection idle this long is closed; default 10 */
} api_settings_t;

/** Fill `s` with the defaults above (no database URL, no token). */
void api_settings_default(api_settings_t *s);

/**
 * Check settings without starting anything (for --check-config): an
 * address that is not an IPv4 or IPv6 literal, a port over 65535, threads
 * out of 1..64, a missing database URL, zero timeouts, connection limits
 * out of order (per client above the total, the total below the threads)
 * and an address other than loopback without a token are refused.
 * Returns 0, or -1 with a message in `msg` (`len` bytes, NUL-terminated)
 * that names the option to change.
 */
int api_settings_check(const api_settings_t *s, char *msg, size_t len);

typedef struct api api_t;

/**
 * Start the API: bind `s->address`:`s->port` and start the worker threads
 * and the background refresh thread. `comp` (may be NULL: readiness then
 * fails and commands answer 503) and `log` are borrowed and must outlive
 * the API; api_free() must run before component_free(). Logs
 * "listening on ADDR:PORT" at info (subsystem "api"). Returns NULL with
 * the reason logged (bad settings, address in use, out of memory).
 */
api_t *api_new(const api_settings_t *s, component_t *comp, log_t *log)
    __attribute__((warn_unused_result));

/**
 * Stop: refuse new connections, answer requests waiting for a command with
 * 503, stop the threads and close the database connections. A command
 * still running in the component completes later without touching the
 * freed API. NULL is a no-op.
 */
void api_free(api_t *api);

/** The bound TCP port (the chosen one when the configured port was 0). */
int api_port(const api_t *api);

/* ---- the route table (read-only; for the spec test and the docs) ------- */

/* Route flags. */
#define API_ROUTE_AUTH 0x1u /* needs the bearer token */

struct api_req;

/** One route: an HTTP method and a path template ("/api/v1/users/{jid}"). */
typedef struct api_route {
    const char *method;
    const char *pattern;
    void (*handler)(struct api_req *req);
    unsigned flags;
} api_route_t;

/** The static route table: `*out` points at it; returns its length. */
size_t api_routes(const api_route_t **out);

#endif /* BITWEEN_API_API_H */
