/* SPDX-License-Identifier: MIT */
/*
 * Fuzz target: the agent's model of contacts' shares (agent/contacts.c)
 * fed items as a PEP notification carries them, from raw XML bytes through
 * libstrophe's parser. The first byte picks the bounds; each input is
 * given twice in a row (a server delivers some notifications twice) and
 * then retracted. Whatever the input: a refusal leaves the model as it
 * was, the second delivery changes nothing, every share of a kept item is
 * found through the hash index, the per-contact bounds hold, and a
 * retraction empties the model.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "contacts.h"
#include "fuzz.h"

static xmpp_ctx_t *fuzz_ctx(void)
{
    static xmpp_ctx_t *ctx;
    if (!ctx)
        ctx = xmpp_ctx_new(NULL, NULL);
    FUZZ_CHECK(ctx != NULL);
    return ctx;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    contacts_limits_t lim = {4, 3, 10, 4096, 1 << 20};
    contacts_t *c;
    xmpp_stanza_t *st;
    shares_error_t err;
    contacts_source_t src[16];
    const char *bare;
    const shares_item_t *item;
    char *text;
    int rc, rc2;
    size_t ri, si, total = 0;

    if (size < 1)
        return 0;
    if (data[0] & 1) {
        lim.max_resources = 1;
        lim.max_shares = 2;
        lim.max_item_bytes = 1024;
    }
    text = fuzz_cstr(data + 1, size - 1);
    st = xmpp_stanza_new_from_string(fuzz_ctx(), text);
    free(text);
    if (!st)
        return 0;
    c = contacts_new(&lim);
    FUZZ_CHECK(c != NULL);
    FUZZ_CHECK(contacts_update(c, "bob@example.org", st, &err) == CONTACTS_EFORBID);
    FUZZ_CHECK(contacts_roster_set(c, "bob@example.org", 1) == 0);
    memset(&err, 0, sizeof err);
    rc = contacts_update(c, "bob@example.org", st, &err);
    FUZZ_CHECK(rc == CONTACTS_CHANGED || rc == CONTACTS_SAME || rc == CONTACTS_EINVAL);
    if (rc == CONTACTS_EINVAL) {
        FUZZ_CHECK(err.message[0] && fuzz_text_safe(err.message));
        FUZZ_CHECK(contacts_count(c) == 0);
    }
    rc2 = contacts_update(c, "bob@example.org", st, &err);
    FUZZ_CHECK(rc2 == (rc == CONTACTS_EINVAL ? CONTACTS_EINVAL : CONTACTS_SAME));
    if (contacts_get(c, 0, &bare, &item) == 0) {
        FUZZ_CHECK(strcmp(bare, "bob@example.org") == 0);
        FUZZ_CHECK(shares_item_resource_count(item) <= lim.max_resources);
        for (ri = 0; ri < shares_item_resource_count(item); ri++)
            for (si = 0; si < shares_item_share_count(item, ri); si++) {
                shares_share_t sh;
                FUZZ_CHECK(shares_item_share(item, ri, si, &sh) == 0);
                FUZZ_CHECK(contacts_sources(c, sh.hash, src, 16) >= 1);
                total++;
            }
        FUZZ_CHECK(total <= lim.max_shares);
    }
    FUZZ_CHECK(contacts_update(c, "bob@example.org", NULL, &err) >= 0);
    FUZZ_CHECK(contacts_count(c) == 0);
    contacts_free(c);
    xmpp_stanza_release(st);
    return 0;
}
