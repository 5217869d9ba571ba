/* SPDX-License-Identifier: MIT */
/*
 * DELETE /api/v1/users/{jid}/resources/{resource}: evict one resource.
 * The component's XMPP thread removes it from the database and republishes
 * the user; the request waits (suspended, no thread blocked) until that is
 * done: 200 {"evicted":true,"published":…}, 404 when not registered, 503
 * when the database is away or the component stops, 504 after
 * api_timeout_ms.
 */
#include "api_private.h"
#include "shares.h"

void api_h_evict(api_req_t *req)
{
    const char *jid;
    shares_error_t serr;

    if (req->waiter) {
        api_command_reply(req, "evicted");
        return;
    }
    if (!(jid = api_param_jid(req, 0)))
        return;
    if (req->n_params < 2 ||
        shares_validate_resource(req->params[1], SHARES_DEFAULT_MAX_RESOURCE_BYTES, &serr) !=
            SHARES_OK) {
        api_reply_error(req, 400, "bad_resource", "%s",
                        req->n_params < 2 ? "no resource" : serr.message);
        return;
    }
    api_command_start(req, jid, req->params[1]);
}
