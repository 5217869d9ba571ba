/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the registration state machine (agent/registration.c)
 * with fake callbacks standing for the XMPP connection and the library:
 * nothing before the quotas are known; a full register first, then remove
 * before add, one request at a time, seq one more per request; a full
 * register when the addresses change or after a reconnection; conflict
 * continues from the stored seq (and gives up after five in a row); wait
 * errors and timeouts retried with growing delays; item-not-found
 * registers again; a quota refusal reads the quotas once, then waits for
 * a change; the component's ping after errors registers again; the quota
 * fitting and what is left out.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "registration.h"

typedef struct fake {
    xmpp_ctx_t *ctx;
    log_t *log;
    announce_share_t shares[8];
    size_t n_shares;
    announce_addr_t addrs[4];
    size_t n_addrs;
    /* what was sent */
    char sent[16][32]; /* "register 12", "add 13", ... */
    size_t n_sent;
    char last_payload[2048];
    uint64_t retry_ms[16];
    size_t n_retry;
    int quota_reads;
    registration_t *r;
} fake_t;

static int newest_first(const void *a, const void *b)
{
    const announce_share_t *x = a, *y = b;
    return x->added_ms < y->added_ms ? 1 : x->added_ms > y->added_ms ? -1 : 0;
}

/* As the agent does: the shares newest first, fitted to the quotas. */
static int f_desired(void *arg, const announce_quota_t *q, announce_set_t *out)
{
    fake_t *f = arg;
    announce_share_t sorted[8];
    memcpy(sorted, f->shares, sizeof sorted);
    qsort(sorted, f->n_shares, sizeof sorted[0], newest_first);
    return announce_fit(sorted, f->n_shares, f->addrs, f->n_addrs, "laptop", q, out);
}

static int f_send(void *arg, xmpp_stanza_t *payload, reg_kind_t kind)
{
    fake_t *f = arg;
    char *text;
    size_t len;
    const char *seq = xmpp_stanza_get_attribute(payload, "seq");
    assert_true(f->n_sent < 16);
    snprintf(f->sent[f->n_sent++], 32, "%s %s",
             kind == REG_REGISTER ? "register"
             : kind == REG_ADD    ? "add"
             : kind == REG_REMOVE ? "remove"
                                  : "unregister",
             seq ? seq : "-");
    assert_int_equal(xmpp_stanza_to_text(payload, &text, &len), 0);
    snprintf(f->last_payload, sizeof f->last_payload, "%s", text);
    xmpp_free(f->ctx, text);
    xmpp_stanza_release(payload);
    return 0;
}

static void f_retry_in(void *arg, uint64_t ms)
{
    fake_t *f = arg;
    f->retry_ms[f->n_retry++] = ms;
}

static void f_read_quotas(void *arg)
{
    ((fake_t *)arg)->quota_reads++;
}

#define HASH(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static int setup(void **state)
{
    fake_t *f = calloc(1, sizeof *f);
    registration_io_t io;
    f->ctx = xmpp_ctx_new(NULL, NULL);
    f->log = log_new(2, LOG_LEVEL_ERROR, 0);
    memset(&io, 0, sizeof io);
    io.arg = f;
    io.desired = f_desired;
    io.send = f_send;
    io.retry_in = f_retry_in;
    io.read_quotas = f_read_quotas;
    io.ctx = f->ctx;
    io.log = f->log;
    io.component = "shares.example.org";
    f->r = registration_new(&io, 1000, 7);
    snprintf(f->addrs[0].address, sizeof f->addrs[0].address, "192.0.2.1");
    f->addrs[0].port = 6881;
    f->n_addrs = 1;
    f->shares[0] = (announce_share_t){HASH("a"), "a.txt", 1, 1};
    f->n_shares = 1;
    *state = f;
    return f->r ? 0 : -1;
}

static int teardown(void **state)
{
    fake_t *f = *state;
    registration_free(f->r);
    log_free(f->log);
    xmpp_ctx_free(f->ctx);
    free(f);
    return 0;
}

static void expect_sent(fake_t *f, size_t n, const char *last)
{
    if (f->n_sent != n || (last && strcmp(f->sent[n - 1], last) != 0))
        fail_msg("sent %zu (last \"%s\"), expected %zu (last \"%s\")", f->n_sent,
                 f->n_sent ? f->sent[f->n_sent - 1] : "", n, last ? last : "");
}

static void ok(fake_t *f)
{
    registration_reply(f->r, NULL, NULL, -1, NULL);
}

/* Online and registered with the first state. */
static void registered(fake_t *f)
{
    registration_online(f->r);
    registration_changed(f->r);
    expect_sent(f, 0, NULL); /* quotas unknown: nothing yet */
    registration_quotas(f->r, NULL);
    expect_sent(f, 1, "register 1001");
    assert_string_equal(registration_state(f->r), "registering");
    ok(f);
    assert_string_equal(registration_state(f->r), "registered");
    assert_int_equal(registration_acked(f->r)->n_shares, 1);
}

static void registration__updates_in_order(void **state)
{
    fake_t *f = *state;
    registered(f);
    /* one share goes, two come: remove first, then add, one at a time */
    f->shares[0] = (announce_share_t){HASH("b"), "b.txt", 2, 2};
    f->shares[1] = (announce_share_t){HASH("c"), "c.txt", 3, 3};
    f->n_shares = 2;
    registration_changed(f->r);
    expect_sent(f, 2, "remove 1002");
    assert_string_equal(registration_state(f->r), "updating");
    registration_changed(f->r); /* busy: nothing more */
    expect_sent(f, 2, NULL);
    ok(f);
    expect_sent(f, 3, "add 1003");
    assert_non_null(strstr(f->last_payload, HASH("b")));
    assert_non_null(strstr(f->last_payload, HASH("c")));
    ok(f);
    expect_sent(f, 3, NULL);
    assert_int_equal(registration_acked(f->r)->n_shares, 2);
    /* nothing changed: nothing sent */
    registration_changed(f->r);
    expect_sent(f, 3, NULL);
    /* an address change: a full register */
    snprintf(f->addrs[0].address, sizeof f->addrs[0].address, "192.0.2.9");
    registration_changed(f->r);
    expect_sent(f, 4, "register 1004");
    ok(f);
    /* a reconnection: the whole state again, once the quotas are known */
    registration_offline(f->r);
    assert_string_equal(registration_state(f->r), "offline");
    registration_online(f->r);
    registration_changed(f->r);
    expect_sent(f, 4, NULL);
    registration_quotas(f->r, NULL);
    expect_sent(f, 5, "register 1005");
}

static void registration__conflict_catches_up(void **state)
{
    fake_t *f = *state;
    int i;
    registered(f);
    f->shares[1] = (announce_share_t){HASH("d"), "d", 4, 4};
    f->n_shares = 2;
    registration_changed(f->r);
    expect_sent(f, 2, "add 1002");
    registration_reply(f->r, "cancel", "conflict", 5000, "seq 1002 is older than 5000");
    expect_sent(f, 3, "register 5001");
    assert_int_equal(registration_seq(f->r), 5001);
    ok(f);
    assert_string_equal(registration_state(f->r), "registered");
    /* no stored seq given: one above our own */
    f->n_shares = 1;
    registration_changed(f->r);
    expect_sent(f, 4, "remove 5002");
    registration_reply(f->r, "cancel", "conflict", -1, NULL);
    expect_sent(f, 5, "register 5003");
    /* a component that keeps refusing: after five in a row, wait */
    for (i = 0; i < 4; i++)
        registration_reply(f->r, "cancel", "conflict", 1, NULL);
    expect_sent(f, 9, NULL);
    registration_reply(f->r, "cancel", "conflict", 1, NULL);
    expect_sent(f, 9, NULL);
    assert_string_equal(registration_state(f->r), "refused");
    assert_non_null(strstr(registration_last_refusal(f->r, NULL), "cancel/conflict"));
}

static void registration__highest_seq_unregisters_first(void **state)
{
    fake_t *f = *state;
    registered(f);
    f->n_shares = 0;
    registration_changed(f->r);
    expect_sent(f, 2, "remove 1002");
    registration_reply(f->r, "cancel", "conflict", INT64_MAX, "older than 9223372036854775807");
    expect_sent(f, 3, "unregister -");
    ok(f);
    expect_sent(f, 4, "register 1003"); /* the resource is gone: our own seq will do */
    ok(f);
    assert_string_equal(registration_state(f->r), "registered");
}

static void registration__wait_is_retried(void **state)
{
    fake_t *f = *state;
    registration_online(f->r);
    registration_quotas(f->r, NULL);
    expect_sent(f, 1, "register 1001");
    registration_reply(f->r, "wait", "remote-server-timeout", -1, "Component unavailable");
    assert_string_equal(registration_state(f->r), "retrying");
    assert_int_equal(f->n_retry, 1);
    assert_true(f->retry_ms[0] >= 2500 && f->retry_ms[0] <= 5000);
    registration_changed(f->r); /* waits for the timer */
    expect_sent(f, 1, NULL);
    registration_retry_due(f->r);
    expect_sent(f, 2, "register 1002");
    registration_reply(f->r, "wait", "timeout", -1, "no answer");
    assert_true(f->retry_ms[1] >= 5000 && f->retry_ms[1] <= 10000); /* grows */
    /* the component pings: it is back; its quotas first, then register */
    assert_int_equal(registration_pinged(f->r), 1);
    assert_int_equal(f->quota_reads, 1);
    expect_sent(f, 2, NULL);
    registration_quotas(f->r, NULL);
    expect_sent(f, 3, "register 1003");
    ok(f);
    assert_int_equal(registration_pinged(f->r), 0); /* all is well: nothing */
    expect_sent(f, 3, NULL);
}

static void registration__refusals(void **state)
{
    fake_t *f = *state;
    registered(f);
    /* the component forgot us: item-not-found on an add registers again */
    f->shares[1] = (announce_share_t){HASH("e"), "e", 5, 5};
    f->n_shares = 2;
    registration_changed(f->r);
    expect_sent(f, 2, "add 1002");
    registration_reply(f->r, "cancel", "item-not-found", -1, "not registered");
    expect_sent(f, 3, "register 1003");
    /* a quota refusal reads the quotas once, then fits again */
    registration_reply(f->r, "modify", "policy-violation", -1, "over the limit");
    assert_int_equal(f->quota_reads, 1);
    expect_sent(f, 3, NULL);
    {
        announce_quota_t q;
        announce_quota_default(&q);
        q.max_shares = 1;
        registration_quotas(f->r, &q);
    }
    expect_sent(f, 4, "register 1004");
    {
        const char(*over)[41] = NULL;
        assert_int_equal(registration_over_quota(f->r, &over), 1);
        assert_string_equal(over[0], HASH("a")); /* the older one */
    }
    /* refused again: no second read, wait for a change */
    registration_reply(f->r, "modify", "policy-violation", -1, "still over");
    assert_int_equal(f->quota_reads, 1);
    assert_string_equal(registration_state(f->r), "refused");
    expect_sent(f, 4, NULL);
    registration_changed(f->r); /* something changed: try again */
    expect_sent(f, 5, "register 1005");
    registration_reply(f->r, "modify", "not-acceptable", -1, "bad name");
    assert_string_equal(registration_state(f->r), "refused");
    /* a ping from the component after a refusal registers again */
    assert_int_equal(registration_pinged(f->r), 1);
    assert_int_equal(f->quota_reads, 2);
    registration_quotas(f->r, NULL);
    expect_sent(f, 6, "register 1006");
    /* a reply with nothing in flight is ignored */
    ok(f);
    ok(f);
    expect_sent(f, 6, NULL);
}

int main(void)
{
#define T(fn) cmocka_unit_test_setup_teardown(fn, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(registration__updates_in_order),
        T(registration__conflict_catches_up),
        T(registration__highest_seq_unregisters_first),
        T(registration__wait_is_retried),
        T(registration__refusals),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
