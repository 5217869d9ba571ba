/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of what the agent announces (agent/announce.c), its own
 * addresses (agent/addresses.c) and its model of contacts' shares
 * (agent/contacts.c): names made safe (controls, bidi overrides, invalid
 * UTF-8 replaced by U+FFFD, emoji flags kept, cut at a character with an
 * ellipsis), fitting to quotas newest first, the quotas form read from a
 * disco#info result, register/add/remove payloads; address selection by
 * class and settings; contacts gated by the roster, bounded, deduplicated,
 * indexed by hash, dropped when they leave the roster or retract.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "addresses.h"
#include "announce.h"
#include "contacts.h"
#include "../support/xml_equal.h"

static xmpp_ctx_t *ctx;

static int setup(void **state)
{
    (void)state;
    ctx = xmpp_ctx_new(NULL, NULL);
    return ctx ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    xmpp_ctx_free(ctx);
    return 0;
}

static void expect_name(const char *in, size_t max, const char *want)
{
    char *out = announce_name(in, max);
    assert_non_null(out);
    if (strcmp(out, want) != 0)
        fail_msg("announce_name(\"%s\", %zu) = \"%s\", want \"%s\"", in, max, out, want);
    free(out);
}

static void announce__name__made_safe(void **state)
{
    (void)state;
    expect_name("holiday.mkv", 0, "holiday.mkv");
    expect_name("photo\xE2\x80\xAEgpj.exe", 0, "photo\xEF\xBF\xBDgpj.exe"); /* U+202E */
    expect_name("a\tb\nc\rd", 0,
                "a\xEF\xBF\xBD"
                "b\xEF\xBF\xBD"
                "c\xEF\xBF\xBD"
                "d");
    expect_name("x\x7Fy", 0, "x\xEF\xBF\xBDy"); /* DEL */
    expect_name("bad\xFF\xFEutf8", 0, "bad\xEF\xBF\xBD\xEF\xBF\xBDutf8");
    expect_name("zero\xE2\x80\x8Bwidth", 0, "zero\xEF\xBF\xBDwidth"); /* U+200B */
    expect_name("ca\xC2\x85t", 0, "ca\xEF\xBF\xBDt");                 /* C1 NEL */
    expect_name("", 0, "\xEF\xBF\xBD");
    /* kept: right-to-left text, ZWJ emoji, a flag made of tag characters */
    expect_name("\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D", 0, "\xD7\xA9\xD7\x9C\xD7\x95\xD7\x9D");
    expect_name("\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9", 0,
                "\xF0\x9F\x91\xA8\xE2\x80\x8D\xF0\x9F\x91\xA9");
    expect_name("\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xB3\xF3\xA0\x81\xA3"
                "\xF3\xA0\x81\xB4\xF3\xA0\x81\xBF",
                0,
                "\xF0\x9F\x8F\xB4\xF3\xA0\x81\xA7\xF3\xA0\x81\xA2\xF3\xA0\x81\xB3\xF3\xA0\x81\xA3"
                "\xF3\xA0\x81\xB4\xF3\xA0\x81\xBF");
    /* a lone tag character is not a flag */
    expect_name("a\xF3\xA0\x81\xA7"
                "b",
                0,
                "a\xEF\xBF\xBD"
                "b");
    /* cut at a character boundary, with an ellipsis, within the limit */
    expect_name("abcdefghij", 8, "abcde\xE2\x80\xA6");
    expect_name("\xC3\xA9\xC3\xA9\xC3\xA9\xC3\xA9", 6, "\xC3\xA9\xE2\x80\xA6");
    expect_name("abc", 3, "abc");
}

static void expect_xml(const xmpp_stanza_t *st, const char *want)
{
    char why[512];
    assert_non_null(st);
    if (!xml_equal_text(ctx, want, st, why, sizeof why))
        fail_msg("%s", why);
}

static announce_share_t sh(const char *hash, const char *name, uint64_t size)
{
    announce_share_t s = {hash, name, size, 0};
    return s;
}

#define H(c) c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c c

static void announce__fit__newest_first_within_quotas(void **state)
{
    announce_share_t cand[4] = {sh(H("d"), "newest", 4), sh(H("c"), "newer", 3),
                                sh(H("b"), "older", 2), sh(H("a"), "oldest", 1)};
    announce_addr_t addrs[3] = {{"203.0.113.7", 6881}, {"2001:db8::7", 6881}, {"198.51.100.1", 1}};
    announce_quota_t q;
    announce_set_t set;
    (void)state;

    announce_quota_default(&q);
    q.max_shares = 2;
    q.max_addresses = 2;
    assert_int_equal(announce_fit(cand, 4, addrs, 3, "laptop", &q, &set), 0);
    assert_int_equal(set.n_shares, 2);
    assert_string_equal(set.shares[0].name, "newest");
    assert_string_equal(set.shares[1].name, "newer");
    assert_int_equal(set.n_over_quota, 2);
    assert_string_equal(set.over[0], H("b"));
    assert_string_equal(set.over[1], H("a"));
    assert_int_equal(set.n_addrs, 2);
    announce_set_clear(&set);

    /* the item's size: long names stop the list where it would not fit */
    announce_quota_default(&q);
    q.max_item_bytes = 1024;
    {
        char names[20][300];
        announce_share_t many[20];
        char hashes[20][41];
        int i;
        for (i = 0; i < 20; i++) {
            memset(names[i], 'n', 250);
            names[i][250] = '\0';
            snprintf(hashes[i], 41, "%040d", i);
            many[i] = sh(hashes[i], names[i], 1);
        }
        assert_int_equal(announce_fit(many, 20, NULL, 0, "laptop", &q, &set), 0);
        assert_true(set.n_shares >= 1 && set.n_shares < 20);
        assert_int_equal(set.n_shares + set.n_over_quota, 20);
        announce_set_clear(&set);
    }
}

static void announce__payloads(void **state)
{
    announce_share_t c1[2] = {sh(H("a"), "a'b", 10), sh(H("b"), "b", 20)};
    announce_share_t c2[2] = {sh(H("b"), "b renamed", 20), sh(H("c"), "c", 30)};
    announce_addr_t addr = {"192.0.2.1", 6881};
    announce_quota_t q;
    announce_set_t before, now;
    xmpp_stanza_t *st;
    int oom;
    (void)state;

    announce_quota_default(&q);
    assert_int_equal(announce_fit(c1, 2, &addr, 1, "laptop", &q, &before), 0);
    assert_int_equal(announce_fit(c2, 2, &addr, 1, "laptop", &q, &now), 0);
    st = announce_build_register(ctx, &before, 42);
    expect_xml(st,
               "<register xmlns=\"urn:bitween:agent:1\" seq=\"42\">"
               "<share_item hash=\"" H(
                   "a") "\" name=\"a'b\" size=\"10\"/>"
                        "<share_item hash=\"" H(
                            "b") "\" name=\"b\" size=\"20\"/>"
                                 "<ip_address address=\"192.0.2.1\" port=\"6881\"/></register>");
    xmpp_stanza_release(st);
    /* removed: a; added or changed: b (renamed) and c */
    st = announce_build_remove(ctx, &before, &now, 43, &oom);
    expect_xml(st, "<remove xmlns=\"urn:bitween:agent:1\" seq=\"43\">"
                   "<share_item hash=\"" H("a") "\"/></remove>");
    xmpp_stanza_release(st);
    st = announce_build_add(ctx, &before, &now, 44, &oom);
    expect_xml(st, "<add xmlns=\"urn:bitween:agent:1\" seq=\"44\">"
                   "<share_item hash=\"" H("b") "\" name=\"b renamed\" size=\"20\"/>"
                                                "<share_item hash=\"" H(
                                                    "c") "\" name=\"c\" size=\"30\"/></add>");
    xmpp_stanza_release(st);
    /* nothing to do between equal sets */
    assert_null(announce_build_add(ctx, &now, &now, 45, &oom));
    assert_false(oom);
    assert_null(announce_build_remove(ctx, &now, &now, 45, &oom));
    assert_true(announce_same_addresses(&before, &now));
    announce_set_clear(&before);
    announce_set_clear(&now);
}

static void announce__quota__from_disco_form(void **state)
{
    static const char xml[] =
        "<query xmlns='http://jabber.org/protocol/disco#info'>"
        "<identity category='component' type='generic' name='bitween'/>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:example:other</value></field>"
        "<field var='max_item_bytes'><value>5</value></field></x>"
        "<x xmlns='jabber:x:data' type='result'>"
        "<field var='FORM_TYPE' type='hidden'><value>urn:bitween:agent:1#quotas</value></field>"
        "<field var='max_shares_per_resource'><value>321</value></field>"
        "<field var='max_addresses_per_resource'><value>-4</value></field>"
        "<field var='max_name_bytes'><value>12x</value></field>"
        "<field var='max_item_bytes'><value>40000</value></field>"
        "<field var='max_shares_per_resource'><value/></field>"
        "<field var='max_name_bytes'/></x></query>";
    xmpp_stanza_t *q = xmpp_stanza_new_from_string(ctx, xml);
    announce_quota_t quota;
    (void)state;

    assert_non_null(q);
    announce_quota_default(&quota);
    assert_int_equal(announce_quota_parse(q, &quota), 2);
    assert_int_equal(quota.max_shares, 321);
    assert_int_equal(quota.max_item_bytes, 40000); /* not 5: another form's */
    assert_int_equal(quota.max_addresses, 8);      /* malformed: the default stays */
    assert_int_equal(quota.max_name_bytes, 255);
    xmpp_stanza_release(q);
}

static void addresses__collect__by_class_and_settings(void **state)
{
    static const char *const ifs[] = {"127.0.0.1", "192.168.1.5", "203.0.113.9", "::1",
                                      "fe80::1",   "2001:db8::9", "fd00::5",     "10.0.0.2"};
    addresses_t a;
    announce_addr_t out[16];
    size_t n;
    (void)state;

    memset(&a, 0, sizeof a);
    assert_int_equal(addresses_listen(&a, "0.0.0.0", 6881), 1);
    assert_int_equal(addresses_listen(&a, "::", 6882), 1);
    assert_int_equal(addresses_listen(&a, "0.0.0.0", 6881), 0); /* known */
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    /* public only, each with its socket's port */
    assert_int_equal(n, 2);
    assert_string_equal(out[0].address, "203.0.113.9");
    assert_int_equal(out[0].port, 6881);
    assert_string_equal(out[1].address, "2001:db8::9");
    assert_int_equal(out[1].port, 6882);

    a.announce_private = 1;
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    assert_int_equal(n, 5); /* + 192.168.1.5, 10.0.0.2, fd00::5; never fe80:: */
    a.allow_loopback = 1;
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    assert_int_equal(n, 7);

    /* a socket on one address announces that address only */
    memset(&a, 0, sizeof a);
    a.allow_loopback = 1;
    addresses_listen(&a, "127.0.0.1", 4000);
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    assert_int_equal(n, 1);
    assert_string_equal(out[0].address, "127.0.0.1");
    /* external addresses take the first port unless they have one */
    assert_int_equal(addresses_external(&a, "198.51.100.4", 0, ADDRESS_CONFIGURED), 1);
    assert_int_equal(addresses_external(&a, "224.0.0.1", 0, ADDRESS_FROM_SERVER), 1);
    assert_int_equal(addresses_external(&a, "not an address", 0, ADDRESS_FROM_SERVER), 0);
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    assert_int_equal(n, 2); /* never multicast */
    assert_string_equal(out[1].address, "198.51.100.4");
    assert_int_equal(out[1].port, 4000);
    /* a new report replaces the last; the configured one stays */
    assert_int_equal(addresses_external(&a, "203.0.113.50", 0, ADDRESS_FROM_SERVER), 1);
    assert_int_equal(addresses_external(&a, "203.0.113.51", 0, ADDRESS_FROM_SERVER), 1);
    assert_int_equal(addresses_external(&a, "203.0.113.60", 7000, ADDRESS_FROM_ROUTER), 1);
    assert_int_equal(addresses_external(&a, "203.0.113.61", 7000, ADDRESS_FROM_ROUTER), 1);
    n = addresses_collect_from(&a, ifs, 8, out, 16);
    assert_int_equal(n, 4);
    assert_string_equal(out[1].address, "198.51.100.4");
    assert_string_equal(out[2].address, "203.0.113.51");
    assert_string_equal(out[3].address, "203.0.113.61");
    assert_int_equal(out[3].port, 7000);
}

/* ---- contacts ---------------------------------------------------------------- */

static xmpp_stanza_t *item(const char *resources)
{
    char xml[4096];
    xmpp_stanza_t *st;
    snprintf(xml, sizeof xml,
             "<user_shares xmlns='https://xmpp.kwoh.de/protocol/shares'>%s</user_shares>",
             resources);
    st = xmpp_stanza_new_from_string(ctx, xml);
    assert_non_null(st);
    return st;
}

#define RES(name, hash)                                                                            \
    "<resource resource='" name "'><share_item hash='" hash "' name='f' size='1'/>"                \
    "<ip_address address='192.0.2.1' port='6881'/></resource>"

static void contacts__update__gated_bounded_indexed(void **state)
{
    contacts_limits_t lim = {2, 2, 3, 4096, 0};
    contacts_t *c = contacts_new(&lim);
    xmpp_stanza_t *one = item(RES("laptop", H("a"))),
                  *two = item(RES("laptop", H("a")) RES("phone", H("b")));
    xmpp_stanza_t *three_res = item(RES("a", H("a")) RES("b", H("b")) RES("c", H("c")));
    xmpp_stanza_t *bad =
        item("<resource resource='x'><share_item hash='xyz' name='f' size='1'/></resource>");
    xmpp_stanza_t *empty = item("");
    contacts_source_t src[4];
    shares_error_t err;
    const char *bare;
    const shares_item_t *it;
    (void)state;

    assert_non_null(c);
    /* not a contact: refused */
    assert_int_equal(contacts_update(c, "eve@x", one, &err), CONTACTS_EFORBID);
    assert_int_equal(contacts_roster_set(c, "bob@x", 1), 0);
    assert_int_equal(contacts_update(c, "bob@x", one, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_update(c, "bob@x", one, &err), CONTACTS_SAME); /* twice */
    assert_int_equal(contacts_count(c), 1);
    assert_int_equal(contacts_sources(c, H("a"), src, 4), 1);
    assert_string_equal(src[0].bare, "bob@x");
    /* a second device */
    assert_int_equal(contacts_update(c, "bob@x", two, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_sources(c, H("b"), src, 4), 1);
    assert_string_equal(shares_item_resource(src[0].item, src[0].resource), "phone");
    /* over the per-contact bounds, or malformed: the previous item stays */
    assert_int_equal(contacts_update(c, "bob@x", three_res, &err), CONTACTS_EINVAL);
    assert_int_equal(contacts_update(c, "bob@x", bad, &err), CONTACTS_EINVAL);
    assert_non_null(strstr(err.message, "hash"));
    assert_int_equal(contacts_sources(c, H("b"), src, 4), 1);
    /* a second contact; a third is over max_contacts */
    assert_int_equal(contacts_roster_set(c, "amy@x", 1), 0);
    assert_int_equal(contacts_update(c, "amy@x", one, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_sources(c, H("a"), src, 4), 2);
    assert_int_equal(contacts_roster_set(c, "zed@x", 1), -1);
    assert_int_equal(contacts_get(c, 0, &bare, &it), 0);
    assert_string_equal(bare, "amy@x"); /* in the order of JIDs */
    /* an empty item or a retraction: shares nothing */
    assert_int_equal(contacts_update(c, "amy@x", empty, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_sources(c, H("a"), src, 4), 1);
    assert_int_equal(contacts_update(c, "bob@x", NULL, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_sources(c, H("a"), src, 4), 0);
    assert_int_equal(contacts_count(c), 0);
    /* leaving the roster drops the item */
    assert_int_equal(contacts_update(c, "bob@x", two, &err), CONTACTS_CHANGED);
    contacts_roster_begin(c);
    assert_int_equal(contacts_roster_set(c, "amy@x", 1), 0);
    assert_int_equal(contacts_roster_done(c), 1);
    assert_int_equal(contacts_count(c), 0);
    assert_int_equal(contacts_update(c, "bob@x", two, &err), CONTACTS_EFORBID);
    assert_int_equal(contacts_roster_set(c, "amy@x", 0), 0);
    assert_int_equal(contacts_update(c, "amy@x", one, &err), CONTACTS_EFORBID);

    /* all contacts' items together are bounded too */
    contacts_free(c);
    lim.max_total_bytes = 300;
    c = contacts_new(&lim);
    assert_int_equal(contacts_roster_set(c, "bob@x", 1), 0);
    assert_int_equal(contacts_roster_set(c, "amy@x", 1), 0);
    assert_int_equal(contacts_update(c, "bob@x", one, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_update(c, "amy@x", two, &err), CONTACTS_ELIMIT);
    assert_non_null(strstr(err.message, "more than 300 bytes"));
    assert_int_equal(contacts_update(c, "bob@x", NULL, &err), CONTACTS_CHANGED);
    assert_int_equal(contacts_update(c, "amy@x", one, &err), CONTACTS_CHANGED);

    xmpp_stanza_release(one);
    xmpp_stanza_release(two);
    xmpp_stanza_release(three_res);
    xmpp_stanza_release(bad);
    xmpp_stanza_release(empty);
    contacts_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(announce__name__made_safe),
        cmocka_unit_test(announce__fit__newest_first_within_quotas),
        cmocka_unit_test(announce__payloads),
        cmocka_unit_test(announce__quota__from_disco_form),
        cmocka_unit_test(addresses__collect__by_class_and_settings),
        cmocka_unit_test(contacts__update__gated_bounded_indexed),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
