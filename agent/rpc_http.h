/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC API over HTTP: libmicrohttpd driven by the agent's event
 * loop (its epoll descriptor and timeout; no thread of its own), so that
 * methods run on the loop's thread and a call that waits (a hashing job)
 * suspends its connection instead of blocking anything.
 *
 * POST /rpc with `Authorization: Bearer <token>`. Refused before anything
 * runs: a Host header not in the allow-list (421, against DNS rebinding),
 * an Origin that is not the API's own (403), a missing or wrong token
 * (401), a body over the limit (413), another path (404) or method (405).
 */
#ifndef BITWEEN_AGENT_RPC_HTTP_H
#define BITWEEN_AGENT_RPC_HTTP_H

#include <stddef.h>

#include "log.h"
#include "loop.h"
#include "rpc.h"

typedef struct rpc_http rpc_http_t;

typedef struct rpc_http_settings {
    const char *address;       /* IPv4 or IPv6 literal */
    unsigned port;             /* 0: any free port */
    const char *token;         /* required, borrowed */
    const char *allowed_hosts; /* comma-separated host names (no port) */
    size_t max_body;           /* bytes; 0: 1 MiB */
    unsigned max_connections;  /* 0: 256 */
} rpc_http_settings_t;

/**
 * Listen and serve on `loop`. `s`, `rpc` and `log` are borrowed and must
 * outlive the server. NULL on failure with a message in `err`.
 */
rpc_http_t *rpc_http_new(loop_t *loop, rpc_t *rpc, const rpc_http_settings_t *s, log_t *log,
                         char *err, size_t err_len) __attribute__((warn_unused_result));

/** The TCP port listened on. */
unsigned rpc_http_port(const rpc_http_t *h);

/** Stop serving; NULL is a no-op. */
void rpc_http_free(rpc_http_t *h);

#endif /* BITWEEN_AGENT_RPC_HTTP_H */
