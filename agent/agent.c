/* SPDX-License-Identifier: MIT */
/* The agent's context: event loop, BitTorrent session, shares, RPC. */
#include "agent_private.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "secrand.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

#define STOP_SAVE_MS 10000 /* longest wait for resume data at shutdown */

rpc_t *agent_rpc(agent_t *a)
{
    return a->rpc;
}

void agent_drain_events(agent_t *a)
{
    btshim_event_t ev[32];
    btshim_error_t err;
    size_t n, i;
    int changed = 0;

    do {
        if (btshim_poll(a->bt, ev, sizeof ev[0], 32, &n, &err) != BTSHIM_OK) {
            LOG_ERROR(a->log, "bt", "reading the session's events: %s", err.message);
            return;
        }
        for (i = 0; i < n; i++) {
            if (!library_on_event(a->lib, &ev[i]) && !downloads_on_event(a->dl, &ev[i])) {
                switch (ev[i].type) {
                case BTSHIM_EV_LISTEN:
                    LOG_INFO(a->log, "bt", "listening on %s port %u", ev[i].address,
                             (unsigned)ev[i].port);
                    if (addresses_listen(&a->addrs, ev[i].address, ev[i].port))
                        changed = 1;
                    break;
                case BTSHIM_EV_LISTEN_FAILED:
                    LOG_WARN(a->log, "bt", "could not listen on %s port %u: %s", ev[i].address,
                             (unsigned)ev[i].port, ev[i].message);
                    break;
                case BTSHIM_EV_PORT_MAPPED:
                    LOG_INFO(a->log, "bt", "router mapped port %u on %s", (unsigned)ev[i].port,
                             ev[i].address);
                    if (ev[i].address[0] && addresses_external(&a->addrs, ev[i].address, ev[i].port,
                                                               ADDRESS_FROM_ROUTER))
                        changed = 1;
                    break;
                case BTSHIM_EV_PORT_MAP_FAILED:
                    LOG_INFO(a->log, "bt", "port mapping failed: %s", ev[i].message);
                    break;
                default:
                    break;
                }
            }
            btshim_event_clear(&ev[i]);
        }
    } while (n > 0); /* handling an event may queue more (resume data) */
    if (changed)
        agent_xmpp_shares_changed(a);
}

static void on_bt_wake(loop_t *loop, int fd, short revents, void *arg)
{
    (void)loop;
    (void)fd;
    (void)revents;
    agent_drain_events(arg);
}

static void on_library(void *arg, library_event_t ev, const share_info_t *info)
{
    agent_t *a = arg;
    if (ev == LIBRARY_EV_HASHED && info)
        agent_rpc_job_ended(a, info);
    if (ev == LIBRARY_EV_CHANGED)
        agent_xmpp_shares_changed(a);
}

/* ---- downloads ----------------------------------------------------------- */

size_t agent_sources(agent_t *a, const char *hash, dl_endpoint_t *out, size_t max)
{
    contacts_source_t *src;
    size_t n, i, k = 0, round, *per_contact, *first;
    int more = 1;

    if (!a->contacts || !max)
        return 0;
    n = contacts_sources(a->contacts, hash, NULL, 0);
    if (n > AGENT_MAX_SOURCES)
        n = AGENT_MAX_SOURCES;
    src = n ? calloc(n, sizeof *src) : NULL;
    per_contact = n ? calloc(n, sizeof *per_contact) : NULL;
    first = n ? calloc(n, sizeof *first) : NULL; /* each source's contact's first source */
    if (!src || !per_contact || !first) {
        free(src);
        free(per_contact);
        free(first);
        return 0;
    }
    n = contacts_sources(a->contacts, hash, src, n);
    if (n > AGENT_MAX_SOURCES)
        n = AGENT_MAX_SOURCES;
    for (i = 0; i < n; i++)
        for (first[i] = 0; first[i] < i && src[first[i]].bare != src[i].bare; first[i]++)
            ;
    /* round robin over the devices, each contact at most
     * AGENT_SOURCES_PER_CONTACT addresses: one contact listing the hash
     * from many devices with many addresses cannot crowd out the others */
    for (round = 0; more && k < max; round++) {
        more = 0;
        for (i = 0; i < n && k < max; i++) {
            shares_address_t ad;
            shares_addr_class_t cl;
            size_t m;
            if (round >= shares_item_address_count(src[i].item, src[i].resource))
                continue;
            more = 1;
            if (per_contact[first[i]] >= AGENT_SOURCES_PER_CONTACT ||
                shares_item_address(src[i].item, src[i].resource, round, &ad) != 0)
                continue;
            cl = shares_address_class(ad.address);
            if (cl != SHARES_ADDR_USABLE && !(cl == SHARES_ADDR_LOOPBACK && a->s->allow_loopback))
                continue; /* never pointed at this host, a broadcast or a multicast group */
            for (m = 0; m < k; m++)
                if (out[m].port == ad.port && strcmp(out[m].address, ad.address) == 0)
                    break;
            if (m < k)
                continue;
            snprintf(out[k].address, sizeof out[k].address, "%s", ad.address);
            out[k].port = ad.port;
            per_contact[first[i]]++;
            k++;
        }
    }
    free(src);
    free(per_contact);
    free(first);
    return k;
}

static size_t dl_sources(void *arg, const char *hash, dl_endpoint_t *out, size_t max)
{
    return agent_sources(arg, hash, out, max);
}

static void dl_event(void *arg, dl_event_t ev, const dl_info_t *info)
{
    agent_t *a = arg;
    (void)info;
    if (ev == DL_EV_CHANGED && a->s->share_downloads)
        agent_xmpp_shares_changed(a);
}

static uint64_t dl_new_id(void *arg)
{
    return library_new_id(((agent_t *)arg)->lib);
}

static void dl_tick_cb(loop_t *loop, void *arg)
{
    agent_t *a = arg;
    downloads_tick(a->dl, (int64_t)loop_now_ms(loop));
    loop_timer_start(loop, &a->dl_timer, 1000, dl_tick_cb, a);
}

/* ---- the RPC file: where the CLI and the web page find the agent ------- */

static int write_rpc_file(agent_t *a)
{
    json_t *o =
        json_pack("{sssssI}", "url", a->rpc_url, "token", a->token, "pid", (json_int_t)getpid());
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL;
    int rc = text ? library_write_file(a->rpc_file, text, strlen(text)) : -1;
    json_decref(o);
    free(text);
    return rc;
}

static int make_token(agent_t *a)
{
    if (a->s->rpc_token) {
        if (strlen(a->s->rpc_token) >= sizeof a->token)
            return -1;
        strcpy(a->token, a->s->rpc_token);
        return 0;
    }
    return secrand_hex(a->token, AGENT_TOKEN_BYTES);
}

static int start_rpc(agent_t *a)
{
    rpc_http_settings_t hs;
    char err[256];
    int v6;

    if (make_token(a) != 0) {
        LOG_ERROR(a->log, "rpc", "no token: rpc_token is too long, or no randomness");
        return -1;
    }
    memset(&hs, 0, sizeof hs);
    hs.address = a->s->rpc_address;
    hs.port = a->s->rpc_port;
    hs.token = a->token;
    hs.allowed_hosts = a->s->rpc_allowed_hosts;
    a->http = rpc_http_new(a->loop, a->rpc, &hs, a->log, err, sizeof err);
    if (!a->http) {
        LOG_ERROR(a->log, "rpc", "%s", err);
        return -1;
    }
    if (a->s->rpc_token && strlen(a->s->rpc_token) < 16)
        LOG_WARN(a->log, "rpc", "rpc_token is shorter than 16 characters: use a long random one");
    if (strcmp(a->s->rpc_address, "127.0.0.1") != 0 && strcmp(a->s->rpc_address, "::1") != 0)
        LOG_WARN(a->log, "rpc",
                 "the JSON-RPC API listens on %s, which other machines may reach: its token "
                 "is all that protects this device's files",
                 a->s->rpc_address);
    v6 = strchr(a->s->rpc_address, ':') != NULL;
    snprintf(a->rpc_url, sizeof a->rpc_url, "http://%s%s%s:%u/rpc", v6 ? "[" : "",
             a->s->rpc_address, v6 ? "]" : "", rpc_http_port(a->http));
    a->rpc_file = malloc(strlen(a->s->state_dir) + sizeof "/rpc.json");
    if (!a->rpc_file)
        return -1;
    sprintf(a->rpc_file, "%s/rpc.json", a->s->state_dir);
    if (write_rpc_file(a) != 0) {
        LOG_ERROR(a->log, "rpc", "could not write %s: %s", a->rpc_file, strerror(errno));
        return -1;
    }
    LOG_INFO(a->log, "rpc", "JSON-RPC on %s; URL and token in %s", a->rpc_url, a->rpc_file);
    return 0;
}

/* ---- life cycle --------------------------------------------------------- */

static agent_t *agent_alloc(const agent_settings_t *s, log_t *log, btshim_session_t *bt)
{
    agent_t *a = calloc(1, sizeof *a);
    library_error_t lerr;
    downloads_settings_t ds;
    dl_error_t derr;

    if (!a) {
        LOG_ERROR(log, "main", "out of memory");
        return NULL;
    }
    a->s = s;
    a->log = log;
    a->bt = bt;
    a->xfd = -1;
    a->addrs.announce_private = s->announce_private;
    a->addrs.allow_loopback = s->allow_loopback;
    if (s->external_address &&
        !addresses_external(&a->addrs, s->external_address, 0, ADDRESS_CONFIGURED))
        LOG_WARN(log, "main", "external_address \"%s\" is not an IP address: ignored",
                 s->external_address);
    a->download_rate_limit = s->download_rate_limit;
    a->upload_rate_limit = s->upload_rate_limit;
    if (!(a->loop = loop_new()) ||
        !(a->rpc = rpc_new(agent_rpc_methods, agent_rpc_methods_count, a))) {
        LOG_ERROR(log, "main", "out of memory");
        goto fail;
    }
    a->lib = library_new(bt, s->state_dir, 0, log, on_library, a, &lerr);
    if (!a->lib) {
        LOG_ERROR(log, "share", "%s", lerr.message);
        goto fail;
    }
    memset(&ds, 0, sizeof ds);
    ds.state_dir = s->state_dir;
    ds.download_dir = s->download_dir;
    ds.roots = s->download_roots;
    ds.max_downloads = s->max_downloads;
    ds.metadata_timeout_s = s->metadata_timeout_s;
    ds.sources = dl_sources;
    ds.event = dl_event;
    ds.new_id = dl_new_id;
    ds.arg = a;
    if (!(a->dl = downloads_new(bt, &ds, log, &derr))) {
        LOG_ERROR(log, "download", "%s", derr.message);
        goto fail;
    }
    if (loop_fd_add(a->loop, btshim_session_wake_fd(bt), POLLIN, on_bt_wake, a) != 0 ||
        loop_timer_start(a->loop, &a->dl_timer, 1000, dl_tick_cb, a) != 0)
        goto fail;
    library_load(a->lib);
    downloads_load(a->dl);
    return a;
fail:
    downloads_free(a->dl);
    library_free(a->lib);
    rpc_free(a->rpc);
    loop_free(a->loop);
    free(a);
    return NULL;
}

agent_t *agent_new_offline(const agent_settings_t *s, log_t *log, btshim_session_t *bt)
{
    return agent_alloc(s, log, bt);
}

agent_t *agent_new(const agent_settings_t *s, log_t *log)
{
    btshim_settings_t bs;
    btshim_error_t err;
    btshim_session_t *bt;
    agent_t *a;
    char lock_path[4200];
    int lock_fd;

    if (mkdir(s->state_dir, 0700) != 0 && errno != EEXIST) {
        LOG_ERROR(log, "main", "state directory %s: %s", s->state_dir, strerror(errno));
        return NULL;
    }
    /* one agent per state directory: a second would share its torrents
     * and overwrite its RPC file */
    snprintf(lock_path, sizeof lock_path, "%s/lock", s->state_dir);
    lock_fd = open(lock_path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
    if (lock_fd < 0 || flock(lock_fd, LOCK_EX | LOCK_NB) != 0) {
        LOG_ERROR(log, "main", "%s: %s", lock_path,
                  lock_fd >= 0 && errno == EWOULDBLOCK
                      ? "another bitween-agent uses this state directory"
                      : strerror(errno));
        if (lock_fd >= 0)
            close(lock_fd);
        return NULL;
    }
    memset(&bs, 0, sizeof bs);
    bs.listen_interfaces = s->listen_interfaces;
    bs.upnp = bs.natpmp = s->port_mapping;
    bs.download_rate_limit = (int)s->download_rate_limit;
    bs.upload_rate_limit = (int)s->upload_rate_limit;
    bs.max_jobs = s->hashing_jobs;
    bs.user_agent = "bitween/" BITWEEN_VERSION;
    bt = btshim_session_new(&bs, &err);
    if (!bt) {
        LOG_ERROR(log, "bt", "BitTorrent session: %s", err.message);
        close(lock_fd);
        return NULL;
    }
    LOG_INFO(log, "bt", "%s session; DHT, local discovery, trackers and peer exchange off%s",
             btshim_backend(), s->port_mapping ? "; UPnP and NAT-PMP on" : "");
    a = agent_alloc(s, log, bt);
    if (!a) {
        btshim_session_free(bt);
        close(lock_fd);
        return NULL;
    }
    a->own_bt = 1;
    a->lock_fd = lock_fd;
    if ((s->rpc_address && start_rpc(a) != 0) || agent_xmpp_start(a) != 0) {
        LOG_ERROR(log, "main", "could not start (out of memory?)");
        agent_free(a);
        return NULL;
    }
    return a;
}

int agent_run(agent_t *a, volatile sig_atomic_t *stop, volatile sig_atomic_t *reload,
              void (*on_reload)(void *), void *arg)
{
    uint64_t end;

    while (!*stop) {
        /* libstrophe's own timers (connect timeout, keepalive) need turns */
        if (loop_run_once(a->loop, a->ctx ? 200 : 1000) < 0) {
            LOG_ERROR(a->log, "main", "event loop: %s", strerror(errno));
            return -1;
        }
        agent_xmpp_iterate(a);
        if (reload && *reload) {
            *reload = 0;
            if (on_reload)
                on_reload(arg);
        }
    }
    LOG_INFO(a->log, "main", "stopping: unregistering, saving resume data");
    a->stopping = 1;
    agent_rpc_fail_waiters(a);
    agent_xmpp_stop(a);
    library_save_all(a->lib);
    downloads_save_all(a->dl);
    end = loop_now_ms(a->loop) + STOP_SAVE_MS;
    while ((library_saves_pending(a->lib) || downloads_saves_pending(a->dl)) &&
           loop_now_ms(a->loop) < end)
        if (loop_run_once(a->loop, 100) < 0)
            break;
    if (library_saves_pending(a->lib) || downloads_saves_pending(a->dl))
        LOG_WARN(a->log, "main",
                 "%zu share(s) and %zu download(s) without fresh resume data: they continue "
                 "from their last save",
                 library_saves_pending(a->lib), downloads_saves_pending(a->dl));
    return 0;
}

int agent_set_rates(agent_t *a, long long download, long long upload)
{
    btshim_error_t err;
    if (btshim_session_set_rates(a->bt, (int)download, (int)upload, &err) != BTSHIM_OK) {
        LOG_ERROR(a->log, "bt", "rate limits: %s", err.message);
        return -1;
    }
    a->download_rate_limit = download;
    a->upload_rate_limit = upload;
    LOG_INFO(a->log, "bt", "rate limits: download %lld KiB/s, upload %lld KiB/s (0: unlimited)",
             download / 1024, upload / 1024);
    return 0;
}

void agent_free(agent_t *a)
{
    if (!a)
        return;
    agent_rpc_fail_waiters(a);
    if (a->http && a->rpc_file)
        unlink(a->rpc_file);
    rpc_http_free(a->http);
    free(a->rpc_file);
    rpc_free(a->rpc);
    agent_xmpp_free(a);
    if (a->loop)
        loop_timer_stop(a->loop, &a->dl_timer);
    downloads_free(a->dl);
    library_free(a->lib);
    if (a->bt)
        loop_fd_del(a->loop, btshim_session_wake_fd(a->bt));
    loop_free(a->loop);
    if (a->own_bt)
        btshim_session_free(a->bt);
    if (a->lock_fd > 0)
        close(a->lock_fd);
    free(a);
}
