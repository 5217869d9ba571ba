/* SPDX-License-Identifier: MIT */
/*
 * GET /readyz: ready to serve when the database answers (a round trip on
 * this thread's connection) and the XMPP connection is authenticated;
 * otherwise 503 not_ready naming the first reason. No token.
 */
#include "api_private.h"

void api_h_readyz(api_req_t *req)
{
    api_t *api = req->api;
    store_t *st = api_store(req);
    store_error_t err;
    int rc;

    if (!st)
        return;
    rc = store_ping(st, &err);
    api_note_db(api, rc);
    if (rc != STORE_OK) {
        api_reply_error(req, 503, "not_ready", "database unreachable: %s", err.message);
        return;
    }
    if (!api->comp || component_stopping(api->comp)) {
        api_reply_error(req, 503, "not_ready", "the component is stopping");
        return;
    }
    if (!atomic_load(&component_stats(api->comp)->xmpp_up)) {
        api_reply_error(req, 503, "not_ready", "XMPP connection not authenticated");
        return;
    }
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ready"));
}
