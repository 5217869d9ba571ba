/* SPDX-License-Identifier: MIT */
/* Users' merged states, least recently used first out (see statecache.h). */
#include "statecache.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "strmap.h"

typedef struct entry {
    char *jid;
    shares_item_t *item;
    size_t bytes;
    struct entry *prev, *next; /* prev: more recently used */
} entry_t;

struct statecache {
    pthread_mutex_t lock;
    strmap_t *map;        /* jid -> entry_t */
    entry_t *head, *tail; /* most, least recently used */
    size_t bytes, max_bytes;
    unsigned long long hits, misses, evictions;
};

statecache_t *statecache_new(size_t max_bytes)
{
    statecache_t *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->map = strmap_new();
    if (!c->map || pthread_mutex_init(&c->lock, NULL) != 0) {
        strmap_free(c->map);
        free(c);
        return NULL;
    }
    c->max_bytes = max_bytes;
    return c;
}

static void unlink_entry(statecache_t *c, entry_t *e)
{
    if (e->prev)
        e->prev->next = e->next;
    else
        c->head = e->next;
    if (e->next)
        e->next->prev = e->prev;
    else
        c->tail = e->prev;
    e->prev = e->next = NULL;
    c->bytes -= e->bytes;
}

static void entry_free(entry_t *e)
{
    shares_item_free(e->item);
    free(e->jid);
    free(e);
}

/* Unlink and free the entry of `jid`; the lock is held. */
static void drop_locked(statecache_t *c, const char *jid)
{
    entry_t *e = strmap_del(c->map, jid);
    if (e) {
        unlink_entry(c, e);
        entry_free(e);
    }
}

void statecache_free(statecache_t *cache)
{
    if (!cache)
        return;
    statecache_clear(cache);
    strmap_free(cache->map);
    pthread_mutex_destroy(&cache->lock);
    free(cache);
}

shares_item_t *statecache_take(statecache_t *cache, const char *jid, size_t *bytes)
{
    shares_item_t *item = NULL;
    entry_t *e;
    pthread_mutex_lock(&cache->lock);
    e = strmap_del(cache->map, jid);
    if (e) {
        unlink_entry(cache, e);
        item = e->item;
        e->item = NULL;
        if (bytes)
            *bytes = e->bytes - (sizeof *e + strlen(e->jid) + 1);
        entry_free(e);
        cache->hits++;
    } else {
        cache->misses++;
    }
    pthread_mutex_unlock(&cache->lock);
    return item;
}

void statecache_put(statecache_t *cache, const char *jid, shares_item_t *item, size_t bytes)
{
    entry_t *e;
    size_t len = strlen(jid);

    bytes += sizeof *e + len + 1;
    pthread_mutex_lock(&cache->lock);
    drop_locked(cache, jid);
    if (bytes > cache->max_bytes || !(e = calloc(1, sizeof *e)))
        goto refuse;
    e->jid = malloc(len + 1);
    if (!e->jid || strmap_put(cache->map, jid, e) != 0) {
        free(e->jid);
        free(e);
        goto refuse;
    }
    memcpy(e->jid, jid, len + 1);
    e->item = item;
    e->bytes = bytes;
    e->next = cache->head;
    if (cache->head)
        cache->head->prev = e;
    cache->head = e;
    if (!cache->tail)
        cache->tail = e;
    cache->bytes += bytes;
    while (cache->bytes > cache->max_bytes && cache->tail != e) {
        entry_t *old = cache->tail;
        strmap_del(cache->map, old->jid);
        unlink_entry(cache, old);
        entry_free(old);
        cache->evictions++;
    }
    pthread_mutex_unlock(&cache->lock);
    return;
refuse:
    pthread_mutex_unlock(&cache->lock);
    shares_item_free(item);
}

void statecache_drop(statecache_t *cache, const char *jid)
{
    pthread_mutex_lock(&cache->lock);
    drop_locked(cache, jid);
    pthread_mutex_unlock(&cache->lock);
}

void statecache_clear(statecache_t *cache)
{
    pthread_mutex_lock(&cache->lock);
    while (cache->head) {
        entry_t *e = cache->head;
        strmap_del(cache->map, e->jid);
        unlink_entry(cache, e);
        entry_free(e);
    }
    pthread_mutex_unlock(&cache->lock);
}

void statecache_stats(statecache_t *cache, statecache_stats_t *out)
{
    pthread_mutex_lock(&cache->lock);
    out->entries = strmap_count(cache->map);
    out->bytes = cache->bytes;
    out->max_bytes = cache->max_bytes;
    out->hits = cache->hits;
    out->misses = cache->misses;
    out->evictions = cache->evictions;
    pthread_mutex_unlock(&cache->lock);
}
