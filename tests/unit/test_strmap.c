/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/strmap.c, the string-keyed hash map: put, get,
 * delete and replace, the count, growth across 100,000 keys with deletions
 * in between, strmap_each visiting every entry exactly once, and keys
 * copied rather than borrowed.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "strmap.h"

static strmap_t *new_map(void)
{
    strmap_t *m = strmap_new();
    assert_non_null(m);
    return m;
}

static void put_ok(strmap_t *m, const char *key, void *value)
{
    if (strmap_put(m, key, value) != 0)
        fail_msg("put %s failed", key);
}

static void strmap__put_get__round_trip(void **state)
{
    strmap_t *m = new_map();
    int a = 1, b = 2;

    (void)state;
    assert_int_equal(strmap_count(m), 0);
    assert_null(strmap_get(m, "alice@example.org"));
    put_ok(m, "alice@example.org", &a);
    put_ok(m, "bob@example.org", &b);
    assert_ptr_equal(strmap_get(m, "alice@example.org"), &a);
    assert_ptr_equal(strmap_get(m, "bob@example.org"), &b);
    assert_int_equal(strmap_count(m), 2);
    /* exact match only: case, prefixes and extensions are other keys */
    assert_null(strmap_get(m, "Alice@example.org"));
    assert_null(strmap_get(m, "alice@example.or"));
    assert_null(strmap_get(m, "alice@example.org/x"));
    assert_null(strmap_get(m, ""));
    strmap_free(m);
}

static void strmap__put__replaces_value_keeps_count(void **state)
{
    strmap_t *m = new_map();
    int a = 1, b = 2;

    (void)state;
    put_ok(m, "k", &a);
    put_ok(m, "k", &b);
    assert_ptr_equal(strmap_get(m, "k"), &b);
    assert_int_equal(strmap_count(m), 1);
    /* deleting once removes it: there was only one entry */
    assert_ptr_equal(strmap_del(m, "k"), &b);
    assert_null(strmap_get(m, "k"));
    assert_int_equal(strmap_count(m), 0);
    strmap_free(m);
}

static void strmap__del__returns_value_and_forgets_key(void **state)
{
    strmap_t *m = new_map();
    int a = 1, b = 2, c = 3;

    (void)state;
    put_ok(m, "a", &a);
    put_ok(m, "b", &b);
    put_ok(m, "c", &c);
    assert_null(strmap_del(m, "missing"));
    assert_int_equal(strmap_count(m), 3);
    assert_ptr_equal(strmap_del(m, "b"), &b);
    assert_int_equal(strmap_count(m), 2);
    assert_null(strmap_get(m, "b"));
    assert_null(strmap_del(m, "b")); /* second delete: gone */
    assert_int_equal(strmap_count(m), 2);
    assert_ptr_equal(strmap_get(m, "a"), &a);
    assert_ptr_equal(strmap_get(m, "c"), &c);
    put_ok(m, "b", &c); /* and back */
    assert_ptr_equal(strmap_get(m, "b"), &c);
    assert_int_equal(strmap_count(m), 3);
    strmap_free(m);
}

static void strmap__put__empty_key_is_a_key(void **state)
{
    strmap_t *m = new_map();
    int a = 1;

    (void)state;
    put_ok(m, "", &a);
    assert_ptr_equal(strmap_get(m, ""), &a);
    assert_int_equal(strmap_count(m), 1);
    assert_ptr_equal(strmap_del(m, ""), &a);
    assert_int_equal(strmap_count(m), 0);
    strmap_free(m);
}

static void strmap__put__copies_the_key(void **state)
{
    strmap_t *m = new_map();
    char buf[32];
    int a = 1;

    (void)state;
    snprintf(buf, sizeof buf, "carol@example.org");
    put_ok(m, buf, &a);
    /* the caller's buffer changes and then goes away */
    memset(buf, 'x', sizeof buf - 1);
    buf[sizeof buf - 1] = '\0';
    assert_ptr_equal(strmap_get(m, "carol@example.org"), &a);
    assert_null(strmap_get(m, buf));
    snprintf(buf, sizeof buf, "carol@example.org");
    assert_ptr_equal(strmap_del(m, buf), &a);
    strmap_free(m);
}

static void each_collect_key(const char *key, void *value, void *arg)
{
    char *out = arg;
    (void)value;
    strcat(out, key);
    strcat(out, ";");
}

static void strmap__each__passes_copied_keys(void **state)
{
    strmap_t *m = new_map();
    char buf[16], seen[64] = "";
    int a = 1;

    (void)state;
    snprintf(buf, sizeof buf, "dave");
    put_ok(m, buf, &a);
    buf[0] = 'X';
    strmap_each(m, each_collect_key, seen);
    assert_string_equal(seen, "dave;");
    strmap_free(m);
}

enum { MANY = 100000 };

static void key_of(char *buf, size_t size, int i)
{
    snprintf(buf, size, "user%d@host%d.example", i, i % 7);
}

static void strmap__grow__keeps_100k_keys_across_deletions(void **state)
{
    strmap_t *m = new_map();
    int *vals = calloc(MANY, sizeof *vals);
    char key[64];
    int i;

    (void)state;
    assert_non_null(vals);
    for (i = 0; i < MANY; i++) {
        vals[i] = i;
        key_of(key, sizeof key, i);
        put_ok(m, key, &vals[i]);
        if (i % 10007 == 0)
            assert_int_equal(strmap_count(m), (size_t)i + 1);
    }
    assert_int_equal(strmap_count(m), MANY);
    for (i = 0; i < MANY; i++) {
        key_of(key, sizeof key, i);
        if (strmap_get(m, key) != &vals[i])
            fail_msg("key %s lost after growth", key);
    }
    /* delete every third key, then check all of them */
    for (i = 0; i < MANY; i += 3) {
        key_of(key, sizeof key, i);
        assert_ptr_equal(strmap_del(m, key), &vals[i]);
    }
    assert_int_equal(strmap_count(m), MANY - (MANY + 2) / 3);
    for (i = 0; i < MANY; i++) {
        void *want = i % 3 == 0 ? NULL : &vals[i];
        key_of(key, sizeof key, i);
        if (strmap_get(m, key) != want)
            fail_msg("key %s: wrong value after deletions", key);
    }
    /* replacing everything keeps the count */
    for (i = 0; i < MANY; i++) {
        key_of(key, sizeof key, i);
        put_ok(m, key, &vals[(i + 1) % MANY]);
    }
    assert_int_equal(strmap_count(m), MANY);
    key_of(key, sizeof key, 42);
    assert_ptr_equal(strmap_get(m, key), &vals[43]);
    strmap_free(m);
    free(vals);
}

typedef struct {
    unsigned char *visits;
    int *vals;
    size_t calls;
    int bad_key;
} each_state_t;

static void each_count(const char *key, void *value, void *arg)
{
    each_state_t *s = arg;
    int i = *(int *)value;
    char want[64];

    key_of(want, sizeof want, i);
    if (strcmp(key, want) != 0)
        s->bad_key = 1;
    if (s->visits[i] < 255)
        s->visits[i]++;
    s->calls++;
}

static void strmap__each__visits_every_entry_once(void **state)
{
    enum { N = 20000 };
    strmap_t *m = new_map();
    int *vals = calloc(N, sizeof *vals);
    unsigned char *visits = calloc(N, 1);
    each_state_t s = {0};
    char key[64];
    int i;

    (void)state;
    assert_non_null(vals);
    assert_non_null(visits);
    for (i = 0; i < N; i++) {
        vals[i] = i;
        key_of(key, sizeof key, i);
        put_ok(m, key, &vals[i]);
    }
    for (i = 0; i < N; i += 5) {
        key_of(key, sizeof key, i);
        assert_non_null(strmap_del(m, key));
    }
    s.visits = visits;
    s.vals = vals;
    strmap_each(m, each_count, &s);
    assert_int_equal(s.calls, strmap_count(m));
    assert_int_equal(s.calls, N - N / 5);
    assert_false(s.bad_key);
    for (i = 0; i < N; i++)
        if (visits[i] != (i % 5 == 0 ? 0 : 1))
            fail_msg("entry %d visited %u times", i, visits[i]);
    strmap_free(m);
    free(vals);
    free(visits);
}

static void each_fail(const char *key, void *value, void *arg)
{
    (void)key;
    (void)value;
    *(int *)arg += 1;
}

static void strmap__each__empty_map_calls_nothing(void **state)
{
    strmap_t *m = new_map();
    int calls = 0, a = 1;

    (void)state;
    strmap_each(m, each_fail, &calls);
    assert_int_equal(calls, 0);
    put_ok(m, "x", &a);
    assert_ptr_equal(strmap_del(m, "x"), &a);
    strmap_each(m, each_fail, &calls);
    assert_int_equal(calls, 0);
    strmap_free(m);
    strmap_free(NULL);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(strmap__put_get__round_trip),
        cmocka_unit_test(strmap__put__replaces_value_keeps_count),
        cmocka_unit_test(strmap__del__returns_value_and_forgets_key),
        cmocka_unit_test(strmap__put__empty_key_is_a_key),
        cmocka_unit_test(strmap__put__copies_the_key),
        cmocka_unit_test(strmap__each__passes_copied_keys),
        cmocka_unit_test(strmap__grow__keeps_100k_keys_across_deletions),
        cmocka_unit_test(strmap__each__visits_every_entry_once),
        cmocka_unit_test(strmap__each__empty_map_calls_nothing),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
