/* SPDX-License-Identifier: MIT */
/*
 * Replay runner for the fuzz targets without libFuzzer: linked with one
 * target's LLVMFuzzerTestOneInput() in the normal (gcc, sanitizer) build,
 * it runs the target once on every file named on the command line and on
 * every file of every directory named there (in name order), so that the
 * committed corpus and crash inputs are checked by the ordinary test suite.
 * Prints each input before running it, so a crash names its input. Exit 0
 * when all ran (a crash aborts), 2 on a usage or I/O error or when no
 * input was found.
 */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

#define REPLAY_MAX_INPUT (16 * 1024 * 1024)

/* Run the target on the contents of `path`, in a buffer of exactly its
 * size so that AddressSanitizer sees a read past the end. */
static int run_file(const char *path)
{
    FILE *f = fopen(path, "rb");
    struct stat sb;
    uint8_t *buf;
    size_t n;

    if (!f || fstat(fileno(f), &sb) != 0 || sb.st_size > REPLAY_MAX_INPUT) {
        fprintf(stderr, "replay: %s: %s\n", path, f ? "too large" : strerror(errno));
        if (f)
            fclose(f);
        return -1;
    }
    buf = malloc(sb.st_size ? (size_t)sb.st_size : 1);
    n = buf ? fread(buf, 1, (size_t)sb.st_size, f) : 0;
    if (!buf || n != (size_t)sb.st_size) {
        fprintf(stderr, "replay: %s: %s\n", path, buf ? "read error" : "out of memory");
        fclose(f);
        free(buf);
        return -1;
    }
    fclose(f);
    printf("replay: %s (%zu bytes)\n", path, n);
    fflush(stdout);
    LLVMFuzzerTestOneInput(buf, n);
    free(buf);
    return 0;
}

static int by_name(const void *a, const void *b)
{
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

/* Run every regular file of `dir`; returns the count, or -1. */
static long run_dir(const char *dir)
{
    DIR *d = opendir(dir);
    struct dirent *e;
    char **names = NULL, path[4096];
    size_t n = 0, cap = 0, i;
    long ran = 0;
    struct stat sb;

    if (!d) {
        fprintf(stderr, "replay: %s: %s\n", dir, strerror(errno));
        return -1;
    }
    while ((e = readdir(d)) != NULL) {
        if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0)
            continue;
        if (n == cap) {
            char **grown = realloc(names, (cap = cap ? cap * 2 : 64) * sizeof *names);
            if (!grown)
                break;
            names = grown;
        }
        if (!(names[n] = strdup(e->d_name)))
            break;
        n++;
    }
    closedir(d);
    if (n)
        qsort(names, n, sizeof *names, by_name);
    for (i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (stat(path, &sb) == 0 && S_ISREG(sb.st_mode)) {
            if (run_file(path) != 0) {
                ran = -1;
                break;
            }
            ran++;
        }
    }
    for (i = 0; i < n; i++)
        free(names[i]);
    free(names);
    return ran;
}

int main(int argc, char **argv)
{
    long total = 0, ran;
    struct stat sb;
    int i;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (i = 1; i < argc; i++) {
        if (stat(argv[i], &sb) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            return 2;
        }
        ran = S_ISDIR(sb.st_mode) ? run_dir(argv[i]) : (run_file(argv[i]) == 0 ? 1 : -1);
        if (ran < 0)
            return 2;
        total += ran;
    }
    if (total == 0) {
        fprintf(stderr, "replay: no input found\n");
        return 2;
    }
    printf("replay: %ld inputs, no crash\n", total);
    return 0;
}
