/* SPDX-License-Identifier: MIT */
/* Test XMPP clients (see xclient.h). */
#include "xclient.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>

#include "xmpp_compat.h"

#define SHARES_NS "https://xmpp.kwoh.de/protocol/shares"
#define CAPS_NODE "https://bitween.test/client"
#define MAX_FROM  16
#define MAX_PINGS 64

struct xclient {
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    char *jid;
    int connected, failed, ignore_pings;
    char caps_ver[64];
    struct {
        char *from;
        char *text;
        unsigned count;
        unsigned events; /* distinct broadcasts (message ids) */
        char last_msg_id[64];
    } items[MAX_FROM];
    /* one outstanding IQ */
    char wait_id[64];
    xmpp_stanza_t *reply;
    /* every other IQ reply */
    xclient_reply_fn on_reply;
    void *on_reply_arg;
    /* ids of the pings received, the last MAX_PINGS */
    char ping_ids[MAX_PINGS][128];
    unsigned pings;
};

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void xclient_pump(xmpp_ctx_t *ctx, int ms)
{
    long long end = now_ms() + ms;
    do
        xmpp_run_once(ctx, 5);
    while (now_ms() < end);
}

static const char *features[] = {"http://jabber.org/protocol/caps",
                                 "http://jabber.org/protocol/disco#info", "urn:xmpp:ping",
                                 SHARES_NS "+notify"}; /* sorted */

/* XEP-0115 verification string and its SHA-1, base64. */
static void caps_compute(xclient_t *cl)
{
    char s[512];
    unsigned char digest[20];
    char *b64;
    size_t i;
    snprintf(s, sizeof s, "client/bot//bitween-test<");
    for (i = 0; i < sizeof features / sizeof *features; i++) {
        strncat(s, features[i], sizeof s - strlen(s) - 1);
        strncat(s, "<", sizeof s - strlen(s) - 1);
    }
    xmpp_sha1_digest((const unsigned char *)s, strlen(s), digest);
    b64 = xmpp_base64_encode(cl->ctx, digest, sizeof digest);
    snprintf(cl->caps_ver, sizeof cl->caps_ver, "%s", b64 ? b64 : "");
    if (b64)
        xmpp_free(cl->ctx, b64);
}

static xmpp_stanza_t *tag(xmpp_ctx_t *ctx, const char *name, const char *ns)
{
    xmpp_stanza_t *st = xmpp_stanza_new(ctx);
    xmpp_stanza_set_name(st, name);
    if (ns)
        xmpp_stanza_set_ns(st, ns);
    return st;
}

static int iq_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    xclient_t *cl = arg;
    const char *type = xmpp_stanza_get_type(st);
    const char *id = xmpp_stanza_get_id(st);
    xmpp_stanza_t *child = xmpp_stanza_get_children(st), *reply;
    const char *ns = child ? xmpp_stanza_get_ns(child) : NULL;

    if (!type)
        return 1;
    if ((strcmp(type, "result") == 0 || strcmp(type, "error") == 0) && id &&
        strcmp(id, cl->wait_id) == 0 && !cl->reply) {
        cl->reply = xmpp_stanza_clone(st);
        return 1;
    }
    if ((strcmp(type, "result") == 0 || strcmp(type, "error") == 0) && cl->on_reply) {
        cl->on_reply(cl, st, cl->on_reply_arg);
        return 1;
    }
    if (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
        return 1;
    if (ns && strcmp(ns, "urn:xmpp:ping") == 0) {
        snprintf(cl->ping_ids[cl->pings % MAX_PINGS], sizeof cl->ping_ids[0], "%s", id ? id : "");
        cl->pings++;
        if (cl->ignore_pings)
            return 1;
        reply = xmpp_stanza_reply(st);
        xmpp_stanza_set_type(reply, "result");
        xmpp_send(conn, reply);
        xmpp_stanza_release(reply);
        return 1;
    }
    reply = xmpp_stanza_reply(st);
    if (ns && strcmp(ns, "http://jabber.org/protocol/disco#info") == 0) {
        xmpp_stanza_t *q = tag(cl->ctx, "query", ns), *ident = tag(cl->ctx, "identity", NULL);
        const char *node = xmpp_stanza_get_attribute(child, "node");
        size_t i;
        if (node)
            xmpp_stanza_set_attribute(q, "node", node);
        xmpp_stanza_set_attribute(ident, "category", "client");
        xmpp_stanza_set_attribute(ident, "type", "bot");
        xmpp_stanza_set_attribute(ident, "name", "bitween-test");
        xmpp_stanza_add_child_ex(q, ident, 0);
        for (i = 0; i < sizeof features / sizeof *features; i++) {
            xmpp_stanza_t *f = tag(cl->ctx, "feature", NULL);
            xmpp_stanza_set_attribute(f, "var", features[i]);
            xmpp_stanza_add_child_ex(q, f, 0);
        }
        xmpp_stanza_set_type(reply, "result");
        xmpp_stanza_add_child_ex(reply, q, 0);
    } else {
        {
            xmpp_stanza_t *e = tag(cl->ctx, "error", NULL),
                          *cond = tag(cl->ctx, "service-unavailable",
                                      "urn:ietf:params:xml:ns:xmpp-stanzas");
            xmpp_stanza_set_type(reply, "error");
            xmpp_stanza_set_attribute(e, "type", "cancel");
            xmpp_stanza_add_child_ex(e, cond, 0);
            xmpp_stanza_add_child_ex(reply, e, 0);
        }
    }
    xmpp_send(conn, reply);
    xmpp_stanza_release(reply);
    return 1;
}

static void record_item(xclient_t *cl, const char *from, const char *msg_id, xmpp_stanza_t *shares)
{
    char *text = NULL, *bare = xmpp_jid_bare(cl->ctx, from);
    size_t len = 0, i, slot = MAX_FROM;
    if (!bare)
        return;
    if (xmpp_stanza_to_text(shares, &text, &len) != XMPP_EOK) {
        xmpp_free(cl->ctx, bare);
        return;
    }
    for (i = 0; i < MAX_FROM; i++) {
        if (cl->items[i].from && strcmp(cl->items[i].from, bare) == 0) {
            slot = i;
            break;
        }
        if (!cl->items[i].from && slot == MAX_FROM)
            slot = i;
    }
    if (slot < MAX_FROM) {
        if (!cl->items[slot].from)
            cl->items[slot].from = strdup(bare);
        free(cl->items[slot].text);
        cl->items[slot].text = strdup(text);
        cl->items[slot].count++;
        /* Copies of one broadcast (to the bare and to the full JID) share
         * the message id and arrive back to back. */
        if (!msg_id || !*msg_id || strcmp(msg_id, cl->items[slot].last_msg_id) != 0)
            cl->items[slot].events++;
        snprintf(cl->items[slot].last_msg_id, sizeof cl->items[slot].last_msg_id, "%s",
                 msg_id ? msg_id : "");
    }
    xmpp_free(cl->ctx, text);
    xmpp_free(cl->ctx, bare);
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    xclient_t *cl = arg;
    const char *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *event, *items, *item, *shares;
    (void)conn;
    event = xmpp_stanza_get_child_by_name_and_ns(st, "event",
                                                 "http://jabber.org/protocol/pubsub#event");
    if (!from || !event)
        return 1;
    items = xmpp_stanza_get_child_by_name(event, "items");
    if (!items || !xmpp_stanza_get_attribute(items, "node") ||
        strcmp(xmpp_stanza_get_attribute(items, "node"), SHARES_NS) != 0)
        return 1;
    for (item = xmpp_stanza_get_children(items); item; item = xmpp_stanza_get_next(item)) {
        if (!xmpp_stanza_is_tag(item) || strcmp(xmpp_stanza_get_name(item), "item") != 0)
            continue;
        shares = xmpp_stanza_get_child_by_name_and_ns(item, "user_shares", SHARES_NS);
        if (shares)
            record_item(cl, from, xmpp_stanza_get_id(st), shares);
    }
    return 1;
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *arg)
{
    xclient_t *cl = arg;
    (void)conn;
    (void)error;
    (void)stream_error;
    if (status == XMPP_CONN_CONNECT) {
        cl->connected = 1;
    } else {
        cl->connected = 0;
        cl->failed = 1;
    }
}

xclient_t *xclient_login(xmpp_ctx_t *ctx, const char *full_jid, const char *password,
                         unsigned short port, int timeout_ms)
{
    xclient_t *cl = calloc(1, sizeof *cl);
    long long end = now_ms() + timeout_ms;
    if (!cl)
        return NULL;
    cl->ctx = ctx;
    cl->jid = strdup(full_jid);
    cl->conn = xmpp_conn_new(ctx);
    caps_compute(cl);
    xmpp_conn_set_jid(cl->conn, full_jid);
    xmpp_conn_set_pass(cl->conn, password);
    xmpp_conn_set_flags(cl->conn, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_compat_watch_socket(cl->conn);
    xmpp_handler_add(cl->conn, iq_handler, NULL, "iq", NULL, cl);
    xmpp_handler_add(cl->conn, message_handler, NULL, "message", NULL, cl);
    if (xmpp_connect_client(cl->conn, "127.0.0.1", port, conn_handler, cl) != XMPP_EOK) {
        xclient_free(cl);
        return NULL;
    }
    while (!cl->connected && !cl->failed && now_ms() < end)
        xmpp_run_once(ctx, 5);
    if (!cl->connected) {
        fprintf(stderr, "xclient: login of %s failed\n", full_jid);
        xclient_free(cl);
        return NULL;
    }
    return cl;
}

void xclient_free(xclient_t *cl)
{
    size_t i;
    long long end;
    if (!cl)
        return;
    if (cl->connected) {
        xmpp_disconnect(cl->conn);
        end = now_ms() + 2000;
        while (!xmpp_conn_is_disconnected(cl->conn) && now_ms() < end)
            xmpp_run_once(cl->ctx, 5);
    }
    xmpp_compat_unwatch_socket(cl->conn);
    xmpp_conn_release(cl->conn);
    for (i = 0; i < MAX_FROM; i++) {
        free(cl->items[i].from);
        free(cl->items[i].text);
    }
    if (cl->reply)
        xmpp_stanza_release(cl->reply);
    free(cl->jid);
    free(cl);
}

void xclient_kill(xclient_t *cl)
{
    int fd = xmpp_compat_socket(cl->conn);
    long long end = now_ms() + 2000;
    if (fd >= 0)
        shutdown(fd, SHUT_RDWR);
    while (!xmpp_conn_is_disconnected(cl->conn) && now_ms() < end)
        xmpp_run_once(cl->ctx, 5);
    cl->connected = 0;
}

int xclient_connected(const xclient_t *cl)
{
    return cl->connected;
}

const char *xclient_jid(const xclient_t *cl)
{
    return cl->jid;
}

void xclient_ignore_pings(xclient_t *cl, int ignore)
{
    cl->ignore_pings = ignore;
}

void xclient_presence(xclient_t *cl, const char *to, int notify)
{
    xmpp_stanza_t *p = xmpp_presence_new(cl->ctx);
    if (to)
        xmpp_stanza_set_to(p, to);
    if (notify) {
        xmpp_stanza_t *c = tag(cl->ctx, "c", "http://jabber.org/protocol/caps");
        xmpp_stanza_set_attribute(c, "hash", "sha-1");
        xmpp_stanza_set_attribute(c, "node", CAPS_NODE);
        xmpp_stanza_set_attribute(c, "ver", cl->caps_ver);
        xmpp_stanza_add_child_ex(p, c, 0);
    }
    xmpp_send(cl->conn, p);
    xmpp_stanza_release(p);
}

int xclient_send_xml(xclient_t *cl, const char *xml)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(cl->ctx, xml);
    if (!st)
        return -1;
    xmpp_send(cl->conn, st);
    xmpp_stanza_release(st);
    return 0;
}

void xclient_send_raw(xclient_t *cl, const char *data, size_t len)
{
    xmpp_send_raw(cl->conn, data, len);
}

xmpp_stanza_t *xclient_iq(xclient_t *cl, const char *xml, int timeout_ms)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(cl->ctx, xml), *reply;
    long long end = now_ms() + timeout_ms;
    const char *id;
    if (!st)
        return NULL;
    id = xmpp_stanza_get_id(st);
    snprintf(cl->wait_id, sizeof cl->wait_id, "%s", id ? id : "");
    if (cl->reply)
        xmpp_stanza_release(cl->reply);
    cl->reply = NULL;
    xmpp_send(cl->conn, st);
    xmpp_stanza_release(st);
    while (!cl->reply && now_ms() < end)
        xmpp_run_once(cl->ctx, 5);
    reply = cl->reply;
    cl->reply = NULL;
    cl->wait_id[0] = '\0';
    return reply;
}

static int slot_of(const xclient_t *cl, const char *from_bare)
{
    int i;
    for (i = 0; i < MAX_FROM; i++)
        if (cl->items[i].from && strcmp(cl->items[i].from, from_bare) == 0)
            return i;
    return -1;
}

unsigned xclient_items(const xclient_t *cl, const char *from_bare)
{
    int i = slot_of(cl, from_bare);
    return i < 0 ? 0 : cl->items[i].count;
}

unsigned xclient_item_events(const xclient_t *cl, const char *from_bare)
{
    int i = slot_of(cl, from_bare);
    return i < 0 ? 0 : cl->items[i].events;
}

void xclient_on_reply(xclient_t *cl, xclient_reply_fn fn, void *arg)
{
    cl->on_reply = fn;
    cl->on_reply_arg = arg;
}

const char *xclient_last_item(const xclient_t *cl, const char *from_bare)
{
    int i = slot_of(cl, from_bare);
    return i < 0 ? NULL : cl->items[i].text;
}

static int matches(const char *text, const char *const *must, const char *const *must_not)
{
    if (!text)
        return 0;
    for (; must && *must; must++)
        if (!strstr(text, *must))
            return 0;
    for (; must_not && *must_not; must_not++)
        if (strstr(text, *must_not))
            return 0;
    return 1;
}

int xclient_wait_item(xclient_t *cl, const char *from_bare, const char *const *must,
                      const char *const *must_not, int timeout_ms)
{
    long long end = now_ms() + timeout_ms;
    for (;;) {
        if (matches(xclient_last_item(cl, from_bare), must, must_not))
            return 1;
        if (now_ms() >= end)
            return 0;
        xmpp_run_once(cl->ctx, 5);
    }
}

unsigned xclient_pings(const xclient_t *cl)
{
    return cl->pings;
}

const char *xclient_ping_id(const xclient_t *cl, unsigned i)
{
    if (i >= cl->pings || cl->pings - i > MAX_PINGS)
        return NULL;
    return cl->ping_ids[i % MAX_PINGS];
}
