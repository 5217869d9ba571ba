/* SPDX-License-Identifier: MIT */
/*
 * Test XMPP clients for the end-to-end tests: real c2s logins on the local
 * stack's Prosody, built on libstrophe. A client answers pings and
 * disco#info (advertising https://xmpp.kwoh.de/protocol/shares+notify with
 * a correct XEP-0115 hash, so that Prosody sends it PEP notifications),
 * records the shares items it is notified of, sends IQs and waits for their
 * replies, and can drop its TCP connection without a goodbye to play a
 * crashed agent. All clients of a test share one xmpp_ctx_t; every wait
 * pumps that context with a deadline.
 */
#ifndef BITWEEN_TESTS_XCLIENT_H
#define BITWEEN_TESTS_XCLIENT_H

#include <stddef.h>

#include <strophe.h>

typedef struct xclient xclient_t;

/** Run the shared context for `ms` milliseconds. */
void xclient_pump(xmpp_ctx_t *ctx, int ms);

/**
 * Log `full_jid` in with `password` over c2s on 127.0.0.1:`port` (no TLS)
 * and wait for the session, at most `timeout_ms`. NULL on failure.
 */
xclient_t *xclient_login(xmpp_ctx_t *ctx, const char *full_jid, const char *password,
                         unsigned short port, int timeout_ms);

/** Close cleanly (</stream>) if connected and free; NULL is a no-op. */
void xclient_free(xclient_t *cl);

/** Drop the TCP connection at once, without </stream> (a crash). */
void xclient_kill(xclient_t *cl);

/** Whether the session is up. */
int xclient_connected(const xclient_t *cl);

/**
 * Send presence: broadcast when `to` is NULL, else directed to `to`. With
 * `notify` the presence carries XEP-0115 caps whose features include
 * shares+notify.
 */
void xclient_presence(xclient_t *cl, const char *to, int notify);

/** Send raw stanza XML (parsed by libstrophe first). Returns 0 or -1. */
int xclient_send_xml(xclient_t *cl, const char *xml);

/** Send `len` bytes as they are (not parsed or re-serialized): for XML
 * that libstrophe would write differently. */
void xclient_send_raw(xclient_t *cl, const char *data, size_t len);

/**
 * Send the IQ in `xml` (it must carry an id) and wait for the reply with
 * that id, at most `timeout_ms`. Returns the reply (release with
 * xmpp_stanza_release()) or NULL on timeout.
 */
xmpp_stanza_t *xclient_iq(xclient_t *cl, const char *xml, int timeout_ms);

/** Shares notifications received from `from_bare` (all items counted). */
unsigned xclient_items(const xclient_t *cl, const char *from_bare);

/**
 * Distinct shares broadcasts received from `from_bare`: Prosody may send
 * one broadcast twice (to the bare and to the full JID, same message id,
 * back to back); such copies count once. Each publish by the user's PEP
 * service, and each re-send of the last item on presence, is one event.
 */
unsigned xclient_item_events(const xclient_t *cl, const char *from_bare);

/** Called with each IQ result or error that xclient_iq() is not waiting
 * for (`reply` borrowed for the call). */
typedef void (*xclient_reply_fn)(xclient_t *cl, xmpp_stanza_t *reply, void *arg);

/** Install (or with NULL remove) the handler of other IQ replies. */
void xclient_on_reply(xclient_t *cl, xclient_reply_fn fn, void *arg);

/**
 * Text of the last <user_shares/> received from `from_bare` (borrowed,
 * valid until the next pump), NULL when none.
 */
const char *xclient_last_item(const xclient_t *cl, const char *from_bare);

/**
 * Wait until the last item from `from_bare` contains every string of the
 * NULL-terminated `must` and none of `must_not` (either may be NULL), at
 * most `timeout_ms`. Returns 1 when it does.
 */
int xclient_wait_item(xclient_t *cl, const char *from_bare, const char *const *must,
                      const char *const *must_not, int timeout_ms);

/** The full JID of the client. Borrowed. */
const char *xclient_jid(const xclient_t *cl);

/** Make the client ignore pings (an agent that hangs). */
void xclient_ignore_pings(xclient_t *cl, int ignore);

/** Pings received so far (answered or not). */
unsigned xclient_pings(const xclient_t *cl);

/** Id of the `i`-th ping received (0-based; the last 64 are kept), NULL
 * when out of range. Borrowed until the next pump. */
const char *xclient_ping_id(const xclient_t *cl, unsigned i);

#endif /* BITWEEN_TESTS_XCLIENT_H */
