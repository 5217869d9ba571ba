/* SPDX-License-Identifier: MIT */
/* Bulk load and helpers shared by the benchmarks (see load.h). */
#include "load.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/evp.h>

double bench_now_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

void bench_sql(PGconn *pg, const char *q)
{
    PGresult *res = PQexec(pg, q);
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK) {
        fprintf(stderr, "bench: %s: %s\n", q, PQerrorMessage(pg));
        exit(1);
    }
    PQclear(res);
}

/* md5(text) as 32 hex digits into out[33]. */
static void md5_hex(const char *text, char out[33])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int n = 0, i;
    EVP_Digest(text, strlen(text), d, &n, EVP_md5(), NULL);
    for (i = 0; i < 16; i++)
        snprintf(out + 2 * i, 3, "%02x", d[i]);
}

void bench_key_hash(const char *key, char out[41])
{
    char a[33], b[33], xkey[128];
    md5_hex(key, a);
    snprintf(xkey, sizeof xkey, "x%s", key);
    md5_hex(xkey, b);
    memcpy(out, a, 32);
    memcpy(out + 32, b, 8);
    out[40] = '\0';
}

void bench_row_hash(long i, char out[41])
{
    char key[32];
    snprintf(key, sizeof key, "%ld", i);
    bench_key_hash(key, out);
}

long bench_load_rows(PGconn *pg, long rows)
{
    char q[2048];
    long users = rows / 1000 > 0 ? rows / 1000 : 1;
    double t0 = bench_now_s();

    bench_sql(pg, "DROP INDEX IF EXISTS shares_name_trgm_idx");
    snprintf(q, sizeof q,
             "INSERT INTO users (jid) SELECT 'load' || u || '@bench.test' "
             "FROM generate_series(1, %ld) u",
             users);
    bench_sql(pg, q);
    bench_sql(pg, "INSERT INTO resources (user_id, resource, seq) "
                  "SELECT id, 'desktop', 1 FROM users WHERE jid LIKE 'load%@bench.test'");
    bench_sql(pg, "INSERT INTO addresses (resource_id, address, port) "
                  "SELECT r.id, '192.0.2.1', 6881 FROM resources r "
                  "JOIN users u ON u.id = r.user_id WHERE u.jid LIKE 'load%@bench.test'");
    /* hash: the SQL form of bench_row_hash() */
    snprintf(q, sizeof q,
             "INSERT INTO shares (resource_id, hash, name, size) "
             "SELECT r.id, decode(md5(i::text) || substr(md5('x' || i::text), 1, 8), 'hex'), "
             "'file ' || i || '.mkv', i * 1000 "
             "FROM generate_series(1, %ld) i "
             "JOIN resources r ON r.user_id = (SELECT id FROM users "
             "WHERE jid = 'load' || ((i - 1) / 1000 + 1) || '@bench.test')",
             users * 1000);
    bench_sql(pg, q);
    bench_sql(pg, "CREATE INDEX shares_name_trgm_idx ON shares USING gin (name gin_trgm_ops)");
    /* Our tables only: a plain ANALYZE warns about every catalog the
     * bitween role does not own. */
    bench_sql(pg, "ANALYZE users, resources, addresses, shares");
    printf("loaded %ld share rows in %.1f s\n", users * 1000, bench_now_s() - t0);
    return users * 1000;
}
