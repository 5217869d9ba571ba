/* SPDX-License-Identifier: MIT */
/*
 * The component (see component.h). One thread runs the event loop: the
 * XEP-0114 stream (libstrophe, driven with xmpp_run_once(ctx, 0) whenever
 * its socket is ready), the database pool's completions and our timers.
 *
 * An agent request is parsed here, then one database job takes the user's
 * merged state from the state cache (or loads it), computes the state
 * after the request (quotas checked on it), writes the change and digests
 * the result; its completion offers the new merged item to the user's
 * publisher and answers the agent. A user's
 * jobs run in order on one worker, so the last completion carries the
 * newest state. The publisher keeps at most one privileged publish in
 * flight per user; newer states wait as "pending" and only the newest is
 * sent (bursts coalesce), and a state whose digest equals the last one
 * published is not sent at all.
 *
 * The component also keeps, in memory, every registered resource (loaded
 * from the registry at start-up, then kept current by every commit) and
 * whether it is known to be online: its available presence was seen, or
 * it answered a ping, on the current connection. So presence from a
 * resource that is not registered costs nothing; the removal of one that
 * is takes one database job, coalesced per resource. A request from a
 * resource not known to be online waits for a XEP-0199 probe of it; a
 * paced sweep pings every registration periodically. Each user has a
 * budget of requests in progress, so one user cannot fill the queues.
 *
 * Every IQ the component sends carries 128 random bits as its id, and a
 * reply counts only when it comes from the entity the request went to.
 *
 * After each (re)connection every user's item is checked and sent again
 * when it differs from the last one published. Those catch-up publishes
 * go out at most max_republishes_in_flight at a time, in order: sent all
 * at once, hundreds of them would queue in the server ahead of agents'
 * updates and liveness pings, and stall them for seconds. An agent's
 * update is never queued behind them; it replaces the user's catch-up.
 */
#include "component.h"

#include <errno.h>
#include <inttypes.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <pthread.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <strophe.h>

#include "agent_proto.h"
#include "dbpool.h"
#include "loop.h"
#include "merge.h"
#include "statecache.h"
#include "stanza.h"
#include "store.h"
#include "strmap.h"
#include "secrand.h"
#include "xmpp_compat.h"

#define SUB                "component"
#define PRIVILEGE_SNIPPET  "deploy/prosody/bitween-privilege.cfg.lua"
#define CHECK_PAGE         500
#define CHECK_MAX_INFLIGHT 64
#define STOP_DRAIN_MS      10000
#define STOP_CLOSE_MS      2000
#define REGISTRY_PAGE      5000
#define HELD_PER_RESOURCE  4     /* requests waiting for one liveness probe */
#define IQ_ID_BYTES        16    /* random bytes in an outgoing IQ id */
#define REFUSAL_LOG_LINES  20    /* refusals logged per window ... */
#define REFUSAL_LOG_MS     10000 /* ... of this many milliseconds */
#define IQ_ID_LEN          (2 + 2 * IQ_ID_BYTES + 1)
/* Longest id of an IQ request that the component answers. A reply echoes
 * the id, and an id can grow sixfold when written again ('"' becomes
 * &quot;): a longer one could make the reply exceed the server's limit on
 * what the component sends (512 KiB in Prosody), and the server would close
 * the component's whole stream. */
#define MAX_REQUEST_ID  1024
#define PUBLISH_HOLD_US 20000 /* a publish waits this long at most for the user's next commit */

typedef struct pending_iq pending_iq_t;
typedef struct removal removal_t;
typedef struct req_job req_job_t;

/* What the component knows of one resource of a user. An entry lives
 * while any of its fields says something (rsrc_release()). */
typedef struct rsrc {
    char *name;
    int stored;          /* registered in the database; 1 when unsure */
    int online;          /* available presence seen, or a ping answered, on this connection */
    unsigned jobs;       /* requests of it in the database queue */
    unsigned reg_jobs;   /* ... of which register */
    unsigned gen;        /* bumped by every request accepted from it */
    removal_t *removal;  /* its removal (presence, failed ping), queued or waiting to retry */
    pending_iq_t *probe; /* liveness probe in flight */
    req_job_t *held_head, *held_tail; /* requests waiting for the probe */
    unsigned n_held;
} rsrc_t;

typedef struct user {
    char *jid;
    char last_digest[SHARES_DIGEST_HEX]; /* last published successfully; "" none */
    int digest_known;                    /* last_digest loaded or set */
    char *pending;                       /* newest item text not yet sent */
    size_t pending_len;
    char pending_digest[SHARES_DIGEST_HEX];
    char *inflight; /* item text being published */
    size_t inflight_len;
    char inflight_digest[SHARES_DIGEST_HEX];
    loop_timer_t retry_timer;
    unsigned retry_attempt;
    rsrc_t **res; /* known resources, unordered */
    size_t nres, cap_res;
    unsigned jobs;             /* requests accepted and not yet answered (held or queued) */
    unsigned db_jobs;          /* ... of which in the database queue */
    uint64_t pending_since_us; /* when `pending` was first set (hist_now_us()) */
    int catchup;               /* pending is a catch-up republish, not an agent's update */
    int inflight_catchup;      /* inflight holds one of the max_republishes_in_flight slots */
    int queued;                /* in the catch-up queue (possibly no longer catch-up) */
    struct user *cq_next;
    component_t *c;
} user_t;

typedef enum { PENDING_PUBLISH, PENDING_PING, PENDING_PROBE } pending_kind_t;

/* An IQ the component sent and whose reply it waits for. */
struct pending_iq {
    pending_kind_t kind;
    char id[IQ_ID_LEN];
    uint64_t sent_us; /* hist_now_us() when sent */
    user_t *user;     /* publish, probe */
    rsrc_t *res;      /* probe (valid while res->probe points here) */
    char *jid;        /* ping: user */
    char *resource;   /* ping: resource */
    unsigned gen;     /* ping: the resource's gen when sent */
    loop_timer_t timeout;
    component_t *c;
};

typedef struct domain_perm {
    char *domain;
    int state; /* 0 unknown, 1 pubsub set granted, -1 not granted */
} domain_perm_t;

/* A resource to remove (presence unavailable, failed ping, eviction). */
struct removal {
    component_t *c;
    char *jid, *resource;
    const char *why;
    loop_timer_t retry_timer;
    unsigned attempt;
    int linked;                 /* the resource's rsrc_t points here */
    unsigned gen;               /* linked: the resource's gen when asked for */
    component_cmd_done_fn done; /* an operator's eviction: report, no retry */
    void *done_arg;
};

/* An administrative command queued by another thread. */
typedef struct command {
    struct command *next;
    int republish; /* else evict */
    char *jid, *resource;
    component_cmd_done_fn done;
    void *arg;
} command_t;

struct component {
    component_settings_t s; /* its strings point at the owned copies below */
    char *own_host, *own_jid, *own_secret, *own_url, *own_name;
    char **domains;
    size_t n_domains;
    domain_perm_t *perms;
    log_t *log;
    loop_t *loop;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    int fd;        /* socket being polled, -1 none */
    int fd_ready;  /* it polled readable this iteration */
    int connected; /* handshake done */
    int stopping;
    dbpool_t *pool;
    statecache_t *states; /* merged states of active users, shared by the workers */
    strmap_t *users;      /* jid -> user_t */
    strmap_t *pending;    /* outgoing iq id -> pending_iq_t */
    size_t held_total;    /* requests waiting for probes, all users */
    struct {              /* catch-up publishes after a (re)connection */
        user_t *head, *tail;
        size_t queued;
        unsigned inflight;
    } catchup;
    struct { /* rate of the log lines about refused requests */
        uint64_t window_start;
        unsigned lines, suppressed;
    } refusals;
    unsigned rng;
    unsigned reconnect_attempt;
    loop_timer_t reconnect_timer;
    loop_timer_t privilege_timer;
    /* registration re-check after each (re)connection, and the liveness
     * sweep between them */
    struct {
        int active;
        int republish; /* after a (re)connection: republish each user too */
        unsigned generation;
        int fetching;
        int done_listing;
        char *after_jid, *after_resource;
        store_resources_t page;
        size_t next;
        size_t inflight;
        char *last_user;
        loop_timer_t tick;
        loop_timer_t sweep; /* the next liveness sweep */
    } check;
    component_stats_t stats;
    /* administrative commands from other threads */
    pthread_mutex_t cmd_mu;
    command_t *cmd_head, *cmd_tail;
    int cmd_closed;
    int cmd_efd;
    atomic_int stopping_flag;
    volatile sig_atomic_t *reload_flag;
    component_reload_fn reload_fn;
    void *reload_arg;
};

/* ---- small helpers ------------------------------------------------------ */

static char *dupstr(const char *s)
{
    size_t n;
    char *p;
    if (!s)
        return NULL;
    n = strlen(s) + 1;
    p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

static void stat_inc(atomic_ullong *v)
{
    atomic_fetch_add(v, 1);
}

/* A fresh id for an outgoing IQ: a kind letter, '-' and 128 random bits in
 * hex. Nobody can guess the id of a request in flight, so nobody can
 * answer one they did not receive. Returns 0, or -1 when the kernel's
 * random source fails. */
static int new_iq_id(char out[IQ_ID_LEN], char kind)
{
    out[0] = kind;
    out[1] = '-';
    return secrand_hex(out + 2, IQ_ID_BYTES);
}

/* Exponential backoff with jitter: a delay in [d/2, d], d = min(max, base * 2^attempt). */
static uint64_t backoff_ms(component_t *c, unsigned base, unsigned max, unsigned attempt)
{
    return loop_backoff_ms(base, max, attempt, &c->rng);
}

static const char *jid_domain_part(const char *jid)
{
    const char *at = strchr(jid, '@');
    return at ? at + 1 : jid;
}

/* Whether `to` addresses the component itself: its bare domain JID, not
 * a user or a resource of it (compared without regard to ASCII case). A
 * stanza without `to` comes from the server and counts as ours. */
static int to_component(const component_t *c, const char *to)
{
    return !to || strcasecmp(to, c->s.jid) == 0;
}

/* Whether the full JID `from` is `bare`/`resource`: the bare parts
 * compared without regard to ASCII case (servers case-fold node and
 * domain), the resource exactly. */
static int full_jid_is(const char *from, const char *bare, const char *resource)
{
    const char *slash = strchr(from, '/');
    size_t blen = strlen(bare);
    return slash && (size_t)(slash - from) == blen && strncasecmp(from, bare, blen) == 0 &&
           strcmp(slash + 1, resource) == 0;
}

static domain_perm_t *perm_for(component_t *c, const char *domain)
{
    size_t i;
    for (i = 0; i < c->n_domains; i++)
        if (strcasecmp(c->perms[i].domain, domain) == 0)
            return &c->perms[i];
    return NULL;
}

static int can_publish(component_t *c, const char *jid)
{
    domain_perm_t *p;
    if (!c->connected || c->stopping)
        return 0;
    p = perm_for(c, jid_domain_part(jid));
    return p && p->state == 1;
}

/* Connected and allowed to publish for at least one domain. */
static int can_publish_any(const component_t *c)
{
    size_t i;
    if (!c->connected || c->stopping)
        return 0;
    for (i = 0; i < c->n_domains; i++)
        if (c->perms[i].state == 1)
            return 1;
    return 0;
}

static void send_stanza(component_t *c, xmpp_stanza_t *st)
{
    if (!st) {
        LOG_ERROR(c->log, SUB, "out of memory building a stanza");
        return;
    }
    if (c->connected)
        xmpp_send(c->conn, st);
    xmpp_stanza_release(st);
}

_Static_assert(AGENT_ERR_COUNT == COMPONENT_ERR_KINDS, "COMPONENT_ERR_KINDS");

/* Whether a refused request may be logged now: REFUSAL_LOG_LINES lines per
 * window of REFUSAL_LOG_MS, the rest only counted (in /metrics too) and
 * summed up when a later window opens, so that a user sending bad
 * requests cannot flood the log. */
static int refusal_log_ok(component_t *c)
{
    uint64_t now = loop_now_ms(c->loop);
    if (now - c->refusals.window_start >= REFUSAL_LOG_MS) {
        if (c->refusals.suppressed)
            LOG_INFO(c->log, "agent", "%u more refused requests were not logged",
                     c->refusals.suppressed);
        c->refusals.window_start = now;
        c->refusals.lines = 0;
        c->refusals.suppressed = 0;
    }
    if (c->refusals.lines < REFUSAL_LOG_LINES) {
        c->refusals.lines++;
        return 1;
    }
    c->refusals.suppressed++;
    return 0;
}

static void reply_error(component_t *c, const xmpp_stanza_t *iq, const agent_error_t *err)
{
    if ((unsigned)err->code < COMPONENT_ERR_KINDS)
        stat_inc(&c->stats.refused_by_kind[err->code]);
    send_stanza(c, stanza_build_agent_error(c->ctx, iq, err));
}

/* ---- users and the publisher ------------------------------------------- */

static user_t *user_get(component_t *c, const char *jid)
{
    user_t *u = strmap_get(c->users, jid);
    if (u)
        return u;
    u = calloc(1, sizeof *u);
    if (!u)
        return NULL;
    u->jid = dupstr(jid);
    u->c = c;
    if (!u->jid || strmap_put(c->users, jid, u) != 0) {
        free(u->jid);
        free(u);
        return NULL;
    }
    return u;
}

static void removal_free(removal_t *r);

/* At shutdown: a removal waiting to retry goes with its resource. */
static void rsrc_free(rsrc_t *r)
{
    if (r->removal)
        removal_free(r->removal);
    free(r->name);
    free(r);
}

static void user_free(user_t *u)
{
    size_t i;
    if (!u)
        return;
    loop_timer_stop(u->c->loop, &u->retry_timer);
    for (i = 0; i < u->nres; i++)
        rsrc_free(u->res[i]);
    free(u->res);
    free(u->pending);
    free(u->inflight);
    free(u->jid);
    free(u);
}

/* ---- what the component knows of each resource ---------------------------- */

static rsrc_t *rsrc_find(const user_t *u, const char *resource)
{
    size_t i;
    if (!u)
        return NULL;
    for (i = 0; i < u->nres; i++)
        if (strcmp(u->res[i]->name, resource) == 0)
            return u->res[i];
    return NULL;
}

/* The entry of `resource`, made (knowing nothing) when missing; NULL when
 * out of memory. */
static rsrc_t *rsrc_get(user_t *u, const char *resource)
{
    rsrc_t *r = rsrc_find(u, resource);
    if (r)
        return r;
    if (u->nres == u->cap_res) {
        size_t cap = u->cap_res ? 2 * u->cap_res : 2;
        rsrc_t **v = realloc(u->res, cap * sizeof *v);
        if (!v)
            return NULL;
        u->res = v;
        u->cap_res = cap;
    }
    r = calloc(1, sizeof *r);
    if (!r || !(r->name = dupstr(resource))) {
        free(r);
        return NULL;
    }
    u->res[u->nres++] = r;
    return r;
}

/* Forget the entry when nothing is known or pending about it any more. */
static void rsrc_release(user_t *u, rsrc_t *r)
{
    size_t i;
    if (!r || r->stored || r->online || r->jobs || r->removal || r->probe || r->n_held)
        return;
    for (i = 0; i < u->nres; i++) {
        if (u->res[i] == r) {
            u->res[i] = u->res[--u->nres];
            rsrc_free(r);
            return;
        }
    }
}

/* Entries a user's presence alone may create: a little more than the
 * resources the user may register, so that a presence flood of invented
 * resources costs bounded memory. Beyond it a resource is simply not
 * known to be online, and is probed when it sends a request. */
static size_t rsrc_presence_cap(const component_t *c)
{
    return 2 * c->s.limits.max_resources + 8;
}

static void user_kick(component_t *c, user_t *u);
static void check_pump(component_t *c);

static void pending_free(component_t *c, pending_iq_t *p)
{
    loop_timer_stop(c->loop, &p->timeout);
    free(p->jid);
    free(p->resource);
    free(p);
}

typedef struct record_job {
    char *jid;
    char digest[SHARES_DIGEST_HEX];
    store_publish_status_t status;
    char error[256];
    component_t *c;
} record_job_t;

static void record_run(store_t *st, void *arg)
{
    record_job_t *j = arg;
    store_error_t err;
    if (store_publish_record(st, j->jid, j->digest, j->status,
                             j->status == STORE_PUBLISH_ERROR ? j->error : NULL, &err) != STORE_OK)
        LOG_WARN(j->c->log, "db", "could not record the publish of %s: %s", j->jid, err.message);
}

static void record_done(void *arg)
{
    record_job_t *j = arg;
    free(j->jid);
    free(j);
}

static void record_publish(component_t *c, const char *jid, const char *digest,
                           store_publish_status_t status, const char *error)
{
    record_job_t *j = calloc(1, sizeof *j);
    if (!j || !(j->jid = dupstr(jid))) {
        free(j);
        return;
    }
    j->c = c;
    snprintf(j->digest, sizeof j->digest, "%s", digest);
    j->status = status;
    snprintf(j->error, sizeof j->error, "%s", error ? error : "");
    if (dbpool_submit(c->pool, jid, record_run, record_done, j) != 0)
        record_done(j);
}

static void user_retry_cb(loop_t *loop, void *arg)
{
    user_t *u = arg;
    (void)loop;
    user_kick(u->c, u);
}

/* The publish of `u` ended; `temporary` keeps its state for a retry.
 * A catch-up publish gives its slot back; catchup_pump() hands it on. */
static void user_publish_ended(component_t *c, user_t *u, int ok, int temporary, const char *why)
{
    if (u->inflight_catchup) {
        u->inflight_catchup = 0;
        c->catchup.inflight--;
        atomic_store(&c->stats.republishes_inflight, c->catchup.inflight);
        if (temporary && !u->pending)
            u->catchup = 1; /* its retry is a catch-up again */
    }
    if (ok) {
        snprintf(u->last_digest, sizeof u->last_digest, "%s", u->inflight_digest);
        u->digest_known = 1;
        u->retry_attempt = 0;
        stat_inc(&c->stats.publishes_ok);
        LOG_DEBUG(c->log, "publish", "published %s (%s)", u->jid, u->last_digest);
        record_publish(c, u->jid, u->inflight_digest, STORE_PUBLISH_OK, NULL);
        free(u->inflight);
    } else if (temporary) {
        stat_inc(&c->stats.publishes_retried);
        if (why)
            stat_inc(&c->stats.publish_errors_temporary);
        if (!u->pending) { /* nothing newer: retry this state */
            u->pending = u->inflight;
            u->pending_len = u->inflight_len;
            memcpy(u->pending_digest, u->inflight_digest, sizeof u->pending_digest);
        } else {
            free(u->inflight);
        }
        if (why) {
            uint64_t delay = backoff_ms(c, 200, c->s.publish_retry_max_ms, u->retry_attempt++);
            LOG_WARN(c->log, "publish",
                     "publish for %s failed temporarily (%s); retry in %" PRIu64 " ms", u->jid, why,
                     delay);
            loop_timer_start(c->loop, &u->retry_timer, delay, user_retry_cb, u);
        }
    } else {
        stat_inc(&c->stats.publishes_failed);
        stat_inc(&c->stats.publish_errors_permanent);
        LOG_ERROR(c->log, "publish", "publish for %s refused by the server: %s", u->jid,
                  why ? why : "unknown error");
        record_publish(c, u->jid, u->inflight_digest, STORE_PUBLISH_ERROR, why);
        free(u->inflight);
    }
    u->inflight = NULL;
    u->inflight_len = 0;
}

static int pending_add(component_t *c, pending_iq_t *p);

static void catchup_enqueue(component_t *c, user_t *u)
{
    if (u->queued)
        return;
    u->queued = 1;
    u->cq_next = NULL;
    if (c->catchup.tail)
        c->catchup.tail->cq_next = u;
    else
        c->catchup.head = u;
    c->catchup.tail = u;
    c->catchup.queued++;
    atomic_store(&c->stats.republishes_queued, c->catchup.queued);
}

static user_t *catchup_dequeue(component_t *c)
{
    user_t *u = c->catchup.head;
    if (!u)
        return NULL;
    c->catchup.head = u->cq_next;
    if (!c->catchup.head)
        c->catchup.tail = NULL;
    u->cq_next = NULL;
    u->queued = 0;
    c->catchup.queued--;
    atomic_store(&c->stats.republishes_queued, c->catchup.queued);
    return u;
}

/* Send the pending state of `u` if allowed and nothing is in flight. The
 * item's canonical text is spliced into the privileged IQ and sent raw:
 * no stanza tree is built for it. A catch-up waits in the queue for a
 * free slot. */
static void user_kick(component_t *c, user_t *u)
{
    pending_iq_t *p;
    char inner[IQ_ID_LEN + 2], *text;
    size_t len;

    if (!u->pending || u->inflight || loop_timer_armed(&u->retry_timer))
        return;
    /* Another request of this user is in the database queue: its commit
     * follows within milliseconds, and one publish then carries both
     * (a user's devices often update together). Held PUBLISH_HOLD_US at
     * most: the last request's end, or any later offer, kicks again. */
    if (u->db_jobs && !u->catchup && hist_now_us() - u->pending_since_us < PUBLISH_HOLD_US)
        return;
    if (u->digest_known && strcmp(u->pending_digest, u->last_digest) == 0) {
        stat_inc(&c->stats.publishes_skipped);
        LOG_DEBUG(c->log, "publish", "%s unchanged, not published", u->jid);
        free(u->pending);
        u->pending = NULL;
        u->catchup = 0;
        return;
    }
    if (!can_publish(c, u->jid))
        return; /* kept pending until connected and allowed */
    if (u->catchup && c->catchup.inflight >= c->s.max_republishes_in_flight) {
        catchup_enqueue(c, u);
        return;
    }
    p = calloc(1, sizeof *p);
    if (!p) {
        LOG_ERROR(c->log, "publish", "out of memory publishing %s", u->jid);
        return;
    }
    if (new_iq_id(p->id, 'p') != 0) {
        LOG_ERROR(c->log, "publish", "no random id for the publish of %s: %s", u->jid,
                  strerror(errno));
        free(p);
        return;
    }
    snprintf(inner, sizeof inner, "%s-i", p->id);
    text = stanza_text_privileged_publish(c->ctx, c->s.jid, u->jid, p->id, inner, u->pending,
                                          u->pending_len, &len);
    p->kind = PENDING_PUBLISH;
    p->user = u;
    if (!text || pending_add(c, p) != 0) {
        LOG_ERROR(c->log, "publish", "out of memory publishing %s", u->jid);
        free(text);
        free(p);
        return;
    }
    u->inflight = u->pending;
    u->inflight_len = u->pending_len;
    memcpy(u->inflight_digest, u->pending_digest, sizeof u->inflight_digest);
    u->pending = NULL;
    u->pending_len = 0;
    if (u->catchup) {
        u->catchup = 0;
        u->inflight_catchup = 1;
        c->catchup.inflight++;
        atomic_store(&c->stats.republishes_inflight, c->catchup.inflight);
    }
    LOG_DEBUG(c->log, "publish", "publishing %s (%s) as %s", u->jid, u->inflight_digest, p->id);
    if (c->connected)
        xmpp_send_raw(c->conn, text, len);
    free(text);
}

/* Hand the free catch-up slots to the queued users, in order. */
static void catchup_pump(component_t *c)
{
    while (c->catchup.inflight < c->s.max_republishes_in_flight && can_publish_any(c)) {
        user_t *u = catchup_dequeue(c);
        if (!u)
            return;
        if (u->catchup) /* else an agent's update replaced it, and went out */
            user_kick(c, u);
    }
}

/* A new merged state of `jid` from a database job: its canonical text
 * (ownership passes here) and digest. `db_last` is the digest of the last
 * successful publish stored in the database ("" when none), or NULL when
 * not fetched. `catchup`: a republish after a (re)connection rather than
 * an agent's change; an agent's change already waiting keeps its
 * precedence. */
static void user_offer(component_t *c, const char *jid, char *text, size_t len, const char *digest,
                       const char *db_last, int catchup)
{
    user_t *u = user_get(c, jid);
    if (!u) {
        LOG_ERROR(c->log, "publish", "out of memory tracking %s", jid);
        free(text);
        return;
    }
    if (!u->digest_known && db_last) {
        snprintf(u->last_digest, sizeof u->last_digest, "%s", db_last);
        u->digest_known = 1;
    }
    u->catchup = catchup && (!u->pending || u->catchup);
    if (!u->pending)
        u->pending_since_us = hist_now_us();
    free(u->pending);
    u->pending = text;
    u->pending_len = len;
    snprintf(u->pending_digest, sizeof u->pending_digest, "%s", digest);
    user_kick(c, u);
}

static void kick_each(const char *key, void *value, void *arg)
{
    (void)key;
    user_kick(arg, value);
}

/* ---- outgoing IQ bookkeeping ------------------------------------------- */

static void ping_ended(component_t *c, pending_iq_t *p, int alive, const char *why);
static void probe_ended(component_t *c, pending_iq_t *p, int alive, const char *why);
static void probe_drop(component_t *c, pending_iq_t *p);

/* Whether a reply from `from` may answer `p`: a ping's reply comes from
 * the pinged full JID; a privileged IQ's from the user's bare JID (Prosody
 * answers for the user's account) or the user's server. Anyone else
 * could only be forging it. */
static int reply_from_ok(const pending_iq_t *p, const char *from)
{
    if (!from)
        return 0;
    switch (p->kind) {
    case PENDING_PUBLISH:
        return strcasecmp(from, p->user->jid) == 0 ||
               strcasecmp(from, jid_domain_part(p->user->jid)) == 0;
    case PENDING_PING:
        return full_jid_is(from, p->jid, p->resource);
    case PENDING_PROBE:
        return full_jid_is(from, p->user->jid, p->res->name);
    }
    return 0;
}

static void pending_timeout_cb(loop_t *loop, void *arg)
{
    pending_iq_t *p = arg;
    component_t *c = p->c;
    (void)loop;
    strmap_del(c->pending, p->id);
    if (p->kind == PENDING_PUBLISH)
        user_publish_ended(c, p->user, 0, 1, "no reply from the server");
    else if (p->kind == PENDING_PROBE)
        probe_ended(c, p, 0, "no reply to the liveness ping");
    else
        ping_ended(c, p, 0, "no reply to ping");
    pending_free(c, p);
    catchup_pump(c);
}

/* Connection lost: publishes go back to pending (sent again after the
 * reconnection), pings are forgotten (the re-check runs again), requests
 * waiting for a probe are dropped unanswered (their sender's session is
 * gone with the connection, or will retry). */
static void pending_fail_each(const char *key, void *value, void *arg)
{
    pending_iq_t *p = value;
    component_t *c = arg;
    (void)key;
    if (p->kind == PENDING_PUBLISH)
        user_publish_ended(c, p->user, 0, 1, NULL);
    else if (p->kind == PENDING_PROBE)
        probe_drop(c, p);
    pending_free(c, p);
}

static void pending_fail_all(component_t *c)
{
    strmap_each(c->pending, pending_fail_each, c);
    strmap_free(c->pending);
    c->pending = strmap_new();
    c->check.inflight = 0;
    atomic_store(&c->stats.probes_inflight, 0);
    if (!c->pending)
        LOG_ERROR(c->log, SUB, "out of memory resetting outgoing IQs");
}

/* Register `p` (its id set) as waiting for a reply, with the IQ timeout.
 * Returns 0, or -1 when out of memory. */
static int pending_add(component_t *c, pending_iq_t *p)
{
    if (!c->pending || strmap_put(c->pending, p->id, p) != 0)
        return -1;
    p->c = c;
    p->sent_us = hist_now_us();
    loop_timer_start(c->loop, &p->timeout, c->s.iq_timeout_ms, pending_timeout_cb, p);
    return 0;
}

/* ---- database jobs ------------------------------------------------------- */

/* Merged state and digest of `jid`, plus the last published digest when
 * `want_last`. */
typedef struct loaded {
    char *text; /* canonical item text */
    size_t len;
    char digest[SHARES_DIGEST_HEX];
    int have_last;
    char last[SHARES_DIGEST_HEX];
} loaded_t;

/* Canonical text and digest of `item` (borrowed) into `out`. */
static int text_of(const shares_item_t *item, loaded_t *out, store_error_t *err)
{
    shares_error_t serr;
    int rc = shares_item_write(item, &out->text, &out->len, &serr);
    if (rc == SHARES_OK && shares_text_digest(out->text, out->len, out->digest) != SHARES_OK)
        rc = SHARES_ENOMEM, snprintf(serr.message, sizeof serr.message, "SHA-256 failed");
    if (rc != SHARES_OK) {
        free(out->text);
        out->text = NULL;
        err->code = STORE_EINTERNAL;
        snprintf(err->message, sizeof err->message, "item text: %s", serr.message);
        return STORE_EINTERNAL;
    }
    return STORE_OK;
}

/* The digest last published successfully for `jid` into `out` ("" when
 * none); on a database error it stays unknown and the publisher compares
 * later. */
static void load_last(store_t *st, const char *jid, loaded_t *out)
{
    store_publish_t pub;
    store_error_t err;
    int rc = store_publish_get(st, jid, &pub, &err);
    if (rc == STORE_OK || rc == STORE_ENOTFOUND) {
        out->have_last = 1;
        snprintf(out->last, sizeof out->last, "%s",
                 rc == STORE_OK && pub.status == STORE_PUBLISH_OK ? pub.digest : "");
    }
}

/* Memory a cached state is counted for: its canonical text holds the same
 * strings as the model, which adds about as much again in pointers, sizes
 * and allocation overhead. */
static size_t state_bytes(const loaded_t *out)
{
    return 2 * out->len;
}

/* Load the merged state of `jid` from the database (not from the cache,
 * which it refreshes, or forgets on failure): for removals and
 * republishes, which must see what is stored. */
static int load_state(component_t *c, store_t *st, const char *jid, int want_last, loaded_t *out,
                      store_error_t *err)
{
    shares_item_t *item = NULL;
    int rc = store_user_load(st, jid, &item, err);
    if (rc == STORE_OK)
        rc = text_of(item, out, err);
    if (rc) {
        shares_item_free(item);
        statecache_drop(c->states, jid);
        return rc;
    }
    statecache_put(c->states, jid, item, state_bytes(out));
    if (want_last)
        load_last(st, jid, out);
    return STORE_OK;
}

struct req_job {
    component_t *c;
    xmpp_stanza_t *iq; /* touched in the loop thread only */
    agent_request_t req;
    int want_last;
    uint64_t received_us; /* hist_now_us() on arrival */
    /* loop thread's bookkeeping */
    user_t *u;
    rsrc_t *r;
    int queued;      /* submitted to the database (counted in r->jobs) */
    int in_db;       /* ... and not yet done there (counted in u->db_jobs) */
    req_job_t *next; /* in r's list of requests held for a probe */
    /* results */
    uint64_t database_us; /* time in the database job */
    int failed;
    agent_error_t aerr;
    loaded_t out;
};

static void req_apply(store_t *st, req_job_t *j);

static void req_run(store_t *st, void *arg)
{
    req_job_t *j = arg;
    uint64_t start = hist_now_us();
    req_apply(st, j);
    j->database_us = hist_now_us() - start;
}

static void req_apply(store_t *st, req_job_t *j)
{
    component_t *c = j->c;
    const agent_request_t *r = &j->req;
    shares_item_t *current = NULL, *next = NULL;
    size_t current_bytes = 0; /* non-zero: `current` came from the cache */
    store_quota_t quota;
    store_error_t err;
    int rc;

    memset(&err, 0, sizeof err);
    /* The user's jobs run in order on this worker, so the cached state is
     * the stored one: take it, or load it on a miss. */
    current = statecache_take(c->states, r->jid, &current_bytes);
    if (!current) {
        rc = store_user_load(st, r->jid, &current, &err);
        if (rc)
            goto db_fail;
    }
    if (merge_apply(current, r, &c->s.limits, &next, NULL, &j->aerr) != 0)
        goto refused_unchanged;
    quota.max_resources = (uint32_t)c->s.limits.max_resources;
    quota.max_shares = (uint32_t)c->s.limits.max_shares;
    quota.max_addresses = (uint32_t)c->s.limits.max_addresses;
    switch (r->op) {
    case AGENT_OP_REGISTER:
        rc = store_resource_replace(st, r->jid, r->resource, r->seq, r->item, 0, &quota, &err);
        break;
    case AGENT_OP_ADD:
        rc = store_shares_add(st, r->jid, r->resource, r->seq, r->item, 0, &quota, &err);
        break;
    case AGENT_OP_REMOVE:
        rc = store_shares_remove(st, r->jid, r->resource, r->seq, (const char *const *)r->hashes,
                                 r->n_hashes, &err);
        break;
    case AGENT_OP_UNREGISTER:
        rc = store_resource_remove(st, r->jid, r->resource, &err);
        if (rc == STORE_ENOTFOUND)
            rc = STORE_OK; /* already gone: idempotent */
        break;
    }
    if (rc)
        goto db_fail;
    rc = text_of(next, &j->out, &err);
    if (rc != STORE_OK) {
        agent_error_set(&j->aerr, AGENT_ERR_INTERNAL, "%s", err.message);
        goto refused; /* committed, but the state is not cached: reloaded next time */
    }
    statecache_put(c->states, r->jid, next, state_bytes(&j->out));
    if (j->want_last)
        load_last(st, r->jid, &j->out);
    shares_item_free(current);
    return;

db_fail:
    switch (rc) {
    case STORE_ESTALE:
        agent_error_stale(&j->aerr, r->seq, err.stored_seq, r->resource);
        break;
    case STORE_ENOTFOUND: {
        char q[AGENT_QUOTE_MAX];
        agent_error_set(&j->aerr, AGENT_ERR_NOT_FOUND,
                        "resource %s is not registered; send register first",
                        agent_quote(q, r->resource));
        break;
    }
    case STORE_ELIMIT:
        agent_error_set(&j->aerr, AGENT_ERR_POLICY, "%s", err.message);
        break;
    case STORE_EINVAL:
        agent_error_set(&j->aerr, AGENT_ERR_NOT_ACCEPTABLE, "%s", err.message);
        break;
    case STORE_EUNAVAIL:
        stat_inc(&c->stats.db_unavailable);
        agent_error_set(&j->aerr, AGENT_ERR_UNAVAILABLE,
                        "the database is temporarily unavailable; retry later");
        break;
    default:
        LOG_ERROR(c->log, "db", "request of %s/%s failed: %s", r->jid, r->resource, err.message);
        agent_error_set(&j->aerr, AGENT_ERR_INTERNAL, "internal error in the registry");
        break;
    }
    /* Refused by the database (stale, quota, invalid): nothing changed, so
     * the state stays cached. Anything else may or may not have been
     * committed: forget it and load it again next time. */
    if (current &&
        (rc == STORE_ESTALE || rc == STORE_ENOTFOUND || rc == STORE_ELIMIT || rc == STORE_EINVAL))
        goto refused_unchanged;
refused:
    j->failed = 1;
    shares_item_free(current);
    shares_item_free(next);
    return;
refused_unchanged: /* `current` is still the stored state: cached again
                    * when it came from the cache */
    j->failed = 1;
    if (current_bytes)
        statecache_put(c->states, r->jid, current, current_bytes);
    else
        shares_item_free(current);
    shares_item_free(next);
}

static void remove_resource(component_t *c, user_t *u, rsrc_t *r, const char *why);

/* `j` is out of the database queue: a publish held for it may go. */
static void req_left_db(component_t *c, req_job_t *j)
{
    if (!j->in_db)
        return;
    j->in_db = 0;
    if (--j->u->db_jobs == 0 && j->u->pending)
        user_kick(c, j->u);
}

/* The request is over (answered, or dropped with the connection): give
 * back its place in the user's budget and free it. */
static void req_finish(component_t *c, req_job_t *j)
{
    if (j->queued) {
        j->r->jobs--;
        if (j->req.op == AGENT_OP_REGISTER)
            j->r->reg_jobs--;
    }
    req_left_db(c, j);
    j->u->jobs--;
    rsrc_release(j->u, j->r);
    xmpp_stanza_release(j->iq);
    agent_request_clear(&j->req);
    free(j->out.text);
    free(j);
}

/* What the outcome tells about the resource's registration. A refusal by
 * the registry (stale, quota, invalid) changed nothing; a failure of the
 * database may or may not have committed, so the resource counts as
 * registered (a later removal then costs one harmless job). */
static void req_note_outcome(req_job_t *j)
{
    rsrc_t *r = j->r;
    int definite =
        !j->failed || (j->aerr.code != AGENT_ERR_UNAVAILABLE && j->aerr.code != AGENT_ERR_INTERNAL);
    if (j->failed && j->aerr.code == AGENT_ERR_CONFLICT) {
        r->stored = 1; /* a newer update of it is stored */
        return;
    }
    switch (j->req.op) {
    case AGENT_OP_REGISTER:
        if (!j->failed || !definite)
            r->stored = 1;
        break;
    case AGENT_OP_ADD:
    case AGENT_OP_REMOVE:
        if (!j->failed)
            r->stored = 1;
        else if (j->aerr.code == AGENT_ERR_NOT_FOUND)
            r->stored = 0;
        break;
    case AGENT_OP_UNREGISTER:
        if (!j->failed)
            r->stored = 0;
        else if (!definite)
            r->stored = 1;
        break;
    }
}

static void req_done(void *arg)
{
    req_job_t *j = arg;
    component_t *c = j->c;

    req_note_outcome(j);
    /* out of the queue before offering: a publish waits only for others */
    req_left_db(c, j);
    if (j->failed) {
        stat_inc(&c->stats.requests_refused);
        if (refusal_log_ok(c))
            LOG_INFO(c->log, "agent", "%s %s/%s refused: %s", agent_op_name(j->req.op), j->req.jid,
                     j->req.resource, j->aerr.text);
        reply_error(c, j->iq, &j->aerr);
    } else {
        stat_inc(&c->stats.requests_ok);
        LOG_DEBUG(c->log, "agent", "%s %s/%s seq %" PRId64 " committed", agent_op_name(j->req.op),
                  j->req.jid, j->req.resource, j->req.seq);
        if (j->req.op == AGENT_OP_UNREGISTER)
            stat_inc(&c->stats.removals);
        /* Committed: publish first (contacts wait for it), then answer. */
        user_offer(c, j->req.jid, j->out.text, j->out.len, j->out.digest,
                   j->out.have_last ? j->out.last : NULL, 0);
        j->out.text = NULL;
        send_stanza(c, stanza_build_iq_result(c->ctx, j->iq));
    }
    hist_observe_us(&c->stats.database_time, j->database_us);
    hist_observe_us(&c->stats.request_time, hist_now_us() - j->received_us);
    req_finish(c, j);
}

/* Answer `j` with `code` and `text` and finish it. */
static void req_refuse(component_t *c, req_job_t *j, agent_errcode_t code, const char *text)
{
    agent_error_t err;
    agent_error_set(&err, code, "%s", text);
    stat_inc(&c->stats.requests_refused);
    if (refusal_log_ok(c))
        LOG_INFO(c->log, "agent", "%s %s/%s refused: %s", agent_op_name(j->req.op), j->req.jid,
                 j->req.resource, err.text);
    reply_error(c, j->iq, &err);
    req_finish(c, j);
}

static void removal_cancel(component_t *c, rsrc_t *r);

/* Queue `j` for the database. */
static void req_submit(component_t *c, req_job_t *j)
{
    rsrc_t *r = j->r;
    user_t *u = j->u;

    /* The resource speaks after it went away: a removal still waiting to
     * retry would remove what this request makes. (A removal already in
     * the queue runs first, in order.) */
    removal_cancel(c, r);
    r->gen++;
    r->jobs++;
    if (j->req.op == AGENT_OP_REGISTER)
        r->reg_jobs++;
    j->queued = 1;
    j->in_db = 1;
    u->db_jobs++;
    j->want_last = !u->digest_known;
    if (dbpool_submit(c->pool, j->req.jid, req_run, req_done, j) != 0)
        req_refuse(c, j, AGENT_ERR_UNAVAILABLE, "the component is busy; retry later");
}

/* ---- liveness probes -------------------------------------------------------- */

static void ping_send(component_t *c, pending_iq_t *p, const char *to)
{
    xmpp_stanza_t *st = stanza_build_ping(c->ctx, c->s.jid, to, p->id);
    send_stanza(c, st);
}

/* Ping `r` of `u` before the requests held for it go to the database. */
static int probe_send(component_t *c, user_t *u, rsrc_t *r)
{
    pending_iq_t *p = calloc(1, sizeof *p);
    char *to;
    if (!p)
        return -1;
    p->kind = PENDING_PROBE;
    p->user = u;
    p->res = r;
    to = malloc(strlen(u->jid) + strlen(r->name) + 2);
    if (!to || new_iq_id(p->id, 'l') != 0 || pending_add(c, p) != 0) {
        free(to);
        free(p);
        return -1;
    }
    sprintf(to, "%s/%s", u->jid, r->name);
    r->probe = p;
    stat_inc(&c->stats.probes_sent);
    atomic_fetch_add(&c->stats.probes_inflight, 1);
    LOG_DEBUG(c->log, "check", "probing %s before its request", to);
    ping_send(c, p, to);
    free(to);
    return 0;
}

/* Take the held requests of `r` off it, in order. */
static req_job_t *held_take(component_t *c, rsrc_t *r)
{
    req_job_t *list = r->held_head;
    c->held_total -= r->n_held;
    atomic_store(&c->stats.requests_held, c->held_total);
    r->held_head = r->held_tail = NULL;
    r->n_held = 0;
    return list;
}

static void probe_ended(component_t *c, pending_iq_t *p, int alive, const char *why)
{
    rsrc_t *r = p->res;
    user_t *u = p->user;
    req_job_t *j, *next;

    r->probe = NULL;
    atomic_fetch_sub(&c->stats.probes_inflight, 1);
    r->online = alive;
    j = held_take(c, r);
    r->jobs++; /* keeps `r` while its requests finish */
    if (!alive) {
        stat_inc(&c->stats.probes_failed);
        if (refusal_log_ok(c))
            LOG_INFO(c->log, "check",
                     "%s/%s did not answer the liveness ping (%s): refusing its request", u->jid,
                     r->name, why);
    }
    for (; j; j = next) {
        next = j->next;
        if (alive || j->req.op == AGENT_OP_UNREGISTER) /* an unregister needs no probe */
            req_submit(c, j);
        else
            req_refuse(c, j, AGENT_ERR_NOT_ALLOWED,
                       "this resource did not answer the component's XEP-0199 ping; an agent "
                       "sends directed presence to the component and answers its pings");
    }
    r->jobs--;
    rsrc_release(u, r);
}

/* The connection is gone: the probe's requests are dropped unanswered. */
static void probe_drop(component_t *c, pending_iq_t *p)
{
    rsrc_t *r = p->res;
    req_job_t *j, *next;
    r->probe = NULL;
    r->jobs++; /* keeps `r` while its requests finish */
    for (j = held_take(c, r); j; j = next) {
        next = j->next;
        req_finish(c, j);
    }
    r->jobs--;
    rsrc_release(p->user, r);
}

static void handle_agent_request(component_t *c, xmpp_stanza_t *iq)
{
    uint64_t received_us = hist_now_us();
    req_job_t *j;
    agent_error_t err;
    user_t *u;
    rsrc_t *r;

    stat_inc(&c->stats.requests);
    j = calloc(1, sizeof *j);
    if (!j) {
        agent_error_set(&err, AGENT_ERR_INTERNAL, "out of memory");
        reply_error(c, iq, &err);
        return;
    }
    if (agent_request_parse(iq, (const char *const *)c->domains, &c->s.limits, &j->req, &err) !=
        0) {
        stat_inc(&c->stats.requests_refused);
        if (refusal_log_ok(c))
            LOG_INFO(c->log, "agent", "request from %s refused: %s",
                     xmpp_stanza_get_from(iq) ? xmpp_stanza_get_from(iq) : "?", err.text);
        reply_error(c, iq, &err);
        free(j);
        return;
    }
    if (c->stopping || dbpool_pending(c->pool) + c->held_total >= c->s.max_pending) {
        stat_inc(&c->stats.requests_refused);
        agent_error_set(&err, AGENT_ERR_UNAVAILABLE, "%s",
                        c->stopping ? "the component is shutting down; retry later"
                                    : "the component is busy; retry later");
        reply_error(c, iq, &err);
        agent_request_clear(&j->req);
        free(j);
        return;
    }
    u = user_get(c, j->req.jid);
    r = u ? rsrc_get(u, j->req.resource) : NULL;
    if (!r) {
        agent_error_set(&err, AGENT_ERR_INTERNAL, "out of memory");
        reply_error(c, iq, &err);
        agent_request_clear(&j->req);
        free(j);
        return;
    }
    if (u->jobs >= c->s.max_pending_per_user) {
        /* Each user has a fixed share of the queues: one user's burst
         * waits for its own answers, never for everybody's. */
        stat_inc(&c->stats.requests_refused);
        agent_error_set(&err, AGENT_ERR_BUSY,
                        "too many requests of this user in progress (at most %u); retry after "
                        "the answers",
                        c->s.max_pending_per_user);
        reply_error(c, iq, &err);
        agent_request_clear(&j->req);
        free(j);
        rsrc_release(u, r);
        return;
    }
    LOG_DEBUG(c->log, "agent", "%s %s/%s seq %" PRId64 " received", agent_op_name(j->req.op),
              j->req.jid, j->req.resource, j->req.seq);
    j->c = c;
    j->u = u;
    j->r = r;
    j->received_us = received_us;
    j->iq = stanza_copy_iq_envelope(c->ctx, iq); /* the payload is parsed into j->req */
    if (!j->iq) {
        agent_error_set(&err, AGENT_ERR_INTERNAL, "out of memory");
        reply_error(c, iq, &err);
        agent_request_clear(&j->req);
        free(j);
        rsrc_release(u, r);
        return;
    }
    u->jobs++;
    if ((j->req.op == AGENT_OP_UNREGISTER || r->online) && !r->n_held) {
        req_submit(c, j);
        return;
    }
    /* Not known to be online (no available presence seen, no ping answered
     * on this connection): the server would never tell us when it goes
     * away, so it is listed only once it answers a ping. Or earlier
     * requests of it wait for that ping (it became known to be online
     * meanwhile): this one waits behind them, so that a resource's
     * requests reach the database in the order it sent them. */
    if (r->n_held >= HELD_PER_RESOURCE) {
        req_refuse(c, j, AGENT_ERR_BUSY,
                   "too many requests of this resource wait for its liveness ping; retry after "
                   "the answers");
        return;
    }
    if (r->held_tail)
        r->held_tail->next = j;
    else
        r->held_head = j;
    r->held_tail = j;
    r->n_held++;
    c->held_total++;
    atomic_store(&c->stats.requests_held, c->held_total);
    if (!r->probe && probe_send(c, u, r) != 0) {
        req_job_t *list = held_take(c, r), *next;
        r->jobs++; /* keeps `r` while its requests finish */
        for (; list; list = next) {
            next = list->next;
            req_refuse(c, list, AGENT_ERR_INTERNAL, "out of memory");
        }
        r->jobs--;
        rsrc_release(u, r);
    }
}

/* Removal of one resource (unavailable presence, failed check). */
static void removal_submit(component_t *c, removal_t *r);

typedef struct removal_job {
    removal_t *r;
    int rc;
    int want_last;
    loaded_t out;
    char message[STORE_ERROR_TEXT];
} removal_job_t;

static void removal_run(store_t *st, void *arg)
{
    removal_job_t *j = arg;
    store_error_t err;
    j->rc = store_resource_remove(st, j->r->jid, j->r->resource, &err);
    if (j->rc != STORE_OK && j->rc != STORE_ENOTFOUND) {
        statecache_drop(j->r->c->states, j->r->jid); /* it may have committed */
    } else {
        int removed = j->rc == STORE_OK;
        j->rc = load_state(j->r->c, st, j->r->jid, j->want_last, &j->out, &err);
        if (j->rc == STORE_OK && !removed)
            j->rc = STORE_ENOTFOUND;
    }
    if (j->rc != STORE_OK)
        snprintf(j->message, sizeof j->message, "%s", err.message);
}

static void removal_free(removal_t *r)
{
    loop_timer_stop(r->c->loop, &r->retry_timer);
    free(r->jid);
    free(r->resource);
    free(r);
}

/* The removal is over; `gone`: the resource is not in the registry any
 * more (removed now, or already absent). */
static void removal_end(component_t *c, removal_t *rm, int gone)
{
    user_t *u = strmap_get(c->users, rm->jid);
    rsrc_t *r = rsrc_find(u, rm->resource);
    if (rm->linked) {
        atomic_fetch_sub(&c->stats.removals_pending, 1);
        if (r && r->removal == rm)
            r->removal = NULL;
    }
    if (r) {
        if (gone)
            r->stored = 0;
        rsrc_release(u, r);
    }
    removal_free(rm);
}

/* A request arrived from `r`: its removal, when waiting to retry, is void. */
static void removal_cancel(component_t *c, rsrc_t *r)
{
    if (!r->removal || !loop_timer_armed(&r->removal->retry_timer))
        return;
    LOG_INFO(c->log, "agent", "%s/%s is back: its pending removal is cancelled", r->removal->jid,
             r->name);
    atomic_fetch_sub(&c->stats.removals_pending, 1);
    removal_free(r->removal);
    r->removal = NULL;
}

static void removal_retry_cb(loop_t *loop, void *arg)
{
    removal_t *r = arg;
    (void)loop;
    removal_submit(r->c, r);
}

/* Whether a request of the resource was accepted since its removal `rm`
 * was asked for. */
static int removal_outdated(component_t *c, const removal_t *rm)
{
    rsrc_t *r;
    if (!rm->linked)
        return 0;
    r = rsrc_find(strmap_get(c->users, rm->jid), rm->resource);
    return r && r->removal == rm && r->gen != rm->gen;
}

static void removal_done(void *arg)
{
    removal_job_t *j = arg;
    removal_t *r = j->r;
    component_t *c = r->c;

    if (j->rc == STORE_OK || j->rc == STORE_ENOTFOUND) {
        if (j->rc == STORE_OK) {
            stat_inc(&c->stats.removals);
            LOG_INFO(c->log, "agent", "%s/%s removed (%s)", r->jid, r->resource, r->why);
        }
        /* Publish in both cases: after a restart the stored item may
         * still list a resource that was removed before the crash. Not
         * for an operator's eviction that found nothing: a 404 changes
         * nothing (a mistyped JID must not create a PEP node). */
        if (j->rc == STORE_OK || !r->done) {
            user_offer(c, r->jid, j->out.text, j->out.len, j->out.digest,
                       j->out.have_last ? j->out.last : NULL, 0);
            j->out.text = NULL;
        }
        if (r->done) {
            component_cmd_result_t res = {0};
            res.status = j->rc == STORE_OK ? COMPONENT_CMD_OK : COMPONENT_CMD_NOT_FOUND;
            res.published = j->rc == STORE_OK && can_publish(c, r->jid);
            snprintf(res.message, sizeof res.message, "%s",
                     j->rc != STORE_OK ? "no such registered resource"
                     : res.published
                         ? "removed; new item sent"
                         : "removed; publish deferred (not connected or no pubsub permission)");
            r->done(&res, r->done_arg);
        }
        removal_end(c, r, 1);
    } else if (r->done) {
        component_cmd_result_t res = {0};
        res.status = j->rc == STORE_EUNAVAIL ? COMPONENT_CMD_UNAVAILABLE : COMPONENT_CMD_FAILED;
        snprintf(res.message, sizeof res.message, "%s", j->message);
        if (j->rc == STORE_EUNAVAIL)
            stat_inc(&c->stats.db_unavailable);
        r->done(&res, r->done_arg);
        removal_end(c, r, 0);
    } else if (j->rc == STORE_EUNAVAIL && !c->stopping && removal_outdated(c, r)) {
        /* A request of the resource was accepted after its removal was
         * queued (so it could not cancel it): its new session answers for
         * it, and a retry would remove what that request stored. */
        LOG_INFO(c->log, "agent", "%s/%s: removal failed (%s), not retried: it is back", r->jid,
                 r->resource, j->message);
        removal_end(c, r, 0);
    } else if (j->rc == STORE_EUNAVAIL && !c->stopping) {
        uint64_t delay = backoff_ms(c, 500, 30000, r->attempt++);
        stat_inc(&c->stats.db_unavailable);
        LOG_WARN(c->log, "db", "removing %s/%s: %s; retry in %" PRIu64 " ms", r->jid, r->resource,
                 j->message, delay);
        loop_timer_start(c->loop, &r->retry_timer, delay, removal_retry_cb, r);
    } else {
        LOG_ERROR(c->log, "db", "removing %s/%s failed: %s", r->jid, r->resource, j->message);
        removal_end(c, r, 0);
    }
    free(j->out.text);
    free(j);
}

static void removal_submit(component_t *c, removal_t *r)
{
    removal_job_t *j = calloc(1, sizeof *j);
    user_t *u = strmap_get(c->users, r->jid);
    if (!j) {
        removal_end(c, r, 0);
        return;
    }
    j->r = r;
    j->want_last = !u || !u->digest_known;
    if (dbpool_submit(c->pool, r->jid, removal_run, removal_done, j) != 0) {
        free(j);
        if (r->done) {
            component_cmd_result_t res = {0};
            res.status = COMPONENT_CMD_UNAVAILABLE;
            snprintf(res.message, sizeof res.message, "the component is stopping");
            r->done(&res, r->done_arg);
        }
        removal_end(c, r, 0);
    }
}

/* Remove `r` of `u` from the registry (it went away), unless its removal
 * is already on its way: one removal per resource at a time, however many
 * times it is asked for. */
static void remove_resource(component_t *c, user_t *u, rsrc_t *r, const char *why)
{
    removal_t *rm;
    if (r->removal) {
        stat_inc(&c->stats.removals_coalesced);
        return;
    }
    rm = calloc(1, sizeof *rm);
    if (!rm || !(rm->jid = dupstr(u->jid)) || !(rm->resource = dupstr(r->name))) {
        if (rm)
            free(rm->jid);
        free(rm);
        LOG_ERROR(c->log, SUB, "out of memory removing %s/%s", u->jid, r->name);
        return;
    }
    rm->c = c;
    rm->why = why;
    rm->linked = 1;
    rm->gen = r->gen;
    r->removal = rm;
    atomic_fetch_add(&c->stats.removals_pending, 1);
    removal_submit(c, rm);
}

/* ---- registration re-check (XEP-0199 pings) ----------------------------- */

typedef struct page_job {
    component_t *c;
    unsigned generation;
    char *after_jid, *after_resource;
    int rc;
    store_resources_t page;
    char message[STORE_ERROR_TEXT];
} page_job_t;

static void page_run(store_t *st, void *arg)
{
    page_job_t *j = arg;
    store_error_t err;
    j->rc =
        store_resources_list(st, NULL, j->after_jid, j->after_resource, CHECK_PAGE, &j->page, &err);
    if (j->rc)
        snprintf(j->message, sizeof j->message, "%s", err.message);
}

static void check_tick_cb(loop_t *loop, void *arg);
static void check_sweep_cb(loop_t *loop, void *arg);

static void page_done(void *arg)
{
    page_job_t *j = arg;
    component_t *c = j->c;

    if (j->generation == c->check.generation)
        c->check.fetching = 0; /* a page of an earlier pass does not end this one's fetch */
    if (j->generation != c->check.generation || !c->check.active) {
        store_resources_free(&j->page);
    } else if (j->rc != STORE_OK) {
        LOG_WARN(c->log, "check", "listing registrations failed: %s; retrying", j->message);
        store_resources_free(&j->page);
        loop_timer_start(c->loop, &c->check.tick, 2000, check_tick_cb, c);
    } else {
        store_resources_free(&c->check.page);
        c->check.page = j->page;
        c->check.next = 0;
        if (j->page.n < CHECK_PAGE)
            c->check.done_listing = 1;
        if (j->page.n) {
            store_resource_t *last = &j->page.v[j->page.n - 1];
            free(c->check.after_jid);
            free(c->check.after_resource);
            c->check.after_jid = dupstr(last->jid);
            c->check.after_resource = dupstr(last->resource);
        }
        check_pump(c);
    }
    free(j->after_jid);
    free(j->after_resource);
    free(j);
}

static void check_fetch(component_t *c)
{
    page_job_t *j = calloc(1, sizeof *j);
    if (!j)
        return;
    j->c = c;
    j->generation = c->check.generation;
    j->after_jid = dupstr(c->check.after_jid);
    j->after_resource = dupstr(c->check.after_resource);
    c->check.fetching = 1;
    if (dbpool_submit(c->pool, NULL, page_run, page_done, j) != 0) {
        c->check.fetching = 0;
        free(j->after_jid);
        free(j->after_resource);
        free(j);
    }
}

/* Republish check of one user: load and offer (skipped when unchanged). */
typedef struct republish_job {
    component_t *c;
    char *jid;
    int want_last;
    int rc;
    loaded_t out;
    component_cmd_done_fn done; /* an operator's forced republish */
    void *done_arg;
    char message[STORE_ERROR_TEXT];
} republish_job_t;

static void republish_run(store_t *st, void *arg)
{
    republish_job_t *j = arg;
    store_error_t err;
    j->rc = load_state(j->c, st, j->jid, j->want_last, &j->out, &err);
    if (j->rc)
        snprintf(j->message, sizeof j->message, "%s", err.message);
}

static void republish_done(void *arg)
{
    republish_job_t *j = arg;
    component_t *c = j->c;
    if (j->rc == STORE_OK) {
        if (j->done) {
            /* forced: forget what was published so the item goes out */
            user_t *u = user_get(c, j->jid);
            if (u) {
                u->digest_known = 1;
                u->last_digest[0] = '\0';
            }
        }
        user_offer(c, j->jid, j->out.text, j->out.len, j->out.digest,
                   j->out.have_last ? j->out.last : NULL, !j->done);
        j->out.text = NULL;
    }
    if (j->done) {
        component_cmd_result_t res = {0};
        res.status = j->rc == STORE_OK         ? COMPONENT_CMD_OK
                     : j->rc == STORE_EUNAVAIL ? COMPONENT_CMD_UNAVAILABLE
                                               : COMPONENT_CMD_FAILED;
        res.published = j->rc == STORE_OK && can_publish(c, j->jid);
        snprintf(res.message, sizeof res.message, "%s",
                 j->rc != STORE_OK ? j->message
                 : res.published   ? "item sent"
                                   : "publish deferred (not connected or no pubsub permission)");
        j->done(&res, j->done_arg);
    }
    free(j->out.text);
    free(j->jid);
    free(j);
}

static void republish_user(component_t *c, const char *jid)
{
    republish_job_t *j = calloc(1, sizeof *j);
    user_t *u = strmap_get(c->users, jid);
    if (!j || !(j->jid = dupstr(jid))) {
        free(j);
        return;
    }
    j->c = c;
    j->want_last = !u || !u->digest_known;
    if (dbpool_submit(c->pool, jid, republish_run, republish_done, j) != 0) {
        free(j->jid);
        free(j);
    }
}

static void check_send_ping(component_t *c, const store_resource_t *sr)
{
    pending_iq_t *p = calloc(1, sizeof *p);
    rsrc_t *r = rsrc_find(strmap_get(c->users, sr->jid), sr->resource);
    char *to;
    if (!p)
        return;
    p->kind = PENDING_PING;
    p->jid = dupstr(sr->jid);
    p->resource = dupstr(sr->resource);
    p->gen = r ? r->gen : 0;
    to = malloc(strlen(sr->jid) + strlen(sr->resource) + 2);
    if (!p->jid || !p->resource || !to || new_iq_id(p->id, 'c') != 0 || pending_add(c, p) != 0) {
        free(to);
        free(p->jid);
        free(p->resource);
        free(p);
        return;
    }
    sprintf(to, "%s/%s", sr->jid, sr->resource);
    c->check.inflight++;
    stat_inc(&c->stats.pings_sent);
    ping_send(c, p, to);
    free(to);
}

static void ping_ended(component_t *c, pending_iq_t *p, int alive, const char *why)
{
    user_t *u = strmap_get(c->users, p->jid);
    rsrc_t *r = rsrc_find(u, p->resource);

    if (c->check.inflight)
        c->check.inflight--;
    if (alive) {
        /* A registration the index did not know (made by hand in the
         * database, say) is known from now on. */
        if (!u)
            u = user_get(c, p->jid);
        if (!r && u && (r = rsrc_get(u, p->resource)) != NULL)
            r->stored = 1;
        if (r)
            r->online = 1;
    } else if (r && r->gen != p->gen) {
        /* It sent a request since the ping left: its new session answers
         * for it, whatever the old one did. */
        LOG_DEBUG(c->log, "check", "%s/%s did not answer (%s) but spoke since: kept", p->jid,
                  p->resource, why);
    } else {
        LOG_INFO(c->log, "check", "%s/%s did not answer (%s): removing", p->jid, p->resource, why);
        if (!u)
            u = user_get(c, p->jid);
        if (!r && u && (r = rsrc_get(u, p->resource)) != NULL)
            r->stored = 1; /* listed in the database: it is there */
        if (r) {
            r->online = 0;
            remove_resource(c, u, r, "no answer to the liveness ping");
        } else {
            LOG_ERROR(c->log, SUB, "out of memory removing %s/%s", p->jid, p->resource);
        }
    }
    check_pump(c);
}

/* Send the next pings of the current page, paced by check_rate. */
static void check_pump(component_t *c)
{
    unsigned budget;
    if (!c->check.active || !c->connected || loop_timer_armed(&c->check.tick))
        return;
    budget = c->s.check_rate / 10 ? c->s.check_rate / 10 : 1; /* per 100 ms tick */
    while (budget && c->check.next < c->check.page.n && c->check.inflight < CHECK_MAX_INFLIGHT) {
        store_resource_t *r = &c->check.page.v[c->check.next++];
        if (!c->check.last_user || strcmp(c->check.last_user, r->jid) != 0) {
            free(c->check.last_user);
            c->check.last_user = dupstr(r->jid);
            if (c->check.republish)
                republish_user(c, r->jid);
        }
        check_send_ping(c, r);
        budget--;
    }
    if (c->check.next < c->check.page.n) {
        if (c->check.inflight < CHECK_MAX_INFLIGHT)
            loop_timer_start(c->loop, &c->check.tick,
                             c->s.check_rate >= 10 ? 100
                                                   : 1000 / (c->s.check_rate ? c->s.check_rate : 1),
                             check_tick_cb, c);
        return;
    }
    if (!c->check.done_listing) {
        if (!c->check.fetching)
            check_fetch(c);
        return;
    }
    if (c->check.inflight == 0) {
        LOG_INFO(c->log, "check", "%s",
                 c->check.republish ? "registration re-check finished" : "liveness sweep finished");
        c->check.active = 0;
        loop_timer_start(c->loop, &c->check.sweep, (uint64_t)c->s.liveness_interval_s * 1000,
                         check_sweep_cb, c);
    }
}

static void check_tick_cb(loop_t *loop, void *arg)
{
    component_t *c = arg;
    (void)loop;
    if (!c->check.fetching && c->check.next >= c->check.page.n && !c->check.done_listing)
        check_fetch(c);
    else
        check_pump(c);
}

/* Start a pass over every registration: ping each (paced by check_rate)
 * and remove those that do not answer. After a (re)connection
 * (`republish`) each user's item is also sent again when it differs from
 * the last one published; between them, the periodic liveness sweep. */
static void check_start(component_t *c, int republish)
{
    c->check.generation++;
    c->check.active = 1;
    c->check.republish = republish;
    c->check.fetching = 0;
    c->check.done_listing = 0;
    c->check.inflight = 0;
    free(c->check.after_jid);
    free(c->check.after_resource);
    free(c->check.last_user);
    c->check.after_jid = c->check.after_resource = c->check.last_user = NULL;
    store_resources_free(&c->check.page);
    c->check.next = 0;
    loop_timer_stop(c->loop, &c->check.tick);
    loop_timer_stop(c->loop, &c->check.sweep);
    if (republish) {
        LOG_INFO(c->log, "check", "re-checking stored registrations (%u pings/s)", c->s.check_rate);
    } else {
        stat_inc(&c->stats.sweeps);
        LOG_DEBUG(c->log, "check", "liveness sweep (%u pings/s)", c->s.check_rate);
    }
    check_fetch(c);
}

static void check_sweep_cb(loop_t *loop, void *arg)
{
    component_t *c = arg;
    (void)loop;
    if (c->connected && !c->stopping && !c->check.active)
        check_start(c, 0);
}

/* ---- administrative commands ------------------------------------------------ */

static void command_free(command_t *cmd)
{
    free(cmd->jid);
    free(cmd->resource);
    free(cmd);
}

static int command_queue(component_t *c, int republish, const char *jid, const char *resource,
                         component_cmd_done_fn done, void *arg)
{
    command_t *cmd = calloc(1, sizeof *cmd);
    uint64_t one = 1;
    int ok;

    if (!cmd || !jid || !(cmd->jid = dupstr(jid)) ||
        (resource && !(cmd->resource = dupstr(resource)))) {
        if (cmd)
            command_free(cmd);
        return -1;
    }
    cmd->republish = republish;
    cmd->done = done;
    cmd->arg = arg;
    pthread_mutex_lock(&c->cmd_mu);
    ok = !c->cmd_closed;
    if (ok) {
        if (c->cmd_tail)
            c->cmd_tail->next = cmd;
        else
            c->cmd_head = cmd;
        c->cmd_tail = cmd;
    }
    pthread_mutex_unlock(&c->cmd_mu);
    if (!ok) {
        command_free(cmd);
        return -1;
    }
    if (write(c->cmd_efd, &one, sizeof one) < 0) {
        /* the counter is already non-zero: the loop will wake anyway */
    }
    return 0;
}

int component_evict(component_t *c, const char *jid, const char *resource,
                    component_cmd_done_fn done, void *arg)
{
    if (!resource)
        return -1;
    return command_queue(c, 0, jid, resource, done, arg);
}

int component_republish(component_t *c, const char *jid, component_cmd_done_fn done, void *arg)
{
    return command_queue(c, 1, jid, NULL, done, arg);
}

int component_stopping(const component_t *c)
{
    return atomic_load(&c->stopping_flag);
}

static void command_fail(command_t *cmd, const char *why)
{
    component_cmd_result_t res = {0};
    res.status = COMPONENT_CMD_UNAVAILABLE;
    snprintf(res.message, sizeof res.message, "%s", why);
    if (cmd->done)
        cmd->done(&res, cmd->arg);
}

static void command_run(component_t *c, command_t *cmd)
{
    if (cmd->republish) {
        republish_job_t *j = calloc(1, sizeof *j);
        if (!j || !(j->jid = dupstr(cmd->jid))) {
            free(j);
            command_fail(cmd, "out of memory");
            return;
        }
        j->c = c;
        j->want_last = 0;
        j->done = cmd->done;
        j->done_arg = cmd->arg;
        if (dbpool_submit(c->pool, cmd->jid, republish_run, republish_done, j) != 0) {
            free(j->jid);
            free(j);
            command_fail(cmd, "the component is stopping");
        }
    } else {
        removal_t *r = calloc(1, sizeof *r);
        if (!r || !(r->jid = dupstr(cmd->jid)) || !(r->resource = dupstr(cmd->resource))) {
            if (r)
                free(r->jid);
            free(r);
            command_fail(cmd, "out of memory");
            return;
        }
        r->c = c;
        r->why = "evicted by an operator";
        r->done = cmd->done;
        r->done_arg = cmd->arg;
        removal_submit(c, r);
    }
}

/* Take every queued command; with `fail`, answer them as unavailable. */
static void commands_drain(component_t *c, int fail)
{
    command_t *list, *next;
    uint64_t count;

    while (read(c->cmd_efd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&c->cmd_mu);
    list = c->cmd_head;
    c->cmd_head = c->cmd_tail = NULL;
    pthread_mutex_unlock(&c->cmd_mu);
    for (; list; list = next) {
        next = list->next;
        if (fail)
            command_fail(list, "the component is stopping");
        else
            command_run(c, list);
        command_free(list);
    }
}

static void cmd_fd_cb(loop_t *loop, int fd, short revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    commands_drain(arg, 0);
}

/* ---- stanza handlers ------------------------------------------------------- */

static int domain_served(component_t *c, const char *domain)
{
    return domain && perm_for(c, domain) != NULL;
}

/* A result or error: the reply to one of our IQs, when its id is one we
 * wait for and it comes from whom we asked. Anything else is dropped
 * (RFC 6120 8.2.3: never answered) and counted. */
static void handle_reply(component_t *c, xmpp_stanza_t *st, const char *type)
{
    const char *id = xmpp_stanza_get_id(st), *from = xmpp_stanza_get_from(st);
    pending_iq_t *p = id ? strmap_get(c->pending, id) : NULL;

    if (!p) {
        stat_inc(&c->stats.replies_unknown);
        LOG_DEBUG(c->log, "xmpp", "dropped an IQ %s from %s: no request with that id", type,
                  from ? from : "?");
        return;
    }
    if (!reply_from_ok(p, from)) {
        stat_inc(&c->stats.replies_forged);
        LOG_DEBUG(c->log, "xmpp", "dropped an IQ %s from %s: the request did not go there", type,
                  from ? from : "?");
        return;
    }
    strmap_del(c->pending, id);
    if (p->kind == PENDING_PUBLISH) {
        char why[300];
        int rc = stanza_parse_privileged_result(st, why, sizeof why);
        user_t *u = p->user;
        hist_observe_us(&c->stats.publish_time, hist_now_us() - p->sent_us);
        user_publish_ended(c, u, rc == 0, rc == -2, why);
        pending_free(c, p);
        user_kick(c, u);
        catchup_pump(c);
    } else if (p->kind == PENDING_PROBE) {
        probe_ended(c, p, strcmp(type, "result") == 0, "error reply");
        pending_free(c, p);
    } else {
        ping_ended(c, p, strcmp(type, "result") == 0, "error reply");
        pending_free(c, p);
    }
}

static int iq_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    component_t *c = arg;
    const char *type = xmpp_stanza_get_type(st), *id;
    xmpp_stanza_t *child;
    const char *ns, *name;
    (void)conn;

    if (!type)
        return 1;
    if (strcmp(type, "result") == 0 || strcmp(type, "error") == 0) {
        if (to_component(c, xmpp_stanza_get_to(st)))
            handle_reply(c, st, type);
        else
            stat_inc(&c->stats.replies_unknown); /* we only ever ask as ourselves */
        return 1;
    }
    if (strcmp(type, "get") != 0 && strcmp(type, "set") != 0)
        return 1;
    id = xmpp_stanza_get_id(st);
    if (id && strlen(id) > MAX_REQUEST_ID) {
        /* No reply can carry it safely (RFC 6120 8.2.3 asks for one). */
        stat_inc(&c->stats.requests_dropped);
        LOG_DEBUG(c->log, "xmpp", "dropped an IQ %s from %s: its id has %zu bytes", type,
                  xmpp_stanza_get_from(st) ? xmpp_stanza_get_from(st) : "?", strlen(id));
        return 1;
    }
    if (!to_component(c, xmpp_stanza_get_to(st))) {
        /* x@component or component/x: no such entity here. */
        send_stanza(c, stanza_build_iq_error(c->ctx, st, "cancel", "service-unavailable",
                                             "no such service: requests go to the component's "
                                             "own JID"));
        return 1;
    }
    child = xmpp_stanza_get_children(st);
    while (child && !xmpp_stanza_is_tag(child))
        child = xmpp_stanza_get_next(child);
    ns = child ? xmpp_stanza_get_ns(child) : NULL;
    name = child ? xmpp_stanza_get_name(child) : NULL;
    if (ns && strcmp(ns, AGENT_NS) == 0) {
        handle_agent_request(c, st);
    } else if (strcmp(type, "get") == 0 && ns && name &&
               strcmp(ns, "http://jabber.org/protocol/disco#info") == 0 &&
               strcmp(name, "query") == 0) {
        send_stanza(c, stanza_build_disco_info(c->ctx, st, c->s.name, &c->s.limits));
    } else if (strcmp(type, "get") == 0 && ns && name && strcmp(ns, STANZA_NS_PING) == 0 &&
               strcmp(name, "ping") == 0) {
        send_stanza(c, stanza_build_iq_result(c->ctx, st));
    } else {
        /* Not ours: the agent protocol's parser says why (an element in a
         * namespace this service does not support, or no child at all). */
        agent_request_t req;
        agent_error_t err;
        if (agent_request_parse(st, (const char *const *)c->domains, &c->s.limits, &req, &err) ==
            0) {
            agent_request_clear(&req); /* cannot happen: not in AGENT_NS */
            agent_error_set(&err, AGENT_ERR_SERVICE_UNAVAILABLE, "this request is not supported");
        }
        send_stanza(c, stanza_build_agent_error(c->ctx, st, &err));
    }
    return 1;
}

/* Presence from an agent (directed to the component). Available: the
 * resource is online. Unavailable (or an error bounce): it went away, and
 * when it is registered its removal is queued; for a resource that is
 * not registered nothing happens at all. */
static int presence_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    component_t *c = arg;
    const char *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);
    char *bare = NULL, *domain = NULL, *resource = NULL;
    int gone;
    (void)conn;

    if (!from || !to_component(c, xmpp_stanza_get_to(st)))
        goto out;
    gone = type && (strcmp(type, "unavailable") == 0 || strcmp(type, "error") == 0);
    if (type && !gone)
        goto out; /* subscription requests, probes: not for us */
    bare = xmpp_jid_bare(c->ctx, from);
    domain = xmpp_jid_domain(c->ctx, from);
    resource = xmpp_jid_resource(c->ctx, from);
    if (bare && resource && *resource && strchr(bare, '@') && domain_served(c, domain)) {
        /* Normalize the domain as the agent protocol does. */
        char *at = strchr(bare, '@'), *p;
        user_t *u;
        rsrc_t *r;
        for (p = at + 1; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        u = strmap_get(c->users, bare);
        r = rsrc_find(u, resource);
        if (!gone) {
            if (!r) {
                if (!u)
                    u = user_get(c, bare);
                if (u && u->nres < rsrc_presence_cap(c))
                    r = rsrc_get(u, resource);
            }
            if (r)
                r->online = 1;
            else
                stat_inc(&c->stats.presences_ignored);
        } else if (!r) {
            stat_inc(&c->stats.presences_ignored); /* never registered: costs nothing */
        } else {
            r->online = 0;
            if (r->stored || r->reg_jobs)
                remove_resource(c, u, r,
                                strcmp(type, "error") == 0 ? "presence error" : "unavailable");
            else
                rsrc_release(u, r);
        }
    }
out:
    if (bare)
        xmpp_free(c->ctx, bare);
    if (domain)
        xmpp_free(c->ctx, domain);
    if (resource)
        xmpp_free(c->ctx, resource);
    return 1;
}

static int message_handler(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    component_t *c = arg;
    const char *from = xmpp_stanza_get_from(st);
    stanza_privileges_t priv;
    domain_perm_t *p;
    (void)conn;

    if (!from || strchr(from, '@') || strchr(from, '/') || !to_component(c, xmpp_stanza_get_to(st)))
        return 1; /* advertisements come from the server's domain, to us */
    if (stanza_parse_privileges(st, &priv) != 0)
        return 1;
    p = perm_for(c, from);
    if (!p) {
        LOG_DEBUG(c->log, "privilege", "advertisement from %s, a domain not served", from);
        return 1;
    }
    if (priv.version == 2 && priv.pubsub_set) {
        if (p->state != 1)
            LOG_INFO(c->log, "privilege", "%s grants the pubsub iq permission: publishing enabled",
                     from);
        p->state = 1;
        strmap_each(c->users, kick_each, c);
        catchup_pump(c);
    } else {
        p->state = -1;
        LOG_ERROR(c->log, "privilege",
                  "%s does not grant the XEP-0356 iq permission for "
                  "http://jabber.org/protocol/pubsub (set)%s: registrations are stored but "
                  "nothing is published for its users. Grant it as in " PRIVILEGE_SNIPPET
                  " (Prosody) or deploy/ejabberd/bitween-privilege.yml (ejabberd)",
                  from, priv.version == 1 ? " (the server speaks only urn:xmpp:privilege:1)" : "");
    }
    {
        size_t i;
        int all = 1;
        for (i = 0; i < c->n_domains; i++)
            all = all && c->perms[i].state == 1;
        atomic_store(&c->stats.publish_allowed, all);
    }
    return 1;
}

/* ---- connection ------------------------------------------------------------ */

static void xmpp_fd_cb(loop_t *loop, int fd, short revents, void *arg)
{
    component_t *c = arg;
    (void)loop;
    (void)fd;
    /* xmpp_run_once() runs after every iteration and does the I/O */
    if (revents & POLLIN)
        c->fd_ready = 1;
}

static void reconnect_cb(loop_t *loop, void *arg);

static void schedule_reconnect(component_t *c)
{
    uint64_t delay;
    if (c->stopping)
        return;
    delay = backoff_ms(c, c->s.reconnect_min_ms, c->s.reconnect_max_ms, c->reconnect_attempt++);
    LOG_INFO(c->log, "xmpp", "reconnecting in %" PRIu64 " ms", delay);
    loop_timer_start(c->loop, &c->reconnect_timer, delay, reconnect_cb, c);
}

static void privilege_timeout_cb(loop_t *loop, void *arg)
{
    component_t *c = arg;
    size_t i;
    (void)loop;
    for (i = 0; i < c->n_domains; i++) {
        if (c->perms[i].state != 0)
            continue;
        c->perms[i].state = -1;
        LOG_ERROR(c->log, "privilege",
                  "no XEP-0356 privilege advertisement from %s within %u ms: registrations are "
                  "stored but nothing is published for its users. Enable mod_privilege on the "
                  "VirtualHost %s and on the Component host, with privileged_entities as "
                  "in " PRIVILEGE_SNIPPET,
                  c->perms[i].domain, c->s.privilege_wait_ms, c->perms[i].domain);
    }
}

static void forget_online_each(const char *key, void *value, void *arg)
{
    user_t *u = value;
    size_t i = u->nres;
    (void)key;
    (void)arg;
    while (i-- > 0) { /* backwards: rsrc_release() moves the last entry here */
        u->res[i]->online = 0;
        rsrc_release(u, u->res[i]);
    }
}

static void conn_handler(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                         xmpp_stream_error_t *stream_error, void *arg)
{
    component_t *c = arg;
    size_t i;
    (void)conn;

    if (status == XMPP_CONN_CONNECT) {
        c->connected = 1;
        c->reconnect_attempt = 0;
        atomic_store(&c->stats.xmpp_up, 1);
        stat_inc(&c->stats.xmpp_connects);
        LOG_INFO(c->log, "xmpp", "connected to %s:%u as %s", c->s.xmpp_host, c->s.xmpp_port,
                 c->s.jid);
        loop_timer_start(c->loop, &c->privilege_timer, c->s.privilege_wait_ms, privilege_timeout_cb,
                         c);
        if (!c->stopping)
            check_start(c, 1);
        return;
    }
    if (status == XMPP_CONN_RAW_CONNECT)
        return;
    /* disconnected or failed */
    if (c->fd >= 0) {
        loop_fd_del(c->loop, c->fd);
        c->fd = -1;
    }
    if (c->connected)
        stat_inc(&c->stats.xmpp_disconnects);
    c->connected = 0;
    atomic_store(&c->stats.xmpp_up, 0);
    atomic_store(&c->stats.publish_allowed, 0);
    loop_timer_stop(c->loop, &c->privilege_timer);
    for (i = 0; i < c->n_domains; i++)
        c->perms[i].state = 0;
    c->check.active = 0;
    loop_timer_stop(c->loop, &c->check.tick);
    loop_timer_stop(c->loop, &c->check.sweep);
    pending_fail_all(c);
    /* Sessions may be gone with the server: nobody is known to be online
     * until they say so again (presence, or the re-check's pings). */
    strmap_each(c->users, forget_online_each, NULL);
    if (stream_error)
        LOG_ERROR(c->log, "xmpp", "stream error from the server: %s%s%s",
                  stream_error->type == XMPP_SE_NOT_AUTHORIZED ? "not-authorized (wrong secret?)"
                                                               : "see server log",
                  stream_error->text ? ": " : "", stream_error->text ? stream_error->text : "");
    else if (!c->stopping)
        LOG_WARN(c->log, "xmpp", "connection to %s:%u lost or refused%s%s", c->s.xmpp_host,
                 c->s.xmpp_port, error ? ": " : "", error ? strerror(error) : "");
    schedule_reconnect(c);
}

static void xmpp_connect_now(component_t *c)
{
    int rc;
    rc = xmpp_connect_component(c->conn, c->s.xmpp_host, (unsigned short)c->s.xmpp_port,
                                conn_handler, c);
    if (rc != XMPP_EOK) {
        LOG_WARN(c->log, "xmpp", "cannot start connecting to %s:%u", c->s.xmpp_host,
                 c->s.xmpp_port);
        schedule_reconnect(c);
        return;
    }
    c->fd = xmpp_compat_socket(c->conn);
    if (c->fd >= 0)
        loop_fd_add(c->loop, c->fd, POLLIN | POLLOUT, xmpp_fd_cb, c);
}

static void reconnect_cb(loop_t *loop, void *arg)
{
    (void)loop;
    xmpp_connect_now(arg);
}

static void db_fd_cb(loop_t *loop, int fd, short revents, void *arg)
{
    component_t *c = arg;
    (void)loop;
    (void)fd;
    (void)revents;
    dbpool_drain(c->pool);
}

/* ---- life cycle ------------------------------------------------------------ */

void component_settings_default(component_settings_t *s)
{
    memset(s, 0, sizeof *s);
    s->xmpp_host = "127.0.0.1";
    s->xmpp_port = 5347;
    s->db_workers = 4;
    s->db_connect_timeout_s = 5;
    s->db_statement_timeout_ms = 10000;
    shares_limits_default(&s->limits);
    s->reconnect_min_ms = 500;
    s->reconnect_max_ms = 60000;
    s->publish_retry_max_ms = 60000;
    s->iq_timeout_ms = 30000;
    s->privilege_wait_ms = 5000;
    s->check_rate = 50;
    s->max_pending = 10000;
    s->max_pending_per_user = 32;
    s->liveness_interval_s = 300;
    s->max_republishes_in_flight = 4;
    s->state_cache_mb = 64;
    s->name = "bitween";
}

component_t *component_new(const component_settings_t *s, log_t *log)
{
    component_t *c = calloc(1, sizeof *c);
    store_options_t so;
    size_t i, n = 0;

    if (!c)
        return NULL;
    c->log = log;
    c->fd = -1;
    c->cmd_efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&c->cmd_mu, NULL);
    c->s = *s;
    c->s.xmpp_host = c->own_host = dupstr(s->xmpp_host);
    c->s.jid = c->own_jid = dupstr(s->jid);
    c->s.secret = c->own_secret = dupstr(s->secret);
    c->s.database_url = c->own_url = dupstr(s->database_url);
    c->s.name = c->own_name = dupstr(s->name ? s->name : "bitween");
    c->s.domains = NULL;
    while (s->domains && s->domains[n])
        n++;
    c->domains = calloc(n + 1, sizeof *c->domains);
    c->perms = calloc(n + 1, sizeof *c->perms);
    c->n_domains = n;
    c->rng = (unsigned)time(NULL) ^ (unsigned)getpid();
    if (!c->s.xmpp_host || !c->s.jid || !c->s.secret || !c->s.database_url || !c->s.name ||
        !c->domains || !c->perms || c->cmd_efd < 0)
        goto fail;
    for (i = 0; i < n; i++) {
        char *p;
        c->domains[i] = dupstr(s->domains[i]);
        if (!c->domains[i])
            goto fail;
        for (p = c->domains[i]; *p; p++)
            if (*p >= 'A' && *p <= 'Z')
                *p = (char)(*p - 'A' + 'a');
        c->perms[i].domain = c->domains[i];
    }
    c->loop = loop_new();
    c->users = strmap_new();
    c->pending = strmap_new();
    c->ctx = xmpp_ctx_new(NULL, log_strophe(log));
    if (!c->loop || !c->users || !c->pending || !c->ctx)
        goto fail;
    c->conn = xmpp_conn_new(c->ctx);
    if (!c->conn)
        goto fail;
    xmpp_conn_set_jid(c->conn, c->s.jid);
    xmpp_conn_set_pass(c->conn, c->s.secret);
    if (xmpp_compat_component_prepare(c->conn) != XMPP_EOK ||
        xmpp_compat_watch_socket(c->conn) != 0) {
        LOG_ERROR(log, SUB, "cannot prepare the XMPP connection");
        goto fail;
    }
    xmpp_handler_add(c->conn, iq_handler, NULL, "iq", NULL, c);
    xmpp_handler_add(c->conn, presence_handler, NULL, "presence", NULL, c);
    xmpp_handler_add(c->conn, message_handler, NULL, "message", NULL, c);
    memset(&so, 0, sizeof so);
    so.connect_timeout_s = s->db_connect_timeout_s;
    so.statement_timeout_ms = s->db_statement_timeout_ms;
    so.application_name = "bitween-component";
    c->states = statecache_new((size_t)s->state_cache_mb * 1024 * 1024);
    if (!c->states)
        goto fail;
    c->pool = dbpool_new(c->s.database_url, &so, s->db_workers, log);
    if (!c->pool)
        goto fail;
    return c;

fail:
    LOG_ERROR(log, SUB, "cannot create the component (out of memory?)");
    component_free(c);
    return NULL;
}

static void user_free_each(const char *key, void *value, void *arg)
{
    (void)key;
    (void)arg;
    user_free(value);
}

static void pending_free_each(const char *key, void *value, void *arg)
{
    pending_iq_t *p = value;
    (void)key;
    if (p->kind == PENDING_PROBE)
        probe_drop(arg, p);
    pending_free(arg, p);
}

void component_free(component_t *c)
{
    size_t i;
    if (!c)
        return;
    pthread_mutex_lock(&c->cmd_mu);
    c->cmd_closed = 1;
    pthread_mutex_unlock(&c->cmd_mu);
    if (c->cmd_efd >= 0)
        commands_drain(c, 1);
    /* Releasing an open or opening stream runs the disconnect handler,
     * which needs everything below: release it first. */
    c->stopping = 1;
    if (c->conn) {
        xmpp_compat_unwatch_socket(c->conn);
        xmpp_conn_release(c->conn);
        c->conn = NULL;
    }
    dbpool_free(c->pool); /* runs remaining completions: needs the rest alive */
    statecache_free(c->states);
    if (c->pending) {
        strmap_each(c->pending, pending_free_each, c);
        strmap_free(c->pending);
    }
    if (c->users) {
        strmap_each(c->users, user_free_each, NULL);
        strmap_free(c->users);
    }
    store_resources_free(&c->check.page);
    free(c->check.after_jid);
    free(c->check.after_resource);
    free(c->check.last_user);
    if (c->ctx)
        xmpp_ctx_free(c->ctx);
    loop_free(c->loop);
    for (i = 0; c->domains && i < c->n_domains; i++)
        free(c->domains[i]);
    free(c->domains);
    free(c->perms);
    free(c->own_host);
    free(c->own_jid);
    free(c->own_secret);
    free(c->own_url);
    free(c->own_name);
    if (c->cmd_efd >= 0)
        close(c->cmd_efd);
    pthread_mutex_destroy(&c->cmd_mu);
    free(c);
}

void component_on_reload(component_t *c, volatile sig_atomic_t *flag, component_reload_fn fn,
                         void *arg)
{
    c->reload_flag = flag;
    c->reload_fn = fn;
    c->reload_arg = arg;
}

component_stats_t *component_stats(component_t *c)
{
    return &c->stats;
}

void component_cache_stats(component_t *c, statecache_stats_t *out)
{
    statecache_stats(c->states, out);
}

unsigned component_db_workers(const component_t *c)
{
    return dbpool_workers(c->pool);
}

size_t component_db_queue(const component_t *c, unsigned i)
{
    return dbpool_queue_length(c->pool, i);
}

/* One loop iteration: wait, run timers and callbacks, then let libstrophe
 * read, parse and write. */
static void iterate(component_t *c, int max_wait_ms)
{
    if (c->fd >= 0) {
        short ev = POLLIN;
        if (xmpp_conn_is_connecting(c->conn) || xmpp_conn_send_queue_len(c->conn) > 0)
            ev |= POLLOUT;
        loop_fd_events(c->loop, c->fd, ev);
    }
    /* libstrophe's own timers (connect timeout) need a regular turn. */
    loop_run_once(c->loop, c->fd >= 0 ? (max_wait_ms < 200 ? max_wait_ms : 200) : max_wait_ms);
    xmpp_run_once(c->ctx, 0);
    if (c->fd_ready && c->fd >= 0) {
        /* ACK what we read at once: Prosody keeps Nagle's algorithm on by
         * default, and would hold its next small write (the reply to a
         * publish) until our delayed ACK, some 40 ms later. Linux resets
         * quick-ACK mode by itself, hence after every read. */
        int one = 1;
        setsockopt(c->fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
    c->fd_ready = 0;
    if (c->reload_flag && *c->reload_flag) {
        *c->reload_flag = 0;
        if (c->reload_fn)
            c->reload_fn(c->reload_arg);
    }
}

static int migrate_at_start(component_t *c, volatile sig_atomic_t *stop)
{
    store_t *st = store_new(c->s.database_url, NULL);
    store_error_t err;
    unsigned attempt = 0;
    int version = 0, rc;

    if (!st)
        return -1;
    for (;;) {
        rc = store_migrate(st, &version, &err);
        if (rc == STORE_OK) {
            LOG_INFO(c->log, "db", "database schema at version %d", version);
            break;
        }
        if (rc != STORE_EUNAVAIL) {
            LOG_ERROR(c->log, "db", "cannot apply migrations: %s", err.message);
            break;
        }
        {
            uint64_t delay = backoff_ms(c, 500, 30000, attempt++), end;
            LOG_WARN(c->log, "db", "database unavailable (%s); retrying in %" PRIu64 " ms",
                     err.message, delay);
            end = loop_now_ms(c->loop) + delay;
            while (!*stop && loop_now_ms(c->loop) < end)
                loop_run_once(c->loop, 100);
        }
        if (*stop)
            break;
    }
    store_free(st);
    return rc == STORE_OK ? 0 : -1;
}

/* Read every registration into the index (blocking, before the stream
 * opens: a presence must find what is registered). Waits for the
 * database like the migrations. Returns 0, or -1 when stopped or out of
 * memory. */
static int registry_load(component_t *c, volatile sig_atomic_t *stop)
{
    store_t *st = store_new(c->s.database_url, NULL);
    store_resources_t page = {0};
    store_error_t err;
    char *after_jid = NULL, *after_res = NULL;
    unsigned attempt = 0;
    size_t total = 0, i;
    int rc = -1;

    if (!st)
        return -1;
    while (!*stop) {
        if (store_resources_list(st, NULL, after_jid, after_res, REGISTRY_PAGE, &page, &err) !=
            STORE_OK) {
            uint64_t delay = backoff_ms(c, 500, 30000, attempt++), end;
            LOG_WARN(c->log, "db", "reading the registrations: %s; retrying in %" PRIu64 " ms",
                     err.message, delay);
            end = loop_now_ms(c->loop) + delay;
            while (!*stop && loop_now_ms(c->loop) < end)
                loop_run_once(c->loop, 100);
            continue;
        }
        for (i = 0; i < page.n; i++) {
            user_t *u = user_get(c, page.v[i].jid);
            rsrc_t *r = u ? rsrc_get(u, page.v[i].resource) : NULL;
            if (!r)
                goto out;
            r->stored = 1;
        }
        total += page.n;
        if (page.n < REGISTRY_PAGE) {
            rc = 0;
            break;
        }
        free(after_jid);
        free(after_res);
        after_jid = dupstr(page.v[page.n - 1].jid);
        after_res = dupstr(page.v[page.n - 1].resource);
        store_resources_free(&page);
        if (!after_jid || !after_res)
            goto out;
    }
out:
    if (rc == 0)
        LOG_INFO(c->log, "db", "%zu registered resource(s) known", total);
    else if (!*stop)
        LOG_ERROR(c->log, "db", "out of memory reading the registrations");
    store_resources_free(&page);
    free(after_jid);
    free(after_res);
    store_free(st);
    return rc;
}

/* At a graceful stop: requests waiting for a liveness ping would still
 * wait when the stream closes; they are refused now, as new ones are.
 * The probe itself stays in flight (and finds nothing held). */
static void refuse_held_each(const char *key, void *value, void *arg)
{
    pending_iq_t *p = value;
    component_t *c = arg;
    req_job_t *j, *next;
    rsrc_t *r;
    (void)key;
    if (p->kind != PENDING_PROBE)
        return;
    r = p->res;
    r->jobs++; /* keeps `r` while its requests finish */
    for (j = held_take(c, r); j; j = next) {
        next = j->next;
        req_refuse(c, j, AGENT_ERR_UNAVAILABLE, "the component is shutting down; retry later");
    }
    r->jobs--;
    rsrc_release(p->user, r);
}

int component_run(component_t *c, volatile sig_atomic_t *stop)
{
    uint64_t end;

    if (migrate_at_start(c, stop) != 0)
        return *stop ? 0 : -1;
    if (registry_load(c, stop) != 0)
        return *stop ? 0 : -1;
    if (loop_fd_add(c->loop, dbpool_fd(c->pool), POLLIN, db_fd_cb, c) != 0 ||
        loop_fd_add(c->loop, c->cmd_efd, POLLIN, cmd_fd_cb, c) != 0)
        return -1;
    xmpp_connect_now(c);
    while (!*stop)
        iterate(c, 1000);

    /* Graceful stop: answer the work in flight, then close the stream. */
    LOG_INFO(c->log, SUB, "stopping: finishing %zu database job(s)", dbpool_pending(c->pool));
    c->stopping = 1;
    atomic_store(&c->stopping_flag, 1);
    pthread_mutex_lock(&c->cmd_mu);
    c->cmd_closed = 1;
    pthread_mutex_unlock(&c->cmd_mu);
    commands_drain(c, 1);
    loop_timer_stop(c->loop, &c->reconnect_timer);
    if (c->pending)
        strmap_each(c->pending, refuse_held_each, c);
    end = loop_now_ms(c->loop) + STOP_DRAIN_MS;
    while (dbpool_pending(c->pool) > 0 && loop_now_ms(c->loop) < end)
        iterate(c, 50);
    end = loop_now_ms(c->loop) + STOP_CLOSE_MS;
    while (c->connected && xmpp_conn_send_queue_len(c->conn) > 0 && loop_now_ms(c->loop) < end)
        iterate(c, 20);
    if (c->connected || xmpp_conn_is_connecting(c->conn)) {
        xmpp_disconnect(c->conn);
        end = loop_now_ms(c->loop) + STOP_CLOSE_MS;
        while (!xmpp_conn_is_disconnected(c->conn) && loop_now_ms(c->loop) < end)
            iterate(c, 20);
    }
    LOG_INFO(c->log, SUB, "stopped");
    return 0;
}
