/* SPDX-License-Identifier: MIT */
/*
 * JSON views shared by several handlers (a share holder with its
 * addresses) and the command hand-over used by evict and republish:
 * suspend the request, queue the command to the component, and turn the
 * outcome into a reply once the connection is resumed.
 */
#include <stdio.h>
#include <string.h>

#include "api_private.h"

json_t *api_json_addresses(const store_address_t *a, size_t n)
{
    json_t *arr = json_array();
    size_t i;
    for (i = 0; arr && i < n; i++) {
        if (json_array_append_new(arr, json_pack("{s:s,s:i}", "address", a[i].address, "port",
                                                 (int)a[i].port)) != 0) {
            json_decref(arr);
            return NULL;
        }
    }
    return arr;
}

json_t *api_json_hit(const store_hit_t *h, int with_hash)
{
    json_t *o = json_pack("{s:s,s:s,s:s,s:I,s:o}", "jid", h->jid, "resource", h->resource, "name",
                          h->name, "size", (json_int_t)h->size, "addresses",
                          api_json_addresses(h->addresses, h->n_addresses));
    if (o && with_hash && json_object_set_new(o, "hash", json_string(h->hash)) != 0) {
        json_decref(o);
        return NULL;
    }
    return o;
}

void api_command_start(api_req_t *req, const char *jid, const char *resource)
{
    api_t *api = req->api;
    api_waiter_t *w;
    int rc;

    if (!api->comp || component_stopping(api->comp)) {
        api_reply_error(req, 503, "unavailable", "the component is stopping");
        return;
    }
    w = api_waiter_new();
    if (!w) {
        api_reply_error(req, 500, "internal_error", "out of memory");
        return;
    }
    if (api_req_suspend(req, w, api->s.command_timeout_ms) != 0) {
        api_waiter_unref(w);
        api_reply_error(req, 503, "unavailable", "the API is stopping");
        return;
    }
    /* The command's reference, taken before it can complete. */
    api_waiter_ref(w);
    rc = resource ? component_evict(api->comp, jid, resource, api_waiter_done, w)
                  : component_republish(api->comp, jid, api_waiter_done, w);
    if (rc != 0) {
        component_cmd_result_t res = {0};
        res.status = COMPONENT_CMD_UNAVAILABLE;
        snprintf(res.message, sizeof res.message, "the component is stopping (or out of memory)");
        api_waiter_unref(w); /* `done` will never run */
        api_waiter_finish(w, API_WAIT_DONE, &res);
    }
    /* The reply comes when the connection is resumed: api_command_reply(). */
}

void api_command_reply(api_req_t *req, const char *done_key)
{
    api_waiter_t *w = req->waiter;
    api_wait_outcome_t outcome;
    component_cmd_result_t res;

    pthread_mutex_lock(&w->mu);
    outcome = w->outcome;
    res = w->res;
    pthread_mutex_unlock(&w->mu);
    res.message[sizeof res.message - 1] = '\0';
    switch (outcome) {
    case API_WAIT_TIMEOUT:
        api_reply_error(req, 504, "timeout",
                        "the component did not complete the command within %u ms (it may "
                        "still complete)",
                        req->api->s.command_timeout_ms);
        return;
    case API_WAIT_SHUTDOWN:
    case API_WAIT_PENDING:
        api_reply_error(req, 503, "unavailable", "the API is stopping");
        return;
    case API_WAIT_DONE:
        break;
    }
    switch (res.status) {
    case COMPONENT_CMD_OK:
        api_reply_json(req, 200,
                       json_pack("{s:b,s:b,s:s}", done_key, 1, "published", res.published,
                                 "message", res.message));
        break;
    case COMPONENT_CMD_NOT_FOUND:
        api_reply_error(req, 404, "resource_not_found", "%s", res.message);
        break;
    case COMPONENT_CMD_UNAVAILABLE:
        api_reply_error(req, 503, "unavailable", "%s", res.message);
        break;
    default:
        api_reply_error(req, 500, "command_failed", "%s", res.message);
    }
}
