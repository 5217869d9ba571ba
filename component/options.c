/* SPDX-License-Identifier: MIT */
/* The component's option table and its translation into settings. */
#include "options.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define STR CONFIG_OPT_STR
#define INT CONFIG_OPT_INT

const config_option_t component_options[OPT_COUNT] = {
    [OPT_XMPP_HOST] =
        STR("xmpp_host", "127.0.0.1", 0, "XMPP server address of the XEP-0114 component listener"),
    [OPT_XMPP_PORT] = INT("xmpp_port", "5347", 1, 65535, 0, "XEP-0114 component port"),
    [OPT_COMPONENT_JID] = STR("component_jid", NULL, CONFIG_REQUIRED,
                              "the component's JID, as configured on the server"),
    [OPT_COMPONENT_SECRET] = {"component_secret", CONFIG_SECRET, NULL, 0, 0, NULL, CONFIG_REQUIRED,
                              "XEP-0114 shared secret"},
    [OPT_DOMAINS] = STR("domains", NULL, CONFIG_REQUIRED,
                        "comma-separated user domains served (their users may register)"),
    [OPT_DATABASE_URL] = {"database_url", CONFIG_SECRET, NULL, 0, 0, NULL, CONFIG_REQUIRED,
                          "PostgreSQL connection URL (libpq syntax)"},
    [OPT_DB_WORKERS] = INT("db_workers", "4", 1, 64, 0, "database connections and threads"),
    [OPT_DB_CONNECT_TIMEOUT] =
        INT("db_connect_timeout", "5", 1, 300, 0, "seconds to wait for a database connection"),
    [OPT_DB_STATEMENT_TIMEOUT_MS] = INT("db_statement_timeout_ms", "10000", 100, 600000, 0,
                                        "longest database statement, milliseconds"),
    [OPT_MAX_RESOURCES] =
        INT("max_resources_per_user", "16", 1, 1000, 0, "registered resources (devices) per user"),
    [OPT_MAX_SHARES] =
        INT("max_shares_per_resource", "500", 1, 100000, 0, "shares one resource may register"),
    [OPT_MAX_ADDRESSES] =
        INT("max_addresses_per_resource", "8", 1, 64, 0, "addresses one resource may register"),
    [OPT_MAX_NAME_BYTES] =
        INT("max_name_bytes", "255", 1, 4096, 0, "longest share name, bytes of UTF-8"),
    /* The bound on what the server sends contacts (shares_size_t.xml) is at
     * least the canonical text the publish carries, so 240000 keeps the
     * privileged IQ (item plus an envelope of a few KiB at most) far under
     * Prosody's 512 KiB component and s2s limits; ejabberd's 250,000-byte
     * PEP limit is on another measure, which shares.c checks itself. */
    [OPT_MAX_ITEM_BYTES] = INT("max_item_bytes", "65536", 1024, 240000, 0,
                               "largest merged item, in bytes as servers re-serialize it for "
                               "contacts (a ' or \" in a name takes 6); it must also fit "
                               "ejabberd's 250,000-byte PEP payload limit, checked on ejabberd's "
                               "own measure"),
    [OPT_RECONNECT_MIN_MS] =
        INT("reconnect_min_ms", "500", 10, 600000, 0, "first XMPP reconnection delay"),
    [OPT_RECONNECT_MAX_MS] =
        INT("reconnect_max_ms", "60000", 100, 3600000, 0, "longest XMPP reconnection delay"),
    [OPT_PUBLISH_RETRY_MAX_MS] = INT("publish_retry_max_ms", "60000", 100, 3600000, 0,
                                     "longest delay between retries of a failed publish"),
    [OPT_IQ_TIMEOUT_MS] =
        INT("iq_timeout_ms", "30000", 100, 600000, 0, "wait for a reply to a publish or ping"),
    [OPT_PRIVILEGE_WAIT_MS] = INT("privilege_wait_ms", "5000", 100, 600000, 0,
                                  "wait for the server's XEP-0356 advertisement"),
    [OPT_CHECK_RATE] =
        INT("check_rate", "50", 1, 100000, 0, "pings per second when re-checking registrations"),
    [OPT_MAX_PENDING] = INT("max_pending", "10000", 10, 10000000, 0,
                            "queued database jobs before requests are refused (wait)"),
    [OPT_STATE_CACHE_MB] = INT("state_cache_mb", "64", 0, 65536, 0,
                               "memory for the merged states of active users, MiB; a cached "
                               "user's update needs one database round trip instead of two "
                               "(0: no cache)"),
    [OPT_MAX_PENDING_PER_USER] =
        INT("max_pending_per_user", "32", 1, 100000, 0,
            "requests of one user in progress (queued, or waiting for a liveness ping) before "
            "more are refused (wait, resource-constraint), so one user cannot fill the queues"),
    [OPT_LIVENESS_INTERVAL] =
        INT("liveness_interval", "300", 1, 86400, 0,
            "seconds between two liveness sweeps, which ping every registered resource (at "
            "check_rate) and remove those that do not answer"),
    [OPT_API_ENABLED] = {"api_enabled", CONFIG_BOOL, "true", 0, 0, NULL, 0,
                         "serve the admin REST API (health, readiness, metrics, /api/v1)"},
    [OPT_API_ADDRESS] = STR("api_address", "127.0.0.1", 0,
                            "address the admin API listens on (IPv4 or IPv6 literal; \"::\" "
                            "takes IPv6 and IPv4); any but a loopback address needs api_token"),
    [OPT_API_PORT] = INT("api_port", "8080", 0, 65535, 0,
                         "admin API TCP port (0: any free port, logged at start-up)"),
    [OPT_API_TOKEN] = {"api_token", CONFIG_SECRET, NULL, 0, 0, NULL, 0,
                       "bearer token for /api/v1 (unset: /api/v1 answers 401, and "
                       "api_address must be loopback); /healthz, /readyz and /metrics need "
                       "none"},
    [OPT_API_THREADS] = INT("api_threads", "2", 1, 64, 0,
                            "admin API worker threads (each has its own database connection)"),
    [OPT_API_TIMEOUT_MS] = INT("api_timeout_ms", "10000", 100, 600000, 0,
                               "how long an evict or republish request waits before 504"),
    [OPT_API_MAX_BODY_BYTES] = INT("api_max_body_bytes", "65536", 0, 16777216, 0,
                                   "largest admin API request body; larger ones get 413"),
    [OPT_API_STATS_TTL] = INT("api_stats_ttl", "10", 1, 3600, 0,
                              "seconds between recounts of users, resources and shares for "
                              "/metrics and /api/v1/stats"),
    [OPT_LOG_LEVEL] = CONFIG_OPT_LOG_LEVEL,
    [OPT_LOG_TIMESTAMPS] = CONFIG_OPT_LOG_TIMESTAMPS,
    [OPT_API_MAX_CONNECTIONS] = INT("api_max_connections", "128", 1, 10000, 0,
                                    "admin API connections open at once (at least api_threads); "
                                    "further ones wait in the listen queue"),
    [OPT_API_MAX_CONNECTIONS_PER_CLIENT] =
        INT("api_max_connections_per_client", "16", 1, 10000, 0,
            "admin API connections open at once from one client address; further ones are "
            "closed at once (raise it behind a reverse proxy)"),
    [OPT_API_IDLE_TIMEOUT] = INT("api_idle_timeout", "10", 1, 3600, 0,
                                 "seconds before an idle admin API connection is closed"),
    [OPT_ALLOW_LOOPBACK_ADDRESSES] = {"allow_loopback_addresses", CONFIG_BOOL, "false", 0, 0, NULL,
                                      0,
                                      "accept 127.0.0.0/8 and ::1 in registrations (tests, or "
                                      "agents and contacts on one machine); off, an agent cannot "
                                      "point its contacts at their own machine's services"},
    [OPT_MAX_REPUBLISHES_IN_FLIGHT] =
        INT("max_republishes_in_flight", "4", 1, 10000, 0,
            "catch-up publishes (each user's item sent again after a (re)connection) waiting "
            "for the server's reply at once; the rest queue, so that agents' updates and "
            "liveness pings are not stuck behind hundreds of them in the server"),
};

void options_free_domains(char **domains)
{
    config_list_free(domains);
}

int options_to_settings(const config_t *cfg, component_settings_t *s, char ***domains_out,
                        config_error_t *err)
{
    char **domains;
    component_settings_default(s);
    domains = config_list_split(config_str(cfg, OPT_DOMAINS));
    if (!domains || !domains[0]) {
        options_free_domains(domains);
        err->code = CONFIG_EINVAL;
        snprintf(err->message, sizeof err->message, "domains: at least one domain is needed");
        return -1;
    }
    s->xmpp_host = config_str(cfg, OPT_XMPP_HOST);
    s->xmpp_port = (unsigned)config_int(cfg, OPT_XMPP_PORT);
    s->jid = config_str(cfg, OPT_COMPONENT_JID);
    s->secret = config_str(cfg, OPT_COMPONENT_SECRET);
    s->domains = (const char *const *)domains;
    s->database_url = config_str(cfg, OPT_DATABASE_URL);
    s->db_workers = (unsigned)config_int(cfg, OPT_DB_WORKERS);
    s->db_connect_timeout_s = (unsigned)config_int(cfg, OPT_DB_CONNECT_TIMEOUT);
    s->db_statement_timeout_ms = (unsigned)config_int(cfg, OPT_DB_STATEMENT_TIMEOUT_MS);
    s->limits.max_resources = (size_t)config_int(cfg, OPT_MAX_RESOURCES);
    s->limits.max_shares = (size_t)config_int(cfg, OPT_MAX_SHARES);
    s->limits.max_addresses = (size_t)config_int(cfg, OPT_MAX_ADDRESSES);
    s->limits.max_name_bytes = (size_t)config_int(cfg, OPT_MAX_NAME_BYTES);
    s->limits.max_item_bytes = (size_t)config_int(cfg, OPT_MAX_ITEM_BYTES);
    s->reconnect_min_ms = (unsigned)config_int(cfg, OPT_RECONNECT_MIN_MS);
    s->reconnect_max_ms = (unsigned)config_int(cfg, OPT_RECONNECT_MAX_MS);
    s->publish_retry_max_ms = (unsigned)config_int(cfg, OPT_PUBLISH_RETRY_MAX_MS);
    s->iq_timeout_ms = (unsigned)config_int(cfg, OPT_IQ_TIMEOUT_MS);
    s->privilege_wait_ms = (unsigned)config_int(cfg, OPT_PRIVILEGE_WAIT_MS);
    s->check_rate = (unsigned)config_int(cfg, OPT_CHECK_RATE);
    s->max_pending = (unsigned)config_int(cfg, OPT_MAX_PENDING);
    s->state_cache_mb = (unsigned)config_int(cfg, OPT_STATE_CACHE_MB);
    s->max_pending_per_user = (unsigned)config_int(cfg, OPT_MAX_PENDING_PER_USER);
    s->liveness_interval_s = (unsigned)config_int(cfg, OPT_LIVENESS_INTERVAL);
    s->limits.allow_loopback = config_bool(cfg, OPT_ALLOW_LOOPBACK_ADDRESSES);
    s->max_republishes_in_flight = (unsigned)config_int(cfg, OPT_MAX_REPUBLISHES_IN_FLIGHT);
    if (s->reconnect_max_ms < s->reconnect_min_ms) {
        options_free_domains(domains);
        err->code = CONFIG_EINVAL;
        snprintf(err->message, sizeof err->message,
                 "reconnect_max_ms (%u) is below reconnect_min_ms (%u)", s->reconnect_max_ms,
                 s->reconnect_min_ms);
        return -1;
    }
    *domains_out = domains;
    return 0;
}
