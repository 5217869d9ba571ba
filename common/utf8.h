/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 helpers shared by the modules that validate or cut text: the
 * length of a well-formed sequence (RFC 3629: no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF), its code point, the trimming of a
 * sequence left incomplete at the end of a truncated string, and the
 * invisible formatting characters that can make a text shown to someone
 * read as another text.
 */
#ifndef BITWEEN_COMMON_UTF8_H
#define BITWEEN_COMMON_UTF8_H

#include <stddef.h>
#include <stdint.h>

/**
 * Length (1..4) of the well-formed UTF-8 sequence at `s`, looking at most
 * at `avail` bytes (at least 1): 0 when the bytes there are not one, -1
 * when they are a valid start cut off by `avail`.
 */
int utf8_seq(const unsigned char *s, size_t avail);

/** Cut an incomplete UTF-8 sequence, and stray continuation bytes, from
 * the end of the NUL-terminated `s` (as snprintf() truncation leaves). */
void utf8_trim_tail(char *s);

/** Code point of the `len`-byte sequence at `s`, which utf8_seq() found
 * well-formed (len 1..4). */
uint32_t utf8_code_point(const unsigned char *s, int len);

/**
 * Name of `cp` ("RIGHT-TO-LEFT OVERRIDE", ...) when it is an invisible
 * formatting character that can make a text read as another one, else
 * NULL. Static string. These are: the bidirectional embeddings, overrides
 * and isolates (U+202A-U+202E, U+2066-U+2069, which reorder what follows:
 * "photo<U+202E>gpj.exe" shows as "photoexe.jpg"); the line and paragraph
 * separators U+2028, U+2029 (a line break inside one name); the zero-width
 * space U+200B, the word joiner and invisible operators U+2060-U+2064 and
 * the zero-width no-break space (byte order mark) U+FEFF, which only hide
 * differences; the deprecated format controls U+206A-U+206F (digit shapes,
 * symmetric swapping) and the unassigned U+2065; the interlinear
 * annotation controls U+FFF9-U+FFFB, whose annotation some renderers
 * hide; and the tag characters U+E0000-U+E007F (invisible text), which
 * utf8_emoji_tag_sequence() lets through in an emoji flag.
 *
 * Deliberately not listed: ZWNJ U+200C and ZWJ U+200D (Persian and Indic
 * spelling, emoji sequences), the marks LRM U+200E, RLM U+200F and ALM
 * U+061C (they cannot reorder letters, only neutrals next to them, and
 * software puts them into real file names, e.g. Windows in right-to-left
 * locales), the soft hyphen, variation selectors and the Mongolian vowel
 * separator.
 */
const char *utf8_hidden_name(uint32_t cp);

/**
 * Length in bytes of the emoji tag sequence (UTS #51 ED-14a, as the flags
 * of England, Scotland and Wales are spelled) that starts at `s`: U+1F3F4
 * WAVING BLACK FLAG, 1 to 8 tag digits or small letters (U+E0030-U+E0039,
 * U+E0061-U+E007A), U+E007F CANCEL TAG. 0 when `s` (NUL-terminated) does
 * not start with one.
 */
size_t utf8_emoji_tag_sequence(const char *s);

#endif /* BITWEEN_COMMON_UTF8_H */
