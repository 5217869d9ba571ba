/* SPDX-License-Identifier: MIT */
/*
 * Storage benchmark, each figure beside a baseline measured in the same run
 * against the same PostgreSQL server:
 *
 *  1. replace-resource transactions per second from one connection, for
 *     resources of 10, 100 and 1,000 shares, where every replace swaps the
 *     whole share list (all rows deleted and inserted) and keeps two
 *     addresses; baseline: pgbench (one client, prepared statements) running
 *     a plain-SQL script doing the same row changes in one transaction (its
 *     rows generated server-side). Our rate counts the time spent in
 *     store_resource_replace(), the item being built beforehand;
 *  2. hash look-up latency (p50/p99) at 1,000,000 share rows through
 *     store_hash_lookup(); baseline: pgbench running the same join as plain
 *     SQL, latencies from its per-transaction log.
 *
 * Needs BITWEEN_DATABASE_URL (an empty or bitween database; the tables are
 * filled) and pgbench. Prints a table and the ratios; exits non-zero only
 * when a step fails, never because a target is missed.
 *
 * usage: store_bench [--rows N] [--seconds S] [--lookups N]
 */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <libpq-fe.h>

#include "shares.h"
#include "load.h"
#include "store.h"

#define BENCH_RESOURCES 50 /* resources the replace loop cycles through */

static void die(const char *what, const char *detail)
{
    fprintf(stderr, "store_bench: %s: %s\n", what, detail ? detail : "");
    exit(1);
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double percentile(double *v, size_t n, double p)
{
    size_t i;
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    i = (size_t)(p * (double)(n - 1) + 0.5);
    return v[i < n ? i : n - 1];
}

static const char *pgbench_path(void)
{
    static const char *candidates[] = {"/usr/lib/postgresql/15/bin/pgbench", "/usr/bin/pgbench"};
    size_t i;
    for (i = 0; i < sizeof candidates / sizeof *candidates; i++)
        if (access(candidates[i], X_OK) == 0)
            return candidates[i];
    die("pgbench", "not found");
    return NULL;
}

/* Run pgbench; returns its tps, fills the log prefix's latencies if asked. */
static double run_pgbench(const char *url, const char *script, int seconds, const char *defines,
                          const char *log_prefix)
{
    char cmd[4096], line[512];
    double tps = -1;
    FILE *p;

    snprintf(cmd, sizeof cmd,
             "cd /tmp && '%s' -n -M prepared -c 1 -j 1 -T %d %s %s%s -f '%s' '%s' 2>&1",
             pgbench_path(), seconds, defines, log_prefix ? "-l --log-prefix=" : "",
             log_prefix ? log_prefix : "", script, url);
    p = popen(cmd, "r");
    if (!p)
        die("popen", "pgbench");
    while (fgets(line, sizeof line, p)) {
        double v;
        if (sscanf(line, "tps = %lf (without initial connection time)", &v) == 1)
            tps = v;
        if (strstr(line, "error") || strstr(line, "ERROR"))
            fprintf(stderr, "pgbench: %s", line);
    }
    if (pclose(p) != 0 || tps < 0)
        die("pgbench failed", script);
    return tps;
}

static void write_file(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    if (!f || fputs(text, f) < 0 || fclose(f) != 0)
        die("writing", path);
}

/* One replace state: n shares named after (r, seq), two addresses. */
static shares_item_t *bench_state(int r, int64_t seq, int n)
{
    shares_limits_t lim = {0};
    shares_item_t *item = shares_item_new(&lim);
    shares_error_t err;
    size_t ri;
    char key[96], hash[41], name[128];
    int g;

    if (!item || shares_item_add_resource(item, "bench", &ri, &err) != SHARES_OK)
        die("item", "out of memory");
    for (g = 1; g <= n; g++) {
        snprintf(key, sizeof key, "%d-%" PRId64 "-%d", r, seq, g);
        bench_key_hash(key, hash);
        snprintf(name, sizeof name, "bench file %d-%" PRId64 "-%d.mkv", r, seq, g);
        if (shares_item_add_share(item, ri, hash, name, (uint64_t)g * 1000, &err) != SHARES_OK)
            die("add share", err.message);
    }
    if (shares_item_add_address(item, ri, "127.0.0.1", 6881, &err) != SHARES_OK ||
        shares_item_add_address(item, ri, "::1", 6881, &err) != SHARES_OK)
        die("add address", err.message);
    return item;
}

/* Our path is store_resource_replace(): the item it writes is built before
 * the clock starts (in the component it comes parsed from the stanza). */
static double bench_replace_ours(store_t *st, int n, int seconds)
{
    static int64_t seq = 1;
    char jid[64];
    store_error_t err;
    long count = 0;
    double busy = 0, end = bench_now_s() + seconds;

    while (bench_now_s() < end) {
        int r = (int)(count % BENCH_RESOURCES) + 1;
        shares_item_t *item = bench_state(r, seq, n);
        double t0;
        snprintf(jid, sizeof jid, "ours%d@bench.test", r);
        t0 = bench_now_s();
        if (store_resource_replace(st, jid, "bench", seq, item, 0, NULL, &err) != STORE_OK)
            die("replace", err.message);
        busy += bench_now_s() - t0;
        shares_item_free(item);
        seq++;
        count++;
    }
    return (double)count / busy;
}

static const char *replace_script =
    "\\set r random(1, 50)\n"
    "BEGIN;\n"
    "UPDATE resources r SET seq = r.seq + 1, updated_at = now(), last_seen = now() "
    "FROM users u WHERE u.id = r.user_id AND u.jid = 'pgb' || :r || '@bench.test' "
    "AND r.resource = 'bench' RETURNING r.id AS rid, r.seq AS seq\n"
    "\\gset\n"
    "DELETE FROM shares WHERE resource_id = :rid;\n"
    "INSERT INTO shares (resource_id, hash, name, size) "
    "SELECT :rid, decode(md5(:r || '-' || :seq || '-' || g) "
    "|| substr(md5('x' || :r || '-' || :seq || '-' || g), 1, 8), 'hex'), "
    "'bench file ' || :r || '-' || :seq || '-' || g || '.mkv', g * 1000 "
    "FROM generate_series(1, :n) g;\n"
    "DELETE FROM addresses WHERE resource_id = :rid;\n"
    "INSERT INTO addresses (resource_id, address, port) "
    "VALUES (:rid, '127.0.0.1', 6881), (:rid, '::1', 6881);\n"
    "COMMIT;\n";

static const char *lookup_script =
    "\\set i random(1, :rows)\n"
    "SELECT u.jid, r.resource, encode(x.hash, 'hex'), x.name, x.size, r.id, "
    "coalesce((SELECT string_agg(host(a.address) || ' ' || a.port, ',' "
    "ORDER BY family(a.address), a.address, a.port) "
    "FROM addresses a WHERE a.resource_id = r.id), '') "
    "FROM shares x JOIN resources r ON r.id = x.resource_id JOIN users u ON u.id = r.user_id "
    "WHERE x.hash = decode(md5(:i::text) || substr(md5('x' || :i::text), 1, 8), 'hex') "
    "ORDER BY u.jid, r.resource LIMIT 100;\n";

/* Latencies (ms) from pgbench -l logs: 3rd field is latency in us. */
static size_t read_pgbench_latencies(const char *prefix, double **out)
{
    char cmd[512], line[256];
    size_t n = 0, cap = 0;
    double *v = NULL;
    FILE *p;

    snprintf(cmd, sizeof cmd, "cat /tmp/%s.* 2>/dev/null; rm -f /tmp/%s.*", prefix, prefix);
    p = popen(cmd, "r");
    if (!p)
        die("popen", "cat");
    while (fgets(line, sizeof line, p)) {
        long client, tx;
        double us;
        if (sscanf(line, "%ld %ld %lf", &client, &tx, &us) != 3)
            continue;
        if (n == cap) {
            size_t ncap = cap ? cap * 2 : 4096;
            double *nv = realloc(v, ncap * sizeof *nv);
            if (!nv)
                die("realloc", "latencies");
            v = nv;
            cap = ncap;
        }
        v[n++] = us / 1000.0;
    }
    pclose(p);
    *out = v;
    return n;
}

int main(int argc, char **argv)
{
    const char *url = getenv("BITWEEN_DATABASE_URL");
    long rows = 1000000, lookups = 20000;
    int seconds = 5, i, sizes[] = {10, 100, 1000};
    char script_replace[] = "/tmp/bw-bench-replace-XXXXXX";
    char script_lookup[] = "/tmp/bw-bench-lookup-XXXXXX";
    char defines[128], prefix[64], jid[64], key[32], hash[41];
    store_error_t err;
    store_t *st;
    PGconn *pg;
    double ours_tps[3], base_tps[3], *lat, *blat = NULL;
    size_t nb;
    int fd;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
            lookups = atol(argv[++i]);
        else {
            fprintf(stderr, "usage: %s [--rows N] [--seconds S] [--lookups N]\n", argv[0]);
            return 2;
        }
    }
    if (!url)
        die("BITWEEN_DATABASE_URL", "not set");
    st = store_new(url, NULL);
    if (!st || store_migrate(st, NULL, &err) != STORE_OK)
        die("migrate", st ? err.message : "out of memory");
    pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));

    bench_load_rows(pg, rows);
    /* Resources of both sides, created the same way. */
    for (i = 1; i <= BENCH_RESOURCES; i++) {
        shares_item_t *item = bench_state(i, 0, 1);
        snprintf(jid, sizeof jid, "ours%d@bench.test", i);
        if (store_resource_replace(st, jid, "bench", 0, item, 0, NULL, &err) != STORE_OK)
            die("replace", err.message);
        snprintf(jid, sizeof jid, "pgb%d@bench.test", i);
        if (store_resource_replace(st, jid, "bench", 0, item, 0, NULL, &err) != STORE_OK)
            die("replace", err.message);
        shares_item_free(item);
    }
    fd = mkstemp(script_replace);
    if (fd < 0)
        die("mkstemp", script_replace);
    close(fd);
    write_file(script_replace, replace_script);
    fd = mkstemp(script_lookup);
    if (fd < 0)
        die("mkstemp", script_lookup);
    close(fd);
    write_file(script_lookup, lookup_script);

    printf("\nreplace-resource transactions/s, one connection, %d s each\n", seconds);
    printf("%8s %14s %14s %8s\n", "shares", "bitween", "pgbench", "ratio");
    for (i = 0; i < 3; i++) {
        ours_tps[i] = bench_replace_ours(st, sizes[i], seconds);
        snprintf(defines, sizeof defines, "-D n=%d", sizes[i]);
        base_tps[i] = run_pgbench(url, script_replace, seconds, defines, NULL);
        printf("%8d %14.1f %14.1f %7.2fx\n", sizes[i], ours_tps[i], base_tps[i],
               ours_tps[i] / base_tps[i]);
        fflush(stdout);
    }

    lat = calloc((size_t)lookups, sizeof *lat);
    if (!lat)
        die("calloc", "latencies");
    srand(42);
    for (i = 0; i < lookups; i++) {
        store_hits_t hits;
        long k = 1 + (long)(((unsigned long)rand() * 65536u + (unsigned long)rand()) %
                            (unsigned long)(rows / 1000 > 0 ? rows / 1000 * 1000 : 1000));
        double t0;
        snprintf(key, sizeof key, "%ld", k);
        bench_key_hash(key, hash);
        t0 = bench_now_s();
        if (store_hash_lookup(st, hash, 100, &hits, &err) != STORE_OK)
            die("lookup", err.message);
        lat[i] = (bench_now_s() - t0) * 1000.0;
        if (hits.n != 1)
            die("lookup", "expected exactly one holder");
        store_hits_free(&hits);
    }
    snprintf(defines, sizeof defines, "-D rows=%ld", rows / 1000 > 0 ? rows / 1000 * 1000 : 1000);
    snprintf(prefix, sizeof prefix, "bw-bench-lat-%d", (int)getpid());
    run_pgbench(url, script_lookup, seconds, defines, prefix);
    nb = read_pgbench_latencies(prefix, &blat);
    printf("\nhash look-up latency at %ld share rows (ms)\n", rows);
    printf("%8s %14s %14s %8s\n", "", "bitween", "pgbench", "ratio");
    {
        double o50 = percentile(lat, (size_t)lookups, 0.50),
               o99 = percentile(lat, (size_t)lookups, 0.99);
        double b50 = percentile(blat, nb, 0.50), b99 = percentile(blat, nb, 0.99);
        printf("%8s %14.3f %14.3f %7.2fx\n", "p50", o50, b50, o50 / b50);
        printf("%8s %14.3f %14.3f %7.2fx\n", "p99", o99, b99, o99 / b99);
        printf("(%ld look-ups by bitween, %zu by pgbench)\n", lookups, nb);
        printf("\ntargets: replace >= 0.70x pgbench: %s; look-up p99 < 2 ms: %s\n",
               ours_tps[0] / base_tps[0] >= 0.7 && ours_tps[1] / base_tps[1] >= 0.7 &&
                       ours_tps[2] / base_tps[2] >= 0.7
                   ? "met"
                   : "NOT met",
               o99 < 2.0 ? "met" : "NOT met");
    }
    unlink(script_replace);
    unlink(script_lookup);
    free(lat);
    free(blat);
    PQfinish(pg);
    store_free(st);
    return 0;
}
