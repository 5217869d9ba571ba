/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/shares/{hash}?limit=: who shares this info-hash (40 or 64
 * hex digits, any case): user, resource, name, size and the resource's
 * addresses, ordered by user and resource. No holder is 200 with an empty
 * list (the hash is well-formed, nobody shares it now); more than `limit`
 * holders sets "truncated".
 */
#include <ctype.h>
#include <string.h>

#include "api_private.h"
#include "shares.h"

void api_h_share(api_req_t *req)
{
    store_hits_t hits = {0};
    store_error_t err;
    shares_error_t serr;
    char hash[SHARES_HASH_MAX];
    size_t limit, i, n;
    json_t *arr = NULL;
    store_t *st;
    int rc;

    if (req->n_params < 1 || strlen(req->params[0]) >= sizeof hash ||
        shares_validate_hash(req->params[0], &serr) != SHARES_OK) {
        api_reply_error(req, 400, "bad_hash", "a hash is 40 or 64 hexadecimal digits");
        return;
    }
    for (i = 0; req->params[0][i]; i++)
        hash[i] = (char)tolower((unsigned char)req->params[0][i]);
    hash[i] = '\0';
    if (api_query_limit(req, 100, 1000, &limit) != 0 || !(st = api_store(req)))
        return;
    rc = store_hash_lookup(st, hash, limit + 1, &hits, &err);
    if (rc != STORE_OK) {
        api_reply_store_error(req, rc, &err);
        return;
    }
    api_note_db(req->api, rc);
    n = hits.n > limit ? limit : hits.n;
    if (!(arr = json_array()))
        goto oom;
    for (i = 0; i < n; i++)
        if (json_array_append_new(arr, api_json_hit(&hits.v[i], 0)))
            goto oom;
    api_reply_json(
        req, 200,
        json_pack("{s:s,s:o,s:b}", "hash", hash, "holders", arr, "truncated", hits.n > limit));
    store_hits_free(&hits);
    return;
oom:
    json_decref(arr);
    store_hits_free(&hits);
    api_reply_error(req, 500, "internal_error", "out of memory");
}
