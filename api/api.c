/* SPDX-License-Identifier: MIT */
/*
 * The admin API's HTTP side on libmicrohttpd: daemon start and stop, the
 * per-request context (allocated in the first callback, the URI logger,
 * which also sees the raw path before libmicrohttpd decodes it; freed in
 * the completion callback), routing, the bearer token (the whole
 * Authorization header, NUL bytes included), the body limit (413 up front
 * from Content-Length; chunked bodies are counted, and discarded, and
 * refused once over the limit), replies, latency metrics, one database
 * connection per worker thread, the connection limits (in all, per client
 * address, idle time) and libmicrohttpd's messages, rate-limited so that
 * no client can fill the log.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <microhttpd.h>

#include "api_private.h"

/* A chunked body over the limit is read and discarded up to this many bytes
 * past the limit, to answer 413; beyond, the connection is closed. */
#define BODY_DISCARD_MAX (1024 * 1024)
/* How long api_free() lets waiting requests send their 503. */
#define CLOSE_GRACE_MS 1000
/* libmicrohttpd's messages: refused connections are reported at most once
 * per interval; other warnings at most MHD_LOG_BURST per interval. */
#define MHD_LOG_INTERVAL_MS 60000u
#define MHD_LOG_BURST       10u

const unsigned api_counted_codes[API_CODE_SLOTS - 1] = {200, 400, 401, 404, 405,
                                                        413, 500, 503, 504, 202};

static char oom_body[] = /* not const: the MHD 0.9.75 API takes void * */
    "{\"error\":{\"code\":\"internal_error\",\"message\":\"out of memory\"}}";

/* ---- settings --------------------------------------------------------------- */

void api_settings_default(api_settings_t *s)
{
    memset(s, 0, sizeof *s);
    s->address = "127.0.0.1";
    s->port = 8080;
    s->threads = 2;
    s->db_connect_timeout_s = 5;
    s->db_statement_timeout_ms = 10000;
    s->command_timeout_ms = 10000;
    s->max_body_bytes = 64 * 1024;
    s->stats_ttl_s = 10;
    s->max_connections = 128;
    s->max_per_client = 16;
    s->idle_timeout_s = 10;
}

typedef union {
    struct sockaddr sa;
    struct sockaddr_in v4;
    struct sockaddr_in6 v6;
} api_sockaddr_t;

static int parse_address(const char *text, unsigned port, api_sockaddr_t *out)
{
    memset(out, 0, sizeof *out);
    if (!text)
        return -1;
    if (inet_pton(AF_INET, text, &out->v4.sin_addr) == 1) {
        out->v4.sin_family = AF_INET;
        out->v4.sin_port = htons((uint16_t)port);
        return AF_INET;
    }
    if (inet_pton(AF_INET6, text, &out->v6.sin6_addr) == 1) {
        out->v6.sin6_family = AF_INET6;
        out->v6.sin6_port = htons((uint16_t)port);
        return AF_INET6;
    }
    return -1;
}

int api_address_is_loopback(const char *address)
{
    static const unsigned char mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};
    api_sockaddr_t sa;
    const unsigned char *b;

    switch (parse_address(address, 0, &sa)) {
    case AF_INET:
        return (ntohl(sa.v4.sin_addr.s_addr) >> 24) == 127;
    case AF_INET6:
        b = sa.v6.sin6_addr.s6_addr;
        if (IN6_IS_ADDR_LOOPBACK(&sa.v6.sin6_addr))
            return 1;
        return memcmp(b, mapped, sizeof mapped) == 0 && b[12] == 127;
    default:
        return 0;
    }
}

int api_settings_check(const api_settings_t *s, char *msg, size_t len)
{
    api_sockaddr_t sa;
    if (parse_address(s->address, 0, &sa) < 0)
        snprintf(msg, len, "api_address: '%s' is not an IPv4 or IPv6 address",
                 s->address ? s->address : "");
    else if (s->port > 65535)
        snprintf(msg, len, "api_port: %u is not a TCP port", s->port);
    else if (s->threads < 1 || s->threads > 64)
        snprintf(msg, len, "api_threads: %u is not in 1..64", s->threads);
    else if (!s->database_url || !*s->database_url)
        snprintf(msg, len, "the API needs a database URL");
    else if (!s->command_timeout_ms || !s->stats_ttl_s || !s->db_connect_timeout_s ||
             !s->idle_timeout_s)
        snprintf(msg, len, "API timeouts must be positive");
    else if (s->max_connections < s->threads)
        snprintf(msg, len,
                 "api_max_connections: %u is below api_threads (%u): each worker thread needs "
                 "one connection at least",
                 s->max_connections, s->threads);
    else if (s->max_per_client < 1 || s->max_per_client > s->max_connections)
        snprintf(msg, len,
                 "api_max_connections_per_client: %u is not in 1..api_max_connections (%u)",
                 s->max_per_client, s->max_connections);
    else if ((!s->token || !*s->token) && !api_address_is_loopback(s->address))
        snprintf(msg, len,
                 "api_address: %s is not loopback and no api_token is set: set api_token "
                 "(BITWEEN_API_TOKEN), listen on loopback, or set api_enabled = false",
                 s->address);
    else
        return 0;
    return -1;
}

/* ---- replies ------------------------------------------------------------------ */

static void set_reply(api_req_t *req, unsigned status, const char *ctype, char *buf, size_t len)
{
    free(req->body);
    req->replied = 1;
    if (!buf) {
        req->status = 500;
        req->content_type = "application/json";
        req->body = NULL;
        req->body_len = 0;
        return;
    }
    req->status = status;
    req->content_type = ctype;
    req->body = buf;
    req->body_len = len;
}

void api_reply_text(api_req_t *req, unsigned status, const char *content_type, char *buf,
                    size_t len)
{
    set_reply(req, status, content_type, buf, len);
}

void api_reply_json(api_req_t *req, unsigned status, json_t *body)
{
    char *text = body ? json_dumps(body, JSON_COMPACT) : NULL;
    json_decref(body);
    set_reply(req, status, "application/json", text, text ? strlen(text) : 0);
}

void api_reply_error(api_req_t *req, unsigned status, const char *code, const char *fmt, ...)
{
    char msg[600];
    va_list ap;
    json_t *m;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    m = json_string(msg);
    if (!m) /* not UTF-8: never echo it */
        m = json_string("the request was refused");
    api_reply_json(req, status, json_pack("{s:{s:s,s:o}}", "error", "code", code, "message", m));
}

void api_reply_cursor_error(api_req_t *req, int rc)
{
    if (rc == -2)
        api_reply_error(req, 500, "internal_error", "out of memory");
    else
        api_reply_error(req, 400, "bad_cursor", "malformed cursor");
}

void api_reply_store_error(api_req_t *req, int rc, const store_error_t *err)
{
    api_note_db(req->api, rc);
    switch (rc) {
    case STORE_EUNAVAIL:
        api_reply_error(req, 503, "database_unavailable", "database unavailable: %s", err->message);
        break;
    case STORE_EINVAL:
        api_reply_error(req, 400, "bad_request", "%s", err->message);
        break;
    case STORE_ENOTFOUND:
        api_reply_error(req, 404, "not_found", "%s", err->message);
        break;
    case STORE_ENOMEM:
        api_reply_error(req, 500, "internal_error", "out of memory");
        break;
    default:
        LOG_ERROR(req->api->log, API_SUB, "database error: %s", err->message);
        api_reply_error(req, 500, "internal_error", "database error: %s", err->message);
    }
}

/* ---- request helpers ---------------------------------------------------------- */

const char *api_query(api_req_t *req, const char *key, size_t *len)
{
    const char *v = NULL;
    size_t n = 0;
    if (MHD_lookup_connection_value_n(req->conn, MHD_GET_ARGUMENT_KIND, key, strlen(key), &v, &n) !=
        MHD_YES)
        return NULL;
    if (!v) { /* "?key" without '=' */
        v = "";
        n = 0;
    }
    if (len)
        *len = n;
    return v;
}

int api_query_limit(api_req_t *req, unsigned long def, unsigned long max, size_t *out)
{
    size_t n;
    unsigned long v;
    const char *text = api_query(req, "limit", &n);
    if (!text) {
        *out = def;
        return 0;
    }
    if (api_parse_uint(text, n, 1, max, &v) != 0) {
        api_reply_error(req, 400, "bad_limit", "limit must be an integer from 1 to %lu", max);
        return -1;
    }
    *out = v;
    return 0;
}

const char *api_param_jid(api_req_t *req, size_t i)
{
    char msg[128];
    if (i >= req->n_params || api_jid_check(req->params[i], msg, sizeof msg) != 0) {
        api_reply_error(req, 400, "bad_jid", "%s", i < req->n_params ? msg : "no JID");
        return NULL;
    }
    return req->params[i];
}

store_t *api_store(api_req_t *req)
{
    api_t *api = req->api;
    store_t *st = pthread_getspecific(api->store_key);
    store_options_t opts;
    api_store_slot_t *slot;

    if (st)
        return st;
    opts.connect_timeout_s = api->s.db_connect_timeout_s;
    opts.statement_timeout_ms = api->s.db_statement_timeout_ms;
    opts.application_name = "bitween-api";
    slot = calloc(1, sizeof *slot);
    if (!slot || !(slot->st = store_new(api->s.database_url, &opts))) {
        free(slot);
        api_reply_error(req, 500, "internal_error", "out of memory");
        return NULL;
    }
    if (pthread_setspecific(api->store_key, slot->st) != 0) {
        store_free(slot->st);
        free(slot);
        api_reply_error(req, 500, "internal_error", "out of memory");
        return NULL;
    }
    pthread_mutex_lock(&api->stores_mu);
    slot->next = api->stores;
    api->stores = slot;
    pthread_mutex_unlock(&api->stores_mu);
    return slot->st;
}

/* ---- libmicrohttpd callbacks ------------------------------------------------------ */

/* libmicrohttpd's messages about one client's connection: a peer that
 * went away mid-request or sent a malformed request. Any client can cause
 * them, as often as it likes. Matched on the format string, which
 * libmicrohttpd does not translate. */
static const char *const mhd_client_msgs[] = {
    "Connection was closed by remote side",      "Connection socket is closed when reading",
    "Socket has been disconnected when reading", "Error processing request (",
    "Too late to send an error response",        "Failed to send ",
    "Received HTTP/1.1 request without",         "Too large value of 'Content-Length'",
    "Failed to parse `Content-Length'",          "Not enough memory in pool to ",
};

/* libmicrohttpd's message for a connection refused at a limit (in all or
 * per client address); it has no other way to tell us. */
#define MHD_MSG_REFUSED "Server reached connection limit"

static int mhd_msg_is(const char *fmt, const char *prefix)
{
    return strncmp(fmt, prefix, strlen(prefix)) == 0;
}

/* A connection refused: counted, reported at most once per interval. */
static void mhd_log_refused(api_t *api)
{
    uint64_t now = api_now_ms(), before = 0;
    int report = 0;

    atomic_fetch_add(&api->connections_refused, 1);
    pthread_mutex_lock(&api->mhd_log_mu);
    if (!api->refused_logged_ms || now - api->refused_logged_ms >= MHD_LOG_INTERVAL_MS) {
        report = 1;
        before = api->refused_unlogged;
        api->refused_logged_ms = now ? now : 1;
        api->refused_unlogged = 0;
    } else {
        api->refused_unlogged++;
    }
    pthread_mutex_unlock(&api->mhd_log_mu);
    if (report)
        LOG_WARN(api->log, API_SUB,
                 "connection refused at a limit (api_max_connections_per_client = %u, "
                 "api_max_connections = %u); %llu more since the last such line, which comes "
                 "at most once a minute; bitween_api_connections_refused_total counts them all",
                 api->s.max_per_client, api->s.max_connections, (unsigned long long)before);
}

static void mhd_format(char *line, size_t len, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

/* One line of text from a libmicrohttpd message, without its line end. */
static void mhd_format(char *line, size_t len, const char *fmt, va_list ap)
{
    size_t n;
    vsnprintf(line, len, fmt, ap);
    n = strlen(line);
    while (n && (line[n - 1] == '\n' || line[n - 1] == '\r'))
        line[--n] = '\0';
}

static void mhd_log(void *cls, const char *fmt, va_list ap) __attribute__((format(printf, 2, 0)));

static void mhd_log(void *cls, const char *fmt, va_list ap)
{
    api_t *api = cls;
    char line[512];
    size_t i;
    uint64_t now, dropped = 0;
    int pass;

    if (mhd_msg_is(fmt, MHD_MSG_REFUSED)) {
        mhd_log_refused(api);
        return;
    }
    for (i = 0; i < sizeof mhd_client_msgs / sizeof mhd_client_msgs[0]; i++) {
        if (mhd_msg_is(fmt, mhd_client_msgs[i])) {
            if (!log_enabled(api->log, LOG_LEVEL_DEBUG))
                return;
            mhd_format(line, sizeof line, fmt, ap);
            LOG_DEBUG(api->log, "api/mhd", "%s", line);
            return;
        }
    }
    /* Anything else is worth a warning, but not thousands of them. */
    now = api_now_ms();
    pthread_mutex_lock(&api->mhd_log_mu);
    if (!api->msg_window_ms || now - api->msg_window_ms >= MHD_LOG_INTERVAL_MS) {
        dropped = api->msg_suppressed;
        api->msg_window_ms = now ? now : 1;
        api->msg_in_window = 0;
        api->msg_suppressed = 0;
    }
    pass = api->msg_in_window < MHD_LOG_BURST;
    if (pass)
        api->msg_in_window++;
    else
        api->msg_suppressed++;
    pthread_mutex_unlock(&api->mhd_log_mu);
    if (dropped)
        LOG_WARN(api->log, "api/mhd", "%llu more libmicrohttpd messages were not logged",
                 (unsigned long long)dropped);
    if (!pass)
        return;
    mhd_format(line, sizeof line, fmt, ap);
    LOG_WARN(api->log, "api/mhd", "%s", line);
}

/* Connections opened and closed: the gauge of open connections. */
static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode toe)
{
    api_t *api = cls;
    (void)conn;
    (void)socket_context;
    if (toe == MHD_CONNECTION_NOTIFY_STARTED)
        atomic_fetch_add(&api->connections, 1);
    else if (toe == MHD_CONNECTION_NOTIFY_CLOSED)
        atomic_fetch_sub(&api->connections, 1);
}

/* First callback of a request: the raw URI, before any decoding. */
static void *on_uri(void *cls, const char *uri, struct MHD_Connection *conn)
{
    api_t *api = cls;
    api_req_t *req = calloc(1, sizeof *req);
    size_t n;
    if (!req)
        return NULL;
    req->api = api;
    req->conn = conn;
    req->start_us = api_now_us();
    req->route = API_MAX_ROUTES;
    n = strcspn(uri, "?");
    req->path = malloc(n + 1);
    if (!req->path) {
        free(req);
        return NULL;
    }
    memcpy(req->path, uri, n);
    req->path[n] = '\0';
    return req;
}

static void req_free(api_req_t *req)
{
    size_t i;
    api_req_release_waiter(req);
    for (i = 0; i < req->n_params; i++)
        free(req->params[i]);
    free(req->path);
    free(req->body);
    free(req);
}

static size_t code_slot(unsigned status)
{
    size_t i;
    for (i = 0; i < API_CODE_SLOTS - 1; i++)
        if (api_counted_codes[i] == status)
            return i;
    return API_CODE_SLOTS - 1;
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls,
                         enum MHD_RequestTerminationCode toe)
{
    api_t *api = cls;
    api_req_t *req = *con_cls;
    (void)conn;
    (void)toe;
    if (!req)
        return;
    if (req->stage == 2) {
        hist_observe_us(&api->hist[req->route < API_MAX_ROUTES ? req->route : API_MAX_ROUTES],
                        api_now_us() - req->start_us);
        atomic_fetch_add(&api->responses[code_slot(req->status)], 1);
    }
    req_free(req);
    *con_cls = NULL;
}

static enum MHD_Result queue_reply(api_req_t *req)
{
    struct MHD_Response *resp;
    enum MHD_Result ret;

    if (req->body)
        resp = MHD_create_response_from_buffer(req->body_len, req->body, MHD_RESPMEM_MUST_FREE);
    else
        resp =
            MHD_create_response_from_buffer(sizeof oom_body - 1, oom_body, MHD_RESPMEM_PERSISTENT);
    if (!resp)
        return MHD_NO;
    req->body = NULL; /* the response owns it */
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CONTENT_TYPE, req->content_type);
    MHD_add_response_header(resp, MHD_HTTP_HEADER_CACHE_CONTROL, "no-store");
    if (req->allow[0])
        MHD_add_response_header(resp, MHD_HTTP_HEADER_ALLOW, req->allow);
    if (req->www_authenticate)
        MHD_add_response_header(resp, MHD_HTTP_HEADER_WWW_AUTHENTICATE, "Bearer realm=\"bitween\"");
    ret = MHD_queue_response(req->conn, req->status, resp);
    MHD_destroy_response(resp);
    req->stage = 2;
    return ret;
}

/* Whether the request announces a body, and its declared length (-1:
 * chunked or unknown). */
static int request_body(api_req_t *req, long long *declared)
{
    const char *cl =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONTENT_LENGTH);
    const char *te =
        MHD_lookup_connection_value(req->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_TRANSFER_ENCODING);
    *declared = -1;
    if (cl) {
        char *end;
        unsigned long long v = strtoull(cl, &end, 10);
        if (end != cl && *end == '\0') {
            *declared = v > (unsigned long long)INT64_MAX ? INT64_MAX : (long long)v;
            return v > 0;
        }
        return 1;
    }
    return te != NULL;
}

/* NULL when the request carries the right bearer token; else why not. */
static const char *auth_refusal(api_req_t *req, const char *method)
{
    return http_auth_refusal(req->conn, method, req->api->mhd_cuts_at_nul, req->api->token_digest);
}

/* Route, decode the path, check the body size and the token. Sets a reply
 * on refusal. */
static void request_start(api_req_t *req, const char *method)
{
    api_t *api = req->api;
    const api_route_t *routes;
    api_param_t raw[API_MAX_PARAMS];
    size_t index, np = 0, i;
    long long declared;
    int rc;

    api_routes(&routes);
    rc = api_route_match(method, req->path, &index, raw, &np, req->allow, sizeof req->allow);
    if (rc == API_MATCH_NOT_FOUND) {
        api_reply_error(req, 404, "not_found", "no such route");
        return;
    }
    if (rc == API_MATCH_BAD_METHOD) {
        api_reply_error(req, 405, "method_not_allowed",
                        "method %s is not allowed here (allowed: %s)", method, req->allow);
        return;
    }
    req->allow[0] = '\0';
    req->route = index;
    for (i = 0; i < np; i++) {
        rc = api_percent_decode(raw[i].p, raw[i].n, &req->params[i], NULL);
        if (rc == -2) {
            api_reply_error(req, 500, "internal_error", "out of memory");
            return;
        }
        if (rc) {
            api_reply_error(req, 400, "bad_path", "malformed percent-encoding in the path");
            return;
        }
        req->n_params++;
    }
    if (request_body(req, &declared) && declared > (long long)api->s.max_body_bytes) {
        api_reply_error(req, 413, "payload_too_large", "request bodies are limited to %zu bytes",
                        api->s.max_body_bytes);
        return;
    }
    if (routes[index].flags & API_ROUTE_AUTH) {
        const char *why;
        if (!api->have_token) {
            req->www_authenticate = 1;
            api_reply_error(req, 401, "token_not_configured",
                            "no API token is configured: set api_token (BITWEEN_API_TOKEN)");
        } else if ((why = auth_refusal(req, method)) != NULL) {
            req->www_authenticate = 1;
            api_reply_error(req, 401, "unauthorized", "%s", why);
        }
    }
}

static enum MHD_Result on_access(void *cls, struct MHD_Connection *conn, const char *url,
                                 const char *method, const char *version, const char *upload_data,
                                 size_t *upload_data_size, void **con_cls)
{
    api_t *api = cls;
    api_req_t *req = *con_cls;
    const api_route_t *routes;
    long long declared;
    (void)url;
    (void)version;
    (void)upload_data;

    if (!req)
        return MHD_NO; /* out of memory in on_uri */
    req->conn = conn;
    if (req->stage == 0) {
        req->stage = 1;
        request_start(req, method);
        /* A refusal goes out now when a body follows (libmicrohttpd then
         * skips the body and closes); otherwise after the request, which
         * keeps the connection alive. */
        if (req->replied && request_body(req, &declared))
            return queue_reply(req);
        return MHD_YES;
    }
    if (req->stage == 2)
        return MHD_YES;
    if (*upload_data_size) {
        req->body_bytes += *upload_data_size;
        *upload_data_size = 0;
        if (req->body_bytes > api->s.max_body_bytes) {
            req->body_too_large = 1;
            if (req->body_bytes - api->s.max_body_bytes > BODY_DISCARD_MAX)
                return MHD_NO;
        }
        return MHD_YES;
    }
    /* The whole request is in. */
    if (!req->replied && req->body_too_large)
        api_reply_error(req, 413, "payload_too_large", "request bodies are limited to %zu bytes",
                        api->s.max_body_bytes);
    if (!req->replied) {
        if (req->waiter) {
            int pending;
            pthread_mutex_lock(&req->waiter->mu);
            pending = req->waiter->outcome == API_WAIT_PENDING;
            pthread_mutex_unlock(&req->waiter->mu);
            if (pending)
                return MHD_YES;
        }
        api_routes(&routes);
        routes[req->route].handler(req);
    }
    if (req->replied)
        return queue_reply(req);
    return MHD_YES; /* suspended until a command completes */
}

/* ---- start and stop -------------------------------------------------------------- */

static char *dupstr(const char *s)
{
    return s ? strdup(s) : NULL;
}

static int cond_init_monotonic(pthread_cond_t *c)
{
    pthread_condattr_t attr;
    int rc;
    if (pthread_condattr_init(&attr) != 0)
        return -1;
    rc = pthread_condattr_setclock(&attr, CLOCK_MONOTONIC) == 0 && pthread_cond_init(c, &attr) == 0
             ? 0
             : -1;
    pthread_condattr_destroy(&attr);
    return rc;
}

static void listen_text(char *out, size_t len, int family, const char *address, int port)
{
    if (family == AF_INET6)
        snprintf(out, len, "[%s]:%d", address, port);
    else
        snprintf(out, len, "%s:%d", address, port);
}

api_t *api_new(const api_settings_t *s, component_t *comp, log_t *log)
{
    api_t *api;
    api_sockaddr_t sa;
    char msg[256];
    int family;
    unsigned flags;
    const union MHD_DaemonInfo *info;
    store_options_t opts;
    sigset_t block, saved;
    int masked = 0;

    if (api_settings_check(s, msg, sizeof msg) != 0) {
        LOG_ERROR(log, API_SUB, "%s", msg);
        return NULL;
    }
    api = calloc(1, sizeof *api);
    if (!api)
        goto oom;
    if (pthread_mutex_init(&api->stores_mu, NULL) != 0) {
        free(api);
        goto oom;
    }
    if (pthread_mutex_init(&api->wait_mu, NULL) != 0 || cond_init_monotonic(&api->wait_cond) ||
        pthread_mutex_init(&api->refresh_mu, NULL) != 0 ||
        cond_init_monotonic(&api->refresh_cond) || pthread_mutex_init(&api->counts_mu, NULL) != 0 ||
        pthread_mutex_init(&api->mhd_log_mu, NULL) != 0) {
        /* Only at start-up, and practically never: leak the primitives. */
        pthread_mutex_destroy(&api->stores_mu);
        free(api);
        goto oom;
    }
    api->s = *s;
    api->comp = comp;
    api->log = log;
    api->started_ms = api_now_ms();
    {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        api->started_wall = (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
    }
    atomic_store(&api->db_up, 0);
    atomic_store(&api->connections, 0);
    atomic_store(&api->connections_refused, 0);
    {
        api->mhd_cuts_at_nul = http_mhd_cuts_at_nul();
    }
    api->own_address = dupstr(s->address);
    api->own_url = dupstr(s->database_url);
    api->s.address = api->own_address;
    api->s.database_url = api->own_url;
    api->s.token = NULL; /* only its digest is kept */
    if (!api->own_address || !api->own_url)
        goto fail_oom;
    if (s->token && *s->token) {
        if (http_token_digest(s->token, strlen(s->token), api->token_digest) != 0)
            goto fail_oom;
        api->have_token = 1;
        if (strlen(s->token) < 16)
            LOG_WARN(log, API_SUB,
                     "api_token is shorter than 16 characters: use a long random "
                     "token");
    } else {
        LOG_WARN(log, API_SUB, "no api_token configured: /api/v1 answers 401 to every request");
    }
    if (pthread_key_create(&api->store_key, NULL) != 0)
        goto fail_oom;
    api->have_key = 1;
    opts.connect_timeout_s = s->db_connect_timeout_s;
    opts.statement_timeout_ms = s->db_statement_timeout_ms;
    opts.application_name = "bitween-api";
    api->bg_store = store_new(s->database_url, &opts);
    if (!api->bg_store)
        goto fail_oom;

    /* The API's threads inherit this mask: process signals (SIGTERM,
     * SIGHUP, ...) must reach the thread that runs the component's loop. */
    sigemptyset(&block);
    sigaddset(&block, SIGTERM);
    sigaddset(&block, SIGINT);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGQUIT);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGUSR2);
    pthread_sigmask(SIG_BLOCK, &block, &saved);
    masked = 1;

    family = parse_address(s->address, s->port, &sa);
    errno = 0;
    flags = MHD_USE_AUTO_INTERNAL_THREAD | MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG;
    /* An IPv6 socket takes IPv4 too (IPV6_V6ONLY off): "::" serves every
     * address of the host, as operators expect of a wildcard. */
    if (family == AF_INET6)
        flags |= MHD_USE_DUAL_STACK;
    /* The logger first, so that errors about the other options reach it.
     * The total is split between the worker threads; the per-client limit
     * is shared by them. */
    api->daemon = MHD_start_daemon(
        flags, (uint16_t)s->port, NULL, NULL, on_access, api, MHD_OPTION_EXTERNAL_LOGGER, mhd_log,
        api, MHD_OPTION_SOCK_ADDR, &sa.sa, MHD_OPTION_THREAD_POOL_SIZE, (unsigned int)s->threads,
        MHD_OPTION_URI_LOG_CALLBACK, on_uri, api, MHD_OPTION_NOTIFY_COMPLETED, on_completed, api,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, api, MHD_OPTION_CONNECTION_TIMEOUT,
        (unsigned int)s->idle_timeout_s, MHD_OPTION_CONNECTION_LIMIT,
        (unsigned int)s->max_connections, MHD_OPTION_PER_IP_CONNECTION_LIMIT,
        (unsigned int)s->max_per_client, MHD_OPTION_END);
    if (!api->daemon) {
        int e = errno;
        LOG_ERROR(log, API_SUB, "cannot listen on %s port %u: %s", s->address, s->port,
                  e ? strerror(e) : "libmicrohttpd refused to start");
        goto fail;
    }
    info = MHD_get_daemon_info(api->daemon, MHD_DAEMON_INFO_BIND_PORT);
    api->port = info ? (int)info->port : (int)s->port;
    listen_text(api->listen_text, sizeof api->listen_text, family, s->address, api->port);
    if (api_bg_start(api) != 0) {
        LOG_ERROR(log, API_SUB, "cannot start the API's background threads");
        goto fail;
    }
    pthread_sigmask(SIG_SETMASK, &saved, NULL);
    LOG_INFO(log, API_SUB,
             "listening on %s%s (%u worker thread%s; at most %u connections, %u per client "
             "address, closed after %u s idle)",
             api->listen_text,
             family == AF_INET6 && IN6_IS_ADDR_UNSPECIFIED(&sa.v6.sin6_addr) ? ", IPv6 and IPv4"
                                                                             : "",
             s->threads, s->threads == 1 ? "" : "s", s->max_connections, s->max_per_client,
             s->idle_timeout_s);
    return api;

fail_oom:
    LOG_ERROR(log, API_SUB, "out of memory starting the API");
fail:
    if (masked)
        pthread_sigmask(SIG_SETMASK, &saved, NULL);
    api_free(api);
    return NULL;
oom:
    LOG_ERROR(log, API_SUB, "out of memory starting the API");
    return NULL;
}

int api_port(const api_t *api)
{
    return api->port;
}

void api_free(api_t *api)
{
    api_waiter_t *w;
    api_store_slot_t *slot, *next;
    MHD_socket listen_fd = MHD_INVALID_SOCKET;

    if (!api)
        return;
    if (api->daemon)
        listen_fd = MHD_quiesce_daemon(api->daemon);
    /* Answer the requests waiting for a command (503), and give them a
     * moment to be sent before the daemon closes every connection. */
    pthread_mutex_lock(&api->wait_mu);
    api->closing = 1;
    for (w = api->waiters; w; w = w->next)
        api_waiter_finish(w, API_WAIT_SHUTDOWN, NULL);
    if (api->waiters) {
        uint64_t end = api_now_ms() + CLOSE_GRACE_MS;
        while (api->waiters && api_now_ms() < end) {
            struct timespec ts;
            ts.tv_sec = (time_t)(end / 1000u);
            ts.tv_nsec = (long)(end % 1000u) * 1000000L;
            pthread_cond_timedwait(&api->wait_cond, &api->wait_mu, &ts);
        }
    }
    pthread_mutex_unlock(&api->wait_mu);
    if (api->daemon)
        MHD_stop_daemon(api->daemon);
    if (listen_fd != MHD_INVALID_SOCKET)
        close(listen_fd);
    api_bg_stop(api);
    for (slot = api->stores; slot; slot = next) {
        next = slot->next;
        store_free(slot->st);
        free(slot);
    }
    store_free(api->bg_store);
    if (api->have_key)
        pthread_key_delete(api->store_key);
    pthread_mutex_destroy(&api->stores_mu);
    pthread_mutex_destroy(&api->wait_mu);
    pthread_cond_destroy(&api->wait_cond);
    pthread_mutex_destroy(&api->refresh_mu);
    pthread_cond_destroy(&api->refresh_cond);
    pthread_mutex_destroy(&api->counts_mu);
    pthread_mutex_destroy(&api->mhd_log_mu);
    free(api->own_address);
    free(api->own_url);
    free(api);
}
