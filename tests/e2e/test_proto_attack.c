/* SPDX-License-Identifier: MIT */
/*
 * End-to-end attacks on the agent protocol, through the real Prosody and
 * PostgreSQL of tests/with_stack.sh and the shipped bitween-component,
 * each written as what a hostile or unlucky agent does:
 *
 *   size     names full of ' " & < > registered up to max_item_bytes; the
 *            contact's bytes, counted by a TCP proxy between the contact
 *            and Prosody, stay within the cap, and the register that
 *            would cross it is refused and changes nothing;
 *   seq      an agent whose seq fell behind gets conflict with the stored
 *            seq, and recovers as docs/protocol.md says, without
 *            unregistering;
 *   display  names with invisible formatting characters and addresses no
 *            contact can use (each class) are refused with not-acceptable
 *            and store nothing; what real text needs is accepted;
 *            loopback only with allow_loopback_addresses. (A resource
 *            holding such characters cannot be tested here: Prosody 0.12
 *            binds a random resource instead; the unit tests cover it.)
 *
 *   test_proto_attack BIN [GROUP]
 *
 * BIN is the bitween-component binary; GROUP one of the above (default:
 * all). The fixture (fixture.h) reads the stack from the environment.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cmocka.h>
#include <libpq-fe.h>
#include <strophe.h>

#include "fixture.h"
#include "harness.h"
#include "shares.h"
#include "xclient.h"

/* ---- a counting TCP proxy ------------------------------------------------
 *
 * One client connection relayed to 127.0.0.1:upstream in a thread of its
 * own; every byte the server sends the client is kept, so that a test can
 * measure what a contact really receives (libstrophe shows only stanzas it
 * has parsed and serialized again). */

typedef struct tap {
    int lfd, wake[2];
    unsigned short port, upstream;
    pthread_t thread;
    int running;
    pthread_mutex_t mu;
    char *down; /* server -> client */
    size_t down_len, down_cap;
} tap_t;

static tap_t *the_tap; /* stopped by teardown when a test fails */

static int write_all(int fd, const char *p, size_t n)
{
    while (n) {
        ssize_t w = write(fd, p, n);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0)
            return -1;
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

static void tap_keep(tap_t *tp, const char *p, size_t n)
{
    pthread_mutex_lock(&tp->mu);
    if (tp->down_len + n + 1 > tp->down_cap) {
        size_t cap = tp->down_cap ? tp->down_cap : 65536;
        char *d;
        while (tp->down_len + n + 1 > cap)
            cap *= 2;
        d = realloc(tp->down, cap);
        if (!d) {
            pthread_mutex_unlock(&tp->mu);
            abort();
        }
        tp->down = d;
        tp->down_cap = cap;
    }
    memcpy(tp->down + tp->down_len, p, n);
    tp->down_len += n;
    tp->down[tp->down_len] = '\0';
    pthread_mutex_unlock(&tp->mu);
}

static void *tap_run(void *arg)
{
    tap_t *tp = arg;
    struct sockaddr_in sa;
    struct pollfd pf[3];
    char buf[65536];
    int cfd = -1, sfd = -1;

    pf[0].fd = tp->lfd, pf[0].events = POLLIN;
    pf[1].fd = tp->wake[0], pf[1].events = POLLIN;
    if (poll(pf, 2, -1) <= 0 || (pf[1].revents & POLLIN))
        return NULL;
    cfd = accept(tp->lfd, NULL, NULL);
    sfd = socket(AF_INET, SOCK_STREAM, 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons(tp->upstream);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (cfd < 0 || sfd < 0 || connect(sfd, (struct sockaddr *)&sa, sizeof sa) != 0)
        goto out;
    for (;;) {
        ssize_t n;
        pf[0].fd = cfd, pf[0].events = POLLIN, pf[0].revents = 0;
        pf[1].fd = sfd, pf[1].events = POLLIN, pf[1].revents = 0;
        pf[2].fd = tp->wake[0], pf[2].events = POLLIN, pf[2].revents = 0;
        if (poll(pf, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            break;
        }
        if (pf[2].revents)
            break;
        if (pf[0].revents) {
            n = read(cfd, buf, sizeof buf);
            if (n <= 0 || write_all(sfd, buf, (size_t)n) != 0)
                break;
        }
        if (pf[1].revents) {
            n = read(sfd, buf, sizeof buf);
            if (n <= 0)
                break;
            tap_keep(tp, buf, (size_t)n);
            if (write_all(cfd, buf, (size_t)n) != 0)
                break;
        }
    }
out:
    if (cfd >= 0)
        close(cfd);
    if (sfd >= 0)
        close(sfd);
    return NULL;
}

static tap_t *tap_start(unsigned short upstream)
{
    tap_t *tp = calloc(1, sizeof *tp);
    struct sockaddr_in sa;
    socklen_t len = sizeof sa;

    assert_non_null(tp);
    tp->upstream = upstream;
    pthread_mutex_init(&tp->mu, NULL);
    assert_int_equal(pipe(tp->wake), 0);
    tp->lfd = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(tp->lfd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(tp->lfd, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(tp->lfd, 1), 0);
    assert_int_equal(getsockname(tp->lfd, (struct sockaddr *)&sa, &len), 0);
    tp->port = ntohs(sa.sin_port);
    assert_int_equal(pthread_create(&tp->thread, NULL, tap_run, tp), 0);
    tp->running = 1;
    the_tap = tp;
    return tp;
}

static void tap_stop(tap_t *tp)
{
    if (!tp)
        return;
    if (tp->running) {
        if (write(tp->wake[1], "x", 1) != 1)
            abort();
        pthread_join(tp->thread, NULL);
    }
    close(tp->lfd);
    close(tp->wake[0]);
    close(tp->wake[1]);
    pthread_mutex_destroy(&tp->mu);
    free(tp->down);
    free(tp);
    if (the_tap == tp)
        the_tap = NULL;
}

/* What the tapped contact received: the <message/> stanzas that carry a
 * shares item, as bytes on the wire. */
typedef struct received {
    unsigned notifications;
    size_t max_message, max_item; /* bytes of a <message/>, of its <user_shares/> */
    char *last_item;              /* bytes of the last <user_shares/> (malloc'd) */
} received_t;

static void tap_received(tap_t *tp, received_t *out)
{
    const char *p, *end, *us, *us_end;
    char *copy;

    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&tp->mu);
    copy = tp->down ? strdup(tp->down) : strdup("");
    pthread_mutex_unlock(&tp->mu);
    assert_non_null(copy);
    /* Escaping keeps "<" out of attribute values, so these markers only
     * match tags. */
    for (p = strstr(copy, "<message"); p; p = strstr(end, "<message")) {
        end = strstr(p, "</message>");
        if (!end)
            break;
        end += strlen("</message>");
        us = strstr(p, "<user_shares");
        if (!us || us > end)
            continue;
        us_end = strstr(us, "</user_shares>");
        if (us_end && us_end < end) {
            us_end += strlen("</user_shares>");
        } else {
            us_end = strstr(us, "/>");
            assert_non_null(us_end);
            us_end += 2;
        }
        out->notifications++;
        if ((size_t)(end - p) > out->max_message)
            out->max_message = (size_t)(end - p);
        if ((size_t)(us_end - us) > out->max_item)
            out->max_item = (size_t)(us_end - us);
        free(out->last_item);
        out->last_item = strndup(us, (size_t)(us_end - us));
        assert_non_null(out->last_item);
    }
    free(copy);
}

/* Wait until the contact's bytes hold `needle`. */
static void tap_wait_for(t_t *t, tap_t *tp, const char *needle)
{
    long long end = hx_now_ms() + WAIT;
    for (;;) {
        int found;
        pthread_mutex_lock(&tp->mu);
        found = tp->down && strstr(tp->down, needle) != NULL;
        pthread_mutex_unlock(&tp->mu);
        if (found)
            return;
        if (hx_now_ms() >= end) {
            fprintf(stderr, "e2e: the contact never received \"%s\"\n", needle);
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
}

static int proto_teardown(void **state)
{
    tap_stop(the_tap);
    return teardown(state);
}

/* A contact watching PEP items through the tap (see watcher()). */
static xclient_t *tapped_watcher(t_t *t, const char *jid, tap_t *tp)
{
    char *full = hx_strdupf("%s/watch", jid);
    xclient_t *cl = xclient_login(t->ctx, full, PASSWORD, tp->port, WAIT);
    int i;

    free(full);
    assert_non_null(cl);
    for (i = 0; i < MAX_CLIENTS && t->cl[i]; i++)
        ;
    assert_true(i < MAX_CLIENTS);
    t->cl[i] = cl;
    xclient_presence(cl, NULL, 1);
    server_ping(t, cl);
    server_ping(t, cl);
    return cl;
}

/* ===== size ============================================================== */

#define CAP 65536

/* A 244-byte name of mostly apostrophes: 1,384 bytes once a server has
 * escaped it, 484 in the component's own canonical text. */
static void attack_name(char out[256], int i)
{
    size_t o = 0;
    int k;

    for (k = 0; k < 180; k++)
        out[o++] = '\'';
    for (k = 0; k < 20; k++)
        out[o++] = '"';
    for (k = 0; k < 20; k++)
        out[o++] = '&';
    for (k = 0; k < 10; k++)
        out[o++] = '<';
    for (k = 0; k < 10; k++)
        out[o++] = '>';
    snprintf(out + o, 256 - o, "-%03d", i);
}

static char *attack_shares(t_t *t, int from, int to)
{
    hx_buf_t b = {0};
    char name[256], seed[32];
    int i;

    for (i = from; i < to; i++) {
        attack_name(name, i);
        snprintf(seed, sizeof seed, "apos-%d", i);
        hx_share_el(&b, hash_of(t, seed), name, (unsigned long long)i + 1);
    }
    return b.s ? b.s : strdup("");
}

/* Names that grow when servers escape them, registered up to the cap one
 * add at a time: what the contact receives stays within the cap, and the
 * register that would cross it is refused and changes nothing. */
static void test_escaped_names_at_the_cap(void **state)
{
    static const char *const env[] = {"BITWEEN_MAX_ITEM_BYTES=65536", NULL};
    t_t *t = *state;
    const char *u = user(t, "apos"), *wj = user(t, "aposw");
    char cap_text[64], seed[32], *children, *fp;
    xmpp_stanza_t *r;
    received_t rx, rx2;
    shares_item_t *seen = NULL;
    shares_error_t serr;
    shares_size_t size;
    shares_limits_t none;
    hx_proc_t *c;
    xclient_t *a, *w;
    tap_t *tp;
    long long seq = 1;
    int n;

    subscribe(t, u, wj);
    c = component(t, env);
    tp = tap_start(t->stack->c2s_port);
    w = tapped_watcher(t, wj, tp);
    a = agent(t, u, "laptop");
    expect_result(t, a, "register", seq, "");

    snprintf(cap_text, sizeof cap_text, "over the limit of %d", CAP);
    for (n = 0; n < 400; n++) {
        children = attack_shares(t, n, n + 1);
        r = request(t, a, "add", ++seq, children);
        free(children);
        assert_non_null(r);
        if (strcmp(hx_iq_type(r), "result") != 0) {
            expect_error_reply(r, "modify", "policy-violation", cap_text);
            break;
        }
        xmpp_stanza_release(r);
    }
    trace("%d shares accepted", n);
    assert_true(n > 0 && n < 400);
    assert_int_equal(hx_db_shares(t->db, u, "laptop"), n);

    /* the notification of the last accepted share, as bytes on the wire */
    snprintf(seed, sizeof seed, "apos-%d", n - 1);
    tap_wait_for(t, tp, hash_of(t, seed));
    tap_received(tp, &rx);
    fprintf(stderr,
            "e2e: %d shares; the contact received %u notifications, the largest %zu bytes "
            "with a %zu-byte item (cap %d)\n",
            n, rx.notifications, rx.max_message, rx.max_item, CAP);
    assert_true(rx.notifications > 0);
    assert_true(rx.max_item <= CAP);
    /* the bound is exact for Prosody: the item received is as long as the
     * component counted it */
    memset(&none, 0, sizeof none);
    assert_int_equal(shares_item_parse_text(t->ctx, rx.last_item, &none, &seen, &serr), 0);
    shares_item_size(seen, &size);
    assert_int_equal(size.xml, strlen(rx.last_item));
    assert_true(size.canonical < size.xml);
    shares_item_free(seen);
    wait_view_is_db(t, w, u);
    /* Prosody may still be writing the last publish's second copy (bare and
     * full JID): count from a point where the contact's stream is drained */
    server_ping(t, a);
    server_ping(t, w);
    free(rx.last_item);
    tap_received(tp, &rx);

    /* One more share in a full register: refused, nothing changes, nothing
     * is published. */
    fp = fingerprint(t, u);
    children = attack_shares(t, 0, n + 1);
    r = request(t, a, "register", ++seq, children);
    free(children);
    expect_error_reply(r, "modify", "policy-violation", cap_text);
    assert_string_equal(fingerprint(t, u), fp);
    assert_int_equal(hx_db_shares(t->db, u, "laptop"), n);
    /* the same state again is accepted and changes nothing either */
    children = attack_shares(t, 0, n);
    expect_result(t, a, "register", ++seq, children);
    free(children);
    server_ping(t, a);
    server_ping(t, w);
    tap_received(tp, &rx2);
    assert_int_equal(rx2.notifications, rx.notifications);
    assert_int_equal(hx_db_shares(t->db, u, "laptop"), n);
    free(rx.last_item);
    free(rx2.last_item);

    component_stop(t, c);
    t->passed = 1;
}

/* ===== seq =============================================================== */

/* The reply must be the conflict of a stale `seq`, naming `stored` in its
 * text and in <stale-seq/>; returns the stored seq read from the element,
 * as an agent would. Releases `r`. */
static long long expect_stale(xmpp_stanza_t *r, long long seq, long long stored,
                              const char *resource)
{
    xmpp_stanza_t *error, *el;
    char needle[256];
    const char *attr;
    long long got;

    assert_non_null(r);
    error = xmpp_stanza_get_child_by_name(r, "error");
    el = error ? xmpp_stanza_get_child_by_name_and_ns(error, "stale-seq", AGENT_NS) : NULL;
    attr = el ? xmpp_stanza_get_attribute(el, "stored") : NULL;
    got = attr ? strtoll(attr, NULL, 10) : -1;
    snprintf(needle, sizeof needle, "seq %lld is older than the stored seq %lld of resource \"%s\"",
             seq, stored, resource);
    expect_error_reply(r, "cancel", "conflict", needle);
    if (got != stored)
        fprintf(stderr, "e2e: <stale-seq stored='%s'/>, expected %lld\n", attr ? attr : "(none)",
                stored);
    assert_int_equal(got, stored);
    return got;
}

/* An agent reinstalled with a fresh counter: its updates are refused with
 * the stored seq, and it catches up as docs/protocol.md §1.2 says (take
 * max(own, stored + 1), send a full register), without unregistering. */
static void test_stale_agent_recovers(void **state)
{
    t_t *t = *state;
    const char *u = user(t, "stale"), *wj = user(t, "stalew");
    const char *old_must[] = {"old-install.mkv", NULL};
    const char *new_must[] = {"new-install.mkv", NULL}, *new_must_not[] = {"old-install.mkv", NULL};
    hx_buf_t b = {0}, nb = {0};
    hx_proc_t *c;
    xclient_t *a, *w;
    long long own, stored;
    char *fp;

    subscribe(t, u, wj);
    c = component(t, NULL);
    w = watcher(t, wj);
    a = agent(t, u, "laptop");
    hx_share_el(&b, hash_of(t, "old"), "old-install.mkv", 1);
    expect_result(t, a, "register", 1700000000000LL, b.s);
    wait_item(t, w, u, old_must, NULL);

    /* reinstalled: the counter starts again at 5 */
    fp = fingerprint(t, u);
    own = 5;
    hx_share_el(&nb, hash_of(t, "new"), "new-install.mkv", 2);
    stored = expect_stale(request(t, a, "register", own, nb.s), own, 1700000000000LL, "laptop");
    assert_string_equal(fingerprint(t, u), fp);
    own++;
    expect_stale(request(t, a, "add", own, nb.s), own, 1700000000000LL, "laptop");
    own++;
    hx_buf_t h = {0};
    hx_hash_el(&h, hash_of(t, "old"));
    expect_stale(request(t, a, "remove", own, h.s), own, 1700000000000LL, "laptop");
    free(h.s);
    assert_string_equal(fingerprint(t, u), fp);

    /* the documented recovery */
    own = own > stored + 1 ? own : stored + 1;
    expect_result(t, a, "register", own, nb.s);
    wait_item(t, w, u, new_must, new_must_not);
    assert_int_equal(hx_db_seq(t->db, u, "laptop"), stored + 1);
    wait_view_is_db(t, w, u);
    /* and it goes on from there */
    expect_result(t, a, "add", ++own, b.s);
    wait_item(t, w, u, old_must, NULL);
    assert_int_equal(hx_db_resources(t->db, u), 1);
    free(b.s);
    free(nb.s);
    component_stop(t, c);
    t->passed = 1;
}

/* ===== display =========================================================== */

#define BASE_HASH_SEED "base"

/* A register of the baseline share plus `extra`. */
static char *with_base(t_t *t, const char *extra)
{
    hx_buf_t b = {0};
    hx_share_el(&b, hash_of(t, BASE_HASH_SEED), "baseline.mkv", 1);
    hx_addr_el(&b, "192.168.1.10", 6881);
    hx_buf_printf(&b, "%s", extra);
    return b.s;
}

/* Every refused class of name and address, sent by a real agent through
 * Prosody: each is refused with not-acceptable naming the code point or
 * the class, and nothing is stored or published. Then what real text and
 * LANs need is accepted, and loopback only with the option. */
static void test_misleading_names_and_addresses(void **state)
{
    static const struct {
        const char *name, *needle;
    } bad_names[] = {
        {"photo\xe2\x80\xae"
         "gpj.exe",
         "U+202E RIGHT-TO-LEFT OVERRIDE"},
        {"x\xe2\x80\xaa"
         "y",
         "U+202A"},
        {"x\xe2\x80\xab"
         "y",
         "U+202B"},
        {"x\xe2\x80\xac"
         "y",
         "U+202C"},
        {"x\xe2\x80\xad"
         "y",
         "U+202D"},
        {"x\xe2\x81\xa6"
         "y",
         "U+2066 LEFT-TO-RIGHT ISOLATE"},
        {"x\xe2\x81\xa7"
         "y",
         "U+2067"},
        {"x\xe2\x81\xa8"
         "y",
         "U+2068"},
        {"x\xe2\x81\xa9"
         "y",
         "U+2069"},
        {"holi\xe2\x80\x8b"
         "day.mkv",
         "U+200B ZERO WIDTH SPACE"},
        {"x\xe2\x81\xa0"
         "y",
         "U+2060 WORD JOINER"},
        {"x\xe2\x81\xa3"
         "y",
         "U+2063"},
        {"\xef\xbb\xbf"
         "report.pdf",
         "U+FEFF"},
        {"x\xef\xbf\xb9"
         "y\xef\xbf\xba"
         "z\xef\xbf\xbb",
         "U+FFF9"},
        {"x\xe2\x81\xae"
         "1",
         "U+206E NATIONAL DIGIT SHAPES"},
        {"one\xe2\x80\xa8two", "U+2028 LINE SEPARATOR"},
        {"run\xf3\xa0\x81\xa9\xf3\xa0\x81\xa7\xf3\xa0\x81\xae.exe", "U+E0069 a TAG character"},
        {"\xf3\xa0\x80\x81"
         "en",
         "U+E0001 LANGUAGE TAG"},
    };
    static const struct {
        const char *address, *needle;
    } bad_addrs[] = {
        {"0.0.0.0", "unspecified address"},
        {"0.1.2.3", "unspecified address"},
        {"::", "unspecified address"},
        {"224.0.0.1", "multicast address"},
        {"239.255.255.250", "multicast address"},
        {"ff02::1", "multicast address"},
        {"255.255.255.255", "broadcast address"},
        {"240.0.0.1", "reserved range"},
        {"fe80::1", "link-local address"},
        {"127.0.0.1", "loopback address"},
        {"127.1.2.3", "loopback address"},
        {"::1", "loopback address"},
        {"::ffff:127.0.0.1", "loopback address"},
        {"::ffff:224.0.0.251", "multicast address"},
    };
    static const char *const good_names[] = {
        /* man ZWJ woman ZWJ girl */
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 family.jpg",
        /* Persian with ZWNJ */
        "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85.txt",
        /* England flag */
        "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xa5\xf3\xa0\x81\xae\xf3\xa0"
        "\x81\xa7\xf3\xa0\x81\xbf match.mkv",
        /* RLM RLM + Hebrew, as Windows names screenshots */
        "\xe2\x80\x8f\xe2\x80\x8f\xd7\xa6\xd7\x99\xd7\x9c\xd7\x95\xd7\x9d (1).png",
    };
    static const char *const no_loopback[] = {"BITWEEN_ALLOW_LOOPBACK_ADDRESSES=false", NULL};
    static const char *const loopback[] = {"BITWEEN_ALLOW_LOOPBACK_ADDRESSES=true", NULL};
    t_t *t = *state;
    const char *u = user(t, "disp"), *wj = user(t, "dispw");
    const char *tab_must[] = {"name=\"tab a b\"", NULL};
    const char *lo_must[] = {"address=\"127.0.0.1\"", "address=\"::1\"", NULL};
    hx_proc_t *c;
    xclient_t *a, *w;
    long long seq = 1;
    char *children, *fp, seed[32];
    size_t i;

    subscribe(t, u, wj);
    c = component(t, no_loopback);
    w = watcher(t, wj);
    a = agent(t, u, "laptop");
    children = with_base(t, "");
    expect_result(t, a, "register", seq, children);
    free(children);
    wait_view_is_db(t, w, u);
    fp = fingerprint(t, u);

    for (i = 0; i < sizeof bad_names / sizeof bad_names[0]; i++) {
        hx_buf_t b = {0};
        snprintf(seed, sizeof seed, "bad-%zu", i);
        hx_share_el(&b, hash_of(t, seed), bad_names[i].name, 1);
        children = with_base(t, b.s);
        expect_error(t, a, "register", ++seq, children, "modify", "not-acceptable",
                     bad_names[i].needle);
        free(children);
        free(b.s);
        memset(&b, 0, sizeof b);
        /* add is screened too */
        hx_share_el(&b, hash_of(t, seed), bad_names[i].name, 1);
        expect_error(t, a, "add", ++seq, b.s, "modify", "not-acceptable", bad_names[i].needle);
        free(b.s);
        assert_string_equal(fingerprint(t, u), fp);
    }
    for (i = 0; i < sizeof bad_addrs / sizeof bad_addrs[0]; i++) {
        hx_buf_t b = {0};
        hx_addr_el(&b, bad_addrs[i].address, 6881);
        children = with_base(t, b.s);
        expect_error(t, a, "register", ++seq, children, "modify", "not-acceptable",
                     bad_addrs[i].needle);
        free(children);
        free(b.s);
        assert_string_equal(fingerprint(t, u), fp);
    }
    /* nothing refused reached the contact */
    server_ping(t, w);
    assert_non_null(xclient_last_item(w, u));
    assert_null(strstr(xclient_last_item(w, u), "\xe2\x80\xae"));
    wait_view_is_db(t, w, u);

    /* what real text and LANs need */
    {
        hx_buf_t b = {0};
        for (i = 0; i < sizeof good_names / sizeof good_names[0]; i++) {
            snprintf(seed, sizeof seed, "good-%zu", i);
            hx_share_el(&b, hash_of(t, seed), good_names[i], 1);
        }
        /* a tab arrives as a space (attribute-value normalization) */
        hx_buf_printf(&b, "<share_item hash='%s' name='tab a&#9;b' size='1'/>", hash_of(t, "tab"));
        hx_addr_el(&b, "10.0.0.7", 6881);
        hx_addr_el(&b, "fd00::7", 6881);
        hx_addr_el(&b, "169.254.10.20", 6881);
        hx_addr_el(&b, "203.0.113.7", 6881);
        children = with_base(t, b.s);
        expect_result(t, a, "register", ++seq, children);
        free(children);
        free(b.s);
        wait_item(t, w, u, tab_must, NULL);
        wait_view_is_db(t, w, u);
        assert_int_equal(hx_db_shares(t->db, u, "laptop"), 6);
    }
    component_stop(t, c);

    /* with the option, loopback is accepted, and nothing else more */
    c = component(t, loopback);
    {
        hx_buf_t b = {0};
        hx_addr_el(&b, "127.0.0.1", 6881);
        hx_addr_el(&b, "::1", 6881);
        children = with_base(t, b.s);
        expect_result(t, a, "register", ++seq, children);
        free(children);
        free(b.s);
        memset(&b, 0, sizeof b);
        wait_item(t, w, u, lo_must, NULL);
        hx_addr_el(&b, "0.0.0.0", 6881);
        children = with_base(t, b.s);
        expect_error(t, a, "register", ++seq, children, "modify", "not-acceptable",
                     "unspecified address");
        free(children);
        free(b.s);
    }
    component_stop(t, c);
    t->passed = 1;
}

/* ---- main ---------------------------------------------------------------- */

#define T(f) cmocka_unit_test_setup_teardown(f, setup, proto_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest size[] = {
        T(test_escaped_names_at_the_cap),
    };
    const struct CMUnitTest seq[] = {
        T(test_stale_agent_recovers),
    };
    const struct CMUnitTest display[] = {
        T(test_misleading_names_and_addresses),
    };
    const char *group = argc > 2 ? argv[2] : "all";
    int all = strcmp(group, "all") == 0, rc = 0, known = all;

    if (argc < 2) {
        fprintf(stderr, "usage: %s BITWEEN_COMPONENT_BINARY [GROUP]\n", argv[0]);
        return 2;
    }
    if (fixture_init("test_proto_attack", argv[1]) != 0)
        return 2;
    xmpp_initialize();
#define GROUP(name)                                                                                \
    if (all || strcmp(group, #name) == 0) {                                                        \
        known = 1;                                                                                 \
        rc |= cmocka_run_group_tests_name("proto." #name, name, NULL, NULL);                       \
    }
    GROUP(size)
    GROUP(seq)
    GROUP(display)
#undef GROUP
    xmpp_shutdown();
    fixture_done();
    if (!known) {
        fprintf(stderr, "test_proto_attack: unknown group %s\n", group);
        return 2;
    }
    return rc ? 1 : 0;
}
