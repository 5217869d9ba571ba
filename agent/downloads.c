/* SPDX-License-Identifier: MIT */
/* Downloads from contacts: folders, sources, resume data, state files. */
#include "downloads.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <jansson.h>

#include "announce.h"
#include "config.h"
#include "library.h"
#include "loop.h"
#include "utf8.h"

#define MAX_SOURCES      256 /* addresses tried per download */
#define MAX_FOLDER_NAME  200 /* bytes of a folder's name, suffix excluded */
#define MAX_FOLDER_TRIES 1000
#define MAX_ROOTS        16
#define CONNECT_BUDGET   2048 /* addresses given to the session per tick */

typedef struct dl {
    uint64_t id;
    char hash[BTSHIM_HASH_HEX];
    char *name;   /* as asked for, then the torrent's */
    char *folder; /* absolute */
    int64_t added_ms, completed_ms;
    int paused;              /* by the user */
    int complete;            /* all its data verified, now or before */
    int in_session;          /* the torrent is in the session */
    int save_pending;        /* resume data asked for */
    int deleting;            /* removed with its data: waiting for the deletion */
    char error[512];         /* stopped by this; "" when none */
    int64_t waited_ms;       /* connected to a source without the metadata */
    int want_connect;        /* contacts changed: connect to its sources at the next tick */
    uint64_t sources_digest; /* of the endpoints last given to the session */
} dl_t;

struct downloads {
    btshim_session_t *ses;
    downloads_settings_t s;
    char *dir;          /* <state_dir>/downloads */
    char *download_dir; /* resolved */
    char *roots[MAX_ROOTS];
    size_t n_roots;
    log_t *log;
    dl_t **v;
    size_t n, cap;
    dl_t **gone; /* removed with their data, until the session says so */
    size_t n_gone, cap_gone;
    int64_t last_tick, last_save, last_retry;
    size_t cursor; /* where the next tick's connections start */
};

static void seterr(dl_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(dl_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

const char *downloads_state_name(dl_state_t st)
{
    switch (st) {
    case DL_WAITING:
        return "waiting for a source";
    case DL_METADATA:
        return "fetching metadata";
    case DL_DOWNLOADING:
        return "downloading";
    case DL_SEEDING:
        return "seeding";
    case DL_PAUSED:
        return "paused";
    case DL_CHECKING:
        return "checking";
    case DL_ERROR:
        return "error";
    }
    return "unknown";
}

/* ---- state files ------------------------------------------------------- */

static char *state_path(const downloads_t *dl, const char *hash, const char *ext)
{
    return library_dupf("%s/%s.%s", dl->dir, hash, ext);
}

static int write_meta(downloads_t *dl, const dl_t *d)
{
    json_t *o = json_pack("{sssssIsIsbsbss}", "name", d->name, "folder", d->folder, "added_ms",
                          (json_int_t)d->added_ms, "completed_ms", (json_int_t)d->completed_ms,
                          "paused", d->paused, "complete", d->complete, "error", d->error);
    char *text = o ? json_dumps(o, JSON_COMPACT) : NULL, *path = state_path(dl, d->hash, "json");
    int rc = -1;
    if (text && path)
        rc = library_write_file(path, text, strlen(text));
    if (rc != 0)
        LOG_WARN(dl->log, "download", "%s: could not write its state file: %s", d->hash,
                 strerror(errno));
    json_decref(o);
    free(text);
    free(path);
    return rc;
}

static void remove_state(downloads_t *dl, const char *hash)
{
    static const char *const ext[] = {"json", "resume"};
    size_t i;
    for (i = 0; i < 2; i++) {
        char *p = state_path(dl, hash, ext[i]);
        if (p && unlink(p) != 0 && errno != ENOENT)
            LOG_WARN(dl->log, "download", "could not delete %s: %s", p, strerror(errno));
        free(p);
    }
}

/* ---- the list ---------------------------------------------------------- */

static void dl_free(dl_t *d)
{
    if (!d)
        return;
    free(d->name);
    free(d->folder);
    free(d);
}

static dl_t *find(const downloads_t *dl, const char *hash, uint64_t id, size_t *at)
{
    size_t i;
    for (i = 0; i < dl->n; i++)
        if ((hash && strcmp(dl->v[i]->hash, hash) == 0) || (id && dl->v[i]->id == id)) {
            if (at)
                *at = i;
            return dl->v[i];
        }
    return NULL;
}

static int push(dl_t ***v, size_t *n, size_t *cap, dl_t *d)
{
    if (*n == *cap) {
        size_t nc = *cap ? *cap * 2 : 8;
        dl_t **nv = realloc(*v, nc * sizeof *nv);
        if (!nv)
            return -1;
        *v = nv;
        *cap = nc;
    }
    (*v)[(*n)++] = d;
    return 0;
}

static dl_state_t state_of(const dl_t *d, const btshim_torrent_status_t *st, int have)
{
    if (d->error[0])
        return DL_ERROR;
    if (!have)
        return d->complete ? DL_SEEDING : DL_WAITING;
    if (st->state == BTSHIM_STATE_ERROR)
        return DL_ERROR;
    if (d->paused || st->paused)
        return DL_PAUSED;
    if (st->state == BTSHIM_STATE_CHECKING)
        return DL_CHECKING;
    if (st->state == BTSHIM_STATE_SEEDING || (st->has_metadata && st->size && st->done == st->size))
        return DL_SEEDING;
    if (st->peers == 0)
        return DL_WAITING;
    return st->has_metadata ? DL_DOWNLOADING : DL_METADATA;
}

static void info_of(downloads_t *dl, dl_t *d, dl_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = d->id;
    memcpy(out->hash, d->hash, sizeof out->hash);
    out->folder = d->folder;
    out->complete = d->complete;
    out->added_ms = d->added_ms;
    out->completed_ms = d->completed_ms;
    out->have_status = d->in_session && btshim_torrent_status(dl->ses, d->hash, &out->st,
                                                              sizeof out->st, NULL) == BTSHIM_OK;
    out->state = state_of(d, &out->st, out->have_status);
    out->error = d->error[0] ? d->error : out->st.state == BTSHIM_STATE_ERROR ? out->st.error : "";
    out->name =
        out->have_status && out->st.has_metadata && out->st.name[0] ? out->st.name : d->name;
}

static void emit(downloads_t *dl, dl_event_t ev, dl_t *d)
{
    dl_info_t info;
    if (!dl->s.event)
        return;
    if (d)
        info_of(dl, d, &info);
    dl->s.event(dl->s.arg, ev, d ? &info : NULL);
}

/* ---- folders ----------------------------------------------------------- */

/* `name` as one folder name: no slash, no control or invisible formatting
 * character, no leading dot (hidden) or dash, at most MAX_FOLDER_NAME
 * bytes of valid UTF-8; "" when nothing is left. */
static void folder_name(const char *name, char out[MAX_FOLDER_NAME + 1])
{
    const unsigned char *p = (const unsigned char *)(name ? name : "");
    size_t n = 0;
    int sep = 0; /* something was left out here: a '_' before what follows */
    while (*p) {
        int len = utf8_seq(p, strlen((const char *)p));
        uint32_t cp = len > 1 ? utf8_code_point(p, len) : 0;
        /* controls (C0, DEL, C1), slashes, invisible formatting and the
         * replacement character: a '_' between what is kept */
        if (len <= 0 || (len == 1 && (*p < 0x20 || *p == 0x7f || *p == '/' || *p == '\\')) ||
            (len > 1 && (cp < 0xa0 || cp == 0xfffd || utf8_hidden_name(cp)))) {
            p += len > 0 ? len : 1;
            sep = n > 0;
            continue;
        }
        if (n == 0 && (*p == '.' || *p == '-' || *p == ' ')) {
            p++;
            continue;
        }
        if (n + (size_t)len + (size_t)sep > MAX_FOLDER_NAME)
            break;
        if (sep)
            out[n++] = '_';
        sep = 0;
        memcpy(out + n, p, (size_t)len);
        n += (size_t)len;
        p += len;
    }
    while (n && (out[n - 1] == ' ' || out[n - 1] == '.'))
        n--;
    out[n] = '\0';
}

/* Make a folder of its own for a download under `root`: `name`, else
 * "name (2)", ... Returns the new folder's path, or NULL with `err`. */
static char *make_folder(const char *root, const char *name, const char *hash, dl_error_t *err)
{
    char base[MAX_FOLDER_NAME + 1];
    int i;
    folder_name(name, base);
    if (!base[0])
        snprintf(base, sizeof base, "%s", hash);
    for (i = 1; i <= MAX_FOLDER_TRIES; i++) {
        char *p =
            i == 1 ? library_dupf("%s/%s", root, base) : library_dupf("%s/%s (%d)", root, base, i);
        if (!p) {
            seterr(err, DL_ENOMEM, "out of memory");
            return NULL;
        }
        if (mkdir(p, 0755) == 0)
            return p;
        free(p);
        if (errno != EEXIST) {
            seterr(err, DL_EIO, "could not make a folder in %s: %s", root, strerror(errno));
            return NULL;
        }
    }
    seterr(err, DL_EIO, "%s holds %d folders named \"%s\" already", root, MAX_FOLDER_TRIES, base);
    return NULL;
}

/* Whether the resolved `path` is `root` or inside it. */
static int inside(const char *path, const char *root)
{
    size_t n = strlen(root);
    if (strcmp(root, "/") == 0)
        return 1;
    return strncmp(path, root, n) == 0 && (path[n] == '\0' || path[n] == '/');
}

/* The folder a save path names, resolved, when it is inside the download
 * directory or an allowed root; NULL with `err` otherwise. */
static char *allowed_root(downloads_t *dl, const char *save_path, dl_error_t *err)
{
    struct stat st;
    char *real;
    size_t i;
    if (!save_path)
        return strdup(dl->download_dir);
    if (save_path[0] != '/') {
        seterr(err, DL_EINVAL, "save_path must be an absolute path");
        return NULL;
    }
    if (!(real = realpath(save_path, NULL)) || stat(real, &st) != 0 || !S_ISDIR(st.st_mode)) {
        seterr(err, DL_EINVAL, "save_path %s is not a folder%s%s", save_path, real ? "" : ": ",
               real ? "" : strerror(errno));
        free(real);
        return NULL;
    }
    if (inside(real, dl->download_dir))
        return real;
    for (i = 0; i < dl->n_roots; i++)
        if (inside(real, dl->roots[i]))
            return real;
    seterr(err, DL_EINVAL,
           "save_path %s is outside the download directory (%s) and the folders allowed by "
           "download_roots",
           save_path, dl->download_dir);
    free(real);
    return NULL;
}

/* ---- sources ----------------------------------------------------------- */

static int active(const dl_t *d)
{
    return d->in_session && !d->paused && !d->complete && !d->error[0] && !d->deleting;
}

/* Give the session `d`'s sources; unless `force`, only when they changed
 * since the last time. Returns the number of addresses given. */
static size_t connect_sources(downloads_t *dl, dl_t *d, int force)
{
    dl_endpoint_t *ep;
    size_t n, i, given = 0;
    uint64_t digest = 1469598103934665603ull; /* FNV-1a over the endpoints */

    d->want_connect = 0;
    if (!active(d) || !dl->s.sources || !(ep = calloc(MAX_SOURCES, sizeof *ep)))
        return 0;
    n = dl->s.sources(dl->s.arg, d->hash, ep, MAX_SOURCES);
    if (n > MAX_SOURCES)
        n = MAX_SOURCES;
    for (i = 0; i < n; i++) {
        const unsigned char *p = (const unsigned char *)ep[i].address;
        for (; *p; p++)
            digest = (digest ^ *p) * 1099511628211ull;
        digest = (digest ^ ep[i].port) * 1099511628211ull;
    }
    if (force || digest != d->sources_digest) {
        for (i = 0; i < n; i++) {
            btshim_error_t err;
            given++;
            if (btshim_torrent_add_peer(dl->ses, d->hash, ep[i].address, ep[i].port, &err) !=
                BTSHIM_OK)
                LOG_DEBUG(dl->log, "download", "%s: source %s port %u: %s", d->hash, ep[i].address,
                          (unsigned)ep[i].port, err.message);
        }
        d->sources_digest = digest;
    }
    free(ep);
    return given;
}

void downloads_sources_changed(downloads_t *dl)
{
    size_t i;
    /* coalesced: the next tick connects, within a budget */
    for (i = 0; i < dl->n; i++)
        dl->v[i]->want_connect = active(dl->v[i]);
}

/* Connect the downloads that want it, starting at the cursor, until
 * `budget` addresses were given to the session; the rest wait for the
 * next tick. */
static void connect_wanted(downloads_t *dl, size_t budget)
{
    size_t k, given = 0;
    for (k = 0; k < dl->n && given < budget; k++) {
        dl_t *d = dl->v[(dl->cursor + k) % dl->n];
        if (d->want_connect)
            given += connect_sources(dl, d, 0);
    }
    if (dl->n)
        dl->cursor = (dl->cursor + k) % dl->n;
}

/* ---- public ------------------------------------------------------------ */

static char *make_download_dir(const char *path, dl_error_t *err)
{
    char *real;
    if (mkdir(path, 0755) != 0 && errno != EEXIST) {
        seterr(err, DL_EIO, "download directory %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!(real = realpath(path, NULL))) {
        seterr(err, DL_EIO, "download directory %s: %s", path, strerror(errno));
        return NULL;
    }
    return real;
}

downloads_t *downloads_new(btshim_session_t *ses, const downloads_settings_t *s, log_t *log,
                           dl_error_t *err)
{
    downloads_t *dl = calloc(1, sizeof *dl);
    library_error_t lerr;
    char **roots = NULL;
    size_t i;

    if (!dl || !(dl->dir = library_dupf("%s/downloads", s->state_dir))) {
        free(dl);
        seterr(err, DL_ENOMEM, "out of memory");
        return NULL;
    }
    dl->ses = ses;
    dl->s = *s;
    dl->log = log;
    if (!dl->s.max_downloads)
        dl->s.max_downloads = 1000;
    if (!dl->s.save_interval_s)
        dl->s.save_interval_s = 10;
    if (!dl->s.retry_interval_s)
        dl->s.retry_interval_s = 30;
    if (library_private_dir(dl->dir, &lerr) != 0) {
        seterr(err, DL_EIO, "%s", lerr.message);
        goto fail;
    }
    if (!(dl->download_dir = make_download_dir(s->download_dir, err)))
        goto fail;
    if (s->roots && !(roots = config_list_split(s->roots))) {
        seterr(err, DL_ENOMEM, "out of memory");
        goto fail;
    }
    for (i = 0; roots && roots[i] && dl->n_roots < MAX_ROOTS; i++) {
        char *real = realpath(roots[i], NULL);
        if (!real) {
            LOG_WARN(log, "download", "download_roots: %s: %s; not allowed", roots[i],
                     strerror(errno));
            continue;
        }
        dl->roots[dl->n_roots++] = real;
    }
    config_list_free(roots);
    dl->s.state_dir = dl->s.download_dir = dl->s.roots = NULL; /* not kept: resolved above */
    return dl;
fail:
    downloads_free(dl);
    return NULL;
}

void downloads_free(downloads_t *dl)
{
    size_t i;
    if (!dl)
        return;
    for (i = 0; i < dl->n; i++)
        dl_free(dl->v[i]);
    for (i = 0; i < dl->n_gone; i++)
        dl_free(dl->gone[i]);
    for (i = 0; i < dl->n_roots; i++)
        free(dl->roots[i]);
    free(dl->v);
    free(dl->gone);
    free(dl->dir);
    free(dl->download_dir);
    free(dl);
}

size_t downloads_count(const downloads_t *dl)
{
    return dl->n;
}

int downloads_get(downloads_t *dl, size_t i, dl_info_t *out)
{
    if (i >= dl->n)
        return -1;
    if (out)
        info_of(dl, dl->v[i], out);
    return 0;
}

int downloads_find(downloads_t *dl, const char *hash, uint64_t id, dl_info_t *out)
{
    dl_t *d = find(dl, hash, id, NULL);
    if (!d)
        return -1;
    if (out)
        info_of(dl, d, out);
    return 0;
}

static void drop_at(downloads_t *dl, size_t i)
{
    memmove(dl->v + i, dl->v + i + 1, (dl->n - i - 1) * sizeof *dl->v);
    dl->n--;
}

/* Put `d` into the session (paused as it was), with `resume` when given. */
static int start(downloads_t *dl, dl_t *d, const void *resume, size_t rlen, dl_error_t *err)
{
    btshim_error_t berr;
    if (btshim_torrent_add_hash(dl->ses, d->hash, d->name, d->folder, resume, rlen,
                                d->paused || d->error[0] ? BTSHIM_ADD_PAUSED : 0,
                                &berr) != BTSHIM_OK) {
        seterr(err, berr.code == BTSHIM_EEXIST ? DL_EINVAL : DL_EIO, "%s", berr.message);
        return -1;
    }
    d->in_session = 1;
    return 0;
}

int downloads_add(downloads_t *dl, const char *hash, const char *name, const char *save_root,
                  dl_info_t *out, int *duplicate, dl_error_t *err)
{
    dl_t *d;
    char *root;

    if (duplicate)
        *duplicate = 0;
    if ((d = find(dl, hash, 0, NULL))) {
        if (duplicate)
            *duplicate = 1;
        if (out)
            info_of(dl, d, out);
        return DL_OK;
    }
    if (dl->n + dl->n_gone >= dl->s.max_downloads) {
        seterr(err, DL_ELIMIT, "%zu downloads already (max_downloads)", dl->n);
        return DL_ELIMIT;
    }
    if (!(root = allowed_root(dl, save_root, err)))
        return err ? err->code : DL_EINVAL;
    /* a name from a magnet link or a contact: valid UTF-8 without control
     * or invisible formatting characters, cut at a character boundary */
    if (!(d = calloc(1, sizeof *d)) ||
        !(d->name = announce_name(name && *name ? name : hash, 255))) {
        free(d);
        free(root);
        seterr(err, DL_ENOMEM, "out of memory");
        return DL_ENOMEM;
    }
    memcpy(d->hash, hash, BTSHIM_HASH_HEX);
    d->folder = make_folder(root, d->name, hash, err);
    free(root);
    if (!d->folder) {
        dl_free(d);
        return err ? err->code : DL_EIO;
    }
    d->id = dl->s.new_id ? dl->s.new_id(dl->s.arg) : 0;
    d->added_ms = loop_wall_ms();
    if (start(dl, d, NULL, 0, err) != 0 || push(&dl->v, &dl->n, &dl->cap, d) != 0) {
        if (d->in_session)
            btshim_torrent_remove(dl->ses, d->hash, NULL);
        rmdir(d->folder);
        dl_free(d);
        if (err && !err->message[0])
            seterr(err, DL_ENOMEM, "out of memory");
        return err ? err->code : DL_ENOMEM;
    }
    if (write_meta(dl, d) != 0) {
        /* a download that would vanish at the next start is not added */
        drop_at(dl, dl->n - 1);
        btshim_torrent_remove(dl->ses, d->hash, NULL);
        rmdir(d->folder);
        dl_free(d);
        seterr(err, DL_EIO, "could not write the download's state file in %s", dl->dir);
        return DL_EIO;
    }
    LOG_INFO(dl->log, "download", "%s: downloading into %s", d->hash, d->folder);
    connect_sources(dl, d, 1);
    if (out)
        info_of(dl, d, out);
    return DL_OK;
}

int downloads_remove(downloads_t *dl, const char *hash, int delete_data, dl_error_t *err)
{
    size_t at;
    dl_t *d = find(dl, hash, 0, &at);
    int was_complete;
    if (!d) {
        seterr(err, DL_ENOTFOUND, "no download %s", hash);
        return DL_ENOTFOUND;
    }
    was_complete = d->complete;
    drop_at(dl, at);
    remove_state(dl, d->hash);
    {
        /* without metadata the session knows no file to delete */
        btshim_torrent_status_t st;
        if (delete_data && d->in_session &&
            (btshim_torrent_status(dl->ses, d->hash, &st, sizeof st, NULL) != BTSHIM_OK ||
             !st.has_metadata))
            delete_data = 2;
    }
    if (delete_data == 1 && d->in_session && push(&dl->gone, &dl->n_gone, &dl->cap_gone, d) == 0) {
        if (btshim_torrent_remove_data(dl->ses, d->hash, NULL) == BTSHIM_OK) {
            /* the folder goes when the session has deleted the files */
            d->deleting = 1;
            LOG_INFO(dl->log, "download", "%s: removed; deleting its files in %s", d->hash,
                     d->folder);
            d = NULL;
        } else {
            dl->n_gone--;
        }
    }
    if (d) {
        if (d->in_session)
            btshim_torrent_remove(dl->ses, d->hash, NULL);
        if (delete_data)
            rmdir(d->folder); /* no files known: only an empty folder goes */
        LOG_INFO(dl->log, "download", "%s: removed%s", d->hash,
                 delete_data ? "" : "; its files stay");
        dl_free(d);
    }
    if (was_complete)
        emit(dl, DL_EV_CHANGED, NULL);
    return DL_OK;
}

int downloads_pause(downloads_t *dl, const char *hash, int pause, dl_error_t *err)
{
    dl_t *d = find(dl, hash, 0, NULL);
    btshim_error_t berr;
    int rc;
    if (!d) {
        seterr(err, DL_ENOTFOUND, "no download %s", hash);
        return DL_ENOTFOUND;
    }
    if (!d->in_session) {
        seterr(err, DL_EIO, "%s is not in the session: %s", hash,
               d->error[0] ? d->error : "it could not be loaded");
        return DL_EIO;
    }
    rc = pause ? btshim_torrent_pause(dl->ses, d->hash, &berr)
               : btshim_torrent_resume(dl->ses, d->hash, &berr);
    if (rc != BTSHIM_OK) {
        seterr(err, DL_EIO, "%s", berr.message);
        return DL_EIO;
    }
    d->paused = pause;
    if (!pause) {
        d->error[0] = '\0';
        d->waited_ms = 0;
    }
    write_meta(dl, d);
    if (btshim_torrent_save_resume(dl->ses, d->hash, NULL) == BTSHIM_OK)
        d->save_pending = 1;
    if (!pause)
        connect_sources(dl, d, 1);
    return DL_OK;
}

/* Stop `d` with an error the user sees (kept across restarts). */
static void fail_download(downloads_t *dl, dl_t *d, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void fail_download(downloads_t *dl, dl_t *d, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(d->error, sizeof d->error, fmt, ap);
    va_end(ap);
    utf8_trim_tail(d->error);
    LOG_WARN(dl->log, "download", "%s: %s", d->hash, d->error);
    if (d->in_session)
        btshim_torrent_pause(dl->ses, d->hash, NULL);
    write_meta(dl, d);
}

static void completed(downloads_t *dl, dl_t *d)
{
    if (d->complete)
        return;
    d->complete = 1;
    d->completed_ms = loop_wall_ms();
    write_meta(dl, d);
    if (btshim_torrent_save_resume(dl->ses, d->hash, NULL) == BTSHIM_OK)
        d->save_pending = 1;
    LOG_INFO(dl->log, "download", "%s: complete in %s", d->hash, d->folder);
    emit(dl, DL_EV_COMPLETED, d);
    emit(dl, DL_EV_CHANGED, NULL);
}

void downloads_tick(downloads_t *dl, int64_t now_ms)
{
    int64_t elapsed = dl->last_tick ? now_ms - dl->last_tick : 0;
    int save = now_ms - dl->last_save >= (int64_t)dl->s.save_interval_s * 1000;
    int retry = now_ms - dl->last_retry >= (int64_t)dl->s.retry_interval_s * 1000;
    size_t i;

    if (elapsed < 0 || elapsed > 60000)
        elapsed = 0; /* a clock jump or a stall: counted as nothing */
    dl->last_tick = now_ms;
    if (save)
        dl->last_save = now_ms;
    if (retry)
        dl->last_retry = now_ms;
    for (i = 0; i < dl->n; i++) {
        dl_t *d = dl->v[i];
        btshim_torrent_status_t st;
        if (!d->in_session || d->deleting ||
            btshim_torrent_status(dl->ses, d->hash, &st, sizeof st, NULL) != BTSHIM_OK)
            continue;
        if (!d->complete && st.has_metadata && st.size && st.done == st.size &&
            st.state != BTSHIM_STATE_CHECKING)
            completed(dl, d);
        if (active(d) && !st.has_metadata && st.peers > 0 && dl->s.metadata_timeout_s) {
            d->waited_ms += elapsed;
            if (d->waited_ms >= (int64_t)dl->s.metadata_timeout_s * 1000) {
                fail_download(dl, d,
                              "no source sent the metadata within %u s of being connected; "
                              "resume it to try again",
                              dl->s.metadata_timeout_s);
                continue;
            }
        }
        if (save && st.need_save && !d->save_pending &&
            btshim_torrent_save_resume(dl->ses, d->hash, NULL) == BTSHIM_OK)
            d->save_pending = 1;
        /* again now and then while it lacks peers: an address that did
         * not answer may answer now */
        if (retry && active(d) && st.peers == 0) {
            d->want_connect = 1;
            d->sources_digest = 0;
        }
    }
    connect_wanted(dl, CONNECT_BUDGET);
}

static dl_t *find_gone(downloads_t *dl, const char *hash, size_t *at)
{
    size_t i;
    for (i = 0; i < dl->n_gone; i++)
        if (strcmp(dl->gone[i]->hash, hash) == 0) {
            *at = i;
            return dl->gone[i];
        }
    return NULL;
}

int downloads_on_event(downloads_t *dl, const btshim_event_t *ev)
{
    dl_t *d;
    size_t at;

    if (!ev->hash[0])
        return 0;
    if ((ev->type == BTSHIM_EV_DELETED || ev->type == BTSHIM_EV_DELETE_FAILED) &&
        (d = find_gone(dl, ev->hash, &at))) {
        if (ev->type == BTSHIM_EV_DELETED) {
            if (rmdir(d->folder) != 0 && errno != ENOENT)
                LOG_INFO(dl->log, "download", "%s: files deleted; %s stays: %s", d->hash, d->folder,
                         strerror(errno));
            else
                LOG_INFO(dl->log, "download", "%s: files and folder deleted", d->hash);
        } else {
            LOG_WARN(dl->log, "download", "%s: could not delete its files in %s: %s", d->hash,
                     d->folder, ev->message);
        }
        memmove(dl->gone + at, dl->gone + at + 1, (dl->n_gone - at - 1) * sizeof *dl->gone);
        dl->n_gone--;
        dl_free(d);
        return 1;
    }
    if (!(d = find(dl, ev->hash, 0, NULL)))
        return 0;
    switch (ev->type) {
    case BTSHIM_EV_METADATA:
        LOG_INFO(dl->log, "download", "%s: metadata received", d->hash);
        d->waited_ms = 0;
        if (btshim_torrent_save_resume(dl->ses, d->hash, NULL) == BTSHIM_OK)
            d->save_pending = 1;
        break;
    case BTSHIM_EV_FINISHED:
        completed(dl, d);
        break;
    case BTSHIM_EV_RESUME_DATA: {
        char *path = state_path(dl, d->hash, "resume");
        d->save_pending = 0;
        if (!path || library_write_file(path, ev->data, ev->data_len) != 0)
            LOG_WARN(dl->log, "download", "%s: could not write its resume data: %s", d->hash,
                     strerror(errno));
        free(path);
        break;
    }
    case BTSHIM_EV_RESUME_FAILED:
        d->save_pending = 0;
        break;
    case BTSHIM_EV_TORRENT_ERROR:
        LOG_WARN(dl->log, "download", "%s: %s", d->hash, ev->message);
        break;
    default:
        break;
    }
    return 1;
}

size_t downloads_save_all(downloads_t *dl)
{
    size_t i, n = 0;
    for (i = 0; i < dl->n; i++) {
        dl_t *d = dl->v[i];
        if (d->in_session && btshim_torrent_save_resume(dl->ses, d->hash, NULL) == BTSHIM_OK) {
            d->save_pending = 1;
            n++;
        }
    }
    return n;
}

size_t downloads_saves_pending(const downloads_t *dl)
{
    size_t i, n = 0;
    for (i = 0; i < dl->n; i++)
        n += dl->v[i]->save_pending != 0;
    return n;
}

/* ---- loading ----------------------------------------------------------- */

static int load_one(downloads_t *dl, const char *hash)
{
    char *mp = state_path(dl, hash, "json"), *rp = state_path(dl, hash, "resume");
    char *meta = NULL, *resume = NULL;
    size_t mlen, rlen = 0;
    dl_t *d = calloc(1, sizeof *d);
    json_t *o = NULL;
    json_error_t je;
    const char *name, *folder, *error = "";
    json_int_t added, completed_ms;
    int paused, complete, rc = -1;
    struct stat st;
    dl_error_t err;

    if (!d || !mp || !rp)
        goto out;
    if (library_read_file(mp, &meta, &mlen) != 0 || !(o = json_loads(meta, 0, &je)) ||
        json_unpack(o, "{s:s, s:s, s:I, s:I, s:b, s:b, s?:s}", "name", &name, "folder", &folder,
                    "added_ms", &added, "completed_ms", &completed_ms, "paused", &paused,
                    "complete", &complete, "error", &error) != 0 ||
        folder[0] != '/') {
        LOG_WARN(dl->log, "download", "%s: unreadable state file, skipped", hash);
        goto out;
    }
    memcpy(d->hash, hash, BTSHIM_HASH_HEX);
    if (!(d->name = strdup(name)) || !(d->folder = strdup(folder)))
        goto out;
    d->added_ms = added;
    d->completed_ms = completed_ms;
    d->paused = paused;
    d->complete = complete;
    snprintf(d->error, sizeof d->error, "%s", error);
    d->id = dl->s.new_id ? dl->s.new_id(dl->s.arg) : 0;
    if (library_read_file(rp, &resume, &rlen) != 0)
        rlen = 0;
    /* the folder made for it must still be a folder, not a link put there */
    if (lstat(d->folder, &st) != 0 || !S_ISDIR(st.st_mode)) {
        snprintf(d->error, sizeof d->error, "its folder %s is gone or is not a folder", d->folder);
        utf8_trim_tail(d->error);
        LOG_WARN(dl->log, "download", "%s: %s", hash, d->error);
    } else if (start(dl, d, resume, rlen, &err) != 0) {
        snprintf(d->error, sizeof d->error, "could not be loaded: %.400s", err.message);
        utf8_trim_tail(d->error);
        LOG_WARN(dl->log, "download", "%s: %s", hash, d->error);
    }
    if (push(&dl->v, &dl->n, &dl->cap, d) != 0) {
        if (d->in_session)
            btshim_torrent_remove(dl->ses, d->hash, NULL);
        goto out;
    }
    d = NULL;
    rc = 0;
out:
    json_decref(o);
    dl_free(d);
    free(meta);
    free(resume);
    free(mp);
    free(rp);
    return rc;
}

static int cmp_added(const void *a, const void *b)
{
    const dl_t *x = *(dl_t *const *)a, *y = *(dl_t *const *)b;
    return x->added_ms < y->added_ms ? -1 : x->added_ms > y->added_ms;
}

static int load_cb(void *arg, const char *hash)
{
    downloads_t *dl = arg;
    if (dl->n >= dl->s.max_downloads)
        return 1;
    if (!find(dl, hash, 0, NULL))
        load_one(dl, hash);
    return 0;
}

size_t downloads_load(downloads_t *dl)
{
    size_t before = dl->n, complete = 0, i;

    if (library_scan(dl->dir, load_cb, dl) != 0) {
        LOG_WARN(dl->log, "download", "%s: %s", dl->dir, strerror(errno));
        return 0;
    }
    if (dl->n > before)
        qsort(dl->v + before, dl->n - before, sizeof *dl->v, cmp_added);
    for (i = before; i < dl->n; i++)
        complete += dl->v[i]->complete;
    LOG_INFO(dl->log, "download", "%zu download(s) loaded from %s, %zu complete", dl->n - before,
             dl->dir, complete);
    if (complete)
        emit(dl, DL_EV_CHANGED, NULL);
    return dl->n - before;
}
