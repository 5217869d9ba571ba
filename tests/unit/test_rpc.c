/* SPDX-License-Identifier: MIT */
/*
 * Unit tests of agent/rpc.c, the JSON-RPC 2.0 dispatcher, on a small
 * method table: single calls and batches, notifications (no reply), every
 * malformed-request class (parse error, empty or oversized batch, not an
 * object, bad "jsonrpc", "method" or "id", params by position), unknown
 * methods, calls finished later, and callers that go away meanwhile.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "rpc.h"

typedef struct ctx {
    rpc_call_t *kept[8];
    size_t n_kept;
    int calls;
} ctx_t;

typedef struct out {
    int done;
    char *reply;
} out_t;

static rpc_status_t m_echo(void *arg, json_t *params, rpc_call_t *call)
{
    ctx_t *c = arg;
    c->calls++;
    rpc_call_result(call, json_deep_copy(params));
    return RPC_DONE;
}

static rpc_status_t m_later(void *arg, json_t *params, rpc_call_t *call)
{
    ctx_t *c = arg;
    (void)params;
    c->calls++;
    c->kept[c->n_kept++] = call;
    return RPC_LATER;
}

static rpc_status_t m_fail(void *arg, json_t *params, rpc_call_t *call)
{
    (void)arg;
    (void)params;
    rpc_call_error(call, RPC_NOT_FOUND, "not_found", "no torrent %s", "abc");
    return RPC_DONE;
}

static rpc_status_t m_forgets(void *arg, json_t *params, rpc_call_t *call)
{
    (void)arg;
    (void)params;
    (void)call;
    return RPC_DONE; /* a bug: says done without finishing */
}

static const rpc_method_t table[] = {
    {"echo", m_echo},
    {"later", m_later},
    {"fail", m_fail},
    {"forgets", m_forgets},
};

static void on_done(void *arg, const char *reply)
{
    out_t *o = arg;
    o->done++;
    o->reply = reply ? strdup(reply) : NULL;
}

/* Run `body`; the reply parsed (NULL when none), `o` filled. */
static json_t *run(rpc_t *rpc, const char *body, out_t *o)
{
    json_error_t e;
    memset(o, 0, sizeof *o);
    assert_int_equal(rpc_exec(rpc, body, strlen(body), on_done, o, NULL), 0);
    assert_int_equal(o->done, 1);
    return o->reply ? json_loads(o->reply, 0, &e) : NULL;
}

static void expect_error(json_t *r, int code, int null_id)
{
    json_t *e = json_object_get(r, "error");
    assert_non_null(e);
    assert_int_equal(json_integer_value(json_object_get(e, "code")), code);
    assert_true(json_is_string(json_object_get(e, "message")));
    assert_string_equal(json_string_value(json_object_get(r, "jsonrpc")), "2.0");
    if (null_id)
        assert_true(json_is_null(json_object_get(r, "id")));
}

static ctx_t g_ctx; /* the methods' context */

static int setup(void **state)
{
    memset(&g_ctx, 0, sizeof g_ctx);
    *state = rpc_new(table, 4, &g_ctx);
    return *state ? 0 : -1;
}

static int teardown(void **state)
{
    rpc_free(*state);
    return 0;
}

static void rpc__exec__single_call(void **state)
{
    out_t o;
    json_t *r =
        run(*state, "{\"jsonrpc\":\"2.0\",\"id\":7,\"method\":\"echo\",\"params\":{\"a\":1}}", &o);
    assert_non_null(r);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 7);
    assert_int_equal(json_integer_value(json_object_get(json_object_get(r, "result"), "a")), 1);
    assert_null(json_object_get(r, "error"));
    json_decref(r);
    free(o.reply);
    /* string ids come back as given; absent params are an empty object */
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"id\":\"x-1\",\"method\":\"echo\"}", &o);
    assert_string_equal(json_string_value(json_object_get(r, "id")), "x-1");
    assert_true(json_is_object(json_object_get(r, "result")));
    assert_int_equal(json_object_size(json_object_get(r, "result")), 0);
    json_decref(r);
    free(o.reply);
    /* a null id is a call, not a notification */
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"id\":null,\"method\":\"echo\"}", &o);
    assert_non_null(r);
    assert_true(json_is_null(json_object_get(r, "id")));
    json_decref(r);
    free(o.reply);
}

static void rpc__exec__notification_gets_no_reply(void **state)
{
    out_t o;
    json_t *r = run(*state, "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}", &o);
    assert_null(r);
    assert_null(o.reply);
    /* a notification of an unknown method gets none either */
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"method\":\"nope\"}", &o);
    assert_null(r);
}

static void rpc__exec__malformed_requests(void **state)
{
    static const struct {
        const char *body;
        int code;
    } cases[] = {
        {"", RPC_PARSE_ERROR},
        {"{\"jsonrpc\":\"2.0\",", RPC_PARSE_ERROR},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"id\":2,\"method\":\"echo\"}", RPC_PARSE_ERROR},
        {"[]", RPC_INVALID_REQUEST},
        {"42", RPC_INVALID_REQUEST},
        {"\"echo\"", RPC_INVALID_REQUEST},
        {"{\"id\":1,\"method\":\"echo\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"1.0\",\"id\":1,\"method\":\"echo\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":1}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":5}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":1.5,\"method\":\"echo\"}", RPC_INVALID_REQUEST},
        {"{\"jsonrpc\":\"2.0\",\"id\":{},\"method\":\"echo\"}", RPC_INVALID_REQUEST},
        /* no id, but malformed: answered all the same */
        {"{\"jsonrpc\":\"2.0\",\"method\":7}", RPC_INVALID_REQUEST},
    };
    size_t i;
    for (i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        out_t o;
        json_t *r = run(*state, cases[i].body, &o);
        if (!r)
            fail_msg("no reply to %s", cases[i].body);
        if (json_integer_value(json_object_get(json_object_get(r, "error"), "code")) !=
            cases[i].code)
            fail_msg("%s: %s", cases[i].body, o.reply);
        expect_error(r, cases[i].code, 1);
        json_decref(r);
        free(o.reply);
    }
}

static void rpc__exec__params_and_methods(void **state)
{
    out_t o;
    json_t *r =
        run(*state, "{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":[1,2]}", &o);
    expect_error(r, RPC_INVALID_PARAMS, 0);
    assert_int_equal(json_integer_value(json_object_get(r, "id")), 1);
    json_decref(r);
    free(o.reply);
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}", &o);
    expect_error(r, RPC_METHOD_NOT_FOUND, 0);
    json_decref(r);
    free(o.reply);
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"id\":3,\"method\":\"fail\"}", &o);
    expect_error(r, RPC_NOT_FOUND, 0);
    assert_string_equal(json_string_value(json_object_get(
                            json_object_get(json_object_get(r, "error"), "data"), "name")),
                        "not_found");
    assert_string_equal(json_string_value(json_object_get(json_object_get(r, "error"), "message")),
                        "no torrent abc");
    json_decref(r);
    free(o.reply);
    /* a method that forgets its call: an internal error, not a hang */
    r = run(*state, "{\"jsonrpc\":\"2.0\",\"id\":4,\"method\":\"forgets\"}", &o);
    expect_error(r, RPC_INTERNAL_ERROR, 0);
    json_decref(r);
    free(o.reply);
    assert_int_equal(rpc_pending(*state), 0);
}

static void rpc__exec__batch(void **state)
{
    out_t o;
    json_t *r = run(*state,
                    "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"echo\",\"params\":{\"n\":1}},"
                    "{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},"
                    "{\"foo\":1},"
                    "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"nope\"}]",
                    &o);
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 3); /* the notification has none */
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
    expect_error(json_array_get(r, 1), RPC_INVALID_REQUEST, 1);
    expect_error(json_array_get(r, 2), RPC_METHOD_NOT_FOUND, 0);
    json_decref(r);
    free(o.reply);
    /* only notifications: nothing to send */
    r = run(*state,
            "[{\"jsonrpc\":\"2.0\",\"method\":\"echo\"},{\"jsonrpc\":\"2.0\",\"method\":\"echo\"}]",
            &o);
    assert_null(r);
}

static void rpc__exec__batch_too_large(void **state)
{
    char *body = malloc(64 * (RPC_MAX_BATCH + 2)), *p = body;
    int i;
    out_t o;
    json_t *r;

    p += sprintf(p, "[");
    for (i = 0; i <= RPC_MAX_BATCH; i++)
        p += sprintf(p, "%s{\"jsonrpc\":\"2.0\",\"id\":%d,\"method\":\"echo\"}", i ? "," : "", i);
    sprintf(p, "]");
    r = run(*state, body, &o);
    expect_error(r, RPC_INVALID_REQUEST, 1);
    json_decref(r);
    free(o.reply);
    free(body);
}

static void rpc__call__finished_later(void **state)
{
    rpc_t *rpc = *state;
    out_t o, o2;
    json_error_t e;
    json_t *r;
    rpc_req_t *h = NULL, *h2 = NULL;
    static const char body[] = "[{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"later\"},"
                               "{\"jsonrpc\":\"2.0\",\"id\":2,\"method\":\"echo\"}]";
    static const char b2[] = "{\"jsonrpc\":\"2.0\",\"id\":9,\"method\":\"later\"}";

    memset(&o, 0, sizeof o);
    assert_int_equal(rpc_exec(rpc, body, strlen(body), on_done, &o, &h), 0);
    assert_int_equal(o.done, 0); /* the batch waits for its kept call */
    assert_non_null(h);
    assert_int_equal(rpc_pending(rpc), 1);
    assert_int_equal(g_ctx.n_kept, 1);

    /* a second request keeps its call too; its caller goes away */
    memset(&o2, 0, sizeof o2);
    assert_int_equal(rpc_exec(rpc, b2, strlen(b2), on_done, &o2, &h2), 0);
    assert_int_equal(rpc_pending(rpc), 2);
    assert_false(rpc_call_abandoned(g_ctx.kept[1]));
    rpc_req_abandon(h2);
    assert_null(h2);
    assert_true(rpc_call_abandoned(g_ctx.kept[1]));
    /* finishing it is safe and sends nothing */
    rpc_call_result(g_ctx.kept[1], json_string("late"));
    assert_int_equal(o2.done, 0);
    assert_int_equal(rpc_pending(rpc), 1);

    /* the batch's call ends: one reply with both answers, in order */
    rpc_call_error(g_ctx.kept[0], RPC_FAILED, "failed", "hashing failed: %s", "disk");
    assert_int_equal(o.done, 1);
    assert_null(h);
    assert_int_equal(rpc_pending(rpc), 0);
    r = json_loads(o.reply, 0, &e);
    assert_true(json_is_array(r));
    assert_int_equal(json_array_size(r), 2);
    expect_error(json_array_get(r, 0), RPC_FAILED, 0);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 0), "id")), 1);
    assert_int_equal(json_integer_value(json_object_get(json_array_get(r, 1), "id")), 2);
    json_decref(r);
    free(o.reply);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(rpc__exec__single_call, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__exec__notification_gets_no_reply, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__exec__malformed_requests, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__exec__params_and_methods, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__exec__batch, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__exec__batch_too_large, setup, teardown),
        cmocka_unit_test_setup_teardown(rpc__call__finished_later, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
