/* SPDX-License-Identifier: MIT */
/*
 * End-to-end tests of the admin REST API of bitween-component: the shipped
 * binary, spawned by this program with BITWEEN_API_PORT=0 and a token,
 * against the real Prosody and PostgreSQL of tests/with_stack.sh, spoken to
 * over real HTTP with libcurl (and once over a raw socket). The registry's
 * data comes from agents that register through XMPP (xclient.h); a contact
 * with +notify caps watches the owner's PEP item. Every route's happy path,
 * eviction and republish as the contact and the database see them, token
 * failures, every class of bad input, /readyz across a PostgreSQL outage,
 * and /metrics counters moving with registrations. The component's output
 * goes to a log file, printed when a test fails; a sanitizer report in it
 * fails the test.
 *
 *   test_api BITWEEN_COMPONENT_BINARY
 *
 * Needs the variables with_stack.sh exports. BITWEEN_TEST_TRACE prints
 * the steps with their times, and the component's log at the end.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <curl/curl.h>
#include <jansson.h>
#include <libpq-fe.h>
#include <strophe.h>

#include "harness.h"
#include "shares.h"
#include "xclient.h"

#define WAIT        15000 /* ms: any single thing we wait for */
#define IQ_TIMEOUT  10000
#define HTTP_MS     15000 /* whole HTTP exchange */
#define READY_LINE  "grants the pubsub iq permission"
#define LISTEN_LINE "api: listening on 127.0.0.1:"
#define PASSWORD    "secret-pw"
#define TOKEN       "e2e-api-token-0123456789abcdef"
#define N_REPORTS   5
/* The connection flood: from another client address than the probes'. */
#define FLOOD        600
#define FLOOD_SOURCE "127.0.0.2"
#define PER_CLIENT   16 /* api_max_connections_per_client, default */

/* ---- fixture: one component, one data set, shared by the tests --------- */

typedef struct g {
    /* stack */
    const char *bin, *stack_script, *stack_dir, *db_url, *domain, *component_jid;
    char version[64]; /* of the binary, from --version */
    unsigned short c2s_port;
    char dir[256]; /* logs */
    /* processes and connections */
    hx_proc_t *comp;
    hx_proc_t *side; /* a second component a test starts; killed when it ends */
    xmpp_ctx_t *ctx;
    PGconn *db;
    CURL *curl;
    int port;
    char base[64];  /* http://127.0.0.1:PORT */
    char auth[128]; /* Authorization value with the right token */
    /* users (bare JIDs) and their clients */
    char *alice, *bob, *carol, *mallory, *u[N_REPORTS];
    xclient_t *laptop, *desktop, *phone, *box[N_REPORTS], *mdev, *watch;
    /* hashes */
    char h_holiday[41], h_common[41], h_notes[41], h_reports[41], h_pct[41], h_nopct[41];
    char h_report[N_REPORTS][41];
    char h_v2[65];
    unsigned next_id;
    int pg_down;                /* stopped by a test: started again when it ends */
    int fresh;                  /* each request on a new connection, closed after it */
    struct pollfd flood[FLOOD]; /* the flood's sockets (fd -1: closed) */
    int flooding;               /* closed when the test ends */
    int passed;                 /* the running test reached its end */
    int dumped;                 /* the log was printed once already */
} g_t;

static long long t0_ms;
static const char *component_bin;

static void trace(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void trace(const char *fmt, ...)
{
    va_list ap;
    if (!getenv("BITWEEN_TEST_TRACE"))
        return;
    fprintf(stderr, "[%6lld ms] ", hx_now_ms() - t0_ms);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
}

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v) {
        fprintf(stderr, "test_api: %s is not set (run under tests/with_stack.sh)\n", name);
        exit(2);
    }
    return v;
}

/* ---- HTTP (libcurl) ------------------------------------------------------ */

typedef struct resp {
    long status;
    char *body; /* NUL-terminated */
    size_t len;
    char ctype[160], allow[160], www[160];
    int have_www, have_allow;
} resp_t;

static void resp_clear(resp_t *r)
{
    free(r->body);
    memset(r, 0, sizeof *r);
}

static size_t on_body(char *p, size_t size, size_t n, void *arg)
{
    resp_t *r = arg;
    size_t add = size * n;
    char *b = realloc(r->body, r->len + add + 1);
    if (!b)
        return 0;
    memcpy(b + r->len, p, add);
    r->body = b;
    r->len += add;
    r->body[r->len] = '\0';
    return add;
}

/* Copy the value of header line `line` (`n` bytes) into `out` when it is
 * `name:`; returns 1 then. */
static int header_value(const char *line, size_t n, const char *name, char *out, size_t len)
{
    size_t k = strlen(name), i, j;
    if (n <= k || strncasecmp(line, name, k) != 0 || line[k] != ':')
        return 0;
    i = k + 1;
    while (i < n && (line[i] == ' ' || line[i] == '\t'))
        i++;
    j = n;
    while (j > i && (line[j - 1] == '\r' || line[j - 1] == '\n' || line[j - 1] == ' '))
        j--;
    snprintf(out, len, "%.*s", (int)(j - i), line + i);
    return 1;
}

static size_t on_header(char *p, size_t size, size_t n, void *arg)
{
    resp_t *r = arg;
    size_t len = size * n;
    if (len >= 5 && strncmp(p, "HTTP/", 5) == 0) { /* a new response (e.g. after 100) */
        r->ctype[0] = r->allow[0] = r->www[0] = '\0';
        r->have_www = r->have_allow = 0;
    }
    header_value(p, len, "Content-Type", r->ctype, sizeof r->ctype);
    r->have_allow |= header_value(p, len, "Allow", r->allow, sizeof r->allow);
    r->have_www |= header_value(p, len, "WWW-Authenticate", r->www, sizeof r->www);
    return len;
}

/* Request body source for chunked uploads: `left` bytes of 'x'. */
typedef struct upload {
    size_t left;
} upload_t;

static size_t on_read(char *p, size_t size, size_t n, void *arg)
{
    upload_t *u = arg;
    size_t k = size * n < u->left ? size * n : u->left;
    memset(p, 'x', k);
    u->left -= k;
    return k;
}

enum { BODY_PLAIN = 0, BODY_CHUNKED = 1, BODY_EXPECT = 2 };

/*
 * One request on the shared handle (connections are kept alive between
 * requests) to `base` ("http://127.0.0.1:PORT"). `auth`: the Authorization
 * value, NULL for none. `body`: NULL for none, else `body_len` bytes; with
 * BODY_CHUNKED `body_len` bytes are sent chunked (content ignored). Fills
 * `r`; returns the status.
 */
static long http_at(g_t *g, const char *base, const char *method, const char *path,
                    const char *auth, const char *body, size_t body_len, int mode, resp_t *r)
{
    char url[8192], hdr[256];
    struct curl_slist *hdrs = NULL;
    upload_t up = {body_len};
    CURLcode rc;

    memset(r, 0, sizeof *r);
    snprintf(url, sizeof url, "%s%s", base, path);
    curl_easy_reset(g->curl);
    curl_easy_setopt(g->curl, CURLOPT_URL, url);
    curl_easy_setopt(g->curl, CURLOPT_PATH_AS_IS, 1L);
    curl_easy_setopt(g->curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(g->curl, CURLOPT_TIMEOUT_MS, (long)HTTP_MS);
    curl_easy_setopt(g->curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(g->curl, CURLOPT_WRITEDATA, r);
    curl_easy_setopt(g->curl, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(g->curl, CURLOPT_HEADERDATA, r);
    if (g->fresh) {
        curl_easy_setopt(g->curl, CURLOPT_FRESH_CONNECT, 1L);
        curl_easy_setopt(g->curl, CURLOPT_FORBID_REUSE, 1L);
    }
    if (auth) {
        snprintf(hdr, sizeof hdr, "Authorization: %s", auth);
        hdrs = curl_slist_append(hdrs, hdr);
    }
    if (strcmp(method, "HEAD") == 0) {
        curl_easy_setopt(g->curl, CURLOPT_NOBODY, 1L);
    } else if (mode == BODY_CHUNKED) {
        curl_easy_setopt(g->curl, CURLOPT_UPLOAD, 1L);
        curl_easy_setopt(g->curl, CURLOPT_CUSTOMREQUEST, method);
        curl_easy_setopt(g->curl, CURLOPT_READFUNCTION, on_read);
        curl_easy_setopt(g->curl, CURLOPT_READDATA, &up);
        hdrs = curl_slist_append(hdrs, "Transfer-Encoding: chunked");
        hdrs = curl_slist_append(hdrs, "Expect:");
    } else if (body || strcmp(method, "POST") == 0) {
        curl_easy_setopt(g->curl, CURLOPT_POST, 1L);
        curl_easy_setopt(g->curl, CURLOPT_POSTFIELDS, body ? body : "");
        curl_easy_setopt(g->curl, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)body_len);
        if (strcmp(method, "POST") != 0)
            curl_easy_setopt(g->curl, CURLOPT_CUSTOMREQUEST, method);
        /* With a body the server may refuse up front (413): wait for its
         * verdict instead of sending into a closing connection. */
        hdrs = curl_slist_append(hdrs, mode == BODY_EXPECT ? "Expect: 100-continue" : "Expect:");
        if (mode == BODY_EXPECT)
            curl_easy_setopt(g->curl, CURLOPT_EXPECT_100_TIMEOUT_MS, (long)HTTP_MS);
    } else if (strcmp(method, "GET") != 0) {
        curl_easy_setopt(g->curl, CURLOPT_CUSTOMREQUEST, method);
    }
    curl_easy_setopt(g->curl, CURLOPT_HTTPHEADER, hdrs);
    rc = curl_easy_perform(g->curl);
    curl_slist_free_all(hdrs);
    if (rc != CURLE_OK) {
        fprintf(stderr, "test_api: %s %s%s: %s\n", method, base, path, curl_easy_strerror(rc));
        fail();
    }
    curl_easy_getinfo(g->curl, CURLINFO_RESPONSE_CODE, &r->status);
    if (!r->body) {
        r->body = strdup("");
        assert_non_null(r->body);
    }
    trace("%s %s -> %ld", method, path, r->status);
    return r->status;
}

static long http_ex(g_t *g, const char *method, const char *path, const char *auth,
                    const char *body, size_t body_len, int mode, resp_t *r)
{
    return http_at(g, g->base, method, path, auth, body, body_len, mode, r);
}

static long http(g_t *g, const char *method, const char *path, const char *auth, resp_t *r)
{
    return http_ex(g, method, path, auth, NULL, 0, BODY_PLAIN, r);
}

/* Parse a JSON body (object), failing the test when it is not. */
static json_t *parse_json(const resp_t *r, const char *what)
{
    json_error_t err;
    json_t *v = json_loadb(r->body, r->len, 0, &err);
    if (!v || !json_is_object(v)) {
        fprintf(stderr, "test_api: %s: body is not a JSON object (%s): %s\n", what, err.text,
                r->body);
        fail();
    }
    if (strncmp(r->ctype, "application/json", 16) != 0) {
        fprintf(stderr, "test_api: %s: Content-Type is \"%s\"\n", what, r->ctype);
        fail();
    }
    return v;
}

/* A string member of `o`, "(missing)" when absent or not a string. */
static const char *js(const json_t *o, const char *key)
{
    const char *v = json_string_value(json_object_get(o, key));
    return v ? v : "(missing)";
}

/* GET `path` with the token, expect `status`, return the JSON body. */
static json_t *call_json(g_t *g, const char *method, const char *path, long status)
{
    resp_t r;
    json_t *v;
    http(g, method, path, g->auth, &r);
    if (r.status != status)
        fprintf(stderr, "test_api: %s %s: status %ld, expected %ld: %s\n", method, path, r.status,
                status, r.body);
    assert_int_equal(r.status, status);
    v = parse_json(&r, path);
    resp_clear(&r);
    return v;
}

static json_t *get_json(g_t *g, const char *path, long status)
{
    return call_json(g, "GET", path, status);
}

/* The error shape {"error":{"code":CODE,"message":"..."}} and nothing else. */
static void check_error(const resp_t *r, long status, const char *code, const char *what)
{
    json_t *v, *e, *c, *m;
    if (r->status != status)
        fprintf(stderr, "test_api: %s: status %ld, expected %ld (%s): %s\n", what, r->status,
                status, code, r->body);
    assert_int_equal(r->status, status);
    v = parse_json(r, what);
    e = json_object_get(v, "error");
    c = json_object_get(e, "code");
    m = json_object_get(e, "message");
    if (json_object_size(v) != 1 || !json_is_object(e) || json_object_size(e) != 2 ||
        !json_is_string(c) || strcmp(json_string_value(c), code) != 0 || !json_is_string(m) ||
        json_string_length(m) == 0) {
        fprintf(stderr, "test_api: %s: expected error %s, got %s\n", what, code, r->body);
        json_decref(v);
        fail();
    }
    json_decref(v);
}

/* `method path` (token per `auth`) answers the error `status`/`code`. */
static void expect_error(g_t *g, const char *method, const char *path, const char *auth,
                         long status, const char *code)
{
    resp_t r;
    char what[512];
    snprintf(what, sizeof what, "%s %.400s", method, path);
    http(g, method, path, auth, &r);
    check_error(&r, status, code, what);
    resp_clear(&r);
}

/* Percent-encode for a query value (caller frees). */
static char *esc(g_t *g, const char *s)
{
    char *e = curl_easy_escape(g->curl, s, 0), *out;
    assert_non_null(e);
    out = strdup(e);
    curl_free(e);
    assert_non_null(out);
    return out;
}

/* ---- /metrics text --------------------------------------------------------- */

typedef struct sample {
    char *name, *labels; /* labels without braces, "" when none */
    double value;
} sample_t;

typedef struct family {
    char *name, *type;
} family_t;

typedef struct metrics {
    sample_t *s;
    size_t n;
    family_t *f;
    size_t nf;
} metrics_t;

static void metrics_free(metrics_t *m)
{
    size_t i;
    for (i = 0; i < m->n; i++) {
        free(m->s[i].name);
        free(m->s[i].labels);
    }
    for (i = 0; i < m->nf; i++) {
        free(m->f[i].name);
        free(m->f[i].type);
    }
    free(m->s);
    free(m->f);
    memset(m, 0, sizeof *m);
}

static const char *family_type(const metrics_t *m, const char *name)
{
    size_t i;
    for (i = 0; i < m->nf; i++)
        if (strcmp(m->f[i].name, name) == 0)
            return m->f[i].type;
    return NULL;
}

/* The family a sample belongs to: histograms own NAME_bucket/_sum/_count. */
static const char *sample_family(const metrics_t *m, const char *name, char *buf, size_t len)
{
    static const char *const suffixes[] = {"_bucket", "_sum", "_count"};
    size_t i, n = strlen(name);
    if (family_type(m, name))
        return name;
    for (i = 0; i < 3; i++) {
        size_t k = strlen(suffixes[i]);
        if (n > k && strcmp(name + n - k, suffixes[i]) == 0) {
            snprintf(buf, len, "%.*s", (int)(n - k), name);
            if (family_type(m, buf) && strcmp(family_type(m, buf), "histogram") == 0)
                return buf;
        }
    }
    return NULL;
}

static int metric_name_ok(const char *s, size_t n)
{
    size_t i;
    if (n == 0 || isdigit((unsigned char)s[0]))
        return 0;
    for (i = 0; i < n; i++)
        if (!isalnum((unsigned char)s[i]) && s[i] != '_' && s[i] != ':')
            return 0;
    return 1;
}

/* Parse the text exposition format strictly enough to catch mistakes:
 * every sample after its family's TYPE, names well-formed, labels
 * `k="v"` pairs, values numbers. Fails the test on malformed text. */
static void metrics_parse(const char *text, metrics_t *m)
{
    const char *line = text;
    memset(m, 0, sizeof *m);
    while (*line) {
        const char *eol = strchr(line, '\n');
        size_t n = eol ? (size_t)(eol - line) : strlen(line);
        char *l = strndup(line, n), *p, *end;
        assert_non_null(l);
        if (n == 0) {
            /* blank */
        } else if (strncmp(l, "# TYPE ", 7) == 0) {
            char name[256], type[32];
            family_t *f;
            assert_int_equal(sscanf(l + 7, "%255s %31s", name, type), 2);
            assert_true(metric_name_ok(name, strlen(name)));
            assert_true(strcmp(type, "counter") == 0 || strcmp(type, "gauge") == 0 ||
                        strcmp(type, "histogram") == 0);
            if (family_type(m, name)) {
                fprintf(stderr, "test_api: metrics: family %s declared twice\n", name);
                fail();
            }
            f = realloc(m->f, (m->nf + 1) * sizeof *f);
            assert_non_null(f);
            m->f = f;
            m->f[m->nf].name = strdup(name);
            m->f[m->nf].type = strdup(type);
            m->nf++;
        } else if (l[0] == '#') {
            assert_true(strncmp(l, "# HELP ", 7) == 0);
        } else {
            sample_t s = {0};
            sample_t *v;
            char fam[256];
            size_t k = strcspn(l, "{ ");
            assert_true(metric_name_ok(l, k));
            s.name = strndup(l, k);
            p = l + k;
            if (*p == '{') {
                char *q = ++p;
                /* k="v" pairs; values may hold escaped quotes */
                while (*q && *q != '}') {
                    size_t kn = strcspn(q, "=");
                    assert_true(metric_name_ok(q, kn));
                    q += kn;
                    assert_true(q[0] == '=' && q[1] == '"');
                    q += 2;
                    while (*q && *q != '"')
                        q += (*q == '\\' && q[1]) ? 2 : 1;
                    assert_true(*q == '"');
                    q++;
                    if (*q == ',')
                        q++;
                }
                assert_true(*q == '}');
                s.labels = strndup(p, (size_t)(q - p));
                p = q + 1;
            } else {
                s.labels = strdup("");
            }
            assert_true(*p == ' ');
            errno = 0;
            s.value = strtod(p + 1, &end);
            if (end == p + 1 || *end != '\0' || errno) {
                fprintf(stderr, "test_api: metrics: bad value in \"%s\"\n", l);
                fail();
            }
            if (!sample_family(m, s.name, fam, sizeof fam)) {
                fprintf(stderr, "test_api: metrics: sample %s has no TYPE before it\n", s.name);
                fail();
            }
            v = realloc(m->s, (m->n + 1) * sizeof *v);
            assert_non_null(v);
            m->s = v;
            m->s[m->n++] = s;
        }
        free(l);
        line += n + (eol ? 1 : 0);
    }
}

/* Whether `labels` holds key="value" (value unescaped, plain text). */
static int has_label(const char *labels, const char *key, const char *value)
{
    char want[320];
    const char *p = labels;
    size_t n;
    snprintf(want, sizeof want, "%s=\"%s\"", key, value);
    n = strlen(want);
    while ((p = strstr(p, want)) != NULL) {
        if ((p == labels || p[-1] == ',') && (p[n] == ',' || p[n] == '\0'))
            return 1;
        p++;
    }
    return 0;
}

/* Value of the sample `name` whose labels include each key/value pair
 * given (NULL-terminated); NAN when absent. */
static double metric(const metrics_t *m, const char *name, ...)
{
    size_t i;
    for (i = 0; i < m->n; i++) {
        va_list ap;
        const char *k;
        int ok = strcmp(m->s[i].name, name) == 0;
        va_start(ap, name);
        while (ok && (k = va_arg(ap, const char *)) != NULL)
            ok = has_label(m->s[i].labels, k, va_arg(ap, const char *));
        va_end(ap);
        if (ok)
            return m->s[i].value;
    }
    return NAN;
}

static void metrics_get(g_t *g, metrics_t *m)
{
    resp_t r;
    http(g, "GET", "/metrics", NULL, &r);
    assert_int_equal(r.status, 200);
    if (strncmp(r.ctype, "text/plain; version=0.0.4", 25) != 0) {
        fprintf(stderr, "test_api: /metrics Content-Type \"%s\"\n", r.ctype);
        fail();
    }
    metrics_parse(r.body, m);
    resp_clear(&r);
}

/* One fresh scrape's value of a sample (NAN when absent). */
static double scrape(g_t *g, const char *name, const char *k, const char *v)
{
    metrics_t m;
    double x;
    metrics_get(g, &m);
    x = k ? metric(&m, name, k, v, NULL) : metric(&m, name, NULL);
    metrics_free(&m);
    return x;
}

/* ---- database -------------------------------------------------------------- */

static PGresult *db_query(g_t *g, const char *sql)
{
    PGresult *r = PQexec(g->db, sql);
    if (PQresultStatus(r) != PGRES_TUPLES_OK && PQstatus(g->db) != CONNECTION_OK) {
        PQclear(r);
        PQreset(g->db); /* PostgreSQL was restarted */
        r = PQexec(g->db, sql);
    }
    if (PQresultStatus(r) != PGRES_TUPLES_OK) {
        fprintf(stderr, "test_api: %s: %s", sql, PQerrorMessage(g->db));
        PQclear(r);
        fail();
    }
    return r;
}

static long long db_scalar(g_t *g, const char *sql)
{
    PGresult *r = db_query(g, sql);
    long long v;
    assert_int_equal(PQntuples(r), 1);
    v = atoll(PQgetvalue(r, 0, 0));
    PQclear(r);
    return v;
}

/* ---- XMPP side ----------------------------------------------------------- */

static char *jid_of(g_t *g, const char *node)
{
    return hx_strdupf("%s@%s", node, g->domain);
}

static xclient_t *login(g_t *g, const char *jid, const char *resource)
{
    char *full = hx_strdupf("%s/%s", jid, resource);
    xclient_t *cl = xclient_login(g->ctx, full, PASSWORD, g->c2s_port, WAIT);
    free(full);
    assert_non_null(cl);
    return cl;
}

/* A round trip to the client's server (XEP-0199): whatever the server
 * sent the client before its reply has been received when it returns. */
static void server_ping(g_t *g, xclient_t *cl)
{
    char *xml = hx_strdupf("<iq type='get' to='%s' id='sp%u'><ping xmlns='urn:xmpp:ping'/></iq>",
                           g->domain, ++g->next_id);
    xmpp_stanza_t *r = xclient_iq(cl, xml, IQ_TIMEOUT);
    free(xml);
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), "result");
    xmpp_stanza_release(r);
}

/* An agent: logged in, directed presence to the component. */
static xclient_t *agent(g_t *g, const char *jid, const char *resource)
{
    xclient_t *cl = login(g, jid, resource);
    xclient_presence(cl, g->component_jid, 0);
    return cl;
}

/* Send an agent request and expect a reply of `want_type` ("result", "error"). */
static void agent_request(g_t *g, xclient_t *cl, const char *op, long long seq,
                          const char *children, const char *want_type)
{
    char id[32], *xml, *text = NULL;
    xmpp_stanza_t *r;
    size_t len;
    snprintf(id, sizeof id, "api%u", ++g->next_id);
    xml = hx_agent_iq(g->component_jid, id, op, seq, children);
    r = xclient_iq(cl, xml, IQ_TIMEOUT);
    free(xml);
    if (!r || strcmp(hx_iq_type(r), want_type) != 0) {
        if (r)
            xmpp_stanza_to_text(r, &text, &len);
        fprintf(stderr, "test_api: %s seq %lld from %s: expected %s, got %s\n", op, seq,
                xclient_jid(cl), want_type, text ? text : "no reply");
        if (text)
            xmpp_free(g->ctx, text);
    }
    assert_non_null(r);
    assert_string_equal(hx_iq_type(r), want_type);
    xmpp_stanza_release(r);
}

/* Wait until the contact's last item of `jid` is the state stored for
 * `jid` (same canonical digest) and passes the must/must_not checks. */
static void wait_view(g_t *g, const char *jid, const char *const *must, const char *const *must_not)
{
    long long end = hx_now_ms() + WAIT;
    char db[SHARES_DIGEST_HEX], seen[SHARES_DIGEST_HEX];
    for (;;) {
        const char *last = xclient_last_item(g->watch, jid);
        assert_int_equal(hx_db_digest(g->db, jid, db), 0);
        if (last && xclient_wait_item(g->watch, jid, must, must_not, 0) &&
            hx_text_digest(g->ctx, last, seen) == 0 && strcmp(db, seen) == 0)
            return;
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_api: the contact's view of %s never matched; last item: %s\n",
                    jid, last ? last : "(none)");
            fail();
        }
        xclient_pump(g->ctx, 20);
    }
}

/* ---- the component --------------------------------------------------------- */

/* The port after `prefix` ("api: listening on 127.0.0.1:") in the log. */
static int read_port(const char *log, const char *prefix)
{
    char *text = hx_file_read(log), *p;
    int port = -1;
    if (text && (p = strstr(text, prefix)) != NULL)
        port = atoi(p + strlen(prefix));
    free(text);
    return port;
}

static void dump_log_once(g_t *g)
{
    if (g->comp && !g->dumped) {
        hx_file_dump(hx_proc_log(g->comp), "component log");
        g->dumped = 1;
    }
}

/*
 * Start the component on the test stack with the API on an ephemeral
 * loopback port and the token, plus `extra` ("NAME=VALUE" overriding
 * those, NULL-terminated, may be NULL); its output goes to NAME.log in the
 * group's directory. NULL when fork failed.
 */
static hx_proc_t *spawn_component(g_t *g, const char *name, const char *const *extra)
{
    char *env[5], *log;
    const char *full[32];
    size_t n = 0, i;
    hx_proc_t *p;

    env[0] = hx_strdupf("BITWEEN_XMPP_PORT=%s", env_required("BITWEEN_XMPP_PORT"));
    env[1] = hx_strdupf("BITWEEN_COMPONENT_JID=%s", g->component_jid);
    env[2] = hx_strdupf("BITWEEN_COMPONENT_SECRET=%s", env_required("BITWEEN_COMPONENT_SECRET"));
    env[3] = hx_strdupf("BITWEEN_DOMAINS=%s", g->domain);
    env[4] = hx_strdupf("BITWEEN_DATABASE_URL=%s", g->db_url);
    full[n++] = "BITWEEN_CONFIG"; /* no file */
    full[n++] = "BITWEEN_XMPP_HOST=127.0.0.1";
    for (i = 0; i < 5; i++)
        full[n++] = env[i];
    full[n++] = "BITWEEN_API_ADDRESS=127.0.0.1";
    full[n++] = "BITWEEN_API_PORT=0";
    full[n++] = "BITWEEN_API_TOKEN=" TOKEN;
    full[n++] = "BITWEEN_API_STATS_TTL=1";
    for (i = 0; extra && extra[i]; i++) {
        assert_true(n < sizeof full / sizeof full[0] - 1);
        full[n++] = extra[i];
    }
    full[n] = NULL;
    log = hx_strdupf("%s/%s.log", g->dir, name);
    p = hx_proc_start(g->bin, log, full);
    free(log);
    for (i = 0; i < 5; i++)
        free(env[i]);
    return p;
}

/* ---- group setup: the component and the data agents registered ------------ */

static void shares_of_report(hx_buf_t *b, g_t *g, int i)
{
    char name[64];
    snprintf(name, sizeof name, "Report-%d.PDF", i + 1);
    hx_share_el(b, g->h_report[i], name, (unsigned long long)(i + 1) * 100);
}

/* Run scripts/stack with up to four arguments; 0 when it succeeded. */
static int stack(g_t *g, const char *cmd, const char *a, const char *b, const char *c)
{
    const char *argv[] = {g->stack_script, cmd, g->stack_dir, a, b, c, NULL};
    return hx_run(argv, NULL);
}

/* `bitween-component --version` → "bitween-component X": X. */
static int read_version(g_t *g)
{
    char *out = hx_strdupf("%s/version.txt", g->dir), *text;
    const char *argv[] = {g->bin, "--version", NULL};
    int rc = -1;
    if (hx_run(argv, out) == 0 && (text = hx_file_read(out)) != NULL) {
        if (sscanf(text, "bitween-component %63s", g->version) == 1)
            rc = 0;
        free(text);
    }
    free(out);
    return rc;
}

/* Group set-up: the component (spawned while the accounts are made) and
 * the accounts. Agents register in the first test, so that a failure
 * there prints the component's log. */
static int group_setup(void **state)
{
    static g_t gs;
    g_t *g = &gs;
    const char *tmp = getenv("TMPDIR");
    char node[16];
    int i, rc = -1;

    *state = g;
    g->bin = component_bin;
    g->stack_script = env_required("BITWEEN_STACK_SCRIPT");
    g->stack_dir = env_required("BITWEEN_STACK_DIR");
    g->db_url = env_required("BITWEEN_DATABASE_URL");
    g->domain = env_required("BITWEEN_STACK_DOMAIN");
    g->component_jid = env_required("BITWEEN_COMPONENT_JID");
    g->c2s_port = (unsigned short)atoi(env_required("BITWEEN_STACK_C2S_PORT"));
    snprintf(g->dir, sizeof g->dir, "%s/bitween-e2e-api.XXXXXX", tmp && *tmp ? tmp : "/tmp");
    if (!mkdtemp(g->dir))
        return -1;
    g->ctx = xmpp_ctx_new(NULL, NULL);
    g->db = hx_db_connect(g->db_url);
    g->curl = curl_easy_init();
    if (!g->ctx || !g->db || !g->curl || read_version(g) != 0)
        return -1;
    snprintf(g->auth, sizeof g->auth, "Bearer %s", TOKEN);

    g->comp = spawn_component(g, "component", NULL);
    if (!g->comp)
        return -1;
    trace("component spawned");

    g->alice = jid_of(g, "alice");
    g->bob = jid_of(g, "bob");
    g->carol = jid_of(g, "carol");
    g->mallory = jid_of(g, "mallory");
    for (i = 0; i < N_REPORTS; i++) {
        snprintf(node, sizeof node, "u%d", i + 1);
        g->u[i] = jid_of(g, node);
    }
    if (stack(g, "adduser", "alice", PASSWORD, NULL) ||
        stack(g, "adduser", "bob", PASSWORD, NULL) ||
        stack(g, "adduser", "carol", PASSWORD, NULL) ||
        stack(g, "adduser", "mallory", PASSWORD, NULL) ||
        stack(g, "adduser-bulk", "u", "5", PASSWORD) ||
        stack(g, "subscribe", "alice", "carol", NULL))
        goto out;
    trace("accounts made");
    if (!hx_proc_wait_log(g->comp, READY_LINE, 1, WAIT, NULL) ||
        !hx_proc_wait_log(g->comp, LISTEN_LINE, 1, WAIT, NULL))
        goto out;
    g->port = read_port(hx_proc_log(g->comp), LISTEN_LINE);
    if (g->port <= 0 || g->port > 65535)
        goto out;
    snprintf(g->base, sizeof g->base, "http://127.0.0.1:%d", g->port);
    trace("component ready, API on port %d", g->port);

    hx_hash(g->h_holiday, "holiday");
    hx_hash(g->h_common, "common");
    hx_hash(g->h_notes, "notes");
    hx_hash(g->h_reports, "reports");
    hx_hash(g->h_pct, "pct");
    hx_hash(g->h_nopct, "nopct");
    {
        char a[41], c[41];
        hx_hash(a, "v2-a");
        hx_hash(c, "v2-b");
        snprintf(g->h_v2, sizeof g->h_v2, "%s%.24s", a, c);
    }
    for (i = 0; i < N_REPORTS; i++) {
        char seed[32];
        snprintf(seed, sizeof seed, "report-%d", i + 1);
        hx_hash(g->h_report[i], seed);
    }
    rc = 0;
out:
    if (rc)
        dump_log_once(g);
    return rc;
}

static int group_teardown(void **state)
{
    g_t *g = *state;
    int i, rc = 0;
    xclient_t **all[] = {&g->laptop, &g->desktop, &g->phone, &g->mdev, &g->watch};

    if (g->pg_down)
        stack(g, "start", "pg", NULL, NULL);
    for (i = 0; i < (int)(sizeof all / sizeof all[0]); i++) {
        xclient_free(*all[i]);
        *all[i] = NULL;
    }
    for (i = 0; i < N_REPORTS; i++) {
        xclient_free(g->box[i]);
        g->box[i] = NULL;
    }
    if (g->comp) {
        const char *log = hx_proc_log(g->comp);
        hx_proc_kill(g->comp); /* normally stopped by the last test already */
        if (getenv("BITWEEN_TEST_TRACE"))
            dump_log_once(g);
        if (hx_file_has_sanitizer_report(log)) {
            fprintf(stderr, "test_api: sanitizer report in %s\n", log);
            dump_log_once(g);
            rc = -1;
        }
        hx_proc_free(g->comp);
        g->comp = NULL;
    }
    if (g->curl)
        curl_easy_cleanup(g->curl);
    if (g->db)
        PQfinish(g->db);
    if (g->ctx)
        xmpp_ctx_free(g->ctx);
    free(g->alice);
    free(g->bob);
    free(g->carol);
    free(g->mallory);
    for (i = 0; i < N_REPORTS; i++)
        free(g->u[i]);
    if (g->dir[0]) {
        const char *argv[] = {"rm", "-rf", g->dir, NULL};
        hx_run(argv, NULL);
    }
    memset(g, 0, sizeof *g);
    return rc;
}

/* Per test: start unpassed; after it, the log must be free of sanitizer
 * reports, and is printed (once) when the test failed. */
static int test_setup(void **state)
{
    g_t *g = *state;
    g->passed = 0;
    g->fresh = 0;
    t0_ms = hx_now_ms();
    return 0;
}

static int test_teardown(void **state)
{
    g_t *g = *state;
    int rc = 0;
    if (g->pg_down && stack(g, "start", "pg", NULL, NULL) == 0)
        g->pg_down = 0;
    if (g->comp && hx_file_has_sanitizer_report(hx_proc_log(g->comp))) {
        fprintf(stderr, "test_api: sanitizer report in the component's log\n");
        rc = -1;
    }
    if (!g->passed || rc)
        dump_log_once(g);
    if (g->flooding) {
        int i;
        for (i = 0; i < FLOOD; i++)
            if (g->flood[i].fd >= 0)
                close(g->flood[i].fd);
        g->flooding = 0;
    }
    if (g->side) {
        hx_proc_kill(g->side); /* stopped by the test when it passed */
        if (hx_file_has_sanitizer_report(hx_proc_log(g->side))) {
            fprintf(stderr, "test_api: sanitizer report in the second component's log\n");
            rc = -1;
        }
        if (!g->passed || rc)
            hx_file_dump(hx_proc_log(g->side), "second component log");
        hx_proc_free(g->side);
        g->side = NULL;
    }
    return rc;
}

/* Wait until the last publish the component recorded for `jid` is the
 * state stored for it: every publish of `jid` so far is acknowledged. */
static void wait_published(g_t *g, const char *jid)
{
    long long end = hx_now_ms() + WAIT;
    char db[SHARES_DIGEST_HEX], pub[SHARES_DIGEST_HEX];
    for (;;) {
        assert_int_equal(hx_db_digest(g->db, jid, db), 0);
        if (hx_db_published_digest(g->db, jid, pub) == 0 && strcmp(db, pub) == 0)
            return;
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_api: the state of %s was never recorded as published\n", jid);
            fail();
        }
        xclient_pump(g->ctx, 20);
    }
}

/* ===== tests ============================================================ */

/* Agents register through XMPP: alice with two resources sharing a hash
 * (one resource with a '/' in its name), bob, u1..u5; the contact sees
 * alice's item, and every user's state is published. */
static void test_agents_register(void **state)
{
    g_t *g = *state;
    hx_buf_t b = {0};
    int i;

    /* The contact first, so that it sees every publish of alice. */
    g->watch = login(g, g->carol, "watch");
    xclient_presence(g->watch, NULL, 1);
    server_ping(g, g->watch); /* the server's disco#info query came before this reply */
    server_ping(g, g->watch); /* and our answer went out before this one */

    g->laptop = agent(g, g->alice, "laptop");
    g->desktop = agent(g, g->alice, "desk/top");
    hx_share_el(&b, g->h_holiday, "holiday.mkv", 734003200ULL);
    hx_share_el(&b, g->h_common, "Common Movie.mkv", 4242);
    hx_addr_el(&b, "203.0.113.7", 6881);
    hx_addr_el(&b, "2001:DB8:0:0:0:0:0:7", 6881);
    agent_request(g, g->laptop, "register", 5, b.s, "result");
    free(b.s);
    memset(&b, 0, sizeof b);
    hx_share_el(&b, g->h_common, "Common Movie.mkv", 4242);
    hx_share_el(&b, g->h_notes, "Notes.TXT", 7);
    hx_addr_el(&b, "198.51.100.2", 6882);
    agent_request(g, g->desktop, "register", 9, b.s, "result");
    free(b.s);
    memset(&b, 0, sizeof b);

    g->phone = agent(g, g->bob, "phone");
    hx_share_el(&b, g->h_common, "Common Movie.mkv", 4242);
    hx_share_el(&b, g->h_reports, "annual REPORTS.zip", 1000);
    hx_share_el(&b, g->h_pct, "100%_done.txt", 1);
    hx_share_el(&b, g->h_nopct, "1000_xdone.txt", 2);
    hx_share_el(&b, g->h_v2, "Bj\xc3\xb6rk - album.flac", 99);
    hx_addr_el(&b, "192.0.2.200", 51413);
    agent_request(g, g->phone, "register", 1, b.s, "result");
    free(b.s);
    memset(&b, 0, sizeof b);

    for (i = 0; i < N_REPORTS; i++) {
        char addr[32];
        g->box[i] = agent(g, g->u[i], "box");
        shares_of_report(&b, g, i);
        snprintf(addr, sizeof addr, "192.0.2.%d", i + 1);
        hx_addr_el(&b, addr, 6881);
        agent_request(g, g->box[i], "register", 1, b.s, "result");
        free(b.s);
        memset(&b, 0, sizeof b);
    }
    /* mallory registers in the metrics test; logged in now. */
    g->mdev = agent(g, g->mallory, "dev");
    trace("data registered");
    {
        const char *must[] = {"resource=\"laptop\"", "resource=\"desk/top\"", NULL};
        wait_view(g, g->alice, must, NULL);
    }
    /* Nothing left in flight: later counter checks can be exact. */
    wait_published(g, g->alice);
    wait_published(g, g->bob);
    for (i = 0; i < N_REPORTS; i++)
        wait_published(g, g->u[i]);
    assert_int_equal(hx_db_resources(g->db, g->alice), 2);
    assert_int_equal(hx_db_shares(g->db, g->alice, NULL), 4);
    assert_int_equal(hx_db_shares(g->db, g->bob, NULL), 5);
    trace("everything published");
    g->passed = 1;
}

/* /healthz, HEAD, /readyz and /metrics without a token; the metrics text
 * parses, with the documented families, types and labels, and the cached
 * registry gauges reach the database's counts. */
static void test_probes_and_metrics(void **state)
{
    g_t *g = *state;
    resp_t r;
    json_t *v;
    metrics_t m;
    size_t i;
    static const struct {
        const char *name, *type;
    } families[] = {
        {"bitween_agent_requests_total", "counter"},
        {"bitween_agent_requests_received_total", "counter"},
        {"bitween_agent_requests_refused_total", "counter"},
        {"bitween_publishes_total", "counter"},
        {"bitween_publish_errors_total", "counter"},
        {"bitween_removals_total", "counter"},
        {"bitween_pings_sent_total", "counter"},
        {"bitween_db_unavailable_total", "counter"},
        {"bitween_xmpp_connects_total", "counter"},
        {"bitween_xmpp_disconnects_total", "counter"},
        {"bitween_xmpp_up", "gauge"},
        {"bitween_xmpp_publish_allowed", "gauge"},
        {"bitween_database_up", "gauge"},
        {"bitween_users", "gauge"},
        {"bitween_resources", "gauge"},
        {"bitween_shares", "gauge"},
        {"bitween_addresses", "gauge"},
        {"bitween_distinct_hashes", "gauge"},
        {"bitween_registry_counts_age_seconds", "gauge"},
        {"bitween_api_request_duration_seconds", "histogram"},
        {"bitween_api_responses_total", "counter"},
        {"bitween_uptime_seconds", "gauge"},
        {"bitween_start_time_seconds", "gauge"},
        {"bitween_build_info", "gauge"},
    };
    static const char *const outcomes[] = {"ok", "failed", "retried", "skipped"};
    long long end;
    double before;

    http(g, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    v = parse_json(&r, "/healthz");
    assert_string_equal(js(v, "status"), "ok");
    json_decref(v);
    resp_clear(&r);
    http(g, "HEAD", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    assert_int_equal(r.len, 0);
    resp_clear(&r);
    http(g, "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    v = parse_json(&r, "/readyz");
    assert_string_equal(js(v, "status"), "ready");
    json_decref(v);
    resp_clear(&r);

    /* The registry gauges appear once counted, and equal the tables. */
    end = hx_now_ms() + WAIT;
    for (;;) {
        long long users = db_scalar(g, "SELECT count(DISTINCT user_id) FROM resources");
        long long res = db_scalar(g, "SELECT count(*) FROM resources");
        long long sh = db_scalar(g, "SELECT count(*) FROM shares");
        long long ad = db_scalar(g, "SELECT count(*) FROM addresses");
        long long dh = db_scalar(g, "SELECT count(DISTINCT hash) FROM shares");
        metrics_get(g, &m);
        if (metric(&m, "bitween_users", NULL) == (double)users &&
            metric(&m, "bitween_resources", NULL) == (double)res &&
            metric(&m, "bitween_shares", NULL) == (double)sh &&
            metric(&m, "bitween_addresses", NULL) == (double)ad &&
            metric(&m, "bitween_distinct_hashes", NULL) == (double)dh)
            break;
        metrics_free(&m);
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_api: registry gauges never matched %lld/%lld/%lld/%lld/%lld\n",
                    users, res, sh, ad, dh);
            fail();
        }
        xclient_pump(g->ctx, 100);
    }
    assert_int_equal((int)metric(&m, "bitween_users", NULL), 7); /* alice, bob, u1..u5 */
    assert_int_equal((int)metric(&m, "bitween_resources", NULL), 8);
    assert_int_equal((int)metric(&m, "bitween_shares", NULL), 4 + 5 + N_REPORTS);
    assert_int_equal((int)metric(&m, "bitween_distinct_hashes", NULL), 3 + 4 + N_REPORTS);

    for (i = 0; i < sizeof families / sizeof families[0]; i++) {
        const char *type = family_type(&m, families[i].name);
        if (!type || strcmp(type, families[i].type) != 0) {
            fprintf(stderr, "test_api: metrics: %s is %s, expected %s\n", families[i].name,
                    type ? type : "missing", families[i].type);
            fail();
        }
    }
    for (i = 0; i < 4; i++)
        assert_false(isnan(metric(&m, "bitween_publishes_total", "outcome", outcomes[i], NULL)));
    assert_true(metric(&m, "bitween_publishes_total", "outcome", "ok", NULL) >= 1);
    assert_false(isnan(metric(&m, "bitween_agent_requests_total", "outcome", "refused", NULL)));
    assert_true(metric(&m, "bitween_agent_requests_total", "outcome", "ok", NULL) >= 8);
    assert_false(isnan(metric(&m, "bitween_agent_requests_refused_total", "kind", "conflict",
                              "type", "cancel", NULL)));
    assert_false(isnan(metric(&m, "bitween_publish_errors_total", "kind", "temporary", NULL)));
    assert_false(isnan(metric(&m, "bitween_publish_errors_total", "kind", "permanent", NULL)));
    assert_true(metric(&m, "bitween_xmpp_up", NULL) == 1);
    assert_true(metric(&m, "bitween_xmpp_publish_allowed", NULL) == 1);
    assert_true(metric(&m, "bitween_database_up", NULL) == 1);
    assert_true(metric(&m, "bitween_xmpp_connects_total", NULL) >= 1);
    assert_true(metric(&m, "bitween_api_responses_total", "code", "200", NULL) >= 3);
    assert_false(isnan(metric(&m, "bitween_api_responses_total", "code", "other", NULL)));
    assert_false(isnan(metric(&m, "bitween_build_info", "version", g->version, NULL)));
    assert_true(metric(&m, "bitween_start_time_seconds", NULL) > 1.6e9);
    /* Histograms: per route, cumulative buckets ending at +Inf = _count. */
    {
        static const char *const routes[] = {
            "/healthz", "/readyz", "/metrics", "/api/v1/users", "/api/v1/shares/{hash}",
            "unmatched"};
        for (i = 0; i < sizeof routes / sizeof routes[0]; i++) {
            size_t k, nb = 0;
            double prev = 0, inf = NAN,
                   count = metric(&m, "bitween_api_request_duration_seconds_count", "route",
                                  routes[i], NULL);
            assert_false(isnan(count));
            assert_false(isnan(
                metric(&m, "bitween_api_request_duration_seconds_sum", "route", routes[i], NULL)));
            for (k = 0; k < m.n; k++) {
                if (strcmp(m.s[k].name, "bitween_api_request_duration_seconds_bucket") != 0 ||
                    !has_label(m.s[k].labels, "route", routes[i]))
                    continue;
                assert_non_null(strstr(m.s[k].labels, "method=\""));
                assert_true(m.s[k].value >= prev);
                prev = m.s[k].value;
                nb++;
                if (has_label(m.s[k].labels, "le", "+Inf"))
                    inf = m.s[k].value;
            }
            assert_true(nb >= 2);
            assert_true(inf == count);
        }
        /* the /healthz and /readyz requests above are counted */
        assert_true(metric(&m, "bitween_api_request_duration_seconds_count", "route", "/healthz",
                           NULL) >= 1);
    }
    metrics_free(&m);

    /* Latency histograms move: five more /healthz requests are counted
     * (after each response is sent: poll). */
    before = scrape(g, "bitween_api_request_duration_seconds_count", "route", "/healthz");
    for (i = 0; i < 5; i++) {
        http(g, "GET", "/healthz", NULL, &r);
        assert_int_equal(r.status, 200);
        resp_clear(&r);
    }
    end = hx_now_ms() + WAIT;
    while (scrape(g, "bitween_api_request_duration_seconds_count", "route", "/healthz") <
           before + 5) {
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 20);
    }
    g->passed = 1;
}

/* Every registered user exactly once, across pages of 3, in the
 * database's order, with their counts. */
static void test_users_pages(void **state)
{
    g_t *g = *state;
    PGresult *want = db_query(
        g, "SELECT u.jid, count(DISTINCT r.id), count(s.hash) FROM users u"
           " JOIN resources r ON r.user_id = u.id LEFT JOIN shares s ON s.resource_id = r.id"
           " GROUP BY u.jid ORDER BY u.jid");
    int n_want = PQntuples(want), seen = 0, pages = 0;
    char path[4096];
    const char *cursor = NULL;
    json_t *page = NULL;

    assert_int_equal(n_want, 7);
    for (;;) {
        json_t *users, *next, *u;
        size_t i;
        if (cursor)
            snprintf(path, sizeof path, "/api/v1/users?limit=3&cursor=%s", cursor);
        else
            snprintf(path, sizeof path, "/api/v1/users?limit=3");
        {
            json_t *p = get_json(g, path, 200);
            json_decref(page);
            page = p;
        }
        pages++;
        assert_true(pages <= 10); /* bounded: a cursor loop cannot spin */
        users = json_object_get(page, "users");
        next = json_object_get(page, "next_cursor");
        assert_true(json_is_array(users));
        assert_true(json_array_size(users) <= 3);
        json_array_foreach(users, i, u)
        {
            assert_true(seen < n_want);
            assert_string_equal(js(u, "jid"), PQgetvalue(want, seen, 0));
            assert_int_equal(json_integer_value(json_object_get(u, "resources")),
                             atoll(PQgetvalue(want, seen, 1)));
            assert_int_equal(json_integer_value(json_object_get(u, "shares")),
                             atoll(PQgetvalue(want, seen, 2)));
            seen++;
        }
        if (json_is_null(next)) {
            assert_true(json_array_size(users) > 0 || pages == 1);
            break;
        }
        assert_true(json_is_string(next));
        assert_int_equal(json_array_size(users), 3);
        cursor = json_string_value(next);
    }
    assert_int_equal(seen, n_want);
    assert_int_equal(pages, 3);
    json_decref(page);
    PQclear(want);

    /* One page holding everything: no cursor. */
    page = get_json(g, "/api/v1/users?limit=1000", 200);
    assert_int_equal(json_array_size(json_object_get(page, "users")), 7);
    assert_true(json_is_null(json_object_get(page, "next_cursor")));
    json_decref(page);
    page = get_json(g, "/api/v1/users", 200); /* default limit */
    assert_int_equal(json_array_size(json_object_get(page, "users")), 7);
    json_decref(page);
    g->passed = 1;
}

static json_t *find_by(json_t *arr, const char *key, const char *value)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v)
    {
        const char *s = json_string_value(json_object_get(v, key));
        if (s && strcmp(s, value) == 0)
            return v;
    }
    return NULL;
}

/* Whether `addrs` is exactly the (address, port) pairs given. */
static void check_addresses(json_t *addrs, size_t n, const char *const *a, const int *ports)
{
    size_t i, k;
    json_t *v;
    assert_true(json_is_array(addrs));
    assert_int_equal(json_array_size(addrs), n);
    for (k = 0; k < n; k++) {
        int found = 0;
        json_array_foreach(addrs, i, v) found |=
            strcmp(js(v, "address"), a[k]) == 0 &&
            json_integer_value(json_object_get(v, "port")) == ports[k];
        if (!found)
            fprintf(stderr, "test_api: address %s port %d missing\n", a[k], ports[k]);
        assert_true(found);
    }
}

static void check_share(json_t *shares, const char *hash, const char *name, long long size)
{
    json_t *s = find_by(shares, "hash", hash);
    if (!s)
        fprintf(stderr, "test_api: share %s missing\n", hash);
    assert_non_null(s);
    assert_string_equal(js(s, "name"), name);
    assert_int_equal(json_integer_value(json_object_get(s, "size")), size);
}

/* One user: resources, seq, addresses (canonical), shares, the last
 * publish record; the JID in any case and percent-encoded. */
static void test_user_one(void **state)
{
    g_t *g = *state;
    char path[512], digest[SHARES_DIGEST_HEX], *upper;
    json_t *v = NULL, *res, *r, *lp;
    long long end = hx_now_ms() + WAIT;
    size_t i;

    /* The publish record is written after the server's answer: poll. */
    assert_int_equal(hx_db_digest(g->db, g->alice, digest), 0);
    snprintf(path, sizeof path, "/api/v1/users/%s", g->alice);
    for (;;) {
        v = get_json(g, path, 200);
        lp = json_object_get(v, "last_publish");
        if (json_is_object(lp) && strcmp(js(lp, "digest"), digest) == 0)
            break;
        json_decref(v);
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    assert_string_equal(js(lp, "status"), "ok");
    assert_true(json_is_null(json_object_get(lp, "error")));
    assert_non_null(strchr(js(lp, "published_at"), 'T'));
    assert_string_equal(js(v, "jid"), g->alice);
    res = json_object_get(v, "resources");
    assert_int_equal(json_array_size(res), 2);

    r = find_by(res, "resource", "laptop");
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "seq")), 5);
    assert_non_null(strchr(js(r, "registered_at"), 'T'));
    assert_non_null(strchr(js(r, "last_seen"), 'T'));
    {
        const char *a[] = {"203.0.113.7", "2001:db8::7"};
        const int p[] = {6881, 6881};
        check_addresses(json_object_get(r, "addresses"), 2, a, p);
    }
    assert_int_equal(json_array_size(json_object_get(r, "shares")), 2);
    check_share(json_object_get(r, "shares"), g->h_holiday, "holiday.mkv", 734003200LL);
    check_share(json_object_get(r, "shares"), g->h_common, "Common Movie.mkv", 4242);

    r = find_by(res, "resource", "desk/top");
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "seq")), 9);
    {
        const char *a[] = {"198.51.100.2"};
        const int p[] = {6882};
        check_addresses(json_object_get(r, "addresses"), 1, a, p);
    }
    assert_int_equal(json_array_size(json_object_get(r, "shares")), 2);
    check_share(json_object_get(r, "shares"), g->h_common, "Common Movie.mkv", 4242);
    check_share(json_object_get(r, "shares"), g->h_notes, "Notes.TXT", 7);
    json_decref(v);

    /* Upper case and %40: the same user. */
    upper = strdup(g->alice);
    assert_non_null(upper);
    for (i = 0; upper[i]; i++)
        upper[i] = (char)toupper((unsigned char)upper[i]);
    snprintf(path, sizeof path, "/api/v1/users/%s", upper);
    free(upper);
    v = get_json(g, path, 200);
    assert_string_equal(js(v, "jid"), g->alice);
    assert_int_equal(json_array_size(json_object_get(v, "resources")), 2);
    json_decref(v);
    snprintf(path, sizeof path, "/api/v1/users/alice%%40%s", g->domain);
    v = get_json(g, path, 200);
    assert_string_equal(js(v, "jid"), g->alice);
    json_decref(v);

    /* A user of u1..u5. */
    snprintf(path, sizeof path, "/api/v1/users/%s", g->u[2]);
    v = get_json(g, path, 200);
    res = json_object_get(v, "resources");
    assert_int_equal(json_array_size(res), 1);
    r = json_array_get(res, 0);
    assert_string_equal(js(r, "resource"), "box");
    check_share(json_object_get(r, "shares"), g->h_report[2], "Report-3.PDF", 300);
    json_decref(v);

    /* Accounts without a registration: 404. */
    snprintf(path, sizeof path, "/api/v1/users/%s", g->carol);
    expect_error(g, "GET", path, g->auth, 404, "user_not_found");
    snprintf(path, sizeof path, "/api/v1/users/nobody@%s", g->domain);
    expect_error(g, "GET", path, g->auth, 404, "user_not_found");
    g->passed = 1;
}

/* shares/{hash}: every holder with its addresses, two resources of one
 * user included; any case in, lower case out; limit and truncation; a
 * hash nobody shares is an empty list; a v2 (64 hex) hash. */
static void test_share_holders(void **state)
{
    g_t *g = *state;
    char path[512], upper[41], unknown[41];
    json_t *v, *holders, *h;
    size_t i;

    for (i = 0; i < 40; i++)
        upper[i] = (char)toupper((unsigned char)g->h_common[i]);
    upper[40] = '\0';
    snprintf(path, sizeof path, "/api/v1/shares/%s", upper);
    v = get_json(g, path, 200);
    assert_string_equal(js(v, "hash"), g->h_common);
    assert_true(json_is_false(json_object_get(v, "truncated")));
    holders = json_object_get(v, "holders");
    assert_int_equal(json_array_size(holders), 3);
    /* ordered by user, then resource */
    {
        const char *want[3][2] = {{g->alice, "desk/top"}, {g->alice, "laptop"}, {g->bob, "phone"}};
        json_array_foreach(holders, i, h)
        {
            assert_string_equal(js(h, "jid"), want[i][0]);
            assert_string_equal(js(h, "resource"), want[i][1]);
            assert_string_equal(js(h, "name"), "Common Movie.mkv");
            assert_int_equal(json_integer_value(json_object_get(h, "size")), 4242);
        }
    }
    {
        const char *a0[] = {"198.51.100.2"}, *a1[] = {"203.0.113.7", "2001:db8::7"},
                   *a2[] = {"192.0.2.200"};
        const int p0[] = {6882}, p1[] = {6881, 6881}, p2[] = {51413};
        check_addresses(json_object_get(json_array_get(holders, 0), "addresses"), 1, a0, p0);
        check_addresses(json_object_get(json_array_get(holders, 1), "addresses"), 2, a1, p1);
        check_addresses(json_object_get(json_array_get(holders, 2), "addresses"), 1, a2, p2);
    }
    json_decref(v);

    snprintf(path, sizeof path, "/api/v1/shares/%s?limit=2", g->h_common);
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "holders")), 2);
    assert_true(json_is_true(json_object_get(v, "truncated")));
    json_decref(v);
    snprintf(path, sizeof path, "/api/v1/shares/%s?limit=3", g->h_common);
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "holders")), 3);
    assert_true(json_is_false(json_object_get(v, "truncated")));
    json_decref(v);

    /* One holder. */
    snprintf(path, sizeof path, "/api/v1/shares/%s", g->h_report[0]);
    v = get_json(g, path, 200);
    holders = json_object_get(v, "holders");
    assert_int_equal(json_array_size(holders), 1);
    assert_string_equal(js(json_array_get(holders, 0), "jid"), g->u[0]);
    json_decref(v);

    /* v2 hash. */
    snprintf(path, sizeof path, "/api/v1/shares/%s", g->h_v2);
    v = get_json(g, path, 200);
    assert_string_equal(js(v, "hash"), g->h_v2);
    holders = json_object_get(v, "holders");
    assert_int_equal(json_array_size(holders), 1);
    assert_string_equal(js(json_array_get(holders, 0), "name"), "Bj\xc3\xb6rk - album.flac");
    json_decref(v);

    /* Nobody shares it: 200, empty. */
    hx_hash(unknown, "nobody shares this");
    snprintf(path, sizeof path, "/api/v1/shares/%s", unknown);
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "holders")), 0);
    assert_true(json_is_false(json_object_get(v, "truncated")));
    json_decref(v);
    g->passed = 1;
}

/* One search, every page followed; returns the names in order (caller
 * frees each and the array) and the number of pages. */
static char **search_all(g_t *g, const char *q, int limit, size_t *n_out, int *pages_out)
{
    char *eq = esc(g, q), path[4096], **names = NULL;
    const char *cursor = NULL;
    json_t *page = NULL;
    size_t n = 0;
    int pages = 0;

    for (;;) {
        json_t *results, *next, *p, *r;
        size_t i;
        if (cursor)
            snprintf(path, sizeof path, "/api/v1/search?q=%s&limit=%d&cursor=%s", eq, limit,
                     cursor);
        else
            snprintf(path, sizeof path, "/api/v1/search?q=%s&limit=%d", eq, limit);
        p = get_json(g, path, 200);
        json_decref(page);
        page = p;
        pages++;
        assert_true(pages <= 20);
        assert_string_equal(js(page, "query"), q);
        results = json_object_get(page, "results");
        next = json_object_get(page, "next_cursor");
        assert_true(json_array_size(results) <= (size_t)limit);
        json_array_foreach(results, i, r)
        {
            char **nn = realloc(names, (n + 1) * sizeof *nn);
            assert_non_null(nn);
            names = nn;
            names[n] = strdup(js(r, "name"));
            assert_non_null(names[n]);
            n++;
        }
        if (json_is_null(next))
            break;
        assert_int_equal(json_array_size(results), limit);
        cursor = json_string_value(next);
        assert_non_null(cursor);
    }
    json_decref(page);
    free(eq);
    *n_out = n;
    *pages_out = pages;
    return names;
}

static void free_names(char **names, size_t n)
{
    size_t i;
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
}

/* Search: case-insensitive substring, in the database's name order, each
 * hit once across pages; LIKE wildcards literal; hit fields. */
static void test_search(void **state)
{
    g_t *g = *state;
    PGresult *want = db_query(g, "SELECT name FROM shares WHERE lower(name) LIKE '%report%'"
                                 " ORDER BY name");
    size_t n, i, n2;
    int pages, pages2;
    char **names = search_all(g, "report", 2, &n, &pages), **names2;
    json_t *v, *res, *hit;
    char path[512];

    assert_int_equal(PQntuples(want), N_REPORTS + 1);
    assert_int_equal(n, (size_t)PQntuples(want));
    for (i = 0; i < n; i++)
        assert_string_equal(names[i], PQgetvalue(want, (int)i, 0));
    assert_int_equal(pages, 3);
    PQclear(want);
    /* Another case, another page size: the same hits. */
    names2 = search_all(g, "rEpOrT", 4, &n2, &pages2);
    assert_int_equal(n2, n);
    for (i = 0; i < n; i++)
        assert_string_equal(names2[i], names[i]);
    assert_int_equal(pages2, 2);
    free_names(names, n);
    free_names(names2, n2);

    /* % and _ are literal: "0%_" is only in "100%_done.txt". */
    names = search_all(g, "0%_", 10, &n, &pages);
    assert_int_equal(n, 1);
    assert_string_equal(names[0], "100%_done.txt");
    free_names(names, n);
    /* UTF-8 needle. */
    names = search_all(g, "j\xc3\xb6rk", 10, &n, &pages);
    assert_int_equal(n, 1);
    free_names(names, n);
    /* No hit. */
    names = search_all(g, "zzqqxx", 10, &n, &pages);
    assert_int_equal(n, 0);
    assert_int_equal(pages, 1);
    free_names(names, n);

    /* The fields of one hit. */
    v = get_json(g, "/api/v1/search?q=report-3", 200);
    res = json_object_get(v, "results");
    assert_int_equal(json_array_size(res), 1);
    hit = json_array_get(res, 0);
    assert_string_equal(js(hit, "jid"), g->u[2]);
    assert_string_equal(js(hit, "resource"), "box");
    assert_string_equal(js(hit, "hash"), g->h_report[2]);
    assert_string_equal(js(hit, "name"), "Report-3.PDF");
    assert_int_equal(json_integer_value(json_object_get(hit, "size")), 300);
    {
        const char *a[] = {"192.0.2.3"};
        const int p[] = {6881};
        check_addresses(json_object_get(hit, "addresses"), 1, a, p);
    }
    json_decref(v);

    /* Common Movie.mkv: three holders, three hits. */
    snprintf(path, sizeof path, "/api/v1/search?q=common%%20movie");
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "results")), 3);
    json_decref(v);
    g->passed = 1;
}

/* Stats: counts equal to the database's (cache refreshed every second),
 * counters and state consistent with /metrics. */
static void test_stats(void **state)
{
    g_t *g = *state;
    long long end = hx_now_ms() + WAIT;
    json_t *v = NULL, *reg, *ar;
    long long users = db_scalar(g, "SELECT count(DISTINCT user_id) FROM resources");
    long long res = db_scalar(g, "SELECT count(*) FROM resources");
    long long sh = db_scalar(g, "SELECT count(*) FROM shares");
    long long ad = db_scalar(g, "SELECT count(*) FROM addresses");
    long long dh = db_scalar(g, "SELECT count(DISTINCT hash) FROM shares");
    double ok;

    for (;;) {
        v = get_json(g, "/api/v1/stats", 200);
        reg = json_object_get(v, "registry");
        if (json_is_object(reg) && json_integer_value(json_object_get(reg, "users")) == users &&
            json_integer_value(json_object_get(reg, "resources")) == res &&
            json_integer_value(json_object_get(reg, "shares")) == sh &&
            json_integer_value(json_object_get(reg, "addresses")) == ad &&
            json_integer_value(json_object_get(reg, "distinct_hashes")) == dh)
            break;
        json_decref(v);
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 100);
    }
    assert_string_equal(js(v, "version"), g->version);
    assert_true(json_is_integer(json_object_get(v, "uptime_seconds")));
    assert_true(json_integer_value(json_object_get(v, "uptime_seconds")) >= 0);
    assert_non_null(strchr(js(reg, "as_of"), 'T'));
    assert_true(json_is_number(json_object_get(reg, "age_seconds")));
    assert_true(json_is_true(json_object_get(json_object_get(v, "database"), "up")));
    assert_true(
        json_is_integer(json_object_get(json_object_get(v, "database"), "unavailable_events")));
    ar = json_object_get(v, "agent_requests");
    assert_true(json_integer_value(json_object_get(ar, "ok")) >= 8);
    assert_true(json_integer_value(json_object_get(ar, "received")) >=
                json_integer_value(json_object_get(ar, "ok")) +
                    json_integer_value(json_object_get(ar, "refused")));
    assert_non_null(find_by(json_object_get(ar, "refused_by_kind"), "condition", "conflict"));
    assert_true(json_is_true(json_object_get(json_object_get(v, "xmpp"), "connected")));
    assert_true(json_is_true(json_object_get(json_object_get(v, "xmpp"), "publish_allowed")));
    assert_true(json_integer_value(json_object_get(json_object_get(v, "xmpp"), "connects")) >= 1);
    assert_true(json_is_integer(json_object_get(v, "removals")));
    /* the same counter as /metrics (nothing publishes meanwhile) */
    ok = scrape(g, "bitween_publishes_total", "outcome", "ok");
    assert_true(ok >= 1);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(v, "publishes"), "ok")),
                     (long long)ok);
    json_decref(v);
    g->passed = 1;
}

/* /metrics counters move by exactly what agents do: two accepted
 * registrations and one refused (stale seq). */
static void test_metrics_count_registrations(void **state)
{
    g_t *g = *state;
    metrics_t a, b;
    hx_buf_t s = {0};
    long long end;
    char h[41];

    metrics_get(g, &a);
    hx_hash(h, "mallory-1");
    hx_share_el(&s, h, "mallory one.bin", 1);
    agent_request(g, g->mdev, "register", 10, s.s, "result");
    hx_hash(h, "mallory-2");
    hx_share_el(&s, h, "mallory two.bin", 2);
    agent_request(g, g->mdev, "register", 11, s.s, "result");
    agent_request(g, g->mdev, "register", 3, s.s, "error"); /* older seq: conflict */
    free(s.s);
    metrics_get(g, &b);
#define DELTA(name, ...) (metric(&b, name, __VA_ARGS__) - metric(&a, name, __VA_ARGS__))
    assert_true(DELTA("bitween_agent_requests_received_total", NULL) == 3);
    assert_true(DELTA("bitween_agent_requests_total", "outcome", "ok", NULL) == 2);
    assert_true(DELTA("bitween_agent_requests_total", "outcome", "refused", NULL) == 1);
    assert_true(DELTA("bitween_agent_requests_refused_total", "kind", "conflict", "type", "cancel",
                      NULL) == 1);
    assert_true(DELTA("bitween_agent_requests_refused_total", "kind", "bad-request", "type",
                      "modify", NULL) == 0);
    /* All three reached the registry (the stale one was refused there):
     * each is timed once, in whole and in the database. */
    assert_true(DELTA("bitween_agent_request_duration_seconds_count", NULL) == 3);
    assert_true(DELTA("bitween_agent_request_duration_seconds_bucket", "le", "+Inf", NULL) == 3);
    assert_true(DELTA("bitween_agent_request_duration_seconds_sum", NULL) > 0);
    assert_true(DELTA("bitween_agent_request_database_seconds_count", NULL) == 3);
    assert_true(DELTA("bitween_agent_request_database_seconds_sum", NULL) <=
                DELTA("bitween_agent_request_duration_seconds_sum", NULL));
#undef DELTA
    /* The user is published (one or two items: the second state may
     * replace the first before it goes out), and the cached gauges
     * follow. */
    wait_published(g, g->mallory);
    {
        double d = scrape(g, "bitween_publishes_total", "outcome", "ok") -
                   metric(&a, "bitween_publishes_total", "outcome", "ok", NULL);
        assert_true(d >= 1 && d <= 2);
        /* every answered publish is timed */
        assert_true(scrape(g, "bitween_publish_duration_seconds_count", NULL, NULL) -
                        metric(&a, "bitween_publish_duration_seconds_count", NULL) ==
                    d);
    }
    end = hx_now_ms() + WAIT;
    while (scrape(g, "bitween_users", NULL, NULL) != 8) {
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    metrics_free(&a);
    metrics_free(&b);
    assert_int_equal(hx_db_seq(g->db, g->mallory, "dev"), 11);
    g->passed = 1;
}

/* Wait until the component has had `n` more publishes acknowledged than
 * `base`, then make sure the contact has received everything the server
 * sent it until now. */
static void wait_publishes(g_t *g, double base, double n)
{
    long long end = hx_now_ms() + WAIT;
    double now;
    while ((now = scrape(g, "bitween_publishes_total", "outcome", "ok")) < base + n) {
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 20);
    }
    assert_true(now == base + n);
    server_ping(g, g->watch);
}

/* Evict: 200, the resource leaves the database, and the contact gets the
 * new item without it (one broadcast); 404 for an unknown resource; then
 * republish: 200, and the contact gets the item once more. */
static void test_evict_and_republish(void **state)
{
    g_t *g = *state;
    char path[512];
    json_t *v;
    unsigned ev0, raw0, ev1, raw1;
    double ok0, fail0;
    const char *must[] = {"resource=\"laptop\"", g->h_holiday, NULL};
    const char *must_not[] = {"resource=\"desk/top\"", g->h_notes, "198.51.100.2", NULL};

    assert_int_equal(hx_db_resources(g->db, g->alice), 2);
    ev0 = xclient_item_events(g->watch, g->alice);
    raw0 = xclient_items(g->watch, g->alice);
    ok0 = scrape(g, "bitween_publishes_total", "outcome", "ok");

    snprintf(path, sizeof path, "/api/v1/users/%s/resources/desk%%2Ftop", g->alice);
    v = call_json(g, "DELETE", path, 200);
    assert_true(json_is_true(json_object_get(v, "evicted")));
    assert_true(json_is_true(json_object_get(v, "published")));
    assert_true(json_is_string(json_object_get(v, "message")));
    json_decref(v);
    /* Done before the answer: gone from the database. */
    assert_int_equal(hx_db_seq(g->db, g->alice, "desk/top"), -1);
    assert_int_equal(hx_db_resources(g->db, g->alice), 1);
    assert_int_equal(hx_db_shares(g->db, g->alice, NULL), 2);
    wait_view(g, g->alice, must, must_not);
    wait_publishes(g, ok0, 1);
    ev1 = xclient_item_events(g->watch, g->alice);
    raw1 = xclient_items(g->watch, g->alice);
    assert_int_equal(ev1, ev0 + 1);
    assert_true(raw1 - raw0 >= 1 && raw1 - raw0 <= 2); /* Prosody may send a copy */
    /* The API agrees. */
    snprintf(path, sizeof path, "/api/v1/users/%s", g->alice);
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "resources")), 1);
    json_decref(v);
    snprintf(path, sizeof path, "/api/v1/shares/%s", g->h_common);
    v = get_json(g, path, 200);
    assert_int_equal(json_array_size(json_object_get(v, "holders")), 2);
    assert_null(find_by(json_object_get(v, "holders"), "resource", "desk/top"));
    json_decref(v);

    /* Not (or no longer) registered: 404, and nothing published: no
     * empty item for a user who does not use bitween (carol is a real
     * account), no PEP node made by a typing error. */
    ok0 = scrape(g, "bitween_publishes_total", "outcome", "ok");
    fail0 = scrape(g, "bitween_publishes_total", "outcome", "failed");
    snprintf(path, sizeof path, "/api/v1/users/%s/resources/desk%%2Ftop", g->alice);
    expect_error(g, "DELETE", path, g->auth, 404, "resource_not_found");
    snprintf(path, sizeof path, "/api/v1/users/%s/resources/tablet", g->alice);
    expect_error(g, "DELETE", path, g->auth, 404, "resource_not_found");
    snprintf(path, sizeof path, "/api/v1/users/%s/resources/watch", g->carol);
    expect_error(g, "DELETE", path, g->auth, 404, "resource_not_found");
    snprintf(path, sizeof path, "/api/v1/users/nobody@%s/resources/x", g->domain);
    expect_error(g, "DELETE", path, g->auth, 404, "resource_not_found");
    assert_int_equal(hx_db_resources(g->db, g->alice), 1);

    /* Republish: the unchanged item goes out once more (and it is the
     * only publish since the 404s above). */
    ev0 = xclient_item_events(g->watch, g->alice);
    raw0 = xclient_items(g->watch, g->alice);
    snprintf(path, sizeof path, "/api/v1/users/%s/republish", g->alice);
    v = call_json(g, "POST", path, 200);
    assert_true(json_is_true(json_object_get(v, "republished")));
    assert_true(json_is_true(json_object_get(v, "published")));
    json_decref(v);
    wait_publishes(g, ok0, 1);
    ev1 = xclient_item_events(g->watch, g->alice);
    raw1 = xclient_items(g->watch, g->alice);
    if (ev1 != ev0 + 1)
        fprintf(stderr, "test_api: republish: %u broadcasts, expected 1\n", ev1 - ev0);
    assert_int_equal(ev1, ev0 + 1);
    assert_true(raw1 - raw0 >= 1 && raw1 - raw0 <= 2);
    wait_view(g, g->alice, must, must_not);
    assert_true(scrape(g, "bitween_publishes_total", "outcome", "failed") == fail0);
    {
        char hex[SHARES_DIGEST_HEX];
        assert_int_equal(hx_db_published_digest(g->db, g->carol, hex), -1);
    }

    /* A user the registry never saw: 404, no PEP node made. */
    snprintf(path, sizeof path, "/api/v1/users/%s/republish", g->carol);
    expect_error(g, "POST", path, g->auth, 404, "user_not_found");
    g->passed = 1;
}

/* A forced republish re-reads the database: a share deleted by hand
 * (behind the component, whose cache still holds it) leaves the item, and
 * the agent's next update builds on the stored state, not the cached one. */
static void test_republish_rereads_the_database(void **state)
{
    g_t *g = *state;
    char path[512], *sql;
    hx_buf_t b = {0};
    resp_t r;
    PGresult *res;
    double hits, misses;
    const char *gone[] = {g->h_holiday, NULL};
    const char *added[] = {g->h_notes, g->h_common, NULL};

    assert_int_equal(hx_db_shares(g->db, g->alice, NULL), 2);
    sql = hx_strdupf("DELETE FROM shares WHERE hash = decode('%s', 'hex') AND resource_id = "
                     "(SELECT r.id FROM resources r JOIN users u ON u.id = r.user_id "
                     "WHERE u.jid = '%s' AND r.resource = 'laptop')",
                     g->h_holiday, g->alice);
    res = PQexec(g->db, sql);
    free(sql);
    assert_int_equal(PQresultStatus(res), PGRES_COMMAND_OK);
    assert_string_equal(PQcmdTuples(res), "1");
    PQclear(res);

    snprintf(path, sizeof path, "/api/v1/users/%s/republish", g->alice);
    http(g, "POST", path, g->auth, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    wait_view(g, g->alice, NULL, gone);

    /* the republish left the state it read in the cache: the update finds it there */
    hits = scrape(g, "bitween_state_cache_lookups_total", "result", "hit");
    misses = scrape(g, "bitween_state_cache_lookups_total", "result", "miss");
    hx_share_el(&b, g->h_notes, "Notes.TXT", 7);
    agent_request(g, g->laptop, "add", 6, b.s, "result");
    free(b.s);
    wait_view(g, g->alice, added, gone);
    assert_int_equal(hx_db_shares(g->db, g->alice, NULL), 2);
    assert_true(scrape(g, "bitween_state_cache_lookups_total", "result", "hit") == hits + 1);
    assert_true(scrape(g, "bitween_state_cache_lookups_total", "result", "miss") == misses);
    g->passed = 1;
}

/* Token failures on every /api/v1 route: 401 JSON + WWW-Authenticate, and
 * nothing done; probes need none. */
static void test_auth(void **state)
{
    g_t *g = *state;
    char paths[8][512], extra[160], prefix[160], inner[160];
    const char *methods[8];
    const char *bad[8];
    size_t np = 0, nb = 0, i, k;
    resp_t r;

    methods[np] = "GET";
    snprintf(paths[np++], 512, "/api/v1/users");
    methods[np] = "GET";
    snprintf(paths[np++], 512, "/api/v1/users/%s", g->alice);
    methods[np] = "DELETE";
    snprintf(paths[np++], 512, "/api/v1/users/%s/resources/laptop", g->alice);
    methods[np] = "POST";
    snprintf(paths[np++], 512, "/api/v1/users/%s/republish", g->alice);
    methods[np] = "GET";
    snprintf(paths[np++], 512, "/api/v1/shares/%s", g->h_common);
    methods[np] = "GET";
    snprintf(paths[np++], 512, "/api/v1/search?q=report");
    methods[np] = "GET";
    snprintf(paths[np++], 512, "/api/v1/stats");

    snprintf(extra, sizeof extra, "Bearer %sx", TOKEN);
    snprintf(prefix, sizeof prefix, "Bearer x%s", TOKEN);
    snprintf(inner, sizeof inner, "Bearer %s extra", TOKEN);
    bad[nb++] = NULL; /* no header */
    bad[nb++] = "Basic dXNlcjpwYXNz";
    bad[nb++] = "Bearer wrong-token";
    bad[nb++] = extra;
    bad[nb++] = prefix;
    bad[nb++] = inner;
    bad[nb++] = TOKEN; /* no scheme */
    bad[nb++] = "Bearer";

    for (i = 0; i < np; i++) {
        for (k = 0; k < nb; k++) {
            char what[700];
            snprintf(what, sizeof what, "%.16s %.300s with \"%.300s\"", methods[i], paths[i],
                     bad[k] ? bad[k] : "(none)");
            http(g, methods[i], paths[i], bad[k], &r);
            check_error(&r, 401, "unauthorized", what);
            if (!r.have_www || strncmp(r.www, "Bearer", 6) != 0) {
                fprintf(stderr, "test_api: %s: WWW-Authenticate \"%s\"\n", what, r.www);
                fail();
            }
            resp_clear(&r);
        }
    }
    /* The refused evict did nothing. */
    assert_true(hx_db_seq(g->db, g->alice, "laptop") == 5);
    /* The scheme is case-insensitive. */
    {
        char lower[160];
        snprintf(lower, sizeof lower, "bearer %s", TOKEN);
        http(g, "GET", "/api/v1/stats", lower, &r);
        assert_int_equal(r.status, 200);
        resp_clear(&r);
    }
    /* Probes take no token, and ignore a wrong one. */
    {
        const char *probes[] = {"/healthz", "/readyz", "/metrics"};
        for (i = 0; i < 3; i++) {
            http(g, "GET", probes[i], NULL, &r);
            assert_int_equal(r.status, 200);
            assert_false(r.have_www);
            resp_clear(&r);
            http(g, "GET", probes[i], "Bearer wrong-token", &r);
            assert_int_equal(r.status, 200);
            resp_clear(&r);
        }
    }
    g->passed = 1;
}

/* Whether `text` holds a whole HTTP response with a Content-Length. */
static int response_complete(const char *text)
{
    const char *eoh = strstr(text, "\r\n\r\n"),
               *cl = strstr(text, "\r\nContent-Length:"); /* as MHD spells it */
    if (!eoh || !cl || cl > eoh)
        return 0;
    return strlen(eoh + 4) >= (size_t)strtoul(cl + 17, NULL, 10);
}

/* Raw HTTP: send `len` bytes of `req` and read the answer until the
 * server closes or `ms` pass; returns what was read (caller frees). */
static char *raw_exchange_n(g_t *g, const char *req, size_t len, int ms)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    long long end = hx_now_ms() + ms;
    hx_buf_t b = {0};
    size_t off = 0;

    assert_true(fd >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)g->port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    while (off < len) {
        ssize_t w = send(fd, req + off, len - off, MSG_NOSIGNAL);
        assert_true(w > 0);
        off += (size_t)w;
    }
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        long long left = end - hx_now_ms();
        char chunk[4096];
        ssize_t n;
        if (left <= 0)
            break;
        if (poll(&p, 1, (int)left) <= 0)
            continue;
        n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            break; /* closed */
        hx_buf_printf(&b, "%.*s", (int)n, chunk);
        if (response_complete(b.s))
            break;
    }
    close(fd);
    return b.s ? b.s : strdup("");
}

static char *raw_exchange(g_t *g, const char *req, int ms)
{
    return raw_exchange_n(g, req, strlen(req), ms);
}

/* Every class of bad input gets its status and the error shape; the
 * process survives all of them. */
static void test_bad_input(void **state)
{
    g_t *g = *state;
    const char *A = g->auth, *d = g->domain;
    char p[4096], long_jid[2200], q256[300], q255[300], *big, *raw, *ucur = NULL, *scur = NULL;
    resp_t r;
    json_t *v;
    size_t i;

    /* JIDs */
    expect_error(g, "GET", "/api/v1/users/alice", A, 400, "bad_jid");
    expect_error(g, "GET", "/api/v1/users/a@b@c", A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/@%s", d);
    expect_error(g, "GET", p, A, 400, "bad_jid");
    expect_error(g, "GET", "/api/v1/users/alice@", A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/al%%20ice@%s", d);
    expect_error(g, "GET", p, A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/alice%%2Fx@%s", d);
    expect_error(g, "GET", p, A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/%%C3%%28@%s", d); /* not UTF-8 */
    expect_error(g, "GET", p, A, 400, "bad_jid");
    memset(long_jid, 'a', 2100);
    long_jid[2100] = '\0';
    snprintf(p, sizeof p, "/api/v1/users/%s@%s", long_jid, d);
    expect_error(g, "GET", p, A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/al%%00ice@%s", d); /* escaped NUL */
    expect_error(g, "GET", p, A, 400, "bad_path");
    snprintf(p, sizeof p, "/api/v1/users/al%%zzice@%s", d);
    expect_error(g, "GET", p, A, 400, "bad_path");
    expect_error(g, "DELETE", "/api/v1/users/alice/resources/laptop", A, 400, "bad_jid");
    expect_error(g, "POST", "/api/v1/users/alice/republish", A, 400, "bad_jid");
    snprintf(p, sizeof p, "/api/v1/users/%s/resources/x%%01y", g->alice);
    expect_error(g, "DELETE", p, A, 400, "bad_resource");

    /* hashes */
    {
        const char *bad[] = {"xyz",
                             "0123456789abcdef0123456789abcdef0123456",
                             "0123456789abcdef0123456789abcdef012345678",
                             "0123456789abcdef0123456789abcdef0123456g",
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcde",
                             "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef0"};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(p, sizeof p, "/api/v1/shares/%s", bad[i]);
            expect_error(g, "GET", p, A, 400, "bad_hash");
        }
    }

    /* cursors: garbage, not JSON, wrong type, and one of the other listing */
    v = get_json(g, "/api/v1/users?limit=1", 200);
    assert_true(json_is_string(json_object_get(v, "next_cursor")));
    ucur = strdup(json_string_value(json_object_get(v, "next_cursor")));
    json_decref(v);
    v = get_json(g, "/api/v1/search?q=report&limit=1", 200);
    assert_true(json_is_string(json_object_get(v, "next_cursor")));
    scur = strdup(json_string_value(json_object_get(v, "next_cursor")));
    json_decref(v);
    assert_non_null(ucur);
    assert_non_null(scur);
    expect_error(g, "GET", "/api/v1/users?cursor=!!!", A, 400, "bad_cursor");
    expect_error(g, "GET", "/api/v1/users?cursor=AAAA", A, 400, "bad_cursor");
    /* base64url of ["u",42] and of ["u","not a jid"] */
    expect_error(g, "GET", "/api/v1/users?cursor=WyJ1Iiw0Ml0", A, 400, "bad_cursor");
    expect_error(g, "GET", "/api/v1/users?cursor=WyJ1Iiwibm90IGEgamlkIl0", A, 400, "bad_cursor");
    snprintf(p, sizeof p, "/api/v1/users?cursor=%s", scur);
    expect_error(g, "GET", p, A, 400, "bad_cursor");
    snprintf(p, sizeof p, "/api/v1/search?q=report&cursor=%s", ucur);
    expect_error(g, "GET", p, A, 400, "bad_cursor");
    snprintf(p, sizeof p, "/api/v1/search?q=report&cursor=%sx", scur);
    expect_error(g, "GET", p, A, 400, "bad_cursor");
    expect_error(g, "GET", "/api/v1/search?q=report&cursor=%25%25", A, 400, "bad_cursor");
    free(ucur);
    free(scur);

    /* limits */
    {
        const char *bad[] = {"0", "1001", "abc", "-1", "", "1e3", "+5", "99999999999999999999"};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            snprintf(p, sizeof p, "/api/v1/users?limit=%s", bad[i]);
            expect_error(g, "GET", p, A, 400, "bad_limit");
            snprintf(p, sizeof p, "/api/v1/search?q=report&limit=%s", bad[i]);
            expect_error(g, "GET", p, A, 400, "bad_limit");
            snprintf(p, sizeof p, "/api/v1/shares/%s?limit=%s", g->h_common, bad[i]);
            expect_error(g, "GET", p, A, 400, "bad_limit");
        }
        v = get_json(g, "/api/v1/users?limit=1000", 200);
        json_decref(v);
        v = get_json(g, "/api/v1/users?limit=1", 200);
        assert_int_equal(json_array_size(json_object_get(v, "users")), 1);
        json_decref(v);
    }

    /* search text */
    expect_error(g, "GET", "/api/v1/search", A, 400, "bad_query");
    expect_error(g, "GET", "/api/v1/search?q=", A, 400, "bad_query");
    expect_error(g, "GET", "/api/v1/search?q=ab", A, 400, "query_too_short");
    expect_error(g, "GET", "/api/v1/search?q=%C3%A9%C3%A9", A, 400, "query_too_short");
    expect_error(g, "GET", "/api/v1/search?q=%01abc", A, 400, "bad_query");
    expect_error(g, "GET", "/api/v1/search?q=ab%FF", A, 400, "bad_query");
    memset(q256, 'a', 256);
    q256[256] = '\0';
    memcpy(q255, q256, 255);
    q255[255] = '\0';
    snprintf(p, sizeof p, "/api/v1/search?q=%s", q256);
    expect_error(g, "GET", p, A, 400, "bad_query");
    snprintf(p, sizeof p, "/api/v1/search?q=%s", q255);
    v = get_json(g, p, 200);
    assert_int_equal(json_array_size(json_object_get(v, "results")), 0);
    json_decref(v);

    /* unknown routes (before and after the token check) */
    {
        const char *bad[] = {"/",
                             "/api",
                             "/api/v1",
                             "/api/v1/",
                             "/api/v2/users",
                             "/healthz/",
                             "/api/v1/users/a@b/extra",
                             "/api/v1/shares/",
                             "/API/V1/STATS",
                             "/api/v1/nope"};
        for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
            expect_error(g, "GET", bad[i], A, 404, "not_found");
            expect_error(g, "GET", bad[i], NULL, 404, "not_found");
        }
        expect_error(g, "DELETE", "/nope", NULL, 404, "not_found");
    }

    /* wrong methods: 405 with Allow */
    {
        char evict[512], repub[512];
        struct {
            const char *method, *path, *allow;
        } cases[] = {
            {"POST", "/healthz", "GET, HEAD"},
            {"PUT", "/readyz", "GET, HEAD"},
            {"DELETE", "/metrics", "GET, HEAD"},
            {"DELETE", "/api/v1/users", "GET, HEAD"},
            {"POST", "/api/v1/stats", "GET, HEAD"},
            {"PUT", evict, "DELETE"},
            {"GET", evict, "DELETE"},
            {"GET", repub, "POST"},
            {"DELETE", repub, "POST"},
            {"PATCH", "/api/v1/search", "GET, HEAD"},
        };
        snprintf(evict, sizeof evict, "/api/v1/users/%s/resources/laptop", g->alice);
        snprintf(repub, sizeof repub, "/api/v1/users/%s/republish", g->alice);
        for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            char what[700];
            snprintf(what, sizeof what, "%s %s", cases[i].method, cases[i].path);
            http(g, cases[i].method, cases[i].path, A, &r);
            check_error(&r, 405, "method_not_allowed", what);
            if (!r.have_allow || strcmp(r.allow, cases[i].allow) != 0) {
                fprintf(stderr, "test_api: %s: Allow \"%s\", expected \"%s\"\n", what, r.allow,
                        cases[i].allow);
                fail();
            }
            resp_clear(&r);
        }
        assert_true(hx_db_seq(g->db, g->alice, "laptop") == 5); /* nothing evicted */
    }

    /* bodies over the limit (64 KiB): refused up front from Content-Length,
     * and at the end of a chunked body */
    snprintf(p, sizeof p, "/api/v1/users/%s/republish", g->alice);
    big = malloc(70 * 1024);
    assert_non_null(big);
    memset(big, 'x', 70 * 1024);
    http_ex(g, "POST", p, A, big, 70 * 1024, BODY_EXPECT, &r);
    check_error(&r, 413, "payload_too_large", "POST with a 70 KiB body");
    resp_clear(&r);
    http_ex(g, "POST", p, A, NULL, 70 * 1024, BODY_CHUNKED, &r);
    check_error(&r, 413, "payload_too_large", "POST with a chunked 70 KiB body");
    resp_clear(&r);
    snprintf(p, sizeof p, "/api/v1/users/%s/resources/laptop", g->alice);
    http_ex(g, "DELETE", p, A, big, 70 * 1024, BODY_EXPECT, &r);
    check_error(&r, 413, "payload_too_large", "DELETE with a 70 KiB body");
    resp_clear(&r);
    free(big);
    assert_true(hx_db_seq(g->db, g->alice, "laptop") == 5); /* nothing evicted */
    /* A declared 100 MB body that never comes: answered at once. */
    {
        char *req = hx_strdupf("POST /api/v1/users/%s/republish HTTP/1.1\r\n"
                               "Host: 127.0.0.1\r\nAuthorization: %s\r\n"
                               "Content-Length: 100000000\r\n\r\n",
                               g->alice, A);
        raw = raw_exchange(g, req, WAIT);
        free(req);
        if (strncmp(raw, "HTTP/1.1 413", 12) != 0 || !strstr(raw, "\"payload_too_large\"")) {
            fprintf(stderr, "test_api: raw 413: got \"%s\"\n", raw);
            fail();
        }
        free(raw);
    }
    /* Garbage request line: no crash (whatever the status). */
    raw = raw_exchange(g, "\x01\x02 garbage\r\n\r\n", WAIT);
    free(raw);

    /* Still alive and well. */
    assert_true(hx_proc_alive(g->comp));
    http(g, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    v = get_json(g, "/api/v1/stats", 200);
    json_decref(v);
    g->passed = 1;
}

/* PostgreSQL stopped: /readyz 503 not_ready, database routes 503, health
 * still 200; started again: ready and serving again. */
static void test_readyz_database_outage(void **state)
{
    g_t *g = *state;
    resp_t r;
    long long end;

    http(g, "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);

    g->pg_down = 1;
    {
        const char *argv[] = {g->stack_script, "stop", "pg", g->stack_dir, NULL};
        assert_int_equal(hx_run(argv, NULL), 0);
    }
    trace("pg stopped");
    end = hx_now_ms() + WAIT;
    for (;;) {
        http(g, "GET", "/readyz", NULL, &r);
        if (r.status == 503)
            break;
        assert_int_equal(r.status, 200);
        resp_clear(&r);
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    check_error(&r, 503, "not_ready", "/readyz without PostgreSQL");
    assert_non_null(strstr(r.body, "database"));
    resp_clear(&r);
    assert_true(scrape(g, "bitween_database_up", NULL, NULL) == 0);
    http(g, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    expect_error(g, "GET", "/api/v1/users", g->auth, 503, "database_unavailable");

    {
        const char *argv[] = {g->stack_script, "start", "pg", g->stack_dir, NULL};
        assert_int_equal(hx_run(argv, NULL), 0);
    }
    g->pg_down = 0;
    trace("pg started");
    end = hx_now_ms() + 2 * WAIT;
    for (;;) {
        http(g, "GET", "/readyz", NULL, &r);
        if (r.status == 200)
            break;
        check_error(&r, 503, "not_ready", "/readyz while PostgreSQL starts");
        resp_clear(&r);
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    resp_clear(&r);
    /* Every worker's connection comes back. */
    end = hx_now_ms() + 2 * WAIT;
    for (;;) {
        int i, ok = 1;
        for (i = 0; i < 4; i++) {
            http(g, "GET", "/api/v1/users?limit=1", g->auth, &r);
            ok &= r.status == 200;
            resp_clear(&r);
        }
        if (ok)
            break;
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    assert_true(hx_proc_alive(g->comp));
    g->passed = 1;
}

/* ---- attacks on the HTTP layer ------------------------------------------------ */

static size_t file_size(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0 ? (size_t)st.st_size : 0;
}

/* Lines of the file from byte `from` on that contain `needle`; each is
 * printed when `print` is set. */
static int lines_since(const char *path, size_t from, const char *needle, int print)
{
    char *text = hx_file_read(path), *line, *eol;
    int n = 0;
    if (!text)
        return 0;
    line = from <= strlen(text) ? text + from : text + strlen(text);
    for (; *line; line = eol ? eol + 1 : line + strlen(line)) {
        eol = strchr(line, '\n');
        if (eol)
            *eol = '\0';
        if (strstr(line, needle)) {
            n++;
            if (print)
                fprintf(stderr, "test_api:   %s\n", line);
        }
        if (!eol)
            break;
    }
    free(text);
    return n;
}

/* A sample's value, 0 when the family is absent. */
static double scrape0(g_t *g, const char *name)
{
    double v = scrape(g, name, NULL, NULL);
    return isnan(v) ? 0 : v;
}

/*
 * 600 connections from one client address, half of them idle, half with a
 * request begun and never finished. The probes, from another address, are
 * still answered; the client's connections over the per-client limit are
 * closed at once and counted; when the client goes away, the log has
 * gained a line or two, not one per connection.
 */
static void test_idle_connection_flood(void **state)
{
    static const char partial[] = "GET /healthz HTTP/1.1\r\nHost: t\r\n";
    g_t *g = *state;
    const char *log = hx_proc_log(g->comp);
    size_t log_from = file_size(log);
    double refused_before = scrape0(g, "bitween_api_connections_refused_total");
    struct pollfd *pf = g->flood;
    int i, pending, closed = 0, lines;
    long long end;
    resp_t r;

    for (i = 0; i < FLOOD; i++)
        pf[i].fd = -1;
    g->flooding = 1;
    for (i = 0; i < FLOOD; i++) {
        struct sockaddr_in src, dst;
        int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0), rc;
        assert_true(fd >= 0);
        pf[i].fd = fd;
        memset(&src, 0, sizeof src);
        src.sin_family = AF_INET;
        assert_int_equal(inet_pton(AF_INET, FLOOD_SOURCE, &src.sin_addr), 1);
        assert_int_equal(bind(fd, (struct sockaddr *)&src, sizeof src), 0);
        memset(&dst, 0, sizeof dst);
        dst.sin_family = AF_INET;
        dst.sin_port = htons((uint16_t)g->port);
        dst.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        rc = connect(fd, (struct sockaddr *)&dst, sizeof dst);
        assert_true(rc == 0 || errno == EINPROGRESS);
        pf[i].events = POLLOUT;
        pf[i].revents = 0;
    }
    /* Every connection established (or already closed by the server). */
    end = hx_now_ms() + WAIT;
    do {
        assert_true(hx_now_ms() < end);
        assert_true(poll(pf, FLOOD, 100) >= 0);
        for (i = 0, pending = 0; i < FLOOD; i++) {
            if (pf[i].revents)
                pf[i].events = 0; /* done: poll() ignores it now */
            pending += pf[i].events != 0;
        }
    } while (pending);
    for (i = 1; i < FLOOD; i += 2) /* may fail: the server may have closed it */
        (void)send(pf[i].fd, partial, sizeof partial - 1, MSG_NOSIGNAL);
    trace("%d connections from %s", FLOOD, FLOOD_SOURCE);

    /* Another client is served, on new connections as probes come. */
    g->fresh = 1;
    http(g, "GET", "/healthz", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    http(g, "GET", "/readyz", NULL, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    http(g, "GET", "/api/v1/stats", g->auth, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    g->fresh = 0;
    trace("probes answered");

    /* The flooding client's excess is closed by the server, and counted. */
    for (i = 0; i < FLOOD; i++)
        pf[i].events = POLLIN;
    end = hx_now_ms() + WAIT;
    while (closed < FLOOD - PER_CLIENT) {
        if (hx_now_ms() >= end) {
            fprintf(stderr, "test_api: the server closed %d of %d connections, expected %d\n",
                    closed, FLOOD, FLOOD - PER_CLIENT);
            fail();
        }
        assert_true(poll(pf, FLOOD, 100) >= 0);
        for (i = 0; i < FLOOD; i++) {
            char c;
            ssize_t n;
            if (pf[i].fd < 0 || !pf[i].revents)
                continue;
            n = recv(pf[i].fd, &c, 1, MSG_DONTWAIT);
            if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK)) {
                close(pf[i].fd);
                pf[i].fd = -1; /* poll() ignores it now */
                closed++;
            }
        }
    }
    assert_true(scrape0(g, "bitween_api_connections_refused_total") - refused_before >=
                FLOOD - PER_CLIENT);
    trace("%d closed by the server", closed);

    /* The client goes away; the server sees every connection closed. */
    for (i = 0; i < FLOOD; i++)
        if (pf[i].fd >= 0)
            close(pf[i].fd);
    g->flooding = 0;
    end = hx_now_ms() + WAIT;
    while (scrape0(g, "bitween_api_connections") > 1) { /* 1: the scrape's own */
        assert_true(hx_now_ms() < end);
        xclient_pump(g->ctx, 50);
    }
    lines = lines_since(log, log_from, "api", 0);
    if (lines > 2) {
        fprintf(stderr, "test_api: %d log lines about the flood:\n", lines);
        lines_since(log, log_from, "api", 1);
        fail();
    }
    assert_true(hx_proc_alive(g->comp));
    g->passed = 1;
}

/* A right token followed by a NUL byte and more is refused; sent over a
 * raw socket, since no HTTP client sends such a header. */
static void test_token_with_a_nul_byte(void **state)
{
    static const char nul_mid[] = "GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                  "Authorization: Bearer " TOKEN "\0junk\r\n"
                                  "Connection: close\r\n\r\n";
    static const char nul_last[] = "GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                                   "Connection: close\r\n"
                                   "Authorization: Bearer " TOKEN "\0\r\n\r\n";
    static const char good[] = "GET /api/v1/stats HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                               "Authorization: Bearer " TOKEN "\r\n"
                               "Connection: close\r\n\r\n";
    const struct {
        const char *req;
        size_t len;
        const char *status, *body;
    } cases[] = {
        {nul_mid, sizeof nul_mid - 1, "HTTP/1.1 401", "\"unauthorized\""},
        {nul_last, sizeof nul_last - 1, "HTTP/1.1 401", "\"unauthorized\""},
        {good, sizeof good - 1, "HTTP/1.1 200", "\"registry\""},
    };
    g_t *g = *state;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *raw = raw_exchange_n(g, cases[i].req, cases[i].len, WAIT);
        if (strncmp(raw, cases[i].status, strlen(cases[i].status)) != 0 ||
            !strstr(raw, cases[i].body)) {
            fprintf(stderr, "test_api: case %zu: expected %s with %s, got \"%s\"\n", i,
                    cases[i].status, cases[i].body, raw);
            free(raw);
            fail();
        }
        free(raw);
    }
    g->passed = 1;
}

/* Start a second component (`name`.log) with `extra` and wait until its
 * API logs `listen_prefix` ("api: listening on [::]:"); returns the port.
 * It has a wrong XMPP secret, so it cannot disturb the group's component:
 * the server refuses it once, and it waits long before trying again, so
 * that it is stopped while disconnected. */
static int start_side(g_t *g, const char *name, const char *const *extra, const char *listen_prefix)
{
    const char *env[8];
    size_t n = 0;
    int port;
    env[n++] = "BITWEEN_COMPONENT_SECRET=not-the-secret";
    env[n++] = "BITWEEN_RECONNECT_MIN_MS=600000";
    env[n++] = "BITWEEN_RECONNECT_MAX_MS=600000";
    while (extra && *extra && n < sizeof env / sizeof env[0] - 1)
        env[n++] = *extra++;
    env[n] = NULL;
    g->side = spawn_component(g, name, env);
    assert_non_null(g->side);
    if (!hx_proc_wait_log(g->side, listen_prefix, 1, WAIT, g->ctx)) {
        fprintf(stderr, "test_api: %s never logged \"%s\"\n", name, listen_prefix);
        fail();
    }
    port = read_port(hx_proc_log(g->side), listen_prefix);
    assert_true(port > 0 && port < 65536);
    if (!hx_proc_wait_log(g->side, "not-authorized", 1, WAIT, g->ctx)) {
        fprintf(stderr, "test_api: %s was never refused by the XMPP server\n", name);
        fail();
    }
    return port;
}

static void stop_side(g_t *g)
{
    assert_int_equal(hx_proc_stop(g->side, WAIT, g->ctx), 0);
    assert_false(hx_file_has_sanitizer_report(hx_proc_log(g->side)));
    hx_proc_free(g->side);
    g->side = NULL;
}

/* api_address = "::" serves IPv6 and IPv4 clients on one port. */
static void test_wildcard_ipv6_serves_ipv4(void **state)
{
    const char *extra[] = {"BITWEEN_API_ADDRESS=::", NULL};
    g_t *g = *state;
    char base[64];
    const char *hosts[] = {"127.0.0.1", "[::1]"};
    int port = start_side(g, "dual-stack", extra, "api: listening on [::]:");
    size_t i;
    resp_t r;

    for (i = 0; i < 2; i++) {
        snprintf(base, sizeof base, "http://%s:%d", hosts[i], port);
        http_at(g, base, "GET", "/healthz", NULL, NULL, 0, BODY_PLAIN, &r);
        assert_int_equal(r.status, 200);
        resp_clear(&r);
        http_at(g, base, "GET", "/api/v1/stats", g->auth, NULL, 0, BODY_PLAIN, &r);
        assert_int_equal(r.status, 200);
        resp_clear(&r);
    }
    assert_int_equal(hx_file_count(hx_proc_log(g->side), "IPv6 and IPv4"), 1);
    stop_side(g);
    g->passed = 1;
}

/* A component without api_token: /api/v1 answers 401 token_not_configured
 * whatever the request carries. It has the wrong XMPP secret: /readyz says
 * not ready, and why, while the database answers and /healthz is fine. */
static void test_no_token_and_xmpp_not_authenticated(void **state)
{
    const char *extra[] = {"BITWEEN_API_TOKEN", NULL}; /* unset */
    g_t *g = *state;
    char base[64], path[512];
    const char *auths[] = {NULL, g->auth, "Bearer "};
    int port = start_side(g, "no-token", extra, LISTEN_LINE);
    size_t i;
    resp_t r;
    json_t *v;

    snprintf(base, sizeof base, "http://127.0.0.1:%d", port);
    snprintf(path, sizeof path, "/api/v1/users/%s", g->alice);
    for (i = 0; i < sizeof auths / sizeof auths[0]; i++) {
        http_at(g, base, "GET", "/api/v1/stats", auths[i], NULL, 0, BODY_PLAIN, &r);
        check_error(&r, 401, "token_not_configured", "/api/v1/stats without api_token");
        assert_non_null(strstr(r.body, "api_token"));
        assert_true(r.have_www && strncmp(r.www, "Bearer", 6) == 0);
        resp_clear(&r);
        http_at(g, base, "GET", path, auths[i], NULL, 0, BODY_PLAIN, &r);
        check_error(&r, 401, "token_not_configured", "/api/v1/users/{jid} without api_token");
        resp_clear(&r);
    }
    assert_true(hx_file_count(hx_proc_log(g->side), "no api_token configured") == 1);

    /* Never authenticated: not ready, with the reason; alive all the same. */
    http_at(g, base, "GET", "/readyz", NULL, NULL, 0, BODY_PLAIN, &r);
    check_error(&r, 503, "not_ready", "/readyz with the wrong XMPP secret");
    v = parse_json(&r, "/readyz");
    assert_non_null(strstr(js(json_object_get(v, "error"), "message"), "XMPP"));
    json_decref(v);
    resp_clear(&r);
    http_at(g, base, "GET", "/healthz", NULL, NULL, 0, BODY_PLAIN, &r);
    assert_int_equal(r.status, 200);
    resp_clear(&r);
    http_at(g, base, "GET", "/metrics", NULL, NULL, 0, BODY_PLAIN, &r);
    assert_int_equal(r.status, 200);
    assert_non_null(strstr(r.body, "\nbitween_xmpp_up 0\n"));
    assert_non_null(strstr(r.body, "\nbitween_database_up 1\n"));
    resp_clear(&r);
    stop_side(g);
    g->passed = 1;
}

/* SIGTERM: a clean exit, no sanitizer report. */
static void test_clean_stop(void **state)
{
    g_t *g = *state;
    assert_true(hx_proc_alive(g->comp));
    assert_int_equal(hx_proc_stop(g->comp, WAIT, g->ctx), 0);
    assert_false(hx_file_has_sanitizer_report(hx_proc_log(g->comp)));
    g->passed = 1;
}

#define T(f) cmocka_unit_test_setup_teardown(f, test_setup, test_teardown)

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        T(test_agents_register),
        T(test_probes_and_metrics),
        T(test_users_pages),
        T(test_user_one),
        T(test_share_holders),
        T(test_search),
        T(test_stats),
        T(test_metrics_count_registrations),
        T(test_evict_and_republish),
        T(test_auth),
        T(test_bad_input),
        T(test_republish_rereads_the_database),
        T(test_readyz_database_outage),
        T(test_idle_connection_flood),
        T(test_token_with_a_nul_byte),
        T(test_wildcard_ipv6_serves_ipv4),
        T(test_no_token_and_xmpp_not_authenticated),
        T(test_clean_stop),
    };
    int rc;

    if (argc != 2 || access(argv[1], X_OK) != 0) {
        fprintf(stderr, "usage: %s BITWEEN_COMPONENT_BINARY (under tests/with_stack.sh)\n",
                argv[0]);
        return 2;
    }
    component_bin = argv[1];
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 2;
    xmpp_initialize();
    t0_ms = hx_now_ms();
    rc = cmocka_run_group_tests_name("api", tests, group_setup, group_teardown);
    xmpp_shutdown();
    curl_global_cleanup();
    return rc ? 1 : 0;
}
