/* SPDX-License-Identifier: MIT */
/*
 * libstrophe component-mode work-around: borrow the stream-management state
 * that xmpp_connect_client() allocates on a throwaway connection of the same
 * context and hand it to the component connection (see xmpp_compat.h).
 */
#include "xmpp_compat.h"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <sys/socket.h>

/* Upper bound on event-loop rounds (10 ms each) spent on the throwaway. */
#define COMPAT_LOOP_ROUNDS 200

static void compat_noop_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                                xmpp_stream_error_t *stream_error, void *userdata)
{
    (void)conn;
    (void)status;
    (void)error;
    (void)stream_error;
    (void)userdata;
}

int xmpp_compat_component_prepare(xmpp_conn_t *conn)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
    xmpp_conn_t *tmp;
    xmpp_sm_state_t *sm;
    int rc;

    if (!xmpp_conn_is_disconnected(conn))
        return XMPP_EINVOP;
    tmp = xmpp_conn_new(ctx);
    if (!tmp)
        return XMPP_EMEM;
    /* The connect below allocates the state before it opens a socket; the
     * socket (to the discard port on loopback) is closed again at once. The
     * connection only reaches the disconnected state inside the event loop,
     * so run it briefly, bounded. */
    xmpp_conn_set_jid(tmp, "sm-state@localhost");
    xmpp_conn_set_flags(tmp, XMPP_CONN_FLAG_DISABLE_TLS | XMPP_CONN_FLAG_DISABLE_SM);
    rc = xmpp_connect_client(tmp, "127.0.0.1", 9, compat_noop_handler, NULL);
    if (!xmpp_conn_is_disconnected(tmp))
        xmpp_disconnect(tmp);
    for (int i = 0; i < COMPAT_LOOP_ROUNDS && !xmpp_conn_is_disconnected(tmp); i++)
        xmpp_run_once(ctx, 10);
    sm = xmpp_conn_get_sm_state(tmp);
    xmpp_conn_release(tmp);
    if (!sm)
        return rc == XMPP_EMEM ? XMPP_EMEM : XMPP_EINVOP;
    rc = xmpp_conn_set_sm_state(conn, sm);
    if (rc != XMPP_EOK)
        xmpp_free_sm_state(sm);
    return rc;
}

static struct {
    const xmpp_conn_t *conn;
    int fd;
} compat_sockets[XMPP_COMPAT_MAX_SOCKETS];
static pthread_mutex_t compat_sockets_mu = PTHREAD_MUTEX_INITIALIZER;

static int compat_sockopt(xmpp_conn_t *conn, void *sock)
{
    int i, one = 1;
    /* Stanzas are small and often sent back to back (a reply, then a
     * publish): without TCP_NODELAY the second waits for the peer's
     * delayed ACK, some 40 ms. */
    setsockopt(*(int *)sock, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    pthread_mutex_lock(&compat_sockets_mu);
    for (i = 0; i < XMPP_COMPAT_MAX_SOCKETS; i++)
        if (compat_sockets[i].conn == conn)
            compat_sockets[i].fd = *(int *)sock;
    pthread_mutex_unlock(&compat_sockets_mu);
    return xmpp_sockopt_cb_keepalive(conn, sock);
}

int xmpp_compat_watch_socket(xmpp_conn_t *conn)
{
    int i, free_slot = -1;
    pthread_mutex_lock(&compat_sockets_mu);
    for (i = 0; i < XMPP_COMPAT_MAX_SOCKETS; i++) {
        if (compat_sockets[i].conn == conn) {
            free_slot = i;
            break;
        }
        if (!compat_sockets[i].conn && free_slot < 0)
            free_slot = i;
    }
    if (free_slot >= 0) {
        compat_sockets[free_slot].conn = conn;
        compat_sockets[free_slot].fd = -1;
    }
    pthread_mutex_unlock(&compat_sockets_mu);
    if (free_slot < 0)
        return -1;
    xmpp_conn_set_sockopt_callback(conn, compat_sockopt);
    return 0;
}

int xmpp_compat_socket(const xmpp_conn_t *conn)
{
    int i, fd = -1;
    pthread_mutex_lock(&compat_sockets_mu);
    for (i = 0; i < XMPP_COMPAT_MAX_SOCKETS; i++)
        if (compat_sockets[i].conn == conn)
            fd = compat_sockets[i].fd;
    pthread_mutex_unlock(&compat_sockets_mu);
    return fd;
}

void xmpp_compat_unwatch_socket(const xmpp_conn_t *conn)
{
    int i;
    pthread_mutex_lock(&compat_sockets_mu);
    for (i = 0; i < XMPP_COMPAT_MAX_SOCKETS; i++)
        if (compat_sockets[i].conn == conn)
            compat_sockets[i].conn = NULL, compat_sockets[i].fd = -1;
    pthread_mutex_unlock(&compat_sockets_mu);
}
