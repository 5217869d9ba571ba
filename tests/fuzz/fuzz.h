/* SPDX-License-Identifier: MIT */
/*
 * Helpers shared by the fuzz targets: the libFuzzer entry point's
 * prototype, a check that aborts (so that libFuzzer and the replay runner
 * both see a broken promise as a crash, whatever NDEBUG says), a
 * NUL-terminated copy of the input, and the test for text that is safe in
 * an XMPP <text/> or a log line (valid UTF-8 without C0, DEL or C1
 * controls), which every error message of the parsers promises.
 */
#ifndef BITWEEN_TESTS_FUZZ_H
#define BITWEEN_TESTS_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "utf8.h"

/** Run one input; libFuzzer's entry point, also called by replay.c. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

__attribute__((noreturn)) static inline void fuzz_fail(const char *file, int line, const char *what)
{
    fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, what);
    fflush(stderr);
    abort();
}

#define FUZZ_CHECK(cond)                                                                           \
    do {                                                                                           \
        if (!(cond))                                                                               \
            fuzz_fail(__FILE__, __LINE__, #cond);                                                  \
    } while (0)

/** A copy of the `n` bytes of `p` with a NUL after them (as a C string it
 * ends at the first NUL byte, if any). Aborts when out of memory. */
static inline char *fuzz_cstr(const uint8_t *p, size_t n)
{
    char *s = malloc(n + 1);
    FUZZ_CHECK(s != NULL);
    if (n)
        memcpy(s, p, n);
    s[n] = '\0';
    return s;
}

/** Whether the NUL-terminated `s` is valid UTF-8 without control
 * characters (C0, DEL, C1). */
static inline int fuzz_text_safe(const char *s)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), i = 0;

    while (i < n) {
        int len = utf8_seq(u + i, n - i);
        if (len <= 0)
            return 0;
        if (len == 1 && (u[i] < 0x20 || u[i] == 0x7f))
            return 0;
        if (len == 2 && u[i] == 0xc2 && u[i + 1] <= 0x9f) /* U+0080..U+009F */
            return 0;
        i += (size_t)len;
    }
    return 1;
}

#endif /* BITWEEN_TESTS_FUZZ_H */
