/* SPDX-License-Identifier: MIT */
/* Random hex from getrandom(2). */
#include "secrand.h"

#include <errno.h>
#include <sys/random.h>
#include <sys/types.h>

int secrand_hex(char *out, size_t nbytes)
{
    static const char hex[] = "0123456789abcdef";
    unsigned char b[64];
    size_t done = 0, i;

    while (done < nbytes) {
        size_t want = nbytes - done < sizeof b ? nbytes - done : sizeof b, got = 0;
        while (got < want) {
            ssize_t n = getrandom(b + got, want - got, 0);
            if (n < 0 && errno == EINTR)
                continue;
            if (n <= 0) {
                out[0] = '\0';
                return -1;
            }
            got += (size_t)n;
        }
        for (i = 0; i < want; i++) {
            out[2 * (done + i)] = hex[b[i] >> 4];
            out[2 * (done + i) + 1] = hex[b[i] & 15];
        }
        done += want;
    }
    out[2 * nbytes] = '\0';
    return 0;
}
