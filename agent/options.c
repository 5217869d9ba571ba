/* SPDX-License-Identifier: MIT */
/* The agent's option table and its translation into settings. */
#include "options.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const char *const tls_modes[] = {"required", "optional", "disabled", NULL};

#define STR  CONFIG_OPT_STR
#define INT  CONFIG_OPT_INT
#define BOOL CONFIG_OPT_BOOL

const config_option_t agent_options[AOPT_COUNT] = {
    [AOPT_JID] = STR("jid", NULL, CONFIG_REQUIRED, "the user's bare JID, e.g. alice@example.org"),
    [AOPT_PASSWORD] = {"password", CONFIG_SECRET, NULL, 0, 0, NULL, CONFIG_REQUIRED,
                       "the user's XMPP password"},
    [AOPT_RESOURCE] = STR("resource", NULL, 0,
                          "this device's XMPP resource, which contacts see (unset: the host "
                          "name)"),
    [AOPT_XMPP_HOST] = STR("xmpp_host", NULL, 0,
                           "XMPP server to connect to (unset: the JID's domain, through DNS SRV)"),
    [AOPT_XMPP_PORT] = INT("xmpp_port", "0", 0, 65535, 0, "XMPP client port (0: the default)"),
    [AOPT_XMPP_TLS] = {"xmpp_tls", CONFIG_ENUM, "required", 0, 0, tls_modes, 0,
                       "TLS on the XMPP connection: required (certificate checked), optional "
                       "(used when offered), or disabled (plaintext: tests on loopback only)"},
    [AOPT_XMPP_CA_FILE] = STR("xmpp_ca_file", NULL, 0,
                              "PEM file of the certificate authorities to trust for the XMPP "
                              "server (unset: the system's)"),
    [AOPT_COMPONENT_JID] =
        STR("component_jid", NULL, 0, "bitween-component's JID (unset: shares.<the JID's domain>)"),
    [AOPT_PRIORITY] = INT("priority", "-1", -128, -1, 0,
                          "presence priority; negative, so that the user's chat messages never "
                          "reach the agent"),
    [AOPT_STATE_DIR] = STR("state_dir", NULL, 0,
                           "torrent files, resume data and the RPC file (unset: "
                           "$XDG_STATE_HOME/bitween, else ~/.local/state/bitween)"),
    [AOPT_LISTEN_INTERFACES] = STR("listen_interfaces", "0.0.0.0:6881,[::]:6881", 0,
                                   "BitTorrent listen addresses and ports, comma-separated "
                                   "(port 0: any free one)"),
    [AOPT_EXTERNAL_ADDRESS] = STR("external_address", NULL, 0,
                                  "an address of this device that contacts can reach (e.g. a "
                                  "router's public address with a forwarded port), announced "
                                  "beside the interfaces' own"),
    [AOPT_ANNOUNCE_PRIVATE_ADDRESSES] =
        BOOL("announce_private_addresses", "false", 0,
             "announce private (RFC 1918, ULA) and link-local addresses too: contacts on the "
             "same LAN or compose network"),
    [AOPT_ALLOW_LOOPBACK_ADDRESSES] =
        BOOL("allow_loopback_addresses", "false", 0,
             "announce 127.0.0.1 and ::1 too (tests, or contacts on this machine); the component "
             "has the same switch"),
    [AOPT_PORT_MAPPING] = BOOL("port_mapping", "false", 0,
                               "map the listen port on the router with UPnP and NAT-PMP (they "
                               "send multicast on the local network)"),
    [AOPT_DOWNLOAD_RATE_LIMIT] = INT("download_rate_limit", "0", 0, 2097151, CONFIG_RELOADABLE,
                                     "download rate limit, KiB/s (0: unlimited)"),
    [AOPT_UPLOAD_RATE_LIMIT] = INT("upload_rate_limit", "0", 0, 2097151, CONFIG_RELOADABLE,
                                   "upload rate limit, KiB/s (0: unlimited)"),
    [AOPT_HASHING_JOBS] = INT("hashing_jobs", "2", 1, 64, 0,
                              "paths hashed into torrents at once; bt.add_path beyond that is "
                              "refused (limit) until one ends"),
    [AOPT_DOWNLOAD_DIR] = STR("download_dir", NULL, 0,
                              "where downloads go, each into a new folder of its own (unset: "
                              "$XDG_DOWNLOAD_DIR, else ~/Downloads)"),
    [AOPT_DOWNLOAD_ROOTS] = STR("download_roots", NULL, 0,
                                "comma-separated folders that a download's save_path may also "
                                "be inside (unset: only download_dir)"),
    [AOPT_SHARE_DOWNLOADS] = BOOL("share_downloads", "true", 0,
                                  "announce a finished download as a share of this device, so "
                                  "that contacts get it from more sources"),
    [AOPT_METADATA_TIMEOUT] = INT("metadata_timeout", "300", 1, 86400, 0,
                                  "seconds a download may stay connected to sources without "
                                  "receiving the metadata before it stops with an error"),
    [AOPT_MAX_DOWNLOADS] = INT("max_downloads", "1000", 1, 100000, 0, "downloads kept at once"),
    [AOPT_RPC_ADDRESS] =
        STR("rpc_address", "127.0.0.1", 0, "address of the JSON-RPC API (IPv4 or IPv6 literal)"),
    [AOPT_RPC_PORT] = INT("rpc_port", "0", 0, 65535, 0,
                          "JSON-RPC TCP port (0: any free port; the URL is written to the state "
                          "directory's rpc file)"),
    [AOPT_RPC_TOKEN] = {"rpc_token", CONFIG_SECRET, NULL, 0, 0, NULL, 0,
                        "token the JSON-RPC API requires (unset: generated at start and "
                        "written, with the URL, to the state directory's rpc file, mode 0600)"},
    [AOPT_RPC_ALLOWED_HOSTS] = STR("rpc_allowed_hosts", "localhost,127.0.0.1,[::1]", 0,
                                   "Host header names the JSON-RPC API answers (against DNS "
                                   "rebinding), comma-separated"),
    [AOPT_RECONNECT_MIN_MS] =
        INT("reconnect_min_ms", "1000", 10, 600000, 0, "first XMPP reconnection delay"),
    [AOPT_RECONNECT_MAX_MS] =
        INT("reconnect_max_ms", "120000", 100, 3600000, 0, "longest XMPP reconnection delay"),
    [AOPT_IQ_TIMEOUT_MS] = INT("iq_timeout_ms", "30000", 100, 600000, 0,
                               "wait for the component's answer to a request"),
    [AOPT_MAX_CONTACTS] =
        INT("max_contacts", "10000", 1, 1000000, 0, "contacts whose shares are kept"),
    [AOPT_MAX_CONTACT_RESOURCES] =
        INT("max_contact_resources", "32", 1, 1000, 0, "devices kept per contact"),
    [AOPT_MAX_CONTACT_SHARES] = INT("max_contact_shares", "100000", 1, 10000000, 0,
                                    "shares kept per contact, all devices together"),
    [AOPT_MAX_CONTACT_ITEM_BYTES] = INT("max_contact_item_bytes", "1048576", 1024, 67108864, 0,
                                        "largest contact's item accepted, bytes"),
    [AOPT_LOG_LEVEL] = CONFIG_OPT_LOG_LEVEL,
    [AOPT_LOG_TIMESTAMPS] = CONFIG_OPT_LOG_TIMESTAMPS,
};

static int fail(config_error_t *err, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(config_error_t *err, const char *fmt, ...)
{
    va_list ap;
    err->code = CONFIG_EINVAL;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
    return -1;
}

/* Copy `src` into `dst` (size `n`); -1 when it does not fit. */
static int copy(char *dst, size_t n, const char *src)
{
    size_t len = strlen(src);
    if (len >= n)
        return -1;
    memcpy(dst, src, len + 1);
    return 0;
}

int agent_options_to_settings(const config_t *cfg, agent_settings_t *s, agent_strings_t *buf,
                              config_error_t *err)
{
    const char *jid = config_str(cfg, AOPT_JID), *at, *v, *home;
    const char *tls = config_str(cfg, AOPT_XMPP_TLS);
    char host[256];
    int n;

    memset(s, 0, sizeof *s);
    at = strchr(jid, '@');
    if (!at || at == jid || !at[1] || strchr(at + 1, '@') || strchr(jid, '/'))
        return fail(err, "jid: \"%s\" is not a bare JID (user@domain)", jid);
    s->jid = jid;
    s->password = config_str(cfg, AOPT_PASSWORD);

    v = config_str(cfg, AOPT_RESOURCE);
    if (!v || !*v) {
        if (gethostname(host, sizeof host) != 0 || !host[0])
            snprintf(host, sizeof host, "bitween");
        host[sizeof host - 1] = '\0';
        v = host;
    }
    if (strchr(v, '/') || copy(buf->resource, sizeof buf->resource, v) != 0)
        return fail(err, "resource: \"%s\" is not a usable resource", v);
    s->resource = buf->resource;

    v = config_str(cfg, AOPT_XMPP_HOST);
    s->xmpp_host = v && *v ? v : NULL;
    s->xmpp_port = (unsigned)config_int(cfg, AOPT_XMPP_PORT);
    s->tls = strcmp(tls, "required") == 0   ? AGENT_TLS_REQUIRED
             : strcmp(tls, "optional") == 0 ? AGENT_TLS_OPTIONAL
                                            : AGENT_TLS_DISABLED;
    v = config_str(cfg, AOPT_XMPP_CA_FILE);
    s->ca_file = v && *v ? v : NULL;

    v = config_str(cfg, AOPT_COMPONENT_JID);
    if (v && *v)
        n = copy(buf->component_jid, sizeof buf->component_jid, v);
    else
        n = snprintf(buf->component_jid, sizeof buf->component_jid, "shares.%s", at + 1) <
                    (int)sizeof buf->component_jid
                ? 0
                : -1;
    if (n != 0 || strchr(buf->component_jid, '@') || strchr(buf->component_jid, '/'))
        return fail(err, "component_jid: \"%s\" is not a domain JID", v ? v : "");
    s->component_jid = buf->component_jid;
    s->priority = (int)config_int(cfg, AOPT_PRIORITY);

    v = config_str(cfg, AOPT_STATE_DIR);
    if (v && *v)
        n = copy(buf->state_dir, sizeof buf->state_dir, v);
    else if ((home = getenv("XDG_STATE_HOME")) && *home == '/')
        n = snprintf(buf->state_dir, sizeof buf->state_dir, "%s/bitween", home) <
                    (int)sizeof buf->state_dir
                ? 0
                : -1;
    else if ((home = getenv("HOME")) && *home == '/')
        n = snprintf(buf->state_dir, sizeof buf->state_dir, "%s/.local/state/bitween", home) <
                    (int)sizeof buf->state_dir
                ? 0
                : -1;
    else
        return fail(err, "state_dir: not set, and neither XDG_STATE_HOME nor HOME is");
    if (n != 0)
        return fail(err, "state_dir: the path is too long");
    s->state_dir = buf->state_dir;

    s->listen_interfaces = config_str(cfg, AOPT_LISTEN_INTERFACES);
    v = config_str(cfg, AOPT_EXTERNAL_ADDRESS);
    s->external_address = v && *v ? v : NULL;
    s->announce_private = config_bool(cfg, AOPT_ANNOUNCE_PRIVATE_ADDRESSES);
    s->allow_loopback = config_bool(cfg, AOPT_ALLOW_LOOPBACK_ADDRESSES);
    s->port_mapping = config_bool(cfg, AOPT_PORT_MAPPING);
    s->download_rate_limit = config_int(cfg, AOPT_DOWNLOAD_RATE_LIMIT) * 1024;
    s->upload_rate_limit = config_int(cfg, AOPT_UPLOAD_RATE_LIMIT) * 1024;
    s->hashing_jobs = (unsigned)config_int(cfg, AOPT_HASHING_JOBS);
    v = config_str(cfg, AOPT_DOWNLOAD_DIR);
    if (v && *v)
        n = copy(buf->download_dir, sizeof buf->download_dir, v);
    else if ((home = getenv("XDG_DOWNLOAD_DIR")) && *home == '/')
        n = copy(buf->download_dir, sizeof buf->download_dir, home);
    else if ((home = getenv("HOME")) && *home == '/')
        n = snprintf(buf->download_dir, sizeof buf->download_dir, "%s/Downloads", home) <
                    (int)sizeof buf->download_dir
                ? 0
                : -1;
    else
        return fail(err, "download_dir: not set, and neither XDG_DOWNLOAD_DIR nor HOME is");
    if (n != 0 || buf->download_dir[0] != '/')
        return fail(err, "download_dir: an absolute path of at most %zu bytes is needed",
                    sizeof buf->download_dir - 1);
    s->download_dir = buf->download_dir;
    v = config_str(cfg, AOPT_DOWNLOAD_ROOTS);
    s->download_roots = v && *v ? v : NULL;
    s->share_downloads = config_bool(cfg, AOPT_SHARE_DOWNLOADS);
    s->metadata_timeout_s = (unsigned)config_int(cfg, AOPT_METADATA_TIMEOUT);
    s->max_downloads = (size_t)config_int(cfg, AOPT_MAX_DOWNLOADS);
    s->rpc_address = config_str(cfg, AOPT_RPC_ADDRESS);
    s->rpc_port = (unsigned)config_int(cfg, AOPT_RPC_PORT);
    v = config_str(cfg, AOPT_RPC_TOKEN);
    s->rpc_token = v && *v ? v : NULL;
    s->rpc_allowed_hosts = config_str(cfg, AOPT_RPC_ALLOWED_HOSTS);
    s->reconnect_min_ms = (unsigned)config_int(cfg, AOPT_RECONNECT_MIN_MS);
    s->reconnect_max_ms = (unsigned)config_int(cfg, AOPT_RECONNECT_MAX_MS);
    s->iq_timeout_ms = (unsigned)config_int(cfg, AOPT_IQ_TIMEOUT_MS);
    s->max_contacts = (size_t)config_int(cfg, AOPT_MAX_CONTACTS);
    s->max_contact_resources = (size_t)config_int(cfg, AOPT_MAX_CONTACT_RESOURCES);
    s->max_contact_shares = (size_t)config_int(cfg, AOPT_MAX_CONTACT_SHARES);
    s->max_contact_item_bytes = (size_t)config_int(cfg, AOPT_MAX_CONTACT_ITEM_BYTES);
    if (s->reconnect_max_ms < s->reconnect_min_ms)
        return fail(err, "reconnect_max_ms is below reconnect_min_ms");
    return 0;
}
