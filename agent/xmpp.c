/* SPDX-License-Identifier: MIT */
/*
 * The agent's XMPP side (libstrophe client on the agent's loop): the
 * connection (TLS as configured, reconnect with backoff and jitter),
 * presence (negative priority, XEP-0115 caps with the shares +notify
 * feature), answers to disco#info and pings, the roster (which contacts'
 * items are kept), contacts' PEP notifications, XEP-0279, and the
 * registration with the component (docs/protocol.md §1): directed
 * presence and a full register after every connection, then <remove/> and
 * <add/> as shares come and go, one request at a time, `seq` growing
 * across restarts; `wait` errors retried with backoff, `conflict` and
 * `item-not-found` recovered with a full register.
 */
#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "agent_private.h"
#include "secrand.h"
#include "xmpp_compat.h"

#define NS_PING       "urn:xmpp:ping"
#define NS_DISCO      "http://jabber.org/protocol/disco#info"
#define NS_CAPS       "http://jabber.org/protocol/caps"
#define NS_ROSTER     "jabber:iq:roster"
#define NS_EVENT      "http://jabber.org/protocol/pubsub#event"
#define NS_SIC        "urn:xmpp:sic:1"
#define NS_STANZAS    "urn:ietf:params:xml:ns:xmpp-stanzas"
#define CAPS_NODE     "https://bitween.org/agent"
#define STABLE_MS     60000 /* a session this old resets the reconnection backoff */
#define IDENTITY      "client/bot//bitween agent"
#define RETRY_MIN_MS  5000
#define RETRY_MAX_MS  300000
#define MAX_CONFLICTS 5 /* in a row, before backing off */

static const char *const features[] = {
    NS_CAPS, NS_DISCO, SHARES_NOTIFY_NS, NS_PING, /* sorted: XEP-0115 §5.1 */
};

/* ---- helpers ---------------------------------------------------------------- */

/* The bare JID of `jid` into `out`. */
static void bare_of(const char *jid, char *out, size_t n)
{
    const char *slash = strchr(jid, '/');
    size_t len = slash ? (size_t)(slash - jid) : strlen(jid);
    if (len >= n)
        len = n - 1;
    memcpy(out, jid, len);
    out[len] = '\0';
}

static xmpp_stanza_t *child_ns(xmpp_stanza_t *st, const char *name, const char *ns)
{
    return xmpp_stanza_get_child_by_name_and_ns(st, name, ns);
}

static xmpp_stanza_t *new_el(xmpp_ctx_t *ctx, const char *name, const char *ns)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);
    if (el && (xmpp_stanza_set_name(el, name) != XMPP_EOK ||
               (ns && xmpp_stanza_set_ns(el, ns) != XMPP_EOK))) {
        xmpp_stanza_release(el);
        return NULL;
    }
    return el;
}

/* Add `child` (released here) to `parent`; 0 or -1. */
static int adopt(xmpp_stanza_t *parent, xmpp_stanza_t *child)
{
    int rc = child && xmpp_stanza_add_child(parent, child) == XMPP_EOK ? 0 : -1;
    if (child)
        xmpp_stanza_release(child);
    return rc;
}

static void send_release(agent_t *a, xmpp_stanza_t *st)
{
    if (st) {
        xmpp_send(a->conn, st);
        xmpp_stanza_release(st);
    }
}

/* ---- tracked requests ------------------------------------------------------------ */

static void iq_timeout_cb(loop_t *loop, void *arg);

/* Send IQ `iq` (type set or get, with its payload) to `to`, tracked as
 * `kind` with a fresh random id. Releases `iq`. Returns 0 or -1. */
static int send_tracked(agent_t *a, xmpp_stanza_t *iq, const char *to, int kind)
{
    size_t i;
    agent_iq_t *p = NULL;
    for (i = 0; i < AGENT_MAX_IQS; i++)
        if (!a->iqs[i].used) {
            p = &a->iqs[i];
            break;
        }
    if (!p || !iq) {
        if (iq)
            xmpp_stanza_release(iq);
        return -1;
    }
    memset(p, 0, sizeof *p);
    p->used = 1;
    p->kind = kind;
    p->a = a;
    if (secrand_hex(p->id, 16) != 0) { /* never a guessable id */
        p->used = 0;
        xmpp_stanza_release(iq);
        return -1;
    }
    snprintf(p->to, sizeof p->to, "%s", to);
    xmpp_stanza_set_id(iq, p->id);
    if (kind != AGENT_IQ_SIC) /* XEP-0279 asks our own server, without a 'to' */
        xmpp_stanza_set_to(iq, to);
    loop_timer_start(a->loop, &p->timer, a->s->iq_timeout_ms, iq_timeout_cb, p);
    send_release(a, iq);
    return 0;
}

static void iq_done(agent_t *a, agent_iq_t *p, xmpp_stanza_t *reply);

static void iq_timeout_cb(loop_t *loop, void *arg)
{
    agent_iq_t *p = arg;
    (void)loop;
    iq_done(p->a, p, NULL);
}

static void forget_iqs(agent_t *a)
{
    size_t i;
    for (i = 0; i < AGENT_MAX_IQS; i++)
        if (a->iqs[i].used) {
            loop_timer_stop(a->loop, &a->iqs[i].timer);
            a->iqs[i].used = 0;
        }
}

static xmpp_stanza_t *iq_new(agent_t *a, const char *type, xmpp_stanza_t *payload)
{
    xmpp_stanza_t *iq = xmpp_iq_new(a->ctx, type, NULL);
    if (!iq || !payload || adopt(iq, payload) != 0) {
        if (iq)
            xmpp_stanza_release(iq);
        else if (payload)
            xmpp_stanza_release(payload);
        return NULL;
    }
    return iq;
}

/* ---- presence, caps --------------------------------------------------------------- */

static void caps_ver(char out[64])
{
    char s[512];
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    size_t i;
    snprintf(s, sizeof s, "%s<", IDENTITY);
    for (i = 0; i < sizeof features / sizeof features[0]; i++) {
        strcat(s, features[i]);
        strcat(s, "<");
    }
    EVP_Digest(s, strlen(s), d, &len, EVP_sha1(), NULL);
    EVP_EncodeBlock((unsigned char *)out, d, (int)len);
}

static void send_presence(agent_t *a)
{
    xmpp_stanza_t *p = xmpp_presence_new(a->ctx), *prio = new_el(a->ctx, "priority", NULL),
                  *text = xmpp_stanza_new(a->ctx), *c = new_el(a->ctx, "c", NS_CAPS);
    char num[16], ver[64];
    if (!p || !prio || !text || !c)
        goto out;
    snprintf(num, sizeof num, "%d", a->s->priority);
    caps_ver(ver);
    xmpp_stanza_set_text(text, num);
    xmpp_stanza_set_attribute(c, "hash", "sha-1");
    xmpp_stanza_set_attribute(c, "node", CAPS_NODE);
    xmpp_stanza_set_attribute(c, "ver", ver);
    xmpp_stanza_add_child(prio, text);
    xmpp_stanza_add_child(p, prio);
    xmpp_stanza_add_child(p, c);
    xmpp_send(a->conn, p);
out:
    if (p)
        xmpp_stanza_release(p);
    if (prio)
        xmpp_stanza_release(prio);
    if (text)
        xmpp_stanza_release(text);
    if (c)
        xmpp_stanza_release(c);
}

/* Directed presence to the component: the server then tells it when this
 * agent goes away. */
static void send_component_presence(agent_t *a)
{
    xmpp_stanza_t *p = xmpp_presence_new(a->ctx);
    if (!p)
        return;
    xmpp_stanza_set_to(p, a->s->component_jid);
    send_release(a, p);
}

/* ---- registration ------------------------------------------------------------------ */

static void retry_cb(loop_t *loop, void *arg)
{
    agent_t *a = arg;
    (void)loop;
    registration_retry_due(a->reg);
}

/* registration_io_t: what to announce now, within `q`. */
static int newest_first(const void *x, const void *y)
{
    const announce_share_t *p = x, *q = y;
    return p->added_ms > q->added_ms ? -1 : p->added_ms < q->added_ms;
}

static int reg_desired(void *arg, const announce_quota_t *q, announce_set_t *out)
{
    agent_t *a = arg;
    size_t nd = a->s->share_downloads && a->dl ? downloads_count(a->dl) : 0;
    size_t n = library_count(a->lib) + nd, i, k = 0, na;
    announce_share_t *cand = n ? calloc(n, sizeof *cand) : NULL;
    char **own = n ? calloc(2 * n, sizeof *own) : NULL; /* the strings cand points to */
    announce_addr_t addrs[ANNOUNCE_MAX_ADDRESSES];
    share_info_t sh;
    dl_info_t di;
    int rc = -1;

    if (n && (!cand || !own))
        goto out;
    /* newest first (sorted below when downloads join) */
    for (i = library_count(a->lib); i-- > 0;) {
        if (library_get(a->lib, i, &sh) != 0 || sh.state != SHARE_SEEDING || !sh.hash[0])
            continue;
        if (!(own[2 * k] = strdup(sh.hash)) || !(own[2 * k + 1] = strdup(sh.name)))
            goto out;
        cand[k].hash = own[2 * k];
        cand[k].name = own[2 * k + 1];
        cand[k].size = sh.size;
        cand[k].added_ms = sh.added_ms;
        k++;
    }
    /* finished downloads, unless configured otherwise */
    for (i = 0; i < nd; i++) {
        if (downloads_get(a->dl, i, &di) != 0 || !di.complete || di.state != DL_SEEDING ||
            !di.have_status || !di.st.size)
            continue;
        if (!(own[2 * k] = strdup(di.hash)) || !(own[2 * k + 1] = strdup(di.name)))
            goto out;
        cand[k].hash = own[2 * k];
        cand[k].name = own[2 * k + 1];
        cand[k].size = di.st.size;
        cand[k].added_ms = di.completed_ms;
        k++;
    }
    if (nd)
        qsort(cand, k, sizeof *cand, newest_first);
    na = addresses_collect(&a->addrs, addrs, ANNOUNCE_MAX_ADDRESSES);
    rc = announce_fit(cand, k, addrs, na, a->s->resource, q, out);
out:
    for (i = 0; own && i < 2 * n; i++)
        free(own[i]);
    free(own);
    free(cand);
    return rc;
}

static int reg_send(void *arg, xmpp_stanza_t *payload, reg_kind_t kind)
{
    agent_t *a = arg;
    int iq_kind = kind == REG_ADD          ? AGENT_IQ_ADD
                  : kind == REG_REMOVE     ? AGENT_IQ_REMOVE
                  : kind == REG_UNREGISTER ? AGENT_IQ_REG_UNREGISTER
                                           : AGENT_IQ_REGISTER;
    return send_tracked(a, iq_new(a, "set", payload), a->s->component_jid, iq_kind);
}

static void reg_retry_in(void *arg, uint64_t ms)
{
    agent_t *a = arg;
    loop_timer_start(a->loop, &a->reg_retry, ms, retry_cb, a);
}

static void reg_read_quotas(void *arg)
{
    agent_t *a = arg;
    if (send_tracked(a, iq_new(a, "get", new_el(a->ctx, "query", NS_DISCO)), a->s->component_jid,
                     AGENT_IQ_DISCO) != 0)
        registration_quotas(a->reg, NULL); /* cannot ask: go on with the defaults */
}

/* The error's type, condition and text of an IQ error reply. */
static void error_of(xmpp_stanza_t *reply, const char **type, const char **cond, const char **text,
                     long long *stored)
{
    xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(reply, "error"), *c;
    *type = e ? xmpp_stanza_get_type(e) : NULL;
    *cond = NULL;
    *text = NULL;
    *stored = -1;
    if (!*type)
        *type = "cancel"; /* an error without <error/>: not retried */
    for (c = e ? xmpp_stanza_get_children(e) : NULL; c; c = xmpp_stanza_get_next(c)) {
        const char *ns = xmpp_stanza_get_ns(c), *name = xmpp_stanza_get_name(c);
        if (!name || !ns)
            continue;
        if (strcmp(ns, NS_STANZAS) == 0 && strcmp(name, "text") == 0)
            *text = announce_text_of(c);
        else if (strcmp(ns, NS_STANZAS) == 0 && !*cond)
            *cond = name;
        else if (strcmp(ns, AGENT_NS) == 0 && strcmp(name, "stale-seq") == 0) {
            const char *v = xmpp_stanza_get_attribute(c, "stored");
            char *end;
            long long n = v ? strtoll(v, &end, 10) : -1;
            if (v && *v >= '0' && *v <= '9' && !*end && n >= 0)
                *stored = n;
        }
    }
}

static void reg_reply(agent_t *a, xmpp_stanza_t *reply)
{
    const char *type = NULL, *cond = NULL, *text = NULL;
    long long stored = -1;
    if (!reply)
        registration_reply(a->reg, "wait", "timeout", -1, "no answer from the component");
    else if (strcmp(xmpp_stanza_get_type(reply), "result") == 0)
        registration_reply(a->reg, NULL, NULL, -1, NULL);
    else {
        error_of(reply, &type, &cond, &text, &stored);
        registration_reply(a->reg, type, cond, stored, text);
    }
}

void agent_xmpp_shares_changed(agent_t *a)
{
    if (a->reg)
        registration_changed(a->reg);
}

/* ---- replies to our requests -------------------------------------------------- */

static void roster_result(agent_t *a, xmpp_stanza_t *query, int full);

static void iq_done(agent_t *a, agent_iq_t *p, xmpp_stanza_t *reply)
{
    int kind = p->kind;
    loop_timer_stop(a->loop, &p->timer);
    p->used = 0;
    switch (kind) {
    case AGENT_IQ_REGISTER:
    case AGENT_IQ_ADD:
    case AGENT_IQ_REMOVE:
    case AGENT_IQ_REG_UNREGISTER:
        reg_reply(a, reply);
        break;
    case AGENT_IQ_UNREGISTER:
        a->unregistered = 1;
        break;
    case AGENT_IQ_DISCO: {
        announce_quota_t q;
        announce_quota_default(&q);
        if (reply && strcmp(xmpp_stanza_get_type(reply), "result") == 0 &&
            announce_quota_parse(child_ns(reply, "query", NS_DISCO), &q) > 0) {
            LOG_INFO(a->log, "register",
                     "%s's quotas: %zu shares, %zu addresses, names of %zu bytes, items of %zu "
                     "bytes",
                     a->s->component_jid, q.max_shares, q.max_addresses, q.max_name_bytes,
                     q.max_item_bytes);
            registration_quotas(a->reg, &q);
        } else {
            LOG_INFO(a->log, "register", "%s announces no quotas: assuming the defaults",
                     a->s->component_jid);
            registration_quotas(a->reg, NULL);
        }
        break;
    }
    case AGENT_IQ_ROSTER:
        if (reply && strcmp(xmpp_stanza_get_type(reply), "result") == 0)
            roster_result(a, child_ns(reply, "query", NS_ROSTER), 1);
        else
            LOG_WARN(a->log, "xmpp",
                     "the server did not send the roster: contacts' shares "
                     "are not kept");
        break;
    case AGENT_IQ_SIC:
        if (reply && strcmp(xmpp_stanza_get_type(reply), "result") == 0) {
            xmpp_stanza_t *addr = child_ns(reply, "address", NS_SIC);
            xmpp_stanza_t *ip = addr ? xmpp_stanza_get_child_by_name(addr, "ip") : NULL;
            const char *text = announce_text_of(ip);
            if (text && addresses_external(&a->addrs, text, 0, ADDRESS_FROM_SERVER)) {
                LOG_INFO(a->log, "xmpp", "the server sees this device at %s (XEP-0279)", text);
                registration_changed(a->reg);
            }
        }
        break;
    default:
        break;
    }
}

static int on_iq_reply(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    agent_t *a = arg;
    const char *id = xmpp_stanza_get_id(st), *from = xmpp_stanza_get_from(st);
    size_t i;
    (void)conn;
    if (!id)
        return 1;
    for (i = 0; i < AGENT_MAX_IQS; i++) {
        agent_iq_t *p = &a->iqs[i];
        if (!p->used || strcmp(p->id, id) != 0)
            continue;
        /* a reply counts only from whom we asked (our own server answers
         * for our account without a from) */
        if (from ? strcasecmp(from, p->to) != 0 : strcasecmp(p->to, a->s->jid) != 0) {
            LOG_WARN(a->log, "xmpp", "reply to %s from %s dropped: not whom it was sent to", id,
                     from ? from : "(none)");
            return 1;
        }
        iq_done(a, p, st);
        return 1;
    }
    return 1;
}

/* ---- requests to us ---------------------------------------------------------------- */

/* An empty result to `req` (xmpp_stanza_reply() keeps the request's type). */
static xmpp_stanza_t *result_of(xmpp_stanza_t *req)
{
    xmpp_stanza_t *r = xmpp_stanza_reply(req);
    if (r && xmpp_stanza_set_type(r, "result") != XMPP_EOK) {
        xmpp_stanza_release(r);
        return NULL;
    }
    return r;
}

static void reply_error(agent_t *a, xmpp_stanza_t *req, const char *type, const char *cond)
{
    xmpp_stanza_t *r = xmpp_stanza_reply_error(req, type, cond, NULL);
    send_release(a, r);
}

static xmpp_stanza_t *disco_info(agent_t *a, const char *node)
{
    xmpp_stanza_t *q = new_el(a->ctx, "query", NS_DISCO), *id;
    size_t i;
    if (!q)
        return NULL;
    if (node)
        xmpp_stanza_set_attribute(q, "node", node);
    id = new_el(a->ctx, "identity", NULL);
    if (id) {
        xmpp_stanza_set_attribute(id, "category", "client");
        xmpp_stanza_set_attribute(id, "type", "bot");
        xmpp_stanza_set_attribute(id, "name", "bitween agent");
    }
    if (adopt(q, id) != 0) {
        xmpp_stanza_release(q);
        return NULL;
    }
    for (i = 0; i < sizeof features / sizeof features[0]; i++) {
        xmpp_stanza_t *f = new_el(a->ctx, "feature", NULL);
        if (f)
            xmpp_stanza_set_attribute(f, "var", features[i]);
        if (adopt(q, f) != 0) {
            xmpp_stanza_release(q);
            return NULL;
        }
    }
    return q;
}

static void roster_result(agent_t *a, xmpp_stanza_t *query, int full)
{
    xmpp_stanza_t *item;
    size_t n = 0, dropped;
    if (full)
        contacts_roster_begin(a->contacts);
    for (item = query ? xmpp_stanza_get_children(query) : NULL; item;
         item = xmpp_stanza_get_next(item)) {
        const char *jid = xmpp_stanza_get_attribute(item, "jid");
        const char *sub = xmpp_stanza_get_attribute(item, "subscription");
        const char *name = xmpp_stanza_get_name(item);
        int receives;
        if (!name || strcmp(name, "item") != 0 || !jid || strchr(jid, '/'))
            continue;
        receives = sub && (strcmp(sub, "to") == 0 || strcmp(sub, "both") == 0);
        if (contacts_roster_set(a->contacts, jid, receives) < 0)
            LOG_WARN(a->log, "contacts", "roster entry %s not kept: max_contacts reached", jid);
        n += receives;
    }
    if (full) {
        dropped = contacts_roster_done(a->contacts);
        LOG_INFO(a->log, "contacts", "roster: %zu contact(s) whose shares are kept%s", n,
                 dropped ? "; some left" : "");
    }
}

static int on_iq_request(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    agent_t *a = arg;
    const char *type = xmpp_stanza_get_type(st), *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *payload = xmpp_stanza_get_children(st), *r;
    const char *ns, *name;
    (void)conn;

    if (!type || (strcmp(type, "get") != 0 && strcmp(type, "set") != 0))
        return 1; /* results and errors: on_iq_reply */
    while (payload && xmpp_stanza_is_text(payload))
        payload = xmpp_stanza_get_next(payload);
    ns = payload ? xmpp_stanza_get_ns(payload) : NULL;
    name = payload ? xmpp_stanza_get_name(payload) : NULL;
    if (!ns || !name) {
        reply_error(a, st, "modify", "bad-request");
        return 1;
    }
    if (strcmp(type, "get") == 0 && strcmp(ns, NS_PING) == 0 && strcmp(name, "ping") == 0) {
        send_release(a, result_of(st));
        if (from && strcasecmp(from, a->s->component_jid) == 0) {
            const char *rs = registration_state(a->reg);
            /* the component is back after errors (docs/protocol.md §1.1):
             * presence first, then the whole state */
            if (strcmp(rs, "registered") != 0 && strcmp(rs, "updating") != 0) {
                loop_timer_stop(a->loop, &a->reg_retry);
                send_component_presence(a);
                registration_pinged(a->reg);
            }
        }
        return 1;
    }
    if (strcmp(type, "get") == 0 && strcmp(ns, NS_DISCO) == 0 && strcmp(name, "query") == 0) {
        const char *node = xmpp_stanza_get_attribute(payload, "node");
        char ver[64], want[128];
        caps_ver(ver);
        snprintf(want, sizeof want, "%s#%s", CAPS_NODE, ver);
        if (node && strcmp(node, want) != 0) {
            reply_error(a, st, "cancel", "item-not-found");
            return 1;
        }
        r = result_of(st);
        if (!r || adopt(r, disco_info(a, node)) != 0) {
            if (r)
                xmpp_stanza_release(r);
            reply_error(a, st, "wait", "resource-constraint");
            return 1;
        }
        send_release(a, r);
        return 1;
    }
    if (strcmp(type, "set") == 0 && strcmp(ns, NS_ROSTER) == 0 && strcmp(name, "query") == 0) {
        /* a roster push comes from our own account only (RFC 6121 §2.1.6) */
        if (from && strcasecmp(from, a->s->jid) != 0) {
            reply_error(a, st, "cancel", "service-unavailable");
            return 1;
        }
        roster_result(a, payload, 0);
        send_release(a, result_of(st));
        return 1;
    }
    reply_error(a, st, "cancel", "service-unavailable");
    return 1;
}

static int on_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    const char *type = xmpp_stanza_get_type(st);
    if (type && (strcmp(type, "result") == 0 || strcmp(type, "error") == 0))
        return on_iq_reply(conn, st, arg);
    return on_iq_request(conn, st, arg);
}

/* ---- contacts' items ------------------------------------------------------------- */

static int on_message(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    agent_t *a = arg;
    const char *from = xmpp_stanza_get_from(st);
    xmpp_stanza_t *event = child_ns(st, "event", NS_EVENT), *el;
    char bare[3072];
    shares_error_t err;
    (void)conn;

    if (!event || !from)
        return 1;
    bare_of(from, bare, sizeof bare);
    for (el = xmpp_stanza_get_children(event); el; el = xmpp_stanza_get_next(el)) {
        const char *name = xmpp_stanza_get_name(el), *node = xmpp_stanza_get_attribute(el, "node");
        xmpp_stanza_t *item, *payload = NULL;
        int rc, retracted = 0;
        if (!name || !node || strcmp(node, SHARES_NS) != 0)
            continue;
        if (strcmp(name, "items") == 0) {
            item = xmpp_stanza_get_child_by_name(el, "item");
            if (item)
                payload = child_ns(item, "user_shares", SHARES_NS);
            retracted = !payload && xmpp_stanza_get_child_by_name(el, "retract") != NULL;
            if (!payload && !retracted)
                continue;
        } else if (strcmp(name, "delete") == 0 || strcmp(name, "purge") == 0) {
            retracted = 1;
        } else {
            continue;
        }
        memset(&err, 0, sizeof err);
        rc = contacts_update(a->contacts, bare, retracted ? NULL : payload, &err);
        if (rc == CONTACTS_CHANGED) {
            LOG_INFO(a->log, "contacts", "%s's shares changed", bare);
            if (a->dl)
                downloads_sources_changed(a->dl); /* new devices or addresses: at once */
        } else if (rc == CONTACTS_EINVAL || rc == CONTACTS_ELIMIT)
            LOG_WARN(a->log, "contacts", "%s's item refused: %s", bare, err.message);
        else if (rc == CONTACTS_EFORBID && strcasecmp(bare, a->s->jid) != 0)
            LOG_DEBUG(a->log, "contacts", "item from %s ignored: not a contact", bare);
    }
    return 1;
}

/* ---- connection --------------------------------------------------------------------- */

static void connect_now(agent_t *a);

static void reconnect_cb(loop_t *loop, void *arg)
{
    (void)loop;
    connect_now(arg);
}

static void schedule_reconnect(agent_t *a)
{
    uint64_t delay;
    if (a->stopping)
        return;
    delay = loop_backoff_ms(a->s->reconnect_min_ms, a->s->reconnect_max_ms, a->reconnect_attempt++,
                            &a->rng);
    LOG_INFO(a->log, "xmpp", "reconnecting in %" PRIu64 " ms", delay);
    loop_timer_start(a->loop, &a->reconnect_timer, delay, reconnect_cb, a);
}

static void stable_cb(loop_t *loop, void *arg)
{
    agent_t *a = arg;
    (void)loop;
    a->reconnect_attempt = 0;
}

static void on_online(agent_t *a)
{
    xmpp_stanza_t *q;
    a->xmpp_state = AGENT_XMPP_ONLINE;
    a->xmpp_error[0] = '\0';
    /* the backoff starts again only once the session has lasted: a
     * session kicked at once (another one with this resource) must not
     * come back every second */
    loop_timer_start(a->loop, &a->stable_timer, STABLE_MS, stable_cb, a);
    loop_timer_stop(a->loop, &a->reg_retry);
    registration_online(a->reg);
    LOG_INFO(a->log, "xmpp", "connected as %s%s", xmpp_conn_get_bound_jid(a->conn),
             xmpp_conn_is_secured(a->conn) ? " (TLS)" : " (no TLS)");
    /* the roster before presence (RFC 6121 §2.2), so that contacts' items,
     * sent on our presence, find their senders known */
    q = new_el(a->ctx, "query", NS_ROSTER);
    send_tracked(a, iq_new(a, "get", q), a->s->jid, AGENT_IQ_ROSTER);
    send_presence(a);
    send_component_presence(a);
    reg_read_quotas(a);
    send_tracked(a, iq_new(a, "get", new_el(a->ctx, "address", NS_SIC)), a->s->jid, AGENT_IQ_SIC);
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *arg)
{
    agent_t *a = arg;
    (void)conn;
    if (status == XMPP_CONN_CONNECT) {
        on_online(a);
        return;
    }
    if (status == XMPP_CONN_RAW_CONNECT)
        return;
    if (a->xfd >= 0) {
        loop_fd_del(a->loop, a->xfd);
        a->xfd = -1;
    }
    forget_iqs(a);
    loop_timer_stop(a->loop, &a->reg_retry);
    registration_offline(a->reg);
    loop_timer_stop(a->loop, &a->stable_timer);
    if (stream_error && stream_error->type == XMPP_SE_CONFLICT) {
        snprintf(a->xmpp_error, sizeof a->xmpp_error,
                 "another session took the resource \"%s\" (two agents with one resource? "
                 "set resource)",
                 a->s->resource);
        if (a->reconnect_attempt < 16)
            a->reconnect_attempt = 16; /* the longest delay: no kicking match */
    } else if (stream_error)
        snprintf(a->xmpp_error, sizeof a->xmpp_error, "stream error from the server%s%s",
                 stream_error->text ? ": " : "", stream_error->text ? stream_error->text : "");
    else if (a->xmpp_state == AGENT_XMPP_CONNECTING)
        snprintf(a->xmpp_error, sizeof a->xmpp_error,
                 "could not connect or log in%s%s (check jid, password, xmpp_tls)",
                 error ? ": " : "", error ? strerror(error) : "");
    else
        snprintf(a->xmpp_error, sizeof a->xmpp_error, "connection lost%s%s", error ? ": " : "",
                 error ? strerror(error) : "");
    a->xmpp_state = AGENT_XMPP_OFFLINE;
    if (!a->stopping) {
        LOG_WARN(a->log, "xmpp", "%s", a->xmpp_error);
        schedule_reconnect(a);
    }
}

static void xmpp_fd_cb(loop_t *loop, int fd, short revents, void *arg)
{
    agent_t *a = arg;
    (void)loop;
    (void)fd;
    if (revents & (POLLIN | POLLHUP | POLLERR))
        a->xfd_ready = 1;
}

static void connect_now(agent_t *a)
{
    const char *host = a->s->xmpp_host;
    if (xmpp_connect_client(a->conn, host, (unsigned short)a->s->xmpp_port, conn_handler, a) !=
        XMPP_EOK) {
        snprintf(a->xmpp_error, sizeof a->xmpp_error, "cannot start connecting");
        LOG_WARN(a->log, "xmpp", "%s", a->xmpp_error);
        schedule_reconnect(a);
        return;
    }
    a->xmpp_state = AGENT_XMPP_CONNECTING;
    a->xfd = xmpp_compat_socket(a->conn);
    if (a->xfd >= 0)
        loop_fd_add(a->loop, a->xfd, POLLIN | POLLOUT, xmpp_fd_cb, a);
}

int agent_xmpp_start(agent_t *a)
{
    long flags = 0;
    char jid[2200];
    contacts_limits_t cl;

    registration_io_t io;

    a->xfd = -1;
    a->rng = (unsigned)loop_wall_ms() ^ (unsigned)getpid();
    memset(&io, 0, sizeof io);
    io.arg = a;
    io.desired = reg_desired;
    io.send = reg_send;
    io.retry_in = reg_retry_in;
    io.read_quotas = reg_read_quotas;
    io.log = a->log;
    io.component = a->s->component_jid;
    cl.max_contacts = a->s->max_contacts;
    cl.max_resources = a->s->max_contact_resources;
    cl.max_shares = a->s->max_contact_shares;
    cl.max_item_bytes = a->s->max_contact_item_bytes;
    cl.max_total_bytes = (size_t)256 << 20; /* whatever the per-contact bounds multiply to */
    if (!(a->contacts = contacts_new(&cl)))
        return -1;
    a->ctx = xmpp_ctx_new(NULL, log_strophe(a->log));
    if (!a->ctx || !(a->conn = xmpp_conn_new(a->ctx)))
        return -1;
    io.ctx = a->ctx;
    /* seq: milliseconds since the epoch times 1000, so it grows across
     * restarts with room for 1000 requests a millisecond */
    if (!(a->reg = registration_new(&io, (uint64_t)loop_wall_ms() * 1000, a->rng)))
        return -1;
    if (xmpp_compat_watch_socket(a->conn) != 0)
        return -1;
    switch (a->s->tls) {
    case AGENT_TLS_REQUIRED:
        flags = XMPP_CONN_FLAG_MANDATORY_TLS;
        break;
    case AGENT_TLS_DISABLED:
        flags = XMPP_CONN_FLAG_DISABLE_TLS;
        LOG_WARN(a->log, "xmpp",
                 "xmpp_tls = disabled: the password crosses the network in the "
                 "clear (use it only on loopback)");
        break;
    default:
        break;
    }
    xmpp_conn_set_flags(a->conn, flags);
    if (a->s->ca_file)
        xmpp_conn_set_cafile(a->conn, a->s->ca_file);
    snprintf(jid, sizeof jid, "%s/%s", a->s->jid, a->s->resource);
    xmpp_conn_set_jid(a->conn, jid);
    xmpp_conn_set_pass(a->conn, a->s->password);
    xmpp_handler_add(a->conn, on_iq, NULL, "iq", NULL, a);
    xmpp_handler_add(a->conn, on_message, NULL, "message", NULL, a);
    connect_now(a);
    return 0;
}

void agent_xmpp_iterate(agent_t *a)
{
    int extra = 4, i;
    if (!a->ctx)
        return;
    if (a->xfd >= 0) {
        short ev = POLLIN;
        if (xmpp_conn_is_connecting(a->conn) || xmpp_conn_send_queue_len(a->conn) > 0)
            ev |= POLLOUT;
        loop_fd_events(a->loop, a->xfd, ev);
    }
    if (!a->xfd_ready) {
        xmpp_run_once(a->ctx, 0);
        return;
    }
    a->xfd_ready = 0;
    /* libstrophe reads 4 KiB per turn; TLS may hold up to a 16 KiB record
     * that poll() cannot see: read on while the socket has data, and a
     * few turns after */
    for (i = 0; i < 1024 && extra > 0 && a->xfd >= 0; i++) {
        struct pollfd p = {a->xfd, POLLIN, 0};
        xmpp_run_once(a->ctx, 0);
        if (a->xfd >= 0 && poll(&p, 1, 0) == 1 && (p.revents & POLLIN))
            extra = 4;
        else
            extra--;
    }
    if (a->xfd >= 0) {
        int one = 1;
        setsockopt(a->xfd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

void agent_xmpp_stop(agent_t *a)
{
    uint64_t end;
    xmpp_stanza_t *un;
    if (!a->conn)
        return;
    loop_timer_stop(a->loop, &a->reconnect_timer);
    loop_timer_stop(a->loop, &a->reg_retry);
    if (a->xmpp_state == AGENT_XMPP_ONLINE) {
        un = new_el(a->ctx, "unregister", AGENT_NS);
        if (send_tracked(a, iq_new(a, "set", un), a->s->component_jid, AGENT_IQ_UNREGISTER) == 0) {
            end = loop_now_ms(a->loop) + 3000;
            while (!a->unregistered && a->xmpp_state == AGENT_XMPP_ONLINE &&
                   loop_now_ms(a->loop) < end) {
                loop_run_once(a->loop, 50);
                agent_xmpp_iterate(a);
            }
            LOG_INFO(a->log, "register", "%s",
                     a->unregistered ? "unregistered from the component"
                                     : "no answer to unregister");
        }
        xmpp_disconnect(a->conn);
        end = loop_now_ms(a->loop) + 2000;
        while (a->xmpp_state != AGENT_XMPP_OFFLINE && loop_now_ms(a->loop) < end) {
            loop_run_once(a->loop, 50);
            agent_xmpp_iterate(a);
        }
    }
}

void agent_xmpp_free(agent_t *a)
{
    forget_iqs(a);
    loop_timer_stop(a->loop, &a->stable_timer);
    loop_timer_stop(a->loop, &a->reconnect_timer);
    loop_timer_stop(a->loop, &a->reg_retry);
    if (a->xfd >= 0)
        loop_fd_del(a->loop, a->xfd);
    if (a->conn) {
        xmpp_compat_unwatch_socket(a->conn);
        xmpp_conn_release(a->conn);
    }
    if (a->ctx)
        xmpp_ctx_free(a->ctx);
    registration_free(a->reg);
    a->reg = NULL;
    contacts_free(a->contacts);
    a->conn = NULL;
    a->ctx = NULL;
    a->contacts = NULL;
}

const char *agent_xmpp_state_name(const agent_t *a)
{
    switch (a->xmpp_state) {
    case AGENT_XMPP_ONLINE:
        return "online";
    case AGENT_XMPP_CONNECTING:
        return "connecting";
    default:
        return "offline";
    }
}

const char *agent_announce_state(const agent_t *a, const char *hash)
{
    const char(*over)[41] = NULL;
    const announce_set_t *acked;
    size_t i, n;
    if (!a->reg)
        return "not announced: offline";
    n = registration_over_quota(a->reg, &over);
    for (i = 0; i < n; i++)
        if (strcmp(over[i], hash) == 0)
            return "not announced: over the server's quota";
    acked = registration_acked(a->reg);
    for (i = 0; acked && i < acked->n_shares; i++)
        if (strcmp(acked->shares[i].hash, hash) == 0)
            return "announced";
    return a->xmpp_state == AGENT_XMPP_ONLINE ? "announcing" : "not announced: offline";
}
