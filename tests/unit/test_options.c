/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/options.c, the component's option table: the
 * table passes config_table_check(); options_to_settings() maps every
 * option into component_settings_t (each set to a distinct value, so a
 * crossed wire shows) and keeps the defaults otherwise; the domain list is
 * split and trimmed, an empty one refused; reconnect_max_ms below
 * reconnect_min_ms refused; missing required options listed by
 * config_validate(); secrets never printed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "options.h"

/* ---- helpers ----------------------------------------------------------- */

static config_t *new_config(void)
{
    config_t *cfg = config_new(component_options, OPT_COUNT, COMPONENT_ENV_PREFIX);
    assert_non_null(cfg);
    return cfg;
}

static void set_ok(config_t *cfg, size_t index, const char *value)
{
    config_error_t err = {0};

    if (config_set(cfg, index, value, CONFIG_SRC_FLAG, &err) != CONFIG_OK)
        fail_msg("set %s = %s: %s", component_options[index].name, value, err.message);
}

static config_t *config_with_required(const char *domains)
{
    config_t *cfg = new_config();
    config_error_t err = {0};

    set_ok(cfg, OPT_COMPONENT_JID, "shares.example.org");
    set_ok(cfg, OPT_COMPONENT_SECRET, "s3cret-value");
    set_ok(cfg, OPT_DOMAINS, domains);
    set_ok(cfg, OPT_DATABASE_URL, "postgresql://bitween:pw@db/bitween");
    if (config_validate(cfg, &err) != CONFIG_OK)
        fail_msg("validate: %s", err.message);
    return cfg;
}

/* The settings value of integer option `opt`; fails for a non-integer. */
static long long setting_of(const component_settings_t *s, size_t opt)
{
    switch (opt) {
    case OPT_XMPP_PORT:
        return s->xmpp_port;
    case OPT_DB_WORKERS:
        return s->db_workers;
    case OPT_DB_CONNECT_TIMEOUT:
        return s->db_connect_timeout_s;
    case OPT_DB_STATEMENT_TIMEOUT_MS:
        return s->db_statement_timeout_ms;
    case OPT_MAX_RESOURCES:
        return (long long)s->limits.max_resources;
    case OPT_MAX_SHARES:
        return (long long)s->limits.max_shares;
    case OPT_MAX_ADDRESSES:
        return (long long)s->limits.max_addresses;
    case OPT_MAX_NAME_BYTES:
        return (long long)s->limits.max_name_bytes;
    case OPT_MAX_ITEM_BYTES:
        return (long long)s->limits.max_item_bytes;
    case OPT_RECONNECT_MIN_MS:
        return s->reconnect_min_ms;
    case OPT_RECONNECT_MAX_MS:
        return s->reconnect_max_ms;
    case OPT_PUBLISH_RETRY_MAX_MS:
        return s->publish_retry_max_ms;
    case OPT_IQ_TIMEOUT_MS:
        return s->iq_timeout_ms;
    case OPT_PRIVILEGE_WAIT_MS:
        return s->privilege_wait_ms;
    case OPT_CHECK_RATE:
        return s->check_rate;
    case OPT_MAX_PENDING:
        return s->max_pending;
    case OPT_STATE_CACHE_MB:
        return s->state_cache_mb;
    case OPT_MAX_PENDING_PER_USER:
        return s->max_pending_per_user;
    case OPT_LIVENESS_INTERVAL:
        return s->liveness_interval_s;
    case OPT_MAX_REPUBLISHES_IN_FLIGHT:
        return s->max_republishes_in_flight;
    default:
        fail_msg("option %s has no integer setting", component_options[opt].name);
    }
    return -1;
}

/* The admin API's options are read by main.c into api_settings_t (api/api.h),
 * not into the component's settings. */
static int api_option(size_t opt)
{
    return strncmp(component_options[opt].name, "api_", 4) == 0;
}

static size_t count_domains(char **d)
{
    size_t n = 0;
    while (d && d[n])
        n++;
    return n;
}

/* ---- tests -------------------------------------------------------------- */

static void options__table__passes_config_table_check(void **state)
{
    config_error_t err = {0};
    size_t i;

    (void)state;
    if (config_table_check(component_options, OPT_COUNT, &err) != CONFIG_OK)
        fail_msg("table refused: %s", err.message);
    /* every slot of the enum is filled */
    for (i = 0; i < OPT_COUNT; i++) {
        assert_non_null(component_options[i].name);
        assert_non_null(component_options[i].help);
    }
    /* the secrets are secrets (never printed) and required */
    assert_int_equal(component_options[OPT_COMPONENT_SECRET].type, CONFIG_SECRET);
    assert_int_equal(component_options[OPT_DATABASE_URL].type, CONFIG_SECRET);
}

static void options__to_settings__maps_every_option(void **state)
{
    config_t *cfg = config_with_required("example.org");
    component_settings_t s;
    config_error_t err = {0};
    char **domains = NULL;
    long long want[OPT_COUNT];
    char text[32];
    size_t i;

    (void)state;
    set_ok(cfg, OPT_XMPP_HOST, "xmpp.internal");
    /* a distinct in-range value for every integer option */
    for (i = 0; i < OPT_COUNT; i++) {
        const config_option_t *o = &component_options[i];
        if (o->type != CONFIG_INT)
            continue;
        want[i] = o->min + 3 + (long long)i;
        if (i == OPT_RECONNECT_MAX_MS)
            want[i] = 5000 + (long long)i;
        assert_true(want[i] <= o->max);
        snprintf(text, sizeof text, "%lld", want[i]);
        set_ok(cfg, i, text);
    }
    set_ok(cfg, OPT_LOG_LEVEL, "debug");
    set_ok(cfg, OPT_LOG_TIMESTAMPS, "false");
    set_ok(cfg, OPT_ALLOW_LOOPBACK_ADDRESSES, "true");

    assert_int_equal(options_to_settings(cfg, &s, &domains, &err), 0);
    assert_int_equal(s.limits.allow_loopback, 1);
    assert_string_equal(s.xmpp_host, "xmpp.internal");
    assert_string_equal(s.jid, "shares.example.org");
    assert_string_equal(s.secret, "s3cret-value");
    assert_string_equal(s.database_url, "postgresql://bitween:pw@db/bitween");
    assert_ptr_equal(s.domains, domains);
    assert_int_equal(count_domains(domains), 1);
    assert_string_equal(s.domains[0], "example.org");
    for (i = 0; i < OPT_COUNT; i++) {
        if (component_options[i].type != CONFIG_INT || api_option(i))
            continue;
        if (setting_of(&s, i) != want[i])
            fail_msg("%s: setting %lld, want %lld", component_options[i].name, setting_of(&s, i),
                     want[i]);
    }
    /* not options: left at the defaults */
    assert_int_equal(s.limits.max_resource_bytes, SHARES_DEFAULT_MAX_RESOURCE_BYTES);
    assert_non_null(s.name);
    /* the two log options are the daemon's, read from the config directly */
    assert_string_equal(config_str(cfg, OPT_LOG_LEVEL), "debug");
    assert_int_equal(config_bool(cfg, OPT_LOG_TIMESTAMPS), 0);
    options_free_domains(domains);
    config_free(cfg);
}

static void options__to_settings__defaults_match_the_table(void **state)
{
    config_t *cfg = config_with_required("example.org");
    component_settings_t s;
    config_error_t err = {0};
    char **domains = NULL;
    size_t i;

    (void)state;
    assert_int_equal(options_to_settings(cfg, &s, &domains, &err), 0);
    assert_string_equal(s.xmpp_host, component_options[OPT_XMPP_HOST].default_value);
    for (i = 0; i < OPT_COUNT; i++) {
        const config_option_t *o = &component_options[i];
        if (o->type != CONFIG_INT || api_option(i))
            continue;
        assert_non_null(o->default_value);
        if (setting_of(&s, i) != strtoll(o->default_value, NULL, 10))
            fail_msg("%s: setting %lld, default %s", o->name, setting_of(&s, i), o->default_value);
    }
    assert_string_equal(config_str(cfg, OPT_LOG_LEVEL), "info");
    assert_int_equal(config_bool(cfg, OPT_LOG_TIMESTAMPS), 1);
    /* loopback addresses are refused unless allowed */
    assert_int_equal(s.limits.allow_loopback, 0);
    options_free_domains(domains);
    config_free(cfg);
}

static void options__domains__split_and_trimmed(void **state)
{
    static const struct {
        const char *text;
        size_t n;
        const char *d[4];
    } rows[] = {
        {"a.org, b.org,,c.org ", 3, {"a.org", "b.org", "c.org"}},
        {"example.org", 1, {"example.org"}},
        {"\ta.org\t,\t b.org", 2, {"a.org", "b.org"}},
        {",,x.org,", 1, {"x.org"}},
        {"one.org,two.org,three.org,four.org", 4, {"one.org", "two.org", "three.org", "four.org"}},
    };
    size_t r, i;

    (void)state;
    for (r = 0; r < sizeof rows / sizeof rows[0]; r++) {
        config_t *cfg = config_with_required(rows[r].text);
        component_settings_t s;
        config_error_t err = {0};
        char **domains = NULL;

        if (options_to_settings(cfg, &s, &domains, &err) != 0)
            fail_msg("\"%s\" refused: %s", rows[r].text, err.message);
        if (count_domains(domains) != rows[r].n)
            fail_msg("\"%s\": %zu domains, want %zu", rows[r].text, count_domains(domains),
                     rows[r].n);
        for (i = 0; i < rows[r].n; i++)
            assert_string_equal(domains[i], rows[r].d[i]);
        assert_null(domains[rows[r].n]);
        assert_ptr_equal(s.domains, domains);
        options_free_domains(domains);
        config_free(cfg);
    }
    options_free_domains(NULL);
}

static void options__domains__empty_list_is_an_error(void **state)
{
    static const char *const texts[] = {",", " , ,", "\t", ", \t ,,"};
    size_t r;

    (void)state;
    for (r = 0; r < sizeof texts / sizeof texts[0]; r++) {
        config_t *cfg = config_with_required(texts[r]);
        component_settings_t s;
        config_error_t err = {0};
        char **domains = NULL;

        assert_int_equal(options_to_settings(cfg, &s, &domains, &err), -1);
        assert_int_equal(err.code, CONFIG_EINVAL);
        assert_non_null(strstr(err.message, "domain"));
        assert_null(domains);
        config_free(cfg);
    }
}

static void options__reconnect__max_below_min_is_an_error(void **state)
{
    config_t *cfg = config_with_required("example.org");
    component_settings_t s;
    config_error_t err = {0};
    char **domains = NULL;

    (void)state;
    set_ok(cfg, OPT_RECONNECT_MIN_MS, "5000");
    set_ok(cfg, OPT_RECONNECT_MAX_MS, "4999");
    assert_int_equal(options_to_settings(cfg, &s, &domains, &err), -1);
    assert_int_equal(err.code, CONFIG_EINVAL);
    assert_non_null(strstr(err.message, "reconnect_max_ms"));
    assert_non_null(strstr(err.message, "4999"));
    assert_non_null(strstr(err.message, "5000"));
    assert_null(domains);

    /* equal is fine */
    memset(&err, 0, sizeof err);
    set_ok(cfg, OPT_RECONNECT_MAX_MS, "5000");
    assert_int_equal(options_to_settings(cfg, &s, &domains, &err), 0);
    assert_int_equal(s.reconnect_min_ms, 5000);
    assert_int_equal(s.reconnect_max_ms, 5000);
    options_free_domains(domains);
    config_free(cfg);
}

static void options__validate__lists_missing_required(void **state)
{
    static const char *const required[] = {"component_jid", "component_secret", "domains",
                                           "database_url"};
    config_t *cfg = new_config();
    config_error_t err = {0};
    size_t i;

    (void)state;
    assert_int_equal(config_validate(cfg, &err), CONFIG_EINVAL);
    for (i = 0; i < sizeof required / sizeof required[0]; i++)
        if (!strstr(err.message, required[i]))
            fail_msg("\"%s\" does not name %s", err.message, required[i]);
    assert_non_null(strstr(err.message, "BITWEEN_DATABASE_URL"));
    /* nothing optional is listed */
    assert_null(strstr(err.message, "xmpp_port"));
    assert_null(strstr(err.message, "db_workers"));

    /* one left: only it is named */
    set_ok(cfg, OPT_COMPONENT_JID, "shares.example.org");
    set_ok(cfg, OPT_COMPONENT_SECRET, "x");
    set_ok(cfg, OPT_DATABASE_URL, "postgresql:///bitween");
    memset(&err, 0, sizeof err);
    assert_int_equal(config_validate(cfg, &err), CONFIG_EINVAL);
    assert_non_null(strstr(err.message, "domains"));
    assert_null(strstr(err.message, "component_jid"));
    assert_null(strstr(err.message, "database_url"));

    set_ok(cfg, OPT_DOMAINS, "example.org");
    assert_int_equal(config_validate(cfg, &err), CONFIG_OK);
    config_free(cfg);
}

static void options__print__never_shows_secrets(void **state)
{
    config_t *cfg = config_with_required("example.org");
    char buf[8192];
    size_t n;
    FILE *f = tmpfile();

    (void)state;
    assert_non_null(f);
    assert_int_equal(config_print(cfg, f), 0);
    rewind(f);
    n = fread(buf, 1, sizeof buf - 1, f);
    buf[n] = '\0';
    fclose(f);
    assert_non_null(strstr(buf, "component_jid"));
    assert_non_null(strstr(buf, "shares.example.org"));
    assert_null(strstr(buf, "s3cret-value"));
    assert_null(strstr(buf, "bitween:pw"));
    config_free(cfg);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(options__table__passes_config_table_check),
        cmocka_unit_test(options__to_settings__maps_every_option),
        cmocka_unit_test(options__to_settings__defaults_match_the_table),
        cmocka_unit_test(options__domains__split_and_trimmed),
        cmocka_unit_test(options__domains__empty_list_is_an_error),
        cmocka_unit_test(options__reconnect__max_below_min_is_an_error),
        cmocka_unit_test(options__validate__lists_missing_required),
        cmocka_unit_test(options__print__never_shows_secrets),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
