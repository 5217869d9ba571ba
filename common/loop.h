/* SPDX-License-Identifier: MIT */
/*
 * The daemons' event loop: poll(2) over registered file descriptors
 * (the XMPP socket, the database pool's wake-up descriptor, the HTTP side's
 * queue) plus one-shot timers kept in a binary heap. Timers are embedded in
 * their owners (no allocation per timer) and can be stopped at any time.
 * Single-threaded: every call comes from the thread that runs the loop.
 */
#ifndef BITWEEN_COMMON_LOOP_H
#define BITWEEN_COMMON_LOOP_H

#include <stddef.h>
#include <stdint.h>

typedef struct loop loop_t;

typedef void (*loop_fd_cb)(loop_t *loop, int fd, short revents, void *arg);
typedef void (*loop_timer_cb)(loop_t *loop, void *arg);

/** A timer; embed it in its owner and zero it before first use. */
typedef struct loop_timer {
    uint64_t due_ms;   /* absolute, loop_now_ms() clock */
    size_t heap_index; /* 0 = not armed; else position + 1 */
    uint64_t order;    /* tie-breaker: arming order */
    loop_timer_cb cb;
    void *arg;
} loop_timer_t;

/** New loop, or NULL on allocation failure. */
loop_t *loop_new(void) __attribute__((warn_unused_result));

/** Free the loop (not the timers, which belong to their owners). */
void loop_free(loop_t *loop);

/** Wall-clock milliseconds since the epoch (for timestamps shown to
 * people and seqs that must grow across restarts; timers use the
 * monotonic clock). */
int64_t loop_wall_ms(void);

/** Monotonic milliseconds, refreshed once per iteration and by this call. */
uint64_t loop_now_ms(loop_t *loop);

/**
 * Watch `fd` for `events` (POLLIN/POLLOUT); `cb` runs with the returned
 * events. One registration per fd: adding an fd again replaces it.
 * Returns 0 or -1 on allocation failure.
 */
int loop_fd_add(loop_t *loop, int fd, short events, loop_fd_cb cb, void *arg);

/** Change the events watched on a registered fd; no-op if unknown. */
void loop_fd_events(loop_t *loop, int fd, short events);

/** Stop watching `fd`; no-op if unknown. Safe inside callbacks. */
void loop_fd_del(loop_t *loop, int fd);

/**
 * Arm (or re-arm) `timer` to call `cb(loop, arg)` once after `delay_ms`.
 * Returns 0 or -1 on allocation failure (the timer is then not armed).
 */
int loop_timer_start(loop_t *loop, loop_timer_t *timer, uint64_t delay_ms, loop_timer_cb cb,
                     void *arg);

/** Disarm `timer` if armed. Safe inside callbacks, including its own. */
void loop_timer_stop(loop_t *loop, loop_timer_t *timer);

/** Whether `timer` is armed. */
int loop_timer_armed(const loop_timer_t *timer);

/**
 * Wait for events at most `max_wait_ms` (less if a timer is due sooner;
 * 0 = do not block), then run due timers and fd callbacks. Returns the
 * number of callbacks run, or -1 if poll failed for a reason other than
 * EINTR.
 */
int loop_run_once(loop_t *loop, int max_wait_ms);

/**
 * Delay before retry number `attempt` (0 first): `base` ms doubled per
 * attempt up to `max`, then a random point in its upper half (jitter, so
 * that many clients cut off together do not come back together). `rng` is
 * the caller's rand_r() state.
 */
uint64_t loop_backoff_ms(unsigned base, unsigned max, unsigned attempt, unsigned *rng);

#endif /* BITWEEN_COMMON_LOOP_H */
