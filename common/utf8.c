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

uint32_t utf8_code_point(const unsigned char *s, int len)
{
    uint32_t cp;
    int i;

    if (len <= 1)
        return s[0];
    cp = s[0] & (0x7Fu >> len);
    for (i = 1; i < len; i++)
        cp = (cp << 6) | (s[i] & 0x3Fu);
    return cp;
}

const char *utf8_hidden_name(uint32_t cp)
{
    static const char *const bidi[] = {
        "LEFT-TO-RIGHT EMBEDDING", "RIGHT-TO-LEFT EMBEDDING", "POP DIRECTIONAL FORMATTING",
        "LEFT-TO-RIGHT OVERRIDE",  "RIGHT-TO-LEFT OVERRIDE",
    };
    static const char *const u2060[] = {
        "WORD JOINER",
        "FUNCTION APPLICATION",
        "INVISIBLE TIMES",
        "INVISIBLE SEPARATOR",
        "INVISIBLE PLUS",
        "an unassigned invisible code point",
        "LEFT-TO-RIGHT ISOLATE",
        "RIGHT-TO-LEFT ISOLATE",
        "FIRST STRONG ISOLATE",
        "POP DIRECTIONAL ISOLATE",
        "INHIBIT SYMMETRIC SWAPPING",
        "ACTIVATE SYMMETRIC SWAPPING",
        "INHIBIT ARABIC FORM SHAPING",
        "ACTIVATE ARABIC FORM SHAPING",
        "NATIONAL DIGIT SHAPES",
        "NOMINAL DIGIT SHAPES",
    };
    static const char *const annotation[] = {
        "INTERLINEAR ANNOTATION ANCHOR",
        "INTERLINEAR ANNOTATION SEPARATOR",
        "INTERLINEAR ANNOTATION TERMINATOR",
    };

    if (cp < 0x200B)
        return NULL;
    if (cp == 0x200B)
        return "ZERO WIDTH SPACE";
    if (cp == 0x2028)
        return "LINE SEPARATOR";
    if (cp == 0x2029)
        return "PARAGRAPH SEPARATOR";
    if (cp >= 0x202A && cp <= 0x202E)
        return bidi[cp - 0x202A];
    if (cp >= 0x2060 && cp <= 0x206F)
        return u2060[cp - 0x2060];
    if (cp == 0xFEFF)
        return "ZERO WIDTH NO-BREAK SPACE";
    if (cp >= 0xFFF9 && cp <= 0xFFFB)
        return annotation[cp - 0xFFF9];
    if (cp == 0xE0001)
        return "LANGUAGE TAG";
    if (cp == 0xE007F)
        return "CANCEL TAG";
    if (cp >= 0xE0020 && cp <= 0xE007E)
        return "a TAG character";
    if (cp >= 0xE0000 && cp <= 0xE007F)
        return "an unassigned tag code point";
    return NULL;
}

/* The code point at `s` (NUL-terminated) and its length, or 0. */
static int next_cp(const char *s, uint32_t *cp)
{
    const unsigned char *p = (const unsigned char *)s;
    int n;

    if (!*p)
        return 0;
    n = utf8_seq(p, strnlen(s, 4));
    if (n <= 0)
        return 0;
    *cp = utf8_code_point(p, n);
    return n;
}

size_t utf8_emoji_tag_sequence(const char *s)
{
    size_t off, ntags = 0;
    uint32_t cp = 0;
    int n = next_cp(s, &cp);

    if (n <= 0 || cp != 0x1F3F4)
        return 0;
    off = (size_t)n;
    for (;;) {
        n = next_cp(s + off, &cp);
        if (n <= 0)
            return 0;
        off += (size_t)n;
        if (cp == 0xE007F)
            return ntags >= 1 ? off : 0;
        if (!((cp >= 0xE0030 && cp <= 0xE0039) || (cp >= 0xE0061 && cp <= 0xE007A)) || ++ntags > 8)
            return 0;
    }
}
