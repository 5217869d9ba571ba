/* SPDX-License-Identifier: MIT */
/*
 * The agent protocol (namespace urn:bitween:agent:1, docs/protocol.md) as a
 * pure parser: one incoming <iq/> from an agent becomes an agent_request_t
 * (register, add, remove or unregister of one resource's shares) or an
 * agent_error_t that says, in English, what is wrong and which XMPP stanza
 * error to answer with. The user and the resource always come from the
 * IQ's `from`, which the server stamps; nothing named inside the payload is
 * trusted. No I/O, no global state: the registry decides on sequence
 * numbers and stored state, stanza.h builds the replies.
 */
#ifndef BITWEEN_COMPONENT_AGENT_PROTO_H
#define BITWEEN_COMPONENT_AGENT_PROTO_H

#include <stddef.h>
#include <stdint.h>

#include <strophe.h>

#include "shares.h"

#define AGENT_NS "urn:bitween:agent:1"

/** The four requests of the protocol. */
typedef enum {
    AGENT_OP_REGISTER,  /* full state of the resource, idempotent replace */
    AGENT_OP_ADD,       /* upsert shares by hash */
    AGENT_OP_REMOVE,    /* delete shares by hash */
    AGENT_OP_UNREGISTER /* forget the resource */
} agent_op_t;

/** Error classes; each maps to one RFC 6120 stanza error (type and
 * condition), see agent_error_type() and agent_error_condition(). */
typedef enum {
    AGENT_ERR_NONE,                /* no error */
    AGENT_ERR_BAD_REQUEST,         /* modify/bad-request: malformed request */
    AGENT_ERR_NOT_ACCEPTABLE,      /* modify/not-acceptable: a value fails validation */
    AGENT_ERR_POLICY,              /* modify/policy-violation: over a quota */
    AGENT_ERR_FORBIDDEN,           /* auth/forbidden: sender not allowed */
    AGENT_ERR_CONFLICT,            /* cancel/conflict: older sequence number */
    AGENT_ERR_NOT_FOUND,           /* cancel/item-not-found: resource not registered */
    AGENT_ERR_UNAVAILABLE,         /* wait/internal-server-error: database down */
    AGENT_ERR_SERVICE_UNAVAILABLE, /* cancel/service-unavailable: unknown namespace */
    AGENT_ERR_INTERNAL,            /* cancel/internal-server-error: out of memory, bug */
    AGENT_ERR_BUSY,                /* wait/resource-constraint: the user's share of the
                                    * component's queues is used up */
    AGENT_ERR_NOT_ALLOWED          /* cancel/not-allowed: the sender did not answer the
                                    * liveness ping */
} agent_errcode_t;

/* Number of agent_errcode_t values. */
#define AGENT_ERR_COUNT (AGENT_ERR_NOT_ALLOWED + 1)

#define AGENT_ERROR_TEXT 256

/** An error verdict. `text` is NUL-terminated English, valid UTF-8 without
 * control characters (safe for an XMPP <text/>), empty only for
 * AGENT_ERR_NONE. `stored_seq` is the resource's stored sequence number
 * that an AGENT_ERR_CONFLICT carries (the reply then holds an
 * AGENT_STALE_SEQ element), -1 when unknown or for other codes. */
typedef struct agent_error {
    agent_errcode_t code;
    char text[AGENT_ERROR_TEXT];
    int64_t stored_seq;
} agent_error_t;

/* Application-specific condition (RFC 6120 8.3.3) of a conflict:
 * <stale-seq xmlns='urn:bitween:agent:1' stored='18'/> inside <error/>. */
#define AGENT_STALE_SEQ "stale-seq"

/** RFC 6120 error type of `code`: "modify", "auth", "cancel" or "wait".
 * Static string; an unknown code (or AGENT_ERR_NONE) gives "cancel". */
const char *agent_error_type(agent_errcode_t code);

/** RFC 6120 defined condition of `code` ("bad-request", ...). Static
 * string; an unknown code (or AGENT_ERR_NONE) gives
 * "undefined-condition". */
const char *agent_error_condition(agent_errcode_t code);

/** Element name of `op` ("register", ...); static, NULL if unknown. */
const char *agent_op_name(agent_op_t op);

/**
 * Fill `err` (when not NULL) with `code` and a printf-formatted text,
 * truncated on a UTF-8 boundary, and no stored seq. For the registry's own
 * verdicts (item-not-found, ...). The caller keeps the text printable:
 * values that come from the network belong in agent_quote() first.
 * Returns -1.
 */
int agent_error_set(agent_error_t *err, agent_errcode_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/**
 * The registry's verdict on an update with a sequence number `seq` older
 * than the one stored for `resource` (borrowed; quoted in the text):
 * AGENT_ERR_CONFLICT with the text `seq 17 is older than the stored seq 18
 * of resource "laptop"` and `stored_seq` set, or, when `stored` is
 * negative (unknown), the same text without the number. Returns -1.
 */
int agent_error_stale(agent_error_t *err, int64_t seq, int64_t stored, const char *resource);

#define AGENT_QUOTE_MAX 64

/**
 * Quote `s` for an error text: in double quotes, at most about 40 bytes of
 * it, '"', '\\', control characters and (when `s` is not valid UTF-8) every
 * non-ASCII byte escaped as \xHH, invisible formatting characters
 * (utf8_hidden_name()) as \uXXXX, "..." appended when cut short. `out` has
 * AGENT_QUOTE_MAX bytes; returns `out`. NULL quotes as "(none)".
 */
const char *agent_quote(char out[AGENT_QUOTE_MAX], const char *s);

/** One parsed request. Every pointer is owned by the struct and freed by
 * agent_request_clear(). */
typedef struct agent_request {
    agent_op_t op;
    char *jid;      /* bare JID of `from`: node as sent, domain in lowercase */
    char *resource; /* resource of `from`, as sent (validated) */
    int64_t seq;    /* 0..INT64_MAX; -1 for unregister (seq ignored) */
    /* register/add: one resource (index 0) named `resource` holding the
     * shares (and, for register, addresses) of the request, built with the
     * limits passed to agent_request_parse(); NULL for remove/unregister */
    shares_item_t *item;
    /* remove: the hashes to delete, lowercase hex, in request order, no
     * duplicates; NULL/0 for the other requests */
    char **hashes;
    size_t n_hashes;
} agent_request_t;

/**
 * Parse the agent request carried by `iq`.
 *
 * `served_domains` is a NULL-terminated list of the domains whose users may
 * use the component, compared without regard to ASCII case; NULL or an
 * empty list serves nobody (every request is forbidden). `lim` (NULL:
 * shares_limits_default()) bounds one resource: max_shares,
 * max_addresses, max_name_bytes, max_resource_bytes, and max_item_bytes
 * applied to this resource's <user_shares/> alone; a remove may list at
 * most max_shares hashes. max_resources and the merged item are the
 * registry's to enforce.
 *
 * Checks run in this order and the first failure is reported: the envelope
 * (an <iq/> with exactly one child element, in AGENT_NS, of type set), the
 * sender (`from` a full JID of a served domain, valid resource), then the
 * payload (element name, seq, children, values, limits), then, for
 * register and add, what contacts would be shown: the resource and the
 * names without invisible formatting characters (shares_screen_name()),
 * addresses a contact can use (shares_screen_address(), loopback only
 * with lim->allow_loopback), each refused with not-acceptable.
 *
 * Returns 0 and fills `out` (release with agent_request_clear()), or -1
 * with `out` zeroed (seq -1) and `err` (may be NULL) filled. Never crashes
 * on any input (a NULL `out` gives -1 and AGENT_ERR_INTERNAL). `iq` is
 * only read.
 *
 * IQs of type result or error come out as bad-request like any other
 * wrong type, but the caller must never answer them (RFC 6120 8.2.3):
 * dispatch on the type before calling this.
 */
int agent_request_parse(const xmpp_stanza_t *iq, const char *const *served_domains,
                        const shares_limits_t *lim, agent_request_t *out, agent_error_t *err)
    __attribute__((warn_unused_result));

/** Free everything `req` owns and zero it (seq -1). Safe on a zeroed or
 * already cleared struct; NULL is a no-op. */
void agent_request_clear(agent_request_t *req);

#endif /* BITWEEN_COMPONENT_AGENT_PROTO_H */
