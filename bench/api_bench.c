/* SPDX-License-Identifier: MIT */
/*
 * Admin API benchmark: wrk against GET /api/v1/shares/{hash} of the real
 * bitween-component at 1,000,000 share rows, beside a baseline measured in
 * the same run with the same wrk parameters and the same request script: a
 * minimal libmicrohttpd server (in this process) with the API's thread
 * model (the same daemon flags, thread-pool size, connection limits and
 * callbacks as api/api.c) that answers every request with a fixed JSON body
 * -- a real response of the endpoint, so the size is the same. The
 * difference is what the endpoint costs: routing, the token check (SHA-256),
 * the PostgreSQL look-up on the worker's own connection, and JSON.
 *
 * Rows are bulk-loaded as in store_bench.c (rows/1000 users, one resource,
 * one address, 1,000 shares each; hash of row i = md5(i) || first 8 hex of
 * md5('x' || i)); wrk's Lua script picks a random hash of a file of
 * existing ones for each request. For each thread count (default: 2, the
 * API's default; --threads 2,4 compares several) each side gets a warm-up
 * run, then --rounds runs alternating which side goes first; the table
 * shows medians.
 * The component runs without an XMPP server (a port nobody listens on: it
 * keeps reconnecting in the background, which the API does not need), with
 * api_stats_ttl at an hour so that the registry recount (a second of
 * PostgreSQL CPU at this size) does not land inside a measurement.
 *
 * Prints a table and the ratios; exits non-zero only when a step fails
 * (including any non-2xx answer or socket error under load), never because
 * a target is missed.
 *
 * usage: api_bench BITWEEN_COMPONENT_BINARY [--rows N] [--seconds S] [--rounds N]
 *                  [--threads T[,T...]] [--connections C] [--hashes N]
 * BITWEEN_BENCH_VERBOSE=1 prints every wrk run.
 * Needs BITWEEN_DATABASE_URL (run through scripts/bench api) and wrk.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>
#include <microhttpd.h>

#include "harness.h"
#include "load.h"
#include "store.h"

#define TOKEN "api-bench-token-0123456789abcdef"
/* The API's daemon settings (api/api.c, api_settings_default()); the
 * connection limits are raised on both sides to let wrk's connections in,
 * since they all come from one address. */
#define CONNECTION_TIMEOUT_S 10
#define CONNECTION_LIMIT     128
#define LISTEN_LINE          "api: listening on 127.0.0.1:"

#define MAX_THREAD_COUNTS 8
#define MAX_ROUNDS        15

static struct {
    const char *component_bin;
    long rows;
    int seconds, connections, wrk_threads, hashes, rounds;
    int threads[MAX_THREAD_COUNTS]; /* HTTP worker threads, one table each */
    int n_threads;
} cfg = {NULL, 1000000, 10, 32, 2, 4000, 3, {2}, 1};

__attribute__((noreturn)) static void die(const char *what, const char *detail)
{
    fprintf(stderr, "api_bench: %s%s%s\n", what, detail ? ": " : "", detail ? detail : "");
    exit(1);
}

/* ---- data ------------------------------------------------------------------- */

/* A file of `n` random existing hashes, one a line. */
static void write_hashes(const char *path, long rows, int n)
{
    FILE *f = fopen(path, "w");
    char h[41];
    int i;
    if (!f)
        die("writing", path);
    srand(42);
    for (i = 0; i < n; i++) {
        long k = 1 + (long)(((unsigned long)rand() * 65536u + (unsigned long)rand()) %
                            (unsigned long)rows);
        bench_row_hash(k, h);
        fprintf(f, "%s\n", h);
    }
    if (fclose(f) != 0)
        die("writing", path);
}

/* ---- a plain HTTP GET for checks (Connection: close) ------------------------------ */

static char *http_get(int port, const char *path, const char *auth)
{
    struct sockaddr_in sa;
    char req[1024], chunk[4096];
    size_t len = 0, cap = 8192;
    char *out = malloc(cap);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    double end = bench_now_s() + 10;

    if (!out || fd < 0)
        die("socket", strerror(errno));
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)port);
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (connect(fd, (struct sockaddr *)&sa, sizeof sa) != 0)
        die("connect", strerror(errno));
    snprintf(req, sizeof req,
             "GET %s HTTP/1.1\r\nHost: 127.0.0.1\r\n%s%s%sConnection: close\r\n\r\n", path,
             auth ? "Authorization: " : "", auth ? auth : "", auth ? "\r\n" : "");
    if (send(fd, req, strlen(req), MSG_NOSIGNAL) != (ssize_t)strlen(req))
        die("send", strerror(errno));
    for (;;) {
        struct pollfd p = {fd, POLLIN, 0};
        ssize_t n;
        if (bench_now_s() > end)
            die("timeout reading", path);
        if (poll(&p, 1, 1000) <= 0)
            continue;
        n = recv(fd, chunk, sizeof chunk, 0);
        if (n <= 0)
            break;
        if (len + (size_t)n + 1 > cap) {
            char *o;
            cap = (len + (size_t)n + 1) * 2;
            o = realloc(out, cap);
            if (!o)
                die("out of memory", NULL);
            out = o;
        }
        memcpy(out + len, chunk, (size_t)n);
        len += (size_t)n;
    }
    close(fd);
    out[len] = '\0';
    return out;
}

/* ---- the baseline: fixed body, the API's thread model --------------------------- */

static char *baseline_body;
static size_t baseline_len;

static void *bl_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    (void)conn;
    (void)uri;
    return NULL;
}

static void bl_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    (void)cls;
    (void)conn;
    (void)con_cls;
    (void)toe;
}

static enum MHD_Result bl_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload,
                                 size_t *upload_size, void **con_cls)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;
    (void)cls;
    (void)url;
    (void)method;
    (void)version;
    (void)upload;
    (void)con_cls;
    if (*upload_size) {
        *upload_size = 0;
        return MHD_YES;
    }
    resp = MHD_create_response_from_buffer(baseline_len, baseline_body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, "application/json");
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    ret = MHD_queue_response(conn, MHD_HTTP_OK, resp);
    MHD_destroy_response(resp);
    return ret;
}

/* Connections each side accepts, in all and from one address. */
static int connection_limit(void)
{
    return cfg.connections > CONNECTION_LIMIT ? cfg.connections : CONNECTION_LIMIT;
}

static struct MHD_Daemon *baseline_start(int threads, int *port)
{
    struct sockaddr_in sa;
    const union MHD_DaemonInfo *info;
    struct MHD_Daemon *d;

    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = 0;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    d = MHD_start_daemon(
        MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG, 0, NULL, NULL,
        bl_access, NULL, MHD_OPTION_SOCK_ADDR, &sa, MHD_OPTION_THREAD_POOL_SIZE,
        (unsigned int)threads, MHD_OPTION_URI_LOG_CALLBACK, bl_uri, NULL,
        MHD_OPTION_NOTIFY_COMPLETED, bl_completed, NULL, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)CONNECTION_TIMEOUT_S, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)connection_limit(), MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)connection_limit(), MHD_OPTION_END);
    if (!d)
        die("baseline", "libmicrohttpd did not start");
    info = MHD_get_daemon_info(d, MHD_DAEMON_INFO_BIND_PORT);
    if (!info)
        die("baseline", "no port");
    *port = (int)info->port;
    return d;
}

/* ---- the component ---------------------------------------------------------------- */

static hx_proc_t *component_start(const char *log, const char *db_url, int n_threads)
{
    char threads[64], url[4096], total[64], per_client[64];
    const char *env[] = {url,
                         threads,
                         total,
                         per_client,
                         "BITWEEN_CONFIG", /* no file */
                         "BITWEEN_XMPP_HOST=127.0.0.1",
                         "BITWEEN_XMPP_PORT=9", /* discard: nobody listens */
                         "BITWEEN_COMPONENT_JID=shares.bench.test",
                         "BITWEEN_COMPONENT_SECRET=bench",
                         "BITWEEN_DOMAINS=bench.test",
                         "BITWEEN_API_ADDRESS=127.0.0.1",
                         "BITWEEN_API_PORT=0",
                         "BITWEEN_API_TOKEN=" TOKEN,
                         "BITWEEN_API_STATS_TTL=3600",
                         "BITWEEN_LOG_TIMESTAMPS=true",
                         NULL};
    hx_proc_t *p;
    snprintf(threads, sizeof threads, "BITWEEN_API_THREADS=%d", n_threads);
    snprintf(total, sizeof total, "BITWEEN_API_MAX_CONNECTIONS=%d", connection_limit());
    snprintf(per_client, sizeof per_client, "BITWEEN_API_MAX_CONNECTIONS_PER_CLIENT=%d",
             connection_limit());
    snprintf(url, sizeof url, "BITWEEN_DATABASE_URL=%s", db_url);
    p = hx_proc_start(cfg.component_bin, log, env);
    if (!p)
        die("fork", strerror(errno));
    return p;
}

/* The API port from the component's log, waiting at most 30 s. */
static int component_port(hx_proc_t *comp)
{
    char *text, *at;
    int port;
    if (!hx_proc_wait_log(comp, LISTEN_LINE, 1, 30000, NULL))
        die("the component did not log its API port; see", hx_proc_log(comp));
    text = hx_file_read(hx_proc_log(comp));
    at = text ? strstr(text, LISTEN_LINE) : NULL;
    port = at ? atoi(at + strlen(LISTEN_LINE)) : 0;
    free(text);
    return port;
}

/* ---- wrk -------------------------------------------------------------------------- */

typedef struct wrk_result {
    double rps, p50_ms, p99_ms, max_ms;
    long non2xx, socket_errors, timeouts, requests;
} wrk_result_t;

/* "1.23ms", "456.78us", "1.01s" into milliseconds. */
static double wrk_ms(const char *s)
{
    char *end;
    double v = strtod(s, &end);
    if (strncmp(end, "us", 2) == 0)
        return v / 1000.0;
    if (strncmp(end, "ms", 2) == 0)
        return v;
    if (strncmp(end, "s", 1) == 0)
        return v * 1000.0;
    if (strncmp(end, "m", 1) == 0)
        return v * 60000.0;
    return -1;
}

static wrk_result_t run_wrk(int port, const char *script, int seconds, int quiet)
{
    char cmd[2048], line[512];
    wrk_result_t r = {-1, -1, -1, -1, 0, 0, 0, 0};
    FILE *p;

    snprintf(cmd, sizeof cmd,
             "wrk -t%d -c%d -d%ds --latency -s '%s' http://127.0.0.1:%d/api/v1/shares/ 2>&1",
             cfg.wrk_threads, cfg.connections, seconds, script, port);
    p = popen(cmd, "r");
    if (!p)
        die("popen", "wrk");
    while (fgets(line, sizeof line, p)) {
        char unit[32], u2[32], u3[32];
        double v;
        long a, b, c, d;
        if (getenv("BITWEEN_BENCH_VERBOSE") && !quiet)
            fputs(line, stdout);
        if (sscanf(line, "Requests/sec: %lf", &v) == 1)
            r.rps = v;
        else if (sscanf(line, " 50%% %31s", unit) == 1)
            r.p50_ms = wrk_ms(unit);
        else if (sscanf(line, " 99%% %31s", unit) == 1)
            r.p99_ms = wrk_ms(unit);
        else if (sscanf(line, " Non-2xx or 3xx responses: %ld", &a) == 1)
            r.non2xx = a;
        else if (sscanf(line, " Socket errors: connect %ld, read %ld, write %ld, timeout %ld", &a,
                        &b, &c, &d) == 4)
            r.socket_errors = a + b + c, r.timeouts = d;
        else if (sscanf(line, " Latency %31s %31s %31s", unit, u2, u3) == 3)
            r.max_ms = wrk_ms(u3);
        else if (sscanf(line, " %ld requests in", &a) == 1)
            r.requests = a;
        else if (strstr(line, "rror") && !strstr(line, "Socket errors"))
            fprintf(stderr, "wrk: %s", line);
    }
    if (pclose(p) != 0 || r.rps < 0 || r.p99_ms < 0)
        die("wrk failed", cmd);
    if (r.non2xx || r.socket_errors)
        fprintf(stderr, "api_bench: port %d: %ld non-2xx answers, %ld socket errors\n", port,
                r.non2xx, r.socket_errors);
    return r;
}

static void write_script(const char *path, const char *hashes)
{
    FILE *f = fopen(path, "w");
    if (!f)
        die("writing", path);
    fprintf(f,
            "-- generated by api_bench: a random existing hash per request\n"
            "local hashes = {}\n"
            "for line in io.lines('%s') do hashes[#hashes + 1] = line end\n"
            "wrk.headers['Authorization'] = 'Bearer %s'\n"
            "local threads = 0\n"
            "function setup(thread)\n"
            "  threads = threads + 1\n"
            "  thread:set('id', threads)\n"
            "end\n"
            "function init(args)\n"
            "  math.randomseed(7919 * (id or 1))\n"
            "end\n"
            "function request()\n"
            "  return wrk.format('GET', '/api/v1/shares/' .. hashes[math.random(#hashes)])\n"
            "end\n",
            hashes, TOKEN);
    if (fclose(f) != 0)
        die("writing", path);
}

/* ---- one thread count ------------------------------------------------------------ */

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* Median of `n` values of a field of `r`. */
static double median(const wrk_result_t *r, int n, size_t field)
{
    double v[MAX_ROUNDS];
    int i;
    for (i = 0; i < n; i++)
        v[i] = *(const double *)(const void *)((const char *)&r[i] + field);
    qsort(v, (size_t)n, sizeof v[0], cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

typedef struct side {
    wrk_result_t r[MAX_ROUNDS];
    double rps, p50, p99, max_ms;
    long requests, non2xx, socket_errors, timeouts;
} side_t;

static void side_sum(side_t *s, int n)
{
    int i;
    s->rps = median(s->r, n, offsetof(wrk_result_t, rps));
    s->p50 = median(s->r, n, offsetof(wrk_result_t, p50_ms));
    s->p99 = median(s->r, n, offsetof(wrk_result_t, p99_ms));
    for (i = 0; i < n; i++) {
        s->max_ms = s->r[i].max_ms > s->max_ms ? s->r[i].max_ms : s->max_ms;
        s->requests += s->r[i].requests;
        s->non2xx += s->r[i].non2xx;
        s->socket_errors += s->r[i].socket_errors;
        s->timeouts += s->r[i].timeouts;
    }
}

/* The component and the baseline with `threads` HTTP workers each; a
 * warm-up run of each, then rounds alternating which goes first. Returns
 * whether every answer was a 2xx. */
static int measure(const char *dir, const char *url, const char *script, long rows, int threads)
{
    char logpath[512], path[128], h[41], auth[128], *resp, *body, *fixed;
    struct MHD_Daemon *bl;
    int i, api_port, bl_port, status, warm = cfg.seconds / 2 > 0 ? cfg.seconds / 2 : 1;
    hx_proc_t *comp;
    side_t ours = {0}, base = {0};

    snprintf(logpath, sizeof logpath, "%s/component-%d.log", dir, threads);
    snprintf(auth, sizeof auth, "Bearer %s", TOKEN);
    comp = component_start(logpath, url, threads);
    api_port = component_port(comp);
    /* The endpoint answers what was loaded: one holder, the row's name. */
    resp = NULL;
    for (i = 1; i <= 3; i++) {
        char name[64];
        long k = i * (rows / 3);
        free(resp);
        bench_row_hash(k, h);
        snprintf(path, sizeof path, "/api/v1/shares/%s", h);
        snprintf(name, sizeof name, "\"name\":\"file %ld.mkv\"", k);
        resp = http_get(api_port, path, auth);
        if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !strstr(resp, name) ||
            !strstr(resp, "\"truncated\":false"))
            die("unexpected answer from the API", resp);
    }
    /* The baseline answers with that real body. */
    body = strstr(resp, "\r\n\r\n");
    if (!body || !(fixed = strdup(body + 4)))
        die("no body", resp);
    free(resp);
    baseline_body = fixed;
    baseline_len = strlen(fixed);
    bl = baseline_start(threads, &bl_port);
    resp = http_get(bl_port, "/api/v1/shares/x", NULL);
    if (strncmp(resp, "HTTP/1.1 200", 12) != 0 || !strstr(resp, baseline_body))
        die("unexpected answer from the baseline", resp);
    free(resp);

    printf("\n%d HTTP worker thread%s each side; response body %zu bytes\n", threads,
           threads == 1 ? "" : "s", baseline_len);
    fflush(stdout);
    run_wrk(bl_port, script, warm, 1);
    run_wrk(api_port, script, warm, 1);
    for (i = 0; i < cfg.rounds; i++) {
        if (i % 2 == 0) {
            base.r[i] = run_wrk(bl_port, script, cfg.seconds, 0);
            ours.r[i] = run_wrk(api_port, script, cfg.seconds, 0);
        } else {
            ours.r[i] = run_wrk(api_port, script, cfg.seconds, 0);
            base.r[i] = run_wrk(bl_port, script, cfg.seconds, 0);
        }
        if (getenv("BITWEEN_BENCH_VERBOSE"))
            printf("  round %d: baseline %.0f/s p99 %.3f ms max %.1f ms; API %.0f/s p99 %.3f ms "
                   "max %.1f ms\n",
                   i + 1, base.r[i].rps, base.r[i].p99_ms, base.r[i].max_ms, ours.r[i].rps,
                   ours.r[i].p99_ms, ours.r[i].max_ms);
    }
    side_sum(&base, cfg.rounds);
    side_sum(&ours, cfg.rounds);

    printf("%-22s %11s %9s %9s %9s %10s %7s\n", "", "requests/s", "p50 ms", "p99 ms", "max ms",
           "requests", "errors");
    printf("%-22s %11.0f %9.3f %9.3f %9.1f %10ld %7ld\n", "baseline (fixed body)", base.rps,
           base.p50, base.p99, base.max_ms, base.requests,
           base.non2xx + base.socket_errors + base.timeouts);
    printf("%-22s %11.0f %9.3f %9.3f %9.1f %10ld %7ld\n", "bitween API", ours.rps, ours.p50,
           ours.p99, ours.max_ms, ours.requests, ours.non2xx + ours.socket_errors + ours.timeouts);
    printf("%-22s %10.2fx %8.2fx %8.2fx\n", "API / baseline", ours.rps / base.rps,
           ours.p50 / base.p50, ours.p99 / base.p99);
    printf("targets: requests/s >= 0.50x baseline: %s; p99 < 10 ms: %s\n",
           ours.rps >= 0.5 * base.rps ? "met" : "NOT met", ours.p99 < 10.0 ? "met" : "NOT met");
    if (base.timeouts || ours.timeouts)
        printf("(errors: wrk's 2 s timeouts: baseline %ld, API %ld)\n", base.timeouts,
               ours.timeouts);
    fflush(stdout);

    MHD_stop_daemon(bl);
    free(baseline_body);
    baseline_body = NULL;
    status = hx_proc_stop(comp, 30000, NULL);
    if (status != 0)
        hx_file_dump(hx_proc_log(comp), "api_bench: the component did not exit cleanly; its log");
    hx_proc_free(comp);
    if (status != 0)
        return 0;
    return !(base.non2xx || base.socket_errors || ours.non2xx || ours.socket_errors);
}

/* ---- main --------------------------------------------------------------------------- */

static void usage(const char *argv0)
{
    fprintf(stderr,
            "usage: %s BITWEEN_COMPONENT_BINARY [--rows N] [--seconds S] [--rounds N]\n"
            "       [--threads T[,T...]] [--connections C] [--hashes N]\n",
            argv0);
    exit(2);
}

int main(int argc, char **argv)
{
    const char *url = getenv("BITWEEN_DATABASE_URL");
    char dir[] = "/tmp/bw-api-bench-XXXXXX", hashes[256], script[256];
    store_error_t err;
    store_t *st;
    PGconn *pg;
    int i, ok = 1;
    long rows;

    if (argc < 2)
        usage(argv[0]);
    cfg.component_bin = argv[1];
    for (i = 2; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc) {
            cfg.rows = atol(argv[++i]);
        } else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
            cfg.seconds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            cfg.rounds = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc) {
            char *p = argv[++i], *end;
            cfg.n_threads = 0;
            do {
                long t = strtol(p, &end, 10);
                if (end == p || t < 1 || t > 64 || cfg.n_threads == MAX_THREAD_COUNTS)
                    usage(argv[0]);
                cfg.threads[cfg.n_threads++] = (int)t;
                p = end + (*end == ',');
            } while (*end == ',');
            if (*end)
                usage(argv[0]);
        } else if (strcmp(argv[i], "--connections") == 0 && i + 1 < argc) {
            cfg.connections = atoi(argv[++i]);
        } else if (strcmp(argv[i], "--hashes") == 0 && i + 1 < argc) {
            cfg.hashes = atoi(argv[++i]);
        } else {
            usage(argv[0]);
        }
    }
    if (cfg.rows < 1000 || cfg.seconds < 1 || cfg.rounds < 1 || cfg.rounds > MAX_ROUNDS ||
        cfg.connections < 1 || cfg.hashes < 1)
        usage(argv[0]);
    if (!url)
        die("BITWEEN_DATABASE_URL is not set (run through scripts/bench api)", NULL);
    if (system("command -v wrk >/dev/null 2>&1") != 0)
        die("wrk is not installed (scripts/bench api installs it)", NULL);
    if (!mkdtemp(dir))
        die("mkdtemp", strerror(errno));
    snprintf(hashes, sizeof hashes, "%s/hashes.txt", dir);
    snprintf(script, sizeof script, "%s/shares.lua", dir);

    st = store_new(url, NULL);
    if (!st || store_migrate(st, NULL, &err) != STORE_OK)
        die("migrate", st ? err.message : "out of memory");
    store_free(st);
    pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));
    rows = bench_load_rows(pg, cfg.rows);
    PQfinish(pg);
    write_hashes(hashes, rows, cfg.hashes);
    write_script(script, hashes);

    printf("\nGET /api/v1/shares/{hash} at %ld share rows, a random one of %d existing hashes "
           "per request\nwrk -t%d -c%d -d%ds --latency, %d round%s alternating which side goes "
           "first, after a warm-up; medians\n",
           rows, cfg.hashes, cfg.wrk_threads, cfg.connections, cfg.seconds, cfg.rounds,
           cfg.rounds == 1 ? "" : "s");
    for (i = 0; i < cfg.n_threads; i++)
        ok &= measure(dir, url, script, rows, cfg.threads[i]);
    {
        char rm[512];
        snprintf(rm, sizeof rm, "rm -rf '%s'", dir);
        if (system(rm) != 0)
            fprintf(stderr, "api_bench: could not remove %s\n", dir);
    }
    if (!ok)
        die("errors under load (see above)", NULL);
    return 0;
}
