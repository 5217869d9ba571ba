/* SPDX-License-Identifier: MIT */
/*
 * The user's shares on this device: paths made into torrents (hashed off
 * the event loop by the BitTorrent session), seeded, and kept in the state
 * directory so that a restart seeds them again without hashing:
 *
 *   <state_dir>/shares/<hash>.torrent   the torrent file
 *   <state_dir>/shares/<hash>.resume    libtorrent's resume data
 *   <state_dir>/shares/<hash>.json      path, time added, and each file's
 *                                       size and modification time
 *
 * At start-up a share whose files still have the recorded sizes and
 * modification times is seeded from its resume data at once; any other is
 * checked against its piece hashes first and announced only when every
 * piece matches. A share whose data changed or vanished is withdrawn and
 * reported, never announced with wrong data. Shares are added in upload
 * mode: the session never writes to the user's files, and removing a share
 * never deletes them.
 *
 * Single-threaded; the owner feeds it the session's events
 * (library_on_event()) and learns about changes of the announced set
 * through the change callback.
 */
#ifndef BITWEEN_AGENT_LIBRARY_H
#define BITWEEN_AGENT_LIBRARY_H

#include <stddef.h>
#include <stdint.h>

#include "btshim.h"
#include "log.h"

typedef struct library library_t;

typedef enum {
    SHARE_HASHING = 1, /* the path is being made into a torrent */
    SHARE_CHECKING,    /* comparing the files with the torrent's hashes */
    SHARE_SEEDING,     /* verified, seeded, announced */
    SHARE_ERROR,       /* withdrawn: see the error text */
} share_state_t;

/** A share as the RPC and the registration see it (borrowed, valid until
 * the library changes: the next call or event). */
typedef struct share_info {
    uint64_t id;                /* stable for the agent's lifetime; jobs have one too */
    char hash[BTSHIM_HASH_HEX]; /* "" while hashing */
    const char *name;           /* the torrent's name: the path's last component */
    const char *path;           /* absolute */
    uint64_t size;              /* bytes of data */
    uint64_t hashed;            /* while hashing: bytes hashed so far */
    int64_t added_ms;           /* wall clock, ms since the epoch */
    share_state_t state;
    const char *error; /* "" unless SHARE_ERROR */
} share_info_t;

enum {
    LIBRARY_OK = 0,
    LIBRARY_EINVAL = -1, /* bad path: message says why */
    LIBRARY_ENOMEM = -2,
    LIBRARY_EIO = -3,       /* the state directory could not be written */
    LIBRARY_ENOTFOUND = -4, /* no such share */
    LIBRARY_ELIMIT = -5,    /* too many shares or jobs */
};

typedef struct library_error {
    int code;
    char message[512];
} library_error_t;

/** What happened to a share, for the owner's callback. */
typedef enum {
    LIBRARY_EV_HASHED = 1, /* a job ended: `info` has the hash, or the error */
    LIBRARY_EV_CHANGED,    /* the announced set changed */
} library_event_t;

typedef void (*library_cb)(void *arg, library_event_t ev, const share_info_t *info);

/**
 * New library on `ses` (borrowed) keeping its files under `state_dir`
 * (created, mode 0700, as are its shares/ folder). `max_shares` bounds the
 * shares and jobs together. Returns NULL on failure with `err` filled.
 */
library_t *library_new(btshim_session_t *ses, const char *state_dir, size_t max_shares, log_t *log,
                       library_cb cb, void *arg, library_error_t *err)
    __attribute__((warn_unused_result));

/**
 * Write `len` bytes to `path` atomically and privately: a temporary file
 * beside it (created anew, mode 0600, never through a link), fsync, rename.
 * Returns 0, or -1 with errno set.
 */
int library_write_file(const char *path, const void *data, size_t len);

/**
 * Read a state file of at most 64 MiB into `*data` (NUL-terminated, the
 * caller frees it). Returns 0, or -1.
 */
int library_read_file(const char *path, char **data, size_t *len);

/**
 * Create `path` (0700) or check it: a directory (not a link to one) of
 * this user that nobody else can write, since the agent trusts what it
 * finds there. 0, or -1 with a reason in `err`.
 */
int library_private_dir(const char *path, library_error_t *err);

/** A formatted string the caller frees, or NULL when out of memory. */
char *library_dupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Whether `s` is a v1 info-hash: 40 lowercase hex digits. */
int library_is_hash(const char *s);

/**
 * Call `fn(arg, hash)` for each `<hash>.json` file in `dir` (a state
 * folder), until it returns non-zero. Returns 0, -1 (errno set) when the
 * folder cannot be read.
 */
int library_scan(const char *dir, int (*fn)(void *arg, const char *hash), void *arg);

/** A new id, unique among the library's and the downloads' ids. */
uint64_t library_new_id(library_t *lib);

/** Free (the session keeps its torrents); NULL is a no-op. */
void library_free(library_t *lib);

/**
 * Load the shares kept in the state directory and add them to the session
 * (seeding from resume data, or checking first as described above). Broken
 * entries are logged and skipped. Returns the number loaded.
 */
size_t library_load(library_t *lib);

/**
 * Start sharing `path` (a file or a folder; made absolute): returns at once
 * with the job's id in `*id`. A path already shared or being hashed gives
 * that share's id and `*duplicate` set. Errors: LIBRARY_EINVAL for a path
 * that does not exist, is not a regular file or folder, or holds no data;
 * LIBRARY_ELIMIT when full or the session refuses another job.
 */
int library_add_path(library_t *lib, const char *path, uint64_t *id, int *duplicate,
                     library_error_t *err);

/**
 * Stop sharing the share with info-hash `hash` or id `id`: the torrent
 * leaves the session, its state files are deleted, a running job is
 * cancelled. The user's files are never touched.
 */
int library_remove(library_t *lib, const char *hash, uint64_t id, library_error_t *err);

/** Number of shares and jobs. */
size_t library_count(const library_t *lib);

/** The `i`-th share or job (in the order added), or NULL. */
int library_get(library_t *lib, size_t i, share_info_t *out);

/** The share with this id or hash (either may be 0 / NULL), or -1. */
int library_find(library_t *lib, const char *hash, uint64_t id, share_info_t *out);

/** Ask the session for every share's resume data (at shutdown); returns
 * how many requests were made. The data arrives as events. */
size_t library_save_all(library_t *lib);

/** Resume-data requests not yet answered. */
size_t library_saves_pending(const library_t *lib);

/**
 * Feed one event of the session. Returns 1 when the event was about the
 * library (a job, or a share's torrent), 0 otherwise.
 */
int library_on_event(library_t *lib, const btshim_event_t *ev);

#endif /* BITWEEN_AGENT_LIBRARY_H */
