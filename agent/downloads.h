/* SPDX-License-Identifier: MIT */
/*
 * What this device downloads from contacts: torrents added by v1
 * info-hash, each into a fresh folder of its own (created for it, so that
 * nothing already on disk is ever written over) under the download
 * directory or under a save path inside an allowed root. Peers come only
 * from the owner (contacts' merged items, through the sources callback):
 * at once when added, whenever the owner says contacts changed, and again
 * on a timer while a download lacks peers. Kept in the state directory:
 *
 *   <state_dir>/downloads/<hash>.json    folder, name, times, paused, complete
 *   <state_dir>/downloads/<hash>.resume  libtorrent's resume data, with the
 *                                        metadata once it is known
 *
 * Resume data is saved when the metadata arrives, when the download
 * completes or is paused, every few seconds while libtorrent says it is
 * out of date, and at shutdown; a download that was killed continues from
 * its last save. The metadata timeout counts only the time a source is
 * connected: a hash nobody shares waits as long as it takes.
 *
 * Single-threaded; the owner feeds it the session's events and calls
 * downloads_tick() about once a second.
 */
#ifndef BITWEEN_AGENT_DOWNLOADS_H
#define BITWEEN_AGENT_DOWNLOADS_H

#include <stddef.h>
#include <stdint.h>

#include "btshim.h"
#include "log.h"

typedef struct downloads downloads_t;

typedef enum {
    DL_WAITING = 1, /* no source connected (none known, or none reachable) */
    DL_METADATA,    /* a source is connected; fetching the metadata */
    DL_DOWNLOADING,
    DL_SEEDING, /* complete */
    DL_PAUSED,
    DL_CHECKING,
    DL_ERROR, /* stopped: see the error text */
} dl_state_t;

/** A download as the RPC sees it (borrowed until the next call or event). */
typedef struct dl_info {
    uint64_t id;
    char hash[BTSHIM_HASH_HEX];
    const char *name;   /* the torrent's name, or the name it was asked by */
    const char *folder; /* the folder made for it (absolute) */
    dl_state_t state;
    const char *error;              /* "" unless DL_ERROR */
    int complete;                   /* every piece verified, now or before */
    int64_t added_ms, completed_ms; /* wall clock; completed 0 until then */
    int have_status;                /* `st` is filled */
    btshim_torrent_status_t st;
} dl_info_t;

/** An address a download may get its data from. */
typedef struct dl_endpoint {
    char address[64]; /* IP literal */
    uint16_t port;
} dl_endpoint_t;

enum {
    DL_OK = 0,
    DL_EINVAL = -1, /* bad hash or save path: message says why */
    DL_ENOMEM = -2,
    DL_EIO = -3,       /* a folder or state file could not be written */
    DL_ENOTFOUND = -4, /* no such download */
    DL_ELIMIT = -5,    /* too many downloads */
};

typedef struct dl_error {
    int code;
    char message[512];
} dl_error_t;

typedef enum {
    DL_EV_COMPLETED = 1, /* a download has all its data (`info`) */
    DL_EV_CHANGED,       /* the set of complete downloads changed */
} dl_event_t;

typedef struct downloads_settings {
    const char *state_dir;    /* the agent's; downloads/ is made inside */
    const char *download_dir; /* where each download's folder is made */
    const char *roots;        /* comma-separated folders a save path may be inside; NULL: none */
    size_t max_downloads;
    unsigned metadata_timeout_s; /* connected time without metadata before giving up */
    unsigned save_interval_s;    /* resume data of changed downloads; 0: 10 */
    unsigned retry_interval_s;   /* connect to sources again; 0: 30 */
    /* the owner's: */
    size_t (*sources)(void *arg, const char *hash, dl_endpoint_t *out, size_t max);
    void (*event)(void *arg, dl_event_t ev, const dl_info_t *info);
    uint64_t (*new_id)(void *arg);
    void *arg;
} downloads_settings_t;

/**
 * New set of downloads on `ses` (borrowed); `s` is copied (its strings
 * too). Creates <state_dir>/downloads (0700) and the download directory.
 * NULL on failure with `err` filled.
 */
downloads_t *downloads_new(btshim_session_t *ses, const downloads_settings_t *s, log_t *log,
                           dl_error_t *err) __attribute__((warn_unused_result));

/** Free (the session keeps its torrents); NULL is a no-op. */
void downloads_free(downloads_t *dl);

/** Load the downloads kept in the state directory; returns how many. */
size_t downloads_load(downloads_t *dl);

/**
 * Download `hash` (40 lowercase hex digits): a fresh folder named after
 * `name` (may be NULL: the hash) is made under `save_root` (NULL: the
 * download directory; else a folder inside one of the allowed roots, or
 * the download directory), and sources are asked for at once. A hash
 * already downloading gives that download with `*duplicate` set.
 */
int downloads_add(downloads_t *dl, const char *hash, const char *name, const char *save_root,
                  dl_info_t *out, int *duplicate, dl_error_t *err);

/**
 * Stop downloading `hash`: it leaves the session and the state directory;
 * with `delete_data` its files are deleted too (only those of the torrent,
 * in its own folder), and the folder when it is left empty.
 */
int downloads_remove(downloads_t *dl, const char *hash, int delete_data, dl_error_t *err);

/** Pause (`pause` 1) or resume (0) a download; resuming clears an error. */
int downloads_pause(downloads_t *dl, const char *hash, int pause, dl_error_t *err);

size_t downloads_count(const downloads_t *dl);
/** The i-th download (in the order added), status included; -1 when out of range. */
int downloads_get(downloads_t *dl, size_t i, dl_info_t *out);
/** The download `hash` or with `id` (either may be NULL / 0); -1 when none. */
int downloads_find(downloads_t *dl, const char *hash, uint64_t id, dl_info_t *out);

/** Contacts changed: connect every active download to its sources now. */
void downloads_sources_changed(downloads_t *dl);

/** Timeouts, resume saves and retries; about once a second. */
void downloads_tick(downloads_t *dl, int64_t now_ms);

/** Feed one event of the session; 1 when it was about a download. */
int downloads_on_event(downloads_t *dl, const btshim_event_t *ev);

/** Ask for every download's resume data (at shutdown); returns how many. */
size_t downloads_save_all(downloads_t *dl);
size_t downloads_saves_pending(const downloads_t *dl);

/** The name of a state for users ("waiting for a source", ...). */
const char *downloads_state_name(dl_state_t st);

#endif /* BITWEEN_AGENT_DOWNLOADS_H */
