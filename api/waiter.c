/* SPDX-License-Identifier: MIT */
/*
 * Hand-over between an HTTP request waiting for a command (evict,
 * republish) and the component's XMPP thread that runs it. The request's
 * connection is suspended (libmicrohttpd keeps it aside, no worker thread
 * blocks) and a waiter, shared by reference count between the request and
 * the command's completion, records the outcome. Whoever finishes the
 * waiter first — the completion, the background thread at the deadline,
 * or api_free() — resumes the connection, under the waiter's lock; the
 * others find it finished and do nothing. The completion touches only the
 * waiter, never the API, so one that arrives after a timeout or after
 * api_free() is harmless.
 *
 * Lock order: api->wait_mu, then a waiter's mu, then libmicrohttpd's own.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <microhttpd.h>

#include "api_private.h"

api_waiter_t *api_waiter_new(void)
{
    api_waiter_t *w = calloc(1, sizeof *w);
    if (!w)
        return NULL;
    if (pthread_mutex_init(&w->mu, NULL) != 0) {
        free(w);
        return NULL;
    }
    w->refs = 1;
    w->outcome = API_WAIT_PENDING;
    return w;
}

void api_waiter_ref(api_waiter_t *w)
{
    pthread_mutex_lock(&w->mu);
    w->refs++;
    pthread_mutex_unlock(&w->mu);
}

void api_waiter_unref(api_waiter_t *w)
{
    unsigned left;
    if (!w)
        return;
    pthread_mutex_lock(&w->mu);
    left = --w->refs;
    pthread_mutex_unlock(&w->mu);
    if (left == 0) {
        pthread_mutex_destroy(&w->mu);
        free(w);
    }
}

int api_waiter_finish(api_waiter_t *w, api_wait_outcome_t outcome,
                      const component_cmd_result_t *res)
{
    int decided = 0;
    pthread_mutex_lock(&w->mu);
    if (w->outcome == API_WAIT_PENDING) {
        w->outcome = outcome;
        if (res)
            w->res = *res;
        decided = 1;
        if (w->conn) {
            /* Under the lock: api_free() cannot stop the daemon before a
             * resume that already started has returned. */
            MHD_resume_connection(w->conn);
            w->conn = NULL;
        }
    }
    pthread_mutex_unlock(&w->mu);
    return decided;
}

void api_waiter_done(const component_cmd_result_t *res, void *arg)
{
    api_waiter_t *w = arg;
    api_waiter_finish(w, API_WAIT_DONE, res);
    api_waiter_unref(w);
}

static void list_remove(api_t *api, api_waiter_t *w)
{
    if (!w->listed)
        return;
    if (w->prev)
        w->prev->next = w->next;
    else
        api->waiters = w->next;
    if (w->next)
        w->next->prev = w->prev;
    w->prev = w->next = NULL;
    w->listed = 0;
    pthread_cond_broadcast(&api->wait_cond);
}

int api_req_suspend(api_req_t *req, api_waiter_t *w, unsigned timeout_ms)
{
    api_t *api = req->api;

    pthread_mutex_lock(&api->wait_mu);
    if (api->closing) {
        pthread_mutex_unlock(&api->wait_mu);
        return -1;
    }
    /* Suspend before the command can complete: resuming a connection
     * that is not suspended is undefined. */
    pthread_mutex_lock(&w->mu);
    w->conn = req->conn;
    w->deadline_ms = api_now_ms() + timeout_ms;
    MHD_suspend_connection(req->conn);
    pthread_mutex_unlock(&w->mu);
    w->next = api->waiters;
    w->prev = NULL;
    if (api->waiters)
        api->waiters->prev = w;
    api->waiters = w;
    w->listed = 1;
    req->waiter = w;
    pthread_cond_broadcast(&api->wait_cond); /* a new deadline */
    pthread_mutex_unlock(&api->wait_mu);
    return 0;
}

void api_req_release_waiter(api_req_t *req)
{
    api_waiter_t *w = req->waiter;
    if (!w)
        return;
    pthread_mutex_lock(&req->api->wait_mu);
    list_remove(req->api, w);
    pthread_mutex_unlock(&req->api->wait_mu);
    /* The connection is going away: nobody may resume it any more. */
    pthread_mutex_lock(&w->mu);
    w->conn = NULL;
    if (w->outcome == API_WAIT_PENDING)
        w->outcome = API_WAIT_SHUTDOWN;
    pthread_mutex_unlock(&w->mu);
    req->waiter = NULL;
    api_waiter_unref(w);
}

uint64_t api_waiters_expire(api_t *api, uint64_t now_ms)
{
    api_waiter_t *w, *next;
    uint64_t earliest = UINT64_MAX;

    for (w = api->waiters; w; w = next) {
        next = w->next;
        if (api->closing) {
            api_waiter_finish(w, API_WAIT_SHUTDOWN, NULL);
        } else if (now_ms >= w->deadline_ms) {
            if (api_waiter_finish(w, API_WAIT_TIMEOUT, NULL))
                LOG_WARN(api->log, API_SUB, "a command did not complete within %u ms",
                         api->s.command_timeout_ms);
        } else {
            pthread_mutex_lock(&w->mu);
            if (w->outcome == API_WAIT_PENDING && w->deadline_ms < earliest)
                earliest = w->deadline_ms;
            pthread_mutex_unlock(&w->mu);
        }
    }
    return earliest;
}
