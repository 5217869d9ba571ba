/* SPDX-License-Identifier: MIT */
/*
 * Component benchmark on the local stack's Prosody and PostgreSQL: many
 * agents (c2s sessions, U users x R resources, spread over forked
 * processes because libstrophe's select() loop holds under 1,024
 * descriptors each) update their shares, and a watching contact subscribed
 * to every user measures when each update's notification arrives. Three
 * paths publish the same merged items (R resources x n shares, at least
 * one share per resource so that every update changes the item) on the
 * same server, for n = 1, 10 and 100:
 *
 *  - component: agents send <register/> to bitween-component, which
 *    commits to PostgreSQL, acknowledges and publishes through XEP-0356;
 *  - raw privileged: the same agents send the same <register/>s to a
 *    minimal component (this process) that acknowledges each at once and
 *    publishes the user's merged item through XEP-0356, one publish in
 *    flight per user and the newest state sent next, as bitween-component
 *    does, but with no database and no checks: the ceiling of the path
 *    through Prosody;
 *  - direct: each user's first agent publishes its user's PEP item
 *    itself, as the original client did.
 *
 * For each path, first the sustained rate: every agent sends its next
 * update as soon as the previous one is answered (or, with [window], at
 * most that many updates in flight, agents in turn). Over the same time
 * window it counts updates acknowledged (IQ results to the agents),
 * updates published (new items the contact receives: bursts for one user
 * coalesce into one publish on both component paths) and updates refused
 * (IQ errors), and the CPU time of Prosody, the component, PostgreSQL and
 * the load generator. Then the notification latency at light load (open
 * loop at [rate] updates/s, or a quarter of the lowest sustained rate when
 * that is lower, evenly spaced: the agent processes take turns): p50, p99,
 * the max, how many updates took over 1 s and how many never arrived. The
 * latency phase first runs BENCH_WARMUP seconds (default 5: every user
 * updated once, so that the component's state cache and the server's PEP
 * nodes are warm) and then measures for [seconds] or until
 * BENCH_MIN_SAMPLES updates (default 1,000), whichever is longer. Finally
 * the time to build and digest one merged item of 5 resources x 1,000
 * shares.
 *
 * BENCH_SIZES=1,10 limits the item sizes; BENCH_PIN=1 gives Prosody a core of
 * its own (the rest share the others); BENCH_ROTATE=k changes which path
 * runs first (it rotates with the size); BENCH_ROUNDS=k (default 3, at
 * most 9) alternates k sustained windows per path and reports their
 * time-weighted rates, so that
 * the host's own load drifting during a run falls on every path (the
 * ratio of each round is printed too); BENCH_LATENCY_ONLY=1 skips the
 * sustained phase, BENCH_SUSTAINED_ONLY=1 the light-load one; BENCH_DETAIL=1
 * prints each sustained window's wall-clock bounds (to cut captures),
 * percentiles and CPU shares per path, and writes each path's samples to
 * /tmp/bench-lat-SIZE-PATH.txt.
 *
 * Run through scripts/bench (needs the stack's environment and the path
 * of bitween-component as the first argument).
 */
#define _GNU_SOURCE /* sched_setaffinity */
#include <dirent.h>
#include <sched.h>
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

#include "shares.h"
#include "stanza.h"
#include "xmpp_compat.h"

#define MAX_PROCS 8
#define MAX_RES   8 /* resources per user */
#define AGENT_NS  "urn:bitween:agent:1"

static struct {
    const char *component_bin;
    int users, resources, procs, seconds, rate, window;
    const char *domain, *comp_jid, *secret, *stack_script, *stack_dir;
    unsigned short c2s_port, comp_port;
} cfg = {NULL, 500, 2, 4, 8, 100, 0, NULL, NULL, NULL, NULL, NULL, 0, 0};

typedef struct shared {
    atomic_ullong acks, errors;
    atomic_ullong measured; /* light phase: updates sent after the warm-up */
    atomic_int logged_in;
} shared_t;

static shared_t *shm;

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Milliseconds to wait in xmpp_run_once(): until `next_ns` (0: no
 * deadline), at most 5 ms, so that phase ends are seen in time. */
static unsigned long run_wait_ms(uint64_t next_ns)
{
    uint64_t now = now_ns();
    if (!next_ns)
        return 5;
    if (next_ns <= now)
        return 0;
    return (next_ns - now) / 1000000u < 5 ? (unsigned long)((next_ns - now) / 1000000u) : 5;
}

static void die(const char *what)
{
    fprintf(stderr, "component_bench: %s\n", what);
    exit(1);
}

static const char *env(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "component_bench: %s not set (run through scripts/bench)\n", name);
        exit(2);
    }
    return v;
}

/* ---- items ----------------------------------------------------------------- */

/* Merged item of user `u` holding n shares spread over the R resources
 * (at least one each); resource r with tokens[r] != 0 carries that token
 * in its share names (its last update), the others static names. */
static shares_item_t *make_item(int u, int n, const uint64_t *tokens)
{
    shares_limits_t lim = {0};
    shares_item_t *item = shares_item_new(&lim);
    shares_error_t err;
    char res[16], name[96], hash[41];
    size_t ri;
    int r, i, k;

    if (!item)
        die("out of memory");
    for (r = 0; r < cfg.resources; r++) {
        snprintf(res, sizeof res, "r%d", r);
        if (shares_item_add_resource(item, res, &ri, &err))
            die(err.message);
        int per = n / cfg.resources + (r < n % cfg.resources ? 1 : 0);
        if (per < 1)
            per = 1;
        for (i = 0; i < per; i++) {
            if (tokens[r])
                snprintf(name, sizeof name, "L%020" PRIu64 "-%d-%d.mkv", tokens[r], u, i);
            else
                snprintf(name, sizeof name, "static-%d-%d-%d.mkv", u, r, i);
            {
                unsigned char d[20];
                xmpp_sha1_digest((const unsigned char *)name, strlen(name), d);
                for (k = 0; k < 20; k++) {
                    hash[2 * k] = "0123456789abcdef"[d[k] >> 4];
                    hash[2 * k + 1] = "0123456789abcdef"[d[k] & 15];
                }
                hash[40] = '\0';
            }
            if (shares_item_add_share(item, ri, hash, name, (uint64_t)(i + 1) * 1000, &err))
                die(err.message);
        }
        if (shares_item_add_address(item, ri, "127.0.0.1", 6881 + (unsigned long)r, &err))
            die(err.message);
    }
    return item;
}

/* ---- agents (child processes) ----------------------------------------------- */

typedef struct agent {
    xmpp_conn_t *conn;
    int user, resource, connected, outstanding;
    char jid[128];
    char wait_id[32];
} agent_t;

static int agent_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    agent_t *a = arg;
    const char *type = xmpp_stanza_get_type(st), *id = xmpp_stanza_get_id(st);
    xmpp_stanza_t *child = xmpp_stanza_get_children(st);
    if (!type)
        return 1;
    if ((strcmp(type, "result") == 0 || strcmp(type, "error") == 0) && id &&
        strcmp(id, a->wait_id) == 0) {
        a->outstanding = 0;
        a->wait_id[0] = '\0';
        if (strcmp(type, "result") == 0) {
            atomic_fetch_add(&shm->acks, 1);
        } else {
            /* the first few refusals of each process, with their reason */
            static unsigned shown;
            atomic_fetch_add(&shm->errors, 1);
            if (shown < 5) {
                char *text = NULL;
                size_t len = 0;
                shown++;
                if (xmpp_stanza_to_text(st, &text, &len) == XMPP_EOK) {
                    fprintf(stderr, "component_bench: %s refused: %.400s\n", a->jid, text);
                    xmpp_free(xmpp_conn_get_context(conn), text);
                }
            }
        }
        return 1;
    }
    if (strcmp(type, "get") == 0 && child && xmpp_stanza_get_ns(child) &&
        strcmp(xmpp_stanza_get_ns(child), "urn:xmpp:ping") == 0) {
        xmpp_stanza_t *r = xmpp_stanza_reply(st);
        xmpp_stanza_set_type(r, "result");
        xmpp_send(conn, r);
        xmpp_stanza_release(r);
    }
    return 1;
}

static void agent_conn_cb(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                          xmpp_stream_error_t *se, void *arg)
{
    agent_t *a = arg;
    (void)conn, (void)error, (void)se;
    a->connected = status == XMPP_CONN_CONNECT;
    if (a->connected)
        atomic_fetch_add(&shm->logged_in, 1);
}

/* Send one update of agent `a`: a register to the component, or (direct)
 * the whole merged item published by the agent itself. */
static void agent_send(xmpp_ctx_t *ctx, agent_t *a, int direct, int n, uint64_t *seq_id)
{
    uint64_t token = now_ns(), tokens[MAX_RES] = {0};
    shares_item_t *item;
    xmpp_stanza_t *iq = xmpp_iq_new(ctx, "set", NULL), *el;

    tokens[a->resource] = token;
    item = make_item(a->user, n, tokens);
    char id[32];

    snprintf(id, sizeof id, "u%" PRIu64, ++*seq_id);
    xmpp_stanza_set_id(iq, id);
    if (direct) {
        xmpp_stanza_t *ps = xmpp_stanza_new(ctx), *pub = xmpp_stanza_new(ctx),
                      *it = xmpp_stanza_new(ctx), *payload = shares_item_build(item, ctx);
        xmpp_stanza_set_name(ps, "pubsub");
        xmpp_stanza_set_ns(ps, "http://jabber.org/protocol/pubsub");
        xmpp_stanza_set_name(pub, "publish");
        xmpp_stanza_set_attribute(pub, "node", SHARES_NS);
        xmpp_stanza_set_name(it, "item");
        xmpp_stanza_set_id(it, SHARES_ITEM_ID);
        xmpp_stanza_add_child_ex(it, payload, 0);
        xmpp_stanza_add_child_ex(pub, it, 0);
        xmpp_stanza_add_child_ex(ps, pub, 0);
        xmpp_stanza_add_child_ex(iq, ps, 0);
    } else {
        char seq[24];
        size_t i, ns = shares_item_share_count(item, (size_t)a->resource);
        shares_share_t sh;
        xmpp_stanza_set_to(iq, cfg.comp_jid);
        el = xmpp_stanza_new(ctx);
        xmpp_stanza_set_name(el, "register");
        xmpp_stanza_set_ns(el, AGENT_NS);
        snprintf(seq, sizeof seq, "%" PRIu64, token);
        xmpp_stanza_set_attribute(el, "seq", seq);
        for (i = 0; i < ns; i++) {
            xmpp_stanza_t *s = xmpp_stanza_new(ctx);
            char size[24];
            shares_item_share(item, (size_t)a->resource, i, &sh);
            xmpp_stanza_set_name(s, "share_item");
            xmpp_stanza_set_attribute(s, "hash", sh.hash);
            xmpp_stanza_set_attribute(s, "name", sh.name);
            snprintf(size, sizeof size, "%" PRIu64, sh.size);
            xmpp_stanza_set_attribute(s, "size", size);
            xmpp_stanza_add_child_ex(el, s, 0);
        }
        {
            xmpp_stanza_t *ad = xmpp_stanza_new(ctx);
            char port[16];
            xmpp_stanza_set_name(ad, "ip_address");
            xmpp_stanza_set_attribute(ad, "address", "127.0.0.1");
            snprintf(port, sizeof port, "%d", 6881 + a->resource);
            xmpp_stanza_set_attribute(ad, "port", port);
            xmpp_stanza_add_child_ex(el, ad, 0);
        }
        xmpp_stanza_add_child_ex(iq, el, 0);
    }
    snprintf(a->wait_id, sizeof a->wait_id, "%s", id);
    a->outstanding = 1;
    xmpp_send(a->conn, iq);
    xmpp_stanza_release(iq);
    shares_item_free(item);
}

typedef struct command {
    int kind; /* 1 closed loop, 2 open loop, 3 quit */
    int direct;
    int n;
    int ms;
    double rate;           /* this process's share, updates/s (open loop) */
    int window;            /* this process's share of updates in flight (closed loop) */
    uint64_t measure_from; /* open loop: updates sent from then on are counted */
} command_t;

static void child_main(int idx, int cmd_fd, int done_fd)
{
    xmpp_ctx_t *ctx;
    agent_t *agents;
    int u0 = cfg.users * idx / cfg.procs, u1 = cfg.users * (idx + 1) / cfg.procs;
    int count = (u1 - u0) * cfg.resources, i, u, r;
    uint64_t ids = 0;
    command_t cmd;
    char ok = 1;

    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    agents = calloc((size_t)count, sizeof *agents);
    if (!ctx || !agents)
        die("out of memory");
    for (i = 0, u = u0; u < u1; u++)
        for (r = 0; r < cfg.resources; r++, i++) {
            agent_t *a = &agents[i];
            a->user = u + 1;
            a->resource = r;
            snprintf(a->jid, sizeof a->jid, "bu%d@%s/r%d", u + 1, cfg.domain, r);
            a->conn = xmpp_conn_new(ctx);
            xmpp_conn_set_jid(a->conn, a->jid);
            xmpp_conn_set_pass(a->conn, "pw");
            xmpp_conn_set_flags(a->conn, XMPP_CONN_FLAG_DISABLE_TLS);
            xmpp_handler_add(a->conn, agent_iq, NULL, "iq", NULL, a);
            xmpp_connect_client(a->conn, "127.0.0.1", cfg.c2s_port, agent_conn_cb, a);
            /* keep the server's login work flowing in small batches */
            if (i % 25 == 24)
                for (int k = 0; k < 20; k++)
                    xmpp_run_once(ctx, 5);
        }
    {
        uint64_t end = now_ns() + 120ull * 1000000000u;
        int up;
        do {
            xmpp_run_once(ctx, 5);
            for (up = 0, i = 0; i < count; i++)
                up += agents[i].connected;
        } while (up < count && now_ns() < end);
        for (i = 0; i < count; i++) {
            /* directed presence: the component learns when agents go */
            xmpp_stanza_t *p = xmpp_presence_new(ctx);
            xmpp_stanza_set_to(p, cfg.comp_jid);
            xmpp_send(agents[i].conn, p);
            xmpp_stanza_release(p);
        }
    }
    if (write(done_fd, &ok, 1) != 1)
        die("pipe");

    while (read(cmd_fd, &cmd, sizeof cmd) == (ssize_t)sizeof cmd && cmd.kind != 3) {
        uint64_t end = now_ns() + (uint64_t)cmd.ms * 1000000u, next = now_ns();
        int rr = 0;
        if (cmd.kind == 4) {
            /* greet: directed presence to the component again (a fresh
             * component process never saw it), then answer its pings for
             * cmd.ms, so that its start-up re-check ends before a window */
            for (i = 0; i < count; i++) {
                xmpp_stanza_t *p = xmpp_presence_new(ctx);
                xmpp_stanza_set_to(p, cfg.comp_jid);
                xmpp_send(agents[i].conn, p);
                xmpp_stanza_release(p);
            }
            while (now_ns() < end)
                xmpp_run_once(ctx, 5);
            if (write(done_fd, &ok, 1) != 1)
                die("pipe");
            continue;
        }
        /* open loop: the processes take turns (process i starts i/procs of
         * an interval late), so that the updates are evenly spaced rather
         * than sent by every process at once */
        if (cmd.kind == 2 && cmd.rate > 0)
            next += (uint64_t)(1e9 / cmd.rate * idx / cfg.procs);
        for (i = 0; i < count; i++)
            agents[i].outstanding = 0, agents[i].wait_id[0] = '\0';
        while (now_ns() < end) {
            if (cmd.kind == 1) {
                /* a bounded window of updates in flight, agents in turn:
                 * the server is kept busy without growing queues */
                int busy = 0, tries;
                for (i = 0; i < count; i++)
                    busy += agents[i].outstanding;
                for (tries = 0; (cmd.window <= 0 || busy < cmd.window) && tries < count; tries++) {
                    agent_t *a = &agents[rr++ % count];
                    if (a->connected && !a->outstanding && (!cmd.direct || a->resource == 0)) {
                        agent_send(ctx, a, cmd.direct, cmd.n, &ids);
                        busy++;
                    }
                }
            } else {
                while (now_ns() >= next) {
                    /* one update per user in turn, resource 0 */
                    agent_t *a = &agents[(rr++ % (u1 - u0)) * cfg.resources];
                    if (a->connected) {
                        if (now_ns() >= cmd.measure_from)
                            atomic_fetch_add(&shm->measured, 1);
                        agent_send(ctx, a, cmd.direct, cmd.n, &ids);
                    }
                    next += (uint64_t)(1e9 / cmd.rate);
                }
            }
            /* sleep in select() until the next send is due or a reply
             * comes: the load generator must not take the server's CPU */
            xmpp_run_once(ctx, run_wait_ms(cmd.kind == 1 ? 0 : next));
        }
        /* let replies in flight arrive before reporting */
        {
            uint64_t grace = now_ns() + 3000000000u;
            int busy;
            do {
                xmpp_run_once(ctx, 5);
                for (busy = 0, i = 0; i < count; i++)
                    busy += agents[i].outstanding;
            } while (busy && now_ns() < grace);
        }
        if (write(done_fd, &ok, 1) != 1)
            die("pipe");
    }
    for (i = 0; i < count; i++) {
        xmpp_disconnect(agents[i].conn);
    }
    for (i = 0; i < 100; i++)
        xmpp_run_once(ctx, 5);
    _exit(0);
}

/* ---- parent: watcher, raw component, orchestration ------------------------- */

#define MAX_LAT 400000
static double *lat;
static uint64_t *lat_token;
static size_t n_lat;
static atomic_ullong notifications;
static uint64_t *last_token; /* per user: newest token seen (dedup) */
static int record_latency;
static uint64_t record_from;   /* only updates sent from then on are measured */
static int warmup_s = 5;       /* BENCH_WARMUP: seconds of light load before measuring */
#define MAX_ROUNDS 9           /* BENCH_ROUNDS: sustained windows per path, alternating */
static int prep_ms = 3000;     /* BENCH_PREP_MS: agents greet the component before a window */
static int min_samples = 1000; /* BENCH_MIN_SAMPLES: latency samples per path at least */

static int watcher_msg(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    xmpp_stanza_t *ev = xmpp_stanza_get_child_by_name_and_ns(
        st, "event", "http://jabber.org/protocol/pubsub#event");
    xmpp_stanza_t *items, *item, *us;
    const char *from = xmpp_stanza_get_from(st);
    char *text = NULL, *p;
    size_t len;
    int user;
    (void)conn, (void)arg;
    if (!ev || !from || sscanf(from, "bu%d@", &user) != 1 || user < 1 || user > cfg.users)
        return 1;
    items = xmpp_stanza_get_child_by_name(ev, "items");
    item = items ? xmpp_stanza_get_child_by_name(items, "item") : NULL;
    us = item ? xmpp_stanza_get_child_by_name(item, "user_shares") : NULL;
    if (!us || xmpp_stanza_to_text(us, &text, &len) != XMPP_EOK)
        return 1;
    /* the newest token in the item is the update it reflects */
    {
        uint64_t newest = 0, t;
        for (p = text; (p = strstr(p, "name=\"L")) != NULL; p += 7)
            if (sscanf(p + 7, "%" SCNu64, &t) == 1 && t > newest)
                newest = t;
        if (newest && newest > last_token[user]) {
            last_token[user] = newest;
            atomic_fetch_add(&notifications, 1);
            if (record_latency && newest >= record_from && n_lat < MAX_LAT) {
                lat_token[n_lat] = newest;
                lat[n_lat++] = (double)(now_ns() - newest) / 1e6;
            }
        }
    }
    xmpp_free(xmpp_conn_get_context(conn), text);
    return 1;
}

static int logged_watcher;
static void watcher_cb(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                       xmpp_stream_error_t *se, void *arg)
{
    (void)conn, (void)error, (void)se, (void)arg;
    logged_watcher = status == XMPP_CONN_CONNECT;
}

/* Answer disco#info so that Prosody learns the +notify feature. */
static int watcher_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    const char *type = xmpp_stanza_get_type(st);
    xmpp_stanza_t *q =
        xmpp_stanza_get_child_by_name_and_ns(st, "query", "http://jabber.org/protocol/disco#info");
    (void)arg;
    if (type && strcmp(type, "get") == 0 && q) {
        const char *text_tpl = "<query xmlns='http://jabber.org/protocol/disco#info'/>";
        xmpp_stanza_t *r = xmpp_stanza_reply(st),
                      *rq = xmpp_stanza_new_from_string(xmpp_conn_get_context(conn), text_tpl),
                      *f = xmpp_stanza_new(xmpp_conn_get_context(conn));
        const char *node = xmpp_stanza_get_attribute(q, "node");
        xmpp_stanza_set_type(r, "result");
        if (node)
            xmpp_stanza_set_attribute(rq, "node", node);
        xmpp_stanza_set_name(f, "feature");
        xmpp_stanza_set_attribute(f, "var", SHARES_NOTIFY_NS);
        xmpp_stanza_add_child_ex(rq, f, 0);
        xmpp_stanza_add_child_ex(r, rq, 0);
        xmpp_send(conn, r);
        xmpp_stanza_release(r);
    }
    return 1;
}

/* Raw privileged publisher: a component that acknowledges each register
 * at once and publishes the user's merged item, one publish in flight per
 * user, the newest state next. */
static xmpp_conn_t *raw;
static int raw_up, raw_n, *raw_outstanding, *raw_dirty;
static uint64_t *raw_tokens; /* per user and resource: last register's token */
static uint64_t raw_ids;
static unsigned long long raw_publish_errors;

static void raw_publish(xmpp_ctx_t *ctx, int user)
{
    char jid[128], id[48], inner[56];
    shares_item_t *item = make_item(user, raw_n, &raw_tokens[(size_t)user * MAX_RES]);
    xmpp_stanza_t *payload = shares_item_build(item, ctx), *iq;
    snprintf(jid, sizeof jid, "bu%d@%s", user, cfg.domain);
    snprintf(id, sizeof id, "raw%d-%" PRIu64, user, ++raw_ids);
    snprintf(inner, sizeof inner, "%s-i", id);
    iq = stanza_build_privileged_publish(ctx, cfg.comp_jid, jid, id, inner, payload);
    raw_outstanding[user] = 1;
    raw_dirty[user] = 0;
    xmpp_send(raw, iq);
    xmpp_stanza_release(iq);
    shares_item_free(item);
}

static int raw_iq(xmpp_conn_t *conn, xmpp_stanza_t *st, void *arg)
{
    xmpp_ctx_t *ctx = xmpp_conn_get_context(conn);
    const char *id = xmpp_stanza_get_id(st), *type = xmpp_stanza_get_type(st);
    const char *from = xmpp_stanza_get_from(st);
    int user, res;
    (void)arg;
    if (!type)
        return 1;
    if (strcmp(type, "set") == 0) {
        xmpp_stanza_t *reg = xmpp_stanza_get_child_by_name_and_ns(st, "register", AGENT_NS), *r;
        const char *seq = reg ? xmpp_stanza_get_attribute(reg, "seq") : NULL;
        if (!reg || !seq || !from || sscanf(from, "bu%d@%*[^/]/r%d", &user, &res) != 2 ||
            user < 1 || user > cfg.users || res < 0 || res >= cfg.resources)
            return 1;
        raw_tokens[(size_t)user * MAX_RES + (size_t)res] = strtoull(seq, NULL, 10);
        r = xmpp_stanza_reply(st);
        xmpp_stanza_set_type(r, "result");
        xmpp_send(conn, r);
        xmpp_stanza_release(r);
        raw_dirty[user] = 1;
        if (!raw_outstanding[user])
            raw_publish(ctx, user);
        return 1;
    }
    if (id && sscanf(id, "raw%d-", &user) == 1 && user >= 1 && user <= cfg.users &&
        (strcmp(type, "result") == 0 || strcmp(type, "error") == 0)) {
        raw_outstanding[user] = 0;
        if (strcmp(type, "error") == 0)
            raw_publish_errors++;
        if (raw_dirty[user])
            raw_publish(ctx, user);
    }
    return 1;
}

static void raw_cb(xmpp_conn_t *conn, xmpp_conn_event_t status, int error, xmpp_stream_error_t *se,
                   void *arg)
{
    (void)conn, (void)error, (void)se, (void)arg;
    raw_up = status == XMPP_CONN_CONNECT;
}

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double pct(double p)
{
    size_t i;
    if (!n_lat)
        return 0;
    qsort(lat, n_lat, sizeof *lat, cmp_d);
    i = (size_t)(p * (double)(n_lat - 1) + 0.5);
    return lat[i];
}

static xmpp_conn_t *watcher_conn;

/* One turn of the parent's libstrophe loop. ACK what was read at once, as
 * bitween-component does: Prosody's default keeps Nagle's algorithm on
 * and would hold its next small write to a socket until our delayed ACK
 * (the test stack turns it off). */
static void run_once(xmpp_ctx_t *ctx, unsigned long ms)
{
    xmpp_conn_t *conns[2] = {raw, watcher_conn};
    int one = 1, k;
    xmpp_run_once(ctx, ms);
    for (k = 0; k < 2; k++) {
        int fd = conns[k] && xmpp_conn_is_connected(conns[k]) ? xmpp_compat_socket(conns[k]) : -1;
        if (fd >= 0)
            setsockopt(fd, IPPROTO_TCP, TCP_QUICKACK, &one, sizeof one);
    }
}

static int cmd_fds[MAX_PROCS], done_fds[MAX_PROCS];
static pid_t kids[MAX_PROCS];

static void pump(xmpp_ctx_t *ctx, int ms)
{
    uint64_t end = now_ns() + (uint64_t)ms * 1000000u;
    while (now_ns() < end)
        run_once(ctx, 1);
}

/* Pump until no notification has arrived for `quiet_ms` (at most 60 s):
 * the server's backlog from the previous phase is drained. */
static void settle(xmpp_ctx_t *ctx, int quiet_ms)
{
    uint64_t end = now_ns() + 60000000000ull, last = now_ns();
    unsigned long long seen = atomic_load(&notifications);
    while (now_ns() < end && now_ns() - last < (uint64_t)quiet_ms * 1000000u) {
        run_once(ctx, 5);
        if (atomic_load(&notifications) != seen) {
            seen = atomic_load(&notifications);
            last = now_ns();
        }
    }
}

/* Counters at one instant. */
typedef struct snap {
    uint64_t at;
    unsigned long long acks, errors, notifications, raw_errors;
    double cpu_prosody, cpu_comp, cpu_pg, cpu_load, cpu_all, steal;
} snap_t;

/* CPU seconds the whole machine spent busy (every core; user, system,
 * interrupts), from /proc/stat. */
static double cpu_machine(double *steal)
{
    unsigned long long v[8] = {0};
    FILE *f = fopen("/proc/stat", "r");
    *steal = 0;
    if (!f)
        return 0;
    if (fscanf(f, "cpu %llu %llu %llu %llu %llu %llu %llu %llu", &v[0], &v[1], &v[2], &v[3], &v[4],
               &v[5], &v[6], &v[7]) != 8)
        memset(v, 0, sizeof v);
    fclose(f);
    /* time the hypervisor gave the virtual cores to something else */
    *steal = (double)v[7] / (double)sysconf(_SC_CLK_TCK);
    /* user nice system idle iowait irq softirq steal: all but idle, iowait */
    return (double)(v[0] + v[1] + v[2] + v[5] + v[6] + v[7]) / (double)sysconf(_SC_CLK_TCK);
}

static double cpu_seconds(pid_t pid);
static double cpu_postgres(void);
static pid_t prosody_pid, comp_pid;

static void take_snap(snap_t *s)
{
    int i;
    s->at = now_ns();
    s->acks = atomic_load(&shm->acks);
    s->errors = atomic_load(&shm->errors);
    s->notifications = atomic_load(&notifications);
    s->raw_errors = raw_publish_errors;
    s->cpu_prosody = cpu_seconds(prosody_pid);
    s->cpu_comp = comp_pid ? cpu_seconds(comp_pid) : 0;
    s->cpu_pg = cpu_postgres();
    s->cpu_all = cpu_machine(&s->steal);
    s->cpu_load = cpu_seconds(getpid()); /* the watcher and the raw component */
    for (i = 0; i < cfg.procs; i++)
        s->cpu_load += cpu_seconds(kids[i]);
}

/* Run a phase in every agent process while pumping the watcher (and the
 * raw component, on the same context); `end` (when not NULL) receives
 * the counters at the end of the phase's window, before the replies still
 * in flight are drained. */
static void agents_phase(xmpp_ctx_t *ctx, const command_t *cmd, uint64_t window_end, snap_t *end)
{
    int i, done = 0, snapped = !end;
    char b;
    for (i = 0; i < cfg.procs; i++)
        if (write(cmd_fds[i], cmd, sizeof *cmd) != (ssize_t)sizeof *cmd)
            die("pipe");
    while (done < cfg.procs) {
        run_once(ctx, 1);
        if (!snapped && now_ns() >= window_end) {
            take_snap(end);
            snapped = 1;
        }
        for (i = 0; i < cfg.procs; i++)
            if (read(done_fds[i], &b, 1) == 1)
                done++;
    }
    if (!snapped)
        take_snap(end);
    pump(ctx, 500); /* last notifications */
}

/* Two clock-tick fields of /proc/PID/stat in seconds: `skip` fields after
 * the state field (12: utime + stime; 14: cutime + cstime). */
static double stat_seconds(pid_t pid, int skip)
{
    char path[64], buf[2048], *p;
    unsigned long a = 0, b = 0;
    FILE *f;
    int i;
    snprintf(path, sizeof path, "/proc/%d/stat", (int)pid);
    if (!(f = fopen(path, "r")))
        return 0;
    p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    for (i = 0; p && i < skip; i++)
        p = strchr(p + 1, ' ');
    if (p)
        sscanf(p + 1, "%lu %lu", &a, &b);
    return (double)(a + b) / (double)sysconf(_SC_CLK_TCK);
}

/* CPU seconds of the reaped children of `pid` (cutime + cstime). */
static double cpu_children(pid_t pid)
{
    return stat_seconds(pid, 14);
}

/* CPU seconds of `pid` itself (utime + stime). */
static double cpu_seconds(pid_t pid)
{
    return stat_seconds(pid, 12);
}

/* Parent of `pid`, or -1. */
static int parent_of(int pid)
{
    char path[64], buf[512], *p;
    int ppid = -1;
    FILE *f;
    snprintf(path, sizeof path, "/proc/%d/stat", pid);
    if (!(f = fopen(path, "r")))
        return -1;
    p = fgets(buf, sizeof buf, f) ? strrchr(buf, ')') : NULL;
    fclose(f);
    if (!p || sscanf(p + 1, " %*c %d", &ppid) != 1)
        return -1;
    return ppid;
}

/* CPU seconds of the stack's PostgreSQL: its postmaster, the postmaster's
 * children, and what its children that have ended used. */
static double cpu_postgres(void)
{
    char path[512];
    DIR *d;
    struct dirent *e;
    double sum = 0;
    FILE *f;
    int pm = -1;
    snprintf(path, sizeof path, "%s/pg/data/postmaster.pid", cfg.stack_dir);
    if (!(f = fopen(path, "r")))
        return 0;
    if (fscanf(f, "%d", &pm) != 1)
        pm = -1;
    fclose(f);
    if (pm <= 0 || !(d = opendir("/proc")))
        return 0;
    sum = cpu_seconds(pm) + cpu_children(pm);
    while ((e = readdir(d)) != NULL)
        if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && parent_of(atoi(e->d_name)) == pm)
            sum += cpu_seconds((pid_t)atoi(e->d_name));
    closedir(d);
    return sum;
}

/* Every thread of `pid` onto the cores of `set`; with `children`, also
 * the processes whose parent it is. */
static void pin(int pid, const cpu_set_t *set, int children)
{
    char path[64];
    DIR *d;
    struct dirent *e;
    snprintf(path, sizeof path, "/proc/%d/task", pid);
    if ((d = opendir(path))) {
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9' &&
                sched_setaffinity(atoi(e->d_name), sizeof *set, set) != 0)
                fprintf(stderr, "component_bench: pinning %s: %s\n", e->d_name, strerror(errno));
        closedir(d);
    }
    if (children && (d = opendir("/proc"))) {
        while ((e = readdir(d)) != NULL)
            if (e->d_name[0] >= '1' && e->d_name[0] <= '9' && parent_of(atoi(e->d_name)) == pid)
                pin(atoi(e->d_name), set, 0);
        closedir(d);
    }
}

/* BENCH_PIN=1: Prosody alone on the last core, everything else (this
 * process, the agents, the component, PostgreSQL) on the others, so that
 * no path's Prosody waits for a core behind its database. */
static void pin_all(pid_t prosody)
{
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    cpu_set_t rest, last;
    char path[512];
    FILE *f;
    int pm = -1, i;
    if (n < 2)
        die("BENCH_PIN needs two cores at least");
    CPU_ZERO(&rest);
    for (i = 0; i < n - 1; i++)
        CPU_SET(i, &rest);
    CPU_ZERO(&last);
    CPU_SET((int)n - 1, &last);
    pin((int)prosody, &last, 0);
    if (sched_setaffinity(0, sizeof rest, &rest) != 0)
        die("sched_setaffinity");
    snprintf(path, sizeof path, "%s/pg/data/postmaster.pid", cfg.stack_dir);
    if ((f = fopen(path, "r"))) {
        if (fscanf(f, "%d", &pm) != 1)
            pm = -1;
        fclose(f);
    }
    if (pm <= 0)
        die("no PostgreSQL pid");
    pin(pm, &rest, 1); /* and its children; new backends inherit its mask */
    printf("pinned: Prosody on core %ld, everything else on cores 0-%ld\n", n - 1, n - 2);
}

static pid_t start_component(void)
{
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/tmp/bitween-bench-component.log", O_WRONLY | O_CREAT | O_APPEND, 0644);
        if (fd >= 0) {
            dup2(fd, 1);
            dup2(fd, 2);
        }
        setenv("BITWEEN_DOMAINS", cfg.domain, 1);
        setenv("BITWEEN_CHECK_RATE", "5000", 1);
        setenv("BITWEEN_LOG_LEVEL",
               getenv("BENCH_COMPONENT_LOG") ? getenv("BENCH_COMPONENT_LOG") : "warn", 1);
        setenv("BITWEEN_MAX_SHARES_PER_RESOURCE", "1000", 1);
        setenv("BITWEEN_MAX_ITEM_BYTES", "240000", 1);
        setenv("BITWEEN_ALLOW_LOOPBACK_ADDRESSES", "true", 1); /* agents register 127.0.0.1 */
        setenv("BITWEEN_API_PORT", "0", 1);                    /* never in another instance's way */
        execl(cfg.component_bin, cfg.component_bin, (char *)NULL);
        _exit(127);
    }
    return pid;
}

static void stop_component(pid_t pid)
{
    int status;
    kill(pid, SIGTERM);
    waitpid(pid, &status, 0);
}

typedef struct result {
    double acked, published, refused; /* sustained: per second over the window, refused a count */
    double cpu_prosody, cpu_comp, cpu_pg, cpu_load, cpu_all, steal, wall; /* sustained: CPU s */
    double p50, p99, max;                                                 /* light load, ms */
    unsigned long long slow, lost, measured; /* light load: > 1 s, never arrived */
} result_t;

/* Sums the sustained windows of one path over the rounds: rates are
 * weighted by each window's length. */
static void result_add(result_t *sum, const result_t *one)
{
    double w = sum->wall + one->wall;
    if (w <= 0)
        return;
    sum->acked = (sum->acked * sum->wall + one->acked * one->wall) / w;
    sum->published = (sum->published * sum->wall + one->published * one->wall) / w;
    sum->refused += one->refused;
    sum->cpu_prosody += one->cpu_prosody;
    sum->cpu_comp += one->cpu_comp;
    sum->cpu_pg += one->cpu_pg;
    sum->cpu_load += one->cpu_load;
    sum->cpu_all += one->cpu_all;
    sum->steal += one->steal;
    sum->wall = w;
}

/* Wait until the component is idle (its CPU time still for 1 s), two
 * minutes at most. */
static void wait_idle(xmpp_ctx_t *ctx)
{
    uint64_t end = now_ns() + 120000000000ull;
    double last = -1;
    while (now_ns() < end) {
        double cpu = cpu_seconds(comp_pid);
        if (last >= 0 && cpu - last < 0.01)
            break;
        last = cpu;
        pump(ctx, 1000);
    }
}

/* One path (0 component, 1 raw privileged, 2 direct) for `n` shares:
 * phase 0 measures the sustained rates and CPU, phase 1 the latency at
 * `light` updates/s. */
static void run_path(xmpp_ctx_t *ctx, int path, int n, int phase, double light, result_t *res)
{
    snap_t a, b;
    uint64_t tp0;

    comp_pid = 0;
    if (path == 0) {
        comp_pid = start_component();
        /* it connects and re-checks every agent with a ping */
        pump(ctx, 1000);
        wait_idle(ctx);
        settle(ctx, 1000);
        {
            int status;
            if (waitpid(comp_pid, &status, WNOHANG) == comp_pid)
                die("bitween-component exited (see /tmp/bitween-bench-component.log)");
        }
    } else if (path == 1) {
        raw = xmpp_conn_new(ctx);
        xmpp_conn_set_jid(raw, cfg.comp_jid);
        xmpp_conn_set_pass(raw, cfg.secret);
        xmpp_compat_component_prepare(raw);
        if (xmpp_compat_watch_socket(raw) != 0)
            die("no socket slot");
        xmpp_handler_add(raw, raw_iq, NULL, "iq", NULL, NULL);
        raw_up = 0;
        raw_n = n;
        memset(raw_outstanding, 0, sizeof(int) * ((size_t)cfg.users + 1));
        memset(raw_dirty, 0, sizeof(int) * ((size_t)cfg.users + 1));
        {
            /* the server may not have dropped the previous session yet
             * (conflict): try again until it has */
            uint64_t end = now_ns() + 120000000000ull;
            while (!raw_up && now_ns() < end) {
                uint64_t attempt_end = now_ns() + 3000000000ull;
                if (xmpp_conn_is_disconnected(raw))
                    xmpp_connect_component(raw, "127.0.0.1", cfg.comp_port, raw_cb, NULL);
                while (!raw_up && !xmpp_conn_is_disconnected(raw) && now_ns() < attempt_end)
                    run_once(ctx, 5);
                if (!raw_up)
                    pump(ctx, 1000);
            }
            if (!raw_up)
                die("raw component could not connect");
        }
        pump(ctx, 300);
    }
    {
        /* every path alike: the agents greet the component, answer its
         * re-check, and the window opens once the component is idle; a
         * window must hold the updates only, not the re-check's pings or
         * the agents' first presences (that cost Prosody ~20 % more
         * stanzas on the component path before) */
        command_t greet = {4, 0, 0, prep_ms, 0, 0, 0};
        agents_phase(ctx, &greet, 0, NULL);
        if (path == 0)
            wait_idle(ctx);
        settle(ctx, 1000);
    }
    n_lat = 0;
    record_latency = phase == 1;
    atomic_store(&shm->measured, 0);
    tp0 = now_ns();
    {
        /* latency: at least min_samples updates measured, so that the p99
         * rests on ten or more of them even at a low light rate */
        int measure_s = cfg.seconds;
        if (phase == 1 && light > 0 && min_samples / light > measure_s)
            measure_s = (int)(min_samples / light + 0.999);
        /* bounded whatever the rate: a path that published almost nothing
         * in the sustained phase must not stretch this one to hours */
        if (measure_s > 8 * cfg.seconds && measure_s > 120)
            measure_s = 8 * cfg.seconds > 120 ? 8 * cfg.seconds : 120;
        int run_s = measure_s + (phase == 1 ? warmup_s : 0);
        uint64_t t0 = now_ns();
        command_t cmd = {phase == 0 ? 1 : 2,
                         path == 2,
                         n,
                         run_s * 1000,
                         phase == 0 ? 0 : light / cfg.procs,
                         cfg.window <= 0              ? 0
                         : cfg.window / cfg.procs > 0 ? cfg.window / cfg.procs
                                                      : 1,
                         0};
        record_from = t0 + (phase == 1 ? (uint64_t)warmup_s * 1000000000u : 0);
        cmd.measure_from = record_from;
        take_snap(&a);
        agents_phase(ctx, &cmd, t0 + (uint64_t)run_s * 1000000000u, &b);
    }
    settle(ctx, 1000);
    record_latency = 0;
    if (phase == 0) {
        double secs = (double)(b.at - a.at) / 1e9;
        res->wall = secs;
        res->acked = (double)(b.acks - a.acks) / secs;
        res->published = (double)(b.notifications - a.notifications) / secs;
        res->refused = (double)(b.errors - a.errors + b.raw_errors - a.raw_errors);
        res->cpu_prosody = b.cpu_prosody - a.cpu_prosody;
        res->cpu_comp = b.cpu_comp - a.cpu_comp;
        res->cpu_pg = b.cpu_pg - a.cpu_pg;
        res->cpu_load = b.cpu_load - a.cpu_load;
        res->cpu_all = b.cpu_all - a.cpu_all;
        res->steal = b.steal - a.steal;
        fprintf(stderr,
                "component_bench: %d shares, path %d: acked %.1f/s, published %.1f/s, "
                "refused %.0f\n",
                n, path, res->acked, res->published, res->refused);
        if (getenv("BENCH_DETAIL")) {
            /* the window in wall-clock time, to cut captures and logs */
            struct timespec rt;
            double off;
            clock_gettime(CLOCK_REALTIME, &rt);
            off = (double)rt.tv_sec + (double)rt.tv_nsec / 1e9 - (double)now_ns() / 1e9;
            fprintf(stderr,
                    "  path %d window: %.6f to %.6f (Unix time), acked %llu, published %llu, "
                    "Prosody CPU %.3f s, steal %.3f s\n",
                    path, off + (double)a.at / 1e9, off + (double)b.at / 1e9, b.acks - a.acks,
                    b.notifications - a.notifications, res->cpu_prosody, res->steal);
        }
    } else {
        size_t k;
        if (getenv("BENCH_DETAIL")) {
            char fn[64];
            FILE *f;
            double elapsed = (double)(now_ns() - tp0) / 1e9;
            snprintf(fn, sizeof fn, "/tmp/bench-lat-%d-%d.txt", n, path);
            if ((f = fopen(fn, "w"))) { /* in arrival order: before pct() sorts */
                struct timespec rt;
                clock_gettime(CLOCK_REALTIME, &rt);
                fprintf(f, "# offset %" PRIu64 "\n",
                        (uint64_t)rt.tv_sec * 1000000000u + (uint64_t)rt.tv_nsec - now_ns());
                for (k = 0; k < n_lat; k++)
                    fprintf(f, "%" PRIu64 " %.3f\n", lat_token[k], lat[k]);
                fclose(f);
            }
            fprintf(stderr, "  path %d: Prosody CPU %.1f%%, component CPU %.1f%%\n", path,
                    100 * (cpu_seconds(prosody_pid) - a.cpu_prosody) / elapsed,
                    comp_pid ? 100 * (cpu_seconds(comp_pid) - a.cpu_comp) / elapsed : 0.0);
            fprintf(stderr,
                    "  path %d: n=%zu p10 %.2f p50 %.2f p75 %.2f p90 %.2f p95 %.2f p98 %.2f p99 "
                    "%.2f p99.5 %.2f max %.2f\n",
                    path, n_lat, pct(0.10), pct(0.5), pct(0.75), pct(0.90), pct(0.95), pct(0.98),
                    pct(0.99), pct(0.995), pct(1.0));
        }
        res->slow = 0;
        for (k = 0; k < n_lat; k++)
            res->slow += lat[k] > 1000.0;
        res->measured = atomic_load(&shm->measured);
        res->lost = res->measured > n_lat ? res->measured - n_lat : 0;
        res->p50 = pct(0.50);
        res->p99 = pct(0.99);
        res->max = pct(1.0);
    }
    if (comp_pid)
        stop_component(comp_pid);
    comp_pid = 0;
    if (path == 1) {
        xmpp_disconnect(raw);
        pump(ctx, 300);
        xmpp_compat_unwatch_socket(raw);
        xmpp_conn_release(raw);
        raw = NULL;
    }
}

int main(int argc, char **argv)
{
    xmpp_ctx_t *ctx;
    xmpp_conn_t *watcher;
    int i, sizes[] = {1, 10, 100}, s, n_sizes = 3, latency_only = 0, rotate = 0, rounds = 3;
    double round_pub[MAX_ROUNDS][3];
    char jid[128];
    pid_t prosody;

    if (argc < 2)
        die("usage: component_bench BITWEEN_COMPONENT [users] [seconds] [rate] [window]");
    cfg.component_bin = argv[1];
    setvbuf(stdout, NULL, _IOLBF, 0); /* progress visible when writing to a file */
    if (argc > 2)
        cfg.users = atoi(argv[2]);
    if (argc > 3)
        cfg.seconds = atoi(argv[3]);
    if (argc > 4)
        cfg.rate = atoi(argv[4]);
    if (argc > 5)
        cfg.window = atoi(argv[5]);
    cfg.domain = env("BITWEEN_STACK_DOMAIN");
    cfg.comp_jid = env("BITWEEN_COMPONENT_JID");
    cfg.secret = env("BITWEEN_COMPONENT_SECRET");
    cfg.stack_script = env("BITWEEN_STACK_SCRIPT");
    cfg.stack_dir = env("BITWEEN_STACK_DIR");
    cfg.c2s_port = (unsigned short)atoi(env("BITWEEN_STACK_C2S_PORT"));
    cfg.comp_port = (unsigned short)atoi(env("BITWEEN_XMPP_PORT"));
    cfg.procs = cfg.users * cfg.resources > 750 ? 4 : 2;
    if (cfg.users < 1 || cfg.seconds < 1 || cfg.resources < 1 || cfg.resources > MAX_RES)
        die("bad arguments");

    /* ---- build time of a large merged item ---- */
    {
        xmpp_ctx_t *c2 = xmpp_ctx_new(NULL, NULL);
        int saved = cfg.resources, reps = 50;
        uint64_t t0, t1, t2, t3, t4;
        char hex[SHARES_DIGEST_HEX], *text, *wire;
        size_t len, wlen;
        shares_error_t err;
        shares_item_t *it;
        cfg.resources = 5;
        double d_digest[50], d_splice[50], d_tree[5];
        t0 = now_ns();
        {
            uint64_t tokens[MAX_RES] = {1};
            it = make_item(1, 5000, tokens);
        }
        t1 = now_ns();
        /* medians of individually timed runs: robust to a busy machine */
        for (i = 0; i < reps; i++) {
            uint64_t a = now_ns();
            if (shares_item_write(it, &text, &len, &err) ||
                shares_text_digest(text, len, hex) != SHARES_OK)
                die("digest");
            d_digest[i] = (double)(now_ns() - a) / 1e6;
            free(text);
        }
        if (shares_item_write(it, &text, &len, &err))
            die("write");
        for (i = 0; i < reps; i++) {
            uint64_t a = now_ns();
            wire = stanza_text_privileged_publish(c2, "shares.example.org", "u@example.org", "p1",
                                                  "p1-i", text, len, &wlen);
            if (!wire)
                die("splice");
            d_splice[i] = (double)(now_ns() - a) / 1e6;
            free(wire);
        }
        for (i = 0; i < 5; i++) {
            uint64_t a = now_ns();
            xmpp_stanza_release(shares_item_build(it, c2));
            d_tree[i] = (double)(now_ns() - a) / 1e6;
        }
        (void)t2, (void)t3, (void)t4;
        qsort(d_digest, (size_t)reps, sizeof(double), cmp_d);
        qsort(d_splice, (size_t)reps, sizeof(double), cmp_d);
        qsort(d_tree, 5, sizeof(double), cmp_d);
        printf("merged item of 5 resources x 1,000 shares (%zu bytes), medians:\n", len);
        printf("  item model from 5,000 validated shares: %.3f ms\n", (double)(t1 - t0) / 1e6);
        printf("  canonical text + SHA-256 digest:        %.3f ms  (target < 1 ms)\n",
               d_digest[reps / 2]);
        printf("  privileged publish text (splice):       %.3f ms\n", d_splice[reps / 2]);
        printf("  as a libstrophe stanza tree (baseline): %.3f ms\n\n", d_tree[2]);
        free(text);
        shares_item_free(it);
        cfg.resources = saved;
        xmpp_ctx_free(c2);
    }

    /* ---- accounts ---- */
    {
        char cmd[1024];
        snprintf(cmd, sizeof cmd,
                 "'%s' adduser-bulk '%s' bu %d pw && '%s' adduser '%s' bwatch pw && "
                 "'%s' subscribe-bulk '%s' bwatch bu %d",
                 cfg.stack_script, cfg.stack_dir, cfg.users, cfg.stack_script, cfg.stack_dir,
                 cfg.stack_script, cfg.stack_dir, cfg.users);
        if (system(cmd) != 0)
            die("creating accounts failed");
    }
    {
        char path[512];
        FILE *f;
        snprintf(path, sizeof path, "%s/prosody/server.pid", cfg.stack_dir);
        f = fopen(path, "r");
        if (!f || fscanf(f, "%d", &prosody) != 1)
            die("no Prosody pid");
        fclose(f);
    }

    shm = mmap(NULL, sizeof *shm, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    lat = calloc(MAX_LAT, sizeof *lat);
    lat_token = calloc(MAX_LAT, sizeof *lat_token);
    last_token = calloc((size_t)cfg.users + 1, sizeof *last_token);
    raw_outstanding = calloc((size_t)cfg.users + 1, sizeof *raw_outstanding);
    raw_dirty = calloc((size_t)cfg.users + 1, sizeof *raw_dirty);
    raw_tokens = calloc(((size_t)cfg.users + 1) * MAX_RES, sizeof *raw_tokens);
    if (shm == MAP_FAILED || !lat || !last_token || !raw_outstanding || !raw_dirty || !raw_tokens)
        die("out of memory");
    prosody_pid = prosody;
    if (getenv("BENCH_PIN") && atoi(getenv("BENCH_PIN")) == 1)
        pin_all(prosody); /* before the agents fork: they inherit it */

    /* ---- agents ---- */
    for (i = 0; i < cfg.procs; i++) {
        int c[2], d[2];
        if (pipe(c) || pipe(d))
            die("pipe");
        kids[i] = fork();
        if (kids[i] == 0) {
            close(c[1]);
            close(d[0]);
            child_main(i, c[0], d[1]);
        }
        close(c[0]);
        close(d[1]);
        cmd_fds[i] = c[1];
        done_fds[i] = d[0];
        fcntl(done_fds[i], F_SETFL, O_NONBLOCK);
    }

    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    watcher = watcher_conn = xmpp_conn_new(ctx);
    if (xmpp_compat_watch_socket(watcher) != 0)
        die("no socket slot");
    snprintf(jid, sizeof jid, "bwatch@%s/w", cfg.domain);
    xmpp_conn_set_jid(watcher, jid);
    xmpp_conn_set_pass(watcher, "pw");
    xmpp_conn_set_flags(watcher, XMPP_CONN_FLAG_DISABLE_TLS);
    xmpp_handler_add(watcher, watcher_msg, NULL, "message", NULL, NULL);
    xmpp_handler_add(watcher, watcher_iq, NULL, "iq", NULL, NULL);
    xmpp_connect_client(watcher, "127.0.0.1", cfg.c2s_port, watcher_cb, NULL);
    {
        uint64_t end = now_ns() + 30000000000ull;
        while (!logged_watcher && now_ns() < end)
            run_once(ctx, 5);
        if (!logged_watcher)
            die("watcher login failed");
    }
    {
        /* XEP-0115 caps: ver = base64(sha1("<feature>")) for our one
         * feature and no identity, matching watcher_iq()'s answer */
        const char *feat = SHARES_NOTIFY_NS "<";
        unsigned char d[20];
        char *ver, xml[512];
        xmpp_stanza_t *p;
        xmpp_sha1_digest((const unsigned char *)feat, strlen(feat), d);
        ver = xmpp_base64_encode(ctx, d, sizeof d);
        snprintf(xml, sizeof xml,
                 "<presence><c xmlns='http://jabber.org/protocol/caps' hash='sha-1' "
                 "node='https://bitween.test/bench' ver='%s'/></presence>",
                 ver);
        xmpp_free(ctx, ver);
        p = xmpp_stanza_new_from_string(ctx, xml);
        xmpp_send(watcher, p);
        xmpp_stanza_release(p);
    }
    {
        int done = 0;
        char b;
        uint64_t end = now_ns() + 180000000000ull;
        while (done < cfg.procs && now_ns() < end) {
            run_once(ctx, 5);
            for (i = 0; i < cfg.procs; i++)
                if (read(done_fds[i], &b, 1) == 1)
                    done++;
        }
        printf("%d agents logged in (%d users x %d resources, %d processes)\n",
               atomic_load(&shm->logged_in), cfg.users, cfg.resources, cfg.procs);
    }

    printf("\nsustained: every agent's next update as soon as the previous one is answered;\n"
           "acked/s and published/s over the same %d s window; refused: IQ errors.\n"
           "light load: p50/p99/max notification latency, updates over 1 s, updates lost.\n",
           cfg.seconds);
    printf("\n%-6s %-15s %9s %11s %7s %7s %8s %8s %8s %5s %5s\n", "shares", "path", "acked/s",
           "published/s", "refused", "light/s", "p50 ms", "p99 ms", "max ms", ">1s", "lost");
    /* BENCH_SIZES (e.g. "1" or "1,100") limits the item sizes; BENCH_LATENCY_ONLY=1
     * skips the sustained phase and measures latency at the given rate */
    {
        const char *e = getenv("BENCH_SIZES");
        if (e && *e) {
            int k = 0;
            char *dup = strdup(e), *tok, *save = NULL;
            for (tok = dup ? strtok_r(dup, ",", &save) : NULL; tok && k < 3;
                 tok = strtok_r(NULL, ",", &save))
                if (atoi(tok) > 0)
                    sizes[k++] = atoi(tok);
            free(dup);
            n_sizes = k > 0 ? k : 3;
        }
        latency_only = getenv("BENCH_LATENCY_ONLY") && atoi(getenv("BENCH_LATENCY_ONLY")) == 1;
        if (getenv("BENCH_ROTATE") && atoi(getenv("BENCH_ROTATE")) >= 0)
            rotate = atoi(getenv("BENCH_ROTATE"));
        if (getenv("BENCH_WARMUP") && atoi(getenv("BENCH_WARMUP")) >= 0)
            warmup_s = atoi(getenv("BENCH_WARMUP"));
        if (getenv("BENCH_PREP_MS") && atoi(getenv("BENCH_PREP_MS")) >= 0)
            prep_ms = atoi(getenv("BENCH_PREP_MS"));
        if (getenv("BENCH_MIN_SAMPLES") && atoi(getenv("BENCH_MIN_SAMPLES")) >= 0)
            min_samples = atoi(getenv("BENCH_MIN_SAMPLES"));
        if (getenv("BENCH_ROUNDS") && atoi(getenv("BENCH_ROUNDS")) > 0)
            rounds = atoi(getenv("BENCH_ROUNDS")) < MAX_ROUNDS ? atoi(getenv("BENCH_ROUNDS"))
                                                               : MAX_ROUNDS;
    }
    for (s = 0; s < n_sizes; s++) {
        int n = sizes[s];
        double light = cfg.rate;
        result_t res[3];
        memset(res, 0, sizeof res);
        memset(round_pub, 0, sizeof round_pub);
        /* sustained rate of each path, then latency of each at one light
         * rate: --rate, or half the lowest ceiling when that is lower (no
         * path is lightly loaded above what the server sustains) */
        int phases =
            getenv("BENCH_SUSTAINED_ONLY") && atoi(getenv("BENCH_SUSTAINED_ONLY")) == 1 ? 1 : 2;
        for (int phase = latency_only; phase < phases; phase++) {
            if (phase == 1 && !latency_only) {
                light = cfg.rate;
                for (int path = 0; path < 3; path++)
                    if (res[path].published / 4 < light)
                        light = res[path].published / 4 > 1 ? res[path].published / 4 : 1;
            }
            /* which path goes first rotates with the size (and BENCH_ROTATE),
             * so that none always runs right after another's load; the
             * sustained windows alternate over `rounds` rounds, so that a
             * drift of the host's own load (steal) falls on every path */
            for (int round = 0; round < (phase == 0 ? rounds : 1); round++) {
                for (int k = 0; k < 3; k++) {
                    /* odd rounds run the order backwards: no path always
                     * follows the same other one */
                    int path = (((round & 1) ? 2 - k : k) + s + rotate + round) % 3;
                    result_t one;
                    memset(&one, 0, sizeof one);
                    run_path(ctx, path, n, phase, phase ? light : 0, &one);
                    if (phase == 0) {
                        if (round < MAX_ROUNDS)
                            round_pub[round][path] = one.published;
                        result_add(&res[path], &one);
                    } else {
                        one.acked = res[path].acked;
                        one.published = res[path].published;
                        one.refused = res[path].refused;
                        one.wall = res[path].wall;
                        one.cpu_prosody = res[path].cpu_prosody;
                        one.cpu_comp = res[path].cpu_comp;
                        one.cpu_pg = res[path].cpu_pg;
                        one.cpu_load = res[path].cpu_load;
                        one.cpu_all = res[path].cpu_all;
                        one.steal = res[path].steal;
                        res[path] = one;
                    }
                }
            }
        }
        printf("       (order: %s first)\n", (s + rotate) % 3 == 0   ? "component"
                                             : (s + rotate) % 3 == 1 ? "raw privileged"
                                                                     : "direct PEP");
        for (int path = 0; path < 3; path++)
            printf("%-6d %-15s %9.1f %11.1f %7.0f %7.0f %8.2f %8.2f %8.1f %5llu %5llu\n", n,
                   path == 0   ? "component"
                   : path == 1 ? "raw privileged"
                               : "direct PEP",
                   res[path].acked, res[path].published, res[path].refused, light, res[path].p50,
                   res[path].p99, res[path].max, res[path].slow, res[path].lost);
        {
            result_t *c = &res[0], *r = &res[1];
            double pc = c->published > 0 ? c->cpu_prosody / (c->published * c->wall) : 0;
            double pr = r->published > 0 ? r->cpu_prosody / (r->published * r->wall) : 0;
            printf("       component/raw: published %.2fx (target >= 0.85), acked %.2fx; "
                   "p99 component/direct %.2fx (target <= 1.5)\n",
                   r->published > 0 ? c->published / r->published : 0,
                   r->acked > 0 ? c->acked / r->acked : 0,
                   res[2].p99 > 0 ? c->p99 / res[2].p99 : 0);
            if (rounds > 1 && !latency_only) {
                double worst = 0, best = 0;
                printf("       component/raw published, round by round:");
                for (int round = 0; round < rounds && round < MAX_ROUNDS; round++) {
                    double x =
                        round_pub[round][1] > 0 ? round_pub[round][0] / round_pub[round][1] : 0;
                    printf(" %.2fx", x);
                    if (round == 0 || x < worst)
                        worst = x;
                    if (round == 0 || x > best)
                        best = x;
                }
                printf(" (worst %.2fx, best %.2fx)\n", worst, best);
            }
            printf("       Prosody CPU per published update: component path %.3f ms, raw %.3f ms "
                   "(raw/component %.2f: the ratio if Prosody is the bottleneck)\n",
                   pc * 1000, pr * 1000, pc > 0 ? pr / pc : 0);
            for (int path = 0; path < 2; path++) {
                result_t *x = &res[path];
                double w = x->wall > 0 ? x->wall : 1;
                printf("       %s path, cores busy: machine %.2f of %ld; Prosody %.2f, "
                       "component %.2f, PostgreSQL %.2f, load generator and watcher %.2f%s\n",
                       path == 0 ? "component" : "raw", x->cpu_all / w,
                       sysconf(_SC_NPROCESSORS_ONLN), x->cpu_prosody / w, x->cpu_comp / w,
                       x->cpu_pg / w, x->cpu_load / w, path == 1 ? " (incl. raw component)" : "");
                printf("       %s path, stolen by the hypervisor: %.2f of a core\n",
                       path == 0 ? "component" : "raw", x->steal / w);
            }
            printf("       component CPU per acked update %.3f ms, Prosody's %.3f ms, ratio %.2f "
                   "(target < 0.25)\n\n",
                   c->acked > 0 ? c->cpu_comp / (c->acked * c->wall) * 1000 : 0,
                   c->acked > 0 ? c->cpu_prosody / (c->acked * c->wall) * 1000 : 0,
                   c->cpu_prosody > 0 ? c->cpu_comp / c->cpu_prosody : 0);
        }
        fflush(stdout);
    }
    {
        command_t quit = {3, 0, 0, 0, 0, 0, 0};
        for (i = 0; i < cfg.procs; i++) {
            if (write(cmd_fds[i], &quit, sizeof quit) < 0)
                break;
            waitpid(kids[i], NULL, 0);
        }
    }
    xmpp_disconnect(watcher);
    pump(ctx, 200);
    xmpp_compat_unwatch_socket(watcher);
    xmpp_conn_release(watcher);
    xmpp_ctx_free(ctx);
    return 0;
}
