/* SPDX-License-Identifier: MIT */
/* What this device announces: quotas, safe names, payloads. */
#include "announce.h"

#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "shares.h"
#include "utf8.h"

#define REPLACEMENT "\xEF\xBF\xBD" /* U+FFFD */
#define ELLIPSIS    "\xE2\x80\xA6" /* U+2026 */

void announce_quota_default(announce_quota_t *q)
{
    /* bitween-component's defaults (deploy/bitween-component.conf.sample) */
    q->max_shares = 500;
    q->max_addresses = 8;
    q->max_name_bytes = 255;
    q->max_item_bytes = 65536;
}

const char *announce_text_of(xmpp_stanza_t *el)
{
    xmpp_stanza_t *t = el ? xmpp_stanza_get_children(el) : NULL;
    return t && xmpp_stanza_is_text(t) ? xmpp_stanza_get_text_ptr(t) : NULL;
}

static const char *field_value(xmpp_stanza_t *field)
{
    return announce_text_of(xmpp_stanza_get_child_by_name(field, "value"));
}

int announce_quota_parse(const xmpp_stanza_t *query_c, announce_quota_t *q)
{
    static const struct {
        const char *var;
        size_t off;
    } known[] = {
        {"max_shares_per_resource", offsetof(announce_quota_t, max_shares)},
        {"max_addresses_per_resource", offsetof(announce_quota_t, max_addresses)},
        {"max_name_bytes", offsetof(announce_quota_t, max_name_bytes)},
        {"max_item_bytes", offsetof(announce_quota_t, max_item_bytes)},
    };
    xmpp_stanza_t *query, *x, *f;
    int n = 0;

    memcpy(&query, &query_c, sizeof query); /* libstrophe getters are not const */
    for (x = query ? xmpp_stanza_get_children(query) : NULL; x; x = xmpp_stanza_get_next(x)) {
        const char *ns = xmpp_stanza_get_ns(x), *name = xmpp_stanza_get_name(x), *type;
        int ours = 0;
        if (!name || strcmp(name, "x") != 0 || !ns || strcmp(ns, "jabber:x:data") != 0)
            continue;
        type = xmpp_stanza_get_type(x);
        if (type && strcmp(type, "result") != 0)
            continue;
        for (f = xmpp_stanza_get_children(x); f; f = xmpp_stanza_get_next(f)) {
            const char *var = xmpp_stanza_get_attribute(f, "var"), *v = field_value(f);
            if (var && strcmp(var, "FORM_TYPE") == 0 && v && strcmp(v, AGENT_QUOTAS_FORM) == 0)
                ours = 1;
        }
        if (!ours)
            continue;
        for (f = xmpp_stanza_get_children(x); f; f = xmpp_stanza_get_next(f)) {
            const char *var = xmpp_stanza_get_attribute(f, "var"), *v = field_value(f);
            size_t i;
            char *end;
            unsigned long long val;
            if (!var || !v || !*v || *v == '-')
                continue;
            val = strtoull(v, &end, 10);
            if (*end || val == 0 || val > SIZE_MAX / 2)
                continue;
            for (i = 0; i < sizeof known / sizeof known[0]; i++)
                if (strcmp(var, known[i].var) == 0) {
                    *(size_t *)((char *)q + known[i].off) = (size_t)val;
                    n++;
                }
        }
    }
    return n;
}

/* ---- names ---------------------------------------------------------------- */

static int shown_safely(uint32_t cp)
{
    if (cp < 0x20 || (cp >= 0x7F && cp <= 0x9F) || cp == 0xFFFE || cp == 0xFFFF)
        return 0;
    return utf8_hidden_name(cp) == NULL;
}

char *announce_name(const char *name, size_t max_bytes)
{
    size_t in_len = strlen(name), cap = in_len * 3 + 8, o = 0, i = 0;
    char *out = malloc(cap);

    if (!out)
        return NULL;
    while (i < in_len) {
        const unsigned char *s = (const unsigned char *)name + i;
        int len = utf8_seq(s, in_len - i);
        size_t tag = len == 4 ? utf8_emoji_tag_sequence(name + i) : 0;
        if (tag) { /* a flag: its tag characters are part of it */
            memcpy(out + o, name + i, tag);
            o += tag;
            i += tag;
        } else if (len > 0 && shown_safely(utf8_code_point(s, len))) {
            memcpy(out + o, s, (size_t)len);
            o += (size_t)len;
            i += (size_t)len;
        } else {
            memcpy(out + o, REPLACEMENT, 3);
            o += 3;
            i += len > 0 ? (size_t)len : 1;
        }
    }
    out[o] = '\0';
    if (o == 0) {
        memcpy(out, REPLACEMENT, 4);
        o = 3;
    }
    if (max_bytes && o > max_bytes) {
        size_t keep = max_bytes > 3 ? max_bytes - 3 : 0;
        out[keep] = '\0';
        utf8_trim_tail(out);
        if (max_bytes >= 3)
            strcat(out, ELLIPSIS);
        else
            utf8_trim_tail(out);
    }
    return out;
}

/* ---- fitting -------------------------------------------------------------- */

void announce_set_clear(announce_set_t *set)
{
    size_t i;
    for (i = 0; i < set->n_shares; i++)
        free(set->shares[i].name);
    free(set->shares);
    free(set->over);
    memset(set, 0, sizeof *set);
}

int announce_fit(const announce_share_t *cand, size_t n, const announce_addr_t *addrs, size_t na,
                 const char *resource, const announce_quota_t *q, announce_set_t *out)
{
    shares_limits_t lim;
    shares_item_t *item;
    size_t ri, i;

    memset(out, 0, sizeof *out);
    memset(&lim, 0, sizeof lim);
    lim.max_resources = 1;
    lim.max_shares = q->max_shares;
    lim.max_addresses = q->max_addresses;
    lim.max_name_bytes = q->max_name_bytes;
    lim.max_item_bytes = q->max_item_bytes;
    if (!(item = shares_item_new(&lim)))
        return -1;
    if (shares_item_add_resource(item, resource, &ri, NULL) != SHARES_OK) {
        /* a resource the item cannot carry: announce nothing */
        out->n_over_quota = n;
        shares_item_free(item);
        return 0;
    }
    for (i = 0; i < na && out->n_addrs < ANNOUNCE_MAX_ADDRESSES; i++)
        if (shares_item_add_address(item, ri, addrs[i].address, addrs[i].port, NULL) == SHARES_OK)
            out->addrs[out->n_addrs++] = addrs[i];
    if (n && !(out->shares = calloc(n, sizeof *out->shares))) {
        shares_item_free(item);
        return -1;
    }
    for (i = 0; i < n; i++) {
        char *name = announce_name(cand[i].name, q->max_name_bytes);
        shares_error_t err;
        int rc;
        if (!name) {
            announce_set_clear(out);
            shares_item_free(item);
            return -1;
        }
        rc = shares_item_add_share(item, ri, cand[i].hash, name, cand[i].size, &err);
        if (rc == SHARES_ENOMEM) {
            free(name);
            announce_set_clear(out);
            shares_item_free(item);
            return -1;
        }
        if (rc != SHARES_OK) {
            free(name);
            if (rc == SHARES_ELIMIT) {
                size_t k;
                out->n_over_quota = n - i;
                if (!(out->over = calloc(n - i, sizeof *out->over))) {
                    announce_set_clear(out);
                    shares_item_free(item);
                    return -1;
                }
                for (k = i; k < n; k++)
                    snprintf(out->over[k - i], 41, "%s", cand[k].hash);
                break;
            }
            continue; /* a duplicate hash: announced once */
        }
        snprintf(out->shares[out->n_shares].hash, 41, "%s", cand[i].hash);
        out->shares[out->n_shares].name = name;
        out->shares[out->n_shares].size = cand[i].size;
        out->n_shares++;
    }
    shares_item_free(item);
    return 0;
}

int announce_set_copy(announce_set_t *dst, const announce_set_t *src)
{
    size_t i;
    memset(dst, 0, sizeof *dst);
    memcpy(dst->addrs, src->addrs, sizeof dst->addrs);
    dst->n_addrs = src->n_addrs;
    if (src->n_over_quota) {
        if (!(dst->over = calloc(src->n_over_quota, sizeof *dst->over)))
            return -1;
        memcpy(dst->over, src->over, src->n_over_quota * sizeof *dst->over);
        dst->n_over_quota = src->n_over_quota;
    }
    if (src->n_shares && !(dst->shares = calloc(src->n_shares, sizeof *dst->shares)))
        return -1;
    for (i = 0; i < src->n_shares; i++) {
        dst->shares[i] = src->shares[i];
        if (!(dst->shares[i].name = strdup(src->shares[i].name))) {
            announce_set_clear(dst);
            return -1;
        }
        dst->n_shares = i + 1;
    }
    return 0;
}

static int has_addr(const announce_set_t *s, const announce_addr_t *a)
{
    size_t i;
    for (i = 0; i < s->n_addrs; i++)
        if (s->addrs[i].port == a->port && strcmp(s->addrs[i].address, a->address) == 0)
            return 1;
    return 0;
}

int announce_same_addresses(const announce_set_t *a, const announce_set_t *b)
{
    size_t i;
    if (a->n_addrs != b->n_addrs)
        return 0;
    for (i = 0; i < a->n_addrs; i++)
        if (!has_addr(b, &a->addrs[i]))
            return 0;
    return 1;
}

/* ---- payloads ------------------------------------------------------------- */

static xmpp_stanza_t *request(xmpp_ctx_t *ctx, const char *name, uint64_t seq)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);
    char text[24];
    if (!el)
        return NULL;
    snprintf(text, sizeof text, "%" PRIu64, seq);
    if (xmpp_stanza_set_name(el, name) != XMPP_EOK ||
        xmpp_stanza_set_ns(el, AGENT_NS) != XMPP_EOK ||
        xmpp_stanza_set_attribute(el, "seq", text) != XMPP_EOK) {
        xmpp_stanza_release(el);
        return NULL;
    }
    return el;
}

static int add_share(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const struct announced *sh,
                     int hash_only)
{
    xmpp_stanza_t *c = xmpp_stanza_new(ctx);
    char size[24];
    int rc;
    if (!c)
        return -1;
    snprintf(size, sizeof size, "%" PRIu64, sh->size);
    rc = xmpp_stanza_set_name(c, "share_item") == XMPP_EOK &&
                 xmpp_stanza_set_attribute(c, "hash", sh->hash) == XMPP_EOK &&
                 (hash_only || (xmpp_stanza_set_attribute(c, "name", sh->name) == XMPP_EOK &&
                                xmpp_stanza_set_attribute(c, "size", size) == XMPP_EOK)) &&
                 xmpp_stanza_add_child(parent, c) == XMPP_EOK
             ? 0
             : -1;
    xmpp_stanza_release(c);
    return rc;
}

static int add_addr(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const announce_addr_t *a)
{
    xmpp_stanza_t *c = xmpp_stanza_new(ctx);
    char port[8];
    int rc;
    if (!c)
        return -1;
    snprintf(port, sizeof port, "%u", (unsigned)a->port);
    rc = xmpp_stanza_set_name(c, "ip_address") == XMPP_EOK &&
                 xmpp_stanza_set_attribute(c, "address", a->address) == XMPP_EOK &&
                 xmpp_stanza_set_attribute(c, "port", port) == XMPP_EOK &&
                 xmpp_stanza_add_child(parent, c) == XMPP_EOK
             ? 0
             : -1;
    xmpp_stanza_release(c);
    return rc;
}

xmpp_stanza_t *announce_build_register(xmpp_ctx_t *ctx, const announce_set_t *set, uint64_t seq)
{
    xmpp_stanza_t *el = request(ctx, "register", seq);
    size_t i;
    for (i = 0; el && i < set->n_shares; i++)
        if (add_share(ctx, el, &set->shares[i], 0) != 0) {
            xmpp_stanza_release(el);
            return NULL;
        }
    for (i = 0; el && i < set->n_addrs; i++)
        if (add_addr(ctx, el, &set->addrs[i]) != 0) {
            xmpp_stanza_release(el);
            return NULL;
        }
    return el;
}

static const struct announced *find_share(const announce_set_t *s, const char *hash)
{
    size_t i;
    for (i = 0; i < s->n_shares; i++)
        if (strcmp(s->shares[i].hash, hash) == 0)
            return &s->shares[i];
    return NULL;
}

static xmpp_stanza_t *build_diff(xmpp_ctx_t *ctx, const announce_set_t *from,
                                 const announce_set_t *against, int adding, uint64_t seq, int *oom)
{
    xmpp_stanza_t *el = NULL;
    size_t i;
    *oom = 0;
    for (i = 0; i < from->n_shares; i++) {
        const struct announced *sh = &from->shares[i], *other = find_share(against, sh->hash);
        if (other && (!adding || (other->size == sh->size && strcmp(other->name, sh->name) == 0)))
            continue;
        if (!el && !(el = request(ctx, adding ? "add" : "remove", seq))) {
            *oom = 1;
            return NULL;
        }
        if (add_share(ctx, el, sh, !adding) != 0) {
            xmpp_stanza_release(el);
            *oom = 1;
            return NULL;
        }
    }
    return el;
}

xmpp_stanza_t *announce_build_add(xmpp_ctx_t *ctx, const announce_set_t *before,
                                  const announce_set_t *now, uint64_t seq, int *oom)
{
    return build_diff(ctx, now, before, 1, seq, oom);
}

xmpp_stanza_t *announce_build_remove(xmpp_ctx_t *ctx, const announce_set_t *before,
                                     const announce_set_t *now, uint64_t seq, int *oom)
{
    return build_diff(ctx, before, now, 0, seq, oom);
}
