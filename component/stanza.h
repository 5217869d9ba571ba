/* SPDX-License-Identifier: MIT */
/*
 * Stanzas the component sends, built by pure functions: each
 * stanza_build_*() returns a new stanza and never sends it, so unit tests
 * compare the output as XML and the caller decides when to send (then
 * releases it with xmpp_stanza_release()). Also the two parsers of what the
 * server sends back about privileges: the XEP-0356 advertisement and the
 * reply to a privileged IQ. Replies to an IQ swap `from` and `to` and keep
 * its `id`; error replies carry no copy of the request's payload (RFC 6120
 * 8.3.1 allows it, and a refused register can be tens of KiB).
 */
#ifndef BITWEEN_COMPONENT_STANZA_H
#define BITWEEN_COMPONENT_STANZA_H

#include <stddef.h>

#include <strophe.h>

#include "agent_proto.h"

#define STANZA_NS_PING        "urn:xmpp:ping"
#define STANZA_NS_PRIVILEGE   "urn:xmpp:privilege:2"
#define STANZA_NS_PRIVILEGE_1 "urn:xmpp:privilege:1"
#define STANZA_NS_FORWARD     "urn:xmpp:forward:0"
#define STANZA_NS_PUBSUB      "http://jabber.org/protocol/pubsub"
#define STANZA_NS_DATA        "jabber:x:data"

/* In every builder `ctx` allocates the result; a request `req` is only
 * read (borrowed for the call). Every builder returns NULL when an
 * allocation fails or a required argument is NULL, and is safe to call
 * with any `req` (missing attributes are left out of the reply). */

/**
 * The envelope of `iq` without its payload: <iq type id from to/> (the
 * attributes it has), enough to build any reply to it later. What a
 * request waiting in a queue keeps: a parsed register of tens of KiB is
 * hundreds of KiB of stanza tree.
 */
xmpp_stanza_t *stanza_copy_iq_envelope(xmpp_ctx_t *ctx, const xmpp_stanza_t *iq)
    __attribute__((warn_unused_result));

/**
 * Empty IQ result replying to `req`: <iq type='result' id=req.id
 * to=req.from from=req.to/>.
 */
xmpp_stanza_t *stanza_build_iq_result(xmpp_ctx_t *ctx, const xmpp_stanza_t *req)
    __attribute__((warn_unused_result));

/**
 * IQ error replying to `req`:
 * <iq type='error' id to from><error type=TYPE><CONDITION
 * xmlns='urn:ietf:params:xml:ns:xmpp-stanzas'/><text xmlns=same
 * xml:lang='en'>TEXT</text></error></iq>. `type` and `condition` are
 * required (RFC 6120 values, not checked); `text` is optional (NULL or ""
 * leaves <text/> out) and is copied with control characters removed and
 * invalid UTF-8 bytes replaced by '?', so any string is safe to pass.
 */
xmpp_stanza_t *stanza_build_iq_error(xmpp_ctx_t *ctx, const xmpp_stanza_t *req, const char *type,
                                     const char *condition, const char *text)
    __attribute__((warn_unused_result));

/** stanza_build_iq_error() with the type, condition and text of `err`;
 * a conflict that knows the stored seq also carries, after <text/>, the
 * application-specific condition <stale-seq xmlns='urn:bitween:agent:1'
 * stored='N'/> (RFC 6120 8.3.3). */
xmpp_stanza_t *stanza_build_agent_error(xmpp_ctx_t *ctx, const xmpp_stanza_t *req,
                                        const agent_error_t *err)
    __attribute__((warn_unused_result));

/* FORM_TYPE of the XEP-0128 form in which the component advertises its
 * quotas. */
#define STANZA_QUOTAS_FORM AGENT_NS "#quotas"

/**
 * Reply to a disco#info get `req`: a result with
 * <query xmlns='http://jabber.org/protocol/disco#info'> holding
 * <identity category='component' type='generic' name=NAME/>, the
 * features disco#info, urn:xmpp:ping and AGENT_NS and, when `limits` is
 * not NULL, a XEP-0128 form (FORM_TYPE STANZA_QUOTAS_FORM) with the
 * fields max_resources, max_shares_per_resource,
 * max_addresses_per_resource, max_name_bytes and max_item_bytes. The
 * component has no nodes: a query with a `node` attribute gets a
 * cancel/item-not-found error instead.
 */
xmpp_stanza_t *stanza_build_disco_info(xmpp_ctx_t *ctx, const xmpp_stanza_t *req, const char *name,
                                       const shares_limits_t *limits)
    __attribute__((warn_unused_result));

/** XEP-0199 ping: <iq type='get' from to id><ping xmlns='urn:xmpp:ping'/>.
 * All three strings are required. */
xmpp_stanza_t *stanza_build_ping(xmpp_ctx_t *ctx, const char *from, const char *to, const char *id)
    __attribute__((warn_unused_result));

/**
 * XEP-0356 privileged IQ publishing `payload` (a <user_shares/>) as item
 * `current` of the user's PEP node SHARES_NS, with publish-options
 * persist_items=true and access_model=presence:
 *
 *   <iq from=COMPONENT to=USER type='set' id=OUTER>
 *     <privileged_iq xmlns='urn:xmpp:privilege:2'>
 *       <iq xmlns='jabber:client' type='set' from=USER to=USER id=INNER>
 *         <pubsub xmlns='http://jabber.org/protocol/pubsub'>
 *           <publish node=SHARES_NS><item id='current'>PAYLOAD</item></publish>
 *           <publish-options><x xmlns='jabber:x:data' type='submit'>…</x></publish-options>
 *
 * `user_bare_jid` must be a bare JID: the wrapped IQ's `from` equals the
 * outer `to` (what Prosody's mod_privilege requires when `from` is
 * present). All arguments are required.
 *
 * `payload` is TAKEN, not copied: the function owns the caller's reference
 * from the call on, success or failure (on failure it is released; NULL
 * returns NULL). It must be a stanza of its own, not a child of another,
 * and the caller must keep no other reference to it (libstrophe would
 * leave that one pointing at a freed parent): to publish the same item
 * again, build it again with shares_item_build(). (A copy here would cost
 * as much as the item, and libstrophe 0.12.2 crashes copying a stanza when
 * an allocation fails.)
 */
xmpp_stanza_t *stanza_build_privileged_publish(xmpp_ctx_t *ctx, const char *component_jid,
                                               const char *user_bare_jid, const char *outer_id,
                                               const char *inner_id, xmpp_stanza_t *payload)
    __attribute__((warn_unused_result));

/**
 * The IQ of stanza_build_privileged_publish() as text, with `payload`
 * (`payload_len` bytes of canonical <user_shares/> text from
 * shares_item_write()) spliced in unchanged, for xmpp_send_raw(): one copy
 * of the item instead of a stanza tree per element. The envelope is built
 * and serialized by libstrophe around an empty placeholder item, which is
 * then replaced. Returns a malloc'd NUL-terminated string (free with
 * free()) and its length in `*len`, or NULL when out of memory or when
 * `payload` is not a <user_shares element.
 */
char *stanza_text_privileged_publish(xmpp_ctx_t *ctx, const char *component_jid,
                                     const char *user_bare_jid, const char *outer_id,
                                     const char *inner_id, const char *payload, size_t payload_len,
                                     size_t *len) __attribute__((warn_unused_result));

/**
 * Verdict on the server's reply to a stanza_build_privileged_publish() IQ
 * (matched by id by the caller). Returns 0 when the outer IQ is a result
 * and the wrapped reply (<privilege xmlns='urn:xmpp:privilege:2'>
 * <forwarded xmlns='urn:xmpp:forward:0'><iq/>) is a result too, or absent;
 * otherwise -2 for a temporary error (error type `wait`) and -1 for any
 * other error or unexpected reply. On error writes "type/condition: text"
 * (the text only when the server sent one) into `errbuf`, taken from the
 * wrapped IQ's <error/> when there is one, else from the outer; control
 * characters are removed and the result truncated on a UTF-8 boundary.
 * `errbuf` may be NULL when `len` is 0; it is "" on success.
 */
int stanza_parse_privileged_result(const xmpp_stanza_t *reply, char *errbuf, size_t len);

#define STANZA_PERM_MAX 16

/** Privileges advertised by the server (XEP-0356). Strings are the `type`
 * of each <perm/> ("get", "outgoing", "roster", "none", ...), "" when not
 * advertised, cut at STANZA_PERM_MAX - 1 bytes. */
typedef struct stanza_privileges {
    int found;   /* a <privilege/> element was present */
    int version; /* 2: urn:xmpp:privilege:2, 1: urn:xmpp:privilege:1 */
    char roster[STANZA_PERM_MAX];
    char message[STANZA_PERM_MAX];
    char presence[STANZA_PERM_MAX];
    int pubsub_get; /* <perm access='iq'> grants pubsub get (type get or both) */
    int pubsub_set; /* ... pubsub set (type set or both) */
} stanza_privileges_t;

/**
 * Read a privilege advertisement: <message><privilege
 * xmlns='urn:xmpp:privilege:2'> (or :1, which has no iq permission) with
 * <perm access='roster|message|presence' type=…/> and <perm access='iq'>
 * <namespace ns=… type='get|set|both'/></perm>. Returns 0 and fills `out`
 * when the message carries a privilege element, else -1 with `out` zeroed.
 * Checking that the message comes from the server is the caller's job.
 */
int stanza_parse_privileges(const xmpp_stanza_t *message, stanza_privileges_t *out);

#endif /* BITWEEN_COMPONENT_STANZA_H */
