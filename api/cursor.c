/* SPDX-License-Identifier: MIT */
/*
 * Opaque pagination cursors: the keyset position of the last item of a
 * page, as a small JSON array tagged with the listing it belongs to
 * (["u", jid] for users, ["s", name, resource_id, hash] for a name
 * search), encoded as base64url without padding. Decoding is strict: a
 * cursor that was not made by this code (bad base64url, other tag, wrong
 * types, invalid JID or hash) is refused, so clients get 400 bad_cursor
 * rather than a silently wrong page.
 */
#include <stdlib.h>
#include <string.h>

#include "api_private.h"
#include "shares.h"

static char *encode_json(json_t *v)
{
    char *text, *out;
    if (!v)
        return NULL;
    text = json_dumps(v, JSON_COMPACT);
    json_decref(v);
    if (!text)
        return NULL;
    out = api_b64url_encode((const unsigned char *)text, strlen(text));
    free(text);
    return out;
}

/* Decode the base64url text and parse the JSON array tagged `tag` with
 * `n` elements. Returns 0 with a new reference in `*out`, -1, -2. */
static int decode_json(const char *text, const char *tag, size_t n, json_t **out)
{
    unsigned char *raw;
    size_t len;
    json_t *v;
    json_t *t;
    int rc;

    *out = NULL;
    if (!text || !*text || strlen(text) > API_CURSOR_MAX)
        return -1;
    rc = api_b64url_decode(text, strlen(text), &raw, &len);
    if (rc)
        return rc;
    v = json_loadb((const char *)raw, len, JSON_REJECT_DUPLICATES, NULL);
    free(raw);
    if (!v)
        return -1;
    t = json_array_get(v, 0);
    if (!json_is_array(v) || json_array_size(v) != n || !json_is_string(t) ||
        strcmp(json_string_value(t), tag) != 0) {
        json_decref(v);
        return -1;
    }
    *out = v;
    return 0;
}

/* A string element without NUL bytes; NULL otherwise. */
static const char *plain_string(json_t *s)
{
    if (!json_is_string(s) || strlen(json_string_value(s)) != json_string_length(s))
        return NULL;
    return json_string_value(s);
}

char *api_cursor_users_encode(const char *jid)
{
    return encode_json(json_pack("[s,s]", "u", jid));
}

int api_cursor_users_decode(const char *text, char **jid)
{
    json_t *v;
    const char *s;
    char msg[128];
    int rc = decode_json(text, "u", 2, &v);

    *jid = NULL;
    if (rc)
        return rc;
    s = plain_string(json_array_get(v, 1));
    if (!s || !(*jid = strdup(s))) {
        json_decref(v);
        return s ? -2 : -1;
    }
    json_decref(v);
    if (api_jid_check(*jid, msg, sizeof msg) != 0) {
        free(*jid);
        *jid = NULL;
        return -1;
    }
    return 0;
}

char *api_cursor_search_encode(const char *name, int64_t resource_id, const char *hash)
{
    return encode_json(json_pack("[s,s,I,s]", "s", name, (json_int_t)resource_id, hash));
}

void api_search_cursor_clear(api_search_cursor_t *c)
{
    free(c->name);
    free(c->hash);
    memset(c, 0, sizeof *c);
}

int api_cursor_search_decode(const char *text, api_search_cursor_t *out)
{
    json_t *v, *id;
    const char *name, *hash;
    int rc = decode_json(text, "s", 4, &v);

    memset(out, 0, sizeof *out);
    if (rc)
        return rc;
    name = plain_string(json_array_get(v, 1));
    id = json_array_get(v, 2);
    hash = plain_string(json_array_get(v, 3));
    if (!name || !*name || !json_is_integer(id) || json_integer_value(id) < 0 || !hash ||
        shares_validate_hash(hash, NULL) != SHARES_OK) {
        json_decref(v);
        return -1;
    }
    out->name = strdup(name);
    out->hash = strdup(hash);
    out->resource_id = (int64_t)json_integer_value(id);
    json_decref(v);
    if (!out->name || !out->hash) {
        api_search_cursor_clear(out);
        return -2;
    }
    return 0;
}
