/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the merged-item parser, shares_item_parse_text(), as a
 * reader of contacts' PEP items uses it. The first byte picks the limits
 * (low two bits: defaults, small, none, a tight item size), the rest is
 * the XML text. A refusal must carry a printable message; an item that
 * parses must survive the round trip: its canonical text (written
 * directly, and built through libstrophe, byte for byte the same) parses
 * again into an item with the same text and digest, every value read back
 * is valid and canonical, and the same text parses without limits too.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "shares.h"

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
    case 1:
        lim->max_resources = 2;
        lim->max_shares = 2;
        lim->max_addresses = 2;
        lim->max_name_bytes = 12;
        lim->max_resource_bytes = 10;
        lim->max_item_bytes = 600;
        break;
    case 2: /* 0: no limit at all */
        memset(lim, 0, sizeof *lim);
        break;
    case 3:
        lim->max_item_bytes = 256;
        break;
    default:
        break;
    }
}

/* Every value the item hands out is valid and in canonical form. */
static void check_values(const shares_item_t *item, const shares_limits_t *lim)
{
    size_t ri, i, nr = shares_item_resource_count(item);
    char canon[SHARES_ADDR_MAX];

    FUZZ_CHECK(!lim->max_resources || nr <= lim->max_resources);
    for (ri = 0; ri < nr; ri++) {
        const char *res = shares_item_resource(item, ri);
        size_t ns = shares_item_share_count(item, ri), na = shares_item_address_count(item, ri);

        FUZZ_CHECK(res != NULL && shares_validate_resource(res, 0, NULL) == SHARES_OK);
        FUZZ_CHECK(!lim->max_resource_bytes || strlen(res) <= lim->max_resource_bytes);
        FUZZ_CHECK(!lim->max_shares || ns <= lim->max_shares);
        FUZZ_CHECK(!lim->max_addresses || na <= lim->max_addresses);
        for (i = 0; i < ns; i++) {
            shares_share_t sh;
            size_t hl;

            FUZZ_CHECK(shares_item_share(item, ri, i, &sh) == SHARES_OK);
            hl = strlen(sh.hash);
            FUZZ_CHECK((hl == 40 || hl == 64) && strspn(sh.hash, "0123456789abcdef") == hl);
            FUZZ_CHECK(shares_validate_name(sh.name, lim->max_name_bytes, NULL) == SHARES_OK);
            FUZZ_CHECK(sh.size <= (uint64_t)INT64_MAX);
        }
        for (i = 0; i < na; i++) {
            shares_address_t ad;

            FUZZ_CHECK(shares_item_address(item, ri, i, &ad) == SHARES_OK);
            FUZZ_CHECK(ad.port >= 1);
            FUZZ_CHECK(shares_canon_address(ad.address, canon, NULL) == SHARES_OK);
            FUZZ_CHECK(strcmp(canon, ad.address) == 0);
        }
        FUZZ_CHECK(shares_item_share(item, ri, ns, &(shares_share_t){0}) == SHARES_ERANGE);
    }
}

/* Canonical text of `item`, checked against the libstrophe serializer. */
static char *canonical(xmpp_ctx_t *ctx, const shares_item_t *item, size_t *len,
                       const shares_limits_t *lim)
{
    char *text = NULL, *built = NULL;
    size_t blen = 0;
    shares_error_t err;

    FUZZ_CHECK(shares_item_write(item, &text, len, &err) == SHARES_OK);
    FUZZ_CHECK(text != NULL && strlen(text) == *len);
    FUZZ_CHECK(!lim->max_item_bytes || *len <= lim->max_item_bytes);
    FUZZ_CHECK(shares_item_serialize(item, ctx, &built, &blen, &err) == SHARES_OK);
    FUZZ_CHECK(blen == *len && memcmp(built, text, blen) == 0);
    free(built);
    return text;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    xmpp_ctx_t *ctx = fuzz_ctx();
    shares_limits_t lim, nolim;
    shares_item_t *item = NULL, *again = NULL;
    shares_error_t err = {0};
    char *xml, *text, *text2;
    char d1[SHARES_DIGEST_HEX], d2[SHARES_DIGEST_HEX], dt[SHARES_DIGEST_HEX];
    size_t len, len2;
    int rc;

    if (size < 1)
        return 0;
    pick_limits(data[0], &lim);
    memset(&nolim, 0, sizeof nolim);
    xml = fuzz_cstr(data + 1, size - 1);
    rc = shares_item_parse_text(ctx, xml, &lim, &item, &err);
    if (rc != SHARES_OK) {
        FUZZ_CHECK(item == NULL);
        FUZZ_CHECK(rc == SHARES_EINVAL || rc == SHARES_ELIMIT);
        FUZZ_CHECK(err.code == rc);
        FUZZ_CHECK(memchr(err.message, '\0', sizeof err.message) != NULL);
        FUZZ_CHECK(err.message[0] != '\0' && fuzz_text_safe(err.message));
        free(xml);
        return 0;
    }
    FUZZ_CHECK(item != NULL);
    check_values(item, &lim);
    text = canonical(ctx, item, &len, &lim);
    FUZZ_CHECK(shares_item_digest(item, d1, &err) == SHARES_OK);
    FUZZ_CHECK(shares_text_digest(text, len, dt) == SHARES_OK);
    FUZZ_CHECK(strcmp(d1, dt) == 0);

    /* the canonical text is a fixed point of parse + write */
    rc = shares_item_parse_text(ctx, text, &lim, &again, &err);
    if (rc != SHARES_OK)
        fprintf(stderr, "canonical text refused: %s\n%s\n", err.message, text);
    FUZZ_CHECK(rc == SHARES_OK);
    text2 = canonical(ctx, again, &len2, &lim);
    FUZZ_CHECK(len2 == len && memcmp(text, text2, len) == 0);
    FUZZ_CHECK(shares_item_digest(again, d2, &err) == SHARES_OK);
    FUZZ_CHECK(strcmp(d1, d2) == 0);
    free(text2);
    shares_item_free(again);
    again = NULL;

    /* what fits under limits fits without them, with the same text */
    FUZZ_CHECK(shares_item_parse_text(ctx, xml, &nolim, &again, &err) == SHARES_OK);
    text2 = canonical(ctx, again, &len2, &nolim);
    FUZZ_CHECK(len2 == len && memcmp(text, text2, len) == 0);
    free(text2);
    shares_item_free(again);

    free(text);
    shares_item_free(item);
    free(xml);
    return 0;
}
