/* SPDX-License-Identifier: MIT */
/*
 * Share registry on libpq (see store.h). Statements are prepared lazily on
 * each connection; array parameters travel as PostgreSQL array literals so a
 * whole resource is written in one round trip. A broken connection is
 * re-established once per call and the statement retried (every write is
 * idempotent); if that fails the call returns STORE_EUNAVAIL.
 */
#include "store.h"

#include <errno.h>
#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <libpq-fe.h>

#include "migrate.h"

enum store_stmt {
    ST_REPLACE,
    ST_ADD,
    ST_REMOVE,
    ST_RES_REMOVE,
    ST_USER_REMOVE,
    ST_TOUCH,
    ST_LOAD,
    ST_HASH,
    ST_SEARCH,
    ST_USERS,
    ST_RESOURCES,
    ST_STATS,
    ST_PUB_RECORD,
    ST_PUB_GET,
    ST_PING,
    ST_SEQ,
    ST_COUNT
};

#define TS_FMT    "'YYYY-MM-DD\"T\"HH24:MI:SS.US\"Z\"'"
#define JOIN_USER "JOIN resources r ON r.id = x.resource_id JOIN users u ON u.id = r.user_id "
#define ADDR_AGG                                                                                   \
    "coalesce((SELECT string_agg(host(a.address) || ' ' || a.port, ','"                            \
    " ORDER BY family(a.address), a.address, a.port)"                                              \
    " FROM addresses a WHERE a.resource_id = r.id), '')"

static const struct {
    const char *name;
    const char *sql;
} store_sql[ST_COUNT] = {
    [ST_REPLACE] = {"bw_replace",
                    "SELECT bitween_resource_replace($1, $2, $3, $4::text[], $5::text[], "
                    "$6::bigint[], $7::inet[], $8::integer[], $9, $10, $11)"},
    [ST_ADD] = {"bw_add", "SELECT bitween_shares_add($1, $2, $3, $4::text[], $5::text[], "
                          "$6::bigint[], $7)"},
    [ST_REMOVE] = {"bw_remove", "SELECT bitween_shares_remove($1, $2, $3, $4::text[])"},
    [ST_RES_REMOVE] = {"bw_res_remove",
                       "DELETE FROM resources r USING users u "
                       "WHERE u.id = r.user_id AND u.jid = $1 AND r.resource = $2"},
    [ST_USER_REMOVE] = {"bw_user_remove", "DELETE FROM resources r USING users u "
                                          "WHERE u.id = r.user_id AND u.jid = $1"},
    [ST_TOUCH] = {"bw_touch", "UPDATE resources r SET last_seen = now() FROM users u "
                              "WHERE u.id = r.user_id AND u.jid = $1 AND r.resource = $2"},
    [ST_LOAD] = {"bw_load",
                 "SELECT r.resource, 0 AS kind, NULL, NULL, NULL::bigint, NULL, NULL::integer "
                 "FROM resources r JOIN users u ON u.id = r.user_id WHERE u.jid = $1 "
                 "UNION ALL "
                 "SELECT r.resource, 1, encode(x.hash, 'hex'), x.name, x.size, NULL, NULL "
                 "FROM shares x " JOIN_USER "WHERE u.jid = $1 "
                 "UNION ALL "
                 "SELECT r.resource, 2, NULL, NULL, NULL, host(x.address), x.port "
                 "FROM addresses x " JOIN_USER "WHERE u.jid = $1 "
                 "ORDER BY 1, 2"},
    [ST_HASH] = {"bw_hash",
                 "SELECT u.jid, r.resource, encode(x.hash, 'hex'), x.name, x.size, "
                 "r.id, " ADDR_AGG " FROM shares x " JOIN_USER "WHERE x.hash = decode($1, 'hex') "
                 "ORDER BY u.jid, r.resource LIMIT $2"},
    [ST_SEARCH] =
        {"bw_search",
         "SELECT u.jid, r.resource, encode(x.hash, 'hex'), x.name, x.size, r.id, " ADDR_AGG
         " FROM shares x " JOIN_USER "WHERE x.name ILIKE '%' || $1 || '%' "
         "AND ($2::text IS NULL OR (x.name, x.resource_id, x.hash) > "
         "($2, $3::bigint, decode($4, 'hex'))) "
         "ORDER BY x.name, x.resource_id, x.hash LIMIT $5"},
    [ST_USERS] = {"bw_users",
                  "SELECT u.jid, "
                  "(SELECT count(*) FROM resources r WHERE r.user_id = u.id), "
                  "(SELECT count(*) FROM shares s JOIN resources r ON r.id = s.resource_id "
                  " WHERE r.user_id = u.id) "
                  "FROM users u WHERE EXISTS (SELECT 1 FROM resources r WHERE r.user_id = u.id) "
                  "AND ($1::text IS NULL OR u.jid > $1) ORDER BY u.jid LIMIT $2"},
    [ST_RESOURCES] = {"bw_resources",
                      "SELECT u.jid, r.resource, r.seq, "
                      "(SELECT count(*) FROM shares s WHERE s.resource_id = r.id), "
                      "(SELECT count(*) FROM addresses a WHERE a.resource_id = r.id), "
                      "to_char(r.registered_at AT TIME ZONE 'UTC', " TS_FMT "), "
                      "to_char(r.last_seen AT TIME ZONE 'UTC', " TS_FMT ") "
                      "FROM resources r JOIN users u ON u.id = r.user_id "
                      "WHERE ($1::text IS NULL OR u.jid = $1) "
                      "AND ($2::text IS NULL OR (u.jid, r.resource) > ($2, $3::text)) "
                      "ORDER BY u.jid, r.resource LIMIT $4"},
    [ST_STATS] = {"bw_stats", "SELECT (SELECT count(DISTINCT user_id) FROM resources), "
                              "(SELECT count(*) FROM resources), (SELECT count(*) FROM shares), "
                              "(SELECT count(*) FROM addresses), "
                              "(SELECT count(DISTINCT hash) FROM shares)"},
    [ST_PUB_RECORD] = {"bw_pub_record", "SELECT bitween_publish_record($1, $2, $3, $4)"},
    [ST_PUB_GET] = {"bw_pub_get",
                    "SELECT p.digest, p.status, coalesce(p.error, ''), "
                    "to_char(p.published_at AT TIME ZONE 'UTC', " TS_FMT ") "
                    "FROM publishes p JOIN users u ON u.id = p.user_id WHERE u.jid = $1"},
    [ST_PING] = {"bw_ping", "SELECT 1"},
    [ST_SEQ] = {"bw_seq", "SELECT r.seq FROM resources r JOIN users u ON u.id = r.user_id "
                          "WHERE u.jid = $1 AND r.resource = $2"},
};

struct store {
    char *conninfo;
    char *application_name;
    unsigned connect_timeout_s;
    unsigned statement_timeout_ms;
    PGconn *conn;
    unsigned char prepared[ST_COUNT];
};

/* ---- errors ---------------------------------------------------------------- */

const char *store_strerror(int code)
{
    switch (code) {
    case STORE_OK:
        return "ok";
    case STORE_EUNAVAIL:
        return "unavailable";
    case STORE_ESTALE:
        return "stale";
    case STORE_EINVAL:
        return "invalid";
    case STORE_ELIMIT:
        return "limit";
    case STORE_ENOTFOUND:
        return "not found";
    case STORE_ENOMEM:
        return "out of memory";
    case STORE_ESCHEMA:
        return "schema";
    case STORE_EINTERNAL:
        return "internal";
    default:
        return "unknown";
    }
}

static int store_fail(store_error_t *err, int code, const char *sqlstate, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int store_fail(store_error_t *err, int code, const char *sqlstate, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        size_t n;
        err->code = code;
        err->stored_seq = -1;
        snprintf(err->sqlstate, sizeof err->sqlstate, "%s", sqlstate ? sqlstate : "");
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        n = strlen(err->message);
        while (n > 0 && (err->message[n - 1] == '\n' || err->message[n - 1] == ' '))
            err->message[--n] = '\0';
    }
    return code;
}

static void store_ok(store_error_t *err)
{
    if (err) {
        err->code = STORE_OK;
        err->stored_seq = -1;
        err->sqlstate[0] = '\0';
        err->message[0] = '\0';
    }
}

/* Map a server error to our codes by SQLSTATE class. */
static int store_classify(const char *sqlstate)
{
    if (!sqlstate || strlen(sqlstate) != 5)
        return STORE_EUNAVAIL; /* no SQLSTATE: the connection failed */
    if (strcmp(sqlstate, "BW001") == 0)
        return STORE_ELIMIT;
    if (strcmp(sqlstate, "BW002") == 0)
        return STORE_ENOTFOUND;
    if (strncmp(sqlstate, "08", 2) == 0 || /* connection exception */
        strncmp(sqlstate, "53", 2) == 0 || /* insufficient resources */
        strncmp(sqlstate, "57", 2) == 0 || /* operator intervention, timeouts */
        strcmp(sqlstate, "40001") == 0 ||  /* serialization failure */
        strcmp(sqlstate, "40P01") == 0 ||  /* deadlock */
        strcmp(sqlstate, "55P03") == 0)    /* lock not available */
        return STORE_EUNAVAIL;
    if (strncmp(sqlstate, "22", 2) == 0 || /* data exception */
        strncmp(sqlstate, "23", 2) == 0 || /* integrity constraint */
        strcmp(sqlstate, "21000") == 0)    /* cardinality (duplicate keys) */
        return STORE_EINVAL;
    if (strcmp(sqlstate, "42P01") == 0 || strcmp(sqlstate, "42883") == 0)
        return STORE_ESCHEMA; /* undefined table / function: not migrated */
    return STORE_EINTERNAL;
}

/* ---- connection ------------------------------------------------------------ */

static char *store_strdup(const char *s)
{
    size_t n = strlen(s) + 1;
    char *p = malloc(n);
    if (p)
        memcpy(p, s, n);
    return p;
}

store_t *store_new(const char *conninfo, const store_options_t *opts)
{
    store_t *st = calloc(1, sizeof *st);
    if (!st)
        return NULL;
    st->conninfo = store_strdup(conninfo ? conninfo : "");
    st->application_name =
        store_strdup(opts && opts->application_name ? opts->application_name : "bitween");
    st->connect_timeout_s = opts && opts->connect_timeout_s ? opts->connect_timeout_s : 5;
    st->statement_timeout_ms =
        opts && opts->statement_timeout_ms ? opts->statement_timeout_ms : 10000;
    if (!st->conninfo || !st->application_name) {
        store_free(st);
        return NULL;
    }
    return st;
}

static void store_disconnect(store_t *st)
{
    if (st->conn)
        PQfinish(st->conn);
    st->conn = NULL;
    memset(st->prepared, 0, sizeof st->prepared);
}

void store_free(store_t *st)
{
    if (!st)
        return;
    store_disconnect(st);
    free(st->conninfo);
    free(st->application_name);
    free(st);
}

int store_connected(const store_t *st)
{
    return st->conn && PQstatus(st->conn) == CONNECTION_OK;
}

int store_connect(store_t *st, store_error_t *err)
{
    char connect_timeout[16], user_timeout[16], set_sql[96];
    const char *keys[10], *values[10];
    PGresult *res;
    int k = 0;

    if (store_connected(st)) {
        store_ok(err);
        return STORE_OK;
    }
    store_disconnect(st);
    snprintf(connect_timeout, sizeof connect_timeout, "%u", st->connect_timeout_s);
    snprintf(user_timeout, sizeof user_timeout, "%u", st->statement_timeout_ms + 5000);
    /* Defaults first: values in the connection string override them. */
    keys[k] = "connect_timeout", values[k++] = connect_timeout;
    keys[k] = "application_name", values[k++] = st->application_name;
    keys[k] = "keepalives", values[k++] = "1";
    keys[k] = "keepalives_idle", values[k++] = "10";
    keys[k] = "keepalives_interval", values[k++] = "3";
    keys[k] = "keepalives_count", values[k++] = "3";
    keys[k] = "tcp_user_timeout", values[k++] = user_timeout;
    keys[k] = "dbname", values[k++] = st->conninfo;
    keys[k] = NULL, values[k] = NULL;

    st->conn = PQconnectdbParams(keys, values, 1);
    if (!st->conn)
        return store_fail(err, STORE_ENOMEM, NULL, "out of memory connecting to PostgreSQL");
    if (PQstatus(st->conn) != CONNECTION_OK) {
        store_fail(err, STORE_EUNAVAIL, NULL, "PostgreSQL unreachable: %s",
                   PQerrorMessage(st->conn));
        store_disconnect(st);
        return STORE_EUNAVAIL;
    }
    snprintf(set_sql, sizeof set_sql, "SET statement_timeout = %u; SET lock_timeout = %u",
             st->statement_timeout_ms, st->statement_timeout_ms);
    res = PQexec(st->conn, set_sql);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        store_fail(err, STORE_EUNAVAIL, PQresultErrorField(res, PG_DIAG_SQLSTATE),
                   "PostgreSQL session set-up failed: %s", PQerrorMessage(st->conn));
        PQclear(res);
        store_disconnect(st);
        return STORE_EUNAVAIL;
    }
    PQclear(res);
    store_ok(err);
    return STORE_OK;
}

/* Run prepared statement `id` once on the current connection. Returns
 * STORE_OK with the result in `*out` (caller clears) or an error code with
 * `err` filled; *lost is set when the connection broke (the caller may
 * reconnect and retry). */
static int store_exec_once(store_t *st, enum store_stmt id, int n, const char *const *params,
                           PGresult **out, int *lost, store_error_t *err)
{
    PGresult *res;
    ExecStatusType status;
    const char *sqlstate;
    int rc;

    *out = NULL;
    *lost = 0;
    if ((rc = store_connect(st, err)) != STORE_OK)
        return rc;
    if (!st->prepared[id]) {
        res = PQprepare(st->conn, store_sql[id].name, store_sql[id].sql, 0, NULL);
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            goto fail;
        PQclear(res);
        st->prepared[id] = 1;
    }
    res = PQexecPrepared(st->conn, store_sql[id].name, n, params, NULL, NULL, 0);
    status = PQresultStatus(res);
    if (status == PGRES_COMMAND_OK || status == PGRES_TUPLES_OK) {
        *out = res;
        return STORE_OK;
    }
fail:
    sqlstate = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (PQstatus(st->conn) != CONNECTION_OK) {
        *lost = 1;
        rc = store_fail(err, STORE_EUNAVAIL, sqlstate, "PostgreSQL connection lost: %s",
                        PQerrorMessage(st->conn));
        store_disconnect(st);
    } else if (!res) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory running a statement");
    } else {
        const char *msg = PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY);
        rc = store_fail(err, store_classify(sqlstate), sqlstate, "%s",
                        msg ? msg : PQerrorMessage(st->conn));
    }
    PQclear(res);
    return rc;
}

/* Run statement `id`; on a broken connection reconnect once and retry.
 * Returns STORE_OK with `*out` set (caller clears) or an error code. */
static int store_exec(store_t *st, enum store_stmt id, int n, const char *const *params,
                      PGresult **out, store_error_t *err)
{
    int lost;
    int rc = store_exec_once(st, id, n, params, out, &lost, err);
    if (rc != STORE_OK && lost)
        rc = store_exec_once(st, id, n, params, out, &lost, err);
    if (rc == STORE_OK)
        store_ok(err);
    return rc;
}

int store_ping(store_t *st, store_error_t *err)
{
    PGresult *res;
    int rc = store_exec(st, ST_PING, 0, NULL, &res, err);
    if (rc != STORE_OK)
        return rc;
    PQclear(res);
    return STORE_OK;
}

int store_migrate(store_t *st, int *version, store_error_t *err)
{
    char msg[STORE_ERROR_TEXT];
    int rc, after = 0, attempt;

    /* Like store_exec(): a connection found broken is re-established once
     * (migrations are idempotent: applied versions are skipped). */
    for (attempt = 0; attempt < 2; attempt++) {
        rc = store_connect(st, err);
        if (rc)
            return rc;
        rc = migrate_apply(st->conn, NULL, &after, msg, sizeof msg);
        if (rc == MIGRATE_OK) {
            if (version)
                *version = after;
            store_ok(err);
            return STORE_OK;
        }
        if (rc != MIGRATE_ELOST && PQstatus(st->conn) == CONNECTION_OK)
            break;
        store_disconnect(st);
        rc = MIGRATE_ELOST;
    }
    if (rc == MIGRATE_ELOST)
        return store_fail(err, STORE_EUNAVAIL, NULL, "%s", msg);
    return store_fail(err, rc == MIGRATE_ENEWER ? STORE_ESCHEMA : STORE_EINTERNAL, NULL, "%s", msg);
}

/* ---- parameter building --------------------------------------------------- */

/* Growable text buffer for array literals. */
typedef struct store_buf {
    char *p;
    size_t len, cap;
    int oom;
} store_buf_t;

static void buf_reserve(store_buf_t *b, size_t extra)
{
    size_t cap;
    char *p;
    if (b->oom || b->len + extra + 1 <= b->cap)
        return;
    cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return;
    }
    b->p = p;
    b->cap = cap;
}

static void buf_add(store_buf_t *b, const char *s, size_t n)
{
    buf_reserve(b, n);
    if (b->oom)
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

static void buf_str(store_buf_t *b, const char *s)
{
    buf_add(b, s, strlen(s));
}

/* Append one quoted array element: "..." with " and \ escaped. */
static void buf_quoted(store_buf_t *b, const char *s)
{
    const char *q;
    buf_add(b, "\"", 1);
    while ((q = strpbrk(s, "\"\\")) != NULL) {
        buf_add(b, s, (size_t)(q - s));
        buf_add(b, "\\", 1);
        buf_add(b, q, 1);
        s = q + 1;
    }
    buf_str(b, s);
    buf_add(b, "\"", 1);
}

static void buf_sep(store_buf_t *b, size_t i)
{
    buf_add(b, i ? "," : "{", 1);
}

static void buf_close(store_buf_t *b, size_t n)
{
    buf_str(b, n ? "}" : "{}");
}

/* Array literals of one resource's shares. */
typedef struct store_share_arrays {
    store_buf_t hashes, names, sizes;
} store_share_arrays_t;

static void share_arrays_free(store_share_arrays_t *a)
{
    free(a->hashes.p);
    free(a->names.p);
    free(a->sizes.p);
}

static int share_arrays_build(const shares_item_t *item, size_t ri, store_share_arrays_t *a)
{
    size_t i, n = shares_item_share_count(item, ri);
    char num[24];
    shares_share_t sh;

    memset(a, 0, sizeof *a);
    buf_reserve(&a->hashes, n * 41 + 2);
    buf_reserve(&a->sizes, n * 12 + 2);
    for (i = 0; i < n; i++) {
        if (shares_item_share(item, ri, i, &sh) != SHARES_OK)
            break;
        buf_sep(&a->hashes, i);
        buf_str(&a->hashes, sh.hash);
        buf_sep(&a->names, i);
        buf_quoted(&a->names, sh.name);
        buf_sep(&a->sizes, i);
        snprintf(num, sizeof num, "%" PRIu64, sh.size);
        buf_str(&a->sizes, num);
    }
    buf_close(&a->hashes, n);
    buf_close(&a->names, n);
    buf_close(&a->sizes, n);
    return a->hashes.oom || a->names.oom || a->sizes.oom ? STORE_ENOMEM : STORE_OK;
}

static int store_check_target(const char *jid, const char *resource, const shares_item_t *item,
                              size_t ri, store_error_t *err)
{
    if (!jid || !*jid)
        return store_fail(err, STORE_EINVAL, NULL, "user JID is empty");
    if (resource && !*resource)
        return store_fail(err, STORE_EINVAL, NULL, "resource is empty");
    if (item && ri >= shares_item_resource_count(item))
        return store_fail(err, STORE_EINVAL, NULL, "resource index %zu out of range", ri);
    return STORE_OK;
}

/* Interpret the boolean result of a sequence-guarded write. A stale one
 * costs a second round trip, for the stored sequence number the agent
 * needs to recover; the normal path stays at one. */
static int store_guarded_result(store_t *st, PGresult *res, const char *jid, const char *resource,
                                int64_t seq, store_error_t *err)
{
    int applied = PQntuples(res) == 1 && strcmp(PQgetvalue(res, 0, 0), "t") == 0;
    const char *params[2] = {jid, resource};
    store_error_t serr;
    int64_t stored = -1;

    PQclear(res);
    if (applied) {
        store_ok(err);
        return STORE_OK;
    }
    if (store_exec(st, ST_SEQ, 2, params, &res, &serr) == STORE_OK) {
        if (PQntuples(res) == 1 && !PQgetisnull(res, 0, 0))
            stored = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
        PQclear(res);
    }
    if (stored < 0)
        return store_fail(err, STORE_ESTALE, NULL,
                          "sequence number %" PRId64 " is older than the stored one", seq);
    store_fail(err, STORE_ESTALE, NULL,
               "sequence number %" PRId64 " is older than the stored one, %" PRId64, seq, stored);
    if (err)
        err->stored_seq = stored;
    return STORE_ESTALE;
}

int store_resource_replace(store_t *st, const char *jid, const char *resource, int64_t seq,
                           const shares_item_t *item, size_t ri, const store_quota_t *quota,
                           store_error_t *err)
{
    store_share_arrays_t sa;
    store_buf_t addrs = {0}, ports = {0};
    char seqs[24], q_res[16], q_sh[16], q_ad[16], num[8];
    const char *params[11];
    size_t i, n;
    shares_address_t ad;
    PGresult *res;
    int rc = store_check_target(jid, resource, item, ri, err);

    if (rc)
        return rc;
    if (seq < 0)
        return store_fail(err, STORE_EINVAL, NULL, "sequence number is negative");
    if (share_arrays_build(item, ri, &sa) != STORE_OK) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    n = shares_item_address_count(item, ri);
    for (i = 0; i < n; i++) {
        if (shares_item_address(item, ri, i, &ad) != SHARES_OK)
            break;
        buf_sep(&addrs, i);
        buf_str(&addrs, ad.address);
        buf_sep(&ports, i);
        snprintf(num, sizeof num, "%u", (unsigned)ad.port);
        buf_str(&ports, num);
    }
    buf_close(&addrs, n);
    buf_close(&ports, n);
    if (addrs.oom || ports.oom) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    snprintf(q_res, sizeof q_res, "%" PRIu32, quota ? quota->max_resources : 0);
    snprintf(q_sh, sizeof q_sh, "%" PRIu32, quota ? quota->max_shares : 0);
    snprintf(q_ad, sizeof q_ad, "%" PRIu32, quota ? quota->max_addresses : 0);
    params[0] = jid;
    params[1] = resource;
    params[2] = seqs;
    params[3] = sa.hashes.p;
    params[4] = sa.names.p;
    params[5] = sa.sizes.p;
    params[6] = addrs.p;
    params[7] = ports.p;
    params[8] = q_res;
    params[9] = q_sh;
    params[10] = q_ad;
    rc = store_exec(st, ST_REPLACE, 11, params, &res, err);
    if (rc == STORE_OK)
        rc = store_guarded_result(st, res, jid, resource, seq, err);
out:
    share_arrays_free(&sa);
    free(addrs.p);
    free(ports.p);
    return rc;
}

int store_shares_add(store_t *st, const char *jid, const char *resource, int64_t seq,
                     const shares_item_t *item, size_t ri, const store_quota_t *quota,
                     store_error_t *err)
{
    store_share_arrays_t sa;
    char seqs[24], q_sh[16];
    const char *params[7];
    PGresult *res;
    int rc = store_check_target(jid, resource, item, ri, err);

    if (rc)
        return rc;
    if (seq < 0)
        return store_fail(err, STORE_EINVAL, NULL, "sequence number is negative");
    if (share_arrays_build(item, ri, &sa) != STORE_OK) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    snprintf(q_sh, sizeof q_sh, "%" PRIu32, quota ? quota->max_shares : 0);
    params[0] = jid;
    params[1] = resource;
    params[2] = seqs;
    params[3] = sa.hashes.p;
    params[4] = sa.names.p;
    params[5] = sa.sizes.p;
    params[6] = q_sh;
    rc = store_exec(st, ST_ADD, 7, params, &res, err);
    if (rc == STORE_OK)
        rc = store_guarded_result(st, res, jid, resource, seq, err);
out:
    share_arrays_free(&sa);
    return rc;
}

/* Lowercase copy of a validated hash into `out`. */
static int store_norm_hash(const char *hash, char out[SHARES_HASH_MAX], store_error_t *err)
{
    shares_error_t serr;
    size_t i;
    if (shares_validate_hash(hash, &serr) != SHARES_OK)
        return store_fail(err, STORE_EINVAL, NULL, "%s", serr.message);
    for (i = 0; hash[i]; i++)
        out[i] = (char)(hash[i] >= 'A' && hash[i] <= 'F' ? hash[i] - 'A' + 'a' : hash[i]);
    out[i] = '\0';
    return STORE_OK;
}

int store_shares_remove(store_t *st, const char *jid, const char *resource, int64_t seq,
                        const char *const *hashes, size_t n_hashes, store_error_t *err)
{
    store_buf_t arr = {0};
    char seqs[24], h[SHARES_HASH_MAX];
    const char *params[4];
    PGresult *res;
    size_t i;
    int rc = store_check_target(jid, resource, NULL, 0, err);

    if (rc)
        return rc;
    if (seq < 0)
        return store_fail(err, STORE_EINVAL, NULL, "sequence number is negative");
    for (i = 0; i < n_hashes; i++) {
        rc = store_norm_hash(hashes[i], h, err);
        if (rc)
            goto out;
        buf_sep(&arr, i);
        buf_str(&arr, h);
    }
    buf_close(&arr, n_hashes);
    if (arr.oom) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    snprintf(seqs, sizeof seqs, "%" PRId64, seq);
    params[0] = jid;
    params[1] = resource;
    params[2] = seqs;
    params[3] = arr.p;
    rc = store_exec(st, ST_REMOVE, 4, params, &res, err);
    if (rc == STORE_OK)
        rc = store_guarded_result(st, res, jid, resource, seq, err);
out:
    free(arr.p);
    return rc;
}

/* Run a write returning no rows; `*affected` gets the row count. */
static int store_command(store_t *st, enum store_stmt id, int n, const char *const *params,
                         size_t *affected, store_error_t *err)
{
    PGresult *res;
    int rc = store_exec(st, id, n, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    if (affected)
        *affected = (size_t)strtoull(PQcmdTuples(res), NULL, 10);
    PQclear(res);
    return STORE_OK;
}

int store_resource_remove(store_t *st, const char *jid, const char *resource, store_error_t *err)
{
    const char *params[2] = {jid, resource};
    size_t n = 0;
    int rc = store_check_target(jid, resource ? resource : "", NULL, 0, err);
    if (rc)
        return rc;
    rc = store_command(st, ST_RES_REMOVE, 2, params, &n, err);
    if (rc == STORE_OK && n == 0)
        return store_fail(err, STORE_ENOTFOUND, NULL, "resource %s of %s is not registered",
                          resource, jid);
    return rc;
}

int store_user_remove_resources(store_t *st, const char *jid, size_t *removed, store_error_t *err)
{
    const char *params[1] = {jid};
    int rc = store_check_target(jid, NULL, NULL, 0, err);
    if (rc)
        return rc;
    return store_command(st, ST_USER_REMOVE, 1, params, removed, err);
}

int store_resource_touch(store_t *st, const char *jid, const char *resource, store_error_t *err)
{
    const char *params[2] = {jid, resource};
    size_t n = 0;
    int rc = store_check_target(jid, resource ? resource : "", NULL, 0, err);
    if (rc)
        return rc;
    rc = store_command(st, ST_TOUCH, 2, params, &n, err);
    if (rc == STORE_OK && n == 0)
        return store_fail(err, STORE_ENOTFOUND, NULL, "resource %s of %s is not registered",
                          resource, jid);
    return rc;
}

/* ---- reads ----------------------------------------------------------------- */

static int store_parse_u64(const char *s, uint64_t *out)
{
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (errno || end == s || *end)
        return -1;
    *out = v;
    return 0;
}

int store_user_load(store_t *st, const char *jid, shares_item_t **out, store_error_t *err)
{
    static const shares_limits_t unlimited = {0};
    const char *params[1] = {jid};
    shares_item_t *item = NULL;
    shares_error_t serr;
    PGresult *res;
    size_t ri = 0;
    int i, rows, rc = STORE_OK, have = 0;
    const char *cur = NULL;

    *out = NULL;
    rc = store_check_target(jid, NULL, NULL, 0, err);
    if (rc)
        return rc;
    rc = store_exec(st, ST_LOAD, 1, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    item = shares_item_new(&unlimited);
    if (!item) {
        rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        goto out;
    }
    rows = PQntuples(res);
    for (i = 0; i < rows; i++) {
        const char *resource = PQgetvalue(res, i, 0);
        int kind = atoi(PQgetvalue(res, i, 1));
        int src;
        uint64_t num;

        if (kind == 0) {
            src = shares_item_add_resource(item, resource, &ri, &serr);
            cur = resource;
            have = 1;
        } else if (!have || strcmp(cur, resource) != 0) {
            rc = store_fail(err, STORE_EINTERNAL, NULL, "rows of resource %s out of order",
                            resource);
            goto out;
        } else if (kind == 1) {
            if (store_parse_u64(PQgetvalue(res, i, 4), &num) != 0)
                src = SHARES_EINVAL, snprintf(serr.message, sizeof serr.message, "bad size");
            else
                src = shares_item_add_share(item, ri, PQgetvalue(res, i, 2), PQgetvalue(res, i, 3),
                                            num, &serr);
        } else {
            src = shares_item_add_address(item, ri, PQgetvalue(res, i, 5),
                                          strtoul(PQgetvalue(res, i, 6), NULL, 10), &serr);
        }
        if (src == SHARES_ENOMEM) {
            rc = store_fail(err, STORE_ENOMEM, NULL, "out of memory");
            goto out;
        }
        if (src != SHARES_OK) {
            rc = store_fail(err, STORE_EINTERNAL, NULL, "stored state of %s is invalid: %s", jid,
                            serr.message);
            goto out;
        }
    }
    *out = item;
    item = NULL;
    store_ok(err);
out:
    shares_item_free(item);
    PQclear(res);
    return rc;
}

/* Parse "addr port,addr port" into a new array. */
static int store_parse_addresses(const char *text, store_address_t **out, size_t *n)
{
    size_t count = 0, i = 0;
    const char *p;
    store_address_t *v;

    *out = NULL;
    *n = 0;
    if (!*text)
        return STORE_OK;
    for (p = text, count = 1; *p; p++)
        count += *p == ',';
    v = calloc(count, sizeof *v);
    if (!v)
        return STORE_ENOMEM;
    p = text;
    while (*p && i < count) {
        const char *sp = strchr(p, ' ');
        const char *end = strchr(p, ',');
        size_t alen;
        if (!end)
            end = p + strlen(p);
        if (!sp || sp > end || (alen = (size_t)(sp - p)) >= SHARES_ADDR_MAX) {
            free(v);
            return STORE_EINTERNAL;
        }
        memcpy(v[i].address, p, alen);
        v[i].address[alen] = '\0';
        v[i].port = (uint16_t)strtoul(sp + 1, NULL, 10);
        i++;
        p = *end ? end + 1 : end;
    }
    *out = v;
    *n = i;
    return STORE_OK;
}

void store_hits_free(store_hits_t *hits)
{
    size_t i;
    if (!hits)
        return;
    for (i = 0; i < hits->n; i++) {
        free(hits->v[i].jid);
        free(hits->v[i].resource);
        free(hits->v[i].name);
        free(hits->v[i].addresses);
    }
    free(hits->v);
    hits->v = NULL;
    hits->n = 0;
}

/* Rows (jid, resource, hash, name, size, resource_id, addresses) to hits. */
static int store_rows_to_hits(PGresult *res, store_hits_t *out, store_error_t *err)
{
    int i, rows = PQntuples(res);

    out->v = rows ? calloc((size_t)rows, sizeof *out->v) : NULL;
    out->n = 0;
    if (rows && !out->v)
        return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
    for (i = 0; i < rows; i++) {
        store_hit_t *h = &out->v[out->n];
        uint64_t num = 0;
        int rc;
        h->jid = store_strdup(PQgetvalue(res, i, 0));
        h->resource = store_strdup(PQgetvalue(res, i, 1));
        snprintf(h->hash, sizeof h->hash, "%s", PQgetvalue(res, i, 2));
        h->name = store_strdup(PQgetvalue(res, i, 3));
        store_parse_u64(PQgetvalue(res, i, 4), &num);
        h->size = num;
        h->resource_id = strtoll(PQgetvalue(res, i, 5), NULL, 10);
        rc = store_parse_addresses(PQgetvalue(res, i, 6), &h->addresses, &h->n_addresses);
        out->n++;
        if (!h->jid || !h->resource || !h->name || rc == STORE_ENOMEM) {
            store_hits_free(out);
            return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        }
        if (rc) {
            store_hits_free(out);
            return store_fail(err, STORE_EINTERNAL, NULL, "malformed address list");
        }
    }
    store_ok(err);
    return STORE_OK;
}

static int store_check_limit(size_t limit, char buf[24], store_error_t *err)
{
    if (limit == 0 || limit > 100000)
        return store_fail(err, STORE_EINVAL, NULL, "limit must be between 1 and 100000");
    snprintf(buf, 24, "%zu", limit);
    return STORE_OK;
}

int store_hash_lookup(store_t *st, const char *hash, size_t limit, store_hits_t *out,
                      store_error_t *err)
{
    char h[SHARES_HASH_MAX], lim[24];
    const char *params[2];
    PGresult *res;
    int rc;

    out->v = NULL;
    out->n = 0;
    if ((rc = store_norm_hash(hash, h, err)) || (rc = store_check_limit(limit, lim, err)))
        return rc;
    params[0] = h;
    params[1] = lim;
    rc = store_exec(st, ST_HASH, 2, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    rc = store_rows_to_hits(res, out, err);
    PQclear(res);
    return rc;
}

int store_name_search(store_t *st, const char *needle, const store_search_cursor_t *after,
                      size_t limit, store_hits_t *out, store_error_t *err)
{
    store_buf_t pat = {0};
    char lim[24], rid[24], h[SHARES_HASH_MAX];
    const char *params[5], *p;
    PGresult *res;
    int rc;

    out->v = NULL;
    out->n = 0;
    if (!needle || !*needle)
        return store_fail(err, STORE_EINVAL, NULL, "search text is empty");
    if ((rc = store_check_limit(limit, lim, err)))
        return rc;
    /* LIKE wildcards in the needle match literally (default escape: \). */
    for (p = needle; *p; p++) {
        if (*p == '%' || *p == '_' || *p == '\\')
            buf_add(&pat, "\\", 1);
        buf_add(&pat, p, 1);
    }
    if (pat.oom) {
        free(pat.p);
        return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
    }
    params[0] = pat.p;
    params[1] = params[2] = params[3] = NULL;
    if (after && after->name) {
        if ((rc = store_norm_hash(after->hash ? after->hash : "", h, err))) {
            free(pat.p);
            return rc;
        }
        snprintf(rid, sizeof rid, "%" PRId64, after->resource_id);
        params[1] = after->name;
        params[2] = rid;
        params[3] = h;
    }
    params[4] = lim;
    rc = store_exec(st, ST_SEARCH, 5, params, &res, err);
    free(pat.p);
    if (rc != STORE_OK)
        return rc;
    rc = store_rows_to_hits(res, out, err);
    PQclear(res);
    return rc;
}

void store_users_free(store_users_t *users)
{
    size_t i;
    if (!users)
        return;
    for (i = 0; i < users->n; i++)
        free(users->v[i].jid);
    free(users->v);
    users->v = NULL;
    users->n = 0;
}

int store_users_list(store_t *st, const char *after_jid, size_t limit, store_users_t *out,
                     store_error_t *err)
{
    char lim[24];
    const char *params[2];
    PGresult *res;
    int i, rows, rc;

    out->v = NULL;
    out->n = 0;
    if ((rc = store_check_limit(limit, lim, err)))
        return rc;
    params[0] = after_jid;
    params[1] = lim;
    rc = store_exec(st, ST_USERS, 2, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    rows = PQntuples(res);
    out->v = rows ? calloc((size_t)rows, sizeof *out->v) : NULL;
    if (rows && !out->v) {
        PQclear(res);
        return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
    }
    for (i = 0; i < rows; i++) {
        store_user_t *u = &out->v[out->n++];
        u->jid = store_strdup(PQgetvalue(res, i, 0));
        u->n_resources = (uint32_t)strtoul(PQgetvalue(res, i, 1), NULL, 10);
        u->n_shares = (uint32_t)strtoul(PQgetvalue(res, i, 2), NULL, 10);
        if (!u->jid) {
            PQclear(res);
            store_users_free(out);
            return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        }
    }
    PQclear(res);
    store_ok(err);
    return STORE_OK;
}

void store_resources_free(store_resources_t *resources)
{
    size_t i;
    if (!resources)
        return;
    for (i = 0; i < resources->n; i++) {
        free(resources->v[i].jid);
        free(resources->v[i].resource);
    }
    free(resources->v);
    resources->v = NULL;
    resources->n = 0;
}

int store_resources_list(store_t *st, const char *only_jid, const char *after_jid,
                         const char *after_resource, size_t limit, store_resources_t *out,
                         store_error_t *err)
{
    char lim[24];
    const char *params[4];
    PGresult *res;
    int i, rows, rc;

    out->v = NULL;
    out->n = 0;
    if ((rc = store_check_limit(limit, lim, err)))
        return rc;
    if ((after_jid == NULL) != (after_resource == NULL))
        return store_fail(err, STORE_EINVAL, NULL, "cursor needs both user and resource");
    params[0] = only_jid;
    params[1] = after_jid;
    params[2] = after_resource;
    params[3] = lim;
    rc = store_exec(st, ST_RESOURCES, 4, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    rows = PQntuples(res);
    out->v = rows ? calloc((size_t)rows, sizeof *out->v) : NULL;
    if (rows && !out->v) {
        PQclear(res);
        return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
    }
    for (i = 0; i < rows; i++) {
        store_resource_t *r = &out->v[out->n++];
        r->jid = store_strdup(PQgetvalue(res, i, 0));
        r->resource = store_strdup(PQgetvalue(res, i, 1));
        r->seq = strtoll(PQgetvalue(res, i, 2), NULL, 10);
        r->n_shares = (uint32_t)strtoul(PQgetvalue(res, i, 3), NULL, 10);
        r->n_addresses = (uint32_t)strtoul(PQgetvalue(res, i, 4), NULL, 10);
        snprintf(r->registered_at, sizeof r->registered_at, "%s", PQgetvalue(res, i, 5));
        snprintf(r->last_seen, sizeof r->last_seen, "%s", PQgetvalue(res, i, 6));
        if (!r->jid || !r->resource) {
            PQclear(res);
            store_resources_free(out);
            return store_fail(err, STORE_ENOMEM, NULL, "out of memory");
        }
    }
    PQclear(res);
    store_ok(err);
    return STORE_OK;
}

int store_stats(store_t *st, store_stats_t *out, store_error_t *err)
{
    PGresult *res;
    int rc = store_exec(st, ST_STATS, 0, NULL, &res, err);
    if (rc != STORE_OK)
        return rc;
    out->users = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->resources = strtoll(PQgetvalue(res, 0, 1), NULL, 10);
    out->shares = strtoll(PQgetvalue(res, 0, 2), NULL, 10);
    out->addresses = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    out->distinct_hashes = strtoll(PQgetvalue(res, 0, 4), NULL, 10);
    PQclear(res);
    return STORE_OK;
}

/* ---- publish record -------------------------------------------------------- */

int store_publish_record(store_t *st, const char *jid, const char *digest,
                         store_publish_status_t status, const char *error, store_error_t *err)
{
    const char *params[4];
    char trimmed[1024];
    size_t i;
    int rc = store_check_target(jid, NULL, NULL, 0, err);

    if (rc)
        return rc;
    for (i = 0; digest && digest[i]; i++)
        if (!((digest[i] >= '0' && digest[i] <= '9') || (digest[i] >= 'a' && digest[i] <= 'f')))
            break;
    if (!digest || i != 64 || digest[i])
        return store_fail(err, STORE_EINVAL, NULL, "digest must be 64 lowercase hex digits");
    params[0] = jid;
    params[1] = digest;
    params[2] = status == STORE_PUBLISH_OK ? "ok" : "error";
    params[3] = NULL;
    if (error) {
        /* Keep it printable and short: it is diagnostic text from a server. */
        for (i = 0; error[i] && i < sizeof trimmed - 1; i++)
            trimmed[i] = (unsigned char)error[i] < 0x20 || error[i] == 0x7f ? ' ' : error[i];
        if (error[i]) {
            /* Truncated: drop the last, possibly partial, UTF-8 sequence. */
            while (i > 0 && ((unsigned char)trimmed[i - 1] & 0xC0) == 0x80)
                i--;
            if (i > 0 && ((unsigned char)trimmed[i - 1] & 0x80))
                i--;
        }
        trimmed[i] = '\0';
        params[3] = trimmed;
    }
    return store_command(st, ST_PUB_RECORD, 4, params, NULL, err);
}

/* Copy `src` into `dst` (`size` bytes), cutting a string that does not fit
 * at a UTF-8 character boundary rather than inside a character. */
static void store_copy_utf8(char *dst, size_t size, const char *src)
{
    size_t n = strlen(src);
    if (n >= size) {
        n = size - 1;
        while (n > 0 && ((unsigned char)src[n] & 0xC0) == 0x80)
            n--; /* src[n] is the first byte left out: back to a lead byte */
    }
    memcpy(dst, src, n);
    dst[n] = '\0';
}

int store_publish_get(store_t *st, const char *jid, store_publish_t *out, store_error_t *err)
{
    const char *params[1] = {jid};
    PGresult *res;
    int rc = store_check_target(jid, NULL, NULL, 0, err);

    if (rc)
        return rc;
    rc = store_exec(st, ST_PUB_GET, 1, params, &res, err);
    if (rc != STORE_OK)
        return rc;
    if (PQntuples(res) != 1) {
        PQclear(res);
        return store_fail(err, STORE_ENOTFOUND, NULL, "nothing published for %s", jid);
    }
    snprintf(out->digest, sizeof out->digest, "%s", PQgetvalue(res, 0, 0));
    out->status = strcmp(PQgetvalue(res, 0, 1), "ok") == 0 ? STORE_PUBLISH_OK : STORE_PUBLISH_ERROR;
    store_copy_utf8(out->error, sizeof out->error, PQgetvalue(res, 0, 2));
    snprintf(out->published_at, sizeof out->published_at, "%s", PQgetvalue(res, 0, 3));
    PQclear(res);
    return STORE_OK;
}
