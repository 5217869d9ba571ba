/* SPDX-License-Identifier: MIT */
/*
 * The agent's context, shared by agent.c and the RPC methods
 * (rpc_methods.c); nothing else sees it.
 */
#ifndef BITWEEN_AGENT_AGENT_PRIVATE_H
#define BITWEEN_AGENT_AGENT_PRIVATE_H

#include <stdint.h>

#include <strophe.h>

#include "addresses.h"
#include "agent.h"
#include "announce.h"
#include "btshim.h"
#include "contacts.h"
#include "downloads.h"
#include "library.h"
#include "registration.h"
#include "loop.h"
#include "rpc.h"
#include "rpc_http.h"

#define AGENT_MAX_WAITERS                                                                          \
    32 /* bt.add_path calls waiting for their job: well under                                      \
        * the API's connections, which stay free for others */
#define AGENT_TOKEN_BYTES 32

#define AGENT_MAX_IQS 16 /* our requests waiting for a reply */

#define AGENT_MAX_SOURCES         256 /* contact devices considered per download */
#define AGENT_SOURCES_PER_CONTACT 16  /* addresses tried per contact and download */

/* What a request of ours was. */
enum {
    AGENT_IQ_REGISTER = 1, /* REGISTER, ADD, REMOVE: replies go to registration.c */
    AGENT_IQ_ADD,
    AGENT_IQ_REMOVE,
    AGENT_IQ_UNREGISTER,
    AGENT_IQ_DISCO,
    AGENT_IQ_ROSTER,
    AGENT_IQ_SIC,
    AGENT_IQ_REG_UNREGISTER, /* the registration's, after a stored seq of 2^63-1 */
};

enum { AGENT_XMPP_OFFLINE, AGENT_XMPP_CONNECTING, AGENT_XMPP_ONLINE };

struct agent;

/* A request of ours: its reply counts only with this id and from `to`. */
typedef struct agent_iq {
    int used;
    int kind;
    char id[33]; /* 128 random bits */
    char to[3072];
    loop_timer_t timer;
    struct agent *a;
} agent_iq_t;

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
    int lock_fd; /* <state_dir>/lock, held while running */
    library_t *lib;
    downloads_t *dl;
    loop_timer_t dl_timer; /* downloads_tick() */
    rpc_t *rpc;
    rpc_http_t *http;
    char token[2 * AGENT_TOKEN_BYTES + 1]; /* the RPC token in use */
    char *rpc_file;                        /* <state_dir>/rpc.json */
    char rpc_url[128];
    agent_waiter_t waiters[AGENT_MAX_WAITERS];
    size_t n_waiters;
    int stopping;
    long long download_rate_limit, upload_rate_limit; /* bytes/s, as in force */

    /* XMPP (xmpp.c) */
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    int xfd, xfd_ready;
    int xmpp_state;
    char xmpp_error[300];
    unsigned reconnect_attempt, rng;
    loop_timer_t reconnect_timer;
    loop_timer_t stable_timer;
    agent_iq_t iqs[AGENT_MAX_IQS];
    addresses_t addrs;
    contacts_t *contacts;

    /* registration with the component (registration.h) */
    registration_t *reg;
    loop_timer_t reg_retry;
    int unregistered;
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

/* xmpp.c */
/** Create the XMPP client and start connecting. 0, -1 when out of memory. */
int agent_xmpp_start(agent_t *a);
/** Let libstrophe read and write; after every turn of the loop. */
void agent_xmpp_iterate(agent_t *a);
/** Unregister (waiting a few seconds for the answer) and disconnect. */
void agent_xmpp_stop(agent_t *a);
void agent_xmpp_free(agent_t *a);
/** The shares or addresses changed: announce again. */
void agent_xmpp_shares_changed(agent_t *a);
const char *agent_xmpp_state_name(const agent_t *a);
/** "announced", "announcing", "not announced: over the server's quota", ... */
const char *agent_announce_state(const agent_t *a, const char *hash);

/** The agent's JSON-RPC dispatcher (borrowed). */
rpc_t *agent_rpc(agent_t *a);

/**
 * The addresses of the contact resources whose items list `hash`: up to
 * `max` into `out`, round robin over the devices and at most
 * AGENT_SOURCES_PER_CONTACT per contact; returns how many (IP literals a
 * contact may be given: loopback only when allowed).
 */
size_t agent_sources(agent_t *a, const char *hash, dl_endpoint_t *out, size_t max);

/** Take and handle every pending event of the BitTorrent session. */
void agent_drain_events(agent_t *a);

#endif /* BITWEEN_AGENT_AGENT_PRIVATE_H */
