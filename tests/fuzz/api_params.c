/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the admin API's parsers of what a client puts in a request
 * (api/util.c, api/cursor.c, api/router.c, through api_private.h). The
 * first byte picks the parser, the rest is the value:
 *
 *   'r'  method (next byte) and path: route match, percent decoding of the
 *        captured segments and the handlers' checks (JID, hash, resource)
 *   'j'  a JID path segment: percent decoding, then the JID check
 *   'h'  a hash path segment (as GET /api/v1/shares/{hash})
 *   'c'  a users cursor;  's'  a search cursor
 *   'S'  search cursor fields (name NUL id NUL hash): encode, then decode
 *   'l'  a limit;  'q'  a search text;  'a'  an Authorization header
 *   'p'  percent decoding;  'b'  base64url decoding and encoding
 *
 * (any other byte picks one of these by its value). Besides not crashing,
 * each parser keeps its promises: accepted values are in canonical form
 * and accepted again unchanged, an encoder's output decodes to its input,
 * the strict decoders accept exactly one text per value, and refusals come
 * with a printable message.
 */
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "api_private.h"
#include "fuzz.h"
#include "shares.h"

#define TOKEN "s3cret-token"

static const char modes[] = "rjhcsSlqapb";

/* After a successful api_jid_check(): canonical, and a fixed point. */
static void check_good_jid(const char *jid)
{
    char copy[API_JID_MAX + 1], msg[128], *dec = NULL, *cur;
    size_t n = strlen(jid), i;
    int rc;

    FUZZ_CHECK(n >= 3 && n <= API_JID_MAX);
    FUZZ_CHECK(strchr(jid, '@') == strrchr(jid, '@') && strchr(jid, '@') != NULL);
    FUZZ_CHECK(strchr(jid, '/') == NULL);
    FUZZ_CHECK(fuzz_text_safe(jid));
    for (i = 0; i < n; i++)
        FUZZ_CHECK(jid[i] < 'A' || jid[i] > 'Z');
    memcpy(copy, jid, n + 1);
    FUZZ_CHECK(api_jid_check(copy, msg, sizeof msg) == 0 && strcmp(copy, jid) == 0);

    cur = api_cursor_users_encode(jid);
    FUZZ_CHECK(cur != NULL);
    rc = api_cursor_users_decode(cur, &dec);
    FUZZ_CHECK(rc == 0 && dec != NULL && strcmp(dec, jid) == 0);
    free(dec);
    free(cur);
}

/* api_jid_check() on a copy of `s`; checks either outcome. */
static void jid(const char *s)
{
    char *copy = strdup(s), msg[128] = "";

    FUZZ_CHECK(copy != NULL);
    if (api_jid_check(copy, msg, sizeof msg) == 0)
        check_good_jid(copy);
    else
        FUZZ_CHECK(msg[0] != '\0' && fuzz_text_safe(msg));
    free(copy);
}

/* A path segment as api.c takes it: percent-decoded first. */
static void jid_segment(const char *p, size_t n)
{
    char *dec = NULL;
    size_t len = 0;

    if (api_percent_decode(p, n, &dec, &len) == 0) {
        FUZZ_CHECK(strlen(dec) == len);
        jid(dec);
    }
    free(dec);
}

/* The check of GET /api/v1/shares/{hash}. */
static void hash(const char *s)
{
    shares_error_t err = {0};
    size_t n = strlen(s);

    if (n < SHARES_HASH_MAX && shares_validate_hash(s, &err) == SHARES_OK)
        FUZZ_CHECK((n == 40 || n == 64) && strspn(s, "0123456789abcdefABCDEF") == n);
    else if (n < SHARES_HASH_MAX)
        FUZZ_CHECK(err.message[0] != '\0' && fuzz_text_safe(err.message));
}

/* The check of DELETE .../resources/{resource}. */
static void resource(const char *s)
{
    shares_error_t err = {0};

    if (shares_validate_resource(s, SHARES_DEFAULT_MAX_RESOURCE_BYTES, &err) == SHARES_OK)
        FUZZ_CHECK(s[0] != '\0' && strlen(s) <= SHARES_DEFAULT_MAX_RESOURCE_BYTES &&
                   fuzz_text_safe(s));
    else
        FUZZ_CHECK(err.message[0] != '\0' && fuzz_text_safe(err.message));
}

static void route(const uint8_t *data, size_t size)
{
    static const char *const methods[] = {"GET", "HEAD", "POST", "DELETE", "PUT", "get", ""};
    const api_route_t *routes;
    api_param_t params[API_MAX_PARAMS];
    char allow[64], *path;
    size_t n_routes = api_routes(&routes), index = SIZE_MAX, np = 0, i, plen;
    int rc;

    if (size < 1)
        return;
    path = fuzz_cstr(data + 1, size - 1);
    plen = strlen(path);
    rc = api_route_match(methods[data[0] % 7], path, &index, params, &np, allow, sizeof allow);
    FUZZ_CHECK(memchr(allow, '\0', sizeof allow) != NULL);
    if (rc == API_MATCH_BAD_METHOD)
        FUZZ_CHECK(allow[0] != '\0');
    if (rc != API_MATCH_OK) {
        FUZZ_CHECK(rc == API_MATCH_NOT_FOUND || rc == API_MATCH_BAD_METHOD);
        free(path);
        return;
    }
    FUZZ_CHECK(index < n_routes && np <= API_MAX_PARAMS);
    for (i = 0; i < np; i++) {
        char *dec = NULL;
        size_t len = 0;

        FUZZ_CHECK(params[i].p >= path && params[i].n > 0 &&
                   params[i].p + params[i].n <= path + plen);
        FUZZ_CHECK(memchr(params[i].p, '/', params[i].n) == NULL);
        if (api_percent_decode(params[i].p, params[i].n, &dec, &len) != 0)
            continue;
        /* the handlers' checks: {jid} first, then {resource} or {hash} */
        if (strstr(routes[index].pattern, "/shares/"))
            hash(dec);
        else if (i == 0)
            jid(dec);
        else
            resource(dec);
        free(dec);
    }
    free(path);
}

static void users_cursor(const char *s)
{
    char sentinel = 0, *jid_out = &sentinel; /* must be reset */
    int rc = api_cursor_users_decode(s, &jid_out);

    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0)
        check_good_jid(jid_out);
    else
        FUZZ_CHECK(jid_out == NULL);
    free(jid_out);
}

/* encode(fields) decodes to the same fields. */
static void search_roundtrip(const char *name, int64_t id, const char *h)
{
    api_search_cursor_t c;
    char *cur = api_cursor_search_encode(name, id, h);

    if (!cur)
        return; /* e.g. a name that is not UTF-8: never comes from the database */
    FUZZ_CHECK(api_cursor_search_decode(cur, &c) == 0);
    FUZZ_CHECK(strcmp(c.name, name) == 0 && c.resource_id == id && strcmp(c.hash, h) == 0);
    api_search_cursor_clear(&c);
    free(cur);
}

static void search_cursor(const char *s)
{
    api_search_cursor_t c;
    int rc = api_cursor_search_decode(s, &c);

    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc != 0) {
        FUZZ_CHECK(c.name == NULL && c.hash == NULL);
        return;
    }
    FUZZ_CHECK(c.name && c.name[0] && c.resource_id >= 0 && c.hash);
    FUZZ_CHECK(shares_validate_hash(c.hash, NULL) == SHARES_OK);
    search_roundtrip(c.name, c.resource_id, c.hash);
    api_search_cursor_clear(&c);
}

/* "name\0id\0hash": a hit as the database returns it, made a cursor.
 * `s` holds `size` bytes and a NUL after them. */
static void search_fields(const char *s, size_t size)
{
    const char *end = s + size, *name = s, *idtext, *h;
    char *stop;
    long long id;

    idtext = name + strlen(name) + 1;
    if (idtext > end)
        return;
    h = idtext + strlen(idtext) + 1;
    if (h > end)
        return;
    id = strtoll(idtext, &stop, 10);
    if (!*name || !*idtext || *stop || id < 0 || shares_validate_hash(h, NULL) != SHARES_OK)
        return;
    search_roundtrip(name, (int64_t)id, h);
}

static void limit(const char *s, size_t n)
{
    unsigned long v = 0;
    size_t i;

    if (api_parse_uint(s, n, 1, 1000, &v) == 0) {
        FUZZ_CHECK(v >= 1 && v <= 1000 && n > 0);
        for (i = 0; i < n; i++)
            FUZZ_CHECK(s[i] >= '0' && s[i] <= '9');
        FUZZ_CHECK(strtoul(s, NULL, 10) == v);
    }
    if (api_parse_uint(s, n, 0, ULONG_MAX, &v) == 0)
        FUZZ_CHECK(n > 0 && n <= 9 && strspn(s, "0123456789") == n);
}

/* The search text rule of GET /api/v1/search: 1..255 bytes of printable
 * UTF-8, at least 3 characters. */
static void search_text(const char *s, size_t n)
{
    if (api_text_ok(s, n)) {
        size_t chars = api_utf8_chars(s, n);
        FUZZ_CHECK(memchr(s, '\0', n) == NULL);
        FUZZ_CHECK(chars <= n && chars * 4 >= n);
    }
}

static void authorization(const char *header)
{
    unsigned char want[API_TOKEN_DIGEST];
    const char *t;
    size_t n;

    FUZZ_CHECK(http_token_digest(TOKEN, strlen(TOKEN), want) == 0);
    if (!http_bearer_ok(header, strlen(header), want))
        return;
    /* accepted: "Bearer", blanks, the token, blanks; nothing else */
    FUZZ_CHECK(strncasecmp(header, "bearer", 6) == 0);
    t = header + 6;
    n = strspn(t, " \t");
    FUZZ_CHECK(n > 0);
    t += n;
    FUZZ_CHECK(strncmp(t, TOKEN, strlen(TOKEN)) == 0);
    t += strlen(TOKEN);
    FUZZ_CHECK(strspn(t, " \t") == strlen(t));
}

static void percent(const char *p, size_t n)
{
    char *dec = NULL, *enc, *again = NULL;
    size_t len = 0, i, len2 = 0;
    static const char hex[] = "0123456789ABCDEF";
    int rc = api_percent_decode(p, n, &dec, &len);

    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc != 0) {
        FUZZ_CHECK(dec == NULL);
        return;
    }
    FUZZ_CHECK(len <= n && strlen(dec) == len);
    /* every byte escaped decodes back to the same bytes */
    enc = malloc(len * 3 + 1);
    FUZZ_CHECK(enc != NULL);
    for (i = 0; i < len; i++) {
        enc[i * 3] = '%';
        enc[i * 3 + 1] = hex[(unsigned char)dec[i] >> 4];
        enc[i * 3 + 2] = hex[(unsigned char)dec[i] & 15];
    }
    FUZZ_CHECK(api_percent_decode(enc, len * 3, &again, &len2) == 0);
    FUZZ_CHECK(len2 == len && memcmp(again, dec, len) == 0);
    free(again);
    free(enc);
    free(dec);
}

static void base64url(const uint8_t *data, size_t size)
{
    unsigned char *raw = NULL, *back = NULL;
    size_t len = 0, blen = 0;
    char *enc;
    int rc = api_b64url_decode((const char *)data, size, &raw, &len);

    FUZZ_CHECK(rc == 0 || rc == -1 || rc == -2);
    if (rc == 0) {
        /* strict: the only text of this value */
        enc = api_b64url_encode(raw, len);
        FUZZ_CHECK(enc != NULL && strlen(enc) == size && memcmp(enc, data, size) == 0);
        FUZZ_CHECK(raw[len] == '\0');
        free(enc);
    } else {
        FUZZ_CHECK(raw == NULL);
    }
    free(raw);

    /* the bytes themselves, encoded, decode back */
    enc = api_b64url_encode(data, size);
    FUZZ_CHECK(enc != NULL);
    FUZZ_CHECK(api_b64url_decode(enc, strlen(enc), &back, &blen) == 0);
    FUZZ_CHECK(blen == size && (size == 0 || memcmp(back, data, size) == 0));
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const char *m;
    char *s;
    char mode;

    if (size < 1)
        return 0;
    m = memchr(modes, data[0], sizeof modes - 1);
    mode = m ? *m : modes[data[0] % (sizeof modes - 1)];
    data++, size--;
    s = fuzz_cstr(data, size);

    switch (mode) {
    case 'r':
        route(data, size);
        break;
    case 'j':
        jid_segment(s, size);
        break;
    case 'h':
        hash(s);
        break;
    case 'c':
        users_cursor(s);
        break;
    case 's':
        search_cursor(s);
        break;
    case 'S':
        search_fields(s, size);
        break;
    case 'l':
        limit(s, size);
        break;
    case 'q':
        search_text(s, size);
        break;
    case 'a':
        authorization(s);
        break;
    case 'p':
        percent(s, size);
        break;
    case 'b':
        base64url(data, size);
        break;
    default:
        break;
    }
    free(s);
    return 0;
}
