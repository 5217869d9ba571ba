/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the agent request parser, from raw bytes. The first byte
 * picks a variant (low two bits: the per-resource limits; next two: the
 * served domains; the higher bits, with the request's seq, the registry
 * verdict replied to a request that parses), the rest is XML text that
 * libstrophe's parser turns into a stanza (xmpp_stanza_new_from_string(),
 * the parser the component's stream uses) for agent_request_parse(). The
 * replies the component could build from the outcome (result, error from
 * the parser's or the registry's verdict, disco#info, ping) are built,
 * serialized and must parse again as XML, and the parser's documented
 * promises are checked: a refusal carries a printable text and leaves the
 * request zeroed; an accepted request names a user of a served domain and
 * holds what its operation needs, within the limits, and the privileged
 * publish built from its item (as text and as a stanza) is well-formed
 * and carries the same item. The same stanza also goes through the parsers
 * of what the server sends back (privileged IQ reply, privilege
 * advertisement), which any user can try to forge.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "agent_proto.h"
#include "fuzz.h"
#include "stanza.h"

static const char *const domains_one[] = {"example.org", NULL};
static const char *const domains_more[] = {"example.org", "Other.Example.NET", "shares.example.org",
                                           NULL};
static const char *const domains_none[] = {NULL};
static const char *const *const domain_lists[4] = {domains_one, domains_more, domains_none, NULL};

static const agent_errcode_t verdicts[8] = {
    AGENT_ERR_CONFLICT, AGENT_ERR_NOT_FOUND, AGENT_ERR_UNAVAILABLE,
    AGENT_ERR_INTERNAL, AGENT_ERR_POLICY,    AGENT_ERR_FORBIDDEN,
    AGENT_ERR_NONE,     (agent_errcode_t)77, /* not a code: must still be safe */
};

static xmpp_ctx_t *fuzz_ctx(void)
{
    static xmpp_ctx_t *ctx;
    if (!ctx)
        ctx = xmpp_ctx_new(NULL, NULL);
    FUZZ_CHECK(ctx != NULL);
    return ctx;
}

static void pick_limits(unsigned variant, shares_limits_t *lim)
{
    shares_limits_default(lim);
    switch (variant & 3) {
    case 1: /* small quotas: the limit paths within a short input */
        lim->max_shares = 2;
        lim->max_addresses = 2;
        lim->max_name_bytes = 12;
        lim->max_resource_bytes = 10;
        lim->max_item_bytes = 400;
        break;
    case 2: /* one of each */
        lim->max_shares = 1;
        lim->max_addresses = 1;
        lim->max_name_bytes = 1;
        lim->max_resource_bytes = 1;
        lim->max_item_bytes = 160;
        break;
    case 3: /* 0: no limit at all */
        memset(lim, 0, sizeof *lim);
        break;
    default:
        break;
    }
}

/* Serialize `st` (taken) and parse the text back: what the component
 * sends must be well-formed, or the server closes its stream. */
static void check_reply(xmpp_ctx_t *ctx, xmpp_stanza_t *st)
{
    char *text = NULL;
    size_t len = 0;
    xmpp_stanza_t *back;

    FUZZ_CHECK(st != NULL);
    FUZZ_CHECK(xmpp_stanza_to_text(st, &text, &len) == XMPP_EOK);
    FUZZ_CHECK(text != NULL && strlen(text) == len);
    back = xmpp_stanza_new_from_string(ctx, text);
    FUZZ_CHECK(back != NULL);
    xmpp_stanza_release(back);
    xmpp_free(ctx, text);
    xmpp_stanza_release(st);
}

static int is_lower_hex(const char *s)
{
    size_t n = strlen(s);
    if (n != 40 && n != 64)
        return 0;
    return strspn(s, "0123456789abcdef") == n;
}

/* First element named `name` below `st`, depth first; NULL if none. */
static xmpp_stanza_t *find_element(xmpp_stanza_t *st, const char *name)
{
    xmpp_stanza_t *c, *found;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        if (!xmpp_stanza_is_tag(c))
            continue;
        if (strcmp(xmpp_stanza_get_name(c), name) == 0)
            return c;
        if ((found = find_element(c, name)) != NULL)
            return found;
    }
    return NULL;
}

/* What the component would publish for an accepted register or add: the
 * item text spliced into the privileged IQ, and the same IQ built as a
 * stanza. Both must be well-formed and carry the same item. */
static void check_publish(xmpp_ctx_t *ctx, const agent_request_t *req)
{
    shares_item_t *back = NULL;
    shares_error_t serr;
    char d1[SHARES_DIGEST_HEX], d2[SHARES_DIGEST_HEX];
    char *item_text = NULL, *iq_text;
    size_t item_len = 0, iq_len = 0;
    xmpp_stanza_t *iq, *payload;

    FUZZ_CHECK(shares_item_write(req->item, &item_text, &item_len, &serr) == SHARES_OK);
    FUZZ_CHECK(shares_text_digest(item_text, item_len, d1) == SHARES_OK);
    iq_text = stanza_text_privileged_publish(ctx, "shares.example.org", req->jid, "pub-1",
                                             "pub-1-inner", item_text, item_len, &iq_len);
    FUZZ_CHECK(iq_text != NULL && strlen(iq_text) == iq_len);
    iq = xmpp_stanza_new_from_string(ctx, iq_text);
    FUZZ_CHECK(iq != NULL);
    payload = find_element(iq, "user_shares");
    FUZZ_CHECK(payload != NULL);
    FUZZ_CHECK(shares_item_parse(payload, NULL, &back, &serr) == SHARES_OK);
    FUZZ_CHECK(shares_item_digest(back, d2, &serr) == SHARES_OK);
    FUZZ_CHECK(strcmp(d1, d2) == 0);
    shares_item_free(back);
    xmpp_stanza_release(iq);
    free(iq_text);
    free(item_text);

    check_reply(ctx,
                stanza_build_privileged_publish(ctx, "shares.example.org", req->jid, "pub-1",
                                                "pub-1-inner", shares_item_build(req->item, ctx)));
}

/* The promises of agent_request_parse() about an accepted request. */
static void check_request(const agent_request_t *req, const char *const *domains,
                          const shares_limits_t *lim)
{
    const char *at, *domain;
    size_t i, j, n;
    int served = 0;

    FUZZ_CHECK(domains != NULL && domains[0] != NULL); /* nobody served: nothing accepted */
    FUZZ_CHECK(req->jid != NULL && req->resource != NULL && req->resource[0] != '\0');
    FUZZ_CHECK(fuzz_text_safe(req->resource));
    at = strrchr(req->jid, '@');
    domain = at ? at + 1 : req->jid;
    for (i = 0; domain[i]; i++)
        FUZZ_CHECK(domain[i] < 'A' || domain[i] > 'Z');
    for (i = 0; domains[i]; i++)
        served |= strcasecmp(domains[i], domain) == 0;
    FUZZ_CHECK(served);
    FUZZ_CHECK(strchr(req->jid, '/') == NULL);
    FUZZ_CHECK(agent_op_name(req->op) != NULL);

    switch (req->op) {
    case AGENT_OP_REGISTER:
    case AGENT_OP_ADD: {
        char *text = NULL;
        size_t len = 0;
        shares_error_t serr;

        FUZZ_CHECK(req->seq >= 0);
        FUZZ_CHECK(req->item != NULL && req->hashes == NULL && req->n_hashes == 0);
        FUZZ_CHECK(shares_item_resource_count(req->item) == 1);
        FUZZ_CHECK(strcmp(shares_item_resource(req->item, 0), req->resource) == 0);
        n = shares_item_share_count(req->item, 0);
        FUZZ_CHECK(!lim->max_shares || n <= lim->max_shares);
        n = shares_item_address_count(req->item, 0);
        FUZZ_CHECK(!lim->max_addresses || n <= lim->max_addresses);
        FUZZ_CHECK(req->op == AGENT_OP_REGISTER || n == 0);
        FUZZ_CHECK(shares_item_write(req->item, &text, &len, &serr) == SHARES_OK);
        FUZZ_CHECK(!lim->max_item_bytes || len <= lim->max_item_bytes);
        free(text);
        break;
    }
    case AGENT_OP_REMOVE:
        FUZZ_CHECK(req->seq >= 0);
        FUZZ_CHECK(req->item == NULL && req->hashes != NULL && req->n_hashes > 0);
        FUZZ_CHECK(!lim->max_shares || req->n_hashes <= lim->max_shares);
        for (i = 0; i < req->n_hashes; i++) {
            FUZZ_CHECK(is_lower_hex(req->hashes[i]));
            for (j = 0; j < i && j < 64; j++) /* no duplicates (near ones suffice) */
                FUZZ_CHECK(strcmp(req->hashes[i], req->hashes[i - j - 1]) != 0);
        }
        break;
    case AGENT_OP_UNREGISTER:
        FUZZ_CHECK(req->seq == -1 && req->item == NULL && req->hashes == NULL);
        break;
    default:
        FUZZ_CHECK(!"unknown operation");
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_ctx_t *ctx = fuzz_ctx();
    const char *const *domains;
    shares_limits_t lim;
    agent_request_t req;
    agent_error_t err, verdict;
    stanza_privileges_t privs;
    char *xml, errbuf[128];
    char q1[AGENT_QUOTE_MAX], q2[AGENT_QUOTE_MAX];
    xmpp_stanza_t *st;
    unsigned variant;

    if (size < 1)
        return 0;
    variant = data[0];
    pick_limits(variant, &lim);
    domains = domain_lists[(variant >> 2) & 3];
    xml = fuzz_cstr(data + 1, size - 1);
    st = xmpp_stanza_new_from_string(ctx, xml);
    free(xml);
    if (!st)
        return 0;

    if (agent_request_parse(st, domains, &lim, &req, &err) == 0) {
        FUZZ_CHECK(err.code == AGENT_ERR_NONE);
        check_request(&req, domains, &lim);
        if (req.item)
            check_publish(ctx, &req);
        check_reply(ctx, stanza_build_iq_result(ctx, st));
        /* the registry's verdicts quote what came from the network */
        agent_error_set(&verdict, verdicts[((uint64_t)req.seq + (variant >> 4)) & 7],
                        "stored seq %lld for %s/%s", (long long)req.seq, agent_quote(q1, req.jid),
                        agent_quote(q2, req.resource));
        FUZZ_CHECK(fuzz_text_safe(verdict.text));
        check_reply(ctx, stanza_build_agent_error(ctx, st, &verdict));
    } else {
        FUZZ_CHECK(err.code != AGENT_ERR_NONE);
        FUZZ_CHECK(err.text[0] != '\0' && memchr(err.text, '\0', sizeof err.text) != NULL);
        FUZZ_CHECK(fuzz_text_safe(err.text));
        FUZZ_CHECK(req.jid == NULL && req.resource == NULL && req.item == NULL &&
                   req.hashes == NULL && req.n_hashes == 0 && req.seq == -1);
        FUZZ_CHECK(agent_error_type(err.code) != NULL && agent_error_condition(err.code) != NULL);
        check_reply(ctx, stanza_build_agent_error(ctx, st, &err));
    }
    agent_request_clear(&req);
    agent_request_clear(&req); /* documented safe on a cleared request */
    FUZZ_CHECK(req.seq == -1 && req.jid == NULL);

    check_reply(ctx, stanza_build_disco_info(ctx, st, "bitween", &lim));
    /* the registration check pings the sender, echoing a server-stamped
     * `from` and, here, whatever id the input carries */
    if (xmpp_stanza_get_from(st) && xmpp_stanza_get_id(st))
        check_reply(ctx, stanza_build_ping(ctx, "shares.example.org", xmpp_stanza_get_from(st),
                                           xmpp_stanza_get_id(st)));

    /* replies and advertisements from the server, forgeable by users */
    stanza_parse_privileged_result(st, errbuf, sizeof errbuf);
    FUZZ_CHECK(memchr(errbuf, '\0', sizeof errbuf) != NULL && fuzz_text_safe(errbuf));
    if (stanza_parse_privileges(st, &privs) == 0) {
        FUZZ_CHECK(privs.found);
        FUZZ_CHECK(memchr(privs.roster, '\0', STANZA_PERM_MAX) != NULL);
        FUZZ_CHECK(memchr(privs.message, '\0', STANZA_PERM_MAX) != NULL);
        FUZZ_CHECK(memchr(privs.presence, '\0', STANZA_PERM_MAX) != NULL);
    }

    xmpp_stanza_release(st);
    return 0;
}
