/* SPDX-License-Identifier: MIT */
/*
 * Internals of the admin API shared by its files: the API context, the
 * per-request context handed to the route handlers, the reply helpers, the
 * waiter through which a command's completion (in the XMPP thread) reaches
 * a suspended HTTP request, and the pure helpers (path matching, percent
 * decoding, JID checks, cursors, constant-time compare, Prometheus text)
 * that the unit tests call directly.
 */
#ifndef BITWEEN_API_API_PRIVATE_H
#define BITWEEN_API_API_PRIVATE_H

#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#include <jansson.h>

#include "api.h"
#include "hist.h"
#include "httpauth.h"
#include "store.h"

#define API_SUB "api"

/* ---- growable text buffer ------------------------------------------------ */

/** A NUL-terminated growing string; `oom` sticks once an append failed. */
typedef struct api_buf {
    char *p;
    size_t len, cap;
    int oom;
} api_buf_t;

void api_buf_add(api_buf_t *b, const char *s, size_t n);
void api_buf_printf(api_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/** Take the text (caller frees); NULL after an allocation failure. */
char *api_buf_take(api_buf_t *b, size_t *len) __attribute__((warn_unused_result));
void api_buf_free(api_buf_t *b);

/* ---- pure helpers (util.c) ------------------------------------------------- */

/**
 * Percent-decode `n` bytes of `in` into a new NUL-terminated string
 * (`*out`, caller frees; `*out_len` may be NULL). '+' is kept as is (path
 * segments). Returns 0, -1 for a malformed escape or an escaped NUL, -2
 * when out of memory.
 */
int api_percent_decode(const char *in, size_t n, char **out, size_t *out_len);

/** Whether `n` bytes of `s` are valid UTF-8 without control characters. */
int api_text_ok(const char *s, size_t n);

/** Number of UTF-8 characters in valid UTF-8 `s` of `n` bytes. */
size_t api_utf8_chars(const char *s, size_t n);

/* Longest bare JID accepted (RFC 7622: 1023 bytes per part, plus '@'). */
#define API_JID_MAX 2047

/**
 * Check a bare user JID, node@domain: one '@' with non-empty parts of at
 * most 1023 bytes each, no '/', no spaces, valid UTF-8. ASCII letters are
 * lowered in place (servers store JIDs case-folded). Returns 0, or -1 with
 * a message (`msg`, `len` bytes).
 */
int api_jid_check(char *jid, char *msg, size_t len);

/**
 * Parse a decimal page size: digits only, `lo`..`hi`. Returns 0 and
 * `*out`, or -1.
 */
int api_parse_uint(const char *s, size_t n, unsigned long lo, unsigned long hi, unsigned long *out);

#define API_TOKEN_DIGEST HTTP_TOKEN_DIGEST

/**
 * Whether `address` (an IPv4 or IPv6 literal) is a loopback address:
 * 127.0.0.0/8, ::1, or 127.0.0.0/8 mapped into IPv6 (::ffff:127.0.0.1).
 * Returns 1 or 0 (also for text that is not an address).
 */
int api_address_is_loopback(const char *address);

/** base64url without padding: a new string (caller frees) or NULL. */
char *api_b64url_encode(const unsigned char *in, size_t n) __attribute__((warn_unused_result));
/**
 * Strict base64url decode (no padding, no whitespace, unused bits zero)
 * into a new buffer with a NUL after `*out_len` bytes. Returns 0, -1 for
 * malformed input, -2 when out of memory.
 */
int api_b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len);

/* ---- cursors (cursor.c) ---------------------------------------------------- */

/* Longest cursor text accepted. */
#define API_CURSOR_MAX 8192

/** Opaque cursor after user `jid`: a new string (caller frees) or NULL. */
char *api_cursor_users_encode(const char *jid) __attribute__((warn_unused_result));
/** Decode it: `*jid` new (caller frees). 0, -1 malformed, -2 out of memory. */
int api_cursor_users_decode(const char *text, char **jid);

/** A decoded search cursor; strings owned (api_search_cursor_clear()). */
typedef struct api_search_cursor {
    char *name;
    int64_t resource_id;
    char *hash;
} api_search_cursor_t;

char *api_cursor_search_encode(const char *name, int64_t resource_id, const char *hash)
    __attribute__((warn_unused_result));
int api_cursor_search_decode(const char *text, api_search_cursor_t *out);
void api_search_cursor_clear(api_search_cursor_t *c);

/* ---- routing (router.c) ---------------------------------------------------- */

#define API_MAX_PARAMS 2

/** A path segment captured by a "{name}" in the pattern (raw, not decoded). */
typedef struct api_param {
    const char *p;
    size_t n;
} api_param_t;

enum { API_MATCH_OK = 0, API_MATCH_NOT_FOUND = -1, API_MATCH_BAD_METHOD = -2 };

/**
 * Match `method` and a raw request path (no query) against the table.
 * API_MATCH_OK: `*index` is the route, `params` (API_MAX_PARAMS) the raw
 * captures. API_MATCH_BAD_METHOD: the path exists; `allow` receives the
 * allowed methods ("GET, HEAD"). HEAD is served by GET routes.
 */
int api_route_match(const char *method, const char *path, size_t *index, api_param_t *params,
                    size_t *n_params, char *allow, size_t allow_len);

/* ---- Prometheus text (prom.c) ---------------------------------------------- */

/** "# HELP name help\n# TYPE name type\n". */
void api_prom_family(api_buf_t *b, const char *name, const char *type, const char *help);
/** `name{labels} value\n`; `labels` is "" or `k="v",...` (already escaped). */
void api_prom_sample(api_buf_t *b, const char *name, const char *labels, double value);
void api_prom_sample_u64(api_buf_t *b, const char *name, const char *labels, uint64_t value);
/** Append `value` escaped for a label value (\\, \", \n). */
void api_prom_escape(api_buf_t *b, const char *value);
/**
 * A histogram's samples: `counts` has `n + 1` per-bucket (not cumulative)
 * counts, the last for observations above `bounds[n - 1]`; written as
 * cumulative `_bucket{...,le="…"}` lines ending with le="+Inf", then
 * `_sum` and `_count` (the total of `counts`).
 */
void api_prom_histogram(api_buf_t *b, const char *name, const char *labels, const double *bounds,
                        const uint64_t *counts, size_t n, double sum);

/* ---- the API context --------------------------------------------------------- */

/* Routes at most (the table is static). */
#define API_MAX_ROUTES 32

/* Response codes counted in metrics, plus one slot for the others. */
#define API_CODE_SLOTS 11
extern const unsigned api_counted_codes[API_CODE_SLOTS - 1];

typedef struct api_waiter api_waiter_t;

/** A store_t made for one HTTP thread; the API frees them all at the end. */
typedef struct api_store_slot {
    store_t *st;
    struct api_store_slot *next;
} api_store_slot_t;

struct api {
    api_settings_t s; /* strings point at the owned copies below */
    char *own_address, *own_url;
    int have_token;
    unsigned char token_digest[API_TOKEN_DIGEST];
    int mhd_cuts_at_nul; /* libmicrohttpd cuts header values at a NUL (before 1.0) */
    component_t *comp;
    log_t *log;
    struct MHD_Daemon *daemon;
    int port;
    char listen_text[64]; /* "127.0.0.1:8080", "[::1]:8080" */
    uint64_t started_ms;  /* monotonic */
    double started_wall;  /* seconds since the epoch */

    /* one store per HTTP thread */
    pthread_key_t store_key;
    int have_key;
    pthread_mutex_t stores_mu;
    api_store_slot_t *stores;

    /* requests suspended until a command completes; the timer thread */
    pthread_mutex_t wait_mu;
    pthread_cond_t wait_cond; /* list changed (CLOCK_MONOTONIC) */
    api_waiter_t *waiters;
    int closing;
    pthread_t timer_thread;
    int timer_started;
    int timer_stop; /* under wait_mu */

    /* the refresh thread: registry counts and database state */
    pthread_mutex_t refresh_mu;
    pthread_cond_t refresh_cond; /* CLOCK_MONOTONIC */
    pthread_t refresh_thread;
    int refresh_started;
    int bg_stop; /* under refresh_mu */
    store_t *bg_store;
    pthread_mutex_t counts_mu;
    int have_counts;
    store_stats_t counts;
    uint64_t counts_ms; /* monotonic time of the counts */
    double counts_wall;
    atomic_int db_up; /* last database call: 1 ok, 0 away */

    /* metrics of the API itself */
    hist_t hist[API_MAX_ROUTES + 1]; /* last: unmatched requests */
    atomic_ullong responses[API_CODE_SLOTS];
    atomic_uint connections;           /* open now */
    atomic_ullong connections_refused; /* at a connection limit */

    /* libmicrohttpd's messages, rate-limited (api.c, mhd_log()) */
    pthread_mutex_t mhd_log_mu;
    uint64_t refused_logged_ms; /* last report of refused connections; 0: none yet */
    uint64_t refused_unlogged;  /* refused since then */
    uint64_t msg_window_ms;     /* start of the current window of other messages */
    unsigned msg_in_window;
    uint64_t msg_suppressed; /* dropped in the current window */
};

/* Monotonic milliseconds / microseconds. */
uint64_t api_now_ms(void);
uint64_t api_now_us(void);

/* ---- per-request context ---------------------------------------------------- */

typedef enum {
    API_WAIT_PENDING,
    API_WAIT_DONE,    /* the component answered: see `res` */
    API_WAIT_TIMEOUT, /* no answer before the deadline */
    API_WAIT_SHUTDOWN /* the API is stopping, or the command was refused */
} api_wait_outcome_t;

struct api_req {
    api_t *api;
    struct MHD_Connection *conn;
    uint64_t start_us;
    char *path;   /* raw request path, up to '?' */
    int stage;    /* 0 first call, 1 reading the body, 2 answered */
    size_t route; /* index in the table, or API_MAX_ROUTES: unmatched */
    char *params[API_MAX_PARAMS];
    size_t n_params;
    uint64_t body_bytes;
    int body_too_large;
    /* the reply, once set */
    int replied;
    unsigned status;
    char *body;
    size_t body_len;
    const char *content_type;
    char allow[64];       /* Allow header for 405 */
    int www_authenticate; /* WWW-Authenticate: Bearer */
    /* a command in flight (evict, republish) */
    api_waiter_t *waiter;
};

typedef struct api_req api_req_t;

/* Handlers: one per file. */
void api_h_healthz(api_req_t *req);
void api_h_readyz(api_req_t *req);
void api_h_metrics(api_req_t *req);
void api_h_users(api_req_t *req);
void api_h_user(api_req_t *req);
void api_h_share(api_req_t *req);
void api_h_search(api_req_t *req);
void api_h_stats(api_req_t *req);
void api_h_evict(api_req_t *req);
void api_h_republish(api_req_t *req);

/* ---- reply helpers (api.c) ------------------------------------------------- */

/** Reply with `body` as JSON (stolen; NULL means out of memory: 500). */
void api_reply_json(api_req_t *req, unsigned status, json_t *body);
/** Reply {"error":{"code":code,"message":...}}. */
void api_reply_error(api_req_t *req, unsigned status, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
/** Reply with text `buf` (stolen; NULL: 500). */
void api_reply_text(api_req_t *req, unsigned status, const char *content_type, char *buf,
                    size_t len);
/** Reply for a failed store call: 503 when away, 400 invalid, 404, else 500. */
void api_reply_store_error(api_req_t *req, int rc, const store_error_t *err);
/** Reply for a failed cursor decode (`rc` -2: out of memory, 500; else 400). */
void api_reply_cursor_error(api_req_t *req, int rc);

/** A GET parameter, percent-decoded (borrowed); NULL when absent or
 *  containing an escaped NUL. */
const char *api_query(api_req_t *req, const char *key, size_t *len);

/**
 * Page size from `?limit=` (absent: `def`; 1..`max`). Returns 0, or -1
 * after replying 400 bad_limit.
 */
int api_query_limit(api_req_t *req, unsigned long def, unsigned long max, size_t *out);

/**
 * Path parameter `i` checked as a user JID (lowered in place). Returns it,
 * or NULL after replying 400 bad_jid.
 */
const char *api_param_jid(api_req_t *req, size_t i);

/** This thread's store (created on first use). NULL after replying 500. */
store_t *api_store(api_req_t *req);

/** Record the outcome of a store call for the database gauge. */
void api_note_db(api_t *api, int rc);

/* ---- shared views and the command hand-over (views.c) ------------------------ */

/** [{"address":…,"port":…}] (new reference) or NULL when out of memory. */
json_t *api_json_addresses(const store_address_t *a, size_t n);
/** {"jid","resource","name","size","addresses"[,"hash"]} or NULL. */
json_t *api_json_hit(const store_hit_t *h, int with_hash);

/**
 * Suspend `req` and queue an eviction of `jid`/`resource` (or, with
 * `resource` NULL, a republish of `jid`) to the component. Replies 503 at
 * once when the component or the API is stopping.
 */
void api_command_start(api_req_t *req, const char *jid, const char *resource);
/** After the resume: the reply from the outcome; `done_key` is the
 *  success field ("evicted", "republished"). */
void api_command_reply(api_req_t *req, const char *done_key);

/* ---- registry counts cache (bg.c) --------------------------------------------- */

/**
 * The registry counts: from the cache when younger than twice the TTL,
 * else computed now on `st` (when not NULL) and cached. Returns 0 with
 * `*out`, `*age_s` and `*as_of` (wall clock), or the store error.
 */
int api_counts_get(api_t *api, store_t *st, store_stats_t *out, double *age_s, double *as_of,
                   store_error_t *err);

/** Start / stop the refresh and timer threads (bg.c). */
int api_bg_start(api_t *api);
void api_bg_stop(api_t *api);

/* ---- waiters (waiter.c) ---------------------------------------------------------- */

struct api_waiter {
    pthread_mutex_t mu;
    unsigned refs;
    api_wait_outcome_t outcome;
    component_cmd_result_t res;
    struct MHD_Connection *conn; /* suspended; resumed by whoever finishes first */
    uint64_t deadline_ms;
    api_waiter_t *prev, *next; /* api->waiters, under api->wait_mu */
    int listed;
};

/** New waiter with one reference (the request's). NULL when out of memory. */
api_waiter_t *api_waiter_new(void) __attribute__((warn_unused_result));
void api_waiter_ref(api_waiter_t *w);
void api_waiter_unref(api_waiter_t *w);
/**
 * Set the outcome unless already set, and resume the suspended connection.
 * Returns 1 when this call decided the outcome. Thread-safe.
 */
int api_waiter_finish(api_waiter_t *w, api_wait_outcome_t outcome,
                      const component_cmd_result_t *res);
/** component_cmd_done_fn: finish with the result and drop the command's
 *  reference. Touches nothing but the waiter. */
void api_waiter_done(const component_cmd_result_t *res, void *arg);

/**
 * Suspend `req` until `w` finishes or `timeout_ms` passes: lists the
 * waiter, suspends the connection. Returns 0, or -1 when the API is
 * closing (nothing suspended).
 */
int api_req_suspend(api_req_t *req, api_waiter_t *w, unsigned timeout_ms);

/** Unlist the request's waiter (completion) and drop its reference. */
void api_req_release_waiter(api_req_t *req);

/** Finish every listed waiter whose deadline passed; returns the earliest
 *  remaining deadline (UINT64_MAX: none). Under api->wait_mu. */
uint64_t api_waiters_expire(api_t *api, uint64_t now_ms);

#endif /* BITWEEN_API_API_PRIVATE_H */
