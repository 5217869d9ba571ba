/* SPDX-License-Identifier: MIT */
/*
 * The in-memory backend of btshim.h (agent/btshim_fake.c) keeps the
 * contract the agent relies on: jobs end only when told, events come out
 * in order through btshim_poll() and the wake-up descriptor is readable
 * exactly while some are waiting, sizes passed in are honoured, and bad
 * arguments get errors.
 */
#include <poll.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>

#include "btshim_fake.h"

static int readable(btshim_session_t *ses)
{
    struct pollfd p = {btshim_session_wake_fd(ses), POLLIN, 0};
    return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static void btshim_fake__job__ends_when_told(void **state)
{
    btshim_error_t err;
    btshim_session_t *ses = btshim_session_new(NULL, &err);
    btshim_event_t ev[4];
    uint64_t job = 0, done = 0, total = 0;
    size_t n = 9;
    char hash[BTSHIM_HASH_HEX];
    (void)state;

    assert_non_null(ses);
    assert_string_equal(btshim_backend(), "fake");
    assert_int_equal(btshim_create_start(ses, "/data/movie.mkv", 0, &job, &err), BTSHIM_OK);
    assert_int_equal(btshim_fake_jobs_pending(ses), 1);
    assert_int_equal(btshim_create_progress(ses, job, &done, &total, &err), BTSHIM_OK);
    assert_true(done < total);
    assert_false(readable(ses));
    assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 4, &n, &err), BTSHIM_OK);
    assert_int_equal(n, 0);

    assert_int_equal(btshim_fake_job_finish(ses, job, NULL), BTSHIM_OK);
    assert_true(readable(ses));
    assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 4, &n, &err), BTSHIM_OK);
    assert_int_equal(n, 1);
    assert_false(readable(ses));
    assert_int_equal(ev[0].type, BTSHIM_EV_CREATED);
    assert_int_equal(ev[0].job, job);
    assert_int_equal(strlen(ev[0].hash), 40);
    assert_int_equal(btshim_torrent_add(ses, ev[0].data, ev[0].data_len, "/data", NULL, 0,
                                        BTSHIM_ADD_SEED_MODE, hash, &err),
                     BTSHIM_OK);
    assert_string_equal(hash, ev[0].hash);
    assert_int_equal(
        btshim_torrent_add(ses, ev[0].data, ev[0].data_len, "/data", NULL, 0, 0, hash, &err),
        BTSHIM_EEXIST);
    assert_int_equal(btshim_fake_torrents(ses), 1);
    btshim_event_clear(&ev[0]);
    assert_int_equal(btshim_create_progress(ses, job, &done, &total, &err), BTSHIM_ENOTFOUND);
    btshim_session_free(ses);
}

static void btshim_fake__events__in_order_and_bounded_by_max(void **state)
{
    btshim_error_t err;
    btshim_session_t *ses = btshim_session_new(NULL, &err);
    btshim_event_t ev[2];
    uint64_t j1, j2, j3;
    size_t n;
    (void)state;

    assert_int_equal(btshim_create_start(ses, "/a", 0, &j1, &err), BTSHIM_OK);
    assert_int_equal(btshim_create_start(ses, "/b", 0, &j2, &err), BTSHIM_OK);
    assert_int_equal(btshim_create_start(ses, "/c", 0, &j3, &err), BTSHIM_OK);
    assert_int_equal(btshim_fake_job_finish(ses, j2, NULL), BTSHIM_OK);
    assert_int_equal(btshim_fake_job_finish(ses, j1, "disk on fire"), BTSHIM_OK);
    assert_int_equal(btshim_create_cancel(ses, j3, &err), BTSHIM_OK);
    assert_int_equal(btshim_create_cancel(ses, j3, &err), BTSHIM_ENOTFOUND);

    assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 2, &n, &err), BTSHIM_OK);
    assert_int_equal(n, 2);
    assert_true(readable(ses)); /* one left */
    assert_int_equal(ev[0].type, BTSHIM_EV_CREATED);
    assert_int_equal(ev[0].job, j2);
    assert_int_equal(ev[1].type, BTSHIM_EV_CREATE_FAILED);
    assert_string_equal(ev[1].message, "disk on fire");
    btshim_event_clear(&ev[0]);
    btshim_event_clear(&ev[1]);
    assert_int_equal(btshim_poll(ses, ev, sizeof ev[0], 2, &n, &err), BTSHIM_OK);
    assert_int_equal(n, 1);
    assert_string_equal(ev[0].message, "cancelled");
    assert_false(readable(ses));
    btshim_session_free(ses);
}

static void btshim_fake__bad_arguments__errors(void **state)
{
    btshim_error_t err;
    btshim_settings_t s;
    btshim_session_t *ses;
    btshim_event_t ev;
    btshim_torrent_status_t st;
    char hash[BTSHIM_HASH_HEX];
    uint64_t job;
    size_t n;
    (void)state;

    memset(&s, 0, sizeof s);
    s.max_jobs = 1;
    ses = btshim_session_new(&s, &err);
    assert_non_null(ses);
    assert_int_equal(btshim_create_start(ses, "", 0, &job, &err), BTSHIM_EINVAL);
    assert_int_equal(btshim_create_start(ses, "/x", -1, &job, &err), BTSHIM_EINVAL);
    assert_int_equal(btshim_create_start(ses, "/x", 0, &job, &err), BTSHIM_OK);
    assert_int_equal(btshim_create_start(ses, "/y", 0, &job, &err), BTSHIM_ELIMIT);
    assert_true(strlen(err.message) > 0);
    assert_int_equal(btshim_torrent_add(ses, "garbage", 7, "/", NULL, 0, 0, hash, &err),
                     BTSHIM_EINVAL);
    assert_int_equal(btshim_torrent_status(ses, "nope", &st, sizeof st, &err), BTSHIM_ENOTFOUND);
    assert_int_equal(btshim_torrent_remove(ses, NULL, &err), BTSHIM_ENOTFOUND);
    assert_int_equal(btshim_session_set_rates(ses, 0, -5, &err), BTSHIM_EINVAL);
    /* an event struct smaller than this version's is refused */
    assert_int_equal(btshim_poll(ses, &ev, sizeof ev - 1, 1, &n, &err), BTSHIM_EINVAL);
    btshim_event_clear(NULL);
    btshim_session_free(NULL);
    btshim_session_free(ses);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(btshim_fake__job__ends_when_told),
        cmocka_unit_test(btshim_fake__events__in_order_and_bounded_by_max),
        cmocka_unit_test(btshim_fake__bad_arguments__errors),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
