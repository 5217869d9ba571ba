/* SPDX-License-Identifier: MIT */
/*
 * Database worker pool (see dbpool.h): one FIFO per worker, one shared
 * completion list, an eventfd to wake the XMPP thread.
 */
#include "dbpool.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

typedef struct dbjob {
    struct dbjob *next;
    dbpool_run_fn run;
    dbpool_done_fn done;
    void *arg;
} dbjob_t;

typedef struct dbworker {
    dbpool_t *pool;
    pthread_t thread;
    int started;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    dbjob_t *head, *tail;
    atomic_size_t queued; /* jobs queued or running */
    int stop;
    store_t *store;
} dbworker_t;

struct dbpool {
    log_t *log;
    unsigned n;
    dbworker_t *workers;
    int efd;
    pthread_mutex_t done_mu;
    dbjob_t *done_head, *done_tail;
    atomic_size_t pending;
    int stopping;
};

static void *dbworker_main(void *p)
{
    dbworker_t *w = p;
    dbpool_t *pool = w->pool;

    for (;;) {
        dbjob_t *job;
        pthread_mutex_lock(&w->mu);
        while (!w->head && !w->stop)
            pthread_cond_wait(&w->cv, &w->mu);
        job = w->head;
        if (job) {
            w->head = job->next;
            if (!w->head)
                w->tail = NULL;
        }
        pthread_mutex_unlock(&w->mu);
        if (!job)
            break; /* stop requested and queue empty */
        if (job->run)
            job->run(w->store, job->arg);
        atomic_fetch_sub(&w->queued, 1);
        job->next = NULL;
        pthread_mutex_lock(&pool->done_mu);
        if (pool->done_tail)
            pool->done_tail->next = job;
        else
            pool->done_head = job;
        pool->done_tail = job;
        pthread_mutex_unlock(&pool->done_mu);
        {
            uint64_t one = 1;
            ssize_t rc;
            do
                rc = write(pool->efd, &one, sizeof one);
            while (rc < 0 && errno == EINTR);
        }
    }
    return NULL;
}

/* FNV-1a: stable spread of keys over workers. */
static unsigned dbpool_pick(const dbpool_t *pool, const char *key)
{
    uint32_t h = 2166136261u;
    if (!key)
        return 0;
    for (; *key; key++) {
        h ^= (unsigned char)*key;
        h *= 16777619u;
    }
    return h % pool->n;
}

dbpool_t *dbpool_new(const char *conninfo, const store_options_t *opts, unsigned workers,
                     log_t *log)
{
    dbpool_t *pool = calloc(1, sizeof *pool);
    unsigned i;

    if (!pool)
        return NULL;
    pool->log = log;
    pool->n = workers ? workers : 1;
    pool->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    pthread_mutex_init(&pool->done_mu, NULL);
    atomic_init(&pool->pending, 0);
    pool->workers = calloc(pool->n, sizeof *pool->workers);
    if (pool->efd < 0 || !pool->workers) {
        dbpool_free(pool);
        return NULL;
    }
    for (i = 0; i < pool->n; i++) {
        dbworker_t *w = &pool->workers[i];
        w->pool = pool;
        atomic_init(&w->queued, 0);
        pthread_mutex_init(&w->mu, NULL);
        pthread_cond_init(&w->cv, NULL);
        w->store = store_new(conninfo, opts);
        if (!w->store || pthread_create(&w->thread, NULL, dbworker_main, w) != 0) {
            LOG_ERROR(log, "db", "cannot start database worker %u", i);
            dbpool_free(pool);
            return NULL;
        }
        w->started = 1;
    }
    return pool;
}

int dbpool_submit(dbpool_t *pool, const char *key, dbpool_run_fn run, dbpool_done_fn done,
                  void *arg)
{
    dbworker_t *w;
    dbjob_t *job;

    if (pool->stopping)
        return -1;
    job = calloc(1, sizeof *job);
    if (!job)
        return -1;
    job->run = run;
    job->done = done;
    job->arg = arg;
    w = &pool->workers[dbpool_pick(pool, key)];
    atomic_fetch_add(&pool->pending, 1);
    atomic_fetch_add(&w->queued, 1);
    pthread_mutex_lock(&w->mu);
    if (w->tail)
        w->tail->next = job;
    else
        w->head = job;
    w->tail = job;
    pthread_cond_signal(&w->cv);
    pthread_mutex_unlock(&w->mu);
    return 0;
}

int dbpool_fd(const dbpool_t *pool)
{
    return pool->efd;
}

size_t dbpool_pending(const dbpool_t *pool)
{
    return atomic_load(&pool->pending);
}

unsigned dbpool_workers(const dbpool_t *pool)
{
    return pool->n;
}

size_t dbpool_queue_length(const dbpool_t *pool, unsigned i)
{
    return i < pool->n ? atomic_load(&pool->workers[i].queued) : 0;
}

size_t dbpool_drain(dbpool_t *pool)
{
    uint64_t count;
    dbjob_t *list, *next;
    size_t ran = 0;

    while (read(pool->efd, &count, sizeof count) < 0 && errno == EINTR)
        ;
    pthread_mutex_lock(&pool->done_mu);
    list = pool->done_head;
    pool->done_head = pool->done_tail = NULL;
    pthread_mutex_unlock(&pool->done_mu);
    for (; list; list = next) {
        next = list->next;
        if (list->done)
            list->done(list->arg);
        free(list);
        atomic_fetch_sub(&pool->pending, 1);
        ran++;
    }
    return ran;
}

void dbpool_free(dbpool_t *pool)
{
    unsigned i;
    if (!pool)
        return;
    pool->stopping = 1;
    for (i = 0; pool->workers && i < pool->n; i++) {
        dbworker_t *w = &pool->workers[i];
        if (!w->started)
            continue;
        pthread_mutex_lock(&w->mu);
        w->stop = 1;
        pthread_cond_signal(&w->cv);
        pthread_mutex_unlock(&w->mu);
        pthread_join(w->thread, NULL);
    }
    dbpool_drain(pool);
    for (i = 0; pool->workers && i < pool->n; i++) {
        dbworker_t *w = &pool->workers[i];
        store_free(w->store);
        pthread_mutex_destroy(&w->mu);
        pthread_cond_destroy(&w->cv);
    }
    free(pool->workers);
    if (pool->efd >= 0)
        close(pool->efd);
    pthread_mutex_destroy(&pool->done_mu);
    free(pool);
}
