/* SPDX-License-Identifier: MIT */
/*
 * Shared by the benchmarks that need a large registry: a monotonic clock,
 * a statement runner that stops the benchmark on failure, and the bulk
 * load of share rows whose info hashes the benchmarks can recompute.
 */
#ifndef BITWEEN_BENCH_LOAD_H
#define BITWEEN_BENCH_LOAD_H

#include <libpq-fe.h>

/** Monotonic seconds. */
double bench_now_s(void);

/** Run `q`; on failure print it with the server's error and exit(1). */
void bench_sql(PGconn *pg, const char *q);

/** The 40-hex info hash derived from `key`: md5(key) || md5('x' || key)[0..8). */
void bench_key_hash(const char *key, char out[41]);

/** The hash bench_load_rows() gives row `i` (1-based): bench_key_hash of i. */
void bench_row_hash(long i, char out[41]);

/**
 * Load `rows` (rounded down to thousands, at least 1,000) share rows over
 * rows/1000 users with one resource and one address each, rebuild the
 * trigram index after the load (faster than maintaining it), ANALYZE our
 * tables, and print how long it took. Returns the number of rows loaded.
 */
long bench_load_rows(PGconn *pg, long rows);

#endif /* BITWEEN_BENCH_LOAD_H */
