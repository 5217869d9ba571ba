/* SPDX-License-Identifier: MIT */
/*
 * Structural comparison of two libstrophe stanzas, for tests that check a
 * built stanza against expected XML text. libstrophe keeps attributes in a
 * hash, so comparing serialized text would depend on hash order; this
 * compares what XML means instead: element names, effective namespaces
 * (an element without xmlns is in its parent's), attribute sets, and
 * children in order, with runs of text merged and whitespace-only runs
 * ignored (so expected files may be indented).
 */
#ifndef BITWEEN_TESTS_XML_EQUAL_H
#define BITWEEN_TESTS_XML_EQUAL_H

#include <stddef.h>

#include <strophe.h>

/**
 * Compare `expected` with `actual`. Returns 1 when equal, 0 when not, with
 * the first difference and its path ("/iq/error/text: ...") in `why`
 * (`len` bytes, may be NULL/0). libstrophe's parser drops the "xml:"
 * prefix of xml:lang, so "xml:lang" and "lang" compare equal.
 */
int xml_equal(const xmpp_stanza_t *expected, const xmpp_stanza_t *actual, char *why, size_t len);

/**
 * As xml_equal(), with `expected` given as XML text (one element; comments
 * allowed, no XML declaration: libstrophe refuses it). Returns -1 with a
 * message in `why` when the text does not parse.
 */
int xml_equal_text(xmpp_ctx_t *ctx, const char *expected, const xmpp_stanza_t *actual, char *why,
                   size_t len);

#endif /* BITWEEN_TESTS_XML_EQUAL_H */
