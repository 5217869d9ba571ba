/* SPDX-License-Identifier: MIT */
/*
 * bitween-agent's context: one per process, built from settings, run by
 * agent_run() until a stop flag is set. It owns the event loop, the
 * BitTorrent session (btshim.h), the user's shares (library.h) and the
 * local JSON-RPC server (rpc_http.h). Single-threaded: every call comes
 * from the thread running the loop.
 */
#ifndef BITWEEN_AGENT_AGENT_H
#define BITWEEN_AGENT_AGENT_H

#include <signal.h>
#include <stddef.h>

#include "log.h"

typedef enum { AGENT_TLS_REQUIRED, AGENT_TLS_OPTIONAL, AGENT_TLS_DISABLED } agent_tls_t;

typedef struct agent_settings {
    const char *jid;       /* the user's bare JID */
    const char *password;  /* secret */
    const char *resource;  /* this device's resource */
    const char *xmpp_host; /* NULL: the JID's domain (DNS SRV) */
    unsigned xmpp_port;    /* 0: the default */
    agent_tls_t tls;
    const char *ca_file;       /* NULL: the system's trust store */
    const char *component_jid; /* bitween-component's JID */
    int priority;              /* presence priority, negative */
    const char *state_dir;     /* torrents, resume data, RPC file */
    const char *listen_interfaces;
    const char *external_address; /* NULL: none */
    int announce_private;         /* RFC 1918, ULA and link-local addresses too */
    int allow_loopback;           /* 127.0.0.0/8 and ::1 too (tests) */
    int port_mapping;             /* UPnP and NAT-PMP */
    long long download_rate_limit, upload_rate_limit; /* bytes/s, 0: unlimited */
    unsigned hashing_jobs;
    const char *download_dir;   /* each download gets a new folder inside */
    const char *download_roots; /* comma-separated; NULL: none */
    int share_downloads;        /* announce finished downloads */
    unsigned metadata_timeout_s;
    size_t max_downloads;
    const char *rpc_address;
    unsigned rpc_port;             /* 0: any free port */
    const char *rpc_token;         /* NULL: generated into the state directory's RPC file */
    const char *rpc_allowed_hosts; /* comma-separated Host header names */
    unsigned reconnect_min_ms, reconnect_max_ms, iq_timeout_ms;
    size_t max_contacts, max_contact_resources, max_contact_shares, max_contact_item_bytes;
} agent_settings_t;

/** Strings derived from the configuration that the settings point into. */
typedef struct agent_strings {
    char component_jid[1024];
    char state_dir[4096];
    char resource[1024];
    char download_dir[4096];
} agent_strings_t;

typedef struct agent agent_t;

/**
 * New agent: creates the state directory (mode 0700), opens the
 * BitTorrent session, loads the shares kept there and starts the RPC
 * server. `s` and `log` are borrowed and must outlive the agent. NULL on
 * failure, logged.
 */
agent_t *agent_new(const agent_settings_t *s, log_t *log) __attribute__((warn_unused_result));

/**
 * Run until `*stop` becomes non-zero; when `*reload` becomes non-zero,
 * reset it and call `on_reload(arg)` (NULL: none). On the way out save
 * every share's resume data. Returns 0, -1 on a fatal error (logged).
 */
int agent_run(agent_t *a, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
              void (*on_reload)(void *), void *arg);

/** Change the rate limits (bytes/s, 0: unlimited), as bt.set_rates does. */
int agent_set_rates(agent_t *a, long long download, long long upload);

/** Free; NULL is a no-op. */
void agent_free(agent_t *a);

#endif /* BITWEEN_AGENT_AGENT_H */
