/* SPDX-License-Identifier: MIT */
/*
 * The typed configuration machinery: values of one option table, each kept
 * as canonical text plus its number (integers, booleans) and its source.
 * Every operation that may change several values (a file, the environment,
 * a reload) works on a scratch copy of the values and swaps it in only
 * when everything succeeded, so a failure leaves the configuration as it
 * was. A value from a source of lower precedence never replaces one from a
 * higher source, which makes the order of the daemon's calls irrelevant.
 * Error messages quote offending values in escaped, bounded form, except
 * for secrets, whose values are never quoted anywhere.
 */
#include "config.h"

#include "utf8.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

extern char **environ;

struct value {
    char *text;    /* canonical text; NULL when unset */
    long long num; /* CONFIG_INT value, CONFIG_BOOL 0/1 */
    config_source_t src;
};

struct config {
    const config_option_t *table;
    size_t n;
    char *prefix;
    struct value *vals;
};

#define NAME_MAX_BYTES   64  /* option name */
#define PREFIX_MAX_BYTES 32  /* environment prefix */
#define ENV_NAME_BYTES   128 /* prefix + NAME + "_FILE" + NUL fits */
#define VALUE_FILE_MAX   (64 * 1024)
#define QUOTE_BUDGET     40 /* bytes of a value quoted in a message */
#define PATH_BUDGET      96 /* bytes of a path shown in a message */
#define SHOWN_BYTES      (4 * PATH_BUDGET + 8)

static const char *const bool_true[] = {"true", "yes", "on", "1"};
static const char *const bool_false[] = {"false", "no", "off", "0"};

/* ---- errors ------------------------------------------------------------ */

static int utf8_valid(const char *s, size_t len)
{
    size_t i = 0;
    int n;

    while (i < len) {
        n = utf8_seq((const unsigned char *)s + i, len - i);
        if (n <= 0)
            return 0;
        i += (size_t)n;
    }
    return 1;
}

static int set_error(config_error_t *err, int code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static int set_error(config_error_t *err, int code, const char *fmt, ...)
{
    va_list ap;

    if (err) {
        err->code = code;
        va_start(ap, fmt);
        vsnprintf(err->message, sizeof err->message, fmt, ap);
        va_end(ap);
        utf8_trim_tail(err->message);
    }
    return code;
}

static void clear_error(config_error_t *err)
{
    if (err) {
        err->code = CONFIG_OK;
        err->message[0] = '\0';
    }
}

/*
 * Printable form of untrusted text for a message: valid UTF-8 as is,
 * controls and invalid bytes as \xNN, at most `budget` bytes of the input,
 * from its start (`tail` 0) or its end (`tail` 1), "..." marking the cut.
 * `buf` holds SHOWN_BYTES.
 */
static const char *shown(char buf[SHOWN_BYTES], const char *s, size_t budget, int tail)
{
    static const char hex[] = "0123456789abcdef";
    size_t len = strlen(s), i = 0, end = len, p = 0, n;

    if (budget > PATH_BUDGET)
        budget = PATH_BUDGET;
    if (len > budget) {
        if (tail) {
            i = len - budget;
            while (i < len && ((unsigned char)s[i] & 0xc0) == 0x80)
                i++;
            memcpy(buf, "...", 3);
            p = 3;
        } else {
            end = budget;
        }
    }
    while (i < end) {
        const unsigned char *u = (const unsigned char *)s + i;

        {
            int sn = utf8_seq(u, len - i);
            n = sn > 0 ? (size_t)sn : 0; /* invalid or cut: escaped below */
        }
        if (n > 1 && i + n > end)
            break; /* a character cut by the budget */
        if (n == 0 || (n == 1 && (u[0] < 0x20 || u[0] == 0x7f))) {
            buf[p++] = '\\';
            buf[p++] = 'x';
            buf[p++] = hex[u[0] >> 4];
            buf[p++] = hex[u[0] & 0xf];
            i++;
            continue;
        }
        memcpy(buf + p, u, n);
        p += n;
        i += n;
    }
    if (end < len) {
        memcpy(buf + p, "...", 3);
        p += 3;
    }
    buf[p] = '\0';
    return buf;
}

/* ---- values ------------------------------------------------------------ */

static int ascii_digit(char c)
{
    return c >= '0' && c <= '9';
}

static int int_bounded(const config_option_t *opt)
{
    return opt->min != 0 || opt->max != 0;
}

static int parse_ll(const char *s, long long *out)
{
    const char *p = s;
    char *end;
    long long v;

    if (*p == '+' || *p == '-')
        p++;
    if (!ascii_digit(*p))
        return -1;
    errno = 0;
    v = strtoll(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -1;
    *out = v;
    return 0;
}

/* What `opt` accepts, for a message. */
static void describe_accepted(const config_option_t *opt, char *buf, size_t cap)
{
    size_t i, pos;
    int n;

    switch (opt->type) {
    case CONFIG_INT:
        if (int_bounded(opt))
            snprintf(buf, cap, "expected an integer from %lld to %lld", opt->min, opt->max);
        else
            snprintf(buf, cap, "expected an integer");
        break;
    case CONFIG_BOOL:
        snprintf(buf, cap, "expected one of true, false, yes, no, on, off, 1, 0");
        break;
    case CONFIG_ENUM:
        n = snprintf(buf, cap, "expected one of ");
        pos = n > 0 ? (size_t)n : 0;
        for (i = 0; opt->choices && opt->choices[i] && pos < cap; i++) {
            n = snprintf(buf + pos, cap - pos, "%s%s", i ? ", " : "", opt->choices[i]);
            if (n < 0)
                break;
            pos += (size_t)n;
        }
        break;
    default:
        snprintf(buf, cap, "expected UTF-8 text without control characters");
        break;
    }
}

/*
 * Parse `text` as a value of `opt` into `*out` (text malloc'd, src not
 * set). CONFIG_EINVAL with the reason in `why` (never the value), or
 * CONFIG_ENOMEM.
 */
static int value_parse(const config_option_t *opt, const char *text, struct value *out, char *why,
                       size_t whylen)
{
    const char *canon = text;
    long long num = 0;
    size_t i, len = strlen(text);

    switch (opt->type) {
    case CONFIG_INT:
        if (parse_ll(text, &num) != 0 || (int_bounded(opt) && (num < opt->min || num > opt->max))) {
            describe_accepted(opt, why, whylen);
            return CONFIG_EINVAL;
        }
        break;
    case CONFIG_BOOL:
        canon = NULL;
        for (i = 0; i < sizeof bool_true / sizeof bool_true[0]; i++) {
            if (strcasecmp(text, bool_true[i]) == 0) {
                canon = "true";
                num = 1;
            } else if (strcasecmp(text, bool_false[i]) == 0) {
                canon = "false";
            }
        }
        if (!canon) {
            describe_accepted(opt, why, whylen);
            return CONFIG_EINVAL;
        }
        break;
    case CONFIG_ENUM:
        canon = NULL;
        for (i = 0; opt->choices && opt->choices[i]; i++) {
            if (strcasecmp(text, opt->choices[i]) == 0) {
                canon = opt->choices[i];
                break;
            }
        }
        if (!canon) {
            describe_accepted(opt, why, whylen);
            return CONFIG_EINVAL;
        }
        break;
    default:
        if (!utf8_valid(text, len)) {
            snprintf(why, whylen, "not valid UTF-8");
            return CONFIG_EINVAL;
        }
        for (i = 0; i < len; i++) {
            unsigned char c = (unsigned char)text[i];

            if ((c < 0x20 && c != '\t' && c != '\n') || c == 0x7f) {
                snprintf(why, whylen, "contains a control character");
                return CONFIG_EINVAL;
            }
        }
        break;
    }
    out->text = NULL;
    if (opt->type == CONFIG_INT) {
        char buf[32];

        snprintf(buf, sizeof buf, "%lld", num);
        out->text = strdup(buf);
    } else {
        out->text = strdup(canon);
    }
    if (!out->text)
        return CONFIG_ENOMEM;
    out->num = num;
    return CONFIG_OK;
}

/* Parse `text` for option `i` and report a bad value, after `where`. */
static int value_parse_err(const config_option_t *opt, const char *text, struct value *out,
                           const char *where, config_error_t *err)
{
    char why[160], quoted[SHOWN_BYTES];
    int rc = value_parse(opt, text, out, why, sizeof why);

    if (rc == CONFIG_ENOMEM)
        return set_error(err, rc, "%sout of memory", where);
    if (rc == CONFIG_OK)
        return rc;
    if (opt->type == CONFIG_SECRET)
        return set_error(err, rc, "%sinvalid value for %s: %s", where, opt->name, why);
    return set_error(err, rc, "%sinvalid value \"%s\" for %s: %s", where,
                     shown(quoted, text, QUOTE_BUDGET, 0), opt->name, why);
}

/* Store `parsed` (consumed) from `src` unless the value in force came from
 * a source of higher precedence. */
static void value_assign(struct value *v, struct value *parsed, config_source_t src)
{
    if (v->text && v->src > src) {
        free(parsed->text);
        return;
    }
    free(v->text);
    v->text = parsed->text;
    v->num = parsed->num;
    v->src = src;
}

static void vals_free(struct value *vals, size_t n)
{
    size_t i;

    if (!vals)
        return;
    for (i = 0; i < n; i++)
        free(vals[i].text);
    free(vals);
}

static struct value *vals_dup(const struct value *vals, size_t n)
{
    struct value *copy = calloc(n ? n : 1, sizeof *copy);
    size_t i;

    if (!copy)
        return NULL;
    for (i = 0; i < n; i++) {
        copy[i] = vals[i];
        if (vals[i].text && !(copy[i].text = strdup(vals[i].text))) {
            vals_free(copy, i);
            return NULL;
        }
    }
    return copy;
}

static int value_equal(const struct value *a, const struct value *b)
{
    if (!a->text || !b->text)
        return !a->text && !b->text;
    return strcmp(a->text, b->text) == 0;
}

/* ---- table ------------------------------------------------------------- */

static int name_valid(const char *name)
{
    size_t i;

    if (!name || !(name[0] >= 'a' && name[0] <= 'z') || strlen(name) > NAME_MAX_BYTES)
        return 0;
    for (i = 1; name[i]; i++) {
        if (!((name[i] >= 'a' && name[i] <= 'z') || ascii_digit(name[i]) || name[i] == '_'))
            return 0;
    }
    return 1;
}

static int prefix_valid(const char *prefix)
{
    size_t i;

    if (strlen(prefix) > PREFIX_MAX_BYTES)
        return 0;
    for (i = 0; prefix[i]; i++) {
        if (!((prefix[i] >= 'A' && prefix[i] <= 'Z') || ascii_digit(prefix[i]) || prefix[i] == '_'))
            return 0;
    }
    return 1;
}

int config_table_check(const config_option_t *table, size_t n, config_error_t *err)
{
    size_t i, j, len;

    clear_error(err);
    if (!table && n > 0)
        return set_error(err, CONFIG_EINVAL, "no option table");
    for (i = 0; i < n; i++) {
        const config_option_t *opt = &table[i];
        char why[160];
        struct value v;
        int rc;

        if (!name_valid(opt->name))
            return set_error(err, CONFIG_EINVAL,
                             "option #%zu: name is not lower_snake_case of at most %d bytes", i,
                             NAME_MAX_BYTES);
        len = strlen(opt->name);
        for (j = 0; j < n; j++) {
            const char *other = table[j].name;

            if (j == i || !other)
                continue;
            if (j < i && strcmp(other, opt->name) == 0)
                return set_error(err, CONFIG_EINVAL, "option %s: defined twice", opt->name);
            if (strncmp(other, opt->name, len) == 0 && strcmp(other + len, "_file") == 0)
                return set_error(err, CONFIG_EINVAL,
                                 "option %s: its environment variable is the _FILE variable of %s",
                                 other, opt->name);
        }
        if (opt->type > CONFIG_SECRET)
            return set_error(err, CONFIG_EINVAL, "option %s: unknown type", opt->name);
        if (opt->flags & ~(CONFIG_REQUIRED | CONFIG_RELOADABLE))
            return set_error(err, CONFIG_EINVAL, "option %s: unknown flags", opt->name);
        if (opt->type == CONFIG_INT && opt->min > opt->max)
            return set_error(err, CONFIG_EINVAL, "option %s: min > max", opt->name);
        if (opt->type == CONFIG_ENUM) {
            if (!opt->choices || !opt->choices[0])
                return set_error(err, CONFIG_EINVAL, "option %s: enum without choices", opt->name);
            for (j = 0; opt->choices[j]; j++) {
                if (!opt->choices[j][0] || strpbrk(opt->choices[j], " \t#\"\\,|"))
                    return set_error(err, CONFIG_EINVAL, "option %s: bad choice #%zu", opt->name,
                                     j);
            }
        }
        if (opt->type == CONFIG_SECRET && opt->default_value)
            return set_error(err, CONFIG_EINVAL, "option %s: a secret cannot have a default",
                             opt->name);
        if (opt->default_value) {
            rc = value_parse(opt, opt->default_value, &v, why, sizeof why);
            if (rc == CONFIG_ENOMEM)
                return set_error(err, rc, "out of memory");
            if (rc != CONFIG_OK)
                return set_error(err, rc, "option %s: bad default: %s", opt->name, why);
            free(v.text);
        }
    }
    return CONFIG_OK;
}

static void env_name(char buf[ENV_NAME_BYTES], const char *prefix, const char *name,
                     const char *suffix)
{
    size_t p = 0, i;

    for (i = 0; prefix[i] && p < ENV_NAME_BYTES - 1; i++)
        buf[p++] = prefix[i];
    for (i = 0; name[i] && p < ENV_NAME_BYTES - 1; i++)
        buf[p++] = (char)(name[i] >= 'a' && name[i] <= 'z' ? name[i] - 'a' + 'A' : name[i]);
    for (i = 0; suffix[i] && p < ENV_NAME_BYTES - 1; i++)
        buf[p++] = suffix[i];
    buf[p] = '\0';
}

/* ---- lifecycle ----------------------------------------------------------- */

config_t *config_new(const config_option_t *table, size_t n, const char *env_prefix)
{
    config_t *cfg;
    size_t i;
    char why[160];

    if (!env_prefix)
        env_prefix = "";
    if (!prefix_valid(env_prefix) || config_table_check(table, n, NULL) != CONFIG_OK)
        return NULL;
    cfg = calloc(1, sizeof *cfg);
    if (!cfg)
        return NULL;
    cfg->table = table;
    cfg->n = n;
    cfg->prefix = strdup(env_prefix);
    cfg->vals = calloc(n ? n : 1, sizeof *cfg->vals);
    if (!cfg->prefix || !cfg->vals)
        goto fail;
    for (i = 0; i < n; i++) {
        cfg->vals[i].src = CONFIG_SRC_DEFAULT;
        if (table[i].default_value && value_parse(&table[i], table[i].default_value, &cfg->vals[i],
                                                  why, sizeof why) != CONFIG_OK)
            goto fail;
    }
    return cfg;
fail:
    config_free(cfg);
    return NULL;
}

void config_free(config_t *cfg)
{
    if (!cfg)
        return;
    vals_free(cfg->vals, cfg->n);
    free(cfg->prefix);
    free(cfg);
}

int config_find(const config_t *cfg, const char *name, size_t *index)
{
    size_t i;

    if (!cfg || !name)
        return CONFIG_EINVAL;
    for (i = 0; i < cfg->n; i++) {
        if (strcmp(cfg->table[i].name, name) == 0) {
            if (index)
                *index = i;
            return CONFIG_OK;
        }
    }
    return CONFIG_EINVAL;
}

static int find_n(const config_t *cfg, const char *name, size_t len, size_t *index)
{
    size_t i;

    for (i = 0; i < cfg->n; i++) {
        if (strlen(cfg->table[i].name) == len && memcmp(cfg->table[i].name, name, len) == 0) {
            *index = i;
            return CONFIG_OK;
        }
    }
    return CONFIG_EINVAL;
}

/* ---- file ---------------------------------------------------------------- */

static int is_ws(char c)
{
    return c == ' ' || c == '\t';
}

static char *skip_ws(char *p)
{
    while (is_ws(*p))
        p++;
    return p;
}

/* One line of a file into `vals`; `where` is "path:line: ". */
static int parse_line(config_t *cfg, struct value *vals, unsigned long *seen, char *line,
                      size_t len, unsigned long lineno, const char *where, config_error_t *err)
{
    char shown_buf[SHOWN_BYTES];
    char *p, *name, *value, *eq, *q, *w;
    size_t namelen, idx, i;
    struct value parsed;
    int rc;

    if (len > 0 && line[len - 1] == '\n')
        line[--len] = '\0';
    if (len > 0 && line[len - 1] == '\r')
        line[--len] = '\0';
    if (lineno == 1 && len >= 3 && memcmp(line, "\xef\xbb\xbf", 3) == 0) {
        line += 3; /* a byte order mark some editors add */
        len -= 3;
    }
    if (memchr(line, '\0', len))
        return set_error(err, CONFIG_EINVAL, "%sNUL byte in line", where);
    if (!utf8_valid(line, len))
        return set_error(err, CONFIG_EINVAL, "%snot valid UTF-8", where);
    for (i = 0; i < len; i++) {
        unsigned char c = (unsigned char)line[i];

        if ((c < 0x20 && c != '\t') || c == 0x7f)
            return set_error(err, CONFIG_EINVAL,
                             "%scontrol character in line (use \\n or \\t in a quoted value)",
                             where);
    }

    p = skip_ws(line);
    if (*p == '\0' || *p == '#')
        return CONFIG_OK;
    name = p;
    while (*p && *p != '=' && !is_ws(*p))
        p++;
    namelen = (size_t)(p - name);
    eq = skip_ws(p);
    if (*eq != '=')
        return set_error(err, CONFIG_EINVAL, "%sexpected `name = value`", where);
    if (namelen == 0)
        return set_error(err, CONFIG_EINVAL, "%smissing option name before '='", where);
    if (find_n(cfg, name, namelen, &idx) != CONFIG_OK) {
        *p = '\0';
        return set_error(err, CONFIG_EINVAL, "%sunknown option \"%s\"", where,
                         shown(shown_buf, name, QUOTE_BUDGET, 0));
    }
    if (seen[idx])
        return set_error(err, CONFIG_EINVAL, "%s%s is set twice (first on line %lu)", where,
                         cfg->table[idx].name, seen[idx]);
    seen[idx] = lineno;

    p = skip_ws(eq + 1);
    if (*p == '"') {
        /* Unescaping only shrinks the text: do it in place. */
        value = w = p + 1;
        for (q = p + 1; *q && *q != '"'; q++) {
            if (*q != '\\') {
                *w++ = *q;
                continue;
            }
            switch (*++q) {
            case '"':
            case '\\':
                *w++ = *q;
                break;
            case 'n':
                *w++ = '\n';
                break;
            case 't':
                *w++ = '\t';
                break;
            case '\0':
                return set_error(err, CONFIG_EINVAL, "%sunterminated quoted value", where);
            default:
                return set_error(err, CONFIG_EINVAL,
                                 "%sunknown escape in quoted value for %s (known: \\\" \\\\ "
                                 "\\n \\t)",
                                 where, cfg->table[idx].name);
            }
        }
        if (*q != '"')
            return set_error(err, CONFIG_EINVAL, "%sunterminated quoted value", where);
        q = skip_ws(q + 1);
        if (*q != '\0' && *q != '#')
            return set_error(err, CONFIG_EINVAL, "%sunexpected text after the quoted value of %s",
                             where, cfg->table[idx].name);
        *w = '\0';
    } else {
        /* A comment starts at a '#' that follows whitespace. */
        value = p;
        for (q = eq + 1; *q; q++) {
            if (*q == '#' && is_ws(q[-1]))
                break;
        }
        if (q < value)
            q = value;
        while (q > value && is_ws(q[-1]))
            q--;
        *q = '\0';
    }

    rc = value_parse_err(&cfg->table[idx], value, &parsed, where, err);
    if (rc != CONFIG_OK)
        return rc;
    value_assign(&vals[idx], &parsed, CONFIG_SRC_FILE);
    return CONFIG_OK;
}

int config_load_file(config_t *cfg, const char *path, config_error_t *err)
{
    char shown_buf[SHOWN_BYTES], where[SHOWN_BYTES + 32];
    struct value *scratch = NULL;
    unsigned long *seen = NULL, lineno = 0;
    char *line = NULL;
    size_t cap = 0;
    ssize_t got;
    FILE *f;
    int rc = CONFIG_OK;

    clear_error(err);
    if (!cfg || !path)
        return set_error(err, CONFIG_EINVAL, "no configuration or path");
    shown(shown_buf, path, PATH_BUDGET, 1);
    f = fopen(path, "r");
    if (!f)
        return set_error(err, CONFIG_EIO, "cannot open %s: %s", shown_buf, strerror(errno));
    scratch = vals_dup(cfg->vals, cfg->n);
    seen = calloc(cfg->n ? cfg->n : 1, sizeof *seen);
    if (!scratch || !seen) {
        rc = set_error(err, CONFIG_ENOMEM, "%s: out of memory", shown_buf);
        goto out;
    }
    errno = 0;
    while ((got = getline(&line, &cap, f)) >= 0) {
        lineno++;
        snprintf(where, sizeof where, "%s:%lu: ", shown_buf, lineno);
        rc = parse_line(cfg, scratch, seen, line, (size_t)got, lineno, where, err);
        if (rc != CONFIG_OK)
            goto out;
        errno = 0;
    }
    if (ferror(f) || !feof(f)) {
        if (errno == ENOMEM)
            rc = set_error(err, CONFIG_ENOMEM, "%s: out of memory", shown_buf);
        else
            rc = set_error(err, CONFIG_EIO, "cannot read %s: %s", shown_buf,
                           strerror(errno ? errno : EIO));
        goto out;
    }
    vals_free(cfg->vals, cfg->n);
    cfg->vals = scratch;
    scratch = NULL;
out:
    free(line);
    free(seen);
    vals_free(scratch, cfg->n);
    fclose(f);
    return rc;
}

/* ---- environment ------------------------------------------------------- */

static const char *env_get(char *const *envp, const char *name)
{
    size_t len = strlen(name);

    for (; envp && *envp; envp++) {
        if (strncmp(*envp, name, len) == 0 && (*envp)[len] == '=')
            return *envp + len + 1;
    }
    return NULL;
}

/* Read a `_FILE` value into a new string, trailing newlines removed. */
static int read_value_file(const char *var, const char *path, char **out, config_error_t *err)
{
    char shown_buf[SHOWN_BYTES];
    char *buf = NULL;
    size_t len = 0;
    FILE *f;
    int rc = CONFIG_OK;

    *out = NULL;
    shown(shown_buf, path, PATH_BUDGET, 1);
    if (!*path)
        return set_error(err, CONFIG_EINVAL, "%s: empty path", var);
    f = fopen(path, "r");
    if (!f)
        return set_error(err, CONFIG_EIO, "%s: cannot open %s: %s", var, shown_buf,
                         strerror(errno));
    buf = malloc(VALUE_FILE_MAX + 1);
    if (!buf) {
        rc = set_error(err, CONFIG_ENOMEM, "%s: out of memory", var);
        goto out;
    }
    len = fread(buf, 1, VALUE_FILE_MAX + 1, f);
    if (ferror(f)) {
        rc = set_error(err, CONFIG_EIO, "%s: cannot read %s: %s", var, shown_buf,
                       strerror(errno ? errno : EIO));
        goto out;
    }
    if (len > VALUE_FILE_MAX) {
        rc = set_error(err, CONFIG_EINVAL, "%s: %s is larger than %d bytes", var, shown_buf,
                       VALUE_FILE_MAX);
        goto out;
    }
    if (memchr(buf, '\0', len)) {
        rc = set_error(err, CONFIG_EINVAL, "%s: %s holds a NUL byte", var, shown_buf);
        goto out;
    }
    while (len > 0 && (buf[len - 1] == '\n' || buf[len - 1] == '\r'))
        len--;
    buf[len] = '\0';
    *out = buf;
    buf = NULL;
out:
    free(buf);
    fclose(f);
    return rc;
}

int config_apply_env(config_t *cfg, char *const *envp, config_error_t *err)
{
    char var[ENV_NAME_BYTES], var_file[ENV_NAME_BYTES], where[ENV_NAME_BYTES + 4];
    struct value *scratch;
    struct value parsed;
    size_t i;
    int rc = CONFIG_OK;

    clear_error(err);
    if (!cfg)
        return set_error(err, CONFIG_EINVAL, "no configuration");
    if (!envp)
        envp = environ;
    scratch = vals_dup(cfg->vals, cfg->n);
    if (!scratch)
        return set_error(err, CONFIG_ENOMEM, "out of memory");
    for (i = 0; i < cfg->n; i++) {
        const char *value, *path;
        char *content = NULL;

        env_name(var, cfg->prefix, cfg->table[i].name, "");
        env_name(var_file, cfg->prefix, cfg->table[i].name, "_FILE");
        value = env_get(envp, var);
        path = env_get(envp, var_file);
        if (value && path) {
            rc = set_error(err, CONFIG_EINVAL, "%s and %s are both set: use one", var, var_file);
            goto out;
        }
        if (path) {
            rc = read_value_file(var_file, path, &content, err);
            if (rc != CONFIG_OK)
                goto out;
            value = content;
            snprintf(where, sizeof where, "%s: ", var_file);
        } else if (value) {
            snprintf(where, sizeof where, "%s: ", var);
        } else {
            continue;
        }
        rc = value_parse_err(&cfg->table[i], value, &parsed, where, err);
        free(content);
        if (rc != CONFIG_OK)
            goto out;
        value_assign(&scratch[i], &parsed, CONFIG_SRC_ENV);
    }
    vals_free(cfg->vals, cfg->n);
    cfg->vals = scratch;
    scratch = NULL;
out:
    vals_free(scratch, cfg->n);
    return rc;
}

/* ---- flags and reading ------------------------------------------------- */

int config_set(config_t *cfg, size_t index, const char *value, config_source_t src,
               config_error_t *err)
{
    struct value parsed;
    int rc;

    clear_error(err);
    if (!cfg || index >= cfg->n || !value || src > CONFIG_SRC_FLAG)
        return set_error(err, CONFIG_EINVAL, "bad option index, value or source");
    rc = value_parse_err(&cfg->table[index], value, &parsed, "", err);
    if (rc != CONFIG_OK)
        return rc;
    value_assign(&cfg->vals[index], &parsed, src);
    return CONFIG_OK;
}

int config_validate(const config_t *cfg, config_error_t *err)
{
    char var[ENV_NAME_BYTES];
    char msg[CONFIG_ERROR_TEXT];
    size_t i, pos = 0, missing = 0;
    int n;

    clear_error(err);
    if (!cfg)
        return set_error(err, CONFIG_EINVAL, "no configuration");
    msg[0] = '\0';
    for (i = 0; i < cfg->n; i++) {
        const config_option_t *opt = &cfg->table[i];
        const char *text = cfg->vals[i].text;

        if (!(opt->flags & CONFIG_REQUIRED))
            continue;
        if (text && (*text || (opt->type != CONFIG_STRING && opt->type != CONFIG_SECRET)))
            continue;
        env_name(var, cfg->prefix, opt->name, "");
        n = snprintf(msg + pos, sizeof msg - pos, "%s%s (%s)", missing ? ", " : "", opt->name, var);
        missing++;
        if (n > 0)
            pos += (size_t)n;
        if (pos >= sizeof msg)
            pos = sizeof msg - 1;
    }
    if (missing)
        return set_error(err, CONFIG_EINVAL, "missing required option%s: %s",
                         missing > 1 ? "s" : "", msg);
    return CONFIG_OK;
}

const char *config_str(const config_t *cfg, size_t index)
{
    return cfg && index < cfg->n ? cfg->vals[index].text : NULL;
}

long long config_int(const config_t *cfg, size_t index)
{
    if (!cfg || index >= cfg->n || cfg->table[index].type != CONFIG_INT || !cfg->vals[index].text)
        return 0;
    return cfg->vals[index].num;
}

int config_bool(const config_t *cfg, size_t index)
{
    if (!cfg || index >= cfg->n || cfg->table[index].type != CONFIG_BOOL || !cfg->vals[index].text)
        return 0;
    return cfg->vals[index].num != 0;
}

config_source_t config_source(const config_t *cfg, size_t index)
{
    return cfg && index < cfg->n ? cfg->vals[index].src : CONFIG_SRC_DEFAULT;
}

const char *config_source_name(config_source_t src)
{
    static const char *const names[] = {"default", "file", "env", "flag"};

    return src <= CONFIG_SRC_FLAG ? names[src] : "?";
}

/* ---- output ------------------------------------------------------------ */

static int needs_quotes(const char *s)
{
    size_t len = strlen(s);

    return len == 0 || is_ws(s[0]) || is_ws(s[len - 1]) || strpbrk(s, "#\"\\\n\t") != NULL;
}

/* A string as the file parser reads it back. */
static void put_string(FILE *out, const char *s)
{
    if (!needs_quotes(s)) {
        fputs(s, out);
        return;
    }
    fputc('"', out);
    for (; *s; s++) {
        switch (*s) {
        case '"':
            fputs("\\\"", out);
            break;
        case '\\':
            fputs("\\\\", out);
            break;
        case '\n':
            fputs("\\n", out);
            break;
        case '\t':
            fputs("\\t", out);
            break;
        default:
            fputc(*s, out);
            break;
        }
    }
    fputc('"', out);
}

static int flush_status(FILE *out)
{
    return fflush(out) != 0 || ferror(out) ? CONFIG_EIO : CONFIG_OK;
}

int config_print(const config_t *cfg, FILE *out)
{
    size_t i;

    if (!cfg || !out)
        return CONFIG_EINVAL;
    for (i = 0; i < cfg->n; i++) {
        const config_option_t *opt = &cfg->table[i];
        const struct value *v = &cfg->vals[i];

        fprintf(out, "%s = ", opt->name);
        if (opt->type == CONFIG_SECRET) {
            fputs(v->text && *v->text ? "(set)" : "(unset)", out);
        } else if (!v->text) {
            fputs(" # unset\n", out);
            continue;
        } else if (opt->type == CONFIG_STRING) {
            put_string(out, v->text);
        } else {
            fputs(v->text, out);
        }
        fprintf(out, "  # %s\n", config_source_name(v->src));
    }
    return flush_status(out);
}

static const char *const type_names[] = {"string", "integer", "boolean", "enum", "secret"};

int config_write_sample(const config_option_t *table, size_t n, const char *env_prefix, FILE *out)
{
    char var[ENV_NAME_BYTES];
    size_t i, j;

    if (!env_prefix)
        env_prefix = "";
    if (!out || !prefix_valid(env_prefix) || config_table_check(table, n, NULL) != CONFIG_OK)
        return CONFIG_EINVAL;
    fprintf(out,
            "# Sample configuration: every option with its default, commented out.\n"
            "# Format: `name = value`, one per line; `#` starts a comment; a value in\n"
            "# double quotes may use \\\" \\\\ \\n \\t. Precedence: defaults < this file <\n"
            "# environment (%s<NAME>, or %s<NAME>_FILE naming a file that holds\n"
            "# the value) < command-line flags.\n",
            env_prefix, env_prefix);
    for (i = 0; i < n; i++) {
        const config_option_t *opt = &table[i];

        fputs("\n", out);
        if (opt->help && *opt->help)
            fprintf(out, "# %s\n", opt->help);
        fprintf(out, "# %s", type_names[opt->type]);
        if (opt->flags & CONFIG_REQUIRED)
            fputs(", required", out);
        if (!opt->default_value) {
            fputs(", no default", out);
        } else {
            fputs(", default ", out);
            if (opt->type == CONFIG_STRING)
                put_string(out, opt->default_value);
            else
                fputs(opt->default_value, out);
        }
        if (opt->type == CONFIG_INT && int_bounded(opt))
            fprintf(out, ", range %lld..%lld", opt->min, opt->max);
        if (opt->type == CONFIG_ENUM) {
            fputs(", one of ", out);
            for (j = 0; opt->choices[j]; j++)
                fprintf(out, "%s%s", j ? "|" : "", opt->choices[j]);
        }
        env_name(var, env_prefix, opt->name, "");
        fprintf(out, ", env %s", var);
        if (opt->type == CONFIG_SECRET)
            fprintf(out, " or %s_FILE", var);
        fprintf(out, ", %s\n", opt->flags & CONFIG_RELOADABLE ? "reloadable" : "restart to change");
        if (opt->default_value) {
            fprintf(out, "#%s = ", opt->name);
            if (opt->type == CONFIG_STRING)
                put_string(out, opt->default_value);
            else
                fputs(opt->default_value, out);
            fputs("\n", out);
        } else {
            fprintf(out, "# %s =\n", opt->name);
        }
    }
    return flush_status(out);
}

/* ---- reload ------------------------------------------------------------ */

int config_reload(config_t *cur, const config_t *next, config_error_t *err)
{
    char **texts;
    size_t i, j;

    clear_error(err);
    if (!cur || !next || cur->table != next->table || cur->n != next->n)
        return set_error(err, CONFIG_EINVAL, "reload: not the same option table");
    for (i = 0; i < cur->n; i++) {
        if (!(cur->table[i].flags & CONFIG_RELOADABLE) &&
            !value_equal(&cur->vals[i], &next->vals[i]))
            return set_error(err, CONFIG_EINVAL,
                             "%s cannot change on reload (restart required); nothing reloaded",
                             cur->table[i].name);
    }
    /* Only the reloadable values are replaced, in place: the others keep
     * their storage, so that strings the daemon borrowed from them (a
     * JID, a path in its settings) stay valid across reloads. New texts
     * are copied first, so that running out of memory changes nothing. */
    texts = calloc(cur->n, sizeof *texts);
    if (!texts)
        return set_error(err, CONFIG_ENOMEM, "reload: out of memory");
    for (i = 0; i < cur->n; i++) {
        if (!(cur->table[i].flags & CONFIG_RELOADABLE) || !next->vals[i].text)
            continue;
        if (!(texts[i] = strdup(next->vals[i].text))) {
            for (j = 0; j < i; j++)
                free(texts[j]);
            free(texts);
            return set_error(err, CONFIG_ENOMEM, "reload: out of memory");
        }
    }
    for (i = 0; i < cur->n; i++) {
        if (!(cur->table[i].flags & CONFIG_RELOADABLE))
            continue;
        free(cur->vals[i].text);
        cur->vals[i] = next->vals[i];
        cur->vals[i].text = texts[i];
    }
    free(texts);
    return CONFIG_OK;
}

const char *const config_log_levels[] = {"error", "warn", "info", "debug", NULL};

void config_list_free(char **list)
{
    size_t i;
    for (i = 0; list && list[i]; i++)
        free(list[i]);
    free(list);
}

char **config_list_split(const char *text)
{
    size_t n = 1, k = 0;
    const char *p;
    char **v;
    for (p = text; *p; p++)
        n += *p == ',';
    v = calloc(n + 1, sizeof *v);
    if (!v)
        return NULL;
    p = text;
    while (*p) {
        const char *end = strchr(p, ',');
        size_t len;
        if (!end)
            end = p + strlen(p);
        while (p < end && (*p == ' ' || *p == '\t'))
            p++;
        len = (size_t)(end - p);
        while (len && (p[len - 1] == ' ' || p[len - 1] == '\t'))
            len--;
        if (len) {
            v[k] = malloc(len + 1);
            if (!v[k]) {
                config_list_free(v);
                return NULL;
            }
            memcpy(v[k], p, len);
            v[k][len] = '\0';
            k++;
        }
        p = *end ? end + 1 : end;
    }
    return v;
}
