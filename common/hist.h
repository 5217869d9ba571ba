/* SPDX-License-Identifier: MIT */
/*
 * Latency histogram with fixed buckets, updated with atomics (any thread)
 * and read by the metrics endpoint: the admin API's request latency and
 * the component's request, database and publish times.
 */
#ifndef BITWEEN_COMMON_HIST_H
#define BITWEEN_COMMON_HIST_H

#include <stdatomic.h>
#include <stdint.h>

/* Upper bounds of the buckets, seconds: 0.5 ms to 10 s. */
#define HIST_BUCKETS 12
extern const double hist_bounds[HIST_BUCKETS];

typedef struct hist {
    atomic_ullong buckets[HIST_BUCKETS + 1]; /* per bucket; last: above the last bound */
    atomic_ullong sum_us;
} hist_t;

/** Count one observation of `us` microseconds. */
void hist_observe_us(hist_t *h, uint64_t us);

/** Per-bucket (not cumulative) counts into `counts`, `HIST_BUCKETS + 1`
 * of them; returns the sum of the observations in seconds. */
double hist_read(hist_t *h, uint64_t counts[HIST_BUCKETS + 1]);

/** Microseconds of CLOCK_MONOTONIC. */
uint64_t hist_now_us(void);

#endif /* BITWEEN_COMMON_HIST_H */
