/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/statecache.c, the cache of users' merged states:
 * take after put returns the same state and removes it, a miss returns
 * NULL, put replaces, least recently used states go first when over the
 * byte budget, a state larger than the budget (or a zero budget) is not
 * kept, drop and clear, the hit/miss/eviction counters, and concurrent use
 * from several threads. Ownership is checked by AddressSanitizer's leak
 * detection: every state handed to the cache is freed exactly once.
 */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "shares.h"
#include "statecache.h"

/* An item with one resource named `resource` (tells items apart). */
static shares_item_t *item_named(const char *resource)
{
    shares_item_t *it = shares_item_new(NULL);
    assert_non_null(it);
    assert_int_equal(shares_item_add_resource(it, resource, NULL, NULL), 0);
    return it;
}

static const char *resource_of(const shares_item_t *it)
{
    assert_non_null(it);
    assert_int_equal(shares_item_resource_count(it), 1);
    return shares_item_resource(it, 0);
}

static statecache_t *new_cache(size_t max_bytes)
{
    statecache_t *c = statecache_new(max_bytes);
    assert_non_null(c);
    return c;
}

static void statecache__take__returns_what_was_put_once(void **state)
{
    statecache_t *c = new_cache(1 << 20);
    shares_item_t *it;
    size_t bytes = 0;
    statecache_stats_t st;

    (void)state;
    statecache_put(c, "alice@example.org", item_named("laptop"), 100);
    it = statecache_take(c, "alice@example.org", &bytes);
    assert_string_equal(resource_of(it), "laptop");
    assert_int_equal(bytes, 100);
    shares_item_free(it);
    /* taken out: a second take misses */
    assert_null(statecache_take(c, "alice@example.org", NULL));
    statecache_stats(c, &st);
    assert_int_equal(st.hits, 1);
    assert_int_equal(st.misses, 1);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    statecache_free(c);
}

static void statecache__take__misses_unknown_user(void **state)
{
    statecache_t *c = new_cache(1 << 20);
    size_t bytes = 7;
    (void)state;
    statecache_put(c, "alice@example.org", item_named("laptop"), 100);
    assert_null(statecache_take(c, "bob@example.org", &bytes));
    assert_int_equal(bytes, 7); /* untouched on a miss */
    statecache_free(c);         /* frees alice's state */
}

static void statecache__put__replaces_the_previous_state(void **state)
{
    statecache_t *c = new_cache(1 << 20);
    shares_item_t *it;
    statecache_stats_t st;
    (void)state;
    statecache_put(c, "alice@example.org", item_named("laptop"), 100);
    statecache_put(c, "alice@example.org", item_named("desktop"), 200);
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    it = statecache_take(c, "alice@example.org", NULL);
    assert_string_equal(resource_of(it), "desktop");
    shares_item_free(it);
    statecache_free(c);
}

static void statecache__put__evicts_least_recently_used_first(void **state)
{
    /* room for about three entries of 1,000 bytes */
    statecache_t *c = new_cache(3500);
    shares_item_t *it;
    statecache_stats_t st;
    size_t bytes;
    (void)state;
    statecache_put(c, "a@example.org", item_named("a"), 1000);
    statecache_put(c, "b@example.org", item_named("b"), 1000);
    statecache_put(c, "c@example.org", item_named("c"), 1000);
    /* use a: b is now the least recently used */
    it = statecache_take(c, "a@example.org", &bytes);
    assert_non_null(it);
    statecache_put(c, "a@example.org", it, bytes);
    statecache_put(c, "d@example.org", item_named("d"), 1000);
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 3);
    assert_int_equal(st.evictions, 1);
    assert_true(st.bytes <= st.max_bytes);
    assert_null(statecache_take(c, "b@example.org", NULL));
    for (const char *const *k =
             (const char *const[]){"a@example.org", "c@example.org", "d@example.org", NULL};
         *k; k++) {
        it = statecache_take(c, *k, NULL);
        if (!it)
            fail_msg("%s was evicted", *k);
        shares_item_free(it);
    }
    statecache_free(c);
}

static void statecache__put__refuses_a_state_over_the_budget(void **state)
{
    statecache_t *c = new_cache(1000), *off = new_cache(0);
    statecache_stats_t st;
    (void)state;
    statecache_put(c, "a@example.org", item_named("a"), 100);
    /* too large for the whole cache: not kept, and it evicts nothing */
    statecache_put(c, "big@example.org", item_named("big"), 5000);
    assert_null(statecache_take(c, "big@example.org", NULL));
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 1);
    assert_int_equal(st.evictions, 0);
    /* a zero budget caches nothing */
    statecache_put(off, "a@example.org", item_named("a"), 1);
    assert_null(statecache_take(off, "a@example.org", NULL));
    statecache_free(c);
    statecache_free(off);
}

static void statecache__put__over_budget_replacement_forgets_the_old_state(void **state)
{
    statecache_t *c = new_cache(1000);
    (void)state;
    statecache_put(c, "a@example.org", item_named("small"), 100);
    statecache_put(c, "a@example.org", item_named("huge"), 5000);
    /* the old state must not come back: it is no longer the stored one */
    assert_null(statecache_take(c, "a@example.org", NULL));
    statecache_free(c);
}

static void statecache__drop_and_clear__forget_states(void **state)
{
    statecache_t *c = new_cache(1 << 20);
    statecache_stats_t st;
    (void)state;
    statecache_put(c, "a@example.org", item_named("a"), 100);
    statecache_put(c, "b@example.org", item_named("b"), 100);
    statecache_put(c, "c@example.org", item_named("c"), 100);
    statecache_drop(c, "b@example.org");
    statecache_drop(c, "nobody@example.org"); /* no-op */
    assert_null(statecache_take(c, "b@example.org", NULL));
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 2);
    statecache_clear(c);
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 0);
    assert_int_equal(st.bytes, 0);
    assert_null(statecache_take(c, "a@example.org", NULL));
    statecache_free(c);
    statecache_free(NULL);
}

/* Several threads, each with its own users (as the database workers are):
 * every take after a put finds the state the same thread put. */
typedef struct worker_arg {
    statecache_t *c;
    int id, failures;
} worker_arg_t;

static void *worker(void *p)
{
    worker_arg_t *w = p;
    char jid[64], res[32];
    for (int round = 0; round < 2000; round++) {
        snprintf(jid, sizeof jid, "u%d-%d@example.org", w->id, round % 50);
        snprintf(res, sizeof res, "r%d", round);
        shares_item_t *old = statecache_take(w->c, jid, NULL);
        if (old && round >= 50) {
            char want[32];
            snprintf(want, sizeof want, "r%d", round - 50);
            if (strcmp(shares_item_resource(old, 0), want) != 0)
                w->failures++;
        }
        shares_item_free(old);
        statecache_put(w->c, jid, item_named(res), 64);
    }
    return NULL;
}

static void statecache__threads__each_sees_its_own_states(void **state)
{
    statecache_t *c = new_cache(1 << 20);
    pthread_t t[4];
    worker_arg_t w[4];
    statecache_stats_t st;
    (void)state;
    for (int i = 0; i < 4; i++) {
        w[i] = (worker_arg_t){c, i, 0};
        assert_int_equal(pthread_create(&t[i], NULL, worker, &w[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(t[i], NULL);
        assert_int_equal(w[i].failures, 0);
    }
    statecache_stats(c, &st);
    assert_int_equal(st.entries, 4 * 50);
    assert_int_equal(st.hits + st.misses, 4 * 2000);
    assert_int_equal(st.misses, 4 * 50);
    statecache_free(c);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(statecache__take__returns_what_was_put_once),
        cmocka_unit_test(statecache__take__misses_unknown_user),
        cmocka_unit_test(statecache__put__replaces_the_previous_state),
        cmocka_unit_test(statecache__put__evicts_least_recently_used_first),
        cmocka_unit_test(statecache__put__refuses_a_state_over_the_budget),
        cmocka_unit_test(statecache__put__over_budget_replacement_forgets_the_old_state),
        cmocka_unit_test(statecache__drop_and_clear__forget_states),
        cmocka_unit_test(statecache__threads__each_sees_its_own_states),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
