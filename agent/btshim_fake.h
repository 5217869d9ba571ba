/* SPDX-License-Identifier: MIT */
/*
 * Controls of the in-memory backend of btshim.h (btshim_fake.c), for the
 * agent's unit tests: hashing jobs end when a test says so, torrents'
 * states and files' faults are set by hand, and everything the agent
 * asked of the session can be read back.
 */
#ifndef BITWEEN_AGENT_BTSHIM_FAKE_H
#define BITWEEN_AGENT_BTSHIM_FAKE_H

#include "btshim.h"

#ifdef __cplusplus
extern "C" {
#endif

/**
 * End the hashing job `job`: with `error` NULL it succeeds (the torrent
 * file is a small bencoded dictionary naming the path, its info-hash the
 * SHA-1 of the path), else it fails with that message. Queues the event.
 */
int btshim_fake_job_finish(btshim_session_t *ses, uint64_t job, const char *error);

/** Hashing jobs not yet finished. */
size_t btshim_fake_jobs_pending(const btshim_session_t *ses);

/** Set a torrent's state (and its error text, for BTSHIM_STATE_ERROR). */
int btshim_fake_torrent_set_state(btshim_session_t *ses, const char *hash, btshim_state_t state,
                                  const char *error);

/** Queue an event as the session would (its data copied). */
int btshim_fake_push(btshim_session_t *ses, const btshim_event_t *ev);

/** Torrents in the session. */
size_t btshim_fake_torrents(const btshim_session_t *ses);

/** Peers given to a torrent so far, -1 when there is no such torrent. */
int btshim_fake_torrent_peers(const btshim_session_t *ses, const char *hash);

/** Whether the torrent was added with resume data (-1: no such torrent). */
int btshim_fake_torrent_resumed(const btshim_session_t *ses, const char *hash);

/** The BTSHIM_ADD_* flags the torrent was added with (-1: no such torrent). */
int btshim_fake_torrent_flags(const btshim_session_t *ses, const char *hash);

#ifdef __cplusplus
}
#endif

#endif /* BITWEEN_AGENT_BTSHIM_FAKE_H */
