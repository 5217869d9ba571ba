/* SPDX-License-Identifier: MIT */
/*
 * Golden test runner for the agent protocol. A case is a folder holding
 * in.xml (an <iq/> as the server delivers it to the component) and
 * expected.xml (what the component must make of it), optionally limits.txt
 * (per-resource limits, `key=value` lines named as in shares_limits_t, and
 * allow_loopback_addresses = 0 or 1; unnamed keys keep their defaults) and
 * verdict.txt (`code`: the registry's verdict on a request that parses,
 * one of conflict, item-not-found, unavailable, internal,
 * policy-violation; `#` lines are comments). The served domain is
 * example.org.
 *
 * The runner parses in.xml with agent_request_parse(). A refused request
 * becomes the error reply stanza_build_agent_error() makes; a request with
 * a verdict must parse, and expected.xml must carry the verdict's
 * condition (its text is the running component's: e2e.golden sends every
 * case through the server to the component); an accepted one becomes a
 * canonical summary:
 *
 *   <request op='register' jid='…' resource='…' seq='…'>
 *     <user_shares …/>            (register/add: shares_item_build())
 *     <hash>…</hash>…            (remove)
 *   </request>
 *
 * (seq left out for unregister). The result is compared with expected.xml
 * as XML (tests/support/xml_equal.c). Exit 0 when equal, 1 when not (the
 * difference and the actual XML on stderr), 2 on a usage or I/O error.
 * `golden_agent --print DIR` writes the actual XML to stdout instead, to
 * write a new case (check it by hand before committing it).
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../support/xml_equal.h"
#include "agent_proto.h"
#include "stanza.h"

#define MAX_FILE (1024 * 1024)

static const char *const served[] = {"example.org", NULL};

/* Whole file `dir`/`name` as a malloc'd string; NULL if it does not exist
 * (`*missing` set) or cannot be read (message printed). */
static char *read_file(const char *dir, const char *name, int *missing)
{
    char path[4096];
    FILE *f;
    char *buf;
    size_t n;

    *missing = 0;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "rb");
    if (!f) {
        if (errno == ENOENT)
            *missing = 1;
        else
            fprintf(stderr, "%s: %s\n", path, strerror(errno));
        return NULL;
    }
    buf = malloc(MAX_FILE + 1);
    if (!buf) {
        fclose(f);
        fprintf(stderr, "out of memory\n");
        return NULL;
    }
    n = fread(buf, 1, MAX_FILE + 1, f);
    if (ferror(f) || n > MAX_FILE) {
        fprintf(stderr, "%s: %s\n", path, ferror(f) ? "read error" : "too large");
        fclose(f);
        free(buf);
        return NULL;
    }
    fclose(f);
    buf[n] = '\0';
    return buf;
}

static int parse_limits(const char *text, shares_limits_t *lim)
{
    const struct {
        const char *key;
        size_t *field;
    } keys[] = {
        {"max_resources", &lim->max_resources},           {"max_shares", &lim->max_shares},
        {"max_addresses", &lim->max_addresses},           {"max_name_bytes", &lim->max_name_bytes},
        {"max_resource_bytes", &lim->max_resource_bytes}, {"max_item_bytes", &lim->max_item_bytes},
    };
    char key[64];
    unsigned long long value;
    const char *line = text;
    size_t i;

    while (*line) {
        if (*line != '#' && *line != '\n') {
            if (sscanf(line, "%63[a-z_] = %llu", key, &value) != 2)
                goto bad;
            if (strcmp(key, "allow_loopback_addresses") == 0) {
                lim->allow_loopback = value != 0;
                goto next;
            }
            for (i = 0; i < sizeof keys / sizeof keys[0]; i++)
                if (strcmp(keys[i].key, key) == 0)
                    break;
            if (i == sizeof keys / sizeof keys[0])
                goto bad;
            *keys[i].field = (size_t)value;
        }
    next:
        line = strchr(line, '\n');
        if (!line)
            break;
        line++;
    }
    return 0;

bad:
    fprintf(stderr, "limits.txt: cannot read line: %.*s\n", (int)strcspn(line, "\n"), line);
    return -1;
}

/* The verdict's code: the first word of the first line that is not a
 * comment. Returns the condition it stands for, or NULL. */
static const char *verdict_condition(const char *text)
{
    static const struct {
        const char *name;
        agent_errcode_t code;
    } codes[] = {
        {"conflict", AGENT_ERR_CONFLICT},       {"item-not-found", AGENT_ERR_NOT_FOUND},
        {"unavailable", AGENT_ERR_UNAVAILABLE}, {"internal", AGENT_ERR_INTERNAL},
        {"policy-violation", AGENT_ERR_POLICY},
    };
    size_t i, len;

    while (*text == '#') {
        text = strchr(text, '\n');
        if (!text)
            return NULL;
        text++;
    }
    len = strcspn(text, " \n");
    for (i = 0; i < sizeof codes / sizeof codes[0]; i++)
        if (strlen(codes[i].name) == len && strncmp(codes[i].name, text, len) == 0)
            return agent_error_condition(codes[i].code);
    fprintf(stderr, "verdict.txt: unknown code %.*s\n", (int)len, text);
    return NULL;
}

/* New element `name` appended to `parent`; NULL on failure. */
static xmpp_stanza_t *add_child(xmpp_ctx_t *ctx, xmpp_stanza_t *parent, const char *name)
{
    xmpp_stanza_t *el = xmpp_stanza_new(ctx);

    if (!el)
        return NULL;
    if (xmpp_stanza_add_child_ex(parent, el, 0) != XMPP_EOK) {
        xmpp_stanza_release(el);
        return NULL;
    }
    return xmpp_stanza_set_name(el, name) == XMPP_EOK ? el : NULL;
}

static xmpp_stanza_t *summary(xmpp_ctx_t *ctx, const agent_request_t *req)
{
    xmpp_stanza_t *root = xmpp_stanza_new(ctx), *el, *text;
    char seq[32];
    size_t i;

    if (!root || xmpp_stanza_set_name(root, "request") != XMPP_EOK ||
        xmpp_stanza_set_attribute(root, "op", agent_op_name(req->op)) != XMPP_EOK ||
        xmpp_stanza_set_attribute(root, "jid", req->jid) != XMPP_EOK ||
        xmpp_stanza_set_attribute(root, "resource", req->resource) != XMPP_EOK)
        goto fail;
    if (req->seq >= 0) {
        snprintf(seq, sizeof seq, "%lld", (long long)req->seq);
        if (xmpp_stanza_set_attribute(root, "seq", seq) != XMPP_EOK)
            goto fail;
    }
    if (req->item) {
        el = shares_item_build(req->item, ctx);
        if (!el)
            goto fail;
        if (xmpp_stanza_add_child_ex(root, el, 0) != XMPP_EOK) {
            xmpp_stanza_release(el);
            goto fail;
        }
    }
    for (i = 0; i < req->n_hashes; i++) {
        el = add_child(ctx, root, "hash");
        text = el ? xmpp_stanza_new(ctx) : NULL;
        if (!text)
            goto fail;
        if (xmpp_stanza_add_child_ex(el, text, 0) != XMPP_EOK) {
            xmpp_stanza_release(text);
            goto fail;
        }
        if (xmpp_stanza_set_text(text, req->hashes[i]) != XMPP_EOK)
            goto fail;
    }
    return root;

fail:
    if (root)
        xmpp_stanza_release(root);
    return NULL;
}

int main(int argc, char **argv)
{
    const char *dir;
    char *in_text = NULL, *expected = NULL, *limits = NULL, *verdict = NULL, *out = NULL;
    xmpp_ctx_t *ctx = NULL;
    xmpp_stanza_t *in = NULL, *actual = NULL;
    agent_request_t req = {0};
    agent_error_t err = {0};
    shares_limits_t lim;
    char why[2048];
    size_t len = 0;
    int print = 0, missing = 0, rc = 2, eq;

    if (argc == 3 && strcmp(argv[1], "--print") == 0) {
        print = 1;
        dir = argv[2];
    } else if (argc == 2) {
        dir = argv[1];
    } else {
        fprintf(stderr, "usage: golden_agent [--print] CASE_DIR\n");
        return 2;
    }
    shares_limits_default(&lim);
    in_text = read_file(dir, "in.xml", &missing);
    if (!in_text) {
        if (missing)
            fprintf(stderr, "%s/in.xml: missing\n", dir);
        goto out;
    }
    if (!print) {
        expected = read_file(dir, "expected.xml", &missing);
        if (!expected) {
            if (missing)
                fprintf(stderr, "%s/expected.xml: missing\n", dir);
            goto out;
        }
    }
    limits = read_file(dir, "limits.txt", &missing);
    if ((!limits && !missing) || (limits && parse_limits(limits, &lim) != 0))
        goto out;
    verdict = read_file(dir, "verdict.txt", &missing);
    if (!verdict && !missing)
        goto out;

    ctx = xmpp_ctx_new(NULL, NULL);
    if (!ctx)
        goto out;
    in = xmpp_stanza_new_from_string(ctx, in_text);
    if (!in) {
        fprintf(stderr, "%s/in.xml: not well-formed XML (or an XML declaration)\n", dir);
        goto out;
    }
    if (agent_request_parse(in, served, &lim, &req, &err) != 0) {
        if (verdict) {
            fprintf(stderr, "%s: the registry's case does not parse: %s\n", dir, err.text);
            rc = 1;
            goto out;
        }
        actual = stanza_build_agent_error(ctx, in, &err);
    } else if (verdict) {
        /* The registry's verdict: the request must parse, and expected.xml
         * must carry the verdict's condition; its text is what the
         * running component sends (e2e.golden). */
        const char *cond = verdict_condition(verdict);
        if (print) {
            printf("(decided by the registry: %s)\n", cond ? cond : "unknown verdict");
            rc = cond ? 0 : 1;
            goto out;
        }
        rc = cond && strstr(expected, cond) ? 0 : 1;
        if (rc)
            fprintf(stderr, "%s: expected.xml does not carry the verdict's condition\n", dir);
        goto out;
    } else {
        actual = summary(ctx, &req);
    }
    if (!actual) {
        fprintf(stderr, "out of memory building the result\n");
        goto out;
    }
    if (xmpp_stanza_to_text(actual, &out, &len) != XMPP_EOK) {
        fprintf(stderr, "out of memory serializing the result\n");
        goto out;
    }
    if (print) {
        printf("%s\n", out);
        rc = 0;
        goto out;
    }
    eq = xml_equal_text(ctx, expected, actual, why, sizeof why);
    if (eq == 1) {
        rc = 0;
    } else {
        fprintf(stderr, "%s: %s\nactual: %s\n", dir,
                eq < 0 ? "expected.xml is not well-formed XML" : why, out);
        rc = 1;
    }

out:
    if (out)
        xmpp_free(ctx, out);
    if (actual)
        xmpp_stanza_release(actual);
    if (in)
        xmpp_stanza_release(in);
    agent_request_clear(&req);
    if (ctx)
        xmpp_ctx_free(ctx);
    free(in_text);
    free(expected);
    free(limits);
    free(verdict);
    return rc;
}
