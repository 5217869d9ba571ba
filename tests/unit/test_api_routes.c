/* SPDX-License-Identifier: MIT */
/*
 * The route table of the admin API (api_routes()) and api/openapi.yaml
 * describe the same operations: every (method, path template) of the code
 * is in the spec and every operation of the spec is in the code, and the
 * routes that need no token are exactly those whose operation says
 * `security: []`. The spec is read with a small line parser for the layout
 * it keeps (paths at two spaces of indentation, methods at four, operation
 * keys at six); the path comes from argv[1] or API_OPENAPI_PATH.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>

#include "api.h"

#ifndef API_OPENAPI_PATH
#define API_OPENAPI_PATH "api/openapi.yaml"
#endif

#define MAX_OPS 128

typedef struct spec_op {
    char method[16];
    char path[256];
    int public_op; /* `security: []` */
} spec_op_t;

static const char *spec_path = API_OPENAPI_PATH;

/* Leading spaces of `line`. */
static size_t indent_of(const char *line)
{
    size_t n = 0;
    while (line[n] == ' ')
        n++;
    return n;
}

static void rstrip(char *s)
{
    size_t n = strlen(s);
    while (n && (s[n - 1] == '\n' || s[n - 1] == '\r' || s[n - 1] == ' '))
        s[--n] = '\0';
}

/* Parse the operations under `paths:`; returns their number. */
static size_t read_spec(const char *path, spec_op_t *ops, size_t max)
{
    static const char *const methods[] = {"get",     "put",  "post",  "delete",
                                          "options", "head", "patch", "trace"};
    FILE *f = fopen(path, "r");
    char line[1024], cur_path[256] = "";
    int in_paths = 0;
    size_t n = 0, i;
    spec_op_t *op = NULL;

    if (!f)
        fail_msg("cannot open %s", path);
    while (fgets(line, sizeof line, f)) {
        size_t ind;
        char *text;
        rstrip(line);
        ind = indent_of(line);
        text = line + ind;
        if (!*text || *text == '#')
            continue;
        if (ind == 0) {
            in_paths = strcmp(text, "paths:") == 0;
            op = NULL;
            continue;
        }
        if (!in_paths)
            continue;
        if (ind == 2) {
            size_t len = strlen(text);
            op = NULL;
            if (text[0] == '"' || text[0] == '\'') { /* "/path": */
                assert_true(len >= 4 && text[len - 1] == ':' && text[len - 2] == text[0]);
                text[len - 2] = '\0';
                text++;
            } else {
                assert_true(len >= 2 && text[len - 1] == ':');
                text[len - 1] = '\0';
            }
            if (text[0] != '/')
                fail_msg("%s: path '%s' does not start with '/'", path, text);
            snprintf(cur_path, sizeof cur_path, "%s", text);
            continue;
        }
        if (ind == 4 && cur_path[0]) {
            op = NULL;
            for (i = 0; i < sizeof methods / sizeof methods[0]; i++) {
                size_t ml = strlen(methods[i]);
                if (strncmp(text, methods[i], ml) == 0 && text[ml] == ':') {
                    assert_true(n < max);
                    op = &ops[n++];
                    memset(op, 0, sizeof *op);
                    for (size_t k = 0; k < ml; k++)
                        op->method[k] = (char)(methods[i][k] - 'a' + 'A');
                    snprintf(op->path, sizeof op->path, "%s", cur_path);
                }
            }
            continue; /* "parameters:", "summary:" at path level */
        }
        if (ind == 6 && op && strcmp(text, "security: []") == 0)
            op->public_op = 1;
    }
    fclose(f);
    return n;
}

static void api_routes__every_route__is_in_the_spec(void **state)
{
    spec_op_t ops[MAX_OPS];
    const api_route_t *routes;
    size_t n_ops = read_spec(spec_path, ops, MAX_OPS), n = api_routes(&routes), i, k;
    int missing = 0;

    (void)state;
    assert_true(n > 0);
    for (i = 0; i < n; i++) {
        int found = 0;
        for (k = 0; k < n_ops; k++) {
            if (strcmp(ops[k].method, routes[i].method) == 0 &&
                strcmp(ops[k].path, routes[i].pattern) == 0) {
                found = 1;
                if (ops[k].public_op != !(routes[i].flags & API_ROUTE_AUTH)) {
                    print_error(
                        "%s %s: the code %s but the spec %s\n", routes[i].method, routes[i].pattern,
                        routes[i].flags & API_ROUTE_AUTH ? "needs a token" : "needs no token",
                        ops[k].public_op ? "says `security: []`" : "inherits the bearer scheme");
                    missing = 1;
                }
            }
        }
        if (!found) {
            print_error("%s %s is in the code but not in %s\n", routes[i].method, routes[i].pattern,
                        spec_path);
            missing = 1;
        }
    }
    assert_false(missing);
}

static void api_routes__every_spec_operation__is_in_the_code(void **state)
{
    spec_op_t ops[MAX_OPS];
    const api_route_t *routes;
    size_t n_ops = read_spec(spec_path, ops, MAX_OPS), n = api_routes(&routes), i, k;
    int extra = 0;

    (void)state;
    assert_true(n_ops > 0);
    for (k = 0; k < n_ops; k++) {
        int found = 0;
        for (i = 0; i < n; i++)
            found |= strcmp(ops[k].method, routes[i].method) == 0 &&
                     strcmp(ops[k].path, routes[i].pattern) == 0;
        if (!found) {
            print_error("%s %s is in %s but not in the code\n", ops[k].method, ops[k].path,
                        spec_path);
            extra = 1;
        }
    }
    assert_false(extra);
}

static void api_routes__table__has_no_duplicates(void **state)
{
    const api_route_t *routes;
    size_t n = api_routes(&routes), i, k;

    (void)state;
    for (i = 0; i < n; i++) {
        assert_non_null(routes[i].handler);
        assert_true(routes[i].pattern[0] == '/');
        for (k = i + 1; k < n; k++)
            assert_false(strcmp(routes[i].method, routes[k].method) == 0 &&
                         strcmp(routes[i].pattern, routes[k].pattern) == 0);
    }
}

static void api_routes__parser__reads_a_known_layout(void **state)
{
    char path[] = "/tmp/test_api_routes_XXXXXX";
    int fd = mkstemp(path);
    FILE *f;
    spec_op_t ops[8];
    size_t n;

    (void)state;
    assert_true(fd >= 0);
    f = fdopen(fd, "w");
    assert_non_null(f);
    fputs("openapi: 3.0.3\n"
          "paths:\n"
          "  /a:\n"
          "    get:\n"
          "      security: []\n"
          "      responses:\n"
          "        \"200\": {description: x}\n"
          "  \"/b/{x}\":\n"
          "    parameters: []\n"
          "    delete:\n"
          "      summary: get: not a method\n"
          "    post:\n"
          "      responses: {}\n"
          "components:\n"
          "  /c:\n"
          "    get: {}\n",
          f);
    fclose(f);
    n = read_spec(path, ops, 8);
    unlink(path);
    assert_int_equal(n, 3);
    assert_string_equal(ops[0].method, "GET");
    assert_string_equal(ops[0].path, "/a");
    assert_true(ops[0].public_op);
    assert_string_equal(ops[1].method, "DELETE");
    assert_string_equal(ops[1].path, "/b/{x}");
    assert_false(ops[1].public_op);
    assert_string_equal(ops[2].method, "POST");
}

int main(int argc, char **argv)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(api_routes__every_route__is_in_the_spec),
        cmocka_unit_test(api_routes__every_spec_operation__is_in_the_code),
        cmocka_unit_test(api_routes__table__has_no_duplicates),
        cmocka_unit_test(api_routes__parser__reads_a_known_layout),
    };
    if (argc > 1)
        spec_path = argv[1];
    return cmocka_run_group_tests(tests, NULL, NULL);
}
