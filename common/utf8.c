/* SPDX-License-Identifier: MIT */
/* UTF-8 helpers (see utf8.h). */
#include "utf8.h"

#include <string.h>

int utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xbf;
    int need, i;

    if (c < 0x80)
        return 1;
    if (c >= 0xc2 && c <= 0xdf)
        need = 1;
    else if (c >= 0xe0 && c <= 0xef)
        need = 2;
    else if (c >= 0xf0 && c <= 0xf4)
        need = 3;
    else
        return 0;
    if (c == 0xe0)
        lo = 0xa0; /* no overlong three-byte forms */
    else if (c == 0xed)
        hi = 0x9f; /* no UTF-16 surrogates */
    else if (c == 0xf0)
        lo = 0x90; /* no overlong four-byte forms */
    else if (c == 0xf4)
        hi = 0x8f; /* nothing above U+10FFFF */
    for (i = 1; i <= need; i++) {
        if ((size_t)i >= avail)
            return -1;
        if (s[i] < lo || s[i] > hi)
            return 0;
        lo = 0x80;
        hi = 0xbf;
    }
    return need + 1;
}

void utf8_trim_tail(char *s)
{
    size_t len = strlen(s), start = len;

    while (start > 0 && ((unsigned char)s[start - 1] & 0xc0) == 0x80 && len - start < 3)
        start--;
    if (start > 0 && (unsigned char)s[start - 1] >= 0xc0) {
        start--;
        if (utf8_seq((const unsigned char *)s + start, len - start) != (int)(len - start))
            s[start] = '\0';
    } else if (start < len && start > 0) {
        s[start] = '\0'; /* stray continuation bytes after ASCII */
    }
}
