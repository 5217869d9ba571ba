/* SPDX-License-Identifier: MIT */
/*
 * Cache of users' merged states (the item model of each user's registered
 * resources), so that an agent's update costs one database round trip (the
 * write) instead of two (load, then write). Least recently used entries go
 * when the cache holds more than its byte budget.
 *
 * The database stays the system of record: every write of a user goes
 * through that user's database worker, which takes the user's state out of
 * the cache, applies the update, writes it, and puts the new state back
 * only when the write is known to be committed. Anything uncertain (a lost
 * connection, an unexpected error) leaves the user uncached, and the next
 * job loads the state from the database again.
 *
 * Thread-safe: one mutex guards the map and the list; the database workers
 * share one cache.
 */
#ifndef BITWEEN_COMPONENT_STATECACHE_H
#define BITWEEN_COMPONENT_STATECACHE_H

#include <stddef.h>

#include "shares.h"

typedef struct statecache statecache_t;

/** New empty cache holding at most about `max_bytes` (0: caches nothing). */
statecache_t *statecache_new(size_t max_bytes) __attribute__((warn_unused_result));

/** Free the cache and every state in it; NULL is a no-op. */
void statecache_free(statecache_t *cache);

/**
 * Remove the state of `jid` from the cache and return it (the caller owns
 * it), or NULL when it is not cached. `*bytes` (may be NULL) receives the
 * size it was cached with. Counts a hit or a miss.
 */
shares_item_t *statecache_take(statecache_t *cache, const char *jid, size_t *bytes)
    __attribute__((warn_unused_result));

/**
 * Cache `item` as the state of `jid`, replacing any cached one; ownership
 * of `item` passes to the cache in every case (it is freed when it cannot
 * be cached: out of memory, or larger than the whole budget). `bytes` is
 * its approximate size in memory. Least recently used states are dropped
 * to stay within the budget.
 */
void statecache_put(statecache_t *cache, const char *jid, shares_item_t *item, size_t bytes);

/** Forget the state of `jid`, if cached. */
void statecache_drop(statecache_t *cache, const char *jid);

/** Forget every state. */
void statecache_clear(statecache_t *cache);

typedef struct statecache_stats {
    size_t entries, bytes, max_bytes;
    unsigned long long hits, misses, evictions;
} statecache_stats_t;

/** Current counts (a consistent snapshot). */
void statecache_stats(statecache_t *cache, statecache_stats_t *out);

#endif /* BITWEEN_COMPONENT_STATECACHE_H */
