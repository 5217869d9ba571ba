/* SPDX-License-Identifier: MIT */
/*
 * The libtorrent shim (agent/btshim_lt.cpp) with real libtorrent sessions
 * on loopback: a folder with nested files and multi-byte names is hashed
 * off the caller's thread into a v1 torrent whose info-hash matches one
 * computed independently (tests/support/infohash.py, Python's hashlib),
 * seeded by one session and downloaded by another, byte for byte; resume
 * data restores a torrent; a changed file fails its recheck; removing a
 * torrent keeps its files; bad arguments get errors, never a crash.
 *
 *   test_btshim PATH/TO/infohash.py
 */
#include <errno.h>
#include <fcntl.h>
#include <ctype.h>
#include <poll.h>
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

#include "btshim.h"

static const char *infohash_py;

typedef struct fixture {
    char dir[256];
    btshim_session_t *a, *b;
} fixture_t;

static long long now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char *path_of(const fixture_t *f, const char *rel)
{
    size_t n = strlen(f->dir) + strlen(rel) + 2;
    char *p = malloc(n);
    assert_non_null(p);
    snprintf(p, n, "%s/%s", f->dir, rel);
    return p;
}

/* A file of `size` bytes derived from `seed`. */
static void write_file(const fixture_t *f, const char *rel, size_t size, unsigned seed)
{
    char *p = path_of(f, rel);
    FILE *fp = fopen(p, "wb");
    size_t i;
    assert_non_null(fp);
    for (i = 0; i < size; i++) {
        seed = seed * 1103515245u + 12345u;
        fputc((int)(seed >> 16) & 0xff, fp);
    }
    assert_int_equal(fclose(fp), 0);
    free(p);
}

static void make_dir(const fixture_t *f, const char *rel)
{
    char *p = path_of(f, rel);
    assert_int_equal(mkdir(p, 0755), 0);
    free(p);
}

static char *read_all(const char *path, size_t *len)
{
    FILE *fp = fopen(path, "rb");
    char *buf;
    long n;
    assert_non_null(fp);
    assert_int_equal(fseek(fp, 0, SEEK_END), 0);
    n = ftell(fp);
    assert_true(n >= 0);
    rewind(fp);
    buf = malloc((size_t)n + 1);
    assert_non_null(buf);
    assert_int_equal(fread(buf, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    *len = (size_t)n;
    return buf;
}

/* The finished alert can come before the last blocks reach the file
 * (libtorrent 2.0 writes asynchronously): the copy must equal the
 * original within a deadline. */
static void same_file(const fixture_t *f, const char *rel_a, const char *rel_b)
{
    char *pa = path_of(f, rel_a), *pb = path_of(f, rel_b), *a, *b;
    size_t la, lb;
    long long end = now_ms() + 30000;
    a = read_all(pa, &la);
    for (;;) {
        b = read_all(pb, &lb);
        if ((la == lb && memcmp(a, b, la) == 0) || now_ms() >= end)
            break;
        free(b);
        usleep(20000);
    }
    assert_int_equal(la, lb);
    assert_memory_equal(a, b, la);
    free(a);
    free(b);
    free(pa);
    free(pb);
}

static int setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    btshim_settings_t s;
    btshim_error_t err;
    const char *tmp = getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
    assert_non_null(f);
    snprintf(f->dir, sizeof f->dir, "%s/btshim.XXXXXX", tmp);
    assert_non_null(mkdtemp(f->dir));
    memset(&s, 0, sizeof s);
    s.listen_interfaces = "127.0.0.1:0";
    s.max_jobs = 2;
    f->a = btshim_session_new(&s, &err);
    assert_non_null(f->a);
    f->b = btshim_session_new(&s, &err);
    assert_non_null(f->b);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    fixture_t *f = *state;
    char cmd[512];
    btshim_session_free(f->a);
    btshim_session_free(f->b);
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", f->dir);
    if (system(cmd) != 0)
        fprintf(stderr, "test_btshim: could not remove %s\n", f->dir);
    free(f);
    return 0;
}

/* Poll `ses` until an event of `type` (about `hash`, when not NULL, or
 * job `job`, when not 0) arrives; other events are dropped. Fails the
 * test after `ms`. The caller clears the returned event. */
static btshim_event_t wait_event(btshim_session_t *ses, btshim_event_type_t type, const char *hash,
                                 uint64_t job, int ms)
{
    long long end = now_ms() + ms;
    btshim_error_t err;
    for (;;) {
        struct pollfd pfd = {btshim_session_wake_fd(ses), POLLIN, 0};
        btshim_event_t ev[16];
        size_t n = 0, i;
        int found = -1;
        long long left = end - now_ms();
        if (left <= 0)
            fprintf(stderr, "test_btshim: no event %d (hash %s, job %llu) within %d ms\n",
                    (int)type, hash ? hash : "-", (unsigned long long)job, ms);
        assert_true(left > 0);
        poll(&pfd, 1, left > 200 ? 200 : (int)left);
        assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 16, &n, &err), BTSHIM_OK);
        for (i = 0; i < n; i++) {
            if (found < 0 && ev[i].type == type && (!hash || strcmp(ev[i].hash, hash) == 0) &&
                (!job || ev[i].job == job))
                found = (int)i;
            else
                btshim_event_clear(&ev[i]);
        }
        if (found >= 0)
            return ev[found];
    }
}

/* Both sessions' events flow while `ses` waits for `type`. */
static btshim_event_t wait_event_pumping(btshim_session_t *ses, btshim_session_t *other,
                                         btshim_event_type_t type, const char *hash, int ms)
{
    long long end = now_ms() + ms;
    for (;;) {
        btshim_event_t ev[16];
        size_t n = 0, i;
        btshim_error_t err;
        struct pollfd pfd[2] = {{btshim_session_wake_fd(ses), POLLIN, 0},
                                {btshim_session_wake_fd(other), POLLIN, 0}};
        int found = -1;
        assert_true(now_ms() < end);
        poll(pfd, 2, 200);
        assert_int_equal(btshim_poll(other, ev, sizeof ev[0], 16, &n, &err), BTSHIM_OK);
        for (i = 0; i < n; i++)
            btshim_event_clear(&ev[i]);
        assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 16, &n, &err), BTSHIM_OK);
        for (i = 0; i < n; i++) {
            if (found < 0 && ev[i].type == type && (!hash || strcmp(ev[i].hash, hash) == 0))
                found = (int)i;
            else
                btshim_event_clear(&ev[i]);
        }
        if (found >= 0)
            return ev[found];
    }
}

/* Poll the status of `hash` until it is seeding (30 s at most); the last
 * status into `st`. */
static void wait_seeding(btshim_session_t *ses, const char *hash, btshim_torrent_status_t *st)
{
    long long end = now_ms() + 30000;
    btshim_error_t err;
    for (;;) {
        assert_int_equal(btshim_torrent_status(ses, hash, st, sizeof *st, &err), BTSHIM_OK);
        if (st->state == BTSHIM_STATE_SEEDING)
            return;
        assert_true(now_ms() < end);
        usleep(20000);
    }
}

/* Hash `rel` into a torrent; returns the event (data: the torrent file). */
static btshim_event_t make_torrent(fixture_t *f, const char *rel)
{
    char *p = path_of(f, rel);
    uint64_t job = 0, done = 0, total = 0;
    btshim_error_t err;
    btshim_event_t ev;
    assert_int_equal(btshim_create_start(f->a, p, 0, &job, &err), BTSHIM_OK);
    assert_true(job != 0);
    /* the call returned at once; progress is readable until the end */
    if (btshim_create_progress(f->a, job, &done, &total, &err) == BTSHIM_OK)
        assert_true(done <= total || total == 0);
    ev = wait_event(f->a, BTSHIM_EV_CREATED, NULL, job, 60000);
    assert_int_equal(strlen(ev.hash), 40);
    assert_non_null(ev.data);
    assert_true(ev.data_len > 0);
    free(p);
    return ev;
}

/* The info-hash of `data` as tests/support/infohash.py computes it. */
static void python_infohash(fixture_t *f, const void *data, size_t len, char out[41])
{
    char *tp = path_of(f, "check.torrent"), cmd[1024], line[128];
    FILE *fp = fopen(tp, "wb"), *p;
    assert_non_null(fp);
    assert_int_equal(fwrite(data, 1, len, fp), len);
    assert_int_equal(fclose(fp), 0);
    snprintf(cmd, sizeof cmd, "python3 '%s' '%s'", infohash_py, tp);
    p = popen(cmd, "r");
    assert_non_null(p);
    assert_non_null(fgets(line, sizeof line, p));
    assert_int_equal(pclose(p), 0);
    line[strcspn(line, "\n")] = '\0';
    assert_int_equal(strlen(line), 40);
    memcpy(out, line, 41);
    free(tp);
}

/* ---- tests ---------------------------------------------------------------------- */

static void btshim__folder__hashed_seeded_and_downloaded(void **state)
{
    fixture_t *f = *state;
    btshim_event_t made, ev;
    btshim_error_t err;
    btshim_torrent_status_t st;
    char hash[BTSHIM_HASH_HEX], py[41], *src, *dst;
    uint16_t ports[4];
    size_t np = 0;

    make_dir(f, "src");
    make_dir(f, "src/holiday photos");
    make_dir(f, "src/holiday photos/été 2026");
    write_file(f, "src/holiday photos/a b.txt", 100000, 1);
    write_file(f, "src/holiday photos/été 2026/日本 ファイル.bin", 300001, 2);
    write_file(f, "src/holiday photos/empty.txt", 0, 3);
    make_dir(f, "dst");

    made = make_torrent(f, "src/holiday photos");
    python_infohash(f, made.data, made.data_len, py);
    assert_string_equal(made.hash, py);

    src = path_of(f, "src");
    assert_int_equal(btshim_torrent_add(f->a, made.data, made.data_len, src, NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_OK);
    assert_string_equal(hash, made.hash);
    /* the same torrent twice: refused */
    assert_int_equal(btshim_torrent_add(f->a, made.data, made.data_len, src, NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_EEXIST);
    /* seed mode: no check of the data, seeding once started */
    wait_seeding(f->a, made.hash, &st);
    assert_string_equal(st.name, "holiday photos");
    assert_true(st.size == 400001);

    dst = path_of(f, "dst");
    assert_int_equal(
        btshim_torrent_add(f->b, made.data, made.data_len, dst, NULL, 0, 0, hash, &err), BTSHIM_OK);
    assert_int_equal(btshim_session_listen_ports(f->a, ports, 4, &np, &err), BTSHIM_OK);
    assert_true(np >= 1 && ports[0] != 0);
    assert_int_equal(btshim_torrent_add_peer(f->b, made.hash, "127.0.0.1", ports[0], &err),
                     BTSHIM_OK);
    ev = wait_event_pumping(f->b, f->a, BTSHIM_EV_FINISHED, made.hash, 60000);
    btshim_event_clear(&ev);
    same_file(f, "src/holiday photos/a b.txt", "dst/holiday photos/a b.txt");
    same_file(f, "src/holiday photos/été 2026/日本 ファイル.bin",
              "dst/holiday photos/été 2026/日本 ファイル.bin");
    assert_int_equal(btshim_torrent_status(f->b, made.hash, &st, sizeof st, &err), BTSHIM_OK);
    assert_true(st.done == 400001);
    assert_true(st.downloaded >= 400001);

    btshim_event_clear(&made);
    free(src);
    free(dst);
}

/* A download added by hash alone: the metadata comes from the seed
 * (ut_metadata), the peer list names it, pause and resume hold, the data
 * arrives whole and removing it with its data deletes the file. */
static void btshim__by_hash__metadata_peers_pause_and_delete(void **state)
{
    fixture_t *f = *state;
    btshim_event_t made, ev;
    btshim_error_t err;
    btshim_torrent_status_t st;
    btshim_peer_t peers[4];
    char hash[BTSHIM_HASH_HEX], name[64], *src, *dst, *gone;
    uint16_t ports[4];
    size_t np = 0, n = 0;
    int v2 = 0, i;
    long long end;
    struct stat sb;

    make_dir(f, "src");
    make_dir(f, "dst");
    write_file(f, "src/film.mkv", 3 << 20, 7);
    made = make_torrent(f, "src/film.mkv");
    src = path_of(f, "src");
    dst = path_of(f, "dst");
    assert_int_equal(btshim_torrent_add(f->a, made.data, made.data_len, src, NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_OK);
    wait_seeding(f->a, made.hash, &st);

    /* slow, so that the transfer is seen under way */
    assert_int_equal(btshim_session_set_rates(f->b, 256 * 1024, 0, &err), BTSHIM_OK);
    assert_int_equal(btshim_torrent_add_hash(f->b, made.hash, "a name", dst, NULL, 0, 0, &err),
                     BTSHIM_OK);
    assert_int_equal(btshim_torrent_add_hash(f->b, made.hash, NULL, dst, NULL, 0, 0, &err),
                     BTSHIM_EEXIST);
    assert_int_equal(btshim_torrent_status(f->b, made.hash, &st, sizeof st, &err), BTSHIM_OK);
    assert_false(st.has_metadata);
    assert_int_equal(st.peers, 0);
    assert_int_equal(btshim_session_listen_ports(f->a, ports, 4, &np, &err), BTSHIM_OK);
    assert_int_equal(btshim_torrent_add_peer(f->b, made.hash, "127.0.0.1", ports[0], &err),
                     BTSHIM_OK);
    ev = wait_event_pumping(f->b, f->a, BTSHIM_EV_METADATA, made.hash, 30000);
    btshim_event_clear(&ev);
    end = now_ms() + 30000;
    do {
        assert_true(now_ms() < end);
        usleep(50000);
        assert_int_equal(btshim_torrent_peers(f->b, made.hash, peers, sizeof peers[0], 4, &n, &err),
                         BTSHIM_OK);
    } while (n == 0);
    assert_int_equal(n, 1);
    assert_string_equal(peers[0].address, "127.0.0.1");
    assert_int_equal(peers[0].port, ports[0]);
    assert_int_equal(peers[0].incoming, 0);
    assert_true(peers[0].seed);
    assert_int_equal(btshim_torrent_status(f->b, made.hash, &st, sizeof st, &err), BTSHIM_OK);
    assert_true(st.has_metadata);
    assert_string_equal(st.name, "film.mkv");
    assert_true(st.size == 3 << 20);

    assert_int_equal(btshim_torrent_pause(f->b, made.hash, &err), BTSHIM_OK);
    end = now_ms() + 10000;
    do {
        assert_true(now_ms() < end);
        usleep(20000);
        assert_int_equal(btshim_torrent_status(f->b, made.hash, &st, sizeof st, &err), BTSHIM_OK);
    } while (!st.paused);
    assert_int_equal(btshim_torrent_resume(f->b, made.hash, &err), BTSHIM_OK);
    assert_int_equal(btshim_session_set_rates(f->b, 0, 0, &err), BTSHIM_OK);
    assert_int_equal(btshim_torrent_add_peer(f->b, made.hash, "127.0.0.1", ports[0], &err),
                     BTSHIM_OK);
    ev = wait_event_pumping(f->b, f->a, BTSHIM_EV_FINISHED, made.hash, 60000);
    btshim_event_clear(&ev);
    same_file(f, "src/film.mkv", "dst/film.mkv");

    assert_int_equal(btshim_torrent_remove_data(f->b, made.hash, &err), BTSHIM_OK);
    ev = wait_event(f->b, BTSHIM_EV_DELETED, made.hash, 0, 30000);
    btshim_event_clear(&ev);
    gone = path_of(f, "dst/film.mkv");
    assert_int_not_equal(stat(gone, &sb), 0);
    assert_int_equal(btshim_torrent_status(f->b, made.hash, &st, sizeof st, &err),
                     BTSHIM_ENOTFOUND);

    /* magnet URIs and bare hashes */
    assert_int_equal(btshim_parse_magnet(made.hash, hash, name, sizeof name, &v2, &err), BTSHIM_OK);
    assert_string_equal(hash, made.hash);
    {
        char upper[41], uri[256];
        for (i = 0; i < 40; i++)
            upper[i] = (char)toupper((unsigned char)made.hash[i]);
        upper[40] = '\0';
        snprintf(uri, sizeof uri, "magnet:?xt=urn:btih:%s&dn=my%%20film", upper);
        assert_int_equal(btshim_parse_magnet(uri, hash, name, sizeof name, &v2, &err), BTSHIM_OK);
        assert_string_equal(hash, made.hash);
        assert_string_equal(name, "my film");
    }
    /* the same hash in base32 */
    assert_int_equal(
        btshim_parse_magnet("AERUKZ4JVPG66AJDIVTYTK6N54ASGRLH", hash, name, sizeof name, &v2, &err),
        BTSHIM_OK);
    assert_string_equal(hash, "0123456789abcdef0123456789abcdef01234567");
    assert_int_equal(btshim_parse_magnet("ab", hash, name, sizeof name, &v2, &err), BTSHIM_EINVAL);
    assert_int_equal(v2, 0);
    assert_int_equal(
        btshim_parse_magnet("magnet:?xt=urn:btmh:1220"
                            "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
                            hash, name, sizeof name, &v2, &err),
        BTSHIM_EINVAL);
    assert_int_equal(v2, 1);

    btshim_event_clear(&made);
    free(gone);
    free(src);
    free(dst);
}

static void btshim__single_file__resume_recheck_and_remove(void **state)
{
    fixture_t *f = *state;
    btshim_event_t made, ev;
    btshim_error_t err;
    btshim_torrent_status_t st;
    char hash[BTSHIM_HASH_HEX], py[41], *dir, *file;
    void *resume;
    size_t resume_len;

    write_file(f, "single.bin", 1 << 20, 7);
    made = make_torrent(f, "single.bin");
    python_infohash(f, made.data, made.data_len, py);
    assert_string_equal(made.hash, py);
    dir = strdup(f->dir);
    assert_int_equal(btshim_torrent_add(f->a, made.data, made.data_len, dir, NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_OK);

    assert_int_equal(btshim_torrent_save_resume(f->a, hash, &err), BTSHIM_OK);
    ev = wait_event(f->a, BTSHIM_EV_RESUME_DATA, hash, 0, 30000);
    assert_non_null(ev.data);
    resume = ev.data;
    resume_len = ev.data_len;
    ev.data = NULL;

    /* removed: the file stays */
    assert_int_equal(btshim_torrent_remove(f->a, hash, &err), BTSHIM_OK);
    file = path_of(f, "single.bin");
    assert_int_equal(access(file, R_OK), 0);
    assert_int_equal(btshim_torrent_status(f->a, hash, &st, sizeof st, &err), BTSHIM_ENOTFOUND);

    /* back from its resume data: seeding */
    assert_int_equal(
        btshim_torrent_add(f->a, made.data, made.data_len, dir, resume, resume_len, 0, hash, &err),
        BTSHIM_OK);
    wait_seeding(f->a, hash, &st);

    /* the file changes, same size: the recheck finds pieces wrong */
    {
        int fd = open(file, O_WRONLY);
        assert_true(fd >= 0);
        assert_int_equal(pwrite(fd, "XXXXXXXX", 8, 1000), 8);
        close(fd);
    }
    assert_int_equal(btshim_torrent_recheck(f->a, hash, &err), BTSHIM_OK);
    ev = wait_event(f->a, BTSHIM_EV_CHECKED, hash, 0, 30000);
    assert_int_equal(ev.error, 1);
    btshim_event_clear(&ev);

    free(resume);
    free(file);
    free(dir);
    btshim_event_clear(&made);
}

static void btshim__bad_input__errors_not_crashes(void **state)
{
    fixture_t *f = *state;
    btshim_error_t err;
    btshim_torrent_status_t st;
    btshim_event_t ev;
    char hash[BTSHIM_HASH_HEX], *missing;
    uint64_t job = 0;
    static const char junk[] = "d4:infod6:lengthi-5eee";

    assert_int_equal(btshim_create_start(f->a, "relative/path", 0, &job, &err), BTSHIM_EINVAL);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(
        btshim_torrent_add(f->a, junk, sizeof junk - 1, "/tmp", NULL, 0, 0, hash, &err),
        BTSHIM_EINVAL);
    assert_int_equal(btshim_torrent_add(f->a, "x", 1, "/tmp", NULL, 0, 0, hash, &err),
                     BTSHIM_EINVAL);
    assert_int_equal(btshim_torrent_status(f->a, "0123456789abcdef0123456789abcdef01234567", &st,
                                           sizeof st, &err),
                     BTSHIM_ENOTFOUND);
    assert_int_equal(btshim_torrent_status(f->a, "not a hash", &st, sizeof st, &err),
                     BTSHIM_ENOTFOUND);
    assert_int_equal(btshim_torrent_remove(f->a, NULL, &err), BTSHIM_ENOTFOUND);
    assert_int_equal(btshim_session_set_rates(f->a, -1, 0, &err), BTSHIM_EINVAL);
    assert_int_equal(btshim_session_set_rates(f->a, 1 << 20, 1 << 19, &err), BTSHIM_OK);

    /* a path that does not exist: the job fails with a message */
    missing = path_of(f, "does-not-exist");
    assert_int_equal(btshim_create_start(f->a, missing, 0, &job, &err), BTSHIM_OK);
    ev = wait_event(f->a, BTSHIM_EV_CREATE_FAILED, NULL, job, 30000);
    assert_true(strlen(ev.message) > 0);
    btshim_event_clear(&ev);
    free(missing);

    /* a bad peer address */
    write_file(f, "p.bin", 5000, 9);
    ev = make_torrent(f, "p.bin");
    assert_int_equal(btshim_torrent_add(f->a, ev.data, ev.data_len, f->dir, NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_OK);
    assert_int_equal(btshim_torrent_add_peer(f->a, hash, "not an address", 80, &err),
                     BTSHIM_EINVAL);
    assert_int_equal(btshim_torrent_add_peer(f->a, hash, "127.0.0.1", 0, &err), BTSHIM_EINVAL);
    btshim_event_clear(&ev);

    /* a status struct of an older, smaller size: only that much written */
    {
        unsigned char small[offsetof(btshim_torrent_status_t, state) + 8];
        memset(small, 0xAB, sizeof small);
        assert_int_equal(btshim_torrent_status(f->a, hash, (btshim_torrent_status_t *)small,
                                               offsetof(btshim_torrent_status_t, state), &err),
                         BTSHIM_OK);
        assert_memory_equal(small, hash, 41);
        assert_int_equal(small[offsetof(btshim_torrent_status_t, state)], 0xAB);
    }
}

static void btshim__jobs__bounded_and_cancelled(void **state)
{
    fixture_t *f = *state;
    btshim_error_t err;
    btshim_event_t ev;
    uint64_t j1 = 0, j2 = 0, j3 = 0;
    char *big = path_of(f, "big.bin");
    int fd = open(big, O_CREAT | O_WRONLY, 0644);

    /* a sparse 1 GiB file: hashing it takes a while */
    assert_true(fd >= 0);
    assert_int_equal(ftruncate(fd, 1LL << 30), 0);
    close(fd);
    assert_int_equal(btshim_create_start(f->a, big, 0, &j1, &err), BTSHIM_OK);
    assert_int_equal(btshim_create_start(f->a, big, 0, &j2, &err), BTSHIM_OK);
    /* max_jobs is 2 in this fixture */
    assert_int_equal(btshim_create_start(f->a, big, 0, &j3, &err), BTSHIM_ELIMIT);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(btshim_create_cancel(f->a, j1, &err), BTSHIM_OK);
    ev = wait_event(f->a, BTSHIM_EV_CREATE_FAILED, NULL, j1, 10000);
    assert_string_equal(ev.message, "cancelled");
    btshim_event_clear(&ev);
    assert_int_equal(btshim_create_cancel(f->a, j1, &err), BTSHIM_ENOTFOUND);
    ev = wait_event(f->a, BTSHIM_EV_CREATED, NULL, j2, 120000);
    btshim_event_clear(&ev);
    free(big);
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(btshim__folder__hashed_seeded_and_downloaded, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(btshim__single_file__resume_recheck_and_remove, setup,
                                        teardown),
        cmocka_unit_test_setup_teardown(btshim__bad_input__errors_not_crashes, setup, teardown),
        cmocka_unit_test_setup_teardown(btshim__jobs__bounded_and_cancelled, setup, teardown),
        cmocka_unit_test_setup_teardown(btshim__by_hash__metadata_peers_pause_and_delete, setup,
                                        teardown),
    };
    if (argc < 2) {
        fprintf(stderr, "usage: %s PATH/TO/infohash.py\n", argv[0]);
        return 2;
    }
    infohash_py = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
