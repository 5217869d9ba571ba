/* SPDX-License-Identifier: MIT */
/* The JSON-RPC API over HTTP, on the agent's event loop. */
#include "rpc_http.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>

#include <microhttpd.h>

#include "config.h"
#include "httpauth.h"

#define DEFAULT_MAX_BODY (1u << 20)
#define MAX_HOSTS        16

struct rpc_http {
    loop_t *loop;
    rpc_t *rpc;
    log_t *log;
    struct MHD_Daemon *mhd;
    int epoll_fd;
    loop_timer_t timer;
    unsigned port;
    size_t max_body;
    int cuts_at_nul;
    unsigned char token_digest[HTTP_TOKEN_DIGEST];
    char hosts[MAX_HOSTS][256]; /* allowed Host names, lower case */
    size_t n_hosts;
};

typedef struct http_req {
    rpc_http_t *h;
    struct MHD_Connection *conn;
    char *body;
    size_t len;
    int too_big;
    int suspended;
    int answered; /* rpc done: `reply` holds the text (NULL: nothing to send) */
    char *reply;
    rpc_req_t *pending;
} http_req_t;

static void run_mhd(rpc_http_t *h);

static void on_epoll(loop_t *loop, int fd, short revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    run_mhd(arg);
}

static void on_timer(loop_t *loop, void *arg)
{
    (void)loop;
    run_mhd(arg);
}

/* Let libmicrohttpd work, then wake again when its next timeout is due. */
static void run_mhd(rpc_http_t *h)
{
    MHD_UNSIGNED_LONG_LONG t;
    MHD_run(h->mhd);
    if (MHD_get_timeout(h->mhd, &t) == MHD_YES)
        loop_timer_start(h->loop, &h->timer, t > 60000 ? 60000 : (uint64_t)t, on_timer, h);
    else
        loop_timer_stop(h->loop, &h->timer);
}

static enum MHD_Result send_text(struct MHD_Connection *conn, unsigned status, const char *ctype,
                                 const char *text)
{
    char *copy = strdup(text);
    struct MHD_Response *r =
        copy ? MHD_create_response_from_buffer(strlen(copy), copy, MHD_RESPMEM_MUST_FREE) : NULL;
    enum MHD_Result rc;
    if (!r) {
        free(copy);
        return MHD_NO;
    }
    MHD_add_response_header(r, MHD_HTTP_HEADER_CONTENT_TYPE, ctype);
    MHD_add_response_header(r, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    if (status == MHD_HTTP_UNAUTHORIZED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer");
    if (status == MHD_HTTP_METHOD_NOT_ALLOWED)
        MHD_add_response_header(r, MHD_HTTP_HEADER_ALLOW, "POST");
    rc = MHD_queue_response(conn, status, r);
    MHD_destroy_response(r);
    return rc;
}

/* An HTTP-level refusal, as a JSON-RPC error object with a null id. */
static enum MHD_Result refuse(struct MHD_Connection *conn, unsigned status, const char *name,
                              const char *message)
{
    json_t *o =
        json_pack("{sss{sisss{ss}}so}", "jsonrpc", "2.0", "error", "code", RPC_INVALID_REQUEST,
                  "message", message, "data", "name", name, "id", json_null());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    enum MHD_Result rc = send_text(conn, status, "application/json", text ? text : "{}");
    json_decref(o);
    free(text);
    return rc;
}

/* The Host header's name, without port, lower-cased into `out`. */
static int host_name(const char *host, char *out, size_t n)
{
    const char *end;
    size_t len, i;
    if (!host || !*host)
        return -1;
    if (host[0] == '[') {
        end = strchr(host, ']');
        if (!end)
            return -1;
        end++;
        if (*end && *end != ':')
            return -1;
    } else {
        end = strchr(host, ':');
        if (!end)
            end = host + strlen(host);
    }
    len = (size_t)(end - host);
    if (len == 0 || len >= n)
        return -1;
    for (i = 0; i < len; i++) {
        char c = host[i];
        out[i] = (char)(c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c);
    }
    out[len] = '\0';
    return 0;
}

static int host_allowed(const rpc_http_t *h, const char *host)
{
    char name[256];
    size_t i;
    if (host_name(host, name, sizeof name) != 0)
        return 0;
    for (i = 0; i < h->n_hosts; i++)
        if (strcmp(h->hosts[i], name) == 0)
            return 1;
    return 0;
}

/* An Origin header, when present, must be this API's own origin. */
static int origin_allowed(const char *origin, const char *host)
{
    if (!origin)
        return 1;
    return strncmp(origin, "http://", 7) == 0 && host && strcmp(origin + 7, host) == 0;
}

static void on_rpc_done(void *arg, const char *reply)
{
    http_req_t *req = arg;
    req->pending = NULL;
    req->answered = 1;
    req->reply = reply ? strdup(reply) : NULL;
    if (reply && !req->reply)
        req->reply = strdup(""); /* out of memory: an empty 500 below */
    if (req->suspended) {
        req->suspended = 0;
        MHD_resume_connection(req->conn);
        /* let libmicrohttpd send the answer on the loop's next turn */
        loop_timer_start(req->h->loop, &req->h->timer, 0, on_timer, req->h);
    }
}

static enum MHD_Result answer(http_req_t *req)
{
    if (!req->reply)
        return send_text(req->conn, MHD_HTTP_NO_CONTENT, "application/json", "");
    if (!*req->reply)
        return refuse(req->conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    return send_text(req->conn, MHD_HTTP_OK, "application/json", req->reply);
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_size, void **con_cls)
{
    rpc_http_t *h = cls;
    http_req_t *req = *con_cls;
    const char *host, *why, *cl;
    (void)version;

    if (!req) {
        host = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_HOST);
        if (!host_allowed(h, host))
            return refuse(conn, MHD_HTTP_MISDIRECTED_REQUEST, "bad_host",
                          "this Host is not served (allowed: rpc_allowed_hosts)");
        if (!origin_allowed(MHD_lookup_connection_value(conn, MHD_HEADER_KIND, "Origin"), host))
            return refuse(conn, MHD_HTTP_FORBIDDEN, "bad_origin",
                          "requests from other web pages are refused");
        if (strcmp(url, "/rpc") != 0)
            return refuse(conn, MHD_HTTP_NOT_FOUND, "not_found", "no such path: use POST /rpc");
        if (strcmp(method, MHD_HTTP_METHOD_POST) != 0)
            return refuse(conn, MHD_HTTP_METHOD_NOT_ALLOWED, "method_not_allowed", "use POST /rpc");
        if ((why = http_auth_refusal(conn, method, h->cuts_at_nul, h->token_digest)))
            return refuse(conn, MHD_HTTP_UNAUTHORIZED, "unauthorized", why);
        cl = MHD_lookup_connection_value(conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
        if (cl && strtoull(cl, NULL, 10) > h->max_body)
            return refuse(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "request body too large");
        if (!(req = calloc(1, sizeof *req)))
            return MHD_NO;
        req->h = h;
        req->conn = conn;
        *con_cls = req;
        return MHD_YES;
    }
    if (*upload_size) {
        if (!req->too_big) {
            if (req->len + *upload_size > h->max_body) {
                req->too_big = 1;
            } else {
                char *b = realloc(req->body, req->len + *upload_size + 1);
                if (!b)
                    return MHD_NO;
                req->body = b;
                memcpy(req->body + req->len, upload_data, *upload_size);
                req->len += *upload_size;
            }
        }
        *upload_size = 0;
        return MHD_YES;
    }
    if (req->too_big)
        return refuse(conn, MHD_HTTP_CONTENT_TOO_LARGE, "too_large", "request body too large");
    if (req->answered)
        return answer(req);
    if (req->pending) /* resumed without an answer: cannot happen; wait */
        return MHD_YES;
    if (rpc_exec(h->rpc, req->body ? req->body : "", req->len, on_rpc_done, req, &req->pending) !=
        0)
        return refuse(conn, MHD_HTTP_INTERNAL_SERVER_ERROR, "internal", "out of memory");
    if (req->answered)
        return answer(req);
    req->suspended = 1;
    MHD_suspend_connection(conn);
    return MHD_YES;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    http_req_t *req = *con_cls;
    (void)cls;
    (void)conn;
    (void)toe;
    if (!req)
        return;
    if (req->pending)
        rpc_req_abandon(req->pending);
    free(req->body);
    free(req->reply);
    free(req);
    *con_cls = NULL;
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));
static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    rpc_http_t *h = cls;
    char msg[512];
    size_t n;
    vsnprintf(msg, sizeof msg, fmt, ap);
    n = strlen(msg);
    while (n && (msg[n - 1] == '\n' || msg[n - 1] == '\r'))
        msg[--n] = '\0';
    LOG_DEBUG(h->log, "rpc", "libmicrohttpd: %s", msg);
}

static int parse_hosts(rpc_http_t *h, const char *text)
{
    char **list = config_list_split(text ? text : "");
    size_t i;
    int rc = list && list[0] ? 0 : -1;
    for (i = 0; rc == 0 && list[i]; i++) {
        if (h->n_hosts == MAX_HOSTS ||
            host_name(list[i], h->hosts[h->n_hosts], sizeof h->hosts[0]) != 0)
            rc = -1;
        else
            h->n_hosts++;
    }
    config_list_free(list);
    return rc;
}

rpc_http_t *rpc_http_new(loop_t *loop, rpc_t *rpc, const rpc_http_settings_t *s, log_t *log,
                         char *err, size_t err_len)
{
    rpc_http_t *h = calloc(1, sizeof *h);
    union {
        struct sockaddr sa;
        struct sockaddr_in v4;
        struct sockaddr_in6 v6;
    } sa;
    const union MHD_DaemonInfo *info;
    unsigned flags = MHD_USE_EPOLL | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;

    if (!h) {
        snprintf(err, err_len, "out of memory");
        return NULL;
    }
    h->loop = loop;
    h->rpc = rpc;
    h->log = log;
    h->epoll_fd = -1;
    h->max_body = s->max_body ? s->max_body : DEFAULT_MAX_BODY;
    h->cuts_at_nul = http_mhd_cuts_at_nul();
    if (!s->token || !*s->token ||
        http_token_digest(s->token, strlen(s->token), h->token_digest) != 0) {
        snprintf(err, err_len, "the JSON-RPC API needs a token");
        goto fail;
    }
    if (parse_hosts(h, s->allowed_hosts) != 0) {
        snprintf(err, err_len, "rpc_allowed_hosts: give 1 to %d comma-separated host names",
                 MAX_HOSTS);
        goto fail;
    }
    memset(&sa, 0, sizeof sa);
    if (inet_pton(AF_INET, s->address, &sa.v4.sin_addr) == 1) {
        sa.v4.sin_family = AF_INET;
        sa.v4.sin_port = htons((uint16_t)s->port);
    } else if (inet_pton(AF_INET6, s->address, &sa.v6.sin6_addr) == 1) {
        sa.v6.sin6_family = AF_INET6;
        sa.v6.sin6_port = htons((uint16_t)s->port);
        flags |= MHD_USE_IPv6;
    } else {
        snprintf(err, err_len, "rpc_address: \"%s\" is not an IPv4 or IPv6 address", s->address);
        goto fail;
    }
    h->mhd = MHD_start_daemon(
        flags, (uint16_t)s->port, NULL, NULL, on_access, h, MHD_OPTION_SOCK_ADDR, &sa.sa,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, h, MHD_OPTION_EXTERNAL_LOGGER, mhd_log, h,
        /* idle connections go after 15 s: a local process holding many
         * open costs the API's users little (waiting calls are suspended,
         * not idle, and are bounded by their own limit) */
        MHD_OPTION_CONNECTION_LIMIT, (unsigned)(s->max_connections ? s->max_connections : 256),
        MHD_OPTION_CONNECTION_TIMEOUT, 15u, MHD_OPTION_END);
    if (!h->mhd) {
        snprintf(err, err_len, "JSON-RPC API: cannot listen on %s port %u (in use?)", s->address,
                 s->port);
        goto fail;
    }
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_BIND_PORT);
    h->port = info ? info->port : s->port;
    info = MHD_get_daemon_info(h->mhd, MHD_DAEMON_INFO_EPOLL_FD);
    if (!info || info->epoll_fd < 0 ||
        loop_fd_add(loop, info->epoll_fd, POLLIN, on_epoll, h) != 0) {
        snprintf(err, err_len, "JSON-RPC API: no event descriptor");
        goto fail;
    }
    h->epoll_fd = info->epoll_fd;
    run_mhd(h);
    return h;
fail:
    rpc_http_free(h);
    return NULL;
}

unsigned rpc_http_port(const rpc_http_t *h)
{
    return h->port;
}

void rpc_http_free(rpc_http_t *h)
{
    if (!h)
        return;
    if (h->epoll_fd >= 0)
        loop_fd_del(h->loop, h->epoll_fd);
    loop_timer_stop(h->loop, &h->timer);
    if (h->mhd) {
        MHD_run(h->mhd); /* connections resumed by the last answers are let go */
        MHD_stop_daemon(h->mhd);
    }
    free(h);
}
