/* SPDX-License-Identifier: MIT */
/*
 * Typed configuration: each daemon describes its options once, in a table
 * (name, type, default, bounds or choices, required, reloadable, help), and
 * this module derives everything else from it: parsing the config file,
 * overriding from the environment (`BITWEEN_<NAME>`, or `BITWEEN_<NAME>_FILE`
 * naming a file that holds the value, for Docker secrets), setting from
 * command-line flags, checking required options, `--print-config`, the
 * commented sample under deploy/, and SIGHUP reloads. Precedence is
 * defaults < file < environment < flags whatever the order of the calls.
 * Every change is whole or nothing, and the value of a CONFIG_SECRET option
 * is never printed, not even in an error message.
 */
#ifndef BITWEEN_COMMON_CONFIG_H
#define BITWEEN_COMMON_CONFIG_H

#include <stddef.h>
#include <stdio.h>

typedef enum {
    CONFIG_STRING, /* UTF-8 text; no control characters but tab and newline */
    CONFIG_INT,    /* decimal long long within [min, max] */
    CONFIG_BOOL,   /* true/false, yes/no, on/off, 1/0 (any case) */
    CONFIG_ENUM,   /* one of `choices` (any case; kept as spelled there) */
    CONFIG_SECRET  /* as CONFIG_STRING, never printed; no default allowed */
} config_type_t;

#define CONFIG_REQUIRED   0x1u /* must be set after file + env + flags */
#define CONFIG_RELOADABLE 0x2u /* may change on SIGHUP */

/** One option. Tables are static: a config_t borrows its table. */
typedef struct config_option {
    const char *name; /* lower_snake_case, e.g. "xmpp_port"; env BITWEEN_XMPP_PORT */
    config_type_t type;
    const char *default_value;  /* text form; NULL = no default */
    long long min, max;         /* CONFIG_INT bounds (inclusive); both 0: unbounded */
    const char *const *choices; /* CONFIG_ENUM: NULL-terminated list */
    unsigned flags;             /* CONFIG_REQUIRED | CONFIG_RELOADABLE */
    const char *help;           /* one line */
} config_option_t;

/* Table entries, for the daemons' option tables. */
#define CONFIG_OPT_STR(name, def, flags, help)                                                     \
    {                                                                                              \
        name, CONFIG_STRING, def, 0, 0, NULL, flags, help                                          \
    }
#define CONFIG_OPT_INT(name, def, lo, hi, flags, help)                                             \
    {                                                                                              \
        name, CONFIG_INT, def, lo, hi, NULL, flags, help                                           \
    }
#define CONFIG_OPT_BOOL(name, def, flags, help)                                                    \
    {                                                                                              \
        name, CONFIG_BOOL, def, 0, 0, NULL, flags, help                                            \
    }

/* The logging options every daemon has. */
extern const char *const config_log_levels[]; /* error, warn, info, debug */
#define CONFIG_OPT_LOG_LEVEL                                                                       \
    {                                                                                              \
        "log_level", CONFIG_ENUM, "info", 0, 0, config_log_levels, CONFIG_RELOADABLE,              \
            "error, warn, info or debug"                                                           \
    }
#define CONFIG_OPT_LOG_TIMESTAMPS                                                                  \
    CONFIG_OPT_BOOL("log_timestamps", "true", 0,                                                   \
                    "prefix log lines with the time (off under journald)")

/**
 * Split a comma-separated list: items trimmed of spaces and tabs, empty
 * ones dropped. Returns a malloc'd NULL-terminated array of malloc'd
 * strings (free with config_list_free()), NULL when out of memory.
 */
char **config_list_split(const char *text) __attribute__((warn_unused_result));

/** Free what config_list_split() returned; NULL is a no-op. */
void config_list_free(char **list);

/* Where a value came from, in increasing precedence. */
typedef enum {
    CONFIG_SRC_DEFAULT,
    CONFIG_SRC_FILE,
    CONFIG_SRC_ENV,
    CONFIG_SRC_FLAG
} config_source_t;

/* Error codes (negative return values). */
enum {
    CONFIG_OK = 0,
    CONFIG_EINVAL = -1, /* bad input: syntax, unknown option, bad value */
    CONFIG_EIO = -2,    /* a file could not be read */
    CONFIG_ENOMEM = -3  /* allocation failed */
};

#define CONFIG_ERROR_TEXT 256

/** Error detail filled by fallible calls; `message` is NUL-terminated,
 * valid UTF-8, and starts with the place ("path:line: ", "BITWEEN_X: "). */
typedef struct config_error {
    int code;
    char message[CONFIG_ERROR_TEXT];
} config_error_t;

/** Values of one table. Opaque; not thread-safe (one thread configures,
 * then shares the values read-only or reloads between uses). */
typedef struct config config_t;

/**
 * Check a table: names lower_snake_case ([a-z][a-z0-9_]*) and unique, no
 * environment name equal to another option's `_FILE` name, known type and
 * flags, min <= max, enum choices present, defaults valid for their type,
 * no default for a secret. Returns 0 or CONFIG_EINVAL naming the option.
 * A daemon's unit test calls this on its table; config_new() does too.
 */
int config_table_check(const config_option_t *table, size_t n, config_error_t *err);

/**
 * New configuration holding the defaults of `table` (borrowed: must outlive
 * the result; `n` entries). `env_prefix` (copied) is put before the
 * upper-cased option name to make its environment variable, e.g.
 * "BITWEEN_". Returns NULL on allocation failure or when
 * config_table_check() refuses the table. Free with config_free().
 */
config_t *config_new(const config_option_t *table, size_t n, const char *env_prefix)
    __attribute__((warn_unused_result));

/** Free a configuration; NULL is a no-op. */
void config_free(config_t *cfg);

/**
 * Read `path`: UTF-8 text, one `name = value` per line; blank lines and
 * lines starting with `#` ignored; an unquoted value ends at a `#` that
 * follows whitespace (a comment) and is trimmed; a double-quoted value
 * knows the escapes \" \\ \n \t and may be followed by a comment. Unknown
 * options, options given twice, syntax errors and bad values are
 * CONFIG_EINVAL with "path:line: " and, for a bad value, the option and
 * what it accepts; an unreadable file is CONFIG_EIO. Whole or nothing: on
 * failure `cfg` is unchanged. Values set from the environment or flags
 * stay in force (precedence).
 */
int config_load_file(config_t *cfg, const char *path, config_error_t *err);

/**
 * Apply the environment `envp` (NULL: `environ`): for each option,
 * `<prefix><NAME>` holds the value, or `<prefix><NAME>_FILE` the path of a
 * file holding it (trailing newlines removed); both set is CONFIG_EINVAL.
 * Values are checked as in files; errors name the variable (CONFIG_EINVAL,
 * or CONFIG_EIO for an unreadable `_FILE`). Whole or nothing. Variables
 * with the prefix that name no option are ignored (the daemon may have its
 * own, such as the config file path).
 */
int config_apply_env(config_t *cfg, char *const *envp, config_error_t *err);

/**
 * Set option `index` to `value` (text form) from source `src`, normally
 * CONFIG_SRC_FLAG for a command-line flag. A bad value is CONFIG_EINVAL
 * naming the option, a bad index or NULL value CONFIG_EINVAL; `cfg` is then
 * unchanged. A value from a source of lower precedence than the current
 * one is checked but does not replace it.
 */
int config_set(config_t *cfg, size_t index, const char *value, config_source_t src,
               config_error_t *err);

/** Find option `name` (exact); 0 and `*index`, or CONFIG_EINVAL. */
int config_find(const config_t *cfg, const char *name, size_t *index);

/**
 * Check that every CONFIG_REQUIRED option is set (a string or secret must
 * also be non-empty). CONFIG_EINVAL lists the missing options with their
 * environment variables.
 */
int config_validate(const config_t *cfg, config_error_t *err);

/* Reading. Out-of-range indices give NULL / 0 / CONFIG_SRC_DEFAULT. */

/** Value as text (borrowed, valid until the option changes or `cfg` is
 * freed); NULL when unset. For CONFIG_INT and CONFIG_BOOL the canonical
 * text ("42", "true"); for CONFIG_ENUM the spelling of the choice. */
const char *config_str(const config_t *cfg, size_t index);
/** Value of a CONFIG_INT option; 0 when unset or of another type. */
long long config_int(const config_t *cfg, size_t index);
/** Value of a CONFIG_BOOL option (0 or 1); 0 when unset or of another type. */
int config_bool(const config_t *cfg, size_t index);
/** Where the current value came from. */
config_source_t config_source(const config_t *cfg, size_t index);
/** "default", "file", "env" or "flag" (static); "?" when out of range. */
const char *config_source_name(config_source_t src);

/**
 * `--print-config`: one line `name = value  # source` per option in table
 * order; strings quoted (with the file escapes) when needed to read back,
 * secrets shown as "(set)" or "(unset)", an unset option as `name =  #
 * unset`. Returns 0 or CONFIG_EIO when writing fails.
 */
int config_print(const config_t *cfg, FILE *out);

/**
 * The commented sample file: a header, then for each option a `# help`
 * line, a `# type, default, bounds or choices, env NAME (or NAME_FILE),
 * reloadable or restart` line, and `#name = default`, commented out (an
 * option without default gets `# name =` instead); uncommenting the
 * `#name = ` lines gives the defaults. Returns 0, CONFIG_EINVAL for a table
 * that config_table_check() refuses, or CONFIG_EIO when writing fails.
 */
int config_write_sample(const config_option_t *table, size_t n, const char *env_prefix, FILE *out);

/**
 * SIGHUP: copy the reloadable options of `next` (a configuration of the
 * same table, built afresh from file, environment and flags) into `cur`.
 * When a non-reloadable option differs, returns CONFIG_EINVAL naming it
 * ("restart required") and changes nothing; a different table is
 * CONFIG_EINVAL too. Whole or nothing. The values of the other options
 * keep their storage: strings borrowed from them stay valid.
 */
int config_reload(config_t *cur, const config_t *next, config_error_t *err);

#endif /* BITWEEN_COMMON_CONFIG_H */
