/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/agent_proto.c, the parser of agent requests
 * (urn:bitween:agent:1): each request kind, user and resource taken from
 * `from` only, every error row of docs/protocol.md with its code and a
 * text naming what is wrong, sequence-number boundaries, namespaces,
 * per-resource limits, and a randomized run over hostile input that must
 * never crash and always yield a printable verdict.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "agent_proto.h"

#define H1  "0123456789abcdef0123456789abcdef01234567"
#define H1U "0123456789ABCDEF0123456789ABCDEF01234567"
#define H2  "1111111111111111111111111111111111111111"
#define H64 "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

#define FROM "alice@example.org/laptop"

static const char *const served[] = {"example.org", "Other.Example.NET", NULL};

/* ---- fixtures and helpers -------------------------------------------- */

static int setup(void **state)
{
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);

    if (!ctx)
        return -1;
    *state = ctx;
    return 0;
}

static int teardown(void **state)
{
    xmpp_ctx_free(*state);
    return 0;
}

/* <iq type=TYPE from=FROM to=component id='a1'>PAYLOAD</iq>; NULL type or
 * from leaves the attribute out. */
static char *iq_xml(const char *type, const char *from, const char *payload)
{
    static char buf[65536];
    char t[256] = "", f[512] = "";

    if (type)
        snprintf(t, sizeof t, " type='%s'", type);
    if (from)
        snprintf(f, sizeof f, " from='%s'", from);
    snprintf(buf, sizeof buf, "<iq%s%s to='shares.example.org' id='a1'>%s</iq>", t, f, payload);
    return buf;
}

static int parse_with(xmpp_ctx_t *ctx, const char *xml, const shares_limits_t *lim,
                      agent_request_t *req, agent_error_t *err)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);
    int rc;

    if (!st)
        fail_msg("test XML does not parse: %s", xml);
    rc = agent_request_parse(st, served, lim, req, err);
    xmpp_stanza_release(st);
    return rc;
}

/* Parse a set from FROM that must succeed. */
static void parse_ok(xmpp_ctx_t *ctx, const char *payload, agent_request_t *req)
{
    agent_error_t err = {0};

    if (parse_with(ctx, iq_xml("set", FROM, payload), NULL, req, &err) != 0)
        fail_msg("refused (%d): %s\n%s", err.code, err.text, payload);
    assert_int_equal(err.code, AGENT_ERR_NONE);
}

/* The verdict is `code`, its text is printable and contains `needle`, and
 * the output request is zeroed. */
static void assert_refused(int rc, const agent_request_t *req, const agent_error_t *err,
                           agent_errcode_t code, const char *needle)
{
    if (rc != -1 || err->code != code)
        fail_msg("expected code %d, got rc %d code %d (%s)", code, rc, err->code, err->text);
    assert_true(strlen(err->text) > 0);
    assert_true(strlen(err->text) < sizeof err->text);
    /* valid UTF-8 without control characters */
    assert_int_equal(shares_validate_name(err->text, 0, NULL), SHARES_OK);
    if (needle && !strstr(err->text, needle))
        fail_msg("text \"%s\" lacks \"%s\"", err->text, needle);
    assert_null(req->jid);
    assert_null(req->resource);
    assert_null(req->item);
    assert_null(req->hashes);
    assert_int_equal(req->n_hashes, 0);
    assert_int_equal(req->seq, -1);
}

static void expect_error_lim(xmpp_ctx_t *ctx, const char *type, const char *from,
                             const char *payload, const shares_limits_t *lim, agent_errcode_t code,
                             const char *needle)
{
    agent_request_t req;
    agent_error_t err = {0};
    int rc;

    memset(&req, 0x5a, sizeof req); /* must be zeroed on failure */
    rc = parse_with(ctx, iq_xml(type, from, payload), lim, &req, &err);
    assert_refused(rc, &req, &err, code, needle);
}

static void expect_error(xmpp_ctx_t *ctx, const char *payload, agent_errcode_t code,
                         const char *needle)
{
    expect_error_lim(ctx, "set", FROM, payload, NULL, code, needle);
}

static shares_share_t share_at(const agent_request_t *req, size_t si)
{
    shares_share_t sh;

    assert_int_equal(shares_item_share(req->item, 0, si, &sh), SHARES_OK);
    return sh;
}

/* ---- happy paths -------------------------------------------------------- */

static void agent_proto__register__parses_full_state(void **state)
{
    agent_request_t req;
    shares_address_t a;
    shares_share_t sh;

    parse_ok(*state,
             "<register xmlns='" AGENT_NS "' seq='17'>"
             "<share_item hash='" H1U "' name='holiday.mkv' size='734003200'/>"
             "<share_item hash='" H64 "' name='b' size='0'/>"
             "<ip_address address='203.0.113.7' port='6881'/>"
             "<ip_address address='2001:DB8:0:0::7' port='6881'/>"
             "</register>",
             &req);
    assert_int_equal(req.op, AGENT_OP_REGISTER);
    assert_string_equal(req.jid, "alice@example.org");
    assert_string_equal(req.resource, "laptop");
    assert_int_equal(req.seq, 17);
    assert_null(req.hashes);
    assert_non_null(req.item);
    assert_int_equal(shares_item_resource_count(req.item), 1);
    assert_string_equal(shares_item_resource(req.item, 0), "laptop");
    assert_int_equal(shares_item_share_count(req.item, 0), 2);
    sh = share_at(&req, 0);
    assert_string_equal(sh.hash, H1); /* lowercased */
    assert_string_equal(sh.name, "holiday.mkv");
    assert_int_equal(sh.size, 734003200);
    assert_int_equal(shares_item_address_count(req.item, 0), 2);
    assert_int_equal(shares_item_address(req.item, 0, 1, &a), SHARES_OK);
    assert_string_equal(a.address, "2001:db8::7"); /* canonical */
    assert_int_equal(a.port, 6881);
    agent_request_clear(&req);
}

static void agent_proto__register__empty_is_valid(void **state)
{
    agent_request_t req;

    parse_ok(*state, "<register xmlns='" AGENT_NS "' seq='1'/>", &req);
    assert_int_equal(req.op, AGENT_OP_REGISTER);
    assert_int_equal(shares_item_resource_count(req.item), 1);
    assert_int_equal(shares_item_share_count(req.item, 0), 0);
    assert_int_equal(shares_item_address_count(req.item, 0), 0);
    agent_request_clear(&req);
}

static void agent_proto__add__parses_shares(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<add xmlns='" AGENT_NS "' seq='18'>"
             "<share_item hash='" H2 "' name='new' size='5'/></add>",
             &req);
    assert_int_equal(req.op, AGENT_OP_ADD);
    assert_int_equal(req.seq, 18);
    assert_string_equal(shares_item_resource(req.item, 0), "laptop");
    assert_int_equal(shares_item_share_count(req.item, 0), 1);
    assert_string_equal(share_at(&req, 0).name, "new");
    agent_request_clear(&req);
}

static void agent_proto__remove__hashes_lowercase_in_order(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<remove xmlns='" AGENT_NS "' seq='19'>"
             "<share_item hash='" H2 "'/>"
             "<share_item hash='" H1U "' name='ignored' size='not a number'/>"
             "</remove>",
             &req);
    assert_int_equal(req.op, AGENT_OP_REMOVE);
    assert_int_equal(req.seq, 19);
    assert_null(req.item);
    assert_int_equal(req.n_hashes, 2);
    assert_string_equal(req.hashes[0], H2);
    assert_string_equal(req.hashes[1], H1);
    agent_request_clear(&req);
}

static void agent_proto__unregister__ignores_seq_and_children(void **state)
{
    static const char *const payloads[] = {
        "<unregister xmlns='" AGENT_NS "'/>",
        "<unregister xmlns='" AGENT_NS "' seq='20'/>",
        "<unregister xmlns='" AGENT_NS "' seq='not a number'><anything/></unregister>",
    };
    agent_request_t req;
    size_t i;

    for (i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        parse_ok(*state, payloads[i], &req);
        assert_int_equal(req.op, AGENT_OP_UNREGISTER);
        assert_string_equal(req.jid, "alice@example.org");
        assert_string_equal(req.resource, "laptop");
        assert_int_equal(req.seq, -1);
        assert_null(req.item);
        assert_null(req.hashes);
        agent_request_clear(&req);
    }
}

/* ---- user and resource from `from` only --------------------------------- */

static void agent_proto__parse__resource_from_jid_not_payload(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<register xmlns='" AGENT_NS "' seq='3' resource='desktop' "
             "jid='mallory@example.org/desktop' user='mallory' from='mallory@example.org'>"
             "<share_item hash='" H1 "' name='a' size='1' resource='desktop'/>"
             "</register>",
             &req);
    assert_string_equal(req.jid, "alice@example.org");
    assert_string_equal(req.resource, "laptop");
    assert_string_equal(shares_item_resource(req.item, 0), "laptop");
    agent_request_clear(&req);
}

static void agent_proto__parse__resource_is_everything_after_first_slash(void **state)
{
    agent_request_t req;
    agent_error_t err = {0};

    assert_int_equal(parse_with(*state,
                                iq_xml("set", "alice@example.org/home/pc@work",
                                       "<unregister xmlns='" AGENT_NS "'/>"),
                                NULL, &req, &err),
                     0);
    assert_string_equal(req.jid, "alice@example.org");
    assert_string_equal(req.resource, "home/pc@work");
    agent_request_clear(&req);
}

static void agent_proto__parse__domain_is_case_insensitive(void **state)
{
    static const struct {
        const char *from, *jid;
    } rows[] = {
        {"Alice@EXAMPLE.Org/Laptop", "Alice@example.org"},
        {"bob@other.example.net/x", "bob@other.example.net"},
        {"bob@OTHER.EXAMPLE.NET./x", "bob@other.example.net"}, /* trailing dot */
    };
    agent_request_t req;
    agent_error_t err = {0};
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        if (parse_with(*state, iq_xml("set", rows[i].from, "<unregister xmlns='" AGENT_NS "'/>"),
                       NULL, &req, &err) != 0)
            fail_msg("%s refused: %s", rows[i].from, err.text);
        assert_string_equal(req.jid, rows[i].jid);
        agent_request_clear(&req);
    }
    /* the resource keeps its case */
    assert_int_equal(parse_with(*state,
                                iq_xml("set", rows[0].from, "<unregister xmlns='" AGENT_NS "'/>"),
                                NULL, &req, &err),
                     0);
    assert_string_equal(req.resource, "Laptop");
    agent_request_clear(&req);
}

/* ---- forbidden ------------------------------------------------------------ */

#define UNREG "<unregister xmlns='" AGENT_NS "'/>"

static void agent_proto__parse__forbidden_without_resource(void **state)
{
    expect_error_lim(*state, "set", "alice@example.org", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "\"alice@example.org\" has no resource");
    expect_error_lim(*state, "set", "alice@example.org/", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "has no resource");
}

static void agent_proto__parse__forbidden_without_user(void **state)
{
    expect_error_lim(*state, "set", "example.org/laptop", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "\"example.org/laptop\" has no user part");
    expect_error_lim(*state, "set", "@example.org/laptop", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "has no user part");
    /* an '@' in the resource is not a user part */
    expect_error_lim(*state, "set", "example.org/alice@example.org", UNREG, NULL,
                     AGENT_ERR_FORBIDDEN, "has no user part");
    expect_error_lim(*state, "set", "alice@/laptop", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "not a valid JID");
}

static void agent_proto__parse__forbidden_without_from(void **state)
{
    expect_error_lim(*state, "set", NULL, UNREG, NULL, AGENT_ERR_FORBIDDEN, "'from'");
}

static void agent_proto__parse__forbidden_for_unserved_domain(void **state)
{
    static const char *const none[] = {NULL};
    xmpp_stanza_t *st;
    agent_request_t req;
    agent_error_t err = {0};

    expect_error_lim(*state, "set", "alice@evil.example/laptop", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "domain \"evil.example\" is not served");
    /* a served domain as a suffix or prefix is another domain */
    expect_error_lim(*state, "set", "alice@sub.example.org/laptop", UNREG, NULL,
                     AGENT_ERR_FORBIDDEN, "\"sub.example.org\"");
    expect_error_lim(*state, "set", "alice@example.org.evil/laptop", UNREG, NULL,
                     AGENT_ERR_FORBIDDEN, "\"example.org.evil\"");
    expect_error_lim(*state, "set", "a@b@example.org/laptop", UNREG, NULL, AGENT_ERR_FORBIDDEN,
                     "\"b@example.org\"");
    /* no served domain at all: nobody */
    st = xmpp_stanza_new_from_string(*state, iq_xml("set", FROM, UNREG));
    assert_int_equal(agent_request_parse(st, NULL, NULL, &req, &err), -1);
    assert_refused(-1, &req, &err, AGENT_ERR_FORBIDDEN, "not served");
    assert_int_equal(agent_request_parse(st, none, NULL, &req, &err), -1);
    assert_refused(-1, &req, &err, AGENT_ERR_FORBIDDEN, "not served");
    xmpp_stanza_release(st);
}

/* ---- envelope ------------------------------------------------------------ */

static void agent_proto__parse__bad_request_for_get(void **state)
{
    expect_error_lim(*state, "get", FROM, "<register xmlns='" AGENT_NS "' seq='1'/>", NULL,
                     AGENT_ERR_BAD_REQUEST, "iq type \"get\" is not allowed");
}

static void agent_proto__parse__bad_request_for_other_types(void **state)
{
    expect_error_lim(*state, "result", FROM, UNREG, NULL, AGENT_ERR_BAD_REQUEST, "\"result\"");
    expect_error_lim(*state, "error", FROM, UNREG, NULL, AGENT_ERR_BAD_REQUEST, "\"error\"");
    expect_error_lim(*state, NULL, FROM, UNREG, NULL, AGENT_ERR_BAD_REQUEST, "iq type");
}

static void agent_proto__parse__bad_request_without_child(void **state)
{
    expect_error(*state, "", AGENT_ERR_BAD_REQUEST, "no child element");
    expect_error(*state, "  just text  ", AGENT_ERR_BAD_REQUEST, "no child element");
}

static void agent_proto__parse__bad_request_for_multiple_children(void **state)
{
    expect_error(*state, UNREG "<register xmlns='" AGENT_NS "' seq='1'/>", AGENT_ERR_BAD_REQUEST,
                 "2 child elements");
    expect_error(*state, UNREG "<x xmlns='urn:example:other'/>", AGENT_ERR_BAD_REQUEST,
                 "exactly one");
}

static void agent_proto__parse__service_unavailable_for_unknown_namespace(void **state)
{
    expect_error(*state, "<register xmlns='urn:bitween:agent:2' seq='1'/>",
                 AGENT_ERR_SERVICE_UNAVAILABLE, "\"urn:bitween:agent:2\"");
    expect_error(*state, "<query xmlns='jabber:iq:version'/>", AGENT_ERR_SERVICE_UNAVAILABLE,
                 "element \"query\"");
}

static void agent_proto__parse__bad_request_for_unknown_element(void **state)
{
    expect_error(*state, "<update xmlns='" AGENT_NS "' seq='1'/>", AGENT_ERR_BAD_REQUEST,
                 "unknown request element \"update\"");
}

static void agent_proto__parse__rejects_non_iq(void **state)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(*state, "<message from='" FROM
                                                            "' type='set'>" UNREG "</message>");
    agent_request_t req;
    agent_error_t err = {0};

    assert_int_equal(agent_request_parse(st, served, NULL, &req, &err), -1);
    assert_refused(-1, &req, &err, AGENT_ERR_BAD_REQUEST, "not an iq");
    assert_int_equal(agent_request_parse(NULL, served, NULL, &req, &err), -1);
    assert_refused(-1, &req, &err, AGENT_ERR_BAD_REQUEST, "not an iq");
    /* err may be NULL */
    assert_int_equal(agent_request_parse(st, served, NULL, &req, NULL), -1);
    assert_int_equal(agent_request_parse(st, served, NULL, NULL, &err), -1);
    assert_int_equal(err.code, AGENT_ERR_INTERNAL);
    xmpp_stanza_release(st);
}

/* ---- seq -------------------------------------------------------------- */

static void agent_proto__seq__boundaries(void **state)
{
    static const struct {
        const char *text;
        int64_t value; /* -1: refused */
        const char *needle;
    } rows[] = {
        {"0", 0, NULL},
        {"1", 1, NULL},
        {"9223372036854775807", INT64_MAX, NULL},
        {"01", 1, NULL}, /* leading zeros allowed, as for size */
        {"00000000000000000000000000009223372036854775807", INT64_MAX, NULL},
        {"9223372036854775808", -1, "over the maximum of 9223372036854775807"},
        {"99999999999999999999999", -1, "over the maximum"},
        {"-1", -1, "seq \"-1\" is not a decimal number"},
        {"+1", -1, "not a decimal number"},
        {"1e3", -1, "seq \"1e3\" is not a decimal number"},
        {" 1", -1, "not a decimal number"},
        {"1 ", -1, "not a decimal number"},
        {"0x10", -1, "not a decimal number"},
        {"1.0", -1, "not a decimal number"},
        {"", -1, "seq is empty"},
    };
    char payload[256];
    agent_request_t req;
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(payload, sizeof payload,
                 "<add xmlns='" AGENT_NS "' seq='%s'>"
                 "<share_item hash='" H1 "' name='a' size='1'/></add>",
                 rows[i].text);
        if (rows[i].value >= 0) {
            parse_ok(*state, payload, &req);
            assert_int_equal(req.seq, rows[i].value);
            agent_request_clear(&req);
        } else {
            expect_error(*state, payload, AGENT_ERR_BAD_REQUEST, rows[i].needle);
        }
    }
}

static void agent_proto__seq__required_for_updates(void **state)
{
    expect_error(*state, "<register xmlns='" AGENT_NS "'/>", AGENT_ERR_BAD_REQUEST,
                 "register: missing attribute 'seq'");
    expect_error(*state,
                 "<add xmlns='" AGENT_NS "'><share_item hash='" H1 "' name='a' size='1'/></add>",
                 AGENT_ERR_BAD_REQUEST, "add: missing attribute 'seq'");
    expect_error(*state, "<remove xmlns='" AGENT_NS "'><share_item hash='" H1 "'/></remove>",
                 AGENT_ERR_BAD_REQUEST, "remove: missing attribute 'seq'");
}

/* ---- namespaces of the children ------------------------------------------ */

static void agent_proto__register__accepts_children_in_shares_namespace(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<register xmlns='" AGENT_NS "' seq='2'>"
             "<share_item xmlns='" SHARES_NS "' hash='" H1 "' name='s' size='1'/>"
             "<ip_address xmlns='" SHARES_NS "' address='192.0.2.1' port='1'/>"
             "<share_item hash='" H2 "' name='a' size='2'/>"
             "<s:share_item xmlns:s='" SHARES_NS "' hash='" H64 "' name='p' size='3'/>"
             "</register>",
             &req);
    assert_int_equal(shares_item_share_count(req.item, 0), 3);
    assert_int_equal(shares_item_address_count(req.item, 0), 1);
    agent_request_clear(&req);
    /* a duplicate across the two namespaces is still a duplicate */
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='2'>"
                 "<share_item hash='" H1 "' name='a' size='1'/>"
                 "<share_item xmlns='" SHARES_NS "' hash='" H1 "' name='b' size='1'/>"
                 "</register>",
                 AGENT_ERR_NOT_ACCEPTABLE, "duplicate share_item hash");
}

static void agent_proto__register__ignores_foreign_namespaces(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<register xmlns='" AGENT_NS "' seq='2'>"
             "<share_item xmlns='urn:example:other' hash='bad'/>"
             "<x xmlns='urn:example:other'><share_item hash='bad'/></x>"
             "<share_item hash='" H1 "' name='a' size='1'>ignored text<y xmlns='urn:z'/>"
             "</share_item>"
             "</register>",
             &req);
    assert_int_equal(shares_item_share_count(req.item, 0), 1);
    agent_request_clear(&req);
}

/* ---- structure errors ------------------------------------------------- */

static void agent_proto__register__unknown_child_is_bad_request(void **state)
{
    expect_error(*state, "<register xmlns='" AGENT_NS "' seq='1'><foo/></register>",
                 AGENT_ERR_BAD_REQUEST, "register: unknown element \"foo\"");
    /* the old client's per-resource wrapper is not part of this protocol */
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='1'><resource xmlns='" SHARES_NS
                 "' resource='x'/></register>",
                 AGENT_ERR_BAD_REQUEST, "unknown element \"resource\"");
}

static void agent_proto__register__missing_attribute_is_bad_request(void **state)
{
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='1'>"
                 "<share_item hash='" H1 "' name='a' size='1'/>"
                 "<share_item hash='" H2 "' size='1'/></register>",
                 AGENT_ERR_BAD_REQUEST, "register, share_item #2: missing attribute 'name'");
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='1'><share_item name='a' size='1'/>"
                 "</register>",
                 AGENT_ERR_BAD_REQUEST, "missing attribute 'hash'");
    expect_error(*state,
                 "<add xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "' name='a'/></add>",
                 AGENT_ERR_BAD_REQUEST, "add, share_item #1: missing attribute 'size'");
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='1'><ip_address address='192.0.2.1'/>"
                 "</register>",
                 AGENT_ERR_BAD_REQUEST, "register, ip_address #1: missing attribute 'port'");
    expect_error(*state, "<register xmlns='" AGENT_NS "' seq='1'><ip_address port='1'/></register>",
                 AGENT_ERR_BAD_REQUEST, "missing attribute 'address'");
}

static void agent_proto__add__ip_address_is_bad_request(void **state)
{
    expect_error(*state,
                 "<add xmlns='" AGENT_NS "' seq='1'>"
                 "<share_item hash='" H1 "' name='a' size='1'/>"
                 "<ip_address address='192.0.2.1' port='1'/></add>",
                 AGENT_ERR_BAD_REQUEST, "add: ip_address is not allowed");
}

static void agent_proto__add__empty_is_bad_request(void **state)
{
    expect_error(*state, "<add xmlns='" AGENT_NS "' seq='1'/>", AGENT_ERR_BAD_REQUEST,
                 "add needs at least one share_item");
}

static void agent_proto__remove__empty_is_bad_request(void **state)
{
    expect_error(*state, "<remove xmlns='" AGENT_NS "' seq='1'/>", AGENT_ERR_BAD_REQUEST,
                 "remove needs at least one share_item");
    expect_error(*state, "<remove xmlns='" AGENT_NS "' seq='1'><x xmlns='urn:other'/></remove>",
                 AGENT_ERR_BAD_REQUEST, "at least one share_item");
}

static void agent_proto__remove__ip_address_is_bad_request(void **state)
{
    expect_error(*state,
                 "<remove xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "'/>"
                 "<ip_address address='192.0.2.1' port='1'/></remove>",
                 AGENT_ERR_BAD_REQUEST, "remove: ip_address is not allowed");
    expect_error(*state, "<remove xmlns='" AGENT_NS "' seq='1'><share_item name='a'/></remove>",
                 AGENT_ERR_BAD_REQUEST, "remove, share_item #1: missing attribute 'hash'");
}

/* ---- values: not-acceptable ---------------------------------------------- */

static void agent_proto__register__bad_values_are_not_acceptable(void **state)
{
    static const struct {
        const char *child, *needle;
    } rows[] = {
        {"<share_item hash='0123' name='a' size='1'/>",
         "share_item hash \"0123\" must be 40 or 64 hex digits"},
        {"<share_item hash='" H1 "x' name='a' size='1'/>", "non-hex character"},
        {"<share_item hash='" H1 "' name='' size='1'/>", "share_item name is empty"},
        {"<share_item hash='" H1 "' name='a&#x85;b' size='1'/>", "control character U+0085"},
        {"<share_item hash='" H1 "' name='a' size='-1'/>", "share_item size \"-1\""},
        {"<share_item hash='" H1 "' name='a' size='9223372036854775808'/>", "over the maximum"},
        {"<ip_address address='999.1.1.1' port='1'/>", "\"999.1.1.1\""},
        {"<ip_address address='fe80::1%eth0' port='1'/>", "ip_address"},
        {"<ip_address address='192.0.2.1' port='0'/>", "port"},
        {"<ip_address address='192.0.2.1' port='65536'/>", "\"65536\""},
        {"<share_item hash='" H1 "' name='a' size='1'/><share_item hash='" H1U
         "' name='b' size='2'/>",
         "duplicate share_item hash \"" H1 "\""},
        {"<ip_address address='192.0.2.1' port='1'/><ip_address address='192.0.2.1' port='1'/>",
         "duplicate ip_address 192.0.2.1 port 1"},
    };
    char payload[1024];
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(payload, sizeof payload, "<register xmlns='" AGENT_NS "' seq='1'>%s</register>",
                 rows[i].child);
        expect_error(*state, payload, AGENT_ERR_NOT_ACCEPTABLE, rows[i].needle);
    }
    /* the text starts with the request and locates the child */
    expect_error(*state,
                 "<register xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1
                 "' name='a' size='1'/><share_item hash='zz' name='b' size='1'/></register>",
                 AGENT_ERR_NOT_ACCEPTABLE, "register: resource \"laptop\", share_item #2: ");
}

static void agent_proto__remove__bad_hash_is_not_acceptable(void **state)
{
    expect_error(*state,
                 "<remove xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "'/>"
                 "<share_item hash='xyz'/></remove>",
                 AGENT_ERR_NOT_ACCEPTABLE, "remove, share_item #2: share_item hash \"xyz\"");
}

static void agent_proto__remove__duplicate_hash_is_not_acceptable(void **state)
{
    expect_error(*state,
                 "<remove xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "'/>"
                 "<share_item hash='" H2 "'/><share_item hash='" H1U "'/></remove>",
                 AGENT_ERR_NOT_ACCEPTABLE, "remove: duplicate share_item hash \"" H1 "\"");
}

static void agent_proto__parse__bad_resource_is_not_acceptable(void **state)
{
    expect_error_lim(*state, "set", "alice@example.org/a\xc2\x85z", UNREG, NULL,
                     AGENT_ERR_NOT_ACCEPTABLE, "from: resource resource");
}

/* ---- limits: policy-violation --------------------------------------------- */

static void agent_proto__limits__are_policy_violations(void **state)
{
    shares_limits_t lim;
    char payload[1024];

    shares_limits_default(&lim);
    lim.max_shares = 1;
    expect_error_lim(*state, "set", FROM,
                     "<register xmlns='" AGENT_NS "' seq='1'>"
                     "<share_item hash='" H1 "' name='a' size='1'/>"
                     "<share_item hash='" H2 "' name='b' size='1'/></register>",
                     &lim, AGENT_ERR_POLICY, "too many shares in resource \"laptop\"");
    shares_limits_default(&lim);
    lim.max_addresses = 1;
    expect_error_lim(*state, "set", FROM,
                     "<register xmlns='" AGENT_NS "' seq='1'>"
                     "<ip_address address='192.0.2.1' port='1'/>"
                     "<ip_address address='192.0.2.2' port='1'/></register>",
                     &lim, AGENT_ERR_POLICY, "too many addresses");
    shares_limits_default(&lim);
    lim.max_name_bytes = 4;
    expect_error_lim(*state, "set", FROM,
                     "<add xmlns='" AGENT_NS "' seq='1'>"
                     "<share_item hash='" H1 "' name='12345' size='1'/></add>",
                     &lim, AGENT_ERR_POLICY, "name \"12345\" is 5 bytes, over the limit of 4");
    shares_limits_default(&lim);
    lim.max_resource_bytes = 3;
    expect_error_lim(*state, "set", FROM, UNREG, &lim, AGENT_ERR_POLICY,
                     "resource \"laptop\" is 6 bytes, over the limit of 3");
    shares_limits_default(&lim);
    lim.max_item_bytes = 150;
    snprintf(payload, sizeof payload,
             "<register xmlns='" AGENT_NS "' seq='1'>"
             "<share_item hash='" H1 "' name='a' size='1'/>"
             "<share_item hash='" H2 "' name='b' size='1'/></register>");
    expect_error_lim(*state, "set", FROM, payload, &lim, AGENT_ERR_POLICY, "over the limit of 150");
    /* and within the limits the same requests pass */
    shares_limits_default(&lim);
    lim.max_shares = 2;
    {
        agent_request_t req;
        agent_error_t err = {0};

        assert_int_equal(parse_with(*state, iq_xml("set", FROM, payload), &lim, &req, &err), 0);
        agent_request_clear(&req);
    }
}

static void agent_proto__remove__more_hashes_than_max_shares_is_policy(void **state)
{
    shares_limits_t lim;

    shares_limits_default(&lim);
    lim.max_shares = 1;
    expect_error_lim(*state, "set", FROM,
                     "<remove xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "'/>"
                     "<share_item hash='" H2 "'/></remove>",
                     &lim, AGENT_ERR_POLICY, "remove lists 2 share_item elements; the limit is 1");
}

/* ---- errors the registry reports (rows the parser never produces) --------- */

static void expect_row(agent_errcode_t code, const char *type, const char *condition)
{
    agent_error_t err;

    assert_string_equal(agent_error_type(code), type);
    assert_string_equal(agent_error_condition(code), condition);
    assert_int_equal(agent_error_set(&err, code, "seq %d is older than the stored %d", 3, 4), -1);
    assert_int_equal(err.code, code);
    assert_string_equal(err.text, "seq 3 is older than the stored 4");
}

static void agent_proto__error__conflict_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_CONFLICT, "cancel", "conflict");
}

/* The conflict of a stale seq names the stored seq (text and element);
 * agent_error_set() forgets a stored seq set before. */
static void agent_proto__error__stale_names_stored_seq(void **state)
{
    agent_error_t err;

    (void)state;
    assert_int_equal(agent_error_stale(&err, 17, 18, "laptop"), -1);
    assert_int_equal(err.code, AGENT_ERR_CONFLICT);
    assert_int_equal(err.stored_seq, 18);
    assert_string_equal(err.text, "seq 17 is older than the stored seq 18 of resource \"laptop\"");
    agent_error_stale(&err, 17, -1, "lap\xe2\x80\xaetop");
    assert_int_equal(err.stored_seq, -1);
    assert_string_equal(err.text,
                        "seq 17 is older than the stored seq of resource \"lap\\u202Etop\"");
    agent_error_stale(&err, 1, 2, "r");
    agent_error_set(&err, AGENT_ERR_INTERNAL, "x");
    assert_int_equal(err.stored_seq, -1);
    assert_int_equal(agent_error_stale(NULL, 1, 2, "r"), -1);
}

/* What contacts would be shown is screened after the values, for
 * register and add: names and the resource without invisible formatting
 * characters, addresses a contact can use. */
static void agent_proto__screen__names_addresses_and_resource(void **state)
{
    xmpp_ctx_t *ctx = *state;
    shares_limits_t lim;
    agent_request_t req;

    expect_error(ctx,
                 "<register xmlns='urn:bitween:agent:1' seq='1'>"
                 "<share_item hash='" H1 "' name='ok' size='1'/>"
                 "<share_item hash='" H2 "' name='photo\xe2\x80\xae"
                 "gpj.exe' size='1'/>"
                 "</register>",
                 AGENT_ERR_NOT_ACCEPTABLE,
                 "register: resource \"laptop\", share_item #2: share_item name "
                 "\"photo\\u202Egpj.exe\" contains U+202E RIGHT-TO-LEFT OVERRIDE at byte 5");
    expect_error(ctx,
                 "<add xmlns='urn:bitween:agent:1' seq='1'>"
                 "<share_item hash='" H1 "' name='a\xe2\x80\x8b"
                 "b' size='1'/></add>",
                 AGENT_ERR_NOT_ACCEPTABLE,
                 "add: resource \"laptop\", share_item #1: share_item "
                 "name \"a\\u200Bb\" contains U+200B ZERO WIDTH SPACE");
    expect_error(ctx,
                 "<register xmlns='urn:bitween:agent:1' seq='1'>"
                 "<ip_address address='192.0.2.1' port='1'/>"
                 "<ip_address address='127.0.0.1' port='22'/></register>",
                 AGENT_ERR_NOT_ACCEPTABLE,
                 "register: resource \"laptop\", ip_address #2: ip_address address "
                 "\"127.0.0.1\" is a loopback address");
    expect_error(ctx,
                 "<register xmlns='urn:bitween:agent:1' seq='1'>"
                 "<ip_address address='ff02::1' port='1'/></register>",
                 AGENT_ERR_NOT_ACCEPTABLE,
                 "ip_address #1: ip_address address \"ff02::1\" is a "
                 "multicast address");
    /* values first: an invalid hash in a later child is reported before
     * the screening of an earlier name */
    expect_error(ctx,
                 "<register xmlns='urn:bitween:agent:1' seq='1'>"
                 "<share_item hash='" H1 "' name='a\xe2\x80\xae' size='1'/>"
                 "<share_item hash='xyz' name='b' size='1'/></register>",
                 AGENT_ERR_NOT_ACCEPTABLE, "hash \"xyz\"");
    /* loopback only when allowed */
    shares_limits_default(&lim);
    lim.allow_loopback = 1;
    memset(&req, 0, sizeof req);
    assert_int_equal(parse_with(ctx,
                                iq_xml("set", FROM,
                                       "<register xmlns='urn:bitween:agent:1' seq='1'>"
                                       "<ip_address address='127.0.0.1' port='6881'/>"
                                       "<ip_address address='::1' port='6881'/></register>"),
                                &lim, &req, NULL),
                     0);
    assert_int_equal(shares_item_address_count(req.item, 0), 2);
    agent_request_clear(&req);
    expect_error_lim(ctx, "set", FROM,
                     "<register xmlns='urn:bitween:agent:1' seq='1'>"
                     "<ip_address address='0.0.0.0' port='6881'/></register>",
                     &lim, AGENT_ERR_NOT_ACCEPTABLE, "unspecified address");
    /* the flags of England and a ZWJ sequence are fine */
    parse_ok(ctx,
             "<register xmlns='urn:bitween:agent:1' seq='1'>"
             "<share_item hash='" H1 "' name='\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2"
             "\xf3\xa0\x81\xa5\xf3\xa0\x81\xae\xf3\xa0\x81\xa7\xf3\xa0\x81\xbf.mkv' size='1'/>"
             "<share_item hash='" H2 "' name='\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9' "
             "size='1'/></register>",
             &req);
    agent_request_clear(&req);
}

/* A resource shown to contacts is screened like a name in register and
 * add; remove and unregister, which show nothing, still work for a
 * resource registered before the screening existed. */
static void agent_proto__screen__resource_only_when_shown(void **state)
{
    xmpp_ctx_t *ctx = *state;
    const char *from = "alice@example.org/lap\xe2\x81\xa6top";
    agent_request_t req;
    agent_error_t err = {0};

    expect_error_lim(ctx, "set", from, "<register xmlns='urn:bitween:agent:1' seq='1'/>", NULL,
                     AGENT_ERR_NOT_ACCEPTABLE,
                     "register: resource resource \"lap\\u2066top\" contains U+2066 "
                     "LEFT-TO-RIGHT ISOLATE at byte 3");
    expect_error_lim(ctx, "set", from,
                     "<add xmlns='urn:bitween:agent:1' seq='1'><share_item hash='" H1
                     "' name='a' size='1'/></add>",
                     NULL, AGENT_ERR_NOT_ACCEPTABLE, "U+2066");
    memset(&req, 0, sizeof req);
    assert_int_equal(parse_with(ctx,
                                iq_xml("set", from, "<unregister xmlns='urn:bitween:agent:1'/>"),
                                NULL, &req, &err),
                     0);
    agent_request_clear(&req);
    assert_int_equal(parse_with(ctx,
                                iq_xml("set", from,
                                       "<remove xmlns='urn:bitween:agent:1' seq='2'>"
                                       "<share_item hash='" H1 "'/></remove>"),
                                NULL, &req, &err),
                     0);
    agent_request_clear(&req);
}

static void agent_proto__error__item_not_found_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_NOT_FOUND, "cancel", "item-not-found");
}

static void agent_proto__error__database_unavailable_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_UNAVAILABLE, "wait", "internal-server-error");
}

static void agent_proto__error__internal_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_INTERNAL, "cancel", "internal-server-error");
    assert_int_equal(agent_error_set(NULL, AGENT_ERR_INTERNAL, "x"), -1);
}

static void agent_proto__error__busy_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_BUSY, "wait", "resource-constraint");
}

static void agent_proto__error__not_allowed_row(void **state)
{
    (void)state;
    expect_row(AGENT_ERR_NOT_ALLOWED, "cancel", "not-allowed");
}

static void agent_proto__error__set_truncates_on_utf8_boundary(void **state)
{
    agent_error_t err;
    char big[600];
    size_t i;

    (void)state;
    /* 254 ASCII bytes then "é": the 2-byte character does not fit */
    memset(big, 'a', 254);
    strcpy(big + 254, "\xc3\xa9 and more");
    agent_error_set(&err, AGENT_ERR_POLICY, "%s", big);
    assert_int_equal(strlen(err.text), 254);
    for (i = 0; i < 254; i++)
        assert_int_equal(err.text[i], 'a');
}

static void agent_proto__quote__escapes_and_truncates(void **state)
{
    static const struct {
        const char *in, *out;
    } rows[] = {
        {"plain", "\"plain\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"tab\there", "\"tab\\x09here\""},
        {"caf\xc3\xa9", "\"caf\xc3\xa9\""},
        {"bad\xff\xc3\xa9", "\"bad\\xFF\\xC3\\xA9\""}, /* not UTF-8: every high byte escaped */
        {"", "\"\""},
        {"0123456789012345678901234567890123456789XYZ",
         "\"012345678901234567890123456789012345678\"..."},
    };
    char q[AGENT_QUOTE_MAX];
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
        assert_string_equal(agent_quote(q, rows[i].in), rows[i].out);
    assert_string_equal(agent_quote(q, NULL), "(none)");
    assert_string_equal(agent_op_name(AGENT_OP_REGISTER), "register");
    assert_string_equal(agent_op_name(AGENT_OP_UNREGISTER), "unregister");
    assert_null(agent_op_name((agent_op_t)42));
}

/* ---- hostile text ------------------------------------------------------ */

static void agent_proto__register__keeps_hostile_name_verbatim(void **state)
{
    agent_request_t req;

    parse_ok(*state,
             "<register xmlns='" AGENT_NS "' seq='1'>"
             "<share_item hash='" H1 "' name='&lt;/share_item&gt; &amp; &apos;&quot; "
             "\xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\xac' size='1'/></register>",
             &req);
    assert_string_equal(share_at(&req, 0).name,
                        "</share_item> & '\" \xc3\xa9t\xc3\xa9 \xf0\x9f\x8e\xac");
    agent_request_clear(&req);
}

/* Stanzas built through the API can carry bytes no XML parser would let
 * through; error texts must stay printable anyway. */
static void agent_proto__error__text_printable_for_raw_bytes(void **state)
{
    static const char *const fields[] = {"from", "seq", "name", "ns", "type"};
    xmpp_stanza_t *iq, *p;
    agent_request_t req;
    agent_error_t err = {0};
    size_t i;

    for (i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        iq = xmpp_iq_new(*state, "set", "x1");
        p = xmpp_stanza_new(*state);
        xmpp_stanza_set_name(p, strcmp(fields[i], "name") ? "add" : "\x01\xff<x>");
        xmpp_stanza_set_ns(p, strcmp(fields[i], "ns") ? AGENT_NS : "urn:\x02\xfe");
        xmpp_stanza_set_attribute(p, "seq", strcmp(fields[i], "seq") ? "1" : "1\x7f\x80");
        xmpp_stanza_add_child_ex(iq, p, 0);
        xmpp_stanza_set_from(iq, strcmp(fields[i], "from") ? FROM : "alice@ex\x1b\xc0.org/r");
        if (strcmp(fields[i], "type") == 0)
            xmpp_stanza_set_type(iq, "s\x05\xe9t");
        assert_int_equal(agent_request_parse(iq, served, NULL, &req, &err), -1);
        assert_refused(-1, &req, &err, err.code, NULL);
        xmpp_stanza_release(iq);
    }
}

/* ---- output handling --------------------------------------------------- */

static void agent_proto__request_clear__is_safe_and_idempotent(void **state)
{
    agent_request_t req;

    memset(&req, 0, sizeof req);
    agent_request_clear(&req);
    assert_int_equal(req.seq, -1);
    agent_request_clear(NULL);
    parse_ok(*state, "<remove xmlns='" AGENT_NS "' seq='1'><share_item hash='" H1 "'/></remove>",
             &req);
    agent_request_clear(&req);
    agent_request_clear(&req);
    assert_null(req.hashes);
    assert_null(req.jid);
}

/* ---- randomized hostile input ------------------------------------------ */

static uint32_t rng_next(uint32_t *s)
{
    *s ^= *s << 13;
    *s ^= *s >> 17;
    *s ^= *s << 5;
    return *s;
}

static const char *pick(uint32_t *s, const char *const *list, size_t n)
{
    return list[rng_next(s) % n];
}

#define PICK(s, list) pick(s, list, sizeof list / sizeof list[0])

static int chance(uint32_t *s, unsigned pct)
{
    return rng_next(s) % 100 < pct;
}

/* Random stanzas, mostly valid with a few hostile parts each: the parser
 * must never crash (ASan/UBSan watch), and its verdict is always
 * consistent: a complete request, or a printable error and a zeroed
 * output. */
static void agent_proto__parse__survives_random_input(void **state)
{
    static const char *const froms[] = {"alice@example.org",
                                        "example.org/x",
                                        "@/",
                                        "/",
                                        "@",
                                        "a@b/c",
                                        "alice@EXAMPLE.ORG./r/s",
                                        "a@example.org/\xff",
                                        "",
                                        "a@example.org/r\x01",
                                        NULL};
    static const char *const types[] = {"get", "result", "", NULL, "SET"};
    static const char *const names[] = {"register", "add", "remove", "unregister", "x", "", NULL};
    static const char *const nss[] = {AGENT_NS, SHARES_NS, "", "urn:x", NULL};
    static const char *const children[] = {"resource", "foo", "", NULL};
    static const char *const hashes[] = {H1, H1U, H2, H64,
                                         "3333333333333333333333333333333333333333"};
    static const char *const addrs[] = {"192.0.2.1", "192.0.2.2", "::1", "2001:db8::1"};
    static const char *const values[] = {"0",
                                         "1",
                                         "-1",
                                         "",
                                         "65535",
                                         "65536",
                                         "9223372036854775807",
                                         "9223372036854775808",
                                         "::ffff:1.2.3.4",
                                         "x\xff",
                                         "a\x01",
                                         "\xef\xbf\xbe",
                                         "</x>",
                                         "laptop",
                                         NULL};
    static const char *const attrs[] = {"hash", "name", "size", "address", "port", "seq"};
    shares_limits_t lim;
    agent_request_t req;
    agent_error_t err;
    xmpp_stanza_t *iq, *p, *c;
    const char *v, *n;
    uint32_t seed = 0x2545F491u;
    int i, k, j, m, rc, ok = 0, refused[AGENT_ERR_INTERNAL + 1] = {0};

    shares_limits_default(&lim);
    lim.max_shares = 2;
    lim.max_addresses = 2;
    for (i = 0; i < 5000; i++) {
        iq = xmpp_stanza_new(*state);
        xmpp_stanza_set_name(iq, chance(&seed, 98) ? "iq" : "message");
        v = chance(&seed, 95) ? "set" : PICK(&seed, types);
        if (v)
            xmpp_stanza_set_type(iq, v);
        v = chance(&seed, 95) ? FROM : PICK(&seed, froms);
        if (v)
            xmpp_stanza_set_from(iq, v);
        m = chance(&seed, 95) ? 1 : (int)(rng_next(&seed) % 3);
        for (k = 0; k < m; k++) {
            p = xmpp_stanza_new(*state);
            n = chance(&seed, 95) ? names[rng_next(&seed) % 4] : PICK(&seed, names);
            xmpp_stanza_set_name(p, n ? n : "x");
            v = chance(&seed, 95) ? AGENT_NS : PICK(&seed, nss);
            if (v)
                xmpp_stanza_set_ns(p, v);
            v = chance(&seed, 95) ? "7" : PICK(&seed, values);
            if (v)
                xmpp_stanza_set_attribute(p, "seq", v);
            for (j = (int)(rng_next(&seed) % 5); j > 0; j--) {
                c = xmpp_stanza_new(*state);
                if (chance(&seed, 70)) {
                    xmpp_stanza_set_name(c, "share_item");
                    xmpp_stanza_set_attribute(c, "hash", PICK(&seed, hashes));
                    xmpp_stanza_set_attribute(c, "name", "n");
                    xmpp_stanza_set_attribute(c, "size", "1");
                } else if (chance(&seed, 80)) {
                    xmpp_stanza_set_name(c, "ip_address");
                    xmpp_stanza_set_attribute(c, "address", PICK(&seed, addrs));
                    xmpp_stanza_set_attribute(c, "port", "6881");
                } else {
                    n = PICK(&seed, children);
                    xmpp_stanza_set_name(c, n ? n : "y");
                }
                if (chance(&seed, 5) && (v = PICK(&seed, nss)))
                    xmpp_stanza_set_ns(c, v);
                if (chance(&seed, 8)) {
                    v = PICK(&seed, values);
                    if (v)
                        xmpp_stanza_set_attribute(c, PICK(&seed, attrs), v);
                    else
                        xmpp_stanza_del_attribute(c, PICK(&seed, attrs));
                }
                xmpp_stanza_add_child_ex(p, c, 0);
            }
            xmpp_stanza_add_child_ex(iq, p, 0);
        }
        memset(&err, 0, sizeof err);
        rc = agent_request_parse(iq, served, &lim, &req, &err);
        if (rc == 0) {
            ok++;
            assert_int_equal(err.code, AGENT_ERR_NONE);
            assert_non_null(req.jid);
            assert_non_null(req.resource);
            assert_true((req.item != NULL) ==
                        (req.op == AGENT_OP_REGISTER || req.op == AGENT_OP_ADD));
            assert_true((req.n_hashes > 0) == (req.op == AGENT_OP_REMOVE));
            agent_request_clear(&req);
        } else {
            assert_refused(rc, &req, &err, err.code, NULL);
            assert_true(err.code > AGENT_ERR_NONE && err.code <= AGENT_ERR_INTERNAL);
            refused[err.code]++;
        }
        xmpp_stanza_release(iq);
    }
    /* the mix reaches both sides and the main error classes */
    assert_true(ok > 1000);
    assert_true(refused[AGENT_ERR_BAD_REQUEST] > 50);
    assert_true(refused[AGENT_ERR_NOT_ACCEPTABLE] > 50);
    assert_true(refused[AGENT_ERR_POLICY] > 10);
    assert_true(refused[AGENT_ERR_FORBIDDEN] > 10);
    assert_true(refused[AGENT_ERR_SERVICE_UNAVAILABLE] > 10);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(agent_proto__register__parses_full_state),
        T(agent_proto__register__empty_is_valid),
        T(agent_proto__add__parses_shares),
        T(agent_proto__remove__hashes_lowercase_in_order),
        T(agent_proto__unregister__ignores_seq_and_children),
        T(agent_proto__parse__resource_from_jid_not_payload),
        T(agent_proto__parse__resource_is_everything_after_first_slash),
        T(agent_proto__parse__domain_is_case_insensitive),
        T(agent_proto__parse__forbidden_without_resource),
        T(agent_proto__parse__forbidden_without_user),
        T(agent_proto__parse__forbidden_without_from),
        T(agent_proto__parse__forbidden_for_unserved_domain),
        T(agent_proto__parse__bad_request_for_get),
        T(agent_proto__parse__bad_request_for_other_types),
        T(agent_proto__parse__bad_request_without_child),
        T(agent_proto__parse__bad_request_for_multiple_children),
        T(agent_proto__parse__service_unavailable_for_unknown_namespace),
        T(agent_proto__parse__bad_request_for_unknown_element),
        T(agent_proto__parse__rejects_non_iq),
        T(agent_proto__seq__boundaries),
        T(agent_proto__seq__required_for_updates),
        T(agent_proto__register__accepts_children_in_shares_namespace),
        T(agent_proto__register__ignores_foreign_namespaces),
        T(agent_proto__register__unknown_child_is_bad_request),
        T(agent_proto__register__missing_attribute_is_bad_request),
        T(agent_proto__add__ip_address_is_bad_request),
        T(agent_proto__add__empty_is_bad_request),
        T(agent_proto__remove__empty_is_bad_request),
        T(agent_proto__remove__ip_address_is_bad_request),
        T(agent_proto__register__bad_values_are_not_acceptable),
        T(agent_proto__remove__bad_hash_is_not_acceptable),
        T(agent_proto__remove__duplicate_hash_is_not_acceptable),
        T(agent_proto__parse__bad_resource_is_not_acceptable),
        T(agent_proto__limits__are_policy_violations),
        T(agent_proto__remove__more_hashes_than_max_shares_is_policy),
        T(agent_proto__error__conflict_row),
        T(agent_proto__error__stale_names_stored_seq),
        T(agent_proto__screen__names_addresses_and_resource),
        T(agent_proto__screen__resource_only_when_shown),
        T(agent_proto__error__item_not_found_row),
        T(agent_proto__error__database_unavailable_row),
        T(agent_proto__error__internal_row),
        T(agent_proto__error__busy_row),
        T(agent_proto__error__not_allowed_row),
        T(agent_proto__error__set_truncates_on_utf8_boundary),
        T(agent_proto__quote__escapes_and_truncates),
        T(agent_proto__register__keeps_hostile_name_verbatim),
        T(agent_proto__error__text_printable_for_raw_bytes),
        T(agent_proto__request_clear__is_safe_and_idempotent),
        T(agent_proto__parse__survives_random_input),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
