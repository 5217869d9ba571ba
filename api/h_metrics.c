/* SPDX-License-Identifier: MIT */
/*
 * GET /metrics: Prometheus text format 0.0.4 from our own counters (no
 * token: keep the port firewalled, as the rest of the API). Registry
 * counts come from the cache the refresh thread keeps (never computed in
 * a scrape); they are absent until first counted.
 */
#include <stdio.h>

#include "agent_proto.h"
#include "api_private.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

#define CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

static void counter(api_buf_t *b, const char *name, const char *help, uint64_t v)
{
    api_prom_family(b, name, "counter", help);
    api_prom_sample_u64(b, name, "", v);
}

static void gauge(api_buf_t *b, const char *name, const char *help, double v)
{
    api_prom_family(b, name, "gauge", help);
    api_prom_sample(b, name, "", v);
}

#define L(x) ((uint64_t)atomic_load(&(x)))

static void histogram(api_buf_t *b, const char *name, const char *help, hist_t *h)
{
    uint64_t counts[HIST_BUCKETS + 1];
    double sum = hist_read(h, counts);
    api_prom_family(b, name, "histogram", help);
    api_prom_histogram(b, name, "", hist_bounds, counts, HIST_BUCKETS, sum);
}

static void component_metrics(api_buf_t *b, component_stats_t *cs)
{
    char labels[128];
    size_t k;

    api_prom_family(b, "bitween_agent_requests_total", "counter",
                    "Agent requests (register, add, remove, unregister) by outcome.");
    api_prom_sample_u64(b, "bitween_agent_requests_total", "outcome=\"ok\"", L(cs->requests_ok));
    api_prom_sample_u64(b, "bitween_agent_requests_total", "outcome=\"refused\"",
                        L(cs->requests_refused));
    counter(b, "bitween_agent_requests_received_total", "Agent requests received.",
            L(cs->requests));
    api_prom_family(b, "bitween_agent_requests_refused_total", "counter",
                    "Refused agent requests by XMPP error condition (kind) and type.");
    for (k = 1; k < COMPONENT_ERR_KINDS; k++) {
        snprintf(labels, sizeof labels, "kind=\"%s\",type=\"%s\"",
                 agent_error_condition((agent_errcode_t)k), agent_error_type((agent_errcode_t)k));
        api_prom_sample_u64(b, "bitween_agent_requests_refused_total", labels,
                            L(cs->refused_by_kind[k]));
    }
    api_prom_family(b, "bitween_publishes_total", "counter",
                    "Merged-item publishes by outcome (skipped: unchanged item).");
    api_prom_sample_u64(b, "bitween_publishes_total", "outcome=\"ok\"", L(cs->publishes_ok));
    api_prom_sample_u64(b, "bitween_publishes_total", "outcome=\"failed\"",
                        L(cs->publishes_failed));
    api_prom_sample_u64(b, "bitween_publishes_total", "outcome=\"retried\"",
                        L(cs->publishes_retried));
    api_prom_sample_u64(b, "bitween_publishes_total", "outcome=\"skipped\"",
                        L(cs->publishes_skipped));
    api_prom_family(b, "bitween_publish_errors_total", "counter",
                    "Publish errors from the server by kind.");
    api_prom_sample_u64(b, "bitween_publish_errors_total", "kind=\"temporary\"",
                        L(cs->publish_errors_temporary));
    api_prom_sample_u64(b, "bitween_publish_errors_total", "kind=\"permanent\"",
                        L(cs->publish_errors_permanent));
    counter(b, "bitween_removals_total",
            "Resources removed (unavailable presence, failed check, eviction).", L(cs->removals));
    counter(b, "bitween_pings_sent_total",
            "Pings to registered resources (re-check after a connection, liveness sweep).",
            L(cs->pings_sent));
    counter(b, "bitween_liveness_sweeps_total", "Liveness sweeps started.", L(cs->sweeps));
    api_prom_family(b, "bitween_liveness_probes_total", "counter",
                    "Pings to a resource not known to be online before its request, by outcome.");
    api_prom_sample_u64(b, "bitween_liveness_probes_total", "outcome=\"sent\"", L(cs->probes_sent));
    api_prom_sample_u64(b, "bitween_liveness_probes_total", "outcome=\"failed\"",
                        L(cs->probes_failed));
    api_prom_family(b, "bitween_iq_replies_dropped_total", "counter",
                    "IQ results and errors dropped: no request of ours has that id (unknown), "
                    "or it does but the request did not go to the sender (forged).");
    api_prom_sample_u64(b, "bitween_iq_replies_dropped_total", "reason=\"unknown\"",
                        L(cs->replies_unknown));
    api_prom_sample_u64(b, "bitween_iq_replies_dropped_total", "reason=\"forged\"",
                        L(cs->replies_forged));
    counter(b, "bitween_iq_requests_dropped_total",
            "IQ requests left unanswered because their id is too long to echo in a reply.",
            L(cs->requests_dropped));
    counter(b, "bitween_presences_ignored_total",
            "Presence that cost nothing: unavailable from a resource that is not registered, "
            "available beyond the per-user bound.",
            L(cs->presences_ignored));
    counter(b, "bitween_removals_coalesced_total",
            "Removals asked for while the resource's removal was already on its way.",
            L(cs->removals_coalesced));
    gauge(b, "bitween_requests_held", "Agent requests waiting for their sender's liveness ping.",
          (double)L(cs->requests_held));
    gauge(b, "bitween_liveness_probes_in_flight", "Liveness pings waiting for an answer.",
          (double)L(cs->probes_inflight));
    gauge(b, "bitween_removals_pending", "Resource removals queued or waiting to retry.",
          (double)L(cs->removals_pending));
    gauge(b, "bitween_republishes_queued",
          "Catch-up publishes after a (re)connection waiting for one of the "
          "max_republishes_in_flight slots.",
          (double)L(cs->republishes_queued));
    gauge(b, "bitween_republishes_in_flight",
          "Catch-up publishes after a (re)connection sent and not yet answered.",
          (double)L(cs->republishes_inflight));
    counter(b, "bitween_db_unavailable_total",
            "Database calls of the component that found PostgreSQL unavailable.",
            L(cs->db_unavailable));
    counter(b, "bitween_xmpp_connects_total", "XMPP connections established (authenticated).",
            L(cs->xmpp_connects));
    counter(b, "bitween_xmpp_disconnects_total", "XMPP connections lost or closed.",
            L(cs->xmpp_disconnects));
    histogram(b, "bitween_agent_request_duration_seconds",
              "Agent requests that reached the registry, from the request's arrival to its "
              "answer (queueing, database work and commit).",
              &cs->request_time);
    histogram(b, "bitween_agent_request_database_seconds",
              "Database part of those requests: state load when not cached, the write and "
              "its commit.",
              &cs->database_time);
    histogram(b, "bitween_publish_duration_seconds",
              "Merged-item publishes answered by the server, from sending the privileged IQ "
              "to the server's reply.",
              &cs->publish_time);
    gauge(b, "bitween_xmpp_up", "1 when the XMPP connection is authenticated.",
          atomic_load(&cs->xmpp_up) ? 1 : 0);
    gauge(b, "bitween_xmpp_publish_allowed",
          "1 when the server grants the pubsub iq privilege on every served domain.",
          atomic_load(&cs->publish_allowed) ? 1 : 0);
}

static void api_metrics(api_buf_t *b, api_t *api)
{
    const api_route_t *routes;
    size_t n = api_routes(&routes), r, k;
    char labels[160];
    uint64_t counts[HIST_BUCKETS + 1];

    api_prom_family(b, "bitween_api_request_duration_seconds", "histogram",
                    "Admin API request latency by route, from the request line to the end "
                    "of the response.");
    for (r = 0; r <= n; r++) {
        double sum = hist_read(&api->hist[r < n ? r : API_MAX_ROUTES], counts);
        api_buf_t lb = {0};
        api_buf_add(&lb, "method=\"", 8);
        api_prom_escape(&lb, r < n ? routes[r].method : "");
        api_buf_add(&lb, "\",route=\"", 9);
        api_prom_escape(&lb, r < n ? routes[r].pattern : "unmatched");
        api_buf_add(&lb, "\"", 1);
        if (lb.oom)
            b->oom = 1;
        else
            api_prom_histogram(b, "bitween_api_request_duration_seconds", lb.p, hist_bounds, counts,
                               HIST_BUCKETS, sum);
        api_buf_free(&lb);
    }
    api_prom_family(b, "bitween_api_responses_total", "counter",
                    "Admin API responses by HTTP status.");
    for (k = 0; k < API_CODE_SLOTS; k++) {
        if (k < API_CODE_SLOTS - 1)
            snprintf(labels, sizeof labels, "code=\"%u\"", api_counted_codes[k]);
        else
            snprintf(labels, sizeof labels, "code=\"other\"");
        api_prom_sample_u64(b, "bitween_api_responses_total", labels, L(api->responses[k]));
    }
    gauge(b, "bitween_api_connections", "Admin API connections open now.",
          (double)atomic_load(&api->connections));
    counter(b, "bitween_api_connections_refused_total",
            "Admin API connections refused at api_max_connections_per_client or "
            "api_max_connections.",
            L(api->connections_refused));
}

void api_h_metrics(api_req_t *req)
{
    api_t *api = req->api;
    api_buf_t b = {0};
    store_stats_t s;
    double age, as_of;
    size_t len;
    char *text;

    if (api->comp) {
        statecache_stats_t cc;
        unsigned w, nw = component_db_workers(api->comp);
        component_metrics(&b, component_stats(api->comp));
        api_prom_family(&b, "bitween_db_queue_jobs", "gauge",
                        "Database jobs queued for or running in each worker.");
        for (w = 0; w < nw; w++) {
            char lb[32];
            snprintf(lb, sizeof lb, "worker=\"%u\"", w);
            api_prom_sample_u64(&b, "bitween_db_queue_jobs", lb,
                                (uint64_t)component_db_queue(api->comp, w));
        }
        component_cache_stats(api->comp, &cc);
        api_prom_family(&b, "bitween_state_cache_lookups_total", "counter",
                        "Look-ups of a user's merged state by agent requests (hit: no database "
                        "load needed).");
        api_prom_sample_u64(&b, "bitween_state_cache_lookups_total", "result=\"hit\"", cc.hits);
        api_prom_sample_u64(&b, "bitween_state_cache_lookups_total", "result=\"miss\"", cc.misses);
        counter(&b, "bitween_state_cache_evictions_total",
                "Merged states dropped from the cache to stay within state_cache_mb.",
                cc.evictions);
        gauge(&b, "bitween_state_cache_users", "Users whose merged state is cached.",
              (double)cc.entries);
        gauge(&b, "bitween_state_cache_bytes", "Approximate memory held by the state cache.",
              (double)cc.bytes);
    }
    gauge(&b, "bitween_database_up",
          "1 when the last database call of the API (checked every few seconds) succeeded.",
          atomic_load(&api->db_up) == 1 ? 1 : 0);
    if (api_counts_get(api, NULL, &s, &age, &as_of, NULL) == STORE_OK) {
        gauge(&b, "bitween_users", "Users with at least one registered resource (cached).",
              (double)s.users);
        gauge(&b, "bitween_resources", "Registered resources (cached).", (double)s.resources);
        gauge(&b, "bitween_shares", "Registered shares (cached).", (double)s.shares);
        gauge(&b, "bitween_addresses", "Registered addresses (cached).", (double)s.addresses);
        gauge(&b, "bitween_distinct_hashes", "Distinct shared hashes (cached).",
              (double)s.distinct_hashes);
        gauge(&b, "bitween_registry_counts_age_seconds", "Age of the cached registry counts above.",
              age);
    }
    api_metrics(&b, api);
    gauge(&b, "bitween_uptime_seconds", "Seconds since the process started serving.",
          (double)(api_now_ms() - api->started_ms) / 1000.0);
    gauge(&b, "bitween_start_time_seconds", "Start time since the Unix epoch.", api->started_wall);
    api_prom_family(&b, "bitween_build_info", "gauge", "Version of bitween-component.");
    api_prom_sample(&b, "bitween_build_info", "version=\"" BITWEEN_VERSION "\"", 1);
    text = api_buf_take(&b, &len);
    if (!text) {
        api_reply_error(req, 500, "internal_error", "out of memory");
        return;
    }
    api_reply_text(req, 200, CONTENT_TYPE, text, len);
}
