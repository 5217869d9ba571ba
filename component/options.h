/* SPDX-License-Identifier: MIT */
/*
 * The component's configuration options: one typed table (config.h) from
 * which the file, the BITWEEN_* environment, --print-config and the sample
 * under deploy/ all come, and the translation into component settings.
 */
#ifndef BITWEEN_COMPONENT_OPTIONS_H
#define BITWEEN_COMPONENT_OPTIONS_H

#include <stddef.h>

#include "component.h"
#include "config.h"

enum {
    OPT_XMPP_HOST,
    OPT_XMPP_PORT,
    OPT_COMPONENT_JID,
    OPT_COMPONENT_SECRET,
    OPT_DOMAINS,
    OPT_DATABASE_URL,
    OPT_DB_WORKERS,
    OPT_DB_CONNECT_TIMEOUT,
    OPT_DB_STATEMENT_TIMEOUT_MS,
    OPT_MAX_RESOURCES,
    OPT_MAX_SHARES,
    OPT_MAX_ADDRESSES,
    OPT_MAX_NAME_BYTES,
    OPT_MAX_ITEM_BYTES,
    OPT_RECONNECT_MIN_MS,
    OPT_RECONNECT_MAX_MS,
    OPT_PUBLISH_RETRY_MAX_MS,
    OPT_IQ_TIMEOUT_MS,
    OPT_PRIVILEGE_WAIT_MS,
    OPT_CHECK_RATE,
    OPT_MAX_PENDING,
    OPT_STATE_CACHE_MB,
    OPT_MAX_PENDING_PER_USER,
    OPT_LIVENESS_INTERVAL,
    OPT_API_ENABLED,
    OPT_API_ADDRESS,
    OPT_API_PORT,
    OPT_API_TOKEN,
    OPT_API_THREADS,
    OPT_API_TIMEOUT_MS,
    OPT_API_MAX_BODY_BYTES,
    OPT_API_STATS_TTL,
    OPT_LOG_LEVEL,
    OPT_LOG_TIMESTAMPS,
    OPT_API_MAX_CONNECTIONS,
    OPT_API_MAX_CONNECTIONS_PER_CLIENT,
    OPT_API_IDLE_TIMEOUT,
    OPT_ALLOW_LOOPBACK_ADDRESSES,
    OPT_MAX_REPUBLISHES_IN_FLIGHT,
    OPT_COUNT
};

extern const config_option_t component_options[OPT_COUNT];

#define COMPONENT_ENV_PREFIX "BITWEEN_"

/* The admin API's options (OPT_API_*) are read by main.c into the API's
 * own settings (api/api.h), since the API library builds on this one. */

/**
 * Settings from a validated configuration. `domains_out` receives a
 * malloc'd NULL-terminated array of malloc'd domain strings the settings
 * point into (free with options_free_domains()). Returns 0, or -1 with a
 * message in `err` (e.g. an empty domain list).
 */
int options_to_settings(const config_t *cfg, component_settings_t *s, char ***domains_out,
                        config_error_t *err);

void options_free_domains(char **domains);

#endif /* BITWEEN_COMPONENT_OPTIONS_H */
