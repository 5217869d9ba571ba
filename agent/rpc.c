/* SPDX-License-Identifier: MIT */
/* JSON-RPC 2.0 dispatch: requests, batches, deferred calls. */
#include "rpc.h"

#include <stdint.h>

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

struct rpc {
    const rpc_method_t *table;
    size_t n;
    void *ctx;
    size_t pending; /* calls kept by methods */
};

struct rpc_call {
    rpc_req_t *req;
    json_t *id;    /* NULL: a notification (no reply) */
    json_t *reply; /* the response object once finished */
    int finished;
    int kept;
    int force_reply; /* a bad request object: answered even without an id */
};

struct rpc_req {
    rpc_t *rpc;
    rpc_done_fn done;
    void *arg;
    int abandoned;
    int batch;
    int running; /* inside rpc_exec(): completion waits for its end */
    size_t n, outstanding;
    rpc_call_t *calls;
    rpc_req_t **handle;
};

rpc_t *rpc_new(const rpc_method_t *table, size_t n, void *ctx)
{
    rpc_t *rpc = calloc(1, sizeof *rpc);
    if (!rpc)
        return NULL;
    rpc->table = table;
    rpc->n = n;
    rpc->ctx = ctx;
    return rpc;
}

void rpc_free(rpc_t *rpc)
{
    free(rpc);
}

size_t rpc_pending(const rpc_t *rpc)
{
    return rpc->pending;
}

static json_t *error_object(int code, const char *name, const char *message)
{
    json_t *e = json_pack("{siss?}", "code", code, "message", message ? message : "error");
    if (e && name)
        json_object_set_new(e, "data", json_pack("{ss}", "name", name));
    return e;
}

static json_t *response(json_t *id, const char *key, json_t *value)
{
    json_t *r = json_pack("{ss}", "jsonrpc", "2.0");
    if (!r) {
        json_decref(value);
        return NULL;
    }
    json_object_set_new(r, key, value ? value : json_null());
    json_object_set(r, "id", id ? id : json_null());
    return r;
}

static void req_free(rpc_req_t *req)
{
    size_t i;
    for (i = 0; i < req->n; i++) {
        json_decref(req->calls[i].id);
        json_decref(req->calls[i].reply);
    }
    free(req->calls);
    free(req);
}

static void complete(rpc_req_t *req)
{
    json_t *out = NULL;
    char *text = NULL;
    size_t i;

    if (!req->abandoned) {
        if (req->batch) {
            out = json_array();
            for (i = 0; out && i < req->n; i++)
                if (req->calls[i].reply)
                    json_array_append(out, req->calls[i].reply);
            if (out && json_array_size(out) == 0) {
                json_decref(out);
                out = NULL;
            }
        } else if (req->n == 1 && req->calls[0].reply) {
            out = json_incref(req->calls[0].reply);
        }
        if (out)
            text = json_dumps(out, JSON_COMPACT);
        if (out && !text)
            text = strdup("{\"jsonrpc\":\"2.0\",\"error\":{\"code\":-32603,\"message\":"
                          "\"out of memory\"},\"id\":null}");
        if (req->handle)
            *req->handle = NULL;
        req->done(req->arg, text);
    }
    json_decref(out);
    free(text);
    req_free(req);
}

static void finish(rpc_call_t *call, json_t *reply)
{
    rpc_req_t *req = call->req;
    if (call->finished) {
        json_decref(reply);
        return;
    }
    call->finished = 1;
    if (call->kept) {
        call->kept = 0;
        req->rpc->pending--;
    }
    if (call->id || call->force_reply)
        call->reply = reply;
    else
        json_decref(reply); /* a notification: no reply */
    if (--req->outstanding == 0 && !req->running)
        complete(req);
}

/* Messages may quote the request (a method name, the parser's view of
 * the bytes): keep them printable, with "?" for control characters and
 * bytes that are not UTF-8, so that a CLI or a log can show them as is. */
static void printable(char *s)
{
    size_t n = strlen(s), i = 0;
    while (i < n) {
        int len = utf8_seq((const unsigned char *)s + i, n - i);
        uint32_t cp = len > 0 ? utf8_code_point((const unsigned char *)s + i, len) : 0;
        if (len <= 0 || cp < 0x20 || (cp >= 0x7F && cp <= 0x9F)) {
            size_t bad = len > 0 ? (size_t)len : 1;
            s[i] = '?';
            memmove(s + i + 1, s + i + bad, n - i - bad + 1);
            n -= bad - 1;
            i++;
            continue;
        }
        i += (size_t)len;
    }
}

void rpc_call_result(rpc_call_t *call, json_t *result)
{
    finish(call, response(call->id, "result", result));
}

/* A message from `fmt`, cut at a character and printable. */
static void format_message(char *msg, size_t n, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));
static void format_message(char *msg, size_t n, const char *fmt, va_list ap)
{
    vsnprintf(msg, n, fmt, ap);
    utf8_trim_tail(msg);
    printable(msg);
}

void rpc_call_error(rpc_call_t *call, int code, const char *name, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    format_message(msg, sizeof msg, fmt, ap);
    va_end(ap);
    finish(call, response(call->id, "error", error_object(code, name, msg)));
}

/* A request object that is not one: always answered, with a null id. */
static void invalid(rpc_call_t *call, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void invalid(rpc_call_t *call, int code, const char *fmt, ...)
{
    char msg[512];
    json_t *r;
    va_list ap;
    va_start(ap, fmt);
    format_message(msg, sizeof msg, fmt, ap);
    va_end(ap);
    json_decref(call->id);
    call->id = NULL;
    call->force_reply = 1;
    r = response(
        NULL, "error",
        error_object(code, code == RPC_PARSE_ERROR ? "parse_error" : "invalid_request", msg));
    finish(call, r);
}

int rpc_call_abandoned(const rpc_call_t *call)
{
    return call->req->abandoned;
}

void rpc_req_abandon(rpc_req_t *req)
{
    if (req) {
        req->abandoned = 1;
        if (req->handle)
            *req->handle = NULL;
        req->handle = NULL;
    }
}

static void run_call(rpc_t *rpc, rpc_call_t *call, json_t *o)
{
    json_t *v, *params, *id;
    const char *method;
    size_t i;
    json_t *empty;

    if (!json_is_object(o)) {
        invalid(call, RPC_INVALID_REQUEST, "a request must be a JSON object");
        return;
    }
    id = json_object_get(o, "id");
    if (id && !json_is_string(id) && !json_is_integer(id) && !json_is_null(id)) {
        invalid(call, RPC_INVALID_REQUEST, "\"id\" must be a string, an integer or null");
        return;
    }
    call->id = json_incref(id);
    v = json_object_get(o, "jsonrpc");
    if (!json_is_string(v) || strcmp(json_string_value(v), "2.0") != 0) {
        invalid(call, RPC_INVALID_REQUEST, "\"jsonrpc\" must be \"2.0\"");
        return;
    }
    v = json_object_get(o, "method");
    if (!json_is_string(v)) {
        invalid(call, RPC_INVALID_REQUEST, "\"method\" must be a string");
        return;
    }
    method = json_string_value(v);
    params = json_object_get(o, "params");
    if (params && !json_is_object(params)) {
        rpc_call_error(call, RPC_INVALID_PARAMS, "invalid_params",
                       "\"params\" must be an object (named parameters)");
        return;
    }
    for (i = 0; i < rpc->n; i++) {
        if (strcmp(rpc->table[i].name, method) != 0)
            continue;
        empty = params ? NULL : json_object();
        if (!params && !empty) {
            rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "out of memory");
            return;
        }
        call->kept = 1; /* until proven done: a method may finish it inside */
        rpc->pending++;
        if (rpc->table[i].fn(rpc->ctx, params ? params : empty, call) == RPC_DONE &&
            !call->finished)
            rpc_call_error(call, RPC_INTERNAL_ERROR, "internal", "the method gave no result");
        json_decref(empty);
        return;
    }
    rpc_call_error(call, RPC_METHOD_NOT_FOUND, "method_not_found", "no method \"%.100s\"", method);
}

int rpc_exec(rpc_t *rpc, const char *body, size_t len, rpc_done_fn done, void *arg,
             rpc_req_t **handle)
{
    rpc_req_t *req = calloc(1, sizeof *req);
    json_error_t je;
    json_t *root;
    size_t i, n;

    if (handle)
        *handle = NULL;
    if (!req)
        return -1;
    req->rpc = rpc;
    req->done = done;
    req->arg = arg;
    req->running = 1;
    root = json_loadb(body ? body : "", len, JSON_REJECT_DUPLICATES | JSON_DECODE_ANY, &je);
    n = json_is_array(root) && json_array_size(root) > 0 ? json_array_size(root) : 1;
    if (n > RPC_MAX_BATCH)
        n = 1;
    req->calls = calloc(n, sizeof *req->calls);
    if (!req->calls) {
        json_decref(root);
        free(req);
        return -1;
    }
    req->n = req->outstanding = n;
    for (i = 0; i < n; i++)
        req->calls[i].req = req;
    if (handle) {
        req->handle = handle;
        *handle = req;
    }
    if (!root)
        invalid(&req->calls[0], RPC_PARSE_ERROR, "not JSON: %s (at byte %d)", je.text, je.position);
    else if (json_is_array(root) && json_array_size(root) == 0)
        invalid(&req->calls[0], RPC_INVALID_REQUEST, "an empty batch");
    else if (json_is_array(root) && json_array_size(root) > RPC_MAX_BATCH)
        invalid(&req->calls[0], RPC_INVALID_REQUEST, "a batch of %zu calls; at most %d",
                json_array_size(root), RPC_MAX_BATCH);
    else if (json_is_array(root)) {
        req->batch = 1;
        for (i = 0; i < n; i++)
            run_call(rpc, &req->calls[i], json_array_get(root, i));
    } else
        run_call(rpc, &req->calls[0], root);
    json_decref(root);
    req->running = 0;
    if (req->outstanding == 0)
        complete(req);
    return 0;
}
