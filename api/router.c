/* SPDX-License-Identifier: MIT */
/*
 * The route table of the admin API and path matching. Patterns are
 * '/'-separated segments, each a literal or a "{name}" that captures one
 * non-empty raw segment (the caller percent-decodes it, so a resource may
 * contain an escaped '/'). A path that matches a pattern under another
 * method gives 405 with the methods that exist; HEAD is served by GET.
 * api/openapi.yaml describes the same table (tests/unit/test_api_routes.c
 * checks both ways).
 */
#include <stdio.h>
#include <string.h>

#include "api_private.h"

static const api_route_t routes[] = {
    {"GET", "/healthz", api_h_healthz, 0},
    {"GET", "/readyz", api_h_readyz, 0},
    {"GET", "/metrics", api_h_metrics, 0},
    {"GET", "/api/v1/users", api_h_users, API_ROUTE_AUTH},
    {"GET", "/api/v1/users/{jid}", api_h_user, API_ROUTE_AUTH},
    {"DELETE", "/api/v1/users/{jid}/resources/{resource}", api_h_evict, API_ROUTE_AUTH},
    {"POST", "/api/v1/users/{jid}/republish", api_h_republish, API_ROUTE_AUTH},
    {"GET", "/api/v1/shares/{hash}", api_h_share, API_ROUTE_AUTH},
    {"GET", "/api/v1/search", api_h_search, API_ROUTE_AUTH},
    {"GET", "/api/v1/stats", api_h_stats, API_ROUTE_AUTH},
};

_Static_assert(sizeof routes / sizeof routes[0] <= API_MAX_ROUTES, "too many routes");

size_t api_routes(const api_route_t **out)
{
    *out = routes;
    return sizeof routes / sizeof routes[0];
}

/* Match `path` against `pattern`; captures go to `params`. */
static int path_matches(const char *pattern, const char *path, api_param_t *params,
                        size_t *n_params)
{
    const char *p = pattern, *s = path;
    size_t n = 0;

    while (*p && *s) {
        const char *pe, *se;
        if (*p != '/' || *s != '/')
            return 0;
        p++, s++;
        pe = strchr(p, '/');
        if (!pe)
            pe = p + strlen(p);
        se = strchr(s, '/');
        if (!se)
            se = s + strlen(s);
        if (*p == '{') {
            if (se == s || n == API_MAX_PARAMS)
                return 0;
            params[n].p = s;
            params[n].n = (size_t)(se - s);
            n++;
        } else if ((size_t)(pe - p) != (size_t)(se - s) || memcmp(p, s, (size_t)(pe - p)) != 0) {
            return 0;
        }
        p = pe, s = se;
    }
    if (*p || *s)
        return 0;
    *n_params = n;
    return 1;
}

static void allow_add(char *allow, size_t len, const char *method)
{
    size_t used = strlen(allow), mlen = strlen(method);
    const char *t = allow;
    while (*t) { /* each method once */
        size_t tl = strcspn(t, ",");
        if (tl == mlen && memcmp(t, method, mlen) == 0)
            return;
        t += tl;
        while (*t == ',' || *t == ' ')
            t++;
    }
    snprintf(allow + used, len - used, "%s%s", used ? ", " : "", method);
}

int api_route_match(const char *method, const char *path, size_t *index, api_param_t *params,
                    size_t *n_params, char *allow, size_t allow_len)
{
    size_t i, n = sizeof routes / sizeof routes[0], np;
    api_param_t tmp[API_MAX_PARAMS];
    int path_found = 0;
    const char *m = strcmp(method, "HEAD") == 0 ? "GET" : method;

    if (allow_len)
        allow[0] = '\0';
    for (i = 0; i < n; i++) {
        if (!path_matches(routes[i].pattern, path, tmp, &np))
            continue;
        if (strcmp(routes[i].method, m) == 0) {
            *index = i;
            memcpy(params, tmp, sizeof tmp);
            *n_params = np;
            return API_MATCH_OK;
        }
        path_found = 1;
        if (allow_len) {
            allow_add(allow, allow_len, routes[i].method);
            if (strcmp(routes[i].method, "GET") == 0)
                allow_add(allow, allow_len, "HEAD");
        }
    }
    return path_found ? API_MATCH_BAD_METHOD : API_MATCH_NOT_FOUND;
}
