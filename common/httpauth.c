/* SPDX-License-Identifier: MIT */
/*
 * Bearer tokens of the HTTP APIs (the component's admin API, the agent's
 * JSON-RPC): digests compared in constant time, and the Authorization
 * header checked whole on libmicrohttpd.
 */
#include "httpauth.h"

#include <stdint.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

int http_ct_equal(const void *a, const void *b, size_t n)
{
    return CRYPTO_memcmp(a, b, n) == 0;
}

int http_token_digest(const char *s, size_t n, unsigned char out[HTTP_TOKEN_DIGEST])
{
    unsigned int len = 0;
    if (!EVP_Digest(s, n, out, &len, EVP_sha256(), NULL) || len != HTTP_TOKEN_DIGEST)
        return -1;
    return 0;
}

int http_bearer_ok(const char *header, size_t len, const unsigned char want[HTTP_TOKEN_DIGEST])
{
    unsigned char got[HTTP_TOKEN_DIGEST];
    const char *t, *end;
    size_t n;

    /* A NUL would end the token for anything that reads the header as a
     * C string (a proxy, a log): refuse it rather than guess. */
    if (!header || memchr(header, '\0', len) || len < 7 || strncasecmp(header, "Bearer", 6) != 0 ||
        (header[6] != ' ' && header[6] != '\t'))
        return 0;
    t = header + 6;
    end = header + len;
    while (t < end && (*t == ' ' || *t == '\t'))
        t++;
    n = (size_t)(end - t);
    while (n && (t[n - 1] == ' ' || t[n - 1] == '\t'))
        n--;
    if (n == 0 || http_token_digest(t, n, got) != 0)
        return 0;
    return http_ct_equal(got, want, HTTP_TOKEN_DIGEST);
}

/* ---- the Authorization header, whole ------------------------------------------ */

typedef struct auth_scan {
    const char *value; /* the first Authorization header's value */
    size_t len;
    unsigned count;      /* Authorization headers */
    uintptr_t after;     /* end of `value` */
    uintptr_t next_line; /* lowest header name after it, or the end of the head */
} auth_scan_t;

static enum MHD_Result scan_auth(void *cls, enum MHD_ValueKind kind, const char *key,
                                 size_t key_size, const char *value, size_t value_size)
{
    auth_scan_t *a = cls;
    (void)kind;
    if (key && key_size == 13 && strncasecmp(key, "Authorization", 13) == 0 && a->count++ == 0) {
        a->value = value ? value : "";
        a->len = value ? value_size : 0;
    }
    return MHD_YES;
}

static enum MHD_Result scan_next_line(void *cls, enum MHD_ValueKind kind, const char *key,
                                      size_t key_size, const char *value, size_t value_size)
{
    auth_scan_t *a = cls;
    uintptr_t k = (uintptr_t)key;
    (void)kind;
    (void)key_size;
    (void)value;
    (void)value_size;
    if (k > a->after && k < a->next_line)
        a->next_line = k;
    return MHD_YES;
}

/*
 * Whether the Authorization value `a` is the whole line the client sent.
 * libmicrohttpd before 1.0 keeps a header value as the C string it finds
 * in its read buffer, so "Bearer <token>\0junk" arrives here as "Bearer
 * <token>" with its length (1.0 answers a NUL in a header with 400
 * itself). The request head is still in that buffer, in place: `method`
 * starts it, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE is its length, and
 * each line end (CR LF, or a bare LF) has been overwritten with NULs.
 * Between the end of the value and the next line (the next header's name,
 * or the end of the head, which holds the blank line too) there may only
 * be that line end: one or two NULs, up to four before the end of the
 * head. Anything else, or a value outside the head, means the line did
 * not end where the value does: refused. That also refuses obsolete line
 * folding (RFC 9112 lets a server reject it) of the Authorization header
 * or of the header after it, which libmicrohttpd 0.9 moves out of place.
 * A single NUL just before a bare LF looks like a CR and passes; nothing
 * can hide behind it.
 */
static int auth_value_whole(int cuts_at_nul, struct MHD_Connection *conn, const char *method,
                            auth_scan_t *a)
{
    const union MHD_ConnectionInfo *info;
    uintptr_t head, head_end, v, p;

    if (!cuts_at_nul)
        return 1;
    info = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE);
    if (!info || !method)
        return 0;
    head = (uintptr_t)method;
    head_end = head + info->header_size;
    v = (uintptr_t)a->value;
    if (v <= head || v + a->len >= head_end)
        return 0;
    a->after = v + a->len;
    a->next_line = head_end;
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_next_line, a);
    if (a->next_line - a->after > (a->next_line == head_end ? 4u : 2u))
        return 0;
    for (p = a->after; p < a->next_line; p++)
        if (method[p - head] != '\0')
            return 0;
    return 1;
}

const char *http_auth_refusal(struct MHD_Connection *conn, const char *method, int cuts_at_nul,
                              const unsigned char want[HTTP_TOKEN_DIGEST])
{
    auth_scan_t a;

    memset(&a, 0, sizeof a);
    MHD_get_connection_values_n(conn, MHD_HEADER_KIND, scan_auth, &a);
    if (a.count == 0)
        return "missing bearer token (Authorization: Bearer <token>)";
    if (a.count > 1)
        return "more than one Authorization header";
    if (memchr(a.value, '\0', a.len) || !auth_value_whole(cuts_at_nul, conn, method, &a))
        return "malformed Authorization header (a NUL byte, or folded over lines)";
    if (!http_bearer_ok(a.value, a.len, want))
        return "wrong bearer token";
    return NULL;
}

int http_mhd_cuts_at_nul(void)
{
    const char *v = MHD_get_version();
    return !v || strncmp(v, "0.", 2) == 0;
}
