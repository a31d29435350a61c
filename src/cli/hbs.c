/* mailbars hbs: not built yet (issue: Handlebars engine). */
#include "cli.h"
#include <stdio.h>

int cmd_hbs(int argc, char **argv) {
    (void)argc;
    (void)argv;
    fprintf(stderr, "mailbars hbs: not implemented yet\n");
    return EXIT_USAGE;
}
