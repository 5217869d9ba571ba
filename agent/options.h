/* SPDX-License-Identifier: MIT */
/*
 * The agent's configuration options: one typed table (config.h) from which
 * the file, the BITWEEN_AGENT_* environment, --print-config and the sample
 * under deploy/ all come, and the translation into agent settings.
 */
#ifndef BITWEEN_AGENT_OPTIONS_H
#define BITWEEN_AGENT_OPTIONS_H

#include <stddef.h>

#include "agent.h"
#include "config.h"

enum {
    AOPT_JID,
    AOPT_PASSWORD,
    AOPT_RESOURCE,
    AOPT_XMPP_HOST,
    AOPT_XMPP_PORT,
    AOPT_XMPP_TLS,
    AOPT_XMPP_CA_FILE,
    AOPT_COMPONENT_JID,
    AOPT_PRIORITY,
    AOPT_STATE_DIR,
    AOPT_LISTEN_INTERFACES,
    AOPT_EXTERNAL_ADDRESS,
    AOPT_ANNOUNCE_PRIVATE_ADDRESSES,
    AOPT_ALLOW_LOOPBACK_ADDRESSES,
    AOPT_PORT_MAPPING,
    AOPT_DOWNLOAD_RATE_LIMIT,
    AOPT_UPLOAD_RATE_LIMIT,
    AOPT_HASHING_JOBS,
    AOPT_DOWNLOAD_DIR,
    AOPT_DOWNLOAD_ROOTS,
    AOPT_SHARE_DOWNLOADS,
    AOPT_METADATA_TIMEOUT,
    AOPT_MAX_DOWNLOADS,
    AOPT_RPC_ADDRESS,
    AOPT_RPC_PORT,
    AOPT_RPC_TOKEN,
    AOPT_RPC_ALLOWED_HOSTS,
    AOPT_RECONNECT_MIN_MS,
    AOPT_RECONNECT_MAX_MS,
    AOPT_IQ_TIMEOUT_MS,
    AOPT_MAX_CONTACTS,
    AOPT_MAX_CONTACT_RESOURCES,
    AOPT_MAX_CONTACT_SHARES,
    AOPT_MAX_CONTACT_ITEM_BYTES,
    AOPT_LOG_LEVEL,
    AOPT_LOG_TIMESTAMPS,
    AOPT_COUNT
};

extern const config_option_t agent_options[AOPT_COUNT];

#define AGENT_ENV_PREFIX "BITWEEN_AGENT_"

/**
 * Settings from a validated configuration; `s` borrows the configuration's
 * strings (valid while `cfg` lives and the options do not change). Fills
 * what the table cannot check on its own: the JID's shape, the component
 * JID's default ("shares." and the user's domain), the state directory's
 * default ($XDG_STATE_HOME/bitween, else ~/.local/state/bitween), the RPC
 * address (loopback unless a token is configured). Returns 0, or -1 with a
 * message in `err`. `buf` holds derived strings (component JID, state
 * directory) and must outlive `s`.
 */
int agent_options_to_settings(const config_t *cfg, agent_settings_t *s, agent_strings_t *buf,
                              config_error_t *err);

#endif /* BITWEEN_AGENT_OPTIONS_H */
