/* SPDX-License-Identifier: MIT */
/*
 * What both daemons do around their main loop, the same way: the command
 * line (-c/--config, --check-config, --print-config, --sample-config,
 * -l/--log-level, -h/--help, -V/--version), loading the configuration from
 * file, environment and flags (config.h), re-loading it on SIGHUP, and the
 * signal handlers, which only set flags.
 */
#ifndef BITWEEN_COMMON_DAEMON_H
#define BITWEEN_COMMON_DAEMON_H

#include <signal.h>
#include <stddef.h>
#include <stdio.h>

#include "config.h"
#include "log.h"

/** What a daemon is: borrowed, static. */
typedef struct daemon_spec {
    const char *prog;       /* "bitween-agent" */
    const char *version;    /* "0.1.0" */
    const char *summary;    /* a paragraph for --help, lines ending in \n */
    const char *config_env; /* environment variable naming the file, e.g. "BITWEEN_CONFIG" */
    const char *env_prefix; /* before every option's upper-cased name, e.g. "BITWEEN_" */
    const config_option_t *table;
    size_t n_options;
    size_t log_level_option;      /* index of the log_level option (CONFIG_ENUM) */
    size_t log_timestamps_option; /* index of the log_timestamps option (CONFIG_BOOL) */
    const char *docs;             /* where the options are described, e.g. "docs/agent.md" */
    int healthcheck;              /* nonzero: --healthcheck[=ENDPOINT] is accepted */
} daemon_spec_t;

/** The daemon's state around its main loop. */
typedef struct daemon_app {
    const daemon_spec_t *spec;
    const char *config_path; /* borrowed from argv or the environment; NULL: none */
    const char *log_level;   /* -l flag, borrowed; NULL: none */
    const char *healthcheck; /* --healthcheck: the endpoint to ask ("readyz"); NULL: none */
    config_t *cfg;           /* owned */
    log_t *log;              /* owned */
} daemon_app_t;

/**
 * Parse the command line and load the configuration. Returns -1 when the
 * daemon should go on (then `app->cfg` is loaded and validated), or an exit
 * status when it is done: --help, --version, --sample-config and
 * --print-config print to stdout and give 0 (1 when writing fails); usage
 * errors give 2 and configuration errors 2, both with a message on stderr
 * naming the program. With --check-config the configuration is validated
 * and `*check_only` set: the caller runs its own checks, then prints
 * "configuration ok" and exits (daemon_app_free()). With --healthcheck
 * (when the spec accepts it) the configuration is loaded but not validated
 * (secrets may be out of the checker's reach) and `app->healthcheck` names
 * the endpoint to ask: "readyz" by default, "healthz" or "readyz" when
 * given; a configuration that does not load then gives 1, not 2.
 */
int daemon_start(daemon_app_t *app, const daemon_spec_t *spec, int argc, char **argv,
                 int *check_only);

/**
 * Load file + environment + the -l flag into a new configuration (not
 * validated). NULL with `err` filled on failure.
 */
config_t *daemon_load_config(const daemon_app_t *app, config_error_t *err)
    __attribute__((warn_unused_result));

/**
 * Open the logger on stderr at the configured level and install the signal
 * handlers: SIGTERM and SIGINT set `*stop`, SIGHUP sets `*reload`, SIGPIPE
 * is ignored. Returns 0, or -1 when out of memory (message on stderr).
 */
int daemon_setup(daemon_app_t *app, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload);

/**
 * SIGHUP: read the configuration again and take over its reloadable
 * options (config_reload()), then apply the log level. On any error the
 * running configuration stays as it was and the error is logged. Returns 0
 * when reloaded.
 */
int daemon_reload(daemon_app_t *app);

/** Print "<prog>: configuration: <message>" on stderr; returns 2. */
int daemon_config_error(const daemon_app_t *app, const char *message);

/** Free the configuration and the logger; the app can be zeroed again. */
void daemon_app_free(daemon_app_t *app);

#endif /* BITWEEN_COMMON_DAEMON_H */
