/* SPDX-License-Identifier: MIT */
/*
 * The registration of this device with the component, as a state machine
 * without I/O (docs/protocol.md §1): after every connection and once the
 * component's quotas are known, a full <register/>; then <remove/> and
 * <add/> as the announced set changes, one request at a time, and a full
 * register when the addresses change; `seq` grows by one per request.
 * Replies: a result makes its request's state the acknowledged one; a
 * `conflict` continues from the stored seq plus one with a full register
 * (at most five times in a row; a stored seq of 2^63-1, which cannot be
 * exceeded, is cleared with an <unregister/> first); `item-not-found` on an add or remove
 * registers again; a quota refusal has the quotas read again once;
 * `wait` errors and timeouts are retried with backoff (5 s doubling to
 * 5 min, with jitter); other refusals wait until something changes or the
 * component pings. The owner supplies what to announce, sends the
 * payloads and runs the retry timer through the callbacks.
 */
#ifndef BITWEEN_AGENT_REGISTRATION_H
#define BITWEEN_AGENT_REGISTRATION_H

#include <stddef.h>
#include <stdint.h>

#include <strophe.h>

#include "announce.h"
#include "log.h"

typedef enum { REG_REGISTER = 1, REG_ADD, REG_REMOVE, REG_UNREGISTER } reg_kind_t;

typedef struct registration_io {
    void *arg;
    /** What to announce now, fitted to `q` (announce_fit()). 0 or -1. */
    int (*desired)(void *arg, const announce_quota_t *q, announce_set_t *out);
    /** Send `payload` (taken: the callee releases it) as a request of
     * `kind` to the component. 0, or -1 when it could not be sent. */
    int (*send)(void *arg, xmpp_stanza_t *payload, reg_kind_t kind);
    /** Arm the retry timer to call registration_retry_due() in `ms`. */
    void (*retry_in)(void *arg, uint64_t ms);
    /** Ask for the component's quotas again (registration_quotas() follows). */
    void (*read_quotas)(void *arg);
    xmpp_ctx_t *ctx;       /* to build payloads */
    log_t *log;            /* borrowed */
    const char *component; /* for the log */
} registration_io_t;

typedef struct registration registration_t;

/** New state machine; `seq` is the first seq minus one. NULL when out of
 * memory. `io` is copied; what it points to is borrowed. */
registration_t *registration_new(const registration_io_t *io, uint64_t seq, unsigned rng_seed)
    __attribute__((warn_unused_result));
void registration_free(registration_t *r);

/** A new connection: nothing is registered, the quotas are not known. */
void registration_online(registration_t *r);
/** The connection is gone: requests in flight are lost. */
void registration_offline(registration_t *r);
/** The quotas are known (NULL: the component gave none: the defaults). */
void registration_quotas(registration_t *r, const announce_quota_t *q);
/** What to announce may have changed: send what is needed. Clears a
 * "refused" state (the new state may be acceptable). */
void registration_changed(registration_t *r);
/**
 * The reply to the request in flight: `type` NULL for a result, else the
 * error's type ("wait", "cancel", ...) with its condition, the stored seq
 * of a <stale-seq/> (-1: none) and the text; a timeout is type "wait",
 * condition "timeout".
 */
void registration_reply(registration_t *r, const char *type, const char *cond, long long stored,
                        const char *text);
/** The retry timer fired. */
void registration_retry_due(registration_t *r);
/** The component pinged us. When something went wrong before, the
 * quotas are read again and the whole state registered once they are
 * known; returns 1 then (the caller sends its directed presence first),
 * 0 when all is well. */
int registration_pinged(registration_t *r);

/* Reading. */
const char *registration_state(const registration_t *r); /* offline, registering, registered,
                                                           updating, retrying, refused */
uint64_t registration_seq(const registration_t *r);
/** The acknowledged set (NULL when nothing is registered). Borrowed. */
const announce_set_t *registration_acked(const registration_t *r);
/** Shares left out by the quotas at the last fitting, and their hashes. */
size_t registration_over_quota(const registration_t *r, const char (**hashes)[41]);
const announce_quota_t *registration_quota(const registration_t *r);
/** The last refusal ("type/condition: text", "" when none) and when
 * (milliseconds since the epoch). */
const char *registration_last_refusal(const registration_t *r, int64_t *when_ms);
/** Whether a request is in flight. */
int registration_busy(const registration_t *r);

#endif /* BITWEEN_AGENT_REGISTRATION_H */
