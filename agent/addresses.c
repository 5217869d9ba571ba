/* SPDX-License-Identifier: MIT */
/* This device's own addresses. */
#include "addresses.h"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "shares.h"

static int is_private(const char *canon)
{
    struct in_addr v4;
    struct in6_addr v6;
    if (inet_pton(AF_INET, canon, &v4) == 1) {
        uint32_t a = ntohl(v4.s_addr);
        return (a >> 24) == 10 || (a >> 20) == ((172u << 4) | 1) ||
               (a >> 16) == ((192u << 8) | 168) || (a >> 16) == ((169u << 8) | 254) ||
               (a >> 22) == ((100u << 2) | 1); /* CGNAT */
    }
    if (inet_pton(AF_INET6, canon, &v6) == 1)
        return (v6.s6_addr[0] & 0xfe) == 0xfc; /* fc00::/7 */
    return 0;
}

/* Whether `canon` may be announced, as the settings say. */
static int announceable(const addresses_t *a, const char *canon)
{
    switch (shares_address_class(canon)) {
    case SHARES_ADDR_USABLE:
        return a->announce_private || !is_private(canon);
    case SHARES_ADDR_LOOPBACK:
        return a->allow_loopback;
    default:
        return 0; /* unspecified, multicast, broadcast, reserved, link-local */
    }
}

int addresses_listen(addresses_t *a, const char *address, uint16_t port)
{
    char canon[SHARES_ADDR_MAX];
    size_t i;
    if (shares_canon_address(address, canon, NULL) != SHARES_OK || !port)
        return 0;
    for (i = 0; i < a->n_listen; i++)
        if (a->listen[i].port == port && strcmp(a->listen[i].address, canon) == 0)
            return 0;
    if (a->n_listen == ADDRESSES_MAX_LISTEN)
        return 0;
    snprintf(a->listen[a->n_listen].address, sizeof a->listen[0].address, "%s", canon);
    a->listen[a->n_listen].port = port;
    a->n_listen++;
    return 1;
}

int addresses_external(addresses_t *a, const char *address, uint16_t port, int source)
{
    char canon[SHARES_ADDR_MAX];
    size_t i;
    if (shares_canon_address(address, canon, NULL) != SHARES_OK)
        return 0;
    for (i = 0; i < a->n_extra; i++)
        if (a->extra[i].port == port && strcmp(a->extra[i].address, canon) == 0)
            return 0;
    /* what this one replaces */
    i = 0;
    while (i < a->n_extra) {
        if (source != ADDRESS_CONFIGURED && a->extra_source[i] == source &&
            (source == ADDRESS_FROM_SERVER || a->extra[i].port == port)) {
            memmove(a->extra + i, a->extra + i + 1, (a->n_extra - i - 1) * sizeof a->extra[0]);
            memmove(a->extra_source + i, a->extra_source + i + 1,
                    (a->n_extra - i - 1) * sizeof a->extra_source[0]);
            a->n_extra--;
            continue;
        }
        i++;
    }
    if (a->n_extra == ADDRESSES_MAX_EXTRA)
        return 0; /* only many mapped ports could fill it */
    snprintf(a->extra[a->n_extra].address, sizeof a->extra[0].address, "%s", canon);
    a->extra[a->n_extra].port = port;
    a->extra_source[a->n_extra] = source;
    a->n_extra++;
    return 1;
}

static size_t push(announce_addr_t *out, size_t n, size_t max, const char *canon, uint16_t port)
{
    size_t i;
    for (i = 0; i < n; i++)
        if (out[i].port == port && strcmp(out[i].address, canon) == 0)
            return n;
    if (n == max)
        return n;
    snprintf(out[n].address, sizeof out[n].address, "%s", canon);
    out[n].port = port;
    return n + 1;
}

static int is_v6(const char *canon)
{
    return strchr(canon, ':') != NULL;
}

size_t addresses_collect_from(const addresses_t *a, const char *const *ifaddrs, size_t n_if,
                              announce_addr_t *out, size_t max)
{
    size_t i, j, n = 0;
    uint16_t first_port = 0;

    for (i = 0; i < a->n_listen; i++) {
        const char *la = a->listen[i].address;
        int wildcard = strcmp(la, "0.0.0.0") == 0 || strcmp(la, "::") == 0;
        if (!first_port)
            first_port = a->listen[i].port;
        if (!wildcard) {
            if (announceable(a, la))
                n = push(out, n, max, la, a->listen[i].port);
            continue;
        }
        for (j = 0; j < n_if; j++) {
            char canon[SHARES_ADDR_MAX];
            if (shares_canon_address(ifaddrs[j], canon, NULL) != SHARES_OK ||
                is_v6(canon) != is_v6(la) || !announceable(a, canon))
                continue;
            n = push(out, n, max, canon, a->listen[i].port);
        }
    }
    for (i = 0; i < a->n_extra; i++) {
        uint16_t port = a->extra[i].port ? a->extra[i].port : first_port;
        /* an external address is the user's word: only the classes no
         * contact could use at all are left out */
        if (port && (announceable(a, a->extra[i].address) ||
                     shares_address_class(a->extra[i].address) == SHARES_ADDR_USABLE))
            n = push(out, n, max, a->extra[i].address, port);
    }
    return n;
}

size_t addresses_collect(const addresses_t *a, announce_addr_t *out, size_t max)
{
    struct ifaddrs *ifs = NULL, *p;
    char text[64][INET6_ADDRSTRLEN];
    const char *list[64];
    size_t n = 0, i;

    if (getifaddrs(&ifs) == 0) {
        for (p = ifs; p && n < 64; p = p->ifa_next) {
            if (!p->ifa_addr || !(p->ifa_flags & IFF_UP))
                continue;
            if (p->ifa_addr->sa_family == AF_INET)
                inet_ntop(AF_INET, &((struct sockaddr_in *)(void *)p->ifa_addr)->sin_addr, text[n],
                          sizeof text[n]);
            else if (p->ifa_addr->sa_family == AF_INET6)
                inet_ntop(AF_INET6, &((struct sockaddr_in6 *)(void *)p->ifa_addr)->sin6_addr,
                          text[n], sizeof text[n]);
            else
                continue;
            n++;
        }
        freeifaddrs(ifs);
    }
    for (i = 0; i < n; i++)
        list[i] = text[i];
    return addresses_collect_from(a, list, n, out, max);
}
