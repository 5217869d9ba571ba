/* SPDX-License-Identifier: MIT */
/* String-keyed hash map (see strmap.h). */
#include "strmap.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

typedef struct strmap_entry {
    struct strmap_entry *next;
    uint32_t hash;
    void *value;
    char key[];
} strmap_entry_t;

struct strmap {
    strmap_entry_t **buckets;
    size_t n_buckets, count;
};

static uint32_t strmap_hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

strmap_t *strmap_new(void)
{
    strmap_t *m = calloc(1, sizeof *m);
    if (!m)
        return NULL;
    m->n_buckets = 64;
    m->buckets = calloc(m->n_buckets, sizeof *m->buckets);
    if (!m->buckets) {
        free(m);
        return NULL;
    }
    return m;
}

void strmap_free(strmap_t *m)
{
    size_t i;
    if (!m)
        return;
    for (i = 0; i < m->n_buckets; i++) {
        strmap_entry_t *e = m->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            free(e);
        }
    }
    free(m->buckets);
    free(m);
}

static strmap_entry_t **strmap_slot(const strmap_t *m, const char *key, uint32_t h)
{
    strmap_entry_t **p = &m->buckets[h & (m->n_buckets - 1)];
    for (; *p; p = &(*p)->next)
        if ((*p)->hash == h && strcmp((*p)->key, key) == 0)
            break;
    return p;
}

void *strmap_get(const strmap_t *m, const char *key)
{
    strmap_entry_t *e = *strmap_slot(m, key, strmap_hash(key));
    return e ? e->value : NULL;
}

static void strmap_grow(strmap_t *m)
{
    size_t n = m->n_buckets * 2, i;
    strmap_entry_t **b = calloc(n, sizeof *b);
    if (!b)
        return; /* stay at the current size: slower, still correct */
    for (i = 0; i < m->n_buckets; i++) {
        strmap_entry_t *e = m->buckets[i], *next;
        for (; e; e = next) {
            next = e->next;
            e->next = b[e->hash & (n - 1)];
            b[e->hash & (n - 1)] = e;
        }
    }
    free(m->buckets);
    m->buckets = b;
    m->n_buckets = n;
}

int strmap_put(strmap_t *m, const char *key, void *value)
{
    uint32_t h = strmap_hash(key);
    strmap_entry_t **slot = strmap_slot(m, key, h), *e;
    size_t len;

    if (*slot) {
        (*slot)->value = value;
        return 0;
    }
    len = strlen(key) + 1;
    e = malloc(sizeof *e + len);
    if (!e)
        return -1;
    e->hash = h;
    e->value = value;
    memcpy(e->key, key, len);
    e->next = NULL;
    *slot = e;
    if (++m->count > m->n_buckets)
        strmap_grow(m);
    return 0;
}

void *strmap_del(strmap_t *m, const char *key)
{
    strmap_entry_t **slot = strmap_slot(m, key, strmap_hash(key)), *e = *slot;
    void *v;
    if (!e)
        return NULL;
    *slot = e->next;
    v = e->value;
    free(e);
    m->count--;
    return v;
}

size_t strmap_count(const strmap_t *m)
{
    return m->count;
}

void strmap_each(const strmap_t *m, void (*fn)(const char *, void *, void *), void *arg)
{
    size_t i;
    for (i = 0; i < m->n_buckets; i++) {
        const strmap_entry_t *e;
        for (e = m->buckets[i]; e; e = e->next)
            fn(e->key, e->value, arg);
    }
}
