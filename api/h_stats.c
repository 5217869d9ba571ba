/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/stats: registry counts (cached, refreshed every
 * stats_ttl_s; "registry" is null while the database is away and nothing
 * was counted yet), the component's counters, uptime and version.
 */
#include <math.h>
#include <time.h>

#include "agent_proto.h"
#include "api_private.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

static json_t *registry_view(api_req_t *req)
{
    store_stats_t s;
    store_error_t err;
    double age, as_of;
    char when[40];
    struct tm tm;
    time_t secs;
    store_t *st = api_store(req);

    if (!st)
        return NULL;
    if (api_counts_get(req->api, st, &s, &age, &as_of, &err) != STORE_OK)
        return json_null();
    secs = (time_t)as_of;
    gmtime_r(&secs, &tm);
    strftime(when, sizeof when, "%Y-%m-%dT%H:%M:%SZ", &tm);
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:s,s:f}", "users", (json_int_t)s.users, "resources",
                     (json_int_t)s.resources, "shares", (json_int_t)s.shares, "addresses",
                     (json_int_t)s.addresses, "distinct_hashes", (json_int_t)s.distinct_hashes,
                     "as_of", when, "age_seconds", floor(age * 1000.0) / 1000.0);
}

#define U(x) ((json_int_t)atomic_load(&(x)))

void api_h_stats(api_req_t *req)
{
    api_t *api = req->api;
    json_t *registry = registry_view(req), *out = NULL, *kinds;
    uint64_t uptime = (api_now_ms() - api->started_ms) / 1000u;
    size_t k;

    if (!registry) {
        api_reply_error(req, 500, "internal_error", "out of memory");
        return;
    }
    out = json_pack("{s:s,s:I,s:o,s:{s:b}}", "version", BITWEEN_VERSION, "uptime_seconds",
                    (json_int_t)uptime, "registry", registry, "database", "up",
                    atomic_load(&api->db_up) == 1);
    if (out && api->comp) {
        component_stats_t *cs = component_stats(api->comp);
        json_t *db = json_object_get(out, "database");
        kinds = json_array();
        for (k = 1; kinds && k < COMPONENT_ERR_KINDS; k++)
            if (json_array_append_new(kinds, json_pack("{s:s,s:s,s:I}", "condition",
                                                       agent_error_condition((agent_errcode_t)k),
                                                       "type", agent_error_type((agent_errcode_t)k),
                                                       "count", U(cs->refused_by_kind[k])))) {
                json_decref(kinds);
                kinds = NULL;
            }
        if (!kinds ||
            json_object_set_new(out, "agent_requests",
                                json_pack("{s:I,s:I,s:I,s:o}", "received", U(cs->requests), "ok",
                                          U(cs->requests_ok), "refused", U(cs->requests_refused),
                                          "refused_by_kind", kinds)) ||
            json_object_set_new(out, "publishes",
                                json_pack("{s:I,s:I,s:I,s:I,s:I,s:I}", "ok", U(cs->publishes_ok),
                                          "failed", U(cs->publishes_failed), "retried",
                                          U(cs->publishes_retried), "skipped",
                                          U(cs->publishes_skipped), "errors_temporary",
                                          U(cs->publish_errors_temporary), "errors_permanent",
                                          U(cs->publish_errors_permanent))) ||
            json_object_set_new(out, "removals", json_integer(U(cs->removals))) ||
            json_object_set_new(
                out, "xmpp",
                json_pack("{s:b,s:b,s:I,s:I,s:I}", "connected", atomic_load(&cs->xmpp_up) != 0,
                          "publish_allowed", atomic_load(&cs->publish_allowed) != 0, "connects",
                          U(cs->xmpp_connects), "disconnects", U(cs->xmpp_disconnects),
                          "pings_sent", U(cs->pings_sent))) ||
            json_object_set_new(db, "unavailable_events", json_integer(U(cs->db_unavailable)))) {
            json_decref(out);
            out = NULL;
        }
    }
    api_reply_json(req, 200, out);
}
