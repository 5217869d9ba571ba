/* SPDX-License-Identifier: MIT */
/*
 * Integration tests of the storage layer (storage/store.c, storage/migrate.c,
 * sql/) against a real PostgreSQL started by tests/with_stack.sh: migrations
 * (fresh, repeated, concurrent starters, newer schema refused), round trips
 * of every write through store_user_load(), sequence guards, quotas, whole-
 * or-nothing updates, database constraints with the C validation bypassed,
 * concurrent writers, look-ups and listings with their cursors, the publish
 * record, and a database restart under a connected client.
 *
 *   test_store          the main group (ctest integration.test_store)
 *   test_store scale    index use at 1,000,000 share rows
 *                       (ctest integration.test_store_scale)
 *
 * Needs BITWEEN_DATABASE_URL, BITWEEN_PG_ADMIN_URL, BITWEEN_STACK_SCRIPT and
 * BITWEEN_STACK_DIR (exported by with_stack.sh).
 */
#include <inttypes.h>
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>
#include <libpq-fe.h>

#include "migrate.h"
#include "shares.h"
#include "store.h"

#define NONE ((size_t)-1)

/* ---- environment and raw libpq helpers ----------------------------------- */

static const char *env_required(const char *name)
{
    const char *v = getenv(name);
    if (!v || !*v)
        fail_msg("%s is not set: run this test through tests/with_stack.sh", name);
    return v;
}

/* BITWEEN_DATABASE_URL with the database name replaced by `dbname`. */
static char *url_for_db(const char *dbname)
{
    const char *url = env_required("BITWEEN_DATABASE_URL");
    const char *q = strchr(url, '?');
    const char *slash;
    size_t head;
    char *out;

    for (slash = q ? q : url + strlen(url); slash > url && slash[-1] != '/'; slash--)
        ;
    assert_true(slash > url);
    head = (size_t)(slash - url);
    out = malloc(head + strlen(dbname) + (q ? strlen(q) : 0) + 1);
    assert_non_null(out);
    memcpy(out, url, head);
    strcpy(out + head, dbname);
    if (q)
        strcat(out, q);
    return out;
}

static PGconn *pg_open(const char *url)
{
    PGconn *c = PQconnectdb(url);
    assert_non_null(c);
    if (PQstatus(c) != CONNECTION_OK)
        fail_msg("cannot connect to PostgreSQL: %s", PQerrorMessage(c));
    PQclear(PQexec(c, "SET client_min_messages = warning"));
    return c;
}

/* Run `sql`, which must succeed. */
static void pg_ok(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    ExecStatusType s = PQresultStatus(r);
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s", PQresultErrorMessage(r));
        PQclear(r);
        fail_msg("SQL failed: %s\n  statement: %.300s", msg, sql);
    }
    PQclear(r);
}

/* First column of the only row of `sql`, copied (caller frees). */
static char *pg_text(PGconn *c, const char *sql)
{
    PGresult *r = PQexec(c, sql);
    char *v;
    if (PQresultStatus(r) != PGRES_TUPLES_OK || PQntuples(r) != 1) {
        char msg[1024];
        snprintf(msg, sizeof msg, "%s (%d rows)", PQresultErrorMessage(r), PQntuples(r));
        PQclear(r);
        fail_msg("SQL failed: %s\n  statement: %.300s", msg, sql);
    }
    v = strdup(PQgetisnull(r, 0, 0) ? "" : PQgetvalue(r, 0, 0));
    PQclear(r);
    assert_non_null(v);
    return v;
}

static long long pg_int(PGconn *c, const char *sql)
{
    char *v = pg_text(c, sql);
    long long n = strtoll(v, NULL, 10);
    free(v);
    return n;
}

/* Run `sql` with text parameters; returns the SQLSTATE of its error into
 * `state` ("" when it succeeded). */
static void pg_try(PGconn *c, const char *sql, int n, const char *const *params, char state[6])
{
    PGresult *r = PQexecParams(c, sql, n, NULL, params, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(r);
    state[0] = '\0';
    if (s != PGRES_COMMAND_OK && s != PGRES_TUPLES_OK) {
        const char *ss = PQresultErrorField(r, PG_DIAG_SQLSTATE);
        snprintf(state, 6, "%s", ss ? ss : "?????");
    }
    PQclear(r);
}

static double now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* ---- store helpers --------------------------------------------------------- */

#define assert_store(expected, call, errp)                                                         \
    do {                                                                                           \
        int rc__ = (call);                                                                         \
        if (rc__ != (expected))                                                                    \
            fail_msg("%s\n  returned %s (%d), expected %s (%d): %s [SQLSTATE %s]", #call,          \
                     store_strerror(rc__), rc__, store_strerror(expected), (expected),             \
                     (errp)->message, (errp)->sqlstate);                                           \
    } while (0)

static store_t *store_open(const char *url, const char *app)
{
    store_options_t opts = {
        .connect_timeout_s = 5, .statement_timeout_ms = 20000, .application_name = app};
    store_error_t err;
    store_t *st = store_new(url, &opts);
    assert_non_null(st);
    assert_store(STORE_OK, store_connect(st, &err), &err);
    assert_true(store_connected(st));
    return st;
}

/* Deterministic 40-digit hash for (a, b). */
static void hash40(char out[41], uint64_t a, uint64_t b)
{
    static const char hex[] = "0123456789abcdef";
    uint64_t x = a * 0x9E3779B97F4A7C15ull ^ (b + 0x632BE59BD9B4E019ull);
    int i;
    for (i = 0; i < 20; i++) {
        uint64_t z;
        x += 0x9E3779B97F4A7C15ull;
        z = x;
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
        z ^= z >> 31;
        out[2 * i] = hex[(z >> 4) & 15];
        out[2 * i + 1] = hex[z & 15];
    }
    out[40] = '\0';
}

static shares_item_t *item_new(void)
{
    shares_limits_t lim;
    shares_item_t *item;
    memset(&lim, 0, sizeof lim); /* no limits: quotas are the store's to check */
    item = shares_item_new(&lim);
    assert_non_null(item);
    return item;
}

static size_t item_res(shares_item_t *item, const char *name)
{
    shares_error_t e;
    size_t ri = NONE;
    if (shares_item_add_resource(item, name, &ri, &e) != SHARES_OK)
        fail_msg("add_resource %s: %s", name, e.message);
    return ri;
}

static void item_share(shares_item_t *item, size_t ri, const char *hash, const char *name,
                       uint64_t size)
{
    shares_error_t e;
    if (shares_item_add_share(item, ri, hash, name, size, &e) != SHARES_OK)
        fail_msg("add_share %s: %s", hash, e.message);
}

static void item_addr(shares_item_t *item, size_t ri, const char *addr, unsigned port)
{
    shares_error_t e;
    if (shares_item_add_address(item, ri, addr, port, &e) != SHARES_OK)
        fail_msg("add_address %s: %s", addr, e.message);
}

static size_t find_res(const shares_item_t *item, const char *name)
{
    size_t i, n = shares_item_resource_count(item);
    for (i = 0; i < n; i++)
        if (strcmp(shares_item_resource(item, i), name) == 0)
            return i;
    return NONE;
}

/* Whether resource `ar` of `a` and `br` of `b` hold the same shares and
 * addresses (order-insensitive); `why` says the first difference. */
static int res_equal(const shares_item_t *a, size_t ar, const shares_item_t *b, size_t br,
                     char *why, size_t whylen)
{
    size_t i, j, n = shares_item_share_count(a, ar), m = shares_item_address_count(a, ar);

    if (strcmp(shares_item_resource(a, ar), shares_item_resource(b, br)) != 0) {
        snprintf(why, whylen, "resource %s vs %s", shares_item_resource(a, ar),
                 shares_item_resource(b, br));
        return 0;
    }
    if (n != shares_item_share_count(b, br)) {
        snprintf(why, whylen, "resource %s: %zu shares vs %zu", shares_item_resource(a, ar), n,
                 shares_item_share_count(b, br));
        return 0;
    }
    if (m != shares_item_address_count(b, br)) {
        snprintf(why, whylen, "resource %s: %zu addresses vs %zu", shares_item_resource(a, ar), m,
                 shares_item_address_count(b, br));
        return 0;
    }
    for (i = 0; i < n; i++) {
        shares_share_t x, y;
        int found = 0;
        assert_int_equal(shares_item_share(a, ar, i, &x), SHARES_OK);
        for (j = 0; j < n && !found; j++) {
            assert_int_equal(shares_item_share(b, br, j, &y), SHARES_OK);
            if (strcmp(x.hash, y.hash) != 0)
                continue;
            found = 1;
            if (strcmp(x.name, y.name) != 0 || x.size != y.size) {
                snprintf(why, whylen,
                         "share %s: name \"%s\" size %" PRIu64 " vs name \"%s\" size %" PRIu64,
                         x.hash, x.name, x.size, y.name, y.size);
                return 0;
            }
        }
        if (!found) {
            snprintf(why, whylen, "share %s (\"%s\") missing", x.hash, x.name);
            return 0;
        }
    }
    for (i = 0; i < m; i++) {
        shares_address_t x, y;
        int found = 0;
        assert_int_equal(shares_item_address(a, ar, i, &x), SHARES_OK);
        for (j = 0; j < m && !found; j++) {
            assert_int_equal(shares_item_address(b, br, j, &y), SHARES_OK);
            found = strcmp(x.address, y.address) == 0 && x.port == y.port;
        }
        if (!found) {
            snprintf(why, whylen, "address %s port %u missing", x.address, (unsigned)x.port);
            return 0;
        }
    }
    return 1;
}

/* Whether two items hold the same resources with the same contents. */
static int items_equal(const shares_item_t *a, const shares_item_t *b, char *why, size_t whylen)
{
    size_t i, n = shares_item_resource_count(a);
    if (n != shares_item_resource_count(b)) {
        snprintf(why, whylen, "%zu resources vs %zu", n, shares_item_resource_count(b));
        return 0;
    }
    for (i = 0; i < n; i++) {
        size_t j = find_res(b, shares_item_resource(a, i));
        if (j == NONE) {
            snprintf(why, whylen, "resource %s missing", shares_item_resource(a, i));
            return 0;
        }
        if (!res_equal(a, i, b, j, why, whylen))
            return 0;
    }
    return 1;
}

static shares_item_t *load(store_t *st, const char *jid)
{
    store_error_t err;
    shares_item_t *item = NULL;
    assert_store(STORE_OK, store_user_load(st, jid, &item, &err), &err);
    assert_non_null(item);
    return item;
}

/* Resource `resource` of `jid` as loaded equals resource `ri` of `want`. */
static void assert_resource_is(store_t *st, const char *jid, const char *resource,
                               const shares_item_t *want, size_t ri)
{
    char why[512];
    shares_item_t *got = load(st, jid);
    size_t gi = find_res(got, resource);
    if (gi == NONE) {
        shares_item_free(got);
        fail_msg("%s has no resource %s", jid, resource);
    }
    if (!res_equal(want, ri, got, gi, why, sizeof why)) {
        shares_item_free(got);
        fail_msg("stored state of %s/%s differs from what was written: %s", jid, resource, why);
    }
    shares_item_free(got);
}

/* Snapshot of a user: loaded item plus "resource=seq;..." */
typedef struct snapshot {
    shares_item_t *item;
    char seqs[1024];
} snapshot_t;

static void snapshot_take(store_t *st, const char *jid, snapshot_t *s)
{
    store_error_t err;
    store_resources_t rs;
    size_t i, len = 0;

    s->item = load(st, jid);
    assert_store(STORE_OK, store_resources_list(st, jid, NULL, NULL, 1000, &rs, &err), &err);
    s->seqs[0] = '\0';
    for (i = 0; i < rs.n; i++)
        len += (size_t)snprintf(s->seqs + len, sizeof s->seqs - len, "%s=%" PRId64 ";",
                                rs.v[i].resource, rs.v[i].seq);
    store_resources_free(&rs);
}

static void snapshot_free(snapshot_t *s)
{
    shares_item_free(s->item);
    s->item = NULL;
}

static void assert_unchanged(store_t *st, const char *jid, const snapshot_t *before)
{
    char why[512];
    snapshot_t now;
    snapshot_take(st, jid, &now);
    if (!items_equal(before->item, now.item, why, sizeof why)) {
        snapshot_free(&now);
        fail_msg("state of %s changed: %s", jid, why);
    }
    if (strcmp(before->seqs, now.seqs) != 0) {
        char a[1024];
        snprintf(a, sizeof a, "%s", now.seqs);
        snapshot_free(&now);
        fail_msg("sequence numbers of %s changed: %s -> %s", jid, before->seqs, a);
    }
    snapshot_free(&now);
}

static int64_t stored_seq(store_t *st, const char *jid, const char *resource)
{
    store_error_t err;
    store_resources_t rs;
    int64_t seq = -1;
    size_t i;
    assert_store(STORE_OK, store_resources_list(st, jid, NULL, NULL, 1000, &rs, &err), &err);
    for (i = 0; i < rs.n; i++)
        if (strcmp(rs.v[i].resource, resource) == 0)
            seq = rs.v[i].seq;
    store_resources_free(&rs);
    return seq;
}

/* Replace `resource` of `jid` with resource `ri` of `item`, expecting OK. */
static void replace_ok(store_t *st, const char *jid, const char *resource, int64_t seq,
                       const shares_item_t *item, size_t ri, const store_quota_t *q)
{
    store_error_t err;
    assert_store(STORE_OK, store_resource_replace(st, jid, resource, seq, item, ri, q, &err), &err);
}

/* A small state: `n` shares keyed (key, 0..n-1), one IPv4 address. */
static shares_item_t *simple_state(const char *resource, uint64_t key, size_t n, size_t *ri)
{
    shares_item_t *item = item_new();
    char h[41], name[64];
    size_t i;
    *ri = item_res(item, resource);
    for (i = 0; i < n; i++) {
        hash40(h, key, i);
        snprintf(name, sizeof name, "file %" PRIu64 "-%zu.bin", key, i);
        item_share(item, *ri, h, name, 1000 * key + i);
    }
    item_addr(item, *ri, "192.0.2.10", 6881);
    return item;
}

/* ---- fixtures -------------------------------------------------------------- */

typedef struct fixture {
    char *url;     /* main database, role bitween */
    store_t *st;   /* on the main database, migrated */
    PGconn *db;    /* raw connection to the main database (role bitween) */
    PGconn *admin; /* superuser, database postgres */
} fixture_t;

static int group_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    store_error_t err;
    int version = 0;

    if (!f)
        return -1;
    f->url = strdup(env_required("BITWEEN_DATABASE_URL"));
    f->st = store_open(f->url, "bitween-test");
    assert_store(STORE_OK, store_migrate(f->st, &version, &err), &err);
    assert_int_equal(version, migrate_latest());
    f->db = pg_open(f->url);
    f->admin = pg_open(env_required("BITWEEN_PG_ADMIN_URL"));
    *state = f;
    return 0;
}

static int group_teardown(void **state)
{
    fixture_t *f = *state;
    if (!f)
        return 0;
    store_free(f->st);
    if (f->db)
        PQfinish(f->db);
    if (f->admin)
        PQfinish(f->admin);
    free(f->url);
    free(f);
    return 0;
}

/* Empty every table of the main database (for tests counting globally). */
static void reset_tables(fixture_t *f)
{
    pg_ok(f->db, "TRUNCATE users, resources, addresses, shares, publishes");
}

/* A fresh scratch database owned by bitween; returns its URL (caller frees). */
static char *scratch_db(fixture_t *f, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_ok(f->admin, sql);
    snprintf(sql, sizeof sql, "CREATE DATABASE %s OWNER bitween", name);
    pg_ok(f->admin, sql);
    return url_for_db(name);
}

static void scratch_drop(fixture_t *f, const char *name)
{
    char sql[256];
    snprintf(sql, sizeof sql, "DROP DATABASE IF EXISTS %s WITH (FORCE)", name);
    pg_ok(f->admin, sql);
}

/* ---- migrations ------------------------------------------------------------ */

static void store__migrate__fresh_database_reaches_latest(void **state)
{
    fixture_t *f = *state;
    char *url = scratch_db(f, "bw_mig_fresh");
    store_t *st = store_open(url, "bitween-mig");
    PGconn *c = pg_open(url);
    store_error_t err;
    char msg[256], *rows1, *rows2;
    int version = -1, raw = -1;

    assert_int_equal(migrate_version(c, &raw, msg, sizeof msg), MIGRATE_OK);
    assert_int_equal(raw, 0);
    assert_store(STORE_OK, store_migrate(st, &version, &err), &err);
    assert_int_equal(version, migrate_latest());
    assert_true(migrate_latest() >= 1);
    assert_int_equal(migrate_version(c, &raw, msg, sizeof msg), MIGRATE_OK);
    assert_int_equal(raw, migrate_latest());
    assert_int_equal(pg_int(c, "SELECT count(*) FROM schema_migrations"),
                     (long long)migrate_script_count);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM unnest(ARRAY['users','resources',"
                               "'addresses','shares','publishes','shares_hash_idx',"
                               "'shares_name_trgm_idx']) t WHERE to_regclass(t) IS NOT NULL"),
                     7);
    rows1 = pg_text(c, "SELECT string_agg(version || ' ' || name || ' ' || applied_at, ',' "
                       "ORDER BY version) FROM schema_migrations");

    /* Second run: a no-op. */
    version = -1;
    assert_store(STORE_OK, store_migrate(st, &version, &err), &err);
    assert_int_equal(version, migrate_latest());
    rows2 = pg_text(c, "SELECT string_agg(version || ' ' || name || ' ' || applied_at, ',' "
                       "ORDER BY version) FROM schema_migrations");
    assert_string_equal(rows1, rows2);
    /* The store works on the new database. */
    {
        size_t ri;
        shares_item_t *item = simple_state("laptop", 1, 2, &ri);
        replace_ok(st, "fresh@example.org", "laptop", 1, item, ri, NULL);
        assert_resource_is(st, "fresh@example.org", "laptop", item, ri);
        shares_item_free(item);
    }
    free(rows1);
    free(rows2);
    PQfinish(c);
    store_free(st);
    free(url);
    scratch_drop(f, "bw_mig_fresh");
}

typedef struct migrate_racer {
    const char *url;
    pthread_barrier_t *go;
    store_t *st;
    int rc;
    int version;
    store_error_t err;
} migrate_racer_t;

static void *migrate_race_main(void *arg)
{
    migrate_racer_t *r = arg;
    pthread_barrier_wait(r->go);
    r->rc = store_migrate(r->st, &r->version, &r->err);
    return NULL;
}

static void store__migrate__concurrent_starters_apply_once(void **state)
{
    enum { RACERS = 4, ROUNDS = 3 };
    fixture_t *f = *state;
    int round;

    for (round = 0; round < ROUNDS; round++) {
        migrate_racer_t r[RACERS];
        pthread_t th[RACERS];
        pthread_barrier_t go;
        char *url = scratch_db(f, "bw_mig_race");
        PGconn *c;
        int i;

        assert_int_equal(pthread_barrier_init(&go, NULL, RACERS), 0);
        for (i = 0; i < RACERS; i++) {
            memset(&r[i], 0, sizeof r[i]);
            r[i].url = url;
            r[i].go = &go;
            r[i].rc = 99;
            r[i].st = store_open(url, "bitween-race"); /* connected before the start */
        }
        for (i = 0; i < RACERS; i++)
            assert_int_equal(pthread_create(&th[i], NULL, migrate_race_main, &r[i]), 0);
        for (i = 0; i < RACERS; i++)
            pthread_join(th[i], NULL);
        pthread_barrier_destroy(&go);
        for (i = 0; i < RACERS; i++) {
            if (r[i].rc != STORE_OK)
                fail_msg("round %d, starter %d: store_migrate returned %s: %s", round, i,
                         store_strerror(r[i].rc), r[i].err.message);
            assert_int_equal(r[i].version, migrate_latest());
        }
        c = pg_open(url);
        assert_int_equal(pg_int(c, "SELECT count(*) FROM schema_migrations"),
                         (long long)migrate_script_count);
        assert_int_equal(pg_int(c, "SELECT count(DISTINCT version) FROM schema_migrations"),
                         (long long)migrate_script_count);
        /* Every starter released the migration lock (they are still connected). */
        assert_int_equal(pg_int(f->admin, "SELECT count(*) FROM pg_locks l JOIN pg_database d "
                                          "ON d.oid = l.database WHERE l.locktype = 'advisory' "
                                          "AND d.datname = 'bw_mig_race'"),
                         0);
        PQfinish(c);
        for (i = 0; i < RACERS; i++)
            store_free(r[i].st);
        free(url);
        scratch_drop(f, "bw_mig_race");
    }
}

/* Names of the objects in schema public, with the migration rows. */
static char *schema_fingerprint(PGconn *c)
{
    return pg_text(c, "SELECT coalesce((SELECT string_agg(relname || ':' || relkind::text, ',' "
                      "ORDER BY relname) FROM pg_class WHERE relnamespace = "
                      "'public'::regnamespace), '') || '|' || coalesce((SELECT "
                      "string_agg(proname, ',' ORDER BY proname) FROM pg_proc WHERE "
                      "pronamespace = 'public'::regnamespace), '') || '|' || "
                      "coalesce((SELECT string_agg(version || ' ' || name || ' ' || applied_at, "
                      "',' ORDER BY version) FROM schema_migrations), '')");
}

static void store__migrate__newer_schema_is_refused(void **state)
{
    fixture_t *f = *state;
    char *url = scratch_db(f, "bw_mig_newer");
    store_t *st = store_open(url, "bitween-newer");
    PGconn *c = pg_open(url);
    store_error_t err;
    char sql[256], want[64], *before, *after;
    int version = -1;

    /* (1) A migrated database that a newer binary has touched since. */
    assert_store(STORE_OK, store_migrate(st, &version, &err), &err);
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations (version, name) VALUES (%d, 'from_the_future')",
             migrate_latest() + 1);
    pg_ok(c, sql);
    before = schema_fingerprint(c);
    version = -1;
    assert_store(STORE_ESCHEMA, store_migrate(st, &version, &err), &err);
    assert_int_equal(err.code, STORE_ESCHEMA);
    assert_int_equal(version, -1);
    print_message("    refusal message: %s\n", err.message);
    assert_non_null(strstr(err.message, "newer"));
    snprintf(want, sizeof want, "%d", migrate_latest() + 1);
    assert_non_null(strstr(err.message, want));
    after = schema_fingerprint(c);
    assert_string_equal(before, after);
    free(before);
    free(after);
    /* The refusal released the migration lock: a second starter is refused too
     * (it would time out on the lock otherwise), and nothing holds it. */
    {
        store_t *st2 = store_open(url, "bitween-newer-2");
        assert_store(STORE_ESCHEMA, store_migrate(st2, NULL, &err), &err);
        store_free(st2);
    }
    assert_int_equal(pg_int(f->admin, "SELECT count(*) FROM pg_locks l JOIN pg_database d ON "
                                      "d.oid = l.database WHERE l.locktype = 'advisory' AND "
                                      "d.datname = 'bw_mig_newer'"),
                     0);
    /* The store still works on the data it knows. */
    assert_store(STORE_OK, store_ping(st, &err), &err);
    PQfinish(c);
    store_free(st);
    free(url);
    scratch_drop(f, "bw_mig_newer");

    /* (2) An empty database that only records a future version: nothing is
     * created (a binary that proceeded would create the tables). */
    url = scratch_db(f, "bw_mig_newer");
    c = pg_open(url);
    pg_ok(c, "CREATE TABLE schema_migrations (version integer PRIMARY KEY, name text NOT NULL, "
             "applied_at timestamptz NOT NULL DEFAULT now())");
    snprintf(sql, sizeof sql,
             "INSERT INTO schema_migrations (version, name) VALUES (%d, 'from_the_future')",
             migrate_latest() + 1);
    pg_ok(c, sql);
    before = schema_fingerprint(c);
    st = store_open(url, "bitween-newer-3");
    assert_store(STORE_ESCHEMA, store_migrate(st, NULL, &err), &err);
    after = schema_fingerprint(c);
    assert_string_equal(before, after);
    assert_int_equal(pg_int(c, "SELECT count(*) FROM pg_class WHERE relnamespace = "
                               "'public'::regnamespace AND relname <> 'schema_migrations' AND "
                               "relname <> 'schema_migrations_pkey'"),
                     0);
    free(before);
    free(after);
    PQfinish(c);
    store_free(st);
    free(url);
    scratch_drop(f, "bw_mig_newer");
}

static void store__user_load__unmigrated_database_is_eschema(void **state)
{
    fixture_t *f = *state;
    char *url = scratch_db(f, "bw_unmigrated");
    store_t *st = store_open(url, "bitween-unmigrated");
    shares_item_t *item = NULL;
    store_error_t err;

    assert_store(STORE_ESCHEMA, store_user_load(st, "a@example.org", &item, &err), &err);
    assert_null(item);
    /* The connection is still usable. */
    assert_store(STORE_OK, store_ping(st, &err), &err);
    store_free(st);
    free(url);
    scratch_drop(f, "bw_unmigrated");
}

/* ---- writes: round trips --------------------------------------------------- */

#define H64A "00112233445566778899aabbccddeeff00112233445566778899aabbccddeeff"

static void store__replace__round_trip_through_load(void **state)
{
    fixture_t *f = *state;
    const char *jid = "roundtrip@example.org";
    static const char *const names[] = {
        "plain name.mkv",
        "a \"quoted\" name",
        "back\\slash\\",
        "{braces}, commas, and (parens)",
        "NULL",
        "  leading and trailing spaces  ",
        "'single' quotes; DROP TABLE shares; --",
        "\xc3\xa9t\xc3\xa9 \xe6\x97\xa5\xe6\x9c\xac\xe8\xaa\x9e \xf0\x9f\x8e\xac.mkv",
        "%_wild*?",
    };
    shares_item_t *item = item_new(), *second = item_new(), *got;
    size_t laptop, phone, i, n = sizeof names / sizeof names[0], ri2;
    char h[41], why[512];
    store_error_t err;

    laptop = item_res(item, "laptop \xe2\x9c\x93 \"home\"");
    phone = item_res(item, "phone");
    for (i = 0; i < n; i++) {
        hash40(h, 100, i);
        item_share(item, laptop, h, names[i], i == 0 ? (uint64_t)INT64_MAX : i == 1 ? 0 : i * 7);
    }
    item_share(item, laptop, H64A, "v2 torrent", 12345);
    item_share(item, phone, "ABCDEF0123456789ABCDEF0123456789ABCDEF01", "upper hash", 1);
    item_addr(item, laptop, "203.0.113.7", 6881);
    item_addr(item, laptop, "2001:db8::7", 6881);
    item_addr(item, laptop, "2001:DB8:0:0:0:0:0:8", 1);
    item_addr(item, laptop, "::ffff:192.0.2.1", 65535);
    item_addr(item, laptop, "203.0.113.7", 6882);
    item_addr(item, phone, "::1", 51413);

    replace_ok(f->st, jid, "laptop \xe2\x9c\x93 \"home\"", 1, item, laptop, NULL);
    replace_ok(f->st, jid, "phone", 7, item, phone, NULL);
    got = load(f->st, jid);
    if (!items_equal(item, got, why, sizeof why))
        fail_msg("loaded state differs from the written one: %s", why);
    assert_int_equal(shares_item_share_count(got, find_res(got, "phone")), 1);
    {
        shares_share_t sh;
        size_t li = find_res(got, "laptop \xe2\x9c\x93 \"home\"");
        int seen_max = 0;
        assert_int_equal(shares_item_share_count(got, li), n + 1);
        for (i = 0; i < n + 1; i++) {
            assert_int_equal(shares_item_share(got, li, i, &sh), SHARES_OK);
            seen_max |= sh.size == (uint64_t)INT64_MAX;
        }
        assert_true(seen_max);
        assert_int_equal(shares_item_address_count(got, li), 5);
    }
    shares_item_free(got);
    assert_int_equal(stored_seq(f->st, jid, "phone"), 7);

    /* Replacing keeps nothing of the previous state: one share kept with a
     * new name and size, others dropped, one new; addresses replaced. */
    ri2 = item_res(second, "laptop \xe2\x9c\x93 \"home\"");
    hash40(h, 100, 3);
    item_share(second, ri2, h, "renamed", 99);
    hash40(h, 101, 0);
    item_share(second, ri2, h, "new one", 5);
    item_addr(second, ri2, "2001:db8::7", 6881);
    item_addr(second, ri2, "198.51.100.1", 1024);
    replace_ok(f->st, jid, "laptop \xe2\x9c\x93 \"home\"", 2, second, ri2, NULL);
    assert_resource_is(f->st, jid, "laptop \xe2\x9c\x93 \"home\"", second, ri2);
    assert_resource_is(f->st, jid, "phone", item, phone); /* untouched */

    /* The whole merged item equals the written one serialized the same way. */
    {
        xmpp_ctx_t *ctx = xmpp_ctx_new(NULL, NULL);
        shares_item_t *want = item_new();
        char d1[SHARES_DIGEST_HEX], d2[SHARES_DIGEST_HEX];
        shares_error_t se;
        size_t a = item_res(want, "laptop \xe2\x9c\x93 \"home\""), b = item_res(want, "phone");
        shares_share_t sh;
        shares_address_t ad;
        assert_non_null(ctx);
        for (i = 0; i < shares_item_share_count(second, ri2); i++) {
            shares_item_share(second, ri2, i, &sh);
            item_share(want, a, sh.hash, sh.name, sh.size);
        }
        for (i = 0; i < shares_item_address_count(second, ri2); i++) {
            shares_item_address(second, ri2, i, &ad);
            item_addr(want, a, ad.address, ad.port);
        }
        for (i = 0; i < shares_item_share_count(item, phone); i++) {
            shares_item_share(item, phone, i, &sh);
            item_share(want, b, sh.hash, sh.name, sh.size);
        }
        for (i = 0; i < shares_item_address_count(item, phone); i++) {
            shares_item_address(item, phone, i, &ad);
            item_addr(want, b, ad.address, ad.port);
        }
        got = load(f->st, jid);
        assert_int_equal(shares_item_digest(want, d1, &se), SHARES_OK);
        assert_int_equal(shares_item_digest(got, d2, &se), SHARES_OK);
        assert_string_equal(d1, d2);
        shares_item_free(got);
        shares_item_free(want);
        xmpp_ctx_free(ctx);
    }

    /* An unknown user loads as an empty item. */
    got = load(f->st, "nobody-at-all@example.org");
    assert_int_equal(shares_item_resource_count(got), 0);
    shares_item_free(got);
    /* Argument checks. */
    assert_store(STORE_EINVAL, store_resource_replace(f->st, "", "x", 1, item, laptop, NULL, &err),
                 &err);
    assert_store(STORE_EINVAL, store_resource_replace(f->st, jid, "", 1, item, laptop, NULL, &err),
                 &err);
    assert_store(STORE_EINVAL,
                 store_resource_replace(f->st, jid, "x", -1, item, laptop, NULL, &err), &err);
    assert_store(STORE_EINVAL, store_resource_replace(f->st, jid, "x", 1, item, 5, NULL, &err),
                 &err);
    /* A JID the schema refuses is EINVAL too (database constraint). */
    assert_store(STORE_EINVAL,
                 store_resource_replace(f->st, "no-domain", "x", 1, item, laptop, NULL, &err),
                 &err);
    assert_string_equal(err.sqlstate, "23514");
    shares_item_free(item);
    shares_item_free(second);
}

static void store__replace__empty_state_registers_resource(void **state)
{
    fixture_t *f = *state;
    const char *jid = "empty@example.org";
    shares_item_t *item = item_new(), *got;
    size_t ri = item_res(item, "idle");

    replace_ok(f->st, jid, "idle", 0, item, ri, NULL);
    got = load(f->st, jid);
    assert_int_equal(shares_item_resource_count(got), 1);
    assert_string_equal(shares_item_resource(got, 0), "idle");
    assert_int_equal(shares_item_share_count(got, 0), 0);
    assert_int_equal(shares_item_address_count(got, 0), 0);
    shares_item_free(got);
    shares_item_free(item);
}

static void store__replace__older_seq_is_stale(void **state)
{
    fixture_t *f = *state;
    const char *jid = "stale@example.org";
    shares_item_t *a, *b;
    size_t ra, rb;
    snapshot_t snap;
    store_error_t err;
    const char *hashes[1];
    char h[41];

    a = simple_state("desk", 10, 3, &ra);
    b = simple_state("desk", 11, 2, &rb);
    replace_ok(f->st, jid, "desk", 5, a, ra, NULL);
    snapshot_take(f->st, jid, &snap);
    assert_store(STORE_ESTALE, store_resource_replace(f->st, jid, "desk", 4, b, rb, NULL, &err),
                 &err);
    assert_int_equal(err.code, STORE_ESTALE);
    /* the refusal says what is stored, so that the agent can catch up */
    assert_int_equal(err.stored_seq, 5);
    assert_non_null(strstr(err.message, "older than the stored one, 5"));
    assert_unchanged(f->st, jid, &snap);
    assert_store(STORE_ESTALE, store_shares_add(f->st, jid, "desk", 4, b, rb, NULL, &err), &err);
    assert_int_equal(err.stored_seq, 5);
    assert_unchanged(f->st, jid, &snap);
    hash40(h, 10, 0);
    hashes[0] = h;
    assert_store(STORE_ESTALE, store_shares_remove(f->st, jid, "desk", 0, hashes, 1, &err), &err);
    assert_int_equal(err.stored_seq, 5);
    assert_unchanged(f->st, jid, &snap);
    /* any other outcome leaves it at -1 */
    assert_int_equal(store_resource_replace(f->st, jid, "desk", 5, a, ra, NULL, &err), STORE_OK);
    assert_int_equal(err.stored_seq, -1);
    assert_int_equal(store_shares_add(f->st, jid, "nodesk", 9, b, rb, NULL, &err), STORE_ENOTFOUND);
    assert_int_equal(err.stored_seq, -1);
    assert_resource_is(f->st, jid, "desk", a, ra);
    assert_int_equal(stored_seq(f->st, jid, "desk"), 5);
    /* A NULL error struct still gets the right code. */
    assert_int_equal(store_resource_replace(f->st, jid, "desk", 1, b, rb, NULL, NULL),
                     STORE_ESTALE);
    snapshot_free(&snap);
    shares_item_free(a);
    shares_item_free(b);
}

static void store__replace__equal_seq_reapplies(void **state)
{
    fixture_t *f = *state;
    const char *jid = "equalseq@example.org";
    shares_item_t *a, *b;
    size_t ra, rb;
    snapshot_t snap;

    a = simple_state("desk", 20, 3, &ra);
    b = simple_state("desk", 21, 4, &rb);
    replace_ok(f->st, jid, "desk", 9, a, ra, NULL);
    replace_ok(f->st, jid, "desk", 9, b, rb, NULL); /* same seq: applied */
    assert_resource_is(f->st, jid, "desk", b, rb);
    snapshot_take(f->st, jid, &snap);
    replace_ok(f->st, jid, "desk", 9, b, rb, NULL); /* a retry: idempotent */
    assert_unchanged(f->st, jid, &snap);
    assert_int_equal(stored_seq(f->st, jid, "desk"), 9);
    replace_ok(f->st, jid, "desk", 10, a, ra, NULL);
    assert_resource_is(f->st, jid, "desk", a, ra);
    assert_int_equal(stored_seq(f->st, jid, "desk"), 10);
    snapshot_free(&snap);
    shares_item_free(a);
    shares_item_free(b);
}

static void store__add__upserts_and_remove_deletes(void **state)
{
    fixture_t *f = *state;
    const char *jid = "incremental@example.org";
    shares_item_t *base, *add = item_new(), *want = item_new();
    size_t rb, ra = item_res(add, "nas"), rw = item_res(want, "nas");
    char h0[41], h1[41], h2[41], hnew[41], hup[41], unknown[41];
    const char *rm[3];
    store_error_t err;
    size_t i;

    base = simple_state("nas", 30, 3, &rb); /* shares (30,0..2) */
    replace_ok(f->st, jid, "nas", 1, base, rb, NULL);
    hash40(h0, 30, 0);
    hash40(h1, 30, 1);
    hash40(h2, 30, 2);
    hash40(hnew, 31, 0);
    /* Update (30,1) by hash, add a new one. */
    item_share(add, ra, h1, "renamed \"one\"", (uint64_t)INT64_MAX);
    item_share(add, ra, hnew, "brand new", 42);
    assert_store(STORE_OK, store_shares_add(f->st, jid, "nas", 2, add, ra, NULL, &err), &err);
    item_share(want, rw, h0, "file 30-0.bin", 30000);
    item_share(want, rw, h1, "renamed \"one\"", (uint64_t)INT64_MAX);
    item_share(want, rw, h2, "file 30-2.bin", 30002);
    item_share(want, rw, hnew, "brand new", 42);
    item_addr(want, rw, "192.0.2.10", 6881); /* addresses untouched by add */
    assert_resource_is(f->st, jid, "nas", want, rw);
    assert_int_equal(stored_seq(f->st, jid, "nas"), 2);

    /* Remove two (one given in uppercase) and an unknown hash. */
    for (i = 0; i < 40; i++)
        hup[i] = (char)(h0[i] >= 'a' && h0[i] <= 'f' ? h0[i] - 'a' + 'A' : h0[i]);
    hup[40] = '\0';
    hash40(unknown, 99, 99);
    rm[0] = hup;
    rm[1] = hnew;
    rm[2] = unknown;
    assert_store(STORE_OK, store_shares_remove(f->st, jid, "nas", 3, rm, 3, &err), &err);
    shares_item_free(want);
    want = item_new();
    rw = item_res(want, "nas");
    item_share(want, rw, h1, "renamed \"one\"", (uint64_t)INT64_MAX);
    item_share(want, rw, h2, "file 30-2.bin", 30002);
    item_addr(want, rw, "192.0.2.10", 6881);
    assert_resource_is(f->st, jid, "nas", want, rw);
    assert_int_equal(stored_seq(f->st, jid, "nas"), 3);
    /* Equal seq re-applies (a retried removal is a no-op). */
    assert_store(STORE_OK, store_shares_remove(f->st, jid, "nas", 3, rm, 3, &err), &err);
    assert_resource_is(f->st, jid, "nas", want, rw);
    /* Malformed hash: EINVAL before anything is sent. */
    rm[0] = "xyz";
    assert_store(STORE_EINVAL, store_shares_remove(f->st, jid, "nas", 4, rm, 1, &err), &err);
    assert_int_equal(stored_seq(f->st, jid, "nas"), 3);
    /* Removing nothing still advances seq. */
    assert_store(STORE_OK, store_shares_remove(f->st, jid, "nas", 4, NULL, 0, &err), &err);
    assert_int_equal(stored_seq(f->st, jid, "nas"), 4);
    assert_resource_is(f->st, jid, "nas", want, rw);
    shares_item_free(base);
    shares_item_free(add);
    shares_item_free(want);
}

static void store__add__unregistered_resource_is_not_found(void **state)
{
    fixture_t *f = *state;
    const char *jid = "unregistered@example.org";
    shares_item_t *base, *add;
    size_t rb, ra;
    store_error_t err;
    store_resources_t rs;
    const char *rm[1];
    char h[41];
    snapshot_t snap;

    add = simple_state("ghost", 40, 2, &ra);
    hash40(h, 40, 0);
    rm[0] = h;
    /* Unknown user. */
    assert_store(STORE_ENOTFOUND, store_shares_add(f->st, jid, "ghost", 1, add, ra, NULL, &err),
                 &err);
    assert_string_equal(err.sqlstate, "BW002");
    assert_store(STORE_ENOTFOUND, store_shares_remove(f->st, jid, "ghost", 1, rm, 1, &err), &err);
    assert_store(STORE_OK, store_resources_list(f->st, jid, NULL, NULL, 10, &rs, &err), &err);
    assert_int_equal(rs.n, 0);
    store_resources_free(&rs);
    /* Known user, unknown resource. */
    base = simple_state("real", 41, 2, &rb);
    replace_ok(f->st, jid, "real", 1, base, rb, NULL);
    snapshot_take(f->st, jid, &snap);
    assert_store(STORE_ENOTFOUND, store_shares_add(f->st, jid, "ghost", 1, add, ra, NULL, &err),
                 &err);
    assert_store(STORE_ENOTFOUND, store_shares_remove(f->st, jid, "ghost", 1, rm, 1, &err), &err);
    assert_int_equal(store_shares_add(f->st, jid, "ghost", 1, add, ra, NULL, NULL),
                     STORE_ENOTFOUND);
    assert_unchanged(f->st, jid, &snap);
    snapshot_free(&snap);
    shares_item_free(base);
    shares_item_free(add);
}

/* ---- quotas ------------------------------------------------------------------ */

static void store__replace__quota_on_resources(void **state)
{
    fixture_t *f = *state;
    const char *jid = "quota-res@example.org";
    store_quota_t q = {.max_resources = 2};
    shares_item_t *item = item_new();
    size_t r1 = item_res(item, "one"), r2 = item_res(item, "two"), r3 = item_res(item, "three");
    char h[41];
    snapshot_t snap;
    store_error_t err;

    hash40(h, 50, 1);
    item_share(item, r1, h, "a", 1);
    hash40(h, 50, 2);
    item_share(item, r2, h, "b", 2);
    hash40(h, 50, 3);
    item_share(item, r3, h, "c", 3);
    replace_ok(f->st, jid, "one", 1, item, r1, &q);
    replace_ok(f->st, jid, "two", 1, item, r2, &q);
    snapshot_take(f->st, jid, &snap);
    assert_store(STORE_ELIMIT, store_resource_replace(f->st, jid, "three", 1, item, r3, &q, &err),
                 &err);
    assert_string_equal(err.sqlstate, "BW001");
    print_message("    quota message: %s\n", err.message);
    assert_unchanged(f->st, jid, &snap);
    /* A NULL error struct still gets the right code (not "unavailable"). */
    assert_int_equal(store_resource_replace(f->st, jid, "three", 1, item, r3, &q, NULL),
                     STORE_ELIMIT);
    assert_unchanged(f->st, jid, &snap);
    /* Existing resources can still be updated at the cap. */
    replace_ok(f->st, jid, "one", 2, item, r3, &q);
    /* And a freed slot can be taken. */
    assert_store(STORE_OK, store_resource_remove(f->st, jid, "two", &err), &err);
    replace_ok(f->st, jid, "three", 1, item, r3, &q);
    snapshot_free(&snap);
    snapshot_take(f->st, jid, &snap);
    assert_int_equal(shares_item_resource_count(snap.item), 2);
    snapshot_free(&snap);
    shares_item_free(item);
}

static void store__replace__quota_on_shares(void **state)
{
    fixture_t *f = *state;
    const char *jid = "quota-shares@example.org";
    store_quota_t q = {.max_shares = 3};
    shares_item_t *three, *four, *add = item_new(), *one = item_new();
    size_t r3, r4, ra = item_res(add, "box"), r1 = item_res(one, "box");
    char h[41];
    snapshot_t snap;
    store_error_t err;

    three = simple_state("box", 60, 3, &r3);
    four = simple_state("box", 61, 4, &r4);
    replace_ok(f->st, jid, "box", 1, three, r3, &q);
    snapshot_take(f->st, jid, &snap);
    assert_store(STORE_ELIMIT, store_resource_replace(f->st, jid, "box", 2, four, r4, &q, &err),
                 &err);
    assert_unchanged(f->st, jid, &snap);
    /* Incremental add over the cap. */
    hash40(h, 62, 0);
    item_share(add, ra, h, "fourth", 4);
    assert_store(STORE_ELIMIT, store_shares_add(f->st, jid, "box", 2, add, ra, &q, &err), &err);
    assert_unchanged(f->st, jid, &snap);
    /* Updating an existing share by hash does not count twice. */
    hash40(h, 60, 0);
    item_share(one, r1, h, "same hash, new name", 7);
    assert_store(STORE_OK, store_shares_add(f->st, jid, "box", 2, one, r1, &q, &err), &err);
    snapshot_free(&snap);
    snapshot_take(f->st, jid, &snap);
    assert_int_equal(shares_item_share_count(snap.item, 0), 3);
    /* Without a quota the same add passes. */
    assert_store(STORE_OK, store_shares_add(f->st, jid, "box", 3, add, ra, NULL, &err), &err);
    snapshot_free(&snap);
    snapshot_take(f->st, jid, &snap);
    assert_int_equal(shares_item_share_count(snap.item, 0), 4);
    snapshot_free(&snap);
    shares_item_free(three);
    shares_item_free(four);
    shares_item_free(add);
    shares_item_free(one);
}

static void store__replace__quota_on_addresses(void **state)
{
    fixture_t *f = *state;
    const char *jid = "quota-addr@example.org";
    store_quota_t q = {.max_addresses = 2};
    shares_item_t *ok, *over;
    size_t ro, rv;
    snapshot_t snap;
    store_error_t err;

    ok = simple_state("phone", 70, 1, &ro);
    item_addr(ok, ro, "2001:db8::1", 6881); /* 2 addresses */
    over = simple_state("phone", 71, 1, &rv);
    item_addr(over, rv, "2001:db8::1", 6881);
    item_addr(over, rv, "2001:db8::2", 6881); /* 3 addresses */
    replace_ok(f->st, jid, "phone", 1, ok, ro, &q);
    snapshot_take(f->st, jid, &snap);
    assert_store(STORE_ELIMIT, store_resource_replace(f->st, jid, "phone", 2, over, rv, &q, &err),
                 &err);
    assert_unchanged(f->st, jid, &snap);
    /* A new resource over the cap is not created either. */
    assert_store(STORE_ELIMIT, store_resource_replace(f->st, jid, "tablet", 1, over, rv, &q, &err),
                 &err);
    assert_unchanged(f->st, jid, &snap);
    snapshot_free(&snap);
    shares_item_free(ok);
    shares_item_free(over);
}

/* ---- whole or nothing, constraints -------------------------------------- */

static void store__replace__failed_batch_keeps_previous_state(void **state)
{
    fixture_t *f = *state;
    const char *jid = "failbatch@example.org";
    shares_item_t *base;
    size_t rb;
    snapshot_t snap;
    char h1[41], h2[41], h3[41], hs[41], hashes[200], dup[200], dupstored[200], st5[6];
    static const char *replace_sql =
        "SELECT bitween_resource_replace($1, $2, $3, $4::text[], $5::text[], $6::bigint[], "
        "$7::inet[], $8::integer[], 0, 0, 0)";
    static const char *add_sql =
        "SELECT bitween_shares_add($1, $2, $3, $4::text[], $5::text[], $6::bigint[], 0)";
    struct {
        const char *what, *hashes, *names, *sizes, *addrs, *ports, *state;
    } cases[] = {
        {"negative size", hashes, "{a,b,c}", "{1,-5,3}", "{10.0.0.1}", "{6881}", "23514"},
        {"control character in a name", hashes, "{a,\"b\x01x\",c}", "{1,2,3}", "{10.0.0.1}",
         "{6881}", "23514"},
        {"C1 control character in a name", hashes, "{a,\"b\xc2\x85x\",c}", "{1,2,3}", "{10.0.0.1}",
         "{6881}", "23514"},
        {"empty name", hashes, "{a,\"\",c}", "{1,2,3}", "{10.0.0.1}", "{6881}", "23514"},
        {"NULL name", hashes, "{a,NULL,c}", "{1,2,3}", "{10.0.0.1}", "{6881}", "23502"},
        {"bad hash", NULL, "{a,b,c}", "{1,2,3}", "{10.0.0.1}", "{6881}", "22023"},
        {"duplicate hash", dup, "{a,b,c}", "{1,2,3}", "{10.0.0.1}", "{6881}", "23505"},
        {"duplicate of a stored hash", dupstored, "{a,b,c}", "{1,2,3}", "{10.0.0.1}", "{6881}",
         "23505"},
        {"port 0", hashes, "{a,b,c}", "{1,2,3}", "{10.0.0.1,10.0.0.2,10.0.0.3}", "{1,0,2}",
         "23514"},
        {"port 65536", hashes, "{a,b,c}", "{1,2,3}", "{10.0.0.1,10.0.0.2,10.0.0.3}", "{1,65536,2}",
         "23514"},
        {"network instead of an address", hashes, "{a,b,c}", "{1,2,3}",
         "{10.0.0.1,10.0.0.0/8,10.0.0.3}", "{1,2,3}", "23514"},
        {"arrays of different lengths", hashes, "{a,b}", "{1,2,3}", "{10.0.0.1}", "{6881}",
         "22023"},
    };
    char badhash[200];
    size_t i;

    base = simple_state("tv", 80, 3, &rb);
    replace_ok(f->st, jid, "tv", 5, base, rb, NULL);
    snapshot_take(f->st, jid, &snap);
    hash40(h1, 81, 1);
    hash40(h2, 81, 2);
    hash40(h3, 81, 3);
    snprintf(hashes, sizeof hashes, "{%s,%s,%s}", h1, h2, h3);
    snprintf(dup, sizeof dup, "{%s,%s,%s}", h1, h2, h1);
    hash40(hs, 80, 1); /* stored in the resource already */
    snprintf(dupstored, sizeof dupstored, "{%s,%s,%s}", hs, h2, hs);
    snprintf(badhash, sizeof badhash, "{%s,%.39sg,%s}", h1, h2, h3);
    cases[5].hashes = badhash;

    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        const char *p[8] = {jid,
                            "tv",
                            "6",
                            cases[i].hashes,
                            cases[i].names,
                            cases[i].sizes,
                            cases[i].addrs,
                            cases[i].ports};
        pg_try(f->db, replace_sql, 8, p, st5);
        if (strcmp(st5, cases[i].state) != 0)
            fail_msg("replace with %s: SQLSTATE \"%s\", expected %s", cases[i].what, st5,
                     cases[i].state);
        assert_unchanged(f->st, jid, &snap);
        if (i < 8) { /* share cases also through the incremental add */
            pg_try(f->db, add_sql, 6, p, st5);
            if (strcmp(st5, cases[i].state) != 0)
                fail_msg("add with %s: SQLSTATE \"%s\", expected %s", cases[i].what, st5,
                         cases[i].state);
            assert_unchanged(f->st, jid, &snap);
        }
    }
    /* Control: the same call with good data applies. */
    {
        const char *p[8] = {jid, "tv", "6", hashes, "{a,b,c}", "{1,2,3}", "{10.0.0.1}", "{6881}"};
        pg_try(f->db, replace_sql, 8, p, st5);
        assert_string_equal(st5, "");
        assert_int_equal(stored_seq(f->st, jid, "tv"), 6);
    }
    snapshot_free(&snap);
    shares_item_free(base);
}

/* `tmpl` with every "@RID@" replaced by `rid`. */
static void subst_rid(char *out, size_t outlen, const char *tmpl, const char *rid)
{
    size_t len = 0;
    const char *p;
    while ((p = strstr(tmpl, "@RID@")) != NULL) {
        len += (size_t)snprintf(out + len, outlen - len, "%.*s%s", (int)(p - tmpl), tmpl, rid);
        assert_true(len < outlen);
        tmpl = p + 5;
    }
    snprintf(out + len, outlen - len, "%s", tmpl);
}

static void store__constraints__reject_bad_rows(void **state)
{
    fixture_t *f = *state;
    const char *jid = "constraints@example.org";
    shares_item_t *base;
    size_t rb, i;
    char rid[32], sql[512], st5[6];
    snapshot_t snap;
    static const struct {
        const char *what, *sql;
    } bad[] = {
        {"hash of 19 bytes", "INSERT INTO shares VALUES (@RID@, '\\x"
                             "00112233445566778899aabbccddeeff001122', 'n', 1)"},
        {"hash of 21 bytes", "INSERT INTO shares VALUES (@RID@, '\\x"
                             "00112233445566778899aabbccddeeff0011223344', 'n', 1)"},
        {"hash of 0 bytes", "INSERT INTO shares VALUES (@RID@, '\\x', 'n', 1)"},
        {"negative size",
         "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), 'n', -1)"},
        {"empty name", "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), '', 1)"},
        {"name with a newline",
         "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), 'a' || chr(10), 1)"},
        {"name with DEL",
         "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), 'a' || chr(127), 1)"},
        {"name with a C1 control",
         "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), 'a' || chr(155), 1)"},
        {"name over 4096 bytes", "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), "
                                 "'hex'), repeat('x', 4097), 1)"},
        {"NULL hash", "INSERT INTO shares VALUES (@RID@, NULL, 'n', 1)"},
        {"port 0", "INSERT INTO addresses VALUES (@RID@, '10.1.2.3', 0)"},
        {"port 65536", "INSERT INTO addresses VALUES (@RID@, '10.1.2.3', 65536)"},
        {"negative port", "INSERT INTO addresses VALUES (@RID@, '10.1.2.3', -1)"},
        {"IPv4 network", "INSERT INTO addresses VALUES (@RID@, '10.0.0.0/8', 6881)"},
        {"IPv6 network", "INSERT INTO addresses VALUES (@RID@, '2001:db8::/32', 6881)"},
        {"empty resource",
         "INSERT INTO resources (user_id, resource, seq) SELECT user_id, '', 0 FROM resources "
         "WHERE id = @RID@"},
        {"resource with a tab",
         "INSERT INTO resources (user_id, resource, seq) SELECT user_id, 'a' || chr(9), 0 FROM "
         "resources WHERE id = @RID@"},
        {"negative seq",
         "INSERT INTO resources (user_id, resource, seq) SELECT user_id, 'neg', -1 FROM "
         "resources WHERE id = @RID@"},
        {"duplicate resource",
         "INSERT INTO resources (user_id, resource, seq) SELECT user_id, resource, 0 FROM "
         "resources WHERE id = @RID@"},
        {"share of a missing resource",
         "INSERT INTO shares VALUES (@RID@ + 1000000, decode(repeat('ab', 20), 'hex'), 'n', 1)"},
        {"empty JID", "INSERT INTO users (jid) SELECT '' WHERE @RID@ > 0"},
        {"JID without a domain", "INSERT INTO users (jid) SELECT 'justaname' WHERE @RID@ > 0"},
        {"full JID", "INSERT INTO users (jid) SELECT 'a@example.org/res' WHERE @RID@ > 0"},
        {"JID with a space", "INSERT INTO users (jid) SELECT 'a b@example.org' WHERE @RID@ > 0"},
        {"uppercase digest",
         "INSERT INTO publishes (user_id, digest, status) SELECT user_id, repeat('AB', 32), 'ok' "
         "FROM resources WHERE id = @RID@"},
        {"short digest",
         "INSERT INTO publishes (user_id, digest, status) SELECT user_id, repeat('ab', 31), 'ok' "
         "FROM resources WHERE id = @RID@"},
        {"unknown status",
         "INSERT INTO publishes (user_id, digest, status) SELECT user_id, repeat('ab', 32), 'meh' "
         "FROM resources WHERE id = @RID@"},
    };
    static const char *good[] = {
        "INSERT INTO shares VALUES (@RID@, decode(repeat('ab', 20), 'hex'), 'ok name', 0)",
        "INSERT INTO shares VALUES (@RID@, decode(repeat('cd', 32), 'hex'), 'v2', "
        "9223372036854775807)",
        "INSERT INTO addresses VALUES (@RID@, '10.1.2.3', 65535)",
        "INSERT INTO addresses VALUES (@RID@, '2001:db8::1/128', 1)",
        "INSERT INTO resources (user_id, resource, seq) SELECT user_id, 'other', 0 FROM "
        "resources WHERE id = @RID@",
        "INSERT INTO publishes (user_id, digest, status) SELECT user_id, repeat('ab', 32), 'ok' "
        "FROM resources WHERE id = @RID@",
    };
    char *v;

    base = simple_state("r", 90, 1, &rb);
    replace_ok(f->st, jid, "r", 1, base, rb, NULL);
    v = pg_text(f->db, "SELECT r.id FROM resources r JOIN users u ON u.id = r.user_id "
                       "WHERE u.jid = 'constraints@example.org' AND r.resource = 'r'");
    snprintf(rid, sizeof rid, "%s", v);
    free(v);
    snapshot_take(f->st, jid, &snap);
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        subst_rid(sql, sizeof sql, bad[i].sql, rid);
        pg_try(f->db, sql, 0, NULL, st5);
        if (strncmp(st5, "23", 2) != 0)
            fail_msg("%s: expected an integrity violation (23xxx), got SQLSTATE \"%s\"\n  %s",
                     bad[i].what, st5, sql);
    }
    assert_unchanged(f->st, jid, &snap);
    /* Control: well-formed rows through the same path are accepted. */
    for (i = 0; i < sizeof good / sizeof good[0]; i++) {
        subst_rid(sql, sizeof sql, good[i], rid);
        pg_try(f->db, sql, 0, NULL, st5);
        if (st5[0])
            fail_msg("good row refused with SQLSTATE %s: %s", st5, sql);
    }
    snapshot_free(&snap);
    shares_item_free(base);
}

/* ---- removal, touch ------------------------------------------------------ */

static void store__resource_remove__removes_and_reports_missing(void **state)
{
    fixture_t *f = *state;
    const char *jid = "remove@example.org";
    shares_item_t *a, *b, *got;
    size_t ra, rb, removed = 99;
    store_error_t err;
    store_resources_t rs;
    char sql[256], *v;

    a = simple_state("a", 100, 2, &ra);
    b = simple_state("b", 101, 2, &rb);
    replace_ok(f->st, jid, "a", 1, a, ra, NULL);
    replace_ok(f->st, jid, "b", 1, b, rb, NULL);
    replace_ok(f->st, "remove-other@example.org", "a", 1, a, ra, NULL);

    assert_store(STORE_OK, store_resource_remove(f->st, jid, "a", &err), &err);
    got = load(f->st, jid);
    assert_int_equal(shares_item_resource_count(got), 1);
    assert_string_equal(shares_item_resource(got, 0), "b");
    shares_item_free(got);
    /* Its rows are gone (cascade), not just hidden. */
    assert_int_equal(pg_int(f->db, "SELECT count(*) FROM shares s JOIN resources r ON r.id = "
                                   "s.resource_id JOIN users u ON u.id = r.user_id WHERE "
                                   "u.jid = 'remove@example.org'"),
                     2);
    assert_store(STORE_ENOTFOUND, store_resource_remove(f->st, jid, "a", &err), &err);
    assert_store(STORE_ENOTFOUND, store_resource_remove(f->st, "nobody@example.org", "a", &err),
                 &err);
    assert_int_equal(store_resource_remove(f->st, jid, "a", NULL), STORE_ENOTFOUND);
    assert_store(STORE_EINVAL, store_resource_remove(f->st, jid, NULL, &err), &err);

    /* Touch: last_seen moves, ENOTFOUND when gone. */
    snprintf(sql, sizeof sql,
             "UPDATE resources SET last_seen = '2000-01-01Z' WHERE resource = 'b' "
             "AND user_id = (SELECT id FROM users WHERE jid = '%s')",
             jid);
    pg_ok(f->db, sql);
    assert_store(STORE_OK, store_resources_list(f->st, jid, NULL, NULL, 10, &rs, &err), &err);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].last_seen, "2000-01-01T00:00:00.000000Z");
    store_resources_free(&rs);
    assert_store(STORE_OK, store_resource_touch(f->st, jid, "b", &err), &err);
    assert_store(STORE_OK, store_resources_list(f->st, jid, NULL, NULL, 10, &rs, &err), &err);
    assert_int_equal(rs.n, 1);
    assert_true(strncmp(rs.v[0].last_seen, "2000-", 5) != 0);
    v = pg_text(f->db, "SELECT to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD')");
    assert_memory_equal(rs.v[0].last_seen, v, 10);
    free(v);
    store_resources_free(&rs);
    assert_store(STORE_ENOTFOUND, store_resource_touch(f->st, jid, "a", &err), &err);

    /* Remove all resources of a user. */
    replace_ok(f->st, jid, "c", 1, a, ra, NULL);
    assert_store(STORE_OK, store_user_remove_resources(f->st, jid, &removed, &err), &err);
    assert_int_equal(removed, 2);
    got = load(f->st, jid);
    assert_int_equal(shares_item_resource_count(got), 0);
    shares_item_free(got);
    assert_store(STORE_ENOTFOUND, store_resource_touch(f->st, jid, "b", &err), &err);
    removed = 99;
    assert_store(STORE_OK, store_user_remove_resources(f->st, jid, &removed, &err), &err);
    assert_int_equal(removed, 0);
    assert_store(STORE_OK, store_user_remove_resources(f->st, jid, NULL, &err), &err);
    /* The other user is untouched. */
    assert_resource_is(f->st, "remove-other@example.org", "a", a, ra);
    /* A removed resource registers again from scratch (any seq). */
    replace_ok(f->st, jid, "b", 0, b, rb, NULL);
    assert_resource_is(f->st, jid, "b", b, rb);
    shares_item_free(a);
    shares_item_free(b);
}

/* ---- listings --------------------------------------------------------------- */

static void store__users_list__pages_cover_every_user_once(void **state)
{
    fixture_t *f = *state;
    enum { USERS = 23, PAGE = 5 };
    int seen[USERS] = {0};
    char jid[64], after[64];
    const char *cursor = NULL;
    store_error_t err;
    store_users_t us;
    size_t total = 0, pages = 0, i;
    int u;

    reset_tables(f);
    for (u = 0; u < USERS; u++) {
        size_t ri;
        shares_item_t *item = simple_state("main", 200 + (uint64_t)u, (size_t)(u % 4), &ri);
        snprintf(jid, sizeof jid, "list%02d@example.org", u);
        replace_ok(f->st, jid, "main", 1, item, ri, NULL);
        if (u % 3 == 0)
            replace_ok(f->st, jid, "second", 1, item, ri, NULL);
        shares_item_free(item);
    }
    /* Users without a resource are not listed. */
    {
        size_t ri;
        shares_item_t *item = simple_state("gone", 299, 1, &ri);
        replace_ok(f->st, "list-gone@example.org", "gone", 1, item, ri, NULL);
        assert_store(STORE_OK, store_resource_remove(f->st, "list-gone@example.org", "gone", &err),
                     &err);
        assert_store(
            STORE_OK,
            store_publish_record(f->st, "list-pub@example.org",
                                 "0000000000000000000000000000000000000000000000000000000000000000",
                                 STORE_PUBLISH_OK, NULL, &err),
            &err);
        shares_item_free(item);
    }
    for (;;) {
        assert_store(STORE_OK, store_users_list(f->st, cursor, PAGE, &us, &err), &err);
        assert_true(us.n <= PAGE);
        pages++;
        for (i = 0; i < us.n; i++) {
            int k;
            if (sscanf(us.v[i].jid, "list%02d@", &k) != 1 || k < 0 || k >= USERS)
                fail_msg("unexpected user %s", us.v[i].jid);
            if (cursor)
                assert_true(strcmp(us.v[i].jid, cursor) > 0);
            if (i)
                assert_true(strcmp(us.v[i].jid, us.v[i - 1].jid) > 0);
            seen[k]++;
            assert_int_equal(us.v[i].n_resources, k % 3 == 0 ? 2 : 1);
            assert_int_equal(us.v[i].n_shares, (uint32_t)((k % 4) * (k % 3 == 0 ? 2 : 1)));
        }
        total += us.n;
        if (us.n < PAGE) {
            store_users_free(&us);
            break;
        }
        snprintf(after, sizeof after, "%s", us.v[us.n - 1].jid);
        cursor = after;
        store_users_free(&us);
    }
    assert_int_equal(total, USERS);
    for (u = 0; u < USERS; u++)
        assert_int_equal(seen[u], 1);
    assert_int_equal(pages, USERS / PAGE + 1);
    assert_store(STORE_EINVAL, store_users_list(f->st, NULL, 0, &us, &err), &err);
    assert_store(STORE_OK, store_users_list(f->st, "zzz", 10, &us, &err), &err);
    assert_int_equal(us.n, 0);
    store_users_free(&us);
}

static void store__resources_list__pages_cover_every_resource_once(void **state)
{
    fixture_t *f = *state;
    enum { USERS = 7, PAGE = 4 };
    int seen[USERS][3] = {{0}};
    char after_jid[64], after_res[64], jid[64], res[16];
    const char *cj = NULL, *cr = NULL;
    store_error_t err;
    store_resources_t rs;
    size_t total = 0, expected = 0, i;
    int u, k;

    reset_tables(f);
    for (u = 0; u < USERS; u++) {
        snprintf(jid, sizeof jid, "res%d@example.org", u);
        for (k = 0; k <= u % 3; k++) {
            size_t ri;
            shares_item_t *item;
            snprintf(res, sizeof res, "dev%d", k);
            item = simple_state(res, 300 + (uint64_t)(u * 10 + k), (size_t)k, &ri);
            replace_ok(f->st, jid, res, 100 + u * 10 + k, item, ri, NULL);
            shares_item_free(item);
            expected++;
        }
    }
    for (;;) {
        assert_store(STORE_OK, store_resources_list(f->st, NULL, cj, cr, PAGE, &rs, &err), &err);
        for (i = 0; i < rs.n; i++) {
            store_resource_t *r = &rs.v[i];
            if (sscanf(r->jid, "res%d@", &u) != 1 || sscanf(r->resource, "dev%d", &k) != 1 ||
                u < 0 || u >= USERS || k < 0 || k > 2)
                fail_msg("unexpected resource %s/%s", r->jid, r->resource);
            seen[u][k]++;
            assert_int_equal(r->seq, 100 + u * 10 + k);
            assert_int_equal(r->n_shares, (uint32_t)k);
            assert_int_equal(r->n_addresses, 1);
            assert_int_equal(strlen(r->registered_at), 27);
            assert_int_equal(r->registered_at[10], 'T');
            assert_int_equal(r->registered_at[26], 'Z');
            assert_int_equal(strlen(r->last_seen), 27);
        }
        total += rs.n;
        if (rs.n < PAGE) {
            store_resources_free(&rs);
            break;
        }
        snprintf(after_jid, sizeof after_jid, "%s", rs.v[rs.n - 1].jid);
        snprintf(after_res, sizeof after_res, "%s", rs.v[rs.n - 1].resource);
        cj = after_jid;
        cr = after_res;
        store_resources_free(&rs);
    }
    assert_int_equal(total, expected);
    for (u = 0; u < USERS; u++)
        for (k = 0; k < 3; k++)
            assert_int_equal(seen[u][k], k <= u % 3 ? 1 : 0);
    /* One user's resources, paged with a cursor inside the user. */
    assert_store(STORE_OK,
                 store_resources_list(f->st, "res5@example.org", NULL, NULL, 2, &rs, &err), &err);
    assert_int_equal(rs.n, 2);
    assert_string_equal(rs.v[0].resource, "dev0");
    assert_string_equal(rs.v[1].resource, "dev1");
    store_resources_free(&rs);
    assert_store(
        STORE_OK,
        store_resources_list(f->st, "res5@example.org", "res5@example.org", "dev1", 2, &rs, &err),
        &err);
    assert_int_equal(rs.n, 1);
    assert_string_equal(rs.v[0].resource, "dev2");
    store_resources_free(&rs);
    /* Half a cursor, limit 0. */
    assert_store(STORE_EINVAL,
                 store_resources_list(f->st, NULL, "res1@example.org", NULL, 2, &rs, &err), &err);
    assert_store(STORE_EINVAL, store_resources_list(f->st, NULL, NULL, NULL, 0, &rs, &err), &err);
}

/* ---- look-ups -------------------------------------------------------------- */

static void store__hash_lookup__finds_every_holder(void **state)
{
    fixture_t *f = *state;
    shares_item_t *item = item_new();
    size_t ra = item_res(item, "alpha"), rb = item_res(item, "beta"), i;
    char h[41], other[41], upper[41], hv2[65];
    store_hits_t hits;
    store_error_t err;

    hash40(h, 400, 1);
    hash40(other, 400, 2);
    item_share(item, ra, h, "shared.iso", 700);
    item_share(item, ra, other, "other.iso", 1);
    item_share(item, rb, h, "same hash, other name", 700);
    item_share(item, rb, H64A, "v2", 2);
    item_addr(item, ra, "2001:db8::1", 7000);
    item_addr(item, ra, "198.51.100.20", 7001);
    item_addr(item, ra, "198.51.100.3", 7002);
    replace_ok(f->st, "lookup-b@example.org", "beta", 1, item, rb, NULL);
    replace_ok(f->st, "lookup-b@example.org", "alpha", 1, item, ra, NULL);
    replace_ok(f->st, "lookup-a@example.org", "alpha", 1, item, ra, NULL);

    for (i = 0; i < 40; i++)
        upper[i] = (char)(h[i] >= 'a' && h[i] <= 'f' ? h[i] - 'a' + 'A' : h[i]);
    upper[40] = '\0';
    assert_store(STORE_OK, store_hash_lookup(f->st, upper, 10, &hits, &err), &err);
    assert_int_equal(hits.n, 3);
    assert_string_equal(hits.v[0].jid, "lookup-a@example.org");
    assert_string_equal(hits.v[0].resource, "alpha");
    assert_string_equal(hits.v[1].jid, "lookup-b@example.org");
    assert_string_equal(hits.v[1].resource, "alpha");
    assert_string_equal(hits.v[2].jid, "lookup-b@example.org");
    assert_string_equal(hits.v[2].resource, "beta");
    for (i = 0; i < 3; i++) {
        assert_string_equal(hits.v[i].hash, h);
        assert_int_equal(hits.v[i].size, 700);
        assert_true(hits.v[i].resource_id > 0);
    }
    assert_string_equal(hits.v[0].name, "shared.iso");
    assert_string_equal(hits.v[2].name, "same hash, other name");
    /* Addresses: IPv4 first, by address bytes; then IPv6. */
    assert_int_equal(hits.v[0].n_addresses, 3);
    assert_string_equal(hits.v[0].addresses[0].address, "198.51.100.3");
    assert_int_equal(hits.v[0].addresses[0].port, 7002);
    assert_string_equal(hits.v[0].addresses[1].address, "198.51.100.20");
    assert_string_equal(hits.v[0].addresses[2].address, "2001:db8::1");
    assert_int_equal(hits.v[0].addresses[2].port, 7000);
    assert_int_equal(hits.v[2].n_addresses, 0);
    assert_null(hits.v[2].addresses);
    store_hits_free(&hits);
    /* Limit. */
    assert_store(STORE_OK, store_hash_lookup(f->st, h, 2, &hits, &err), &err);
    assert_int_equal(hits.n, 2);
    assert_string_equal(hits.v[1].jid, "lookup-b@example.org");
    assert_string_equal(hits.v[1].resource, "alpha");
    store_hits_free(&hits);
    /* v2 hash. */
    for (i = 0; i < 64; i++)
        hv2[i] = (char)(H64A[i] >= 'a' && H64A[i] <= 'f' ? H64A[i] - 'a' + 'A' : H64A[i]);
    hv2[64] = '\0';
    assert_store(STORE_OK, store_hash_lookup(f->st, hv2, 10, &hits, &err), &err);
    assert_int_equal(hits.n, 1);
    assert_string_equal(hits.v[0].hash, H64A);
    store_hits_free(&hits);
    /* Unknown hash: no hit, no error. */
    hash40(h, 401, 1);
    assert_store(STORE_OK, store_hash_lookup(f->st, h, 10, &hits, &err), &err);
    assert_int_equal(hits.n, 0);
    store_hits_free(&hits);
    /* Malformed input and limit 0. */
    assert_store(STORE_EINVAL, store_hash_lookup(f->st, "abc", 10, &hits, &err), &err);
    assert_store(STORE_EINVAL, store_hash_lookup(f->st, "", 10, &hits, &err), &err);
    assert_store(
        STORE_EINVAL,
        store_hash_lookup(f->st, "g123456789abcdef0123456789abcdef01234567", 10, &hits, &err),
        &err);
    assert_store(
        STORE_EINVAL,
        store_hash_lookup(f->st, "0123456789abcdef0123456789abcdef012345678", 10, &hits, &err),
        &err);
    assert_store(STORE_EINVAL, store_hash_lookup(f->st, upper, 0, &hits, &err), &err);
    assert_int_equal(hits.n, 0);
    store_hits_free(&hits);
    store_hits_free(NULL);
    shares_item_free(item);
}

/* All hits of a name search, paging with the keyset cursor. */
static size_t search_all(store_t *st, const char *needle, size_t page, store_hits_t *all)
{
    store_search_cursor_t cur = {0};
    store_error_t err;
    char *name = NULL, hash[SHARES_HASH_MAX] = "";
    size_t pages = 0, i;

    all->v = NULL;
    all->n = 0;
    for (;;) {
        store_hits_t hits;
        store_hit_t *grown;
        cur.name = name;
        cur.hash = hash;
        assert_store(STORE_OK, store_name_search(st, needle, name ? &cur : NULL, page, &hits, &err),
                     &err);
        pages++;
        assert_true(hits.n <= page);
        grown = realloc(all->v, (all->n + hits.n + 1) * sizeof *grown);
        assert_non_null(grown);
        all->v = grown;
        for (i = 0; i < hits.n; i++)
            all->v[all->n++] = hits.v[i]; /* moved: owned by `all` now */
        free(hits.v);
        if (hits.n < page)
            break;
        free(name);
        name = strdup(all->v[all->n - 1].name);
        assert_non_null(name);
        cur.resource_id = all->v[all->n - 1].resource_id;
        snprintf(hash, sizeof hash, "%s", all->v[all->n - 1].hash);
        assert_true(pages < 10000);
    }
    free(name);
    return pages;
}

static void store__name_search__pages_case_and_wildcards(void **state)
{
    fixture_t *f = *state;
    shares_item_t *item = item_new();
    size_t r1 = item_res(item, "r1"), r2 = item_res(item, "r2"), i, j, pages;
    store_hits_t all;
    store_error_t err;
    char h[41];
    static const char *const names1[] = {
        "Qzv Holiday 2023.mkv",
        "QZV HOLIDAY video.mp4",
        "my qzv holiday.txt",
        "qzv 100% done",
        "qzv 100x done",
        "qzv a_b",
        "qzv axb",
        "qzv back\\slash",
        "qzv holiday",
        "qzv holiday",
        "qzv \xc3\x89t\xc3\xa9",
    };
    static const char *const names2[] = {"qzv holiday", "qzv holiday", "unrelated"};

    for (i = 0; i < sizeof names1 / sizeof names1[0]; i++) {
        hash40(h, 500, i);
        item_share(item, r1, h, names1[i], i);
    }
    for (i = 0; i < sizeof names2 / sizeof names2[0]; i++) {
        hash40(h, 501, i);
        item_share(item, r2, h, names2[i], i);
    }
    item_addr(item, r2, "192.0.2.99", 9);
    replace_ok(f->st, "search-a@example.org", "r1", 1, item, r1, NULL);
    replace_ok(f->st, "search-b@example.org", "r2", 1, item, r2, NULL);
    replace_ok(f->st, "search-c@example.org", "r2", 1, item, r2, NULL);

    /* "holiday", case-insensitive, page of 2: 4 + 2 + 2 ties on "qzv holiday". */
    pages = search_all(f->st, "qZv HoLiDaY", 2, &all);
    assert_int_equal(all.n, 3 + 2 + 2 + 2);
    assert_int_equal(pages, all.n / 2 + 1);
    for (i = 0; i < all.n; i++) {
        int c;
        for (j = 0; j < i; j++)
            if (all.v[i].resource_id == all.v[j].resource_id &&
                strcmp(all.v[i].hash, all.v[j].hash) == 0)
                fail_msg("hit %s/%s returned twice", all.v[i].resource, all.v[i].name);
        if (i == 0)
            continue;
        c = strcmp(all.v[i - 1].name, all.v[i].name);
        assert_true(c < 0 || (c == 0 && (all.v[i - 1].resource_id < all.v[i].resource_id ||
                                         (all.v[i - 1].resource_id == all.v[i].resource_id &&
                                          strcmp(all.v[i - 1].hash, all.v[i].hash) < 0))));
    }
    assert_string_equal(all.v[0].name, "QZV HOLIDAY video.mp4");
    assert_string_equal(all.v[all.n - 1].name, "qzv holiday");
    for (i = 0; i < all.n; i++) {
        if (strcmp(all.v[i].jid, "search-b@example.org") == 0) {
            assert_int_equal(all.v[i].n_addresses, 1);
            assert_string_equal(all.v[i].addresses[0].address, "192.0.2.99");
            assert_int_equal(all.v[i].addresses[0].port, 9);
        }
    }
    store_hits_free(&all);

    /* LIKE wildcards match literally. */
    search_all(f->st, "qzv 100%", 10, &all);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.v[0].name, "qzv 100% done");
    store_hits_free(&all);
    search_all(f->st, "qzv a_b", 10, &all);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.v[0].name, "qzv a_b");
    store_hits_free(&all);
    search_all(f->st, "qzv back\\", 10, &all);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.v[0].name, "qzv back\\slash");
    store_hits_free(&all);
    search_all(f->st, "0% d", 10, &all);
    assert_int_equal(all.n, 1);
    assert_string_equal(all.v[0].name, "qzv 100% done");
    store_hits_free(&all);
    /* Multibyte. */
    search_all(f->st, "qzv \xc3\x89t\xc3\xa9", 10, &all);
    assert_int_equal(all.n, 1);
    store_hits_free(&all);
    /* No hit. */
    search_all(f->st, "qzv nothing like it", 10, &all);
    assert_int_equal(all.n, 0);
    store_hits_free(&all);
    /* Bad arguments. */
    assert_store(STORE_EINVAL, store_name_search(f->st, "", NULL, 10, &all, &err), &err);
    assert_store(STORE_EINVAL, store_name_search(f->st, NULL, NULL, 10, &all, &err), &err);
    assert_store(STORE_EINVAL, store_name_search(f->st, "qzv", NULL, 0, &all, &err), &err);
    {
        store_search_cursor_t bad = {.name = "qzv", .resource_id = 1, .hash = "nothex"};
        assert_store(STORE_EINVAL, store_name_search(f->st, "qzv", &bad, 10, &all, &err), &err);
    }
    shares_item_free(item);
}

static void store__stats__counts_everything(void **state)
{
    fixture_t *f = *state;
    shares_item_t *item = item_new();
    size_t ra = item_res(item, "a"), rb = item_res(item, "b");
    store_stats_t s;
    store_error_t err;
    char h[41];

    reset_tables(f);
    memset(&s, 0xff, sizeof s);
    assert_store(STORE_OK, store_stats(f->st, &s, &err), &err);
    assert_int_equal(s.users, 0);
    assert_int_equal(s.resources, 0);
    assert_int_equal(s.shares, 0);
    assert_int_equal(s.addresses, 0);
    assert_int_equal(s.distinct_hashes, 0);

    hash40(h, 600, 1);
    item_share(item, ra, h, "x", 1);
    item_share(item, rb, h, "x", 1);
    hash40(h, 600, 2);
    item_share(item, ra, h, "y", 1);
    item_share(item, rb, H64A, "z", 1);
    item_addr(item, ra, "192.0.2.1", 1);
    item_addr(item, ra, "2001:db8::1", 1);
    item_addr(item, rb, "192.0.2.1", 2);
    replace_ok(f->st, "stats1@example.org", "a", 1, item, ra, NULL); /* 2 shares, 2 addr */
    replace_ok(f->st, "stats1@example.org", "b", 1, item, rb, NULL); /* 2 shares, 1 addr */
    replace_ok(f->st, "stats2@example.org", "a", 1, item, ra, NULL); /* 2 shares, 2 addr */
    replace_ok(f->st, "stats3@example.org", "gone", 1, item, ra, NULL);
    assert_store(STORE_OK, store_resource_remove(f->st, "stats3@example.org", "gone", &err), &err);
    assert_store(STORE_OK, store_stats(f->st, &s, &err), &err);
    assert_int_equal(s.users, 2);
    assert_int_equal(s.resources, 3);
    assert_int_equal(s.shares, 6);
    assert_int_equal(s.addresses, 5);
    assert_int_equal(s.distinct_hashes, 3);
    shares_item_free(item);
}

/* ---- publish record --------------------------------------------------------- */

static void store__publish__record_and_get_round_trip(void **state)
{
    fixture_t *f = *state;
    const char *jid = "publish@example.org";
    const char *d1 = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";
    const char *d2 = "fedcba9876543210fedcba9876543210fedcba9876543210fedcba9876543210";
    store_publish_t p;
    store_error_t err;
    char long_error[3000];
    size_t i;

    assert_store(STORE_ENOTFOUND, store_publish_get(f->st, jid, &p, &err), &err);
    assert_store(STORE_OK, store_publish_record(f->st, jid, d1, STORE_PUBLISH_OK, NULL, &err),
                 &err);
    memset(&p, 0, sizeof p);
    assert_store(STORE_OK, store_publish_get(f->st, jid, &p, &err), &err);
    assert_string_equal(p.digest, d1);
    assert_int_equal(p.status, STORE_PUBLISH_OK);
    assert_string_equal(p.error, "");
    assert_int_equal(strlen(p.published_at), 27);
    assert_int_equal(p.published_at[26], 'Z');

    /* An error record replaces it; control characters are made printable and
     * a long message is cut at a character boundary. */
    assert_store(STORE_OK,
                 store_publish_record(f->st, jid, d2, STORE_PUBLISH_ERROR,
                                      "internal-server-error\n<text>bad\tthing</text>", &err),
                 &err);
    assert_store(STORE_OK, store_publish_get(f->st, jid, &p, &err), &err);
    assert_string_equal(p.digest, d2);
    assert_int_equal(p.status, STORE_PUBLISH_ERROR);
    assert_string_equal(p.error, "internal-server-error <text>bad thing</text>");
    for (i = 0; i + 2 < sizeof long_error; i += 2) {
        long_error[i] = '\xc3';
        long_error[i + 1] = '\xa9';
    }
    long_error[i] = '\0';
    assert_store(STORE_OK,
                 store_publish_record(f->st, jid, d1, STORE_PUBLISH_ERROR, long_error, &err), &err);
    assert_int_equal(pg_int(f->db, "SELECT octet_length(p.error) FROM publishes p JOIN users u "
                                   "ON u.id = p.user_id WHERE u.jid = 'publish@example.org'") %
                         2,
                     0);
    assert_true(pg_int(f->db, "SELECT octet_length(p.error) FROM publishes p JOIN users u ON "
                              "u.id = p.user_id WHERE u.jid = 'publish@example.org'") >= 1000);
    assert_store(STORE_OK, store_publish_get(f->st, jid, &p, &err), &err);
    assert_string_equal(p.digest, d1);
    /* Cut to the struct at a character boundary: whole "é"s only. */
    assert_true(strlen(p.error) < sizeof p.error);
    assert_true(strlen(p.error) > 200);
    assert_int_equal(strlen(p.error) % 2, 0);
    assert_memory_equal(p.error, "\xc3\xa9\xc3\xa9", 4);
    /* One record per user. */
    assert_int_equal(pg_int(f->db, "SELECT count(*) FROM publishes p JOIN users u ON u.id = "
                                   "p.user_id WHERE u.jid = 'publish@example.org'"),
                     1);
    /* Bad digests. */
    assert_store(STORE_EINVAL,
                 store_publish_record(
                     f->st, jid, "0123456789ABCDEF0123456789abcdef0123456789abcdef0123456789abcdef",
                     STORE_PUBLISH_OK, NULL, &err),
                 &err);
    assert_store(STORE_EINVAL,
                 store_publish_record(f->st, jid, "0123", STORE_PUBLISH_OK, NULL, &err), &err);
    assert_store(STORE_EINVAL, store_publish_record(f->st, jid, NULL, STORE_PUBLISH_OK, NULL, &err),
                 &err);
    assert_store(STORE_OK, store_publish_get(f->st, jid, &p, &err), &err);
    assert_string_equal(p.digest, d1);
    assert_store(STORE_ENOTFOUND, store_publish_get(f->st, "never@example.org", &p, &err), &err);
}

/* ---- concurrency ------------------------------------------------------------ */

#define CONC_JID  "concurrent@example.org"
#define CONC_RES  "shared-resource"
#define CONC_ITER 200

/* The state thread `t` submits at iteration `i`: overlapping hashes across
 * states (so rows are updated in place, not only inserted and deleted),
 * names and sizes that say which state they belong to, 1..3 addresses. */
static shares_item_t *conc_state(int t, int i, size_t *ri)
{
    shares_item_t *item = shares_item_new(&(shares_limits_t){0});
    shares_error_t e;
    char h[41], name[64], addr[64];
    int k, n = 3 + (i * 7 + t) % 5, base = i % 4, a, na = 1 + (i + t) % 3;

    if (!item)
        return NULL;
    if (shares_item_add_resource(item, CONC_RES, ri, &e))
        goto fail;
    for (k = 0; k < n; k++) {
        hash40(h, 700, (uint64_t)(base + k));
        snprintf(name, sizeof name, "t%d i%d k%d", t, i, k);
        if (shares_item_add_share(item, *ri, h, name, (uint64_t)(t * 1000000 + i * 100 + k), &e))
            goto fail;
    }
    for (a = 0; a < na; a++) {
        if (a == 2)
            snprintf(addr, sizeof addr, "2001:db8::%x:%x", t + 1, i + 1);
        else
            snprintf(addr, sizeof addr, "10.%d.%d.%d", t, i % 250, a + 1);
        if (shares_item_add_address(item, *ri, addr, (unsigned long)(6881 + t * 10 + a), &e))
            goto fail;
    }
    return item;
fail:
    shares_item_free(item);
    return NULL;
}

/* Which submitted state `got` is (by the name of any share), or -1. */
static int conc_identify(const shares_item_t *got, int *t, int *i, char *why, size_t whylen)
{
    shares_share_t sh;
    shares_item_t *want;
    size_t gi, wi;
    int k, ok;

    gi = find_res(got, CONC_RES);
    if (shares_item_resource_count(got) != 1 || gi == NONE) {
        snprintf(why, whylen, "%zu resources", shares_item_resource_count(got));
        return -1;
    }
    if (shares_item_share(got, gi, 0, &sh) != SHARES_OK ||
        sscanf(sh.name, "t%d i%d k%d", t, i, &k) != 3) {
        snprintf(why, whylen, "unrecognized state");
        return -1;
    }
    want = conc_state(*t, *i, &wi);
    if (!want) {
        snprintf(why, whylen, "out of memory");
        return -1;
    }
    ok = res_equal(want, wi, got, gi, why, whylen);
    shares_item_free(want);
    return ok ? 0 : -1;
}

typedef struct conc_writer {
    const char *url;
    int t;
    pthread_barrier_t *go;
    int applied[CONC_ITER]; /* 1 applied, 0 stale */
    int failures;
    char failure[1024];
} conc_writer_t;

static void *conc_writer_main(void *arg)
{
    conc_writer_t *w = arg;
    store_options_t opts = {.application_name = "bitween-conc"};
    store_t *st = store_new(w->url, &opts);
    store_error_t err;
    int i;

    for (i = 0; i < CONC_ITER; i++) {
        size_t ri;
        shares_item_t *item = st ? conc_state(w->t, i, &ri) : NULL;
        int rc;
        /* Both threads submit seq i at the same moment: every iteration is a
         * race on the same row, and both writes are applied (equal seq). */
        pthread_barrier_wait(w->go);
        rc = item ? store_resource_replace(st, CONC_JID, CONC_RES, i, item, ri, NULL, &err)
                  : STORE_ENOMEM;
        shares_item_free(item);
        if (rc == STORE_OK) {
            w->applied[i] = 1;
        } else if (rc != STORE_ESTALE && w->failures++ == 0) {
            snprintf(w->failure, sizeof w->failure, "thread %d iteration %d: %s: %.300s", w->t, i,
                     store_strerror(rc), err.message);
        }
    }
    if (!st)
        snprintf(w->failure, sizeof w->failure, "store_new failed"), w->failures++;
    store_free(st);
    return NULL;
}

typedef struct conc_reader {
    const char *url;
    volatile int *stop;
    int loads;
    int mixed;
    char failure[1024];
} conc_reader_t;

/* Loads the resource while the writers run: every load must be one of the
 * submitted states (or nothing yet), never a mix. */
static void *conc_reader_main(void *arg)
{
    conc_reader_t *r = arg;
    store_options_t opts = {.application_name = "bitween-conc-reader"};
    store_t *st = store_new(r->url, &opts);
    store_error_t err;

    while (st && !__atomic_load_n(r->stop, __ATOMIC_ACQUIRE)) {
        shares_item_t *got = NULL;
        char why[256];
        int t, i, rc = store_user_load(st, CONC_JID, &got, &err);
        if (rc != STORE_OK) {
            if (!r->mixed++)
                snprintf(r->failure, sizeof r->failure, "load: %s: %.300s", store_strerror(rc),
                         err.message);
        } else if (shares_item_resource_count(got) != 0 &&
                   conc_identify(got, &t, &i, why, sizeof why) != 0) {
            if (!r->mixed++)
                snprintf(r->failure, sizeof r->failure, "load %d saw a mixed state: %.300s",
                         r->loads, why);
        }
        r->loads++;
        shares_item_free(got);
    }
    store_free(st);
    return NULL;
}

static void store__replace__concurrent_writers_end_in_one_state(void **state)
{
    fixture_t *f = *state;
    conc_writer_t w[2];
    conc_reader_t rd;
    pthread_t th[2], rth;
    pthread_barrier_t go;
    volatile int stop = 0;
    shares_item_t *got;
    char why[256];
    int t, i, k, both = 0, applied[2] = {0, 0};

    memset(&rd, 0, sizeof rd);
    rd.url = f->url;
    rd.stop = &stop;
    assert_int_equal(pthread_barrier_init(&go, NULL, 2), 0);
    for (k = 0; k < 2; k++) {
        memset(&w[k], 0, sizeof w[k]);
        w[k].url = f->url;
        w[k].t = k;
        w[k].go = &go;
    }
    assert_int_equal(pthread_create(&rth, NULL, conc_reader_main, &rd), 0);
    for (k = 0; k < 2; k++)
        assert_int_equal(pthread_create(&th[k], NULL, conc_writer_main, &w[k]), 0);
    for (k = 0; k < 2; k++)
        pthread_join(th[k], NULL);
    __atomic_store_n(&stop, 1, __ATOMIC_RELEASE);
    pthread_join(rth, NULL);
    pthread_barrier_destroy(&go);

    for (k = 0; k < 2; k++)
        if (w[k].failures)
            fail_msg("%d writes failed; first: %s", w[k].failures, w[k].failure);
    if (rd.mixed)
        fail_msg("%d of %d concurrent loads were wrong; first: %s", rd.mixed, rd.loads, rd.failure);
    for (i = 0; i < CONC_ITER; i++) {
        both += w[0].applied[i] && w[1].applied[i];
        applied[0] += w[0].applied[i];
        applied[1] += w[1].applied[i];
    }
    print_message("    %d concurrent loads checked; %d/%d and %d/%d writes applied (%d seqs by "
                  "both), the others stale\n",
                  rd.loads, applied[0], CONC_ITER, applied[1], CONC_ITER, both);

    got = load(f->st, CONC_JID);
    if (conc_identify(got, &t, &i, why, sizeof why) != 0) {
        shares_item_free(got);
        fail_msg("final state is not one of the submitted states: %s", why);
    }
    shares_item_free(got);
    /* Both threads submit seq CONC_ITER-1 last, which nothing can make stale:
     * the survivor is one of those two, and it was acknowledged. */
    assert_int_equal(i, CONC_ITER - 1);
    assert_true(t == 0 || t == 1);
    assert_int_equal(w[0].applied[CONC_ITER - 1], 1);
    assert_int_equal(w[1].applied[CONC_ITER - 1], 1);
    assert_int_equal(stored_seq(f->st, CONC_JID, CONC_RES), CONC_ITER - 1);
    /* No orphan rows either: exactly the rows of the survivor. */
    {
        size_t ri;
        shares_item_t *want = conc_state(t, i, &ri);
        assert_non_null(want);
        assert_int_equal(pg_int(f->db, "SELECT count(*) FROM shares s JOIN resources r ON r.id = "
                                       "s.resource_id JOIN users u ON u.id = r.user_id WHERE "
                                       "u.jid = '" CONC_JID "'"),
                         (long long)shares_item_share_count(want, ri));
        shares_item_free(want);
    }
}

typedef struct res_racer {
    const char *url;
    int t;
    int n;
    uint32_t cap;
    pthread_barrier_t *go;
    int ok, limited, failures;
    char failure[1024];
} res_racer_t;

static void *res_racer_main(void *arg)
{
    res_racer_t *r = arg;
    store_options_t opts = {.application_name = "bitween-res-race"};
    store_t *st = store_new(r->url, &opts);
    store_quota_t q = {.max_resources = r->cap};
    store_error_t err;
    int i;

    pthread_barrier_wait(r->go);
    for (i = 0; st && i < r->n; i++) {
        char res[32], h[41];
        shares_item_t *item = shares_item_new(&(shares_limits_t){0});
        shares_error_t e;
        size_t ri;
        int rc = STORE_ENOMEM;
        snprintf(res, sizeof res, "t%d-r%d", r->t, i);
        hash40(h, 800 + (uint64_t)r->t, (uint64_t)i);
        if (item && shares_item_add_resource(item, res, &ri, &e) == SHARES_OK &&
            shares_item_add_share(item, ri, h, res, 1, &e) == SHARES_OK)
            rc = store_resource_replace(
                st, r->cap > 1000 ? "race-nocap@example.org" : "race-cap@example.org", res, 1, item,
                ri, &q, &err);
        shares_item_free(item);
        if (rc == STORE_OK)
            r->ok++;
        else if (rc == STORE_ELIMIT)
            r->limited++;
        else if (r->failures++ == 0)
            snprintf(r->failure, sizeof r->failure, "thread %d resource %d: %s: %.300s [%s]", r->t,
                     i, store_strerror(rc), err.message, err.sqlstate);
    }
    store_free(st);
    return NULL;
}

static void run_res_race(fixture_t *f, uint32_t cap, int per_thread, res_racer_t r[3])
{
    pthread_t th[3];
    pthread_barrier_t go;
    int k;

    assert_int_equal(pthread_barrier_init(&go, NULL, 3), 0);
    for (k = 0; k < 3; k++) {
        memset(&r[k], 0, sizeof r[k]);
        r[k].url = f->url;
        r[k].t = k;
        r[k].n = per_thread;
        r[k].cap = cap;
        r[k].go = &go;
        assert_int_equal(pthread_create(&th[k], NULL, res_racer_main, &r[k]), 0);
    }
    for (k = 0; k < 3; k++)
        pthread_join(th[k], NULL);
    pthread_barrier_destroy(&go);
    for (k = 0; k < 3; k++)
        if (r[k].failures)
            fail_msg("%d registrations failed; first: %s", r[k].failures, r[k].failure);
}

static void store__replace__concurrent_new_resources_respect_cap(void **state)
{
    fixture_t *f = *state;
    res_racer_t r[3];
    store_resources_t rs;
    store_error_t err;
    int k, ok = 0;

    /* Many new resources of one user at once under a cap that is never
     * reached: none may fail (e.g. on a deadlock). */
    run_res_race(f, 100000, 60, r);
    for (k = 0; k < 3; k++)
        assert_int_equal(r[k].ok, 60);
    assert_store(STORE_OK,
                 store_resources_list(f->st, "race-nocap@example.org", NULL, NULL, 1000, &rs, &err),
                 &err);
    assert_int_equal(rs.n, 180);
    store_resources_free(&rs);

    /* Under a cap that is reached: exactly `cap` get in, whatever the race. */
    run_res_race(f, 25, 20, r);
    for (k = 0; k < 3; k++)
        ok += r[k].ok;
    assert_int_equal(ok, 25);
    assert_store(STORE_OK,
                 store_resources_list(f->st, "race-cap@example.org", NULL, NULL, 1000, &rs, &err),
                 &err);
    assert_int_equal(rs.n, 25);
    store_resources_free(&rs);
}

/* ---- outage ------------------------------------------------------------------- */

static int stack_pg(const char *action)
{
    char cmd[2048];
    snprintf(cmd, sizeof cmd, "'%s' %s pg '%s' >&2", env_required("BITWEEN_STACK_SCRIPT"), action,
             env_required("BITWEEN_STACK_DIR"));
    return system(cmd);
}

static int outage_teardown(void **state)
{
    char cmd[2048];
    (void)state;
    /* Whatever failed, leave the server running for what follows. */
    snprintf(cmd, sizeof cmd, "'%s' status '%s' >/dev/null", env_required("BITWEEN_STACK_SCRIPT"),
             env_required("BITWEEN_STACK_DIR"));
    if (system(cmd) == 0)
        return 0;
    return stack_pg("start") == 0 ? 0 : -1;
}

static void store__outage__calls_fail_fast_then_reconnect(void **state)
{
    fixture_t *f = *state;
    const char *jid = "outage@example.org";
    shares_item_t *before, *after, *got = NULL;
    size_t rb, ra;
    store_error_t err;
    store_t *idle;
    double t0;
    int k;

    before = simple_state("box", 900, 3, &rb);
    after = simple_state("box", 901, 2, &ra);
    replace_ok(f->st, jid, "box", 1, before, rb, NULL); /* acknowledged */
    idle = store_open(f->url, "bitween-idle");
    assert_store(STORE_OK, store_ping(idle, &err), &err);

    /* (1) A restart between two calls is invisible: the store reconnects. */
    assert_int_equal(stack_pg("restart"), 0);
    assert_store(STORE_OK, store_ping(idle, &err), &err);
    assert_resource_is(idle, jid, "box", before, rb);

    /* (2) Server down: calls fail with EUNAVAIL, and return. */
    assert_int_equal(stack_pg("stop"), 0);
    for (k = 0; k < 3; k++) {
        t0 = now_s();
        assert_store(STORE_EUNAVAIL, store_user_load(f->st, jid, &got, &err), &err);
        print_message("    load while down returned in %.3f s: %s\n", now_s() - t0, err.message);
        assert_null(got);
        assert_false(store_connected(f->st));
    }
    t0 = now_s();
    assert_store(STORE_EUNAVAIL,
                 store_resource_replace(f->st, jid, "box", 2, after, ra, NULL, &err), &err);
    assert_store(STORE_EUNAVAIL, store_ping(idle, &err), &err);
    assert_store(STORE_EUNAVAIL, store_migrate(idle, NULL, &err), &err);
    assert_store(STORE_EUNAVAIL, store_connect(idle, &err), &err);
    print_message("    writes while down returned in %.3f s\n", now_s() - t0);

    /* (3) Server back: the next call succeeds, committed data is there, the
     * refused write is not. */
    assert_int_equal(stack_pg("start"), 0);
    assert_resource_is(f->st, jid, "box", before, rb);
    assert_int_equal(stored_seq(f->st, jid, "box"), 1);
    replace_ok(f->st, jid, "box", 2, after, ra, NULL);
    assert_resource_is(idle, jid, "box", after, ra);
    assert_store(STORE_OK, store_migrate(idle, NULL, &err), &err);
    /* The raw connections of the fixture did not survive the restarts. */
    PQreset(f->db);
    PQreset(f->admin);
    assert_int_equal(PQstatus(f->db), CONNECTION_OK);
    store_free(idle);
    shares_item_free(before);
    shares_item_free(after);
}

static void store__connect__unreachable_server_is_eunavail(void **state)
{
    store_options_t opts = {.connect_timeout_s = 2};
    store_t *st = store_new("postgresql://bitween@127.0.0.1:1/bitween", &opts);
    store_error_t err;
    store_stats_t s;
    (void)state;
    assert_non_null(st);
    assert_store(STORE_EUNAVAIL, store_connect(st, &err), &err);
    assert_true(strlen(err.message) > 0);
    assert_false(store_connected(st));
    assert_store(STORE_EUNAVAIL, store_stats(st, &s, &err), &err);
    assert_int_equal(store_ping(st, NULL), STORE_EUNAVAIL);
    store_free(st);
    store_free(NULL);
}

/* ---- scale: index use at 1,000,000 share rows ------------------------------------ */

#define SCALE_USERS    1000
#define SCALE_PER_USER 1000

static int scale_setup(void **state)
{
    fixture_t *f;
    double t0 = now_s();
    PGresult *defs;
    int i;

    group_setup(state);
    f = *state;
    /* Bulk load in one statement per table. The two look-up indexes are
     * dropped during the load and rebuilt from their own definitions
     * (pg_get_indexdef), which is several times faster than maintaining
     * them row by row. */
    pg_ok(f->db, "SET maintenance_work_mem = '256MB'");
    defs = PQexec(f->db, "SELECT indexdef FROM pg_indexes WHERE schemaname = 'public' AND "
                         "indexname IN ('shares_hash_idx', 'shares_name_trgm_idx')");
    assert_int_equal(PQresultStatus(defs), PGRES_TUPLES_OK);
    assert_int_equal(PQntuples(defs), 2);
    pg_ok(f->db, "DROP INDEX shares_hash_idx, shares_name_trgm_idx");
    pg_ok(f->db, "INSERT INTO users (jid) SELECT 'scale' || u || '@example.org' "
                 "FROM generate_series(1, 1000) u");
    pg_ok(f->db, "INSERT INTO resources (user_id, resource, seq) SELECT id, 'r', 0 FROM users "
                 "WHERE jid LIKE 'scale%'");
    pg_ok(f->db, "INSERT INTO addresses (resource_id, address, port) SELECT r.id, "
                 "'192.0.2.1', 6881 FROM resources r");
    pg_ok(f->db, "INSERT INTO shares (resource_id, hash, name, size) "
                 "SELECT m.id, decode(md5(i::text) || substr(md5((i + 1)::text), 1, 8), 'hex'), "
                 "'file ' || i || '.mkv', i "
                 "FROM generate_series(1, 1000000) i "
                 "JOIN (SELECT r.id, substr(u.jid, 6, position('@' in u.jid) - 6)::int AS k "
                 "      FROM resources r JOIN users u ON u.id = r.user_id) m "
                 "  ON m.k = (i - 1) / 1000 + 1");
    for (i = 0; i < PQntuples(defs); i++)
        pg_ok(f->db, PQgetvalue(defs, i, 0));
    PQclear(defs);
    pg_ok(f->db, "ANALYZE users");
    pg_ok(f->db, "ANALYZE resources");
    pg_ok(f->db, "ANALYZE addresses");
    pg_ok(f->db, "ANALYZE shares");
    print_message("    loaded %lld shares in %.1f s\n",
                  pg_int(f->db, "SELECT count(*) FROM shares"), now_s() - t0);
    return 0;
}

/* Text of the statement the store's session ran last (pg_stat_activity shows
 * the prepared statement's source), so the plans checked are the store's own
 * statements, not copies. */
static char *store_last_statement(fixture_t *f, const char *app)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT query FROM pg_stat_activity WHERE application_name = '%s'",
             app);
    return pg_text(f->admin, sql);
}

/* EXPLAIN (FORMAT JSON) of `stmt` prepared as is and run with `args` (an SQL
 * argument list), with custom (literal) and forced generic plans; `control`
 * (may be NULL) gets the plan with index scans disabled, which must not
 * name the index (so the check below is known to be able to fail). */
static void explain_all(PGconn *c, const char *stmt, const char *args, char **custom,
                        char **generic, char **control)
{
    size_t len = strlen(stmt) + 64;
    char *prep = malloc(len), sql[512];
    assert_non_null(prep);
    pg_ok(c, "DEALLOCATE ALL");
    snprintf(prep, len, "PREPARE p AS %s", stmt);
    pg_ok(c, prep);
    free(prep);
    snprintf(sql, sizeof sql, "EXPLAIN (FORMAT JSON) EXECUTE p(%s)", args);
    pg_ok(c, "SET plan_cache_mode = force_custom_plan");
    *custom = pg_text(c, sql);
    pg_ok(c, "SET plan_cache_mode = force_generic_plan");
    *generic = pg_text(c, sql);
    pg_ok(c, "RESET plan_cache_mode");
    if (control) {
        pg_ok(c, "SET enable_indexscan = off");
        pg_ok(c, "SET enable_bitmapscan = off");
        *control = pg_text(c, sql);
        pg_ok(c, "RESET enable_indexscan");
        pg_ok(c, "RESET enable_bitmapscan");
    }
    pg_ok(c, "DEALLOCATE ALL");
}

static int plan_uses(const char *plan, const char *index)
{
    char want[128];
    snprintf(want, sizeof want, "\"Index Name\": \"%s\"", index);
    return strstr(plan, want) != NULL;
}

static void assert_plan_uses(const char *plan, const char *index, const char *what)
{
    if (!plan_uses(plan, index))
        fail_msg("%s does not use %s:\n%s", what, index, plan);
}

static void store__hash_lookup__uses_index_at_1m_rows(void **state)
{
    fixture_t *f = *state;
    const char *app = "bitween-scale-hash";
    store_t *st = store_open(f->url, app);
    store_hits_t hits;
    store_error_t err;
    char *hash, *stmt, *custom, *generic, *control, args[160], upper[41];
    double t0;
    size_t i;

    /* Row 123457: user 124, name "file 123457.mkv", size 123457. */
    hash = pg_text(f->db, "SELECT md5('123457') || substr(md5('123458'), 1, 8)");
    for (i = 0; i < 40; i++)
        upper[i] = (char)(hash[i] >= 'a' && hash[i] <= 'f' ? hash[i] - 'a' + 'A' : hash[i]);
    upper[40] = '\0';
    t0 = now_s();
    assert_store(STORE_OK, store_hash_lookup(st, upper, 10, &hits, &err), &err);
    print_message("    hash look-up: %.1f ms\n", (now_s() - t0) * 1000);
    assert_int_equal(hits.n, 1);
    assert_string_equal(hits.v[0].jid, "scale124@example.org");
    assert_string_equal(hits.v[0].resource, "r");
    assert_string_equal(hits.v[0].name, "file 123457.mkv");
    assert_string_equal(hits.v[0].hash, hash);
    assert_int_equal(hits.v[0].size, 123457);
    assert_int_equal(hits.v[0].n_addresses, 1);
    store_hits_free(&hits);

    stmt = store_last_statement(f, app);
    assert_non_null(strstr(stmt, "decode($1, 'hex')"));
    snprintf(args, sizeof args, "'%s', 10", hash);
    explain_all(f->db, stmt, args, &custom, &generic, &control);
    assert_plan_uses(custom, "shares_hash_idx", "hash look-up (custom plan)");
    assert_plan_uses(generic, "shares_hash_idx", "hash look-up (generic plan)");
    assert_false(plan_uses(control, "shares_hash_idx"));
    free(control);
    free(custom);
    free(generic);
    free(stmt);
    free(hash);
    store_free(st);
}

static void store__name_search__uses_trgm_index_at_1m_rows(void **state)
{
    fixture_t *f = *state;
    const char *app = "bitween-scale-search";
    store_t *st = store_open(f->url, app);
    store_hits_t all;
    char *stmt, *custom, *generic, *control, want[32];
    double t0;
    size_t i, pages;

    t0 = now_s();
    pages = search_all(st, "FILE 12345", 4, &all);
    print_message("    name search, %zu pages: %.1f ms\n", pages, (now_s() - t0) * 1000);
    /* "file 12345.mkv" then "file 123450.mkv" .. "file 123459.mkv". */
    assert_int_equal(all.n, 11);
    assert_int_equal(pages, 3);
    assert_string_equal(all.v[0].name, "file 12345.mkv");
    assert_string_equal(all.v[0].jid, "scale13@example.org");
    assert_int_equal(all.v[0].size, 12345);
    for (i = 1; i < 11; i++) {
        snprintf(want, sizeof want, "file 12345%zu.mkv", i - 1);
        assert_string_equal(all.v[i].name, want);
        assert_string_equal(all.v[i].jid, "scale124@example.org");
    }
    store_hits_free(&all);

    stmt = store_last_statement(f, app);
    assert_non_null(strstr(stmt, "ILIKE"));
    explain_all(f->db, stmt, "'file 12345', NULL, NULL, NULL, 50", &custom, &generic, &control);
    assert_plan_uses(custom, "shares_name_trgm_idx", "name search (custom plan)");
    assert_plan_uses(generic, "shares_name_trgm_idx", "name search (generic plan)");
    assert_false(plan_uses(control, "shares_name_trgm_idx"));
    free(control);
    free(custom);
    free(generic);
    /* A page after a cursor too. */
    explain_all(f->db, stmt,
                "'file 12345', 'file 123452.mkv', 124, md5('123452') || "
                "substr(md5('123453'), 1, 8), 50",
                &custom, &generic, NULL);
    assert_plan_uses(custom, "shares_name_trgm_idx", "name search after a cursor (custom plan)");
    free(custom);
    free(generic);
    free(stmt);
    store_free(st);
}

static void store__stats__counts_at_1m_rows(void **state)
{
    fixture_t *f = *state;
    store_stats_t s;
    store_error_t err;
    double t0 = now_s();

    assert_store(STORE_OK, store_stats(f->st, &s, &err), &err);
    print_message("    stats: %.1f ms\n", (now_s() - t0) * 1000);
    assert_int_equal(s.users, SCALE_USERS);
    assert_int_equal(s.resources, SCALE_USERS);
    assert_int_equal(s.shares, SCALE_USERS * SCALE_PER_USER);
    assert_int_equal(s.addresses, SCALE_USERS);
    assert_int_equal(s.distinct_hashes, SCALE_USERS * SCALE_PER_USER);
}

/* ---- main ------------------------------------------------------------------------ */

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(store__migrate__fresh_database_reaches_latest),
        cmocka_unit_test(store__migrate__concurrent_starters_apply_once),
        cmocka_unit_test(store__migrate__newer_schema_is_refused),
        cmocka_unit_test(store__user_load__unmigrated_database_is_eschema),
        cmocka_unit_test(store__connect__unreachable_server_is_eunavail),
        cmocka_unit_test(store__replace__round_trip_through_load),
        cmocka_unit_test(store__replace__empty_state_registers_resource),
        cmocka_unit_test(store__replace__older_seq_is_stale),
        cmocka_unit_test(store__replace__equal_seq_reapplies),
        cmocka_unit_test(store__add__upserts_and_remove_deletes),
        cmocka_unit_test(store__add__unregistered_resource_is_not_found),
        cmocka_unit_test(store__replace__quota_on_resources),
        cmocka_unit_test(store__replace__quota_on_shares),
        cmocka_unit_test(store__replace__quota_on_addresses),
        cmocka_unit_test(store__replace__failed_batch_keeps_previous_state),
        cmocka_unit_test(store__constraints__reject_bad_rows),
        cmocka_unit_test(store__resource_remove__removes_and_reports_missing),
        cmocka_unit_test(store__hash_lookup__finds_every_holder),
        cmocka_unit_test(store__name_search__pages_case_and_wildcards),
        cmocka_unit_test(store__publish__record_and_get_round_trip),
        cmocka_unit_test(store__replace__concurrent_writers_end_in_one_state),
        cmocka_unit_test(store__replace__concurrent_new_resources_respect_cap),
        cmocka_unit_test(store__users_list__pages_cover_every_user_once),
        cmocka_unit_test(store__resources_list__pages_cover_every_resource_once),
        cmocka_unit_test(store__stats__counts_everything),
        cmocka_unit_test_teardown(store__outage__calls_fail_fast_then_reconnect, outage_teardown),
    };
    const struct CMUnitTest scale_tests[] = {
        cmocka_unit_test(store__hash_lookup__uses_index_at_1m_rows),
        cmocka_unit_test(store__name_search__uses_trgm_index_at_1m_rows),
        cmocka_unit_test(store__stats__counts_at_1m_rows),
    };

    if (argc > 1 && strcmp(argv[1], "scale") == 0)
        return cmocka_run_group_tests_name("store_scale", scale_tests, scale_setup, group_teardown);
    return cmocka_run_group_tests_name("store", tests, group_setup, group_teardown);
}
