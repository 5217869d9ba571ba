/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/log.c: the exact line format with and without
 * timestamps, level filtering (and that the macros do not evaluate the
 * arguments of a disabled level), escaping of anything that could forge a
 * line, truncation, the libstrophe and libpq adapters with redaction of
 * credentials, and concurrent writers. Output is captured through a pipe
 * drained by a reader thread.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <regex.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "log.h"
#include "xmpp_compat.h"

/* ---- capture --------------------------------------------------------- */

struct capture {
    int fds[2];
    pthread_t reader;
    char *buf;
    size_t len, cap;
    int failed;
};

static void *capture_read(void *arg)
{
    struct capture *c = arg;
    char chunk[8192];
    ssize_t got;

    for (;;) {
        got = read(c->fds[0], chunk, sizeof chunk);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            break;
        if (c->len + (size_t)got + 1 > c->cap) {
            size_t cap = (c->cap ? c->cap * 2 : 65536) + (size_t)got;
            char *grown = realloc(c->buf, cap);

            if (!grown) {
                c->failed = 1;
                break;
            }
            c->buf = grown;
            c->cap = cap;
        }
        memcpy(c->buf + c->len, chunk, (size_t)got);
        c->len += (size_t)got;
    }
    if (got < 0)
        c->failed = 1;
    return NULL;
}

static void capture_start(struct capture *c)
{
    memset(c, 0, sizeof *c);
    assert_int_equal(pipe(c->fds), 0);
    assert_int_equal(pthread_create(&c->reader, NULL, capture_read, c), 0);
}

/* Close the write end, wait for the reader; returns the text (caller
 * frees), NUL-terminated. */
static char *capture_finish(struct capture *c)
{
    close(c->fds[1]);
    assert_int_equal(pthread_join(c->reader, NULL), 0);
    close(c->fds[0]);
    assert_false(c->failed);
    if (!c->buf) {
        c->buf = malloc(1);
        assert_non_null(c->buf);
    }
    c->buf[c->len] = '\0';
    return c->buf;
}

/* Run `fn` against a fresh logger (no timestamps) at `level`; return what
 * it wrote. */
static char *run_logged(log_level_t level, int timestamps, void (*fn)(log_t *log))
{
    struct capture c;
    log_t *log;

    capture_start(&c);
    log = log_new(c.fds[1], level, timestamps);
    assert_non_null(log);
    fn(log);
    assert_int_equal(log_dropped(log), 0);
    log_free(log);
    return capture_finish(&c);
}

static void expect_output(log_level_t level, void (*fn)(log_t *log), const char *expected)
{
    char *out = run_logged(level, 0, fn);

    assert_string_equal(out, expected);
    free(out);
}

/* ---- format and levels ------------------------------------------------- */

static void emit_each_level(log_t *log)
{
    LOG_ERROR(log, "xmpp", "connection lost: %s", "reset");
    LOG_WARN(log, "db", "slow query: %d ms", 1500);
    LOG_INFO(log, "http", "listening on %s:%u", "127.0.0.1", 8080u);
    LOG_DEBUG(log, "agent", "tick %ld", 42L);
}

static void log__msg__formats_level_subsystem_and_message(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_DEBUG, emit_each_level,
                  "ERROR xmpp: connection lost: reset\n"
                  "WARN db: slow query: 1500 ms\n"
                  "INFO http: listening on 127.0.0.1:8080\n"
                  "DEBUG agent: tick 42\n");
}

static void emit_null_subsystem(log_t *log)
{
    log_msg(log, LOG_LEVEL_INFO, NULL, "no tag");
    log_msg(log, LOG_LEVEL_INFO, "", "empty tag");
    log_msg(log, LOG_LEVEL_INFO, "sub", "%s", "");
}

static void log__msg__null_or_empty_subsystem_is_dash(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_INFO, emit_null_subsystem,
                  "INFO -: no tag\n"
                  "INFO -: empty tag\n"
                  "INFO sub: \n");
}

static void log__level__filters_below_threshold(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_ERROR, emit_each_level, "ERROR xmpp: connection lost: reset\n");
    expect_output(LOG_LEVEL_WARN, emit_each_level,
                  "ERROR xmpp: connection lost: reset\n"
                  "WARN db: slow query: 1500 ms\n");
    expect_output(LOG_LEVEL_INFO, emit_each_level,
                  "ERROR xmpp: connection lost: reset\n"
                  "WARN db: slow query: 1500 ms\n"
                  "INFO http: listening on 127.0.0.1:8080\n");
}

static void emit_around_set_level(log_t *log)
{
    assert_int_equal(log_get_level(log), LOG_LEVEL_WARN);
    assert_true(log_enabled(log, LOG_LEVEL_ERROR));
    assert_true(log_enabled(log, LOG_LEVEL_WARN));
    assert_false(log_enabled(log, LOG_LEVEL_INFO));
    LOG_INFO(log, "a", "hidden");
    log_msg(log, LOG_LEVEL_DEBUG, "a", "hidden too");
    log_set_level(log, LOG_LEVEL_DEBUG);
    assert_int_equal(log_get_level(log), LOG_LEVEL_DEBUG);
    LOG_DEBUG(log, "a", "shown");
    log_set_level(log, (log_level_t)7); /* ignored */
    log_set_level(log, (log_level_t)-1);
    assert_int_equal(log_get_level(log), LOG_LEVEL_DEBUG);
    assert_false(log_enabled(log, (log_level_t)7));
    log_msg(log, (log_level_t)9, "a", "out of range level");
    log_set_level(log, LOG_LEVEL_ERROR);
    LOG_WARN(log, "a", "hidden again");
}

static void log__set_level__applies_and_ignores_out_of_range(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_WARN, emit_around_set_level, "DEBUG a: shown\n");
}

static int evaluations;

static int count_evaluation(void)
{
    return ++evaluations;
}

static void emit_with_side_effects(log_t *log)
{
    LOG_DEBUG(log, "t", "n=%d", count_evaluation());
    LOG_INFO(log, "t", "n=%d", count_evaluation());
    LOG_AT(log, LOG_LEVEL_WARN, "t", "n=%d", count_evaluation());
}

static void log__macro__does_not_evaluate_disabled_arguments(void **state)
{
    char *out;

    (void)state;
    evaluations = 0;
    out = run_logged(LOG_LEVEL_WARN, 0, emit_with_side_effects);
    assert_int_equal(evaluations, 1);
    assert_string_equal(out, "WARN t: n=1\n");
    free(out);

    evaluations = 0;
    out = run_logged(LOG_LEVEL_DEBUG, 0, emit_with_side_effects);
    assert_int_equal(evaluations, 3);
    assert_string_equal(out, "DEBUG t: n=1\nINFO t: n=2\nWARN t: n=3\n");
    free(out);
}

/* ---- escaping and truncation ------------------------------------------ */

static void emit_hostile(log_t *log)
{
    /* A JID or server text trying to end the line and start a forged one. */
    LOG_WARN(log, "xmpp", "from %s", "evil@example.org\nERROR auth: forged");
    LOG_WARN(log, "xmpp", "cr %s tab %s", "a\rb", "c\td");
    LOG_WARN(log, "xmpp", "esc %s del %s", "\x1b[31mred", "x\x7fy");
    LOG_WARN(log, "xmpp", "bad utf8 %s|%s|%s", "\xff", "\xc3(", "\xed\xa0\x80");
    LOG_WARN(log, "xmpp", "nel %s ls %s ps %s", "\xc2\x85", "\xe2\x80\xa8", "\xe2\x80\xa9");
    LOG_WARN(log, "xmpp", "fine %s", "caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \\n");
    LOG_WARN(log, "sub\nsys", "tag escaped too");
}

static void log__msg__escapes_control_characters(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_WARN, emit_hostile,
                  "WARN xmpp: from evil@example.org\\nERROR auth: forged\n"
                  "WARN xmpp: cr a\\rb tab c\\td\n"
                  "WARN xmpp: esc \\x1b[31mred del x\\x7fy\n"
                  "WARN xmpp: bad utf8 \\xff|\\xc3(|\\xed\\xa0\\x80\n"
                  "WARN xmpp: nel \\xc2\\x85 ls \\xe2\\x80\\xa8 ps \\xe2\\x80\\xa9\n"
                  "WARN xmpp: fine caf\xc3\xa9 \xe2\x9c\x93 \xf0\x9f\x98\x80 \\n\n"
                  "WARN sub\\nsys: tag escaped too\n");
}

static char *repeat(char c, size_t n)
{
    char *s = malloc(n + 1);

    assert_non_null(s);
    memset(s, c, n);
    s[n] = '\0';
    return s;
}

/* The message part of a single captured line, without the newline. */
static char *message_of(char *out, const char *prefix)
{
    size_t len = strlen(out);

    assert_true(len > strlen(prefix));
    assert_memory_equal(out, prefix, strlen(prefix));
    assert_int_equal(out[len - 1], '\n');
    assert_null(memchr(out, '\n', len - 1));
    out[len - 1] = '\0';
    return out + strlen(prefix);
}

static const char *trunc_input;

static void emit_trunc_input(log_t *log)
{
    LOG_INFO(log, "t", "%s", trunc_input);
}

static void check_truncation(const char *input, size_t kept_bytes, char kept, int truncated)
{
    char *out, *msg;
    size_t i;

    trunc_input = input;
    out = run_logged(LOG_LEVEL_INFO, 0, emit_trunc_input);
    msg = message_of(out, "INFO t: ");
    for (i = 0; i < kept_bytes; i++) {
        if (msg[i] != kept)
            fail_msg("byte %zu is %#x", i, (unsigned char)msg[i]);
    }
    if (truncated)
        assert_string_equal(msg + kept_bytes, LOG_TRUNCATED_MARK);
    else
        assert_int_equal(strlen(msg), kept_bytes);
    free(out);
}

static void log__msg__truncates_long_messages(void **state)
{
    char *s;
    char *out, *msg;

    (void)state;
    s = repeat('a', LOG_MSG_MAX);
    check_truncation(s, LOG_MSG_MAX, 'a', 0); /* exactly at the limit */
    free(s);

    s = repeat('a', LOG_MSG_MAX + 1);
    check_truncation(s, LOG_MSG_MAX, 'a', 1);
    free(s);

    s = repeat('a', 100000);
    check_truncation(s, LOG_MSG_MAX, 'a', 1);
    free(s);

    /* A two-byte character across the limit is dropped whole. */
    s = repeat('a', LOG_MSG_MAX + 1);
    s[LOG_MSG_MAX - 1] = '\xc3';
    s[LOG_MSG_MAX] = '\xa9';
    check_truncation(s, LOG_MSG_MAX - 1, 'a', 1);
    free(s);

    /* Escapes count against the limit: 1024 escaped controls fill it. */
    s = repeat('\x01', 2000);
    trunc_input = s;
    out = run_logged(LOG_LEVEL_INFO, 0, emit_trunc_input);
    msg = message_of(out, "INFO t: ");
    assert_int_equal(strlen(msg), LOG_MSG_MAX + strlen(LOG_TRUNCATED_MARK));
    assert_memory_equal(msg, "\\x01\\x01", 8);
    assert_string_equal(msg + LOG_MSG_MAX, LOG_TRUNCATED_MARK);
    free(out);
    free(s);

    /* An escape that does not fit whole is not cut in half. */
    s = malloc(LOG_MSG_MAX + 1);
    assert_non_null(s);
    memset(s, 'a', LOG_MSG_MAX - 2);
    s[LOG_MSG_MAX - 2] = '\x02';
    s[LOG_MSG_MAX - 1] = 'a';
    s[LOG_MSG_MAX] = '\0';
    trunc_input = s;
    out = run_logged(LOG_LEVEL_INFO, 0, emit_trunc_input);
    msg = message_of(out, "INFO t: ");
    assert_int_equal(strlen(msg), LOG_MSG_MAX - 2 + strlen(LOG_TRUNCATED_MARK));
    assert_string_equal(msg + LOG_MSG_MAX - 2, LOG_TRUNCATED_MARK);
    free(out);
    free(s);
}

static void emit_long_subsystem(log_t *log)
{
    char tag[200];

    memset(tag, 's', sizeof tag - 1);
    tag[sizeof tag - 1] = '\0';
    LOG_INFO(log, tag, "m");
}

static void log__msg__bounds_subsystem_tag(void **state)
{
    char *out = run_logged(LOG_LEVEL_INFO, 0, emit_long_subsystem);
    char expected[LOG_SUBSYS_MAX + 32];

    (void)state;
    memcpy(expected, "INFO ", 5);
    memset(expected + 5, 's', LOG_SUBSYS_MAX);
    strcpy(expected + 5 + LOG_SUBSYS_MAX, ": m\n");
    assert_string_equal(out, expected);
    free(out);
}

/* ---- timestamps -------------------------------------------------------- */

static void emit_one_info(log_t *log)
{
    LOG_INFO(log, "main", "started");
}

static void log__timestamps__iso8601_utc_with_milliseconds(void **state)
{
    regex_t re;
    char *out;
    int year;

    (void)state;
    out = run_logged(LOG_LEVEL_INFO, 1, emit_one_info);
    assert_int_equal(regcomp(&re,
                             "^[0-9]{4}-(0[1-9]|1[0-2])-[0-3][0-9]T[0-2][0-9]:[0-5][0-9]:[0-6][0-9]"
                             "\\.[0-9]{3}Z INFO main: started\n$",
                             REG_EXTENDED | REG_NOSUB),
                     0);
    if (regexec(&re, out, 0, NULL, 0) != 0)
        fail_msg("line does not match: %s", out);
    regfree(&re);
    year = atoi(out);
    assert_true(year >= 2024 && year < 2200);
    free(out);

    out = run_logged(LOG_LEVEL_INFO, 0, emit_one_info);
    assert_string_equal(out, "INFO main: started\n");
    free(out);
}

/* ---- libstrophe ---------------------------------------------------------- */

static void strophe_call(log_t *log, xmpp_log_level_t level, const char *area, const char *msg)
{
    const xmpp_log_t *xl = log_strophe(log);

    assert_non_null(xl);
    assert_non_null(xl->handler);
    xl->handler(xl->userdata, level, area, msg);
}

static void emit_strophe_levels(log_t *log)
{
    strophe_call(log, XMPP_LEVEL_ERROR, "xmpp", "Couldn't connect");
    strophe_call(log, XMPP_LEVEL_WARN, "tls", "Certificate verification failed");
    strophe_call(log, XMPP_LEVEL_INFO, "conn", "Connected");
    strophe_call(log, XMPP_LEVEL_DEBUG, "xmpp", "RECV: <presence from='a@b/c'/>");
    strophe_call(log, XMPP_LEVEL_DEBUG, NULL, NULL);
}

static void log__strophe__maps_levels_and_area(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_DEBUG, emit_strophe_levels,
                  "ERROR strophe/xmpp: Couldn't connect\n"
                  "WARN strophe/tls: Certificate verification failed\n"
                  "INFO strophe/conn: Connected\n"
                  "DEBUG strophe/xmpp: RECV: <presence from='a@b/c'/>\n"
                  "DEBUG strophe/?: \n");
    /* Debug lines (every stanza) only at our debug level. */
    expect_output(LOG_LEVEL_INFO, emit_strophe_levels,
                  "ERROR strophe/xmpp: Couldn't connect\n"
                  "WARN strophe/tls: Certificate verification failed\n"
                  "INFO strophe/conn: Connected\n");
    expect_output(LOG_LEVEL_ERROR, emit_strophe_levels, "ERROR strophe/xmpp: Couldn't connect\n");
}

static void emit_strophe_secrets(log_t *log)
{
    /* libstrophe 0.12 logs what it sends under "conn", what it receives
     * under "xmpp", and the handshake digest under "auth". */
    strophe_call(log, XMPP_LEVEL_DEBUG, "conn",
                 "SENT: <handshake xmlns='jabber:component:accept'>"
                 "0123456789abcdef0123456789abcdef01234567</handshake>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "xmpp",
                 "SENT: <handshake xmlns='jabber:component:accept'>SECRETHS</handshake>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "auth", "Digest: SECRETDIGEST, len: 40");
    strophe_call(log, XMPP_LEVEL_DEBUG, "conn",
                 "SENT: <auth xmlns='urn:ietf:params:xml:ns:xmpp-sasl' "
                 "mechanism='PLAIN'>AGFsaWNlAFNFQ1JFVA==</auth>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "conn",
                 "SENT: <response xmlns='urn:ietf:params:xml:ns:xmpp-sasl'>"
                 "Yz1iaXdzLHI9U0VDUkVU</response>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "conn",
                 "SENT: <iq type='set' id='a'><query xmlns='jabber:iq:auth'><username>u"
                 "</username><password>SECRETPW</password></query></iq>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "xmpp", "RECV: <sasl:auth>SECRETPFX</sasl:auth>");
    strophe_call(log, XMPP_LEVEL_ERROR, "xmpp", "stray <handshake>SECRETERR</handshake>");
    /* Look-alikes stay. */
    strophe_call(log, XMPP_LEVEL_DEBUG, "xmpp",
                 "RECV: <message><body>authentic &lt;auth&gt; response</body><authors/></message>");
    strophe_call(log, XMPP_LEVEL_DEBUG, "auth", "Sent component handshake to the server.");
    strophe_call(log, XMPP_LEVEL_DEBUG, "xmpp", "RECV: <handshake/>");
}

static void log__strophe__redacts_credentials(void **state)
{
    char *out;

    (void)state;
    out = run_logged(LOG_LEVEL_DEBUG, 0, emit_strophe_secrets);
    assert_string_equal(
        out, "DEBUG strophe/conn: SENT: [redacted: <handshake/> may carry a credential]\n"
             "DEBUG strophe/xmpp: SENT: [redacted: <handshake/> may carry a credential]\n"
             "DEBUG strophe/auth: [redacted: component handshake digest]\n"
             "DEBUG strophe/conn: SENT: [redacted: <auth/> may carry a credential]\n"
             "DEBUG strophe/conn: SENT: [redacted: <response/> may carry a credential]\n"
             "DEBUG strophe/conn: SENT: [redacted: <password/> may carry a credential]\n"
             "DEBUG strophe/xmpp: RECV: [redacted: <auth/> may carry a credential]\n"
             "ERROR strophe/xmpp: [redacted: <handshake/> may carry a credential]\n"
             "DEBUG strophe/xmpp: RECV: <message><body>authentic &lt;auth&gt; response</body>"
             "<authors/></message>\n"
             "DEBUG strophe/auth: Sent component handshake to the server.\n"
             "DEBUG strophe/xmpp: RECV: [redacted: <handshake/> may carry a credential]\n");
    assert_null(strstr(out, "SECRET"));
    assert_null(strstr(out, "0123456789abcdef"));
    free(out);

    /* Not even a redaction notice for debug lines when not at debug. */
    out = run_logged(LOG_LEVEL_INFO, 0, emit_strophe_secrets);
    assert_string_equal(out,
                        "ERROR strophe/xmpp: [redacted: <handshake/> may carry a credential]\n");
    free(out);
}

/* A minimal XEP-0114 server on loopback: libstrophe's real debug output of
 * a component handshake goes through the logger without the credential. */
struct fake_server {
    int listener, peer;
    char got[8192];
    size_t len;
    int sent_header, sent_ok;
};

static void fake_server_start(struct fake_server *fs, unsigned short *port)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;

    memset(fs, 0, sizeof *fs);
    fs->peer = -1;
    fs->listener = socket(AF_INET, SOCK_STREAM, 0);
    assert_true(fs->listener >= 0);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(bind(fs->listener, (struct sockaddr *)&sa, sizeof sa), 0);
    assert_int_equal(listen(fs->listener, 1), 0);
    assert_int_equal(getsockname(fs->listener, (struct sockaddr *)&sa, &salen), 0);
    assert_int_equal(fcntl(fs->listener, F_SETFL, O_NONBLOCK), 0);
    *port = ntohs(sa.sin_port);
}

static void fake_server_send(int fd, const char *text)
{
    assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
}

static void fake_server_step(struct fake_server *fs)
{
    ssize_t got;

    if (fs->peer < 0) {
        fs->peer = accept(fs->listener, NULL, NULL);
        if (fs->peer < 0)
            return;
        assert_int_equal(fcntl(fs->peer, F_SETFL, O_NONBLOCK), 0);
    }
    got = read(fs->peer, fs->got + fs->len, sizeof fs->got - 1 - fs->len);
    if (got > 0) {
        fs->len += (size_t)got;
        fs->got[fs->len] = '\0';
    }
    if (!fs->sent_header && strstr(fs->got, "<stream:stream")) {
        fake_server_send(fs->peer, "<?xml version='1.0'?><stream:stream "
                                   "xmlns:stream='http://etherx.jabber.org/streams' "
                                   "xmlns='jabber:component:accept' from='bitween.localhost' "
                                   "id='streamid42'>");
        fs->sent_header = 1;
    }
    if (fs->sent_header && !fs->sent_ok && strstr(fs->got, "</handshake>")) {
        fake_server_send(fs->peer, "<handshake/>");
        fs->sent_ok = 1;
    }
}

static double now_seconds(void)
{
    struct timespec ts;

    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void record_conn_event(xmpp_conn_t *conn, xmpp_conn_event_t status, int error,
                              xmpp_stream_error_t *stream_error, void *userdata)
{
    int *state = userdata;

    (void)conn;
    (void)error;
    (void)stream_error;
    *state = status == XMPP_CONN_CONNECT ? 1 : -1;
}

static void log__strophe__redacts_real_component_handshake(void **state)
{
    struct capture c;
    struct fake_server fs;
    log_t *log;
    xmpp_ctx_t *ctx;
    xmpp_conn_t *conn;
    unsigned short port;
    int connected = 0;
    double deadline;
    char digest[64], *out, *p, *q;

    (void)state;
    fake_server_start(&fs, &port);
    capture_start(&c);
    log = log_new(c.fds[1], LOG_LEVEL_DEBUG, 0);
    assert_non_null(log);
    ctx = xmpp_ctx_new(NULL, log_strophe(log));
    assert_non_null(ctx);
    conn = xmpp_conn_new(ctx);
    assert_non_null(conn);
    assert_int_equal(xmpp_compat_component_prepare(conn), XMPP_EOK);
    xmpp_conn_set_jid(conn, "bitween.localhost");
    xmpp_conn_set_pass(conn, "TOPSECRETPASS");
    assert_int_equal(xmpp_connect_component(conn, "127.0.0.1", port, record_conn_event, &connected),
                     XMPP_EOK);

    deadline = now_seconds() + 10.0;
    while (connected == 0 && now_seconds() < deadline) {
        xmpp_run_once(ctx, 5);
        fake_server_step(&fs);
    }
    assert_int_equal(connected, 1);

    /* The digest the component really sent, to look for in the log. */
    p = strstr(fs.got, "<handshake");
    assert_non_null(p);
    p = strchr(p, '>');
    assert_non_null(p);
    q = strchr(++p, '<');
    assert_non_null(q);
    assert_true(q - p > 20 && (size_t)(q - p) < sizeof digest);
    memcpy(digest, p, (size_t)(q - p));
    digest[q - p] = '\0';

    close(fs.peer); /* the server goes away: libstrophe sees EOF */
    deadline = now_seconds() + 10.0;
    while (connected == 1 && now_seconds() < deadline)
        xmpp_run_once(ctx, 5);
    assert_int_equal(connected, -1);
    xmpp_conn_release(conn);
    xmpp_ctx_free(ctx);
    close(fs.listener);
    log_free(log);
    out = capture_finish(&c);

    assert_non_null(strstr(out, "DEBUG strophe/conn: SENT: [redacted: <handshake/> may carry a "
                                "credential]\n"));
    assert_non_null(strstr(out, "DEBUG strophe/auth: [redacted: component handshake digest]\n"));
    assert_non_null(strstr(out, "DEBUG strophe/xmpp: RECV: [redacted: <handshake/>"));
    assert_null(strstr(out, digest));
    assert_null(strstr(out, "TOPSECRETPASS"));
    /* Everything libstrophe said is in our format. */
    for (p = out; (q = strchr(p, '\n')) != NULL; p = q + 1) {
        *q = '\0';
        if (!strstr(p, " strophe/"))
            fail_msg("foreign line: %s", p);
    }
    assert_string_equal(p, "");
    free(out);
}

/* ---- libpq --------------------------------------------------------------- */

static void emit_pq_notices(log_t *log)
{
    log_pq_notice(log, "WARNING:  there is no transaction in progress\n");
    log_pq_notice(log, "NOTICE:  relation \"x\" already exists, skipping\r\n");
    log_pq_notice(log, "WARNING:  first\nDETAIL:  second\n\n");
    log_pq_notice(log, "no newline");
    log_pq_notice(log, "");
    log_pq_notice(log, NULL);
    log_pq_notice(NULL, "dropped");
}

static void log__pq_notice__strips_trailing_newline(void **state)
{
    (void)state;
    expect_output(LOG_LEVEL_WARN, emit_pq_notices,
                  "WARN postgres: WARNING:  there is no transaction in progress\n"
                  "WARN postgres: NOTICE:  relation \"x\" already exists, skipping\n"
                  "WARN postgres: WARNING:  first\\nDETAIL:  second\n"
                  "WARN postgres: no newline\n"
                  "WARN postgres: \n");
    expect_output(LOG_LEVEL_ERROR, emit_pq_notices, "");
}

static void emit_long_pq_notice(log_t *log)
{
    char *s = repeat('n', 3 * LOG_MSG_MAX);

    s[3 * LOG_MSG_MAX - 1] = '\n';
    log_pq_notice(log, s);
    free(s);
}

static void log__pq_notice__truncates_long_notice(void **state)
{
    char *out = run_logged(LOG_LEVEL_WARN, 0, emit_long_pq_notice);
    char *msg = message_of(out, "WARN postgres: ");
    size_t i;

    (void)state;
    for (i = 0; i < LOG_MSG_MAX; i++)
        assert_int_equal(msg[i], 'n');
    assert_string_equal(msg + LOG_MSG_MAX, LOG_TRUNCATED_MARK);
    free(out);
}

/* ---- concurrency --------------------------------------------------------- */

#define THREADS 4
#define LINES   1000

struct writer {
    log_t *log;
    int id;
};

static void *writer_run(void *arg)
{
    struct writer *w = arg;
    char pad[3001];
    int i;

    memset(pad, 'p', sizeof pad - 1);
    pad[sizeof pad - 1] = '\0';
    for (i = 0; i < LINES; i++) {
        /* Every 10th line is longer than PIPE_BUF, so the kernel alone
         * would not keep it whole. */
        LOG_INFO(w->log, "worker", "thread=%d line=%d pad=%s end", w->id, i,
                 i % 10 == 0 ? pad : "");
    }
    return NULL;
}

static void log__concurrent__lines_never_interleave(void **state)
{
    struct capture c;
    struct writer writers[THREADS];
    pthread_t threads[THREADS];
    int next[THREADS] = {0};
    log_t *log;
    char *out, *line, *nl;
    size_t count = 0;
    int t;

    (void)state;
    capture_start(&c);
    log = log_new(c.fds[1], LOG_LEVEL_INFO, 1);
    assert_non_null(log);
    for (t = 0; t < THREADS; t++) {
        writers[t].log = log;
        writers[t].id = t;
        assert_int_equal(pthread_create(&threads[t], NULL, writer_run, &writers[t]), 0);
    }
    for (t = 0; t < THREADS; t++)
        assert_int_equal(pthread_join(threads[t], NULL), 0);
    assert_int_equal(log_dropped(log), 0);
    log_free(log);
    out = capture_finish(&c);

    for (line = out; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        int id, n, consumed = 0;
        const char *body;

        *nl = '\0';
        body = strstr(line, " INFO worker: thread=");
        if (!body || body - line != 24)
            fail_msg("malformed line %zu: %.80s", count, line);
        if (sscanf(body, " INFO worker: thread=%d line=%d pad=%n", &id, &n, &consumed) != 2 ||
            consumed == 0)
            fail_msg("malformed line %zu: %.80s", count, line);
        assert_true(id >= 0 && id < THREADS);
        assert_int_equal(n, next[id]); /* each thread's lines in order */
        next[id]++;
        assert_int_equal(strlen(body + consumed), (n % 10 == 0 ? 3000u : 0u) + 4);
        assert_string_equal(body + consumed + strlen(body + consumed) - 4, " end");
        count++;
    }
    assert_string_equal(line, ""); /* nothing after the last newline */
    assert_int_equal(count, THREADS * LINES);
    for (t = 0; t < THREADS; t++)
        assert_int_equal(next[t], LINES);
    free(out);
}

/* ---- names, NULL, errno, failures ----------------------------------------- */

static void log__level_parse__accepts_names_case_insensitively(void **state)
{
    static const struct {
        const char *text;
        log_level_t level;
    } ok[] = {
        {"error", LOG_LEVEL_ERROR},  {"ERROR", LOG_LEVEL_ERROR}, {"warn", LOG_LEVEL_WARN},
        {"Warning", LOG_LEVEL_WARN}, {"info", LOG_LEVEL_INFO},   {"iNfO", LOG_LEVEL_INFO},
        {"debug", LOG_LEVEL_DEBUG},  {"DEBUG", LOG_LEVEL_DEBUG},
    };
    static const char *const bad[] = {"", "err", "information", " info", "info ", "trace", "3"};
    log_level_t level;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof ok / sizeof ok[0]; i++) {
        level = LOG_LEVEL_ERROR;
        assert_int_equal(log_level_parse(ok[i].text, &level), 0);
        assert_int_equal(level, ok[i].level);
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        level = LOG_LEVEL_DEBUG;
        assert_int_equal(log_level_parse(bad[i], &level), -1);
        assert_int_equal(level, LOG_LEVEL_DEBUG); /* untouched */
    }
    assert_int_equal(log_level_parse(NULL, &level), -1);
    assert_int_equal(log_level_parse("info", NULL), -1);
}

static void log__level_name__names_each_level(void **state)
{
    (void)state;
    assert_string_equal(log_level_name(LOG_LEVEL_ERROR), "ERROR");
    assert_string_equal(log_level_name(LOG_LEVEL_WARN), "WARN");
    assert_string_equal(log_level_name(LOG_LEVEL_INFO), "INFO");
    assert_string_equal(log_level_name(LOG_LEVEL_DEBUG), "DEBUG");
    assert_string_equal(log_level_name((log_level_t)4), "?");
    assert_string_equal(log_level_name((log_level_t)-1), "?");
}

static void log__null__is_a_no_op(void **state)
{
    (void)state;
    log_free(NULL);
    log_msg(NULL, LOG_LEVEL_ERROR, "x", "nothing");
    LOG_ERROR(NULL, "x", "nothing %d", 1);
    log_set_level(NULL, LOG_LEVEL_DEBUG);
    assert_false(log_enabled(NULL, LOG_LEVEL_ERROR));
    assert_null(log_strophe(NULL));
    assert_int_equal(log_dropped(NULL), 0);
    log_pq_notice(NULL, "x");
}

static void log__msg__preserves_errno(void **state)
{
    log_t *log = log_new(-1, LOG_LEVEL_DEBUG, 1);

    (void)state;
    assert_non_null(log);
    errno = ENOENT;
    LOG_ERROR(log, "t", "open: %s", strerror(errno));
    assert_int_equal(errno, ENOENT);
    log_free(log);
}

static void log__msg__counts_lines_it_cannot_write(void **state)
{
    log_t *log = log_new(-1, LOG_LEVEL_INFO, 0); /* EBADF on every write */

    (void)state;
    assert_non_null(log);
    LOG_INFO(log, "t", "one");
    LOG_ERROR(log, "t", "two");
    LOG_DEBUG(log, "t", "filtered, not dropped");
    assert_int_equal(log_dropped(log), 2);
    log_free(log);
}

static void log__new__clamps_out_of_range_level(void **state)
{
    log_t *log = log_new(-1, (log_level_t)42, 0);

    (void)state;
    assert_non_null(log);
    assert_int_equal(log_get_level(log), LOG_LEVEL_INFO);
    log_free(log);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test(name)
        T(log__msg__formats_level_subsystem_and_message),
        T(log__msg__null_or_empty_subsystem_is_dash),
        T(log__level__filters_below_threshold),
        T(log__set_level__applies_and_ignores_out_of_range),
        T(log__macro__does_not_evaluate_disabled_arguments),
        T(log__msg__escapes_control_characters),
        T(log__msg__truncates_long_messages),
        T(log__msg__bounds_subsystem_tag),
        T(log__timestamps__iso8601_utc_with_milliseconds),
        T(log__strophe__maps_levels_and_area),
        T(log__strophe__redacts_credentials),
        T(log__strophe__redacts_real_component_handshake),
        T(log__pq_notice__strips_trailing_newline),
        T(log__pq_notice__truncates_long_notice),
        T(log__concurrent__lines_never_interleave),
        T(log__level_parse__accepts_names_case_insensitively),
        T(log__level_name__names_each_level),
        T(log__null__is_a_no_op),
        T(log__msg__preserves_errno),
        T(log__msg__counts_lines_it_cannot_write),
        T(log__new__clamps_out_of_range_level),
#undef T
    };
    int rc;

    signal(SIGPIPE, SIG_IGN); /* as the daemons do */
    xmpp_initialize();
    rc = cmocka_run_group_tests_name("log", tests, NULL, NULL);
    xmpp_shutdown();
    return rc;
}
