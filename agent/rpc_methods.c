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
    "id",    "hash",  "name",   "path",          "state",       "progress",
    "size",  "done",  "hashed", "download_rate", "upload_rate", "uploaded",
    "peers", "error", "added",  "announce",      NULL,
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

static json_t *torrent_json(agent_t *a, const share_info_t *sh, unsigned mask)
{
    json_t *o = json_object();
    btshim_torrent_status_t st;
    int have_status = 0;
    double progress = 0;
    uint64_t done = 0;

    if (!o)
        return NULL;
    memset(&st, 0, sizeof st);
    if (sh->hash[0] && sh->state != SHARE_HASHING && sh->state != SHARE_ERROR)
        have_status = btshim_torrent_status(a->bt, sh->hash, &st, sizeof st, NULL) == BTSHIM_OK;
    switch (sh->state) {
    case SHARE_HASHING:
        progress = sh->size ? (double)sh->hashed / (double)sh->size : 0;
        break;
    case SHARE_CHECKING:
        progress = have_status ? st.progress : 0;
        done = have_status ? st.done : 0;
        break;
    case SHARE_SEEDING:
        progress = 1;
        done = sh->size;
        break;
    case SHARE_ERROR:
        break;
    }
#define WANT(i) (mask & (1u << (i)))
    if (WANT(0))
        json_object_set_new(o, "id", json_integer((json_int_t)sh->id));
    if (WANT(1))
        json_object_set_new(o, "hash", sh->hash[0] ? json_string(sh->hash) : json_null());
    if (WANT(2))
        json_object_set_new(o, "name", json_string(sh->name));
    if (WANT(3))
        json_object_set_new(o, "path", json_string(sh->path));
    if (WANT(4))
        json_object_set_new(o, "state", json_string(state_name(sh->state)));
    if (WANT(5))
        json_object_set_new(o, "progress", json_real(progress));
    if (WANT(6))
        json_object_set_new(o, "size", json_integer((json_int_t)sh->size));
    if (WANT(7))
        json_object_set_new(o, "done", json_integer((json_int_t)done));
    if (WANT(8))
        json_object_set_new(o, "hashed", json_integer((json_int_t)sh->hashed));
    if (WANT(9))
        json_object_set_new(o, "download_rate", json_integer(have_status ? st.download_rate : 0));
    if (WANT(10))
        json_object_set_new(o, "upload_rate", json_integer(have_status ? st.upload_rate : 0));
    if (WANT(11))
        json_object_set_new(o, "uploaded",
                            json_integer((json_int_t)(have_status ? st.uploaded : 0)));
    if (WANT(12))
        json_object_set_new(o, "peers", json_integer(have_status ? st.peers : 0));
    if (WANT(13))
        json_object_set_new(o, "error", json_string(sh->error ? sh->error : ""));
    if (WANT(14))
        json_object_set_new(o, "added", json_integer((json_int_t)(sh->added_ms / 1000)));
    if (WANT(15))
        json_object_set_new(o, "announce",
                            json_string(sh->state == SHARE_SEEDING
                                            ? agent_announce_state(a, sh->hash)
                                            : "not announced: not seeding"));
#undef WANT
    return o;
}

static rpc_status_t m_get_torrents(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"fields", "hash", NULL};
    agent_t *a = ctx;
    json_t *list;
    share_info_t sh;
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
            json_array_append_new(list, torrent_json(a, &sh, mask));
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

static rpc_status_t m_del_torrent(void *ctx, json_t *params, rpc_call_t *call)
{
    static const char *const known[] = {"hash", "id", "delete_data", NULL};
    agent_t *a = ctx;
    const char *hash_in;
    char hash[BTSHIM_HASH_HEX] = "";
    long long id = 0;
    int delete_data = 0;
    library_error_t err;

    if (only_known(params, known, call) || get_string(params, "hash", 0, &hash_in, call) ||
        get_uint(params, "id", (long long)INT64_MAX, &id, call) ||
        get_bool(params, "delete_data", &delete_data, call))
        return RPC_DONE;
    if ((!hash_in) == (!id)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "give either \"hash\" or \"id\"");
        return RPC_DONE;
    }
    if (hash_in && parse_hash(hash_in, hash) != 0) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"hash\" must be 40 hexadecimal digits");
        return RPC_DONE;
    }
    if (library_find(a->lib, hash_in ? hash : NULL, (uint64_t)id, NULL) != 0) {
        rpc_call_error(call, RPC_NOT_FOUND, "not_found", "no torrent %s",
                       hash_in ? hash : "with that id");
        return RPC_DONE;
    }
    if (delete_data) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"delete_data\" applies to downloads only: removing a share never "
                       "deletes your files");
        return RPC_DONE;
    }
    memset(&err, 0, sizeof err);
    if (library_remove(a->lib, hash_in ? hash : NULL, (uint64_t)id, &err) != LIBRARY_OK) {
        rpc_call_error(call, library_code(err.code), library_name(err.code), "%s", err.message);
        return RPC_DONE;
    }
    rpc_call_result(call, json_pack("{sb}", "removed", 1));
    return RPC_DONE;
}

static rpc_status_t m_add_torrent_by_hash(void *ctx, json_t *params, rpc_call_t *call)
{
    (void)ctx;
    (void)params;
    rpc_call_error(call, RPC_NOT_IMPLEMENTED, "not_implemented",
                   "downloading from contacts is not implemented in this version");
    return RPC_DONE;
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
    for (i = 0; sources && i < n && i < 64; i++)
        json_array_append_new(sources,
                              json_pack("{ssssso}", "jid", src[i].bare, "resource",
                                        shares_item_resource(src[i].item, src[i].resource),
                                        "addresses", addresses_json(src[i].item, src[i].resource)));
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

const rpc_method_t agent_rpc_methods[] = {
    {"agent.status", m_status},
    {"bt.add_path", m_add_path},
    {"bt.add_torrent_by_hash", m_add_torrent_by_hash},
    {"bt.del_torrent", m_del_torrent},
    {"bt.get_torrents", m_get_torrents},
    {"bt.set_rates", m_set_rates},
    {"xmpp.get_hashes", m_get_hashes},
    {"xmpp.get_shares", m_get_shares},
};
const size_t agent_rpc_methods_count = sizeof agent_rpc_methods / sizeof agent_rpc_methods[0];
