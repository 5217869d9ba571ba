/* SPDX-License-Identifier: MIT */
/*
 * The API's two background threads. The refresh thread, on its own
 * database connection, recomputes the registry counts every stats_ttl_s
 * (count(DISTINCT ...) over a large registry takes a good part of a second,
 * far too slow for a scrape) and pings the database every few seconds for
 * the bitween_database_up gauge. The timer thread answers suspended command
 * requests whose deadline passed (504); it never touches the database, so
 * a slow query cannot delay a timeout.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include "api_private.h"

#define PING_INTERVAL_MS     5000u
#define FIRST_COUNT_DELAY_MS 2000u

void api_note_db(api_t *api, int rc)
{
    if (rc == STORE_OK)
        atomic_store(&api->db_up, 1);
    else if (rc == STORE_EUNAVAIL)
        atomic_store(&api->db_up, 0);
}

static double wall_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void counts_store(api_t *api, const store_stats_t *s)
{
    pthread_mutex_lock(&api->counts_mu);
    api->counts = *s;
    api->have_counts = 1;
    api->counts_ms = api_now_ms();
    api->counts_wall = wall_now();
    pthread_mutex_unlock(&api->counts_mu);
}

int api_counts_get(api_t *api, store_t *st, store_stats_t *out, double *age_s, double *as_of,
                   store_error_t *err)
{
    uint64_t now = api_now_ms(), max_age = 2000u * api->s.stats_ttl_s;
    int rc;

    pthread_mutex_lock(&api->counts_mu);
    if (api->have_counts && (!st || now - api->counts_ms <= max_age)) {
        *out = api->counts;
        *age_s = (double)(now - api->counts_ms) / 1000.0;
        *as_of = api->counts_wall;
        pthread_mutex_unlock(&api->counts_mu);
        return STORE_OK;
    }
    pthread_mutex_unlock(&api->counts_mu);
    if (!st) {
        if (err) {
            err->code = STORE_EUNAVAIL;
            snprintf(err->message, sizeof err->message, "no counts yet");
        }
        return STORE_EUNAVAIL;
    }
    rc = store_stats(st, out, err);
    api_note_db(api, rc);
    if (rc != STORE_OK)
        return rc;
    counts_store(api, out);
    *age_s = 0;
    *as_of = wall_now();
    return STORE_OK;
}

/* Registry counts and database pings; sleeps on refresh_cond. */
static void *refresh_main(void *arg)
{
    api_t *api = arg;
    /* The first count a little later: at start-up the component is
     * still applying the migrations. */
    uint64_t next_ping = 0, next_counts = api_now_ms() + FIRST_COUNT_DELAY_MS;
    int was_up = -1;

    pthread_mutex_lock(&api->refresh_mu);
    while (!api->bg_stop) {
        uint64_t now = api_now_ms(), wake;
        struct timespec ts;

        if (now >= next_counts || now >= next_ping) {
            store_stats_t s;
            store_error_t err;
            int rc, counting = now >= next_counts;
            pthread_mutex_unlock(&api->refresh_mu);
            rc = counting ? store_stats(api->bg_store, &s, &err) : store_ping(api->bg_store, &err);
            api_note_db(api, rc);
            if (rc == STORE_OK && counting)
                counts_store(api, &s);
            if (rc != STORE_OK && was_up != 0)
                LOG_WARN(api->log, API_SUB, "database check failed: %s", err.message);
            else if (rc == STORE_OK && was_up == 0)
                LOG_INFO(api->log, API_SUB, "database reachable again");
            was_up = rc == STORE_OK;
            now = api_now_ms();
            next_ping = now + PING_INTERVAL_MS;
            if (counting)
                next_counts = now + (rc == STORE_OK ? 1000u * (uint64_t)api->s.stats_ttl_s
                                                    : PING_INTERVAL_MS);
            pthread_mutex_lock(&api->refresh_mu);
            continue; /* re-check the stop flag */
        }
        wake = next_ping < next_counts ? next_ping : next_counts;
        ts.tv_sec = (time_t)(wake / 1000u); /* the condition uses CLOCK_MONOTONIC */
        ts.tv_nsec = (long)(wake % 1000u) * 1000000L;
        pthread_cond_timedwait(&api->refresh_cond, &api->refresh_mu, &ts);
    }
    pthread_mutex_unlock(&api->refresh_mu);
    return NULL;
}

/* Deadlines of suspended command requests; sleeps on wait_cond. */
static void *timer_main(void *arg)
{
    api_t *api = arg;

    pthread_mutex_lock(&api->wait_mu);
    while (!api->timer_stop) {
        uint64_t wake = api_waiters_expire(api, api_now_ms());
        if (wake == UINT64_MAX) {
            pthread_cond_wait(&api->wait_cond, &api->wait_mu);
        } else {
            struct timespec ts;
            ts.tv_sec = (time_t)(wake / 1000u);
            ts.tv_nsec = (long)(wake % 1000u) * 1000000L;
            pthread_cond_timedwait(&api->wait_cond, &api->wait_mu, &ts);
        }
    }
    pthread_mutex_unlock(&api->wait_mu);
    return NULL;
}

int api_bg_start(api_t *api)
{
    if (pthread_create(&api->refresh_thread, NULL, refresh_main, api) != 0)
        return -1;
    api->refresh_started = 1;
    if (pthread_create(&api->timer_thread, NULL, timer_main, api) != 0)
        return -1;
    api->timer_started = 1;
    return 0;
}

void api_bg_stop(api_t *api)
{
    if (api->timer_started) {
        pthread_mutex_lock(&api->wait_mu);
        api->timer_stop = 1;
        pthread_cond_broadcast(&api->wait_cond);
        pthread_mutex_unlock(&api->wait_mu);
        pthread_join(api->timer_thread, NULL);
        api->timer_started = 0;
    }
    if (api->refresh_started) {
        pthread_mutex_lock(&api->refresh_mu);
        api->bg_stop = 1;
        pthread_cond_broadcast(&api->refresh_cond);
        pthread_mutex_unlock(&api->refresh_mu);
        pthread_join(api->refresh_thread, NULL);
        api->refresh_started = 0;
    }
}
