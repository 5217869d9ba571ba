/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of bitween-component against the real stack started by
 * tests/with_stack.sh (Prosody with mod_privilege, PostgreSQL): the shipped
 * binary runs as a child process; agents and a watching contact are real
 * c2s clients (xclient.h). Each test asserts on what the watching contact
 * receives through PEP and on the registry's tables, uses users of its own
 * and runs its own component instance(s), stopped with SIGTERM (exit 0 and
 * a log free of sanitizer reports are part of every test).
 *
 *   test_component BIN [GROUP]
 *
 * BIN is the bitween-component binary; GROUP one of basic, errors, crash,
 * outage, cache, publish (needs a stack started with --fault-injection),
 * privilege (default: all; tests/e2e/CMakeLists.txt runs one
 * ctest per group, each on a stack of its own). Set BITWEEN_TEST_TRACE to
 * see the steps of each test with their times. Needs the variables with_stack.sh
 * exports (BITWEEN_STACK_DIR, BITWEEN_STACK_SCRIPT, BITWEEN_DATABASE_URL,
 * BITWEEN_XMPP_HOST/PORT, BITWEEN_COMPONENT_JID/SECRET,
 * BITWEEN_STACK_DOMAIN, BITWEEN_STACK_C2S_PORT).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <strophe.h>

#include "fixture.h"
#include "harness.h"
#include "shares.h"
#include "xclient.h"

/* ===== basic ============================================================= */

/* disco#info and ping to the component get proper answers; other IQs a
 * service-unavailable error. */
static void test_disco_and_ping(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "dp");
    xclient_t *a;
    xmpp_stanza_t *r, *q, *child;
    static const char *const quota[] = {"BITWEEN_MAX_SHARES_PER_RESOURCE=321", NULL};
    hx_proc_t *c = component(t, quota);
    int ident = 0, f_agent = 0, f_ping = 0, f_disco = 0, forms = 0;

    a = agent(t, u, "probe");
    r = raw_request(t, a,
                    "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                    "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    q = xmpp_stanza_get_child_by_name_and_ns(r, "query", "http://jabber.org/protocol/disco#info");
    assert_non_null(q);
    for (child = xmpp_stanza_get_children(q); child; child = xmpp_stanza_get_next(child)) {
        const char *name = xmpp_stanza_get_name(child);
        const char *var = xmpp_stanza_get_attribute(child, "var");
        if (!name)
            continue;
        if (strcmp(name, "identity") == 0 && xmpp_stanza_get_attribute(child, "category") &&
            strcmp(xmpp_stanza_get_attribute(child, "category"), "component") == 0)
            ident = 1;
        if (strcmp(name, "feature") == 0 && var) {
            f_agent |= strcmp(var, AGENT_NS) == 0;
            f_ping |= strcmp(var, "urn:xmpp:ping") == 0;
            f_disco |= strcmp(var, "http://jabber.org/protocol/disco#info") == 0;
        }
        if (strcmp(name, "x") == 0 && xmpp_stanza_get_ns(child) &&
            strcmp(xmpp_stanza_get_ns(child), "jabber:x:data") == 0) {
            /* XEP-0128: the quotas, as configured */
            xmpp_stanza_t *f;
            char *text;
            forms++;
            for (f = xmpp_stanza_get_children(child); f; f = xmpp_stanza_get_next(f)) {
                const char *fv = xmpp_stanza_get_attribute(f, "var");
                xmpp_stanza_t *v = xmpp_stanza_get_child_by_name(f, "value");
                if (!fv || !v || !(text = xmpp_stanza_get_text(v)))
                    continue;
                if (strcmp(fv, "FORM_TYPE") == 0)
                    assert_string_equal(text, AGENT_NS "#quotas");
                if (strcmp(fv, "max_shares_per_resource") == 0) {
                    assert_string_equal(text, "321");
                    forms += 10;
                }
                xmpp_free(t->ctx, text);
            }
        }
    }
    xmpp_stanza_release(r);
    assert_int_equal(forms, 11);
    assert_true(ident);
    assert_true(f_agent);
    assert_true(f_ping);
    assert_true(f_disco);

    /* The component has no disco nodes. */
    r = raw_request(t, a,
                    "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                    "<query xmlns='http://jabber.org/protocol/disco#info' node='x'/></iq>");
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "error");
    assert_non_null(xmpp_stanza_get_child_by_name(r, "error"));
    assert_non_null(
        xmpp_stanza_get_child_by_name(xmpp_stanza_get_child_by_name(r, "error"), "item-not-found"));
    xmpp_stanza_release(r);

    r = raw_request(t, a,
                    "<iq type='get' to='IQ_TO' id='IQ_ID'><ping xmlns='urn:xmpp:ping'/></iq>");
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    xmpp_stanza_release(r);

    expect_error_reply(raw_request(t, a,
                                   "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                                   "<query xmlns='jabber:iq:version'/></iq>"),
                       "cancel", "service-unavailable", NULL);

    component_stop(t, c);
    t->passed = 1;
}

/* Two resources of one user register: the contact receives one item
 * holding both, in the documented format, equal to what is stored. */
static void two_resources(t_t *t, const char **u_out, xclient_t **a1, xclient_t **a2, xclient_t **w)
{
    const char *u = user(t, "owner"), *wj = user(t, "contact");
    hx_buf_t b1 = {0}, b2 = {0};

    subscribe(t, u, wj);
    *w = watcher(t, wj);
    *a1 = agent(t, u, "laptop");
    *a2 = agent(t, u, "desktop");

    hx_share_el(&b1, hash_of(t, "holiday"), "holiday.mkv", 734003200ULL);
    hx_share_el(&b1, hash_of(t, "notes"), "notes & things.txt", 1234);
    hx_addr_el(&b1, "203.0.113.7", 6881);
    hx_share_el(&b2, hash_of(t, "album"), "Bj\xc3\xb6rk \xe2\x80\x93 album.flac", 99);
    hx_addr_el(&b2, "2001:db8::7", 6882);
    hx_addr_el(&b2, "198.51.100.2", 6882);
    expect_result(t, *a1, "register", 1, b1.s);
    expect_result(t, *a2, "register", 7, b2.s);
    free(b1.s);
    free(b2.s);

    {
        const char *must[] = {"<user_shares",
                              "https://xmpp.kwoh.de/protocol/shares",
                              "resource=\"laptop\"",
                              "resource=\"desktop\"",
                              hash_of(t, "holiday"),
                              hash_of(t, "notes"),
                              hash_of(t, "album"),
                              "name=\"holiday.mkv\"",
                              "name=\"notes &amp; things.txt\"",
                              "name=\"Bj\xc3\xb6rk \xe2\x80\x93 album.flac\"",
                              "size=\"734003200\"",
                              "address=\"203.0.113.7\"",
                              "address=\"2001:db8::7\"",
                              "address=\"198.51.100.2\"",
                              "port=\"6882\"",
                              NULL};
        wait_item(t, *w, u, must, NULL);
    }
    assert_int_equal(hx_db_resources(t->db, u), 2);
    assert_int_equal(hx_db_seq(t->db, u, "laptop"), 1);
    assert_int_equal(hx_db_seq(t->db, u, "desktop"), 7);
    assert_int_equal(hx_db_shares(t->db, u, "laptop"), 2);
    assert_int_equal(hx_db_shares(t->db, u, "desktop"), 1);
    assert_int_equal(hx_db_has_share(t->db, u, "laptop", hash_of(t, "holiday")), 1);
    wait_view_is_db(t, *w, u);
    *u_out = u;
}

static void test_two_resources_one_item(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *u;
    xclient_t *a1, *a2, *w;
    const char *item;
    shares_item_t *parsed = NULL;
    shares_error_t err;

    two_resources(t, &u, &a1, &a2, &w);
    /* One <user_shares/> with exactly the two resources, in order. */
    item = xclient_last_item(w, u);
    assert_int_equal(shares_item_parse_text(t->ctx, item, NULL, &parsed, &err), 0);
    assert_int_equal(shares_item_resource_count(parsed), 2);
    assert_int_equal(shares_item_share_count(parsed, 0) + shares_item_share_count(parsed, 1), 3);
    assert_int_equal(shares_item_address_count(parsed, 0) + shares_item_address_count(parsed, 1),
                     3);
    assert_true(strstr(item, "resource=\"desktop\"") < strstr(item, "resource=\"laptop\""));
    shares_item_free(parsed);

    component_stop(t, c);
    /* Registrations survive a clean stop. */
    assert_int_equal(hx_db_resources(t->db, u), 2);
    t->passed = 1;
}

/* A resource killed without logging out disappears from the item and the
 * database; a clean logout too, leaving an empty item. */
static void test_killed_resource_removed(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *u;
    xclient_t *a1, *a2, *w;

    two_resources(t, &u, &a1, &a2, &w);
    xclient_kill(a2);
    {
        const char *must[] = {"resource=\"laptop\"", hash_of(t, "holiday"), NULL};
        const char *must_not[] = {"resource=\"desktop\"", hash_of(t, "album"), "2001:db8::7", NULL};
        wait_item(t, w, u, must, must_not);
    }
    wait_db_resources(t, u, 1);
    assert_int_equal(hx_db_seq(t->db, u, "desktop"), -1);
    assert_int_equal(hx_db_shares(t->db, u, "laptop"), 2);
    wait_view_is_db(t, w, u);

    logout(t, a1);
    {
        const char *must[] = {"<user_shares", NULL};
        const char *must_not[] = {"<resource", NULL};
        wait_item(t, w, u, must, must_not);
    }
    wait_db_resources(t, u, 0);
    wait_view_is_db(t, w, u);
    component_stop(t, c);
    t->passed = 1;
}

/* Incremental add/remove; an unchanged re-register publishes nothing; an
 * older sequence number changes nothing; unregister. */
static void test_incremental_and_sequence(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *u = user(t, "inc"), *wj = user(t, "incw");
    const char *h1 = hash_of(t, "one"), *h2 = hash_of(t, "two"), *h3 = hash_of(t, "three"),
               *h4 = hash_of(t, "four"), *h9 = hash_of(t, "nine");
    xclient_t *a, *w;
    hx_buf_t b = {0};
    char *fp;
    unsigned events;
    char digest_before[SHARES_DIGEST_HEX], digest_after[SHARES_DIGEST_HEX];

    subscribe(t, u, wj);
    w = watcher(t, wj);
    a = agent(t, u, "box");

    hx_share_el(&b, h1, "first.mkv", 100);
    hx_share_el(&b, h2, "second.mkv", 200);
    hx_addr_el(&b, "192.0.2.1", 7000);
    expect_result(t, a, "register", 1, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    {
        const char *must[] = {h1, h2, "192.0.2.1", NULL};
        wait_item(t, w, u, must, NULL);
    }

    /* add */
    hx_share_el(&b, h3, "third.iso", 300);
    expect_result(t, a, "add", 2, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    {
        const char *must[] = {h1, h2, h3, "third.iso", "192.0.2.1", NULL};
        wait_item(t, w, u, must, NULL);
    }
    assert_int_equal(hx_db_shares(t->db, u, "box"), 3);
    assert_int_equal(hx_db_seq(t->db, u, "box"), 2);

    /* add of a known hash updates it */
    hx_share_el(&b, h1, "first renamed.mkv", 101);
    expect_result(t, a, "add", 3, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    {
        const char *must[] = {"first renamed.mkv", "size=\"101\"", h2, h3, NULL};
        const char *must_not[] = {"\"first.mkv\"", NULL};
        wait_item(t, w, u, must, must_not);
    }
    assert_int_equal(hx_db_shares(t->db, u, "box"), 3);

    /* remove */
    hx_hash_el(&b, h2);
    expect_result(t, a, "remove", 4, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    {
        const char *must[] = {h1, h3, NULL};
        const char *must_not[] = {h2, NULL};
        wait_item(t, w, u, must, must_not);
    }
    assert_int_equal(hx_db_has_share(t->db, u, "box", h2), 0);
    assert_int_equal(hx_db_shares(t->db, u, "box"), 2);
    wait_view_is_db(t, w, u);

    /* From here on, count broadcasts: the next one must be the sync add. */
    events = xclient_item_events(w, u);
    assert_true(events >= 4);
    assert_int_equal(hx_db_digest(t->db, u, digest_before), 0);

    /* Unchanged state, newer seq: stored (seq), not published. */
    hx_share_el(&b, h3, "third.iso", 300);
    hx_share_el(&b, h1, "first renamed.mkv", 101);
    hx_addr_el(&b, "192.0.2.1", 7000);
    expect_result(t, a, "register", 5, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    assert_int_equal(hx_db_seq(t->db, u, "box"), 5);
    assert_int_equal(hx_db_digest(t->db, u, digest_after), 0);
    assert_string_equal(digest_before, digest_after);

    /* Older sequence numbers: conflict, nothing changes. */
    fp = fingerprint(t, u);
    hx_share_el(&b, h9, "stale.bin", 9);
    expect_error(t, a, "register", 3, b.s, "cancel", "conflict", NULL);
    assert_string_equal(fingerprint(t, u), fp);
    expect_error(t, a, "add", 4, b.s, "cancel", "conflict", NULL);
    assert_string_equal(fingerprint(t, u), fp);
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_hash_el(&b, h1);
    expect_error(t, a, "remove", 0, b.s, "cancel", "conflict", NULL);
    free(b.s);
    memset(&b, 0, sizeof b);
    assert_string_equal(fingerprint(t, u), fp);
    assert_int_equal(hx_db_has_share(t->db, u, "box", h9), 0);

    /* Sync point: a real change; it must be the only broadcast since. */
    hx_share_el(&b, h4, "sync.bin", 4);
    expect_result(t, a, "add", 6, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    {
        const char *must[] = {h4, h1, h3, NULL};
        const char *must_not[] = {h9, NULL};
        wait_item(t, w, u, must, must_not);
    }
    trace("%u notifications, %u broadcasts", xclient_items(w, u), xclient_item_events(w, u));
    assert_int_equal(xclient_item_events(w, u), events + 1);
    wait_view_is_db(t, w, u);

    /* Unregister (idempotent), then incremental updates need a register. */
    expect_result(t, a, "unregister", -1, NULL);
    {
        const char *must[] = {"<user_shares", NULL};
        const char *must_not[] = {"<resource", NULL};
        wait_item(t, w, u, must, must_not);
    }
    assert_int_equal(hx_db_resources(t->db, u), 0);
    expect_result(t, a, "unregister", -1, NULL);
    hx_share_el(&b, h4, "sync.bin", 4);
    expect_error(t, a, "add", 7, b.s, "cancel", "item-not-found", "register");
    free(b.s);
    assert_int_equal(hx_db_resources(t->db, u), 0);

    component_stop(t, c);
    t->passed = 1;
}

/* Wait until the component has recorded the publish of the stored state
 * of `jid` (written after the server's reply to the publish). */
static void wait_publish_recorded(t_t *t, const char *jid)
{
    long long end = hx_now_ms() + WAIT;
    char db[SHARES_DIGEST_HEX], rec[SHARES_DIGEST_HEX];
    for (;;) {
        assert_int_equal(hx_db_digest(t->db, jid, db), 0);
        if (hx_db_published_digest(t->db, jid, rec) == 0 && strcmp(db, rec) == 0)
            return;
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_component: the publish of %s was never recorded\n", jid);
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
}

/* SIGTERM keeps registrations; the next instance re-checks them with
 * pings, keeps those whose agent answers and does not publish the
 * unchanged item again; presence still removes. */
static void test_restart_keeps_live_registrations(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *u = user(t, "keep"), *wj = user(t, "keepw");
    xclient_t *a, *w;
    char *s = shares_xml("keep", 0, 3, "kept");
    char *fp;
    unsigned events;

    subscribe(t, u, wj);
    w = watcher(t, wj);
    a = agent(t, u, "nas");
    expect_result(t, a, "register", 10, s);
    free(s);
    {
        const char *must[] = {"resource=\"nas\"", "kept-2", NULL};
        wait_item(t, w, u, must, NULL);
    }
    wait_publish_recorded(t, u);
    events = xclient_item_events(w, u);
    fp = fingerprint(t, u);
    component_stop(t, c);
    assert_string_equal(fingerprint(t, u), fp);

    c = component(t, NULL);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    /* The agent answered the ping: nothing removed. Sync with a request. */
    {
        xmpp_stanza_t *r = raw_request(t, a,
                                       "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                                       "<ping xmlns='urn:xmpp:ping'/></iq>");
        assert_non_null(r);
        xmpp_stanza_release(r);
    }
    assert_int_equal(hx_db_resources(t->db, u), 1);
    assert_int_equal(hx_db_seq(t->db, u, "nas"), 10);
    {
        char *line = hx_strdupf("%s/nas did not answer", u);
        int n = hx_file_count(hx_proc_log(c), line);
        free(line);
        assert_int_equal(n, 0);
    }

    /* The directed presence sent to the first instance still tells the
     * second one that the agent went away. The removal's publish is the
     * first broadcast since the restart: the re-check's republish of the
     * user ran before it (same database worker, in order) and found the
     * item unchanged. */
    xclient_kill(a);
    wait_db_resources(t, u, 0);
    {
        const char *must[] = {"<user_shares", NULL};
        const char *must_not[] = {"<resource", NULL};
        wait_item(t, w, u, must, must_not);
    }
    assert_int_equal(xclient_item_events(w, u), events + 1);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== errors ============================================================ */

/* Malformed, oversized and over-quota requests get the documented error
 * with a text and change nothing. */
static void test_refused_requests(void **state)
{
    t_t *t = *state;
    static const char *const limits[] = {
        "BITWEEN_MAX_SHARES_PER_RESOURCE=5", "BITWEEN_MAX_NAME_BYTES=32",
        "BITWEEN_MAX_RESOURCES_PER_USER=2",  "BITWEEN_MAX_ADDRESSES_PER_RESOURCE=2",
        "BITWEEN_MAX_ITEM_BYTES=1024",       NULL};
    hx_proc_t *c = component(t, limits);
    const char *u = user(t, "bad"), *wj = user(t, "badw");
    xclient_t *a1, *a2, *a3, *w;
    char *fp, *big, *s;
    unsigned events;
    hx_buf_t b = {0};
    /* 32-byte names: the longest allowed */
    static const char name32[] = "abcdefghijklmnopqrstuvwxyz-12345";

    assert_int_equal(strlen(name32), 32);
    subscribe(t, u, wj);
    w = watcher(t, wj);
    a1 = agent(t, u, "a1");
    a2 = agent(t, u, "a2");
    a3 = agent(t, u, "a3");

    /* a1: five shares with long names and two long addresses (about 650
     * bytes alone); a2 small. */
    big = shares_xml("big1", 0, 5, name32 + 2); /* 30 + "-i" = 32 bytes */
    hx_buf_printf(&b, "%s", big);
    free(big);
    hx_addr_el(&b, "2001:db8:1234:5678:9abc:def0:1234:5678", 65535);
    hx_addr_el(&b, "2001:db8:1234:5678:9abc:def0:1234:5679", 65535);
    expect_result(t, a1, "register", 1, b.s);
    free(b.s);
    memset(&b, 0, sizeof b);
    s = shares_xml("small", 0, 1, "s");
    expect_result(t, a2, "register", 1, s);
    free(s);
    {
        const char *must[] = {"resource=\"a1\"", "resource=\"a2\"", NULL};
        wait_item(t, w, u, must, NULL);
    }
    wait_view_is_db(t, w, u);
    events = xclient_item_events(w, u);
    fp = fingerprint(t, u);

#define UNCHANGED() assert_string_equal(fingerprint(t, u), fp)

    /* -- malformed: modify/bad-request -- */
    expect_error(t, a1, "register", -1, NULL, "modify", "bad-request", "seq");
    UNCHANGED();
    expect_error_reply(raw_request(t, a1,
                                   "<iq type='set' to='IQ_TO' id='IQ_ID'>"
                                   "<register xmlns='urn:bitween:agent:1' seq='12x'/></iq>"),
                       "modify", "bad-request", "seq");
    expect_error_reply(
        raw_request(t, a1,
                    "<iq type='set' to='IQ_TO' id='IQ_ID'>"
                    "<register xmlns='urn:bitween:agent:1' seq='99'><bogus/></register></iq>"),
        "modify", "bad-request", "bogus");
    expect_error_reply(
        raw_request(t, a1,
                    "<iq type='set' to='IQ_TO' id='IQ_ID'><register xmlns='urn:bitween:agent:1' "
                    "seq='99'><share_item hash='0123456789012345678901234567890123456789' "
                    "size='1'/></register></iq>"),
        "modify", "bad-request", "name");
    expect_error_reply(raw_request(t, a1,
                                   "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                                   "<register xmlns='urn:bitween:agent:1' seq='99'/></iq>"),
                       "modify", "bad-request", "set");
    expect_error_reply(raw_request(t, a1,
                                   "<iq type='set' to='IQ_TO' id='IQ_ID'>"
                                   "<frobnicate xmlns='urn:bitween:agent:1' seq='99'/></iq>"),
                       "modify", "bad-request", "frobnicate");
    hx_share_el(&b, hash_of(t, "x"), "x", 1);
    hx_addr_el(&b, "192.0.2.9", 1);
    expect_error(t, a1, "add", 99, b.s, "modify", "bad-request", "ip_address");
    free(b.s);
    memset(&b, 0, sizeof b);
    expect_error(t, a1, "add", 99, NULL, "modify", "bad-request", "share_item");
    UNCHANGED();

    /* -- invalid values: modify/not-acceptable -- */
    hx_share_el(&b, "xyz", "bad hash", 1);
    expect_error(t, a1, "register", 99, b.s, "modify", "not-acceptable", "hash");
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_share_el(&b, hash_of(t, "y"), "y", 1);
    hx_addr_el(&b, "999.1.1.1", 6881);
    expect_error(t, a1, "register", 99, b.s, "modify", "not-acceptable", "999.1.1.1");
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_share_el(&b, hash_of(t, "y"), "y", 1);
    hx_addr_el(&b, "192.0.2.1", 0);
    expect_error(t, a1, "register", 99, b.s, "modify", "not-acceptable", "port");
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_share_el(&b, hash_of(t, "y"), "y", 1);
    hx_share_el(&b, hash_of(t, "y"), "y again", 2);
    expect_error(t, a1, "register", 99, b.s, "modify", "not-acceptable", "duplicate");
    free(b.s);
    memset(&b, 0, sizeof b);
    expect_error_reply(raw_request(t, a1,
                                   "<iq type='set' to='IQ_TO' id='IQ_ID'>"
                                   "<register xmlns='urn:bitween:agent:1' seq='99'><share_item "
                                   "hash='0123456789012345678901234567890123456789' name='n' "
                                   "size='-5'/></register></iq>"),
                       "modify", "not-acceptable", "size");
    UNCHANGED();

    /* -- over the per-resource limits: modify/policy-violation -- */
    s = shares_xml("six", 0, 6, "six");
    expect_error(t, a1, "register", 99, s, "modify", "policy-violation", "shares");
    free(s);
    hx_share_el(&b, hash_of(t, "long"), "abcdefghijklmnopqrstuvwxyz-123456", 1); /* 33 bytes */
    expect_error(t, a1, "register", 99, b.s, "modify", "policy-violation", "name");
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_share_el(&b, hash_of(t, "z"), "z", 1);
    hx_addr_el(&b, "192.0.2.1", 1);
    hx_addr_el(&b, "192.0.2.2", 1);
    hx_addr_el(&b, "192.0.2.3", 1);
    expect_error(t, a1, "register", 99, b.s, "modify", "policy-violation", "addresses");
    free(b.s);
    memset(&b, 0, sizeof b);
    /* a1 holds five: one more through add is over the limit */
    s = shares_xml("addone", 0, 1, "one");
    expect_error(t, a1, "add", 99, s, "modify", "policy-violation", "shares");
    free(s);
    {
        /* remove of six hashes: over the per-request limit */
        int i;
        for (i = 0; i < 6; i++) {
            char seed[32];
            snprintf(seed, sizeof seed, "rm-%d", i);
            hx_hash_el(&b, hash_of(t, seed));
        }
    }
    expect_error(t, a1, "remove", 99, b.s, "modify", "policy-violation", "share_item");
    free(b.s);
    memset(&b, 0, sizeof b);
    UNCHANGED();

    /* -- quotas of the user -- */
    s = shares_xml("third", 0, 1, "third");
    expect_error(t, a3, "register", 1, s, "modify", "policy-violation", "resources");
    free(s);
    assert_int_equal(hx_db_seq(t->db, u, "a3"), -1);
    /* a2 grows as big as a1: fine alone, the merged item (about 1,250
     * bytes) is over max_item_bytes */
    big = shares_xml("big2", 0, 5, name32 + 2);
    hx_buf_printf(&b, "%s", big);
    hx_addr_el(&b, "2001:db8:1234:5678:9abc:def0:1234:5678", 65535);
    hx_addr_el(&b, "2001:db8:1234:5678:9abc:def0:1234:5679", 65535);
    expect_error(t, a2, "register", 2, b.s, "modify", "policy-violation", "bytes");
    free(big);
    free(b.s);
    memset(&b, 0, sizeof b);
    UNCHANGED();

    /* -- add to a resource that never registered -- */
    s = shares_xml("nf", 0, 1, "nf");
    expect_error(t, a3, "add", 5, s, "cancel", "item-not-found", "register");
    free(s);
    assert_int_equal(hx_db_resources(t->db, u), 2);
    UNCHANGED();
    /* unregister of a resource that never registered: nothing to do */
    expect_result(t, a3, "unregister", -1, NULL);
    UNCHANGED();

    /* Sync point: one real change; the only broadcast since the start. */
    expect_result(t, a2, "unregister", -1, NULL);
    {
        const char *must[] = {"resource=\"a1\"", NULL};
        const char *must_not[] = {"resource=\"a2\"", NULL};
        wait_item(t, w, u, must, must_not);
    }
    assert_int_equal(xclient_item_events(w, u), events + 1);
    wait_view_is_db(t, w, u);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
#undef UNCHANGED
    t->passed = 1;
}

/* Users of a domain the component does not serve: auth/forbidden. */
static void test_domain_not_served(void **state)
{
    t_t *t = *state;
    static const char *const other[] = {"BITWEEN_DOMAINS=elsewhere.test", NULL};
    hx_proc_t *c = component_spawn(t, other);
    const char *u = user(t, "alien");
    xclient_t *a;
    char *s = shares_xml("alien", 0, 2, "alien");
    const char *params[1] = {u};
    PGresult *r;

    assert_true(hx_proc_wait_log(c, "connected to", 1, WAIT, t->ctx));
    a = agent(t, u, "pc");
    expect_error(t, a, "register", 1, s, "auth", "forbidden", "not served");
    expect_error(t, a, "add", 2, s, "auth", "forbidden", "not served");
    expect_error(t, a, "unregister", -1, NULL, "auth", "forbidden", "not served");
    free(s);
    r = PQexecParams(t->db, "SELECT count(*) FROM users WHERE jid = $1", 1, NULL, params, NULL,
                     NULL, 0);
    assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
    assert_string_equal(PQgetvalue(r, 0, 0), "0");
    PQclear(r);
    /* Its presence is ignored too, without harm. */
    xclient_kill(a);
    {
        xclient_t *b = agent(t, u, "other");
        xmpp_stanza_t *p = raw_request(t, b,
                                       "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                                       "<ping xmlns='urn:xmpp:ping'/></iq>");
        assert_non_null(p);
        assert_string_equal(hx_iq_type(p), "result");
        xmpp_stanza_release(p);
    }
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    t->passed = 1;
}

/* SIGHUP re-reads the configuration: a reloadable option (log_level)
 * takes effect at run time; a change to an option that needs a restart,
 * or a broken file, is refused with a message and changes nothing; the
 * component keeps serving throughout. */
static void write_conf(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    assert_true(fputs(text, f) >= 0);
    assert_int_equal(fclose(f), 0);
}

static void test_sighup_reload(void **state)
{
    t_t *t = *state;
    char *conf = keep(t, hx_strdupf("%s/reload.conf", t->dir));
    const char *extra[] = {keep(t, hx_strdupf("BITWEEN_CONFIG=%s", conf)), NULL};
    const char *u = user(t, "reload");
    char *s = keep(t, shares_xml("reload", 0, 1, "reload"));
    hx_proc_t *c;
    xclient_t *a;

    write_conf(conf, "log_level = info\n");
    c = component(t, extra);
    a = agent(t, u, "pc");
    expect_result(t, a, "register", 1, s);
    /* at info, request lines are not logged */
    assert_int_equal(hx_file_count(hx_proc_log(c), " received"), 0);

    write_conf(conf, "log_level = debug\n");
    assert_int_equal(kill(hx_proc_pid(c), SIGHUP), 0);
    assert_true(hx_proc_wait_log(c, "configuration reloaded (log level debug)", 1, WAIT, t->ctx));
    expect_result(t, a, "register", 2, s);
    assert_true(hx_proc_wait_log(c, " received", 1, WAIT, t->ctx));

    /* db_workers needs a restart (and comes from the file alone, while
     * the environment overrides the options the harness sets): refused,
     * nothing changes, not even the reloadable log_level */
    write_conf(conf, "log_level = info\ndb_workers = 3\n");
    assert_int_equal(kill(hx_proc_pid(c), SIGHUP), 0);
    assert_true(hx_proc_wait_log(c, "reload refused", 1, WAIT, t->ctx));
    assert_true(hx_proc_wait_log(c, "db_workers", 1, WAIT, t->ctx));
    expect_result(t, a, "register", 3, s);
    assert_true(hx_proc_wait_log(c, " received", 2, WAIT, t->ctx)); /* still debug */

    /* a broken file: refused as well */
    write_conf(conf, "log_level = loud\n");
    assert_int_equal(kill(hx_proc_pid(c), SIGHUP), 0);
    assert_true(hx_proc_wait_log(c, "reload refused", 2, WAIT, t->ctx));
    expect_result(t, a, "register", 4, s);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    t->passed = 1;
}

/* ===== crash ============================================================= */

/* A burst: agents pipelining requests (register at seq 1, then one add of
 * a new share per seq) with a window of BURST_WINDOW unanswered each, every
 * reply recorded by id. */
#define BURST_MAX_AGENTS 6
#define BURST_WINDOW     4
#define BURST_MAX_SEQ    400

typedef struct burst burst_t;

typedef struct burst_agent {
    burst_t *bu;
    const char *jid;
    char resource[16];
    xclient_t *cl;
    int idx;
    long long next_seq; /* next to send */
    int outstanding;
    unsigned char state[BURST_MAX_SEQ + 1]; /* 0 unsent, 1 sent, 2 result, 3 error */
    int killed;
} burst_agent_t;

struct burst {
    t_t *t;
    int n;
    burst_agent_t ag[BURST_MAX_AGENTS];
    int sending;
    int results, errors, non_wait_errors;
    long long started;
};

static void burst_on_reply(xclient_t *cl, xmpp_stanza_t *reply, void *arg)
{
    burst_agent_t *ag = arg;
    const char *id = xmpp_stanza_get_id(reply), *type = xmpp_stanza_get_type(reply);
    int idx;
    long long seq;
    (void)cl;
    if (!id || sscanf(id, "b%d-%lld", &idx, &seq) != 2 || idx != ag->idx || seq < 1 ||
        seq > BURST_MAX_SEQ || ag->state[seq] != 1)
        return;
    ag->outstanding--;
    if (strcmp(type, "result") == 0) {
        ag->state[seq] = 2;
        ag->bu->results++;
    } else {
        xmpp_stanza_t *e = xmpp_stanza_get_child_by_name(reply, "error");
        const char *etype = e ? xmpp_stanza_get_attribute(e, "type") : NULL;
        ag->state[seq] = 3;
        ag->bu->errors++;
        if (!etype || strcmp(etype, "wait") != 0)
            ag->bu->non_wait_errors++;
    }
}

static void burst_share_seed(char *buf, size_t len, const burst_agent_t *ag, long long seq)
{
    snprintf(buf, len, "%s/%s/%lld", ag->jid, ag->resource, seq);
}

/* Agents for `n_users` users, `per_user` resources each. */
static void burst_setup(t_t *t, burst_t *bu, const char *const *users, int n_users, int per_user)
{
    int i;
    memset(bu, 0, sizeof *bu);
    bu->t = t;
    bu->n = n_users * per_user;
    assert_true(bu->n <= BURST_MAX_AGENTS);
    for (i = 0; i < bu->n; i++) {
        burst_agent_t *ag = &bu->ag[i];
        ag->bu = bu;
        ag->idx = i;
        ag->jid = users[i / per_user];
        snprintf(ag->resource, sizeof ag->resource, "r%d", i % per_user);
        ag->cl = agent(t, ag->jid, ag->resource);
        ag->next_seq = 1;
        xclient_on_reply(ag->cl, burst_on_reply, ag);
    }
}

/* Keep each live agent's window full. */
static void burst_fill(burst_t *bu)
{
    int i;
    for (i = 0; i < bu->n && bu->sending; i++) {
        burst_agent_t *ag = &bu->ag[i];
        while (!ag->killed && ag->outstanding < BURST_WINDOW && ag->next_seq <= BURST_MAX_SEQ) {
            char id[32], seed[128], h[41], *xml;
            hx_buf_t b = {0};
            long long seq = ag->next_seq++;
            burst_share_seed(seed, sizeof seed, ag, seq);
            hx_hash(h, seed);
            hx_share_el(&b, h, seed, (unsigned long long)seq);
            if (seq == 1)
                hx_addr_el(&b, "192.0.2.50", (unsigned)(7000 + ag->idx));
            snprintf(id, sizeof id, "b%d-%lld", ag->idx, seq);
            xml = hx_agent_iq(bu->t->stack->component_jid, id, seq == 1 ? "register" : "add", seq,
                              b.s);
            free(b.s);
            assert_int_equal(xclient_send_xml(ag->cl, xml), 0);
            free(xml);
            ag->state[seq] = 1;
            ag->outstanding++;
        }
    }
}

/* Send until `results` requests are acknowledged (bounded). */
static void burst_until(burst_t *bu, int results)
{
    long long end;
    bu->sending = 1;
    bu->started = hx_now_ms();
    end = bu->started + 60000;
    while (bu->results < results && hx_now_ms() < end) {
        burst_fill(bu);
        xmpp_run_once(bu->t->ctx, 1);
    }
    assert_true(bu->results >= results);
    /* return with every window full: requests are in flight */
    burst_fill(bu);
    xmpp_run_once(bu->t->ctx, 0);
}

static int burst_outstanding(const burst_t *bu)
{
    int i, n = 0;
    for (i = 0; i < bu->n; i++)
        n += bu->ag[i].outstanding;
    return n;
}

/* With the component gone: once the server bounces a new IQ of each agent
 * (component unavailable), every reply the component sent was delivered. */
static void burst_sync_gone(burst_t *bu)
{
    t_t *t = bu->t;
    int i;
    for (i = 0; i < bu->n; i++) {
        long long dl = hx_now_ms() + WAIT;
        if (bu->ag[i].killed)
            continue;
        for (;;) {
            char id[32], *xml;
            xmpp_stanza_t *r;
            int bounced;
            xml = hx_strdupf("<iq type='get' to='%s' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
                             t->stack->component_jid, next_id(t, id, sizeof id));
            /* A ping the server still forwarded to the dead component gets
             * no answer: try again. */
            r = xclient_iq(bu->ag[i].cl, xml, 1000);
            free(xml);
            bounced = r && strcmp(hx_iq_type(r), "error") == 0;
            if (r)
                xmpp_stanza_release(r);
            if (bounced)
                break;
            assert_true(hx_now_ms() < dl);
        }
    }
}

/* Every acknowledged update of `ag` is stored. */
static void burst_check_acked(t_t *t, const burst_agent_t *ag)
{
    long long seq, max_acked = 0;
    for (seq = 1; seq <= BURST_MAX_SEQ; seq++) {
        char seed[128], h[41];
        if (ag->state[seq] != 2)
            continue;
        max_acked = seq;
        burst_share_seed(seed, sizeof seed, ag, seq);
        hx_hash(h, seed);
        if (hx_db_has_share(t->db, ag->jid, ag->resource, h) != 1) {
            fprintf(stderr, "test_component: acknowledged seq %lld of %s/%s is not stored\n", seq,
                    ag->jid, ag->resource);
            fail();
        }
    }
    assert_true(hx_db_seq(t->db, ag->jid, ag->resource) >= max_acked);
}

static void burst_report(const burst_t *bu, const char *what, int outstanding)
{
    int i, sent = 0;
    for (i = 0; i < bu->n; i++)
        sent += (int)bu->ag[i].next_seq - 1;
    fprintf(stderr,
            "test_component: burst: %d sent, %d acknowledged, %d refused, %d in flight at the "
            "%s (%lld ms)\n",
            sent, bu->results, bu->errors, outstanding, what, hx_now_ms() - bu->started);
}

/* SIGKILL during a burst of registrations, agents dying while it is down,
 * restart: acknowledged updates stored, dead agents removed by the
 * re-check, the contact's view equal to the database. */
static void test_sigkill_during_burst(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *users[3], *wj = user(t, "bw");
    burst_t bu;
    xclient_t *w;
    int i, outstanding;

    for (i = 0; i < 3; i++) {
        char name[8];
        snprintf(name, sizeof name, "b%d", i);
        users[i] = user(t, name);
        subscribe(t, users[i], wj);
    }
    w = watcher(t, wj);
    burst_setup(t, &bu, users, 3, 2);

    /* Kill the component with requests in flight. */
    burst_until(&bu, 300);
    hx_proc_kill(c);
    bu.sending = 0;
    outstanding = burst_outstanding(&bu);
    assert_true(outstanding > 0);
    assert_int_equal(bu.errors, 0);
    burst_sync_gone(&bu);
    burst_report(&bu, "kill", outstanding);
    for (i = 0; i < bu.n; i++)
        burst_check_acked(t, &bu.ag[i]);

    /* While it is down: user b2 loses both agents, b0 one. */
    xclient_kill(bu.ag[1].cl);
    xclient_kill(bu.ag[4].cl);
    xclient_kill(bu.ag[5].cl);
    bu.ag[1].killed = bu.ag[4].killed = bu.ag[5].killed = 1;

    c = component(t, NULL);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    wait_db_resources(t, users[0], 1);
    wait_db_resources(t, users[1], 2);
    wait_db_resources(t, users[2], 0);
    for (i = 0; i < bu.n; i++) {
        if (bu.ag[i].killed)
            assert_int_equal(hx_db_seq(t->db, bu.ag[i].jid, bu.ag[i].resource), -1);
        else
            burst_check_acked(t, &bu.ag[i]);
    }
    for (i = 0; i < 3; i++)
        wait_view_is_db(t, w, users[i]);
    {
        const char *must_not[] = {"<resource", NULL};
        wait_item(t, w, users[2], NULL, must_not);
    }
    assert_false(hx_file_has_sanitizer_report(hx_proc_log(t->proc[0])));
    component_stop(t, c);
    t->passed = 1;
}

/* SIGTERM during a burst that keeps going while it stops: exit 0, every
 * refusal a `wait` error, every acknowledged update stored, and the next
 * instance publishes exactly what is stored. */
static void test_sigterm_during_burst(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *users[1], *wj = user(t, "tw");
    burst_t bu;
    xclient_t *w;
    int i, outstanding;
    long long end;

    users[0] = user(t, "t0");
    subscribe(t, users[0], wj);
    w = watcher(t, wj);
    burst_setup(t, &bu, users, 1, 2);

    burst_until(&bu, 100);
    outstanding = burst_outstanding(&bu);
    assert_true(outstanding > 0);
    assert_int_equal(kill(hx_proc_pid(c), SIGTERM), 0);
    end = hx_now_ms() + WAIT;
    while (hx_proc_alive(c)) {
        assert_true(hx_now_ms() < end);
        burst_fill(&bu);
        xmpp_run_once(t->ctx, 1);
    }
    bu.sending = 0;
    component_stop(t, c); /* exit status 0, clean log */
    assert_int_equal(hx_file_count(hx_proc_log(c), "INFO component: stopped"), 1);
    burst_sync_gone(&bu);
    burst_report(&bu, "SIGTERM", outstanding);
    assert_int_equal(bu.non_wait_errors, 0);
    for (i = 0; i < bu.n; i++)
        burst_check_acked(t, &bu.ag[i]);

    c = component(t, NULL);
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 1, WAIT, t->ctx));
    assert_int_equal(hx_db_resources(t->db, users[0]), 2);
    wait_view_is_db(t, w, users[0]);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== outage ============================================================ */

/* Prosody restarts: the component reconnects, the re-check removes the
 * registrations of agents that did not come back, re-registered agents
 * are published, the contact's view is right again. */
static void test_prosody_restart(void **state)
{
    t_t *t = *state;
    static const char *const fast[] = {"BITWEEN_RECONNECT_MIN_MS=100",
                                       "BITWEEN_RECONNECT_MAX_MS=1000", NULL};
    hx_proc_t *c = component(t, fast);
    const char *u = user(t, "pr"), *wj = user(t, "prw");
    xclient_t *a1, *a2, *w;
    char *s1 = shares_xml("pr-one", 0, 2, "one"), *s2 = shares_xml("pr-two", 0, 2, "two");
    char *s3 = shares_xml("pr-again", 0, 3, "again");
    int i;

    subscribe(t, u, wj);
    w = watcher(t, wj);
    a1 = agent(t, u, "one");
    a2 = agent(t, u, "two");
    expect_result(t, a1, "register", 1, s1);
    expect_result(t, a2, "register", 1, s2);
    {
        const char *must[] = {"resource=\"one\"", "resource=\"two\"", NULL};
        wait_item(t, w, u, must, NULL);
    }

    stack_cmd(t, "restart", "prosody");
    for (i = 0; i < MAX_CLIENTS; i++) { /* every session is gone */
        xclient_free(t->cl[i]);
        t->cl[i] = NULL;
    }
    assert_true(hx_proc_wait_log(c, READY_LINE, 2, 30000, t->ctx));
    assert_true(hx_proc_wait_log(c, CHECK_DONE_LINE, 2, WAIT, t->ctx));
    /* Nobody answered the re-check: both stale registrations go. */
    wait_db_resources(t, u, 0);

    a1 = agent(t, u, "one");
    expect_result(t, a1, "register", 2, s3);
    w = watcher(t, wj);
    {
        const char *must[] = {"resource=\"one\"", "again-2", NULL};
        const char *must_not[] = {"resource=\"two\"", "\"one-0\"", NULL};
        wait_item(t, w, u, must, must_not);
    }
    wait_view_is_db(t, w, u);
    assert_int_equal(hx_db_resources(t->db, u), 1);
    free(s1);
    free(s2);
    free(s3);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    t->passed = 1;
}

/* Register until a result comes, every refusal being a `wait` error. */
static void register_until_ok(t_t *t, xclient_t *a, long long seq, const char *children)
{
    long long end = hx_now_ms() + 30000;
    for (;;) {
        xmpp_stanza_t *r = request(t, a, "register", seq, children);
        assert_non_null(r);
        if (strcmp(hx_iq_type(r), "result") == 0) {
            xmpp_stanza_release(r);
            return;
        }
        expect_error_reply(r, "wait", "internal-server-error", NULL);
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 50); /* retry interval of a patient agent */
    }
}

/* PostgreSQL restarts and goes away: requests get `wait` errors, the
 * component stays up, and everything works again once it is back. */
static void test_postgres_outage(void **state)
{
    t_t *t = *state;
    hx_proc_t *c = component(t, NULL);
    const char *u = user(t, "pg"), *wj = user(t, "pgw");
    xclient_t *a1, *a2, *w;
    char *s1 = shares_xml("pg-1", 0, 1, "first"), *s2 = shares_xml("pg-2", 0, 2, "second");
    char *s3 = shares_xml("pg-3", 0, 3, "third"), *s4 = shares_xml("pg-4", 0, 4, "fourth");

    subscribe(t, u, wj);
    w = watcher(t, wj);
    a1 = agent(t, u, "one");
    a2 = agent(t, u, "two");
    expect_result(t, a1, "register", 1, s1);
    expect_result(t, a2, "register", 1, s1);

    stack_cmd(t, "restart", "pg");
    register_until_ok(t, a1, 2, s2);
    assert_true(hx_proc_alive(c));
    assert_int_equal(hx_db_seq(t->db, u, "one"), 2);
    {
        const char *must[] = {"second-1", "resource=\"two\"", NULL};
        wait_item(t, w, u, must, NULL);
    }

    stack_cmd(t, "stop", "pg");
    expect_error(t, a1, "register", 3, s3, "wait", "internal-server-error", NULL);
    /* An agent dies while the database is away: removed once it is back. */
    xclient_kill(a2);
    {
        char *line = hx_strdupf("removing %s/two: ", u); /* "...; retry in N ms" */
        int seen = hx_proc_wait_log(c, line, 1, WAIT, t->ctx);
        free(line);
        assert_true(seen);
    }
    assert_true(hx_proc_alive(c));
    stack_cmd(t, "start", "pg");

    register_until_ok(t, a1, 4, s4);
    assert_int_equal(hx_db_seq(t->db, u, "one"), 4);
    assert_int_equal(hx_db_shares(t->db, u, "one"), 4);
    wait_db_resources(t, u, 1);
    {
        const char *must[] = {"fourth-3", NULL};
        const char *must_not[] = {"resource=\"two\"", NULL};
        wait_item(t, w, u, must, must_not);
    }
    wait_view_is_db(t, w, u);
    free(s1);
    free(s2);
    free(s3);
    free(s4);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    t->passed = 1;
}

/* SIGTERM while the database is away at start-up, and while the XMPP
 * server is away: a prompt exit 0 both times. Runs last in its group: it
 * stops the stack's servers (and starts them again). */
static void test_stop_while_servers_away(void **state)
{
    t_t *t = *state;
    static const char *const fast[] = {"BITWEEN_RECONNECT_MIN_MS=100",
                                       "BITWEEN_RECONNECT_MAX_MS=500", NULL};
    hx_proc_t *c;

    stack_cmd(t, "stop", "pg");
    c = component_spawn(t, fast);
    assert_true(hx_proc_wait_log(c, "database unavailable", 1, WAIT, t->ctx));
    component_stop(t, c);
    stack_cmd(t, "start", "pg");

    c = component(t, fast);
    stack_cmd(t, "stop", "prosody");
    assert_true(hx_proc_wait_log(c, "reconnecting in", 2, WAIT, t->ctx));
    component_stop(t, c);
    stack_cmd(t, "start", "prosody");
    t->passed = 1;
}

/* An XMPP server that accepts the connection and never answers: the
 * component is stopped while its stream is still being opened, and it
 * exits cleanly (the stream is released before what its handlers use). */
static void test_stop_while_stream_opening(void **state)
{
    t_t *t = *state;
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;
    int lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0), cfd = -1;
    struct pollfd pfd;
    char *port_env;
    const char *extra[2];
    hx_proc_t *c;
    long long end;

    assert_true(lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(lfd, 4), 0);
    assert_int_equal(getsockname(lfd, (struct sockaddr *)&sa, &len), 0);
    port_env = keep(t, hx_strdupf("BITWEEN_XMPP_PORT=%u", (unsigned)ntohs(sa.sin_port)));
    extra[0] = port_env;
    extra[1] = NULL;
    c = component_spawn(t, extra);
    pfd.fd = lfd;
    pfd.events = POLLIN;
    end = hx_now_ms() + WAIT;
    while (poll(&pfd, 1, 50) == 0)
        assert_true(hx_now_ms() < end);
    cfd = accept(lfd, NULL, NULL);
    assert_true(cfd >= 0);
    component_stop(t, c);
    close(cfd);
    close(lfd);
    t->passed = 1;
}

/* ===== cache ============================================================= */

/* Users whose merged items are big, updated in turns, with a state cache
 * too small for all of them (evictions) or none at all: what each contact
 * sees after every round is what the database holds. */
static void cache_rounds(t_t *t, hx_proc_t *c, int users, int shares, int rounds)
{
    const char *u[16], *f = user(t, "cw");
    xclient_t *a[16], *w;
    char name[300];
    int i, r;

    assert_true(users <= 16);
    memset(name, 'n', 200);
    name[200] = '\0';
    for (i = 0; i < users; i++) {
        char n[16];
        snprintf(n, sizeof n, "cu%d", i);
        u[i] = user(t, n);
        subscribe(t, u[i], f);
    }
    w = watcher(t, f);
    for (i = 0; i < users; i++) {
        char seed[32];
        snprintf(seed, sizeof seed, "cache-%d", i);
        a[i] = agent(t, u[i], "pc");
        expect_result(t, a[i], "register", 1, keep(t, shares_xml(seed, 0, shares, name)));
    }
    for (r = 0; r < rounds; r++) {
        for (i = 0; i < users; i++) {
            char seed[32];
            hx_buf_t b = {0};
            snprintf(seed, sizeof seed, "cache-%d", i);
            /* add one share, remove an old one */
            expect_result(t, a[i], "add", 2 + 2 * r,
                          keep(t, shares_xml(seed, shares + r, shares + r + 1, "new")));
            {
                char s2[48], h[41];
                snprintf(s2, sizeof s2, "%s-%d", seed, r);
                hx_hash(h, s2);
                hx_hash_el(&b, h);
            }
            expect_result(t, a[i], "remove", 3 + 2 * r, keep(t, b.s));
        }
        for (i = 0; i < users; i++)
            wait_view_is_db(t, w, u[i]);
    }
    (void)c;
}

static void test_cache_evicts_and_stays_exact(void **state)
{
    t_t *t = *state;
    /* about 2 x 90 KB counted per user: a few fit in 1 MiB, not all */
    static const char *const extra[] = {"BITWEEN_STATE_CACHE_MB=1", "BITWEEN_MAX_ITEM_BYTES=240000",
                                        NULL};
    hx_proc_t *c = component(t, extra);
    cache_rounds(t, c, 10, 400, 3);
    assert_true(metric(t, c, "bitween_state_cache_evictions_total", NULL) > 0);
    assert_true(metric(t, c, "bitween_state_cache_lookups_total", "result=\"hit\"") > 0);
    assert_true(metric(t, c, "bitween_state_cache_lookups_total", "result=\"miss\"") > 0);
    assert_true(metric(t, c, "bitween_state_cache_bytes", NULL) <= 1024.0 * 1024.0);
    component_stop(t, c);
    t->passed = 1;
}

static void test_cache_off_stays_exact(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_STATE_CACHE_MB=0", NULL};
    hx_proc_t *c = component(t, extra);
    cache_rounds(t, c, 3, 20, 2);
    assert_int_equal((int)metric(t, c, "bitween_state_cache_lookups_total", "result=\"hit\""), 0);
    assert_int_equal((int)metric(t, c, "bitween_state_cache_users", NULL), 0);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== publish (the stack's Prosody injects faults) ======================= */

/* The publish record of `jid` (status and error), waited for until its
 * status is `status` and its error contains `needle` (may be NULL). */
static void wait_publish_status(t_t *t, const char *jid, const char *status, const char *needle)
{
    const char *params[1] = {jid};
    long long end = hx_now_ms() + WAIT;
    for (;;) {
        PGresult *r = PQexecParams(t->db,
                                   "SELECT p.status, coalesce(p.error, '') FROM publishes p "
                                   "JOIN users u ON u.id = p.user_id WHERE u.jid = $1",
                                   1, NULL, params, NULL, NULL, 0);
        int ok;
        assert_int_equal(PQresultStatus(r), PGRES_TUPLES_OK);
        ok = PQntuples(r) == 1 && strcmp(PQgetvalue(r, 0, 0), status) == 0 &&
             (!needle || strstr(PQgetvalue(r, 0, 1), needle));
        if (!ok && hx_now_ms() >= end)
            fprintf(stderr, "test_component: publish record of %s: %s %s, expected %s %s\n", jid,
                    PQntuples(r) ? PQgetvalue(r, 0, 0) : "(none)",
                    PQntuples(r) ? PQgetvalue(r, 0, 1) : "", status, needle ? needle : "");
        PQclear(r);
        if (ok)
            return;
        assert_true(hx_now_ms() < end);
        xclient_pump(t->ctx, 20);
    }
}

/* A user `name` whose agent registers one share named `share` (the
 * fault it asks for), watched by a contact; the component started with
 * `extra`. */
typedef struct faulty {
    const char *jid;
    hx_proc_t *c;
    xclient_t *agent, *watcher;
} faulty_t;

static faulty_t faulty_user(t_t *t, const char *name, const char *share, const char *const *extra)
{
    faulty_t fu;
    char *fname = keep(t, hx_strdupf("%sf", name));
    const char *f = user(t, fname);
    fu.jid = user(t, name);
    subscribe(t, fu.jid, f);
    fu.c = component(t, extra);
    fu.watcher = watcher(t, f);
    fu.agent = agent(t, fu.jid, "pc");
    expect_result(t, fu.agent, "register", 1, keep(t, shares_xml(name, 0, 1, share)));
    return fu;
}

/* The server refuses a publish twice with a temporary error: the
 * component retries with backoff until it goes through, counts the
 * errors and records the publish as done. */
static void test_publish_wait_error_retried(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_PUBLISH_RETRY_MAX_MS=1000", NULL};
    const char *must[] = {"fault-wait-2", NULL};
    faulty_t fu = faulty_user(t, "pw", "fault-wait-2", extra);
    hx_proc_t *c = fu.c;

    wait_item(t, fu.watcher, fu.jid, must, NULL);
    wait_view_is_db(t, fu.watcher, fu.jid);
    wait_publish_status(t, fu.jid, "ok", NULL);
    assert_true(metric(t, c, "bitween_publish_errors_total", "kind=\"temporary\"") >= 2);
    assert_true(metric(t, c, "bitween_publishes_total", "outcome=\"retried\"") >= 2);
    assert_true(hx_file_count(hx_proc_log(c), "failed temporarily") >= 2);
    component_stop(t, c);
    t->passed = 1;
}

/* The server refuses a publish for good: the component records the error
 * with the server's words, counts it, and does not retry; the user's next
 * update is published. */
static void test_publish_permanent_error_recorded(void **state)
{
    t_t *t = *state;
    char *good = keep(t, shares_xml("pc", 1, 2, "fine"));
    const char *must[] = {"fine-1", NULL}, *must_not[] = {"fault-cancel", NULL};
    faulty_t fu = faulty_user(t, "pc", "fault-cancel-1", NULL);
    hx_proc_t *c = fu.c;

    wait_publish_status(t, fu.jid, "error", "not-allowed");
    assert_true(metric(t, c, "bitween_publish_errors_total", "kind=\"permanent\"") >= 1);
    assert_true(metric(t, c, "bitween_publishes_total", "outcome=\"failed\"") >= 1);
    assert_int_equal((int)metric(t, c, "bitween_publish_errors_total", "kind=\"temporary\""), 0);
    assert_true(hx_file_count(hx_proc_log(c), "refused by the server") >= 1);
    expect_result(t, fu.agent, "register", 2, good);
    wait_item(t, fu.watcher, fu.jid, must, must_not);
    wait_publish_status(t, fu.jid, "ok", NULL);
    component_stop(t, c);
    t->passed = 1;
}

/* The server never answers a publish: after the IQ timeout the component
 * counts a temporary error and sends it again. */
static void test_publish_timeout_retried(void **state)
{
    t_t *t = *state;
    static const char *const extra[] = {"BITWEEN_IQ_TIMEOUT_MS=1000", NULL};
    const char *must[] = {"fault-drop-1", NULL};
    faulty_t fu = faulty_user(t, "pt", "fault-drop-1", extra);
    hx_proc_t *c = fu.c;

    wait_item(t, fu.watcher, fu.jid, must, NULL);
    wait_publish_status(t, fu.jid, "ok", NULL);
    assert_true(metric(t, c, "bitween_publish_errors_total", "kind=\"temporary\"") >= 1);
    assert_true(hx_file_count(hx_proc_log(c), "no reply from the server") >= 1);
    component_stop(t, c);
    t->passed = 1;
}

/* After a (re)connection, the catch-up republishes go out at most
 * max_republishes_in_flight at a time, and an agent's update is
 * published at once rather than behind them. The catch-ups are made to
 * hang in the server (a dropped first IQ per user) so that the bound can
 * be seen from outside: the server has received exactly as many as the
 * bound allows while the agent's update already reached its contact;
 * later every user's stored state is published. */
static void test_republishes_bounded_agent_first(void **state)
{
    t_t *t = *state;
    enum { N = 6, BOUND = 2 };
    static const char *const first[] = {"BITWEEN_IQ_TIMEOUT_MS=2000", NULL};
    static const char *const extra[] = {"BITWEEN_MAX_REPUBLISHES_IN_FLIGHT=2",
                                        "BITWEEN_IQ_TIMEOUT_MS=8000",
                                        "BITWEEN_PUBLISH_RETRY_MAX_MS=500", NULL};
    const char *jids[N], *aj = user(t, "rqa"), *wj = user(t, "rqw");
    char *plog = keep(t, hx_strdupf("%s/prosody/prosody.log", t->stack->dir));
    const char *must[] = {"rqa-after-0", NULL};
    xclient_t *a, *w;
    hx_proc_t *c;
    int i, before;

    subscribe(t, aj, wj);
    c = component(t, first);
    for (i = 0; i < N; i++) {
        char name[16];
        xclient_t *ag;
        snprintf(name, sizeof name, "rq%d", i);
        jids[i] = user(t, name);
        ag = agent(t, jids[i], "pc"); /* stays online: answers the re-check */
        expect_result(t, ag, "register", 1, keep(t, shares_xml(name, 0, 1, "plain")));
    }
    a = agent(t, aj, "pc");
    expect_result(t, a, "register", 1, keep(t, shares_xml("rqa", 0, 1, "rqa-before")));
    for (i = 0; i < N; i++)
        wait_publish_status(t, jids[i], "ok", NULL);
    component_stop(t, c);

    /* While it is down, the stored states change: each item differs from
     * the one last published, and its first publish will hang. */
    for (i = 0; i < N; i++) {
        const char *params[1] = {jids[i]};
        PGresult *r = PQexecParams(
            t->db,
            "UPDATE shares SET name = 'fault-drop-1' WHERE resource_id IN (SELECT r.id FROM "
            "resources r JOIN users u ON u.id = r.user_id WHERE u.jid = $1)",
            1, NULL, params, NULL, NULL, 0);
        assert_int_equal(PQresultStatus(r), PGRES_COMMAND_OK);
        assert_string_equal(PQcmdTuples(r), "1");
        PQclear(r);
    }
    before = hx_file_count(plog, "injecting drop fault");

    c = component(t, extra);
    w = watcher(t, wj);
    {
        long long end = hx_now_ms() + 30000;
        while (hx_file_count(plog, "injecting drop fault") - before < BOUND) {
            assert_true(hx_now_ms() < end);
            xclient_pump(t->ctx, 20);
        }
    }
    expect_result(t, a, "register", 2, keep(t, shares_xml("rqa", 0, 1, "rqa-after")));
    wait_item(t, w, aj, must, NULL);
    /* The agent's update is out; the catch-ups are still held back. */
    assert_int_equal(hx_file_count(plog, "injecting drop fault") - before, BOUND);
    assert_int_equal((int)metric(t, c, "bitween_republishes_in_flight", NULL), BOUND);
    assert_true(metric(t, c, "bitween_republishes_queued", NULL) >= 1);

    /* Every catch-up goes through in the end (each user's dropped first
     * publish is retried after the IQ timeout). */
    for (i = 0; i < N; i++) {
        char db[SHARES_DIGEST_HEX], pub[SHARES_DIGEST_HEX];
        long long end = hx_now_ms() + 60000;
        assert_int_equal(hx_db_digest(t->db, jids[i], db), 0);
        for (;;) {
            if (hx_db_published_digest(t->db, jids[i], pub) == 0 && strcmp(db, pub) == 0)
                break;
            assert_true(hx_now_ms() < end);
            xclient_pump(t->ctx, 50);
        }
    }
    assert_int_equal(hx_file_count(plog, "injecting drop fault") - before, N);
    assert_int_equal((int)metric(t, c, "bitween_republishes_queued", NULL), 0);
    assert_int_equal((int)metric(t, c, "bitween_republishes_in_flight", NULL), 0);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== privilege ========================================================= */

/* Parse the `export NAME='value'` lines of `stack up`. */
static char *env_value(const char *text, const char *name)
{
    char key[64];
    const char *p, *q;
    snprintf(key, sizeof key, "export %s='", name);
    p = strstr(text, key);
    if (!p)
        return NULL;
    p += strlen(key);
    q = strchr(p, '\'');
    return q ? strndup(p, (size_t)(q - p)) : NULL;
}

/* Every deploy/... path the log names exists in the source tree (found
 * from the stack script, ROOT/scripts/stack); at least one is named. */
static void assert_deploy_paths_exist(const char *log)
{
    char *text = hx_file_read(log), *root = strdup(stack_script), *p;
    int named = 0;
    assert_non_null(text);
    assert_non_null(root);
    assert_non_null(p = strrchr(root, '/'));
    *p = '\0';
    assert_non_null(p = strrchr(root, '/'));
    *p = '\0';
    for (p = text; (p = strstr(p, "deploy/")) != NULL; p++) {
        size_t n = strspn(p, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._/-");
        char *path;
        while (n > 0 && (p[n - 1] == '.' || p[n - 1] == '/'))
            n--; /* the end of a sentence */
        path = hx_strdupf("%s/%.*s", root, (int)n, p);
        if (access(path, R_OK) != 0)
            fprintf(stderr, "test_component: the log names %.*s, which does not exist\n", (int)n,
                    p);
        named++;
        assert_int_equal(access(path, R_OK), 0);
        free(path);
    }
    free(text);
    free(root);
    assert_true(named > 0);
}

/* A server that does not grant the pubsub iq permission: a clear error in
 * the log naming it and the snippet under deploy/, registrations still
 * stored, no crash. */
static void test_missing_pubsub_permission(void **state)
{
    t_t *t = *state;
    char *dir = keep(t, hx_strdupf("%s/stack2", t->dir)),
         *out = keep(t, hx_strdupf("%s/up.env", t->dir));
    const char *up[] = {stack_script, "up", "--no-pubsub-privilege", dir, NULL};
    char *text, *port;
    FILE *f;
    long n;
    hx_proc_t *c;
    const char *u, *wj;
    xclient_t *a, *w;
    char *s = shares_xml("np", 0, 2, "np");

    trace("second stack up");
    assert_int_equal(hx_run(up, out), 0);
    trace("second stack is up");
    f = fopen(out, "r");
    assert_non_null(f);
    text = calloc(1, 8192);
    assert_non_null(text);
    n = (long)fread(text, 1, 8191, f);
    fclose(f);
    assert_true(n > 0);
    t->stack2.dir = strdup(dir);
    t->stack2.db_url = env_value(text, "BITWEEN_DATABASE_URL");
    t->stack2.xmpp_port = env_value(text, "BITWEEN_XMPP_PORT");
    t->stack2.secret = env_value(text, "BITWEEN_COMPONENT_SECRET");
    t->stack2.domain = env_value(text, "BITWEEN_STACK_DOMAIN");
    t->stack2.component_jid = env_value(text, "BITWEEN_COMPONENT_JID");
    port = env_value(text, "BITWEEN_STACK_C2S_PORT");
    free(text);
    assert_non_null(t->stack2.db_url);
    assert_non_null(t->stack2.xmpp_port);
    assert_non_null(t->stack2.secret);
    assert_non_null(t->stack2.domain);
    assert_non_null(t->stack2.component_jid);
    assert_non_null(port);
    t->stack2.c2s_port = (unsigned short)atoi(port);
    free(port);
    t->stack = &t->stack2;
    PQfinish(t->db);
    t->db = hx_db_connect(t->stack2.db_url);
    assert_non_null(t->db);

    u = user(t, "np");
    wj = user(t, "npw");
    subscribe(t, u, wj);
    c = component_spawn(t, NULL);
    assert_true(hx_proc_wait_log(c, "does not grant the XEP-0356 iq permission", 1, WAIT, t->ctx));
    trace("component reported the missing permission");
    assert_true(hx_file_count(hx_proc_log(c), "http://jabber.org/protocol/pubsub") > 0);
    assert_deploy_paths_exist(hx_proc_log(c));
    assert_int_equal(hx_file_count(hx_proc_log(c), READY_LINE), 0);

    w = watcher(t, wj);
    a = agent(t, u, "box");
    expect_result(t, a, "register", 1, s);
    assert_int_equal(hx_db_resources(t->db, u), 1);
    assert_int_equal(hx_db_shares(t->db, u, "box"), 2);
    expect_result(t, a, "add", 2, s);
    /* No publish was even tried (the server would refuse it): a ping
     * through the component orders after the server's reply to one. */
    {
        xmpp_stanza_t *r = raw_request(t, a,
                                       "<iq type='get' to='IQ_TO' id='IQ_ID'>"
                                       "<ping xmlns='urn:xmpp:ping'/></iq>");
        assert_non_null(r);
        assert_string_equal(hx_iq_type(r), "result");
        xmpp_stanza_release(r);
    }
    assert_int_equal(hx_file_count(hx_proc_log(c), "publish for"), 0);
    assert_int_equal(xclient_items(w, u), 0);
    free(s);
    assert_true(hx_proc_alive(c));
    component_stop(t, c);
    assert_int_equal(hx_db_resources(t->db, u), 1);
    t->passed = 1;
}

/* ---- main ---------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest basic[] = {
        T(test_disco_and_ping),
        T(test_two_resources_one_item),
        T(test_killed_resource_removed),
        T(test_incremental_and_sequence),
        T(test_restart_keeps_live_registrations),
        T(test_sighup_reload),
    };
    const struct CMUnitTest errors[] = {
        T(test_refused_requests),
        T(test_domain_not_served),
    };
    const struct CMUnitTest crash[] = {
        T(test_sigkill_during_burst),
        T(test_sigterm_during_burst),
    };
    const struct CMUnitTest outage[] = {
        T(test_prosody_restart),
        T(test_postgres_outage),
        T(test_stop_while_servers_away),
        T(test_stop_while_stream_opening),
    };
    const struct CMUnitTest cache[] = {
        T(test_cache_evicts_and_stays_exact),
        T(test_cache_off_stays_exact),
    };
    const struct CMUnitTest publish[] = {
        T(test_publish_wait_error_retried),
        T(test_publish_permanent_error_recorded),
        T(test_publish_timeout_retried),
        T(test_republishes_bounded_agent_first),
    };
    const struct CMUnitTest privilege[] = {
        T(test_missing_pubsub_permission),
    };
    const char *group = argc > 2 ? argv[2] : "all";
    int all = strcmp(group, "all") == 0, rc = 0, known = all;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BITWEEN_COMPONENT_BINARY [GROUP]\n", argv[0]);
        return 2;
    }
    if (fixture_init("test_component", argv[1]) != 0)
        return 2;
    xmpp_initialize();
#define GROUP(name)                                                                                \
    if (all || strcmp(group, #name) == 0) {                                                        \
        known = 1;                                                                                 \
        rc |= cmocka_run_group_tests_name("component." #name, name, NULL, NULL);                   \
    }
    GROUP(basic)
    GROUP(errors)
    GROUP(crash)
    GROUP(outage)
    GROUP(cache)
    GROUP(publish)
    GROUP(privilege)
#undef GROUP
    xmpp_shutdown();
    fixture_done();
    if (!known) {
        fprintf(stderr, "test_component: unknown group %s\n", group);
        return 2;
    }
    return rc ? 1 : 0;
}
