/* SPDX-License-Identifier: MIT */
/* Contacts' merged items: roster-gated, bounded, indexed by hash. */
#include "contacts.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

typedef struct contact {
    char *bare;
    shares_item_t *item; /* NULL: none (or an empty one) */
    char digest[SHARES_DIGEST_HEX];
    size_t bytes; /* the item's XML size */
    int subscribed;
    int in_roster; /* set again by the roster being read */
} contact_t;

/* Where a hash is shared: one entry per (contact, resource, share), so
 * that the sources of a hash are found without scanning items. */
typedef struct ref {
    contact_t *ct;
    size_t ri, si;
} ref_t;

typedef struct refs {
    ref_t *v;
    size_t n, cap;
} refs_t;

struct contacts {
    contacts_limits_t lim;
    strmap_t *by_jid;   /* bare -> contact_t */
    strmap_t *by_hash;  /* hash -> refs_t */
    contact_t **sorted; /* contacts with an item, by JID */
    size_t n_sorted, cap_sorted;
    size_t total_bytes; /* of all items kept */
};

contacts_t *contacts_new(const contacts_limits_t *lim)
{
    contacts_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->lim = *lim;
    if (!(c->by_jid = strmap_new()) || !(c->by_hash = strmap_new())) {
        strmap_free(c->by_jid);
        free(c);
        return NULL;
    }
    return c;
}

static void free_contact(const char *key, void *value, void *arg)
{
    contact_t *ct = value;
    (void)key;
    (void)arg;
    shares_item_free(ct->item);
    free(ct->bare);
    free(ct);
}

static void free_refs(const char *key, void *value, void *arg)
{
    refs_t *r = value;
    (void)key;
    (void)arg;
    free(r->v);
    free(r);
}

void contacts_free(contacts_t *c)
{
    if (!c)
        return;
    strmap_each(c->by_jid, free_contact, NULL);
    strmap_each(c->by_hash, free_refs, NULL);
    strmap_free(c->by_jid);
    strmap_free(c->by_hash);
    free(c->sorted);
    free(c);
}

/* ---- the hash index ------------------------------------------------------ */

static void unindex(contacts_t *c, contact_t *ct)
{
    size_t ri, si;
    for (ri = 0; ct->item && ri < shares_item_resource_count(ct->item); ri++)
        for (si = 0; si < shares_item_share_count(ct->item, ri); si++) {
            shares_share_t sh;
            refs_t *r;
            size_t k = 0;
            if (shares_item_share(ct->item, ri, si, &sh) != 0 ||
                !(r = strmap_get(c->by_hash, sh.hash)))
                continue;
            while (k < r->n) {
                if (r->v[k].ct == ct)
                    r->v[k] = r->v[--r->n];
                else
                    k++;
            }
            if (r->n == 0)
                free_refs(NULL, strmap_del(c->by_hash, sh.hash), NULL);
        }
}

static int index_item(contacts_t *c, contact_t *ct)
{
    size_t ri, si;
    for (ri = 0; ct->item && ri < shares_item_resource_count(ct->item); ri++)
        for (si = 0; si < shares_item_share_count(ct->item, ri); si++) {
            shares_share_t sh;
            refs_t *r;
            if (shares_item_share(ct->item, ri, si, &sh) != 0)
                continue;
            if (!(r = strmap_get(c->by_hash, sh.hash))) {
                if (!(r = calloc(1, sizeof *r)) || strmap_put(c->by_hash, sh.hash, r) != 0) {
                    free(r);
                    return -1;
                }
            }
            if (r->n == r->cap) {
                size_t cap = r->cap ? r->cap * 2 : 2;
                ref_t *v = realloc(r->v, cap * sizeof *v);
                if (!v)
                    return -1;
                r->v = v;
                r->cap = cap;
            }
            r->v[r->n].ct = ct;
            r->v[r->n].ri = ri;
            r->v[r->n].si = si;
            r->n++;
        }
    return 0;
}

/* ---- the sorted list ------------------------------------------------------ */

static size_t sorted_pos(const contacts_t *c, const char *bare, int *found)
{
    size_t lo = 0, hi = c->n_sorted;
    *found = 0;
    while (lo < hi) {
        size_t mid = (lo + hi) / 2;
        int cmp = strcmp(c->sorted[mid]->bare, bare);
        if (cmp == 0) {
            *found = 1;
            return mid;
        }
        if (cmp < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

static int sorted_insert(contacts_t *c, contact_t *ct)
{
    int found;
    size_t at = sorted_pos(c, ct->bare, &found);
    if (found)
        return 0;
    if (c->n_sorted == c->cap_sorted) {
        size_t cap = c->cap_sorted ? c->cap_sorted * 2 : 16;
        contact_t **v = realloc(c->sorted, cap * sizeof *v);
        if (!v)
            return -1;
        c->sorted = v;
        c->cap_sorted = cap;
    }
    memmove(c->sorted + at + 1, c->sorted + at, (c->n_sorted - at) * sizeof *c->sorted);
    c->sorted[at] = ct;
    c->n_sorted++;
    return 0;
}

static void sorted_remove(contacts_t *c, const contact_t *ct)
{
    int found;
    size_t at = sorted_pos(c, ct->bare, &found);
    if (!found)
        return;
    memmove(c->sorted + at, c->sorted + at + 1, (c->n_sorted - at - 1) * sizeof *c->sorted);
    c->n_sorted--;
}

/* ---- roster --------------------------------------------------------------- */

static int drop_item(contacts_t *c, contact_t *ct)
{
    if (!ct->item)
        return 0;
    unindex(c, ct);
    sorted_remove(c, ct);
    shares_item_free(ct->item);
    ct->item = NULL;
    ct->digest[0] = '\0';
    c->total_bytes -= ct->bytes;
    ct->bytes = 0;
    return 1;
}

static contact_t *get_or_add(contacts_t *c, const char *bare)
{
    contact_t *ct = strmap_get(c->by_jid, bare);
    if (ct)
        return ct;
    if (strmap_count(c->by_jid) >= c->lim.max_contacts)
        return NULL;
    if (!(ct = calloc(1, sizeof *ct)) || !(ct->bare = strdup(bare)) ||
        strmap_put(c->by_jid, bare, ct) != 0) {
        if (ct)
            free(ct->bare);
        free(ct);
        return NULL;
    }
    return ct;
}

int contacts_roster_set(contacts_t *c, const char *bare, int subscribed)
{
    contact_t *ct = strmap_get(c->by_jid, bare);
    int dropped = 0;
    if (!subscribed) {
        if (!ct)
            return 0;
        dropped = drop_item(c, ct);
        free_contact(NULL, strmap_del(c->by_jid, bare), NULL);
        return dropped;
    }
    if (!(ct = get_or_add(c, bare)))
        return -1;
    ct->subscribed = 1;
    ct->in_roster = 1;
    return 0;
}

static void clear_seen(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    ((contact_t *)value)->in_roster = 0;
}

void contacts_roster_begin(contacts_t *c)
{
    strmap_each(c->by_jid, clear_seen, NULL);
}

typedef struct gone {
    char **v;
    size_t n, cap;
    int oom;
} gone_t;

static void collect_gone(const char *key, void *value, void *arg)
{
    gone_t *g = arg;
    (void)key;
    if (((contact_t *)value)->in_roster || g->oom)
        return;
    if (g->n == g->cap) {
        size_t cap = g->cap ? g->cap * 2 : 16;
        char **v = realloc(g->v, cap * sizeof *v);
        if (!v) {
            g->oom = 1;
            return;
        }
        g->v = v;
        g->cap = cap;
    }
    g->v[g->n++] = ((contact_t *)value)->bare;
}

size_t contacts_roster_done(contacts_t *c)
{
    gone_t g = {NULL, 0, 0, 0};
    size_t i, dropped = 0;
    char *bare;
    strmap_each(c->by_jid, collect_gone, &g);
    for (i = 0; i < g.n; i++) {
        /* the key belongs to the contact: copy it before freeing */
        if (!(bare = strdup(g.v[i])))
            break;
        dropped += (size_t)contacts_roster_set(c, bare, 0);
        free(bare);
    }
    free(g.v);
    return dropped;
}

/* ---- items ---------------------------------------------------------------- */

int contacts_update(contacts_t *c, const char *bare, const xmpp_stanza_t *user_shares,
                    shares_error_t *err)
{
    contact_t *ct = strmap_get(c->by_jid, bare);
    shares_limits_t lim;
    shares_item_t *item = NULL;
    shares_size_t size;
    char digest[SHARES_DIGEST_HEX];
    size_t ri, total = 0;

    if (!ct || !ct->subscribed) {
        if (err) {
            err->code = SHARES_EINVAL;
            snprintf(err->message, sizeof err->message, "not a contact whose presence we receive");
        }
        return CONTACTS_EFORBID;
    }
    if (!user_shares)
        return drop_item(c, ct) ? CONTACTS_CHANGED : CONTACTS_SAME;
    memset(&lim, 0, sizeof lim);
    lim.max_resources = c->lim.max_resources;
    lim.max_shares = c->lim.max_shares;
    lim.max_item_bytes = c->lim.max_item_bytes;
    lim.max_addresses = 64;
    lim.max_name_bytes = 4096;
    lim.max_resource_bytes = 1023;
    if (shares_item_parse(user_shares, &lim, &item, err) != SHARES_OK)
        return err && err->code == SHARES_ENOMEM ? CONTACTS_ENOMEM : CONTACTS_EINVAL;
    for (ri = 0; ri < shares_item_resource_count(item); ri++)
        total += shares_item_share_count(item, ri);
    shares_item_size(item, &size);
    if (total > c->lim.max_shares) {
        if (err) {
            err->code = SHARES_ELIMIT;
            snprintf(err->message, sizeof err->message,
                     "%zu shares, over the limit of %zu per contact", total, c->lim.max_shares);
        }
        shares_item_free(item);
        return CONTACTS_EINVAL;
    }
    if (shares_item_digest(item, digest, err) != SHARES_OK) {
        shares_item_free(item);
        return CONTACTS_ENOMEM;
    }
    if (shares_item_resource_count(item) == 0) { /* an empty item: shares nothing */
        shares_item_free(item);
        return drop_item(c, ct) ? CONTACTS_CHANGED : CONTACTS_SAME;
    }
    if (ct->item && strcmp(digest, ct->digest) == 0) {
        shares_item_free(item);
        return CONTACTS_SAME; /* delivered twice (bare and full JID) */
    }
    if ((!ct->item && c->n_sorted >= c->lim.max_contacts) ||
        (c->lim.max_total_bytes &&
         c->total_bytes - ct->bytes + size.xml > c->lim.max_total_bytes)) {
        shares_item_free(item);
        if (err) {
            err->code = SHARES_ELIMIT;
            if (!ct->item && c->n_sorted >= c->lim.max_contacts)
                snprintf(err->message, sizeof err->message,
                         "shares of %zu contacts kept already (max_contacts)", c->lim.max_contacts);
            else
                snprintf(err->message, sizeof err->message,
                         "contacts' items would take more than %zu bytes", c->lim.max_total_bytes);
        }
        return CONTACTS_ELIMIT;
    }
    if (ct->item)
        unindex(c, ct);
    shares_item_free(ct->item);
    ct->item = item;
    c->total_bytes += size.xml - ct->bytes;
    ct->bytes = size.xml;
    memcpy(ct->digest, digest, sizeof digest);
    if (sorted_insert(c, ct) != 0 || index_item(c, ct) != 0) {
        drop_item(c, ct);
        return CONTACTS_ENOMEM;
    }
    return CONTACTS_CHANGED;
}

size_t contacts_count(const contacts_t *c)
{
    return c->n_sorted;
}

int contacts_get(const contacts_t *c, size_t i, const char **bare, const shares_item_t **item)
{
    if (i >= c->n_sorted)
        return -1;
    *bare = c->sorted[i]->bare;
    *item = c->sorted[i]->item;
    return 0;
}

size_t contacts_sources(const contacts_t *c, const char *hash, contacts_source_t *out, size_t max)
{
    const refs_t *r = strmap_get(c->by_hash, hash);
    size_t k;
    for (k = 0; r && k < r->n && k < max; k++) {
        out[k].bare = r->v[k].ct->bare;
        out[k].item = r->v[k].ct->item;
        out[k].resource = r->v[k].ri;
        out[k].share = r->v[k].si;
    }
    return r ? r->n : 0;
}

typedef struct each_hash {
    void (*fn)(void *arg, const char *hash);
    void *arg;
} each_hash_t;

static void each_hash_cb(const char *key, void *value, void *arg)
{
    each_hash_t *e = arg;
    (void)value;
    e->fn(e->arg, key);
}

void contacts_each_hash(const contacts_t *c, void (*fn)(void *arg, const char *hash), void *arg)
{
    each_hash_t e = {fn, arg};
    strmap_each(c->by_hash, each_hash_cb, &e);
}
