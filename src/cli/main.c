/* mailbars: dispatches to the subcommands. */
#include "cli.h"
#include <stdio.h>
#include <errno.h>
#include <string.h>

static void usage(FILE *f) {
    fprintf(f, "usage: mailbars COMMAND [OPTIONS] ...\n"
               "\n"
               "Render Handlebars and Amazon SES email templates into MIME messages.\n"
               "\n"
               "commands:\n"
               "  render TEMPLATE.json [DATA.json|-]   render one SES message to stdout\n"
               "  check FILE...                        validate SES templates\n"
               "  bulk --template T.json ...           render many recipients to .eml or mbox\n"
               "  hbs TEMPLATE.hbs [DATA.json]         render a bare Handlebars template\n"
               "  hbs --jsonl                          batch rendering, one JSON case per line\n"
               "\n"
               "Run 'mailbars COMMAND --help' for a command's options.\n"
               "  -h, --help     show this help\n"
               "  --version      show the version\n");
}

int main(int argc, char **argv) {
    if (argc < 2) {
        usage(stderr);
        return EXIT_USAGE;
    }
    const char *cmd = argv[1];
    if (!strcmp(cmd, "-h") || !strcmp(cmd, "--help") || !strcmp(cmd, "help")) {
        usage(stdout);
        return EXIT_OK;
    }
    if (!strcmp(cmd, "--version") || !strcmp(cmd, "version")) {
        printf("mailbars %s\n", mailbars_version());
        return EXIT_OK;
    }
    if (!strcmp(cmd, "hbs")) return cmd_hbs(argc - 1, argv + 1);
    if (!strcmp(cmd, "render")) return cmd_render(argc - 1, argv + 1);
    if (!strcmp(cmd, "check")) return cmd_check(argc - 1, argv + 1);
    if (!strcmp(cmd, "bulk")) return cmd_bulk(argc - 1, argv + 1);
    fprintf(stderr, "mailbars: unknown command '%s'\n", cmd);
    usage(stderr);
    return EXIT_USAGE;
}

int cli_read_file(const char *path, mailbars_buf *out) {
    FILE *f = strcmp(path, "-") ? fopen(path, "rb") : stdin;
    if (!f) {
        fprintf(stderr, "mailbars: %s: %s\n", path, strerror(errno));
        return EXIT_IOERR;
    }
    char chunk[65536];
    size_t n;
    int rc = EXIT_OK;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        if (mailbars_buf_append(out, chunk, n) != MAILBARS_OK) {
            fprintf(stderr, "mailbars: %s: out of memory\n", path);
            rc = EXIT_IOERR;
            break;
        }
    if (ferror(f)) {
        fprintf(stderr, "mailbars: %s: read error\n", path);
        rc = EXIT_IOERR;
    }
    if (f != stdin) fclose(f);
    if (rc == EXIT_OK && !out->data) mailbars_buf_append(out, "", 0);
    return rc;
}
