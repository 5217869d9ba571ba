/* SPDX-License-Identifier: MIT */
/*
 * UTF-8 helpers shared by the modules that validate or cut text: the
 * length of a well-formed sequence (RFC 3629: no overlong forms, no UTF-16
 * surrogates, nothing above U+10FFFF) and the trimming of a sequence left
 * incomplete at the end of a truncated string.
 */
#ifndef BITWEEN_COMMON_UTF8_H
#define BITWEEN_COMMON_UTF8_H

#include <stddef.h>

/**
 * Length (1..4) of the well-formed UTF-8 sequence at `s`, looking at most
 * at `avail` bytes (at least 1): 0 when the bytes there are not one, -1
 * when they are a valid start cut off by `avail`.
 */
int utf8_seq(const unsigned char *s, size_t avail);

/** Cut an incomplete UTF-8 sequence, and stray continuation bytes, from
 * the end of the NUL-terminated `s` (as snprintf() truncation leaves). */
void utf8_trim_tail(char *s);

#endif /* BITWEEN_COMMON_UTF8_H */
