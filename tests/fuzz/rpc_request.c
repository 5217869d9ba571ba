/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the agent's JSON-RPC API (agent/rpc.c and the methods of
 * agent/rpc_methods.c) from raw request bytes, on an agent over the
 * in-memory BitTorrent backend. The agent is marked as stopping so that
 * bt.add_path never walks a path of this machine: its parameters are
 * still checked. Whatever the input, the reply comes at once and is
 * either nothing (only notifications) or JSON-RPC 2.0: an object (an array
 * of them for a batch) with "jsonrpc":"2.0", an "id", and a "result" or
 * an "error" with an integer code and a printable message.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "agent_private.h"
#include "btshim_fake.h"
#include "fuzz.h"

typedef struct out {
    int done;
    char *reply;
} out_t;

static void on_done(void *arg, const char *reply)
{
    out_t *o = arg;
    o->done++;
    o->reply = reply ? strdup(reply) : NULL;
}

static char state_dir[64], shares_dir[80], downloads_dir[80], download_dir[80];

static void remove_state(void)
{
    /* the agent made these, empty: no share is ever added */
    rmdir(shares_dir);
    rmdir(downloads_dir);
    rmdir(download_dir);
    rmdir(state_dir);
}

static agent_t *fuzz_agent(void)
{
    static agent_t *a;
    static agent_settings_t s;
    btshim_error_t err;
    btshim_session_t *bt;
    log_t *log;

    if (a)
        return a;
    snprintf(state_dir, sizeof state_dir, "/tmp/bitween-fuzz-rpc.%ld", (long)getpid());
    snprintf(shares_dir, sizeof shares_dir, "%s/shares", state_dir);
    snprintf(downloads_dir, sizeof downloads_dir, "%s/downloads", state_dir);
    snprintf(download_dir, sizeof download_dir, "%s/dl", state_dir);
    s.state_dir = state_dir;
    s.download_dir = download_dir;
    atexit(remove_state);
    s.resource = "fuzz";
    log = log_new(2, LOG_LEVEL_ERROR, 0);
    bt = btshim_session_new(NULL, &err);
    FUZZ_CHECK(log && bt);
    a = agent_new_offline(&s, log, bt);
    FUZZ_CHECK(a != NULL);
    a->stopping = 1;
    return a;
}

static void check_response(json_t *r)
{
    json_t *e = json_object_get(r, "error"), *id = json_object_get(r, "id");
    FUZZ_CHECK(json_is_object(r));
    FUZZ_CHECK(json_is_string(json_object_get(r, "jsonrpc")));
    FUZZ_CHECK(strcmp(json_string_value(json_object_get(r, "jsonrpc")), "2.0") == 0);
    FUZZ_CHECK(id && (json_is_null(id) || json_is_string(id) || json_is_integer(id)));
    FUZZ_CHECK((e != NULL) != (json_object_get(r, "result") != NULL));
    if (e) {
        const char *msg = json_string_value(json_object_get(e, "message"));
        FUZZ_CHECK(json_is_integer(json_object_get(e, "code")));
        FUZZ_CHECK(msg && fuzz_text_safe(msg));
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    agent_t *a = fuzz_agent();
    out_t o = {0, NULL};
    json_error_t je;
    json_t *r;
    size_t i;

    FUZZ_CHECK(rpc_exec(agent_rpc(a), (const char *)data, size, on_done, &o, NULL) == 0);
    FUZZ_CHECK(o.done == 1);
    FUZZ_CHECK(rpc_pending(agent_rpc(a)) == 0);
    if (!o.reply)
        return 0;
    r = json_loads(o.reply, 0, &je);
    FUZZ_CHECK(r != NULL);
    if (json_is_array(r)) {
        FUZZ_CHECK(json_array_size(r) > 0 && json_array_size(r) <= RPC_MAX_BATCH);
        for (i = 0; i < json_array_size(r); i++)
            check_response(json_array_get(r, i));
    } else {
        check_response(r);
    }
    json_decref(r);
    free(o.reply);
    return 0;
}
