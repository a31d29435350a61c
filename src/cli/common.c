/* Options shared by render, check and bulk, and the diagnostic printer. */
#include "common.h"
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int cli_value_option(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **val) {
    const char *a = argv[*i];
    size_t n = strlen(name);
    if (strncmp(a, name, n)) return 0;
    if (a[n] == '=') {
        *val = a + n + 1;
        return 1;
    }
    if (a[n]) return 0;
    if (*i + 1 >= argc) {
        fprintf(stderr, "mailbars %s: option %s needs a value\n", cmd, name);
        return -1;
    }
    *val = argv[++*i];
    return 1;
}

static const char *const limit_names[MAILBARS_LIMIT__COUNT] = {
    [MAILBARS_LIMIT_TEMPLATE_SIZE] = "template-size",
    [MAILBARS_LIMIT_NESTING] = "nesting",
    [MAILBARS_LIMIT_PARTIAL_DEPTH] = "partial-depth",
    [MAILBARS_LIMIT_STEPS] = "steps",
    [MAILBARS_LIMIT_OUTPUT] = "output",
    [MAILBARS_LIMIT_ITERATIONS] = "iterations",
    [MAILBARS_LIMIT_JSON_DEPTH] = "json-depth",
    [MAILBARS_LIMIT_JSON_SIZE] = "json-size",
    [MAILBARS_LIMIT_CALL_DEPTH] = "call-depth",
};

static mailbars_render_ctx *cli_limits;

static void free_limits(void) {
    mailbars_render_ctx_free(cli_limits);
}

/* --limit NAME=N: stores N (a decimal count, 0 for none) in the one limits context of the
 * process, which the SES options then carry. Returns 0, or -1 after a message. */
static int parse_limit(const char *cmd, cli_opts *o, const char *v) {
    const char *eq = strchr(v, '=');
    int which = -1;
    for (int k = 0; eq && k < MAILBARS_LIMIT__COUNT; k++)
        if (strlen(limit_names[k]) == (size_t)(eq - v) && !strncmp(v, limit_names[k], eq - v))
            which = k;
    if (which < 0) {
        fprintf(stderr, "mailbars %s: --limit takes NAME=N with NAME one of", cmd);
        for (int k = 0; k < MAILBARS_LIMIT__COUNT; k++) fprintf(stderr, " %s", limit_names[k]);
        fprintf(stderr, " (got '%s')\n", v);
        return -1;
    }
    const char *n = eq + 1;
    char *end = NULL;
    errno = 0;
    unsigned long long val = *n >= '0' && *n <= '9' ? strtoull(n, &end, 10) : 0;
    if (!end || *end || errno == ERANGE) {
        fprintf(stderr, "mailbars %s: --limit %s needs a whole number (0: no limit), not '%s'\n",
                cmd, limit_names[which], n);
        return -1;
    }
    if (!cli_limits) {
        if (!(cli_limits = mailbars_render_ctx_new())) {
            fprintf(stderr, "mailbars %s: out of memory\n", cmd);
            return -1;
        }
        atexit(free_limits);
    }
    mailbars_render_ctx_set_limit(cli_limits, (mailbars_limit)which, val);
    o->limits = cli_limits;
    return 0;
}

int cli_common_option(const char *cmd, cli_opts *o, int argc, char **argv, int *i) {
    static const struct {
        const char *name;
        size_t off;
    } vals[] = {
        {"--from", offsetof(cli_opts, from)},
        {"--to", offsetof(cli_opts, to)},
        {"--cc", offsetof(cli_opts, cc)},
        {"--reply-to", offsetof(cli_opts, reply_to)},
        {"--date", offsetof(cli_opts, date)},
        {"--boundary", offsetof(cli_opts, boundary)},
        {"--message-id", offsetof(cli_opts, message_id)},
        {"--charset", offsetof(cli_opts, charset)},
        {"--encoding", offsetof(cli_opts, encoding)},
        {"--profile", offsetof(cli_opts, profile)},
    };
    if (!strcmp(argv[*i], "--escape")) {
        o->escape = 1;
        return 1;
    }
    if (!strcmp(argv[*i], "--strict-limits")) {
        o->strict_limits = 1;
        return 1;
    }
    const char *lv = NULL;
    int lr = cli_value_option(cmd, "--limit", argc, argv, i, &lv);
    if (lr) return lr < 0 || parse_limit(cmd, o, lv) ? -1 : 1;
    for (size_t k = 0; k < sizeof vals / sizeof *vals; k++) {
        const char *v = NULL;
        int r = cli_value_option(cmd, vals[k].name, argc, argv, i, &v);
        if (r < 0) return -1;
        if (r > 0) {
            *(const char **)((char *)o + vals[k].off) = v;
            return 1;
        }
    }
    return 0;
}

int cli_ses_options(const char *cmd, const cli_opts *o, mailbars_ses_options *out) {
    memset(out, 0, sizeof *out);
    if (!o->profile || !strcmp(o->profile, "ses")) {
        out->profile = MAILBARS_PROFILE_SES;
    } else if (!strcmp(o->profile, "handlebars")) {
        out->profile = MAILBARS_PROFILE_HANDLEBARS;
    } else {
        fprintf(stderr, "mailbars %s: --profile must be 'ses' or 'handlebars', not '%s'\n", cmd,
                o->profile);
        return -1;
    }
    out->escape = o->escape;
    out->strict_limits = o->strict_limits;
    out->limits = o->limits;
    return 0;
}

/* Reads exactly `n` digits as a number; -1 if any is not a digit. */
static int digits(const char *s, int n) {
    int v = 0;
    for (int i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9') return -1;
        v = v * 10 + (s[i] - '0');
    }
    return v;
}

int cli_parse_date(const char *s, time_t *when, int *tz_minutes) {
    const char *p = s[0] == '@' ? s + 1 : s;
    if (*p && strspn(p, "0123456789") == strlen(p)) {
        *when = (time_t)strtoll(p, NULL, 10);
        *tz_minutes = 0;
        return 0;
    }
    /* YYYY-MM-DDTHH:MM:SS then Z or +HH:MM */
    if (strlen(s) < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != ' ') ||
        s[13] != ':' || s[16] != ':')
        return -1;
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    int y = digits(s, 4), mo = digits(s + 5, 2), d = digits(s + 8, 2), h = digits(s + 11, 2),
        mi = digits(s + 14, 2), se = digits(s + 17, 2);
    if (y < 0 || mo < 1 || mo > 12 || d < 1 || d > 31 || h < 0 || h > 23 || mi < 0 || mi > 59 ||
        se < 0 || se > 60)
        return -1;
    const char *z = s + 19;
    int tz = 0;
    if (!strcmp(z, "Z")) {
        tz = 0;
    } else if ((z[0] == '+' || z[0] == '-') && strlen(z) == 6 && z[3] == ':') {
        int th = digits(z + 1, 2), tm_ = digits(z + 4, 2);
        if (th < 0 || tm_ < 0 || th > 23 || tm_ > 59) return -1;
        tz = (th * 60 + tm_) * (z[0] == '-' ? -1 : 1);
    } else {
        return -1;
    }
    tm.tm_year = y - 1900;
    tm.tm_mon = mo - 1;
    tm.tm_mday = d;
    tm.tm_hour = h;
    tm.tm_min = mi;
    tm.tm_sec = se;
    *when = timegm(&tm) - (time_t)tz * 60;
    *tz_minutes = tz;
    return 0;
}

int cli_parse_encoding(const char *s, mailbars_encoding *enc) {
    if (!strcmp(s, "auto"))
        *enc = MAILBARS_ENC_AUTO;
    else if (!strcmp(s, "quoted-printable") || !strcmp(s, "qp"))
        *enc = MAILBARS_ENC_QUOTED_PRINTABLE;
    else if (!strcmp(s, "base64"))
        *enc = MAILBARS_ENC_BASE64;
    else
        return -1;
    return 0;
}

int cli_apply_settings(const char *cmd, const cli_opts *o, mailbars_message *msg) {
    mailbars_error err;
    mailbars_error_clear(&err);
    if (o->charset && mailbars_message_set_charset(msg, o->charset, &err)) {
        fprintf(stderr, "mailbars %s: --charset %s: %s\n", cmd, o->charset, err.message);
        return EXIT_USAGE;
    }
    if (o->encoding) {
        mailbars_encoding enc;
        if (cli_parse_encoding(o->encoding, &enc)) {
            fprintf(stderr,
                    "mailbars %s: --encoding must be auto, quoted-printable or base64, not "
                    "'%s'\n",
                    cmd, o->encoding);
            return EXIT_USAGE;
        }
        mailbars_message_set_encoding(msg, enc);
    }
    if (o->date) {
        time_t when;
        int tz;
        if (cli_parse_date(o->date, &when, &tz)) {
            fprintf(stderr,
                    "mailbars %s: --date '%s': use @SECONDS or YYYY-MM-DDTHH:MM:SSZ "
                    "(or +HH:MM)\n",
                    cmd, o->date);
            return EXIT_USAGE;
        }
        mailbars_message_set_date(msg, when, tz);
    }
    if (o->boundary && mailbars_message_set_boundary(msg, o->boundary)) {
        fprintf(stderr, "mailbars %s: --boundary '%s' is not a valid MIME boundary\n", cmd,
                o->boundary);
        return EXIT_USAGE;
    }
    if (o->message_id && mailbars_message_set_message_id(msg, o->message_id)) {
        fprintf(stderr, "mailbars %s: --message-id '%s' is not valid\n", cmd, o->message_id);
        return EXIT_USAGE;
    }
    return 0;
}

int cli_apply_addresses(const char *cmd, const cli_opts *o, mailbars_message *msg) {
    const struct {
        const char *opt, *val;
        mailbars_addr_field f;
    } a[] = {{"--from", o->from, MAILBARS_FROM},
             {"--to", o->to, MAILBARS_TO},
             {"--cc", o->cc, MAILBARS_CC},
             {"--reply-to", o->reply_to, MAILBARS_REPLY_TO}};
    for (size_t i = 0; i < sizeof a / sizeof *a; i++) {
        if (!a[i].val) continue;
        mailbars_error err;
        mailbars_error_clear(&err);
        if (mailbars_message_add_address(msg, a[i].f, a[i].val, strlen(a[i].val), &err)) {
            fprintf(stderr, "mailbars %s: %s '%s': %s\n", cmd, a[i].opt, a[i].val, err.message);
            return EXIT_INVALID;
        }
    }
    return 0;
}

void cli_print_common_help(FILE *f) {
    fprintf(f, "message options:\n"
               "  --from ADDR           From header (\"Name <a@example.com>\")\n"
               "  --to LIST             To addresses (comma-separated)\n"
               "  --cc LIST             Cc addresses\n"
               "  --reply-to LIST       Reply-To addresses\n"
               "  --date DATE           fixed Date: @SECONDS or 2024-01-31T12:00:00Z (or +HH:MM)\n"
               "  --boundary STRING     fixed multipart boundary\n"
               "  --message-id ID       fixed Message-ID (without < >)\n"
               "  --charset NAME        body and header charset (default UTF-8; any ICU name)\n"
               "  --encoding ENC        auto | quoted-printable | base64 (default auto)\n"
               "template options:\n"
               "  --profile P           ses (default) | handlebars (plain handlebars.js)\n"
               "  --escape              HTML-escape {{x}} as handlebars.js does (SES does not)\n"
               "  --strict-limits       SES limits that are warnings become errors\n"
               "  --limit NAME=N        set a limit (0: none); NAME: template-size, nesting,\n"
               "                        partial-depth, steps, output, iterations, json-depth,\n"
               "                        json-size, call-depth (defaults: docs/limits.md)\n");
}

/* Writes the caret line under a quoted source line: tabs kept so the caret lines up. */
static void print_caret(FILE *f, const char *line, int column) {
    fputs("    ", f);
    int chars = 0;
    for (const char *p = line; *p && chars < column - 1; p++) {
        if (((unsigned char)*p & 0xC0) == 0x80) continue;
        fputc(*p == '\t' ? '\t' : ' ', f);
        chars++;
    }
    fputs("^\n", f);
}

void cli_print_diags(FILE *f, const char *file, const mailbars_ses_diags *d) {
    for (size_t i = 0; i < d->len; i++) {
        const mailbars_ses_diag *x = &d->items[i];
        const char *sev = x->severity == MAILBARS_SEV_ERROR ? "error" : "warning";
        if (x->file_line > 0)
            fprintf(f, "%s:%d:%d: %s: ", file, x->file_line, x->file_column, sev);
        else
            fprintf(f, "%s: %s: ", file, sev);
        if (x->part[0] && x->line > 0)
            fprintf(f, "[%s %d:%d] ", x->part, x->line, x->column);
        else if (x->part[0])
            fprintf(f, "[%s] ", x->part);
        fprintf(f, "%s\n", x->message);
        if (x->source_line) {
            fprintf(f, "    %s\n", x->source_line);
            print_caret(f, x->source_line, x->column);
        }
    }
}
