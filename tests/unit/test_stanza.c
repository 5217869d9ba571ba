/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/stanza.c: every builder's output compared as XML
 * with the expected stanza (structurally, tests/support/xml_equal.c), the
 * rules Prosody's mod_privilege enforces on a privileged IQ, text cleaning,
 * failing allocations, and the parsers of the server's privilege
 * advertisement and privileged-IQ replies.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "../support/xml_equal.h"
#include "stanza.h"

#define H1 "0123456789abcdef0123456789abcdef01234567"

#define REQ_FROM "alice@example.org/laptop"
#define REQ_TO   "shares.example.org"

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

static xmpp_stanza_t *parse(xmpp_ctx_t *ctx, const char *xml)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, xml);

    if (!st)
        fail_msg("test XML does not parse: %s", xml);
    return st;
}

/* Compare `actual` with `expected` XML text, then release `actual`. */
static void assert_xml(xmpp_ctx_t *ctx, xmpp_stanza_t *actual, const char *expected)
{
    char why[1024];
    char *text = NULL;
    size_t len = 0;

    assert_non_null(actual);
    if (xml_equal_text(ctx, expected, actual, why, sizeof why) != 1) {
        xmpp_stanza_to_text(actual, &text, &len);
        fail_msg("%s\nactual:   %s\nexpected: %s", why, text ? text : "?", expected);
    }
    xmpp_stanza_release(actual);
}

/* The agent request most replies answer. */
static xmpp_stanza_t *sample_request(xmpp_ctx_t *ctx)
{
    return parse(ctx, "<iq type='set' id='r1' from='" REQ_FROM "' to='" REQ_TO "'>"
                      "<register xmlns='" AGENT_NS "' seq='5'>"
                      "<share_item hash='" H1 "' name='a' size='1'/></register></iq>");
}

/* ---- the comparator itself -------------------------------------------- */

static void stanza__xml_equal__detects_differences(void **state)
{
    static const char *const other[] = {
        "<a xmlns='n' x='1'><b y='2'>t</b><c/></a>",           /* the reference */
        "<a xmlns='n' x='2'><b y='2'>t</b><c/></a>",           /* attribute value */
        "<a xmlns='n'><b y='2'>t</b><c/></a>",                 /* attribute missing */
        "<a xmlns='n' x='1' z='0'><b y='2'>t</b><c/></a>",     /* extra attribute */
        "<a xmlns='m' x='1'><b y='2'>t</b><c/></a>",           /* namespace */
        "<a xmlns='n' x='1'><b xmlns='m' y='2'>t</b><c/></a>", /* child namespace */
        "<a xmlns='n' x='1'><b y='2'>u</b><c/></a>",           /* text */
        "<a xmlns='n' x='1'><b y='2'/><c/></a>",               /* text missing */
        "<a xmlns='n' x='1'><c/><b y='2'>t</b></a>",           /* order */
        "<a xmlns='n' x='1'><b y='2'>t</b></a>",               /* child missing */
        "<a xmlns='n' x='1'><b y='2'>t</b><c/><c/></a>",       /* extra child */
        "<d xmlns='n' x='1'><b y='2'>t</b><c/></d>",           /* name */
    };
    xmpp_stanza_t *ref = parse(*state, other[0]), *st;
    char why[512];
    size_t i;

    assert_int_equal(xml_equal(ref, ref, why, sizeof why), 1);
    for (i = 1; i < sizeof other / sizeof other[0]; i++) {
        st = parse(*state, other[i]);
        why[0] = '\0';
        if (xml_equal(ref, st, why, sizeof why) != 0)
            fail_msg("not told apart: %s", other[i]);
        assert_true(strlen(why) > 0);
        assert_int_equal(xml_equal(st, ref, NULL, 0), 0);
        xmpp_stanza_release(st);
    }
    /* indentation, inherited namespaces and attribute order do not count */
    st = parse(*state, "<a x='1' xmlns='n'>\n  <b xmlns='n' y='2'>t</b>\n  <c/>\n</a>");
    assert_int_equal(xml_equal(ref, st, why, sizeof why), 1);
    xmpp_stanza_release(st);
    assert_int_equal(xml_equal_text(*state, "<a><b></a>", ref, why, sizeof why), -1);
    xmpp_stanza_release(ref);
}

/* ---- replies ----------------------------------------------------------- */

/* The envelope keeps what a reply needs and drops the payload; replies
 * built from it equal those built from the request. */
static void stanza__iq_envelope__keeps_attributes_drops_payload(void **state)
{
    xmpp_stanza_t *req = sample_request(*state), *env, *bare;
    agent_error_t err;

    env = stanza_copy_iq_envelope(*state, req);
    assert_non_null(env);
    assert_null(xmpp_stanza_get_children(env));
    assert_xml(*state, stanza_build_iq_result(*state, env),
               "<iq type='result' id='r1' to='" REQ_FROM "' from='" REQ_TO "'/>");
    agent_error_set(&err, AGENT_ERR_BUSY, "later");
    {
        xmpp_stanza_t *a = stanza_build_agent_error(*state, env, &err);
        xmpp_stanza_t *b = stanza_build_agent_error(*state, req, &err);
        char why[256];
        assert_int_equal(xml_equal(b, a, why, sizeof why), 1);
        xmpp_stanza_release(a);
        xmpp_stanza_release(b);
    }
    assert_xml(*state, env, "<iq type='set' id='r1' from='" REQ_FROM "' to='" REQ_TO "'/>");
    bare = parse(*state, "<iq><x xmlns='y'/></iq>");
    assert_xml(*state, stanza_copy_iq_envelope(*state, bare), "<iq/>");
    assert_null(stanza_copy_iq_envelope(*state, NULL));
    assert_null(stanza_copy_iq_envelope(NULL, bare));
    xmpp_stanza_release(bare);
    xmpp_stanza_release(req);
}

static void stanza__iq_result__swaps_from_and_to_keeps_id(void **state)
{
    xmpp_stanza_t *req = sample_request(*state);

    assert_xml(*state, stanza_build_iq_result(*state, req),
               "<iq type='result' id='r1' to='" REQ_FROM "' from='" REQ_TO "'/>");
    xmpp_stanza_release(req);
}

static void stanza__iq_result__leaves_out_missing_attributes(void **state)
{
    xmpp_stanza_t *req = parse(*state, "<iq type='get'><ping xmlns='urn:xmpp:ping'/></iq>");

    assert_xml(*state, stanza_build_iq_result(*state, req), "<iq type='result'/>");
    xmpp_stanza_release(req);
}

static void stanza__iq_error__builds_rfc6120_error_without_payload(void **state)
{
    xmpp_stanza_t *req = sample_request(*state);

    assert_xml(*state,
               stanza_build_iq_error(*state, req, "modify", "bad-request", "seq is missing"),
               "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='modify'>"
               "<bad-request xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"
               "seq is missing</text></error></iq>");
    xmpp_stanza_release(req);
}

static void stanza__iq_error__omits_empty_text(void **state)
{
    static const char *const expected =
        "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
        "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
        "</error></iq>";
    xmpp_stanza_t *req = sample_request(*state);

    assert_xml(*state, stanza_build_iq_error(*state, req, "cancel", "conflict", NULL), expected);
    assert_xml(*state, stanza_build_iq_error(*state, req, "cancel", "conflict", ""), expected);
    /* only control characters: nothing left to say */
    assert_xml(*state, stanza_build_iq_error(*state, req, "cancel", "conflict", "\x01\x1f"),
               expected);
    xmpp_stanza_release(req);
}

static void stanza__iq_error__cleans_text_for_the_wire(void **state)
{
    xmpp_stanza_t *req = sample_request(*state), *st, *back;
    char *text = NULL;
    size_t len = 0;

    st = stanza_build_iq_error(*state, req, "modify", "not-acceptable",
                               "a\x01"
                               "b\xff"
                               "c <&> \xc3\xa9\x7f\xed\xa0\x80!");
    assert_non_null(st);
    /* serialized and parsed back: well-formed, escaped, cleaned */
    assert_int_equal(xmpp_stanza_to_text(st, &text, &len), XMPP_EOK);
    back = parse(*state, text);
    assert_xml(*state, back,
               "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='modify'>"
               "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"
               "ab?c &lt;&amp;&gt; \xc3\xa9?"
               "?"
               "?!</text></error></iq>");
    xmpp_free(*state, text);
    xmpp_stanza_release(st);
    xmpp_stanza_release(req);
}

static void stanza__agent_error__maps_every_code(void **state)
{
    static const struct {
        agent_errcode_t code;
        const char *type, *condition;
    } rows[] = {
        {AGENT_ERR_BAD_REQUEST, "modify", "bad-request"},
        {AGENT_ERR_NOT_ACCEPTABLE, "modify", "not-acceptable"},
        {AGENT_ERR_POLICY, "modify", "policy-violation"},
        {AGENT_ERR_FORBIDDEN, "auth", "forbidden"},
        {AGENT_ERR_CONFLICT, "cancel", "conflict"},
        {AGENT_ERR_NOT_FOUND, "cancel", "item-not-found"},
        {AGENT_ERR_UNAVAILABLE, "wait", "internal-server-error"},
        {AGENT_ERR_SERVICE_UNAVAILABLE, "cancel", "service-unavailable"},
        {AGENT_ERR_INTERNAL, "cancel", "internal-server-error"},
        {AGENT_ERR_BUSY, "wait", "resource-constraint"},
        {AGENT_ERR_NOT_ALLOWED, "cancel", "not-allowed"},
    };
    xmpp_stanza_t *req = sample_request(*state);
    agent_error_t err;
    char expected[1024];
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_string_equal(agent_error_type(rows[i].code), rows[i].type);
        assert_string_equal(agent_error_condition(rows[i].code), rows[i].condition);
        agent_error_set(&err, rows[i].code, "row %zu", i);
        snprintf(expected, sizeof expected,
                 "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
                 "<error type='%s'><%s xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                 "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>row %zu"
                 "</text></error></iq>",
                 rows[i].type, rows[i].condition, i);
        assert_xml(*state, stanza_build_agent_error(*state, req, &err), expected);
    }
    assert_null(stanza_build_agent_error(*state, req, NULL));
    /* out-of-range codes still give a valid error */
    assert_string_equal(agent_error_type(AGENT_ERR_NONE), "cancel");
    assert_string_equal(agent_error_condition((agent_errcode_t)99), "undefined-condition");
    xmpp_stanza_release(req);
}

/* A stale seq: the conflict names the stored seq in its text and, for
 * programs, in an application-specific condition after the text. */
static void stanza__agent_error__conflict_carries_stored_seq(void **state)
{
    xmpp_stanza_t *req = sample_request(*state), *st;
    agent_error_t err;

    assert_int_equal(agent_error_stale(&err, 17, 18, "lap\"top"), -1);
    assert_int_equal(err.code, AGENT_ERR_CONFLICT);
    assert_int_equal(err.stored_seq, 18);
    assert_string_equal(err.text,
                        "seq 17 is older than the stored seq 18 of resource \"lap\\\"top\"");
    assert_xml(*state, stanza_build_agent_error(*state, req, &err),
               "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>seq 17 is older "
               "than the stored seq 18 of resource &quot;lap\\&quot;top&quot;</text>"
               "<stale-seq xmlns='urn:bitween:agent:1' stored='18'/></error></iq>");
    /* the largest seq */
    agent_error_stale(&err, 0, INT64_MAX, "laptop");
    assert_xml(*state, stanza_build_agent_error(*state, req, &err),
               "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>seq 0 is older "
               "than the stored seq 9223372036854775807 of resource &quot;laptop&quot;</text>"
               "<stale-seq xmlns='urn:bitween:agent:1' stored='9223372036854775807'/>"
               "</error></iq>");
    /* stored seq unknown: the text says so, no element */
    agent_error_stale(&err, 17, -1, "laptop");
    assert_int_equal(err.stored_seq, -1);
    assert_xml(*state, stanza_build_agent_error(*state, req, &err),
               "<iq type='error' id='r1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='cancel'><conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>seq 17 is older "
               "than the stored seq of resource &quot;laptop&quot;</text></error></iq>");
    /* a later verdict on the same struct forgets the stored seq */
    agent_error_stale(&err, 17, 18, "laptop");
    agent_error_set(&err, AGENT_ERR_CONFLICT, "other");
    assert_int_equal(err.stored_seq, -1);
    st = stanza_build_agent_error(*state, req, &err);
    assert_non_null(st);
    assert_null(
        xmpp_stanza_get_child_by_name(xmpp_stanza_get_child_by_name(st, "error"), "stale-seq"));
    xmpp_stanza_release(st);
    xmpp_stanza_release(req);
}

/* ---- disco#info and ping ----------------------------------------------- */

static void stanza__disco_info__lists_identity_and_features(void **state)
{
    xmpp_stanza_t *req = parse(*state, "<iq type='get' id='d1' from='" REQ_FROM "' to='" REQ_TO
                                       "'><query xmlns='http://jabber.org/protocol/disco#info'/>"
                                       "</iq>");

    shares_limits_t lim = {0};

    lim.max_resources = 10;
    lim.max_shares = 1000;
    lim.max_addresses = 16;
    lim.max_name_bytes = 255;
    lim.max_item_bytes = 65536;
    assert_xml(*state, stanza_build_disco_info(*state, req, "bitween <shares> & co", NULL),
               "<iq type='result' id='d1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'>"
               "<identity category='component' type='generic' name='bitween &lt;shares&gt; "
               "&amp; co'/>"
               "<feature var='http://jabber.org/protocol/disco#info'/>"
               "<feature var='urn:xmpp:ping'/>"
               "<feature var='urn:bitween:agent:1'/>"
               "</query></iq>");
    /* with the quotas: a XEP-0128 form after the features */
    assert_xml(*state, stanza_build_disco_info(*state, req, "bitween", &lim),
               "<iq type='result' id='d1' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<query xmlns='http://jabber.org/protocol/disco#info'>"
               "<identity category='component' type='generic' name='bitween'/>"
               "<feature var='http://jabber.org/protocol/disco#info'/>"
               "<feature var='urn:xmpp:ping'/>"
               "<feature var='urn:bitween:agent:1'/>"
               "<x xmlns='jabber:x:data' type='result'>"
               "<field var='FORM_TYPE' type='hidden'><value>urn:bitween:agent:1#quotas</value>"
               "</field>"
               "<field var='max_resources'><value>10</value></field>"
               "<field var='max_shares_per_resource'><value>1000</value></field>"
               "<field var='max_addresses_per_resource'><value>16</value></field>"
               "<field var='max_name_bytes'><value>255</value></field>"
               "<field var='max_item_bytes'><value>65536</value></field>"
               "</x></query></iq>");
    xmpp_stanza_release(req);
}

static void stanza__disco_info__node_gives_item_not_found(void **state)
{
    xmpp_stanza_t *req = parse(*state, "<iq type='get' id='d2' from='" REQ_FROM "' to='" REQ_TO
                                       "'><query xmlns='http://jabber.org/protocol/disco#info' "
                                       "node='x'/></iq>");

    assert_xml(*state, stanza_build_disco_info(*state, req, "bitween", NULL),
               "<iq type='error' id='d2' to='" REQ_FROM "' from='" REQ_TO "'>"
               "<error type='cancel'>"
               "<item-not-found xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
               "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas' xml:lang='en'>"
               "this component has no disco#info nodes</text></error></iq>");
    xmpp_stanza_release(req);
}

static void stanza__ping__builds_xep0199_get(void **state)
{
    assert_xml(*state, stanza_build_ping(*state, REQ_TO, REQ_FROM, "p1"),
               "<iq type='get' from='" REQ_TO "' to='" REQ_FROM "' id='p1'>"
               "<ping xmlns='urn:xmpp:ping'/></iq>");
}

/* ---- privileged publish ------------------------------------------------- */

#define PAYLOAD                                                                                    \
    "<user_shares xmlns='" SHARES_NS "'><resource resource='laptop'>"                              \
    "<share_item hash='" H1 "' name='a &amp; b' size='7'/>"                                        \
    "<ip_address address='192.0.2.1' port='6881'/></resource></user_shares>"

#define PUBLISH_EXPECTED                                                                           \
    "<iq from='" REQ_TO "' to='alice@example.org' type='set' id='out1'>"                           \
    "  <privileged_iq xmlns='urn:xmpp:privilege:2'>"                                               \
    "    <iq xmlns='jabber:client' type='set' from='alice@example.org'"                            \
    "        to='alice@example.org' id='in1'>"                                                     \
    "      <pubsub xmlns='http://jabber.org/protocol/pubsub'>"                                     \
    "        <publish node='https://xmpp.kwoh.de/protocol/shares'>"                                \
    "          <item id='current'>" PAYLOAD "</item>"                                              \
    "        </publish>"                                                                           \
    "        <publish-options>"                                                                    \
    "          <x xmlns='jabber:x:data' type='submit'>"                                            \
    "            <field var='FORM_TYPE' type='hidden'>"                                            \
    "              <value>http://jabber.org/protocol/pubsub#publish-options</value></field>"       \
    "            <field var='pubsub#persist_items'><value>true</value></field>"                    \
    "            <field var='pubsub#access_model'><value>presence</value></field>"                 \
    "          </x>"                                                                               \
    "        </publish-options>"                                                                   \
    "      </pubsub>"                                                                              \
    "    </iq>"                                                                                    \
    "  </privileged_iq>"                                                                           \
    "</iq>"

/* Takes `payload`. */
static xmpp_stanza_t *build_publish(xmpp_ctx_t *ctx, xmpp_stanza_t *payload)
{
    return stanza_build_privileged_publish(ctx, REQ_TO, "alice@example.org", "out1", "in1",
                                           payload);
}

static void stanza__privileged_publish__matches_xep0356_layout(void **state)
{
    assert_xml(*state, build_publish(*state, parse(*state, PAYLOAD)), PUBLISH_EXPECTED);
}

/* A payload built by shares_item_build() (children without xmlns). */
static void stanza__privileged_publish__carries_built_item(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    xmpp_stanza_t *payload;
    size_t ri = 0;

    assert_int_equal(shares_item_add_resource(item, "laptop", &ri, NULL), 0);
    assert_int_equal(shares_item_add_share(item, ri, H1, "a & b", 7, NULL), 0);
    assert_int_equal(shares_item_add_address(item, ri, "192.0.2.1", 6881, NULL), 0);
    payload = shares_item_build(item, *state);
    assert_non_null(payload);
    assert_xml(*state, build_publish(*state, payload), PUBLISH_EXPECTED);
    shares_item_free(item);
}

/* The payload is taken, not copied: it becomes the item's child, and it
 * is released when the build fails (ASan reports a leak otherwise). */
static void stanza__privileged_publish__takes_payload(void **state)
{
    xmpp_stanza_t *payload = parse(*state, PAYLOAD), *st, *item;
    int i;

    st = build_publish(*state, payload);
    assert_non_null(st);
    item = st;
    for (i = 0; i < 5; i++) { /* privileged_iq, iq, pubsub, publish, item */
        item = xmpp_stanza_get_children(item);
        assert_non_null(item);
    }
    assert_string_equal(xmpp_stanza_get_name(item), "item");
    assert_ptr_equal(xmpp_stanza_get_children(item), payload);
    assert_null(xmpp_stanza_get_next(payload));
    xmpp_stanza_release(st);

    assert_null(
        stanza_build_privileged_publish(*state, NULL, "u@d", "o", "i", parse(*state, PAYLOAD)));
    assert_null(
        stanza_build_privileged_publish(NULL, "c", "u@d", "o", "i", parse(*state, PAYLOAD)));
}

/* What Prosody's mod_privilege checks before it sends the wrapped IQ, and
 * that the serialized text is one well-formed stanza. */
static void stanza__privileged_publish__meets_mod_privilege_rules(void **state)
{
    xmpp_stanza_t *payload = parse(*state, PAYLOAD), *st, *priv, *inner, *c, *back;
    char *text = NULL;
    size_t len = 0, n = 0;

    st = build_publish(*state, payload);
    assert_non_null(st);
    assert_int_equal(xmpp_stanza_to_text(st, &text, &len), XMPP_EOK);
    back = parse(*state, text);
    priv = xmpp_stanza_get_child_by_name_and_ns(back, "privileged_iq", "urn:xmpp:privilege:2");
    assert_non_null(priv);
    inner = xmpp_stanza_get_children(priv);
    assert_non_null(inner);
    assert_null(xmpp_stanza_get_next(inner)); /* the only child */
    assert_string_equal(xmpp_stanza_get_ns(inner), "jabber:client");
    assert_string_equal(xmpp_stanza_get_type(inner), xmpp_stanza_get_type(back));
    assert_non_null(xmpp_stanza_get_id(inner));
    assert_string_equal(xmpp_stanza_get_from(inner), xmpp_stanza_get_to(back));
    for (c = xmpp_stanza_get_children(inner); c; c = xmpp_stanza_get_next(c))
        n += xmpp_stanza_is_tag(c) ? 1 : 0;
    assert_int_equal(n, 1); /* exactly one payload child, namespaced */
    assert_string_equal(xmpp_stanza_get_ns(xmpp_stanza_get_children(inner)),
                        "http://jabber.org/protocol/pubsub");
    assert_int_equal(xml_equal(st, back, NULL, 0), 1);
    xmpp_stanza_release(back);
    xmpp_free(*state, text);
    xmpp_stanza_release(st);
}

static void stanza__builders__reject_null_arguments(void **state)
{
    xmpp_stanza_t *req = sample_request(*state);
    xmpp_ctx_t *ctx = *state;

    assert_null(stanza_build_iq_result(NULL, req));
    assert_null(stanza_build_iq_result(ctx, NULL));
    assert_null(stanza_build_iq_error(ctx, req, NULL, "bad-request", "x"));
    assert_null(stanza_build_iq_error(ctx, req, "modify", NULL, "x"));
    assert_null(stanza_build_iq_error(ctx, NULL, "modify", "bad-request", "x"));
    assert_null(stanza_build_disco_info(ctx, req, NULL, NULL));
    assert_null(stanza_build_disco_info(ctx, NULL, "x", NULL));
    assert_null(stanza_build_ping(ctx, NULL, "b", "c"));
    assert_null(stanza_build_ping(ctx, "a", NULL, "c"));
    assert_null(stanza_build_ping(ctx, "a", "b", NULL));
    /* the payload is released in each case (else ASan reports a leak) */
    assert_null(stanza_build_privileged_publish(ctx, NULL, "u@d", "o", "i", parse(ctx, PAYLOAD)));
    assert_null(stanza_build_privileged_publish(ctx, "c", NULL, "o", "i", parse(ctx, PAYLOAD)));
    assert_null(stanza_build_privileged_publish(ctx, "c", "u@d", NULL, "i", parse(ctx, PAYLOAD)));
    assert_null(stanza_build_privileged_publish(ctx, "c", "u@d", "o", NULL, parse(ctx, PAYLOAD)));
    assert_null(stanza_build_privileged_publish(ctx, "c", "u@d", "o", "i", NULL));
    xmpp_stanza_release(req);
}

/* ---- failing allocations ------------------------------------------------ */

struct alloc_ctl {
    long count;   /* allocations so far */
    long fail_at; /* index of the allocation to fail, -1: none */
    long live;    /* blocks not yet freed */
};

static void *ctl_alloc(size_t size, void *ud)
{
    struct alloc_ctl *c = ud;
    void *p;

    if (c->fail_at >= 0 && c->count++ == c->fail_at)
        return NULL;
    p = malloc(size);
    if (p)
        c->live++;
    return p;
}

static void ctl_free(void *p, void *ud)
{
    struct alloc_ctl *c = ud;

    if (p)
        c->live--;
    free(p);
}

static void *ctl_realloc(void *p, size_t size, void *ud)
{
    struct alloc_ctl *c = ud;
    void *q;

    if (c->fail_at >= 0 && c->count++ == c->fail_at)
        return NULL;
    q = realloc(p, size);
    if (q && !p)
        c->live++;
    return q;
}

typedef xmpp_stanza_t *(*build_fn)(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload);

static xmpp_stanza_t *b_result(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    (void)payload;
    return stanza_build_iq_result(ctx, req);
}

static xmpp_stanza_t *b_error(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    (void)payload;
    return stanza_build_iq_error(ctx, req, "modify", "bad-request", "text");
}

static xmpp_stanza_t *b_stale(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    agent_error_t err;

    (void)payload;
    agent_error_stale(&err, 17, 18, "laptop");
    return stanza_build_agent_error(ctx, req, &err);
}

static xmpp_stanza_t *b_disco(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    (void)payload;
    {
        shares_limits_t lim;
        shares_limits_default(&lim);
        return stanza_build_disco_info(ctx, req, "bitween", &lim);
    }
}

static xmpp_stanza_t *b_ping(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    (void)req;
    (void)payload;
    return stanza_build_ping(ctx, "a", "b", "c");
}

static xmpp_stanza_t *b_publish(xmpp_ctx_t *ctx, xmpp_stanza_t *req, xmpp_stanza_t *payload)
{
    (void)req;
    return build_publish(ctx, payload);
}

/* Fail each allocation of each builder in turn: NULL and no leak (the
 * publish's payload included, which it takes), until the builder has all
 * it needs. */
static void stanza__builders__survive_every_failing_allocation(void **state)
{
    static const build_fn builders[] = {b_result, b_error, b_stale, b_disco, b_ping, b_publish};
    struct alloc_ctl ctl = {0, -1, 0};
    xmpp_mem_t mem = {ctl_alloc, ctl_free, ctl_realloc, &ctl};
    xmpp_ctx_t *ctx = xmpp_ctx_new(&mem, NULL);
    xmpp_stanza_t *req, *payload, *st;
    long n, base;
    size_t b;

    (void)state;
    assert_non_null(ctx);
    req = parse(ctx, "<iq type='get' id='d1' from='" REQ_FROM "' to='" REQ_TO "'>"
                     "<query xmlns='http://jabber.org/protocol/disco#info'/></iq>");
    base = ctl.live;
    for (b = 0; b < sizeof builders / sizeof builders[0]; b++) {
        st = NULL;
        for (n = 0; n < 2000; n++) {
            ctl.fail_at = -1;
            payload = builders[b] == b_publish ? parse(ctx, PAYLOAD) : NULL;
            ctl.count = 0;
            ctl.fail_at = n;
            st = builders[b](ctx, req, payload);
            if (st)
                break;
            assert_int_equal(ctl.live, base);
        }
        ctl.fail_at = -1;
        assert_non_null(st);
        assert_true(n > 2);
        xmpp_stanza_release(st);
        assert_int_equal(ctl.live, base);
    }
    xmpp_stanza_release(req);
    xmpp_ctx_free(ctx);
}

/* ---- privileged IQ replies --------------------------------------------- */

#define FWD_OPEN  "<privilege xmlns='urn:xmpp:privilege:2'><forwarded xmlns='urn:xmpp:forward:0'>"
#define FWD_CLOSE "</forwarded></privilege>"

static int verdict(xmpp_ctx_t *ctx, const char *xml, char *buf, size_t len)
{
    xmpp_stanza_t *st = parse(ctx, xml);
    int rc = stanza_parse_privileged_result(st, buf, len);

    xmpp_stanza_release(st);
    return rc;
}

static void stanza__parse_privileged_result__success(void **state)
{
    char buf[256] = "junk";

    assert_int_equal(verdict(*state,
                             "<iq type='result' id='out1' from='alice@example.org' to='c'>" FWD_OPEN
                             "<iq xmlns='jabber:client' type='result' id='in1' "
                             "from='alice@example.org' to='alice@example.org/x'/>" FWD_CLOSE
                             "</iq>",
                             buf, sizeof buf),
                     0);
    assert_string_equal(buf, "");
    /* a bare result (nothing forwarded) is a success too */
    assert_int_equal(verdict(*state, "<iq type='result' id='out1'/>", buf, sizeof buf), 0);
    assert_int_equal(verdict(*state, "<iq type='result' id='out1'/>", NULL, 0), 0);
}

static void stanza__parse_privileged_result__outer_error_is_permanent(void **state)
{
    char buf[256];

    assert_int_equal(verdict(*state,
                             "<iq type='error' id='out1'><error type='auth'>"
                             "<forbidden xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>"
                             "no privilege granted</text></error></iq>",
                             buf, sizeof buf),
                     -1);
    assert_string_equal(buf, "auth/forbidden: no privilege granted");
    assert_int_equal(verdict(*state,
                             "<iq type='error' id='out1'><error type='cancel'>"
                             "<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "</error></iq>",
                             buf, sizeof buf),
                     -1);
    assert_string_equal(buf, "cancel/internal-server-error");
}

static void stanza__parse_privileged_result__wait_is_temporary(void **state)
{
    char buf[256];

    assert_int_equal(verdict(*state,
                             "<iq type='error' id='out1'><error type='wait'>"
                             "<resource-constraint xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>busy</text>"
                             "</error></iq>",
                             buf, sizeof buf),
                     -2);
    assert_string_equal(buf, "wait/resource-constraint: busy");
}

static void stanza__parse_privileged_result__inner_error(void **state)
{
    char buf[256];

    /* outer result, wrapped error */
    assert_int_equal(verdict(*state,
                             "<iq type='result' id='out1'>" FWD_OPEN
                             "<iq xmlns='jabber:client' type='error' id='in1'>"
                             "<error type='modify'>"
                             "<not-acceptable xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>payload too "
                             "large</text></error></iq>" FWD_CLOSE "</iq>",
                             buf, sizeof buf),
                     -1);
    assert_string_equal(buf, "modify/not-acceptable: payload too large");
    /* outer error carrying the wrapped error (Prosody copies the type):
     * the wrapped one is reported */
    assert_int_equal(verdict(*state,
                             "<iq type='error' id='out1'>" FWD_OPEN
                             "<iq xmlns='jabber:client' type='error' id='in1'>"
                             "<error type='wait'>"
                             "<internal-server-error xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "</error></iq>" FWD_CLOSE "</iq>",
                             buf, sizeof buf),
                     -2);
    assert_string_equal(buf, "wait/internal-server-error");
    /* wrapped reply of a strange type */
    assert_int_equal(verdict(*state,
                             "<iq type='result' id='out1'>" FWD_OPEN
                             "<iq xmlns='jabber:client' type='set' id='in1'/>" FWD_CLOSE "</iq>",
                             buf, sizeof buf),
                     -1);
    assert_non_null(strstr(buf, "\"set\""));
}

static void stanza__parse_privileged_result__odd_replies(void **state)
{
    char buf[256];

    assert_int_equal(verdict(*state, "<iq type='error' id='out1'/>", buf, sizeof buf), -1);
    assert_string_equal(buf, "error reply without an <error/> element");
    assert_int_equal(verdict(*state, "<iq type='get' id='out1'/>", buf, sizeof buf), -1);
    assert_string_equal(buf, "reply has unexpected iq type \"get\"");
    assert_int_equal(verdict(*state, "<iq id='out1'/>", buf, sizeof buf), -1);
    assert_int_equal(verdict(*state, "<iq type='error'><error><x/></error></iq>", buf, sizeof buf),
                     -1);
    assert_string_equal(buf, "unknown/undefined-condition");
    assert_int_equal(stanza_parse_privileged_result(NULL, buf, sizeof buf), -1);
}

static void stanza__parse_privileged_result__cleans_and_truncates_text(void **state)
{
    char buf[24];
    char big[64];

    /* a tab and a newline (XML allows them) are removed */
    assert_int_equal(verdict(*state,
                             "<iq type='error'><error type='cancel'>"
                             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>a&#9;b&#10;"
                             "c</text></error></iq>",
                             big, sizeof big),
                     -1);
    assert_string_equal(big, "cancel/conflict: abc");
    /* cut on a character boundary: "é" (2 bytes) does not fit at the end */
    assert_int_equal(verdict(*state,
                             "<iq type='error'><error type='cancel'>"
                             "<conflict xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/>"
                             "<text xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'>xxxxx\xc3\xa9"
                             "</text></error></iq>",
                             buf, sizeof buf),
                     -1);
    assert_string_equal(buf, "cancel/conflict: xxxxx");
    assert_int_equal(verdict(*state, "<iq type='error'/>", buf, 1), -1);
    assert_string_equal(buf, "");
}

/* ---- privilege advertisement ------------------------------------------- */

static void stanza__parse_privileges__reads_v2_advertisement(void **state)
{
    xmpp_stanza_t *msg =
        parse(*state, "<message from='example.org' to='shares.example.org'>"
                      "<privilege xmlns='urn:xmpp:privilege:2'>"
                      "<perm access='roster' type='get'/>"
                      "<perm access='message' type='outgoing'/>"
                      "<perm access='presence' type='roster'/>"
                      "<perm access='iq'>"
                      "<namespace ns='urn:xmpp:mam:2' type='both'/>"
                      "<namespace ns='http://jabber.org/protocol/pubsub' type='set'/>"
                      "</perm></privilege></message>");
    stanza_privileges_t p;

    memset(&p, 0x55, sizeof p);
    assert_int_equal(stanza_parse_privileges(msg, &p), 0);
    assert_int_equal(p.found, 1);
    assert_int_equal(p.version, 2);
    assert_string_equal(p.roster, "get");
    assert_string_equal(p.message, "outgoing");
    assert_string_equal(p.presence, "roster");
    assert_int_equal(p.pubsub_get, 0);
    assert_int_equal(p.pubsub_set, 1);
    xmpp_stanza_release(msg);
}

static void stanza__parse_privileges__pubsub_types(void **state)
{
    static const struct {
        const char *type;
        int get, set;
    } rows[] = {{"get", 1, 0}, {"set", 0, 1}, {"both", 1, 1}, {"none", 0, 0}};
    stanza_privileges_t p;
    xmpp_stanza_t *msg;
    char xml[512];
    size_t i;

    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        snprintf(xml, sizeof xml,
                 "<message><privilege xmlns='urn:xmpp:privilege:2'><perm access='iq'>"
                 "<namespace ns='http://jabber.org/protocol/pubsub' type='%s'/>"
                 "</perm></privilege></message>",
                 rows[i].type);
        msg = parse(*state, xml);
        assert_int_equal(stanza_parse_privileges(msg, &p), 0);
        assert_int_equal(p.pubsub_get, rows[i].get);
        assert_int_equal(p.pubsub_set, rows[i].set);
        assert_string_equal(p.roster, "");
        xmpp_stanza_release(msg);
    }
}

/* ejabberd before 24.10 speaks urn:xmpp:privilege:1, without iq. */
static void stanza__parse_privileges__reads_v1_advertisement(void **state)
{
    xmpp_stanza_t *msg = parse(*state, "<message><privilege xmlns='urn:xmpp:privilege:1'>"
                                       "<perm access='message' type='outgoing'/>"
                                       "<perm access='roster' type='none'/>"
                                       "<perm access='presence' type='managed_entity'/>"
                                       "</privilege></message>");
    stanza_privileges_t p;

    assert_int_equal(stanza_parse_privileges(msg, &p), 0);
    assert_int_equal(p.version, 1);
    assert_string_equal(p.message, "outgoing");
    assert_string_equal(p.roster, "none");
    assert_string_equal(p.presence, "managed_entity");
    assert_int_equal(p.pubsub_set, 0);
    xmpp_stanza_release(msg);
}

static void stanza__parse_privileges__other_messages(void **state)
{
    static const char *const others[] = {
        "<message><body>hi</body></message>",
        "<message><privilege xmlns='urn:example:other'/></message>",
        "<message/>",
    };
    stanza_privileges_t p;
    xmpp_stanza_t *msg;
    size_t i;

    for (i = 0; i < sizeof others / sizeof others[0]; i++) {
        msg = parse(*state, others[i]);
        memset(&p, 0x55, sizeof p);
        assert_int_equal(stanza_parse_privileges(msg, &p), -1);
        assert_int_equal(p.found, 0);
        assert_string_equal(p.roster, "");
        xmpp_stanza_release(msg);
    }
    assert_int_equal(stanza_parse_privileges(NULL, &p), -1);
    /* a privilege element without perms: found, nothing granted; long
     * types are cut */
    msg = parse(*state, "<message><privilege xmlns='urn:xmpp:privilege:2'>"
                        "<perm access='roster' type='a-very-long-type-name-indeed'/>"
                        "</privilege></message>");
    assert_int_equal(stanza_parse_privileges(msg, &p), 0);
    assert_int_equal(p.found, 1);
    assert_int_equal(strlen(p.roster), STANZA_PERM_MAX - 1);
    assert_string_equal(p.message, "");
    xmpp_stanza_release(msg);
}

/* The spliced text is byte for byte what libstrophe writes for the same
 * publish built as a stanza tree; a payload that is not a user_shares
 * element is refused. */
static void stanza__text_privileged_publish__equals_stanza_text(void **state)
{
    xmpp_ctx_t *ctx = *state;
    shares_item_t *item = shares_item_new(NULL);
    xmpp_stanza_t *tree;
    char *expected = NULL, *payload = NULL, *got;
    size_t exp_len = 0, pay_len = 0, got_len = 0, ri = 0;
    int round;

    for (round = 0; round < 3; round++) {
        if (round == 1) {
            assert_int_equal(shares_item_add_resource(item, "l<a>p&t\"o'p", &ri, NULL), 0);
            assert_int_equal(shares_item_add_share(item, ri, H1, "a & <b> \"c\" \xc3\xbc", 7, NULL),
                             0);
            assert_int_equal(shares_item_add_address(item, ri, "2001:db8::7", 6881, NULL), 0);
        } else if (round == 2) {
            assert_int_equal(shares_item_add_resource(item, "desktop", &ri, NULL), 0);
        }
        tree = stanza_build_privileged_publish(ctx, "shares.example.org", "al&ice@example.org",
                                               "p<1", "p<1-i", shares_item_build(item, ctx));
        assert_non_null(tree);
        assert_int_equal(xmpp_stanza_to_text(tree, &expected, &exp_len), XMPP_EOK);
        assert_int_equal(shares_item_write(item, &payload, &pay_len, NULL), 0);
        got = stanza_text_privileged_publish(ctx, "shares.example.org", "al&ice@example.org", "p<1",
                                             "p<1-i", payload, pay_len, &got_len);
        assert_non_null(got);
        assert_int_equal(got_len, exp_len);
        assert_string_equal(got, expected);
        free(got);
        free(payload);
        xmpp_free(ctx, expected);
        xmpp_stanza_release(tree);
    }
    assert_null(
        stanza_text_privileged_publish(ctx, "c", "u@d", "1", "2", "<message/>", 10, &got_len));
    assert_int_equal(got_len, 0);
    shares_item_free(item);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(stanza__xml_equal__detects_differences),
        T(stanza__iq_envelope__keeps_attributes_drops_payload),
        T(stanza__iq_result__swaps_from_and_to_keeps_id),
        T(stanza__iq_result__leaves_out_missing_attributes),
        T(stanza__iq_error__builds_rfc6120_error_without_payload),
        T(stanza__iq_error__omits_empty_text),
        T(stanza__iq_error__cleans_text_for_the_wire),
        T(stanza__agent_error__maps_every_code),
        T(stanza__agent_error__conflict_carries_stored_seq),
        T(stanza__disco_info__lists_identity_and_features),
        T(stanza__disco_info__node_gives_item_not_found),
        T(stanza__ping__builds_xep0199_get),
        T(stanza__privileged_publish__matches_xep0356_layout),
        T(stanza__privileged_publish__carries_built_item),
        T(stanza__text_privileged_publish__equals_stanza_text),
        T(stanza__privileged_publish__takes_payload),
        T(stanza__privileged_publish__meets_mod_privilege_rules),
        T(stanza__builders__reject_null_arguments),
        T(stanza__builders__survive_every_failing_allocation),
        T(stanza__parse_privileged_result__success),
        T(stanza__parse_privileged_result__outer_error_is_permanent),
        T(stanza__parse_privileged_result__wait_is_temporary),
        T(stanza__parse_privileged_result__inner_error),
        T(stanza__parse_privileged_result__odd_replies),
        T(stanza__parse_privileged_result__cleans_and_truncates_text),
        T(stanza__parse_privileges__reads_v2_advertisement),
        T(stanza__parse_privileges__pubsub_types),
        T(stanza__parse_privileges__reads_v1_advertisement),
        T(stanza__parse_privileges__other_messages),
#undef T
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
