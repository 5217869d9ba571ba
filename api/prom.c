/* SPDX-License-Identifier: MIT */
/*
 * Prometheus text exposition format 0.0.4, written by hand from our own
 * counters: HELP/TYPE lines, samples with escaped label values, and
 * histograms as cumulative buckets with _sum and _count.
 */
#include <inttypes.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "api_private.h"

void api_prom_family(api_buf_t *b, const char *name, const char *type, const char *help)
{
    api_buf_printf(b, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

void api_prom_escape(api_buf_t *b, const char *value)
{
    const char *p;
    for (p = value; *p; p++) {
        if (*p == '\\')
            api_buf_add(b, "\\\\", 2);
        else if (*p == '"')
            api_buf_add(b, "\\\"", 2);
        else if (*p == '\n')
            api_buf_add(b, "\\n", 2);
        else
            api_buf_add(b, p, 1);
    }
}

static void write_name(api_buf_t *b, const char *name, const char *suffix, const char *labels,
                       const char *extra)
{
    int have = labels && *labels;
    api_buf_printf(b, "%s%s", name, suffix);
    if (have || extra) {
        api_buf_printf(b, "{%s%s%s}", have ? labels : "", have && extra ? "," : "",
                       extra ? extra : "");
    }
}

/* Shortest text that reads back as `v` ("0.005", "10", "1e-06"). */
static void write_double(api_buf_t *b, double v)
{
    char text[32];
    int prec;
    if (isnan(v)) {
        api_buf_add(b, "NaN", 3);
        return;
    }
    if (isinf(v)) {
        api_buf_printf(b, "%s", v > 0 ? "+Inf" : "-Inf");
        return;
    }
    for (prec = 6; prec <= 17; prec++) {
        double back;
        snprintf(text, sizeof text, "%.*g", prec, v);
        if (sscanf(text, "%lf", &back) == 1 && back == v)
            break;
    }
    api_buf_add(b, text, strlen(text));
}

void api_prom_sample(api_buf_t *b, const char *name, const char *labels, double value)
{
    write_name(b, name, "", labels, NULL);
    api_buf_add(b, " ", 1);
    write_double(b, value);
    api_buf_add(b, "\n", 1);
}

void api_prom_sample_u64(api_buf_t *b, const char *name, const char *labels, uint64_t value)
{
    write_name(b, name, "", labels, NULL);
    api_buf_printf(b, " %" PRIu64 "\n", value);
}

void api_prom_histogram(api_buf_t *b, const char *name, const char *labels, const double *bounds,
                        const uint64_t *counts, size_t n, double sum)
{
    uint64_t cum = 0;
    size_t i;
    api_buf_t le = {0};

    for (i = 0; i <= n; i++) {
        cum += counts[i];
        le.len = 0;
        api_buf_add(&le, "le=\"", 4);
        if (i < n)
            write_double(&le, bounds[i]);
        else
            api_buf_add(&le, "+Inf", 4);
        api_buf_add(&le, "\"", 1);
        if (le.oom) {
            b->oom = 1;
            break;
        }
        write_name(b, name, "_bucket", labels, le.p);
        api_buf_printf(b, " %" PRIu64 "\n", cum);
    }
    api_buf_free(&le);
    write_name(b, name, "_sum", labels, NULL);
    api_buf_add(b, " ", 1);
    write_double(b, sum);
    api_buf_add(b, "\n", 1);
    write_name(b, name, "_count", labels, NULL);
    api_buf_printf(b, " %" PRIu64 "\n", cum);
}
