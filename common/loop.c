/* SPDX-License-Identifier: MIT */
/*
 * Event loop (see loop.h): a small poll set and a binary min-heap of
 * embedded timers ordered by (due time, arming order).
 */
#include "loop.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

typedef struct loop_fd {
    int fd;
    short events;
    loop_fd_cb cb;
    void *arg;
    int removed;
} loop_fd_t;

struct loop {
    uint64_t now;
    uint64_t order;
    loop_fd_t *fds;
    size_t n_fds, cap_fds;
    struct pollfd *pfds;
    loop_timer_t **heap;
    size_t n_heap, cap_heap;
};

static uint64_t loop_clock_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

loop_t *loop_new(void)
{
    loop_t *loop = calloc(1, sizeof *loop);
    if (loop)
        loop->now = loop_clock_ms();
    return loop;
}

void loop_free(loop_t *loop)
{
    size_t i;
    if (!loop)
        return;
    for (i = 0; i < loop->n_heap; i++)
        loop->heap[i]->heap_index = 0;
    free(loop->fds);
    free(loop->pfds);
    free(loop->heap);
    free(loop);
}

uint64_t loop_now_ms(loop_t *loop)
{
    loop->now = loop_clock_ms();
    return loop->now;
}

/* ---- file descriptors --------------------------------------------------- */

static loop_fd_t *loop_fd_find(loop_t *loop, int fd)
{
    size_t i;
    for (i = 0; i < loop->n_fds; i++)
        if (loop->fds[i].fd == fd && !loop->fds[i].removed)
            return &loop->fds[i];
    return NULL;
}

int loop_fd_add(loop_t *loop, int fd, short events, loop_fd_cb cb, void *arg)
{
    loop_fd_t *f = loop_fd_find(loop, fd);
    if (!f) {
        if (loop->n_fds == loop->cap_fds) {
            size_t cap = loop->cap_fds ? loop->cap_fds * 2 : 8;
            loop_fd_t *nf = realloc(loop->fds, cap * sizeof *nf);
            struct pollfd *np;
            if (!nf)
                return -1;
            loop->fds = nf;
            np = realloc(loop->pfds, cap * sizeof *np);
            if (!np)
                return -1;
            loop->pfds = np;
            loop->cap_fds = cap;
        }
        f = &loop->fds[loop->n_fds++];
    }
    f->fd = fd;
    f->events = events;
    f->cb = cb;
    f->arg = arg;
    f->removed = 0;
    return 0;
}

void loop_fd_events(loop_t *loop, int fd, short events)
{
    loop_fd_t *f = loop_fd_find(loop, fd);
    if (f)
        f->events = events;
}

void loop_fd_del(loop_t *loop, int fd)
{
    loop_fd_t *f = loop_fd_find(loop, fd);
    if (f)
        f->removed = 1; /* compacted after dispatch */
}

static void loop_fd_compact(loop_t *loop)
{
    size_t i, j = 0;
    for (i = 0; i < loop->n_fds; i++)
        if (!loop->fds[i].removed)
            loop->fds[j++] = loop->fds[i];
    loop->n_fds = j;
}

/* ---- timers: binary min-heap --------------------------------------------- */

static int timer_before(const loop_timer_t *a, const loop_timer_t *b)
{
    return a->due_ms < b->due_ms || (a->due_ms == b->due_ms && a->order < b->order);
}

static void heap_set(loop_t *loop, size_t i, loop_timer_t *t)
{
    loop->heap[i] = t;
    t->heap_index = i + 1;
}

static void heap_up(loop_t *loop, size_t i)
{
    loop_timer_t *t = loop->heap[i];
    while (i > 0) {
        size_t parent = (i - 1) / 2;
        if (!timer_before(t, loop->heap[parent]))
            break;
        heap_set(loop, i, loop->heap[parent]);
        i = parent;
    }
    heap_set(loop, i, t);
}

static void heap_down(loop_t *loop, size_t i)
{
    loop_timer_t *t = loop->heap[i];
    for (;;) {
        size_t l = 2 * i + 1, r = l + 1, m = i;
        const loop_timer_t *best = t;
        if (l < loop->n_heap && timer_before(loop->heap[l], best))
            m = l, best = loop->heap[l];
        if (r < loop->n_heap && timer_before(loop->heap[r], best))
            m = r;
        if (m == i)
            break;
        heap_set(loop, i, loop->heap[m]);
        i = m;
    }
    heap_set(loop, i, t);
}

static void heap_remove(loop_t *loop, loop_timer_t *t)
{
    size_t i = t->heap_index - 1;
    loop_timer_t *last = loop->heap[--loop->n_heap];
    t->heap_index = 0;
    if (i == loop->n_heap)
        return;
    heap_set(loop, i, last);
    if (i > 0 && timer_before(last, loop->heap[(i - 1) / 2]))
        heap_up(loop, i);
    else
        heap_down(loop, i);
}

int loop_timer_armed(const loop_timer_t *timer)
{
    return timer->heap_index != 0;
}

void loop_timer_stop(loop_t *loop, loop_timer_t *timer)
{
    if (timer->heap_index)
        heap_remove(loop, timer);
}

int loop_timer_start(loop_t *loop, loop_timer_t *timer, uint64_t delay_ms, loop_timer_cb cb,
                     void *arg)
{
    loop_timer_stop(loop, timer);
    if (loop->n_heap == loop->cap_heap) {
        size_t cap = loop->cap_heap ? loop->cap_heap * 2 : 16;
        loop_timer_t **nh = realloc(loop->heap, cap * sizeof *nh);
        if (!nh)
            return -1;
        loop->heap = nh;
        loop->cap_heap = cap;
    }
    timer->due_ms = loop_now_ms(loop) + delay_ms;
    timer->order = ++loop->order;
    timer->cb = cb;
    timer->arg = arg;
    loop->heap[loop->n_heap] = timer;
    timer->heap_index = ++loop->n_heap;
    heap_up(loop, loop->n_heap - 1);
    return 0;
}

static int loop_run_timers(loop_t *loop)
{
    int ran = 0;
    uint64_t now = loop_now_ms(loop);
    /* Timers armed while running are due no earlier than `now` + delay;
     * a zero delay runs in the next iteration, so this loop terminates. */
    uint64_t limit = loop->order;
    while (loop->n_heap > 0 && loop->heap[0]->due_ms <= now && loop->heap[0]->order <= limit) {
        loop_timer_t *t = loop->heap[0];
        heap_remove(loop, t);
        t->cb(loop, t->arg);
        ran++;
    }
    return ran;
}

int loop_run_once(loop_t *loop, int max_wait_ms)
{
    size_t i, n;
    int wait = max_wait_ms < 0 ? 0 : max_wait_ms, rc, ran = 0;
    uint64_t now = loop_now_ms(loop);

    /* fds removed since the last iteration are not polled: a removed fd
     * that is readable (or closed) would cut the wait short */
    loop_fd_compact(loop);
    if (loop->n_heap > 0) {
        uint64_t due = loop->heap[0]->due_ms;
        uint64_t until = due > now ? due - now : 0;
        if (until < (uint64_t)wait)
            wait = (int)until;
    }
    n = loop->n_fds;
    for (i = 0; i < n; i++) {
        loop->pfds[i].fd = loop->fds[i].fd;
        loop->pfds[i].events = loop->fds[i].events;
        loop->pfds[i].revents = 0;
    }
    rc = poll(loop->pfds, (nfds_t)n, wait);
    if (rc < 0 && errno != EINTR)
        return -1;
    ran += loop_run_timers(loop);
    for (i = 0; rc > 0 && i < n; i++) {
        loop_fd_t *f = &loop->fds[i];
        if (loop->pfds[i].revents == 0 || f->removed || f->fd != loop->pfds[i].fd)
            continue;
        f->cb(loop, f->fd, loop->pfds[i].revents, f->arg);
        ran++;
    }
    loop_fd_compact(loop);
    return ran;
}

uint64_t loop_backoff_ms(unsigned base, unsigned max, unsigned attempt, unsigned *rng)
{
    uint64_t d = base ? base : 1;
    unsigned i;
    for (i = 0; i < attempt && d < max; i++)
        d *= 2;
    if (d > max)
        d = max;
    return d / 2 + (uint64_t)rand_r(rng) % (d / 2 + 1);
}

int64_t loop_wall_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}
