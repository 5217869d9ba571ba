/* SPDX-License-Identifier: MIT */
/*
 * Schema migration runner. The numbered scripts of sql/ are compiled into
 * the binary (migrate_scripts); migrate_apply() applies the missing ones in
 * order, each in its own transaction, records them in schema_migrations,
 * holds an advisory lock so that concurrent starters serialize, and refuses
 * a database whose schema is newer than the binary knows.
 */
#ifndef BITWEEN_STORAGE_MIGRATE_H
#define BITWEEN_STORAGE_MIGRATE_H

#include <stddef.h>

#include <libpq-fe.h>

typedef struct migrate_script {
    int version;      /* 1, 2, ... without gaps */
    const char *name; /* from the file name, e.g. "initial" */
    const char *sql;  /* the whole script */
} migrate_script_t;

/* Generated from sql/ at build time. */
extern const migrate_script_t migrate_scripts[];
extern const size_t migrate_script_count;

enum {
    MIGRATE_OK = 0,
    MIGRATE_EDB = -1,    /* a statement failed; message says which */
    MIGRATE_ENEWER = -2, /* database schema newer than this binary */
    MIGRATE_ELOST = -3   /* connection lost: retry later */
};

/** Highest schema version this binary knows. */
int migrate_latest(void);

/**
 * Bring the database behind `conn` (connected, idle) to migrate_latest().
 * On success `*before` and `*after` (either may be NULL) receive the schema
 * version found and the one reached. On failure `msg` (size `msglen`) says
 * what went wrong; a failed script leaves no trace (its transaction is
 * rolled back) and the versions before it stay applied.
 */
int migrate_apply(PGconn *conn, int *before, int *after, char *msg, size_t msglen);

/**
 * Read the applied schema version into `*version` (0 for an empty
 * database). Same error codes as migrate_apply().
 */
int migrate_version(PGconn *conn, int *version, char *msg, size_t msglen);

#endif /* BITWEEN_STORAGE_MIGRATE_H */
