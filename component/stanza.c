/* SPDX-License-Identifier: MIT */
/*
 * Builders of the stanzas the component sends (IQ results and errors,
 * disco#info, pings, the XEP-0356 privileged publish) and parsers of the
 * server's privilege advertisement and privileged-IQ replies. Builders
 * attach every new element to its parent as soon as it exists, so one
 * release of the root frees everything whatever fails next. Text that
 * reaches the wire or a log is cleaned first: a control character in a
 * stanza is not well-formed XML and would make the server close the whole
 * component stream.
 */
#include "stanza.h"
#include "xmpp_compat.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- helpers --------------------------------------------------------- */

/* Length of the valid UTF-8 sequence at `s` encoding an XML character
 * that is not a control (C0, DEL, C1), or 0. */
static size_t utf8_char(const unsigned char *s)
{
    size_t len, i;
    uint32_t c, min;

    if (s[0] < 0x80)
        return s[0] >= 0x20 && s[0] != 0x7F ? 1 : 0;
    if (s[0] < 0xC2)
        return 0;
    if (s[0] < 0xE0)
        len = 2, c = s[0] & 0x1Fu, min = 0x80;
    else if (s[0] < 0xF0)
        len = 3, c = s[0] & 0x0Fu, min = 0x800;
    else if (s[0] < 0xF5)
        len = 4, c = s[0] & 0x07u, min = 0x10000;
    else
        return 0;
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) /* also stops at the NUL */
            return 0;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF) || c == 0xFFFE || c == 0xFFFF ||
        (c >= 0x80 && c <= 0x9F))
        return 0;
    return len;
}

/* Copy `in` into `out` (`cap` bytes, at least 1) as printable UTF-8:
 * control characters dropped, other invalid bytes replaced by '?', cut on
 * a character boundary. Returns the length written. */
static size_t clean_text(char *out, size_t cap, const char *in)
{
    const unsigned char *p = (const unsigned char *)in;
    size_t o = 0, n;

    while (*p) {
        n = utf8_char(p);
        if (n == 0) {
            if (*p >= 0x80 && o + 1 < cap)
                out[o++] = '?';
            else if (*p >= 0x80)
                break;
            p++;
            continue;
        }
        if (o + n >= cap)
            break;
        memcpy(out + o, p, n);
        o += n;
        p += n;
    }
    out[o] = '\0';
    return o;
}

/* Effective namespace: its own xmlns, else the parent's (built stanzas
 * leave children without one; parsed stanzas carry it explicitly). */
static int in_ns(xmpp_stanza_t *el, const char *ns, const char *parent_ns)
{
    const char *own = xmpp_stanza_get_ns(el);

    if (!own)
        own = parent_ns;
    return own && strcmp(own, ns) == 0;
}

/* First child element named `name` (any name when NULL) in namespace
 * `ns` (any when NULL). */
static xmpp_stanza_t *find_child(xmpp_stanza_t *st, const char *name, const char *ns)
{
    const char *parent_ns = xmpp_stanza_get_ns(st), *n;
    xmpp_stanza_t *c;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c))
            continue;
        n = xmpp_stanza_get_name(c);
        if (name && (!n || strcmp(n, name) != 0))
            continue;
        if (ns && !in_ns(c, ns, parent_ns))
            continue;
        return c;
    }
    return NULL;
}

/* New element `name` (namespace `ns` when not NULL) attached to `parent`,
 * or NULL on allocation failure (the parent still owns whatever was
 * attached). */
static xmpp_stanza_t *add_element(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name,
                                  const char *ns)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);

    if (!el)
        return NULL;
    if (xmpp_stanza_add_child_ex(parent, el, 0) != XMPP_EOK) {
        xmpp_stanza_release(el);
        return NULL;
    }
    if (xmpp_stanza_set_name(el, name) != XMPP_EOK)
        return NULL;
    if (ns && xmpp_stanza_set_ns(el, ns) != XMPP_EOK)
        return NULL;
    return el;
}

static int add_text(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *text)
{
    xmpp_stanza_t *t = xmpp_stanza_new(ctx);

    if (!t)
        return -1;
    if (xmpp_stanza_add_child_ex(parent, t, 0) != XMPP_EOK) {
        xmpp_stanza_release(t);
        return -1;
    }
    return xmpp_stanza_set_text(t, text) == XMPP_EOK ? 0 : -1;
}

/* Set attribute `name` when `value` is not NULL. */
static int set_opt(xmpp_stanza_t *st, const char *name, const char *value)
{
    return !value || xmpp_stanza_set_attribute(st, name, value) == XMPP_EOK ? 0 : -1;
}

static xmpp_stanza_t *new_element(xmpp_ctx_t *ctx, const char *name)
{
    xmpp_stanza_t *st = xmpp_stanza_new(ctx);

    if (st && xmpp_stanza_set_name(st, name) != XMPP_EOK) {
        xmpp_stanza_release(st);
        return NULL;
    }
    return st;
}

/* <iq type=TYPE id=req.id to=req.from from=req.to/> */
static xmpp_stanza_t *reply_iq(xmpp_ctx_t *ctx, const xmpp_stanza_t *req_in, const char *type)
{
    xmpp_stanza_t *req = xmpp_compat_mutable(req_in), *iq;

    if (!ctx || !req)
        return NULL;
    iq = new_element(ctx, "iq");
    if (!iq)
        return NULL;
    if (xmpp_stanza_set_type(iq, type) != XMPP_EOK ||
        set_opt(iq, "id", xmpp_stanza_get_id(req)) != 0 ||
        set_opt(iq, "to", xmpp_stanza_get_from(req)) != 0 ||
        set_opt(iq, "from", xmpp_stanza_get_to(req)) != 0) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *stanza_copy_iq_envelope(xmpp_ctx_t *ctx, const xmpp_stanza_t *iq_in)
{
    xmpp_stanza_t *iq = xmpp_compat_mutable(iq_in), *copy;

    if (!ctx || !iq)
        return NULL;
    copy = new_element(ctx, "iq");
    if (!copy)
        return NULL;
    if (set_opt(copy, "type", xmpp_stanza_get_type(iq)) != 0 ||
        set_opt(copy, "id", xmpp_stanza_get_id(iq)) != 0 ||
        set_opt(copy, "from", xmpp_stanza_get_from(iq)) != 0 ||
        set_opt(copy, "to", xmpp_stanza_get_to(iq)) != 0) {
        xmpp_stanza_release(copy);
        return NULL;
    }
    return copy;
}

/* ---- replies --------------------------------------------------------- */

xmpp_stanza_t *stanza_build_iq_result(xmpp_ctx_t *ctx, const xmpp_stanza_t *req)
{
    return reply_iq(ctx, req, "result");
}

xmpp_stanza_t *stanza_build_iq_error(xmpp_ctx_t *ctx, const xmpp_stanza_t *req, const char *type,
                                     const char *condition, const char *text)
{
    xmpp_stanza_t *iq, *error, *el;
    char *clean = NULL;
    size_t cap;

    if (!type || !condition)
        return NULL;
    iq = reply_iq(ctx, req, "error");
    if (!iq)
        return NULL;
    error = add_element(ctx, iq, "error", NULL);
    if (!error || xmpp_stanza_set_type(error, type) != XMPP_EOK ||
        !add_element(ctx, error, condition, XMPP_NS_STANZAS_IETF))
        goto fail;
    if (text && *text) {
        cap = strlen(text) + 1;
        clean = malloc(cap);
        if (!clean)
            goto fail;
        if (clean_text(clean, cap, text) > 0) {
            el = add_element(ctx, error, "text", XMPP_NS_STANZAS_IETF);
            if (!el || xmpp_stanza_set_attribute(el, "xml:lang", "en") != XMPP_EOK ||
                add_text(ctx, el, clean) != 0)
                goto fail;
        }
        free(clean);
    }
    return iq;

fail:
    free(clean);
    xmpp_stanza_release(iq);
    return NULL;
}

xmpp_stanza_t *stanza_build_agent_error(xmpp_ctx_t *ctx, const xmpp_stanza_t *req,
                                        const agent_error_t *err)
{
    xmpp_stanza_t *iq, *el;
    char num[24];

    if (!err)
        return NULL;
    iq = stanza_build_iq_error(ctx, req, agent_error_type(err->code),
                               agent_error_condition(err->code), err->text);
    if (!iq || err->code != AGENT_ERR_CONFLICT || err->stored_seq < 0)
        return iq;
    /* RFC 6120 8.3.2: the application-specific condition comes last */
    snprintf(num, sizeof num, "%" PRId64, err->stored_seq);
    el = add_element(ctx, xmpp_stanza_get_child_by_name(iq, "error"), AGENT_STALE_SEQ, AGENT_NS);
    if (!el || xmpp_stanza_set_attribute(el, "stored", num) != XMPP_EOK) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

/* <field var=VAR [type=TYPE]><value>VALUE</value></field> into `form`. */
static int add_field(xmpp_ctx_t *ctx, xmpp_stanza_t *form, const char *var, const char *type,
                     const char *value)
{
    xmpp_stanza_t *field = add_element(ctx, form, "field", NULL), *v;
    if (!field || xmpp_stanza_set_attribute(field, "var", var) != XMPP_EOK ||
        set_opt(field, "type", type) != 0)
        return -1;
    v = add_element(ctx, field, "value", NULL);
    return v ? add_text(ctx, v, value) : -1;
}

/* The XEP-0128 form of the quotas into `query`. */
static int add_quotas_form(xmpp_ctx_t *ctx, xmpp_stanza_t *query, const shares_limits_t *l)
{
    const struct {
        const char *var;
        size_t value;
    } fields[] = {
        {"max_resources", l->max_resources},
        {"max_shares_per_resource", l->max_shares},
        {"max_addresses_per_resource", l->max_addresses},
        {"max_name_bytes", l->max_name_bytes},
        {"max_item_bytes", l->max_item_bytes},
    };
    xmpp_stanza_t *form = add_element(ctx, query, "x", "jabber:x:data");
    char num[24];
    size_t i;

    if (!form || xmpp_stanza_set_type(form, "result") != XMPP_EOK ||
        add_field(ctx, form, "FORM_TYPE", "hidden", STANZA_QUOTAS_FORM) != 0)
        return -1;
    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        snprintf(num, sizeof num, "%zu", fields[i].value);
        if (add_field(ctx, form, fields[i].var, NULL, num) != 0)
            return -1;
    }
    return 0;
}

xmpp_stanza_t *stanza_build_disco_info(xmpp_ctx_t *ctx, const xmpp_stanza_t *req_in,
                                       const char *name, const shares_limits_t *limits)
{
    static const char *const features[] = {XMPP_NS_DISCO_INFO, STANZA_NS_PING, AGENT_NS};
    xmpp_stanza_t *req = xmpp_compat_mutable(req_in), *query, *iq, *el;
    size_t i;

    if (!req || !name)
        return NULL;
    query = find_child(req, "query", XMPP_NS_DISCO_INFO);
    if (query && xmpp_stanza_get_attribute(query, "node"))
        return stanza_build_iq_error(ctx, req, "cancel", "item-not-found",
                                     "this component has no disco#info nodes");
    iq = reply_iq(ctx, req, "result");
    if (!iq)
        return NULL;
    query = add_element(ctx, iq, "query", XMPP_NS_DISCO_INFO);
    if (!query)
        goto fail;
    el = add_element(ctx, query, "identity", NULL);
    if (!el || xmpp_stanza_set_attribute(el, "category", "component") != XMPP_EOK ||
        xmpp_stanza_set_attribute(el, "type", "generic") != XMPP_EOK ||
        xmpp_stanza_set_attribute(el, "name", name) != XMPP_EOK)
        goto fail;
    for (i = 0; i < sizeof features / sizeof features[0]; i++) {
        el = add_element(ctx, query, "feature", NULL);
        if (!el || xmpp_stanza_set_attribute(el, "var", features[i]) != XMPP_EOK)
            goto fail;
    }
    if (limits && add_quotas_form(ctx, query, limits) != 0)
        goto fail;
    return iq;

fail:
    xmpp_stanza_release(iq);
    return NULL;
}

xmpp_stanza_t *stanza_build_ping(xmpp_ctx_t *ctx, const char *from, const char *to, const char *id)
{
    xmpp_stanza_t *iq;

    if (!ctx || !from || !to || !id)
        return NULL;
    iq = new_element(ctx, "iq");
    if (!iq)
        return NULL;
    if (xmpp_stanza_set_type(iq, "get") != XMPP_EOK ||
        xmpp_stanza_set_attribute(iq, "from", from) != XMPP_EOK ||
        xmpp_stanza_set_attribute(iq, "to", to) != XMPP_EOK ||
        xmpp_stanza_set_id(iq, id) != XMPP_EOK || !add_element(ctx, iq, "ping", STANZA_NS_PING)) {
        xmpp_stanza_release(iq);
        return NULL;
    }
    return iq;
}

xmpp_stanza_t *stanza_build_privileged_publish(xmpp_ctx_t *ctx, const char *component_jid,
                                               const char *user_bare_jid, const char *outer_id,
                                               const char *inner_id, xmpp_stanza_t *payload)
{
    xmpp_stanza_t *iq, *priv, *inner, *pubsub, *publish, *item, *opts, *x;

    if (!payload)
        return NULL;
    if (!ctx || !component_jid || !user_bare_jid || !outer_id || !inner_id)
        goto drop;
    iq = new_element(ctx, "iq");
    if (!iq)
        goto drop;
    if (xmpp_stanza_set_type(iq, "set") != XMPP_EOK ||
        xmpp_stanza_set_attribute(iq, "from", component_jid) != XMPP_EOK ||
        xmpp_stanza_set_attribute(iq, "to", user_bare_jid) != XMPP_EOK ||
        xmpp_stanza_set_id(iq, outer_id) != XMPP_EOK)
        goto fail;
    priv = add_element(ctx, iq, "privileged_iq", STANZA_NS_PRIVILEGE);
    if (!priv)
        goto fail;
    /* mod_privilege: jabber:client, same type as the outer IQ, an id, and
     * `from` absent or equal to the outer `to` */
    inner = add_element(ctx, priv, "iq", XMPP_NS_CLIENT);
    if (!inner || xmpp_stanza_set_type(inner, "set") != XMPP_EOK ||
        xmpp_stanza_set_attribute(inner, "from", user_bare_jid) != XMPP_EOK ||
        xmpp_stanza_set_attribute(inner, "to", user_bare_jid) != XMPP_EOK ||
        xmpp_stanza_set_id(inner, inner_id) != XMPP_EOK)
        goto fail;
    pubsub = add_element(ctx, inner, "pubsub", STANZA_NS_PUBSUB);
    publish = pubsub ? add_element(ctx, pubsub, "publish", NULL) : NULL;
    if (!publish || xmpp_stanza_set_attribute(publish, "node", SHARES_NS) != XMPP_EOK)
        goto fail;
    item = add_element(ctx, publish, "item", NULL);
    if (!item || xmpp_stanza_set_id(item, SHARES_ITEM_ID) != XMPP_EOK)
        goto fail;
    /* Taken, not copied: xmpp_stanza_copy() and attribute iteration
     * crash in libstrophe 0.12.2 when an allocation fails, and the item
     * can be tens of KiB. */
    if (xmpp_stanza_add_child_ex(item, payload, 0) != XMPP_EOK)
        goto fail;
    payload = NULL; /* owned by iq now */
    opts = add_element(ctx, pubsub, "publish-options", NULL);
    x = opts ? add_element(ctx, opts, "x", STANZA_NS_DATA) : NULL;
    if (!x || xmpp_stanza_set_type(x, "submit") != XMPP_EOK ||
        add_field(ctx, x, "FORM_TYPE", "hidden",
                  "http://jabber.org/protocol/pubsub#publish-options") != 0 ||
        add_field(ctx, x, "pubsub#persist_items", NULL, "true") != 0 ||
        add_field(ctx, x, "pubsub#access_model", NULL, "presence") != 0)
        goto fail;
    return iq;

fail:
    xmpp_stanza_release(iq);
drop:
    if (payload)
        xmpp_stanza_release(payload);
    return NULL;
}

/* ---- parsing the server's stanzas ------------------------------------ */

static void set_buf(char *buf, size_t len, const char *s)
{
    if (buf && len > 0)
        clean_text(buf, len, s);
}

/* "type/condition: text" of the <error/> child of `iq` into buf; returns
 * -2 for type wait, else -1. */
static int describe_error(xmpp_stanza_t *iq, char *buf, size_t len)
{
    xmpp_stanza_t *error = find_child(iq, "error", NULL), *c, *text_el;
    const char *type = NULL, *cond = NULL, *ens, *n;
    char *text = NULL, *msg;
    size_t need;
    int rc;

    if (!error) {
        set_buf(buf, len, "error reply without an <error/> element");
        return -1;
    }
    type = xmpp_stanza_get_type(error);
    ens = xmpp_stanza_get_ns(error);
    for (c = xmpp_stanza_get_children(error); c; c = xmpp_stanza_get_next(c)) {
        n = xmpp_stanza_is_tag(c) ? xmpp_stanza_get_name(c) : NULL;
        if (n && strcmp(n, "text") != 0 && in_ns(c, XMPP_NS_STANZAS_IETF, ens)) {
            cond = n;
            break;
        }
    }
    text_el = find_child(error, "text", XMPP_NS_STANZAS_IETF);
    if (text_el)
        text = xmpp_stanza_get_text(text_el); /* ctx-allocated or NULL */
    rc = type && strcmp(type, "wait") == 0 ? -2 : -1;
    if (!buf || len == 0)
        goto out;
    if (!type)
        type = "unknown";
    if (!cond)
        cond = "undefined-condition";
    need = strlen(type) + strlen(cond) + (text ? strlen(text) : 0) + 4;
    msg = malloc(need);
    if (!msg) {
        set_buf(buf, len, type); /* better than nothing */
        goto out;
    }
    snprintf(msg, need, "%s/%s%s%s", type, cond, text && *text ? ": " : "",
             text && *text ? text : "");
    set_buf(buf, len, msg);
    free(msg);

out:
    if (text)
        xmpp_free(xmpp_stanza_get_context(error), text);
    return rc;
}

int stanza_parse_privileged_result(const xmpp_stanza_t *reply_in, char *errbuf, size_t len)
{
    xmpp_stanza_t *reply = xmpp_compat_mutable(reply_in), *priv, *fwd, *inner = NULL;
    const char *type, *itype;
    char q[AGENT_QUOTE_MAX], msg[AGENT_QUOTE_MAX + 64];

    set_buf(errbuf, len, "");
    if (!reply || !xmpp_stanza_is_tag(reply)) {
        set_buf(errbuf, len, "no reply");
        return -1;
    }
    priv = find_child(reply, "privilege", STANZA_NS_PRIVILEGE);
    fwd = priv ? find_child(priv, "forwarded", STANZA_NS_FORWARD) : NULL;
    if (fwd)
        inner = find_child(fwd, "iq", NULL);
    type = xmpp_stanza_get_type(reply);
    itype = inner ? xmpp_stanza_get_type(inner) : NULL;

    if (type && strcmp(type, "result") == 0) {
        if (!inner || (itype && strcmp(itype, "result") == 0))
            return 0;
        if (itype && strcmp(itype, "error") == 0)
            return describe_error(inner, errbuf, len);
        snprintf(msg, sizeof msg, "wrapped reply has unexpected iq type %s", agent_quote(q, itype));
        set_buf(errbuf, len, msg); /* cut on a character boundary */
        return -1;
    }
    if (type && strcmp(type, "error") == 0) {
        /* the wrapped error is the more specific one when present */
        if (inner && find_child(inner, "error", NULL))
            return describe_error(inner, errbuf, len);
        return describe_error(reply, errbuf, len);
    }
    snprintf(msg, sizeof msg, "reply has unexpected iq type %s", agent_quote(q, type));
    set_buf(errbuf, len, msg);
    return -1;
}

static void copy_perm(char dst[STANZA_PERM_MAX], const char *type)
{
    clean_text(dst, STANZA_PERM_MAX, type ? type : "");
}

int stanza_parse_privileges(const xmpp_stanza_t *message_in, stanza_privileges_t *out)
{
    xmpp_stanza_t *msg = xmpp_compat_mutable(message_in), *priv, *perm, *ns_el;
    const char *access, *type, *ns;
    int version = 2;

    if (!out)
        return -1;
    memset(out, 0, sizeof *out);
    if (!msg || !xmpp_stanza_is_tag(msg))
        return -1;
    priv = find_child(msg, "privilege", STANZA_NS_PRIVILEGE);
    if (!priv) {
        priv = find_child(msg, "privilege", STANZA_NS_PRIVILEGE_1);
        version = 1;
    }
    if (!priv)
        return -1;
    out->found = 1;
    out->version = version;
    ns = xmpp_stanza_get_ns(priv);
    for (perm = xmpp_stanza_get_children(priv); perm; perm = xmpp_stanza_get_next(perm)) {
        if (!xmpp_stanza_is_tag(perm) || !xmpp_stanza_get_name(perm) ||
            strcmp(xmpp_stanza_get_name(perm), "perm") != 0 || !in_ns(perm, ns, ns))
            continue;
        access = xmpp_stanza_get_attribute(perm, "access");
        type = xmpp_stanza_get_type(perm);
        if (!access)
            continue;
        if (strcmp(access, "roster") == 0) {
            copy_perm(out->roster, type);
        } else if (strcmp(access, "message") == 0) {
            copy_perm(out->message, type);
        } else if (strcmp(access, "presence") == 0) {
            copy_perm(out->presence, type);
        } else if (strcmp(access, "iq") == 0 && version == 2) {
            for (ns_el = xmpp_stanza_get_children(perm); ns_el;
                 ns_el = xmpp_stanza_get_next(ns_el)) {
                const char *n = xmpp_stanza_is_tag(ns_el) ? xmpp_stanza_get_name(ns_el) : NULL;
                const char *pns, *ptype;

                if (!n || strcmp(n, "namespace") != 0)
                    continue;
                pns = xmpp_stanza_get_attribute(ns_el, "ns");
                ptype = xmpp_stanza_get_type(ns_el);
                if (!pns || !ptype || strcmp(pns, STANZA_NS_PUBSUB) != 0)
                    continue;
                if (strcmp(ptype, "get") == 0 || strcmp(ptype, "both") == 0)
                    out->pubsub_get = 1;
                if (strcmp(ptype, "set") == 0 || strcmp(ptype, "both") == 0)
                    out->pubsub_set = 1;
            }
        }
    }
    return 0;
}

char *stanza_text_privileged_publish(xmpp_ctx_t *ctx, const char *component_jid,
                                     const char *user_bare_jid, const char *outer_id,
                                     const char *inner_id, const char *payload, size_t payload_len,
                                     size_t *len)
{
    static const char placeholder[] = "<user_shares xmlns=\"" SHARES_NS "\"/>";
    static const char head[] = "<user_shares";
    xmpp_stanza_t *empty, *iq;
    char *env = NULL, *at, *out = NULL;
    size_t env_len = 0, pre, post;

    *len = 0;
    if (!payload || payload_len < sizeof head - 1 || memcmp(payload, head, sizeof head - 1) != 0)
        return NULL;
    empty = new_element(ctx, "user_shares");
    if (!empty || xmpp_stanza_set_ns(empty, SHARES_NS) != XMPP_EOK) {
        if (empty)
            xmpp_stanza_release(empty);
        return NULL;
    }
    iq = stanza_build_privileged_publish(ctx, component_jid, user_bare_jid, outer_id, inner_id,
                                         empty);
    if (!iq)
        return NULL;
    if (xmpp_stanza_to_text(iq, &env, &env_len) != XMPP_EOK)
        goto out;
    /* Attribute values are escaped, so the placeholder occurs once. */
    at = strstr(env, placeholder);
    if (!at || strstr(at + 1, placeholder))
        goto out;
    pre = (size_t)(at - env);
    post = env_len - pre - (sizeof placeholder - 1);
    out = malloc(pre + payload_len + post + 1);
    if (!out)
        goto out;
    memcpy(out, env, pre);
    memcpy(out + pre, payload, payload_len);
    memcpy(out + pre + payload_len, at + sizeof placeholder - 1, post);
    out[pre + payload_len + post] = '\0';
    *len = pre + payload_len + post;
out:
    if (env)
        xmpp_free(ctx, env);
    xmpp_stanza_release(iq);
    return out;
}
