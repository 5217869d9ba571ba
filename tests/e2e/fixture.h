/* SPDX-License-Identifier: MIT */
/*
 * Fixture of the component end-to-end tests: the stack that
 * tests/with_stack.sh started (read from its environment), one t_t per
 * test (users with a prefix of their own, c2s clients, component processes
 * with logs, a database connection), and the steps the tests are written
 * in: users and subscriptions, agents and watching contacts, agent
 * requests and the replies they expect, waits on what a contact sees and
 * what the database holds. Every wait has a deadline and pumps the test's
 * clients. Failures end the test through cmocka; teardown kills what the
 * test started, prints component logs of a failed test and fails a test
 * whose component log holds a sanitizer report.
 */
#ifndef BITWEEN_TESTS_E2E_FIXTURE_H
#define BITWEEN_TESTS_E2E_FIXTURE_H

#include <stddef.h>

#include <libpq-fe.h>
#include <strophe.h>

#include "harness.h"
#include "xclient.h"

#define AGENT_NS        "urn:bitween:agent:1"
#define IQ_TIMEOUT      10000
#define WAIT            15000
#define READY_LINE      "grants the pubsub iq permission"
#define CHECK_DONE_LINE "registration re-check finished"
#define PASSWORD        "secret-pw"

typedef struct stack_env {
    char *dir, *db_url, *xmpp_port, *secret, *domain, *component_jid;
    unsigned short c2s_port;
} stack_env_t;

#define MAX_CLIENTS 32
#define MAX_PROCS   32

typedef struct t {
    char prefix[16]; /* user names of this test start with it */
    char dir[256];   /* logs */
    const stack_env_t *stack;
    xmpp_ctx_t *ctx;
    PGconn *db;
    xclient_t *cl[MAX_CLIENTS];
    hx_proc_t *proc[MAX_PROCS];
    size_t nproc;
    char **strings; /* freed when the test ends */
    size_t nstrings;
    stack_env_t stack2;        /* a second stack of the test's own, if any */
    int pg_down, prosody_down; /* stopped by the test: started again at the end */
    int passed;
    unsigned next_id;
} t_t;

/* Set by fixture_init(): the component binary, scripts/stack and the
 * stack of tests/with_stack.sh. */
extern const char *component_bin;
extern const char *stack_script;
extern stack_env_t main_stack;
extern long long test_start_ms;

/**
 * Read the stack from the environment with_stack.sh exports and check
 * that `bin` is executable; `prog` names the program in messages. Returns
 * 0, or 2 (a usage error) after printing why.
 */
int fixture_init(const char *prog, const char *bin);

/** Free what fixture_init() read. */
void fixture_done(void);

/** Print a step with the time since the test started, when
 * BITWEEN_TEST_TRACE is set. */
void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/** Keep `s` (malloc'd, not NULL) until the test ends; returns it. */
char *keep(t_t *t, char *s);

/** cmocka setup and teardown of one test (state: a t_t). */
int setup(void **state);
int teardown(void **state);

void stack_env_free(stack_env_t *s);

/** Account PREFIX+name on the test's stack; returns its bare JID. */
const char *user(t_t *t, const char *name);

/** Mutual presence subscription between two users made by user(). */
void subscribe(t_t *t, const char *jid_a, const char *jid_b);

/** A c2s client logged in as jid/resource, released at teardown. */
xclient_t *login(t_t *t, const char *jid, const char *resource);

/** Release a client (clean logout when still connected). */
void logout(t_t *t, xclient_t *cl);

/** An agent: logged in, with directed presence to the component. */
xclient_t *agent(t_t *t, const char *jid, const char *resource);

/** A round trip to the client's own server (XEP-0199). */
void server_ping(t_t *t, xclient_t *cl);

/** A contact watching PEP items (presence with shares+notify caps, whose
 * caps the server has fetched when this returns). */
xclient_t *watcher(t_t *t, const char *jid);

/** Start the component with the test stack's settings plus `extra`
 * (NULL-terminated "NAME=VALUE"), without waiting. Loopback addresses are
 * allowed (BITWEEN_ALLOW_LOOPBACK_ADDRESSES=true) unless `extra` sets
 * that variable itself. */
hx_proc_t *component_spawn(t_t *t, const char *const *extra);

/** Start the component and wait until it may publish. */
hx_proc_t *component(t_t *t, const char *const *extra);

/** SIGTERM: exit status 0 within the deadline, no sanitizer report. */
void component_stop(t_t *t, hx_proc_t *p);

/** `stack stop|start|restart pg|prosody` on the test's stack. */
void stack_cmd(t_t *t, const char *action, const char *service);

/** A new IQ id of the test. */
char *next_id(t_t *t, char *buf, size_t len);

/** Send an agent request and return the reply (caller releases; NULL on
 * timeout). */
xmpp_stanza_t *request(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children);

/** Send raw IQ XML; IQ_TO in `xml_fmt` becomes the component's JID and
 * IQ_ID a fresh id. Returns the reply or NULL. */
xmpp_stanza_t *raw_request(t_t *t, xclient_t *cl, const char *xml_fmt);

/** The request must be answered with a result. */
void expect_result(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children);

/** `r` (released here) must be an error of `type`/`cond` whose text
 * contains `needle` (NULL: any non-empty text). */
void expect_error_reply(xmpp_stanza_t *r, const char *type, const char *cond, const char *needle);

/** The request must be answered with that error. */
void expect_error(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children,
                  const char *type, const char *cond, const char *needle);

/** Children of a request: shares FROM..TO-1, share i named NAME_PREFIX-i,
 * its hash derived from SEED-i. Caller frees. */
char *shares_xml(const char *seed, int from, int to, const char *name_prefix);

/** 40 hex digits derived from `seed`, kept until the test ends. */
const char *hash_of(t_t *t, const char *seed);

/** Wait until the contact's last item of `from` holds every string of
 * `must` and none of `must_not`; fails the test at the deadline. */
void wait_item(t_t *t, xclient_t *w, const char *from, const char *const *must,
               const char *const *must_not);

/** Wait until the contact's last item of `jid` is the merged state stored
 * for `jid` (same canonical digest). */
void wait_view_is_db(t_t *t, xclient_t *w, const char *jid);

/** Wait until `jid` has `n` resources in the database. */
void wait_db_resources(t_t *t, const char *jid, int n);

/** The database fingerprint of `jid` (hx_db_fingerprint), kept. */
char *fingerprint(t_t *t, const char *jid);

/**
 * Value of the sample `name` with exactly the labels `labels` ("" or NULL:
 * none; else as written, e.g. `reason="forged"`) in the /metrics page of
 * component `p` (its admin API, on the port its log names). -1 when the
 * sample is absent; fails the test when the page cannot be fetched.
 */
double metric(t_t *t, hx_proc_t *p, const char *name, const char *labels);

/** Wait until metric() of that sample is at least `min`; fails the test
 * at the deadline. Returns the value. */
double wait_metric(t_t *t, hx_proc_t *p, const char *name, const char *labels, double min);

#endif /* BITWEEN_TESTS_E2E_FIXTURE_H */
