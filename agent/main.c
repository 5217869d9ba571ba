/* SPDX-License-Identifier: MIT */
/*
 * bitween-agent: command line, configuration (file, BITWEEN_AGENT_*
 * environment, flags), logging and signals around agent_run().
 * SIGTERM/SIGINT save resume data and stop; SIGHUP re-reads the
 * configuration and applies what may change at run time (log level, rate
 * limits).
 */
#include <langinfo.h>
#include <locale.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "agent.h"
#include "config.h"
#include "daemon.h"
#include "log.h"
#include "options.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

static volatile sig_atomic_t stop_flag;
static volatile sig_atomic_t reload_flag;

static const daemon_spec_t spec = {
    .prog = "bitween-agent",
    .version = BITWEEN_VERSION,
    .summary = "Shares files with your XMPP contacts over BitTorrent: seeds what you share,\n"
               "announces it through bitween-component, and serves a JSON-RPC API on\n"
               "loopback for the bitween command and the web page.\n",
    .config_env = "BITWEEN_AGENT_CONFIG",
    .env_prefix = AGENT_ENV_PREFIX,
    .table = agent_options,
    .n_options = AOPT_COUNT,
    .log_level_option = AOPT_LOG_LEVEL,
    .log_timestamps_option = AOPT_LOG_TIMESTAMPS,
    .docs = "docs/agent.md",
};

typedef struct running {
    daemon_app_t *app;
    agent_t *agent;
} running_t;

static void reload(void *arg)
{
    running_t *r = arg;
    if (daemon_reload(r->app) == 0)
        agent_set_rates(r->agent, config_int(r->app->cfg, AOPT_DOWNLOAD_RATE_LIMIT) * 1024,
                        config_int(r->app->cfg, AOPT_UPLOAD_RATE_LIMIT) * 1024);
}

int main(int argc, char **argv)
{
    daemon_app_t app;
    int check_only, rc;
    config_error_t err;
    agent_settings_t settings;
    agent_strings_t strings;
    agent_t *agent = NULL;

    /* file names are UTF-8 to contacts whatever the locale: libtorrent
     * converts paths with the C library's multibyte functions */
    if (!setlocale(LC_CTYPE, "") || strcmp(nl_langinfo(CODESET), "UTF-8") != 0)
        setlocale(LC_CTYPE, "C.UTF-8");
    rc = daemon_start(&app, &spec, argc, argv, &check_only);
    if (rc >= 0)
        return rc;
    if (agent_options_to_settings(app.cfg, &settings, &strings, &err) != 0) {
        daemon_app_free(&app);
        return daemon_config_error(&app, err.message);
    }
    if (check_only) {
        printf("configuration ok\n");
        daemon_app_free(&app);
        return 0;
    }
    rc = 1;
    if (daemon_setup(&app, &stop_flag, &reload_flag) != 0)
        goto out;
    LOG_INFO(app.log, "main", "bitween-agent %s starting for %s/%s, state in %s", BITWEEN_VERSION,
             settings.jid, settings.resource, settings.state_dir);
    agent = agent_new(&settings, app.log);
    if (!agent)
        goto out;
    {
        running_t r = {&app, agent};
        rc = agent_run(agent, &stop_flag, &reload_flag, reload, &r) == 0 ? 0 : 1;
    }
out:
    agent_free(agent);
    daemon_app_free(&app);
    return rc;
}
