/* SPDX-License-Identifier: MIT */
/*
 * Harness of the component end-to-end tests: the component binary run as a
 * child process with its output in a log file (started, waited for by log
 * line, stopped with SIGTERM or killed), commands of scripts/stack, the
 * agent protocol's requests as XML text, and the registry's tables read
 * with libpq (fingerprints for "nothing changed", the merged item rebuilt
 * from the rows for "the contact sees what is stored"). Every wait has a
 * deadline and, when given a libstrophe context, keeps its clients served
 * while it waits.
 */
#ifndef BITWEEN_TESTS_HARNESS_H
#define BITWEEN_TESTS_HARNESS_H

#include <stddef.h>
#include <sys/types.h>

#include <libpq-fe.h>
#include <strophe.h>

#include "shares.h"

/* ---- time and strings ---------------------------------------------------- */

/** Monotonic clock in milliseconds. */
long long hx_now_ms(void);

/** Growable string; zero-initialize, free `s` with free(). */
typedef struct hx_buf {
    char *s;
    size_t len, cap;
} hx_buf_t;

/** Append formatted text (aborts the test program when out of memory). */
void hx_buf_printf(hx_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/** Printf into a new string the caller frees. */
char *hx_strdupf(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ---- processes ----------------------------------------------------------- */

typedef struct hx_proc hx_proc_t;

/**
 * Start `bin` (no arguments) with the environment of this process plus
 * `env` (NULL-terminated "NAME=VALUE" strings that override inherited
 * ones, the last of several naming one variable wins; a bare "NAME"
 * removes the variable), stdout and stderr appended to `log_path`, no other descriptor
 * inherited. NULL when fork fails.
 */
hx_proc_t *hx_proc_start(const char *bin, const char *log_path, const char *const *env);

pid_t hx_proc_pid(const hx_proc_t *p);
const char *hx_proc_log(const hx_proc_t *p);

/** Whether the process still runs (reaps it when it has exited). */
int hx_proc_alive(hx_proc_t *p);

/**
 * Exit status after SIGTERM, waiting at most `timeout_ms` while pumping
 * `ctx` (may be NULL): 0..255 for an exit, 1000 + signal number for a death
 * by signal, -1 when it did not end in time (it is then killed).
 */
int hx_proc_stop(hx_proc_t *p, int timeout_ms, xmpp_ctx_t *ctx);

/** SIGKILL and reap. */
void hx_proc_kill(hx_proc_t *p);

/** Kill if still running and free; NULL is a no-op. */
void hx_proc_free(hx_proc_t *p);

/** Contents of the file `path` as a new NUL-terminated string (caller
 * frees), NULL when unreadable. */
char *hx_file_read(const char *path);

/** Occurrences of `needle` in the file `path` (0 when unreadable). */
int hx_file_count(const char *path, const char *needle);

/**
 * Wait until the log of `p` holds `needle` at least `count` times, at most
 * `timeout_ms`, pumping `ctx` (may be NULL). Returns 1 when it does; 0 on
 * timeout or when the process exited.
 */
int hx_proc_wait_log(hx_proc_t *p, const char *needle, int count, int timeout_ms, xmpp_ctx_t *ctx);

/** Whether the file holds a sanitizer report (ASan, LSan, UBSan). */
int hx_file_has_sanitizer_report(const char *path);

/** Copy the file to stderr between markers naming `title`. */
void hx_file_dump(const char *path, const char *title);

/**
 * Run argv[0] with argv, stdin from /dev/null, stdout into `stdout_path`
 * (NULL: this process's stderr), no other descriptor inherited. Returns
 * the exit status, or -1 when it could not run or was killed.
 */
int hx_run(const char *const *argv, const char *stdout_path);

/* ---- agent protocol requests ------------------------------------------- */

/** 40 hex digits derived from `seed` (SHA-1), lowercase. */
void hx_hash(char out[41], const char *seed);

/** Append <share_item hash name size/> (name XML-escaped). */
void hx_share_el(hx_buf_t *b, const char *hash, const char *name, unsigned long long size);

/** Append <share_item hash/> (for remove). */
void hx_hash_el(hx_buf_t *b, const char *hash);

/** Append <ip_address address port/>. */
void hx_addr_el(hx_buf_t *b, const char *address, unsigned port);

/**
 * A new request IQ: <iq type='set' to=TO id=ID><OP xmlns='urn:bitween:agent:1'
 * seq=SEQ>CHILDREN</OP></iq>; `seq` < 0 leaves the attribute out,
 * `children` may be NULL. Caller frees.
 */
char *hx_agent_iq(const char *to, const char *id, const char *op, long long seq,
                  const char *children);

/* ---- stanzas ------------------------------------------------------------- */

/** Type of an IQ reply ("result", "error"), NULL for NULL. */
const char *hx_iq_type(xmpp_stanza_t *iq);

/**
 * Whether `iq` is an error of `type` with the defined condition `cond` and
 * a non-empty <text/>; on a mismatch prints what it got. `text_out` (may
 * be NULL) receives a copy of the text, `len` bytes.
 */
int hx_iq_error_is(xmpp_stanza_t *iq, const char *type, const char *cond, char *text_out,
                   size_t len);

/* ---- database ------------------------------------------------------------ */

/** Connect (fails the program when impossible). */
PGconn *hx_db_connect(const char *url);

/**
 * Everything stored for `jid`, one line per row: resources with seq and
 * updated_at, shares, addresses; sorted. "" when nothing. Caller frees;
 * NULL when the query failed.
 */
char *hx_db_fingerprint(PGconn *db, const char *jid);

/** Registered resources of `jid`; -1 on a query failure. */
int hx_db_resources(PGconn *db, const char *jid);

/** Stored seq of jid/resource; -1 when not registered (or a failure). */
long long hx_db_seq(PGconn *db, const char *jid, const char *resource);

/** Shares of jid/resource (resource NULL: of every resource); -1 on failure. */
int hx_db_shares(PGconn *db, const char *jid, const char *resource);

/** Whether jid/resource holds the share `hash` (1/0, -1 on failure). */
int hx_db_has_share(PGconn *db, const char *jid, const char *resource, const char *hash);

/**
 * Digest (shares_item_digest) of the merged item rebuilt from the rows of
 * `jid`. Returns 0, or -1 on a query or build failure.
 */
int hx_db_digest(PGconn *db, const char *jid, char hex[SHARES_DIGEST_HEX]);

/**
 * Digest of the last item the component recorded as published for `jid`
 * (publishes table, status ok). 0, or -1 when there is none.
 */
int hx_db_published_digest(PGconn *db, const char *jid, char hex[SHARES_DIGEST_HEX]);

/** Digest of an item received as XML text; 0 or -1 when it does not parse. */
int hx_text_digest(xmpp_ctx_t *ctx, const char *xml, char hex[SHARES_DIGEST_HEX]);

#endif /* BITWEEN_TESTS_HARNESS_H */
