/* SPDX-License-Identifier: MIT */
#include "hist.h"

#include <time.h>

const double hist_bounds[HIST_BUCKETS] = {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                          0.05,   0.1,   0.25,   0.5,   1,    10};

void hist_observe_us(hist_t *h, uint64_t us)
{
    size_t b = 0;
    while (b < HIST_BUCKETS && (double)us / 1e6 > hist_bounds[b])
        b++;
    atomic_fetch_add_explicit(&h->buckets[b], 1, memory_order_relaxed);
    atomic_fetch_add_explicit(&h->sum_us, us, memory_order_relaxed);
}

double hist_read(hist_t *h, uint64_t counts[HIST_BUCKETS + 1])
{
    size_t b;
    for (b = 0; b <= HIST_BUCKETS; b++)
        counts[b] = (uint64_t)atomic_load_explicit(&h->buckets[b], memory_order_relaxed);
    return (double)atomic_load_explicit(&h->sum_us, memory_order_relaxed) / 1e6;
}

uint64_t hist_now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}
