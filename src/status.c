/* Version, the one status message table, and error reporting. */
#include "internal.h"
#include <stdio.h>

const char *mailbars_version(void) {
    return MAILBARS_VERSION_STRING;
}

unsigned mailbars_version_number(void) {
    return MAILBARS_VERSION_NUMBER;
}

const char *mailbars_status_message(int code) {
    switch (code) {
#define X(name, num, msg)                                                                          \
    case num: return msg;
        MAILBARS_STATUS_LIST(X)
#undef X
    }
    return "unknown status";
}

const char *mailbars_status_name(int code) {
    switch (code) {
#define X(name, num, msg)                                                                          \
    case num: return #name;
        MAILBARS_STATUS_LIST(X)
#undef X
    }
    return "UNKNOWN";
}

void mailbars_error_clear(mailbars_error *err) {
    if (!err) return;
    err->code = 0;
    err->line = err->column = 0;
    err->part[0] = 0;
    err->message[0] = 0;
}

int mb_verror(mailbars_error *err, int code, int line, int column, const char *fmt, va_list ap) {
    if (!err) return code;
    err->code = code;
    err->line = line;
    err->column = column;
    if (fmt)
        vsnprintf(err->message, sizeof err->message, fmt, ap);
    else
        snprintf(err->message, sizeof err->message, "%s", mailbars_status_message(code));
    return code;
}

int mb_error(mailbars_error *err, int code, int line, int column, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    mb_verror(err, code, line, column, fmt, ap);
    va_end(ap);
    return code;
}
