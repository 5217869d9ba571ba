/* SPDX-License-Identifier: MIT */
/*
 * The share registry on PostgreSQL (libpq): per-resource state of every
 * user (shares and addresses, guarded by a sequence number), the merged
 * state of a user in one round trip, look-ups for operators (who shares a
 * hash, search by name, paginated listings, counts) and the record of what
 * was last published. Every query is a prepared statement; every write is
 * one statement (a server-side function), hence atomic and one round trip.
 *
 * A store_t owns one connection and is not thread-safe: use one per thread.
 * Calls block, bounded by the connect and statement timeouts. A lost
 * connection is re-established on the next call; while the database is
 * unreachable calls fail with STORE_EUNAVAIL and change nothing that was
 * not committed.
 */
#ifndef BITWEEN_STORAGE_STORE_H
#define BITWEEN_STORAGE_STORE_H

#include <stddef.h>
#include <stdint.h>

#include "shares.h"

/* Error codes (negative return values). */
enum {
    STORE_OK = 0,
    STORE_EUNAVAIL = -1,  /* database unreachable or overloaded: retry later.
                             For a write the outcome may be unknown; every
                             write is idempotent, so retry it as is. */
    STORE_ESTALE = -2,    /* older sequence number than stored: nothing changed */
    STORE_EINVAL = -3,    /* refused by validation or a database constraint */
    STORE_ELIMIT = -4,    /* over a quota (resources, shares, addresses) */
    STORE_ENOTFOUND = -5, /* no such user / resource */
    STORE_ENOMEM = -6,    /* allocation failed */
    STORE_ESCHEMA = -7,   /* schema missing or newer than this binary */
    STORE_EINTERNAL = -8  /* unexpected database error (a bug): see message */
};

#define STORE_ERROR_TEXT 512

/** Error detail: `code` as returned, SQLSTATE when the server sent one.
 * `stored_seq`, only meaningful with STORE_ESTALE: the sequence number the
 * resource holds, read right after the refusal (one more round trip, on
 * that path only); -1 when it could not be read (the resource was removed
 * meanwhile, or the database failed). The store's calls set it to -1 with
 * every other code. */
typedef struct store_error {
    int code;
    char sqlstate[6];
    char message[STORE_ERROR_TEXT];
    int64_t stored_seq;
} store_error_t;

/** Name of an error code ("unavailable", "stale", ...). Static string. */
const char *store_strerror(int code);

typedef struct store_options {
    unsigned connect_timeout_s;    /* default 5 */
    unsigned statement_timeout_ms; /* default 10000 */
    const char *application_name;  /* default "bitween"; copied */
} store_options_t;

typedef struct store store_t;

/**
 * New store for `conninfo` (a libpq URL or key=value string; copied).
 * Does not connect: the first call (or store_connect()) does.
 * Returns NULL on allocation failure. Free with store_free().
 */
store_t *store_new(const char *conninfo, const store_options_t *opts)
    __attribute__((warn_unused_result));

/** Close the connection and free; NULL is a no-op. */
void store_free(store_t *st);

/** Connect now if not connected. STORE_EUNAVAIL if the server is away. */
int store_connect(store_t *st, store_error_t *err);

/** Whether the connection is currently up (no round trip). */
int store_connected(const store_t *st);

/** Round trip to check the database answers (readiness). */
int store_ping(store_t *st, store_error_t *err);

/**
 * Apply missing migrations (see migrate.h). STORE_ESCHEMA when the
 * database is newer than this binary. `*version` (may be NULL) receives
 * the schema version reached.
 */
int store_migrate(store_t *st, int *version, store_error_t *err);

/** Caps checked inside the write's transaction; 0 means unlimited. */
typedef struct store_quota {
    uint32_t max_resources; /* per user */
    uint32_t max_shares;    /* per resource */
    uint32_t max_addresses; /* per resource */
} store_quota_t;

/**
 * Replace the whole state (shares and addresses) of resource `resource`
 * of user `jid` (bare JID) with resource `ri` of `item`, creating user and
 * resource as needed. Applied only if `seq` is at least the stored
 * sequence number (an equal one re-applies: retries are idempotent);
 * otherwise STORE_ESTALE and nothing changes (err->stored_seq says what
 * is stored). Whole or nothing.
 */
int store_resource_replace(store_t *st, const char *jid, const char *resource, int64_t seq,
                           const shares_item_t *item, size_t ri, const store_quota_t *quota,
                           store_error_t *err);

/**
 * Add (or update by hash) the shares of resource `ri` of `item` to a
 * registered resource; addresses in `item` are ignored. STORE_ENOTFOUND
 * when the resource is not registered, STORE_ESTALE for an older `seq`,
 * STORE_ELIMIT when the resource would exceed max_shares.
 */
int store_shares_add(store_t *st, const char *jid, const char *resource, int64_t seq,
                     const shares_item_t *item, size_t ri, const store_quota_t *quota,
                     store_error_t *err);

/**
 * Remove the shares with the given hashes (40 or 64 hex digits) from a
 * registered resource; unknown hashes are ignored. Errors as
 * store_shares_add().
 */
int store_shares_remove(store_t *st, const char *jid, const char *resource, int64_t seq,
                        const char *const *hashes, size_t n_hashes, store_error_t *err);

/** Remove one resource and its state. STORE_ENOTFOUND if not registered. */
int store_resource_remove(store_t *st, const char *jid, const char *resource, store_error_t *err);

/** Remove every resource of `jid`; `*removed` (may be NULL) gets the count. */
int store_user_remove_resources(store_t *st, const char *jid, size_t *removed, store_error_t *err);

/** Mark a resource as seen now (an answered ping). STORE_ENOTFOUND if gone. */
int store_resource_touch(store_t *st, const char *jid, const char *resource, store_error_t *err);

/**
 * Load the merged state of `jid`: every registered resource with its
 * shares and addresses, in one round trip, into a new item (no limits
 * applied) stored in `*out`, which the caller frees with shares_item_free().
 * A user without resources gives an empty item, not an error.
 */
int store_user_load(store_t *st, const char *jid, shares_item_t **out, store_error_t *err);

/* ---- look-ups ------------------------------------------------------------ */

/** An address of a resource. */
typedef struct store_address {
    char address[SHARES_ADDR_MAX];
    uint16_t port;
} store_address_t;

/** One share held by one resource, with that resource's addresses. */
typedef struct store_hit {
    char *jid;
    char *resource;
    char hash[SHARES_HASH_MAX];
    char *name;
    uint64_t size;
    int64_t resource_id; /* for cursors */
    store_address_t *addresses;
    size_t n_addresses;
} store_hit_t;

typedef struct store_hits {
    store_hit_t *v;
    size_t n;
} store_hits_t;

/** Free the contents of `hits` (not the struct itself); NULL is a no-op. */
void store_hits_free(store_hits_t *hits);

/**
 * Who shares `hash` (40 or 64 hex digits, any case): at most `limit` hits
 * ordered by user and resource, into `*out` (caller frees with
 * store_hits_free()). STORE_EINVAL for a malformed hash.
 */
int store_hash_lookup(store_t *st, const char *hash, size_t limit, store_hits_t *out,
                      store_error_t *err);

/** Keyset cursor of a name search: the last hit of the previous page. */
typedef struct store_search_cursor {
    const char *name;
    int64_t resource_id;
    const char *hash;
} store_search_cursor_t;

/**
 * Shares whose name contains `needle` (case-insensitive substring, at least
 * one character; LIKE wildcards in it match literally), ordered by name,
 * at most `limit`, after `after` (NULL: first page).
 */
int store_name_search(store_t *st, const char *needle, const store_search_cursor_t *after,
                      size_t limit, store_hits_t *out, store_error_t *err);

/** A user in a listing. */
typedef struct store_user {
    char *jid;
    uint32_t n_resources;
    uint32_t n_shares;
} store_user_t;

typedef struct store_users {
    store_user_t *v;
    size_t n;
} store_users_t;

void store_users_free(store_users_t *users);

/** Users (with at least one resource) ordered by JID, after `after_jid`
 *  (NULL: from the start), at most `limit`. */
int store_users_list(store_t *st, const char *after_jid, size_t limit, store_users_t *out,
                     store_error_t *err);

/** A resource in a listing. Times are ISO 8601 UTC. */
typedef struct store_resource {
    char *jid;
    char *resource;
    int64_t seq;
    uint32_t n_shares;
    uint32_t n_addresses;
    char registered_at[40];
    char last_seen[40];
} store_resource_t;

typedef struct store_resources {
    store_resource_t *v;
    size_t n;
} store_resources_t;

void store_resources_free(store_resources_t *resources);

/**
 * Resources ordered by (jid, resource), after the pair (`after_jid`,
 * `after_resource`) (both NULL: from the start), at most `limit`; with
 * `only_jid` non-NULL, only that user's.
 */
int store_resources_list(store_t *st, const char *only_jid, const char *after_jid,
                         const char *after_resource, size_t limit, store_resources_t *out,
                         store_error_t *err);

/** Counts for statistics. */
typedef struct store_stats {
    int64_t users; /* with at least one resource */
    int64_t resources;
    int64_t shares;
    int64_t addresses;
    int64_t distinct_hashes;
} store_stats_t;

int store_stats(store_t *st, store_stats_t *out, store_error_t *err);

/* ---- publish record -------------------------------------------------------- */

typedef enum store_publish_status { STORE_PUBLISH_OK, STORE_PUBLISH_ERROR } store_publish_status_t;

typedef struct store_publish {
    char digest[SHARES_DIGEST_HEX];
    store_publish_status_t status;
    char error[256]; /* cut to fit at a UTF-8 character boundary */
    char published_at[40];
} store_publish_t;

/**
 * Record the outcome of publishing `jid`'s item with `digest` (64 hex);
 * `error` (may be NULL) is the server's error for STORE_PUBLISH_ERROR.
 * Committed asynchronously (synchronous_commit off for this transaction):
 * a record lost in a crash only causes one redundant publish.
 */
int store_publish_record(store_t *st, const char *jid, const char *digest,
                         store_publish_status_t status, const char *error, store_error_t *err);

/** Read the last publish record of `jid`; STORE_ENOTFOUND if none. */
int store_publish_get(store_t *st, const char *jid, store_publish_t *out, store_error_t *err);

#endif /* BITWEEN_STORAGE_STORE_H */
