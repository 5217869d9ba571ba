/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/config.c, the typed option table: defaults, the
 * file syntax (comments, quoting, escapes) and every error class with its
 * file:line, whole-or-nothing loads, the environment with `_FILE`
 * variables, precedence of defaults < file < environment < flags, integer
 * bounds and overflow, required options, --print-config and the sample
 * (which must read back as the defaults), reloads, and that a secret's
 * value never appears in any output or message.
 */
#include <limits.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "config.h"

/* ---- the table ---------------------------------------------------------- */

static const char *const level_choices[] = {"error", "warn", "info", "debug", NULL};

enum { O_HOST, O_PORT, O_SECRET, O_LEVEL, O_METRICS, O_JID, O_WORKERS, O_OFFSET, O_MOTD, O_N };

static const config_option_t table[O_N] = {
    [O_HOST] = {.name = "xmpp_host",
                .type = CONFIG_STRING,
                .default_value = "localhost",
                .help = "Host of the XMPP server"},
    [O_PORT] = {.name = "xmpp_port",
                .type = CONFIG_INT,
                .default_value = "5347",
                .min = 1,
                .max = 65535,
                .help = "XEP-0114 port of the XMPP server"},
    [O_SECRET] = {.name = "component_secret",
                  .type = CONFIG_SECRET,
                  .flags = CONFIG_REQUIRED,
                  .help = "Shared secret of the component"},
    [O_LEVEL] = {.name = "log_level",
                 .type = CONFIG_ENUM,
                 .default_value = "info",
                 .choices = level_choices,
                 .flags = CONFIG_RELOADABLE,
                 .help = "Least severe level logged"},
    [O_METRICS] = {.name = "metrics_enabled",
                   .type = CONFIG_BOOL,
                   .default_value = "true",
                   .flags = CONFIG_RELOADABLE,
                   .help = "Serve /metrics"},
    [O_JID] = {.name = "component_jid",
               .type = CONFIG_STRING,
               .flags = CONFIG_REQUIRED,
               .help = "Domain of the component"},
    [O_WORKERS] = {.name = "db_workers",
                   .type = CONFIG_INT,
                   .default_value = "4",
                   .min = 1,
                   .max = 64,
                   .flags = CONFIG_RELOADABLE,
                   .help = "Database worker threads"},
    [O_OFFSET] = {.name = "offset",
                  .type = CONFIG_INT,
                  .default_value = "-3",
                  .help = "An unbounded integer"},
    [O_MOTD] = {.name = "motd",
                .type = CONFIG_STRING,
                .default_value = "hello # \"world\"",
                .flags = CONFIG_RELOADABLE,
                .help = "A default that needs quotes"},
};

#define PREFIX "BITWEEN_"

/* ---- helpers ---------------------------------------------------------- */

static int setup(void **state)
{
    config_t *cfg = config_new(table, O_N, PREFIX);

    if (!cfg)
        return -1;
    *state = cfg;
    return 0;
}

static int teardown(void **state)
{
    config_free(*state);
    return 0;
}

/* Write `len` bytes to a new temporary file; returns its path (free it and
 * unlink it). */
static char *temp_file_n(const char *text, size_t len)
{
    const char *dir = getenv("TMPDIR");
    char *path = malloc(4096);
    int fd;

    assert_non_null(path);
    snprintf(path, 4096, "%s/bitween-config-XXXXXX", dir && *dir ? dir : "/tmp");
    fd = mkstemp(path);
    assert_true(fd >= 0);
    assert_int_equal(write(fd, text, len), (ssize_t)len);
    assert_int_equal(close(fd), 0);
    return path;
}

static char *temp_file(const char *text)
{
    return temp_file_n(text, strlen(text));
}

static void drop_file(char *path)
{
    unlink(path);
    free(path);
}

/* Load `text` as a file; `*path_out`, when not NULL, gets a copy of the
 * path used (for messages). */
static int load_text_n(config_t *cfg, const char *text, size_t len, config_error_t *err,
                       char **path_out)
{
    char *path = temp_file_n(text, len);
    int rc = config_load_file(cfg, path, err);

    if (path_out) {
        *path_out = strdup(path);
        assert_non_null(*path_out);
    }
    drop_file(path);
    return rc;
}

static int load_text(config_t *cfg, const char *text, config_error_t *err)
{
    return load_text_n(cfg, text, strlen(text), err, NULL);
}

static void load_ok(config_t *cfg, const char *text)
{
    config_error_t err = {0};
    int rc = load_text(cfg, text, &err);

    if (rc != CONFIG_OK)
        fail_msg("load: %d %s", rc, err.message);
}

static void set_ok(config_t *cfg, size_t index, const char *value, config_source_t src)
{
    config_error_t err = {0};
    int rc = config_set(cfg, index, value, src, &err);

    if (rc != CONFIG_OK)
        fail_msg("set %s=%s: %d %s", table[index].name, value, rc, err.message);
}

static void env_ok(config_t *cfg, char *const *envp)
{
    config_error_t err = {0};
    int rc = config_apply_env(cfg, envp, &err);

    if (rc != CONFIG_OK)
        fail_msg("env: %d %s", rc, err.message);
}

static int utf8_valid(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0, n, k;

    while (u[i]) {
        if (u[i] < 0x80) {
            i++;
            continue;
        }
        n = u[i] >= 0xf0 ? 3 : u[i] >= 0xe0 ? 2 : u[i] >= 0xc2 ? 1 : 0;
        if (n == 0 || u[i] > 0xf4)
            return 0;
        for (k = 1; k <= n; k++) {
            if ((u[i + k] & 0xc0) != 0x80)
                return 0;
        }
        i += n + 1;
    }
    return 1;
}

static void expect_message(const config_error_t *err, const char *needle)
{
    if (!strstr(err->message, needle))
        fail_msg("message \"%s\" lacks \"%s\"", err->message, needle);
    assert_true(strlen(err->message) < sizeof err->message);
    assert_true(utf8_valid(err->message));
}

/* Snapshot of every value and source, to prove that nothing changed. */
struct snapshot {
    char text[O_N][128];
    int set[O_N];
    config_source_t src[O_N];
};

static void snap(const config_t *cfg, struct snapshot *s)
{
    size_t i;

    memset(s, 0, sizeof *s);
    for (i = 0; i < O_N; i++) {
        const char *t = config_str(cfg, i);

        s->set[i] = t != NULL;
        if (t)
            snprintf(s->text[i], sizeof s->text[i], "%s", t);
        s->src[i] = config_source(cfg, i);
    }
}

static void assert_unchanged(const config_t *cfg, const struct snapshot *before)
{
    struct snapshot now;
    size_t i;

    snap(cfg, &now);
    for (i = 0; i < O_N; i++) {
        assert_int_equal(now.set[i], before->set[i]);
        assert_string_equal(now.text[i], before->text[i]);
        assert_int_equal(now.src[i], before->src[i]);
    }
}

static char *print_to_string(const config_t *cfg)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(config_print(cfg, f), CONFIG_OK);
    assert_int_equal(fclose(f), 0);
    return buf;
}

static char *sample_to_string(const config_option_t *tab, size_t n)
{
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);

    assert_non_null(f);
    assert_int_equal(config_write_sample(tab, n, PREFIX, f), CONFIG_OK);
    assert_int_equal(fclose(f), 0);
    return buf;
}

/* ---- table and defaults ----------------------------------------------- */

static void config__new__holds_defaults(void **state)
{
    config_t *cfg = *state;
    size_t i;

    assert_string_equal(config_str(cfg, O_HOST), "localhost");
    assert_int_equal(config_int(cfg, O_PORT), 5347);
    assert_string_equal(config_str(cfg, O_PORT), "5347");
    assert_null(config_str(cfg, O_SECRET));
    assert_string_equal(config_str(cfg, O_LEVEL), "info");
    assert_int_equal(config_bool(cfg, O_METRICS), 1);
    assert_string_equal(config_str(cfg, O_METRICS), "true");
    assert_null(config_str(cfg, O_JID));
    assert_int_equal(config_int(cfg, O_OFFSET), -3);
    assert_string_equal(config_str(cfg, O_MOTD), "hello # \"world\"");
    for (i = 0; i < O_N; i++)
        assert_int_equal(config_source(cfg, i), CONFIG_SRC_DEFAULT);
    /* Wrong type or index: neutral values. */
    assert_int_equal(config_int(cfg, O_HOST), 0);
    assert_int_equal(config_bool(cfg, O_PORT), 0);
    assert_null(config_str(cfg, O_N));
    assert_int_equal(config_int(cfg, O_N), 0);
    assert_int_equal(config_bool(cfg, O_N), 0);
    assert_int_equal(config_source(cfg, O_N), CONFIG_SRC_DEFAULT);
    assert_string_equal(config_source_name(CONFIG_SRC_FLAG), "flag");
    assert_string_equal(config_source_name((config_source_t)9), "?");
    config_free(NULL);
}

static void config__find__by_exact_name(void **state)
{
    config_t *cfg = *state;
    size_t index = 99;

    assert_int_equal(config_find(cfg, "log_level", &index), CONFIG_OK);
    assert_int_equal(index, O_LEVEL);
    assert_int_equal(config_find(cfg, "LOG_LEVEL", &index), CONFIG_EINVAL);
    assert_int_equal(config_find(cfg, "log", &index), CONFIG_EINVAL);
    assert_int_equal(config_find(cfg, NULL, &index), CONFIG_EINVAL);
    assert_int_equal(index, O_LEVEL);
}

static void config__table_check__rejects_bad_tables(void **state)
{
    static const char *const no_choices[] = {NULL};
    static const char *const spaced[] = {"a b", NULL};
    static const struct {
        config_option_t opt[2];
        size_t n;
        const char *needle;
    } cases[] = {
        {{{.name = "Xmpp", .type = CONFIG_STRING}}, 1, "lower_snake_case"},
        {{{.name = "9lives", .type = CONFIG_STRING}}, 1, "lower_snake_case"},
        {{{.name = "a-b", .type = CONFIG_STRING}}, 1, "lower_snake_case"},
        {{{.name = NULL, .type = CONFIG_STRING}}, 1, "lower_snake_case"},
        {{{.name = "a", .type = CONFIG_STRING}, {.name = "a", .type = CONFIG_INT}},
         2,
         "defined twice"},
        {{{.name = "key", .type = CONFIG_STRING}, {.name = "key_file", .type = CONFIG_STRING}},
         2,
         "_FILE variable of key"},
        {{{.name = "a", .type = (config_type_t)17}}, 1, "unknown type"},
        {{{.name = "a", .type = CONFIG_STRING, .flags = 0x10u}}, 1, "unknown flags"},
        {{{.name = "a", .type = CONFIG_INT, .min = 5, .max = 1}}, 1, "min > max"},
        {{{.name = "a", .type = CONFIG_ENUM}}, 1, "without choices"},
        {{{.name = "a", .type = CONFIG_ENUM, .choices = no_choices}}, 1, "without choices"},
        {{{.name = "a", .type = CONFIG_ENUM, .choices = spaced}}, 1, "bad choice"},
        {{{.name = "a", .type = CONFIG_SECRET, .default_value = "x"}}, 1, "cannot have a default"},
        {{{.name = "a", .type = CONFIG_INT, .min = 1, .max = 9, .default_value = "10"}},
         1,
         "bad default"},
        {{{.name = "a", .type = CONFIG_BOOL, .default_value = "maybe"}}, 1, "bad default"},
        {{{.name = "a", .type = CONFIG_ENUM, .choices = level_choices, .default_value = "loud"}},
         1,
         "bad default"},
    };
    config_error_t err;
    size_t i;

    (void)state;
    assert_int_equal(config_table_check(table, O_N, &err), CONFIG_OK);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_t *cfg;

        memset(&err, 0, sizeof err);
        assert_int_equal(config_table_check(cases[i].opt, cases[i].n, &err), CONFIG_EINVAL);
        assert_int_equal(err.code, CONFIG_EINVAL);
        expect_message(&err, cases[i].needle);
        cfg = config_new(cases[i].opt, cases[i].n, PREFIX);
        assert_null(cfg);
    }
    /* A bad prefix. */
    assert_null(config_new(table, O_N, "bitween_"));
    assert_null(config_new(table, O_N, "BITWEEN-"));
    config_free(config_new(table, O_N, NULL)); /* no prefix is fine */
}

/* ---- file: happy paths -------------------------------------------------- */

static void config__load_file__parses_every_type(void **state)
{
    config_t *cfg = *state;
    size_t i;

    load_ok(cfg, "xmpp_host = xmpp.example.org\n"
                 "xmpp_port = 5348\n"
                 "component_secret = s3cr3t\n"
                 "log_level = debug\n"
                 "metrics_enabled = off\n"
                 "component_jid = shares.example.org\n"
                 "db_workers = 8\n"
                 "offset = -9000000000\n"
                 "motd = plain text\n");
    assert_string_equal(config_str(cfg, O_HOST), "xmpp.example.org");
    assert_int_equal(config_int(cfg, O_PORT), 5348);
    assert_string_equal(config_str(cfg, O_SECRET), "s3cr3t");
    assert_string_equal(config_str(cfg, O_LEVEL), "debug");
    assert_int_equal(config_bool(cfg, O_METRICS), 0);
    assert_string_equal(config_str(cfg, O_METRICS), "false");
    assert_string_equal(config_str(cfg, O_JID), "shares.example.org");
    assert_int_equal(config_int(cfg, O_WORKERS), 8);
    assert_int_equal(config_int(cfg, O_OFFSET), -9000000000LL);
    assert_string_equal(config_str(cfg, O_MOTD), "plain text");
    for (i = 0; i < O_N; i++)
        assert_int_equal(config_source(cfg, i), CONFIG_SRC_FILE);
}

static void config__load_file__empty_file_keeps_defaults(void **state)
{
    config_t *cfg = *state;
    struct snapshot before;

    snap(cfg, &before);
    load_ok(cfg, "");
    load_ok(cfg, "\n\n# only comments\n   \t\n");
    assert_unchanged(cfg, &before);
}

static void config__load_file__comments_and_whitespace(void **state)
{
    config_t *cfg = *state;

    config_error_t err;

    /* A '#' after no whitespace is part of the value, here not an integer. */
    assert_int_equal(load_text(cfg,
                               "   # indented comment\n"
                               "\n"
                               "\txmpp_host\t=\tlocal.example  # trailing comment\n"
                               "xmpp_port=5400#no comment\n",
                               &err),
                     CONFIG_EINVAL);
    expect_message(&err, ":4: invalid value \"5400#no comment\" for xmpp_port");
    assert_string_equal(config_str(cfg, O_HOST), "localhost");

    load_ok(cfg, "\xef\xbb\xbf# BOM\r\n"
                 "\txmpp_host\t=\tlocal.example  # trailing comment\r\n"
                 "xmpp_port=5400\r\n"
                 "component_jid = a#b   \n" /* '#' after no whitespace: value */
                 "motd = #all comment\n"    /* empty value, then a comment */
                 "log_level = warn\t# tab before the comment\n");
    assert_string_equal(config_str(cfg, O_HOST), "local.example");
    assert_int_equal(config_int(cfg, O_PORT), 5400);
    assert_string_equal(config_str(cfg, O_JID), "a#b");
    assert_string_equal(config_str(cfg, O_MOTD), "");
    assert_string_equal(config_str(cfg, O_LEVEL), "warn");
}

static void config__load_file__quoted_values_and_escapes(void **state)
{
    config_t *cfg = *state;

    load_ok(cfg, "motd = \"  a \\\"quoted\\\" # not a comment \\\\ \\n\\tend  \"  # comment\n"
                 "xmpp_host = \"\"\n"
                 "component_jid = \"caf\xc3\xa9\"#comment right after the quote\n"
                 "xmpp_port = \"5350\"\n"
                 "metrics_enabled = \"no\"\n");
    assert_string_equal(config_str(cfg, O_MOTD), "  a \"quoted\" # not a comment \\ \n\tend  ");
    assert_string_equal(config_str(cfg, O_HOST), "");
    assert_string_equal(config_str(cfg, O_JID), "caf\xc3\xa9");
    assert_int_equal(config_int(cfg, O_PORT), 5350);
    assert_int_equal(config_bool(cfg, O_METRICS), 0);
}

/* ---- file: errors ------------------------------------------------------- */

static void config__load_file__reports_errors_with_file_and_line(void **state)
{
    static const struct {
        const char *text;
        unsigned line;
        const char *needle;
    } cases[] = {
        {"nosuch = 1\n", 1, "unknown option \"nosuch\""},
        {"xmpp_port = 1\n# c\nxmpp_port = 2\n", 3, "xmpp_port is set twice (first on line 1)"},
        {"\nxmpp_port 5347\n", 2, "expected `name = value`"},
        {"xmpp_port\n", 1, "expected `name = value`"},
        {"= 5\n", 1, "missing option name"},
        {"xmpp_port = abc\n", 1,
         "invalid value \"abc\" for xmpp_port: expected an integer from 1 to 65535"},
        {"xmpp_port =\n", 1, "invalid value \"\" for xmpp_port"},
        {"offset = 12abc\n", 1, "invalid value \"12abc\" for offset: expected an integer"},
        {"metrics_enabled = maybe\n", 1,
         "invalid value \"maybe\" for metrics_enabled: expected one of true, false, yes, no, "
         "on, off, 1, 0"},
        {"log_level = verbose\n", 1,
         "invalid value \"verbose\" for log_level: expected one of error, warn, info, debug"},
        {"motd = \"open\n", 1, "unterminated quoted value"},
        {"motd = \"ends in backslash\\\n", 1, "unterminated quoted value"},
        {"motd = \"bad \\q escape\"\n", 1, "unknown escape in quoted value for motd"},
        {"motd = \"a\" b\n", 1, "unexpected text after the quoted value of motd"},
        {"motd = a\x01z\n", 1, "control character in line"},
        {"motd = \x1b[31m\n", 1, "control character in line"},
        {"motd = caf\xe9\n", 1, "not valid UTF-8"},
        {"motd = \xed\xa0\x80\n", 1, "not valid UTF-8"},
    };
    config_t *cfg = *state;
    struct snapshot before;
    size_t i;

    snap(cfg, &before);
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_error_t err;
        char *path, where[4200];
        int rc;

        memset(&err, 0, sizeof err);
        rc = load_text_n(cfg, cases[i].text, strlen(cases[i].text), &err, &path);
        if (rc != CONFIG_EINVAL)
            fail_msg("case %zu: rc %d (%s)", i, rc, err.message);
        assert_int_equal(err.code, CONFIG_EINVAL);
        snprintf(where, sizeof where, "%s:%u: ", path, cases[i].line);
        if (strncmp(err.message, where, strlen(where)) != 0)
            fail_msg("case %zu: message \"%s\" does not start with \"%s\"", i, err.message, where);
        expect_message(&err, cases[i].needle);
        assert_unchanged(cfg, &before);
        free(path);
    }
}

static void config__load_file__rejects_nul_byte(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    struct snapshot before;

    snap(cfg, &before);
    assert_int_equal(load_text_n(cfg, "motd = a\0b\n", 11, &err, NULL), CONFIG_EINVAL);
    expect_message(&err, ":1: NUL byte in line");
    assert_unchanged(cfg, &before);
}

static void config__load_file__is_whole_or_nothing(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    struct snapshot before;

    load_ok(cfg, "xmpp_host = first.example\nlog_level = warn\n");
    snap(cfg, &before);
    assert_int_equal(load_text(cfg,
                               "xmpp_host = second.example\n"
                               "log_level = debug\n"
                               "db_workers = 5\n"
                               "xmpp_port = 70000\n"
                               "motd = never reached\n",
                               &err),
                     CONFIG_EINVAL);
    expect_message(&err, ":4: invalid value \"70000\" for xmpp_port");
    assert_unchanged(cfg, &before);
    assert_string_equal(config_str(cfg, O_HOST), "first.example");
    assert_int_equal(config_source(cfg, O_WORKERS), CONFIG_SRC_DEFAULT);
}

static void config__load_file__unreadable_is_eio(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    struct snapshot before;
    char dir[] = "/tmp/bitween-config-dir-XXXXXX";

    snap(cfg, &before);
    assert_int_equal(config_load_file(cfg, "/nonexistent/bitween.conf", &err), CONFIG_EIO);
    assert_int_equal(err.code, CONFIG_EIO);
    expect_message(&err, "cannot open /nonexistent/bitween.conf: ");
    assert_non_null(mkdtemp(dir));
    assert_int_equal(config_load_file(cfg, dir, &err), CONFIG_EIO);
    expect_message(&err, "cannot read ");
    rmdir(dir);
    assert_int_equal(config_load_file(cfg, NULL, &err), CONFIG_EINVAL);
    assert_int_equal(config_load_file(NULL, "/x", NULL), CONFIG_EINVAL);
    assert_unchanged(cfg, &before);
}

static void config__errors__are_bounded_and_valid_utf8(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    char text[2048], *p = text;
    int i;

    (void)state;
    /* A long unknown name of multibyte characters. */
    for (i = 0; i < 300; i++) {
        memcpy(p, "\xc3\xa9", 2);
        p += 2;
    }
    strcpy(p, " = 1\n");
    assert_int_equal(load_text(cfg, text, &err), CONFIG_EINVAL);
    expect_message(&err, "unknown option \"\xc3\xa9\xc3\xa9");
    expect_message(&err, "...\"");

    /* A long value is quoted in part, controls escaped (from a flag). */
    memset(text, 'v', 500);
    text[500] = '\0';
    assert_int_equal(config_set(cfg, O_PORT, text, CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    expect_message(&err, "invalid value \"vvvv");
    expect_message(&err, "vvv...\" for xmpp_port");
    assert_int_equal(config_set(cfg, O_PORT, "1\x1b[2J", CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    expect_message(&err, "invalid value \"1\\x1b[2J\" for xmpp_port");

    /* A very long path shows its end. */
    memset(text, 'd', 1000);
    strcpy(text + 1000, "/bitween.conf");
    text[0] = '/';
    assert_int_equal(config_load_file(cfg, text, &err), CONFIG_EIO);
    expect_message(&err, "cannot open ...ddd");
    expect_message(&err, "d/bitween.conf: ");
}

/* ---- integers, booleans, enums ------------------------------------------ */

static void config__int__bounds_and_overflow(void **state)
{
    static const struct {
        size_t index;
        const char *text;
        int ok;
        long long value;
    } cases[] = {
        {O_PORT, "1", 1, 1},
        {O_PORT, "65535", 1, 65535},
        {O_PORT, "0", 0, 0},
        {O_PORT, "65536", 0, 0},
        {O_PORT, "-1", 0, 0},
        {O_PORT, "+80", 1, 80},
        {O_PORT, "0080", 1, 80},
        {O_PORT, "99999999999999999999", 0, 0},
        {O_PORT, "-99999999999999999999", 0, 0},
        {O_PORT, "", 0, 0},
        {O_PORT, " 80", 0, 0},
        {O_PORT, "80 ", 0, 0},
        {O_PORT, "0x50", 0, 0},
        {O_PORT, "8e1", 0, 0},
        {O_PORT, "+", 0, 0},
        {O_PORT, "--1", 0, 0},
        {O_WORKERS, "64", 1, 64},
        {O_WORKERS, "65", 0, 0},
        {O_OFFSET, "9223372036854775807", 1, LLONG_MAX},
        {O_OFFSET, "-9223372036854775808", 1, LLONG_MIN},
        {O_OFFSET, "9223372036854775808", 0, 0},
        {O_OFFSET, "-9223372036854775809", 0, 0},
        {O_OFFSET, "0", 1, 0},
    };
    config_t *cfg = *state;
    size_t i;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        config_error_t err;
        long long before = config_int(cfg, cases[i].index);
        int rc = config_set(cfg, cases[i].index, cases[i].text, CONFIG_SRC_FLAG, &err);

        if (cases[i].ok) {
            if (rc != CONFIG_OK)
                fail_msg("\"%s\": %s", cases[i].text, err.message);
            assert_int_equal(config_int(cfg, cases[i].index), cases[i].value);
        } else {
            if (rc != CONFIG_EINVAL)
                fail_msg("\"%s\" accepted", cases[i].text);
            expect_message(&err, table[cases[i].index].name);
            assert_int_equal(config_int(cfg, cases[i].index), before);
        }
    }
    /* The canonical text. */
    set_ok(cfg, O_PORT, "+0080", CONFIG_SRC_FLAG);
    assert_string_equal(config_str(cfg, O_PORT), "80");
}

static void config__int__out_of_bounds_in_file_names_range(void **state)
{
    config_t *cfg = *state;
    config_error_t err;

    assert_int_equal(load_text(cfg, "\n\ndb_workers = 0\n", &err), CONFIG_EINVAL);
    expect_message(&err,
                   ":3: invalid value \"0\" for db_workers: expected an integer from 1 to 64");
    assert_int_equal(load_text(cfg, "xmpp_port = 99999999999999999999\n", &err), CONFIG_EINVAL);
    expect_message(&err, ":1: invalid value \"99999999999999999999\" for xmpp_port: expected an "
                         "integer from 1 to 65535");
}

static void config__bool__accepts_every_spelling(void **state)
{
    static const char *const yes[] = {"true", "TRUE", "yes", "Yes", "on", "ON", "1"};
    static const char *const no[] = {"false", "False", "no", "NO", "off", "Off", "0"};
    static const char *const bad[] = {"", "2", "y", "n", "truthy", " true", "enable"};
    config_t *cfg = *state;
    config_error_t err;
    size_t i;

    for (i = 0; i < sizeof yes / sizeof yes[0]; i++) {
        set_ok(cfg, O_METRICS, "false", CONFIG_SRC_FLAG);
        set_ok(cfg, O_METRICS, yes[i], CONFIG_SRC_FLAG);
        assert_int_equal(config_bool(cfg, O_METRICS), 1);
        assert_string_equal(config_str(cfg, O_METRICS), "true");
    }
    for (i = 0; i < sizeof no / sizeof no[0]; i++) {
        set_ok(cfg, O_METRICS, "true", CONFIG_SRC_FLAG);
        set_ok(cfg, O_METRICS, no[i], CONFIG_SRC_FLAG);
        assert_int_equal(config_bool(cfg, O_METRICS), 0);
        assert_string_equal(config_str(cfg, O_METRICS), "false");
    }
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(config_set(cfg, O_METRICS, bad[i], CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
        expect_message(&err, "expected one of true, false, yes, no, on, off, 1, 0");
    }
}

static void config__enum__matches_any_case_keeps_spelling(void **state)
{
    config_t *cfg = *state;
    config_error_t err;

    set_ok(cfg, O_LEVEL, "DeBuG", CONFIG_SRC_FLAG);
    assert_string_equal(config_str(cfg, O_LEVEL), "debug");
    assert_int_equal(config_set(cfg, O_LEVEL, "warning", CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    expect_message(&err, "expected one of error, warn, info, debug");
    assert_string_equal(config_str(cfg, O_LEVEL), "debug");
}

static void config__set__rejects_bad_arguments(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    struct snapshot before;

    snap(cfg, &before);
    assert_int_equal(config_set(cfg, O_N, "x", CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    assert_int_equal(config_set(cfg, O_HOST, NULL, CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    assert_int_equal(config_set(cfg, O_HOST, "x", (config_source_t)7, &err), CONFIG_EINVAL);
    assert_int_equal(config_set(NULL, O_HOST, "x", CONFIG_SRC_FLAG, NULL), CONFIG_EINVAL);
    assert_int_equal(config_set(cfg, O_HOST, "a\rb", CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    expect_message(&err, "for xmpp_host: contains a control character");
    assert_int_equal(config_set(cfg, O_HOST, "\xff", CONFIG_SRC_FLAG, &err), CONFIG_EINVAL);
    expect_message(&err, "for xmpp_host: not valid UTF-8");
    assert_unchanged(cfg, &before);
    /* Tab and newline are fine in strings (the file writes them \t \n). */
    set_ok(cfg, O_MOTD, "a\tb\nc", CONFIG_SRC_FLAG);
}

/* ---- environment ------------------------------------------------------- */

static void config__apply_env__overrides_and_names_variables(void **state)
{
    config_t *cfg = *state;
    char *const env[] = {
        "PATH=/usr/bin",
        "BITWEEN_XMPP_PORT=6000",
        "BITWEEN_LOG_LEVEL=ERROR",
        "BITWEEN_METRICS_ENABLED=no",
        "BITWEEN_CONFIG=/etc/bitween/component.conf", /* not an option: ignored */
        "BITWEEN_XMPP_PORTS=1",                       /* nor this */
        "XMPP_HOST=elsewhere",                        /* no prefix */
        "BITWEEN_XMPP_HOST=",                         /* set, to empty */
        "BITWEEN_XMPP_PORT=7000",                     /* duplicate: first wins, as getenv */
        NULL,
    };

    load_ok(cfg, "xmpp_port = 5000\nlog_level = debug\ndb_workers = 9\n");
    env_ok(cfg, env);
    assert_int_equal(config_int(cfg, O_PORT), 6000);
    assert_int_equal(config_source(cfg, O_PORT), CONFIG_SRC_ENV);
    assert_string_equal(config_str(cfg, O_LEVEL), "error");
    assert_int_equal(config_bool(cfg, O_METRICS), 0);
    assert_string_equal(config_str(cfg, O_HOST), "");
    assert_int_equal(config_source(cfg, O_HOST), CONFIG_SRC_ENV);
    assert_int_equal(config_int(cfg, O_WORKERS), 9);
    assert_int_equal(config_source(cfg, O_WORKERS), CONFIG_SRC_FILE);
}

static void config__apply_env__reads_file_variables(void **state)
{
    config_t *cfg = *state;
    char *secret = temp_file("hunter2 with spaces\n");
    char *port = temp_file("5999\r\n\n");
    char var1[4200], var2[4200];
    char *env[3];

    snprintf(var1, sizeof var1, "BITWEEN_COMPONENT_SECRET_FILE=%s", secret);
    snprintf(var2, sizeof var2, "BITWEEN_XMPP_PORT_FILE=%s", port);
    env[0] = var1;
    env[1] = var2;
    env[2] = NULL;
    env_ok(cfg, env);
    assert_string_equal(config_str(cfg, O_SECRET), "hunter2 with spaces");
    assert_int_equal(config_source(cfg, O_SECRET), CONFIG_SRC_ENV);
    assert_int_equal(config_int(cfg, O_PORT), 5999);
    drop_file(secret);
    drop_file(port);
}

static void config__apply_env__rejects_value_and_file_both_set(void **state)
{
    config_t *cfg = *state;
    char *path = temp_file("x\n");
    char var[4200];
    char *env[4];
    config_error_t err;
    struct snapshot before;

    snprintf(var, sizeof var, "BITWEEN_COMPONENT_SECRET_FILE=%s", path);
    env[0] = "BITWEEN_XMPP_PORT=6000"; /* valid, but must not be applied */
    env[1] = "BITWEEN_COMPONENT_SECRET=direct";
    env[2] = var;
    env[3] = NULL;
    snap(cfg, &before);
    assert_int_equal(config_apply_env(cfg, env, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_COMPONENT_SECRET and BITWEEN_COMPONENT_SECRET_FILE are both set");
    assert_unchanged(cfg, &before);
    drop_file(path);
}

static void config__apply_env__errors_are_whole_or_nothing(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    struct snapshot before;
    char *const bad_port[] = {"BITWEEN_XMPP_HOST=h.example", "BITWEEN_XMPP_PORT=http", NULL};
    char *const bad_level[] = {"BITWEEN_LOG_LEVEL=loud", NULL};
    char *const missing[] = {"BITWEEN_XMPP_HOST=h.example",
                             "BITWEEN_COMPONENT_JID_FILE=/nonexistent/jid", NULL};
    char *const empty_path[] = {"BITWEEN_COMPONENT_JID_FILE=", NULL};

    snap(cfg, &before);
    assert_int_equal(config_apply_env(cfg, bad_port, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_XMPP_PORT: invalid value \"http\" for xmpp_port: expected an "
                         "integer from 1 to 65535");
    assert_int_equal(config_apply_env(cfg, bad_level, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_LOG_LEVEL: invalid value \"loud\" for log_level");
    assert_int_equal(config_apply_env(cfg, missing, &err), CONFIG_EIO);
    expect_message(&err, "BITWEEN_COMPONENT_JID_FILE: cannot open /nonexistent/jid: ");
    assert_int_equal(config_apply_env(cfg, empty_path, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_COMPONENT_JID_FILE: empty path");
    assert_unchanged(cfg, &before);
}

static void config__apply_env__file_variable_checked_like_values(void **state)
{
    config_t *cfg = *state;
    char *port = temp_file("70000\n");
    char *nul = temp_file_n("ab\0c", 4);
    char var[4200];
    char *env[] = {var, NULL};
    config_error_t err;

    snprintf(var, sizeof var, "BITWEEN_XMPP_PORT_FILE=%s", port);
    assert_int_equal(config_apply_env(cfg, env, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_XMPP_PORT_FILE: invalid value \"70000\" for xmpp_port");
    snprintf(var, sizeof var, "BITWEEN_COMPONENT_JID_FILE=%s", nul);
    assert_int_equal(config_apply_env(cfg, env, &err), CONFIG_EINVAL);
    expect_message(&err, "holds a NUL byte");
    drop_file(port);
    drop_file(nul);
}

static void config__apply_env__defaults_to_environ(void **state)
{
    config_t *cfg = *state;

    assert_int_equal(setenv("BITWEEN_DB_WORKERS", "17", 1), 0);
    env_ok(cfg, NULL);
    assert_int_equal(unsetenv("BITWEEN_DB_WORKERS"), 0);
    assert_int_equal(config_int(cfg, O_WORKERS), 17);
    assert_int_equal(config_source(cfg, O_WORKERS), CONFIG_SRC_ENV);
}

/* ---- precedence, validation --------------------------------------------- */

static void config__precedence__defaults_file_env_flags(void **state)
{
    config_t *cfg = *state;
    char *const env[] = {"BITWEEN_XMPP_PORT=2000", "BITWEEN_DB_WORKERS=20", NULL};

    /* The daemon's order. */
    load_ok(cfg, "xmpp_port = 1000\ndb_workers = 10\nlog_level = warn\n");
    env_ok(cfg, env);
    set_ok(cfg, O_PORT, "3000", CONFIG_SRC_FLAG);
    assert_int_equal(config_int(cfg, O_PORT), 3000);
    assert_int_equal(config_source(cfg, O_PORT), CONFIG_SRC_FLAG);
    assert_int_equal(config_int(cfg, O_WORKERS), 20);
    assert_int_equal(config_source(cfg, O_WORKERS), CONFIG_SRC_ENV);
    assert_string_equal(config_str(cfg, O_LEVEL), "warn");
    assert_int_equal(config_source(cfg, O_LEVEL), CONFIG_SRC_FILE);
    assert_int_equal(config_int(cfg, O_OFFSET), -3);
    assert_int_equal(config_source(cfg, O_OFFSET), CONFIG_SRC_DEFAULT);
}

static void config__precedence__holds_whatever_the_call_order(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    char *const env[] = {"BITWEEN_XMPP_PORT=2000", "BITWEEN_DB_WORKERS=20", NULL};

    set_ok(cfg, O_PORT, "3000", CONFIG_SRC_FLAG);
    env_ok(cfg, env);
    load_ok(cfg, "xmpp_port = 1000\ndb_workers = 10\nlog_level = warn\n");
    assert_int_equal(config_int(cfg, O_PORT), 3000);
    assert_int_equal(config_int(cfg, O_WORKERS), 20);
    assert_string_equal(config_str(cfg, O_LEVEL), "warn");
    /* A lower source is still checked. */
    assert_int_equal(load_text(cfg, "xmpp_port = 0\n", &err), CONFIG_EINVAL);
    assert_int_equal(config_set(cfg, O_PORT, "1001", CONFIG_SRC_FILE, &err), CONFIG_OK);
    assert_int_equal(config_int(cfg, O_PORT), 3000);
}

static void config__validate__requires_options(void **state)
{
    config_t *cfg = *state;
    config_error_t err;

    assert_int_equal(config_validate(cfg, &err), CONFIG_EINVAL);
    expect_message(&err, "missing required options: component_secret "
                         "(BITWEEN_COMPONENT_SECRET), component_jid (BITWEEN_COMPONENT_JID)");
    set_ok(cfg, O_JID, "shares.example.org", CONFIG_SRC_FLAG);
    set_ok(cfg, O_SECRET, "", CONFIG_SRC_FLAG); /* empty counts as missing */
    assert_int_equal(config_validate(cfg, &err), CONFIG_EINVAL);
    expect_message(&err, "missing required option: component_secret (BITWEEN_COMPONENT_SECRET)");
    set_ok(cfg, O_SECRET, "s", CONFIG_SRC_FLAG);
    assert_int_equal(config_validate(cfg, &err), CONFIG_OK);
    assert_int_equal(err.code, CONFIG_OK);
    assert_string_equal(err.message, "");
    assert_int_equal(config_validate(NULL, &err), CONFIG_EINVAL);
}

/* ---- secrets -------------------------------------------------------------- */

static void config__secret__never_printed(void **state)
{
    config_t *cfg = *state;
    config_error_t err;
    char *const env[] = {"BITWEEN_COMPONENT_SECRET=hunter2\x01", NULL};
    char *out;

    assert_int_equal(config_apply_env(cfg, env, &err), CONFIG_EINVAL);
    expect_message(&err, "BITWEEN_COMPONENT_SECRET: invalid value for component_secret: contains "
                         "a control character");
    assert_null(strstr(err.message, "hunter2"));
    assert_int_equal(config_set(cfg, O_SECRET, "hunter2\xff", CONFIG_SRC_FLAG, &err),
                     CONFIG_EINVAL);
    assert_null(strstr(err.message, "hunter2"));

    load_ok(cfg, "component_secret = \"hunter2\"\n");
    assert_string_equal(config_str(cfg, O_SECRET), "hunter2");
    out = print_to_string(cfg);
    assert_non_null(strstr(out, "component_secret = (set)  # file\n"));
    assert_null(strstr(out, "hunter2"));
    free(out);
}

/* ---- output ------------------------------------------------------------- */

static void config__print__lists_every_option_with_source(void **state)
{
    config_t *cfg = *state;
    char *const env[] = {"BITWEEN_DB_WORKERS=12", NULL};
    char *out;

    out = print_to_string(cfg);
    assert_string_equal(out, "xmpp_host = localhost  # default\n"
                             "xmpp_port = 5347  # default\n"
                             "component_secret = (unset)  # default\n"
                             "log_level = info  # default\n"
                             "metrics_enabled = true  # default\n"
                             "component_jid =  # unset\n"
                             "db_workers = 4  # default\n"
                             "offset = -3  # default\n"
                             "motd = \"hello # \\\"world\\\"\"  # default\n");
    free(out);

    load_ok(cfg, "xmpp_host = \" padded\"\nmetrics_enabled = ON\nmotd = \"a\\\\b\\tc\\nd\"\n");
    env_ok(cfg, env);
    set_ok(cfg, O_JID, "shares.example.org", CONFIG_SRC_FLAG);
    out = print_to_string(cfg);
    assert_string_equal(out, "xmpp_host = \" padded\"  # file\n"
                             "xmpp_port = 5347  # default\n"
                             "component_secret = (unset)  # default\n"
                             "log_level = info  # default\n"
                             "metrics_enabled = true  # file\n"
                             "component_jid = shares.example.org  # flag\n"
                             "db_workers = 12  # env\n"
                             "offset = -3  # default\n"
                             "motd = \"a\\\\b\\tc\\nd\"  # file\n");
    free(out);
}

static void config__print__reads_back_as_the_same_values(void **state)
{
    config_t *cfg = *state, *back;
    char *out, *line, *nl, *path;
    size_t i;

    set_ok(cfg, O_MOTD, "  \"#\\\t\n x ", CONFIG_SRC_FLAG);
    set_ok(cfg, O_HOST, "", CONFIG_SRC_FLAG);
    set_ok(cfg, O_JID, "caf\xc3\xa9#1", CONFIG_SRC_FLAG);
    out = print_to_string(cfg);
    /* Drop the secret's line, which is not meant to read back. */
    for (line = out; (nl = strchr(line, '\n')) != NULL; line = nl + 1) {
        if (strncmp(line, "component_secret", 16) == 0) {
            memmove(line, nl + 1, strlen(nl + 1) + 1);
            break;
        }
    }
    back = config_new(table, O_N, PREFIX);
    assert_non_null(back);
    path = temp_file(out);
    assert_int_equal(config_load_file(back, path, NULL), CONFIG_OK);
    for (i = 0; i < O_N; i++) {
        if (i == O_SECRET)
            continue;
        assert_string_equal(config_str(back, i), config_str(cfg, i));
    }
    drop_file(path);
    config_free(back);
    free(out);
}

static void config__write_sample__documents_every_option(void **state)
{
    char *out = sample_to_string(table, O_N);

    (void)state;
    assert_string_equal(
        out,
        "# Sample configuration: every option with its default, commented out.\n"
        "# Format: `name = value`, one per line; `#` starts a comment; a value in\n"
        "# double quotes may use \\\" \\\\ \\n \\t. Precedence: defaults < this file <\n"
        "# environment (BITWEEN_<NAME>, or BITWEEN_<NAME>_FILE naming a file that holds\n"
        "# the value) < command-line flags.\n"
        "\n"
        "# Host of the XMPP server\n"
        "# string, default localhost, env BITWEEN_XMPP_HOST, restart to change\n"
        "#xmpp_host = localhost\n"
        "\n"
        "# XEP-0114 port of the XMPP server\n"
        "# integer, default 5347, range 1..65535, env BITWEEN_XMPP_PORT, restart to change\n"
        "#xmpp_port = 5347\n"
        "\n"
        "# Shared secret of the component\n"
        "# secret, required, no default, env BITWEEN_COMPONENT_SECRET or "
        "BITWEEN_COMPONENT_SECRET_FILE, restart to change\n"
        "# component_secret =\n"
        "\n"
        "# Least severe level logged\n"
        "# enum, default info, one of error|warn|info|debug, env BITWEEN_LOG_LEVEL, reloadable\n"
        "#log_level = info\n"
        "\n"
        "# Serve /metrics\n"
        "# boolean, default true, env BITWEEN_METRICS_ENABLED, reloadable\n"
        "#metrics_enabled = true\n"
        "\n"
        "# Domain of the component\n"
        "# string, required, no default, env BITWEEN_COMPONENT_JID, restart to change\n"
        "# component_jid =\n"
        "\n"
        "# Database worker threads\n"
        "# integer, default 4, range 1..64, env BITWEEN_DB_WORKERS, reloadable\n"
        "#db_workers = 4\n"
        "\n"
        "# An unbounded integer\n"
        "# integer, default -3, env BITWEEN_OFFSET, restart to change\n"
        "#offset = -3\n"
        "\n"
        "# A default that needs quotes\n"
        "# string, default \"hello # \\\"world\\\"\", env BITWEEN_MOTD, reloadable\n"
        "#motd = \"hello # \\\"world\\\"\"\n");
    free(out);
    assert_int_equal(config_write_sample(table, O_N, "bad prefix", stdout), CONFIG_EINVAL);
}

static void config__write_sample__uncommented_reads_back_as_defaults(void **state)
{
    char *out = sample_to_string(table, O_N);
    char *p, *path;
    config_t *cfg = *state, *defaults = config_new(table, O_N, PREFIX);
    size_t i, uncommented = 0;

    assert_non_null(defaults);
    /* Remove the '#' of every `#name = default` line. */
    for (p = out; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL) {
        if (p[0] == '#' && p[1] >= 'a' && p[1] <= 'z') {
            memmove(p, p + 1, strlen(p + 1) + 1);
            uncommented++;
        }
    }
    assert_int_equal(uncommented, O_N - 2); /* all but the two without default */
    path = temp_file(out);
    assert_int_equal(config_load_file(cfg, path, NULL), CONFIG_OK);
    for (i = 0; i < O_N; i++) {
        const char *a = config_str(cfg, i), *b = config_str(defaults, i);

        if (!b) {
            assert_null(a);
            continue;
        }
        assert_non_null(a);
        assert_string_equal(a, b);
        assert_int_equal(config_source(cfg, i), CONFIG_SRC_FILE);
    }
    drop_file(path);
    config_free(defaults);
    free(out);
}

/* ---- reload ------------------------------------------------------------- */

static void config__reload__applies_reloadable_options(void **state)
{
    config_t *cur = *state, *next = config_new(table, O_N, PREFIX);
    config_error_t err;
    const char *secret;

    assert_non_null(next);
    load_ok(cur, "xmpp_port = 5400\ncomponent_secret = s\n");
    /* a daemon's settings borrow the strings of options that cannot change */
    secret = config_str(cur, O_SECRET);
    load_ok(next, "xmpp_port = 5400\ncomponent_secret = s\nlog_level = debug\n"
                  "metrics_enabled = no\nmotd = new\n");
    assert_int_equal(config_reload(cur, next, &err), CONFIG_OK);
    assert_string_equal(config_str(cur, O_LEVEL), "debug");
    assert_int_equal(config_source(cur, O_LEVEL), CONFIG_SRC_FILE);
    assert_int_equal(config_bool(cur, O_METRICS), 0);
    assert_string_equal(config_str(cur, O_MOTD), "new");
    assert_int_equal(config_int(cur, O_PORT), 5400);
    /* next is untouched and still usable. */
    assert_string_equal(config_str(next, O_MOTD), "new");
    config_free(next);
    assert_string_equal(config_str(cur, O_MOTD), "new"); /* a copy, not borrowed */
    /* what was borrowed before the reload is still valid, and the same */
    assert_ptr_equal(config_str(cur, O_SECRET), secret);
    assert_string_equal(secret, "s");
}

static void config__reload__refuses_non_reloadable_change(void **state)
{
    config_t *cur = *state, *next = config_new(table, O_N, PREFIX);
    config_error_t err;
    struct snapshot before;

    assert_non_null(next);
    load_ok(cur, "component_secret = old\n");
    load_ok(next, "component_secret = new\nlog_level = debug\n");
    snap(cur, &before);
    assert_int_equal(config_reload(cur, next, &err), CONFIG_EINVAL);
    expect_message(&err, "component_secret cannot change on reload (restart required)");
    assert_null(strstr(err.message, "old"));
    assert_null(strstr(err.message, "new"));
    assert_unchanged(cur, &before);

    /* Same value from another source is no change. */
    config_free(next);
    next = config_new(table, O_N, PREFIX);
    assert_non_null(next);
    set_ok(next, O_SECRET, "old", CONFIG_SRC_FLAG);
    set_ok(next, O_PORT, "5347", CONFIG_SRC_FLAG);
    assert_int_equal(config_reload(cur, next, &err), CONFIG_OK);
    config_free(next);
}

static void config__reload__refuses_another_table(void **state)
{
    config_t *cur = *state, *other = config_new(table, O_N - 1, PREFIX);
    config_error_t err;

    assert_non_null(other);
    assert_int_equal(config_reload(cur, other, &err), CONFIG_EINVAL);
    expect_message(&err, "not the same option table");
    assert_int_equal(config_reload(cur, NULL, &err), CONFIG_EINVAL);
    config_free(other);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
#define T(name) cmocka_unit_test_setup_teardown(name, setup, teardown)
        T(config__new__holds_defaults),
        T(config__find__by_exact_name),
        T(config__table_check__rejects_bad_tables),
        T(config__load_file__parses_every_type),
        T(config__load_file__empty_file_keeps_defaults),
        T(config__load_file__comments_and_whitespace),
        T(config__load_file__quoted_values_and_escapes),
        T(config__load_file__reports_errors_with_file_and_line),
        T(config__load_file__rejects_nul_byte),
        T(config__load_file__is_whole_or_nothing),
        T(config__load_file__unreadable_is_eio),
        T(config__errors__are_bounded_and_valid_utf8),
        T(config__int__bounds_and_overflow),
        T(config__int__out_of_bounds_in_file_names_range),
        T(config__bool__accepts_every_spelling),
        T(config__enum__matches_any_case_keeps_spelling),
        T(config__set__rejects_bad_arguments),
        T(config__apply_env__overrides_and_names_variables),
        T(config__apply_env__reads_file_variables),
        T(config__apply_env__rejects_value_and_file_both_set),
        T(config__apply_env__errors_are_whole_or_nothing),
        T(config__apply_env__file_variable_checked_like_values),
        T(config__apply_env__defaults_to_environ),
        T(config__precedence__defaults_file_env_flags),
        T(config__precedence__holds_whatever_the_call_order),
        T(config__validate__requires_options),
        T(config__secret__never_printed),
        T(config__print__lists_every_option_with_source),
        T(config__print__reads_back_as_the_same_values),
        T(config__write_sample__documents_every_option),
        T(config__write_sample__uncommented_reads_back_as_defaults),
        T(config__reload__applies_reloadable_options),
        T(config__reload__refuses_non_reloadable_change),
        T(config__reload__refuses_another_table),
#undef T
    };

    return cmocka_run_group_tests_name("config", tests, NULL, NULL);
}
