/* SPDX-License-Identifier: MIT */
/* Command line, configuration loading and signals shared by the daemons. */
#include "daemon.h"

#include <getopt.h>
#include <stdlib.h>
#include <string.h>

static volatile sig_atomic_t *stop_flag;
static volatile sig_atomic_t *reload_flag;

static void on_stop(int sig)
{
    (void)sig;
    if (stop_flag)
        *stop_flag = 1;
}

static void on_reload(int sig)
{
    (void)sig;
    if (reload_flag)
        *reload_flag = 1;
}

static void usage(const daemon_spec_t *spec, FILE *out)
{
    fprintf(out,
            "usage: %s [options]\n"
            "\n"
            "%s"
            "\n"
            "  -c, --config FILE     read options from FILE (also: %s)\n"
            "      --check-config    validate the configuration and exit\n"
            "      --print-config    print the effective configuration (secrets hidden)\n"
            "      --sample-config   print a commented sample configuration\n"
            "  -l, --log-level LVL   error, warn, info or debug\n"
            "%s"
            "  -h, --help            this help\n"
            "  -V, --version         print the version\n"
            "\n"
            "Every option can be set in the file as `name = value` or in the environment\n"
            "as %s<NAME> (%s<NAME>_FILE reads it from a file); see\n"
            "--sample-config and %s.\n",
            spec->prog, spec->summary, spec->config_env,
            spec->healthcheck
                ? "      --healthcheck[=readyz|healthz]\n"
                  "                        ask the running daemon's /readyz (default) or\n"
                  "                        /healthz on its api_address and api_port; exit 0\n"
                  "                        when it answers 200 (container health checks)\n"
                : "",
            spec->env_prefix, spec->env_prefix, spec->docs);
}

config_t *daemon_load_config(const daemon_app_t *app, config_error_t *err)
{
    const daemon_spec_t *spec = app->spec;
    config_t *cfg = config_new(spec->table, spec->n_options, spec->env_prefix);
    if (!cfg) {
        err->code = CONFIG_ENOMEM;
        snprintf(err->message, sizeof err->message, "out of memory");
        return NULL;
    }
    if ((app->config_path && config_load_file(cfg, app->config_path, err) != CONFIG_OK) ||
        config_apply_env(cfg, NULL, err) != CONFIG_OK ||
        (app->log_level && config_set(cfg, spec->log_level_option, app->log_level, CONFIG_SRC_FLAG,
                                      err) != CONFIG_OK)) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

int daemon_config_error(const daemon_app_t *app, const char *message)
{
    fprintf(stderr, "%s: configuration: %s\n", app->spec->prog, message);
    return 2;
}

int daemon_start(daemon_app_t *app, const daemon_spec_t *spec, int argc, char **argv,
                 int *check_only)
{
    enum { O_CHECK = 256, O_PRINT, O_SAMPLE, O_HEALTH };
    static const struct option longopts[] = {
        {"config", required_argument, NULL, 'c'},
        {"check-config", no_argument, NULL, O_CHECK},
        {"print-config", no_argument, NULL, O_PRINT},
        {"sample-config", no_argument, NULL, O_SAMPLE},
        {"log-level", required_argument, NULL, 'l'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {"healthcheck", optional_argument, NULL, O_HEALTH},
        {NULL, 0, NULL, 0},
    };
    config_error_t err;
    int mode = 0, opt, rc;
    const char *health = NULL;

    memset(app, 0, sizeof *app);
    app->spec = spec;
    *check_only = 0;
    app->config_path = getenv(spec->config_env);
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:l:hV", longopts, NULL)) != -1) {
        switch (opt) {
        case 'c':
            app->config_path = optarg;
            break;
        case 'l':
            app->log_level = optarg;
            break;
        case O_CHECK:
        case O_PRINT:
        case O_SAMPLE:
            mode = opt;
            break;
        case O_HEALTH:
            if (!spec->healthcheck) {
                fprintf(stderr, "%s: unknown option --healthcheck\n", spec->prog);
                usage(spec, stderr);
                return 2;
            }
            if (optarg && strcmp(optarg, "readyz") != 0 && strcmp(optarg, "healthz") != 0) {
                fprintf(stderr, "%s: --healthcheck takes readyz or healthz, not '%s'\n", spec->prog,
                        optarg);
                return 2;
            }
            health = optarg ? optarg : "readyz";
            break;
        case 'h':
            usage(spec, stdout);
            return 0;
        case 'V':
            printf("%s %s\n", spec->prog, spec->version);
            return 0;
        default:
            usage(spec, stderr);
            return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", spec->prog, argv[optind]);
        usage(spec, stderr);
        return 2;
    }
    if (health && mode != 0) {
        fprintf(stderr,
                "%s: --healthcheck goes alone, not with --check-config, --print-config "
                "or --sample-config\n",
                spec->prog);
        return 2;
    }
    if (mode == O_SAMPLE)
        return config_write_sample(spec->table, spec->n_options, spec->env_prefix, stdout) ==
                       CONFIG_OK
                   ? 0
                   : 1;
    app->cfg = daemon_load_config(app, &err);
    if (!app->cfg) {
        daemon_config_error(app, err.message);
        return health ? 1 : 2; /* a health check fails with 1 */
    }
    if (health) {
        /* only the API's address and port matter: secrets and other
         * required options may be out of reach (systemd credentials) */
        app->healthcheck = health;
        return -1;
    }
    if (mode == O_PRINT) {
        rc = config_print(app->cfg, stdout) == CONFIG_OK ? 0 : 1;
        daemon_app_free(app);
        return rc;
    }
    if (config_validate(app->cfg, &err) != CONFIG_OK) {
        daemon_app_free(app);
        return daemon_config_error(app, err.message);
    }
    *check_only = mode == O_CHECK;
    return -1;
}

int daemon_setup(daemon_app_t *app, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload)
{
    log_level_t level = LOG_LEVEL_INFO;
    struct sigaction sa;

    log_level_parse(config_str(app->cfg, app->spec->log_level_option), &level);
    app->log = log_new(2, level, config_bool(app->cfg, app->spec->log_timestamps_option));
    if (!app->log) {
        fprintf(stderr, "%s: out of memory\n", app->spec->prog);
        return -1;
    }
    stop_flag = stop;
    reload_flag = reload;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    sa.sa_handler = on_stop;
    sigaction(SIGTERM, &sa, NULL);
    sigaction(SIGINT, &sa, NULL);
    sa.sa_handler = on_reload;
    sigaction(SIGHUP, &sa, NULL);
    sa.sa_handler = SIG_IGN;
    sigaction(SIGPIPE, &sa, NULL);
    return 0;
}

int daemon_reload(daemon_app_t *app)
{
    config_error_t err;
    config_t *next = daemon_load_config(app, &err);
    log_level_t level;
    const char *lvl;

    if (!next || config_validate(next, &err) != CONFIG_OK ||
        config_reload(app->cfg, next, &err) != CONFIG_OK) {
        LOG_ERROR(app->log, "config", "reload refused, configuration unchanged: %s", err.message);
        config_free(next);
        return -1;
    }
    config_free(next);
    lvl = config_str(app->cfg, app->spec->log_level_option);
    if (log_level_parse(lvl, &level) == 0)
        log_set_level(app->log, level);
    LOG_INFO(app->log, "config", "configuration reloaded (log level %s)", lvl);
    return 0;
}

void daemon_app_free(daemon_app_t *app)
{
    log_free(app->log);
    config_free(app->cfg);
    app->log = NULL;
    app->cfg = NULL;
}
