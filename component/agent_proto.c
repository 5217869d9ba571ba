/* SPDX-License-Identifier: MIT */
/*
 * Parser of the agent protocol (urn:bitween:agent:1). An incoming <iq/> is
 * checked envelope first (one child element, our namespace, type set), then
 * sender (a full JID of a served domain: the only source of user and
 * resource), then payload (request element, seq, children, values,
 * per-resource limits). Values are validated by common/shares.c, so the
 * component refuses exactly what the merged item could not carry; its
 * SHARES_EINVAL / SHARES_ELIMIT / SHARES_ENOMEM become not-acceptable /
 * policy-violation / internal-server-error. Missing attributes and
 * misplaced elements are structure errors (bad-request), found before any
 * value is looked at. Every error text names the element, attribute and
 * (quoted, escaped) value at fault.
 */
#include "agent_proto.h"
#include "xmpp_compat.h"

#include "utf8.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Bytes of a quoted value shown in an error text, before "...". */
#define QUOTE_BUDGET 40

/* RFC 7622: each part of a JID is at most 1023 bytes. */
#define JID_PART_MAX 1023

/* ---- errors ---------------------------------------------------------- */

const char *agent_error_type(agent_errcode_t code)
{
    switch (code) {
    case AGENT_ERR_BAD_REQUEST:
    case AGENT_ERR_NOT_ACCEPTABLE:
    case AGENT_ERR_POLICY:
        return "modify";
    case AGENT_ERR_FORBIDDEN:
        return "auth";
    case AGENT_ERR_UNAVAILABLE:
    case AGENT_ERR_BUSY:
        return "wait";
    case AGENT_ERR_CONFLICT:
    case AGENT_ERR_NOT_ALLOWED:
    case AGENT_ERR_NOT_FOUND:
    case AGENT_ERR_SERVICE_UNAVAILABLE:
    case AGENT_ERR_INTERNAL:
    case AGENT_ERR_NONE:
        break;
    }
    return "cancel";
}

const char *agent_error_condition(agent_errcode_t code)
{
    switch (code) {
    case AGENT_ERR_BAD_REQUEST:
        return "bad-request";
    case AGENT_ERR_NOT_ACCEPTABLE:
        return "not-acceptable";
    case AGENT_ERR_POLICY:
        return "policy-violation";
    case AGENT_ERR_FORBIDDEN:
        return "forbidden";
    case AGENT_ERR_CONFLICT:
        return "conflict";
    case AGENT_ERR_NOT_FOUND:
        return "item-not-found";
    case AGENT_ERR_UNAVAILABLE:
    case AGENT_ERR_INTERNAL:
        return "internal-server-error";
    case AGENT_ERR_SERVICE_UNAVAILABLE:
        return "service-unavailable";
    case AGENT_ERR_BUSY:
        return "resource-constraint";
    case AGENT_ERR_NOT_ALLOWED:
        return "not-allowed";
    case AGENT_ERR_NONE:
        break;
    }
    return "undefined-condition";
}

const char *agent_op_name(agent_op_t op)
{
    switch (op) {
    case AGENT_OP_REGISTER:
        return "register";
    case AGENT_OP_ADD:
        return "add";
    case AGENT_OP_REMOVE:
        return "remove";
    case AGENT_OP_UNREGISTER:
        return "unregister";
    }
    return NULL;
}

int agent_error_set(agent_error_t *err, agent_errcode_t code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return -1;
    err->code = code;
    err->stored_seq = -1;
    va_start(ap, fmt);
    vsnprintf(err->text, sizeof err->text, fmt, ap);
    va_end(ap);
    utf8_trim_tail(err->text);
    return -1;
}

int agent_error_stale(agent_error_t *err, int64_t seq, int64_t stored, const char *resource)
{
    char q[AGENT_QUOTE_MAX];

    if (stored < 0)
        return agent_error_set(err, AGENT_ERR_CONFLICT,
                               "seq %" PRId64 " is older than the stored seq of resource %s", seq,
                               agent_quote(q, resource));
    agent_error_set(err, AGENT_ERR_CONFLICT,
                    "seq %" PRId64 " is older than the stored seq %" PRId64 " of resource %s", seq,
                    stored, agent_quote(q, resource));
    if (err)
        err->stored_seq = stored;
    return -1;
}

static agent_errcode_t map_shares_code(int code)
{
    switch (code) {
    case SHARES_EINVAL:
        return AGENT_ERR_NOT_ACCEPTABLE;
    case SHARES_ELIMIT:
        return AGENT_ERR_POLICY;
    default:
        return AGENT_ERR_INTERNAL;
    }
}

/* Turn a shares error into ours, prefixed with the request element. */
static int shares_failed(agent_error_t *err, const char *op, const shares_error_t *se)
{
    return agent_error_set(err, map_shares_code(se->code), "%s: %s", op, se->message);
}

const char *agent_quote(char out[AGENT_QUOTE_MAX], const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, n, i;
    uint32_t cp;
    int utf8_ok;

    if (!s) {
        memcpy(out, "(none)", sizeof "(none)");
        return out;
    }
    /* The shares validator accepts exactly valid UTF-8 without control
     * characters; anything else is shown byte by byte. */
    utf8_ok = *s && shares_validate_name(s, 0, NULL) == SHARES_OK;
    out[o++] = '"';
    while (*p) {
        if (*p == '"' || *p == '\\') {
            if (o + 2 > QUOTE_BUDGET)
                break;
            out[o++] = '\\';
            out[o++] = (char)*p++;
        } else if (*p >= 0x20 && *p < 0x7F) {
            if (o + 1 > QUOTE_BUDGET)
                break;
            out[o++] = (char)*p++;
        } else if (utf8_ok && *p >= 0xC0) {
            n = *p >= 0xF0 ? 4 : *p >= 0xE0 ? 3 : 2;
            cp = utf8_code_point(p, (int)n);
            if (utf8_hidden_name(cp)) { /* shown, not obeyed */
                if (o + (cp > 0xFFFF ? 10 : 6) > QUOTE_BUDGET)
                    break;
                o += (size_t)snprintf(out + o, 11, cp > 0xFFFF ? "\\U%08" PRIX32 : "\\u%04" PRIX32,
                                      cp);
                p += n;
                continue;
            }
            if (o + n > QUOTE_BUDGET)
                break;
            for (i = 0; i < n; i++)
                out[o++] = (char)*p++;
        } else {
            if (o + 4 > QUOTE_BUDGET)
                break;
            o += (size_t)snprintf(out + o, 5, "\\x%02X", *p++);
        }
    }
    out[o++] = '"';
    if (*p) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
    return out;
}

/* ---- requests -------------------------------------------------------- */

void agent_request_clear(agent_request_t *req)
{
    size_t i;

    if (!req)
        return;
    free(req->jid);
    free(req->resource);
    shares_item_free(req->item);
    if (req->hashes) {
        for (i = 0; i < req->n_hashes; i++)
            free(req->hashes[i]);
        free(req->hashes);
    }
    memset(req, 0, sizeof *req);
    req->seq = -1;
}

static int ascii_lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

/* Whether the `len` bytes at `a` equal the string `b`, ASCII case
 * ignored (locale-independent). */
static int domain_equal(const char *a, size_t len, const char *b)
{
    size_t i;

    for (i = 0; i < len; i++)
        if (!b[i] || ascii_lower((unsigned char)a[i]) != ascii_lower((unsigned char)b[i]))
            return 0;
    return b[len] == '\0';
}

static char *dup_range(const char *s, size_t len)
{
    char *d = malloc(len + 1);

    if (d) {
        memcpy(d, s, len);
        d[len] = '\0';
    }
    return d;
}

/* Split `from` (node@domain/resource; the resource is everything after the
 * first '/', '/' and '@' included) into out->jid and out->resource. */
static int parse_from(const char *from, const char *const *served, const shares_limits_t *lim,
                      agent_request_t *out, agent_error_t *err)
{
    const char *slash, *at, *domain;
    size_t node_len, domain_len, i;
    shares_error_t se = {0};
    char q[AGENT_QUOTE_MAX], *jid;
    int rc;

    if (!from || !*from)
        return agent_error_set(err, AGENT_ERR_FORBIDDEN, "iq has no 'from' attribute");
    slash = strchr(from, '/');
    if (!slash || !slash[1])
        return agent_error_set(err, AGENT_ERR_FORBIDDEN,
                               "from %s has no resource: agent requests must come from a "
                               "full JID (user@domain/resource)",
                               agent_quote(q, from));
    at = memchr(from, '@', (size_t)(slash - from));
    if (!at || at == from)
        return agent_error_set(err, AGENT_ERR_FORBIDDEN,
                               "from %s has no user part: only users' agents may register",
                               agent_quote(q, from));
    node_len = (size_t)(at - from);
    domain = at + 1;
    domain_len = (size_t)(slash - domain);
    /* RFC 7622 3.2: a trailing dot is not part of the domain */
    if (domain_len > 0 && domain[domain_len - 1] == '.')
        domain_len--;
    if (node_len > JID_PART_MAX || domain_len == 0 || domain_len > JID_PART_MAX)
        return agent_error_set(err, AGENT_ERR_FORBIDDEN, "from %s is not a valid JID",
                               agent_quote(q, from));
    for (i = 0; served && served[i]; i++)
        if (domain_equal(domain, domain_len, served[i]))
            break;
    if (!served || !served[i]) {
        char *d = dup_range(domain, domain_len);

        if (!d)
            return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
        agent_error_set(err, AGENT_ERR_FORBIDDEN, "domain %s is not served by this component",
                        agent_quote(q, d));
        free(d);
        return -1;
    }
    rc = shares_validate_resource(slash + 1, lim->max_resource_bytes, &se);
    if (rc)
        return agent_error_set(err, map_shares_code(rc), "from: %s", se.message);

    jid = malloc(node_len + 1 + domain_len + 1);
    if (!jid)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    memcpy(jid, from, node_len);
    jid[node_len] = '@';
    for (i = 0; i < domain_len; i++)
        jid[node_len + 1 + i] = (char)ascii_lower((unsigned char)domain[i]);
    jid[node_len + 1 + domain_len] = '\0';
    /* The node is the server's (stringprep'd already); only make sure it
     * is text an error message or the database can carry. */
    if (shares_validate_name(jid, 0, NULL) != SHARES_OK) {
        free(jid);
        return agent_error_set(err, AGENT_ERR_FORBIDDEN, "from %s is not a valid JID",
                               agent_quote(q, from));
    }
    out->jid = jid;
    out->resource = dup_range(slash + 1, strlen(slash + 1));
    if (!out->resource)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    return 0;
}

/* seq: decimal digits only (leading zeros allowed), 0..INT64_MAX. */
static int parse_seq(const char *op, const char *text, int64_t *out, agent_error_t *err)
{
    char q[AGENT_QUOTE_MAX];
    uint64_t v = 0;
    const char *p;
    unsigned d;

    if (!text)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                               "%s: missing attribute 'seq' (a decimal sequence number that "
                               "grows with every update of the resource)",
                               op);
    if (!*text)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST, "%s seq is empty", op);
    for (p = text; *p; p++) {
        if (*p < '0' || *p > '9')
            return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                   "%s seq %s is not a decimal number (digits 0-9 only)", op,
                                   agent_quote(q, text));
        d = (unsigned)(*p - '0');
        if (v > ((uint64_t)INT64_MAX - d) / 10)
            return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                   "%s seq %s is over the maximum of %" PRId64, op,
                                   agent_quote(q, text), INT64_MAX);
        v = v * 10 + d;
    }
    *out = (int64_t)v;
    return 0;
}

/* The namespace `el` is in: its own, or (without an xmlns of its own, as
 * agents are told to send them) its parent's. */
static const char *effective_ns(xmpp_stanza_t *el, const char *parent_ns)
{
    const char *ns = xmpp_stanza_get_ns(el);

    return ns ? ns : parent_ns;
}

/* A child element this protocol reads: in AGENT_NS or in SHARES_NS. */
static int is_ours(xmpp_stanza_t *el)
{
    const char *ns;

    if (!xmpp_stanza_is_tag(el))
        return 0;
    ns = effective_ns(el, AGENT_NS);
    return ns && (strcmp(ns, AGENT_NS) == 0 || strcmp(ns, SHARES_NS) == 0);
}

static int name_is(xmpp_stanza_t *el, const char *name)
{
    const char *n = xmpp_stanza_get_name(el);

    return n && strcmp(n, name) == 0;
}

/* Structure of the children, before any value is looked at: only
 * share_item (and, in register, ip_address) in our namespaces, each with
 * its required attributes. Elements in other namespaces are ignored (XMPP
 * extensibility). Counts the share_item children. */
static int check_children(agent_op_t op, xmpp_stanza_t *payload, size_t *n_shares,
                          agent_error_t *err)
{
    static const char *const share_attrs[] = {"hash", "name", "size"};
    static const char *const addr_attrs[] = {"address", "port"};
    const char *opname = agent_op_name(op);
    size_t nth_share = 0, nth_addr = 0, i, n_attrs;
    char q[AGENT_QUOTE_MAX];
    xmpp_stanza_t *child;

    for (child = xmpp_stanza_get_children(payload); child; child = xmpp_stanza_get_next(child)) {
        if (!is_ours(child))
            continue;
        if (name_is(child, "share_item")) {
            nth_share++;
            n_attrs = op == AGENT_OP_REMOVE ? 1 : 3;
            for (i = 0; i < n_attrs; i++)
                if (!xmpp_stanza_get_attribute(child, share_attrs[i]))
                    return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                           "%s, share_item #%zu: missing attribute '%s'", opname,
                                           nth_share, share_attrs[i]);
        } else if (name_is(child, "ip_address")) {
            nth_addr++;
            if (op != AGENT_OP_REGISTER)
                return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                       "%s: ip_address is not allowed here; addresses change "
                                       "only through register",
                                       opname);
            for (i = 0; i < 2; i++)
                if (!xmpp_stanza_get_attribute(child, addr_attrs[i]))
                    return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                           "%s, ip_address #%zu: missing attribute '%s'", opname,
                                           nth_addr, addr_attrs[i]);
        } else {
            return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                                   "%s: unknown element %s; expected share_item%s", opname,
                                   agent_quote(q, xmpp_stanza_get_name(child)),
                                   op == AGENT_OP_REGISTER ? " or ip_address" : "");
        }
    }
    if (nth_share == 0 && (op == AGENT_OP_ADD || op == AGENT_OP_REMOVE))
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST, "%s needs at least one share_item",
                               opname);
    *n_shares = nth_share;
    return 0;
}

/* register/add: one resource holding the children, validated by the
 * shares module with the per-resource limits. */
static int parse_item(agent_op_t op, xmpp_stanza_t *payload, const shares_limits_t *lim,
                      agent_request_t *out, agent_error_t *err)
{
    const char *opname = agent_op_name(op);
    shares_error_t se = {0};
    size_t ri = 0;
    int rc;

    out->item = shares_item_new(lim);
    if (!out->item)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    rc = shares_item_add_resource(out->item, out->resource, &ri, &se);
    if (rc)
        return shares_failed(err, opname, &se);
    /* Children without xmlns inherit AGENT_NS; those that declare
     * SHARES_NS are taken too. The two passes see disjoint children. */
    rc = shares_item_parse_resource_children(out->item, ri, payload, AGENT_NS, &se);
    if (rc == SHARES_OK)
        rc = shares_item_parse_resource_children(out->item, ri, payload, SHARES_NS, &se);
    if (rc)
        return shares_failed(err, opname, &se);
    return 0;
}

/* register/add, once the values passed: what contacts would be shown.
 * The resource and every name must be free of invisible formatting
 * characters, every address one a contact can use. The resource is
 * screened here, not with the sender, so that a resource registered
 * before this screening can still remove and unregister. Children are
 * numbered in document order, as in the other errors. */
static int screen_payload(agent_op_t op, xmpp_stanza_t *payload, const shares_limits_t *lim,
                          const agent_request_t *out, agent_error_t *err)
{
    const char *opname = agent_op_name(op);
    size_t nth_share = 0, nth_addr = 0;
    shares_error_t se = {0};
    char q[AGENT_QUOTE_MAX];
    xmpp_stanza_t *child;

    if (shares_screen_resource(out->resource, &se) != SHARES_OK)
        return agent_error_set(err, AGENT_ERR_NOT_ACCEPTABLE, "%s: %s", opname, se.message);
    for (child = xmpp_stanza_get_children(payload); child; child = xmpp_stanza_get_next(child)) {
        if (!is_ours(child))
            continue;
        if (name_is(child, "share_item")) {
            nth_share++;
            if (shares_screen_name(xmpp_stanza_get_attribute(child, "name"), &se) != SHARES_OK)
                return agent_error_set(err, AGENT_ERR_NOT_ACCEPTABLE,
                                       "%s: resource %s, share_item #%zu: %s", opname,
                                       agent_quote(q, out->resource), nth_share, se.message);
        } else if (name_is(child, "ip_address")) {
            nth_addr++;
            if (shares_screen_address(xmpp_stanza_get_attribute(child, "address"),
                                      lim->allow_loopback, &se) != SHARES_OK)
                return agent_error_set(err, AGENT_ERR_NOT_ACCEPTABLE,
                                       "%s: resource %s, ip_address #%zu: %s", opname,
                                       agent_quote(q, out->resource), nth_addr, se.message);
        }
    }
    return 0;
}

static int cmp_string_ptr(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* remove: the hashes, validated, lowercased, without duplicates. */
static int parse_hashes(xmpp_stanza_t *payload, size_t n, const shares_limits_t *lim,
                        agent_request_t *out, agent_error_t *err)
{
    shares_error_t se = {0};
    xmpp_stanza_t *child;
    const char *hash;
    char **sorted = NULL, *h;
    size_t i, len;
    int rc = -1;

    if (n == 0) /* check_children() already refused it */
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST, "remove needs at least one share_item");
    if (lim->max_shares && n > lim->max_shares)
        return agent_error_set(err, AGENT_ERR_POLICY,
                               "remove lists %zu share_item elements; the limit is %zu per "
                               "request",
                               n, lim->max_shares);
    out->hashes = calloc(n, sizeof *out->hashes);
    if (!out->hashes)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    for (child = xmpp_stanza_get_children(payload); child; child = xmpp_stanza_get_next(child)) {
        if (!is_ours(child) || !name_is(child, "share_item"))
            continue;
        hash = xmpp_stanza_get_attribute(child, "hash");
        if (shares_validate_hash(hash, &se) != SHARES_OK)
            return agent_error_set(err, AGENT_ERR_NOT_ACCEPTABLE, "remove, share_item #%zu: %s",
                                   out->n_hashes + 1, se.message);
        len = strlen(hash);
        h = malloc(len + 1);
        if (!h)
            return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
        for (i = 0; i <= len; i++)
            h[i] = (char)ascii_lower((unsigned char)hash[i]);
        out->hashes[out->n_hashes++] = h;
    }
    /* Duplicates: a sorted copy of the pointers, neighbours compared. */
    sorted = malloc(out->n_hashes * sizeof *sorted);
    if (!sorted)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    memcpy(sorted, out->hashes, out->n_hashes * sizeof *sorted);
    qsort(sorted, out->n_hashes, sizeof *sorted, cmp_string_ptr);
    for (i = 1; i < out->n_hashes; i++) {
        if (strcmp(sorted[i - 1], sorted[i]) == 0) {
            agent_error_set(err, AGENT_ERR_NOT_ACCEPTABLE,
                            "remove: duplicate share_item hash \"%s\"", sorted[i]);
            goto out;
        }
    }
    rc = 0;

out:
    free(sorted);
    return rc;
}

static int parse_op(xmpp_stanza_t *payload, agent_op_t *op, agent_error_t *err)
{
    static const agent_op_t ops[] = {AGENT_OP_REGISTER, AGENT_OP_ADD, AGENT_OP_REMOVE,
                                     AGENT_OP_UNREGISTER};
    char q[AGENT_QUOTE_MAX];
    size_t i;

    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        if (name_is(payload, agent_op_name(ops[i]))) {
            *op = ops[i];
            return 0;
        }
    }
    return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                           "unknown request element %s in " AGENT_NS
                           "; expected register, add, remove or unregister",
                           agent_quote(q, xmpp_stanza_get_name(payload)));
}

/* The envelope: an <iq type='set'/> with exactly one child element, in
 * AGENT_NS. */
static int check_envelope(xmpp_stanza_t *iq, xmpp_stanza_t **payload, agent_error_t *err)
{
    xmpp_stanza_t *child, *first = NULL;
    const char *ns, *type, *name;
    char q[AGENT_QUOTE_MAX], q2[AGENT_QUOTE_MAX];
    size_t n = 0;

    name = iq && xmpp_stanza_is_tag(iq) ? xmpp_stanza_get_name(iq) : NULL;
    if (!name || strcmp(name, "iq") != 0)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST, "not an iq stanza");
    for (child = xmpp_stanza_get_children(iq); child; child = xmpp_stanza_get_next(child)) {
        if (!xmpp_stanza_is_tag(child))
            continue;
        if (!first)
            first = child;
        n++;
    }
    if (n == 0)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                               "iq has no child element; expected register, add, remove or "
                               "unregister in " AGENT_NS);
    if (n > 1)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                               "iq has %zu child elements; exactly one is allowed", n);
    ns = xmpp_stanza_get_ns(first);
    if (!ns || strcmp(ns, AGENT_NS) != 0)
        return agent_error_set(err, AGENT_ERR_SERVICE_UNAVAILABLE,
                               "element %s in namespace %s is not supported by this service",
                               agent_quote(q, xmpp_stanza_get_name(first)), agent_quote(q2, ns));
    type = xmpp_stanza_get_type(iq);
    if (!type || strcmp(type, "set") != 0)
        return agent_error_set(err, AGENT_ERR_BAD_REQUEST,
                               "iq type %s is not allowed; agent requests use type 'set'",
                               agent_quote(q, type));
    *payload = first;
    return 0;
}

int agent_request_parse(const xmpp_stanza_t *iq_in, const char *const *served_domains,
                        const shares_limits_t *lim, agent_request_t *out, agent_error_t *err)
{
    xmpp_stanza_t *iq = xmpp_compat_mutable(iq_in), *payload = NULL;
    shares_limits_t deflim;
    size_t n_shares = 0;
    int rc;

    if (err) {
        err->code = AGENT_ERR_NONE;
        err->text[0] = '\0';
        err->stored_seq = -1;
    }
    if (!out)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "no output request");
    memset(out, 0, sizeof *out);
    out->seq = -1;
    if (!lim) {
        shares_limits_default(&deflim);
        lim = &deflim;
    }

    rc = check_envelope(iq, &payload, err);
    if (rc == 0)
        rc = parse_from(xmpp_stanza_get_from(iq), served_domains, lim, out, err);
    if (rc == 0)
        rc = parse_op(payload, &out->op, err);
    if (rc == 0 && out->op != AGENT_OP_UNREGISTER)
        rc = parse_seq(agent_op_name(out->op), xmpp_stanza_get_attribute(payload, "seq"), &out->seq,
                       err);
    /* unregister: seq and children are ignored */
    if (rc == 0 && out->op != AGENT_OP_UNREGISTER)
        rc = check_children(out->op, payload, &n_shares, err);
    if (rc == 0 && (out->op == AGENT_OP_REGISTER || out->op == AGENT_OP_ADD))
        rc = parse_item(out->op, payload, lim, out, err);
    if (rc == 0 && (out->op == AGENT_OP_REGISTER || out->op == AGENT_OP_ADD))
        rc = screen_payload(out->op, payload, lim, out, err);
    if (rc == 0 && out->op == AGENT_OP_REMOVE)
        rc = parse_hashes(payload, n_shares, lim, out, err);
    if (rc) {
        agent_request_clear(out);
        return -1;
    }
    return 0;
}
