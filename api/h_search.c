/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/search?q=&limit=&cursor=: shares whose name contains `q`
 * (case-insensitive substring; LIKE wildcards match literally), ordered
 * by name, with keyset pagination (opaque cursor: name, resource id and
 * hash of the last hit). `q` takes 3 to 255 bytes: shorter needles cannot
 * use the trigram index and would scan every share.
 */
#include <stdlib.h>
#include <string.h>

#include "api_private.h"

#define Q_MIN_CHARS 3
#define Q_MAX_BYTES 255

void api_h_search(api_req_t *req)
{
    store_hits_t hits = {0};
    store_error_t err;
    store_search_cursor_t after = {0};
    api_search_cursor_t cur = {0};
    size_t limit, i, n, qlen;
    const char *q, *cursor;
    char *next = NULL;
    json_t *arr = NULL;
    store_t *st;
    int rc;

    q = api_query(req, "q", &qlen);
    if (!q || qlen == 0) {
        api_reply_error(req, 400, "bad_query", "the search text q is required");
        return;
    }
    if (qlen > Q_MAX_BYTES || !api_text_ok(q, qlen)) {
        api_reply_error(req, 400, "bad_query",
                        "q must be UTF-8 text of at most %d bytes without control characters",
                        Q_MAX_BYTES);
        return;
    }
    if (api_utf8_chars(q, qlen) < Q_MIN_CHARS) {
        api_reply_error(req, 400, "query_too_short",
                        "q must have at least %d characters (shorter ones cannot use the index)",
                        Q_MIN_CHARS);
        return;
    }
    if (api_query_limit(req, 100, 1000, &limit) != 0)
        return;
    cursor = api_query(req, "cursor", NULL);
    if (cursor && *cursor) {
        rc = api_cursor_search_decode(cursor, &cur);
        if (rc) {
            api_reply_cursor_error(req, rc);
            return;
        }
        after.name = cur.name;
        after.resource_id = cur.resource_id;
        after.hash = cur.hash;
    }
    if (!(st = api_store(req)))
        goto out;
    rc = store_name_search(st, q, cur.name ? &after : NULL, limit + 1, &hits, &err);
    if (rc != STORE_OK) {
        api_reply_store_error(req, rc, &err);
        goto out;
    }
    api_note_db(req->api, rc);
    n = hits.n > limit ? limit : hits.n;
    if (hits.n > limit && !(next = api_cursor_search_encode(
                                hits.v[n - 1].name, hits.v[n - 1].resource_id, hits.v[n - 1].hash)))
        goto oom;
    if (!(arr = json_array()))
        goto oom;
    for (i = 0; i < n; i++)
        if (json_array_append_new(arr, api_json_hit(&hits.v[i], 1)))
            goto oom;
    api_reply_json(
        req, 200,
        json_pack("{s:s%,s:o,s:s?}", "query", q, qlen, "results", arr, "next_cursor", next));
    arr = NULL;
    goto out;
oom:
    json_decref(arr);
    api_reply_error(req, 500, "internal_error", "out of memory");
out:
    store_hits_free(&hits);
    api_search_cursor_clear(&cur);
    free(next);
}
