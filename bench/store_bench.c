/* SPDX-License-Identifier: MIT */
/*
 * Storage benchmark, each figure beside a baseline measured in the same run
 * against the same PostgreSQL server:
 *
 *  1. replace-resource transactions per second from one connection, for
 *     resources of 10, 100 and 1,000 shares, where every replace swaps the
 *     whole share list (all rows deleted and inserted) and keeps two
 *     addresses. Ours: store_resource_replace(), timed around the call only
 *     (the item is built beforehand, as the component gets it parsed from
 *     the stanza). Baseline: pgbench (one client, prepared statements)
 *     sending the statement the store sends, one call of
 *     bitween_resource_replace(): one round trip per replace on both sides
 *     and the same server-side work, so the ratio compares our client side
 *     (arrays formatted as text, libpq, result check, plus the server
 *     parsing those arrays) with pgbench's. A pipeline of the plain
 *     statements would also be one round trip but not the same server-side
 *     work (no sequence guard, no duplicate check, no partial delete).
 *     pgbench cannot build arrays, and generating them in its statement
 *     (two md5() per share) costs about a fifth of a 10-share replace, so
 *     it reads them from a table filled beforehand: two share lists per
 *     resource, picked by the parity of the next sequence number, so that
 *     every replace still swaps all rows. That sequence number comes from
 *     the stored one, an index look-up our side does not make. After each
 *     pgbench run the stored sequence numbers must have advanced by exactly
 *     the transactions it reports, and the last resource written by either
 *     side must hold as many shares and addresses as were sent, or the
 *     benchmark stops. The sides take turns going first (per size and per
 *     round) over several rounds; each round's table is printed, then per
 *     size the median rates and the median and worst ratio (ours / pgbench);
 *  2. hash look-up latency (p50/p99/max) at 1,000,000 share rows through
 *     store_hash_lookup(); baseline: pgbench running the same join as plain
 *     SQL, latencies from its per-transaction log.
 *
 * Needs BITWEEN_DATABASE_URL (an empty or bitween database; the tables are
 * filled) and pgbench. Exits non-zero only when a step fails, never because
 * a target is missed.
 *
 * usage: store_bench [--rows N] [--seconds S] [--lookups N] [--rounds N]
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

/* Run pgbench; returns its tps, fills the transactions it reports if asked
 * and writes its per-transaction log under /tmp with log_prefix if given. */
static double run_pgbench(const char *url, const char *script, int seconds, const char *defines,
                          const char *log_prefix, long *transactions)
{
    char cmd[4096], line[512];
    double tps = -1;
    long done = -1;
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
        long n;
        if (sscanf(line, "tps = %lf (without initial connection time)", &v) == 1)
            tps = v;
        if (sscanf(line, "number of transactions actually processed: %ld", &n) == 1)
            done = n;
        if (strstr(line, "error") || strstr(line, "ERROR"))
            fprintf(stderr, "pgbench: %s", line);
    }
    if (pclose(p) != 0 || tps <= 0 || done <= 0)
        die("pgbench failed", script);
    if (transactions)
        *transactions = done;
    return tps;
}

/* Integer result of a one-value query, for the checks between runs. */
static long long query_ll(PGconn *pg, const char *q)
{
    PGresult *res = PQexec(pg, q);
    long long v;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1 || PQgetisnull(res, 0, 0))
        die(q, PQerrorMessage(pg));
    v = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return v;
}

/* The last resource a side replaced must hold the n shares and two
 * addresses it was given. */
static void check_last_replace(PGconn *pg, const char *side, int n)
{
    static const char *table[2] = {"shares", "addresses"};
    long long got[2];
    char q[512];
    int k;

    for (k = 0; k < 2; k++) {
        snprintf(q, sizeof q,
                 "SELECT count(*) FROM %s WHERE resource_id = "
                 "(SELECT r.id FROM resources r JOIN users u ON u.id = r.user_id "
                 "WHERE u.jid LIKE '%s%%@bench.test' ORDER BY r.updated_at DESC LIMIT 1)",
                 table[k], side);
        got[k] = query_ll(pg, q);
    }
    if (got[0] != n || got[1] != 2) {
        fprintf(stderr, "store_bench: %s: last replace left %lld shares, %lld addresses\n", side,
                got[0], got[1]);
        exit(1);
    }
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

/* Our side: see the top comment for what is timed. */
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

/* The store's replace statement (storage/store.c, ST_REPLACE) for
 * resource :r, with the next sequence number and the share list of its
 * parity from bench_replace_data (see bench_replace_data_fill()), two
 * addresses, no quotas. */
static const char *replace_script =
    "\\set r random(1, 50)\n"
    "SELECT bitween_resource_replace(s.jid, 'bench', s.seq, d.hashes, d.names, d.sizes, "
    "'{127.0.0.1,::1}'::inet[], '{6881,6881}'::integer[], 0, 0, 0) "
    "FROM (SELECT u.jid, r.seq + 1 AS seq FROM resources r JOIN users u ON u.id = r.user_id "
    "WHERE u.jid = 'pgb' || :r::text || '@bench.test' AND r.resource = 'bench') s "
    "JOIN bench_replace_data d ON d.n = :n AND d.r = :r AND d.parity = s.seq % 2;\n";

/* The share lists pgbench's replaces send: for each size, resource r and
 * parity p, the shares bench_state() builds for (r, 10000 + p): a sequence
 * number about as long as ours, so names are too. The two lists of a
 * resource share no hash, and its initial list (sequence number 0) neither. */
static void bench_replace_data_fill(PGconn *pg, const int *sizes, int n_sizes)
{
    char q[1024], list[64];
    size_t len = 0;
    int i;

    for (i = 0; i < n_sizes && len < sizeof list; i++)
        len += (size_t)snprintf(list + len, sizeof list - len, "%s%d", i ? "," : "", sizes[i]);
    /* Left over only by a run that failed; no notice when absent. */
    bench_sql(pg, "SET client_min_messages = warning; DROP TABLE IF EXISTS bench_replace_data; "
                  "RESET client_min_messages");
    bench_sql(pg, "CREATE TABLE bench_replace_data (n integer, r integer, parity integer, "
                  "hashes text[], names text[], sizes bigint[], PRIMARY KEY (n, r, parity))");
    snprintf(q, sizeof q,
             "INSERT INTO bench_replace_data "
             "SELECT n, r, p, array_agg(md5(k) || substr(md5('x' || k), 1, 8) ORDER BY g), "
             "array_agg('bench file ' || k || '.mkv' ORDER BY g), "
             "array_agg(g * 1000::bigint ORDER BY g) "
             "FROM unnest('{%s}'::integer[]) n, generate_series(1, %d) r, "
             "generate_series(0, 1) p, generate_series(1, n) g, "
             "LATERAL (SELECT r || '-' || (10000 + p) || '-' || g AS k) kk GROUP BY n, r, p",
             list, BENCH_RESOURCES);
    bench_sql(pg, q);
    bench_sql(pg, "ANALYZE bench_replace_data");
}

/* pgbench's side of one replace run; stops the benchmark unless every
 * transaction it reports advanced a sequence number. */
static double bench_replace_pgbench(PGconn *pg, const char *url, const char *script, int n,
                                    int seconds)
{
    static const char *seq_total = "SELECT coalesce(sum(r.seq), 0) FROM resources r "
                                   "JOIN users u ON u.id = r.user_id "
                                   "WHERE u.jid LIKE 'pgb%@bench.test' AND r.resource = 'bench'";
    char defines[64];
    long long before = query_ll(pg, seq_total), after;
    long done;
    double tps;

    snprintf(defines, sizeof defines, "-D n=%d", n);
    tps = run_pgbench(url, script, seconds, defines, NULL, &done);
    after = query_ll(pg, seq_total);
    if (after - before != done) {
        fprintf(stderr,
                "store_bench: pgbench reported %ld replaces, sequence numbers advanced %lld\n",
                done, after - before);
        exit(1);
    }
    check_last_replace(pg, "pgb", n);
    return tps;
}

static const char *lookup_script =
    "\\set i random(1, :rows)\n"
    "SELECT u.jid, r.resource, encode(x.hash, 'hex'), x.name, x.size, r.id, "
    "coalesce((SELECT string_agg(host(a.address) || ' ' || a.port, ',' "
    "ORDER BY family(a.address), a.address, a.port) "
    "FROM addresses a WHERE a.resource_id = r.id), '') "
    "FROM shares x JOIN resources r ON r.id = x.resource_id JOIN users u ON u.id = r.user_id "
    "WHERE x.hash = decode(md5(:i::text) || substr(md5('x' || :i::text), 1, 8), 'hex') "
    "ORDER BY u.jid, r.resource LIMIT 100;\n";

/* Median of v[0..n) (sorts v); the mean of the middle two when n is even. */
static double median(double *v, size_t n)
{
    if (n == 0)
        return 0;
    qsort(v, n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

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

static void print_round_header(int round, int rounds, int seconds)
{
    printf("\nreplace-resource transactions/s, one connection, %d s each, round %d of %d\n",
           seconds, round, rounds);
    printf("%8s %9s %14s %14s %8s\n", "shares", "first", "bitween", "pgbench", "ratio");
}

int main(int argc, char **argv)
{
    enum { N_SIZES = 3 };
    static const int sizes[N_SIZES] = {10, 100, 1000};
    const char *url = getenv("BITWEEN_DATABASE_URL");
    long rows = 1000000, lookups = 20000, key_rows;
    int seconds = 5, rounds = 3, bad = 0, i, k;
    char script_replace[] = "/tmp/bw-bench-replace-XXXXXX";
    char script_lookup[] = "/tmp/bw-bench-lookup-XXXXXX";
    char defines[128], prefix[64], jid[64], key[32], hash[41];
    store_error_t err;
    store_t *st;
    PGconn *pg;
    double *ours_tps, *base_tps, *col, *lat, *blat = NULL;
    double med_ratio[N_SIZES], worst_ratio[N_SIZES];
    size_t nb;
    int fd;

    for (i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--rows") == 0 && i + 1 < argc)
            rows = atol(argv[++i]);
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atoi(argv[++i]);
        else if (strcmp(argv[i], "--lookups") == 0 && i + 1 < argc)
            lookups = atol(argv[++i]);
        else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc)
            rounds = atoi(argv[++i]);
        else
            bad = 1;
    }
    if (bad || rows < 1 || seconds < 1 || lookups < 1 || rounds < 1) {
        fprintf(stderr, "usage: %s [--rows N] [--seconds S] [--lookups N] [--rounds N]\n", argv[0]);
        return 2;
    }
    if (!url)
        die("BITWEEN_DATABASE_URL", "not set");
    ours_tps = calloc((size_t)rounds * N_SIZES, sizeof *ours_tps);
    base_tps = calloc((size_t)rounds * N_SIZES, sizeof *base_tps);
    col = calloc((size_t)rounds, sizeof *col);
    lat = calloc((size_t)lookups, sizeof *lat);
    if (!ours_tps || !base_tps || !col || !lat)
        die("calloc", "figures");
    st = store_new(url, NULL);
    if (!st || store_migrate(st, NULL, &err) != STORE_OK)
        die("migrate", st ? err.message : "out of memory");
    pg = PQconnectdb(url);
    if (PQstatus(pg) != CONNECTION_OK)
        die("connect", PQerrorMessage(pg));

    key_rows = bench_load_rows(pg, rows);
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
    /* Statistics that count the benchmark's users and resources: after a
     * small --rows load the planner would otherwise scan users once per
     * resource to resolve a JID. */
    bench_sql(pg, "ANALYZE users, resources");
    bench_replace_data_fill(pg, sizes, N_SIZES);
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

    for (k = 0; k < rounds; k++) {
        print_round_header(k + 1, rounds, seconds);
        for (i = 0; i < N_SIZES; i++) {
            /* Order flips per size and per round, so that neither side
             * always runs right after the other's writes (autovacuum,
             * checkpoints, a cold cache). */
            int ours_first = (k + i) % 2 == 0;
            double *o = &ours_tps[k * N_SIZES + i], *b = &base_tps[k * N_SIZES + i];
            if (ours_first) {
                *o = bench_replace_ours(st, sizes[i], seconds);
                check_last_replace(pg, "ours", sizes[i]);
            }
            *b = bench_replace_pgbench(pg, url, script_replace, sizes[i], seconds);
            if (!ours_first) {
                *o = bench_replace_ours(st, sizes[i], seconds);
                check_last_replace(pg, "ours", sizes[i]);
            }
            printf("%8d %9s %14.1f %14.1f %7.2fx\n", sizes[i], ours_first ? "bitween" : "pgbench",
                   *o, *b, *o / *b);
            fflush(stdout);
        }
    }

    printf("\nreplace-resource summary over %d round%s (ratio: bitween / pgbench)\n", rounds,
           rounds == 1 ? "" : "s");
    printf("%8s %14s %14s %12s %12s\n", "shares", "bitween med", "pgbench med", "ratio med",
           "ratio worst");
    for (i = 0; i < N_SIZES; i++) {
        double om, bm;
        for (k = 0; k < rounds; k++)
            col[k] = ours_tps[k * N_SIZES + i];
        om = median(col, (size_t)rounds);
        for (k = 0; k < rounds; k++)
            col[k] = base_tps[k * N_SIZES + i];
        bm = median(col, (size_t)rounds);
        for (k = 0; k < rounds; k++)
            col[k] = ours_tps[k * N_SIZES + i] / base_tps[k * N_SIZES + i];
        med_ratio[i] = median(col, (size_t)rounds);
        worst_ratio[i] = col[0]; /* sorted by median() */
        printf("%8d %14.1f %14.1f %11.2fx %11.2fx\n", sizes[i], om, bm, med_ratio[i],
               worst_ratio[i]);
    }
    fflush(stdout);

    srand(42);
    for (i = 0; i < lookups; i++) {
        store_hits_t hits;
        long row = 1 + (long)(((unsigned long)rand() * 65536u + (unsigned long)rand()) %
                              (unsigned long)key_rows);
        double t0;
        snprintf(key, sizeof key, "%ld", row);
        bench_key_hash(key, hash);
        t0 = bench_now_s();
        if (store_hash_lookup(st, hash, 100, &hits, &err) != STORE_OK)
            die("lookup", err.message);
        lat[i] = (bench_now_s() - t0) * 1000.0;
        if (hits.n != 1)
            die("lookup", "expected exactly one holder");
        store_hits_free(&hits);
    }
    snprintf(defines, sizeof defines, "-D rows=%ld", key_rows);
    snprintf(prefix, sizeof prefix, "bw-bench-lat-%d", (int)getpid());
    run_pgbench(url, script_lookup, seconds, defines, prefix, NULL);
    nb = read_pgbench_latencies(prefix, &blat);
    if (nb == 0)
        die("pgbench", "no look-up latencies in its log");
    printf("\nhash look-up latency at %ld share rows (ms)\n", key_rows);
    printf("%8s %14s %14s %8s\n", "", "bitween", "pgbench", "ratio");
    {
        static const struct {
            const char *name;
            double p;
        } q[] = {{"p50", 0.50}, {"p99", 0.99}, {"max", 1.0}};
        double o99 = percentile(lat, (size_t)lookups, 0.99);
        int met = 1;
        for (i = 0; i < (int)(sizeof q / sizeof *q); i++) {
            double o = percentile(lat, (size_t)lookups, q[i].p), b = percentile(blat, nb, q[i].p);
            printf("%8s %14.3f %14.3f %7.2fx\n", q[i].name, o, b, o / b);
        }
        printf("(%ld look-ups by bitween, %zu by pgbench)\n", lookups, nb);
        for (i = 0; i < N_SIZES; i++)
            met = met && med_ratio[i] >= 0.7;
        printf("\ntargets: replace median ratio >= 0.70x pgbench: %s; look-up p99 < 2 ms: %s\n",
               met ? "met" : "NOT met", o99 < 2.0 ? "met" : "NOT met");
    }
    bench_sql(pg, "DROP TABLE bench_replace_data");
    unlink(script_replace);
    unlink(script_lookup);
    free(ours_tps);
    free(base_tps);
    free(col);
    free(lat);
    free(blat);
    PQfinish(pg);
    store_free(st);
    return 0;
}
