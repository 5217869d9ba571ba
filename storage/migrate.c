/* SPDX-License-Identifier: MIT */
/*
 * Schema migration runner (see migrate.h): advisory lock, version table,
 * one transaction per script, refusal of newer schemas.
 */
#include "migrate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* pg_advisory_lock(classid, objid) key: "bitw", 1 = migrations. */
#define MIGRATE_LOCK_CLASS 0x62697477
#define MIGRATE_LOCK_OBJ   1

static int migrate_fail(PGconn *conn, PGresult *res, const char *what, char *msg, size_t msglen)
{
    const char *detail = res ? PQresultErrorMessage(res) : PQerrorMessage(conn);
    snprintf(msg, msglen, "%s: %s", what, detail && *detail ? detail : "unknown error");
    /* Trim libpq's trailing newline. */
    size_t n = strlen(msg);
    while (n > 0 && (msg[n - 1] == '\n' || msg[n - 1] == ' '))
        msg[--n] = '\0';
    return PQstatus(conn) == CONNECTION_OK ? MIGRATE_EDB : MIGRATE_ELOST;
}

/* Run a command returning no rows; 0 or an error code. */
static int migrate_exec(PGconn *conn, const char *sql, const char *what, char *msg, size_t msglen)
{
    PGresult *res = PQexec(conn, sql);
    int rc = 0;
    if (PQresultStatus(res) != PGRES_COMMAND_OK && PQresultStatus(res) != PGRES_TUPLES_OK)
        rc = migrate_fail(conn, res, what, msg, msglen);
    PQclear(res);
    return rc;
}

int migrate_latest(void)
{
    return migrate_script_count ? migrate_scripts[migrate_script_count - 1].version : 0;
}

static int migrate_read_version(PGconn *conn, int *version, char *msg, size_t msglen)
{
    PGresult *res = PQexec(conn, "SELECT coalesce(max(version), 0) FROM schema_migrations");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1)
        rc = migrate_fail(conn, res, "reading schema_migrations", msg, msglen);
    else
        *version = atoi(PQgetvalue(res, 0, 0));
    PQclear(res);
    return rc;
}

int migrate_version(PGconn *conn, int *version, char *msg, size_t msglen)
{
    PGresult *res = PQexec(conn, "SELECT to_regclass('schema_migrations') IS NOT NULL");
    int rc = 0;
    if (PQresultStatus(res) != PGRES_TUPLES_OK || PQntuples(res) != 1) {
        rc = migrate_fail(conn, res, "looking for schema_migrations", msg, msglen);
    } else if (strcmp(PQgetvalue(res, 0, 0), "t") != 0) {
        *version = 0;
    } else {
        rc = migrate_read_version(conn, version, msg, msglen);
    }
    PQclear(res);
    return rc;
}

static int migrate_run_script(PGconn *conn, const migrate_script_t *s, char *msg, size_t msglen)
{
    char version[16], what[128];
    const char *params[2];
    PGresult *res;
    int rc;

    snprintf(what, sizeof what, "migration %03d_%s", s->version, s->name);
    rc = migrate_exec(conn, "BEGIN", what, msg, msglen);
    if (rc)
        return rc;
    rc = migrate_exec(conn, s->sql, what, msg, msglen);
    if (rc == 0) {
        snprintf(version, sizeof version, "%d", s->version);
        params[0] = version;
        params[1] = s->name;
        res = PQexecParams(conn, "INSERT INTO schema_migrations (version, name) VALUES ($1, $2)", 2,
                           NULL, params, NULL, NULL, 0);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            rc = migrate_fail(conn, res, what, msg, msglen);
        PQclear(res);
    }
    if (rc == 0)
        rc = migrate_exec(conn, "COMMIT", what, msg, msglen);
    if (rc != 0 && PQstatus(conn) == CONNECTION_OK) {
        PGresult *rb = PQexec(conn, "ROLLBACK");
        PQclear(rb);
    }
    return rc;
}

int migrate_apply(PGconn *conn, int *before, int *after, char *msg, size_t msglen)
{
    char lock_sql[128];
    int version = 0, rc;
    size_t i;

    snprintf(lock_sql, sizeof lock_sql, "SELECT pg_advisory_lock(%d, %d)", MIGRATE_LOCK_CLASS,
             MIGRATE_LOCK_OBJ);
    rc = migrate_exec(conn, lock_sql, "taking the migration lock", msg, msglen);
    if (rc)
        return rc;
    rc = migrate_exec(conn,
                      "SET client_min_messages = warning;"
                      "CREATE TABLE IF NOT EXISTS schema_migrations ("
                      " version integer PRIMARY KEY,"
                      " name text NOT NULL,"
                      " applied_at timestamptz NOT NULL DEFAULT now())",
                      "creating schema_migrations", msg, msglen);
    if (rc == 0)
        rc = migrate_read_version(conn, &version, msg, msglen);
    if (rc == 0 && before)
        *before = version;
    if (rc == 0 && version > migrate_latest()) {
        snprintf(msg, msglen,
                 "database schema version %d is newer than this binary's %d: "
                 "upgrade bitween before using this database",
                 version, migrate_latest());
        rc = MIGRATE_ENEWER;
    }
    for (i = 0; rc == 0 && i < migrate_script_count; i++) {
        if (migrate_scripts[i].version <= version)
            continue;
        rc = migrate_run_script(conn, &migrate_scripts[i], msg, msglen);
        if (rc == 0)
            version = migrate_scripts[i].version;
    }
    if (rc == 0 && after)
        *after = version;
    if (PQstatus(conn) == CONNECTION_OK) {
        char unlock_sql[128], ignored[8];
        snprintf(unlock_sql, sizeof unlock_sql, "SELECT pg_advisory_unlock(%d, %d)",
                 MIGRATE_LOCK_CLASS, MIGRATE_LOCK_OBJ);
        migrate_exec(conn, unlock_sql, "releasing the migration lock", ignored, sizeof ignored);
    }
    return rc;
}
