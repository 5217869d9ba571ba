/* SPDX-License-Identifier: MIT */
/*
 * Merged state after one agent request (see merge.h): every resource is
 * copied into a new item; the request's resource is replaced, extended or
 * reduced on the way.
 */
#include "merge.h"

#include <stdlib.h>
#include <string.h>

/* Map a shares error while building the candidate. */
static int merge_fail(agent_error_t *err, int code, const char *what, const char *msg)
{
    if (code == SHARES_ELIMIT)
        return agent_error_set(err, AGENT_ERR_POLICY, "%s", msg);
    if (code == SHARES_ENOMEM)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");
    return agent_error_set(err, AGENT_ERR_INTERNAL, "stored state invalid (%s): %s", what, msg);
}

static int copy_share(shares_item_t *dst, size_t ri, const shares_share_t *sh, agent_error_t *err)
{
    shares_error_t serr;
    int rc = shares_item_add_share(dst, ri, sh->hash, sh->name, sh->size, &serr);
    return rc ? merge_fail(err, rc, "share", serr.message) : 0;
}

static int copy_addresses(shares_item_t *dst, size_t di, const shares_item_t *src, size_t si,
                          agent_error_t *err)
{
    size_t i, n = shares_item_address_count(src, si);
    shares_address_t ad;
    shares_error_t serr;
    for (i = 0; i < n; i++) {
        int rc;
        shares_item_address(src, si, i, &ad);
        rc = shares_item_add_address(dst, di, ad.address, ad.port, &serr);
        if (rc)
            return merge_fail(err, rc, "address", serr.message);
    }
    return 0;
}

static int in_hashes(const agent_request_t *req, const char *hash)
{
    size_t i;
    for (i = 0; i < req->n_hashes; i++)
        if (strcmp(req->hashes[i], hash) == 0)
            return 1;
    return 0;
}

/* Index of share `hash` in resource `ri` of `item`, or -1. */
static long find_share(const shares_item_t *item, size_t ri, const char *hash)
{
    size_t i, n = shares_item_share_count(item, ri);
    shares_share_t sh;
    for (i = 0; i < n; i++) {
        shares_item_share(item, ri, i, &sh);
        if (strcmp(sh.hash, hash) == 0)
            return (long)i;
    }
    return -1;
}

/* The request's resource in the candidate: what it holds afterwards. */
static int merge_target(shares_item_t *dst, size_t di, const shares_item_t *cur, long ci,
                        const agent_request_t *req, int *changed, agent_error_t *err)
{
    size_t i, n;
    shares_share_t sh, old;
    long k;

    if (req->op == AGENT_OP_REGISTER) {
        n = shares_item_share_count(req->item, 0);
        for (i = 0; i < n; i++) {
            shares_item_share(req->item, 0, i, &sh);
            if (copy_share(dst, di, &sh, err))
                return -1;
        }
        *changed = 1; /* merge_apply() compares digests afterwards */
        return copy_addresses(dst, di, req->item, 0, err);
    }
    /* add / remove: start from the stored resource */
    n = shares_item_share_count(cur, (size_t)ci);
    for (i = 0; i < n; i++) {
        shares_item_share(cur, (size_t)ci, i, &old);
        if (req->op == AGENT_OP_REMOVE && in_hashes(req, old.hash)) {
            *changed = 1;
            continue;
        }
        if (req->op == AGENT_OP_ADD && (k = find_share(req->item, 0, old.hash)) >= 0) {
            shares_item_share(req->item, 0, (size_t)k, &sh);
            if (strcmp(sh.name, old.name) != 0 || sh.size != old.size)
                *changed = 1;
            if (copy_share(dst, di, &sh, err))
                return -1;
            continue;
        }
        if (copy_share(dst, di, &old, err))
            return -1;
    }
    if (req->op == AGENT_OP_ADD) {
        n = shares_item_share_count(req->item, 0);
        for (i = 0; i < n; i++) {
            shares_item_share(req->item, 0, i, &sh);
            if (find_share(cur, (size_t)ci, sh.hash) >= 0)
                continue;
            *changed = 1;
            if (copy_share(dst, di, &sh, err))
                return -1;
        }
    }
    return copy_addresses(dst, di, cur, (size_t)ci, err);
}

int merge_apply(const shares_item_t *current, const agent_request_t *req,
                const shares_limits_t *lim, shares_item_t **out, int *changed_out,
                agent_error_t *err)
{
    shares_limits_t cand_lim;
    shares_item_t *dst = NULL;
    shares_error_t serr;
    size_t i, n = shares_item_resource_count(current), di;
    long ci = -1;
    int changed = 0, rc;
    int grows = req->op == AGENT_OP_REGISTER || req->op == AGENT_OP_ADD;

    *out = NULL;
    for (i = 0; i < n; i++)
        if (strcmp(shares_item_resource(current, i), req->resource) == 0)
            ci = (long)i;
    if (ci < 0 && (req->op == AGENT_OP_ADD || req->op == AGENT_OP_REMOVE)) {
        char q[AGENT_QUOTE_MAX];
        return agent_error_set(err, AGENT_ERR_NOT_FOUND,
                               "resource %s is not registered; send register first",
                               agent_quote(q, req->resource));
    }
    if (ci < 0 && req->op == AGENT_OP_REGISTER && lim->max_resources && n + 1 > lim->max_resources)
        return agent_error_set(err, AGENT_ERR_POLICY,
                               "too many resources: %zu registered, at most %zu per user", n,
                               lim->max_resources);

    /* Counts are checked for the touched resource only (below). */
    memset(&cand_lim, 0, sizeof cand_lim);
    cand_lim.max_item_bytes = grows ? lim->max_item_bytes : 0;
    dst = shares_item_new(&cand_lim);
    if (!dst)
        return agent_error_set(err, AGENT_ERR_INTERNAL, "out of memory");

    for (i = 0; i < n; i++) {
        const char *name = shares_item_resource(current, i);
        size_t k, m;
        shares_share_t sh;
        if ((long)i == ci && req->op == AGENT_OP_UNREGISTER) {
            changed = 1;
            continue;
        }
        rc = shares_item_add_resource(dst, name, &di, &serr);
        if (rc) {
            merge_fail(err, rc, "resource", serr.message);
            goto fail;
        }
        if ((long)i == ci) {
            if (merge_target(dst, di, current, ci, req, &changed, err))
                goto fail;
            continue;
        }
        m = shares_item_share_count(current, i);
        for (k = 0; k < m; k++) {
            shares_item_share(current, i, k, &sh);
            if (copy_share(dst, di, &sh, err))
                goto fail;
        }
        if (copy_addresses(dst, di, current, i, err))
            goto fail;
    }
    if (ci < 0 && req->op == AGENT_OP_REGISTER) {
        rc = shares_item_add_resource(dst, req->resource, &di, &serr);
        if (rc) {
            merge_fail(err, rc, "resource", serr.message);
            goto fail;
        }
        if (merge_target(dst, di, current, ci, req, &changed, err))
            goto fail;
    }
    if (grows) {
        size_t target = 0, shares_n, addrs_n;
        for (i = 0; i < shares_item_resource_count(dst); i++)
            if (strcmp(shares_item_resource(dst, i), req->resource) == 0)
                target = i;
        shares_n = shares_item_share_count(dst, target);
        addrs_n = shares_item_address_count(dst, target);
        if (lim->max_shares && shares_n > lim->max_shares) {
            agent_error_set(err, AGENT_ERR_POLICY,
                            "too many shares: the resource would hold %zu, at most %zu", shares_n,
                            lim->max_shares);
            goto fail;
        }
        if (lim->max_addresses && addrs_n > lim->max_addresses) {
            agent_error_set(err, AGENT_ERR_POLICY,
                            "too many addresses: %zu, at most %zu per resource", addrs_n,
                            lim->max_addresses);
            goto fail;
        }
    }
    if (req->op == AGENT_OP_REGISTER && ci >= 0) {
        /* a replaced resource may hold the same state as before: the
         * canonical text (hence the digest) says whether anything changed */
        char before[SHARES_DIGEST_HEX], after[SHARES_DIGEST_HEX];
        if (shares_item_digest(current, before, NULL) == SHARES_OK &&
            shares_item_digest(dst, after, NULL) == SHARES_OK)
            changed = strcmp(before, after) != 0;
    }
    if (changed_out)
        *changed_out = changed;
    *out = dst;
    return 0;

fail:
    shares_item_free(dst);
    return -1;
}
