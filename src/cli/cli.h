/* The mailbars command line: one entry point per subcommand. Uses only the public API. */
#ifndef MAILBARS_CLI_H
#define MAILBARS_CLI_H

#include "mailbars.h"

/* Exit codes (DESIGN.md section 5; 64 is EX_USAGE from sysexits.h). */
enum { EXIT_OK = 0, EXIT_RENDER = 1, EXIT_INVALID = 2, EXIT_USAGE = 64, EXIT_IOERR = 74 };

int cmd_hbs(int argc, char **argv);
int cmd_render(int argc, char **argv);
int cmd_check(int argc, char **argv);
int cmd_bulk(int argc, char **argv);

/* Reads a whole file ("-" = stdin) into a buffer; prints an error naming it on failure. */
int cli_read_file(const char *path, mailbars_buf *out);

#endif
