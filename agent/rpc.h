/* SPDX-License-Identifier: MIT */
/*
 * JSON-RPC 2.0 dispatch, separate from HTTP so that the whole protocol is
 * testable in memory: rpc_exec() takes a request body (one call or a
 * batch), runs each call's method from a table, and hands the reply text to
 * a callback once every call has finished. A method finishes its call at
 * once or later (a hashing job it waits for): the call stays valid until
 * it is finished, even when the caller has gone away meanwhile.
 *
 * Errors carry a stable numeric code and, in `data.name`, a stable name;
 * see docs/rpc-spec.md.
 */
#ifndef BITWEEN_AGENT_RPC_H
#define BITWEEN_AGENT_RPC_H

#include <stddef.h>

#include <jansson.h>

/* JSON-RPC 2.0's own codes, and ours (-32000 and below). */
enum {
    RPC_PARSE_ERROR = -32700,
    RPC_INVALID_REQUEST = -32600,
    RPC_METHOD_NOT_FOUND = -32601,
    RPC_INVALID_PARAMS = -32602,
    RPC_INTERNAL_ERROR = -32603,
    RPC_NOT_FOUND = -32001,       /* no such torrent or share */
    RPC_PATH_ERROR = -32002,      /* the path cannot be shared */
    RPC_NOT_IMPLEMENTED = -32003, /* a method of a later version */
    RPC_LIMIT = -32004,           /* too many shares, jobs or waiting calls */
    RPC_FAILED = -32005,          /* the operation ran and failed (hashing) */
    RPC_UNAVAILABLE = -32006,     /* the agent is stopping */
};

#define RPC_MAX_BATCH 100 /* calls in one batch */

typedef struct rpc rpc_t;
typedef struct rpc_call rpc_call_t;
typedef struct rpc_req rpc_req_t;

/** A method's outcome: finished (a result or an error is set), or kept to
 * be finished later with rpc_call_result() / rpc_call_error(). */
typedef enum { RPC_DONE = 0, RPC_LATER = 1 } rpc_status_t;

/**
 * A method: `params` is the request's params (an object; an absent params
 * is an empty object), borrowed for the call. Returns RPC_DONE after
 * finishing `call`, or RPC_LATER having kept it.
 */
typedef rpc_status_t (*rpc_method_fn)(void *ctx, json_t *params, rpc_call_t *call);

typedef struct rpc_method {
    const char *name;
    rpc_method_fn fn;
} rpc_method_t;

/** Reply callback: `reply` is the response text (NULL when every call
 * was a notification: nothing to send), borrowed for the call. */
typedef void (*rpc_done_fn)(void *arg, const char *reply);

/** New dispatcher over `table` (borrowed, `n` entries); `ctx` goes to every
 * method. NULL when out of memory. */
rpc_t *rpc_new(const rpc_method_t *table, size_t n, void *ctx) __attribute__((warn_unused_result));

/** Free; every call a method kept must have been finished first (the
 * owner finishes them with RPC_UNAVAILABLE when it stops). NULL is a no-op. */
void rpc_free(rpc_t *rpc);

/**
 * Run the request `body` (`len` bytes). `done(arg, reply)` is called once,
 * when every call has finished: possibly before rpc_exec() returns. The
 * returned handle lets the caller give up (rpc_req_abandon()) while calls
 * are pending; it is NULL once `done` has run. Returns -1 (and calls
 * nothing) only when out of memory.
 */
int rpc_exec(rpc_t *rpc, const char *body, size_t len, rpc_done_fn done, void *arg,
             rpc_req_t **handle);

/** The caller is gone: `done` will not be called; pending calls still
 * finish (their replies are dropped). */
void rpc_req_abandon(rpc_req_t *req);

/** Finish `call` with `result` (reference stolen; NULL: JSON null). */
void rpc_call_result(rpc_call_t *call, json_t *result);

/** Finish `call` with an error: `code` as above, `name` a stable word
 * (e.g. "not_found") put in the error's data, a message in plain words. */
void rpc_call_error(rpc_call_t *call, int code, const char *name, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Whether the caller of `call` has gone away (its reply will be dropped). */
int rpc_call_abandoned(const rpc_call_t *call);

/** Calls kept by methods and not finished yet. */
size_t rpc_pending(const rpc_t *rpc);

#endif /* BITWEEN_AGENT_RPC_H */
