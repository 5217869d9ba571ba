/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/merge.c, merge_apply(): the merged state after
 * one agent request, compared as canonical text with an item built by hand.
 * Every branch: register (new, replace, identical), add (insert, upsert,
 * unchanged), remove (known and unknown hashes), unregister (present and
 * absent), add/remove on an unknown resource, and each quota, including
 * limits lowered below what is already stored. Every call checks that
 * `current` is left exactly as it was (its digest) and that `out` is NULL
 * on failure.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "merge.h"

#define H1  "0123456789abcdef0123456789abcdef01234567"
#define H2  "1111111111111111111111111111111111111111"
#define H3  "fedcba9876543210fedcba9876543210fedcba98"
#define H4  "2222222222222222222222222222222222222222"
#define H5  "3333333333333333333333333333333333333333"
#define JID "alice@example.org"

/* ---- building items and requests --------------------------------------- */

static shares_item_t *item_new(void)
{
    shares_limits_t none;
    shares_item_t *item;

    memset(&none, 0, sizeof none);
    item = shares_item_new(&none);
    assert_non_null(item);
    return item;
}

static size_t res(shares_item_t *item, const char *name)
{
    shares_error_t err = {0};
    size_t ri = 0;

    if (shares_item_add_resource(item, name, &ri, &err) != SHARES_OK)
        fail_msg("add_resource %s: %s", name, err.message);
    return ri;
}

static void share(shares_item_t *item, size_t ri, const char *hash, const char *name, uint64_t size)
{
    shares_error_t err = {0};

    if (shares_item_add_share(item, ri, hash, name, size, &err) != SHARES_OK)
        fail_msg("add_share %s: %s", hash, err.message);
}

static void addr(shares_item_t *item, size_t ri, const char *address, unsigned long port)
{
    shares_error_t err = {0};

    if (shares_item_add_address(item, ri, address, port, &err) != SHARES_OK)
        fail_msg("add_address %s: %s", address, err.message);
}

static char *dupstr(const char *s)
{
    char *d = strdup(s);
    assert_non_null(d);
    return d;
}

/* A request from JID/`resource`; register/add carry an item with the one
 * resource, as agent_request_parse() makes them. */
static void req_init(agent_request_t *req, agent_op_t op, const char *resource)
{
    memset(req, 0, sizeof *req);
    req->op = op;
    req->jid = dupstr(JID);
    req->resource = dupstr(resource);
    req->seq = op == AGENT_OP_UNREGISTER ? -1 : 7;
    if (op == AGENT_OP_REGISTER || op == AGENT_OP_ADD) {
        req->item = item_new();
        assert_int_equal(res(req->item, resource), 0);
    }
}

static void req_share(agent_request_t *req, const char *hash, const char *name, uint64_t size)
{
    share(req->item, 0, hash, name, size);
}

static void req_addr(agent_request_t *req, const char *address, unsigned long port)
{
    addr(req->item, 0, address, port);
}

static void req_hash(agent_request_t *req, const char *hash)
{
    char **v = realloc(req->hashes, (req->n_hashes + 1) * sizeof *v);

    assert_non_null(v);
    req->hashes = v;
    req->hashes[req->n_hashes++] = dupstr(hash);
}

static char *text_of(const shares_item_t *item)
{
    shares_error_t err = {0};
    char *buf = NULL;
    size_t len = 0;

    if (shares_item_write(item, &buf, &len, &err) != SHARES_OK)
        fail_msg("write: %s", err.message);
    return buf;
}

static void digest_of(const shares_item_t *item, char hex[SHARES_DIGEST_HEX])
{
    shares_error_t err = {0};

    if (shares_item_digest(item, hex, &err) != SHARES_OK)
        fail_msg("digest: %s", err.message);
}

static void assert_same_item(const shares_item_t *got, const shares_item_t *want)
{
    char *g = text_of(got), *w = text_of(want);

    if (strcmp(g, w) != 0)
        fail_msg("merged state differs\n got: %s\nwant: %s", g, w);
    free(g);
    free(w);
}

static shares_limits_t no_limits(void)
{
    shares_limits_t lim;
    memset(&lim, 0, sizeof lim);
    return lim;
}

/* merge_apply that must succeed; `current` must be left untouched. */
static shares_item_t *apply_ok(const shares_item_t *current, const agent_request_t *req,
                               const shares_limits_t *lim, int *changed)
{
    char before[SHARES_DIGEST_HEX], after[SHARES_DIGEST_HEX];
    agent_error_t err;
    shares_item_t *out = NULL;

    memset(&err, 0, sizeof err);
    digest_of(current, before);
    *changed = -1;
    if (merge_apply(current, req, lim, &out, changed, &err) != 0)
        fail_msg("merge refused (%d): %s", err.code, err.text);
    assert_non_null(out);
    assert_ptr_not_equal(out, current);
    assert_true(*changed == 0 || *changed == 1);
    assert_int_equal(err.code, AGENT_ERR_NONE);
    digest_of(current, after);
    assert_string_equal(before, after);
    return out;
}

/* merge_apply that must fail with `code` and a text containing `needle`. */
static void apply_fails(const shares_item_t *current, const agent_request_t *req,
                        const shares_limits_t *lim, agent_errcode_t code, const char *needle)
{
    char before[SHARES_DIGEST_HEX], after[SHARES_DIGEST_HEX];
    agent_error_t err;
    shares_item_t *sentinel = item_new(), *out = sentinel; /* must be reset */
    int changed = 42, rc;

    memset(&err, 0, sizeof err);
    digest_of(current, before);
    rc = merge_apply(current, req, lim, &out, &changed, &err);
    shares_item_free(sentinel);
    if (rc != -1 || err.code != code)
        fail_msg("expected code %d, got rc %d code %d (%s)", code, rc, err.code, err.text);
    assert_null(out);
    assert_true(strlen(err.text) > 0);
    if (needle && !strstr(err.text, needle))
        fail_msg("text \"%s\" lacks \"%s\"", err.text, needle);
    digest_of(current, after);
    assert_string_equal(before, after);
}

/* The stored state most tests start from:
 *   desktop: H4 "music" 40, 10.0.0.2:6881
 *   laptop:  H1 "a" 1, H2 "b" 2, 192.0.2.1:6881, 2001:db8::1:6882 */
static shares_item_t *current_two(void)
{
    shares_item_t *cur = item_new();
    size_t d = res(cur, "desktop"), l = res(cur, "laptop");

    share(cur, d, H4, "music", 40);
    addr(cur, d, "10.0.0.2", 6881);
    share(cur, l, H1, "a", 1);
    share(cur, l, H2, "b", 2);
    addr(cur, l, "192.0.2.1", 6881);
    addr(cur, l, "2001:db8::1", 6882);
    return cur;
}

/* desktop as in current_two(), for expected states */
static void expect_desktop(shares_item_t *want)
{
    size_t d = res(want, "desktop");
    share(want, d, H4, "music", 40);
    addr(want, d, "10.0.0.2", 6881);
}

/* ---- register ------------------------------------------------------------ */

static void merge__register__adds_new_resource(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t p;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_REGISTER, "phone");
    req_share(&req, H3, "photo.jpg", 3);
    req_addr(&req, "198.51.100.7", 7000);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);

    want = current_two();
    p = res(want, "phone");
    share(want, p, H3, "photo.jpg", 3);
    addr(want, p, "198.51.100.7", 7000);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__register__first_resource_of_empty_user(void **state)
{
    shares_item_t *cur = item_new(), *out, *want = item_new();
    shares_limits_t lim;
    agent_request_t req;
    int changed;

    (void)state;
    shares_limits_default(&lim);
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1); /* an empty resource is still news */
    res(want, "laptop");
    assert_same_item(out, want);
    assert_int_equal(shares_item_resource_count(out), 1);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__register__replaces_existing_resource(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t l;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    req_share(&req, H3, "c", 3);
    req_share(&req, H2, "b-renamed", 22);
    req_addr(&req, "203.0.113.5", 9000);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);

    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    share(want, l, H2, "b-renamed", 22);
    share(want, l, H3, "c", 3);
    addr(want, l, "203.0.113.5", 9000);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__register__identical_state_is_unchanged(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    /* the stored laptop again, in another order */
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    req_addr(&req, "2001:db8::1", 6882);
    req_share(&req, H2, "b", 2);
    req_share(&req, H1, "a", 1);
    req_addr(&req, "192.0.2.1", 6881);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    assert_same_item(out, cur);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__register__changed_may_be_null(void **state)
{
    shares_item_t *cur = current_two(), *out = NULL;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    agent_error_t err;

    (void)state;
    memset(&err, 0, sizeof err);
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    assert_int_equal(merge_apply(cur, &req, &lim, &out, NULL, &err), 0);
    assert_non_null(out);
    assert_int_equal(shares_item_share_count(out, 1) + shares_item_share_count(out, 0), 1);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* ---- add ----------------------------------------------------------------- */

static void merge__add__inserts_new_hash_keeps_the_rest(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t l;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H3, "c", 3);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);

    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    share(want, l, H1, "a", 1);
    share(want, l, H2, "b", 2);
    share(want, l, H3, "c", 3);
    addr(want, l, "192.0.2.1", 6881);
    addr(want, l, "2001:db8::1", 6882);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__add__upserts_changed_name_and_size(void **state)
{
    static const struct {
        const char *name;
        uint64_t size;
    } rows[] = {{"a-renamed", 1}, {"a", 1000}, {"a2", 2000}};
    size_t i;

    (void)state;
    for (i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        shares_item_t *cur = current_two(), *out, *want;
        shares_limits_t lim = no_limits();
        agent_request_t req;
        size_t l;
        int changed;

        req_init(&req, AGENT_OP_ADD, "laptop");
        req_share(&req, H1, rows[i].name, rows[i].size);
        out = apply_ok(cur, &req, &lim, &changed);
        assert_int_equal(changed, 1);

        want = item_new();
        expect_desktop(want);
        l = res(want, "laptop");
        share(want, l, H1, rows[i].name, rows[i].size);
        share(want, l, H2, "b", 2);
        addr(want, l, "192.0.2.1", 6881);
        addr(want, l, "2001:db8::1", 6882);
        assert_same_item(out, want);
        shares_item_free(out);
        shares_item_free(want);
        shares_item_free(cur);
        agent_request_clear(&req);
    }
}

static void merge__add__same_shares_are_unchanged(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H2, "b", 2);
    req_share(&req, H1, "a", 1);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    assert_same_item(out, cur);
    shares_item_free(out);
    agent_request_clear(&req);

    /* an empty add changes nothing either */
    req_init(&req, AGENT_OP_ADD, "laptop");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    assert_same_item(out, cur);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__add__mixed_upsert_and_insert(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t l;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H1, "a", 1); /* unchanged */
    req_share(&req, H5, "e", 5); /* new */
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    share(want, l, H1, "a", 1);
    share(want, l, H2, "b", 2);
    share(want, l, H5, "e", 5);
    addr(want, l, "192.0.2.1", 6881);
    addr(want, l, "2001:db8::1", 6882);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__add__unknown_resource_is_not_found(void **state)
{
    shares_item_t *cur = current_two();
    shares_limits_t lim = no_limits();
    agent_request_t req;

    (void)state;
    req_init(&req, AGENT_OP_ADD, "phone");
    req_share(&req, H3, "c", 3);
    apply_fails(cur, &req, &lim, AGENT_ERR_NOT_FOUND, "register");
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* ---- remove -------------------------------------------------------------- */

static void merge__remove__deletes_listed_hashes(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t l;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H1);
    req_hash(&req, H3); /* not stored: ignored */
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    share(want, l, H2, "b", 2);
    addr(want, l, "192.0.2.1", 6881);
    addr(want, l, "2001:db8::1", 6882);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    agent_request_clear(&req);

    /* all of them: the resource stays, empty but with its addresses */
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H2);
    req_hash(&req, H1);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    addr(want, l, "192.0.2.1", 6881);
    addr(want, l, "2001:db8::1", 6882);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__remove__unknown_hashes_are_unchanged(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H3);
    req_hash(&req, H4); /* desktop's: not this resource's */
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    assert_same_item(out, cur);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__remove__unknown_resource_is_not_found(void **state)
{
    shares_item_t *cur = current_two();
    shares_limits_t lim = no_limits();
    agent_request_t req;

    (void)state;
    req_init(&req, AGENT_OP_REMOVE, "phone");
    req_hash(&req, H1);
    apply_fails(cur, &req, &lim, AGENT_ERR_NOT_FOUND, "not registered");
    shares_item_free(cur);
    agent_request_clear(&req);

    /* an empty user has no resource at all */
    cur = item_new();
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H1);
    apply_fails(cur, &req, &lim, AGENT_ERR_NOT_FOUND, NULL);
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* ---- unregister -------------------------------------------------------- */

static void merge__unregister__drops_the_resource(void **state)
{
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_UNREGISTER, "laptop");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    want = item_new();
    expect_desktop(want);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    agent_request_clear(&req);

    /* the last one: an empty item */
    req_init(&req, AGENT_OP_UNREGISTER, "desktop");
    want = item_new();
    shares_item_free(cur);
    cur = item_new();
    expect_desktop(cur);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    assert_int_equal(shares_item_resource_count(out), 0);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__unregister__absent_is_unchanged(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    req_init(&req, AGENT_OP_UNREGISTER, "phone");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    assert_same_item(out, cur);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* ---- quotas ---------------------------------------------------------- */

static void merge__max_resources__refuses_a_new_resource(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_resources = 2;
    req_init(&req, AGENT_OP_REGISTER, "phone");
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many resources");
    agent_request_clear(&req);

    /* one more allowed: accepted */
    lim.max_resources = 3;
    req_init(&req, AGENT_OP_REGISTER, "phone");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(shares_item_resource_count(out), 3);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__max_resources__existing_resource_updates_over_lowered_cap(void **state)
{
    static const agent_op_t ops[] = {AGENT_OP_REGISTER, AGENT_OP_ADD, AGENT_OP_REMOVE,
                                     AGENT_OP_UNREGISTER};
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    size_t i;
    int changed;

    (void)state;
    lim.max_resources = 1; /* lowered: the user already holds 2 */
    for (i = 0; i < sizeof ops / sizeof ops[0]; i++) {
        req_init(&req, ops[i], "laptop");
        if (ops[i] == AGENT_OP_REGISTER || ops[i] == AGENT_OP_ADD)
            req_share(&req, H3, "c", 3);
        if (ops[i] == AGENT_OP_REMOVE)
            req_hash(&req, H1);
        out = apply_ok(cur, &req, &lim, &changed);
        assert_int_equal(changed, 1);
        /* the other resource is kept */
        assert_non_null(shares_item_resource(out, 0));
        assert_string_equal(shares_item_resource(out, 0), "desktop");
        shares_item_free(out);
        agent_request_clear(&req);
    }
    /* but a third one is still refused */
    req_init(&req, AGENT_OP_REGISTER, "phone");
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many resources");
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__max_shares__enforced_on_register_and_add(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_shares = 2;
    /* register with 3 shares */
    req_init(&req, AGENT_OP_REGISTER, "phone");
    req_share(&req, H1, "a", 1);
    req_share(&req, H2, "b", 2);
    req_share(&req, H3, "c", 3);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many shares");
    agent_request_clear(&req);

    /* laptop holds 2: a third by add is refused */
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H3, "c", 3);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many shares");
    agent_request_clear(&req);

    /* an upsert at the cap does not grow the count: accepted */
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H2, "b2", 20);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    assert_int_equal(shares_item_share_count(out, 1), 2);
    shares_item_free(out);
    agent_request_clear(&req);

    /* register replacing laptop with exactly the cap: accepted */
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    req_share(&req, H3, "c", 3);
    req_share(&req, H5, "e", 5);
    out = apply_ok(cur, &req, &lim, &changed);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__max_shares__other_resources_over_lowered_limit_are_kept(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_shares = 1; /* laptop holds 2 */
    req_init(&req, AGENT_OP_ADD, "desktop");
    req_share(&req, H4, "music-renamed", 40);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    assert_string_equal(shares_item_resource(out, 1), "laptop");
    assert_int_equal(shares_item_share_count(out, 1), 2);
    shares_item_free(out);
    agent_request_clear(&req);

    /* the same on a new resource */
    req_init(&req, AGENT_OP_REGISTER, "phone");
    req_share(&req, H3, "c", 3);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(shares_item_share_count(out, 1), 2);
    shares_item_free(out);
    agent_request_clear(&req);

    /* the touched resource over the lowered limit: add refused, remove fine */
    req_init(&req, AGENT_OP_ADD, "laptop");
    req_share(&req, H1, "a", 1);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many shares");
    agent_request_clear(&req);
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H3);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__max_addresses__touched_resource_only(void **state)
{
    shares_item_t *cur = current_two(), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_addresses = 1; /* laptop holds 2, desktop 1 */
    req_init(&req, AGENT_OP_REGISTER, "phone");
    req_addr(&req, "198.51.100.1", 1);
    req_addr(&req, "198.51.100.2", 2);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, "too many addresses");
    agent_request_clear(&req);

    /* desktop within the limit: accepted although laptop is over it */
    req_init(&req, AGENT_OP_REGISTER, "desktop");
    req_addr(&req, "198.51.100.1", 1);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    assert_int_equal(shares_item_address_count(out, 1), 2);
    assert_int_equal(shares_item_address_count(out, 0), 1);
    shares_item_free(out);
    agent_request_clear(&req);

    /* register bringing laptop back under it: accepted */
    req_init(&req, AGENT_OP_REGISTER, "laptop");
    req_addr(&req, "198.51.100.9", 9);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(shares_item_address_count(out, 1), 1);
    shares_item_free(out);
    agent_request_clear(&req);

    /* unregistering the resource over it: accepted */
    req_init(&req, AGENT_OP_UNREGISTER, "laptop");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(shares_item_resource_count(out), 1);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* A user whose merged item is `bytes` long or more: laptop has many shares. */
static shares_item_t *current_big(size_t *len)
{
    shares_item_t *cur = current_two();
    char hash[41], name[32];
    char *text;
    int i;

    for (i = 0; i < 40; i++) {
        snprintf(hash, sizeof hash, "%040x", 0xabc000u + (unsigned)i);
        snprintf(name, sizeof name, "file-%03d.bin", i);
        share(cur, 1, hash, name, (uint64_t)i * 1000);
    }
    text = text_of(cur);
    *len = strlen(text);
    free(text);
    return cur;
}

static void merge__max_item_bytes__enforced_when_growing(void **state)
{
    size_t len;
    shares_item_t *cur = current_big(&len), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_item_bytes = len + 20; /* room for less than one more share */
    req_init(&req, AGENT_OP_ADD, "desktop");
    req_share(&req, H5, "another-file", 5);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, NULL);
    agent_request_clear(&req);

    req_init(&req, AGENT_OP_REGISTER, "phone");
    req_share(&req, H5, "another-file", 5);
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, NULL);
    agent_request_clear(&req);

    /* with room enough, the same add is accepted */
    lim.max_item_bytes = len + 1000;
    req_init(&req, AGENT_OP_ADD, "desktop");
    req_share(&req, H5, "another-file", 5);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    shares_item_free(out);
    shares_item_free(cur);
    agent_request_clear(&req);
}

static void merge__max_item_bytes__shrinking_ops_always_allowed(void **state)
{
    size_t len;
    shares_item_t *cur = current_big(&len), *out;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    int changed;

    (void)state;
    lim.max_item_bytes = len / 2; /* lowered below what is stored */
    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H1);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    assert_int_equal(shares_item_share_count(out, 1), 41);
    shares_item_free(out);
    agent_request_clear(&req);

    req_init(&req, AGENT_OP_REMOVE, "laptop");
    req_hash(&req, H5); /* nothing to remove: still fine */
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 0);
    shares_item_free(out);
    agent_request_clear(&req);

    req_init(&req, AGENT_OP_UNREGISTER, "desktop");
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    shares_item_free(out);
    agent_request_clear(&req);

    /* growing ops are held to it even on a tiny resource */
    req_init(&req, AGENT_OP_ADD, "desktop");
    req_share(&req, H4, "m", 40); /* an upsert that shortens the name */
    apply_fails(cur, &req, &lim, AGENT_ERR_POLICY, NULL);
    shares_item_free(cur);
    agent_request_clear(&req);
}

/* The request item of agent_request_parse() works as well as a hand-built
 * one: a register parsed from XML. */
static void merge__register__from_parsed_request(void **state)
{
    static const char *const served[] = {"example.org", NULL};
    xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
    xmpp_stanza_t *iq;
    shares_item_t *cur = current_two(), *out, *want;
    shares_limits_t lim = no_limits();
    agent_request_t req;
    agent_error_t err;
    size_t l;
    int changed;

    (void)state;
    assert_non_null(ctx);
    memset(&err, 0, sizeof err);
    iq = xmpp_stanza_new_from_string(ctx, "<iq type='set' from='" JID
                                          "/laptop' to='shares.example.org' id='r1'>"
                                          "<register xmlns='" AGENT_NS "' seq='9'>"
                                          "<share_item hash='" H3 "' name='parsed' size='9'/>"
                                          "<ip_address address='192.0.2.9' port='7777'/>"
                                          "</register></iq>");
    assert_non_null(iq);
    if (agent_request_parse(iq, served, NULL, &req, &err) != 0)
        fail_msg("parse: %s", err.text);
    xmpp_stanza_release(iq);
    assert_int_equal(req.op, AGENT_OP_REGISTER);
    out = apply_ok(cur, &req, &lim, &changed);
    assert_int_equal(changed, 1);
    want = item_new();
    expect_desktop(want);
    l = res(want, "laptop");
    share(want, l, H3, "parsed", 9);
    addr(want, l, "192.0.2.9", 7777);
    assert_same_item(out, want);
    shares_item_free(out);
    shares_item_free(want);
    shares_item_free(cur);
    agent_request_clear(&req);
    xmpp_ctx_free(ctx);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(merge__register__adds_new_resource),
        cmocka_unit_test(merge__register__first_resource_of_empty_user),
        cmocka_unit_test(merge__register__replaces_existing_resource),
        cmocka_unit_test(merge__register__identical_state_is_unchanged),
        cmocka_unit_test(merge__register__changed_may_be_null),
        cmocka_unit_test(merge__register__from_parsed_request),
        cmocka_unit_test(merge__add__inserts_new_hash_keeps_the_rest),
        cmocka_unit_test(merge__add__upserts_changed_name_and_size),
        cmocka_unit_test(merge__add__same_shares_are_unchanged),
        cmocka_unit_test(merge__add__mixed_upsert_and_insert),
        cmocka_unit_test(merge__add__unknown_resource_is_not_found),
        cmocka_unit_test(merge__remove__deletes_listed_hashes),
        cmocka_unit_test(merge__remove__unknown_hashes_are_unchanged),
        cmocka_unit_test(merge__remove__unknown_resource_is_not_found),
        cmocka_unit_test(merge__unregister__drops_the_resource),
        cmocka_unit_test(merge__unregister__absent_is_unchanged),
        cmocka_unit_test(merge__max_resources__refuses_a_new_resource),
        cmocka_unit_test(merge__max_resources__existing_resource_updates_over_lowered_cap),
        cmocka_unit_test(merge__max_shares__enforced_on_register_and_add),
        cmocka_unit_test(merge__max_shares__other_resources_over_lowered_limit_are_kept),
        cmocka_unit_test(merge__max_addresses__touched_resource_only),
        cmocka_unit_test(merge__max_item_bytes__enforced_when_growing),
        cmocka_unit_test(merge__max_item_bytes__shrinking_ops_always_allowed),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
