/* SPDX-License-Identifier: MIT */
/*
 * A hand-made agent for the download tests: logs a user in over c2s,
 * tells the component it is there (directed presence) and registers
 * whatever shares and addresses it is given, true or not, so that contacts
 * receive an item no real agent would announce (a crafted torrent's hash,
 * an address where nobody listens). It stays online until its standard
 * input closes, then leaves.
 *
 * usage: announce_tool FULL_JID PASSWORD C2S_PORT COMPONENT_JID ITEM...
 *   ITEM: share:HASH:SIZE:NAME  or  address:IP:PORT
 * Prints "registered" once the component acknowledged the update.
 */
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <strophe.h>

#include "xclient.h"

static void add_text(char **buf, size_t *len, size_t *cap, const char *s)
{
    size_t n = strlen(s);
    if (*len + n + 1 > *cap) {
        *cap = (*len + n + 1) * 2;
        if (!(*buf = realloc(*buf, *cap))) {
            fprintf(stderr, "announce_tool: out of memory\n");
            exit(1);
        }
    }
    memcpy(*buf + *len, s, n + 1);
    *len += n;
}

/* `s` with &, <, >, ' and " escaped for an XML attribute. */
static char *escape(const char *s)
{
    char *out = malloc(strlen(s) * 6 + 1), *o = out;
    if (!out)
        exit(1);
    for (; *s; s++) {
        const char *r = *s == '&'    ? "&amp;"
                        : *s == '<'  ? "&lt;"
                        : *s == '>'  ? "&gt;"
                        : *s == '\'' ? "&apos;"
                        : *s == '"'  ? "&quot;"
                                     : NULL;
        if (r) {
            strcpy(o, r);
            o += strlen(r);
        } else {
            *o++ = *s;
        }
    }
    *o = '\0';
    return out;
}

int main(int argc, char **argv)
{
    xmpp_ctx_t *ctx;
    xclient_t *cl;
    xmpp_stanza_t *reply;
    char *xml = NULL, line[4096];
    size_t len = 0, cap = 0;
    int i;

    if (argc < 6) {
        fprintf(stderr, "usage: announce_tool FULL_JID PASSWORD C2S_PORT COMPONENT_JID ITEM...\n");
        return 2;
    }
    xmpp_initialize();
    ctx = xmpp_ctx_new(NULL, NULL);
    cl = xclient_login(ctx, argv[1], argv[2], (unsigned short)atoi(argv[3]), 15000);
    if (!cl) {
        fprintf(stderr, "announce_tool: %s could not log in\n", argv[1]);
        return 1;
    }
    xclient_presence(cl, NULL, 1);
    xclient_presence(cl, argv[4], 0);
    snprintf(line, sizeof line,
             "<iq type='set' to='%s' id='announce1'><register xmlns='urn:bitween:agent:1' "
             "seq='%lld'>",
             argv[4], (long long)time(NULL) * 1000000);
    add_text(&xml, &len, &cap, line);
    for (i = 5; i < argc; i++) {
        char *item = strdup(argv[i]), *kind = strtok(item, ":");
        if (kind && strcmp(kind, "share") == 0) {
            char *hash = strtok(NULL, ":"), *size = strtok(NULL, ":"), *name = strtok(NULL, "");
            char *ename = escape(name ? name : "x");
            snprintf(line, sizeof line, "<share_item hash='%s' size='%s' name='%s'/>",
                     hash ? hash : "", size ? size : "0", ename);
            free(ename);
        } else if (kind && strcmp(kind, "address") == 0) {
            char *ip = strtok(NULL, ":"), *port = strtok(NULL, "");
            snprintf(line, sizeof line, "<ip_address address='%s' port='%s'/>", ip ? ip : "",
                     port ? port : "0");
        } else {
            fprintf(stderr, "announce_tool: bad item %s\n", argv[i]);
            return 2;
        }
        free(item);
        add_text(&xml, &len, &cap, line);
    }
    add_text(&xml, &len, &cap, "</register></iq>");
    reply = xclient_iq(cl, xml, 15000);
    free(xml);
    if (!reply || strcmp(xmpp_stanza_get_type(reply), "result") != 0) {
        fprintf(stderr, "announce_tool: the component did not accept the registration\n");
        return 1;
    }
    xmpp_stanza_release(reply);
    printf("registered\n");
    fflush(stdout);
    for (;;) {
        struct pollfd p = {STDIN_FILENO, POLLIN, 0};
        xclient_pump(ctx, 100);
        if (poll(&p, 1, 0) > 0 && read(STDIN_FILENO, line, sizeof line) <= 0)
            break;
        if (!xclient_connected(cl)) {
            fprintf(stderr, "announce_tool: disconnected\n");
            return 1;
        }
    }
    xclient_free(cl);
    xmpp_ctx_free(ctx);
    xmpp_shutdown();
    return 0;
}
