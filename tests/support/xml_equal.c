/* SPDX-License-Identifier: MIT */
/*
 * Structural XML comparison of libstrophe stanzas for the unit and golden
 * tests (see xml_equal.h). Children are flattened into a list of items,
 * each an element or a merged run of text; whitespace-only runs are
 * dropped; then both lists are compared in order, recursively.
 */
#include "xml_equal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "xmpp_compat.h"

#define MAX_ATTRS 64 /* attributes per element; a test never needs more */

static int differ(char *why, size_t len, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

static int differ(char *why, size_t len, const char *path, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (why && len)
        snprintf(why, len, "%s: %s", path, msg);
    return 0;
}

static const char *attr_key(const char *name)
{
    return strcmp(name, "xml:lang") == 0 ? "lang" : name;
}

/* Value of attribute `key` (normalized) among `n` name/value pairs. */
static const char *find_attr(const char **attrs, int n, const char *key)
{
    int i;

    for (i = 0; i < n; i += 2)
        if (strcmp(attr_key(attrs[i]), key) == 0)
            return attrs[i + 1];
    return NULL;
}

/* An item of a child list: an element, or text (owned, merged). */
struct item {
    xmpp_stanza_t *el;
    char *text;
};

static int is_blank(const char *s)
{
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return 0;
    return 1;
}

static void free_items(struct item *items, size_t n)
{
    size_t i;

    for (i = 0; i < n; i++)
        free(items[i].text);
    free(items);
}

/* Flatten the children of `st`. Returns NULL on allocation failure. */
static struct item *child_items(xmpp_stanza_t *st, size_t *count)
{
    xmpp_stanza_t *c;
    struct item *items;
    size_t n = 0, cap = 1, tlen, olen;
    const char *t;
    char *grown;

    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c))
        cap++;
    items = calloc(cap, sizeof *items);
    if (!items)
        return NULL;
    for (c = xmpp_stanza_get_children(st); c; c = xmpp_stanza_get_next(c)) {
        if (xmpp_stanza_is_tag(c)) {
            if (n > 0 && items[n - 1].text && is_blank(items[n - 1].text)) {
                free(items[n - 1].text);
                items[n - 1].text = NULL;
                n--;
            }
            items[n++].el = c;
            continue;
        }
        t = xmpp_stanza_get_text_ptr(c);
        if (!t)
            continue;
        tlen = strlen(t);
        if (n > 0 && items[n - 1].text) {
            olen = strlen(items[n - 1].text);
            grown = realloc(items[n - 1].text, olen + tlen + 1);
            if (!grown)
                goto fail;
            memcpy(grown + olen, t, tlen + 1);
            items[n - 1].text = grown;
        } else {
            items[n].text = malloc(tlen + 1);
            if (!items[n].text)
                goto fail;
            memcpy(items[n].text, t, tlen + 1);
            n++;
        }
    }
    if (n > 0 && items[n - 1].text && is_blank(items[n - 1].text)) {
        free(items[n - 1].text);
        items[n - 1].text = NULL;
        n--;
    }
    *count = n;
    return items;

fail:
    free_items(items, cap);
    return NULL;
}

static int compare(xmpp_stanza_t *e, const char *e_parent_ns, xmpp_stanza_t *a,
                   const char *a_parent_ns, const char *parent_path, char *why, size_t len)
{
    const char *eattrs[MAX_ATTRS * 2], *aattrs[MAX_ATTRS * 2];
    const char *ename = xmpp_stanza_get_name(e), *aname = xmpp_stanza_get_name(a);
    const char *ens, *ans, *key, *av;
    struct item *ei = NULL, *ai = NULL;
    size_t en = 0, an = 0, i;
    int ec, ac, k, eq = 0;
    char path[1024];

    snprintf(path, sizeof path, "%s/%s", parent_path, ename ? ename : "?");
    if (!ename || !aname || strcmp(ename, aname) != 0)
        return differ(why, len, path, "element <%s/> expected, got <%s/>", ename ? ename : "?",
                      aname ? aname : "?");
    ens = xmpp_stanza_get_ns(e) ? xmpp_stanza_get_ns(e) : e_parent_ns;
    ans = xmpp_stanza_get_ns(a) ? xmpp_stanza_get_ns(a) : a_parent_ns;
    if ((ens == NULL) != (ans == NULL) || (ens && strcmp(ens, ans) != 0))
        return differ(why, len, path, "namespace \"%s\" expected, got \"%s\"", ens ? ens : "(none)",
                      ans ? ans : "(none)");

    if (xmpp_stanza_get_attribute_count(e) > MAX_ATTRS ||
        xmpp_stanza_get_attribute_count(a) > MAX_ATTRS)
        return differ(why, len, path, "more than %d attributes", MAX_ATTRS);
    ec = xmpp_stanza_get_attributes(e, eattrs, MAX_ATTRS * 2);
    ac = xmpp_stanza_get_attributes(a, aattrs, MAX_ATTRS * 2);
    for (k = 0; k < ec; k += 2) {
        key = attr_key(eattrs[k]);
        if (strcmp(key, "xmlns") == 0)
            continue;
        av = find_attr(aattrs, ac, key);
        if (!av)
            return differ(why, len, path, "attribute %s=\"%s\" missing", key, eattrs[k + 1]);
        if (strcmp(av, eattrs[k + 1]) != 0)
            return differ(why, len, path, "attribute %s: expected \"%s\", got \"%s\"", key,
                          eattrs[k + 1], av);
    }
    for (k = 0; k < ac; k += 2) {
        key = attr_key(aattrs[k]);
        if (strcmp(key, "xmlns") != 0 && !find_attr(eattrs, ec, key))
            return differ(why, len, path, "unexpected attribute %s=\"%s\"", key, aattrs[k + 1]);
    }

    ei = child_items(e, &en);
    ai = child_items(a, &an);
    if (!ei || !ai) {
        differ(why, len, path, "out of memory");
        goto out;
    }
    for (i = 0; i < en && i < an; i++) {
        if (ei[i].text || ai[i].text) {
            if (!ei[i].text || !ai[i].text) {
                differ(why, len, path, "child #%zu: expected %s, got %s", i + 1,
                       ei[i].text ? "text" : "an element", ai[i].text ? "text" : "an element");
                goto out;
            }
            if (strcmp(ei[i].text, ai[i].text) != 0) {
                differ(why, len, path, "text \"%s\" expected, got \"%s\"", ei[i].text, ai[i].text);
                goto out;
            }
        } else if (!compare(ei[i].el, ens, ai[i].el, ans, path, why, len)) {
            goto out;
        }
    }
    if (en != an) {
        differ(why, len, path, "%zu children expected, got %zu", en, an);
        goto out;
    }
    eq = 1;

out:
    if (ei)
        free_items(ei, en);
    if (ai)
        free_items(ai, an);
    return eq;
}

int xml_equal(const xmpp_stanza_t *expected, const xmpp_stanza_t *actual, char *why, size_t len)
{
    xmpp_stanza_t *e = xmpp_compat_mutable(expected), *a = xmpp_compat_mutable(actual);

    if (why && len)
        why[0] = '\0';
    if (!e || !a || !xmpp_stanza_is_tag(e) || !xmpp_stanza_is_tag(a))
        return differ(why, len, "/", "%s is not an element",
                      !e || !xmpp_stanza_is_tag(e) ? "expected" : "actual");
    return compare(e, NULL, a, NULL, "", why, len);
}

int xml_equal_text(xmpp_ctx_t *ctx, const char *expected, const xmpp_stanza_t *actual, char *why,
                   size_t len)
{
    xmpp_stanza_t *e = xmpp_stanza_new_from_string(ctx, expected);
    int rc;

    if (!e) {
        if (why && len)
            snprintf(why, len, "expected XML does not parse");
        return -1;
    }
    rc = xml_equal(e, actual, why, len);
    xmpp_stanza_release(e);
    return rc;
}
