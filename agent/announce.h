/* SPDX-License-Identifier: MIT */
/*
 * What this device announces to the component (docs/protocol.md §1): the
 * shares that fit the component's quotas, most recently added first, with
 * names made safe to show, and the addresses contacts can reach; and the
 * <register/>, <add/> and <remove/> payloads that carry them. Pure: no
 * I/O, unit-tested on its own.
 */
#ifndef BITWEEN_AGENT_ANNOUNCE_H
#define BITWEEN_AGENT_ANNOUNCE_H

#include <stddef.h>
#include <stdint.h>

#include <strophe.h>

#define AGENT_NS               "urn:bitween:agent:1"
#define AGENT_QUOTAS_FORM      AGENT_NS "#quotas"
#define ANNOUNCE_MAX_ADDRESSES 64

/** The component's quotas, from its disco#info (XEP-0128 form). */
typedef struct announce_quota {
    size_t max_shares;     /* per resource */
    size_t max_addresses;  /* per resource */
    size_t max_name_bytes; /* of a share name */
    size_t max_item_bytes; /* of the merged item as servers serialize it */
} announce_quota_t;

/** The text inside element `el` (borrowed), or NULL when `el` is NULL or
 * empty: libstrophe's own getter crashes on a NULL child. */
const char *announce_text_of(xmpp_stanza_t *el);

/** The component's defaults, for a component that does not say. */
void announce_quota_default(announce_quota_t *q);

/**
 * Read the quotas form from a disco#info <query/> result; fields missing
 * or malformed keep their value in `q`. Returns the number of fields read.
 */
int announce_quota_parse(const xmpp_stanza_t *query, announce_quota_t *q);

/** A share as the library offers it. */
typedef struct announce_share {
    const char *hash; /* 40 lowercase hex */
    const char *name; /* as on disk: may hold anything a file name can */
    uint64_t size;
    int64_t added_ms;
} announce_share_t;

typedef struct announce_addr {
    char address[46]; /* canonical literal */
    uint16_t port;
} announce_addr_t;

/** What is announced: owned copies. */
typedef struct announce_set {
    struct announced {
        char hash[41];
        char *name; /* made safe: announce_name() */
        uint64_t size;
    } * shares;
    size_t n_shares;
    announce_addr_t addrs[ANNOUNCE_MAX_ADDRESSES];
    size_t n_addrs;
    size_t n_over_quota; /* candidates left out, the oldest ones */
    char (*over)[41];    /* their hashes */
} announce_set_t;

/**
 * A name the component accepts and contacts can read: every byte that is
 * not valid UTF-8, every control character (tab, CR and LF too, which
 * servers would turn into spaces), U+FFFE/U+FFFF and every invisible
 * formatting character (bidirectional controls, zero-width space, tags
 * outside an emoji flag, ...) replaced by U+FFFD; cut at a character
 * boundary to `max_bytes` (0: no limit), ending in U+2026 when cut; an
 * empty result becomes U+FFFD. Returns a malloc'd string, NULL when out of
 * memory.
 */
char *announce_name(const char *name, size_t max_bytes) __attribute__((warn_unused_result));

/**
 * Fit `cand` (`n` shares, newest first: the caller sorts them) and `addrs`
 * into the quotas for resource `resource`: addresses first (at most
 * max_addresses), then shares in order until one would cross a quota; that
 * one and every older one are left out (counted in n_over_quota). `out` is
 * zeroed first; free it with announce_set_clear(). Returns 0, -1 when out
 * of memory.
 */
int announce_fit(const announce_share_t *cand, size_t n, const announce_addr_t *addrs, size_t na,
                 const char *resource, const announce_quota_t *q, announce_set_t *out);

void announce_set_clear(announce_set_t *set);

/** Whether two sets announce the same addresses (in any order). */
int announce_same_addresses(const announce_set_t *a, const announce_set_t *b);

/**
 * The payload of a full <register/> of `set` with `seq`; a new stanza the
 * caller releases, NULL when out of memory.
 */
xmpp_stanza_t *announce_build_register(xmpp_ctx_t *ctx, const announce_set_t *set, uint64_t seq);

/**
 * The <add/> (shares of `now` that `before` lacks, or has with another
 * name or size) or <remove/> (hashes of `before` that `now` lacks)
 * payload; NULL when there is none (or out of memory: `*oom` set).
 */
xmpp_stanza_t *announce_build_add(xmpp_ctx_t *ctx, const announce_set_t *before,
                                  const announce_set_t *now, uint64_t seq, int *oom);
xmpp_stanza_t *announce_build_remove(xmpp_ctx_t *ctx, const announce_set_t *before,
                                     const announce_set_t *now, uint64_t seq, int *oom);

/** Deep copy of `src` into `dst` (cleared first). Returns 0 or -1. */
int announce_set_copy(announce_set_t *dst, const announce_set_t *src);

#endif /* BITWEEN_AGENT_ANNOUNCE_H */
