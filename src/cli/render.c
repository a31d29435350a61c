/* mailbars render: not built yet (issue: SES profile and the CLI). */
#include "cli.h"
#include <stdio.h>

int cmd_render(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "mailbars render: not implemented yet\n");
    return EXIT_USAGE;
}
