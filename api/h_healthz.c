/* SPDX-License-Identifier: MIT */
/* GET /healthz: the process is alive and serving HTTP (no token, no I/O). */
#include "api_private.h"

void api_h_healthz(api_req_t *req)
{
    api_reply_json(req, 200, json_pack("{s:s}", "status", "ok"));
}
