/* mailbars check: not built yet (issue: SES profile and the CLI). */
#include "cli.h"
#include <stdio.h>

int cmd_check(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "mailbars check: not implemented yet\n");
    return EXIT_USAGE;
}
