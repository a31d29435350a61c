/* Options shared by the SES commands (render, check, bulk): addresses, deterministic message
 * settings, charset and encoding, and the SES profile. */
#ifndef MAILBARS_CLI_COMMON_H
#define MAILBARS_CLI_COMMON_H

#include "cli.h"
#include <stdio.h>

typedef struct cli_opts {
    const char *from, *to, *cc, *reply_to;
    const char *date, *boundary, *message_id;
    const char *charset, *encoding, *profile;
    int escape, strict_limits;
    mailbars_render_ctx *limits; /* --limit NAME=N; NULL until one is given (freed at exit) */
} cli_opts;

/* If argv[*i] is a common option (as "--opt VALUE" or "--opt=VALUE"), stores it, advances *i
 * past its value and returns 1; returns 0 when it is not one; -1 (after a message on stderr
 * naming `cmd`) when its value is missing. */
int cli_common_option(const char *cmd, cli_opts *o, int argc, char **argv, int *i);

/* Matches "--name VALUE" or "--name=VALUE" at argv[*i]; 1 with *val set, 0, or -1 (missing
 * value, message printed). */
int cli_value_option(const char *cmd, const char *name, int argc, char **argv, int *i,
                     const char **val);

/* Converts the profile/escape/limit options; -1 with a message on a bad value. */
int cli_ses_options(const char *cmd, const cli_opts *o, mailbars_ses_options *out);

/* --date: "@SECONDS", "SECONDS", or "YYYY-MM-DDTHH:MM:SS" with "Z" or "+HH:MM"/"-HH:MM".
 * Returns 0, or -1 when the text is not one of those. */
int cli_parse_date(const char *s, time_t *when, int *tz_minutes);

/* --encoding: "auto", "quoted-printable" (or "qp"), "base64"; -1 when unknown. */
int cli_parse_encoding(const char *s, mailbars_encoding *enc);

/* Applies charset, encoding, date, boundary and Message-ID to a message builder; prints an
 * error naming `cmd` and returns EXIT_USAGE/EXIT_INVALID on a bad value, else 0. */
int cli_apply_settings(const char *cmd, const cli_opts *o, mailbars_message *msg);

/* Adds --from/--to/--cc/--reply-to to a message; prints an error and returns EXIT_INVALID on
 * an invalid address. */
int cli_apply_addresses(const char *cmd, const cli_opts *o, mailbars_message *msg);

/* The help text of the common options. */
void cli_print_common_help(FILE *f);

/* Prints check/compile diagnostics for FILE in the `FILE:LINE:COL: error: [part L:C] message`
 * form, each followed by the template line and a caret. */
void cli_print_diags(FILE *f, const char *file, const mailbars_ses_diags *d);

#endif
