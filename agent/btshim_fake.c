/* SPDX-License-Identifier: MIT */
/*
 * In-memory backend of btshim.h for the agent's unit tests: no network, no
 * files, no threads. Hashing jobs wait until btshim_fake_job_finish();
 * events queue in order and make the wake-up descriptor (an eventfd)
 * readable until btshim_poll() has taken them all.
 */
#include "btshim_fake.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <openssl/evp.h>

#define FAKE_MAX_EVENTS 4096

typedef struct fake_job {
    uint64_t id;
    char *path;
    uint64_t total;
    struct fake_job *next;
} fake_job_t;

typedef struct fake_torrent {
    char hash[BTSHIM_HASH_HEX];
    char *name;
    btshim_state_t state;
    char error[256];
    int peers;
    int resumed;
    int flags;
    int paused;
    int by_hash; /* added by hash: no metadata until btshim_fake_torrent_set_state() */
    struct fake_torrent *next;
} fake_torrent_t;

struct btshim_session {
    int efd;
    int download, upload;
    uint64_t next_job;
    unsigned max_jobs;
    fake_job_t *jobs;
    fake_torrent_t *torrents;
    btshim_event_t *events; /* ring */
    size_t head, count;
};

/* `what` followed by `arg` (may be NULL) as the error's message. */
static int fail(btshim_error_t *err, int code, const char *what, const char *arg)
{
    if (err) {
        err->code = code;
        snprintf(err->message, sizeof err->message, "%s%s", what, arg ? arg : "");
    }
    return code;
}

static void wake(btshim_session_t *ses)
{
    uint64_t one = 1;
    if (write(ses->efd, &one, sizeof one) < 0 && errno != EAGAIN)
        perror("btshim_fake: eventfd");
}

static void unwake(btshim_session_t *ses)
{
    uint64_t v;
    while (read(ses->efd, &v, sizeof v) > 0)
        ;
}

const char *btshim_backend(void)
{
    return "fake";
}

btshim_session_t *btshim_session_new(const btshim_settings_t *s, btshim_error_t *err)
{
    btshim_session_t *ses = calloc(1, sizeof *ses);
    if (!ses || !(ses->events = calloc(FAKE_MAX_EVENTS, sizeof *ses->events))) {
        free(ses);
        fail(err, BTSHIM_ENOMEM, "out of memory", NULL);
        return NULL;
    }
    ses->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (ses->efd < 0) {
        fail(err, BTSHIM_EINTERNAL, "eventfd: ", strerror(errno));
        free(ses->events);
        free(ses);
        return NULL;
    }
    ses->next_job = 1;
    ses->max_jobs = s && s->max_jobs ? s->max_jobs : 4;
    if (s) {
        ses->download = s->download_rate_limit;
        ses->upload = s->upload_rate_limit;
    }
    return ses;
}

void btshim_session_free(btshim_session_t *ses)
{
    if (!ses)
        return;
    while (ses->jobs) {
        fake_job_t *j = ses->jobs;
        ses->jobs = j->next;
        free(j->path);
        free(j);
    }
    while (ses->torrents) {
        fake_torrent_t *t = ses->torrents;
        ses->torrents = t->next;
        free(t->name);
        free(t);
    }
    while (ses->count) {
        btshim_event_clear(&ses->events[ses->head]);
        ses->head = (ses->head + 1) % FAKE_MAX_EVENTS;
        ses->count--;
    }
    free(ses->events);
    close(ses->efd);
    free(ses);
}

int btshim_session_wake_fd(const btshim_session_t *ses)
{
    return ses ? ses->efd : -1;
}

int btshim_session_set_rates(btshim_session_t *ses, int download, int upload, btshim_error_t *err)
{
    if (!ses || download < 0 || upload < 0)
        return fail(err, BTSHIM_EINVAL, "rates must not be negative", NULL);
    ses->download = download;
    ses->upload = upload;
    return BTSHIM_OK;
}

int btshim_session_listen_ports(btshim_session_t *ses, uint16_t *ports, size_t max, size_t *n,
                                btshim_error_t *err)
{
    if (!ses || !n || (max && !ports))
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    *n = 0;
    if (max)
        ports[(*n)++] = 6881;
    return BTSHIM_OK;
}

/* ---- events ---------------------------------------------------------------- */

int btshim_fake_push(btshim_session_t *ses, const btshim_event_t *ev)
{
    btshim_event_t *slot;
    if (!ses || !ev || ses->count == FAKE_MAX_EVENTS)
        return BTSHIM_ELIMIT;
    slot = &ses->events[(ses->head + ses->count) % FAKE_MAX_EVENTS];
    *slot = *ev;
    slot->data = NULL;
    if (ev->data_len) {
        if (!(slot->data = malloc(ev->data_len)))
            return BTSHIM_ENOMEM;
        memcpy(slot->data, ev->data, ev->data_len);
    }
    ses->count++;
    wake(ses);
    return BTSHIM_OK;
}

int btshim_poll(btshim_session_t *ses, btshim_event_t *ev, size_t ev_size, size_t max, size_t *n,
                btshim_error_t *err)
{
    size_t k = 0;
    if (!ses || !n || (max && !ev) || (max && ev_size < sizeof(btshim_event_t)))
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    while (k < max && ses->count) {
        btshim_event_t *out = (btshim_event_t *)((char *)ev + k * ev_size);
        *out = ses->events[ses->head];
        ses->head = (ses->head + 1) % FAKE_MAX_EVENTS;
        ses->count--;
        k++;
    }
    *n = k;
    if (!ses->count)
        unwake(ses);
    return BTSHIM_OK;
}

void btshim_event_clear(btshim_event_t *ev)
{
    if (!ev)
        return;
    free(ev->data);
    ev->data = NULL;
    ev->data_len = 0;
}

/* ---- jobs -------------------------------------------------------------------- */

static size_t count_jobs(const btshim_session_t *ses)
{
    size_t n = 0;
    const fake_job_t *j;
    for (j = ses->jobs; j; j = j->next)
        n++;
    return n;
}

size_t btshim_fake_jobs_pending(const btshim_session_t *ses)
{
    return ses ? count_jobs(ses) : 0;
}

int btshim_create_start(btshim_session_t *ses, const char *path, int piece_size, uint64_t *job,
                        btshim_error_t *err)
{
    fake_job_t *j;
    if (!ses || !path || !*path || !job || piece_size < 0)
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    if (count_jobs(ses) >= ses->max_jobs)
        return fail(err, BTSHIM_ELIMIT, "too many hashing jobs at once", NULL);
    if (!(j = calloc(1, sizeof *j)) || !(j->path = strdup(path))) {
        free(j);
        return fail(err, BTSHIM_ENOMEM, "out of memory", NULL);
    }
    j->id = ses->next_job++;
    j->total = 1000;
    j->next = ses->jobs;
    ses->jobs = j;
    *job = j->id;
    return BTSHIM_OK;
}

static fake_job_t **find_job(btshim_session_t *ses, uint64_t job)
{
    fake_job_t **p;
    for (p = &ses->jobs; *p; p = &(*p)->next)
        if ((*p)->id == job)
            return p;
    return NULL;
}

int btshim_create_progress(btshim_session_t *ses, uint64_t job, uint64_t *done, uint64_t *total,
                           btshim_error_t *err)
{
    fake_job_t **p = ses ? find_job(ses, job) : NULL;
    if (!p)
        return fail(err, BTSHIM_ENOTFOUND, "no such hashing job", NULL);
    if (done)
        *done = (*p)->total / 2;
    if (total)
        *total = (*p)->total;
    return BTSHIM_OK;
}

static void hex_sha1(const char *text, char hash[BTSHIM_HASH_HEX])
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int len = 0, i;
    EVP_Digest(text, strlen(text), d, &len, EVP_sha1(), NULL);
    for (i = 0; i < 20; i++) {
        hash[2 * i] = "0123456789abcdef"[d[i] >> 4];
        hash[2 * i + 1] = "0123456789abcdef"[d[i] & 15];
    }
    hash[40] = '\0';
}

static int end_job(btshim_session_t *ses, uint64_t job, const char *error)
{
    fake_job_t **p = find_job(ses, job), *j;
    btshim_event_t ev;
    char *file = NULL;
    int rc;
    if (!p)
        return BTSHIM_ENOTFOUND;
    j = *p;
    *p = j->next;
    memset(&ev, 0, sizeof ev);
    ev.job = j->id;
    if (error) {
        ev.type = BTSHIM_EV_CREATE_FAILED;
        snprintf(ev.message, sizeof ev.message, "%s", error);
    } else {
        size_t n = strlen(j->path);
        ev.type = BTSHIM_EV_CREATED;
        hex_sha1(j->path, ev.hash);
        /* d4:path<len>:<path>e: enough for the agent to store and give back */
        if (!(file = malloc(n + 32))) {
            rc = BTSHIM_ENOMEM;
            goto out;
        }
        ev.data_len = (size_t)snprintf(file, n + 32, "d4:path%zu:%se", n, j->path);
        ev.data = file;
    }
    rc = btshim_fake_push(ses, &ev);
out:
    free(file);
    free(j->path);
    free(j);
    return rc;
}

int btshim_fake_job_finish(btshim_session_t *ses, uint64_t job, const char *error)
{
    return ses ? end_job(ses, job, error) : BTSHIM_EINVAL;
}

int btshim_create_cancel(btshim_session_t *ses, uint64_t job, btshim_error_t *err)
{
    int rc = ses ? end_job(ses, job, "cancelled") : BTSHIM_EINVAL;
    return rc ? fail(err, rc, "no such hashing job", NULL) : BTSHIM_OK;
}

/* ---- torrents ------------------------------------------------------------------ */

static fake_torrent_t *find_torrent(const btshim_session_t *ses, const char *hash)
{
    fake_torrent_t *t;
    if (!ses || !hash)
        return NULL;
    for (t = ses->torrents; t; t = t->next)
        if (strcmp(t->hash, hash) == 0)
            return t;
    return NULL;
}

int btshim_torrent_add(btshim_session_t *ses, const void *torrent, size_t len,
                       const char *save_path, const void *resume, size_t resume_len, int flags,
                       char hash[BTSHIM_HASH_HEX], btshim_error_t *err)
{
    fake_torrent_t *t;
    char *text;
    const char *path;
    if (!ses || !torrent || !len || !save_path || !hash)
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    if (!(text = malloc(len + 1)))
        return fail(err, BTSHIM_ENOMEM, "out of memory", NULL);
    memcpy(text, torrent, len);
    text[len] = '\0';
    path = strncmp(text, "d4:path", 7) == 0 ? strchr(text, ':') : NULL;
    if (path)
        path = strchr(path + 1, ':');
    if (!path || text[len - 1] != 'e') {
        free(text);
        return fail(err, BTSHIM_EINVAL, "not a torrent file", NULL);
    }
    text[len - 1] = '\0';
    hex_sha1(path + 1, hash);
    if (find_torrent(ses, hash)) {
        free(text);
        return fail(err, BTSHIM_EEXIST, "torrent already in the session: ", hash);
    }
    if (!(t = calloc(1, sizeof *t)) || !(t->name = strdup(path + 1))) {
        free(t);
        free(text);
        return fail(err, BTSHIM_ENOMEM, "out of memory", NULL);
    }
    free(text);
    memcpy(t->hash, hash, BTSHIM_HASH_HEX);
    t->state = (resume && resume_len) || (flags & BTSHIM_ADD_SEED_MODE) ? BTSHIM_STATE_SEEDING
                                                                        : BTSHIM_STATE_CHECKING;
    t->resumed = resume && resume_len;
    t->flags = flags;
    t->next = ses->torrents;
    ses->torrents = t;
    return BTSHIM_OK;
}

int btshim_torrent_add_hash(btshim_session_t *ses, const char *hash, const char *name,
                            const char *save_path, const void *resume, size_t resume_len, int flags,
                            btshim_error_t *err)
{
    fake_torrent_t *t;
    size_t i;
    if (!ses || !hash || strlen(hash) != 40 || !save_path || !*save_path)
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    for (i = 0; i < 40; i++)
        if (!strchr("0123456789abcdef", hash[i]))
            return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    if (find_torrent(ses, hash))
        return fail(err, BTSHIM_EEXIST, "torrent already in the session: ", hash);
    if (!(t = calloc(1, sizeof *t)) || !(t->name = strdup(name ? name : ""))) {
        free(t);
        return fail(err, BTSHIM_ENOMEM, "out of memory", NULL);
    }
    memcpy(t->hash, hash, BTSHIM_HASH_HEX);
    t->state = BTSHIM_STATE_METADATA;
    t->resumed = resume && resume_len;
    t->flags = flags;
    t->paused = (flags & BTSHIM_ADD_PAUSED) != 0;
    t->by_hash = 1;
    t->next = ses->torrents;
    ses->torrents = t;
    return BTSHIM_OK;
}

int btshim_parse_magnet(const char *uri, char hash[BTSHIM_HASH_HEX], char *name, size_t name_cap,
                        int *v2_only, btshim_error_t *err)
{
    /* the fake reads hex only: base32 and names are libtorrent's */
    const char *h = uri && strncmp(uri, "magnet:?xt=urn:btih:", 20) == 0 ? uri + 20 : uri;
    size_t i;
    if (v2_only)
        *v2_only = h && strlen(h) == 64;
    if (!h || strlen(h) < 40 || (h[40] && h[40] != '&'))
        return fail(err, BTSHIM_EINVAL, "not an info-hash", NULL);
    for (i = 0; i < 40; i++) {
        char c = h[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!strchr("0123456789abcdef", c) || !c)
            return fail(err, BTSHIM_EINVAL, "not an info-hash", NULL);
        hash[i] = c;
    }
    hash[40] = '\0';
    if (name_cap)
        name[0] = '\0';
    return BTSHIM_OK;
}

int btshim_torrent_remove_data(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    btshim_event_t ev;
    if (btshim_torrent_remove(ses, hash, err) != BTSHIM_OK)
        return err ? err->code : BTSHIM_ENOTFOUND;
    memset(&ev, 0, sizeof ev);
    ev.type = BTSHIM_EV_DELETED;
    snprintf(ev.hash, sizeof ev.hash, "%s", hash);
    return btshim_fake_push(ses, &ev);
}

static int set_paused(btshim_session_t *ses, const char *hash, int paused, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    t->paused = paused;
    return BTSHIM_OK;
}

int btshim_torrent_pause(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return set_paused(ses, hash, 1, err);
}

int btshim_torrent_resume(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    return set_paused(ses, hash, 0, err);
}

int btshim_torrent_peers(btshim_session_t *ses, const char *hash, btshim_peer_t *out,
                         size_t peer_size, size_t max, size_t *n, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    (void)out;
    (void)peer_size;
    (void)max;
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    if (!n)
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    *n = 0; /* the fake connects to nobody */
    return BTSHIM_OK;
}

int btshim_torrent_remove(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    fake_torrent_t **p;
    for (p = ses ? &ses->torrents : NULL; p && *p; p = &(*p)->next) {
        if (strcmp((*p)->hash, hash ? hash : "") == 0) {
            fake_torrent_t *t = *p;
            *p = t->next;
            free(t->name);
            free(t);
            return BTSHIM_OK;
        }
    }
    return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
}

int btshim_torrent_recheck(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    btshim_event_t ev;
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    memset(&ev, 0, sizeof ev);
    ev.type = BTSHIM_EV_CHECKED;
    memcpy(ev.hash, t->hash, sizeof ev.hash);
    ev.error = t->state == BTSHIM_STATE_ERROR;
    return btshim_fake_push(ses, &ev);
}

int btshim_torrent_save_resume(btshim_session_t *ses, const char *hash, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    btshim_event_t ev;
    static const char data[] = "d6:resumei1ee";
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    memset(&ev, 0, sizeof ev);
    ev.type = BTSHIM_EV_RESUME_DATA;
    memcpy(ev.hash, t->hash, sizeof ev.hash);
    ev.data = (void *)(uintptr_t)data;
    ev.data_len = sizeof data - 1;
    return btshim_fake_push(ses, &ev);
}

int btshim_torrent_add_peer(btshim_session_t *ses, const char *hash, const char *address,
                            uint16_t port, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    if (!address || !*address || !port)
        return fail(err, BTSHIM_EINVAL, "bad peer address", NULL);
    t->peers++;
    return BTSHIM_OK;
}

int btshim_torrent_status(btshim_session_t *ses, const char *hash, btshim_torrent_status_t *st,
                          size_t st_size, btshim_error_t *err)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    btshim_torrent_status_t s;
    if (!t)
        return fail(err, BTSHIM_ENOTFOUND, "no torrent ", hash);
    if (!st || !st_size)
        return fail(err, BTSHIM_EINVAL, "bad arguments", NULL);
    memset(&s, 0, sizeof s);
    memcpy(s.hash, t->hash, sizeof s.hash);
    snprintf(s.name, sizeof s.name, "%s", t->name);
    s.state = t->state;
    s.has_metadata = t->state != BTSHIM_STATE_METADATA;
    s.size = s.has_metadata ? 1000 : 0;
    s.done = s.has_metadata && t->state != BTSHIM_STATE_DOWNLOADING ? s.size : 0;
    s.progress = s.size ? (double)s.done / (double)s.size : 0;
    s.peers = t->peers;
    s.paused = t->paused;
    snprintf(s.error, sizeof s.error, "%s", t->error);
    memcpy(st, &s, st_size < sizeof s ? st_size : sizeof s);
    return BTSHIM_OK;
}

int btshim_fake_torrent_set_state(btshim_session_t *ses, const char *hash, btshim_state_t state,
                                  const char *error)
{
    fake_torrent_t *t = find_torrent(ses, hash);
    if (!t)
        return BTSHIM_ENOTFOUND;
    t->state = state;
    snprintf(t->error, sizeof t->error, "%s", error ? error : "");
    return BTSHIM_OK;
}

size_t btshim_fake_torrents(const btshim_session_t *ses)
{
    size_t n = 0;
    const fake_torrent_t *t;
    for (t = ses ? ses->torrents : NULL; t; t = t->next)
        n++;
    return n;
}

int btshim_fake_torrent_peers(const btshim_session_t *ses, const char *hash)
{
    const fake_torrent_t *t = find_torrent(ses, hash);
    return t ? t->peers : -1;
}

int btshim_fake_torrent_resumed(const btshim_session_t *ses, const char *hash)
{
    const fake_torrent_t *t = find_torrent(ses, hash);
    return t ? t->resumed : -1;
}

int btshim_fake_torrent_flags(const btshim_session_t *ses, const char *hash)
{
    const fake_torrent_t *t = find_torrent(ses, hash);
    return t ? t->flags : -1;
}
