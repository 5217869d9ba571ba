/* SPDX-License-Identifier: MIT */
/*
 * This device's own addresses, as contacts will be told them: for each
 * socket the BitTorrent session listens on, its address (or, for a
 * wildcard socket, every address of that family on the host's
 * interfaces), with the socket's port; then the configured external
 * address and the addresses routers and peers report (UPnP/NAT-PMP
 * mappings, XEP-0279). Private (RFC 1918, ULA) and link-local addresses
 * only when configured, loopback only when allowed; unspecified,
 * multicast and reserved ones never.
 */
#ifndef BITWEEN_AGENT_ADDRESSES_H
#define BITWEEN_AGENT_ADDRESSES_H

#include <stddef.h>
#include <stdint.h>

#include "announce.h"

#define ADDRESSES_MAX_LISTEN 8
#define ADDRESSES_MAX_EXTRA  8

typedef struct addresses {
    struct listen_sock {
        char address[46];
        uint16_t port;
    } listen[ADDRESSES_MAX_LISTEN];
    size_t n_listen;
    announce_addr_t extra[ADDRESSES_MAX_EXTRA]; /* external: configured, mapped, reported */
    int extra_source[ADDRESSES_MAX_EXTRA];
    size_t n_extra;
    int announce_private;
    int allow_loopback;
} addresses_t;

/** A listen socket came up (BTSHIM_EV_LISTEN). Returns 1 when new. */
int addresses_listen(addresses_t *a, const char *address, uint16_t port);

/* Where an external address comes from. */
enum { ADDRESS_CONFIGURED = 1, ADDRESS_FROM_ROUTER, ADDRESS_FROM_SERVER };

/**
 * An external address and port (0: the first listen port). A router's
 * mapping replaces the previous one of the same port, the server's report
 * (XEP-0279) the previous report: an address this device had once is not
 * announced forever. Configured ones stay. Returns 1 when the list
 * changed.
 */
int addresses_external(addresses_t *a, const char *address, uint16_t port, int source);

/**
 * The addresses to announce into `out` (at most `max`), from the host's
 * interfaces as getifaddrs() lists them now. Returns how many.
 */
size_t addresses_collect(const addresses_t *a, announce_addr_t *out, size_t max);

/**
 * The same from an explicit interface list (`ifaddrs`: `n` IP literals),
 * for tests.
 */
size_t addresses_collect_from(const addresses_t *a, const char *const *ifaddrs, size_t n,
                              announce_addr_t *out, size_t max);

#endif /* BITWEEN_AGENT_ADDRESSES_H */
