/* SPDX-License-Identifier: MIT */
/*
 * bitween-component: command line, configuration (file, BITWEEN_*
 * environment, flags), logging and signals around component_run(), and
 * the admin REST API (api/) started beside it.
 * SIGTERM/SIGINT stop gracefully; SIGHUP re-reads the configuration and
 * applies what may change at run time (the log level).
 */
#include <curl/curl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>

#include "api.h"
#include "component.h"
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
    .prog = "bitween-component",
    .version = BITWEEN_VERSION,
    .summary = "XMPP component (XEP-0114) keeping users' per-device file shares in PostgreSQL\n"
               "and publishing one merged item per user through XEP-0356.\n",
    .config_env = "BITWEEN_CONFIG",
    .env_prefix = COMPONENT_ENV_PREFIX,
    .table = component_options,
    .n_options = OPT_COUNT,
    .log_level_option = OPT_LOG_LEVEL,
    .log_timestamps_option = OPT_LOG_TIMESTAMPS,
    .docs = "docs/operations.md",
    .healthcheck = 1,
};

static void reload(void *arg)
{
    daemon_reload(arg);
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

typedef struct body {
    char text[256];
    size_t len;
} body_t;

/* The first bytes of the answer, printable ASCII only (it is shown). */
static size_t keep_body(char *ptr, size_t size, size_t nmemb, void *arg)
{
    body_t *b = arg;
    size_t n = size * nmemb;

    for (size_t i = 0; i < n && b->len + 1 < sizeof b->text; i++)
        b->text[b->len++] = ptr[i] >= 0x20 && ptr[i] < 0x7f ? ptr[i] : ' ';
    b->text[b->len] = '\0';
    return n;
}

/*
 * --healthcheck: GET /readyz or /healthz of the daemon running with this
 * configuration, on its API address (a wildcard address is asked on
 * loopback). 0: it answered 200; 1: anything else, said on stderr.
 */
static int healthcheck(const config_t *cfg, const char *endpoint)
{
    const char *addr = config_str(cfg, OPT_API_ADDRESS);
    char url[160];
    long status = 0;
    body_t body = {.len = 0};
    CURL *curl;
    CURLcode cc;
    int rc = 1;

    if (!config_bool(cfg, OPT_API_ENABLED)) {
        fprintf(stderr, "bitween-component: healthcheck: the admin API is disabled "
                        "(api_enabled = false): nothing to ask\n");
        return 1;
    }
    if (config_int(cfg, OPT_API_PORT) == 0) {
        fprintf(stderr, "bitween-component: healthcheck: api_port is 0 (any free port): set a "
                        "fixed api_port to check the running daemon\n");
        return 1;
    }
    if (strcmp(addr, "0.0.0.0") == 0)
        addr = "127.0.0.1";
    else if (strcmp(addr, "::") == 0)
        addr = "::1";
    if (snprintf(url, sizeof url, strchr(addr, ':') ? "http://[%s]:%d/%s" : "http://%s:%d/%s", addr,
                 (int)config_int(cfg, OPT_API_PORT), endpoint) >= (int)sizeof url ||
        curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return 1;
    curl = curl_easy_init();
    if (curl) {
        curl_easy_setopt(curl, CURLOPT_URL, url);
        curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
        curl_easy_setopt(curl, CURLOPT_TIMEOUT_MS, 5000L);
        curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, keep_body);
        curl_easy_setopt(curl, CURLOPT_WRITEDATA, &body);
        cc = curl_easy_perform(curl);
        if (cc == CURLE_OK)
            curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
        if (cc != CURLE_OK)
            fprintf(stderr, "bitween-component: healthcheck: %s: %s\n", url,
                    curl_easy_strerror(cc));
        else if (status != 200 ||
                 !strstr(body.text, strcmp(endpoint, "readyz") == 0 ? "\"status\":\"ready\""
                                                                    : "\"status\":\"ok\""))
            fprintf(stderr, "bitween-component: healthcheck: %s answered %ld %s\n", url, status,
                    body.text);
        else {
            printf("%s\n", body.text);
            rc = 0;
        }
        curl_easy_cleanup(curl);
    }
    curl_global_cleanup();
    return rc;
}

int main(int argc, char **argv)
{
    daemon_app_t app;
    int check_only, rc;
    config_error_t err;
    component_settings_t settings;
    char **domains = NULL;
    component_t *comp = NULL;
    api_settings_t api_settings;
    api_t *api = NULL;

    rc = daemon_start(&app, &spec, argc, argv, &check_only);
    if (rc >= 0)
        return rc;
    if (app.healthcheck) {
        rc = healthcheck(app.cfg, app.healthcheck);
        daemon_app_free(&app);
        return rc;
    }
    if (options_to_settings(app.cfg, &settings, &domains, &err) != 0) {
        daemon_app_free(&app);
        return daemon_config_error(&app, err.message);
    }
    api_settings_from(app.cfg, &settings, &api_settings);
    if (config_bool(app.cfg, OPT_API_ENABLED) &&
        api_settings_check(&api_settings, err.message, sizeof err.message) != 0) {
        options_free_domains(domains);
        daemon_app_free(&app);
        return daemon_config_error(&app, err.message);
    }
    if (check_only) {
        printf("configuration ok\n");
        options_free_domains(domains);
        daemon_app_free(&app);
        return 0;
    }
    rc = 1;
    if (daemon_setup(&app, &stop_flag, &reload_flag) != 0)
        goto out;

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
    daemon_app_free(&app);
    return rc;
}
