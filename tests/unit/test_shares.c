/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/shares.c, the merged <user_shares/> wire format:
 * exact canonical text, round trips through stanzas and text, every
 * validation rule one by one, whole-or-nothing updates, limits, the digest,
 * and failing allocations through libstrophe's allocator hooks.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shares.h"

#define H1         "0123456789abcdef0123456789abcdef01234567"
#define H2         "1111111111111111111111111111111111111111"
#define H3         "fedcba9876543210fedcba9876543210fedcba98"
#define H64        "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"
#define EMPTY_TEXT "<user_shares xmlns=\"" SHARES_NS "\"/>"
#define AGENT_NS   "urn:bitween:agent:1"

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

static shares_limits_t no_limits(void)
{
    shares_limits_t lim;

    memset(&lim, 0, sizeof lim);
    return lim;
}

static char *serialize_ok(xmpp_ctx_t *ctx, const shares_item_t *item)
{
    shares_error_t err = {0};
    char *buf = NULL;
    size_t len = 0;
    int rc = shares_item_serialize(item, ctx, &buf, &len, &err);

    if (rc != SHARES_OK)
        fail_msg("serialize: %d %s", rc, err.message);
    assert_non_null(buf);
    assert_int_equal(strlen(buf), len);
    return buf;
}

static size_t add_resource_ok(shares_item_t *item, const char *name)
{
    shares_error_t err = {0};
    size_t ri = SIZE_MAX;
    int rc = shares_item_add_resource(item, name, &ri, &err);

    if (rc != SHARES_OK)
        fail_msg("add_resource %s: %d %s", name, rc, err.message);
    return ri;
}

static void add_share_ok(shares_item_t *item, size_t ri, const char *hash, const char *name,
                         uint64_t size)
{
    shares_error_t err = {0};
    int rc = shares_item_add_share(item, ri, hash, name, size, &err);

    if (rc != SHARES_OK)
        fail_msg("add_share %s: %d %s", hash, rc, err.message);
}

static void add_address_ok(shares_item_t *item, size_t ri, const char *addr, unsigned long port)
{
    shares_error_t err = {0};
    int rc = shares_item_add_address(item, ri, addr, port, &err);

    if (rc != SHARES_OK)
        fail_msg("add_address %s: %d %s", addr, rc, err.message);
}

static shares_item_t *parse_ok(xmpp_ctx_t *ctx, const char *xml, const shares_limits_t *lim)
{
    shares_error_t err = {0};
    shares_item_t *item = NULL;
    int rc = shares_item_parse_text(ctx, xml, lim, &item, &err);

    if (rc != SHARES_OK)
        fail_msg("parse: %d %s", rc, err.message);
    assert_non_null(item);
    return item;
}

/* A message is safe for an XMPP <text/>: bounded, valid UTF-8 without
 * control characters (checked with the module's own validator). */
static void assert_safe_message(const shares_error_t *err)
{
    size_t len = strnlen(err->message, sizeof err->message);

    assert_true(len > 0);
    assert_true(len < sizeof err->message);
    assert_int_equal(shares_validate_name(err->message, 0, NULL), SHARES_OK);
}

static void assert_error(const shares_error_t *err, int rc, int code, const char *needle)
{
    if (rc != code)
        fail_msg("expected %d, got %d (%s)", code, rc, err->message);
    assert_int_equal(err->code, code);
    if (needle && !strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
    assert_safe_message(err);
}

/* ---- servers' view of an item ------------------------------------------
 *
 * What a server makes of the canonical text, written here from their code
 * and independently of shares.c: Prosody's util/stanza.lua (_dostring,
 * xml_escape), fast_xml's c_src/fxml.c (make_element, attr_encode) and
 * ejabberd's payload measure (byte_size(term_to_binary([El])) - 2, with
 * the atom xmlel counted as 8 bytes, its size before OTP 26). A child's
 * xmlns equal to its parent's namespace is written by neither. */

enum { SER_PROSODY, SER_FAST_XML };

typedef struct tbuf {
    char *p;
    size_t len, cap;
} tbuf_t;

static void tb_put(tbuf_t *b, const char *s, size_t n)
{
    if (b->len + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *p;

        while (b->len + n + 1 > cap)
            cap *= 2;
        p = realloc(b->p, cap);
        assert_non_null(p);
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void tb_str(tbuf_t *b, const char *s)
{
    tb_put(b, s, strlen(s));
}

static void ser_value(tbuf_t *b, const char *v, int kind)
{
    for (; *v; v++) {
        switch (*v) {
        case '\'':
            tb_str(b, "&apos;");
            break;
        case '"':
            tb_str(b, "&quot;");
            break;
        case '&':
            tb_str(b, "&amp;");
            break;
        case '<':
            tb_str(b, "&lt;");
            break;
        case '>':
            tb_str(b, kind == SER_PROSODY ? "&gt;" : ">");
            break;
        default:
            tb_put(b, v, 1);
        }
    }
}

/* The namespace `el` is in, and whether the serializers declare it. */
static const char *el_ns(xmpp_stanza_t *el, const char *parent_ns, int *declare)
{
    const char *ns = xmpp_stanza_get_ns(el);

    if (!ns)
        ns = parent_ns;
    *declare = ns && (!parent_ns || strcmp(ns, parent_ns) != 0);
    return ns;
}

static void ser_element(tbuf_t *b, xmpp_stanza_t *el, const char *parent_ns, int kind)
{
    const char *attrs[64], *ns;
    xmpp_stanza_t *child;
    int n, i, declare;

    if (!xmpp_stanza_is_tag(el)) {
        ser_value(b, xmpp_stanza_get_text_ptr(el), kind);
        return;
    }
    ns = el_ns(el, parent_ns, &declare);
    tb_str(b, "<");
    tb_str(b, xmpp_stanza_get_name(el));
    n = xmpp_stanza_get_attributes(el, attrs, 64);
    assert_true(n <= 64);
    for (i = 0; i + 1 < n; i += 2) {
        if (strcmp(attrs[i], "xmlns") == 0)
            continue;
        tb_str(b, " ");
        tb_str(b, attrs[i]);
        tb_str(b, "='");
        ser_value(b, attrs[i + 1], kind);
        tb_str(b, "'");
    }
    if (declare) {
        tb_str(b, " xmlns='");
        ser_value(b, ns, kind);
        tb_str(b, "'");
    }
    child = xmpp_stanza_get_children(el);
    if (!child) {
        tb_str(b, "/>");
        return;
    }
    tb_str(b, ">");
    for (; child; child = xmpp_stanza_get_next(child))
        ser_element(b, child, ns, kind);
    tb_str(b, "</");
    tb_str(b, xmpp_stanza_get_name(el));
    tb_str(b, ">");
}

static size_t term_size(xmpp_stanza_t *el, const char *parent_ns)
{
    const char *attrs[64], *ns;
    xmpp_stanza_t *child;
    size_t t = 2 + 8 + 5 + strlen(xmpp_stanza_get_name(el)), a = 0, c = 0;
    int n, i, declare, k = 0, m = 0;

    ns = el_ns(el, parent_ns, &declare);
    n = xmpp_stanza_get_attributes(el, attrs, 64);
    for (i = 0; i + 1 < n; i += 2) {
        if (strcmp(attrs[i], "xmlns") == 0)
            continue;
        a += 2 + 5 + strlen(attrs[i]) + 5 + strlen(attrs[i + 1]);
        k++;
    }
    if (declare) {
        a += 2 + 5 + strlen("xmlns") + 5 + strlen(ns);
        k++;
    }
    for (child = xmpp_stanza_get_children(el); child; child = xmpp_stanza_get_next(child)) {
        assert_true(xmpp_stanza_is_tag(child)); /* the item has no text */
        c += term_size(child, ns);
        m++;
    }
    return t + (k ? 5 + a + 1 : 1) + (m ? 5 + c + 1 : 1);
}

/* The canonical text `text` as server `kind` sends it; caller frees. */
static char *reserialize(xmpp_ctx_t *ctx, const char *text, int kind)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    tbuf_t b = {0};

    assert_non_null(st);
    ser_element(&b, st, NULL, kind);
    xmpp_stanza_release(st);
    return b.p;
}

/* ejabberd's payload measure of the canonical text `text`. */
static size_t ejabberd_payload_size(xmpp_ctx_t *ctx, const char *text)
{
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(ctx, text);
    size_t t;

    assert_non_null(st);
    /* term_to_binary([El]): 1 version byte, list header 5, El, nil 1 */
    t = 1 + 5 + term_size(st, NULL) + 1 - 2;
    xmpp_stanza_release(st);
    return t;
}

static size_t prosody_len(xmpp_ctx_t *ctx, const char *text)
{
    char *out = reserialize(ctx, text, SER_PROSODY);
    size_t n = strlen(out);

    free(out);
    return n;
}

static void expect_parse_error(xmpp_ctx_t *ctx, const char *xml, const shares_limits_t *lim,
                               int code, const char *needle)
{
    shares_error_t err = {0};
    shares_item_t *item = (shares_item_t *)&err; /* must be reset to NULL */
    int rc = shares_item_parse_text(ctx, xml, lim, &item, &err);

    assert_null(item);
    assert_error(&err, rc, code, needle);
}

/* <user_shares> with one resource "r" holding one share and one address,
 * attribute values spliced in (NULL leaves the attribute out). */
static char *one_share_xml(const char *hash, const char *name, const char *size, const char *addr,
                           const char *port)
{
    static char buf[4096];
    char h[512] = "", n[512] = "", s[512] = "", a[512] = "", p[512] = "";

    if (hash)
        snprintf(h, sizeof h, " hash='%s'", hash);
    if (name)
        snprintf(n, sizeof n, " name='%s'", name);
    if (size)
        snprintf(s, sizeof s, " size='%s'", size);
    if (addr)
        snprintf(a, sizeof a, " address='%s'", addr);
    if (port)
        snprintf(p, sizeof p, " port='%s'", port);
    snprintf(buf, sizeof buf,
             "<user_shares xmlns='" SHARES_NS "'><resource resource='r'>"
             "<share_item%s%s%s/><ip_address%s%s/></resource></user_shares>",
             h, n, s, a, p);
    return buf;
}

/* The reference state used by several tests. */
static shares_item_t *sample_item(const shares_limits_t *lim)
{
    shares_item_t *item = shares_item_new(lim);
    size_t ri;

    assert_non_null(item);
    ri = add_resource_ok(item, "laptop");
    add_share_ok(item, ri, H1, "holiday.mkv", 734003200);
    add_share_ok(item, ri, H2, "notes.txt", 12);
    add_address_ok(item, ri, "203.0.113.7", 6881);
    add_address_ok(item, ri, "2001:db8::7", 6881);
    ri = add_resource_ok(item, "desktop");
    add_share_ok(item, ri, H3, "music.flac", 0);
    return item;
}

/* Counts and text: what must not change when an operation fails. */
struct snapshot {
    size_t nres, nshares[8], naddrs[8];
    char *text;
};

static void take_snapshot(xmpp_ctx_t *ctx, const shares_item_t *item, struct snapshot *s)
{
    size_t i;

    memset(s, 0, sizeof *s);
    s->nres = shares_item_resource_count(item);
    assert_true(s->nres <= 8);
    for (i = 0; i < s->nres; i++) {
        s->nshares[i] = shares_item_share_count(item, i);
        s->naddrs[i] = shares_item_address_count(item, i);
    }
    s->text = serialize_ok(ctx, item);
}

static void assert_unchanged(xmpp_ctx_t *ctx, const shares_item_t *item, struct snapshot *before)
{
    struct snapshot now;
    size_t i;

    take_snapshot(ctx, item, &now);
    assert_int_equal(now.nres, before->nres);
    for (i = 0; i < now.nres; i++) {
        assert_int_equal(now.nshares[i], before->nshares[i]);
        assert_int_equal(now.naddrs[i], before->naddrs[i]);
    }
    assert_string_equal(now.text, before->text);
    free(now.text);
}

/* Same state: same resources, each with the same shares and addresses,
 * whatever the insertion order. */
static void assert_same_state(const shares_item_t *a, const shares_item_t *b)
{
    size_t i, j, k, n = shares_item_resource_count(a), found;
    shares_share_t sa, sb;
    shares_address_t aa, ab;

    assert_int_equal(shares_item_resource_count(b), n);
    for (i = 0; i < n; i++) {
        const char *name = shares_item_resource(a, i);

        for (j = 0; j < n; j++)
            if (strcmp(shares_item_resource(b, j), name) == 0)
                break;
        assert_true(j < n);
        assert_int_equal(shares_item_share_count(a, i), shares_item_share_count(b, j));
        assert_int_equal(shares_item_address_count(a, i), shares_item_address_count(b, j));
        for (k = 0; k < shares_item_share_count(a, i); k++) {
            size_t m;

            assert_int_equal(shares_item_share(a, i, k, &sa), SHARES_OK);
            found = 0;
            for (m = 0; m < shares_item_share_count(b, j); m++) {
                assert_int_equal(shares_item_share(b, j, m, &sb), SHARES_OK);
                if (strcmp(sa.hash, sb.hash) == 0) {
                    assert_string_equal(sa.name, sb.name);
                    assert_true(sa.size == sb.size);
                    found++;
                }
            }
            assert_int_equal(found, 1);
        }
        for (k = 0; k < shares_item_address_count(a, i); k++) {
            size_t m;

            assert_int_equal(shares_item_address(a, i, k, &aa), SHARES_OK);
            found = 0;
            for (m = 0; m < shares_item_address_count(b, j); m++) {
                assert_int_equal(shares_item_address(b, j, m, &ab), SHARES_OK);
                if (strcmp(aa.address, ab.address) == 0 && aa.port == ab.port)
                    found++;
            }
            assert_int_equal(found, 1);
        }
    }
}

/* ---- basics and exact text ------------------------------------------- */

static void shares__limits_default__fills_documented_values(void **state)
{
    shares_limits_t lim;

    (void)state;
    memset(&lim, 0xA5, sizeof lim);
    shares_limits_default(&lim);
    assert_int_equal(lim.max_resources, SHARES_DEFAULT_MAX_RESOURCES);
    assert_int_equal(lim.max_shares, SHARES_DEFAULT_MAX_SHARES);
    assert_int_equal(lim.max_addresses, SHARES_DEFAULT_MAX_ADDRESSES);
    assert_int_equal(lim.max_name_bytes, SHARES_DEFAULT_MAX_NAME_BYTES);
    assert_int_equal(lim.max_resource_bytes, SHARES_DEFAULT_MAX_RESOURCE_BYTES);
    assert_int_equal(lim.max_item_bytes, SHARES_DEFAULT_MAX_ITEM_BYTES);
}

static void shares__item_free__accepts_null(void **state)
{
    (void)state;
    shares_item_free(NULL);
}

static void shares__serialize__empty_item_is_empty_user_shares(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    char *text;

    assert_non_null(item);
    text = serialize_ok(*state, item);
    assert_string_equal(text, "<user_shares xmlns=\"https://xmpp.kwoh.de/protocol/shares\"/>");
    free(text);
    shares_item_free(item);
}

/* The exact bytes, including libstrophe's attribute order (its attribute
 * hash table: hash, size, name / port, address). If a libstrophe upgrade
 * changes this, digests change and every item is republished once. */
static void shares__serialize__writes_canonical_text(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    size_t ri;
    char *text;

    ri = add_resource_ok(item, "laptop");
    add_share_ok(item, ri, "0123456789ABCDEF0123456789abcdef01234567", "holiday <&>'\".mkv",
                 734003200);
    add_address_ok(item, ri, "2001:DB8:0:0::7", 6881);
    add_address_ok(item, ri, "203.0.113.7", 6881);
    add_resource_ok(item, "desktop");
    text = serialize_ok(*state, item);
    assert_string_equal(text, "<user_shares xmlns=\"https://xmpp.kwoh.de/protocol/shares\">"
                              "<resource resource=\"desktop\"/>"
                              "<resource resource=\"laptop\">"
                              "<share_item hash=\"" H1 "\" size=\"734003200\" "
                              "name=\"holiday &lt;&amp;&gt;'&quot;.mkv\"/>"
                              "<ip_address port=\"6881\" address=\"203.0.113.7\"/>"
                              "<ip_address port=\"6881\" address=\"2001:db8::7\"/>"
                              "</resource></user_shares>");
    free(text);
    shares_item_free(item);
}

static void shares__build__children_inherit_namespace(void **state)
{
    shares_item_t *item = sample_item(NULL);
    xmpp_stanza_t *root = shares_item_build(item, *state), *res, *child;
    char *text = NULL;
    size_t len = 0;
    const char *p;
    int nres = 0, nchildren = 0, nxmlns = 0;

    assert_non_null(root);
    assert_string_equal(xmpp_stanza_get_name(root), "user_shares");
    assert_string_equal(xmpp_stanza_get_ns(root), SHARES_NS);
    for (res = xmpp_stanza_get_children(root); res; res = xmpp_stanza_get_next(res)) {
        assert_string_equal(xmpp_stanza_get_name(res), "resource");
        assert_null(xmpp_stanza_get_ns(res));
        nres++;
        for (child = xmpp_stanza_get_children(res); child; child = xmpp_stanza_get_next(child)) {
            assert_null(xmpp_stanza_get_ns(child));
            nchildren++;
        }
    }
    assert_int_equal(nres, 2);
    assert_int_equal(nchildren, 5);
    assert_int_equal(xmpp_stanza_to_text(root, &text, &len), XMPP_EOK);
    for (p = text; (p = strstr(p, "xmlns")) != NULL; p++)
        nxmlns++;
    assert_int_equal(nxmlns, 1);
    xmpp_free(*state, text);
    xmpp_stanza_release(root);
    shares_item_free(item);
}

/* Resources bytewise, shares by hash, addresses IPv4 first, by address
 * bytes (9.x before 10.x, unlike text) then port (80 before 6881). */
static void shares__build__orders_resources_shares_and_addresses(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    xmpp_stanza_t *root, *res, *child;
    static const char *const want_res[] = {"Zeta", "alpha", "beta", "\xc3\xa9"};
    static const char *const want_hash[] = {H64, H1, H2, H3};
    static const char *const want_addr[][2] = {
        {"9.0.0.1", "80"},       {"10.0.0.2", "80"},   {"10.0.0.2", "6881"}, {"::1", "1"},
        {"::ffff:1.2.3.4", "1"}, {"2001:db8::7", "1"}, {"fe80::1", "1"}};
    size_t ri, i;

    add_resource_ok(item, "beta");
    add_resource_ok(item, "\xc3\xa9");
    ri = add_resource_ok(item, "alpha");
    add_resource_ok(item, "Zeta");
    add_share_ok(item, ri, H3, "c", 3);
    add_share_ok(item, ri, H64, "v2", 4);
    add_share_ok(item, ri, H2, "b", 2);
    add_share_ok(item, ri, H1, "a", 1);
    add_address_ok(item, ri, "fe80::1", 1);
    add_address_ok(item, ri, "10.0.0.2", 6881);
    add_address_ok(item, ri, "2001:db8::7", 1);
    add_address_ok(item, ri, "::ffff:1.2.3.4", 1);
    add_address_ok(item, ri, "10.0.0.2", 80);
    add_address_ok(item, ri, "::1", 1);
    add_address_ok(item, ri, "9.0.0.1", 80);

    root = shares_item_build(item, *state);
    assert_non_null(root);
    i = 0;
    for (res = xmpp_stanza_get_children(root); res; res = xmpp_stanza_get_next(res), i++) {
        assert_true(i < 4);
        assert_string_equal(xmpp_stanza_get_attribute(res, "resource"), want_res[i]);
    }
    assert_int_equal(i, 4);
    res = xmpp_stanza_get_children(root);
    res = xmpp_stanza_get_next(res); /* "alpha" */
    child = xmpp_stanza_get_children(res);
    for (i = 0; i < 4; i++, child = xmpp_stanza_get_next(child)) {
        assert_string_equal(xmpp_stanza_get_name(child), "share_item");
        assert_string_equal(xmpp_stanza_get_attribute(child, "hash"), want_hash[i]);
    }
    for (i = 0; i < 7; i++, child = xmpp_stanza_get_next(child)) {
        assert_string_equal(xmpp_stanza_get_name(child), "ip_address");
        assert_string_equal(xmpp_stanza_get_attribute(child, "address"), want_addr[i][0]);
        assert_string_equal(xmpp_stanza_get_attribute(child, "port"), want_addr[i][1]);
    }
    assert_null(child);
    xmpp_stanza_release(root);
    shares_item_free(item);
}

/* ---- determinism ------------------------------------------------------ */

struct op {
    char kind; /* 'r' resource, 's' share, 'a' address */
    const char *res, *a, *b;
    unsigned long n;
};

static const struct op state_ops[] = {
    {'r', "laptop", NULL, NULL, 0},
    {'r', "desktop", NULL, NULL, 0},
    {'r', "phone", NULL, NULL, 0},
    {'s', "laptop", H1, "holiday.mkv", 734003200},
    {'s', "laptop", H2, "a & b.txt", 1},
    {'s', "laptop", H64, "v2 \xf0\x9f\x8e\xac.mkv", 99},
    {'s', "desktop", H3, "music.flac", 5},
    {'s', "desktop", H1, "same hash, other resource", 7},
    {'a', "laptop", "203.0.113.7", NULL, 6881},
    {'a', "laptop", "2001:db8::7", NULL, 6881},
    {'a', "laptop", "203.0.113.7", NULL, 51413},
    {'a', "desktop", "198.51.100.1", NULL, 1},
    {'a', "phone", "::1", NULL, 65535},
};
#define NOPS (sizeof state_ops / sizeof state_ops[0])

/* Spellings of the same values that must canonicalize identically. */
static const char *variant(const char *s)
{
    if (strcmp(s, H1) == 0)
        return "0123456789ABCDEF0123456789ABCDEF01234567";
    if (strcmp(s, "2001:db8::7") == 0)
        return "2001:0DB8:0000:0000:0000:0000:0000:0007";
    if (strcmp(s, "::1") == 0)
        return "0:0:0:0:0:0:0:1";
    return s;
}

/* Apply state_ops in the order given by perm (resources always before
 * what goes into them). */
static shares_item_t *item_from_ops(const size_t *perm, int variants)
{
    shares_item_t *item = shares_item_new(NULL);
    shares_error_t err = {0};
    size_t i, ri, pass;

    assert_non_null(item);
    for (pass = 0; pass < 2; pass++) {
        for (i = 0; i < NOPS; i++) {
            const struct op *op = &state_ops[perm[i]];

            if ((op->kind == 'r') != (pass == 0))
                continue;
            if (op->kind == 'r') {
                add_resource_ok(item, op->res);
                continue;
            }
            for (ri = 0; ri < shares_item_resource_count(item); ri++)
                if (strcmp(shares_item_resource(item, ri), op->res) == 0)
                    break;
            if (op->kind == 's')
                assert_int_equal(shares_item_add_share(item, ri, variants ? variant(op->a) : op->a,
                                                       op->b, op->n, &err),
                                 SHARES_OK);
            else
                assert_int_equal(shares_item_add_address(
                                     item, ri, variants ? variant(op->a) : op->a, op->n, &err),
                                 SHARES_OK);
        }
    }
    return item;
}

static void shares__serialize__identical_bytes_across_insertion_orders(void **state)
{
    size_t perm[NOPS], i, j, t, round;
    unsigned seed = 12345;
    shares_item_t *ref, *other;
    char *ref_text, *text, ref_digest[SHARES_DIGEST_HEX], digest[SHARES_DIGEST_HEX];
    shares_error_t err = {0};

    for (i = 0; i < NOPS; i++)
        perm[i] = i;
    ref = item_from_ops(perm, 0);
    ref_text = serialize_ok(*state, ref);
    assert_int_equal(shares_item_digest(ref, ref_digest, &err), 0);

    for (round = 0; round < 40; round++) {
        if (round == 0) {
            for (i = 0; i < NOPS; i++)
                perm[i] = NOPS - 1 - i;
        } else {
            for (i = NOPS - 1; i > 0; i--) { /* Fisher-Yates, fixed seed */
                seed = seed * 1103515245u + 12345u;
                j = (seed >> 16) % (i + 1);
                t = perm[i];
                perm[i] = perm[j];
                perm[j] = t;
            }
        }
        other = item_from_ops(perm, (int)(round & 1));
        text = serialize_ok(*state, other);
        assert_string_equal(text, ref_text);
        assert_int_equal(shares_item_digest(other, digest, &err), 0);
        assert_string_equal(digest, ref_digest);
        assert_same_state(ref, other);
        free(text);
        shares_item_free(other);
    }
    free(ref_text);
    shares_item_free(ref);
}

static void shares__serialize__repeatable_on_same_item(void **state)
{
    shares_item_t *item = sample_item(NULL);
    char *a = serialize_ok(*state, item), *b = serialize_ok(*state, item);
    xmpp_ctx_t *ctx2 = xmpp_ctx_new(NULL, NULL);
    char *c = serialize_ok(ctx2, item);

    assert_string_equal(a, b);
    assert_string_equal(a, c);
    free(a);
    free(b);
    free(c);
    xmpp_ctx_free(ctx2);
    shares_item_free(item);
}

/* ---- round trips ------------------------------------------------------ */

static void shares__roundtrip__build_parse_same_state(void **state)
{
    shares_item_t *item = sample_item(NULL), *back = NULL;
    xmpp_stanza_t *root = shares_item_build(item, *state);
    shares_error_t err = {0};
    char *a, *b;

    assert_non_null(root);
    assert_int_equal(shares_item_parse(root, NULL, &back, &err), SHARES_OK);
    assert_same_state(item, back);
    a = serialize_ok(*state, item);
    b = serialize_ok(*state, back);
    assert_string_equal(a, b);
    free(a);
    free(b);
    xmpp_stanza_release(root);
    shares_item_free(back);
    shares_item_free(item);
}

static void shares__roundtrip__text_parse_serialize_is_canonical(void **state)
{
    /* Single quotes, whitespace, unsorted, uppercase hash, long IPv6
     * form, leading zeros, attributes in another order. */
    static const char messy[] =
        "<user_shares xmlns='https://xmpp.kwoh.de/protocol/shares'>\n"
        "  <resource resource='laptop'>\n"
        "    <ip_address port='06881' address='2001:DB8:0:0::7'/>\n"
        "    <share_item size='0734003200' name='holiday.mkv'\n"
        "                hash='0123456789ABCDEF0123456789ABCDEF01234567'/>\n"
        "    <ip_address address='203.0.113.7' port='6881'/>\n"
        "  </resource>\n"
        "  <resource resource='desktop'></resource>\n"
        "</user_shares>";
    static const char canonical[] =
        "<user_shares xmlns=\"https://xmpp.kwoh.de/protocol/shares\">"
        "<resource resource=\"desktop\"/>"
        "<resource resource=\"laptop\">"
        "<share_item hash=\"" H1 "\" size=\"734003200\" name=\"holiday.mkv\"/>"
        "<ip_address port=\"6881\" address=\"203.0.113.7\"/>"
        "<ip_address port=\"6881\" address=\"2001:db8::7\"/>"
        "</resource></user_shares>";
    shares_item_t *item = parse_ok(*state, messy, NULL), *again;
    char *text = serialize_ok(*state, item), *text2;

    assert_string_equal(text, canonical);
    again = parse_ok(*state, text, NULL);
    text2 = serialize_ok(*state, again);
    assert_string_equal(text2, canonical);
    assert_same_state(item, again);
    free(text);
    free(text2);
    shares_item_free(item);
    shares_item_free(again);
}

static void shares__roundtrip__escapes_xml_special_characters(void **state)
{
    static const char name[] = "a<b>&c'd\"e &amp; ]]> <!-- x -->";
    static const char res[] = "res<&>\"'";
    shares_item_t *item = shares_item_new(NULL), *back;
    shares_share_t sh;
    size_t ri = add_resource_ok(item, res);
    char *text;

    add_share_ok(item, ri, H1, name, 1);
    text = serialize_ok(*state, item);
    assert_non_null(strstr(text, "resource=\"res&lt;&amp;&gt;&quot;'\""));
    assert_non_null(strstr(text, "name=\"a&lt;b&gt;&amp;c'd&quot;e &amp;amp; ]]&gt; &lt;!-- x "
                                 "--&gt;\""));
    back = parse_ok(*state, text, NULL);
    assert_string_equal(shares_item_resource(back, 0), res);
    assert_int_equal(shares_item_share(back, 0, 0, &sh), SHARES_OK);
    assert_string_equal(sh.name, name);
    assert_same_state(item, back);
    free(text);
    shares_item_free(back);
    shares_item_free(item);
}

static void shares__roundtrip__keeps_multibyte_utf8(void **state)
{
    static const char name[] = "\xc3\x9cn\xc3\xaf"
                               "c\xc3\xb8"
                               "d\xc3\xa9 "
                               "\xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e "
                               "\xf0\x9f\x8e\xac.mkv"; /* Ünïcødé 日本語 🎬 */
    static const char res[] = "t\xc3\xa9l\xc3\xa9phone \xf0\x9f\x93\xb1";
    shares_item_t *item = shares_item_new(NULL), *back;
    shares_share_t sh;
    size_t ri = add_resource_ok(item, res);
    char *text, *text2;

    add_share_ok(item, ri, H1, name, 42);
    text = serialize_ok(*state, item);
    assert_non_null(strstr(text, name)); /* raw UTF-8, no char refs */
    assert_non_null(strstr(text, res));
    back = parse_ok(*state, text, NULL);
    assert_int_equal(shares_item_share(back, 0, 0, &sh), SHARES_OK);
    assert_string_equal(sh.name, name);
    assert_string_equal(shares_item_resource(back, 0), res);
    text2 = serialize_ok(*state, back);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    shares_item_free(back);
    shares_item_free(item);
}

static void shares__roundtrip__large_item(void **state)
{
    shares_limits_t lim = no_limits();
    shares_item_t *item = shares_item_new(&lim), *back;
    char hash[SHARES_HASH_MAX], name[64], rname[16];
    size_t r, i, ri;
    char *text, *text2;

    for (r = 0; r < 5; r++) {
        snprintf(rname, sizeof rname, "device-%zu", r);
        ri = add_resource_ok(item, rname);
        for (i = 0; i < 1000; i++) {
            /* scattered, so inserts land all over the sorted index */
            snprintf(hash, sizeof hash, "%08zx%032zx", (i * 2654435761u) % 0xFFFFFFFFu, r);
            snprintf(name, sizeof name, "file %zu of %zu.mkv", i, r);
            add_share_ok(item, ri, hash, name, i * 1000);
        }
        add_address_ok(item, ri, "192.0.2.1", 6881);
        add_address_ok(item, ri, "2001:db8::1", 6881);
    }
    text = serialize_ok(*state, item);
    back = parse_ok(*state, text, &lim);
    assert_int_equal(shares_item_resource_count(back), 5);
    assert_int_equal(shares_item_share_count(back, 4), 1000);
    text2 = serialize_ok(*state, back);
    assert_string_equal(text, text2);
    free(text);
    free(text2);
    shares_item_free(back);
    shares_item_free(item);
}

/* ---- accessors -------------------------------------------------------- */

static void shares__accessors__views_in_insertion_order(void **state)
{
    shares_item_t *item = sample_item(NULL);
    shares_share_t sh;
    shares_address_t ad;

    (void)state;
    assert_int_equal(shares_item_resource_count(item), 2);
    assert_string_equal(shares_item_resource(item, 0), "laptop");
    assert_string_equal(shares_item_resource(item, 1), "desktop");
    assert_int_equal(shares_item_share_count(item, 0), 2);
    assert_int_equal(shares_item_address_count(item, 0), 2);
    assert_int_equal(shares_item_share_count(item, 1), 1);
    assert_int_equal(shares_item_address_count(item, 1), 0);
    assert_int_equal(shares_item_share(item, 0, 1, &sh), SHARES_OK);
    assert_string_equal(sh.hash, H2);
    assert_string_equal(sh.name, "notes.txt");
    assert_true(sh.size == 12);
    assert_int_equal(shares_item_address(item, 0, 1, &ad), SHARES_OK);
    assert_string_equal(ad.address, "2001:db8::7");
    assert_int_equal(ad.port, 6881);

    assert_null(shares_item_resource(item, 2));
    assert_int_equal(shares_item_share_count(item, 2), 0);
    assert_int_equal(shares_item_address_count(item, 2), 0);
    assert_int_equal(shares_item_share(item, 0, 2, &sh), SHARES_ERANGE);
    assert_int_equal(shares_item_share(item, 2, 0, &sh), SHARES_ERANGE);
    assert_int_equal(shares_item_address(item, 1, 0, &ad), SHARES_ERANGE);
    assert_int_equal(shares_item_address(item, 5, 0, &ad), SHARES_ERANGE);
    assert_int_equal(shares_item_resource_count(NULL), 0);
    assert_null(shares_item_resource(NULL, 0));
    assert_int_equal(shares_item_share(NULL, 0, 0, &sh), SHARES_ERANGE);
    shares_item_free(item);
}

static void shares__api__rejects_null_and_out_of_range(void **state)
{
    shares_item_t *item = sample_item(NULL), *out = NULL;
    shares_error_t err = {0};
    char dummy = 'x', *buf = &dummy, hex[SHARES_DIGEST_HEX];
    size_t len = 1, ri = 0;
    struct snapshot before;

    take_snapshot(*state, item, &before);
    assert_error(&err, shares_item_add_share(item, 2, H3, "x", 1, &err), SHARES_ERANGE,
                 "resource index 2");
    assert_error(&err, shares_item_add_address(item, 9, "::1", 1, &err), SHARES_ERANGE,
                 "out of range");
    assert_int_equal(shares_item_add_resource(NULL, "x", &ri, &err), SHARES_EINVAL);
    assert_int_equal(shares_item_add_share(NULL, 0, H1, "x", 1, &err), SHARES_EINVAL);
    assert_int_equal(shares_item_add_address(NULL, 0, "::1", 1, &err), SHARES_EINVAL);
    /* err may be NULL */
    assert_int_equal(shares_item_add_share(item, 7, H3, "x", 1, NULL), SHARES_ERANGE);
    assert_int_equal(shares_item_add_resource(item, "", NULL, NULL), SHARES_EINVAL);
    assert_null(shares_item_build(NULL, *state));
    assert_null(shares_item_build(item, NULL));
    assert_int_equal(shares_item_serialize(NULL, *state, &buf, &len, &err), SHARES_EINVAL);
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(shares_item_digest(NULL, hex, &err), SHARES_EINVAL);
    assert_int_equal(shares_item_parse(NULL, NULL, &out, &err), SHARES_EINVAL);
    assert_null(out);
    assert_int_equal(shares_item_parse_text(*state, NULL, NULL, &out, &err), SHARES_EINVAL);
    assert_int_equal(shares_item_parse_resource_children(item, 5, NULL, NULL, &err), SHARES_ERANGE);
    assert_unchanged(*state, item, &before);
    free(before.text);
    shares_item_free(item);
}

/* ---- hashes ----------------------------------------------------------- */

static void shares__add_share__normalizes_hash_to_lowercase(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    shares_share_t sh;
    size_t ri = add_resource_ok(item, "r");

    (void)state;
    add_share_ok(item, ri, "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "n", 1);
    assert_int_equal(shares_item_share(item, ri, 0, &sh), SHARES_OK);
    assert_string_equal(sh.hash, "abcdef0123456789abcdef0123456789abcdef01");
    shares_item_free(item);
}

static void shares__add_share__accepts_v2_hash(void **state)
{
    shares_item_t *item = shares_item_new(NULL), *back;
    shares_share_t sh;
    size_t ri = add_resource_ok(item, "r");
    char *text;

    add_share_ok(item, ri,
                 "00112233445566778899AABBCCDDEEFF"
                 "00112233445566778899AABBCCDDEEFF",
                 "v2", 1);
    add_share_ok(item, ri, H1, "v1", 2);
    /* a v1 hash that is a prefix of a v2 hash is a different hash */
    add_share_ok(item, ri, "0011223344556677889900112233445566778899", "p", 3);
    add_share_ok(item, ri, "00112233445566778899aabbccddeeff00112233", "q", 4);
    assert_int_equal(shares_item_share(item, ri, 0, &sh), SHARES_OK);
    assert_string_equal(sh.hash, H64);
    text = serialize_ok(*state, item);
    assert_non_null(strstr(text, "hash=\"" H64 "\""));
    back = parse_ok(*state, text, NULL);
    assert_same_state(item, back);
    free(text);
    shares_item_free(back);
    shares_item_free(item);
}

static void shares__validate_hash__rejects_bad_hashes(void **state)
{
    static const struct {
        const char *hash, *needle;
    } cases[] = {
        {"", "not 0"},
        {"0123456789abcdef0123456789abcdef0123456", "not 39"},
        {"0123456789abcdef0123456789abcdef012345678", "not 41"},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde", "not 63"},
        {"0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0", "not 65"},
        {"0123456789abcdef0123456789abcdef0123456g", "offset 39"},
        {"g123456789abcdef0123456789abcdef01234567", "offset 0"},
        {"0123456789abcdef 123456789abcdef01234567", "offset 16"},
        {"0x23456789abcdef0123456789abcdef01234567", "offset 1"},
        {"-123456789abcdef0123456789abcdef01234567", "non-hex"},
        {"0123456789abcdef0123456789abcdef0123456\xc3\xa9", "non-hex"},
    };
    shares_error_t err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_validate_hash(cases[i].hash, &err), SHARES_EINVAL,
                     cases[i].needle);
        assert_non_null(strstr(err.message, "share_item hash"));
    }
    assert_error(&err, shares_validate_hash(NULL, &err), SHARES_EINVAL, "missing attribute 'hash'");
    assert_int_equal(shares_validate_hash(H1, &err), SHARES_OK);
    assert_int_equal(shares_validate_hash(H64, NULL), SHARES_OK);
    assert_int_equal(shares_validate_hash("x", NULL), SHARES_EINVAL);
}

static void shares__parse__rejects_short_hash(void **state)
{
    expect_parse_error(*state, one_share_xml("0123456789abcdef", "n", "1", "::1", "1"), NULL,
                       SHARES_EINVAL,
                       "share_item hash \"0123456789abcdef\" must be 40 or 64 "
                       "hex digits, not 16");
}

static void shares__parse__rejects_long_hash(void **state)
{
    expect_parse_error(*state, one_share_xml(H1 "0", "n", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "not 41");
}

static void shares__parse__rejects_non_hex_hash(void **state)
{
    expect_parse_error(
        *state, one_share_xml("z123456789abcdef0123456789abcdef01234567", "n", "1", "::1", "1"),
        NULL, SHARES_EINVAL, "non-hex character at offset 0");
}

static void shares__parse__rejects_missing_attributes(void **state)
{
    expect_parse_error(*state, one_share_xml(NULL, "n", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "missing attribute 'hash'");
    expect_parse_error(*state, one_share_xml(H1, NULL, "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "missing attribute 'name'");
    expect_parse_error(*state, one_share_xml(H1, "n", NULL, "::1", "1"), NULL, SHARES_EINVAL,
                       "missing attribute 'size'");
    expect_parse_error(*state, one_share_xml(H1, "n", "1", NULL, "1"), NULL, SHARES_EINVAL,
                       "missing attribute 'address'");
    expect_parse_error(*state, one_share_xml(H1, "n", "1", "::1", NULL), NULL, SHARES_EINVAL,
                       "missing attribute 'port'");
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'><resource/>"
                       "</user_shares>",
                       NULL, SHARES_EINVAL, "resource: missing attribute 'resource'");
}

/* ---- names and resources ---------------------------------------------- */

static void shares__validate_name__rejects_empty(void **state)
{
    shares_error_t err = {0};
    shares_item_t *item = sample_item(NULL);
    struct snapshot before;

    assert_error(&err, shares_validate_name("", 255, &err), SHARES_EINVAL,
                 "share_item name is empty");
    assert_error(&err, shares_validate_name(NULL, 255, &err), SHARES_EINVAL,
                 "missing attribute 'name'");
    take_snapshot(*state, item, &before);
    assert_error(&err, shares_item_add_share(item, 0, H3, "", 1, &err), SHARES_EINVAL, "empty");
    assert_unchanged(*state, item, &before);
    free(before.text);
    shares_item_free(item);
    expect_parse_error(*state, one_share_xml(H1, "", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "share_item name is empty");
}

static const struct {
    const char *text, *why;
} bad_utf8[] = {
    {"\xc0\xaf", "overlong"},                  /* '/' in two bytes */
    {"a\xc1\xbf", "overlong"},                 /* U+007F in two bytes */
    {"\xc0\x80", "overlong"},                  /* NUL in two bytes */
    {"\xe0\x80\xaf", "overlong"},              /* '/' in three bytes */
    {"\xe0\x9f\xbf", "overlong"},              /* U+07FF in three bytes */
    {"\xf0\x80\x80\xaf", "overlong"},          /* '/' in four bytes */
    {"\xf0\x8f\xbf\xbf", "overlong"},          /* U+FFFF in four bytes */
    {"\xed\xa0\x80", "surrogate"},             /* U+D800 */
    {"x\xed\xbf\xbf", "surrogate"},            /* U+DFFF */
    {"\xed\xa0\xbd\xed\xb8\x80", "surrogate"}, /* CESU-8 pair */
    {"\xf4\x90\x80\x80", "above U+10FFFF"},    /* U+110000 */
    {"\xf5\x80\x80\x80", "above U+10FFFF"},
    {"\xf7\xbf\xbf\xbf", "above U+10FFFF"},
    {"\xf8\x88\x80\x80\x80", "invalid byte"}, /* five-byte form */
    {"\xfe", "invalid byte"},
    {"\xff", "invalid byte"},
    {"\x80", "continuation"},
    {"ab\xbf", "continuation"},
    {"\xc3", "truncated"},
    {"abc\xc3", "truncated"},
    {"\xe6\x97", "truncated"},
    {"\xe6\x97"
     "a",
     "truncated"},
    {"\xf0\x9f\x8e", "truncated"},
    {"\xf0\x9f\x8e"
     " x",
     "truncated"},
    {"\xc3\xc3\xa9", "truncated"},
};

static void shares__validate_name__rejects_invalid_utf8(void **state)
{
    shares_error_t err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_validate_name(bad_utf8[i].text, 255, &err), SHARES_EINVAL,
                     bad_utf8[i].why);
        assert_non_null(strstr(err.message, "not valid UTF-8"));
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_validate_resource(bad_utf8[i].text, 1023, &err), SHARES_EINVAL,
                     bad_utf8[i].why);
    }
    /* byte offset of the bad sequence */
    assert_error(&err, shares_validate_name("abc\xed\xa0\x80", 0, &err), SHARES_EINVAL,
                 "at byte 3");
}

static void shares__validate_name__accepts_boundary_code_points(void **state)
{
    static const char *const ok[] = {
        "a",
        "\xc2\xa0",         /* U+00A0, first after C1 */
        "\xdf\xbf",         /* U+07FF */
        "\xe0\xa0\x80",     /* U+0800 */
        "\xed\x9f\xbf",     /* U+D7FF */
        "\xee\x80\x80",     /* U+E000 */
        "\xef\xbf\xbd",     /* U+FFFD */
        "\xef\xb7\x90",     /* U+FDD0: a noncharacter, but an XML Char */
        "\xf0\x90\x80\x80", /* U+10000 */
        "\xf4\x8f\xbf\xbf", /* U+10FFFF */
        " leading and trailing spaces ",
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        assert_int_equal(shares_validate_name(ok[i], 255, NULL), SHARES_OK);
        assert_int_equal(shares_validate_resource(ok[i], 1023, NULL), SHARES_OK);
    }
}

static void shares__validate_name__rejects_control_characters(void **state)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"a\x01", "U+0001"},
        {"\tname", "U+0009"},
        {"line\n", "U+000A"},
        {"cr\r", "U+000D"},
        {"\x1f", "U+001F"},
        {"del\x7f", "U+007F"},
        {"\xc2\x80", "U+0080"},
        {"next\xc2\x85line", "U+0085"},
        {"\xc2\x9f", "U+009F"},
        {"\xef\xbf\xbe", "\"\\xEF\\xBF\\xBE\""},
        {"x\xef\xbf\xbf", "U+FFFF, which XML does not allow, at byte 1"},
    };
    shares_error_t err;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_validate_name(cases[i].text, 255, &err), SHARES_EINVAL,
                     cases[i].needle);
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_validate_resource(cases[i].text, 1023, &err), SHARES_EINVAL,
                     cases[i].needle);
        assert_non_null(strstr(err.message, "resource resource"));
    }
}

static void shares__validate_name__enforces_max_bytes(void **state)
{
    char name[300];
    shares_error_t err = {0};
    shares_limits_t lim;
    shares_item_t *item;
    size_t ri;

    memset(name, 'x', 255);
    name[255] = '\0';
    assert_int_equal(shares_validate_name(name, 255, &err), SHARES_OK);
    name[255] = 'y';
    name[256] = '\0';
    assert_error(&err, shares_validate_name(name, 255, &err), SHARES_ELIMIT,
                 "256 bytes, over the limit of 255");
    assert_int_equal(shares_validate_name(name, 0, &err), SHARES_OK);
    /* bytes, not characters: "é" is 2 bytes */
    assert_int_equal(shares_validate_name("\xc3\xa9\xc3\xa9", 4, NULL), SHARES_OK);
    assert_int_equal(shares_validate_name("\xc3\xa9\xc3\xa9", 3, NULL), SHARES_ELIMIT);

    shares_limits_default(&lim);
    lim.max_name_bytes = 8;
    item = shares_item_new(&lim);
    ri = add_resource_ok(item, "r");
    add_share_ok(item, ri, H1, "12345678", 1);
    assert_error(&err, shares_item_add_share(item, ri, H2, "123456789", 1, &err), SHARES_ELIMIT,
                 "over the limit of 8");
    assert_int_equal(shares_item_share_count(item, ri), 1);
    shares_item_free(item);
    expect_parse_error(*state, one_share_xml(H1, "123456789", "1", "::1", "1"), &lim, SHARES_ELIMIT,
                       "share_item name");
}

static void shares__validate_resource__rejects_bad_resources(void **state)
{
    shares_error_t err = {0};
    shares_limits_t lim;
    shares_item_t *item;
    char big[1100];

    (void)state;
    assert_error(&err, shares_validate_resource("", 1023, &err), SHARES_EINVAL,
                 "resource resource is empty");
    assert_error(&err, shares_validate_resource(NULL, 1023, &err), SHARES_EINVAL,
                 "missing attribute 'resource'");
    memset(big, 'r', 1024);
    big[1024] = '\0';
    assert_error(&err, shares_validate_resource(big, 1023, &err), SHARES_ELIMIT,
                 "1024 bytes, over the limit of 1023");
    big[1023] = '\0';
    assert_int_equal(shares_validate_resource(big, 1023, &err), SHARES_OK);

    shares_limits_default(&lim);
    lim.max_resource_bytes = 4;
    item = shares_item_new(&lim);
    add_resource_ok(item, "abcd");
    assert_error(&err, shares_item_add_resource(item, "abcde", NULL, &err), SHARES_ELIMIT,
                 "over the limit of 4");
    assert_error(&err, shares_item_add_resource(item, "a\x7f", NULL, &err), SHARES_EINVAL,
                 "U+007F");
    assert_error(&err, shares_item_add_resource(item, "\xff", NULL, &err), SHARES_EINVAL,
                 "not valid UTF-8");
    assert_int_equal(shares_item_resource_count(item), 1);
    shares_item_free(item);
}

/* Character references get C1, DEL and tab past the XML parser; our
 * validation must still refuse them. */
static void shares__parse__rejects_controls_from_character_references(void **state)
{
    expect_parse_error(*state, one_share_xml(H1, "a&#x85;b", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "U+0085");
    expect_parse_error(*state, one_share_xml(H1, "a&#127;", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "U+007F");
    expect_parse_error(*state, one_share_xml(H1, "a&#9;", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "U+0009");
    expect_parse_error(*state, one_share_xml(H1, "a&#xA;", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "U+000A");
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='x&#x9f;'/></user_shares>",
                       NULL, SHARES_EINVAL, "U+009F");
}

/* Stanzas built in memory can carry any bytes; parse must check them. */
static void shares__parse__rejects_invalid_utf8_in_stanza(void **state)
{
    xmpp_ctx_t *ctx = *state;
    xmpp_stanza_t *root = xmpp_stanza_new(ctx), *res = xmpp_stanza_new(ctx),
                  *sh = xmpp_stanza_new(ctx);
    shares_item_t *out = NULL;
    shares_error_t err = {0};
    size_t i;

    xmpp_stanza_set_name(root, "user_shares");
    xmpp_stanza_set_ns(root, SHARES_NS);
    xmpp_stanza_set_name(res, "resource");
    xmpp_stanza_set_attribute(res, "resource", "r");
    xmpp_stanza_set_name(sh, "share_item");
    xmpp_stanza_set_attribute(sh, "hash", H1);
    xmpp_stanza_set_attribute(sh, "size", "1");
    xmpp_stanza_add_child_ex(root, res, 0);
    xmpp_stanza_add_child_ex(res, sh, 0);
    for (i = 0; i < sizeof bad_utf8 / sizeof bad_utf8[0]; i++) {
        xmpp_stanza_set_attribute(sh, "name", bad_utf8[i].text);
        assert_error(&err, shares_item_parse(root, NULL, &out, &err), SHARES_EINVAL,
                     bad_utf8[i].why);
        assert_null(out);
    }
    xmpp_stanza_set_attribute(sh, "name", "ok");
    xmpp_stanza_set_attribute(res, "resource", "\xed\xa0\x80");
    assert_error(&err, shares_item_parse(root, NULL, &out, &err), SHARES_EINVAL, "surrogate");
    xmpp_stanza_set_attribute(res, "resource", "r");
    assert_int_equal(shares_item_parse(root, NULL, &out, &err), SHARES_OK);
    assert_int_equal(shares_item_share_count(out, 0), 1);
    shares_item_free(out);
    xmpp_stanza_release(root);
}

static void shares__parse__rejects_malformed_xml(void **state)
{
    expect_parse_error(*state, "<user_shares xmlns='" SHARES_NS "'>", NULL, SHARES_EINVAL,
                       "well-formed");
    expect_parse_error(*state, "not xml at all", NULL, SHARES_EINVAL, "well-formed");
    expect_parse_error(*state, "", NULL, SHARES_EINVAL, "well-formed");
    /* invalid UTF-8 in the text never reaches our validators */
    expect_parse_error(*state, one_share_xml(H1, "\xc0\xaf", "1", "::1", "1"), NULL, SHARES_EINVAL,
                       "well-formed");
}

/* ---- sizes and ports -------------------------------------------------- */

static void shares__parse_size__accepts_decimal(void **state)
{
    static const struct {
        const char *text;
        uint64_t value;
    } cases[] = {
        {"0", 0},
        {"1", 1},
        {"734003200", 734003200},
        {"007", 7},
        {"9223372036854775807", INT64_MAX},
        {"0009223372036854775807", INT64_MAX},
    };
    uint64_t v;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        v = 12345;
        assert_int_equal(shares_parse_size(cases[i].text, &v, NULL), SHARES_OK);
        assert_true(v == cases[i].value);
    }
}

static void shares__parse_size__rejects_invalid(void **state)
{
    static const struct {
        const char *text, *needle;
    } cases[] = {
        {"", "share_item size is empty"},
        {"-1", "not a decimal number"},
        {"+1", "not a decimal number"},
        {" 1", "not a decimal number"},
        {"1 ", "not a decimal number"},
        {"1.5", "not a decimal number"},
        {"1e3", "not a decimal number"},
        {"0x10", "not a decimal number"},
        {"\xd9\xa1", "not a decimal number"}, /* ARABIC-INDIC DIGIT ONE */
        {"9223372036854775808", "over the maximum of 9223372036854775807"},
        {"18446744073709551615", "over the maximum"},
        {"18446744073709551616", "over the maximum"},
        {"99999999999999999999999999999999", "over the maximum"},
    };
    shares_error_t err;
    uint64_t v = 77;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_parse_size(cases[i].text, &v, &err), SHARES_EINVAL,
                     cases[i].needle);
        assert_true(v == 77);
        expect_parse_error(*state, one_share_xml(H1, "n", cases[i].text, "::1", "1"), NULL,
                           SHARES_EINVAL, cases[i].needle);
    }
    assert_error(&err, shares_parse_size(NULL, &v, &err), SHARES_EINVAL,
                 "missing attribute 'size'");
}

static void shares__add_share__rejects_size_over_int64_max(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    shares_error_t err = {0};
    size_t ri = add_resource_ok(item, "r");

    (void)state;
    assert_error(&err, shares_item_add_share(item, ri, H1, "n", (uint64_t)INT64_MAX + 1, &err),
                 SHARES_EINVAL, "9223372036854775808");
    assert_error(&err, shares_item_add_share(item, ri, H1, "n", UINT64_MAX, &err), SHARES_EINVAL,
                 "share_item size");
    add_share_ok(item, ri, H1, "n", INT64_MAX);
    assert_int_equal(shares_item_share_count(item, ri), 1);
    shares_item_free(item);
}

static void shares__parse_port__accepts_and_rejects(void **state)
{
    static const struct {
        const char *text, *needle;
    } bad[] = {
        {"0", "out of range 1..65535"},
        {"65536", "out of range"},
        {"99999999999999999999999", "out of range"},
        {"", "ip_address port is empty"},
        {"-1", "not a decimal number"},
        {"+80", "not a decimal number"},
        {"80 ", "not a decimal number"},
        {"http", "not a decimal number"},
        {"0x50", "not a decimal number"},
    };
    shares_error_t err;
    uint16_t port = 0;
    size_t i;

    assert_int_equal(shares_parse_port("1", &port, NULL), SHARES_OK);
    assert_int_equal(port, 1);
    assert_int_equal(shares_parse_port("65535", &port, NULL), SHARES_OK);
    assert_int_equal(port, 65535);
    assert_int_equal(shares_parse_port("06881", &port, NULL), SHARES_OK);
    assert_int_equal(port, 6881);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_parse_port(bad[i].text, &port, &err), SHARES_EINVAL,
                     bad[i].needle);
        expect_parse_error(*state, one_share_xml(H1, "n", "1", "::1", bad[i].text), NULL,
                           SHARES_EINVAL, bad[i].needle);
    }
    assert_error(&err, shares_parse_port(NULL, &port, &err), SHARES_EINVAL,
                 "missing attribute 'port'");
}

static void shares__add_address__rejects_port_out_of_range(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    shares_error_t err = {0};
    size_t ri = add_resource_ok(item, "r");

    (void)state;
    assert_error(&err, shares_item_add_address(item, ri, "::1", 0, &err), SHARES_EINVAL,
                 "port 0 is out of range");
    assert_error(&err, shares_item_add_address(item, ri, "::1", 65536, &err), SHARES_EINVAL,
                 "port 65536");
    assert_error(&err, shares_item_add_address(item, ri, "::1", (unsigned long)-1, &err),
                 SHARES_EINVAL, "out of range");
    assert_int_equal(shares_item_address_count(item, ri), 0);
    add_address_ok(item, ri, "::1", 1);
    add_address_ok(item, ri, "::1", 65535);
    shares_item_free(item);
}

/* ---- addresses -------------------------------------------------------- */

static void shares__canon_address__accepts_ipv4_and_ipv6(void **state)
{
    static const struct {
        const char *in, *out;
    } cases[] = {
        {"203.0.113.7", "203.0.113.7"},
        {"0.0.0.0", "0.0.0.0"},
        {"255.255.255.255", "255.255.255.255"},
        {"2001:DB8:0:0::7", "2001:db8::7"},
        {"2001:0db8:0000:0000:0000:0000:0000:0007", "2001:db8::7"},
        {"2001:db8:0:0:1:0:0:1", "2001:db8::1:0:0:1"},
        {"0:0:0:0:0:0:0:1", "::1"},
        {"::", "::"},
        {"FE80::1", "fe80::1"},
        {"::ffff:192.0.2.1", "::ffff:192.0.2.1"},
        {"::FFFF:c000:0201", "::ffff:192.0.2.1"},
        {"2001:db8:85a3:8d3:1319:8a2e:370:7348", "2001:db8:85a3:8d3:1319:8a2e:370:7348"},
    };
    char out[SHARES_ADDR_MAX];
    shares_error_t err = {0};
    shares_address_t ad;
    shares_limits_t lim = no_limits();
    shares_item_t *item = shares_item_new(&lim);
    size_t i, ri = add_resource_ok(item, "r");

    (void)state;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(out, 'z', sizeof out);
        if (shares_canon_address(cases[i].in, out, &err) != SHARES_OK)
            fail_msg("%s: %s", cases[i].in, err.message);
        assert_string_equal(out, cases[i].out);
        add_address_ok(item, ri, cases[i].in, 1000 + i);
        assert_int_equal(shares_item_address(item, ri, i, &ad), SHARES_OK);
        assert_string_equal(ad.address, cases[i].out);
        assert_int_equal(ad.port, 1000 + i);
    }
    shares_item_free(item);
}

static void shares__canon_address__rejects_invalid(void **state)
{
    static const struct {
        const char *in, *needle;
    } cases[] = {
        {"", "ip_address address is empty"},
        {"fe80::1%eth0", "zone id"},
        {"fe80::1%25eth0", "zone id"},
        {"[2001:db8::7]", "without brackets"},
        {"[::1]:6881", "without brackets"},
        {"example.com", "not an IPv4 or IPv6 literal"},
        {"localhost", "not an IPv4 or IPv6 literal"},
        {"256.0.0.1", "not an IPv4 or IPv6"},
        {"1.2.3", "not an IPv4 or IPv6"},
        {"1.2.3.4.5", "not an IPv4 or IPv6"},
        {"01.2.3.4", "not an IPv4 or IPv6"},
        {"0x7f.0.0.1", "not an IPv4 or IPv6"},
        {"1.2.3.4:80", "not an IPv4 or IPv6"},
        {" 1.2.3.4", "not an IPv4 or IPv6"},
        {"1.2.3.4 ", "not an IPv4 or IPv6"},
        {"2001:db8::7::1", "not an IPv4 or IPv6"},
        {"2001:db8:0:0:0:0:0:0:7", "not an IPv4 or IPv6"},
        {"12345::1", "not an IPv4 or IPv6"},
        {"::1\n", "\\x0A"},
    };
    char out[SHARES_ADDR_MAX];
    shares_error_t err;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        memset(&err, 0, sizeof err);
        assert_error(&err, shares_canon_address(cases[i].in, out, &err), SHARES_EINVAL,
                     cases[i].needle);
        if (strchr(cases[i].in, '\n'))
            continue; /* attribute normalization would turn it into a space */
        expect_parse_error(*state, one_share_xml(H1, "n", "1", cases[i].in, "1"), NULL,
                           SHARES_EINVAL, cases[i].needle);
    }
    assert_error(&err, shares_canon_address(NULL, out, &err), SHARES_EINVAL,
                 "missing attribute 'address'");
}

static void shares__parse__canonicalizes_ipv6(void **state)
{
    shares_item_t *item =
        parse_ok(*state, one_share_xml(H1, "n", "1", "2001:DB8:0:0::7", "80"), NULL);
    shares_address_t ad;

    assert_int_equal(shares_item_address(item, 0, 0, &ad), SHARES_OK);
    assert_string_equal(ad.address, "2001:db8::7");
    assert_int_equal(ad.port, 80);
    shares_item_free(item);
}

/* ---- duplicates ------------------------------------------------------- */

static void shares__add_resource__rejects_duplicate(void **state)
{
    shares_item_t *item = sample_item(NULL);
    shares_error_t err = {0};
    struct snapshot before;
    size_t ri = 99;

    take_snapshot(*state, item, &before);
    assert_error(&err, shares_item_add_resource(item, "laptop", &ri, &err), SHARES_EINVAL,
                 "duplicate resource \"laptop\"");
    assert_int_equal(ri, 99);
    assert_unchanged(*state, item, &before);
    /* resource names are bytewise: case matters */
    add_resource_ok(item, "Laptop");
    free(before.text);
    shares_item_free(item);
}

static void shares__add_share__rejects_duplicate_hash(void **state)
{
    shares_item_t *item = sample_item(NULL);
    shares_error_t err = {0};
    struct snapshot before;

    take_snapshot(*state, item, &before);
    assert_error(&err, shares_item_add_share(item, 0, H1, "other.mkv", 5, &err), SHARES_EINVAL,
                 "duplicate share_item hash \"" H1 "\"");
    assert_non_null(strstr(err.message, "resource \"laptop\""));
    assert_error(&err,
                 shares_item_add_share(item, 0, "0123456789ABCDEF0123456789ABCDEF01234567",
                                       "holiday.mkv", 734003200, &err),
                 SHARES_EINVAL, "duplicate");
    assert_unchanged(*state, item, &before);
    free(before.text);
    /* the same hash in another resource is fine */
    add_share_ok(item, 1, H1, "holiday.mkv", 734003200);
    shares_item_free(item);
}

static void shares__add_address__rejects_duplicate(void **state)
{
    shares_item_t *item = sample_item(NULL);
    shares_error_t err = {0};
    struct snapshot before;

    take_snapshot(*state, item, &before);
    assert_error(&err, shares_item_add_address(item, 0, "203.0.113.7", 6881, &err), SHARES_EINVAL,
                 "duplicate ip_address 203.0.113.7 port 6881");
    assert_error(&err, shares_item_add_address(item, 0, "2001:0DB8::0:7", 6881, &err),
                 SHARES_EINVAL, "duplicate ip_address 2001:db8::7");
    assert_unchanged(*state, item, &before);
    free(before.text);
    add_address_ok(item, 0, "203.0.113.7", 6882);        /* other port */
    add_address_ok(item, 0, "203.0.113.8", 6881);        /* other address */
    add_address_ok(item, 1, "203.0.113.7", 6881);        /* other resource */
    add_address_ok(item, 0, "::ffff:203.0.113.7", 6881); /* v6, not v4 */
    shares_item_free(item);
}

static void shares__parse__rejects_duplicates(void **state)
{
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='a'/><resource resource='b'/>"
                       "<resource resource='a'/></user_shares>",
                       NULL, SHARES_EINVAL, "duplicate resource \"a\"");
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='a'>"
                       "<share_item hash='" H1 "' name='x' size='1'/>"
                       "<share_item hash='" H2 "' name='y' size='1'/>"
                       "<share_item hash='0123456789ABCDEF0123456789ABCDEF"
                       "01234567' name='z' size='2'/>"
                       "</resource></user_shares>",
                       NULL, SHARES_EINVAL,
                       "resource \"a\", share_item #3: duplicate share_item "
                       "hash");
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='a'>"
                       "<ip_address address='::1' port='1'/>"
                       "<ip_address address='0::1' port='01'/>"
                       "</resource></user_shares>",
                       NULL, SHARES_EINVAL,
                       "resource \"a\", ip_address #2: duplicate ip_address "
                       "::1 port 1");
}

/* ---- parse structure -------------------------------------------------- */

static void shares__parse__rejects_wrong_root_element(void **state)
{
    xmpp_stanza_t *text = xmpp_stanza_new(*state);
    shares_item_t *out = NULL;
    shares_error_t err = {0};

    expect_parse_error(*state, "<shares xmlns='" SHARES_NS "'/>", NULL, SHARES_EINVAL,
                       "root element is \"shares\", expected user_shares");
    expect_parse_error(*state, "<item id='current'><user_shares xmlns='" SHARES_NS "'/></item>",
                       NULL, SHARES_EINVAL, "root element is \"item\"");
    xmpp_stanza_set_text(text, "user_shares");
    assert_error(&err, shares_item_parse(text, NULL, &out, &err), SHARES_EINVAL,
                 "expected a <user_shares/> element");
    assert_null(out);
    xmpp_stanza_release(text);
}

static void shares__parse__rejects_wrong_namespace(void **state)
{
    expect_parse_error(*state, "<user_shares xmlns='urn:other'/>", NULL, SHARES_EINVAL,
                       "user_shares is in namespace \"urn:other\", expected "
                       "\"" SHARES_NS "\"");
    expect_parse_error(*state, "<user_shares xmlns='" SHARES_NS "+notify'/>", NULL, SHARES_EINVAL,
                       "in namespace");
    expect_parse_error(*state, "<user_shares/>", NULL, SHARES_EINVAL,
                       "user_shares has no namespace");
    expect_parse_error(*state, "<s:user_shares xmlns:s='urn:other'/>", NULL, SHARES_EINVAL,
                       "in namespace \"urn:other\"");
}

static void shares__parse__accepts_prefixed_namespace(void **state)
{
    shares_item_t *item = parse_ok(*state,
                                   "<s:user_shares xmlns:s='" SHARES_NS "'>"
                                   "<s:resource resource='r'>"
                                   "<s:share_item hash='" H1 "' name='n' size='1'/>"
                                   "</s:resource></s:user_shares>",
                                   NULL);

    assert_int_equal(shares_item_resource_count(item), 1);
    assert_int_equal(shares_item_share_count(item, 0), 1);
    shares_item_free(item);
}

static void shares__parse__ignores_unknown_elements_and_text(void **state)
{
    static const char xml[] = "<user_shares xmlns='" SHARES_NS "'>"
                              "some text"
                              "<resource xmlns='urn:other' resource='foreign'/>"
                              "<share_item hash='" H2 "' name='stray' size='1'/>"
                              "<future feature='x'><resource resource='nested'/></future>"
                              "<resource resource='r' extra='ignored'>"
                              "  text <!-- comment -->"
                              "  <share_item hash='" H1 "' name='n' size='1' mtime='123'/>"
                              "  <share_item xmlns='urn:other' hash='bad' name='' size='-1'/>"
                              "  <ip_address address='::1' port='1' proto='utp'/>"
                              "  <ip_address xmlns='urn:other' address='bad' port='0'/>"
                              "  <magnet uri='x'/>"
                              "  <share_item hash='" H3 "' name='m' size='2'><child/>t</share_item>"
                              "</resource>"
                              "</user_shares>";
    shares_item_t *item = parse_ok(*state, xml, NULL);

    assert_int_equal(shares_item_resource_count(item), 1);
    assert_string_equal(shares_item_resource(item, 0), "r");
    assert_int_equal(shares_item_share_count(item, 0), 2);
    assert_int_equal(shares_item_address_count(item, 0), 1);
    shares_item_free(item);
}

static void shares__parse__error_names_location(void **state)
{
    shares_error_t err = {0};
    shares_item_t *out = NULL;
    int rc = shares_item_parse_text(*state,
                                    "<user_shares xmlns='" SHARES_NS "'>"
                                    "<resource resource='laptop'>"
                                    "<share_item hash='" H1 "' name='ok' size='1'/>"
                                    "<ip_address address='::1' port='1'/>"
                                    "<share_item hash='" H2 "' name='bad' size='12x'/>"
                                    "</resource></user_shares>",
                                    NULL, &out, &err);

    assert_error(&err, rc, SHARES_EINVAL,
                 "resource \"laptop\", share_item #2: share_item size "
                 "\"12x\" is not a decimal number");
    assert_null(out);
}

/* ---- whole or nothing ------------------------------------------------- */

static void shares__add__failure_leaves_item_unchanged(void **state)
{
    shares_limits_t lim;
    shares_item_t *item;
    shares_error_t err = {0};
    struct snapshot before;
    size_t ri = 77;

    shares_limits_default(&lim);
    lim.max_resources = 2;
    lim.max_shares = 2;
    lim.max_addresses = 2;
    item = sample_item(&lim);
    take_snapshot(*state, item, &before);

    assert_int_not_equal(shares_item_add_resource(item, "third", &ri, &err), 0);
    assert_int_not_equal(shares_item_add_resource(item, "", &ri, &err), 0);
    assert_int_equal(ri, 77);
    assert_int_not_equal(shares_item_add_share(item, 0, H3, "n", 1, &err), 0);
    assert_int_not_equal(shares_item_add_share(item, 1, "xyz", "n", 1, &err), 0);
    assert_int_not_equal(shares_item_add_share(item, 1, H2, "\x01", 1, &err), 0);
    assert_int_not_equal(shares_item_add_share(item, 1, H2, "n", UINT64_MAX, &err), 0);
    assert_int_not_equal(shares_item_add_address(item, 0, "::2", 1, &err), 0);
    assert_int_not_equal(shares_item_add_address(item, 1, "fe80::1%lo", 1, &err), 0);
    assert_int_not_equal(shares_item_add_address(item, 1, "::2", 0, &err), 0);
    assert_unchanged(*state, item, &before);
    free(before.text);
    shares_item_free(item);
}

static void shares__parse_resource_children__is_whole_or_nothing(void **state)
{
    static const char *const bad_children[] = {
        /* valid children first, then a bad one */
        "<x xmlns='" SHARES_NS "'>"
        "<share_item hash='" H3 "' name='new1' size='1'/>"
        "<ip_address address='192.0.2.99' port='1'/>"
        "<share_item hash='" H3 "' name='dup of new1' size='3'/></x>",
        "<x xmlns='" SHARES_NS "'>"
        "<share_item hash='" H3 "' name='new1' size='1'/>"
        "<ip_address address='192.0.2.99' port='1'/>"
        "<ip_address address='192.0.2.98' port='0'/></x>",
        "<x xmlns='" SHARES_NS "'>"
        "<ip_address address='192.0.2.99' port='1'/>"
        "<share_item hash='" H1 "' name='dup of existing' size='1'/></x>",
        "<x xmlns='" SHARES_NS "'>"
        "<share_item hash='" H3 "' name='new1' size='1'/>"
        "<share_item hash='" H64 "' name='over max_shares' size='1'/></x>",
    };
    shares_limits_t lim;
    shares_item_t *item;
    shares_error_t err = {0};
    struct snapshot before;
    xmpp_stanza_t *st;
    size_t i;

    shares_limits_default(&lim);
    lim.max_shares = 3;
    item = sample_item(&lim);
    take_snapshot(*state, item, &before);
    for (i = 0; i < sizeof bad_children / sizeof bad_children[0]; i++) {
        st = xmpp_stanza_new_from_string(*state, bad_children[i]);
        assert_non_null(st);
        assert_int_not_equal(shares_item_parse_resource_children(item, 0, st, NULL, &err), 0);
        assert_safe_message(&err);
        assert_unchanged(*state, item, &before);
        xmpp_stanza_release(st);
    }
    /* and the item still accepts the good part */
    st = xmpp_stanza_new_from_string(*state, "<x xmlns='" SHARES_NS "'>"
                                             "<share_item hash='" H3 "' name='new1' size='1'/>"
                                             "<ip_address address='192.0.2.99' port='1'/></x>");
    assert_int_equal(shares_item_parse_resource_children(item, 0, st, NULL, &err), 0);
    assert_int_equal(shares_item_share_count(item, 0), 3);
    assert_int_equal(shares_item_address_count(item, 0), 3);
    xmpp_stanza_release(st);
    free(before.text);
    shares_item_free(item);
}

static void shares__parse_resource_children__uses_given_namespace(void **state)
{
    shares_item_t *item = shares_item_new(NULL);
    shares_error_t err = {0};
    shares_share_t sh;
    size_t ri = add_resource_ok(item, "laptop");
    xmpp_stanza_t *st = xmpp_stanza_new_from_string(
        *state, "<register xmlns='" AGENT_NS "' seq='3'>"
                "<share_item hash='" H1 "' name='agent' size='1'/>"
                "<share_item xmlns='" SHARES_NS "' hash='" H2 "' name='wrong ns' size='1'/>"
                "<ip_address address='192.0.2.1' port='6881'/>"
                "</register>");

    assert_non_null(st);
    assert_int_equal(shares_item_parse_resource_children(item, ri, st, AGENT_NS, &err), 0);
    assert_int_equal(shares_item_share_count(item, ri), 1);
    assert_int_equal(shares_item_share(item, ri, 0, &sh), SHARES_OK);
    assert_string_equal(sh.name, "agent");
    assert_int_equal(shares_item_address_count(item, ri), 1);
    /* with the default namespace only the SHARES_NS child matches */
    assert_int_equal(shares_item_parse_resource_children(item, ri, st, NULL, &err), 0);
    assert_int_equal(shares_item_share_count(item, ri), 2);
    xmpp_stanza_release(st);
    shares_item_free(item);
}

/* Children built without xmlns (as shares_item_build() makes them) are
 * taken to be in the namespace asked for. */
static void shares__parse_resource_children__accepts_built_resource(void **state)
{
    shares_item_t *item = sample_item(NULL), *copy = shares_item_new(NULL);
    xmpp_stanza_t *root = shares_item_build(item, *state), *res;
    shares_error_t err = {0};
    size_t ri;

    for (res = xmpp_stanza_get_children(root); res; res = xmpp_stanza_get_next(res)) {
        ri = add_resource_ok(copy, xmpp_stanza_get_attribute(res, "resource"));
        assert_int_equal(shares_item_parse_resource_children(copy, ri, res, NULL, &err), 0);
    }
    assert_same_state(item, copy);
    xmpp_stanza_release(root);
    shares_item_free(copy);
    shares_item_free(item);
}

/* ---- limits ----------------------------------------------------------- */

static void shares__limits__counts(void **state)
{
    shares_limits_t lim;
    shares_item_t *item;
    shares_error_t err = {0};
    size_t ri;

    shares_limits_default(&lim);
    lim.max_resources = 2;
    lim.max_shares = 2;
    lim.max_addresses = 1;
    item = shares_item_new(&lim);
    ri = add_resource_ok(item, "a");
    add_resource_ok(item, "b");
    assert_error(&err, shares_item_add_resource(item, "c", NULL, &err), SHARES_ELIMIT,
                 "too many resources: the limit is 2");
    add_share_ok(item, ri, H1, "1", 1);
    add_share_ok(item, ri, H2, "2", 2);
    assert_error(&err, shares_item_add_share(item, ri, H3, "3", 3, &err), SHARES_ELIMIT,
                 "too many shares in resource \"a\": the "
                 "limit is 2");
    add_address_ok(item, ri, "::1", 1);
    assert_error(&err, shares_item_add_address(item, ri, "::2", 1, &err), SHARES_ELIMIT,
                 "too many addresses in resource \"a\"");
    /* a duplicate is reported as such even at the limit */
    assert_error(&err, shares_item_add_share(item, ri, H1, "1", 1, &err), SHARES_EINVAL,
                 "duplicate");
    assert_int_equal(shares_item_resource_count(item), 2);
    assert_int_equal(shares_item_share_count(item, ri), 2);
    assert_int_equal(shares_item_address_count(item, ri), 1);
    shares_item_free(item);

    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='a'/><resource resource='b'/>"
                       "<resource resource='c'/></user_shares>",
                       &lim, SHARES_ELIMIT, "too many resources");
    expect_parse_error(*state,
                       "<user_shares xmlns='" SHARES_NS "'>"
                       "<resource resource='a'>"
                       "<ip_address address='::1' port='1'/>"
                       "<ip_address address='::2' port='1'/>"
                       "</resource></user_shares>",
                       &lim, SHARES_ELIMIT, "too many addresses");
}

static void shares__limits__zero_means_unlimited(void **state)
{
    shares_limits_t lim = no_limits();
    shares_item_t *item = shares_item_new(&lim);
    char hash[SHARES_HASH_MAX], addr[SHARES_ADDR_MAX], rname[16];
    char *big = malloc(5000), *text;
    size_t i, ri = 0;

    assert_non_null(big);
    for (i = 0; i < 40; i++) {
        snprintf(rname, sizeof rname, "r%zu", i);
        ri = add_resource_ok(item, rname);
    }
    for (i = 0; i < 2500; i++) {
        snprintf(hash, sizeof hash, "%040zx", i);
        add_share_ok(item, ri, hash, "n", i);
    }
    for (i = 0; i < 300; i++) {
        snprintf(addr, sizeof addr, "2001:db8::%zx", i);
        add_address_ok(item, ri, addr, 6881);
    }
    memset(big, 'b', 4999);
    big[4999] = '\0';
    add_share_ok(item, ri, H64, big, 1);
    add_resource_ok(item, big);
    text = serialize_ok(*state, item);
    assert_true(strlen(text) > SHARES_DEFAULT_MAX_ITEM_BYTES);
    free(text);
    free(big);
    shares_item_free(item);
}

/* The add that would make the item longer than max_item_bytes as Prosody
 * re-serializes it fails, and the item at the limit is exactly
 * max_item_bytes long there: the module's size accounting matches what
 * Prosody writes, every escape included (' takes 6 bytes, not 1). */
typedef void (*item_builder_fn)(shares_item_t *item, int last);

static void build_escaped(shares_item_t *item, int last)
{
    size_t ri = add_resource_ok(item, "r&<\"'>");

    add_share_ok(item, ri, H1, "\"quoted\" <tag> & 'apos' \xe6\x97\xa5", 9);
    add_address_ok(item, ri, "2001:db8::1", 65535);
    if (last == 's')
        add_share_ok(item, ri, H64, "last & <one>", 1234567890);
    else if (last == 'a')
        add_address_ok(item, ri, "10.0.0.1", 1);
    else if (last == 'r')
        add_resource_ok(item, "z\"z");
}

static void build_first_child(shares_item_t *item, int last)
{
    size_t ri = add_resource_ok(item, "emp'ty");

    /* first child of an empty <resource/>, and first resource of all */
    if (last == 's')
        add_share_ok(item, ri, H1, "x", 0);
    else if (last == 'a')
        add_address_ok(item, ri, "1.2.3.4", 80);
    else if (last == 'r')
        add_resource_ok(item, "second");
}

static void check_item_bytes_limit(xmpp_ctx_t *ctx, item_builder_fn build, int last)
{
    shares_limits_t lim = no_limits();
    shares_item_t *item = shares_item_new(&lim);
    shares_error_t err = {0};
    size_t len;
    char *text, *buf = NULL;
    int rc;

    build(item, last);
    text = serialize_ok(ctx, item);
    len = prosody_len(ctx, text);
    assert_true(len > strlen(text)); /* every build has an apostrophe */
    shares_item_free(item);

    lim.max_item_bytes = len; /* exactly fits */
    item = shares_item_new(&lim);
    build(item, last);
    free(text);
    text = serialize_ok(ctx, item);
    assert_int_equal(prosody_len(ctx, text), len);
    free(text);
    shares_item_free(item);

    lim.max_item_bytes = len - 1; /* the last add must fail */
    item = shares_item_new(&lim);
    build(item, 0);
    if (last == 's')
        rc = shares_item_add_share(item, 0, build == build_escaped ? H64 : H1,
                                   build == build_escaped ? "last & <one>" : "x",
                                   build == build_escaped ? 1234567890 : 0, &err);
    else if (last == 'a')
        rc = shares_item_add_address(item, 0, build == build_escaped ? "10.0.0.1" : "1.2.3.4",
                                     build == build_escaped ? 1 : 80, &err);
    else
        rc = shares_item_add_resource(item, build == build_escaped ? "z\"z" : "second", NULL, &err);
    assert_error(&err, rc, SHARES_ELIMIT, "over the limit of");
    assert_non_null(strstr(err.message, "user_shares would be"));
    assert_non_null(strstr(err.message, "as servers serialize it"));
    assert_int_equal(shares_item_serialize(item, ctx, &buf, &len, &err), SHARES_OK);
    free(buf);
    shares_item_free(item);
}

static void shares__limits__item_bytes_exact(void **state)
{
    static const int lasts[] = {'s', 'a', 'r'};
    size_t i;

    for (i = 0; i < 3; i++) {
        check_item_bytes_limit(*state, build_escaped, lasts[i]);
        check_item_bytes_limit(*state, build_first_child, lasts[i]);
    }
}

static void shares__limits__item_bytes_on_parse(void **state)
{
    shares_limits_t lim;
    shares_item_t *item = sample_item(NULL);
    char *text = serialize_ok(*state, item);

    shares_limits_default(&lim);
    lim.max_item_bytes = prosody_len(*state, text);
    shares_item_free(item);
    item = parse_ok(*state, text, &lim);
    shares_item_free(item);
    lim.max_item_bytes = prosody_len(*state, text) - 1;
    expect_parse_error(*state, text, &lim, SHARES_ELIMIT, "user_shares would be");
    /* an empty item is never over a sane limit */
    lim.max_item_bytes = strlen(EMPTY_TEXT);
    item = parse_ok(*state, EMPTY_TEXT, &lim);
    shares_item_free(item);
    free(text);
}

/* Random items made of every character the servers escape differently:
 * the xml size is exactly the length of Prosody's re-serialization, at
 * least fast_xml's, and the term size exactly ejabberd's payload measure;
 * the canonical size is the canonical text's length. */
static void shares__size__bounds_servers_serializations(void **state)
{
    static const char *const pieces[] = {
        "'",      "'",   "'", "\"", "&", "<", ">", "a", " ", "\xc3\xbc", "\xf0\x9f\x8e\xac",
        "&apos;", ".mkv"};
    static const char *const addrs[] = {"192.0.2.1", "2001:db8::7", "10.0.0.1", "fd00::1:2:3",
                                        "::ffff:198.51.100.9"};
    xmpp_ctx_t *ctx = *state;
    shares_limits_t lim = no_limits();
    unsigned seed = 4242;
    int round;

    for (round = 0; round < 300; round++) {
        shares_item_t *item = shares_item_new(&lim);
        shares_error_t err;
        shares_size_t size;
        char *text = NULL, *pro, *fx, name[256], hash[65];
        size_t len = 0, ri;
        int nres, r, k, p, d;

        assert_non_null(item);
        nres = (int)(rand_r(&seed) % 5);
        for (r = 0; r < nres; r++) {
            int nparts = 1 + (int)(rand_r(&seed) % 8);
            name[0] = '\0';
            for (p = 0; p < nparts; p++)
                strcat(name, pieces[rand_r(&seed) % (sizeof pieces / sizeof *pieces)]);
            if (shares_item_add_resource(item, name, &ri, &err) != SHARES_OK)
                continue; /* duplicate name */
            for (k = (int)(rand_r(&seed) % 10); k > 0; k--) {
                int hlen = rand_r(&seed) % 2 ? 40 : 64;
                for (d = 0; d < hlen; d++)
                    hash[d] = "0123456789abcdef"[rand_r(&seed) % 16];
                hash[hlen] = '\0';
                name[0] = '\0';
                nparts = 1 + (int)(rand_r(&seed) % 20);
                for (p = 0; p < nparts; p++)
                    strcat(name, pieces[rand_r(&seed) % (sizeof pieces / sizeof *pieces)]);
                (void)shares_item_add_share(item, ri, hash, name, (uint64_t)rand_r(&seed), &err);
            }
            for (k = (int)(rand_r(&seed) % 3); k > 0; k--)
                (void)shares_item_add_address(item, ri,
                                              addrs[rand_r(&seed) % (sizeof addrs / sizeof *addrs)],
                                              1 + rand_r(&seed) % 65535, &err);
        }
        assert_int_equal(shares_item_write(item, &text, &len, &err), SHARES_OK);
        shares_item_size(item, &size);
        pro = reserialize(ctx, text, SER_PROSODY);
        fx = reserialize(ctx, text, SER_FAST_XML);
        assert_int_equal(size.canonical, len);
        assert_int_equal(size.xml, strlen(pro));
        assert_true(size.xml >= strlen(fx));
        assert_true(size.xml >= size.canonical);
        assert_int_equal(size.term, ejabberd_payload_size(ctx, text));
        free(pro);
        free(fx);
        free(text);
        shares_item_free(item);
    }
}

/* The attack: names made of apostrophes are 5 times longer once a server
 * has escaped them. Filled up to max_item_bytes, the item as Prosody sends
 * it to contacts stays within the limit; the canonical text that used to
 * be counted is a fraction of it. */
static void shares__limits__apostrophes_count_six_bytes(void **state)
{
    xmpp_ctx_t *ctx = *state;
    shares_limits_t lim;
    shares_item_t *item;
    shares_error_t err = {0};
    shares_size_t size;
    char name[256], hash[41], *text;
    size_t ri, n = 0;
    int rc;

    shares_limits_default(&lim);
    lim.max_shares = 0;
    memset(name, '\'', 255);
    name[255] = '\0';
    item = shares_item_new(&lim);
    ri = add_resource_ok(item, "laptop");
    for (;;) {
        snprintf(hash, sizeof hash, "%040zx", n);
        rc = shares_item_add_share(item, ri, hash, name, 1, &err);
        if (rc != SHARES_OK)
            break;
        n++;
    }
    assert_error(&err, rc, SHARES_ELIMIT, "as servers serialize it, over the limit of 65536");
    text = serialize_ok(ctx, item);
    shares_item_size(item, &size);
    assert_true(prosody_len(ctx, text) <= SHARES_DEFAULT_MAX_ITEM_BYTES);
    assert_int_equal(size.xml, prosody_len(ctx, text));
    /* the last share would not have fitted, and the canonical text (what
     * was counted before) is less than a third of the limit */
    assert_true(size.xml + 255 * 6 + 100 > SHARES_DEFAULT_MAX_ITEM_BYTES);
    assert_true(strlen(text) < SHARES_DEFAULT_MAX_ITEM_BYTES / 3);
    assert_true(n < 50);
    free(text);
    shares_item_free(item);
}

/* Short plain names weigh more in ejabberd's term measure than in XML:
 * with max_item_bytes at its configurable maximum the item stops at
 * ejabberd's payload limit, before its XML reaches max_item_bytes. */
static void shares__limits__ejabberd_payload_measure(void **state)
{
    xmpp_ctx_t *ctx = *state;
    shares_limits_t lim = no_limits();
    shares_item_t *item;
    shares_error_t err = {0};
    shares_size_t size;
    char hash[41], name[16], *text;
    size_t ri, n = 0;
    int rc;

    lim.max_item_bytes = 240000;
    item = shares_item_new(&lim);
    ri = add_resource_ok(item, "r");
    for (;;) {
        snprintf(hash, sizeof hash, "%040zx", n);
        snprintf(name, sizeof name, "%zu", n);
        rc = shares_item_add_share(item, ri, hash, name, 1, &err);
        if (rc != SHARES_OK)
            break;
        n++;
    }
    assert_error(&err, rc, SHARES_ELIMIT, "by ejabberd's measure of a PEP payload");
    shares_item_size(item, &size);
    text = serialize_ok(ctx, item);
    assert_int_equal(size.term, ejabberd_payload_size(ctx, text));
    assert_true(size.term <= SHARES_EJABBERD_MAX_PAYLOAD);
    assert_true(size.term + 130 > SHARES_EJABBERD_MAX_PAYLOAD);
    assert_true(size.xml < 240000);
    free(text);
    /* without max_item_bytes no size limit applies at all */
    lim.max_item_bytes = 0;
    shares_item_free(item);
    item = shares_item_new(&lim);
    ri = add_resource_ok(item, "r");
    for (n = 0; n < 4000; n++) {
        snprintf(hash, sizeof hash, "%040zx", n);
        add_share_ok(item, ri, hash, "x", 1);
    }
    shares_item_size(item, &size);
    assert_true(size.term > SHARES_EJABBERD_MAX_PAYLOAD);
    shares_item_free(item);
}

static void shares__size__empty_and_null(void **state)
{
    xmpp_ctx_t *ctx = *state;
    shares_item_t *item = shares_item_new(NULL);
    shares_size_t size;

    shares_item_size(item, &size);
    assert_int_equal(size.canonical, strlen(EMPTY_TEXT));
    assert_int_equal(size.xml, strlen(EMPTY_TEXT));
    assert_int_equal(size.term, ejabberd_payload_size(ctx, EMPTY_TEXT));
    shares_item_size(NULL, &size);
    assert_int_equal(size.canonical + size.xml + size.term, 0);
    shares_item_size(item, NULL); /* no crash */
    shares_item_free(item);
}

/* ---- screening of what contacts are shown ---------------------------- */

/* Each class of refused invisible formatting character, in a name and in
 * a resource: refused, the code point named, the value quoted with the
 * character escaped (so that the message itself cannot be reordered). */
static void shares__screen_name__refuses_invisible_formatting(void **state)
{
    static const struct {
        const char *name, *needle, *quoted;
    } rows[] = {
        {"photo\xe2\x80\xaegpj.exe", "U+202E RIGHT-TO-LEFT OVERRIDE at byte 5",
         "\"photo\\u202Egpj.exe\""},
        {"a\xe2\x80\xaa"
         "b",
         "U+202A LEFT-TO-RIGHT EMBEDDING", NULL},
        {"a\xe2\x80\xab"
         "b",
         "U+202B RIGHT-TO-LEFT EMBEDDING", NULL},
        {"a\xe2\x80\xac"
         "b",
         "U+202C POP DIRECTIONAL FORMATTING", NULL},
        {"a\xe2\x80\xad"
         "b",
         "U+202D LEFT-TO-RIGHT OVERRIDE", NULL},
        {"a\xe2\x81\xa6"
         "b",
         "U+2066 LEFT-TO-RIGHT ISOLATE", NULL},
        {"a\xe2\x81\xa7"
         "b",
         "U+2067 RIGHT-TO-LEFT ISOLATE", NULL},
        {"a\xe2\x81\xa8"
         "b",
         "U+2068 FIRST STRONG ISOLATE", NULL},
        {"a\xe2\x81\xa9"
         "b",
         "U+2069 POP DIRECTIONAL ISOLATE", NULL},
        {"holi\xe2\x80\x8b"
         "day.mkv",
         "U+200B ZERO WIDTH SPACE at byte 4", NULL},
        {"a\xe2\x81\xa0"
         "b",
         "U+2060 WORD JOINER", NULL},
        {"a\xe2\x81\xa2"
         "b",
         "U+2062 INVISIBLE TIMES", NULL},
        {"a\xe2\x81\xae"
         "b",
         "U+206E NATIONAL DIGIT SHAPES", NULL},
        {"\xef\xbb\xbfreport.pdf", "U+FEFF ZERO WIDTH NO-BREAK SPACE at byte 0", NULL},
        {"a\xef\xbf\xb9"
         "b\xef\xbf\xba"
         "c\xef\xbf\xbb",
         "U+FFF9 INTERLINEAR ANNOTATION ANCHOR", NULL},
        {"a\xe2\x80\xa8"
         "b",
         "U+2028 LINE SEPARATOR", NULL},
        {"a\xe2\x80\xa9"
         "b",
         "U+2029 PARAGRAPH SEPARATOR", NULL},
        {"a\xf3\xa0\x80\x81"
         "b",
         "U+E0001 LANGUAGE TAG", "\"a\\U000E0001b\""},
        {"run\xf3\xa0\x81\xa1\xf3\xa0\x81\xa4\xf3\xa0\x81\xad.exe",
         "U+E0061 a TAG character at byte 3", NULL},
        /* a flag whose tag spec is not closed: its tags are hidden text */
        {"\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2", "U+E0067 a TAG character at byte 4",
         NULL},
    };
    shares_error_t err = {0};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_int_equal(shares_validate_name(rows[i].name, 0, NULL), SHARES_OK);
        assert_error(&err, shares_screen_name(rows[i].name, &err), SHARES_EINVAL, rows[i].needle);
        assert_non_null(strstr(err.message, "share_item name"));
        assert_non_null(strstr(err.message, "invisible formatting character"));
        if (rows[i].quoted)
            assert_non_null(strstr(err.message, rows[i].quoted));
        /* the message carries no formatting character of its own */
        assert_int_equal(shares_screen_name(err.message, NULL), SHARES_OK);
        assert_error(&err, shares_screen_resource(rows[i].name, &err), SHARES_EINVAL,
                     rows[i].needle);
        assert_non_null(strstr(err.message, "resource resource"));
    }
    assert_error(&err, shares_screen_name(NULL, &err), SHARES_EINVAL, "missing attribute 'name'");
    assert_error(&err, shares_screen_name("\xff", &err), SHARES_EINVAL, "not valid UTF-8");
}

/* What real text needs stays allowed: joiners in emoji and in Persian or
 * Indic spelling, the directional marks that software puts into file
 * names, right-to-left text itself, and the flags spelled with tags. */
static void shares__screen_name__keeps_legitimate_text(void **state)
{
    static const char *const names[] = {
        /* family: man ZWJ woman ZWJ girl */
        "\xf0\x9f\x91\xa8\xe2\x80\x8d\xf0\x9f\x91\xa9\xe2\x80\x8d\xf0\x9f\x91\xa7 photos",
        /* Persian "mi-khaham" with ZWNJ */
        "\xd9\x85\xdb\x8c\xe2\x80\x8c\xd8\xae\xd9\x88\xd8\xa7\xd9\x87\xd9\x85.txt",
        /* Hindi with ZWJ/ZWNJ */
        "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7 "
        "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7",
        /* RLM RLM + Hebrew "screenshot" (Windows names them so) */
        "\xe2\x80\x8f\xe2\x80\x8f\xd7\xa6\xd7\x99\xd7\x9c\xd7\x95\xd7\x9d \xd7\x9e\xd7\xa1\xd7\x9a "
        "(1).png",
        /* LRM and ALM */
        "a\xe2\x80\x8e"
        "b\xd8\x9c"
        "c",
        /* England and Scotland flags */
        "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xa5\xf3\xa0\x81\xae\xf3\xa0"
        "\x81\xa7\xf3\xa0\x81\xbf"
        " v "
        "\xf0\x9f\x8f\xb4\xf3\xa0\x81\xa7\xf3\xa0\x81\xa2\xf3\xa0\x81\xb3\xf3\xa0\x81\xa3\xf3\xa0"
        "\x81\xb4\xf3\xa0\x81\xbf.mkv",
        /* soft hyphen, emoji variation selector, a keycap */
        "co\xc2\xadop \xe2\x9d\xa4\xef\xb8\x8f 1\xef\xb8\x8f\xe2\x83\xa3",
        "plain.iso",
    };
    shares_error_t err = {0};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (shares_screen_name(names[i], &err) != SHARES_OK)
            fail_msg("name %zu refused: %s", i, err.message);
        assert_int_equal(shares_screen_resource(names[i], &err), SHARES_OK);
    }
}

static void shares__address_class__every_class(void **state)
{
    static const struct {
        const char *address;
        shares_addr_class_t cls;
    } rows[] = {
        {"203.0.113.7", SHARES_ADDR_USABLE},
        {"10.1.2.3", SHARES_ADDR_USABLE},
        {"192.168.1.10", SHARES_ADDR_USABLE},
        {"172.16.0.1", SHARES_ADDR_USABLE},
        {"169.254.1.1", SHARES_ADDR_USABLE}, /* IPv4 link-local works on a LAN */
        {"100.64.0.1", SHARES_ADDR_USABLE},
        {"1.0.0.0", SHARES_ADDR_USABLE},
        {"126.255.255.255", SHARES_ADDR_USABLE},
        {"128.0.0.0", SHARES_ADDR_USABLE},
        {"223.255.255.255", SHARES_ADDR_USABLE},
        {"2001:db8::7", SHARES_ADDR_USABLE},
        {"fd00::1", SHARES_ADDR_USABLE},
        {"fc00::1", SHARES_ADDR_USABLE},
        {"fec0::1", SHARES_ADDR_USABLE},
        {"::ffff:192.168.1.1", SHARES_ADDR_USABLE},
        {"64:ff9b::203.0.113.7", SHARES_ADDR_USABLE},
        {"::2:0:0:1", SHARES_ADDR_USABLE},
        {"0.0.0.0", SHARES_ADDR_UNSPECIFIED},
        {"0.1.2.3", SHARES_ADDR_UNSPECIFIED},
        {"::", SHARES_ADDR_UNSPECIFIED},
        {"::ffff:0.0.0.0", SHARES_ADDR_UNSPECIFIED},
        {"127.0.0.1", SHARES_ADDR_LOOPBACK},
        {"127.255.1.2", SHARES_ADDR_LOOPBACK},
        {"::1", SHARES_ADDR_LOOPBACK},
        {"0:0:0:0:0:0:0:1", SHARES_ADDR_LOOPBACK},
        {"::ffff:127.0.0.1", SHARES_ADDR_LOOPBACK},
        {"64:ff9b::127.0.0.1", SHARES_ADDR_LOOPBACK},
        {"224.0.0.1", SHARES_ADDR_MULTICAST},
        {"239.255.255.250", SHARES_ADDR_MULTICAST},
        {"ff02::1", SHARES_ADDR_MULTICAST},
        {"ff0e::fb", SHARES_ADDR_MULTICAST},
        {"::ffff:224.0.0.251", SHARES_ADDR_MULTICAST},
        {"255.255.255.255", SHARES_ADDR_BROADCAST},
        {"::ffff:255.255.255.255", SHARES_ADDR_BROADCAST},
        {"240.0.0.1", SHARES_ADDR_RESERVED},
        {"255.255.255.254", SHARES_ADDR_RESERVED},
        {"::7f00:1", SHARES_ADDR_RESERVED}, /* IPv4-compatible 127.0.0.1 */
        {"::203.0.113.7", SHARES_ADDR_RESERVED},
        {"fe80::1", SHARES_ADDR_LINK_LOCAL},
        {"febf:ffff::1", SHARES_ADDR_LINK_LOCAL},
        {"fe80::1%eth0", SHARES_ADDR_INVALID},
        {"localhost", SHARES_ADDR_INVALID},
        {"", SHARES_ADDR_INVALID},
        {NULL, SHARES_ADDR_INVALID},
    };
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++)
        if (shares_address_class(rows[i].address) != rows[i].cls)
            fail_msg("%s: class %d, want %d", rows[i].address ? rows[i].address : "(null)",
                     (int)shares_address_class(rows[i].address), (int)rows[i].cls);
}

static void shares__screen_address__messages_and_loopback_option(void **state)
{
    static const struct {
        const char *address, *needle;
    } rows[] = {
        {"0.0.0.0", "unspecified address (0.0.0.0/8 or ::)"},
        {"::", "unspecified address"},
        {"224.0.0.1", "multicast address (224.0.0.0/4 or ff00::/8)"},
        {"ff02::1", "multicast address"},
        {"255.255.255.255", "is the broadcast address"},
        {"240.0.0.1", "reserved range (240.0.0.0/4"},
        {"fe80::1", "link-local address (fe80::/10), which cannot be reached without a zone id"},
        {"127.0.0.1", "loopback address (127.0.0.0/8 or ::1): a contact would connect to their "
                      "own machine"},
        {"::ffff:127.0.0.1", "loopback address"},
        {"x", "is not an IPv4 or IPv6 literal"},
    };
    shares_error_t err = {0};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        assert_error(&err, shares_screen_address(rows[i].address, 0, &err), SHARES_EINVAL,
                     rows[i].needle);
        assert_non_null(strstr(err.message, "ip_address address"));
    }
    assert_int_equal(shares_screen_address("127.0.0.1", 1, &err), SHARES_OK);
    assert_int_equal(shares_screen_address("::1", 1, &err), SHARES_OK);
    assert_int_equal(shares_screen_address("::ffff:127.1.2.3", 1, &err), SHARES_OK);
    /* the option allows loopback, nothing else */
    assert_int_equal(shares_screen_address("0.0.0.0", 1, &err), SHARES_EINVAL);
    assert_int_equal(shares_screen_address("ff02::1", 1, &err), SHARES_EINVAL);
    assert_int_equal(shares_screen_address("192.168.0.2", 0, &err), SHARES_OK);
    assert_int_equal(shares_screen_address("2001:db8::1", 0, NULL), SHARES_OK);
}

/* ---- digest ----------------------------------------------------------- */

static void shares__digest__matches_sha256_of_text(void **state)
{
    (void)state;
    shares_item_t *item = shares_item_new(NULL);
    shares_error_t err = {0};
    char hex[SHARES_DIGEST_HEX];
    size_t ri;

    assert_int_equal(shares_item_digest(item, hex, &err), SHARES_OK);
    /* sha256sum of EMPTY_TEXT */
    assert_string_equal(hex, "01f66f8e73d6edc53fd302988f533c965f0e79d105cd9f68497e3bbb8e926fff");
    ri = add_resource_ok(item, "laptop");
    add_share_ok(item, ri, H1, "holiday <&>'\".mkv", 734003200);
    add_address_ok(item, ri, "2001:db8::7", 6881);
    add_address_ok(item, ri, "203.0.113.7", 6881);
    add_resource_ok(item, "desktop");
    assert_int_equal(shares_item_digest(item, hex, &err), SHARES_OK);
    /* sha256sum of the text in shares__serialize__writes_canonical_text */
    assert_string_equal(hex, "208a96b38fc72f9059b3ee3d653ce631d36acf5bf2a7ebe1be650d0c3271f41b");
    shares_item_free(item);
}

static void digest_of(const shares_item_t *item, char hex[SHARES_DIGEST_HEX])
{
    shares_error_t err = {0};

    if (shares_item_digest(item, hex, &err) != SHARES_OK)
        fail_msg("digest: %s", err.message);
    assert_int_equal(strlen(hex), 64);
    assert_int_equal(strspn(hex, "0123456789abcdef"), 64);
}

/* One field differs from the reference state in each variant. */
static shares_item_t *digest_variant(int v)
{
    shares_item_t *item = shares_item_new(NULL);
    size_t ri = add_resource_ok(item, v == 1 ? "laptoq" : "laptop");

    add_share_ok(item, ri, v == 2 ? H3 : H1, v == 3 ? "holiday.mkV" : "holiday.mkv",
                 v == 4 ? 734003201 : 734003200);
    add_address_ok(item, ri, v == 5 ? "203.0.113.8" : "203.0.113.7", v == 6 ? 6882 : 6881);
    if (v == 7)
        add_resource_ok(item, "extra");
    if (v == 8)
        add_address_ok(item, ri, "::1", 1);
    if (v == 9)
        add_share_ok(item, ri, H2, "more", 1);
    return item;
}

static void shares__digest__stable_and_changes_with_every_field(void **state)
{
    (void)state;
    char ref[SHARES_DIGEST_HEX], again[SHARES_DIGEST_HEX], seen[10][SHARES_DIGEST_HEX];
    shares_item_t *item;
    int v, w;

    item = digest_variant(0);
    digest_of(item, ref);
    digest_of(item, again);
    assert_string_equal(ref, again);
    shares_item_free(item);
    item = digest_variant(0);
    digest_of(item, again);
    assert_string_equal(ref, again);
    shares_item_free(item);

    for (v = 0; v < 10; v++) {
        item = digest_variant(v);
        digest_of(item, seen[v]);
        shares_item_free(item);
        for (w = 0; w < v; w++)
            assert_string_not_equal(seen[v], seen[w]);
    }
}

static void shares__limits__empty_item_fits_minimal_limit(void **state)
{
    (void)state;
    /* max_item_bytes is enforced while adding, so a digest never fails on
     * it; an empty item fits the smallest sane limit. */
    shares_limits_t lim = no_limits();
    shares_item_t *item;
    char hex[SHARES_DIGEST_HEX];
    shares_error_t err = {0};

    lim.max_item_bytes = strlen(EMPTY_TEXT);
    item = shares_item_new(&lim);
    assert_int_equal(shares_item_digest(item, hex, &err), SHARES_OK);
    assert_error(&err, shares_item_add_resource(item, "r", NULL, &err), SHARES_ELIMIT,
                 "user_shares would be");
    shares_item_free(item);
}

/* ---- error messages --------------------------------------------------- */

static void shares__errors__are_truncated_and_printable(void **state)
{
    shares_error_t err = {0};
    char big[2000];
    size_t i;

    (void)state;
    /* a long value is cut with "..." */
    memset(big, 'x', sizeof big - 1);
    big[sizeof big - 1] = '\0';
    big[1500] = '\x01';
    assert_error(&err, shares_validate_name(big, 0, &err), SHARES_EINVAL, "U+0001 at byte 1500");
    assert_non_null(strstr(err.message, "\"..."));
    assert_null(strstr(err.message, "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
                                    "xxxxxxxxxx"));
    /* controls, invalid bytes, quotes and backslashes are escaped */
    assert_error(&err, shares_validate_name("a\x01\x7f\xc2\x85\xff\"\\b", 0, &err), SHARES_EINVAL,
                 "\"a\\x01\\x7F\\xC2\\x85\\xFF\\\"\\\\b\"");
    /* a long multi-byte value is cut on a character boundary */
    big[0] = '\0';
    for (i = 0; i < 200; i++)
        strcat(big, "\xe6\x97\xa5");
    strcat(big, "\x01");
    assert_error(&err, shares_validate_resource(big, 0, &err), SHARES_EINVAL, "U+0001");
    /* prefixes of parse errors keep the message valid and bounded */
    memset(&err, 0, sizeof err);
    big[0] = '\0';
    for (i = 0; i < 60; i++)
        strcat(big, "\xf0\x9f\x8e\xac");
    {
        shares_item_t *item = shares_item_new(NULL);
        xmpp_stanza_t *st = xmpp_stanza_new_from_string(
            *state, "<x xmlns='" SHARES_NS "'><share_item hash='" H1
                    "' name='\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97"
                    "\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5"
                    "\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5\xe6\x97\xa5"
                    "&#x85;' size='1'/></x>");
        size_t ri = add_resource_ok(item, big);

        assert_non_null(st);
        assert_error(&err, shares_item_parse_resource_children(item, ri, st, NULL, &err),
                     SHARES_EINVAL, NULL);
        assert_non_null(strstr(err.message, "share_item #1"));
        xmpp_stanza_release(st);
        shares_item_free(item);
    }
}

/* ---- failing allocations ---------------------------------------------- */

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

static void shares__build__survives_every_failing_allocation(void **state)
{
    struct alloc_ctl ctl = {0, -1, 0};
    xmpp_mem_t mem = {ctl_alloc, ctl_free, ctl_realloc, &ctl};
    xmpp_ctx_t *ctx = xmpp_ctx_new(&mem, NULL);
    shares_item_t *item = sample_item(NULL);
    xmpp_stanza_t *st = NULL;
    shares_error_t err = {0};
    long n, base;
    char *buf = NULL;
    size_t len = 0;

    (void)state;
    assert_non_null(ctx);
    base = ctl.live;
    for (n = 0; n < 1000; n++) {
        ctl.count = 0;
        ctl.fail_at = n;
        st = shares_item_build(item, ctx);
        if (st)
            break;
        assert_int_equal(ctl.live, base); /* nothing leaked */
    }
    assert_non_null(st);
    assert_true(n > 20);
    xmpp_stanza_release(st);
    assert_int_equal(ctl.live, base);

    /* build needs n allocations; fail the next, to_text's buffer */
    ctl.count = 0;
    ctl.fail_at = n;
    assert_error(&err, shares_item_serialize(item, ctx, &buf, &len, &err), SHARES_ENOMEM,
                 "out of memory");
    assert_null(buf);
    assert_int_equal(len, 0);
    assert_int_equal(ctl.live, base);
    ctl.count = 0;
    ctl.fail_at = 0;
    assert_error(&err, shares_item_serialize(item, ctx, &buf, &len, &err), SHARES_ENOMEM,
                 "out of memory");
    ctl.fail_at = -1;
    assert_int_equal(shares_item_serialize(item, ctx, &buf, &len, &err), SHARES_OK);
    free(buf); /* malloc'd, whatever the context allocates with */
    assert_int_equal(ctl.live, base);
    xmpp_ctx_free(ctx);
    shares_item_free(item);
}

/* The direct writer must produce exactly libstrophe's bytes. Random items
 * with every character class that escaping or UTF-8 could get wrong. */
static void shares__write__matches_libstrophe_serialization(void **state)
{
    static const char *const pieces[] = {"a",
                                         "Z",
                                         "0",
                                         " ",
                                         "<",
                                         ">",
                                         "&",
                                         "'",
                                         "\"",
                                         "&amp;",
                                         "\xc3\xbc",
                                         "\xe6\x97\xa5",
                                         "\xf0\x9f\x8e\xac",
                                         ".mkv"};
    static const char *const addrs[] = {"127.0.0.1",   "::1",       "2001:db8::7",
                                        "192.0.2.200", "fe80::1:2", "10.0.0.1"};
    xmpp_ctx_t *ctx = *state;
    shares_limits_t lim = no_limits();
    unsigned seed = 12345;
    int round;

    for (round = 0; round < 300; round++) {
        shares_item_t *item = shares_item_new(&lim);
        shares_error_t err;
        char *ref = NULL, *fast = NULL, name[128], hash[41];
        size_t ref_len = 0, fast_len = 0, ri;
        int nres, r, k, p;

        assert_non_null(item);
        nres = (int)(rand_r(&seed) % 4);
        for (r = 0; r < nres; r++) {
            int nparts = 1 + (int)(rand_r(&seed) % 6);
            name[0] = '\0';
            for (p = 0; p < nparts; p++)
                strcat(name, pieces[rand_r(&seed) % (sizeof pieces / sizeof *pieces)]);
            if (shares_item_add_resource(item, name, &ri, &err) != SHARES_OK)
                continue; /* duplicate name */
            for (k = (int)(rand_r(&seed) % 8); k > 0; k--) {
                int d;
                for (d = 0; d < 40; d++)
                    hash[d] = "0123456789abcdef"[rand_r(&seed) % 16];
                hash[40] = '\0';
                name[0] = '\0';
                nparts = 1 + (int)(rand_r(&seed) % 8);
                for (p = 0; p < nparts; p++)
                    strcat(name, pieces[rand_r(&seed) % (sizeof pieces / sizeof *pieces)]);
                (void)shares_item_add_share(
                    item, ri, hash, name, (uint64_t)rand_r(&seed) * (uint64_t)rand_r(&seed), &err);
            }
            for (k = (int)(rand_r(&seed) % 3); k > 0; k--)
                (void)shares_item_add_address(item, ri,
                                              addrs[rand_r(&seed) % (sizeof addrs / sizeof *addrs)],
                                              1 + rand_r(&seed) % 65535, &err);
        }
        assert_int_equal(shares_item_serialize(item, ctx, &ref, &ref_len, &err), SHARES_OK);
        assert_int_equal(shares_item_write(item, &fast, &fast_len, &err), SHARES_OK);
        assert_int_equal(fast_len, ref_len);
        assert_string_equal(fast, ref);
        free(ref);
        free(fast);
        shares_item_free(item);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(shares__limits_default__fills_documented_values),
        T(shares__item_free__accepts_null),
        T(shares__write__matches_libstrophe_serialization),
        T(shares__serialize__empty_item_is_empty_user_shares),
        T(shares__serialize__writes_canonical_text),
        T(shares__build__children_inherit_namespace),
        T(shares__build__orders_resources_shares_and_addresses),
        T(shares__serialize__identical_bytes_across_insertion_orders),
        T(shares__serialize__repeatable_on_same_item),
        T(shares__roundtrip__build_parse_same_state),
        T(shares__roundtrip__text_parse_serialize_is_canonical),
        T(shares__roundtrip__escapes_xml_special_characters),
        T(shares__roundtrip__keeps_multibyte_utf8),
        T(shares__roundtrip__large_item),
        T(shares__accessors__views_in_insertion_order),
        T(shares__api__rejects_null_and_out_of_range),
        T(shares__add_share__normalizes_hash_to_lowercase),
        T(shares__add_share__accepts_v2_hash),
        T(shares__validate_hash__rejects_bad_hashes),
        T(shares__parse__rejects_short_hash),
        T(shares__parse__rejects_long_hash),
        T(shares__parse__rejects_non_hex_hash),
        T(shares__parse__rejects_missing_attributes),
        T(shares__validate_name__rejects_empty),
        T(shares__validate_name__rejects_invalid_utf8),
        T(shares__validate_name__accepts_boundary_code_points),
        T(shares__validate_name__rejects_control_characters),
        T(shares__validate_name__enforces_max_bytes),
        T(shares__validate_resource__rejects_bad_resources),
        T(shares__parse__rejects_controls_from_character_references),
        T(shares__parse__rejects_invalid_utf8_in_stanza),
        T(shares__parse__rejects_malformed_xml),
        T(shares__parse_size__accepts_decimal),
        T(shares__parse_size__rejects_invalid),
        T(shares__add_share__rejects_size_over_int64_max),
        T(shares__parse_port__accepts_and_rejects),
        T(shares__add_address__rejects_port_out_of_range),
        T(shares__canon_address__accepts_ipv4_and_ipv6),
        T(shares__canon_address__rejects_invalid),
        T(shares__parse__canonicalizes_ipv6),
        T(shares__add_resource__rejects_duplicate),
        T(shares__add_share__rejects_duplicate_hash),
        T(shares__add_address__rejects_duplicate),
        T(shares__parse__rejects_duplicates),
        T(shares__parse__rejects_wrong_root_element),
        T(shares__parse__rejects_wrong_namespace),
        T(shares__parse__accepts_prefixed_namespace),
        T(shares__parse__ignores_unknown_elements_and_text),
        T(shares__parse__error_names_location),
        T(shares__add__failure_leaves_item_unchanged),
        T(shares__parse_resource_children__is_whole_or_nothing),
        T(shares__parse_resource_children__uses_given_namespace),
        T(shares__parse_resource_children__accepts_built_resource),
        T(shares__limits__counts),
        T(shares__limits__zero_means_unlimited),
        T(shares__limits__item_bytes_exact),
        T(shares__limits__item_bytes_on_parse),
        T(shares__size__bounds_servers_serializations),
        T(shares__limits__apostrophes_count_six_bytes),
        T(shares__limits__ejabberd_payload_measure),
        T(shares__size__empty_and_null),
        T(shares__screen_name__refuses_invisible_formatting),
        T(shares__screen_name__keeps_legitimate_text),
        T(shares__address_class__every_class),
        T(shares__screen_address__messages_and_loopback_option),
        T(shares__digest__matches_sha256_of_text),
        T(shares__digest__stable_and_changes_with_every_field),
        T(shares__limits__empty_item_fits_minimal_limit),
        T(shares__errors__are_truncated_and_printable),
        T(shares__build__survives_every_failing_allocation),
#undef T
    };
    int rc;

    xmpp_initialize();
    rc = cmocka_run_group_tests_name("shares", tests, NULL, NULL);
    xmpp_shutdown();
    return rc;
}
