/* SPDX-License-Identifier: MIT */
/*
 * Unguessable values from the kernel's random source (getrandom(2)): the
 * ids of the IQs a daemon sends, so that nobody can answer a request they
 * did not see, and generated tokens.
 */
#ifndef BITWEEN_COMMON_SECRAND_H
#define BITWEEN_COMMON_SECRAND_H

#include <stddef.h>

/**
 * `nbytes` random bytes as lowercase hex into `out`, which holds
 * 2 * `nbytes` + 1 bytes (NUL-terminated). Returns 0, or -1 when the
 * random source fails (`out` is then the empty string).
 */
int secrand_hex(char *out, size_t nbytes);

#endif /* BITWEEN_COMMON_SECRAND_H */
