/* SPDX-License-Identifier: MIT */
/*
 * The agent's context, shared by agent.c and the RPC methods
 * (rpc_methods.c); nothing else sees it.
 */
#ifndef BITWEEN_AGENT_AGENT_PRIVATE_H
#define BITWEEN_AGENT_AGENT_PRIVATE_H

#include <stdint.h>

#include "agent.h"
#include "btshim.h"
#include "library.h"
#include "loop.h"
#include "rpc.h"
#include "rpc_http.h"

#define AGENT_MAX_WAITERS 64 /* bt.add_path calls waiting for their job */
#define AGENT_TOKEN_BYTES 32

/* A bt.add_path call with wait: true, until its job ends. */
typedef struct agent_waiter {
    uint64_t share_id;
    rpc_call_t *call;
} agent_waiter_t;

struct agent {
    const agent_settings_t *s;
    log_t *log;
    loop_t *loop;
    btshim_session_t *bt;
    int own_bt;
    library_t *lib;
    rpc_t *rpc;
    rpc_http_t *http;
    char token[2 * AGENT_TOKEN_BYTES + 1]; /* the RPC token in use */
    char *rpc_file;                        /* <state_dir>/rpc.json */
    char rpc_url[128];
    agent_waiter_t waiters[AGENT_MAX_WAITERS];
    size_t n_waiters;
    int stopping;
    long long download_rate_limit, upload_rate_limit; /* bytes/s, as in force */
};

/** The method table of the JSON-RPC API (rpc_methods.c). */
extern const rpc_method_t agent_rpc_methods[];
extern const size_t agent_rpc_methods_count;

/** A share's job ended (LIBRARY_EV_HASHED): answer the calls waiting for it. */
void agent_rpc_job_ended(agent_t *a, const share_info_t *info);

/** Finish every waiting call with RPC_UNAVAILABLE (the agent stops). */
void agent_rpc_fail_waiters(agent_t *a);

/**
 * An agent without the RPC server, the state already loaded: for the unit
 * tests of the methods, on the fake backend (`bt` borrowed).
 */
agent_t *agent_new_offline(const agent_settings_t *s, log_t *log, btshim_session_t *bt)
    __attribute__((warn_unused_result));

/** The agent's JSON-RPC dispatcher (borrowed). */
rpc_t *agent_rpc(agent_t *a);

/** Take and handle every pending event of the BitTorrent session. */
void agent_drain_events(agent_t *a);

#endif /* BITWEEN_AGENT_AGENT_PRIVATE_H */
