/* SPDX-License-Identifier: MIT */
/*
 * Work-arounds for libstrophe behaviour that affects XEP-0114 component
 * connections. libstrophe (0.12.2 and later) dereferences a connection's
 * stream-management state on every send, but only xmpp_connect_client()
 * allocates that state: the first send on a connection opened with
 * xmpp_connect_component() would crash. xmpp_compat_component_prepare()
 * gives such a connection a stream-management state through the public API.
 * libstrophe also keeps its socket private; xmpp_compat_watch_socket()
 * reports it so that the caller's event loop can poll it.
 */
#ifndef BITWEEN_COMMON_XMPP_COMPAT_H
#define BITWEEN_COMMON_XMPP_COMPAT_H

#include <strophe.h>

/**
 * Attach a fresh stream-management state to `conn`, which must be
 * disconnected and not yet prepared. Call once after xmpp_conn_new() and
 * before the first xmpp_connect_component(); the state stays with the
 * connection across reconnects and is freed by xmpp_conn_release().
 * Opens no connection that reaches a server: a throwaway client connection
 * to the discard port on loopback is closed at once. Runs the context's event
 * loop for up to two seconds while that closes, so call it before other
 * connections of the same context are active.
 *
 * Returns XMPP_EOK, XMPP_EMEM on allocation failure or XMPP_EINVOP when
 * `conn` is not disconnected or already has a state.
 */
int xmpp_compat_component_prepare(xmpp_conn_t *conn);

/* Connections whose sockets can be watched at once. */
#define XMPP_COMPAT_MAX_SOCKETS 16

/**
 * Let an event loop of our own poll `conn`'s socket: installs a sockopt
 * callback that records the descriptor of every connection attempt and
 * turns on TCP keepalive and TCP_NODELAY. libstrophe's sockopt callback carries no user
 * pointer, so descriptors are kept in a small table keyed by connection,
 * shared by the process and protected by a mutex.
 * Returns 0, or -1 when XMPP_COMPAT_MAX_SOCKETS connections are watched.
 */
int xmpp_compat_watch_socket(xmpp_conn_t *conn);

/**
 * Descriptor of `conn`'s latest connection attempt, or -1. Only meaningful
 * while the connection is connecting or connected; libstrophe closes it on
 * disconnect.
 */
int xmpp_compat_socket(const xmpp_conn_t *conn);

/** Stop tracking `conn`; call before xmpp_conn_release(). */
void xmpp_compat_unwatch_socket(const xmpp_conn_t *conn);

/**
 * `st` without const: libstrophe's getters take non-const stanzas but do
 * not modify them. For read-only use only.
 */
static inline xmpp_stanza_t *xmpp_compat_mutable(const xmpp_stanza_t *st)
{
    union {
        const xmpp_stanza_t *c;
        xmpp_stanza_t *m;
    } u;

    u.c = st;
    return u.m;
}

#endif /* BITWEEN_COMMON_XMPP_COMPAT_H */
