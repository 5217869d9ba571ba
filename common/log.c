/* SPDX-License-Identifier: MIT */
/*
 * The logger: every line is formatted on the stack (timestamp, level,
 * subsystem, escaped and bounded message) and handed to one write() loop
 * under the logger's mutex, so concurrent lines never interleave whatever
 * the file descriptor is (pipe, socket or file, any line length). The level
 * is an atomic read before any formatting, so disabled debug calls cost a
 * load and a compare. Also the adapters that route libstrophe's and libpq's
 * messages in, with libstrophe's credential-bearing lines redacted.
 */
#include "log.h"

#include "utf8.h"

#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

struct log {
    int fd;
    int timestamps;
    atomic_int level;
    atomic_ulong dropped;
    pthread_mutex_t lock;
    xmpp_log_t strophe;
};

/* "2026-11-21T06:31:31.123Z" plus NUL. */
#define TS_BYTES 25
/* Timestamp, level and separators around the subsystem and the message. */
#define LINE_OVERHEAD (TS_BYTES + 8 + 2 + 1)
#define LINE_BYTES    (LINE_OVERHEAD + LOG_SUBSYS_MAX + LOG_MSG_MAX + sizeof(LOG_TRUNCATED_MARK))

static const char *const level_names[] = {"ERROR", "WARN", "INFO", "DEBUG"};

static int level_valid(int level)
{
    return level >= (int)LOG_LEVEL_ERROR && level <= (int)LOG_LEVEL_DEBUG;
}

/* ---- lifecycle and level --------------------------------------------- */

static void strophe_handler(void *userdata, xmpp_log_level_t level, const char *area,
                            const char *msg);

log_t *log_new(int fd, log_level_t level, int timestamps)
{
    log_t *log = calloc(1, sizeof *log);

    if (!log)
        return NULL;
    if (pthread_mutex_init(&log->lock, NULL) != 0) {
        free(log);
        return NULL;
    }
    log->fd = fd;
    log->timestamps = timestamps != 0;
    atomic_init(&log->level, level_valid((int)level) ? (int)level : (int)LOG_LEVEL_INFO);
    atomic_init(&log->dropped, 0);
    log->strophe.handler = strophe_handler;
    log->strophe.userdata = log;
    return log;
}

void log_free(log_t *log)
{
    if (!log)
        return;
    pthread_mutex_destroy(&log->lock);
    free(log);
}

void log_set_level(log_t *log, log_level_t level)
{
    if (log && level_valid((int)level))
        atomic_store_explicit(&log->level, (int)level, memory_order_relaxed);
}

log_level_t log_get_level(const log_t *log)
{
    if (!log)
        return LOG_LEVEL_ERROR;
    return (log_level_t)atomic_load_explicit(&log->level, memory_order_relaxed);
}

int log_enabled(const log_t *log, log_level_t level)
{
    if (!log || !level_valid((int)level))
        return 0;
    return (int)level <= atomic_load_explicit(&log->level, memory_order_relaxed);
}

unsigned long log_dropped(const log_t *log)
{
    return log ? atomic_load_explicit(&log->dropped, memory_order_relaxed) : 0;
}

int log_level_parse(const char *text, log_level_t *out)
{
    static const struct {
        const char *name;
        log_level_t level;
    } names[] = {
        {"error", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},   {"warning", LOG_LEVEL_WARN},
        {"info", LOG_LEVEL_INFO},   {"debug", LOG_LEVEL_DEBUG},
    };
    size_t i;

    if (!text || !out)
        return -1;
    for (i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(text, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

const char *log_level_name(log_level_t level)
{
    return level_valid((int)level) ? level_names[level] : "?";
}

/* ---- formatting -------------------------------------------------------- */

/* Characters that end or fake a line in some viewer although they are
 * valid UTF-8: C1 controls (NEL is one) and U+2028/U+2029. */
static int utf8_is_breaking(const unsigned char *s, int len)
{
    if (len == 2)
        return s[0] == 0xc2 && s[1] < 0xa0;
    if (len == 3)
        return s[0] == 0xe2 && s[1] == 0x80 && (s[2] == 0xa8 || s[2] == 0xa9);
    return 0;
}

/*
 * Append `len` bytes of `in` to `out` (capacity `cap`, used `*pos`) as one
 * safe line: printable UTF-8 as is, \n \r \t as such escapes, any other
 * control byte, breaking character or byte of invalid UTF-8 as \xNN. Stops
 * before a character whose escaped form does not fit, and, when `cut` says
 * the input was cut short, at an incomplete sequence at its very end.
 * Returns 0 when all of `in` was written, -1 when it stopped early.
 */
static int escape_into(char *out, size_t cap, size_t *pos, const char *in, size_t len, int cut)
{
    static const char hex[] = "0123456789abcdef";
    const unsigned char *s = (const unsigned char *)in;
    size_t i = 0, p = *pos;
    int rc = 0;

    while (i < len) {
        int n = utf8_seq(s + i, len - i);
        size_t j, need;

        if (n < 0 && cut) {
            rc = -1; /* the rest of this character was cut off anyway */
            break;
        }
        if (n == 1 && s[i] >= 0x20 && s[i] != 0x7f) {
            if (p + 1 > cap) {
                rc = -1;
                break;
            }
            out[p++] = (char)s[i++];
            continue;
        }
        if (n > 1 && !utf8_is_breaking(s + i, n)) {
            if (p + (size_t)n > cap) {
                rc = -1;
                break;
            }
            memcpy(out + p, s + i, (size_t)n);
            p += (size_t)n;
            i += (size_t)n;
            continue;
        }
        if (n == 1 && (s[i] == '\n' || s[i] == '\r' || s[i] == '\t')) {
            if (p + 2 > cap) {
                rc = -1;
                break;
            }
            out[p++] = '\\';
            out[p++] = s[i] == '\n' ? 'n' : s[i] == '\r' ? 'r' : 't';
            i++;
            continue;
        }
        /* A control, a breaking character (every byte of it) or one byte
         * of invalid UTF-8, resynchronizing on the next byte. */
        n = n > 1 ? n : 1;
        need = 4 * (size_t)n;
        if (p + need > cap) {
            rc = -1;
            break;
        }
        for (j = 0; j < (size_t)n; j++) {
            out[p++] = '\\';
            out[p++] = 'x';
            out[p++] = hex[s[i + j] >> 4];
            out[p++] = hex[s[i + j] & 0xf];
        }
        i += (size_t)n;
    }
    *pos = p;
    return rc;
}

static void append(char *out, size_t cap, size_t *pos, const char *s, size_t len)
{
    if (*pos >= cap)
        return;
    if (len > cap - *pos)
        len = cap - *pos;
    memcpy(out + *pos, s, len);
    *pos += len;
}

static size_t format_timestamp(char buf[TS_BYTES])
{
    struct timespec ts;
    struct tm tm;
    size_t n;

    if (clock_gettime(CLOCK_REALTIME, &ts) != 0 || !gmtime_r(&ts.tv_sec, &tm))
        return 0;
    n = strftime(buf, TS_BYTES, "%Y-%m-%dT%H:%M:%S", &tm);
    if (n == 0 || n + 6 > TS_BYTES)
        return 0;
    n += (size_t)snprintf(buf + n, TS_BYTES - n, ".%03dZ", (int)(ts.tv_nsec / 1000000));
    return n;
}

static void write_line(log_t *log, const char *buf, size_t len)
{
    pthread_mutex_lock(&log->lock);
    while (len > 0) {
        ssize_t w = write(log->fd, buf, len);

        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            atomic_fetch_add_explicit(&log->dropped, 1, memory_order_relaxed);
            break;
        }
        buf += w;
        len -= (size_t)w;
    }
    pthread_mutex_unlock(&log->lock);
}

static void log_vmsg(log_t *log, log_level_t level, const char *subsys, const char *fmt, va_list ap)
    __attribute__((format(printf, 4, 0)));

static void log_vmsg(log_t *log, log_level_t level, const char *subsys, const char *fmt, va_list ap)
{
    char raw[LOG_MSG_MAX + 1];
    char line[LINE_BYTES];
    size_t pos = 0, rawlen;
    const char *name = level_names[level];
    int n, cut, truncated;

    n = vsnprintf(raw, sizeof raw, fmt, ap);
    if (n < 0) {
        n = snprintf(raw, sizeof raw, "(unformattable message: %s)", fmt);
        if (n < 0)
            n = 0;
    }
    cut = (size_t)n >= sizeof raw;
    rawlen = cut ? sizeof raw - 1 : (size_t)n;

    if (log->timestamps) {
        char ts[TS_BYTES];
        size_t tslen = format_timestamp(ts);

        if (tslen > 0) {
            append(line, sizeof line, &pos, ts, tslen);
            append(line, sizeof line, &pos, " ", 1);
        }
    }
    append(line, sizeof line, &pos, name, strlen(name));
    append(line, sizeof line, &pos, " ", 1);
    if (!subsys || !*subsys)
        subsys = "-";
    escape_into(line, pos + LOG_SUBSYS_MAX, &pos, subsys, strlen(subsys), 0);
    append(line, sizeof line, &pos, ": ", 2);
    truncated = escape_into(line, pos + LOG_MSG_MAX, &pos, raw, rawlen, cut) != 0 || cut;
    if (truncated)
        append(line, sizeof line, &pos, LOG_TRUNCATED_MARK, sizeof LOG_TRUNCATED_MARK - 1);
    append(line, sizeof line, &pos, "\n", 1);
    write_line(log, line, pos);
}

void log_msg(log_t *log, log_level_t level, const char *subsys, const char *fmt, ...)
{
    int saved = errno; /* callers log strerror(errno) and then test errno */
    va_list ap;

    if (!log_enabled(log, level) || !fmt)
        return;
    va_start(ap, fmt);
    log_vmsg(log, level, subsys, fmt, ap);
    va_end(ap);
    errno = saved;
}

/* ---- libstrophe -------------------------------------------------------- */

/* Elements whose text is a credential or derived from one: the XEP-0114
 * handshake, SASL <auth/> (PLAIN carries the password) and <response/>
 * (SCRAM proof), and XEP-0078 legacy authentication. */
static const char *const secret_elements[] = {"handshake", "auth", "response", "password",
                                              "digest"};

/* The name of the first credential-bearing element in `msg`, or NULL. */
static const char *strophe_secret_element(const char *msg)
{
    const char *p;
    size_t i;

    for (p = strchr(msg, '<'); p; p = strchr(p + 1, '<')) {
        const char *name = p + 1, *end, *q;
        size_t len;

        if (*name == '/')
            name++;
        end = name + strcspn(name, " \t\r\n/>");
        for (q = name; q < end; q++) {
            if (*q == ':')
                name = q + 1; /* local name of a prefixed element */
        }
        len = (size_t)(end - name);
        for (i = 0; i < sizeof secret_elements / sizeof secret_elements[0]; i++) {
            if (strlen(secret_elements[i]) == len && strncmp(name, secret_elements[i], len) == 0)
                return secret_elements[i];
        }
    }
    return NULL;
}

static void strophe_handler(void *userdata, xmpp_log_level_t level, const char *area,
                            const char *msg)
{
    log_t *log = userdata;
    log_level_t ours;
    char subsys[LOG_SUBSYS_MAX];
    const char *element, *dir = "";

    switch (level) {
    case XMPP_LEVEL_ERROR:
        ours = LOG_LEVEL_ERROR;
        break;
    case XMPP_LEVEL_WARN:
        ours = LOG_LEVEL_WARN;
        break;
    case XMPP_LEVEL_INFO:
        ours = LOG_LEVEL_INFO;
        break;
    default:
        ours = LOG_LEVEL_DEBUG;
        break;
    }
    /* libstrophe calls us for every message, debug ones included. */
    if (!log_enabled(log, ours))
        return;
    if (!area || !*area)
        area = "?";
    if (!msg)
        msg = "";
    snprintf(subsys, sizeof subsys, "strophe/%s", area);

    if (strncmp(msg, "SENT: ", 6) == 0 || strncmp(msg, "RECV: ", 6) == 0)
        dir = strncmp(msg, "SENT", 4) == 0 ? "SENT: " : "RECV: ";
    if (strcmp(area, "auth") == 0 && strncmp(msg, "Digest:", 7) == 0) {
        log_msg(log, ours, subsys, "[redacted: component handshake digest]");
        return;
    }
    element = strophe_secret_element(msg);
    if (element) {
        log_msg(log, ours, subsys, "%s[redacted: <%s/> may carry a credential]", dir, element);
        return;
    }
    log_msg(log, ours, subsys, "%s", msg);
}

const xmpp_log_t *log_strophe(log_t *log)
{
    return log ? &log->strophe : NULL;
}

/* ---- libpq ------------------------------------------------------------- */

void log_pq_notice(void *log, const char *message)
{
    size_t len;

    if (!log || !message || !log_enabled(log, LOG_LEVEL_WARN))
        return;
    len = strlen(message);
    while (len > 0 && (message[len - 1] == '\n' || message[len - 1] == '\r'))
        len--;
    if (len > LOG_MSG_MAX + 1)
        len = LOG_MSG_MAX + 1; /* still enough to be marked truncated */
    log_msg(log, LOG_LEVEL_WARN, "postgres", "%.*s", (int)len, message);
}
