/* SPDX-License-Identifier: MIT */
/*
 * bitween: the command line of bitween-agent, on its JSON-RPC API
 * (docs/rpc-spec.md, docs/cli.md). The agent's URL and token come from
 * the RPC file it writes into its state directory (<state_dir>/rpc.json),
 * or from BITWEEN_RPC_URL and BITWEEN_RPC_TOKEN; a token is never taken
 * from the command line, where other users could read it.
 *
 * Exit codes: 0 done; 1 the agent refused or the download failed (its
 * message on stderr); 2 a usage error; 3 the agent cannot be reached
 * (not running, wrong token); 130 interrupted while waiting (the agent
 * goes on).
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <jansson.h>

#ifndef BITWEEN_VERSION
#define BITWEEN_VERSION "unknown"
#endif

enum { EXIT_OK = 0, EXIT_REFUSED = 1, EXIT_USAGE = 2, EXIT_UNREACHABLE = 3, EXIT_INTR = 130 };

#define MAX_REPLY (64u << 20)

static struct {
    const char *state_dir;
    char *url, *token;
    int json, wait, delete_data, tty;
    const char *save_path;
} opt = {NULL, NULL, NULL, 0, 1, 0, 0, NULL};

static volatile sig_atomic_t interrupted;

static void on_sigint(int sig)
{
    (void)sig;
    interrupted = 1;
}

static void die(int code, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static void die(int code, const char *fmt, ...)
{
    va_list ap;
    if (opt.tty)
        fputs("\n", stdout);
    fputs("bitween: ", stderr);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    exit(code);
}

/* ---- finding the agent ----------------------------------------------------- */

static char *read_text(const char *path)
{
    FILE *f = fopen(path, "re");
    char *buf;
    size_t n;
    if (!f)
        return NULL;
    buf = malloc(65537);
    n = buf ? fread(buf, 1, 65536, f) : 0;
    fclose(f);
    if (!buf)
        return NULL;
    buf[n] = '\0';
    return buf;
}

static void find_agent(void)
{
    char path[4200];
    const char *env_url = getenv("BITWEEN_RPC_URL"), *env_token = getenv("BITWEEN_RPC_TOKEN");
    const char *dir = opt.state_dir, *home;
    char dflt[4096];
    json_t *o = NULL;
    char *text;

    if (env_url && *env_url && env_token && *env_token && !opt.state_dir) {
        opt.url = strdup(env_url);
        opt.token = strdup(env_token);
        return;
    }
    if (!dir && (dir = getenv("BITWEEN_AGENT_STATE_DIR")) && !*dir)
        dir = NULL;
    if (!dir) {
        if ((home = getenv("XDG_STATE_HOME")) && *home == '/')
            snprintf(dflt, sizeof dflt, "%s/bitween", home);
        else if ((home = getenv("HOME")) && *home == '/')
            snprintf(dflt, sizeof dflt, "%s/.local/state/bitween", home);
        else
            die(EXIT_UNREACHABLE, "no state directory: use --state-dir, or set HOME");
        dir = dflt;
    }
    snprintf(path, sizeof path, "%s/rpc.json", dir);
    text = read_text(path);
    if (!text)
        die(EXIT_UNREACHABLE, "%s: %s (is bitween-agent running with this state directory?)", path,
            strerror(errno));
    o = json_loads(text, 0, NULL);
    free(text);
    if (!o || !json_is_string(json_object_get(o, "url")) ||
        !json_is_string(json_object_get(o, "token")))
        die(EXIT_UNREACHABLE, "%s: not an RPC file of bitween-agent", path);
    opt.url = strdup(env_url && *env_url ? env_url : json_string_value(json_object_get(o, "url")));
    opt.token = strdup(env_token && *env_token ? env_token
                                               : json_string_value(json_object_get(o, "token")));
    json_decref(o);
}

/* A string of the agent's reply, made safe for a terminal: names come
 * from contacts and torrents, so control characters (C0, DEL and the C1
 * range, which terminals read as escape sequences) become '?'. Up to 8
 * results live at once (a ring). */
static const char *safe(const char *text)
{
    static char ring[8][1024];
    static unsigned next;
    const unsigned char *s = (const unsigned char *)text;
    char *out = ring[next++ % 8];
    size_t n = 0;
    if (!s)
        return "";
    while (*s && n + 4 < sizeof ring[0]) {
        if (*s < 0x20 || *s == 0x7f) {
            out[n++] = '?';
            s++;
        } else if (s[0] == 0xc2 && s[1] >= 0x80 && s[1] <= 0x9f) {
            out[n++] = '?';
            s += 2;
        } else {
            out[n++] = (char)*s++;
        }
    }
    out[n] = '\0';
    return out;
}

static const char *str(json_t *o, const char *key)
{
    return safe(json_string_value(json_object_get(o, key)));
}

/* ---- JSON-RPC ------------------------------------------------------------- */

typedef struct buf {
    char *p;
    size_t n;
} buf_t;

static size_t on_body(char *data, size_t size, size_t nmemb, void *arg)
{
    buf_t *b = arg;
    size_t len = size * nmemb;
    char *np;
    if (b->n + len > MAX_REPLY || !(np = realloc(b->p, b->n + len + 1)))
        return 0;
    memcpy(np + b->n, data, len);
    b->n += len;
    np[b->n] = '\0';
    b->p = np;
    return len;
}

static int on_progress(void *arg, curl_off_t dt, curl_off_t dn, curl_off_t ut, curl_off_t un)
{
    (void)arg, (void)dt, (void)dn, (void)ut, (void)un;
    return interrupted != 0;
}

/* Call `method` with `params` (stolen); the result (the caller decrefs).
 * An error reply exits with its message. */
static json_t *rpc(const char *method, json_t *params)
{
    static CURL *curl;
    static unsigned long id;
    struct curl_slist *hdr = NULL;
    json_t *req, *reply, *result, *error;
    char *body, auth[600];
    buf_t b = {NULL, 0};
    long status = 0;
    CURLcode rc;

    if (!params)
        params = json_object();
    req = json_pack("{sssIssso}", "jsonrpc", "2.0", "id", (json_int_t)++id, "method", method,
                    "params", params); /* steals params */
    body = req ? json_dumps(req, JSON_COMPACT) : NULL;
    json_decref(req);
    if (!body)
        die(EXIT_REFUSED, "out of memory");
    if (!curl && !(curl = curl_easy_init()))
        die(EXIT_UNREACHABLE, "could not start libcurl");
    snprintf(auth, sizeof auth, "Authorization: Bearer %s", opt.token);
    hdr = curl_slist_append(hdr, auth);
    hdr = curl_slist_append(hdr, "Content-Type: application/json");
    curl_easy_setopt(curl, CURLOPT_URL, opt.url);
    curl_easy_setopt(curl, CURLOPT_HTTPHEADER, hdr);
    curl_easy_setopt(curl, CURLOPT_POSTFIELDS, body);
    curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(curl, CURLOPT_WRITEDATA, &b);
    curl_easy_setopt(curl, CURLOPT_TIMEOUT, 600L); /* add --wait can hash for minutes */
    curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
    curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(curl, CURLOPT_PROTOCOLS_STR, "http");
    /* the token goes to the agent only, never through a proxy */
    curl_easy_setopt(curl, CURLOPT_NOPROXY, "*");
    /* Ctrl-C ends a call that waits (add hashing a large folder) */
    curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
    curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
    rc = curl_easy_perform(curl);
    curl_slist_free_all(hdr);
    free(body);
    if (rc == CURLE_ABORTED_BY_CALLBACK)
        die(EXIT_INTR, "interrupted; the agent goes on with the request");
    if (rc != CURLE_OK)
        die(EXIT_UNREACHABLE, "cannot reach the agent at %s: %s", opt.url, curl_easy_strerror(rc));
    curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &status);
    if (status == 401 || status == 403 || status == 421)
        die(EXIT_UNREACHABLE, "the agent at %s refused the token or this client (HTTP %ld)",
            opt.url, status);
    reply = b.p ? json_loads(b.p, 0, NULL) : NULL;
    free(b.p);
    if (!reply)
        die(EXIT_UNREACHABLE, "the agent at %s sent no JSON-RPC reply (HTTP %ld)", opt.url, status);
    if ((error = json_object_get(reply, "error"))) {
        const char *msg = json_string_value(json_object_get(error, "message"));
        if (opt.json) {
            char *text = json_dumps(error, JSON_INDENT(2) | JSON_ENSURE_ASCII);
            fprintf(stderr, "%s\n", text ? text : "");
            free(text);
            exit(EXIT_REFUSED);
        }
        die(EXIT_REFUSED, "%s", msg ? safe(msg) : "the agent refused the request");
    }
    result = json_incref(json_object_get(reply, "result"));
    json_decref(reply);
    if (!result)
        die(EXIT_UNREACHABLE, "the agent sent a reply without a result");
    return result;
}

static void print_json(json_t *v)
{
    /* ASCII only: every character outside it as \uXXXX, safe on a terminal */
    char *text = json_dumps(v, JSON_INDENT(2) | JSON_ENCODE_ANY | JSON_ENSURE_ASCII);
    printf("%s\n", text ? text : "null");
    free(text);
}

/* ---- formatting --------------------------------------------------------------- */

static const char *human(double bytes, char *out, size_t n)
{
    static const char *const unit[] = {"B", "KiB", "MiB", "GiB", "TiB", "PiB"};
    int u = 0;
    while (bytes >= 1024 && u < 5) {
        bytes /= 1024;
        u++;
    }
    snprintf(out, n, u ? "%.1f %s" : "%.0f %s", bytes, unit[u]);
    return out;
}

static const char *duration(json_t *secs, char *out, size_t n)
{
    long long s;
    if (!json_is_integer(secs))
        return "--:--";
    s = json_integer_value(secs);
    if (s >= 100 * 3600)
        snprintf(out, n, ">99 h");
    else if (s >= 3600)
        snprintf(out, n, "%lld:%02lld:%02lld", s / 3600, s / 60 % 60, s % 60);
    else
        snprintf(out, n, "%lld:%02lld", s / 60, s % 60);
    return out;
}

static double num(json_t *o, const char *key)
{
    return json_number_value(json_object_get(o, key));
}

/* One torrent on one line: hash, state, progress, size, rates, name. */
static void torrent_line(json_t *t)
{
    char size[32], down[32], up[32];
    const char *hash = str(t, "hash");
    printf("%-12.12s %-20.20s %5.1f%% %10s %10s/s %10s/s  %s%s%s\n", *hash ? hash : "(hashing)",
           str(t, "state"), 100 * num(t, "progress"), human(num(t, "size"), size, sizeof size),
           human(num(t, "download_rate"), down, sizeof down),
           human(num(t, "upload_rate"), up, sizeof up), str(t, "name"),
           *str(t, "error") ? ": " : "", str(t, "error"));
}

/* ---- commands --------------------------------------------------------------------- */

/* A torrent's full hash from a full one or a unique prefix (6 or more). */
static char *resolve(const char *arg)
{
    size_t n = strlen(arg), i;
    json_t *list, *t;
    char *found = NULL;
    for (i = 0; i < n; i++)
        if (!strchr("0123456789abcdefABCDEF", arg[i]))
            die(EXIT_USAGE, "\"%s\" is not an info-hash (hex digits)", arg);
    if (n == 40)
        return strdup(arg);
    if (n < 6 || n > 40)
        die(EXIT_USAGE, "\"%s\": give the info-hash, or at least its first 6 digits", arg);
    list = rpc("bt.get_torrents", json_pack("{s[s]}", "fields", "hash"));
    json_array_foreach(json_object_get(list, "torrents"), i, t)
    {
        const char *h = str(t, "hash");
        if (strncasecmp(h, arg, n) != 0)
            continue;
        if (found)
            die(EXIT_USAGE, "\"%s\" matches several torrents: give more digits", arg);
        found = strdup(h);
    }
    json_decref(list);
    if (!found)
        die(EXIT_REFUSED, "no torrent %s", arg);
    return found;
}

static json_t *one_torrent(const char *hash)
{
    json_t *r = rpc("bt.get_torrents", json_pack("{ss}", "hash", hash));
    json_t *t = json_incref(json_array_get(json_object_get(r, "torrents"), 0));
    json_decref(r);
    return t;
}

/* Wait until `hash` seeds (or fails), showing it when `show`: a bar on a
 * terminal, a line per change otherwise. */
static int follow(const char *hash, int show)
{
    char last_state[64] = "";
    int last_decile = -1;
    for (;;) {
        json_t *t = one_torrent(hash);
        const char *state;
        double p;
        if (!t)
            die(EXIT_REFUSED, "%s is no longer in the agent", hash);
        state = str(t, "state");
        p = num(t, "progress");
        if (!show) {
            /* quiet */
        } else if (opt.tty) {
            char bar[31], down[32], eta[32];
            int i, fill = (int)(p * 30);
            for (i = 0; i < 30; i++)
                bar[i] = i < fill ? '#' : '.';
            bar[30] = '\0';
            printf("\r\033[K[%s] %5.1f%% %10s/s ETA %7s %3d peer%s  %s", bar, 100 * p,
                   human(num(t, "download_rate"), down, sizeof down),
                   duration(json_object_get(t, "eta"), eta, sizeof eta), (int)num(t, "peers"),
                   num(t, "peers") == 1 ? " " : "s", state);
            fflush(stdout);
        } else if (strcmp(state, last_state) != 0 || (int)(p * 10) != last_decile) {
            char done[32], size[32];
            printf("%s %.1f%% %s of %s %s\n", hash, 100 * p,
                   human(num(t, "done"), done, sizeof done),
                   human(num(t, "size"), size, sizeof size), state);
            fflush(stdout);
        }
        snprintf(last_state, sizeof last_state, "%s", state);
        last_decile = (int)(p * 10);
        if (strcmp(state, "seeding") == 0) {
            if (show && opt.tty)
                printf("\n");
            if (show)
                printf("done: %s\n", str(t, "path"));
            json_decref(t);
            return EXIT_OK;
        }
        if (strcmp(state, "error") == 0) {
            char msg[512];
            snprintf(msg, sizeof msg, "%s", str(t, "error"));
            json_decref(t);
            die(EXIT_REFUSED, "%s failed: %s", hash, msg);
        }
        json_decref(t);
        {
            struct timespec ts = {0, 500 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
        if (interrupted) {
            if (show && opt.tty)
                printf("\n");
            fprintf(stderr, "bitween: stopped waiting; the agent goes on downloading %s\n", hash);
            return EXIT_INTR;
        }
    }
}

static int cmd_get(int argc, char **argv)
{
    json_t *params, *r;
    char hash[41];
    int rc;
    if (argc != 1)
        die(EXIT_USAGE, "get takes one info-hash or magnet URI (bitween get --help)");
    params = json_pack("{ss}", strncmp(argv[0], "magnet:", 7) == 0 ? "magnet" : "hash", argv[0]);
    if (opt.save_path)
        json_object_set_new(params, "save_path", json_string(opt.save_path));
    r = rpc("bt.add_torrent_by_hash", params);
    if (opt.json && !opt.wait) {
        print_json(r);
        json_decref(r);
        return EXIT_OK;
    }
    snprintf(hash, sizeof hash, "%s", str(r, "hash"));
    if (!opt.json)
        printf("%s %s into %s (%lld source%s known)\n", hash,
               json_is_true(json_object_get(r, "duplicate")) ? "already added" : "added",
               str(r, "path"), (long long)num(r, "sources"), num(r, "sources") == 1 ? "" : "s");
    json_decref(r);
    if (!opt.wait)
        return EXIT_OK;
    if (opt.json) {
        /* wait quietly, then print the torrent as the agent has it */
        rc = follow(hash, 0);
        if (rc == EXIT_OK) {
            json_t *t = one_torrent(hash);
            print_json(t);
            json_decref(t);
        }
        return rc;
    }
    return follow(hash, 1);
}

static int cmd_add(int argc, char **argv)
{
    char *path;
    json_t *r;
    if (argc != 1)
        die(EXIT_USAGE, "add takes one path (bitween add --help)");
    if (!(path = realpath(argv[0], NULL)))
        die(EXIT_REFUSED, "%s: %s", argv[0], strerror(errno));
    r = rpc("bt.add_path", json_pack("{sssb}", "path", path, "wait", opt.wait));
    free(path);
    if (opt.json)
        print_json(r);
    else if (json_is_null(json_object_get(r, "hash")))
        printf("hashing %s (bitween list shows its progress)\n", str(r, "name"));
    else
        printf("%s %s%s\n", str(r, "hash"), str(r, "name"),
               json_is_true(json_object_get(r, "duplicate")) ? " (already shared)" : "");
    json_decref(r);
    return EXIT_OK;
}

static int cmd_list(int argc, char **argv)
{
    json_t *r, *t;
    size_t i;
    (void)argv;
    if (argc)
        die(EXIT_USAGE, "list takes no argument");
    r = rpc("bt.get_torrents",
            json_pack("{s[ssssssssss]}", "fields", "hash", "name", "state", "progress", "size",
                      "download_rate", "upload_rate", "error", "kind", "path"));
    if (opt.json) {
        print_json(r);
    } else {
        printf("%-12s %-20s %6s %10s %12s %12s  %s\n", "HASH", "STATE", "DONE", "SIZE", "DOWN",
               "UP", "NAME");
        json_array_foreach(json_object_get(r, "torrents"), i, t) torrent_line(t);
    }
    json_decref(r);
    return EXIT_OK;
}

static void print_share(json_t *s, const char *indent)
{
    char size[32];
    printf("%s%s  %10s  %s\n", indent, str(s, "hash"), human(num(s, "size"), size, sizeof size),
           str(s, "name"));
}

static int cmd_shares(int argc, char **argv)
{
    json_t *r, *c, *res, *s;
    size_t i, j, k;
    if (argc > 1)
        die(EXIT_USAGE, "shares takes at most one contact");
    r = rpc("xmpp.get_shares", argc ? json_pack("{ss}", "jid", argv[0]) : NULL);
    if (opt.json) {
        print_json(r);
        json_decref(r);
        return EXIT_OK;
    }
    json_array_foreach(json_object_get(r, "contacts"), i, c)
    {
        printf("%s\n", str(c, "jid"));
        json_array_foreach(json_object_get(c, "resources"), j, res)
        {
            printf("  %s\n", str(res, "resource"));
            json_array_foreach(json_object_get(res, "shares"), k, s) print_share(s, "    ");
        }
    }
    if (json_array_size(json_object_get(r, "contacts")) == 0)
        printf("no contact shares anything%s%s\n", argc ? " as " : "", argc ? argv[0] : "");
    json_decref(r);
    return EXIT_OK;
}

static int cmd_search(int argc, char **argv)
{
    json_t *r, *s, *src;
    size_t i, j;
    if (argc != 1)
        die(EXIT_USAGE, "search takes one text (quote it when it has spaces)");
    r = rpc("xmpp.search", json_pack("{ss}", "query", argv[0]));
    if (opt.json) {
        print_json(r);
        json_decref(r);
        return EXIT_OK;
    }
    json_array_foreach(json_object_get(r, "results"), i, s)
    {
        const char *here = str(s, "here");
        print_share(s, "");
        printf("    from");
        json_array_foreach(json_object_get(s, "sources"), j, src)
            printf(" %s/%s", str(src, "jid"), str(src, "resource"));
        printf("%s%s\n", *here ? "; here as a " : "", here);
    }
    if (json_array_size(json_object_get(r, "results")) == 0)
        printf("no share of a contact matches \"%s\"\n", argv[0]);
    json_decref(r);
    return EXIT_OK;
}

static int cmd_target(const char *method, int argc, char **argv)
{
    char *hash;
    json_t *params, *r;
    if (argc != 1)
        die(EXIT_USAGE, "give one info-hash (or its first digits)");
    hash = resolve(argv[0]);
    params = json_pack("{ss}", "hash", hash);
    if (strcmp(method, "bt.del_torrent") == 0)
        json_object_set_new(params, "delete_data", json_boolean(opt.delete_data));
    r = rpc(method, params);
    if (opt.json)
        print_json(r);
    else if (strcmp(method, "bt.del_torrent") == 0)
        printf("%s removed%s\n", hash,
               json_is_true(json_object_get(r, "data_deleted")) ? ", its data deleted" : "");
    else
        printf("%s %s\n", hash, str(r, "state"));
    json_decref(r);
    free(hash);
    return EXIT_OK;
}

static int cmd_status(int argc, char **argv)
{
    json_t *r, *x, *reg, *a;
    size_t i;
    (void)argv;
    if (argc)
        die(EXIT_USAGE, "status takes no argument");
    r = rpc("agent.status", NULL);
    if (opt.json) {
        print_json(r);
        json_decref(r);
        return EXIT_OK;
    }
    x = json_object_get(r, "xmpp");
    reg = json_object_get(r, "registration");
    printf("agent    %s/%s, bitween %s, %s\n", str(r, "jid"), str(r, "resource"), str(r, "version"),
           str(r, "backend"));
    printf("xmpp     %s%s%s%s\n", str(x, "state"),
           json_is_true(json_object_get(x, "tls")) ? " (TLS)" : "", *str(x, "error") ? ": " : "",
           str(x, "error"));
    if (reg)
        printf("shares   %s with %s: %lld announced, %lld not%s%s\n", str(reg, "state"),
               str(reg, "component"), (long long)num(reg, "announced"),
               (long long)num(reg, "not_announced"),
               *str(reg, "last_refusal") ? "; last refusal: " : "", str(reg, "last_refusal"));
    printf("address ");
    json_array_foreach(json_object_get(r, "addresses"), i, a)
        printf(" %s port %lld", str(a, "address"), (long long)num(a, "port"));
    printf("\ncontacts %lld with shares\n", (long long)num(r, "contacts"));
    json_decref(r);
    return EXIT_OK;
}

/* ---- main -------------------------------------------------------------------- */

static const char usage_text[] =
    "usage: bitween [OPTIONS] COMMAND [ARGS]\n"
    "\n"
    "The command line of bitween-agent: share files with your XMPP contacts and\n"
    "download what they share, peer to peer.\n"
    "\n"
    "commands:\n"
    "  add PATH              share a file or folder (waits until it is hashed)\n"
    "  list                  your shares and downloads\n"
    "  shares [CONTACT]      what your contacts share\n"
    "  search TEXT           contacts' shares whose names hold TEXT\n"
    "  get HASH|MAGNET       download from contacts; shows progress until done\n"
    "  rm HASH               stop sharing or downloading (--delete-data: downloads only)\n"
    "  pause HASH            pause a download\n"
    "  resume HASH           resume a download\n"
    "  status                the agent's connection, registration and addresses\n"
    "\n"
    "options:\n"
    "  --json                print the agent's JSON-RPC result as it is\n"
    "  --no-wait             add, get: return at once\n"
    "  --save-path DIR       get: a folder inside the agent's allowed download roots\n"
    "  --delete-data         rm: delete a download's files too\n"
    "  --state-dir DIR       the agent's state directory (default: $XDG_STATE_HOME/bitween,\n"
    "                        else ~/.local/state/bitween; or BITWEEN_AGENT_STATE_DIR)\n"
    "  --url URL             the agent's JSON-RPC URL (default: from the state directory)\n"
    "  -h, --help            this text; COMMAND --help: the command's\n"
    "  --version\n"
    "\n"
    "HASH is an info-hash (40 hex digits) or its first digits (6 or more) when they\n"
    "name one torrent. The token comes from the state directory or BITWEEN_RPC_TOKEN.\n"
    "\n"
    "exit status: 0 done, 1 refused or failed (the reason on stderr), 2 usage error,\n"
    "3 the agent cannot be reached, 130 interrupted while waiting (the agent goes on).\n";

static const struct {
    const char *name, *help;
} command_help[] = {
    {"add", "usage: bitween add PATH [--no-wait] [--json]\n"
            "Share a file or folder with your contacts. Waits until it is hashed and\n"
            "prints its info-hash; --no-wait returns at once (bitween list shows the\n"
            "hashing progress).\n"},
    {"list", "usage: bitween list [--json]\n"
             "Your shares and downloads: hash, state, progress, size, rates, name.\n"},
    {"shares", "usage: bitween shares [CONTACT] [--json]\n"
               "What your contacts share, per device; CONTACT (a bare JID) shows one.\n"},
    {"search", "usage: bitween search TEXT [--json]\n"
               "Contacts' shares whose names hold TEXT (letters compared without case),\n"
               "one line per info-hash with the devices that share it.\n"},
    {"get", "usage: bitween get HASH|MAGNET [--no-wait] [--save-path DIR] [--json]\n"
            "Download from every contact device that shares HASH into a new folder of\n"
            "the agent's download directory. On a terminal a progress bar with rate,\n"
            "ETA and peers runs until it is done; otherwise a line per change. A hash\n"
            "nobody shares yet waits for a source. --no-wait returns at once.\n"},
    {"rm", "usage: bitween rm HASH [--delete-data] [--json]\n"
           "Stop sharing or downloading HASH. --delete-data also deletes a download's\n"
           "files; a share of your own files never deletes them.\n"},
    {"pause", "usage: bitween pause HASH [--json]\nPause a download.\n"},
    {"resume", "usage: bitween resume HASH [--json]\nResume a download (after an error too).\n"},
    {"status", "usage: bitween status [--json]\n"
               "The agent's XMPP connection, its registration with the component, its\n"
               "addresses and how many contacts share something.\n"},
};

int main(int argc, char **argv)
{
    static const struct option longopts[] = {
        {"json", no_argument, NULL, 'j'},
        {"no-wait", no_argument, NULL, 'n'},
        {"save-path", required_argument, NULL, 'p'},
        {"delete-data", no_argument, NULL, 'd'},
        {"state-dir", required_argument, NULL, 's'},
        {"url", required_argument, NULL, 'u'},
        {"help", no_argument, NULL, 'h'},
        {"version", no_argument, NULL, 'V'},
        {NULL, 0, NULL, 0},
    };
    const char *cmd, *url = NULL;
    int c, help = 0, rc;
    size_t i;

    /* GNU getopt permutes: options may come before or after the command */
    while ((c = getopt_long(argc, argv, "h", longopts, NULL)) != -1) {
        switch (c) {
        case 'j':
            opt.json = 1;
            break;
        case 'n':
            opt.wait = 0;
            break;
        case 'p':
            opt.save_path = optarg;
            break;
        case 'd':
            opt.delete_data = 1;
            break;
        case 's':
            opt.state_dir = optarg;
            break;
        case 'u':
            url = optarg;
            break;
        case 'h':
            help = 1;
            break;
        case 'V':
            printf("bitween %s\n", BITWEEN_VERSION);
            return EXIT_OK;
        default:
            fprintf(stderr, "%s", usage_text);
            return EXIT_USAGE;
        }
    }
    if (optind >= argc) {
        fputs(usage_text, help ? stdout : stderr);
        return help ? EXIT_OK : EXIT_USAGE;
    }
    cmd = argv[optind++];
    for (i = 0; i < sizeof command_help / sizeof command_help[0]; i++)
        if (strcmp(cmd, command_help[i].name) == 0)
            break;
    if (i == sizeof command_help / sizeof command_help[0]) {
        fprintf(stderr, "bitween: no command \"%s\"\n\n%s", cmd, usage_text);
        return EXIT_USAGE;
    }
    if (help) {
        fputs(command_help[i].help, stdout);
        return EXIT_OK;
    }
    opt.tty = isatty(STDOUT_FILENO) && !opt.json;
    find_agent();
    if (url) {
        free(opt.url);
        opt.url = strdup(url);
    }
    if (!opt.url || !opt.token)
        die(EXIT_REFUSED, "out of memory");
    signal(SIGINT, on_sigint);
    curl_global_init(CURL_GLOBAL_DEFAULT);
    argc -= optind;
    argv += optind;
    if (strcmp(cmd, "add") == 0)
        rc = cmd_add(argc, argv);
    else if (strcmp(cmd, "list") == 0)
        rc = cmd_list(argc, argv);
    else if (strcmp(cmd, "shares") == 0)
        rc = cmd_shares(argc, argv);
    else if (strcmp(cmd, "search") == 0)
        rc = cmd_search(argc, argv);
    else if (strcmp(cmd, "get") == 0)
        rc = cmd_get(argc, argv);
    else if (strcmp(cmd, "rm") == 0)
        rc = cmd_target("bt.del_torrent", argc, argv);
    else if (strcmp(cmd, "pause") == 0)
        rc = cmd_target("bt.pause", argc, argv);
    else if (strcmp(cmd, "resume") == 0)
        rc = cmd_target("bt.resume", argc, argv);
    else
        rc = cmd_status(argc, argv);
    free(opt.url);
    free(opt.token);
    return rc;
}
