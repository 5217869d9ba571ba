/* SPDX-License-Identifier: MIT */
/*
 * String-keyed hash map (separate chaining, FNV-1a, doubling at load 1).
 * Keys are copied; values are borrowed pointers the caller owns.
 */
#ifndef BITWEEN_COMMON_STRMAP_H
#define BITWEEN_COMMON_STRMAP_H

#include <stddef.h>

typedef struct strmap strmap_t;

/** New empty map, or NULL on allocation failure. */
strmap_t *strmap_new(void) __attribute__((warn_unused_result));

/** Free the map and its key copies (not the values); NULL is a no-op. */
void strmap_free(strmap_t *map);

/** Value for `key`, or NULL. */
void *strmap_get(const strmap_t *map, const char *key);

/** Set `key` to `value` (replacing). Returns 0 or -1 on allocation failure. */
int strmap_put(strmap_t *map, const char *key, void *value);

/** Remove `key`; returns its value or NULL. */
void *strmap_del(strmap_t *map, const char *key);

size_t strmap_count(const strmap_t *map);

/**
 * Call `fn(key, value, arg)` for every entry; `fn` must not modify the map.
 * Key is borrowed for the duration of the call.
 */
void strmap_each(const strmap_t *map, void (*fn)(const char *key, void *value, void *arg),
                 void *arg);

#endif /* BITWEEN_COMMON_STRMAP_H */
