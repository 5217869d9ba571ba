/* SPDX-License-Identifier: MIT */
/*
 * What contacts share, from their merged items (PEP notifications, which
 * may come twice and may be empty). Items are untrusted input: kept only
 * for the user's roster contacts whose presence the user receives (anyone
 * can send a headline), parsed and validated with the component's own
 * wire-format code (common/shares.c), and bounded per contact (resources,
 * shares, bytes) and in number of contacts. An index by hash answers "who
 * shares this" without a scan. Pure: no I/O.
 */
#ifndef BITWEEN_AGENT_CONTACTS_H
#define BITWEEN_AGENT_CONTACTS_H

#include <stddef.h>

#include <strophe.h>

#include "shares.h"

typedef struct contacts contacts_t;

typedef struct contacts_limits {
    size_t max_contacts;
    size_t max_resources;   /* per contact */
    size_t max_shares;      /* per contact, all resources together */
    size_t max_item_bytes;  /* per contact, as the item's XML */
    size_t max_total_bytes; /* all contacts' items together; 0: no bound */
} contacts_limits_t;

/** Outcome of contacts_update(). */
enum {
    CONTACTS_CHANGED = 1,  /* the contact's view changed */
    CONTACTS_SAME = 0,     /* the same item again */
    CONTACTS_EFORBID = -1, /* not a contact whose presence we receive */
    CONTACTS_EINVAL = -2,  /* malformed or over a bound: `err` says which */
    CONTACTS_ENOMEM = -3,
    CONTACTS_ELIMIT = -4, /* max_contacts items, or max_total_bytes, kept already */
};

/** New empty model (limits copied). NULL when out of memory. */
contacts_t *contacts_new(const contacts_limits_t *lim) __attribute__((warn_unused_result));

void contacts_free(contacts_t *c);

/**
 * The roster says `bare` (a bare JID) is (`subscribed` 1) or is no longer
 * (0) a contact whose presence the user receives (subscription "to" or
 * "both"). A contact that is no longer one loses its item. Returns 1 when
 * a kept item was dropped, 0 otherwise, -1 when out of memory.
 */
int contacts_roster_set(contacts_t *c, const char *bare, int subscribed);

/** Forget the roster (a new one is about to be read); items stay until
 * contacts_roster_done() drops those of JIDs not set again. */
void contacts_roster_begin(contacts_t *c);
/** Returns the number of items dropped. */
size_t contacts_roster_done(contacts_t *c);

/**
 * `bare`'s item is now `user_shares` (a <user_shares/> element; NULL:
 * retracted, the contact shares nothing). Whole or nothing: a refused
 * item leaves the previous one.
 */
int contacts_update(contacts_t *c, const char *bare, const xmpp_stanza_t *user_shares,
                    shares_error_t *err);

/** Contacts with an item, in the order of their JIDs. */
size_t contacts_count(const contacts_t *c);
/** The i-th contact's JID and item (borrowed until the next change), or
 * -1 when out of range. */
int contacts_get(const contacts_t *c, size_t i, const char **bare, const shares_item_t **item);

/** One source of a hash. */
typedef struct contacts_source {
    const char *bare;
    const shares_item_t *item;
    size_t resource; /* index in item */
    size_t share;    /* index of the share in that resource */
} contacts_source_t;

/**
 * The sources of `hash` (40 or 64 lowercase hex): up to `max` into `out`;
 * returns how many there are in all.
 */
size_t contacts_sources(const contacts_t *c, const char *hash, contacts_source_t *out, size_t max);

/** Every distinct hash, through `fn(arg, hash)`, in no particular order. */
void contacts_each_hash(const contacts_t *c, void (*fn)(void *arg, const char *hash), void *arg);

#endif /* BITWEEN_AGENT_CONTACTS_H */
