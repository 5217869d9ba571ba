/* SPDX-License-Identifier: MIT */
/*
 * The merged shares item (<user_shares xmlns='https://xmpp.kwoh.de/protocol/
 * shares'/>): validation of every attribute, an in-memory model kept in
 * canonical order as it is built, serialization through libstrophe stanzas,
 * parsing back from stanzas or text, and a SHA-256 digest of the canonical
 * bytes. Each resource keeps its shares and addresses in insertion order
 * plus a sorted index (4 bytes per entry), so duplicate checks are binary
 * searches and serialization never sorts. The item's size is tracked while
 * adding, in the canonical text and in the measures the servers apply (see
 * "sizes" below), so max_item_bytes is refused by the add that would cross
 * it, not later at publish time. Every mutation is whole or nothing.
 */
#include "shares.h"
#include "xmpp_compat.h"

#include "utf8.h"

#include <arpa/inet.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

struct share {
    char hash[SHARES_HASH_MAX];
    char *name;
    uint64_t size;
};

struct address {
    unsigned char bytes[16];
    unsigned char v6; /* 0: IPv4 (first 4 bytes), 1: IPv6 */
    uint16_t port;
    char text[SHARES_ADDR_MAX];
};

/* ---- sizes -------------------------------------------------------------
 *
 * A part of the item is measured three ways:
 *
 * - canon: its canonical text, as xmpp_stanza_to_text() and
 *   shares_item_write() write it (the bytes the component publishes, and
 *   the digest's input);
 *
 * - xml: an upper bound of its length once a server has parsed and
 *   re-serialized it, which is what contacts receive. Read for this:
 *   Prosody's util/stanza.lua (_dostring, xml_escape) and ejabberd's
 *   fast_xml (c_src/fxml.c make_element, make_attrs, attr_encode; and
 *   c_src/fxml_stream.c encode_name and the start-element handler, which
 *   decide where an xmlns attribute appears after parsing). Both quote
 *   attributes with ' instead of ", the same length. Prosody escapes
 *   ' " < > & into &apos; &quot; &lt; &gt; &amp;; fast_xml the same except
 *   > (kept as is), plus tab, LF and CR (&#x9;...), which no value of ours
 *   holds (controls are refused). So each byte of a value costs at most 6
 *   for ' and ", 5 for &, 4 for < and >, 1 otherwise: the canonical text
 *   already pays that for all but ', which costs 1 there, hence xml =
 *   canon + 5 per apostrophe. Neither writes whitespace, and both write an
 *   element without children as <name .../>, as we do. Neither adds a
 *   namespace declaration to our children: Prosody omits an xmlns equal to
 *   the parent's, and fast_xml's parser drops (normalized) or never makes
 *   (not normalized) an xmlns attribute on an element in its parent's
 *   namespace, which ours are (they declare none). The root's own
 *   declaration is counted once, as both write it once. Prefixed
 *   attributes (xmlns:ns1) appear only for namespaced attributes, which the
 *   item has none of.
 *
 * - term: ejabberd does not limit a PEP payload by its XML length but by
 *   byte_size(term_to_binary(Payload)) - 2 (src/mod_pubsub.erl
 *   publish_item, max_payload_size, 250,000 by default), Payload being
 *   [#xmlel{}]. In the external term format an element {xmlel, Name,
 *   Attrs, Children} is a 2-byte tuple header, the atom xmlel (7 bytes
 *   since OTP 26, 8 before: 8 counted), Name as a binary (5 + length), and
 *   Attrs and Children as lists (1 byte when empty, else 5 + elements + 1);
 *   an attribute {Name, Value} is 2 + (5 + name) + (5 + value), with the
 *   value unescaped; the list around the payload adds 5 after the "- 2".
 *   Short plain names make this measure larger than the XML (about 40 bytes
 *   more per share_item), so it is bounded on its own.
 */
typedef struct size3 {
    size_t canon, xml, term;
} size3_t;

static size3_t size3_add(size3_t a, size3_t b)
{
    a.canon += b.canon;
    a.xml += b.xml;
    a.term += b.term;
    return a;
}

static size3_t size3_sub(size3_t a, size3_t b)
{
    a.canon -= b.canon;
    a.xml -= b.xml;
    a.term -= b.term;
    return a;
}

struct resource {
    char *name;
    size3_t name_size; /* of the name as an attribute value */
    struct share *shares;
    uint32_t *share_order; /* indices into shares, canonical order */
    size_t nshares, cap_shares, cap_share_order;
    struct address *addrs;
    uint32_t *addr_order;
    size_t naddrs, cap_addrs, cap_addr_order;
    size3_t body; /* all children */
};

struct shares_item {
    shares_limits_t lim;
    struct resource *res;
    uint32_t *res_order;
    size_t nres, cap_res, cap_res_order;
    size3_t body; /* all <resource/> elements */
};

/* Canonical lengths of the fixed parts, as xmpp_stanza_to_text() writes
 * them: double-quoted attributes, no whitespace, `/>` for empty elements.
 * The xml measure has the same fixed parts (see above). */
#define LIT(s)      (sizeof(s) - 1)
#define ROOT_EMPTY  LIT("<user_shares xmlns=\"" SHARES_NS "\"/>")
#define ROOT_WRAP   (LIT("<user_shares xmlns=\"" SHARES_NS "\">") + LIT("</user_shares>"))
#define RES_EMPTY   LIT("<resource resource=\"\"/>")
#define RES_WRAP    (LIT("<resource resource=\"\">") + LIT("</resource>"))
#define SHARE_FIXED LIT("<share_item hash=\"\" name=\"\" size=\"\"/>")
#define ADDR_FIXED  LIT("<ip_address address=\"\" port=\"\"/>")

/* The term measure's fixed parts: an element named N with k attributes
 * (names A_i) and no children is TERM_EL(N) + 6 + sum(12 + A_i) + 1, with
 * children TERM_EL(N) + 6 + sum(12 + A_i) + 6 + children; the values'
 * lengths come on top. */
#define TERM_EL(name)   (2 + 8 + 5 + LIT(name))
#define TERM_ATTR(name) (12 + LIT(name))
#define TERM_SHARE_FIXED                                                                           \
    (TERM_EL("share_item") + 6 + TERM_ATTR("hash") + TERM_ATTR("name") + TERM_ATTR("size") + 1)
#define TERM_ADDR_FIXED (TERM_EL("ip_address") + 6 + TERM_ATTR("address") + TERM_ATTR("port") + 1)
#define TERM_RES_EMPTY  (TERM_EL("resource") + 6 + TERM_ATTR("resource") + 1)
#define TERM_RES_WRAP   (TERM_EL("resource") + 6 + TERM_ATTR("resource") + 6)
#define TERM_ROOT       (TERM_EL("user_shares") + 6 + TERM_ATTR("xmlns") + LIT(SHARES_NS))
#define TERM_ROOT_EMPTY (5 + TERM_ROOT + 1) /* 5: the payload list */
#define TERM_ROOT_WRAP  (5 + TERM_ROOT + 6)

/* Bytes of a quoted value shown in an error message, before "...". */
#define QUOTE_BUDGET 40
#define QUOTE_BUF    (QUOTE_BUDGET + 16)

/* ---- errors ---------------------------------------------------------- */

static int set_error(shares_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(shares_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (!err)
        return code;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    utf8_trim_tail(err->message);
    return code;
}

static void prefix_error(shares_error_t *err, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void prefix_error(shares_error_t *err, const char *fmt, ...)
{
    char prefix[SHARES_ERROR_TEXT];
    char old[SHARES_ERROR_TEXT];
    size_t plen, olen;
    va_list ap;

    if (!err)
        return;
    memcpy(old, err->message, sizeof old);
    old[sizeof old - 1] = '\0';
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    utf8_trim_tail(prefix);
    plen = strlen(prefix);
    olen = strlen(old);
    if (plen + olen >= sizeof err->message)
        olen = sizeof err->message - 1 - plen;
    memcpy(err->message, prefix, plen);
    memcpy(err->message + plen, old, olen);
    err->message[plen + olen] = '\0';
    utf8_trim_tail(err->message);
}

/* ---- UTF-8 ----------------------------------------------------------- */

/* Decode the sequence at `s` (NUL-terminated). Returns its length and sets
 * *cp, or returns 0 and sets *why. Strict RFC 3629: no overlongs, no
 * surrogates, nothing above U+10FFFF. */
static size_t utf8_decode(const unsigned char *s, uint32_t *cp, const char **why)
{
    size_t len, i;
    uint32_t c, min;

    if (s[0] < 0x80) {
        *cp = s[0];
        return 1;
    }
    if (s[0] < 0xC0) {
        *why = "unexpected continuation byte";
        return 0;
    }
    if (s[0] < 0xE0) {
        len = 2, c = s[0] & 0x1Fu, min = 0x80;
    } else if (s[0] < 0xF0) {
        len = 3, c = s[0] & 0x0Fu, min = 0x800;
    } else if (s[0] < 0xF8) {
        len = 4, c = s[0] & 0x07u, min = 0x10000;
    } else {
        *why = "invalid byte";
        return 0;
    }
    for (i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80) { /* also stops at the NUL */
            *why = "truncated sequence";
            return 0;
        }
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    if (c < min) {
        *why = "overlong encoding";
        return 0;
    }
    if (c >= 0xD800 && c <= 0xDFFF) {
        *why = "UTF-16 surrogate";
        return 0;
    }
    if (c > 0x10FFFF) {
        *why = "code point above U+10FFFF";
        return 0;
    }
    *cp = c;
    return len;
}

static int is_control(uint32_t cp)
{
    return cp < 0x20 || (cp >= 0x7F && cp <= 0x9F);
}

/* U+FFFE and U+FFFF are valid UTF-8 but not XML 1.0 characters. */
static int is_xml_nonchar(uint32_t cp)
{
    return cp == 0xFFFE || cp == 0xFFFF;
}

/* Quote `s` for a message: at most QUOTE_BUDGET bytes of it, anything that
 * is not printable valid UTF-8 as \xHH, invisible formatting characters
 * (utf8_hidden_name()) as \uXXXX or \UXXXXXXXX so that the message shows
 * them rather than obeys them, then "..." if cut short. */
static void quote(char out[QUOTE_BUF], const char *s)
{
    const unsigned char *p = (const unsigned char *)s;
    size_t o = 0, n, i;
    uint32_t cp;
    const char *why;

    out[o++] = '"';
    while (*p) {
        n = utf8_decode(p, &cp, &why);
        if (n > 0 && utf8_hidden_name(cp)) {
            if (o + (cp > 0xFFFF ? 10 : 6) > QUOTE_BUDGET)
                break;
            o += (size_t)snprintf(out + o, 11, cp > 0xFFFF ? "\\U%08" PRIX32 : "\\u%04" PRIX32, cp);
            p += n;
        } else if (n > 0 && !is_control(cp) && !is_xml_nonchar(cp) && cp != '"' && cp != '\\') {
            if (o + n > QUOTE_BUDGET)
                break;
            for (i = 0; i < n; i++)
                out[o++] = (char)p[i];
            p += n;
        } else if (n == 1) { /* '"', '\\' or an ASCII control */
            if (o + 4 > QUOTE_BUDGET)
                break;
            if (cp == '"' || cp == '\\') {
                out[o++] = '\\';
                out[o++] = (char)cp;
            } else {
                o += (size_t)snprintf(out + o, 5, "\\x%02X", p[0]);
            }
            p++;
        } else { /* invalid, C1 or non-XML: byte by byte */
            if (o + 4 > QUOTE_BUDGET)
                break;
            o += (size_t)snprintf(out + o, 5, "\\x%02X", p[0]);
            p++;
        }
    }
    out[o++] = '"';
    if (*p) {
        memcpy(out + o, "...", 3);
        o += 3;
    }
    out[o] = '\0';
}

/* Length of `s` once libstrophe has escaped it into an attribute. */
static size_t xml_len(const char *s)
{
    size_t n = 0;

    for (; *s; s++) {
        switch (*s) {
        case '<':
        case '>':
            n += 4;
            break;
        case '&':
            n += 5;
            break;
        case '"':
            n += 6;
            break;
        default:
            n++;
        }
    }
    return n;
}

static size_t decimal_len(uint64_t v)
{
    size_t n = 1;

    while (v >= 10) {
        v /= 10;
        n++;
    }
    return n;
}

/* Sizes of `s` as an attribute value (see "sizes" above). */
static size3_t value_size(const char *s)
{
    size3_t z = {xml_len(s), 0, strlen(s)};
    const char *p;

    z.xml = z.canon;
    for (p = strchr(s, '\''); p; p = strchr(p + 1, '\''))
        z.xml += 5;
    return z;
}

/* Sizes of a value that needs no escaping (digits, hex, addresses). */
static size3_t plain_size(size_t len)
{
    size3_t z = {len, len, len};

    return z;
}

/* ---- validators ------------------------------------------------------ */

void shares_limits_default(shares_limits_t *lim)
{
    if (!lim)
        return;
    lim->max_resources = SHARES_DEFAULT_MAX_RESOURCES;
    lim->max_shares = SHARES_DEFAULT_MAX_SHARES;
    lim->max_addresses = SHARES_DEFAULT_MAX_ADDRESSES;
    lim->max_name_bytes = SHARES_DEFAULT_MAX_NAME_BYTES;
    lim->max_resource_bytes = SHARES_DEFAULT_MAX_RESOURCE_BYTES;
    lim->max_item_bytes = SHARES_DEFAULT_MAX_ITEM_BYTES;
    lim->allow_loopback = 0;
}

static int hex_value(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int shares_validate_hash(const char *hash, shares_error_t *err)
{
    char q[QUOTE_BUF];
    size_t len, i;

    if (!hash)
        return set_error(err, SHARES_EINVAL, "share_item: missing attribute 'hash'");
    len = strlen(hash);
    for (i = 0; i < len; i++) {
        if (hex_value((unsigned char)hash[i]) < 0) {
            quote(q, hash);
            return set_error(err, SHARES_EINVAL,
                             "share_item hash %s has a non-hex character at offset %zu", q, i);
        }
    }
    if (len != 40 && len != 64) {
        quote(q, hash);
        return set_error(err, SHARES_EINVAL,
                         "share_item hash %s must be 40 or 64 hex digits, not %zu", q, len);
    }
    return SHARES_OK;
}

/* Shared by names and resources: non-empty, strict UTF-8 that XML can
 * carry, no C0/DEL/C1 controls, at most max_bytes (0: no limit). */
static int validate_text(const char *elem, const char *attr, const char *s, size_t max_bytes,
                         shares_error_t *err)
{
    const unsigned char *p;
    char q[QUOTE_BUF];
    const char *why = NULL;
    uint32_t cp = 0;
    size_t n, len;

    if (!s)
        return set_error(err, SHARES_EINVAL, "%s: missing attribute '%s'", elem, attr);
    if (!*s)
        return set_error(err, SHARES_EINVAL, "%s %s is empty", elem, attr);
    for (p = (const unsigned char *)s; *p; p += n) {
        n = utf8_decode(p, &cp, &why);
        if (n == 0) {
            quote(q, s);
            return set_error(err, SHARES_EINVAL, "%s %s %s is not valid UTF-8 (%s at byte %zu)",
                             elem, attr, q, why, (size_t)(p - (const unsigned char *)s));
        }
        if (is_control(cp)) {
            quote(q, s);
            return set_error(err, SHARES_EINVAL,
                             "%s %s %s contains control character U+%04" PRIX32 " at byte %zu",
                             elem, attr, q, cp, (size_t)(p - (const unsigned char *)s));
        }
        if (is_xml_nonchar(cp)) {
            quote(q, s);
            return set_error(err, SHARES_EINVAL,
                             "%s %s %s contains U+%04" PRIX32
                             ", which XML does not allow, at byte %zu",
                             elem, attr, q, cp, (size_t)(p - (const unsigned char *)s));
        }
    }
    len = (size_t)(p - (const unsigned char *)s);
    if (max_bytes && len > max_bytes) {
        quote(q, s);
        return set_error(err, SHARES_ELIMIT, "%s %s %s is %zu bytes, over the limit of %zu", elem,
                         attr, q, len, max_bytes);
    }
    return SHARES_OK;
}

int shares_validate_name(const char *name, size_t max_bytes, shares_error_t *err)
{
    return validate_text("share_item", "name", name, max_bytes, err);
}

int shares_validate_resource(const char *resource, size_t max_bytes, shares_error_t *err)
{
    return validate_text("resource", "resource", resource, max_bytes, err);
}

/* Unsigned decimal, digits only (no sign, space or empty), at most `max`.
 * Returns 0, -1 for a syntax error, -2 for an overflow. */
static int parse_decimal(const char *text, uint64_t max, uint64_t *out)
{
    uint64_t v = 0;
    unsigned d;

    if (!*text)
        return -1;
    for (; *text; text++) {
        if (*text < '0' || *text > '9')
            return -1;
        d = (unsigned)(*text - '0');
        if (v > (max - d) / 10)
            return -2;
        v = v * 10 + d;
    }
    *out = v;
    return 0;
}

int shares_parse_size(const char *text, uint64_t *out, shares_error_t *err)
{
    char q[QUOTE_BUF];
    uint64_t v = 0;
    int rc;

    if (!text)
        return set_error(err, SHARES_EINVAL, "share_item: missing attribute 'size'");
    rc = parse_decimal(text, INT64_MAX, &v);
    if (rc == 0) {
        if (out)
            *out = v;
        return SHARES_OK;
    }
    if (!*text)
        return set_error(err, SHARES_EINVAL, "share_item size is empty");
    quote(q, text);
    if (rc == -1)
        return set_error(err, SHARES_EINVAL,
                         "share_item size %s is not a decimal number of bytes (digits only)", q);
    return set_error(err, SHARES_EINVAL, "share_item size %s is over the maximum of %" PRId64, q,
                     INT64_MAX);
}

int shares_parse_port(const char *text, uint16_t *out, shares_error_t *err)
{
    char q[QUOTE_BUF];
    uint64_t v = 0;
    int rc;

    if (!text)
        return set_error(err, SHARES_EINVAL, "ip_address: missing attribute 'port'");
    if (!*text)
        return set_error(err, SHARES_EINVAL, "ip_address port is empty");
    rc = parse_decimal(text, UINT64_MAX, &v);
    quote(q, text);
    if (rc == -1)
        return set_error(err, SHARES_EINVAL, "ip_address port %s is not a decimal number", q);
    if (rc != 0 || v < 1 || v > 65535)
        return set_error(err, SHARES_EINVAL, "ip_address port %s is out of range 1..65535", q);
    if (out)
        *out = (uint16_t)v;
    return SHARES_OK;
}

static int canon_address(const char *address, struct address *a, shares_error_t *err)
{
    char q[QUOTE_BUF];

    if (!address)
        return set_error(err, SHARES_EINVAL, "ip_address: missing attribute 'address'");
    memset(a, 0, sizeof *a);
    if (inet_pton(AF_INET, address, a->bytes) == 1) {
        a->v6 = 0;
    } else if (inet_pton(AF_INET6, address, a->bytes) == 1) {
        a->v6 = 1;
    } else {
        quote(q, address);
        if (!*address)
            return set_error(err, SHARES_EINVAL, "ip_address address is empty");
        if (strchr(address, '%'))
            return set_error(err, SHARES_EINVAL,
                             "ip_address address %s has a zone id, which is not allowed", q);
        if (address[0] == '[')
            return set_error(err, SHARES_EINVAL,
                             "ip_address address %s must be a bare literal, without brackets", q);
        return set_error(err, SHARES_EINVAL, "ip_address address %s is not an IPv4 or IPv6 literal",
                         q);
    }
    if (!inet_ntop(a->v6 ? AF_INET6 : AF_INET, a->bytes, a->text, sizeof a->text))
        return set_error(err, SHARES_EINVAL, "ip_address address cannot be formatted");
    return SHARES_OK;
}

int shares_canon_address(const char *address, char out[SHARES_ADDR_MAX], shares_error_t *err)
{
    struct address a;
    int rc;

    rc = canon_address(address, &a, err);
    if (rc == SHARES_OK && out)
        memcpy(out, a.text, sizeof a.text);
    return rc;
}

/* ---- what contacts are shown ------------------------------------------ */

/* `s` (already valid) without invisible formatting characters, apart from
 * those of an emoji tag sequence. */
static int screen_text(const char *elem, const char *attr, const char *s, shares_error_t *err)
{
    const unsigned char *p = (const unsigned char *)s;
    const char *name, *why = NULL;
    char q[QUOTE_BUF];
    uint32_t cp = 0;
    size_t n;

    if (!s)
        return set_error(err, SHARES_EINVAL, "%s: missing attribute '%s'", elem, attr);
    while (*p) {
        n = utf8_emoji_tag_sequence((const char *)p);
        if (n) {
            p += n;
            continue;
        }
        n = utf8_decode(p, &cp, &why);
        if (n == 0) {
            quote(q, s);
            return set_error(err, SHARES_EINVAL, "%s %s %s is not valid UTF-8 (%s)", elem, attr, q,
                             why);
        }
        name = utf8_hidden_name(cp);
        if (name) {
            quote(q, s);
            return set_error(err, SHARES_EINVAL,
                             "%s %s %s contains U+%04" PRIX32 " %s at byte %zu, an invisible "
                             "formatting character that can make text read as other text",
                             elem, attr, q, cp, name, (size_t)(p - (const unsigned char *)s));
        }
        p += n;
    }
    return SHARES_OK;
}

int shares_screen_name(const char *name, shares_error_t *err)
{
    return screen_text("share_item", "name", name, err);
}

int shares_screen_resource(const char *resource, shares_error_t *err)
{
    return screen_text("resource", "resource", resource, err);
}

static shares_addr_class_t class_v4(const unsigned char *b)
{
    if (b[0] == 0)
        return SHARES_ADDR_UNSPECIFIED; /* 0.0.0.0/8, "this network" */
    if (b[0] == 127)
        return SHARES_ADDR_LOOPBACK;
    if (b[0] >= 224 && b[0] <= 239)
        return SHARES_ADDR_MULTICAST;
    if (b[0] == 255 && b[1] == 255 && b[2] == 255 && b[3] == 255)
        return SHARES_ADDR_BROADCAST;
    if (b[0] >= 240)
        return SHARES_ADDR_RESERVED;
    return SHARES_ADDR_USABLE;
}

shares_addr_class_t shares_address_class(const char *address)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    static const unsigned char nat64[12] = {0, 0x64, 0xff, 0x9b, 0, 0, 0, 0, 0, 0, 0, 0};
    static const unsigned char zero[16] = {0};
    struct address a;

    if (!address || canon_address(address, &a, NULL) != SHARES_OK)
        return SHARES_ADDR_INVALID;
    if (!a.v6)
        return class_v4(a.bytes);
    /* an IPv4 address carried in IPv6: judged as that IPv4 address */
    if (memcmp(a.bytes, mapped, 12) == 0 || memcmp(a.bytes, nat64, 12) == 0)
        return class_v4(a.bytes + 12);
    if (memcmp(a.bytes, zero, 16) == 0)
        return SHARES_ADDR_UNSPECIFIED;
    if (memcmp(a.bytes, zero, 15) == 0 && a.bytes[15] == 1)
        return SHARES_ADDR_LOOPBACK;
    if (memcmp(a.bytes, zero, 12) == 0)
        return SHARES_ADDR_RESERVED; /* ::/96, deprecated IPv4-compatible */
    if (a.bytes[0] == 0xff)
        return SHARES_ADDR_MULTICAST;
    if (a.bytes[0] == 0xfe && (a.bytes[1] & 0xc0) == 0x80)
        return SHARES_ADDR_LINK_LOCAL;
    return SHARES_ADDR_USABLE;
}

int shares_screen_address(const char *address, int allow_loopback, shares_error_t *err)
{
    char q[QUOTE_BUF];

    switch (shares_address_class(address)) {
    case SHARES_ADDR_USABLE:
        return SHARES_OK;
    case SHARES_ADDR_INVALID:
        return canon_address(address, &(struct address){0}, err);
    case SHARES_ADDR_LOOPBACK:
        if (allow_loopback)
            return SHARES_OK;
        quote(q, address);
        return set_error(err, SHARES_EINVAL,
                         "ip_address address %s is a loopback address (127.0.0.0/8 or ::1): a "
                         "contact would connect to their own machine",
                         q);
    case SHARES_ADDR_UNSPECIFIED:
        quote(q, address);
        return set_error(err, SHARES_EINVAL,
                         "ip_address address %s is an unspecified address (0.0.0.0/8 or ::), "
                         "which no peer can be reached at",
                         q);
    case SHARES_ADDR_MULTICAST:
        quote(q, address);
        return set_error(err, SHARES_EINVAL,
                         "ip_address address %s is a multicast address (224.0.0.0/4 or ff00::/8); "
                         "BitTorrent peers are reached at unicast addresses",
                         q);
    case SHARES_ADDR_BROADCAST:
        quote(q, address);
        return set_error(err, SHARES_EINVAL, "ip_address address %s is the broadcast address", q);
    case SHARES_ADDR_RESERVED:
        quote(q, address);
        return set_error(err, SHARES_EINVAL,
                         "ip_address address %s is in a reserved range (240.0.0.0/4, or the "
                         "deprecated IPv4-compatible ::/96), which no peer can be reached at",
                         q);
    case SHARES_ADDR_LINK_LOCAL:
        quote(q, address);
        return set_error(err, SHARES_EINVAL,
                         "ip_address address %s is an IPv6 link-local address (fe80::/10), which "
                         "cannot be reached without a zone id",
                         q);
    }
    return set_error(err, SHARES_EINVAL, "ip_address address: unknown class");
}

/* ---- ordering -------------------------------------------------------- */

static int cmp_address(const struct address *a, const struct address *b)
{
    int c;

    if (a->v6 != b->v6)
        return a->v6 < b->v6 ? -1 : 1;
    c = memcmp(a->bytes, b->bytes, a->v6 ? 16 : 4);
    if (c)
        return c;
    return (a->port > b->port) - (a->port < b->port);
}

/* Position of the first entry of `order` not less than the key, and
 * whether it is equal. One function per element type keeps them typed. */
static size_t find_resource(const struct shares_item *item, const char *name, int *found)
{
    size_t lo = 0, hi = item->nres, mid;
    int c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(item->res[item->res_order[mid]].name, name);
        if (c < 0) {
            lo = mid + 1;
        } else {
            *found = c == 0;
            hi = mid;
        }
    }
    return lo;
}

/* Hashes are unique in a resource, so ordering by hash alone is the
 * documented "by hash then name". */
static size_t find_share(const struct resource *r, const char *hash, int *found)
{
    size_t lo = 0, hi = r->nshares, mid;
    int c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = strcmp(r->shares[r->share_order[mid]].hash, hash);
        if (c < 0) {
            lo = mid + 1;
        } else {
            *found = c == 0;
            hi = mid;
        }
    }
    return lo;
}

static size_t find_address(const struct resource *r, const struct address *a, int *found)
{
    size_t lo = 0, hi = r->naddrs, mid;
    int c;

    *found = 0;
    while (lo < hi) {
        mid = lo + (hi - lo) / 2;
        c = cmp_address(&r->addrs[r->addr_order[mid]], a);
        if (c < 0) {
            lo = mid + 1;
        } else {
            *found = c == 0;
            hi = mid;
        }
    }
    return lo;
}

static void order_insert(uint32_t *order, size_t n, size_t pos, size_t idx)
{
    memmove(order + pos + 1, order + pos, (n - pos) * sizeof *order);
    order[pos] = (uint32_t)idx;
}

/* Drop the entries >= keep from a sorted index, keeping the others'
 * order. Never allocates, so a rollback cannot fail. */
static void order_truncate(uint32_t *order, size_t n, size_t keep)
{
    size_t i, o = 0;

    for (i = 0; i < n; i++)
        if (order[i] < keep)
            order[o++] = order[i];
}

/* ---- storage --------------------------------------------------------- */

/* Returns `arr` grown to hold `need` elements (doubling), or NULL with
 * `arr` untouched and still owned by the caller. */
static void *grow(void *arr, size_t *cap, size_t need, size_t elem)
{
    size_t ncap = *cap ? *cap : 4;
    void *p;

    if (need <= *cap)
        return arr;
    while (ncap < need) {
        if (ncap > SIZE_MAX / 2 / elem)
            return NULL;
        ncap *= 2;
    }
    p = realloc(arr, ncap * elem);
    if (!p)
        return NULL;
    *cap = ncap;
    return p;
}

static char *dup_string(const char *s)
{
    size_t n = strlen(s) + 1;
    char *d = malloc(n);

    if (d)
        memcpy(d, s, n);
    return d;
}

/* A <resource/> element named `name` with `children` children whose sizes
 * add up to `body`. */
static size3_t resource_size(size3_t name, size_t children, size3_t body)
{
    size3_t fixed;

    if (!children) {
        fixed.canon = fixed.xml = RES_EMPTY;
        fixed.term = TERM_RES_EMPTY;
        return size3_add(fixed, name);
    }
    fixed.canon = fixed.xml = RES_WRAP;
    fixed.term = TERM_RES_WRAP;
    return size3_add(size3_add(fixed, name), body);
}

/* The whole <user_shares/> holding `nres` resources whose sizes add up to
 * `body`. */
static size3_t item_size(size_t nres, size3_t body)
{
    size3_t z;

    if (!nres) {
        z.canon = z.xml = ROOT_EMPTY;
        z.term = TERM_ROOT_EMPTY;
        return z;
    }
    z.canon = z.xml = ROOT_WRAP;
    z.term = TERM_ROOT_WRAP;
    return size3_add(z, body);
}

/* The size limit on an item of size `z`: max_item_bytes on the xml
 * measure and, with any max_item_bytes set, ejabberd's payload limit on
 * the term measure. `what` is "would be" (an add) or "is". */
static int check_size(const struct shares_item *item, size3_t z, const char *what,
                      shares_error_t *err)
{
    if (!item->lim.max_item_bytes)
        return SHARES_OK;
    if (z.xml > item->lim.max_item_bytes)
        return set_error(err, SHARES_ELIMIT,
                         "user_shares %s %zu bytes as servers serialize it, over the limit of %zu",
                         what, z.xml, item->lim.max_item_bytes);
    if (z.term > SHARES_EJABBERD_MAX_PAYLOAD)
        return set_error(err, SHARES_ELIMIT,
                         "user_shares %s %zu bytes by ejabberd's measure of a PEP payload, over "
                         "its limit of %d",
                         what, z.term, SHARES_EJABBERD_MAX_PAYLOAD);
    return SHARES_OK;
}

/* Item body after resource `r`'s body grows by `extra` and one child,
 * checked against the size limits. */
static int check_item_growth(const struct shares_item *item, const struct resource *r,
                             size3_t extra, size3_t *new_body, shares_error_t *err)
{
    size_t children = r->nshares + r->naddrs;
    size3_t before = resource_size(r->name_size, children, r->body);
    size3_t after = resource_size(r->name_size, children + 1, size3_add(r->body, extra));
    size3_t body = size3_add(size3_sub(item->body, before), after);
    int rc = check_size(item, item_size(item->nres, body), "would be", err);

    if (rc == SHARES_OK)
        *new_body = body;
    return rc;
}

shares_item_t *shares_item_new(const shares_limits_t *lim)
{
    struct shares_item *item = calloc(1, sizeof *item);

    if (!item)
        return NULL;
    if (lim)
        item->lim = *lim;
    else
        shares_limits_default(&item->lim);
    return item;
}

static void resource_free(struct resource *r)
{
    size_t i;

    for (i = 0; i < r->nshares; i++)
        free(r->shares[i].name);
    free(r->shares);
    free(r->share_order);
    free(r->addrs);
    free(r->addr_order);
    free(r->name);
}

void shares_item_free(shares_item_t *item)
{
    size_t i;

    if (!item)
        return;
    for (i = 0; i < item->nres; i++)
        resource_free(&item->res[i]);
    free(item->res);
    free(item->res_order);
    free(item);
}

static int resource_at(shares_item_t *item, size_t ri, struct resource **r, shares_error_t *err)
{
    *r = NULL;
    if (!item)
        return set_error(err, SHARES_EINVAL, "no item");
    if (ri >= item->nres)
        return set_error(err, SHARES_ERANGE, "resource index %zu out of range (%zu resources)", ri,
                         item->nres);
    *r = &item->res[ri];
    return SHARES_OK;
}

int shares_item_add_resource(shares_item_t *item, const char *resource, size_t *index,
                             shares_error_t *err)
{
    struct resource *res;
    uint32_t *order;
    char q[QUOTE_BUF];
    char *name;
    size3_t name_size, body;
    size_t pos;
    int found, rc;

    if (!item)
        return set_error(err, SHARES_EINVAL, "no item");
    rc = shares_validate_resource(resource, item->lim.max_resource_bytes, err);
    if (rc)
        return rc;
    pos = find_resource(item, resource, &found);
    if (found) {
        quote(q, resource);
        return set_error(err, SHARES_EINVAL, "duplicate resource %s", q);
    }
    if ((item->lim.max_resources && item->nres >= item->lim.max_resources) ||
        item->nres >= UINT32_MAX)
        return set_error(err, SHARES_ELIMIT, "too many resources: the limit is %zu",
                         item->lim.max_resources);
    name_size = value_size(resource);
    body = size3_add(item->body, resource_size(name_size, 0, plain_size(0)));
    rc = check_size(item, item_size(item->nres + 1, body), "would be", err);
    if (rc)
        return rc;

    res = grow(item->res, &item->cap_res, item->nres + 1, sizeof *res);
    if (!res)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    item->res = res;
    order = grow(item->res_order, &item->cap_res_order, item->nres + 1, sizeof *order);
    if (!order)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    item->res_order = order;
    name = dup_string(resource);
    if (!name)
        return set_error(err, SHARES_ENOMEM, "out of memory");

    memset(&item->res[item->nres], 0, sizeof *item->res);
    item->res[item->nres].name = name;
    item->res[item->nres].name_size = name_size;
    order_insert(item->res_order, item->nres, pos, item->nres);
    item->body = body;
    if (index)
        *index = item->nres;
    item->nres++;
    return SHARES_OK;
}

int shares_item_add_share(shares_item_t *item, size_t ri, const char *hash, const char *name,
                          uint64_t size, shares_error_t *err)
{
    struct resource *r;
    struct share *shares;
    uint32_t *order;
    char lower[SHARES_HASH_MAX];
    char q[QUOTE_BUF];
    char *copy;
    size3_t extra, body;
    size_t i, len, pos;
    int found, rc;

    rc = resource_at(item, ri, &r, err);
    if (rc)
        return rc;
    rc = shares_validate_hash(hash, err);
    if (rc)
        return rc;
    rc = shares_validate_name(name, item->lim.max_name_bytes, err);
    if (rc)
        return rc;
    if (size > INT64_MAX)
        return set_error(err, SHARES_EINVAL,
                         "share_item size %" PRIu64 " is over the maximum of %" PRId64, size,
                         INT64_MAX);
    len = strlen(hash);
    for (i = 0; i <= len; i++)
        lower[i] = (char)(hash[i] >= 'A' && hash[i] <= 'F' ? hash[i] - 'A' + 'a' : hash[i]);
    pos = find_share(r, lower, &found);
    if (found) {
        quote(q, r->name);
        return set_error(err, SHARES_EINVAL, "duplicate share_item hash \"%s\" in resource %s",
                         lower, q);
    }
    if ((item->lim.max_shares && r->nshares >= item->lim.max_shares) || r->nshares >= UINT32_MAX) {
        quote(q, r->name);
        return set_error(err, SHARES_ELIMIT, "too many shares in resource %s: the limit is %zu", q,
                         item->lim.max_shares);
    }
    extra.canon = extra.xml = SHARE_FIXED;
    extra.term = TERM_SHARE_FIXED;
    extra = size3_add(size3_add(extra, plain_size(len + decimal_len(size))), value_size(name));
    rc = check_item_growth(item, r, extra, &body, err);
    if (rc)
        return rc;

    shares = grow(r->shares, &r->cap_shares, r->nshares + 1, sizeof *shares);
    if (!shares)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    r->shares = shares;
    order = grow(r->share_order, &r->cap_share_order, r->nshares + 1, sizeof *order);
    if (!order)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    r->share_order = order;
    copy = dup_string(name);
    if (!copy)
        return set_error(err, SHARES_ENOMEM, "out of memory");

    memcpy(r->shares[r->nshares].hash, lower, len + 1);
    r->shares[r->nshares].name = copy;
    r->shares[r->nshares].size = size;
    order_insert(r->share_order, r->nshares, pos, r->nshares);
    r->body = size3_add(r->body, extra);
    item->body = body;
    r->nshares++;
    return SHARES_OK;
}

int shares_item_add_address(shares_item_t *item, size_t ri, const char *address, unsigned long port,
                            shares_error_t *err)
{
    struct resource *r;
    struct address a, *addrs;
    uint32_t *order;
    char q[QUOTE_BUF];
    size3_t extra, body;
    size_t pos;
    int found, rc;

    rc = resource_at(item, ri, &r, err);
    if (rc)
        return rc;
    rc = canon_address(address, &a, err);
    if (rc)
        return rc;
    if (port < 1 || port > 65535)
        return set_error(err, SHARES_EINVAL, "ip_address port %lu is out of range 1..65535", port);
    a.port = (uint16_t)port;
    pos = find_address(r, &a, &found);
    if (found) {
        quote(q, r->name);
        return set_error(err, SHARES_EINVAL, "duplicate ip_address %s port %lu in resource %s",
                         a.text, port, q);
    }
    if ((item->lim.max_addresses && r->naddrs >= item->lim.max_addresses) ||
        r->naddrs >= UINT32_MAX) {
        quote(q, r->name);
        return set_error(err, SHARES_ELIMIT, "too many addresses in resource %s: the limit is %zu",
                         q, item->lim.max_addresses);
    }
    extra.canon = extra.xml = ADDR_FIXED;
    extra.term = TERM_ADDR_FIXED;
    extra = size3_add(extra, plain_size(strlen(a.text) + decimal_len(a.port)));
    rc = check_item_growth(item, r, extra, &body, err);
    if (rc)
        return rc;

    addrs = grow(r->addrs, &r->cap_addrs, r->naddrs + 1, sizeof *addrs);
    if (!addrs)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    r->addrs = addrs;
    order = grow(r->addr_order, &r->cap_addr_order, r->naddrs + 1, sizeof *order);
    if (!order)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    r->addr_order = order;

    r->addrs[r->naddrs] = a;
    order_insert(r->addr_order, r->naddrs, pos, r->naddrs);
    r->body = size3_add(r->body, extra);
    item->body = body;
    r->naddrs++;
    return SHARES_OK;
}

/* Undo the children added to resource `ri` since the counts and byte
 * totals were saved. */
static void resource_rollback(shares_item_t *item, size_t ri, size_t nshares, size_t naddrs,
                              size3_t res_body, size3_t item_body)
{
    struct resource *r = &item->res[ri];
    size_t i;

    for (i = nshares; i < r->nshares; i++)
        free(r->shares[i].name);
    order_truncate(r->share_order, r->nshares, nshares);
    order_truncate(r->addr_order, r->naddrs, naddrs);
    r->nshares = nshares;
    r->naddrs = naddrs;
    r->body = res_body;
    item->body = item_body;
}

/* ---- read access ----------------------------------------------------- */

void shares_item_size(const shares_item_t *item, shares_size_t *out)
{
    size3_t z;

    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!item)
        return;
    z = item_size(item->nres, item->body);
    out->canonical = z.canon;
    out->xml = z.xml;
    out->term = z.term;
}

size_t shares_item_resource_count(const shares_item_t *item)
{
    return item ? item->nres : 0;
}

const char *shares_item_resource(const shares_item_t *item, size_t ri)
{
    return item && ri < item->nres ? item->res[ri].name : NULL;
}

size_t shares_item_share_count(const shares_item_t *item, size_t ri)
{
    return item && ri < item->nres ? item->res[ri].nshares : 0;
}

int shares_item_share(const shares_item_t *item, size_t ri, size_t si, shares_share_t *out)
{
    const struct share *s;

    if (!item || ri >= item->nres || si >= item->res[ri].nshares || !out)
        return SHARES_ERANGE;
    s = &item->res[ri].shares[si];
    out->hash = s->hash;
    out->name = s->name;
    out->size = s->size;
    return SHARES_OK;
}

size_t shares_item_address_count(const shares_item_t *item, size_t ri)
{
    return item && ri < item->nres ? item->res[ri].naddrs : 0;
}

int shares_item_address(const shares_item_t *item, size_t ri, size_t ai, shares_address_t *out)
{
    const struct address *a;

    if (!item || ri >= item->nres || ai >= item->res[ri].naddrs || !out)
        return SHARES_ERANGE;
    a = &item->res[ri].addrs[ai];
    out->address = a->text;
    out->port = a->port;
    return SHARES_OK;
}

/* ---- building and serializing ---------------------------------------- */

/* A new, already attached child named `name`: releasing the root then
 * frees it whatever fails next. */
static xmpp_stanza_t *add_element(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);

    if (!el)
        return NULL;
    if (xmpp_stanza_add_child_ex(parent, el, 0) != XMPP_EOK) {
        xmpp_stanza_release(el);
        return NULL;
    }
    return xmpp_stanza_set_name(el, name) == XMPP_EOK ? el : NULL;
}

static int build_resource(const struct resource *r, xmpp_ctx_t *ctx, xmpp_stanza_t *res)
{
    const struct share *s;
    const struct address *a;
    xmpp_stanza_t *el;
    char num[24];
    size_t i;

    for (i = 0; i < r->nshares; i++) {
        s = &r->shares[r->share_order[i]];
        el = add_element(ctx, res, "share_item");
        if (!el)
            return -1;
        snprintf(num, sizeof num, "%" PRIu64, s->size);
        if (xmpp_stanza_set_attribute(el, "hash", s->hash) != XMPP_EOK ||
            xmpp_stanza_set_attribute(el, "name", s->name) != XMPP_EOK ||
            xmpp_stanza_set_attribute(el, "size", num) != XMPP_EOK)
            return -1;
    }
    for (i = 0; i < r->naddrs; i++) {
        a = &r->addrs[r->addr_order[i]];
        el = add_element(ctx, res, "ip_address");
        if (!el)
            return -1;
        snprintf(num, sizeof num, "%u", (unsigned)a->port);
        if (xmpp_stanza_set_attribute(el, "address", a->text) != XMPP_EOK ||
            xmpp_stanza_set_attribute(el, "port", num) != XMPP_EOK)
            return -1;
    }
    return 0;
}

xmpp_stanza_t *shares_item_build(const shares_item_t *item, xmpp_ctx_t *ctx)
{
    const struct resource *r;
    xmpp_stanza_t *root, *res;
    size_t i;

    if (!item || !ctx)
        return NULL;
    root = xmpp_stanza_new(ctx);
    if (!root)
        return NULL;
    if (xmpp_stanza_set_name(root, "user_shares") != XMPP_EOK ||
        xmpp_stanza_set_ns(root, SHARES_NS) != XMPP_EOK)
        goto fail;
    /* Children get no xmlns of their own: they inherit the root's. */
    for (i = 0; i < item->nres; i++) {
        r = &item->res[item->res_order[i]];
        res = add_element(ctx, root, "resource");
        if (!res || xmpp_stanza_set_attribute(res, "resource", r->name) != XMPP_EOK ||
            build_resource(r, ctx, res) != 0)
            goto fail;
    }
    return root;

fail:
    xmpp_stanza_release(root);
    return NULL;
}

int shares_item_serialize(const shares_item_t *item, xmpp_ctx_t *ctx, char **buf, size_t *len,
                          shares_error_t *err)
{
    xmpp_stanza_t *st = NULL;
    char *text = NULL, *copy;
    size_t tlen = 0;
    int rc;

    if (!buf || !len)
        return set_error(err, SHARES_EINVAL, "no output buffer");
    *buf = NULL;
    *len = 0;
    if (!item || !ctx)
        return set_error(err, SHARES_EINVAL, "no item or context");
    st = shares_item_build(item, ctx);
    if (!st) {
        rc = set_error(err, SHARES_ENOMEM, "out of memory building the item");
        goto out;
    }
    if (xmpp_stanza_to_text(st, &text, &tlen) != XMPP_EOK) {
        rc = set_error(err, SHARES_ENOMEM, "out of memory serializing the item");
        goto out;
    }
    rc = check_size(item, item_size(item->nres, item->body), "is", err);
    if (rc)
        goto out;
    /* Copied so the caller frees with free() whatever ctx allocates with. */
    copy = malloc(tlen + 1);
    if (!copy) {
        rc = set_error(err, SHARES_ENOMEM, "out of memory");
        goto out;
    }
    memcpy(copy, text, tlen);
    copy[tlen] = '\0';
    *buf = copy;
    *len = tlen;
    rc = SHARES_OK;

out:
    if (text)
        xmpp_free(ctx, text);
    if (st)
        xmpp_stanza_release(st);
    return rc;
}

/* Append `s` escaped as libstrophe escapes attribute values; plain spans
 * are copied whole. */
static char *write_escaped(char *o, const char *s)
{
    for (;;) {
        size_t plain = strcspn(s, "<>&\"");
        memcpy(o, s, plain);
        o += plain;
        s += plain;
        switch (*s) {
        case '\0':
            return o;
        case '<':
            memcpy(o, "&lt;", 4), o += 4;
            break;
        case '>':
            memcpy(o, "&gt;", 4), o += 4;
            break;
        case '&':
            memcpy(o, "&amp;", 5), o += 5;
            break;
        default: /* '"' */
            memcpy(o, "&quot;", 6), o += 6;
            break;
        }
        s++;
    }
}

#define WRITE_LIT(o, s) (memcpy((o), (s), LIT(s)), (o) + LIT(s))

static char *write_decimal(char *o, uint64_t v)
{
    char tmp[24];
    size_t n = 0;

    do
        tmp[n++] = (char)('0' + v % 10);
    while ((v /= 10) != 0);
    while (n)
        *o++ = tmp[--n];
    return o;
}

int shares_item_write(const shares_item_t *item, char **buf, size_t *len, shares_error_t *err)
{
    size_t total, i, j;
    char *out, *o;
    int rc;

    if (!buf || !len)
        return set_error(err, SHARES_EINVAL, "no output buffer");
    *buf = NULL;
    *len = 0;
    if (!item)
        return set_error(err, SHARES_EINVAL, "no item");
    rc = check_size(item, item_size(item->nres, item->body), "is", err);
    if (rc)
        return rc;
    total = item_size(item->nres, item->body).canon;
    out = malloc(total + 1);
    if (!out)
        return set_error(err, SHARES_ENOMEM, "out of memory");
    o = out;
    if (!item->nres) {
        o = WRITE_LIT(o, "<user_shares xmlns=\"" SHARES_NS "\"/>");
    } else {
        o = WRITE_LIT(o, "<user_shares xmlns=\"" SHARES_NS "\">");
        for (i = 0; i < item->nres; i++) {
            const struct resource *r = &item->res[item->res_order[i]];
            o = WRITE_LIT(o, "<resource resource=\"");
            o = write_escaped(o, r->name);
            if (!r->nshares && !r->naddrs) {
                o = WRITE_LIT(o, "\"/>");
                continue;
            }
            o = WRITE_LIT(o, "\">");
            /* Attribute order is the one xmpp_stanza_to_text() produces. */
            for (j = 0; j < r->nshares; j++) {
                const struct share *sh = &r->shares[r->share_order[j]];
                o = WRITE_LIT(o, "<share_item hash=\"");
                o = write_escaped(o, sh->hash);
                o = WRITE_LIT(o, "\" size=\"");
                o = write_decimal(o, sh->size);
                o = WRITE_LIT(o, "\" name=\"");
                o = write_escaped(o, sh->name);
                o = WRITE_LIT(o, "\"/>");
            }
            for (j = 0; j < r->naddrs; j++) {
                const struct address *a = &r->addrs[r->addr_order[j]];
                o = WRITE_LIT(o, "<ip_address port=\"");
                o = write_decimal(o, a->port);
                o = WRITE_LIT(o, "\" address=\"");
                o = write_escaped(o, a->text);
                o = WRITE_LIT(o, "\"/>");
            }
            o = WRITE_LIT(o, "</resource>");
        }
        o = WRITE_LIT(o, "</user_shares>");
    }
    if ((size_t)(o - out) != total) {
        size_t written = (size_t)(o - out);
        free(out);
        return set_error(err, SHARES_EINVAL, "internal error: length %zu, expected %zu", written,
                         total);
    }
    *o = '\0';
    *buf = out;
    *len = total;
    return SHARES_OK;
}

int shares_text_digest(const char *text, size_t len, char hex[SHARES_DIGEST_HEX])
{
    static const char digits[] = "0123456789abcdef";
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int mdlen = 0, i;

    hex[0] = '\0';
    if (EVP_Digest(text, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32)
        return SHARES_ENOMEM;
    for (i = 0; i < mdlen; i++) {
        hex[2 * i] = digits[md[i] >> 4];
        hex[2 * i + 1] = digits[md[i] & 15];
    }
    hex[2 * mdlen] = '\0';
    return SHARES_OK;
}

int shares_item_digest(const shares_item_t *item, char hex[SHARES_DIGEST_HEX], shares_error_t *err)
{
    char *buf = NULL;
    size_t len = 0;
    int rc;

    if (!hex)
        return set_error(err, SHARES_EINVAL, "no output buffer");
    hex[0] = '\0';
    rc = shares_item_write(item, &buf, &len, err);
    if (rc)
        return rc;
    if (shares_text_digest(buf, len, hex) != SHARES_OK)
        rc = set_error(err, SHARES_ENOMEM, "SHA-256 failed");
    free(buf);
    return rc;
}

/* ---- parsing --------------------------------------------------------- */

/* Whether `el` is <name/> in namespace `ns`; without an xmlns of its own
 * it is in its parent's namespace `parent_ns`. */
static int is_element(xmpp_stanza_t *el, const char *name, const char *ns, const char *parent_ns)
{
    const char *el_name, *el_ns;

    if (!xmpp_stanza_is_tag(el))
        return 0;
    el_name = xmpp_stanza_get_name(el);
    if (!el_name || strcmp(el_name, name) != 0)
        return 0;
    el_ns = xmpp_stanza_get_ns(el);
    if (!el_ns)
        el_ns = parent_ns;
    return el_ns && strcmp(el_ns, ns) == 0;
}

static int parse_share(shares_item_t *item, size_t ri, xmpp_stanza_t *el, shares_error_t *err)
{
    const char *hash = xmpp_stanza_get_attribute(el, "hash");
    const char *name = xmpp_stanza_get_attribute(el, "name");
    uint64_t size = 0;
    int rc;

    /* Attributes in document order, so the first problem is reported. */
    rc = shares_validate_hash(hash, err);
    if (rc)
        return rc;
    rc = shares_validate_name(name, item->lim.max_name_bytes, err);
    if (rc)
        return rc;
    rc = shares_parse_size(xmpp_stanza_get_attribute(el, "size"), &size, err);
    if (rc)
        return rc;
    return shares_item_add_share(item, ri, hash, name, size, err);
}

static int parse_address(shares_item_t *item, size_t ri, xmpp_stanza_t *el, shares_error_t *err)
{
    struct address a;
    uint16_t port = 0;
    int rc;

    rc = canon_address(xmpp_stanza_get_attribute(el, "address"), &a, err);
    if (rc)
        return rc;
    rc = shares_parse_port(xmpp_stanza_get_attribute(el, "port"), &port, err);
    if (rc)
        return rc;
    return shares_item_add_address(item, ri, a.text, port, err);
}

int shares_item_parse_resource_children(shares_item_t *item, size_t ri, const xmpp_stanza_t *parent,
                                        const char *ns, shares_error_t *err)
{
    xmpp_stanza_t *p = xmpp_compat_mutable(parent), *child;
    const char *want = ns ? ns : SHARES_NS;
    const char *parent_ns;
    struct resource *r;
    size_t nshares, naddrs, nth_share = 0, nth_addr = 0;
    size3_t res_body, item_body;
    char q[QUOTE_BUF];
    int rc = resource_at(item, ri, &r, err);

    if (rc)
        return rc;
    if (!p || !xmpp_stanza_is_tag(p))
        return set_error(err, SHARES_EINVAL, "no element to parse");
    /* A parent without xmlns (as built by shares_item_build()) inherits
     * from an ancestor the caller has already checked. */
    parent_ns = xmpp_stanza_get_ns(p);
    if (!parent_ns)
        parent_ns = want;
    nshares = r->nshares;
    naddrs = r->naddrs;
    res_body = r->body;
    item_body = item->body;

    for (child = xmpp_stanza_get_children(p); child; child = xmpp_stanza_get_next(child)) {
        if (is_element(child, "share_item", want, parent_ns)) {
            nth_share++;
            rc = parse_share(item, ri, child, err);
            if (rc) {
                quote(q, item->res[ri].name);
                prefix_error(err, "resource %s, share_item #%zu: ", q, nth_share);
                goto fail;
            }
        } else if (is_element(child, "ip_address", want, parent_ns)) {
            nth_addr++;
            rc = parse_address(item, ri, child, err);
            if (rc) {
                quote(q, item->res[ri].name);
                prefix_error(err, "resource %s, ip_address #%zu: ", q, nth_addr);
                goto fail;
            }
        }
    }
    return SHARES_OK;

fail:
    resource_rollback(item, ri, nshares, naddrs, res_body, item_body);
    return rc;
}

int shares_item_parse(const xmpp_stanza_t *user_shares, const shares_limits_t *lim,
                      shares_item_t **out, shares_error_t *err)
{
    xmpp_stanza_t *root = xmpp_compat_mutable(user_shares), *child;
    shares_item_t *item = NULL;
    const char *name, *ns, *resource;
    char q[QUOTE_BUF];
    size_t ri = 0;
    int rc = SHARES_OK;

    if (!out)
        return set_error(err, SHARES_EINVAL, "no output item");
    *out = NULL;
    if (!root || !xmpp_stanza_is_tag(root))
        return set_error(err, SHARES_EINVAL, "expected a <user_shares/> element");
    name = xmpp_stanza_get_name(root);
    if (!name || strcmp(name, "user_shares") != 0) {
        quote(q, name ? name : "");
        return set_error(err, SHARES_EINVAL, "root element is %s, expected user_shares", q);
    }
    ns = xmpp_stanza_get_ns(root);
    if (!ns)
        return set_error(err, SHARES_EINVAL,
                         "user_shares has no namespace, expected \"" SHARES_NS "\"");
    if (strcmp(ns, SHARES_NS) != 0) {
        quote(q, ns);
        return set_error(err, SHARES_EINVAL,
                         "user_shares is in namespace %s, expected "
                         "\"" SHARES_NS "\"",
                         q);
    }
    item = shares_item_new(lim);
    if (!item)
        return set_error(err, SHARES_ENOMEM, "out of memory");

    for (child = xmpp_stanza_get_children(root); child; child = xmpp_stanza_get_next(child)) {
        if (!is_element(child, "resource", SHARES_NS, SHARES_NS))
            continue;
        resource = xmpp_stanza_get_attribute(child, "resource");
        rc = shares_item_add_resource(item, resource, &ri, err);
        if (rc)
            goto fail;
        rc = shares_item_parse_resource_children(item, ri, child, SHARES_NS, err);
        if (rc)
            goto fail;
    }
    *out = item;
    return SHARES_OK;

fail:
    shares_item_free(item);
    return rc;
}

int shares_item_parse_text(xmpp_ctx_t *ctx, const char *xml, const shares_limits_t *lim,
                           shares_item_t **out, shares_error_t *err)
{
    xmpp_stanza_t *st;
    int rc;

    if (out)
        *out = NULL;
    if (!ctx || !xml)
        return set_error(err, SHARES_EINVAL, "no context or text");
    /* NULL means malformed XML or out of memory; libstrophe does not say
     * which, and the former is by far the likelier. */
    st = xmpp_stanza_new_from_string(ctx, xml);
    if (!st)
        return set_error(err, SHARES_EINVAL, "not a well-formed XML element");
    rc = shares_item_parse(st, lim, out, err);
    xmpp_stanza_release(st);
    return rc;
}
