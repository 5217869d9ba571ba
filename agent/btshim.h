/* SPDX-License-Identifier: MIT */
/*
 * The agent's BitTorrent engine behind a C boundary. Two backends
 * implement this header: btshim_lt.cpp (libtorrent-rasterbar, the only C++
 * file of the agent) and btshim_fake.c (in memory, no network: the
 * agent's logic is unit-tested on it). Every function is safe to call from
 * C: no exception crosses it, failures are negative BTSHIM_E* codes with a
 * message in a caller-supplied btshim_error_t.
 *
 * The agent's event loop stays in charge: the session never calls back.
 * Its wake-up descriptor becomes readable when something happened (an
 * alert, a finished hashing job); the loop then drains every event with
 * btshim_poll(). Structs the shim fills carry their size, passed in by the
 * caller, so that they can grow without breaking older callers.
 *
 * Peers come only from the caller (btshim_torrent_add_peer()): the session
 * is built with DHT, local service discovery, trackers, peer exchange and
 * every extension but ut_metadata and smart_ban off, and with UPnP and
 * NAT-PMP only when asked for.
 */
#ifndef BITWEEN_AGENT_BTSHIM_H
#define BITWEEN_AGENT_BTSHIM_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(__GNUC__)
#define BTSHIM_API __attribute__((visibility("default")))
#define BTSHIM_WUR __attribute__((warn_unused_result))
#else
#define BTSHIM_API
#define BTSHIM_WUR
#endif

enum {
    BTSHIM_OK = 0,
    BTSHIM_EINVAL = -1,    /* bad argument */
    BTSHIM_ENOMEM = -2,    /* out of memory */
    BTSHIM_EIO = -3,       /* a file could not be read or written */
    BTSHIM_ENOTFOUND = -4, /* no such torrent or job */
    BTSHIM_EEXIST = -5,    /* the torrent is already in the session */
    BTSHIM_EINTERNAL = -6, /* libtorrent failed otherwise */
    BTSHIM_ELIMIT = -7,    /* too many jobs at once */
};

#define BTSHIM_HASH_HEX 41 /* 40 hex digits of a v1 info-hash and a NUL */

typedef struct btshim_error {
    int code;
    char message[256];
} btshim_error_t;

typedef struct btshim_session btshim_session_t;

/* Settings of a session; zero-filled fields take the defaults. */
typedef struct btshim_settings {
    /* libtorrent's listen_interfaces, e.g. "0.0.0.0:6881,[::]:6881"; NULL:
     * "0.0.0.0:0,[::]:0" (any free port) */
    const char *listen_interfaces;
    int upnp;                /* map the listen port with UPnP */
    int natpmp;              /* ... with NAT-PMP */
    int download_rate_limit; /* bytes/s, 0: unlimited */
    int upload_rate_limit;   /* bytes/s, 0: unlimited */
    int hashing_threads;     /* torrent creation; 0: one per core */
    unsigned max_jobs;       /* hashing jobs at once; 0: 4 */
    const char *user_agent;  /* NULL: "bitween" */
} btshim_settings_t;

/**
 * New session, listening as `s` says (NULL: defaults). Returns NULL and
 * fills `err` on failure. Free with btshim_session_free().
 */
BTSHIM_API btshim_session_t *btshim_session_new(const btshim_settings_t *s,
                                                btshim_error_t *err) BTSHIM_WUR;

/** Stop the session (pending jobs are cancelled); NULL is a no-op. */
BTSHIM_API void btshim_session_free(btshim_session_t *ses);

/**
 * Descriptor that becomes readable when btshim_poll() has something to
 * return. Owned by the session; poll it, never read or close it.
 */
BTSHIM_API int btshim_session_wake_fd(const btshim_session_t *ses);

/** Change the rate limits (bytes/s, 0: unlimited). */
BTSHIM_API int btshim_session_set_rates(btshim_session_t *ses, int download, int upload,
                                        btshim_error_t *err);

/**
 * The TCP ports the session listens on (libtorrent may choose them):
 * up to `max` into `ports`, their number into `*n`.
 */
BTSHIM_API int btshim_session_listen_ports(btshim_session_t *ses, uint16_t *ports, size_t max,
                                           size_t *n, btshim_error_t *err);

/* ---- making a torrent of a path (off the caller's thread) ---------------- */

/**
 * Start hashing `path` (a file or a folder) into a v1 torrent, on the
 * session's own threads. Returns at once with the job's id in `*job`; its
 * end comes as a BTSHIM_EV_CREATED or BTSHIM_EV_CREATE_FAILED event.
 * `piece_size` 0 lets libtorrent choose.
 */
BTSHIM_API int btshim_create_start(btshim_session_t *ses, const char *path, int piece_size,
                                   uint64_t *job, btshim_error_t *err) BTSHIM_WUR;

/** Progress of a job: bytes hashed and bytes in all. */
BTSHIM_API int btshim_create_progress(btshim_session_t *ses, uint64_t job, uint64_t *done,
                                      uint64_t *total, btshim_error_t *err);

/** Cancel a job; its BTSHIM_EV_CREATE_FAILED event says "cancelled". */
BTSHIM_API int btshim_create_cancel(btshim_session_t *ses, uint64_t job, btshim_error_t *err);

/* ---- torrents ------------------------------------------------------------- */

/* btshim_torrent_add() flags */
#define BTSHIM_ADD_SEED_MODE   1 /* the data was just hashed into this torrent: no check */
#define BTSHIM_ADD_UPLOAD_ONLY 2 /* never download: the user's own files are never written */
#define BTSHIM_ADD_PAUSED      4 /* added paused (btshim_torrent_resume() starts it) */

/**
 * Add a torrent to seed (or download, later) from the bencoded torrent
 * file `torrent` (`len` bytes) with its data under `save_path`, and the
 * resume data `resume` (may be NULL) from an earlier
 * BTSHIM_EV_RESUME_DATA. Without resume data (or with resume data of
 * another torrent) libtorrent checks the data first, unless `flags` has
 * BTSHIM_ADD_SEED_MODE. Resume data is trusted as far as libtorrent
 * trusts it (file sizes): the caller checks modification times itself and
 * asks for btshim_torrent_recheck() when they changed. The v1 info-hash
 * goes into `hash`.
 */
BTSHIM_API int btshim_torrent_add(btshim_session_t *ses, const void *torrent, size_t len,
                                  const char *save_path, const void *resume, size_t resume_len,
                                  int flags, char hash[BTSHIM_HASH_HEX], btshim_error_t *err);

/**
 * Add a download by its v1 info-hash (40 lowercase hex digits): the
 * metadata comes from peers (ut_metadata), or from `resume` when it holds
 * it (resume data of this torrent from an earlier BTSHIM_EV_RESUME_DATA;
 * other resume data is ignored). `name` (may be NULL) is shown until the
 * metadata names the torrent. The data goes under `save_path`, file names
 * as libtorrent sanitizes them: never outside it. `flags`:
 * BTSHIM_ADD_PAUSED only.
 */
BTSHIM_API int btshim_torrent_add_hash(btshim_session_t *ses, const char *hash, const char *name,
                                       const char *save_path, const void *resume, size_t resume_len,
                                       int flags, btshim_error_t *err);

/** Remove a torrent from the session. Its files are never deleted. */
BTSHIM_API int btshim_torrent_remove(btshim_session_t *ses, const char *hash, btshim_error_t *err);

/**
 * Remove a torrent and delete its files (those the torrent names, under
 * its save path; nothing else). The outcome comes as BTSHIM_EV_DELETED or
 * BTSHIM_EV_DELETE_FAILED.
 */
BTSHIM_API int btshim_torrent_remove_data(btshim_session_t *ses, const char *hash,
                                          btshim_error_t *err);

/** Stop a torrent's transfers and connections / start them again. */
BTSHIM_API int btshim_torrent_pause(btshim_session_t *ses, const char *hash, btshim_error_t *err);
BTSHIM_API int btshim_torrent_resume(btshim_session_t *ses, const char *hash, btshim_error_t *err);

/** Check the torrent's data against its hashes again. */
BTSHIM_API int btshim_torrent_recheck(btshim_session_t *ses, const char *hash, btshim_error_t *err);

/** Ask for resume data; it comes as a BTSHIM_EV_RESUME_DATA event. */
BTSHIM_API int btshim_torrent_save_resume(btshim_session_t *ses, const char *hash,
                                          btshim_error_t *err);

/** Connect to a peer (an IPv4 or IPv6 literal and a port). */
BTSHIM_API int btshim_torrent_add_peer(btshim_session_t *ses, const char *hash, const char *address,
                                       uint16_t port, btshim_error_t *err);

typedef enum {
    BTSHIM_STATE_CHECKING = 1, /* checking its files */
    BTSHIM_STATE_METADATA,     /* fetching the metadata from peers */
    BTSHIM_STATE_DOWNLOADING,
    BTSHIM_STATE_SEEDING,
    BTSHIM_STATE_ERROR, /* stopped by an error; see `error` */
} btshim_state_t;

typedef struct btshim_tstatus {
    char hash[BTSHIM_HASH_HEX];
    char name[1024]; /* from the metadata, truncated; "" before it */
    btshim_state_t state;
    uint64_t size;       /* bytes wanted */
    uint64_t done;       /* bytes verified */
    double progress;     /* 0..1 */
    int download_rate;   /* bytes/s */
    int upload_rate;     /* bytes/s */
    uint64_t uploaded;   /* bytes, this session */
    uint64_t downloaded; /* bytes, this session */
    int peers;
    char error[256]; /* "" unless state is BTSHIM_STATE_ERROR */
    int paused;
    int has_metadata;
    int need_save;             /* resume data is out of date */
    int seeds;                 /* connected peers that have everything */
    uint64_t total_downloaded; /* bytes of payload, all sessions (from resume data) */
    uint64_t total_uploaded;
} btshim_torrent_status_t;

/* A connected peer of a torrent. */
typedef struct btshim_peer {
    char address[64]; /* IP literal */
    uint16_t port;    /* its listen port when we connected to it, else its source port */
    int incoming;     /* it connected to us */
    int seed;         /* it has every piece */
    int download_rate, upload_rate; /* bytes/s of payload */
    uint64_t downloaded, uploaded;  /* bytes of payload, this connection */
    double progress;                /* its share of the pieces, 0..1 */
    char client[64];                /* its client's name, as it says */
} btshim_peer_t;

/**
 * The connected peers of a torrent: up to `max` into `out` (each
 * `peer_size` bytes as the caller knows btshim_peer_t), their number in
 * all into `*n` (may exceed `max`).
 */
BTSHIM_API int btshim_torrent_peers(btshim_session_t *ses, const char *hash, btshim_peer_t *out,
                                    size_t peer_size, size_t max, size_t *n, btshim_error_t *err);

/**
 * Status of one torrent into `st`; `st_size` is sizeof *st as the caller
 * knows it (fields beyond it are not written).
 */
BTSHIM_API int btshim_torrent_status(btshim_session_t *ses, const char *hash,
                                     btshim_torrent_status_t *st, size_t st_size,
                                     btshim_error_t *err);

/* ---- events --------------------------------------------------------------- */

typedef enum {
    BTSHIM_EV_CREATED = 1,     /* job done: `data` is the torrent file, `hash` its info-hash */
    BTSHIM_EV_CREATE_FAILED,   /* job failed: `message` says why */
    BTSHIM_EV_RESUME_DATA,     /* `data` is the torrent's resume data */
    BTSHIM_EV_RESUME_FAILED,   /* no resume data could be made */
    BTSHIM_EV_CHECKED,         /* the torrent's files were checked (`error` 0: all present) */
    BTSHIM_EV_FINISHED,        /* the torrent has all its data */
    BTSHIM_EV_TORRENT_ERROR,   /* a file error stopped it: `message` */
    BTSHIM_EV_LISTEN,          /* listening on `address`:`port` */
    BTSHIM_EV_LISTEN_FAILED,   /* could not listen: `message` */
    BTSHIM_EV_PORT_MAPPED,     /* UPnP/NAT-PMP mapped `port` on `address` (external) */
    BTSHIM_EV_PORT_MAP_FAILED, /* `message` */
    BTSHIM_EV_EXTERNAL_IP,     /* a peer or router told us our address: `address` */
    BTSHIM_EV_METADATA,        /* a download added by hash received its metadata */
    BTSHIM_EV_DELETED,         /* btshim_torrent_remove_data() deleted the files */
    BTSHIM_EV_DELETE_FAILED,   /* ... could not delete them: `message` */
} btshim_event_type_t;

typedef struct btshim_event {
    btshim_event_type_t type;
    uint64_t job;               /* CREATED, CREATE_FAILED */
    char hash[BTSHIM_HASH_HEX]; /* "" when not about a torrent */
    int error;                  /* CHECKED: pieces missing or wrong; else 0 */
    char address[64];
    uint16_t port;
    char message[256];
    void *data; /* owned by the event: btshim_event_clear() frees it */
    size_t data_len;
} btshim_event_t;

/**
 * Take up to `max` events into `ev` (each `ev_size` bytes as the caller
 * knows btshim_event_t), their number into `*n`, and re-arm the wake-up
 * descriptor when none is left. Each returned event must be released with
 * btshim_event_clear().
 */
BTSHIM_API int btshim_poll(btshim_session_t *ses, btshim_event_t *ev, size_t ev_size, size_t max,
                           size_t *n, btshim_error_t *err);

/** Free what an event owns (its data); NULL is a no-op. */
BTSHIM_API void btshim_event_clear(btshim_event_t *ev);

/**
 * Read a magnet URI (or a bare info-hash: 40 hex digits or 32 base32
 * letters): its v1 info-hash into `hash` and its display name (may be
 * "") into `name` (`name_cap` bytes, cut). A URI that names only a v2
 * hash gives BTSHIM_EINVAL with `*v2_only` set.
 */
BTSHIM_API int btshim_parse_magnet(const char *uri, char hash[BTSHIM_HASH_HEX], char *name,
                                   size_t name_cap, int *v2_only, btshim_error_t *err);

/** Name of the backend ("libtorrent 2.0.8", "fake"). */
BTSHIM_API const char *btshim_backend(void);

#ifdef __cplusplus
}
#endif

#endif /* BITWEEN_AGENT_BTSHIM_H */
