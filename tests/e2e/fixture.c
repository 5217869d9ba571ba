/* SPDX-License-Identifier: MIT */
/*
 * The component end-to-end tests' fixture (fixture.h).
 */
#include "fixture.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/time.h>
#include <unistd.h>

#include <cmocka.h>

#include "shares.h"

/* ---- environment --------------------------------------------------------- */

const char *component_bin;
const char *stack_script;
stack_env_t main_stack;

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "e2e: %s is not set (run under tests/with_stack.sh)\n", name);
        exit(2);
    }
    return v;
}

/* ---- per-test fixture ---------------------------------------------------- */

static unsigned test_counter;
long long test_start_ms;

/* With BITWEEN_TEST_TRACE set, steps are printed with the time since the
 * test started (to see where a slow test spends its time). */
void trace(const char *fmt, ...)
{
    va_list ap;
    if (!getenv("BITWEEN_TEST_TRACE"))
        return;
    fprintf(stderr, "[%6lld ms] ", hx_now_ms() - test_start_ms);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

/* Keep `s` until the test ends; returns it. */
char *keep(t_t *t, char *s)
{
    char **v;
    assert_non_null(s);
    v = realloc(t->strings, (t->nstrings + 1) * sizeof *v);
    if (!v)
        free(s);
    assert_non_null(v);
    t->strings = v;
    t->strings[t->nstrings++] = s;
    return s;
}

int setup(void **state)
{
    t_t *t = calloc(1, sizeof *t);
    const char *tmp = getenv("TMPDIR");
    if (!t)
        return -1;
    snprintf(t->prefix, sizeof t->prefix, "t%02u", ++test_counter);
    test_start_ms = hx_now_ms();
    snprintf(t->dir, sizeof t->dir, "%s/bitween-e2e.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(t->dir))
        return -1;
    chmod(t->dir, 0711); /* a stack of the test's own runs PostgreSQL as postgres */
    t->stack = &main_stack;
    t->ctx = xmpp_ctx_new(
        NULL, getenv("BITWEEN_TEST_XMPP_DEBUG") ? xmpp_get_default_logger(XMPP_LEVEL_DEBUG) : NULL);
    t->db = hx_db_connect(main_stack.db_url);
    if (!t->ctx || !t->db)
        return -1;
    *state = t;
    return 0;
}

void stack_env_free(stack_env_t *s)
{
    free(s->dir);
    free(s->db_url);
    free(s->xmpp_port);
    free(s->secret);
    free(s->domain);
    free(s->component_jid);
    memset(s, 0, sizeof *s);
}

int teardown(void **state)
{
    t_t *t = *state;
    size_t i;
    int rc = 0;

    trace("teardown");

    for (i = 0; i < MAX_CLIENTS; i++)
        xclient_free(t->cl[i]);
    /* A failed outage test must not leave the next tests without servers. */
    if (t->pg_down) {
        const char *argv[] = {stack_script, "start", "pg", main_stack.dir, NULL};
        hx_run(argv, NULL);
    }
    if (t->prosody_down) {
        const char *argv[] = {stack_script, "start", "prosody", main_stack.dir, NULL};
        hx_run(argv, NULL);
    }
    for (i = 0; i < t->nproc; i++) {
        const char *log = hx_proc_log(t->proc[i]);
        hx_proc_kill(t->proc[i]);
        if (hx_file_has_sanitizer_report(log)) {
            fprintf(stderr, "e2e: sanitizer report in %s\n", log);
            rc = -1;
        }
        if (!t->passed || rc)
            hx_file_dump(log, "component log");
        hx_proc_free(t->proc[i]);
    }
    if (t->stack2.dir) {
        const char *argv[] = {stack_script, "down", t->stack2.dir, NULL};
        if (!t->passed) {
            const char *largv[] = {stack_script, "logs", t->stack2.dir, NULL};
            hx_run(largv, NULL);
        }
        hx_run(argv, NULL);
        trace("second stack down");
        stack_env_free(&t->stack2);
    }
    for (i = 0; i < t->nstrings; i++)
        free(t->strings[i]);
    free(t->strings);
    if (t->db)
        PQfinish(t->db);
    if (t->ctx)
        xmpp_ctx_free(t->ctx);
    {
        const char *argv[] = {"rm", "-rf", t->dir, NULL};
        hx_run(argv, NULL);
    }
    free(t);
    return rc;
}

/* ---- users and clients --------------------------------------------------- */

/* Account PREFIX+name on the test's stack; returns its bare JID. */
const char *user(t_t *t, const char *name)
{
    char *node = keep(t, hx_strdupf("%s%s", t->prefix, name));
    const char *argv[] = {stack_script, "adduser", t->stack->dir, node, PASSWORD, NULL};
    assert_int_equal(hx_run(argv, NULL), 0);
    trace("user %s", node);
    return keep(t, hx_strdupf("%s@%s", node, t->stack->domain));
}

/* Mutual presence subscription between two users made by user(). */
void subscribe(t_t *t, const char *jid_a, const char *jid_b)
{
    char *a = keep(t, strdup(jid_a)), *b = keep(t, strdup(jid_b));
    *strchr(a, '@') = '\0';
    *strchr(b, '@') = '\0';
    {
        const char *argv[] = {stack_script, "subscribe", t->stack->dir, a, b, NULL};
        assert_int_equal(hx_run(argv, NULL), 0);
    }
}

static int client_slot(t_t *t, xclient_t *cl)
{
    int i;
    for (i = 0; i < MAX_CLIENTS; i++)
        if (t->cl[i] == cl)
            return i;
    return -1;
}

xclient_t *login(t_t *t, const char *jid, const char *resource)
{
    char *full = hx_strdupf("%s/%s", jid, resource);
    xclient_t *cl = xclient_login(t->ctx, full, PASSWORD, t->stack->c2s_port, WAIT);
    int slot = client_slot(t, NULL);
    free(full);
    assert_non_null(cl);
    trace("logged in %s", xclient_jid(cl));
    assert_true(slot >= 0);
    t->cl[slot] = cl;
    return cl;
}

/* Release a client (clean logout when still connected). */
void logout(t_t *t, xclient_t *cl)
{
    int slot = client_slot(t, cl);
    assert_true(slot >= 0);
    xclient_free(cl);
    t->cl[slot] = NULL;
}

/* An agent: logged in, with directed presence to the component so that
 * the server tells the component when it goes away. */
xclient_t *agent(t_t *t, const char *jid, const char *resource)
{
    xclient_t *cl = login(t, jid, resource);
    xclient_presence(cl, t->stack->component_jid, 0);
    return cl;
}

/* A round trip to the client's own server (XEP-0199). */
void server_ping(t_t *t, xclient_t *cl)
{
    char id[32], *xml;
    xmpp_stanza_t *r;
    snprintf(id, sizeof id, "%s-sp%u", t->prefix, ++t->next_id);
    xml = hx_strdupf("<iq type='get' to='%s' id='%s'><ping xmlns='urn:xmpp:ping'/></iq>",
                     t->stack->domain, id);
    r = xclient_iq(cl, xml, IQ_TIMEOUT);
    free(xml);
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    xmpp_stanza_release(r);
}

/* A contact watching PEP items: presence with shares+notify caps. The
 * server asks the client for its caps (disco#info) on that presence; two
 * pings later it has the answer, so the set of notifications the contact
 * gets from then on does not depend on timing. */
xclient_t *watcher(t_t *t, const char *jid)
{
    xclient_t *cl = login(t, jid, "watch");
    xclient_presence(cl, NULL, 1);
    server_ping(t, cl); /* the disco#info query arrives before this reply */
    server_ping(t, cl); /* sent after the answer to it */
    return cl;
}

/* ---- the component ------------------------------------------------------- */

#define LOOPBACK_ENV "BITWEEN_ALLOW_LOOPBACK_ADDRESSES"

/* Start the component with the test stack's settings plus `extra`
 * (NULL-terminated "NAME=VALUE"), without waiting. */
hx_proc_t *component_spawn(t_t *t, const char *const *extra)
{
    const char *env[32];
    size_t n = 0, i;
    int loopback_set = 0;
    char *log;
    hx_proc_t *p;

    env[n++] = keep(t, hx_strdupf("BITWEEN_XMPP_HOST=127.0.0.1"));
    env[n++] = keep(t, hx_strdupf("BITWEEN_XMPP_PORT=%s", t->stack->xmpp_port));
    env[n++] = keep(t, hx_strdupf("BITWEEN_COMPONENT_JID=%s", t->stack->component_jid));
    env[n++] = keep(t, hx_strdupf("BITWEEN_COMPONENT_SECRET=%s", t->stack->secret));
    env[n++] = keep(t, hx_strdupf("BITWEEN_DATABASE_URL=%s", t->stack->db_url));
    env[n++] = keep(t, hx_strdupf("BITWEEN_DOMAINS=%s", t->stack->domain));
    env[n++] = "BITWEEN_CONFIG"; /* no file */
    /* The admin API on an ephemeral port: tests run side by side. */
    env[n++] = "BITWEEN_API_PORT=0";
    for (i = 0; extra && extra[i]; i++) {
        assert_true(n < 30);
        env[n++] = extra[i];
        if (strncmp(extra[i], LOOPBACK_ENV "=", strlen(LOOPBACK_ENV) + 1) == 0)
            loopback_set = 1;
    }
    /* Everything runs on one machine: agents may register loopback
     * addresses unless the test says otherwise. */
    if (!loopback_set)
        env[n++] = LOOPBACK_ENV "=true";
    env[n] = NULL;
    assert_true(t->nproc < MAX_PROCS);
    log = hx_strdupf("%s/component-%zu.log", t->dir, t->nproc + 1);
    p = hx_proc_start(component_bin, log, env);
    free(log);
    assert_non_null(p);
    t->proc[t->nproc++] = p;
    return p;
}

/* Start the component and wait until it may publish. */
hx_proc_t *component(t_t *t, const char *const *extra)
{
    hx_proc_t *p = component_spawn(t, extra);
    assert_true(hx_proc_wait_log(p, READY_LINE, 1, WAIT, t->ctx));
    trace("component %d ready", (int)hx_proc_pid(p));
    return p;
}

/* SIGTERM: exit status 0 within the deadline, no sanitizer report. */
void component_stop(t_t *t, hx_proc_t *p)
{
    trace("stopping component %d", (int)hx_proc_pid(p));
    assert_int_equal(hx_proc_stop(p, WAIT, t->ctx), 0);
    trace("component %d stopped", (int)hx_proc_pid(p));
    assert_false(hx_file_has_sanitizer_report(hx_proc_log(p)));
}

/* `stack stop|start|restart pg|prosody` on the test's stack. */
void stack_cmd(t_t *t, const char *action, const char *service)
{
    const char *argv[] = {stack_script, action, service, t->stack->dir, NULL};
    int *down = strcmp(service, "pg") == 0 ? &t->pg_down : &t->prosody_down;
    trace("stack %s %s", action, service);
    *down = 1; /* until known to be up again */
    assert_int_equal(hx_run(argv, NULL), 0);
    *down = strcmp(action, "stop") == 0;
    trace("stack %s %s done", action, service);
}

/* ---- requests ------------------------------------------------------------ */

char *next_id(t_t *t, char *buf, size_t len)
{
    snprintf(buf, len, "%s-%u", t->prefix, ++t->next_id);
    return buf;
}

/* Send an agent request and return the reply (caller releases). */
xmpp_stanza_t *request(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children)
{
    char id[32],
        *xml = hx_agent_iq(t->stack->component_jid, next_id(t, id, sizeof id), op, seq, children);
    xmpp_stanza_t *reply = xclient_iq(cl, xml, IQ_TIMEOUT);
    free(xml);
    return reply;
}

/* Send raw IQ XML with the component as `to` (IQ_TO in `fmt`) and an id
 * (IQ_ID). */
xmpp_stanza_t *raw_request(t_t *t, xclient_t *cl, const char *xml_fmt)
{
    char id[32];
    hx_buf_t b = {0};
    const char *p;
    xmpp_stanza_t *reply;
    next_id(t, id, sizeof id);
    for (p = xml_fmt; *p; p++) {
        if (strncmp(p, "IQ_TO", 5) == 0) {
            hx_buf_printf(&b, "%s", t->stack->component_jid);
            p += 4;
        } else if (strncmp(p, "IQ_ID", 5) == 0) {
            hx_buf_printf(&b, "%s", id);
            p += 4;
        } else {
            hx_buf_printf(&b, "%c", *p);
        }
    }
    reply = xclient_iq(cl, b.s, IQ_TIMEOUT);
    free(b.s);
    return reply;
}

void expect_result(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children)
{
    xmpp_stanza_t *r = request(t, cl, op, seq, children);
    if (!r || strcmp(hx_iq_type(r), "result") != 0) {
        char *text = NULL;
        size_t len;
        if (r)
            xmpp_stanza_to_text(r, &text, &len);
        fprintf(stderr, "e2e: %s seq %lld from %s: expected a result, got %s\n", op, seq,
                xclient_jid(cl), text ? text : "no reply");
        if (text)
            xmpp_free(t->ctx, text);
    }
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    xmpp_stanza_release(r);
}

/* Expect an error of `type`/`cond` whose text contains `needle` (may be
 * NULL: any non-empty text). */
void expect_error_reply(xmpp_stanza_t *r, const char *type, const char *cond, const char *needle)
{
    char text[512];
    int ok = hx_iq_error_is(r, type, cond, text, sizeof text);
    trace("%s/%s: %s", type, cond, text);
    if (r)
        xmpp_stanza_release(r);
    assert_true(ok);
    if (needle && !strstr(text, needle))
        fprintf(stderr, "e2e: error text \"%s\" lacks \"%s\"\n", text, needle);
    if (needle)
        assert_non_null(strstr(text, needle));
}

void expect_error(t_t *t, xclient_t *cl, const char *op, long long seq, const char *children,
                  const char *type, const char *cond, const char *needle)
{
    expect_error_reply(request(t, cl, op, seq, children), type, cond, needle);
}

/* Children of a request: shares FROM..TO-1, share i named NAME_PREFIX-i,
 * its hash derived from SEED-i. */
char *shares_xml(const char *seed, int from, int to, const char *name_prefix)
{
    hx_buf_t b = {0};
    int i;
    for (i = from; i < to; i++) {
        char h[41], s[128], name[128];
        snprintf(s, sizeof s, "%s-%d", seed, i);
        snprintf(name, sizeof name, "%s-%d", name_prefix, i);
        hx_hash(h, s);
        hx_share_el(&b, h, name, (unsigned long long)i * 1000 + 1);
    }
    return b.s ? b.s : strdup("");
}

const char *hash_of(t_t *t, const char *seed)
{
    char *h = malloc(41);
    assert_non_null(h);
    hx_hash(h, seed);
    return keep(t, h);
}

/* ---- what the contact sees ----------------------------------------------- */

void wait_item(t_t *t, xclient_t *w, const char *from, const char *const *must,
               const char *const *must_not)
{
    trace("waiting for an item of %s", from);
    if (!xclient_wait_item(w, from, must, must_not, WAIT)) {
        const char *last = xclient_last_item(w, from);
        size_t i;
        fprintf(stderr, "e2e: %s never showed an item of %s with", xclient_jid(w), from);
        for (i = 0; must && must[i]; i++)
            fprintf(stderr, " +\"%s\"", must[i]);
        for (i = 0; must_not && must_not[i]; i++)
            fprintf(stderr, " -\"%s\"", must_not[i]);
        fprintf(stderr, "; last item: %s\n", last ? last : "(none)");
        fail();
    }
    trace("got it");
    (void)t;
}

/* Wait until the contact's last item of `jid` is the merged state stored
 * for `jid` (same canonical digest). */
void wait_view_is_db(t_t *t, xclient_t *w, const char *jid)
{
    long long end = hx_now_ms() + WAIT;
    char db[SHARES_DIGEST_HEX], seen[SHARES_DIGEST_HEX];
    for (;;) {
        const char *last = xclient_last_item(w, jid);
        assert_int_equal(hx_db_digest(t->db, jid, db), 0);
        if (last && hx_text_digest(t->ctx, last, seen) == 0 && strcmp(db, seen) == 0)
            return;
        if (hx_now_ms() >= end) {
            char *fp = hx_db_fingerprint(t->db, jid);
            fprintf(stderr,
                    "e2e: the view of %s by %s never matched the database\n"
                    "last item: %s\ndatabase:\n%s\n",
                    jid, xclient_jid(w), last ? last : "(none)", fp ? fp : "(query failed)");
            free(fp);
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
}

/* Wait until `jid` has `n` resources in the database. */
void wait_db_resources(t_t *t, const char *jid, int n)
{
    long long end = hx_now_ms() + WAIT;
    int got;
    while ((got = hx_db_resources(t->db, jid)) != n) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "e2e: %s has %d resources, expected %d\n", jid, got, n);
            fail();
        }
        xclient_pump(t->ctx, 20);
    }
}

char *fingerprint(t_t *t, const char *jid)
{
    return keep(t, hx_db_fingerprint(t->db, jid));
}

int fixture_init(const char *prog, const char *bin)
{
    component_bin = bin;
    stack_script = env_required("BITWEEN_STACK_SCRIPT");
    main_stack.dir = strdup(env_required("BITWEEN_STACK_DIR"));
    main_stack.db_url = strdup(env_required("BITWEEN_DATABASE_URL"));
    main_stack.xmpp_port = strdup(env_required("BITWEEN_XMPP_PORT"));
    main_stack.secret = strdup(env_required("BITWEEN_COMPONENT_SECRET"));
    main_stack.domain = strdup(env_required("BITWEEN_STACK_DOMAIN"));
    main_stack.component_jid = strdup(env_required("BITWEEN_COMPONENT_JID"));
    main_stack.c2s_port = (unsigned short)atoi(env_required("BITWEEN_STACK_C2S_PORT"));
    if (access(component_bin, X_OK) != 0) {
        fprintf(stderr, "%s: %s is not executable\n", prog, component_bin);
        return 2;
    }
    return 0;
}

void fixture_done(void)
{
    stack_env_free(&main_stack);
}

/* ---- metrics --------------------------------------------------------------- */

#define API_LISTEN_LINE "api: listening on 127.0.0.1:"

/* GET /metrics over HTTP/1.0 on loopback; the body, or NULL. */
static char *metrics_page(hx_proc_t *p)
{
    char *log = hx_file_read(hx_proc_log(p)), *at, *resp = NULL, *body;
    struct sockaddr_in sa;
    struct timeval tv = {5, 0};
    static const char req[] = "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n";
    size_t len = 0, cap = 0;
    int fd, port;

    at = log ? strstr(log, API_LISTEN_LINE) : NULL;
    port = at ? atoi(at + strlen(API_LISTEN_LINE)) : 0;
    free(log);
    if (port <= 0)
        return NULL;
    fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0)
        return NULL;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0 ||
        write(fd, req, sizeof req - 1) != (ssize_t)(sizeof req - 1)) {
        close(fd);
        return NULL;
    }
    for (;;) {
        ssize_t n;
        if (len + 4096 + 1 > cap) {
            char *q = realloc(resp, cap = cap ? 2 * cap : 65536);
            if (!q)
                break;
            resp = q;
        }
        n = read(fd, resp + len, cap - len - 1);
        if (n <= 0)
            break;
        len += (size_t)n;
    }
    close(fd);
    if (!resp)
        return NULL;
    resp[len] = '\0';
    body = strstr(resp, "\r\n\r\n");
    if (strncmp(resp, "HTTP/1.", 7) != 0 || !strstr(resp, " 200 ") || !body) {
        free(resp);
        return NULL;
    }
    memmove(resp, body + 4, strlen(body + 4) + 1);
    return resp;
}

double metric(t_t *t, hx_proc_t *p, const char *name, const char *labels)
{
    char *page = metrics_page(p), *line, *save = NULL;
    char *want = labels && *labels ? hx_strdupf("%s{%s} ", name, labels) : hx_strdupf("%s ", name);
    double v = -1;
    (void)t;
    if (!page)
        fprintf(stderr, "e2e: /metrics of component %d could not be fetched\n",
                (int)hx_proc_pid(p));
    assert_non_null(page);
    for (line = strtok_r(page, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
        if (strncmp(line, want, strlen(want)) == 0) {
            v = strtod(line + strlen(want), NULL);
            break;
        }
    }
    free(want);
    free(page);
    return v;
}

double wait_metric(t_t *t, hx_proc_t *p, const char *name, const char *labels, double min)
{
    long long end = hx_now_ms() + WAIT;
    double v;
    while ((v = metric(t, p, name, labels)) < min) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "e2e: %s{%s} is %g, expected at least %g\n", name, labels ? labels : "",
                    v, min);
            fail();
        }
        xclient_pump(t->ctx, 50);
    }
    return v;
}
