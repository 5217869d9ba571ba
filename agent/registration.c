/* SPDX-License-Identifier: MIT */
/* The registration with the component, as a state machine. */
#include "registration.h"

#include <inttypes.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "loop.h"

#define RETRY_MIN_MS  5000
#define RETRY_MAX_MS  300000
#define MAX_CONFLICTS 5 /* in a row, before waiting for a change */

struct registration {
    registration_io_t io;
    uint64_t seq;
    int online;
    int quota_known;
    int quota_reread; /* after a quota refusal, once */
    int registered;   /* the component holds `acked` */
    int busy;         /* a request is in flight: `sending` */
    reg_kind_t busy_kind;
    int retrying; /* the retry timer is armed */
    int blocked;  /* refused for good until something changes */
    int conflicts;
    unsigned attempt, rng;
    announce_quota_t quota;
    announce_set_t acked, sending;
    char (*over)[41];
    size_t n_over;
    char last_refusal[600];
    int64_t last_refusal_ms;
};

registration_t *registration_new(const registration_io_t *io, uint64_t seq, unsigned rng_seed)
{
    registration_t *r = calloc(1, sizeof *r);
    if (!r)
        return NULL;
    r->io = *io;
    r->seq = seq;
    r->rng = rng_seed;
    announce_quota_default(&r->quota);
    return r;
}

void registration_free(registration_t *r)
{
    if (!r)
        return;
    announce_set_clear(&r->acked);
    announce_set_clear(&r->sending);
    free(r->over);
    free(r);
}

static void kick(registration_t *r);

static void send_request(registration_t *r, xmpp_stanza_t *payload, reg_kind_t kind,
                         announce_set_t *desired)
{
    announce_set_clear(&r->sending);
    r->sending = *desired; /* taken over */
    memset(desired, 0, sizeof *desired);
    if (!payload || r->io.send(r->io.arg, payload, kind) != 0) {
        LOG_ERROR(r->io.log, "register", "cannot send a request (out of memory?): retrying");
        r->retrying = 1;
        r->io.retry_in(r->io.arg, RETRY_MIN_MS);
        return;
    }
    r->busy = 1;
    r->busy_kind = kind;
}

static void kick(registration_t *r)
{
    announce_set_t desired;
    xmpp_stanza_t *payload;
    int oom = 0;

    if (!r->online || r->busy || !r->quota_known || r->retrying || r->blocked)
        return;
    if (r->io.desired(r->io.arg, &r->quota, &desired) != 0) {
        LOG_ERROR(r->io.log, "register", "out of memory");
        return;
    }
    free(r->over);
    r->over = desired.over; /* kept for the status */
    r->n_over = desired.n_over_quota;
    desired.over = NULL;
    desired.n_over_quota = 0;
    if (!r->registered || !announce_same_addresses(&r->acked, &desired)) {
        payload = announce_build_register(r->io.ctx, &desired, ++r->seq);
        LOG_INFO(r->io.log, "register",
                 "registering %zu share(s) and %zu address(es) with %s (seq %" PRIu64 ")%s",
                 desired.n_shares, desired.n_addrs, r->io.component, r->seq,
                 r->n_over ? "; some are over the server's quota" : "");
        send_request(r, payload, REG_REGISTER, &desired);
        return;
    }
    payload = announce_build_remove(r->io.ctx, &r->acked, &desired, r->seq + 1, &oom);
    if (payload) {
        r->seq++;
        send_request(r, payload, REG_REMOVE, &desired);
        return;
    }
    payload = oom ? NULL : announce_build_add(r->io.ctx, &r->acked, &desired, r->seq + 1, &oom);
    if (payload) {
        r->seq++;
        send_request(r, payload, REG_ADD, &desired);
        return;
    }
    if (oom)
        LOG_ERROR(r->io.log, "register", "out of memory");
    announce_set_clear(&desired);
}

void registration_online(registration_t *r)
{
    r->online = 1;
    r->registered = 0;
    r->busy = 0;
    r->blocked = 0;
    r->quota_known = 0;
    r->quota_reread = 0;
    r->retrying = 0;
    r->attempt = 0;
    r->conflicts = 0;
}

void registration_offline(registration_t *r)
{
    r->online = 0;
    r->registered = 0;
    r->busy = 0;
    r->retrying = 0;
}

void registration_quotas(registration_t *r, const announce_quota_t *q)
{
    announce_quota_default(&r->quota);
    if (q)
        r->quota = *q;
    r->quota_known = 1;
    kick(r);
}

void registration_changed(registration_t *r)
{
    r->blocked = 0;
    kick(r);
}

void registration_retry_due(registration_t *r)
{
    r->retrying = 0;
    kick(r);
}

/* Drop from `acked` what `keep` lacks (a remove was applied). */
static void intersect(announce_set_t *acked, const announce_set_t *keep)
{
    size_t i = 0, j;
    while (i < acked->n_shares) {
        int found = 0;
        for (j = 0; j < keep->n_shares && !found; j++)
            found = strcmp(acked->shares[i].hash, keep->shares[j].hash) == 0;
        if (found) {
            i++;
            continue;
        }
        free(acked->shares[i].name);
        acked->shares[i] = acked->shares[--acked->n_shares];
    }
}

void registration_reply(registration_t *r, const char *type, const char *cond, long long stored,
                        const char *text)
{
    reg_kind_t kind = r->busy_kind;
    uint64_t delay;

    if (!r->busy)
        return; /* a late reply after a reconnection: nothing is in flight */
    r->busy = 0;
    if (!type && kind == REG_UNREGISTER) {
        r->registered = 0; /* gone: any seq will do, so ours */
        kick(r);
        return;
    }
    if (!type) {
        if (kind == REG_REMOVE)
            intersect(&r->acked, &r->sending);
        else {
            announce_set_clear(&r->acked);
            r->acked = r->sending;
            memset(&r->sending, 0, sizeof r->sending);
        }
        if (!r->registered)
            LOG_INFO(r->io.log, "register", "registered with %s: %zu share(s) announced",
                     r->io.component, r->acked.n_shares);
        r->registered = 1;
        r->attempt = 0;
        r->conflicts = 0;
        r->quota_reread = 0;
        kick(r);
        return;
    }
    snprintf(r->last_refusal, sizeof r->last_refusal, "%s/%s: %s", type, cond ? cond : "?",
             text ? text : "(no text)");
    r->last_refusal_ms = loop_wall_ms();
    r->registered = 0; /* whatever comes next is a full register */
    if (cond && strcmp(cond, "conflict") == 0 && stored == INT64_MAX &&
        r->conflicts++ < MAX_CONFLICTS) {
        /* no seq is above it (docs/protocol.md §1.2): forget the resource,
         * then register it anew */
        xmpp_stanza_t *un = xmpp_stanza_new(r->io.ctx);
        announce_set_t none;
        memset(&none, 0, sizeof none);
        LOG_WARN(r->io.log, "register",
                 "the component holds the highest seq there is: unregistering first");
        if (un && (xmpp_stanza_set_name(un, "unregister") != XMPP_EOK ||
                   xmpp_stanza_set_ns(un, AGENT_NS) != XMPP_EOK)) {
            xmpp_stanza_release(un);
            un = NULL;
        }
        send_request(r, un, REG_UNREGISTER, &none);
        return;
    }
    if (cond && strcmp(cond, "conflict") == 0 && r->conflicts++ < MAX_CONFLICTS) {
        /* docs/protocol.md §1.2: continue from the stored seq */
        if (stored >= 0 && (uint64_t)stored > r->seq)
            r->seq = (uint64_t)stored; /* the register below takes stored + 1 */
        LOG_WARN(r->io.log, "register",
                 "the component holds a newer seq (%lld): continuing from %" PRIu64, stored,
                 r->seq + 1);
        kick(r);
        return;
    }
    if (cond && strcmp(cond, "item-not-found") == 0 && kind != REG_REGISTER) {
        kick(r); /* the component forgot this resource: the whole state again */
        return;
    }
    if (cond && strcmp(cond, "policy-violation") == 0 && !r->quota_reread) {
        /* the quotas may have changed since they were read */
        LOG_WARN(r->io.log, "register", "%s; reading the component's quotas again",
                 r->last_refusal);
        r->quota_reread = 1;
        r->quota_known = 0;
        r->io.read_quotas(r->io.arg);
        return;
    }
    if (strcmp(type, "wait") == 0) {
        delay = loop_backoff_ms(RETRY_MIN_MS, RETRY_MAX_MS, r->attempt++, &r->rng);
        LOG_WARN(r->io.log, "register", "%s; retrying in %" PRIu64 " s", r->last_refusal,
                 delay / 1000);
        r->retrying = 1;
        r->io.retry_in(r->io.arg, delay);
        return;
    }
    r->blocked = 1;
    LOG_ERROR(r->io.log, "register", "refused by %s: %s", r->io.component, r->last_refusal);
}

int registration_pinged(registration_t *r)
{
    if (!r->online || (r->registered && !r->blocked && !r->retrying))
        return 0;
    /* the component is back (docs/protocol.md §1.1) */
    LOG_INFO(r->io.log, "register", "%s pinged: registering again", r->io.component);
    r->retrying = 0;
    r->attempt = 0;
    r->blocked = 0;
    r->conflicts = 0;
    r->registered = 0;
    /* a component back from a restart may have other quotas (and one that
     * was down did not say which): read them, then register */
    r->quota_known = 0;
    r->quota_reread = 0;
    r->io.read_quotas(r->io.arg);
    return 1;
}

const char *registration_state(const registration_t *r)
{
    if (!r->online)
        return "offline";
    if (r->blocked)
        return "refused";
    if (r->retrying)
        return "retrying";
    if (r->registered)
        return r->busy ? "updating" : "registered";
    return "registering";
}

uint64_t registration_seq(const registration_t *r)
{
    return r->seq;
}

const announce_set_t *registration_acked(const registration_t *r)
{
    return r->registered ? &r->acked : NULL;
}

size_t registration_over_quota(const registration_t *r, const char (**hashes)[41])
{
    if (hashes)
        *hashes = (const char(*)[41])r->over;
    return r->n_over;
}

const announce_quota_t *registration_quota(const registration_t *r)
{
    return &r->quota;
}

const char *registration_last_refusal(const registration_t *r, int64_t *when_ms)
{
    if (when_ms)
        *when_ms = r->last_refusal_ms;
    return r->last_refusal;
}

int registration_busy(const registration_t *r)
{
    return r->busy;
}
