/* SPDX-License-Identifier: MIT */
/*
 * The JSON-RPC methods of the agent (docs/rpc-spec.md): parameters checked
 * strictly (an unknown or mistyped one is an invalid-params error naming
 * it), results built from the library and the BitTorrent session.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent_private.h"

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

/* ---- parameters --------------------------------------------------------- */

/* Refuse members of `params` not named in `known` (NULL-terminated). */
static int only_known(json_t *params, const char *const *known, rpc_call_t *call)
{
    const char *key;
    json_t *v;
    json_object_foreach(params, key, v)
    {
        size_t i;
        int ok = 0;
        (void)v;
        for (i = 0; known[i]; i++)
            ok |= strcmp(known[i], key) == 0;
        if (!ok) {
            rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                           "unknown parameter \"%.64s\"", key);
            return -1;
        }
    }
    return 0;
}

static int get_string(json_t *params, const char *key, int required, const char **out,
                      rpc_call_t *call)
{
    json_t *v = json_object_get(params, key);
    *out = NULL;
    if (!v || json_is_null(v)) {
        if (!required)
            return 0;
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params", "\"%s\" is required", key);
        return -1;
    }
    if (!json_is_string(v) || strlen(json_string_value(v)) != json_string_length(v)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"%s\" must be a string (without NUL)", key);
        return -1;
    }
    *out = json_string_value(v);
    return 0;
}

static int get_bool(json_t *params, const char *key, int *out, rpc_call_t *call)
{
    json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_boolean(v)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params", "\"%s\" must be true or false",
                       key);
        return -1;
    }
    *out = json_is_true(v);
    return 0;
}

/* A non-negative integer up to `max`; absent or null leaves `*out`. */
static int get_uint(json_t *params, const char *key, long long max, long long *out,
                    rpc_call_t *call)
{
    json_t *v = json_object_get(params, key);
    if (!v || json_is_null(v))
        return 0;
    if (!json_is_integer(v) || json_integer_value(v) < 0 || json_integer_value(v) > max) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"%s\" must be an integer from 0 to %lld", key, max);
        return -1;
    }
    *out = json_integer_value(v);
    return 0;
}

/* A v1 info-hash: 40 hex digits (either case), lower-cased into `out`. */
static int parse_hash(const char *in, char out[BTSHIM_HASH_HEX])
{
    size_t i;
    if (strlen(in) != 40)
        return -1;
    for (i = 0; i < 40; i++) {
        char c = in[i];
        if (c >= 'A' && c <= 'F')
            c = (char)(c - 'A' + 'a');
        if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f')))
            return -1;
        out[i] = c;
    }
    out[40] = '\0';
    return 0;
}

/* ---- torrents ------------------------------------------------------------- */

static const char *const torrent_fields[] = {
    "id",         "hash",    "name",      "path",          "state",       "progress",
    "size",       "done",    "hashed",    "download_rate", "upload_rate", "uploaded",
    "peers",      "error",   "added",     "announce",      "kind",        "eta",
    "downloaded", "sources", "peer_list", "detail",        "completed",   "session_downloaded",
    NULL,
};

static const char *state_name(share_state_t st)
{
    switch (st) {
    case SHARE_HASHING:
        return "hashing";
    case SHARE_CHECKING:
        return "checking";
    case SHARE_SEEDING:
        return "seeding";
    case SHARE_ERROR:
        return "error";
    }
    return "error";
}

/* Bit i set: field torrent_fields[i] wanted. */
static int parse_fields(json_t *params, unsigned *mask, rpc_call_t *call)
{
    json_t *f = json_object_get(params, "fields"), *v;
    size_t i, j;

    *mask = ~0u;
    if (!f || json_is_null(f))
        return 0;
    if (!json_is_array(f)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"fields\" must be an array of field names");
        return -1;
    }
    *mask = 0;
    json_array_foreach(f, i, v)
    {
        const char *name = json_string_value(v);
        for (j = 0; name && torrent_fields[j]; j++)
            if (strcmp(torrent_fields[j], name) == 0)
                break;
        if (!name || !torrent_fields[j]) {
            rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                           "unknown field %s%.64s%s in \"fields\"", name ? "\"" : "",
                           name ? name : "(not a string)", name ? "\"" : "");
            return -1;
        }
        *mask |= 1u << j;
    }
    return 0;
}

/* A torrent as bt.get_torrents shows it: a share or a download. */
typedef struct tview {
    uint64_t id;
    const char *hash; /* "" while hashing */
    const char *name, *path, *kind, *state, *detail, *error;
    double progress;
    uint64_t size, done, hashed;
    int64_t added_ms, completed_ms;
    int have_status, announced_kind; /* 1: seeding and announced as a share */
    btshim_torrent_status_t st;
} tview_t;

static void view_of_share(agent_t *a, const share_info_t *sh, tview_t *v)
{
    memset(v, 0, sizeof *v);
    v->id = sh->id;
    v->hash = sh->hash;
    v->name = sh->name;
    v->path = sh->path;
    v->kind = "share";
    v->state = state_name(sh->state);
    v->detail = "";
    v->error = sh->error ? sh->error : "";
    v->size = sh->size;
    v->hashed = sh->hashed;
    v->added_ms = sh->added_ms;
    if (sh->hash[0] && sh->state != SHARE_HASHING && sh->state != SHARE_ERROR)
        v->have_status =
            btshim_torrent_status(a->bt, sh->hash, &v->st, sizeof v->st, NULL) == BTSHIM_OK;
    switch (sh->state) {
    case SHARE_HASHING:
        v->progress = sh->size ? (double)sh->hashed / (double)sh->size : 0;
        break;
    case SHARE_CHECKING:
        v->progress = v->have_status ? v->st.progress : 0;
        v->done = v->have_status ? v->st.done : 0;
        break;
    case SHARE_SEEDING:
        v->progress = 1;
        v->done = sh->size;
        v->announced_kind = 1;
        break;
    case SHARE_ERROR:
        break;
    }
}

static void view_of_download(agent_t *a, const dl_info_t *d, tview_t *v, size_t sources)
{
    memset(v, 0, sizeof *v);
    v->id = d->id;
    v->hash = d->hash;
    v->name = d->name;
    v->path = d->folder;
    v->kind = "download";
    v->state = downloads_state_name(d->state);
    v->error = d->error;
    v->added_ms = d->added_ms;
    v->completed_ms = d->completed_ms;
    v->have_status = d->have_status;
    v->st = d->st;
    v->size = d->have_status ? d->st.size : 0;
    v->done = d->have_status ? d->st.done : 0;
    v->progress = d->have_status ? d->st.progress : 0;
    if (d->complete && d->state == DL_SEEDING)
        v->progress = 1;
    v->announced_kind = d->complete && d->state == DL_SEEDING && a->s->share_downloads;
    if (d->state == DL_WAITING)
        v->detail = sources == 0 ? "no contact shares it (yet): it starts when one does"
                                 : "no source reachable yet: trying every address contacts "
                                   "announce";
    else if (d->state == DL_SEEDING && !a->s->share_downloads)
        v->detail = "complete; not announced (share_downloads is off)";
    else
        v->detail = "";
}

/* Which contact resource a peer is: its address (and port, when we
 * connected to it) among the sources' announced addresses. */
static json_t *peer_json(const btshim_peer_t *p, const contacts_source_t *src, size_t n)
{
    const char *jid = NULL, *res = NULL;
    char canon[SHARES_ADDR_MAX];
    size_t i, j;
    int exact = 0;
    if (shares_canon_address(p->address, canon, NULL) != SHARES_OK)
        n = 0;
    for (i = 0; i < n && !exact; i++) {
        size_t na = shares_item_address_count(src[i].item, src[i].resource);
        for (j = 0; j < na; j++) {
            shares_address_t ad;
            if (shares_item_address(src[i].item, src[i].resource, j, &ad) != 0 ||
                strcmp(canon, ad.address) != 0)
                continue;
            if (!jid || (!p->incoming && ad.port == p->port)) {
                jid = src[i].bare;
                res = shares_item_resource(src[i].item, src[i].resource);
            }
            if (!p->incoming && ad.port == p->port) {
                exact = 1;
                break;
            }
        }
    }
    json_t *o = json_pack("{sssiss?ss?sbsbsisisIsIsf}", "address", p->address, "port", (int)p->port,
                          "jid", jid, "resource", res, "incoming", p->incoming, "seed", p->seed,
                          "download_rate", p->download_rate, "upload_rate", p->upload_rate,
                          "downloaded", (json_int_t)p->downloaded, "uploaded",
                          (json_int_t)p->uploaded, "progress", p->progress);
    json_t *client = json_string(p->client); /* NULL when not UTF-8: what a peer says */
    if (o)
        json_object_set_new(o, "client", client ? client : json_string(""));
    else
        json_decref(client);
    return o;
}

static json_t *peer_list_json(agent_t *a, const char *hash)
{
    btshim_peer_t peers[64];
    contacts_source_t src[64];
    size_t np = 0, ns = 0, i;
    json_t *list = json_array();
    if (!list || !hash[0] ||
        btshim_torrent_peers(a->bt, hash, peers, sizeof peers[0], 64, &np, NULL) != BTSHIM_OK)
        return list;
    if (np > 64)
        np = 64;
    if (a->contacts)
        ns = contacts_sources(a->contacts, hash, src, 64);
    if (ns > 64)
        ns = 64;
    for (i = 0; i < np; i++)
        json_array_append_new(list, peer_json(&peers[i], src, ns));
    return list;
}

static json_t *torrent_json(agent_t *a, const tview_t *v, unsigned mask, size_t sources)
{
    json_t *o = json_object();
    const btshim_torrent_status_t *st = &v->st;
    int hs = v->have_status;

    if (!o)
        return NULL;
#define WANT(i) (mask & (1u << (i)))
    if (WANT(0))
        json_object_set_new(o, "id", json_integer((json_int_t)v->id));
    if (WANT(1))
        json_object_set_new(o, "hash", v->hash[0] ? json_string(v->hash) : json_null());
    if (WANT(2))
        json_object_set_new(o, "name", json_string(v->name));
    if (WANT(3))
        json_object_set_new(o, "path", json_string(v->path));
    if (WANT(4))
        json_object_set_new(o, "state", json_string(v->state));
    if (WANT(5))
        json_object_set_new(o, "progress", json_real(v->progress));
    if (WANT(6))
        json_object_set_new(o, "size", json_integer((json_int_t)v->size));
    if (WANT(7))
        json_object_set_new(o, "done", json_integer((json_int_t)v->done));
    if (WANT(8))
        json_object_set_new(o, "hashed", json_integer((json_int_t)v->hashed));
    if (WANT(9))
        json_object_set_new(o, "download_rate", json_integer(hs ? st->download_rate : 0));
    if (WANT(10))
        json_object_set_new(o, "upload_rate", json_integer(hs ? st->upload_rate : 0));
    if (WANT(11))
        json_object_set_new(o, "uploaded", json_integer((json_int_t)(hs ? st->total_uploaded : 0)));
    if (WANT(12))
        json_object_set_new(o, "peers", json_integer(hs ? st->peers : 0));
    if (WANT(13))
        json_object_set_new(o, "error", json_string(v->error));
    if (WANT(14))
        json_object_set_new(o, "added", json_integer((json_int_t)(v->added_ms / 1000)));
    if (WANT(15))
        json_object_set_new(o, "announce",
                            json_string(v->announced_kind ? agent_announce_state(a, v->hash)
                                        : strcmp(v->kind, "download") == 0 && !a->s->share_downloads
                                            ? "not announced: share_downloads is off"
                                            : "not announced: not seeding"));
    if (WANT(16))
        json_object_set_new(o, "kind", json_string(v->kind));
    if (WANT(17)) {
        /* seconds left at the present rate; null when unknown or done */
        json_t *eta = json_null();
        if (hs && st->download_rate > 0 && st->size > st->done && !st->paused)
            eta = json_integer((json_int_t)((st->size - st->done) / (uint64_t)st->download_rate));
        json_object_set_new(o, "eta", eta);
    }
    if (WANT(18))
        json_object_set_new(o, "downloaded",
                            json_integer((json_int_t)(hs ? st->total_downloaded : 0)));
    if (WANT(19))
        json_object_set_new(o, "sources", json_integer((json_int_t)sources));
    if (WANT(20))
        json_object_set_new(o, "peer_list", hs ? peer_list_json(a, v->hash) : json_array());
    if (WANT(21))
        json_object_set_new(o, "detail", json_string(v->detail));
    if (WANT(22))
        json_object_set_new(o, "completed",
                            v->completed_ms ? json_integer((json_int_t)(v->completed_ms / 1000))
                                            : json_null());
    if (WANT(23))
        json_object_set_new(o, "session_downloaded",
                            json_integer((json_int_t)(hs ? st->downloaded : 0)));
#undef WANT
    return o;
}

/* Contact resources whose items list `hash`. */
static size_t source_count(agent_t *a, const char *hash)
{
    return a->contacts && hash[0] ? contacts_sources(a->contacts, hash, NULL, 0) : 0;
}

static json_t *share_json(agent_t *a, const share_info_t *sh, unsigned mask)
{
    tview_t v;
    view_of_share(a, sh, &v);
    return torrent_json(a, &v, mask, source_count(a, sh->hash));
}

static json_t *download_json(agent_t *a, const dl_info_t *d, unsigned mask)
{
    tview_t v;
    size_t n = source_count(a, d->hash);
    view_of_download(a, d, &v, n);
    return torrent_json(a, &v, mask, n);
}

static rpc_status_t m_get_torrents(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"fields", "hash", NULL};
    agent_t *a = ctx;
    json_t *list;
    share_info_t sh;
    dl_info_t d;
    const char *hash_in;
    char hash[BTSHIM_HASH_HEX];
    unsigned mask;
    size_t i;

    if (only_known(params, known, call) || parse_fields(params, &mask, call) ||
        get_string(params, "hash", 0, &hash_in, call))
        return RPC_DONE;
    if (hash_in && parse_hash(hash_in, hash) != 0) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"hash\" must be 40 hexadecimal digits");
        return RPC_DONE;
    }
    if (!(list = json_array())) {
        rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "out of memory");
        return RPC_DONE;
    }
    for (i = 0; library_get(a->lib, i, &sh) == 0; i++)
        if (!hash_in || strcmp(sh.hash, hash) == 0)
            json_array_append_new(list, share_json(a, &sh, mask));
    for (i = 0; downloads_get(a->dl, i, &d) == 0; i++)
        if (!hash_in || strcmp(d.hash, hash) == 0)
            json_array_append_new(list, download_json(a, &d, mask));
    rpc_call_result(call, json_pack("{so}", "torrents", list));
    return RPC_DONE;
}

/* ---- sharing ------------------------------------------------------------- */

static json_t *added_json(const share_info_t *sh, int duplicate)
{
    return json_pack("{sIsosssssb}", "id", (json_int_t)sh->id, "hash",
                     sh->hash[0] ? json_string(sh->hash) : json_null(), "name", sh->name, "state",
                     state_name(sh->state), "duplicate", duplicate);
}

static int library_code(int code)
{
    switch (code) {
    case LIBRARY_EINVAL:
        return RPC_PATH_ERROR;
    case LIBRARY_ELIMIT:
        return RPC_LIMIT;
    case LIBRARY_ENOTFOUND:
        return RPC_NOT_FOUND;
    default:
        return RPC_INTERNAL_ERROR;
    }
}

static const char *library_name(int code)
{
    switch (code) {
    case LIBRARY_EINVAL:
        return "path_error";
    case LIBRARY_ELIMIT:
        return "limit";
    case LIBRARY_ENOTFOUND:
        return "not_found";
    default:
        return "internal";
    }
}

static rpc_status_t m_add_path(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"path", "wait", NULL};
    agent_t *a = ctx;
    const char *path;
    int wait = 0, duplicate = 0;
    uint64_t id;
    library_error_t err;
    share_info_t sh;

    if (only_known(params, known, call) || get_string(params, "path", 1, &path, call) ||
        get_bool(params, "wait", &wait, call))
        return RPC_DONE;
    if (a->stopping) {
        rpc_call_error(call, RPC_UNAVAILABLE, "unavailable", "the agent is stopping");
        return RPC_DONE;
    }
    if (path[0] != '/') {
        rpc_call_error(call, RPC_PATH_ERROR, "path_error",
                       "\"path\" must be absolute (the agent's working directory is not yours)");
        return RPC_DONE;
    }
    memset(&err, 0, sizeof err);
    if (library_add_path(a->lib, path, &id, &duplicate, &err) != LIBRARY_OK) {
        rpc_call_error(call, library_code(err.code), library_name(err.code), "%s", err.message);
        return RPC_DONE;
    }
    if (library_find(a->lib, NULL, id, &sh) != 0) {
        rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "the share vanished");
        return RPC_DONE;
    }
    if (!wait || sh.state != SHARE_HASHING) {
        rpc_call_result(call, added_json(&sh, duplicate));
        return RPC_DONE;
    }
    if (a->n_waiters == AGENT_MAX_WAITERS) {
        rpc_call_error(call, RPC_LIMIT, "limit",
                       "%d calls already wait for their hashing: poll bt.get_torrents instead",
                       AGENT_MAX_WAITERS);
        return RPC_DONE;
    }
    a->waiters[a->n_waiters].share_id = id;
    a->waiters[a->n_waiters].call = call;
    a->n_waiters++;
    return RPC_LATER;
}

void agent_rpc_job_ended(agent_t *a, const share_info_t *info)
{
    size_t i = 0;
    while (i < a->n_waiters) {
        rpc_call_t *call = a->waiters[i].call;
        if (a->waiters[i].share_id != info->id) {
            i++;
            continue;
        }
        a->waiters[i] = a->waiters[--a->n_waiters];
        if (info->state == SHARE_ERROR)
            rpc_call_error(call, RPC_FAILED, "failed", "%s: %s", info->path, info->error);
        else
            rpc_call_result(call, added_json(info, 0));
    }
}

void agent_rpc_fail_waiters(agent_t *a)
{
    while (a->n_waiters) {
        rpc_call_t *call = a->waiters[--a->n_waiters].call;
        rpc_call_error(call, RPC_UNAVAILABLE, "unavailable",
                       "the agent is stopping; the path was not shared");
    }
}

/* The hash or id of a torrent from `params` (exactly one of them). */
static int get_target(json_t *params, char hash[BTSHIM_HASH_HEX], long long *id, rpc_call_t *call)
{
    const char *hash_in;
    hash[0] = '\0';
    *id = 0;
    if (get_string(params, "hash", 0, &hash_in, call) ||
        get_uint(params, "id", (long long)INT64_MAX, id, call))
        return -1;
    if ((!hash_in) == (!*id)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "give either \"hash\" or \"id\"");
        return -1;
    }
    if (hash_in && parse_hash(hash_in, hash) != 0) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"hash\" must be 40 hexadecimal digits");
        return -1;
    }
    return 0;
}

static int dl_code(int code)
{
    switch (code) {
    case DL_EINVAL:
        return RPC_INVALID_PARAMS;
    case DL_ELIMIT:
        return RPC_LIMIT;
    case DL_ENOTFOUND:
        return RPC_NOT_FOUND;
    case DL_EIO:
        return RPC_PATH_ERROR;
    default:
        return RPC_INTERNAL_ERROR;
    }
}

static const char *dl_name(int code)
{
    switch (code) {
    case DL_EINVAL:
        return "invalid_params";
    case DL_ELIMIT:
        return "limit";
    case DL_ENOTFOUND:
        return "not_found";
    case DL_EIO:
        return "path_error";
    default:
        return "internal";
    }
}

static rpc_status_t m_del_torrent(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"hash", "id", "delete_data", NULL};
    agent_t *a = ctx;
    char hash[BTSHIM_HASH_HEX];
    long long id = 0;
    int delete_data = 0;
    library_error_t err;
    dl_error_t derr;
    dl_info_t d;

    if (only_known(params, known, call) || get_target(params, hash, &id, call) ||
        get_bool(params, "delete_data", &delete_data, call))
        return RPC_DONE;
    if (downloads_find(a->dl, hash[0] ? hash : NULL, (uint64_t)id, &d) == 0) {
        memset(&derr, 0, sizeof derr);
        if (downloads_remove(a->dl, d.hash, delete_data, &derr) != DL_OK) {
            rpc_call_error(call, dl_code(derr.code), dl_name(derr.code), "%s", derr.message);
            return RPC_DONE;
        }
        rpc_call_result(call, json_pack("{sbsb}", "removed", 1, "data_deleted", delete_data));
        return RPC_DONE;
    }
    if (library_find(a->lib, hash[0] ? hash : NULL, (uint64_t)id, NULL) != 0) {
        rpc_call_error(call, RPC_NOT_FOUND, "not_found", "no torrent %s",
                       hash[0] ? hash : "with that id");
        return RPC_DONE;
    }
    if (delete_data) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"delete_data\" applies to downloads only: removing a share never "
                       "deletes your files");
        return RPC_DONE;
    }
    memset(&err, 0, sizeof err);
    if (library_remove(a->lib, hash[0] ? hash : NULL, (uint64_t)id, &err) != LIBRARY_OK) {
        rpc_call_error(call, library_code(err.code), library_name(err.code), "%s", err.message);
        return RPC_DONE;
    }
    rpc_call_result(call, json_pack("{sbsb}", "removed", 1, "data_deleted", 0));
    return RPC_DONE;
}

static rpc_status_t m_add_torrent_by_hash(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"hash", "magnet", "save_path", "name", NULL};
    agent_t *a = ctx;
    const char *in, *magnet, *save_path, *name_in;
    char hash[BTSHIM_HASH_HEX], name[256] = "";
    int v2_only = 0, duplicate = 0;
    btshim_error_t berr;
    dl_error_t derr;
    share_info_t sh;
    dl_info_t d;
    contacts_source_t src;

    if (only_known(params, known, call) || get_string(params, "hash", 0, &in, call) ||
        get_string(params, "magnet", 0, &magnet, call) ||
        get_string(params, "save_path", 0, &save_path, call) ||
        get_string(params, "name", 0, &name_in, call))
        return RPC_DONE;
    if ((!in) == (!magnet)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "give either \"hash\" (an info-hash or a magnet URI) or \"magnet\"");
        return RPC_DONE;
    }
    if (a->stopping) {
        rpc_call_error(call, RPC_UNAVAILABLE, "unavailable", "the agent is stopping");
        return RPC_DONE;
    }
    if (btshim_parse_magnet(in ? in : magnet, hash, name, sizeof name, &v2_only, &berr) !=
        BTSHIM_OK) {
        rpc_call_error(call, RPC_INVALID_PARAMS, v2_only ? "v2_hash" : "invalid_params", "%s",
                       berr.message);
        return RPC_DONE;
    }
    if (library_find(a->lib, hash, 0, &sh) == 0) {
        rpc_call_result(call, json_pack("{sIsssssssssb}", "id", (json_int_t)sh.id, "hash", hash,
                                        "name", sh.name, "kind", "share", "state",
                                        state_name(sh.state), "duplicate", 1));
        return RPC_DONE;
    }
    /* a name for its folder: the caller's, the magnet's, else a contact's */
    if (name_in && *name_in)
        snprintf(name, sizeof name, "%s", name_in);
    if (!name[0] && a->contacts && contacts_sources(a->contacts, hash, &src, 1) > 0) {
        shares_share_t ss;
        if (shares_item_share(src.item, src.resource, src.share, &ss) == 0)
            snprintf(name, sizeof name, "%s", ss.name);
    }
    memset(&derr, 0, sizeof derr);
    if (downloads_add(a->dl, hash, name[0] ? name : NULL, save_path, &d, &duplicate, &derr) !=
        DL_OK) {
        rpc_call_error(call, dl_code(derr.code), dl_name(derr.code), "%s", derr.message);
        return RPC_DONE;
    }
    rpc_call_result(call, json_pack("{sIsssssssssssbsI}", "id", (json_int_t)d.id, "hash", d.hash,
                                    "name", d.name, "kind", "download", "state",
                                    downloads_state_name(d.state), "path", d.folder, "duplicate",
                                    duplicate, "sources", (json_int_t)source_count(a, d.hash)));
    return RPC_DONE;
}

static rpc_status_t pause_or_resume(agent_t *a, json_t *params, rpc_call_t *call, int pause)
{
    static const char *const known[] = {"hash", "id", NULL};
    char hash[BTSHIM_HASH_HEX];
    long long id;
    dl_error_t derr;
    dl_info_t d;

    if (only_known(params, known, call) || get_target(params, hash, &id, call))
        return RPC_DONE;
    if (downloads_find(a->dl, hash[0] ? hash : NULL, (uint64_t)id, &d) != 0) {
        if (library_find(a->lib, hash[0] ? hash : NULL, (uint64_t)id, NULL) == 0)
            rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                           "a share of your own files is not paused: remove it to stop "
                           "sharing it");
        else
            rpc_call_error(call, RPC_NOT_FOUND, "not_found", "no torrent %s",
                           hash[0] ? hash : "with that id");
        return RPC_DONE;
    }
    memset(&derr, 0, sizeof derr);
    if (downloads_pause(a->dl, d.hash, pause, &derr) != DL_OK) {
        rpc_call_error(call, dl_code(derr.code), dl_name(derr.code), "%s", derr.message);
        return RPC_DONE;
    }
    downloads_find(a->dl, d.hash, 0, &d);
    rpc_call_result(call,
                    json_pack("{ssss}", "hash", d.hash, "state", downloads_state_name(d.state)));
    return RPC_DONE;
}

static rpc_status_t m_pause(void *ctx, json_t *params, rpc_call_t *call)
{
    return pause_or_resume(ctx, params, call, 1);
}

static rpc_status_t m_resume(void *ctx, json_t *params, rpc_call_t *call)
{
    return pause_or_resume(ctx, params, call, 0);
}

static rpc_status_t m_set_rates(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"download", "upload", NULL};
    agent_t *a = ctx;
    long long down = a->download_rate_limit / 1024, up = a->upload_rate_limit / 1024;

    if (only_known(params, known, call) || get_uint(params, "download", 2097151, &down, call) ||
        get_uint(params, "upload", 2097151, &up, call))
        return RPC_DONE;
    if (agent_set_rates(a, down * 1024, up * 1024) != 0) {
        rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "the session refused the limits");
        return RPC_DONE;
    }
    rpc_call_result(call,
                    json_pack("{sIsI}", "download", (json_int_t)down, "upload", (json_int_t)up));
    return RPC_DONE;
}

static rpc_status_t m_status(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {NULL};
    agent_t *a = ctx;
    json_t *ports, *shares;
    uint16_t p[8];
    size_t n = 0, i, count[5] = {0};
    share_info_t sh;

    if (only_known(params, known, call))
        return RPC_DONE;
    ports = json_array();
    if (btshim_session_listen_ports(a->bt, p, 8, &n, NULL) == BTSHIM_OK)
        for (i = 0; i < n; i++)
            json_array_append_new(ports, json_integer(p[i]));
    for (i = 0; library_get(a->lib, i, &sh) == 0; i++)
        if ((int)sh.state >= 1 && (int)sh.state <= 4)
            count[sh.state]++;
    shares = json_pack("{sIsIsIsI}", "seeding", (json_int_t)count[SHARE_SEEDING], "hashing",
                       (json_int_t)count[SHARE_HASHING], "checking",
                       (json_int_t)count[SHARE_CHECKING], "error", (json_int_t)count[SHARE_ERROR]);
    {
        json_t *st = json_pack("{sssssssosos{sIsI}}", "version", BITWEEN_VERSION, "backend",
                               btshim_backend(), "state_dir", a->s->state_dir, "listen_ports",
                               ports, "shares", shares, "rate_limits", "download",
                               (json_int_t)(a->download_rate_limit / 1024), "upload",
                               (json_int_t)(a->upload_rate_limit / 1024));
        json_t *addrs = json_array();
        announce_addr_t list[ANNOUNCE_MAX_ADDRESSES];
        size_t na = addresses_collect(&a->addrs, list, ANNOUNCE_MAX_ADDRESSES);
        for (i = 0; addrs && i < na; i++)
            json_array_append_new(
                addrs, json_pack("{sssi}", "address", list[i].address, "port", (int)list[i].port));
        if (st) {
            json_object_set_new(st, "jid", json_string(a->s->jid ? a->s->jid : ""));
            json_object_set_new(st, "resource", json_string(a->s->resource ? a->s->resource : ""));
            json_object_set_new(st, "addresses", addrs ? addrs : json_array());
            json_object_set_new(st, "xmpp",
                                json_pack("{sssssb}", "state", agent_xmpp_state_name(a), "error",
                                          a->xmpp_error, "tls",
                                          a->conn && a->xmpp_state == AGENT_XMPP_ONLINE &&
                                              xmpp_conn_is_secured(a->conn)));
            if (a->reg) {
                const announce_set_t *acked = registration_acked(a->reg);
                const announce_quota_t *q = registration_quota(a->reg);
                int64_t when = 0;
                const char *refusal = registration_last_refusal(a->reg, &when);
                json_object_set_new(
                    st, "registration",
                    json_pack("{sssssIsIsIsssI}", "state",
                              a->xmpp_state == AGENT_XMPP_ONLINE ? registration_state(a->reg)
                                                                 : "offline",
                              "component", a->s->component_jid, "seq",
                              (json_int_t)registration_seq(a->reg), "announced",
                              (json_int_t)(acked ? acked->n_shares : 0), "not_announced",
                              (json_int_t)registration_over_quota(a->reg, NULL), "last_refusal",
                              refusal, "last_refusal_at", (json_int_t)(when / 1000)));
                json_object_set_new(
                    st, "quotas",
                    json_pack("{sIsIsIsI}", "max_shares_per_resource", (json_int_t)q->max_shares,
                              "max_addresses_per_resource", (json_int_t)q->max_addresses,
                              "max_name_bytes", (json_int_t)q->max_name_bytes, "max_item_bytes",
                              (json_int_t)q->max_item_bytes));
            }
            json_object_set_new(
                st, "contacts",
                json_integer(a->contacts ? (json_int_t)contacts_count(a->contacts) : 0));
        } else {
            json_decref(addrs);
        }
        rpc_call_result(call, st);
    }
    return RPC_DONE;
}

/* ---- contacts' shares ------------------------------------------------------ */

/* Whether `name` holds `query`, ASCII letters compared without case. */
static int contains_nocase(const char *name, const char *query)
{
    size_t n = strlen(query), i, j;
    if (!n)
        return 1;
    for (i = 0; name[i]; i++) {
        for (j = 0; j < n && name[i + j]; j++) {
            char x = name[i + j], y = query[j];
            if (x >= 'A' && x <= 'Z')
                x = (char)(x - 'A' + 'a');
            if (y >= 'A' && y <= 'Z')
                y = (char)(y - 'A' + 'a');
            if (x != y)
                break;
        }
        if (j == n)
            return 1;
    }
    return 0;
}

static json_t *addresses_json(const shares_item_t *item, size_t ri)
{
    json_t *list = json_array();
    size_t ai;
    for (ai = 0; list && ai < shares_item_address_count(item, ri); ai++) {
        shares_address_t ad;
        if (shares_item_address(item, ri, ai, &ad) == 0)
            json_array_append_new(list,
                                  json_pack("{sssi}", "address", ad.address, "port", (int)ad.port));
    }
    return list;
}

static rpc_status_t m_get_shares(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"jid", "query", NULL};
    agent_t *a = ctx;
    const char *jid, *query, *bare;
    const shares_item_t *item;
    json_t *out;
    size_t i, ri, si;

    if (only_known(params, known, call) || get_string(params, "jid", 0, &jid, call) ||
        get_string(params, "query", 0, &query, call))
        return RPC_DONE;
    if (!(out = json_array())) {
        rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "out of memory");
        return RPC_DONE;
    }
    for (i = 0; a->contacts && contacts_get(a->contacts, i, &bare, &item) == 0; i++) {
        json_t *resources = json_array();
        if (jid && strcasecmp(jid, bare) != 0) {
            json_decref(resources);
            continue;
        }
        for (ri = 0; resources && ri < shares_item_resource_count(item); ri++) {
            json_t *shares = json_array();
            for (si = 0; shares && si < shares_item_share_count(item, ri); si++) {
                shares_share_t sh;
                if (shares_item_share(item, ri, si, &sh) != 0 ||
                    (query && !contains_nocase(sh.name, query)))
                    continue;
                json_array_append_new(shares, json_pack("{sssssI}", "hash", sh.hash, "name",
                                                        sh.name, "size", (json_int_t)sh.size));
            }
            if (query && json_array_size(shares) == 0) {
                json_decref(shares);
                continue;
            }
            json_array_append_new(
                resources, json_pack("{sssoso}", "resource", shares_item_resource(item, ri),
                                     "shares", shares, "addresses", addresses_json(item, ri)));
        }
        if (query && json_array_size(resources) == 0) {
            json_decref(resources);
            continue;
        }
        json_array_append_new(out, json_pack("{ssso}", "jid", bare, "resources", resources));
    }
    rpc_call_result(call, json_pack("{so}", "contacts", out));
    return RPC_DONE;
}

typedef struct hashes_ctx {
    agent_t *a;
    json_t *list;
} hashes_ctx_t;

/* with_sources: 0 none, 1 with their addresses, 2 who only */
static json_t *hash_json(agent_t *a, const char *hash, int with_sources)
{
    contacts_source_t src[64];
    size_t n = contacts_sources(a->contacts, hash, src, 64), i;
    shares_share_t sh;
    json_t *o, *sources;
    if (!n || shares_item_share(src[0].item, src[0].resource, src[0].share, &sh) != 0)
        return NULL;
    o = json_pack("{sssssIsI}", "hash", hash, "name", sh.name, "size", (json_int_t)sh.size,
                  "source_count", (json_int_t)n);
    if (!o || !with_sources)
        return o;
    sources = json_array();
    for (i = 0; sources && i < n && i < 64; i++) {
        json_t *s = json_pack("{ssss}", "jid", src[i].bare, "resource",
                              shares_item_resource(src[i].item, src[i].resource));
        if (s && with_sources == 1)
            json_object_set_new(s, "addresses", addresses_json(src[i].item, src[i].resource));
        json_array_append_new(sources, s);
    }
    json_object_set_new(o, "sources", sources ? sources : json_array());
    return o;
}

static void each_hash(void *arg, const char *hash)
{
    hashes_ctx_t *h = arg;
    json_t *o = hash_json(h->a, hash, 0);
    if (o)
        json_array_append_new(h->list, o);
}

static rpc_status_t m_get_hashes(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"hash", NULL};
    agent_t *a = ctx;
    const char *hash_in;
    char hash[BTSHIM_HASH_HEX];
    hashes_ctx_t h = {a, json_array()};

    if (!h.list || only_known(params, known, call) ||
        get_string(params, "hash", 0, &hash_in, call)) {
        json_decref(h.list);
        if (!h.list)
            rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "out of memory");
        return RPC_DONE;
    }
    if (hash_in && parse_hash(hash_in, hash) != 0) {
        json_decref(h.list);
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"hash\" must be 40 hexadecimal digits");
        return RPC_DONE;
    }
    if (a->contacts && hash_in) {
        json_t *o = hash_json(a, hash, 1);
        if (o)
            json_array_append_new(h.list, o);
    } else if (a->contacts) {
        contacts_each_hash(a->contacts, each_hash, &h);
    }
    rpc_call_result(call, json_pack("{so}", "hashes", h.list));
    return RPC_DONE;
}

/* xmpp.search: what contacts share, by name, one entry per hash. */
typedef struct search_ctx {
    agent_t *a;
    const char *query;
    json_t **hits;
    size_t n, max;
} search_ctx_t;

static void search_hash(void *arg, const char *hash)
{
    search_ctx_t *sc = arg;
    json_t *o;
    contacts_source_t src;
    shares_share_t sh;
    if (sc->n == sc->max || contacts_sources(sc->a->contacts, hash, &src, 1) == 0 ||
        shares_item_share(src.item, src.resource, src.share, &sh) != 0 ||
        !contains_nocase(sh.name, sc->query) || !(o = hash_json(sc->a, hash, 2)))
        return;
    json_object_set_new(o, "here",
                        library_find(sc->a->lib, hash, 0, NULL) == 0    ? json_string("share")
                        : downloads_find(sc->a->dl, hash, 0, NULL) == 0 ? json_string("download")
                                                                        : json_null());
    sc->hits[sc->n++] = o;
}

static int by_name(const void *x, const void *y)
{
    json_t *const *p = x, *const *q = y;
    int c = strcasecmp(json_string_value(json_object_get(*p, "name")),
                       json_string_value(json_object_get(*q, "name")));
    return c ? c
             : strcmp(json_string_value(json_object_get(*p, "hash")),
                      json_string_value(json_object_get(*q, "hash")));
}

static rpc_status_t m_search(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"query", "limit", NULL};
    agent_t *a = ctx;
    const char *query;
    long long limit = 100;
    search_ctx_t sc;
    json_t *list;
    size_t i;

    if (only_known(params, known, call) || get_string(params, "query", 1, &query, call) ||
        get_uint(params, "limit", 1000, &limit, call))
        return RPC_DONE;
    memset(&sc, 0, sizeof sc);
    sc.a = a;
    sc.query = query;
    sc.max = (size_t)limit;
    if (!(list = json_array()) || (sc.max && !(sc.hits = calloc(sc.max, sizeof *sc.hits)))) {
        json_decref(list);
        rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "out of memory");
        return RPC_DONE;
    }
    if (a->contacts && sc.max)
        contacts_each_hash(a->contacts, search_hash, &sc);
    if (sc.n > 1)
        qsort(sc.hits, sc.n, sizeof *sc.hits, by_name);
    for (i = 0; i < sc.n; i++)
        json_array_append_new(list, sc.hits[i]);
    free(sc.hits);
    rpc_call_result(call, json_pack("{so}", "results", list));
    return RPC_DONE;
}

const rpc_method_t agent_rpc_methods[] = {
    {"agent.status", m_status},
    {"bt.add_path", m_add_path},
    {"bt.add_torrent_by_hash", m_add_torrent_by_hash},
    {"bt.del_torrent", m_del_torrent},
    {"bt.get_torrents", m_get_torrents},
    {"bt.pause", m_pause},
    {"bt.resume", m_resume},
    {"bt.set_rates", m_set_rates},
    {"xmpp.get_hashes", m_get_hashes},
    {"xmpp.get_shares", m_get_shares},
    {"xmpp.search", m_search},
};
const size_t agent_rpc_methods_count = sizeof agent_rpc_methods / sizeof agent_rpc_methods[0];
