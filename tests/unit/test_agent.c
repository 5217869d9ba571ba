/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the agent's shares (agent/library.c) and JSON-RPC methods
 * (agent/rpc_methods.c) on the in-memory BitTorrent backend, through
 * rpc_exec() as the HTTP side calls it: bt.add_path (hashing job, wait,
 * duplicates, every bad-param class), bt.get_torrents (fields, filter),
 * bt.del_torrent (never the user's files), bt.set_rates, agent.status,
 * bt.add_torrent_by_hash (not in this version), and the state directory
 * across restarts: unchanged files seed from resume data without
 * hashing, a changed modification time is checked first (announced only
 * if every piece matches), a changed size or a vanished file withdraws
 * the share.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "agent_private.h"
#include "btshim_fake.h"

typedef struct t {
    char dir[64];
    char state_dir[128];
    char data[128];
    char download_dir[128];
    agent_settings_t s;
    log_t *log;
    btshim_session_t *bt;
    agent_t *a;
} t_t;

typedef struct out {
    int done;
    char *reply;
} out_t;

static void on_done(void *arg, const char *reply)
{
    out_t *o = arg;
    o->done++;
    free(o->reply);
    o->reply = reply ? strdup(reply) : NULL;
}

static void write_text(const char *path, const char *text)
{
    FILE *f = fopen(path, "w");
    assert_non_null(f);
    fputs(text, f);
    fclose(f);
}

static void start(t_t *t)
{
    btshim_error_t err;
    t->bt = btshim_session_new(NULL, &err);
    assert_non_null(t->bt);
    t->a = agent_new_offline(&t->s, t->log, t->bt);
    assert_non_null(t->a);
}

static void stop(t_t *t)
{
    agent_free(t->a);
    btshim_session_free(t->bt);
    t->a = NULL;
    t->bt = NULL;
}

static int setup(void **state)
{
    t_t *t = calloc(1, sizeof *t);
    char path[256];
    snprintf(t->dir, sizeof t->dir, "/tmp/bitween-agent-unit.XXXXXX");
    if (!mkdtemp(t->dir))
        return -1;
    snprintf(t->state_dir, sizeof t->state_dir, "%s/state", t->dir);
    snprintf(t->data, sizeof t->data, "%s/data", t->dir);
    mkdir(t->data, 0700);
    snprintf(path, sizeof path, "%s/folder", t->data);
    mkdir(path, 0700);
    snprintf(path, sizeof path, "%s/folder/a b.txt", t->data);
    write_text(path, "first file\n");
    snprintf(path, sizeof path, "%s/folder/ü.bin", t->data);
    write_text(path, "second\n");
    snprintf(path, sizeof path, "%s/single.txt", t->data);
    write_text(path, "hello\n");
    snprintf(path, sizeof path, "%s/empty", t->data);
    write_text(path, "");
    snprintf(t->download_dir, sizeof t->download_dir, "%s/downloads", t->dir);
    t->s.state_dir = t->state_dir;
    t->s.download_dir = t->download_dir;
    t->s.resource = "laptop";
    t->log = log_new(2, LOG_LEVEL_WARN, 0);
    start(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    t_t *t = *state;
    char cmd[256];
    stop(t);
    log_free(t->log);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", t->dir);
    if (system(cmd) != 0)
        return -1;
    free(t);
    return 0;
}

/* Call `method` with `params` (JSON text); the reply, parsed; fails unless
 * answered at once. */
static json_t *call(t_t *t, const char *method, const char *params)
{
    char body[2048];
    out_t o = {0, NULL};
    json_error_t e;
    json_t *r;
    snprintf(body, sizeof body, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"%s\",\"params\":%s}",
             method, params);
    assert_int_equal(rpc_exec(agent_rpc(t->a), body, strlen(body), on_done, &o, NULL), 0);
    if (o.done != 1)
        fail_msg("%s %s: no answer at once", method, params);
    r = json_loads(o.reply, 0, &e);
    free(o.reply);
    assert_non_null(r);
    return r;
}

static json_t *result_of(json_t *r)
{
    json_t *v = json_object_get(r, "result");
    if (!v) {
        char *text = json_dumps(r, 0);
        fail_msg("an error: %s", text);
    }
    return v;
}

static void expect_error(t_t *t, const char *method, const char *params, int code,
                         const char *needle)
{
    json_t *r = call(t, method, params), *e = json_object_get(r, "error");
    const char *msg = json_string_value(json_object_get(e, "message"));
    if (!e || json_integer_value(json_object_get(e, "code")) != code ||
        (needle && (!msg || !strstr(msg, needle)))) {
        char *text = json_dumps(r, 0);
        fail_msg("%s %s: expected error %d with \"%s\", got %s", method, params, code,
                 needle ? needle : "", text);
    }
    json_decref(r);
}

/* The only pending hashing job of the fake session: finish it. */
static uint64_t finish_job(t_t *t, const char *path, const char *error)
{
    share_info_t sh;
    size_t i;
    for (i = 0; library_get(t->a->lib, i, &sh) == 0; i++)
        if (sh.state == SHARE_HASHING && strcmp(sh.path, path) == 0)
            break;
    assert_int_equal(sh.state, SHARE_HASHING);
    /* fake job ids count from 1 in creation order; the library keeps the
     * one it got: find it by finishing each until ours answers */
    {
        uint64_t job;
        for (job = 1; job < 100; job++)
            if (btshim_fake_job_finish(t->bt, job, error) == BTSHIM_OK)
                break;
        assert_true(job < 100);
    }
    agent_drain_events(t->a);
    return sh.id;
}

static json_t *torrents(t_t *t, const char *params)
{
    json_t *r = call(t, "bt.get_torrents", params);
    json_t *list = json_incref(json_object_get(result_of(r), "torrents"));
    json_decref(r);
    assert_true(json_is_array(list));
    return list;
}

static const char *field(json_t *list, size_t i, const char *key)
{
    return json_string_value(json_object_get(json_array_get(list, i), key));
}

/* ---- bt.add_path ------------------------------------------------------- */

static void agent__add_path__hashes_then_seeds(void **state)
{
    t_t *t = *state;
    char params[512], path[256], *hash;
    json_t *r, *list;
    struct stat st;

    snprintf(path, sizeof path, "%s/folder", t->data);
    snprintf(params, sizeof params, "{\"path\":\"%s\"}", path);
    r = call(t, "bt.add_path", params);
    assert_string_equal(json_string_value(json_object_get(result_of(r), "state")), "hashing");
    assert_true(json_is_null(json_object_get(result_of(r), "hash")));
    assert_false(json_is_true(json_object_get(result_of(r), "duplicate")));
    json_decref(r);

    list = torrents(t, "{}");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(field(list, 0, "state"), "hashing");
    assert_string_equal(field(list, 0, "name"), "folder");
    assert_int_equal(json_integer_value(json_object_get(json_array_get(list, 0), "size")),
                     strlen("first file\n") + strlen("second\n"));
    json_decref(list);

    finish_job(t, path, NULL);
    list = torrents(t, "{}");
    assert_string_equal(field(list, 0, "state"), "seeding");
    hash = strdup(field(list, 0, "hash"));
    assert_int_equal(strlen(hash), 40);
    json_decref(list);
    /* seeded in upload mode, without checking what was just hashed */
    assert_int_equal(btshim_fake_torrent_flags(t->bt, hash),
                     BTSHIM_ADD_SEED_MODE | BTSHIM_ADD_UPLOAD_ONLY);
    snprintf(path, sizeof path, "%s/shares/%s.torrent", t->state_dir, hash);
    assert_int_equal(stat(path, &st), 0);
    assert_int_equal(st.st_mode & 0777, 0600);
    snprintf(path, sizeof path, "%s/shares/%s.json", t->state_dir, hash);
    assert_int_equal(stat(path, &st), 0);
    snprintf(path, sizeof path, "%s/shares/%s.resume", t->state_dir, hash);
    assert_int_equal(stat(path, &st), 0);
    free(hash);
}

static void agent__add_path__wait_answers_when_hashed(void **state)
{
    t_t *t = *state;
    char body[512], path[256];
    out_t o = {0, NULL};
    json_error_t e;
    json_t *r;

    snprintf(path, sizeof path, "%s/single.txt", t->data);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":5,\"method\":\"bt.add_path\",\"params\":{\"path\":\"%s\","
             "\"wait\":true}}",
             path);
    assert_int_equal(rpc_exec(agent_rpc(t->a), body, strlen(body), on_done, &o, NULL), 0);
    assert_int_equal(o.done, 0);
    /* the API answers meanwhile */
    json_decref(call(t, "agent.status", "{}"));
    finish_job(t, path, NULL);
    assert_int_equal(o.done, 1);
    r = json_loads(o.reply, 0, &e);
    assert_int_equal(strlen(json_string_value(json_object_get(result_of(r), "hash"))), 40);
    assert_string_equal(json_string_value(json_object_get(result_of(r), "state")), "seeding");
    json_decref(r);
    free(o.reply);

    /* a failed job fails the waiting call with its reason */
    write_text(path, "hello again\n");
    snprintf(path, sizeof path, "%s/folder", t->data);
    snprintf(body, sizeof body,
             "{\"jsonrpc\":\"2.0\",\"id\":6,\"method\":\"bt.add_path\",\"params\":{\"path\":\"%s\","
             "\"wait\":true}}",
             path);
    o.done = 0;
    o.reply = NULL;
    assert_int_equal(rpc_exec(agent_rpc(t->a), body, strlen(body), on_done, &o, NULL), 0);
    finish_job(t, path, "read error");
    assert_int_equal(o.done, 1);
    assert_non_null(strstr(o.reply, "\"code\":-32005"));
    assert_non_null(strstr(o.reply, "read error"));
    free(o.reply);

    /* a share removed while hashing fails its waiting calls */
    o.done = 0;
    o.reply = NULL;
    assert_int_equal(rpc_exec(agent_rpc(t->a), body, strlen(body), on_done, &o, NULL), 0);
    assert_int_equal(o.done, 0);
    {
        share_info_t sh;
        char params[64];
        assert_int_equal(library_find(t->a->lib, NULL, 0, &sh), -1);
        assert_int_equal(library_get(t->a->lib, library_count(t->a->lib) - 1, &sh), 0);
        assert_int_equal(sh.state, SHARE_HASHING);
        snprintf(params, sizeof params, "{\"id\":%llu}", (unsigned long long)sh.id);
        json_decref(call(t, "bt.del_torrent", params));
    }
    assert_int_equal(o.done, 1);
    assert_non_null(strstr(o.reply, "\"code\":-32005"));
    assert_non_null(strstr(o.reply, "removed before its hashing ended"));
    free(o.reply);
    assert_int_equal(t->a->n_waiters, 0);

    /* and a stopping agent fails them with "unavailable" */
    o.done = 0;
    o.reply = NULL;
    assert_int_equal(rpc_exec(agent_rpc(t->a), body, strlen(body), on_done, &o, NULL), 0);
    assert_int_equal(o.done, 0);
    agent_rpc_fail_waiters(t->a);
    assert_int_equal(o.done, 1);
    assert_non_null(strstr(o.reply, "\"code\":-32006"));
    free(o.reply);
}

static void agent__add_path__refuses_bad_params(void **state)
{
    t_t *t = *state;
    char params[512];

    expect_error(t, "bt.add_path", "{}", RPC_INVALID_PARAMS, "\"path\" is required");
    expect_error(t, "bt.add_path", "{\"path\":5}", RPC_INVALID_PARAMS, "must be a string");
    /* a NUL in a JSON string is refused by the parser already */
    expect_error(t, "bt.add_path", "{\"path\":\"/x\\u0000y\"}", RPC_PARSE_ERROR, "u0000");
    expect_error(t, "bt.add_path", "{\"path\":\"relative/dir\"}", RPC_PATH_ERROR, "absolute");
    expect_error(t, "bt.add_path", "{\"path\":\"/nonexistent/bitween\"}", RPC_PATH_ERROR,
                 "No such file");
    snprintf(params, sizeof params, "{\"path\":\"%s/empty\"}", t->data);
    expect_error(t, "bt.add_path", params, RPC_PATH_ERROR, "holds no data");
    expect_error(t, "bt.add_path", "{\"path\":\"/dev/null\"}", RPC_PATH_ERROR, "holds no data");
    snprintf(params, sizeof params, "{\"path\":\"%s/single.txt\",\"wait\":\"yes\"}", t->data);
    expect_error(t, "bt.add_path", params, RPC_INVALID_PARAMS, "true or false");
    snprintf(params, sizeof params, "{\"path\":\"%s/single.txt\",\"colour\":1}", t->data);
    expect_error(t, "bt.add_path", params, RPC_INVALID_PARAMS, "unknown parameter \"colour\"");
    /* nothing was added by any of them */
    assert_int_equal(library_count(t->a->lib), 0);
    assert_int_equal(btshim_fake_jobs_pending(t->bt), 0);
}

static void agent__add_path__duplicate(void **state)
{
    t_t *t = *state;
    char params[512];
    json_t *r1, *r2;

    snprintf(params, sizeof params, "{\"path\":\"%s/folder\"}", t->data);
    r1 = call(t, "bt.add_path", params);
    /* the same folder by another spelling */
    snprintf(params, sizeof params, "{\"path\":\"%s/folder/../folder/\"}", t->data);
    r2 = call(t, "bt.add_path", params);
    assert_true(json_is_true(json_object_get(result_of(r2), "duplicate")));
    assert_int_equal(json_integer_value(json_object_get(result_of(r1), "id")),
                     json_integer_value(json_object_get(result_of(r2), "id")));
    assert_int_equal(library_count(t->a->lib), 1);
    assert_int_equal(btshim_fake_jobs_pending(t->bt), 1);
    json_decref(r1);
    json_decref(r2);
}

/* ---- bt.del_torrent ------------------------------------------------------ */

static void agent__del_torrent__keeps_the_files(void **state)
{
    t_t *t = *state;
    char params[512], path[256], hash[41];
    json_t *list, *r;
    struct stat st;

    snprintf(path, sizeof path, "%s/single.txt", t->data);
    snprintf(params, sizeof params, "{\"path\":\"%s\"}", path);
    json_decref(call(t, "bt.add_path", params));
    finish_job(t, path, NULL);
    list = torrents(t, "{}");
    snprintf(hash, sizeof hash, "%s", field(list, 0, "hash"));
    json_decref(list);

    expect_error(t, "bt.del_torrent", "{}", RPC_INVALID_PARAMS, "either");
    snprintf(params, sizeof params, "{\"hash\":\"%s\",\"id\":1}", hash);
    expect_error(t, "bt.del_torrent", params, RPC_INVALID_PARAMS, "either");
    expect_error(t, "bt.del_torrent", "{\"hash\":\"xyz\"}", RPC_INVALID_PARAMS, "40 hexadecimal");
    expect_error(t, "bt.del_torrent", "{\"hash\":\"0000000000000000000000000000000000000000\"}",
                 RPC_NOT_FOUND, "no torrent");
    expect_error(t, "bt.del_torrent", "{\"id\":-1}", RPC_INVALID_PARAMS, "integer");
    snprintf(params, sizeof params, "{\"hash\":\"%s\",\"delete_data\":true}", hash);
    expect_error(t, "bt.del_torrent", params, RPC_INVALID_PARAMS, "never deletes your files");
    assert_int_equal(btshim_fake_torrents(t->bt), 1);

    /* upper-case hex is the same hash */
    for (size_t i = 0; i < 40; i++)
        if (hash[i] >= 'a')
            hash[i] = (char)(hash[i] - 'a' + 'A');
    snprintf(params, sizeof params, "{\"hash\":\"%s\"}", hash);
    r = call(t, "bt.del_torrent", params);
    assert_true(json_is_true(json_object_get(result_of(r), "removed")));
    json_decref(r);
    assert_int_equal(btshim_fake_torrents(t->bt), 0);
    assert_int_equal(library_count(t->a->lib), 0);
    assert_int_equal(stat(path, &st), 0); /* the user's file is still there */
    assert_int_equal(st.st_size, 6);
    snprintf(path, sizeof path, "%s/shares", t->state_dir);
    {
        char cmd[512];
        snprintf(cmd, sizeof cmd, "test -z \"$(ls -A '%s')\"", path);
        assert_int_equal(system(cmd), 0); /* its state files are gone */
    }
}

/* ---- restarts ------------------------------------------------------------- */

static char *share_one(t_t *t, const char *name)
{
    char params[512], path[256];
    json_t *list;
    char *hash;
    snprintf(path, sizeof path, "%s/%s", t->data, name);
    snprintf(params, sizeof params, "{\"path\":\"%s\"}", path);
    json_decref(call(t, "bt.add_path", params));
    finish_job(t, path, NULL);
    list = torrents(t, "{}");
    hash = strdup(field(list, json_array_size(list) - 1, "hash"));
    json_decref(list);
    return hash;
}

static void set_mtime(const char *path, time_t when)
{
    struct timespec ts[2] = {{when, 0}, {when, 0}};
    assert_int_equal(utimensat(AT_FDCWD, path, ts, 0), 0);
}

static void agent__restart__seeds_without_hashing(void **state)
{
    t_t *t = *state;
    char *h1 = share_one(t, "folder"), *h2 = share_one(t, "single.txt");
    json_t *list;

    stop(t);
    start(t);
    assert_int_equal(btshim_fake_jobs_pending(t->bt), 0);
    assert_int_equal(btshim_fake_torrents(t->bt), 2);
    assert_int_equal(btshim_fake_torrent_resumed(t->bt, h1), 1);
    assert_int_equal(btshim_fake_torrent_resumed(t->bt, h2), 1);
    assert_true(btshim_fake_torrent_flags(t->bt, h1) & BTSHIM_ADD_UPLOAD_ONLY);
    list = torrents(t, "{\"fields\":[\"hash\",\"state\"]}");
    assert_int_equal(json_array_size(list), 2);
    assert_string_equal(field(list, 0, "hash"), h1); /* in the order they were added */
    assert_string_equal(field(list, 0, "state"), "seeding");
    assert_string_equal(field(list, 1, "state"), "seeding");
    assert_int_equal(json_object_size(json_array_get(list, 0)), 2);
    json_decref(list);
    free(h1);
    free(h2);
}

static void agent__restart__checks_a_touched_file(void **state)
{
    t_t *t = *state;
    char *h1 = share_one(t, "folder"), *h2 = share_one(t, "single.txt");
    char path[256];
    json_t *list;
    btshim_event_t ev;

    stop(t);
    snprintf(path, sizeof path, "%s/folder/ü.bin", t->data);
    set_mtime(path, 1000000000);
    snprintf(path, sizeof path, "%s/single.txt", t->data);
    set_mtime(path, 1000000000);
    start(t);
    /* both are checked, not seeded from their resume data */
    assert_int_equal(btshim_fake_torrent_resumed(t->bt, h1), 0);
    assert_int_equal(btshim_fake_torrent_resumed(t->bt, h2), 0);
    list = torrents(t, "{\"fields\":[\"state\"]}");
    assert_string_equal(field(list, 0, "state"), "checking");
    assert_string_equal(field(list, 1, "state"), "checking");
    json_decref(list);

    /* the folder's pieces all match; the file's do not */
    memset(&ev, 0, sizeof ev);
    ev.type = BTSHIM_EV_CHECKED;
    memcpy(ev.hash, h1, 41);
    assert_int_equal(btshim_fake_push(t->bt, &ev), BTSHIM_OK);
    memcpy(ev.hash, h2, 41);
    ev.error = 1;
    assert_int_equal(btshim_fake_push(t->bt, &ev), BTSHIM_OK);
    agent_drain_events(t->a);
    list = torrents(t, "{\"fields\":[\"state\",\"error\"]}");
    assert_string_equal(field(list, 0, "state"), "seeding");
    assert_string_equal(field(list, 1, "state"), "error");
    assert_non_null(strstr(field(list, 1, "error"), "changed"));
    json_decref(list);
    assert_int_equal(btshim_fake_torrents(t->bt), 1); /* withdrawn: no longer seeded */

    /* the folder's new times are recorded: the next start needs no check */
    stop(t);
    start(t);
    assert_int_equal(btshim_fake_torrent_resumed(t->bt, h1), 1);
    free(h1);
    free(h2);
}

static void agent__restart__withdraws_changed_and_vanished(void **state)
{
    t_t *t = *state;
    char *h1 = share_one(t, "folder"), *h2 = share_one(t, "single.txt");
    char path[256];
    json_t *list, *r;

    stop(t);
    snprintf(path, sizeof path, "%s/folder/a b.txt", t->data);
    assert_int_equal(unlink(path), 0);
    snprintf(path, sizeof path, "%s/single.txt", t->data);
    write_text(path, "hello, longer\n");
    start(t);
    assert_int_equal(btshim_fake_torrents(t->bt), 0);
    list = torrents(t, "{\"fields\":[\"state\",\"error\"]}");
    assert_string_equal(field(list, 0, "state"), "error");
    assert_string_equal(field(list, 1, "state"), "error");
    assert_non_null(strstr(field(list, 1, "error"), "changed size"));
    json_decref(list);
    /* sharing the path again replaces the withdrawn entry */
    {
        char params[512];
        snprintf(params, sizeof params, "{\"path\":\"%s\"}", path);
        r = call(t, "bt.add_path", params);
        assert_false(json_is_true(json_object_get(result_of(r), "duplicate")));
        json_decref(r);
    }
    assert_int_equal(library_count(t->a->lib), 2);
    free(h1);
    free(h2);
}

static void agent__state_dir__must_be_private(void **state)
{
    t_t *t = *state;
    char path[256];
    btshim_error_t err;

    stop(t);
    /* others could plant torrents, resume data or links there */
    assert_int_equal(chmod(t->state_dir, 0777), 0);
    t->bt = btshim_session_new(NULL, &err);
    assert_null(agent_new_offline(&t->s, t->log, t->bt));
    assert_int_equal(chmod(t->state_dir, 0700), 0);
    snprintf(path, sizeof path, "%s/shares", t->state_dir);
    assert_int_equal(chmod(path, 0770), 0);
    assert_null(agent_new_offline(&t->s, t->log, t->bt));
    assert_int_equal(chmod(path, 0700), 0);
    t->a = agent_new_offline(&t->s, t->log, t->bt);
    assert_non_null(t->a);
}

/* ---- the other methods --------------------------------------------------- */

static void agent__get_torrents__fields_and_filter(void **state)
{
    t_t *t = *state;
    char *h1 = share_one(t, "folder"), *h2 = share_one(t, "single.txt");
    char params[512];
    json_t *list;

    snprintf(params, sizeof params, "{\"hash\":\"%s\",\"fields\":[\"name\",\"progress\"]}", h2);
    list = torrents(t, params);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(field(list, 0, "name"), "single.txt");
    assert_true(json_real_value(json_object_get(json_array_get(list, 0), "progress")) == 1.0);
    assert_int_equal(json_object_size(json_array_get(list, 0)), 2);
    json_decref(list);
    expect_error(t, "bt.get_torrents", "{\"fields\":[\"name\",\"colour\"]}", RPC_INVALID_PARAMS,
                 "unknown field \"colour\"");
    expect_error(t, "bt.get_torrents", "{\"fields\":\"name\"}", RPC_INVALID_PARAMS, "array");
    expect_error(t, "bt.get_torrents", "{\"fields\":[7]}", RPC_INVALID_PARAMS, "not a string");
    expect_error(t, "bt.get_torrents", "{\"hash\":\"12\"}", RPC_INVALID_PARAMS, "hexadecimal");
    free(h1);
    free(h2);
}

static void agent__status_rates_and_later_methods(void **state)
{
    t_t *t = *state;
    json_t *r = call(t, "agent.status", "{}"), *res = result_of(r);

    assert_string_equal(json_string_value(json_object_get(res, "backend")), "fake");
    assert_string_equal(json_string_value(json_object_get(res, "state_dir")), t->state_dir);
    assert_true(json_is_array(json_object_get(res, "listen_ports")));
    json_decref(r);
    expect_error(t, "agent.status", "{\"x\":1}", RPC_INVALID_PARAMS, "unknown parameter");

    r = call(t, "bt.set_rates", "{\"download\":100,\"upload\":50}");
    assert_int_equal(json_integer_value(json_object_get(result_of(r), "download")), 100);
    json_decref(r);
    r = call(t, "agent.status", "{}");
    assert_int_equal(
        json_integer_value(json_object_get(json_object_get(result_of(r), "rate_limits"), "upload")),
        50);
    json_decref(r);
    expect_error(t, "bt.set_rates", "{\"download\":-1}", RPC_INVALID_PARAMS, "integer");
    expect_error(t, "bt.set_rates", "{\"upload\":1e3}", RPC_INVALID_PARAMS, "integer");
    expect_error(t, "bt.set_rates", "{\"upload\":99999999}", RPC_INVALID_PARAMS, "integer");
    expect_error(t, "bt.nothing", "{}", RPC_METHOD_NOT_FOUND, "no method");
}

#define HASH_A "0123456789abcdef0123456789abcdef01234567"

static int is_dir(const char *path)
{
    struct stat st;
    return lstat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

static void agent__download__added_waits_and_persists(void **state)
{
    t_t *t = *state;
    json_t *r, *res, *list;
    char folder[512], path[600];

    /* upper case is read as the same hash; a new folder named after it */
    r = call(t, "bt.add_torrent_by_hash",
             "{\"hash\":\"0123456789ABCDEF0123456789abcdef01234567\"}");
    res = result_of(r);
    assert_string_equal(json_string_value(json_object_get(res, "hash")), HASH_A);
    assert_false(json_is_true(json_object_get(res, "duplicate")));
    assert_string_equal(json_string_value(json_object_get(res, "state")), "waiting for a source");
    assert_int_equal(json_integer_value(json_object_get(res, "sources")), 0);
    snprintf(folder, sizeof folder, "%s", json_string_value(json_object_get(res, "path")));
    snprintf(path, sizeof path, "%s/%s", t->download_dir, HASH_A);
    assert_string_equal(folder, path);
    assert_true(is_dir(folder));
    json_decref(r);
    assert_int_equal(btshim_fake_torrent_flags(t->bt, HASH_A), 0);

    /* the same again: a duplicate, no second folder */
    r = call(t, "bt.add_torrent_by_hash", "{\"magnet\":\"magnet:?xt=urn:btih:" HASH_A "\"}");
    assert_true(json_is_true(json_object_get(result_of(r), "duplicate")));
    assert_string_equal(json_string_value(json_object_get(result_of(r), "path")), folder);
    json_decref(r);

    list = torrents(t, "{\"fields\":[\"kind\",\"state\",\"detail\",\"eta\",\"sources\"]}");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(field(list, 0, "kind"), "download");
    assert_string_equal(field(list, 0, "state"), "waiting for a source");
    assert_non_null(strstr(field(list, 0, "detail"), "no contact shares it"));
    assert_true(json_is_null(json_object_get(json_array_get(list, 0), "eta")));
    json_decref(list);

    /* pause survives a restart, and so does the download */
    r = call(t, "bt.pause", "{\"hash\":\"" HASH_A "\"}");
    assert_string_equal(json_string_value(json_object_get(result_of(r), "state")), "paused");
    json_decref(r);
    stop(t);
    start(t);
    assert_int_equal(btshim_fake_torrent_flags(t->bt, HASH_A), BTSHIM_ADD_PAUSED);
    list = torrents(t, "{\"fields\":[\"state\",\"path\"]}");
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(field(list, 0, "state"), "paused");
    assert_string_equal(field(list, 0, "path"), folder);
    json_decref(list);
    r = call(t, "bt.resume", "{\"hash\":\"" HASH_A "\"}");
    assert_string_equal(json_string_value(json_object_get(result_of(r), "state")),
                        "waiting for a source");
    json_decref(r);

    /* removed with its data: the folder goes; nothing is left to load */
    r = call(t, "bt.del_torrent", "{\"hash\":\"" HASH_A "\",\"delete_data\":true}");
    assert_true(json_is_true(json_object_get(result_of(r), "data_deleted")));
    json_decref(r);
    agent_drain_events(t->a);
    assert_false(is_dir(folder));
    stop(t);
    start(t);
    list = torrents(t, "{}");
    assert_int_equal(json_array_size(list), 0);
    json_decref(list);
}

static void agent__download__folders_never_reuse_a_name(void **state)
{
    t_t *t = *state;
    json_t *r;
    char path[1024], root[512];

    /* a folder named like the download exists already: a new one beside it */
    mkdir(t->download_dir, 0755);
    snprintf(path, sizeof path, "%s/holiday", t->download_dir);
    mkdir(path, 0755);
    r = call(t, "bt.add_torrent_by_hash", "{\"hash\":\"" HASH_A "\",\"name\":\"holiday\"}");
    snprintf(path, sizeof path, "%s/holiday (2)", t->download_dir);
    assert_string_equal(json_string_value(json_object_get(result_of(r), "path")), path);
    json_decref(r);

    /* a name cannot climb out or hide: slashes, dots and controls go */
    r = call(
        t, "bt.add_torrent_by_hash",
        "{\"hash\":\"1111111111111111111111111111111111111111\",\"name\":\"../../etc/x\\u202e\"}");
    snprintf(path, sizeof path, "%s/etc_x", t->download_dir);
    assert_string_equal(json_string_value(json_object_get(result_of(r), "path")), path);
    json_decref(r);

    /* a long name of two-byte characters: cut at a character boundary, and
     * the download is kept (its state file is valid JSON) */
    {
        char params[1024], *p;
        int i;
        p = params + snprintf(params, sizeof params,
                              "{\"hash\":\"4444444444444444444444444444444444444444\",\"name\":\"");
        for (i = 0; i < 150; i++)
            p += sprintf(p, "\u00e9");
        strcpy(p, "\"}");
        r = call(t, "bt.add_torrent_by_hash", params);
        assert_true(json_is_string(json_object_get(result_of(r), "name")));
        assert_true(strlen(json_string_value(json_object_get(result_of(r), "name"))) <= 255);
        json_decref(r);
        stop(t);
        start(t);
        assert_int_equal(
            downloads_find(t->a->dl, "4444444444444444444444444444444444444444", 0, NULL), 0);
    }

    /* save_path: inside the download directory only (no roots configured) */
    snprintf(root, sizeof root, "%s/sub", t->download_dir);
    mkdir(root, 0755);
    {
        char params[1024];
        snprintf(params, sizeof params,
                 "{\"hash\":\"2222222222222222222222222222222222222222\",\"save_path\":\"%s\"}",
                 root);
        r = call(t, "bt.add_torrent_by_hash", params);
        snprintf(path, sizeof path, "%s/2222222222222222222222222222222222222222", root);
        assert_string_equal(json_string_value(json_object_get(result_of(r), "path")), path);
        json_decref(r);
        snprintf(params, sizeof params,
                 "{\"hash\":\"3333333333333333333333333333333333333333\",\"save_path\":\"%s\"}",
                 t->data);
        expect_error(t, "bt.add_torrent_by_hash", params, RPC_INVALID_PARAMS,
                     "outside the download directory");
        snprintf(params, sizeof params,
                 "{\"hash\":\"3333333333333333333333333333333333333333\",\"save_path\":\"%s/../../"
                 "data\"}",
                 root);
        expect_error(t, "bt.add_torrent_by_hash", params, RPC_INVALID_PARAMS, "");
    }
    expect_error(t, "bt.add_torrent_by_hash",
                 "{\"hash\":\"3333333333333333333333333333333333333333\",\"save_path\":\"rel\"}",
                 RPC_INVALID_PARAMS, "absolute");
}

static void agent__download__bad_input(void **state)
{
    t_t *t = *state;
    expect_error(t, "bt.add_torrent_by_hash", "{\"hash\":\"12\"}", RPC_INVALID_PARAMS, "info-hash");
    expect_error(t, "bt.add_torrent_by_hash", "{\"hash\":\"" HASH_A HASH_A "\"}",
                 RPC_INVALID_PARAMS, "");
    expect_error(t, "bt.add_torrent_by_hash", "{}", RPC_INVALID_PARAMS, "either");
    expect_error(t, "bt.add_torrent_by_hash", "{\"hash\":\"" HASH_A "\",\"x\":1}",
                 RPC_INVALID_PARAMS, "unknown parameter");
    expect_error(t, "bt.pause", "{\"hash\":\"" HASH_A "\"}", RPC_NOT_FOUND, "no torrent");
    expect_error(t, "bt.del_torrent", "{\"hash\":\"" HASH_A "\"}", RPC_NOT_FOUND, "no torrent");
    expect_error(t, "xmpp.search", "{}", RPC_INVALID_PARAMS, "required");
    {
        json_t *r = call(t, "xmpp.search", "{\"query\":\"x\"}");
        assert_int_equal(json_array_size(json_object_get(result_of(r), "results")), 0);
        json_decref(r);
    }
    /* nothing was made */
    assert_int_equal(btshim_fake_torrents(t->bt), 0);
}

int main(void)
{
#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)
    const struct CMUnitTest tests[] = {
        T(agent__add_path__hashes_then_seeds),
        T(agent__add_path__wait_answers_when_hashed),
        T(agent__add_path__refuses_bad_params),
        T(agent__add_path__duplicate),
        T(agent__del_torrent__keeps_the_files),
        T(agent__restart__seeds_without_hashing),
        T(agent__restart__checks_a_touched_file),
        T(agent__restart__withdraws_changed_and_vanished),
        T(agent__state_dir__must_be_private),
        T(agent__get_torrents__fields_and_filter),
        T(agent__status_rates_and_later_methods),
        T(agent__download__added_waits_and_persists),
        T(agent__download__folders_never_reuse_a_name),
        T(agent__download__bad_input),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
