/* SPDX-License-Identifier: MIT */
/*
 * The logger shared by both daemons: one log_t per process, created by the
 * daemon and passed down (no global state), with a level that can change at
 * run time (SIGHUP) and a subsystem tag on every line. Lines are formatted
 * in full first and written with one write() under a mutex, so lines from
 * the XMPP thread, the database workers and the HTTP threads never
 * interleave. Control characters and invalid UTF-8 are escaped, so a
 * hostile JID or server error text cannot forge a line, and long messages
 * are truncated. libstrophe's and libpq's messages are routed in through
 * log_strophe() and log_pq_notice(); libstrophe lines that may carry a
 * credential are redacted.
 */
#ifndef BITWEEN_COMMON_LOG_H
#define BITWEEN_COMMON_LOG_H

#include <stddef.h>

#include <strophe.h>

/* Not LOG_INFO and friends: those are <syslog.h> macros. */
typedef enum { LOG_LEVEL_ERROR, LOG_LEVEL_WARN, LOG_LEVEL_INFO, LOG_LEVEL_DEBUG } log_level_t;

/* Longest message kept, in bytes after escaping; a longer one is cut at a
 * character boundary and ends with LOG_TRUNCATED_MARK. */
#define LOG_MSG_MAX        4096
#define LOG_TRUNCATED_MARK "\xe2\x80\xa6[truncated]" /* "…[truncated]" */
/* Longest subsystem tag kept, in bytes. */
#define LOG_SUBSYS_MAX 48

/** A logger. Opaque; every function below is thread-safe. */
typedef struct log log_t;

/**
 * New logger writing to `fd` (borrowed: never closed; usually 2, stderr)
 * the messages at `level` and more severe. With `timestamps` non-zero every
 * line starts with the UTC time, ISO 8601 with milliseconds
 * (`2026-11-21T06:31:31.123Z`); pass 0 under journald, which stamps lines
 * itself. Lines are `[<ts> ]<LEVEL> <subsys>: <message>\n`.
 * Writing to a closed pipe raises SIGPIPE: the daemon ignores that signal.
 * Returns NULL on allocation failure. Free with log_free().
 */
log_t *log_new(int fd, log_level_t level, int timestamps) __attribute__((warn_unused_result));

/** Free a logger; NULL is a no-op. No other thread may still use it. */
void log_free(log_t *log);

/** Change the level (atomic; e.g. on SIGHUP). An out-of-range level is
 * ignored. */
void log_set_level(log_t *log, log_level_t level);

/** The current level. */
log_level_t log_get_level(const log_t *log);

/** Non-zero when a message at `level` would be written. A NULL logger
 * writes nothing. */
int log_enabled(const log_t *log, log_level_t level);

/**
 * Format and write one line at `level` for subsystem `subsys` (NULL: "-")
 * unless the level is disabled; a NULL logger is a no-op. The message is one
 * line: a newline in it is written as `\n`, other control characters and
 * bytes of invalid UTF-8 as `\xNN`. A line that cannot be written (write()
 * failed) is counted in log_dropped(): logging never fails its caller.
 * Prefer the LOG_* macros, which skip evaluating the arguments when the
 * level is disabled.
 */
void log_msg(log_t *log, log_level_t level, const char *subsys, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/** Number of lines that could not be written since log_new(). */
unsigned long log_dropped(const log_t *log);

/* The level is checked before the arguments are evaluated and formatted.
 * `log` and `level` are evaluated twice. */
#define LOG_AT(log, level, subsys, ...)                                                            \
    do {                                                                                           \
        if (log_enabled((log), (level)))                                                           \
            log_msg((log), (level), (subsys), __VA_ARGS__);                                        \
    } while (0)
#define LOG_ERROR(log, subsys, ...) LOG_AT((log), LOG_LEVEL_ERROR, (subsys), __VA_ARGS__)
#define LOG_WARN(log, subsys, ...)  LOG_AT((log), LOG_LEVEL_WARN, (subsys), __VA_ARGS__)
#define LOG_INFO(log, subsys, ...)  LOG_AT((log), LOG_LEVEL_INFO, (subsys), __VA_ARGS__)
#define LOG_DEBUG(log, subsys, ...) LOG_AT((log), LOG_LEVEL_DEBUG, (subsys), __VA_ARGS__)

/**
 * Parse a level name, case-insensitive: "error", "warn" or "warning",
 * "info", "debug". Returns 0 and sets `*out`, or -1 (then `*out` is
 * untouched).
 */
int log_level_parse(const char *text, log_level_t *out);

/** "ERROR", "WARN", "INFO" or "DEBUG" (static); "?" when out of range. */
const char *log_level_name(log_level_t level);

/**
 * A libstrophe logger (give it to xmpp_ctx_new()) that writes libstrophe's
 * messages into `log` with subsystem "strophe/<area>", XMPP_LEVEL_* mapped
 * to the level of the same name, so libstrophe's debug output (every
 * stanza) appears only at LOG_LEVEL_DEBUG. A message that may carry a
 * credential (a <handshake/>, <auth/>, <response/>, <password/> or
 * <digest/> element, in any area and at any level, or the component
 * handshake digest of area "auth") is replaced by a redaction notice.
 * Borrowed: owned by `log`, valid until log_free(); `log` must outlive the
 * libstrophe context.
 */
const xmpp_log_t *log_strophe(log_t *log);

/**
 * libpq notice processor (PQsetNoticeProcessor(conn, log_pq_notice, log)):
 * writes `message` at LOG_LEVEL_WARN with subsystem "postgres", trailing
 * newlines removed (inner ones are escaped). `log` is a log_t *; NULL is a
 * no-op.
 */
void log_pq_notice(void *log, const char *message);

#endif /* BITWEEN_COMMON_LOG_H */
