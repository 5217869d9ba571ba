/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of common/loop.c, the event loop: one-shot timers in due
 * order (ties in arming order), stopping and re-arming from anywhere
 * (including inside callbacks), file descriptors on a pipe (readable,
 * removed, replaced, removed during the same iteration), the wait being cut
 * short by a due timer, and the heap checked against a reference model over
 * 10,000 random start/stop operations. No sleeps: every wait is a bounded
 * loop_run_once() under a deadline.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <poll.h>
#include <time.h>
#include <unistd.h>

#include "loop.h"

/* Longest any test may wait for something that should happen at once. */
#define DEADLINE_MS 10000

/* ---- helpers ----------------------------------------------------------- */

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* xorshift64*: reproducible pseudo-random numbers. */
static uint64_t rng_next(uint64_t *s)
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 2685821657736338717ull;
}

static loop_t *new_loop(void)
{
    loop_t *loop = loop_new();
    assert_non_null(loop);
    return loop;
}

/* A recorder of timer firings, by id. */
typedef struct fired {
    int ids[16384];
    size_t n;
} fired_t;

typedef struct ttimer {
    loop_timer_t t;
    int id;
    fired_t *log;
    uint64_t seq; /* the test's own arming counter (reference model) */
    int early;    /* set when the callback ran before its due time */
    /* optional actions inside the callback */
    struct ttimer *stop_other;
    int stop_self;
    int rearm_times; /* re-arm itself with delay 0 this many more times */
    int rearm_then_stop;
} ttimer_t;

static void ttimer_cb(loop_t *loop, void *arg)
{
    ttimer_t *tt = arg;

    if (loop_now_ms(loop) < tt->t.due_ms)
        tt->early = 1;
    if (tt->log->n < sizeof tt->log->ids / sizeof tt->log->ids[0])
        tt->log->ids[tt->log->n++] = tt->id;
    if (tt->stop_other)
        loop_timer_stop(loop, &tt->stop_other->t);
    if (tt->rearm_times > 0) {
        tt->rearm_times--;
        assert_int_equal(loop_timer_start(loop, &tt->t, 0, ttimer_cb, tt), 0);
        assert_true(loop_timer_armed(&tt->t));
    }
    if (tt->rearm_then_stop) {
        tt->rearm_then_stop = 0;
        assert_int_equal(loop_timer_start(loop, &tt->t, 0, ttimer_cb, tt), 0);
        loop_timer_stop(loop, &tt->t);
    }
    if (tt->stop_self) {
        loop_timer_stop(loop, &tt->t);
        assert_false(loop_timer_armed(&tt->t));
    }
}

static void ttimer_init(ttimer_t *tt, int id, fired_t *log)
{
    memset(tt, 0, sizeof *tt);
    tt->id = id;
    tt->log = log;
}

static void ttimer_start(loop_t *loop, ttimer_t *tt, uint64_t delay)
{
    assert_int_equal(loop_timer_start(loop, &tt->t, delay, ttimer_cb, tt), 0);
    assert_true(loop_timer_armed(&tt->t));
}

/* Run the loop until `log` holds `want` firings; fails after DEADLINE_MS. */
static void run_until_fired(loop_t *loop, const fired_t *log, size_t want)
{
    uint64_t deadline = mono_ms() + DEADLINE_MS;

    while (log->n < want) {
        if (mono_ms() > deadline)
            fail_msg("only %zu of %zu timers fired before the deadline", log->n, want);
        assert_true(loop_run_once(loop, 100) >= 0);
    }
}

/* ---- timers -------------------------------------------------------------- */

typedef struct {
    uint64_t due, seq;
    int id;
} due_t;

static int due_cmp(const void *a, const void *b)
{
    const due_t *x = a, *y = b;
    if (x->due != y->due)
        return x->due < y->due ? -1 : 1;
    return x->seq < y->seq ? -1 : x->seq > y->seq;
}

static void loop__timer__fires_in_due_order_ties_in_arming_order(void **state)
{
    enum { N = 500 };
    static ttimer_t tt[N];
    static fired_t log;
    due_t expect[N];
    loop_t *loop = new_loop();
    uint64_t rng = 0x1234567887654321ull;
    size_t i, ties = 0;

    (void)state;
    memset(&log, 0, sizeof log);
    for (i = 0; i < N; i++) {
        ttimer_init(&tt[i], (int)i, &log);
        /* few distinct delays: many timers share a due time */
        ttimer_start(loop, &tt[i], rng_next(&rng) % 8 * 5);
        expect[i].due = tt[i].t.due_ms;
        expect[i].seq = i;
        expect[i].id = (int)i;
    }
    qsort(expect, N, sizeof expect[0], due_cmp);
    for (i = 1; i < N; i++)
        ties += expect[i].due == expect[i - 1].due;
    assert_true(ties > N / 2); /* the tie-break is really exercised */

    run_until_fired(loop, &log, N);
    assert_int_equal(log.n, N);
    for (i = 0; i < N; i++) {
        if (log.ids[i] != expect[i].id)
            fail_msg("firing %zu: timer %d, expected %d", i, log.ids[i], expect[i].id);
        assert_false(tt[i].early);
        assert_false(loop_timer_armed(&tt[i].t));
    }
    /* nothing fires twice */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, N);
    loop_free(loop);
}

static void loop__timer__stop_prevents_firing(void **state)
{
    static fired_t log;
    ttimer_t a, b, c;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    ttimer_init(&c, 3, &log);
    ttimer_start(loop, &a, 0);
    ttimer_start(loop, &b, 0);
    ttimer_start(loop, &c, 0);
    loop_timer_stop(loop, &b.t);
    assert_false(loop_timer_armed(&b.t));
    loop_timer_stop(loop, &b.t); /* stopping twice is a no-op */
    assert_int_equal(loop_run_once(loop, 100), 2);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(log.ids[1], 3);
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 2);
    loop_free(loop);
}

static void loop__timer__stop_other_from_callback(void **state)
{
    static fired_t log;
    ttimer_t a, b, c;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    ttimer_init(&c, 3, &log);
    /* all three due in the same iteration; a stops b, which is due too */
    a.stop_other = &b;
    ttimer_start(loop, &a, 0);
    ttimer_start(loop, &b, 0);
    ttimer_start(loop, &c, 0);
    assert_int_equal(loop_run_once(loop, 100), 2);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(log.ids[1], 3);
    assert_false(loop_timer_armed(&b.t));
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 2);
    loop_free(loop);
}

static void loop__timer__stop_later_timer_from_callback(void **state)
{
    static fired_t log;
    ttimer_t a, b;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    a.stop_other = &b;
    ttimer_start(loop, &b, 60000); /* far in the future */
    ttimer_start(loop, &a, 0);
    assert_int_equal(loop_run_once(loop, 100), 1);
    assert_false(loop_timer_armed(&b.t));
    /* with no timer left, the wait is the full max_wait (0 here) */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 1);
    loop_free(loop);
}

static void loop__timer__stop_self_from_callback(void **state)
{
    static fired_t log;
    ttimer_t a, b, c;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    ttimer_init(&c, 3, &log);
    a.stop_self = 1;       /* already disarmed when it runs: a no-op */
    b.rearm_then_stop = 1; /* re-arms itself, then stops itself */
    ttimer_start(loop, &a, 0);
    ttimer_start(loop, &b, 0);
    ttimer_start(loop, &c, 0);
    assert_int_equal(loop_run_once(loop, 100), 3);
    assert_false(loop_timer_armed(&a.t));
    assert_false(loop_timer_armed(&b.t));
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 3);
    assert_int_equal(log.ids[0], 1);
    assert_int_equal(log.ids[1], 2);
    assert_int_equal(log.ids[2], 3);
    loop_free(loop);
}

static void loop__timer__rearm_self_in_callback_runs_next_iteration(void **state)
{
    static fired_t log;
    ttimer_t a;
    loop_t *loop = new_loop();
    int i;

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    a.rearm_times = 4;
    ttimer_start(loop, &a, 0);
    /* a zero-delay re-arm runs once per iteration, never loops in one */
    for (i = 0; i < 5; i++) {
        assert_int_equal(loop_run_once(loop, 100), 1);
        assert_int_equal(log.n, (size_t)i + 1);
    }
    assert_false(loop_timer_armed(&a.t));
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(log.n, 5);
    loop_free(loop);
}

static void loop__timer__restart_replaces_due_time(void **state)
{
    static fired_t log;
    ttimer_t a, b;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    ttimer_start(loop, &a, 0);
    ttimer_start(loop, &b, 0);
    ttimer_start(loop, &a, 60000); /* re-armed: now far away, once */
    assert_int_equal(loop_run_once(loop, 100), 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(log.ids[0], 2);
    assert_true(loop_timer_armed(&a.t));
    ttimer_start(loop, &a, 0); /* and back, behind nothing */
    assert_int_equal(loop_run_once(loop, 100), 1);
    assert_int_equal(log.n, 2);
    assert_int_equal(log.ids[1], 1);
    assert_false(loop_timer_armed(&a.t));
    loop_free(loop);
}

static void loop__free__disarms_pending_timers(void **state)
{
    static fired_t log;
    ttimer_t a, b;
    loop_t *loop = new_loop();

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_init(&b, 2, &log);
    ttimer_start(loop, &a, 60000);
    ttimer_start(loop, &b, 1000);
    loop_free(loop);
    assert_false(loop_timer_armed(&a.t));
    assert_false(loop_timer_armed(&b.t));
    assert_int_equal(log.n, 0);
    loop_free(NULL);
}

static void loop__run_once__returns_when_timer_due_before_max_wait(void **state)
{
    static fired_t log;
    ttimer_t a;
    loop_t *loop = new_loop();
    uint64_t t0, elapsed;

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_start(loop, &a, 30);
    t0 = mono_ms();
    /* max_wait far above the timer's delay: the timer bounds the wait and
     * fires in this very call */
    assert_int_equal(loop_run_once(loop, 60000), 1);
    elapsed = mono_ms() - t0;
    assert_int_equal(log.n, 1);
    assert_false(a.early);
    assert_true(elapsed < DEADLINE_MS);
    loop_free(loop);
}

static void loop__run_once__zero_wait_does_not_block(void **state)
{
    static fired_t log;
    ttimer_t a;
    loop_t *loop = new_loop();
    uint64_t t0;

    (void)state;
    memset(&log, 0, sizeof log);
    ttimer_init(&a, 1, &log);
    ttimer_start(loop, &a, 60000);
    t0 = mono_ms();
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(loop_run_once(loop, -5), 0); /* negative: no wait */
    assert_true(mono_ms() - t0 < DEADLINE_MS);
    assert_int_equal(log.n, 0);
    assert_true(loop_timer_armed(&a.t));
    loop_timer_stop(loop, &a.t);
    loop_free(loop);
}

/* Reference model of the heap test: which timers are armed, and how many
 * firings of the log it has accounted for. */
enum { MODEL_POOL = 300 };

typedef struct model {
    ttimer_t tt[MODEL_POOL];
    int armed[MODEL_POOL];
    due_t sorted[MODEL_POOL];
    fired_t log;
    size_t n_armed, checked;
} model_t;

/* What fired since the last check must be the model's next timers in
 * (due, arming order), and the armed flags must agree with the model. */
static void model_check(model_t *md)
{
    size_t i, k = 0, m = 0, f;

    for (i = 0; i < MODEL_POOL; i++)
        if (md->armed[i]) {
            md->sorted[m].due = md->tt[i].t.due_ms;
            md->sorted[m].seq = md->tt[i].seq;
            md->sorted[m].id = (int)i;
            m++;
        }
    qsort(md->sorted, m, sizeof md->sorted[0], due_cmp);
    for (f = md->checked; f < md->log.n; f++, k++) {
        if (k >= m || md->log.ids[f] != md->sorted[k].id)
            fail_msg("firing %zu: timer %d, model expected %d", f, md->log.ids[f],
                     k < m ? md->sorted[k].id : -1);
        md->armed[md->log.ids[f]] = 0;
        md->n_armed--;
    }
    md->checked = md->log.n;
    for (i = 0; i < MODEL_POOL; i++)
        if (!!md->armed[i] != !!loop_timer_armed(&md->tt[i].t))
            fail_msg("timer %zu: armed %d, model %d", i, loop_timer_armed(&md->tt[i].t),
                     md->armed[i]);
}

/* Random start/stop operations against the reference model, with runs of
 * the loop in between: every firing must be the model's next timer. */
static void loop__timer__heap_matches_model_under_random_ops(void **state)
{
    enum { OPS = 10000 };
    static model_t md;
    loop_t *loop = new_loop();
    uint64_t rng = 0x9e3779b97f4a7c15ull, seq = 0, deadline;
    size_t op, i;

    (void)state;
    memset(&md, 0, sizeof md);
    for (i = 0; i < MODEL_POOL; i++)
        ttimer_init(&md.tt[i], (int)i, &md.log);

    for (op = 0; op < OPS; op++) {
        size_t which = (size_t)(rng_next(&rng) % MODEL_POOL);
        unsigned kind = (unsigned)(rng_next(&rng) % 100);

        if (kind < 55) {
            ttimer_start(loop, &md.tt[which], rng_next(&rng) % 6 * 7);
            md.tt[which].seq = ++seq;
            if (!md.armed[which])
                md.n_armed++;
            md.armed[which] = 1;
        } else if (kind < 95) {
            loop_timer_stop(loop, &md.tt[which].t);
            if (md.armed[which])
                md.n_armed--;
            md.armed[which] = 0;
        } else {
            /* let whatever is due fire, mid-sequence */
            assert_true(loop_run_once(loop, 0) >= 0);
        }
        if (kind < 95) /* (after a run, model_check() learns of the firings) */
            assert_int_equal(!!loop_timer_armed(&md.tt[which].t), md.armed[which]);
        if (op % 97 == 0 || kind >= 95)
            model_check(&md);
    }
    model_check(&md);
    /* drain the rest, checking the order as it goes */
    deadline = mono_ms() + DEADLINE_MS;
    while (md.n_armed > 0) {
        if (mono_ms() > deadline)
            fail_msg("%zu timers never fired", md.n_armed);
        assert_true(loop_run_once(loop, 100) >= 0);
        model_check(&md);
    }
    for (i = 0; i < MODEL_POOL; i++)
        assert_false(md.tt[i].early);
    assert_true(md.log.n > 100); /* timers did fire, mid-sequence and at the end */
    loop_free(loop);
}

/* ---- file descriptors -------------------------------------------------- */

typedef struct fdrec {
    int calls;
    int fd;
    short revents;
    void *arg;
    /* optional actions */
    int del_fd; /* loop_fd_del this fd in the callback (-1: none) */
    int drain;  /* read one byte */
} fdrec_t;

static void fd_cb(loop_t *loop, int fd, short revents, void *arg)
{
    fdrec_t *r = arg;
    char c;

    r->calls++;
    r->fd = fd;
    r->revents = revents;
    r->arg = arg;
    if (r->drain)
        assert_int_equal(read(fd, &c, 1), 1);
    if (r->del_fd >= 0)
        loop_fd_del(loop, r->del_fd);
}

static void fd_cb_other(loop_t *loop, int fd, short revents, void *arg)
{
    fdrec_t *r = arg;

    (void)loop;
    r->calls += 100;
    r->fd = fd;
    r->revents = revents;
}

static void make_pipe(int p[2])
{
    assert_int_equal(pipe(p), 0);
}

static void write_byte(int fd)
{
    assert_int_equal(write(fd, "x", 1), 1);
}

static void close_pipe(int p[2])
{
    close(p[0]);
    close(p[1]);
}

static void loop__fd__readable_after_write(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1, .drain = 1};
    int p[2];

    (void)state;
    make_pipe(p);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 0);
    write_byte(p[1]);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(r.calls, 1);
    assert_int_equal(r.fd, p[0]);
    assert_true(r.revents & POLLIN);
    assert_ptr_equal(r.arg, &r);
    /* drained: quiet again */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__events_change_and_pollout(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1}, w = {.del_fd = -1};
    int p[2];

    (void)state;
    make_pipe(p);
    write_byte(p[1]);
    assert_int_equal(loop_fd_add(loop, p[0], 0, fd_cb, &r), 0);
    /* readable, but not asked for */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 0);
    loop_fd_events(loop, p[0], POLLIN);
    assert_int_equal(loop_run_once(loop, 0), 1);
    assert_int_equal(r.calls, 1);
    loop_fd_events(loop, p[0], 0);
    loop_fd_events(loop, 12345, POLLIN); /* unknown fd: no-op */
    /* a pipe's write end is writable */
    assert_int_equal(loop_fd_add(loop, p[1], POLLOUT, fd_cb, &w), 0);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(w.calls, 1);
    assert_int_equal(w.fd, p[1]);
    assert_true(w.revents & POLLOUT);
    assert_int_equal(r.calls, 1);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__removed_fd_not_called(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1};
    int p[2];

    (void)state;
    make_pipe(p);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    write_byte(p[1]);
    loop_fd_del(loop, p[0]);
    loop_fd_del(loop, p[0]);  /* twice: no-op */
    loop_fd_del(loop, 12345); /* unknown: no-op */
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 0);
    /* added back: called again */
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(r.calls, 1);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__removed_fd_does_not_cut_wait_short(void **state)
{
    static fired_t log;
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1};
    ttimer_t a;
    int p[2];

    (void)state;
    memset(&log, 0, sizeof log);
    make_pipe(p);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    write_byte(p[1]); /* readable, but no longer watched */
    loop_fd_del(loop, p[0]);
    ttimer_init(&a, 1, &log);
    ttimer_start(loop, &a, 20);
    /* the one call waits for the timer: the removed fd is not polled */
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(log.n, 1);
    assert_int_equal(r.calls, 0);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__removed_in_callback_of_same_iteration(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t ra = {.del_fd = -1}, rb = {.del_fd = -1};
    int a[2], b[2];

    (void)state;
    make_pipe(a);
    make_pipe(b);
    /* each removes the other: whichever runs first, the other must not */
    ra.del_fd = b[0];
    rb.del_fd = a[0];
    assert_int_equal(loop_fd_add(loop, a[0], POLLIN, fd_cb, &ra), 0);
    assert_int_equal(loop_fd_add(loop, b[0], POLLIN, fd_cb, &rb), 0);
    write_byte(a[1]);
    write_byte(b[1]);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(ra.calls + rb.calls, 1);
    /* the survivor is still watched; the removed one is not */
    assert_int_equal(loop_run_once(loop, 0), 1);
    assert_int_equal(ra.calls + rb.calls, 2);
    assert_true(ra.calls == 2 || rb.calls == 2);
    loop_free(loop);
    close_pipe(a);
    close_pipe(b);
}

static void loop__fd__removes_itself_in_callback(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1};
    int p[2];

    (void)state;
    make_pipe(p);
    r.del_fd = p[0];
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    write_byte(p[1]);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(loop_run_once(loop, 0), 0);
    assert_int_equal(r.calls, 1);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__add_again_replaces_registration(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1}, r2 = {.del_fd = -1};
    int p[2];

    (void)state;
    make_pipe(p);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb_other, &r2), 0);
    write_byte(p[1]);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1); /* one registration */
    assert_int_equal(r.calls, 0);
    assert_int_equal(r2.calls, 100);
    loop_free(loop);
    close_pipe(p);
}

static void loop__fd__many_fds_grow_the_set(void **state)
{
    enum { N = 40 };
    loop_t *loop = new_loop();
    static fdrec_t r[N];
    int p[N][2];
    int i, total = 0;

    (void)state;
    for (i = 0; i < N; i++) {
        memset(&r[i], 0, sizeof r[i]);
        r[i].del_fd = -1;
        r[i].drain = 1;
        make_pipe(p[i]);
        assert_int_equal(loop_fd_add(loop, p[i][0], POLLIN, fd_cb, &r[i]), 0);
    }
    for (i = 0; i < N; i += 3)
        write_byte(p[i][1]);
    for (i = 1; i < N; i += 3)
        loop_fd_del(loop, p[i][0]);
    for (i = 1; i < N; i += 3)
        write_byte(p[i][1]);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), (N + 2) / 3);
    for (i = 0; i < N; i++) {
        assert_int_equal(r[i].calls, i % 3 == 0);
        if (r[i].calls)
            assert_int_equal(r[i].fd, p[i][0]);
        total += r[i].calls;
    }
    assert_int_equal(total, (N + 2) / 3);
    loop_free(loop);
    for (i = 0; i < N; i++)
        close_pipe(p[i]);
}

typedef struct {
    loop_t *loop;
    int fd;
    fdrec_t *rec;
    int calls;
} timer_del_t;

static void timer_del_cb(loop_t *loop, void *arg)
{
    timer_del_t *d = arg;
    d->calls++;
    loop_fd_del(loop, d->fd);
}

static void loop__fd__removed_by_timer_in_same_iteration(void **state)
{
    loop_t *loop = new_loop();
    fdrec_t r = {.del_fd = -1};
    timer_del_t d = {0};
    loop_timer_t t = {0};
    int p[2];

    (void)state;
    make_pipe(p);
    assert_int_equal(loop_fd_add(loop, p[0], POLLIN, fd_cb, &r), 0);
    write_byte(p[1]);
    d.fd = p[0];
    /* timers run before fd callbacks: the removal wins */
    assert_int_equal(loop_timer_start(loop, &t, 0, timer_del_cb, &d), 0);
    assert_int_equal(loop_run_once(loop, DEADLINE_MS), 1);
    assert_int_equal(d.calls, 1);
    assert_int_equal(r.calls, 0);
    loop_free(loop);
    close_pipe(p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(loop__timer__fires_in_due_order_ties_in_arming_order),
        cmocka_unit_test(loop__timer__stop_prevents_firing),
        cmocka_unit_test(loop__timer__stop_other_from_callback),
        cmocka_unit_test(loop__timer__stop_later_timer_from_callback),
        cmocka_unit_test(loop__timer__stop_self_from_callback),
        cmocka_unit_test(loop__timer__rearm_self_in_callback_runs_next_iteration),
        cmocka_unit_test(loop__timer__restart_replaces_due_time),
        cmocka_unit_test(loop__free__disarms_pending_timers),
        cmocka_unit_test(loop__run_once__returns_when_timer_due_before_max_wait),
        cmocka_unit_test(loop__run_once__zero_wait_does_not_block),
        cmocka_unit_test(loop__timer__heap_matches_model_under_random_ops),
        cmocka_unit_test(loop__fd__readable_after_write),
        cmocka_unit_test(loop__fd__events_change_and_pollout),
        cmocka_unit_test(loop__fd__removed_fd_not_called),
        cmocka_unit_test(loop__fd__removed_fd_does_not_cut_wait_short),
        cmocka_unit_test(loop__fd__removed_in_callback_of_same_iteration),
        cmocka_unit_test(loop__fd__removes_itself_in_callback),
        cmocka_unit_test(loop__fd__add_again_replaces_registration),
        cmocka_unit_test(loop__fd__many_fds_grow_the_set),
        cmocka_unit_test(loop__fd__removed_by_timer_in_same_iteration),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
