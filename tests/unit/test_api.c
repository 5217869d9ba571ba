/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of the admin API's pure parts (cursors, percent decoding,
 * path matching, JID checks, the constant-time token check, base64url,
 * Prometheus text) and of the HTTP layer in process: start and stop on an
 * ephemeral port, the answers that need neither PostgreSQL nor XMPP
 * (health, 404/405/401/413, readiness with the database away, commands
 * without a component), and a port already in use. The real end-to-end
 * tests (Prosody, PostgreSQL, agents) are in tests/e2e.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api_private.h"

/* ---- cursors ----------------------------------------------------------------- */

static void api__cursor_users__round_trips(void **state)
{
    static const char *const jids[] = {"alice@example.org", "bob@b\xc3\xa4r.example", "x@y",
                                       "a\"b\\c@d.example"};
    size_t i;
    (void)state;
    for (i = 0; i < sizeof jids / sizeof jids[0]; i++) {
        char *c = api_cursor_users_encode(jids[i]), *jid = NULL;
        assert_non_null(c);
        /* opaque and URL-safe: base64url alphabet only */
        assert_int_equal(strspn(c, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                                   "0123456789-_"),
                         strlen(c));
        if (strchr(jids[i], '"')) { /* not a JID: refused on the way back */
            assert_int_equal(api_cursor_users_decode(c, &jid), -1);
            assert_null(jid);
        } else {
            assert_int_equal(api_cursor_users_decode(c, &jid), 0);
            assert_string_equal(jid, jids[i]);
        }
        free(jid);
        free(c);
    }
}

static void api__cursor_search__round_trips(void **state)
{
    api_search_cursor_t cur;
    char *c;
    (void)state;
    c = api_cursor_search_encode("Holiday \xe2\x82\xac 100%.mkv", 9007199254740993LL,
                                 "0123456789abcdef0123456789abcdef01234567");
    assert_non_null(c);
    assert_int_equal(api_cursor_search_decode(c, &cur), 0);
    assert_string_equal(cur.name, "Holiday \xe2\x82\xac 100%.mkv");
    assert_true(cur.resource_id == 9007199254740993LL);
    assert_string_equal(cur.hash, "0123456789abcdef0123456789abcdef01234567");
    api_search_cursor_clear(&cur);
    assert_null(cur.name);
    free(c);
}

/* base64url of `json` (test helper). */
static char *b64(const char *json)
{
    char *c = api_b64url_encode((const unsigned char *)json, strlen(json));
    assert_non_null(c);
    return c;
}

static void api__cursor__rejects_malformed(void **state)
{
    static const char *const bad_json[] = {
        "[\"s\",\"a@b\"]", /* users cursor given to the search */
        "[\"u\",\"a@b\"]", /* wrong tag for a search */
        "[\"s\",\"n\",1]", /* too short */
        "[\"s\",\"n\",1,\"0123456789abcdef0123456789abcdef01234567\",1]",       /* too long */
        "[\"s\",\"n\",-1,\"0123456789abcdef0123456789abcdef01234567\"]",        /* negative id */
        "[\"s\",\"n\",1.5,\"0123456789abcdef0123456789abcdef01234567\"]",       /* not an integer */
        "[\"s\",\"\",1,\"0123456789abcdef0123456789abcdef01234567\"]",          /* empty name */
        "[\"s\",\"n\\u0000x\",1,\"0123456789abcdef0123456789abcdef01234567\"]", /* NUL */
        "[\"s\",\"n\",1,\"0123\"]",                                             /* bad hash */
        "{\"s\":1}",
        "[]",
        "null",
        "[\"s\",\"n\",1,\"0123456789abcdef0123456789abcdef01234567\"",
    };
    static const char *const bad_users_json[] = {
        "[\"u\"]",   "[\"u\",\"nodomain\"]", "[\"u\",\"a@b/c\"]",
        "[\"u\",1]", "[\"u\",\"a@b\",2]",    "[\"U\",\"a@b\"]",
    };
    static const char *const bad_text[] = {
        "",
        "!!!!",
        "WyJ1IiwiYUBiIl0=", /* padding */
        "WyJ1IiwiYUBiIl0 ",
        "W",
        "WyJ1IiwiYUBiIl1", /* non-zero unused bits */
    };
    api_search_cursor_t cur;
    char *jid, *c, *huge;
    size_t i;

    (void)state;
    for (i = 0; i < sizeof bad_json / sizeof bad_json[0]; i++) {
        c = b64(bad_json[i]);
        if (api_cursor_search_decode(c, &cur) != -1)
            fail_msg("search cursor %s accepted", bad_json[i]);
        assert_null(cur.name);
        free(c);
    }
    for (i = 0; i < sizeof bad_users_json / sizeof bad_users_json[0]; i++) {
        c = b64(bad_users_json[i]);
        if (api_cursor_users_decode(c, &jid) != -1)
            fail_msg("users cursor %s accepted", bad_users_json[i]);
        assert_null(jid);
        free(c);
    }
    for (i = 0; i < sizeof bad_text / sizeof bad_text[0]; i++) {
        assert_int_equal(api_cursor_users_decode(bad_text[i], &jid), -1);
        assert_int_equal(api_cursor_search_decode(bad_text[i], &cur), -1);
    }
    /* the well-formed one of the padding case is accepted */
    assert_int_equal(api_cursor_users_decode("WyJ1IiwiYUBiIl0", &jid), 0);
    assert_string_equal(jid, "a@b");
    free(jid);
    /* longer than API_CURSOR_MAX */
    huge = malloc(API_CURSOR_MAX + 2);
    assert_non_null(huge);
    memset(huge, 'A', API_CURSOR_MAX + 1);
    huge[API_CURSOR_MAX + 1] = '\0';
    assert_int_equal(api_cursor_users_decode(huge, &jid), -1);
    free(huge);
    assert_int_equal(api_cursor_users_decode(NULL, &jid), -1);
}

static void api__b64url__round_trips_every_length(void **state)
{
    unsigned char in[64], *out;
    size_t n, len, i;
    (void)state;
    for (i = 0; i < sizeof in; i++)
        in[i] = (unsigned char)(i * 37 + 250);
    for (n = 0; n <= sizeof in; n++) {
        char *t = api_b64url_encode(in, n);
        assert_non_null(t);
        assert_int_equal(strlen(t), (n * 4 + 2) / 3);
        assert_null(strchr(t, '='));
        assert_int_equal(api_b64url_decode(t, strlen(t), &out, &len), 0);
        assert_int_equal(len, n);
        assert_memory_equal(out, in, n);
        free(out);
        free(t);
    }
    assert_int_equal(api_b64url_decode("ab+/", 4, &out, &len), -1); /* base64, not url */
}

/* ---- percent decoding, JIDs, numbers --------------------------------------------- */

static void api__percent_decode__decodes_segments(void **state)
{
    char *out;
    size_t len;
    (void)state;
    assert_int_equal(api_percent_decode("alice%40example.org", 19, &out, &len), 0);
    assert_string_equal(out, "alice@example.org");
    assert_int_equal(len, 17);
    free(out);
    assert_int_equal(api_percent_decode("desk%2ftop%20%E2%82%AC+x", 24, &out, NULL), 0);
    assert_string_equal(out, "desk/top \xe2\x82\xac+x"); /* '+' stays in a path */
    free(out);
    assert_int_equal(api_percent_decode("", 0, &out, &len), 0);
    assert_string_equal(out, "");
    free(out);
    /* only the first `n` bytes */
    assert_int_equal(api_percent_decode("ab%41cd", 5, &out, NULL), 0);
    assert_string_equal(out, "abA");
    free(out);
}

static void api__percent_decode__rejects_malformed(void **state)
{
    static const char *const bad[] = {"%", "%4", "a%zz", "%g0", "a%00b", "x%0"};
    size_t i;
    char *out;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        assert_int_equal(api_percent_decode(bad[i], strlen(bad[i]), &out, NULL), -1);
        assert_null(out);
    }
}

static void api__jid_check__accepts_and_lowers(void **state)
{
    char msg[128];
    char a[] = "Alice@Example.ORG", b[] = "b\xc3\xb6rje@m\xc3\xbcnchen.example";
    (void)state;
    assert_int_equal(api_jid_check(a, msg, sizeof msg), 0);
    assert_string_equal(a, "alice@example.org");
    assert_int_equal(api_jid_check(b, msg, sizeof msg), 0);
}

static void api__jid_check__rejects_malformed(void **state)
{
    static const char *const bad[] = {
        "",
        "alice",
        "@example.org",
        "alice@",
        "a@b@c",
        "alice@example.org/laptop",
        "al ice@example.org",
        "al\tice@example.org",
        "a\xc3@example.org",
        "a:b@example.org",
        "a<b@example.org",
    };
    char msg[128], buf[64], *big;
    size_t i;
    (void)state;
    for (i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        snprintf(buf, sizeof buf, "%s", bad[i]);
        if (api_jid_check(buf, msg, sizeof msg) == 0)
            fail_msg("'%s' accepted", bad[i]);
        assert_true(strlen(msg) > 0);
    }
    /* node of 1024 bytes; then a whole JID over 2047 */
    big = malloc(4096);
    assert_non_null(big);
    memset(big, 'a', 1024);
    strcpy(big + 1024, "@example.org");
    assert_int_equal(api_jid_check(big, msg, sizeof msg), -1);
    memset(big, 'a', 1023);
    big[1023] = '@';
    memset(big + 1024, 'b', 1023);
    big[2047] = '\0';
    assert_int_equal(api_jid_check(big, msg, sizeof msg), 0);
    big[2047] = 'b';
    big[2048] = '\0';
    assert_int_equal(api_jid_check(big, msg, sizeof msg), -1);
    free(big);
}

static void api__parse_uint__checks_range_and_digits(void **state)
{
    unsigned long v = 0;
    (void)state;
    assert_int_equal(api_parse_uint("100", 3, 1, 1000, &v), 0);
    assert_int_equal(v, 100);
    assert_int_equal(api_parse_uint("1000", 4, 1, 1000, &v), 0);
    assert_int_equal(api_parse_uint("1001", 4, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint("0", 1, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint("", 0, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint("-1", 2, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint("1e3", 3, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint(" 5", 2, 1, 1000, &v), -1);
    assert_int_equal(api_parse_uint("99999999999999999999", 20, 1, 1000, &v), -1);
}

static void api__text_ok__checks_utf8_and_controls(void **state)
{
    (void)state;
    assert_true(api_text_ok("holiday \xe2\x82\xac", 11));
    assert_false(api_text_ok("a\x00z", 3));
    assert_false(api_text_ok("a\nb", 3));
    assert_false(api_text_ok("\xc0\xaf", 2));     /* overlong */
    assert_false(api_text_ok("\xed\xa0\x80", 3)); /* surrogate */
    assert_false(api_text_ok("\xe2\x82", 2));     /* cut */
    assert_int_equal(api_utf8_chars("h\xc3\xa9\xe2\x82\xac", 6), 3);
}

/* ---- token ------------------------------------------------------------------------- */

/* The header as given: every byte counts, NULs included. */
#define BEARER_OK(text) http_bearer_ok((text), sizeof(text) - 1, want)

static void api__bearer_ok__compares_the_whole_token(void **state)
{
    unsigned char want[API_TOKEN_DIGEST];
    (void)state;
    assert_int_equal(http_token_digest("s3cret-token", 12, want), 0);
    assert_true(BEARER_OK("Bearer s3cret-token"));
    assert_true(BEARER_OK("bearer   s3cret-token ")); /* scheme any case */
    assert_false(BEARER_OK("Bearer s3cret-tokeN"));
    assert_false(BEARER_OK("Bearer s3cret-toke"));   /* prefix */
    assert_false(BEARER_OK("Bearer s3cret-token2")); /* longer */
    assert_false(BEARER_OK("Bearer "));
    assert_false(BEARER_OK("Bearer"));
    assert_false(BEARER_OK("Basic s3cret-token"));
    assert_false(BEARER_OK("Bearers3cret-token"));
    assert_false(BEARER_OK(""));
    assert_false(http_bearer_ok(NULL, 0, want));
    assert_true(http_ct_equal("abc", "abc", 3));
    assert_false(http_ct_equal("abc", "abd", 3));
    assert_true(http_ct_equal("", "x", 0));
}

static void api__bearer_ok__refuses_a_nul_anywhere(void **state)
{
    unsigned char want[API_TOKEN_DIGEST];
    (void)state;
    assert_int_equal(http_token_digest("s3cret-token", 12, want), 0);
    assert_false(BEARER_OK("Bearer s3cret-token\0"));
    assert_false(BEARER_OK("Bearer s3cret-token\0junk"));
    assert_false(BEARER_OK("Bearer s3cret-token \0"));
    assert_false(BEARER_OK("Bearer \0s3cret-token"));
    assert_false(BEARER_OK("Bearer\0s3cret-token"));
    /* the same bytes up to the NUL pass when the NUL is not counted */
    assert_true(http_bearer_ok("Bearer s3cret-token\0junk", 19, want));
}

/* ---- routes ------------------------------------------------------------------------ */

static void api__route_match__finds_routes_and_params(void **state)
{
    const api_route_t *routes;
    api_param_t p[API_MAX_PARAMS];
    size_t idx, np;
    char allow[64];
    (void)state;
    api_routes(&routes);
    assert_int_equal(api_route_match("GET", "/healthz", &idx, p, &np, allow, sizeof allow),
                     API_MATCH_OK);
    assert_string_equal(routes[idx].pattern, "/healthz");
    assert_int_equal(np, 0);
    assert_int_equal(api_route_match("HEAD", "/healthz", &idx, p, &np, allow, sizeof allow),
                     API_MATCH_OK);
    assert_int_equal(api_route_match("DELETE", "/api/v1/users/a%40b/resources/desk%2Ftop", &idx, p,
                                     &np, allow, sizeof allow),
                     API_MATCH_OK);
    assert_string_equal(routes[idx].pattern, "/api/v1/users/{jid}/resources/{resource}");
    assert_true(routes[idx].flags & API_ROUTE_AUTH);
    assert_int_equal(np, 2);
    assert_int_equal(p[0].n, 5);
    assert_memory_equal(p[0].p, "a%40b", 5);
    assert_int_equal(p[1].n, 10);
    assert_memory_equal(p[1].p, "desk%2Ftop", 10);
    assert_int_equal(
        api_route_match("POST", "/api/v1/users/a@b/republish", &idx, p, &np, allow, sizeof allow),
        API_MATCH_OK);
    assert_string_equal(routes[idx].pattern, "/api/v1/users/{jid}/republish");
    assert_int_equal(api_route_match("GET", "/api/v1/users/a@b", &idx, p, &np, allow, sizeof allow),
                     API_MATCH_OK);
    assert_string_equal(routes[idx].pattern, "/api/v1/users/{jid}");
}

static void api__route_match__404_and_405(void **state)
{
    api_param_t p[API_MAX_PARAMS];
    size_t idx, np;
    char allow[64];
    static const char *const unknown[] = {
        "/",
        "",
        "/healthz/",
        "/api/v1/users/",
        "/api/v1/users//republish",
        "/api/v1",
        "/api/v1/users/a@b/resources",
        "/api/v1/users/a@b/resources/r/x",
        "/HEALTHZ",
        "http://host/healthz",
        "/api/v1/shares",
    };
    size_t i;
    (void)state;
    for (i = 0; i < sizeof unknown / sizeof unknown[0]; i++)
        if (api_route_match("GET", unknown[i], &idx, p, &np, allow, sizeof allow) !=
            API_MATCH_NOT_FOUND)
            fail_msg("'%s' matched", unknown[i]);
    assert_int_equal(api_route_match("POST", "/healthz", &idx, p, &np, allow, sizeof allow),
                     API_MATCH_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD");
    assert_int_equal(
        api_route_match("GET", "/api/v1/users/a@b/resources/r", &idx, p, &np, allow, sizeof allow),
        API_MATCH_BAD_METHOD);
    assert_string_equal(allow, "DELETE");
    assert_int_equal(
        api_route_match("DELETE", "/api/v1/users/a@b", &idx, p, &np, allow, sizeof allow),
        API_MATCH_BAD_METHOD);
    assert_string_equal(allow, "GET, HEAD");
}

/* ---- Prometheus text ------------------------------------------------------------------- */

static void api__prom_histogram__writes_cumulative_buckets(void **state)
{
    static const double bounds[] = {0.005, 0.1, 1};
    static const uint64_t counts[] = {2, 0, 3, 1}; /* last: above 1 s */
    api_buf_t b = {0};
    char *text;
    (void)state;
    api_prom_family(&b, "t_seconds", "histogram", "Latency.");
    api_prom_histogram(&b, "t_seconds", "route=\"/a\"", bounds, counts, 3, 4.25);
    api_prom_histogram(&b, "t_seconds", "", bounds, counts, 3, 0);
    text = api_buf_take(&b, NULL);
    assert_non_null(text);
    assert_string_equal(text, "# HELP t_seconds Latency.\n"
                              "# TYPE t_seconds histogram\n"
                              "t_seconds_bucket{route=\"/a\",le=\"0.005\"} 2\n"
                              "t_seconds_bucket{route=\"/a\",le=\"0.1\"} 2\n"
                              "t_seconds_bucket{route=\"/a\",le=\"1\"} 5\n"
                              "t_seconds_bucket{route=\"/a\",le=\"+Inf\"} 6\n"
                              "t_seconds_sum{route=\"/a\"} 4.25\n"
                              "t_seconds_count{route=\"/a\"} 6\n"
                              "t_seconds_bucket{le=\"0.005\"} 2\n"
                              "t_seconds_bucket{le=\"0.1\"} 2\n"
                              "t_seconds_bucket{le=\"1\"} 5\n"
                              "t_seconds_bucket{le=\"+Inf\"} 6\n"
                              "t_seconds_sum 0\n"
                              "t_seconds_count 6\n");
    free(text);
}

static void api__prom_sample__escapes_labels_and_formats_numbers(void **state)
{
    api_buf_t b = {0}, l = {0};
    char *text;
    (void)state;
    api_buf_add(&l, "v=\"", 3);
    api_prom_escape(&l, "a\"b\\c\nd");
    api_buf_add(&l, "\"", 1);
    api_prom_sample(&b, "m", l.p, 0.1);
    api_prom_sample(&b, "m", "", 1e-6);
    api_prom_sample(&b, "m", "", 12345678901.0);
    api_prom_sample_u64(&b, "c_total", "k=\"x\"", UINT64_MAX);
    text = api_buf_take(&b, NULL);
    assert_string_equal(text, "m{v=\"a\\\"b\\\\c\\nd\"} 0.1\n"
                              "m 1e-06\n"
                              "m 12345678901\n"
                              "c_total{k=\"x\"} 18446744073709551615\n");
    free(text);
    api_buf_free(&l);
}

/* ---- the HTTP layer in process ------------------------------------------------------------ */

#define TOKEN "test-token-0123456789"

typedef struct fixture {
    log_t *log;
    api_t *api;
} fixture_t;

static int http_setup(void **state)
{
    fixture_t *f = calloc(1, sizeof *f);
    api_settings_t s;
    api_settings_default(&s);
    s.port = 0;
    s.token = TOKEN;
    s.threads = 2;
    s.database_url = "postgresql://bitween@127.0.0.1:1/none"; /* refused at once */
    s.db_connect_timeout_s = 1;
    s.max_body_bytes = 1024;
    f->log = log_new(2, LOG_LEVEL_ERROR, 0);
    f->api = api_new(&s, NULL, f->log);
    if (!f->api)
        return -1;
    *state = f;
    return 0;
}

static int http_teardown(void **state)
{
    fixture_t *f = *state;
    api_free(f->api);
    log_free(f->log);
    free(f);
    return 0;
}

/* Send `n` bytes of `request` raw to the API; return the whole response
 * (caller frees). */
static char *http_n(fixture_t *f, const char *request, size_t n_req)
{
    struct sockaddr_in sa;
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    size_t len = 0, cap = 4096, off = 0;
    char *buf = malloc(cap);
    ssize_t n;

    assert_true(fd >= 0);
    assert_non_null(buf);
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((uint16_t)api_port(f->api));
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    assert_int_equal(connect(fd, (struct sockaddr *)&sa, sizeof sa), 0);
    while (off < n_req) {
        n = write(fd, request + off, n_req - off);
        assert_true(n > 0);
        off += (size_t)n;
    }
    while ((n = read(fd, buf + len, cap - len - 1)) > 0) {
        len += (size_t)n;
        if (cap - len < 512) {
            char *p = realloc(buf, cap * 2);
            assert_non_null(p);
            buf = p;
            cap *= 2;
        }
    }
    buf[len] = '\0';
    close(fd);
    return buf;
}

static char *http(fixture_t *f, const char *request)
{
    return http_n(f, request, strlen(request));
}

static void expect(fixture_t *f, const char *request, const char *status_line,
                   const char *const *contains)
{
    char *r = http(f, request);
    if (strncmp(r, status_line, strlen(status_line)) != 0)
        fail_msg("%s\n-> %s", request, r);
    for (; contains && *contains; contains++)
        if (!strstr(r, *contains))
            fail_msg("%s\n-> %s\nlacks %s", request, r, *contains);
    free(r);
}

#define REQ(line, headers) line " HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" headers "\r\n"
#define AUTH               "Authorization: Bearer " TOKEN "\r\n"

static void api__http__answers_without_database_or_xmpp(void **state)
{
    fixture_t *f = *state;
    const char *json[] = {"Content-Type: application/json", NULL};

    assert_true(api_port(f->api) > 0);
    expect(f, REQ("GET /healthz", ""), "HTTP/1.1 200",
           (const char *[]){"{\"status\":\"ok\"}", "Content-Type: application/json", NULL});
    expect(f, REQ("HEAD /healthz", ""), "HTTP/1.1 200", NULL);
    expect(f, REQ("GET /nope", ""), "HTTP/1.1 404",
           (const char *[]){"{\"error\":{\"code\":\"not_found\"", NULL});
    expect(f, REQ("PUT /healthz", ""), "HTTP/1.1 405",
           (const char *[]){"Allow: GET, HEAD", "method_not_allowed", NULL});
    expect(f, REQ("GET /readyz", ""), "HTTP/1.1 503",
           (const char *[]){"\"not_ready\"", "database unreachable", NULL});
    expect(f, REQ("GET /api/v1/stats", ""), "HTTP/1.1 401",
           (const char *[]){"WWW-Authenticate: Bearer", "\"unauthorized\"", NULL});
    expect(f, REQ("GET /api/v1/stats", "Authorization: Bearer wrong\r\n"), "HTTP/1.1 401", json);
    expect(f, REQ("GET /api/v1/users?limit=0", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_limit\"", NULL});
    expect(f, REQ("GET /api/v1/users?cursor=xyz", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_cursor\"", NULL});
    expect(f, REQ("GET /api/v1/users", AUTH), "HTTP/1.1 503",
           (const char *[]){"\"database_unavailable\"", NULL});
    expect(f, REQ("GET /api/v1/users/notajid", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_jid\"", NULL});
    expect(f, REQ("GET /api/v1/users/a%zz", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_path\"", NULL});
    expect(f, REQ("GET /api/v1/shares/0123", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_hash\"", NULL});
    expect(f, REQ("GET /api/v1/search?q=ab", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"query_too_short\"", NULL});
    expect(f, REQ("GET /api/v1/search", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_query\"", NULL});
    /* no component: commands are refused, not queued */
    expect(f, REQ("DELETE /api/v1/users/a@b/resources/r", AUTH), "HTTP/1.1 503",
           (const char *[]){"\"unavailable\"", NULL});
    expect(f, REQ("DELETE /api/v1/users/a@b/resources/%01", AUTH), "HTTP/1.1 400",
           (const char *[]){"\"bad_resource\"", NULL});
    /* bodies: over the limit up front, small ones ignored */
    expect(f, REQ("POST /api/v1/users/a@b/republish", AUTH "Content-Length: 5000\r\n"),
           "HTTP/1.1 413", (const char *[]){"\"payload_too_large\"", NULL});
    expect(f,
           "DELETE /api/v1/users/a@b/resources/r HTTP/1.1\r\nHost: t\r\nConnection: close\r\n" AUTH
           "Content-Length: 3\r\n\r\nabc",
           "HTTP/1.1 503", NULL);
    expect(f, REQ("GET /metrics", ""), "HTTP/1.1 200",
           (const char *[]){"Content-Type: text/plain; version=0.0.4",
                            "bitween_api_request_duration_seconds_bucket{method=\"GET\",route="
                            "\"/healthz\",le=\"+Inf\"} ",
                            "bitween_database_up 0", "bitween_api_responses_total{code=\"404\"} 1",
                            NULL});
}

static void api__http__chunked_body_over_the_limit_is_413(void **state)
{
    fixture_t *f = *state;
    char *req = malloc(8192), *p;
    int i;
    assert_non_null(req);
    p = req + sprintf(req, "POST /api/v1/users/a@b/republish HTTP/1.1\r\nHost: t\r\n"
                           "Connection: close\r\n" AUTH "Transfer-Encoding: chunked\r\n\r\n");
    for (i = 0; i < 3; i++) { /* 3 x 512 bytes > 1024 */
        p += sprintf(p, "200\r\n");
        memset(p, 'x', 512);
        p += 512;
        p += sprintf(p, "\r\n");
    }
    sprintf(p, "0\r\n\r\n");
    expect(f, req, "HTTP/1.1 413", (const char *[]){"\"payload_too_large\"", NULL});
    free(req);
}

/* The status line of the answer to `n` bytes of `request`, "HTTP/1.1 NNN". */
static void expect_status_n(fixture_t *f, const char *request, size_t n, const char *status_line)
{
    char *r = http_n(f, request, n);
    if (strncmp(r, status_line, strlen(status_line)) != 0)
        fail_msg("request of %zu bytes starting \"%.60s\"\n-> %s\nexpected %s", n, request, r,
                 status_line);
    free(r);
}

/* A request string literal, NULs and all. */
#define EXPECT_N(f, literal, status) expect_status_n((f), (literal), sizeof(literal) - 1, (status))

#define LINE "GET /api/v1/users?limit=0 HTTP/1.1"

/* The token passes (400 bad_limit from the handler) however the lines
 * end and wherever the header is; a NUL anywhere in the Authorization
 * line, a folded line or a second header refuses it (401). */
static void api__http__token_is_the_whole_header(void **state)
{
    fixture_t *f = *state;

    EXPECT_N(f, LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 400");
    EXPECT_N(f, LINE "\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " TOKEN "\r\n\r\n",
             "HTTP/1.1 400");
    EXPECT_N(f, LINE "\r\nAuthorization: Bearer " TOKEN "\r\nHost: t\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 400");
    EXPECT_N(f, LINE "\nHost: t\nAuthorization: Bearer " TOKEN "\nConnection: close\n\n",
             "HTTP/1.1 400");
    EXPECT_N(f, LINE "\nHost: t\nConnection: close\nAuthorization: Bearer " TOKEN "\n\n",
             "HTTP/1.1 400");
    EXPECT_N(f, LINE "\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " TOKEN "\n\r\n",
             "HTTP/1.1 400");
    EXPECT_N(f,
             LINE "\r\nHost: t\r\nauthorization:   bearer " TOKEN "  \r\nConnection: close\r\n\r\n",
             "HTTP/1.1 400");

    EXPECT_N(
        f, LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\0junk\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 401");
    EXPECT_N(
        f, LINE "\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " TOKEN "\0junk\r\n\r\n",
        "HTTP/1.1 401");
    EXPECT_N(f,
             LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\0\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 401");
    EXPECT_N(f,
             LINE "\r\nHost: t\r\nConnection: close\r\nAuthorization: Bearer " TOKEN "\0\r\n\r\n",
             "HTTP/1.1 401");
    EXPECT_N(f, LINE "\nHost: t\nAuthorization: Bearer " TOKEN "\0\0\nConnection: close\n\n",
             "HTTP/1.1 401");
    EXPECT_N(f, LINE "\nHost: t\nConnection: close\nAuthorization: Bearer " TOKEN "\0\0\0\n\n",
             "HTTP/1.1 401");
    EXPECT_N(
        f, LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\n x\r\nConnection: close\r\n\r\n",
        "HTTP/1.1 401");
    EXPECT_N(f,
             LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\nAuthorization: Bearer " TOKEN
                  "\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 401");
    EXPECT_N(f,
             LINE "\r\nHost: t\r\nAuthorization: Bearer \0" TOKEN "\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 401");
    /* and the right one still passes afterwards */
    EXPECT_N(f, LINE "\r\nHost: t\r\nAuthorization: Bearer " TOKEN "\r\nConnection: close\r\n\r\n",
             "HTTP/1.1 400");
}

static void api__new__fails_when_the_port_is_taken(void **state)
{
    fixture_t *f = *state;
    api_settings_t s;
    api_t *second;
    char msg[128];
    (void)msg;
    api_settings_default(&s);
    s.port = (unsigned)api_port(f->api);
    s.database_url = "postgresql://127.0.0.1:1/none";
    second = api_new(&s, NULL, f->log);
    assert_null(second);
    api_free(NULL); /* no-op */
}

static void api__settings_check__refuses_bad_values(void **state)
{
    api_settings_t s;
    char msg[128];
    (void)state;
    api_settings_default(&s);
    s.database_url = "postgresql:///x";
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), 0);
    s.address = "::1";
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), 0);
    s.address = "localhost";
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "api_address"));
    s.address = "127.0.0.1";
    s.threads = 0;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    s.threads = 2;
    s.port = 70000;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    s.port = 0;
    s.database_url = NULL;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    s.database_url = "postgresql:///x";
    s.idle_timeout_s = 0;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    s.idle_timeout_s = 10;
    s.max_connections = 1; /* below the 2 threads */
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "api_max_connections"));
    s.max_connections = 8;
    s.max_per_client = 9;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    assert_non_null(strstr(msg, "api_max_connections_per_client"));
    s.max_per_client = 0;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
    s.max_per_client = 8;
    assert_int_equal(api_settings_check(&s, msg, sizeof msg), 0);
}

/* Without a token only loopback is accepted, and the message names the
 * way out. */
static void api__settings_check__wants_a_token_off_loopback(void **state)
{
    static const char *const open_addrs[] = {"0.0.0.0", "::", "192.0.2.1", "2001:db8::1",
                                             "::ffff:192.0.2.1"};
    static const char *const loopback[] = {"127.0.0.1", "127.1.2.3", "::1", "::ffff:127.0.0.1"};
    api_settings_t s;
    char msg[256];
    size_t i;
    (void)state;
    api_settings_default(&s);
    s.database_url = "postgresql:///x";
    for (i = 0; i < sizeof open_addrs / sizeof open_addrs[0]; i++) {
        s.address = open_addrs[i];
        s.token = NULL;
        assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
        assert_non_null(strstr(msg, "api_token"));
        assert_non_null(strstr(msg, "BITWEEN_API_TOKEN"));
        assert_non_null(strstr(msg, "api_enabled"));
        assert_non_null(strstr(msg, open_addrs[i]));
        s.token = "";
        assert_int_equal(api_settings_check(&s, msg, sizeof msg), -1);
        s.token = TOKEN;
        assert_int_equal(api_settings_check(&s, msg, sizeof msg), 0);
        assert_false(api_address_is_loopback(open_addrs[i]));
    }
    for (i = 0; i < sizeof loopback / sizeof loopback[0]; i++) {
        s.address = loopback[i];
        s.token = NULL;
        assert_int_equal(api_settings_check(&s, msg, sizeof msg), 0);
        assert_true(api_address_is_loopback(loopback[i]));
    }
    assert_false(api_address_is_loopback("localhost"));
    assert_false(api_address_is_loopback(""));
    assert_false(api_address_is_loopback(NULL));
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api__cursor_users__round_trips),
        cmocka_unit_test(api__cursor_search__round_trips),
        cmocka_unit_test(api__cursor__rejects_malformed),
        cmocka_unit_test(api__b64url__round_trips_every_length),
        cmocka_unit_test(api__percent_decode__decodes_segments),
        cmocka_unit_test(api__percent_decode__rejects_malformed),
        cmocka_unit_test(api__jid_check__accepts_and_lowers),
        cmocka_unit_test(api__jid_check__rejects_malformed),
        cmocka_unit_test(api__parse_uint__checks_range_and_digits),
        cmocka_unit_test(api__text_ok__checks_utf8_and_controls),
        cmocka_unit_test(api__bearer_ok__compares_the_whole_token),
        cmocka_unit_test(api__bearer_ok__refuses_a_nul_anywhere),
        cmocka_unit_test(api__route_match__finds_routes_and_params),
        cmocka_unit_test(api__route_match__404_and_405),
        cmocka_unit_test(api__prom_histogram__writes_cumulative_buckets),
        cmocka_unit_test(api__prom_sample__escapes_labels_and_formats_numbers),
        cmocka_unit_test(api__settings_check__refuses_bad_values),
        cmocka_unit_test(api__settings_check__wants_a_token_off_loopback),
        cmocka_unit_test_setup_teardown(api__http__answers_without_database_or_xmpp, http_setup,
                                        http_teardown),
        cmocka_unit_test_setup_teardown(api__http__chunked_body_over_the_limit_is_413, http_setup,
                                        http_teardown),
        cmocka_unit_test_setup_teardown(api__http__token_is_the_whole_header, http_setup,
                                        http_teardown),
        cmocka_unit_test_setup_teardown(api__new__fails_when_the_port_is_taken, http_setup,
                                        http_teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
