/* SPDX-License-Identifier: MIT */
/*
 * The agent protocol's golden cases (tests/golden/agent/<case>/) against
 * the running component: each case's in.xml is sent by a real c2s client
 * through the stack's Prosody to the shipped bitween-component, and the
 * reply it gets is compared with expected.xml. So the texts in the
 * documentation and in expected.xml are the ones the component sends,
 * including the verdicts that the registry makes (stale seq, unregistered
 * resource, quotas, database away), not ones rebuilt by the test.
 *
 * A case may also hold:
 *   limits.txt     quotas (`key = value`, names as in shares_limits_t)
 *                  and allow_loopback_addresses (0 or 1, the component's
 *                  default 0 otherwise), given to the component through
 *                  its environment;
 *   setup.xml      <setup> with <iq/> requests sent before in.xml, each
 *                  from the resource its `from` names; each must succeed;
 *   database-down  (any content) PostgreSQL is stopped while in.xml is
 *                  sent, and started again after;
 *   parser-only.txt the reason the case cannot travel through a server
 *                  (the server stamps `from`); such a case is checked by
 *                  golden_agent only, and named here.
 * In the files, the user is alice@example.org (mallory@evil.example for a
 * domain the component does not serve) and the component
 * shares.example.org; the runner maps them to a user of its own on the
 * stack and to the stack's component, in what it sends and in what it
 * expects. An expected <iq type='error'/> must match the reply's <error/>
 * exactly; an expected <request/> (a request the parser accepts) must be
 * answered with a result.
 *
 *   golden_live BITWEEN_COMPONENT_BINARY CASES_DIR
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <strophe.h>

#include "../support/xml_equal.h"
#include "fixture.h"
#include "harness.h"
#include "xclient.h"

#define MAX_CASES      256
#define CASE_USER      "alice@example.org"
#define CASE_OTHER     "mallory@evil.example"
#define CASE_COMPONENT "shares.example.org"

typedef struct gcase {
    char *dir, *name;
} gcase_t;

static const char *cases_dir;
static t_t *shared;         /* one fixture for the whole run */
static unsigned case_index; /* for user names */

/* The running component and the environment that made it: one at a time,
 * since the server takes one connection per component JID. */
static hx_proc_t *comp;
static char *comp_key;

/* ---- text helpers ----------------------------------------------------------- */

/* The file's text, kept until the run ends; NULL when there is none. */
static char *read_opt(t_t *t, const char *dir, const char *name)
{
    char *path = hx_strdupf("%s/%s", dir, name), *text = NULL;
    if (access(path, F_OK) == 0)
        text = keep(t, hx_file_read(path));
    free(path);
    return text;
}

/* `s` with every `from` replaced by `to` (a new string). */
static char *replace_all(const char *s, const char *from, const char *to)
{
    hx_buf_t b = {0};
    size_t flen = strlen(from);
    const char *p;
    while ((p = strstr(s, from)) != NULL) {
        hx_buf_printf(&b, "%.*s%s", (int)(p - s), s, to);
        s = p + flen;
    }
    hx_buf_printf(&b, "%s", s);
    return b.s;
}

/* Component environment for the case's limits.txt (NULL: defaults) and
 * whether its user's domain is served; appends "NAME=VALUE" strings. */
static void limits_env(t_t *t, const char *limits, int unserved, const char **env, size_t *n,
                       hx_buf_t *key)
{
    static const struct {
        const char *name, *var;
    } map[] = {
        {"max_resources", "BITWEEN_MAX_RESOURCES_PER_USER"},
        {"max_shares", "BITWEEN_MAX_SHARES_PER_RESOURCE"},
        {"max_addresses", "BITWEEN_MAX_ADDRESSES_PER_RESOURCE"},
        {"max_name_bytes", "BITWEEN_MAX_NAME_BYTES"},
        {"max_item_bytes", "BITWEEN_MAX_ITEM_BYTES"},
    };
    const char *line = limits;
    int loopback = 0;
    while (line && *line) {
        char name[64];
        unsigned long long v;
        size_t i;
        if (*line != '#' && *line != '\n') {
            assert_int_equal(sscanf(line, "%63[a-z_] = %llu", name, &v), 2);
            if (strcmp(name, "allow_loopback_addresses") == 0) {
                loopback = v != 0;
                line = strchr(line, '\n');
                line = line ? line + 1 : NULL;
                continue;
            }
            for (i = 0; i < sizeof map / sizeof map[0]; i++)
                if (strcmp(map[i].name, name) == 0)
                    break;
            if (i == sizeof map / sizeof map[0])
                fprintf(stderr, "golden_live: limits.txt: %s is not a component option\n", name);
            assert_true(i < sizeof map / sizeof map[0]);
            env[(*n)++] = keep(t, hx_strdupf("%s=%llu", map[i].var, v));
            hx_buf_printf(key, "%s=%llu;", map[i].var, v);
        }
        line = strchr(line, '\n');
        line = line ? line + 1 : NULL;
    }
    /* the cases see the component's default, not the fixture's */
    env[(*n)++] = loopback ? "BITWEEN_ALLOW_LOOPBACK_ADDRESSES=true"
                           : "BITWEEN_ALLOW_LOOPBACK_ADDRESSES=false";
    hx_buf_printf(key, "loopback=%d;", loopback);
    if (unserved) {
        /* the stack's domain is not among those served */
        env[(*n)++] = "BITWEEN_DOMAINS=example.org";
        hx_buf_printf(key, "unserved;");
    }
    env[*n] = NULL;
}

/* A component with this environment: the running one, or a new one after
 * the running one is stopped. */
static hx_proc_t *component_for(t_t *t, const char *limits, int unserved)
{
    const char *env[16];
    hx_buf_t key = {0};
    size_t n = 0;

    hx_buf_printf(&key, "%s", "");
    limits_env(t, limits, unserved, env, &n, &key);
    if (comp && strcmp(comp_key, key.s) == 0) {
        free(key.s);
        return comp;
    }
    if (comp)
        component_stop(t, comp);
    free(comp_key);
    comp_key = key.s;
    comp = unserved ? component_spawn(t, env) : component(t, env);
    if (unserved)
        assert_true(hx_proc_wait_log(comp, "connected to", 1, WAIT, t->ctx));
    return comp;
}

/* ---- one case --------------------------------------------------------------- */

typedef struct clients {
    char *resource[16];
    xclient_t *cl[16];
    size_t n;
} clients_t;

/* The client of `resource` (logged in, presence sent, on first use). */
static xclient_t *client_for(t_t *t, clients_t *cs, const char *jid, const char *resource)
{
    size_t i;
    for (i = 0; i < cs->n; i++)
        if (strcmp(cs->resource[i], resource) == 0)
            return cs->cl[i];
    assert_true(cs->n < 16);
    cs->resource[cs->n] = keep(t, strdup(resource));
    cs->cl[cs->n] = agent(t, jid, resource);
    return cs->cl[cs->n++];
}

/* Send `iq` (from the file: its `from` names the resource) from that
 * resource's client to the component; the reply (caller releases). */
static xmpp_stanza_t *send_case_iq(t_t *t, clients_t *cs, const char *jid, xmpp_stanza_t *iq)
{
    const char *from = xmpp_stanza_get_from(iq);
    const char *slash = from ? strchr(from, '/') : NULL;
    xmpp_stanza_t *copy = xmpp_stanza_copy(iq);
    char *text = NULL;
    size_t len;
    xmpp_stanza_t *reply;

    assert_non_null(slash);
    assert_non_null(copy);
    xmpp_stanza_del_attribute(copy, "from"); /* the server stamps it */
    xmpp_stanza_set_to(copy, t->stack->component_jid);
    assert_int_equal(xmpp_stanza_to_text(copy, &text, &len), XMPP_EOK);
    reply = xclient_iq(client_for(t, cs, jid, slash + 1), text, IQ_TIMEOUT);
    xmpp_free(t->ctx, text);
    xmpp_stanza_release(copy);
    assert_non_null(reply);
    return reply;
}

static void run_case(void **state)
{
    const gcase_t *gc = *state;
    t_t *t = shared;
    char *in_text = read_opt(t, gc->dir, "in.xml"),
         *expected = read_opt(t, gc->dir, "expected.xml");
    char *limits = read_opt(t, gc->dir, "limits.txt"), *setup = read_opt(t, gc->dir, "setup.xml");
    char *db_down = read_opt(t, gc->dir, "database-down");
    char *parser_only = read_opt(t, gc->dir, "parser-only.txt");
    char node[32], *mapped, why[2048];
    const char *jid;
    xmpp_stanza_t *in, *reply, *exp, *exp_err, *got_err;
    clients_t cs = {0};
    int unserved, eq;

    if (parser_only) {
        printf("golden_live: %s is checked by the parser only: %s", gc->name, parser_only);
        return;
    }
    assert_non_null(in_text);
    assert_non_null(expected);
    unserved = strstr(in_text, "@evil.example") != NULL;
    snprintf(node, sizeof node, "c%02u", ++case_index);
    jid = user(t, node);
    component_for(t, limits, unserved);

    /* setup requests, each answered with a result */
    if (setup) {
        xmpp_stanza_t *root = xmpp_stanza_new_from_string(t->ctx, setup), *iq;
        assert_non_null(root);
        for (iq = xmpp_stanza_get_children(root); iq; iq = xmpp_stanza_get_next(iq)) {
            if (!xmpp_stanza_is_tag(iq))
                continue;
            reply = send_case_iq(t, &cs, jid, iq);
            if (strcmp(hx_iq_type(reply), "result") != 0)
                fprintf(stderr, "golden_live: %s: a setup request was refused\n", gc->name);
            assert_string_equal(hx_iq_type(reply), "result");
            xmpp_stanza_release(reply);
        }
        xmpp_stanza_release(root);
    }

    in = xmpp_stanza_new_from_string(t->ctx, in_text);
    assert_non_null(in);
    client_for(t, &cs, jid, strchr(xmpp_stanza_get_from(in), '/') + 1);
    if (db_down)
        stack_cmd(t, "stop", "pg");
    reply = send_case_iq(t, &cs, jid, in);
    if (db_down)
        stack_cmd(t, "start", "pg");

    /* what the files say, in this stack's names */
    mapped = keep(t, replace_all(expected, CASE_COMPONENT, t->stack->component_jid));
    mapped = keep(t, replace_all(mapped, CASE_USER, jid));
    mapped = keep(t, replace_all(mapped, CASE_OTHER, jid));
    mapped = keep(t, replace_all(mapped, "evil.example", t->stack->domain));
    exp = xmpp_stanza_new_from_string(t->ctx, mapped);
    assert_non_null(exp);
    if (strcmp(xmpp_stanza_get_name(exp), "request") == 0) {
        if (strcmp(hx_iq_type(reply), "result") != 0) {
            char *text = NULL;
            size_t len;
            xmpp_stanza_to_text(reply, &text, &len);
            fprintf(stderr, "golden_live: %s: expected a result, got %s\n", gc->name, text);
            xmpp_free(t->ctx, text);
        }
        assert_string_equal(hx_iq_type(reply), "result");
    } else {
        assert_string_equal(hx_iq_type(reply), xmpp_stanza_get_type(exp));
        exp_err = xmpp_stanza_get_child_by_name(exp, "error");
        got_err = xmpp_stanza_get_child_by_name(reply, "error");
        assert_non_null(exp_err);
        /* the files leave the stream's namespace out */
        if (!xmpp_stanza_get_ns(exp_err))
            xmpp_stanza_set_ns(exp_err, "jabber:client");
        eq = got_err ? xml_equal(exp_err, got_err, why, sizeof why) : 0;
        if (eq != 1) {
            char *text = NULL;
            size_t len;
            xmpp_stanza_to_text(reply, &text, &len);
            fprintf(stderr, "golden_live: %s: %s\n  sent by the component: %s\n", gc->name,
                    got_err ? why : "no <error/>", text);
            xmpp_free(t->ctx, text);
        }
        assert_int_equal(eq, 1);
    }
    xmpp_stanza_release(exp);
    xmpp_stanza_release(reply);
    xmpp_stanza_release(in);
    while (cs.n > 0)
        logout(t, cs.cl[--cs.n]);
}

/* ---- main ------------------------------------------------------------------- */

static int group_setup(void **state)
{
    (void)state;
    if (setup((void **)&shared) != 0)
        return -1;
    return 0;
}

static int group_teardown(void **state)
{
    int rc = 0;
    (void)state;
    if (comp && hx_proc_stop(comp, WAIT, shared->ctx) != 0)
        rc = -1;
    free(comp_key);
    shared->passed = rc == 0;
    if (teardown((void **)&shared) != 0)
        rc = -1;
    return rc;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(((const gcase_t *)a)->name, ((const gcase_t *)b)->name);
}

int main(int argc, char **argv)
{
    static gcase_t cases[MAX_CASES];
    static struct CMUnitTest tests[MAX_CASES];
    DIR *d;
    struct dirent *e;
    size_t n = 0, i;
    int rc;

    if (argc != 3) {
        fprintf(stderr, "usage: %s BITWEEN_COMPONENT_BINARY CASES_DIR\n", argv[0]);
        return 2;
    }
    cases_dir = argv[2];
    if (fixture_init("golden_live", argv[1]) != 0)
        return 2;
    d = opendir(cases_dir);
    if (!d) {
        perror(cases_dir);
        return 2;
    }
    while ((e = readdir(d)) != NULL && n < MAX_CASES) {
        char *in;
        if (e->d_name[0] == '.')
            continue;
        in = hx_strdupf("%s/%s/in.xml", cases_dir, e->d_name);
        if (access(in, F_OK) == 0) {
            cases[n].name = strdup(e->d_name);
            cases[n].dir = hx_strdupf("%s/%s", cases_dir, e->d_name);
            n++;
        }
        free(in);
    }
    closedir(d);
    if (n == 0) {
        fprintf(stderr, "golden_live: no case under %s\n", cases_dir);
        return 2;
    }
    qsort(cases, n, sizeof cases[0], by_name);
    for (i = 0; i < n; i++) {
        tests[i].name = cases[i].name;
        tests[i].test_func = run_case;
        tests[i].initial_state = &cases[i];
    }
    xmpp_initialize();
    rc = _cmocka_run_group_tests("golden.live", tests, n, group_setup, group_teardown);
    xmpp_shutdown();
    for (i = 0; i < n; i++) {
        free(cases[i].name);
        free(cases[i].dir);
    }
    fixture_done();
    return rc ? 1 : 0;
}
