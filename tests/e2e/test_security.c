/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of bitween-component under attack, through the real
 * Prosody and PostgreSQL of tests/with_stack.sh: each test plays a hostile
 * user (or a sloppy client) with real c2s clients and asserts on what the
 * victims and their contacts see, on the registry's tables and on the
 * component's /metrics. Groups:
 *
 *   replies     forged replies to the component's pings: the right id from
 *               the wrong sender, and ids guessed from the ones a user sees
 *   flood       presence floods and request bursts from one user while
 *               another registers
 *   liveness    registrations from resources whose presence the component
 *               never saw, agents that die or hang without a word, a
 *               removal that fails while its agent comes back
 *   addressing  requests to JIDs other than the component's own; replies
 *               sent to the component are never answered; an id too long
 *               to echo does not cost the component its stream
 *
 *   test_security BITWEEN_COMPONENT_BINARY [GROUP]
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <strophe.h>

#include "fixture.h"
#include "harness.h"
#include "xclient.h"

#define FLOOD_PRESENCES 20000

/* ---- helpers ------------------------------------------------------------- */

/* Send `xml` (printf format) from `cl`. */
static void send_fmt(xclient_t *cl, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void send_fmt(xclient_t *cl, const char *fmt, ...)
{
    va_list ap;
    char xml[4096];
    int n;
    va_start(ap, fmt);
    n = vsnprintf(xml, sizeof xml, fmt, ap);
    va_end(ap);
    assert_true(n > 0 && (size_t)n < sizeof xml);
    assert_int_equal(xclient_send_xml(cl, xml), 0);
}

/* A ping from `cl` to the component, answered: everything `cl` sent
 * before it has been read by the component (one stream, in order). */
static void sync_with_component(t_t *t, xclient_t *cl)
{
    xmpp_stanza_t *r = raw_request(
        t, cl, "<iq type='get' to='IQ_TO' id='IQ_ID'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    xmpp_stanza_release(r);
}

/* Wait until `cl` has received more than `n` pings; the id of ping `n`. */
static const char *wait_ping(t_t *t, xclient_t *cl, unsigned n)
{
    long long end = hx_now_ms() + WAIT;
    while (xclient_pings(cl) <= n) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_security: %s received no ping\n", xclient_jid(cl));
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
    return keep(t, strdup(xclient_ping_id(cl, n)));
}

/* An error reply to the component with id `id`, from `cl`. */
static void send_error_reply(t_t *t, xclient_t *cl, const char *id)
{
    send_fmt(cl,
             "<iq type='error' id='%s' to='%s'><ping xmlns='urn:xmpp:ping'/>"
             "<error type='cancel'><service-unavailable "
             "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
             id, t->stack->component_jid);
}

static int item_has(xclient_t *w, const char *from, const char *needle)
{
    const char *last = xclient_last_item(w, from);
    return last && strstr(last, needle) != NULL;
}

/* Wait until the re-check of registrations left by earlier tests is over
 * and their removals are done, so that counters move only for this test. */
static void settle(t_t *t, hx_proc_t *c)
{
    long long end = hx_now_ms() + WAIT;
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    while (metric(t, c, "bitween_removals_pending", NULL) > 0) {
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 20);
    }
}

/* ===== replies ============================================================ */

/* The component re-checks registrations after a restart by pinging them.
 * Mallory learns the id of the ping sent to the victim's agent (here the
 * test hands it to her: the strongest position an attacker can have) and
 * answers it with an error before the victim does. The reply does not
 * come from the pinged agent, so it counts for nothing: the victim's
 * later answer keeps its registration, and its contact still sees it. */
static void test_forged_reply_with_the_right_id(void **state)
{
    t_t *t = *state;
    const char *v = user(t, "victim"), *m = user(t, "mallory"), *f = user(t, "friend");
    const char *s = keep(t, shares_xml("victim", 0, 2, "v"));
    const char *must[] = {"resource=\"laptop\"", NULL};
    const char *id;
    hx_proc_t *c;
    xclient_t *va, *ma, *w;
    unsigned n0;

    subscribe(t, v, f);
    c = component(t, NULL);
    va = agent(t, v, "laptop");
    expect_result(t, va, "register", 1, s);
    w = watcher(t, f);
    wait_item(t, w, v, must, NULL);
    component_stop(t, c);

    xclient_ignore_pings(va, 1); /* the victim answers late */
    n0 = xclient_pings(va);
    c = component(t, NULL);
    id = wait_ping(t, va, n0);
    trace("the victim was pinged as %s", id);

    ma = login(t, m, "box");
    send_error_reply(t, ma, id);
    sync_with_component(t, ma);

    send_fmt(va, "<iq type='result' id='%s' to='%s'/>", id, t->stack->component_jid);
    xclient_ignore_pings(va, 0);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    /* The victim's next update runs after anything the forgery queued:
     * its registration is still there. */
    expect_result(t, va, "add", 2, keep(t, shares_xml("victim", 2, 3, "v")));
    assert_int_equal(hx_db_resources(t->db, v), 1);
    wait_view_is_db(t, w, v);
    assert_true(item_has(w, v, "resource=\"laptop\""));
    assert_true(wait_metric(t, c, "bitween_iq_replies_dropped_total", "reason=\"forged\"", 1) >= 1);
    component_stop(t, c);
    t->passed = 1;
}

/* The ids an attacker would try from one id she saw: the neighbours of
 * the number its last digits make (decimal for a counter such as "chk17",
 * else hex), and the first ids of the usual counters. */
static size_t guesses(const char *seen, char out[][128], size_t max)
{
    static const char *const prefixes[] = {"chk", "pub", "ping", "c", "p", NULL};
    size_t n = 0, len = strlen(seen), tail = len, i, digits, head;
    long long k;

    while (tail > 0 && strchr("0123456789abcdef", seen[tail - 1]))
        tail--;
    digits = len - tail > 8 ? 8 : len - tail;
    head = len - digits;
    if (digits > 0) {
        int decimal = strspn(seen + head, "0123456789") == digits;
        unsigned long long base = strtoull(seen + head, NULL, decimal ? 10 : 16);
        unsigned long long mask = digits >= 8 ? 0xffffffffULL : (1ULL << (4 * digits)) - 1;
        for (k = -32; k <= 32 && n < max; k++) {
            unsigned long long g = base + (unsigned long long)k;
            if (k == 0)
                continue;
            if (decimal)
                snprintf(out[n++], 128, "%.*s%llu", (int)head, seen, g);
            else
                snprintf(out[n++], 128, "%.*s%0*llx", (int)head, seen, (int)digits, g & mask);
        }
    }
    for (i = 0; prefixes[i]; i++)
        for (k = 1; k <= 40 && n < max; k++)
            snprintf(out[n++], 128, "%s%lld", prefixes[i], k);
    return n;
}

/* Mallory's own agent is pinged in the same re-check as the victim's.
 * She answers her ping, and sends errors for every id she can derive from
 * it. None of them is the victim's: the victim's later answer keeps its
 * registration, and each guess is counted as a reply to nothing. */
static void test_guessed_reply_ids(void **state)
{
    t_t *t = *state;
    const char *v = user(t, "victim"), *m = user(t, "mallory");
    const char *s = keep(t, shares_xml("victim", 0, 1, "v"));
    static char guess[400][128];
    const char *vid, *mid;
    hx_proc_t *c;
    xclient_t *va, *ma;
    unsigned nv, nm;
    size_t n, i, hex = 0;
    double before;

    c = component(t, NULL);
    va = agent(t, v, "laptop");
    ma = agent(t, m, "box");
    expect_result(t, va, "register", 1, s);
    expect_result(t, ma, "register", 1, s);
    component_stop(t, c);

    xclient_ignore_pings(va, 1);
    nv = xclient_pings(va);
    nm = xclient_pings(ma);
    c = component(t, NULL);
    vid = wait_ping(t, va, nv);
    mid = wait_ping(t, ma, nm);
    trace("victim pinged as %s, mallory as %s", vid, mid);
    before = metric(t, c, "bitween_iq_replies_dropped_total", "reason=\"unknown\"");
    n = guesses(mid, guess, sizeof guess / sizeof guess[0]);
    for (i = 0; i < n; i++) {
        assert_string_not_equal(guess[i], vid);
        send_error_reply(t, ma, guess[i]);
    }
    sync_with_component(t, ma);

    send_fmt(va, "<iq type='result' id='%s' to='%s'/>", vid, t->stack->component_jid);
    xclient_ignore_pings(va, 0);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    /* after anything the guesses queued */
    expect_result(t, va, "add", 2, keep(t, shares_xml("victim", 1, 2, "v")));
    assert_int_equal(hx_db_resources(t->db, v), 1);
    assert_int_equal(hx_db_resources(t->db, m), 1);
    wait_metric(t, c, "bitween_iq_replies_dropped_total", "reason=\"unknown\"", before + (double)n);
    /* 128 random bits: at least 32 hex digits */
    for (i = 0; mid[i]; i++)
        hex += strchr("0123456789abcdef", mid[i]) != NULL;
    assert_true(hex >= 32);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== flood ============================================================== */

/* `n` unavailable presences from `cl` to the component, then a round trip:
 * the component has read them all. */
static void flood_unavailable(t_t *t, xclient_t *cl, int n)
{
    int i;
    for (i = 0; i < n; i++) {
        send_fmt(cl, "<presence type='unavailable' to='%s'/>", t->stack->component_jid);
        if (i % 200 == 199)
            xclient_pump(t->ctx, 1);
    }
    sync_with_component(t, cl);
}

/* Mallory, who registered nothing, sends the component twenty thousand
 * unavailable presences, then the victim registers. The presences cost no
 * database work: the victim's request is served (not refused as busy,
 * although max_pending is small), every presence is counted as ignored,
 * and nothing was removed. */
static void test_presence_flood_of_unregistered(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_MAX_PENDING=100", NULL};
    const char *v = user(t, "victim"), *m = user(t, "mallory");
    const char *s = keep(t, shares_xml("victim", 0, 3, "v"));
    hx_proc_t *c = component(t, extra);
    xclient_t *ma = login(t, m, "flood"), *va = agent(t, v, "laptop");
    double base_r, base_i;

    settle(t, c);
    base_r = metric(t, c, "bitween_removals_total", NULL);
    base_i = metric(t, c, "bitween_presences_ignored_total", NULL);
    flood_unavailable(t, ma, FLOOD_PRESENCES);
    trace("flood delivered");
    expect_result(t, va, "register", 1, s);
    wait_metric(t, c, "bitween_presences_ignored_total", NULL, base_i + FLOOD_PRESENCES);
    assert_int_equal((int)(metric(t, c, "bitween_removals_total", NULL) - base_r), 0);
    assert_int_equal((int)metric(t, c, "bitween_removals_pending", NULL), 0);
    assert_int_equal(hx_db_resources(t->db, v), 1);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    t->passed = 1;
}

/* A registered agent floods unavailable presences: one removal, the rest
 * coalesced while it runs or ignored once it is done; another user's
 * register, sent next, is served. */
static void test_presence_flood_of_registered(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_MAX_PENDING=100", NULL};
    const char *m = user(t, "mallory"), *v = user(t, "victim");
    const char *s = keep(t, shares_xml("mallory", 0, 1, "m"));
    hx_proc_t *c = component(t, extra);
    xclient_t *ma = agent(t, m, "box"), *va = agent(t, v, "laptop");
    const int n = 2000;
    double base_r, base_c, base_i;

    expect_result(t, ma, "register", 1, s);
    settle(t, c);
    base_r = metric(t, c, "bitween_removals_total", NULL);
    base_c = metric(t, c, "bitween_removals_coalesced_total", NULL);
    base_i = metric(t, c, "bitween_presences_ignored_total", NULL);
    flood_unavailable(t, ma, n);
    expect_result(t, va, "register", 1, s);
    wait_db_resources(t, m, 0);
    {
        long long end = hx_now_ms() + WAIT;
        double sum;
        while ((sum = metric(t, c, "bitween_removals_coalesced_total", NULL) - base_c +
                      metric(t, c, "bitween_presences_ignored_total", NULL) - base_i) < n - 1) {
            assert_true(hx_now_ms() < end);
            xclient_pump(t->ctx, 50);
        }
        assert_int_equal((int)sum, n - 1);
    }
    assert_int_equal((int)(metric(t, c, "bitween_removals_total", NULL) - base_r), 1);
    assert_int_equal((int)metric(t, c, "bitween_removals_pending", NULL), 0);
    component_stop(t, c);
    t->passed = 1;
}

/* Replies to a burst of requests, counted by kind: results, refusals of
 * the kind the test expects (`busy_type`/`busy_cond`, and `busy_text`
 * in the text when not NULL), anything else. */
typedef struct replies {
    const char *busy_type, *busy_cond, *busy_text;
    int results, busy, other;
} replies_t;

static void count_replies(xclient_t *cl, xmpp_stanza_t *reply, void *arg)
{
    replies_t *rc = arg;
    char text[256];
    (void)cl;
    if (strcmp(hx_iq_type(reply), "result") == 0)
        rc->results++;
    else if (hx_iq_error_is(reply, rc->busy_type, rc->busy_cond, text, sizeof text) &&
             (!rc->busy_text || strstr(text, rc->busy_text)))
        rc->busy++;
    else
        rc->other++;
}

static void wait_count(t_t *t, const int *count, int n)
{
    long long end = hx_now_ms() + WAIT;
    while (*count < n) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_security: %d replies, expected %d\n", *count, n);
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
}

/* Send `n` registers from `cl` at seq `seq0`, `seq0` + 1, ..., without
 * waiting, then wait until the component has read them all. */
static void send_registers(t_t *t, xclient_t *cl, int n, long long seq0, const char *children)
{
    int i;
    for (i = 0; i < n; i++) {
        char id[48], *req;
        snprintf(id, sizeof id, "%s-burst%u", t->prefix, ++t->next_id);
        req = hx_agent_iq(t->stack->component_jid, id, "register", seq0 + i, children);
        assert_int_equal(xclient_send_xml(cl, req), 0);
        free(req);
    }
    sync_with_component(t, cl);
}

/* Lock the rows of `jid`'s resources on a connection of the test's own,
 * in a transaction: its requests wait in the database until unlock(). */
static PGconn *lock_user(t_t *t, const char *jid)
{
    const char *params[1] = {jid};
    PGconn *lock = hx_db_connect(t->stack->db_url);
    PGresult *r = PQexec(lock, "BEGIN");
    assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
    PQclear(r);
    r = PQexecParams(lock,
                     "SELECT 1 FROM resources r JOIN users u ON u.id = r.user_id "
                     "WHERE u.jid = $1 FOR UPDATE OF r",
                     1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_true(PQntuples(r) >= 1);
    PQclear(r);
    return lock;
}

static void unlock(PGconn *lock)
{
    PGresult *r = PQexec(lock, "COMMIT");
    PQclear(r);
    PQfinish(lock);
}

/* Mallory's requests are stuck in the database (the test holds a lock on
 * her resource's row) and she sends a hundred more. Her share of the
 * queues is bounded: the excess is refused at once (wait,
 * resource-constraint), and the victim's register, sent next, is served,
 * not refused as busy although the global bound (max_pending) is a
 * hundred. */
static void test_one_user_cannot_fill_the_queue(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_MAX_PENDING=100", NULL};
    const char *v = user(t, "victim"), *m = user(t, "mallory");
    const char *s = keep(t, shares_xml("mallory", 0, 5, "m"));
    hx_proc_t *c = component(t, extra);
    xclient_t *ma = agent(t, m, "box"), *va = agent(t, v, "laptop");
    replies_t bc = {"wait", "resource-constraint", NULL, 0, 0, 0}, vc = bc;
    PGconn *lock;

    expect_result(t, ma, "register", 1, s);
    lock = lock_user(t, m);
    xclient_on_reply(ma, count_replies, &bc);
    send_registers(t, ma, 100, 2, s);
    /* Her excess is refused at once, while her first requests wait. */
    wait_count(t, &bc.busy, 100 - 32);
    assert_int_equal(bc.busy, 100 - 32);
    assert_int_equal(bc.results + bc.other, 0);

    /* Her requests may share the victim's database worker: the victim is
     * answered once the lock goes, and must not have been refused. */
    xclient_on_reply(va, count_replies, &vc);
    send_registers(t, va, 1, 1, s);
    assert_int_equal(vc.busy + vc.other, 0);
    unlock(lock);
    wait_count(t, &vc.results, 1);
    assert_int_equal(vc.busy + vc.other, 0);
    wait_count(t, &bc.results, 32);
    assert_int_equal(bc.other, 0);
    xclient_on_reply(ma, NULL, NULL);
    xclient_on_reply(va, NULL, NULL);
    assert_int_equal(hx_db_resources(t->db, v), 1);
    component_stop(t, c);
    t->passed = 1;
}

/* Two users' requests are stuck in the database and together exceed
 * max_pending: the requests beyond the bound are refused at once as busy
 * (wait), the others are answered once the database moves again. */
static void test_max_pending_back_pressure(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_MAX_PENDING=10", NULL};
    const char *ua = user(t, "a"), *ub = user(t, "b");
    const char *s = keep(t, shares_xml("bp", 0, 2, "bp"));
    hx_proc_t *c = component(t, extra);
    xclient_t *a = agent(t, ua, "pc"), *b = agent(t, ub, "pc");
    replies_t ca = {"wait", "internal-server-error", "busy", 0, 0, 0}, cb = ca;
    PGconn *la, *lb;

    expect_result(t, a, "register", 1, s);
    expect_result(t, b, "register", 1, s);
    settle(t, c);
    la = lock_user(t, ua);
    lb = lock_user(t, ub);
    xclient_on_reply(a, count_replies, &ca);
    xclient_on_reply(b, count_replies, &cb);
    send_registers(t, a, 6, 2, s);
    send_registers(t, b, 6, 2, s);
    /* refused at once, while the accepted ones still wait */
    wait_count(t, &cb.busy, 2);
    assert_int_equal(ca.results + cb.results, 0);
    assert_int_equal(ca.busy, 0);
    unlock(la);
    unlock(lb);
    wait_count(t, &ca.results, 6);
    wait_count(t, &cb.results, 6 - cb.busy);
    assert_int_equal(ca.other + cb.other, 0);
    assert_true(hx_db_seq(t->db, ua, "pc") == 7);
    xclient_on_reply(a, NULL, NULL);
    xclient_on_reply(b, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== liveness =========================================================== */

/* An agent that registers without ever sending presence to the component:
 * it is pinged before it is listed, and when it dies the liveness sweep
 * takes it out of its contacts' view. One that does not answer the ping
 * is refused and nothing is stored. One that sent presence and hangs is
 * removed by the sweep too. */
static void test_unwatched_registrations(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_LIVENESS_INTERVAL=1", "BITWEEN_IQ_TIMEOUT_MS=3000",
                                        NULL};
    const char *u = user(t, "owner"), *f = user(t, "friend");
    const char *s = keep(t, shares_xml("owner", 0, 1, "o"));
    const char *quiet[] = {"resource=\"quiet\"", NULL};
    const char *hung[] = {"resource=\"hung\"", NULL};
    hx_proc_t *c;
    xclient_t *a, *b, *d, *w;

    subscribe(t, u, f);
    c = component(t, extra);
    w = watcher(t, f);

    a = login(t, u, "quiet"); /* no presence to the component */
    expect_result(t, a, "register", 1, s);
    wait_item(t, w, u, quiet, NULL);
    xclient_kill(a);
    wait_item(t, w, u, NULL, quiet);
    wait_db_resources(t, u, 0);
    assert_true(metric(t, c, "bitween_liveness_probes_total", "outcome=\"sent\"") >= 1);

    b = login(t, u, "mute");
    xclient_ignore_pings(b, 1);
    expect_error(t, b, "register", 1, s, "cancel", "not-allowed", "ping");
    assert_int_equal(hx_db_seq(t->db, u, "mute"), -1);
    assert_true(metric(t, c, "bitween_liveness_probes_total", "outcome=\"failed\"") >= 1);

    d = agent(t, u, "hung");
    expect_result(t, d, "register", 1, s);
    wait_item(t, w, u, hung, NULL);
    xclient_ignore_pings(d, 1);
    wait_item(t, w, u, NULL, hung);
    wait_db_resources(t, u, 0);
    assert_true(metric(t, c, "bitween_liveness_sweeps_total", NULL) >= 1);
    component_stop(t, c);
    t->passed = 1;
}

/* After a restart, an agent that stays connected but does not answer the
 * re-check ping is removed; one that answers stays. */
static void test_recheck_removes_hung_agent(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_IQ_TIMEOUT_MS=2000", NULL};
    const char *u = user(t, "owner");
    const char *s = keep(t, shares_xml("owner", 0, 1, "o"));
    hx_proc_t *c = component(t, extra);
    xclient_t *live = agent(t, u, "live"), *hung = agent(t, u, "hung");

    expect_result(t, live, "register", 1, s);
    expect_result(t, hung, "register", 1, s);
    component_stop(t, c);
    xclient_ignore_pings(hung, 1);
    c = component(t, extra);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    wait_db_resources(t, u, 1);
    assert_int_equal(hx_db_seq(t->db, u, "hung"), -1);
    assert_true(hx_db_seq(t->db, u, "live") >= 0);
    component_stop(t, c);
    t->passed = 1;
}

/* Wait until a backend of the component waits for a lock; its pid. */
static int wait_blocked_backend(t_t *t)
{
    long long end = hx_now_ms() + WAIT;
    for (;;) {
        PGresult *r = PQexec(t->db, "SELECT pid FROM pg_stat_activity WHERE application_name = "
                                    "'bitween-component' AND wait_event_type = 'Lock'");
        int pid = 0;
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        if (PQntuples(r) == 1)
            pid = atoi(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (pid > 0)
            return pid;
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 20);
    }
}

/* An agent goes away while the database is slow: the removal its
 * unavailable presence queued waits for a lock. The agent comes back and
 * registers again (its register queued behind the removal), then the
 * database cancels the removal's statement, so the removal is to be
 * retried, and the register commits. The agent was told its new
 * registration is stored, and it spoke after it went away: the retry must
 * not remove it. */
static void test_failed_removal_spares_a_new_registration(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    const char *s = keep(t, shares_xml("owner", 0, 1, "o"));
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = agent(t, u, "pc"), *b;
    replies_t bc = {"wait", "internal-server-error", "busy", 0, 0, 0};
    const char *params[1];
    char pid[16], id[32], *xml;
    long long end;
    PGconn *lock;
    PGresult *r;

    expect_result(t, a, "register", 1, s);
    settle(t, c);
    lock = lock_user(t, u);
    logout(t, a);
    snprintf(pid, sizeof pid, "%d", wait_blocked_backend(t));

    b = agent(t, u, "pc");
    xclient_on_reply(b, count_replies, &bc);
    xml = hx_agent_iq(t->stack->component_jid, next_id(t, id, sizeof id), "register", 2, s);
    assert_int_equal(xclient_send_xml(b, xml), 0);
    free(xml);
    sync_with_component(t, b); /* the register is queued behind the removal */

    params[0] = pid;
    r = PQexecParams(t->db, "SELECT pg_cancel_backend($1::int)", 1, NULL, params, NULL, NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    PQclear(r);
    unlock(lock);
    wait_count(t, &bc.results, 1);
    assert_int_equal(bc.busy + bc.other, 0);

    /* the removal is over, retried or given up */
    end = hx_now_ms() + WAIT;
    while (metric(t, c, "bitween_removals_pending", NULL) > 0) {
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 50);
    }
    assert_int_equal(hx_db_resources(t->db, u), 1);
    assert_true(hx_db_seq(t->db, u, "pc") == 2);
    xclient_on_reply(b, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

typedef struct ordered_replies {
    int results, other;
} ordered_replies_t;

static void ordered_reply(xclient_t *cl, xmpp_stanza_t *reply, void *arg)
{
    ordered_replies_t *o = arg;
    char *text = NULL;
    size_t len;
    (void)cl;
    if (strcmp(hx_iq_type(reply), "result") == 0) {
        o->results++;
        return;
    }
    if (xmpp_stanza_to_text(reply, &text, &len) == XMPP_EOK) {
        fprintf(stderr, "test_security: refused: %s\n", text);
        free(text);
    }
    o->other++;
}

/* After a restart the component does not know that an agent which stayed
 * connected is online. The agent re-registers: its register waits for a
 * liveness ping. The agent answers the re-check ping first (so it is known
 * to be online), sends an add, then answers the liveness ping. Its
 * requests are applied in the order it sent them: the register first,
 * then the add; neither is refused. */
static void test_requests_keep_their_order_while_probed(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    const char *s1 = keep(t, shares_xml("owner", 0, 1, "o"));
    const char *s2 = keep(t, shares_xml("owner", 0, 2, "o"));
    const char *s3 = keep(t, shares_xml("owner", 2, 3, "o"));
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = agent(t, u, "pc");
    ordered_replies_t o = {0};
    const char *recheck, *probe;
    char id[32], *xml;
    long long end;
    unsigned n0;

    expect_result(t, a, "register", 1, s1);
    component_stop(t, c);
    xclient_ignore_pings(a, 1);
    n0 = xclient_pings(a);
    c = component(t, NULL);
    recheck = wait_ping(t, a, n0);

    xclient_on_reply(a, ordered_reply, &o);
    xml = hx_agent_iq(t->stack->component_jid, next_id(t, id, sizeof id), "register", 2, s2);
    assert_int_equal(xclient_send_xml(a, xml), 0);
    free(xml);
    probe = wait_ping(t, a, n0 + 1);
    send_fmt(a, "<iq type='result' id='%s' to='%s'/>", recheck, t->stack->component_jid);
    sync_with_component(t, a);
    xml = hx_agent_iq(t->stack->component_jid, next_id(t, id, sizeof id), "add", 3, s3);
    assert_int_equal(xclient_send_xml(a, xml), 0);
    free(xml);
    sync_with_component(t, a);
    send_fmt(a, "<iq type='result' id='%s' to='%s'/>", probe, t->stack->component_jid);
    xclient_ignore_pings(a, 0);

    end = hx_now_ms() + WAIT;
    while (o.results + o.other < 2) {
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 20);
    }
    assert_int_equal(o.other, 0);
    assert_true(hx_db_seq(t->db, u, "pc") == 3);
    assert_int_equal(hx_db_shares(t->db, u, "pc"), 3);
    xclient_on_reply(a, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

/* A request waits for its sender's liveness ping (the agent does not
 * answer it) when the component is told to stop: the request is answered
 * with a wait error before the component goes, not left without a reply. */
static void test_stop_answers_requests_held_for_a_probe(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    const char *s = keep(t, shares_xml("owner", 0, 1, "o"));
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = login(t, u, "pc");
    replies_t bc = {"wait", "internal-server-error", "shutting down", 0, 0, 0};
    char id[32], *xml;
    long long end;
    unsigned n0;

    xclient_ignore_pings(a, 1);
    n0 = xclient_pings(a);
    xclient_on_reply(a, count_replies, &bc);
    xml = hx_agent_iq(t->stack->component_jid, next_id(t, id, sizeof id), "register", 1, s);
    assert_int_equal(xclient_send_xml(a, xml), 0);
    free(xml);
    wait_ping(t, a, n0); /* the request waits for this ping */
    component_stop(t, c);
    end = hx_now_ms() + WAIT;
    while (bc.results + bc.busy + bc.other < 1) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_security: the held request got no answer\n");
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
    assert_int_equal(bc.busy, 1);
    assert_int_equal(hx_db_resources(t->db, u), 0);
    xclient_on_reply(a, NULL, NULL);
    t->passed = 1;
}

/* ===== addressing ========================================================= */

/* A request addressed to a JID under the component's domain that is not
 * the component itself is not an agent request: service-unavailable, and
 * nothing is stored. */
static void test_requests_to_other_jids(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    const char *s = keep(t, shares_xml("owner", 0, 1, "o"));
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = agent(t, u, "pc");
    const char *const targets[] = {"x@", "", NULL};
    size_t i;

    for (i = 0; targets[i]; i++) {
        char id[32];
        char *to = i == 0 ? hx_strdupf("x@%s", t->stack->component_jid)
                          : hx_strdupf("%s/res", t->stack->component_jid);
        char *xml = hx_agent_iq(to, next_id(t, id, sizeof id), "register", 1, s);
        xmpp_stanza_t *r = xclient_iq(a, xml, IQ_TIMEOUT);
        free(xml);
        expect_error_reply(r, "cancel", "service-unavailable", NULL);
        xml = hx_strdupf("<iq type='get' to='%s' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>", to,
                         next_id(t, id, sizeof id));
        r = xclient_iq(a, xml, IQ_TIMEOUT);
        free(xml);
        expect_error_reply(r, "cancel", "service-unavailable", NULL);
        free(to);
    }
    assert_int_equal(hx_db_resources(t->db, u), 0);
    expect_result(t, a, "register", 1, s);
    assert_int_equal(hx_db_resources(t->db, u), 1);
    component_stop(t, c);
    t->passed = 1;
}

static void count_reply(xclient_t *cl, xmpp_stanza_t *reply, void *arg)
{
    char *text = NULL;
    size_t len;
    (void)cl;
    if (xmpp_stanza_to_text(reply, &text, &len) == XMPP_EOK) {
        fprintf(stderr, "test_security: unexpected reply %s\n", text);
        free(text);
    }
    (*(int *)arg)++;
}

/* A user sends hundreds of bad requests: each gets its error, and the
 * log holds a bounded number of lines about them (the rest are counted),
 * so nobody can flood the operator's log. */
static void test_refusals_do_not_flood_the_log(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = agent(t, u, "pc");
    replies_t rc = {"modify", "not-acceptable", NULL, 0, 0, 0};
    double before = metric(t, c, "bitween_agent_requests_total", "outcome=\"refused\"");
    int i, lines;

    xclient_on_reply(a, count_replies, &rc);
    for (i = 0; i < 300; i++) {
        char id[32], *req;
        snprintf(id, sizeof id, "%s-bad%d", t->prefix, i);
        req = hx_agent_iq(t->stack->component_jid, id, "register", 1,
                          "<share_item hash='nothex' name='n' size='1'/>");
        assert_int_equal(xclient_send_xml(a, req), 0);
        free(req);
        if (i % 50 == 49)
            xclient_pump(t->ctx, 1);
    }
    wait_count(t, &rc.busy, 300);
    assert_int_equal(rc.results + rc.other, 0);
    assert_true(metric(t, c, "bitween_agent_requests_total", "outcome=\"refused\"") - before >=
                300);
    lines = hx_file_count(hx_proc_log(c), " refused: ");
    trace("%d refusal lines logged", lines);
    assert_true(lines >= 1);
    assert_true(lines <= 40); /* at most 20 per 10 s */
    xclient_on_reply(a, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

/* IQ results and errors sent to the component, with ids it never used or
 * with malformed content, are never answered (RFC 6120 8.2.3). */
static void test_replies_never_answered(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "owner");
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = login(t, u, "pc");
    int answers = 0, i;

    xclient_on_reply(a, count_reply, &answers);
    for (i = 0; i < 20; i++) {
        send_fmt(a, "<iq type='result' id='%s-r%d' to='%s'/>", t->prefix, i,
                 t->stack->component_jid);
        send_fmt(a,
                 "<iq type='error' id='%s-e%d' to='%s'><error type='cancel'><bad-request "
                 "xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/></error></iq>",
                 t->prefix, i, t->stack->component_jid);
        send_fmt(a,
                 "<iq type='result' id='%s-x%d' to='%s'><register xmlns='urn:bitween:agent:1' "
                 "seq='1'/></iq>",
                 t->prefix, i, t->stack->component_jid);
    }
    /* the component answers in order: its reply to this ping comes after
     * any reply to the stanzas above */
    sync_with_component(t, a);
    assert_int_equal(answers, 0);
    assert_true(wait_metric(t, c, "bitween_iq_replies_dropped_total", "reason=\"unknown\"", 60) >=
                60);
    assert_int_equal(hx_db_resources(t->db, u), 0);
    xclient_on_reply(a, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

static void quiet_count_reply(xclient_t *cl, xmpp_stanza_t *reply, void *arg)
{
    (void)cl;
    (void)reply;
    (*(int *)arg)++;
}

/* An IQ whose id is 90,000 '"' characters: 90 KB on the wire, under the
 * c2s limit, but each '"' takes six bytes (&quot;) when written again, so
 * a reply echoing it would be over Prosody's limit on what a component
 * sends (512 KiB), and Prosody would close the component's whole stream
 * (every request in flight lost, every registration pinged again). Any
 * user could do that as often as they like. Such a request is dropped
 * unanswered and counted; the component stays connected. */
static void test_id_too_long_to_echo(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "mallory");
    hx_proc_t *c = component(t, NULL);
    xclient_t *a = login(t, u, "box");
    const char *const kinds[] = {"<ping xmlns='urn:xmpp:ping'/>",
                                 "<register xmlns='urn:bitween:agent:1' seq='1'/>", NULL};
    size_t n = 90000, len, i;
    int answers = 0;
    char *xml;

    xml = malloc(n + 512);
    assert_non_null(xml);
    xclient_on_reply(a, quiet_count_reply, &answers);
    for (i = 0; kinds[i]; i++) {
        len = (size_t)snprintf(xml, 512, "<iq type='%s' to='%s' id='", i ? "set" : "get",
                               t->stack->component_jid);
        memset(xml + len, '"', n);
        len += n;
        len += (size_t)snprintf(xml + len, 512, "'>%s</iq>", kinds[i]);
        xclient_send_raw(a, xml, len);
        /* answered after the request above: the stream is still there */
        sync_with_component(t, a);
    }
    free(xml);
    assert_int_equal(answers, 0);
    assert_true(metric(t, c, "bitween_xmpp_disconnects_total", NULL) == 0);
    assert_true(metric(t, c, "bitween_iq_requests_dropped_total", NULL) == 2);
    xclient_on_reply(a, NULL, NULL);
    component_stop(t, c);
    t->passed = 1;
}

/* ---- main ---------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest replies[] = {
        T(test_forged_reply_with_the_right_id),
        T(test_guessed_reply_ids),
    };
    const struct CMUnitTest flood[] = {
        T(test_presence_flood_of_unregistered),
        T(test_presence_flood_of_registered),
        T(test_one_user_cannot_fill_the_queue),
        T(test_max_pending_back_pressure),
    };
    const struct CMUnitTest liveness[] = {
        T(test_unwatched_registrations),
        T(test_recheck_removes_hung_agent),
        T(test_failed_removal_spares_a_new_registration),
        T(test_requests_keep_their_order_while_probed),
        T(test_stop_answers_requests_held_for_a_probe),
    };
    const struct CMUnitTest addressing[] = {
        T(test_requests_to_other_jids),
        T(test_replies_never_answered),
        T(test_refusals_do_not_flood_the_log),
        T(test_id_too_long_to_echo),
    };
    const char *group = argc > 2 ? argv[2] : "all";
    int all = strcmp(group, "all") == 0, rc = 0, known = all;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BITWEEN_COMPONENT_BINARY [GROUP]\n", argv[0]);
        return 2;
    }
    if (fixture_init("test_security", argv[1]) != 0)
        return 2;
    xmpp_initialize();
#define GROUP(name)                                                                                \
    if (all || strcmp(group, #name) == 0) {                                                        \
        known = 1;                                                                                 \
        rc |= cmocka_run_group_tests_name("security." #name, name, NULL, NULL);                    \
    }
    GROUP(replies)
    GROUP(flood)
    GROUP(liveness)
    GROUP(addressing)
#undef GROUP
    xmpp_shutdown();
    fixture_done();
    if (!known) {
        fprintf(stderr, "test_security: unknown group %s\n", group);
        return 2;
    }
    return rc ? 1 : 0;
}
