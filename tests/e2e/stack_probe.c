/* SPDX-License-Identifier: MIT */
/*
 * Probe of a running local stack (scripts/stack): logs a user into Prosody
 * over c2s, connects a libstrophe component with the stack's secret, checks
 * that the server's XEP-0356 advertisement grants the pubsub `iq`
 * permission (on ejabberd, BITWEEN_STACK_SERVER=ejabberd: roster get,
 * outgoing messages and roster presence, what notify mode needs), sends
 * an XEP-0199 ping over the component stream (exercising
 * the stream-management work-around), reconnects the component and pings
 * again, and connects to PostgreSQL. Settings come from the stack's
 * environment; exit status 0 means every check passed.
 *
 * usage: stack_probe USER PASSWORD
 */
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <libpq-fe.h>
#include <strophe.h>

#include "xmpp_compat.h"

#define PRIV_NS     "urn:xmpp:privilege:2"
#define PRIV_NS_1   "urn:xmpp:privilege:1"
#define PUBSUB_NS   "http://jabber.org/protocol/pubsub"
#define PING_NS     "urn:xmpp:ping"
#define DEADLINE_MS 15000

typedef struct probe {
    int connected;    /* last connection event was XMPP_CONN_CONNECT */
    int disconnected; /* a disconnect/fail event arrived */
    int privilege;    /* advertisement seen */
    int pubsub_iq;    /* ... and it grants pubsub set */
    int notify;       /* ... roster get, message outgoing, presence roster */
    int pong;         /* ping result received */
} probe_t;

static int failures;

static void fail(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void fail(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("stack_probe: FAIL: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
    failures++;
}

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "stack_probe: %s is not set (source `scripts/stack env DIR`)\n", name);
        exit(2);
    }
    return v;
}

static uint64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Run the event loop until *flag is set or the deadline passes. */
static int run_until(xmpp_ctx_t *ctx, const int *flag, const int *abort_flag)
{
    uint64_t end = now_ms() + DEADLINE_MS;
    while (!*flag && now_ms() < end) {
        if (abort_flag && *abort_flag)
            return 0;
        xmpp_run_once(ctx, 50);
    }
    return *flag;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *userdata)
{
    probe_t *p = userdata;
    (void)conn;
    (void)stream_error;
    if (status == XMPP_CONN_CONNECT || status == XMPP_CONN_RAW_CONNECT) {
        p->connected = 1;
        p->disconnected = 0;
    } else {
        if (error)
            fprintf(stderr, "stack_probe: connection closed, error %d\n", error);
        p->connected = 0;
        p->disconnected = 1;
    }
}

static int privilege_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    probe_t *p = userdata;
    xmpp_stanza_t *priv, *perm, *ns;
    int roster = 0, message = 0, presence = 0;
    (void)conn;

    priv = xmpp_stanza_get_child_by_name_and_ns(stanza, "privilege", PRIV_NS);
    if (!priv)
        priv = xmpp_stanza_get_child_by_name_and_ns(stanza, "privilege", PRIV_NS_1);
    if (!priv)
        return 1;
    p->privilege = 1;
    for (perm = xmpp_stanza_get_children(priv); perm; perm = xmpp_stanza_get_next(perm)) {
        const char *name = xmpp_stanza_get_name(perm);
        const char *access = xmpp_stanza_get_attribute(perm, "access");
        const char *ptype = xmpp_stanza_get_attribute(perm, "type");
        if (!name || strcmp(name, "perm") != 0 || !access)
            continue;
        if (ptype && strcmp(access, "roster") == 0 &&
            (strcmp(ptype, "get") == 0 || strcmp(ptype, "both") == 0))
            roster = 1;
        if (ptype && strcmp(access, "message") == 0 && strcmp(ptype, "outgoing") == 0)
            message = 1;
        if (ptype && strcmp(access, "presence") == 0 && strcmp(ptype, "roster") == 0)
            presence = 1;
        if (strcmp(access, "iq") != 0)
            continue;
        for (ns = xmpp_stanza_get_children(perm); ns; ns = xmpp_stanza_get_next(ns)) {
            const char *uri = xmpp_stanza_get_attribute(ns, "ns");
            const char *type = xmpp_stanza_get_attribute(ns, "type");
            if (uri && type && strcmp(uri, PUBSUB_NS) == 0 &&
                (strcmp(type, "set") == 0 || strcmp(type, "both") == 0))
                p->pubsub_iq = 1;
        }
    }
    p->notify = roster && message && presence;
    return 1;
}

static int pong_handler(xmpp_conn_t *conn, xmpp_stanza_t *stanza, void *userdata)
{
    probe_t *p = userdata;
    const char *type = xmpp_stanza_get_type(stanza);
    (void)conn;
    if (type && strcmp(type, "result") == 0)
        p->pong = 1;
    else
        fail("ping answered with type %s", type ? type : "(none)");
    return 0;
}

/* Send an XEP-0199 ping from `from` to `to` and wait for the result. */
static int ping(xmpp_ctx_t *ctx, xmpp_conn_t *conn, probe_t *p, const char *from, const char *to,
                const char *id)
{
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "get", id);
    xmpp_stanza_t *child = xmpp_stanza_new(ctx);
    if (!iq || !child) {
        fail("out of memory");
        xmpp_stanza_release(iq);
        xmpp_stanza_release(child);
        return 0;
    }
    xmpp_stanza_set_name(child, "ping");
    xmpp_stanza_set_ns(child, PING_NS);
    xmpp_stanza_add_child_ex(iq, child, 0);
    if (from)
        xmpp_stanza_set_from(iq, from);
    xmpp_stanza_set_to(iq, to);
    p->pong = 0;
    xmpp_id_handler_add(conn, pong_handler, id, p);
    xmpp_send(conn, iq);
    xmpp_stanza_release(iq);
    return run_until(ctx, &p->pong, &p->disconnected);
}

static void check_client(xmpp_ctx_t *ctx, const char *user, const char *password)
{
    const char *domain = env_required("BITWEEN_STACK_DOMAIN");
    unsigned short port = (unsigned short)atoi(env_required("BITWEEN_STACK_C2S_PORT"));
    char jid[512];
    probe_t p = {0};
    xmpp_conn_t *conn = xmpp_conn_new(ctx);

    snprintf(jid, sizeof jid, "%s@%s/probe", user, domain);
    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, password);
    /* The local stack serves c2s on loopback without certificates. */
    xmpp_conn_set_flags(conn, XMPP_CONN_FLAG_DISABLE_TLS);
    if (xmpp_connect_client(conn, "127.0.0.1", port, conn_handler, &p) != XMPP_EOK)
        fail("c2s connect to port %u could not start", port);
    else if (!run_until(ctx, &p.connected, &p.disconnected))
        fail("c2s login of %s failed", jid);
    else if (!ping(ctx, conn, &p, NULL, domain, "c2s-ping"))
        fail("c2s ping to %s got no result", domain);
    else
        printf("ok: c2s login of %s and ping\n", jid);
    if (p.connected) {
        xmpp_disconnect(conn);
        run_until(ctx, &p.disconnected, NULL);
    }
    xmpp_conn_release(conn);
}

static void check_component(xmpp_ctx_t *ctx)
{
    const char *host = env_required("BITWEEN_XMPP_HOST");
    unsigned short port = (unsigned short)atoi(env_required("BITWEEN_XMPP_PORT"));
    const char *jid = env_required("BITWEEN_COMPONENT_JID");
    const char *secret = env_required("BITWEEN_COMPONENT_SECRET");
    const char *domain = env_required("BITWEEN_STACK_DOMAIN");
    const char *server = getenv("BITWEEN_STACK_SERVER");
    int notify_mode = server && strcmp(server, "ejabberd") == 0;
    probe_t p = {0};
    xmpp_conn_t *conn = xmpp_conn_new(ctx);
    int round;

    xmpp_conn_set_jid(conn, jid);
    xmpp_conn_set_pass(conn, secret);
    if (xmpp_compat_component_prepare(conn) != XMPP_EOK) {
        fail("could not prepare the component connection");
        xmpp_conn_release(conn);
        return;
    }
    xmpp_handler_add(conn, privilege_handler, NULL, "message", NULL, &p);
    for (round = 1; round <= 2 && !failures; round++) {
        p.connected = p.disconnected = p.privilege = p.pubsub_iq = p.notify = 0;
        if (xmpp_connect_component(conn, host, port, conn_handler, &p) != XMPP_EOK) {
            fail("component connect to %s:%u could not start", host, port);
            break;
        }
        if (!run_until(ctx, &p.connected, &p.disconnected)) {
            fail("component handshake as %s failed (round %d)", jid, round);
            break;
        }
        if (!run_until(ctx, &p.privilege, &p.disconnected))
            fail("no XEP-0356 privilege advertisement received (round %d); is "
                 "mod_privilege enabled on the VirtualHost and the Component?",
                 round);
        else if (notify_mode && !p.notify)
            fail("privilege advertisement lacks roster get, message outgoing or presence "
                 "roster (round %d)",
                 round);
        else if (notify_mode)
            printf("ok: component %s authenticated, roster, message and presence permissions "
                   "granted (round %d)\n",
                   jid, round);
        else if (!p.pubsub_iq)
            fail("privilege advertisement lacks <perm access='iq'> with namespace " PUBSUB_NS
                 " type set/both");
        else
            printf("ok: component %s authenticated, pubsub iq permission granted (round %d)\n", jid,
                   round);
        if (!ping(ctx, conn, &p, jid, domain, round == 1 ? "component-ping-1" : "component-ping-2"))
            fail("component ping to %s got no result (round %d)", domain, round);
        else
            printf("ok: component ping (round %d)\n", round);
        xmpp_disconnect(conn);
        run_until(ctx, &p.disconnected, NULL);
    }
    xmpp_conn_release(conn);
}

static void check_postgres(void)
{
    const char *url = env_required("BITWEEN_DATABASE_URL");
    PGconn *pg = PQconnectdb(url);
    PGresult *res = NULL;

    if (PQstatus(pg) != CONNECTION_OK) {
        fail("PostgreSQL connection: %s", PQerrorMessage(pg));
        goto out;
    }
    res = PQexec(pg, "SELECT current_user, current_database(), version()");
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        fail("PostgreSQL query: %s", PQerrorMessage(pg));
        goto out;
    }
    if (strcmp(PQgetvalue(res, 0, 0), "bitween") != 0 ||
        strcmp(PQgetvalue(res, 0, 1), "bitween") != 0) {
        fail("connected as %s to %s, expected bitween/bitween", PQgetvalue(res, 0, 0),
             PQgetvalue(res, 0, 1));
        goto out;
    }
    printf("ok: PostgreSQL: %s\n", PQgetvalue(res, 0, 2));
out:
    PQclear(res);
    PQfinish(pg);
}

int main(int argc, char **argv)
{
    xmpp_ctx_t *ctx;

    if (argc != 3) {
        fprintf(stderr, "usage: %s USER PASSWORD\n", argv[0]);
        return 2;
    }
    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, getenv("STACK_PROBE_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG)
                                                         : NULL);
    if (!ctx) {
        fprintf(stderr, "stack_probe: out of memory\n");
        return 1;
    }
    check_client(ctx, argv[1], argv[2]);
    check_component(ctx);
    check_postgres();
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    if (failures)
        fprintf(stderr, "stack_probe: %d check(s) failed\n", failures);
    return failures ? 1 : 0;
}
