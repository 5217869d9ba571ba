/* SPDX-License-Identifier: MIT */
/*
 * GET /api/v1/users/{jid}: one user's registered resources (sequence
 * number, times, addresses, shares) and the last publish record; 404 when
 * the user has no registered resource.
 */
#include <string.h>

#include "api_private.h"

/* Page size of the resource listing (a user has few resources). */
#define RESOURCES_PAGE 1000

static json_t *resource_view(const store_resource_t *r, const shares_item_t *item)
{
    json_t *shares = json_array(), *addrs = json_array();
    size_t ri, n = shares_item_resource_count(item), i;

    if (!shares || !addrs)
        goto fail;
    for (ri = 0; ri < n; ri++)
        if (strcmp(shares_item_resource(item, ri), r->resource) == 0)
            break;
    /* A resource removed between the two reads has no shares left. */
    for (i = 0; ri < n && i < shares_item_share_count(item, ri); i++) {
        shares_share_t sh;
        if (shares_item_share(item, ri, i, &sh) != SHARES_OK ||
            json_array_append_new(shares, json_pack("{s:s,s:s,s:I}", "hash", sh.hash, "name",
                                                    sh.name, "size", (json_int_t)sh.size)))
            goto fail;
    }
    for (i = 0; ri < n && i < shares_item_address_count(item, ri); i++) {
        shares_address_t a;
        if (shares_item_address(item, ri, i, &a) != SHARES_OK ||
            json_array_append_new(
                addrs, json_pack("{s:s,s:i}", "address", a.address, "port", (int)a.port)))
            goto fail;
    }
    return json_pack("{s:s,s:I,s:s,s:s,s:o,s:o}", "resource", r->resource, "seq",
                     (json_int_t)r->seq, "registered_at", r->registered_at, "last_seen",
                     r->last_seen, "addresses", addrs, "shares", shares);
fail:
    json_decref(shares);
    json_decref(addrs);
    return NULL;
}

void api_h_user(api_req_t *req)
{
    const char *jid = api_param_jid(req, 0);
    store_resources_t page = {0};
    shares_item_t *item = NULL;
    store_publish_t pub;
    store_error_t err;
    json_t *list = NULL, *last = NULL;
    char *after = NULL;
    store_t *st;
    size_t i;
    int rc, any = 0;

    if (!jid || !(st = api_store(req)))
        return;
    if ((rc = store_user_load(st, jid, &item, &err)) != STORE_OK)
        goto store_fail;
    if (!(list = json_array()))
        goto oom;
    for (;;) {
        const char *after_res = NULL;
        if (any)
            after_res = page.v[page.n - 1].resource;
        if (after_res) {
            char *dup = strdup(after_res);
            if (!dup)
                goto oom;
            free(after);
            after = dup;
        }
        store_resources_free(&page);
        rc = store_resources_list(st, jid, after ? jid : NULL, after, RESOURCES_PAGE, &page, &err);
        if (rc != STORE_OK)
            goto store_fail;
        for (i = 0; i < page.n; i++)
            if (json_array_append_new(list, resource_view(&page.v[i], item)))
                goto oom;
        any = 1;
        if (page.n < RESOURCES_PAGE)
            break;
    }
    if (json_array_size(list) == 0) {
        api_note_db(req->api, STORE_OK);
        api_reply_error(req, 404, "user_not_found", "no registered resource for this user");
        goto out;
    }
    rc = store_publish_get(st, jid, &pub, &err);
    if (rc == STORE_OK) {
        last = json_pack("{s:s,s:s,s:s?,s:s}", "digest", pub.digest, "status",
                         pub.status == STORE_PUBLISH_OK ? "ok" : "error", "error",
                         pub.status == STORE_PUBLISH_OK ? NULL : pub.error, "published_at",
                         pub.published_at);
        if (!last)
            goto oom;
    } else if (rc != STORE_ENOTFOUND) {
        goto store_fail;
    }
    api_note_db(req->api, STORE_OK);
    api_reply_json(req, 200,
                   json_pack("{s:s,s:o,s:o}", "jid", jid, "resources", list, "last_publish",
                             last ? last : json_null()));
    list = NULL;
    goto out;
store_fail:
    api_reply_store_error(req, rc, &err);
    goto out;
oom:
    api_reply_error(req, 500, "internal_error", "out of memory");
out:
    json_decref(list);
    store_resources_free(&page);
    shares_item_free(item);
    free(after);
}
