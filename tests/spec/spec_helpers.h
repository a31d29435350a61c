/* Native C ports of the JavaScript test helpers used by the handlebars.js spec files, looked up
 * by the case that uses them (file, description, it, helper name). */
#ifndef SPEC_HELPERS_H
#define SPEC_HELPERS_H

#include "mailbars.h"

/* One ported helper (or partial). Any of file/desc/it may be "*" to match every value. */
typedef struct spec_port {
    const char *file;      /* spec file without ".json", e.g. "helpers" */
    const char *desc;      /* the case's "description" */
    const char *it;        /* the case's "it" */
    const char *name;      /* helper (or partial) name as registered */
    mailbars_helper_fn fn; /* NULL for partial ports */
    const char *arg;       /* constant the port uses (returned string, partial source...) */
    const char *cname;     /* the port's C name, for --list-ports */
} spec_port;

/* The port of helper `name` in the given case, or NULL when none is written. */
const spec_port *spec_find_helper(const char *file, const char *desc, const char *it,
                                  const char *name);
/* The port of a JavaScript function partial, as equivalent template source, or NULL. */
const spec_port *spec_find_partial(const char *file, const char *desc, const char *it,
                                   const char *name);

/* Resets the state ported helpers keep between calls (JS globals such as a counter) and the
 * assertion record. Call before every case. */
void spec_helpers_reset(void);
/* The message of the first failed assertion inside a ported helper since the last reset, or
 * NULL. A failed assertion fails the case even when the case expects an exception. */
const char *spec_helpers_assert_failure(void);

#endif
