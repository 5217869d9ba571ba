/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/users?limit=&cursor=: users with at least one registered
 * resource, ordered by JID, with their resource and share counts; keyset
 * pagination with an opaque cursor (the last JID of the page).
 */
#include <stdlib.h>

#include "api_private.h"

void api_h_users(api_req_t *req)
{
    store_users_t users = {0};
    store_error_t err;
    size_t limit, i, n;
    const char *cursor;
    char *after = NULL, *next = NULL;
    json_t *arr = NULL;
    store_t *st;
    int rc;

    if (api_query_limit(req, 100, 1000, &limit) != 0)
        return;
    cursor = api_query(req, "cursor", NULL);
    if (cursor && *cursor) {
        rc = api_cursor_users_decode(cursor, &after);
        if (rc) {
            api_reply_cursor_error(req, rc);
            return;
        }
    }
    if (!(st = api_store(req)))
        goto out;
    /* One more than asked: there is a next page only if it exists. */
    rc = store_users_list(st, after, limit + 1, &users, &err);
    if (rc != STORE_OK) {
        api_reply_store_error(req, rc, &err);
        goto out;
    }
    api_note_db(req->api, rc);
    n = users.n > limit ? limit : users.n;
    if (users.n > limit && !(next = api_cursor_users_encode(users.v[n - 1].jid)))
        goto oom;
    if (!(arr = json_array()))
        goto oom;
    for (i = 0; i < n; i++) {
        if (json_array_append_new(arr, json_pack("{s:s,s:I,s:I}", "jid", users.v[i].jid,
                                                 "resources", (json_int_t)users.v[i].n_resources,
                                                 "shares", (json_int_t)users.v[i].n_shares)))
            goto oom;
    }
    api_reply_json(req, 200, json_pack("{s:o,s:s?}", "users", arr, "next_cursor", next));
    arr = NULL;
    goto out;
oom:
    json_decref(arr);
    api_reply_error(req, 500, "internal_error", "out of memory");
out:
    store_users_free(&users);
    free(after);
    free(next);
}
