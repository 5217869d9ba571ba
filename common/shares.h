/* SPDX-License-Identifier: MIT */
/*
 * Wire format of the merged shares item (namespace
 * https://xmpp.kwoh.de/protocol/shares): an in-memory model of one user's
 * shares across resources, with validation, deterministic serialization on
 * libstrophe stanzas, parsing back from stanzas or XML text, and a digest of
 * the serialized bytes so that an unchanged state is never republished.
 */
#ifndef BITWEEN_COMMON_SHARES_H
#define BITWEEN_COMMON_SHARES_H

#include <stddef.h>
#include <stdint.h>

#include <strophe.h>

#define SHARES_NS        "https://xmpp.kwoh.de/protocol/shares"
#define SHARES_NOTIFY_NS SHARES_NS "+notify"
#define SHARES_ITEM_ID   "current"

/* Error codes (negative return values). */
enum {
    SHARES_OK = 0,
    SHARES_EINVAL = -1, /* malformed input: maps to XMPP bad-request */
    SHARES_ELIMIT = -2, /* over a configured limit: policy-violation */
    SHARES_ENOMEM = -3, /* allocation failed */
    SHARES_ERANGE = -4  /* index out of range (caller bug) */
};

#define SHARES_ERROR_TEXT 256

/** Error detail filled by fallible calls; `message` is NUL-terminated. */
typedef struct shares_error {
    int code;
    char message[SHARES_ERROR_TEXT];
} shares_error_t;

/** Limits enforced by every add (hence while parsing); 0 means "no limit".
 * A limit exceeded gives SHARES_ELIMIT. max_item_bytes bounds the item as
 * a server re-serializes it for contacts (shares_size_t.xml, not the
 * shorter canonical text: each ' takes 6 bytes there); when it is set, the
 * item must also stay within SHARES_EJABBERD_MAX_PAYLOAD by ejabberd's own
 * measure (shares_size_t.term). Checked by every add, so an item that was
 * built never exceeds them. */
typedef struct shares_limits {
    size_t max_resources;      /* resources per user */
    size_t max_shares;         /* shares per resource */
    size_t max_addresses;      /* addresses per resource */
    size_t max_name_bytes;     /* share name, in bytes of UTF-8 */
    size_t max_resource_bytes; /* resource part, in bytes of UTF-8 */
    size_t max_item_bytes;     /* user_shares element as servers serialize it */
    /* Not a limit of the item: agent_request_parse() screens addresses
     * with it (shares_screen_address()). 0: loopback refused. */
    int allow_loopback;
} shares_limits_t;

/* ejabberd's default max_payload_size of a PEP node (mod_pubsub), which
 * it compares with the size of the payload in Erlang's external term
 * format. */
#define SHARES_EJABBERD_MAX_PAYLOAD 250000

/* Defaults; the merged-item cap stays far below the servers' stanza limits
 * (Prosody: 256 KiB c2s, 512 KiB component; ejabberd PEP: 250,000 bytes). */
#define SHARES_DEFAULT_MAX_RESOURCES      16
#define SHARES_DEFAULT_MAX_SHARES         1000
#define SHARES_DEFAULT_MAX_ADDRESSES      8
#define SHARES_DEFAULT_MAX_NAME_BYTES     255
#define SHARES_DEFAULT_MAX_RESOURCE_BYTES 1023
#define SHARES_DEFAULT_MAX_ITEM_BYTES     (64 * 1024)

/** Fill `lim` with the defaults above. */
void shares_limits_default(shares_limits_t *lim);

/* Longest hash (v2, 64 hex) plus NUL; longest canonical IPv6 text plus NUL. */
#define SHARES_HASH_MAX 65
#define SHARES_ADDR_MAX 46

/** Read-only view of one share; strings borrowed from the item. */
typedef struct shares_share {
    const char *hash; /* lowercase hex, 40 (v1) or 64 (v2) digits */
    const char *name;
    uint64_t size; /* at most INT64_MAX */
} shares_share_t;

/** Read-only view of one address; `address` borrowed from the item. */
typedef struct shares_address {
    const char *address; /* canonical IPv4 or IPv6 literal */
    uint16_t port;       /* 1..65535 */
} shares_address_t;

/** One user's shares across resources. Opaque. */
typedef struct shares_item shares_item_t;

/**
 * New empty item enforcing `lim` (copied; NULL means defaults).
 * Returns NULL on allocation failure. Free with shares_item_free().
 */
shares_item_t *shares_item_new(const shares_limits_t *lim) __attribute__((warn_unused_result));

/** Free an item and everything it owns; NULL is a no-op. */
void shares_item_free(shares_item_t *item);

/**
 * Add a resource named `resource`. On success returns 0 and stores its
 * index in `*index` when `index` is not NULL (indices are insertion order
 * and stay valid until the item is freed). Fails with SHARES_EINVAL (empty,
 * bad UTF-8, control characters, duplicate) or SHARES_ELIMIT
 * (max_resource_bytes, max_resources, max_item_bytes); the item is then
 * unchanged. In every function `err` may be NULL.
 */
int shares_item_add_resource(shares_item_t *item, const char *resource, size_t *index,
                             shares_error_t *err);

/**
 * Add a share to resource `ri`. `hash` is 40 or 64 hex digits (any case;
 * stored lowercase), `name` non-empty UTF-8 without control characters,
 * `size` at most INT64_MAX. A second share with the same hash in the same
 * resource is SHARES_EINVAL; max_name_bytes, max_shares and max_item_bytes
 * give SHARES_ELIMIT; a bad `ri` SHARES_ERANGE. On failure the item is
 * unchanged.
 */
int shares_item_add_share(shares_item_t *item, size_t ri, const char *hash, const char *name,
                          uint64_t size, shares_error_t *err);

/**
 * Add an address to resource `ri`: an IPv4 or IPv6 literal (stored in
 * canonical form; zone ids and brackets refused) and a port 1..65535. A
 * duplicate (same canonical address and port) is SHARES_EINVAL;
 * max_addresses and max_item_bytes give SHARES_ELIMIT; a bad `ri`
 * SHARES_ERANGE. On failure the item is unchanged.
 */
int shares_item_add_address(shares_item_t *item, size_t ri, const char *address, unsigned long port,
                            shares_error_t *err);

/* Read access. Views and strings are borrowed, valid until the item is
 * modified or freed. Shares and addresses are indexed in insertion order.
 * Out-of-range indices return 0 / NULL, or SHARES_ERANGE from
 * shares_item_share() and shares_item_address() (which return 0 on
 * success). */
size_t shares_item_resource_count(const shares_item_t *item);
const char *shares_item_resource(const shares_item_t *item, size_t ri);
size_t shares_item_share_count(const shares_item_t *item, size_t ri);
int shares_item_share(const shares_item_t *item, size_t ri, size_t si, shares_share_t *out);
size_t shares_item_address_count(const shares_item_t *item, size_t ri);
int shares_item_address(const shares_item_t *item, size_t ri, size_t ai, shares_address_t *out);

/**
 * Build the <user_shares/> element. Deterministic: resources ordered by
 * resource name (bytewise), shares by hash then name, addresses IPv4 first
 * then by address bytes then port; an item with no resource gives an empty
 * <user_shares/>. Returns a new stanza the caller releases with
 * xmpp_stanza_release(), or NULL on allocation failure.
 */
xmpp_stanza_t *shares_item_build(const shares_item_t *item, xmpp_ctx_t *ctx)
    __attribute__((warn_unused_result));

/**
 * Serialize the item to its canonical XML text (the bytes a publish sends)
 * into a malloc'd, NUL-terminated `*buf` the caller frees with free()
 * whatever allocator `ctx` uses; `*len` excludes the NUL. Fails with
 * SHARES_ELIMIT when the item is over the size limits (a safety net: the
 * add functions already refuse to cross them), SHARES_ENOMEM on
 * allocation failure; `*buf` is then NULL.
 */
int shares_item_serialize(const shares_item_t *item, xmpp_ctx_t *ctx, char **buf, size_t *len,
                          shares_error_t *err);

/**
 * Write the canonical text directly, without building stanzas: the same
 * bytes as shares_item_serialize() (the unit tests compare the two on
 * random items), in time linear in the item and with one allocation. Uses
 * no libstrophe context, so any thread may call it on an item it owns.
 * `*buf` is malloc'd (free with free()), NUL-terminated; `*len` excludes
 * the NUL. Same failures as shares_item_serialize().
 */
int shares_item_write(const shares_item_t *item, char **buf, size_t *len, shares_error_t *err);

/** Sizes of an item in bytes (see shares.c, "sizes", for how each bound
 * was derived from the servers' code). */
typedef struct shares_size {
    size_t canonical; /* its canonical text: shares_item_write()'s length */
    size_t xml;       /* upper bound of its XML as Prosody (util/stanza.lua) or
                         ejabberd (fast_xml) re-serializes it for contacts */
    size_t term;      /* upper bound of ejabberd's PEP payload size:
                         byte_size(term_to_binary([Payload])) - 2 */
} shares_size_t;

/** Fill `out` with the sizes of `item` (all 0 for a NULL item). Constant
 * time: the sizes are kept up to date by every add. */
void shares_item_size(const shares_item_t *item, shares_size_t *out);

#define SHARES_DIGEST_HEX 65 /* SHA-256 as lowercase hex plus NUL */

/**
 * SHA-256 of the canonical serialization as lowercase hex into `hex`.
 * Same state, same digest. Same failures as shares_item_write(); any
 * thread may call it.
 */
int shares_item_digest(const shares_item_t *item, char hex[SHARES_DIGEST_HEX], shares_error_t *err);

/**
 * SHA-256 of `len` bytes of `text` (the output of shares_item_write()) as
 * lowercase hex: what shares_item_digest() computes, for a caller that
 * already holds the text. Returns SHARES_OK or SHARES_ENOMEM.
 */
int shares_text_digest(const char *text, size_t len, char hex[SHARES_DIGEST_HEX]);

/**
 * Parse a <user_shares xmlns=SHARES_NS> element into a new item enforcing
 * `lim` (NULL: defaults). Every attribute is validated as by the add
 * functions; elements of other names or namespaces are ignored (forward
 * compatibility). On success `*out` owns a new item; on failure `*out` is
 * NULL and `err` says which element and attribute is wrong.
 */
int shares_item_parse(const xmpp_stanza_t *user_shares, const shares_limits_t *lim,
                      shares_item_t **out, shares_error_t *err);

/** As shares_item_parse(), from XML text (one element). */
int shares_item_parse_text(xmpp_ctx_t *ctx, const char *xml, const shares_limits_t *lim,
                           shares_item_t **out, shares_error_t *err);

/**
 * Parse the <share_item/> and <ip_address/> children of `parent` (a
 * <resource/> element, or any element carrying those children in SHARES_NS
 * or in `ns` when non-NULL) into resource `ri` of `item`. A child without
 * an xmlns of its own is in its parent's namespace; a parent without one
 * (as shares_item_build() makes them) is taken to be in the expected
 * namespace. Other children are ignored. Whole or nothing: on failure the
 * item is unchanged and `err` names the child ("share_item #3").
 */
int shares_item_parse_resource_children(shares_item_t *item, size_t ri, const xmpp_stanza_t *parent,
                                        const char *ns, shares_error_t *err);

/* Validators, exported for the agent protocol and storage layers. Each
 * returns 0 or SHARES_EINVAL/SHARES_ELIMIT with a message in `err` (ELIMIT
 * only for a name or resource longer than `max_bytes`; 0: no limit).
 * Messages quote at most a short, escaped prefix of the bad value and are
 * always valid UTF-8 without control characters. */
int shares_validate_hash(const char *hash, shares_error_t *err);
int shares_validate_name(const char *name, size_t max_bytes, shares_error_t *err);
int shares_validate_resource(const char *resource, size_t max_bytes, shares_error_t *err);
/** Parse a decimal size attribute ("0".."9223372036854775807"). */
int shares_parse_size(const char *text, uint64_t *out, shares_error_t *err);
/** Parse a decimal port attribute ("1".."65535"). */
int shares_parse_port(const char *text, uint16_t *out, shares_error_t *err);
/** Canonicalize an IP literal into `out` (SHARES_ADDR_MAX bytes). */
int shares_canon_address(const char *address, char out[SHARES_ADDR_MAX], shares_error_t *err);

/* Screening of what contacts are shown. The item model accepts whatever
 * the validators above accept (a stored item must always load); the
 * component screens what agents send on top, before storing it. Each
 * returns 0 or SHARES_EINVAL with a message naming the problem. */

/** A name (share_item name) or resource that holds no invisible
 * formatting character (utf8_hidden_name(): bidirectional controls,
 * zero-width space, tags outside an emoji flag, ...); the message names
 * the code point, and quotes the value with such characters escaped
 * (\u202E). Expects a value the validator accepted (invalid UTF-8 is
 * refused too). */
int shares_screen_name(const char *name, shares_error_t *err);
int shares_screen_resource(const char *resource, shares_error_t *err);

/** Classes of addresses a contact's BitTorrent client may be given. */
typedef enum shares_addr_class {
    SHARES_ADDR_USABLE,      /* any other: public, private (10/8, fc00::/7, ...) */
    SHARES_ADDR_UNSPECIFIED, /* 0.0.0.0/8, :: */
    SHARES_ADDR_LOOPBACK,    /* 127.0.0.0/8, ::1 */
    SHARES_ADDR_MULTICAST,   /* 224.0.0.0/4, ff00::/8 */
    SHARES_ADDR_BROADCAST,   /* 255.255.255.255 */
    SHARES_ADDR_RESERVED,    /* 240.0.0.0/4 but broadcast; ::/96 (IPv4-compatible) */
    SHARES_ADDR_LINK_LOCAL,  /* fe80::/10: needs a zone id the item cannot carry */
    SHARES_ADDR_INVALID      /* not an IPv4 or IPv6 literal */
} shares_addr_class_t;

/** Class of an IP literal. An IPv4 address inside IPv6 (::ffff:a.b.c.d,
 * or the NAT64 prefix 64:ff9b::/96) is judged as that IPv4 address. */
shares_addr_class_t shares_address_class(const char *address);

/** An address a contact can use: only SHARES_ADDR_USABLE, plus
 * SHARES_ADDR_LOOPBACK when `allow_loopback` (tests, one-machine setups).
 * The message names the class and its range. */
int shares_screen_address(const char *address, int allow_loopback, shares_error_t *err);

#endif /* BITWEEN_COMMON_SHARES_H */
