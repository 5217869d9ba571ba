/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of component/dbpool.c, the database worker pool, with jobs
 * that never touch their store (the conninfo is bogus: store_new() does
 * not connect until used). Completions run only from dbpool_drain() in the
 * calling thread; one key's jobs complete in submission order; different
 * keys run concurrently (a rendezvous that only two concurrent jobs can
 * pass); the wake-up descriptor; the pending count; dbpool_free() finishing
 * queued work; submit refused while stopping. Every wait is a condition
 * wait or a poll with a deadline, so a broken pool fails the test instead
 * of hanging it.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <time.h>
#include <unistd.h>

#include "dbpool.h"

#define CONNINFO    "postgresql://bitween-unit.invalid:1/none?connect_timeout=1"
#define DEADLINE_MS 10000

/* ---- fixtures ---------------------------------------------------------- */

typedef struct fixture {
    int devnull;
    log_t *log;
} fixture_t;

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);

    if (!f)
        return -1;
    f->devnull = open("/dev/null", O_WRONLY | O_CLOEXEC);
    if (f->devnull < 0)
        return -1;
    f->log = log_new(f->devnull, LOG_LEVEL_ERROR, 0);
    if (!f->log)
        return -1;
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;

    log_free(f->log);
    close(f->devnull);
    free(f);
    return 0;
}

static dbpool_t *new_pool(void **state, unsigned workers)
{
    fixture_t *f = *state;
    dbpool_t *pool = dbpool_new(CONNINFO, NULL, workers, f->log);

    assert_non_null(pool);
    return pool;
}

static uint64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static struct timespec deadline_in(unsigned ms)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    ts.tv_sec += ms / 1000;
    ts.tv_nsec += (long)(ms % 1000) * 1000000L;
    if (ts.tv_nsec >= 1000000000L) {
        ts.tv_sec++;
        ts.tv_nsec -= 1000000000L;
    }
    return ts;
}

/* Whether dbpool_fd() polls readable within `ms`. */
static int fd_readable(dbpool_t *pool, int ms)
{
    struct pollfd p = {.fd = dbpool_fd(pool), .events = POLLIN};
    int rc;

    do
        rc = poll(&p, 1, ms);
    while (rc < 0 && errno == EINTR);
    assert_true(rc >= 0);
    return rc > 0 && (p.revents & POLLIN);
}

/* Drain (waiting on the descriptor) until `*count` reaches `want`. */
static void drain_until(dbpool_t *pool, const size_t *count, size_t want)
{
    uint64_t deadline = mono_ms() + DEADLINE_MS;

    while (*count < want) {
        uint64_t now = mono_ms();
        if (now > deadline)
            fail_msg("only %zu of %zu completions before the deadline", *count, want);
        if (fd_readable(pool, (int)(deadline - now)))
            dbpool_drain(pool);
    }
}

/* ---- a gate and a counter that worker threads share with the test ------- */

typedef struct sync {
    pthread_mutex_t mu;
    pthread_cond_t cv;
    int open;      /* gate */
    size_t runs;   /* run functions finished */
    int arrived;   /* rendezvous */
    int timed_out; /* a rendezvous or gate wait gave up */
} sync_t;

static void sync_init(sync_t *s)
{
    memset(s, 0, sizeof *s);
    assert_int_equal(pthread_mutex_init(&s->mu, NULL), 0);
    assert_int_equal(pthread_cond_init(&s->cv, NULL), 0);
}

static void sync_destroy(sync_t *s)
{
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
}

static void sync_open_gate(sync_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->open = 1;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Worker side: wait for the gate, at most DEADLINE_MS. */
static void sync_wait_gate(sync_t *s)
{
    struct timespec dl = deadline_in(DEADLINE_MS);
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    while (!s->open && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    if (!s->open)
        s->timed_out = 1;
    pthread_mutex_unlock(&s->mu);
}

static void sync_run_done(sync_t *s)
{
    pthread_mutex_lock(&s->mu);
    s->runs++;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* Test side: wait until `want` run functions finished. */
static void sync_wait_runs(sync_t *s, size_t want)
{
    struct timespec dl = deadline_in(DEADLINE_MS);
    int rc = 0;

    pthread_mutex_lock(&s->mu);
    while (s->runs < want && rc != ETIMEDOUT)
        rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
    pthread_mutex_unlock(&s->mu);
    if (rc == ETIMEDOUT && s->runs < want)
        fail_msg("only %zu of %zu jobs ran before the deadline", s->runs, want);
}

/* ---- jobs --------------------------------------------------------------- */

typedef struct job {
    sync_t *sync;
    int gate;       /* wait for the gate before finishing */
    int rendezvous; /* wait (up to rendezvous_ms) for another job */
    unsigned rendezvous_ms;
    int met; /* the other job arrived in time */
    pthread_t run_thread, done_thread;
    store_t *store;
    int key, seq;
    /* shared recorders */
    size_t *done_count;
    int *order; /* done order: key * 100000 + seq */
    size_t *n_order;
    pthread_mutex_t *order_mu;
    int *run_order;
    size_t *n_run_order;
    /* submit from the completion */
    dbpool_t *pool;
    int resubmit;
    int resubmit_rc;
} job_t;

static void job_run(store_t *st, void *arg)
{
    job_t *j = arg;

    j->run_thread = pthread_self();
    j->store = st;
    if (j->run_order) {
        pthread_mutex_lock(j->order_mu);
        j->run_order[(*j->n_run_order)++] = j->key * 100000 + j->seq;
        pthread_mutex_unlock(j->order_mu);
    }
    if (j->gate)
        sync_wait_gate(j->sync);
    if (j->rendezvous) {
        sync_t *s = j->sync;
        struct timespec dl = deadline_in(j->rendezvous_ms);
        int rc = 0;

        pthread_mutex_lock(&s->mu);
        s->arrived++;
        pthread_cond_broadcast(&s->cv);
        while (s->arrived < 2 && rc != ETIMEDOUT)
            rc = pthread_cond_timedwait(&s->cv, &s->mu, &dl);
        j->met = s->arrived >= 2 && rc != ETIMEDOUT;
        pthread_mutex_unlock(&s->mu);
    }
    if (j->sync)
        sync_run_done(j->sync);
}

static void job_noop_done(void *arg)
{
    (void)arg;
}

static void job_done(void *arg)
{
    job_t *j = arg;

    j->done_thread = pthread_self();
    if (j->order)
        j->order[(*j->n_order)++] = j->key * 100000 + j->seq;
    if (j->resubmit)
        j->resubmit_rc = dbpool_submit(j->pool, "other", NULL, job_noop_done, NULL);
    (*j->done_count)++;
}

/* ---- tests -------------------------------------------------------------- */

static void dbpool__drain__completions_run_only_there_in_calling_thread(void **state)
{
    enum { N = 32 };
    dbpool_t *pool = new_pool(state, 3);
    job_t jobs[N];
    sync_t s;
    size_t done = 0, i;
    char key[16];

    sync_init(&s);
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < N; i++) {
        jobs[i].sync = &s;
        jobs[i].done_count = &done;
        snprintf(key, sizeof key, "u%zu", i);
        assert_int_equal(dbpool_submit(pool, key, job_run, job_done, &jobs[i]), 0);
    }
    sync_wait_runs(&s, N);
    /* every run finished, but no completion ran without a drain */
    assert_int_equal(done, 0);
    assert_int_equal(dbpool_pending(pool), N);
    drain_until(pool, &done, N);
    for (i = 0; i < N; i++) {
        assert_true(pthread_equal(jobs[i].done_thread, pthread_self()));
        assert_false(pthread_equal(jobs[i].run_thread, pthread_self()));
    }
    assert_int_equal(dbpool_pending(pool), 0);
    assert_int_equal(dbpool_drain(pool), 0); /* nothing left */
    dbpool_free(pool);
    sync_destroy(&s);
}

static void dbpool__submit__one_keys_jobs_complete_in_order(void **state)
{
    enum { N = 1000, KEYS = 10 };
    dbpool_t *pool = new_pool(state, 4);
    static job_t jobs[N];
    static int order[N], run_order[N];
    int next_seq[KEYS], last_done[KEYS], last_run[KEYS];
    size_t done = 0, n_order = 0, n_run = 0, i;
    pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
    char key[64];

    memset(jobs, 0, sizeof jobs);
    memset(next_seq, 0, sizeof next_seq);
    for (i = 0; i < N; i++) {
        job_t *j = &jobs[i];
        j->key = (int)((i * 7 + i / 13) % KEYS); /* keys interleaved irregularly */
        j->seq = next_seq[j->key]++;
        j->done_count = &done;
        j->order = order;
        j->n_order = &n_order;
        j->order_mu = &mu;
        j->run_order = run_order;
        j->n_run_order = &n_run;
        snprintf(key, sizeof key, "user%d@example.org", j->key);
        assert_int_equal(dbpool_submit(pool, key, job_run, job_done, j), 0);
        if (i % 50 == 0)
            dbpool_drain(pool); /* completions while submitting too */
    }
    drain_until(pool, &done, N);
    assert_int_equal(n_order, N);
    assert_int_equal(n_run, N);
    for (i = 0; i < KEYS; i++) {
        last_done[i] = -1;
        last_run[i] = -1;
    }
    for (i = 0; i < N; i++) {
        int k = order[i] / 100000, seq = order[i] % 100000;
        if (seq != last_done[k] + 1)
            fail_msg("key %d: completion of job %d after job %d", k, seq, last_done[k]);
        last_done[k] = seq;
        k = run_order[i] / 100000;
        seq = run_order[i] % 100000;
        if (seq != last_run[k] + 1)
            fail_msg("key %d: run of job %d after job %d", k, seq, last_run[k]);
        last_run[k] = seq;
    }
    for (i = 0; i < KEYS; i++)
        assert_int_equal(last_done[i], next_seq[i] - 1);
    dbpool_free(pool);
    pthread_mutex_destroy(&mu);
}

/* A key whose jobs run on another worker (another store) than key NULL's. */
static const char *key_on_other_worker(dbpool_t *pool, char *buf, size_t size)
{
    job_t probe[33];
    size_t done = 0, i;

    memset(probe, 0, sizeof probe);
    for (i = 0; i < 33; i++) {
        probe[i].done_count = &done;
        snprintf(buf, size, "user%zu@example.org", i);
        assert_int_equal(dbpool_submit(pool, i ? buf : NULL, job_run, job_done, &probe[i]), 0);
    }
    drain_until(pool, &done, 33);
    assert_non_null(probe[0].store);
    for (i = 1; i < 33; i++)
        if (probe[i].store != probe[0].store) {
            snprintf(buf, size, "user%zu@example.org", i);
            return buf;
        }
    fail_msg("32 keys all went to worker 0");
    return NULL;
}

static void dbpool__submit__different_keys_run_concurrently(void **state)
{
    dbpool_t *pool = new_pool(state, 2);
    job_t a, b;
    sync_t s;
    size_t done = 0;
    char buf[64];
    const char *other = key_on_other_worker(pool, buf, sizeof buf);

    sync_init(&s);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.sync = b.sync = &s;
    a.rendezvous = b.rendezvous = 1;
    a.rendezvous_ms = b.rendezvous_ms = DEADLINE_MS;
    a.done_count = b.done_count = &done;
    /* each waits for the other: both pass only if they run at once */
    assert_int_equal(dbpool_submit(pool, NULL, job_run, job_done, &a), 0);
    assert_int_equal(dbpool_submit(pool, other, job_run, job_done, &b), 0);
    drain_until(pool, &done, 2);
    assert_true(a.met);
    assert_true(b.met);
    assert_ptr_not_equal(a.store, b.store);
    dbpool_free(pool);
    sync_destroy(&s);
}

static void dbpool__submit__same_key_never_concurrent(void **state)
{
    dbpool_t *pool = new_pool(state, 4);
    job_t a, b;
    sync_t s;
    size_t done = 0;

    sync_init(&s);
    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.sync = b.sync = &s;
    a.rendezvous = b.rendezvous = 1;
    a.rendezvous_ms = b.rendezvous_ms = 150;
    a.done_count = b.done_count = &done;
    assert_int_equal(dbpool_submit(pool, "same@example.org", job_run, job_done, &a), 0);
    assert_int_equal(dbpool_submit(pool, "same@example.org", job_run, job_done, &b), 0);
    drain_until(pool, &done, 2);
    /* the first waited alone and gave up; the second found it had come */
    assert_false(a.met);
    assert_true(b.met);
    assert_ptr_equal(a.store, b.store);
    dbpool_free(pool);
    sync_destroy(&s);
}

static void dbpool__fd__readable_when_a_completion_waits(void **state)
{
    dbpool_t *pool = new_pool(state, 2);
    job_t j;
    sync_t s;
    size_t done = 0;

    sync_init(&s);
    memset(&j, 0, sizeof j);
    j.sync = &s;
    j.gate = 1;
    j.done_count = &done;
    assert_true(dbpool_fd(pool) >= 0);
    assert_false(fd_readable(pool, 0));
    assert_int_equal(dbpool_submit(pool, "k", job_run, job_done, &j), 0);
    /* running, held at the gate: nothing to drain yet */
    assert_false(fd_readable(pool, 0));
    assert_int_equal(dbpool_drain(pool), 0);
    assert_int_equal(done, 0);
    sync_open_gate(&s);
    assert_true(fd_readable(pool, DEADLINE_MS));
    assert_int_equal(dbpool_drain(pool), 1);
    assert_int_equal(done, 1);
    assert_false(s.timed_out);
    /* drained: quiet again */
    assert_false(fd_readable(pool, 0));
    dbpool_free(pool);
    sync_destroy(&s);
}

static void dbpool__pending__counts_queued_running_and_undrained(void **state)
{
    dbpool_t *pool = new_pool(state, 2);
    job_t jobs[3];
    sync_t s;
    size_t done = 0, i;

    sync_init(&s);
    memset(jobs, 0, sizeof jobs);
    assert_int_equal(dbpool_pending(pool), 0);
    for (i = 0; i < 3; i++) {
        jobs[i].sync = &s;
        jobs[i].gate = i == 0; /* the first holds the others behind it */
        jobs[i].done_count = &done;
        assert_int_equal(dbpool_submit(pool, "k", job_run, job_done, &jobs[i]), 0);
        assert_int_equal(dbpool_pending(pool), i + 1);
    }
    assert_int_equal(dbpool_drain(pool), 0);
    assert_int_equal(dbpool_pending(pool), 3);
    sync_open_gate(&s);
    sync_wait_runs(&s, 3);
    assert_int_equal(dbpool_pending(pool), 3); /* finished, not drained */
    drain_until(pool, &done, 3);
    assert_int_equal(dbpool_pending(pool), 0);
    dbpool_free(pool);
    sync_destroy(&s);
}

/* The queue length of a worker counts its queued and running jobs, not
 * the finished ones waiting to be drained; other workers stay at zero. */
static void dbpool__queue_length__per_worker(void **state)
{
    dbpool_t *pool = new_pool(state, 2);
    job_t jobs[3];
    sync_t s;
    size_t done = 0, i, total;
    unsigned w, busy = 2;

    sync_init(&s);
    memset(jobs, 0, sizeof jobs);
    assert_int_equal(dbpool_workers(pool), 2);
    for (i = 0; i < 3; i++) {
        jobs[i].sync = &s;
        jobs[i].gate = i == 0;
        jobs[i].done_count = &done;
        assert_int_equal(dbpool_submit(pool, "k", job_run, job_done, &jobs[i]), 0);
    }
    total = 0;
    for (w = 0; w < 2; w++) {
        size_t n = dbpool_queue_length(pool, w);
        total += n;
        if (n)
            busy = w;
    }
    assert_int_equal(total, 3); /* one key: one worker holds all three */
    assert_int_equal(dbpool_queue_length(pool, busy), 3);
    assert_int_equal(dbpool_queue_length(pool, 2), 0); /* out of range */
    sync_open_gate(&s);
    sync_wait_runs(&s, 3);
    {
        int spins = 0;
        while (dbpool_queue_length(pool, busy) != 0 && spins++ < DEADLINE_MS) {
            struct timespec ms = {0, 1000000};
            nanosleep(&ms, NULL); /* the worker decrements right after the run */
        }
    }
    assert_int_equal(dbpool_queue_length(pool, busy), 0);
    drain_until(pool, &done, 3);
    dbpool_free(pool);
    sync_destroy(&s);
}

static void dbpool__submit__null_run_completes_in_key_order(void **state)
{
    enum { N = 20 };
    dbpool_t *pool = new_pool(state, 3);
    job_t jobs[N];
    int order[N];
    size_t done = 0, n_order = 0, i;

    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < N; i++) {
        jobs[i].seq = (int)i;
        jobs[i].done_count = &done;
        jobs[i].order = order;
        jobs[i].n_order = &n_order;
        /* every other job has no run function */
        assert_int_equal(dbpool_submit(pool, "k", i % 2 ? NULL : job_run, job_done, &jobs[i]), 0);
    }
    drain_until(pool, &done, N);
    for (i = 0; i < N; i++)
        assert_int_equal(order[i], (int)i);
    dbpool_free(pool);
}

static void dbpool__new__zero_workers_means_one(void **state)
{
    dbpool_t *pool = new_pool(state, 0);
    job_t a, b;
    size_t done = 0;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.done_count = b.done_count = &done;
    assert_int_equal(dbpool_submit(pool, "x", job_run, job_done, &a), 0);
    assert_int_equal(dbpool_submit(pool, "y", job_run, job_done, &b), 0);
    drain_until(pool, &done, 2);
    assert_non_null(a.store);
    assert_ptr_equal(a.store, b.store);
    dbpool_free(pool);
}

static void dbpool__free__runs_queued_jobs_and_completions(void **state)
{
    enum { N = 200 };
    dbpool_t *pool = new_pool(state, 4);
    static job_t jobs[N];
    sync_t s;
    size_t done = 0, i;
    char key[16];

    sync_init(&s);
    memset(jobs, 0, sizeof jobs);
    for (i = 0; i < N; i++) {
        jobs[i].sync = &s;
        jobs[i].done_count = &done;
        snprintf(key, sizeof key, "k%zu", i % 9);
        assert_int_equal(dbpool_submit(pool, key, job_run, job_done, &jobs[i]), 0);
    }
    dbpool_free(pool); /* no drain before */
    assert_int_equal(s.runs, N);
    assert_int_equal(done, N);
    for (i = 0; i < N; i++)
        assert_true(pthread_equal(jobs[i].done_thread, pthread_self()));
    sync_destroy(&s);
}

static void dbpool__submit__refused_while_stopping(void **state)
{
    dbpool_t *pool = new_pool(state, 2);
    job_t a, b;
    size_t done = 0;

    memset(&a, 0, sizeof a);
    memset(&b, 0, sizeof b);
    a.done_count = b.done_count = &done;
    a.pool = b.pool = pool;
    a.resubmit = b.resubmit = 1;
    a.resubmit_rc = b.resubmit_rc = 99;
    /* from a completion drained normally, a submit is accepted ... */
    assert_int_equal(dbpool_submit(pool, "k", job_run, job_done, &a), 0);
    drain_until(pool, &done, 1);
    assert_int_equal(a.resubmit_rc, 0);
    assert_int_equal(dbpool_pending(pool), 1); /* the resubmitted job */
    /* ... from one that dbpool_free() runs, refused */
    assert_int_equal(dbpool_submit(pool, "k", job_run, job_done, &b), 0);
    dbpool_free(pool);
    assert_int_equal(done, 2);
    assert_int_equal(b.resubmit_rc, -1);
}

static void dbpool__free__null_is_noop(void **state)
{
    (void)state;
    dbpool_free(NULL);
    assert_true(1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(dbpool__drain__completions_run_only_there_in_calling_thread,
                                        setup, teardown),
        cmocka_unit_test_setup_teardown(dbpool__submit__one_keys_jobs_complete_in_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__submit__different_keys_run_concurrently, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__submit__same_key_never_concurrent, setup, teardown),
        cmocka_unit_test_setup_teardown(dbpool__fd__readable_when_a_completion_waits, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__queue_length__per_worker, setup, teardown),
        cmocka_unit_test_setup_teardown(dbpool__pending__counts_queued_running_and_undrained, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__submit__null_run_completes_in_key_order, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__new__zero_workers_means_one, setup, teardown),
        cmocka_unit_test_setup_teardown(dbpool__free__runs_queued_jobs_and_completions, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(dbpool__submit__refused_while_stopping, setup, teardown),
        cmocka_unit_test(dbpool__free__null_is_noop),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
