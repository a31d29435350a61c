/* Consumer of an installed mailbars: checks that the header and the linked library agree. */
#include <mailbars.h>
#include <stdio.h>
#include <string.h>

/* Prints the linked version; exits non-zero when it differs from the header's. */
int main(void) {
    const char *v = mailbars_version();
    printf("mailbars %s\n", v);
    if (strcmp(v, MAILBARS_VERSION_STRING) != 0) {
        fprintf(stderr, "header says %s, library says %s\n", MAILBARS_VERSION_STRING, v);
        return 1;
    }
    if (mailbars_version_number() != MAILBARS_VERSION_NUMBER) {
        fprintf(stderr, "version number mismatch\n");
        return 1;
    }
    if (strcmp(mailbars_status_message(MAILBARS_OK), "success") != 0) {
        fprintf(stderr, "unexpected status message\n");
        return 1;
    }
    return 0;
}
