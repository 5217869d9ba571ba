/* SPDX-License-Identifier: MIT */
/*
 * Pure helpers of the admin API: a growing text buffer, percent decoding
 * of path segments, UTF-8 and JID checks, page-size parsing, base64url,
 * and the bearer-token comparison (SHA-256 of both sides compared in
 * constant time, so neither the token's contents nor its length leak).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "api_private.h"
#include "utf8.h"

/* ---- clocks ------------------------------------------------------------------ */

uint64_t api_now_us(void)
{
    return hist_now_us();
}

uint64_t api_now_ms(void)
{
    return api_now_us() / 1000u;
}

/* ---- text buffer ----------------------------------------------------------- */

static int buf_reserve(api_buf_t *b, size_t more)
{
    size_t need, cap;
    char *p;
    if (b->oom)
        return -1;
    if (more > SIZE_MAX / 2 - b->len) {
        b->oom = 1;
        return -1;
    }
    need = b->len + more + 1;
    if (need <= b->cap)
        return 0;
    cap = b->cap ? b->cap : 256;
    while (cap < need)
        cap *= 2;
    p = realloc(b->p, cap);
    if (!p) {
        b->oom = 1;
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

void api_buf_add(api_buf_t *b, const char *s, size_t n)
{
    if (buf_reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = '\0';
}

void api_buf_printf(api_buf_t *b, const char *fmt, ...)
{
    va_list ap;
    int n;
    char small[256];

    va_start(ap, fmt);
    n = vsnprintf(small, sizeof small, fmt, ap);
    va_end(ap);
    if (n < 0) {
        b->oom = 1;
        return;
    }
    if ((size_t)n < sizeof small) {
        api_buf_add(b, small, (size_t)n);
        return;
    }
    if (buf_reserve(b, (size_t)n))
        return;
    va_start(ap, fmt);
    vsnprintf(b->p + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
}

char *api_buf_take(api_buf_t *b, size_t *len)
{
    char *p;
    if (b->oom || buf_reserve(b, 0)) {
        api_buf_free(b);
        return NULL;
    }
    p = b->p;
    if (len)
        *len = b->len;
    b->p = NULL;
    b->len = b->cap = 0;
    return p;
}

void api_buf_free(api_buf_t *b)
{
    free(b->p);
    b->p = NULL;
    b->len = b->cap = 0;
}

/* ---- percent decoding, text checks --------------------------------------------- */

static int hexval(int c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

int api_percent_decode(const char *in, size_t n, char **out, size_t *out_len)
{
    char *p = malloc(n + 1);
    size_t i, k = 0;

    *out = NULL;
    if (!p)
        return -2;
    for (i = 0; i < n; i++) {
        if (in[i] == '%') {
            int hi, lo;
            if (n - i < 3) {
                free(p);
                return -1;
            }
            hi = hexval((unsigned char)in[i + 1]);
            lo = hexval((unsigned char)in[i + 2]);
            if (hi < 0 || lo < 0 || (hi == 0 && lo == 0)) {
                free(p);
                return -1;
            }
            p[k++] = (char)(hi * 16 + lo);
            i += 2;
        } else if (in[i] == '\0') {
            free(p);
            return -1;
        } else {
            p[k++] = in[i];
        }
    }
    p[k] = '\0';
    *out = p;
    if (out_len)
        *out_len = k;
    return 0;
}

int api_text_ok(const char *s, size_t n)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        int len;
        if (u[i] < 0x20 || u[i] == 0x7f)
            return 0;
        len = utf8_seq(u + i, n - i);
        if (len <= 0)
            return 0;
        if (len == 2 && u[i] == 0xc2 && u[i + 1] < 0xa0) /* C1 controls, U+0080..U+009F */
            return 0;
        i += (size_t)len;
    }
    return 1;
}

size_t api_utf8_chars(const char *s, size_t n)
{
    size_t i, chars = 0;
    for (i = 0; i < n; i++)
        chars += ((unsigned char)s[i] & 0xc0) != 0x80;
    return chars;
}

int api_jid_check(char *jid, char *msg, size_t len)
{
    size_t n = strlen(jid), node_len;
    const char *at = strchr(jid, '@');
    char *p;

    if (n == 0) {
        snprintf(msg, len, "the JID is empty");
        return -1;
    }
    if (n > API_JID_MAX) {
        snprintf(msg, len, "the JID is longer than %d bytes", API_JID_MAX);
        return -1;
    }
    if (!api_text_ok(jid, n)) {
        snprintf(msg, len, "the JID is not valid UTF-8 text");
        return -1;
    }
    if (!at || strchr(at + 1, '@')) {
        snprintf(msg, len, "a user JID has the form node@domain");
        return -1;
    }
    if (strchr(jid, '/')) {
        snprintf(msg, len, "a bare JID has no resource ('/')");
        return -1;
    }
    node_len = (size_t)(at - jid);
    if (node_len == 0 || node_len > 1023 || n - node_len - 1 == 0 || n - node_len - 1 > 1023) {
        snprintf(msg, len, "the node and the domain of a JID take 1 to 1023 bytes each");
        return -1;
    }
    for (p = jid; *p; p++) {
        if (*p == ' ' || *p == '"' || *p == '<' || *p == '>' || *p == '\'' || *p == '&' ||
            (*p == ':' && p < at)) {
            snprintf(msg, len, "the JID contains a character that JIDs do not allow");
            return -1;
        }
        if (*p >= 'A' && *p <= 'Z')
            *p = (char)(*p - 'A' + 'a');
    }
    return 0;
}

int api_parse_uint(const char *s, size_t n, unsigned long lo, unsigned long hi, unsigned long *out)
{
    unsigned long v = 0;
    size_t i;
    if (!s || n == 0 || n > 9)
        return -1;
    for (i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (unsigned long)(s[i] - '0');
    }
    if (v < lo || v > hi)
        return -1;
    *out = v;
    return 0;
}

/* ---- token ------------------------------------------------------------------- */

/* ---- base64url ------------------------------------------------------------------ */

static const char b64url[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

char *api_b64url_encode(const unsigned char *in, size_t n)
{
    char *out, *o;
    size_t i;
    if (n > (SIZE_MAX - 4) / 4 * 3)
        return NULL;
    out = malloc((n + 2) / 3 * 4 + 1);
    if (!out)
        return NULL;
    o = out;
    for (i = 0; i + 2 < n; i += 3) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8 | in[i + 2];
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
        *o++ = b64url[v & 63];
    }
    if (n - i == 1) {
        unsigned v = (unsigned)in[i] << 16;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
    } else if (n - i == 2) {
        unsigned v = (unsigned)in[i] << 16 | (unsigned)in[i + 1] << 8;
        *o++ = b64url[v >> 18 & 63];
        *o++ = b64url[v >> 12 & 63];
        *o++ = b64url[v >> 6 & 63];
    }
    *o = '\0';
    return out;
}

static int b64val(int c)
{
    if (c >= 'A' && c <= 'Z')
        return c - 'A';
    if (c >= 'a' && c <= 'z')
        return c - 'a' + 26;
    if (c >= '0' && c <= '9')
        return c - '0' + 52;
    if (c == '-')
        return 62;
    if (c == '_')
        return 63;
    return -1;
}

int api_b64url_decode(const char *in, size_t n, unsigned char **out, size_t *out_len)
{
    unsigned char *p;
    size_t i, k = 0, rest = n % 4;
    unsigned acc = 0;

    *out = NULL;
    if (rest == 1)
        return -1;
    p = malloc(n / 4 * 3 + 3);
    if (!p)
        return -2;
    for (i = 0; i < n; i++) {
        int v = b64val((unsigned char)in[i]);
        if (v < 0) {
            free(p);
            return -1;
        }
        acc = acc << 6 | (unsigned)v;
        if (i % 4 == 3) {
            p[k++] = (unsigned char)(acc >> 16);
            p[k++] = (unsigned char)(acc >> 8);
            p[k++] = (unsigned char)acc;
            acc = 0;
        }
    }
    if (rest == 2) {
        if (acc & 0x0f) { /* unused bits must be zero: one text per value */
            free(p);
            return -1;
        }
        p[k++] = (unsigned char)(acc >> 4);
    } else if (rest == 3) {
        if (acc & 0x03) {
            free(p);
            return -1;
        }
        p[k++] = (unsigned char)(acc >> 10);
        p[k++] = (unsigned char)(acc >> 2);
    }
    p[k] = '\0';
    *out = p;
    *out_len = k;
    return 0;
}
