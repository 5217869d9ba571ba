/* SPDX-License-Identifier: MIT */
/*
 * bitween-component: command line, configuration (file, BITWEEN_*
 * environment, flags), logging and signals around component_run(), and
 * the admin REST API (api/) started beside it.
 * SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the configuration and
 * applies what may change at run time (the log level).
 */
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api.h"
#include "component.h"
#include "config.h"
#include "log.h"
#include "options.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static void on_stop(int sig)
{
    (void)sig;
    stop_flag = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    reload_flag = 1;
}

static void usage(FILE *out)
{
    fprintf(out, "usage: bitween-component [options]\n"
                 "\n"
                 "XMPP component (XEP-0114) keeping users' per-device file shares in PostgreSQL\n"
                 "and publishing one merged item per user through XEP-0356.\n"
                 "\n"
                 "  -c, --config FILE     read options from FILE (also: BITWEEN_CONFIG)\n"
                 "      --check-config    validate the configuration and exit\n"
                 "      --print-config    print the effective configuration (secrets hidden)\n"
                 "      --sample-config   print a commented sample configuration\n"
                 "  -l, --log-level LVL   error, warn, info or debug\n"
                 "  -h, --help            this help\n"
                 "  -V, --version         print the version\n"
                 "\n"
                 "Every option can be set in the file as `name = value` or in the environment\n"
                 "as BITWEEN_<NAME> (BITWEEN_<NAME>_FILE reads it from a file); see\n"
                 "--sample-config and docs/operations.md.\n");
}

typedef struct app {
    const char *config_path;
    config_t *cfg;
    log_t *log;
} app_t;

/* Load file + environment (+ flags) into a new configuration. */
static config_t *load_config(const char *path, const char *log_level, config_error_t *err)
{
    config_t *cfg = config_new(component_options, OPT_COUNT, COMPONENT_ENV_PREFIX);
    if (!cfg) {
        err->code = CONFIG_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    if ((path && config_load_file(cfg, path, err) != CONFIG_OK) ||
        config_apply_env(cfg, NULL, err) != CONFIG_OK ||
        (log_level &&
         config_set(cfg, OPT_LOG_LEVEL, log_level, CONFIG_SRC_FLAG, err) != CONFIG_OK)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

static void reload(void *arg)
{
    app_t *app = arg;
    config_error_t err;
    config_t *next = load_config(app->config_path, NULL, &err);
    log_level_t level;

    if (!next || config_validate(next, &err) != CONFIG_OK ||
        config_reload(app->cfg, next, &err) != CONFIG_OK) {
        LOG_ERROR(app->log, "config", "reload refused, configuration unchanged: %s", err.message);
        config_free(next);
        return;
    }
    config_free(next);
    if (log_level_parse(config_str(app->cfg, OPT_LOG_LEVEL), &level) == 0)
        log_set_level(app->log, level);
    LOG_INFO(app->log, "config", "configuration reloaded (log level %s)",
             config_str(app->cfg, OPT_LOG_LEVEL));
}

/* The admin API's settings: its own options, the component's database. */
static void api_settings_from(const config_t *cfg, const component_settings_t *cs,
                              api_settings_t *as)
{
    api_settings_default(as);
    as->address = config_str(cfg, OPT_API_ADDRESS);
    as->port = (unsigned)config_int(cfg, OPT_API_PORT);
    as->token = config_str(cfg, OPT_API_TOKEN);
    as->threads = (unsigned)config_int(cfg, OPT_API_THREADS);
    as->database_url = cs->database_url;
    as->db_connect_timeout_s = cs->db_connect_timeout_s;
    as->db_statement_timeout_ms = cs->db_statement_timeout_ms;
    as->command_timeout_ms = (unsigned)config_int(cfg, OPT_API_TIMEOUT_MS);
    as->max_body_bytes = (size_t)config_int(cfg, OPT_API_MAX_BODY_BYTES);
    as->stats_ttl_s = (unsigned)config_int(cfg, OPT_API_STATS_TTL);
    as->max_connections = (unsigned)config_int(cfg, OPT_API_MAX_CONNECTIONS);
    as->max_per_client = (unsigned)config_int(cfg, OPT_API_MAX_CONNECTIONS_PER_CLIENT);
    as->idle_timeout_s = (unsigned)config_int(cfg, OPT_API_IDLE_TIMEOUT);
}

int main(int argc, char **argv)
{
    enum { O_CHECK = 256, O_PRINT, O_SAMPLE };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, O_CHECK},
        {"print-config", no_argument, NULL, O_PRINT},
        {"sample-config", no_argument, NULL, O_SAMPLE},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    app_t app = {0};
    const char *log_level = NULL;
    int mode = 0, opt, rc = 1;
    config_error_t err;
    component_settings_t settings;
    char **domains = NULL;
    component_t *comp = NULL;
    api_settings_t api_settings;
    api_t *api = NULL;
    log_level_t level = LOG_LEVEL_INFO;
    struct sigaction sa;

    app.config_path = getenv("BITWEEN_CONFIG");
    while ((opt = getopt_long(argc, argv, "c:l:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            app.config_path = optarg;
            break;
        case 'l':
            log_level = optarg;
            break;
        case O_CHECK:
        case O_PRINT:
        case O_SAMPLE:
            mode = opt;
            break;
        case 'h':
            usage(stdout);
            return 0;
        case 'V':
            printf("bitween-component %s\n", BITWEEN_VERSION);
            return 0;
        default:
            usage(stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "bitween-component: unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return 2;
    }
    if (mode == O_SAMPLE)
        return config_write_sample(component_options, OPT_COUNT, COMPONENT_ENV_PREFIX, stdout) ==
                       CONFIG_OK
                   ? 0
                   : 1;

    app.cfg = load_config(app.config_path, log_level, &err);
    if (!app.cfg) {
        fprintf(stderr, "bitween-component: configuration: %s\n", err.message);
        return 2;
    }
    if (mode == O_PRINT) {
        rc = config_print(app.cfg, stdout) == CONFIG_OK ? 0 : 1;
        config_free(app.cfg);
        return rc;
    }
    if (config_validate(app.cfg, &err) != CONFIG_OK ||
        options_to_settings(app.cfg, &settings, &domains, &err) != 0) {
        fprintf(stderr, "bitween-component: configuration: %s\n", err.message);
        config_free(app.cfg);
        return 2;
    }
    api_settings_from(app.cfg, &settings, &api_settings);
    if (config_bool(app.cfg, OPT_API_ENABLED) &&
        api_settings_check(&api_settings, err.message, sizeof err.message) != 0) {
        fprintf(stderr, "bitween-component: configuration: %s\n", err.message);
        options_free_domains(domains);
        config_free(app.cfg);
        return 2;
    }
    if (mode == O_CHECK) {
        printf("configuration ok\n");
        options_free_domains(domains);
        config_free(app.cfg);
        return 0;
    }

    log_level_parse(config_str(app.cfg, OPT_LOG_LEVEL), &level);
    app.log = log_new(2, level, config_bool(app.cfg, OPT_LOG_TIMESTAMPS));
    if (!app.log) {
        fprintf(stderr, "bitween-component: out of memory\n");
        goto out;
    }
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);

    LOG_INFO(app.log, "main", "bitween-component %s starting", BITWEEN_VERSION);
    comp = component_new(&settings, app.log);
    if (!comp)
        goto out;
    component_on_reload(comp, &reload_flag, reload, &app);
    if (config_bool(app.cfg, OPT_API_ENABLED)) {
        api = api_new(&api_settings, comp, app.log);
        if (!api)
            goto out; /* logged: e.g. the port is in use */
    } else {
        LOG_INFO(app.log, "api", "admin API disabled (api_enabled = false)");
    }
    rc = component_run(comp, &stop_flag) == 0 ? 0 : 1;

out:
    api_free(api); /* before the component: it borrows it */
    component_free(comp);
    options_free_domains(domains);
    log_free(app.log);
    config_free(app.cfg);
    return rc;
}
