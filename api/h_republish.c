/* SPDX-License-Identifier: MIT */
/*
 * POST /api/v1/users/{jid}/republish: publish the user's current merged
 * item even when unchanged (run by the component's XMPP thread; the
 * request waits like an eviction). A user the registry never saw (no
 * resource and no publish record) is 404: publishing would create a PEP
 * node for someone who does not use bitween.
 */
#include "api_private.h"

void api_h_republish(api_req_t *req)
{
    const char *jid;
    store_resources_t res = {0};
    store_publish_t pub;
    store_error_t err;
    store_t *st;
    int rc;

    if (req->waiter) {
        api_command_reply(req, "republished");
        return;
    }
    if (!(jid = api_param_jid(req, 0)) || !(st = api_store(req)))
        return;
    rc = store_resources_list(st, jid, NULL, NULL, 1, &res, &err);
    if (rc == STORE_OK && res.n == 0) {
        rc = store_publish_get(st, jid, &pub, &err);
        if (rc == STORE_ENOTFOUND) {
            api_note_db(req->api, STORE_OK);
            store_resources_free(&res);
            api_reply_error(req, 404, "user_not_found",
                            "this user has no registered resource and was never published");
            return;
        }
    }
    store_resources_free(&res);
    if (rc != STORE_OK) {
        api_reply_store_error(req, rc, &err);
        return;
    }
    api_note_db(req->api, rc);
    api_command_start(req, jid, NULL);
}
