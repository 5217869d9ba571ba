/* SPDX-License-Identifier: MIT */
/*
 * Database worker pool: N threads, each with its own store_t connection.
 * The XMPP thread submits jobs; a job runs store calls in a worker and its
 * completion callback then runs back in the XMPP thread (dbpool_drain(),
 * called when dbpool_fd() becomes readable). Jobs with the same key (the
 * user's bare JID) always go to the same worker and run in submission
 * order, so one user's updates are applied and answered in order while
 * different users proceed in parallel.
 */
#ifndef BITWEEN_COMPONENT_DBPOOL_H
#define BITWEEN_COMPONENT_DBPOOL_H

#include <stddef.h>

#include "log.h"
#include "store.h"

typedef struct dbpool dbpool_t;

/** Runs in a worker thread with that worker's store. */
typedef void (*dbpool_run_fn)(store_t *st, void *arg);
/** Runs in the submitting thread, from dbpool_drain(). */
typedef void (*dbpool_done_fn)(void *arg);

/**
 * New pool of `workers` threads (at least 1) on `conninfo` (copied).
 * `log` is borrowed and must outlive the pool. Threads start at once; the
 * connections are made on first use. Returns NULL on failure.
 */
dbpool_t *dbpool_new(const char *conninfo, const store_options_t *opts, unsigned workers,
                     log_t *log) __attribute__((warn_unused_result));

/**
 * Queue a job on the worker chosen by `key` (NULL: worker 0). `run` may be
 * NULL (only `done` then runs, in order with the key's other jobs).
 * Returns 0, or -1 when out of memory or stopping (nothing queued).
 */
int dbpool_submit(dbpool_t *pool, const char *key, dbpool_run_fn run, dbpool_done_fn done,
                  void *arg);

/** Descriptor that polls readable when completions wait for dbpool_drain(). */
int dbpool_fd(const dbpool_t *pool);

/** Run the completion callbacks of finished jobs; returns how many ran. */
size_t dbpool_drain(dbpool_t *pool);

/** Jobs queued or running and completions not yet drained. */
size_t dbpool_pending(const dbpool_t *pool);

/** Number of workers. */
unsigned dbpool_workers(const dbpool_t *pool);

/** Jobs queued for or running in worker `i` (0 for a bad index). Any
 * thread may call it. */
size_t dbpool_queue_length(const dbpool_t *pool, unsigned i);

/**
 * Stop: refuse new jobs, let the workers finish what is queued, join them,
 * and run the remaining completions. Then free. NULL is a no-op.
 */
void dbpool_free(dbpool_t *pool);

#endif /* BITWEEN_COMPONENT_DBPOOL_H */
