/* SPDX-License-Identifier: MIT */
/* Harness of the component end-to-end tests (see harness.h). */
#include "harness.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <poll.h>
#include <sys/inotify.h>
#include <sys/pidfd.h>
#include <sys/wait.h>
#include <time.h>
#include <stdint.h>
#include <unistd.h>

extern char **environ;


/* Items are rebuilt and read without quotas: the component's are its own. */
static const shares_limits_t no_limits;

/* ---- time and strings ---------------------------------------------------- */

long long hx_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void oom(void)
{
    fprintf(stderr, "harness: out of memory\n");
    abort();
}

__attribute__((format(printf, 2, 0))) static void buf_vprintf(hx_buf_t *b, const char *fmt,
                                                              va_list ap)
{
    va_list ap2;
    int n;
    va_copy(ap2, ap);
    n = vsnprintf(NULL, 0, fmt, ap2);
    va_end(ap2);
    if (n < 0)
        oom();
    if (b->len + (size_t)n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        char *s;
        while (cap < b->len + (size_t)n + 1)
            cap *= 2;
        s = realloc(b->s, cap);
        if (!s)
            oom();
        b->s = s;
        b->cap = cap;
    }
    vsnprintf(b->s + b->len, b->cap - b->len, fmt, ap);
    b->len += (size_t)n;
}

void hx_buf_printf(hx_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(b, fmt, ap);
    va_end(ap);
}

char *hx_strdupf(const char *fmt, ...)
{
    hx_buf_t b = {0};
    va_list ap;
    va_start(ap, fmt);
    buf_vprintf(&b, fmt, ap);
    va_end(ap);
    if (!b.s) {
        b.s = strdup("");
        if (!b.s)
            oom();
    }
    return b.s;
}

/* ---- processes ----------------------------------------------------------- */

struct hx_proc {
    pid_t pid;
    int pidfd;  /* readable once the process exits; -1 if unavailable */
    int exited; /* reaped */
    int status;
    char *log;
};

/* In a child between fork and exec: no descriptor of the test leaks into
 * daemons (a PostgreSQL started by `stack start pg` would otherwise keep
 * the clients' sockets open). */
static void close_from_3(void)
{
    long max = sysconf(_SC_OPEN_MAX), fd;
    if (max < 0 || max > 65536)
        max = 65536;
    for (fd = 3; fd < max; fd++)
        close((int)fd);
}

/* Whether a variable named as `entry` ("NAME=..." or "NAME") is in `env`. */
static int env_overridden(const char *entry, const char *const *env)
{
    const char *eq = strchr(entry, '=');
    size_t n = eq ? (size_t)(eq - entry) : strlen(entry);
    for (; env && *env; env++)
        if (strncmp(*env, entry, n) == 0 && ((*env)[n] == '=' || (*env)[n] == '\0'))
            return 1;
    return 0;
}

hx_proc_t *hx_proc_start(const char *bin, const char *log_path, const char *const *env)
{
    hx_proc_t *p = calloc(1, sizeof *p);
    size_t n = 0, k = 0, i;
    char **envp;
    pid_t pid;

    if (!p || !(p->log = strdup(log_path)))
        oom();
    p->pidfd = -1;
    {
        /* The log exists before the child runs, so it can be watched. */
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (fd >= 0)
            close(fd);
    }
    while (environ[n])
        n++;
    for (i = 0; env && env[i]; i++)
        n++;
    envp = calloc(n + 1, sizeof *envp);
    if (!envp)
        oom();
    for (i = 0; environ[i]; i++)
        if (!env_overridden(environ[i], env))
            envp[k++] = environ[i];
    /* Of overrides naming the same variable, the last wins. */
    for (i = 0; env && env[i]; i++)
        if (strchr(env[i], '=') && !env_overridden(env[i], env + i + 1))
            envp[k++] = (char *)(uintptr_t)env[i];
    envp[k] = NULL;

    fflush(NULL);
    pid = fork();
    if (pid < 0) {
        free(envp);
        free(p->log);
        free(p);
        return NULL;
    }
    if (pid == 0) {
        int fd = open(log_path, O_WRONLY | O_CREAT | O_APPEND, 0644);
        int nul = open("/dev/null", O_RDONLY);
        char *argv[2];
        if (fd < 0 || nul < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(fd, 1);
        dup2(fd, 2);
        close_from_3();
        argv[0] = (char *)(uintptr_t)bin;
        argv[1] = NULL;
        execve(bin, argv, envp);
        _exit(127);
    }
    free(envp);
    p->pid = pid;
    p->pidfd = pidfd_open(pid, 0);
    return p;
}

/* Block until `p` exits, `watch` (an inotify descriptor, or -1) reports a
 * write, or `ms` pass: an event, not a fixed sleep. */
static void proc_wait_event(hx_proc_t *p, int watch, long long ms)
{
    struct pollfd pfd[2];
    nfds_t n = 0;
    char drain[4096];

    if (ms <= 0)
        return;
    if (p->pidfd >= 0)
        pfd[n].fd = p->pidfd, pfd[n].events = POLLIN, n++;
    if (watch >= 0)
        pfd[n].fd = watch, pfd[n].events = POLLIN, n++;
    if (poll(pfd, n, ms > 1000 ? 1000 : (int)ms) > 0 && watch >= 0)
        while (read(watch, drain, sizeof drain) > 0)
            ;
}

pid_t hx_proc_pid(const hx_proc_t *p)
{
    return p->pid;
}

const char *hx_proc_log(const hx_proc_t *p)
{
    return p->log;
}

int hx_proc_alive(hx_proc_t *p)
{
    pid_t r;
    if (p->exited)
        return 0;
    do
        r = waitpid(p->pid, &p->status, WNOHANG);
    while (r < 0 && errno == EINTR);
    if (r == p->pid || r < 0) {
        p->exited = 1;
        return 0;
    }
    return 1;
}

static int decode_status(int status)
{
    if (WIFEXITED(status))
        return WEXITSTATUS(status);
    if (WIFSIGNALED(status))
        return 1000 + WTERMSIG(status);
    return -1;
}

int hx_proc_stop(hx_proc_t *p, int timeout_ms, xmpp_ctx_t *ctx)
{
    long long end = hx_now_ms() + timeout_ms;
    if (!hx_proc_alive(p))
        return decode_status(p->status);
    kill(p->pid, SIGTERM);
    while (hx_proc_alive(p)) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "harness: pid %d did not exit within %d ms of SIGTERM\n", (int)p->pid,
                    timeout_ms);
            hx_proc_kill(p);
            return -1;
        }
        if (ctx)
            xmpp_run_once(ctx, 5);
        else
            proc_wait_event(p, -1, end - hx_now_ms());
    }
    return decode_status(p->status);
}

void hx_proc_kill(hx_proc_t *p)
{
    pid_t r;
    if (p->exited)
        return;
    kill(p->pid, SIGKILL);
    do
        r = waitpid(p->pid, &p->status, 0);
    while (r < 0 && errno == EINTR);
    p->exited = 1;
}

void hx_proc_free(hx_proc_t *p)
{
    if (!p)
        return;
    hx_proc_kill(p);
    if (p->pidfd >= 0)
        close(p->pidfd);
    free(p->log);
    free(p);
}

static char *read_file(const char *path, size_t *len_out)
{
    FILE *f = fopen(path, "rb");
    hx_buf_t b = {0};
    char chunk[65536];
    size_t n;
    if (!f)
        return NULL;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        hx_buf_printf(&b, "%.*s", (int)n, chunk);
    fclose(f);
    if (!b.s) {
        b.s = strdup("");
        if (!b.s)
            oom();
    }
    if (len_out)
        *len_out = b.len;
    return b.s;
}

char *hx_file_read(const char *path)
{
    return read_file(path, NULL);
}

int hx_file_count(const char *path, const char *needle)
{
    char *text = read_file(path, NULL), *p;
    int n = 0;
    if (!text)
        return 0;
    for (p = text; (p = strstr(p, needle)) != NULL; p += strlen(needle))
        n++;
    free(text);
    return n;
}

int hx_proc_wait_log(hx_proc_t *p, const char *needle, int count, int timeout_ms, xmpp_ctx_t *ctx)
{
    long long end = hx_now_ms() + timeout_ms;
    int watch = -1, found = 0;

    if (!ctx) {
        /* watched before the first look, so no write is missed */
        watch = inotify_init1(IN_NONBLOCK | IN_CLOEXEC);
        if (watch >= 0 && inotify_add_watch(watch, p->log, IN_MODIFY) < 0) {
            close(watch);
            watch = -1;
        }
    }
    for (;;) {
        if (hx_file_count(p->log, needle) >= count) {
            found = 1;
            break;
        }
        if (!hx_proc_alive(p)) {
            fprintf(stderr, "harness: component exited while waiting for \"%s\"\n", needle);
            break;
        }
        if (hx_now_ms() >= end) {
            fprintf(stderr, "harness: \"%s\" x%d not in %s within %d ms\n", needle, count, p->log,
                    timeout_ms);
            break;
        }
        if (ctx) {
            long long until = hx_now_ms() + 20;
            while (hx_now_ms() < until)
                xmpp_run_once(ctx, 5);
        } else {
            proc_wait_event(p, watch, end - hx_now_ms());
        }
    }
    if (watch >= 0)
        close(watch);
    return found;
}

int hx_file_has_sanitizer_report(const char *path)
{
    static const char *const marks[] = {"ERROR: AddressSanitizer", "ERROR: LeakSanitizer",
                                        "runtime error:", "AddressSanitizer:DEADLYSIGNAL", NULL};
    size_t i;
    for (i = 0; marks[i]; i++)
        if (hx_file_count(path, marks[i]) > 0)
            return 1;
    return 0;
}

void hx_file_dump(const char *path, const char *title)
{
    char *text = read_file(path, NULL);
    fprintf(stderr, "----- %s (%s) -----\n%s----- end of %s -----\n", title, path,
            text ? text : "(unreadable)\n", title);
    free(text);
}

int hx_run(const char *const *argv, const char *stdout_path)
{
    pid_t pid, r;
    int status;
    fflush(NULL);
    pid = fork();
    if (pid < 0)
        return -1;
    if (pid == 0) {
        int nul = open("/dev/null", O_RDONLY);
        int out = stdout_path ? open(stdout_path, O_WRONLY | O_CREAT | O_TRUNC, 0600) : dup(2);
        if (nul < 0 || out < 0)
            _exit(126);
        dup2(nul, 0);
        dup2(out, 1);
        close_from_3();
        execvp(argv[0], (char *const *)(uintptr_t)argv);
        _exit(127);
    }
    do
        r = waitpid(pid, &status, 0);
    while (r < 0 && errno == EINTR);
    if (r != pid || !WIFEXITED(status))
        return -1;
    return WEXITSTATUS(status);
}

/* ---- agent protocol requests ------------------------------------------- */

void hx_hash(char out[41], const char *seed)
{
    unsigned char d[20];
    size_t i;
    xmpp_sha1_digest((const unsigned char *)seed, strlen(seed), d);
    for (i = 0; i < 20; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

static void xml_escaped(hx_buf_t *b, const char *s)
{
    for (; *s; s++) {
        switch (*s) {
        case '&':
            hx_buf_printf(b, "&amp;");
            break;
        case '<':
            hx_buf_printf(b, "&lt;");
            break;
        case '>':
            hx_buf_printf(b, "&gt;");
            break;
        case '\'':
            hx_buf_printf(b, "&apos;");
            break;
        case '"':
            hx_buf_printf(b, "&quot;");
            break;
        default:
            hx_buf_printf(b, "%c", *s);
        }
    }
}

void hx_share_el(hx_buf_t *b, const char *hash, const char *name, unsigned long long size)
{
    hx_buf_printf(b, "<share_item hash='%s' name='", hash);
    xml_escaped(b, name);
    hx_buf_printf(b, "' size='%llu'/>", size);
}

void hx_hash_el(hx_buf_t *b, const char *hash)
{
    hx_buf_printf(b, "<share_item hash='%s'/>", hash);
}

void hx_addr_el(hx_buf_t *b, const char *address, unsigned port)
{
    hx_buf_printf(b, "<ip_address address='%s' port='%u'/>", address, port);
}

char *hx_agent_iq(const char *to, const char *id, const char *op, long long seq,
                  const char *children)
{
    hx_buf_t b = {0};
    hx_buf_printf(&b, "<iq type='set' to='%s' id='%s'><%s xmlns='urn:bitween:agent:1'", to, id, op);
    if (seq >= 0)
        hx_buf_printf(&b, " seq='%lld'", seq);
    if (children && *children)
        hx_buf_printf(&b, ">%s</%s></iq>", children, op);
    else
        hx_buf_printf(&b, "/></iq>");
    return b.s;
}

/* ---- stanzas ------------------------------------------------------------- */

const char *hx_iq_type(xmpp_stanza_t *iq)
{
    return iq ? xmpp_stanza_get_type(iq) : NULL;
}

int hx_iq_error_is(xmpp_stanza_t *iq, const char *type, const char *cond, char *text_out,
                   size_t len)
{
    xmpp_stanza_t *err, *child;
    const char *etype, *got_cond = NULL;
    char *text = NULL;
    int ok;

    if (text_out && len)
        text_out[0] = '\0';
    if (!iq) {
        fprintf(stderr, "harness: expected %s/%s, got no reply\n", type, cond);
        return 0;
    }
    err = xmpp_stanza_get_child_by_name(iq, "error");
    etype = err ? xmpp_stanza_get_attribute(err, "type") : NULL;
    for (child = err ? xmpp_stanza_get_children(err) : NULL; child;
         child = xmpp_stanza_get_next(child)) {
        const char *name = xmpp_stanza_get_name(child);
        if (!xmpp_stanza_is_tag(child) || !name)
            continue;
        if (strcmp(name, "text") == 0) {
            text = xmpp_stanza_get_text(child);
        } else if (!got_cond) {
            const char *ns = xmpp_stanza_get_ns(child);
            if (ns && strcmp(ns, "urn:ietf:params:xml:ns:xmpp-stanzas") == 0)
                got_cond = name;
        }
    }
    ok = hx_iq_type(iq) && strcmp(hx_iq_type(iq), "error") == 0 && etype &&
         strcmp(etype, type) == 0 && got_cond && strcmp(got_cond, cond) == 0 && text && *text;
    if (!ok)
        fprintf(stderr,
                "harness: expected error %s/%s with a text, got type=%s error=%s/%s text=%s\n",
                type, cond, hx_iq_type(iq) ? hx_iq_type(iq) : "(none)", etype ? etype : "(none)",
                got_cond ? got_cond : "(none)", text ? text : "(none)");
    if (text_out && len && text)
        snprintf(text_out, len, "%s", text);
    if (text)
        xmpp_free(xmpp_stanza_get_context(iq), text);
    return ok;
}

/* ---- database ------------------------------------------------------------ */

PGconn *hx_db_connect(const char *url)
{
    PGconn *db = PQconnectdb(url);
    if (PQstatus(db) != CONNECTION_OK) {
        fprintf(stderr, "harness: cannot connect to %s: %s", url, PQerrorMessage(db));
        PQfinish(db);
        return NULL;
    }
    return db;
}

/* Run a query with text parameters; NULL (and a message) on failure. A
 * lost connection (the database was restarted) is re-established once. */
static PGresult *query(PGconn *db, const char *sql, int n, const char *const *params)
{
    PGresult *r;
    int attempt;
    for (attempt = 0; attempt < 2; attempt++) {
        r = PQexecParams(db, sql, n, NULL, params, NULL, NULL, 0);
        if (PQresultStatus(r) == PGRES_TUPLES_OK)
            return r;
        if (attempt == 0 && PQstatus(db) != CONNECTION_OK) {
            PQclear(r);
            PQreset(db);
            continue;
        }
        fprintf(stderr, "harness: query failed: %s", PQerrorMessage(db));
        PQclear(r);
        return NULL;
    }
    return NULL;
}

#define USER_JOIN " FROM resources r JOIN users u ON u.id = r.user_id WHERE u.jid = $1"

char *hx_db_fingerprint(PGconn *db, const char *jid)
{
    static const char sql[] =
        "SELECT coalesce(string_agg(x, E'\\n' ORDER BY x), '') FROM ("
        " SELECT 'resource ' || r.resource || ' seq ' || r.seq || ' updated ' || r.updated_at AS "
        "x" USER_JOIN
        " UNION ALL SELECT 'share ' || r.resource || ' ' || encode(s.hash, 'hex') || ' ' ||"
        "  s.name || ' ' || s.size"
        " FROM shares s JOIN resources r ON r.id = s.resource_id JOIN users u ON u.id = r.user_id"
        " WHERE u.jid = $1"
        " UNION ALL SELECT 'address ' || r.resource || ' ' || host(a.address) || ' ' || a.port"
        " FROM addresses a JOIN resources r ON r.id = a.resource_id"
        " JOIN users u ON u.id = r.user_id WHERE u.jid = $1) t";
    const char *params[1] = {jid};
    PGresult *r = query(db, sql, 1, params);
    char *out;
    if (!r)
        return NULL;
    out = strdup(PQgetvalue(r, 0, 0));
    PQclear(r);
    if (!out)
        oom();
    return out;
}

static long long scalar(PGconn *db, const char *sql, int n, const char *const *params)
{
    PGresult *r = query(db, sql, n, params);
    long long v;
    if (!r)
        return -1;
    v = PQntuples(r) > 0 && !PQgetisnull(r, 0, 0) ? atoll(PQgetvalue(r, 0, 0)) : -1;
    PQclear(r);
    return v;
}

int hx_db_resources(PGconn *db, const char *jid)
{
    const char *params[1] = {jid};
    return (int)scalar(db, "SELECT count(*)" USER_JOIN, 1, params);
}

long long hx_db_seq(PGconn *db, const char *jid, const char *resource)
{
    const char *params[2] = {jid, resource};
    return scalar(db, "SELECT r.seq" USER_JOIN " AND r.resource = $2", 2, params);
}

int hx_db_shares(PGconn *db, const char *jid, const char *resource)
{
    const char *params[2] = {jid, resource};
    if (!resource)
        return (int)scalar(db,
                           "SELECT count(*) FROM shares s JOIN resources r ON r.id = s.resource_id"
                           " JOIN users u ON u.id = r.user_id WHERE u.jid = $1",
                           1, params);
    return (int)scalar(db,
                       "SELECT count(*) FROM shares s JOIN resources r ON r.id = s.resource_id"
                       " JOIN users u ON u.id = r.user_id WHERE u.jid = $1 AND r.resource = $2",
                       2, params);
}

int hx_db_has_share(PGconn *db, const char *jid, const char *resource, const char *hash)
{
    const char *params[3] = {jid, resource, hash};
    return (int)scalar(db,
                       "SELECT count(*) FROM shares s JOIN resources r ON r.id = s.resource_id"
                       " JOIN users u ON u.id = r.user_id WHERE u.jid = $1 AND r.resource = $2"
                       " AND s.hash = decode($3, 'hex')",
                       3, params);
}

int hx_db_digest(PGconn *db, const char *jid, char hex[SHARES_DIGEST_HEX])
{
    static const char sql[] =
        "SELECT r.resource, 1, encode(s.hash, 'hex'), s.name, s.size::text"
        " FROM shares s JOIN resources r ON r.id = s.resource_id"
        " JOIN users u ON u.id = r.user_id WHERE u.jid = $1"
        " UNION ALL SELECT r.resource, 2, host(a.address), NULL, a.port::text"
        " FROM addresses a JOIN resources r ON r.id = a.resource_id"
        " JOIN users u ON u.id = r.user_id WHERE u.jid = $1"
        " UNION ALL SELECT r.resource, 0, NULL, NULL, NULL" USER_JOIN " ORDER BY 1, 2";
    const char *params[1] = {jid};
    PGresult *r = query(db, sql, 1, params);
    shares_item_t *item;
    shares_error_t err;
    size_t ri = 0;
    int i, rc = 0;

    if (!r)
        return -1;
    item = shares_item_new(&no_limits); /* the component's quotas are its own */
    if (!item)
        oom();
    /* Rows of one resource: the resource (kind 0), its shares (1), its
     * addresses (2). */
    for (i = 0; i < PQntuples(r) && rc == 0; i++) {
        const char *res = PQgetvalue(r, i, 0), *kind = PQgetvalue(r, i, 1);
        if (kind[0] == '0')
            rc = shares_item_add_resource(item, res, &ri, &err);
        else if (kind[0] == '1')
            rc = shares_item_add_share(item, ri, PQgetvalue(r, i, 2), PQgetvalue(r, i, 3),
                                       strtoull(PQgetvalue(r, i, 4), NULL, 10), &err);
        else
            rc = shares_item_add_address(item, ri, PQgetvalue(r, i, 2),
                                         strtoul(PQgetvalue(r, i, 4), NULL, 10), &err);
    }
    PQclear(r);
    if (rc == 0)
        rc = shares_item_digest(item, hex, &err);
    if (rc != 0)
        fprintf(stderr, "harness: rebuilding the item of %s: %s\n", jid, err.message);
    shares_item_free(item);
    return rc == 0 ? 0 : -1;
}

int hx_db_published_digest(PGconn *db, const char *jid, char hex[SHARES_DIGEST_HEX])
{
    const char *params[1] = {jid};
    PGresult *r = query(db,
                        "SELECT p.digest FROM publishes p JOIN users u ON u.id = p.user_id"
                        " WHERE u.jid = $1 AND p.status = 'ok'",
                        1, params);
    int rc = -1;
    if (!r)
        return -1;
    if (PQntuples(r) == 1) {
        snprintf(hex, SHARES_DIGEST_HEX, "%s", PQgetvalue(r, 0, 0));
        rc = 0;
    }
    PQclear(r);
    return rc;
}

int hx_text_digest(xmpp_ctx_t *ctx, const char *xml, char hex[SHARES_DIGEST_HEX])
{
    shares_item_t *item = NULL;
    shares_error_t err;
    int rc;
    if (!xml)
        return -1;
    rc = shares_item_parse_text(ctx, xml, &no_limits, &item, &err);
    if (rc == 0)
        rc = shares_item_digest(item, hex, &err);
    if (rc != 0)
        fprintf(stderr, "harness: received item does not parse (%s): %s\n", err.message, xml);
    shares_item_free(item);
    return rc == 0 ? 0 : -1;
}
