/* SPDX-License-Identifier: MIT */
/* The user's shares: hashing jobs, seeding, the state directory. */
#include "library.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "loop.h"

#define MAX_FILES      100000 /* files of one share recorded for the start-up check */
#define MAX_DEPTH      64
#define MAX_STATE_FILE (64u << 20)
#define MAX_REHASH     3 /* a path that keeps changing while hashed fails after this */

typedef struct file_rec {
    char *rel; /* relative to the share's path; "" for a single file */
    uint64_t size;
    int64_t mtime_ns;
} file_rec_t;

typedef struct snapshot {
    file_rec_t *v;
    size_t n, cap;
    uint64_t bytes;
} snapshot_t;

typedef struct share {
    uint64_t id;
    char hash[BTSHIM_HASH_HEX];
    char *path, *name;
    uint64_t job; /* hashing job, 0 when none */
    int rehash;   /* times hashed again because the files changed meanwhile */
    int64_t added_ms;
    share_state_t state;
    char error[512];
    snapshot_t snap;  /* when hashing started, or as recorded */
    int save_pending; /* resume data asked for */
} share_t;

struct library {
    btshim_session_t *ses;
    char *dir;       /* <state_dir>/shares */
    char *state_dir; /* resolved: never shared (it holds the RPC token) */
    size_t max_shares;
    log_t *log;
    library_cb cb;
    void *cb_arg;
    share_t **v;
    size_t n, cap;
    uint64_t next_id;
};

static void seterr(library_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void seterr(library_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;
    if (!err)
        return;
    err->code = code;
    va_start(ap, fmt);
    vsnprintf(err->message, sizeof err->message, fmt, ap);
    va_end(ap);
}

char *library_dupf(const char *fmt, ...)
{
    va_list ap;
    int n;
    char *p;
    va_start(ap, fmt);
    n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0 || !(p = malloc((size_t)n + 1)))
        return NULL;
    va_start(ap, fmt);
    vsnprintf(p, (size_t)n + 1, fmt, ap);
    va_end(ap);
    return p;
}

/* ---- snapshots of a share's files ------------------------------------- */

static void snap_free(snapshot_t *s)
{
    size_t i;
    for (i = 0; i < s->n; i++)
        free(s->v[i].rel);
    free(s->v);
    memset(s, 0, sizeof *s);
}

static int snap_push(snapshot_t *s, const char *rel, const struct stat *st)
{
    if (s->n == MAX_FILES)
        return -2;
    if (s->n == s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 16;
        file_rec_t *v = realloc(s->v, cap * sizeof *v);
        if (!v)
            return -1;
        s->v = v;
        s->cap = cap;
    }
    if (!(s->v[s->n].rel = strdup(rel)))
        return -1;
    s->v[s->n].size = (uint64_t)st->st_size;
    s->v[s->n].mtime_ns = (int64_t)st->st_mtim.tv_sec * 1000000000 + st->st_mtim.tv_nsec;
    s->bytes += (uint64_t)st->st_size;
    s->n++;
    return 0;
}

static int cmp_rec(const void *a, const void *b)
{
    return strcmp(((const file_rec_t *)a)->rel, ((const file_rec_t *)b)->rel);
}

/* Walk `abs` (relative name `rel`), following symbolic links as the
 * torrent maker does; 0, -1 out of memory, -2 too many files or too deep,
 * -3 unreadable. */
static int snap_walk(snapshot_t *s, const char *abs, const char *rel, int depth)
{
    struct stat st;
    DIR *d;
    struct dirent *e;
    int rc = 0;

    /* the shared path itself may be a link; inside a folder links are
     * skipped, as the torrent maker skips them: a link must not share
     * what it points to (e.g. ~/.ssh) */
    if ((depth ? lstat(abs, &st) : stat(abs, &st)) != 0)
        return -3;
    if (S_ISLNK(st.st_mode))
        return 0;
    if (S_ISREG(st.st_mode))
        return snap_push(s, rel, &st);
    if (!S_ISDIR(st.st_mode))
        return 0; /* sockets, devices: not data */
    if (depth >= MAX_DEPTH)
        return -2;
    if (!(d = opendir(abs)))
        return -3;
    while (rc == 0 && (e = readdir(d))) {
        char *cabs, *crel;
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (!(cabs = library_dupf("%s/%s", abs, e->d_name)))
            rc = -1;
        else if (!(crel = library_dupf("%s%s%s", rel, *rel ? "/" : "", e->d_name))) {
            free(cabs);
            rc = -1;
        } else {
            rc = snap_walk(s, cabs, crel, depth + 1);
            free(cabs);
            free(crel);
        }
    }
    closedir(d);
    return rc;
}

static int snap_take(snapshot_t *s, const char *path, library_error_t *err)
{
    int rc;
    memset(s, 0, sizeof *s);
    rc = snap_walk(s, path, "", 0);
    if (rc == 0) {
        if (s->n > 1)
            qsort(s->v, s->n, sizeof *s->v, cmp_rec);
        return 0;
    }
    snap_free(s);
    if (rc == -1)
        seterr(err, LIBRARY_ENOMEM, "out of memory");
    else if (rc == -2)
        seterr(err, LIBRARY_EINVAL, "%s: more than %d files or %d levels of folders", path,
               MAX_FILES, MAX_DEPTH);
    else
        seterr(err, LIBRARY_EINVAL, "%s: %s", path, strerror(errno));
    return -1;
}

static int snap_equal(const snapshot_t *a, const snapshot_t *b)
{
    size_t i;
    if (a->n != b->n)
        return 0;
    for (i = 0; i < a->n; i++)
        if (strcmp(a->v[i].rel, b->v[i].rel) != 0 || a->v[i].size != b->v[i].size ||
            a->v[i].mtime_ns != b->v[i].mtime_ns)
            return 0;
    return 1;
}

/* How the files `now` differ from those `recorded` (both sorted): 0 not
 * at all, 1 only in modification times (the data may be the same: check
 * it), 2 a recorded file vanished or changed size (the share is gone).
 * Files added to a shared folder since are not part of its torrent. */
static int snap_compare(const snapshot_t *recorded, const snapshot_t *now)
{
    size_t i = 0, j = 0;
    int diff = 0;
    while (i < recorded->n) {
        int c = j < now->n ? strcmp(recorded->v[i].rel, now->v[j].rel) : -1;
        if (c > 0) {
            j++;
            continue;
        }
        if (c < 0 || recorded->v[i].size != now->v[j].size)
            return 2;
        if (recorded->v[i].mtime_ns != now->v[j].mtime_ns)
            diff = 1;
        i++;
        j++;
    }
    return diff;
}

/* Re-read the modification times of the recorded files; -1 when one
 * vanished or changed size. */
static int snap_refresh(snapshot_t *s, const char *path)
{
    size_t i;
    for (i = 0; i < s->n; i++) {
        struct stat st;
        char *p =
            *s->v[i].rel ? library_dupf("%s/%s", path, s->v[i].rel) : library_dupf("%s", path);
        int rc = p ? stat(p, &st) : -1;
        free(p);
        if (rc != 0 || !S_ISREG(st.st_mode) || (uint64_t)st.st_size != s->v[i].size)
            return -1;
        s->v[i].mtime_ns = (int64_t)st.st_mtim.tv_sec * 1000000000 + st.st_mtim.tv_nsec;
    }
    return 0;
}

/* ---- state files ------------------------------------------------------- */

static char *state_path(const library_t *lib, const char *hash, const char *ext)
{
    return library_dupf("%s/%s.%s", lib->dir, hash, ext);
}

int library_write_file(const char *path, const void *data, size_t len)
{
    char *tmp;
    int fd, rc = -1;
    const char *p = data;

    if (!(tmp = library_dupf("%s.tmp", path)))
        return -1;
    unlink(tmp); /* a leftover (or a planted link): never written through */
    fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
    if (fd < 0)
        goto out;
    while (len) {
        ssize_t w = write(fd, p, len);
        if (w < 0 && errno == EINTR)
            continue;
        if (w <= 0) {
            close(fd);
            unlink(tmp);
            goto out;
        }
        p += w;
        len -= (size_t)w;
    }
    if (fsync(fd) != 0 || close(fd) != 0 || rename(tmp, path) != 0) {
        unlink(tmp);
        goto out;
    }
    rc = 0;
out:
    free(tmp);
    return rc;
}

int library_read_file(const char *path, char **data, size_t *len)
{
    FILE *f = fopen(path, "rbe");
    char *buf = NULL;
    size_t cap = 0, n = 0;
    if (!f)
        return -1;
    for (;;) {
        size_t r;
        if (n == cap) {
            char *nb;
            if (cap >= MAX_STATE_FILE)
                break;
            cap = cap ? cap * 2 : 4096;
            if (!(nb = realloc(buf, cap + 1)))
                break;
            buf = nb;
        }
        r = fread(buf + n, 1, cap - n, f);
        n += r;
        if (r == 0) {
            if (feof(f) && !ferror(f)) {
                fclose(f);
                buf[n] = '\0';
                *data = buf;
                *len = n;
                return 0;
            }
            break;
        }
    }
    fclose(f);
    free(buf);
    return -1;
}

static int write_meta(library_t *lib, const share_t *sh)
{
    json_t *files = json_array(), *o;
    char *text, *path;
    size_t i;
    int rc = -1;

    if (!files)
        return -1;
    for (i = 0; i < sh->snap.n; i++)
        if (json_array_append_new(
                files, json_pack("[sIII]", sh->snap.v[i].rel, (json_int_t)sh->snap.v[i].size,
                                 (json_int_t)(sh->snap.v[i].mtime_ns / 1000000000),
                                 (json_int_t)(sh->snap.v[i].mtime_ns % 1000000000))) != 0) {
            json_decref(files);
            return -1;
        }
    o = json_pack("{sssIso}", "path", sh->path, "added_ms", (json_int_t)sh->added_ms, "files",
                  files);
    if (!o)
        return -1;
    text = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    path = state_path(lib, sh->hash, "json");
    if (text && path)
        rc = library_write_file(path, text, strlen(text));
    free(text);
    free(path);
    return rc;
}

static void remove_state(library_t *lib, const char *hash)
{
    static const char *const ext[] = {"json", "torrent", "resume"};
    size_t i;
    for (i = 0; i < 3; i++) {
        char *p = state_path(lib, hash, ext[i]);
        if (p && unlink(p) != 0 && errno != ENOENT)
            LOG_WARN(lib->log, "share", "could not delete %s: %s", p, strerror(errno));
        free(p);
    }
}

/* ---- the list ---------------------------------------------------------- */

static void share_free(share_t *sh)
{
    if (!sh)
        return;
    free(sh->path);
    free(sh->name);
    snap_free(&sh->snap);
    free(sh);
}

static void info_of(library_t *lib, const share_t *sh, share_info_t *out)
{
    memset(out, 0, sizeof *out);
    out->id = sh->id;
    memcpy(out->hash, sh->hash, sizeof out->hash);
    out->name = sh->name;
    out->path = sh->path;
    out->size = sh->snap.bytes;
    out->added_ms = sh->added_ms;
    out->state = sh->state;
    out->error = sh->error;
    if (sh->state == SHARE_HASHING && sh->job) {
        uint64_t done = 0, total = 0;
        if (btshim_create_progress(lib->ses, sh->job, &done, &total, NULL) == BTSHIM_OK)
            out->hashed = done < out->size ? done : out->size;
    }
}

static void notify(library_t *lib, library_event_t ev, const share_t *sh)
{
    share_info_t info;
    if (!lib->cb)
        return;
    if (sh)
        info_of(lib, sh, &info);
    lib->cb(lib->cb_arg, ev, sh ? &info : NULL);
}

static share_t *find(const library_t *lib, const char *hash, uint64_t id, size_t *at)
{
    size_t i;
    for (i = 0; i < lib->n; i++) {
        share_t *sh = lib->v[i];
        if ((id && sh->id == id) || (hash && *hash && strcmp(sh->hash, hash) == 0)) {
            if (at)
                *at = i;
            return sh;
        }
    }
    return NULL;
}

static share_t *find_job(const library_t *lib, uint64_t job)
{
    size_t i;
    for (i = 0; i < lib->n; i++)
        if (lib->v[i]->job == job && job)
            return lib->v[i];
    return NULL;
}

static int push(library_t *lib, share_t *sh)
{
    if (lib->n == lib->cap) {
        size_t cap = lib->cap ? lib->cap * 2 : 16;
        share_t **v = realloc(lib->v, cap * sizeof *v);
        if (!v)
            return -1;
        lib->v = v;
        lib->cap = cap;
    }
    lib->v[lib->n++] = sh;
    return 0;
}

static void drop_at(library_t *lib, size_t i)
{
    share_free(lib->v[i]);
    memmove(lib->v + i, lib->v + i + 1, (lib->n - i - 1) * sizeof *lib->v);
    lib->n--;
}

static const char *base_name(const char *path)
{
    const char *s = strrchr(path, '/');
    return s && s[1] ? s + 1 : path;
}

/* ---- public ----------------------------------------------------------- */

int library_private_dir(const char *path, library_error_t *err)
{
    struct stat st;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        seterr(err, LIBRARY_EIO, "state directory %s: %s", path, strerror(errno));
        return -1;
    }
    if (lstat(path, &st) != 0 || !S_ISDIR(st.st_mode)) {
        seterr(err, LIBRARY_EIO, "state directory %s: not a directory", path);
        return -1;
    }
    if (st.st_uid != geteuid() || (st.st_mode & 022)) {
        seterr(err, LIBRARY_EIO,
               "state directory %s: owned by another user or writable by others (mode %04o); "
               "the agent trusts its contents: use a directory of your own, mode 0700",
               path, (unsigned)(st.st_mode & 07777));
        return -1;
    }
    return 0;
}

library_t *library_new(btshim_session_t *ses, const char *state_dir, size_t max_shares, log_t *log,
                       library_cb cb, void *arg, library_error_t *err)
{
    library_t *lib = calloc(1, sizeof *lib);
    if (!lib || !(lib->dir = library_dupf("%s/shares", state_dir))) {
        free(lib);
        seterr(err, LIBRARY_ENOMEM, "out of memory");
        return NULL;
    }
    if (library_private_dir(state_dir, err) != 0 || library_private_dir(lib->dir, err) != 0) {
        free(lib->dir);
        free(lib);
        return NULL;
    }
    if (!(lib->state_dir = realpath(state_dir, NULL))) {
        seterr(err, LIBRARY_EIO, "state directory %s: %s", state_dir, strerror(errno));
        free(lib->dir);
        free(lib);
        return NULL;
    }
    lib->ses = ses;
    lib->max_shares = max_shares ? max_shares : 100000;
    lib->log = log;
    lib->cb = cb;
    lib->cb_arg = arg;
    lib->next_id = 1;
    return lib;
}

void library_free(library_t *lib)
{
    size_t i;
    if (!lib)
        return;
    for (i = 0; i < lib->n; i++)
        share_free(lib->v[i]);
    free(lib->v);
    free(lib->dir);
    free(lib->state_dir);
    free(lib);
}

uint64_t library_new_id(library_t *lib)
{
    return lib->next_id++;
}

size_t library_count(const library_t *lib)
{
    return lib->n;
}

int library_get(library_t *lib, size_t i, share_info_t *out)
{
    if (i >= lib->n)
        return -1;
    info_of(lib, lib->v[i], out);
    return 0;
}

int library_find(library_t *lib, const char *hash, uint64_t id, share_info_t *out)
{
    share_t *sh = find(lib, hash, id, NULL);
    if (!sh)
        return -1;
    if (out)
        info_of(lib, sh, out);
    return 0;
}

static int start_job(library_t *lib, share_t *sh, library_error_t *err)
{
    btshim_error_t be;
    if (btshim_create_start(lib->ses, sh->path, 0, &sh->job, &be) != BTSHIM_OK) {
        seterr(err, be.code == BTSHIM_ELIMIT ? LIBRARY_ELIMIT : LIBRARY_EINVAL, "%s: %s", sh->path,
               be.message);
        sh->job = 0;
        return -1;
    }
    return 0;
}

int library_add_path(library_t *lib, const char *path, uint64_t *id, int *duplicate,
                     library_error_t *err)
{
    char real[PATH_MAX];
    share_t *sh;
    size_t i;

    *duplicate = 0;
    if (!path || !*path) {
        seterr(err, LIBRARY_EINVAL, "no path given");
        return LIBRARY_EINVAL;
    }
    if (!realpath(path, real)) {
        seterr(err, LIBRARY_EINVAL, "%s: %s", path, strerror(errno));
        return LIBRARY_EINVAL;
    }
    {
        size_t sl = strlen(lib->state_dir), rl = strlen(real);
        if ((rl >= sl && strncmp(real, lib->state_dir, sl) == 0 &&
             (real[sl] == '/' || real[sl] == '\0')) ||
            (sl > rl && strncmp(lib->state_dir, real, rl) == 0 &&
             (lib->state_dir[rl] == '/' || rl == 1))) {
            seterr(err, LIBRARY_EINVAL, "%s: %s", real,
                   "holds the agent's state directory (with its RPC token): not shared");
            return LIBRARY_EINVAL;
        }
    }
    for (i = 0; i < lib->n; i++) {
        if (strcmp(lib->v[i]->path, real) != 0)
            continue;
        if (lib->v[i]->state != SHARE_ERROR) {
            *id = lib->v[i]->id;
            *duplicate = 1;
            return LIBRARY_OK;
        }
        /* shared again after it failed or was withdrawn: replaces that entry */
        library_remove(lib, NULL, lib->v[i]->id, NULL);
        break;
    }
    if (lib->n >= lib->max_shares) {
        seterr(err, LIBRARY_ELIMIT, "already %zu shares: remove one first", lib->n);
        return LIBRARY_ELIMIT;
    }
    if (!(sh = calloc(1, sizeof *sh)) || !(sh->path = strdup(real)) ||
        !(sh->name = strdup(base_name(real)))) {
        share_free(sh);
        seterr(err, LIBRARY_ENOMEM, "out of memory");
        return LIBRARY_ENOMEM;
    }
    if (snap_take(&sh->snap, real, err) != 0) {
        share_free(sh);
        return err ? err->code : LIBRARY_EINVAL;
    }
    if (sh->snap.n == 0 || sh->snap.bytes == 0) {
        share_free(sh);
        seterr(err, LIBRARY_EINVAL, "%s: %s", real,
               "holds no data (an empty file or a folder without files)");
        return LIBRARY_EINVAL;
    }
    sh->state = SHARE_HASHING;
    sh->added_ms = loop_wall_ms();
    if (start_job(lib, sh, err) != 0 || push(lib, sh) != 0) {
        if (sh->job)
            btshim_create_cancel(lib->ses, sh->job, NULL);
        share_free(sh);
        if (err && err->code == 0)
            seterr(err, LIBRARY_ENOMEM, "out of memory");
        return err ? err->code : LIBRARY_ENOMEM;
    }
    sh->id = lib->next_id++;
    *id = sh->id;
    LOG_INFO(lib->log, "share", "hashing %s (%llu bytes in %zu file%s)", real,
             (unsigned long long)sh->snap.bytes, sh->snap.n, sh->snap.n == 1 ? "" : "s");
    return LIBRARY_OK;
}

int library_remove(library_t *lib, const char *hash, uint64_t id, library_error_t *err)
{
    size_t at;
    share_t *sh = find(lib, hash, id, &at);
    int was_seeding;

    if (!sh) {
        seterr(err, LIBRARY_ENOTFOUND, "no share %s", hash && *hash ? hash : "with that id");
        return LIBRARY_ENOTFOUND;
    }
    if (sh->job) {
        btshim_create_cancel(lib->ses, sh->job, NULL);
        /* whoever waits for this job learns that it will not end */
        sh->job = 0;
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error, "removed before its hashing ended");
        notify(lib, LIBRARY_EV_HASHED, sh);
    }
    if (sh->hash[0]) {
        btshim_torrent_remove(lib->ses, sh->hash, NULL); /* never deletes files */
        remove_state(lib, sh->hash);
    }
    was_seeding = sh->state == SHARE_SEEDING;
    LOG_INFO(lib->log, "share", "no longer sharing %s", sh->path);
    drop_at(lib, at);
    if (was_seeding)
        notify(lib, LIBRARY_EV_CHANGED, NULL);
    return LIBRARY_OK;
}

/* Add `sh`'s torrent to the session; `resume` may be NULL. */
static int seed(library_t *lib, share_t *sh, const void *torrent, size_t len, const void *resume,
                size_t resume_len, int flags)
{
    btshim_error_t be;
    char hash[BTSHIM_HASH_HEX];
    char *save_dir = strdup(sh->path), *slash;

    if (!save_dir)
        return -1;
    /* the torrent's name is the path's last component: its data lives in
     * the folder above */
    slash = strrchr(save_dir, '/');
    if (slash == save_dir)
        slash[1] = '\0';
    else if (slash)
        *slash = '\0';
    if (btshim_torrent_add(lib->ses, torrent, len, save_dir, resume, resume_len,
                           flags | BTSHIM_ADD_UPLOAD_ONLY, hash, &be) != BTSHIM_OK &&
        be.code != BTSHIM_EEXIST) {
        snprintf(sh->error, sizeof sh->error, "could not seed: %s", be.message);
        free(save_dir);
        return -1;
    }
    free(save_dir);
    if (sh->hash[0] && strcmp(sh->hash, hash) != 0) {
        snprintf(sh->error, sizeof sh->error, "the torrent file does not match its name");
        btshim_torrent_remove(lib->ses, hash, NULL);
        return -1;
    }
    memcpy(sh->hash, hash, sizeof sh->hash);
    return 0;
}

static int name_matches(library_t *lib, const share_t *sh);

static void on_created(library_t *lib, share_t *sh, const btshim_event_t *ev)
{
    library_error_t err;
    snapshot_t now;
    char *path = NULL;
    share_t *dup;
    int same;

    sh->job = 0;
    if (ev->type == BTSHIM_EV_CREATE_FAILED) {
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error, "hashing failed: %s", ev->message);
        LOG_WARN(lib->log, "share", "%s: %s", sh->path, sh->error);
        notify(lib, LIBRARY_EV_HASHED, sh);
        return;
    }
    /* files changed while they were read: the torrent may not match */
    same = snap_take(&now, sh->path, &err) == 0 && snap_equal(&now, &sh->snap);
    snap_free(&now);
    if (!same) {
        snap_free(&sh->snap);
        if (sh->rehash < MAX_REHASH && snap_take(&sh->snap, sh->path, &err) == 0 &&
            start_job(lib, sh, &err) == 0) {
            sh->rehash++;
            LOG_INFO(lib->log, "share", "%s changed while it was hashed: hashing again", sh->path);
            return;
        }
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error, "the files kept changing while they were hashed");
        LOG_WARN(lib->log, "share", "%s: %s", sh->path, sh->error);
        notify(lib, LIBRARY_EV_HASHED, sh);
        return;
    }
    dup = find(lib, ev->hash, 0, NULL);
    if (dup && dup != sh) {
        /* the same data under another path name: one share */
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error, "already shared as %s", dup->path);
        memcpy(sh->hash, ev->hash, sizeof sh->hash);
        notify(lib, LIBRARY_EV_HASHED, sh);
        sh->hash[0] = '\0';
        return;
    }
    memcpy(sh->hash, ev->hash, sizeof sh->hash);
    path = state_path(lib, sh->hash, "torrent");
    if (!path || library_write_file(path, ev->data, ev->data_len) != 0 ||
        write_meta(lib, sh) != 0) {
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error, "could not write the state directory: %s",
                 strerror(errno));
        remove_state(lib, sh->hash);
    } else if (seed(lib, sh, ev->data, ev->data_len, NULL, 0, BTSHIM_ADD_SEED_MODE) != 0) {
        sh->state = SHARE_ERROR;
        remove_state(lib, sh->hash);
    } else if (!name_matches(lib, sh)) {
        /* libtorrent rewrites some characters of names it reads from a
         * torrent (bidirectional controls, for one): it would look for the
         * data under another name, and contacts would save it so */
        btshim_torrent_remove(lib->ses, sh->hash, NULL);
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error,
                 "BitTorrent clients would save it under another name (its name holds "
                 "characters they rewrite, such as a tab or a direction mark): rename it");
        remove_state(lib, sh->hash);
    } else {
        sh->state = SHARE_SEEDING;
        if (btshim_torrent_save_resume(lib->ses, sh->hash, NULL) == BTSHIM_OK)
            sh->save_pending = 1;
        LOG_INFO(lib->log, "share", "sharing %s as %s", sh->path, sh->hash);
    }
    free(path);
    if (sh->state == SHARE_ERROR) {
        LOG_WARN(lib->log, "share", "%s: %s", sh->path, sh->error);
        sh->hash[0] = '\0';
    }
    notify(lib, LIBRARY_EV_HASHED, sh);
    if (sh->state == SHARE_SEEDING)
        notify(lib, LIBRARY_EV_CHANGED, sh);
}

static void withdraw(library_t *lib, share_t *sh, const char *why)
{
    int was = sh->state == SHARE_SEEDING;
    btshim_torrent_remove(lib->ses, sh->hash, NULL);
    sh->state = SHARE_ERROR;
    snprintf(sh->error, sizeof sh->error, "%s", why);
    LOG_WARN(lib->log, "share", "%s (%s): %s; withdrawn", sh->path, sh->hash, why);
    if (was)
        notify(lib, LIBRARY_EV_CHANGED, sh);
}

int library_on_event(library_t *lib, const btshim_event_t *ev)
{
    share_t *sh;

    switch (ev->type) {
    case BTSHIM_EV_CREATED:
    case BTSHIM_EV_CREATE_FAILED:
        if (!(sh = find_job(lib, ev->job)))
            return 0;
        on_created(lib, sh, ev);
        return 1;
    case BTSHIM_EV_RESUME_DATA:
    case BTSHIM_EV_RESUME_FAILED:
        if (!(sh = find(lib, ev->hash, 0, NULL)))
            return 0;
        sh->save_pending = 0;
        if (ev->type == BTSHIM_EV_RESUME_DATA && sh->state == SHARE_SEEDING) {
            char *p = state_path(lib, sh->hash, "resume");
            if (!p || library_write_file(p, ev->data, ev->data_len) != 0)
                LOG_WARN(lib->log, "share", "could not save resume data of %s", sh->hash);
            free(p);
        }
        return 1;
    case BTSHIM_EV_CHECKED:
        if (!(sh = find(lib, ev->hash, 0, NULL)))
            return 0;
        if (sh->state != SHARE_CHECKING)
            return 1;
        if (ev->error) {
            withdraw(lib, sh, "its files changed or vanished since it was shared");
            return 1;
        }
        /* the data matches: record the files' times as they are now */
        if (snap_refresh(&sh->snap, sh->path) != 0) {
            withdraw(lib, sh, "a file vanished or changed size while it was checked");
            return 1;
        }
        if (write_meta(lib, sh) != 0)
            LOG_WARN(lib->log, "share", "could not record the files of %s", sh->hash);
        sh->state = SHARE_SEEDING;
        if (btshim_torrent_save_resume(lib->ses, sh->hash, NULL) == BTSHIM_OK)
            sh->save_pending = 1;
        LOG_INFO(lib->log, "share", "%s checked: sharing it again", sh->path);
        notify(lib, LIBRARY_EV_CHANGED, sh);
        return 1;
    case BTSHIM_EV_TORRENT_ERROR:
        if (!(sh = find(lib, ev->hash, 0, NULL)))
            return 0;
        if (sh->state == SHARE_SEEDING || sh->state == SHARE_CHECKING)
            withdraw(lib, sh, ev->message[0] ? ev->message : "file error");
        return 1;
    default:
        return 0;
    }
}

size_t library_save_all(library_t *lib)
{
    size_t i, n = 0;
    for (i = 0; i < lib->n; i++) {
        share_t *sh = lib->v[i];
        if (sh->state == SHARE_SEEDING &&
            btshim_torrent_save_resume(lib->ses, sh->hash, NULL) == BTSHIM_OK) {
            sh->save_pending = 1;
            n++;
        }
    }
    return n;
}

size_t library_saves_pending(const library_t *lib)
{
    size_t i, n = 0;
    for (i = 0; i < lib->n; i++)
        n += lib->v[i]->save_pending != 0;
    return n;
}

/* ---- loading ----------------------------------------------------------- */

int library_is_hash(const char *s)
{
    size_t i;
    for (i = 0; i < 40; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return 0;
    return s[40] == '\0';
}

/* Recorded snapshot from the .json file. */
static int meta_parse(const char *text, share_t *sh)
{
    json_error_t je;
    json_t *o = json_loads(text, 0, &je), *files, *f;
    const char *path;
    json_int_t added;
    size_t i;
    int rc = -1;

    if (!o ||
        json_unpack(o, "{s:s, s:I, s:o}", "path", &path, "added_ms", &added, "files", &files) !=
            0 ||
        !json_is_array(files) || path[0] != '/')
        goto out;
    if (!(sh->path = strdup(path)) || !(sh->name = strdup(base_name(path))))
        goto out;
    sh->added_ms = added;
    json_array_foreach(files, i, f)
    {
        const char *rel;
        json_int_t size, sec, nsec;
        struct stat st;
        if (json_unpack(f, "[sIII]", &rel, &size, &sec, &nsec) != 0 || size < 0 || sec < 0 ||
            sec > (json_int_t)1 << 40 || nsec < 0 || nsec >= 1000000000)
            goto out;
        memset(&st, 0, sizeof st);
        st.st_size = (off_t)size;
        st.st_mtim.tv_sec = (time_t)sec;
        st.st_mtim.tv_nsec = (long)nsec;
        if (snap_push(&sh->snap, rel, &st) != 0)
            goto out;
    }
    if (sh->snap.n == 0) /* a share always has data */
        goto out;
    if (sh->snap.n > 1)
        qsort(sh->snap.v, sh->snap.n, sizeof *sh->snap.v, cmp_rec);
    rc = 0;
out:
    json_decref(o);
    return rc;
}

/* Whether the torrent in the session names the share's path: its data is
 * read from the path's folder under the torrent's name. */
static int name_matches(library_t *lib, const share_t *sh)
{
    btshim_torrent_status_t st;
    if (btshim_torrent_status(lib->ses, sh->hash, &st, sizeof st, NULL) != BTSHIM_OK)
        return 0;
    return !st.name[0] || strcmp(base_name(st.name), sh->name) == 0;
}

static int load_one(library_t *lib, const char *hash)
{
    char *mp = state_path(lib, hash, "json"), *tp = state_path(lib, hash, "torrent"),
         *rp = state_path(lib, hash, "resume");
    char *meta = NULL, *torrent = NULL, *resume = NULL;
    size_t mlen, tlen, rlen = 0;
    share_t *sh = calloc(1, sizeof *sh);
    snapshot_t now;
    library_error_t err;
    int rc = -1, same, diff;

    if (!sh || !mp || !tp || !rp)
        goto out;
    if (library_read_file(mp, &meta, &mlen) != 0 || library_read_file(tp, &torrent, &tlen) != 0 ||
        meta_parse(meta, sh) != 0) {
        LOG_WARN(lib->log, "share", "%s: unreadable state files, skipped", hash);
        goto out;
    }
    memcpy(sh->hash, hash, BTSHIM_HASH_HEX);
    sh->id = lib->next_id++;
    memset(&now, 0, sizeof now);
    diff = snap_take(&now, sh->path, &err) == 0 ? snap_compare(&sh->snap, &now) : 2;
    snap_free(&now);
    same = diff == 0;
    if (same && library_read_file(rp, &resume, &rlen) != 0)
        rlen = 0;
    if (diff == 2) {
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error,
                 "a file vanished or changed size since it was shared; withdrawn");
        LOG_WARN(lib->log, "share", "%s (%s): %s", sh->path, hash, sh->error);
    } else if (seed(lib, sh, torrent, tlen, same ? resume : NULL, same ? rlen : 0, 0) != 0) {
        sh->state = SHARE_ERROR;
        LOG_WARN(lib->log, "share", "%s (%s): %s", sh->path, hash, sh->error);
    } else if (!name_matches(lib, sh)) {
        btshim_torrent_remove(lib->ses, sh->hash, NULL);
        sh->state = SHARE_ERROR;
        snprintf(sh->error, sizeof sh->error,
                 "its torrent does not name the shared path; withdrawn");
        LOG_WARN(lib->log, "share", "%s (%s): %s", sh->path, hash, sh->error);
    } else if (same && rlen) {
        sh->state = SHARE_SEEDING;
    } else {
        sh->state = SHARE_CHECKING;
        LOG_INFO(lib->log, "share", "%s changed while the agent was stopped: checking it",
                 sh->path);
    }
    if (push(lib, sh) != 0)
        goto out;
    sh = NULL;
    rc = 0;
out:
    share_free(sh);
    free(meta);
    free(torrent);
    free(resume);
    free(mp);
    free(tp);
    free(rp);
    return rc;
}

static int cmp_added(const void *a, const void *b)
{
    const share_t *x = *(share_t *const *)a, *y = *(share_t *const *)b;
    return x->added_ms < y->added_ms ? -1 : x->added_ms > y->added_ms;
}

int library_scan(const char *dir, int (*fn)(void *arg, const char *hash), void *arg)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    if (!d)
        return -1;
    while ((e = readdir(d))) {
        char hash[BTSHIM_HASH_HEX];
        if (strlen(e->d_name) != 45 || strcmp(e->d_name + 40, ".json") != 0)
            continue;
        memcpy(hash, e->d_name, 40);
        hash[40] = '\0';
        if (library_is_hash(hash) && fn(arg, hash) != 0)
            break;
    }
    closedir(d);
    return 0;
}

static int load_cb(void *arg, const char *hash)
{
    library_t *lib = arg;
    if (lib->n >= lib->max_shares)
        return 1;
    if (!find(lib, hash, 0, NULL))
        load_one(lib, hash);
    return 0;
}

size_t library_load(library_t *lib)
{
    size_t before = lib->n, seeding = 0, i;

    if (library_scan(lib->dir, load_cb, lib) != 0) {
        LOG_WARN(lib->log, "share", "%s: %s", lib->dir, strerror(errno));
        return 0;
    }
    if (lib->n > before)
        qsort(lib->v + before, lib->n - before, sizeof *lib->v, cmp_added);
    for (i = before; i < lib->n; i++)
        seeding += lib->v[i]->state == SHARE_SEEDING;
    LOG_INFO(lib->log, "share", "%zu share(s) loaded from %s: %zu seeding without a check",
             lib->n - before, lib->dir, seeding);
    if (seeding)
        notify(lib, LIBRARY_EV_CHANGED, NULL);
    return lib->n - before;
}
