/* SPDX-License-Identifier: MIT */
/*
 * Bearer tokens of the HTTP APIs (the component's admin API, the agent's
 * JSON-RPC): a token is kept as its SHA-256 digest and compared in
 * constant time; the Authorization header is checked whole, so that a NUL
 * byte or a folded line cannot cut a wrong token down to a right one.
 */
#ifndef BITWEEN_COMMON_HTTPAUTH_H
#define BITWEEN_COMMON_HTTPAUTH_H

#include <stddef.h>

#include <microhttpd.h>

/** Compare `n` bytes in time independent of the contents (1: equal). */
int http_ct_equal(const void *a, const void *b, size_t n);

/* SHA-256 size, for the token digest. */
#define HTTP_TOKEN_DIGEST 32

/** SHA-256 of `n` bytes of `s` into `out`. Returns 0 or -1. */
int http_token_digest(const char *s, size_t n, unsigned char out[HTTP_TOKEN_DIGEST]);

/**
 * Whether `header` (an Authorization header value of `len` bytes, may be
 * NULL) carries "Bearer <token>" whose SHA-256 equals `want` (compared in
 * constant time, so neither the contents nor the length of the token
 * leak). The scheme is case-insensitive; a NUL byte anywhere in the `len`
 * bytes refuses the header. Returns 1 or 0.
 */
int http_bearer_ok(const char *header, size_t len, const unsigned char want[HTTP_TOKEN_DIGEST]);

/**
 * Why the request on `conn` may not pass (a static text: no token, several
 * Authorization headers, a malformed one, a wrong token), or NULL when it
 * carries exactly one Authorization header whose bearer token digests to
 * `want`. `method` is the method string libmicrohttpd gave the access
 * handler (the start of the request head); `cuts_at_nul` is
 * http_mhd_cuts_at_nul().
 */
const char *http_auth_refusal(struct MHD_Connection *conn, const char *method, int cuts_at_nul,
                              const unsigned char want[HTTP_TOKEN_DIGEST]);

/** Whether this libmicrohttpd cuts header values at a NUL byte (before 1.0). */
int http_mhd_cuts_at_nul(void);

#endif /* BITWEEN_COMMON_HTTPAUTH_H */
